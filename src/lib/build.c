#include "config.h"
#include "build_priv.h"
#include <obuild/snapshot.h>
#include <obuild/util.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Predefined ARGs usable without declaration; not recorded in history. */
static const char *const proxy_args[] = { "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                          "FTP_PROXY",  "ftp_proxy",  "NO_PROXY",    "no_proxy",
                                          "ALL_PROXY",  "all_proxy",  NULL };

static void
blog (struct build *b, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void
blog (struct build *b, const char *fmt, ...)
{
  va_list ap;
  char *line;
  if (b->o->log == NULL && b->o->event == NULL)
    return;
  va_start (ap, fmt);
  if (vasprintf (&line, fmt, ap) < 0)
    ob_oom ();
  va_end (ap);
  if (b->o->event)
    ob_build_emit_text (b, OB_EV_LOG, line);
  else
    b->o->log (b->o->log_data, line);
  free (line);
}

int
ob_build_instr_error (struct build *b, const struct ob_instr *in, ob_error_t *err, int kind,
                      const char *fmt, ...)
{
  va_list ap;
  char *msg;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    ob_oom ();
  va_end (ap);
  ob_error_make (err, kind, 0, "%s:%d: %s", b->dfname, in ? in->line : 0, msg);
  free (msg);
  return -1;
}

/* ---- variables ---- */

static const char *
build_arg (struct build *b, const char *name, bool *found)
{
  size_t n = strlen (name);
  *found = false;
  for (size_t i = 0; b->o->build_args && b->o->build_args[i]; i++)
    {
      const char *a = b->o->build_args[i];
      if (strncmp (a, name, n) == 0 && (a[n] == '=' || a[n] == '\0'))
        {
          *found = true;
          if (a[n] == '=')
            return a + n + 1;
          return getenv (name);
        }
    }
  return NULL;
}

static void
mark_used (struct build *b, const char *name)
{
  for (size_t i = 0; b->used_args && b->used_args[i]; i++)
    if (strcmp (b->used_args[i], name) == 0)
      return;
  ob_strv_add (&b->used_args, name);
}

const char *
ob_build_env_get (json_t *config, const char *name)
{
  json_t *env = json_object_get (ob_image_config_runtime (config), "Env");
  size_t i, n = strlen (name);
  json_t *e;
  json_array_foreach (env, i, e)
    {
      const char *s = json_string_value (e);
      if (s && strncmp (s, name, n) == 0 && s[n] == '=')
        return s + n + 1;
    }
  return NULL;
}

/* The stage's Env by name, in O(1): a linear search of the array on every
 * ENV and every $variable made 100,000 ENV lines quadratic (20,000 took 9
 * seconds).  The index is rebuilt when the Env array is not the one it
 * describes (a new config) or changed size behind env_set()'s back. */
static json_t *
stage_env_array (struct stage *s)
{
  json_t *env = json_object_get (ob_image_config_runtime (s->config), "Env");
  return json_is_array (env) ? env : NULL;
}

static void
env_index_add (json_t *index, const char *entry, size_t i)
{
  const char *eq = entry ? strchr (entry, '=') : NULL;
  cleanup_free char *key = NULL;
  if (eq == NULL)
    return;
  key = ob_xstrndup (entry, eq - entry);
  /* the first of duplicates wins, as the linear search found it */
  if (json_object_get (index, key) == NULL)
    json_object_set_new_nocheck (index, key, json_integer ((json_int_t) i));
}

static json_t *
stage_env_index (struct stage *s)
{
  json_t *env = stage_env_array (s);
  size_t n = env ? json_array_size (env) : 0;
  if (s->env_index && s->env_indexed == env && s->env_indexed_n == n)
    return s->env_index;
  json_decref (s->env_index);
  s->env_index = json_object ();
  for (size_t i = 0; i < n; i++)
    env_index_add (s->env_index, json_string_value (json_array_get (env, i)), i);
  s->env_indexed = env;
  s->env_indexed_n = n;
  return s->env_index;
}

static void
stage_env_forget (struct stage *s)
{
  json_decref (s->env_index);
  s->env_index = NULL;
  s->env_indexed = NULL;
  s->env_indexed_n = 0;
}

/* Position of key in the Env array, or -1. */
static long
stage_env_find (struct stage *s, const char *key)
{
  json_t *index = stage_env_index (s);
  json_t *pos = json_object_get (index, key);
  json_t *env = s->env_indexed;
  size_t n = strlen (key);
  const char *e;
  if (pos == NULL)
    return -1;
  e = json_string_value (json_array_get (env, (size_t) json_integer_value (pos)));
  if (e && strncmp (e, key, n) == 0 && e[n] == '=')
    return (long) json_integer_value (pos);
  /* an entry was replaced behind our back: index afresh */
  stage_env_forget (s);
  index = stage_env_index (s);
  pos = json_object_get (index, key);
  return pos ? (long) json_integer_value (pos) : -1;
}

static const char *
stage_env_get (struct stage *s, const char *key)
{
  long i = stage_env_find (s, key);
  const char *e;
  if (i < 0)
    return NULL;
  e = json_string_value (json_array_get (s->env_indexed, (size_t) i));
  return e + strlen (key) + 1;
}

/* ARGs by name, in O(1) too: index (a JSON object, created when NULL)
 * maps a name to the position of its last declaration. */
static void
index_put (json_t **index, const char *name, size_t i)
{
  if (*index == NULL)
    *index = json_object ();
  json_object_set_new_nocheck (*index, name, json_integer ((json_int_t) i));
}

static long
index_get (json_t *index, const char *name)
{
  json_t *pos = index ? json_object_get (index, name) : NULL;
  return pos ? (long) json_integer_value (pos) : -1;
}

const char *
ob_build_lookup (void *data, const char *name)
{
  struct lookup *l = data;
  if (l->s)
    {
      const char *v = stage_env_get (l->s, name);
      long i;
      if (v)
        return v;
      i = index_get (l->s->arg_index, name);
      return i >= 0 ? l->s->arg_vals[i] : NULL;
    }
  {
    long i = index_get (l->b->meta_index, name);
    return i >= 0 ? l->b->meta_vals[i] : NULL;
  }
}

int
ob_build_account (struct build *b, struct stage *s, const struct ob_instr *in, size_t n,
                  ob_error_t *err)
{
  b->expanded += n;
  if (s)
    s->df_bytes += n;
  if (b->expanded <= OB_BUILD_MAX_EXPANDED)
    return 0;
  /* ENV x=$x$x line after line, or many 1 MiB values, used to grow the
   * build (and the image config) to gigabytes */
  return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE,
                               "expanded values and metadata of more than %d MiB in total "
                               "(obuild's limit)",
                               OB_BUILD_MAX_EXPANDED >> 20);
}

/* An expansion of valid UTF-8 can still cut a character in two (${v#?}
 * removes one byte); JSON would then silently drop the value. */
static int
check_expanded_utf8 (struct build *b, const struct ob_instr *in, const char *w, ob_error_t *err)
{
  if (ob_dockerfile_is_utf8 (w, strlen (w)))
    return 0;
  return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "invalid UTF-8 after expansion");
}

int
ob_build_word (struct build *b, struct stage *s, const struct ob_instr *in, const char *raw,
               char **out, ob_error_t *err)
{
  struct lookup l = { b, s };
  if (ob_dockerfile_word (raw, b->df->escape, ob_build_lookup, &l, out, err) < 0)
    return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
  if (ob_build_account (b, s, in, strlen (*out), err) < 0
      || check_expanded_utf8 (b, in, *out, err) < 0)
    {
      free (*out);
      *out = NULL;
      return -1;
    }
  return 0;
}

/* The words of in (exec form: its expanded args); split: the results of
 * unquoted expansions are split too (EXPOSE, as BuildKit's ProcessWords). */
static int
build_words (struct build *b, struct stage *s, const struct ob_instr *in, bool split, char ***out,
             ob_error_t *err)
{
  struct lookup l = { b, s };
  if (in->json)
    {
      char **r = ob_xmalloc0 (sizeof (char *));
      for (size_t i = 0; i < in->n_args; i++)
        {
          char *w;
          if (ob_dockerfile_word (in->args[i], b->df->escape, ob_build_lookup, &l, &w, err) < 0)
            {
              ob_strv_free (r);
              return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
            }
          ob_strv_take (&r, w);
          if (ob_build_account (b, s, in, strlen (w), err) < 0
              || check_expanded_utf8 (b, in, w, err) < 0)
            {
              ob_strv_free (r);
              return -1;
            }
        }
      *out = r;
      return 0;
    }
  if ((split ? ob_dockerfile_words_split : ob_dockerfile_words) (in->rest ? in->rest : "", b->df->escape,
                                                                ob_build_lookup, &l, out, err)
      < 0)
    return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
  {
    size_t n = 0;
    int r = 0;
    for (size_t i = 0; (*out)[i]; i++)
      {
        n += strlen ((*out)[i]);
        if (r == 0)
          r = check_expanded_utf8 (b, in, (*out)[i], err);
      }
    if (r < 0 || ob_build_account (b, s, in, n, err) < 0)
      {
        ob_strv_free (*out);
        *out = NULL;
        return -1;
      }
  }
  return 0;
}

/* ---- helpers on the config ---- */

static void
env_set (struct stage *s, const char *key, const char *value)
{
  json_t *rt = ob_image_config_runtime (s->config);
  json_t *env = stage_env_array (s);
  cleanup_free char *kv = ob_xasprintf ("%s=%s", key, value);
  long i;
  if (env == NULL)
    {
      env = json_array ();
      json_object_set_new (rt, "Env", env);
    }
  i = stage_env_find (s, key);
  if (i >= 0)
    {
      json_array_set_new (env, (size_t) i, json_string (kv));
      return;
    }
  json_array_append_new (env, json_string (kv));
  /* keep the index up to date instead of rebuilding it */
  if (s->env_index && s->env_indexed == env && s->env_indexed_n + 1 == json_array_size (env))
    {
      env_index_add (s->env_index, kv, s->env_indexed_n);
      s->env_indexed_n++;
    }
}

