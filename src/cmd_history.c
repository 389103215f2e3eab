/* obuild history: the history of an image, as docker history shows it. */
#include "config.h"
#include "cli.h"
#include <obuild/imagecmd.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* docker's (go-units) HumanDuration, with " ago". */
static char *
human_ago (const char *created)
{
  struct tm tm;
  time_t t, now = time (NULL);
  double s, m, h;
  char *end;
  memset (&tm, 0, sizeof tm);
  if (created == NULL || (end = strptime (created, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
    return ob_xstrdup ("");
  t = timegm (&tm);
  s = difftime (now, t);
  if (s < 0)
    return ob_xstrdup (created); /* in the future: the date itself */
  m = s / 60, h = m / 60;
  if (s < 1)
    return ob_xstrdup ("Less than a second ago");
  if (s < 2)
    return ob_xstrdup ("1 second ago");
  if (s < 60)
    return ob_xasprintf ("%d seconds ago", (int) s);
  if (m < 2)
    return ob_xstrdup ("About a minute ago");
  if (m < 60)
    return ob_xasprintf ("%d minutes ago", (int) m);
  if (h < 2)
    return ob_xstrdup ("About an hour ago");
  if (h < 48)
    return ob_xasprintf ("%d hours ago", (int) h);
  if (h < 24 * 7 * 2)
    return ob_xasprintf ("%d days ago", (int) (h / 24));
  if (h < 24 * 30 * 2)
    return ob_xasprintf ("%d weeks ago", (int) (h / 24 / 7));
  if (h < 24 * 365 * 2)
    return ob_xasprintf ("%d months ago", (int) (h / 24 / 30));
  return ob_xasprintf ("%d years ago", (int) (h / 24 / 365));
}

/* go-units HumanSizeWithPrecision (size, 3): decimal units, "0B", "1.23kB". */
static char *
human_size (int64_t n)
{
  static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB" };
  double v = (double) n;
  size_t u = 0;
  while (v >= 1000 && u + 1 < sizeof units / sizeof *units)
    v /= 1000, u++;
  return ob_xasprintf ("%.3g%s", v, units[u]);
}

/* created_by as docker shows it: whitespace runs folded, 45 columns. */
static char *
shorten (const char *s, size_t max, bool trunc)
{
  struct ob_buf b = { 0 };
  char *out;
  for (const char *p = s; *p; p++)
    {
      if (*p == '\n' || *p == '\t')
        ob_buf_addc (&b, ' ');
      else
        ob_buf_addc (&b, *p);
    }
  ob_buf_addc (&b, '\0');
  out = ob_buf_steal (&b);
  if (trunc && strlen (out) > max)
    {
      char *t = ob_xasprintf ("%.*s\xe2\x80\xa6", (int) max - 1, out); /* … as docker ends it */
      free (out);
      out = t;
    }
  return out;
}

static size_t
utf8_width (const char *s)
{
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char) *s & 0xc0) != 0x80)
      n++;
  return n;
}

int
cmd_history (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_store *store = NULL;
  struct ob_history_row *rows = NULL;
  const char *image = NULL;
  bool trunc = true, quiet = false;
  size_t n = 0;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--no-trunc") == 0)
        trunc = false;
      else if (strcmp (argv[i], "-q") == 0 || strcmp (argv[i], "--quiet") == 0)
        quiet = true;
      else if (strcmp (argv[i], "--help") == 0)
        {
          printf ("Usage: obuild history [--no-trunc] [-q] IMAGE\n\n"
                  "Show the history of IMAGE, newest first: the image id (the config digest) on the newest\n"
                  "entry, when and by which instruction each entry was made, and the size of its layer\n"
                  "blob (0B for entries that made no layer).  -q prints only the ids.\n");
          return 0;
        }
      else if (argv[i][0] == '-' && argv[i][1])
        return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild history --help`)", argv[i]);
      else if (image)
        return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild history [--no-trunc] [-q] IMAGE");
      else
        image = argv[i];
    }
  if (image == NULL)
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild history [--no-trunc] [-q] IMAGE");
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    return -1;
  if (ob_imagecmd_history (store->oci, image, &rows, &n, err) < 0)
    {
      ob_store_close (store);
      return -1;
    }
  {
    /* columns as docker's tabwriter lays them out: as wide as their widest
     * cell (in characters), three spaces apart */
    char **cells = ob_xmalloc0 ((n + 1) * 5 * sizeof *cells);
    size_t w[5] = { 0 };
    cells[0] = ob_xstrdup ("IMAGE");
    cells[1] = ob_xstrdup ("CREATED");
    cells[2] = ob_xstrdup ("CREATED BY");
    cells[3] = ob_xstrdup ("SIZE");
    cells[4] = ob_xstrdup ("COMMENT");
    for (size_t i = 0; i < n; i++)
      {
        char **c = cells + (i + 1) * 5;
        if (rows[i].id == NULL)
          c[0] = ob_xstrdup ("<missing>");
        else
          c[0] = trunc ? ob_xstrndup (rows[i].id + 7, 12) : ob_xstrdup (rows[i].id);
        c[1] = human_ago (rows[i].created);
        c[2] = shorten (rows[i].created_by, 45, trunc);
        c[3] = human_size (rows[i].size);
        c[4] = ob_xstrdup (rows[i].comment);
      }
    for (size_t i = 0; i < (n + 1) * 5; i++)
      if (utf8_width (cells[i]) > w[i % 5])
        w[i % 5] = utf8_width (cells[i]);
    for (size_t i = quiet ? 1 : 0; i <= n; i++)
      {
        char **c = cells + i * 5;
        if (quiet)
          {
            printf ("%s\n", c[0]);
            continue;
          }
        for (size_t k = 0; k < 4; k++)
          printf ("%s%*s", c[k], (int) (w[k] - utf8_width (c[k]) + 3), "");
        printf ("%s\n", c[4]);
      }
    for (size_t i = 0; i < (n + 1) * 5; i++)
      free (cells[i]);
    free (cells);
  }
  ob_history_rows_free (rows, n);
  ob_store_close (store);
  return 0;
}
