#include "config.h"
#include <obuild/layer.h>
#include <obuild/source.h>
#include <obuild/util.h>
#include <obuild/context.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Where verified (layer digest -> diff_id) facts are kept: a layer's blob
 * digest fixes its content, so its uncompressed digest never changes and is
 * checked once per store. */
static const char *verified_dir;
/* ob_source_opts.unpack_into of the call being served, or NULL */
static struct ob_store *unpack_into;

static bool
known_diff_id (const char *digest, const char *diff_id)
{
  cleanup_free char *p = NULL;
  cleanup_free char *v = NULL;
  size_t len;
  ob_error_t e = NULL;
  if (verified_dir == NULL || !ob_digest_valid (digest))
    return false;
  p = ob_xasprintf ("%s/%s", verified_dir, digest + 7);
  if (ob_read_file_at (AT_FDCWD, p, &v, &len, &e) < 0)
    {
      ob_error_free (&e);
      return false;
    }
  return strcmp (v, diff_id) == 0;
}

static void
remember_diff_id (const char *digest, const char *diff_id)
{
  cleanup_free char *p = NULL;
  ob_error_t e = NULL;
  if (verified_dir == NULL || !ob_digest_valid (digest))
    return;
  p = ob_xasprintf ("%s/%s", verified_dir, digest + 7);
  if (ob_mkdir_p_at (AT_FDCWD, verified_dir, 0700, &e) == 0)
    ob_write_file_atomic_at (AT_FDCWD, p, diff_id, strlen (diff_id), 0600, &e);
  ob_error_free (&e);
}

int
ob_pull_policy_parse (const char *s, enum ob_pull_policy *out, ob_error_t *err)
{
  if (strcmp (s, "missing") == 0 || strcmp (s, "ifmissing") == 0 || strcmp (s, "false") == 0)
    *out = OB_PULL_MISSING;
  else if (strcmp (s, "always") == 0 || strcmp (s, "true") == 0)
    *out = OB_PULL_ALWAYS;
  else if (strcmp (s, "never") == 0)
    *out = OB_PULL_NEVER;
  else
    return ob_error_make (err, OB_ERR_USAGE, 0, "invalid pull policy `%s`: expected missing, always or never", s);
  return 0;
}

void
ob_source_clear (struct ob_source *s)
{
  ob_descriptor_clear (&s->manifest);
  free (s->name);
  s->name = NULL;
}

/* A JSON blob (manifest, config) of the transaction, checked against its
 * descriptor: size (limit first), then digest. */
static int
read_txn_blob (struct ob_txn *t, const struct ob_descriptor *d, char **data, size_t *len, ob_error_t *err)
{
  cleanup_close int fd = -1;
  char got[OB_DIGEST_LEN];
  if (d->size > OB_MAX_JSON_BLOB)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "%s: size %lld is more than the %d bytes allowed for a manifest, index or config",
                          d->digest, (long long) d->size, OB_MAX_JSON_BLOB);
  if (ob_txn_blob_open (t, d->digest, &fd, err) < 0 || ob_blob_check_size (fd, d, true, err) < 0
      || ob_read_fd (fd, data, len, err) < 0)
    return -1;
  ob_sha256_digest (*data, *len, got);
  if (strcmp (got, d->digest) != 0 || (int64_t) *len != d->size)
    {
      free (*data);
      *data = NULL;
      return ob_error_make (err, OB_ERR_IMAGE, 0, "blob %s: content has digest %s", d->digest, got);
    }
  return 0;
}

/* Every layer's size and uncompressed digest against the manifest and the
 * config: what came from outside is checked once, before anything uses it. */
