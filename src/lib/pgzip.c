/* layer: parallel gzip.  The tar stream is cut into fixed 1 MiB blocks, each
 * compressed as an independent gzip member on a small pool of threads, and
 * the members are written in order.  Two compressors: libdeflate (levels
 * 1-12; its bytes are the same on every CPU) and ISA-L's igzip (about three
 * times as fast as libdeflate's level 1 for members ~5% larger, but its
 * bytes may depend on the instruction set the CPU offers, so reproducible
 * builds do not use it; see ob_layer_gzip_isal).  With a hasher, the
 * uncompressed stream's sha256 (the layer's diff_id) is taken on a thread
 * of its own, block by block in order, while the workers compress: the
 * thread feeding the blocks only reads and copies.  A concatenation of gzip
 * members is one valid gzip file (RFC 1952), read by zlib, Go's and Python's
 * readers; block boundaries fixed by the stream keep the output
 * byte-identical whatever the scheduling: every BLOCK bytes, and where the
 * writer cuts (around a big file's data, ob_pgzip_cut).  A block may come
 * with the member it is expected to give, made ahead while a RUN step still
 * ran (layer_precomp.c): a worker takes it when its trailer has the
 * block's CRC-32 and length (ob_pgzip_offer).  Memory: SLOTS blocks
 * in flight. */
#include "config.h"
#include "pgzip.h"
#include <obuild/layer.h>
#include <obuild/util.h>

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define BLOCK (1u << 20)
/* Blocks in flight: up to SLOTS, as long as they hold at most
 * KEPT_SLOTS blocks' worth of input.  Small blocks (the stream is cut
 * around big files) need the many slots to keep both cores busy; the
 * slots past KEPT_SLOTS give their pages back when freed, so that memory
 * stays that of KEPT_SLOTS full blocks and what is in flight. */
#define SLOTS 32
#define KEPT_SLOTS 12
#define MAX_THREADS 8
/* igzip's level: 2 compresses a little better than 1 at the same speed */
#define ISAL_LEVEL 2
#define ISAL_LEVEL_BUF ISAL_DEF_LVL2_DEFAULT

enum slot_state
{
  SLOT_FREE,
  SLOT_FILLED,
  SLOT_BUSY,
  SLOT_DONE,
};

struct slot
{
  enum slot_state state;
  unsigned long seq;
  unsigned char *in;
  size_t in_len;
  unsigned char *out;
  size_t out_cap, out_len;
  size_t cand_len; /* > 0: out holds an offered member (ob_pgzip_offer) */
  bool hashed; /* its input is in the hash (always, without a hasher) */
};

struct ob_pgzip
{
  int level;
  bool isal;
  ob_pgzip_emit_fn emit;
  void *emit_data;
  pthread_mutex_t mu;
  pthread_cond_t work, done;
  pthread_t threads[MAX_THREADS];
  int n_threads;
  struct ob_sha256 *hash_in; /* or NULL */
  pthread_t hasher;
  bool hasher_started;
  pthread_t emitter; /* writes the members out, in order */
  bool emitter_started;
  bool failed;           /* the emitter stopped on an error: */
  ob_error_t emit_err;   /* this one */
  unsigned long hash_seq; /* next sequence to hash */
  bool stop;
  struct slot slots[SLOTS];
  unsigned long next_seq;  /* sequence of the block being filled */
  unsigned long emit_seq;  /* next sequence to write out */
  struct slot *filling;
  size_t inflight; /* input bytes of the blocks submitted, not yet written */
  bool wrote_any;
  uint64_t reused; /* input bytes whose offered member was used */
};

/* One thread's compressor: libdeflate's, or igzip's working memory. */
struct compressor
{
  struct libdeflate_compressor *ld;
  unsigned char *isal_buf;
};

static void
compressor_init (struct compressor *c, int level, bool isal)
{
  memset (c, 0, sizeof *c);
  c->ld = libdeflate_alloc_compressor (level);
  c->isal_buf = isal ? ob_xmalloc (ISAL_LEVEL_BUF) : NULL;
}

static void
compressor_free (struct compressor *c)
{
  libdeflate_free_compressor (c->ld);
  free (c->isal_buf);
}

/* Compress one block into one gzip member; 0 on failure.  igzip's header is
 * libdeflate's (no name, mtime 0, OS "unknown").  A block igzip cannot fit
 * in the output buffer goes to libdeflate, whose bound is exact. */
