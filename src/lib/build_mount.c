/* build: RUN --mount (BuildKit syntax).  Each --mount flag becomes a bind
 * mount for the sandbox:
 *   bind    a path of the build context, or of another stage or image
 *           (read-only by default; rw binds a private copy, discarded);
 *   cache   a directory of the store that persists across builds
 *           ($OBUILD_ROOT/cache-mounts/<userns mode>/<sha256 of id>),
 *           with sharing=shared|private|locked through flock(2);
 *   tmpfs   a fresh empty directory, discarded after the step;
 *   secret  a file written for the step only (and/or an environment
 *           variable), from --secret;
 *   ssh     the agent socket given with --ssh.
 * Mounts sit above the step's overlay: what is written through them never
 * reaches the upper directory, so never a layer.  Secret values never
 * appear in cache_id, messages or the history. */
#include "config.h"
#include "build_priv.h"
#include <obuild/sandbox.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum mount_type
{
  MT_BIND,
  MT_CACHE,
  MT_TMPFS,
  MT_SECRET,
  MT_SSH,
};

enum sharing
{
  SH_SHARED,
  SH_PRIVATE,
  SH_LOCKED,
};

static const char *const type_names[] = { "bind", "cache", "tmpfs", "secret", "ssh" };

struct mspec
{
  enum mount_type type;
  char *target, *source, *from, *id, *env, *size;
  int readonly; /* -1: the type's default */
  enum sharing sharing;
  bool required;
  bool have_mode;
  mode_t mode;
  uid_t uid;
  gid_t gid;
};

static void
mspec_clear (struct mspec *m)
{
  free (m->target);
  free (m->source);
  free (m->from);
  free (m->id);
  free (m->env);
  free (m->size);
  memset (m, 0, sizeof *m);
}

/* One prepared mount before sorting: source is owned by the result. */
struct prepared
{
  char *source, *target;
  bool readonly;
  bool private_dir; /* source is a directory of ours: nested mount points may be made in it */
};

/* ---- parsing ---- */

/* Split a --mount value on commas outside quotes (quotes are kept: the
 * value is expanded, and unquoted, afterwards, like BuildKit's csv+lexer). */
static char **
split_fields (const char *v)
{
  char **out = ob_xmalloc0 (sizeof (char *));
  struct ob_buf cur = { 0 };
  char q = 0;
  for (const char *p = v;; p++)
    {
      if (*p == '\0' || (*p == ',' && q == 0))
        {
          ob_strv_take (&out, cur.data ? ob_buf_steal (&cur) : ob_xstrdup (""));
          if (*p == '\0')
            break;
          continue;
        }
      if (q == 0 && (*p == '"' || *p == '\''))
        q = *p;
      else if (q != 0 && *p == q)
        q = 0;
      ob_buf_addc (&cur, *p);
    }
  return out;
}

/* Go's strconv.ParseBool. */
static int
parse_bool (const char *s, bool *out)
{
  static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True" };
  static const char *const f[] = { "0", "f", "F", "FALSE", "false", "False" };
  for (size_t i = 0; i < 6; i++)
    {
      if (strcmp (s, t[i]) == 0)
        return *out = true, 0;
      if (strcmp (s, f[i]) == 0)
        return *out = false, 0;
    }
  return -1;
}

static int
parse_uint (const char *s, unsigned long max, int base, unsigned long *out)
{
  char *end;
  unsigned long v;
  if (*s == '\0' || *s == '-' || *s == '+')
    return -1;
  errno = 0;
  v = strtoul (s, &end, base);
  if (errno || *end || v > max)
    return -1;
  *out = v;
  return 0;
}

