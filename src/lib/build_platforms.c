/* build_platforms: one Dockerfile for several platforms.  Each platform is
 * an ordinary single-platform build (ob_build_run with that --platform,
 * committed untagged); the OCI image index listing every manifest with its
 * platform is then written and tagged, replacing those untagged entries. */
#include "config.h"
#include <obuild/build.h>
#include <obuild/util.h>

#include <stdlib.h>
#include <string.h>

int
ob_build_platforms_parse (const char *list, char ***out, ob_error_t *err)
{
  cleanup_free char *copy = ob_xstrdup (list);
  char **v = NULL;
  char *save = NULL;
  *out = NULL;
  if (*list == '\0' || list[strlen (list) - 1] == ',' || *list == ',' || strstr (list, ",,"))
    return ob_error_make (err, OB_ERR_USAGE, 0, "invalid --platform \"%s\": expected os/arch[/variant][,...]", list);
  for (char *p = strtok_r (copy, ",", &save); p; p = strtok_r (NULL, ",", &save))
    {
      cleanup_free char *os = NULL, *arch = NULL, *variant = NULL;
      cleanup_free char *norm = NULL;
      if (ob_image_platform_parse (p, &os, &arch, &variant, err) < 0)
        {
          ob_strv_free (v);
          return -1;
        }
      norm = variant ? ob_xasprintf ("%s/%s/%s", os, arch, variant) : ob_xasprintf ("%s/%s", os, arch);
      for (size_t i = 0; v && v[i]; i++)
        if (strcmp (v[i], norm) == 0)
          {
            ob_error_make (err, OB_ERR_USAGE, 0, "--platform lists %s twice", norm);
            ob_strv_free (v);
            return -1;
          }
      ob_strv_add (&v, norm);
    }
  *out = v;
  return 0;
}

/* The platform object of an index entry: the image config's (what the
 * image really is, e.g. a final stage FROM --platform=$BUILDPLATFORM). */
static int
manifest_platform (struct ob_layout *l, const struct ob_descriptor *md, json_t **out, ob_error_t *err)
{
  cleanup_free char *mdata = NULL, *cdata = NULL;
  struct ob_manifest *m = NULL;
  json_t *cfg = NULL, *p;
  size_t mlen, clen;
  const char *keys[] = { "architecture", "os", "variant", "os.version" };
  int r = -1;
  if (ob_layout_blob_read_desc (l, md, &mdata, &mlen, err) < 0 || ob_image_manifest_parse (mdata, mlen, &m, err) < 0
      || ob_layout_blob_read_desc (l, &m->config, &cdata, &clen, err) < 0
      || ob_image_config_parse (cdata, clen, &cfg, err) < 0)
    goto out;
  p = json_object ();
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    {
      json_t *v = json_object_get (cfg, keys[i]);
      if (json_is_string (v) && *json_string_value (v))
        json_object_set (p, keys[i], v);
    }
  *out = p;
  r = 0;
out:
  json_decref (cfg);
  ob_manifest_free (m);
  return r;
}

/* Copy the index and every image it lists into the --output layout. */
static int
write_output (const struct ob_build_opts *o, const struct ob_descriptor *idx, const struct ob_descriptor *mans,
              size_t n, ob_error_t *err)
{
  struct ob_layout *out = NULL, *st = o->store->oci;
  struct ob_txn *t = NULL;
  int r;
  if (ob_layout_open (o->output_dir, true, &out, err) < 0)
    return ob_error_wrap (err, "--output");
  /* stage inside the layout: same filesystem, and writable if it is */
  r = ob_txn_begin (out, o->output_dir, &t, err);
  for (size_t i = 0; r == 0 && i < n; i++)
    {
      cleanup_free char *mdata = NULL;
      struct ob_manifest *m = NULL;
      size_t mlen;
      r = ob_layout_blob_read_desc (st, &mans[i], &mdata, &mlen, err);
      if (r == 0)
        r = ob_image_manifest_parse (mdata, mlen, &m, err);
      if (r == 0)
        r = ob_txn_blob_link_from (t, st, mans[i].digest, err);
      if (r == 0)
        r = ob_txn_blob_link_from (t, st, m->config.digest, err);
      for (size_t k = 0; r == 0 && k < m->n_layers; k++)
        r = ob_txn_blob_link_from (t, st, m->layers[k].digest, err);
      ob_manifest_free (m);
    }
  if (r == 0)
    r = ob_txn_blob_link_from (t, st, idx->digest, err);
  if (r == 0)
    r = ob_txn_commit (t, idx, o->tags, err);
  ob_txn_free (t);
  ob_layout_close (out);
  if (r < 0)
    return ob_error_wrap (err, "--output `%s`", o->output_dir);
  return 0;
}

