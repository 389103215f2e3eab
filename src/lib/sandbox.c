/* sandbox: one RUN step in fresh PID, mount, UTS, IPC (and network)
 * namespaces.  See include/obuild/sandbox.h for the contract.
 *
 * Shape (after bubblewrap and crun):
 *   parent   validates the options, creates the missing mount points inside
 *            the root (it owns the step's rootfs mount, and only it can hand
 *            the list back), compiles the mount sequence into a list of
 *            operations, then clones the init process;
 *   init     (PID 1 of the new PID namespace) executes the operations with
 *            one switch, pivot_roots, sets the hostname, brings up lo, forks
 *            the command, forwards signals to it and reaps every process
 *            until the command exits;
 *   command  redirects stdio, drops to the step's user, chdirs, loads the
 *            seccomp program and execs.
 * Failures in init or in the command are written as one record (errno +
 * text) to a CLOEXEC pipe before _exit (127); the parent turns the record into
 * an ob_error.  A successful exec closes the pipe, so an empty pipe means
 * the command ran and its exit status is the step's result.
 *
 * Every path inside the root is resolved with openat2 (RESOLVE_IN_ROOT), so a
 * hostile image cannot point a mount target (e.g. /etc/hosts -> /etc/shadow
 * on the host) outside its root; the mount then targets
 * /proc/self/fd/N of the resolved O_PATH descriptor.
 *
 * Code running after clone () does not allocate: everything it needs is
 * prepared in the parent.  Bind, remount and propagation calls pass "none"
 * as the (ignored) filesystem type: valgrind checks it as a string. */
#include "config.h"
#include <obuild/sandbox.h>
#include <obuild/seccomp.h>
#include <obuild/seccomp_notify.h>
#include <obuild/util.h>
#include "sandbox_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The running step's init, for ob_sandbox_interrupt (). */
static volatile pid_t running_pid;
static volatile sig_atomic_t interrupted;

/* ---- operations executed by init, in order ---- */

enum sandbox_op_kind
{
  OP_MOUNT_PROC,   /* fresh proc on dest */
  OP_MOUNT_TMPFS,  /* tmpfs on dest with data */
  OP_MOUNT_DEVPTS, /* devpts newinstance on dest */
  OP_BIND_DEV,     /* bind the host node source onto a new empty file dest */
  OP_SYMLINK,      /* symlink dest -> source */
  OP_BIND_SYS,     /* recursive read-only bind of the host's /sys, best effort */
  OP_BIND,         /* caller's bind mount, maybe read-only */
};

enum mount_point_kind
{
  MP_EXISTS, /* created by the parent (or part of the image) */
  MP_DIR,    /* init creates a directory (inside its own tmpfs) */
  MP_FILE,   /* init creates an empty file (inside its own tmpfs) */
};

struct sandbox_op
{
  enum sandbox_op_kind kind;
  const char *source;
  const char *dest; /* absolute, inside the root */
  const char *data;
  unsigned long flags;
  enum mount_point_kind create;
  bool readonly;
};

/* Everything init and the command need, prepared before clone. */
struct sandbox_ctx
{
  const struct ob_sandbox_opts *opts;
  struct sandbox_op *ops;
  size_t n_ops;
  int err_fd;     /* write end of the error pipe */
  int devnull_fd; /* host /dev/null, the default stdin */
  int sync_fd;    /* identity_userns: read end, readable once the maps are written */
  int notify_fd;  /* a notify seccomp program: where the command sends its listener */
};

/* The record a failing child writes to the error pipe. */
struct child_error
{
  int errnum;
  char text[1020];
};

/* ---- small helpers usable on both sides ---- */

static long
raw_clone (unsigned long flags)
{
  /* fork-like clone: no new stack, the child continues here. */
#if defined(__s390__) || defined(__CRIS__)
  return syscall (SYS_clone, NULL, flags, NULL, NULL, NULL);
#else
  return syscall (SYS_clone, flags, NULL, NULL, NULL, NULL);
#endif
}

/* Close the descriptors lo..hi (inclusive). */
static void
close_span (unsigned int lo, unsigned int hi)
{
  struct rlimit rl;
  unsigned int top = hi;

  if (close_range (lo, hi, 0) == 0)
    return;
  /* kernels before 5.9: one by one, up to the descriptor limit */
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < top)
    top = rl.rlim_cur < 1048576 ? (unsigned int) rl.rlim_cur : 1048576;
  for (unsigned int fd = lo; fd <= top && fd < 1048576; fd++)
    (void) close ((int) fd);
}

/* Close every descriptor but those in keep (at most 10; negative entries
 * are ignored).  Allocation-free: runs after clone. */
static void
close_fds_except (const int *keep, size_t n)
{
  int k[10];
  size_t m = 0;
  unsigned int lo = 0;

  for (size_t i = 0; i < n && m < 10; i++)
    if (keep[i] >= 0)
      {
        size_t j = m++;
        while (j > 0 && k[j - 1] > keep[i])
          {
            k[j] = k[j - 1];
            j--;
          }
        k[j] = keep[i];
      }
  for (size_t i = 0; i < m; i++)
    {
      if ((unsigned int) k[i] < lo)
        continue; /* a duplicate */
      if ((unsigned int) k[i] > lo)
        close_span (lo, (unsigned int) k[i] - 1);
      lo = (unsigned int) k[i] + 1;
    }
  close_span (lo, ~0U);
}

/* Docker's default capability set: what a RUN step keeps.  Everything else
 * (CAP_SYS_ADMIN above all: mounts, so the masks below stay) is dropped
 * from every set, the bounding set included, so no exec gets it back. */
