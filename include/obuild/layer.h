/* layer: change list -> deterministic tar stream -> compressor, computing the
 * sha256 of the tar (diff_id) and of the compressed blob (digest) in the same
 * streaming pass; and the reverse direction: reading files out of layer
 * blobs and extracting layers/archives safely into a directory.
 * Knows nothing about manifests. */
#ifndef OBUILD_LAYER_H
#define OBUILD_LAYER_H

#include <obuild/error.h>
#include <obuild/snapshot.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

enum ob_compression
{
  OB_COMPRESS_GZIP,
  OB_COMPRESS_ZSTD,
  OB_COMPRESS_NONE,
};

#define OB_MT_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define OB_MT_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define OB_MT_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"

/* An xattr "uid:gid" on a file of an upper directory overrides the file's
 * owner in the layer (owners a single-ID user namespace cannot represent);
 * it is not itself written to the layer. */
#define OB_LAYER_OWNER_XATTR "user.obuild.owner"

/* An xattr "c MAJOR:MINOR" or "b MAJOR:MINOR" on a regular file of an
 * upper directory: the placeholder single-ID mode's supervisor makes for a
 * mknod of a character or block device (a user namespace cannot create
 * one).  The layer writer writes the file as that device (size 0); the
 * xattr itself is never written to a layer, never copied by COPY and never
 * taken from an archive. */
#define OB_LAYER_DEVICE_XATTR "user.obuild.device"

/* Parse a OB_LAYER_DEVICE_XATTR value (len bytes, not NUL-terminated):
 * exactly "c " or "b ", a major of 0..4095 and a minor of 0..1048575 in
 * decimal without leading zeros, separated by ':' (what the kernel's dev_t
 * holds).  0 with *type (S_IFCHR or S_IFBLK) and *rdev set, or -1 for
 * anything else. */
int ob_layer_device_parse (const char *value, size_t len, mode_t *type, dev_t *rdev);
/* The value for type and rdev into buf (at least 32 bytes). */
void ob_layer_device_format (char *buf, size_t size, mode_t type, dev_t rdev);

/* gzip level when none is asked for: libdeflate's fastest.  Measured on a
 * Debian minbase (bench/README.md): 3x the speed of level 6 for +8% size,
 * and within 2% of the size Go's default level (buildah, podman) gives; the
 * default of go-containerregistry (crane, ko) too.  Unless the build is
 * reproducible, no level asked for means ISA-L's igzip instead (see
 * ob_layer_gzip_isal). */
#define OB_GZIP_DEFAULT_LEVEL 1

/* A tar entry as a reader of the layer sees its header: what the writers
 * and the overlay unpacker tell of each entry (the tree module's index of a
 * layer is made of them, so that the layer need not be read again). */
struct ob_layer_entry_info
{
  const char *name; /* as stored (directories with a trailing "/") */
  mode_t mode;      /* type and permission bits */
  uid_t uid;
  gid_t gid;
  int64_t mtime; /* seconds */
  int64_t size;
  const char *symlink;  /* or NULL */
  const char *hardlink; /* or NULL */
};
typedef void (*ob_layer_entry_fn) (void *data, const struct ob_layer_entry_info *e);

struct ob_layer_opts
{
  enum ob_compression compression;
  int level;         /* 0 = the default (gzip: igzip, or OB_GZIP_DEFAULT_LEVEL) */
  bool clamp_mtime;  /* clamp entry mtimes to mtime_max (SOURCE_DATE_EPOCH) */
  bool single_thread_gzip; /* one zlib stream instead of parallel members */
  int64_t mtime_max;
  ob_layer_entry_fn on_entry; /* told of every entry written, or NULL */
  void *on_entry_data;
  /* members made while the step ran (ob_layer_precomp_start), stopped;
   * ob_layer_write offers them, or NULL */
  const struct ob_layer_precomp *precomp;
};

struct ob_layer_result
{
  char digest[72];  /* sha256 of the blob as written, "sha256:..." */
  char diff_id[72]; /* sha256 of the uncompressed tar */
  int64_t size;     /* blob size in bytes */
  const char *media_type;
  int64_t precompressed; /* tar bytes whose member was made ahead (precomp) */
};