static int
verify_image (struct ob_txn *t, const struct ob_descriptor *md, const char *what, ob_error_t *err)
{
  cleanup_free char *mdata = NULL;
  cleanup_free char *cdata = NULL;
  struct ob_manifest *m = NULL;
  json_t *cfg = NULL, *ids;
  size_t mlen, clen;
  int r = -1;
  /* "digest diff_id" of the layers checked so far: a manifest may list
   * one layer as often as its 4 MiB hold (some 28,000 times), and each was
   * decompressed and hashed again */
  struct ob_strset checked = { 0 };

  if (read_txn_blob (t, md, &mdata, &mlen, err) < 0 || ob_image_manifest_parse (mdata, mlen, &m, err) < 0)
    goto out;
  if (read_txn_blob (t, &m->config, &cdata, &clen, err) < 0 || ob_image_config_parse (cdata, clen, &cfg, err) < 0)
    {
      ob_error_wrap (err, "config");
      goto out;
    }
  ids = json_object_get (json_object_get (cfg, "rootfs"), "diff_ids");
  if (json_array_size (ids) != m->n_layers)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "%zu layers but %zu diff_ids in the config", m->n_layers,
                     json_array_size (ids));
      goto out;
    }
  for (size_t i = 0; i < m->n_layers; i++)
    {
      cleanup_close int fd = -1;
      char diff_id[OB_DIGEST_LEN];
      const char *want = json_string_value (json_array_get (ids, i));
      /* the size even when the content is known: the manifest may lie */
      if (ob_txn_blob_open (t, m->layers[i].digest, &fd, err) < 0
          || ob_blob_check_size (fd, &m->layers[i], false, err) < 0)
        {
          ob_error_wrap (err, "layer #%zu", i);
          goto out;
        }
      if (want && known_diff_id (m->layers[i].digest, want) && ob_txn_blob_in_layout (t, m->layers[i].digest))
        continue;
      {
        cleanup_free char *key = ob_xasprintf ("%s %s", m->layers[i].digest, want ? want : "");
        if (ob_strset_has (&checked, key))
          continue;
        ob_strset_add (&checked, key);
      }
      if (want && unpack_into)
        {
          /* checked while it is unpacked for the build's RUN steps */
          int c = ob_store_layer_dir_checked (unpack_into, want, fd, err);
          if (c < 0)
            {
              ob_error_wrap (err, "layer %s", m->layers[i].digest);
              goto out;
            }
          if (c == 0)
            {
              remember_diff_id (m->layers[i].digest, want);
              continue;
            }
        }
      if (ob_layer_diff_id (fd, diff_id, err) < 0)
        {
          ob_error_wrap (err, "layer %s", m->layers[i].digest);
          goto out;
        }
      if (strcmp (diff_id, want) != 0)
        {
          ob_error_make (err, OB_ERR_IMAGE, 0, "layer %s: uncompressed content has digest %s, the config's diff_id is %s",
                         m->layers[i].digest, diff_id, want);
          goto out;
        }
      remember_diff_id (m->layers[i].digest, diff_id);
    }
  r = 0;
out:
  if (r < 0)
    ob_error_wrap (err, "%s", what);
  ob_strset_free (&checked);
  ob_manifest_free (m);
  json_decref (cfg);
  return r;
}

/* "oci:DIR:TAG" -> DIR, TAG. */
static void
split_path_tag (const char *s, char **path, char **tag)
{
  /* the first ':' after the last '/': docker-archive references carry
   * "name:tag" there */
  const char *slash = strrchr (s, '/');
  const char *colon = strchr (slash ? slash : s, ':');
  if (colon && colon[1])
    {
      *path = ob_xstrndup (s, colon - s);
      *tag = ob_xstrdup (colon + 1);
    }
  else
    {
      *path = ob_xstrdup (s);
      *tag = NULL;
    }
}

/* Is the image of config cdata for platform want ("os/arch[/variant]")?
 * 0 when it is, 1 (err filled, OB_ERR_IMAGE) when it names another
 * platform, -1 on a bad config.  A base of the wrong architecture would
 * make RUN execute other binaries than the platform's, and its steps'
 * cache keys those of another platform. */
static int
config_platform_check (const char *cdata, size_t clen, const char *want, const char *what, ob_error_t *err)
{
  cleanup_free char *os = NULL, *arch = NULL, *variant = NULL;
  json_t *cfg = NULL;
  const char *co, *ca, *cv;
  int r;
  if (ob_image_platform_parse (want, &os, &arch, &variant, err) < 0
      || ob_image_config_parse (cdata, clen, &cfg, err) < 0)
    return -1;
  co = json_string_value (json_object_get (cfg, "os"));
  ca = json_string_value (json_object_get (cfg, "architecture"));
  cv = json_string_value (json_object_get (cfg, "variant"));
  if (co && ca && strcmp (co, os) == 0 && strcmp (ca, arch) == 0 && (variant == NULL || cv == NULL || strcmp (cv, variant) == 0))
    r = 0;
  else
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "%s is an image for %s/%s%s%s, not for %s", what, co ? co : "?",
                     ca ? ca : "?", cv ? "/" : "", cv ? cv : "", want);
      r = 1;
    }
  json_decref (cfg);
  return r;
}

/* The same for the image whose manifest is md in layout l. */
static int
check_platform (struct ob_layout *l, const struct ob_descriptor *md, const char *want, const char *what,
                ob_error_t *err)
{
  cleanup_free char *mdata = NULL, *cdata = NULL;
  struct ob_manifest *m = NULL;
  size_t mlen, clen;
  int r = -1;
  if (ob_layout_blob_read_desc (l, md, &mdata, &mlen, err) == 0 && ob_image_manifest_parse (mdata, mlen, &m, err) == 0
      && ob_layout_blob_read_desc (l, &m->config, &cdata, &clen, err) == 0)
    r = config_platform_check (cdata, clen, want, what, err);
  ob_manifest_free (m);
  return r;
}