static const int kept_caps[] = {
  CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER,     CAP_MKNOD,
  CAP_NET_RAW, CAP_SETGID,      CAP_SETUID, CAP_SETFCAP,    CAP_SETPCAP,
  CAP_NET_BIND_SERVICE,         CAP_SYS_CHROOT, CAP_KILL,   CAP_AUDIT_WRITE,
};

static int
drop_capabilities (void)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2];
  uint64_t keep = 0, eff, prm, inh;

  for (size_t i = 0; i < sizeof kept_caps / sizeof kept_caps[0]; i++)
    keep |= (uint64_t) 1 << kept_caps[i];
  for (int cap = 0; cap < 64; cap++)
    if (!(keep & ((uint64_t) 1 << cap)) && prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) < 0
        && errno != EINVAL)
      return -1;
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return -1;
  if (syscall (SYS_capget, &hdr, data) < 0)
    return -1;
  eff = ((uint64_t) data[1].effective << 32 | data[0].effective) & keep;
  prm = ((uint64_t) data[1].permitted << 32 | data[0].permitted) & keep;
  inh = ((uint64_t) data[1].inheritable << 32 | data[0].inheritable) & keep;
  data[0].effective = (uint32_t) eff;
  data[1].effective = (uint32_t) (eff >> 32);
  data[0].permitted = (uint32_t) prm;
  data[1].permitted = (uint32_t) (prm >> 32);
  data[0].inheritable = (uint32_t) inh;
  data[1].inheritable = (uint32_t) (inh >> 32);
  return (int) syscall (SYS_capset, &hdr, data);
}

/* ---- child side: report and die ---- */

static _Noreturn void __attribute__ ((format (printf, 3, 4)))
child_fail (const struct sandbox_ctx *c, int errnum, const char *fmt, ...)
{
  struct child_error rec;
  va_list ap;
  ssize_t r;

  memset (&rec, 0, sizeof rec);
  rec.errnum = errnum;
  va_start (ap, fmt);
  vsnprintf (rec.text, sizeof rec.text, fmt, ap);
  va_end (ap);
  /* One write, smaller than PIPE_BUF: atomic, never interleaved. */
  do
    r = write (c->err_fd, &rec, sizeof rec);
  while (r < 0 && errno == EINTR);
  _exit (127);
}

/* Create dest (inside a tmpfs of ours) as a directory or an empty file;
 * existing is fine. */
static int
child_make_mount_point (int rootfd, const char *dest, enum mount_point_kind kind)
{
  char parent[PATH_MAX];
  const char *slash = strrchr (dest, '/');
  const char *name = slash ? slash + 1 : dest;
  int pfd, fd, saved;
  size_t plen = slash ? (size_t) (slash - dest) : 0;

  if (kind == MP_EXISTS)
    return 0;
  if (plen >= sizeof parent)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  memcpy (parent, dest, plen);
  parent[plen] = '\0';
  pfd = ob_sandbox_open_in_root (rootfd, plen ? parent : "/", O_PATH | O_DIRECTORY);
  if (pfd < 0)
    return -1;
  if (kind == MP_DIR)
    fd = mkdirat (pfd, name, 0755) < 0 && errno != EEXIST ? -1 : 0;
  else
    {
      fd = openat (pfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd >= 0)
        close (fd);
    }
  saved = errno;
  close (pfd);
  errno = saved;
  return fd < 0 ? -1 : 0;
}

static unsigned long
locked_flags (int fd)
{
  /* statfs f_flags share MS_* values for these bits.  In a user namespace
   * a remount must keep them (read-only too), or it fails with EPERM. */
  struct statfs sf;
  if (fstatfs (fd, &sf) < 0)
    return 0;
  return (unsigned long) sf.f_flags
         & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
}

