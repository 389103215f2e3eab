/* seccomp_notify: the supervisor that records the owners a single-ID step's
 * chown calls ask for, and reports them to its stat calls.  Here: whether
 * a listener can be had, the command's sending it, the supervisor thread
 * that receives each call and answers it, and the handlers of chown
 * (owners recorded), mknod (device placeholders) and rename (a symlink's
 * record carried along).  The stat calls are answered in seccomp_stat.c,
 * which also holds the ways to the calling process's files both use
 * (seccomp_notify_priv.h).  See include/obuild/seccomp_notify.h. */
#include "config.h"
#include "seccomp_notify_priv.h"
#include <obuild/layer.h>
#include <obuild/link_owner.h>
#include <obuild/seccomp_notify.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef SYSFS_MAGIC
#define SYSFS_MAGIC 0x62656572
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW (4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef SECCOMP_USER_NOTIF_FLAG_CONTINUE
#define SECCOMP_USER_NOTIF_FLAG_CONTINUE (1UL << 0)
#endif

struct ob_seccomp_notify
{
  pthread_t thread;
  int sock;      /* receives the listener */
  int stop_r;    /* readable once ob_seccomp_notify_stop is called */
  int stop_w;
};

/* What a call asks for, whatever its architecture's form. */
struct chown_req
{
  bool by_fd;      /* fchown, or fchownat (fd, "", AT_EMPTY_PATH) */
  bool nofollow;   /* lchown, AT_SYMLINK_NOFOLLOW */
  int dirfd;       /* AT_FDCWD or the process's descriptor */
  uint64_t path;   /* address in the process */
  uint32_t uid, gid; /* (uint32_t) -1: unchanged */
};

/* Whether a filter with a listener can be loaded here: not where a filter
 * of whoever runs obuild (a container manager intercepting calls) has one
 * already (EBUSY), or where seccomp(2) itself is refused.  Tried in a child:
 * a filter cannot be taken off again. */
static int
listener_allowed (void)
{
  struct sock_filter allow = BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog prog = { .len = 1, .filter = &allow };
  int st;
  pid_t pid = fork ();

  if (pid < 0)
    return 0;
  if (pid == 0)
    {
      if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0
          || syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog) < 0)
        _exit (1);
      _exit (0);
    }
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      return 0;
  return WIFEXITED (st) && WEXITSTATUS (st) == 0;
}

