/* store: OCI image layouts on disk — content-addressed blobs, index.json
 * with tags, locking — and obuild's own store, which is an OCI layout at
 * $OBUILD_ROOT/oci plus a scratch area $OBUILD_ROOT/tmp on the same
 * filesystem.
 *
 * Writes go through a transaction: new blobs are written into a private
 * staging directory and only moved into blobs/sha256/ (rename, EEXIST is
 * success) when the build succeeds; index.json is then rewritten under an
 * exclusive flock on the layout directory.  A failed or interrupted build
 * therefore leaves the layout exactly as it was. */
#ifndef OBUILD_STORE_H
#define OBUILD_STORE_H

#include <obuild/error.h>
#include <obuild/image.h>

#include <stdbool.h>
#include <stdint.h>

struct ob_layout; /* an OCI image layout directory */

/* Open the layout at path.  With create, make it (and oci-layout,
 * index.json, blobs/sha256) when missing.  Errors: OB_ERR_STORE for I/O,
 * OB_ERR_IMAGE for a directory that is not a valid layout. */
int ob_layout_open (const char *path, bool create, struct ob_layout **out, ob_error_t *err);
void ob_layout_close (struct ob_layout *l);
const char *ob_layout_path (const struct ob_layout *l);

/* Open a blob for reading (O_RDONLY fd).  OB_ERR_IMAGE when missing. */
int ob_layout_blob_open (struct ob_layout *l, const char *digest, int *fd, ob_error_t *err);
bool ob_layout_has_blob (struct ob_layout *l, const char *digest);
/* Read a small blob (manifest, config) fully and verify its digest. */
int ob_layout_blob_read (struct ob_layout *l, const char *digest, char **data, size_t *len,
                         ob_error_t *err);
/* The same for a JSON blob (manifest, index, config) named by a descriptor:
 * a size over OB_MAX_JSON_BLOB is refused before reading, and the blob
 * must have the size the descriptor says (OB_ERR_IMAGE). */
int ob_layout_blob_read_desc (struct ob_layout *l, const struct ob_descriptor *d, char **data,
                              size_t *len, ob_error_t *err);
/* Check a descriptor's size against an open blob (and, with json, against
 * OB_MAX_JSON_BLOB first): OB_ERR_IMAGE naming the digest on a mismatch. */
int ob_blob_check_size (int fd, const struct ob_descriptor *d, bool json, ob_error_t *err);

/* Find the manifest a tag (normalised "name:tag", or a bare "name" meaning
 * name:latest, or a full "sha256:..." manifest digest) points to.
 * Returns 0 and fills d; OB_ERR_IMAGE `image not found in NAME: TAG` when
 * there is none.  A tag pointing at an index is resolved to the entry for
 * the host platform (through nested indexes, OB_MAX_INDEX_DEPTH deep). */
int ob_layout_resolve (struct ob_layout *l, const char *ref, struct ob_descriptor *d,
                       ob_error_t *err);
/* The same for platform "os/arch[/variant]" (NULL: the host's): a tag
 * pointing at an index gives that platform's entry (OB_ERR_IMAGE `index
 * DIGEST has no image for OS/ARCH` when it has none). */
int ob_layout_resolve_platform (struct ob_layout *l, const char *ref, const char *platform,
                                struct ob_descriptor *d, ob_error_t *err);
/* Like ob_layout_resolve, but 0 (d empty) when ref is not there, 1 when
 * found: every other failure (a broken index.json, an index blob that is
 * not one) stays an error. */
int ob_layout_lookup (struct ob_layout *l, const char *ref, struct ob_descriptor *d,
                      ob_error_t *err);
/* The entry itself, an index not followed (obuild push sends a
 * multi-platform image whole). */
int ob_layout_resolve_entry (struct ob_layout *l, const char *ref, struct ob_descriptor *d, ob_error_t *err);
int ob_layout_lookup_platform (struct ob_layout *l, const char *ref, const char *platform,
                               struct ob_descriptor *d, ob_error_t *err);
/* Indexes listing indexes: followed this deep at most (OB_ERR_IMAGE beyond). */
#define OB_MAX_INDEX_DEPTH 8

/* List the index entries: tags[i] (NULL for untagged) and descriptors. */
struct ob_layout_entry
{
  char *tag;
  struct ob_descriptor desc;
};
int ob_layout_list (struct ob_layout *l, struct ob_layout_entry **out, size_t *n, ob_error_t *err);
void ob_layout_entries_free (struct ob_layout_entry *e, size_t n);

/* ---- transactions ---- */
struct ob_txn;

/* Begin writing to layout l; scratch_dir is a directory on the same
 * filesystem as the layout (its staging directory is created inside). */
int ob_txn_begin (struct ob_layout *l, const char *scratch_dir, struct ob_txn **out,
                  ob_error_t *err);
/* Open a new temporary blob file for writing in the staging area. */
int ob_txn_blob_create (struct ob_txn *t, int *fd, ob_error_t *err);
/* Name the blob last created with ob_txn_blob_create by its digest (closes
 * fd; the blob is synced when published).  The blob is readable through
 * ob_txn_blob_open at once. */
int ob_txn_blob_commit (struct ob_txn *t, int fd, const char *digest, ob_error_t *err);
/* Stage the file `path`, inside this transaction's scratch directory and
 * already checked to hold `digest`, by renaming it (no copy). */
int ob_txn_blob_take (struct ob_txn *t, const char *path, const char *digest, ob_error_t *err);
/* Store a small in-memory blob (manifest, config); fills its digest. */
int ob_txn_blob_put (struct ob_txn *t, const void *data, size_t len, char digest[72],
                     ob_error_t *err);
