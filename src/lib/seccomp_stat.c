/* seccomp_stat: the stat half of single-ID mode's supervisor
 * (seccomp_notify.c receives the calls).  It answers a step's stat, lstat,
 * fstat, newfstatat and statx with the owner recorded in
 * OB_LAYER_OWNER_XATTR (a symlink's on its directory, link_owner.h) and a
 * placeholder's device, and leaves every other call to the kernel.  Here
 * too are the ways to the calling process's files that the chown, mknod
 * and rename handlers use as well: its paths read from its memory, its
 * cwd, descriptors and root through /proc (the root kept until the step
 * calls chroot), its descriptors taken with pidfd_getfd (a few pidfds
 * kept), paths resolved with openat2 never out of its root.  Apart from
 * seccomp_notify.c to keep each file small; what they share is in
 * seccomp_notify_priv.h.  See include/obuild/seccomp_notify.h. */
#include "config.h"
#include "seccomp_notify_priv.h"
#include <obuild/layer.h>
#include <obuild/link_owner.h>
#include <obuild/seccomp_notify.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif

/* Read the NUL-terminated path at addr in pid into buf (PATH_MAX bytes). */
int
ob_notify_read_path (pid_t pid, uint64_t addr, char *buf)
{
  size_t done = 0;

  if (addr == 0)
    return -EFAULT;
  /* page by page: a path near the end of a mapping must not fail because
   * the bytes after it are unmapped */
  while (done < PATH_MAX)
    {
      uint64_t at = addr + done;
      size_t chunk = 4096 - (size_t) (at % 4096);
      struct iovec local, remote;
      ssize_t n;

      /* most paths are short: 256 bytes first, not the rest of a page */
      if (done == 0 && chunk > 256)
        chunk = 256;
      if (chunk > PATH_MAX - done)
        chunk = PATH_MAX - done;
      local.iov_base = buf + done;
      local.iov_len = chunk;
      remote.iov_base = (void *) (uintptr_t) at;
      remote.iov_len = chunk;
      n = process_vm_readv (pid, &local, 1, &remote, 1, 0);
      if (n <= 0)
        return n < 0 && errno == ESRCH ? -ESRCH : -EFAULT;
      if (memchr (buf + done, '\0', (size_t) n) != NULL)
        return 0;
      done += (size_t) n;
    }
  return -ENAMETOOLONG;
}

/* readlink of /proc/PID/<what>: a path as the process sees it, from the
 * root of its mount namespace. */
static int
proc_link (pid_t pid, const char *what, char *buf, size_t size)
{
  char p[64];
  ssize_t n;
  snprintf (p, sizeof p, "/proc/%d/%s", (int) pid, what);
  n = readlink (p, buf, size - 1);
  if (n < 0)
    return errno == ENOENT ? -ESRCH : -errno;
  if ((size_t) n >= size - 1)
    return -ENAMETOOLONG;
  buf[n] = '\0';
  return 0;
}

/* The directory a relative path starts from (the cwd or the process's
 * descriptor dirfd), as a path inside the process's root: openat2 resolves
 * it again there, so whatever the link says, nothing outside is reached. */
int
ob_notify_start_dir (pid_t pid, int dirfd, char *out, size_t size)
{
  char root[PATH_MAX], what[32];
  size_t rl;
  int r;

  if (dirfd == AT_FDCWD)
    snprintf (what, sizeof what, "cwd");
  else if (dirfd < 0)
    return -EBADF;
  else
    snprintf (what, sizeof what, "fd/%d", dirfd);
  r = proc_link (pid, what, out, size);
  if (r < 0)
    return r == -ESRCH && dirfd != AT_FDCWD ? -EBADF : r;
  if (out[0] != '/')
    return -ENOTDIR; /* a pipe, socket, anon inode */
  r = proc_link (pid, "root", root, sizeof root);
  if (r < 0)
    return r;
  /* a chrooted process: its paths are below its root */
  rl = strlen (root);
  if (strcmp (root, "/") != 0)
    {
      if (strncmp (out, root, rl) != 0 || (out[rl] != '/' && out[rl] != '\0'))
        return -ENOENT;
      memmove (out, out + rl, strlen (out + rl) + 1);
      if (out[0] == '\0')
        snprintf (out, size, "/");
    }
  return 0;
}

