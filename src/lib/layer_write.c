/* layer_write: the entries of a layer written from disk, through the layer
 * writer of layer.c: an upper directory's change list (ob_layer_write: files,
 * whiteouts, opaque markers) or a COPY's plan streamed from its sources
 * (ob_layer_write_sources).  Owners (with the owner policy of single-ID
 * mode), the xattrs kept, hardlinks and device placeholders are read here. */
#include "config.h"
#include <obuild/layer.h>
#include <obuild/link_owner.h>
#include <obuild/util.h>
#include "layer_priv.h"
#include "pgzip.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

/* ---- helpers of both writers: xattrs, hardlinks ---- */

static int
cmp_strp (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Where xattrs are read: an open descriptor (fd >= 0), else a path whose
 * final symlink is not followed. */
struct xsrc
{
  int fd;
  const char *path;
};

static ssize_t
xs_list (const struct xsrc *x, char *buf, size_t size)
{
  return x->fd >= 0 ? flistxattr (x->fd, buf, size) : llistxattr (x->path, buf, size);
}

static ssize_t
xs_get (const struct xsrc *x, const char *name, void *buf, size_t size)
{
  return x->fd >= 0 ? fgetxattr (x->fd, name, buf, size) : lgetxattr (x->path, name, buf, size);
}

/* Copy the xattrs worth keeping (user.*, security.capability when caps)
 * into e, sorted by name so the output is stable; the owner xattr, when
 * owner is true, sets e's owner instead. */
static int
add_xattrs (struct archive_entry *e, const struct xsrc *x, bool owner, bool caps, const char *display,
            int kind, ob_error_t *err)
{
  cleanup_free char *list = NULL;
  cleanup_free char **names = NULL;
  size_t n = 0;
  ssize_t len;

  for (;;)
    {
      len = xs_list (x, NULL, 0);
      if (len < 0)
        {
          if (errno == ENOTSUP || errno == ENODATA)
            return 0;
          return ob_error_make (err, kind, errno, "list xattrs of `%s`", display);
        }
      if (len == 0)
        return 0;
      free (list);
      list = ob_xmalloc (len);
      len = xs_list (x, list, len);
      if (len >= 0)
        break;
      if (errno != ERANGE)
        return ob_error_make (err, kind, errno, "list xattrs of `%s`", display);
    }

  names = ob_xmalloc ((len + 1) * sizeof (char *));
  for (char *p = list; p < list + len; p += strlen (p) + 1)
    {
      if (strcmp (p, OB_LAYER_OWNER_XATTR) == 0)
        {
          /* An owner the user namespace could not represent (single-ID
           * mode): it goes into the tar header, not into the layer. */
          char v[64];
          ssize_t vl = owner ? xs_get (x, p, v, sizeof v - 1) : -1;
          unsigned long u, g;
          if (vl > 0)
            {
              v[vl] = '\0';
              if (sscanf (v, "%lu:%lu", &u, &g) == 2)
                {
                  archive_entry_set_uid (e, (la_int64_t) u);
                  archive_entry_set_gid (e, (la_int64_t) g);
                }
            }
          continue;
        }
      if (ob_layer_keep_xattr (p, caps))
        names[n++] = p;
    }
  qsort (names, n, sizeof (char *), cmp_strp);

  for (size_t i = 0; i < n; i++)
    {
      cleanup_free char *value = NULL;
      ssize_t vlen;
      for (;;)
        {
          vlen = xs_get (x, names[i], NULL, 0);
          if (vlen < 0)
            break;
          free (value);
          value = ob_xmalloc (vlen ? vlen : 1);
          vlen = xs_get (x, names[i], value, vlen);
          if (vlen >= 0 || errno != ERANGE)
            break;
        }
      if (vlen < 0)
        {
          if (errno == ENODATA || errno == ENOTSUP)
            continue;
          return ob_error_make (err, kind, errno, "read xattr `%s` of `%s`", names[i], display);
        }
      archive_entry_xattr_add_entry (e, names[i], value, vlen);
    }
  return 0;
}

/* add_xattrs of dirfd/name as an upper directory holds them. */
static int
add_disk_xattrs (struct archive_entry *e, int dirfd, const char *name, const char *display,
                 ob_error_t *err)
{
  cleanup_free char *path = ob_xasprintf ("/proc/self/fd/%d/%s", dirfd, name);
  struct xsrc x = { -1, path };
  return add_xattrs (e, &x, true, true, display, OB_ERR_STORE, err);
}

/* (dev, ino) -> first path, for hardlink detection. */
struct ino_ent
{
  dev_t dev;
  ino_t ino;
  char *path;
  struct ino_ent *next;
};

struct ino_map
{
  struct ino_ent **b;
  size_t nb;
  size_t n;
};

static size_t
ino_hash (dev_t dev, ino_t ino, size_t nb)
{
  uint64_t h = (uint64_t) ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t) dev;
  return (size_t) (h ^ (h >> 29)) & (nb - 1);
}

