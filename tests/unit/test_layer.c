/* Unit tests for snapshot and layer: scanning upper dirs, writing,
 * importing, detecting, extracting and reading layers.  Every case works in a
 * fresh temporary directory; test archives are generated here with
 * libarchive so hostile names are exactly what we want. */
#include "config.h"
#include <obuild/layer.h>
#include <obuild/snapshot.h>
#include <obuild/tree.h>
#include <obuild/util.h>

#include "tap.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdbool.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

/* Every fdatasync of the library: the size of the file at that moment. */
static pthread_mutex_t datasync_mu = PTHREAD_MUTEX_INITIALIZER;
static off_t datasynced[64];
static int n_datasynced;

int
fdatasync (int fd)
{
  struct stat st;
  pthread_mutex_lock (&datasync_mu);
  if (n_datasynced < 64)
    datasynced[n_datasynced++] = fstat (fd, &st) == 0 ? st.st_size : -1;
  pthread_mutex_unlock (&datasync_mu);
  return (int) syscall (SYS_fdatasync, fd);
}

/* ---- fixtures ---- */

struct td
{
  char *path;
  int fd;
};

static struct td
td_new (void)
{
  struct td t;
  char tmpl[] = "/tmp/obuild-test-layer-XXXXXX";
  if (mkdtemp (tmpl) == NULL)
    abort ();
  t.path = ob_xstrdup (tmpl);
  t.fd = open (t.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (t.fd < 0)
    abort ();
  return t;
}

static void
td_free (struct td *t)
{
  ob_error_t err = NULL;
  close (t->fd);
  ob_rm_rf_at (AT_FDCWD, t->path, &err);
  ob_error_free (&err);
  free (t->path);
}

static char *
td_file (struct td *t, const char *name)
{
  return ob_xasprintf ("%s/%s", t->path, name);
}

static void
put (int dirfd, const char *path, const char *content, mode_t mode)
{
  int fd = openat (dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write (fd, content, strlen (content)) != (ssize_t) strlen (content))
    abort ();
  fchmod (fd, mode);
  close (fd);
}

static void
mkd (int dirfd, const char *path, mode_t mode)
{
  if (mkdirat (dirfd, path, mode) < 0)
    abort ();
  if (fchmodat (dirfd, path, mode, 0) < 0)
    abort ();
}

static void
set_mtime (int dirfd, const char *path, time_t t)
{
  struct timespec ts[2] = { { t, 0 }, { t, 0 } };
  utimensat (dirfd, path, ts, AT_SYMLINK_NOFOLLOW);
}

static char *
slurp_at (int dirfd, const char *path, size_t *len)
{
  ob_error_t err = NULL;
  char *data = NULL;
  if (ob_read_file_at (dirfd, path, &data, len, &err) < 0)
    {
      ob_error_free (&err);
      return NULL;
    }
  return data;
}

static bool
exists_at (int dirfd, const char *path)
{
  struct stat st;
  return fstatat (dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool
is_root (void)
{
  return geteuid () == 0;
}

/* ---- building test tars ---- */

static struct archive *
tb_open (const char *path, const char *filter)
{
  struct archive *a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  if (filter == NULL)
    archive_write_add_filter_none (a);
  else if (strcmp (filter, "gzip") == 0)
    archive_write_add_filter_gzip (a);
  else if (strcmp (filter, "xz") == 0)
    archive_write_add_filter_xz (a);
  else if (strcmp (filter, "zstd") == 0)
    archive_write_add_filter_zstd (a);
  else if (strcmp (filter, "bzip2") == 0)
    archive_write_add_filter_bzip2 (a);
  if (archive_write_open_filename (a, path) != ARCHIVE_OK)
    abort ();
  return a;
}

/* mode includes the file type; data for regular files; link is the symlink
 * target, or the hardlink target when mode is 0. */
static void
tb_add (struct archive *a, const char *name, mode_t mode, const char *data, const char *link)
{
  struct archive_entry *e = archive_entry_new ();
  archive_entry_set_pathname (e, name);
  archive_entry_set_mtime (e, 1000000, 0);
  archive_entry_set_uid (e, 0);
  archive_entry_set_gid (e, 0);
  if (mode == 0)
    {
      archive_entry_set_mode (e, AE_IFREG | 0644);
      archive_entry_set_hardlink (e, link);
      archive_entry_set_size (e, 0);
    }
  else
    {
      archive_entry_set_mode (e, mode);
      if (S_ISLNK (mode))
        archive_entry_set_symlink (e, link);
      archive_entry_set_size (e, S_ISREG (mode) && data ? strlen (data) : 0);
    }
  if (archive_write_header (a, e) != ARCHIVE_OK)
    abort ();
  if (mode && S_ISREG (mode) && data && *data)
    archive_write_data (a, data, strlen (data));
  archive_entry_free (e);
}

static void
tb_close (struct archive *a)
{
  archive_write_close (a);
  archive_write_free (a);
}

/* ---- reading layers back ---- */

struct ent
{
  char *name;
  mode_t mode; /* with type */
  int64_t uid, gid;
  char *uname, *gname;
  char *symlink, *hardlink;
  int64_t mtime;
  long mtime_nsec;
  int64_t size;
  char *data;
  char *xattr_user_x;
  bool has_overlay_xattr;
  bool has_device_xattr;
  unsigned rmajor, rminor;
};

struct ents
{
  struct ent e[64];
  size_t n;
};

static char *
dup_or_null (const char *s)
{
  return s ? ob_xstrdup (s) : NULL;
}

static int
read_ents (const char *path, struct ents *out)
{
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  memset (out, 0, sizeof *out);
  archive_read_support_filter_all (a);
  archive_read_support_format_tar (a);
  if (archive_read_open_filename (a, path, 65536) != ARCHIVE_OK)
    {
      archive_read_free (a);
      return -1;
    }
  while (archive_read_next_header (a, &e) == ARCHIVE_OK && out->n < 64)
    {
      struct ent *x = &out->e[out->n++];
      struct ob_buf b = { 0 };
      const char *xn;
      const void *xv;
      size_t xs;
      char buf[65536];
      la_ssize_t r;
      x->name = ob_xstrdup (archive_entry_pathname (e));
      x->mode = archive_entry_mode (e);
      x->uid = archive_entry_uid (e);
      x->gid = archive_entry_gid (e);
      x->uname = dup_or_null (archive_entry_uname (e));
      x->gname = dup_or_null (archive_entry_gname (e));
      x->symlink = dup_or_null (archive_entry_symlink (e));
      x->hardlink = dup_or_null (archive_entry_hardlink (e));
      x->mtime = archive_entry_mtime (e);
      x->mtime_nsec = archive_entry_mtime_nsec (e);
      x->size = archive_entry_size (e);
      x->rmajor = archive_entry_rdevmajor (e);
      x->rminor = archive_entry_rdevminor (e);
      archive_entry_xattr_reset (e);
      while (archive_entry_xattr_next (e, &xn, &xv, &xs) == ARCHIVE_OK)
        {
          if (strcmp (xn, "user.x") == 0)
            x->xattr_user_x = ob_xstrndup (xv, xs);
          if (ob_str_has_prefix (xn, "user.overlay."))
            x->has_overlay_xattr = true;
          if (strcmp (xn, OB_LAYER_DEVICE_XATTR) == 0)
            x->has_device_xattr = true;
        }
      while ((r = archive_read_data (a, buf, sizeof buf)) > 0)
        ob_buf_add (&b, buf, r);
      x->data = ob_buf_steal (&b);
    }
  archive_read_free (a);
  return 0;
}

static void
ents_free (struct ents *es)
{
  for (size_t i = 0; i < es->n; i++)
    {
      struct ent *x = &es->e[i];
      free (x->name);
      free (x->uname);
      free (x->gname);
      free (x->symlink);
      free (x->hardlink);
      free (x->data);
      free (x->xattr_user_x);
    }
  es->n = 0;
}

static struct ent *
ents_find (struct ents *es, const char *name)
{
  for (size_t i = 0; i < es->n; i++)
    if (strcmp (es->e[i].name, name) == 0)
      return &es->e[i];
  return NULL;
}

/* ---- helpers around the API ---- */

static int
write_layer (int upperfd, const char *out, enum ob_compression c, bool clamp, int64_t max,
             struct ob_layer_result *res, ob_error_t *err)
{
  struct ob_changes *ch = NULL;
  struct ob_layer_opts o = { .compression = c, .clamp_mtime = clamp, .mtime_max = max };
  int fd, ret;
  if (ob_snapshot_scan (upperfd, &ch, err) < 0)
    return -1;
  fd = open (out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    abort ();
  ret = ob_layer_write (upperfd, ch, fd, &o, res, err);
  close (fd);
  ob_changes_free (ch);
  return ret;
}

/* write_layer with a gzip level (0: the default compressor) */
static int
write_gzip_level (int upperfd, const char *out, int level, bool clamp, struct ob_layer_result *res, ob_error_t *err)
{
  struct ob_changes *ch = NULL;
  struct ob_layer_opts o = { .compression = OB_COMPRESS_GZIP, .level = level, .clamp_mtime = clamp, .mtime_max = 2000000000 };
  int fd, ret;
  if (ob_snapshot_scan (upperfd, &ch, err) < 0)
    return -1;
  fd = open (out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    abort ();
  ret = ob_layer_write (upperfd, ch, fd, &o, res, err);
  close (fd);
  ob_changes_free (ch);
  return ret;
}

static int
extract_file (const char *tar, int rootfd, const char *dest, bool wh, ob_error_t *err)
{
  int fd = open (tar, O_RDONLY | O_CLOEXEC);
  int ret;
  if (fd < 0)
    abort ();
  ret = ob_layer_extract (fd, rootfd, dest, wh, true, err);
  close (fd);
  return ret;
}

static char *
read_all (const char *path, size_t *len)
{
  return slurp_at (AT_FDCWD, path, len);
}

static char *
gunzip (const char *data, size_t len, size_t *outlen)
{
  z_stream z = { 0 };
  struct ob_buf b = { 0 };
  unsigned char out[65536];
  int r;
  inflateInit2 (&z, 15 + 32);
  z.next_in = (Bytef *) data;
  z.avail_in = len;
  /* every member (parallel gzip writes one per MiB) */
  for (;;)
    {
      z.next_out = out;
      z.avail_out = sizeof out;
      r = inflate (&z, Z_NO_FLUSH);
      ob_buf_add (&b, out, sizeof out - z.avail_out);
      if (r == Z_STREAM_END && z.avail_in > 0)
        inflateReset (&z);
      else if (r != Z_OK)
        break;
    }
  inflateEnd (&z);
  *outlen = b.len;
  if (r != Z_STREAM_END)
    {
      ob_buf_free (&b);
      return NULL;
    }
  return ob_buf_steal (&b);
}

static char *
unzstd (const char *data, size_t len, size_t *outlen)
{
  ZSTD_DCtx *d = ZSTD_createDCtx ();
  struct ob_buf b = { 0 };
  char out[65536];
  ZSTD_inBuffer in = { data, len, 0 };
  while (in.pos < in.size)
    {
      ZSTD_outBuffer o = { out, sizeof out, 0 };
      size_t r = ZSTD_decompressStream (d, &o, &in);
      if (ZSTD_isError (r))
        break;
      ob_buf_add (&b, out, o.pos);
    }
  ZSTD_freeDCtx (d);
  *outlen = b.len;
  return ob_buf_steal (&b);
}

static void
sha (const char *data, size_t len, char out[OB_DIGEST_LEN])
{
  ob_sha256_digest (data, len, out);
}

/* A small tree used by several cases. */
static void
make_tree (int fd)
{
  mkd (fd, "a", 0755);
  put (fd, "a/f", "hello\n", 0644);
  put (fd, "b", "bee", 0600);
  if (symlinkat ("a/f", fd, "l") < 0)
    abort ();
  mkd (fd, "a/sub", 0700);
  put (fd, "a/sub/x", "x", 0644);
  set_mtime (fd, "a/sub/x", 1500000000);
  set_mtime (fd, "a/sub", 1500000000);
  set_mtime (fd, "a/f", 1500000000);
  set_mtime (fd, "a", 1500000000);
  set_mtime (fd, "b", 1500000000);
  set_mtime (fd, "l", 1500000000);
}

/* ================= snapshot ================= */

TEST (snapshot_order)
{
  struct td t = td_new ();
  struct ob_changes *c = NULL;
  ob_error_t err = NULL;
  mkd (t.fd, "a", 0755);
  put (t.fd, "a.b", "", 0644);
  put (t.fd, "a/z", "", 0644);
  put (t.fd, "a/b", "", 0644);
  put (t.fd, "B", "", 0644);
  put (t.fd, "c", "", 0644);
  CHECK_INT (ob_snapshot_scan (t.fd, &c, &err), 0);
  if (c)
    {
      const char *want[] = { "B", "a", "a/b", "a/z", "a.b", "c" };
      CHECK_INT (c->n, 6);
      for (size_t i = 0; i < c->n && i < 6; i++)
        {
          CHECK_STR (c->items[i].path, want[i]);
          CHECK_INT (c->items[i].kind, OB_CHANGE_ENTRY);
        }
    }
  ob_changes_free (c);
  td_free (&t);
}

/* d/d/.../d, levels deep below fd, made one level at a time */
static bool
mk_chain (int fd, int levels)
{
  int cur = dup (fd);
  for (int i = 0; cur >= 0 && i < levels; i++)
    {
      int next = mkdirat (cur, "d", 0755) == 0 ? openat (cur, "d", O_RDONLY | O_DIRECTORY) : -1;
      close (cur);
      cur = next;
    }
  if (cur < 0)
    return false;
  close (cur);
  return true;
}

/* A path of 4095 bytes is a layer's entry, one byte more is refused, as a
 * step's fault, named cut short; the walk stops there (a step's tree can
 * be deeper than obuild's stack). */
TEST (snapshot_path_bound)
{
  struct td t = td_new ();
  struct ob_changes *c = NULL;
  ob_error_t err = NULL;
  ob_nofile_raise (); /* a descriptor per level */
  /* "d" + "/d" * 2047 = 4095 bytes */
  CHECK (mk_chain (t.fd, 2048));
  CHECK_INT (ob_snapshot_scan (t.fd, &c, &err), 0);
  CHECK (c != NULL && c->n == 2048 && strlen (c->items[2047].path) == 4095);
  ob_changes_free (c);
  c = NULL;
  td_free (&t);
  t = td_new ();
  CHECK (mk_chain (t.fd, 20000));
  CHECK_INT (ob_snapshot_scan (t.fd, &c, &err), -1);
  CHECK (c == NULL);
  CHECK (err != NULL && err->kind == OB_ERR_STEP);
  CHECK (err != NULL && strcmp (err->msg, "path `d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/d/...` is 4097 bytes long, "
                                          "more than a layer holds (4095)") == 0);
  if (err)
    printf ("# %s\n", err->msg);
  ob_error_free (&err);
  td_free (&t);
}

TEST (snapshot_empty)
{
  struct td t = td_new ();
  struct ob_changes *c = NULL;
  ob_error_t err = NULL;
  CHECK_INT (ob_snapshot_scan (t.fd, &c, &err), 0);
  CHECK (c != NULL && c->n == 0);
  ob_changes_free (c);
  td_free (&t);
}

TEST (snapshot_whiteout_chardev)
{
  struct td t = td_new ();
  struct ob_changes *c = NULL;
  ob_error_t err = NULL;
  if (!is_root ())
    {
      printf ("# skip: mknod needs root\n");
      td_free (&t);
      return;
    }
  mkd (t.fd, "d", 0755);
  CHECK_INT (mknodat (t.fd, "d/gone", S_IFCHR | 0, makedev (0, 0)), 0);
  CHECK_INT (mknodat (t.fd, "null", S_IFCHR | 0666, makedev (1, 3)), 0);
  CHECK_INT (ob_snapshot_scan (t.fd, &c, &err), 0);
  CHECK_INT (c->n, 3);
  if (c->n == 3)
    {
      CHECK_STR (c->items[1].path, "d/gone");
      CHECK_INT (c->items[1].kind, OB_CHANGE_WHITEOUT);
      CHECK_STR (c->items[2].path, "null");
      CHECK_INT (c->items[2].kind, OB_CHANGE_ENTRY);
    }
  ob_changes_free (c);
  td_free (&t);
}

TEST (snapshot_opaque_and_xattr_whiteout)
{
  struct td t = td_new ();
  struct ob_changes *c = NULL;
  ob_error_t err = NULL;
  char *p;
  mkd (t.fd, "d", 0755);
  mkd (t.fd, "e", 0755);
  put (t.fd, "d/keep", "k", 0644);
  put (t.fd, "wh", "", 0644);
  p = td_file (&t, "d");
  CHECK_INT (setxattr (p, "user.overlay.opaque", "y", 1, 0), 0);
  free (p);
  /* "x" marks a directory holding xattr whiteouts: not opaque. */
  p = td_file (&t, "e");
  CHECK_INT (setxattr (p, "user.overlay.opaque", "x", 1, 0), 0);
  free (p);
  p = td_file (&t, "wh");
  CHECK_INT (setxattr (p, "user.overlay.whiteout", "", 0, 0), 0);
  free (p);
  CHECK_INT (ob_snapshot_scan (t.fd, &c, &err), 0);
  CHECK_INT (c->n, 5);
  if (c->n == 5)
    {
      CHECK_STR (c->items[0].path, "d");
      CHECK_INT (c->items[0].kind, OB_CHANGE_ENTRY);
      CHECK_STR (c->items[1].path, "d");
      CHECK_INT (c->items[1].kind, OB_CHANGE_OPAQUE);
      CHECK_STR (c->items[2].path, "d/keep");
      CHECK_STR (c->items[3].path, "e");
      CHECK_INT (c->items[3].kind, OB_CHANGE_ENTRY);
      CHECK_STR (c->items[4].path, "wh");
      CHECK_INT (c->items[4].kind, OB_CHANGE_WHITEOUT);
    }
  ob_changes_free (c);
  td_free (&t);
}

TEST (snapshot_trusted_opaque)
{
  struct td t = td_new ();
  struct ob_changes *c = NULL;
  ob_error_t err = NULL;
  char *p;
  if (!is_root ())
    {
      printf ("# skip: trusted.* xattrs need root\n");
      td_free (&t);
      return;
    }
  mkd (t.fd, "d", 0755);
  p = td_file (&t, "d");
  CHECK_INT (setxattr (p, "trusted.overlay.opaque", "y", 1, 0), 0);
  free (p);
  CHECK_INT (ob_snapshot_scan (t.fd, &c, &err), 0);
  CHECK_INT (c->n, 2);
  if (c->n == 2)
    CHECK_INT (c->items[1].kind, OB_CHANGE_OPAQUE);
  ob_changes_free (c);
  td_free (&t);
}

TEST (snapshot_bad_fd)
{
  struct ob_changes *c = NULL;
  ob_error_t err = NULL;
  CHECK (ob_snapshot_scan (-1, &c, &err) < 0);
  CHECK (err != NULL && err->kind == OB_ERR_STORE);
  CHECK (c == NULL);
  ob_error_free (&err);
}

/* ================= ob_layer_write ================= */

TEST (write_deterministic)
{
  struct td t = td_new ();
  struct ob_layer_result r1 = { 0 }, r2 = { 0 };
  ob_error_t err = NULL;
  char *o1 = td_file (&t, "1.tgz"), *o2 = td_file (&t, "2.tgz");
  char *d1, *d2;
  size_t l1 = 0, l2 = 0;
  mkd (t.fd, "up", 0755);
  {
    int up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
    make_tree (up);
    CHECK_INT (write_layer (up, o1, OB_COMPRESS_GZIP, false, 0, &r1, &err), 0);
    CHECK_INT (write_layer (up, o2, OB_COMPRESS_GZIP, false, 0, &r2, &err), 0);
    close (up);
  }
  d1 = read_all (o1, &l1);
  d2 = read_all (o2, &l2);
  CHECK (d1 && d2 && l1 == l2 && memcmp (d1, d2, l1) == 0);
  CHECK_STR (r1.digest, r2.digest);
  CHECK_STR (r1.diff_id, r2.diff_id);
  free (d1);
  free (d2);
  free (o1);
  free (o2);
  td_free (&t);
}

TEST (write_clamp_identical)
{
  struct td t = td_new ();
  struct ob_layer_result r1 = { 0 }, r2 = { 0 };
  ob_error_t err = NULL;
  char *o1 = td_file (&t, "1.tgz"), *o2 = td_file (&t, "2.tgz");
  char *d1, *d2;
  size_t l1 = 0, l2 = 0;
  struct ents es;
  int u1, u2;
  mkd (t.fd, "u1", 0755);
  mkd (t.fd, "u2", 0755);
  u1 = openat (t.fd, "u1", O_RDONLY | O_DIRECTORY);
  u2 = openat (t.fd, "u2", O_RDONLY | O_DIRECTORY);
  make_tree (u1);
  make_tree (u2);
  set_mtime (u1, "b", 1600000000);
  set_mtime (u2, "b", 1700000000);
  set_mtime (u2, "a", 1700000001);
  CHECK_INT (write_layer (u1, o1, OB_COMPRESS_GZIP, true, 1400000000, &r1, &err), 0);
  CHECK_INT (write_layer (u2, o2, OB_COMPRESS_GZIP, true, 1400000000, &r2, &err), 0);
  d1 = read_all (o1, &l1);
  d2 = read_all (o2, &l2);
  CHECK (d1 && d2 && l1 == l2 && memcmp (d1, d2, l1) == 0);
  CHECK_INT (read_ents (o1, &es), 0);
  CHECK_INT (ents_find (&es, "b") ? ents_find (&es, "b")->mtime : -1, 1400000000);
  ents_free (&es);
  free (d1);
  free (d2);
  free (o1);
  free (o2);
  close (u1);
  close (u2);
  td_free (&t);
}

TEST (write_clamp_keeps_older)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tar");
  struct ents es;
  int up;
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  put (up, "old", "o", 0644);
  put (up, "new", "n", 0644);
  set_mtime (up, "old", 1000);
  set_mtime (up, "new", 2000000000);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_NONE, true, 1500000000, &r, &err), 0);
  CHECK_INT (read_ents (o, &es), 0);
  CHECK (ents_find (&es, "old") && ents_find (&es, "old")->mtime == 1000);
  CHECK (ents_find (&es, "new") && ents_find (&es, "new")->mtime == 1500000000);
  CHECK (ents_find (&es, "new") && ents_find (&es, "new")->mtime_nsec == 0);
  ents_free (&es);
  close (up);
  free (o);
  td_free (&t);
}

TEST (write_gzip_digests)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tgz");
  char *blob, *tar;
  size_t bl = 0, tl = 0;
  char d[OB_DIGEST_LEN];
  int up;
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  make_tree (up);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_GZIP, false, 0, &r, &err), 0);
  blob = read_all (o, &bl);
  CHECK (blob != NULL);
  CHECK_INT (r.size, bl);
  sha (blob, bl, d);
  CHECK_STR (r.digest, d);
  tar = gunzip (blob, bl, &tl);
  CHECK (tar != NULL && tl > 0 && tl % 512 == 0);
  if (tar)
    {
      sha (tar, tl, d);
      CHECK_STR (r.diff_id, d);
    }
  CHECK_STR (r.media_type, OB_MT_LAYER_GZIP);
  CHECK (ob_digest_valid (r.digest) && ob_digest_valid (r.diff_id));
  free (tar);
  free (blob);
  close (up);
  free (o);
  td_free (&t);
}

