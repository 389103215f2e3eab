/* layer: the layer writer every layer goes through (tar -> sha256 ->
 * gzip/zstd -> sha256 -> the blob's fd), ob_layer_import (an archive made a
 * layer) and reading layers (ob_layer_read_file, ob_layer_is_archive,
 * ob_layer_diff_id), with what layer_priv.h shares with the other layer
 * files.  The entries of a layer written from disk (a change list or a
 * COPY's plan) are in layer_write.c, extraction in layer_extract.c. */
#include "config.h"
#include <obuild/layer.h>
#include <obuild/link_owner.h>
#include <obuild/util.h>
#include "layer_priv.h"
#include "pgzip.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/* libarchive converts names between the locale's charset and the UTF-8 of
 * pax headers; run it under C.UTF-8 whatever the process locale is, so the
 * bytes written (and the names read) do not depend on the environment. */
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;
static locale_t utf8_loc;

static void
utf8_init (void)
{
  utf8_loc = newlocale (LC_CTYPE_MASK, "C.UTF-8", (locale_t) 0);
}

locale_t
ob_layer_enter_utf8 (void)
{
  pthread_once (&utf8_once, utf8_init);
  return utf8_loc ? uselocale (utf8_loc) : (locale_t) 0;
}

void
ob_layer_leave_locale (locale_t *old)
{
  if (*old)
    uselocale (*old);
}

/* ---- the layer writer: tar -> sha256(tar) -> compressor -> sha256(blob) -> fd ----
 *
 * One object (struct ob_layer_writer, layer_priv.h) used by ob_layer_write
 * and ob_layer_write_sources (layer_write.c) and ob_layer_import: open, add
 * entries and their data, finish.  libarchive calls write_cb with the raw
 * tar bytes; everything downstream streams, so memory does not depend on
 * the layer. */

#define WRITEBACK_STEP ((int64_t) 8 << 20)
#define FLUSH_STEP ((int64_t) 32 << 20)

/* The blob made durable while it is still being written.  The store
 * fsyncs a blob before it publishes it, and on a journaled file system
 * that fsync also commits the journal, with everything the step created
 * (a RUN's upper directory: tens of thousands of new inodes); on a stacked
 * device (a loop file, as CI runners' job file systems often are) it
 * writes the blob through to the disk below.  Written back a few MiB at a
 * time, the blob still reaches the lower disk only at that fsync: 80 ms
 * of a 130 MB layer's commit on a loop ext4, with the CPUs idle.  So every
 * FLUSH_STEP bytes a thread of the writer fdatasyncs the blob, while the
 * rest is compressed; the store's fsync has the last piece left.  Errors
 * are ignored here: that fsync reports them. */
struct ob_layer_flusher
{
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int fd;
  int64_t asked, done; /* bytes asked for, bytes synced */
  bool stop;
};

static void *
flusher_main (void *arg)
{
  struct ob_layer_flusher *f = arg;
  pthread_mutex_lock (&f->mu);
  for (;;)
    {
      while (!f->stop && f->asked == f->done)
        pthread_cond_wait (&f->cv, &f->mu);
      if (f->stop)
        break;
      int64_t want = f->asked;
      pthread_mutex_unlock (&f->mu);
      (void) fdatasync (f->fd);
      pthread_mutex_lock (&f->mu);
      f->done = want;
    }
  pthread_mutex_unlock (&f->mu);
  return NULL;
}

/* Ask for the blob's first `size` bytes to be synced; the thread starts
 * with the first request (most layers are smaller than FLUSH_STEP).  A
 * request made while the thread syncs is taken when it is done. */
static void
flusher_ask (struct ob_layer_writer *lw, int64_t size)
{
  struct ob_layer_flusher *f = lw->flusher;
  if (f == NULL)
    {
      struct stat st;
      if (fstat (lw->outfd, &st) < 0 || !S_ISREG (st.st_mode))
        return;
      f = ob_xmalloc0 (sizeof *f);
      f->fd = lw->outfd;
      pthread_mutex_init (&f->mu, NULL);
      pthread_cond_init (&f->cv, NULL);
      if (pthread_create (&f->thread, NULL, flusher_main, f) != 0)
        {
          pthread_cond_destroy (&f->cv);
          pthread_mutex_destroy (&f->mu);
          free (f);
          return;
        }
      lw->flusher = f;
    }
  pthread_mutex_lock (&f->mu);
  f->asked = size;
  pthread_cond_signal (&f->cv);
  pthread_mutex_unlock (&f->mu);
}