static int
parse_mount (struct build *b, struct stage *s, const struct ob_instr *in, const char *raw, struct mspec *m,
             ob_error_t *err)
{
  cleanup_strv char **fields = split_fields (raw);
  memset (m, 0, sizeof *m);
  m->type = MT_BIND;
  m->readonly = -1;
  m->sharing = SH_SHARED;

  /* the type first: which keys are valid depends on it */
  for (size_t i = 0; fields[i]; i++)
    if (strncasecmp (fields[i], "type=", 5) == 0)
      {
        const char *t = fields[i] + 5;
        size_t k;
        for (k = 0; k < sizeof type_names / sizeof type_names[0]; k++)
          if (strcasecmp (t, type_names[k]) == 0)
            break;
        if (k == sizeof type_names / sizeof type_names[0])
          return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount: unsupported mount type \"%s\"", t);
        m->type = (enum mount_type) k;
      }

  for (size_t i = 0; fields[i]; i++)
    {
      const char *f = fields[i];
      const char *eq = strchr (f, '=');
      cleanup_free char *key = eq ? ob_xstrndup (f, (size_t) (eq - f)) : ob_xstrdup (f);
      cleanup_free char *val = NULL;
      for (char *p = key; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
          *p = (char) (*p - 'A' + 'a');
      if (*f == '\0')
        continue;
      if (eq == NULL)
        {
          if (strcmp (key, "readonly") == 0 || strcmp (key, "ro") == 0)
            m->readonly = 1;
          else if (strcmp (key, "readwrite") == 0 || strcmp (key, "rw") == 0)
            m->readonly = 0;
          else if (strcmp (key, "required") == 0 && (m->type == MT_SECRET || m->type == MT_SSH))
            m->required = true;
          else
            return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount: unexpected key '%s' in '%s'", key, f);
          continue;
        }
      if (strcmp (key, "type") == 0)
        continue;
      if (ob_build_word (b, s, in, eq + 1, &val, err) < 0)
        return -1;
      if (strcmp (key, "from") == 0 && (m->type == MT_BIND || m->type == MT_CACHE))
        free (m->from), m->from = steal_pointer (&val);
      else if ((strcmp (key, "source") == 0 || strcmp (key, "src") == 0) && m->type != MT_TMPFS && m->type != MT_SSH)
        {
          if (m->type == MT_SECRET)
            free (m->id), m->id = steal_pointer (&val); /* BuildKit: src is the id of a secret */
          else
            free (m->source), m->source = steal_pointer (&val);
        }
      else if (strcmp (key, "target") == 0 || strcmp (key, "dst") == 0 || strcmp (key, "destination") == 0)
        free (m->target), m->target = steal_pointer (&val);
      else if (strcmp (key, "readonly") == 0 || strcmp (key, "ro") == 0 || strcmp (key, "readwrite") == 0
               || strcmp (key, "rw") == 0)
        {
          bool v;
          if (parse_bool (val, &v) < 0)
            return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount: invalid value for %s: %s", key, val);
          m->readonly = (key[0] == 'r' && (key[1] == 'o' || strcmp (key, "readonly") == 0)) ? v : !v;
        }
      else if (strcmp (key, "required") == 0 && (m->type == MT_SECRET || m->type == MT_SSH))
        {
          if (parse_bool (val, &m->required) < 0)
            return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount: invalid value for required: %s", val);
        }
      else if (strcmp (key, "sharing") == 0 && m->type == MT_CACHE)
        {
          if (strcasecmp (val, "shared") == 0)
            m->sharing = SH_SHARED;
          else if (strcasecmp (val, "private") == 0)
            m->sharing = SH_PRIVATE;
          else if (strcasecmp (val, "locked") == 0)
            m->sharing = SH_LOCKED;
          else
            return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE,
                                         "RUN --mount: unsupported sharing value \"%s\" (expected shared, private or locked)", val);
        }
      else if (strcmp (key, "id") == 0 && m->type != MT_BIND && m->type != MT_TMPFS)
        free (m->id), m->id = steal_pointer (&val);
      else if (strcmp (key, "size") == 0 && m->type == MT_TMPFS)
        free (m->size), m->size = steal_pointer (&val);
      else if (strcmp (key, "env") == 0 && m->type == MT_SECRET)
        free (m->env), m->env = steal_pointer (&val);
      else if ((strcmp (key, "mode") == 0 || strcmp (key, "uid") == 0 || strcmp (key, "gid") == 0)
               && (m->type == MT_CACHE || m->type == MT_SECRET || m->type == MT_SSH))
        {
          unsigned long v;
          bool mode = key[0] == 'm';
          if (parse_uint (val, mode ? 07777 : 0xfffffffeUL, mode ? 8 : 10, &v) < 0)
            return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount: invalid value for %s: %s", key, val);
          if (mode)
            m->mode = (mode_t) v, m->have_mode = true;
          else if (key[0] == 'u')
            m->uid = (uid_t) v;
          else
            m->gid = (gid_t) v;
        }
      else
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount: unexpected key '%s' in '%s'", key, f);
    }

  switch (m->type)
    {
    case MT_BIND:
    case MT_CACHE:
    case MT_TMPFS:
      if (m->target == NULL || *m->target == '\0')
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount type=%s: target is required",
                                     type_names[m->type]);
      break;
    case MT_SECRET:
      if ((m->id == NULL || *m->id == '\0') && (m->target == NULL || *m->target == '\0'))
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount type=secret: id or target is required");
      break;
    case MT_SSH:
      break;
    }
  if (m->type == MT_CACHE && (m->from || m->source))
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE,
                                 "RUN --mount type=cache: seeding a cache from=/source= is not supported");
  return 0;
}

/* ---- helpers ---- */

/* The host path of rel under dirfd, resolved like the kernel would inside
 * it (beneath: the context; in root: a stage's root file system). */