/* igzip (the default when not reproducible) and libdeflate give other
 * bytes for the same tar; each is the same from one write to the next, a
 * member igzip cannot fit (random data) goes to libdeflate, and
 * SOURCE_DATE_EPOCH or a level asked for mean libdeflate. */
TEST (write_gzip_isal)
{
  struct td t = td_new ();
  struct ob_layer_result ri = { 0 }, ri2 = { 0 }, rl = { 0 }, rc = { 0 };
  ob_error_t err = NULL;
  char *oi = td_file (&t, "i.tgz"), *oi2 = td_file (&t, "i2.tgz"), *ol = td_file (&t, "l.tgz");
  char *blob, *tar, *big;
  size_t bl = 0, tl = 0, n = 3u << 20;
  char d[OB_DIGEST_LEN], desc[64];
  unsigned int seed = 7;
  int up, fd;
  struct ob_layer_opts o = { .compression = OB_COMPRESS_GZIP };
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  make_tree (up);
  /* 3 MiB of random bytes (incompressible) and 3 MiB of text */
  big = malloc (n);
  for (size_t i = 0; i < n; i++)
    big[i] = (char) (rand_r (&seed) & 0xff);
  fd = openat (up, "random", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK (fd >= 0 && write (fd, big, n) == (ssize_t) n);
  close (fd);
  for (size_t i = 0; i < n; i++)
    big[i] = "obuild layers "[i % 14];
  fd = openat (up, "text", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK (fd >= 0 && write (fd, big, n) == (ssize_t) n);
  close (fd);
  free (big);
  CHECK_INT (write_gzip_level (up, oi, 0, false, &ri, &err), 0);
  CHECK_INT (write_gzip_level (up, oi2, 0, false, &ri2, &err), 0);
  CHECK_INT (write_gzip_level (up, ol, 1, false, &rl, &err), 0);
  CHECK_STR (ri.digest, ri2.digest);
  CHECK_STR (ri.diff_id, rl.diff_id);
  CHECK (strcmp (ri.digest, rl.digest) != 0);
  blob = read_all (oi, &bl);
  CHECK (blob != NULL && (int64_t) bl == ri.size);
  CHECK (blob && (unsigned char) blob[0] == 0x1f && (unsigned char) blob[9] == 255);
  tar = blob ? gunzip (blob, bl, &tl) : NULL;
  CHECK (tar != NULL && tl > 6u << 20);
  if (tar)
    {
      sha (tar, tl, d);
      CHECK_STR (ri.diff_id, d);
    }
  free (tar);
  free (blob);
  /* reproducible: the clamped write is libdeflate's level 1 */
  CHECK_INT (write_gzip_level (up, oi2, 0, true, &rc, &err), 0);
  CHECK_INT (write_gzip_level (up, ol, 1, true, &rl, &err), 0);
  CHECK_STR (rc.digest, rl.digest);
  ob_layer_opts_describe (&o, desc, sizeof desc);
  CHECK_STR (desc, "gzip/igzip");
  CHECK (ob_layer_gzip_isal (&o));
  o.clamp_mtime = true;
  ob_layer_opts_describe (&o, desc, sizeof desc);
  CHECK_STR (desc, "gzip/1");
  o.clamp_mtime = false;
  o.level = 6;
  ob_layer_opts_describe (&o, desc, sizeof desc);
  CHECK_STR (desc, "gzip/6");
  CHECK (!ob_layer_gzip_isal (&o));
  o.compression = OB_COMPRESS_ZSTD;
  o.level = 0;
  ob_layer_opts_describe (&o, desc, sizeof desc);
  CHECK_STR (desc, "zstd/0");
  CHECK (!ob_layer_gzip_isal (&o));
  close (up);
  free (oi);
  free (oi2);
  free (ol);
  td_free (&t);
}

TEST (write_gzip_header)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tgz");
  unsigned char *b;
  size_t bl = 0;
  int up;
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  put (up, "f", "content", 0644);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_GZIP, false, 0, &r, &err), 0);
  b = (unsigned char *) read_all (o, &bl);
  CHECK (b != NULL && bl > 10);
  if (b && bl > 10)
    {
      CHECK_INT (b[0], 0x1f);
      CHECK_INT (b[1], 0x8b);
      CHECK_INT (b[3], 0);                        /* flags: no name, no comment */
      CHECK_INT (b[4] | b[5] | b[6] | b[7], 0); /* mtime 0 */
      CHECK_INT (b[9], 255);                      /* OS fixed */
    }
  free (b);
  close (up);
  free (o);
  td_free (&t);
}

TEST (write_zstd)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 }, r2 = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.zst"), *o2 = td_file (&t, "l2.zst");
  char *blob, *blob2, *tar;
  size_t bl = 0, bl2 = 0, tl = 0;
  char d[OB_DIGEST_LEN];
  struct ents es;
  int up;
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  make_tree (up);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_ZSTD, false, 0, &r, &err), 0);
  CHECK_INT (write_layer (up, o2, OB_COMPRESS_ZSTD, false, 0, &r2, &err), 0);
  blob = read_all (o, &bl);
  blob2 = read_all (o2, &bl2);
  CHECK (bl == bl2 && memcmp (blob, blob2, bl) == 0);
  CHECK ((unsigned char) blob[0] == 0x28 && (unsigned char) blob[1] == 0xb5);
  sha (blob, bl, d);
  CHECK_STR (r.digest, d);
  tar = unzstd (blob, bl, &tl);
  sha (tar, tl, d);
  CHECK_STR (r.diff_id, d);
  CHECK_STR (r.media_type, OB_MT_LAYER_ZSTD);
  CHECK_INT (read_ents (o, &es), 0);
  CHECK (ents_find (&es, "a/f") && strcmp (ents_find (&es, "a/f")->data, "hello\n") == 0);
  ents_free (&es);
  free (tar);
  free (blob);
  free (blob2);
  close (up);
  free (o);
  free (o2);
  td_free (&t);
}

