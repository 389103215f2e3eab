/* statmap: what a walk of a root file system saw of each path — inode
 * number and change time — so that the next walk knows, without reading
 * anything, which entries nothing has touched since.  The copy snapshotter
 * and --isolation=container record one whenever the root is known to equal
 * the stage's tree; a step's change is then every entry whose inode or
 * ctime moved (ctime cannot be set back by a process, unlike mtime). */
#ifndef OBUILD_STATMAP_H
#define OBUILD_STATMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

struct ob_statmap;

struct ob_statmap *ob_statmap_new (void);
void ob_statmap_free (struct ob_statmap *m);

/* Record path (relative to the root, no leading "/") with st's inode and
 * ctime; a second put of the same path replaces the first. */
void ob_statmap_put (struct ob_statmap *m, const char *path, const struct stat *st);

/* 1 when path was recorded with st's inode and ctime, 0 when it was
 * recorded with others, -1 when it was not recorded. */
int ob_statmap_same (const struct ob_statmap *m, const char *path, const struct stat *st);

size_t ob_statmap_size (const struct ob_statmap *m);

#endif