/* Stop the thread, after the sync it is in (the fd stays the caller's). */
static void
flusher_stop (struct ob_layer_writer *lw)
{
  struct ob_layer_flusher *f = steal_pointer (&lw->flusher);
  if (f == NULL)
    return;
  pthread_mutex_lock (&f->mu);
  f->stop = true;
  pthread_cond_signal (&f->cv);
  pthread_mutex_unlock (&f->mu);
  pthread_join (f->thread, NULL);
  pthread_cond_destroy (&f->cv);
  pthread_mutex_destroy (&f->mu);
  free (f);
}

static int
lw_emit (struct ob_layer_writer *lw, const void *data, size_t n, ob_error_t *err)
{
  if (n == 0)
    return 0;
  ob_sha256_update (lw->h_blob, data, n);
  lw->size += n;
  if (ob_write_all (lw->outfd, data, n, err) < 0)
    return ob_error_wrap (err, "write layer");
  /* the store syncs the blob when it commits it: start writing it back
   * now, a few MiB at a time, so that the disk works while the rest is
   * compressed and the final fsync has little left to wait for (no effect
   * on a pipe or a tmpfs); and make it durable ahead, see above */
  if (lw->size - lw->synced >= WRITEBACK_STEP)
    {
      bool flush = lw->size / FLUSH_STEP != lw->synced / FLUSH_STEP;
      (void) sync_file_range (lw->outfd, lw->synced, lw->size - lw->synced, SYNC_FILE_RANGE_WRITE);
      lw->synced = lw->size;
      if (flush)
        flusher_ask (lw, lw->size);
    }
  return 0;
}

static int
lw_emit_cb (void *data, const void *buf, size_t n, ob_error_t *err)
{
  return lw_emit (data, buf, n, err);
}