static size_t
compress_raw (struct compressor *c, const unsigned char *in, size_t in_len, unsigned char *out, size_t out_cap)
{
  if (c->isal_buf)
    {
      struct isal_zstream z;
      /* igzip's stateless calls leave their hash tables in level_buf, and
       * the next call may take a match from a stale entry: valid output,
       * but bytes that depend on which blocks this thread compressed
       * before (seen at level 1, once in ~5,000 blocks).  A clean buffer
       * per block keeps the bytes a function of the block alone. */
      memset (c->isal_buf, 0, ISAL_LEVEL_BUF);
      /* stateless_init leaves fields of the stream that the call reads
       * (valgrind: a jump on them): none may come from the stack */
      memset (&z, 0, sizeof z);
      isal_deflate_stateless_init (&z);
      z.level = ISAL_LEVEL;
      z.level_buf = c->isal_buf;
      z.level_buf_size = ISAL_LEVEL_BUF;
      z.gzip_flag = IGZIP_GZIP;
      z.end_of_stream = 1;
      z.flush = NO_FLUSH;
      z.next_in = (uint8_t *) in;
      z.avail_in = (uint32_t) in_len;
      z.next_out = out;
      z.avail_out = (uint32_t) out_cap;
      if (isal_deflate_stateless (&z) == COMP_OK)
        return z.total_out;
    }
  return c->ld ? libdeflate_gzip_compress (c->ld, in, in_len, out, out_cap) : 0;
}

/* Whether the offered member in s->out was made from s->in: its trailer
 * (RFC 1952: CRC-32, then the length mod 2^32) is that of s->in.  The
 * member is then what compress_raw makes of s->in (the speculator
 * compressed that content with the same function, whose bytes depend on
 * the input alone).  The CRC is the second of two checks: the writer
 * offers a member only for a file whose inode, size, mtime and ctime are
 * those it was made from (layer_precomp.c says why that alone is nearly
 * enough), and a CRC costs a hundredth of compressing (a sha256, a
 * sixth; decompressing to compare, nearly as much as compressing). */
static bool
offered_ok (const struct slot *s)
{
  const unsigned char *t;
  uint32_t crc, isize;
  if (s->cand_len < 18)
    return false;
  t = s->out + s->cand_len - 8;
  crc = (uint32_t) t[0] | (uint32_t) t[1] << 8 | (uint32_t) t[2] << 16 | (uint32_t) t[3] << 24;
  isize = (uint32_t) t[4] | (uint32_t) t[5] << 8 | (uint32_t) t[6] << 16 | (uint32_t) t[7] << 24;
  return isize == (uint32_t) s->in_len && crc32_gzip_refl (0, s->in, s->in_len) == crc;
}

/* The block's member: the offered one when it holds the block's bytes,
 * else compressed here. */
static size_t
compress_block (struct compressor *c, struct slot *s, uint64_t *reused)
{
  if (s->cand_len > 0 && offered_ok (s))
    {
      *reused += s->in_len;
      return s->cand_len;
    }
  return compress_raw (c, s->in, s->in_len, s->out, s->out_cap);
}

/* The slot a thread takes next, or NULL: for a worker the oldest filled
 * block, for the hasher the block next in order once it is filled. */
static struct slot *
next_slot (struct ob_pgzip *p, bool hashing)
{
  struct slot *s = NULL;
  for (int i = 0; i < SLOTS; i++)
    {
      struct slot *c = &p->slots[i];
      if (hashing ? c->state != SLOT_FREE && !c->hashed && c->seq == p->hash_seq
                  : c->state == SLOT_FILLED && (s == NULL || c->seq < s->seq))
        s = c;
    }
  return s;
}

/* Wait, the mutex held, for the slot a thread takes next; NULL once the
 * pool stops. */
static struct slot *
wait_slot (struct ob_pgzip *p, bool hashing)
{
  struct slot *s = NULL;
  while (!p->stop && (s = next_slot (p, hashing)) == NULL)
    pthread_cond_wait (&p->work, &p->mu);
  return p->stop ? NULL : s;
}