int
ob_notify_open_in_root (int rootfd, const char *path, bool nofollow)
{
  struct open_how how = { .flags = O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0),
                          .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  for (int tries = 0; tries < 8; tries++)
    {
      long fd = syscall (SYS_openat2, rootfd, path, &how, sizeof how);
      if (fd >= 0)
        return (int) fd;
      if (errno != EAGAIN) /* EAGAIN: a rename raced with "..", try again */
        return -errno;
    }
  return -EAGAIN;
}

int
ob_notify_file_id (int fd, struct ob_notify_file_id *id)
{
  struct statx sx;
  if (statx (fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MODE | STATX_MNT_ID,
             &sx) < 0)
    return -errno;
  id->mode = sx.stx_mode;
  id->dev = makedev (sx.stx_dev_major, sx.stx_dev_minor);
  id->mnt = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : (uint64_t) id->dev;
  return 0;
}

/* Whether the NUL-separated list holds name. */
bool
ob_notify_has_name (const char *list, ssize_t len, const char *name)
{
  for (const char *p = list; p < list + len; p += strlen (p) + 1)
    if (strcmp (p, name) == 0)
      return true;
  return false;
}

/* A descriptor of the calling process's root (the caller closes it), or -1
 * with errno. */
int
ob_notify_caller_root (struct ob_notify_native *n, pid_t pid)
{
  char p[64];
  int fd;

  if (!n->chrooted && n->root >= 0)
    return fcntl (n->root, F_DUPFD_CLOEXEC, 0);
  snprintf (p, sizeof p, "/proc/%d/root", (int) pid);
  fd = open (p, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0 && !n->chrooted && n->root < 0)
    n->root = fcntl (fd, F_DUPFD_CLOEXEC, 0);
  return fd;
}

/* The process's cwd (dirfd AT_FDCWD) or its descriptor dirfd, opened
 * through /proc with flags: a descriptor, or -1 with errno. */
int
ob_notify_open_proc_fd (pid_t pid, int dirfd, int flags)
{
  char p[64];
  if (dirfd == AT_FDCWD)
    snprintf (p, sizeof p, "/proc/%d/cwd", (int) pid);
  else
    snprintf (p, sizeof p, "/proc/%d/fd/%d", (int) pid, dirfd);
  return open (p, flags);
}

/* 465 wherever new calls share their numbers (Linux >= 5.1): all but alpha */
#if !defined(SYS_listxattrat) && !defined(__alpha__)
#define SYS_listxattrat 465
#endif

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

/* The calling thread's descriptor fd, duplicated into obuild (a real file,
 * not an O_PATH one, unless the caller's is), or a negative errno: -ENOSYS
 * where pidfds cannot, and the caller must go through /proc.  A pidfd names
 * one thread for good: when its thread has gone and the tid been reused,
 * pidfd_getfd fails with ESRCH and a new pidfd is opened. */
static int
caller_fd (struct ob_notify_native *n, pid_t tid, int fd)
{
  int slot = -1;
  long r;

  if (n->no_pidfd || fd < 0)
    return -ENOSYS;
  for (int i = 0; i < OB_NOTIFY_PIDFD_SLOTS; i++)
    if (n->pidfd[i] >= 0 && n->tid[i] == tid)
      slot = i;
  for (int tries = 0; tries < 2; tries++)
    {
      if (slot < 0)
        {
          long pfd = syscall (SYS_pidfd_open, tid, PIDFD_THREAD);
          if (pfd < 0)
            {
              if (errno == EINVAL || errno == ENOSYS || errno == EPERM)
                n->no_pidfd = true;
              return -ENOSYS;
            }
          slot = (int) (n->next++ % OB_NOTIFY_PIDFD_SLOTS);
          if (n->pidfd[slot] >= 0)
            close (n->pidfd[slot]);
          n->pidfd[slot] = (int) pfd;
          n->tid[slot] = tid;
        }
      r = syscall (SYS_pidfd_getfd, n->pidfd[slot], fd, 0);
      if (r >= 0)
        return (int) r;
      if (errno != ESRCH)
        {
          if (errno == ENOSYS || errno == EPERM)
            n->no_pidfd = true;
          return errno == EBADF ? -EBADF : -ENOSYS;
        }
      /* that thread is gone: the tid is another's now */
      close (n->pidfd[slot]);
      n->pidfd[slot] = -1;
      slot = -1;
    }
  return -ENOSYS;
}

