#include "config.h"
#include <obuild/cache.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct file_ent
{
  dev_t dev;
  ino_t ino;
  off_t size;
  int64_t mtime_ns, ctime_ns;
  char digest[72];
};

struct ob_cache
{
  char *dir;
  json_t *pending;  /* key -> entry */
  json_t *imported; /* key -> entry (from --cache-from) */
  json_t *session;  /* key -> entry (recorded by this build's other processes) */
  struct file_ent *files;
  size_t n_files, cap_files;
  size_t *slots;   /* open-addressing index into files by (dev, ino): +1, 0 = empty */
  size_t n_slots;
  bool files_dirty;
};

static size_t
file_hash (dev_t dev, ino_t ino)
{
  uint64_t h = (uint64_t) ino * 0x9e3779b97f4a7c15ull ^ ((uint64_t) dev + 0x632be59bd9b4e019ull);
  return (size_t) (h ^ (h >> 29));
}

static void
index_put (struct ob_cache *c, size_t i)
{
  size_t mask = c->n_slots - 1;
  size_t k = file_hash (c->files[i].dev, c->files[i].ino) & mask;
  while (c->slots[k])
    k = (k + 1) & mask;
  c->slots[k] = i + 1;
}

static struct file_ent *
find_file (struct ob_cache *c, dev_t dev, ino_t ino)
{
  size_t mask, k;
  if (c->n_slots == 0)
    return NULL;
  mask = c->n_slots - 1;
  for (k = file_hash (dev, ino) & mask; c->slots[k]; k = (k + 1) & mask)
    {
      struct file_ent *f = &c->files[c->slots[k] - 1];
      if (f->dev == dev && f->ino == ino)
        return f;
    }
  return NULL;
}

static void
add_file (struct ob_cache *c, const struct file_ent *f)
{
  if (c->n_files == c->cap_files)
    {
      c->cap_files = c->cap_files ? c->cap_files * 2 : 1024;
      c->files = ob_xrealloc (c->files, c->cap_files * sizeof *c->files);
    }
  c->files[c->n_files++] = *f;
  if ((c->n_files + 1) * 2 > c->n_slots)
    {
      free (c->slots);
      c->n_slots = c->n_slots ? c->n_slots * 2 : 2048;
      while ((c->n_files + 1) * 2 > c->n_slots)
        c->n_slots *= 2;
      c->slots = ob_xmalloc0 (c->n_slots * sizeof *c->slots);
      for (size_t i = 0; i < c->n_files; i++)
        index_put (c, i);
    }
  else
    index_put (c, c->n_files - 1);
}

int
ob_cache_open (const char *root, struct ob_cache **out, ob_error_t *err)
{
  struct ob_cache *c = ob_xmalloc0 (sizeof *c);
  cleanup_free char *entries = NULL;
  cleanup_file FILE *f = NULL;
  cleanup_free char *idx = NULL;
  char line[256];

  c->dir = ob_xasprintf ("%s/cache", root);
  entries = ob_xasprintf ("%s/entries", c->dir);
  if (ob_mkdir_p_at (AT_FDCWD, entries, 0700, err) < 0)
    {
      free (c->dir);
      free (c);
      return ob_error_wrap (err, "build cache");
    }
  c->pending = json_object ();
  c->imported = json_object ();
  c->session = json_object ();
  idx = ob_xasprintf ("%s/files", c->dir);
  f = fopen (idx, "re");
  while (f && fgets (line, sizeof line, f))
    {
      struct file_ent e;
      unsigned long long dev, ino;
      long long size, mt, ct;
      char dg[80];
      if (sscanf (line, "%llu %llu %lld %lld %lld %79s", &dev, &ino, &size, &mt, &ct, dg) != 6
          || !ob_digest_valid (dg))
        continue;
      e.dev = dev;
      e.ino = ino;
      e.size = size;
      e.mtime_ns = mt;
      e.ctime_ns = ct;
      strcpy (e.digest, dg);
      add_file (c, &e);
    }
  *out = c;
  return 0;
}

static json_t *
entry_json (const struct ob_cache_entry *e)
{
  json_t *j = json_object ();
  json_object_set_new (j, "empty", json_boolean (e->empty));
  if (!e->empty)
    {
      json_object_set_new (j, "digest", json_string (e->digest));
      json_object_set_new (j, "size", json_integer (e->size));
      json_object_set_new (j, "mediaType", json_string (e->media_type));
      json_object_set_new (j, "diff_id", json_string (e->diff_id));
    }
  json_object_set_new (j, "created_by", json_string (e->created_by ? e->created_by : ""));
  if (e->created)
    json_object_set_new (j, "created", json_string (e->created));
  json_object_set_new (j, "stamp", json_integer (e->stamp));
  return j;
}