static const char *
ino_map_lookup (struct ino_map *m, dev_t dev, ino_t ino)
{
  if (m->nb == 0)
    return NULL;
  for (struct ino_ent *x = m->b[ino_hash (dev, ino, m->nb)]; x; x = x->next)
    if (x->dev == dev && x->ino == ino)
      return x->path;
  return NULL;
}

static void
ino_map_add (struct ino_map *m, dev_t dev, ino_t ino, const char *path)
{
  struct ino_ent *x;
  size_t h;
  if (m->n >= m->nb)
    {
      size_t nb = m->nb ? m->nb * 4 : 256;
      struct ino_ent **b = ob_xmalloc0 (nb * sizeof *b);
      for (size_t i = 0; i < m->nb; i++)
        while (m->b[i])
          {
            struct ino_ent *y = m->b[i];
            m->b[i] = y->next;
            h = ino_hash (y->dev, y->ino, nb);
            y->next = b[h];
            b[h] = y;
          }
      free (m->b);
      m->b = b;
      m->nb = nb;
    }
  x = ob_xmalloc (sizeof *x);
  x->dev = dev;
  x->ino = ino;
  x->path = ob_xstrdup (path);
  h = ino_hash (dev, ino, m->nb);
  x->next = m->b[h];
  m->b[h] = x;
  m->n++;
}

static void
ino_map_free (struct ino_map *m)
{
  for (size_t i = 0; i < m->nb; i++)
    while (m->b[i])
      {
        struct ino_ent *y = m->b[i];
        m->b[i] = y->next;
        free (y->path);
        free (y);
      }
  free (m->b);
  m->b = NULL;
  m->nb = m->n = 0;
}

/* ---- device placeholders (single-ID mode's mknod; layer_device.c) ---- */

/* A regular file of an upper directory carrying a valid device xattr (a
 * placeholder) becomes that device in e: size 0, its content not written.
 * A malformed value leaves it a regular file (the xattr is never written:
 * ob_layer_keep_xattr). */
static bool
device_entry (struct archive_entry *e, int dirfd, const char *base, const struct stat *st)
{
  cleanup_free char *p = ob_xasprintf ("/proc/self/fd/%d/%s", dirfd, base);
  char v[32];
  ssize_t n = lgetxattr (p, OB_LAYER_DEVICE_XATTR, v, sizeof v);
  return n > 0 && ob_layer_device_entry (e, v, (size_t) n, st->st_mode);
}

/* device_entry for a source open at fd (COPY --from). */
static bool
fd_device_entry (struct archive_entry *e, int fd, const struct stat *st)
{
  char v[32];
  ssize_t n = fgetxattr (fd, OB_LAYER_DEVICE_XATTR, v, sizeof v);
  return n > 0 && ob_layer_device_entry (e, v, (size_t) n, st->st_mode);
}

/* ---- ob_layer_write ---- */