/* Decode mountinfo's octal escapes (\040 for a space) in place. */
static void
unescape_mountinfo (char *s)
{
  char *w = s;
  for (; *s; s++)
    {
      if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0'
          && s[3] <= '7')
        {
          *w++ = (char) (((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
          s += 3;
        }
      else
        *w++ = *s;
    }
  *w = '\0';
}

/* Classic-API fallback for a recursive bind: remount every submount below
 * top with the flags add (MS_RDONLY, MS_NODEV, ...) too.  Locked submounts
 * may refuse (EPERM): they are left as they are.  Reads mountinfo in
 * chunks, without allocating. */
static void
remount_submounts (const char *top, unsigned long add)
{
  char buf[16384];
  size_t len = 0, tlen = strlen (top);
  int fd = open ("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  bool eof = false;

  if (fd < 0)
    return;
  while (!eof || len > 0)
    {
      char *nl, *line, *mp;
      if (!eof && len < sizeof buf - 1)
        {
          ssize_t n = read (fd, buf + len, sizeof buf - 1 - len);
          if (n < 0 && errno == EINTR)
            continue;
          if (n <= 0)
            eof = true;
          else
            len += (size_t) n;
        }
      buf[len] = '\0';
      nl = memchr (buf, '\n', len);
      if (nl == NULL)
        {
          if (!eof && len < sizeof buf - 1)
            continue;
          nl = buf + len; /* last line, or too long: taken as is */
        }
      *nl = '\0';
      line = buf;
      /* "id parent major:minor root mount-point options ..." */
      mp = line;
      for (int field = 0; field < 4 && mp; field++)
        {
          mp = strchr (mp, ' ');
          if (mp)
            mp++;
        }
      if (mp)
        {
          char *sp = strchr (mp, ' ');
          if (sp)
            *sp = '\0';
          unescape_mountinfo (mp);
          if (strncmp (mp, top, tlen) == 0 && mp[tlen] == '/')
            {
              struct statfs sf;
              unsigned long keep = 0;
              if (statfs (mp, &sf) == 0)
                keep = (unsigned long) sf.f_flags
                       & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME
                          | MS_RELATIME);
              (void) mount ("none", mp, "none", MS_REMOUNT | MS_BIND | add | keep, NULL);
            }
        }
      {
        size_t used = (size_t) (nl - buf) + (nl < buf + len ? 1 : 0);
        memmove (buf, buf + used, len - used);
        len -= used;
      }
    }
  close (fd);
}

/* Bind source onto dest (inside the root).  Returns 0, or -1 with errno and
 * *what set to the failed step ("bind" or "remount"). */
static int
bind_mount (int rootfd, const char *source, const char *dest, bool recursive, bool readonly,
            unsigned long extra_attr, const char **what)
{
  char path[64];
  int tfd, sfd, fd, saved, ret;
  unsigned long add = (readonly ? MS_RDONLY : 0) | (extra_attr & MOUNT_ATTR_NOSUID ? MS_NOSUID : 0)
                      | (extra_attr & MOUNT_ATTR_NODEV ? MS_NODEV : 0)
                      | (extra_attr & MOUNT_ATTR_NOEXEC ? MS_NOEXEC : 0);

  *what = "open mount point";
  tfd = ob_sandbox_open_in_root (rootfd, dest, O_PATH);
  if (tfd < 0)
    return -1;

  /* The new mount API sets read-only on the whole detached tree before it
   * becomes visible (and on locked submounts, where a remount would fail). */
  sfd = open_tree (AT_FDCWD, source,
                   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
  if (sfd >= 0)
    {
      struct mount_attr attr = { 0 };
      attr.attr_set = (readonly ? MOUNT_ATTR_RDONLY : 0) | extra_attr;
      ret = 0;
      if (attr.attr_set != 0)
        {
          *what = "remount";
          ret = mount_setattr (sfd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                               sizeof attr);
        }
      if (ret == 0)
        {
          *what = "bind";
          ret = move_mount (sfd, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
        }
      saved = errno;
      close (sfd);
      if (ret == 0 || (saved != ENOSYS && saved != EPERM && saved != EINVAL))
        {
          close (tfd);
          errno = saved;
          return ret;
        }
    }

  /* Classic mount (2): bind, then remount it (and its submounts) read-only,
   * nodev, ... as asked. */
  *what = "bind";
  ob_sandbox_fd_path (path, sizeof path, tfd);
  ret = mount (source, path, "none", MS_BIND | (recursive ? MS_REC : 0), NULL);
  saved = errno;
  close (tfd);
  if (ret < 0)
    {
      errno = saved;
      return -1;
    }
  if (add == 0)
    return 0;

  /* Reopen: the old fd is the covered mount point, not the new mount. */
  *what = "remount";
  fd = ob_sandbox_open_in_root (rootfd, dest, O_PATH);
  if (fd < 0)
    return -1;
  ob_sandbox_fd_path (path, sizeof path, fd);
  ret = mount ("none", path, "none", MS_REMOUNT | MS_BIND | add | locked_flags (fd), NULL);
  saved = errno;
  if (ret == 0 && recursive)
    {
      char real[PATH_MAX];
      ssize_t n = readlink (path, real, sizeof real - 1);
      if (n > 0)
        {
          real[n] = '\0';
          remount_submounts (real, add);
        }
    }
  close (fd);
  errno = saved;
  return ret;
}

/* Execute one operation in init, before pivot_root; rootfd is the root
 * bind mount.  Dies with a message on failure. */
static void
run_op (const struct sandbox_ctx *c, int rootfd, const struct sandbox_op *op)
{
  char path[64];
  const char *what;
  int fd, ret;

  if (child_make_mount_point (rootfd, op->dest, op->create) < 0)
    child_fail (c, errno, "create mount point `%s`", op->dest);

  switch (op->kind)
    {
    case OP_MOUNT_PROC:
    case OP_MOUNT_TMPFS:
    case OP_MOUNT_DEVPTS:
      fd = ob_sandbox_open_in_root (rootfd, op->dest, O_PATH | O_DIRECTORY);
      if (fd < 0)
        child_fail (c, errno, "open mount point `%s`", op->dest);
      ob_sandbox_fd_path (path, sizeof path, fd);
      ret = mount (op->source, path, op->source, op->flags, op->data);
      if (ret < 0 && op->kind == OP_MOUNT_DEVPTS && (errno == EINVAL || errno == EPERM))
        {
          /* gid=5 is not mapped in a single-ID user namespace. */
          ret = mount (op->source, path, op->source, op->flags,
                       "newinstance,ptmxmode=0666,mode=0620");
        }
      if (ret < 0)
        child_fail (c, errno, "mount %s on `%s`", op->source, op->dest);
      close (fd);
      break;

    case OP_BIND_DEV:
      if (bind_mount (rootfd, op->source, op->dest, false, false, 0, &what) < 0)
        child_fail (c, errno, "%s `%s` on `%s`", what, op->source, op->dest);
      break;

    case OP_SYMLINK:
      {
        const char *slash = strrchr (op->dest, '/');
        char parent[PATH_MAX];
        size_t plen = (size_t) (slash - op->dest);
        if (plen >= sizeof parent)
          child_fail (c, ENAMETOOLONG, "symlink `%s`", op->dest);
        memcpy (parent, op->dest, plen);
        parent[plen] = '\0';
        fd = ob_sandbox_open_in_root (rootfd, plen ? parent : "/", O_PATH | O_DIRECTORY);
        if (fd < 0 || (symlinkat (op->source, fd, slash + 1) < 0 && errno != EEXIST))
          child_fail (c, errno, "symlink `%s` -> `%s`", op->dest, op->source);
        close (fd);
      }
      break;

    case OP_BIND_SYS:
      /* The host's sysfs, read-only.  A fresh sysfs needs the network
       * namespace's owner, which a rootless build is not. */
      if (bind_mount (rootfd, op->source, op->dest, true, true,
                      MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, &what)
          == 0)
        break;
      if (strcmp (what, "remount") == 0)
        {
          /* Bound but still writable: never leave that. */
          fd = ob_sandbox_open_in_root (rootfd, op->dest, O_PATH | O_DIRECTORY);
          if (fd < 0)
            child_fail (c, errno, "open `%s`", op->dest);
          ob_sandbox_fd_path (path, sizeof path, fd);
          if (umount2 (path, MNT_DETACH) < 0)
            child_fail (c, errno, "unmount writable `%s`", op->dest);
          close (fd);
        }
      /* Cannot be bound at all: an empty read-only /sys. */
      fd = ob_sandbox_open_in_root (rootfd, op->dest, O_PATH | O_DIRECTORY);
      if (fd < 0)
        child_fail (c, errno, "open mount point `%s`", op->dest);
      ob_sandbox_fd_path (path, sizeof path, fd);
      if (mount ("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                 "mode=0555,size=4k")
          < 0)
        child_fail (c, errno, "mount tmpfs on `%s`", op->dest);
      close (fd);
      break;

    case OP_BIND:
      /* nodev as the root: a bind of an image's or a stage's unpacked
       * layer (RUN --mount=from=), which root mode keeps device nodes in,
       * must open no host device either */
      if (bind_mount (rootfd, op->source, op->dest, true, op->readonly, MOUNT_ATTR_NODEV, &what) < 0)
        child_fail (c, errno, "%s `%s` on `%s`%s", what, op->source, op->dest,
                    strcmp (what, "remount") == 0 ? (op->readonly ? " read-only, nodev" : " nodev") : "");
      break;
    }
}

/* What runc hides from a container: kernel memory, keys, timers, ACPI and
 * SCSI control (empty), and the kernel's tunables (read-only). */
static const char *const masked_paths[] = {
  "/proc/acpi",        "/proc/asound",    "/proc/kcore",     "/proc/keys",
  "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
  "/proc/scsi",        "/sys/firmware",   "/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
  "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

/* In init, after pivot_root: the paths above are below the sandbox's own
 * /proc and /sys mounts, never the image's.  A missing one is fine; one that
 * cannot be masked fails the step. */
static void
mask_paths (const struct sandbox_ctx *c)
{
  const char *what;
  int rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);

  if (rootfd < 0)
    child_fail (c, errno, "open `/`");
  for (size_t i = 0; i < sizeof masked_paths / sizeof masked_paths[0]; i++)
    {
      const char *p = masked_paths[i];
      struct stat st;
      int r;
      if (lstat (p, &st) < 0)
        {
          if (errno == ENOENT || errno == EACCES)
            continue;
          child_fail (c, errno, "mask `%s`", p);
        }
      if (S_ISDIR (st.st_mode))
        r = mount ("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   "mode=0555,size=4k");
      else
        r = mount ("/dev/null", p, "none", MS_BIND, NULL);
      if (r < 0)
        child_fail (c, errno, "mask `%s`", p);
    }
  for (size_t i = 0; i < sizeof readonly_paths / sizeof readonly_paths[0]; i++)
    {
      const char *p = readonly_paths[i];
      if (access (p, F_OK) < 0)
        continue;
      if (bind_mount (rootfd, p, p, true, true, 0, &what) < 0)
        child_fail (c, errno, "%s `%s` read-only", what, p);
    }
  close (rootfd);
}

/* The root's own mount gets nodev. */
static void
set_nodev (const struct sandbox_ctx *c, int rootfd, const char *rootfs)
{
  struct mount_attr attr = { 0 };
  char path[64];

  attr.attr_set = MOUNT_ATTR_NODEV;
  if (mount_setattr (rootfd, "", AT_EMPTY_PATH, &attr, sizeof attr) == 0)
    return;
  if (errno != ENOSYS && errno != EINVAL && errno != EPERM)
    child_fail (c, errno, "make rootfs `%s` nodev", rootfs);
  ob_sandbox_fd_path (path, sizeof path, rootfd);
  if (mount ("none", path, "none", MS_REMOUNT | MS_BIND | MS_NODEV | locked_flags (rootfd), NULL) < 0)
    child_fail (c, errno, "make rootfs `%s` nodev", rootfs);
}

static void
bring_up_loopback (const struct sandbox_ctx *c)
{
  struct ifreq ifr;
  int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    child_fail (c, errno, "bring up `lo`: socket");
  memset (&ifr, 0, sizeof ifr);
  strcpy (ifr.ifr_name, "lo");
  if (ioctl (fd, SIOCGIFFLAGS, &ifr) < 0)
    child_fail (c, errno, "bring up `lo`: get flags");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl (fd, SIOCSIFFLAGS, &ifr) < 0)
    child_fail (c, errno, "bring up `lo`");
  close (fd);
}

static void
reset_signals (void)
{
  struct sigaction sa;
  sigset_t none;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    (void) sigaction (sig, &sa, NULL); /* EINVAL for KILL, STOP, glibc's own */
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
}

/* Move fd to a number >= 3 (CLOEXEC) so dup2 into 0..2 never clobbers
 * another of the three sources and always clears CLOEXEC on the target. */
static int
lift_fd (const struct sandbox_ctx *c, int fd, const char *what)
{
  int r;
  if (fd < 0)
    return -1;
  r = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  if (r < 0)
    child_fail (c, errno, "duplicate %s", what);
  return r;
}

/* chdir to the step's working directory, resolved inside the root: ".."
 * and symlinks stay in it and magic links (/proc/self/fd/N, /proc/1/cwd)
 * are refused, so `WORKDIR /proc/self/fd/3` cannot lead outside.  The
 * result is checked again: a directory not below the root has no path
 * from it (getcwd fails or says "(unreachable)"). */
static void
enter_workdir (const struct sandbox_ctx *c, const char *cwd)
{
  char buf[PATH_MAX];
  int rootfd, fd;

  rootfd = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    child_fail (c, errno, "open `/`");
  fd = ob_sandbox_open_in_root (rootfd, cwd, O_DIRECTORY);
  if (fd < 0)
    child_fail (c, errno, "working directory `%s`", cwd);
  if (fchdir (fd) < 0)
    child_fail (c, errno, "chdir to working directory `%s`", cwd);
  close (fd);
  close (rootfd);
  if (getcwd (buf, sizeof buf) == NULL || buf[0] != '/')
    child_fail (c, EXDEV, "working directory `%s` is outside the step's root", cwd);
}

/* The command process: after this the step's own code runs. */
static _Noreturn void
command_main (const struct sandbox_ctx *c, int gate)
{
  const struct ob_sandbox_opts *o = c->opts;
  int in, out, errfd;

  reset_signals ();
  if (o->no_namespaces)
    prctl (PR_SET_PDEATHSIG, SIGKILL); /* no namespace to die with init */

  in = lift_fd (c, o->stdin_fd >= 0 ? o->stdin_fd : c->devnull_fd, "stdin");
  out = lift_fd (c, o->stdout_fd, "stdout");
  errfd = lift_fd (c, o->stderr_fd, "stderr");
  if (dup2 (in, 0) < 0)
    child_fail (c, errno, "redirect stdin");
  /* a terminal on stdin becomes the command's controlling terminal, in a
   * session of its own: ^C typed there signals the command's group */
  if (o->tty && (setsid () < 0 || ioctl (0, TIOCSCTTY, 0) < 0))
    child_fail (c, errno, "make stdin the controlling terminal");
  if (out >= 0 && dup2 (out, 1) < 0)
    child_fail (c, errno, "redirect stdout");
  if (errfd >= 0 && dup2 (errfd, 2) < 0)
    child_fail (c, errno, "redirect stderr");

  /* The command inherits 0, 1, 2 only.  Everything else is closed now,
   * before the working directory is resolved: an open directory of
   * obuild's would be a way out through /proc/self/fd.  The error pipe
   * stays usable until exec. */
  {
    const int keep[] = { 0, 1, 2, c->err_fd, c->notify_fd, gate };
    close_fds_except (keep, sizeof keep / sizeof keep[0]);
  }
  /* the step gets the limit on open files obuild started with */
  ob_nofile_restore ();

  if (drop_capabilities () < 0)
    child_fail (c, errno, "drop capabilities");
  if (o->set_groups && setgroups (o->n_groups, o->groups) < 0)
    child_fail (c, errno, "setgroups");
  if (setresgid (o->gid, o->gid, o->gid) < 0)
    child_fail (c, errno, "setresgid %u", (unsigned) o->gid);
  if (setresuid (o->uid, o->uid, o->uid) < 0)
    child_fail (c, errno, "setresuid %u", (unsigned) o->uid);
  enter_workdir (c, o->cwd ? o->cwd : "/");

  if (o->seccomp != NULL)
    {
      int r = ob_seccomp_load (o->seccomp);
      if (r < 0)
        child_fail (c, -r, "load seccomp filter");
      if (o->seccomp->notify)
        {
          /* the listener goes to obuild's supervisor, never to the step */
          int s = ob_seccomp_notify_send (c->notify_fd, r);
          if (s < 0)
            child_fail (c, -s, "send the seccomp listener");
          close (r);
          close (c->notify_fd);
        }
    }

  /* execvp looks argv[0] up in the step's PATH, not obuild's. */
  {
    static char *empty_env[] = { NULL };
    environ = o->env ? (char **) o->env : empty_env;
  }
  /* The step's code starts only once init has closed what it held (EOF on
   * the gate): nothing of obuild's is ever listed in /proc/1/fd. */
  {
    char b;
    while (read (gate, &b, 1) < 0 && errno == EINTR)
      ;
    close (gate);
  }
  execvp (o->argv[0], o->argv);
  child_fail (c, errno, "exec `%s`", o->argv[0]);
}

/* The signals PID 1 handles synchronously: SIGCHLD to reap, the others to
 * forward to the command. */
static void
init_signals (sigset_t *set)
{
  sigemptyset (set);
  sigaddset (set, SIGCHLD);
  sigaddset (set, SIGTERM);
  sigaddset (set, SIGINT);
  sigaddset (set, SIGHUP);
  sigaddset (set, SIGQUIT);
  sigaddset (set, SIGUSR1);
  sigaddset (set, SIGUSR2);
  /* and what an image's StopSignal may name (`obuild run` forwards it);
   * glibc refuses its own real-time signals */
  sigaddset (set, SIGWINCH);
  sigaddset (set, SIGPWR);
  sigaddset (set, SIGURG);
  for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
    sigaddset (set, sig);
}

/* Without a PID namespace: SIGKILL every descendant (a subreaper gets
 * the orphans), until none is left.  Allocation-free. */
static void
kill_descendants (void)
{
  char path[64], buf[4096];
  for (int round = 0; round < 1000; round++)
    {
      int fd, st;
      ssize_t n;
      bool any = false;
      snprintf (path, sizeof path, "/proc/self/task/%d/children", (int) getpid ());
      fd = open (path, O_RDONLY | O_CLOEXEC);
      n = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
      if (fd >= 0)
        close (fd);
      if (n > 0)
        {
          char *p = buf;
          buf[n] = '\0';
          while (*p)
            {
              char *end;
              long pid = strtol (p, &end, 10);
              if (end == p)
                break;
              if (pid > 0)
                {
                  kill ((pid_t) pid, SIGKILL);
                  any = true;
                }
              p = end;
              while (*p == ' ' || *p == '\n')
                p++;
            }
        }
      while (waitpid (-1, &st, any ? 0 : WNOHANG) > 0)
        any = false; /* reaped one; look again */
      if (waitpid (-1, &st, WNOHANG) < 0 && errno == ECHILD)
        return;
    }
}

/* PID 1: reap everything, forward signals, exit with the command's status. */
static _Noreturn void
init_loop (const struct sandbox_ctx *c, pid_t cmd)
{
  sigset_t set;

  init_signals (&set);
  /* PID 1 needs no descriptor from now on: none stays reachable through
   * /proc/1/fd. */
  (void) c;
  close_span (0, ~0U);

  for (;;)
    {
      siginfo_t si;
      int sig = sigwaitinfo (&set, &si);
      if (sig < 0)
        continue; /* EINTR */
      if (sig != SIGCHLD)
        {
          kill (cmd, sig);
          continue;
        }
      for (;;)
        {
          int st;
          pid_t p = waitpid (-1, &st, WNOHANG);
          if (p <= 0)
            break;
          if (p == cmd)
            {
              int code = WIFSIGNALED (st) ? 128 + WTERMSIG (st) : WEXITSTATUS (st);
              /* Like Docker: the step ends with its command; what it left
               * running in the background dies with the namespace (without
               * one: with us, its subreaper). */
              if (c->opts->no_namespaces)
                kill_descendants ();
              else
                kill (-1, SIGKILL);
              _exit (code);
            }
        }
    }
}

/* Fork the command and stay its PID 1 until it exits. */
static _Noreturn void
run_command (const struct sandbox_ctx *c)
{
  sigset_t set;
  pid_t cmd;
  int gate[2];

  /* Block before forking: no SIGCHLD can be missed. */
  init_signals (&set);
  sigprocmask (SIG_BLOCK, &set, NULL);
  /* init_loop closes the write end with everything else */
  if (pipe2 (gate, O_CLOEXEC) < 0)
    child_fail (c, errno, "make the command's start gate");
  cmd = fork ();
  if (cmd < 0)
    child_fail (c, errno, "fork the command");
  if (cmd == 0)
    {
      close (gate[1]);
      command_main (c, gate[0]);
    }
  init_loop (c, cmd);
}

static _Noreturn void
init_main (const struct sandbox_ctx *c)
{
  const struct ob_sandbox_opts *o = c->opts;
  int rootfd;

  /* The step must not outlive obuild. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  reset_signals ();
  /* Signals to forward stay pending until init waits for them: the kernel
   * drops what a namespace's init neither handles nor blocks. */
  {
    sigset_t fwd;
    init_signals (&fwd);
    sigprocmask (SIG_BLOCK, &fwd, NULL);
  }

  if (c->sync_fd >= 0)
    {
      /* A new user namespace: wait until the parent has written its maps
       * (EOF without a byte: it failed and reports why). */
      char b;
      ssize_t r;
      do
        r = read (c->sync_fd, &b, 1);
      while (r < 0 && errno == EINTR);
      if (r != 1)
        _exit (127);
    }
  /* Nothing of obuild's may stay open in the step's namespaces: the store,
   * the context and scratch directories would be ways out through
   * /proc/N/fd.  Non-dumpable, so the step cannot read our /proc/1/fd
   * during the short time before init closes the rest. */
  {
    const int keep[] = { 0, 1, 2, c->err_fd, c->devnull_fd, o->stdin_fd, o->stdout_fd, o->stderr_fd,
                         c->notify_fd };
    close_fds_except (keep, sizeof keep / sizeof keep[0]);
  }
  prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
  /* ob_sandbox_interrupt kills the whole group */
  setpgid (0, 0);
  if (o->no_namespaces)
    {
      /* --isolation=container: the container is the isolation; orphans of
       * the step come back to us, to be killed with it */
      if (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        child_fail (c, errno, "become a subreaper");
      run_command (c);
    }

  if (mount ("none", "/", "none", MS_SLAVE | MS_REC, NULL) < 0)
    child_fail (c, errno, "make `/` a recursive slave mount");
  /* pivot_root needs a mount point; the caller's rootfs may be a plain
   * directory. */
  if (mount (o->rootfs, o->rootfs, "none", MS_BIND | MS_REC, NULL) < 0)
    child_fail (c, errno, "bind rootfs `%s`", o->rootfs);
  /* Opened after the bind: mounts must land in the new mount, not under it. */
  rootfd = open (o->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    child_fail (c, errno, "open rootfs `%s`", o->rootfs);
  /* Device nodes of the image (a hostile base layer may carry c 1 11, the
   * host's kernel log) open nothing: the step's devices are the ones in
   * its own /dev, separate mounts. */
  set_nodev (c, rootfd, o->rootfs);

  for (size_t i = 0; i < c->n_ops; i++)
    run_op (c, rootfd, &c->ops[i]);

  /* pivot_root (".", ".") stacks the old root on the new one; detaching it
   * leaves no directory (/.oldroot) in the layer. */
  if (fchdir (rootfd) < 0)
    child_fail (c, errno, "chdir to rootfs `%s`", o->rootfs);
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    child_fail (c, errno, "pivot_root to `%s`", o->rootfs);
  if (mount ("none", ".", "none", MS_SLAVE | MS_REC, NULL) < 0)
    child_fail (c, errno, "make the old root a slave mount");
  if (umount2 (".", MNT_DETACH) < 0)
    child_fail (c, errno, "detach the old root");
  if (chdir ("/") < 0)
    child_fail (c, errno, "chdir to `/`");
  close (rootfd);
  mask_paths (c);

  if (o->hostname != NULL && sethostname (o->hostname, strlen (o->hostname)) < 0)
    child_fail (c, errno, "sethostname `%s`", o->hostname);
  if (o->network_none)
    bring_up_loopback (c);

  run_command (c);
}

/* ---- parent side ---- */

static void
add_op (struct sandbox_op **ops, size_t *n, struct sandbox_op op)
{
  *ops = ob_xrealloc (*ops, (*n + 1) * sizeof **ops);
  (*ops)[(*n)++] = op;
}

static struct sandbox_op *
build_ops (const struct ob_sandbox_opts *o, size_t *n)
{
  static const char *const nodes[][2] = {
    { "/dev/null", "/dev/null" },       { "/dev/zero", "/dev/zero" },
    { "/dev/full", "/dev/full" },       { "/dev/random", "/dev/random" },
    { "/dev/urandom", "/dev/urandom" }, { "/dev/tty", "/dev/tty" },
  };
  static const char *const links[][2] = {
    { "pts/ptmx", "/dev/ptmx" },          { "/proc/self/fd", "/dev/fd" },
    { "/proc/self/fd/0", "/dev/stdin" },  { "/proc/self/fd/1", "/dev/stdout" },
    { "/proc/self/fd/2", "/dev/stderr" },
  };
  struct sandbox_op *ops = NULL;
  size_t i;

  *n = 0;
  add_op (&ops, n,
          (struct sandbox_op) { .kind = OP_MOUNT_PROC, .source = "proc", .dest = "/proc",
                                .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC });
  add_op (&ops, n,
          (struct sandbox_op) { .kind = OP_MOUNT_TMPFS, .source = "tmpfs", .dest = "/dev",
                                .data = "mode=0755,size=65536k",
                                .flags = MS_NOSUID | MS_STRICTATIME });
  for (i = 0; i < sizeof nodes / sizeof nodes[0]; i++)
    add_op (&ops, n,
            (struct sandbox_op) { .kind = OP_BIND_DEV, .source = nodes[i][0],
                                  .dest = nodes[i][1], .create = MP_FILE });
  add_op (&ops, n,
          (struct sandbox_op) { .kind = OP_MOUNT_DEVPTS, .source = "devpts", .dest = "/dev/pts",
                                .data = "newinstance,ptmxmode=0666,mode=0620,gid=5",
                                .flags = MS_NOSUID | MS_NOEXEC, .create = MP_DIR });
  add_op (&ops, n,
          (struct sandbox_op) { .kind = OP_MOUNT_TMPFS, .source = "tmpfs", .dest = "/dev/shm",
                                .data = "mode=1777,size=65536k",
                                .flags = MS_NOSUID | MS_NODEV | MS_NOEXEC, .create = MP_DIR });
  for (i = 0; i < sizeof links / sizeof links[0]; i++)
    add_op (&ops, n,
            (struct sandbox_op) { .kind = OP_SYMLINK, .source = links[i][0],
                                  .dest = links[i][1] });
  add_op (&ops, n, (struct sandbox_op) { .kind = OP_BIND_SYS, .source = "/sys", .dest = "/sys" });
  for (i = 0; i < o->n_mounts; i++)
    add_op (&ops, n,
            (struct sandbox_op) { .kind = OP_BIND, .source = o->mounts[i].source,
                                  .dest = o->mounts[i].target,
                                  .readonly = o->mounts[i].readonly });
  return ops;
}

static int
check_opts (const struct ob_sandbox_opts *o, ob_error_t *err)
{
  if (o->rootfs == NULL || o->rootfs[0] == '\0')
    return ob_error_make (err, OB_ERR_GENERIC, EINVAL, "sandbox: no rootfs");
  if (o->argv == NULL || o->argv[0] == NULL || o->argv[0][0] == '\0')
    return ob_error_make (err, OB_ERR_STEP, 0, "empty command");
  if (o->no_namespaces && (o->n_mounts > 0 || o->network_none || o->identity_userns || strcmp (o->rootfs, "/") != 0))
    return ob_error_make (err, OB_ERR_GENERIC, EINVAL, "sandbox: no namespaces, but mounts, a network or a root asked for");
  for (size_t i = 0; i < o->n_mounts; i++)
    {
      const char *t = o->mounts[i].target;
      if (o->mounts[i].source == NULL || t == NULL || t[0] != '/')
        return ob_error_make (err, OB_ERR_STEP, EINVAL, "mount target `%s`",
                              t ? t : "(null)");
      if (strcmp (t, "/") == 0 || strcmp (t, "/proc") == 0 || ob_str_has_prefix (t, "/proc/")
          || strcmp (t, "/dev") == 0 || ob_str_has_prefix (t, "/dev/"))
        return ob_error_make (err, OB_ERR_STEP, 0,
                              "mount target `%s`: cannot mount over the root, /proc or /dev", t);
    }
  return 0;
}

/* Map every uid and gid of the step's new user namespace to itself, then
 * let its init go on. */
static int
map_identity (pid_t pid, int sync_w, ob_error_t *err)
{
  static const char map[] = "0 0 4294967295\n";
  const char *files[] = { "uid_map", "gid_map" };

  for (size_t i = 0; i < 2; i++)
    {
      char path[64];
      cleanup_close int fd = -1;
      snprintf (path, sizeof path, "/proc/%d/%s", (int) pid, files[i]);
      fd = open (path, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write (fd, map, sizeof map - 1) != (ssize_t) (sizeof map - 1))
        return ob_error_make (err, OB_ERR_STEP, errno, "write `%s`", path);
    }
  if (write (sync_w, "1", 1) != 1)
    return ob_error_make (err, OB_ERR_STEP, errno, "start the step");
  return 0;
}

static int
wait_init (pid_t pid, int *wstatus)
{
  for (;;)
    {
      pid_t r = waitpid (pid, wstatus, __WALL);
      if (r == pid)
        return 0;
      if (r < 0 && errno != EINTR)
        return -1;
    }
}

int
ob_sandbox_run (const struct ob_sandbox_opts *opts, int *status, char ***created,
                ob_error_t *err)
{
  cleanup_strv char **made = NULL;
  cleanup_free struct sandbox_op *ops = NULL;
  cleanup_close int rootfd = -1;
  cleanup_close int devnull = -1;
  cleanup_close int rpipe = -1;
  cleanup_close int wpipe = -1;
  cleanup_close int sync_r = -1;
  cleanup_close int sync_w = -1;
  cleanup_close int notify_child = -1;
  int notify_parent = -1;
  struct ob_seccomp_notify *supervisor = NULL;
  struct sandbox_ctx ctx;
  struct child_error rec;
  unsigned long flags;
  int fds[2], wstatus, ret;
  ssize_t n;
  pid_t pid;

  if (created)
    *created = NULL;
  if (status)
    *status = -1;
  if (check_opts (opts, err) < 0)
    return -1;
  if (interrupted)
    {
      interrupted = 0;
      return ob_error_make (err, OB_ERR_INTERRUPTED, 0, "interrupted");
    }

  rootfd = open (opts->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return ob_error_make (err, OB_ERR_STEP, errno, "open rootfs `%s`", opts->rootfs);
  ret = opts->no_namespaces ? 0 : ob_sandbox_prepare_mount_points (opts, rootfd, &made, err);
  /* Whatever was created belongs to the caller now, even on failure. */
  if (created)
    *created = steal_pointer (&made);
  if (ret < 0)
    return -1;

  devnull = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0)
    return ob_error_make (err, OB_ERR_STEP, errno, "open `/dev/null`");
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return ob_error_make (err, OB_ERR_STEP, errno, "pipe");
  rpipe = fds[0];
  wpipe = fds[1];

  memset (&ctx, 0, sizeof ctx);
  ctx.opts = opts;
  ctx.ops = ops = build_ops (opts, &ctx.n_ops);
  ctx.err_fd = wpipe;
  ctx.devnull_fd = devnull;
  ctx.sync_fd = -1;
  ctx.notify_fd = -1;
  if (opts->seccomp != NULL && opts->seccomp->notify)
    {
      /* the command sends its seccomp listener through this pair to the
       * supervisor thread (seccomp_notify.c), which records chown owners */
      if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
        return ob_error_make (err, OB_ERR_STEP, errno, "socketpair");
      notify_parent = fds[0];
      ctx.notify_fd = notify_child = fds[1];
    }

  flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
  if (opts->no_namespaces)
    flags = SIGCHLD;
  if (opts->network_none)
    flags |= CLONE_NEWNET;
  if (opts->identity_userns)
    {
      if (pipe2 (fds, O_CLOEXEC) < 0)
        return ob_error_make (err, OB_ERR_STEP, errno, "pipe");
      sync_r = fds[0];
      sync_w = fds[1];
      ctx.sync_fd = sync_r;
      flags |= CLONE_NEWUSER;
    }
  pid = (pid_t) raw_clone (flags);
  if (pid < 0)
    {
      if (notify_parent >= 0)
        close (notify_parent);
      return ob_error_make (err, OB_ERR_STEP, errno,
                            "clone the step's namespaces (%spid, mount, uts, ipc%s)",
                            opts->identity_userns ? "user, " : "", opts->network_none ? ", net" : "");
    }
  if (pid == 0)
    {
      close (rpipe);
      if (sync_w >= 0)
        close (sync_w);
      if (notify_parent >= 0)
        close (notify_parent);
      init_main (&ctx);
    }
  if (notify_parent >= 0)
    {
      close (ob_steal_fd (&notify_child));
      if (ob_seccomp_notify_start (notify_parent, &supervisor, err) < 0)
        {
          kill (pid, SIGKILL);
          (void) wait_init (pid, &wstatus);
          return -1;
        }
    }
  if (opts->identity_userns && map_identity (pid, sync_w, err) < 0)
    {
      kill (pid, SIGKILL);
      (void) wait_init (pid, &wstatus);
      ob_seccomp_notify_stop (supervisor);
      return -1;
    }

  running_pid = pid;
  if (interrupted)
    kill (pid, SIGKILL);
  close (ob_steal_fd (&wpipe));
  if (opts->started)
    opts->started (opts->started_data);

  ret = wait_init (pid, &wstatus);
  running_pid = 0;
  /* the step's PID namespace died with its init: no call is left to answer */
  ob_seccomp_notify_stop (supervisor);
  if (ret < 0)
    return ob_error_make (err, OB_ERR_STEP, errno, "wait for the step");

  /* Every writer is gone: the pipe holds a record or nothing. */
  do
    n = read (rpipe, &rec, sizeof rec);
  while (n < 0 && errno == EINTR);

  if (interrupted)
    {
      interrupted = 0;
      return ob_error_make (err, OB_ERR_INTERRUPTED, 0, "interrupted");
    }
  if (n == (ssize_t) sizeof rec)
    {
      rec.text[sizeof rec.text - 1] = '\0';
      return ob_error_make (err, OB_ERR_STEP, rec.errnum, "%s", rec.text);
    }
  if (WIFSIGNALED (wstatus))
    return ob_error_make (err, OB_ERR_STEP, 0, "the step's init was killed by signal %d",
                          WTERMSIG (wstatus));
  if (status)
    *status = WEXITSTATUS (wstatus);
  return 0;
}

void
ob_sandbox_interrupt (void)
{
  pid_t pid = running_pid;
  int saved = errno;
  interrupted = 1;
  if (pid > 0)
    {
      kill (-pid, SIGKILL); /* without a PID namespace: the step's process group */
      kill (pid, SIGKILL);
    }
  errno = saved;
}

bool
ob_sandbox_signal (int sig)
{
  pid_t pid = running_pid;
  int saved = errno;
  bool sent = pid > 0 && kill (pid, sig) == 0;
  errno = saved;
  return sent;
}
