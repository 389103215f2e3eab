/* Internal to the layer module (layer.c, layer_extract.c). */
#ifndef OBUILD_LAYER_PRIV_H
#define OBUILD_LAYER_PRIV_H

#include <locale.h>

/* libarchive converts names between the locale's charset and the UTF-8 of
 * pax headers; the layer code runs under C.UTF-8 whatever the process
 * locale is, so the bytes written (and the names read) do not depend on the
 * environment.  Scope it with cleanup_locale. */
locale_t ob_layer_enter_utf8 (void);
void ob_layer_leave_locale (locale_t *old);
#define cleanup_locale __attribute__ ((cleanup (ob_layer_leave_locale)))

#endif
