/* build: the "copy" snapshotter, used when overlayfs cannot be mounted (or
 * with --snapshotter=copy).  The stage's root filesystem is a private
 * directory that RUN steps change in place; a step's change is found by
 * comparing that directory with what it was before the step: an entry is
 * unchanged when its inode and ctime are those the last walk saw while the
 * root equalled the stage's tree (statmap.h; nothing a process does leaves
 * ctime as it was), and without such a record its type, mode, owner, size,
 * mtime and link target are compared with the image's metadata (the tree
 * module, read from the layers' tar headers).
 * The change is written as an overlay-style upper directory (whiteouts as
 * 0:0 character devices), so the rest of the pipeline is the same. */
#include "config.h"
#include "build_priv.h"
#include <obuild/layer.h>
#include <obuild/link_owner.h>
#include <obuild/snapshot.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* --isolation=container walks the container's own root: what it keeps
 * there (build_container.c fills the list) is not the step's */
int
ob_build_container_kept (struct build *b, const char *path)
{
  return ob_layer_path_kept ((const char *const *) b->container_keep, path);
}

int
ob_build_copyfs_prepare (struct build *b, struct stage *s, ob_error_t *err)
{
  cleanup_close int rootfd = -1;
  if (s->copy_rootfs == NULL)
    {
      s->copy_rootfs = ob_build_scratch_dir (b, "rootfs", err);
      if (s->copy_rootfs == NULL)
        return -1;
      s->copy_applied = 0;
    }
  rootfd = open (s->copy_rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", s->copy_rootfs);
  for (; s->copy_applied < s->n_layers; s->copy_applied++)
    {
      cleanup_close int fd = -1;
      const char *dg = s->layers[s->copy_applied].digest;
      ob_build_copyfs_forget (s);
      if (ob_txn_blob_open (b->txn, dg, &fd, err) < 0 || ob_layer_extract (fd, rootfd, "/", true, true, err) < 0)
        return ob_error_wrap (err, "unpack layer %s", dg);
    }
  return ob_build_copyfs_record (b, s, err);
}

void
ob_build_copyfs_forget (struct stage *s)
{
  ob_statmap_free (s->copy_seen);
  s->copy_seen = NULL;
}

struct diff
{
  struct build *b;
  struct stage *s;
  int rootfd, upperfd;
  dev_t root_dev;
  const struct ob_statmap *seen; /* the root as it equalled the tree, or NULL */
  struct ob_statmap *record;     /* what this walk sees, or NULL */
  bool dry;     /* only find out whether anything changed */
  bool changed; /* dry: something did */
  struct ob_changes *list; /* list mode: the changes, read from the root itself */
  size_t list_cap;
  char **dirs; /* directories made in upper: mtimes set at the end */
  char **linked; /* files linked into upper (their ctime moves twice) */
  size_t n_dirs, n_linked;
};

/* The owner an entry stands for: its xattr when the user namespace could
 * not represent it, else the inode's. */
static void
effective_owner (int dfd, bool d_is_root, const char *rel, const struct stat *st, uid_t *uid, gid_t *gid)
{
  *uid = st->st_uid;
  *gid = st->st_gid;
  /* as root every owner is a real one: no xattr to look for (a path walk
   * per file on a container's overlay root) */
  if (d_is_root)
    return;
  if (S_ISLNK (st->st_mode))
    {
      /* recorded on its directory (link_owner.h) */
      uint32_t u, g;
      if (ob_link_owner_get_at (dfd, rel, &u, &g))
        {
          *uid = (uid_t) u;
          *gid = (gid_t) g;
        }
    }
  if (S_ISREG (st->st_mode) || S_ISDIR (st->st_mode))
    {
      char v[64];
      cleanup_free char *p = ob_xasprintf ("/proc/self/fd/%d/%s", dfd, rel);
      ssize_t n = lgetxattr (p, OB_LAYER_OWNER_XATTR, v, sizeof v - 1);
      unsigned long u, g;
      if (n > 0)
        {
          v[n] = '\0';
          if (sscanf (v, "%lu:%lu", &u, &g) == 2)
            {
              *uid = (uid_t) u;
              *gid = (gid_t) g;
            }
        }
    }
}

static int
copy_meta (struct diff *d, const char *rel, const struct stat *st, ob_error_t *err)
{
  struct timespec ts[2] = { st->st_mtim, st->st_mtim };
  uid_t uid;
  gid_t gid;
  effective_owner (d->rootfd, d->b->o->userns_root || d->b->o->container, rel, st, &uid, &gid);
  if (fchownat (d->upperfd, rel, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
    {
      if (errno != EPERM && errno != EINVAL)
        return ob_error_make (err, OB_ERR_STORE, errno, "chown `%s`", rel);
      if (!S_ISLNK (st->st_mode) && ob_build_record_owner (d->upperfd, rel, uid, gid, err) < 0)
        return -1;
      if (S_ISLNK (st->st_mode) && ob_link_owner_set_at (d->upperfd, rel, uid, gid) < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "set owner of `%s`", rel);
    }
  if (!S_ISLNK (st->st_mode) && fchmodat (d->upperfd, rel, st->st_mode & 07777, 0) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "chmod `%s`", rel);
  utimensat (d->upperfd, rel, ts, AT_SYMLINK_NOFOLLOW);
  return 0;
}

/* Make the directories leading to rel (exclusive) in upper, with the
 * metadata they have in the root filesystem. */
static int
ensure_parents (struct diff *d, const char *rel, ob_error_t *err)
{
  cleanup_free char *p = ob_xstrdup (rel);
  char *last = strrchr (p, '/');
  struct stat pst;
  if (last == NULL)
    return 0;
  /* the walk makes a directory before what it holds: its parent is there
   * (one lookup, not one per level: a step's tree can be 2,000 deep) */
  *last = '\0';
  if (fstatat (d->upperfd, p, &pst, AT_SYMLINK_NOFOLLOW) == 0)
    return 0;
  *last = '/';
  for (char *slash = strchr (p, '/'); slash; slash = strchr (slash + 1, '/'))
    {
      struct stat st;
      *slash = '\0';
      if (fstatat (d->upperfd, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          if (fstatat (d->rootfd, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return ob_error_make (err, OB_ERR_STORE, errno, "stat `/%s`", p);
          if (mkdirat (d->upperfd, p, 0755) < 0)
            return ob_error_make (err, OB_ERR_STORE, errno, "mkdir `%s`", p);
          if (copy_meta (d, p, &st, err) < 0)
            return -1;
          ob_strv_push (&d->dirs, &d->n_dirs, ob_xstrdup (p));
        }
      *slash = '/';
    }
  return 0;
}

/* List mode: rel, and the directories leading to it (as the upper
 * directory of the other modes would hold them); duplicates go when the
 * list is sorted. */
static void
list_push (struct ob_changes *c, size_t *cap, char *path, enum ob_change_kind kind)
{
  if (c->n == *cap)
    {
      *cap = *cap ? *cap * 2 : 256;
      c->items = ob_xrealloc (c->items, *cap * sizeof *c->items);
    }
  c->items[c->n].path = path;
  c->items[c->n].kind = kind;
  c->n++;
}

static void
list_add (struct diff *d, const char *rel, enum ob_change_kind kind)
{
  const char *slash;
  for (slash = strchr (rel, '/'); slash; slash = strchr (slash + 1, '/'))
    list_push (d->list, &d->list_cap, ob_xstrndup (rel, (size_t) (slash - rel)), OB_CHANGE_ENTRY);
  list_push (d->list, &d->list_cap, ob_xstrdup (rel), kind);
}

/* The tar's order: byte-wise by path components ('/' before any byte),
 * so a directory comes right before its contents. */
static int
cmp_change (const void *a, const void *b)
{
  const unsigned char *p = (const unsigned char *) ((const struct ob_change *) a)->path;
  const unsigned char *q = (const unsigned char *) ((const struct ob_change *) b)->path;
  for (;; p++, q++)
    {
      unsigned x = *p == '/' ? 1 : *p, y = *q == '/' ? 1 : *q;
      if (x != y || x == 0)
        return (int) x - (int) y;
    }
}

static int
copy_file (struct diff *d, const char *rel, const struct stat *st, ob_error_t *err)
{
  cleanup_close int in = openat (d->rootfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_close int out = -1;
  if (in < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `/%s`", rel);
  out = openat (d->upperfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st->st_mode & 0700);
  if (out < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "create `%s`", rel);
  return ob_copy_fd (in, out, rel, err);
}

static int
materialize (struct diff *d, const char *rel, const struct stat *st, ob_error_t *err)
{
  if (ensure_parents (d, rel, err) < 0)
    return -1;
  switch (st->st_mode & S_IFMT)
    {
    case S_IFREG:
      /* the content is final: share the inode (the layer writer only reads) */
      if (linkat (d->rootfd, rel, d->upperfd, rel, 0) == 0)
        {
          ob_strv_push (&d->linked, &d->n_linked, ob_xstrdup (rel));
          return 0;
        }
      if (errno != EXDEV)
        return ob_error_make (err, OB_ERR_STORE, errno, "link `%s`", rel);
      /* the root and the store on different file systems (a container's
       * root, the store on a volume): copy */
      if (copy_file (d, rel, st, err) < 0)
        return -1;
      break;
    case S_IFDIR:
      if (mkdirat (d->upperfd, rel, 0755) < 0 && errno != EEXIST)
        return ob_error_make (err, OB_ERR_STORE, errno, "mkdir `%s`", rel);
      ob_strv_push (&d->dirs, &d->n_dirs, ob_xstrdup (rel));
      break;
    case S_IFLNK:
      {
        char target[4096];
        ssize_t n = readlinkat (d->rootfd, rel, target, sizeof target - 1);
        if (n < 0)
          return ob_error_make (err, OB_ERR_STORE, errno, "readlink `%s`", rel);
        target[n] = '\0';
        if (symlinkat (target, d->upperfd, rel) < 0)
          return ob_error_make (err, OB_ERR_STORE, errno, "symlink `%s`", rel);
        break;
      }
    case S_IFIFO:
      if (mkfifoat (d->upperfd, rel, st->st_mode & 07777) < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "mkfifo `%s`", rel);
      break;
    case S_IFCHR:
    case S_IFBLK:
      if (mknodat (d->upperfd, rel, st->st_mode, st->st_rdev) < 0)
        return 0; /* devices cannot be made here; the step could not either */
      break;
    default:
      return 0; /* sockets are not part of images */
    }
  return copy_meta (d, rel, st, err);
}

/* The type rel stands for in a layer: a device's placeholder (single-ID
 * mode's mknod: a regular file carrying OB_LAYER_DEVICE_XATTR) is the
 * device, which the tree has.  The xattr is read only where the tree has a
 * device and the disk a regular file. */
static mode_t
layer_type (struct diff *d, const char *rel, const struct stat *st, const struct ob_tree_stat *ts)
{
  cleanup_free char *p = NULL;
  char v[32];
  ssize_t n;
  mode_t type;
  dev_t rdev;
  if (!S_ISREG (st->st_mode) || (!S_ISCHR (ts->mode) && !S_ISBLK (ts->mode)))
    return st->st_mode & S_IFMT;
  p = ob_xasprintf ("/proc/self/fd/%d/%s", d->rootfd, rel);
  n = lgetxattr (p, OB_LAYER_DEVICE_XATTR, v, sizeof v);
  if (n > 0 && ob_layer_device_parse (v, (size_t) n, &type, &rdev) == 0)
    return type;
  return st->st_mode & S_IFMT;
}

static bool
changed (struct diff *d, const char *rel, const struct stat *st, const struct ob_tree_stat *ts)
{
  uid_t uid;
  gid_t gid;
  if (ts == NULL || layer_type (d, rel, st, ts) != (ts->mode & S_IFMT) || (st->st_mode & 07777) != (ts->mode & 07777))
    return true;
  /* the same inode with the same ctime: nothing wrote, renamed, chmod'ed,
   * chown'ed or touched it since the root equalled the tree (a directory's
   * ctime moves with its entries, which are compared on their own) */
  if (d->seen && !S_ISDIR (st->st_mode))
    {
      int same = ob_statmap_same (d->seen, rel, st);
      if (same >= 0)
        return same == 0;
    }
  effective_owner (d->rootfd, d->b->o->userns_root || d->b->o->container, rel, st, &uid, &gid);
  if (uid != ts->uid || gid != ts->gid)
    return true;
  if (S_ISDIR (st->st_mode))
    return false;
  if (S_ISLNK (st->st_mode))
    {
      char target[4096];
      ssize_t n = readlinkat (d->rootfd, rel, target, sizeof target - 1);
      if (n < 0)
        return true;
      target[n] = '\0';
      return ts->link == NULL || strcmp (target, ts->link) != 0;
    }
  {
    /* the layers hold clamped times when SOURCE_DATE_EPOCH is set */
    int64_t mt = st->st_mtim.tv_sec;
    if (d->b->lopts.clamp_mtime && mt > d->b->lopts.mtime_max)
      mt = d->b->lopts.mtime_max;
    return mt != ts->mtime || (S_ISREG (st->st_mode) && (int64_t) st->st_size != ts->size);
  }
}

struct names
{
  char **v;
  size_t n;
};

static void
collect (void *data, const char *name)
{
  struct names *n = data;
  ob_strv_push (&n->v, &n->n, ob_xstrdup (name));
}

static int
walk (struct diff *d, const char *rel, ob_error_t *err)
{
  cleanup_free char *abs = ob_xasprintf ("/%s", rel);
  cleanup_dir DIR *dir = NULL;
  struct dirent *de;
  struct names before = { NULL, 0 };
  int fd = openat (d->rootfd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int r = 0;

  if (fd < 0 || (dir = fdopendir (fd)) == NULL)
    {
      if (fd >= 0)
        close (fd);
      return ob_error_make (err, OB_ERR_STORE, errno, "walk `%s`", abs);
    }
  while (r == 0 && (de = readdir (dir)))
    {
      cleanup_free char *crel = NULL;
      cleanup_free char *cabs = NULL;
      struct stat st;
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      crel = *rel ? ob_xasprintf ("%s/%s", rel, de->d_name) : ob_xstrdup (de->d_name);
      /* the bound on the walk's depth and descriptors, too */
      if (strlen (crel) > OB_LAYER_PATH_MAX)
        return ob_layer_path_too_long (crel, OB_ERR_STEP, err);
      cabs = ob_xasprintf ("/%s", crel);
      if (fstatat (d->rootfd, crel, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      if (d->b->o->container)
        {
          /* the container's own root: mount points, obuild's files and
           * other file systems are not the step's */
          int k = ob_build_container_kept (d->b, crel);
          if (k == 1 || st.st_dev != d->root_dev)
            continue;
          if (k == 2)
            {
              r = S_ISDIR (st.st_mode) ? walk (d, crel, err) : 0;
              continue;
            }
        }
      bool ch = changed (d, crel, &st, ob_tree_lookup (d->s->tree, cabs));
      /* the next walk's reference: every entry this one leaves as it is
       * (a changed file linked into the upper directory gets another
       * ctime; in list mode nothing touches it) */
      if (d->record && !S_ISDIR (st.st_mode) && (!ch || d->list))
        ob_statmap_put (d->record, crel, &st);
      if (ch)
        {
          if (d->dry)
            {
              d->changed = true;
              return 0;
            }
          if (d->list)
            list_add (d, crel, OB_CHANGE_ENTRY);
          else
            r = materialize (d, crel, &st, err);
        }
      if (r == 0 && S_ISDIR (st.st_mode))
        r = walk (d, crel, err);
      if (d->changed)
        return r;
    }
  if (r < 0)
    return -1;
  /* what the image had here and the step deleted */
  ob_tree_children (d->s->tree, *rel ? abs : "/", collect, &before);
  for (size_t i = 0; before.v && before.v[i]; i++)
    {
      cleanup_free char *crel = *rel ? ob_xasprintf ("%s/%s", rel, before.v[i]) : ob_xstrdup (before.v[i]);
      struct stat st;
      if (fstatat (d->rootfd, crel, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
        continue;
      if (d->dry)
        {
          d->changed = true;
          break;
        }
      if (d->list)
        {
          list_add (d, crel, OB_CHANGE_WHITEOUT);
          continue;
        }
      if (ensure_parents (d, crel, err) < 0)
        {
          r = -1;
          break;
        }
      if (mknodat (d->upperfd, crel, S_IFCHR | 0000, makedev (0, 0)) < 0)
        {
          /* no device nodes here (a container's overlay root refuses
           * them): an xattr whiteout, which the snapshot reads the same */
          int wfd = errno == EPERM ? openat (d->upperfd, crel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0)
                                   : -1;
          if (wfd < 0 || fsetxattr (wfd, "user.overlay.whiteout", "y", 1, 0) < 0)
            {
              r = ob_error_make (err, OB_ERR_STORE, errno, "whiteout `%s`", crel);
              if (wfd >= 0)
                close (wfd);
              break;
            }
          close (wfd);
        }
    }
  ob_strv_free (before.v);
  return r;
}

int
ob_build_copyfs_diff (struct build *b, struct stage *s, const char *upper, ob_error_t *err)
{
  struct diff d = { .b = b, .s = s, .rootfd = -1, .upperfd = -1, .seen = s->copy_seen };
  int r;
  if (ob_build_stage_tree (b, s, err) < 0)
    return -1;
  d.record = ob_statmap_new ();
  d.rootfd = open (s->copy_rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  d.upperfd = open (upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.rootfd < 0 || d.upperfd < 0)
    r = ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", d.rootfd < 0 ? s->copy_rootfs : upper);
  else
    {
      struct stat rst;
      d.root_dev = fstat (d.rootfd, &rst) == 0 ? rst.st_dev : 0;
      r = walk (&d, "", err);
    }
  /* directories got entries after their metadata was copied: set mtimes last */
  for (size_t i = 0; r == 0 && d.dirs && d.dirs[i]; i++)
    {
      struct stat st;
      if (fstatat (d.rootfd, d.dirs[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
        {
          struct timespec ts[2] = { st.st_mtim, st.st_mtim };
          utimensat (d.upperfd, d.dirs[i], ts, AT_SYMLINK_NOFOLLOW);
        }
    }
  ob_strv_free (d.dirs);
  if (d.rootfd >= 0)
    close (d.rootfd);
  if (d.upperfd >= 0)
    close (d.upperfd);
  /* the root now equals the tree with this change: the next step's
   * reference */
  ob_build_copyfs_forget (s);
  ob_strv_free (s->copy_linked);
  s->copy_linked = d.linked;
  if (r == 0)
    s->copy_seen = d.record;
  else
    ob_statmap_free (d.record);
  return r;
}

void
ob_build_copyfs_settle (struct stage *s)
{
  cleanup_close int rootfd = -1;
  if (s->copy_seen && s->copy_linked && s->copy_rootfs)
    rootfd = open (s->copy_rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (size_t i = 0; rootfd >= 0 && s->copy_linked[i]; i++)
    {
      struct stat st;
      if (fstatat (rootfd, s->copy_linked[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
        ob_statmap_put (s->copy_seen, s->copy_linked[i], &st);
    }
  ob_strv_free (s->copy_linked);
  s->copy_linked = NULL;
}

int
ob_build_copyfs_unchanged (struct build *b, struct stage *s, const char *root, ob_error_t *err)
{
  /* compared with the tree alone; what it sees becomes the stage's
   * reference when the root equals the tree */
  struct diff d = { .b = b, .s = s, .rootfd = -1, .upperfd = -1, .dry = true };
  struct stat rst;
  int r;
  if (ob_build_stage_tree (b, s, err) < 0)
    return -1;
  d.rootfd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.rootfd < 0 || fstat (d.rootfd, &rst) < 0)
    {
      if (d.rootfd >= 0)
        close (d.rootfd);
      return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", root);
    }
  d.root_dev = rst.st_dev;
  d.record = ob_statmap_new ();
  r = walk (&d, "", err);
  close (d.rootfd);
  ob_strv_free (d.dirs);
  ob_build_copyfs_forget (s);
  if (r == 0 && !d.changed)
    s->copy_seen = d.record;
  else
    ob_statmap_free (d.record);
  return r < 0 ? -1 : d.changed ? 0 : 1;
}

int
ob_build_copyfs_record (struct build *b, struct stage *s, ob_error_t *err)
{
  /* a root that differs from the tree (a device node the layer had and
   * this process could not make) keeps the comparison with the tree */
  if (s->copy_seen)
    return 0;
  return ob_build_copyfs_unchanged (b, s, s->copy_rootfs, err) < 0 ? -1 : 0;
}

int
ob_build_copyfs_changes (struct build *b, struct stage *s, int rootfd, struct ob_changes **out, ob_error_t *err)
{
  struct ob_changes *c = ob_xmalloc0 (sizeof *c);
  struct diff d = { .b = b, .s = s, .rootfd = rootfd, .upperfd = -1, .list = c, .seen = s->copy_seen };
  struct stat rst;
  size_t w = 0;
  int r;
  *out = NULL;
  if (ob_build_stage_tree (b, s, err) < 0 || fstat (rootfd, &rst) < 0)
    {
      ob_changes_free (c);
      return *err ? -1 : ob_error_make (err, OB_ERR_STORE, errno, "stat the root");
    }
  d.root_dev = rst.st_dev;
  d.record = ob_statmap_new ();
  r = walk (&d, "", err);
  ob_strv_free (d.dirs);
  ob_build_copyfs_forget (s);
  if (r < 0)
    {
      ob_statmap_free (d.record);
      ob_changes_free (c);
      return -1;
    }
  s->copy_seen = d.record;
  if (c->n > 1)
    qsort (c->items, c->n, sizeof *c->items, cmp_change);
  for (size_t i = 0; i < c->n; i++)
    if (w > 0 && strcmp (c->items[w - 1].path, c->items[i].path) == 0)
      free (c->items[i].path);
    else
      c->items[w++] = c->items[i];
  c->n = w;
  *out = c;
  return 0;
}
