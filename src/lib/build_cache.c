/* build: --cache-to and --cache-from.  The cache entries of a build travel
 * as an OCI artifact: a manifest whose config blob is the entries (JSON,
 * media type application/vnd.obuild.cache.config.v1+json) and whose layers
 * are the layer blobs they name — in an OCI layout directory or a registry
 * repository, so CI runners share a cache through what they already have. */
#include "config.h"
#include "build_priv.h"
#include <obuild/registry.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MT_CACHE_CONFIG "application/vnd.obuild.cache.config.v1+json"

/* "oci:DIR[:TAG]", or an existing/absolute/relative directory path, is a
 * layout; anything else a registry reference. */
static bool
layout_ref (const char *ref, char **dir, char **tag)
{
  struct stat st;
  if (ob_str_has_prefix (ref, "oci:"))
    {
      const char *p = ref + 4;
      const char *slash = strrchr (p, '/');
      const char *colon = strchr (slash ? slash : p, ':');
      *dir = colon ? ob_xstrndup (p, colon - p) : ob_xstrdup (p);
      *tag = ob_xstrdup (colon ? colon + 1 : "cache");
      return true;
    }
  if (ref[0] == '/' || ob_str_has_prefix (ref, "./") || ob_str_has_prefix (ref, "../")
      || (stat (ref, &st) == 0 && S_ISDIR (st.st_mode)))
    {
      *dir = ob_xstrdup (ref);
      *tag = ob_xstrdup ("cache");
      return true;
    }
  return false;
}

static int
read_manifest_config (struct ob_txn *t, const char *mdigest, struct ob_manifest **m, char **cfg, size_t *clen,
                      ob_error_t *err)
{
  cleanup_free char *mdata = NULL;
  cleanup_close int fd = -1;
  cleanup_close int cfd = -1;
  size_t mlen;
  if (ob_txn_blob_open (t, mdigest, &fd, err) < 0 || ob_read_fd (fd, &mdata, &mlen, err) < 0
      || ob_image_manifest_parse (mdata, mlen, m, err) < 0)
    return -1;
  if (strcmp ((*m)->config.media_type, MT_CACHE_CONFIG) != 0)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "not an obuild cache (config media type %s)", (*m)->config.media_type);
  if (ob_txn_blob_open (t, (*m)->config.digest, &cfd, err) < 0 || ob_read_fd (cfd, cfg, clen, err) < 0)
    return -1;
  {
    char got[72];
    ob_sha256_digest (*cfg, *clen, got);
    if (strcmp (got, (*m)->config.digest) != 0)
      return ob_error_make (err, OB_ERR_IMAGE, 0, "cache config: content has digest %s", got);
  }
  return 0;
}

int
ob_build_cache_import (struct build *b, const char *ref, ob_error_t *err)
{
  cleanup_free char *dir = NULL;
  cleanup_free char *tag = NULL;
  cleanup_free char *cfg = NULL;
  struct ob_manifest *m = NULL;
  struct ob_descriptor md = { 0 };
  size_t clen;
  int r = -1;

  if (layout_ref (ref, &dir, &tag))
    {
      struct ob_layout *l = NULL;
      if (ob_layout_open (dir, false, &l, err) < 0)
        goto out;
      if (ob_layout_resolve (l, tag, &md, err) < 0 || ob_txn_blob_copy_from (b->txn, l, md.digest, err) < 0)
        {
          ob_layout_close (l);
          goto out;
        }
      {
        cleanup_free char *mdata = NULL;
        size_t mlen;
        if (ob_layout_blob_read (l, md.digest, &mdata, &mlen, err) < 0 || ob_image_manifest_parse (mdata, mlen, &m, err) < 0
            || ob_txn_blob_copy_from (b->txn, l, m->config.digest, err) < 0)
          {
            ob_layout_close (l);
            goto out;
          }
        for (size_t i = 0; i < m->n_layers; i++)
          if (ob_txn_blob_copy_from (b->txn, l, m->layers[i].digest, err) < 0)
            {
              ob_layout_close (l);
              goto out;
            }
        ob_manifest_free (m);
        m = NULL;
      }
      ob_layout_close (l);
    }
  else
    {
      struct ob_ref *rr = NULL;
      struct ob_registry *reg = NULL;
      if (ob_ref_parse (ref, &rr, err) < 0)
        goto out;
      if (ob_registry_new (&b->o->source.registry, &reg, err) < 0 || ob_registry_pull (reg, rr, b->txn, &md, err) < 0)
        {
          ob_registry_free (reg);
          ob_ref_free (rr);
          goto out;
        }
      ob_registry_free (reg);
      ob_ref_free (rr);
    }
  if (read_manifest_config (b->txn, md.digest, &m, &cfg, &clen, err) < 0)
    goto out;
  if (ob_cache_import (b->cache, cfg, clen, err) < 0)
    goto out;
  r = 0;
out:
  if (r < 0)
    ob_error_wrap (err, "--cache-from %s", ref);
  ob_manifest_free (m);
  ob_descriptor_clear (&md);
  return r;
}

