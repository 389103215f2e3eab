/* run: `obuild run`, a command from an image in the RUN steps' sandbox.
 * See include/obuild/run.h. */
#include "config.h"
#include <obuild/build.h>
#include <obuild/image.h>
#include <obuild/imagecmd.h>
#include <obuild/rootfs.h>
#include <obuild/run.h>
#include <obuild/seccomp.h>
#include <obuild/util.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RUN_HOSTNAME "obuild"
#define MAX_GROUPS 64

struct ob_run
{
  char *rundir, *merged;
  bool mounted;
  char **argv, **env, **owned;
  char *cwd;
  struct ob_sandbox_mount *mounts;
  size_t n_mounts;
  struct ob_sandbox_opts so;
  struct ob_seccomp_prog *seccomp;
  gid_t groups[MAX_GROUPS];
  int stop_signal;
};

static const struct
{
  const char *name;
  int sig;
} signal_names[] = {
  { "HUP", SIGHUP },     { "INT", SIGINT },       { "QUIT", SIGQUIT },   { "ILL", SIGILL },
  { "TRAP", SIGTRAP },   { "ABRT", SIGABRT },     { "IOT", SIGIOT },     { "BUS", SIGBUS },
  { "FPE", SIGFPE },     { "KILL", SIGKILL },     { "USR1", SIGUSR1 },   { "SEGV", SIGSEGV },
  { "USR2", SIGUSR2 },   { "PIPE", SIGPIPE },     { "ALRM", SIGALRM },   { "TERM", SIGTERM },
  { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },   { "CONT", SIGCONT },   { "STOP", SIGSTOP },
  { "TSTP", SIGTSTP },   { "TTIN", SIGTTIN },     { "TTOU", SIGTTOU },   { "URG", SIGURG },
  { "XCPU", SIGXCPU },   { "XFSZ", SIGXFSZ },     { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
  { "WINCH", SIGWINCH }, { "IO", SIGIO },         { "POLL", SIGPOLL },   { "PWR", SIGPWR },
  { "SYS", SIGSYS },
};

int
ob_run_parse_signal (const char *s)
{
  char *end;
  long n;
  if (s == NULL || *s == '\0')
    return 0;
  if (isdigit ((unsigned char) *s))
    {
      n = strtol (s, &end, 10);
      return *end == '\0' && n > 0 && n < NSIG ? (int) n : 0;
    }
  if (strncasecmp (s, "SIG", 3) == 0)
    s += 3;
  for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
    if (strcasecmp (s, signal_names[i].name) == 0)
      return signal_names[i].sig;
  /* Docker's names for the real-time signals: RTMIN, RTMIN+N, RTMAX-N */
  if (strncasecmp (s, "RTMIN", 5) == 0 || strncasecmp (s, "RTMAX", 5) == 0)
    {
      bool max = toupper ((unsigned char) s[4]) == 'X';
      long off = 0;
      s += 5;
      if (*s)
        {
          if ((max && *s != '-') || (!max && *s != '+'))
            return 0;
          off = strtol (s + 1, &end, 10);
          if (*end || end == s + 1 || off < 0 || off > SIGRTMAX - SIGRTMIN)
            return 0;
        }
      return max ? SIGRTMAX - (int) off : SIGRTMIN + (int) off;
    }
  return 0;
}

/* Add "K=V", replacing an earlier K; *n counts env, index maps each K to
 * its position (an image's Env of 100,000 entries was quadratic). */
static void
env_set (char ***env, size_t *n, json_t *index, const char *kv)
{
  cleanup_free char *key = ob_xstrndup (kv, strcspn (kv, "="));
  json_t *pos = json_object_get (index, key);
  if (pos)
    {
      size_t i = (size_t) json_integer_value (pos);
      free ((*env)[i]);
      (*env)[i] = ob_xstrdup (kv);
      return;
    }
  json_object_set_new_nocheck (index, key, json_integer ((json_int_t) *n));
  ob_strv_push (env, n, ob_xstrdup (kv));
}

/* mkdir -p of dir inside the root: each component resolved with
 * RESOLVE_IN_ROOT, so a symlink in the image cannot make us create
 * anything outside it.  The overlay's upper is thrown away: the
 * directory lives as long as the run. */
static int
mkdir_in_root (const char *root, const char *dir, ob_error_t *err)
{
  cleanup_close int rootfd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  cleanup_free char *path = ob_xstrdup (dir);
  if (rootfd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", root);
  for (char *p = path + 1;; p++)
    if (*p == '/' || *p == '\0')
      {
        struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
        char c = *p;
        int fd;
        *p = '\0';
        fd = (int) syscall (SYS_openat2, rootfd, path, &how, sizeof how);
        if (fd < 0 && errno == ENOENT)
          {
            char *slash = strrchr (path, '/');
            int pfd;
            *slash = '\0';
            pfd = (int) syscall (SYS_openat2, rootfd, *path ? path : "/", &how, sizeof how);
            *slash = '/';
            if (pfd < 0 || mkdirat (pfd, slash + 1, 0755) < 0)
              {
                int e = errno;
                if (pfd >= 0)
                  close (pfd);
                return ob_error_make (err, OB_ERR_STEP, e, "working directory `%s`", dir);
              }
            close (pfd);
          }
        else if (fd < 0)
          return ob_error_make (err, OB_ERR_STEP, errno, "working directory `%s`", dir);
        else
          close (fd);
        *p = c;
        if (c == '\0')
          break;
      }
  return 0;
}

static int
load_image (const struct ob_run_opts *o, json_t **config, char ***layer_dirs, ob_error_t *err)
{
  cleanup_free char *mdata = NULL;
  size_t mlen;
  struct ob_manifest *m = NULL;
  json_t *ids;
  int r = -1;
  *config = NULL;
  *layer_dirs = NULL;
  if (ob_imagecmd_blob (o->store->oci, o->image, OB_IMAGECMD_MANIFEST, &mdata, &mlen, err) < 0)
    return -1;
  {
    cleanup_free char *cdata = NULL;
    size_t clen;
    if (ob_imagecmd_blob (o->store->oci, o->image, OB_IMAGECMD_CONFIG, &cdata, &clen, err) < 0
        || ob_image_manifest_parse (mdata, mlen, &m, err) < 0 || ob_image_config_parse (cdata, clen, config, err) < 0)
      goto out;
  }
  ids = json_object_get (json_object_get (*config, "rootfs"), "diff_ids");
  if (json_array_size (ids) != m->n_layers)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "image `%s`: %zu layers but %zu diff_ids", o->image, m->n_layers,
                     json_array_size (ids));
      goto out;
    }
  /* checked before unpacking anything: in none mode nothing would run */
  if (o->no_isolation)
    {
      ob_error_make (err, OB_ERR_USERNS, 0, "run: %s", o->no_isolation);
      goto out;
    }
  for (size_t i = 0; i < m->n_layers; i++)
    {
      cleanup_close int fd = -1;
      char *dir = NULL;
      const char *diff_id = json_string_value (json_array_get (ids, i));
      if (diff_id == NULL)
        {
          ob_error_make (err, OB_ERR_IMAGE, 0, "image `%s`: config has no diff_id for layer %zu", o->image, i);
          goto out;
        }
      if (ob_layout_blob_open (o->store->oci, m->layers[i].digest, &fd, err) < 0
          || ob_store_layer_dir (o->store, diff_id, fd, &dir, err) < 0)
        goto out;
      ob_strv_take (layer_dirs, dir);
    }
  r = 0;
out:
  ob_manifest_free (m);
  if (r < 0)
    {
      json_decref (*config);
      *config = NULL;
      ob_strv_free (*layer_dirs);
      *layer_dirs = NULL;
    }
  return r;
}

