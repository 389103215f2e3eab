/* context (part 3): the copy engine behind COPY/ADD, which writes sources
 * of the context (or of another stage's root) into a destination tree
 * without escaping it, and its dry run, the plan (ob_context_plan) of the
 * entries a copy would write, from which a COPY layer is streamed straight
 * out of the context.
 *
 * The source side is opened as context.c does (context_priv.h); the
 * destination side through openat2() RESOLVE_IN_ROOT, a symlink followed as
 * if the tree were chrooted, then *at() calls on the final component. */
#include "config.h"
#include <obuild/context.h>
#include <obuild/layer.h>
#include <obuild/link_owner.h>
#include <obuild/util.h>

#include "context_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* small path helpers                                                   */
/* ------------------------------------------------------------------ */

/* Clean path taken as absolute ("a/b" is "/a/b"). */
static char *
abs_clean (const char *path)
{
  cleanup_free char *abs = ob_xasprintf ("/%s", path);
  return ob_path_clean (abs);
}

static const char *
path_base (const char *p)
{
  const char *s = strrchr (p, '/');
  return s ? s + 1 : p;
}

/* ------------------------------------------------------------------ */
/* copy engine                                                          */
/* ------------------------------------------------------------------ */

struct link_entry
{
  dev_t dev;
  ino_t ino;
  char *path; /* destination path inside the root */
};

struct copier
{
  int srcfd;
  const struct ob_ignore *ig;
  int rootfd;
  uid_t uid;
  gid_t gid;
  bool keep_owner; /* no chown: every entry keeps its source's owner */
  bool devices;    /* ob_copy_opts.devices */
  bool chmod;
  mode_t mode;
  struct link_entry *links; /* open addressing, cap is a power of 2 */
  size_t nlinks, caplinks;
  struct plan *plan; /* ob_context_plan: entries planned, nothing written */
};

static size_t
link_hash (dev_t dev, ino_t ino)
{
  uint64_t h = (uint64_t) ino * 0x9E3779B97F4A7C15ULL ^ (uint64_t) dev * 0xC2B2AE3D27D4EB4FULL;
  return (size_t) (h ^ (h >> 29));
}

static struct link_entry *
link_find (struct copier *c, dev_t dev, ino_t ino)
{
  if (c->caplinks == 0)
    return NULL;
  for (size_t i = link_hash (dev, ino) & (c->caplinks - 1);; i = (i + 1) & (c->caplinks - 1))
    {
      struct link_entry *e = &c->links[i];
      if (e->path == NULL)
        return NULL;
      if (e->dev == dev && e->ino == ino)
        return e;
    }
}

static void
link_add (struct copier *c, dev_t dev, ino_t ino, const char *path)
{
  if ((c->nlinks + 1) * 2 > c->caplinks)
    {
      struct link_entry *old = c->links;
      size_t oldcap = c->caplinks;
      c->caplinks = oldcap ? oldcap * 2 : 64;
      c->links = ob_xmalloc0 (c->caplinks * sizeof *c->links);
      c->nlinks = 0;
      for (size_t i = 0; i < oldcap; i++)
        if (old[i].path)
          {
            size_t j = link_hash (old[i].dev, old[i].ino) & (c->caplinks - 1);
            while (c->links[j].path)
              j = (j + 1) & (c->caplinks - 1);
            c->links[j] = old[i];
            c->nlinks++;
          }
      free (old);
    }
  {
    size_t j = link_hash (dev, ino) & (c->caplinks - 1);
    while (c->links[j].path)
      j = (j + 1) & (c->caplinks - 1);
    c->links[j].dev = dev;
    c->links[j].ino = ino;
    c->links[j].path = ob_xstrdup (path);
    c->nlinks++;
  }
}

static void
copier_free (struct copier *c)
{
  for (size_t i = 0; i < c->caplinks; i++)
    free (c->links[i].path);
  free (c->links);
}

static int
copy_fail_src (const char *src, const char *dst, int e, ob_error_t *err)
{
  return ob_error_make (err, OB_ERR_CONTEXT, e, "copy `%s` to `%s`", src, dst);
}

static int
copy_fail_dst (const char *src, const char *dst, int e, ob_error_t *err)
{
  return ob_error_make (err, OB_ERR_STORE, e, "copy `%s` to `%s`", src, dst);
}

/* chown failures are ignored when we may not chown (unprivileged): the layer
 * writer records owners itself. */
static bool
chown_ignorable (int e)
{
  return e == EPERM || e == EINVAL;
}

