/* save and load: images of the store to and from oci-archive and
 * docker-archive files (see include/obuild/imagecmd.h). */
#include "config.h"
#include <obuild/image.h>
#include <obuild/imagecmd.h>
#include <obuild/layer.h>
#include <obuild/source.h>
#include <obuild/util.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MT_DOCKER_LAYER_TAR "application/vnd.docker.image.rootfs.diff.tar"

int
ob_archive_format_parse (const char *s, enum ob_archive_format *out, ob_error_t *err)
{
  if (strcmp (s, "oci-archive") == 0)
    *out = OB_ARCHIVE_OCI;
  else if (strcmp (s, "docker-archive") == 0)
    *out = OB_ARCHIVE_DOCKER;
  else
    return ob_error_make (err, OB_ERR_USAGE, 0, "unknown format `%s`: expected oci-archive or docker-archive", s);
  return 0;
}

/* One image to save.  top is what the archive's index.json entry points
 * at: the store's entry itself (an index: every platform, oci-archive
 * only), or the one platform's manifest md.  For the oci-archive, blobs
 * are every blob to write, in a fixed order. */
struct saved
{
  char *tag;
  struct ob_descriptor top;
  struct ob_descriptor md; /* with m and cfg: one platform (docker-archive, --platform) */
  struct ob_manifest *m;
  json_t *cfg;
  struct ob_descriptor *blobs;
  size_t n_blobs;
  char *chosen; /* the platform taken without --platform (docker-archive of an index) */
};

static void
saved_clear (struct saved *x)
{
  free (x->tag);
  ob_descriptor_clear (&x->top);
  ob_descriptor_clear (&x->md);
  ob_manifest_free (x->m);
  json_decref (x->cfg);
  free (x->blobs);
  free (x->chosen);
}

static void
add_blob (struct saved *x, const struct ob_descriptor *d)
{
  x->blobs = ob_xrealloc (x->blobs, (x->n_blobs + 1) * sizeof *x->blobs);
  x->blobs[x->n_blobs] = *d;
  x->blobs[x->n_blobs++].media_type = NULL; /* only digest and size are used */
}

/* Read and parse the index blob d (its digest and size verified). */
static int
read_index_blob (struct ob_layout *l, const struct ob_descriptor *d, json_t **out, ob_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len;
  json_t *j;
  *out = NULL;
  if (ob_layout_blob_read_desc (l, d, &data, &len, err) < 0)
    return ob_error_wrap (err, "index %s", d->digest);
  j = json_loadb (data, len, 0, NULL);
  if (!json_is_array (json_object_get (j, "manifests")))
    {
      json_decref (j);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "index %s: not an image index (no manifests list)", d->digest);
    }
  *out = j;
  return 0;
}

/* Every blob of the index d and of the images it lists (nested indexes
 * followed): each must be in the store, or the archive would be an image
 * no one can use. */
static int
collect_index (struct ob_layout *l, const struct ob_descriptor *d, int depth, struct saved *x, ob_error_t *err)
{
  json_t *j, *e;
  size_t i;
  int r = 0;
  if (depth >= OB_MAX_INDEX_DEPTH)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "index %s: indexes nested more than %d deep", d->digest,
                          OB_MAX_INDEX_DEPTH);
  if (read_index_blob (l, d, &j, err) < 0)
    return -1;
  add_blob (x, d);
  json_array_foreach (json_object_get (j, "manifests"), i, e)
    {
      struct ob_descriptor c = { 0 };
      cleanup_free char *mdata = NULL;
      struct ob_manifest *m = NULL;
      size_t mlen;
      if (ob_descriptor_from_json (e, &c, err) < 0)
        {
          r = ob_error_wrap (err, "index %s", d->digest);
          break;
        }
      if (!ob_layout_has_blob (l, c.digest))
        {
          cleanup_free char *p = ob_image_entry_platform (e);
          r = ob_error_make (err, OB_ERR_IMAGE, 0,
                             "index %s lists %s (%s), which the store does not have: save one platform with --platform",
                             d->digest, c.digest, p);
        }
      else if (ob_image_media_type_is_index (c.media_type))
        r = collect_index (l, &c, depth + 1, x, err);
      else if (ob_layout_blob_read_desc (l, &c, &mdata, &mlen, err) < 0
               || ob_image_manifest_parse (mdata, mlen, &m, err) < 0)
        r = ob_error_wrap (err, "index %s: manifest %s", d->digest, c.digest);
      else
        {
          add_blob (x, &c);
          for (size_t k = 0; r == 0 && k <= m->n_layers; k++)
            {
              const struct ob_descriptor *b = k == 0 ? &m->config : &m->layers[k - 1];
              if (!ob_layout_has_blob (l, b->digest))
                r = ob_error_make (err, OB_ERR_IMAGE, 0, "manifest %s: blob %s is not in the store", c.digest,
                                   b->digest);
              else
                add_blob (x, b);
            }
        }
      ob_manifest_free (m);
      ob_descriptor_clear (&c);
      if (r < 0)
        break;
    }
  json_decref (j);
  return r;
}

