/* obuild run: a command from an image of the store, in the RUN steps'
 * sandbox (include/obuild/run.h).  This side owns the terminal: -t gives
 * the command a pseudo-terminal relayed by a thread, the caller's
 * terminal in raw mode meanwhile; and the signals: SIGINT, SIGTERM (as the
 * image's StopSignal), SIGHUP and SIGQUIT go to the command. */
#include "config.h"
#include "cli.h"
#include <obuild/run.h>
#include <obuild/sandbox.h>
#include <obuild/store.h>
#include <obuild/userns.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

enum
{
  OPT_RM = 256,
  OPT_ENV_FILE,
  OPT_ENTRYPOINT,
  OPT_NETWORK,
  OPT_NAME,
  OPT_USERNS,
  OPT_STOP_TIMEOUT,
  OPT_HELP,
};

static const struct option run_options[] = {
  { "rm", no_argument, NULL, OPT_RM },
  { "interactive", no_argument, NULL, 'i' },
  { "tty", no_argument, NULL, 't' },
  { "env", required_argument, NULL, 'e' },
  { "env-file", required_argument, NULL, OPT_ENV_FILE },
  { "volume", required_argument, NULL, 'v' },
  { "workdir", required_argument, NULL, 'w' },
  { "user", required_argument, NULL, 'u' },
  { "entrypoint", required_argument, NULL, OPT_ENTRYPOINT },
  { "network", required_argument, NULL, OPT_NETWORK },
  { "name", required_argument, NULL, OPT_NAME },
  { "userns", required_argument, NULL, OPT_USERNS },
  { "stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT },
  { "help", no_argument, NULL, OPT_HELP },
  { NULL, 0, NULL, 0 },
};

static void
run_usage (void)
{
  printf ("Usage: obuild run [OPTIONS] IMAGE [COMMAND [ARG...]]\n\n"
          "Run a command from IMAGE (a tag of the store or a manifest digest) in the sandbox RUN steps\n"
          "use, on a throwaway copy of its file system, with the host's network.  The image's\n"
          "Entrypoint, Cmd, Env, WorkingDir, User and StopSignal apply; obuild exits with the\n"
          "command's status (128+N when signal N killed it).  See obuild-run(1).\n\n"
          "Options:\n"
          "      --rm                   accepted: a container is never kept\n"
          "  -i, --interactive          pass standard input to the command\n"
          "  -t, --tty                  give the command a pseudo-terminal\n"
          "  -e, --env K=V              set a variable (K alone: its value here, if set)\n"
          "      --env-file FILE        variables from FILE, one K=V a line\n"
          "  -v, --volume SRC:DST[:ro]  bind the host path SRC on DST (read-only with :ro)\n"
          "  -w, --workdir DIR          working directory (created when missing)\n"
          "  -u, --user USER[:GROUP]    user (names from the image's /etc/passwd, /etc/group)\n"
          "      --entrypoint CMD       replace the image's Entrypoint (and drop its Cmd)\n"
          "      --network host|none    the host's network (default) or loopback only\n"
          "      --name NAME            the container's hostname\n"
          "      --stop-timeout SECONDS after SIGINT or SIGTERM, SIGKILL the command if it has not\n"
          "                             exited by then (default 10; -1: never)\n"
          "      --userns MODE          auto, subuid, single or none\n");
}

/* ---- signals ---- */

static volatile sig_atomic_t stop_signal = SIGTERM;
static volatile sig_atomic_t sent_kill;
/* SIGINT or SIGTERM asked the command to stop: the next one, or SIGALRM
 * stop_timeout seconds later, kills it (as `docker stop`) */
static volatile sig_atomic_t stop_asked;
static int stop_timeout = 10;
static int ctl_pipe[2] = { -1, -1 }; /* to the relay thread: 'w' resized, 'q' quit */

static void
on_signal (int sig)
{
  int s = sig == SIGTERM ? stop_signal : sig;
  bool stop = sig == SIGINT || sig == SIGTERM;
  if (sig == SIGALRM || (stop && (stop_asked || stop_timeout == 0)))
    {
      /* the command did not stop in time, or was asked twice */
      if (sig != SIGALRM && stop_timeout == 0 && !stop_asked)
        ob_sandbox_signal (s);
      stop_asked = 1;
      if (ob_sandbox_signal (SIGKILL))
        {
          sent_kill = 1;
          return;
        }
      if (sig == SIGALRM)
        return;
    }
  else if (ob_sandbox_signal (s))
    {
      if (s == SIGKILL)
        sent_kill = 1;
      if (stop && !stop_asked)
        {
          stop_asked = 1;
          if (stop_timeout > 0)
            alarm ((unsigned) stop_timeout);
        }
      return;
    }
  /* no command runs yet: give up before starting it */
  cli_interrupted = 1;
  ob_sandbox_interrupt ();
}

static void
on_winch (int sig)
{
  int saved = errno;
  (void) sig;
  if (ctl_pipe[1] >= 0 && write (ctl_pipe[1], "w", 1) < 0)
    {
      /* full: a resize is already pending */
    }
  errno = saved;
}

static void
install_signals (void)
{
  struct sigaction sa;
  const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM };
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaction (sigs[i], &sa, NULL);
  sa.sa_handler = on_winch;
  sa.sa_flags = SA_RESTART;
  sigaction (SIGWINCH, &sa, NULL);
  /* a closed output must not kill obuild while the command runs */
  sa.sa_handler = SIG_IGN;
  sigaction (SIGPIPE, &sa, NULL);
}

