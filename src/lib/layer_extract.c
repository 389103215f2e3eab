/* layer, part 2: safe extraction of tar streams (image layers and ADD
 * archives) into a root directory.  Every path is resolved by the kernel
 * with openat2(RESOLVE_IN_ROOT), and the last component is created with *at()
 * calls relative to the resolved parent, so neither "..", absolute symlinks
 * nor symlinks planted by earlier entries can lead outside the root. */
#include "config.h"
#include <obuild/layer.h>
#include <obuild/link_owner.h>
#include <obuild/util.h>
#include "layer_priv.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_NAME 4096


/* ---- extraction state ---- */

struct dir_fix
{
  char *path; /* relative to the root */
  mode_t mode;
  struct timespec mtime;
};

struct extract
{
  int rootfd;
  bool whiteouts;
  bool overlay; /* keep whiteouts as overlayfs lower-dir markers */
  bool same_owner;
  const char *const *keep; /* paths (relative to the root) never touched */
  struct archive *a;
  struct ob_strset created;
  struct dir_fix *dirs; /* directory modes and mtimes, applied at the end */
  size_t ndirs;
  size_t capdirs;
  char *cache_path; /* the last parent directory opened, and its fd */
  int cache_fd;
  ob_layer_entry_fn on_entry;
  void *on_entry_data;
  char *digest;     /* ob_layer_unpack_overlay_digest: where the diff_id goes */
  int digest_taken; /* 0: taken, 1: not gzip */
};

static void
cache_reset (struct extract *ex)
{
  free (ex->cache_path);
  ex->cache_path = NULL;
  if (ex->cache_fd >= 0)
    close (ex->cache_fd);
  ex->cache_fd = -1;
}

static void
extract_free (struct extract *ex)
{
  cache_reset (ex);
  ob_strset_free (&ex->created);
  for (size_t i = 0; i < ex->ndirs; i++)
    free (ex->dirs[i].path);
  free (ex->dirs);
  if (ex->a)
    archive_read_free (ex->a);
}

static char *
join (const char *a, const char *b)
{
  if (*a == '\0')
    return ob_xstrdup (b);
  if (*b == '\0')
    return ob_xstrdup (a);
  return ob_xasprintf ("%s/%s", a, b);
}

static int
kept (const struct extract *ex, const char *path)
{
  return ob_layer_path_kept ((const char *const *) ex->keep, path);
}

/* Split "a/b/c" into "a/b" and "c" ("" and "c" for "c"). */
static void
split_path (const char *path, char **dir, const char **base)
{
  const char *slash = strrchr (path, '/');
  *dir = slash ? ob_xstrndup (path, slash - path) : ob_xstrdup ("");
  *base = slash ? slash + 1 : path;
}

static void
free_canon (char **canon, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (canon[i]);
  free (canon);
}