static void
plog (const struct ob_build_opts *o, const char *platform)
{
  if (o->log)
    {
      cleanup_free char *line = ob_xasprintf ("--- platform %s", platform);
      o->log (o->log_data, line);
    }
}

int
ob_build_run_platforms (const struct ob_build_opts *o, char *const *platforms, struct ob_build_result *res,
                        ob_error_t *err)
{
  size_t n = 0;
  struct ob_descriptor *mans;
  cleanup_strv char **digests = NULL;
  struct ob_strset seen_warnings = { 0 };
  json_t *index = NULL, *list;
  cleanup_free char *text = NULL;
  struct ob_txn *t = NULL;
  struct ob_descriptor idx = { .media_type = (char *) OB_MT_OCI_INDEX };
  int r = -1;

  memset (res, 0, sizeof *res);
  while (platforms[n])
    n++;
  /* each platform's build would replace the entries the one before
   * exported: refused rather than half done */
  if (o->cache_to)
    return ob_error_make (err, OB_ERR_USAGE, 0,
                          "--cache-to with several platforms is not supported: build each --platform with its own --cache-to");
  mans = ob_xmalloc0 (sizeof *mans * (n ? n : 1));
  index = json_object ();
  list = json_array ();
  json_object_set_new (index, "schemaVersion", json_integer (2));
  json_object_set_new (index, "mediaType", json_string (OB_MT_OCI_INDEX));
  json_object_set_new (index, "manifests", list);
  for (size_t i = 0; i < n; i++)
    {
      struct ob_build_opts po = *o;
      struct ob_build_result pr;
      json_t *d, *plat = NULL;
      po.source.registry.platform = platforms[i];
      po.tags = NULL;         /* the index gets them */
      po.output_dir = NULL;   /* written with the index */
      plog (o, platforms[i]);
      if (ob_build_run (&po, &pr, err) < 0)
        {
          ob_error_wrap (err, "platform %s", platforms[i]);
          goto out;
        }
      mans[i].media_type = (char *) OB_MT_OCI_MANIFEST;
      strcpy (mans[i].digest, pr.manifest_digest);
      mans[i].size = pr.manifest_size;
      ob_strv_add (&digests, pr.manifest_digest);
      /* the first platform's config stands for the result, as its digest */
      if (i == 0)
        strcpy (res->config_digest, pr.config_digest);
      {
        /* each warning once, whichever platforms gave it (a set: a
         * Dockerfile can make 100,000) */
        cleanup_strv char **fresh = NULL;
        size_t n_fresh = 0;
        for (size_t k = 0; pr.warnings && pr.warnings[k]; k++)
          if (!ob_strset_has (&seen_warnings, pr.warnings[k]))
            {
              ob_strset_add (&seen_warnings, pr.warnings[k]);
              ob_strv_push (&fresh, &n_fresh, ob_xstrdup (pr.warnings[k]));
            }
        if (fresh)
          ob_strv_take_all (&res->warnings, steal_pointer (&fresh));
      }
      ob_build_result_clear (&pr);
      if (manifest_platform (o->store->oci, &mans[i], &plat, err) < 0)
        {
          ob_error_wrap (err, "platform %s", platforms[i]);
          goto out;
        }
      d = ob_descriptor_to_json (&mans[i]);
      json_object_set_new (d, "platform", plat);
      json_array_append_new (list, d);
    }
  text = ob_json_canonical (index);
  idx.size = strlen (text);
  if (ob_txn_begin (o->store->oci, o->store->tmp, &t, err) < 0
      || ob_txn_blob_put (t, text, strlen (text), idx.digest, err) < 0
      || ob_txn_commit_replacing (t, &idx, o->tags, digests, err) < 0)
    goto out;
  if (o->output_dir && write_output (o, &idx, mans, n, err) < 0)
    goto out;
  strcpy (res->manifest_digest, idx.digest);
  res->manifest_size = idx.size;
  r = 0;
out:
  if (r < 0 && digests)
    {
      /* a failed build leaves the store's tags as they were: the platforms
       * built so far go (their blobs at the next prune) */
      ob_error_t e2 = NULL;
      ob_layout_drop_untagged (o->store->oci, digests, &e2);
      ob_error_free (&e2);
    }
  if (r < 0)
    ob_build_result_clear (res);
  ob_txn_free (t);
  json_decref (index);
  free (mans);
  ob_strset_free (&seen_warnings);
  return r;
}