static bool
entry_from_json (json_t *j, struct ob_cache_entry *e)
{
  const char *s;
  memset (e, 0, sizeof *e);
  if (!json_is_object (j))
    return false;
  e->empty = json_is_true (json_object_get (j, "empty"));
  if (!e->empty)
    {
      const char *dg = json_string_value (json_object_get (j, "digest"));
      const char *di = json_string_value (json_object_get (j, "diff_id"));
      const char *mt = json_string_value (json_object_get (j, "mediaType"));
      if (!ob_digest_valid (dg) || !ob_digest_valid (di) || mt == NULL || strlen (mt) >= sizeof e->media_type
          || !json_is_integer (json_object_get (j, "size")))
        return false;
      strcpy (e->digest, dg);
      strcpy (e->diff_id, di);
      strcpy (e->media_type, mt);
      e->size = json_integer_value (json_object_get (j, "size"));
    }
  s = json_string_value (json_object_get (j, "created_by"));
  e->created_by = ob_xstrdup (s ? s : "");
  s = json_string_value (json_object_get (j, "created"));
  e->created = s ? ob_xstrdup (s) : NULL;
  e->stamp = json_integer_value (json_object_get (j, "stamp"));
  return true;
}

void
ob_cache_entry_clear (struct ob_cache_entry *e)
{
  free (e->created_by);
  free (e->created);
  e->created_by = e->created = NULL;
}

int
ob_cache_lookup (struct ob_cache *c, const char *key, int64_t ttl, struct ob_cache_entry *out)
{
  cleanup_free char *path = NULL;
  cleanup_free char *data = NULL;
  size_t len;
  ob_error_t e = NULL;
  json_t *j = NULL;
  bool ok;

  if (!ob_digest_valid (key))
    return 0;
  path = ob_xasprintf ("%s/entries/%s", c->dir, key + 7);
  j = json_incref (json_object_get (c->session, key));
  if (j == NULL && ob_read_file_at (AT_FDCWD, path, &data, &len, &e) == 0)
    j = json_loadb (data, len, 0, NULL);
  ob_error_free (&e);
  if (j == NULL)
    j = json_incref (json_object_get (c->imported, key));
  if (j == NULL)
    return 0;
  /* an entry whose key is not the one asked (a damaged or moved file) is
   * never used */
  ok = entry_from_json (j, out) && (json_object_get (j, "key") == NULL
                                    || strcmp (json_string_value (json_object_get (j, "key")) ?: "", key) == 0);
  json_decref (j);
  if (!ok)
    {
      ob_cache_entry_clear (out);
      return 0;
    }
  if (ttl > 0 && out->stamp > 0 && time (NULL) - out->stamp > ttl)
    {
      ob_cache_entry_clear (out);
      return 0;
    }
  return 1;
}

void
ob_cache_record (struct ob_cache *c, const char *key, const struct ob_cache_entry *e)
{
  json_t *j = entry_json (e);
  json_object_set_new (j, "key", json_string (key));
  json_object_set_new (c->pending, key, j);
}

char **
ob_cache_pending (struct ob_cache *c)
{
  char **v = NULL;
  const char *key;
  json_t *j;
  json_object_foreach (c->pending, key, j)
    {
      cleanup_free char *text = json_dumps (j, JSON_SORT_KEYS | JSON_COMPACT);
      if (text == NULL)
        ob_oom ();
      ob_strv_take (&v, ob_xasprintf ("%s\t%s", key, text));
    }
  return v;
}

int
ob_cache_adopt (struct ob_cache *c, const char *line, ob_error_t *err)
{
  const char *tab = strchr (line, '\t');
  cleanup_free char *key = tab ? ob_xstrndup (line, (size_t) (tab - line)) : NULL;
  struct ob_cache_entry e;
  json_t *j = tab ? json_loads (tab + 1, 0, NULL) : NULL;
  if (key == NULL || !ob_digest_valid (key) || j == NULL || !entry_from_json (j, &e))
    {
      json_decref (j);
      return ob_error_make (err, OB_ERR_GENERIC, 0, "invalid cache entry from a stage's build process");
    }
  ob_cache_entry_clear (&e);
  json_object_set (c->pending, key, j);
  json_object_set_new (c->session, key, j);
  return 0;
}

bool
ob_cache_in_session (struct ob_cache *c, const char *key)
{
  return json_object_get (c->session, key) != NULL;
}