/* Open root/canon[0]/.../canon[n-1], components known to be directories. */
static int
reopen_canon (int rootfd, char **canon, size_t n)
{
  int cur = openat (rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  for (size_t i = 0; cur >= 0 && i < n; i++)
    {
      int fd = openat (cur, canon[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      int e = errno;
      close (cur);
      errno = e;
      cur = fd;
    }
  return cur;
}

/* What RESOLVE_IN_ROOT does, in user space, for kernels or seccomp filters
 * (and valgrind) without openat2: walk one component at a time with
 * O_NOFOLLOW, expanding symlinks by hand with "/" and ".." clamped to the
 * root.  Only used when openat2 is ENOSYS; extraction is single-threaded
 * and nothing else writes below the root meanwhile. */
static int
open_in_root_slow (int rootfd, const char *path)
{
  char **canon = NULL;
  size_t n = 0;
  int links = 0;
  char *todo = ob_xstrdup (path);
  int cur = openat (rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  char *p = todo;
  int e = 0;

  while (cur >= 0 && *p)
    {
      char *end = strchr (p, '/');
      struct stat st;
      int fd;
      if (end)
        *end = '\0';
      if (*p == '\0' || strcmp (p, ".") == 0)
        ;
      else if (strcmp (p, "..") == 0)
        {
          if (n > 0)
            {
              free (canon[--n]);
              close (cur);
              cur = reopen_canon (rootfd, canon, n);
            }
        }
      else
        {
          fd = openat (cur, p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
          if (fd < 0 || fstat (fd, &st) < 0)
            {
              e = errno;
              if (fd >= 0)
                close (fd);
              break;
            }
          if (S_ISLNK (st.st_mode))
            {
              char target[PATH_MAX];
              ssize_t len = readlinkat (fd, "", target, sizeof target - 1);
              char *next;
              close (fd);
              if (len < 0 || ++links > 40)
                {
                  e = len < 0 ? errno : ELOOP;
                  break;
                }
              target[len] = '\0';
              next = ob_xasprintf ("%s/%s", target, end ? end + 1 : "");
              free (todo);
              todo = p = next;
              if (target[0] == '/')
                {
                  free_canon (canon, n);
                  canon = NULL;
                  n = 0;
                  close (cur);
                  cur = reopen_canon (rootfd, NULL, 0);
                }
              continue;
            }
          if (!S_ISDIR (st.st_mode))
            {
              close (fd);
              e = ENOTDIR;
              break;
            }
          canon = ob_xrealloc (canon, (n + 1) * sizeof (char *));
          canon[n++] = ob_xstrdup (p);
          close (cur);
          cur = fd;
        }
      if (end == NULL)
        break;
      p = end + 1;
    }
  if (cur >= 0 && e == 0)
    {
      free (todo);
      free_canon (canon, n);
      return cur;
    }
  if (e == 0)
    e = errno;
  if (cur >= 0)
    close (cur);
  free (todo);
  free_canon (canon, n);
  errno = e;
  return -1;
}

/* Open the directory `path` (relative to the root, "" for the root) with
 * every component resolved inside the root.  -1 with errno on failure. */
static int
open_in_root (int rootfd, const char *path)
{
  static bool no_openat2;
  struct open_how how = {
    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  int fd;
  /* The test suite runs the extraction cases again through the fallback. */
  if (!no_openat2 && getenv ("OBUILD_TEST_NO_OPENAT2") == NULL)
    {
      fd = (int) syscall (SYS_openat2, rootfd, *path ? path : ".", &how, sizeof how);
      if (fd >= 0 || errno != ENOSYS)
        return fd;
      no_openat2 = true;
    }
  return open_in_root_slow (rootfd, path);
}

/* Why prefix (its last component comp, in the directory cur) exists but
 * cannot be opened as a directory inside the root: a symlink leading
 * outside or nowhere, or a file, put there by the archive (or a lower
 * layer) — the input's fault, never followed out of the root. */
static int
parent_error (int cur, const char *comp, const char *prefix, const char *entry, int e, ob_error_t *err)
{
  struct stat st;
  if (fstatat (cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0)
    {
      if (S_ISLNK (st.st_mode))
        {
          char target[256];
          ssize_t n = readlinkat (cur, comp, target, sizeof target - 1);
          target[n < 0 ? 0 : n] = '\0';
          return ob_error_make (err, OB_ERR_IMAGE, 0,
                                "entry `%s`: its parent `%s` is a symlink to `%s`%s that leads to no directory inside the root",
                                entry, prefix, target, n == (ssize_t) sizeof target - 1 ? "..." : "");
        }
      if (!S_ISDIR (st.st_mode))
        return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: its parent `%s` is not a directory", entry,
                              prefix);
    }
  if (e == ELOOP)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: too many levels of symlinks in `%s`", entry, prefix);
  return ob_error_make (err, OB_ERR_STORE, e, "entry `%s`: open directory `%s`", entry, prefix);
}

/* Like open_in_root, but create missing directories (0755) one component at
 * a time, each resolved the same way.  Returns an owned fd. */
static int
open_dir (struct extract *ex, const char *path, bool create, const char *entry, ob_error_t *err)
{
  cleanup_free char *prefix = NULL;
  cleanup_close int cur = -1;
  const char *p = path;
  int fd = open_in_root (ex->rootfd, path);
  if (fd >= 0)
    return fd;
  /* missing, or a symlink or file on the way: walk it to create what is
   * missing or name what is in the way */
  if ((errno != ENOENT && errno != ENOTDIR && errno != ELOOP) || !create)
    return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: open directory `%s`", entry,
                          path);

  cur = open_in_root (ex->rootfd, "");
  if (cur < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: open root", entry);
  prefix = ob_xstrdup ("");
  while (*p)
    {
      const char *end = strchr (p, '/');
      size_t n = end ? (size_t) (end - p) : strlen (p);
      cleanup_free char *comp = ob_xstrndup (p, n);
      char *next = *prefix ? ob_xasprintf ("%s/%s", prefix, comp) : ob_xstrdup (comp);
      free (prefix);
      prefix = next;
      fd = open_in_root (ex->rootfd, prefix);
      if (fd < 0 && errno == ENOENT)
        {
          if (mkdirat (cur, comp, 0755) == 0)
            {
              /* Not subject to the umask: layers must come out the same. */
              if (fchmodat (cur, comp, 0755, 0) < 0)
                return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: chmod `%s`", entry,
                                      prefix);
              ob_strset_add (&ex->created, prefix);
            }
          else if (errno != EEXIST)
            return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: mkdir `%s`", entry,
                                  prefix);
          fd = open_in_root (ex->rootfd, prefix);
        }
      if (fd < 0)
        return parent_error (cur, comp, prefix, entry, errno, err);
      close (cur);
      cur = fd;
      p += n;
      while (*p == '/')
        p++;
    }
  return ob_steal_fd (&cur);
}

/* The parent directory of entries, cached: consecutive entries of a tar are
 * usually siblings.  The fd stays owned by the cache. */
static int
parent_fd (struct extract *ex, const char *path, const char *entry, ob_error_t *err)
{
  int fd;
  if (ex->cache_path && strcmp (ex->cache_path, path) == 0)
    return ex->cache_fd;
  fd = open_dir (ex, path, true, entry, err);
  if (fd < 0)
    return -1;
  cache_reset (ex);
  ex->cache_path = ob_xstrdup (path);
  ex->cache_fd = fd;
  return fd;
}

static bool
extract_xattr (const char *name)
{
  if (strcmp (name, "security.capability") == 0)
    return true;
  /* obuild's own xattrs are never an archive's: an owner comes from the
   * entry's uid and gid (apply_owner records it), a symlink owner's record
   * is the unpacker's own (extract_link_owner), and the device xattr comes
   * only from a mknod in a step (a forged one would be a device node in the
   * next layer) */
  return ob_str_has_prefix (name, "user.") && !ob_str_has_prefix (name, "user.overlay.")
         && strcmp (name, OB_LAYER_OWNER_XATTR) != 0 && !ob_link_owner_is_xattr (name)
         && strcmp (name, OB_LAYER_DEVICE_XATTR) != 0;
}

/* Best effort: a file system without user xattrs must not fail ADD. */
static void
apply_xattrs (int fd, struct archive_entry *e)
{
  const char *name;
  const void *value;
  size_t size;
  if (archive_entry_xattr_reset (e) == 0)
    return;
  while (archive_entry_xattr_next (e, &name, &value, &size) == ARCHIVE_OK)
    if (extract_xattr (name))
      fsetxattr (fd, name, value, size, 0);
}

/* Owners only when asked, and only where the process may: EPERM/EINVAL
 * (unmapped ids in a user namespace) are not errors. */
static int
apply_owner (struct extract *ex, int fd, int dirfd, const char *base, struct archive_entry *e,
             const char *raw, ob_error_t *err)
{
  int r;
  if (!ex->same_owner)
    return 0;
  if (fd >= 0)
    r = ob_layer_chown_at (fd, "", archive_entry_uid (e), archive_entry_gid (e), AT_EMPTY_PATH);
  else
    r = ob_layer_chown_at (dirfd, base, archive_entry_uid (e), archive_entry_gid (e),
                           AT_SYMLINK_NOFOLLOW);
  if (r < 0 && errno != EPERM && errno != EINVAL)
    return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: chown", raw);
  if (r < 0 && (archive_entry_uid (e) != 0 || archive_entry_gid (e) != 0))
    {
      /* The user namespace cannot represent this owner (single-ID mode):
       * record it where the layer writer (and overlay copy-up) keep it. */
      char v[64];
      snprintf (v, sizeof v, "%lu:%lu", (unsigned long) archive_entry_uid (e),
                (unsigned long) archive_entry_gid (e));
      if (fd >= 0)
        fsetxattr (fd, OB_LAYER_OWNER_XATTR, v, strlen (v), 0);
      else
        {
          cleanup_close int ofd = openat (dirfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
          struct stat ost;
          if (ofd >= 0 && fstat (ofd, &ost) == 0 && (S_ISREG (ost.st_mode) || S_ISDIR (ost.st_mode)))
            fsetxattr (ofd, OB_LAYER_OWNER_XATTR, v, strlen (v), 0);
        }
    }
  return 0;
}

/* A symlink's owner the user namespace cannot represent (single-ID mode,
 * where apply_owner's chown fails): recorded on its directory
 * (link_owner.h), as apply_owner records a file's in the file; a link
 * that has its owner drops a record an earlier link of that name left.
 * Best effort, as apply_owner's. */
static void
extract_link_owner (struct extract *ex, int pfd, const char *base, const char *target,
                    struct archive_entry *e)
{
  uid_t uid = (uid_t) archive_entry_uid (e);
  gid_t gid = (gid_t) archive_entry_gid (e);
  struct stat st;
  if (!ex->same_owner || fstatat (pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return;
  if (st.st_uid == uid && st.st_gid == gid)
    uid = gid = 0;
  (void) ob_link_owner_set (pfd, base, target, (uint32_t) uid, (uint32_t) gid);
}

static struct timespec
entry_mtime (struct archive_entry *e)
{
  struct timespec ts = { 0, 0 };
  if (archive_entry_mtime_is_set (e))
    {
      ts.tv_sec = archive_entry_mtime (e);
      ts.tv_nsec = archive_entry_mtime_nsec (e);
    }
  return ts;
}

/* Clear the directory dirpath (relative to the root) of everything this
 * archive did not create; directories it created are cleared recursively,
 * since what a lower layer had in them is hidden too. */
static int
clear_dir (struct extract *ex, int dirfd, const char *dirpath, const char *entry, ob_error_t *err)
{
  int lfd = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_dir DIR *d = NULL;
  cleanup_strv char **names = NULL;
  size_t n = 0;
  struct dirent *de;
  if (lfd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: open `%s`", entry, dirpath);
  d = fdopendir (lfd);
  if (d == NULL)
    {
      int e = errno;
      close (lfd);
      return ob_error_make (err, OB_ERR_STORE, e, "entry `%s`: open `%s`", entry, dirpath);
    }
  while ((de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      ob_strv_push (&names, &n, ob_xstrdup (de->d_name));

  for (size_t i = 0; names && names[i]; i++)
    {
      cleanup_free char *child = join (dirpath, names[i]);
      struct stat st;
      int k = kept (ex, child);
      if (k == 1)
        continue;
      if (!ob_strset_has (&ex->created, child) && k == 0)
        {
          if (ob_rm_rf_at (dirfd, names[i], err) < 0)
            return ob_error_wrap (err, "entry `%s`", entry);
          continue;
        }
      if (fstatat (dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode))
        {
          cleanup_close int cfd
              = openat (dirfd, names[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (cfd < 0)
            return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: open `%s`", entry,
                                  child);
          if (clear_dir (ex, cfd, child, entry, err) < 0)
            return -1;
        }
    }
  return 0;
}

static int
apply_whiteout (struct extract *ex, const char *raw, const char *dir, const char *base,
                ob_error_t *err)
{
  const char *victim = base + 4;
  cleanup_close int fd = -1;
  cleanup_free char *vpath = NULL;

  if (strcmp (base, ".wh..wh..opq") == 0)
    {
      fd = open_dir (ex, dir, false, raw, err);
      if (fd < 0)
        {
          /* Nothing below to hide. */
          if (*err && ((*err)->status == ENOENT || (*err)->status == ENOTDIR))
            {
              ob_error_free (err);
              return 0;
            }
          return -1;
        }
      cache_reset (ex);
      return clear_dir (ex, fd, dir, raw, err);
    }
  if (*victim == '\0' || strcmp (victim, ".") == 0 || strcmp (victim, "..") == 0)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: invalid whiteout", raw);
  if (ob_str_has_prefix (victim, ".wh."))
    return 0; /* other aufs metadata (.wh..wh.plnk, ...): nothing to apply */

  /* Whiteouts hide lower layers only, never this layer's own entries. */
  vpath = join (dir, victim);
  if (ob_strset_has (&ex->created, vpath))
    return 0;
  if (kept (ex, vpath) != 0)
    return 0; /* a path the caller keeps (or one on the way to it) */
  fd = open_in_root (ex->rootfd, dir);
  if (fd < 0)
    {
      if (errno == ENOENT || errno == ENOTDIR)
        return 0;
      return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: open `%s`", raw, dir);
    }
  cache_reset (ex);
  if (ob_rm_rf_at (fd, victim, err) < 0)
    return ob_error_wrap (err, "entry `%s`", raw);
  return 0;
}

/* For an overlay lower directory: ".wh.x" becomes the character device 0:0
 * overlayfs reads as a whiteout (creating it is allowed in a user
 * namespace), ".wh..wh..opq" the opaque xattr (user.* as the build mounts
 * with userxattr). */
static int
overlay_whiteout (struct extract *ex, const char *raw, const char *dir, const char *base,
                  ob_error_t *err)
{
  const char *victim = base + 4;
  cleanup_close int fd = -1;
  if (strcmp (base, ".wh..wh..opq") == 0)
    {
      fd = open_dir (ex, dir, true, raw, err);
      if (fd < 0)
        return -1;
      /* unpacking onto earlier layers (squash): hide what they put here */
      cache_reset (ex);
      if (clear_dir (ex, fd, dir, raw, err) < 0)
        return -1;
      /* fd is an O_PATH descriptor: set the xattr through its magic link */
      char procpath[64];
      snprintf (procpath, sizeof procpath, "/proc/self/fd/%d", fd);
      if (setxattr (procpath, "user.overlay.opaque", "y", 1, 0) < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: set opaque xattr", raw);
      return 0;
    }
  if (*victim == '\0' || strcmp (victim, ".") == 0 || strcmp (victim, "..") == 0)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: invalid whiteout", raw);
  if (ob_str_has_prefix (victim, ".wh."))
    return 0;
  fd = open_dir (ex, dir, true, raw, err);
  if (fd < 0)
    return -1;
  if (ob_rm_rf_at (fd, victim, err) < 0)
    return ob_error_wrap (err, "entry `%s`", raw);
  if (mknodat (fd, victim, S_IFCHR | 0000, makedev (0, 0)) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: create whiteout", raw);
  return 0;
}

static int
write_data (struct extract *ex, int fd, struct archive_entry *e, const char *raw, ob_error_t *err)
{
  int64_t end = 0;
  int64_t size = archive_entry_size_is_set (e) ? archive_entry_size (e) : 0;
  for (;;)
    {
      const void *buf;
      size_t n;
      la_int64_t off;
      const char *p;
      int r = archive_read_data_block (ex->a, &buf, &n, &off);
      if (r == ARCHIVE_EOF)
        break;
      if (r < ARCHIVE_WARN)
        return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: %s", raw,
                              archive_error_string (ex->a));
      p = buf;
      while (n > 0)
        {
          ssize_t w = pwrite (fd, p, n, off);
          if (w < 0)
            {
              if (errno == EINTR)
                continue;
              return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: write", raw);
            }
          p += w;
          n -= w;
          off += w;
        }
      if (off > end)
        end = off;
    }
  if (size > end && ftruncate (fd, size) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: truncate", raw);
  return 0;
}

/* Link pfd/base to tfull (relative to the root), which must exist inside the
 * root: created earlier by this archive, or already there. */
static int
make_hardlink (struct extract *ex, const char *raw, const char *target, const char *tfull, int pfd,
               const char *base, ob_error_t *err)
{
  cleanup_free char *tdir = NULL;
  cleanup_close int tfd = -1;
  const char *tbase;
  struct stat st;

  split_path (tfull, &tdir, &tbase);
  tfd = open_in_root (ex->rootfd, tdir);
  if (tfd < 0 || fstatat (tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: hardlink target `%s` does not exist",
                          raw, target);
  if (S_ISDIR (st.st_mode))
    return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: hardlink to directory `%s`", raw,
                          target);
  if (linkat (tfd, tbase, pfd, base, 0) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: link to `%s`", raw,
                          target);
  return 0;
}

/* The placeholder of a device the process cannot make: an empty regular
 * file carrying OB_LAYER_DEVICE_XATTR (written after the archive's xattrs,
 * which never include it: apply_xattrs drops it).  Where the file system
 * has no user xattrs, nothing, as before placeholders. */
static int
make_placeholder (struct extract *ex, int pfd, const char *base, mode_t type, dev_t dev,
                  mode_t perm, struct archive_entry *e, const char *raw,
                  const struct timespec ts[2], ob_error_t *err)
{
  cleanup_close int fd = openat (pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  char v[32];
  if (fd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: create", raw);
  if (apply_owner (ex, fd, -1, NULL, e, raw, err) < 0)
    return -1;
  apply_xattrs (fd, e);
  ob_layer_device_format (v, sizeof v, type, dev);
  if (fsetxattr (fd, OB_LAYER_DEVICE_XATTR, v, strlen (v), 0) < 0)
    {
      int e2 = errno;
      unlinkat (pfd, base, 0);
      if (e2 == ENOTSUP)
        return 0;
      return ob_error_make (err, OB_ERR_STORE, e2, "entry `%s`: device placeholder", raw);
    }
  if (fchmod (fd, perm) < 0 || futimens (fd, ts) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: device placeholder", raw);
  return 0;
}

static int
extract_entry (struct extract *ex, const char *dest, struct archive_entry *e, ob_error_t *err)
{
  const char *raw = archive_entry_pathname (e);
  cleanup_free char *name = NULL;
  cleanup_free char *full = NULL;
  cleanup_free char *dir = NULL;
  const char *base;
  mode_t type = archive_entry_filetype (e);
  mode_t perm = archive_entry_perm (e) & 07777;
  struct timespec ts[2];
  struct stat st;
  cleanup_free char *link_target = NULL;
  cleanup_free char *link_full = NULL;
  bool exists, keep_dir;
  int pfd;

  if (raw == NULL)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "entry without a name");
  if (strlen (raw) > MAX_NAME)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%.64s...`: name longer than %d bytes", raw,
                          MAX_NAME);
  if (ob_layer_clean_name (raw, &name, err) < 0)
    return -1;
  if (*name == '\0')
    return 0; /* the root entry ("./"): leave the destination alone */
  full = join (dest, name);
  split_path (full, &dir, &base);
  if (ex->keep)
    {
      int k = kept (ex, full);
      if (k == 1 || (k == 2 && type != AE_IFDIR))
        return 0; /* kept as it is; a directory on the way stays one */
    }

  if (ex->whiteouts && ob_str_has_prefix (base, ".wh."))
    return apply_whiteout (ex, raw, dir, base, err);
  if (ex->overlay && ob_str_has_prefix (base, ".wh."))
    return overlay_whiteout (ex, raw, dir, base, err);

  if (archive_entry_hardlink (e) == NULL)
    switch (type)
      {
      case AE_IFREG:
      case AE_IFDIR:
      case AE_IFLNK:
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
        break;
      default:
        return 0; /* sockets and unknown types are not extracted */
      }

  if (archive_entry_hardlink (e))
    {
      if (ob_layer_clean_name (archive_entry_hardlink (e), &link_target, err) < 0)
        return ob_error_wrap (err, "entry `%s`: hardlink", raw);
      if (*link_target == '\0')
        return ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: hardlink to the root", raw);
      link_full = join (dest, link_target);
      if (strcmp (link_full, full) == 0)
        return 0; /* a link to itself: nothing to do */
    }

  pfd = parent_fd (ex, dir, raw, err);
  if (pfd < 0)
    return -1;

  exists = fstatat (pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
  keep_dir = exists && S_ISDIR (st.st_mode) && type == AE_IFDIR
             && archive_entry_hardlink (e) == NULL;
  if (exists && !keep_dir)
    {
      if (S_ISDIR (st.st_mode))
        {
          /* (pfd, the cached parent, is not below what is removed.) */
          if (ob_rm_rf_at (pfd, base, err) < 0)
            return ob_error_wrap (err, "entry `%s`", raw);
        }
      else if (unlinkat (pfd, base, 0) < 0 && errno != ENOENT)
        return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: remove existing", raw);
    }

  ts[0] = ts[1] = entry_mtime (e);

  if (archive_entry_hardlink (e))
    {
      if (make_hardlink (ex, raw, archive_entry_hardlink (e), link_full, pfd, base, err) < 0)
        return -1;
      ob_strset_add (&ex->created, full);
      return 0;
    }

  switch (type)
    {
    case AE_IFDIR:
      {
        cleanup_close int dfd = -1;
        struct dir_fix *fix;
        if (!keep_dir && mkdirat (pfd, base, 0700) < 0)
          return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: mkdir", raw);
        if (apply_owner (ex, -1, pfd, base, e, raw, err) < 0)
          return -1;
        dfd = openat (pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd >= 0)
          apply_xattrs (dfd, e);
        if (ex->ndirs == ex->capdirs)
          {
            ex->capdirs = ex->capdirs ? ex->capdirs * 2 : 64;
            ex->dirs = ob_xrealloc (ex->dirs, ex->capdirs * sizeof *ex->dirs);
          }
        fix = &ex->dirs[ex->ndirs++];
        fix->path = ob_xstrdup (full);
        fix->mode = perm;
        fix->mtime = ts[1];
        break;
      }
    case AE_IFREG:
      {
        cleanup_close int fd
            = openat (pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
          return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: create", raw);
        if (write_data (ex, fd, e, raw, err) < 0)
          return -1;
        /* chown first: it clears setuid/setgid and file capabilities. */
        if (apply_owner (ex, fd, -1, NULL, e, raw, err) < 0)
          return -1;
        if (fchmod (fd, perm) < 0)
          return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: chmod", raw);
        apply_xattrs (fd, e);
        if (futimens (fd, ts) < 0)
          return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: set times", raw);
        break;
      }
    case AE_IFLNK:
      {
        const char *target = archive_entry_symlink (e);
        if (symlinkat (target ? target : "", pfd, base) < 0)
          return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: symlink", raw);
        if (apply_owner (ex, -1, pfd, base, e, raw, err) < 0)
          return -1;
        extract_link_owner (ex, pfd, base, target ? target : "", e);
        utimensat (pfd, base, ts, AT_SYMLINK_NOFOLLOW);
        break;
      }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
      {
        dev_t dev = type == AE_IFIFO
                        ? 0
                        : makedev (archive_entry_rdevmajor (e), archive_entry_rdevminor (e));
        if (mknodat (pfd, base, type | perm, dev) < 0)
          {
            /* Rootless: a user namespace cannot make a device.  A
             * placeholder stands for it, as for a step's mknod in
             * single-ID mode (layer_device.c), which the layer writers
             * write as the device: an ADD, a --squash, a COPY --from of it
             * keeps it, and a step sees a file there. */
            if (type != AE_IFIFO && (errno == EPERM || errno == EACCES))
              {
                if (make_placeholder (ex, pfd, base, type, dev, perm, e, raw, ts, err) < 0)
                  return -1;
                break;
              }
            return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: mknod", raw);
          }
        if (apply_owner (ex, -1, pfd, base, e, raw, err) < 0)
          return -1;
        if (fchmodat (pfd, base, perm, 0) < 0)
          return ob_error_make (err, OB_ERR_STORE, errno, "entry `%s`: chmod", raw);
        utimensat (pfd, base, ts, AT_SYMLINK_NOFOLLOW);
        break;
      }
    default:
      return 0;
    }
  ob_strset_add (&ex->created, full);
  return 0;
}

/* Directory modes and mtimes last: creating their contents changed the
 * mtimes, and a read-only directory must stay writable until then.  In
 * reverse order, so children are done before their parents. */
static int
fix_dirs (struct extract *ex, ob_error_t *err)
{
  for (size_t i = ex->ndirs; i-- > 0;)
    {
      struct dir_fix *fix = &ex->dirs[i];
      cleanup_free char *dir = NULL;
      cleanup_close int fd = -1;
      const char *base;
      struct timespec ts[2] = { fix->mtime, fix->mtime };
      struct stat st;
      split_path (fix->path, &dir, &base);
      fd = open_in_root (ex->rootfd, dir);
      if (fd < 0 || fstatat (fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
        continue; /* replaced or removed by a later entry */
      if (fchmodat (fd, base, fix->mode, 0) < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "chmod `%s`", fix->path);
      if (utimensat (fd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "set times of `%s`", fix->path);
    }
  return 0;
}

static int extract_run (struct extract *ex, int infd, const char *dest, ob_error_t *err);

int
ob_layer_extract (int infd, int rootfd, const char *dest, bool whiteouts, bool same_owner,
                  ob_error_t *err)
{
  struct extract ex = {
    .rootfd = rootfd,
    .whiteouts = whiteouts,
    .same_owner = same_owner,
    .cache_fd = -1,
  };
  return extract_run (&ex, infd, dest, err);
}

int
ob_layer_extract_keep (int infd, int rootfd, const char *const *keep, ob_error_t *err)
{
  struct extract ex = {
    .rootfd = rootfd,
    .whiteouts = true,
    .same_owner = true,
    .keep = keep,
    .cache_fd = -1,
  };
  return extract_run (&ex, infd, "/", err);
}

int
ob_layer_unpack_overlay (int infd, int rootfd, ob_layer_entry_fn on_entry, void *on_entry_data, ob_error_t *err)
{
  return ob_layer_unpack_overlay_digest (infd, rootfd, on_entry, on_entry_data, NULL, err);
}

int
ob_layer_unpack_overlay_digest (int infd, int rootfd, ob_layer_entry_fn on_entry, void *on_entry_data,
                                char diff_id[72], ob_error_t *err)
{
  struct extract ex = {
    .rootfd = rootfd,
    .overlay = true,
    .same_owner = true,
    .cache_fd = -1,
    .on_entry = on_entry,
    .on_entry_data = on_entry_data,
    .digest = diff_id,
  };
  int r = extract_run (&ex, infd, "/", err);
  return r < 0 ? r : ex.digest_taken;
}

static int
extract_run (struct extract *ex_, int infd, const char *dest, ob_error_t *err)
{
  cleanup_locale locale_t old_locale = ob_layer_enter_utf8 ();
  struct extract ex = *ex_;
  cleanup_free char *cdest = NULL;
  struct ob_layer_stream *stream = NULL;
  int ret = 0;

  if (ob_layer_clean_name (dest ? dest : "", &cdest, err) < 0)
    {
      ob_error_free (err);
      return ob_error_make (err, OB_ERR_USAGE, 0, "destination `%s` contains ..", dest);
    }
  if (ob_layer_open_reader_digest (infd, &ex.a, ex.digest ? &stream : NULL, err) < 0)
    return -1;
  if (*cdest)
    {
      int fd = open_dir (&ex, cdest, true, dest, err);
      if (fd < 0)
        {
          extract_free (&ex);
          return -1;
        }
      close (fd);
    }
  for (;;)
    {
      struct archive_entry *e;
      int r = archive_read_next_header (ex.a, &e);
      if (r == ARCHIVE_EOF)
        break;
      if (r < ARCHIVE_WARN)
        {
          const char *msg = archive_error_string (ex.a);
          ret = ob_error_make (err, OB_ERR_IMAGE, 0, "read archive: %s",
                               msg ? msg : "unknown error");
          break;
        }
      ob_layer_entry_tell (ex.on_entry, ex.on_entry_data, e);
      ret = extract_entry (&ex, cdest, e, err);
      if (ret < 0)
        break;
    }
  if (ret == 0)
    ret = fix_dirs (&ex, err);
  if (ret == 0 && ex.digest)
    {
      /* before the archive (and the stream with it) is freed */
      int d = ob_layer_archive_digest (stream, ex.digest, err);
      if (d < 0)
        ret = -1;
      else
        ex_->digest_taken = d;
    }
  extract_free (&ex);
  return ret;
}

int
ob_layer_check_hardlinks (int infd, ob_error_t *err)
{
  cleanup_locale locale_t old_locale = ob_layer_enter_utf8 ();
  struct archive *a = NULL;
  struct ob_strset files = { 0 };
  int ret = 0;

  if (ob_layer_open_reader (infd, &a, err) < 0)
    return -1;
  for (;;)
    {
      struct archive_entry *e;
      cleanup_free char *name = NULL;
      cleanup_free char *target = NULL;
      const char *raw, *link;
      int r = archive_read_next_header (a, &e);
      if (r == ARCHIVE_EOF)
        break;
      if (r < ARCHIVE_WARN)
        {
          const char *msg = archive_error_string (a);
          ret = ob_error_make (err, OB_ERR_IMAGE, 0, "read archive: %s", msg ? msg : "unknown error");
          break;
        }
      raw = archive_entry_pathname (e);
      link = archive_entry_hardlink (e);
      if (raw == NULL || ob_layer_clean_name (raw, &name, err) < 0)
        {
          ret = raw ? -1 : ob_error_make (err, OB_ERR_IMAGE, 0, "entry without a name");
          break;
        }
      if (link)
        {
          if (ob_layer_clean_name (link, &target, err) < 0)
            {
              ret = ob_error_wrap (err, "entry `%s`: hardlink", raw);
              break;
            }
          if (!ob_strset_has (&files, target))
            {
              ret = ob_error_make (err, OB_ERR_IMAGE, 0, "entry `%s`: hardlink to `%s`, which is no earlier file of the archive",
                                   raw, link);
              break;
            }
        }
      else if (archive_entry_filetype (e) == AE_IFDIR)
        continue;
      ob_strset_add (&files, name);
    }
  ob_strset_free (&files);
  archive_read_free (a);
  return ret;
}

int
ob_layer_path_kept (const char *const *keep, const char *path)
{
  size_t n;
  while (*path == '/')
    path++;
  n = strlen (path);
  for (size_t i = 0; keep && keep[i]; i++)
    {
      const char *k = keep[i];
      size_t kn;
      while (*k == '/')
        k++;
      kn = strlen (k);
      if (kn == 0)
        continue;
      if (strncmp (path, k, kn) == 0 && (path[kn] == '\0' || path[kn] == '/'))
        return 1;
      if (n == 0 || (n < kn && strncmp (k, path, n) == 0 && k[n] == '/'))
        return 2;
    }
  return 0;
}