/* Members made ahead (layer_precomp.c): while a RUN step runs, compress
 * on a thread of idle priority the big regular files (at least 32 KiB)
 * that appear below upper (on its file system; with since, only those
 * whose ctime is since or later: a container's root) and stop changing, as ob_layer_write with opts
 * will compress them, into an unlinked file in tmpdir.  NULL when opts do
 * not compress with parallel gzip or the thread cannot start: nothing is
 * lost, the layer is then compressed after the step.  Stop it when the
 * step has ended (joins the thread), then pass it in the opts of the
 * ob_layer_write of that upper directory: a member is used only for a
 * block whose bytes it holds exactly, so the layer is the same, byte for
 * byte, as without.  The environment variable OBUILD_TEST_NO_PRECOMPRESS
 * turns it off. */
struct ob_layer_precomp;
struct ob_layer_precomp *ob_layer_precomp_start (const char *upper, const char *tmpdir,
                                                 const struct ob_layer_opts *opts, const struct timespec *since);
void ob_layer_precomp_stop (struct ob_layer_precomp *pc);
void ob_layer_precomp_free (struct ob_layer_precomp *pc);
/* Files made ahead so far, a file made again counted again (for tests;
 * callable while it runs). */
uint64_t ob_layer_precomp_files (struct ob_layer_precomp *pc);

/* Whether gzip layers written with `o` are compressed by ISA-L's igzip: when
 * no level is asked for and the layer is not to be reproducible (no
 * SOURCE_DATE_EPOCH, so no clamped times).  igzip is about three times as
 * fast as libdeflate's level 1 for layers ~5% larger, but its bytes may
 * differ between CPUs (instruction sets), where libdeflate's do not. */
bool ob_layer_gzip_isal (const struct ob_layer_opts *o);

/* The compressor and level `o` stand for, as a short text ("gzip/igzip",
 * "gzip/1", "zstd/0", "none"): cache keys name what produced a blob. */
void ob_layer_opts_describe (const struct ob_layer_opts *o, char *buf, size_t n);

/* Write the layer for `changes` (paths relative to upperfd) to outfd.
 * Tar: pax format, entries in the order of `changes`, numeric uid/gid with
 * empty uname/gname, no atime/ctime, mtime clamped when asked; WHITEOUT ->
 * empty regular file "dir/.wh.name"; OPAQUE -> "dir/.wh..wh..opq"; regular
 * files with the same (dev,ino) as an earlier entry of this layer become tar
 * hardlinks to it; symlink targets as stored; xattrs security.capability and
 * user.* kept (user.overlay.* dropped); setuid/setgid/sticky kept;
 * directories named with a trailing "/".  gzip: no name, mtime 0, identical
 * bytes for identical input.  Memory does not depend on the layer size. */
int ob_layer_write (int upperfd, const struct ob_changes *changes, int outfd,
                    const struct ob_layer_opts *opts, struct ob_layer_result *res,
                    ob_error_t *err);

/* An entry of a layer written from its sources rather than from an upper
 * directory (a COPY streamed from the context or another stage, whose files
 * never reach the disk): the tar header takes st's type and mode, owner,
 * mtime, size and (regular files, directories) the user.* xattrs of the
 * source; regular files with the same st_dev/st_ino as an earlier entry
 * become hardlinks to it, as ob_layer_write does. */
struct ob_layer_src
{
  char *path;       /* in the layer, relative, no trailing "/" */
  struct stat st;   /* S_IFREG, S_IFDIR, S_IFLNK or S_IFIFO */
  char *src;        /* regular files, and directories taken from a source:
                     * the source below srcfd (NULL: a directory the copy
                     * made, without xattrs) */
  char *link;       /* symlinks: the target */
  bool follow;      /* src's last component may be a symlink to follow */
  bool owner_xattr; /* the source's OB_LAYER_OWNER_XATTR, when it has one,
                     * is the owner (instead of st's) */
  bool device_xattr; /* a regular file's valid OB_LAYER_DEVICE_XATTR makes
                      * it that device (COPY --from of a placeholder) */
};

