/* context (part 2): .dockerignore / .containerignore patterns with
 * moby/patternmatcher semantics, and Go's filepath.Clean / filepath.Match,
 * which the source resolution in context.c shares.  Pure string code: no
 * file system access here. */
#include "config.h"
#include <obuild/context.h>
#include <obuild/util.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Go path semantics                                                    */
/* ------------------------------------------------------------------ */

/* filepath.Clean: collapse "//", ".", "x/.."; ".." above a rooted path is
 * dropped; the empty result is ".". */
char *
ob_path_clean (const char *path)
{
  struct ob_buf b = { 0 };
  bool rooted = path[0] == '/';
  size_t ncomp = 0, ndotdot = 0; /* components in b, leading ".." among them */
  const char *p = path;

  if (rooted)
    ob_buf_addc (&b, '/');
  while (*p)
    {
      const char *e;
      size_t n;
      while (*p == '/')
        p++;
      if (*p == '\0')
        break;
      e = strchr (p, '/');
      n = e ? (size_t) (e - p) : strlen (p);
      if (n == 1 && p[0] == '.')
        ;
      else if (n == 2 && p[0] == '.' && p[1] == '.')
        {
          if (ncomp > ndotdot)
            {
              /* pop the last component */
              char *slash = memrchr (b.data, '/', b.len);
              size_t keep = slash ? (size_t) (slash - b.data) : 0;
              if (rooted && keep == 0)
                keep = 1;
              b.len = keep;
              b.data[b.len] = '\0';
              ncomp--;
            }
          else if (!rooted)
            {
              if (b.len > 0)
                ob_buf_addc (&b, '/');
              ob_buf_add (&b, "..", 2);
              ncomp++;
              ndotdot++;
            }
        }
      else
        {
          if (b.len > 0 && !(rooted && b.len == 1))
            ob_buf_addc (&b, '/');
          ob_buf_add (&b, p, n);
          ncomp++;
        }
      p += n;
    }
  if (b.len == 0)
    ob_buf_addc (&b, '.');
  return ob_buf_steal (&b);
}

