/* imagecmd: the image commands people know from docker and podman —
 * inspect, history, tag, rmi (image_cmd.c) and save, load (archive_save.c)
 * — on obuild's store.
 *
 * IMAGE is a tag of the store (normalised: "name" means name:latest; a
 * pulled image also by its canonical registry name), a manifest digest
 * "sha256:<64 hex>", or a unique prefix of at least 12 hex digits of one
 * (with or without "sha256:").  An image not in the store is OB_ERR_IMAGE
 * `image `X` not found in the store`. */
#ifndef OBUILD_IMAGECMD_H
#define OBUILD_IMAGECMD_H

#include <obuild/error.h>
#include <obuild/store.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The index entry IMAGE names: its digest (what index.json points at: a
 * manifest, or an index for a multi-platform image), and the tag used
 * (NULL when named by digest; caller frees). */
int ob_imagecmd_find (struct ob_layout *l, const char *image, char digest[72], char **tag, ob_error_t *err);

/* inspect and history: the platform whose manifest a multi-platform
 * image (an index) shows, "os/arch[/variant]"; NULL (the default): this
 * machine's.  The string must outlive the calls. */
void ob_imagecmd_set_platform (const char *platform);

/* `obuild inspect`: one JSON object (Name, Digest, MediaType, RepoTags, Id,
 * Created, Architecture, Os, Config, RootFS, Layers, Size, History, ...). */
int ob_imagecmd_inspect (struct ob_layout *l, const char *image, json_t **out, ob_error_t *err);

/* The manifest (as chosen for this platform) or the config blob of IMAGE,
 * byte for byte as stored (its digest verified). */
enum ob_imagecmd_blob
{
  OB_IMAGECMD_MANIFEST,
  OB_IMAGECMD_CONFIG,
};
int ob_imagecmd_blob (struct ob_layout *l, const char *image, enum ob_imagecmd_blob which, char **data,
                      size_t *len, ob_error_t *err);

/* `obuild history`: the config's history, newest first.  Entries that made
 * a layer get that layer's blob size; empty_layer ones 0.  id is the image
 * id (config digest) for the newest entry, NULL for the others. */
struct ob_history_row
{
  char *id;
  char *created; /* RFC 3339 as in the config, or NULL */
  char *created_by;
  char *comment;
  int64_t size;
  bool empty_layer;
};
int ob_imagecmd_history (struct ob_layout *l, const char *image, struct ob_history_row **rows, size_t *n,
                         ob_error_t *err);
void ob_history_rows_free (struct ob_history_row *rows, size_t n);

/* `obuild tag`: point each of tags (user input, normalised here; an invalid
 * one is OB_ERR_USAGE before anything changes) at the index entry src
 * names.  A tag already in use is moved, as docker tag does. */
int ob_imagecmd_tag (struct ob_layout *l, const char *src, char *const *tags, ob_error_t *err);

/* `obuild rmi`: remove the index entries the images name (a tag: that tag;
 * a digest: every entry with it), all under one lock; nothing changes when
 * one is not found.  untagged receives what was removed ("name:tag" or the
 * digest of an untagged entry), digests the entries' digests (both NULL
 * terminated; caller frees).  The blobs are left to ob_prune with roots. */
int ob_imagecmd_untag (struct ob_layout *l, char *const *images, char ***untagged, char ***digests,
                       ob_error_t *err);

/* ---- archives (archive_save.c) ---- */
enum ob_archive_format
{
  OB_ARCHIVE_OCI,    /* oci-archive: a tar of an OCI image layout */
  OB_ARCHIVE_DOCKER, /* docker-archive: what `docker save` writes */
};
int ob_archive_format_parse (const char *s, enum ob_archive_format *out, ob_error_t *err);

struct ob_archive_save_opts
{
  enum ob_archive_format format;
  /* "os/arch[/variant]": of a multi-platform image (an index) only that
   * platform's image is saved (OB_ERR_IMAGE when there is none; a
   * single-platform image must be of it).  NULL: an oci-archive holds the
   * index whole, with every image it lists; a docker-archive, which cannot
   * hold an index, this machine's platform (OB_ERR_USAGE when the index
   * has none). */
  const char *platform;
};

/* `obuild save`: write images (n of them) to file, atomically (a temporary
 * file renamed at the end; nothing is left on failure).  Blobs are checked
 * against their digests while copied; docker-archive layers are written
 * uncompressed and checked against the config's diff_ids.  An index
 * listing a manifest (or a manifest a blob) the store lacks is OB_ERR_IMAGE.
 * chosen receives, for each multi-platform image of which one platform was
 * saved without o->platform, two strings: the image as named, then
 * the platform (NULL-terminated; caller frees). */
int ob_archive_save (struct ob_store *s, char *const *images, size_t n, const struct ob_archive_save_opts *o,
                     const char *file, char ***chosen, ob_error_t *err);

/* The most images one archive may list for ob_archive_load. */
#define OB_ARCHIVE_MAX_IMAGES 1000
/* ... and the most tags (RepoTags of a docker-archive) in all. */
#define OB_ARCHIVE_MAX_TAGS 10000

/* `obuild load`: every image of a docker-archive or oci-archive (told apart
 * by content) into the store, with its tags.  Everything is verified before
 * anything is tagged; a bad archive is OB_ERR_IMAGE and leaves the store's
 * index unchanged.  loaded receives one line per image ("name:tag" for each
 * tag, or the manifest digest of an untagged one; caller frees). */
int ob_archive_load (struct ob_store *s, const char *file, char ***loaded, ob_error_t *err);

#endif