/* Stage the image whose manifest is d in layout l, and verify it. */
static int
copy_image (struct ob_txn *t, struct ob_layout *l, const struct ob_descriptor *d, const char *what, ob_error_t *err)
{
  cleanup_free char *mdata = NULL;
  struct ob_manifest *m = NULL;
  size_t mlen;
  int r = -1;
  if (ob_layout_blob_read_desc (l, d, &mdata, &mlen, err) < 0 || ob_image_manifest_parse (mdata, mlen, &m, err) < 0)
    goto out;
  if (ob_txn_blob_copy_from (t, l, d->digest, err) < 0 || ob_txn_blob_copy_from (t, l, m->config.digest, err) < 0)
    goto out;
  for (size_t i = 0; i < m->n_layers; i++)
    if (ob_txn_blob_copy_from (t, l, m->layers[i].digest, err) < 0)
      goto out;
  r = verify_image (t, d, what, err);
out:
  ob_manifest_free (m);
  return r;
}

/* Stage the index d of layout l whole, with every image it lists (nested
 * indexes followed, OB_MAX_INDEX_DEPTH deep), each verified: an index
 * naming a manifest the layout lacks is refused, not kept half there. */
static int
copy_index (struct ob_txn *t, struct ob_layout *l, const struct ob_descriptor *d, const char *what, int depth,
            ob_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len, i;
  json_t *j, *e, *ms;
  int r = 0;
  if (depth >= OB_MAX_INDEX_DEPTH)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "index %s: indexes nested more than %d deep", d->digest,
                          OB_MAX_INDEX_DEPTH);
  if (ob_txn_blob_copy_from (t, l, d->digest, err) < 0 || read_txn_blob (t, d, &data, &len, err) < 0)
    return -1;
  j = json_loadb (data, len, 0, NULL);
  ms = json_object_get (j, "manifests");
  if (json_array_size (ms) == 0)
    {
      json_decref (j);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "index %s: not an image index (no manifests listed)", d->digest);
    }
  /* every manifest there before any image is verified: a missing one
   * fails at once */
  json_array_foreach (ms, i, e)
    {
      const char *dg = json_string_value (json_object_get (e, "digest"));
      if (ob_digest_valid (dg) && !ob_layout_has_blob (l, dg))
        {
          /* the strings belong to j */
          cleanup_free char *p = ob_image_entry_platform (e);
          ob_error_make (err, OB_ERR_IMAGE, 0, "index %s lists %s (%s), which the archive does not have", d->digest,
                         dg, p);
          json_decref (j);
          return -1;
        }
    }
  json_array_foreach (ms, i, e)
    {
      struct ob_descriptor c = { 0 };
      if (ob_descriptor_from_json (e, &c, err) < 0)
        r = ob_error_wrap (err, "index %s", d->digest);
      else if (ob_image_media_type_is_index (c.media_type))
        r = copy_index (t, l, &c, what, depth + 1, err);
      else
        r = copy_image (t, l, &c, what, err);
      ob_descriptor_clear (&c);
      if (r < 0)
        break;
    }
  json_decref (j);
  return r;
}

/* An image of the layout at dir: tag (or the only entry) resolved to
 * platform's manifest, or with whole the entry as it is (an index kept
 * with every image it lists). */
static int
from_layout (struct ob_txn *t, const char *dir, const char *tag, const char *what, const char *platform, bool whole,
             struct ob_source *out, ob_error_t *err)
{
  struct ob_layout *l = NULL;
  struct ob_descriptor d = { 0 };
  int r = -1;