int
ob_seccomp_notify_stat_decode (enum ob_stat_kind kind, const uint64_t args[6],
                               struct ob_stat_call *c)
{
  /* the flags each call accepts; the kernel refuses others with EINVAL */
  const int at_ok = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH;
  int flags = 0;

  memset (c, 0, sizeof *c);
  c->dirfd = AT_FDCWD;
  switch (kind)
    {
    case OB_STAT_STAT:
    case OB_STAT_LSTAT:
      c->nofollow = kind == OB_STAT_LSTAT;
      c->path = args[0];
      c->buf = args[1];
      break;
    case OB_STAT_FSTAT:
      c->fd_only = true;
      c->dirfd = (int) args[0]; /* the kernel takes an unsigned int */
      c->buf = args[1];
      if (c->dirfd < 0)
        return 1;
      break;
    case OB_STAT_NEWFSTATAT:
      c->dirfd = (int) args[0];
      c->path = args[1];
      c->buf = args[2];
      flags = (int) args[3];
      if (flags & ~at_ok)
        return 1;
      break;
    case OB_STAT_STATX:
      c->statx = true;
      c->dirfd = (int) args[0];
      c->path = args[1];
      flags = (int) args[2];
      c->mask = (unsigned int) args[3];
      c->buf = args[4];
      if ((flags & ~(at_ok | AT_STATX_SYNC_TYPE)) != 0
          || (flags & AT_STATX_SYNC_TYPE) == AT_STATX_SYNC_TYPE || (c->mask & STATX__RESERVED))
        return 1;
      c->sx_flags = flags & (AT_STATX_SYNC_TYPE | AT_NO_AUTOMOUNT);
      break;
    default:
      return 1;
    }
  c->nofollow = c->nofollow || (flags & AT_SYMLINK_NOFOLLOW) != 0;
  c->empty_path = (flags & AT_EMPTY_PATH) != 0;
  /* a NULL path (Linux >= 6.11 takes it for "" with AT_EMPTY_PATH) and a
   * NULL buffer: whatever this kernel says */
  if ((!c->fd_only && c->path == 0) || c->buf == 0)
    return 1;
  return 0;
}


#if OB_SECCOMP_NOTIFY_STRUCT_STAT
/* the kernel's struct stat of stat, lstat, fstat and newfstatat */
#if defined(__x86_64__)
_Static_assert (sizeof (struct stat) == 144, "x86_64 struct stat");
#elif defined(__aarch64__)
_Static_assert (sizeof (struct stat) == 128, "aarch64 struct stat");
#endif
#endif
_Static_assert (sizeof (struct statx) == 256, "struct statx");

/* The owner recorded on the file fd names: true when one other than 0:0
 * (what a file without the xattr stands for, and what the kernel reports
 * for the step's own files) is. */
static bool
recorded_owner (int fd, uint32_t *uid, uint32_t *gid)
{
  char p[64], v[64];
  unsigned long u, g;
  ssize_t n;

  snprintf (p, sizeof p, "/proc/self/fd/%d", fd); /* no fgetxattr on O_PATH */
  n = getxattr (p, OB_LAYER_OWNER_XATTR, v, sizeof v - 1);
  if (n <= 0)
    return false;
  v[n] = '\0';
  if (sscanf (v, "%lu:%lu", &u, &g) != 2 || (u == 0 && g == 0) || u > UINT32_MAX
      || g > UINT32_MAX)
    return false;
  *uid = (uint32_t) u;
  *gid = (uint32_t) g;
  return true;
}

/* ---- symlink owners: recorded on the parent directory (link_owner.h) ---- */

/* The directory holding the symlink a call named, and the link's name
 * there, into name: full is the path the call resolved from the process's
 * root, or NULL for the process's own descriptor dirfd, whose path /proc
 * tells.  The parent is resolved from rootfd as the call's path was
 * (ob_notify_open_in_root: never out of the root); ob_notify_link_is_in
 * says whether it holds that link.  Its descriptor, or -1. */
int
ob_notify_link_parent (pid_t pid, int rootfd, const char *full, int dirfd, char name[NAME_MAX + 1])
{
  char buf[2 * PATH_MAX + 2];
  char *slash;

  if (full != NULL)
    snprintf (buf, sizeof buf, "%s", full);
  else if (dirfd == AT_FDCWD || ob_notify_start_dir (pid, dirfd, buf, sizeof buf) < 0)
    return -1;
  slash = strrchr (buf, '/');
  if (slash == NULL || strlen (slash + 1) > NAME_MAX)
    return -1;
  snprintf (name, NAME_MAX + 1, "%s", slash + 1);
  if (slash == buf)
    slash[1] = '\0';
  else
    *slash = '\0';
  return ob_notify_open_in_root (rootfd, buf, false);
}

