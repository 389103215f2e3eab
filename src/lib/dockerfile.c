/* dockerfile: the Dockerfile parser.  The behaviour follows BuildKit's
 * dockerfile frontend (parser/parser.go, parser/line_parsers.go,
 * instructions/parse.go); comments name the BuildKit function a piece
 * mirrors so a difference can be checked against it.  The shell lexer used
 * to expand arguments is in dockerfile_lex.c. */
#include "config.h"
#include <obuild/dockerfile.h>
#include <obuild/util.h>

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static bool
is_ws (int c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static const char *
skip_ws (const char *s)
{
  while (is_ws ((unsigned char) *s))
    s++;
  return s;
}

static void
rtrim (char *s)
{
  size_t n = strlen (s);
  while (n > 0 && is_ws ((unsigned char) s[n - 1]))
    s[--n] = '\0';
}

/* strings.TrimSpace */
static char *
trim_dup (const char *s)
{
  char *r = ob_xstrdup (skip_ws (s));
  rtrim (r);
  return r;
}

static void
ascii_upper (char *s)
{
  for (; *s; s++)
    *s = (char) toupper ((unsigned char) *s);
}

static void
ascii_lower (char *s)
{
  for (; *s; s++)
    *s = (char) tolower ((unsigned char) *s);
}

static void
buf_freep (struct ob_buf *b)
{
  ob_buf_free (b);
}
#define cleanup_buf __attribute__ ((cleanup (buf_freep)))

static void
instr_freep (struct ob_instr **in)
{
  ob_instr_free (*in);
}
#define cleanup_instr __attribute__ ((cleanup (instr_freep)))


/* Split on runs of whitespace (reWhitespace.Split of a trimmed string). */
static char **
split_ws (const char *s)
{
  char **v = ob_xmalloc0 (sizeof (char *));
  size_t n = 0;
  s = skip_ws (s);
  while (*s)
    {
      const char *e = s;
      while (*e && !is_ws ((unsigned char) *e))
        e++;
      ob_strv_push (&v, &n, ob_xstrndup (s, e - s));
      s = skip_ws (e);
    }
  return v;
}

/* Every parse error reads "<name>:<line>: <what>". */
static int df_error (ob_error_t *err, const char *name, int line, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
df_error (ob_error_t *err, const char *name, int line, const char *fmt, ...)
{
  va_list ap;
  cleanup_free char *msg = NULL;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    ob_oom ();
  va_end (ap);
  return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "%s:%d: %s", name, line, msg);
}

bool
ob_dockerfile_is_utf8 (const char *str, size_t n)
{
  const unsigned char *s = (const unsigned char *) str;
  size_t i = 0;
  while (i < n)
    {
      unsigned c = s[i];
      size_t len;
      unsigned cp;
      if (c < 0x80)
        {
          i++;
          continue;
        }
      if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
      else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
      else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
      else
        return false;
      if (n - i < len)
        return false;
      for (size_t k = 1; k < len; k++)
        {
          if ((s[i + k] & 0xc0) != 0x80)
            return false;
          cp = (cp << 6) | (s[i + k] & 0x3f);
        }
      if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
          || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return false;
      i += len;
    }
  return true;
}

/* ------------------------------------------------------------------ */
/* instruction kinds                                                   */

static const struct
{
  const char *name;
  enum ob_instr_kind kind;
} kind_names[] = {
  { "FROM", OB_I_FROM },
  { "RUN", OB_I_RUN },
  { "CMD", OB_I_CMD },
  { "LABEL", OB_I_LABEL },
  { "MAINTAINER", OB_I_MAINTAINER },
  { "EXPOSE", OB_I_EXPOSE },
  { "ENV", OB_I_ENV },
  { "ADD", OB_I_ADD },
  { "COPY", OB_I_COPY },
  { "ENTRYPOINT", OB_I_ENTRYPOINT },
  { "VOLUME", OB_I_VOLUME },
  { "USER", OB_I_USER },
  { "WORKDIR", OB_I_WORKDIR },
  { "ARG", OB_I_ARG },
  { "ONBUILD", OB_I_ONBUILD },
  { "STOPSIGNAL", OB_I_STOPSIGNAL },
  { "HEALTHCHECK", OB_I_HEALTHCHECK },
  { "SHELL", OB_I_SHELL },
};

const char *
ob_instr_kind_name (enum ob_instr_kind kind)
{
  switch (kind)
    {
    case OB_I_FROM:
      return "FROM";
    case OB_I_RUN:
      return "RUN";
    case OB_I_CMD:
      return "CMD";
    case OB_I_LABEL:
      return "LABEL";
    case OB_I_MAINTAINER:
      return "MAINTAINER";
    case OB_I_EXPOSE:
      return "EXPOSE";
    case OB_I_ENV:
      return "ENV";
    case OB_I_ADD:
      return "ADD";
    case OB_I_COPY:
      return "COPY";
    case OB_I_ENTRYPOINT:
      return "ENTRYPOINT";
    case OB_I_VOLUME:
      return "VOLUME";
    case OB_I_USER:
      return "USER";
    case OB_I_WORKDIR:
      return "WORKDIR";
    case OB_I_ARG:
      return "ARG";
    case OB_I_ONBUILD:
      return "ONBUILD";
    case OB_I_STOPSIGNAL:
      return "STOPSIGNAL";
    case OB_I_HEALTHCHECK:
      return "HEALTHCHECK";
    case OB_I_SHELL:
      return "SHELL";
    }
  return "?";
}

static bool
kind_from_word (const char *word, enum ob_instr_kind *kind)
{
  for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
    if (strcasecmp (word, kind_names[i].name) == 0)
      {
        *kind = kind_names[i].kind;
        return true;
      }
  return false;
}

bool
ob_instr_expands (enum ob_instr_kind kind)
{
  switch (kind)
    {
    case OB_I_ADD:
    case OB_I_COPY:
    case OB_I_ENV:
    case OB_I_EXPOSE:
    case OB_I_FROM:
    case OB_I_LABEL:
    case OB_I_STOPSIGNAL:
    case OB_I_USER:
    case OB_I_VOLUME:
    case OB_I_WORKDIR:
    case OB_I_ARG:
      return true;
    case OB_I_RUN:
    case OB_I_CMD:
    case OB_I_MAINTAINER:
    case OB_I_ENTRYPOINT:
    case OB_I_ONBUILD:
    case OB_I_HEALTHCHECK:
    case OB_I_SHELL:
      return false;
    }
  return false;
}

/* ------------------------------------------------------------------ */
/* freeing                                                             */

static void
instr_clear (struct ob_instr *in)
{
  free (in->original);
  for (size_t i = 0; i < in->n_flags; i++)
    {
      free (in->flags[i].name);
      free (in->flags[i].value);
    }
  free (in->flags);
  ob_strv_free (in->args);
  free (in->rest);
  for (size_t i = 0; i < in->n_kvs; i++)
    {
      free (in->kvs[i].key);
      free (in->kvs[i].value);
    }
  free (in->kvs);
  for (size_t i = 0; i < in->n_heredocs; i++)
    {
      free (in->heredocs[i].name);
      free (in->heredocs[i].content);
    }
  free (in->heredocs);
  free (in->from_image);
  free (in->from_stage);
  ob_instr_free (in->onbuild);
  free (in->onbuild_text);
  memset (in, 0, sizeof *in);
}

void
ob_instr_free (struct ob_instr *in)
{
  if (in == NULL)
    return;
  instr_clear (in);
  free (in);
}

void
ob_dockerfile_free (struct ob_dockerfile *df)
{
  if (df == NULL)
    return;
  for (size_t i = 0; i < df->n_instrs; i++)
    instr_clear (&df->instrs[i]);
  free (df->instrs);
  free (df->filename);
  free (df->syntax);
  free (df);
}

const struct ob_flag *
ob_instr_flag (const struct ob_instr *in, const char *name)
{
  const struct ob_flag *found = NULL;
  for (size_t i = 0; i < in->n_flags; i++)
    if (strcmp (in->flags[i].name, name) == 0)
      found = &in->flags[i];
  return found;
}

/* ------------------------------------------------------------------ */
/* raw word splitting of instruction text                              */

/* parseWords: split on unquoted whitespace, keeping quotes and escapes in
 * the words (they are processed later, when the value is expanded). */
static char **
parse_words (const char *rest, char escape)
{
  enum
  {
    IN_SPACES,
    IN_WORD,
    IN_QUOTE
  } phase = IN_SPACES;
  char **words = ob_xmalloc0 (sizeof (char *));
  size_t n_words = 0;
  cleanup_buf struct ob_buf word = { 0 };
  size_t len = strlen (rest);
  bool blank_ok = false;
  char quote = 0;

  for (size_t pos = 0; pos <= len; pos++)
    {
      char ch = pos < len ? rest[pos] : '\0';
      if (phase == IN_SPACES)
        {
          if (pos == len)
            break;
          if (is_ws ((unsigned char) ch))
            continue;
          phase = IN_WORD;
        }
      if (pos == len)
        {
          if (blank_ok || word.len > 0)
            ob_strv_push (&words, &n_words, ob_buf_steal (&word));
          break;
        }
      if (phase == IN_WORD)
        {
          if (is_ws ((unsigned char) ch))
            {
              phase = IN_SPACES;
              if (blank_ok || word.len > 0)
                ob_strv_push (&words, &n_words, ob_buf_steal (&word));
              word.len = 0;
              blank_ok = false;
              continue;
            }
          if (ch == '\'' || ch == '"')
            {
              quote = ch;
              blank_ok = true;
              phase = IN_QUOTE;
            }
          if (ch == escape)
            {
              if (pos + 1 == len)
                continue; /* an escape at the very end is dropped */
              ob_buf_addc (&word, ch);
              ch = rest[++pos];
            }
          ob_buf_addc (&word, ch);
          continue;
        }
      /* IN_QUOTE */
      if (ch == quote)
        phase = IN_WORD;
      if (ch == escape && quote != '\'')
        {
          if (pos + 1 == len)
            {
              phase = IN_WORD;
              continue;
            }
          ob_buf_addc (&word, ch);
          ch = rest[++pos];
        }
      ob_buf_addc (&word, ch);
    }
  return words;
}

/* extractBuilderFlags: leading words starting with "--" (quotes removed,
 * backslash escapes processed, "--" alone ends them).  *rest gets the
 * remaining text, trimmed. */
static void
extract_flags (const char *line, char ***flags, char **rest)
{
  enum
  {
    IN_SPACES,
    IN_WORD,
    IN_QUOTE
  } phase = IN_SPACES;
  cleanup_buf struct ob_buf word = { 0 };
  size_t len = strlen (line);
  bool blank_ok = false;
  char quote = 0;

  size_t n_flags = 0;

  *flags = ob_xmalloc0 (sizeof (char *));
  for (size_t pos = 0; pos <= len; pos++)
    {
      char ch = pos < len ? line[pos] : '\0';
      if (phase == IN_SPACES)
        {
          if (pos == len)
            break;
          if (is_ws ((unsigned char) ch))
            continue;
          if (ch != '-' || pos + 1 == len || line[pos + 1] != '-')
            {
              *rest = trim_dup (line + pos);
              return;
            }
          phase = IN_WORD;
        }
      if (pos == len)
        {
          bool dashdash = word.len == 2 && memcmp (word.data, "--", 2) == 0;
          if (!dashdash && (blank_ok || word.len > 0))
            ob_strv_push (flags, &n_flags, ob_buf_steal (&word));
          break;
        }
      if (phase == IN_WORD)
        {
          if (is_ws ((unsigned char) ch))
            {
              phase = IN_SPACES;
              if (word.len == 2 && memcmp (word.data, "--", 2) == 0)
                {
                  *rest = trim_dup (line + pos);
                  return;
                }
              if (blank_ok || word.len > 0)
                ob_strv_push (flags, &n_flags, ob_buf_steal (&word));
              word.len = 0;
              blank_ok = false;
              continue;
            }
          if (ch == '\'' || ch == '"')
            {
              quote = ch;
              blank_ok = true;
              phase = IN_QUOTE;
              continue;
            }
          if (ch == '\\')
            {
              if (pos + 1 == len)
                continue;
              ch = line[++pos];
            }
          ob_buf_addc (&word, ch);
          continue;
        }
      /* IN_QUOTE */
      if (ch == quote)
        {
          phase = IN_WORD;
          continue;
        }
      if (ch == '\\')
        {
          if (pos + 1 == len)
            {
              phase = IN_WORD;
              continue;
            }
          ch = line[++pos];
        }
      ob_buf_addc (&word, ch);
    }
  *rest = ob_xstrdup ("");
}

/* parseJSON: 1 when rest is a JSON array of strings (decoded into *args),
 * 0 when it is not JSON (shell form), -1 for an array holding non-strings.
 * As current BuildKit (json.Unmarshal), the whole rest must be the array:
 * `CMD ["a"] x` is shell form, not exec form with the tail dropped. */
static int
parse_json (const char *rest, char ***args, size_t *n_args)
{
  json_auto_t *j = NULL;
  json_error_t jerr;
  char **v;
  size_t i, n;
  json_t *e;

  rest = skip_ws (rest);
  if (*rest != '[')
    return 0;
  j = json_loads (rest, 0, &jerr);
  if (j == NULL || !json_is_array (j))
    return 0;
  json_array_foreach (j, i, e)
    if (!json_is_string (e))
      return -1;
  v = ob_xmalloc0 (sizeof (char *));
  n = 0;
  json_array_foreach (j, i, e)
    ob_strv_push (&v, &n, ob_xstrdup (json_string_value (e)));
  ob_strv_free (*args);
  *args = v;
  *n_args = json_array_size (j);
  return 1;
}

/* heredocsFromLine: the heredoc words of the whole instruction line.  The
 * words keep their quotes (so a quoted "<<EOF" is not one); BuildKit always
 * uses the backslash here, whatever the escape directive says. */
static void
heredocs_from_line (const char *line, struct ob_instr *in)
{
  cleanup_strv char **words = parse_words (line, '\\');

  for (size_t i = 0; words[i]; i++)
    {
      struct ob_heredoc hd = { 0 };
      if (!ob_dockerfile_heredoc_word (words[i], &hd.name, &hd.expand, &hd.chomp))
        continue;
      in->heredocs = ob_xrealloc (in->heredocs, (in->n_heredocs + 1) * sizeof (*in->heredocs));
      in->heredocs[in->n_heredocs++] = hd;
    }
}

/* ------------------------------------------------------------------ */
/* instruction flags                                                   */

enum flag_type
{
  FT_STRING,
  FT_BOOL,
  FT_STRINGS, /* may be repeated */
};

struct flag_spec
{
  const char *name;
  enum flag_type type;
};

static const struct flag_spec from_flags[] = { { "platform", FT_STRING }, { NULL, FT_STRING } };
static const struct flag_spec run_flags[] = {
  { "mount", FT_STRINGS },
  { "network", FT_STRING },
  { "security", FT_STRING },
  { "device", FT_STRINGS },
  { NULL, FT_STRING },
};
static const struct flag_spec copy_flags[] = {
  { "from", FT_STRING },  { "chown", FT_STRING },   { "chmod", FT_STRING },
  { "link", FT_BOOL },    { "parents", FT_BOOL },   { "exclude", FT_STRINGS },
  { NULL, FT_STRING },
};
static const struct flag_spec add_flags[] = {
  { "chown", FT_STRING },   { "chmod", FT_STRING },      { "link", FT_BOOL },
  { "checksum", FT_STRING }, { "keep-git-dir", FT_BOOL }, { "exclude", FT_STRINGS },
  { "unpack", FT_BOOL },    { NULL, FT_STRING },
};
static const struct flag_spec healthcheck_flags[] = {
  { "interval", FT_STRING },       { "timeout", FT_STRING }, { "start-period", FT_STRING },
  { "start-interval", FT_STRING }, { "retries", FT_STRING }, { NULL, FT_STRING },
};
static const struct flag_spec no_flags[] = { { NULL, FT_STRING } };

static const struct flag_spec *
flags_for (enum ob_instr_kind kind)
{
  switch (kind)
    {
    case OB_I_FROM:
      return from_flags;
    case OB_I_RUN:
      return run_flags;
    case OB_I_COPY:
      return copy_flags;
    case OB_I_ADD:
      return add_flags;
    case OB_I_HEALTHCHECK:
      return healthcheck_flags;
    case OB_I_CMD:
    case OB_I_LABEL:
    case OB_I_MAINTAINER:
    case OB_I_EXPOSE:
    case OB_I_ENV:
    case OB_I_ENTRYPOINT:
    case OB_I_VOLUME:
    case OB_I_USER:
    case OB_I_WORKDIR:
    case OB_I_ARG:
    case OB_I_ONBUILD:
    case OB_I_STOPSIGNAL:
    case OB_I_SHELL:
      return no_flags;
    }
  return no_flags;
}

/* BFlags.Parse: validate the flag words and store them in in->flags. */
static int
parse_flags (struct ob_instr *in, char **words, const char *name, int line, ob_error_t *err)
{
  const struct flag_spec *specs = flags_for (in->kind);
  const char *kname = ob_instr_kind_name (in->kind);

  for (size_t i = 0; words[i]; i++)
    {
      const char *w = words[i] + 2; /* words start with "--" */
      const char *eq = strchr (w, '=');
      cleanup_free char *fname = eq ? ob_xstrndup (w, eq - w) : ob_xstrdup (w);
      const struct flag_spec *spec = NULL;

      for (size_t k = 0; specs[k].name; k++)
        if (strcmp (specs[k].name, fname) == 0)
          spec = &specs[k];
      if (spec == NULL)
        return df_error (err, name, line, "unknown flag --%s for %s", fname, kname);
      if (spec->type != FT_STRINGS && ob_instr_flag (in, fname) != NULL)
        return df_error (err, name, line, "duplicate flag specified: --%s", fname);
      if (spec->type == FT_BOOL)
        {
          if (eq && eq[1] == '\0')
            return df_error (err, name, line, "missing a value on flag --%s", fname);
          if (eq && strcasecmp (eq + 1, "true") != 0 && strcasecmp (eq + 1, "false") != 0)
            return df_error (err, name, line, "expecting boolean value for flag --%s, not: %s",
                             fname, eq + 1);
        }
      else if (eq == NULL)
        return df_error (err, name, line, "missing a value on flag --%s", fname);

      in->flags = ob_xrealloc (in->flags, (in->n_flags + 1) * sizeof (*in->flags));
      in->flags[in->n_flags].name = steal_pointer (&fname);
      in->flags[in->n_flags].value = eq ? ob_xstrdup (eq + 1) : NULL;
      in->n_flags++;
    }
  return 0;
}

/* ------------------------------------------------------------------ */
/* one instruction                                                     */

struct pctx
{
  const char *name;
  char escape;
  ob_error_t *err;
};

/* RUN flags checked when parsing, as BuildKit's pre-hooks do: a mount's
 * from= takes no variables; --security=sandbox is the default (a no-op),
 * insecure is not available; --device is not supported. */
static int
check_run_flags (const struct pctx *c, const struct ob_instr *in, int line)
{
  size_t n_mounts = 0;
  for (size_t i = 0; i < in->n_flags; i++)
    {
      const struct ob_flag *f = &in->flags[i];
      if (strcmp (f->name, "mount") == 0 && ++n_mounts > OB_DOCKERFILE_MAX_MOUNTS)
        return df_error (c->err, c->name, line, "RUN has more than %d --mount options", OB_DOCKERFILE_MAX_MOUNTS);
      if (strcmp (f->name, "device") == 0)
        return df_error (c->err, c->name, line, "RUN --device is not supported");
      if (strcmp (f->name, "security") == 0 && f->value)
        {
          if (strcmp (f->value, "insecure") == 0)
            return df_error (c->err, c->name, line,
                             "RUN --security=insecure is not supported: every step runs in the sandbox");
          if (strcmp (f->value, "sandbox") != 0)
            return df_error (c->err, c->name, line, "security \"%s\" is not valid", f->value);
        }
      if (strcmp (f->name, "mount") == 0 && f->value)
        {
          /* its fields, comma-separated; from= with a "$" before the end
           * is refused (BuildKit: the stage must be named literally) */
          const char *p = f->value;
          while (*p)
            {
              size_t n = strcspn (p, ",");
              const char *eq = memchr (p, '=', n);
              if (eq && eq - p == 4 && strncasecmp (p, "from", 4) == 0)
                {
                  const char *d = memchr (eq + 1, '$', n - (size_t) (eq + 1 - p));
                  if (d && d != p + n - 1)
                    return df_error (c->err, c->name, line,
                                     "'from' doesn't support variable expansion, define alias stage instead");
                }
              p += n;
              if (*p == ',')
                p++;
            }
        }
    }
  return 0;
}

static const char *
no_variables (void *data, const char *name)
{
  (void) name;
  (void) data;
  return NULL;
}

/* COPY --from takes no variables (BuildKit's toCommand: the word processed
 * with no variables set must be the word itself, so `$V`, quotes and
 * escapes are refused; a stage defined with FROM is the workaround). */
static int
check_copy_from (const struct pctx *c, const struct ob_instr *in, int line)
{
  const struct ob_flag *f = ob_instr_flag (in, "from");
  cleanup_free char *w = NULL;
  ob_error_t e = NULL;
  if (in->kind != OB_I_COPY || f == NULL || f->value == NULL)
    return 0;
  if (ob_dockerfile_word (f->value, c->escape, no_variables, NULL, &w, &e) < 0)
    {
      int r = df_error (c->err, c->name, line, "%s", e->msg);
      ob_error_free (&e);
      return r;
    }
  if (strcmp (w, f->value) != 0)
    return df_error (c->err, c->name, line,
                     "variable expansion is not supported for --from, define a new stage with FROM "
                     "using ARG from global scope as a workaround");
  return 0;
}


static void
add_kv (struct ob_instr *in, char *key, char *value)
{
  in->kvs = ob_xrealloc (in->kvs, (in->n_kvs + 1) * sizeof (*in->kvs));
  in->kvs[in->n_kvs].key = key;
  in->kvs[in->n_kvs].value = value;
  in->n_kvs++;
}

static void
set_shell_args (struct ob_instr *in, const char *text)
{
  ob_strv_free (in->args);
  in->args = ob_xmalloc0 (sizeof (char *));
  in->n_args = 0;
  if (*text)
    {
      ob_strv_add (&in->args, text);
      in->n_args = 1;
    }
}

/* parseMaybeJSON: exec form if text is a JSON array of strings, else the
 * whole text is one shell command line. */
static int
maybe_json (const struct pctx *c, struct ob_instr *in, const char *text, int line)
{
  int r;
  if (*text == '\0')
    {
      set_shell_args (in, text);
      return 0;
    }
  r = parse_json (text, &in->args, &in->n_args);
  if (r < 0)
    return df_error (c->err, c->name, line,
                     "when using JSON array syntax, arrays must be comprised of strings only");
  if (r > 0)
    in->json = true;
  else
    set_shell_args (in, text);
  return 0;
}

/* parseMaybeJSONToList: JSON array, or whitespace-separated words (counted
 * here; the build splits rest itself with ob_dockerfile_words). */
static int
maybe_json_list (const struct pctx *c, struct ob_instr *in, int line, size_t *count,
                 char **last)
{
  int r = parse_json (in->rest, &in->args, &in->n_args);
  cleanup_strv char **words = NULL;

  if (r < 0)
    return df_error (c->err, c->name, line,
                     "when using JSON array syntax, arrays must be comprised of strings only");
  if (r > 0)
    {
      in->json = true;
      *count = in->n_args;
      *last = in->n_args ? ob_xstrdup (in->args[in->n_args - 1]) : NULL;
      return 0;
    }
  words = split_ws (in->rest);
  *count = ob_strv_len (words);
  *last = *count ? ob_xstrdup (words[*count - 1]) : NULL;
  return 0;
}

/* parseNameVal (ENV, LABEL): "k=v k2=v2" or the legacy "k value". */
static int
name_val (const struct pctx *c, struct ob_instr *in, int line)
{
  const char *kname = ob_instr_kind_name (in->kind);
  cleanup_strv char **words = parse_words (in->rest, c->escape);

  if (words[0] == NULL)
    return df_error (c->err, c->name, line, "%s requires at least one argument", kname);
  if (strchr (words[0], '=') == NULL)
    {
      const char *s = in->rest, *e = s;
      while (*e && !is_ws ((unsigned char) *e))
        e++;
      if (*skip_ws (e) == '\0')
        return df_error (c->err, c->name, line, "%s must have two arguments", kname);
      add_kv (in, ob_xstrndup (s, e - s), ob_xstrdup (skip_ws (e)));
      return 0;
    }
  for (size_t i = 0; words[i]; i++)
    {
      const char *eq = strchr (words[i], '=');
      if (eq == NULL)
        return df_error (c->err, c->name, line,
                         "Syntax error - can't find = in \"%s\". Must be of the form: name=value",
                         words[i]);
      if (eq == words[i])
        return df_error (c->err, c->name, line, "%s names can not be blank", kname);
      add_kv (in, ob_xstrndup (words[i], eq - words[i]), ob_xstrdup (eq + 1));
    }
  return 0;
}

static int make_instr (const struct pctx *c, int line, const char *text, struct ob_instr **out);

static int
parse_from (const struct pctx *c, struct ob_instr *in, int line)
{
  cleanup_strv char **w = split_ws (in->rest);
  size_t n = ob_strv_len (w);

  if (n == 3 && strcasecmp (w[1], "as") == 0)
    {
      cleanup_free char *stage = ob_xstrdup (w[2]);
      bool ok = true;
      ascii_lower (stage);
      ok = stage[0] >= 'a' && stage[0] <= 'z';
      for (const char *s = stage; ok && *s; s++)
        ok = (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'
             || *s == '.';
      if (!ok)
        return df_error (c->err, c->name, line,
                         "invalid name for build stage: \"%s\", name can't start with a number "
                         "or contain symbols",
                         w[2]);
      in->from_stage = steal_pointer (&stage);
    }
  else if (n != 1)
    return df_error (c->err, c->name, line, "FROM requires either one or three arguments");
  in->from_image = ob_xstrdup (w[0]);
  return 0;
}

static int
parse_healthcheck (const struct pctx *c, struct ob_instr *in, int line)
{
  const char *s = in->rest, *e = s;
  cleanup_free char *type = NULL;
  cleanup_free char *cmd = NULL;

  while (*e && !is_ws ((unsigned char) *e))
    e++;
  if (e == s)
    return df_error (c->err, c->name, line, "HEALTHCHECK requires at least one argument");
  type = ob_xstrndup (s, e - s);
  ascii_upper (type);
  cmd = ob_xstrdup (skip_ws (e));
  if (strcmp (type, "NONE") == 0)
    {
      if (*cmd)
        return df_error (c->err, c->name, line, "HEALTHCHECK NONE takes no arguments");
      in->healthcheck_none = true;
      return 0;
    }
  if (strcmp (type, "CMD") != 0)
    return df_error (c->err, c->name, line, "Unknown type \"%s\" in HEALTHCHECK (try CMD)", type);
  if (maybe_json (c, in, cmd, line) < 0)
    return -1;
  if (in->n_args == 0)
    return df_error (c->err, c->name, line, "Missing command after HEALTHCHECK CMD");
  free (in->rest);
  in->rest = steal_pointer (&cmd);
  return 0;
}

static int
parse_onbuild (const struct pctx *c, struct ob_instr *in, int line)
{
  cleanup_strv char **w = split_ws (in->rest);
  cleanup_free char *trigger = NULL;
  const char *t;

  if (w[0] == NULL)
    return df_error (c->err, c->name, line, "ONBUILD requires at least one argument");
  trigger = ob_xstrdup (w[0]);
  ascii_upper (trigger);
  if (strcmp (trigger, "ONBUILD") == 0)
    return df_error (c->err, c->name, line,
                     "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (strcmp (trigger, "MAINTAINER") == 0 || strcmp (trigger, "FROM") == 0)
    return df_error (c->err, c->name, line, "%s isn't allowed as an ONBUILD trigger", trigger);
  if (make_instr (c, line, in->rest, &in->onbuild) < 0)
    return -1;
  /* `(?i)^\s*ONBUILD\s*` removed from the original */
  t = skip_ws (in->original);
  if (strncasecmp (t, "ONBUILD", 7) == 0)
    t = skip_ws (t + 7);
  in->onbuild_text = ob_xstrdup (t);
  return 0;
}

/* Per-kind argument shapes and checks (instructions/parse.go). */
static int
parse_args (const struct pctx *c, struct ob_instr *in, int line)
{
  const char *kname = ob_instr_kind_name (in->kind);
  cleanup_free char *last = NULL;
  size_t count = 0;

  switch (in->kind)
    {
    case OB_I_FROM:
      return parse_from (c, in, line);
    case OB_I_RUN:
      if (maybe_json (c, in, in->rest, line) < 0)
        return -1;
      if (!in->json && in->n_args == 0)
        return df_error (c->err, c->name, line, "RUN requires at least one argument");
      return check_run_flags (c, in, line);
    case OB_I_CMD:
    case OB_I_ENTRYPOINT:
      return maybe_json (c, in, in->rest, line);
    case OB_I_SHELL:
      if (maybe_json (c, in, in->rest, line) < 0)
        return -1;
      if (in->n_args == 0)
        return df_error (c->err, c->name, line, "SHELL requires at least one argument");
      if (!in->json)
        return df_error (c->err, c->name, line, "SHELL requires the arguments to be in JSON form");
      return 0;
    case OB_I_LABEL:
    case OB_I_ENV:
      return name_val (c, in, line);
    case OB_I_ARG:
      {
        cleanup_strv char **words = parse_words (in->rest, c->escape);
        if (words[0] == NULL)
          return df_error (c->err, c->name, line, "ARG requires at least one argument");
        for (size_t i = 0; words[i]; i++)
          {
            const char *eq = strchr (words[i], '=');
            if (eq == words[i])
              return df_error (c->err, c->name, line, "ARG names can not be blank");
            if (eq)
              add_kv (in, ob_xstrndup (words[i], eq - words[i]), ob_xstrdup (eq + 1));
            else
              add_kv (in, ob_xstrdup (words[i]), NULL);
          }
        return 0;
      }
    case OB_I_MAINTAINER:
    case OB_I_USER:
    case OB_I_WORKDIR:
    case OB_I_STOPSIGNAL:
      if (*in->rest == '\0')
        return df_error (c->err, c->name, line, "%s requires exactly one argument", kname);
      return 0;
    case OB_I_EXPOSE:
      if (*in->rest == '\0')
        return df_error (c->err, c->name, line, "EXPOSE requires at least one argument");
      return 0;
    case OB_I_VOLUME:
      if (maybe_json_list (c, in, line, &count, &last) < 0)
        return -1;
      if (count == 0)
        return df_error (c->err, c->name, line, "VOLUME requires at least one argument");
      for (size_t i = 0; in->json && i < in->n_args; i++)
        if (*skip_ws (in->args[i]) == '\0')
          return df_error (c->err, c->name, line, "VOLUME specified can not be an empty string");
      return 0;
    case OB_I_ADD:
    case OB_I_COPY:
      if (maybe_json_list (c, in, line, &count, &last) < 0)
        return -1;
      if (count == 0)
        return df_error (c->err, c->name, line, "%s requires at least two arguments", kname);
      if (count == 1)
        return df_error (c->err, c->name, line,
                         "%s requires at least two arguments, but only one was provided. "
                         "Destination could not be determined",
                         kname);
      if (ob_dockerfile_heredoc_word (last, NULL, NULL, NULL))
        return df_error (c->err, c->name, line, "%s cannot accept a heredoc as a destination",
                         kname);
      return check_copy_from (c, in, line);
    case OB_I_HEALTHCHECK:
      return parse_healthcheck (c, in, line);
    case OB_I_ONBUILD:
      return parse_onbuild (c, in, line);
    }
  return 0;
}

/* newNodeFromLine + ParseInstruction: one instruction from its joined text. */
static int
make_instr (const struct pctx *c, int line, const char *text, struct ob_instr **out)
{
  cleanup_instr struct ob_instr *in = ob_xmalloc0 (sizeof (*in));
  cleanup_strv char **flag_words = NULL;
  cleanup_free char *word = NULL;
  const char *s = skip_ws (text), *e = s;

  in->line = in->end_line = line;
  in->original = ob_xstrdup (text);
  in->args = ob_xmalloc0 (sizeof (char *));
  while (*e && !is_ws ((unsigned char) *e))
    e++;
  word = ob_xstrndup (s, e - s);
  extract_flags (e, &flag_words, &in->rest);
  if (!kind_from_word (word, &in->kind))
    return df_error (c->err, c->name, line, "unknown instruction \"%s\"", word);
  if (parse_flags (in, flag_words, c->name, line, c->err) < 0)
    return -1;
  if (parse_args (c, in, line) < 0)
    return -1;
  *out = steal_pointer (&in);
  return 0;
}

/* ------------------------------------------------------------------ */
/* lines                                                               */

struct parser
{
  struct pctx c;
  const char *text;
  size_t len, off; /* current offset in text */
  int lineno;      /* number of the last line read */
  bool directives; /* still at the top, where parser directives are allowed */
  bool seen_escape, seen_syntax, seen_check;
  char *syntax;
};

/* Next physical line, without its "\n" and trailing "\r"s (trimNewline).
 * NULL at the end of the text.  (ob_dockerfile_parse refused NUL bytes.) */
static char *
next_line (struct parser *p)
{
  const char *start, *nl;
  size_t n;
  char *r;

  if (p->off >= p->len)
    return NULL;
  start = p->text + p->off;
  nl = memchr (start, '\n', p->len - p->off);
  n = nl ? (size_t) (nl - start) : p->len - p->off;
  p->off += nl ? n + 1 : n;
  p->lineno++;
  r = ob_xstrndup (start, n);
  n = strlen (r);
  while (n > 0 && (r[n - 1] == '\r' || r[n - 1] == '\n'))
    r[--n] = '\0';
  return r;
}

/* A line that is part of an instruction (p->lineno) must be UTF-8. */
static int
check_utf8 (struct parser *p, const char *line)
{
  if (ob_dockerfile_is_utf8 (line, strlen (line)))
    return 0;
  return df_error (p->c.err, p->c.name, p->lineno, "invalid UTF-8 in the instruction");
}

static int
end_directives (struct parser *p)
{
  p->directives = false;
  return 0;
}

/* DirectiveParser.ParseLine: `^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$`
 * on the lines at the top; the first line that is not a known directive
 * ends the directive section. */
static int
parse_directive (struct parser *p, const char *t)
{
  cleanup_free char *key = NULL;
  cleanup_free char *value = NULL;
  const char *s = t, *k, *v;
  size_t vlen;
  bool *seen;

  if (*s++ != '#')
    return end_directives (p);
  while (*s == ' ' || *s == '\t')
    s++;
  if (!isalpha ((unsigned char) *s))
    return end_directives (p);
  k = s;
  while (isalnum ((unsigned char) *s))
    s++;
  key = ob_xstrndup (k, s - k);
  ascii_lower (key);
  while (*s == ' ' || *s == '\t')
    s++;
  if (*s++ != '=')
    return end_directives (p);
  v = s;
  while (*v == ' ' || *v == '\t')
    v++;
  vlen = strlen (v);
  while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
    vlen--;
  if (vlen == 0 && v > s)
    {
      /* the regex backtracks: the value is the last blank character */
      v--;
      vlen = 1;
    }
  if (vlen == 0)
    return end_directives (p);
  value = ob_xstrndup (v, vlen);

  if (strcmp (key, "escape") == 0)
    seen = &p->seen_escape;
  else if (strcmp (key, "syntax") == 0)
    seen = &p->seen_syntax;
  else if (strcmp (key, "check") == 0)
    seen = &p->seen_check;
  else
    return end_directives (p);
  if (*seen)
    return df_error (p->c.err, p->c.name, p->lineno, "only one %s parser directive can be used",
                     key);
  *seen = true;

  if (seen == &p->seen_escape)
    {
      if (strcmp (value, "\\") != 0 && strcmp (value, "`") != 0)
        return df_error (p->c.err, p->c.name, p->lineno,
                         "invalid escape token '%s' does not match ` or \\", value);
      p->c.escape = value[0];
    }
  else if (seen == &p->seen_syntax)
    p->syntax = steal_pointer (&value);
  return 0;
}

static bool
is_comment (const char *line)
{
  return *skip_ws (line) == '#';
}

/* Remove a trailing escape character (plus blanks after it) from s;
 * true when the line ends the instruction.  As BuildKit's
 * lineContinuationRegex, an escape preceded by another one is no
 * continuation (`ENV C trailing\\` ends there), whatever the count. */
static bool
end_of_instr (char *s, char escape)
{
  size_t n = strlen (s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    n--;
  if (n > 0 && s[n - 1] == escape && (n == 1 || s[n - 2] != escape))
    {
      s[n - 1] = '\0';
      return false;
    }
  return true;
}

static void
strip_leading_tabs (struct ob_buf *out, const char *body)
{
  bool bol = true;
  for (; *body; body++)
    {
      if (bol && *body == '\t')
        continue;
      bol = *body == '\n';
      ob_buf_addc (out, *body);
    }
}

/* Read the bodies of in's heredocs from the following lines. */
static int
read_heredocs (struct parser *p, struct ob_instr *in, struct ob_instr *target, int start)
{
  /* ONBUILD keeps the trigger text re-parsable, bodies included (built in
   * one buffer: re-copying it for each heredoc was quadratic) */
  cleanup_buf struct ob_buf text = { 0 };
  if (in != target)
    ob_buf_adds (&text, in->onbuild_text);
  for (size_t h = 0; h < target->n_heredocs; h++)
    {
      struct ob_heredoc *hd = &target->heredocs[h];
      cleanup_buf struct ob_buf body = { 0 };
      cleanup_buf struct ob_buf chomped = { 0 };
      bool terminated = false;

      for (;;)
        {
          cleanup_free char *l = next_line (p);
          const char *cand = l;
          if (l == NULL)
            break;
          if (hd->chomp)
            while (*cand == '\t')
              cand++;
          if (strcmp (cand, hd->name) == 0)
            {
              terminated = true;
              break;
            }
          if (check_utf8 (p, l) < 0)
            return -1;
          ob_buf_adds (&body, l);
          ob_buf_addc (&body, '\n');
        }
      if (!terminated)
        return df_error (p->c.err, p->c.name, start, "unterminated heredoc \"%s\"", hd->name);
      if (in != target)
        {
          ob_buf_addc (&text, '\n');
          if (body.len > 0)
            ob_buf_add (&text, body.data, body.len);
          ob_buf_adds (&text, hd->name);
        }
      if (hd->chomp)
        {
          strip_leading_tabs (&chomped, body.data ? body.data : "");
          hd->content = ob_buf_steal (&chomped);
        }
      else
        hd->content = ob_buf_steal (&body);
    }
  if (in != target)
    {
      free (in->onbuild_text);
      in->onbuild_text = ob_buf_steal (&text);
    }
  target->end_line = p->lineno;
  in->end_line = p->lineno;
  return 0;
}

/* Parse.go's main loop for one instruction: 1 with *out set, 0 at the end
 * of the text, -1 on error. */
static int
next_instr (struct parser *p, struct ob_instr **out)
{
  for (;;)
    {
      cleanup_free char *first = next_line (p);
      cleanup_buf struct ob_buf line = { 0 };
      cleanup_instr struct ob_instr *in = NULL;
      struct ob_instr *target;
      const char *t;
      int start;
      bool eol;

      if (first == NULL)
        return 0;
      t = skip_ws (first);
      if (p->directives && parse_directive (p, t) < 0)
        return -1;
      if (*t == '#')
        continue;
      start = p->lineno;
      if (check_utf8 (p, t) < 0)
        return -1;
      ob_buf_adds (&line, t);
      eol = end_of_instr (line.data, p->c.escape);
      line.len = strlen (line.data);
      if (eol && line.len == 0)
        continue;
      while (!eol)
        {
          cleanup_free char *l = next_line (p);
          if (l == NULL)
            break; /* escape at the end of the file: the instruction ends */
          if (is_comment (l) || *skip_ws (l) == '\0')
            continue;
          if (check_utf8 (p, l) < 0)
            return -1;
          eol = end_of_instr (l, p->c.escape);
          ob_buf_adds (&line, l);
        }
      if (line.data == NULL || *skip_ws (line.data) == '\0')
        continue;

      if (make_instr (&p->c, start, line.data, &in) < 0)
        return -1;
      in->end_line = p->lineno;
      target = in->kind == OB_I_ONBUILD ? in->onbuild : in;
      if ((target->kind == OB_I_RUN || target->kind == OB_I_COPY || target->kind == OB_I_ADD)
          && !target->json && *target->rest && strstr (line.data, "<<"))
        {
          heredocs_from_line (line.data, target);
          if (read_heredocs (p, in, target, start) < 0)
            return -1;
        }
      *out = steal_pointer (&in);
      return 1;
    }
}

int
ob_dockerfile_parse (const char *name, const char *text, size_t len, struct ob_dockerfile **out,
                     ob_error_t *err)
{
  struct parser p = { { name, '\\', err }, text, len, 0, 0, true, false, false, false, NULL };
  struct ob_dockerfile *df = ob_xmalloc0 (sizeof (*df));
  size_t cap = 0;
  bool seen_from = false;
  int r;

  if (len >= 3 && memcmp (text, "\xef\xbb\xbf", 3) == 0)
    p.off = 3;
  df->filename = ob_xstrdup (name);
  {
    /* the parser works on C strings: a NUL would cut a line short
     * (RUN echo a\0b ran `echo a`) */
    const char *nul = memchr (text, '\0', len);
    if (nul)
      {
        int line = 1;
        for (const char *c = text; c < nul; c++)
          line += *c == '\n';
        ob_dockerfile_free (df);
        return df_error (err, name, line, "NUL byte in the Dockerfile");
      }
  }
  for (;;)
    {
      struct ob_instr *in = NULL;
      r = next_instr (&p, &in);
      if (r <= 0)
        break;
      if (df->n_instrs == cap)
        {
          /* doubling: one realloc per instruction copied the array each
           * time for 100,000 instructions */
          cap = cap ? cap * 2 : 16;
          df->instrs = ob_xrealloc (df->instrs, cap * sizeof (*df->instrs));
        }
      df->instrs[df->n_instrs++] = *in;
      free (in);
      if (df->instrs[df->n_instrs - 1].kind == OB_I_FROM)
        seen_from = true;
      else if (!seen_from && df->instrs[df->n_instrs - 1].kind != OB_I_ARG)
        {
          r = df_error (err, name, df->instrs[df->n_instrs - 1].line,
                        "no build stage in current context");
          break;
        }
    }
  if (r == 0 && !seen_from)
    r = ob_error_make (err, OB_ERR_DOCKERFILE, 0, "%s: no FROM instruction", name);
  df->escape = p.c.escape;
  df->syntax = p.syntax;
  if (r < 0)
    {
      ob_dockerfile_free (df);
      return -1;
    }
  *out = df;
  return 0;
}

int
ob_dockerfile_parse_instr (const char *name, int line, const char *text, char escape,
                           struct ob_instr **out, ob_error_t *err)
{
  struct parser p = { { name, escape, err }, text, strlen (text), 0, line - 1, false,
                      false, false, false, NULL };
  cleanup_instr struct ob_instr *in = NULL;
  cleanup_instr struct ob_instr *extra = NULL;
  int r;

  r = next_instr (&p, &in);
  if (r < 0)
    return -1;
  if (r == 0)
    return df_error (err, name, line, "empty instruction");
  r = next_instr (&p, &extra);
  if (r < 0)
    return -1;
  if (r > 0)
    return df_error (err, name, extra->line, "expected a single instruction");
  *out = steal_pointer (&in);
  return 0;
}