static void
history (struct build *b, struct stage *s, const char *created_by, bool empty)
{
  ob_image_config_add_history (s->config, b->created, created_by, NULL, empty);
}

char *
ob_build_abs_path (struct stage *s, const char *p)
{
  const char *wd = json_string_value (json_object_get (ob_image_config_runtime (s->config), "WorkingDir"));
  if (p[0] == '/')
    return ob_xstrdup (p);
  if (wd == NULL || *wd == '\0')
    wd = "/";
  return ob_xasprintf ("%s%s%s", wd, ob_str_has_suffix (wd, "/") ? "" : "/", p);
}

/* Clean an absolute path: collapse "//", ".", "..". */
static char *
clean_abs (const char *p)
{
  char **parts = NULL;
  size_t n = 0;
  cleanup_free char *copy = ob_xstrdup (p);
  char *save = NULL;
  struct ob_buf out = { 0 };
  for (char *tok = strtok_r (copy, "/", &save); tok; tok = strtok_r (NULL, "/", &save))
    {
      if (strcmp (tok, ".") == 0)
        continue;
      if (strcmp (tok, "..") == 0)
        {
          if (n > 0)
            n--;
          continue;
        }
      parts = ob_xrealloc (parts, (n + 1) * sizeof *parts);
      parts[n++] = tok;
    }
  for (size_t i = 0; i < n; i++)
    {
      ob_buf_addc (&out, '/');
      ob_buf_adds (&out, parts[i]);
    }
  free (parts);
  if (out.len == 0)
    ob_buf_addc (&out, '/');
  return ob_buf_steal (&out);
}

/* ---- stages ---- */

struct stage *
ob_build_find_stage (struct build *b, const char *name, size_t before)
{
  char *end;
  long idx;
  /* the latest stage of that name: names may repeat (a warning), and
   * BuildKit's name map then holds the last one declared */
  for (size_t i = before < b->n_stages ? before : b->n_stages; i-- > 0;)
    if (b->stages[i].name && strcasecmp (b->stages[i].name, name) == 0)
      return &b->stages[i];
  idx = strtol (name, &end, 10);
  if (*name && *end == '\0' && idx >= 0 && (size_t) idx < before && (size_t) idx < b->n_stages)
    return &b->stages[idx];
  return NULL;
}

void
ob_build_stage_clear (struct stage *s)
{
  free (s->name);
  json_decref (s->config);
  for (size_t i = 0; i < s->n_layers; i++)
    {
      ob_descriptor_clear (&s->layers[i]);
      free (s->layer_dirs[i]);
    }
  free (s->layers);
  free (s->layer_dirs);
  free (s->base_name);
  free (s->base_digest);
  ob_tree_free (s->tree);
  for (size_t i = 0; i < s->n_args; i++)
    {
      free (s->arg_keys[i]);
      free (s->arg_vals[i]);
    }
  free (s->arg_keys);
  free (s->arg_vals);
  free (s->rootfs);
  free (s->copy_rootfs);
  ob_statmap_free (s->copy_seen);
  ob_strv_free (s->copy_linked);
  free (s->hit_created);
  json_decref (s->env_index);
  json_decref (s->arg_index);
}

static void
stage_add_layer (struct stage *s, const struct ob_descriptor *d)
{
  s->layers = ob_xrealloc (s->layers, (s->n_layers + 1) * sizeof *s->layers);
  s->layer_dirs = ob_xrealloc (s->layer_dirs, (s->n_layers + 1) * sizeof *s->layer_dirs);
  s->layers[s->n_layers] = *d;
  s->layers[s->n_layers].media_type = ob_xstrdup (d->media_type);
  s->layer_dirs[s->n_layers] = NULL;
  s->n_layers++;
}

int
ob_build_stage_tree (struct build *b, struct stage *s, ob_error_t *err)
{
  if (s->tree)
    return 0;
  cleanup_free char *index_dir = ob_xasprintf ("%s/trees", b->o->store->root);
  json_t *ids = json_object_get (json_object_get (s->config, "rootfs"), "diff_ids");
  s->tree = ob_tree_new ();
  for (size_t i = 0; i < s->n_layers; i++)
    {
      cleanup_close int fd = -1;
      /* the layers' metadata come from their index when a build already
       * read them: no decompression on rebuilds */
      if (ob_txn_blob_open (b->txn, s->layers[i].digest, &fd, err) < 0
          || ob_tree_add_layer_indexed (s->tree, index_dir, json_string_value (json_array_get (ids, i)), fd, err) < 0)
        {
          ob_tree_free (s->tree);
          s->tree = NULL;
          return ob_error_wrap (err, "layer %s", s->layers[i].digest);
        }
    }
  return 0;
}

int
ob_build_read_image_file (struct build *b, struct stage *s, const char *path, char **out,
                          ob_error_t *err)
{
  int *fds = ob_xmalloc0 ((s->n_layers + 1) * sizeof (int));
  size_t len, opened = 0;
  int r = 0;
  *out = NULL;
  for (; opened < s->n_layers; opened++)
    if (ob_txn_blob_open (b->txn, s->layers[opened].digest, &fds[opened], err) < 0)
      {
        r = -1;
        break;
      }
  if (r == 0)
    r = ob_layer_read_file (fds, s->n_layers, path, out, &len, err);
  for (size_t i = 0; i < opened; i++)
    close (fds[i]);
  free (fds);
  return r;
}

char *
ob_build_scratch_dir (struct build *b, const char *what, ob_error_t *err)
{
  char *p = ob_xasprintf ("%s/%s-%u", ob_txn_scratch (b->txn), what, ++b->scratch_counter);
  if (mkdir (p, 0755) < 0)
    {
      ob_error_make (err, OB_ERR_STORE, errno, "mkdir `%s`", p);
      free (p);
      return NULL;
    }
  return p;
}

int
ob_build_commit_layer (struct build *b, struct stage *s, int upperfd, const char *upper_path,
                       const char *created_by, bool drop_empty, ob_error_t *err)
{
  struct ob_changes *changes = NULL;
  int r;

  if (ob_snapshot_scan (upperfd, &changes, err) < 0)
    return -1;
  r = ob_build_commit_changes (b, s, upperfd, changes, upper_path, created_by, drop_empty, err);
  ob_changes_free (changes);
  return r;
}

int
ob_build_commit_changes (struct build *b, struct stage *s, int upperfd, const struct ob_changes *changes,
                         const char *upper_path, const char *created_by, bool drop_empty, ob_error_t *err)
{
  struct ob_layer_result res;
  struct ob_descriptor d;
  int fd, r;

  if (drop_empty && changes->n == 0)
    {
      history (b, s, created_by, true);
      return 0;
    }
  if (ob_txn_blob_create (b->txn, &fd, err) < 0)
    return -1;
  memset (&res, 0, sizeof res);
  r = ob_layer_write (upperfd, changes, fd, &b->lopts, &res, err);
  if (r < 0)
    {
      close (fd);
      return -1;
    }
  if (ob_txn_blob_commit (b->txn, fd, res.digest, err) < 0)
    return -1;
  d.media_type = (char *) res.media_type;
  strcpy (d.digest, res.digest);
  d.size = res.size;
  stage_add_layer (s, &d);
  if (upper_path)
    {
      s->layer_dirs[s->n_layers - 1] = ob_xstrdup (upper_path);
      ob_strv_take (&b->adopt_dirs, ob_xasprintf ("%s\t%s", res.diff_id, upper_path));
    }
  ob_image_config_add_diff_id (s->config, res.diff_id);
  history (b, s, created_by, false);
  /* the tree is rebuilt (from layer indexes) when a later step needs it */
  ob_tree_free (s->tree);
  s->tree = NULL;
  return 0;
}

/* ---- build cache ---- */

void
ob_build_cache_add (struct ob_sha256 *h, const char *str)
{
  str = str ? str : "";
  ob_sha256_update (h, str, strlen (str) + 1);
}

struct ob_sha256 *
ob_build_cache_begin (struct build *b, struct stage *s, const char *kind)
{
  struct ob_sha256 *h = ob_sha256_new ();
  char comp[32];
  ob_build_cache_add (h, "obuild-cache-v1");
  ob_build_cache_add (h, s->cache_key);
  ob_build_cache_add (h, kind);
  /* the same change compressed differently is another blob; with
   * SOURCE_DATE_EPOCH its file times are clamped to that time */
  snprintf (comp, sizeof comp, "%d/%d", (int) b->lopts.compression, b->lopts.level);
  ob_build_cache_add (h, comp);
  if (b->lopts.clamp_mtime)
    {
      char ep[32];
      snprintf (ep, sizeof ep, "epoch %lld", (long long) b->lopts.mtime_max);
      ob_build_cache_add (h, ep);
    }
  return h;
}

static bool
cache_disabled (struct build *b, struct stage *s)
{
  if (b->cache == NULL || b->o->no_cache)
    return true;
  for (size_t i = 0; b->o->no_cache_filter && b->o->no_cache_filter[i]; i++)
    {
      char buf[32];
      snprintf (buf, sizeof buf, "%zu", s->index);
      if ((s->name && strcasecmp (s->name, b->o->no_cache_filter[i]) == 0) || strcmp (buf, b->o->no_cache_filter[i]) == 0)
        return true;
    }
  return false;
}

