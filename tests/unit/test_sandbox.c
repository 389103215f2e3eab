/* Unit tests for the sandbox: real namespaces, a busybox rootfs per case.
 * As root they run directly; otherwise main () first enters a user + mount
 * namespace mapping only the caller's uid to 0 (like obuild's single-ID
 * mode), so they also run unprivileged. */
#include "config.h"
#include "tap.h"
#include <obuild/sandbox.h>
#include <obuild/seccomp.h>
#include <obuild/util.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *base;       /* per-run temporary directory */
static bool single_id;   /* running in a single-ID user namespace */
static int case_no;

struct fx
{
  char *dir;    /* case directory (outside the root) */
  char *rootfs; /* dir/rootfs */
  struct ob_sandbox_opts o;
  char *env[4];
  int out_fd, err_fd;
  char **created;
  ob_error_t err;
  int status;
};

static const char *const applets[]
    = { "sh", "ls", "cat", "id", "hostname", "echo", "sleep", "find", "nc", "grep", "wc",
        "head", "touch", "kill", "ip", "readlink", "true", "sort", "tr", "pwd", NULL };

static void
copy_file (const char *from, const char *to, mode_t mode)
{
  int in = open (from, O_RDONLY | O_CLOEXEC);
  int out = open (to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  char buf[65536];
  ssize_t n;
  if (in < 0 || out < 0)
    {
      perror (from);
      exit (99);
    }
  while ((n = read (in, buf, sizeof buf)) > 0)
    if (write (out, buf, (size_t) n) != n)
      exit (99);
  close (in);
  close (out);
}

static void
write_text (const char *path, const char *text)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write (fd, text, strlen (text)) != (ssize_t) strlen (text))
    exit (99);
  close (fd);
}

static char *
slurp (const char *path)
{
  char *s = NULL;
  size_t len;
  ob_error_t e = NULL;
  if (ob_read_file_at (AT_FDCWD, path, &s, &len, &e) < 0)
    {
      ob_error_free (&e);
      return ob_xstrdup ("");
    }
  return s;
}

/* A fresh case: rootfs with /bin/busybox and applet links, /tmp, /etc.
 * scratch: only /bin (no /proc /dev /sys /etc /tmp). */
