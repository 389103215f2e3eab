/* Internal to the layer module: parallel gzip (see pgzip.c). */
#ifndef OBUILD_PGZIP_H
#define OBUILD_PGZIP_H

#include <obuild/error.h>
#include <obuild/util.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int (*ob_pgzip_emit_fn) (void *data, const void *buf, size_t n, ob_error_t *err);

struct ob_pgzip;
/* hash_in (or NULL): given each block's input in order, on a thread of its
 * own; complete once ob_pgzip_finish returns. */
struct ob_pgzip *ob_pgzip_new (int level, bool isal, int threads, struct ob_sha256 *hash_in,
                               ob_pgzip_emit_fn emit, void *emit_data);
int ob_pgzip_write (struct ob_pgzip *p, const void *data, size_t n, ob_error_t *err);
/* End the block being filled, if it holds anything: the next byte starts
 * a member.  The layer writer cuts around a big file's data, so that its
 * members depend on that file alone (and can be made ahead). */
int ob_pgzip_cut (struct ob_pgzip *p, ob_error_t *err);
/* Offer, before the first byte of a block is written, the member the
 * block is expected to compress to (n bytes at off in fd).  A worker uses
 * it only when its gzip trailer has the CRC-32 and length of the block's
 * input (the member is then what compressing the block gives); else, or
 * when it cannot be read, the block is compressed.  Ignored when the
 * block already holds bytes.  The caller vouches for the rest: offer only
 * members made from the same file, unchanged since (layer_precomp.c). */
int ob_pgzip_offer (struct ob_pgzip *p, int fd, uint64_t off, size_t n, ob_error_t *err);
/* Input bytes of the blocks whose offered member was used. */
uint64_t ob_pgzip_reused (const struct ob_pgzip *p);
/* The block size, and the largest member a block can give. */
size_t ob_pgzip_block_size (void);
size_t ob_pgzip_member_bound (void);

/* One block compressed as the pool compresses it (same level, same
 * compressor: the same bytes), for members made ahead. */
struct ob_pgzip_compressor;
struct ob_pgzip_compressor *ob_pgzip_compressor_new (int level, bool isal);
/* The member's size in out (cap bytes, ob_pgzip_member_bound), 0 on failure. */
size_t ob_pgzip_compress (struct ob_pgzip_compressor *c, const void *in, size_t n, void *out, size_t cap);
void ob_pgzip_compressor_free (struct ob_pgzip_compressor *c);
int ob_pgzip_finish (struct ob_pgzip *p, ob_error_t *err);
void ob_pgzip_free (struct ob_pgzip *p);

#endif