static int
copy_xattrs (int sfd, int dfd, bool devices, const char *src, const char *dst, ob_error_t *err)
{
  cleanup_free char *list = NULL;
  ssize_t len = flistxattr (sfd, NULL, 0);

  if (len < 0)
    return (errno == ENOTSUP || errno == EOPNOTSUPP) ? 0 : copy_fail_src (src, dst, errno, err);
  if (len == 0)
    return 0;
  list = ob_xmalloc ((size_t) len);
  len = flistxattr (sfd, list, (size_t) len);
  if (len < 0)
    return copy_fail_src (src, dst, errno, err);
  for (char *name = list; name < list + len; name += strlen (name) + 1)
    {
      cleanup_free char *val = NULL;
      ssize_t vlen;
      /* the owner xattr is set by apply_owner, never copied; nor is a
       * symlink owner's record (a directory of the context could name one
       * of its links); the device xattr makes the copy a device node in the
       * layer: only from a source obuild made (COPY --from), never from the
       * context */
      if (!ob_str_has_prefix (name, "user.") || strcmp (name, OB_LAYER_OWNER_XATTR) == 0
          || ob_link_owner_is_xattr (name) || (!devices && strcmp (name, OB_LAYER_DEVICE_XATTR) == 0))
        continue;
      vlen = fgetxattr (sfd, name, NULL, 0);
      if (vlen < 0)
        continue; /* removed meanwhile */
      val = ob_xmalloc ((size_t) vlen + 1);
      vlen = fgetxattr (sfd, name, val, (size_t) vlen);
      if (vlen < 0)
        continue;
      if (fsetxattr (dfd, name, val, (size_t) vlen, 0) < 0 && errno != ENOTSUP
          && errno != EOPNOTSUPP)
        return copy_fail_dst (src, dst, errno, err);
    }
  return 0;
}

/* The owner an entry gets: the chown owner, or (keep_owner, COPY --from)
 * the source's, which is its owner xattr when the user namespace that
 * unpacked it could not represent it (single-ID mode), else the inode's.
 * sfd: the open source (-1 for symlinks and special files). */
static void
entry_owner (struct copier *c, int sfd, const struct stat *st, uid_t *uid, gid_t *gid)
{
  char v[64];
  ssize_t n;
  unsigned long u, g;
  /* with unmapped owners (no user namespace) every inode is the invoking
   * user's and stands for 0:0 */
  bool inode = c->keep_owner && !ob_layer_owners_unmapped ();
  *uid = inode ? st->st_uid : c->keep_owner ? 0 : c->uid;
  *gid = inode ? st->st_gid : c->keep_owner ? 0 : c->gid;
  if (!c->keep_owner || sfd < 0)
    return;
  n = fgetxattr (sfd, OB_LAYER_OWNER_XATTR, v, sizeof v - 1);
  if (n <= 0)
    return;
  v[n] = '\0';
  if (sscanf (v, "%lu:%lu", &u, &g) == 2)
    {
      *uid = (uid_t) u;
      *gid = (gid_t) g;
    }
}

/* A symlink's owner, as entry_owner's: COPY --from keeps the one recorded
 * on the source's directory where the user namespace that made it could
 * not represent it (single-ID mode; link_owner.h).  sdir < 0: no directory
 * (a top-level source, followed). */
static void
link_entry_owner (struct copier *c, int sdir, const char *sname, const char *target,
                  const struct stat *st, uid_t *uid, gid_t *gid)
{
  uint32_t u, g;
  entry_owner (c, -1, st, uid, gid);
  if (c->keep_owner && sdir >= 0 && ob_link_owner_get (sdir, sname, target, &u, &g))
    {
      *uid = (uid_t) u;
      *gid = (gid_t) g;
    }
}

/* chown fd (or ddir/name when fd < 0) to uid:gid; an owner this process
 * cannot set (single-ID mode, no user namespace) is recorded in the owner
 * xattr for the layer writer (a symlink's on its directory; not possible
 * on special files, which then stay 0:0). */
static int
apply_owner (int fd, int ddir, const char *name, uid_t uid, gid_t gid, const char *src,
             const char *dst, ob_error_t *err)
{
  char v[64];
  int r = fd >= 0 ? ob_layer_chown_at (fd, "", uid, gid, AT_EMPTY_PATH)
                  : ob_layer_chown_at (ddir, name, uid, gid, AT_SYMLINK_NOFOLLOW);
  if (r == 0)
    {
      if (fd >= 0)
        fremovexattr (fd, OB_LAYER_OWNER_XATTR);
      return 0;
    }
  if (!chown_ignorable (errno))
    return copy_fail_dst (src, dst, errno, err);
  /* a symlink's owner is recorded on its directory (link_owner.h) */
  if (fd < 0 && ob_link_owner_set_at (ddir, name, uid, gid) < 0)
    return copy_fail_dst (src, dst, errno, err);
  if (fd < 0 || (uid == 0 && gid == 0))
    return 0;
  snprintf (v, sizeof v, "%u:%u", (unsigned) uid, (unsigned) gid);
  if (fsetxattr (fd, OB_LAYER_OWNER_XATTR, v, strlen (v), 0) < 0 && errno != ENOTSUP
      && errno != EOPNOTSUPP)
    return copy_fail_dst (src, dst, errno, err);
  return 0;
}

/* Owner, mode (after chown: chown clears setuid), then times. */
static int
apply_meta_fd (struct copier *c, int sfd, int fd, const struct stat *st, const char *src,
               const char *dst, ob_error_t *err)
{
  struct timespec ts[2] = { st->st_atim, st->st_mtim };
  uid_t uid;
  gid_t gid;
  entry_owner (c, sfd, st, &uid, &gid);
  if (apply_owner (fd, -1, NULL, uid, gid, src, dst, err) < 0)
    return -1;
  if (fchmod (fd, c->chmod ? (c->mode & 07777) : (st->st_mode & 07777)) < 0)
    return copy_fail_dst (src, dst, errno, err);
  if (futimens (fd, ts) < 0)
    return copy_fail_dst (src, dst, errno, err);
  return 0;
}