static int
write_marker (struct ob_layer_writer *lw, const char *dir, const char *base,
              const struct ob_layer_opts *opts, ob_error_t *err)
{
  cleanup_entry struct archive_entry *e = archive_entry_new ();
  cleanup_free char *name = *dir ? ob_xasprintf ("%s/%s", dir, base) : ob_xstrdup (base);
  if (e == NULL)
    ob_oom ();
  archive_entry_set_pathname (e, name);
  archive_entry_set_mode (e, AE_IFREG | 0);
  archive_entry_set_uid (e, 0);
  archive_entry_set_gid (e, 0);
  archive_entry_set_size (e, 0);
  archive_entry_set_mtime (e, opts->clamp_mtime ? opts->mtime_max : 0, 0);
  return ob_layer_writer_add (lw, e, err);
}

static int
write_whiteout (struct ob_layer_writer *lw, const char *path, const struct ob_layer_opts *opts,
                ob_error_t *err)
{
  const char *slash = strrchr (path, '/');
  cleanup_free char *dir = slash ? ob_xstrndup (path, slash - path) : ob_xstrdup ("");
  cleanup_free char *base = ob_xasprintf (".wh.%s", slash ? slash + 1 : path);
  return write_marker (lw, dir, base, opts, err);
}

/* The entry's data (its header written).  With parallel gzip, a file of
 * OB_LAYER_SPLIT_MIN bytes or more starts a member and its padding ends
 * one, so that its members depend on its content alone; those made while
 * the step ran (pre, or NULL) are offered block by block. */
static int
write_file_data (struct ob_layer_writer *lw, int fd, int64_t size, const char *path,
                 const struct precomp_file *pre, ob_error_t *err)
{
  int64_t done = 0;
  bool split = lw->pgz && size >= OB_LAYER_SPLIT_MIN;
  size_t block = ob_pgzip_block_size ();
  if (split && ob_pgzip_cut (lw->pgz, err) < 0)
    return -1;
  while (done < size)
    {
      size_t want = size - done < OB_LAYER_CHUNK ? (size_t) (size - done) : OB_LAYER_CHUNK;
      ssize_t r;
      if (pre && done % (int64_t) block == 0
          && ob_layer_precomp_offer (lw->opts->precomp, pre, lw->pgz, (uint64_t) (done / (int64_t) block), err) < 0)
        return -1;
      r = read (fd, lw->dbuf, want);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          return ob_error_make (err, OB_ERR_STORE, errno, "read `%s`", path);
        }
      if (r == 0)
        return ob_error_make (err, OB_ERR_STORE, 0, "`%s` changed while writing the layer",
                              path);
      if (ob_layer_writer_data (lw, lw->dbuf, r, err) < 0)
        return ob_error_wrap (err, "`%s`", path);
      done += r;
    }
  if (split)
    {
      /* the padding, then the cut */
      if (ob_layer_writer_end_entry (lw, err) < 0)
        return ob_error_wrap (err, "`%s`", path);
      if (ob_pgzip_cut (lw->pgz, err) < 0)
        return -1;
    }
  return 0;
}

static bool owners_unmapped;

/* A symlink's owner the user namespace could not represent (single-ID
 * mode): recorded on its directory (link_owner.h) for this very link (its
 * target), as a file's is in the file's OB_LAYER_OWNER_XATTR. */
static void
link_owner (struct archive_entry *e, int dirfd, const char *name, const char *target)
{
  uint32_t uid, gid;
  if (ob_link_owner_get (dirfd, name, target, &uid, &gid))
    {
      archive_entry_set_uid (e, (la_int64_t) uid);
      archive_entry_set_gid (e, (la_int64_t) gid);
    }
}

void
ob_layer_set_owners_unmapped (bool unmapped)
{
  owners_unmapped = unmapped;
}

bool
ob_layer_owners_unmapped (void)
{
  return owners_unmapped;
}

