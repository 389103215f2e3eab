/* snapshot: turn a layer's upper directory (overlay upper, or a fresh
 * directory COPY wrote into) into an ordered list of changes.  Knows nothing
 * about tar or compression. */
#ifndef OBUILD_SNAPSHOT_H
#define OBUILD_SNAPSHOT_H

#include <obuild/error.h>

#include <stddef.h>

enum ob_change_kind
{
  OB_CHANGE_ENTRY,    /* file, dir, symlink, fifo, device present in upper */
  OB_CHANGE_WHITEOUT, /* path was deleted (overlay: 0/0 char device) */
  OB_CHANGE_OPAQUE,   /* directory path replaced: hide lower contents */
};

struct ob_change
{
  char *path; /* relative to the upper root, no leading "/" or "./" */
  enum ob_change_kind kind;
};

struct ob_changes
{
  struct ob_change *items; /* sorted as the tar will be (see below) */
  size_t n;
};

/* The longest path (bytes, relative to the root) a layer entry may have:
 * obuild opens every entry by its path below a directory.  A deeper tree
 * in an image is OB_ERR_IMAGE, one left by a step OB_ERR_STEP; walking one
 * needs at most OB_LAYER_PATH_MAX / 2 directories open at once. */
#define OB_LAYER_PATH_MAX 4095
/* The error for path, longer than OB_LAYER_PATH_MAX (shown cut short). */
int ob_layer_path_too_long (const char *path, enum ob_error_kind kind, ob_error_t *err);

/* Walk upperfd recursively.  Order: byte-wise by path components, a
 * directory before its contents, and within a directory an OPAQUE marker
 * before the entries.  Overlay whiteouts (character device 0:0, or the
 * xattr user.overlay.whiteout / trusted.overlay.whiteout) become WHITEOUT;
 * directories with user.overlay.opaque="y" or trusted.overlay.opaque="y"
 * produce an ENTRY for the directory followed by an OPAQUE for it.
 * Errors are OB_ERR_STORE naming the path; a path longer than
 * OB_LAYER_PATH_MAX is OB_ERR_STEP. */
int ob_snapshot_scan (int upperfd, struct ob_changes **out, ob_error_t *err);
void ob_changes_free (struct ob_changes *c);

#endif
