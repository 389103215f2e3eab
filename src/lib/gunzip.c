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
 * a stream cut short is an error. */
#include "config.h"
#include <obuild/layer.h>

#include <archive.h>
#include <errno.h>
#include <isa-l/igzip_lib.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IN_SIZE (256u << 10)
#define OUT_SIZE (256u << 10)

struct gz_src
{
  int fd;
  bool gzip;    /* else: the bytes as they are */
  bool eof;     /* fd is at its end */
  bool done;    /* the last member ended */
  bool pending; /* passthrough: in holds the first bytes, not yet given */
  size_t first;
  struct inflate_state st;
  unsigned char *in;
  unsigned char *out;
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

/* Read more input after what is left at st.next_in (moved to the start). */
static int
refill (struct archive *a, struct gz_src *g)
{
  size_t left = g->st.avail_in;
  ssize_t n;
  if (g->eof)
    return 0;
  if (left)
    memmove (g->in, g->st.next_in, left);
  n = read_some (g->fd, g->in + left, IN_SIZE - left);
  if (n < 0)
    {
      archive_set_error (a, errno, "read: %s", strerror (errno));
      return -1;
    }
  if (n == 0)
    g->eof = true;
  g->st.next_in = g->in;
  g->st.avail_in = (uint32_t) (left + (size_t) n);
  return 0;
}

static void
member_start (struct gz_src *g)
{
  unsigned char *next = g->st.next_in;
  uint32_t avail = g->st.avail_in;
  isal_inflate_reset (&g->st);
  g->st.crc_flag = ISAL_GZIP;
  g->st.next_in = next;
  g->st.avail_in = avail;
}

static la_ssize_t
gz_read (struct archive *a, void *data, const void **buf)
{
  struct gz_src *g = data;
  size_t produced;

  *buf = g->gzip ? g->out : g->in;
  if (!g->gzip)
    {
      ssize_t n;
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
  if (g->done)
    return 0;
  g->st.next_out = g->out;
  g->st.avail_out = OUT_SIZE;
  for (;;)
    {
      int r;
      if (g->st.avail_in == 0 && refill (a, g) < 0)
        return -1;
      r = isal_inflate (&g->st);
      if (r < 0)
        {
          archive_set_error (a, EINVAL, "gzip: %s",
                             r == ISAL_INCORRECT_CHECKSUM ? "checksum mismatch" : "corrupt data");
          return -1;
        }
      produced = OUT_SIZE - g->st.avail_out;
      if (g->st.block_state == ISAL_BLOCK_FINISH)
        {
          /* another member? (its first three bytes) */
          if (g->st.avail_in < 3 && refill (a, g) < 0)
            return -1;
          if (g->st.avail_in >= 3 && g->st.next_in[0] == 0x1f && g->st.next_in[1] == 0x8b
              && g->st.next_in[2] == 8)
            {
              member_start (g);
              if (produced == OUT_SIZE)
                return (la_ssize_t) produced;
              continue;
            }
          g->done = true;
          return (la_ssize_t) produced;
        }
      if (produced == OUT_SIZE)
        return (la_ssize_t) produced;
      if (g->st.avail_in == 0 && g->eof)
        {
          archive_set_error (a, EINVAL, "gzip: unexpected end of data");
          return -1;
        }
      if (g->st.avail_in == 0 && produced > 0)
        return (la_ssize_t) produced; /* before waiting for more input */
    }
}

static int
gz_close (struct archive *a, void *data)
{
  struct gz_src *g = data;
  (void) a;
  free (g->in);
  free (g->out);
  free (g);
  return ARCHIVE_OK;
}

int
ob_layer_archive_open (struct archive *a, int fd)
{
  struct gz_src *g = calloc (1, sizeof *g);
  ssize_t n;

  if (g == NULL || (g->in = malloc (IN_SIZE)) == NULL || (g->out = malloc (OUT_SIZE)) == NULL)
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
      gz_close (a, g);
      archive_set_error (a, e, "read: %s", strerror (e));
      return ARCHIVE_FATAL;
    }
  g->eof = n == 0;
  if (n >= 3 && g->in[0] == 0x1f && g->in[1] == 0x8b && g->in[2] == 8)
    {
      g->gzip = true;
      isal_inflate_init (&g->st);
      g->st.crc_flag = ISAL_GZIP;
      g->st.next_in = g->in;
      g->st.avail_in = (uint32_t) n;
    }
  else
    {
      g->pending = true;
      g->first = (size_t) n;
    }
  archive_read_set_read_callback (a, gz_read);
  archive_read_set_close_callback (a, gz_close);
  archive_read_set_callback_data (a, g);
  return archive_read_open1 (a);
}
