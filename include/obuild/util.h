/* util: allocation, scoped cleanup, small string vectors, *at() file helpers
 * and sha256 helpers.  Knows nothing about images. */
#ifndef OBUILD_UTIL_H
#define OBUILD_UTIL_H

#include <obuild/error.h>
#include <obuild/xalloc.h>

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>


/* ---- scoped cleanup ---- */
void ob_cleanup_freep (void *p);
void ob_cleanup_closep (int *fd);
void ob_cleanup_dirp (DIR **d);
void ob_cleanup_filep (FILE **f);
void ob_cleanup_strvp (char ***v);
#define cleanup_free __attribute__ ((cleanup (ob_cleanup_freep)))
#define cleanup_close __attribute__ ((cleanup (ob_cleanup_closep)))
#define cleanup_dir __attribute__ ((cleanup (ob_cleanup_dirp)))
#define cleanup_file __attribute__ ((cleanup (ob_cleanup_filep)))
#define cleanup_strv __attribute__ ((cleanup (ob_cleanup_strvp)))

static inline void *
ob_steal_pointer (void *pp)
{
  void **p = (void **) pp;
  void *r = *p;
  *p = NULL;
  return r;
}
#define steal_pointer(pp) ob_steal_pointer (pp)

static inline int
ob_steal_fd (int *fd)
{
  int r = *fd;
  *fd = -1;
  return r;
}

/* ---- NULL-terminated string vectors ---- */
size_t ob_strv_len (char *const *v);
/* Does the environment vector hold "key=..."? */
bool ob_strv_env_has (char *const *env, const char *key);
/* Append a copy of s; *v may be NULL. */
void ob_strv_add (char ***v, const char *s);
/* Append s itself (takes ownership). */
void ob_strv_take (char ***v, char *s);
/* ob_strv_take for long vectors: *n is the count, kept by the caller (the
 * array doubles when n + 1 reaches a power of two), so appending is O(1). */
void ob_strv_push (char ***v, size_t *n, char *s);
/* Append the strings of more (taking them, freeing the array) in one go. */
void ob_strv_take_all (char ***v, char **more);
char **ob_strv_dup (char *const *v);
void ob_strv_free (char **v);
bool ob_str_has_prefix (const char *s, const char *prefix);
bool ob_str_has_suffix (const char *s, const char *suffix);

/* ---- a set of strings ----
 * Open addressing on SipHash-1-3 with a key drawn at random once per
 * process: the strings come from hostile input (an archive's paths, an
 * archive's tags), and an unkeyed hash lets crafted names share one probe
 * chain, each insertion then costing a scan of all before it. */
struct ob_strset
{
  char **slots;
  size_t cap; /* power of two */
  size_t n;
};
bool ob_strset_has (const struct ob_strset *set, const char *s);
void ob_strset_add (struct ob_strset *set, const char *s);
void ob_strset_free (struct ob_strset *set);
/* SipHash-1-3 of data under this process's random key. */
uint64_t ob_hash_keyed (const void *data, size_t len);

/* ---- growable byte buffer ---- */
struct ob_buf
{
  char *data;
  size_t len;
  size_t cap;
};
void ob_buf_add (struct ob_buf *b, const void *data, size_t n);
void ob_buf_addc (struct ob_buf *b, char c);
void ob_buf_adds (struct ob_buf *b, const char *s);
/* Returns the NUL-terminated data and resets the buffer (caller frees). */
char *ob_buf_steal (struct ob_buf *b);
void ob_buf_free (struct ob_buf *b);

/* ---- files ---- */
/* Read a whole file (relative to dirfd, or AT_FDCWD).  Adds a trailing NUL
 * not counted in *len.  Errors are OB_ERR_STORE unless the caller rewraps. */
int ob_read_file_at (int dirfd, const char *path, char **out, size_t *len, ob_error_t *err);
int ob_read_fd (int fd, char **out, size_t *len, ob_error_t *err);
int ob_write_all (int fd, const void *buf, size_t n, ob_error_t *err);
/* Copy everything from in (at its offset) to out: copy_file_range where
 * the file systems allow it, read/write otherwise.  Errors (OB_ERR_STORE)
 * name `what`. */
int ob_copy_fd (int in, int out, const char *what, ob_error_t *err);
/* Write data to dirfd/path atomically: temp file in the same directory,
 * fsync, rename. */
int ob_write_file_atomic_at (int dirfd, const char *path, const void *data, size_t len,
                             mode_t mode, ob_error_t *err);
/* Write data to the new file dirfd/path (O_EXCL, not through a symlink),
 * not synced: for scratch files a build makes and removes (a RUN step's
 * /etc/hosts, a heredoc), which a crash need not keep.  A partial file is
 * removed on failure. */
int ob_write_file_new_at (int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                          ob_error_t *err);
/* Replace dirfd/path with data (temp file, rename), not synced: for files
 * whose reader checks them whole (a checksum over the content, naming what
 * it is about), so that what a crash leaves is ignored, not trusted. */
int ob_write_file_unsynced_at (int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                               ob_error_t *err);
/* mkdir -p relative to dirfd; existing directories are fine. */
int ob_mkdir_p_at (int dirfd, const char *path, mode_t mode, ob_error_t *err);
/* rm -rf relative to dirfd; a missing path is not an error.  Any depth:
 * it keeps at most ~66 directories open, moving what lies deeper up to
 * the top of path (renamed `.obuild-rm-N`) to remove it from there. */
int ob_rm_rf_at (int dirfd, const char *path, ob_error_t *err);
/* Raise the soft limit on open files to the hard one (at most
 * OB_NOFILE_WANT): walking a step's tree holds a descriptor per level, up
 * to OB_LAYER_PATH_MAX / 2 levels.  Best effort, like Go's runtime. */
#define OB_NOFILE_WANT 65536
void ob_nofile_raise (void);
/* Give a child about to exec a program the soft limit obuild started with
 * (async-signal-safe: after fork). */
void ob_nofile_restore (void);
/* Make a fresh temporary directory "<parent>/<prefix>XXXXXX"; returns its path. */
int ob_mkdtemp_in (const char *parent, const char *prefix, char **out, ob_error_t *err);
/* Mark directory `path` so that ext4 places each directory made in it where
 * its allocator would place a top-level one (chattr +T), away from the inodes
 * the previous builds freed there.  Best effort: other file systems, or a
 * directory that is not ours, are left as they are. */
void ob_dir_spread (const char *path);

/* ---- sha256 ---- */
#define OB_SHA256_HEX_LEN 64
/* "sha256:" + 64 hex + NUL */
#define OB_DIGEST_LEN (7 + OB_SHA256_HEX_LEN + 1)
struct ob_sha256; /* opaque streaming hasher */
struct ob_sha256 *ob_sha256_new (void);
void ob_sha256_update (struct ob_sha256 *h, const void *data, size_t n);
/* Writes "sha256:<hex>" into out (OB_DIGEST_LEN bytes) and frees h. */
void ob_sha256_final (struct ob_sha256 *h, char out[OB_DIGEST_LEN]);
void ob_sha256_free (struct ob_sha256 *h);
void ob_sha256_digest (const void *data, size_t n, char out[OB_DIGEST_LEN]);
/* True iff s is exactly "sha256:" followed by 64 lowercase hex digits. */
bool ob_digest_valid (const char *s);

#endif