/* Write entries (in the order of ob_snapshot_scan) as a layer to outfd.
 * A source is opened below srcfd with openat2(RESOLVE_IN_ROOT) and must
 * still be the inode its st names: OB_ERR_CONTEXT "`src` changed during
 * the build" otherwise, or when it has shrunk.  Same result fields as
 * ob_layer_write. */
int ob_layer_write_sources (int srcfd, const struct ob_layer_src *entries, size_t n, int outfd,
                            const struct ob_layer_opts *opts, struct ob_layer_result *res,
                            ob_error_t *err);

/* archive_read_open of the archive a reads from fd (from its offset): a
 * gzip stream is decompressed by ISA-L's igzip (twice zlib's speed, which
 * libarchive's gzip filter uses) before a sees it, members checked against
 * their CRC-32 and length; anything else is given as it is (a's own filters
 * detect zstd, xz, bzip2).  Returns what archive_read_open does. */
struct archive;
int ob_layer_archive_open (struct archive *a, int fd);
/* The same, and the sha256 of everything a gzip stream inflates to (a
 * layer's diff_id), taken while it is read: *stream is valid until the
 * archive is freed. */
struct ob_layer_stream;
int ob_layer_archive_open_digest (struct archive *a, int fd, struct ob_layer_stream **stream);
/* After the archive's last entry: the rest of the stream (the tar's end and
 * padding) inflated, the digest in out: 0; 1 when the input was not gzip
 * (no digest taken); -1 on a read error. */
int ob_layer_archive_digest (struct ob_layer_stream *stream, char out[72], ob_error_t *err);

/* Normalise a root filesystem tarball (none/gzip/bzip2/xz/zstd, detected
 * from content) read from infd into a layer written to outfd: entries kept
 * in input order, names made relative ("./" and "/" prefixes removed),
 * entries with ".." components refused (OB_ERR_IMAGE naming the entry), as
 * is a hardlink to anything but an earlier file of the tarball (it would
 * only fail at the first RUN, or link to a file of the host),
 * owners numeric, mtimes clamped when asked.  Same result fields. */
int ob_layer_import (int infd, int outfd, const struct ob_layer_opts *opts,
                     struct ob_layer_result *res, ob_error_t *err);

/* Normalise a tar entry name (or hardlink target) the way import and extract
 * see it: leading "/" and "./" removed, empty and "." components dropped, no
 * trailing "/"; the root itself becomes "".  A ".." component is refused
 * (OB_ERR_IMAGE "entry `NAME`: path contains .."), and so is a result longer
 * than OB_LAYER_PATH_MAX.  *out is malloc'd. */
int ob_layer_clean_name (const char *name, char **out, ob_error_t *err);

/* Owners on disk.  Normally a file's uid/gid is its owner in the layer.
 * Without any user namespace (a non-root build where namespaces are
 * forbidden), every file obuild writes is the invoking user's: then owners
 * are never set on disk, the layer writer takes root (0:0) for every file,
 * and any other owner lives in OB_LAYER_OWNER_XATTR, as in single-ID mode.
 * Set once, before any file is written. */
void ob_layer_set_owners_unmapped (bool unmapped);
bool ob_layer_owners_unmapped (void);
/* fchownat(2) under that policy: with unmapped owners, 0:0 succeeds without
 * doing anything and any other owner fails with EPERM (so callers record it
 * in the xattr, as they do for ids a user namespace cannot represent).
 * path "" with AT_EMPTY_PATH chowns dirfd itself. */
int ob_layer_chown_at (int dirfd, const char *path, uid_t uid, gid_t gid, int flags);

/* Does the file at fd (rewound by the function) look like a tar archive,
 * possibly compressed (what ADD extracts)? */
bool ob_layer_is_archive (int fd);

/* sha256 of the uncompressed content of a layer blob (its diff_id), any
 * compression; fd is rewound first.  OB_ERR_IMAGE for a corrupt stream. */