int
ob_build_cache_try (struct build *b, struct stage *s, struct ob_sha256 *h, char key[72], ob_error_t *err)
{
  struct ob_cache_entry e;
  ob_sha256_final (h, key);
  ob_strv_add (&b->cache_keys, key);
  if (cache_disabled (b, s) || ob_cache_lookup (b->cache, key, b->o->cache_ttl, &e) != 1)
    return 0;
  if (!e.empty)
    {
      cleanup_close int fd = -1;
      struct stat st;
      ob_error_t e2 = NULL;
      struct ob_descriptor d;
      if (ob_txn_blob_open (b->txn, e.digest, &fd, &e2) < 0 || fstat (fd, &st) < 0 || st.st_size != e.size)
        {
          /* the layer is gone (pruned): a miss */
          ob_error_free (&e2);
          ob_cache_entry_clear (&e);
          return 0;
        }
      d.media_type = e.media_type;
      strcpy (d.digest, e.digest);
      d.size = e.size;
      stage_add_layer (s, &d);
      ob_image_config_add_diff_id (s->config, e.diff_id);
      ob_tree_free (s->tree);
      s->tree = NULL;
    }
  ob_image_config_add_history (s->config, b->o->have_epoch || e.created == NULL ? b->created : e.created,
                               e.created_by, NULL, e.empty);
  s->n_hits++;
  if (e.created && (s->hit_created == NULL || strcmp (e.created, s->hit_created) > 0))
    {
      free (s->hit_created);
      s->hit_created = ob_xstrdup (e.created);
    }
  strcpy (s->cache_key, key);
  s->step_cached = true;
  if (b->o->event == NULL) /* with events: the step's end says it */
    blog (b, "--> CACHED");
  ob_cache_entry_clear (&e);
  return 1;
}

void
ob_build_cache_done (struct build *b, struct stage *s, const char *key, size_t layers_before)
{
  struct ob_cache_entry e;
  json_t *hist = json_object_get (s->config, "history");
  json_t *last = json_array_get (hist, json_array_size (hist) - 1);
  memset (&e, 0, sizeof e);
  strcpy (s->cache_key, key);
  s->n_misses++;
  if (b->cache == NULL)
    return;
  e.empty = s->n_layers == layers_before;
  if (!e.empty)
    {
      json_t *ids = json_object_get (json_object_get (s->config, "rootfs"), "diff_ids");
      const struct ob_descriptor *d = &s->layers[s->n_layers - 1];
      strcpy (e.digest, d->digest);
      e.size = d->size;
      snprintf (e.media_type, sizeof e.media_type, "%s", d->media_type);
      snprintf (e.diff_id, sizeof e.diff_id, "%s", json_string_value (json_array_get (ids, json_array_size (ids) - 1)));
    }
  e.created_by = (char *) json_string_value (json_object_get (last, "created_by"));
  e.created = (char *) json_string_value (json_object_get (last, "created"));
  e.stamp = (int64_t) time (NULL);
  ob_cache_record (b->cache, key, &e);
}

static void
lremovexattr_at (int dfd, const char *path)
{
  cleanup_close int fd = openat (dfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0)
    fremovexattr (fd, OB_OWNER_XATTR);
}

int
ob_build_fix_ancestors (struct build *b, struct stage *s, int upperfd, const char *dir,
                        ob_error_t *err)
{
  cleanup_free char *path = clean_abs (dir);
  size_t n = strlen (path);
  if (ob_build_stage_tree (b, s, err) < 0)
    return -1;
  for (size_t i = 1; i <= n; i++)
    {
      if (path[i] != '/' && path[i] != '\0')
        continue;
      char saved = path[i];
      path[i] = '\0';
      const struct ob_tree_stat *st = ob_tree_lookup (s->tree, path);
      struct stat cur;
      if (st && S_ISDIR (st->mode) && fstatat (upperfd, path + 1, &cur, AT_SYMLINK_NOFOLLOW) == 0
          && S_ISDIR (cur.st_mode))
        {
          struct timespec ts[2] = { { st->mtime, 0 }, { st->mtime, 0 } };
          if (ob_layer_chown_at (upperfd, path + 1, st->uid, st->gid, AT_SYMLINK_NOFOLLOW) == 0)
            lremovexattr_at (upperfd, path + 1);
          else if (errno == EPERM || errno == EINVAL)
            {
              /* not representable in this user namespace: record it */
              if (ob_build_record_owner (upperfd, path + 1, st->uid, st->gid, err) < 0)
                return -1;
            }
          else
            return ob_error_make (err, OB_ERR_STORE, errno, "chown `%s`", path);
          if (fchmodat (upperfd, path + 1, st->mode & 07777, 0) < 0)
            return ob_error_make (err, OB_ERR_STORE, errno, "chmod `%s`", path);
          if (utimensat (upperfd, path + 1, ts, AT_SYMLINK_NOFOLLOW) < 0)
            return ob_error_make (err, OB_ERR_STORE, errno, "utimensat `%s`", path);
        }
      path[i] = saved;
    }
  return 0;
}

