/* xalloc: allocation that aborts on OOM, never returns NULL (xalloc.c). */
#ifndef OBUILD_XALLOC_H
#define OBUILD_XALLOC_H

#include <stddef.h>

_Noreturn void ob_oom (void);
void *ob_xmalloc (size_t n);
void *ob_xmalloc0 (size_t n);
void *ob_xrealloc (void *p, size_t n);
char *ob_xstrdup (const char *s);
char *ob_xstrndup (const char *s, size_t n);
char *ob_xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

#endif
