/* seccomp_notify: exact file owners in single-ID mode.
 *
 * In a user namespace that maps only the invoking user (to 0), chown cannot
 * give a file another owner.  With ob_seccomp_build_owners, the chown
 * family (chown, lchown, fchown, fchownat and their 32-bit forms) of a RUN
 * step goes to a seccomp user notification listener; the supervisor here,
 * a thread of obuild outside the step's namespaces, resolves the file the
 * call names inside the calling process's root and records the owner in
 * OB_LAYER_OWNER_XATTR ("uid:gid"), which the layer writer puts into the
 * tar header.  The step sees the call succeed.
 *
 * The step is hostile: paths are read with process_vm_readv (at most
 * PATH_MAX bytes) and used only after seccomp_notify_id_valid says the
 * caller is still the one blocked in the call; they are resolved with
 * openat2 (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from the process's
 * /proc/PID/root, the last component not followed for lchown and
 * AT_SYMLINK_NOFOLLOW; only files on the step's root mount are recorded
 * (another read-only mount: EROFS; /proc and /sys: EPERM; any other mount,
 * e.g. a tmpfs: success without effect, as before).  A real
 * fchownat(-1, -1) on the file first does what chown does besides the ids
 * (overlayfs copies a lower file up).  Special files cannot carry a user.*
 * xattr: their owner stays root (the call succeeds).  Nor can symlinks: a
 * symlink's owner is recorded on its parent directory (link_owner.h),
 * resolved as the call's path was and checked to hold that very link on
 * the step's root mount; fchown of a symlink's O_PATH descriptor fails
 * with EBADF, as the kernel's.
 * Every request is answered before the next one is read: a flood of calls
 * costs time, not memory.
 *
 * The stat family (statx everywhere; stat, lstat, fstat and newfstatat
 * where OB_SECCOMP_NOTIFY_STRUCT_STAT says the native struct stat is
 * known) goes to the same supervisor, so that the step sees the owners
 * recorded: tools that copy an owner from stat (useradd, shadow's
 * commonio, fstats /etc/shadow and fchowns /etc/shadow+; sed -i; cp -p)
 * copy the recorded one, stat(1), ls -l and find -user show it.  The file
 * is resolved as for chown; one O_PATH openat2 and one getxattr decide.
 * When the file has no owner recorded, lies outside the step's root
 * mount, or the call is anything unusual (a flag the kernel would refuse,
 * a NULL or unreadable path, another architecture's call, an error while
 * resolving), the supervisor answers SECCOMP_USER_NOTIF_FLAG_CONTINUE and
 * the kernel performs the call itself, errors included (stat decides
 * nothing the step could abuse).  Otherwise the supervisor stats the file
 * itself, puts the recorded ids in and writes the result through
 * /proc/PID/mem, opened before the last seccomp_notify_id_valid: the
 * descriptor is bound to that process, so a reused pid is never written
 * to; only the sizeof struct stat (statx) bytes at the buffer the call
 * names are written, EFAULT where they are unmapped.  (As /proc/PID/mem
 * writes, a buffer in private read-only memory is written too, where the
 * kernel would give EFAULT: only the caller's own memory.)  Each stat call
 * costs a round trip through obuild, 5-10 us, most of it the two context
 * switches.
 *
 * mknod and mknodat of a character or block device go to the supervisor
 * too: a user namespace cannot make a device, so the supervisor makes an
 * empty regular file carrying OB_LAYER_DEVICE_XATTR ("c 1:3"), the call's
 * permission bits less the caller's umask (/proc/PID/status), which the
 * layer writer writes as the device and the stat family reports as one
 * (type, st_rdev, size 0).  The parent directory is resolved as for chown,
 * the name created with O_CREAT|O_EXCL|O_NOFOLLOW in it; only on the
 * step's root mount (another read-only mount: EROFS; /proc and /sys:
 * EPERM; any other mount: success without effect).  To every other call
 * (open, read, write, readdir's d_type) the placeholder is the empty
 * regular file it is. */
#ifndef OBUILD_SECCOMP_NOTIFY_H
#define OBUILD_SECCOMP_NOTIFY_H

#include <obuild/error.h>

#include <stdbool.h>
#include <stdint.h>

/* Whether the native struct stat of stat, lstat, fstat and newfstatat is
 * the C library's struct stat here (the supervisor writes it): checked for
 * x86_64 and aarch64.  Elsewhere only statx goes to the supervisor. */
#if defined(__x86_64__) || defined(__aarch64__)
#define OB_SECCOMP_NOTIFY_STRUCT_STAT 1
#else
#define OB_SECCOMP_NOTIFY_STRUCT_STAT 0
#endif

struct ob_seccomp_notify;

/* Whether this kernel (and libseccomp) can send calls to a listener
 * (Linux >= 5.0; openat2 is needed too, Linux >= 5.6) and a filter with a
 * listener can be loaded here (not under a container manager's own
 * listener).  Probed once, in a child process.
 * OBUILD_TEST_NO_SECCOMP_NOTIFY in the environment makes it false. */
bool ob_seccomp_notify_available (void);

/* Start the supervisor thread.  It takes sock (one end of an AF_UNIX
 * socketpair) and waits there for the listener the step's command sends
 * with ob_seccomp_notify_send.  OB_ERR_GENERIC when the thread cannot
 * start (sock is closed then too). */
int ob_seccomp_notify_start (int sock, struct ob_seccomp_notify **out, ob_error_t *err);

/* Stop the supervisor (after the step's processes are gone) and free it.
 * NULL is fine. */
void ob_seccomp_notify_stop (struct ob_seccomp_notify *n);

/* In the command process, after loading the filter: send the listener.
 * Async-signal-safe, allocates nothing.  0 or a negative errno. */
int ob_seccomp_notify_send (int sock, int listener);

/* ---- for the unit tests ---- */

/* The calls of the stat family the supervisor knows. */
enum ob_stat_kind
{
  OB_STAT_STAT,       /* stat (path, buf) */
  OB_STAT_LSTAT,      /* lstat (path, buf) */
  OB_STAT_FSTAT,      /* fstat (fd, buf) */
  OB_STAT_NEWFSTATAT, /* newfstatat (dirfd, path, buf, flags) */
  OB_STAT_STATX,      /* statx (dirfd, path, flags, mask, buf) */
};

/* What a stat call asks for. */
struct ob_stat_call
{
  bool statx;        /* writes a struct statx, else a struct stat */
  bool fd_only;      /* fstat: dirfd itself, no path */
  bool empty_path;   /* AT_EMPTY_PATH: "" names dirfd itself */
  bool nofollow;     /* lstat, AT_SYMLINK_NOFOLLOW */
  int dirfd;         /* AT_FDCWD or the process's descriptor */
  uint64_t path;     /* address in the process (not for fstat) */
  uint64_t buf;      /* where the result goes in the process */
  int sx_flags;      /* statx: AT_STATX_SYNC_TYPE and AT_NO_AUTOMOUNT bits */
  unsigned int mask; /* statx: the fields asked for */
};

/* Decode a call's six arguments.  0, or 1 when the kernel should perform
 * the call itself: flags or a mask it refuses (EINVAL), a NULL path or
 * buffer (EFAULT), fstat of a negative descriptor (EBADF). */
int ob_seccomp_notify_stat_decode (enum ob_stat_kind kind, const uint64_t args[6],
                                   struct ob_stat_call *c);

#endif