bool
ob_seccomp_notify_available (void)
{
  static int avail = -1; /* probed once; the answer does not change */
  if (avail < 0)
    {
      long r;
      unsigned int action = SECCOMP_RET_USER_NOTIF;
      /* API level 5: libseccomp and the kernel both speak user
       * notification; openat2 is what resolves paths safely */
      avail = getenv ("OBUILD_TEST_NO_SECCOMP_NOTIFY") == NULL && seccomp_api_get () >= 5
              && syscall (SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
      if (avail)
        {
          struct open_how how = { .flags = O_PATH | O_CLOEXEC };
          r = syscall (SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
          if (r < 0)
            avail = 0;
          else
            close ((int) r);
        }
      if (avail)
        avail = listener_allowed ();
    }
  return avail == 1;
}

/* ---- the command's side ---- */

int
ob_seccomp_notify_send (int sock, int listener)
{
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } u;
  char byte = 'L';
  struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf };
  struct cmsghdr *c;
  ssize_t n;

  memset (&u, 0, sizeof u);
  c = CMSG_FIRSTHDR (&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &listener, sizeof (int));
  do
    n = sendmsg (sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  return n == 1 ? 0 : -errno;
}

/* ---- the supervisor ---- */

/* Record owner (uid, gid; -1 keeps the recorded one) on the file fd names. */
static int
record (int fd, mode_t mode, uint32_t uid, uint32_t gid)
{
  char p[64], v[64], list[4096];
  unsigned long cu = 0, cg = 0;
  ssize_t n, ln;

  snprintf (p, sizeof p, "/proc/self/fd/%d", fd);
  /* one listxattr says which of the xattrs below exist: most files have
   * none, and a chown to root of such a file costs nothing more */
  ln = listxattr (p, list, sizeof list);
  if (ln < 0 && errno != ERANGE && errno != ENOTSUP)
    return -errno;
  if (ln < 0)
    ln = errno == ERANGE ? -1 : 0; /* -1: too many to list, ask for each */
  /* a real chown, even root's, drops set-user-ID, set-group-ID (with group
   * execute) and file capabilities: as subuid mode's layers do */
  if (S_ISREG (mode))
    {
      mode_t m = mode & 07777;
      mode_t nm = m & ~(mode_t) S_ISUID;
      if ((m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
        nm &= ~(mode_t) S_ISGID;
      if (nm != m && chmod (p, nm) < 0)
        return -errno;
      if ((ln < 0 || ob_notify_has_name (list, ln, "security.capability"))
          && removexattr (p, "security.capability") < 0 && errno != ENODATA && errno != ENOTSUP)
        return -errno;
    }
  if (!S_ISREG (mode) && !S_ISDIR (mode))
    return 0; /* no user.* xattr there: as before, without effect */

  if (ln < 0 || ob_notify_has_name (list, ln, OB_LAYER_OWNER_XATTR))
    {
      n = getxattr (p, OB_LAYER_OWNER_XATTR, v, sizeof v - 1);
      if (n > 0)
        {
          v[n] = '\0';
          if (sscanf (v, "%lu:%lu", &cu, &cg) != 2)
            cu = cg = 0;
        }
    }
  else
    n = 0;
  if (uid != UINT32_MAX)
    cu = uid;
  if (gid != UINT32_MAX)
    cg = gid;
  if (cu == 0 && cg == 0)
    {
      /* root: what a file without the xattr stands for */
      if (n > 0 && removexattr (p, OB_LAYER_OWNER_XATTR) < 0 && errno != ENODATA
          && errno != ENOTSUP)
        return -errno;
      return 0;
    }
  snprintf (v, sizeof v, "%lu:%lu", cu, cg);
  if (setxattr (p, OB_LAYER_OWNER_XATTR, v, strlen (v), 0) < 0)
    return errno == ENOTSUP ? 0 : -errno;
  return 0;
}

/* The native numbers of the chown and stat families, looked up once per
 * thread: libseccomp's number-to-name lookup allocates and scans a table,
 * which a cp -a of 25,000 files would pay 25,000 times.  From FIRST_STAT
 * on, in enum ob_stat_kind's order, then the forms left to the kernel. */
static const char *const family[] = { "chown", "lchown", "fchown", "fchownat",
                                      "chown32", "lchown32", "fchown32",
                                      "stat", "lstat", "fstat", "newfstatat", "statx",
                                      "stat64", "lstat64", "fstat64", "fstatat64",
                                      "oldstat", "oldlstat", "oldfstat" };
_Static_assert (sizeof family / sizeof family[0] == OB_NOTIFY_N_FAMILY, "struct ob_notify_native's nr");
#define FIRST_STAT 7
#define N_STAT_HANDLED 5 /* stat .. statx */

static void
native_init (struct ob_notify_native *n)
{
  n->arch = seccomp_arch_native ();
  for (size_t i = 0; i < sizeof family / sizeof family[0]; i++)
    n->nr[i] = seccomp_syscall_resolve_name_arch (n->arch, family[i]);
  for (size_t i = 0; i < OB_NOTIFY_PIDFD_SLOTS; i++)
    {
      n->tid[i] = 0;
      n->pidfd[i] = -1;
    }
  n->next = 0;
  n->no_pidfd = false;
  n->root = -1;
  n->chrooted = false;
  n->chroot_nr = seccomp_syscall_resolve_name_arch (n->arch, "chroot");
  n->self_fd = open ("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
  /* bench/b-single-owners.sh: the cost of the round trips alone */
  n->stat_continue = getenv ("OBUILD_TEST_STAT_CONTINUE") != NULL;
  n->rename_nr[0] = seccomp_syscall_resolve_name_arch (n->arch, "rename");
  n->rename_nr[1] = seccomp_syscall_resolve_name_arch (n->arch, "renameat");
  n->rename_nr[2] = seccomp_syscall_resolve_name_arch (n->arch, "renameat2");
  n->pend_fd = -1;
}

static void settle_rename (struct ob_notify_native *n);

static void
native_fini (struct ob_notify_native *n)
{
  settle_rename (n);
  if (n->root >= 0)
    close (n->root);
  if (n->self_fd >= 0)
    close (n->self_fd);
  for (size_t i = 0; i < OB_NOTIFY_PIDFD_SLOTS; i++)
    if (n->pidfd[i] >= 0)
      close (n->pidfd[i]);
}

/* chroot: from now on each call's root is the caller's own.  The kernel
 * does the call. */
static bool
is_chroot (struct ob_notify_native *n, const struct seccomp_notif *req)
{
  char *name;
  bool yes;

  if (req->data.arch == n->arch)
    yes = n->chroot_nr >= 0 && req->data.nr == n->chroot_nr;
  else
    {
      name = seccomp_syscall_resolve_num_arch (req->data.arch, req->data.nr);
      yes = name != NULL && strcmp (name, "chroot") == 0;
      free (name);
    }
  if (yes)
    n->chrooted = true;
  return yes;
}

/* Decode the call.  0, or a negative errno for the step. */
static int
decode (const struct ob_notify_native *nat, const struct seccomp_notif *req, struct chown_req *c)
{
  const char *name = NULL;
  char *owned = NULL;
  const __u64 *a = req->data.args;
  bool ids16 = false;
  int ret = 0;

  if (req->data.arch == nat->arch)
    for (size_t i = 0; i < sizeof family / sizeof family[0] && name == NULL; i++)
      if (nat->nr[i] >= 0 && nat->nr[i] == req->data.nr)
        name = family[i];
  if (name == NULL)
    name = owned = seccomp_syscall_resolve_num_arch (req->data.arch, req->data.nr);
  if (name == NULL)
    return -ENOSYS;
  memset (c, 0, sizeof *c);
  c->dirfd = AT_FDCWD;
  /* i386 and arm: chown, lchown and fchown take 16-bit ids (the *32 forms
   * take full ones) */
  if ((req->data.arch == SCMP_ARCH_X86 || req->data.arch == SCMP_ARCH_ARM)
      && (strcmp (name, "chown") == 0 || strcmp (name, "lchown") == 0
          || strcmp (name, "fchown") == 0))
    ids16 = true;
  if (strcmp (name, "chown") == 0 || strcmp (name, "chown32") == 0
      || strcmp (name, "lchown") == 0 || strcmp (name, "lchown32") == 0)
    {
      c->nofollow = name[0] == 'l';
      c->path = a[0];
      c->uid = (uint32_t) a[1];
      c->gid = (uint32_t) a[2];
    }
  else if (strcmp (name, "fchown") == 0 || strcmp (name, "fchown32") == 0)
    {
      c->by_fd = true;
      c->dirfd = (int) a[0];
      c->uid = (uint32_t) a[1];
      c->gid = (uint32_t) a[2];
      if (c->dirfd < 0)
        ret = -EBADF;
    }
  else if (strcmp (name, "fchownat") == 0)
    {
      int flags = (int) a[4];
      c->dirfd = (int) a[0];
      c->path = a[1];
      c->uid = (uint32_t) a[2];
      c->gid = (uint32_t) a[3];
      if (flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH))
        ret = -EINVAL;
      c->nofollow = (flags & AT_SYMLINK_NOFOLLOW) != 0;
      c->by_fd = (flags & AT_EMPTY_PATH) != 0; /* if the path is empty: below */
    }
  else
    ret = -ENOSYS;
  if (ids16)
    {
      if ((c->uid & 0xffff) == 0xffff)
        c->uid = UINT32_MAX;
      else
        c->uid &= 0xffff;
      if ((c->gid & 0xffff) == 0xffff)
        c->gid = UINT32_MAX;
      else
        c->gid &= 0xffff;
    }
  free (owned);
  return ret;
}

/* A failure that may mean the caller is gone: 1 (nothing to answer) when
 * it is, else e for it, never silence (a call left unanswered would hang
 * the step). */
int
ob_notify_gone_or (int listener, const struct seccomp_notif *req, int e)
{
  return seccomp_notify_id_valid (listener, req->id) != 0 ? 1 : e;
}

/* Which stat call req is: its enum ob_stat_kind, -1 for none (a chown),
 * -2 for one the kernel performs unchanged (another architecture's, whose
 * struct the supervisor does not write; qemu-user's guests call the host's
 * forms, which are native). */
static int
stat_kind (const struct ob_notify_native *nat, const struct seccomp_notif *req)
{
  const size_t n = sizeof family / sizeof family[0];
  char *name;
  int k = -1;

  if (req->data.arch == nat->arch)
    {
      for (size_t i = FIRST_STAT; i < n; i++)
        if (nat->nr[i] >= 0 && nat->nr[i] == req->data.nr)
          {
            k = (int) (i - FIRST_STAT);
            if (k >= N_STAT_HANDLED || (!OB_SECCOMP_NOTIFY_STRUCT_STAT && k != OB_STAT_STATX))
              k = -2;
            break;
          }
      return k;
    }
  name = seccomp_syscall_resolve_num_arch (req->data.arch, req->data.nr);
  for (size_t i = FIRST_STAT; name != NULL && i < n && k == -1; i++)
    if (strcmp (name, family[i]) == 0)
      k = -2;
  free (name);
  return k;
}

/* chown of the symlink fd itself (lchown, AT_SYMLINK_NOFOLLOW, or the
 * process's O_PATH descriptor of it), already copied up: record uid, gid
 * ((uint32_t) -1 keeps the recorded one) on its parent.  A link that
 * cannot be recorded (its name too long for an xattr, its parent moved
 * meanwhile) stays root's, and the call succeeds, as before. */
static int
record_link (pid_t pid, int rootfd, const char *full, int dirfd, int fd, uint32_t uid, uint32_t gid)
{
  char name[NAME_MAX + 1], target[PATH_MAX];
  cleanup_close int pfd = -1;
  uint32_t cu = 0, cg = 0;
  struct stat st;
  ssize_t n;

  if (fstatat (fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
    return -errno;
  n = readlinkat (fd, "", target, sizeof target);
  if (n < 0)
    return -errno;
  if ((size_t) n >= sizeof target)
    return 0;
  target[n] = '\0';
  pfd = ob_notify_link_parent (pid, rootfd, full, dirfd, name);
  if (pfd < 0 || !ob_notify_link_is_in (rootfd, pfd, name, &st))
    return 0;
  if (uid == UINT32_MAX || gid == UINT32_MAX)
    (void) ob_link_owner_get (pfd, name, target, &cu, &cg);
  if (uid != UINT32_MAX)
    cu = uid;
  if (gid != UINT32_MAX)
    cg = gid;
  return ob_link_owner_set (pfd, name, target, cu, cg);
}


/* ---- mknod of a device: a placeholder ---- */

/* Which call of the mknod family req is: 0 mknod, 1 mknodat, -1 neither.
 * The native numbers looked up once per thread, as in struct
 * ob_notify_native. */
static int
mknod_kind (const struct ob_notify_native *nat, const struct seccomp_notif *req)
{
  static __thread int nr[2] = { -2, -2 };
  char *name;
  int k = -1;

  if (req->data.arch == nat->arch)
    {
      if (nr[0] == -2)
        {
          nr[0] = seccomp_syscall_resolve_name_arch (nat->arch, "mknod");
          nr[1] = seccomp_syscall_resolve_name_arch (nat->arch, "mknodat");
        }
      for (int i = 0; i < 2; i++)
        if (nr[i] >= 0 && nr[i] == req->data.nr)
          return i;
      return -1;
    }
  name = seccomp_syscall_resolve_num_arch (req->data.arch, req->data.nr);
  if (name != NULL && strcmp (name, "mknod") == 0)
    k = 0;
  else if (name != NULL && strcmp (name, "mknodat") == 0)
    k = 1;
  free (name);
  return k;
}

/* The caller's umask, from /proc/PID/status (Linux >= 4.7; 022 before). */
static int
caller_umask (pid_t pid, mode_t *mask)
{
  char p[64], buf[4096];
  cleanup_close int fd = -1;
  const char *u;
  ssize_t n;

  snprintf (p, sizeof p, "/proc/%d/status", (int) pid);
  fd = open (p, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -ESRCH;
  n = read (fd, buf, sizeof buf - 1);
  if (n < 0)
    return -ESRCH;
  buf[n] = '\0';
  *mask = 022;
  u = strstr (buf, "\nUmask:");
  if (u != NULL)
    *mask = (mode_t) strtoul (u + 7, NULL, 8) & 0777;
  return 0;
}

/* mknod or mknodat of a character or block device (the filter sends no
 * other): a user namespace cannot create one, so an empty regular file
 * with the device in OB_LAYER_DEVICE_XATTR stands for it, which the layer
 * writer writes as the device and ob_notify_handle_stat reports as one.
 * The parent is resolved as for chown, the name created with
 * O_EXCL|O_NOFOLLOW in it (never through a symlink); the mode is the
 * call's permission bits less the caller's umask; the owner root, as for
 * any file the step creates (a USER's owner is recorded after the step, as
 * for its other files).  Errors as the kernel's: EEXIST, ENOENT, ENOTDIR,
 * EROFS on a read-only mount, EPERM on /proc and /sys; any other mount (a
 * tmpfs, a cache mount): success without effect, as without a
 * supervisor. */
static int
handle_mknod (struct ob_notify_native *nat, int listener, const struct seccomp_notif *req, bool at)
{
  char path[PATH_MAX], full[2 * PATH_MAX + 2], parent[2 * PATH_MAX + 2], v[32];
  cleanup_close int rootfd = -1;
  cleanup_close int pfd = -1;
  cleanup_close int fd = -1;
  const __u64 *a = req->data.args;
  pid_t pid = (pid_t) req->pid;
  int dirfd = at ? (int) a[0] : AT_FDCWD;
  mode_t mode = (mode_t) (uint16_t) (at ? a[2] : a[1]); /* the kernel's umode_t */
  dev_t rdev = (dev_t) (uint32_t) (at ? a[3] : a[2]);   /* and its 32-bit dev */
  mode_t mask;
  struct ob_notify_file_id rid, id;
  struct statfs sfs;
  struct stat st;
  bool trailing = false;
  const char *base;
  char *slash;
  size_t len;
  int r;

  if (!S_ISCHR (mode) && !S_ISBLK (mode))
    return OB_NOTIFY_LEAVE;
  r = ob_notify_read_path (pid, at ? a[1] : a[0], path);
  if (r < 0)
    return r == -ESRCH ? ob_notify_gone_or (listener, req, -EFAULT) : r;
  if (path[0] == '\0')
    return -ENOENT;
  rootfd = ob_notify_caller_root (nat, pid);
  if (rootfd < 0)
    return ob_notify_gone_or (listener, req, -EPERM);
  if (path[0] == '/')
    snprintf (full, sizeof full, "%s", path);
  else
    {
      char dir[PATH_MAX];
      r = ob_notify_start_dir (pid, dirfd, dir, sizeof dir);
      if (r < 0)
        return r == -ESRCH ? ob_notify_gone_or (listener, req, -ENOENT) : r;
      snprintf (full, sizeof full, "%s/%s", dir, path);
    }
  /* the name to create, and the directory it goes in */
  len = strlen (full);
  while (len > 1 && full[len - 1] == '/')
    {
      full[--len] = '\0';
      trailing = true;
    }
  slash = strrchr (full, '/');
  base = slash + 1;
  if (*base == '\0' || strcmp (base, ".") == 0 || strcmp (base, "..") == 0)
    return -EEXIST;
  if (slash == full)
    snprintf (parent, sizeof parent, "/");
  else
    snprintf (parent, sizeof parent, "%.*s", (int) (slash - full), full);
  pfd = ob_notify_open_in_root (rootfd, parent, false);
  if (pfd < 0)
    return pfd;
  r = caller_umask (pid, &mask);
  if (r < 0)
    return ob_notify_gone_or (listener, req, -EPERM);
  /* from here on the files are known to be the caller's */
  if (seccomp_notify_id_valid (listener, req->id) != 0)
    return 1;

  r = ob_notify_file_id (rootfd, &rid);
  if (r == 0)
    r = ob_notify_file_id (pfd, &id);
  if (r < 0)
    return r;
  if (!S_ISDIR (id.mode))
    return -ENOTDIR;
  if (fstatat (pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0)
    return -EEXIST;
  if (id.mnt != rid.mnt || id.dev != rid.dev)
    {
      /* not the layer's: as chown (handle) */
      if (fstatfs (pfd, &sfs) < 0)
        return -errno;
      if (sfs.f_flags & ST_RDONLY)
        return -EROFS;
      if (sfs.f_type == PROC_SUPER_MAGIC || sfs.f_type == SYSFS_MAGIC)
        return -EPERM;
      return trailing ? -ENOENT : 0;
    }
  if (trailing)
    return -ENOENT; /* a new name with a trailing slash asks for a directory */
  fd = openat (pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  ob_layer_device_format (v, sizeof v, mode & S_IFMT, rdev);
  /* the xattr before the mode: the mode may deny writing it */
  if (fsetxattr (fd, OB_LAYER_DEVICE_XATTR, v, strlen (v), 0) < 0
      || fchmod (fd, mode & 07777 & ~mask) < 0)
    {
      int e = errno;
      unlinkat (pfd, base, 0);
      return e == ENOTSUP ? -EPERM : -e;
    }
  return 0;
}

/* ---- rename of a symlink whose owner is recorded ---- */

/* Which rename call req is: 0 rename, 1 renameat, 2 renameat2, -1 none. */
static int
rename_kind (const struct ob_notify_native *nat, const struct seccomp_notif *req)
{
  static const char *const names[] = { "rename", "renameat", "renameat2" };
  char *name;
  int k = -1;

  if (req->data.arch == nat->arch)
    {
      for (int i = 0; i < 3; i++)
        if (nat->rename_nr[i] >= 0 && nat->rename_nr[i] == req->data.nr)
          return i;
      return -1;
    }
  name = seccomp_syscall_resolve_num_arch (req->data.arch, req->data.nr);
  for (int i = 0; name != NULL && i < 3; i++)
    if (strcmp (name, names[i]) == 0)
      k = i;
  free (name);
  return k;
}

/* The path a call names (dirfd, path) from the process's root, into out. */
static int
call_path (pid_t pid, int dirfd, const char *path, char *out, size_t size)
{
  char dir[PATH_MAX];
  if (path[0] == '/')
    {
      snprintf (out, size, "%s", path);
      return 0;
    }
  if (ob_notify_start_dir (pid, dirfd, dir, sizeof dir) < 0)
    return -1;
  snprintf (out, size, "%s/%s", dir, path);
  return 0;
}

/* The rename recorded by handle_rename is done (or failed): the old name's
 * record goes, unless the old name still holds that very link (the rename
 * failed).  Run before the supervisor handles any other call, so that a
 * chown -h of a new link of that name comes after, and when it stops. */
static void
settle_rename (struct ob_notify_native *n)
{
  struct stat st;
  if (n->pend_fd < 0)
    return;
  if (fstatat (n->pend_fd, n->pend_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK (st.st_mode)
      || st.st_dev != n->pend_dev || st.st_ino != n->pend_ino)
    (void) ob_link_owner_set (n->pend_fd, n->pend_name, "", 0, 0); /* 0:0 removes it */
  close (n->pend_fd);
  n->pend_fd = -1;
}

/* rename, renameat, renameat2 (RENAME_NOREPLACE): when the old name is a
 * symlink with a recorded owner, on the step's root mount, its new name is
 * given the record before the kernel renames it (the call is always the
 * kernel's: OB_NOTIFY_LEAVE); the old name's record goes once the rename
 * is done (settle_rename).  A rename that fails leaves a record for the
 * new name that only a link of that name and target would take.
 * RENAME_EXCHANGE and RENAME_WHITEOUT: records unchanged.  Anything
 * unexpected: OB_NOTIFY_LEAVE, as without a supervisor. */
static int
handle_rename (struct ob_notify_native *nat, int listener, const struct seccomp_notif *req, int kind)
{
  const __u64 *a = req->data.args;
  pid_t pid = (pid_t) req->pid;
  char opath[PATH_MAX], npath[PATH_MAX], full[2 * PATH_MAX + 2], target[PATH_MAX];
  char oname[NAME_MAX + 1], nname[NAME_MAX + 1];
  cleanup_close int rootfd = -1;
  cleanup_close int opfd = -1;
  cleanup_close int npfd = -1;
  int odirfd = kind == 0 ? AT_FDCWD : (int) a[0];
  int ndirfd = kind == 0 ? AT_FDCWD : (int) a[2];
  unsigned int flags = kind == 2 ? (unsigned int) a[4] : 0;
  struct ob_notify_file_id rid, oid, nid;
  struct stat st, nst;
  uint32_t uid, gid;
  ssize_t len;

  if (flags & ~(unsigned int) RENAME_NOREPLACE)
    return OB_NOTIFY_LEAVE;
  if (ob_notify_read_path (pid, kind == 0 ? a[0] : a[1], opath) < 0
      || ob_notify_read_path (pid, kind == 0 ? a[1] : a[3], npath) < 0 || opath[0] == '\0' || npath[0] == '\0')
    return OB_NOTIFY_LEAVE;
  rootfd = ob_notify_caller_root (nat, pid);
  if (rootfd < 0 || call_path (pid, odirfd, opath, full, sizeof full) < 0)
    return OB_NOTIFY_LEAVE;
  opfd = ob_notify_link_parent (pid, rootfd, full, odirfd, oname);
  if (opfd < 0 || fstatat (opfd, oname, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK (st.st_mode))
    return OB_NOTIFY_LEAVE; /* the common case: not a symlink */
  len = readlinkat (opfd, oname, target, sizeof target);
  if (len < 0 || (size_t) len >= sizeof target)
    return OB_NOTIFY_LEAVE;
  target[len] = '\0';
  if (!ob_link_owner_get (opfd, oname, target, &uid, &gid))
    return OB_NOTIFY_LEAVE;
  if (call_path (pid, ndirfd, npath, full, sizeof full) < 0)
    return OB_NOTIFY_LEAVE;
  npfd = ob_notify_link_parent (pid, rootfd, full, ndirfd, nname);
  if (npfd < 0 || ((flags & RENAME_NOREPLACE) && fstatat (npfd, nname, &nst, AT_SYMLINK_NOFOLLOW) == 0))
    return OB_NOTIFY_LEAVE;
  /* only the layer's own directories */
  if (ob_notify_file_id (rootfd, &rid) < 0 || ob_notify_file_id (opfd, &oid) < 0
      || ob_notify_file_id (npfd, &nid) < 0 || oid.mnt != rid.mnt || oid.dev != rid.dev
      || nid.mnt != rid.mnt || nid.dev != rid.dev)
    return OB_NOTIFY_LEAVE;
  if (seccomp_notify_id_valid (listener, req->id) != 0)
    return 1;
  (void) ob_link_owner_set (npfd, nname, target, uid, gid);
  nat->pend_fd = ob_steal_fd (&opfd);
  snprintf (nat->pend_name, sizeof nat->pend_name, "%s", oname);
  nat->pend_dev = st.st_dev;
  nat->pend_ino = st.st_ino;
  return OB_NOTIFY_LEAVE;
}

/* Whether the process's descriptor fd was opened with O_PATH: the
 * "flags:" line of /proc/PID/fdinfo/FD, in octal. */
static bool
caller_fd_is_path (pid_t pid, int fd)
{
  char p[64], buf[512];
  cleanup_close int f = -1;
  const char *fl;
  ssize_t n;

  if (fd < 0)
    return false;
  snprintf (p, sizeof p, "/proc/%d/fdinfo/%d", (int) pid, fd);
  f = open (p, O_RDONLY | O_CLOEXEC);
  if (f < 0)
    return false;
  n = read (f, buf, sizeof buf - 1);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  fl = strstr (buf, "flags:");
  return fl != NULL && (strtoul (fl + 6, NULL, 8) & O_PATH) != 0;
}

/* Handle one call: 0 (answer success), a negative errno (answer it), 1
 * when the call is gone (the process died or was interrupted),
 * OB_NOTIFY_LEAVE. */
static int
handle (struct ob_notify_native *nat, int listener, const struct seccomp_notif *req)
{
  char path[PATH_MAX], full[2 * PATH_MAX + 2];
  cleanup_close int rootfd = -1;
  cleanup_close int fd = -1;
  struct chown_req c;
  struct ob_notify_file_id rid, id;
  struct statfs sfs;
  pid_t pid = (pid_t) req->pid;
  int r;

  settle_rename (nat);
  r = stat_kind (nat, req);
  if (r == -2 || (r >= 0 && nat->stat_continue) || (r < 0 && is_chroot (nat, req)))
    return OB_NOTIFY_LEAVE;
  if (r >= 0)
    return ob_notify_handle_stat (nat, listener, req, (enum ob_stat_kind) r);
  r = mknod_kind (nat, req);
  if (r >= 0)
    return handle_mknod (nat, listener, req, r == 1);
  r = rename_kind (nat, req);
  if (r >= 0)
    return handle_rename (nat, listener, req, r);
  r = decode (nat, req, &c);
  if (r < 0)
    return r;
  if (c.path != 0 || !c.by_fd)
    {
      r = ob_notify_read_path (pid, c.path, path);
      if (r < 0)
        return r == -ESRCH ? ob_notify_gone_or (listener, req, -EFAULT) : r;
      if (path[0] != '\0')
        c.by_fd = false; /* AT_EMPTY_PATH matters only with "" */
      else if (!c.by_fd)
        return -ENOENT;
    }

  rootfd = ob_notify_caller_root (nat, pid);
  if (rootfd < 0)
    return ob_notify_gone_or (listener, req, -EPERM);
  if (c.by_fd)
    {
      /* the process's own descriptor: whatever it is, the process holds it
       * (nothing of obuild's is open in the sandbox); the mount check below
       * decides */
      fd = ob_notify_open_proc_fd (pid, c.dirfd, O_PATH | O_CLOEXEC);
      if (fd < 0)
        return errno == ENOENT ? -EBADF : -errno;
    }
  else
    {
      if (path[0] == '/')
        snprintf (full, sizeof full, "%s", path);
      else
        {
          char dir[PATH_MAX];
          r = ob_notify_start_dir (pid, c.dirfd, dir, sizeof dir);
          if (r < 0)
            return r == -ESRCH ? ob_notify_gone_or (listener, req, -ENOENT) : r;
          snprintf (full, sizeof full, "%s/%s", dir, path);
        }
      fd = ob_notify_open_in_root (rootfd, full, c.nofollow);
      if (fd < 0)
        return fd;
    }
  /* the pid may have been reused between the call and now: from here on
   * the files are known to be the caller's */
  if (seccomp_notify_id_valid (listener, req->id) != 0)
    return 1;

  r = ob_notify_file_id (rootfd, &rid);
  if (r == 0)
    r = ob_notify_file_id (fd, &id);
  if (r < 0)
    return r;
  if (id.mnt != rid.mnt || id.dev != rid.dev)
    {
      /* not the layer's: a read-only mount gives EROFS, as a real chown
       * there; /proc and /sys are the kernel's (EPERM, as a real chown of
       * them in a user namespace); a tmpfs, a cache mount: nothing to
       * record, success as before.  (The root mount is writable: what
       * cannot be written there fails in record with the kernel's error.) */
      if (fstatfs (fd, &sfs) < 0)
        return -errno;
      if (sfs.f_flags & ST_RDONLY)
        return -EROFS;
      if (sfs.f_type == PROC_SUPER_MAGIC || sfs.f_type == SYSFS_MAGIC)
        return -EPERM;
      return 0;
    }
  /* a real chown that changes no id (ours own every file): what a chown
   * does besides the ids happens as for real, above all overlayfs copies
   * a file of a lower layer up, so the step's layer holds it, symlinks
   * included, as in subuid mode */
  /* fchown refuses an O_PATH descriptor (the only kind that names a
   * symlink); fchownat with AT_EMPTY_PATH takes one */
  if (c.by_fd && c.path == 0 && (S_ISLNK (id.mode) || caller_fd_is_path (pid, c.dirfd)))
    return -EBADF;
  if (fchownat (fd, "", (uid_t) -1, (gid_t) -1, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
    return -errno;
  if (S_ISLNK (id.mode))
    return record_link (pid, rootfd, c.by_fd ? NULL : full, c.dirfd, fd, c.uid, c.gid);
  return record (fd, id.mode, c.uid, c.gid);
}

static int
recv_listener (struct ob_seccomp_notify *n)
{
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } u;
  char byte;
  struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf };
  struct pollfd pfd[2] = { { .fd = n->sock, .events = POLLIN }, { .fd = n->stop_r, .events = POLLIN } };
  struct cmsghdr *c;
  ssize_t r;
  int fd = -1;

  for (;;)
    {
      if (poll (pfd, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      if (pfd[1].revents)
        return -1;
      if (pfd[0].revents)
        break;
    }
  r = recvmsg (n->sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (r != 1)
    return -1; /* the command failed before sending: nothing to supervise */
  for (c = CMSG_FIRSTHDR (&msg); c != NULL; c = CMSG_NXTHDR (&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS
        && c->cmsg_len == CMSG_LEN (sizeof (int)))
      memcpy (&fd, CMSG_DATA (c), sizeof fd);
  return fd;
}

static void *
supervise (void *arg)
{
  struct ob_seccomp_notify *n = arg;
  struct seccomp_notif *req = NULL;
  struct seccomp_notif_resp *resp = NULL;
  struct ob_notify_native nat;
  int listener = recv_listener (n);

  if (listener < 0)
    return NULL;
  if (seccomp_notify_alloc (&req, &resp) != 0)
    {
      /* closing the listener fails the step's pending and later calls
       * (ENOSYS) rather than leaving them blocked */
      close (listener);
      return NULL;
    }
  native_init (&nat);
  /* Linux >= 6.6: the step's thread hands its CPU to us and back, which
   * cuts the round trip of each call (a cp -a makes one per file); older
   * kernels refuse it, nothing else changes */
  (void) ioctl (listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
  for (;;)
    {
      struct pollfd pfd[2] = { { .fd = listener, .events = POLLIN }, { .fd = n->stop_r, .events = POLLIN } };
      int r;
      if (poll (pfd, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (pfd[1].revents)
        break;
      if (!(pfd[0].revents & POLLIN))
        {
          if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL))
            break; /* every process of the step is gone */
          continue;
        }
      /* the kernel wants a zeroed request */
      memset (req, 0, sizeof *req);
      /* the ioctl itself, not seccomp_notify_receive: libseccomp turns
       * every error into ECANCELED, and ENOENT (a queued call whose caller
       * was killed before it was received) must not stop the supervisor,
       * or every later call of the step fails with ENOSYS */
      if (ioctl (listener, SECCOMP_IOCTL_NOTIF_RECV, req) < 0)
        {
          if (errno == ENOENT || errno == EINTR)
            continue; /* the caller was killed or interrupted meanwhile */
          break;
        }
      r = handle (&nat, listener, req);
      if (r == 1)
        continue; /* the call is gone: no one to answer */
      memset (resp, 0, sizeof *resp);
      resp->id = req->id;
      if (r == OB_NOTIFY_LEAVE)
        resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      else
        resp->error = r;
      resp->val = 0;
      (void) seccomp_notify_respond (listener, resp); /* ENOENT: the caller died */
    }
  seccomp_notify_free (req, resp);
  native_fini (&nat);
  close (listener);
  return NULL;
}

int
ob_seccomp_notify_start (int sock, struct ob_seccomp_notify **out, ob_error_t *err)
{
  struct ob_seccomp_notify *n = ob_xmalloc0 (sizeof *n);
  sigset_t all, old;
  int fds[2], r;

  *out = NULL;
  n->sock = sock;
  if (pipe2 (fds, O_CLOEXEC) < 0)
    {
      int e = errno;
      close (sock);
      free (n);
      return ob_error_make (err, OB_ERR_GENERIC, e, "pipe");
    }
  n->stop_r = fds[0];
  n->stop_w = fds[1];
  /* signals (SIGINT, SIGCHLD) are the main thread's business */
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  r = pthread_create (&n->thread, NULL, supervise, n);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (r != 0)
    {
      close (n->stop_r);
      close (n->stop_w);
      close (sock);
      free (n);
      return ob_error_make (err, OB_ERR_GENERIC, r, "start the chown supervisor");
    }
  *out = n;
  return 0;
}

void
ob_seccomp_notify_stop (struct ob_seccomp_notify *n)
{
  if (n == NULL)
    return;
  if (write (n->stop_w, "x", 1) < 0)
    {
      /* a pipe with a reader and room for one byte: cannot fail */
    }
  pthread_join (n->thread, NULL);
  close (n->stop_r);
  close (n->stop_w);
  close (n->sock);
  free (n);
}