static int
flush_files (struct ob_cache *c, ob_error_t *err)
{
  struct ob_buf b = { 0 };
  cleanup_free char *idx = ob_xasprintf ("%s/files", c->dir);
  int r;
  for (size_t i = 0; i < c->n_files; i++)
    {
      char line[200];
      snprintf (line, sizeof line, "%llu %llu %lld %lld %lld %s\n", (unsigned long long) c->files[i].dev,
                (unsigned long long) c->files[i].ino, (long long) c->files[i].size,
                (long long) c->files[i].mtime_ns, (long long) c->files[i].ctime_ns, c->files[i].digest);
      ob_buf_adds (&b, line);
    }
  r = ob_write_file_atomic_at (AT_FDCWD, idx, b.data ? b.data : "", b.len, 0600, err);
  ob_buf_free (&b);
  return r;
}

int
ob_cache_close (struct ob_cache *c, bool flush, ob_error_t *err)
{
  int r = 0;
  const char *key;
  json_t *j;
  if (c == NULL)
    return 0;
  if (flush)
    {
      json_object_foreach (c->pending, key, j)
        {
          cleanup_free char *path = ob_xasprintf ("%s/entries/%s", c->dir, key + 7);
          cleanup_free char *text = json_dumps (j, JSON_SORT_KEYS | JSON_COMPACT);
          if (r == 0 && ob_write_file_atomic_at (AT_FDCWD, path, text, strlen (text), 0600, err) < 0)
            r = -1;
        }
      if (r == 0 && c->files_dirty)
        r = flush_files (c, err);
    }
  json_decref (c->pending);
  json_decref (c->imported);
  json_decref (c->session);
  free (c->files);
  free (c->slots);
  free (c->dir);
  free (c);
  return r;
}

int
ob_cache_file_digest (struct ob_cache *c, int dirfd, const char *name, const struct stat *st,
                      char out[72], ob_error_t *err)
{
  struct file_ent key = { .dev = st->st_dev, .ino = st->st_ino };
  struct file_ent *hit = find_file (c, key.dev, key.ino);
  int64_t mt = (int64_t) st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
  int64_t ct = (int64_t) st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
  cleanup_close int fd = -1;
  struct ob_sha256 *h;
  char buf[65536];

  if (hit && hit->size == st->st_size && hit->mtime_ns == mt && hit->ctime_ns == ct)
    {
      strcpy (out, hit->digest);
      return 0;
    }
  fd = openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ob_error_make (err, OB_ERR_CONTEXT, errno, "open `%s`", name);
  h = ob_sha256_new ();
  for (;;)
    {
      ssize_t n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          ob_sha256_free (h);
          return ob_error_make (err, OB_ERR_CONTEXT, errno, "read `%s`", name);
        }
      if (n == 0)
        break;
      ob_sha256_update (h, buf, n);
    }
  ob_sha256_final (h, out);
  if (hit)
    {
      hit->size = st->st_size;
      hit->mtime_ns = mt;
      hit->ctime_ns = ct;
      strcpy (hit->digest, out);
    }
  else
    {
      struct file_ent e = { st->st_dev, st->st_ino, st->st_size, mt, ct, "" };
      strcpy (e.digest, out);
      add_file (c, &e);
    }
  c->files_dirty = true;
  return 0;
}

char *
ob_cache_export (struct ob_cache *c, char *const *keys)
{
  json_t *all = json_object ();
  char *text;
  for (size_t i = 0; keys && keys[i]; i++)
    {
      struct ob_cache_entry e;
      json_t *j = json_object_get (c->pending, keys[i]);
      if (j)
        json_object_set (all, keys[i], j);
      else if (ob_cache_lookup (c, keys[i], 0, &e) == 1)
        {
          json_t *n = entry_json (&e);
          json_object_set_new (n, "key", json_string (keys[i]));
          json_object_set_new (all, keys[i], n);
          ob_cache_entry_clear (&e);
        }
    }
  text = json_dumps (all, JSON_SORT_KEYS | JSON_COMPACT);
  json_decref (all);
  return text;
}

int
ob_cache_import (struct ob_cache *c, const char *json, size_t len, ob_error_t *err)
{
  json_t *j = json_loadb (json, len, 0, NULL);
  const char *key;
  json_t *v;
  if (!json_is_object (j))
    {
      json_decref (j);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "cache: invalid exported cache");
    }
  json_object_foreach (j, key, v)
    if (ob_digest_valid (key))
      json_object_set (c->imported, key, v);
  json_decref (j);
  return 0;
}
