#include "config.h"
#include <obuild/error.h>
#include <obuild/xalloc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
ob_error_make (ob_error_t *err, int kind, int status, const char *fmt, ...)
{
  va_list ap;
  char *msg = NULL;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  if (msg == NULL)
    ob_oom ();

  if (err == NULL)
    {
      free (msg);
      return -1;
    }
  ob_error_free (err);
  *err = ob_xmalloc0 (sizeof (**err));
  (*err)->kind = kind;
  (*err)->status = status;
  if (status != 0)
    {
      (*err)->msg = ob_xasprintf ("%s: %s", msg, strerror (status));
      free (msg);
    }
  else
    (*err)->msg = msg;
  return -1;
}

int
ob_error_wrap (ob_error_t *err, const char *fmt, ...)
{
  va_list ap;
  char *prefix = NULL;
  char *msg;

  if (err == NULL || *err == NULL)
    return -1;
  va_start (ap, fmt);
  if (vasprintf (&prefix, fmt, ap) < 0)
    ob_oom ();
  va_end (ap);
  msg = ob_xasprintf ("%s: %s", prefix, (*err)->msg);
  free (prefix);
  free ((*err)->msg);
  (*err)->msg = msg;
  return -1;
}

int
ob_error_set_kind (ob_error_t *err, int kind)
{
  if (err != NULL && *err != NULL)
    (*err)->kind = kind;
  return -1;
}

void
ob_error_free (ob_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free ((*err)->msg);
  free (*err);
  *err = NULL;
}