int
ob_build_own_tree (int upperfd, const char *dir, uid_t uid, gid_t gid, ob_error_t *err)
{
  cleanup_free char *p = ob_xstrdup (dir + (dir[0] == '/'));
  size_t n = strlen (p);
  for (size_t i = 1; i <= n; i++)
    if (p[i] == '/' || p[i] == '\0')
      {
        char saved = p[i];
        p[i] = '\0';
        if (ob_layer_chown_at (upperfd, p, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
          {
            if (errno != EPERM && errno != EINVAL)
              return ob_error_make (err, OB_ERR_STORE, errno, "chown `/%s`", p);
            if (ob_build_record_owner (upperfd, p, uid, gid, err) < 0)
              return -1;
          }
        p[i] = saved;
      }
  return 0;
}

int
ob_build_workdir_mkdir (struct build *b, struct stage *s, const char *dir, ob_error_t *err)
{
  cleanup_free char *canon = NULL;
  cleanup_free char *upper = NULL;
  cleanup_close int upperfd = -1;
  const struct ob_tree_stat *st;
  cleanup_free char *created_by = NULL;
  char key[72];
  size_t before;
  const char *user = json_string_value (json_object_get (ob_image_config_runtime (s->config), "User"));
  uid_t uid = 0;
  gid_t gid = 0;

  if (ob_build_stage_tree (b, s, err) < 0)
    return -1;
  canon = ob_tree_resolve (s->tree, dir, true);
  st = ob_tree_lookup (s->tree, canon);
  if (st && S_ISDIR (st->mode))
    return 0;
  /* as BuildKit: the directories WORKDIR creates belong to the USER */
  if (user && *user)
    {
      cleanup_free char *passwd = NULL;
      cleanup_free char *group = NULL;
      if (ob_build_read_image_file (b, s, "/etc/passwd", &passwd, err) < 0
          || ob_build_read_image_file (b, s, "/etc/group", &group, err) < 0
          || ob_build_resolve_owner (user, passwd, group, &uid, &gid, err) < 0)
        return ob_error_wrap (err, "USER %s", user);
    }
  {
    struct ob_sha256 *h = ob_build_cache_begin (b, s, "WORKDIR");
    int hit;
    char own[48];
    ob_build_cache_add (h, canon);
    snprintf (own, sizeof own, "%u:%u", (unsigned) uid, (unsigned) gid);
    ob_build_cache_add (h, own);
    hit = ob_build_cache_try (b, s, h, key, err);
    if (hit != 0)
      return hit < 0 ? -1 : 0;
  }
  before = s->n_layers;
  upper = ob_build_scratch_dir (b, "workdir", err);
  if (upper == NULL)
    return -1;
  upperfd = open (upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (upperfd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", upper);
  if (strcmp (canon, "/") != 0 && ob_mkdir_p_at (upperfd, canon + 1, 0755, err) < 0)
    return -1;
  if (user && *user && ob_build_own_tree (upperfd, canon, uid, gid, err) < 0)
    return -1;
  if (ob_build_fix_ancestors (b, s, upperfd, canon, err) < 0)
    return -1;
  created_by = ob_xasprintf ("WORKDIR %s", dir);
  if (ob_build_commit_layer (b, s, upperfd, upper, created_by, false, err) < 0)
    return -1;
  ob_build_cache_done (b, s, key, before);
  return 0;
}

/* ---- FROM ---- */

static int
parse_platform (const char *p, char **os, char **arch, char **variant, ob_error_t *err)
{
  cleanup_free char *c = ob_xstrdup (p);
  char *a = strchr (c, '/'), *v;
  if (a == NULL)
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid platform `%s`: expected os/arch[/variant]", p);
  *a++ = '\0';
  v = strchr (a, '/');
  if (v)
    *v++ = '\0';
  if (*c == '\0' || *a == '\0')
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid platform `%s`: expected os/arch[/variant]", p);
  *os = ob_xstrdup (c);
  *arch = ob_xstrdup (a);
  *variant = v && *v ? ob_xstrdup (v) : NULL;
  return 0;
}

/* Load an image (config and layers) into stage s; ref is resolved by the
 * source module: the store, oci:/oci-archive:/docker-archive:, a registry. */
static int load_image_platform (struct build *b, struct stage *s, const char *ref, const char *platform,
                                ob_error_t *err);

int
ob_build_load_image (struct build *b, struct stage *s, const char *ref, ob_error_t *err)
{
  return load_image_platform (b, s, ref, b->o->source.registry.platform, err);
}

/* ... for platform (FROM --platform, else the build's; NULL: the host's) */
static int
load_image_platform (struct build *b, struct stage *s, const char *ref, const char *platform, ob_error_t *err)
{
  struct ob_source_opts so = b->o->source;
  struct ob_source src;
  struct ob_manifest *m = NULL;
  cleanup_free char *mdata = NULL;
  cleanup_free char *cdata = NULL;
  size_t mlen, clen;
  json_t *ids;
  int r = -1;

  so.registry.platform = platform;
  if (ob_source_resolve (b->o->store, b->txn, ref, &so, &src, err) < 0)
    {
      if ((*err)->kind == OB_ERR_REGISTRY)
        return ob_error_wrap (err, "image `%s` is not in the local store (%s), and pulling it failed",
                              ref, ob_layout_path (b->o->store->oci));
      return -1;
    }
  if (src.pulled)
    blog (b, "pulled %s (%s)", src.name, src.manifest.digest);
  {
    cleanup_close int fd = -1;
    char got[OB_DIGEST_LEN];
    if (ob_txn_blob_open (b->txn, src.manifest.digest, &fd, err) < 0 || ob_read_fd (fd, &mdata, &mlen, err) < 0)
      goto out;
    ob_sha256_digest (mdata, mlen, got);
    if (strcmp (got, src.manifest.digest) != 0)
      {
        ob_error_make (err, OB_ERR_IMAGE, 0, "manifest %s: content has digest %s", src.manifest.digest, got);
        goto out;
      }
  }
  if (ob_image_manifest_parse (mdata, mlen, &m, err) < 0)
    goto out;
  {
    cleanup_close int fd = -1;
    if (ob_txn_blob_open (b->txn, m->config.digest, &fd, err) < 0 || ob_read_fd (fd, &cdata, &clen, err) < 0
        || ob_image_config_parse (cdata, clen, &s->config, err) < 0)
      goto out;
  }
  ids = json_object_get (json_object_get (s->config, "rootfs"), "diff_ids");
  if (json_array_size (ids) != m->n_layers)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "%zu layers but %zu diff_ids", m->n_layers, json_array_size (ids));
      goto out;
    }
  if (json_array_size (json_object_get (s->config, "history")) == 0)
    {
      /* some images record no history: give each layer an entry, so the
       * history of what we build on it stays consistent with its layers */
      for (size_t i = 0; i < m->n_layers; i++)
        ob_image_config_add_history (s->config, NULL, NULL, "layer of the base image (no history recorded)", false);
    }
  for (size_t i = 0; i < m->n_layers; i++)
    {
      /* Docker media types become OCI ones: the bytes are the same */
      if (strcmp (m->layers[i].media_type, OB_MT_DOCKER_LAYER_GZIP) == 0)
        {
          free (m->layers[i].media_type);
          m->layers[i].media_type = ob_xstrdup (OB_MT_LAYER_GZIP);
        }
      stage_add_layer (s, &m->layers[i]);
    }
  s->base_name = ob_xstrdup (src.name);
  s->base_digest = ob_xstrdup (src.manifest.digest);
  r = 0;
out:
  if (r < 0)
    ob_error_wrap (err, "image `%s`", ref);
  ob_manifest_free (m);
  ob_source_clear (&src);
  return r;
}

static int run_instr (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err);

static int
do_from (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  struct lookup l = { b, NULL };
  cleanup_free char *image = NULL;
  const struct ob_flag *pf = ob_instr_flag (in, "platform");
  cleanup_free char *fplat = NULL;
  const char *platform;
  struct stage *src;
  json_t *onbuild;

  if (ob_dockerfile_word (in->from_image, b->df->escape, ob_build_lookup, &l, &image, err) < 0)
    return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
  if (*image == '\0')
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "FROM: empty image name after expansion of `%s`",
                                 in->from_image);
  src = ob_build_find_stage (b, image, s->index);
  if (src && (src->name == NULL || strcasecmp (src->name, image) != 0))
    src = NULL; /* FROM takes stage names, not indexes */
  /* the stage's platform: FROM --platform (FROM --platform=$BUILDPLATFORM
   * runs natively in a cross build), else the build's */
  if (pf && pf->value)
    {
      cleanup_free char *os = NULL, *arch = NULL, *variant = NULL;
      if (ob_dockerfile_word (pf->value, b->df->escape, ob_build_lookup, &l, &fplat, err) < 0
          || parse_platform (fplat, &os, &arch, &variant, err) < 0)
        return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
    }
  platform = fplat ? fplat : b->o->source.registry.platform;
  if (strcmp (image, "scratch") == 0)
    {
      cleanup_free char *os = NULL, *arch = NULL, *variant = NULL;
      if (platform && parse_platform (platform, &os, &arch, &variant, err) < 0)
        return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
      s->config = ob_image_config_new (os ? os : "linux", arch ? arch : ob_image_host_arch (),
                                       arch ? variant : ob_image_host_variant ());
    }
  else if (src)
    {
      /* the copy holds again what the Dockerfile put in src */
      if (ob_build_account (b, s, in, src->df_bytes, err) < 0)
        return -1;
      s->config = json_deep_copy (src->config);
      for (size_t i = 0; i < src->n_layers; i++)
        {
          stage_add_layer (s, &src->layers[i]);
          s->layer_dirs[i] = src->layer_dirs[i] ? ob_xstrdup (src->layer_dirs[i]) : NULL;
        }
      s->base_name = src->base_name ? ob_xstrdup (src->base_name) : NULL;
      s->base_digest = src->base_digest ? ob_xstrdup (src->base_digest) : NULL;
      s->n_hits = src->n_hits;
      s->n_misses = src->n_misses;
      s->hit_created = src->hit_created ? ob_xstrdup (src->hit_created) : NULL;
    }
  else if (load_image_platform (b, s, image, platform, err) < 0)
    {
      cleanup_free char *norm = NULL;
      ob_error_t nerr = NULL;
      /* an invalid reference written in the Dockerfile is a Dockerfile
       * error (3), not a usage error of the command line */
      if ((*err)->kind == OB_ERR_USAGE && ob_image_ref_normalize (image, &norm, &nerr) < 0)
        ob_error_set_kind (err, OB_ERR_DOCKERFILE);
      ob_error_free (&nerr);
      return ob_error_wrap (err, "%s:%d: FROM %s", b->dfname, in->line, image);
    }

  stage_env_forget (s); /* a new config */
  if (stage_env_get (s, "PATH") == NULL)
    env_set (s, "PATH", DEFAULT_PATH + 5);

  /* the layers this build did not make: FROM <stage> inherits its base's */
  s->n_base_layers = src ? src->n_base_layers : s->n_layers;
  s->n_base_history = src ? src->n_base_history : json_array_size (json_object_get (s->config, "history"));

  /* the root of the stage's cache keys: what its filesystem starts from */
  {
    struct ob_sha256 *h = ob_sha256_new ();
    ob_build_cache_add (h, "FROM");
    /* a step cached for one platform is never another's, whatever the
     * base (an image without an index is the same bytes for both) */
    if (platform)
      ob_build_cache_add (h, platform);
    if (src)
      ob_build_cache_add (h, src->cache_key);
    else if (s->base_digest)
      ob_build_cache_add (h, s->base_digest);
    else
      {
        ob_build_cache_add (h, json_string_value (json_object_get (s->config, "os")));
        ob_build_cache_add (h, json_string_value (json_object_get (s->config, "architecture")));
      }
    ob_sha256_final (h, s->cache_key);
  }

  /* ONBUILD triggers of the base run now, then are consumed. */
  onbuild = json_incref (json_object_get (ob_image_config_runtime (s->config), "OnBuild"));
  json_object_del (ob_image_config_runtime (s->config), "OnBuild");
  if (json_is_array (onbuild))
    {
      size_t i;
      json_t *t;
      json_array_foreach (onbuild, i, t)
        {
          struct ob_instr *trig = NULL;
          int r;
          if (ob_dockerfile_parse_instr (b->dfname, in->line, json_string_value (t), b->df->escape, &trig, err) < 0)
            {
              json_decref (onbuild);
              return ob_error_wrap (err, "ONBUILD trigger of the base image");
            }
          blog (b, "  ONBUILD %s", json_string_value (t));
          r = run_instr (b, s, trig, err);
          ob_instr_free (trig);
          if (r < 0)
            {
              json_decref (onbuild);
              return -1;
            }
        }
    }
  json_decref (onbuild);
  return 0;
}

/* ---- metadata instructions ---- */


static int
do_kv (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  struct ob_buf hist = { 0 };
  json_t *rt = ob_image_config_runtime (s->config);
  cleanup_strv char **keys = NULL;
  cleanup_strv char **vals = NULL;
  size_t n_keys = 0, n_vals = 0;
  /* as Docker: every value is expanded with what was set before this
   * instruction (ENV A=1 B=$A gives B the previous A), then all are set */
  for (size_t i = 0; i < in->n_kvs; i++)
    {
      char *k = NULL, *v = NULL;
      if (ob_build_word (b, s, in, in->kvs[i].key, &k, err) < 0)
        return -1;
      if (ob_build_word (b, s, in, in->kvs[i].value ? in->kvs[i].value : "", &v, err) < 0)
        {
          free (k);
          return -1;
        }
      ob_strv_push (&keys, &n_keys, k);
      ob_strv_push (&vals, &n_vals, v);
      if (*k == '\0')
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "%s names must not be empty",
                                     ob_instr_kind_name (in->kind));
    }
  ob_buf_adds (&hist, in->kind == OB_I_ENV ? "ENV" : "LABEL");
  for (size_t i = 0; keys && keys[i]; i++)
    {
      if (in->kind == OB_I_ENV)
        env_set (s, keys[i], vals[i]);
      else
        {
          json_t *labels = json_object_get (rt, "Labels");
          if (!json_is_object (labels))
            {
              labels = json_object ();
              json_object_set_new (rt, "Labels", labels);
            }
          json_object_set_new (labels, keys[i], json_string (vals[i]));
        }
      ob_buf_addc (&hist, ' ');
      ob_buf_adds (&hist, keys[i]);
      ob_buf_addc (&hist, '=');
      ob_buf_adds (&hist, vals[i]);
    }
  history (b, s, hist.data, true);
  ob_buf_free (&hist);
  return 0;
}