static void
fx_init (struct fx *f, bool scratch)
{
  char *p;
  memset (f, 0, sizeof *f);
  f->dir = ob_xasprintf ("%s/case%d", base, ++case_no);
  f->rootfs = ob_xasprintf ("%s/rootfs", f->dir);
  mkdir (f->dir, 0755);
  mkdir (f->rootfs, 0755);
  p = ob_xasprintf ("%s/bin", f->rootfs);
  mkdir (p, 0755);
  free (p);
  p = ob_xasprintf ("%s/bin/busybox", f->rootfs);
  copy_file ("/bin/busybox", p, 0755);
  free (p);
  for (int i = 0; applets[i]; i++)
    {
      p = ob_xasprintf ("%s/bin/%s", f->rootfs, applets[i]);
      if (symlink ("busybox", p) < 0)
        exit (99);
      free (p);
    }
  if (!scratch)
    {
      static const char *const dirs[] = { "tmp", "etc", "proc", "dev", "sys" };
      for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        {
          p = ob_xasprintf ("%s/%s", f->rootfs, dirs[i]);
          mkdir (p, 0755);
          free (p);
        }
    }
  p = ob_xasprintf ("%s/out", f->dir);
  f->out_fd = open (p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  free (p);
  p = ob_xasprintf ("%s/errout", f->dir);
  f->err_fd = open (p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  free (p);
  f->env[0] = (char *) "PATH=/bin";
  f->env[1] = (char *) "FOO=bar";
  f->o.rootfs = f->rootfs;
  f->o.env = f->env;
  f->o.cwd = "/";
  f->o.hostname = "sbx";
  f->o.stdin_fd = -1;
  f->o.stdout_fd = f->out_fd;
  f->o.stderr_fd = f->err_fd;
  f->status = -1;
}

static void
fx_free (struct fx *f)
{
  ob_error_t e = NULL;
  close (f->out_fd);
  close (f->err_fd);
  ob_strv_free (f->created);
  ob_error_free (&f->err);
  if (ob_rm_rf_at (AT_FDCWD, f->dir, &e) < 0)
    {
      printf ("# cleanup: %s\n", e->msg);
      ob_error_free (&e);
    }
  free (f->rootfs);
  free (f->dir);
}

static int
fx_run (struct fx *f, char *const *argv)
{
  int r;
  f->o.argv = argv;
  ob_strv_free (f->created);
  f->created = NULL;
  ob_error_free (&f->err);
  r = ob_sandbox_run (&f->o, &f->status, &f->created, &f->err);
  if (r < 0)
    printf ("# ob_sandbox_run: %s\n", f->err ? f->err->msg : "(no error)");
  return r;
}

static int
fx_sh (struct fx *f, const char *script)
{
  char *argv[] = { (char *) "sh", (char *) "-c", (char *) script, NULL };
  return fx_run (f, argv);
}

static char *
fx_out (struct fx *f)
{
  char *p = ob_xasprintf ("%s/out", f->dir);
  char *s = slurp (p);
  free (p);
  return s;
}

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ---- cases ---- */

TEST (test_exit_zero)
{
  struct fx f;
  char *argv[] = { (char *) "true", NULL };
  fx_init (&f, false);
  CHECK_INT (fx_run (&f, argv), 0);
  CHECK_INT (f.status, 0);
  fx_free (&f);
}

TEST (test_exit_status_passed_through)
{
  struct fx f;
  fx_init (&f, false);
  CHECK_INT (fx_sh (&f, "exit 3"), 0);
  CHECK_INT (f.status, 3);
  CHECK_INT (fx_sh (&f, "exit 255"), 0);
  CHECK_INT (f.status, 255);
  fx_free (&f);
}

TEST (test_killed_by_signal)
{
  struct fx f;
  fx_init (&f, false);
  CHECK_INT (fx_sh (&f, "kill -9 $$"), 0);
  CHECK_INT (f.status, 128 + 9);
  CHECK_INT (fx_sh (&f, "kill -TERM $$"), 0);
  CHECK_INT (f.status, 128 + 15);
  fx_free (&f);
}

TEST (test_stdout_to_file)
{
  struct fx f;
  char *s;
  fx_init (&f, false);
  CHECK_INT (fx_sh (&f, "echo hello; echo oops >&2"), 0);
  s = fx_out (&f);
  CHECK_STR (s, "hello\n");
  free (s);
  s = ob_xasprintf ("%s/errout", f.dir);
  char *e = slurp (s);
  CHECK_STR (e, "oops\n");
  free (e);
  free (s);
  fx_free (&f);
}

TEST (test_stdout_to_pipe_and_stdin)
{
  struct fx f;
  int out[2], in[2];
  char buf[64] = { 0 };
  fx_init (&f, false);
  if (pipe2 (out, O_CLOEXEC) < 0 || pipe2 (in, O_CLOEXEC) < 0)
    exit (99);
  CHECK (write (in[1], "from-stdin\n", 11) == 11);
  close (in[1]);
  f.o.stdin_fd = in[0];
  f.o.stdout_fd = out[1];
  CHECK_INT (fx_sh (&f, "cat; echo piped"), 0);
  close (out[1]);
  CHECK (read (out[0], buf, sizeof buf - 1) > 0);
  CHECK_STR (buf, "from-stdin\npiped\n");
  close (out[0]);
  close (in[0]);
  fx_free (&f);
}

TEST (test_stdin_defaults_to_dev_null)
{
  struct fx f;
  char *s;
  fx_init (&f, false);
  CHECK_INT (fx_sh (&f, "cat; echo end"), 0);
  s = fx_out (&f);
  CHECK_STR (s, "end\n");
  free (s);
  fx_free (&f);
}

TEST (test_env_and_path)
{
  struct fx f;
  char *s, *p;
  char *argv[] = { (char *) "mytool", (char *) "via-path", NULL };
  fx_init (&f, false);
  CHECK_INT (fx_sh (&f, "echo $FOO; echo $PATH"), 0);
  s = fx_out (&f);
  CHECK_STR (s, "bar\n/bin\n");
  free (s);

  /* argv[0] is looked up in the step's PATH. */
  p = ob_xasprintf ("%s/custom", f.rootfs);
  mkdir (p, 0755);
  free (p);
  p = ob_xasprintf ("%s/custom/mytool", f.rootfs);
  write_text (p, "#!/bin/sh\necho \"$1\"\n");
  chmod (p, 0755);
  free (p);
  f.env[0] = (char *) "PATH=/custom:/bin";
  CHECK (ftruncate (f.out_fd, 0) == 0);
  lseek (f.out_fd, 0, SEEK_SET);
  CHECK_INT (fx_run (&f, argv), 0);
  CHECK_INT (f.status, 0);
  s = fx_out (&f);
  CHECK_STR (s, "via-path\n");
  free (s);
  fx_free (&f);
}

TEST (test_cwd_applied)
{
  struct fx f;
  char *s;
  fx_init (&f, false);
  f.o.cwd = "/tmp";
  CHECK_INT (fx_sh (&f, "pwd"), 0);
  s = fx_out (&f);
  CHECK_STR (s, "/tmp\n");
  free (s);
  fx_free (&f);
}

TEST (test_cwd_missing_is_setup_error)
{
  struct fx f;
  fx_init (&f, false);
  f.o.cwd = "/no/such/dir";
  CHECK (fx_sh (&f, "true") < 0);
  CHECK (f.err != NULL && f.err->kind == OB_ERR_STEP);
  CHECK (f.err != NULL && strstr (f.err->msg, "`/no/such/dir`") != NULL);
  CHECK (f.err != NULL && strstr (f.err->msg, "No such file or directory") != NULL);
  fx_free (&f);
}

TEST (test_uid_gid_applied)
{
  struct fx f;
  static const gid_t groups[] = { 1000, 2000 };
  fx_init (&f, false);
  f.o.uid = 1000;
  f.o.gid = 1001;
  f.o.groups = groups;
  f.o.n_groups = 2;
  f.o.set_groups = !single_id;
  if (single_id)
    {
      /* Only 0 is mapped: the failure must be clear. */
      CHECK (fx_sh (&f, "id -u") < 0);
      CHECK (f.err != NULL && f.err->kind == OB_ERR_STEP);
      CHECK (f.err != NULL && strstr (f.err->msg, "setresgid 1001") != NULL);
      CHECK (f.err != NULL && strstr (f.err->msg, "Invalid argument") != NULL);
      printf ("# skip uid switch: single-ID user namespace\n");
    }
  else
    {
      char *s;
      CHECK_INT (fx_sh (&f, "id -u; id -g; id -G"), 0);
      s = fx_out (&f);
      CHECK_STR (s, "1000\n1001\n1001 1000 2000\n");
      free (s);
    }
  fx_free (&f);
}

TEST (test_hostname)
{
  struct fx f;
  char *s;
  char *argv[] = { (char *) "hostname", NULL };
  fx_init (&f, false);
  f.o.hostname = "step-host";
  CHECK_INT (fx_run (&f, argv), 0);
  s = fx_out (&f);
  CHECK_STR (s, "step-host\n");
  free (s);
  fx_free (&f);
}

TEST (test_pid1_is_init)
{
  struct fx f;
  char *s;
  fx_init (&f, false);
  CHECK_INT (fx_sh (&f, "echo $$; tr '\\0' ' ' < /proc/1/cmdline | grep -q . && echo has-init"), 0);
  s = fx_out (&f);
  CHECK_STR (s, "2\nhas-init\n");
  free (s);
  fx_free (&f);
}

TEST (test_proc_is_fresh)
{
  struct fx f;
  char *s;
  fx_init (&f, false);
  /* init, sh, ls: nothing of the host. */
  CHECK_INT (fx_sh (&f, "ls /proc | grep -c '^[0-9]'"), 0);
  s = fx_out (&f);
  CHECK (atoi (s) >= 2 && atoi (s) <= 4);
  free (s);
  fx_free (&f);
}

TEST (test_dev_contents)
{
  struct fx f;
  char *s;
  fx_init (&f, false);
  CHECK_INT (fx_sh (&f, "ls -A /dev | tr '\\n' ' '; echo; echo x > /dev/null && echo null-ok; "
                        "head -c 5 /dev/zero | wc -c; head -c 3 /dev/urandom | wc -c; "
                        "readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdout"),
             0);
  s = fx_out (&f);
  CHECK_STR (s, "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero \n"
                "null-ok\n5\n3\npts/ptmx\n/proc/self/fd\n/proc/self/fd/1\n");
  free (s);
  fx_free (&f);
}

TEST (test_dev_pts_and_shm)
{
  struct fx f;
  char *s;
  fx_init (&f, false);
  CHECK_INT (fx_sh (&f, "test -d /dev/pts && test -c /dev/pts/ptmx && echo pts; "
                        "grep -c ' /dev/pts devpts ' /proc/mounts; "
                        "touch /dev/shm/x && echo shm-writable"),
             0);
  s = fx_out (&f);
  CHECK_STR (s, "pts\n1\nshm-writable\n");
  free (s);
  fx_free (&f);
}

TEST (test_sys_read_only)
{
  struct fx f;
  char *s;
  fx_init (&f, false);
  CHECK_INT (fx_sh (&f, "touch /sys/x 2>/dev/null && echo WRITABLE; "
                        "grep ' /sys ' /proc/mounts | grep -c ' ro,'; "
                        "grep ' /sys/' /proc/mounts | grep -vc ' ro,'"),
             0);
  CHECK_INT (f.status, 1); /* grep -vc prints 0 and exits 1: no writable submount */
  s = fx_out (&f);
  CHECK_STR (s, "1\n0\n");
  free (s);
  fx_free (&f);
}

TEST (test_host_invisible)
{
  struct fx f;
  char *s, *p;
  fx_init (&f, false);
  p = ob_xasprintf ("%s/marker-obuild-sbx", f.dir);
  write_text (p, "x");
  free (p);
  CHECK_INT (fx_sh (&f, "find / -path /proc -prune -o -path /sys -prune -o "
                        "-name marker-obuild-sbx -print; "
                        "test -e /.oldroot || echo no-oldroot; grep -c . /proc/mounts"),
             0);
  s = fx_out (&f);
  CHECK (ob_str_has_prefix (s, "no-oldroot\n"));
  free (s);
  fx_free (&f);
}

/* A host listener on 127.0.0.1 served by a forked helper that greets once. */
static pid_t
start_listener (int *port)
{
  struct sockaddr_in sa = { 0 };
  socklen_t len = sizeof sa;
  int s = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  pid_t pid;
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (s < 0 || bind (s, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (s, 4) < 0
      || getsockname (s, (struct sockaddr *) &sa, &len) < 0)
    exit (99);
  *port = ntohs (sa.sin_port);
  pid = fork ();
  if (pid == 0)
    {
      for (;;)
        {
          int c = accept (s, NULL, NULL);
          if (c >= 0)
            {
              if (write (c, "hi\n", 3) < 0)
                _exit (1);
              close (c);
            }
        }
    }
  close (s);
  return pid;
}

static void
stop_listener (pid_t pid)
{
  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);
}

TEST (test_network_host_reaches_loopback)
{
  struct fx f;
  char *s, *script;
  int port;
  pid_t l = start_listener (&port);
  fx_init (&f, false);
  script = ob_xasprintf ("nc 127.0.0.1 %d", port);
  CHECK_INT (fx_sh (&f, script), 0);
  CHECK_INT (f.status, 0);
  s = fx_out (&f);
  CHECK_STR (s, "hi\n");
  free (s);
  free (script);
  stop_listener (l);
  fx_free (&f);
}

TEST (test_network_none_only_lo_up)
{
  struct fx f;
  char *s, *script;
  int port;
  pid_t l = start_listener (&port);
  fx_init (&f, false);
  f.o.network_none = true;
  script = ob_xasprintf ("grep -c : /proc/net/dev; grep -o '^ *lo:' /proc/net/dev | tr -d ' '; "
                         "ip -o link | grep -c 'lo:.*UP'; "
                         "nc -w 2 127.0.0.1 %d || echo unreachable",
                         port);
  CHECK_INT (fx_sh (&f, script), 0);
  s = fx_out (&f);
  CHECK_STR (s, "1\nlo:\n1\nunreachable\n");
  free (s);
  free (script);
  stop_listener (l);
  fx_free (&f);
}

TEST (test_extra_mounts)
{
  struct fx f;
  char *s, *src_file, *src_dir, *p;
  struct ob_sandbox_mount m[2];
  fx_init (&f, false);
  src_file = ob_xasprintf ("%s/hosts.src", f.dir);
  write_text (src_file, "127.0.0.1 step\n");
  src_dir = ob_xasprintf ("%s/shared", f.dir);
  mkdir (src_dir, 0755);
  m[0] = (struct ob_sandbox_mount) { .source = src_file, .target = "/etc/hosts", .readonly = true };
  m[1] = (struct ob_sandbox_mount) { .source = src_dir, .target = "/mnt/shared" };
  f.o.mounts = m;
  f.o.n_mounts = 2;
  CHECK_INT (fx_sh (&f, "cat /etc/hosts; (echo x > /etc/hosts) 2>/dev/null || echo ro; "
                        "echo written > /mnt/shared/new && echo rw"),
             0);
  s = fx_out (&f);
  CHECK_STR (s, "127.0.0.1 step\nro\nrw\n");
  free (s);
  s = slurp (src_file);
  CHECK_STR (s, "127.0.0.1 step\n");
  free (s);
  p = ob_xasprintf ("%s/new", src_dir);
  s = slurp (p);
  CHECK_STR (s, "written\n");
  free (s);
  free (p);
  /* /etc existed; the two targets were created. */
  CHECK_INT (ob_strv_len (f.created), 3);
  if (ob_strv_len (f.created) == 3)
    {
      CHECK_STR (f.created[0], "/etc/hosts");
      CHECK_STR (f.created[1], "/mnt");
      CHECK_STR (f.created[2], "/mnt/shared");
    }
  free (src_file);
  free (src_dir);
  fx_free (&f);
}

TEST (test_scratch_mount_points_created_and_removable)
{
  struct fx f;
  char *src;
  struct ob_sandbox_mount m;
  static const char *const want[] = { "/proc", "/dev", "/sys", "/etc", "/etc/hosts", NULL };
  fx_init (&f, true);
  src = ob_xasprintf ("%s/hosts.src", f.dir);
  write_text (src, "h\n");
  m = (struct ob_sandbox_mount) { .source = src, .target = "/etc/hosts", .readonly = true };
  f.o.mounts = &m;
  f.o.n_mounts = 1;
  CHECK_INT (fx_sh (&f, "true"), 0);
  CHECK_INT (ob_strv_len (f.created), 5);
  for (size_t i = 0; want[i] && i < ob_strv_len (f.created); i++)
    CHECK_STR (f.created[i], want[i]);
  /* Nothing is left mounted on them in the caller's namespace: children
   * first, they all go. */
  for (size_t i = ob_strv_len (f.created); i-- > 0;)
    {
      char *p = ob_xasprintf ("%s%s", f.rootfs, f.created[i]);
      CHECK (remove (p) == 0);
      free (p);
    }
  free (src);
  fx_free (&f);
}

TEST (test_mount_point_through_dangling_symlink)
{
  struct fx f;
  char *src, *p, *s;
  struct ob_sandbox_mount m;
  fx_init (&f, false);
  p = ob_xasprintf ("%s/etc/resolv.conf", f.rootfs);
  CHECK (symlink ("../run/resolve/stub.conf", p) == 0);
  free (p);
  src = ob_xasprintf ("%s/resolv.src", f.dir);
  write_text (src, "nameserver 10.0.0.1\n");
  m = (struct ob_sandbox_mount) { .source = src, .target = "/etc/resolv.conf", .readonly = true };
  f.o.mounts = &m;
  f.o.n_mounts = 1;
  CHECK_INT (fx_sh (&f, "cat /etc/resolv.conf"), 0);
  s = fx_out (&f);
  CHECK_STR (s, "nameserver 10.0.0.1\n");
  free (s);
  CHECK_INT (ob_strv_len (f.created), 3);
  if (ob_strv_len (f.created) == 3)
    {
      CHECK_STR (f.created[0], "/run");
      CHECK_STR (f.created[1], "/run/resolve");
      CHECK_STR (f.created[2], "/run/resolve/stub.conf");
    }
  free (src);
  fx_free (&f);
}

TEST (test_mount_target_cannot_escape_root)
{
  struct fx f;
  char *src, *p, *outside, *s;
  struct ob_sandbox_mount m;
  fx_init (&f, false);
  /* An absolute symlink pointing at a host path must resolve inside the
   * root. */
  outside = ob_xasprintf ("%s/victim", f.dir);
  write_text (outside, "host\n");
  p = ob_xasprintf ("%s/etc/hostname", f.rootfs);
  CHECK (symlink (outside, p) == 0);
  free (p);
  src = ob_xasprintf ("%s/hostname.src", f.dir);
  write_text (src, "evil\n");
  m = (struct ob_sandbox_mount) { .source = src, .target = "/etc/hostname", .readonly = false };
  f.o.mounts = &m;
  f.o.n_mounts = 1;
  CHECK_INT (fx_sh (&f, "true"), 0);
  s = slurp (outside);
  CHECK_STR (s, "host\n");
  free (s);
  free (src);
  free (outside);
  fx_free (&f);
}

TEST (test_orphans_reaped_and_killed)
{
  struct fx f;
  char *s;
  double t0;
  fx_init (&f, false);
  t0 = now ();
  CHECK_INT (fx_sh (&f, "sleep 100 & exit 0"), 0);
  CHECK_INT (f.status, 0);
  CHECK (now () - t0 < 2.0);
  /* A double-forked orphan is reaped by init: no zombie left behind. */
  CHECK_INT (fx_sh (&f, "(true &); sleep 0.3; cat /proc/[0-9]*/stat | grep -c ') Z '"), 0);
  CHECK_INT (f.status, 1); /* grep -c found nothing */
  s = fx_out (&f);
  CHECK_STR (s, "0\n");
  free (s);
  fx_free (&f);
}

TEST (test_signal_forwarded_by_init)
{
  struct fx f;
  fx_init (&f, false);
  CHECK_INT (fx_sh (&f, "trap 'exit 7' TERM; kill -TERM 1; sleep 5 & wait"), 0);
  CHECK_INT (f.status, 7);
  fx_free (&f);
}

TEST (test_exec_missing_binary)
{
  struct fx f;
  char *argv[] = { (char *) "no-such-tool", (char *) "x", NULL };
  char *argv2[] = { (char *) "/bin/nothere", NULL };
  fx_init (&f, false);
  CHECK (fx_run (&f, argv) < 0);
  CHECK (f.err != NULL && f.err->kind == OB_ERR_STEP);
  CHECK (f.err != NULL && strstr (f.err->msg, "exec `no-such-tool`: No such file or directory"));
  CHECK (fx_run (&f, argv2) < 0);
  CHECK (f.err != NULL && strstr (f.err->msg, "exec `/bin/nothere`"));
  fx_free (&f);
}

TEST (test_no_fd_leak)
{
  struct fx f;
  char *s;
  char *argv[] = { (char *) "ls", (char *) "/proc/self/fd", NULL };
  int fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  int leak = dup2 (fd, 50); /* deliberately not CLOEXEC */
  fx_init (&f, false);
  CHECK_INT (leak, 50);
  CHECK_INT (fx_run (&f, argv), 0);
  s = fx_out (&f);
  /* 3 is ls's own handle on the directory it lists. */
  CHECK_STR (s, "0\n1\n2\n3\n");
  free (s);
  close (leak);
  close (fd);
  fx_free (&f);
}

TEST (test_workdir_magic_link_refused)
{
  /* WORKDIR /proc/self/fd/N (runc CVE-2024-21626): an inherited directory
   * would be a way out.  The descriptor is closed and the path refused. */
  struct fx f;
  char cwd[32];
  int dfd = open ("/", O_RDONLY | O_DIRECTORY); /* deliberately not CLOEXEC */
  int fd = dup2 (dfd, 40);
  char *argv[] = { (char *) "pwd", NULL };
  fx_init (&f, false);
  CHECK_INT (fd, 40);
  snprintf (cwd, sizeof cwd, "/proc/self/fd/%d", fd);
  f.o.cwd = cwd;
  CHECK (fx_run (&f, argv) < 0);
  CHECK (f.err && strstr (f.err->msg, "working directory `/proc/self/fd/40`") != NULL);
  f.o.cwd = "/proc/1/root";
  CHECK (fx_run (&f, argv) < 0);
  CHECK (f.err && strstr (f.err->msg, "working directory `/proc/1/root`") != NULL);
  close (fd);
  close (dfd);
  fx_free (&f);
}

TEST (test_init_holds_no_fd)
{
  struct fx f;
  char *s;
  int dfd = open ("/", O_RDONLY | O_DIRECTORY); /* deliberately not CLOEXEC */
  int leak = dup2 (dfd, 41);
  fx_init (&f, false);
  CHECK_INT (leak, 41);
  /* The command's first look: init closes its descriptors after forking
   * the command, which waits for that (it once raced, under load). */
  for (int i = 0; i < 10; i++)
    {
      CHECK_INT (ftruncate (f.out_fd, 0), 0);
      CHECK_INT ((int) lseek (f.out_fd, 0, SEEK_SET), 0);
      CHECK_INT (fx_sh (&f, "ls /proc/1/fd 2>/dev/null | wc -l"), 0);
      s = fx_out (&f);
      CHECK_STR (s, "0\n");
      free (s);
    }
  close (leak);
  close (dfd);
  fx_free (&f);
}

TEST (test_capabilities_dropped)
{
  /* Docker's default set at most: no CAP_SYS_ADMIN (21), no mounts */
  struct fx f;
  char *s;
  fx_init (&f, false);
  CHECK_INT (fx_sh (&f, "grep -E '^Cap(Bnd|Eff)' /proc/self/status | tr -d ' \\t'"), 0);
  s = fx_out (&f);
  CHECK_STR (s, "CapEff:00000000a80425fb\nCapBnd:00000000a80425fb\n");
  free (s);
  fx_free (&f);
}

TEST (test_proc_masked_and_read_only)
{
  struct fx f;
  char *s;
  fx_init (&f, false);
  CHECK_INT (fx_sh (&f, "cat /proc/keys /proc/timer_list 2>/dev/null | wc -c; "
                        "ls /proc/acpi 2>/dev/null | wc -l; "
                        "(echo 5 > /proc/sys/kernel/printk_ratelimit) 2>/dev/null && echo wrote || echo refused"),
             0);
  s = fx_out (&f);
  CHECK_STR (s, "0\n0\nrefused\n");
  free (s);
  fx_free (&f);
}

TEST (test_identity_userns)
{
  /* As real root: a user namespace of the step's own, ids mapped 1:1 */
  struct fx f;
  char *s, host[64], want[160];
  ssize_t n;
  n = readlink ("/proc/self/ns/user", host, sizeof host - 1);
  CHECK (n > 0);
  host[n > 0 ? n : 0] = '\0';
  fx_init (&f, false);
  f.o.identity_userns = true;
  CHECK_INT (fx_sh (&f, "tr -s ' ' < /proc/self/uid_map; readlink /proc/self/ns/user; "
                        "(mknod /tmp/k c 1 11 && head -c1 /tmp/k) >/dev/null 2>&1 && echo dev || echo nodev"),
             0);
  s = fx_out (&f);
  snprintf (want, sizeof want, " 0 0 4294967295\n%s\nnodev\n", host);
  CHECK (s && strncmp (s, " 0 0 4294967295\n", 16) == 0);
  CHECK (s && strcmp (s, want) != 0); /* another namespace than ours */
  CHECK (s && strstr (s, "\nnodev\n") != NULL);
  free (s);
  fx_free (&f);
}

static void
on_alarm (int sig)
{
  (void) sig;
  ob_sandbox_interrupt ();
}

TEST (test_interrupt)
{
  struct fx f;
  struct sigaction sa, old;
  double t0;
  char *argv[] = { (char *) "sleep", (char *) "100", NULL };
  fx_init (&f, false);
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction (SIGALRM, &sa, &old);
  t0 = now ();
  alarm (1);
  CHECK (fx_run (&f, argv) < 0);
  CHECK (now () - t0 < 2.0);
  CHECK (f.err != NULL && f.err->kind == OB_ERR_INTERRUPTED);
  CHECK (f.err != NULL && strcmp (f.err->msg, "interrupted") == 0);
  sigaction (SIGALRM, &old, NULL);
  /* Consumed: the next step runs. */
  CHECK_INT (fx_sh (&f, "exit 4"), 0);
  CHECK_INT (f.status, 4);
  fx_free (&f);
}

TEST (test_interrupt_pending_before_run)
{
  struct fx f;
  fx_init (&f, false);
  ob_sandbox_interrupt ();
  CHECK (fx_sh (&f, "true") < 0);
  CHECK (f.err != NULL && f.err->kind == OB_ERR_INTERRUPTED);
  CHECK_INT (fx_sh (&f, "true"), 0);
  fx_free (&f);
}

TEST (test_bad_options)
{
  struct fx f;
  char *argv[] = { NULL };
  struct ob_sandbox_mount m = { .source = "/etc/hostname", .target = "relative" };
  fx_init (&f, false);
  CHECK (fx_run (&f, argv) < 0);
  CHECK (f.err != NULL && strstr (f.err->msg, "empty command"));
  f.o.mounts = &m;
  f.o.n_mounts = 1;
  CHECK (fx_sh (&f, "true") < 0);
  CHECK (f.err != NULL && strstr (f.err->msg, "`relative`"));
  m.target = "/etc/x";
  m.source = "/no/such/source";
  CHECK (fx_sh (&f, "true") < 0);
  CHECK (f.err != NULL && strstr (f.err->msg, "bind source `/no/such/source`"));
  f.o.n_mounts = 0;
  f.o.rootfs = "/no/such/rootfs";
  CHECK (fx_sh (&f, "true") < 0);
  CHECK (f.err != NULL && strstr (f.err->msg, "open rootfs `/no/such/rootfs`"));
  fx_free (&f);
}

TEST (test_seccomp_load_failure_reported)
{
  /* An empty program is refused by the kernel (EINVAL); the stub mimics
   * that.  The filter's behaviour itself is tested in test_seccomp. */
  struct fx f;
  struct ob_seccomp_prog prog = { .filter = NULL, .len = 0 };
  fx_init (&f, false);
  f.o.seccomp = &prog;
  CHECK (fx_sh (&f, "true") < 0);
  CHECK (f.err != NULL && strstr (f.err->msg, "load seccomp filter: Invalid argument"));
  fx_free (&f);
}

TEST (test_seccomp_filter_applied)
{
  /* With the real filter: root emulation makes chown to an unmapped id
   * succeed in a single-ID namespace, and mount is denied. */
  struct fx f;
  struct ob_seccomp_prog *prog = NULL;
  ob_error_t e = NULL;
  char *s;
  fx_init (&f, false);
  CHECK_INT (ob_seccomp_build (true, &prog, &e), 0);
  if (prog == NULL)
    {
      /* a filter that cannot be built fails the case, never skips it */
      CHECK (prog != NULL);
      printf ("# %s\n", e ? e->msg : "?");
      ob_error_free (&e);
      fx_free (&f);
      return;
    }
  f.o.seccomp = prog;
  CHECK_INT (fx_sh (&f, "touch /tmp/f && chown 1000:1000 /tmp/f && echo chown-ok; "
                        "busybox mount -t tmpfs none /tmp 2>/dev/null || echo mount-denied"),
             0);
  s = fx_out (&f);
  CHECK_STR (s, "chown-ok\nmount-denied\n");
  free (s);
  ob_seccomp_free (prog);
  fx_free (&f);
}

/* ---- setup ---- */

static int
write_proc (const char *path, const char *text)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);
  int ok = fd >= 0 && write (fd, text, strlen (text)) == (ssize_t) strlen (text);
  if (fd >= 0)
    close (fd);
  return ok ? 0 : -1;
}

