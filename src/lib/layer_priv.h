/* Internal to the layer module (layer.c, layer_extract.c). */
#ifndef OBUILD_LAYER_PRIV_H
#define OBUILD_LAYER_PRIV_H

#include <obuild/error.h>

#include <locale.h>

/* libarchive converts names between the locale's charset and the UTF-8 of
 * pax headers; the layer code runs under C.UTF-8 whatever the process
 * locale is, so the bytes written (and the names read) do not depend on the
 * environment.  Scope it with cleanup_locale. */
locale_t ob_layer_enter_utf8 (void);
void ob_layer_leave_locale (locale_t *old);
#define cleanup_locale __attribute__ ((cleanup (ob_layer_leave_locale)))

struct archive;
/* A libarchive reader for what ADD and image layers may contain: tar
 * (ustar, pax, GNU), uncompressed or gzip/bzip2/xz/zstd, like Docker (other
 * filters are left out: some run external programs).  err may be NULL. */
int ob_layer_open_reader (int fd, struct archive **out, ob_error_t *err);

#endif