static bool
is_proxy_arg (const char *k)
{
  for (size_t i = 0; proxy_args[i]; i++)
    if (strcmp (proxy_args[i], k) == 0)
      return true;
  return false;
}


/* Room for element n of an array of n: doubling at powers of two (one
 * realloc per ARG copied the arrays each time for 100,000 ARGs). */
static void
grow_strs (char ***v, size_t n)
{
  if (n == 0 || (n & (n - 1)) == 0)
    *v = ob_xrealloc (*v, (n ? 2 * n : 1) * sizeof (char *));
}

/* The automatic platform ARGs: BUILD* describe this machine, TARGET* the
 * --platform of the build (this machine without it), as in BuildKit. */
static char *
platform_arg (struct build *b, const char *name)
{
  const char *prefixes[] = { "TARGET", "BUILD" };
  for (size_t i = 0; i < 2; i++)
    {
      const char *os = "linux", *arch = ob_image_host_arch (), *var = ob_image_host_variant ();
      cleanup_free char *pos = NULL, *parch = NULL, *pvar = NULL;
      const char *want = b->o->source.registry.platform;
      size_t pl = strlen (prefixes[i]);
      if (strncmp (name, prefixes[i], pl) != 0)
        continue;
      const char *rest = name + pl;
      if (i == 0 && want)
        {
          ob_error_t perr = NULL;
          if (parse_platform (want, &pos, &parch, &pvar, &perr) == 0)
            {
              os = pos;
              arch = parch;
              var = pvar;
            }
          ob_error_free (&perr);
        }
      if (strcmp (rest, "PLATFORM") == 0)
        return var ? ob_xasprintf ("%s/%s/%s", os, arch, var) : ob_xasprintf ("%s/%s", os, arch);
      if (strcmp (rest, "OS") == 0)
        return ob_xstrdup (os);
      if (strcmp (rest, "ARCH") == 0)
        return ob_xstrdup (arch);
      if (strcmp (rest, "VARIANT") == 0)
        return ob_xstrdup (var ? var : "");
    }
  return NULL;
}

/* BuildKit predefines the platform ARGs in the global scope: FROM lines
 * use them undeclared (FROM --platform=$BUILDPLATFORM, FROM s-$TARGETOS);
 * a stage still sees them only after `ARG NAME`. */
static void
predefine_platform_args (struct build *b)
{
  static const char *const names[]
      = { "BUILDPLATFORM",  "BUILDOS",  "BUILDARCH",  "BUILDVARIANT",
          "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT" };
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    {
      grow_strs (&b->meta_keys, b->n_meta);
      grow_strs (&b->meta_vals, b->n_meta);
      index_put (&b->meta_index, names[i], b->n_meta);
      index_put (&b->meta_set_index, names[i], b->n_meta);
      b->meta_keys[b->n_meta] = ob_xstrdup (names[i]);
      b->meta_vals[b->n_meta] = platform_arg (b, names[i]);
      b->n_meta++;
    }
}

static int
declare_arg (struct build *b, struct stage *s, const struct ob_instr *in, const struct ob_kv *kv,
             ob_error_t *err)
{
  cleanup_free char *key = NULL;
  char *val = NULL;
  const char *given;
  bool found;
  struct lookup l = { b, s };

  if (ob_dockerfile_word (kv->key, b->df->escape, ob_build_lookup, &l, &key, err) < 0)
    return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
  if (*key == '\0')
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "ARG names must not be empty");
  if (kv->value && ob_dockerfile_word (kv->value, b->df->escape, ob_build_lookup, &l, &val, err) < 0)
    return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
  if (ob_build_account (b, s, in, strlen (key) + (val ? strlen (val) : 0), err) < 0)
    {
      free (val);
      return -1;
    }
  given = build_arg (b, key, &found);
  if (found)
    {
      mark_used (b, key);
      if (given && !ob_dockerfile_is_utf8 (given, strlen (given)))
        {
          free (val);
          /* `--build-arg K` takes the value from the environment */
          return ob_error_make (err, OB_ERR_USAGE, 0, "%s:%d: --build-arg %s: invalid UTF-8 in the value",
                                b->dfname, in->line, key);
        }
      if (given)
        {
          free (val);
          val = ob_xstrdup (given);
        }
    }
  if (val == NULL && s == NULL)
    {
      /* global scope: automatic platform args have values */
      val = platform_arg (b, key);
    }
  else if (val == NULL)
    {
      /* inside a stage, an ARG without default inherits the global value */
      long i = index_get (b->meta_set_index, key);
      if (i >= 0)
        val = ob_xstrdup (b->meta_vals[i]);
      if (val == NULL)
        val = platform_arg (b, key);
    }
  if (s == NULL)
    {
      grow_strs (&b->meta_keys, b->n_meta);
      grow_strs (&b->meta_vals, b->n_meta);
      index_put (&b->meta_index, key, b->n_meta);
      if (val)
        index_put (&b->meta_set_index, key, b->n_meta);
      b->meta_keys[b->n_meta] = steal_pointer (&key);
      b->meta_vals[b->n_meta] = val;
      b->n_meta++;
    }
  else
    {
      grow_strs (&s->arg_keys, s->n_args);
      grow_strs (&s->arg_vals, s->n_args);
      index_put (&s->arg_index, key, s->n_args);
      s->arg_keys[s->n_args] = steal_pointer (&key);
      s->arg_vals[s->n_args] = val;
      s->n_args++;
    }
  return 0;
}

static int
do_arg (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  struct ob_buf hist = { 0 };
  ob_buf_adds (&hist, "ARG");
  for (size_t i = 0; i < in->n_kvs; i++)
    {
      if (declare_arg (b, s, in, &in->kvs[i], err) < 0)
        {
          ob_buf_free (&hist);
          return -1;
        }
      ob_buf_addc (&hist, ' ');
      ob_buf_adds (&hist, s->arg_keys[s->n_args - 1]);
      if (s->arg_vals[s->n_args - 1])
        {
          ob_buf_addc (&hist, '=');
          ob_buf_adds (&hist, s->arg_vals[s->n_args - 1]);
        }
    }
  history (b, s, hist.data, true);
  ob_buf_free (&hist);
  return 0;
}

/* CMD, ENTRYPOINT, SHELL and HEALTHCHECK's command as a JSON array. */
static json_t *
command_array (struct stage *s, const struct ob_instr *in, bool shell_prefix)
{
  json_t *a = json_array ();
  if (in->json)
    {
      for (size_t i = 0; i < in->n_args; i++)
        json_array_append_new (a, json_string (in->args[i]));
      return a;
    }
  if (shell_prefix)
    {
      json_t *sh = json_object_get (ob_image_config_runtime (s->config), "Shell");
      if (json_is_array (sh) && json_array_size (sh) > 0)
        json_array_extend (a, sh);
      else
        {
          json_array_append_new (a, json_string ("/bin/sh"));
          json_array_append_new (a, json_string ("-c"));
        }
    }
  json_array_append_new (a, json_string (in->rest ? in->rest : ""));
  return a;
}

static bool
valid_signal (const char *s)
{
  static const char *const names[]
      = { "HUP",  "INT",    "QUIT",  "ILL",  "TRAP", "ABRT",   "IOT",  "BUS",  "FPE",   "KILL", "USR1",
          "SEGV", "USR2",   "PIPE",  "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP",  "TSTP", "TTIN",
          "TTOU", "URG",    "XCPU",  "XFSZ", "VTALRM", "PROF", "WINCH", "IO",  "POLL",  "PWR",  "SYS",
          NULL };
  char *end;
  long n;
  if (*s == '\0')
    return false;
  n = strtol (s, &end, 10);
  if (*end == '\0')
    return n > 0 && n <= 64;
  if (strncasecmp (s, "SIG", 3) == 0)
    s += 3;
  if (strncasecmp (s, "RTMIN", 5) == 0 || strncasecmp (s, "RTMAX", 5) == 0)
    return true;
  for (size_t i = 0; names[i]; i++)
    if (strcasecmp (s, names[i]) == 0)
      return true;
  return false;
}

int
ob_build_parse_duration (const char *s, int64_t *out, ob_error_t *err)
{
  const char *p = s;
  double total = 0;
  if (*p == '\0')
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid duration `%s`", s);
  if (strcmp (s, "0") == 0)
    {
      *out = 0;
      return 0;
    }
  while (*p)
    {
      char *end;
      double v = strtod (p, &end);
      double unit;
      if (end == p || v < 0)
        return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid duration `%s`", s);
      p = end;
      if (strncmp (p, "ns", 2) == 0)
        unit = 1, p += 2;
      else if (strncmp (p, "us", 2) == 0 || strncmp (p, "µs", 3) == 0)
        unit = 1e3, p += (p[0] == 'u' ? 2 : 3);
      else if (strncmp (p, "ms", 2) == 0)
        unit = 1e6, p += 2;
      else if (*p == 's')
        unit = 1e9, p += 1;
      else if (*p == 'm')
        unit = 60e9, p += 1;
      else if (*p == 'h')
        unit = 3600e9, p += 1;
      else
        return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid duration `%s`: missing unit", s);
      total += v * unit;
    }
  *out = (int64_t) total;
  return 0;
}

