/* layer: reading archives through ISA-L's igzip.  Every gzip layer obuild
 * reads (a pull's diff_id check, unpacking a base for RUN, trees, saves) is
 * decompressed here before libarchive sees it: igzip inflates at about twice
 * zlib's speed (bench/README.md), which is what libarchive's own gzip
 * filter uses.  Anything that is not gzip is handed to libarchive as it is,
 * whose filters then detect zstd, xz or bzip2.
 *
 * As libarchive's gzip filter: members follow one another (pgzip writes
 * many), each checked against its CRC-32 and length; after the last member,
 * bytes that do not start another member end the stream and are ignored;
 * a stream cut short is an error.  Memory: 1.3 MiB per open gzip stream. */
#include "config.h"
#include <obuild/layer.h>
#include <obuild/util.h>

#include <archive.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <isa-l/igzip_lib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IN_SIZE (256u << 10)
#define OUT_SIZE (256u << 10)
#define NBLOCKS 4

/* Inflating a regular file runs on a thread of its own, NBLOCKS blocks
 * ahead of the reader: unpacking a layer (file creation on the reader's
 * side) and inflating it overlap on two cores.  A pipe is inflated by the
 * reader itself. */
struct block
{
  unsigned char *data;
  ssize_t len; /* > 0 data, 0 end, -1 error (err) */
  bool full;
};

struct ob_layer_stream
{
  int fd;
  bool gzip;    /* else: the bytes as they are */
  bool eof;     /* fd is at its end */
  bool done;    /* the last member ended */
  bool pending; /* passthrough: in holds the first bytes, not yet given */
  size_t first;
  struct inflate_state st;
  unsigned char *in;
  /* the inflating thread and its blocks */
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t filled, freed;
  bool stop;
  struct block blocks[NBLOCKS];
  unsigned int next_fill, next_read;
  bool reading; /* the reader holds blocks[next_read - 1] */
  int err_no;
  char err[128];
  /* ob_layer_archive_open_digest: the sha256 of every byte inflated, in
   * order (on the inflating thread), or NULL */
  struct ob_sha256 *hash;
};

static ssize_t
read_some (int fd, unsigned char *buf, size_t n)
{
  ssize_t r;
  do
    r = read (fd, buf, n);
  while (r < 0 && errno == EINTR);
  return r;
}

static int
fail (struct ob_layer_stream *g, int e, const char *msg)
{
  g->err_no = e;
  snprintf (g->err, sizeof g->err, "%s", msg);
  return -1;
}

/* Read more input after what is left at st.next_in (moved to the start). */
static int
refill (struct ob_layer_stream *g)
{
  size_t left = g->st.avail_in;
  ssize_t n;
  if (g->eof)
    return 0;
  if (left)
    memmove (g->in, g->st.next_in, left);
  n = read_some (g->fd, g->in + left, IN_SIZE - left);
  if (n < 0)
    return fail (g, errno, strerror (errno));
  if (n == 0)
    g->eof = true;
  g->st.next_in = g->in;
  g->st.avail_in = (uint32_t) (left + (size_t) n);
  return 0;
}

static void
member_start (struct ob_layer_stream *g)
{
  unsigned char *next = g->st.next_in;
  uint32_t avail = g->st.avail_in;
  isal_inflate_reset (&g->st);
  g->st.crc_flag = ISAL_GZIP;
  g->st.next_in = next;
  g->st.avail_in = avail;
}

/* Inflate up to OUT_SIZE bytes into out: their count, 0 at the end, -1 on
 * an error (g->err). */
