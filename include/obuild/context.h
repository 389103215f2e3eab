/* context: the build context directory, .dockerignore/.containerignore,
 * resolution of COPY/ADD sources that never escapes the context, and the
 * copy engine that puts sources into a destination tree (a layer's upper
 * directory).  All paths are resolved relative to directory fds. */
#ifndef OBUILD_CONTEXT_H
#define OBUILD_CONTEXT_H

#include <obuild/error.h>
#include <obuild/layer.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- ignore patterns (moby/patternmatcher semantics) ---- */
struct ob_ignore; /* opaque */

/* Parse the text of a .dockerignore: comments (#), blank lines, leading/
 * trailing whitespace trimmed, patterns cleaned (filepath.Clean), leading '/'
 * dropped, '!' exceptions, '**' matching any number of directories.
 * Errors (bad pattern such as "[") are OB_ERR_CONTEXT naming `name`:line. */
int ob_ignore_parse (const char *name, const char *text, struct ob_ignore **out, ob_error_t *err);
/* Load <ctxfd>/.containerignore, else .dockerignore; *out is NULL-safe empty
 * when neither exists. */
int ob_ignore_load (int ctxfd, struct ob_ignore **out, ob_error_t *err);
/* Is the context-relative path (no leading "/" or "./") excluded?  As Docker:
 * the last matching pattern decides; a pattern matching a parent directory
 * excludes its children. */
bool ob_ignore_match (const struct ob_ignore *ig, const char *relpath);
void ob_ignore_free (struct ob_ignore *ig);
/* Does ig hold '!' exception patterns?  (An excluded directory must then
 * still be walked: an exception may re-include something below it.) */
bool ob_ignore_has_exceptions (const struct ob_ignore *ig);

/* ---- Go path semantics, shared with other modules ---- */
/* Go's filepath.Clean: "a//b/./c/.." -> "a/b", "" -> ".", "/.." -> "/".
 * Returns a new string. */
char *ob_path_clean (const char *path);
/* Go's filepath.Match: '*' '?' '[a-z]' '[^a]' and '\' escapes, none of them
 * matching '/'.  Returns 1 on match, 0 on no match, -1 for a bad pattern. */
int ob_path_match (const char *pattern, const char *name);

/* ---- source resolution ---- */
/* Expand one COPY/ADD source (after variable expansion) to the list of
 * context-relative paths it names: the source is cleaned and taken relative
 * to the context root (a leading "/" means the context root, as Docker).
 * Wildcards * ? [..] per path component (Go filepath.Match).  Paths excluded
 * by ig are invisible.  Errors (OB_ERR_CONTEXT, naming the source):
 *   - "../x" style escape: `forbidden path outside the build context: ../x`
 *   - a symlink on the way (or the source itself) resolving outside the context
 *   - no match: `COPY source not found in build context: x` (but a wildcard
 *     with no match yields an empty list when allow_empty_glob is true)
 * Results are sorted, deduplicated, NULL-terminated. */
int ob_context_resolve (int ctxfd, const struct ob_ignore *ig, const char *src,
                        bool allow_empty_glob, char ***out, ob_error_t *err);
/* The real path of rel (a path ob_context_resolve returned) in the
 * context: its symlinks resolved, "." for the root; errors as
 * ob_context_resolve (a path resolving to one ig excludes is not found). */
int ob_context_real_path (int ctxfd, const struct ob_ignore *ig, const char *rel, char **out,
                          ob_error_t *err);
/* The same for COPY --from: rootfd is another stage's root file system, so
 * symlinks (absolute ones too, e.g. /usr/bin/x -> /etc/alternatives/x) are
 * followed as if rootfd were "/" instead of being rejected. */
/* The real path of rel inside rootfd taken as "/" (COPY --from): symlinks,
 * absolute ones too, resolved within it; "." for the root. */