static int
lw_compress (struct ob_layer_writer *lw, const void *data, size_t n, bool end, ob_error_t *err)
{
  switch (lw->compression)
    {
    case OB_COMPRESS_NONE:
      return lw_emit (lw, data, n, err);

    case OB_COMPRESS_GZIP:
      if (lw->pgz)
        return end ? ob_pgzip_finish (lw->pgz, err) : ob_pgzip_write (lw->pgz, data, n, err);
      lw->z.next_in = (Bytef *) data;
      lw->z.avail_in = n;
      for (;;)
        {
          int r;
          lw->z.next_out = lw->obuf;
          lw->z.avail_out = lw->obuf_size;
          r = deflate (&lw->z, end ? Z_FINISH : Z_NO_FLUSH);
          if (r == Z_STREAM_ERROR)
            return ob_error_make (err, OB_ERR_GENERIC, 0, "gzip: deflate failed");
          if (lw_emit (lw, lw->obuf, lw->obuf_size - lw->z.avail_out, err) < 0)
            return -1;
          if (end ? r == Z_STREAM_END : (lw->z.avail_in == 0 && lw->z.avail_out != 0))
            return 0;
        }

    case OB_COMPRESS_ZSTD:
      {
        ZSTD_inBuffer in = { data, n, 0 };
        for (;;)
          {
            ZSTD_outBuffer out = { lw->obuf, lw->obuf_size, 0 };
            size_t r = ZSTD_compressStream2 (lw->zc, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
            if (ZSTD_isError (r))
              return ob_error_make (err, OB_ERR_GENERIC, 0, "zstd: %s", ZSTD_getErrorName (r));
            if (lw_emit (lw, lw->obuf, out.pos, err) < 0)
              return -1;
            if (end ? r == 0 : in.pos == in.size)
              return 0;
          }
      }
    }
  return ob_error_make (err, OB_ERR_GENERIC, 0, "unknown compression %d", (int) lw->compression);
}

static la_ssize_t
lw_write_cb (struct archive *a, void *data, const void *buf, size_t n)
{
  struct ob_layer_writer *lw = data;
  if (lw->discard)
    return n;
  if (lw->pgz == NULL) /* parallel gzip hashes on a thread of its own */
    ob_sha256_update (lw->h_tar, buf, n);
  if (lw_compress (lw, buf, n, false, &lw->cb_err) < 0)
    {
      archive_set_error (a, EIO, "%s", lw->cb_err->msg);
      return -1;
    }
  return n;
}

/* Turn a libarchive failure into an ob_error, preferring the one the write
 * callback recorded. */
static int
lw_fail (struct ob_layer_writer *lw, const char *what, ob_error_t *err)
{
  lw->discard = true;
  if (lw->cb_err)
    {
      ob_error_free (err);
      *err = steal_pointer (&lw->cb_err);
      return ob_error_wrap (err, "%s", what);
    }
  return ob_error_make (err, OB_ERR_STORE, 0, "%s: %s", what,
                        archive_error_string (lw->a) ? archive_error_string (lw->a) : "tar error");
}

void
ob_layer_writer_free (struct ob_layer_writer *lw)
{
  flusher_stop (lw);
  if (lw->dirfd >= 0)
    close (lw->dirfd);
  lw->dirfd = -1;
  free (lw->dir);
  lw->dir = NULL;
  if (lw->a)
    {
      lw->discard = true;
      archive_write_free (lw->a);
      lw->a = NULL;
    }
  if (lw->z_init)
    deflateEnd (&lw->z);
  lw->z_init = false;
  ob_pgzip_free (lw->pgz);
  lw->pgz = NULL;
  ZSTD_freeCCtx (lw->zc);
  lw->zc = NULL;
  ob_sha256_free (lw->h_tar);
  ob_sha256_free (lw->h_blob);
  lw->h_tar = lw->h_blob = NULL;
  free (lw->obuf);
  free (lw->dbuf);
  lw->obuf = lw->dbuf = NULL;
  ob_error_free (&lw->cb_err);
}

bool
ob_layer_gzip_isal (const struct ob_layer_opts *o)
{
  return o->compression == OB_COMPRESS_GZIP && o->level == 0 && !o->clamp_mtime && !o->single_thread_gzip;
}

void
ob_layer_opts_describe (const struct ob_layer_opts *o, char *buf, size_t n)
{
  switch (o->compression)
    {
    case OB_COMPRESS_GZIP:
      if (ob_layer_gzip_isal (o))
        snprintf (buf, n, "gzip/igzip");
      else
        snprintf (buf, n, "gzip/%d%s", o->level > 0 ? o->level : OB_GZIP_DEFAULT_LEVEL, o->single_thread_gzip ? "/zlib" : "");
      break;
    case OB_COMPRESS_ZSTD:
      snprintf (buf, n, "zstd/%d", o->level);
      break;
    default:
      snprintf (buf, n, "none");
      break;
    }
}

int
ob_layer_writer_open (struct ob_layer_writer *lw, int outfd, const struct ob_layer_opts *opts,
                      ob_error_t *err)
{
  memset (lw, 0, sizeof *lw);
  lw->dirfd = -1;
  lw->outfd = outfd;
  lw->compression = opts->compression;
  lw->on_entry = opts->on_entry;
  lw->on_entry_data = opts->on_entry_data;
  lw->opts = opts;
  lw->h_tar = ob_sha256_new ();
  lw->h_blob = ob_sha256_new ();
  lw->dbuf = ob_xmalloc (OB_LAYER_CHUNK);

  switch (lw->compression)
    {
    case OB_COMPRESS_NONE:
      break;
    case OB_COMPRESS_GZIP:
      if (!opts->single_thread_gzip)
        {
          /* independent members on every core (igzip or libdeflate) */
          long ncpu = sysconf (_SC_NPROCESSORS_ONLN);
          lw->pgz = ob_pgzip_new (opts->level > 0 ? opts->level : OB_GZIP_DEFAULT_LEVEL, ob_layer_gzip_isal (opts),
                                  ncpu > 0 ? (int) ncpu : 1, lw->h_tar, lw_emit_cb, lw);
          break;
        }
      lw->obuf_size = OB_LAYER_CHUNK;
      lw->obuf = ob_xmalloc (lw->obuf_size);
      if (deflateInit2 (&lw->z, opts->level > 0 ? (opts->level > 9 ? 9 : opts->level) : OB_GZIP_DEFAULT_LEVEL, Z_DEFLATED,
                        15 + 16, 8, Z_DEFAULT_STRATEGY)
          != Z_OK)
        return ob_error_make (err, OB_ERR_GENERIC, 0, "gzip: cannot initialise");
      lw->z_init = true;
      /* Fixed header: no name, no comment, mtime 0, OS "unknown" (as Go's
       * compress/gzip writes it), so the bytes depend on the content only. */
      memset (&lw->gzh, 0, sizeof lw->gzh);
      lw->gzh.os = 255;
      if (deflateSetHeader (&lw->z, &lw->gzh) != Z_OK)
        return ob_error_make (err, OB_ERR_GENERIC, 0, "gzip: cannot set header");
      break;
    case OB_COMPRESS_ZSTD:
      lw->obuf_size = ZSTD_CStreamOutSize ();
      lw->obuf = ob_xmalloc (lw->obuf_size);
      lw->zc = ZSTD_createCCtx ();
      if (lw->zc == NULL)
        ob_oom ();
      if (opts->level > 0)
        {
          size_t r = ZSTD_CCtx_setParameter (lw->zc, ZSTD_c_compressionLevel, opts->level);
          if (ZSTD_isError (r))
            return ob_error_make (err, OB_ERR_USAGE, 0, "zstd level %d: %s", opts->level,
                                  ZSTD_getErrorName (r));
        }
      /* Fails harmlessly on a single-threaded libzstd; a multi-threaded
       * build gives the same bytes for any worker count >= 1. */
      ZSTD_CCtx_setParameter (lw->zc, ZSTD_c_nbWorkers, 2);
      /* 2 MiB jobs instead of 4 windows (8 MiB at level 3): the buffers of
       * two workers stay ~20 MiB, as bytes still independent of the worker
       * count */
      ZSTD_CCtx_setParameter (lw->zc, ZSTD_c_jobSize, 2 << 20);
      break;
    default:
      return ob_error_make (err, OB_ERR_USAGE, 0, "unknown compression %d",
                            (int) lw->compression);
    }

  lw->a = archive_write_new ();
  if (lw->a == NULL)
    ob_oom ();
  /* pax_restricted: plain ustar headers unless an entry needs more (long
   * names, big ids, xattrs), like Go's archive/tar; only SCHILY.xattr
   * records, which GNU tar, Go and umoci all read. */
  if (archive_write_set_format_pax_restricted (lw->a) != ARCHIVE_OK
      || archive_write_set_format_option (lw->a, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK
      || archive_write_add_filter_none (lw->a) != ARCHIVE_OK
      || archive_write_set_bytes_per_block (lw->a, 0) != ARCHIVE_OK
      || archive_write_set_bytes_in_last_block (lw->a, 1) != ARCHIVE_OK)
    return lw_fail (lw, "tar writer", err);
  if (archive_write_open (lw->a, lw, NULL, lw_write_cb, NULL) != ARCHIVE_OK)
    return lw_fail (lw, "tar writer", err);
  return 0;
}

void
ob_layer_entry_tell (ob_layer_entry_fn fn, void *data, struct archive_entry *e)
{
  struct ob_layer_entry_info x = {
    .name = archive_entry_pathname (e),
    .mode = archive_entry_mode (e),
    .uid = (uid_t) archive_entry_uid (e),
    .gid = (gid_t) archive_entry_gid (e),
    .mtime = archive_entry_mtime (e),
    .size = archive_entry_size (e),
    .symlink = archive_entry_symlink (e),
    .hardlink = archive_entry_hardlink (e),
  };
  /* a hardlink entry (typeflag 1) reads back without a file type */
  if (x.hardlink)
    x.mode &= 07777;
  if (fn && x.name)
    fn (data, &x);
}

int
ob_layer_writer_add (struct ob_layer_writer *lw, struct archive_entry *e, ob_error_t *err)
{
  int r = archive_write_header (lw->a, e);
  if (r < ARCHIVE_WARN)
    return lw_fail (lw, "write tar header", err);
  ob_layer_entry_tell (lw->on_entry, lw->on_entry_data, e);
  return 0;
}

int
ob_layer_writer_data (struct ob_layer_writer *lw, const void *buf, size_t n, ob_error_t *err)
{
  la_ssize_t r = archive_write_data (lw->a, buf, n);
  if (r < 0)
    return lw_fail (lw, "write tar data", err);
  return 0;
}

int
ob_layer_writer_end_entry (struct ob_layer_writer *lw, ob_error_t *err)
{
  if (archive_write_finish_entry (lw->a) < ARCHIVE_WARN)
    return lw_fail (lw, "write tar padding", err);
  return 0;
}

int
ob_layer_writer_finish (struct ob_layer_writer *lw, struct ob_layer_result *res, ob_error_t *err)
{
  if (archive_write_close (lw->a) != ARCHIVE_OK)
    return lw_fail (lw, "finish tar", err);
  if (lw->compression != OB_COMPRESS_NONE && lw_compress (lw, NULL, 0, true, err) < 0)
    return -1;
  flusher_stop (lw);
  ob_sha256_final (steal_pointer (&lw->h_tar), res->diff_id);
  ob_sha256_final (steal_pointer (&lw->h_blob), res->digest);
  res->size = lw->size;
  res->precompressed = lw->pgz ? (int64_t) ob_pgzip_reused (lw->pgz) : 0;
  switch (lw->compression)
    {
    case OB_COMPRESS_GZIP:
      res->media_type = OB_MT_LAYER_GZIP;
      break;
    case OB_COMPRESS_ZSTD:
      res->media_type = OB_MT_LAYER_ZSTD;
      break;
    case OB_COMPRESS_NONE:
    default:
      res->media_type = OB_MT_LAYER_TAR;
      break;
    }
  return 0;
}

/* ---- helpers shared by write (layer_write.c) and import ---- */

void
ob_layer_entry_freep (struct archive_entry **e)
{
  if (*e)
    archive_entry_free (*e);
}

static void
cleanup_readerp (struct archive **a)
{
  if (*a)
    archive_read_free (*a);
}
#define cleanup_reader __attribute__ ((cleanup (cleanup_readerp)))

void
ob_layer_set_mtime (struct archive_entry *e, int64_t sec, long nsec, const struct ob_layer_opts *opts)
{
  if (opts->clamp_mtime && sec >= opts->mtime_max)
    archive_entry_set_mtime (e, opts->mtime_max, 0);
  else
    archive_entry_set_mtime (e, sec, nsec);
}

bool
ob_layer_keep_xattr (const char *name, bool caps)
{
  if (strcmp (name, "security.capability") == 0)
    return caps;
  return ob_str_has_prefix (name, "user.") && !ob_str_has_prefix (name, "user.overlay.")
         && strcmp (name, OB_LAYER_OWNER_XATTR) != 0 && strcmp (name, OB_LAYER_DEVICE_XATTR) != 0
         && !ob_link_owner_is_xattr (name);
}

/* ---- reading archives ---- */

int
ob_layer_clean_name (const char *name, char **out, ob_error_t *err)
{
  struct ob_buf b = { 0 };
  const char *p = name;
  while (*p)
    {
      const char *end = strchr (p, '/');
      size_t n = end ? (size_t) (end - p) : strlen (p);
      if (n == 2 && p[0] == '.' && p[1] == '.')
        {
          ob_buf_free (&b);
          return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: path contains ..", name);
        }
      if (n > 0 && !(n == 1 && p[0] == '.'))
        {
          if (b.len)
            ob_buf_addc (&b, '/');
          ob_buf_add (&b, p, n);
        }
      p += n;
      while (*p == '/')
        p++;
    }
  if (b.len > OB_LAYER_PATH_MAX)
    {
      ob_layer_path_too_long (b.data, OB_ERR_IMAGE, err);
      ob_buf_free (&b);
      return ob_error_wrap (err, "entry");
    }
  *out = ob_buf_steal (&b);
  return 0;
}

/* A reader for what ADD and image layers may contain: tar (ustar, pax, GNU)
 * uncompressed or gzip/bzip2/xz/zstd, like Docker.  Other libarchive
 * filters are left out on purpose (some run external programs). */
int
ob_layer_open_reader (int fd, struct archive **out, ob_error_t *err)
{
  return ob_layer_open_reader_digest (fd, out, NULL, err);
}

void
ob_layer_reader_filters (struct archive *a)
{
  archive_read_support_filter_gzip (a);
  archive_read_support_filter_bzip2 (a);
  archive_read_support_filter_xz (a);
  archive_read_support_filter_zstd (a);
}

int
ob_layer_open_reader_digest (int fd, struct archive **out, struct ob_layer_stream **stream, ob_error_t *err)
{
  struct archive *a = archive_read_new ();
  if (a == NULL)
    ob_oom ();
  ob_layer_reader_filters (a);
  archive_read_support_format_tar (a);
  archive_read_support_format_gnutar (a);
  if ((stream ? ob_layer_archive_open_digest (a, fd, stream) : ob_layer_archive_open (a, fd)) != ARCHIVE_OK)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "read archive: %s",
                     archive_error_string (a) ? archive_error_string (a) : "unknown error");
      archive_read_free (a);
      return -1;
    }
  *out = a;
  return 0;
}