static ssize_t
inflate_block (struct ob_layer_stream *g, unsigned char *out)
{
  size_t produced;

  if (g->done)
    return 0;
  g->st.next_out = out;
  g->st.avail_out = OUT_SIZE;
  for (;;)
    {
      int r;
      if (g->st.avail_in == 0 && refill (g) < 0)
        return -1;
      r = isal_inflate (&g->st);
      if (r < 0)
        return fail (g, EINVAL, r == ISAL_INCORRECT_CHECKSUM ? "gzip: checksum mismatch" : "gzip: corrupt data");
      produced = OUT_SIZE - g->st.avail_out;
      if (g->st.block_state == ISAL_BLOCK_FINISH)
        {
          /* another member? (its first three bytes) */
          if (g->st.avail_in < 3 && refill (g) < 0)
            return -1;
          if (g->st.avail_in >= 3 && g->st.next_in[0] == 0x1f && g->st.next_in[1] == 0x8b
              && g->st.next_in[2] == 8)
            {
              member_start (g);
              if (produced == OUT_SIZE)
                return (ssize_t) produced;
              continue;
            }
          g->done = true;
          return (ssize_t) produced;
        }
      if (produced == OUT_SIZE)
        return (ssize_t) produced;
      if (g->st.avail_in == 0 && g->eof)
        return fail (g, EINVAL, "gzip: unexpected end of data");
    }
}

static void *
inflater (void *arg)
{
  struct ob_layer_stream *g = arg;
  for (;;)
    {
      struct block *b = &g->blocks[g->next_fill % NBLOCKS];
      ssize_t n;
      bool stop;
      pthread_mutex_lock (&g->mu);
      while (b->full && !g->stop)
        pthread_cond_wait (&g->freed, &g->mu);
      stop = g->stop;
      pthread_mutex_unlock (&g->mu);
      if (stop)
        return NULL;
      n = inflate_block (g, b->data);
      if (n > 0 && g->hash)
        ob_sha256_update (g->hash, b->data, (size_t) n);
      pthread_mutex_lock (&g->mu);
      b->len = n;
      b->full = true;
      g->next_fill++;
      pthread_cond_signal (&g->filled);
      pthread_mutex_unlock (&g->mu);
      if (n <= 0)
        return NULL; /* the end, or an error: nothing more to make */
    }
}

/* The next inflated block of a gzip stream: its size, 0 at the end, -1 on
 * an error (g->err). */
static ssize_t
gz_next (struct ob_layer_stream *g, const void **buf)
{
  struct block *b;
  ssize_t n;

  if (!g->started)
    {
      /* a pipe: inflated here (a thread could wait in read() for a writer
       * that never writes, past the archive's end) */
      n = inflate_block (g, g->blocks[0].data);
      if (n > 0 && g->hash)
        ob_sha256_update (g->hash, g->blocks[0].data, (size_t) n);
      *buf = g->blocks[0].data;
      return n;
    }
  pthread_mutex_lock (&g->mu);
  if (g->reading)
    {
      /* the block given last time is the reader's no more */
      g->blocks[(g->next_read - 1) % NBLOCKS].full = false;
      g->reading = false;
      pthread_cond_signal (&g->freed);
    }
  b = &g->blocks[g->next_read % NBLOCKS];
  while (!b->full)
    pthread_cond_wait (&g->filled, &g->mu);
  n = b->len;
  if (n > 0)
    {
      g->next_read++;
      g->reading = true;
    }
  pthread_mutex_unlock (&g->mu);
  *buf = b->data;
  return n;
}

static la_ssize_t
gz_read (struct archive *a, void *data, const void **buf)
{
  struct ob_layer_stream *g = data;
  ssize_t n;

  *buf = g->in;
  if (!g->gzip)
    {
      if (g->pending)
        {
          g->pending = false;
          return (la_ssize_t) g->first;
        }
      n = read_some (g->fd, g->in, IN_SIZE);
      if (n < 0)
        archive_set_error (a, errno, "read: %s", strerror (errno));
      return n;
    }
  n = gz_next (g, buf);
  if (n < 0)
    archive_set_error (a, g->err_no, "%s", g->err);
  return n;
}

static void
gz_free (struct ob_layer_stream *g)
{
  if (g->started)
    {
      pthread_mutex_lock (&g->mu);
      g->stop = true;
      pthread_cond_signal (&g->freed);
      pthread_mutex_unlock (&g->mu);
      pthread_join (g->thread, NULL);
      pthread_mutex_destroy (&g->mu);
      pthread_cond_destroy (&g->filled);
      pthread_cond_destroy (&g->freed);
    }
  for (int i = 0; i < NBLOCKS; i++)
    free (g->blocks[i].data);
  free (g->in);
  ob_sha256_free (g->hash);
  free (g);
}

