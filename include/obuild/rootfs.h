/* rootfs: what RUN steps (build_run.c) and `obuild run` (run.c) share to
 * give a command an image's root filesystem: an overlay of the image's
 * unpacked layers with a throwaway upper directory, and the image's users
 * and groups read from inside that root. */
#ifndef OBUILD_ROOTFS_H
#define OBUILD_ROOTFS_H

#include <obuild/error.h>

#include <stddef.h>
#include <sys/types.h>

/* Mount an overlay on target: lowers[0] is the bottom layer (n >= 1),
 * upper and work are empty directories on one file system, rundir is a
 * scratch directory the classic mount(2) fallback may use for short
 * symlinks to the lower directories.  OB_ERR_STEP when overlayfs refuses. */
int ob_rootfs_mount_overlay (char *const *lowers, size_t n, const char *rundir, const char *upper,
                             const char *work, const char *target, ob_error_t *err);

/* The content of path inside root (symlinks resolved inside it, no magic
 * links), or NULL when it cannot be read, is no regular file (a FIFO, a
 * device) or is larger than OB_ROOTFS_READ_MAX bytes. */
#define OB_ROOTFS_READ_MAX (16u << 20)
char *ob_rootfs_read (const char *root, const char *path);

/* Field `field` (0 name ... 5 home, 6 shell) of uid's line in an
 * /etc/passwd text, or NULL. */
char *ob_rootfs_passwd_field (const char *passwd, uid_t uid, int field);

/* The supplementary groups of a USER spec resolved to uid:gid, as BuildKit
 * (executor/oci/user.go) and Docker: the primary group first, then, when
 * the spec names no group, the user's memberships in the /etc/group text
 * (passwd and group may be NULL).  Fills at most max; returns the count. */
size_t ob_rootfs_groups (const char *user, const char *passwd, const char *group, uid_t uid, gid_t gid,
                         gid_t *groups, size_t max);

#endif