TEST (write_none)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tar");
  char *blob;
  size_t bl = 0;
  char d[OB_DIGEST_LEN];
  int up;
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  make_tree (up);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_NONE, false, 0, &r, &err), 0);
  blob = read_all (o, &bl);
  sha (blob, bl, d);
  CHECK_STR (r.digest, d);
  CHECK_STR (r.diff_id, d);
  CHECK_STR (r.media_type, OB_MT_LAYER_TAR);
  CHECK_INT (bl % 512, 0);
  /* Ends with the two zero blocks and nothing more. */
  CHECK (bl >= 1024 && blob[bl - 1024 - 1] == 0 && memcmp (blob + bl - 1024, blob + bl - 512, 512) == 0);
  free (blob);
  close (up);
  free (o);
  td_free (&t);
}

TEST (write_entries)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tgz");
  struct ents es;
  struct ent *x;
  int up;
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  make_tree (up);
  put (up, "suid", "s", 0644);
  if (is_root ())
    CHECK_INT (fchownat (up, "suid", 1234, 5678, 0), 0);
  CHECK_INT (fchmodat (up, "suid", 04755, 0), 0);
  mkd (up, "sticky", 01777);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_GZIP, false, 0, &r, &err), 0);
  CHECK_INT (read_ents (o, &es), 0);
  CHECK_INT (es.n, 8);
  CHECK_STR (es.n > 0 ? es.e[0].name : NULL, "a/");
  x = ents_find (&es, "a/");
  CHECK (x && S_ISDIR (x->mode) && (x->mode & 07777) == 0755 && x->mtime == 1500000000);
  x = ents_find (&es, "a/sub/");
  CHECK (x && (x->mode & 07777) == 0700);
  x = ents_find (&es, "a/f");
  CHECK (x && S_ISREG (x->mode) && x->size == 6 && strcmp (x->data, "hello\n") == 0);
  CHECK (x && (x->uname == NULL || *x->uname == '\0') && (x->gname == NULL || *x->gname == '\0'));
  x = ents_find (&es, "b");
  CHECK (x && (x->mode & 07777) == 0600);
  x = ents_find (&es, "l");
  CHECK (x && S_ISLNK (x->mode) && x->symlink && strcmp (x->symlink, "a/f") == 0);
  x = ents_find (&es, "suid");
  CHECK (x && (x->mode & 07777) == 04755);
  if (x && is_root ())
    {
      CHECK_INT (x->uid, 1234);
      CHECK_INT (x->gid, 5678);
    }
  x = ents_find (&es, "sticky/");
  CHECK (x && (x->mode & 07777) == 01777);
  ents_free (&es);
  close (up);
  free (o);
  td_free (&t);
}

TEST (write_hardlink)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tar");
  struct ents es;
  struct ent *x;
  int up;
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  put (up, "first", "data", 0644);
  mkd (up, "z", 0755);
  CHECK_INT (linkat (up, "first", up, "z/second", 0), 0);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_NONE, false, 0, &r, &err), 0);
  CHECK_INT (read_ents (o, &es), 0);
  x = ents_find (&es, "first");
  CHECK (x && x->hardlink == NULL && x->size == 4);
  x = ents_find (&es, "z/second");
  CHECK (x && x->hardlink && strcmp (x->hardlink, "first") == 0 && x->size == 0);
  ents_free (&es);
  close (up);
  free (o);
  td_free (&t);
}

TEST (write_whiteout_opaque_markers)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tar");
  struct ob_change items[] = {
    { (char *) "d", OB_CHANGE_ENTRY },
    { (char *) "d", OB_CHANGE_OPAQUE },
    { (char *) "d/gone", OB_CHANGE_WHITEOUT },
    { (char *) "top", OB_CHANGE_WHITEOUT },
  };
  struct ob_changes ch = { items, 4 };
  struct ob_layer_opts opts = { .compression = OB_COMPRESS_NONE, .clamp_mtime = true,
                                .mtime_max = 12345 };
  struct ents es;
  struct ent *x;
  int fd;
  mkd (t.fd, "d", 0755);
  fd = open (o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK_INT (ob_layer_write (t.fd, &ch, fd, &opts, &r, &err), 0);
  close (fd);
  CHECK_INT (read_ents (o, &es), 0);
  CHECK_INT (es.n, 4);
  if (es.n == 4)
    {
      CHECK_STR (es.e[0].name, "d/");
      CHECK_STR (es.e[1].name, "d/.wh..wh..opq");
      CHECK_STR (es.e[2].name, "d/.wh.gone");
      CHECK_STR (es.e[3].name, ".wh.top");
    }
  x = ents_find (&es, "d/.wh.gone");
  CHECK (x && S_ISREG (x->mode) && (x->mode & 07777) == 0 && x->uid == 0 && x->gid == 0
         && x->size == 0 && x->mtime == 12345);
  ents_free (&es);
  free (o);
  td_free (&t);
}

TEST (write_xattrs)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tar");
  char *p = td_file (&t, "up/f");
  char *pd = td_file (&t, "up/d");
  struct ents es;
  struct ent *x;
  int up;
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  put (up, "f", "x", 0644);
  mkd (up, "d", 0755);
  CHECK_INT (setxattr (p, "user.x", "val", 3, 0), 0);
  CHECK_INT (setxattr (pd, "user.overlay.origin", "zz", 2, 0), 0);
  CHECK_INT (setxattr (pd, "user.x", "dirval", 6, 0), 0);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_NONE, false, 0, &r, &err), 0);
  CHECK_INT (read_ents (o, &es), 0);
  x = ents_find (&es, "f");
  CHECK (x && x->xattr_user_x && strcmp (x->xattr_user_x, "val") == 0);
  x = ents_find (&es, "d/");
  CHECK (x && x->xattr_user_x && strcmp (x->xattr_user_x, "dirval") == 0);
  CHECK (x && !x->has_overlay_xattr);
  ents_free (&es);
  close (up);
  free (p);
  free (pd);
  free (o);
  td_free (&t);
}

/* The device xattr's value: exactly what handle_mknod writes, nothing
 * else (a forged value leaves a regular file). */
TEST (device_parse)
{
  static const char *const bad[] = {
    "", "c", "c ", "c 1", "c 1:", "c :3", "x 1:3", "C 1:3", "c  1:3", "c 1: 3", "c 1:3 ",
    "c 1:3\n", " c 1:3", "c 01:3", "c 1:03", "c 00:0", "c +1:3", "c -1:3", "c 1:-3",
    "c 4096:0", "c 1:1048576", "c 99999999999999999999999:1", "c 1:3:4", "c 0x1:3", "p 1:3",
    "b 1.0:3",
  };
  mode_t type = 0;
  dev_t rdev = 0;
  char buf[32];

  CHECK_INT (ob_layer_device_parse ("c 1:3", 5, &type, &rdev), 0);
  CHECK (type == S_IFCHR && major (rdev) == 1 && minor (rdev) == 3);
  CHECK_INT (ob_layer_device_parse ("b 7:0", 5, &type, &rdev), 0);
  CHECK (type == S_IFBLK && major (rdev) == 7 && minor (rdev) == 0);
  CHECK_INT (ob_layer_device_parse ("c 0:0", 5, &type, &rdev), 0);
  CHECK (type == S_IFCHR && rdev == 0);
  CHECK_INT (ob_layer_device_parse ("b 4095:1048575", 14, &type, &rdev), 0);
  CHECK (type == S_IFBLK && major (rdev) == 4095 && minor (rdev) == 1048575);
  /* the length decides, not a NUL: "c 1:3" followed by a NUL is not it */
  CHECK_INT (ob_layer_device_parse ("c 1:3\0", 6, &type, &rdev), -1);
  CHECK_INT (ob_layer_device_parse ("c 1:34", 5, &type, &rdev), 0);
  CHECK (minor (rdev) == 3);
  CHECK_INT (ob_layer_device_parse (NULL, 0, &type, &rdev), -1);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      type = 0;
      if (ob_layer_device_parse (bad[i], strlen (bad[i]), &type, &rdev) != -1 || type != 0)
        {
          printf ("#   accepted \"%s\"\n", bad[i]);
          CHECK (0);
        }
    }
  ob_layer_device_format (buf, sizeof buf, S_IFCHR, makedev (1, 3));
  CHECK_STR (buf, "c 1:3");
  ob_layer_device_format (buf, sizeof buf, S_IFBLK, makedev (4095, 1048575));
  CHECK_STR (buf, "b 4095:1048575");
  CHECK_INT (ob_layer_device_parse (buf, strlen (buf), &type, &rdev), 0);
  CHECK (type == S_IFBLK && rdev == makedev (4095, 1048575));
}

/* A regular file with a valid device xattr (single-ID mode's mknod) is
 * written as that device, size 0, its mode and owner kept; a malformed
 * value, or the xattr on a directory, leaves the entry as it is; the
 * xattr itself never reaches the layer. */
TEST (write_device_placeholder)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tar");
  char *pc = td_file (&t, "up/null");
  char *pb = td_file (&t, "up/blk");
  char *px = td_file (&t, "up/forged");
  char *pd = td_file (&t, "up/d");
  struct ents es;
  struct ent *x;
  int up;
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  put (up, "null", "written to", 0640);
  put (up, "blk", "", 0600);
  put (up, "forged", "data", 0644);
  mkd (up, "d", 0755);
  CHECK_INT (setxattr (pc, OB_LAYER_DEVICE_XATTR, "c 1:3", 5, 0), 0);
  CHECK_INT (setxattr (pc, OB_LAYER_OWNER_XATTR, "5:6", 3, 0), 0);
  CHECK_INT (setxattr (pb, OB_LAYER_DEVICE_XATTR, "b 7:0", 5, 0), 0);
  CHECK_INT (setxattr (px, OB_LAYER_DEVICE_XATTR, "c 01:3", 6, 0), 0);
  CHECK_INT (setxattr (pd, OB_LAYER_DEVICE_XATTR, "c 1:3", 5, 0), 0);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_NONE, false, 0, &r, &err), 0);
  CHECK (err == NULL);
  CHECK_INT (read_ents (o, &es), 0);
  x = ents_find (&es, "null");
  CHECK (x && x->mode == (S_IFCHR | 0640) && x->rmajor == 1 && x->rminor == 3 && x->size == 0);
  CHECK (x && x->uid == 5 && x->gid == 6 && !x->has_device_xattr);
  x = ents_find (&es, "blk");
  CHECK (x && x->mode == (S_IFBLK | 0600) && x->rmajor == 7 && x->rminor == 0 && x->size == 0);
  CHECK (x && !x->has_device_xattr);
  x = ents_find (&es, "forged");
  CHECK (x && x->mode == (S_IFREG | 0644) && x->size == 4 && strcmp (x->data, "data") == 0);
  CHECK (x && !x->has_device_xattr);
  x = ents_find (&es, "d/");
  CHECK (x && S_ISDIR (x->mode) && !x->has_device_xattr);
  ents_free (&es);
  close (up);
  free (pc);
  free (pb);
  free (px);
  free (pd);
  free (o);
  td_free (&t);
}

TEST (write_large_file)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tgz");
  size_t n = 3 * 65536 + 123;
  char *big = ob_xmalloc (n + 1);
  struct ents es;
  struct ent *x;
  int up, fd;
  for (size_t i = 0; i < n; i++)
    big[i] = 'a' + (i * 7) % 26;
  big[n] = '\0';
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  fd = openat (up, "big", O_WRONLY | O_CREAT, 0644);
  CHECK_INT (write (fd, big, n), n);
  close (fd);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_GZIP, false, 0, &r, &err), 0);
  CHECK_INT (read_ents (o, &es), 0);
  x = ents_find (&es, "big");
  CHECK (x && x->size == (int64_t) n && memcmp (x->data, big, n) == 0);
  ents_free (&es);
  free (big);
  close (up);
  free (o);
  td_free (&t);
}

/* A blob is made durable while it is written: every 32 MiB a thread of
 * the writer fdatasyncs it (the store's fsync then has little left), only
 * for a regular file, never for a small layer, and the thread is gone when
 * the writer returns (no sync after it). */
TEST (write_flushes_ahead)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 }, r2 = { 0 };
  ob_error_t err = NULL;
  char big_digest[OB_DIGEST_LEN];
  char *o = td_file (&t, "l.tar"), *o2 = td_file (&t, "l2.tar");
  size_t n = 1u << 20;
  char *chunk = ob_xmalloc (n);
  struct stat st;
  int up, small, fd, p[2], n_big;
  memset (chunk, 'x', n);
  mkd (t.fd, "up", 0755);
  mkd (t.fd, "small", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  small = openat (t.fd, "small", O_RDONLY | O_DIRECTORY);
  put (small, "f", "content", 0644);
  fd = openat (up, "big", O_WRONLY | O_CREAT, 0644);
  for (int i = 0; i < 80; i++)
    CHECK_INT (write (fd, chunk, n), n);
  close (fd);
  free (chunk);

  n_datasynced = 0;
  CHECK_INT (write_layer (up, o, OB_COMPRESS_NONE, false, 0, &r, &err), 0);
  n_big = n_datasynced;
  CHECK (stat (o, &st) == 0 && st.st_size == r.size && r.size > 80 << 20);
  /* 80 MiB: a request at 32 and at 64 MiB; the second may come while the
   * first sync runs and is then taken after it */
  CHECK (n_big >= 1 && n_big <= 2);
  for (int i = 0; i < n_big; i++)
    CHECK (datasynced[i] >= 32 << 20 && datasynced[i] <= r.size);
  usleep (100000);
  CHECK_INT (n_datasynced, n_big);

  /* the same bytes from one write to the next */
  CHECK_INT (write_layer (up, o2, OB_COMPRESS_NONE, false, 0, &r2, &err), 0);
  CHECK_STR (r.digest, r2.digest);
  CHECK_STR (r.diff_id, r.digest);
  snprintf (big_digest, sizeof big_digest, "%s", r.digest);

  n_datasynced = 0;
  CHECK_INT (write_layer (small, o, OB_COMPRESS_GZIP, false, 0, &r, &err), 0);
  CHECK_INT (n_datasynced, 0);

  /* not a regular file: a pipe read by a child */
  CHECK_INT (pipe (p), 0);
  pid_t pid = fork ();
  if (pid == 0)
    {
      char buf[65536];
      close (p[1]);
      while (read (p[0], buf, sizeof buf) > 0)
        ;
      _exit (0);
    }
  close (p[0]);
  {
    struct ob_changes *ch = NULL;
    struct ob_layer_opts opts = { .compression = OB_COMPRESS_NONE };
    CHECK_INT (ob_snapshot_scan (up, &ch, &err), 0);
    n_datasynced = 0;
    CHECK_INT (ob_layer_write (up, ch, p[1], &opts, &r2, &err), 0);
    CHECK_INT (n_datasynced, 0);
    CHECK_STR (r2.digest, big_digest);
    ob_changes_free (ch);
  }
  close (p[1]);
  waitpid (pid, NULL, 0);
  close (up);
  close (small);
  free (o);
  free (o2);
  td_free (&t);
}