static void
enter_userns (void)
{
  uid_t uid = getuid ();
  gid_t gid = getgid ();
  char map[64];
  if (unshare (CLONE_NEWUSER | CLONE_NEWNS) < 0)
    {
      printf ("1..0 # SKIP cannot create a user namespace: %s\n", strerror (errno));
      exit (0);
    }
  snprintf (map, sizeof map, "0 %u 1", (unsigned) uid);
  if (write_proc ("/proc/self/uid_map", map) < 0 || write_proc ("/proc/self/setgroups", "deny") < 0)
    exit (99);
  snprintf (map, sizeof map, "0 %u 1", (unsigned) gid);
  if (write_proc ("/proc/self/gid_map", map) < 0)
    exit (99);
  single_id = true;
}

/* opts.started: called once, in obuild, while the step runs; a thread it
 * starts may allocate all it likes (the step's init, cloned before, forks
 * the command without waiting on a lock that thread holds). */
struct started_rec
{
  int calls;
  double at;
  volatile bool stop;
  pthread_t th;
};

static void *
churn (void *arg)
{
  struct started_rec *r = arg;
  while (!r->stop)
    free (ob_xstrdup ("allocating while the step starts"));
  return NULL;
}

static void
on_started (void *data)
{
  struct started_rec *r = data;
  r->calls++;
  r->at = now ();
  if (pthread_create (&r->th, NULL, churn, r) != 0)
    abort ();
}