/* Decode one UTF-8 rune like Go: an invalid byte is U+FFFD of length 1. */
static int32_t
utf8_decode (const char *s, size_t len, size_t *n)
{
  const unsigned char *u = (const unsigned char *) s;
  int32_t r;
  size_t need, i;

  if (len == 0)
    {
      *n = 0;
      return 0xFFFD;
    }
  if (u[0] < 0x80)
    {
      *n = 1;
      return u[0];
    }
  if ((u[0] & 0xE0) == 0xC0)
    need = 2, r = u[0] & 0x1F;
  else if ((u[0] & 0xF0) == 0xE0)
    need = 3, r = u[0] & 0x0F;
  else if ((u[0] & 0xF8) == 0xF0)
    need = 4, r = u[0] & 0x07;
  else
    {
      *n = 1;
      return 0xFFFD;
    }
  if (len < need)
    {
      *n = 1;
      return 0xFFFD;
    }
  for (i = 1; i < need; i++)
    {
      if ((u[i] & 0xC0) != 0x80)
        {
          *n = 1;
          return 0xFFFD;
        }
      r = (r << 6) | (u[i] & 0x3F);
    }
  if ((need == 2 && r < 0x80) || (need == 3 && r < 0x800) || (need == 4 && r < 0x10000)
      || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
    {
      *n = 1;
      return 0xFFFD;
    }
  *n = need;
  return r;
}

/* ------------------------------------------------------------------ */
/* Go's filepath.Match, byte for byte                                   */
/* ------------------------------------------------------------------ */

#define GLOB_BAD (-1)

/* getEsc: one (possibly escaped) rune of a character class. */
static int
class_esc (const char **chunk, size_t *clen, int32_t *r)
{
  const char *c = *chunk;
  size_t len = *clen, n;

  if (len == 0 || c[0] == '-' || c[0] == ']')
    return GLOB_BAD;
  if (c[0] == '\\')
    {
      c++, len--;
      if (len == 0)
        return GLOB_BAD;
    }
  *r = utf8_decode (c, len, &n);
  if (*r == 0xFFFD && n == 1 && (unsigned char) c[0] >= 0x80)
    return GLOB_BAD;
  c += n, len -= n;
  if (len == 0)
    return GLOB_BAD;
  *chunk = c;
  *clen = len;
  return 0;
}

/* Parse the class starting after '[' (chunk points after it); on return
 * *chunk points after the closing ']'.  *matched tells whether r is in it.
 * The check lo <= hi is ours: patternmatcher accepts "[z-a]" here but then
 * fails to compile it as a regexp on every match. */
static int
class_match (const char **chunk, size_t *clen, int32_t r, bool *matched, bool strict)
{
  bool negated = false, match = false;
  int nrange = 0;

  if (*clen > 0 && **chunk == '^')
    {
      negated = true;
      (*chunk)++, (*clen)--;
    }
  for (;;)
    {
      int32_t lo, hi;
      if (*clen > 0 && **chunk == ']' && nrange > 0)
        {
          (*chunk)++, (*clen)--;
          break;
        }
      if (class_esc (chunk, clen, &lo) < 0)
        return GLOB_BAD;
      hi = lo;
      if (**chunk == '-')
        {
          (*chunk)++, (*clen)--;
          if (class_esc (chunk, clen, &hi) < 0)
            return GLOB_BAD;
        }
      if (strict && lo > hi)
        return GLOB_BAD;
      if (lo <= r && r <= hi)
        match = true;
      nrange++;
    }
  *matched = match != negated;
  return 0;
}

/* matchChunk: returns 1 and sets *rest on match, 0 on no match, GLOB_BAD. */
static int
match_chunk (const char *chunk, size_t clen, const char *s, size_t slen, size_t *rest)
{
  bool failed = false;
  size_t si = 0;

  while (clen > 0)
    {
      if (!failed && si == slen)
        failed = true;
      switch (chunk[0])
        {
        case '[':
          {
            int32_t r = 0;
            bool m = false;
            if (!failed)
              {
                size_t n;
                r = utf8_decode (s + si, slen - si, &n);
                si += n;
              }
            chunk++, clen--;
            if (class_match (&chunk, &clen, r, &m, false) < 0)
              return GLOB_BAD;
            if (!m)
              failed = true;
            break;
          }
        case '?':
          if (!failed)
            {
              size_t n;
              if (s[si] == '/')
                failed = true;
              utf8_decode (s + si, slen - si, &n);
              si += n;
            }
          chunk++, clen--;
          break;
        case '\\':
          chunk++, clen--;
          if (clen == 0)
            return GLOB_BAD;
          /* fallthrough */
        default:
          if (!failed)
            {
              if (chunk[0] != s[si])
                failed = true;
              si++;
            }
          chunk++, clen--;
          break;
        }
    }
  if (failed)
    return 0;
  *rest = si;
  return 1;
}

static void
scan_chunk (const char **pat, size_t *plen, bool *star, const char **chunk, size_t *clen)
{
  const char *p = *pat;
  size_t len = *plen, i;
  bool inrange = false;

  *star = false;
  while (len > 0 && p[0] == '*')
    p++, len--, *star = true;
  for (i = 0; i < len; i++)
    {
      if (p[i] == '\\')
        {
          if (i + 1 < len)
            i++;
        }
      else if (p[i] == '[')
        inrange = true;
      else if (p[i] == ']')
        inrange = false;
      else if (p[i] == '*' && !inrange)
        break;
    }
  *chunk = p;
  *clen = i;
  *pat = p + i;
  *plen = len - i;
}

/* filepath.Match(pattern, name): 1 match, 0 no match, GLOB_BAD. */
int
ob_path_match (const char *pattern, const char *name)
{
  const char *pat = pattern, *s = name;
  size_t plen = strlen (pattern), slen = strlen (name);

  while (plen > 0)
    {
      bool star;
      const char *chunk;
      size_t clen, rest = 0;
      int r;

      scan_chunk (&pat, &plen, &star, &chunk, &clen);
      if (star && clen == 0)
        return memchr (s, '/', slen) == NULL;
      r = match_chunk (chunk, clen, s, slen, &rest);
      if (r == 1 && (rest == slen || plen > 0))
        {
          s += rest, slen -= rest;
          continue;
        }
      if (r < 0)
        return r;
      if (star)
        {
          bool found = false;
          for (size_t i = 0; i < slen && s[i] != '/'; i++)
            {
              r = match_chunk (chunk, clen, s + i + 1, slen - i - 1, &rest);
              if (r == 1)
                {
                  if (plen == 0 && rest < slen - i - 1)
                    continue;
                  s += i + 1 + rest;
                  slen -= i + 1 + rest;
                  found = true;
                  break;
                }
              if (r < 0)
                return r;
            }
          if (found)
            continue;
        }
      /* Before returning false, check the rest of the pattern is valid. */
      while (plen > 0)
        {
          scan_chunk (&pat, &plen, &star, &chunk, &clen);
          if (match_chunk (chunk, clen, "", 0, &rest) < 0)
            return GLOB_BAD;
        }
      return 0;
    }
  return slen == 0;
}

/* ------------------------------------------------------------------ */
/* ignore patterns                                                      */
/* ------------------------------------------------------------------ */

/* patternmatcher compiles each pattern to a regexp; we compile it to the
 * same list of pieces, one state each:
 *   c  -> that byte     ?  -> [^/]      [..] -> class (any rune, '/' too)
 *   *  -> [^/]*         ** -> (.*\/)? (two states: before, inside)
 *   ** at the end -> .*     \c -> literal c
 * and run them as an NFA (every state at once, one byte after the other),
 * so matching costs O(states x bytes) whatever the pattern: a backtracking
 * matcher takes exponential time on "*a*a*a*a*a*a*a*a*a*a*b" against a name
 * of 40 'a's, and the context is not to be trusted with that.
 * A pattern starting with "**" and otherwise literal is a suffix match,
 * as in patternmatcher (so "**file" also matches "xfile"). */
enum tok_kind
{
  TOK_BYTE,
  TOK_QMARK,
  TOK_STAR,
  TOK_CLASS,
  TOK_DSTAR_MID, /* always followed by TOK_DSTAR_IN */
  TOK_DSTAR_IN,
  TOK_DSTAR_END,
};

struct tok
{
  enum tok_kind kind;
  const char *s; /* class text after '[' */
  size_t len;    /* its length */
  unsigned char c; /* TOK_BYTE */
};

struct pattern
{
  char *text; /* cleaned, without '!' */
  bool exclusion;
  bool suffix; /* suffix match on text + 2 */
  struct tok *toks;
  size_t ntoks;
};

struct ob_ignore
{
  struct pattern *pats;
  size_t n;
  bool exceptions;
};

static void
tok_add (struct pattern *p, enum tok_kind kind, const char *s, size_t len)
{
  if (kind == TOK_BYTE)
    {
      /* one state per byte */
      for (size_t i = 0; i < len; i++)
        {
          p->toks = ob_xrealloc (p->toks, (p->ntoks + 1) * sizeof *p->toks);
          p->toks[p->ntoks] = (struct tok){ .kind = TOK_BYTE, .c = (unsigned char) s[i] };
          p->ntoks++;
        }
      return;
    }
  p->toks = ob_xrealloc (p->toks, (p->ntoks + 1) * sizeof *p->toks);
  p->toks[p->ntoks] = (struct tok){ .kind = kind, .s = s, .len = len };
  p->ntoks++;
}

static int
pattern_compile (struct pattern *p)
{
  const char *s = p->text;
  size_t len = strlen (s), i = 0;
  bool regexp = false, suffix = false;

  for (int iter = 0; i < len; iter++)
    {
      char ch = s[i];
      if (ch == '*')
        {
          if (i + 1 < len && s[i + 1] == '*')
            {
              i += 2;
              if (i < len && s[i] == '/')
                i++;
              tok_add (p, i == len ? TOK_DSTAR_END : TOK_DSTAR_MID, NULL, 0);
              if (i < len)
                tok_add (p, TOK_DSTAR_IN, NULL, 0);
              /* a leading "**" makes it a suffix match unless a later
               * wildcard needs the general matcher */
              if (iter == 0)
                suffix = true;
              else
                regexp = true;
            }
          else
            {
              tok_add (p, TOK_STAR, NULL, 0);
              regexp = true;
              i++;
            }
        }
      else if (ch == '?')
        {
          tok_add (p, TOK_QMARK, NULL, 0);
          regexp = true;
          i++;
        }
      else if (ch == '\\')
        {
          i++;
          if (i < len)
            {
              size_t n;
              utf8_decode (s + i, len - i, &n);
              tok_add (p, TOK_BYTE, s + i, n);
              regexp = true;
              i += n;
            }
          else
            return GLOB_BAD;
        }
      else if (ch == '[')
        {
          const char *c = s + i + 1;
          size_t clen = len - i - 1;
          bool m;
          if (class_match (&c, &clen, 0, &m, true) < 0)
            return GLOB_BAD;
          tok_add (p, TOK_CLASS, s + i + 1, (size_t) (c - (s + i + 1)));
          regexp = true;
          i = (size_t) (c - s);
        }
      else
        {
          tok_add (p, TOK_BYTE, s + i, 1);
          if (ch == ']')
            regexp = true;
          i++;
        }
    }
  /* "**" first and nothing but literals afterwards: a plain suffix test. */
  p->suffix = suffix && !regexp;
  return 0;
}

/* Thompson simulation of the states t[0..nt) over s; state nt accepts.
 * With parents, a match of s up to one of its '/' counts too (the prefix
 * is a parent directory): one pass answers for s and all its parents.
 * A rune (for '?' and classes) is up to 4 bytes, so the states active at
 * positions i..i+4 are kept, in rows indexed by position modulo 5.  The
 * only moves without input go from a state to the next one, so one pass
 * over the states in order computes the closure. */
static bool
toks_match (const struct tok *t, size_t nt, const char *s, bool parents)
{
  enum { NROWS = 5 };
  size_t slen = strlen (s), w = nt + 1;
  unsigned char small[NROWS * 64]; /* most patterns: no allocation per match */
  cleanup_free unsigned char *big = NROWS * w > sizeof small ? ob_xmalloc0 (NROWS * w) : NULL;
  unsigned char *rows = big ? big : small;
  bool alive = true;

  if (big == NULL)
    memset (rows, 0, NROWS * w);
  rows[0] = 1;
  for (size_t i = 0; i <= slen && alive; i++)
    {
      unsigned char *cur = rows + (i % NROWS) * w;
      bool at_end = i == slen;

      for (size_t k = 0; k < nt; k++)
        {
          size_t n;
          int32_t r;
          if (!cur[k])
            continue;
          switch (t[k].kind)
            {
            case TOK_BYTE:
              if (!at_end && (unsigned char) s[i] == t[k].c)
                rows[((i + 1) % NROWS) * w + k + 1] = 1;
              break;
            case TOK_QMARK:
            case TOK_CLASS:
              if (at_end)
                break;
              r = utf8_decode (s + i, slen - i, &n);
              if (t[k].kind == TOK_QMARK)
                {
                  if (s[i] == '/')
                    break;
                }
              else
                {
                  const char *c = t[k].s;
                  size_t clen = t[k].len;
                  bool m = false;
                  if (class_match (&c, &clen, r, &m, true) < 0 || !m)
                    break;
                }
              rows[((i + n) % NROWS) * w + k + 1] = 1;
              break;
            case TOK_STAR: /* [^/]* */
              cur[k + 1] = 1;
              if (!at_end && s[i] != '/')
                rows[((i + 1) % NROWS) * w + k] = 1;
              break;
            case TOK_DSTAR_MID: /* (.*\/)?: nothing, or into the next state */
              cur[k + 2] = 1;
              /* fallthrough */
            case TOK_DSTAR_IN: /* inside .*\/: any byte; a '/' may end it */
              {
                size_t in = t[k].kind == TOK_DSTAR_MID ? k + 1 : k;
                if (!at_end)
                  {
                    rows[((i + 1) % NROWS) * w + in] = 1;
                    if (s[i] == '/')
                      rows[((i + 1) % NROWS) * w + in + 1] = 1;
                  }
              }
              break;
            case TOK_DSTAR_END: /* .* to the end */
              return true;
            }
        }
      if (at_end)
        return cur[nt] != 0;
      if (parents && s[i] == '/' && cur[nt])
        return true;
      /* this row is reused for position i + NROWS */
      memset (cur, 0, w);
      alive = false;
      for (size_t j = 1; j < NROWS && !alive; j++)
        alive = memchr (rows + ((i + j) % NROWS) * w, 1, w) != NULL;
    }
  return false;
}

static bool
suffix_match (const struct pattern *p, const char *path, size_t len)
{
  const char *suf = p->text + 2;
  size_t n = strlen (suf);
  if (len >= n && memcmp (path + len - n, suf, n) == 0)
    return true;
  return suf[0] == '/' && len == n - 1 && memcmp (path, suf + 1, len) == 0;
}

/* Does p match path or one of its parent directories (patternmatcher's
 * MatchesOrParentMatches for one pattern)?  Linear in pattern x path:
 * the parents are not matched one by one. */
static bool
pattern_match (const struct pattern *p, const char *path)
{
  if (p->suffix)
    {
      for (const char *q = strchr (path, '/'); q; q = strchr (q + 1, '/'))
        if (suffix_match (p, path, (size_t) (q - path)))
          return true;
      return suffix_match (p, path, strlen (path));
    }
  return toks_match (p->toks, p->ntoks, path, true);
}

void
ob_ignore_free (struct ob_ignore *ig)
{
  if (ig == NULL)
    return;
  for (size_t i = 0; i < ig->n; i++)
    {
      free (ig->pats[i].text);
      free (ig->pats[i].toks);
    }
  free (ig->pats);
  free (ig);
}

static void
ob_ignore_freep (struct ob_ignore **ig)
{
  ob_ignore_free (*ig);
}
#define cleanup_ignore __attribute__ ((cleanup (ob_ignore_freep)))

static char *
trim_space (char *s)
{
  char *e;
  while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == '\v' || *s == '\f')
    s++;
  e = s + strlen (s);
  while (e > s
         && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n' || e[-1] == '\v'
             || e[-1] == '\f'))
    *--e = '\0';
  return s;
}