  if (ob_layout_open (dir, false, &l, err) < 0)
    return ob_error_wrap (err, "%s", what);
  if (tag)
    r = whole ? ob_layout_resolve_entry (l, tag, &d, err) : ob_layout_resolve_platform (l, tag, platform, &d, err);
  else
    {
      struct ob_layout_entry *e = NULL;
      size_t n = 0;
      r = ob_layout_list (l, &e, &n, err);
      if (r == 0 && n != 1)
        r = ob_error_make (err, OB_ERR_IMAGE, 0, "`%s` holds %zu images: name one with %s:TAG", dir, n, what);
      else if (r == 0)
        {
          cleanup_free char *ref = ob_xstrdup (e[0].desc.digest);
          r = whole ? ob_layout_resolve_entry (l, ref, &d, err)
                    : ob_layout_resolve_platform (l, ref, platform, &d, err);
        }
      ob_layout_entries_free (e, n);
    }
  if (r < 0)
    goto out;
  if (platform && check_platform (l, &d, platform, what, err) != 0)
    {
      r = -1;
      goto out;
    }
  r = -1;
  if ((whole && ob_image_media_type_is_index (d.media_type) ? copy_index (t, l, &d, what, 0, err) : copy_image (t, l, &d, what, err))
      < 0)
    goto out;
  out->manifest = d;
  d.media_type = NULL;
  out->name = ob_xstrdup (what);
  r = 0;
out:
  if (r < 0 && *err && !ob_str_has_prefix ((*err)->msg, what))
    ob_error_wrap (err, "%s", what);
  ob_descriptor_clear (&d);
  ob_layout_close (l);
  return r;
}

/* The files of that archive already staged as blobs, by inode: images
 * of an archive share layers (and a hostile manifest.json names one 64 MiB
 * layer for a thousand images), each read and hashed once. */
struct staged_file
{
  ino_t ino;
  int64_t size;
  char digest[OB_DIGEST_LEN];
};

/* The archive unpacked last: ob_archive_load asks for each image of an
 * archive in turn, and the archive's index names as many as it likes (an
 * unpacked copy each filled the scratch directory with N times the
 * archive).  Only read once unpacked. */
static struct
{
  char *scratch, *file, *dir;
  struct stat st;
  struct staged_file *files; /* open addressing on ino, cap a power of two */
  size_t n_files, cap_files;
  json_t *manifest; /* its manifest.json, parsed once (a docker-archive) */
} unpacked;

static struct staged_file *
staged_slot (ino_t ino)
{
  if (unpacked.cap_files == 0)
    return NULL;
  for (size_t i = (size_t) (ino * 0x9e3779b97f4a7c15ULL) & (unpacked.cap_files - 1);;
       i = (i + 1) & (unpacked.cap_files - 1))
    if (unpacked.files[i].ino == ino || unpacked.files[i].digest[0] == '\0')
      return &unpacked.files[i];
}

static void
staged_add (ino_t ino, int64_t size, const char *digest)
{
  struct staged_file *f;
  if (2 * (unpacked.n_files + 1) > unpacked.cap_files)
    {
      struct staged_file *old = unpacked.files;
      size_t cap = unpacked.cap_files;
      unpacked.cap_files = cap ? cap * 2 : 64;
      unpacked.files = ob_xmalloc0 (unpacked.cap_files * sizeof *unpacked.files);
      for (size_t i = 0; i < cap; i++)
        if (old[i].digest[0])
          *staged_slot (old[i].ino) = old[i];
      free (old);
    }
  f = staged_slot (ino);
  if (f->digest[0] == '\0')
    unpacked.n_files++;
  f->ino = ino;
  f->size = size;
  strcpy (f->digest, digest);
}