static int
do_healthcheck (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  json_t *hc = json_object ();
  static const char *const opts[][2] = { { "interval", "Interval" }, { "timeout", "Timeout" },
                                         { "start-period", "StartPeriod" },
                                         { "start-interval", "StartInterval" } };
  if (in->healthcheck_none)
    {
      json_t *t = json_array ();
      json_array_append_new (t, json_string ("NONE"));
      json_object_set_new (hc, "Test", t);
    }
  else
    {
      json_t *t = json_array ();
      json_array_append_new (t, json_string (in->json ? "CMD" : "CMD-SHELL"));
      json_t *cmd = command_array (s, in, false);
      json_array_extend (t, cmd);
      json_decref (cmd);
      json_object_set_new (hc, "Test", t);
      for (size_t i = 0; i < 4; i++)
        {
          const struct ob_flag *f = ob_instr_flag (in, opts[i][0]);
          int64_t ns;
          if (f == NULL)
            continue;
          if (ob_build_parse_duration (f->value ? f->value : "", &ns, err) < 0)
            {
              json_decref (hc);
              return ob_error_wrap (err, "%s:%d: HEALTHCHECK --%s", b->dfname, in->line, opts[i][0]);
            }
          if (ns != 0 && ns < 1000000)
            {
              json_decref (hc);
              return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE,
                                           "HEALTHCHECK --%s cannot be less than 1ms", opts[i][0]);
            }
          json_object_set_new (hc, opts[i][1], json_integer (ns));
        }
      const struct ob_flag *r = ob_instr_flag (in, "retries");
      if (r)
        {
          char *end;
          long n = strtol (r->value ? r->value : "", &end, 10);
          if (r->value == NULL || *r->value == '\0' || *end || n < 0)
            {
              json_decref (hc);
              return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE,
                                           "HEALTHCHECK --retries must be a non-negative integer");
            }
          json_object_set_new (hc, "Retries", json_integer (n));
        }
    }
  json_object_set_new (ob_image_config_runtime (s->config), "Healthcheck", hc);
  history (b, s, in->original, true);
  return 0;
}

/* Expand an EXPOSE word into "port/proto" keys (ranges expanded). */
static int
expose_word (struct build *b, const struct ob_instr *in, const char *w, json_t *ports, ob_error_t *err)
{
  const char *colon = strrchr (w, ':');
  cleanup_free char *c = ob_xstrdup (colon ? colon + 1 : w);
  char *proto;
  if (colon)
    {
      /* ip:host:container or host:container: BuildKit exposes the
       * container port and warns (lint rule ExposeInvalidFormat) */
      ob_strv_take (&b->warnings, ob_xasprintf ("%s:%d: EXPOSE instruction should not define an IP address or "
                                                "host-port mapping, found '%s'",
                                                b->dfname, in->line, w));
    }
  proto = strchr (c, '/');
  char *dash, *end;
  long lo, hi;
  if (proto)
    {
      *proto++ = '\0';
      for (char *p = proto; *p; p++)
        *p = tolower ((unsigned char) *p);
      if (strcmp (proto, "tcp") != 0 && strcmp (proto, "udp") != 0 && strcmp (proto, "sctp") != 0)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "EXPOSE %s: invalid protocol", w);
    }
  dash = strchr (c, '-');
  if (dash)
    *dash = '\0';
  lo = strtol (c, &end, 10);
  if (*c == '\0' || *end || lo < 0 || lo > 65535)
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "EXPOSE %s: invalid port", w);
  hi = lo;
  if (dash)
    {
      hi = strtol (dash + 1, &end, 10);
      if (dash[1] == '\0' || *end || hi < lo || hi > 65535)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "EXPOSE %s: invalid port range", w);
    }
  for (long p = lo; p <= hi; p++)
    {
      char key[32];
      snprintf (key, sizeof key, "%ld/%s", p, proto ? proto : "tcp");
      json_object_set_new (ports, key, json_object ());
    }
  return 0;
}

static int
do_meta (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  json_t *rt = ob_image_config_runtime (s->config);
  cleanup_free char *w = NULL;
  cleanup_free char *hist = NULL;
  cleanup_strv char **words = NULL;

  switch (in->kind)
    {
    case OB_I_CMD:
      json_object_set_new (rt, "Cmd", command_array (s, in, true));
      s->cmd_set = true;
      break;
    case OB_I_ENTRYPOINT:
      json_object_set_new (rt, "Entrypoint", command_array (s, in, true));
      if (!s->cmd_set)
        json_object_del (rt, "Cmd");
      break;
    case OB_I_SHELL:
      if (!in->json || in->n_args == 0)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "SHELL requires a JSON array");
      json_object_set_new (rt, "Shell", command_array (s, in, false));
      break;
    case OB_I_USER:
    case OB_I_STOPSIGNAL:
    case OB_I_MAINTAINER:
      if (ob_build_word (b, s, in, in->rest ? in->rest : "", &w, err) < 0)
        return -1;
      if (*w == '\0')
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "%s requires an argument",
                                     ob_instr_kind_name (in->kind));
      if (in->kind == OB_I_USER)
        json_object_set_new (rt, "User", json_string (w));
      else if (in->kind == OB_I_MAINTAINER)
        json_object_set_new (s->config, "author", json_string (w));
      else
        {
          if (!valid_signal (w))
            return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "STOPSIGNAL: invalid signal `%s`", w);
          json_object_set_new (rt, "StopSignal", json_string (w));
        }
      hist = ob_xasprintf ("%s %s", ob_instr_kind_name (in->kind), w);
      break;
    case OB_I_EXPOSE:
    case OB_I_VOLUME:
      {
        const char *key = in->kind == OB_I_EXPOSE ? "ExposedPorts" : "Volumes";
        json_t *obj = json_object_get (rt, key);
        struct ob_buf h = { 0 };
        if (build_words (b, s, in, in->kind == OB_I_EXPOSE, &words, err) < 0)
          return -1;
        if (ob_strv_len (words) == 0)
          return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "%s requires at least one argument",
                                       ob_instr_kind_name (in->kind));
        if (!json_is_object (obj))
          {
            obj = json_object ();
            json_object_set_new (rt, key, obj);
          }
        ob_buf_adds (&h, ob_instr_kind_name (in->kind));
        for (size_t i = 0; words[i]; i++)
          {
            if (in->kind == OB_I_EXPOSE)
              {
                if (expose_word (b, in, words[i], obj, err) < 0)
                  {
                    ob_buf_free (&h);
                    return -1;
                  }
              }
            else
              {
                if (*words[i] == '\0')
                  {
                    ob_buf_free (&h);
                    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "VOLUME specified can not be an empty string");
                  }
                json_object_set_new (obj, words[i], json_object ());
              }
            ob_buf_addc (&h, ' ');
            ob_buf_adds (&h, words[i]);
          }
        hist = ob_buf_steal (&h);
        break;
      }
    case OB_I_WORKDIR:
      {
        cleanup_free char *abs = NULL;
        char *clean;
        if (ob_build_word (b, s, in, in->rest ? in->rest : "", &w, err) < 0)
          return -1;
        if (*w == '\0')
          return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "WORKDIR requires an argument");
        abs = ob_build_abs_path (s, w);
        clean = clean_abs (abs);
        json_object_set_new (rt, "WorkingDir", json_string (clean));
        hist = ob_xasprintf ("WORKDIR %s", clean);
        free (clean);
        {
          size_t before = s->n_layers;
          if (ob_build_workdir_mkdir (b, s, hist + 8, err) < 0)
            return ob_error_wrap (err, "%s:%d: WORKDIR", b->dfname, in->line);
          if (s->n_layers != before)
            return 0; /* commit_layer wrote the history entry */
        }
        break;
      }
    case OB_I_ONBUILD:
      {
        json_t *ob = json_object_get (rt, "OnBuild");
        if (!json_is_array (ob))
          {
            ob = json_array ();
            json_object_set_new (rt, "OnBuild", ob);
          }
        json_array_append_new (ob, json_string (in->onbuild_text ? in->onbuild_text : ""));
        break;
      }
    default:
      break;
    }
  history (b, s, hist ? hist : in->original, true);
  return 0;
}

static int
run_instr (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  switch (in->kind)
    {
    case OB_I_FROM:
      return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "FROM is not allowed here");
    case OB_I_ENV:
    case OB_I_LABEL:
      return do_kv (b, s, in, err);
    case OB_I_ARG:
      return do_arg (b, s, in, err);
    case OB_I_HEALTHCHECK:
      return do_healthcheck (b, s, in, err);
    case OB_I_COPY:
    case OB_I_ADD:
      return ob_build_copy (b, s, in, err);
    case OB_I_RUN:
      return ob_build_run_step (b, s, in, err);
    case OB_I_CMD:
    case OB_I_ENTRYPOINT:
    case OB_I_SHELL:
    case OB_I_USER:
    case OB_I_STOPSIGNAL:
    case OB_I_MAINTAINER:
    case OB_I_EXPOSE:
    case OB_I_VOLUME:
    case OB_I_WORKDIR:
    case OB_I_ONBUILD:
      return do_meta (b, s, in, err);
    }
  return ob_build_instr_error (b, in, err, OB_ERR_GENERIC, "unhandled instruction");
}

/* ---- planning ---- */

/* Names of stages an instruction depends on (FROM <stage>, COPY --from). */
static void
mark_needed (struct build *b, size_t idx)
{
  struct stage *s = &b->stages[idx];
  if (s->needed)
    return;
  s->needed = true;
  for (size_t i = s->first; i < s->end; i++)
    {
      const struct ob_instr *in = &b->df->instrs[i];
      const char *ref = NULL;
      cleanup_free char *exp = NULL;
      struct lookup l = { b, NULL };
      ob_error_t e = NULL;
      if (in->kind == OB_I_RUN)
        {
          /* RUN --mount=from=<stage> needs that stage too */
          cleanup_strv char **froms = ob_build_mount_froms (in);
          for (size_t k = 0; froms && froms[k]; k++)
            {
              cleanup_free char *x = NULL;
              ob_error_t e2 = NULL;
              struct lookup l2 = { b, NULL };
              struct stage *d;
              if (ob_dockerfile_word (froms[k], b->df->escape, ob_build_lookup, &l2, &x, &e2) < 0)
                {
                  ob_error_free (&e2);
                  continue;
                }
              d = ob_build_find_stage (b, x, idx);
              if (d)
                mark_needed (b, d->index);
            }
          continue;
        }
      if (in->kind == OB_I_FROM)
        ref = in->from_image;
      else if (in->kind == OB_I_COPY || in->kind == OB_I_ADD)
        {
          const struct ob_flag *f = ob_instr_flag (in, "from");
          ref = f ? f->value : NULL;
        }
      if (ref == NULL)
        continue;
      if (ob_dockerfile_word (ref, b->df->escape, ob_build_lookup, &l, &exp, &e) < 0)
        {
          ob_error_free (&e);
          continue;
        }
      struct stage *dep = ob_build_find_stage (b, exp, idx);
      if (dep && (in->kind != OB_I_FROM || (dep->name && strcasecmp (dep->name, exp) == 0)))
        mark_needed (b, dep->index);
    }
}

