/* layer: members made ahead.  While a RUN step runs, one of obuild's
 * threads, at idle priority (SCHED_IDLE: it takes only CPU time nobody else
 * wants, typically the core a single-threaded `cp`, `tar` or `apt-get`
 * leaves idle), walks the step's upper directory and compresses the big
 * regular files that have stopped changing, exactly as the layer writer
 * will compress them afterwards: the writer cuts the parallel gzip stream
 * before a big file's data and after its padding (layer_write.c), so a
 * file's members are a function of its content alone (each BLOCK bytes of
 * it, the last one with the tar padding).  The members go to an unlinked
 * file beside the store's scratch; the layer is byte for byte the one
 * written without this thread, just sooner.
 *
 * A member is offered for a file only when it is still what it was made
 * from, which two checks establish:
 *  - its inode, size, mtime and ctime are those seen before and after it
 *    was read, and its ctime was at least PRECOMP_SETTLE_NS old when the
 *    read began.  A write(2), truncate, fallocate, or a write through a new
 *    mapping's first fault after that moment sets ctime to the current
 *    (coarse) time, which is then past the old ctime, so the commit sees
 *    it.  The one change ctime misses: a process that kept a shared
 *    writable mapping whose page was already dirty writes to it again
 *    (no fault, no time update);
 *  - for that case, pgzip's worker compares each member's CRC-32 (its
 *    gzip trailer) with that of the block's bytes, a hundredth of the cost
 *    of compressing them.
 * Both can be defeated only on purpose (a CRC is easy to forge), by the
 * step itself, and the result is then an image whose layer does not match
 * its diff_id, which every consumer rejects: the step can write any bytes
 * it likes into its own layer anyway.  Neither check reads anything the
 * layer would not hold: the members are made from the step's own files.
 *
 * The step is hostile: the directory changes under the walk.  Names are
 * opened with openat2 (RESOLVE_BENEATH, no symlinks), files with O_NOFOLLOW
 * and O_NONBLOCK and kept only when fstat says a regular file.  Bounded:
 * PRECOMP_MAX_FILES files, PRECOMP_MAX_SPILL bytes of members,
 * PRECOMP_MAX_WALK entries per walk (past those it stops), and only while
 * the store's file system keeps PRECOMP_MIN_FREE and a tenth of its size
 * free (the step must not run out of space for members); it stops within
 * one block's compression of being asked. */
#include "config.h"
#include <obuild/layer.h>
#include <obuild/util.h>
#include "layer_priv.h"
#include "pgzip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <search.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PRECOMP_MAX_FILES 65536
#define PRECOMP_MAX_SPILL ((uint64_t) 1 << 30)
#define PRECOMP_MAX_WALK 1000000
#define PRECOMP_MAX_DIRS 100000
/* members are made only while the store's file system has this much free,
 * and a tenth of its size */
#define PRECOMP_MIN_FREE ((uint64_t) 2 << 30)
/* a file whose ctime is this recent may still be being written */
#define PRECOMP_SETTLE_NS 40000000L
/* the least pause between walks that found nothing to do */
#define PRECOMP_PAUSE_NS 30000000L

struct precomp_file
{
  char *path;
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime, ctime;
  uint64_t *offs;  /* member k is [offs[k], offs[k + 1]) of the spill file */
  uint64_t n;      /* members */
};

struct ob_layer_precomp
{
  int upperfd;
  dev_t dev;              /* upper's: the walk stays on its file system */
  bool has_since;
  struct timespec since;  /* only files changed since (a container's root) */
  int spillfd;
  int level;
  bool isal;
  pthread_t thread;
  bool started;
  atomic_bool stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* the thread's own until it is joined, then read-only */
  void *tree; /* of struct precomp_file, by path (tsearch) */
  size_t n_files;
  uint64_t spill;
  atomic_size_t made; /* files recorded (read by tests while it runs) */
  bool full;
  struct ob_pgzip_compressor *comp;
  unsigned char *in, *out;
  size_t out_cap;
};

/* Files by path in a balanced tree (glibc's tsearch, red-black): the
 * paths are the step's, and a hash table keyed by them could be flooded
 * with colliding names. */
static int
cmp_file (const void *a, const void *b)
{
  return strcmp (((const struct precomp_file *) a)->path, ((const struct precomp_file *) b)->path);
}

static struct precomp_file *
find (const struct ob_layer_precomp *pc, const char *path)
{
  struct precomp_file key = { .path = (char *) path };
  void *const *x = tfind (&key, &pc->tree, cmp_file);
  return x ? *x : NULL;
}