static bool
same_file (const struct stat *a, const struct stat *b)
{
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size
         && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Unpack an archive file into a directory of the transaction (once). */
static int
unpack_archive (struct ob_txn *t, const char *file, char **dir, ob_error_t *err)
{
  static unsigned counter;
  cleanup_close int in = open (file, O_RDONLY | O_CLOEXEC);
  cleanup_close int dfd = -1;
  struct stat st, dst;
  if (in < 0)
    return ob_error_make (err, OB_ERR_IMAGE, errno, "open `%s`", file);
  if (fstat (in, &st) < 0)
    return ob_error_make (err, OB_ERR_IMAGE, errno, "`%s`", file);
  if (unpacked.dir && strcmp (unpacked.scratch, ob_txn_scratch (t)) == 0 && strcmp (unpacked.file, file) == 0
      && same_file (&unpacked.st, &st) && stat (unpacked.dir, &dst) == 0 && S_ISDIR (dst.st_mode))
    {
      *dir = ob_xstrdup (unpacked.dir);
      return 0;
    }
  *dir = ob_xasprintf ("%s/archive-%u", ob_txn_scratch (t), ++counter);
  if (mkdir (*dir, 0700) < 0 || (dfd = open (*dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "mkdir `%s`", *dir);
  if (ob_layer_extract (in, dfd, "/", false, false, err) < 0)
    return ob_error_wrap (err, "unpack `%s`", file);
  free (unpacked.scratch);
  free (unpacked.file);
  free (unpacked.dir);
  free (unpacked.files);
  unpacked.files = NULL;
  unpacked.n_files = unpacked.cap_files = 0;
  json_decref (unpacked.manifest);
  unpacked.manifest = NULL;
  unpacked.scratch = ob_xstrdup (ob_txn_scratch (t));
  unpacked.file = ob_xstrdup (file);
  unpacked.dir = ob_xstrdup (*dir);
  unpacked.st = st;
  return 0;
}

/* A file of an unpacked docker-archive, named by its manifest.json: a
 * regular file inside the archive.  A symlinked directory on the way
 * (`d -> /dev`, then `d/zero`) read a file of the host, without end; a
 * FIFO blocked forever. */
static int
open_archive_file (int dfd, const char *name, int *fd, struct stat *st, ob_error_t *err)
{
  /* archive paths resolve inside the unpacked archive only */
  if (strstr (name, "..") || name[0] == '/')
    return ob_error_make (err, OB_ERR_IMAGE, 0, "path `%s` outside the archive", name);
  *fd = ob_context_openat2 (dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, RESOLVE_BENEATH);
  if (*fd < 0 && errno == EXDEV)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "path `%s` outside the archive", name);
  if (*fd < 0 && errno == ELOOP)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: not a regular file", name);
  if (*fd < 0)
    return ob_error_make (err, OB_ERR_IMAGE, errno, "`%s`", name);
  if (fstat (*fd, st) < 0 || !S_ISREG (st->st_mode))
    {
      close (*fd);
      *fd = -1;
      return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: not a regular file", name);
    }
  return 0;
}

static int
put_file_blob (struct ob_txn *t, int dfd, const char *name, int64_t max, char digest[72], int64_t *size,
               ob_error_t *err)
{
  struct stat st;
  cleanup_close int in = -1;
  struct ob_sha256 *h;
  char buf[65536];
  int out;
  ob_error_t e2 = NULL;

  if (open_archive_file (dfd, name, &in, &st, err) < 0)
    return -1;
  if (max >= 0 && st.st_size > max)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: size %lld is more than the %lld bytes allowed", name,
                          (long long) st.st_size, (long long) max);
  /* the archive unpacked last is ours and read only: a file of it staged
   * before (for another image) is that blob still */
  bool cacheable = false;
  {
    struct stat dst, ust;
    cacheable = unpacked.dir && fstat (dfd, &dst) == 0 && stat (unpacked.dir, &ust) == 0
                && dst.st_dev == ust.st_dev && dst.st_ino == ust.st_ino && st.st_dev == ust.st_dev;
  }
  if (cacheable)
    {
      struct staged_file *f = staged_slot (st.st_ino);
      int bfd;
      ob_error_t e3 = NULL;
      if (f && f->digest[0] && f->size == st.st_size && ob_txn_blob_open (t, f->digest, &bfd, &e3) == 0)
        {
          close (bfd);
          strcpy (digest, f->digest);
          *size = f->size;
          return 0;
        }
      ob_error_free (&e3);
    }
  if (ob_txn_blob_create (t, &out, err) < 0)
    return -1;
  h = ob_sha256_new ();
  *size = 0;
  for (;;)
    {
      ssize_t n = read (in, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          ob_sha256_free (h);
          close (out);
          return ob_error_make (err, OB_ERR_STORE, errno, "read `%s`", name);
        }
      if (n == 0)
        break;
      ob_sha256_update (h, buf, n);
      *size += n;
      if (ob_write_all (out, buf, n, &e2) < 0)
        {
          ob_sha256_free (h);
          close (out);
          *err = e2;
          return -1;
        }
    }
  ob_sha256_final (h, digest);
  if (ob_txn_blob_commit (t, out, digest, err) < 0)
    return -1;
  if (cacheable && *size == st.st_size)
    staged_add (st.st_ino, *size, digest);
  return 0;
}

static int
from_docker_archive (struct ob_txn *t, const char *file, const char *tag, const char *what, const char *platform,
                     struct ob_source *out, ob_error_t *err)
{
  cleanup_free char *dir = NULL;
  cleanup_free char *mtext = NULL;
  cleanup_free char *man = NULL;
  cleanup_close int dfd = -1;
  json_t *list = NULL, *entry = NULL, *layers_j, *m;
  struct ob_descriptor cfg = { (char *) OB_MT_OCI_CONFIG, "", 0 };
  struct ob_descriptor *layers = NULL;
  struct ob_descriptor md = { (char *) OB_MT_OCI_MANIFEST, "", 0 };
  size_t len, i, n = 0, n_seen = 0;
  struct
  {
    dev_t dev;
    ino_t ino;
    size_t at;
  } *seen = NULL;
  json_t *x;
  int r = -1;

  if (unpack_archive (t, file, &dir, err) < 0)
    return ob_error_wrap (err, "%s", what);
  dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0 && unpacked.manifest && unpacked.dir && strcmp (unpacked.dir, dir) == 0)
    list = json_incref (unpacked.manifest); /* ob_archive_load: the next image */
  else
    {
      struct stat st;
      cleanup_close int mfd = -1;
      if (dfd >= 0 && open_archive_file (dfd, "manifest.json", &mfd, &st, err) == 0 && st.st_size > OB_MAX_JSON_BLOB)
        return ob_error_make (err, OB_ERR_IMAGE, 0, "%s: manifest.json: size %lld is more than the %d bytes allowed",
                              what, (long long) st.st_size, OB_MAX_JSON_BLOB);
      if (dfd < 0 || *err != NULL || ob_read_fd (mfd, &mtext, &len, err) < 0)
        {
          if (*err == NULL)
            ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", dir);
          ob_error_set_kind (err, OB_ERR_IMAGE);
          return ob_error_wrap (err, "%s: not a docker-archive", what);
        }
    }
  if (list == NULL)
    {
      list = json_loadb (mtext, len, 0, NULL);
      if (list && unpacked.dir && strcmp (unpacked.dir, dir) == 0)
        {
          json_decref (unpacked.manifest);
          unpacked.manifest = json_incref (list);
        }
    }
  json_array_foreach (list, i, x)
    {
      size_t k;
      json_t *rt;
      if (tag == NULL && json_array_size (list) == 1)
        entry = x;
      json_array_foreach (json_object_get (x, "RepoTags"), k, rt)
        {
          const char *s = json_string_value (rt);
          if (tag && s && (strcmp (s, tag) == 0 || (ob_str_has_suffix (s, tag) && s[strlen (s) - strlen (tag) - 1] == '/')))
            entry = x;
        }
    }
  if (!json_is_array (list) || entry == NULL)
    {
      json_decref (list);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "%s: %s", what,
                            tag ? "no image with that tag in the archive" : "name the image: the archive holds several");
    }
  if (put_file_blob (t, dfd, json_string_value (json_object_get (entry, "Config")) ? json_string_value (json_object_get (entry, "Config")) : "",
                     OB_MAX_JSON_BLOB, cfg.digest, &cfg.size, err) < 0)
    goto out;
  if (platform)
    {
      cleanup_free char *cdata = NULL;
      size_t clen;
      if (read_txn_blob (t, &cfg, &cdata, &clen, err) < 0 || config_platform_check (cdata, clen, platform, what, err) != 0)
        goto out;
    }
  layers_j = json_object_get (entry, "Layers");
  {
    /* as many layers as the config has diff_ids (as verify_image checks
     * after), before any is read: manifest.json may name a file as often
     * as its 4 MiB hold, and each was copied and hashed */
    cleanup_free char *cdata = NULL;
    size_t clen, nids;
    json_t *c = NULL;
    if (read_txn_blob (t, &cfg, &cdata, &clen, err) < 0 || ob_image_config_parse (cdata, clen, &c, err) < 0)
      {
        ob_error_wrap (err, "config");
        goto out;
      }
    nids = json_array_size (json_object_get (json_object_get (c, "rootfs"), "diff_ids"));
    json_decref (c);
    if (json_array_size (layers_j) != nids)
      {
        ob_error_make (err, OB_ERR_IMAGE, 0, "%zu layers but %zu diff_ids in the config", json_array_size (layers_j),
                       nids);
        goto out;
      }
  }
  layers = ob_xmalloc0 ((json_array_size (layers_j) + 1) * sizeof *layers);
  seen = ob_xmalloc0 ((json_array_size (layers_j) + 1) * sizeof *seen);
  json_array_foreach (layers_j, i, x)
    {
      const char *name = json_string_value (x) ? json_string_value (x) : "";
      struct stat st;
      int fd;
      size_t k;
      layers[n].media_type = (char *) OB_MT_LAYER_TAR;
      /* a file named again (by the same name or another) is read once */
      if (open_archive_file (dfd, name, &fd, &st, err) < 0)
        goto out;
      close (fd);
      for (k = 0; k < n_seen && (seen[k].dev != st.st_dev || seen[k].ino != st.st_ino); k++)
        ;
      if (k < n_seen)
        {
          strcpy (layers[n].digest, layers[seen[k].at].digest);
          layers[n].size = layers[seen[k].at].size;
          n++;
          continue;
        }
      if (put_file_blob (t, dfd, name, -1, layers[n].digest, &layers[n].size, err) < 0)
        goto out;
      seen[n_seen].dev = st.st_dev;
      seen[n_seen].ino = st.st_ino;
      seen[n_seen++].at = n;
      n++;
    }
  m = ob_image_manifest_new (&cfg, layers, n, NULL);
  man = ob_json_canonical (m);
  json_decref (m);
  md.size = strlen (man);
  if (ob_txn_blob_put (t, man, strlen (man), md.digest, err) < 0)
    goto out;
  if (verify_image (t, &md, what, err) < 0)
    goto out;
  out->manifest = md;
  out->manifest.media_type = ob_xstrdup (OB_MT_OCI_MANIFEST);
  out->name = ob_xstrdup (what);
  r = 0;
