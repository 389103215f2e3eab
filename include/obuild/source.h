/* source: where FROM (and COPY --from=<image>) can point, and getting that
 * image into the store.
 *
 *   a tag or manifest digest of the store    used as it is
 *   oci:DIR[:TAG]                            an OCI image layout
 *   oci-archive:FILE[:TAG]                   a tar of an OCI image layout
 *   docker-archive:FILE[:TAG]                what `docker save` writes
 *   anything else                            a registry reference, pulled
 *                                            by the pull policy
 *
 * Every blob taken from outside is verified (digest, size, and each layer's
 * uncompressed digest against the config's diff_id) before use. */
#ifndef OBUILD_SOURCE_H
#define OBUILD_SOURCE_H

#include <obuild/error.h>
#include <obuild/image.h>
#include <obuild/registry.h>
#include <obuild/store.h>

enum ob_pull_policy
{
  OB_PULL_MISSING, /* default: pull when the store does not have it */
  OB_PULL_ALWAYS,
  OB_PULL_NEVER,
};

int ob_pull_policy_parse (const char *s, enum ob_pull_policy *out, ob_error_t *err);

struct ob_source_opts
{
  enum ob_pull_policy pull;
  struct ob_registry_opts registry; /* init with ob_registry_opts_init */
  /* or NULL; else a gzip layer that must be checked against its diff_id
   * is checked while it is unpacked into this store's layers (for a build
   * whose RUN steps need them: one decompression instead of two) */
  struct ob_store *unpack_into;
};

struct ob_source
{
  struct ob_descriptor manifest; /* the image manifest (platform chosen) */
  char *name;   /* what it is called: the store tag, or the canonical
                   registry reference, for the base.name annotation */
  bool pulled;  /* fetched from a registry (and tagged in the store) */
};

/* Resolve ref.  Blobs from layouts and archives are staged in txn (they
 * become part of the store with the build's result); registry pulls are
 * committed to the store at once under their canonical name, as `obuild
 * pull` does.  After success every blob of the image is readable through
 * ob_txn_blob_open (txn).  Errors: OB_ERR_IMAGE (not found, invalid, digest
 * mismatch), OB_ERR_REGISTRY. */
int ob_source_resolve (struct ob_store *store, struct ob_txn *txn, const char *ref,
                       const struct ob_source_opts *opts, struct ob_source *out, ob_error_t *err);
void ob_source_clear (struct ob_source *s);

/* One image of an archive file (docker: a docker-archive, else an
 * oci-archive), selected by tag (a RepoTag, or a ref.name or manifest
 * digest of the layout; NULL when the archive holds one image), staged in
 * txn and verified as ob_source_resolve does (obuild load).  An oci-archive
 * entry that is an index is kept whole: out->manifest is the index, every
 * image it lists staged and verified (one the archive lacks: OB_ERR_IMAGE). */
int ob_source_archive (struct ob_store *store, struct ob_txn *txn, const char *file, bool docker,
                       const char *tag, struct ob_source *out, ob_error_t *err);

/* Pull ref from its registry into the store and tag it with its canonical
 * name (and, when given, also `tag`). */
int ob_source_pull (struct ob_store *store, const char *ref, const struct ob_source_opts *opts,
                    struct ob_source *out, ob_error_t *err);

#endif
