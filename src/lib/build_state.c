/* build: the state the step executors share, beneath them — variables
 * (ARG, ENV) and word expansion, the stage's config, layers and tree, the
 * layer commit, the build cache's keys and entries, directories a step
 * must create.  Nothing here calls up into a step executor or into the
 * scheduler (build.c). */
#include "config.h"
#include "build_priv.h"
#include <obuild/rootfs.h>
#include <sys/mount.h>
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

void
ob_build_log (struct build *b, const char *fmt, ...)
{
  va_list ap;
  char *line;
  if ((b->o->log == NULL && b->o->event == NULL) || b->quiet)
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

const char *
ob_build_arg_value (struct build *b, const char *name, bool *found)
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

void
ob_build_arg_mark_used (struct build *b, const char *name)
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
 * describes (a new config) or changed size behind ob_build_env_set()'s back. */
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

void
ob_build_env_forget (struct stage *s)
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
  ob_build_env_forget (s);
  index = stage_env_index (s);
  pos = json_object_get (index, key);
  return pos ? (long) json_integer_value (pos) : -1;
}

const char *
ob_build_env_lookup (struct stage *s, const char *key)
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
void
ob_build_index_put (json_t **index, const char *name, size_t i)
{
  if (*index == NULL)
    *index = json_object ();
  json_object_set_new_nocheck (*index, name, json_integer ((json_int_t) i));
}

