/* statmap: an open-addressing hash table from path to (inode, ctime). */
#include "config.h"
#include <obuild/statmap.h>
#include <obuild/util.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot
{
  char *path; /* NULL: empty */
  uint64_t hash;
  ino_t ino;
  struct timespec ctime;
};

struct ob_statmap
{
  struct slot *slots;
  size_t cap; /* a power of two */
  size_t n;
};

/* FNV-1a, 64 bits */
static uint64_t
hash_path (const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    {
      h ^= (unsigned char) *s;
      h *= 1099511628211ULL;
    }
  return h;
}

struct ob_statmap *
ob_statmap_new (void)
{
  struct ob_statmap *m = ob_xmalloc0 (sizeof *m);
  m->cap = 1024;
  m->slots = ob_xmalloc0 (m->cap * sizeof *m->slots);
  return m;
}

void
ob_statmap_free (struct ob_statmap *m)
{
  if (m == NULL)
    return;
  for (size_t i = 0; i < m->cap; i++)
    free (m->slots[i].path);
  free (m->slots);
  free (m);
}

static struct slot *
find (const struct ob_statmap *m, const char *path, uint64_t h)
{
  size_t i = (size_t) h & (m->cap - 1);
  for (;; i = (i + 1) & (m->cap - 1))
    {
      struct slot *s = &m->slots[i];
      if (s->path == NULL || (s->hash == h && strcmp (s->path, path) == 0))
        return s;
    }
}

static void
grow (struct ob_statmap *m)
{
  struct slot *old = m->slots;
  size_t ocap = m->cap;
  m->cap *= 2;
  m->slots = ob_xmalloc0 (m->cap * sizeof *m->slots);
  for (size_t i = 0; i < ocap; i++)
    if (old[i].path)
      *find (m, old[i].path, old[i].hash) = old[i];
  free (old);
}

void
ob_statmap_put (struct ob_statmap *m, const char *path, const struct stat *st)
{
  uint64_t h = hash_path (path);
  struct slot *s;
  /* at most half full: probes stay short */
  if ((m->n + 1) * 2 > m->cap)
    grow (m);
  s = find (m, path, h);
  if (s->path == NULL)
    {
      s->path = ob_xstrdup (path);
      s->hash = h;
      m->n++;
    }
  s->ino = st->st_ino;
  s->ctime = st->st_ctim;
}

int
ob_statmap_same (const struct ob_statmap *m, const char *path, const struct stat *st)
{
  const struct slot *s = find (m, path, hash_path (path));
  if (s->path == NULL)
    return -1;
  return s->ino == st->st_ino && s->ctime.tv_sec == st->st_ctim.tv_sec && s->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

size_t
ob_statmap_size (const struct ob_statmap *m)
{
  return m->n;
}