/* Does the index d list an image for linux/<this machine's arch>?  hosts
 * receives the platforms it lists ("linux/amd64, linux/arm64"). */
static int
index_has_host (struct ob_layout *l, const struct ob_descriptor *d, bool *has, char **list, ob_error_t *err)
{
  json_t *j, *e;
  size_t i;
  *has = false;
  *list = NULL;
  if (read_index_blob (l, d, &j, err) < 0)
    return -1;
  json_array_foreach (json_object_get (j, "manifests"), i, e)
    {
      json_t *p = json_object_get (e, "platform");
      const char *os = json_string_value (json_object_get (p, "os"));
      const char *arch = json_string_value (json_object_get (p, "architecture"));
      cleanup_free char *s = ob_image_entry_platform (e);
      char *joined = *list ? ob_xasprintf ("%s, %s", *list, s) : ob_xstrdup (s);
      free (*list);
      *list = joined;
      *has = *has || (os && arch && strcmp (os, "linux") == 0 && strcmp (arch, ob_image_host_arch ()) == 0);
    }
  json_decref (j);
  return 0;
}

/* The config's platform must be the one asked for (an index entry's
 * platform may say otherwise, and a single-platform tag says nothing). */
static int
config_platform_is (json_t *cfg, const char *want, const char *image, ob_error_t *err)
{
  cleanup_free char *os = NULL, *arch = NULL, *variant = NULL;
  const char *co = json_string_value (json_object_get (cfg, "os"));
  const char *ca = json_string_value (json_object_get (cfg, "architecture"));
  const char *cv = json_string_value (json_object_get (cfg, "variant"));
  if (ob_image_platform_parse (want, &os, &arch, &variant, err) < 0)
    return -1;
  if (co && ca && strcmp (co, os) == 0 && strcmp (ca, arch) == 0 && (!cv || !variant || strcmp (cv, variant) == 0))
    return 0;
  return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s` is an image for %s/%s%s%s, not for %s", image, co ? co : "?",
                        ca ? ca : "?", cv ? "/" : "", cv ? cv : "", want);
}

static int
saved_load (struct ob_layout *l, const char *image, const struct ob_archive_save_opts *o, struct saved *x,
            ob_error_t *err)
{
  char top[72];
  cleanup_free char *mdata = NULL;
  cleanup_free char *cdata = NULL;
  const char *want = o->platform;
  size_t mlen, clen;
  memset (x, 0, sizeof *x);
  if (ob_imagecmd_find (l, image, top, &x->tag, err) < 0)
    return -1;
  if (ob_layout_resolve_entry (l, top, &x->top, err) < 0)
    return ob_error_wrap (err, "%s", image);
  if (ob_image_media_type_is_index (x->top.media_type) && want == NULL)
    {
      bool has;
      cleanup_free char *list = NULL;
      /* the oci-archive holds the index whole */
      if (o->format == OB_ARCHIVE_OCI)
        return collect_index (l, &x->top, 0, x, err) < 0 ? ob_error_wrap (err, "%s", image) : 0;
      /* a docker-archive holds one image per tag: this machine's, as docker
       * does (the caller says so) */
      if (index_has_host (l, &x->top, &has, &list, err) < 0)
        return ob_error_wrap (err, "%s", image);
      if (!has)
        return ob_error_make (err, OB_ERR_USAGE, 0,
                              "`%s` is a multi-platform image without linux/%s (it has %s): a docker-archive holds one "
                              "platform, choose it with --platform",
                              image, ob_image_host_arch (), list);
      x->chosen = ob_xasprintf ("linux/%s", ob_image_host_arch ());
      want = x->chosen;
    }
  if (ob_layout_resolve_platform (l, top, want, &x->md, err) < 0
      || ob_layout_blob_read_desc (l, &x->md, &mdata, &mlen, err) < 0
      || ob_image_manifest_parse (mdata, mlen, &x->m, err) < 0
      || ob_layout_blob_read_desc (l, &x->m->config, &cdata, &clen, err) < 0
      || ob_image_config_parse (cdata, clen, &x->cfg, err) < 0)
    return ob_error_wrap (err, "%s", image);
  if (want && config_platform_is (x->cfg, want, image, err) < 0)
    return -1;
  /* the archive's entry is this platform's manifest */
  ob_descriptor_clear (&x->top);
  x->top = x->md;
  x->top.media_type = x->md.media_type ? ob_xstrdup (x->md.media_type) : NULL;
  add_blob (x, &x->md);
  add_blob (x, &x->m->config);
  for (size_t k = 0; k < x->m->n_layers; k++)
    add_blob (x, &x->m->layers[k]);
  return 0;
}

static int
ar_error (struct archive *a, const char *file, ob_error_t *err)
{
  return ob_error_make (err, OB_ERR_STORE, archive_errno (a) > 0 ? archive_errno (a) : 0, "write `%s`: %s", file,
                        archive_error_string (a) ? archive_error_string (a) : "failed");
}

static int
ar_header (struct archive *a, const char *file, const char *name, bool dir, int64_t size, ob_error_t *err)
{
  struct archive_entry *e = archive_entry_new ();
  int r;
  if (e == NULL)
    ob_oom ();
  archive_entry_set_pathname (e, name);
  archive_entry_set_filetype (e, dir ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm (e, dir ? 0755 : 0644);
  archive_entry_set_size (e, dir ? 0 : size);
  /* a fixed time: the same images give the same archive */
  archive_entry_set_mtime (e, 0, 0);
  r = archive_write_header (a, e);
  archive_entry_free (e);
  return r == ARCHIVE_OK ? 0 : ar_error (a, file, err);
}

static int
ar_mem (struct archive *a, const char *file, const char *name, const void *data, size_t len, ob_error_t *err)
{
  if (ar_header (a, file, name, false, len, err) < 0)
    return -1;
  if (len && archive_write_data (a, data, len) != (la_ssize_t) len)
    return ar_error (a, file, err);
  return 0;
}

/* Copy size bytes of fd (from its start) into the archive as name; with
 * digest, the content must have it (a store blob damaged on disk is not
 * passed on). */
static int
ar_fd (struct archive *a, const char *file, const char *name, int fd, int64_t size, const char *digest,
       ob_error_t *err)
{
  struct ob_sha256 *h = ob_sha256_new ();
  char buf[65536], got[OB_DIGEST_LEN];
  int64_t done = 0;
  if (lseek (fd, 0, SEEK_SET) < 0 || ar_header (a, file, name, false, size, err) < 0)
    {
      ob_sha256_free (h);
      return *err ? -1 : ob_error_make (err, OB_ERR_STORE, errno, "rewind %s", name);
    }
  while (done < size)
    {
      ssize_t n = read (fd, buf, size - done < (int64_t) sizeof buf ? (size_t) (size - done) : sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          ob_sha256_free (h);
          return ob_error_make (err, OB_ERR_STORE, n < 0 ? errno : 0, "read %s: %s", name,
                                n < 0 ? "failed" : "shorter than its size");
        }
      ob_sha256_update (h, buf, n);
      if (archive_write_data (a, buf, n) != n)
        {
          ob_sha256_free (h);
          return ar_error (a, file, err);
        }
      done += n;
    }
  ob_sha256_final (h, got);
  if (digest && strcmp (got, digest) != 0)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "blob %s in the store has digest %s", digest, got);
  return 0;
}

static int
ar_blob (struct archive *a, const char *file, struct ob_layout *l, const char *name, const struct ob_descriptor *d,
         ob_error_t *err)
{
  cleanup_close int fd = -1;
  if (ob_layout_blob_open (l, d->digest, &fd, err) < 0
      || ob_blob_check_size (fd, d, false, err) < 0)
    return -1;
  return ar_fd (a, file, name, fd, d->size, d->digest, err);
}

static bool
strv_has (char *const *v, const char *s)
{
  for (size_t i = 0; v && v[i]; i++)
    if (strcmp (v[i], s) == 0)
      return true;
  return false;
}

static int
save_oci (struct ob_layout *l, struct saved *imgs, size_t n, struct archive *a, const char *file, ob_error_t *err)
{
  static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
  cleanup_strv char **done = NULL;
  cleanup_free char *text = NULL;
  json_t *idx = json_object (), *mans = json_array ();

  json_object_set_new (idx, "schemaVersion", json_integer (2));
  json_object_set_new (idx, "mediaType", json_string (OB_MT_OCI_INDEX));
  json_object_set_new (idx, "manifests", mans);
  for (size_t i = 0; i < n; i++)
    {
      json_t *d = ob_descriptor_to_json (&imgs[i].top);
      if (imgs[i].tag)
        {
          json_t *an = json_object ();
          json_object_set_new (an, OB_ANNOT_REF_NAME, json_string (imgs[i].tag));
          json_object_set_new (d, "annotations", an);
        }
      json_array_append_new (mans, d);
    }
  text = ob_json_canonical (idx);
  json_decref (idx);
  if (ar_mem (a, file, "oci-layout", layout, strlen (layout), err) < 0
      || ar_mem (a, file, "index.json", text, strlen (text), err) < 0
      || ar_header (a, file, "blobs/", true, 0, err) < 0 || ar_header (a, file, "blobs/sha256/", true, 0, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < imgs[i].n_blobs; k++)
      {
        const struct ob_descriptor *d = &imgs[i].blobs[k];
        cleanup_free char *name = ob_xasprintf ("blobs/sha256/%s", d->digest + 7);
        if (strv_has (done, d->digest))
          continue;
        if (ar_blob (a, file, l, name, d, err) < 0)
          return -1;
        ob_strv_add (&done, d->digest);
      }
  return 0;
}

/* A layer, uncompressed, into an anonymous file of dir: its sha256 must be
 * diff_id. */
static int
decompress_layer (struct ob_layout *l, const struct ob_descriptor *d, const char *diff_id, const char *dir, int *out,
                  int64_t *size, ob_error_t *err)
{
  cleanup_close int in = -1;
  cleanup_close int tmp = -1;
  struct archive *a;
  struct archive_entry *e;
  struct ob_sha256 *h;
  const void *buf;
  size_t len;
  la_int64_t off;
  char got[OB_DIGEST_LEN];
  int r;

  if (ob_layout_blob_open (l, d->digest, &in, err) < 0 || ob_blob_check_size (in, d, false, err) < 0)
    return -1;
  tmp = open (dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (tmp < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "temporary file in `%s`", dir);
  a = archive_read_new ();
  if (a == NULL)
    ob_oom ();
  archive_read_support_filter_gzip (a);
  archive_read_support_filter_zstd (a);
  archive_read_support_format_raw (a);
  if (ob_layer_archive_open (a, in) != ARCHIVE_OK || archive_read_next_header (a, &e) != ARCHIVE_OK)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "layer %s: %s", d->digest, archive_error_string (a));
      archive_read_free (a);
      return -1;
    }
  h = ob_sha256_new ();
  *size = 0;
  while ((r = archive_read_data_block (a, &buf, &len, &off)) == ARCHIVE_OK)
    {
      ob_sha256_update (h, buf, len);
      *size += len;
      if (ob_write_all (tmp, buf, len, err) < 0)
        {
          ob_sha256_free (h);
          archive_read_free (a);
          return -1;
        }
    }
  if (r != ARCHIVE_EOF)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "layer %s: %s", d->digest, archive_error_string (a));
      ob_sha256_free (h);
      archive_read_free (a);
      return -1;
    }
  archive_read_free (a);
  ob_sha256_final (h, got);
  if (strcmp (got, diff_id) != 0)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "layer %s: uncompressed content has digest %s, the config's diff_id is %s",
                          d->digest, got, diff_id);
  *out = ob_steal_fd (&tmp);
  return 0;
}

/* "name:tag" -> name, tag (the tag is after the last ':' past the last '/'). */
static void
split_tag (const char *ref, char **name, const char **tag)
{
  const char *c = strrchr (ref, ':');
  if (c == NULL || (strrchr (ref, '/') && strrchr (ref, '/') > c))
    {
      *name = ob_xstrdup (ref);
      *tag = "latest";
      return;
    }
  *name = ob_xstrndup (ref, c - ref);
  *tag = c + 1;
}

static int
save_docker (struct ob_store *s, struct saved *imgs, size_t n, struct archive *a, const char *file, ob_error_t *err)
{
  cleanup_strv char **done = NULL;
  cleanup_free char *mtext = NULL;
  cleanup_free char *rtext = NULL;
  json_t *list = json_array (), *repos = json_object ();
  int r = -1;

  for (size_t i = 0; i < n; i++)
    {
      struct saved *x = &imgs[i];
      json_t *ids = json_object_get (json_object_get (x->cfg, "rootfs"), "diff_ids");
      cleanup_free char *cname = ob_xasprintf ("%s.json", x->m->config.digest + 7);
      json_t *entry = NULL, *e, *layers;
      size_t k;
      const char *last = NULL;

      if (json_array_size (ids) != x->m->n_layers)
        {
          ob_error_make (err, OB_ERR_IMAGE, 0, "%s: %zu layers but %zu diff_ids in the config", x->md.digest,
                         x->m->n_layers, json_array_size (ids));
          goto out;
        }
      /* one entry per image, with all the tags it is saved under */
      json_array_foreach (list, k, e)
        if (strcmp (json_string_value (json_object_get (e, "Config")), cname) == 0)
          entry = e;
      if (entry == NULL)
        {
          if (!strv_has (done, cname))
            {
              if (ar_blob (a, file, s->oci, cname, &x->m->config, err) < 0)
                goto out;
              ob_strv_add (&done, cname);
            }
          layers = json_array ();
          for (k = 0; k < x->m->n_layers; k++)
            {
              const struct ob_descriptor *d = &x->m->layers[k];
              const char *id = json_string_value (json_array_get (ids, k));
              cleanup_free char *lname = NULL;
              if (!ob_digest_valid (id))
                {
                  json_decref (layers);
                  ob_error_make (err, OB_ERR_IMAGE, 0, "%s: invalid diff_id #%zu in the config", x->md.digest, k);
                  goto out;
                }
              lname = ob_xasprintf ("%s.tar", id + 7);
              json_array_append_new (layers, json_string (lname));
              last = id + 7;
              if (strv_has (done, lname))
                continue;
              if (d->media_type
                  && (strcmp (d->media_type, OB_MT_LAYER_TAR) == 0 || strcmp (d->media_type, MT_DOCKER_LAYER_TAR) == 0)
                  && strcmp (d->digest, id) == 0)
                {
                  if (ar_blob (a, file, s->oci, lname, d, err) < 0)
                    {
                      json_decref (layers);
                      goto out;
                    }
                }
              else
                {
                  /* docker load wants the layers as tar files (diff_id = content) */
                  cleanup_close int fd = -1;
                  int64_t size = 0;
                  if (decompress_layer (s->oci, d, id, s->tmp, &fd, &size, err) < 0
                      || ar_fd (a, file, lname, fd, size, id, err) < 0)
                    {
                      json_decref (layers);
                      goto out;
                    }
                }
              ob_strv_add (&done, lname);
            }
          entry = json_object ();
          json_object_set_new (entry, "Config", json_string (cname));
          json_object_set_new (entry, "RepoTags", json_array ());
          json_object_set_new (entry, "Layers", layers);
          json_array_append_new (list, entry);
        }
      else
        {
          json_t *ls = json_object_get (entry, "Layers");
          const char *l = json_string_value (json_array_get (ls, json_array_size (ls) - 1));
          last = l ? l : NULL;
        }
      if (x->tag)
        {
          cleanup_free char *name = NULL;
          const char *tag;
          json_t *rt = json_object_get (entry, "RepoTags"), *t;
          bool have = false;
          json_array_foreach (rt, k, t)
            have = have || strcmp (json_string_value (t), x->tag) == 0;
          if (!have)
            json_array_append_new (rt, json_string (x->tag));
          split_tag (x->tag, &name, &tag);
          if (last)
            {
              cleanup_free char *top = ob_xstrndup (last, 64);
              json_t *rn = json_object_get (repos, name);
              if (rn == NULL)
                {
                  rn = json_object ();
                  json_object_set_new (repos, name, rn);
                }
              json_object_set_new (rn, tag, json_string (top));
            }
        }
    }
  mtext = json_dumps (list, JSON_COMPACT | JSON_PRESERVE_ORDER);
  rtext = json_dumps (repos, JSON_COMPACT | JSON_SORT_KEYS);
  if (mtext == NULL || rtext == NULL)
    ob_oom ();
  if (ar_mem (a, file, "manifest.json", mtext, strlen (mtext), err) < 0)
    goto out;
  if (json_object_size (repos) && ar_mem (a, file, "repositories", rtext, strlen (rtext), err) < 0)
    goto out;
  r = 0;
out:
  json_decref (list);
  json_decref (repos);
  return r;
}

int
ob_archive_save (struct ob_store *s, char *const *images, size_t n, const struct ob_archive_save_opts *o,
                 const char *file, char ***chosen, ob_error_t *err)
{
  enum ob_archive_format format = o->format;
  struct saved *imgs = ob_xmalloc0 ((n + 1) * sizeof *imgs);
  cleanup_free char *tmp = ob_xasprintf ("%s.obuild-tmp.%ld", file, (long) getpid ());
  struct archive *a = NULL;
  int fd = -1, r = -1;
  size_t loaded = 0;

  *chosen = NULL;
  for (; loaded < n; loaded++)
    if (saved_load (s->oci, images[loaded], o, &imgs[loaded], err) < 0)
      {
        loaded++; /* cleared below with the others */
        goto out;
      }
  fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      ob_error_make (err, OB_ERR_STORE, errno, "create `%s` (a temporary file next to `%s`)", tmp, file);
      goto out;
    }
  a = archive_write_new ();
  if (a == NULL)
    ob_oom ();
  archive_write_set_format_pax_restricted (a);
  if (archive_write_open_fd (a, fd) != ARCHIVE_OK)
    {
      ar_error (a, file, err);
      goto out;
    }
  if ((format == OB_ARCHIVE_OCI ? save_oci (s->oci, imgs, n, a, file, err) : save_docker (s, imgs, n, a, file, err)) < 0)
    goto out;
  if (archive_write_close (a) != ARCHIVE_OK)
    {
      ar_error (a, file, err);
      goto out;
    }
  if (fsync (fd) < 0 || rename (tmp, file) < 0)
    {
      ob_error_make (err, OB_ERR_STORE, errno, "write `%s`", file);
      goto out;
    }
  for (size_t i = 0; i < n; i++)
    if (imgs[i].chosen)
      {
        ob_strv_add (chosen, images[i]);
        ob_strv_add (chosen, imgs[i].chosen);
      }
  r = 0;
out:
  if (a)
    archive_write_free (a);
  if (fd >= 0)
    {
      close (fd);
      if (r < 0)
        unlink (tmp);
    }
  for (size_t i = 0; i < loaded; i++)
    saved_clear (&imgs[i]);
  free (imgs);
  return r;
}

/* ---- load ---- */

/* Read manifest.json and index.json (whichever there are) from the archive
 * without unpacking it. */
static int
peek_archive (const char *file, char **manifest, char **index, ob_error_t *err)
{
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  int r, ret = 0;
  if (a == NULL)
    ob_oom ();
  *manifest = *index = NULL;
  ob_layer_reader_filters (a); /* never all: see layer.h */
  archive_read_support_format_tar (a);
  if (archive_read_open_filename (a, file, 1 << 16) != ARCHIVE_OK)
    {
      int en = archive_errno (a);
      if (en == ENOENT || en == EACCES || en == EISDIR || en == ENOTDIR)
        ret = ob_error_make (err, OB_ERR_IMAGE, en, "open `%s`", file);
      else
        ret = ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: not a docker-archive or oci-archive: %s", file,
                             archive_error_string (a));
      archive_read_free (a);
      return ret;
    }
  while ((r = archive_read_next_header (a, &e)) == ARCHIVE_OK)
    {
      const char *name = archive_entry_pathname (e);
      char **slot = NULL;
      while (name && ob_str_has_prefix (name, "./"))
        name += 2;
      if (name && strcmp (name, "manifest.json") == 0)
        slot = manifest;
      else if (name && strcmp (name, "index.json") == 0)
        slot = index;
      if (slot == NULL || *slot || archive_entry_filetype (e) != AE_IFREG)
        continue;
      if (archive_entry_size (e) > OB_MAX_JSON_BLOB)
        {
          ret = ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: %s: size %lld is more than the %d bytes allowed", file, name,
                               (long long) archive_entry_size (e), OB_MAX_JSON_BLOB);
          goto out;
        }
      *slot = ob_xmalloc (archive_entry_size (e) + 1);
      la_ssize_t got = archive_read_data (a, *slot, archive_entry_size (e));
      if (got != archive_entry_size (e))
        {
          ret = ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: %s: %s", file, name, archive_error_string (a));
          goto out;
        }
      (*slot)[got] = '\0';
    }
  if (r != ARCHIVE_EOF)
    ret = ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: not a docker-archive or oci-archive: %s", file,
                         archive_error_string (a));
  else if (*manifest == NULL && *index == NULL)
    ret = ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: not a docker-archive or oci-archive (no manifest.json or index.json)",
                         file);
out:
  archive_read_free (a);
  if (ret < 0)
    {
      free (*manifest);
      free (*index);
      *manifest = *index = NULL;
    }
  return ret;
}

struct to_load
{
  char *select; /* what picks it out of the archive (NULL: the only one) */
  char **tags;  /* normalised */
  struct ob_source src;
};

static int
add_tag (struct to_load *x, const char *file, const char *t, ob_error_t *err)
{
  char *norm;
  if (t == NULL || ob_image_ref_normalize (t, &norm, err) < 0)
    {
      ob_error_set_kind (err, OB_ERR_IMAGE);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: invalid tag `%s` in the archive", file, t ? t : "(not a string)");
    }
  if (!strv_has (x->tags, norm))
    ob_strv_add (&x->tags, norm);
  free (norm);
  return 0;
}

int
ob_archive_load (struct ob_store *s, const char *file, char ***loaded, ob_error_t *err)
{
  cleanup_free char *mtext = NULL;
  cleanup_free char *itext = NULL;
  struct to_load *imgs = NULL;
  size_t n = 0, i;
  struct ob_txn *t = NULL;
  json_t *j = NULL, *e;
  bool docker;
  int r = -1;

  *loaded = NULL;
  if (peek_archive (file, &mtext, &itext, err) < 0)
    return -1;
  /* manifest.json first: newer docker save writes both, and only it has the tags */
  docker = mtext != NULL;
  j = json_loads (docker ? mtext : itext, 0, NULL);
  if (docker ? !json_is_array (j) : !json_is_array (json_object_get (j, "manifests")))
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: %s: not a %s", file, docker ? "manifest.json" : "index.json",
                     docker ? "docker-archive manifest list" : "valid OCI index");
      goto out;
    }
  {
    json_t *list = docker ? j : json_object_get (j, "manifests");
    size_t count = json_array_size (list);
    if (count == 0)
      {
        ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: the archive holds no image", file);
        goto out;
      }
    if (count > OB_ARCHIVE_MAX_IMAGES)
      {
        /* each image is looked up in the archive's list: a list of 40,000
         * (what 4 MiB of manifest.json holds) took hours */
        ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: the archive lists %zu images, more than the %d obuild loads at once",
                       file, count, OB_ARCHIVE_MAX_IMAGES);
        goto out;
      }
    imgs = ob_xmalloc0 (count * sizeof *imgs);
    size_t n_tags = 0;
    json_array_foreach (list, i, e)
      {
        struct to_load *x = &imgs[n++];
        if (docker)
          {
            json_t *rt = json_object_get (e, "RepoTags"), *tj;
            size_t k;
            n_tags += json_array_size (rt);
            if (n_tags > OB_ARCHIVE_MAX_TAGS)
              {
                /* each tag is checked against the image's others */
                ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: the archive names more than %d tags", file,
                               OB_ARCHIVE_MAX_TAGS);
                goto out;
              }
            json_array_foreach (rt, k, tj)
              if (add_tag (x, file, json_string_value (tj), err) < 0)
                goto out;
            if (json_array_size (rt))
              x->select = ob_xstrdup (json_string_value (json_array_get (rt, 0)));
          }
        else
          {
            const char *name
                = json_string_value (json_object_get (json_object_get (e, "annotations"), OB_ANNOT_REF_NAME));
            const char *dg = json_string_value (json_object_get (e, "digest"));
            if (name && add_tag (x, file, name, err) < 0)
              goto out;
            if (name || (dg && count > 1))
              x->select = ob_xstrdup (name ? name : dg);
          }
        if (x->select == NULL && count > 1)
          {
            ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: image #%zu has no tag, in an archive of %zu images", file, i, count);
            goto out;
          }
      }
  }
  /* everything staged and verified before any tag changes */
  if (ob_txn_begin (s->oci, s->tmp, &t, err) < 0)
    goto out;
  for (i = 0; i < n; i++)
    if (ob_source_archive (s, t, file, docker, imgs[i].select, &imgs[i].src, err) < 0)
      goto out;
  {
    /* one write of index.json for all (one each made loading quadratic) */
    struct ob_descriptor *mans = ob_xmalloc0 ((n + 1) * sizeof *mans);
    char ***tags = ob_xmalloc0 ((n + 1) * sizeof *tags);
    for (i = 0; i < n; i++)
      {
        mans[i] = imgs[i].src.manifest;
        tags[i] = imgs[i].tags;
      }
    r = ob_txn_commit_many (t, n, mans, (char *const *const *) tags, err);
    free (mans);
    free (tags);
    if (r < 0)
      goto out;
    r = -1;
  }
  for (i = 0; i < n; i++)
    {
      if (imgs[i].tags == NULL)
        ob_strv_add (loaded, imgs[i].src.manifest.digest);
      for (size_t k = 0; imgs[i].tags && imgs[i].tags[k]; k++)
        ob_strv_add (loaded, imgs[i].tags[k]);
    }
  r = 0;
out:
  ob_txn_free (t);
  json_decref (j);
  for (i = 0; i < n; i++)
    {
      free (imgs[i].select);
      ob_strv_free (imgs[i].tags);
      ob_source_clear (&imgs[i].src);
    }
  free (imgs);
  if (r < 0)
    {
      ob_strv_free (*loaded);
      *loaded = NULL;
    }
  return r;
}