static void *
worker (void *arg)
{
  struct ob_pgzip *p = arg;
  struct compressor c;
  compressor_init (&c, p->level, p->isal);
  pthread_mutex_lock (&p->mu);
  for (;;)
    {
      uint64_t reused = 0;
      struct slot *s = wait_slot (p, false);
      if (s == NULL)
        break;
      s->state = SLOT_BUSY;
      pthread_mutex_unlock (&p->mu);
      s->out_len = compress_block (&c, s, &reused);
      pthread_mutex_lock (&p->mu);
      p->reused += reused;
      s->state = SLOT_DONE;
      pthread_cond_broadcast (&p->done);
    }
  pthread_mutex_unlock (&p->mu);
  compressor_free (&c);
  return NULL;
}

/* The hasher: each filled block's input, in order.  A slot is emitted (and
 * reused) only once hashed, so its input stays until then. */
static void *
hasher (void *arg)
{
  struct ob_pgzip *p = arg;
  pthread_mutex_lock (&p->mu);
  for (;;)
    {
      struct slot *s = wait_slot (p, true);
      if (s == NULL)
        break;
      pthread_mutex_unlock (&p->mu);
      ob_sha256_update (p->hash_in, s->in, s->in_len);
      pthread_mutex_lock (&p->mu);
      s->hashed = true;
      p->hash_seq++;
      pthread_cond_broadcast (&p->done);
    }
  pthread_mutex_unlock (&p->mu);
  return NULL;
}