static int
reader_error (struct archive *a, const char *entry, ob_error_t *err)
{
  const char *msg = archive_error_string (a) ? archive_error_string (a) : "unknown error";
  if (entry)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: %s", entry, msg);
  return ob_error_make (err, OB_ERR_IMAGE, 0, "read archive: %s", msg);
}

/* ---- ob_layer_import ---- */

static int
import_data (struct ob_layer_writer *lw, struct archive *in, int64_t size, const char *name,
             ob_error_t *err)
{
  int64_t pos = 0;
  for (;;)
    {
      const void *buf;
      size_t n;
      la_int64_t off;
      int r = archive_read_data_block (in, &buf, &n, &off);
      if (r == ARCHIVE_EOF)
        break;
      if (r < ARCHIVE_WARN)
        return reader_error (in, name, err);
      /* Sparse entries: the holes become zeros. */
      while (pos < off && pos < size)
        {
          size_t z = off - pos < OB_LAYER_CHUNK ? (size_t) (off - pos) : OB_LAYER_CHUNK;
          memset (lw->dbuf, 0, z);
          if (ob_layer_writer_data (lw, lw->dbuf, z, err) < 0)
            return ob_error_wrap (err, "entry `%s`", name);
          pos += z;
        }
      if (pos + (int64_t) n > size)
        n = size - pos;
      if (n && ob_layer_writer_data (lw, buf, n, err) < 0)
        return ob_error_wrap (err, "entry `%s`", name);
      pos += n;
    }
  while (pos < size)
    {
      size_t z = size - pos < OB_LAYER_CHUNK ? (size_t) (size - pos) : OB_LAYER_CHUNK;
      memset (lw->dbuf, 0, z);
      if (ob_layer_writer_data (lw, lw->dbuf, z, err) < 0)
        return ob_error_wrap (err, "entry `%s`", name);
      pos += z;
    }
  return 0;
}

