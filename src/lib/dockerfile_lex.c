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
  bool split_dollar; /* unquoted expansion results split on whitespace too */
  unsigned depth;    /* ${...} being processed, for OB_DOCKERFILE_MAX_NESTING */
  size_t work;       /* pattern matching steps, for OB_DOCKERFILE_MAX_WORK */
  ob_error_t *err;
};


/* Collects words for ob_dockerfile_words: unquoted literal whitespace
 * separates, quoted text and expansion results never do. */
struct words
{
  struct ob_buf word;
  bool in_word;
  char **v;
  size_t n;
};

static void
words_emit (struct words *w)
{
  ob_strv_push (&w->v, &w->n, ob_buf_steal (&w->word));
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

/* A word growing past OB_DOCKERFILE_MAX_WORD (ENV x=$x$x doubles it at
 * each line) is an error, before it exhausts the memory. */
static int
lex_check_len (struct lex *lx, const struct ob_buf *b)
{
  if (b->len <= OB_DOCKERFILE_MAX_WORD)
    return 0;
  return lex_error (lx, "expansion longer than %d MiB", OB_DOCKERFILE_MAX_WORD >> 20);
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

/* Pattern operators ${v#p} ${v%p} ${v/p/r}.  They match as fnmatch(3)
 * without flags does, but not by calling fnmatch() on every substring: that
 * was O(n^3) on a value of n bytes (and fnmatch backtracks exponentially on
 * many '*'), so a hostile pattern of many stars on a 1 MiB value never
 * ended.  The pattern is compiled into single-character tokens and '*', run
 * as an NFA over the value (O(n*m) per start position), and the work of one
 * word is bounded by OB_DOCKERFILE_MAX_WORK. */

enum ptok_kind
{
  PT_LIT,   /* one byte */
  PT_ANY,   /* '?' */
  PT_STAR,  /* '*' */
  PT_SET,   /* a bracket expression: the bytes it matches in set[] */
  PT_NEVER, /* a trailing backslash: fnmatch() never matches */
};

struct ptok
{
  enum ptok_kind kind;
  unsigned char c;
  unsigned char *set; /* 256 entries, for PT_SET */
};

struct pattern
{
  struct ptok *t;
  size_t n;
};

static void
pattern_free (struct pattern *p)
{
  for (size_t i = 0; i < p->n; i++)
    free (p->t[i].set);
  free (p->t);
  p->t = NULL;
  p->n = 0;
}

/* Length of the bracket expression at s ('['), as fnmatch() delimits it,
 * or 0 when it has no closing ']' (then '[' is an ordinary character). */
static size_t
bracket_len (const char *s)
{
  size_t i = 1;
  if (s[i] == '!' || s[i] == '^')
    i++;
  if (s[i] == ']')
    i++;
  while (s[i] != ']')
    {
      if (s[i] == '\0')
        return 0;
      if (s[i] == '\\' && s[i + 1] != '\0')
        i += 2;
      else if (s[i] == '[' && (s[i + 1] == ':' || s[i + 1] == '.' || s[i + 1] == '='))
        {
          char kind = s[i + 1];
          const char *e = s + i + 2;
          while (*e && !(e[0] == kind && e[1] == ']'))
            e++;
          if (*e == '\0')
            return 0;
          i = (size_t) (e - s) + 2;
        }
      else
        i++;
    }
  return i + 1;
}

static int
pattern_charge (struct lex *lx, size_t work)
{
  lx->work += work;
  if (lx->work <= OB_DOCKERFILE_MAX_WORK)
    return 0;
  return lex_error (lx, "pattern matching too expensive (more than %d steps)",
                    OB_DOCKERFILE_MAX_WORK);
}

static int
pattern_compile (struct lex *lx, const char *pat, struct pattern *p)
{
  size_t len = strlen (pat);
  p->t = ob_xmalloc0 ((len + 1) * sizeof *p->t);
  p->n = 0;
  for (size_t i = 0; i < len;)
    {
      struct ptok *t = &p->t[p->n];
      size_t bl;
      if (pat[i] == '*')
        {
          i++;
          if (p->n > 0 && p->t[p->n - 1].kind == PT_STAR)
            continue; /* "**" is "*" */
          t->kind = PT_STAR;
        }
      else if (pat[i] == '?')
        {
          t->kind = PT_ANY;
          i++;
        }
      else if (pat[i] == '\\')
        {
          if (i + 1 == len)
            t->kind = PT_NEVER;
          else
            {
              t->kind = PT_LIT;
              t->c = (unsigned char) pat[i + 1];
            }
          i += 2;
        }
      else if (pat[i] == '[' && (bl = bracket_len (pat + i)) > 0)
        {
          /* fnmatch() itself decides which bytes the expression matches
           * (ranges, classes, negation: exactly its rules) */
          cleanup_free char *expr = ob_xstrndup (pat + i, bl);
          if (pattern_charge (lx, 256) < 0)
            return -1;
          t->kind = PT_SET;
          t->set = ob_xmalloc0 (256);
          for (int c = 1; c < 256; c++)
            {
              char one[2] = { (char) c, '\0' };
              t->set[c] = fnmatch (expr, one, 0) == 0;
            }
          i += bl;
        }
      else
        {
          t->kind = PT_LIT;
          t->c = (unsigned char) pat[i++];
        }
      p->n++;
    }
  return 0;
}

/* The same pattern matching the reversed string (for suffixes). */
static void
pattern_reverse (struct pattern *p)
{
  for (size_t i = 0, j = p->n; i + 1 < j; i++, j--)
    {
      struct ptok t = p->t[i];
      p->t[i] = p->t[j - 1];
      p->t[j - 1] = t;
    }
}

/* Follow the '*' tokens that may match nothing. */
static void
nfa_close (const struct pattern *p, unsigned char *st)
{
  for (size_t j = 0; j < p->n; j++)
    if (st[j] && p->t[j].kind == PT_STAR)
      st[j + 1] = 1;
}

/* Match p against prefixes of s[0, n): *found gets whether one matched,
 * *len the shortest (or with longest, the longest) such prefix length
 * at least min_len. */
static int
pattern_prefix (struct lex *lx, const struct pattern *p, const char *s, size_t n, bool longest,
                size_t min_len, bool *found, size_t *len)
{
  cleanup_free unsigned char *cur = ob_xmalloc0 (p->n + 1);
  cleanup_free unsigned char *nxt = ob_xmalloc0 (p->n + 1);

  *found = false;
  cur[0] = 1;
  nfa_close (p, cur);
  for (size_t i = 0;; i++)
    {
      bool any = false;
      unsigned char *tmp;
      if (cur[p->n] && i >= min_len)
        {
          *found = true;
          *len = i;
          if (!longest)
            return 0;
        }
      if (i == n)
        return 0;
      if (pattern_charge (lx, p->n + 1) < 0)
        return -1;
      memset (nxt, 0, p->n + 1);
      for (size_t j = 0; j < p->n; j++)
        {
          const struct ptok *t = &p->t[j];
          unsigned char c = (unsigned char) s[i];
          if (!cur[j])
            continue;
          if (t->kind == PT_STAR)
            nxt[j] = 1;
          else if (t->kind == PT_ANY || (t->kind == PT_LIT && t->c == c)
                   || (t->kind == PT_SET && t->set[c]))
            nxt[j + 1] = 1;
        }
      nfa_close (p, nxt);
      for (size_t j = 0; j <= p->n && !any; j++)
        any = nxt[j];
      if (!any)
        return 0; /* nothing longer can match */
      tmp = cur;
      cur = nxt;
      nxt = tmp;
    }
}

/* ${v#p} ${v##p} ${v%p} ${v%%p}: shortest / longest prefix or suffix. */
static int
trim_pattern (struct lex *lx, struct ob_buf *out, const char *value, const char *pattern,
              bool suffix, bool greedy)
{
  struct pattern p = { 0 };
  cleanup_free char *rev = NULL;
  size_t n = strlen (value), len = 0;
  bool found;
  int r;

  if (pattern_compile (lx, pattern, &p) < 0)
    {
      pattern_free (&p);
      return -1;
    }
  if (suffix)
    {
      rev = ob_xmalloc0 (n + 1);
      for (size_t i = 0; i < n; i++)
        rev[i] = value[n - 1 - i];
      pattern_reverse (&p);
    }
  r = pattern_prefix (lx, &p, suffix ? rev : value, n, greedy, 0, &found, &len);
  pattern_free (&p);
  if (r < 0)
    return -1;
  if (!found)
    ob_buf_adds (out, value);
  else if (suffix)
    ob_buf_add (out, value, n - len);
  else
    ob_buf_adds (out, value + len);
  return 0;
}

/* ${v/p/r} ${v//p/r}: leftmost, longest non-empty match, replaced once or
 * everywhere. */
static int
replace_pattern (struct lex *lx, struct ob_buf *out, const char *value, const char *pattern,
                 const char *repl, bool all)
{
  struct pattern p = { 0 };
  size_t n = strlen (value), i = 0;
  bool done = false;

  if (*pattern == '\0')
    {
      ob_buf_adds (out, value);
      return 0;
    }
  if (pattern_compile (lx, pattern, &p) < 0)
    goto fail;
  while (i < n)
    {
      size_t len = 0;
      bool found = false;
      if (!done && pattern_prefix (lx, &p, value + i, n - i, true, 1, &found, &len) < 0)
        goto fail;
      if (found)
        {
          ob_buf_adds (out, repl);
          if (lex_check_len (lx, out) < 0)
            goto fail;
          i += len;
          done = !all;
          continue;
        }
      ob_buf_addc (out, value[i++]);
    }
  pattern_free (&p);
  return 0;
fail:
  pattern_free (&p);
  return -1;
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
      return replace_pattern (lx, out, value ? value : "", pattern.data ? pattern.data : "",
                              word.data ? word.data : "", all);
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
          return trim_pattern (lx, out, value ? value : "", greedy ? w + 1 : w, c == '%',
                               greedy);
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
          if (lex_dollar (lx, out) < 0 || lex_check_len (lx, out) < 0)
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
          if (lex_check_len (lx, res) < 0)
            {
              lx->raw_escapes = saved;
              return -1;
            }
          /* an empty unquoted expansion makes no word; empty quotes do */
          if (w && c == '$' && lx->split_dollar)
            for (size_t k = 0; k < tmp.len; k++)
              words_add_char (w, tmp.data[k]);
          else if (w && (c != '$' || tmp.len > 0))
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
  if (lex_check_len (lx, res) < 0)
    return -1;
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

int
ob_dockerfile_words_split (const char *raw, char escape, ob_lookup_fn lookup, void *data,
                           char ***out, ob_error_t *err)
{
  struct lex lx;

  lex_init (&lx, raw, escape, lookup, data, err);
  lx.split_dollar = true;
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