static char *
host_path (int dirfd, const char *dir_path, const char *rel, bool in_root)
{
  struct open_how how = { .flags = O_PATH | O_CLOEXEC,
                          .resolve = (in_root ? RESOLVE_IN_ROOT : RESOLVE_BENEATH) | RESOLVE_NO_MAGICLINKS };
  cleanup_close int fd = (int) syscall (SYS_openat2, dirfd, rel, &how, sizeof how);
  char link[64], buf[PATH_MAX];
  ssize_t n;
  if (fd < 0)
    {
      /* no openat2: the resolution already checked the path; realpath it */
      cleanup_free char *p = ob_xasprintf ("%s/%s", dir_path, rel);
      cleanup_free char *root = realpath (dir_path, NULL);
      char *r = realpath (p, NULL);
      if (errno != ENOSYS && r == NULL)
        return NULL;
      if (r && root && (strcmp (r, root) == 0 || (ob_str_has_prefix (r, root) && r[strlen (root)] == '/')))
        return r;
      free (r);
      return NULL;
    }
  snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
  n = readlink (link, buf, sizeof buf - 1);
  if (n <= 0)
    return NULL;
  buf[n] = '\0';
  return ob_xstrdup (buf);
}

static char *
ctx_dir_path (struct build *b)
{
  char link[64], buf[PATH_MAX];
  ssize_t n;
  snprintf (link, sizeof link, "/proc/self/fd/%d", b->ctxfd);
  n = readlink (link, buf, sizeof buf - 1);
  if (n <= 0)
    return realpath (b->o->context_dir, NULL);
  buf[n] = '\0';
  return ob_xstrdup (buf);
}