out:
  if (r < 0 && *err && !ob_str_has_prefix ((*err)->msg, what))
    ob_error_wrap (err, "%s", what);
  free (layers);
  free (seen);
  json_decref (list);
  return r;
}

/* An image of the store is trusted, but not its sizes: the build reads
 * the config and layers by them.  A layer not there is left to the step
 * that needs it. */
static int
check_sizes (struct ob_layout *l, const struct ob_descriptor *md, ob_error_t *err)
{
  cleanup_free char *mdata = NULL;
  struct ob_manifest *m = NULL;
  size_t mlen;
  int r = -1;
  if (ob_layout_blob_read_desc (l, md, &mdata, &mlen, err) < 0 || ob_image_manifest_parse (mdata, mlen, &m, err) < 0)
    return -1;
  for (size_t i = 0; i <= m->n_layers; i++)
    {
      const struct ob_descriptor *d = i == 0 ? &m->config : &m->layers[i - 1];
      cleanup_close int fd = -1;
      if (i > 0 && !ob_layout_has_blob (l, d->digest))
        continue;
      if (ob_layout_blob_open (l, d->digest, &fd, err) < 0 || ob_blob_check_size (fd, d, i == 0, err) < 0)
        {
          if (i == 0)
            ob_error_wrap (err, "config");
          else
            ob_error_wrap (err, "layer #%zu", i - 1);
          goto out;
        }
    }
  r = 0;
out:
  ob_manifest_free (m);
  return r;
}

