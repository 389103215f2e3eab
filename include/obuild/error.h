/* error: the one error convention of libobuild.
 *
 * Every fallible library function takes `ob_error_t *err` as its last
 * argument, returns < 0 on failure and fills *err.  Callers propagate with
 * `if (ret < 0) return ret;`.  Only the CLI prints an error, once, and maps
 * its kind to the process exit code (documented in obuild(1)). */
#ifndef OBUILD_ERROR_H
#define OBUILD_ERROR_H

#include <stdarg.h>

/* Error kinds double as process exit codes. Keep in sync with man/obuild.1. */
enum ob_error_kind
{
  OB_ERR_GENERIC = 1,    /* internal or unexpected failure */
  OB_ERR_USAGE = 2,      /* bad command line, invalid tag */
  OB_ERR_DOCKERFILE = 3, /* Dockerfile syntax or semantics */
  OB_ERR_CONTEXT = 4,    /* missing Dockerfile, COPY source missing/escaping */
  OB_ERR_STEP = 5,       /* a build step (RUN) failed */
  OB_ERR_STORE = 6,      /* store or other I/O failure */
  OB_ERR_USERNS = 7,     /* user namespaces unavailable */
  OB_ERR_REGISTRY = 8,   /* registry unreachable or refused */
  OB_ERR_IMAGE = 9,      /* malformed or hostile image, layer, layout */
  OB_ERR_INTERRUPTED = 130,
};

struct ob_error_s
{
  int kind;   /* enum ob_error_kind */
  int status; /* errno, or 0 */
  char *msg;  /* full message, errno text appended when status != 0 */
};
typedef struct ob_error_s *ob_error_t;

/* Create an error.  If *err already holds one, it is replaced.  status is an
 * errno value (0 for none); its strerror() is appended.  Returns -1. */
int ob_error_make (ob_error_t *err, int kind, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

/* Prefix an existing error with context: "ctx: old message".  Returns -1. */
int ob_error_wrap (ob_error_t *err, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* Replace the kind of an existing error (e.g. a generic I/O failure while
 * reading a COPY source becomes a context error).  Returns -1. */
int ob_error_set_kind (ob_error_t *err, int kind);

void ob_error_free (ob_error_t *err);

#endif