static int
plan (struct build *b, size_t *target, ob_error_t *err)
{
  struct ob_dockerfile *df = b->df;
  size_t i = 0;
  predefine_platform_args (b);
  /* ARGs before the first FROM */
  for (; i < df->n_instrs && df->instrs[i].kind != OB_I_FROM; i++)
    {
      const struct ob_instr *in = &df->instrs[i];
      if (in->kind != OB_I_ARG)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "%s before the first FROM (only ARG may come before it)",
                                     ob_instr_kind_name (in->kind));
      for (size_t k = 0; k < in->n_kvs; k++)
        if (declare_arg (b, NULL, in, &in->kvs[k], err) < 0)
          return -1;
    }
  if (i == df->n_instrs)
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "%s: no FROM instruction", b->dfname);
  for (; i < df->n_instrs; i++)
    {
      const struct ob_instr *in = &df->instrs[i];
      if (in->kind == OB_I_FROM)
        {
          struct stage *s;
          b->stages = ob_xrealloc (b->stages, (b->n_stages + 1) * sizeof *b->stages);
          s = &b->stages[b->n_stages];
          memset (s, 0, sizeof *s);
          s->index = b->n_stages++;
          s->first = i;
          s->name = in->from_stage ? ob_xstrdup (in->from_stage) : NULL;
          for (size_t k = 0; k + 1 < b->n_stages; k++)
            if (s->name && b->stages[k].name && strcasecmp (b->stages[k].name, s->name) == 0)
              {
                /* BuildKit's lint rule DuplicateStageName: a warning; the
                 * name then means the latest such stage */
                ob_strv_take (&b->warnings, ob_xasprintf ("%s:%d: Duplicate stage name \"%s\", stage names should be unique",
                                                          b->dfname, in->line, s->name));
                break;
              }
        }
      b->stages[b->n_stages - 1].end = i + 1;
    }
  *target = b->n_stages - 1;
  if (b->o->target)
    {
      bool found = false;
      for (size_t k = 0; k < b->n_stages; k++)
        if (b->stages[k].name && strcasecmp (b->stages[k].name, b->o->target) == 0)
          {
            *target = k;
            found = true;
          }
      if (!found)
        return ob_error_make (err, OB_ERR_USAGE, 0, "--target: no stage named `%s` in %s", b->o->target,
                              b->dfname);
    }
  mark_needed (b, *target);
  for (size_t k = 0; k < b->n_stages; k++)
    if (b->stages[k].needed)
      b->total_steps += b->stages[k].end - b->stages[k].first;
  return 0;
}

static int
build_stage (struct build *b, struct stage *s, ob_error_t *err)
{
  for (size_t i = s->first; i < s->end; i++)
    {
      const struct ob_instr *in = &b->df->instrs[i];
      int r;
      b->step++;
      if (b->o->interrupted && *b->o->interrupted)
        return ob_error_make (err, OB_ERR_INTERRUPTED, 0, "interrupted");
      int64_t t0 = ob_progress_now ();
      size_t layers_before = s->n_layers;
      b->cur_stage = s;
      s->step_cached = false;
      if (b->o->event)
        ob_build_emit_step (b, s, in, OB_EV_STEP_START, t0, 0, false);
      else
        blog (b, "STEP %zu/%zu: %s", b->step, b->total_steps, in->original);
      if (in->kind != OB_I_FROM && ob_build_account (b, s, in, strlen (in->original), err) < 0)
        r = -1;
      else
        r = in->kind == OB_I_FROM ? do_from (b, s, in, err) : run_instr (b, s, in, err);
      ob_build_emit_step (b, s, in, OB_EV_STEP_END, t0, layers_before, r < 0);
      if (r < 0)
        return -1;
    }
  s->built = true;
  return 0;
}

/* ---- reading the Dockerfile ---- */

static int
load_dockerfile (struct build *b, ob_error_t *err)
{
  const struct ob_build_opts *o = b->o;
  cleanup_free char *text = NULL;
  size_t len = 0;
  if (o->dockerfile_text)
    {
      b->dfname = ob_xstrdup (o->dockerfile ? o->dockerfile : "-");
      return ob_dockerfile_parse (b->dfname, o->dockerfile_text, o->dockerfile_len, &b->df, err);
    }
  if (o->dockerfile)
    {
      ob_error_t e = NULL;
      b->dfname = ob_xstrdup (o->dockerfile);
      if (ob_read_file_at (AT_FDCWD, o->dockerfile, &text, &len, &e) < 0)
        {
          int st = e->status;
          ob_error_free (&e);
          return ob_error_make (err, OB_ERR_CONTEXT, st, "cannot read Dockerfile `%s`", o->dockerfile);
        }
    }
  else
    {
      static const char *const names[] = { "Dockerfile", "Containerfile" };
      for (size_t i = 0; i < 2 && text == NULL; i++)
        {
          ob_error_t e = NULL;
          if (ob_read_file_at (b->ctxfd, names[i], &text, &len, &e) == 0)
            b->dfname = ob_xstrdup (names[i]);
          else if (e->status != ENOENT)
            {
              int st = e->status;
              ob_error_free (&e);
              return ob_error_make (err, OB_ERR_CONTEXT, st, "cannot read `%s/%s`", o->context_dir, names[i]);
            }
          ob_error_free (&e);
        }
      if (text == NULL)
        return ob_error_make (err, OB_ERR_CONTEXT, 0, "no Dockerfile or Containerfile in `%s` (use -f FILE)",
                              o->context_dir);
    }
  return ob_dockerfile_parse (b->dfname, text, len, &b->df, err);
}

/* ---- --squash ---- */

int
ob_build_squash (struct build *b, struct stage *s, ob_error_t *err)
{
  cleanup_free char *dir = NULL;
  cleanup_close int dfd = -1;
  json_t *hist = json_object_get (s->config, "history");
  json_t *ids = json_object_get (json_object_get (s->config, "rootfs"), "diff_ids");
  size_t n_new = s->n_layers - s->n_base_layers, nonempty = 0, i;
  json_t *h;
  cleanup_free char *created_by = NULL;

  if (n_new <= 1)
    return 0;
  dir = ob_build_scratch_dir (b, "squash", err);
  if (dir == NULL)
    return -1;
  dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", dir);
  /* the new layers, one over the other, as one overlay-style change */
  for (i = s->n_base_layers; i < s->n_layers; i++)
    {
      cleanup_close int fd = -1;
      if (ob_txn_blob_open (b->txn, s->layers[i].digest, &fd, err) < 0 || ob_layer_unpack_overlay (fd, dfd, err) < 0)
        return ob_error_wrap (err, "--squash: layer %s", s->layers[i].digest);
    }
  for (i = s->n_base_layers; i < s->n_layers; i++)
    {
      ob_descriptor_clear (&s->layers[i]);
      free (s->layer_dirs[i]);
      s->layer_dirs[i] = NULL;
    }
  s->n_layers = s->n_base_layers;
  while (json_array_size (ids) > s->n_base_layers)
    json_array_remove (ids, json_array_size (ids) - 1);
  /* the squashed steps keep their history, without layers of their own */
  json_array_foreach (hist, i, h)
    if (!json_is_true (json_object_get (h, "empty_layer")) && ++nonempty > s->n_base_layers)
      json_object_set_new (h, "empty_layer", json_true ());
  created_by = ob_xasprintf ("obuild build --squash (%zu layers)", n_new);
  ob_tree_free (s->tree);
  s->tree = NULL;
  return ob_build_commit_layer (b, s, dfd, NULL, created_by, false, err);
}

/* ---- the final image ---- */

/* The image's `created`: the build's time, except for a stage whose every
 * filesystem step came from the cache.  That one keeps the time of its cached
 * steps (as `docker build` keeps the image of a fully cached build), so a
 * rebuild that changes nothing, here or on a runner sharing the cache, gives
 * the same image; this build's config-only steps get that time too. */
static const char *
stage_created (struct build *b, struct stage *s)
{
  json_t *hist = json_object_get (s->config, "history");
  if (b->o->have_epoch || s->n_misses > 0 || s->hit_created == NULL)
    return b->created;
  for (size_t i = s->n_base_history; i < json_array_size (hist); i++)
    {
      json_t *h = json_array_get (hist, i);
      const char *c = json_string_value (json_object_get (h, "created"));
      if (c && strcmp (c, b->created) == 0)
        json_object_set_new (h, "created", json_string (s->hit_created));
    }
  return s->hit_created;
}