static int
import_entry (struct ob_layer_writer *lw, struct archive *in, struct archive_entry *ie,
              const struct ob_layer_opts *opts, struct ob_strset *files, ob_error_t *err)
{
  cleanup_entry struct archive_entry *e = archive_entry_new ();
  cleanup_free char *name = NULL;
  cleanup_free char *out_name = NULL;
  const char *raw = archive_entry_pathname (ie);
  const char *hardlink = archive_entry_hardlink (ie);
  mode_t type = archive_entry_filetype (ie);
  int64_t size = 0;

  if (e == NULL)
    ob_oom ();
  if (raw == NULL)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "entry without a name");
  if (ob_layer_clean_name (raw, &name, err) < 0)
    return -1;
  if (*name == '\0')
    return 0; /* the root directory: not part of a layer */

  if (hardlink)
    {
      cleanup_free char *target = NULL;
      if (ob_layer_clean_name (hardlink, &target, err) < 0)
        return ob_error_wrap (err, "entry `%s`: hardlink", raw);
      if (*target == '\0')
        return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: hardlink to the root", raw);
      /* a hardlink to something not in the tarball would only fail at
       * the first RUN (or link to a file of the host) */
      if (!ob_strset_has (files, target))
        return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: hardlink to `%s`, which is no earlier file of the archive",
                              raw, hardlink);
      archive_entry_set_hardlink (e, target);
      type = AE_IFREG;
    }
  else
    switch (type)
      {
      case AE_IFREG:
        size = archive_entry_size_is_set (ie) ? archive_entry_size (ie) : 0;
        break;
      case AE_IFDIR:
      case AE_IFLNK:
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
        break;
      default:
        return 0;
      }

  out_name = type == AE_IFDIR ? ob_xasprintf ("%s/", name) : ob_xstrdup (name);
  archive_entry_set_pathname (e, out_name);
  archive_entry_set_mode (e, type | (archive_entry_perm (ie) & 07777));
  archive_entry_set_uid (e, archive_entry_uid (ie));
  archive_entry_set_gid (e, archive_entry_gid (ie));
  ob_layer_set_mtime (e, archive_entry_mtime_is_set (ie) ? archive_entry_mtime (ie) : 0,
                      archive_entry_mtime_is_set (ie) ? archive_entry_mtime_nsec (ie) : 0, opts);
  archive_entry_set_size (e, size);
  if (!hardlink && type == AE_IFLNK)
    archive_entry_set_symlink (e, archive_entry_symlink (ie) ? archive_entry_symlink (ie) : "");
  if (!hardlink && (type == AE_IFCHR || type == AE_IFBLK))
    {
      archive_entry_set_rdevmajor (e, archive_entry_rdevmajor (ie));
      archive_entry_set_rdevminor (e, archive_entry_rdevminor (ie));
    }
  if (archive_entry_xattr_reset (ie) > 0)
    {
      const char *xn;
      const void *xv;
      size_t xs;
      while (archive_entry_xattr_next (ie, &xn, &xv, &xs) == ARCHIVE_OK)
        if (ob_layer_keep_xattr (xn, true))
          archive_entry_xattr_add_entry (e, xn, xv, xs);
    }

  if (ob_layer_writer_add (lw, e, err) < 0)
    return ob_error_wrap (err, "entry `%s`", raw);
  if (type != AE_IFDIR)
    ob_strset_add (files, name);
  if (size > 0)
    return import_data (lw, in, size, raw, err);
  return 0;
}