/* The root file system of stage or image `name` (as COPY --from). */
static int
from_stage (struct build *b, struct stage *s, const struct ob_instr *in, const char *name, struct stage **out,
            ob_error_t *err)
{
  struct stage *from = ob_build_find_stage (b, name, s->index);
  cleanup_close int rootfd = -1;
  if (from == NULL && ob_build_find_stage (b, name, b->n_stages) != NULL)
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount from=%s: that stage comes later", name);
  if (from == NULL)
    {
      for (size_t k = 0; k < b->n_image_stages; k++)
        if (b->image_stages[k]->name && strcmp (b->image_stages[k]->name, name) == 0)
          from = b->image_stages[k];
      if (from == NULL)
        {
          struct stage *img = ob_xmalloc0 (sizeof *img);
          img->name = ob_xstrdup (name);
          b->image_stages = ob_xrealloc (b->image_stages, (b->n_image_stages + 1) * sizeof *b->image_stages);
          b->image_stages[b->n_image_stages++] = img;
          if (ob_build_load_image (b, img, name, err) < 0)
            {
              cleanup_free char *norm = NULL;
              ob_error_t nerr = NULL;
              /* an invalid reference written in the Dockerfile is a Dockerfile
               * error (3), as for FROM, not a usage error of the command line */
              if ((*err)->kind == OB_ERR_USAGE && ob_image_ref_normalize (name, &norm, &nerr) < 0)
                ob_error_set_kind (err, OB_ERR_DOCKERFILE);
              ob_error_free (&nerr);
              return ob_error_wrap (err, "%s:%d: RUN --mount from=%s", b->dfname, in->line, name);
            }
          img->built = true;
          from = img;
        }
    }
  if (!from->built)
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount from=%s: stage was not built", name);
  if (from->rootfs == NULL)
    {
      /* unpacked once, shared with COPY --from (build_copy.c) */
      from->rootfs = ob_build_scratch_dir (b, "rootfs", err);
      if (from->rootfs == NULL)
        return -1;
      rootfd = open (from->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (rootfd < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", from->rootfs);
      for (size_t i = 0; i < from->n_layers; i++)
        {
          cleanup_close int fd = -1;
          if (ob_txn_blob_open (b->txn, from->layers[i].digest, &fd, err) < 0
              || ob_layer_extract (fd, rootfd, "/", true, true, err) < 0)
            {
              ob_error_wrap (err, "unpack layer %s", from->layers[i].digest);
              return ob_error_wrap (err, "%s:%d: RUN --mount from=%s", b->dfname, in->line, name);
            }
        }
    }
  *out = from;
  return 0;
}

static void
add_prepared (struct prepared **v, size_t *n, char *source, const char *target, bool readonly, bool private_dir)
{
  *v = ob_xrealloc (*v, (*n + 1) * sizeof **v);
  (*v)[(*n)++] = (struct prepared){ source, ob_xstrdup (target), readonly, private_dir };
}

/* A fresh directory of the build's scratch area, deleted after the step. */
static char *
step_dir (struct build *b, struct ob_build_mounts *out, const char *what, mode_t mode, ob_error_t *err)
{
  char *d = ob_build_scratch_dir (b, what, err);
  if (d == NULL)
    return NULL;
  ob_strv_add (&out->remove, d);
  if (chmod (d, mode) < 0)
    {
      ob_error_make (err, OB_ERR_STORE, errno, "chmod `%s`", d);
      free (d);
      return NULL;
    }
  return d;
}

/* ---- the mount types ---- */

static int
prepare_bind (struct build *b, struct stage *s, const struct ob_instr *in, struct mspec *m, const char *target,
              struct ob_build_mounts *out, struct prepared **pv, size_t *pn, struct ob_buf *id, ob_error_t *err)
{
  const char *src = m->source && *m->source ? m->source : (m->from ? "/" : ".");
  bool rw = m->readonly == 0;
  struct stage *from = NULL;
  cleanup_close int srcfd = -1;
  cleanup_strv char **matches = NULL;
  cleanup_free char *dir_path = NULL;
  cleanup_free char *hp = NULL;
  struct stat st;
  bool copy = rw;
  int r;

  if (m->from)
    {
      if (from_stage (b, s, in, m->from, &from, err) < 0)
        return -1;
      srcfd = open (from->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dir_path = ob_xstrdup (from->rootfs);
    }
  else
    {
      srcfd = dup (b->ctxfd);
      dir_path = ctx_dir_path (b);
    }
  if (srcfd < 0 || dir_path == NULL)
    return ob_error_make (err, OB_ERR_STORE, errno, "open the source of RUN --mount");
  r = from ? ob_context_resolve_in_root (srcfd, NULL, src, false, &matches, err)
           : ob_context_resolve (srcfd, b->ig, src, false, &matches, err);
  if (r < 0)
    {
      bool outside = strstr ((*err)->msg, "outside") || strstr ((*err)->msg, "escapes");
      ob_error_free (err);
      if (outside)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount source=%s: outside the build context", src);
      return ob_build_instr_error (b, in, err, OB_ERR_CONTEXT, "RUN --mount source=%s: not found in %s", src,
                                   from ? m->from : "the build context");
    }
  if (ob_strv_len (matches) != 1)
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount source=%s: names %zu paths, expected one",
                                 src, ob_strv_len (matches));
  hp = host_path (srcfd, dir_path, matches[0], from != NULL);
  if (hp == NULL || stat (hp, &st) < 0)
    {
      if (from == NULL)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount source=%s: outside the build context", src);
      return ob_build_instr_error (b, in, err, OB_ERR_CONTEXT, "RUN --mount source=%s: not found in %s", src, m->from);
    }
  /* a directory of the context with a .dockerignore: bind a filtered copy,
   * so excluded files stay invisible as with BuildKit */
  if (!copy && from == NULL && S_ISDIR (st.st_mode)
      && (faccessat (b->ctxfd, ".dockerignore", F_OK, AT_SYMLINK_NOFOLLOW) == 0
          || faccessat (b->ctxfd, ".containerignore", F_OK, AT_SYMLINK_NOFOLLOW) == 0))
    copy = true;
  if (copy)
    {
      cleanup_free char *d = step_dir (b, out, "bind", 0755, err);
      cleanup_close int dfd = -1;
      struct ob_copy_opts co = { 0 };
      char *srcs[2] = { matches[0], NULL };
      const char *base = strrchr (matches[0], '/');
      cleanup_free char *dest = NULL;
      if (d == NULL)
        return -1;
      dfd = open (d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", d);
      dest = S_ISDIR (st.st_mode) ? ob_xstrdup ("/") : ob_xasprintf ("/%s", base ? base + 1 : matches[0]);
      if (ob_context_copy (srcfd, from ? NULL : b->ig, srcs, dfd, dest, &co, err) < 0)
        return ob_error_wrap (err, "%s:%d: RUN --mount source=%s", b->dfname, in->line, src);
      add_prepared (pv, pn, S_ISDIR (st.st_mode) ? steal_pointer (&d) : ob_xasprintf ("%s%s", d, dest), target, !rw,
                    S_ISDIR (st.st_mode));
    }
  else
    add_prepared (pv, pn, steal_pointer (&hp), target, true, false);

  ob_buf_adds (id, "bind:");
  ob_buf_adds (id, target);
  ob_buf_adds (id, "<-");
  if (from)
    {
      ob_buf_adds (id, "stage:");
      ob_buf_adds (id, from->n_layers ? from->layers[from->n_layers - 1].digest : "scratch");
      ob_buf_addc (id, ':');
    }
  else
    ob_buf_adds (id, "ctx:");
  ob_buf_adds (id, matches[0]);
  if (rw)
    ob_buf_adds (id, ",rw");
  return 0;
}

/* Take a flock on fd, waiting (interruptibly) when block. 1: taken, 0: busy. */
static int
take_lock (struct build *b, int fd, int op, bool block, const char *what, ob_error_t *err)
{
  bool said = false;
  for (;;)
    {
      struct timespec ts = { 0, 50 * 1000 * 1000 };
      if (flock (fd, op | LOCK_NB) == 0)
        return 1;
      if (errno != EWOULDBLOCK && errno != EINTR)
        return ob_error_make (err, OB_ERR_STORE, errno, "lock the cache mount %s", what);
      if (!block)
        return 0;
      if (b->o->interrupted && *b->o->interrupted)
        return ob_error_make (err, OB_ERR_INTERRUPTED, 0, "interrupted");
      if (!said && b->o->log)
        {
          cleanup_free char *line = ob_xasprintf ("waiting for the cache mount %s (sharing=locked)", what);
          b->o->log (b->o->log_data, line);
          said = true;
        }
      nanosleep (&ts, NULL);
    }
}

static int
prepare_cache (struct build *b, struct stage *s, const struct ob_instr *in, struct mspec *m, const char *target,
               struct ob_build_mounts *out, struct prepared **pv, size_t *pn, struct ob_buf *idb, ob_error_t *err)
{
  const char *id = m->id && *m->id ? m->id : m->target;
  const char *layers = b->o->store->layers;
  const char *mode_name = layers && strrchr (layers, '/') ? strrchr (layers, '/') + 1 : "default";
  mode_t mode = m->have_mode ? m->mode : 0755;
  char dg[OB_DIGEST_LEN];
  cleanup_free char *base = ob_xasprintf ("%s/cache-mounts/%s", b->o->store->root, mode_name);
  cleanup_free char *dir = NULL;
  cleanup_free char *lock = NULL;
  cleanup_close int lfd = -1;
  struct stat st;
  (void) s;

  ob_sha256_digest (id, strlen (id), dg);
  dir = ob_xasprintf ("%s/%s", base, dg + 7);
  lock = ob_xasprintf ("%s/%s.lock", base, dg + 7);
  if (ob_mkdir_p_at (AT_FDCWD, base, 0700, err) < 0)
    return ob_error_wrap (err, "%s:%d: RUN --mount type=cache", b->dfname, in->line);
  if (stat (dir, &st) < 0)
    {
      /* made aside with its mode and owner, then renamed: a concurrent
       * build sees either nothing or the finished directory */
      cleanup_free char *tmp = NULL;
      if (ob_mkdtemp_in (base, ".new-", &tmp, err) < 0)
        return ob_error_wrap (err, "%s:%d: RUN --mount type=cache", b->dfname, in->line);
      if (chmod (tmp, mode) < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "chmod `%s`", tmp);
      if (lchown (tmp, m->uid, m->gid) < 0 && (m->uid != 0 || m->gid != 0))
        {
          /* single-ID mode cannot represent other owners: keep ours */
        }
      if (rename (tmp, dir) < 0)
        {
          int e = errno;
          rmdir (tmp);
          if (e != EEXIST && e != ENOTEMPTY)
            return ob_error_make (err, OB_ERR_STORE, e, "create the cache mount `%s`", dir);
        }
    }
  lfd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lfd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", lock);
  switch (m->sharing)
    {
    case SH_LOCKED:
      if (take_lock (b, lfd, LOCK_EX, true, id, err) < 0)
        return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
      break;
    case SH_PRIVATE:
      {
        int r = take_lock (b, lfd, LOCK_EX, false, id, err);
        if (r < 0)
          return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
        if (r == 0)
          {
            /* in use: this step gets a fresh directory of its own */
            char *d = step_dir (b, out, "cache", mode, err);
            if (d == NULL)
              return -1;
            if (lchown (d, m->uid, m->gid) < 0)
              {
                /* as above */
              }
            free (dir);
            dir = d;
            close (lfd);
            lfd = -1;
          }
        break;
      }
    case SH_SHARED:
      /* concurrent users are fine; a shared lock tells private and locked
       * users the directory is in use */
      if (take_lock (b, lfd, LOCK_SH, false, id, err) < 0)
        return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
      break;
    }
  if (lfd >= 0)
    {
      out->locks = ob_xrealloc (out->locks, (out->n_locks + 1) * sizeof *out->locks);
      out->locks[out->n_locks++] = ob_steal_fd (&lfd);
    }
  add_prepared (pv, pn, steal_pointer (&dir), target, m->readonly == 1, true);
  ob_buf_adds (idb, "cache:");
  ob_buf_adds (idb, target);
  ob_buf_addc (idb, '#');
  ob_buf_adds (idb, id);
  ob_buf_adds (idb, m->sharing == SH_LOCKED ? ",locked" : m->sharing == SH_PRIVATE ? ",private" : ",shared");
  if (m->readonly == 1)
    ob_buf_adds (idb, ",ro");
  return 0;
}

int
ob_build_secret_parse (const char *spec, struct ob_secret_spec *out, ob_error_t *err)
{
  const char *src = NULL, *env = NULL, *type = NULL;
  char *save = NULL;
  memset (out, 0, sizeof *out);
  out->buf = ob_xstrdup (spec);
  for (char *f = strtok_r (out->buf, ",", &save); f; f = strtok_r (NULL, ",", &save))
    {
      if (ob_str_has_prefix (f, "id="))
        out->id = f + 3;
      else if (ob_str_has_prefix (f, "src="))
        src = f + 4;
      else if (ob_str_has_prefix (f, "source="))
        src = f + 7;
      else if (ob_str_has_prefix (f, "env="))
        env = f + 4;
      else if (ob_str_has_prefix (f, "type="))
        type = f + 5;
      else
        return ob_error_make (err, OB_ERR_USAGE, 0, "--secret `%s`: unexpected field `%s`", spec, f);
    }
  if (out->id == NULL || *out->id == '\0')
    return ob_error_make (err, OB_ERR_USAGE, 0, "--secret `%s`: expected id=ID[,src=FILE|,env=VAR]", spec);
  if (type && strcmp (type, "file") != 0 && strcmp (type, "env") != 0)
    return ob_error_make (err, OB_ERR_USAGE, 0, "--secret `%s`: type must be file or env", spec);
  if (src && env)
    return ob_error_make (err, OB_ERR_USAGE, 0, "--secret `%s`: give src= or env=, not both", spec);
  /* as BuildKit: type=env reads src (or the id) as a variable; a bare
   * id=TOKEN is the variable TOKEN; otherwise a file */
  if (env == NULL && type && strcmp (type, "env") == 0)
    env = src ? src : out->id;
  if (env == NULL && src == NULL && !(type && strcmp (type, "file") == 0))
    env = out->id;
  out->env = env;
  out->file = env ? NULL : (src ? src : out->id);
  return 0;
}

/* The value of secret `id` given with --secret: 1 and *val, 0 when not
 * provided, -1 when its file cannot be read.  Never logs the value. */
static int
secret_value (struct build *b, const char *id, char **val, size_t *len, ob_error_t *err)
{
  for (size_t i = 0; b->o->secrets && b->o->secrets[i]; i++)
    {
      struct ob_secret_spec sp;
      int r;
      if (ob_build_secret_parse (b->o->secrets[i], &sp, err) < 0)
        {
          free (sp.buf);
          return -1;
        }
      if (strcmp (sp.id, id) != 0)
        {
          free (sp.buf);
          continue;
        }
      if (sp.env)
        {
          const char *v = getenv (sp.env);
          r = v != NULL;
          if (v)
            {
              *val = ob_xstrdup (v);
              *len = strlen (v);
            }
        }
      else if (ob_read_file_at (AT_FDCWD, sp.file, val, len, err) < 0)
        {
          ob_error_set_kind (err, OB_ERR_CONTEXT);
          ob_error_wrap (err, "secret %s", id);
          r = -1;
        }
      else
        r = 1;
      free (sp.buf);
      return r;
    }
  return 0;
}

static int
prepare_secret (struct build *b, const struct ob_instr *in, struct mspec *m, const char *target,
                struct ob_build_mounts *out, struct prepared **pv, size_t *pn, struct ob_buf *idb, ob_error_t *err)
{
  cleanup_free char *val = NULL;
  cleanup_free char *dir = NULL;
  cleanup_free char *file = NULL;
  cleanup_close int fd = -1;
  size_t len = 0;
  int r = secret_value (b, m->id, &val, &len, err);
  if (r < 0)
    return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
  if (r == 0)
    {
      if (m->required)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "secret %s: not provided (use --secret id=%s,...)",
                                     m->id, m->id);
      return 0; /* BuildKit skips an optional secret that is missing */
    }
  if (m->env)
    ob_strv_take (&out->env, ob_xasprintf ("%s=%s", m->env, val));
  if (target)
    {
      dir = step_dir (b, out, "secret", 0700, err);
      if (dir == NULL)
        return -1;
      file = ob_xasprintf ("%s/secret", dir);
      fd = open (file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fd < 0 || ob_write_all (fd, val, len, err) < 0)
        return fd < 0 ? ob_error_make (err, OB_ERR_STORE, errno, "create `%s`", file) : -1;
      if (fchown (fd, m->uid, m->gid) < 0 && (m->uid != 0 || m->gid != 0))
        {
          /* single-ID mode: only root exists */
        }
      if (fchmod (fd, m->have_mode ? m->mode : 0400) < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "chmod `%s`", file);
      add_prepared (pv, pn, steal_pointer (&file), target, true, false);
    }
  explicit_bzero (val, len);
  ob_buf_adds (idb, "secret:");
  ob_buf_adds (idb, target ? target : "");
  ob_buf_addc (idb, '#');
  ob_buf_adds (idb, m->id);
  if (m->env)
    {
      ob_buf_adds (idb, ",env=");
      ob_buf_adds (idb, m->env);
    }
  return 0;
}

static int
prepare_ssh (struct build *b, const struct ob_instr *in, struct mspec *m, const char *target, bool first,
             struct ob_build_mounts *out, struct prepared **pv, size_t *pn, struct ob_buf *idb, ob_error_t *err)
{
  const char *id = m->id && *m->id ? m->id : "default";
  const char *sock = strcmp (id, "default") == 0 ? b->o->ssh_sock : NULL;
  struct stat st;
  if (sock == NULL || stat (sock, &st) < 0 || !S_ISSOCK (st.st_mode))
    {
      if (m->required)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "ssh agent %s: not provided (use --ssh default[=SOCKET])",
                                     id);
      return 0;
    }
  /* the socket itself: its owner and mode are the agent's (BuildKit
   * proxies it with uid/gid/mode instead) */
  add_prepared (pv, pn, ob_xstrdup (sock), target, false, false);
  if (first)
    ob_strv_take (&out->env, ob_xasprintf ("SSH_AUTH_SOCK=%s", target));
  ob_buf_adds (idb, "ssh:");
  ob_buf_adds (idb, target);
  ob_buf_addc (idb, '#');
  ob_buf_adds (idb, id);
  return 0;
}

/* ---- ordering ---- */

/* Parents before children: compare with '/' below every other byte. */
static int
cmp_target (const void *a, const void *b)
{
  const unsigned char *x = (const unsigned char *) ((const struct prepared *) a)->target;
  const unsigned char *y = (const unsigned char *) ((const struct prepared *) b)->target;
  for (; *x && *x == *y; x++, y++)
    ;
  if (*x == *y)
    return 0;
  if (*x == '/')
    return *y ? -1 : 1;
  if (*y == '/')
    return *x ? 1 : -1;
  return (int) *x - (int) *y;
}

static bool
is_under (const char *p, const char *dir)
{
  size_t n = strlen (dir);
  return strncmp (p, dir, n) == 0 && p[n] == '/';
}

/* The O_PATH fd of rel below dirfd, resolved beneath it (a symlink
 * leading out: EXDEV); without openat2, name below cur through no
 * symlink. */
static int
open_beneath (int dirfd, const char *rel, int cur, const char *name)
{
  struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
  struct stat st;
  int fd = (int) syscall (SYS_openat2, dirfd, rel, &how, sizeof how);
  if (fd >= 0 || errno != ENOSYS)
    return fd;
  fd = openat (cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0 && fstat (fd, &st) == 0 && S_ISLNK (st.st_mode))
    {
      close (fd);
      errno = EXDEV;
      return -1;
    }
  return fd;
}

/* Make the mount point of child (below parent's target) in parent's
 * source, a directory of ours, without leaving it.  What is in it is a
 * step's (a cache mount) or the context's (a copy): a link `-> /anywhere`
 * on the way, followed on the host, made the directory or empty file at
 * the host's /anywhere.  Symlinks are followed beneath the source only (as
 * the step sees them); one leading out, or to nothing, is refused. */
static int
nested_mount_point (struct build *b, const struct ob_instr *in, const struct prepared *parent,
                    const struct prepared *child, bool dir, ob_error_t *err)
{
  const char *rel = child->target + strlen (parent->target) + 1;
  cleanup_close int src = open (parent->source, O_PATH | O_DIRECTORY | O_CLOEXEC);
  cleanup_close int cur = src >= 0 ? dup (src) : -1;
  cleanup_free char *p = ob_xstrdup (rel);

  if (cur < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", parent->source);
  for (char *c = p, *end; c; c = end ? end + 1 : NULL)
    {
      struct stat st;
      int fd;
      end = strchr (c, '/');
      if (end)
        *end = '\0';
      fd = open_beneath (src, p, cur, c);
      if (fd < 0 && errno == ENOENT)
        {
          int r = end || dir ? mkdirat (cur, c, 0755) : openat (cur, c, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
          if (r >= 0 && !(end || dir))
            close (r);
          if (r >= 0)
            fd = openat (cur, c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
          else if (errno == EEXIST)
            errno = EXDEV; /* there, yet not found: a symlink to nothing */
        }
      if (fd < 0 && (errno == EXDEV || errno == ELOOP))
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE,
                                     "RUN --mount target=%s: %s/%s is a symlink leading out of the mount at %s or to "
                                     "nothing, not followed",
                                     child->target, parent->target, p, parent->target);
      if (fd < 0 || fstat (fd, &st) < 0 || (end && !S_ISDIR (st.st_mode)))
        {
          int e = fd < 0 ? errno : ENOTDIR;
          if (fd >= 0)
            close (fd);
          return ob_error_make (err, OB_ERR_STORE, e, "create mount point `%s/%s`", parent->source, rel);
        }
      close (cur);
      cur = fd;
      if (end)
        *end = '/';
    }
  return 0;
}

/* ---- entry points ---- */

void
ob_build_mounts_release (struct ob_build_mounts *m)
{
  for (size_t i = 0; i < m->n_locks; i++)
    if (m->locks[i] >= 0)
      close (m->locks[i]);
  for (size_t i = 0; m->remove && m->remove[i]; i++)
    {
      ob_error_t e = NULL;
      ob_rm_rf_at (AT_FDCWD, m->remove[i], &e);
      ob_error_free (&e);
    }
  for (size_t i = 0; m->env && m->env[i]; i++)
    explicit_bzero (m->env[i], strlen (m->env[i]));
  free (m->mounts);
  free (m->locks);
  ob_strv_free (m->owned);
  ob_strv_free (m->remove);
  ob_strv_free (m->env);
  free (m->cache_id);
  memset (m, 0, sizeof *m);
}

int
ob_build_mounts_prepare (struct build *b, struct stage *s, const struct ob_instr *in, const char *rootfs,
                         struct ob_build_mounts *out, ob_error_t *err)
{
  struct prepared *pv = NULL;
  size_t pn = 0, n_ssh = 0;
  struct ob_buf idb = { 0 };
  int r = 0;
  (void) rootfs;

  memset (out, 0, sizeof *out);
  for (size_t i = 0; i < in->n_flags && r == 0; i++)
    {
      struct mspec m = { 0 };
      cleanup_free char *abs = NULL;
      cleanup_free char *target = NULL;
      if (strcmp (in->flags[i].name, "mount") != 0)
        continue;
      if (in->flags[i].value == NULL || parse_mount (b, s, in, in->flags[i].value, &m, err) < 0)
        {
          if (in->flags[i].value == NULL)
            ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "RUN --mount needs a value");
          r = -1;
          mspec_clear (&m);
          break;
        }
      if (m.type == MT_SECRET && (m.id == NULL || *m.id == '\0'))
        {
          const char *slash = strrchr (m.target, '/');
          free (m.id);
          m.id = ob_xstrdup (slash ? slash + 1 : m.target);
        }
      if (m.type == MT_SECRET && m.target == NULL && m.env == NULL)
        m.target = ob_xasprintf ("/run/secrets/%s", m.id);
      if (m.type == MT_SSH && (m.target == NULL || *m.target == '\0'))
        {
          free (m.target);
          m.target = ob_xasprintf ("/run/buildkit/ssh_agent.%zu", n_ssh);
        }
      if (m.target && *m.target)
        {
          abs = ob_build_abs_path (s, m.target);
          target = ob_path_clean (abs);
          if (strcmp (target, "/") == 0 || strcmp (target, "/proc") == 0 || ob_str_has_prefix (target, "/proc/")
              || strcmp (target, "/dev") == 0 || ob_str_has_prefix (target, "/dev/"))
            {
              ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE,
                                    "RUN --mount target=%s: cannot mount over /, /proc or /dev", m.target);
              mspec_clear (&m);
              r = -1;
              break;
            }
        }
      if (idb.len > 0)
        ob_buf_addc (&idb, ';');
      switch (m.type)
        {
        case MT_BIND:
          r = prepare_bind (b, s, in, &m, target, out, &pv, &pn, &idb, err);
          break;
        case MT_CACHE:
          r = prepare_cache (b, s, in, &m, target, out, &pv, &pn, &idb, err);
          break;
        case MT_TMPFS:
          {
            char *d = step_dir (b, out, "tmpfs", 01777, err);
            if (d == NULL)
              r = -1;
            else
              {
                add_prepared (&pv, &pn, d, target, false, true);
                ob_buf_adds (&idb, "tmpfs:");
                ob_buf_adds (&idb, target);
              }
            break;
          }
        case MT_SECRET:
          r = prepare_secret (b, in, &m, target, out, &pv, &pn, &idb, err);
          break;
        case MT_SSH:
          r = prepare_ssh (b, in, &m, target, n_ssh == 0, out, &pv, &pn, &idb, err);
          n_ssh++;
          break;
        }
      mspec_clear (&m);
    }

  if (r == 0)
    {
      /* parents first; a mount point below another mount is made in that
       * mount's source when it is a directory of ours */
      if (pn > 1)
        qsort (pv, pn, sizeof *pv, cmp_target);
      for (size_t j = 0; j < pn && r == 0; j++)
        for (size_t i = j; i-- > 0;)
          if (is_under (pv[j].target, pv[i].target))
            {
              struct stat st;
              if (!pv[i].private_dir)
                break;
              r = nested_mount_point (b, in, &pv[i], &pv[j], stat (pv[j].source, &st) == 0 && S_ISDIR (st.st_mode),
                                      err);
              break;
            }
      out->mounts = ob_xmalloc0 ((pn ? pn : 1) * sizeof *out->mounts);
      for (size_t i = 0; i < pn; i++)
        {
          out->mounts[i] = (struct ob_sandbox_mount){ pv[i].source, pv[i].target, pv[i].readonly };
          ob_strv_take (&out->owned, pv[i].source);
          ob_strv_take (&out->owned, pv[i].target);
        }
      out->n = pn;
      out->cache_id = idb.data ? ob_buf_steal (&idb) : ob_xstrdup ("");
    }
  else
    for (size_t i = 0; i < pn; i++)
      {
        free (pv[i].source);
        free (pv[i].target);
      }
  free (pv);
  ob_buf_free (&idb);
  if (r < 0)
    {
      ob_build_mounts_release (out);
      return -1;
    }
  return 0;
}

/* The raw from= values of a RUN's --mount flags (stages the step needs
 * built before it), for the planner.  NULL-terminated, may be empty. */
char **
ob_build_mount_froms (const struct ob_instr *in)
{
  char **out = ob_xmalloc0 (sizeof (char *));
  for (size_t i = 0; i < in->n_flags; i++)
    {
      cleanup_strv char **fields = NULL;
      if (strcmp (in->flags[i].name, "mount") != 0 || in->flags[i].value == NULL)
        continue;
      fields = split_fields (in->flags[i].value);
      for (size_t k = 0; fields[k]; k++)
        if (strncasecmp (fields[k], "from=", 5) == 0)
          ob_strv_add (&out, fields[k] + 5);
    }
  return out;
}
