/* build: the final image — --squash, and the config, manifest and tags
 * written for the target stage.  Called by the scheduler (build.c); uses
 * the shared state (build_state.c). */
#include "config.h"
#include "build_priv.h"
#include <obuild/snapshot.h>
#include <obuild/util.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* ---- --squash ---- */

int
ob_build_squash (struct build *b, struct stage *s, ob_error_t *err)
{
  cleanup_free char *dir = NULL;
  cleanup_close int dfd = -1;
  json_t *hist = json_object_get (s->config, "history");
  json_t *ids = json_object_get (json_object_get (s->config, "rootfs"), "diff_ids");
  size_t n_new = s->n_layers - s->n_base_layers, nonempty = 0, i;
  json_t *h;
  cleanup_free char *created_by = NULL;

  if (n_new <= 1)
    return 0;
  dir = ob_build_scratch_dir (b, "squash", err);
  if (dir == NULL)
    return -1;
  dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", dir);
  /* the new layers, one over the other, as one overlay-style change */
  for (i = s->n_base_layers; i < s->n_layers; i++)
    {
      cleanup_close int fd = -1;
      if (ob_txn_blob_open (b->txn, s->layers[i].digest, &fd, err) < 0 || ob_layer_unpack_overlay (fd, dfd, NULL, NULL, err) < 0)
        return ob_error_wrap (err, "--squash: layer %s", s->layers[i].digest);
    }
  for (i = s->n_base_layers; i < s->n_layers; i++)
    {
      ob_descriptor_clear (&s->layers[i]);
      free (s->layer_dirs[i]);
      s->layer_dirs[i] = NULL;
    }
  s->n_layers = s->n_base_layers;
  while (json_array_size (ids) > s->n_base_layers)
    json_array_remove (ids, json_array_size (ids) - 1);
  /* the squashed steps keep their history, without layers of their own */
  json_array_foreach (hist, i, h)
    if (!json_is_true (json_object_get (h, "empty_layer")) && ++nonempty > s->n_base_layers)
      json_object_set_new (h, "empty_layer", json_true ());
  created_by = ob_xasprintf ("obuild build --squash (%zu layers)", n_new);
  ob_build_stage_tree_drop (s);
  return ob_build_commit_layer (b, s, dfd, NULL, created_by, false, err);
}

/* ---- the final image ---- */

/* The image's `created`: the build's time, except for a stage whose every
 * filesystem step came from the cache.  That one keeps the time of its cached
 * steps (as `docker build` keeps the image of a fully cached build), so a
 * rebuild that changes nothing, here or on a runner sharing the cache, gives
 * the same image; this build's config-only steps get that time too. */
static const char *
stage_created (struct build *b, struct stage *s)
{
  json_t *hist = json_object_get (s->config, "history");
  if (b->o->have_epoch || s->n_misses > 0 || s->hit_created == NULL)
    return b->created;
  for (size_t i = s->n_base_history; i < json_array_size (hist); i++)
    {
      json_t *h = json_array_get (hist, i);
      const char *c = json_string_value (json_object_get (h, "created"));
      if (c && strcmp (c, b->created) == 0)
        json_object_set_new (h, "created", json_string (s->hit_created));
    }
  return s->hit_created;
}

int
ob_build_write_image (struct build *b, struct stage *s, struct ob_build_result *res, ob_error_t *err)
{
  json_t *rt = ob_image_config_runtime (s->config);
  cleanup_free char *cfg = NULL;
  cleanup_free char *man = NULL;
  struct ob_descriptor cd, md;
  json_t *annotations = json_object (), *manifest;

  for (size_t i = 0; b->o->labels && b->o->labels[i]; i++)
    {
      const char *eq = strchr (b->o->labels[i], '=');
      cleanup_free char *k = eq ? ob_xstrndup (b->o->labels[i], eq - b->o->labels[i]) : ob_xstrdup (b->o->labels[i]);
      json_t *labels = json_object_get (rt, "Labels");
      if (!json_is_object (labels))
        {
          labels = json_object ();
          json_object_set_new (rt, "Labels", labels);
        }
      json_object_set_new (labels, k, json_string (eq ? eq + 1 : ""));
    }
  for (size_t i = 0; b->o->envs && b->o->envs[i]; i++)
    {
      cleanup_free char *k = ob_xstrndup (b->o->envs[i], strcspn (b->o->envs[i], "="));
      ob_build_env_set (s, k, b->o->envs[i] + strlen (k) + 1);
    }
  if (b->o->squash && ob_build_squash (b, s, err) < 0)
    {
      json_decref (annotations);
      return -1;
    }
  ob_image_config_set_created (s->config, stage_created (b, s));
  if (ob_image_config_check (s->config, err) < 0)
    {
      json_decref (annotations);
      return -1;
    }
  cfg = ob_json_canonical (s->config);
  cd.media_type = (char *) OB_MT_OCI_CONFIG;
  cd.size = strlen (cfg);
  if (ob_txn_blob_put (b->txn, cfg, strlen (cfg), cd.digest, err) < 0)
    {
      json_decref (annotations);
      return -1;
    }
  if (s->base_name && s->base_digest)
    {
      json_object_set_new (annotations, "org.opencontainers.image.base.name", json_string (s->base_name));
      json_object_set_new (annotations, "org.opencontainers.image.base.digest", json_string (s->base_digest));
    }
  if (b->o->have_epoch)
    json_object_set_new (annotations, "org.opencontainers.image.created", json_string (b->created));
  for (size_t i = 0; b->o->annotations && b->o->annotations[i]; i++)
    {
      cleanup_free char *k = ob_xstrndup (b->o->annotations[i], strcspn (b->o->annotations[i], "="));
      json_object_set_new (annotations, k, json_string (b->o->annotations[i] + strlen (k) + 1));
    }
  manifest = ob_image_manifest_new (&cd, s->layers, s->n_layers, annotations);
  json_decref (annotations);
  man = ob_json_canonical (manifest);
  json_decref (manifest);
  md.media_type = (char *) OB_MT_OCI_MANIFEST;
  md.size = strlen (man);
  if (ob_txn_blob_put (b->txn, man, strlen (man), md.digest, err) < 0)
    return -1;
  strcpy (res->manifest_digest, md.digest);
  res->manifest_size = md.size;
  strcpy (res->config_digest, cd.digest);
  if (ob_txn_commit (b->txn, &md, b->o->tags, err) < 0)
    return -1;

  if (b->o->output_dir)
    {
      struct ob_layout *out = NULL;
      struct ob_txn *t2 = NULL;
      cleanup_free char *parent = NULL;
      int r;
      if (ob_layout_open (b->o->output_dir, true, &out, err) < 0)
        return ob_error_wrap (err, "--output");
      /* stage inside the layout: same filesystem, and writable if it is */
      parent = ob_xstrdup (b->o->output_dir);
      if (ob_txn_begin (out, parent, &t2, err) < 0)
        {
          ob_layout_close (out);
          return ob_error_wrap (err, "--output");
        }
      r = ob_txn_blob_link_from (t2, b->o->store->oci, md.digest, err);
      if (r == 0)
        r = ob_txn_blob_link_from (t2, b->o->store->oci, cd.digest, err);
      for (size_t i = 0; r == 0 && i < s->n_layers; i++)
        r = ob_txn_blob_link_from (t2, b->o->store->oci, s->layers[i].digest, err);
      if (r == 0)
        r = ob_txn_commit (t2, &md, b->o->tags, err);
      ob_txn_free (t2);
      ob_layout_close (out);
      if (r < 0)
        return ob_error_wrap (err, "--output `%s`", b->o->output_dir);
    }
  return 0;
}


