/* libFuzzer harness: the .dockerignore parser and matcher, plus the Go path
 * helpers under them (ob_path_clean, ob_path_match).
 *
 * Input: the .dockerignore text, then a NUL byte, then context-relative path
 * names one per line.  Without a NUL the whole input is the pattern file and
 * its own lines double as path names (a pattern tried on its own text finds
 * the escapes and classes that need care).  A few fixed paths are always
 * tried too.
 *
 * The build asks ob_ignore_match once per file of the context, so matching
 * costs patterns x path depth; the harness caps the number and length of the
 * paths it tries (not the patterns) so that a correct, polynomial matcher
 * stays far from the timeout while an exponential one does not. */
#include "config.h"
#include <obuild/context.h>
#include <obuild/util.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATHS 16
#define MAX_PATH_LEN 256
#define MAX_DIRECT 64 /* pattern lines tried directly with ob_path_match */

static const char *const fixed_paths[] = {
  "Dockerfile", "a", "a/b", "a/b/c.txt", "node_modules/x/y.js", ".git/HEAD", "dir/sub/.hidden",
};

/* Go's Clean is idempotent; the matcher relies on it. */
static void
check_clean (const char *p)
{
  char *c1 = ob_path_clean (p);
  char *c2 = ob_path_clean (c1);
  if (*c1 == '\0' || strcmp (c1, c2) != 0)
    abort ();
  free (c1);
  free (c2);
}

static void
try_path (const struct ob_ignore *ig, char **lines, size_t n_lines, const char *path)
{
  check_clean (path);
  (void) ob_ignore_match (ig, path);
  for (size_t i = 0; i < n_lines && i < MAX_DIRECT; i++)
    {
      int r = ob_path_match (lines[i], path);
      if (r < -1 || r > 1)
        abort ();
    }
}

/* Split s (modified) at '\n' into at most max pieces. */
static size_t
split_lines (char *s, char **out, size_t max)
{
  size_t n = 0;
  while (*s && n < max)
    {
      char *e = strchr (s, '\n');
      out[n++] = s;
      if (e == NULL)
        break;
      *e = '\0';
      s = e + 1;
    }
  return n;
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const uint8_t *nul = memchr (data, '\0', size);
  size_t plen = nul ? (size_t) (nul - data) : size;
  char *patterns = ob_xstrndup ((const char *) data, plen);
  char *names = nul ? ob_xstrndup ((const char *) nul + 1, size - plen - 1) : ob_xstrdup (patterns);
  char *plines_buf = ob_xstrdup (patterns);
  char *plines[MAX_DIRECT];
  char *paths[MAX_PATHS];
  size_t n_plines, n_paths;
  struct ob_ignore *ig = NULL;
  ob_error_t err = NULL;

  if (ob_ignore_parse (".dockerignore", patterns, &ig, &err) < 0)
    {
      if (err == NULL || err->kind != OB_ERR_CONTEXT || err->msg == NULL
          || strncmp (err->msg, ".dockerignore:", 14) != 0)
        abort (); /* errors are OB_ERR_CONTEXT naming the file and line */
      ob_error_free (&err);
      ig = NULL; /* the matcher must take the empty set too */
    }
  else if (ig == NULL)
    abort ();

  n_plines = split_lines (plines_buf, plines, MAX_DIRECT);
  n_paths = split_lines (names, paths, MAX_PATHS);
  for (size_t i = 0; i < sizeof fixed_paths / sizeof fixed_paths[0]; i++)
    try_path (ig, plines, n_plines, fixed_paths[i]);
  for (size_t i = 0; i < n_paths; i++)
    {
      if (strlen (paths[i]) > MAX_PATH_LEN)
        paths[i][MAX_PATH_LEN] = '\0';
      try_path (ig, plines, n_plines, paths[i]);
    }
  (void) ob_ignore_has_exceptions (ig);

  ob_ignore_free (ig);
  free (plines_buf);
  free (names);
  free (patterns);
  return 0;
}