/* 1: found, 0: not in the store, -1: the store's index is broken (an
 * error, not a reason to look elsewhere). */
static int
from_store (struct ob_store *store, const char *name, const char *platform, struct ob_source *out,
            ob_error_t *err)
{
  int r = ob_layout_lookup_platform (store->oci, name, platform, &out->manifest, err);
  if (r == 0)
    return 0;
  if (r > 0 && platform)
    {
      cleanup_free char *what = ob_xasprintf ("`%s`", name);
      int c = check_platform (store->oci, &out->manifest, platform, what, err);
      if (c != 0)
        {
          ob_descriptor_clear (&out->manifest);
          return c < 0 ? ob_error_wrap (err, "store `%s`: %s", ob_layout_path (store->oci), name) : 2;
        }
    }
  if (r > 0 && check_sizes (store->oci, &out->manifest, err) < 0)
    {
      ob_descriptor_clear (&out->manifest);
      r = -1;
    }
  if (r < 0)
    return ob_error_wrap (err, "store `%s`: %s", ob_layout_path (store->oci), name);
  out->name = ob_xstrdup (name);
  return 1;
}

int
ob_source_pull (struct ob_store *store, const char *ref, const struct ob_source_opts *opts,
                struct ob_source *out, ob_error_t *err)
{
  struct ob_ref *r = NULL;
  struct ob_registry *reg = NULL;
  struct ob_txn *t = NULL;
  struct ob_descriptor d = { 0 };
  char *tags[2] = { NULL, NULL };
  int ret = -1;

  if (ob_ref_parse (ref, &r, err) < 0)
    return -1;
  if (ob_registry_new (&opts->registry, &reg, err) < 0)
    goto out;
  if (ob_txn_begin (store->oci, store->tmp, &t, err) < 0)
    goto out;
  if (ob_registry_pull (reg, r, t, &d, err) < 0)
    goto out;
  if (verify_image (t, &d, r->canonical, err) < 0)
    goto out;
  tags[0] = r->canonical;
  if (ob_txn_commit (t, &d, tags, err) < 0)
    goto out;
  out->manifest = d;
  d.media_type = NULL;
  out->name = ob_xstrdup (r->canonical);
  out->pulled = true;
  ret = 0;
out:
  ob_descriptor_clear (&d);
  ob_txn_free (t);
  ob_registry_free (reg);
  ob_ref_free (r);
  return ret;
}

static void
set_verified_dir (struct ob_store *store)
{
  static char *vdir;
  free (vdir);
  vdir = ob_xasprintf ("%s/verified", store->root);
  verified_dir = vdir;
}

