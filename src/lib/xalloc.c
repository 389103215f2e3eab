/* xalloc: allocation that aborts on OOM and never returns NULL.  The
 * bottom of the library: it uses nothing of obuild (error.c and util.c
 * both build on it). */
#include "config.h"
#include <obuild/xalloc.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Noreturn void
ob_oom (void)
{
  static const char msg[] = "obuild: out of memory\n";
  if (write (2, msg, sizeof msg - 1) < 0)
    abort ();
  abort ();
}

void *
ob_xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (p == NULL)
    ob_oom ();
  return p;
}

void *
ob_xmalloc0 (size_t n)
{
  void *p = calloc (1, n ? n : 1);
  if (p == NULL)
    ob_oom ();
  return p;
}

void *
ob_xrealloc (void *p, size_t n)
{
  p = realloc (p, n ? n : 1);
  if (p == NULL)
    ob_oom ();
  return p;
}

char *
ob_xstrdup (const char *s)
{
  char *r;
  if (s == NULL)
    return NULL;
  r = strdup (s);
  if (r == NULL)
    ob_oom ();
  return r;
}

char *
ob_xstrndup (const char *s, size_t n)
{
  char *r = strndup (s, n);
  if (r == NULL)
    ob_oom ();
  return r;
}

char *
ob_xasprintf (const char *fmt, ...)
{
  va_list ap;
  char *r;
  va_start (ap, fmt);
  if (vasprintf (&r, fmt, ap) < 0)
    ob_oom ();
  va_end (ap);
  return r;
}