int ob_context_real_path_in_root (int rootfd, const char *rel, char **out, ob_error_t *err);
int ob_context_resolve_in_root (int rootfd, const struct ob_ignore *ig, const char *src,
                                bool allow_empty_glob, char ***out, ob_error_t *err);

/* ---- copy engine ---- */
struct ob_copy_opts
{
  bool chown; /* apply uid/gid to every copied entry (and created parents) */
  bool keep_owner; /* without chown: every entry keeps its source's owner (its
                    * owner xattr, see layer.h, else the inode's; COPY --from)
                    * instead of 0:0; created parents are 0:0 */
  bool devices; /* sources obuild made (COPY --from): a regular file carrying
                 * OB_LAYER_DEVICE_XATTR (single-ID mode's device, see
                 * layer.h) is copied as that device; a context file's
                 * xattr never is */
  uid_t uid;
  gid_t gid;
  bool chmod; /* apply mode (permission bits, incl. setuid etc.) to every copied entry */
  mode_t mode;
};

/* Copy sources (paths relative to srcfd, as returned by ob_context_resolve;
 * "." means the root of srcfd) into the tree at rootfd, destination `dest`
 * (absolute inside the tree, already expanded and made absolute against
 * WORKDIR by the caller), with Docker's rules:
 *   - a directory source copies its CONTENTS into dest;
 *   - dest is a directory when it ends with "/", when there are several
 *     sources, or when the source is a directory; a single file to "dest/"
 *     lands as dest/<basename>, to "dest" as dest (replacing a file there);
 *   - missing parent directories are created (mode 0755, owner 0:0 or the
 *     chown owner);
 *   - symlinks are copied as symlinks (never followed inside copied trees);
 *     hardlinks among copied files stay hardlinks; modes (incl. setuid/setgid/
 *     sticky) and mtimes kept; xattrs in the user.* namespace kept; owner
 *     0:0 unless opts->chown or opts->keep_owner;
 *   - excluded paths (ig, may be NULL) inside copied directories are skipped
 *     (paths are matched relative to srcfd);
 *   - dest is resolved inside rootfd and never escapes it (a symlink in the
 *     tree is followed only within the tree, like a chroot: openat2
 *     RESOLVE_IN_ROOT).
 * The caller (build) enforces "several sources need a dest ending in /".
 * Errors: OB_ERR_CONTEXT for source problems, OB_ERR_STORE for I/O on the
 * destination, each naming the path. */
int ob_context_copy (int srcfd, const struct ob_ignore *ig, char *const *srcs, int rootfd,
                     const char *dest, const struct ob_copy_opts *opts, ob_error_t *err);

/* What ob_context_copy would write into an EMPTY tree, without writing
 * anything: the entries of its layer (*out, *n_out; in the layer's order,
 * paths relative), each naming its source below srcfd, for
 * ob_layer_write_sources.  The directories the copy makes have mtime "now".
 * Returns 1 (nothing planned) when the copy does something a plan does not
 * model: a device node, an entry written twice or through a symlink the
 * copy makes; the caller copies instead.  Errors as ob_context_copy's. */
int ob_context_plan (int srcfd, const struct ob_ignore *ig, char *const *srcs, const char *dest,
                     const struct ob_copy_opts *opts, struct ob_layer_src **out, size_t *n_out,
                     ob_error_t *err);
void ob_context_plan_free (struct ob_layer_src *e, size_t n);
/* The plan's order (qsort/bsearch of struct ob_layer_src by path). */
int ob_context_plan_cmp (const void *a, const void *b);

/* openat() confined to dirfd: resolve is RESOLVE_BENEATH (escaping is
 * EXDEV) or RESOLVE_IN_ROOT (dirfd is "/"), from <linux/openat2.h>;
 * O_CLOEXEC always.  Falls back to a walk in userspace, one component at a
 * time, where openat2 is missing. */
int ob_context_openat2 (int dirfd, const char *path, int flags, uint64_t resolve);

#endif