TEST (write_missing_path_error)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  struct ob_change items[] = { { (char *) "nope/file", OB_CHANGE_ENTRY } };
  struct ob_changes ch = { items, 1 };
  struct ob_layer_opts opts = { .compression = OB_COMPRESS_GZIP };
  int fd = openat (t.fd, "out", O_WRONLY | O_CREAT, 0644);
  CHECK (ob_layer_write (t.fd, &ch, fd, &opts, &r, &err) < 0);
  CHECK (err && err->kind == OB_ERR_STORE && strstr (err->msg, "nope") != NULL);
  ob_error_free (&err);
  close (fd);
  td_free (&t);
}

/* ob_layer_write_sources: an entry's source is checked to be the inode the
 * plan saw, and resolved inside srcfd whatever its symlinks say. */
static int
write_one_source (struct td *t, int srcfd, struct ob_layer_src *x, ob_error_t *err)
{
  struct ob_layer_result r = { 0 };
  struct ob_layer_opts opts = { .compression = OB_COMPRESS_NONE };
  int fd = openat (t->fd, "out.tar", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int ret = ob_layer_write_sources (srcfd, x, 1, fd, &opts, &r, err);
  close (fd);
  return ret;
}

TEST (write_sources_checks_the_source)
{
  struct td t = td_new ();
  ob_error_t err = NULL;
  struct ob_layer_src x = { 0 };
  size_t len = 0;
  char *tar;
  int src;

  mkd (t.fd, "src", 0755);
  src = openat (t.fd, "src", O_RDONLY | O_DIRECTORY);
  put (src, "f", "content", 0644);
  x.path = (char *) "dst/f";
  x.src = (char *) "f";
  CHECK (fstatat (src, "f", &x.st, 0) == 0);
  CHECK_INT (write_one_source (&t, src, &x, &err), 0);
  tar = slurp_at (t.fd, "out.tar", &len);
  CHECK (tar != NULL && len >= 1024 && memmem (tar, len, "content", 7) != NULL);
  free (tar);

  /* replaced by another file since the plan: refused, naming it (the old
   * one kept, so that its inode number is not reused at once) */
  CHECK (renameat (src, "f", src, "old") == 0);
  put (src, "f", "other!!", 0644);
  CHECK (write_one_source (&t, src, &x, &err) < 0);
  CHECK (err && err->kind == OB_ERR_CONTEXT && strstr (err->msg, "`f` changed during the build") != NULL);
  ob_error_free (&err);

  /* shrunk since the plan */
  CHECK (fstatat (src, "f", &x.st, 0) == 0);
  x.st.st_size += 100;
  CHECK (write_one_source (&t, src, &x, &err) < 0);
  CHECK (err && err->kind == OB_ERR_CONTEXT && strstr (err->msg, "changed while writing") != NULL);
  ob_error_free (&err);

  /* replaced by a symlink to it: not followed (a source inside a copied
   * directory), even to the same file */
  CHECK (fstatat (src, "f", &x.st, 0) == 0);
  CHECK (renameat (src, "f", src, "g") == 0 && symlinkat ("g", src, "f") == 0);
  x.follow = false;
  CHECK (write_one_source (&t, src, &x, &err) < 0);
  CHECK (err && err->kind == OB_ERR_CONTEXT && strstr (err->msg, "`f`") != NULL);
  ob_error_free (&err);
  close (src);
  td_free (&t);
}

TEST (write_sources_stay_inside)
{
  struct td t = td_new ();
  ob_error_t err = NULL;
  struct ob_layer_src x = { 0 };
  int src;

  mkd (t.fd, "src", 0755);
  src = openat (t.fd, "src", O_RDONLY | O_DIRECTORY);
  /* a plan that names the host's /etc/passwd through a symlink: resolved
   * inside src, where there is no such file */
  CHECK (symlinkat ("/etc", src, "esc") == 0);
  CHECK (stat ("/etc/passwd", &x.st) == 0);
  x.path = (char *) "p";
  x.src = (char *) "esc/passwd";
  x.follow = true;
  CHECK (write_one_source (&t, src, &x, &err) < 0);
  CHECK (err && err->kind == OB_ERR_CONTEXT && strstr (err->msg, "esc/passwd") != NULL);
  ob_error_free (&err);
  x.src = (char *) "../../../../etc/passwd";
  CHECK (write_one_source (&t, src, &x, &err) < 0);
  CHECK (err && err->kind == OB_ERR_CONTEXT);
  ob_error_free (&err);
  close (src);
  td_free (&t);
}

/* ---- reading gzip through ISA-L (gunzip.c) ---- */

/* Append one gzip member of data to b (zlib, any level). */
static void
gz_member (struct ob_buf *b, const void *data, size_t n, int level)
{
  z_stream z;
  unsigned char out[65536];
  memset (&z, 0, sizeof z);
  if (deflateInit2 (&z, level, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    abort ();
  z.next_in = (Bytef *) data;
  z.avail_in = (uInt) n;
  for (;;)
    {
      int r;
      z.next_out = out;
      z.avail_out = sizeof out;
      r = deflate (&z, Z_FINISH);
      ob_buf_add (b, out, sizeof out - z.avail_out);
      if (r == Z_STREAM_END)
        break;
    }
  deflateEnd (&z);
}

/* ob_layer_diff_id of the bytes b written to a file. */
static int
diff_id_of (struct td *t, const struct ob_buf *b, char out[OB_DIGEST_LEN], ob_error_t *err)
{
  int fd = openat (t->fd, "gz", O_RDWR | O_CREAT | O_TRUNC, 0644);
  int r;
  if (fd < 0 || write (fd, b->data, b->len) != (ssize_t) b->len)
    abort ();
  r = ob_layer_diff_id (fd, out, err);
  close (fd);
  return r;
}

TEST (gunzip_members_and_boundaries)
{
  struct td t = td_new ();
  struct ob_buf plain = { 0 }, gz = { 0 };
  ob_error_t err = NULL;
  char want[OB_DIGEST_LEN], got[OB_DIGEST_LEN];
  unsigned int seed = 7;

  /* 400 members of 1..5000 bytes, stored and compressed, so that member
   * ends fall everywhere against the reader's 256 KiB input blocks */
  for (int i = 0; i < 400; i++)
    {
      char data[5000];
      size_t n = 1 + (size_t) (rand_r (&seed) % (int) sizeof data);
      for (size_t k = 0; k < n; k++)
        data[k] = (char) (i % 3 == 0 ? rand_r (&seed) : 'a' + (int) (k % 7));
      ob_buf_add (&plain, data, n);
      gz_member (&gz, data, n, i % 2 ? 0 : 6);
    }
  sha (plain.data, plain.len, want);
  CHECK_INT (diff_id_of (&t, &gz, got, &err), 0);
  CHECK_STR (got, want);
  /* bytes after the last member that do not start another: ignored, as
   * libarchive's gzip filter does */
  ob_buf_adds (&gz, "trailing junk");
  CHECK_INT (diff_id_of (&t, &gz, got, &err), 0);
  CHECK_STR (got, want);
  ob_buf_free (&gz);
  ob_buf_free (&plain);
  td_free (&t);
}

/* A gzip stream from a pipe (import -) is read without the thread: the
 * same content, and a stream cut short still an error. */
TEST (gunzip_pipe)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 }, ir = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tgz"), *blob;
  size_t bl = 0;
  int up;

  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  make_tree (up);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_GZIP, false, 0, &r, &err), 0);
  blob = read_all (o, &bl);
  for (int cut = 0; cut < 2 && blob; cut++)
    {
      int p[2], out = openat (t.fd, "imp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      struct ob_layer_opts io = { .compression = OB_COMPRESS_NONE };
      pid_t pid;
      CHECK (pipe (p) == 0);
      pid = fork ();
      if (pid == 0)
        {
          close (p[0]);
          _exit (write (p[1], blob, cut ? bl - 4 : bl) >= 0 ? 0 : 1);
        }
      close (p[1]);
      if (cut == 0)
        {
          CHECK_INT (ob_layer_import (p[0], out, &io, &ir, &err), 0);
          CHECK_STR (ir.diff_id, r.diff_id);
        }
      else
        {
          CHECK (ob_layer_import (p[0], out, &io, &ir, &err) < 0);
          CHECK (err && err->kind == OB_ERR_IMAGE);
          ob_error_free (&err);
        }
      close (p[0]);
      close (out);
      waitpid (pid, NULL, 0);
    }
  free (blob);
  free (o);
  close (up);
  td_free (&t);
}

TEST (gunzip_bad_streams)
{
  struct td t = td_new ();
  struct ob_buf gz = { 0 };
  ob_error_t err = NULL;
  char got[OB_DIGEST_LEN];
  char data[300000];
  unsigned int seed = 3;

  for (size_t k = 0; k < sizeof data; k++)
    data[k] = (char) rand_r (&seed);
  gz_member (&gz, data, sizeof data, 6);
  /* cut short, in the middle and just before the trailer */
  for (size_t cut = 0; cut < 2; cut++)
    {
      size_t len = gz.len;
      gz.len = cut == 0 ? len / 2 : len - 3;
      CHECK (diff_id_of (&t, &gz, got, &err) < 0);
      CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "gzip: unexpected end of data") != NULL);
      ob_error_free (&err);
      gz.len = len;
    }
  /* a wrong CRC-32 */
  gz.data[gz.len - 6] ^= 0x55;
  CHECK (diff_id_of (&t, &gz, got, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "gzip: checksum mismatch") != NULL);
  ob_error_free (&err);
  gz.data[gz.len - 6] ^= 0x55;
  /* corrupt deflate data */
  memset (gz.data + 100, 0xff, 64);
  CHECK (diff_id_of (&t, &gz, got, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "gzip:") != NULL);
  ob_error_free (&err);
  /* a second member cut short */
  gz.len = 0;
  gz_member (&gz, "abc", 3, 6);
  gz_member (&gz, data, 1000, 6);
  gz.len -= 10;
  CHECK (diff_id_of (&t, &gz, got, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE);
  ob_error_free (&err);
  ob_buf_free (&gz);
  td_free (&t);
}

/* The tree index made while a layer is written, imported or unpacked is
 * the one reading the layer back makes (tree.c), byte for byte. */
static char *
index_by_reading (struct td *t, const char *blob, const char *diff_id)
{
  struct ob_tree *tr = ob_tree_new ();
  ob_error_t err = NULL;
  char *dir = td_file (t, "ix-read"), *p, *data;
  size_t len;
  int fd = open (blob, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ob_tree_add_layer_indexed (tr, dir, diff_id, fd, &err) < 0)
    abort ();
  close (fd);
  ob_tree_free (tr);
  p = ob_xasprintf ("%s/%s", dir, diff_id + 7);
  data = slurp_at (AT_FDCWD, p, &len);
  free (p);
  free (dir);
  return data;
}

static char *
index_saved (struct td *t, struct ob_tree_index *ix, const char *diff_id)
{
  char *dir = td_file (t, "ix-made"), *p, *data;
  size_t len;
  ob_tree_index_save (ix, dir, diff_id);
  ob_tree_index_free (ix);
  p = ob_xasprintf ("%s/%s", dir, diff_id + 7);
  data = slurp_at (AT_FDCWD, p, &len);
  free (p);
  free (dir);
  return data;
}

