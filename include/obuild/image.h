/* image: OCI image config, manifest and index documents (jansson), history,
 * platform, image references.  Pure in-memory: no I/O beyond buffers. */
#ifndef OBUILD_IMAGE_H
#define OBUILD_IMAGE_H

#include <obuild/error.h>

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OB_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define OB_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OB_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define OB_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OB_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define OB_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define OB_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define OB_ANNOT_REF_NAME "org.opencontainers.image.ref.name"

/* The largest manifest, index or config accepted (containerd's limit): a
 * descriptor claiming more is refused before anything is read. */
#define OB_MAX_JSON_BLOB (4 << 20)

struct ob_descriptor
{
  char *media_type;
  char digest[72];
  int64_t size;
};

struct ob_manifest
{
  struct ob_descriptor config;
  struct ob_descriptor *layers;
  size_t n_layers;
};

/* Canonical JSON: sorted keys, no whitespace.  Caller frees. */
char *ob_json_canonical (json_t *j);

/* The platform obuild runs on, in OCI terms ("amd64", "arm64", ...). */
const char *ob_image_host_arch (void);
const char *ob_image_host_variant (void); /* NULL when none */

/* Split a platform "os/arch[/variant]" (caller frees; *variant NULL when
 * none).  OB_ERR_USAGE `invalid platform "P": expected os/arch[/variant]`. */
int ob_image_platform_parse (const char *p, char **os, char **arch, char **variant, ob_error_t *err);

/* Is mt an image index's media type (OCI index, Docker manifest list)? */
bool ob_image_media_type_is_index (const char *mt);
/* "os/arch[/variant]" of an index entry's "platform" object, or
 * "no platform" when it has none.  Caller frees. */
char *ob_image_entry_platform (json_t *entry);

/* A fresh config for `FROM scratch`. */
json_t *ob_image_config_new (const char *os, const char *arch, const char *variant);
/* Parse and sanity-check a config blob (OB_ERR_IMAGE on failure). */
int ob_image_config_parse (const char *data, size_t len, json_t **out, ob_error_t *err);
/* config.config (the runtime part), created when missing. */
json_t *ob_image_config_runtime (json_t *cfg);
void ob_image_config_add_diff_id (json_t *cfg, const char *diff_id);
/* created may be NULL (omitted); comment may be NULL. */
void ob_image_config_add_history (json_t *cfg, const char *created, const char *created_by,
                                  const char *comment, bool empty_layer);
/* Set "created" of the config. */
void ob_image_config_set_created (json_t *cfg, const char *created);
/* Number of non-empty history entries must equal diff_ids: check it. */
int ob_image_config_check (json_t *cfg, ob_error_t *err);

/* RFC 3339 UTC timestamp for a unix time ("2024-01-02T03:04:05Z"). */
char *ob_image_timestamp (int64_t t);

json_t *ob_descriptor_to_json (const struct ob_descriptor *d);
int ob_descriptor_from_json (json_t *j, struct ob_descriptor *d, ob_error_t *err);
void ob_descriptor_clear (struct ob_descriptor *d);

/* Build an OCI manifest document.  annotations may be NULL. */
json_t *ob_image_manifest_new (const struct ob_descriptor *config,
                               const struct ob_descriptor *layers, size_t n_layers,
                               json_t *annotations);
/* Parse an OCI or Docker schema2 manifest (OB_ERR_IMAGE on failure; schema1
 * refused).  Every digest is validated; a config of more than
 * OB_MAX_JSON_BLOB bytes is refused. */
int ob_image_manifest_parse (const char *data, size_t len, struct ob_manifest **out,
                             ob_error_t *err);
void ob_manifest_free (struct ob_manifest *m);

/* Image references (Docker's grammar).  Validate and normalise a tag given
 * by the user for the local store: "name[:tag]" -> "name:tag" (":latest" added).
 * Names are lower-case path components with an optional registry host;
 * tags [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.  Errors: OB_ERR_USAGE
 * `invalid tag "X": reason`. */
int ob_image_ref_normalize (const char *in, char **out, ob_error_t *err);

/* Pieces of Docker's reference grammar (shared with the registry module):
 * a path component ([a-z0-9]+ with separators . _ __ -+), a registry host
 * (DNS labels or [ipv6], optional :port), a tag. */
bool ob_ref_valid_component (const char *s, size_t n);
bool ob_ref_valid_domain (const char *s, size_t n);
bool ob_ref_valid_tag (const char *t);

#endif
