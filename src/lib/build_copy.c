/* build: COPY and ADD. */
#include "config.h"
#include "build_priv.h"
#include "curl_lazy.h"
#include <curl/curl.h>
#include <obuild/layer.h>
#include <obuild/link_owner.h>
#include <obuild/userns.h>
#include <obuild/util.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Record owners the user namespace cannot represent (single-ID mode) in an
 * xattr that the layer writer turns into the tar header's uid/gid. */
static int
record_owner_walk (int dfd, const char *path, uid_t uid, gid_t gid, ob_error_t *err)
{
  char val[64];
  struct stat st;
  snprintf (val, sizeof val, "%u:%u", (unsigned) uid, (unsigned) gid);
  if (fstatat (dfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "stat `%s`", path);
  /* a symlink's owner is recorded on its directory (link_owner.h) */
  if (S_ISLNK (st.st_mode) && ob_link_owner_set_at (dfd, path, uid, gid) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "set owner of `%s`", path);
  if (!S_ISREG (st.st_mode) && !S_ISDIR (st.st_mode))
    return 0; /* user.* xattrs cannot be set on symlinks and special files */
  {
    cleanup_close int fd = openat (dfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (S_ISDIR (st.st_mode) ? O_DIRECTORY : 0));
    if (fd < 0)
      return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", path);
    if (fsetxattr (fd, OB_OWNER_XATTR, val, strlen (val), 0) < 0 && errno != ENOTSUP)
      return ob_error_make (err, OB_ERR_STORE, errno, "set owner of `%s`", path);
    if (S_ISDIR (st.st_mode))
      {
        int dup = openat (fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        cleanup_dir DIR *d = dup >= 0 ? fdopendir (dup) : NULL;
        struct dirent *de;
        if (d == NULL)
          return ob_error_make (err, OB_ERR_STORE, errno, "opendir `%s`", path);
        while ((de = readdir (d)))
          {
            if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
              continue;
            if (record_owner_walk (dirfd (d), de->d_name, uid, gid, err) < 0)
              return ob_error_wrap (err, "%s", path);
          }
      }
  }
  return 0;
}

/* ADD --chown of a local archive: as BuildKit (its untar with ChownOpts),
 * every extracted entry takes the owner.  path and what is below it in the
 * step's upper directory (only this step's output); owners this namespace
 * cannot represent are recorded as the COPY code does. */
static int
chown_walk (int dfd, const char *path, uid_t uid, gid_t gid, ob_error_t *err)
{
  struct stat st;
  if (fstatat (dfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "stat `%s`", path);
  if (ob_layer_chown_at (dfd, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
    {
      if (errno != EPERM && errno != EINVAL)
        return ob_error_make (err, OB_ERR_STORE, errno, "chown `%s`", path);
      if (!S_ISLNK (st.st_mode) && ob_build_record_owner (dfd, path, uid, gid, err) < 0)
        return -1;
      /* (an archive's symlink may have its own owner recorded) */
      if (S_ISLNK (st.st_mode) && ob_link_owner_set_at (dfd, path, uid, gid) < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "set owner of `%s`", path);
    }
  if (S_ISDIR (st.st_mode))
    {
      int fd = openat (dfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      cleanup_dir DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
      struct dirent *de;
      if (d == NULL)
        {
          if (fd >= 0)
            close (fd);
          return ob_error_make (err, OB_ERR_STORE, errno, "opendir `%s`", path);
        }
      while ((de = readdir (d)))
        {
          if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
            continue;
          if (chown_walk (dirfd (d), de->d_name, uid, gid, err) < 0)
            return ob_error_wrap (err, "%s", path);
        }
    }
  return 0;
}

/* A stage (its layers, whiteouts applied) for COPY --from: mounted, or
 * else unpacked. */
static int
stage_rootfs (struct build *b, struct stage *s, ob_error_t *err)
{
  cleanup_close int rootfd = -1;
  if (s->rootfs)
    return 0;
  ob_build_stage_mount (b, s, &s->rootfs);
  if (s->rootfs)
    return 0;
  s->rootfs = ob_build_scratch_dir (b, "rootfs", err);
  if (s->rootfs == NULL)
    return -1;
  rootfd = open (s->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", s->rootfs);
  for (size_t i = 0; i < s->n_layers; i++)
    {
      cleanup_close int fd = -1;
      if (ob_txn_blob_open (b->txn, s->layers[i].digest, &fd, err) < 0
          || ob_layer_extract (fd, rootfd, "/", true, true, err) < 0)
        return ob_error_wrap (err, "unpack layer %s", s->layers[i].digest);
    }
  return 0;
}

static bool
has_wildcard (const char *s)
{
  return strpbrk (s, "*?[") != NULL;
}

static bool
is_url (const char *s)
{
  return ob_str_has_prefix (s, "http://") || ob_str_has_prefix (s, "https://")
         || ob_str_has_prefix (s, "git@");
}

/* A source of the context by its real path: the copy follows a symlinked
 * directory and leaves out what .dockerignore excludes there, so its
 * ignored files must not count either (nor be read).  A source of another
 * stage (in_root) is followed inside that root, never on the host. */
static int
digest_context_source (struct build *b, int srcfd, const struct ob_ignore *ig, bool in_root,
                       const char *rel, struct ob_sha256 *h, ob_error_t *err)
{
  cleanup_free char *real = NULL;
  if (in_root ? ob_context_real_path_in_root (srcfd, rel, &real, err) < 0
              : ig && ob_context_real_path (srcfd, ig, rel, &real, err) < 0)
    return -1;
  return ob_build_digest_source (b, srcfd, ig, real ? real : rel, true, h, err);
}

/* Variables in a COPY heredoc whose delimiter is not quoted are expanded,
 * as BuildKit does; quotes and other text are kept as written. */
static int
expand_heredoc (struct build *b, struct stage *s, const struct ob_instr *in, const char *text,
                char **out, ob_error_t *err)
{
  struct ob_buf o = { 0 };
  struct lookup l = { b, s };
  for (const char *p = text; *p;)
    {
      if (p[0] == '\\' && p[1] == '$')
        {
          ob_buf_addc (&o, '$');
          p += 2;
          continue;
        }
      if (p[0] != '$')
        {
          ob_buf_addc (&o, *p++);
          continue;
        }
      if (p[1] == '{')
        {
          int depth = 0;
          const char *q = p + 1;
          for (; *q; q++)
            {
              if (*q == '{')
                depth++;
              else if (*q == '}' && --depth == 0)
                break;
            }
          if (*q != '}')
            {
              ob_buf_adds (&o, p);
              break;
            }
          {
            cleanup_free char *expr = ob_xstrndup (p, q - p + 1);
            cleanup_free char *val = NULL;
            if (ob_dockerfile_word (expr, b->df->escape, ob_build_lookup, &l, &val, err) < 0)
              {
                ob_buf_free (&o);
                return ob_error_wrap (err, "%s:%d: heredoc", b->dfname, in->line);
              }
            ob_buf_adds (&o, val);
            if (ob_build_account (b, s, in, strlen (val), err) < 0)
              {
                ob_buf_free (&o);
                return -1;
              }
          }
          p = q + 1;
          continue;
        }
      if ((p[1] >= 'a' && p[1] <= 'z') || (p[1] >= 'A' && p[1] <= 'Z') || p[1] == '_')
        {
          const char *q = p + 1;
          while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_')
            q++;
          {
            cleanup_free char *name = ob_xstrndup (p + 1, q - p - 1);
            const char *v = ob_build_lookup (&l, name);
            ob_buf_adds (&o, v ? v : "");
            if (v && ob_build_account (b, s, in, strlen (v), err) < 0)
              {
                ob_buf_free (&o);
                return -1;
              }
          }
          p = q;
          continue;
        }
      ob_buf_addc (&o, *p++);
    }
  *out = ob_buf_steal (&o);
  return 0;
}

/* ADD <url>: download into dfd (named after the URL's last path
 * component), 0600 and the Last-Modified time as Docker does, verifying
 * --checksum when given.  Errors: OB_ERR_CONTEXT. */
struct fetch
{
  int fd;
  struct ob_sha256 *h;
  bool failed;
};

static size_t
fetch_write (char *ptr, size_t size, size_t nmemb, void *data)
{
  struct fetch *f = data;
  ob_error_t e = NULL;
  size_t n = size * nmemb;
  ob_sha256_update (f->h, ptr, n);
  if (ob_write_all (f->fd, ptr, n, &e) < 0)
    {
      ob_error_free (&e);
      f->failed = true;
      return 0;
    }
  return n;
}

int
ob_build_fetch_url (struct build *b, const char *url, const char *checksum, int dfd, char **name,
                    ob_error_t *err)
{
  const char *q = url + strcspn (url, "?#");
  const char *slash;
  cleanup_free char *path = ob_xstrndup (url, q - url);
  struct fetch f = { -1, NULL, false };
  char got[72];
  CURL *c;
  CURLcode rc;
  long code = 0, filetime = -1;
  char errbuf[CURL_ERROR_SIZE] = "";

  if (checksum && !ob_digest_valid (checksum))
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "--checksum `%s`: expected sha256:<64 hex digits>", checksum);
  if (ob_curl_load (err) < 0)
    return -1;
  slash = strrchr (path, '/');
  *name = ob_xstrdup (slash && slash[1] && slash > strstr (path, "://") + 2 ? slash + 1 : "index.html");
  f.fd = openat (dfd, *name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (f.fd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "create `%s`", *name);
  f.h = ob_sha256_new ();
  c = curl_easy_init ();
  if (c == NULL)
    ob_oom ();
  curl_easy_setopt (c, CURLOPT_URL, url);
  curl_easy_setopt (c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt (c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt (c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt (c, CURLOPT_FILETIME, 1L);
  curl_easy_setopt (c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, fetch_write);
  curl_easy_setopt (c, CURLOPT_WRITEDATA, &f);
  curl_easy_setopt (c, CURLOPT_USERAGENT, "obuild/" PACKAGE_VERSION);
  if (!b->o->source.registry.tls_verify)
    {
      curl_easy_setopt (c, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt (c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
  rc = curl_easy_perform (c);
  curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_getinfo (c, CURLINFO_FILETIME, &filetime);
  curl_easy_cleanup (c);
  ob_sha256_final (f.h, got);
  if (rc != CURLE_OK || f.failed)
    {
      close (f.fd);
      return ob_error_make (err, OB_ERR_CONTEXT, 0, "download: %s", f.failed ? "cannot write the file" : errbuf[0] ? errbuf : curl_easy_strerror (rc));
    }
  if (checksum && strcmp (checksum, got) != 0)
    {
      close (f.fd);
      return ob_error_make (err, OB_ERR_CONTEXT, 0, "checksum mismatch: expected %s, the download has %s", checksum, got);
    }
  if (filetime > 0)
    {
      struct timespec ts[2] = { { filetime, 0 }, { filetime, 0 } };
      futimens (f.fd, ts);
    }
  close (f.fd);
  return 0;
}

/* COPY --parents as BuildKit: a source "parent/./pattern" copies what
 * matches pattern (patternmatcher rules: `**` any depth, a matching
 * directory with all below it) under parent, keeping the path from parent
 * on; without "/./" the parent is the root.  The walk starts at the
 * pattern's literal leading directories and never follows a symlink. */
struct pwalk
{
  const struct ob_ignore *ig; /* .dockerignore (context sources) */
  struct ob_ignore *pat;       /* the pattern, as a one-line ignore file */
  const char *root;            /* the parent's real path ("." for the root) */
  char **srcs;                 /* matches, paths from srcfd */
  char **keeps;                /* their directory under the destination */
  size_t found, n_keeps;       /* (found: the matches, srcs's length) */
};

static int
pwalk_dir (struct pwalk *w, int dfd, const char *rel, int depth, ob_error_t *err)
{
  int fd = openat (dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_dir DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *de;
  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return ob_error_make (err, OB_ERR_CONTEXT, errno, "open `%s`", *rel ? rel : w->root);
    }
  if (depth > 4096)
    return ob_error_make (err, OB_ERR_CONTEXT, ELOOP, "`%s`: too deep", rel);
  while ((de = readdir (d)))
    {
      struct stat st;
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      cleanup_free char *r = *rel ? ob_xasprintf ("%s/%s", rel, de->d_name) : ob_xstrdup (de->d_name);
      cleanup_free char *full = strcmp (w->root, ".") == 0 ? ob_xstrdup (r) : ob_xasprintf ("%s/%s", w->root, r);
      if (fstatat (dirfd (d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return ob_error_make (err, OB_ERR_CONTEXT, errno, "stat `%s`", full);
      if (w->ig && ob_ignore_match (w->ig, full))
        continue;
      if (ob_ignore_match (w->pat, r))
        {
          char *sl = strrchr (r, '/');
          ob_strv_push (&w->srcs, &w->found, steal_pointer (&full));
          if (S_ISDIR (st.st_mode))
            ob_strv_push (&w->keeps, &w->n_keeps, ob_xstrdup (r));
          else
            ob_strv_push (&w->keeps, &w->n_keeps, sl ? ob_xstrndup (r, sl - r) : ob_xstrdup ("."));
          continue;
        }
      if (S_ISDIR (st.st_mode))
        {
          cleanup_close int sub = openat (dirfd (d), de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub < 0)
            return ob_error_make (err, OB_ERR_CONTEXT, errno, "open `%s`", full);
          if (pwalk_dir (w, sub, r, depth + 1, err) < 0)
            return -1;
        }
    }
  return 0;
}

static int
parents_sources (int srcfd, const struct ob_ignore *ig, bool in_root, const char *word, char ***srcs,
                 char ***keeps, ob_error_t *err)
{
  const char *pivot = strstr (word, "/./");
  cleanup_free char *parent = pivot ? ob_xstrndup (word, pivot - word) : ob_xstrdup ("/");
  cleanup_free char *rooted = ob_xasprintf ("/%s", pivot ? pivot + 3 : word);
  cleanup_free char *pattern = ob_path_clean (rooted);
  cleanup_free char *start = NULL;
  cleanup_strv char **parents = NULL;
  const char *p = pattern;
  struct pwalk w = { .ig = ig };
  int r = -1;

  while (*p == '/')
    p++;
  /* the literal leading directories of the pattern: where the walk starts */
  {
    const char *lit = p, *q = p;
    while (*q)
      {
        size_t n = strcspn (q, "/");
        if (q[n] == '\0' || strcspn (q, "*?[\\") < n)
          break;
        q += n + 1;
      }
    start = ob_xstrndup (lit, q > lit ? (size_t) (q - lit - 1) : 0);
  }
  if (ob_ignore_parse ("--parents", p, &w.pat, err) < 0)
    return -1;
  if ((in_root ? ob_context_resolve_in_root (srcfd, NULL, parent, has_wildcard (parent), &parents, err)
               : ob_context_resolve (srcfd, ig, parent, has_wildcard (parent), &parents, err))
      < 0)
    goto out;
  for (size_t i = 0; parents && parents[i]; i++)
    {
      cleanup_free char *real = NULL;
      cleanup_free char *tmp = ob_xstrdup (start);
      char *save = NULL;
      int fd;
      if ((in_root ? ob_context_real_path_in_root (srcfd, parents[i], &real, err)
                   : ob_context_real_path (srcfd, ig, parents[i], &real, err))
          < 0)
        goto out;
      /* the start, below the real parent: directories, no link */
      fd = openat (srcfd, real, O_PATH | O_DIRECTORY | O_CLOEXEC);
      for (char *c = strtok_r (tmp, "/", &save); fd >= 0 && c; c = strtok_r (NULL, "/", &save))
        {
          int nfd = openat (fd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          close (fd);
          fd = nfd;
        }
      if (fd < 0)
        continue; /* nothing there: nothing matches */
      w.root = real;
      r = pwalk_dir (&w, fd, start, 0, err);
      close (fd);
      if (r < 0)
        goto out;
      r = -1;
    }
  if (w.found == 0 && !has_wildcard (word))
    {
      ob_error_make (err, OB_ERR_CONTEXT, 0, "COPY source not found in build context: %s", word);
      goto out;
    }
  r = 0;
  /* appended at once: a pattern may match 100,000 files */
  ob_strv_take_all (srcs, steal_pointer (&w.srcs));
  ob_strv_take_all (keeps, steal_pointer (&w.keeps));
out:
  ob_strv_free (w.srcs);
  ob_strv_free (w.keeps);
  ob_ignore_free (w.pat);
  return r;
}

/* The scratch directory that holds a COPY's heredocs and an ADD's
 * downloads, made on first use. */
static int
files_dir (struct build *b, char **dir, int *fd, ob_error_t *err)
{
  *dir = ob_build_scratch_dir (b, "heredoc", err);
  if (*dir == NULL)
    return -1;
  *fd = open (*dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (*fd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", *dir);
  return 0;
}

/* Whether the files a COPY of s writes must be on disk: a later RUN of
 * the stage, or another stage built on it, copying or mounting from it,
 * reads them there; the copy snapshotter and --isolation=container change
 * a root in place. */
static bool
files_needed_later (struct build *b, struct stage *s, const struct ob_instr *in)
{
  const struct ob_instr *all = b->df->instrs;
  if (b->o->container || b->o->snapshotter == OB_SNAPSHOTTER_COPY || s->copy_rootfs != NULL
      || getenv ("OBUILD_TEST_NO_COPY_STREAM") != NULL)
    return true;
  if (in < all || in >= all + b->df->n_instrs)
    return true; /* an ONBUILD trigger */
  for (size_t k = (size_t) (in - all) + 1; k < s->end; k++)
    if (all[k].kind == OB_I_RUN)
      return true;
  for (size_t j = 0; j < b->n_stages; j++)
    if (j != s->index && b->stages[j].needed)
      for (size_t d = 0; d < b->stages[j].n_deps; d++)
        if (b->stages[j].deps[d] == s->index)
          return true;
  return false;
}

/* A COPY whose files no later step reads from disk: its layer is written
 * straight from the sources (ob_context_plan, ob_layer_write_sources), no
 * file is created.  1 when the copy cannot be planned (copy it instead). */
static int
copy_streamed (struct build *b, struct stage *s, const struct ob_instr *in, int srcfd,
               const struct ob_ignore *ig, char **srcs, const char *dest, const char *canon,
               const struct ob_copy_opts *opts, ob_error_t *err)
{
  cleanup_free char *path = ob_build_clean_abs (canon);
  struct ob_layer_src *e = NULL;
  size_t n = 0, len = strlen (path);
  int r = ob_context_plan (srcfd, ig, srcs, dest, opts, &e, &n, err);

  if (r != 0)
    return r < 0 ? ob_error_wrap (err, "%s:%d: %s", b->dfname, in->line, in->kind == OB_I_ADD ? "ADD" : "COPY")
                 : 1;
  /* ob_build_fix_ancestors: the directories the image has keep their
   * metadata; the plan's entries are sorted, so found by bisection */
  if (ob_build_stage_tree (b, s, err) < 0)
    {
      ob_context_plan_free (e, n);
      return -1;
    }
  for (size_t i = 1; i <= len; i++)
    {
      const struct ob_tree_stat *st;
      struct ob_layer_src key, *x;
      char saved;
      if (path[i] != '/' && path[i] != '\0')
        continue;
      saved = path[i];
      path[i] = '\0';
      st = ob_tree_lookup (s->tree, path);
      key.path = path + 1;
      x = st && S_ISDIR (st->mode) ? bsearch (&key, e, n, sizeof *e, ob_context_plan_cmp) : NULL;
      if (x && S_ISDIR (x->st.st_mode))
        {
          x->st.st_mode = S_IFDIR | (st->mode & 07777);
          x->st.st_uid = st->uid;
          x->st.st_gid = st->gid;
          x->st.st_mtim.tv_sec = st->mtime;
          x->st.st_mtim.tv_nsec = 0;
          x->owner_xattr = false;
        }
      path[i] = saved;
    }
  r = ob_build_commit_sources (b, s, srcfd, e, n, in->original, err);
  ob_context_plan_free (e, n);
  if (r < 0)
    return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
  return 0;
}

int
ob_build_copy (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  const bool add = in->kind == OB_I_ADD;
  const char *what = add ? "ADD" : "COPY";
  const struct ob_flag *f_from = ob_instr_flag (in, "from");
  const struct ob_flag *f_chown = ob_instr_flag (in, "chown");
  const struct ob_flag *f_chmod = ob_instr_flag (in, "chmod");
  cleanup_strv char **words = NULL;
  cleanup_strv char **copy_srcs = NULL;
  cleanup_strv char **archives = NULL;
  size_t n_archives = 0;
  cleanup_free char *dest_abs = NULL;
  cleanup_free char *canon = NULL;
  cleanup_free char *dest_upper = NULL;
  cleanup_free char *upper = NULL;
  cleanup_free char *heredocs = NULL;
  cleanup_free char *from_name = NULL;
  cleanup_close int upperfd = -1;
  cleanup_close int srcfd = -1;
  cleanup_close int herefd = -1;
  struct ob_copy_opts opts = { 0 };
  const struct ob_ignore *ig = b->ig;
  struct stage *from = NULL;
  bool dest_is_dir;
  size_t n, n_here = 0, layers_before = 0;
  char cache_key[72];
  int r;

  if (ob_instr_flag (in, "keep-git-dir"))
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE,
                                 "ADD --keep-git-dir: git sources are not supported");
  if (ob_instr_flag (in, "checksum") && !add)
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "COPY does not take --checksum (ADD does)");

  bool parents = ob_instr_flag (in, "parents") != NULL;
  /* ADD --unpack (BuildKit): a local archive is extracted unless
   * --unpack=false, a downloaded one only with --unpack[=true] */
  const struct ob_flag *f_unpack = ob_instr_flag (in, "unpack");
  int unpack = f_unpack == NULL ? -1 : f_unpack->value == NULL || strcasecmp (f_unpack->value, "true") == 0;
  cleanup_strv char **url_archives = NULL;
  cleanup_strv char **keeps = NULL;
  size_t keep_off = 0;
  cleanup_strv char **excludes = NULL;
  size_t n_excludes = 0;
  cleanup_free char *ig_text = NULL;
  for (size_t k = 0; k < in->n_flags; k++)
    if (strcmp (in->flags[k].name, "exclude") == 0 && in->flags[k].value)
      {
        char *x;
        if (ob_build_word (b, s, in, in->flags[k].value, &x, err) < 0)
          return -1;
        ob_strv_push (&excludes, &n_excludes, x);
      }
  if (excludes && !f_from)
    {
      /* the file ob_ignore_load read: a symlink followed inside the
       * context only (followed on the host, a file outside it became
       * patterns, quoted in their errors) */
      static const char *const names[] = { ".containerignore", ".dockerignore" };
      for (size_t k = 0; k < 2 && ig_text == NULL; k++)
        {
          cleanup_free char *real = NULL;
          size_t len;
          ob_error_t e2 = NULL;
          if (ob_context_real_path_in_root (b->ctxfd, names[k], &real, &e2) < 0
              || ob_read_file_at (b->ctxfd, real, &ig_text, &len, &e2) < 0)
            ob_error_free (&e2);
        }
    }

  /* words: sources..., dest */
  if (in->json)
    {
      size_t n_words = 0;
      words = ob_xmalloc0 (sizeof (char *));
      for (size_t i = 0; i < in->n_args; i++)
        {
          char *w;
          if (ob_build_word (b, s, in, in->args[i], &w, err) < 0)
            return -1;
          ob_strv_push (&words, &n_words, w);
        }
    }
  else
    {
      struct lookup l = { b, s };
      if (in->n_heredocs > 0)
        {
          /* as BuildKit (parseSourcesAndDest): a heredoc is told by the
           * word as written, before any expansion (`<<$EOF` is the heredoc
           * "$EOF", not "<<" once $EOF expands to nothing); the other
           * words are expanded one by one */
          cleanup_free char *raw = ob_xstrdup (in->rest ? in->rest : "");
          char *save = NULL;
          size_t n_words = 0;
          words = ob_xmalloc0 (sizeof (char *));
          for (char *t = strtok_r (raw, " \t", &save); t; t = strtok_r (NULL, " \t", &save))
            {
              char *name = NULL, *w = NULL;
              if (ob_dockerfile_heredoc_word (t, &name, NULL, NULL))
                {
                  ob_strv_push (&words, &n_words, ob_xasprintf ("<<%s", name));
                  free (name);
                  continue;
                }
              if (ob_build_word (b, s, in, t, &w, err) < 0)
                return -1;
              ob_strv_push (&words, &n_words, w);
            }
        }
      else if (ob_dockerfile_words (in->rest ? in->rest : "", b->df->escape, ob_build_lookup, &l, &words, err) < 0)
        return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
    }
  n = ob_strv_len (words);
  if (n < 2)
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "%s requires at least two arguments", what);

  /* owner and mode */
  if (f_chown && f_chown->value)
    {
      cleanup_free char *spec = NULL;
      cleanup_free char *passwd = NULL;
      cleanup_free char *group = NULL;
      if (ob_build_word (b, s, in, f_chown->value, &spec, err) < 0)
        return -1;
      if (ob_build_read_image_file (b, s, "/etc/passwd", &passwd, err) < 0
          || ob_build_read_image_file (b, s, "/etc/group", &group, err) < 0)
        return ob_error_wrap (err, "%s:%d: %s --chown", b->dfname, in->line, what);
      if (ob_build_resolve_owner (spec, passwd, group, &opts.uid, &opts.gid, err) < 0)
        return ob_error_wrap (err, "%s:%d: %s --chown", b->dfname, in->line, what);
      opts.chown = true;
    }
  else
    {
      /* as BuildKit: the context's files become 0:0, another stage's or
       * image's keep their owners (set below, once --from is known) */
      opts.chown = true;
      opts.uid = 0;
      opts.gid = 0;
    }
  if (f_chmod && f_chmod->value)
    {
      cleanup_free char *m = NULL;
      if (ob_build_word (b, s, in, f_chmod->value, &m, err) < 0)
        return -1;
      if (ob_build_parse_chmod (m, &opts.mode, err) < 0)
        return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
      opts.chmod = true;
    }

  /* source root */
  if (f_from && f_from->value)
    {
      if (ob_build_word (b, s, in, f_from->value, &from_name, err) < 0)
        return -1;
      from = ob_build_find_stage (b, from_name, s->index);
      if (from == NULL && ob_build_find_stage (b, from_name, b->n_stages) != NULL)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "%s --from=%s: that stage comes later", what, from_name);
      if (from == NULL)
        {
          /* not a stage: an image (store, oci:, archive, registry) */
          for (size_t k = 0; k < b->n_image_stages; k++)
            if (b->image_stages[k]->name && strcmp (b->image_stages[k]->name, from_name) == 0)
              from = b->image_stages[k];
          if (from == NULL)
            {
              struct stage *img = ob_xmalloc0 (sizeof *img);
              img->name = ob_xstrdup (from_name);
              b->image_stages = ob_xrealloc (b->image_stages, (b->n_image_stages + 1) * sizeof *b->image_stages);
              b->image_stages[b->n_image_stages++] = img;
              if (ob_build_load_image (b, img, from_name, err) < 0)
                {
                  cleanup_free char *norm = NULL;
                  ob_error_t nerr = NULL;
                  /* an invalid reference written in the Dockerfile is a Dockerfile
                   * error (3), as for FROM, not a usage error of the command line */
                  if ((*err)->kind == OB_ERR_USAGE && ob_image_ref_normalize (from_name, &norm, &nerr) < 0)
                    ob_error_set_kind (err, OB_ERR_DOCKERFILE);
                  ob_error_free (&nerr);
                  return ob_error_wrap (err, "%s:%d: %s --from=%s", b->dfname, in->line, what, from_name);
                }
              img->built = true;
              {
                /* its identity for cache keys: the manifest it resolved to */
                struct ob_sha256 *ih = ob_sha256_new ();
                ob_build_cache_add (ih, "FROM");
                ob_build_cache_add (ih, img->base_digest);
                ob_sha256_final (ih, img->cache_key);
              }
              from = img;
            }
        }
      if (!from->built)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "%s --from=%s: stage was not built", what, from_name);
      if (stage_rootfs (b, from, err) < 0)
        return ob_error_wrap (err, "%s:%d: %s --from=%s", b->dfname, in->line, what, from_name);
      srcfd = open (from->rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      ig = NULL;
      opts.devices = true; /* a stage's or image's root: obuild made it */
      if (!(f_chown && f_chown->value))
        {
          opts.chown = false;
          opts.keep_owner = true;
        }
    }
  else
    srcfd = dup (b->ctxfd);
  if (srcfd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open source root");

  /* heredoc sources are written to a private directory */
  for (size_t i = 0; i + 1 < n; i++)
    if (ob_str_has_prefix (words[i], "<<"))
      {
        const char *name = words[i] + 2;
        const struct ob_heredoc *h = NULL;
        if (*name == '-')
          name++;
        for (size_t k = 0; k < in->n_heredocs; k++)
          if (strcmp (in->heredocs[k].name, name) == 0)
            h = &in->heredocs[k];
        if (h == NULL)
          continue;
        /* the name is the file's name in the scratch directory (and in the
         * image, for a directory destination): one name, never a path out
         * of it (BuildKit's scratch file op cleans `../x` to `x`, and
         * fails on `a/b`; both are refused here) */
        if (h->name[0] == '\0' || strchr (h->name, '/') || strcmp (h->name, ".") == 0
            || strcmp (h->name, "..") == 0)
          return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "%s: heredoc name `%s` is not a file name", what,
                                       h->name);
        if (heredocs == NULL && files_dir (b, &heredocs, &herefd, err) < 0)
          return -1;
        {
          cleanup_free char *content = NULL;
          if (h->expand ? expand_heredoc (b, s, in, h->content, &content, err) < 0 : (content = ob_xstrdup (h->content), 0))
            return -1;
          /* a scratch file; a name given twice: the last one, as before */
          unlinkat (herefd, h->name, 0);
          if (ob_write_file_new_at (herefd, h->name, content, strlen (content), 0644, err) < 0)
            return -1;
        }
        ob_strv_add (&copy_srcs, h->name);
        n_here++;
      }

  /* ADD of a URL: downloaded next to the heredocs, copied like them */
  for (size_t i = 0; add && i + 1 < n; i++)
    if (is_url (words[i]))
      {
        const struct ob_flag *ck = ob_instr_flag (in, "checksum");
        cleanup_free char *sum = NULL;
        cleanup_free char *name = NULL;
        if (ob_str_has_prefix (words[i], "git@") || ob_str_has_suffix (words[i], ".git"))
          return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "ADD %s: git sources are not supported", words[i]);
        if (ck && ck->value && ob_build_word (b, s, in, ck->value, &sum, err) < 0)
          return -1;
        if (heredocs == NULL && files_dir (b, &heredocs, &herefd, err) < 0)
          return -1;
        if (ob_build_fetch_url (b, words[i], sum, herefd, &name, err) < 0)
          return ob_error_wrap (err, "%s:%d: ADD %s", b->dfname, in->line, words[i]);
        if (unpack == 1)
          {
            cleanup_close int afd = openat (herefd, name, O_RDONLY | O_CLOEXEC);
            if (afd >= 0 && ob_layer_is_archive (afd))
              {
                ob_strv_take (&url_archives, steal_pointer (&name));
                continue;
              }
          }
        ob_strv_take (&copy_srcs, steal_pointer (&name));
        n_here++;
      }

  /* resolve the other sources: their matches are gathered in found and
   * joined to copy_srcs at once (a COPY line may name 500,000 sources) */
  cleanup_strv char **found = NULL;
  size_t n_found = 0, n_srcs = ob_strv_len (copy_srcs), n_kept = 0;
  for (size_t i = 0; i + 1 < n; i++)
    {
      cleanup_strv char **matches = NULL;
      if (ob_str_has_prefix (words[i], "<<") || (add && is_url (words[i])))
        continue;
      if (parents && (strstr (words[i], "/./") || strstr (words[i], "**")))
        {
          /* BuildKit's pivot and patterns; keeps[] says where each match
           * goes (the other sources' entries are "\1": their own path) */
          cleanup_strv char **pad = NULL;
          size_t n_pad = 0;
          if (found)
            ob_strv_take_all (&copy_srcs, steal_pointer (&found));
          n_srcs += n_found;
          n_found = 0;
          for (size_t k = n_kept; k < n_srcs; k++)
            ob_strv_push (&pad, &n_pad, ob_xstrdup ("\1"));
          if (pad)
            ob_strv_take_all (&keeps, steal_pointer (&pad));
          if (parents_sources (srcfd, from ? NULL : ig, from != NULL, words[i], &copy_srcs, &keeps, err) < 0)
            return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
          /* what it appended: counted on the tails only */
          size_t before = n_srcs;
          n_srcs = before + (copy_srcs ? ob_strv_len (copy_srcs + before) : 0);
          n_kept = before + (keeps ? ob_strv_len (keeps + before) : 0);
          continue;
        }
      r = from ? ob_context_resolve_in_root (srcfd, NULL, words[i], has_wildcard (words[i]), &matches, err)
               : ob_context_resolve (srcfd, ig, words[i], has_wildcard (words[i]), &matches, err);
      if (r < 0)
        return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
      for (size_t k = 0; matches && matches[k]; k++)
        {
          bool archive = false;
          if (add && from == NULL && unpack != 0)
            {
              struct stat st;
              cleanup_close int fd = -1;
              if (fstatat (srcfd, matches[k], &st, 0) == 0 && S_ISREG (st.st_mode))
                {
                  fd = openat (srcfd, matches[k], O_RDONLY | O_CLOEXEC);
                  archive = fd >= 0 && ob_layer_is_archive (fd);
                }
            }
          if (archive)
            {
              /* by its real path: a symlink to an archive is followed (as
               * BuildKit), inside the context, for the digest too */
              char *real = NULL;
              if (ob_context_real_path (srcfd, ig, matches[k], &real, err) < 0)
                return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
              ob_strv_push (&archives, &n_archives, real);
            }
          else
            ob_strv_push (&found, &n_found, ob_xstrdup (matches[k]));
        }
    }
  if (found)
    ob_strv_take_all (&copy_srcs, steal_pointer (&found));
  /* destination, resolved through the image's symlinks */
  {
    const char *dest = words[n - 1];
    const struct ob_tree_stat *st;
    const char *wd = json_string_value (json_object_get (ob_image_config_runtime (s->config), "WorkingDir"));
    dest_is_dir = ob_str_has_suffix (dest, "/") || strcmp (dest, ".") == 0 || ob_str_has_suffix (dest, "/.")
                  || archives != NULL || url_archives != NULL;
    dest_abs = ob_build_abs_path (s, dest);
    if (ob_build_stage_tree (b, s, err) < 0)
      return -1;
    canon = ob_tree_resolve (s->tree, dest_abs, false);
    st = ob_tree_lookup (s->tree, canon);
    if (st && S_ISLNK (st->mode))
      {
        char *followed = ob_tree_resolve (s->tree, dest_abs, true);
        const struct ob_tree_stat *st2 = ob_tree_lookup (s->tree, followed);
        if (st2 == NULL && !dest_is_dir)
          {
            /* a dangling link without "/": BuildKit resolves the
             * destination through it (fs.RootPath) and writes the source
             * at its target, but creates only the link's own directory:
             * the target's must exist */
            cleanup_free char *dir = ob_xstrndup (followed, strrchr (followed, '/') - followed);
            const struct ob_tree_stat *pd = *dir ? ob_tree_lookup (s->tree, dir) : NULL;
            if (*dir && !(pd && S_ISDIR (pd->mode)))
              {
                ob_build_instr_error (b, in, err, OB_ERR_CONTEXT,
                                      "%s to %s: the symlink leads to %s, in a directory that does not exist", what,
                                      dest, followed);
                free (followed);
                return -1;
              }
          }
        if ((st2 && S_ISDIR (st2->mode)) || st2 == NULL)
          {
            /* a directory, or (as BuildKit) a dangling link: written
             * through, the link kept (with "/": its target is created) */
            free (canon);
            canon = followed;
            st = st2;
          }
        else
          free (followed);
      }
    /* As BuildKit: an existing directory or the WORKDIR is a directory
     * destination without the trailing "/" */
    if ((st && S_ISDIR (st->mode)) || (wd && *wd && strcmp (canon, wd) == 0))
      dest_is_dir = true;
    if (n > 2 && !dest_is_dir)
      return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE,
                                   "When using %s with more than one source file, the destination must be a directory and end with a /",
                                   what);
    dest_is_dir |= n > 2;
    dest_upper = dest_is_dir ? ob_xasprintf ("%s%s", canon, strcmp (canon, "/") == 0 ? "" : "/") : ob_xstrdup (canon);
  }

  /* the cache key: the instruction as expanded, the owner and mode, where
   * it copies from, where to, and the content of every source */
  {
    struct ob_sha256 *h = ob_build_cache_begin (b, s, what);
    char buf[64];
    int hit;
    for (size_t i = 0; words[i]; i++)
      ob_build_cache_add (h, words[i]);
    for (size_t i = 0; i < in->n_flags; i++)
      {
        ob_build_cache_add (h, in->flags[i].name);
        ob_build_cache_add (h, in->flags[i].value);
      }
    snprintf (buf, sizeof buf, "%u:%u %o %d%s", (unsigned) opts.uid, (unsigned) opts.gid, (unsigned) opts.mode,
              opts.chmod, opts.chown ? "" : " keep-owners");
    ob_build_cache_add (h, buf);
    ob_build_cache_add (h, from ? from->cache_key : "context");
    ob_build_cache_add (h, dest_upper);
    for (size_t i = 0; copy_srcs && copy_srcs[i]; i++)
      if (i < n_here ? ob_build_digest_source (b, herefd, NULL, copy_srcs[i], true, h, err) < 0
                     : digest_context_source (b, srcfd, ig, from != NULL, copy_srcs[i], h, err) < 0)
        {
          ob_sha256_free (h);
          return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
        }
    ob_build_cache_add (h, "\1archives");
    for (size_t i = 0; archives && archives[i]; i++)
      if (ob_build_digest_source (b, srcfd, NULL, archives[i], true, h, err) < 0)
        {
          ob_sha256_free (h);
          return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
        }
    for (size_t i = 0; url_archives && url_archives[i]; i++)
      if (ob_build_digest_source (b, herefd, NULL, url_archives[i], true, h, err) < 0)
        {
          ob_sha256_free (h);
          return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
        }
    hit = ob_build_cache_try (b, s, h, cache_key, err);
    if (hit != 0)
      return hit < 0 ? -1 : 0;
    layers_before = s->n_layers;
  }

  if (copy_srcs && heredocs == NULL && archives == NULL && url_archives == NULL && !parents && !excludes
      && !(copy_srcs[1] && !dest_is_dir) && !files_needed_later (b, s, in))
    {
      r = copy_streamed (b, s, in, srcfd, ig, copy_srcs, dest_upper, canon, &opts, err);
      if (r < 0)
        return -1;
      if (r == 0)
        {
          ob_build_cache_done (b, s, cache_key, layers_before);
          return 0;
        }
      /* 1: not planned, copied below */
    }

  upper = ob_build_scratch_dir (b, "upper", err);
  if (upper == NULL)
    return -1;
  upperfd = open (upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (upperfd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", upper);

  if (heredocs && copy_srcs)
    {
      /* heredoc files first (they are named in copy_srcs before the rest) */
      cleanup_strv char **h = NULL;
      cleanup_strv char **rest = NULL;
      size_t n_h = 0, n_rest = 0;
      for (size_t i = 0; copy_srcs[i]; i++)
        {
          if (i < n_here)
            ob_strv_push (&h, &n_h, ob_xstrdup (copy_srcs[i]));
          else
            ob_strv_push (&rest, &n_rest, ob_xstrdup (copy_srcs[i]));
        }
      if (h && ob_context_copy (herefd, NULL, h, upperfd, dest_upper, &opts, err) < 0)
        return ob_error_wrap (err, "%s:%d: %s", b->dfname, in->line, what);
      ob_strv_free (copy_srcs);
      copy_srcs = steal_pointer (&rest);
      keep_off = n_here;
    }
  if (copy_srcs && (parents || excludes))
    {
      size_t n_keeps = ob_strv_len (keeps);
      /* one source at a time: its own exclusions, its own destination */
      for (size_t i = 0; copy_srcs[i]; i++)
        {
          char *one[2] = { copy_srcs[i], NULL };
          cleanup_free char *sub = NULL;
          struct ob_ignore *own = NULL;
          struct stat st;
          cleanup_free char *real = NULL;
          ob_error_t e3 = NULL;
          /* another stage's root: its symlinks resolved inside it
           * (followed on the host, whether a host path was a directory
           * decided what was copied) */
          if (from && ob_context_real_path_in_root (srcfd, copy_srcs[i], &real, &e3) < 0)
            ob_error_free (&e3);
          bool dir = (from == NULL || real) && fstatat (srcfd, from ? real : copy_srcs[i], &st, 0) == 0
                     && S_ISDIR (st.st_mode);
          cleanup_free char *base = dir ? ob_xstrdup (copy_srcs[i]) : ob_xstrdup (copy_srcs[i]);
          int rr;
          if (!dir)
            {
              char *sl = strrchr (base, '/');
              if (sl)
                *sl = '\0';
              else
                strcpy (base, ".");
            }
          if (excludes)
            {
              /* patterns are relative to the source; .dockerignore still applies */
              struct ob_buf t = { 0 };
              for (size_t k = 0; excludes[k]; k++)
                {
                  if (strcmp (base, ".") != 0)
                    {
                      ob_buf_adds (&t, base);
                      ob_buf_addc (&t, '/');
                    }
                  ob_buf_adds (&t, excludes[k]);
                  ob_buf_addc (&t, '\n');
                }
              if (ig_text)
                ob_buf_adds (&t, ig_text);
              rr = ob_ignore_parse ("--exclude", t.data, &own, err);
              ob_buf_free (&t);
              if (rr < 0)
                return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
              if (ob_ignore_match (own, copy_srcs[i]))
                {
                  ob_ignore_free (own);
                  continue;
                }
            }
          const char *pk = i + keep_off < n_keeps ? keeps[i + keep_off] : NULL;
          if (parents && pk && pk[0] != '\1')
            sub = strcmp (pk, ".") == 0 ? ob_xstrdup (dest_upper)
                                        : ob_xasprintf ("%s%s%s/", dest_upper, ob_str_has_suffix (dest_upper, "/") ? "" : "/", pk);
          else if (parents && strcmp (copy_srcs[i], ".") != 0)
            {
              const char *keep = dir ? copy_srcs[i] : base;
              sub = strcmp (keep, ".") == 0 ? ob_xstrdup (dest_upper)
                                             : ob_xasprintf ("%s%s%s/", dest_upper, ob_str_has_suffix (dest_upper, "/") ? "" : "/", keep);
            }
          rr = ob_context_copy (srcfd, own ? own : ig, one, upperfd, sub ? sub : dest_upper, &opts, err);
          ob_ignore_free (own);
          if (rr < 0)
            return ob_error_wrap (err, "%s:%d: %s", b->dfname, in->line, what);
        }
    }
  else if (copy_srcs && copy_srcs[1] && !dest_is_dir)
    {
      /* a wildcard matching several files, to a destination that is not a
       * directory: BuildKit copies each to that name, the last one stays */
      for (size_t i = 0; copy_srcs[i]; i++)
        {
          char *one[2] = { copy_srcs[i], NULL };
          if (ob_context_copy (srcfd, ig, one, upperfd, dest_upper, &opts, err) < 0)
            return ob_error_wrap (err, "%s:%d: %s", b->dfname, in->line, what);
        }
    }
  else if (copy_srcs && ob_context_copy (srcfd, ig, copy_srcs, upperfd, dest_upper, &opts, err) < 0)
    return ob_error_wrap (err, "%s:%d: %s", b->dfname, in->line, what);
  if (copy_srcs == NULL && archives == NULL && url_archives == NULL && heredocs == NULL)
    {
      /* e.g. a wildcard that matched nothing: the destination still exists */
      if (ob_mkdir_p_at (upperfd, strcmp (canon, "/") == 0 ? "." : canon + 1, 0755, err) < 0)
        return -1;
    }
  for (size_t i = 0, k = 0; i < 2; i++, k = 0)
    for (char **list = i == 0 ? archives : url_archives; list && list[k]; k++)
      {
        /* the context's archives, then the downloaded ones (--unpack) */
        cleanup_close int fd = openat (i == 0 ? srcfd : herefd, list[k], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
          return ob_error_make (err, OB_ERR_CONTEXT, errno, "%s:%d: ADD `%s`", b->dfname, in->line, list[k]);
        if (ob_layer_extract (fd, upperfd, canon, false, true, err) < 0)
          {
            /* a hostile or broken archive is a file of the context (exit 4) */
            if ((*err)->kind == OB_ERR_IMAGE)
              ob_error_set_kind (err, OB_ERR_CONTEXT);
            return ob_error_wrap (err, "%s:%d: ADD `%s`", b->dfname, in->line, list[k]);
          }
      }
  if ((archives || url_archives) && f_chown && f_chown->value)
    {
      /* the destination's directories this step creates take the owner
       * too (ob_build_fix_ancestors puts back those the image has) */
      if (ob_build_own_tree (upperfd, canon, opts.uid, opts.gid, err) < 0
          || chown_walk (upperfd, strcmp (canon, "/") == 0 ? "." : canon + 1, opts.uid, opts.gid, err) < 0)
        return ob_error_wrap (err, "%s:%d: ADD --chown", b->dfname, in->line);
    }
  if (opts.chown && (opts.uid > ob_userns_max_id () || opts.gid > ob_userns_max_id ()))
    if (record_owner_walk (upperfd, ".", opts.uid, opts.gid, err) < 0)
      return -1;
  r = ob_build_fix_ancestors (b, s, upperfd, canon, err);
  if (r < 0)
    return -1;
  if (ob_build_commit_layer (b, s, upperfd, upper, in->original, false, err) < 0)
    return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
  ob_build_cache_done (b, s, cache_key, layers_before);
  return 0;
}