int ob_layer_diff_id (int fd, char out[72], ob_error_t *err);

/* Extract an archive/layer from infd into the directory rootfd/dest (dest
 * absolute within the root, created if missing).  Never writes outside
 * rootfd: every path is resolved with openat2(RESOLVE_IN_ROOT|
 * RESOLVE_NO_MAGICLINKS) so ".." and symlinks stay inside; hardlinks must
 * point inside and at entries already extracted.  When `whiteouts` is true
 * (an image layer), ".wh." entries are applied (delete / opaque) instead of
 * created.  Owners are applied when `same_owner` is true and the process may
 * chown (else ignored); device nodes that cannot be created are skipped.
 * Errors: OB_ERR_IMAGE for bad archive content, naming the entry. */
int ob_layer_extract (int infd, int rootfd, const char *dest, bool whiteouts, bool same_owner,
                      ob_error_t *err);

/* ob_layer_extract (whiteouts applied, owners kept) onto a live root file
 * system: the paths in keep (NULL-terminated, absolute) and everything below
 * them are never written, replaced or removed, and a directory on the way
 * to one stays a directory (--isolation=container: mount points, obuild's
 * own files). */
int ob_layer_extract_keep (int infd, int rootfd, const char *const *keep, ob_error_t *err);
/* Is path (relative to the root; leading slashes ignored) one of keep or
 * below one (1), a directory on the way to one (2), or neither (0)? */
int ob_layer_path_kept (const char *const *keep, const char *path);

/* Unpack one image layer into an empty directory rootfd so that it can be
 * an overlayfs lower directory: whiteouts become 0:0 character devices and
 * opaque markers the xattr user.overlay.opaque="y" (mount with userxattr).
 * Owners are applied; those the user namespace cannot represent are kept in
 * OB_LAYER_OWNER_XATTR.  Same safety rules as ob_layer_extract.  on_entry
 * (or NULL) is told of every entry read. */
int ob_layer_unpack_overlay (int infd, int rootfd, ob_layer_entry_fn on_entry, void *on_entry_data,
                             ob_error_t *err);
/* ob_layer_unpack_overlay that also takes the sha256 of the layer's
 * uncompressed content (its diff_id) in the same pass: 0 with diff_id
 * filled; 1 when the layer is not gzip (diff_id not taken); -1 on error.
 * diff_id NULL: no digest (ob_layer_unpack_overlay). */
int ob_layer_unpack_overlay_digest (int infd, int rootfd, ob_layer_entry_fn on_entry, void *on_entry_data,
                                    char diff_id[72], ob_error_t *err);

/* Check the hardlinks of a tar stream (any compression) read from infd:
 * each must name an earlier entry of the same archive that is not a
 * directory.  OB_ERR_IMAGE naming the entry otherwise (`obuild import`
 * refuses such a tarball instead of failing at the first RUN). */
int ob_layer_check_hardlinks (int infd, ob_error_t *err);

/* Let the libarchive reader a take what image layers and archives may be
 * compressed with: gzip, bzip2, xz, zstd.  Never
 * archive_read_support_filter_all: for some filters (lrzip, lzop, grzip)
 * libarchive runs an external program on the input, outside any sandbox. */
struct archive;
void ob_layer_reader_filters (struct archive *a);

/* Read the file `path` (absolute or relative inside the image) from a stack
 * of layer blobs given as fds, bottom layer first.  The top-most layer that
 * has it (or whites it out, or an opaque parent) decides.  *out is set to
 * NULL (return 0) when the file does not exist, is no regular file or is
 * larger than OB_LAYER_READ_MAX (a hostile image's sparse gigabytes, read
 * into memory); symlinks are not followed.  Used to read /etc/passwd and
 * /etc/group for --chown and USER. */
#define OB_LAYER_READ_MAX (16u << 20)
int ob_layer_read_file (const int *layer_fds, size_t n, const char *path, char **out,
                        size_t *len, ob_error_t *err);

#endif