static void *
buf_alloc (size_t n)
{
  void *b = mmap (NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (b == MAP_FAILED)
    ob_oom ();
  return b;
}

/* A written slot's pages, given back unless it is one of the kept ones;
 * without the mutex (the slot is nobody else's until freed). */
static void
slot_trim (struct ob_pgzip *p, struct slot *s)
{
  if (s - p->slots >= KEPT_SLOTS)
    {
      (void) madvise (s->in, BLOCK, MADV_DONTNEED);
      (void) madvise (s->out, s->out_cap, MADV_DONTNEED);
    }
}

/* Free a written slot, the mutex held. */
static void
slot_free (struct ob_pgzip *p, struct slot *s)
{
  s->state = SLOT_FREE;
  s->hashed = false;
  p->inflight -= s->in_len;
  p->emit_seq++;
  p->wrote_any = true;
}

/* The slot of the next member to write out, or NULL. */
static struct slot *
head_slot (struct ob_pgzip *p)
{
  for (int i = 0; i < SLOTS; i++)
    if (p->slots[i].state != SLOT_FREE && p->slots[i].seq == p->emit_seq)
      return &p->slots[i];
  return NULL;
}

/* The emitter: each finished member, in order, to the emit function (the
 * blob's hash and its file), off the thread that reads the files. */
static void *
emitter (void *arg)
{
  struct ob_pgzip *p = arg;
  pthread_mutex_lock (&p->mu);
  while (!p->stop)
    {
      struct slot *s = head_slot (p);
      int r;
      if (s == NULL || s->state != SLOT_DONE || !s->hashed)
        {
          pthread_cond_wait (&p->done, &p->mu);
          continue;
        }
      if (s->out_len == 0)
        {
          ob_error_make (&p->emit_err, OB_ERR_GENERIC, 0, "gzip: compression failed");
          p->failed = true;
          break;
        }
      pthread_mutex_unlock (&p->mu);
      r = p->emit (p->emit_data, s->out, s->out_len, &p->emit_err);
      if (r == 0)
        slot_trim (p, s);
      pthread_mutex_lock (&p->mu);
      if (r < 0)
        {
          p->failed = true;
          break;
        }
      slot_free (p, s);
      pthread_cond_broadcast (&p->done);
    }
  pthread_cond_broadcast (&p->done);
  pthread_mutex_unlock (&p->mu);
  return NULL;
}

struct ob_pgzip *
ob_pgzip_new (int level, bool isal, int threads, struct ob_sha256 *hash_in, ob_pgzip_emit_fn emit,
              void *emit_data)
{
  struct ob_pgzip *p = ob_xmalloc0 (sizeof *p);
  p->level = level > 0 ? (level > 12 ? 12 : level) : OB_GZIP_DEFAULT_LEVEL;
  p->isal = isal;
  p->emit = emit;
  p->emit_data = emit_data;
  pthread_mutex_init (&p->mu, NULL);
  pthread_cond_init (&p->work, NULL);
  pthread_cond_init (&p->done, NULL);
  for (int i = 0; i < SLOTS; i++)
    {
      p->slots[i].in = buf_alloc (BLOCK);
      p->slots[i].out_cap = libdeflate_gzip_compress_bound (NULL, BLOCK);
      p->slots[i].out = buf_alloc (p->slots[i].out_cap);
    }
  if (threads < 1)
    threads = 1;
  if (threads > MAX_THREADS)
    threads = MAX_THREADS;
  for (int i = 0; i < threads; i++)
    if (pthread_create (&p->threads[p->n_threads], NULL, worker, p) == 0)
      p->n_threads++;
  p->hash_in = hash_in;
  if (hash_in && pthread_create (&p->hasher, NULL, hasher, p) == 0)
    p->hasher_started = true;
  if (p->n_threads > 0 && pthread_create (&p->emitter, NULL, emitter, p) == 0)
    p->emitter_started = true;
  return p;
}

/* Write out, in order, every finished block; with wait, block until the
 * oldest one is finished.  With an emitter thread (the rule), only wait
 * (with wait_one) for it to write one, and report its error.  Called with
 * the mutex held. */
static int
drain (struct ob_pgzip *p, bool wait_one, ob_error_t *err)
{
  if (p->emitter_started)
    {
      if (wait_one && !p->failed)
        pthread_cond_wait (&p->done, &p->mu);
      if (!p->failed)
        return 0;
      if (p->emit_err)
        {
          ob_error_free (err);
          *err = steal_pointer (&p->emit_err);
          return -1;
        }
      return ob_error_make (err, OB_ERR_GENERIC, 0, "gzip: writing the layer failed");
    }
  for (;;)
    {
      struct slot *s = NULL;
      for (int i = 0; i < SLOTS; i++)
        if (p->slots[i].state != SLOT_FREE && p->slots[i].seq == p->emit_seq && &p->slots[i] != p->filling)
          s = &p->slots[i];
      if (s == NULL)
        return 0;
      if (s->state != SLOT_DONE || !s->hashed)
        {
          if (!wait_one)
            return 0;
          pthread_cond_wait (&p->done, &p->mu);
          continue;
        }
      if (s->out_len == 0)
        return ob_error_make (err, OB_ERR_GENERIC, 0, "gzip: compression failed");
      pthread_mutex_unlock (&p->mu);
      int r = p->emit (p->emit_data, s->out, s->out_len, err);
      if (r == 0)
        slot_trim (p, s);
      pthread_mutex_lock (&p->mu);
      if (r < 0)
        return -1;
      slot_free (p, s);
      wait_one = false;
    }
}

static int
submit (struct ob_pgzip *p, ob_error_t *err)
{
  int r = 0;
  if (p->hash_in == NULL || !p->hasher_started)
    {
      /* no hasher thread: here, in order, before anyone else sees it */
      if (p->hash_in)
        ob_sha256_update (p->hash_in, p->filling->in, p->filling->in_len);
      p->filling->hashed = true;
    }
  pthread_mutex_lock (&p->mu);
  p->filling->state = SLOT_FILLED;
  p->inflight += p->filling->in_len;
  p->filling = NULL;
  /* the workers and the hasher wait on it */
  if (p->hasher_started)
    pthread_cond_broadcast (&p->work);
  else
    pthread_cond_signal (&p->work);
  if (p->n_threads == 0)
    {
      /* no thread could be started: compress here */
      struct slot *s = NULL;
      for (int i = 0; i < SLOTS; i++)
        if (p->slots[i].state == SLOT_FILLED)
          s = &p->slots[i];
      struct compressor c;
      compressor_init (&c, p->level, p->isal);
      s->out_len = compress_block (&c, s, &p->reused);
      compressor_free (&c);
      s->state = SLOT_DONE;
    }
  r = drain (p, false, err);
  pthread_mutex_unlock (&p->mu);
  return r;
}

static int
get_slot (struct ob_pgzip *p, ob_error_t *err)
{
  pthread_mutex_lock (&p->mu);
  for (;;)
    {
      for (int i = 0; i < SLOTS && p->inflight + BLOCK <= (size_t) KEPT_SLOTS * BLOCK; i++)
        if (p->slots[i].state == SLOT_FREE)
          {
            p->filling = &p->slots[i];
            p->filling->seq = p->next_seq++;
            p->filling->in_len = 0;
            p->filling->cand_len = 0;
            pthread_mutex_unlock (&p->mu);
            return 0;
          }
      if (drain (p, true, err) < 0)
        {
          pthread_mutex_unlock (&p->mu);
          return -1;
        }
    }
}

int
ob_pgzip_write (struct ob_pgzip *p, const void *data, size_t n, ob_error_t *err)
{
  const unsigned char *d = data;
  while (n > 0)
    {
      size_t take;
      if (p->filling == NULL && get_slot (p, err) < 0)
        return -1;
      take = BLOCK - p->filling->in_len;
      if (take > n)
        take = n;
      memcpy (p->filling->in + p->filling->in_len, d, take);
      p->filling->in_len += take;
      d += take;
      n -= take;
      if (p->filling->in_len == BLOCK && submit (p, err) < 0)
        return -1;
    }
  return 0;
}

int
ob_pgzip_cut (struct ob_pgzip *p, ob_error_t *err)
{
  if (p->filling && p->filling->in_len > 0)
    return submit (p, err);
  return 0;
}

int
ob_pgzip_offer (struct ob_pgzip *p, int fd, uint64_t off, size_t n, ob_error_t *err)
{
  ssize_t r;
  if (p->filling == NULL && get_slot (p, err) < 0)
    return -1;
  if (p->filling->in_len > 0 || n == 0 || n > p->filling->out_cap)
    return 0;
  p->filling->cand_len = 0;
  do
    r = pread (fd, p->filling->out, n, (off_t) off);
  while (r < 0 && errno == EINTR);
  /* unreadable: the block is compressed as any other */
  if (r == (ssize_t) n)
    p->filling->cand_len = n;
  return 0;
}

uint64_t
ob_pgzip_reused (const struct ob_pgzip *p)
{
  return p->reused;
}

size_t
ob_pgzip_block_size (void)
{
  return BLOCK;
}

size_t
ob_pgzip_member_bound (void)
{
  return libdeflate_gzip_compress_bound (NULL, BLOCK);
}

struct ob_pgzip_compressor
{
  struct compressor c;
};

struct ob_pgzip_compressor *
ob_pgzip_compressor_new (int level, bool isal)
{
  struct ob_pgzip_compressor *c = ob_xmalloc (sizeof *c);
  compressor_init (&c->c, level > 0 ? (level > 12 ? 12 : level) : OB_GZIP_DEFAULT_LEVEL, isal);
  return c;
}

size_t
ob_pgzip_compress (struct ob_pgzip_compressor *c, const void *in, size_t n, void *out, size_t cap)
{
  return compress_raw (&c->c, in, n, out, cap);
}

void
ob_pgzip_compressor_free (struct ob_pgzip_compressor *c)
{
  if (c == NULL)
    return;
  compressor_free (&c->c);
  free (c);
}

int
ob_pgzip_finish (struct ob_pgzip *p, ob_error_t *err)
{
  int r = 0;
  /* an empty stream is still one (empty) gzip member */
  if (p->filling == NULL && !p->wrote_any && p->next_seq == 0 && get_slot (p, err) < 0)
    return -1;
  if (p->filling && (p->filling->in_len > 0 || p->next_seq == 1) && submit (p, err) < 0)
    return -1;
  if (p->filling)
    {
      /* an empty last slot: give it back */
      pthread_mutex_lock (&p->mu);
      p->filling->state = SLOT_FREE;
      p->next_seq--;
      p->filling = NULL;
      pthread_mutex_unlock (&p->mu);
    }
  pthread_mutex_lock (&p->mu);
  while (r == 0 && p->emit_seq < p->next_seq)
    r = drain (p, true, err);
  pthread_mutex_unlock (&p->mu);
  return r;
}

void
ob_pgzip_free (struct ob_pgzip *p)
{
  if (p == NULL)
    return;
  pthread_mutex_lock (&p->mu);
  p->stop = true;
  pthread_cond_broadcast (&p->work);
  pthread_cond_broadcast (&p->done);
  pthread_mutex_unlock (&p->mu);
  for (int i = 0; i < p->n_threads; i++)
    pthread_join (p->threads[i], NULL);
  if (p->hasher_started)
    pthread_join (p->hasher, NULL);
  if (p->emitter_started)
    pthread_join (p->emitter, NULL);
  ob_error_free (&p->emit_err);
  for (int i = 0; i < SLOTS; i++)
    {
      munmap (p->slots[i].in, BLOCK);
      munmap (p->slots[i].out, p->slots[i].out_cap);
    }
  pthread_mutex_destroy (&p->mu);
  pthread_cond_destroy (&p->work);
  pthread_cond_destroy (&p->done);
  free (p);
}
