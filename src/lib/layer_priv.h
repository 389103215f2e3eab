/* Internal to the layer module (layer.c, layer_extract.c). */
#ifndef OBUILD_LAYER_PRIV_H
#define OBUILD_LAYER_PRIV_H

#include <obuild/error.h>
#include <obuild/layer.h>

#include <locale.h>
#include <stdbool.h>
#include <stddef.h>

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

/* Tell fn (when not NULL) of the tar entry e. */
struct archive_entry;
void ob_layer_entry_tell (ob_layer_entry_fn fn, void *data, struct archive_entry *e);

/* When value (len bytes) is a valid OB_LAYER_DEVICE_XATTR, make e that
 * device (type, rdev, size 0, mode's permission bits) and return true;
 * else leave e alone (layer_device.c). */
bool ob_layer_device_entry (struct archive_entry *e, const char *value, size_t len, mode_t mode);

/* A set of strings (the paths an archive has had so far). */
struct ob_strset
{
  char **slots;
  size_t cap; /* power of two */
  size_t n;
};
bool ob_strset_has (const struct ob_strset *set, const char *s);
void ob_strset_add (struct ob_strset *set, const char *s);
void ob_strset_free (struct ob_strset *set);

#endif