int
ob_layer_import (int infd, int outfd, const struct ob_layer_opts *opts,
                 struct ob_layer_result *res, ob_error_t *err)
{
  cleanup_locale locale_t old_locale = ob_layer_enter_utf8 ();
  cleanup_reader struct archive *in = NULL;
  struct ob_layer_writer lw;
  struct ob_strset files = { 0 };
  int ret = 0;

  if (ob_layer_open_reader (infd, &in, err) < 0)
    return -1;
  if (ob_layer_writer_open (&lw, outfd, opts, err) < 0)
    {
      ob_layer_writer_free (&lw);
      return -1;
    }
  for (;;)
    {
      struct archive_entry *ie;
      int r = archive_read_next_header (in, &ie);
      if (r == ARCHIVE_EOF)
        break;
      if (r < ARCHIVE_WARN)
        {
          ret = reader_error (in, NULL, err);
          break;
        }
      ret = import_entry (&lw, in, ie, opts, &files, err);
      if (ret < 0)
        break;
    }
  if (ret == 0)
    ret = ob_layer_writer_finish (&lw, res, err);
  ob_strset_free (&files);
  ob_layer_writer_free (&lw);
  return ret;
}

/* ---- ob_layer_is_archive ---- */

bool
ob_layer_is_archive (int fd)
{
  cleanup_locale locale_t old_locale = ob_layer_enter_utf8 ();
  cleanup_reader struct archive *a = NULL;
  struct archive_entry *e;
  int r;

  if (lseek (fd, 0, SEEK_SET) < 0)
    return false;
  if (ob_layer_open_reader (fd, &a, NULL) < 0)
    {
      lseek (fd, 0, SEEK_SET);
      return false;
    }
  r = archive_read_next_header (a, &e);
  /* EOF here means the tar reader recognised an empty archive (zero
   * blocks); an empty or foreign file fails the format bid instead. */
  lseek (fd, 0, SEEK_SET);
  return r == ARCHIVE_OK || r == ARCHIVE_WARN || r == ARCHIVE_EOF;
}