TEST (tree_index_while_writing)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  struct ob_changes *ch = NULL;
  struct ob_tree_index *ix = ob_tree_index_new ();
  struct ob_layer_opts o = { .compression = OB_COMPRESS_GZIP, .on_entry = ob_tree_index_note, .on_entry_data = ix };
  char *o_path = td_file (&t, "l.tgz"), *made, *read;
  char longname[260];
  int up, fd;

  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  make_tree (up);
  /* a long name (pax header), a hardlink, a name with a tab and a newline */
  memset (longname, 'n', 200);
  strcpy (longname + 200, "-long");
  put (up, longname, "l", 0644);
  CHECK (linkat (up, "b", up, "a/hard", 0) == 0);
  put (up, "a/t\tn\nx", "odd", 0644);
  put (up, "a/not-utf8-\xff\xfe", "bytes", 0644);
  CHECK (ob_snapshot_scan (up, &ch, &err) == 0);
  fd = open (o_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CHECK_INT (ob_layer_write (up, ch, fd, &o, &r, &err), 0);
  close (fd);
  ob_changes_free (ch);
  made = index_saved (&t, ix, r.diff_id);
  read = index_by_reading (&t, o_path, r.diff_id);
  CHECK (made != NULL && read != NULL && strstr (made, "-long") != NULL && strstr (made, "not-utf8-\xff\xfe") != NULL);
  if (made && read)
    CHECK_STR (made, read);
  free (made);
  free (read);

  /* import tells of what it writes */
  {
    struct ob_tree_index *ix2 = ob_tree_index_new ();
    struct ob_layer_opts io = { .compression = OB_COMPRESS_GZIP, .on_entry = ob_tree_index_note, .on_entry_data = ix2 };
    struct ob_layer_result ir = { 0 };
    char *imp = td_file (&t, "imp.tgz"), *m2, *r2;
    int in = open (o_path, O_RDONLY | O_CLOEXEC), out = open (imp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK_INT (ob_layer_import (in, out, &io, &ir, &err), 0);
    close (in);
    close (out);
    CHECK (ob_rm_rf_at (t.fd, "ix-made", &err) == 0 && ob_rm_rf_at (t.fd, "ix-read", &err) == 0);
    m2 = index_saved (&t, ix2, ir.diff_id);
    r2 = index_by_reading (&t, imp, ir.diff_id);
    CHECK (m2 != NULL && r2 != NULL && strstr (m2, "a/hard") != NULL);
    if (m2 && r2)
      CHECK_STR (m2, r2);
    free (m2);
    free (r2);
    free (imp);
  }

  /* the overlay unpacker tells of what it reads */
  {
    struct ob_tree_index *ux = ob_tree_index_new ();
    char *u1;
    int in = open (o_path, O_RDONLY | O_CLOEXEC), dst;
    mkd (t.fd, "unp", 0755);
    dst = openat (t.fd, "unp", O_RDONLY | O_DIRECTORY);
    CHECK_INT (ob_layer_unpack_overlay (in, dst, ob_tree_index_note, ux, &err), 0);
    close (in);
    close (dst);
    CHECK (ob_rm_rf_at (t.fd, "ix-made", &err) == 0 && ob_rm_rf_at (t.fd, "ix-read", &err) == 0);
    u1 = index_saved (&t, ux, r.diff_id);
    read = index_by_reading (&t, o_path, r.diff_id);
    CHECK (u1 != NULL && read != NULL);
    if (u1 && read)
      CHECK_STR (u1, read);
    free (u1);
    free (read);
  }
  close (up);
  free (o_path);
  td_free (&t);
}

TEST (write_special_files)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tar");
  struct ents es;
  struct ent *x;
  int up;
  char longname[302];
  memset (longname, 'n', 301);
  longname[150] = '/';
  longname[301] = '\0';
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  CHECK_INT (mkfifoat (up, "fifo", 0640), 0);
  longname[150] = '\0';
  mkd (up, longname, 0755);
  longname[150] = '/';
  put (up, longname, "long", 0644);
  if (is_root ())
    CHECK_INT (mknodat (up, "null", S_IFCHR | 0666, makedev (1, 3)), 0);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_NONE, false, 0, &r, &err), 0);
  CHECK_INT (read_ents (o, &es), 0);
  x = ents_find (&es, "fifo");
  CHECK (x && S_ISFIFO (x->mode) && (x->mode & 0777) == 0640);
  x = ents_find (&es, longname);
  CHECK (x && strcmp (x->data, "long") == 0);
  if (is_root ())
    {
      x = ents_find (&es, "null");
      CHECK (x && S_ISCHR (x->mode) && x->rmajor == 1 && x->rminor == 3);
    }
  ents_free (&es);
  close (up);
  free (o);
  td_free (&t);
}

TEST (write_utf8_names_locale_independent)
{
  struct td t = td_new ();
  struct ob_layer_result r1 = { 0 }, r2 = { 0 };
  ob_error_t err = NULL;
  char *o1 = td_file (&t, "1.tar"), *o2 = td_file (&t, "2.tar");
  char *d1, *d2;
  size_t l1 = 0, l2 = 0;
  struct ents es;
  int up;
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  put (up, "\xc3\xbcn\xc3\xaf", "utf8", 0644);
  put (up, "raw\xff", "raw", 0644);
  setlocale (LC_ALL, "C");
  CHECK_INT (write_layer (up, o1, OB_COMPRESS_NONE, false, 0, &r1, &err), 0);
  setlocale (LC_ALL, "C.UTF-8");
  CHECK_INT (write_layer (up, o2, OB_COMPRESS_NONE, false, 0, &r2, &err), 0);
  setlocale (LC_ALL, "C");
  d1 = read_all (o1, &l1);
  d2 = read_all (o2, &l2);
  CHECK (d1 && d2 && l1 == l2 && memcmp (d1, d2, l1) == 0);
  /* A valid UTF-8 name is a plain pax path record. */
  CHECK (d1 && memmem (d1, l1, "path=\xc3\xbcn\xc3\xaf\n", 10) != NULL);
  setlocale (LC_ALL, "C.UTF-8");
  CHECK_INT (read_ents (o1, &es), 0);
  setlocale (LC_ALL, "C");
  CHECK (ents_find (&es, "\xc3\xbcn\xc3\xaf") != NULL);
  CHECK (ents_find (&es, "raw\xff") != NULL);
  ents_free (&es);
  free (d1);
  free (d2);
  free (o1);
  free (o2);
  close (up);
  td_free (&t);
}

/* ================= ob_layer_import ================= */

