/* tree: an in-memory view of an image's filesystem metadata (no file
 * contents), built from the tar headers of its layers with whiteouts
 * applied.  The build uses it to resolve destination paths through the
 * image's symlinks (e.g. /bin -> usr/bin) and to give directories it must
 * create in a new layer the metadata they already have in the image, without
 * unpacking the image. */
#ifndef OBUILD_TREE_H
#define OBUILD_TREE_H

#include <obuild/error.h>
#include <obuild/layer.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct ob_tree;

struct ob_tree_stat
{
  mode_t mode; /* type and permission bits */
  uid_t uid;
  gid_t gid;
  int64_t mtime;
  int64_t size;
  const char *link; /* symlink target, or NULL */
};

struct ob_tree *ob_tree_new (void);
void ob_tree_free (struct ob_tree *t);

/* Apply one layer (a tar stream, any compression) read from fd. */
int ob_tree_add_layer (struct ob_tree *t, int fd, ob_error_t *err);

/* Like ob_tree_add_layer, through a per-layer index file kept in
 * index_dir/<diff_id hex>: written the first time a layer is read, used
 * instead of decompressing the layer afterwards.  A damaged index is
 * ignored (the layer is read again). */
int ob_tree_add_layer_indexed (struct ob_tree *t, const char *index_dir, const char *diff_id,
                               int fd, ob_error_t *err);

/* A layer's index made while the layer is written or unpacked (pass
 * ob_tree_index_note and the index as its ob_layer_entry_fn), so that
 * ob_tree_add_layer_indexed never has to decompress it; saved under
 * index_dir/<diff_id hex> unless there is one (best effort: an index that
 * cannot be written is made again from the layer when needed). */
struct ob_tree_index;
struct ob_tree_index *ob_tree_index_new (void);
void ob_tree_index_note (void *index, const struct ob_layer_entry_info *e);
void ob_tree_index_save (struct ob_tree_index *x, const char *index_dir, const char *diff_id);
/* Apply the layer whose entries x noted, as if added by
 * ob_tree_add_layer_indexed: a step's new layer updates its stage's tree
 * instead of the tree being built again from every layer. */
void ob_tree_add_index (struct ob_tree *t, const struct ob_tree_index *x);
void ob_tree_index_free (struct ob_tree_index *x);

/* Look up an absolute path without following symlinks in it.  NULL when
 * absent. */
const struct ob_tree_stat *ob_tree_lookup (struct ob_tree *t, const char *path);

/* Call fn for each child name of the directory `path` (absolute).  Returns
 * the number of children, or -1 when path is not a directory of the tree. */
long ob_tree_children (struct ob_tree *t, const char *path,
                       void (*fn) (void *data, const char *name), void *data);

/* Resolve an absolute path the way a process chrooted in the image would:
 * symlinks in intermediate components are followed (staying inside the
 * root; ".." never goes above "/"), and so is the last component when
 * follow_last is set.  Components that do not exist are kept as written.
 * Returns a clean absolute path without trailing "/" ("/" for the root). */
char *ob_tree_resolve (struct ob_tree *t, const char *path, bool follow_last);

#endif