int
ob_build_cache_export (struct build *b, const char *ref, ob_error_t *err)
{
  cleanup_free char *entries = ob_cache_export (b->cache, b->cache_keys);
  cleanup_free char *dir = NULL;
  cleanup_free char *tag = NULL;
  cleanup_free char *mtext = NULL;
  json_t *ej = json_loads (entries, 0, NULL);
  struct ob_descriptor cfg = { (char *) MT_CACHE_CONFIG, "", 0 };
  struct ob_descriptor *layers = NULL;
  struct ob_descriptor md = { (char *) OB_MT_OCI_MANIFEST, "", 0 };
  const char *key;
  json_t *v, *m;
  size_t n = 0;
  struct ob_layout *l = NULL;
  struct ob_txn *t = NULL;
  bool layout = layout_ref (ref, &dir, &tag);
  int r = -1;

  layers = ob_xmalloc0 ((json_object_size (ej) + 1) * sizeof *layers);
  json_object_foreach (ej, key, v)
    {
      const char *dg = json_string_value (json_object_get (v, "digest"));
      bool dup = false;
      if (!dg)
        continue;
      for (size_t i = 0; i < n; i++)
        dup = dup || strcmp (layers[i].digest, dg) == 0;
      if (dup)
        continue;
      layers[n].media_type = (char *) json_string_value (json_object_get (v, "mediaType"));
      snprintf (layers[n].digest, sizeof layers[n].digest, "%s", dg);
      layers[n].size = json_integer_value (json_object_get (v, "size"));
      n++;
    }
  cfg.size = strlen (entries);
  ob_sha256_digest (entries, strlen (entries), cfg.digest);
  m = ob_image_manifest_new (&cfg, layers, n, NULL);
  mtext = ob_json_canonical (m);
  json_decref (m);
  md.size = strlen (mtext);

  if (layout)
    {
      if (ob_layout_open (dir, true, &l, err) < 0 || ob_txn_begin (l, dir, &t, err) < 0)
        goto out;
      for (size_t i = 0; i < n; i++)
        if (ob_txn_blob_copy_from (t, b->o->store->oci, layers[i].digest, err) < 0)
          goto out;
      if (ob_txn_blob_put (t, entries, strlen (entries), cfg.digest, err) < 0
          || ob_txn_blob_put (t, mtext, strlen (mtext), md.digest, err) < 0)
        goto out;
      {
        char *tags[2] = { tag, NULL };
        if (ob_txn_commit (t, &md, tags, err) < 0)
          goto out;
      }
    }
  else
    {
      struct ob_ref *rr = NULL;
      struct ob_registry *reg = NULL;
      char pushed[72];
      int pr;
      /* the two small blobs go into the store (no tag) for the push to read */
      if (ob_txn_begin (b->o->store->oci, b->o->store->tmp, &t, err) < 0
          || ob_txn_blob_put (t, entries, strlen (entries), cfg.digest, err) < 0
          || ob_txn_blob_put (t, mtext, strlen (mtext), md.digest, err) < 0 || ob_txn_publish (t, err) < 0)
        goto out;
      if (ob_ref_parse (ref, &rr, err) < 0)
        goto out;
      pr = ob_registry_new (&b->o->source.registry, &reg, err);
      if (pr == 0)
        pr = ob_registry_push (reg, b->o->store->oci, &md, rr, pushed, err);
      ob_registry_free (reg);
      ob_ref_free (rr);
      if (pr < 0)
        goto out;
    }
  r = 0;
out:
  if (r < 0)
    ob_error_wrap (err, "--cache-to %s", ref);
  ob_txn_free (t);
  ob_layout_close (l);
  free (layers);
  json_decref (ej);
  return r;
}
