/* link_owner: the owner of a symlink in single-ID mode.
 *
 * A single-ID user namespace maps only the invoking user, so an owner
 * chown asks for is recorded in an xattr (OB_LAYER_OWNER_XATTR) of the file
 * itself; a symlink cannot carry a user.* xattr.  Its owner is recorded on
 * its parent directory instead, one xattr per link:
 *
 *   name   OB_LINK_OWNER_PREFIX + the link's name ("user.obuild.lowner.l")
 *   value  "uid:gid:" + the first 16 hex digits of the sha256 of the link's
 *          target
 *
 * The target's digest ties the record to that link: a later symlink of the
 * same name pointing elsewhere is not given the owner (inode numbers would
 * not do: the step sees the overlay's, the layer writer the upper
 * directory's, and a copy-up changes them).  A symlink made again with the
 * same name and the same target does keep the recorded owner (unless the
 * old link was renamed away: in single-ID mode the chown supervisor moves
 * the record with a rename); a link hard-linked is root's under its new
 * name.  A link
 * whose xattr name would be longer than XATTR_NAME_MAX (a name of more
 * than 236 bytes) is not recorded; root stands for a link without a record.
 * The records are never written into a layer nor copied from a build
 * context or an archive: obuild writes them (the chown supervisor, the
 * unpacker, COPY and ADD), or a RUN step itself, as it may set
 * OB_LAYER_OWNER_XATTR. */
#ifndef OBUILD_LINK_OWNER_H
#define OBUILD_LINK_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OB_LINK_OWNER_PREFIX "user.obuild.lowner."
/* "4294967295:4294967295:" + 16 hex digits + NUL */
#define OB_LINK_OWNER_VALUE_MAX 40

/* Whether xattr is a record (any name with the prefix). */
bool ob_link_owner_is_xattr (const char *xattr);

/* The record's xattr name for the link called name (one path component)
 * into buf: 0, or -1 when it would exceed XATTR_NAME_MAX or name is not a
 * plain component ("", ".", "..", a "/"): no record for that link. */
int ob_link_owner_name (const char *name, char *buf, size_t size);

/* The record's value for uid:gid and the link's target. */
void ob_link_owner_format (uint32_t uid, uint32_t gid, const char *target,
                           char out[OB_LINK_OWNER_VALUE_MAX]);

/* Whether value (len bytes, not NUL-terminated) is a well-formed record of
 * a link with this target; its ids then in *uid, *gid. */
bool ob_link_owner_parse (const char *value, size_t len, const char *target, uint32_t *uid,
                          uint32_t *gid);

/* The owner recorded in the directory dirfd (any descriptor, O_PATH too)
 * for its symlink name whose target is target: true when one other than
 * 0:0 is. */
bool ob_link_owner_get (int dirfd, const char *name, const char *target, uint32_t *uid,
                        uint32_t *gid);

/* Record uid:gid for dirfd's symlink name (target): 0:0 removes the record.
 * 0 (also when the link cannot be recorded: name too long, a file system
 * without user xattrs, or no room left for xattrs on the directory), or a
 * negative errno. */
int ob_link_owner_set (int dirfd, const char *name, const char *target, uint32_t uid,
                       uint32_t gid);

/* ob_link_owner_get and _set for the symlink at dfd/path (a relative path
 * whose directories are not symlinks: none is followed), its target read
 * there.  _set_at: as _set, and 0 when path is not a symlink. */
bool ob_link_owner_get_at (int dfd, const char *path, uint32_t *uid, uint32_t *gid);
int ob_link_owner_set_at (int dfd, const char *path, uint32_t uid, uint32_t gid);

/* Give the directory to the records of the directory from that it has no
 * record of the same name for (best effort): an overlay's root is its
 * upper directory, which hides the lower layers' roots, records included. */
void ob_link_owner_inherit (const char *from, const char *to);

#endif