/* ---- ob_layer_read_file ---- */

struct read_state
{
  const char *path; /* cleaned */
  bool found;       /* the path itself, as a regular file or hardlink */
  bool hidden;      /* whited out, opaque parent, or replaced parent */
  bool not_regular; /* found, but not a regular file */
  char *hardlink;   /* found as hardlink to this entry */
  struct ob_buf data;
};

/* Is `path` equal to, or below, `dir` ("" is the root)? */
static bool
path_at_or_below (const char *path, const char *dir)
{
  size_t n = strlen (dir);
  if (n == 0)
    return true;
  return strncmp (path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int
read_entry_data (struct archive *a, struct ob_buf *b, const char *name, ob_error_t *err)
{
  for (;;)
    {
      const void *buf;
      size_t n;
      la_int64_t off;
      int r = archive_read_data_block (a, &buf, &n, &off);
      if (r == ARCHIVE_EOF)
        return 0;
      if (r < ARCHIVE_WARN)
        return reader_error (a, name, err);
      /* the header's size was checked; data past it (a sparse map) is not
       * taken either */
      if (off < 0 || (uint64_t) off + n > OB_LAYER_READ_MAX)
        return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: more than %u bytes", name, OB_LAYER_READ_MAX);
      if ((size_t) off > b->len)
        {
          size_t gap = off - b->len;
          char *z = ob_xmalloc0 (gap);
          ob_buf_add (b, z, gap);
          free (z);
        }
      b->len = off; /* (off < len cannot happen for tar, but stay sane) */
      ob_buf_add (b, buf, n);
    }
}

static int
scan_layer_for (int fd, struct read_state *st, ob_error_t *err)
{
  cleanup_reader struct archive *a = NULL;
  if (lseek (fd, 0, SEEK_SET) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "seek layer");
  if (ob_layer_open_reader (fd, &a, err) < 0)
    return -1;
  for (;;)
    {
      struct archive_entry *e;
      cleanup_free char *name = NULL;
      const char *slash, *base;
      int r = archive_read_next_header (a, &e);
      if (r == ARCHIVE_EOF)
        return 0;
      if (r < ARCHIVE_WARN)
        return reader_error (a, NULL, err);
      if (archive_entry_pathname (e) == NULL)
        continue;
      if (ob_layer_clean_name (archive_entry_pathname (e), &name, err) < 0)
        return -1;
      slash = strrchr (name, '/');
      base = slash ? slash + 1 : name;

      if (strcmp (name, st->path) == 0)
        {
          const char *hl = archive_entry_hardlink (e);
          st->found = true;
          st->not_regular = false;
          free (st->hardlink);
          st->hardlink = NULL;
          st->data.len = 0;
          if (hl)
            {
              if (ob_layer_clean_name (hl, &st->hardlink, err) < 0)
                return -1;
            }
          else if (archive_entry_filetype (e) == AE_IFREG && archive_entry_size (e) >= 0
                   && archive_entry_size (e) <= (la_int64_t) OB_LAYER_READ_MAX)
            {
              if (read_entry_data (a, &st->data, name, err) < 0)
                return -1;
            }
          else
            st->not_regular = true; /* or too large: as if absent */
          continue;
        }
      if (strncmp (base, ".wh.", 4) == 0)
        {
          cleanup_free char *dir = slash ? ob_xstrndup (name, slash - name) : ob_xstrdup ("");
          if (strcmp (base, ".wh..wh..opq") == 0)
            {
              if (path_at_or_below (st->path, dir) && strcmp (st->path, dir) != 0)
                st->hidden = true;
            }
          else
            {
              cleanup_free char *victim
                  = *dir ? ob_xasprintf ("%s/%s", dir, base + 4) : ob_xstrdup (base + 4);
              if (path_at_or_below (st->path, victim))
                st->hidden = true;
            }
          continue;
        }
      /* A non-directory at a parent of the path hides what is below. */
      if ((archive_entry_filetype (e) != AE_IFDIR || archive_entry_hardlink (e))
          && path_at_or_below (st->path, name))
        st->hidden = true;
    }
}

static int
read_file_depth (const int *layer_fds, size_t n, const char *path, char **out, size_t *len,
                 int depth, ob_error_t *err)
{
  cleanup_free char *clean = NULL;
  *out = NULL;
  if (len)
    *len = 0;
  if (ob_layer_clean_name (path, &clean, err) < 0)
    return -1;
  if (*clean == '\0')
    return 0;
  for (size_t i = n; i-- > 0;)
    {
      struct read_state st = { .path = clean };
      int ret = scan_layer_for (layer_fds[i], &st, err);
      if (ret == 0 && st.found && st.hardlink)
        {
          /* The target is an earlier entry of this layer (or below). */
          if (depth >= 8)
            ret = ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: too many hardlink levels", clean);
          else
            ret = read_file_depth (layer_fds, i + 1, st.hardlink, out, len, depth + 1, err);
          free (st.hardlink);
          ob_buf_free (&st.data);
          return ret;
        }
      free (st.hardlink);
      if (ret < 0)
        {
          ob_buf_free (&st.data);
          return ob_error_wrap (err, "layer %zu", i);
        }
      if (st.found)
        {
          if (st.not_regular)
            {
              ob_buf_free (&st.data);
              return 0;
            }
          if (len)
            *len = st.data.len;
          *out = ob_buf_steal (&st.data);
          return 0;
        }
      ob_buf_free (&st.data);
      if (st.hidden)
        return 0;
    }
  return 0;
}

int
ob_layer_read_file (const int *layer_fds, size_t n, const char *path, char **out, size_t *len,
                    ob_error_t *err)
{
  cleanup_locale locale_t old_locale = ob_layer_enter_utf8 ();
  return read_file_depth (layer_fds, n, path, out, len, 0, err);
}

int
ob_layer_diff_id (int fd, char out[72], ob_error_t *err)
{
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  struct ob_sha256 *h;
  const void *buf;
  size_t len;
  la_int64_t off;
  int r;

  if (a == NULL)
    ob_oom ();
  if (lseek (fd, 0, SEEK_SET) < 0)
    {
      archive_read_free (a);
      return ob_error_make (err, OB_ERR_STORE, errno, "rewind layer");
    }
  /* the raw format gives the decompressed bytes exactly as stored */
  ob_layer_reader_filters (a);
  archive_read_support_format_raw (a);
  if (ob_layer_archive_open (a, fd) != ARCHIVE_OK
      || archive_read_next_header (a, &e) != ARCHIVE_OK)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "read layer: %s", archive_error_string (a));
      archive_read_free (a);
      return -1;
    }
  h = ob_sha256_new ();
  while ((r = archive_read_data_block (a, &buf, &len, &off)) == ARCHIVE_OK)
    ob_sha256_update (h, buf, len);
  if (r != ARCHIVE_EOF)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "read layer: %s", archive_error_string (a));
      ob_sha256_free (h);
      archive_read_free (a);
      return -1;
    }
  ob_sha256_final (h, out);
  archive_read_free (a);
  return 0;
}
