/* curl_lazy: libcurl is opened (dlopen) the first time it is needed, not
 * by every obuild process at start-up (curl_lazy.c). */
#ifndef OBUILD_CURL_LAZY_H
#define OBUILD_CURL_LAZY_H

#include <obuild/error.h>

/* Load libcurl and initialize it, once per process.  Call before any curl_
 * function: 0, or -1 with err naming what could not be loaded. */
int ob_curl_load (ob_error_t *err);

#endif