/* ---- the pseudo-terminal ---- */

struct relay
{
  int master; /* -t: the pseudo-terminal, or -1 */
  int in;  /* obuild's stdin, or -1 */
  int inpipe; /* -i on a terminal without -t: where stdin goes, or -1 */
  int out; /* obuild's stdout */
  int winfd; /* a terminal of obuild's whose size the command's follows, or -1 */
  pthread_t thread;
  bool started;
};

static void
copy_winsize (const struct relay *r)
{
  struct winsize ws;
  if (r->winfd >= 0 && ioctl (r->winfd, TIOCGWINSZ, &ws) == 0)
    (void) ioctl (r->master, TIOCSWINSZ, &ws);
}

static bool
write_all_fd (int fd, const char *buf, size_t n)
{
  while (n > 0)
    {
      ssize_t w = write (fd, buf, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return false;
      buf += w;
      n -= (size_t) w;
    }
  return true;
}

static void *
relay_main (void *arg)
{
  struct relay *r = arg;
  char buf[8192];
  int in = r->in;
  int to = r->master >= 0 ? r->master : r->inpipe;
  bool out_ok = true, master_open = r->master >= 0;
  for (;;)
    {
      /* the control pipe first: poll skips entries with a negative fd */
      struct pollfd p[3] = { { ctl_pipe[0], POLLIN, 0 }, { master_open ? r->master : -1, POLLIN, 0 }, { in, POLLIN, 0 } };
      ssize_t n;
      if (poll (p, 3, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return NULL;
        }
      if (p[0].revents & POLLIN)
        {
          char ch;
          if (read (ctl_pipe[0], &ch, 1) == 1 && ch == 'w')
            copy_winsize (r);
          else
            {
              /* the command ended and obuild closed its side: what the
               * terminal still holds, then EIO */
              while (master_open && ((n = read (r->master, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)))
                if (n > 0 && out_ok)
                  out_ok = write_all_fd (r->out, buf, (size_t) n);
              return NULL;
            }
        }
      if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
        {
          n = read (r->master, buf, sizeof buf);
          if (n > 0 && out_ok)
            out_ok = write_all_fd (r->out, buf, (size_t) n);
          else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            master_open = false; /* EIO: no slave side left */
        }
      if (in >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)))
        {
          n = read (in, buf, sizeof buf);
          if (n > 0)
            (void) write_all_fd (to, buf, (size_t) n);
          else if (n == 0 || errno != EINTR)
            {
              in = -1; /* end of input: the command sees nothing more */
              if (r->inpipe >= 0)
                {
                  close (r->inpipe);
                  r->inpipe = -1;
                }
            }
        }
    }
}

/* ---- options ---- */

static int
env_add (char ***env, const char *spec, const char *where, ob_error_t *err)
{
  const char *eq = strchr (spec, '=');
  if (spec[0] == '\0' || spec[0] == '=')
    return ob_error_make (err, OB_ERR_USAGE, 0, "%s: invalid variable `%s`: expected K=V or K", where, spec);
  if (eq)
    ob_strv_add (env, spec);
  else if (getenv (spec))
    ob_strv_take (env, ob_xasprintf ("%s=%s", spec, getenv (spec)));
  return 0;
}

static int
env_file (char ***env, const char *file, ob_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len, line = 0;
  if (ob_read_file_at (AT_FDCWD, file, &data, &len, err) < 0)
    {
      ob_error_set_kind (err, OB_ERR_CONTEXT);
      return ob_error_wrap (err, "--env-file");
    }
  if (memchr (data, '\0', len))
    return ob_error_make (err, OB_ERR_CONTEXT, 0, "--env-file `%s`: not a text file", file);
  for (char *l = data; l && *l;)
    {
      char *eol = strchr (l, '\n');
      char *p = l;
      line++;
      if (eol)
        *eol = '\0';
      if (eol > l && eol[-1] == '\r')
        eol[-1] = '\0';
      while (*p == ' ' || *p == '\t')
        p++;
      if (*p && *p != '#')
        {
          cleanup_free char *where = ob_xasprintf ("%s:%zu", file, line);
          if (env_add (env, p, where, err) < 0)
            return -1;
        }
      l = eol ? eol + 1 : NULL;
    }
  return 0;
}

/* SRC:DST[:ro|:rw] */
static int
parse_volume (const char *spec, struct ob_sandbox_mount *m, char ***owned, ob_error_t *err)
{
  cleanup_free char *s = ob_xstrdup (spec);
  char *dst = strchr (s, ':'), *mode;
  if (dst == NULL || dst == s || dst[1] == '\0')
    return ob_error_make (err, OB_ERR_USAGE, 0, "-v `%s`: expected SRC:DST[:ro]", spec);
  *dst++ = '\0';
  mode = strchr (dst, ':');
  m->readonly = false;
  if (mode)
    {
      *mode++ = '\0';
      if (strcmp (mode, "ro") == 0)
        m->readonly = true;
      else if (strcmp (mode, "rw") != 0)
        return ob_error_make (err, OB_ERR_USAGE, 0, "-v `%s`: unknown option `%s` (ro or rw)", spec, mode);
    }
  ob_strv_add (owned, s);
  m->source = (*owned)[ob_strv_len (*owned) - 1];
  ob_strv_add (owned, dst);
  m->target = (*owned)[ob_strv_len (*owned) - 1];
  return 0;
}

int
cmd_run (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_run_opts o = { 0 };
  struct ob_store *store = NULL;
  struct ob_run *run = NULL;
  struct relay relay = { .master = -1, .in = -1, .inpipe = -1, .out = 1, .winfd = -1 };
  int inpipe_r = -1;
  cleanup_strv char **env = NULL;
  cleanup_strv char **env_files = NULL;
  cleanup_strv char **env_specs = NULL;
  cleanup_strv char **owned = NULL;
  cleanup_free struct ob_sandbox_mount *vols = NULL;
  size_t n_vols = 0;
  const char *userns = NULL;
  bool interactive = false, tty = false, raw = false;
  struct termios saved_tio;
  int slave = -1, status = 0, r = -1, c;

  opterr = 0;
  optind = 1;
  /* "+": options end at IMAGE, the rest is the command's */
  while ((c = getopt_long (argc, argv, "+ite:v:w:u:", run_options, NULL)) != -1)
    switch (c)
      {
      case OPT_RM:
        break;
      case 'i':
        interactive = true;
        break;
      case 't':
        tty = true;
        break;
      case 'e':
        ob_strv_add (&env_specs, optarg);
        break;
      case OPT_ENV_FILE:
        ob_strv_add (&env_files, optarg);
        break;
      case 'v':
        vols = ob_xrealloc (vols, (n_vols + 1) * sizeof *vols);
        if (parse_volume (optarg, &vols[n_vols], &owned, err) < 0)
          return -1;
        n_vols++;
        break;
      case 'w':
        o.workdir = optarg;
        break;
      case 'u':
        o.user = optarg;
        break;
      case OPT_ENTRYPOINT:
        o.entrypoint = optarg;
        break;
      case OPT_NETWORK:
        if (strcmp (optarg, "none") == 0)
          o.network_none = true;
        else if (strcmp (optarg, "host") != 0 && strcmp (optarg, "default") != 0)
          return ob_error_make (err, OB_ERR_USAGE, 0, "--network `%s`: expected host or none", optarg);
        break;
      case OPT_NAME:
        if (*optarg == '\0' || strlen (optarg) > 64 || strchr (optarg, '/'))
          return ob_error_make (err, OB_ERR_USAGE, 0, "--name `%s`: expected a host name (1 to 64 characters)",
                                optarg);
        o.hostname = optarg;
        break;
      case OPT_USERNS:
        userns = optarg;
        break;
      case OPT_STOP_TIMEOUT:
        {
          char *end;
          long t;
          errno = 0;
          t = strtol (optarg, &end, 10);
          if (*optarg == '\0' || *end || errno || t < -1 || t > 86400)
            return ob_error_make (err, OB_ERR_USAGE, 0,
                                  "--stop-timeout `%s`: expected seconds (0 to 86400, or -1 for never)", optarg);
          stop_timeout = (int) t;
        }
        break;
      case OPT_HELP:
        run_usage ();
        return 0;
      case ':':
        return ob_error_make (err, OB_ERR_USAGE, 0, "option `%s` needs a value (see `obuild run --help`)",
                              argv[optind - 1]);
      default:
        return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild run --help`)",
                              argv[optind - 1]);
      }
  if (optind >= argc)
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild run [OPTIONS] IMAGE [COMMAND [ARG...]]");
  o.image = argv[optind];
  o.cmd = argv + optind + 1;
  /* the files first, -e after: a variable given on the line wins */
  for (size_t i = 0; env_files && env_files[i]; i++)
    if (env_file (&env, env_files[i], err) < 0)
      return -1;
  for (size_t i = 0; env_specs && env_specs[i]; i++)
    if (env_add (&env, env_specs[i], "-e", err) < 0)
      return -1;
  o.env = env;
  o.volumes = vols;
  o.n_volumes = n_vols;

  install_signals ();
  if (cli_open_store (g, userns, true, &store, err) < 0)
    return -1;
  o.store = store;
  o.userns_single = cli_userns_is ("single");
  o.userns_root = cli_userns_is ("root");
  o.no_isolation = ob_userns_no_isolation ();
  o.stdin_fd = interactive ? 0 : -1;
  o.stdout_fd = -1;
  o.stderr_fd = -1;
  if (tty)
    {
      relay.master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (relay.master < 0 || grantpt (relay.master) < 0 || unlockpt (relay.master) < 0
          || (slave = open (ptsname (relay.master), O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
        {
          ob_error_make (err, OB_ERR_GENERIC, errno, "-t: allocate a pseudo-terminal");
          goto out;
        }
      o.stdin_fd = o.stdout_fd = o.stderr_fd = slave;
      o.tty = true;
      relay.in = interactive ? 0 : -1;
      for (int fd = 0; fd <= 2 && relay.winfd < 0; fd++)
        if (isatty (fd))
          relay.winfd = fd;
      copy_winsize (&relay);
    }
  else if (interactive && isatty (0))
    {
      /* A terminal as is would be read by the container's process group,
       * which is not the terminal's foreground one (SIGTTIN): give the
       * command a pipe, as Docker's -i without -t does. */
      int fds[2];
      if (pipe2 (fds, O_CLOEXEC) < 0)
        {
          ob_error_make (err, OB_ERR_GENERIC, errno, "pipe");
          goto out;
        }
      inpipe_r = o.stdin_fd = fds[0];
      relay.inpipe = fds[1];
      relay.in = 0;
    }
  if (ob_run_prepare (&o, &run, err) < 0)
    goto out;
  stop_signal = ob_run_stop_signal (run);
  if (tty || relay.inpipe >= 0)
    {
      if (pipe2 (ctl_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        {
          ob_error_make (err, OB_ERR_GENERIC, errno, "pipe");
          goto out;
        }
      if (tty && interactive && isatty (0) && tcgetattr (0, &saved_tio) == 0)
        {
          /* keys go to the command's terminal as typed: ^C is its business */
          struct termios t = saved_tio;
          cfmakeraw (&t);
          raw = tcsetattr (0, TCSADRAIN, &t) == 0;
        }
      if (pthread_create (&relay.thread, NULL, relay_main, &relay) != 0)
        {
          ob_error_make (err, OB_ERR_GENERIC, 0, "start the terminal relay");
          goto out;
        }
      relay.started = true;
    }
  if (ob_run_exec (run, &status, err) < 0)
    {
      if (sent_kill && (*err)->kind == OB_ERR_STEP)
        {
          /* StopSignal SIGKILL killed the whole container */
          ob_error_free (err);
          status = 128 + SIGKILL;
          r = status;
        }
      goto out;
    }
  r = status;
out:
  /* the command's ends first: the relay's writes to them fail, and the
   * terminal answers EIO once drained */
  if (slave >= 0)
    close (slave);
  if (inpipe_r >= 0)
    close (inpipe_r);
  if (relay.started)
    {
      if (write (ctl_pipe[1], "q", 1) != 1)
        {
          /* the pipe is empty when nothing is pending: cannot fail */
        }
      pthread_join (relay.thread, NULL);
    }
  if (raw)
    tcsetattr (0, TCSADRAIN, &saved_tio);
  if (relay.master >= 0)
    close (relay.master);
  if (relay.inpipe >= 0)
    close (relay.inpipe);
  for (int i = 0; i < 2; i++)
    if (ctl_pipe[i] >= 0)
      {
        close (ctl_pipe[i]);
        ctl_pipe[i] = -1;
      }
  ob_run_free (run);
  ob_store_close (store);
  return r;
}
