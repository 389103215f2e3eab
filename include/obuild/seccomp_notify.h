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
 * (overlayfs copies a lower file up).  Symlinks and special files cannot
 * carry a user.* xattr: their owner stays root (the call succeeds).
 * Every request is answered before the next one is read: a flood of calls
 * costs time, not memory. */
#ifndef OBUILD_SECCOMP_NOTIFY_H
#define OBUILD_SECCOMP_NOTIFY_H

#include <obuild/error.h>

#include <stdbool.h>

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

#endif
