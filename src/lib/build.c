/* build: the scheduler — reads the Dockerfile, plans which stages the
 * target needs, runs their instructions through the step executors
 * (build_meta.c, build_copy.c, build_run.c) in order, and writes the
 * image (build_image.c).  Arrows point down: the executors and the shared
 * state beneath them (build_state.c, build_cache.c) never call back up. */
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

static int
run_instr (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  switch (in->kind)
    {
    case OB_I_FROM:
      return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "FROM is not allowed here");
    case OB_I_ENV:
    case OB_I_LABEL:
      return ob_build_kv (b, s, in, err);
    case OB_I_ARG:
      return ob_build_arg (b, s, in, err);
    case OB_I_HEALTHCHECK:
      return ob_build_healthcheck (b, s, in, err);
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
      return ob_build_meta (b, s, in, err);
    }
  return ob_build_instr_error (b, in, err, OB_ERR_GENERIC, "unhandled instruction");
}

/* ---- planning ---- */

/* s needs stage idx (always an earlier one): recorded for the scheduler
 * (--jobs), and idx is needed too. */
static void mark_needed (struct build *b, size_t idx);
static void
add_dep (struct build *b, struct stage *s, size_t idx)
{
  for (size_t i = 0; i < s->n_deps; i++)
    if (s->deps[i] == idx)
      return;
  s->deps = ob_xrealloc (s->deps, (s->n_deps + 1) * sizeof *s->deps);
  s->deps[s->n_deps++] = idx;
  mark_needed (b, idx);
}

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
                add_dep (b, s, d->index);
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
        add_dep (b, s, dep->index);
    }
}

static int
plan (struct build *b, size_t *target, ob_error_t *err)
{
  struct ob_dockerfile *df = b->df;
  size_t i = 0;
  ob_build_predefine_platform_args (b);
  /* ARGs before the first FROM */
  for (; i < df->n_instrs && df->instrs[i].kind != OB_I_FROM; i++)
    {
      const struct ob_instr *in = &df->instrs[i];
      if (in->kind != OB_I_ARG)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "%s before the first FROM (only ARG may come before it)",
                                     ob_instr_kind_name (in->kind));
      for (size_t k = 0; k < in->n_kvs; k++)
        if (ob_build_declare_arg (b, NULL, in, &in->kvs[k], err) < 0)
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
          if ((b->n_stages & (b->n_stages + 1)) == 0) /* 0, 1, 3, 7, ...: double */
            b->stages = ob_xrealloc (b->stages, (2 * b->n_stages + 1) * sizeof *b->stages);
          s = &b->stages[b->n_stages];
          memset (s, 0, sizeof *s);
          s->index = b->n_stages++;
          s->first = i;
          s->name = in->from_stage ? ob_xstrdup (in->from_stage) : NULL;
        }
      b->stages[b->n_stages - 1].end = i + 1;
    }
  ob_build_index_stages (b);
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

/* FROM, then the base image's ONBUILD triggers, which are consumed. */
static int
from_step (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  json_t *onbuild, *t;
  size_t i;
  int r = 0;
  if (ob_build_from (b, s, in, err) < 0)
    return -1;
  onbuild = ob_build_take_onbuild (s);
  json_array_foreach (onbuild, i, t)
    {
      struct ob_instr *trig = NULL;
      if (ob_dockerfile_parse_instr (b->dfname, in->line, json_string_value (t), b->df->escape, &trig, err) < 0)
        {
          r = ob_error_wrap (err, "ONBUILD trigger of the base image");
          break;
        }
      ob_build_log (b, "  ONBUILD %s", json_string_value (t));
      r = run_instr (b, s, trig, err);
      ob_instr_free (trig);
      if (r < 0)
        break;
    }
  json_decref (onbuild);
  return r;
}

int
ob_build_build_stage (struct build *b, struct stage *s, ob_error_t *err)
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
        ob_build_log (b, "STEP %zu/%zu: %s", b->step, b->total_steps, in->original);
      if (in->kind != OB_I_FROM && ob_build_account (b, s, in, strlen (in->original), err) < 0)
        r = -1;
      else
        r = in->kind == OB_I_FROM ? from_step (b, s, in, err) : run_instr (b, s, in, err);
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
          /* a symlink is followed inside the context only, as for
           * .dockerignore (followed on the host, a file outside the context
           * was read, and its first word quoted in the parse error) */
          cleanup_free char *real = NULL;
          ob_error_t e = NULL;
          if (ob_context_real_path_in_root (b->ctxfd, names[i], &real, &e) < 0)
            {
              if (e->status == 0) /* not found */
                e->status = ENOENT;
            }
          else if (ob_read_file_at (b->ctxfd, real, &text, &len, &e) == 0)
            b->dfname = ob_xstrdup (names[i]);
          if (text == NULL && e->status != ENOENT)
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

/* SOURCE_DATE_EPOCH given as a build argument or as the default of a global
 * ARG: as BuildKit (getBuildArgValue), the build's epoch when neither
 * --source-date-epoch nor the environment set one.  BuildKit also takes a
 * stage's or the context's time (a non-number); obuild does not. */
