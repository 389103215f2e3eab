/* Internal to the context module: what the copy engine (context_copy.c)
 * takes from the confined opening and source resolution of context.c. */
#ifndef OBUILD_CONTEXT_PRIV_H
#define OBUILD_CONTEXT_PRIV_H

#include <obuild/context.h>
#include <obuild/error.h>

#include <stdbool.h>
#include <stdint.h>

/* a joined with b by one '/' (b alone when a is NULL, "" or "."). */
char *ob_context_path_join (const char *a, const char *b);

/* The same resolution walked in userspace one component at a time (in_root:
 * RESOLVE_IN_ROOT, else RESOLVE_BENEATH); with ig, a path it hides (by its
 * real path) is ENOENT.  *real (may be NULL) receives the real path of what
 * was opened, "" for the root.  Returns the fd, or -1 with errno. */
int ob_context_walk_path (int rootfd, const char *path, int flags, bool in_root,
                          const struct ob_ignore *ig, char **real);

/* Sorted names of a directory, without "." and "..".  Takes ownership of
 * fd.  err may be NULL. */
int ob_context_read_dir_names (int fd, char ***out, ob_error_t *err);

/* The error of a COPY source missing from the context (OB_ERR_CONTEXT). */
int ob_context_not_found (const char *src, ob_error_t *err);

#endif