static int
gz_close (struct archive *a, void *data)
{
  (void) a;
  gz_free (data);
  return ARCHIVE_OK;
}

static int
open_stream (struct archive *a, int fd, bool digest, struct ob_layer_stream **out)
{
  struct ob_layer_stream *g = calloc (1, sizeof *g);
  int opened;
  ssize_t n;

  if (g == NULL || (g->in = malloc (IN_SIZE)) == NULL)
    {
      if (g)
        free (g->in);
      free (g);
      archive_set_error (a, ENOMEM, "out of memory");
      return ARCHIVE_FATAL;
    }
  g->fd = fd;
  /* the first bytes say whether it is gzip */
  n = read_some (fd, g->in, IN_SIZE);
  if (n < 0)
    {
      int e = errno;
      gz_free (g);
      archive_set_error (a, e, "read: %s", strerror (e));
      return ARCHIVE_FATAL;
    }
  g->eof = n == 0;
  if (n >= 3 && g->in[0] == 0x1f && g->in[1] == 0x8b && g->in[2] == 8)
    {
      sigset_t all, old;
      struct stat st;
      int r;
      g->gzip = true;
      if (digest)
        g->hash = ob_sha256_new ();
      isal_inflate_init (&g->st);
      g->st.crc_flag = ISAL_GZIP;
      g->st.next_in = g->in;
      g->st.avail_in = (uint32_t) n;
      for (int i = 0; i < NBLOCKS; i++)
        if ((g->blocks[i].data = malloc (OUT_SIZE)) == NULL)
          {
            gz_free (g);
            archive_set_error (a, ENOMEM, "out of memory");
            return ARCHIVE_FATAL;
          }
      if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
        goto inline_only;
      pthread_mutex_init (&g->mu, NULL);
      pthread_cond_init (&g->filled, NULL);
      pthread_cond_init (&g->freed, NULL);
      /* signals are the main thread's business */
      sigfillset (&all);
      pthread_sigmask (SIG_SETMASK, &all, &old);
      r = pthread_create (&g->thread, NULL, inflater, g);
      pthread_sigmask (SIG_SETMASK, &old, NULL);
      if (r != 0)
        {
          pthread_mutex_destroy (&g->mu);
          pthread_cond_destroy (&g->filled);
          pthread_cond_destroy (&g->freed);
          gz_free (g);
          archive_set_error (a, r, "start the gzip reader: %s", strerror (r));
          return ARCHIVE_FATAL;
        }
      g->started = true;
    inline_only:;
    }
  else
    {
      g->pending = true;
      g->first = (size_t) n;
    }
  archive_read_set_read_callback (a, gz_read);
  archive_read_set_close_callback (a, gz_close);
  archive_read_set_callback_data (a, g);
  opened = archive_read_open1 (a);
  if (opened == ARCHIVE_OK && out)
    *out = g;
  return opened;
}

int
ob_layer_archive_open (struct archive *a, int fd)
{
  return open_stream (a, fd, false, NULL);
}

int
ob_layer_archive_open_digest (struct archive *a, int fd, struct ob_layer_stream **stream)
{
  *stream = NULL;
  return open_stream (a, fd, true, stream);
}

int
ob_layer_archive_digest (struct ob_layer_stream *g, char out[72], ob_error_t *err)
{
  const void *buf;
  ssize_t n;
  if (g == NULL || g->hash == NULL)
    return 1;
  /* what the archive's reader left: the tar's end, its padding */
  while ((n = gz_next (g, &buf)) > 0)
    ;
  if (n < 0)
    return ob_error_make (err, OB_ERR_IMAGE, g->err_no, "%s", g->err);
  ob_sha256_final (g->hash, out); /* frees it */
  g->hash = NULL;
  return 0;
}
