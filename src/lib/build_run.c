/* build: RUN.  Mounts the step's root filesystem (an overlay of the stage's
 * unpacked layers with a fresh upper directory), runs the command in the
 * sandbox, and turns the upper directory into the step's layer. */
#include "config.h"
#include "build_priv.h"
#include <obuild/binfmt.h>
#include <obuild/link_owner.h>
#include <obuild/rootfs.h>
#include <obuild/sandbox.h>
#include <obuild/seccomp_notify.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define RUN_HOSTNAME "obuild"

/* ---- helpers ---- */

/* The directory of rel (a path in the root, "/a/b": "/a") in upper,
 * reached through no symlink, *base its last name; -1 when it is not
 * there.  The step may have left a link where a mount point's directory
 * was (mv /a /z; ln -s /anywhere /a): followed on the host, the empty
 * files and directories of /anywhere were removed. */
static int
open_parent (int upperfd, const char *rel, const char **base)
{
  cleanup_free char *p = ob_xstrdup (rel);
  char *slash = strrchr (p, '/'), *save = NULL;
  int cur = openat (upperfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  *base = strrchr (rel, '/') ? strrchr (rel, '/') + 1 : rel;
  if (slash)
    *slash = '\0';
  for (char *c = strtok_r (p, "/", &save); c && cur >= 0; c = strtok_r (NULL, "/", &save))
    {
      int fd = strcmp (c, "..") == 0 ? -1 : openat (cur, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      close (cur);
      cur = fd;
    }
  return cur;
}

/* Remove the mount points the sandbox had to create, deepest first, when
 * the step left them empty; then the directories overlayfs copied up only
 * to hold them: empty, not opaque, and with the mode the image has. */
static void
remove_created (struct stage *s, const char *upper, char **created, bool overlay)
{
  cleanup_close int upperfd = open (upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (upperfd < 0)
    return;
  for (size_t i = ob_strv_len (created); i-- > 0;)
    {
      const char *base;
      cleanup_close int dfd = open_parent (upperfd, created[i], &base);
      struct stat st;
      if (dfd < 0 || fstatat (dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      if (S_ISDIR (st.st_mode))
        unlinkat (dfd, base, AT_REMOVEDIR);
      else if (S_ISREG (st.st_mode) && st.st_size == 0)
        unlinkat (dfd, base, 0);
    }
  for (size_t i = ob_strv_len (created); overlay && i-- > 0;)
    {
      cleanup_free char *rel = ob_xstrdup (created[i]);
      char *slash;
      while ((slash = strrchr (rel, '/')) != NULL && slash != rel)
        {
          const struct ob_tree_stat *ts;
          const char *base;
          cleanup_close int dfd = -1;
          cleanup_free char *p = NULL;
          struct stat st;
          char v[4];
          *slash = '\0';
          ts = ob_tree_lookup (s->tree, rel);
          dfd = open_parent (upperfd, rel, &base);
          if (dfd >= 0)
            p = ob_xasprintf ("/proc/self/fd/%d/%s", dfd, base);
          if (ts == NULL || !S_ISDIR (ts->mode) || dfd < 0 || fstatat (dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0
              || !S_ISDIR (st.st_mode) || (st.st_mode & 07777) != (ts->mode & 07777)
              || lgetxattr (p, "user.overlay.opaque", v, sizeof v) > 0)
            break;
          if (unlinkat (dfd, base, AT_REMOVEDIR) < 0)
            break;
        }
    }
}

/* Single-ID mode cannot switch to USER: the step runs as 0 and what it
 * created is recorded as owned by the user (copied-up files keep theirs). */
static int
own_new_entries (struct build *b, struct stage *s, int dfd, const char *rel, uid_t uid, gid_t gid,
                 ob_error_t *err)
{
  cleanup_dir DIR *d = NULL;
  struct dirent *de;
  int fd = openat (dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || (d = fdopendir (fd)) == NULL)
    {
      if (fd >= 0)
        close (fd);
      return ob_error_make (err, OB_ERR_STORE, errno, "walk `%s`", rel);
    }
  while ((de = readdir (d)))
    {
      struct stat st;
      cleanup_free char *path = NULL;
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      path = ob_xasprintf ("%s/%s", rel, de->d_name);
      if (strlen (path) - 1 > OB_LAYER_PATH_MAX) /* (path starts with "/") */
        return ob_layer_path_too_long (path + 1, OB_ERR_STEP, err);
      if (fstatat (dirfd (d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      if (S_ISCHR (st.st_mode) && st.st_rdev == 0)
        continue; /* whiteout */
      if (ob_tree_lookup (s->tree, path) == NULL && (S_ISREG (st.st_mode) || S_ISDIR (st.st_mode)))
        if (ob_build_record_owner (dirfd (d), de->d_name, uid, gid, err) < 0)
          return -1;
      if (S_ISDIR (st.st_mode))
        {
          cleanup_close int cfd = openat (dirfd (d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (cfd >= 0 && own_new_entries (b, s, cfd, path, uid, gid, err) < 0)
            return -1;
        }
    }
  return 0;
}

/* The heredoc script of a `#!` RUN as an executable, read-only file in
 * *fd: a memfd (no file in the store or the root), reopened read-only so
 * that no writer is left (execve refuses a file open for writing). */
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

static int
script_memfd (const char *data, int *fd, ob_error_t *err)
{
  cleanup_close int w = -1;
  char self[64];
  /* MFD_EXEC: where vm.memfd_noexec=1 a memfd is otherwise sealed
   * noexec; kernels before 6.3 do not know the flag (EINVAL) */
  w = memfd_create ("obuild-heredoc", MFD_CLOEXEC | MFD_EXEC);
  if (w < 0 && errno == EINVAL)
    w = memfd_create ("obuild-heredoc", MFD_CLOEXEC);
  if (w < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "memfd_create");
  if (ob_write_all (w, data, strlen (data), err) < 0)
    return -1;
  if (fchmod (w, 0755) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "chmod memfd");
  snprintf (self, sizeof self, "/proc/self/fd/%d", w);
  *fd = open (self, O_RDONLY | O_CLOEXEC);
  if (*fd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "reopen memfd");
  return 0;
}

/* argv for the step: exec form as is; shell form through SHELL; heredocs
 * either as the script itself or appended for the shell to read. */
static int
step_argv (struct build *b, struct stage *s, const struct ob_instr *in, char ***argv, char **stdin_data,
           bool *script_file, ob_error_t *err)
{
  json_t *sh = json_object_get (ob_image_config_runtime (s->config), "Shell");
  char **v = ob_xmalloc0 (sizeof (char *));
  size_t i;
  json_t *e;
  *stdin_data = NULL;
  *script_file = false;
  if (in->json)
    {
      size_t n = 0;
      for (size_t k = 0; k < in->n_args; k++)
        ob_strv_push (&v, &n, ob_xstrdup (in->args[k]));
      if (n == 0)
        {
          ob_strv_free (v);
          return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN requires a command");
        }
      *argv = v;
      return 0;
    }
  if (json_is_array (sh) && json_array_size (sh) > 0)
    {
      size_t n = 0;
      json_array_foreach (sh, i, e) if (json_string_value (e)) /* a hostile config's non-strings: skipped, as before */
        ob_strv_push (&v, &n, ob_xstrdup (json_string_value (e)));
    }
  else
    {
      ob_strv_add (&v, "/bin/sh");
      ob_strv_add (&v, "-c");
    }
  if (in->n_heredocs > 0)
    {
      char *name = NULL;
      bool expand, chomp;
      const char *rest = in->rest ? in->rest : "";
      while (*rest == ' ' || *rest == '\t')
        rest++;
      if (ob_dockerfile_heredoc_word (rest, &name, &expand, &chomp) && strchr (rest, ' ') == NULL)
        {
          /* RUN <<EOF: the heredoc is the script. */
          const char *body = in->heredocs[0].content;
          free (name);
          if (ob_str_has_prefix (body, "#!"))
            {
              /* an interpreter line: as BuildKit, the heredoc is a file of
               * mode 0755 that SHELL runs by its path, so the kernel reads
               * the #! line and gives the interpreter the script's path
               * (`#!/usr/bin/awk -f` works).  BuildKit mounts it under
               * /dev/pipes, which the sandbox keeps as its own: here the
               * file is a read-only memfd on standard input, run as
               * /dev/stdin. */
              ob_strv_add (&v, "/dev/stdin");
              *script_file = true;
            }
          else
            {
              /* the shell without -c reads the script from standard input */
              size_t n = ob_strv_len (v);
              if (n > 1 && strcmp (v[n - 1], "-c") == 0)
                {
                  free (v[n - 1]);
                  v[n - 1] = NULL;
                }
            }
          *stdin_data = ob_xstrdup (body);
          *argv = v;
          return 0;
        }
      free (name);
      /* cmd <<EOF ...: give the shell the heredocs as it would read them */
      struct ob_buf script = { 0 };
      ob_buf_adds (&script, in->rest);
      for (size_t k = 0; k < in->n_heredocs; k++)
        {
          ob_buf_addc (&script, '\n');
          ob_buf_adds (&script, in->heredocs[k].content);
          ob_buf_adds (&script, in->heredocs[k].name);
        }
      ob_strv_take (&v, ob_buf_steal (&script));
      *argv = v;
      return 0;
    }
  ob_strv_add (&v, in->rest ? in->rest : "");
  *argv = v;
  return 0;
}

static char *
history_of (char **argv)
{
  struct ob_buf h = { 0 };
  ob_buf_adds (&h, "RUN");
  for (size_t i = 0; argv[i]; i++)
    {
      ob_buf_addc (&h, ' ');
      ob_buf_adds (&h, argv[i]);
    }
  return ob_buf_steal (&h);
}

static int
write_small (const char *path, const char *text, ob_error_t *err)
{
  /* the step's own scratch directory: nothing to keep after a crash */
  return ob_write_file_new_at (AT_FDCWD, path, text, strlen (text), 0644, err);
}

/* ---- RUN ---- */

struct run_ctx
{
  char *rundir, *upper, *work, *merged;
  struct ob_layer_precomp *precomp; /* the layer's members made ahead */
  struct timespec since;             /* when the step began */
  const char *scratch;
  const struct ob_layer_opts *lopts;
  bool container;                    /* the step writes obuild's own root */
  bool mounted;
  pthread_t unmounter;
  bool unmounting;
};

/* The step's process exists: make its layer's members ahead, below the
 * upper directory, or in a container's root what changes from now on. */
static void
run_started (void *data)
{
  struct run_ctx *r = data;
  r->precomp = r->container ? ob_layer_precomp_start ("/", r->scratch, r->lopts, &r->since)
                            : ob_layer_precomp_start (r->upper, r->scratch, r->lopts, NULL);
}

static void *
unmount_thread (void *arg)
{
  struct run_ctx *r = arg;
  umount2 (r->merged, MNT_DETACH);
  return NULL;
}

/* Unmount the step's overlay in the background, while the layer is being
 * compressed from its upper directory, which nobody can change any more.
 * Tearing an overlay down evicts every inode it used (0.2 s for 16,000
 * files) and, unless it is volatile, syncs its upper file system (all the
 * data the step wrote: 0.7 s for 300 MB here, more on a real disk). */
static void
run_ctx_unmount_start (struct run_ctx *r)
{
  if (!r->mounted)
    return;
  r->mounted = false;
  if (pthread_create (&r->unmounter, NULL, unmount_thread, r) == 0)
    r->unmounting = true;
  else
    umount2 (r->merged, MNT_DETACH);
}

static void
run_ctx_unmount_wait (struct run_ctx *r)
{
  if (r->unmounting)
    pthread_join (r->unmounter, NULL);
  r->unmounting = false;
}

static void
run_ctx_clear (struct run_ctx *r)
{
  run_ctx_unmount_wait (r);
  if (r->mounted)
    umount2 (r->merged, MNT_DETACH);
  ob_layer_precomp_free (r->precomp);
  free (r->rundir);
  free (r->upper);
  free (r->work);
  free (r->merged);
}

int
ob_build_run_step (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  struct run_ctx rc = { 0 };
  struct ob_sandbox_opts so = { 0 };
  struct ob_sandbox_mount mounts[4];
  size_t n_mounts = 0;
  struct ob_build_mounts bm = { 0 }; /* RUN --mount */
  cleanup_free struct ob_sandbox_mount *all_mounts = NULL;
  const struct ob_flag *f_net = ob_instr_flag (in, "network");
  const char *user = json_string_value (json_object_get (ob_image_config_runtime (s->config), "User"));
  const char *wd = json_string_value (json_object_get (ob_image_config_runtime (s->config), "WorkingDir"));
  cleanup_strv char **argv = NULL;
  cleanup_strv char **env = NULL;
  size_t n_env = 0;
  cleanup_strv char **created = NULL;
  cleanup_strv char **lowers = NULL;
  cleanup_free char *stdin_data = NULL;
  cleanup_free char *passwd = NULL;
  cleanup_free char *group = NULL;
  cleanup_free char *hosts = NULL;
  cleanup_free char *hostname = NULL;
  cleanup_free char *aptconf = NULL;
  cleanup_free char *created_by = NULL;
  cleanup_free char *empty = NULL;
  cleanup_close int upperfd = -1;
  gid_t groups[64];
  uid_t uid = 0;
  gid_t gid = 0;
  int status = 0, r = -1;
  int stdin_pipe[2] = { -1, -1 };
  struct ob_build_output *capture = NULL;
  int out_fd = -1;
  bool copy, script_file = false;
  const char *root;
  char cache_key[72];
  size_t layers_before = 0;

  /* --security: the parser lets only sandbox (the default) through */
  so.network_none = b->o->network_none;
  if (f_net && f_net->value)
    {
      if (strcmp (f_net->value, "none") == 0)
        so.network_none = true;
      else if (strcmp (f_net->value, "host") == 0 || strcmp (f_net->value, "default") == 0)
        so.network_none = false;
      else
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE,
                                     "RUN --network=%s: expected none, host or default", f_net->value);
    }
  if (step_argv (b, s, in, &argv, &stdin_data, &script_file, err) < 0)
    return -1;
  /* the image's metadata tree (a read of every layer) is built only when
   * a RUN needs it (mount points to clean up, owners to record, the copy
   * snapshotter) */
  {
    /* the cache key: everything the command can see, never secret values */
    struct ob_sha256 *h = ob_build_cache_begin (b, s, "RUN");
    json_t *cenv = json_object_get (ob_image_config_runtime (s->config), "Env");
    size_t k;
    json_t *e;
    int hit;
    for (k = 0; argv[k]; k++)
      ob_build_cache_add (h, argv[k]);
    ob_build_cache_add (h, "\1stdin");
    ob_build_cache_add (h, stdin_data);
    json_array_foreach (cenv, k, e) ob_build_cache_add (h, json_string_value (e));
    ob_build_cache_add (h, "\1args");
    for (k = 0; k < s->n_args; k++)
      if (s->arg_vals[k])
        {
          ob_build_cache_add (h, s->arg_keys[k]);
          ob_build_cache_add (h, s->arg_vals[k]);
        }
    ob_build_cache_add (h, "\1user");
    ob_build_cache_add (h, user);
    ob_build_cache_add (h, wd);
    ob_build_cache_add (h, so.network_none ? "net=none" : "net=host");
    /* single-ID layers record chown's owners where the kernel lets the
     * supervisor see the calls: not the same layers as without ("devices":
     * and mknod's devices, "links" and symlinks' owners, which layers cached
     * before did not hold) */
    ob_build_cache_add (h, !b->o->userns_single ? "userns=mapped"
                           : ob_seccomp_notify_available () ? "userns=single,owners,devices,links"
                                                            : "userns=single");
    for (k = 0; k < in->n_flags; k++)
      if (strcmp (in->flags[k].name, "mount") == 0)
        {
          /* a bind of the context: what it binds is part of the key */
          cleanup_free char *spec = NULL;
          cleanup_free char *src = NULL;
          bool bind = true, from = false;
          char *save = NULL;
          ob_build_cache_add (h, in->flags[k].value);
          if (ob_build_word (b, s, in, in->flags[k].value ? in->flags[k].value : "", &spec, err) < 0)
            {
              ob_sha256_free (h);
              return -1;
            }
          for (char *kv = strtok_r (spec, ",", &save); kv; kv = strtok_r (NULL, ",", &save))
            {
              if (ob_str_has_prefix (kv, "type="))
                bind = strcmp (kv + 5, "bind") == 0;
              else if (ob_str_has_prefix (kv, "from="))
                {
                  /* a stage's content is its cache key */
                  struct stage *fs = ob_build_find_stage (b, kv + 5, s->index);
                  from = true;
                  if (fs)
                    ob_build_cache_add (h, fs->cache_key);
                }
              else if (ob_str_has_prefix (kv, "source=") || ob_str_has_prefix (kv, "src="))
                {
                  free (src);
                  src = ob_xstrdup (strchr (kv, '=') + 1);
                }
            }
          if (bind && !from)
            {
              cleanup_strv char **matches = NULL;
              ob_error_t e2 = NULL;
              /* a missing source is reported by the mount itself */
              if (ob_context_resolve (b->ctxfd, b->ig, src && *src ? src : ".", false, &matches, &e2) == 0)
                for (size_t q = 0; matches && matches[q]; q++)
                  {
                    /* by its real path: what .dockerignore hides behind a
                     * symlinked directory is not in the mount, nor the key */
                    cleanup_free char *real = NULL;
                    if (b->ig && ob_context_real_path (b->ctxfd, b->ig, matches[q], &real, &e2) < 0)
                      break;
                    if (ob_build_digest_source (b, b->ctxfd, b->ig, real ? real : matches[q], true, h, &e2) < 0)
                      break;
                  }
              ob_error_free (&e2);
            }
        }
    hit = ob_build_cache_try (b, s, h, cache_key, err);
    if (hit != 0)
      return hit < 0 ? -1 : 0;
    layers_before = s->n_layers;
  }
  /* a step found in the cache needs no isolation; one that must run does */
  if (b->o->container)
    {
      /* what needs a namespace or mount(2) cannot be had in the container */
      if (so.network_none)
        return ob_build_instr_error (b, in, err, OB_ERR_USERNS,
                                     "RUN --network=none needs a network namespace, which --isolation=container cannot create");
      for (size_t k = 0; k < in->n_flags; k++)
        if (strcmp (in->flags[k].name, "mount") == 0)
          return ob_build_instr_error (b, in, err, OB_ERR_USERNS,
                                       "RUN --mount needs mount(2), which --isolation=container cannot use");
    }
  else if (b->o->no_isolation)
    return ob_build_instr_error (b, in, err, OB_ERR_USERNS, "RUN: %s", b->o->no_isolation);
  /* the stage's programs are of its image's architecture: a foreign one
   * runs through qemu-user, which must be registered to work in here */
  if (ob_binfmt_check (json_string_value (json_object_get (s->config, "os")),
                       json_string_value (json_object_get (s->config, "architecture")), err) < 0)
    return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
  if (b->seccomp == NULL)
    {
      bool no_owners;
      if (ob_seccomp_build_for (b->o->userns_single, &b->seccomp, &no_owners, err) < 0)
        return -1;
      /* once per build: the filter is compiled once */
      if (no_owners && b->o->log)
        b->o->log (b->o->log_data, "warning: this kernel cannot pass chown calls to obuild "
                                   "(seccomp user notification): in single-ID mode, files a RUN step "
                                   "chowns keep root as their owner in the layer");
    }

  rc.rundir = ob_build_scratch_dir (b, "run", err);
  if (rc.rundir == NULL)
    return -1;
  rc.upper = ob_xasprintf ("%s/upper", rc.rundir);
  rc.work = ob_xasprintf ("%s/work", rc.rundir);
  rc.merged = ob_xasprintf ("%s/merged", rc.rundir);
  empty = ob_xasprintf ("%s/empty", rc.rundir);
  if (mkdir (rc.upper, 0755) < 0 || mkdir (rc.work, 0700) < 0 || mkdir (rc.merged, 0755) < 0
      || mkdir (empty, 0755) < 0)
    {
      ob_error_make (err, OB_ERR_STORE, errno, "prepare `%s`", rc.rundir);
      goto out;
    }
  copy = b->use_copy || b->o->snapshotter == OB_SNAPSHOTTER_COPY || b->o->container;
  if (!copy)
    {
      if (ob_build_ensure_lowers (b, s, err) < 0)
        {
          ob_error_wrap (err, "%s:%d", b->dfname, in->line);
          goto out;
        }
      for (size_t i = 0; i < s->n_layers; i++)
        ob_strv_add (&lowers, s->layer_dirs[i]);
      if (lowers == NULL)
        ob_strv_add (&lowers, empty); /* FROM scratch: overlay needs a lower */
      /* the overlay's root is the upper directory: the owners of the
       * root's symlinks the layers recorded there (single-ID mode) must
       * be on it, the topmost layer's first */
      for (size_t i = s->n_layers; i-- > 0;)
        ob_link_owner_inherit (s->layer_dirs[i], rc.upper);
      if (ob_rootfs_mount_overlay (lowers, ob_strv_len (lowers), rc.rundir, rc.upper, rc.work, rc.merged, err) == 0)
        rc.mounted = true;
      else if (b->o->snapshotter == OB_SNAPSHOTTER_AUTO)
        {
          /* no overlayfs here: the copy snapshotter gives the same layers */
          if (b->o->log)
            {
              cleanup_free char *w = ob_xasprintf ("warning: %s; using the copy snapshotter", (*err)->msg);
              b->o->log (b->o->log_data, w);
            }
          ob_error_free (err);
          b->use_copy = copy = true;
        }
      else
        goto out;
    }
  if (copy && (b->o->container ? ob_build_container_prepare (b, s, err) : ob_build_copyfs_prepare (b, s, err)) < 0)
    goto out;
  root = copy ? s->copy_rootfs : rc.merged;
  if (ob_build_mounts_prepare (b, s, in, root, &bm, err) < 0)
    goto out;

  /* user, environment, files of the step */
  passwd = ob_rootfs_read (root, "/etc/passwd");
  group = ob_rootfs_read (root, "/etc/group");
  if (user && *user)
    {
      if (ob_build_resolve_owner (user, passwd, group, &uid, &gid, err) < 0)
        {
          ob_error_wrap (err, "%s:%d: USER %s", b->dfname, in->line, user);
          goto out;
        }
    }
  /* the ARGs in scope, each as its last declaration with a value says
   * (as BuildKit: a later ARG replaces the earlier one, `ARG x` without a
   * value keeps it), unless an ENV of the image names it; then the
   * image's ENV.  Appended in O(1): 100,000 of either were quadratic. */
  for (size_t i = 0; i < s->n_args; i++)
    if (s->arg_vals[i] && ob_build_index_get (s->arg_index, s->arg_keys[i]) == (long) i
        && ob_build_env_lookup (s, s->arg_keys[i]) == NULL)
      ob_strv_push (&env, &n_env, ob_xasprintf ("%s=%s", s->arg_keys[i], s->arg_vals[i]));
  {
    json_t *cenv = json_object_get (ob_image_config_runtime (s->config), "Env");
    size_t i;
    json_t *e;
    json_array_foreach (cenv, i, e) if (json_string_value (e))
      ob_strv_push (&env, &n_env, ob_xstrdup (json_string_value (e)));
  }
  if (!ob_strv_env_has (env, "PATH"))
    ob_strv_add (&env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!ob_strv_env_has (env, "HOME"))
    {
      cleanup_free char *home = passwd ? ob_rootfs_passwd_field (passwd, uid, 5) : NULL;
      ob_strv_take (&env, ob_xasprintf ("HOME=%s", home && *home ? home : uid == 0 ? "/root" : "/"));
    }
  if (!ob_strv_env_has (env, "HOSTNAME"))
    ob_strv_add (&env, "HOSTNAME=" RUN_HOSTNAME);
  for (size_t i = 0; bm.env && bm.env[i]; i++)
    {
      /* RUN --mount variables (secret env=, SSH_AUTH_SOCK) replace any other */
      size_t k = strcspn (bm.env[i], "=") + 1, w = 0;
      for (size_t j = 0; env && env[j]; j++)
        if (strncmp (env[j], bm.env[i], k) == 0)
          free (env[j]);
        else
          env[w++] = env[j];
      if (env)
        env[w] = NULL;
      ob_strv_add (&env, bm.env[i]);
    }

  hosts = ob_xasprintf ("%s/hosts", rc.rundir);
  hostname = ob_xasprintf ("%s/hostname", rc.rundir);
  if (write_small (hosts, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" RUN_HOSTNAME "\n", err) < 0
      || write_small (hostname, RUN_HOSTNAME "\n", err) < 0)
    goto out;
  if (!b->o->container)
    {
      mounts[n_mounts++] = (struct ob_sandbox_mount){ hosts, "/etc/hosts", false };
      mounts[n_mounts++] = (struct ob_sandbox_mount){ hostname, "/etc/hostname", false };
    }
  if (!b->o->container && !so.network_none && access ("/etc/resolv.conf", R_OK) == 0)
    mounts[n_mounts++] = (struct ob_sandbox_mount){ "/etc/resolv.conf", "/etc/resolv.conf", true };
  if (b->o->userns_single)
    {
      /* the image's /etc/apt, its symlinks resolved inside the root
       * (followed on the host, a link told the step whether a host path
       * existed) */
      cleanup_close int rootfd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
      cleanup_free char *apt = NULL;
      ob_error_t e = NULL;
      bool has_apt = rootfd >= 0 && ob_context_real_path_in_root (rootfd, "etc/apt", &apt, &e) == 0;
      ob_error_free (&e);
      if (has_apt)
        {
          /* apt drops privileges to _apt and checks it worked, which the
           * faked setresuid cannot satisfy: tell apt to stay root, through a
           * file that exists only while the step runs. */
          aptconf = ob_xasprintf ("%s/apt.conf", rc.rundir);
          if (write_small (aptconf, "APT::Sandbox::User \"root\";\n", err) < 0)
            goto out;
          mounts[n_mounts++] = (struct ob_sandbox_mount){ aptconf, "/run/.obuild-apt.conf", true };
          ob_strv_add (&env, "APT_CONFIG=/run/.obuild-apt.conf");
        }
    }

  if (stdin_data && script_file)
    {
      if (script_memfd (stdin_data, &stdin_pipe[0], err) < 0)
        {
          ob_error_wrap (err, "%s:%d: RUN heredoc", b->dfname, in->line);
          goto out;
        }
    }
  else if (stdin_data)
    {
      /* the script on standard input: a pipe, fed before waiting */
      if (pipe2 (stdin_pipe, O_CLOEXEC) < 0)
        {
          ob_error_make (err, OB_ERR_STORE, errno, "pipe");
          goto out;
        }
      if (strlen (stdin_data) > 65536)
        {
          ob_error_make (err, OB_ERR_DOCKERFILE, 0, "%s:%d: RUN heredoc larger than 64 KiB", b->dfname, in->line);
          goto out;
        }
      fcntl (stdin_pipe[1], F_SETPIPE_SZ, 1 << 17);
      if (ob_write_all (stdin_pipe[1], stdin_data, strlen (stdin_data), err) < 0)
        goto out;
      close (stdin_pipe[1]);
      stdin_pipe[1] = -1;
    }

  so.rootfs = root;
  so.argv = argv;
  so.env = env;
  so.cwd = wd && *wd ? wd : "/";
  so.uid = b->o->userns_single ? 0 : uid;
  so.gid = b->o->userns_single ? 0 : gid;
  so.set_groups = !b->o->userns_single;
  so.identity_userns = b->o->userns_root && !b->o->container;
  so.no_namespaces = b->o->container;
  so.groups = groups;
  so.n_groups = 0;
  if (so.set_groups && user && *user)
    so.n_groups = ob_rootfs_groups (user, passwd, group, uid, gid, groups, 64);
  so.hostname = b->o->container ? NULL : RUN_HOSTNAME;
  so.seccomp = b->seccomp;
  all_mounts = ob_xmalloc ((n_mounts + bm.n) * sizeof *all_mounts);
  memcpy (all_mounts, mounts, n_mounts * sizeof *mounts);
  if (bm.n > 0)
    memcpy (all_mounts + n_mounts, bm.mounts, bm.n * sizeof *bm.mounts);
  so.mounts = all_mounts;
  so.n_mounts = n_mounts + bm.n;
  so.stdin_fd = stdin_pipe[0];
  if (ob_build_output_start (b, s, in, &capture, &out_fd, err) < 0)
    goto out;
  so.stdout_fd = so.stderr_fd = out_fd;
  /* the layer is compressed as the step writes it, where a core is idle
   * (not when the new files will be chowned after the step: a new ctime),
   * by a thread started once the step's process exists */
  if (b->o->container || (!copy && !(b->o->userns_single && (uid != 0 || gid != 0))))
    {
      clock_gettime (CLOCK_REALTIME, &rc.since);
      rc.scratch = ob_txn_scratch (b->txn);
      rc.lopts = &b->lopts;
      rc.container = b->o->container;
      so.started = run_started;
      so.started_data = &rc;
    }
  r = ob_sandbox_run (&so, &status, &created, err);
  ob_layer_precomp_stop (rc.precomp);
  ob_build_output_finish (&capture, &out_fd);
  if (r < 0)
    {
      ob_error_wrap (err, "%s:%d: RUN", b->dfname, in->line);
      goto out;
    }
  r = -1;
  run_ctx_unmount_start (&rc);
  if (created && ob_build_stage_tree (b, s, err) < 0)
    goto out;
  remove_created (s, copy ? root : rc.upper, created, !copy);
  if (status != 0)
    {
      ob_error_make (err, OB_ERR_STEP, 0, "%s:%d: %s: the command exited with status %d", b->dfname, in->line,
                     in->original, status);
      goto out;
    }
  if (b->o->container)
    {
      /* the change is read straight from the container's root */
      struct ob_changes *ch = NULL;
      upperfd = open ("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      created_by = history_of (argv);
      r = upperfd < 0 ? ob_error_make (err, OB_ERR_STORE, errno, "open `/`") : ob_build_copyfs_changes (b, s, upperfd, &ch, err);
      b->precomp = rc.precomp;
      if (r == 0)
        r = ob_build_commit_changes (b, s, upperfd, ch, NULL, created_by, true, err);
      b->precomp = NULL;
      ob_changes_free (ch);
      if (r == 0)
        {
          ob_build_cache_done (b, s, cache_key, layers_before);
          s->copy_applied = s->n_layers; /* the root already holds this change */
          r = ob_build_container_mark (b, s, err);
        }
      if (r < 0)
        ob_error_wrap (err, "%s:%d", b->dfname, in->line);
      goto out;
    }
  if (copy && ob_build_copyfs_diff (b, s, rc.upper, err) < 0)
    {
      ob_error_wrap (err, "%s:%d", b->dfname, in->line);
      goto out;
    }
  upperfd = open (rc.upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (upperfd < 0)
    {
      ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", rc.upper);
      goto out;
    }
  if (b->o->userns_single && (uid != 0 || gid != 0)
      && (ob_build_stage_tree (b, s, err) < 0 || own_new_entries (b, s, upperfd, "", uid, gid, err) < 0))
    {
      ob_error_wrap (err, "%s:%d", b->dfname, in->line);
      goto out;
    }
  created_by = history_of (argv);
  /* the copy snapshotter's upper shares inodes with its root, which later
   * steps change: it cannot serve as an unpacked layer */
  b->precomp = rc.precomp;
  r = ob_build_commit_layer (b, s, upperfd, copy ? NULL : rc.upper, created_by, true, err);
  b->precomp = NULL;
  if (r < 0)
    {
      r = -1;
      ob_error_wrap (err, "%s:%d", b->dfname, in->line);
      goto out;
    }
  r = -1;
  ob_build_cache_done (b, s, cache_key, layers_before);
  if (copy)
    {
      ob_error_t e = NULL;
      s->copy_applied = s->n_layers; /* the root already holds this change */
      ob_rm_rf_at (AT_FDCWD, rc.upper, &e);
      ob_error_free (&e);
      ob_build_copyfs_settle (s);
    }
  run_ctx_unmount_wait (&rc);
  {
    ob_error_t e = NULL;
    ob_rm_rf_at (AT_FDCWD, rc.work, &e);
    ob_error_free (&e);
  }
  r = 0;
out:
  if (stdin_pipe[0] >= 0)
    close (stdin_pipe[0]);
  if (stdin_pipe[1] >= 0)
    close (stdin_pipe[1]);
  ob_build_mounts_release (&bm);
  run_ctx_clear (&rc);
  return r;
}
