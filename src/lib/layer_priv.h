/* Internal to the layer module (layer.c, layer_write.c, layer_extract.c,
 * layer_device.c). */
#ifndef OBUILD_LAYER_PRIV_H
#define OBUILD_LAYER_PRIV_H

#include <obuild/error.h>
#include <obuild/layer.h>

#include <locale.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

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
/* ... and the digest of a gzip stream's content (ob_layer_archive_digest) */
int ob_layer_open_reader_digest (int fd, struct archive **out, struct ob_layer_stream **stream, ob_error_t *err);

/* Tell fn (when not NULL) of the tar entry e. */
struct archive_entry;
void ob_layer_entry_tell (ob_layer_entry_fn fn, void *data, struct archive_entry *e);

/* When value (len bytes) is a valid OB_LAYER_DEVICE_XATTR, make e that
 * device (type, rdev, size 0, mode's permission bits) and return true;
 * else leave e alone (layer_device.c). */
bool ob_layer_device_entry (struct archive_entry *e, const char *value, size_t len, mode_t mode);

/* Bytes of a layer writer's dbuf: the piece entry data is copied in (a
 * divisor of pgzip's block). */
#define OB_LAYER_CHUNK 65536

/* A regular file this big or bigger has gzip members of its own (the
 * writer cuts the stream before its data and after its padding), which
 * layer_precomp.c can make ahead. */
#define OB_LAYER_SPLIT_MIN 32768

struct ob_pgzip;
struct precomp_file;
/* The file made ahead for path when it is still the inode st says, with
 * the size st says (its content is checked block by block later), and pc
 * was made for opts' compressor; else NULL. */
const struct precomp_file *ob_layer_precomp_find (const struct ob_layer_precomp *pc,
                                                  const struct ob_layer_opts *opts, const char *path,
                                                  const struct stat *st);
/* Offer f's k-th member to pgz (ob_pgzip_offer). */
int ob_layer_precomp_offer (const struct ob_layer_precomp *pc, const struct precomp_file *f, struct ob_pgzip *pgz,
                            uint64_t k, ob_error_t *err);

/* The layer writer (layer.c): libarchive's tar -> sha256(tar) -> compressor
 * -> sha256(blob) -> outfd, all streamed.  Used by ob_layer_write and
 * ob_layer_write_sources (layer_write.c) and ob_layer_import. */
struct ob_layer_writer
{
  struct archive *a;
  int outfd;
  enum ob_compression compression;
  z_stream z;
  bool z_init;
  gz_header gzh;
  ZSTD_CCtx *zc;
  struct ob_pgzip *pgz; /* gzip: parallel members */
  struct ob_sha256 *h_tar;
  struct ob_sha256 *h_blob;
  int64_t size;
  int64_t synced; /* bytes of the blob already handed to writeback */
  struct ob_layer_flusher *flusher; /* made durable ahead (layer.c), or NULL */
  unsigned char *obuf;
  size_t obuf_size;
  unsigned char *dbuf; /* OB_LAYER_CHUNK bytes for entry data */
  ob_error_t cb_err;   /* error raised inside write_cb */
  bool discard;        /* failed: let libarchive close without writing */
  char *dir;           /* the directory of the last entry, and its fd: */
  int dirfd;           /* entries come sorted, so most share it */
  ob_layer_entry_fn on_entry;
  void *on_entry_data;
  const struct ob_layer_opts *opts;
};

/* Open lw on outfd with opts' compression and on_entry; on failure,
 * ob_layer_writer_free it all the same. */
int ob_layer_writer_open (struct ob_layer_writer *lw, int outfd, const struct ob_layer_opts *opts,
                          ob_error_t *err);
/* Write e's header and tell lw's on_entry of it; then ob_layer_writer_data
 * writes the entry's data. */
int ob_layer_writer_add (struct ob_layer_writer *lw, struct archive_entry *e, ob_error_t *err);
int ob_layer_writer_data (struct ob_layer_writer *lw, const void *buf, size_t n, ob_error_t *err);
/* Write the entry's padding now (else the next header writes it). */
int ob_layer_writer_end_entry (struct ob_layer_writer *lw, ob_error_t *err);
/* End the tar and the compressor; res gets the two digests, the blob's
 * size and its media type. */
int ob_layer_writer_finish (struct ob_layer_writer *lw, struct ob_layer_result *res, ob_error_t *err);
void ob_layer_writer_free (struct ob_layer_writer *lw);

/* e's mtime, clamped to opts->mtime_max when opts->clamp_mtime. */
void ob_layer_set_mtime (struct archive_entry *e, int64_t sec, long nsec, const struct ob_layer_opts *opts);
/* Whether the xattr name goes into a layer: user.* except overlay's and
 * obuild's own, security.capability when caps. */
bool ob_layer_keep_xattr (const char *name, bool caps);

/* Free *e when set: scope an archive_entry with cleanup_entry. */
void ob_layer_entry_freep (struct archive_entry **e);
#define cleanup_entry __attribute__ ((cleanup (ob_layer_entry_freep)))

#endif
