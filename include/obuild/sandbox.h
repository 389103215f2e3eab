/* sandbox: run one RUN step.  The caller (build) has already entered the
 * build's user namespace and mounted the step's root filesystem (an overlay)
 * at opts->rootfs.  ob_sandbox_run clones a child in new PID, mount, UTS and
 * IPC namespaces (and a network namespace with only loopback up when
 * network_none), which:
 *   - makes every mount private, mounts /proc (fresh), a tmpfs /dev with the
 *     host's null zero full random urandom tty bind-mounted, /dev/pts
 *     (devpts newinstance, /dev/ptmx -> pts/ptmx), /dev/shm (tmpfs),
 *     /dev/fd, stdin, stdout, stderr symlinks, /sys (read-only bind of the
 *     host's), and the caller's extra bind mounts (resolv.conf, hosts,
 *     hostname, ...);
 *   - pivot_roots into rootfs and detaches the old root: no host path is
 *     visible other than those; masks what runc masks in /proc and /sys
 *     (/proc/kcore, /proc/keys, ... empty; /proc/sys, /proc/irq,
 *     /proc/bus, /proc/sysrq-trigger read-only);
 *   - closes every descriptor it inherited except the step's stdio, and
 *     makes itself non-dumpable, so nothing of obuild's (store, context,
 *     scratch directories) is reachable through /proc/N/fd;
 *   - sets the hostname, then as PID 1 of the namespace forks the command,
 *     reaps every orphan, and exits with the command's status;
 *   - in the command process: drops every capability outside Docker's
 *     default set (bounding, permitted, effective, inheritable, ambient),
 *     setgroups/setgid/setuid to the step's user, resolves the working
 *     directory inside the root (openat2 RESOLVE_IN_ROOT, no magic links:
 *     `WORKDIR /proc/self/fd/N` fails), fchdirs to it and checks that the
 *     result is below the root, loads the seccomp program (no_new_privs),
 *     execs argv with env (argv[0] looked up in env's PATH when it has no
 *     '/').
 * With identity_userns (obuild runs as real root), the namespaces are
 * created inside a new user namespace mapping every id to itself: files
 * keep their owners, but the step holds no capability over the host
 * (sysctls, devices, modules, raw I/O are refused by the kernel).
 * Mount points missing from rootfs (e.g. /proc on a scratch image, or
 * /etc/hosts) are created and reported in *created so the caller can remove
 * them from the layer: they never belong to the step's change. */
#ifndef OBUILD_SANDBOX_H
#define OBUILD_SANDBOX_H

#include <obuild/error.h>
#include <obuild/seccomp.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct ob_sandbox_mount
{
  const char *source; /* host path (file or directory) */
  const char *target; /* absolute path inside the root */
  bool readonly;
};

struct ob_sandbox_opts
{
  const char *rootfs;  /* host path of the prepared root filesystem */
  char *const *argv;   /* NULL-terminated */
  char *const *env;    /* NULL-terminated "K=V" */
  const char *cwd;     /* inside the root, must exist; NULL: "/" */
  uid_t uid;
  gid_t gid;
  const gid_t *groups; /* supplementary groups (ignored when !set_groups) */
  size_t n_groups;
  bool set_groups;     /* false in single-ID mode, where setgroups is denied */
  const char *hostname; /* NULL: keep the inherited one */
  bool network_none;
  bool identity_userns; /* real root: a new user namespace, ids mapped 1:1 */
  bool no_namespaces;   /* --isolation=container: no namespace and no mount at
                         * all; the command runs in the caller's root (rootfs
                         * must be "/", no mounts, no network_none); init is a
                         * subreaper that kills only its own descendants */
  const struct ob_seccomp_prog *seccomp; /* may be NULL (no filter) */
  const struct ob_sandbox_mount *mounts; /* targets must not be /, or under
                                           * /proc or /dev (those are the
                                           * sandbox's own) */
  size_t n_mounts;
  int stdin_fd;  /* -1: /dev/null */
  int stdout_fd; /* -1: inherit */
  int stderr_fd; /* -1: inherit */
  bool tty;      /* stdin_fd is a terminal: the command gets a session of its
                  * own with it as controlling terminal */
  /* called in obuild once the step's process exists, before waiting for
   * it (or NULL): where to start threads that work while the step runs.
   * A thread started before the clone could hold a lock (malloc's) the
   * child then waits for forever, in its fork of the command. */
  void (*started) (void *data);
  void *started_data;
};

/* Run the step.  Returns 0 when the command ran (whatever its status) and
 * sets *status like a shell: the exit code, or 128+N when killed by signal
 * N.  Returns < 0 when the sandbox could not be set up (the error names the
 * failing operation and path, e.g. "mount proc on `/proc`: Permission
 * denied") or was interrupted (OB_ERR_INTERRUPTED, after the step's whole
 * PID namespace was killed).  *created (may be NULL) receives the paths
 * (absolute inside the root, parents first) of mount points it had to
 * create: a NULL-terminated vector the caller frees with ob_strv_free (NULL
 * when none), set on failure too.  Paths are physical: a mount target
 * reached through a symlink inside the root (/etc/resolv.conf ->
 * ../run/resolv.conf) is reported as its resolved path (/run/resolv.conf).
 * A failure of the command's exec (missing binary, ...) is a setup failure,
 * not an exit status. */
int ob_sandbox_run (const struct ob_sandbox_opts *opts, int *status, char ***created,
                    ob_error_t *err);

/* Async-signal-safe: kill the running step (if any) and make
 * ob_sandbox_run return OB_ERR_INTERRUPTED.  Called from obuild's
 * SIGINT/SIGTERM handler.  An interrupt that arrives while no step runs
 * makes the next ob_sandbox_run return OB_ERR_INTERRUPTED at once; the
 * pending interrupt is consumed by the run that reports it. */
void ob_sandbox_interrupt (void);

/* Async-signal-safe: send sig to the running step's init, which forwards
 * SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGPWR,
 * SIGURG and the real-time signals to the command (SIGKILL kills the whole
 * step).  False when no step runs.  A signal sent while init still sets
 * up the step is forwarded once the command started. */
bool ob_sandbox_signal (int sig);

#endif