static int
write_image (struct build *b, struct stage *s, struct ob_build_result *res, ob_error_t *err)
{
  json_t *rt = ob_image_config_runtime (s->config);
  cleanup_free char *cfg = NULL;
  cleanup_free char *man = NULL;
  struct ob_descriptor cd, md;
  json_t *annotations = json_object (), *manifest;

  for (size_t i = 0; b->o->labels && b->o->labels[i]; i++)
    {
      const char *eq = strchr (b->o->labels[i], '=');
      cleanup_free char *k = eq ? ob_xstrndup (b->o->labels[i], eq - b->o->labels[i]) : ob_xstrdup (b->o->labels[i]);
      json_t *labels = json_object_get (rt, "Labels");
      if (!json_is_object (labels))
        {
          labels = json_object ();
          json_object_set_new (rt, "Labels", labels);
        }
      json_object_set_new (labels, k, json_string (eq ? eq + 1 : ""));
    }
  for (size_t i = 0; b->o->envs && b->o->envs[i]; i++)
    {
      cleanup_free char *k = ob_xstrndup (b->o->envs[i], strcspn (b->o->envs[i], "="));
      env_set (s, k, b->o->envs[i] + strlen (k) + 1);
    }
  if (b->o->squash && ob_build_squash (b, s, err) < 0)
    {
      json_decref (annotations);
      return -1;
    }
  ob_image_config_set_created (s->config, stage_created (b, s));
  if (ob_image_config_check (s->config, err) < 0)
    {
      json_decref (annotations);
      return -1;
    }
  cfg = ob_json_canonical (s->config);
  cd.media_type = (char *) OB_MT_OCI_CONFIG;
  cd.size = strlen (cfg);
  if (ob_txn_blob_put (b->txn, cfg, strlen (cfg), cd.digest, err) < 0)
    {
      json_decref (annotations);
      return -1;
    }
  if (s->base_name && s->base_digest)
    {
      json_object_set_new (annotations, "org.opencontainers.image.base.name", json_string (s->base_name));
      json_object_set_new (annotations, "org.opencontainers.image.base.digest", json_string (s->base_digest));
    }
  if (b->o->have_epoch)
    json_object_set_new (annotations, "org.opencontainers.image.created", json_string (b->created));
  for (size_t i = 0; b->o->annotations && b->o->annotations[i]; i++)
    {
      cleanup_free char *k = ob_xstrndup (b->o->annotations[i], strcspn (b->o->annotations[i], "="));
      json_object_set_new (annotations, k, json_string (b->o->annotations[i] + strlen (k) + 1));
    }
  manifest = ob_image_manifest_new (&cd, s->layers, s->n_layers, annotations);
  json_decref (annotations);
  man = ob_json_canonical (manifest);
  json_decref (manifest);
  md.media_type = (char *) OB_MT_OCI_MANIFEST;
  md.size = strlen (man);
  if (ob_txn_blob_put (b->txn, man, strlen (man), md.digest, err) < 0)
    return -1;
  strcpy (res->manifest_digest, md.digest);
  res->manifest_size = md.size;
  strcpy (res->config_digest, cd.digest);
  if (ob_txn_commit (b->txn, &md, b->o->tags, err) < 0)
    return -1;

  if (b->o->output_dir)
    {
      struct ob_layout *out = NULL;
      struct ob_txn *t2 = NULL;
      cleanup_free char *parent = NULL;
      int r;
      if (ob_layout_open (b->o->output_dir, true, &out, err) < 0)
        return ob_error_wrap (err, "--output");
      /* stage inside the layout: same filesystem, and writable if it is */
      parent = ob_xstrdup (b->o->output_dir);
      if (ob_txn_begin (out, parent, &t2, err) < 0)
        {
          ob_layout_close (out);
          return ob_error_wrap (err, "--output");
        }
      r = ob_txn_blob_link_from (t2, b->o->store->oci, md.digest, err);
      if (r == 0)
        r = ob_txn_blob_link_from (t2, b->o->store->oci, cd.digest, err);
      for (size_t i = 0; r == 0 && i < s->n_layers; i++)
        r = ob_txn_blob_link_from (t2, b->o->store->oci, s->layers[i].digest, err);
      if (r == 0)
        r = ob_txn_commit (t2, &md, b->o->tags, err);
      ob_txn_free (t2);
      ob_layout_close (out);
      if (r < 0)
        return ob_error_wrap (err, "--output `%s`", b->o->output_dir);
    }
  return 0;
}

/* --build-arg, --label, --env, --annotation values end up in JSON (config,
 * manifest), which has no place for invalid UTF-8: refuse them rather than
 * have them dropped. */
static int
check_opts_utf8 (const struct ob_build_opts *o, ob_error_t *err)
{
  const struct
  {
    const char *flag;
    char **v;
  } lists[] = {
    { "build-arg", o->build_args }, { "label", o->labels }, { "env", o->envs }, { "annotation", o->annotations },
  };
  for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++)
    for (size_t i = 0; lists[k].v && lists[k].v[i]; i++)
      {
        const char *kv = lists[k].v[i];
        size_t klen = strcspn (kv, "=");
        if (ob_dockerfile_is_utf8 (kv, strlen (kv)))
          continue;
        if (!ob_dockerfile_is_utf8 (kv, klen))
          return ob_error_make (err, OB_ERR_USAGE, 0, "--%s: invalid UTF-8 in the name", lists[k].flag);
        return ob_error_make (err, OB_ERR_USAGE, 0, "--%s %.*s: invalid UTF-8 in the value", lists[k].flag,
                              (int) klen, kv);
      }
  return 0;
}

int
ob_build_run (const struct ob_build_opts *o, struct ob_build_result *res, ob_error_t *err)
{
  struct build b;
  size_t target = 0;
  int r = -1;

  memset (&b, 0, sizeof b);
  memset (res, 0, sizeof *res);
  if (check_opts_utf8 (o, err) < 0)
    return -1;
  b.o = o;
  b.lopts.compression = o->compression;
  b.lopts.level = o->compression_level;
  /* the level actually used, so cache keys name it (not "the default") */
  if (b.lopts.level == 0 && b.lopts.compression == OB_COMPRESS_GZIP)
    b.lopts.level = OB_GZIP_DEFAULT_LEVEL;
  b.lopts.clamp_mtime = o->have_epoch;
  b.lopts.mtime_max = o->epoch;
  b.created = ob_image_timestamp (o->have_epoch ? o->epoch : (int64_t) time (NULL));
  b.ctxfd = open (o->context_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (b.ctxfd < 0)
    {
      ob_error_make (err, OB_ERR_CONTEXT, errno, "build context `%s`", o->context_dir);
      free (b.created);
      return -1;
    }
  if (load_dockerfile (&b, err) < 0 || ob_ignore_load (b.ctxfd, &b.ig, err) < 0)
    goto out;
  if (plan (&b, &target, err) < 0)
    goto out;
  if (ob_txn_begin (o->store->oci, o->store->tmp, &b.txn, err) < 0)
    goto out;
  if (ob_cache_open (o->store->root, &b.cache, err) < 0)
    goto out;
  if (o->cache_from && ob_build_cache_import (&b, o->cache_from, err) < 0)
    goto out;
  for (size_t i = 0; i <= target; i++)
    if (b.stages[i].needed && build_stage (&b, &b.stages[i], err) < 0)
      goto out;
  blog (&b, "COMMIT %s", o->tags && o->tags[0] ? o->tags[0] : "");
  if (write_image (&b, &b.stages[target], res, err) < 0)
    goto out;
  for (size_t i = 0; b.warnings && b.warnings[i]; i++)
    ob_strv_add (&res->warnings, b.warnings[i]);
  for (size_t i = 0; o->build_args && o->build_args[i]; i++)
    {
      cleanup_free char *k = ob_xstrndup (o->build_args[i], strcspn (o->build_args[i], "="));
      bool used = is_proxy_arg (k);
      for (size_t j = 0; !used && b.used_args && b.used_args[j]; j++)
        used = strcmp (b.used_args[j], k) == 0;
      if (!used)
        ob_strv_take (&res->warnings, ob_xasprintf ("build argument `%s` was not consumed by any ARG", k));
    }
  b.cur_stage = NULL;
  for (size_t i = 0; o->event && res->warnings && res->warnings[i]; i++)
    ob_build_emit_text (&b, OB_EV_WARNING, res->warnings[i]);
  if (o->cache_to && ob_build_cache_export (&b, o->cache_to, err) < 0)
    goto out;
  if (ob_cache_close (b.cache, true, err) < 0)
    {
      b.cache = NULL;
      goto out;
    }
  b.cache = NULL;
  /* Keep the steps' upper directories as unpacked layers for later builds. */
  for (size_t i = 0; b.adopt_dirs && b.adopt_dirs[i]; i++)
    {
      char *tab = strchr (b.adopt_dirs[i], '\t');
      ob_error_t e = NULL;
      *tab = '\0';
      if (ob_store_layer_adopt (o->store, b.adopt_dirs[i], tab + 1, &e) < 0)
        ob_error_free (&e);
    }
  r = 0;
out:
  if (b.cache)
    {
      ob_error_t e = NULL;
      ob_cache_close (b.cache, false, &e);
      ob_error_free (&e);
    }
  ob_strv_free (b.cache_keys);
  ob_build_container_cleanup (&b);
  ob_txn_free (b.txn);
  ob_strv_free (b.adopt_dirs);
  for (size_t i = 0; i < b.n_image_stages; i++)
    {
      ob_build_stage_clear (b.image_stages[i]);
      free (b.image_stages[i]);
    }
  free (b.image_stages);
  ob_seccomp_free (b.seccomp);
  for (size_t i = 0; i < b.n_stages; i++)
    ob_build_stage_clear (&b.stages[i]);
  free (b.stages);
  for (size_t i = 0; i < b.n_meta; i++)
    {
      free (b.meta_keys[i]);
      free (b.meta_vals[i]);
    }
  free (b.meta_keys);
  free (b.meta_vals);
  json_decref (b.meta_index);
  json_decref (b.meta_set_index);
  ob_strv_free (b.used_args);
  ob_strv_free (b.warnings);
  ob_dockerfile_free (b.df);
  ob_ignore_free (b.ig);
  free (b.dfname);
  free (b.created);
  close (b.ctxfd);
  return r;
}

void
ob_build_result_clear (struct ob_build_result *res)
{
  ob_strv_free (res->warnings);
  res->warnings = NULL;
}