int
ob_layer_chown_at (int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
  if (owners_unmapped)
    {
      if (uid == 0 && gid == 0)
        return 0;
      errno = EPERM;
      return -1;
    }
  return fchownat (dirfd, path, uid, gid, flags);
}

static int
write_fs_entry (struct ob_layer_writer *lw, int upperfd, const char *path, struct ino_map *links,
                const struct ob_layer_opts *opts, ob_error_t *err)
{
  cleanup_entry struct archive_entry *e = archive_entry_new ();
  cleanup_close int fd = -1;
  cleanup_free char *name = NULL;
  const char *slash = strrchr (path, '/');
  cleanup_free char *dir = slash ? ob_xstrndup (path, slash - path) : ob_xstrdup (".");
  int dirfd;
  const char *base = slash ? slash + 1 : path;
  const char *link_to = NULL;
  struct stat st;

  if (e == NULL)
    ob_oom ();
  if (lw->dirfd < 0 || strcmp (lw->dir, dir) != 0)
    {
      /* a path walk per entry is what the layer costs on an overlay (the
       * container's root with --isolation=container): once a directory */
      if (lw->dirfd >= 0)
        close (lw->dirfd);
      free (lw->dir);
      lw->dir = NULL;
      lw->dirfd = openat (upperfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (lw->dirfd < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", dir);
      lw->dir = ob_xstrdup (dir);
    }
  dirfd = lw->dirfd;
  if (fstatat (dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "stat `%s`", path);

  name = S_ISDIR (st.st_mode) ? ob_xasprintf ("%s/", path) : ob_xstrdup (path);
  archive_entry_set_pathname (e, name);
  archive_entry_set_mode (e, st.st_mode);
  /* unmapped: every file on disk is the invoking user's; the owner is
   * root unless the xattr below says otherwise */
  archive_entry_set_uid (e, owners_unmapped ? 0 : st.st_uid);
  archive_entry_set_gid (e, owners_unmapped ? 0 : st.st_gid);
  archive_entry_set_uname (e, NULL);
  archive_entry_set_gname (e, NULL);
  ob_layer_set_mtime (e, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, opts);

  switch (st.st_mode & S_IFMT)
    {
    case S_IFREG:
      if (st.st_nlink > 1)
        {
          link_to = ino_map_lookup (links, st.st_dev, st.st_ino);
          if (link_to == NULL)
            ino_map_add (links, st.st_dev, st.st_ino, path);
        }
      if (link_to)
        {
          archive_entry_set_hardlink (e, link_to);
          archive_entry_set_size (e, 0);
        }
      else
        {
          /* a device's placeholder (single-ID mode) is asked of the open
           * file, with no second lookup of its name; one that cannot be
           * opened (mknod -m 000) by its name */
          fd = openat (dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
          if (fd < 0)
            {
              int e2 = errno;
              if (device_entry (e, dirfd, base, &st))
                break;
              return ob_error_make (err, OB_ERR_STORE, e2, "open `%s`", path);
            }
          if (fd_device_entry (e, fd, &st))
            {
              close (ob_steal_fd (&fd));
              break;
            }
          archive_entry_set_size (e, st.st_size);
        }
      break;
    case S_IFLNK:
      {
        cleanup_free char *target = ob_xmalloc (st.st_size + 1);
        ssize_t r = readlinkat (dirfd, base, target, st.st_size + 1);
        if (r < 0)
          return ob_error_make (err, OB_ERR_STORE, errno, "readlink `%s`", path);
        if (r > st.st_size)
          return ob_error_make (err, OB_ERR_STORE, 0, "`%s` changed while writing the layer",
                                path);
        target[r] = '\0';
        archive_entry_set_symlink (e, target);
        link_owner (e, dirfd, base, target);
        break;
      }
    case S_IFCHR:
    case S_IFBLK:
      archive_entry_set_rdevmajor (e, major (st.st_rdev));
      archive_entry_set_rdevminor (e, minor (st.st_rdev));
      break;
    case S_IFDIR:
    case S_IFIFO:
      break;
    default:
      /* Sockets cannot be stored in tar (docker and buildah skip them). */
      return 0;
    }

  if (add_disk_xattrs (e, dirfd, base, path, err) < 0)
    return -1;
  if (ob_layer_writer_add (lw, e, err) < 0)
    return ob_error_wrap (err, "`%s`", path);
  if (fd >= 0)
    return write_file_data (lw, fd, st.st_size, path, ob_layer_precomp_find (opts->precomp, opts, path, &st), err);
  return 0;
}

/* Open a layer writer on outfd, let fn write the i-th entry for i = 0.. n-1
 * (links: hardlink detection across them), and finish the layer. */
typedef int (*entry_fn) (struct ob_layer_writer *lw, const void *data, size_t i, struct ino_map *links,
                         const struct ob_layer_opts *opts, ob_error_t *err);

static int
write_layer (entry_fn fn, const void *data, size_t n, int outfd, const struct ob_layer_opts *opts,
             struct ob_layer_result *res, ob_error_t *err)
{
  cleanup_locale locale_t old_locale = ob_layer_enter_utf8 ();
  struct ob_layer_writer lw;
  struct ino_map links = { 0 };
  int ret = 0;

  if (ob_layer_writer_open (&lw, outfd, opts, err) < 0)
    {
      ob_layer_writer_free (&lw);
      return -1;
    }
  for (size_t i = 0; ret == 0 && i < n; i++)
    ret = fn (&lw, data, i, &links, opts, err);
  if (ret == 0)
    ret = ob_layer_writer_finish (&lw, res, err);
  ino_map_free (&links);
  ob_layer_writer_free (&lw);
  return ret;
}

struct upper_changes
{
  int upperfd;
  const struct ob_changes *changes;
};

static int
write_change (struct ob_layer_writer *lw, const void *data, size_t i, struct ino_map *links,
              const struct ob_layer_opts *opts, ob_error_t *err)
{
  const struct upper_changes *u = data;
  const struct ob_change *c = &u->changes->items[i];
  switch (c->kind)
    {
    case OB_CHANGE_ENTRY:
      return write_fs_entry (lw, u->upperfd, c->path, links, opts, err);
    case OB_CHANGE_WHITEOUT:
      return write_whiteout (lw, c->path, opts, err);
    case OB_CHANGE_OPAQUE:
      return write_marker (lw, c->path, ".wh..wh..opq", opts, err);
    }
  return ob_error_make (err, OB_ERR_GENERIC, 0, "`%s`: unknown change kind %d", c->path, (int) c->kind);
}

int
ob_layer_write (int upperfd, const struct ob_changes *changes, int outfd,
                const struct ob_layer_opts *opts, struct ob_layer_result *res, ob_error_t *err)
{
  struct upper_changes u = { upperfd, changes };
  return write_layer (write_change, &u, changes ? changes->n : 0, outfd, opts, res, err);
}

/* ---- ob_layer_write_sources ---- */

/* Open the regular file or directory src below srcfd (symlinks resolved
 * inside it, the last one only when follow) and check that it is the inode
 * st describes: a source that changed since the plan is an error, never
 * another file's content. */
static int
open_source (int srcfd, const struct ob_layer_src *x, int *out, ob_error_t *err)
{
  struct open_how how = { .flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                          .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  struct stat st;
  long fd;

  if (!x->follow)
    how.flags |= O_NOFOLLOW;
  if (S_ISDIR (x->st.st_mode))
    how.flags |= O_DIRECTORY;
  do
    fd = syscall (SYS_openat2, srcfd, x->src, &how, sizeof how);
  while (fd < 0 && (errno == EAGAIN || errno == EINTR));
  if (fd < 0)
    return ob_error_make (err, OB_ERR_CONTEXT, errno, "open `%s`", x->src);
  if (fstat ((int) fd, &st) < 0 || st.st_dev != x->st.st_dev || st.st_ino != x->st.st_ino
      || (st.st_mode & S_IFMT) != (x->st.st_mode & S_IFMT))
    {
      close ((int) fd);
      return ob_error_make (err, OB_ERR_CONTEXT, 0, "`%s` changed during the build", x->src);
    }
  *out = (int) fd;
  return 0;
}

static int
write_src_entry (struct ob_layer_writer *lw, int srcfd, const struct ob_layer_src *x, struct ino_map *links,
                 const struct ob_layer_opts *opts, ob_error_t *err)
{
  cleanup_entry struct archive_entry *e = archive_entry_new ();
  cleanup_close int fd = -1;
  cleanup_free char *name = NULL;
  const char *link_to = NULL;
  const struct stat *st = &x->st;
  bool device = false;

  if (e == NULL)
    ob_oom ();
  name = S_ISDIR (st->st_mode) ? ob_xasprintf ("%s/", x->path) : ob_xstrdup (x->path);
  archive_entry_set_pathname (e, name);
  archive_entry_set_mode (e, st->st_mode);
  archive_entry_set_uid (e, st->st_uid);
  archive_entry_set_gid (e, st->st_gid);
  archive_entry_set_uname (e, NULL);
  archive_entry_set_gname (e, NULL);
  ob_layer_set_mtime (e, st->st_mtim.tv_sec, st->st_mtim.tv_nsec, opts);
  switch (st->st_mode & S_IFMT)
    {
    case S_IFREG:
      if (st->st_nlink > 1)
        {
          link_to = ino_map_lookup (links, st->st_dev, st->st_ino);
          if (link_to == NULL)
            ino_map_add (links, st->st_dev, st->st_ino, x->path);
        }
      if (link_to)
        {
          archive_entry_set_hardlink (e, link_to);
          archive_entry_set_size (e, 0);
          break;
        }
      if (open_source (srcfd, x, &fd, err) < 0)
        return -1;
      archive_entry_set_size (e, st->st_size);
      if (x->device_xattr)
        device = fd_device_entry (e, fd, st);
      break;
    case S_IFLNK:
      archive_entry_set_symlink (e, x->link);
      break;
    case S_IFDIR:
      if (x->src && open_source (srcfd, x, &fd, err) < 0)
        return -1;
      break;
    case S_IFIFO:
      break;
    default:
      return ob_error_make (err, OB_ERR_GENERIC, 0, "`%s`: no such entry in a copy", x->path);
    }
  if (fd >= 0)
    {
      struct xsrc xs = { fd, NULL };
      if (add_xattrs (e, &xs, x->owner_xattr, false, x->src, OB_ERR_CONTEXT, err) < 0)
        return -1;
    }
  if (ob_layer_writer_add (lw, e, err) < 0)
    return ob_error_wrap (err, "`%s`", x->path);
  if (fd >= 0 && S_ISREG (st->st_mode) && !device)
    {
      if (write_file_data (lw, fd, st->st_size, x->src, NULL, err) < 0)
        {
          ob_error_set_kind (err, OB_ERR_CONTEXT);
          return -1;
        }
    }
  return 0;
}

struct sources
{
  int srcfd;
  const struct ob_layer_src *entries;
};

static int
write_source (struct ob_layer_writer *lw, const void *data, size_t i, struct ino_map *links,
              const struct ob_layer_opts *opts, ob_error_t *err)
{
  const struct sources *x = data;
  return write_src_entry (lw, x->srcfd, &x->entries[i], links, opts, err);
}

int
ob_layer_write_sources (int srcfd, const struct ob_layer_src *entries, size_t n, int outfd,
                        const struct ob_layer_opts *opts, struct ob_layer_result *res, ob_error_t *err)
{
  struct sources x = { srcfd, entries };
  return write_layer (write_source, &x, n, outfd, opts, res, err);
}