static int
dockerfile_epoch (struct build *b, struct ob_build_opts *o2, ob_error_t *err)
{
  static const char key[] = "SOURCE_DATE_EPOCH";
  bool found;
  const char *v = ob_build_arg_value (b, key, &found);
  char *end;
  long long n;
  int line = 0;
  if (found)
    ob_build_arg_mark_used (b, key);
  else
    {
      long i = ob_build_index_get (b->meta_index, key);
      v = i >= 0 ? b->meta_vals[i] : NULL;
      for (size_t k = 0; k < b->df->n_instrs && b->df->instrs[k].kind != OB_I_FROM; k++)
        for (size_t j = 0; b->df->instrs[k].kind == OB_I_ARG && j < b->df->instrs[k].n_kvs; j++)
          if (strcmp (b->df->instrs[k].kvs[j].key, key) == 0)
            line = b->df->instrs[k].line;
    }
  if (v == NULL || *v == '\0')
    return 0;
  errno = 0;
  n = strtoll (v, &end, 10);
  if (*end || errno || n < 0 || !(isdigit ((unsigned char) *v) || *v == '+'))
    {
      bool named = strcmp (v, "context") == 0;
      for (size_t i = 0; i < b->n_stages && !named; i++)
        named = b->stages[i].name && strcasecmp (b->stages[i].name, v) == 0;
      if (named)
        return line > 0 ? ob_error_make (err, OB_ERR_DOCKERFILE, 0,
                                         "%s:%d: SOURCE_DATE_EPOCH=%s: the time of a stage or of the context is not supported",
                                         b->dfname, line, v)
                        : ob_error_make (err, OB_ERR_USAGE, 0,
                                         "--build-arg SOURCE_DATE_EPOCH=%s: the time of a stage or of the context is not supported", v);
      return line > 0 ? ob_error_make (err, OB_ERR_DOCKERFILE, 0, "%s:%d: invalid SOURCE_DATE_EPOCH: %s", b->dfname, line, v)
                      : ob_error_make (err, OB_ERR_USAGE, 0, "--build-arg SOURCE_DATE_EPOCH: invalid SOURCE_DATE_EPOCH: %s", v);
    }
  o2->have_epoch = true;
  o2->epoch = n;
  b->o = o2;
  b->lopts.clamp_mtime = true;
  b->lopts.mtime_max = n;
  free (b->created);
  b->created = ob_image_timestamp (n);
  return 0;
}

int
ob_build_run (const struct ob_build_opts *o, struct ob_build_result *res, ob_error_t *err)
{
  struct ob_build_opts o2 = *o; /* with the Dockerfile's SOURCE_DATE_EPOCH */
  struct build b;
  size_t target = 0;
  int r = -1;

  memset (&b, 0, sizeof b);
  memset (res, 0, sizeof *res);
  if (check_opts_utf8 (o, err) < 0)
    return -1;
  b.o = o;
  b.lopts.compression = o->compression;
  b.lopts.level = o->compression_level; /* cache keys name the compressor: ob_layer_opts_describe */
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
  if (plan (&b, &target, err) < 0 || (!o->have_epoch && dockerfile_epoch (&b, &o2, err) < 0))
    goto out;
  if (ob_txn_begin (o->store->oci, o->store->tmp, &b.txn, err) < 0)
    goto out;
  if (ob_cache_open (o->store->root, &b.cache, err) < 0)
    goto out;
  if (o->cache_from && ob_build_cache_import (&b, o->cache_from, err) < 0)
    goto out;
  if (ob_build_jobs_prebuild (&b, target, err) < 0)
    goto out;
  for (size_t i = 0; i <= target; i++)
    {
      /* a stage a child process built: every step is in the cache */
      b.quiet = b.stages[i].prebuilt;
      if (b.stages[i].needed && ob_build_build_stage (&b, &b.stages[i], err) < 0)
        goto out;
    }
  b.quiet = false;
  ob_build_log (&b, "COMMIT %s", o->tags && o->tags[0] ? o->tags[0] : "");
  if (ob_build_write_image (&b, &b.stages[target], res, err) < 0)
    goto out;
  /* the Dockerfile's warnings, then the unused build arguments' */
  char **warnings = steal_pointer (&b.warnings);
  size_t n_warnings = b.n_warnings;
  for (size_t i = 0; o->build_args && o->build_args[i]; i++)
    {
      cleanup_free char *k = ob_xstrndup (o->build_args[i], strcspn (o->build_args[i], "="));
      bool used = ob_build_is_proxy_arg (k);
      for (size_t j = 0; !used && b.used_args && b.used_args[j]; j++)
        used = strcmp (b.used_args[j], k) == 0;
      if (!used)
        ob_strv_push (&warnings, &n_warnings, ob_xasprintf ("build argument `%s` was not consumed by any ARG", k));
    }
  if (warnings)
    ob_strv_take_all (&res->warnings, warnings);
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
  /* Keep the steps' upper directories as unpacked layers for later builds
   * (COPY --from may have mounted some as lowers: unmounted first). */
  ob_build_stage_unmount_all (&b);
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
  ob_build_stage_unmount_all (&b);
  free (b.dep_closure);
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
  free (b.stage_names);
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