static void
add_mount (struct ob_run *r, char *source, const char *target, bool readonly)
{
  ob_strv_take (&r->owned, source);
  r->mounts = ob_xrealloc (r->mounts, (r->n_mounts + 1) * sizeof *r->mounts);
  r->mounts[r->n_mounts++] = (struct ob_sandbox_mount){ source, target, readonly };
}

static int
check_volumes (const struct ob_run_opts *o, struct ob_run *r, ob_error_t *err)
{
  for (size_t i = 0; i < o->n_volumes; i++)
    {
      const char *t = o->volumes[i].target;
      char *src;
      if (t == NULL || t[0] != '/')
        return ob_error_make (err, OB_ERR_USAGE, 0, "-v: the target `%s` is not an absolute path", t ? t : "");
      if (strcmp (t, "/") == 0 || strcmp (t, "/proc") == 0 || ob_str_has_prefix (t, "/proc/")
          || strcmp (t, "/dev") == 0 || ob_str_has_prefix (t, "/dev/"))
        return ob_error_make (err, OB_ERR_USAGE, 0, "-v: cannot mount over `%s` (/, /proc and /dev are the container's own)",
                              t);
      src = realpath (o->volumes[i].source, NULL);
      if (src == NULL)
        return ob_error_make (err, OB_ERR_CONTEXT, errno, "-v: source `%s`", o->volumes[i].source);
      add_mount (r, src, t, o->volumes[i].readonly);
    }
  return 0;
}

