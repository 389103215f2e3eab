#include "config.h"
#include <obuild/store.h>
#include <obuild/layer.h>
#include <obuild/tree.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct ob_layout
{
  char *path;
  int dfd;   /* the layout directory */
  int blobs; /* blobs/sha256 */
};

struct staged
{
  char digest[72];
};

struct ob_txn
{
  struct ob_layout *l;
  char *scratch; /* private directory: staging blobs live in scratch/blobs */
  int scratchfd;
  int stagefd;
  struct staged *staged;
  size_t n_staged;
  unsigned tmp_counter;
  bool committed;
};

static const char OCI_LAYOUT[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

const char *
ob_layout_path (const struct ob_layout *l)
{
  return l->path;
}

void
ob_layout_close (struct ob_layout *l)
{
  if (l == NULL)
    return;
  if (l->dfd >= 0)
    close (l->dfd);
  if (l->blobs >= 0)
    close (l->blobs);
  free (l->path);
  free (l);
}

/* A file of a layout (oci-layout, index.json), read whole: a regular file
 * of the layout directory only.  A layout may come from an archive, or be
 * a directory of unknown origin: a symlink would read a file anywhere (an
 * oci-archive's `index.json -> /dev/zero` filled the memory), a FIFO would
 * block forever. */
#define LAYOUT_FILE_MAX (64u << 20)

static int
read_layout_file (struct ob_layout *l, const char *name, char **data, size_t *len, ob_error_t *err)
{
  cleanup_close int fd = openat (l->dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd < 0 && errno != ELOOP)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s/%s`", l->path, name);
  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s/%s`: not a regular file", l->path, name);
  /* nor a file of any size (a sparse one costs no disk): 64 MiB is some
   * 250,000 tags */
  if (st.st_size > LAYOUT_FILE_MAX)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s/%s`: %lld bytes, more than the %u allowed", l->path, name,
                          (long long) st.st_size, LAYOUT_FILE_MAX);
  if (ob_read_fd (fd, data, len, err) < 0)
    return ob_error_wrap (err, "`%s/%s`", l->path, name);
  return 0;
}

int
ob_layout_open (const char *path, bool create, struct ob_layout **out, ob_error_t *err)
{
  struct ob_layout *l;
  cleanup_free char *layout = NULL;
  struct stat st;

  if (create && ob_mkdir_p_at (AT_FDCWD, path, 0755, err) < 0)
    return ob_error_wrap (err, "create layout `%s`", path);
  l = ob_xmalloc0 (sizeof *l);
  l->blobs = -1;
  l->path = ob_xstrdup (path);
  l->dfd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (l->dfd < 0)
    {
      int e = errno;
      ob_layout_close (l);
      return ob_error_make (err, e == ENOENT ? OB_ERR_IMAGE : OB_ERR_STORE, e,
                            "open OCI layout `%s`", path);
    }
  if (fstatat (l->dfd, "oci-layout", &st, 0) < 0)
    {
      if (!create)
        {
          ob_layout_close (l);
          return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s` is not an OCI image layout (no oci-layout file)",
                                path);
        }
      if (ob_write_file_atomic_at (l->dfd, "oci-layout", OCI_LAYOUT, strlen (OCI_LAYOUT), 0644, err) < 0)
        {
          ob_layout_close (l);
          return ob_error_wrap (err, "create layout `%s`", path);
        }
    }
  else
    {
      size_t len;
      json_t *j;
      if (read_layout_file (l, "oci-layout", &layout, &len, err) < 0)
        {
          ob_layout_close (l);
          return -1;
        }
      j = json_loads (layout, 0, NULL);
      if (j == NULL || !json_is_string (json_object_get (j, "imageLayoutVersion")))
        {
          json_decref (j);
          ob_layout_close (l);
          return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s/oci-layout`: invalid content", path);
        }
      json_decref (j);
    }
  if (fstatat (l->dfd, "index.json", &st, 0) < 0)
    {
      static const char empty[] = "{\"manifests\":[],\"schemaVersion\":2}";
      if (!create)
        {
          ob_layout_close (l);
          return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s` is not an OCI image layout (no index.json)", path);
        }
      /* under the index lock (ob_txn_commit), looking again: a build that
       * opened the new store at the same time may have created it and
       * tagged an image in it already */
      int r = 0;
      if (flock (l->dfd, LOCK_EX) < 0)
        {
          int e = errno;
          ob_layout_close (l);
          return ob_error_make (err, OB_ERR_STORE, e, "lock `%s`", path);
        }
      if (fstatat (l->dfd, "index.json", &st, 0) < 0)
        r = ob_write_file_atomic_at (l->dfd, "index.json", empty, strlen (empty), 0644, err);
      flock (l->dfd, LOCK_UN);
      if (r < 0)
        {
          ob_layout_close (l);
          return ob_error_wrap (err, "create layout `%s`", path);
        }
    }
  if (create && ob_mkdir_p_at (l->dfd, "blobs/sha256", 0755, err) < 0)
    {
      ob_layout_close (l);
      return ob_error_wrap (err, "layout `%s`", path);
    }
  l->blobs = openat (l->dfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (l->blobs < 0)
    {
      int e = errno;
      ob_layout_close (l);
      return ob_error_make (err, OB_ERR_IMAGE, e, "open `%s/blobs/sha256`", path);
    }
  *out = l;
  return 0;
}