/* Whether dirfd (on the step's root mount, as rootfd) holds, as name, the
 * very symlink st describes: the parent found by path is the link's, not a
 * directory a racing rename put there, nor one of a bind mount. */
bool
ob_notify_link_is_in (int rootfd, int dirfd, const char *name, const struct stat *st)
{
  struct ob_notify_file_id rid, did;
  struct stat cur;
  return fstatat (dirfd, name, &cur, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK (cur.st_mode)
         && cur.st_dev == st->st_dev && cur.st_ino == st->st_ino && ob_notify_file_id (rootfd, &rid) == 0
         && ob_notify_file_id (dirfd, &did) == 0 && did.mnt == rid.mnt && did.dev == rid.dev;
}

/* The owner recorded for fd when it is a symlink (stat of a symlink
 * itself): true when one other than root is.  *rootfd is opened when
 * needed (a descriptor's stat). */
static bool
link_recorded_owner (struct ob_notify_native *nat, pid_t pid, int *rootfd, const char *full, int dirfd, int fd,
                     uint32_t *uid, uint32_t *gid)
{
  char name[NAME_MAX + 1], target[PATH_MAX];
  cleanup_close int pfd = -1;
  struct stat st;
  ssize_t n;

  if (fstatat (fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK (st.st_mode))
    return false;
  if (*rootfd < 0)
    {
      *rootfd = ob_notify_caller_root (nat, pid);
      if (*rootfd < 0)
        return false;
    }
  pfd = ob_notify_link_parent (pid, *rootfd, full, dirfd, name);
  if (pfd < 0)
    return false;
  n = readlinkat (fd, "", target, sizeof target);
  if (n < 0 || (size_t) n >= sizeof target)
    return false;
  target[n] = '\0';
  /* most links have no record: one getxattr on the parent decides */
  return ob_link_owner_get (pfd, name, target, uid, gid) && ob_notify_link_is_in (*rootfd, pfd, name, &st);
}

/* Which of obuild's xattrs the file fd names carries, with one listxattr:
 * HAS_OWNER, HAS_DEVICE, both when the list does not fit here. */
#define HAS_OWNER 1
#define HAS_DEVICE 2
static int
obuild_xattrs (struct ob_notify_native *nat, int fd, bool *opath)
{
  char p[64], list[4096];
  ssize_t n;
  int r = 0;

  /* a caller's file taken with pidfd_getfd answers itself; an O_PATH
   * descriptor (EBADF) through /proc */
  n = flistxattr (fd, list, sizeof list);
  *opath = n < 0 && errno == EBADF;
  if (*opath)
    {
      /* no flistxattr on O_PATH: the file through its /proc/self/fd link,
       * without walking /proc/self where the kernel can */
      n = -1;
#ifdef SYS_listxattrat
      if (nat->self_fd >= 0)
        {
          snprintf (p, sizeof p, "%d", fd);
          n = syscall (SYS_listxattrat, nat->self_fd, p, 0, list, sizeof list);
          if (n < 0 && errno == ENOSYS)
            {
              close (nat->self_fd);
              nat->self_fd = -1;
            }
        }
#endif
      if (nat->self_fd < 0)
        {
          snprintf (p, sizeof p, "/proc/self/fd/%d", fd);
          n = listxattr (p, list, sizeof list);
        }
    }
  if (n < 0)
    return errno == ERANGE ? HAS_OWNER | HAS_DEVICE : 0;
  if (ob_notify_has_name (list, n, OB_LAYER_OWNER_XATTR))
    r |= HAS_OWNER;
  if (ob_notify_has_name (list, n, OB_LAYER_DEVICE_XATTR))
    r |= HAS_DEVICE;
  return r;
}

/* A placeholder's device (see handle_mknod): true for a valid
 * OB_LAYER_DEVICE_XATTR on the file fd names (the caller checks that it is
 * a regular file, the only kind the layer writer makes a device of). */
static bool
placeholder_device (int fd, mode_t *type, dev_t *rdev)
{
  char p[64], v[32];
  ssize_t n;

  n = fgetxattr (fd, OB_LAYER_DEVICE_XATTR, v, sizeof v);
  if (n < 0 && errno == EBADF)
    {
      snprintf (p, sizeof p, "/proc/self/fd/%d", fd); /* no fgetxattr on O_PATH */
      n = getxattr (p, OB_LAYER_DEVICE_XATTR, v, sizeof v);
    }
  return n > 0 && ob_layer_device_parse (v, (size_t) n, type, rdev) == 0;
}

/* Write the result into the caller through its /proc/PID/mem. */
static int
write_result (int mem, uint64_t addr, const void *data, size_t size)
{
  ssize_t n;
  if (addr > (uint64_t) INT64_MAX - size)
    return -EFAULT;
  do
    n = pwrite (mem, data, size, (off_t) addr);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t) size ? 0 : -EFAULT;
}

/* The fast way for a relative path (most of cp -a's and find's calls):
 * resolved from its start directory (the cwd or dirfd, through /proc),
 * never leaving it, instead of rebuilding the path from the process's
 * root.  -EXDEV when the path leaves the directory (.., an absolute
 * symlink) and -ELOOP for a symlink itself with nofollow (whose owner is
 * recorded by the path: see link_recorded_owner): the long way answers
 * those; another negative errno: the kernel does. */
static int
open_beneath (struct ob_notify_native *nat, pid_t pid, int dirfd, const char *path, bool nofollow)
{
  struct open_how how = { .flags = O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0),
                          .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
  cleanup_close int dfd = -1;
  struct stat st;
  long fd;

  if (dirfd != AT_FDCWD && dirfd < 0)
    return -EBADF;
  dfd = dirfd == AT_FDCWD ? -ENOSYS : caller_fd (nat, pid, dirfd);
  if (dfd == -ENOSYS)
    {
      dfd = ob_notify_open_proc_fd (pid, dirfd, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dfd < 0)
        return -errno;
    }
  if (dfd < 0)
    return dfd;
  do
    fd = syscall (SYS_openat2, dfd, path, &how, sizeof how);
  while (fd < 0 && errno == EAGAIN);
  if (fd < 0)
    return -errno;
  if (nofollow && (fstatat ((int) fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 || S_ISLNK (st.st_mode)))
    {
      close ((int) fd);
      return -ELOOP;
    }
  return (int) fd;
}

/* A stat call: OB_NOTIFY_LEAVE unless the file has an owner recorded,
 * then 0 with the result written, a negative errno, or 1 when the call is
 * gone. */
int
ob_notify_handle_stat (struct ob_notify_native *nat, int listener, const struct seccomp_notif *req,
                       enum ob_stat_kind kind)
{
  char path[PATH_MAX], full[2 * PATH_MAX + 2], p[64];
  cleanup_close int rootfd = -1;
  cleanup_close int fd = -1;
  cleanup_close int mem = -1;
  struct ob_stat_call c;
  struct ob_notify_file_id rid, id;
  pid_t pid = (pid_t) req->pid;
  uint32_t uid, gid;
  uint64_t args[6];
  bool owned, device, opath, beneath = false;
  int xs;
  mode_t dev_type = 0;
  dev_t rdev = 0;

  /* anything out of the ordinary: the kernel answers it, errors included */
  for (int i = 0; i < 6; i++)
    args[i] = req->data.args[i];
  if (ob_seccomp_notify_stat_decode (kind, args, &c) != 0)
    return OB_NOTIFY_LEAVE;
  path[0] = '\0';
  if (!c.fd_only && (ob_notify_read_path (pid, c.path, path) < 0 || (path[0] == '\0' && !c.empty_path)))
    return OB_NOTIFY_LEAVE;
  if (path[0] == '\0')
    {
      /* the process's own descriptor (or cwd): as for fchown */
      if (c.dirfd != AT_FDCWD && c.dirfd < 0)
        return OB_NOTIFY_LEAVE;
      fd = c.dirfd == AT_FDCWD ? -ENOSYS : caller_fd (nat, pid, c.dirfd);
      if (fd == -ENOSYS)
        fd = ob_notify_open_proc_fd (pid, c.dirfd, O_PATH | O_CLOEXEC);
      if (fd < 0)
        return OB_NOTIFY_LEAVE;
    }
  else if (path[0] != '/' && (fd = open_beneath (nat, pid, c.dirfd, path, c.nofollow)) >= 0)
    beneath = true; /* not a symlink itself: no record on its directory */
  else if (path[0] != '/' && fd != -EXDEV && fd != -ELOOP)
    return OB_NOTIFY_LEAVE;
  else
    {
      fd = -1;
      rootfd = ob_notify_caller_root (nat, pid);
      if (rootfd < 0)
        return OB_NOTIFY_LEAVE;
      if (path[0] == '/')
        snprintf (full, sizeof full, "%s", path);
      else
        {
          char dir[PATH_MAX];
          if (ob_notify_start_dir (pid, c.dirfd, dir, sizeof dir) < 0)
            return OB_NOTIFY_LEAVE;
          snprintf (full, sizeof full, "%s/%s", dir, path);
        }
      fd = ob_notify_open_in_root (rootfd, full, c.nofollow);
      if (fd < 0)
        return OB_NOTIFY_LEAVE;
    }
  /* most files carry no xattr at all: one listxattr, and the kernel does
   * the rest; a symlink's owner is recorded on its directory */
  xs = obuild_xattrs (nat, fd, &opath);
  device = (xs & HAS_DEVICE) && placeholder_device (fd, &dev_type, &rdev);
  uid = gid = 0;
  owned = (xs & HAS_OWNER) && recorded_owner (fd, &uid, &gid);
  /* only an O_PATH descriptor can be a symlink itself */
  if (!owned && !beneath && (c.nofollow || path[0] == '\0') && (path[0] != '\0' || opath))
    owned = link_recorded_owner (nat, pid, &rootfd, path[0] == '\0' ? NULL : full, c.dirfd, fd, &uid, &gid);
  if (!owned && !device)
    return OB_NOTIFY_LEAVE;
  if (rootfd < 0)
    {
      rootfd = ob_notify_caller_root (nat, pid);
      if (rootfd < 0)
        return OB_NOTIFY_LEAVE;
    }
  /* only the layer's files: a bind or cache mount's xattrs are not ours */
  if (ob_notify_file_id (rootfd, &rid) < 0 || ob_notify_file_id (fd, &id) < 0 || id.mnt != rid.mnt
      || id.dev != rid.dev)
    return OB_NOTIFY_LEAVE;
  /* bound to the process now: if the pid is reused after the check below,
   * writes through it fail instead of reaching another process */
  snprintf (p, sizeof p, "/proc/%d/mem", (int) pid);
  mem = open (p, O_RDWR | O_CLOEXEC);
  if (mem < 0)
    return ob_notify_gone_or (listener, req, OB_NOTIFY_LEAVE);
  if (seccomp_notify_id_valid (listener, req->id) != 0)
    return 1;
  if (c.statx)
    {
      struct statx sx;
      memset (&sx, 0, sizeof sx);
      if (statx (fd, "", AT_EMPTY_PATH | c.sx_flags, c.mask, &sx) < 0)
        return -errno;
      if (owned && (sx.stx_mask & STATX_UID))
        sx.stx_uid = uid;
      if (owned && (sx.stx_mask & STATX_GID))
        sx.stx_gid = gid;
      if (device && S_ISREG (sx.stx_mode))
        {
          /* a placeholder: the device it stands for, as the layer has it */
          sx.stx_mode = (__u16) (dev_type | (sx.stx_mode & 07777));
          sx.stx_rdev_major = major (rdev);
          sx.stx_rdev_minor = minor (rdev);
          sx.stx_size = 0;
          sx.stx_blocks = 0;
        }
      return write_result (mem, c.buf, &sx, sizeof sx);
    }
#if OB_SECCOMP_NOTIFY_STRUCT_STAT
  {
    struct stat st;
    memset (&st, 0, sizeof st);
    /* the system call, not the C library's fstatat, which may build the
     * struct from statx */
    if (syscall (SYS_newfstatat, fd, "", &st, AT_EMPTY_PATH) < 0)
      return -errno;
    if (owned)
      {
        st.st_uid = uid;
        st.st_gid = gid;
      }
    if (device && S_ISREG (st.st_mode))
      {
        st.st_mode = dev_type | (st.st_mode & 07777);
        st.st_rdev = rdev;
        st.st_size = 0;
        st.st_blocks = 0;
      }
    return write_result (mem, c.buf, &st, sizeof st);
  }
#else
  return OB_NOTIFY_LEAVE;
#endif
}