static int
build_argv (const struct ob_run_opts *o, json_t *rt, char ***argv, ob_error_t *err)
{
  json_t *ep = json_object_get (rt, "Entrypoint");
  json_t *cmd = json_object_get (rt, "Cmd");
  size_t i;
  json_t *e;
  if (o->entrypoint)
    {
      /* Docker: --entrypoint replaces the entrypoint and the image's Cmd */
      if (*o->entrypoint)
        ob_strv_add (argv, o->entrypoint);
    }
  else
    {
      /* appended in O(1) (an image's Entrypoint and Cmd may be long) */
      char **v = NULL;
      size_t n = 0;
      json_array_foreach (ep, i, e) ob_strv_push (&v, &n, ob_xstrdup (json_string_value (e) ? json_string_value (e) : ""));
      if (v)
        ob_strv_take_all (argv, v);
    }
  if (o->cmd && o->cmd[0])
    for (i = 0; o->cmd[i]; i++)
      ob_strv_add (argv, o->cmd[i]);
  else if (!o->entrypoint)
    {
      char **v = NULL;
      size_t n = 0;
      json_array_foreach (cmd, i, e) ob_strv_push (&v, &n, ob_xstrdup (json_string_value (e) ? json_string_value (e) : ""));
      if (v)
        ob_strv_take_all (argv, v);
    }
  if (ob_strv_len (*argv) == 0 || (*argv)[0][0] == '\0')
    return ob_error_make (err, OB_ERR_USAGE, 0, "run: no command: image `%s` sets no Entrypoint or Cmd, and none was given",
                          o->image);
  return 0;
}