/* A new entry for path. */
static struct precomp_file *
add_file (struct ob_layer_precomp *pc, const char *path)
{
  struct precomp_file *f = ob_xmalloc0 (sizeof *f);
  f->path = ob_xstrdup (path);
  if (tsearch (f, &pc->tree, cmp_file) == NULL)
    ob_oom ();
  pc->n_files++;
  return f;
}

static void
free_file (void *p)
{
  struct precomp_file *f = p;
  free (f->path);
  free (f->offs);
  free (f);
}

static bool
same_time (struct timespec a, struct timespec b)
{
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool
settled (const struct stat *st)
{
  struct timespec now;
  clock_gettime (CLOCK_REALTIME, &now);
  int64_t age = (int64_t) (now.tv_sec - st->st_ctim.tv_sec) * 1000000000 + (now.tv_nsec - st->st_ctim.tv_nsec);
  return age >= PRECOMP_SETTLE_NS;
}

static bool
write_at (int fd, const unsigned char *buf, size_t n, uint64_t off)
{
  while (n > 0)
    {
      ssize_t r = pwrite (fd, buf, n, (off_t) off);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        return false;
      buf += r;
      n -= (size_t) r;
      off += (uint64_t) r;
    }
  return true;
}

/* Open the directory path (names from readdir joined by "/", or ".")
 * below dirfd, never through a symlink nor onto another mount. */
static int
open_beneath (int dirfd, const char *path)
{
  static atomic_bool no_openat2;
  struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                          .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
                                     | RESOLVE_NO_XDEV };
  cleanup_free char *copy = NULL;
  char *save = NULL;
  int fd;
  if (!atomic_load (&no_openat2) && getenv ("OBUILD_TEST_NO_OPENAT2") == NULL)
    {
      fd = (int) syscall (SYS_openat2, dirfd, path, &how, sizeof how);
      if (fd >= 0 || errno != ENOSYS)
        return fd;
      atomic_store (&no_openat2, true);
    }
  /* without openat2 (valgrind 3.19, old kernels): a component at a time,
   * none of them a symlink (the names hold no "..": readdir's, skipped) */
  fd = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  copy = ob_xstrdup (path);
  for (char *c = strtok_r (copy, "/", &save); c && fd >= 0; c = strtok_r (NULL, "/", &save))
    {
      int next;
      if (strcmp (c, ".") == 0)
        continue;
      next = openat (fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      close (fd);
      fd = next;
    }
  return fd;
}

/* Whether the store's file system has room to spare for members: the
 * step writes there too, and must not run out of space for them. */
static bool
room_to_spare (const struct ob_layer_precomp *pc)
{
  struct statvfs sv;
  if (fstatvfs (pc->spillfd, &sv) < 0)
    return false;
  uint64_t avail = (uint64_t) sv.f_bavail * sv.f_frsize, size = (uint64_t) sv.f_blocks * sv.f_frsize;
  return avail >= PRECOMP_MIN_FREE && avail >= size / 10;
}

/* Compress the file at path (st: what the walk saw) into the spill file;
 * record it when it did not change meanwhile.  Returns true when it did
 * some work. */
static bool
compress_file (struct ob_layer_precomp *pc, int dirfd, const char *name, const char *path, const struct stat *seen)
{
  size_t block = ob_pgzip_block_size ();
  struct stat st, after;
  uint64_t start = pc->spill;
  uint64_t n = ((uint64_t) seen->st_size + block - 1) / block;
  size_t cap = 0;
  cleanup_free uint64_t *offs = NULL;
  cleanup_close int fd = openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || st.st_ino != seen->st_ino
      || st.st_size != seen->st_size || !same_time (st.st_ctim, seen->st_ctim))
    return false;
  if (!room_to_spare (pc))
    {
      pc->full = true;
      return false;
    }
  /* a sparse file of a petabyte is not a petabyte of offsets: they grow
   * with what was compressed, which the spill bounds */
  for (uint64_t k = 0; k < n; k++)
    {
      if (k + 2 > cap)
        {
          cap = cap ? cap * 2 : 16;
          offs = ob_xrealloc (offs, cap * sizeof *offs);
          offs[0] = start;
        }
      off_t at = (off_t) k * (off_t) block;
      size_t want = st.st_size - at < (off_t) block ? (size_t) (st.st_size - at) : block, got = 0;
      if (atomic_load (&pc->stop))
        goto undo;
      while (got < want)
        {
          ssize_t r = pread (fd, pc->in + got, want - got, at + (off_t) got);
          if (r < 0 && errno == EINTR)
            continue;
          if (r <= 0)
            goto undo;
          got += (size_t) r;
        }
      /* the last block carries the tar padding, as in the stream */
      if (k == n - 1 && want % 512)
        {
          memset (pc->in + want, 0, 512 - want % 512);
          want += 512 - want % 512;
        }
      size_t m = ob_pgzip_compress (pc->comp, pc->in, want, pc->out, pc->out_cap);
      if (m == 0 || pc->spill + m > PRECOMP_MAX_SPILL)
        {
          pc->full = m != 0;
          goto undo;
        }
      if (!write_at (pc->spillfd, pc->out, m, pc->spill))
        {
          pc->full = true;
          goto undo;
        }
      pc->spill += m;
      offs[k + 1] = pc->spill;
    }
  if (fstat (fd, &after) < 0 || after.st_size != st.st_size || !same_time (after.st_ctim, st.st_ctim))
    goto undo;
  {
    struct precomp_file *f = find (pc, path);
    if (f == NULL)
      {
        if (pc->n_files >= PRECOMP_MAX_FILES)
          {
            pc->full = true;
            goto undo;
          }
        f = add_file (pc, path);
      }
    free (f->offs);
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->size = st.st_size;
    f->mtime = st.st_mtim;
    f->ctime = st.st_ctim;
    f->n = n;
    atomic_fetch_add (&pc->made, 1);
    f->offs = steal_pointer (&offs);
    if (n == 0)
      f->offs = ob_xmalloc0 (sizeof *f->offs);
  }
  return true;
undo:
  /* the members of a file kept are before start: reuse the space */
  pc->spill = start;
  return true;
}

