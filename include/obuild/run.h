/* run: `obuild run`.  Starts a command from an image of the store in the
 * same sandbox as a RUN step (sandbox.h): the image's unpacked layers under
 * an overlay with a throwaway upper directory, fresh PID, mount, UTS and
 * IPC namespaces (and a network namespace with only loopback for
 * network_none; the host's network otherwise), the RUN steps' seccomp
 * program, capabilities and masked paths.  The image's Entrypoint, Cmd,
 * Env, WorkingDir, User and StopSignal apply as in Docker.
 *
 * Nothing survives the run: the overlay lives in obuild's private mount
 * namespace, the command's PID namespace dies with its init (which dies
 * with obuild), and the scratch directory (upper, work, the files bound on
 * /etc/hosts and /etc/hostname) is a .obuild-<pid>-* directory of the
 * store's tmp/, removed by ob_run_free, or by the next ob_store_open once
 * the process that made it is gone (SIGKILL). */
#ifndef OBUILD_RUN_H
#define OBUILD_RUN_H

#include <obuild/error.h>
#include <obuild/sandbox.h>
#include <obuild/store.h>

#include <stdbool.h>

struct ob_run_opts
{
  struct ob_store *store;
  const char *image;      /* a tag of the store, a manifest digest or a unique prefix */
  char *const *cmd;       /* CMD [ARG...]: replaces the image's Cmd; NULL or empty: keep it */
  const char *entrypoint; /* --entrypoint: replaces Entrypoint and drops the image's Cmd
                           * ("" leaves no entrypoint); NULL: the image's */
  char *const *env;       /* "K=V" after the image's Env (a later K wins) */
  const char *workdir;    /* NULL: the image's WorkingDir, else "/"; created when missing */
  const char *user;       /* USER[:GROUP] (names or ids); NULL: the image's User */
  const struct ob_sandbox_mount *volumes; /* host sources must exist */
  size_t n_volumes;
  bool network_none;
  const char *hostname; /* NULL: "obuild" */
  int stdin_fd;         /* -1: /dev/null */
  int stdout_fd;        /* -1: inherit */
  int stderr_fd;        /* -1: inherit */
  bool tty;             /* stdin_fd is a terminal: the command's controlling one */
  /* the user-namespace mode obuild entered (cli_open_store) */
  bool userns_single;
  bool userns_root;
  const char *no_isolation; /* why a command cannot be isolated here, or NULL */
};

struct ob_run;

/* Everything short of starting the command: find the image (OB_ERR_IMAGE
 * when missing), check that it can be isolated (OB_ERR_USERNS), unpack its
 * layers, mount its root, resolve the user (OB_ERR_USAGE for an unknown -u,
 * OB_ERR_IMAGE for an image User that does not resolve), the environment,
 * the working directory and the command (OB_ERR_USAGE when there is none),
 * check the volumes (OB_ERR_CONTEXT for a missing source, OB_ERR_USAGE for
 * a target that is not absolute or is /, /proc or /dev). */
int ob_run_prepare (const struct ob_run_opts *o, struct ob_run **out, ob_error_t *err);
/* The signal that stops the command: the image's StopSignal, or SIGTERM. */
int ob_run_stop_signal (const struct ob_run *r);
/* Run the command; *status is its exit code, or 128+N when signal N
 * killed it.  A command that cannot be executed is an error of kind 127
 * (not found) or 126 (found, not executable), as in a shell; other setup
 * failures are OB_ERR_STEP; an interrupt (ob_sandbox_interrupt) is
 * OB_ERR_INTERRUPTED.  Signals for the command go through
 * ob_sandbox_signal while this runs. */
int ob_run_exec (struct ob_run *r, int *status, ob_error_t *err);
/* Unmount the root and remove the scratch directory. */
void ob_run_free (struct ob_run *r);

/* A signal by name ("SIGTERM", "TERM", case-insensitive, "SIGRTMIN+3") or
 * number; 0 when s names none. */
int ob_run_parse_signal (const char *s);

#endif