TEST (import_normalises_names)
{
  struct td t = td_new ();
  char *in = td_file (&t, "in.tgz"), *o = td_file (&t, "out.tar");
  struct archive *a = tb_open (in, "gzip");
  struct ob_layer_result r = { 0 };
  struct ob_layer_opts opts = { .compression = OB_COMPRESS_NONE };
  ob_error_t err = NULL;
  struct ents es;
  int ifd, ofd;
  tb_add (a, "./", AE_IFDIR | 0755, NULL, NULL);
  tb_add (a, "./a/", AE_IFDIR | 0755, NULL, NULL);
  tb_add (a, "./a/f", AE_IFREG | 04755, "data", NULL);
  tb_add (a, "/abs/g", AE_IFREG | 0644, "g", NULL);
  tb_add (a, ".//a/./h", AE_IFREG | 0644, "", NULL);
  tb_close (a);
  ifd = open (in, O_RDONLY);
  ofd = open (o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK_INT (ob_layer_import (ifd, ofd, &opts, &r, &err), 0);
  close (ifd);
  close (ofd);
  CHECK_INT (read_ents (o, &es), 0);
  CHECK_INT (es.n, 4);
  if (es.n == 4)
    {
      CHECK_STR (es.e[0].name, "a/");
      CHECK_STR (es.e[1].name, "a/f");
      CHECK_INT (es.e[1].mode & 07777, 04755);
      CHECK_STR (es.e[1].data, "data");
      CHECK_STR (es.e[2].name, "abs/g");
      CHECK_STR (es.e[3].name, "a/h");
    }
  ents_free (&es);
  free (in);
  free (o);
  td_free (&t);
}

TEST (import_rejects_dotdot)
{
  struct td t = td_new ();
  char *in = td_file (&t, "in.tar"), *o = td_file (&t, "out.tar");
  struct archive *a = tb_open (in, NULL);
  struct ob_layer_result r = { 0 };
  struct ob_layer_opts opts = { .compression = OB_COMPRESS_GZIP };
  ob_error_t err = NULL;
  int ifd, ofd;
  tb_add (a, "ok", AE_IFREG | 0644, "x", NULL);
  tb_add (a, "a/../../evil", AE_IFREG | 0644, "x", NULL);
  tb_close (a);
  ifd = open (in, O_RDONLY);
  ofd = open (o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK (ob_layer_import (ifd, ofd, &opts, &r, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE);
  CHECK (err && strstr (err->msg, "entry `a/../../evil`: path contains ..") != NULL);
  ob_error_free (&err);
  close (ifd);
  close (ofd);
  free (in);
  free (o);
  td_free (&t);
}

TEST (import_hardlinks)
{
  struct td t = td_new ();
  char *in = td_file (&t, "in.tar"), *o = td_file (&t, "out.tar");
  struct archive *a = tb_open (in, NULL);
  struct ob_layer_result r = { 0 };
  struct ob_layer_opts opts = { .compression = OB_COMPRESS_NONE };
  ob_error_t err = NULL;
  struct ents es;
  struct ent *x;
  int ifd, ofd;
  tb_add (a, "./bin/", AE_IFDIR | 0755, NULL, NULL);
  tb_add (a, "./bin/a", AE_IFREG | 0755, "binary", NULL);
  tb_add (a, "./bin/b", 0, NULL, "./bin/a");
  tb_add (a, "/bin/c", 0, NULL, "/bin/a");
  tb_close (a);
  ifd = open (in, O_RDONLY);
  ofd = open (o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK_INT (ob_layer_import (ifd, ofd, &opts, &r, &err), 0);
  close (ifd);
  close (ofd);
  CHECK_INT (read_ents (o, &es), 0);
  x = ents_find (&es, "bin/b");
  CHECK (x && x->hardlink && strcmp (x->hardlink, "bin/a") == 0 && x->size == 0);
  x = ents_find (&es, "bin/c");
  CHECK (x && x->hardlink && strcmp (x->hardlink, "bin/a") == 0);
  ents_free (&es);
  free (in);
  free (o);
  td_free (&t);
}

TEST (import_hardlink_dotdot_rejected)
{
  struct td t = td_new ();
  char *in = td_file (&t, "in.tar"), *o = td_file (&t, "out.tar");
  struct archive *a = tb_open (in, NULL);
  struct ob_layer_result r = { 0 };
  struct ob_layer_opts opts = { .compression = OB_COMPRESS_NONE };
  ob_error_t err = NULL;
  int ifd, ofd;
  tb_add (a, "h", 0, NULL, "../etc/passwd");
  tb_close (a);
  ifd = open (in, O_RDONLY);
  ofd = open (o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK (ob_layer_import (ifd, ofd, &opts, &r, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "`h`") != NULL);
  ob_error_free (&err);
  close (ifd);
  close (ofd);
  free (in);
  free (o);
  td_free (&t);
}

static int
check_links (struct td *t, const char *const *ents, ob_error_t *err)
{
  char *in = td_file (t, "links.tar");
  struct archive *a = tb_open (in, "gzip");
  int fd, r;
  /* triples: name, kind ("f" file, "d" directory, "h" hardlink), target */
  for (size_t i = 0; ents[i]; i += 3)
    tb_add (a, ents[i], ents[i + 1][0] == 'f' ? AE_IFREG | 0644 : ents[i + 1][0] == 'd' ? AE_IFDIR | 0755 : 0,
            "x", ents[i + 2]);
  tb_close (a);
  fd = open (in, O_RDONLY);
  r = ob_layer_check_hardlinks (fd, err);
  close (fd);
  free (in);
  return r;
}

TEST (check_hardlinks)
{
  struct td t = td_new ();
  ob_error_t err = NULL;
  const char *ok[] = { "./bin/", "d", NULL, "./bin/a", "f", NULL, "bin/b", "h", "./bin/a", "/bin/c", "h", "/bin/a",
                       NULL };
  const char *missing[] = { "f", "f", NULL, "link", "h", "not-there", NULL };
  const char *abs_host[] = { "f", "f", NULL, "link", "h", "/etc/passwd", NULL };
  const char *later[] = { "link", "h", "f", "f", "f", NULL, NULL };
  const char *dir[] = { "d/", "d", NULL, "link", "h", "d", NULL };
  const char *dotdot[] = { "link", "h", "../../etc/passwd", NULL };
  CHECK_INT (check_links (&t, ok, &err), 0);
  ob_error_free (&err);
  CHECK (check_links (&t, missing, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "entry `link`: hardlink to `not-there`") != NULL);
  ob_error_free (&err);
  CHECK (check_links (&t, abs_host, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "`/etc/passwd`") != NULL);
  ob_error_free (&err);
  CHECK (check_links (&t, later, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE);
  ob_error_free (&err);
  CHECK (check_links (&t, dir, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE);
  ob_error_free (&err);
  CHECK (check_links (&t, dotdot, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "`link`") != NULL);
  ob_error_free (&err);
  td_free (&t);
}

TEST (import_owners_clamp_digest)
{
  struct td t = td_new ();
  char *in = td_file (&t, "in.tar.xz"), *o = td_file (&t, "out.tar"), *o2 = td_file (&t, "o2");
  struct archive *a = tb_open (in, "xz");
  struct archive_entry *e = archive_entry_new ();
  struct ob_layer_result r = { 0 }, r2 = { 0 };
  struct ob_layer_opts opts = { .compression = OB_COMPRESS_NONE, .clamp_mtime = true,
                                .mtime_max = 500 };
  ob_error_t err = NULL;
  struct ents es;
  struct ent *x;
  char *blob;
  size_t bl = 0;
  char d[OB_DIGEST_LEN];
  int ifd, ofd;
  archive_entry_set_pathname (e, "owned");
  archive_entry_set_mode (e, AE_IFREG | 0640);
  archive_entry_set_uid (e, 1000);
  archive_entry_set_gid (e, 100);
  archive_entry_set_uname (e, "bob");
  archive_entry_set_gname (e, "users");
  archive_entry_set_mtime (e, 1000000, 5);
  archive_entry_set_atime (e, 7, 0);
  archive_entry_set_size (e, 1);
  archive_write_header (a, e);
  archive_write_data (a, "z", 1);
  archive_entry_free (e);
  tb_close (a);
  ifd = open (in, O_RDONLY);
  ofd = open (o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK_INT (ob_layer_import (ifd, ofd, &opts, &r, &err), 0);
  close (ofd);
  lseek (ifd, 0, SEEK_SET);
  ofd = open (o2, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK_INT (ob_layer_import (ifd, ofd, &opts, &r2, &err), 0);
  close (ofd);
  close (ifd);
  CHECK_STR (r.digest, r2.digest);
  blob = read_all (o, &bl);
  sha (blob, bl, d);
  CHECK_STR (r.diff_id, d);
  free (blob);
  CHECK_INT (read_ents (o, &es), 0);
  x = ents_find (&es, "owned");
  CHECK (x && x->uid == 1000 && x->gid == 100);
  CHECK (x && (x->uname == NULL || *x->uname == '\0') && (x->gname == NULL || *x->gname == '\0'));
  CHECK (x && x->mtime == 500 && x->mtime_nsec == 0 && (x->mode & 0777) == 0640);
  ents_free (&es);
  free (in);
  free (o);
  free (o2);
  td_free (&t);
}

TEST (import_not_an_archive)
{
  struct td t = td_new ();
  char *o = td_file (&t, "out.tar");
  struct ob_layer_result r = { 0 };
  struct ob_layer_opts opts = { .compression = OB_COMPRESS_NONE };
  ob_error_t err = NULL;
  int ifd, ofd;
  put (t.fd, "text", "this is not a tarball\n", 0644);
  ifd = openat (t.fd, "text", O_RDONLY);
  ofd = open (o, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK (ob_layer_import (ifd, ofd, &opts, &r, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE);
  ob_error_free (&err);
  close (ifd);
  close (ofd);
  free (o);
  td_free (&t);
}

/* ================= ob_layer_is_archive ================= */

static bool
is_archive_with (const char *filter)
{
  struct td t = td_new ();
  char *p = td_file (&t, "a");
  struct archive *a = tb_open (p, filter);
  bool ok;
  int fd;
  tb_add (a, "file", AE_IFREG | 0644, "content", NULL);
  tb_close (a);
  fd = open (p, O_RDONLY);
  lseek (fd, 3, SEEK_SET);
  ok = ob_layer_is_archive (fd);
  CHECK_INT (lseek (fd, 0, SEEK_CUR), 0);
  close (fd);
  free (p);
  td_free (&t);
  return ok;
}

TEST (is_archive_tar)
{
  CHECK (is_archive_with (NULL));
}

TEST (is_archive_gzip)
{
  CHECK (is_archive_with ("gzip"));
}

TEST (is_archive_xz)
{
  CHECK (is_archive_with ("xz"));
}

TEST (is_archive_zstd)
{
  CHECK (is_archive_with ("zstd"));
}

TEST (is_archive_bzip2)
{
  CHECK (is_archive_with ("bzip2"));
}

TEST (is_archive_not_text_or_empty)
{
  struct td t = td_new ();
  char big[2048];
  int fd;
  memset (big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  put (t.fd, "text", "hello world\n", 0644);
  put (t.fd, "bigtext", big, 0644);
  put (t.fd, "empty", "", 0644);
  fd = openat (t.fd, "text", O_RDONLY);
  CHECK (!ob_layer_is_archive (fd));
  CHECK_INT (lseek (fd, 0, SEEK_CUR), 0);
  close (fd);
  fd = openat (t.fd, "bigtext", O_RDONLY);
  CHECK (!ob_layer_is_archive (fd));
  close (fd);
  fd = openat (t.fd, "empty", O_RDONLY);
  CHECK (!ob_layer_is_archive (fd));
  close (fd);
  td_free (&t);
}

TEST (is_archive_gzip_of_text)
{
  struct td t = td_new ();
  char *p = td_file (&t, "t.gz");
  gzFile g = gzopen (p, "wb");
  int fd;
  gzputs (g, "just some text, compressed\n");
  gzclose (g);
  fd = open (p, O_RDONLY);
  CHECK (!ob_layer_is_archive (fd));
  close (fd);
  free (p);
  td_free (&t);
}

/* ================= ob_layer_extract ================= */

TEST (extract_plain_tree)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tgz");
  struct archive *a = tb_open (tar, "gzip");
  ob_error_t err = NULL;
  struct stat st, st2;
  char *data;
  int root;
  char buf[64];
  ssize_t n;
  tb_add (a, "./", AE_IFDIR | 0755, NULL, NULL);
  tb_add (a, "etc/", AE_IFDIR | 0755, NULL, NULL);
  tb_add (a, "etc/passwd", AE_IFREG | 0644, "root:x:0:0::/root:/bin/sh\n", NULL);
  tb_add (a, "bin/su", AE_IFREG | 04755, "su", NULL); /* parent not listed */
  tb_add (a, "etc/pw2", 0, NULL, "etc/passwd");
  tb_add (a, "etc/link", AE_IFLNK | 0777, NULL, "passwd");
  tb_add (a, "fifo", AE_IFIFO | 0600, NULL, NULL);
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  CHECK_INT (extract_file (tar, root, "/", true, &err), 0);
  if (err)
    printf ("# %s\n", err->msg);
  data = slurp_at (root, "etc/passwd", NULL);
  CHECK_STR (data, "root:x:0:0::/root:/bin/sh\n");
  free (data);
  CHECK (fstatat (root, "bin/su", &st, 0) == 0 && (st.st_mode & 07777) == 04755);
  CHECK (fstatat (root, "bin", &st, 0) == 0 && (st.st_mode & 07777) == 0755);
  CHECK (fstatat (root, "etc/passwd", &st, 0) == 0 && st.st_mtime == 1000000);
  CHECK (fstatat (root, "etc/pw2", &st2, 0) == 0 && st.st_ino == st2.st_ino);
  n = readlinkat (root, "etc/link", buf, sizeof buf);
  CHECK (n == 6 && memcmp (buf, "passwd", 6) == 0);
  CHECK (fstatat (root, "fifo", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISFIFO (st.st_mode));
  CHECK (fstatat (root, "etc", &st, 0) == 0 && st.st_mtime == 1000000);
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_into_dest)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  char *data;
  int root;
  tb_add (a, "f", AE_IFREG | 0644, "in dest", NULL);
  tb_add (a, "abs", AE_IFLNK | 0777, NULL, "/x");
  tb_add (a, "abs/y", AE_IFREG | 0644, "y", NULL);
  tb_close (a);
  mkd (t.fd, "root", 0755);
  mkd (t.fd, "root/x", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  CHECK_INT (extract_file (tar, root, "/opt/app", false, &err), 0);
  data = slurp_at (root, "opt/app/f", NULL);
  CHECK_STR (data, "in dest");
  free (data);
  /* Absolute symlinks resolve against the root, not the destination. */
  CHECK (exists_at (root, "x/y"));
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_whiteout_deletes_lower)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  int root;
  tb_add (a, "d/", AE_IFDIR | 0755, NULL, NULL);
  tb_add (a, "d/.wh.gone", AE_IFREG, "", NULL);
  tb_add (a, "d/.wh.gonedir", AE_IFREG, "", NULL);
  tb_add (a, ".wh.missing", AE_IFREG, "", NULL);
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  mkd (root, "d", 0755);
  put (root, "d/gone", "x", 0644);
  put (root, "d/stay", "x", 0644);
  mkd (root, "d/gonedir", 0555);
  put (root, "d/gonedir/inner", "x", 0644);
  CHECK_INT (extract_file (tar, root, "/", true, &err), 0);
  CHECK (!exists_at (root, "d/gone"));
  CHECK (!exists_at (root, "d/gonedir"));
  CHECK (exists_at (root, "d/stay"));
  CHECK (!exists_at (root, "d/.wh.gone"));
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_whiteouts_off_are_files)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  int root;
  tb_add (a, ".wh.gone", AE_IFREG | 0644, "", NULL);
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  put (root, "gone", "x", 0644);
  CHECK_INT (extract_file (tar, root, "/", false, &err), 0);
  CHECK (exists_at (root, "gone"));
  CHECK (exists_at (root, ".wh.gone"));
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_opaque_keeps_own_entries)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  int root;
  tb_add (a, "d/", AE_IFDIR | 0755, NULL, NULL);
  tb_add (a, "d/new", AE_IFREG | 0644, "new", NULL);
  tb_add (a, "d/sub/", AE_IFDIR | 0755, NULL, NULL);
  tb_add (a, "d/sub/mine", AE_IFREG | 0644, "m", NULL);
  tb_add (a, "d/.wh..wh..opq", AE_IFREG, "", NULL); /* marker after the entries */
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  mkd (root, "d", 0755);
  put (root, "d/old", "old", 0644);
  mkd (root, "d/sub", 0755);
  put (root, "d/sub/old2", "o", 0644);
  mkd (root, "d/olddir", 0755);
  put (root, "other", "o", 0644);
  CHECK_INT (extract_file (tar, root, "/", true, &err), 0);
  CHECK (!exists_at (root, "d/old"));
  CHECK (!exists_at (root, "d/olddir"));
  CHECK (!exists_at (root, "d/sub/old2"));
  CHECK (exists_at (root, "d/new"));
  CHECK (exists_at (root, "d/sub/mine"));
  CHECK (exists_at (root, "other"));
  CHECK (!exists_at (root, "d/.wh..wh..opq"));
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_invalid_whiteouts)
{
  const char *bad[] = { ".wh.", "d/.wh..", "d/.wh..." };
  for (size_t i = 0; i < 3; i++)
    {
      struct td t = td_new ();
      char *tar = td_file (&t, "l.tar");
      struct archive *a = tb_open (tar, NULL);
      ob_error_t err = NULL;
      int root;
      tb_add (a, "d/", AE_IFDIR | 0755, NULL, NULL);
      tb_add (a, bad[i], AE_IFREG, "", NULL);
      tb_close (a);
      mkd (t.fd, "root", 0755);
      root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
      CHECK (extract_file (tar, root, "/", true, &err) < 0);
      CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, bad[i]) != NULL);
      CHECK (exists_at (t.fd, "root"));
      ob_error_free (&err);
      close (root);
      free (tar);
      td_free (&t);
    }
}

TEST (extract_rejects_dotdot)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  int root;
  tb_add (a, "../x", AE_IFREG | 0644, "escape", NULL);
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  CHECK (extract_file (tar, root, "/", true, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "`../x`") != NULL);
  CHECK (!exists_at (t.fd, "x"));
  ob_error_free (&err);
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_abs_symlink_stays_inside)
{
  struct td t = td_new ();
  struct td outside = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  int root, ret;
  tb_add (a, "evil", AE_IFLNK | 0777, NULL, outside.path);
  tb_add (a, "evil/pwned", AE_IFREG | 0644, "pwned", NULL);
  tb_add (a, "rel", AE_IFLNK | 0777, NULL, "../../../../../../..");
  tb_add (a, "rel/pwned2", AE_IFREG | 0644, "pwned", NULL);
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  /* Make the symlink's target exist inside the root as well: the write must
   * land there. */
  CHECK_INT (ob_mkdir_p_at (root, outside.path + 1, 0755, &err), 0);
  ret = extract_file (tar, root, "/", true, &err);
  CHECK_INT (ret, 0);
  if (err)
    printf ("# %s\n", err->msg);
  CHECK (!exists_at (outside.fd, "pwned"));
  CHECK (!exists_at (t.fd, "pwned2"));
  CHECK (!exists_at (AT_FDCWD, "/pwned2"));
  {
    char *inside = ob_xasprintf ("%s/pwned", outside.path + 1);
    CHECK (exists_at (root, inside));
    free (inside);
  }
  CHECK (exists_at (root, "pwned2"));
  ob_error_free (&err);
  close (root);
  free (tar);
  td_free (&outside);
  td_free (&t);
}

TEST (extract_dangling_abs_symlink_parent)
{
  struct td t = td_new ();
  struct td outside = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  int root;
  tb_add (a, "evil", AE_IFLNK | 0777, NULL, outside.path);
  tb_add (a, "evil/pwned", AE_IFREG | 0644, "pwned", NULL);
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  /* Nothing at that path inside the root: refused, never followed out. */
  CHECK (extract_file (tar, root, "/", true, &err) < 0);
  CHECK (err && strstr (err->msg, "evil/pwned") != NULL);
  /* the archive's fault (exit 9), naming the entry and the symlink */
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "parent `evil` is a symlink") != NULL);
  CHECK (!exists_at (outside.fd, "pwned"));
  ob_error_free (&err);
  close (root);
  free (tar);
  td_free (&outside);
  td_free (&t);
}

TEST (extract_parent_is_a_file)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  int root;
  tb_add (a, "f", AE_IFREG | 0644, "x", NULL);
  tb_add (a, "f/g/h", AE_IFREG | 0644, "y", NULL);
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  CHECK (extract_file (tar, root, "/", true, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "entry `f/g/h`: its parent `f` is not a directory") != NULL);
  ob_error_free (&err);
  close (root);
  free (tar);
  td_free (&t);
}

/* A relative symlink climbing above the root resolves to the root itself. */
TEST (extract_relative_symlink_parent_clamped)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  int root;
  tb_add (a, "up", AE_IFLNK | 0777, NULL, "../../..");
  tb_add (a, "up/climbed", AE_IFREG | 0644, "x", NULL);
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  CHECK_INT (extract_file (tar, root, "/", true, &err), 0);
  CHECK (exists_at (root, "climbed"));
  CHECK (!exists_at (t.fd, "climbed"));
  ob_error_free (&err);
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_hardlink_escape_rejected)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  int root;
  tb_add (a, "h", 0, NULL, "../../etc/passwd");
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  CHECK (extract_file (tar, root, "/", true, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "`h`") != NULL);
  CHECK (!exists_at (root, "h"));
  ob_error_free (&err);
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_hardlink_through_symlink_stays_inside)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  int root;
  tb_add (a, "l", AE_IFLNK | 0777, NULL, "/");
  tb_add (a, "h", 0, NULL, "l/etc/passwd");
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  /* /etc/passwd of the host must not be reachable. */
  CHECK (extract_file (tar, root, "/", true, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "does not exist") != NULL);
  CHECK (!exists_at (root, "h"));
  ob_error_free (&err);
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_hardlink_missing_rejected)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  int root;
  tb_add (a, "h", 0, NULL, "not/there");
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  CHECK (extract_file (tar, root, "/", true, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "entry `h`") != NULL);
  ob_error_free (&err);
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_hardlink_to_existing_in_root)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  struct stat s1, s2;
  int root;
  tb_add (a, "h", 0, NULL, "/lower");
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  put (root, "lower", "from a lower layer", 0644);
  CHECK_INT (extract_file (tar, root, "/", true, &err), 0);
  CHECK (fstatat (root, "h", &s1, 0) == 0 && fstatat (root, "lower", &s2, 0) == 0
         && s1.st_ino == s2.st_ino);
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_readonly_dir_with_contents)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  struct stat st;
  char *data;
  int root;
  tb_add (a, "ro/", AE_IFDIR | 0555, NULL, NULL);
  tb_add (a, "ro/sub/", AE_IFDIR | 0500, NULL, NULL);
  tb_add (a, "ro/sub/f", AE_IFREG | 0444, "ro", NULL);
  tb_add (a, "ro/g", AE_IFREG | 0400, "g", NULL);
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  CHECK_INT (extract_file (tar, root, "/", true, &err), 0);
  CHECK (fstatat (root, "ro", &st, 0) == 0 && (st.st_mode & 07777) == 0555);
  CHECK (fstatat (root, "ro/sub", &st, 0) == 0 && (st.st_mode & 07777) == 0500);
  CHECK (fstatat (root, "ro", &st, 0) == 0 && st.st_mtime == 1000000);
  data = slurp_at (root, "ro/sub/f", NULL);
  CHECK_STR (data, "ro");
  free (data);
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_long_name_rejected)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  char *name = ob_xmalloc (10001);
  int root;
  for (int i = 0; i < 10000; i++)
    name[i] = i % 50 == 49 ? '/' : 'a' + i % 26;
  name[10000] = '\0';
  tb_add (a, name, AE_IFREG | 0644, "x", NULL);
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  CHECK (extract_file (tar, root, "/", true, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE);
  CHECK (err && strstr (err->msg, "too long") == NULL && strstr (err->msg, "longer than") != NULL);
  CHECK (err && strlen (err->msg) < 200);
  ob_error_free (&err);
  free (name);
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_replaces_types)
{
  struct td t = td_new ();
  char *tar = td_file (&t, "l.tar");
  struct archive *a = tb_open (tar, NULL);
  ob_error_t err = NULL;
  struct stat st;
  char *data;
  int root;
  tb_add (a, "wasdir", AE_IFREG | 0644, "now a file", NULL);
  tb_add (a, "wasfile/", AE_IFDIR | 0755, NULL, NULL);
  tb_add (a, "waslink", AE_IFREG | 0644, "file", NULL);
  tb_add (a, "keepdir/", AE_IFDIR | 0700, NULL, NULL);
  tb_close (a);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  mkd (root, "wasdir", 0755);
  put (root, "wasdir/x", "x", 0644);
  put (root, "wasfile", "x", 0644);
  put (t.fd, "target", "outside", 0644);
  CHECK_INT (symlinkat ("../target", root, "waslink"), 0);
  mkd (root, "keepdir", 0755);
  put (root, "keepdir/lower", "x", 0644);
  CHECK_INT (extract_file (tar, root, "/", true, &err), 0);
  data = slurp_at (root, "wasdir", NULL);
  CHECK_STR (data, "now a file");
  free (data);
  CHECK (fstatat (root, "wasfile", &st, 0) == 0 && S_ISDIR (st.st_mode));
  CHECK (fstatat (root, "waslink", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG (st.st_mode));
  data = slurp_at (t.fd, "target", NULL);
  CHECK_STR (data, "outside");
  free (data);
  CHECK (exists_at (root, "keepdir/lower"));
  CHECK (fstatat (root, "keepdir", &st, 0) == 0 && (st.st_mode & 07777) == 0700);
  close (root);
  free (tar);
  td_free (&t);
}

TEST (extract_not_an_archive)
{
  struct td t = td_new ();
  ob_error_t err = NULL;
  int root, fd;
  put (t.fd, "text", "not a tar\n", 0644);
  mkd (t.fd, "root", 0755);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  fd = openat (t.fd, "text", O_RDONLY);
  CHECK (ob_layer_extract (fd, root, "/", true, true, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE);
  ob_error_free (&err);
  close (fd);
  close (root);
  td_free (&t);
}

TEST (write_extract_roundtrip)
{
  struct td t = td_new ();
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  char *o = td_file (&t, "l.tgz");
  char *p = td_file (&t, "up/a/f");
  char val[16];
  char *data;
  struct stat st;
  int up, root;
  ssize_t n;
  mkd (t.fd, "up", 0755);
  mkd (t.fd, "root", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  root = openat (t.fd, "root", O_RDONLY | O_DIRECTORY);
  make_tree (up);
  setxattr (p, "user.x", "rt", 2, 0);
  CHECK_INT (write_layer (up, o, OB_COMPRESS_GZIP, false, 0, &r, &err), 0);
  CHECK_INT (extract_file (o, root, "/", true, &err), 0);
  data = slurp_at (root, "a/sub/x", NULL);
  CHECK_STR (data, "x");
  free (data);
  CHECK (fstatat (root, "a/sub", &st, 0) == 0 && (st.st_mode & 07777) == 0700
         && st.st_mtime == 1500000000);
  CHECK (fstatat (root, "b", &st, 0) == 0 && (st.st_mode & 07777) == 0600);
  free (p);
  p = td_file (&t, "root/a/f");
  n = getxattr (p, "user.x", val, sizeof val);
  CHECK (n == 2 && memcmp (val, "rt", 2) == 0);
  free (p);
  close (up);
  close (root);
  free (o);
  td_free (&t);
}

/* ================= ob_layer_read_file ================= */

struct layers
{
  int fds[4];
  size_t n;
};

static void
add_layer (struct td *t, struct layers *ls, const char *name, const char *filter,
           void (*fill) (struct archive *))
{
  char *p = td_file (t, name);
  struct archive *a = tb_open (p, filter);
  fill (a);
  tb_close (a);
  ls->fds[ls->n++] = open (p, O_RDONLY);
  free (p);
}

static void
layers_close (struct layers *ls)
{
  for (size_t i = 0; i < ls->n; i++)
    close (ls->fds[i]);
}

static void
fill_base (struct archive *a)
{
  tb_add (a, "./etc/", AE_IFDIR | 0755, NULL, NULL);
  tb_add (a, "./etc/passwd", AE_IFREG | 0644, "base", NULL);
  tb_add (a, "./etc/group", AE_IFREG | 0644, "group", NULL);
  tb_add (a, "./etc/hl", 0, NULL, "./etc/group");
  tb_add (a, "./etc/dir/", AE_IFDIR | 0755, NULL, NULL);
  tb_add (a, "./etc/dir/f", AE_IFREG | 0644, "f", NULL);
  tb_add (a, "./lnk", AE_IFLNK | 0777, NULL, "etc/passwd");
}

static void
fill_override (struct archive *a)
{
  tb_add (a, "etc/passwd", AE_IFREG | 0644, "upper", NULL);
}

static void
fill_whiteout (struct archive *a)
{
  tb_add (a, "etc/.wh.passwd", AE_IFREG, "", NULL);
}

static void
fill_opaque (struct archive *a)
{
  tb_add (a, "etc/", AE_IFDIR | 0755, NULL, NULL);
  tb_add (a, "etc/.wh..wh..opq", AE_IFREG, "", NULL);
  tb_add (a, "etc/group", AE_IFREG | 0644, "new group", NULL);
}

static void
fill_replace_parent (struct archive *a)
{
  tb_add (a, "etc", AE_IFLNK | 0777, NULL, "/other");
}

static void
fill_whiteout_and_new (struct archive *a)
{
  tb_add (a, "etc/passwd", AE_IFREG | 0644, "same layer", NULL);
  tb_add (a, "etc/.wh.passwd", AE_IFREG, "", NULL);
}

static char *
rf (struct layers *ls, const char *path)
{
  ob_error_t err = NULL;
  char *out = (char *) "unset";
  size_t len = 0;
  if (ob_layer_read_file (ls->fds, ls->n, path, &out, &len, &err) < 0)
    {
      printf ("# %s\n", err->msg);
      ob_error_free (&err);
      return ob_xstrdup ("ERROR");
    }
  if (out && strlen (out) != len)
    return ob_xstrdup ("BADLEN");
  return out;
}

#define CHECK_RF(ls, path, want)                                                   \
  do                                                                               \
    {                                                                              \
      char *_got = rf (ls, path);                                                  \
      CHECK_STR (_got, want);                                                      \
      free (_got);                                                                 \
    }                                                                              \
  while (0)

TEST (read_file_lower)
{
  struct td t = td_new ();
  struct layers ls = { .n = 0 };
  add_layer (&t, &ls, "0", "gzip", fill_base);
  add_layer (&t, &ls, "1", "zstd", fill_override);
  CHECK_RF (&ls, "/etc/group", "group");
  CHECK_RF (&ls, "etc/dir/f", "f");
  layers_close (&ls);
  td_free (&t);
}

TEST (read_file_override)
{
  struct td t = td_new ();
  struct layers ls = { .n = 0 };
  add_layer (&t, &ls, "0", NULL, fill_base);
  CHECK_RF (&ls, "/etc/passwd", "base");
  add_layer (&t, &ls, "1", "xz", fill_override);
  CHECK_RF (&ls, "/etc/passwd", "upper");
  CHECK_RF (&ls, "./etc/passwd", "upper");
  layers_close (&ls);
  td_free (&t);
}

TEST (read_file_whiteout)
{
  struct td t = td_new ();
  struct layers ls = { .n = 0 };
  add_layer (&t, &ls, "0", "gzip", fill_base);
  add_layer (&t, &ls, "1", "gzip", fill_whiteout);
  CHECK_RF (&ls, "/etc/passwd", NULL);
  CHECK_RF (&ls, "/etc/group", "group");
  layers_close (&ls);
  td_free (&t);
}

TEST (read_file_opaque_parent)
{
  struct td t = td_new ();
  struct layers ls = { .n = 0 };
  add_layer (&t, &ls, "0", "gzip", fill_base);
  add_layer (&t, &ls, "1", "gzip", fill_opaque);
  CHECK_RF (&ls, "/etc/passwd", NULL);
  CHECK_RF (&ls, "/etc/dir/f", NULL);
  CHECK_RF (&ls, "/etc/group", "new group");
  layers_close (&ls);
  td_free (&t);
}

TEST (read_file_missing_and_special)
{
  struct td t = td_new ();
  struct layers ls = { .n = 0 };
  add_layer (&t, &ls, "0", "gzip", fill_base);
  CHECK_RF (&ls, "/etc/shadow", NULL);
  CHECK_RF (&ls, "/etc/dir", NULL); /* a directory */
  CHECK_RF (&ls, "/lnk", NULL);     /* symlinks are not followed */
  CHECK_RF (&ls, "/", NULL);
  layers_close (&ls);
  td_free (&t);
}

TEST (read_file_hardlink)
{
  struct td t = td_new ();
  struct layers ls = { .n = 0 };
  add_layer (&t, &ls, "0", "gzip", fill_base);
  add_layer (&t, &ls, "1", "gzip", fill_override);
  CHECK_RF (&ls, "/etc/hl", "group");
  layers_close (&ls);
  td_free (&t);
}

TEST (read_file_parent_replaced)
{
  struct td t = td_new ();
  struct layers ls = { .n = 0 };
  add_layer (&t, &ls, "0", "gzip", fill_base);
  add_layer (&t, &ls, "1", NULL, fill_replace_parent);
  CHECK_RF (&ls, "/etc/passwd", NULL);
  layers_close (&ls);
  td_free (&t);
}

TEST (read_file_same_layer_whiteout)
{
  struct td t = td_new ();
  struct layers ls = { .n = 0 };
  add_layer (&t, &ls, "0", "gzip", fill_base);
  add_layer (&t, &ls, "1", "gzip", fill_whiteout_and_new);
  CHECK_RF (&ls, "/etc/passwd", "same layer");
  layers_close (&ls);
  td_free (&t);
}

TEST (read_file_bad_layer)
{
  struct td t = td_new ();
  struct layers ls = { .n = 0 };
  ob_error_t err = NULL;
  char *out = NULL;
  size_t len;
  put (t.fd, "junk", "junk junk junk", 0644);
  ls.fds[ls.n++] = openat (t.fd, "junk", O_RDONLY);
  CHECK (ob_layer_read_file (ls.fds, ls.n, "/etc/passwd", &out, &len, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE);
  CHECK (out == NULL);
  ob_error_free (&err);
  layers_close (&ls);
  td_free (&t);
}

TEST (clean_name)
{
  ob_error_t err = NULL;
  char *out = NULL;
  CHECK_INT (ob_layer_clean_name ("./a//b/./c/", &out, &err), 0);
  CHECK_STR (out, "a/b/c");
  free (out);
  CHECK_INT (ob_layer_clean_name ("/", &out, &err), 0);
  CHECK_STR (out, "");
  free (out);
  CHECK_INT (ob_layer_clean_name ("a/..b/c..", &out, &err), 0);
  CHECK_STR (out, "a/..b/c..");
  free (out);
  CHECK (ob_layer_clean_name ("a/b/..", &out, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE);
  ob_error_free (&err);
}

/* ---- members made ahead (layer_precomp.c) ---- */

static int
write_layer_opts (int upperfd, const char *out, const struct ob_layer_opts *o, struct ob_layer_result *res,
                  ob_error_t *err)
{
  struct ob_changes *ch = NULL;
  int fd, ret;
  if (ob_snapshot_scan (upperfd, &ch, err) < 0)
    return -1;
  fd = open (out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    abort ();
  ret = ob_layer_write (upperfd, ch, fd, o, res, err);
  close (fd);
  ob_changes_free (ch);
  return ret;
}

static void
put_bytes (int dirfd, const char *path, size_t n, unsigned int seed, bool random)
{
  char *b = ob_xmalloc (n ? n : 1);
  int fd;
  for (size_t i = 0; i < n; i++)
    b[i] = random ? (char) (rand_r (&seed) & 0xff) : "made ahead "[i % 11];
  fd = openat (dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write (fd, b, n) != (ssize_t) n)
    abort ();
  close (fd);
  free (b);
}

static void
sleep_ms (long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep (&ts, NULL);
}

/* Start a speculator on dir/up and wait (5 s at most) until it has made
 * `want` files. */
static struct ob_layer_precomp *
precomp_until (struct td *t, const struct ob_layer_opts *o, uint64_t want)
{
  char *up = td_file (t, "up");
  struct ob_layer_precomp *pc = ob_layer_precomp_start (up, t->path, o, NULL);
  free (up);
  for (int i = 0; pc && i < 500 && ob_layer_precomp_files (pc) < want; i++)
    sleep_ms (10);
  return pc;
}

/* The layer written with members made ahead is the layer written without,
 * byte for byte (igzip, and libdeflate when reproducible); members made
 * for another compressor are not used. */
TEST (precomp_same_bytes)
{
  struct td t = td_new ();
  struct ob_layer_result a = { 0 }, b = { 0 };
  ob_error_t err = NULL;
  char *o1 = td_file (&t, "a.tgz"), *o2 = td_file (&t, "b.tgz");
  struct ob_layer_opts o = { .compression = OB_COMPRESS_GZIP };
  struct ob_layer_opts oc = { .compression = OB_COMPRESS_GZIP, .clamp_mtime = true, .mtime_max = 2000000000 };
  struct ob_layer_opts o6 = { .compression = OB_COMPRESS_GZIP, .level = 6 };
  struct ob_layer_precomp *pc;
  int up;
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  mkd (up, "d", 0755);
  make_tree (up);
  put_bytes (up, "d/random", (3u << 20) + 100, 1, true); /* 4 blocks, the last with padding */
  put_bytes (up, "d/text", 1u << 20, 0, false);          /* exactly one block */
  put_bytes (up, "d/mid", 40000, 2, true);               /* over the split size */
  put_bytes (up, "d/small", 30000, 3, true);             /* under it */
  sleep_ms (60);                                         /* settled */
  pc = precomp_until (&t, &o, 3);
  CHECK (pc != NULL);
  ob_layer_precomp_stop (pc);
  CHECK_INT (ob_layer_precomp_files (pc), 3);
  CHECK_INT (write_layer_opts (up, o1, &o, &a, &err), 0);
  o.precomp = pc;
  CHECK_INT (write_layer_opts (up, o2, &o, &b, &err), 0);
  CHECK_STR (b.digest, a.digest);
  CHECK_STR (b.diff_id, a.diff_id);
  CHECK_INT (a.precompressed, 0);
  /* the three files' blocks, the last ones with their padding */
  CHECK_INT (b.precompressed, ((3u << 20) + 512) + (1u << 20) + 40448);
  /* made for igzip: a writer at level 6 compresses everything itself */
  o6.precomp = pc;
  CHECK_INT (write_layer_opts (up, o2, &o6, &b, &err), 0);
  CHECK_INT (b.precompressed, 0);
  ob_layer_precomp_free (pc);
  /* reproducible layers (libdeflate) */
  pc = precomp_until (&t, &oc, 3);
  ob_layer_precomp_stop (pc);
  CHECK_INT (write_layer_opts (up, o1, &oc, &a, &err), 0);
  oc.precomp = pc;
  CHECK_INT (write_layer_opts (up, o2, &oc, &b, &err), 0);
  CHECK_STR (b.digest, a.digest);
  CHECK (b.precompressed > 0);
  ob_layer_precomp_free (pc);
  /* turned off */
  setenv ("OBUILD_TEST_NO_PRECOMPRESS", "1", 1);
  CHECK (precomp_until (&t, &o, 0) == NULL);
  unsetenv ("OBUILD_TEST_NO_PRECOMPRESS");
  close (up);
  free (o1);
  free (o2);
  td_free (&t);
}

/* A file changed after its members were made: by a write (a new ctime:
 * not offered), and through a shared mapping whose page was already dirty
 * (no new fault, perhaps the same ctime: the CRC refuses the member).
 * Either way the layer holds the file as it is at the end. */
TEST (precomp_changed_files)
{
  struct td t = td_new ();
  struct ob_layer_result a = { 0 }, b = { 0 };
  ob_error_t err = NULL;
  char *o1 = td_file (&t, "a.tgz"), *o2 = td_file (&t, "b.tgz");
  struct ob_layer_opts o = { .compression = OB_COMPRESS_GZIP };
  struct ob_layer_precomp *pc;
  struct stat before, after;
  struct ents es;
  struct ent *x;
  unsigned char *map;
  int up, fd;
  size_t n = 2u << 20;
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  put_bytes (up, "written", n, 4, true);
  put_bytes (up, "mapped", n, 5, true);
  put_bytes (up, "kept", n, 6, true);
  fd = openat (up, "mapped", O_RDWR | O_CLOEXEC);
  map = mmap (NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK (map != MAP_FAILED);
  map[1500000] ^= 0xff; /* the page is dirty before the members are made */
  sleep_ms (60);
  pc = precomp_until (&t, &o, 3);
  fstat (fd, &before);
  map[1500001] ^= 0xff; /* no fault: the page is still dirty */
  fstat (fd, &after);
  printf ("# mapped file's ctime %s\n", before.st_ctim.tv_nsec == after.st_ctim.tv_nsec
                                            && before.st_ctim.tv_sec == after.st_ctim.tv_sec ? "kept (the CRC decides)"
                                                                                             : "changed");
  put_bytes (up, "written", n, 7, true); /* rewritten: other bytes, same size */
  ob_layer_precomp_stop (pc);
  CHECK_INT (ob_layer_precomp_files (pc), 3);
  CHECK_INT (write_layer_opts (up, o1, &o, &a, &err), 0);
  o.precomp = pc;
  CHECK_INT (write_layer_opts (up, o2, &o, &b, &err), 0);
  CHECK_STR (b.digest, a.digest);
  /* "kept", and the first block of "mapped", were used; nothing else */
  CHECK_INT (b.precompressed, (int64_t) n + (1 << 20));
  CHECK_INT (read_ents (o2, &es), 0);
  x = ents_find (&es, "mapped");
  CHECK (x && x->size == (int64_t) n && memcmp (x->data, map, n) == 0);
  ents_free (&es);
  munmap (map, n);
  close (fd);
  ob_layer_precomp_free (pc);
  close (up);
  free (o1);
  free (o2);
  td_free (&t);
}

/* What a hostile step leaves for the speculator: a FIFO (never blocks it),
 * symlinks to host files and directories (never followed), a terabyte of
 * sparse file (it stops at once when asked, half way). */
TEST (precomp_hostile_entries)
{
  struct td t = td_new ();
  struct ob_layer_opts o = { .compression = OB_COMPRESS_GZIP };
  struct ob_layer_precomp *pc;
  char *up = td_file (&t, "up");
  int64_t t0;
  int upfd, fd;
  mkd (t.fd, "up", 0755);
  upfd = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  CHECK_INT (mkfifoat (upfd, "fifo", 0644), 0);
  CHECK_INT (symlinkat ("/etc/passwd", upfd, "passwd"), 0);
  CHECK_INT (symlinkat ("/usr/lib", upfd, "lib"), 0);
  CHECK_INT (symlinkat ("/", upfd, "root"), 0);
  fd = openat (upfd, "sparse", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  CHECK_INT (ftruncate (fd, (off_t) 1 << 40), 0);
  close (fd);
  sleep_ms (60);
  pc = ob_layer_precomp_start (up, t.path, &o, NULL);
  CHECK (pc != NULL);
  sleep_ms (300);
  t0 = (int64_t) time (NULL);
  ob_layer_precomp_stop (pc);
  CHECK ((int64_t) time (NULL) - t0 <= 1);
  CHECK_INT (ob_layer_precomp_files (pc), 0);
  ob_layer_precomp_free (pc);
  /* a directory that is not there, or not a directory */
  CHECK (ob_layer_precomp_start ("/nonexistent/up", t.path, &o, NULL) == NULL);
  CHECK (ob_layer_precomp_start (up, "/nonexistent", &o, NULL) == NULL);
  /* zstd and single-stream gzip are not made ahead */
  o.compression = OB_COMPRESS_ZSTD;
  CHECK (ob_layer_precomp_start (up, t.path, &o, NULL) == NULL);
  o.compression = OB_COMPRESS_GZIP;
  o.single_thread_gzip = true;
  CHECK (ob_layer_precomp_start (up, t.path, &o, NULL) == NULL);
  close (upfd);
  free (up);
  td_free (&t);
}

/* Members are made only while the store's file system has room to spare:
 * a small one (a 64 MiB tmpfs) gets none. */
TEST (precomp_needs_room)
{
  struct td t = td_new ();
  struct ob_layer_opts o = { .compression = OB_COMPRESS_GZIP };
  struct ob_layer_precomp *pc;
  char *small = td_file (&t, "small");
  int up;
  if (!is_root ())
    {
      printf ("# skip: mounting a small file system needs root\n");
      free (small);
      td_free (&t);
      return;
    }
  mkd (t.fd, "small", 0755);
  mkd (t.fd, "up", 0755);
  up = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  put_bytes (up, "big", 1u << 20, 8, true);
  close (up);
  sleep_ms (60);
  CHECK_INT (mount ("obuild-test", small, "tmpfs", 0, "size=64m"), 0);
  {
    char *upp = td_file (&t, "up");
    pc = ob_layer_precomp_start (upp, small, &o, NULL);
    free (upp);
  }
  CHECK (pc != NULL);
  sleep_ms (300);
  ob_layer_precomp_stop (pc);
  CHECK_INT (ob_layer_precomp_files (pc), 0);
  ob_layer_precomp_free (pc);
  umount2 (small, MNT_DETACH);
  /* the same with room: made */
  pc = precomp_until (&t, &o, 1);
  ob_layer_precomp_stop (pc);
  CHECK_INT (ob_layer_precomp_files (pc), 1);
  ob_layer_precomp_free (pc);
  free (small);
  td_free (&t);
}

/* A container's root: only the files changed since the step began, and
 * never another mount's (root: a tmpfs mounted inside). */
TEST (precomp_since_and_mounts)
{
  struct td t = td_new ();
  struct ob_layer_opts o = { .compression = OB_COMPRESS_GZIP };
  struct ob_layer_precomp *pc;
  struct timespec since;
  char *up = td_file (&t, "up"), *mnt = td_file (&t, "up/mnt");
  int upfd;
  bool mounted = false;
  mkd (t.fd, "up", 0755);
  upfd = openat (t.fd, "up", O_RDONLY | O_DIRECTORY);
  mkd (upfd, "mnt", 0755);
  put_bytes (upfd, "old", 1u << 20, 9, true);
  sleep_ms (30);
  clock_gettime (CLOCK_REALTIME, &since);
  put_bytes (upfd, "new", 1u << 20, 10, true);
  if (is_root () && mount ("obuild-test", mnt, "tmpfs", 0, "size=16m") == 0)
    {
      int m = openat (upfd, "mnt", O_RDONLY | O_DIRECTORY);
      put_bytes (m, "elsewhere", 1u << 20, 11, true);
      close (m);
      mounted = true;
    }
  sleep_ms (60);
  pc = ob_layer_precomp_start (up, t.path, &o, &since);
  CHECK (pc != NULL);
  for (int i = 0; i < 100 && ob_layer_precomp_files (pc) < 1; i++)
    sleep_ms (10);
  sleep_ms (200); /* time to make the others, were they taken */
  ob_layer_precomp_stop (pc);
  CHECK_INT (ob_layer_precomp_files (pc), 1);
  ob_layer_precomp_free (pc);
  /* without since: the old one too, still not the other mount's */
  pc = ob_layer_precomp_start (up, t.path, &o, NULL);
  for (int i = 0; i < 100 && ob_layer_precomp_files (pc) < 2; i++)
    sleep_ms (10);
  sleep_ms (200);
  ob_layer_precomp_stop (pc);
  CHECK_INT (ob_layer_precomp_files (pc), 2);
  ob_layer_precomp_free (pc);
  if (mounted)
    umount2 (mnt, MNT_DETACH);
  else
    printf ("# the other mount: skipped (needs root)\n");
  close (upfd);
  free (up);
  free (mnt);
  td_free (&t);
}

int
main (void)
{
  umask (022);
  RUN (snapshot_order);
  RUN (snapshot_empty);
  RUN (snapshot_path_bound);
  RUN (snapshot_whiteout_chardev);
  RUN (snapshot_opaque_and_xattr_whiteout);
  RUN (snapshot_trusted_opaque);
  RUN (snapshot_bad_fd);
  RUN (write_deterministic);
  RUN (write_clamp_identical);
  RUN (write_clamp_keeps_older);
  RUN (write_gzip_digests);
  RUN (write_gzip_isal);
  RUN (write_gzip_header);
  RUN (write_zstd);
  RUN (write_none);
  RUN (write_entries);
  RUN (write_hardlink);
  RUN (write_whiteout_opaque_markers);
  RUN (write_xattrs);
  RUN (device_parse);
  RUN (write_device_placeholder);
  RUN (write_large_file);
  RUN (precomp_same_bytes);
  RUN (precomp_changed_files);
  RUN (precomp_hostile_entries);
  RUN (precomp_needs_room);
  RUN (precomp_since_and_mounts);
  setenv ("OBUILD_TEST_NO_OPENAT2", "1", 1); /* the walk without openat2 */
  RUN (precomp_same_bytes);
  RUN (precomp_hostile_entries);
  RUN (precomp_since_and_mounts);
  unsetenv ("OBUILD_TEST_NO_OPENAT2");
  RUN (write_flushes_ahead);
  RUN (write_missing_path_error);
  RUN (write_sources_checks_the_source);
  RUN (write_sources_stay_inside);
  RUN (gunzip_members_and_boundaries);
  RUN (gunzip_bad_streams);
  RUN (gunzip_pipe);
  RUN (tree_index_while_writing);
  RUN (write_special_files);
  RUN (write_utf8_names_locale_independent);
  RUN (import_normalises_names);
  RUN (import_rejects_dotdot);
  RUN (import_hardlinks);
  RUN (import_hardlink_dotdot_rejected);
  RUN (check_hardlinks);
  RUN (import_owners_clamp_digest);
  RUN (import_not_an_archive);
  RUN (is_archive_tar);
  RUN (is_archive_gzip);
  RUN (is_archive_xz);
  RUN (is_archive_zstd);
  RUN (is_archive_bzip2);
  RUN (is_archive_not_text_or_empty);
  RUN (is_archive_gzip_of_text);
  RUN (extract_plain_tree);
  RUN (extract_into_dest);
  RUN (extract_whiteout_deletes_lower);
  RUN (extract_whiteouts_off_are_files);
  RUN (extract_opaque_keeps_own_entries);
  RUN (extract_invalid_whiteouts);
  RUN (extract_rejects_dotdot);
  RUN (extract_abs_symlink_stays_inside);
  RUN (extract_dangling_abs_symlink_parent);
  RUN (extract_parent_is_a_file);
  RUN (extract_relative_symlink_parent_clamped);
  RUN (extract_hardlink_escape_rejected);
  RUN (extract_hardlink_through_symlink_stays_inside);
  RUN (extract_hardlink_missing_rejected);
  RUN (extract_hardlink_to_existing_in_root);
  RUN (extract_readonly_dir_with_contents);
  RUN (extract_long_name_rejected);
  RUN (extract_replaces_types);
  RUN (extract_not_an_archive);
  RUN (write_extract_roundtrip);
  /* Again through the user-space resolver used when openat2 is missing. */
  setenv ("OBUILD_TEST_NO_OPENAT2", "1", 1);
  RUN (extract_plain_tree);
  RUN (extract_into_dest);
  RUN (extract_whiteout_deletes_lower);
  RUN (extract_whiteouts_off_are_files);
  RUN (extract_opaque_keeps_own_entries);
  RUN (extract_invalid_whiteouts);
  RUN (extract_rejects_dotdot);
  RUN (extract_abs_symlink_stays_inside);
  RUN (extract_dangling_abs_symlink_parent);
  RUN (extract_parent_is_a_file);
  RUN (extract_relative_symlink_parent_clamped);
  RUN (extract_hardlink_escape_rejected);
  RUN (extract_hardlink_through_symlink_stays_inside);
  RUN (extract_hardlink_missing_rejected);
  RUN (extract_hardlink_to_existing_in_root);
  RUN (extract_readonly_dir_with_contents);
  RUN (extract_long_name_rejected);
  RUN (extract_replaces_types);
  RUN (extract_not_an_archive);
  RUN (write_extract_roundtrip);
  unsetenv ("OBUILD_TEST_NO_OPENAT2");
  RUN (read_file_lower);
  RUN (read_file_override);
  RUN (read_file_whiteout);
  RUN (read_file_opaque_parent);
  RUN (read_file_missing_and_special);
  RUN (read_file_hardlink);
  RUN (read_file_parent_replaced);
  RUN (read_file_same_layer_whiteout);
  RUN (read_file_bad_layer);
  RUN (clean_name);
  TAP_DONE ();
}