/* Copy a blob from another layout into this transaction (no-op when the
 * target already has it). */
int ob_txn_blob_copy_from (struct ob_txn *t, struct ob_layout *src, const char *digest,
                           ob_error_t *err);
/* Like ob_txn_blob_copy_from for a trusted source (our own store): a hard
 * link when both are on one file system, else a verified copy. */
int ob_txn_blob_link_from (struct ob_txn *t, struct ob_layout *src, const char *digest,
                           ob_error_t *err);
/* Is the blob in the layout itself (not only staged by this transaction)? */
bool ob_txn_blob_in_layout (struct ob_txn *t, const char *digest);
/* The digests this transaction has staged (NULL-terminated, to free). */
char **ob_txn_staged (struct ob_txn *t);
/* Take a blob that another process sharing this transaction's staging area
 * (a fork of this one: a stage built side by side, build_jobs.c) staged
 * there under its digest. */
int ob_txn_adopt (struct ob_txn *t, const char *digest, ob_error_t *err);
/* Open a blob staged in this transaction or already in the layout. */
int ob_txn_blob_open (struct ob_txn *t, const char *digest, int *fd, ob_error_t *err);
/* Scratch directory private to this transaction (removed at the end). */
const char *ob_txn_scratch (struct ob_txn *t);
/* Publish: move staged blobs into the layout, then point every tag (already
 * normalised; may be empty, then an untagged entry is added) at manifest. */
int ob_txn_commit (struct ob_txn *t, const struct ob_descriptor *manifest, char *const *tags,
                   ob_error_t *err);
/* ob_txn_commit of manifests[i] with tags[i], for each i in order, in one
 * write of index.json (obuild load: an archive's images). */
int ob_txn_commit_many (struct ob_txn *t, size_t n, const struct ob_descriptor *manifests,
                        char *const *const *tags, ob_error_t *err);
/* Like ob_txn_commit, and untagged entries for the digests in replaces
 * (NULL-terminated) go: the per-platform manifests a multi-platform
 * build committed untagged, now reached through the index. */
int ob_txn_commit_replacing (struct ob_txn *t, const struct ob_descriptor *manifest, char *const *tags,
                             char *const *replaces, ob_error_t *err);
/* Remove the untagged index entries for these digests (NULL-terminated):
 * a failed multi-platform build's platforms built so far. */
int ob_layout_drop_untagged (struct ob_layout *l, char *const *digests, ob_error_t *err);
/* Move the staged blobs into the layout without touching index.json
 * (blobs a push needs; unreferenced ones go at the next prune).  The
 * transaction stays usable. */
int ob_txn_publish (struct ob_txn *t, ob_error_t *err);
/* Abandon (after commit: just free).  Removes the staging area. */
void ob_txn_free (struct ob_txn *t);

/* ---- obuild's own store ---- */
/* The store root: $OBUILD_ROOT, else /var/lib/obuild for root, else
 * ${XDG_DATA_HOME:-$HOME/.local/share}/obuild.  Caller frees. */
char *ob_store_default_root (void);
struct ob_store
{
  char *root;
  char *tmp;     /* root/tmp */
  struct ob_layout *oci; /* root/oci */
  char *layers;  /* root/layers/<userns mode>: unpacked layers, see below */
  int gcfd;      /* root/gc.lock, held shared while the store is open */
};
int ob_store_open (const char *root, struct ob_store **out, ob_error_t *err);
void ob_store_close (struct ob_store *s);
/* Every obuild process with the store open holds root/gc.lock shared (a
 * build may reuse any blob it finds until it commits).  Returns true when
 * this one could make it exclusive, i.e. no other obuild process has the
 * store open: blob removal then needs no grace period. */
bool ob_store_gc_exclusive (struct ob_store *s);

/* Unpacked layers, used as overlayfs lower directories by RUN steps, live in
 * root/layers/<mode>/<hex of the diff_id> (one tree per user-namespace mode,
 * since owners on disk differ between them).  Set the mode before use. */
void ob_store_set_layer_mode (struct ob_store *s, const char *mode);
/* Path of the unpacked layer diff_id, unpacking the blob read from blob_fd
 * when it is missing (into a temporary directory, renamed when complete). */
int ob_store_layer_dir (struct ob_store *s, const char *diff_id, int blob_fd, char **path,
                        ob_error_t *err);
/* Check a gzip layer blob against its config's diff_id by unpacking it
 * (one decompression where checking, then unpacking for RUN, took two):
 * 0 when it matches and is unpacked; an OB_ERR_IMAGE error, nothing kept,
 * when it does not; 1 when it could not be checked this way (not gzip, or
 * already unpacked): then check it by reading it (ob_layer_diff_id). */
int ob_store_layer_dir_checked (struct ob_store *s, const char *diff_id, int blob_fd, ob_error_t *err);
/* Keep `dir` (a build step's finished upper directory) as the unpacked form
 * of diff_id, if the store has none yet; dir is moved or removed.
 * Unpacked layers are not synced: each is trusted in the boot that wrote it
 * (root/layers/<mode>/<hex>.boot) and unpacked again after a reboot. */
int ob_store_layer_adopt (struct ob_store *s, const char *diff_id, const char *dir,
                          ob_error_t *err);
/* This boot's id (/proc/sys/kernel/random/boot_id), or NULL if unknown. */
const char *ob_store_boot_id (void);

#endif