/* One line, as ignorefile.ReadAll then patternmatcher.New see it. */
static int
ignore_add_line (struct ob_ignore *ig, const char *name, int lineno, char *line, ob_error_t *err)
{
  cleanup_free char *cleaned = NULL;
  struct pattern p = { 0 };
  char *pat;
  bool invert;

  if (line[0] == '#')
    return 0;
  pat = trim_space (line);
  if (*pat == '\0')
    return 0;
  invert = pat[0] == '!';
  if (invert)
    {
      pat = trim_space (pat + 1);
      if (*pat == '\0')
        return ob_error_make (err, OB_ERR_CONTEXT, 0, "%s:%d: illegal exclusion pattern: \"!\"",
                              name, lineno);
    }
  cleaned = ob_path_clean (pat);
  p.exclusion = invert;
  p.text = ob_xstrdup (cleaned[0] == '/' && cleaned[1] != '\0' ? cleaned + 1 : cleaned);
  if (ob_path_match (p.text, ".") < 0 || pattern_compile (&p) < 0)
    {
      ob_error_make (err, OB_ERR_CONTEXT, 0, "%s:%d: bad pattern `%s%s`: syntax error in pattern",
                     name, lineno, invert ? "!" : "", p.text);
      free (p.text);
      free (p.toks);
      return -1;
    }
  if (invert)
    ig->exceptions = true;
  ig->pats = ob_xrealloc (ig->pats, (ig->n + 1) * sizeof *ig->pats);
  ig->pats[ig->n++] = p;
  return 0;
}