static int
copy_data (int in, int out, const char *src, const char *dst, ob_error_t *err)
{
  bool use_cfr = true;
  char buf[65536];

  for (;;)
    {
      ssize_t n;
      if (use_cfr)
        {
          n = copy_file_range (in, NULL, out, NULL, 1 << 30, 0);
          if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL
                        || errno == EOPNOTSUPP || errno == ENOTSUP || errno == EBADF))
            {
              use_cfr = false;
              continue;
            }
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            return copy_fail_dst (src, dst, errno, err);
          if (n == 0)
            return 0;
          continue;
        }
      n = read (in, buf, sizeof buf);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return copy_fail_src (src, dst, errno, err);
        }
      if (n == 0)
        return 0;
      if (ob_write_all (out, buf, (size_t) n, err) < 0)
        return ob_error_wrap (err, "copy `%s` to `%s`", src, dst);
    }
}

/* Make room for a non-directory at ddir/name: Docker replaces what is there
 * (an empty directory too). */
static int
clear_target (int ddir, const char *name, const char *src, const char *dst, ob_error_t *err)
{
  if (unlinkat (ddir, name, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno == EISDIR || errno == EPERM)
    {
      if (unlinkat (ddir, name, AT_REMOVEDIR) == 0)
        return 0;
    }
  return copy_fail_dst (src, dst, errno, err);
}

/* ---- planning a copy instead of making it (ob_context_plan) ---- */

/* The entries a copy would write into an empty root, by path (absolute,
 * as the copier names them), with an index from path to entry.  Past
 * PLAN_MAX entries (~200 bytes each) the copy is made on disk instead: a
 * context of millions of files must not cost their count in memory twice
 * (the change list of the copied directory holds their names too). */
#define PLAN_MAX 1000000
static size_t plan_max = PLAN_MAX; /* OBUILD_TEST_PLAN_MAX: a test's smaller cap */
struct plan
{
  struct ob_layer_src *e;
  bool *removed;
  size_t n, cap;
  size_t *slot; /* open addressing: entry index + 1, 0 empty */
  size_t nslot;
  struct timespec now; /* mtime of the directories the copy makes */
  bool fallback;       /* something a plan does not do: copy instead */
};

static size_t
plan_hash (const char *p)
{
  uint64_t h = 1469598103934665603ULL;
  for (; *p; p++)
    h = (h ^ (unsigned char) *p) * 1099511628211ULL;
  return (size_t) (h ^ (h >> 31));
}

/* The entry at absolute path p ("/" + an entry's path), or -1. */
static ssize_t
plan_find (const struct plan *pl, const char *p)
{
  if (pl->nslot == 0)
    return -1;
  for (size_t i = plan_hash (p + 1) & (pl->nslot - 1);; i = (i + 1) & (pl->nslot - 1))
    {
      if (pl->slot[i] == 0)
        return -1;
      if (strcmp (pl->e[pl->slot[i] - 1].path, p + 1) == 0)
        return (ssize_t) pl->slot[i] - 1;
    }
}

static void
plan_index (struct plan *pl, size_t idx)
{
  size_t i = plan_hash (pl->e[idx].path) & (pl->nslot - 1);
  while (pl->slot[i])
    i = (i + 1) & (pl->nslot - 1);
  pl->slot[i] = idx + 1;
}

/* A new entry at absolute path p; its index. */
static size_t
plan_add (struct plan *pl, const char *p, mode_t mode, uid_t uid, gid_t gid)
{
  struct ob_layer_src *x;
  if (pl->n == pl->cap)
    {
      pl->cap = pl->cap ? pl->cap * 2 : 256;
      pl->e = ob_xrealloc (pl->e, pl->cap * sizeof *pl->e);
      pl->removed = ob_xrealloc (pl->removed, pl->cap * sizeof *pl->removed);
    }
  if ((pl->n + 1) * 2 > pl->nslot)
    {
      free (pl->slot);
      pl->nslot = pl->nslot ? pl->nslot * 2 : 512;
      pl->slot = ob_xmalloc0 (pl->nslot * sizeof *pl->slot);
      for (size_t i = 0; i < pl->n; i++)
        plan_index (pl, i);
    }
  x = &pl->e[pl->n];
  memset (x, 0, sizeof *x);
  pl->removed[pl->n] = false;
  x->path = ob_xstrdup (p + 1);
  x->st.st_mode = mode;
  x->st.st_uid = uid;
  x->st.st_gid = gid;
  x->st.st_mtim = pl->now;
  plan_index (pl, pl->n);
  return pl->n++;
}

static int
plan_fallback (struct copier *c, const char *dst, ob_error_t *err)
{
  c->plan->fallback = true;
  return ob_error_make (err, OB_ERR_GENERIC, 0, "`%s`: copied, not planned", dst);
}

/* Metadata of a copied entry from its source st: the mode (or --chmod's)
 * and owner, as apply_meta_fd gives them. */
static void
plan_meta (struct copier *c, struct ob_layer_src *x, const struct stat *st)
{
  uid_t uid;
  gid_t gid;
  entry_owner (c, -1, st, &uid, &gid);
  x->st.st_mode = (st->st_mode & S_IFMT) | (c->chmod ? (c->mode & 07777) : (st->st_mode & 07777));
  x->st.st_uid = uid;
  x->st.st_gid = gid;
  x->st.st_mtim = st->st_mtim;
  /* the owner a source's xattr holds is read when the layer is written */
  x->owner_xattr = c->keep_owner;
}

/* copy_leaf, planned: a symlink, fifo or regular file (sdir < 0: the
 * top-level source src, followed). */
static int
plan_leaf (struct copier *c, int sdir, const char *sname, const struct stat *st, const char *src,
           const char *dst, ob_error_t *err)
{
  struct plan *pl = c->plan;
  struct ob_layer_src *x;

  if (S_ISSOCK (st->st_mode))
    return 0;
  if (S_ISCHR (st->st_mode) || S_ISBLK (st->st_mode) || plan_find (pl, dst) >= 0 || pl->n >= plan_max)
    return plan_fallback (c, dst, err);
  {
    size_t i = plan_add (pl, dst, 0, 0, 0);
    x = &pl->e[i];
  }
  if (S_ISLNK (st->st_mode))
    {
      cleanup_free char *target = ob_xmalloc ((size_t) st->st_size + 2);
      uid_t uid;
      gid_t gid;
      ssize_t n = readlinkat (sdir, sname, target, (size_t) st->st_size + 1);
      if (n < 0)
        return copy_fail_src (src, dst, errno, err);
      target[n] = '\0';
      link_entry_owner (c, sdir, sname, target, st, &uid, &gid);
      x->st.st_mode = S_IFLNK | 0777;
      x->st.st_uid = uid;
      x->st.st_gid = gid;
      x->st.st_mtim = st->st_mtim;
      x->link = steal_pointer (&target);
      return 1;
    }
  plan_meta (c, x, st);
  if (S_ISFIFO (st->st_mode))
    {
      x->owner_xattr = false; /* as copy_leaf: no xattr on a fifo */
      return 1;
    }
  x->st.st_size = st->st_size;
  x->st.st_dev = st->st_dev;
  x->st.st_ino = st->st_ino;
  x->st.st_nlink = st->st_nlink;
  x->device_xattr = c->devices && S_ISREG (st->st_mode);
  x->src = ob_xstrdup (src);
  x->follow = sdir < 0;
  return 1;
}

/* dest_open_dir, planned: the directories of path the copy makes (0755,
 * the copy's owner); *idx the last one's entry (-1 for "/"). */
static int
plan_open_dir (struct copier *c, const char *path, bool *created, ssize_t *idx, ob_error_t *err)
{
  cleanup_free char *p = abs_clean (path);
  size_t len = strlen (p);

  if (created)
    *created = false;
  *idx = -1;
  for (size_t i = 1; i <= len && len > 1; i++)
    {
      char saved;
      ssize_t k;
      if (p[i] != '/' && p[i] != '\0')
        continue;
      saved = p[i];
      p[i] = '\0';
      k = plan_find (c->plan, p);
      if (k >= 0 && (c->plan->removed[k] || !S_ISDIR (c->plan->e[k].st.st_mode)))
        return plan_fallback (c, p, err);
      if (k < 0)
        {
          k = (ssize_t) plan_add (c->plan, p, S_IFDIR | 0755, c->uid, c->gid);
          if (created && saved == '\0')
            *created = true;
        }
      *idx = k;
      p[i] = saved;
    }
  return 0;
}

/* finish_dir, planned: directory idx takes the source's metadata. */
static void
plan_finish_dir (struct copier *c, size_t idx, const struct stat *st, const char *src, bool follow)
{
  struct ob_layer_src *x = &c->plan->e[idx];
  plan_meta (c, x, st);
  x->st.st_dev = st->st_dev;
  x->st.st_ino = st->st_ino;
  free (x->src);
  x->src = ob_xstrdup (*src ? src : ".");
  x->follow = follow;
}


/* Hardlink ddir/name to the first copy of the same source inode. */
static int
try_link (struct copier *c, const char *first, int ddir, const char *name)
{
  cleanup_free char *parent = NULL;
  cleanup_close int pfd = -1;
  const char *slash = strrchr (first, '/');

  parent = slash && slash != first ? ob_xstrndup (first, (size_t) (slash - first))
                                   : ob_xstrdup ("/");
  pfd = ob_context_openat2 (c->rootfd, parent, O_PATH | O_DIRECTORY, RESOLVE_IN_ROOT);
  if (pfd < 0)
    return -1;
  return linkat (pfd, path_base (first), ddir, name, 0);
}

/* A regular file, fifo or device node from sfd (already open for regular
 * files) to ddir/name. */
static int
copy_leaf (struct copier *c, int sdir, const char *sname, int sfd_in, const struct stat *st,
           int ddir, const char *name, const char *src, const char *dst, ob_error_t *err)
{
  cleanup_close int sfd = -1;
  cleanup_close int dfd = -1;

  if (c->plan)
    return plan_leaf (c, sdir, sname, st, src, dst, err);
  if (clear_target (ddir, name, src, dst, err) < 0)
    return -1;

  if (S_ISLNK (st->st_mode))
    {
      cleanup_free char *target = ob_xmalloc ((size_t) st->st_size + 2);
      struct timespec ts[2] = { st->st_atim, st->st_mtim };
      ssize_t n = readlinkat (sdir, sname, target, (size_t) st->st_size + 1);
      if (n < 0)
        return copy_fail_src (src, dst, errno, err);
      target[n] = '\0';
      if (symlinkat (target, ddir, name) < 0)
        return copy_fail_dst (src, dst, errno, err);
      uid_t uid;
      gid_t gid;
      link_entry_owner (c, sdir, sname, target, st, &uid, &gid);
      if (apply_owner (-1, ddir, name, uid, gid, src, dst, err) < 0)
        return -1;
      if (utimensat (ddir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return copy_fail_dst (src, dst, errno, err);
      return 1;
    }

  if (!S_ISREG (st->st_mode))
    {
      struct timespec ts[2] = { st->st_atim, st->st_mtim };
      if (S_ISSOCK (st->st_mode))
        return 0; /* as tar: sockets are not copied */
      if (mknodat (ddir, name, (st->st_mode & S_IFMT) | 0600, st->st_rdev) < 0)
        return copy_fail_dst (src, dst, errno, err);
      uid_t uid;
      gid_t gid;
      entry_owner (c, -1, st, &uid, &gid);
      if (apply_owner (-1, ddir, name, uid, gid, src, dst, err) < 0)
        return -1;
      if (fchmodat (ddir, name, c->chmod ? (c->mode & 07777) : (st->st_mode & 07777), 0) < 0
          || utimensat (ddir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return copy_fail_dst (src, dst, errno, err);
      return 1;
    }

  if (st->st_nlink > 1)
    {
      struct link_entry *e = link_find (c, st->st_dev, st->st_ino);
      if (e != NULL && try_link (c, e->path, ddir, name) == 0)
        return 1;
    }

  if (sfd_in >= 0)
    sfd = dup (sfd_in);
  else
    sfd = openat (sdir, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (sfd < 0)
    return copy_fail_src (src, dst, errno, err);
  dfd = openat (ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (dfd < 0)
    return copy_fail_dst (src, dst, errno, err);
  if (copy_data (sfd, dfd, src, dst, err) < 0)
    return -1;
  if (copy_xattrs (sfd, dfd, c->devices, src, dst, err) < 0)
    return -1;
  if (apply_meta_fd (c, sfd, dfd, st, src, dst, err) < 0)
    return -1;
  if (st->st_nlink > 1 && link_find (c, st->st_dev, st->st_ino) == NULL)
    link_add (c, st->st_dev, st->st_ino, dst);
  return 1;
}

static int copy_dir_contents (struct copier *c, int sfd, const char *srcrel, const char *realrel,
                              int dfd, const char *dstpath, ob_error_t *err);

/* Directory metadata once its contents are written (mtime last). */
static int
finish_dir (struct copier *c, int sfd, int dfd, const struct stat *st, const char *src,
            const char *dst, ob_error_t *err)
{
  if (copy_xattrs (sfd, dfd, false, src, dst, err) < 0)
    return -1;
  return apply_meta_fd (c, sfd, dfd, st, src, dst, err);
}

/* Copy the directory sdir/sname to ddir/name (merging with a directory
 * there, also one reached through a symlink inside the root).  real: its
 * real path in the context when that differs from src (see copy_source). */
static int
copy_subdir (struct copier *c, int sdir, const char *sname, const struct stat *st, int ddir,
             const char *name, const char *src, const char *real, const char *dst, bool excluded,
             ob_error_t *err)
{
  cleanup_close int sfd = -1;
  cleanup_close int dfd = -1;
  bool created = false;
  int n;

  sfd = openat (sdir, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (sfd < 0)
    return copy_fail_src (src, dst, errno, err);

  if (c->plan)
    {
      ssize_t k = plan_find (c->plan, dst);
      if ((k >= 0 && (c->plan->removed[k] || !S_ISDIR (c->plan->e[k].st.st_mode)))
          || c->plan->n >= plan_max)
        return plan_fallback (c, dst, err);
      if (k < 0)
        {
          k = (ssize_t) plan_add (c->plan, dst, S_IFDIR | 0700, 0, 0);
          created = true;
        }
      n = copy_dir_contents (c, sfd, src, real, -1, dst, err);
      if (n < 0)
        return -1;
      if (excluded && n == 0)
        {
          if (created)
            c->plan->removed[k] = true;
          return 0;
        }
      plan_finish_dir (c, (size_t) k, st, src, false);
      return 1;
    }
  if (mkdirat (ddir, name, 0700) == 0)
    created = true;
  else if (errno != EEXIST)
    return copy_fail_dst (src, dst, errno, err);
  else
    {
      struct stat dst_st;
      if (fstatat (ddir, name, &dst_st, AT_SYMLINK_NOFOLLOW) < 0)
        return copy_fail_dst (src, dst, errno, err);
      if (S_ISLNK (dst_st.st_mode))
        dfd = ob_context_openat2 (c->rootfd, dst, O_RDONLY | O_DIRECTORY, RESOLVE_IN_ROOT);
      if (!S_ISDIR (dst_st.st_mode) && dfd < 0)
        {
          if (unlinkat (ddir, name, 0) < 0 || mkdirat (ddir, name, 0700) < 0)
            return copy_fail_dst (src, dst, errno, err);
          created = true;
        }
    }
  if (dfd < 0)
    dfd = openat (ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    return copy_fail_dst (src, dst, errno, err);

  n = copy_dir_contents (c, sfd, src, real, dfd, dst, err);
  if (n < 0)
    return -1;
  if (excluded && n == 0)
    {
      /* only there for re-included children, and there were none */
      if (created && unlinkat (ddir, name, AT_REMOVEDIR) < 0)
        return copy_fail_dst (src, dst, errno, err);
      return 0;
    }
  if (finish_dir (c, sfd, dfd, st, src, dst, err) < 0)
    return -1;
  return 1;
}

/* Copy every entry of sfd (context path srcrel, "" for the root) into dfd
 * (root path dstpath).  An entry is excluded when ig matches its path as
 * named or, when the directory was reached through a symlink, its real
 * path realrel/<name> (NULL: the same): the .dockerignore rules apply to
 * the context as it is, COPY --exclude patterns are written against the
 * source as named.  Returns the number of entries copied. */
static int
copy_dir_contents (struct copier *c, int sfd, const char *srcrel, const char *realrel, int dfd,
                   const char *dstpath, ob_error_t *err)
{
  cleanup_strv char **names = NULL;
  int dup_fd = openat (sfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int count = 0;

  if (dup_fd < 0)
    return copy_fail_src (srcrel[0] ? srcrel : ".", dstpath, errno, err);
  if (ob_context_read_dir_names (dup_fd, &names, err) < 0)
    return ob_error_wrap (err, "copy `%s` to `%s`", srcrel[0] ? srcrel : ".", dstpath);

  for (size_t i = 0; names[i]; i++)
    {
      cleanup_free char *src = ob_context_path_join (srcrel, names[i]);
      cleanup_free char *dst = ob_context_path_join (dstpath, names[i]);
      cleanup_free char *real = realrel ? ob_context_path_join (realrel, names[i]) : NULL;
      bool excluded
          = c->ig && (ob_ignore_match (c->ig, src) || (real && ob_ignore_match (c->ig, real)));
      struct stat st;
      int r;

      if (excluded && !ob_ignore_has_exceptions (c->ig))
        continue;
      if (fstatat (sfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
        return copy_fail_src (src, dst, errno, err);
      if (S_ISDIR (st.st_mode))
        r = copy_subdir (c, sfd, names[i], &st, dfd, names[i], src, real, dst, excluded, err);
      else if (excluded)
        continue;
      else
        r = copy_leaf (c, sfd, names[i], -1, &st, dfd, names[i], src, dst, err);
      if (r < 0)
        return -1;
      count += r;
    }
  return count;
}

/* Make the missing directory cur/base (0755, the copy's owner). */
static int
dest_mkdir (struct copier *c, int cur, const char *base, const char *path, ob_error_t *err)
{
  cleanup_close int fd = -1;
  if (mkdirat (cur, base, 0755) < 0 && errno != EEXIST)
    return ob_error_make (err, OB_ERR_STORE, errno, "mkdir `%s`", path);
  fd = openat (cur, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", path);
  if (fchmod (fd, 0755) < 0 || (ob_layer_chown_at (fd, "", c->uid, c->gid, AT_EMPTY_PATH) < 0 && !chown_ignorable (errno)))
    return ob_error_make (err, OB_ERR_STORE, errno, "mkdir `%s`", path);
  return ob_steal_fd (&fd);
}

/* Open (creating when missing, 0755 and the chown owner) the directory at
 * path inside the root, following symlinks only within the root: existing
 * ones through openat2 RESOLVE_IN_ROOT, a dangling one by rewriting the
 * path with its target (clamped at "/") and starting over, so that the
 * directories are created where the link points, as BuildKit does. */
static int
dest_open_dir (struct copier *c, const char *path, bool *created, ob_error_t *err)
{
  cleanup_free char *p = abs_clean (path);
  cleanup_close int cur = -1;
  int hops = 0;

  if (created)
    *created = false;
  for (;;)
    {
      size_t len = strlen (p);
      bool again = false;

      if (cur >= 0)
        close (cur);
      cur = ob_context_openat2 (c->rootfd, "/", O_RDONLY | O_DIRECTORY, RESOLVE_IN_ROOT);
      if (cur < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "open destination root");
      for (size_t i = 1; i <= len && len > 1; i++)
        {
          char *base;
          char saved;
          struct stat st;
          int fd;

          if (p[i] != '/' && p[i] != '\0')
            continue;
          saved = p[i];
          p[i] = '\0';
          base = strrchr (p, '/') + 1;
          fd = ob_context_openat2 (c->rootfd, p, O_RDONLY | O_DIRECTORY, RESOLVE_IN_ROOT);
          if (fd < 0 && errno == ENOENT && fstatat (cur, base, &st, AT_SYMLINK_NOFOLLOW) == 0
              && S_ISLNK (st.st_mode))
            {
              cleanup_free char *target = ob_xmalloc (PATH_MAX + 1);
              cleanup_free char *np = NULL;
              ssize_t n = readlinkat (cur, base, target, PATH_MAX);
              if (n < 0 || ++hops > 40)
                return ob_error_make (err, OB_ERR_STORE, n < 0 ? errno : ELOOP, "open `%s`",
                                      path);
              target[n] = '\0';
              base[-1] = '\0';
              if (target[0] == '/')
                np = ob_xasprintf ("%s/%s", target, saved ? p + i + 1 : "");
              else
                np = ob_xasprintf ("%s/%s/%s", p, target, saved ? p + i + 1 : "");
              free (p);
              p = abs_clean (np);
              again = true;
              break;
            }
          if (fd < 0 && errno == ENOENT)
            {
              fd = dest_mkdir (c, cur, base, p, err);
              if (fd < 0)
                return -1;
              if (created && saved == '\0')
                *created = true;
            }
          if (fd < 0)
            return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", p);
          close (cur);
          cur = fd;
          p[i] = saved;
        }
      if (!again)
        return ob_steal_fd (&cur);
    }
}

/* copy_source, planned, once the source is resolved. */
static int
plan_source (struct copier *c, int pfd, const char *src, const char *srcrel, const char *real,
             const struct stat *st, const char *dst_clean, bool dest_is_dir, ob_error_t *err)
{
  cleanup_free char *target = NULL;
  ssize_t k;

  if (S_ISDIR (st->st_mode))
    {
      cleanup_close int sfd = openat (pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      bool created = false;
      int n;
      if (sfd < 0)
        return copy_fail_src (src, dst_clean, errno, err);
      if (plan_open_dir (c, dst_clean, &created, &k, err) < 0)
        return -1;
      n = copy_dir_contents (c, sfd, srcrel, real && strcmp (real, srcrel) != 0 ? real : NULL, -1,
                             dst_clean, err);
      if (n < 0)
        return -1;
      if (created)
        plan_finish_dir (c, (size_t) k, st, srcrel, true);
      return 0;
    }
  if (!dest_is_dir && strcmp (dst_clean, "/") != 0)
    {
      k = plan_find (c->plan, dst_clean);
      if (k >= 0 && !c->plan->removed[k] && S_ISDIR (c->plan->e[k].st.st_mode))
        dest_is_dir = true;
    }
  if (dest_is_dir || strcmp (dst_clean, "/") == 0)
    {
      if (plan_open_dir (c, dst_clean, NULL, &k, err) < 0)
        return -1;
      target = ob_context_path_join (dst_clean, path_base (src));
    }
  else
    {
      cleanup_free char *parent = NULL;
      const char *slash = strrchr (dst_clean, '/');
      parent = slash == dst_clean ? ob_xstrdup ("/") : ob_xstrndup (dst_clean, (size_t) (slash - dst_clean));
      if (plan_open_dir (c, parent, NULL, &k, err) < 0)
        return -1;
      target = ob_xstrdup (dst_clean);
    }
  return plan_leaf (c, -1, NULL, st, src, target, err) < 0 ? -1 : 0;
}

/* Copy one top-level source. */
static int
copy_source (struct copier *c, const char *src, const char *dest, bool dest_is_dir,
             ob_error_t *err)
{
  cleanup_close int pfd = -1;
  cleanup_close int ddir = -1;
  cleanup_free char *dst_clean = NULL;
  cleanup_free char *target = NULL;
  cleanup_free char *real = NULL;
  bool root_src = strcmp (src, ".") == 0;
  const char *srcrel = root_src ? "" : src;
  struct stat st;

  if (root_src)
    pfd = openat (c->srcfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  else if (c->ig)
    /* The named source itself is followed (Docker does), within srcfd, and
     * must not reach an ignored path; a directory's entries are then
     * matched by their real path too. */
    pfd = ob_context_walk_path (c->srcfd, src, O_PATH, true, c->ig, &real);
  else
    pfd = ob_context_openat2 (c->srcfd, src, O_PATH, RESOLVE_IN_ROOT);
  if (pfd < 0)
    {
      if (errno == ENOENT || errno == ENOTDIR)
        return ob_context_not_found (src, err);
      return ob_error_make (err, OB_ERR_CONTEXT, errno, "COPY source %s", src);
    }
  if (fstat (pfd, &st) < 0)
    return ob_error_make (err, OB_ERR_CONTEXT, errno, "stat `%s`", src);

  dst_clean = abs_clean (dest);

  if (c->plan)
    return plan_source (c, pfd, src, srcrel, real, &st, dst_clean, dest_is_dir, err);
  if (S_ISDIR (st.st_mode))
    {
      cleanup_close int sfd = openat (pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      bool created = false;
      int n;
      if (sfd < 0)
        return copy_fail_src (src, dst_clean, errno, err);
      ddir = dest_open_dir (c, dst_clean, &created, err);
      if (ddir < 0)
        return ob_error_wrap (err, "copy `%s` to `%s`", src, dst_clean);
      n = copy_dir_contents (c, sfd, srcrel, real && strcmp (real, srcrel) != 0 ? real : NULL, ddir,
                             dst_clean, err);
      if (n < 0)
        return -1;
      /* As BuildKit: a directory it creates takes the source's metadata, an
       * existing one is left alone. */
      if (created && finish_dir (c, sfd, ddir, &st, src, dst_clean, err) < 0)
        return -1;
      return 0;
    }

  /* A file: into dest when dest is (or must be) a directory. */
  if (!dest_is_dir && strcmp (dst_clean, "/") != 0)
    {
      int fd = ob_context_openat2 (c->rootfd, dst_clean, O_PATH | O_DIRECTORY, RESOLVE_IN_ROOT);
      if (fd >= 0)
        {
          close (fd);
          dest_is_dir = true;
        }
    }
  if (dest_is_dir || strcmp (dst_clean, "/") == 0)
    {
      ddir = dest_open_dir (c, dst_clean, NULL, err);
      target = ob_context_path_join (dst_clean, path_base (src));
    }
  else
    {
      cleanup_free char *parent = NULL;
      const char *slash = strrchr (dst_clean, '/');
      parent = slash == dst_clean ? ob_xstrdup ("/")
                                  : ob_xstrndup (dst_clean, (size_t) (slash - dst_clean));
      ddir = dest_open_dir (c, parent, NULL, err);
      target = ob_xstrdup (dst_clean);
    }
  if (ddir < 0)
    return ob_error_wrap (err, "copy `%s` to `%s`", src, target ? target : dst_clean);

  if (S_ISREG (st.st_mode))
    {
      cleanup_close int sfd
          = ob_context_openat2 (c->srcfd, src, O_RDONLY | O_NOCTTY, RESOLVE_IN_ROOT);
      struct stat st2;
      if (sfd < 0)
        return copy_fail_src (src, target, errno, err);
      if (fstat (sfd, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)
        return copy_fail_src (src, target, EAGAIN, err);
      return copy_leaf (c, -1, NULL, sfd, &st, ddir, path_base (target), src, target, err) < 0
                 ? -1
                 : 0;
    }
  /* fifo / device node: recreated from st */
  return copy_leaf (c, -1, NULL, -1, &st, ddir, path_base (target), src, target, err) < 0 ? -1
                                                                                          : 0;
}

/* A copier's settings from the caller's options (copy and plan alike). */
static void
copier_init (struct copier *c, int srcfd, const struct ob_ignore *ig, int rootfd, const struct ob_copy_opts *opts)
{
  c->srcfd = srcfd;
  c->ig = ig;
  c->rootfd = rootfd;
  c->uid = (opts && opts->chown) ? opts->uid : 0;
  c->gid = (opts && opts->chown) ? opts->gid : 0;
  c->keep_owner = opts && !opts->chown && opts->keep_owner;
  c->devices = opts && opts->devices;
  c->chmod = opts && opts->chmod;
  c->mode = opts ? opts->mode : 0;
}

int
ob_context_copy (int srcfd, const struct ob_ignore *ig, char *const *srcs, int rootfd,
                 const char *dest, const struct ob_copy_opts *opts, ob_error_t *err)
{
  struct copier c = { 0 };
  size_t nsrcs = ob_strv_len (srcs);
  bool dest_is_dir = ob_str_has_suffix (dest, "/") || nsrcs > 1;
  int ret = 0;

  copier_init (&c, srcfd, ig, rootfd, opts);

  for (size_t i = 0; i < nsrcs && ret == 0; i++)
    ret = copy_source (&c, srcs[i], dest, dest_is_dir, err);
  copier_free (&c);
  return ret < 0 ? -1 : 0;
}

/* The order of ob_snapshot_scan: by path components, byte-wise, a
 * directory before what is in it ("/" sorts before any other byte). */
int
ob_context_plan_cmp (const void *pa, const void *pb)
{
  const unsigned char *a = (const unsigned char *) ((const struct ob_layer_src *) pa)->path;
  const unsigned char *b = (const unsigned char *) ((const struct ob_layer_src *) pb)->path;
  for (; *a && *a == *b; a++, b++)
    ;
  if (*a == *b)
    return 0;
  if (*a == '\0' || *b == '\0')
    return *a == '\0' ? -1 : 1;
  return (*a == '/' ? 0 : *a) < (*b == '/' ? 0 : *b) ? -1 : 1;
}

static void
src_clear (struct ob_layer_src *x)
{
  free (x->path);
  free (x->src);
  free (x->link);
}

static void
plan_free (struct plan *pl)
{
  ob_context_plan_free (pl->e, pl->n);
  free (pl->removed);
  free (pl->slot);
}

int
ob_context_plan (int srcfd, const struct ob_ignore *ig, char *const *srcs, const char *dest,
                 const struct ob_copy_opts *opts, struct ob_layer_src **out, size_t *n_out,
                 ob_error_t *err)
{
  struct copier c = { 0 };
  struct plan pl = { 0 };
  size_t nsrcs = ob_strv_len (srcs), k = 0;
  bool dest_is_dir = ob_str_has_suffix (dest, "/") || nsrcs > 1;
  int ret = 0;

  *out = NULL;
  *n_out = 0;
  copier_init (&c, srcfd, ig, -1, opts);
  c.plan = &pl;
  if (getenv ("OBUILD_TEST_PLAN_MAX"))
    plan_max = strtoul (getenv ("OBUILD_TEST_PLAN_MAX"), NULL, 10);
  clock_gettime (CLOCK_REALTIME, &pl.now);
  for (size_t i = 0; i < nsrcs && ret == 0; i++)
    ret = copy_source (&c, srcs[i], dest, dest_is_dir, err);
  copier_free (&c);
  if (ret < 0)
    {
      plan_free (&pl);
      if (!pl.fallback)
        return -1;
      ob_error_free (err);
      return 1;
    }
  /* what an excluded directory without re-included entries left */
  for (size_t i = 0; i < pl.n; i++)
    {
      if (pl.removed[i])
        {
          src_clear (&pl.e[i]);
          continue;
        }
      pl.e[k++] = pl.e[i];
    }
  qsort (pl.e, k, sizeof *pl.e, ob_context_plan_cmp);
  *out = pl.e;
  *n_out = k;
  free (pl.removed);
  free (pl.slot);
  return 0;
}

void
ob_context_plan_free (struct ob_layer_src *e, size_t n)
{
  for (size_t i = 0; i < n; i++)
    src_clear (&e[i]);
  free (e);
}