TEST (test_started_callback)
{
  struct fx f;
  struct started_rec rec = { 0 };
  double t0 = now (), t1;
  fx_init (&f, false);
  f.o.started = on_started;
  f.o.started_data = &rec;
  for (int i = 0; i < 20; i++)
    CHECK_INT (fx_sh (&f, "sleep 0; exit 0"), 0);
  rec.stop = true;
  pthread_join (rec.th, NULL);
  CHECK_INT (rec.calls, 20);
  rec = (struct started_rec){ 0 };
  CHECK_INT (fx_sh (&f, "sleep 0.3; exit 4"), 0);
  t1 = now ();
  rec.stop = true;
  pthread_join (rec.th, NULL);
  CHECK_INT (f.status, 4);
  CHECK_INT (rec.calls, 1);
  /* before the step ended */
  CHECK (rec.at > t0 && rec.at < t1 - 0.2);
  fx_free (&f);
}

int
main (void)
{
  char tmpl[] = "/tmp/obuild-sandbox-test.XXXXXX";
  ob_error_t e = NULL;

  if (access ("/bin/busybox", X_OK) < 0)
    {
      printf ("1..0 # SKIP /bin/busybox (busybox-static) not installed\n");
      return 0;
    }
  if (geteuid () != 0)
    enter_userns ();
  if (mkdtemp (tmpl) == NULL)
    return 99;
  base = tmpl;

  RUN (test_exit_zero);
  RUN (test_started_callback);
  RUN (test_exit_status_passed_through);
  RUN (test_killed_by_signal);
  RUN (test_stdout_to_file);
  RUN (test_stdout_to_pipe_and_stdin);
  RUN (test_stdin_defaults_to_dev_null);
  RUN (test_env_and_path);
  RUN (test_cwd_applied);
  RUN (test_cwd_missing_is_setup_error);
  RUN (test_uid_gid_applied);
  RUN (test_hostname);
  RUN (test_pid1_is_init);
  RUN (test_proc_is_fresh);
  RUN (test_dev_contents);
  RUN (test_dev_pts_and_shm);
  RUN (test_sys_read_only);
  RUN (test_host_invisible);
  RUN (test_network_host_reaches_loopback);
  RUN (test_network_none_only_lo_up);
  RUN (test_extra_mounts);
  RUN (test_scratch_mount_points_created_and_removable);
  RUN (test_mount_point_through_dangling_symlink);
  RUN (test_mount_target_cannot_escape_root);
  RUN (test_orphans_reaped_and_killed);
  RUN (test_signal_forwarded_by_init);
  RUN (test_exec_missing_binary);
  RUN (test_no_fd_leak);
  RUN (test_workdir_magic_link_refused);
  RUN (test_init_holds_no_fd);
  RUN (test_capabilities_dropped);
  RUN (test_proc_masked_and_read_only);
  if (!single_id)
    RUN (test_identity_userns);
  else
    printf ("ok %d - test_identity_userns # skip needs real root\n", ++tap_n);
  RUN (test_interrupt);
  RUN (test_interrupt_pending_before_run);
  RUN (test_bad_options);
  RUN (test_seccomp_load_failure_reported);
  RUN (test_seccomp_filter_applied);

  if (ob_rm_rf_at (AT_FDCWD, base, &e) < 0)
    ob_error_free (&e);
  TAP_DONE ();
}
