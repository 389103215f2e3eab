/* libFuzzer harness: the Dockerfile parser and the shell-word processing the
 * build applies to instruction arguments.  Each input is a Dockerfile; it is
 * parsed and then walked the way the build walks it: flags, FROM images, ENV/
 * LABEL/ARG pairs, COPY/ADD/EXPOSE/VOLUME words, USER/WORKDIR values,
 * heredoc markers and ONBUILD triggers go through ob_dockerfile_word(s) with
 * a variable table that ENV and ARG update, as they do in a build (so that
 * values built from other values are exercised too).
 *
 * The harness bounds its own work so that a correct library never trips
 * libFuzzer's limits: stored values are capped, and it stops after a total
 * amount of expanded output or a number of failed expansions (a build stops
 * at its first error anyway). */
#include "config.h"
#include <obuild/dockerfile.h>
#include <obuild/util.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VARS 512
#define MAX_VALUE (1u << 20)        /* a longer expansion is not stored */
#define MAX_TABLE (8u << 20)        /* all stored values together */
#define MAX_OUTPUT (64u << 20)      /* expanded output per input */
#define MAX_FAILURES 16             /* failed expansions per input */

struct var
{
  char *key;
  char *value; /* NULL: declared (ARG x) without a value */
};

struct walk
{
  char escape;
  struct var vars[MAX_VARS];
  size_t n_vars;
  size_t table_bytes;
  size_t output;
  int failures;
};

/* What --build-arg and the predefined platform ARGs give a build. */
static const char *const build_args[][2] = {
  { "a", "A" },
  { "b", "B" },
  { "empty", "" },
  { "sp", "x y" },
  { "path", "/usr/local/bin" },
  { "dollar", "$a ${b}" }, /* a value is never expanded again */
  { "quotes", "'\"\\" },
  { "TARGETPLATFORM", "linux/amd64" },
  { "TARGETARCH", "amd64" },
  { "BUILDPLATFORM", "linux/amd64" },
  { "HTTP_PROXY", "http://proxy:3128" },
};

static const char *
lookup (void *data, const char *name)
{
  struct walk *w = data;
  for (size_t i = w->n_vars; i-- > 0;)
    if (strcmp (w->vars[i].key, name) == 0)
      return w->vars[i].value;
  return NULL;
}

static void
vars_clear (struct walk *w)
{
  for (size_t i = 0; i < w->n_vars; i++)
    {
      free (w->vars[i].key);
      free (w->vars[i].value);
    }
  w->n_vars = 0;
  w->table_bytes = 0;
}

static void
vars_reset (struct walk *w)
{
  vars_clear (w);
  for (size_t i = 0; i < sizeof build_args / sizeof build_args[0]; i++)
    {
      w->vars[w->n_vars].key = ob_xstrdup (build_args[i][0]);
      w->vars[w->n_vars].value = ob_xstrdup (build_args[i][1]);
      w->n_vars++;
    }
}

/* Set (or shadow) a variable; takes key and value.  Silently dropped when
 * the table is full: the harness's bound, not the library's. */
static void
vars_set (struct walk *w, char *key, char *value)
{
  size_t n = strlen (key) + (value ? strlen (value) : 0);
  if (w->n_vars == MAX_VARS || n > MAX_VALUE || w->table_bytes + n > MAX_TABLE)
    {
      free (key);
      free (value);
      return;
    }
  w->vars[w->n_vars].key = key;
  w->vars[w->n_vars].value = value;
  w->n_vars++;
  w->table_bytes += n;
}

static bool
exhausted (const struct walk *w)
{
  return w->output > MAX_OUTPUT || w->failures >= MAX_FAILURES;
}

/* Expand one word; NULL on error (counted). */
static char *
word (struct walk *w, const char *raw)
{
  char *out = NULL;
  ob_error_t err = NULL;
  if (exhausted (w))
    return NULL;
  if (ob_dockerfile_word (raw, w->escape, lookup, w, &out, &err) < 0)
    {
      if (err == NULL || err->msg == NULL)
        abort (); /* a failure must say why */
      ob_error_free (&err);
      w->failures++;
      return NULL;
    }
  w->output += strlen (out);
  return out;
}