int
ob_layout_blob_open (struct ob_layout *l, const char *digest, int *fd, ob_error_t *err)
{
  if (!ob_digest_valid (digest))
    return ob_error_make (err, OB_ERR_IMAGE, 0, "invalid digest `%s`", digest);
  /* O_NONBLOCK: a FIFO there (from an archive) must not block the open */
  *fd = openat (l->blobs, digest + 7, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (*fd < 0)
    return ob_error_make (err, errno == ENOENT ? OB_ERR_IMAGE : OB_ERR_STORE, errno,
                          "blob %s in `%s`", digest, l->path);
  {
    /* a device or FIFO has no end: reading it (to copy or hash it) filled
     * the disk or blocked forever */
    struct stat st;
    if (fstat (*fd, &st) < 0 || !S_ISREG (st.st_mode))
      {
        close (*fd);
        *fd = -1;
        return ob_error_make (err, OB_ERR_IMAGE, 0, "blob %s in `%s`: not a regular file", digest, l->path);
      }
  }
  return 0;
}

bool
ob_layout_has_blob (struct ob_layout *l, const char *digest)
{
  struct stat st;
  return ob_digest_valid (digest) && fstatat (l->blobs, digest + 7, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int
read_verified (int fd, const char *digest, char **data, size_t *len, ob_error_t *err)
{
  char got[OB_DIGEST_LEN];
  if (ob_read_fd (fd, data, len, err) < 0)
    return ob_error_wrap (err, "blob %s", digest);
  ob_sha256_digest (*data, *len, got);
  if (strcmp (got, digest) != 0)
    {
      free (*data);
      *data = NULL;
      return ob_error_make (err, OB_ERR_IMAGE, 0, "blob %s: content has digest %s", digest, got);
    }
  return 0;
}

int
ob_layout_blob_read (struct ob_layout *l, const char *digest, char **data, size_t *len,
                     ob_error_t *err)
{
  cleanup_close int fd = -1;
  if (ob_layout_blob_open (l, digest, &fd, err) < 0)
    return -1;
  return read_verified (fd, digest, data, len, err);
}

static int
json_size_ok (const struct ob_descriptor *d, ob_error_t *err)
{
  if (d->size > OB_MAX_JSON_BLOB)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "%s: size %lld is more than the %d bytes allowed for a manifest, index or config",
                          d->digest, (long long) d->size, OB_MAX_JSON_BLOB);
  return 0;
}

int
ob_blob_check_size (int fd, const struct ob_descriptor *d, bool json, ob_error_t *err)
{
  struct stat st;
  if (json && json_size_ok (d, err) < 0)
    return -1;
  if (fstat (fd, &st) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "blob %s", d->digest);
  if (st.st_size != d->size)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "blob %s: size %lld, the descriptor says %lld", d->digest,
                          (long long) st.st_size, (long long) d->size);
  return 0;
}

int
ob_layout_blob_read_desc (struct ob_layout *l, const struct ob_descriptor *d, char **data, size_t *len,
                          ob_error_t *err)
{
  cleanup_close int fd = -1;
  if (json_size_ok (d, err) < 0)
    return -1;
  if (ob_layout_blob_open (l, d->digest, &fd, err) < 0 || ob_blob_check_size (fd, d, true, err) < 0
      || read_verified (fd, d->digest, data, len, err) < 0)
    return -1;
  if ((int64_t) *len != d->size) /* changed under us */
    {
      free (*data);
      *data = NULL;
      return ob_error_make (err, OB_ERR_IMAGE, 0, "blob %s: size %zu, the descriptor says %lld", d->digest, *len,
                            (long long) d->size);
    }
  return 0;
}

static int
read_index (struct ob_layout *l, json_t **out, ob_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len;
  json_error_t jerr;
  json_t *j;
  if (read_layout_file (l, "index.json", &data, &len, err) < 0)
    return -1;
  j = json_loadb (data, len, 0, &jerr);
  if (j == NULL || !json_is_object (j))
    {
      json_decref (j);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s/index.json`: invalid JSON: %s", l->path, jerr.text);
    }
  if (!json_is_array (json_object_get (j, "manifests")))
    json_object_set_new (j, "manifests", json_array ());
  *out = j;
  return 0;
}

static const char *
entry_tag (json_t *e)
{
  return json_string_value (json_object_get (json_object_get (e, "annotations"), OB_ANNOT_REF_NAME));
}

/* Does an index entry's platform object match the wanted one?  No
 * platform at all matches anything (an index of one image); a variant is
 * compared only when both sides name one. */
static bool
platform_matches (json_t *p, const char *os, const char *arch, const char *variant)
{
  const char *pa = json_string_value (json_object_get (p, "architecture"));
  const char *po = json_string_value (json_object_get (p, "os"));
  const char *pv = json_string_value (json_object_get (p, "variant"));
  if (p == NULL)
    return true;
  if (pa == NULL || po == NULL || strcmp (pa, arch) != 0 || strcmp (po, os) != 0)
    return false;
  return variant == NULL || pv == NULL || strcmp (pv, variant) == 0;
}

/* Pick the manifest for platform os/arch[/variant] out of an index
 * document.  d is only written on success. */
static int
pick_platform (struct ob_layout *l, const struct ob_descriptor *idx, const char *os, const char *arch,
               const char *variant, struct ob_descriptor *d, ob_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len, i;
  json_t *j, *e, *ms;
  if (ob_layout_blob_read_desc (l, idx, &data, &len, err) < 0)
    return ob_error_wrap (err, "index");
  j = json_loadb (data, len, 0, NULL);
  if (j == NULL)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "index %s: invalid JSON", idx->digest);
  ms = json_object_get (j, "manifests");
  if (!json_is_array (ms))
    {
      /* the descriptor said "index"; the blob (a manifest?) is not one */
      json_decref (j);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "index %s: not an image index (no manifests list)",
                            idx->digest);
    }
  json_array_foreach (ms, i, e)
    {
      if (platform_matches (json_object_get (e, "platform"), os, arch, variant))
        {
          int r = ob_descriptor_from_json (e, d, err);
          json_decref (j);
          if (r < 0)
            return ob_error_wrap (err, "index %s", idx->digest);
          return 0;
        }
    }
  json_decref (j);
  return ob_error_make (err, OB_ERR_IMAGE, 0, "index %s has no image for %s/%s%s%s", idx->digest, os, arch,
                        variant ? "/" : "", variant ? variant : "");
}

int
ob_layout_lookup (struct ob_layout *l, const char *ref, struct ob_descriptor *d, ob_error_t *err)
{
  return ob_layout_lookup_platform (l, ref, NULL, d, err);
}

static int lookup (struct ob_layout *l, const char *ref, const char *platform, bool follow,
                   struct ob_descriptor *d, ob_error_t *err);

int
ob_layout_lookup_platform (struct ob_layout *l, const char *ref, const char *platform,
                           struct ob_descriptor *d, ob_error_t *err)
{
  return lookup (l, ref, platform, true, d, err);
}

int
ob_layout_resolve_entry (struct ob_layout *l, const char *ref, struct ob_descriptor *d, ob_error_t *err)
{
  int r = lookup (l, ref, NULL, false, d, err);
  if (r == 0)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "image not found in `%s`: %s", l->path, ref);
  return r < 0 ? -1 : 0;
}

static int
lookup (struct ob_layout *l, const char *ref, const char *platform, bool follow, struct ob_descriptor *d,
        ob_error_t *err)
{
  cleanup_free char *os = NULL, *arch = NULL, *variant = NULL;
  json_t *idx = NULL;
  json_t *e, *found = NULL;
  size_t i;
  cleanup_free char *withtag = NULL;
  int r;

  memset (d, 0, sizeof *d);
  if (platform)
    {
      if (ob_image_platform_parse (platform, &os, &arch, &variant, err) < 0)
        return -1;
    }
  else
    {
      os = ob_xstrdup ("linux");
      arch = ob_xstrdup (ob_image_host_arch ());
      /* the host's variant is not required: an arm64 entry without one fits */
    }
  if (read_index (l, &idx, err) < 0)
    return -1;
  if (strchr (ref, ':') == NULL || strrchr (ref, '/') > strrchr (ref, ':'))
    withtag = ob_xasprintf ("%s:latest", ref);
  json_array_foreach (json_object_get (idx, "manifests"), i, e)
    {
      const char *tag = entry_tag (e);
      const char *dg = json_string_value (json_object_get (e, "digest"));
      if ((tag && (strcmp (tag, ref) == 0 || (withtag && strcmp (tag, withtag) == 0)))
          || (dg && strcmp (dg, ref) == 0))
        found = e;
    }
  if (found == NULL)
    {
      json_decref (idx);
      return 0;
    }
  r = ob_descriptor_from_json (found, d, err);
  json_decref (idx);
  if (r < 0)
    return ob_error_wrap (err, "`%s/index.json`", l->path);
  /* Iterative, and bounded: an index may list an index, but a hostile
   * layout could chain them without end. */
  for (int depth = 0; follow && ob_image_media_type_is_index (d->media_type); depth++)
    {
      struct ob_descriptor idxd = *d;
      if (depth >= OB_MAX_INDEX_DEPTH)
        {
          ob_descriptor_clear (d);
          return ob_error_make (err, OB_ERR_IMAGE, 0, "index %s: indexes nested more than %d deep",
                                idxd.digest, OB_MAX_INDEX_DEPTH);
        }
      /* idxd takes the string; d gets its own from pick_platform, or none */
      d->media_type = NULL;
      r = pick_platform (l, &idxd, os, arch, variant, d, err);
      ob_descriptor_clear (&idxd);
      if (r < 0)
        return -1;
    }
  /* the manifest's size, as the index gives it, before anyone reads it */
  {
    cleanup_close int fd = -1;
    if (json_size_ok (d, err) < 0 || ob_layout_blob_open (l, d->digest, &fd, err) < 0
        || ob_blob_check_size (fd, d, true, err) < 0)
      {
        ob_descriptor_clear (d);
        return ob_error_wrap (err, "manifest");
      }
  }
  return 1;
}

int
ob_layout_resolve (struct ob_layout *l, const char *ref, struct ob_descriptor *d, ob_error_t *err)
{
  return ob_layout_resolve_platform (l, ref, NULL, d, err);
}

int
ob_layout_resolve_platform (struct ob_layout *l, const char *ref, const char *platform,
                            struct ob_descriptor *d, ob_error_t *err)
{
  int r = ob_layout_lookup_platform (l, ref, platform, d, err);
  if (r == 0)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "image not found in `%s`: %s", l->path, ref);
  return r < 0 ? -1 : 0;
}

int
ob_layout_list (struct ob_layout *l, struct ob_layout_entry **out, size_t *n, ob_error_t *err)
{
  json_t *idx = NULL, *e;
  size_t i;
  struct ob_layout_entry *r;
  /* on failure: nothing to free (*out NULL, *n 0) */
  *out = NULL;
  *n = 0;
  if (read_index (l, &idx, err) < 0)
    return -1;
  r = ob_xmalloc0 (sizeof *r * (json_array_size (json_object_get (idx, "manifests")) + 1));
  json_array_foreach (json_object_get (idx, "manifests"), i, e)
    {
      if (ob_descriptor_from_json (e, &r[*n].desc, err) < 0)
        {
          ob_layout_entries_free (r, *n);
          *n = 0;
          json_decref (idx);
          return ob_error_wrap (err, "`%s/index.json`", l->path);
        }
      r[*n].tag = ob_xstrdup (entry_tag (e));
      (*n)++;
    }
  json_decref (idx);
  *out = r;
  return 0;
}

void
ob_layout_entries_free (struct ob_layout_entry *e, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (e[i].tag);
      ob_descriptor_clear (&e[i].desc);
    }
  free (e);
}

/* ---- transactions ---- */

int
ob_txn_begin (struct ob_layout *l, const char *scratch_dir, struct ob_txn **out, ob_error_t *err)
{
  struct ob_txn *t = ob_xmalloc0 (sizeof *t);
  t->l = l;
  t->scratchfd = t->stagefd = -1;
  cleanup_free char *prefix = ob_xasprintf (".obuild-%d-", (int) getpid ());
  if (ob_mkdtemp_in (scratch_dir, prefix, &t->scratch, err) < 0)
    {
      free (t);
      return -1;
    }
  t->scratchfd = open (t->scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (t->scratchfd < 0 || mkdirat (t->scratchfd, "blobs", 0700) < 0
      || (t->stagefd = openat (t->scratchfd, "blobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    {
      int e = errno;
      ob_txn_free (t);
      return ob_error_make (err, OB_ERR_STORE, e, "scratch directory in `%s`", scratch_dir);
    }
  *out = t;
  return 0;
}

const char *
ob_txn_scratch (struct ob_txn *t)
{
  return t->scratch;
}

int
ob_txn_blob_create (struct ob_txn *t, int *fd, ob_error_t *err)
{
  char name[32];
  /* the process id too: a build's stages built side by side by child
   * processes stage into one directory (build_jobs.c) */
  snprintf (name, sizeof name, "tmp-%d-%u", (int) getpid (), ++t->tmp_counter);
  *fd = openat (t->stagefd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (*fd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "create blob in `%s`", t->scratch);
  return 0;
}

static bool
is_staged (struct ob_txn *t, const char *digest)
{
  for (size_t i = 0; i < t->n_staged; i++)
    if (strcmp (t->staged[i].digest, digest) == 0)
      return true;
  return false;
}

static void
add_staged (struct ob_txn *t, const char *digest)
{
  t->staged = ob_xrealloc (t->staged, (t->n_staged + 1) * sizeof *t->staged);
  strcpy (t->staged[t->n_staged++].digest, digest);
}

int
ob_txn_blob_commit (struct ob_txn *t, int fd, const char *digest, ob_error_t *err)
{
  char name[32];
  snprintf (name, sizeof name, "tmp-%d-%u", (int) getpid (), t->tmp_counter);
  if (!ob_digest_valid (digest))
    {
      close (fd);
      return ob_error_make (err, OB_ERR_GENERIC, 0, "invalid digest `%s`", digest);
    }
  /* synced when the transaction publishes it (ob_txn_publish): the disk
   * writes it back meanwhile, while the build verifies, unpacks and runs
   * (a base's 64 MB blob took 47 ms to fsync here) */
  (void) sync_file_range (fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  close (fd);
  if (is_staged (t, digest) || ob_layout_has_blob (t->l, digest))
    {
      unlinkat (t->stagefd, name, 0);
      return 0;
    }
  if (renameat (t->stagefd, name, t->stagefd, digest + 7) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "stage blob %s", digest);
  add_staged (t, digest);
  return 0;
}

int
ob_txn_blob_take (struct ob_txn *t, const char *path, const char *digest, ob_error_t *err)
{
  if (!ob_digest_valid (digest) || !ob_str_has_prefix (path, t->scratch) || path[strlen (t->scratch)] != '/'
      || strstr (path + strlen (t->scratch), "/..") != NULL)
    return ob_error_make (err, OB_ERR_GENERIC, 0, "stage `%s` as %s: not a file of the transaction", path, digest);
  if (is_staged (t, digest) || ob_layout_has_blob (t->l, digest))
    {
      unlink (path);
      return 0;
    }
  if (renameat (AT_FDCWD, path, t->stagefd, digest + 7) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "stage blob %s", digest);
  add_staged (t, digest);
  {
    /* as ob_txn_blob_commit: written back now, synced when published */
    int fd = openat (t->stagefd, digest + 7, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0)
      {
        (void) sync_file_range (fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        close (fd);
      }
  }
  return 0;
}

int
ob_txn_blob_put (struct ob_txn *t, const void *data, size_t len, char digest[72], ob_error_t *err)
{
  int fd;
  ob_sha256_digest (data, len, digest);
  if (is_staged (t, digest) || ob_layout_has_blob (t->l, digest))
    return 0;
  if (ob_txn_blob_create (t, &fd, err) < 0)
    return -1;
  if (ob_write_all (fd, data, len, err) < 0)
    {
      close (fd);
      return ob_error_wrap (err, "blob %s", digest);
    }
  return ob_txn_blob_commit (t, fd, digest, err);
}

int
ob_txn_blob_copy_from (struct ob_txn *t, struct ob_layout *src, const char *digest, ob_error_t *err)
{
  cleanup_close int in = -1;
  int out;
  struct ob_sha256 *h;
  char got[OB_DIGEST_LEN];
  char buf[65536];

  if (is_staged (t, digest) || ob_layout_has_blob (t->l, digest))
    return 0;
  if (ob_layout_blob_open (src, digest, &in, err) < 0)
    return -1;
  if (ob_txn_blob_create (t, &out, err) < 0)
    return -1;
  h = ob_sha256_new ();
  for (;;)
    {
      ssize_t r = read (in, buf, sizeof buf);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          int e = errno;
          ob_sha256_free (h);
          close (out);
          return ob_error_make (err, OB_ERR_STORE, e, "read blob %s", digest);
        }
      if (r == 0)
        break;
      ob_sha256_update (h, buf, r);
      if (ob_write_all (out, buf, r, err) < 0)
        {
          ob_sha256_free (h);
          close (out);
          return ob_error_wrap (err, "copy blob %s", digest);
        }
    }
  ob_sha256_final (h, got);
  if (strcmp (got, digest) != 0)
    {
      close (out);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "blob %s in `%s`: content has digest %s", digest,
                            ob_layout_path (src), got);
    }
  return ob_txn_blob_commit (t, out, digest, err);
}

bool
ob_txn_blob_in_layout (struct ob_txn *t, const char *digest)
{
  return ob_digest_valid (digest) && !is_staged (t, digest) && ob_layout_has_blob (t->l, digest);
}

char **
ob_txn_staged (struct ob_txn *t)
{
  char **v = NULL;
  for (size_t i = 0; i < t->n_staged; i++)
    ob_strv_add (&v, t->staged[i].digest);
  return v;
}

int
ob_txn_adopt (struct ob_txn *t, const char *digest, ob_error_t *err)
{
  struct stat st;
  if (!ob_digest_valid (digest))
    return ob_error_make (err, OB_ERR_GENERIC, 0, "invalid digest `%s`", digest);
  if (is_staged (t, digest))
    return 0;
  if (fstatat (t->stagefd, digest + 7, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG (st.st_mode))
    return ob_error_make (err, OB_ERR_STORE, errno ? errno : EINVAL, "staged blob %s", digest);
  add_staged (t, digest);
  return 0;
}

int
ob_txn_blob_link_from (struct ob_txn *t, struct ob_layout *src, const char *digest, ob_error_t *err)
{
  char name[32];
  if (!ob_digest_valid (digest))
    return ob_error_make (err, OB_ERR_IMAGE, 0, "invalid digest `%s`", digest);
  if (is_staged (t, digest) || ob_layout_has_blob (t->l, digest))
    return 0;
  snprintf (name, sizeof name, "link-%d-%u", (int) getpid (), ++t->tmp_counter);
  /* same file system: share the (immutable) blob instead of copying it */
  if (linkat (src->blobs, digest + 7, t->stagefd, digest + 7, 0) == 0)
    {
      add_staged (t, digest);
      return 0;
    }
  return ob_txn_blob_copy_from (t, src, digest, err);
}

int
ob_txn_blob_open (struct ob_txn *t, const char *digest, int *fd, ob_error_t *err)
{
  if (ob_digest_valid (digest) && is_staged (t, digest))
    {
      *fd = openat (t->stagefd, digest + 7, O_RDONLY | O_CLOEXEC);
      if (*fd < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "staged blob %s", digest);
      return 0;
    }
  return ob_layout_blob_open (t->l, digest, fd, err);
}

/* Point tags[i] (or an untagged entry, when tags[i] has none) at
 * manifests[i], for each i in order, in one read and one write of
 * index.json: the result of committing them one after another (a tag goes
 * to the last that names it; an untagged entry goes when a later commit
 * is of its manifest; entries for the digests in replaces, untagged, go),
 * in O(entries + new tags) whatever their number. */
static int
update_index (struct ob_layout *l, size_t n, const struct ob_descriptor *manifests, char *const *const *tags,
              char *const *replaces, ob_error_t *err)
{
  json_t *idx = NULL, *mans, *kept, *e;
  json_t **news = ob_xmalloc0 ((n + 1) * sizeof *news);
  struct ob_strset later_tags = { 0 }, later_digests = { 0 }, gone = { 0 };
  size_t i;
  cleanup_free char *text = NULL;

  if (read_index (l, &idx, err) < 0)
    {
      free (news);
      return -1;
    }
  /* from the last commit back: what a later one takes is not added */
  for (i = n; i-- > 0;)
    {
      const struct ob_descriptor *m = &manifests[i];
      news[i] = json_array ();
      if (tags[i] == NULL || tags[i][0] == NULL)
        {
          if (!ob_strset_has (&later_digests, m->digest))
            json_array_append_new (news[i], ob_descriptor_to_json (m));
        }
      for (size_t k = 0; tags[i] && tags[i][k]; k++)
        {
          if (ob_strset_has (&later_tags, tags[i][k]))
            continue;
          json_t *d = ob_descriptor_to_json (m);
          json_t *a = json_object ();
          json_object_set_new (a, OB_ANNOT_REF_NAME, json_string (tags[i][k]));
          json_object_set_new (d, "annotations", a);
          json_array_append_new (news[i], d);
        }
      for (size_t k = 0; tags[i] && tags[i][k]; k++)
        ob_strset_add (&later_tags, tags[i][k]);
      ob_strset_add (&later_digests, m->digest);
    }
  for (size_t k = 0; replaces && replaces[k]; k++)
    ob_strset_add (&gone, replaces[k]);
  mans = json_object_get (idx, "manifests");
  kept = json_array ();
  json_array_foreach (mans, i, e)
    {
      const char *tag = entry_tag (e);
      const char *dg = json_string_value (json_object_get (e, "digest"));
      bool drop = tag ? ob_strset_has (&later_tags, tag)
                      : dg && (ob_strset_has (&later_digests, dg) || ob_strset_has (&gone, dg));
      if (!drop)
        json_array_append (kept, e);
    }
  for (i = 0; i < n; i++)
    {
      json_array_extend (kept, news[i]);
      json_decref (news[i]);
    }
  free (news);
  ob_strset_free (&later_tags);
  ob_strset_free (&later_digests);
  ob_strset_free (&gone);
  json_object_set_new (idx, "manifests", kept);
  json_object_set_new (idx, "schemaVersion", json_integer (2));
  json_object_set_new (idx, "mediaType", json_string (OB_MT_OCI_INDEX));
  text = ob_json_canonical (idx);
  json_decref (idx);
  {
    /* a rebuild whose every step was cached tags what is tagged already:
     * the same bytes need no write and no fsync (0.6 ms each) */
    cleanup_free char *cur = NULL;
    size_t len = 0;
    ob_error_t rerr = NULL;
    if (ob_read_file_at (l->dfd, "index.json", &cur, &len, &rerr) == 0 && len == strlen (text)
        && memcmp (cur, text, len) == 0)
      return 0;
    ob_error_free (&rerr);
  }
  if (ob_write_file_atomic_at (l->dfd, "index.json", text, strlen (text), 0644, err) < 0)
    return ob_error_wrap (err, "layout `%s`", l->path);
  return 0;
}

int
ob_txn_commit (struct ob_txn *t, const struct ob_descriptor *manifest, char *const *tags,
               ob_error_t *err)
{
  return ob_txn_commit_replacing (t, manifest, tags, NULL, err);
}

int
ob_txn_commit_replacing (struct ob_txn *t, const struct ob_descriptor *manifest, char *const *tags,
                         char *const *replaces, ob_error_t *err)
{
  int r;
  if (ob_txn_publish (t, err) < 0)
    return -1;
  /* index.json is shared by concurrent builds: read-modify-write under an
   * exclusive lock on the layout directory so no tag is lost. */
  if (flock (t->l->dfd, LOCK_EX) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "lock `%s`", t->l->path);
  r = update_index (t->l, 1, manifest, &tags, replaces, err);
  flock (t->l->dfd, LOCK_UN);
  if (r == 0)
    t->committed = true;
  return r;
}

int
ob_txn_commit_many (struct ob_txn *t, size_t n, const struct ob_descriptor *manifests, char *const *const *tags,
                    ob_error_t *err)
{
  int r;
  if (ob_txn_publish (t, err) < 0)
    return -1;
  if (flock (t->l->dfd, LOCK_EX) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "lock `%s`", t->l->path);
  r = update_index (t->l, n, manifests, tags, NULL, err);
  flock (t->l->dfd, LOCK_UN);
  if (r == 0)
    t->committed = true;
  return r;
}

int
ob_layout_drop_untagged (struct ob_layout *l, char *const *digests, ob_error_t *err)
{
  json_t *idx = NULL, *kept, *e;
  cleanup_free char *text = NULL;
  size_t i;
  int r = -1;
  if (flock (l->dfd, LOCK_EX) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "lock `%s`", l->path);
  if (read_index (l, &idx, err) < 0)
    goto out;
  kept = json_array ();
  json_array_foreach (json_object_get (idx, "manifests"), i, e)
    {
      const char *dg = json_string_value (json_object_get (e, "digest"));
      bool drop = false;
      for (size_t k = 0; entry_tag (e) == NULL && dg && digests && digests[k]; k++)
        drop = drop || strcmp (dg, digests[k]) == 0;
      if (!drop)
        json_array_append (kept, e);
    }
  json_object_set_new (idx, "manifests", kept);
  text = ob_json_canonical (idx);
  if (ob_write_file_atomic_at (l->dfd, "index.json", text, strlen (text), 0644, err) < 0)
    {
      ob_error_wrap (err, "layout `%s`", l->path);
      goto out;
    }
  r = 0;
out:
  json_decref (idx);
  flock (l->dfd, LOCK_UN);
  return r;
}

/* A staged blob reaches the disk before its name enters blobs/sha256. */
static int
sync_staged (struct ob_txn *t, const char *hex)
{
  int fd = openat (t->stagefd, hex, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), r;
  if (fd < 0)
    return -1;
  r = fsync (fd);
  if (r < 0)
    {
      int e = errno;
      close (fd);
      errno = e;
      return -1;
    }
  close (fd);
  return 0;
}

int
ob_txn_publish (struct ob_txn *t, ob_error_t *err)
{
  bool renamed = false;
  for (size_t i = 0; i < t->n_staged; i++)
    {
      const char *hex = t->staged[i].digest + 7;
      struct stat st;
      if (fstatat (t->l->blobs, hex, &st, AT_SYMLINK_NOFOLLOW) == 0)
        {
          /* someone else stored the same content meanwhile: it is in use
           * again now, which prune's and rmi's grace period must see */
          utimensat (t->l->blobs, hex, NULL, AT_SYMLINK_NOFOLLOW);
          continue;
        }
      if (sync_staged (t, hex) < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "fsync blob %s", t->staged[i].digest);
      if (renameat (t->stagefd, hex, t->l->blobs, hex) < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "store blob %s in `%s`", t->staged[i].digest,
                              t->l->path);
      renamed = true;
    }
  /* the new names reach the disk (none: nothing to sync) */
  if (renamed && fsync (t->l->blobs) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "fsync `%s/blobs/sha256`", t->l->path);
  t->n_staged = 0; /* published: readable from the layout now */
  return 0;
}

void
ob_txn_free (struct ob_txn *t)
{
  ob_error_t e = NULL;
  if (t == NULL)
    return;
  if (t->stagefd >= 0)
    close (t->stagefd);
  if (t->scratchfd >= 0)
    close (t->scratchfd);
  if (t->scratch)
    ob_rm_rf_at (AT_FDCWD, t->scratch, &e);
  ob_error_free (&e);
  free (t->scratch);
  free (t->staged);
  free (t);
}

/* ---- obuild's store ---- */

char *
ob_store_default_root (void)
{
  const char *e = getenv ("OBUILD_ROOT");
  const char *xdg, *home;
  if (e && *e)
    return ob_xstrdup (e);
  if (geteuid () == 0)
    return ob_xstrdup ("/var/lib/obuild");
  xdg = getenv ("XDG_DATA_HOME");
  if (xdg && *xdg)
    return ob_xasprintf ("%s/obuild", xdg);
  home = getenv ("HOME");
  return ob_xasprintf ("%s/.local/share/obuild", home && *home ? home : "/tmp");
}

/* Remove scratch directories of builds that died (kill -9, power loss):
 * they are named .obuild-<pid>-XXXXXX. */
static void
clean_stale_scratch (const char *tmp)
{
  cleanup_dir DIR *d = opendir (tmp);
  struct dirent *de;
  while (d && (de = readdir (d)))
    {
      int pid;
      ob_error_t e = NULL;
      if (sscanf (de->d_name, ".obuild-%d-", &pid) != 1 || pid <= 0)
        continue;
      if (kill (pid, 0) == 0 || errno != ESRCH)
        continue;
      ob_rm_rf_at (dirfd (d), de->d_name, &e);
      ob_error_free (&e);
    }
}

int
ob_store_open (const char *root, struct ob_store **out, ob_error_t *err)
{
  struct ob_store *s = ob_xmalloc0 (sizeof *s);
  cleanup_free char *oci = NULL;
  s->gcfd = -1;
  s->root = root ? ob_xstrdup (root) : ob_store_default_root ();
  s->tmp = ob_xasprintf ("%s/tmp", s->root);
  oci = ob_xasprintf ("%s/oci", s->root);
  if (ob_mkdir_p_at (AT_FDCWD, s->tmp, 0700, err) < 0 || ob_layout_open (oci, true, &s->oci, err) < 0)
    {
      ob_store_close (s);
      ob_error_set_kind (err, (*err)->kind == OB_ERR_IMAGE ? OB_ERR_IMAGE : OB_ERR_STORE);
      return ob_error_wrap (err, "store");
    }
  ob_dir_spread (s->tmp);
  {
    cleanup_free char *gc = ob_xasprintf ("%s/gc.lock", s->root);
    s->gcfd = open (gc, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->gcfd >= 0)
      while (flock (s->gcfd, LOCK_SH) < 0 && errno == EINTR)
        ;
  }
  clean_stale_scratch (s->tmp);
  {
    cleanup_free char *lroot = ob_xasprintf ("%s/layers", s->root);
    cleanup_dir DIR *d = opendir (lroot);
    struct dirent *de;
    while (d && (de = readdir (d)))
      if (de->d_name[0] != '.')
        {
          cleanup_free char *sub = ob_xasprintf ("%s/%s", lroot, de->d_name);
          clean_stale_scratch (sub);
        }
  }
  *out = s;
  return 0;
}

bool
ob_store_gc_exclusive (struct ob_store *s)
{
  return s->gcfd >= 0 && flock (s->gcfd, LOCK_EX | LOCK_NB) == 0;
}

/* ---- unpacked layers ----
 * The unpacked form of a layer is a cache of its blob, written without fsync
 * (extracted files, and a RUN step's upper directory from a "volatile"
 * overlay).  In the boot that wrote it, the page cache holds it whole; after
 * a crash some of it may be lost.  "<hex>.boot", written (and synced) before
 * the directory gets its name, holds the boot id: a directory from another
 * boot is unpacked again from its blob, which is synced.  A directory without
 * the file is trusted (nothing marks it unsynced). */

const char *
ob_store_boot_id (void)
{
  static char id[64];
  static int loaded;
  if (!loaded)
    {
      const char *t = getenv ("OBUILD_TEST_BOOT_ID"); /* tests: simulate a reboot */
      FILE *f;
      loaded = 1;
      if (t && *t && strlen (t) < sizeof id)
        strcpy (id, t);
      else if ((f = fopen ("/proc/sys/kernel/random/boot_id", "re")))
        {
          if (fgets (id, sizeof id, f) == NULL)
            id[0] = '\0';
          id[strcspn (id, "\n")] = '\0';
          fclose (f);
        }
    }
  return id[0] ? id : NULL;
}

static int
layer_mark (struct ob_store *s, const char *hex, ob_error_t *err)
{
  cleanup_free char *name = ob_xasprintf ("%s/%s.boot", s->layers, hex);
  const char *id = ob_store_boot_id ();
  cleanup_free char *text = NULL;
  if (id == NULL)
    return 0;
  text = ob_xasprintf ("%s\n", id);
  return ob_write_file_atomic_at (AT_FDCWD, name, text, strlen (text), 0644, err);
}

/* Publishing an unpacked layer (mark, then rename into place) and dropping
 * a stale one happen under an exclusive lock on the mode's directory, so a
 * build that drops a stale directory never takes another build's fresh one.
 * -1: no lock (then only the rare after-reboot race is open). */
static int
layers_lock (struct ob_store *s)
{
  int fd = open (s->layers, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0 && flock (fd, LOCK_EX) < 0)
    {
      close (fd);
      fd = -1;
    }
  return fd;
}

/* 1: hex's mark names another boot; 0: this boot, or no mark. */
static int
layer_mark_stale (struct ob_store *s, const char *hex)
{
  cleanup_free char *marker = ob_xasprintf ("%s/%s.boot", s->layers, hex);
  cleanup_close int fd = open (marker, O_RDONLY | O_CLOEXEC);
  const char *id = ob_store_boot_id ();
  char buf[64];
  ssize_t n;
  if (fd < 0 || id == NULL || (n = read (fd, buf, sizeof buf - 1)) < 0)
    return 0;
  buf[n] = '\0';
  buf[strcspn (buf, "\n")] = '\0';
  return strcmp (buf, id) != 0;
}

/* The directory of hex is from another boot: move it out of the way and
 * remove it, with its mark. */
static void
layer_drop_if_stale (struct ob_store *s, const char *hex)
{
  cleanup_free char *marker = NULL;
  cleanup_free char *dir = NULL;
  cleanup_free char *aside = NULL;
  cleanup_close int lock = -1;
  bool moved;
  ob_error_t e = NULL;
  if (!layer_mark_stale (s, hex))
    return;
  lock = layers_lock (s);
  if (!layer_mark_stale (s, hex)) /* another build did it */
    return;
  marker = ob_xasprintf ("%s/%s.boot", s->layers, hex);
  dir = ob_xasprintf ("%s/%s", s->layers, hex);
  aside = ob_xasprintf ("%s/.obuild-%d-stale-%s", s->layers, (int) getpid (), hex);
  moved = rename (dir, aside) == 0;
  unlink (marker);
  if (lock >= 0)
    close (ob_steal_fd (&lock));
  if (moved)
    ob_rm_rf_at (AT_FDCWD, aside, &e);
  ob_error_free (&e);
}

void
ob_store_set_layer_mode (struct ob_store *s, const char *mode)
{
  free (s->layers);
  s->layers = ob_xasprintf ("%s/layers/%s", s->root, mode);
}

/* ob_store_layer_dir, and with check, ob_store_layer_dir_checked */
static int
layer_dir (struct ob_store *s, const char *diff_id, int blob_fd, bool check, char **path, ob_error_t *err)
{
  char got[OB_DIGEST_LEN];
  int taken = 1;
  cleanup_free char *p = NULL;
  cleanup_free char *tmp = NULL;
  cleanup_free char *prefix = NULL;
  cleanup_close int tfd = -1;
  cleanup_close int lock = -1;
  struct ob_tree_index *ix;
  struct stat st;

  if (!ob_digest_valid (diff_id))
    return ob_error_make (err, OB_ERR_IMAGE, 0, "invalid diff_id `%s`", diff_id);
  if (s->layers == NULL)
    ob_store_set_layer_mode (s, "default");
  p = ob_xasprintf ("%s/%s", s->layers, diff_id + 7);
  layer_drop_if_stale (s, diff_id + 7);
  if (stat (p, &st) == 0 && S_ISDIR (st.st_mode))
    {
      if (check)
        return 1; /* there already: the blob is checked by reading it */
      *path = steal_pointer (&p);
      return 0;
    }
  if (check)
    {
      /* only a gzip stream's content is hashed while it is unpacked */
      unsigned char magic[3];
      if (pread (blob_fd, magic, 3, 0) != 3 || magic[0] != 0x1f || magic[1] != 0x8b || magic[2] != 8)
        return 1;
    }
  if (ob_mkdir_p_at (AT_FDCWD, s->layers, 0700, err) < 0)
    return ob_error_wrap (err, "store");
  ob_dir_spread (s->layers);
  prefix = ob_xasprintf (".obuild-%d-", (int) getpid ());
  if (ob_mkdtemp_in (s->layers, prefix, &tmp, err) < 0)
    return -1;
  chmod (tmp, 0755);
  tfd = open (tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tfd < 0 || lseek (blob_fd, 0, SEEK_SET) < 0)
    {
      int e = errno;
      ob_rm_rf_at (AT_FDCWD, tmp, err);
      return ob_error_make (err, OB_ERR_STORE, e, "unpack layer %s", diff_id);
    }
  /* the layer's tree index comes with the unpacking (a COPY of the build
   * needs it: read from the index instead of decompressing the layer again) */
  ix = ob_tree_index_new ();
  if ((check ? (taken = ob_layer_unpack_overlay_digest (blob_fd, tfd, ob_tree_index_note, ix, got, err))
             : ob_layer_unpack_overlay (blob_fd, tfd, ob_tree_index_note, ix, err))
      < 0)
    {
      ob_error_t e2 = NULL;
      ob_tree_index_free (ix);
      /* a path the layer itself makes impossible (through its own
       * symlinks, or a file where it needs a directory) is the image's fault */
      if ((*err)->kind == OB_ERR_STORE
          && ((*err)->status == ENOENT || (*err)->status == ENOTDIR || (*err)->status == ELOOP))
        ob_error_set_kind (err, OB_ERR_IMAGE);
      ob_rm_rf_at (AT_FDCWD, tmp, &e2);
      ob_error_free (&e2);
      return ob_error_wrap (err, "unpack layer %s", diff_id);
    }
  if (check && (taken != 0 || strcmp (got, diff_id) != 0))
    {
      /* nothing of a layer that is not what its config says is kept */
      ob_error_t e2 = NULL;
      ob_tree_index_free (ix);
      ob_rm_rf_at (AT_FDCWD, tmp, &e2);
      ob_error_free (&e2);
      if (taken != 0)
        return 1;
      return ob_error_make (err, OB_ERR_IMAGE, 0, "uncompressed content has digest %s, the config's diff_id is %s",
                            got, diff_id);
    }
  {
    cleanup_free char *trees = ob_xasprintf ("%s/trees", s->root);
    ob_tree_index_save (ix, trees, diff_id);
    ob_tree_index_free (ix);
  }
  lock = layers_lock (s);
  if (layer_mark (s, diff_id + 7, err) < 0)
    {
      ob_error_t e2 = NULL;
      ob_rm_rf_at (AT_FDCWD, tmp, &e2);
      ob_error_free (&e2);
      return ob_error_wrap (err, "store layer %s", diff_id);
    }
  if (rename (tmp, p) < 0)
    {
      ob_error_t e2 = NULL;
      int e = errno;
      if (lock >= 0)
        close (ob_steal_fd (&lock));
      ob_rm_rf_at (AT_FDCWD, tmp, &e2);
      ob_error_free (&e2);
      /* another build unpacked it meanwhile */
      if (!(e == EEXIST || e == ENOTEMPTY))
        return ob_error_make (err, OB_ERR_STORE, e, "store layer %s", diff_id);
    }
  *path = steal_pointer (&p);
  return 0;
}

int
ob_store_layer_dir (struct ob_store *s, const char *diff_id, int blob_fd, char **path, ob_error_t *err)
{
  return layer_dir (s, diff_id, blob_fd, false, path, err);
}

int
ob_store_layer_dir_checked (struct ob_store *s, const char *diff_id, int blob_fd, ob_error_t *err)
{
  cleanup_free char *path = NULL;
  return layer_dir (s, diff_id, blob_fd, true, &path, err);
}

int
ob_store_layer_adopt (struct ob_store *s, const char *diff_id, const char *dir, ob_error_t *err)
{
  cleanup_free char *p = NULL;
  cleanup_close int lock = -1;
  struct stat st;
  if (!ob_digest_valid (diff_id))
    return ob_error_make (err, OB_ERR_IMAGE, 0, "invalid diff_id `%s`", diff_id);
  if (s->layers == NULL)
    ob_store_set_layer_mode (s, "default");
  if (ob_mkdir_p_at (AT_FDCWD, s->layers, 0700, err) < 0)
    return ob_error_wrap (err, "store");
  p = ob_xasprintf ("%s/%s", s->layers, diff_id + 7);
  layer_drop_if_stale (s, diff_id + 7);
  lock = layers_lock (s);
  if (stat (p, &st) == 0 || layer_mark (s, diff_id + 7, err) < 0 || rename (dir, p) < 0)
    {
      /* not kept (an unpacked copy is only a cache) */
      if (lock >= 0)
        close (ob_steal_fd (&lock));
      ob_error_free (err);
      return ob_rm_rf_at (AT_FDCWD, dir, err);
    }
  return 0;
}

void
ob_store_close (struct ob_store *s)
{
  if (s == NULL)
    return;
  free (s->layers);
  ob_layout_close (s->oci);
  if (s->gcfd >= 0)
    close (s->gcfd);
  free (s->root);
  free (s->tmp);
  free (s);
}
