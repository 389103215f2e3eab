/* Internal to the layer module: parallel gzip (see pgzip.c). */
#ifndef OBUILD_PGZIP_H
#define OBUILD_PGZIP_H

#include <obuild/error.h>
#include <obuild/util.h>

#include <stdbool.h>
#include <stddef.h>

typedef int (*ob_pgzip_emit_fn) (void *data, const void *buf, size_t n, ob_error_t *err);

struct ob_pgzip;
/* hash_in (or NULL): given each block's input in order, on a thread of its
 * own; complete once ob_pgzip_finish returns. */
struct ob_pgzip *ob_pgzip_new (int level, bool isal, int threads, struct ob_sha256 *hash_in,
                               ob_pgzip_emit_fn emit, void *emit_data);
int ob_pgzip_write (struct ob_pgzip *p, const void *data, size_t n, ob_error_t *err);
int ob_pgzip_finish (struct ob_pgzip *p, ob_error_t *err);
void ob_pgzip_free (struct ob_pgzip *p);

#endif
