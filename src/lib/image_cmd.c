/* inspect, history, tag, rmi on the store (see include/obuild/imagecmd.h). */
#include "config.h"
#include <obuild/image.h>
#include <obuild/imagecmd.h>
#include <obuild/registry.h>
#include <obuild/util.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static bool
all_hex (const char *s)
{
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (!isxdigit ((unsigned char) *s) || isupper ((unsigned char) *s))
      return false;
  return true;
}

static int
not_found (const char *image, ob_error_t *err)
{
  return ob_error_make (err, OB_ERR_IMAGE, 0, "image `%s` not found in the store", image);
}

/* Match image against the entries: 1 found, 0 not. */
static int
match_entries (const struct ob_layout_entry *e, size_t n, const char *image, char digest[72], char **tag,
               ob_error_t *err)
{
  const char *hex = ob_str_has_prefix (image, "sha256:") ? image + 7 : image;
  size_t hl = strlen (hex);
  const char *hit = NULL;

  if (hl >= 12 && hl <= 64 && all_hex (hex))
    {
      for (size_t i = 0; i < n; i++)
        if (strncmp (e[i].desc.digest + 7, hex, hl) == 0)
          {
            if (hit && strcmp (hit, e[i].desc.digest) != 0)
              return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s` names more than one image of the store", image);
            hit = e[i].desc.digest;
          }
      if (hit)
        {
          strcpy (digest, hit);
          *tag = NULL;
          return 1;
        }
      if (hex != image)
        return 0; /* "sha256:..." is never a name */
    }
  {
    cleanup_free char *local = NULL;
    struct ob_ref *ref = NULL;
    ob_error_t e2 = NULL;
    int found = 0;
    if (ob_image_ref_normalize (image, &local, err) < 0)
      return -1;
    /* pulled images are tagged with their canonical registry name */
    if (ob_ref_parse (image, &ref, &e2) < 0)
      ob_error_free (&e2);
    for (int pass = 0; pass < 2 && !found; pass++)
      {
        const char *want = pass == 0 ? local : ref ? ref->canonical : NULL;
        for (size_t i = 0; want && i < n; i++)
          if (e[i].tag && strcmp (e[i].tag, want) == 0)
            {
              strcpy (digest, e[i].desc.digest);
              *tag = ob_xstrdup (want);
              found = 1;
            }
      }
    ob_ref_free (ref);
    return found;
  }
}

int
ob_imagecmd_find (struct ob_layout *l, const char *image, char digest[72], char **tag, ob_error_t *err)
{
  struct ob_layout_entry *e = NULL;
  size_t n = 0;
  int r;
  *tag = NULL;
  if (ob_layout_list (l, &e, &n, err) < 0)
    return -1;
  r = match_entries (e, n, image, digest, tag, err);
  ob_layout_entries_free (e, n);
  if (r == 0)
    return not_found (image, err);
  return r < 0 ? -1 : 0;
}

/* The platform manifest, parsed, and the config of IMAGE. */
struct loaded
{
  char top[72];
  char *tag;
  struct ob_descriptor md;
  char *mdata;
  size_t mlen;
  struct ob_manifest *m;
  char *cdata;
  size_t clen;
  json_t *cfg;
};

static void
loaded_clear (struct loaded *x)
{
  free (x->tag);
  ob_descriptor_clear (&x->md);
  free (x->mdata);
  ob_manifest_free (x->m);
  free (x->cdata);
  json_decref (x->cfg);
  memset (x, 0, sizeof *x);
}

/* The platform taken from an index (ob_imagecmd_set_platform); NULL: the
 * host's. */
static const char *img_platform;

void
ob_imagecmd_set_platform (const char *platform)
{
  img_platform = platform;
}

static int
load_image (struct ob_layout *l, const char *image, bool config, struct loaded *x, ob_error_t *err)
{
  memset (x, 0, sizeof *x);
  if (ob_imagecmd_find (l, image, x->top, &x->tag, err) < 0)
    return -1;
  if (ob_layout_resolve_platform (l, x->top, img_platform, &x->md, err) < 0
      || ob_layout_blob_read_desc (l, &x->md, &x->mdata, &x->mlen, err) < 0
      || ob_image_manifest_parse (x->mdata, x->mlen, &x->m, err) < 0)
    goto fail;
  if (config
      && (ob_layout_blob_read_desc (l, &x->m->config, &x->cdata, &x->clen, err) < 0
          || ob_image_config_parse (x->cdata, x->clen, &x->cfg, err) < 0))
    goto fail;
  return 0;
fail:
  ob_error_wrap (err, "%s", image);
  loaded_clear (x);
  return -1;
}

int
ob_imagecmd_blob (struct ob_layout *l, const char *image, enum ob_imagecmd_blob which, char **data, size_t *len,
                  ob_error_t *err)
{
  struct loaded x;
  if (load_image (l, image, which == OB_IMAGECMD_CONFIG, &x, err) < 0)
    return -1;
  if (which == OB_IMAGECMD_CONFIG)
    {
      *data = steal_pointer (&x.cdata);
      *len = x.clen;
    }
  else
    {
      *data = steal_pointer (&x.mdata);
      *len = x.mlen;
    }
  loaded_clear (&x);
  return 0;
}

static void
copy_field (json_t *to, const char *key, json_t *from, const char *field)
{
  json_t *v = json_object_get (from, field);
  if (v)
    json_object_set (to, key, v);
}

int
ob_imagecmd_inspect (struct ob_layout *l, const char *image, json_t **out, ob_error_t *err)
{
  struct loaded x;
  struct ob_layout_entry *e = NULL;
  size_t n = 0;
  json_t *o, *tags, *layers, *mj, *ids;
  int64_t total = 0;
  const char *mt;

  if (load_image (l, image, true, &x, err) < 0)
    return -1;
  if (ob_layout_list (l, &e, &n, err) < 0)
    {
      loaded_clear (&x);
      return -1;
    }
  mj = json_loadb (x.mdata, x.mlen, 0, NULL);
  mt = json_string_value (json_object_get (mj, "mediaType"));
  o = json_object ();
  json_object_set_new (o, "Name", x.tag ? json_string (x.tag) : json_null ());
  json_object_set_new (o, "Digest", json_string (x.md.digest));
  json_object_set_new (o, "MediaType", json_string (mt ? mt : x.md.media_type ? x.md.media_type : OB_MT_OCI_MANIFEST));
  if (strcmp (x.top, x.md.digest) != 0)
    json_object_set_new (o, "IndexDigest", json_string (x.top));
  tags = json_array ();
  for (size_t i = 0; i < n; i++)
    if (e[i].tag && strcmp (e[i].desc.digest, x.top) == 0)
      json_array_append_new (tags, json_string (e[i].tag));
  json_object_set_new (o, "RepoTags", tags);
  json_object_set_new (o, "Id", json_string (x.m->config.digest));
  copy_field (o, "Created", x.cfg, "created");
  copy_field (o, "Author", x.cfg, "author");
  copy_field (o, "Architecture", x.cfg, "architecture");
  copy_field (o, "Os", x.cfg, "os");
  copy_field (o, "Variant", x.cfg, "variant");
  json_object_set_new (o, "Config", json_is_object (json_object_get (x.cfg, "config"))
                                        ? json_incref (json_object_get (x.cfg, "config"))
                                        : json_object ());
  json_object_set_new (o, "ConfigDescriptor", ob_descriptor_to_json (&x.m->config));
  ids = json_object_get (json_object_get (x.cfg, "rootfs"), "diff_ids");
  layers = json_array ();
  for (size_t i = 0; i < x.m->n_layers; i++)
    {
      json_t *d = json_object ();
      json_t *id = json_array_get (ids, i);
      json_object_set_new (d, "MediaType", json_string (x.m->layers[i].media_type ? x.m->layers[i].media_type : ""));
      json_object_set_new (d, "Digest", json_string (x.m->layers[i].digest));
      json_object_set_new (d, "Size", json_integer (x.m->layers[i].size));
      if (id)
        json_object_set (d, "DiffID", id);
      json_array_append_new (layers, d);
      total += x.m->layers[i].size;
    }
  json_object_set_new (o, "Layers", layers);
  json_object_set_new (o, "Size", json_integer (total));
  json_object_set_new (o, "History", json_is_array (json_object_get (x.cfg, "history"))
                                         ? json_incref (json_object_get (x.cfg, "history"))
                                         : json_array ());
  copy_field (o, "Annotations", mj, "annotations");
  json_decref (mj);
  ob_layout_entries_free (e, n);
  loaded_clear (&x);
  *out = o;
  return 0;
}

void
ob_history_rows_free (struct ob_history_row *rows, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (rows[i].id);
      free (rows[i].created);
      free (rows[i].created_by);
      free (rows[i].comment);
    }
  free (rows);
}

int
ob_imagecmd_history (struct ob_layout *l, const char *image, struct ob_history_row **rows, size_t *n,
                     ob_error_t *err)
{
  struct loaded x;
  json_t *hist, *h;
  size_t i, nh, layer = 0;
  struct ob_history_row *r;

  if (load_image (l, image, true, &x, err) < 0)
    return -1;
  hist = json_object_get (x.cfg, "history");
  nh = json_array_size (hist);
  /* an image without history (some importers) still has its layers */
  r = ob_xmalloc0 ((nh + x.m->n_layers + 1) * sizeof *r);
  *n = 0;
  json_array_foreach (hist, i, h)
    {
      struct ob_history_row *w = &r[*n];
      const char *s;
      w->empty_layer = json_is_true (json_object_get (h, "empty_layer"));
      if ((s = json_string_value (json_object_get (h, "created"))))
        w->created = ob_xstrdup (s);
      s = json_string_value (json_object_get (h, "created_by"));
      w->created_by = ob_xstrdup (s ? s : "");
      s = json_string_value (json_object_get (h, "comment"));
      w->comment = ob_xstrdup (s ? s : "");
      if (!w->empty_layer && layer < x.m->n_layers)
        w->size = x.m->layers[layer++].size;
      (*n)++;
    }
  for (; nh == 0 && layer < x.m->n_layers; layer++)
    {
      r[*n].created_by = ob_xstrdup ("");
      r[*n].comment = ob_xstrdup ("");
      r[*n].size = x.m->layers[layer].size;
      (*n)++;
    }
  /* newest first, as docker history prints */
  for (size_t a = 0, b = *n ? *n - 1 : 0; a < b; a++, b--)
    {
      struct ob_history_row t = r[a];
      r[a] = r[b];
      r[b] = t;
    }
  if (*n)
    r[0].id = ob_xstrdup (x.m->config.digest);
  loaded_clear (&x);
  *rows = r;
  return 0;
}

/* ---- editing index.json ---- */

/* index.json is rewritten by builds too: every change is read-modify-write
 * under the exclusive flock the store's transactions take. */
struct index_lock
{
  int fd;
  char *path;
  json_t *idx;
};

static int
index_begin (struct ob_layout *l, struct index_lock *k, ob_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len;
  json_error_t jerr;
  k->idx = NULL;
  k->path = ob_xasprintf ("%s/index.json", ob_layout_path (l));
  k->fd = open (ob_layout_path (l), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (k->fd < 0 || flock (k->fd, LOCK_EX) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "lock `%s`", ob_layout_path (l));
  if (ob_read_file_at (AT_FDCWD, k->path, &data, &len, err) < 0)
    return -1;
  k->idx = json_loadb (data, len, 0, &jerr);
  if (!json_is_object (k->idx))
    return ob_error_make (err, OB_ERR_IMAGE, 0, "`%s`: invalid JSON: %s", k->path, jerr.text);
  if (!json_is_array (json_object_get (k->idx, "manifests")))
    json_object_set_new (k->idx, "manifests", json_array ());
  return 0;
}

static int
index_write (struct index_lock *k, ob_error_t *err)
{
  cleanup_free char *text = ob_json_canonical (k->idx);
  return ob_write_file_atomic_at (AT_FDCWD, k->path, text, strlen (text), 0644, err);
}

static void
index_end (struct index_lock *k)
{
  if (k->fd >= 0)
    {
      flock (k->fd, LOCK_UN);
      close (k->fd);
    }
  json_decref (k->idx);
  free (k->path);
}

static const char *
json_entry_tag (json_t *e)
{
  return json_string_value (json_object_get (json_object_get (e, "annotations"), OB_ANNOT_REF_NAME));
}

int
ob_imagecmd_tag (struct ob_layout *l, const char *src, char *const *tags, ob_error_t *err)
{
  char **norm = NULL;
  char digest[72];
  cleanup_free char *srctag = NULL;
  struct index_lock k = { -1, NULL, NULL };
  json_t *mans, *kept, *e, *model = NULL;
  size_t i;
  int r = -1;

  for (size_t t = 0; tags[t]; t++)
    {
      char *s;
      if (ob_image_ref_normalize (tags[t], &s, err) < 0)
        goto out;
      ob_strv_take (&norm, s);
    }
  if (ob_imagecmd_find (l, src, digest, &srctag, err) < 0 || index_begin (l, &k, err) < 0)
    goto out;
  mans = json_object_get (k.idx, "manifests");
  json_array_foreach (mans, i, e)
    if (strcmp (json_string_value (json_object_get (e, "digest")) ?: "", digest) == 0)
      model = e;
  if (model == NULL)
    {
      not_found (src, err); /* removed since we looked */
      goto out;
    }
  model = json_deep_copy (model);
  kept = json_array ();
  json_array_foreach (mans, i, e)
    {
      const char *tag = json_entry_tag (e);
      bool drop = false;
      for (size_t t = 0; norm && norm[t]; t++)
        if (tag && strcmp (tag, norm[t]) == 0)
          drop = true;
      /* an untagged entry of the image is named now */
      if (tag == NULL && strcmp (json_string_value (json_object_get (e, "digest")) ?: "", digest) == 0)
        drop = true;
      if (!drop)
        json_array_append (kept, e);
    }
  for (size_t t = 0; norm && norm[t]; t++)
    {
      json_t *d = json_deep_copy (model);
      json_t *a = json_object_get (d, "annotations");
      if (!json_is_object (a))
        {
          a = json_object ();
          json_object_set_new (d, "annotations", a);
        }
      json_object_set_new (a, OB_ANNOT_REF_NAME, json_string (norm[t]));
      json_array_append_new (kept, d);
    }
  json_decref (model);
  json_object_set_new (k.idx, "manifests", kept);
  r = index_write (&k, err);
out:
  index_end (&k);
  ob_strv_free (norm);
  return r;
}

int
ob_imagecmd_untag (struct ob_layout *l, char *const *images, char ***untagged, char ***digests, ob_error_t *err)
{
  struct index_lock k = { -1, NULL, NULL };
  struct ob_layout_entry *ents = NULL;
  size_t n = 0, i;
  json_t *kept, *e;
  /* what to drop: (digest, tag) pairs; tag NULL = every entry of digest */
  char **drop_dg = NULL, **drop_tag = NULL;
  size_t nd = 0;
  int r = -1;

  *untagged = NULL;
  *digests = NULL;
  if (index_begin (l, &k, err) < 0)
    goto out;
  /* resolve every name first, under the lock: all or nothing */
  if (ob_layout_list (l, &ents, &n, err) < 0)
    goto out;
  for (size_t a = 0; images[a]; a++)
    {
      char dg[72];
      char *tag = NULL;
      int f = match_entries (ents, n, images[a], dg, &tag, err);
      if (f <= 0)
        {
          if (f == 0)
            not_found (images[a], err);
          goto out;
        }
      drop_dg = ob_xrealloc (drop_dg, (nd + 1) * sizeof *drop_dg);
      drop_tag = ob_xrealloc (drop_tag, (nd + 1) * sizeof *drop_tag);
      drop_dg[nd] = ob_xstrdup (dg);
      drop_tag[nd] = tag;
      nd++;
    }
  kept = json_array ();
  json_array_foreach (json_object_get (k.idx, "manifests"), i, e)
    {
      const char *tag = json_entry_tag (e);
      const char *dg = json_string_value (json_object_get (e, "digest")) ?: "";
      bool drop = false;
      for (size_t d = 0; d < nd && !drop; d++)
        drop = strcmp (dg, drop_dg[d]) == 0 && (drop_tag[d] == NULL || (tag && strcmp (tag, drop_tag[d]) == 0));
      if (!drop)
        {
          json_array_append (kept, e);
          continue;
        }
      ob_strv_add (untagged, tag ? tag : dg);
      {
        bool seen = false;
        for (size_t s = 0; *digests && (*digests)[s]; s++)
          seen = seen || strcmp ((*digests)[s], dg) == 0;
        if (!seen)
          ob_strv_add (digests, dg);
      }
    }
  json_object_set_new (k.idx, "manifests", kept);
  r = index_write (&k, err);
out:
  index_end (&k);
  ob_layout_entries_free (ents, n);
  for (size_t d = 0; d < nd; d++)
    {
      free (drop_dg[d]);
      free (drop_tag[d]);
    }
  free (drop_dg);
  free (drop_tag);
  if (r < 0)
    {
      ob_strv_free (*untagged);
      ob_strv_free (*digests);
      *untagged = *digests = NULL;
    }
  return r;
}