/* One walk of the upper directory, breadth first by relative paths (no
 * descriptor per level).  Returns whether it compressed anything. */
static bool
walk (struct ob_layer_precomp *pc)
{
  cleanup_strv char **queue = NULL;
  size_t n_queue = 0, head = 0, seen = 0;
  bool worked = false;

  ob_strv_push (&queue, &n_queue, ob_xstrdup ("."));
  while (head < n_queue && !atomic_load (&pc->stop) && !pc->full)
    {
      const char *dir = queue[head++];
      cleanup_close int dfd = open_beneath (pc->upperfd, dir);
      DIR *d;
      struct dirent *de;
      if (dfd < 0)
        continue;
      d = fdopendir (dfd);
      if (d == NULL)
        continue;
      dfd = -1; /* d owns it */
      while ((de = readdir (d)) != NULL && !atomic_load (&pc->stop) && !pc->full)
        {
          struct stat st;
          cleanup_free char *path = NULL;
          if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
            continue;
          if (++seen > PRECOMP_MAX_WALK)
            {
              pc->full = true;
              break;
            }
          if (de->d_type != DT_DIR && de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
            continue;
          path = strcmp (dir, ".") == 0 ? ob_xstrdup (de->d_name) : ob_xasprintf ("%s/%s", dir, de->d_name);
          if (strlen (path) > OB_LAYER_PATH_MAX)
            continue;
          if (fstatat (dirfd (d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
          if (S_ISDIR (st.st_mode))
            {
              /* another mount (a container's /proc): not walked */
              if (st.st_dev != pc->dev)
                continue;
              if (n_queue >= PRECOMP_MAX_DIRS)
                {
                  pc->full = true;
                  break;
                }
              ob_strv_push (&queue, &n_queue, steal_pointer (&path));
              continue;
            }
          if (!S_ISREG (st.st_mode) || (size_t) st.st_size < OB_LAYER_SPLIT_MIN || !settled (&st))
            continue;
          if (pc->has_since
              && (st.st_ctim.tv_sec < pc->since.tv_sec
                  || (st.st_ctim.tv_sec == pc->since.tv_sec && st.st_ctim.tv_nsec < pc->since.tv_nsec)))
            continue;
          struct precomp_file *f = find (pc, path);
          if (f && f->ino == st.st_ino && f->size == st.st_size && same_time (f->ctime, st.st_ctim))
            continue;
          worked |= compress_file (pc, dirfd (d), de->d_name, path, &st);
        }
      closedir (d);
    }
  return worked;
}

static int64_t
mono_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
precomp_main (void *arg)
{
  struct ob_layer_precomp *pc = arg;
  struct sched_param sp = { 0 };
  /* only the CPU time nobody else wants */
  (void) pthread_setschedparam (pthread_self (), SCHED_IDLE, &sp);
  while (!atomic_load (&pc->stop) && !pc->full)
    {
      int64_t t0 = mono_ns (), pause;
      if (walk (pc))
        continue;
      /* a walk that found nothing new: wait twice as long as it took (a
       * big tree is not walked over and over), PRECOMP_PAUSE_NS at least */
      pause = 2 * (mono_ns () - t0);
      if (pause < PRECOMP_PAUSE_NS)
        pause = PRECOMP_PAUSE_NS;
      struct timespec until;
      clock_gettime (CLOCK_REALTIME, &until);
      until.tv_sec += (time_t) (pause / 1000000000);
      until.tv_nsec += (long) (pause % 1000000000);
      if (until.tv_nsec >= 1000000000L)
        {
          until.tv_sec++;
          until.tv_nsec -= 1000000000L;
        }
      pthread_mutex_lock (&pc->mu);
      if (!atomic_load (&pc->stop))
        pthread_cond_timedwait (&pc->cv, &pc->mu, &until);
      pthread_mutex_unlock (&pc->mu);
    }
  return NULL;
}

struct ob_layer_precomp *
ob_layer_precomp_start (const char *upper, const char *tmpdir, const struct ob_layer_opts *opts,
                        const struct timespec *since)
{
  struct ob_layer_precomp *pc;
  struct stat st;
  if (opts->compression != OB_COMPRESS_GZIP || opts->single_thread_gzip || getenv ("OBUILD_TEST_NO_PRECOMPRESS"))
    return NULL;
  pc = ob_xmalloc0 (sizeof *pc);
  pc->upperfd = open (upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  pc->spillfd = open (tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  pc->level = opts->level > 0 ? opts->level : OB_GZIP_DEFAULT_LEVEL;
  pc->isal = ob_layer_gzip_isal (opts);
  atomic_init (&pc->stop, false);
  atomic_init (&pc->made, 0);
  pthread_mutex_init (&pc->mu, NULL);
  pthread_cond_init (&pc->cv, NULL);
  if (since)
    {
      pc->has_since = true;
      pc->since = *since;
    }
  if (pc->upperfd < 0 || pc->spillfd < 0 || fstat (pc->upperfd, &st) < 0)
    {
      ob_layer_precomp_free (pc);
      return NULL;
    }
  pc->dev = st.st_dev;
  pc->comp = ob_pgzip_compressor_new (pc->level, pc->isal);
  pc->in = ob_xmalloc (ob_pgzip_block_size ());
  pc->out_cap = ob_pgzip_member_bound ();
  pc->out = ob_xmalloc (pc->out_cap);
  if (pthread_create (&pc->thread, NULL, precomp_main, pc) != 0)
    {
      ob_layer_precomp_free (pc);
      return NULL;
    }
  pc->started = true;
  return pc;
}

void
ob_layer_precomp_stop (struct ob_layer_precomp *pc)
{
  if (pc == NULL || !pc->started)
    return;
  pthread_mutex_lock (&pc->mu);
  atomic_store (&pc->stop, true);
  pthread_cond_signal (&pc->cv);
  pthread_mutex_unlock (&pc->mu);
  pthread_join (pc->thread, NULL);
  pc->started = false;
  /* its buffers are no longer needed */
  ob_pgzip_compressor_free (steal_pointer (&pc->comp));
  free (steal_pointer (&pc->in));
  free (steal_pointer (&pc->out));
}

void
ob_layer_precomp_free (struct ob_layer_precomp *pc)
{
  if (pc == NULL)
    return;
  ob_layer_precomp_stop (pc);
  tdestroy (pc->tree, free_file);
  if (pc->upperfd >= 0)
    close (pc->upperfd);
  if (pc->spillfd >= 0)
    close (pc->spillfd);
  pthread_mutex_destroy (&pc->mu);
  pthread_cond_destroy (&pc->cv);
  free (pc);
}

uint64_t
ob_layer_precomp_files (struct ob_layer_precomp *pc)
{
  return pc ? atomic_load (&pc->made) : 0;
}

const struct precomp_file *
ob_layer_precomp_find (const struct ob_layer_precomp *pc, const struct ob_layer_opts *opts, const char *path,
                       const struct stat *st)
{
  const struct precomp_file *f;
  /* made for another compressor, or still being made: nothing to offer */
  if (pc == NULL || pc->started || pc->level != (opts->level > 0 ? opts->level : OB_GZIP_DEFAULT_LEVEL)
      || pc->isal != ob_layer_gzip_isal (opts))
    return NULL;
  f = find (pc, path);
  if (f == NULL || f->ino != st->st_ino || f->dev != st->st_dev || f->size != st->st_size
      || !same_time (f->ctime, st->st_ctim) || !same_time (f->mtime, st->st_mtim))
    return NULL;
  return f;
}

int
ob_layer_precomp_offer (const struct ob_layer_precomp *pc, const struct precomp_file *f, struct ob_pgzip *pgz,
                        uint64_t k, ob_error_t *err)
{
  if (k >= f->n)
    return 0;
  return ob_pgzip_offer (pgz, pc->spillfd, f->offs[k], (size_t) (f->offs[k + 1] - f->offs[k]), err);
}