int
ob_run_prepare (const struct ob_run_opts *o, struct ob_run **out, ob_error_t *err)
{
  struct ob_run *r = ob_xmalloc0 (sizeof *r);
  json_t *config = NULL, *rt;
  cleanup_strv char **lowers = NULL;
  cleanup_free char *prefix = NULL;
  cleanup_free char *upper = NULL;
  cleanup_free char *work = NULL;
  cleanup_free char *passwd = NULL;
  cleanup_free char *group = NULL;
  const char *user, *wd;
  uid_t uid = 0;
  gid_t gid = 0;
  size_t n_groups = 0;

  *out = NULL;
  if (load_image (o, &config, &lowers, err) < 0)
    goto fail;
  rt = ob_image_config_runtime (config);
  r->stop_signal = SIGTERM;
  {
    const char *ss = json_string_value (json_object_get (rt, "StopSignal"));
    if (ss && *ss && (r->stop_signal = ob_run_parse_signal (ss)) == 0)
      {
        ob_error_make (err, OB_ERR_IMAGE, 0, "image `%s`: unknown StopSignal `%s`", o->image, ss);
        goto fail;
      }
  }
  if (build_argv (o, rt, &r->argv, err) < 0 || check_volumes (o, r, err) < 0)
    goto fail;

  /* the store's tmp/, named as a transaction's scratch directory: what a
   * killed obuild leaves there goes at the next ob_store_open */
  prefix = ob_xasprintf (".obuild-%d-run-", (int) getpid ());
  if (ob_mkdtemp_in (o->store->tmp, prefix, &r->rundir, err) < 0)
    goto fail;
  upper = ob_xasprintf ("%s/upper", r->rundir);
  work = ob_xasprintf ("%s/work", r->rundir);
  r->merged = ob_xasprintf ("%s/merged", r->rundir);
  if (mkdir (upper, 0755) < 0 || mkdir (work, 0700) < 0 || mkdir (r->merged, 0755) < 0)
    {
      ob_error_make (err, OB_ERR_STORE, errno, "prepare `%s`", r->rundir);
      goto fail;
    }
  if (lowers == NULL)
    {
      /* an image without layers: overlayfs needs a lower */
      char *empty = ob_xasprintf ("%s/empty", r->rundir);
      ob_strv_take (&lowers, empty);
      if (mkdir (empty, 0755) < 0)
        {
          ob_error_make (err, OB_ERR_STORE, errno, "mkdir `%s`", empty);
          goto fail;
        }
    }
  if (ob_rootfs_mount_overlay (lowers, ob_strv_len (lowers), r->rundir, upper, work, r->merged, err) < 0)
    goto fail;
  r->mounted = true;

  /* the user, as a RUN step after USER resolves it */
  user = o->user ? o->user : json_string_value (json_object_get (rt, "User"));
  passwd = ob_rootfs_read (r->merged, "/etc/passwd");
  group = ob_rootfs_read (r->merged, "/etc/group");
  if (user && *user)
    {
      if (ob_build_resolve_owner (user, passwd, group, &uid, &gid, err) < 0)
        {
          ob_error_set_kind (err, o->user ? OB_ERR_USAGE : OB_ERR_IMAGE);
          ob_error_wrap (err, o->user ? "-u %s" : "image `%s`: User %s", o->user ? user : o->image, user);
          goto fail;
        }
      if (!o->userns_single)
        n_groups = ob_rootfs_groups (user, passwd, group, uid, gid, r->groups, MAX_GROUPS);
    }

  /* the environment: the image's, then the caller's; defaults as in RUN */
  {
    json_t *cenv = json_object_get (rt, "Env");
    size_t i;
    json_t *e;
    char **env = NULL;
    size_t n_env = 0;
    json_t *index = json_object ();
    json_array_foreach (cenv, i, e) if (json_string_value (e))
      env_set (&env, &n_env, index, json_string_value (e));
    for (i = 0; o->env && o->env[i]; i++)
      env_set (&env, &n_env, index, o->env[i]);
    json_decref (index);
    if (env)
      ob_strv_take_all (&r->env, env);
  }
  if (!ob_strv_env_has (r->env, "PATH"))
    ob_strv_add (&r->env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!ob_strv_env_has (r->env, "HOME"))
    {
      cleanup_free char *home = passwd ? ob_rootfs_passwd_field (passwd, uid, 5) : NULL;
      ob_strv_take (&r->env, ob_xasprintf ("HOME=%s", home && *home ? home : uid == 0 ? "/root" : "/"));
    }
  if (!ob_strv_env_has (r->env, "HOSTNAME"))
    ob_strv_take (&r->env, ob_xasprintf ("HOSTNAME=%s", o->hostname ? o->hostname : RUN_HOSTNAME));
  if (o->tty && !ob_strv_env_has (r->env, "TERM"))
    ob_strv_add (&r->env, "TERM=xterm"); /* as Docker with -t */

  wd = o->workdir ? o->workdir : json_string_value (json_object_get (rt, "WorkingDir"));
  r->cwd = ob_xstrdup (wd && *wd ? wd : "/");
  if (r->cwd[0] != '/')
    {
      ob_error_make (err, o->workdir ? OB_ERR_USAGE : OB_ERR_IMAGE, 0, "%s `%s`: not an absolute path",
                     o->workdir ? "-w" : "the image's WorkingDir", r->cwd);
      goto fail;
    }
  if (mkdir_in_root (r->merged, r->cwd, err) < 0)
    goto fail;

  /* /etc/hosts, /etc/hostname, /etc/resolv.conf as in a RUN step */
  {
    const char *hn = o->hostname ? o->hostname : RUN_HOSTNAME;
    char *hosts = ob_xasprintf ("%s/hosts", r->rundir);
    char *hostname = ob_xasprintf ("%s/hostname", r->rundir);
    cleanup_free char *htext = ob_xasprintf ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                                             "127.0.1.1\t%s\n",
                                             hn);
    cleanup_free char *ntext = ob_xasprintf ("%s\n", hn);
    add_mount (r, hosts, "/etc/hosts", false);
    add_mount (r, hostname, "/etc/hostname", false);
    if (ob_write_file_new_at (AT_FDCWD, hosts, htext, strlen (htext), 0644, err) < 0
        || ob_write_file_new_at (AT_FDCWD, hostname, ntext, strlen (ntext), 0644, err) < 0)
      goto fail;
    if (!o->network_none && access ("/etc/resolv.conf", R_OK) == 0)
      add_mount (r, ob_xstrdup ("/etc/resolv.conf"), "/etc/resolv.conf", true);
  }
  /* the caller's volumes last: they may cover what comes before */
  if (o->n_volumes > 0)
    {
      size_t nv = o->n_volumes, nb = r->n_mounts - nv;
      struct ob_sandbox_mount *v = ob_xmalloc (r->n_mounts * sizeof *v);
      memcpy (v, r->mounts + nv, nb * sizeof *v);
      memcpy (v + nb, r->mounts, nv * sizeof *v);
      free (r->mounts);
      r->mounts = v;
    }

  /* single-ID mode: the supervisor answers stat with the owners the
   * image's layers record (and its devices), as in RUN; what the command
   * chowns is recorded in the run's own upper directory, thrown away */
  if (ob_seccomp_build_for (o->userns_single, &r->seccomp, NULL, err) < 0)
    goto fail;

  r->so.rootfs = r->merged;
  r->so.argv = r->argv;
  r->so.env = r->env;
  r->so.cwd = r->cwd;
  /* single-ID mode cannot switch users: the command runs as 0, as RUN */
  r->so.uid = o->userns_single ? 0 : uid;
  r->so.gid = o->userns_single ? 0 : gid;
  r->so.set_groups = !o->userns_single;
  r->so.groups = r->groups;
  r->so.n_groups = n_groups;
  r->so.hostname = o->hostname ? o->hostname : RUN_HOSTNAME;
  r->so.network_none = o->network_none;
  r->so.identity_userns = o->userns_root;
  r->so.seccomp = r->seccomp;
  r->so.mounts = r->mounts;
  r->so.n_mounts = r->n_mounts;
  r->so.stdin_fd = o->stdin_fd;
  r->so.stdout_fd = o->stdout_fd;
  r->so.stderr_fd = o->stderr_fd;
  r->so.tty = o->tty;
  json_decref (config);
  *out = r;
  return 0;
fail:
  json_decref (config);
  ob_run_free (r);
  return -1;
}

int
ob_run_stop_signal (const struct ob_run *r)
{
  return r->stop_signal;
}

int
ob_run_exec (struct ob_run *r, int *status, ob_error_t *err)
{
  if (ob_sandbox_run (&r->so, status, NULL, err) == 0)
    return 0;
  /* a command that cannot be executed: the shell's codes */
  if ((*err)->kind == OB_ERR_STEP && ob_str_has_prefix ((*err)->msg, "exec `"))
    ob_error_set_kind (err, (*err)->status == ENOENT ? 127 : 126);
  return -1;
}

void
ob_run_free (struct ob_run *r)
{
  if (r == NULL)
    return;
  if (r->mounted)
    umount2 (r->merged, MNT_DETACH);
  if (r->rundir)
    {
      ob_error_t e = NULL;
      ob_rm_rf_at (AT_FDCWD, r->rundir, &e);
      ob_error_free (&e);
    }
  ob_seccomp_free (r->seccomp);
  ob_strv_free (r->argv);
  ob_strv_free (r->env);
  ob_strv_free (r->owned);
  free (r->mounts);
  free (r->cwd);
  free (r->merged);
  free (r->rundir);
  free (r);
}
