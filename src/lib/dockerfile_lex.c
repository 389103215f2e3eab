/* dockerfile_lex: BuildKit's shell lexer (frontend/dockerfile/shell/lex.go)
 * for the dockerfile module: quote removal, the escape character, variable
 * expansion and word splitting of instruction arguments, and heredoc marker
 * recognition.  The parser lives in dockerfile.c. */
#include "config.h"
#include <obuild/dockerfile.h>
#include <obuild/util.h>

#include <ctype.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
is_ws (int c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static void
buf_freep (struct ob_buf *b)
{
  ob_buf_free (b);
}
#define cleanup_buf __attribute__ ((cleanup (buf_freep)))

/* ------------------------------------------------------------------ */
/* shell lexer (BuildKit shell/lex.go)                                 */

#define LEX_EOF (-1)

struct lex
{
  const char *s;
  size_t len, pos;
  int esc;
  ob_lookup_fn lookup;
  void *data;
  bool raw_quotes;   /* keep the quote characters in the result */
  bool raw_escapes;  /* keep the escape characters in the result */
  bool skip_unset;   /* leave unset variables as written */
  unsigned depth;    /* ${...} being processed, for OB_DOCKERFILE_MAX_NESTING */
  ob_error_t *err;
};

/* Collects words for ob_dockerfile_words: unquoted literal whitespace
 * separates, quoted text and expansion results never do. */
struct words
{
  struct ob_buf word;
  bool in_word;
  char **v;
};

static void
words_emit (struct words *w)
{
  ob_strv_take (&w->v, ob_buf_steal (&w->word));
  w->in_word = false;
}

static void
words_add_raw (struct words *w, const char *s, size_t n)
{
  ob_buf_add (&w->word, s, n);
  w->in_word = true;
}

static void
words_add_char (struct words *w, char c)
{
  if (is_ws ((unsigned char) c))
    {
      if (w->in_word)
        words_emit (w);
    }
  else
    words_add_raw (w, &c, 1);
}

static int
lex_peek (struct lex *lx)
{
  return lx->pos < lx->len ? (unsigned char) lx->s[lx->pos] : LEX_EOF;
}

static int
lex_next (struct lex *lx)
{
  int c = lex_peek (lx);
  if (c != LEX_EOF)
    lx->pos++;
  return c;
}

static int lex_error (struct lex *lx, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static int
lex_error (struct lex *lx, const char *fmt, ...)
{
  va_list ap;
  cleanup_free char *msg = NULL;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    ob_oom ();
  va_end (ap);
  return ob_error_make (lx->err, OB_ERR_DOCKERFILE, 0, "%s", msg);
}

static const char *
lex_getenv (struct lex *lx, const char *name)
{
  return lx->lookup ? lx->lookup (lx->data, name) : NULL;
}

static bool
is_special_param (int c)
{
  return c == '@' || c == '*' || c == '#' || c == '?' || c == '-' || c == '$' || c == '!'
         || c == '0';
}

/* processName: a run of letters/digits/_ (non-ASCII bytes count as letters,
 * as Go's unicode.IsLetter does for most of them), or a run of digits, or
 * one special parameter character. */
static char *
lex_name (struct lex *lx)
{
  struct ob_buf b = { 0 };
  int c;

  while ((c = lex_peek (lx)) != LEX_EOF)
    {
      if (b.len == 0 && isdigit (c))
        {
          while (lex_peek (lx) != LEX_EOF && isdigit (lex_peek (lx)))
            ob_buf_addc (&b, (char) lex_next (lx));
          break;
        }
      if (b.len == 0 && is_special_param (c))
        {
          ob_buf_addc (&b, (char) lex_next (lx));
          break;
        }
      if (!isalnum (c) && c != '_' && c < 0x80)
        break;
      ob_buf_addc (&b, (char) lex_next (lx));
    }
  return ob_buf_steal (&b);
}

static int lex_until (struct lex *lx, int stop, bool raw_escapes, struct ob_buf *res,
                      struct words *w);

/* fnmatch() of pattern against value[from, to). */
static bool
match_range (const char *pattern, const char *value, size_t from, size_t to)
{
  cleanup_free char *sub = ob_xstrndup (value + from, to - from);
  return fnmatch (pattern, sub, 0) == 0;
}

/* ${v#p} ${v##p} ${v%p} ${v%%p}: shortest / longest prefix or suffix. */
static void
trim_pattern (struct ob_buf *out, const char *value, const char *pattern, bool suffix, bool greedy)
{
  size_t n = strlen (value);
  for (size_t k = 0; k <= n; k++)
    {
      size_t len = greedy ? n - k : k;
      if (suffix ? match_range (pattern, value, n - len, n) : match_range (pattern, value, 0, len))
        {
          if (suffix)
            ob_buf_add (out, value, n - len);
          else
            ob_buf_adds (out, value + len);
          return;
        }
    }
  ob_buf_adds (out, value);
}

/* ${v/p/r} ${v//p/r}: leftmost, longest match, replaced once or everywhere. */
static void
replace_pattern (struct ob_buf *out, const char *value, const char *pattern, const char *repl,
                 bool all)
{
  size_t n = strlen (value), i = 0;
  bool done = false;

  if (*pattern == '\0')
    {
      ob_buf_adds (out, value);
      return;
    }
  while (i < n)
    {
      size_t j = n + 1;
      if (!done)
        for (j = n; j > i; j--)
          if (match_range (pattern, value, i, j))
            break;
      if (!done && j > i)
        {
          ob_buf_adds (out, repl);
          i = j;
          done = !all;
          continue;
        }
      ob_buf_addc (out, value[i++]);
    }
}

/* processDollar: the scanner is on '$'.  The only recursive path of the
 * lexer (a ${...} word, in quotes or not, comes back here for each nested
 * ${...}): lex_dollar() bounds its depth. */
static int
lex_dollar_1 (struct lex *lx, struct ob_buf *out)
{
  cleanup_free char *name = NULL;
  cleanup_buf struct ob_buf word = { 0 };
  const char *value;
  char chs[3] = { 0 };
  bool null_is_unset = false;
  int c;

  lex_next (lx);
  if (lex_peek (lx) != '{')
    {
      name = lex_name (lx);
      if (*name == '\0')
        {
          /* "$" followed by no name (or at the end) is a literal "$" */
          ob_buf_addc (out, '$');
          return 0;
        }
      value = lex_getenv (lx, name);
      if (value == NULL && lx->skip_unset)
        {
          ob_buf_addc (out, '$');
          ob_buf_adds (out, name);
        }
      else if (value)
        ob_buf_adds (out, value);
      return 0;
    }

  lex_next (lx);
  c = lex_peek (lx);
  if (c == LEX_EOF)
    return lex_error (lx, "syntax error: missing '}'");
  if (c == '{' || c == '}' || c == ':')
    return lex_error (lx, "syntax error: bad substitution");

  name = lex_name (lx);
  c = lex_next (lx);
  if (c == LEX_EOF)
    return lex_error (lx, "syntax error: missing '}'");
  chs[0] = (char) c;
  value = lex_getenv (lx, name);

  if (c == '}')
    {
      if (value == NULL && lx->skip_unset)
        {
          ob_buf_adds (out, "${");
          ob_buf_adds (out, name);
          ob_buf_addc (out, '}');
        }
      else if (value)
        ob_buf_adds (out, value);
      return 0;
    }

  if (c == '/')
    {
      cleanup_buf struct ob_buf pattern = { 0 };
      bool all = lex_peek (lx) == '/';
      if (all)
        lex_next (lx);
      if (lex_until (lx, '/', true, &pattern, NULL) < 0)
        return lex_peek (lx) == LEX_EOF ? lex_error (lx, "syntax error: missing '/' in ${}") : -1;
      if (lex_until (lx, '}', true, &word, NULL) < 0)
        return lex_peek (lx) == LEX_EOF ? lex_error (lx, "syntax error: missing '}'") : -1;
      if (value == NULL && lx->skip_unset)
        {
          ob_buf_adds (out, "${");
          ob_buf_adds (out, name);
          ob_buf_adds (out, all ? "//" : "/");
          ob_buf_adds (out, pattern.data ? pattern.data : "");
          ob_buf_addc (out, '/');
          ob_buf_adds (out, word.data ? word.data : "");
          ob_buf_addc (out, '}');
          return 0;
        }
      replace_pattern (out, value ? value : "", pattern.data ? pattern.data : "",
                       word.data ? word.data : "", all);
      return 0;
    }

  if (c == ':')
    {
      null_is_unset = true;
      c = lex_next (lx);
      chs[1] = c == LEX_EOF ? '\0' : (char) c;
    }
  else if (c != '+' && c != '-' && c != '?' && c != '#' && c != '%')
    {
      if (lx->skip_unset)
        {
          ob_buf_adds (out, "${");
          ob_buf_adds (out, name);
          ob_buf_addc (out, '}');
          return 0;
        }
      return lex_error (lx, "unsupported modifier (%s) in substitution", chs);
    }

  {
    bool trims = c == '#' || c == '%';
    const char *w;
    if (null_is_unset && trims)
      return lex_error (lx, "unsupported modifier (%s) in substitution", chs);
    if (lex_until (lx, '}', trims, &word, NULL) < 0)
      return lex_peek (lx) == LEX_EOF ? lex_error (lx, "syntax error: missing '}'") : -1;
    w = word.data ? word.data : "";

    if (value == NULL && lx->skip_unset)
      {
        ob_buf_adds (out, "${");
        ob_buf_adds (out, name);
        ob_buf_adds (out, chs);
        ob_buf_adds (out, w);
        ob_buf_addc (out, '}');
        return 0;
      }

    switch (c)
      {
      case '-':
        ob_buf_adds (out, value == NULL || (null_is_unset && *value == '\0') ? w : value);
        return 0;
      case '+':
        if (!(value == NULL || (null_is_unset && *value == '\0')))
          ob_buf_adds (out, w);
        return 0;
      case '?':
        if (value == NULL)
          return lex_error (lx, "%s: %s", name, *w ? w : "is not allowed to be unset");
        if (null_is_unset && *value == '\0')
          return lex_error (lx, "%s: %s", name, *w ? w : "is not allowed to be empty");
        ob_buf_adds (out, value);
        return 0;
      case '#':
      case '%':
        {
          bool greedy = *w == c;
          if (*w == '\0')
            {
              ob_buf_adds (out, value ? value : "");
              return 0;
            }
          trim_pattern (out, value ? value : "", greedy ? w + 1 : w, c == '%', greedy);
          return 0;
        }
      default:
        return lex_error (lx, "unsupported modifier (%s) in substitution", chs);
      }
  }
}

static int
lex_dollar (struct lex *lx, struct ob_buf *out)
{
  int r;
  /* BuildKit recurses on Go's growable stack; a hostile Dockerfile of
   * 30,000 nested ${a:-${a:-...}} would overflow ours */
  if (lx->depth >= OB_DOCKERFILE_MAX_NESTING)
    return lex_error (lx, "${...} nested more than %d levels", OB_DOCKERFILE_MAX_NESTING);
  lx->depth++;
  r = lex_dollar_1 (lx, out);
  lx->depth--;
  return r;
}

/* processSingleQuote: everything literal up to the next quote. */
static int
lex_squote (struct lex *lx, struct ob_buf *out)
{
  int c = lex_next (lx);
  if (lx->raw_quotes)
    ob_buf_addc (out, (char) c);
  for (;;)
    {
      c = lex_next (lx);
      if (c == LEX_EOF)
        return lex_error (lx, "unexpected end of statement while looking for matching single-quote");
      if (c == '\'')
        {
          if (lx->raw_quotes)
            ob_buf_addc (out, (char) c);
          return 0;
        }
      ob_buf_addc (out, (char) c);
    }
}

/* processDoubleQuote: $ expands; the escape character only escapes
 * '"', '$' and itself, otherwise it stays. */
static int
lex_dquote (struct lex *lx, struct ob_buf *out)
{
  int c = lex_next (lx);
  if (lx->raw_quotes)
    ob_buf_addc (out, (char) c);
  for (;;)
    {
      c = lex_peek (lx);
      if (c == LEX_EOF)
        return lex_error (lx, "unexpected end of statement while looking for matching double-quote");
      if (c == '"')
        {
          lex_next (lx);
          if (lx->raw_quotes)
            ob_buf_addc (out, (char) c);
          return 0;
        }
      if (c == '$')
        {
          if (lex_dollar (lx, out) < 0)
            return -1;
          continue;
        }
      c = lex_next (lx);
      if (c == lx->esc)
        {
          int p;
          if (lx->raw_escapes)
            ob_buf_addc (out, (char) c);
          p = lex_peek (lx);
          if (p == LEX_EOF)
            continue;
          if (p == '"' || p == '$' || p == lx->esc)
            c = lex_next (lx);
        }
      ob_buf_addc (out, (char) c);
    }
}

/* processStopOn: process up to the end, or up to (and consuming) stop. */
static int
lex_until (struct lex *lx, int stop, bool raw_escapes, struct ob_buf *res, struct words *w)
{
  bool saved = lx->raw_escapes;
  int c;

  lx->raw_escapes = raw_escapes;
  while ((c = lex_peek (lx)) != LEX_EOF)
    {
      if (stop != LEX_EOF && c == stop)
        {
          lex_next (lx);
          lx->raw_escapes = saved;
          return 0;
        }
      if (c == '$' || c == '\'' || c == '"')
        {
          cleanup_buf struct ob_buf tmp = { 0 };
          int r = c == '$' ? lex_dollar (lx, &tmp) : c == '\'' ? lex_squote (lx, &tmp)
                                                                : lex_dquote (lx, &tmp);
          if (r < 0)
            {
              lx->raw_escapes = saved;
              return -1;
            }
          ob_buf_add (res, tmp.data, tmp.len);
          /* an empty unquoted expansion makes no word; empty quotes do */
          if (w && (c != '$' || tmp.len > 0))
            words_add_raw (w, tmp.data, tmp.len);
          continue;
        }
      lex_next (lx);
      if (c == lx->esc)
        {
          if (lx->raw_escapes)
            {
              char e = (char) c;
              if (w)
                words_add_raw (w, &e, 1);
              ob_buf_addc (res, e);
            }
          c = lex_next (lx);
          if (c == LEX_EOF)
            break;
          if (w)
            {
              char e = (char) c;
              words_add_raw (w, &e, 1);
            }
        }
      else if (w)
        words_add_char (w, (char) c);
      ob_buf_addc (res, (char) c);
    }
  lx->raw_escapes = saved;
  if (stop != LEX_EOF)
    return lex_error (lx, "unexpected end of statement while looking for matching %c", stop);
  return 0;
}

static void
lex_init (struct lex *lx, const char *raw, char escape, ob_lookup_fn lookup, void *data,
          ob_error_t *err)
{
  memset (lx, 0, sizeof *lx);
  lx->s = raw;
  lx->len = strlen (raw);
  lx->esc = (unsigned char) escape;
  lx->lookup = lookup;
  lx->data = data;
  lx->err = err;
}

/* "failed to process "<raw>"": a hostile raw word can be megabytes long, the
 * message stays one readable line. */
static int
wrap_error (ob_error_t *err, const char *raw)
{
  size_t n = strlen (raw), k = 60;
  if (n > 80)
    {
      while (k > 0 && ((unsigned char) raw[k] & 0xc0) == 0x80)
        k--; /* not in the middle of a UTF-8 sequence */
      return ob_error_wrap (err, "failed to process \"%.*s...\" (%zu bytes)", (int) k, raw, n);
    }
  return ob_error_wrap (err, "failed to process \"%s\"", raw);
}

int
ob_dockerfile_word (const char *raw, char escape, ob_lookup_fn lookup, void *data, char **out,
                    ob_error_t *err)
{
  struct lex lx;
  cleanup_buf struct ob_buf res = { 0 };

  lex_init (&lx, raw, escape, lookup, data, err);
  if (lex_until (&lx, LEX_EOF, false, &res, NULL) < 0)
    return wrap_error (err, raw);
  *out = ob_buf_steal (&res);
  return 0;
}

/* Words of raw, as ProcessWords with the given lexer options. */
static int
lex_words (struct lex *lx, char ***out)
{
  cleanup_buf struct ob_buf res = { 0 };
  struct words w = { .in_word = false };

  if (lex_until (lx, LEX_EOF, lx->raw_escapes, &res, &w) < 0)
    {
      ob_buf_free (&w.word);
      ob_strv_free (w.v);
      return -1;
    }
  if (w.in_word)
    words_emit (&w);
  ob_buf_free (&w.word);
  *out = w.v ? w.v : ob_xmalloc0 (sizeof (char *));
  return 0;
}

int
ob_dockerfile_words (const char *raw, char escape, ob_lookup_fn lookup, void *data,
                     char ***out, ob_error_t *err)
{
  struct lex lx;

  lex_init (&lx, raw, escape, lookup, data, err);
  if (lex_words (&lx, out) < 0)
    return wrap_error (err, raw);
  return 0;
}

/* ------------------------------------------------------------------ */
/* heredoc words                                                       */

static size_t
count_quotes (const char *s)
{
  size_t n = 0;
  for (; *s; s++)
    n += *s == '\'' || *s == '"';
  return n;
}

/* ParseHeredoc: "[n]<<[-]NAME" where NAME is one shell word (regex
 * `^(\d*)<<(-?)([^<]*)$`); NAME is expanded only if no part of it was quoted. */
bool
ob_dockerfile_heredoc_word (const char *word, char **name, bool *expand, bool *chomp_out)
{
  const char *s = word, *rest;
  cleanup_strv char **plain = NULL;
  cleanup_strv char **raw = NULL;
  struct lex lx;
  bool chomp;

  while (isdigit ((unsigned char) *s))
    s++;
  if (s[0] != '<' || s[1] != '<')
    return false;
  s += 2;
  chomp = *s == '-';
  if (chomp)
    s++;
  rest = s;
  if (*rest == '\0' || strchr (rest, '<') != NULL)
    return false;

  lex_init (&lx, rest, '\\', NULL, NULL, NULL);
  lx.skip_unset = true;
  if (lex_words (&lx, &plain) < 0 || ob_strv_len (plain) != 1)
    return false;
  lex_init (&lx, rest, '\\', NULL, NULL, NULL);
  lx.skip_unset = true;
  lx.raw_quotes = true;
  if (lex_words (&lx, &raw) < 0 || ob_strv_len (raw) != 1)
    return false;

  if (name)
    *name = ob_xstrdup (plain[0]);
  if (expand)
    *expand = count_quotes (plain[0]) == count_quotes (raw[0]);
  if (chomp_out)
    *chomp_out = chomp;
  return true;
}
