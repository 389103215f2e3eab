/* Internal to the sandbox module (sandbox.c, sandbox_paths.c). */
#ifndef OBUILD_SANDBOX_PRIV_H
#define OBUILD_SANDBOX_PRIV_H

#include <obuild/error.h>
#include <obuild/sandbox.h>

#include <stdbool.h>
#include <stddef.h>

/* Resolve path inside the tree at rootfd by hand, like RESOLVE_IN_ROOT
 * (allocation-free: used after clone). */
int ob_sandbox_resolve_in_root (int rootfd, const char *path, int flags);
/* Resolve path (absolute or relative to the root) inside the tree at
 * rootfd: symlinks and ".." never leave it.  An O_PATH fd or -1 (errno). */
int ob_sandbox_open_in_root (int rootfd, const char *path, int flags);
/* "/proc/self/fd/N" */
void ob_sandbox_fd_path (char *buf, size_t size, int fd);
/* Path of fd relative to the root whose host path is root_real. */
char *ob_sandbox_path_in_root (const char *root_real, int fd, const char *fallback);
/* Make sure the mount point path exists (a directory when dir), creating
 * it and its parents inside the root, each creation recorded in *made. */
int ob_sandbox_ensure_mount_point (int rootfd, const char *root_real, const char *path, bool dir, char ***made,
                                   ob_error_t *err);
/* /proc, /dev, /sys and every bind mount's target. */
int ob_sandbox_prepare_mount_points (const struct ob_sandbox_opts *o, int rootfd, char ***made, ob_error_t *err);

#endif