int
ob_source_archive (struct ob_store *store, struct ob_txn *txn, const char *file, bool docker, const char *tag,
                   struct ob_source *out, ob_error_t *err)
{
  cleanup_free char *what = ob_xasprintf ("%s:%s", docker ? "docker-archive" : "oci-archive", file);
  cleanup_free char *dir = NULL;
  memset (out, 0, sizeof *out);
  set_verified_dir (store);
  if (docker)
    return from_docker_archive (txn, file, tag, what, NULL, out, err);
  if (unpack_archive (txn, file, &dir, err) < 0)
    return ob_error_wrap (err, "%s", what);
  return from_layout (txn, dir, tag, what, NULL, true, out, err);
}

static int resolve (struct ob_store *store, struct ob_txn *txn, const char *ref, const struct ob_source_opts *opts,
                    struct ob_source *out, ob_error_t *err);

int
ob_source_resolve (struct ob_store *store, struct ob_txn *txn, const char *ref, const struct ob_source_opts *opts,
                   struct ob_source *out, ob_error_t *err)
{
  int r;
  unpack_into = opts->unpack_into;
  r = resolve (store, txn, ref, opts, out, err);
  unpack_into = NULL;
  return r;
}

static int
resolve (struct ob_store *store, struct ob_txn *txn, const char *ref,
                   const struct ob_source_opts *opts, struct ob_source *out, ob_error_t *err)
{
  cleanup_free char *path = NULL;
  cleanup_free char *tag = NULL;
  cleanup_free char *local = NULL;
  struct ob_ref *r = NULL;
  ob_error_t e = NULL;
  const char *platform = opts->registry.platform;
  cleanup_free char *mismatch = NULL;

  memset (out, 0, sizeof *out);
  set_verified_dir (store);
  if (ob_str_has_prefix (ref, "oci:"))
    {
      split_path_tag (ref + 4, &path, &tag);
      return from_layout (txn, path, tag, ref, platform, false, out, err);
    }
  if (ob_str_has_prefix (ref, "oci-archive:"))
    {
      cleanup_free char *dir = NULL;
      split_path_tag (ref + 12, &path, &tag);
      if (unpack_archive (txn, path, &dir, err) < 0)
        return ob_error_wrap (err, "%s", ref);
      return from_layout (txn, dir, tag, ref, platform, false, out, err);
    }
  if (ob_str_has_prefix (ref, "docker-archive:"))
    {
      split_path_tag (ref + 15, &path, &tag);
      return from_docker_archive (txn, path, tag, ref, platform, out, err);
    }
  if (ob_digest_valid (ref))
    {
      int found = from_store (store, ref, platform, out, err);
      if (found != 0)
        return found == 1 ? 0 : -1;
      return ob_error_make (err, OB_ERR_IMAGE, 0, "image %s not found in the store", ref);
    }

  /* The store first, by the name as written (images made with obuild
   * import or build) and by its canonical registry name (pulled ones). */
  if (ob_ref_parse (ref, &r, &e) < 0)
    {
      ob_error_free (&e);
      if (ob_image_ref_normalize (ref, &local, err) < 0)
        return -1;
    }
  if (opts->pull != OB_PULL_ALWAYS)
    {
      if (local == NULL && ob_image_ref_normalize (ref, &local, &e) < 0)
        ob_error_free (&e);
      int found = local ? from_store (store, local, platform, out, err) : 0;
      if (found == 0 && r)
        found = from_store (store, r->canonical, platform, out, err);
      if (found == 2 && (opts->pull == OB_PULL_NEVER || r == NULL))
        {
          /* there, but for another platform, and nothing to pull */
          ob_ref_free (r);
          return -1;
        }
      if (found == 2)
        {
          mismatch = ob_xstrdup ((*err)->msg);
          ob_error_free (err);
        }
      else if (found != 0)
        {
          ob_ref_free (r);
          return found > 0 ? 0 : -1;
        }
    }
  if (opts->pull == OB_PULL_NEVER || r == NULL)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0,
                     "image `%s` not found in the local store (%s)%s", ref, ob_layout_path (store->oci),
                     opts->pull == OB_PULL_NEVER ? " and --pull=never" : "");
      ob_ref_free (r);
      return -1;
    }
  ob_ref_free (r);
  if (ob_source_pull (store, ref, opts, out, err) < 0)
    {
      /* what the store has is the first thing to know */
      if (mismatch)
        {
          cleanup_free char *why = ob_xstrdup ((*err)->msg);
          ob_error_make (err, OB_ERR_IMAGE, 0, "%s (pulling one for %s failed: %s)", mismatch, platform, why);
        }
      return -1;
    }
  return 0;
}