int
ob_ignore_parse (const char *name, const char *text, struct ob_ignore **out, ob_error_t *err)
{
  cleanup_ignore struct ob_ignore *ig = ob_xmalloc0 (sizeof *ig);
  const char *p = text ? text : "";
  int lineno = 0;

  if (ob_str_has_prefix (p, "\xEF\xBB\xBF"))
    p += 3;
  while (*p)
    {
      const char *e = strchr (p, '\n');
      size_t n = e ? (size_t) (e - p) : strlen (p);
      cleanup_free char *line = ob_xstrndup (p, n);
      lineno++;
      if (ignore_add_line (ig, name, lineno, line, err) < 0)
        return -1;
      p += n;
      if (*p == '\n')
        p++;
    }
  *out = steal_pointer (&ig);
  return 0;
}

/* patternmatcher's MatchesOrParentMatches. */
bool
ob_ignore_match (const struct ob_ignore *ig, const char *relpath)
{
  cleanup_free char *file = NULL;
  bool matched = false;

  if (ig == NULL || ig->n == 0)
    return false;
  file = ob_path_clean (relpath);
  if (strcmp (file, ".") == 0)
    return false;
  for (size_t i = 0; i < ig->n; i++)
    {
      const struct pattern *p = &ig->pats[i];
      if (p->exclusion != matched)
        continue;
      if (pattern_match (p, file))
        matched = !p->exclusion;
    }
  return matched;
}

bool
ob_ignore_has_exceptions (const struct ob_ignore *ig)
{
  return ig != NULL && ig->exceptions;
}