long
ob_build_index_get (json_t *index, const char *name)
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
      const char *v = ob_build_env_lookup (l->s, name);
      long i;
      if (v)
        return v;
      i = ob_build_index_get (l->s->arg_index, name);
      return i >= 0 ? l->s->arg_vals[i] : NULL;
    }
  {
    long i = ob_build_index_get (l->b->meta_index, name);
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
int
ob_build_words (struct build *b, struct stage *s, const struct ob_instr *in, bool split, char ***out,
             ob_error_t *err)
{
  struct lookup l = { b, s };
  if (in->json)
    {
      char **r = ob_xmalloc0 (sizeof (char *));
      size_t n = 0;
      for (size_t i = 0; i < in->n_args; i++)
        {
          char *w;
          if (ob_dockerfile_word (in->args[i], b->df->escape, ob_build_lookup, &l, &w, err) < 0)
            {
              ob_strv_free (r);
              return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
            }
          ob_strv_push (&r, &n, w);
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

void
ob_build_env_set (struct stage *s, const char *key, const char *value)
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

void
ob_build_history (struct build *b, struct stage *s, const char *created_by, bool empty)
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
char *
ob_build_clean_abs (const char *p)
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

struct stage_name
{
  const char *name; /* the stage's (lower-case) name */
  size_t index;
};

static int
cmp_stage_name (const void *a, const void *b)
{
  const struct stage_name *x = a, *y = b;
  int c = strcmp (x->name, y->name);
  return c ? c : (x->index > y->index) - (x->index < y->index);
}

void
ob_build_warn (struct build *b, char *msg)
{
  ob_strv_push (&b->warnings, &b->n_warnings, msg);
}

void
ob_build_index_stages (struct build *b)
{
  bool *dup;
  free (b->stage_names);
  b->stage_names = ob_xmalloc0 ((b->n_stages + 1) * sizeof *b->stage_names);
  b->n_stage_names = 0;
  for (size_t i = 0; i < b->n_stages; i++)
    if (b->stages[i].name)
      b->stage_names[b->n_stage_names++] = (struct stage_name){ b->stages[i].name, i };
  qsort (b->stage_names, b->n_stage_names, sizeof *b->stage_names, cmp_stage_name);
  /* BuildKit's lint rule DuplicateStageName: a warning at each repeat, in
   * the Dockerfile's order; the name then means the latest such stage */
  dup = ob_xmalloc0 ((b->n_stages + 1) * sizeof *dup);
  for (size_t k = 1; k < b->n_stage_names; k++)
    if (strcmp (b->stage_names[k].name, b->stage_names[k - 1].name) == 0)
      dup[b->stage_names[k].index] = true;
  for (size_t i = 0; i < b->n_stages; i++)
    if (dup[i])
      ob_build_warn (b, ob_xasprintf ("%s:%d: Duplicate stage name \"%s\", stage names should be unique",
                                      b->dfname, b->df->instrs[b->stages[i].first].line, b->stages[i].name));
  free (dup);
}

struct stage *
ob_build_find_stage (struct build *b, const char *name, size_t before)
{
  char *end;
  long idx;
  size_t lo = 0, hi = b->n_stage_names;
  cleanup_free char *lower = ob_xstrdup (name);
  for (char *p = lower; *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char) (*p - 'A' + 'a');
  /* the latest stage of that name before `before`: names may repeat (a
   * warning), and BuildKit's name map then holds the last one declared.
   * The first entry not below (lower, before), then the one before it. */
  while (lo < hi)
    {
      size_t mid = lo + (hi - lo) / 2;
      const struct stage_name *e = &b->stage_names[mid];
      int c = strcmp (e->name, lower);
      if (c < 0 || (c == 0 && e->index < before))
        lo = mid + 1;
      else
        hi = mid;
    }
  if (lo > 0 && strcmp (b->stage_names[lo - 1].name, lower) == 0)
    return &b->stages[b->stage_names[lo - 1].index];
  idx = strtol (name, &end, 10);
  if (*name && *end == '\0' && idx >= 0 && (size_t) idx < before && (size_t) idx < b->n_stages)
    return &b->stages[idx];
  return NULL;
}

void
ob_build_stage_clear (struct stage *s)
{
  free (s->name);
  free (s->deps);
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
  ob_build_stage_tree_drop (s);
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

void
ob_build_stage_add_layer (struct stage *s, const struct ob_descriptor *d)
{
  s->layers = ob_xrealloc (s->layers, (s->n_layers + 1) * sizeof *s->layers);
  s->layer_dirs = ob_xrealloc (s->layer_dirs, (s->n_layers + 1) * sizeof *s->layer_dirs);
  s->layers[s->n_layers] = *d;
  s->layers[s->n_layers].media_type = ob_xstrdup (d->media_type);
  s->layer_dirs[s->n_layers] = NULL;
  s->n_layers++;
}

void
ob_build_stage_tree_drop (struct stage *s)
{
  ob_tree_free (s->tree);
  s->tree = NULL;
  for (size_t i = 0; i < s->n_tree_pending; i++)
    ob_tree_index_free (s->tree_pending[i]);
  free (s->tree_pending);
  s->tree_pending = NULL;
  s->n_tree_pending = 0;
}

int
ob_build_stage_tree (struct build *b, struct stage *s, ob_error_t *err)
{
  if (s->tree)
    {
      for (size_t i = 0; i < s->n_tree_pending; i++)
        {
          ob_tree_add_index (s->tree, s->tree_pending[i]);
          ob_tree_index_free (s->tree_pending[i]);
        }
      free (s->tree_pending);
      s->tree_pending = NULL;
      s->n_tree_pending = 0;
      return 0;
    }
  ob_build_stage_tree_drop (s);
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
  /* the process id too: stages built side by side share the scratch area */
  char *p = ob_xasprintf ("%s/%s-%d-%u", ob_txn_scratch (b->txn), what, (int) getpid (), ++b->scratch_counter);
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

static void add_layer (struct build *b, struct stage *s, const struct ob_layer_result *r,
                       struct ob_tree_index *ix, const char *upper_path, const char *created_by);
static int layer_written (struct build *b, struct stage *s, int fd, const struct ob_layer_result *res,
                          struct ob_tree_index *ix, const char *upper_path, const char *created_by, ob_error_t *err);

int
ob_build_commit_changes (struct build *b, struct stage *s, int upperfd, const struct ob_changes *changes,
                         const char *upper_path, const char *created_by, bool drop_empty, ob_error_t *err)
{
  struct ob_layer_opts o = b->lopts;
  struct ob_tree_index *ix;
  struct ob_layer_result res;
  int fd, r;

  if (drop_empty && changes->n == 0)
    {
      ob_build_history (b, s, created_by, true);
      return 0;
    }
  if (ob_txn_blob_create (b->txn, &fd, err) < 0)
    return -1;
  memset (&res, 0, sizeof res);
  o.on_entry = ob_tree_index_note;
  o.on_entry_data = ix = ob_tree_index_new ();
  o.precomp = b->precomp;
  r = ob_layer_write (upperfd, changes, fd, &o, &res, err);
  if (r < 0)
    {
      ob_tree_index_free (ix);
      close (fd);
      return -1;
    }
  return layer_written (b, s, fd, &res, ix, upper_path, created_by, err);
}

/* The blob fd of a layer just written: committed, its tree index saved
 * (a later COPY reads it instead of the layer), the layer added to s. */
static int
layer_written (struct build *b, struct stage *s, int fd, const struct ob_layer_result *res, struct ob_tree_index *ix,
               const char *upper_path, const char *created_by, ob_error_t *err)
{
  cleanup_free char *trees = ob_xasprintf ("%s/trees", b->o->store->root);
  ob_tree_index_save (ix, trees, res->diff_id);
  if (ob_txn_blob_commit (b->txn, fd, res->digest, err) < 0)
    {
      ob_tree_index_free (ix);
      return -1;
    }
  add_layer (b, s, res, ix, upper_path, created_by);
  return 0;
}

int
ob_build_commit_sources (struct build *b, struct stage *s, int srcfd, const struct ob_layer_src *entries,
                         size_t n, const char *created_by, ob_error_t *err)
{
  struct ob_layer_opts o = b->lopts;
  struct ob_tree_index *ix;
  struct ob_layer_result res;
  int fd;

  if (ob_txn_blob_create (b->txn, &fd, err) < 0)
    return -1;
  memset (&res, 0, sizeof res);
  o.on_entry = ob_tree_index_note;
  o.on_entry_data = ix = ob_tree_index_new ();
  if (ob_layer_write_sources (srcfd, entries, n, fd, &o, &res, err) < 0)
    {
      ob_tree_index_free (ix);
      close (fd);
      return -1;
    }
  /* no unpacked form: extracted from the blob if a later step needs it */
  return layer_written (b, s, fd, &res, ix, NULL, created_by, err);
}

static void
add_layer (struct build *b, struct stage *s, const struct ob_layer_result *r, struct ob_tree_index *ix,
           const char *upper_path, const char *created_by)
{
  const struct ob_layer_result res = *r;
  struct ob_descriptor d;

  d.media_type = (char *) res.media_type;
  strcpy (d.digest, res.digest);
  d.size = res.size;
  ob_build_stage_add_layer (s, &d);
  s->last_precompressed = res.precompressed;
  if (upper_path)
    {
      s->layer_dirs[s->n_layers - 1] = ob_xstrdup (upper_path);
      ob_strv_take (&b->adopt_dirs, ob_xasprintf ("%s\t%s", res.diff_id, upper_path));
    }
  ob_image_config_add_diff_id (s->config, res.diff_id);
  ob_build_history (b, s, created_by, false);
  /* a tree already built takes the new layer's entries (ix, taken) when a
   * later step needs it; else it is built from the layers' indexes then */
  if (s->tree && ix)
    {
      s->tree_pending = ob_xrealloc (s->tree_pending, (s->n_tree_pending + 1) * sizeof *s->tree_pending);
      s->tree_pending[s->n_tree_pending++] = ix;
    }
  else
    {
      ob_tree_index_free (ix);
      ob_build_stage_tree_drop (s);
    }
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
  char comp[64];
  ob_build_cache_add (h, "obuild-cache-v1");
  ob_build_cache_add (h, s->cache_key);
  ob_build_cache_add (h, kind);
  /* the same change compressed differently is another blob; with
   * SOURCE_DATE_EPOCH its file times are clamped to that time */
  ob_layer_opts_describe (&b->lopts, comp, sizeof comp);
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
  bool session;
  ob_sha256_final (h, key);
  ob_strv_push (&b->cache_keys, &b->n_cache_keys, ob_xstrdup (key));
  /* a step a child process of this build ran (--jobs) counts as run here,
   * --no-cache or not */
  session = b->cache && ob_cache_in_session (b->cache, key);
  if ((cache_disabled (b, s) && !session) || ob_cache_lookup (b->cache, key, b->o->cache_ttl, &e) != 1)
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
      ob_build_stage_add_layer (s, &d);
      ob_image_config_add_diff_id (s->config, e.diff_id);
      /* rebuilt from the layers' indexes if a later step needs it */
      ob_build_stage_tree_drop (s);
    }
  ob_image_config_add_history (s->config, b->o->have_epoch || e.created == NULL ? b->created : e.created,
                               e.created_by, NULL, e.empty);
  strcpy (s->cache_key, key);
  if (session)
    {
      s->n_misses++;
      ob_cache_entry_clear (&e);
      return 1;
    }
  s->n_hits++;
  if (e.created && (s->hit_created == NULL || strcmp (e.created, s->hit_created) > 0))
    {
      free (s->hit_created);
      s->hit_created = ob_xstrdup (e.created);
    }
  s->step_cached = true;
  if (b->o->event == NULL) /* with events: the step's end says it */
    ob_build_log (b, "--> CACHED");
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
  cleanup_free char *path = ob_build_clean_abs (dir);
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

/* ---- images ---- */

/* Load an image (config and layers) into stage s; ref is resolved by the
 * source module: the store, oci:/oci-archive:/docker-archive:, a registry. */
int
ob_build_load_image (struct build *b, struct stage *s, const char *ref, ob_error_t *err)
{
  return ob_build_load_image_platform (b, s, ref, b->o->source.registry.platform, err);
}

/* Will RUN steps of s mount its layers as they are (ob_build_ensure_lowers)? */
static bool
runs_on_unpacked_layers (struct build *b, const struct stage *s)
{
  if (b->o->no_isolation || b->o->container || b->use_copy || b->o->snapshotter == OB_SNAPSHOTTER_COPY)
    return false;
  for (size_t i = s->first; i < s->end && i < b->df->n_instrs; i++)
    if (b->df->instrs[i].kind == OB_I_RUN)
      return true;
  return false;
}

/* ... for platform (FROM --platform, else the build's; NULL: the host's) */
int
ob_build_load_image_platform (struct build *b, struct stage *s, const char *ref, const char *platform, ob_error_t *err)
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
  /* a layer checked against its diff_id is checked while it is unpacked
   * for those RUN steps, not decompressed once more before */
  if (runs_on_unpacked_layers (b, s))
    so.unpack_into = b->o->store;
  if (ob_source_resolve (b->o->store, b->txn, ref, &so, &src, err) < 0)
    {
      if ((*err)->kind == OB_ERR_REGISTRY)
        return ob_error_wrap (err, "image `%s` is not in the local store (%s), and pulling it failed",
                              ref, ob_layout_path (b->o->store->oci));
      return -1;
    }
  if (src.pulled)
    ob_build_log (b, "pulled %s (%s)", src.name, src.manifest.digest);
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
      ob_build_stage_add_layer (s, &m->layers[i]);
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

/* ---- unpacked layers ---- */

/* The upper directory a step of this build left for diff_id, kept to
 * become its unpacked layer when the build succeeds; or NULL.  A stage
 * built by a child (--jobs) is a cache hit in the parent's pass, with no
 * directory of its own: without this, COPY --from it unpacked its layers
 * again, and the child's directory was deleted at the end. */
static const char *
adopted_dir (const struct build *b, const char *diff_id)
{
  size_t n = strlen (diff_id);
  for (size_t i = 0; b->adopt_dirs && b->adopt_dirs[i]; i++)
    if (strncmp (b->adopt_dirs[i], diff_id, n) == 0 && b->adopt_dirs[i][n] == '\t')
      return b->adopt_dirs[i] + n + 1;
  return NULL;
}

int
ob_build_ensure_lowers (struct build *b, struct stage *s, ob_error_t *err)
{
  json_t *ids = json_object_get (json_object_get (s->config, "rootfs"), "diff_ids");
  for (size_t i = 0; i < s->n_layers; i++)
    {
      cleanup_close int fd = -1;
      const char *diff_id = json_string_value (json_array_get (ids, i));
      if (s->layer_dirs[i])
        continue;
      if (diff_id == NULL)
        return ob_error_make (err, OB_ERR_IMAGE, 0, "image config has no diff_id for layer %zu", i);
      if (adopted_dir (b, diff_id))
        {
          s->layer_dirs[i] = ob_xstrdup (adopted_dir (b, diff_id));
          continue;
        }
      if (ob_txn_blob_open (b->txn, s->layers[i].digest, &fd, err) < 0
          || ob_store_layer_dir (b->o->store, diff_id, fd, &s->layer_dirs[i], err) < 0)
        return -1;
    }
  return 0;
}

/* The stage's file system for reading (COPY --from): an overlay of its
 * unpacked layers, as RUN mounts them, instead of extracting every layer
 * again (a Debian base: ~1 s a stage).  Not where RUN could not mount an
 * overlay either (none mode, the copy snapshotter, a container's root);
 * *out stays NULL when it cannot be had, and the caller extracts. */
void
ob_build_stage_mount (struct build *b, struct stage *s, char **out)
{
  cleanup_strv char **lowers = NULL;
  cleanup_free char *dir = NULL;
  cleanup_free char *upper = NULL, *work = NULL, *merged = NULL;
  ob_error_t e = NULL;
  *out = NULL;
  if (s->n_layers == 0 || b->o->no_isolation || b->o->container || b->use_copy
      || b->o->snapshotter == OB_SNAPSHOTTER_COPY)
    return;
  if (ob_build_ensure_lowers (b, s, &e) < 0 || (dir = ob_build_scratch_dir (b, "from", &e)) == NULL)
    {
      ob_error_free (&e);
      return;
    }
  upper = ob_xasprintf ("%s/upper", dir);
  work = ob_xasprintf ("%s/work", dir);
  merged = ob_xasprintf ("%s/merged", dir);
  for (size_t i = 0; i < s->n_layers; i++)
    ob_strv_add (&lowers, s->layer_dirs[i]);
  if (mkdir (upper, 0755) < 0 || mkdir (work, 0700) < 0 || mkdir (merged, 0755) < 0
      || ob_rootfs_mount_overlay (lowers, ob_strv_len (lowers), dir, upper, work, merged, &e) < 0)
    {
      ob_error_free (&e);
      return;
    }
  ob_strv_add (&b->stage_mounts, merged);
  *out = merged;
  merged = NULL;
}

void
ob_build_stage_unmount_all (struct build *b)
{
  for (size_t i = 0; b->stage_mounts && b->stage_mounts[i]; i++)
    umount2 (b->stage_mounts[i], MNT_DETACH);
  ob_strv_free (b->stage_mounts);
  b->stage_mounts = NULL;
}