static void
words (struct walk *w, const char *raw, bool heredocs)
{
  char **v = NULL;
  ob_error_t err = NULL;
  if (exhausted (w))
    return;
  if (ob_dockerfile_words (raw, w->escape, lookup, w, &v, &err) < 0)
    {
      if (err == NULL || err->msg == NULL)
        abort ();
      ob_error_free (&err);
      w->failures++;
      return;
    }
  for (size_t i = 0; v[i]; i++)
    {
      w->output += strlen (v[i]);
      if (heredocs)
        {
          char *name = NULL;
          bool expand, chomp;
          if (ob_dockerfile_heredoc_word (v[i], &name, &expand, &chomp) && name == NULL)
            abort (); /* a marker always has a delimiter */
          free (name);
        }
    }
  ob_strv_free (v);
}

static void walk_instr (struct walk *w, const struct ob_instr *in, int depth);

static void
walk_onbuild (struct walk *w, const struct ob_instr *in, int depth)
{
  struct ob_instr *trig = NULL;
  ob_error_t err = NULL;
  /* the build stores the trigger text and parses it again in the child */
  if (in->onbuild_text == NULL)
    return;
  if (ob_dockerfile_parse_instr ("Dockerfile", in->line, in->onbuild_text, w->escape, &trig, &err)
      < 0)
    {
      ob_error_free (&err);
      return;
    }
  walk_instr (w, trig, depth + 1);
  ob_instr_free (trig);
}

static void
walk_instr (struct walk *w, const struct ob_instr *in, int depth)
{
  const char *kind = ob_instr_kind_name (in->kind);
  bool expands = ob_instr_expands (in->kind);

  if (kind == NULL || in->args == NULL || in->args[in->n_args] != NULL)
    abort ();
  for (size_t i = 0; i < in->n_flags; i++)
    {
      if (in->flags[i].name == NULL || ob_instr_flag (in, in->flags[i].name) == NULL)
        abort ();
      if (in->flags[i].value)
        free (word (w, in->flags[i].value));
    }
  for (size_t i = 0; i < in->n_heredocs; i++)
    if (in->heredocs[i].expand && in->heredocs[i].content)
      free (word (w, in->heredocs[i].content));

  switch (in->kind)
    {
    case OB_I_FROM:
      free (word (w, in->from_image ? in->from_image : ""));
      vars_reset (w); /* a new stage: only the build args */
      return;
    case OB_I_ENV:
    case OB_I_ARG:
    case OB_I_LABEL:
      for (size_t i = 0; i < in->n_kvs; i++)
        {
          char *k = word (w, in->kvs[i].key);
          char *v = in->kvs[i].value ? word (w, in->kvs[i].value) : NULL;
          if (k && (v || in->kvs[i].value == NULL) && in->kind != OB_I_LABEL)
            vars_set (w, k, v);
          else
            {
              free (k);
              free (v);
            }
        }
      return;
    case OB_I_ONBUILD:
      if (depth == 0 && in->onbuild)
        walk_onbuild (w, in, depth);
      return;
    default:
      break;
    }
  if (in->json)
    {
      for (size_t i = 0; i < in->n_args; i++)
        if (expands)
          free (word (w, in->args[i]));
      return;
    }
  if (in->rest == NULL)
    return;
  switch (in->kind)
    {
    case OB_I_USER:
    case OB_I_WORKDIR:
    case OB_I_STOPSIGNAL:
    case OB_I_MAINTAINER:
      free (word (w, in->rest));
      break;
    default:
      /* COPY/ADD/EXPOSE/VOLUME as the build does; RUN and the others are
       * not expanded by the build, but the lexer must take any text */
      words (w, in->rest, in->kind == OB_I_COPY || in->kind == OB_I_ADD || in->kind == OB_I_RUN);
      break;
    }
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct ob_dockerfile *df = NULL;
  ob_error_t err = NULL;
  struct walk w = { 0 };

  /* exactly `size` bytes, no terminator: the API takes a length */
  if (ob_dockerfile_parse ("Dockerfile", (const char *) data, size, &df, &err) < 0)
    {
      if (err == NULL || err->kind != OB_ERR_DOCKERFILE || err->msg == NULL
          || strncmp (err->msg, "Dockerfile:", 11) != 0)
        abort (); /* errors are OB_ERR_DOCKERFILE naming the file */
      ob_error_free (&err);
      return 0;
    }
  if (df->escape != '\\' && df->escape != '`')
    abort ();
  w.escape = df->escape;
  vars_reset (&w);
  for (size_t i = 0; i < df->n_instrs && !exhausted (&w); i++)
    walk_instr (&w, &df->instrs[i], 0);
  vars_clear (&w);
  ob_dockerfile_free (df);
  return 0;
}
