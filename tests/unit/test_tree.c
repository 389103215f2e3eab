#include "config.h"
#include "tap.h"
#include <obuild/tree.h>
#include <obuild/statmap.h>
#include <obuild/util.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char dir[] = "/tmp/ob-tree-XXXXXX";

/* The library's fsyncs, counted. */
static int n_fsync;

int
fsync (int fd)
{
  n_fsync++;
  return (int) syscall (SYS_fsync, fd);
}

/* An index file for id with these lines, its checksum right (or not). */
static void
write_index (const char *path, const char *id, const char *body, bool good_sum)
{
  struct ob_buf f = { 0 };
  char sum[OB_DIGEST_LEN];
  ob_error_t err = NULL;
  ob_buf_adds (&f, "obuild-tree-v2 ");
  ob_buf_adds (&f, id);
  ob_buf_adds (&f, "\n");
  ob_buf_adds (&f, body);
  ob_sha256_digest (f.data, f.len, sum);
  if (!good_sum)
    sum[7] = sum[7] == '0' ? '1' : '0';
  ob_buf_adds (&f, "obuild-tree-end ");
  ob_buf_adds (&f, sum + 7);
  ob_buf_adds (&f, "\n");
  if (ob_write_file_atomic_at (AT_FDCWD, path, f.data, f.len, 0600, &err) < 0)
    abort ();
  ob_buf_free (&f);
}

static void
add (struct archive *a, const char *name, mode_t mode, const char *symlink, const char *hardlink)
{
  struct archive_entry *e = archive_entry_new ();
  archive_entry_set_pathname (e, name);
  archive_entry_set_mode (e, mode);
  archive_entry_set_uid (e, 1000);
  archive_entry_set_gid (e, 50);
  archive_entry_set_mtime (e, 1700000000, 0);
  if (symlink)
    archive_entry_set_symlink (e, symlink);
  if (hardlink)
    archive_entry_set_hardlink (e, hardlink);
  archive_entry_set_size (e, 0);
  archive_write_header (a, e);
  archive_entry_free (e);
}

/* Two layers: a base with usr/lib, lib -> usr/lib, etc/passwd, a tab\tname;
 * an upper that whites out etc/passwd, makes usr/lib opaque and adds a
 * hardlink. */
static int
make_layer (const char *path, int which)
{
  struct archive *a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  archive_write_add_filter_gzip (a);
  archive_write_open_filename (a, path);
  if (which == 0)
    {
      add (a, "usr/", S_IFDIR | 0755, NULL, NULL);
      add (a, "usr/lib/", S_IFDIR | 0755, NULL, NULL);
      add (a, "usr/lib/libc.so", S_IFREG | 0644, NULL, NULL);
      add (a, "lib", S_IFLNK | 0777, "usr/lib", NULL);
      add (a, "etc/", S_IFDIR | 0755, NULL, NULL);
      add (a, "etc/passwd", S_IFREG | 0644, NULL, NULL);
      add (a, "odd\tname\nhere", S_IFREG | 0600, NULL, NULL);
    }
  else
    {
      add (a, "etc/.wh.passwd", S_IFREG, NULL, NULL);
      add (a, "usr/lib/.wh..wh..opq", S_IFREG, NULL, NULL);
      add (a, "usr/lib/new", S_IFREG | 04755, NULL, NULL);
      add (a, "usr/lib/hard", S_IFREG | 0644, NULL, "usr/lib/new");
    }
  archive_write_close (a);
  archive_write_free (a);
  return open (path, O_RDONLY);
}

static void
check_tree (struct ob_tree *t)
{
  const struct ob_tree_stat *st;
  char *r;
  CHECK (ob_tree_lookup (t, "/etc/passwd") == NULL);
  CHECK (ob_tree_lookup (t, "/usr/lib/libc.so") == NULL);
  st = ob_tree_lookup (t, "/usr/lib/new");
  CHECK (st != NULL && st->uid == 1000 && st->gid == 50 && (st->mode & 07777) == 04755);
  st = ob_tree_lookup (t, "/usr/lib/hard");
  CHECK (st != NULL && (st->mode & 07777) == 04755);
  st = ob_tree_lookup (t, "/odd\tname\nhere");
  CHECK (st != NULL && (st->mode & 0777) == 0600);
  r = ob_tree_resolve (t, "/lib/x", false);
  CHECK_STR (r, "/usr/lib/x");
  free (r);
  r = ob_tree_resolve (t, "/lib/../../../etc", true);
  CHECK_STR (r, "/etc");
  free (r);
}

TEST (test_tree_from_layers_and_index)
{
  char *p0 = ob_xasprintf ("%s/l0.tgz", dir), *p1 = ob_xasprintf ("%s/l1.tgz", dir);
  char *idx = ob_xasprintf ("%s/idx", dir);
  const char *id0 = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
  const char *id1 = "sha256:0000000000000000000000000000000000000000000000000000000000000002";
  int f0 = make_layer (p0, 0), f1 = make_layer (p1, 1);
  ob_error_t err = NULL;
  for (int round = 0; round < 3; round++)
    {
      struct ob_tree *t = ob_tree_new ();
      if (round == 0)
        {
          CHECK (ob_tree_add_layer (t, f0, &err) == 0);
          CHECK (ob_tree_add_layer (t, f1, &err) == 0);
        }
      else
        {
          /* round 1 writes the indexes, round 2 reads them (no layer data:
           * a bad fd would fail if it were read) */
          CHECK (ob_tree_add_layer_indexed (t, idx, id0, round == 1 ? f0 : -1, &err) == 0);
          CHECK (ob_tree_add_layer_indexed (t, idx, id1, round == 1 ? f1 : -1, &err) == 0);
        }
      check_tree (t);
      ob_tree_free (t);
    }
  {
    /* a truncated index is not trusted: the layer is read again */
    char *ip = ob_xasprintf ("%s/idx/%s", dir, id0 + 7);
    truncate (ip, 20);
    struct ob_tree *t = ob_tree_new ();
    CHECK (ob_tree_add_layer_indexed (t, idx, id0, f0, &err) == 0);
    CHECK (ob_tree_lookup (t, "/usr/lib/libc.so") != NULL);
    ob_tree_free (t);
    free (ip);
  }
  ob_error_free (&err);
  close (f0);
  close (f1);
  free (p0);
  free (p1);
  free (idx);
}

/* Entries that remove or replace the directory the previous entries went
 * into, and paths with empty and "." components: the tree is the same read
 * from the layer and from its index (ASan: no node is used after it is
 * freed). */
static void
check_hostile (struct ob_tree *t)
{
  const struct ob_tree_stat *st;
  CHECK (ob_tree_lookup (t, "/a/b/x") == NULL);
  CHECK (ob_tree_lookup (t, "/a/b/y") != NULL);
  CHECK (ob_tree_lookup (t, "/c/f") == NULL);
  st = ob_tree_lookup (t, "/c");
  CHECK (st != NULL && S_ISREG (st->mode));
  CHECK (ob_tree_lookup (t, "/c/g") != NULL);
  CHECK (ob_tree_lookup (t, "/d/e/f") != NULL);
  CHECK (ob_tree_lookup (t, "/d/e/h") != NULL);
  st = ob_tree_lookup (t, "/d/e");
  CHECK (st != NULL && S_ISDIR (st->mode) && (st->mode & 0777) == 0700);
  CHECK (ob_tree_lookup (t, "/o/gone") == NULL);
  CHECK (ob_tree_lookup (t, "/o/kept") != NULL);
}

TEST (test_tree_hostile_order)
{
  char *p = ob_xasprintf ("%s/hostile.tgz", dir), *idx = ob_xasprintf ("%s/idx", dir);
  const char *id = "sha256:0000000000000000000000000000000000000000000000000000000000000003";
  struct archive *a = archive_write_new ();
  ob_error_t err = NULL;
  int fd;
  archive_write_set_format_pax_restricted (a);
  archive_write_add_filter_gzip (a);
  archive_write_open_filename (a, p);
  add (a, "a/", S_IFDIR | 0755, NULL, NULL);
  add (a, "a/b/", S_IFDIR | 0755, NULL, NULL);
  add (a, "a/b/x", S_IFREG | 0644, NULL, NULL);
  add (a, ".wh.a", S_IFREG, NULL, NULL);
  add (a, "a/b/y", S_IFREG | 0644, NULL, NULL);
  add (a, "c/", S_IFDIR | 0755, NULL, NULL);
  add (a, "c/f", S_IFREG | 0644, NULL, NULL);
  add (a, "c", S_IFREG | 0644, NULL, NULL);
  add (a, "c/g", S_IFREG | 0644, NULL, NULL);
  add (a, "d//e/f", S_IFREG | 0644, NULL, NULL);
  add (a, "d/./e/h", S_IFREG | 0644, NULL, NULL);
  add (a, "d/e/.", S_IFDIR | 0700, NULL, NULL);
  add (a, "o/gone", S_IFREG | 0644, NULL, NULL);
  add (a, "o/.wh..wh..opq", S_IFREG, NULL, NULL);
  add (a, "o/kept", S_IFREG | 0644, NULL, NULL);
  archive_write_close (a);
  archive_write_free (a);
  fd = open (p, O_RDONLY);
  for (int round = 0; round < 3; round++)
    {
      struct ob_tree *t = ob_tree_new ();
      CHECK ((round == 0 ? ob_tree_add_layer (t, fd, &err) : ob_tree_add_layer_indexed (t, idx, id, round == 1 ? fd : -1, &err)) == 0);
      check_hostile (t);
      ob_tree_free (t);
    }
  close (fd);
  free (p);
  free (idx);
}

/* Index lines whose numbers do not parse are skipped, not half-read. */
TEST (test_tree_index_bad_lines)
{
  char *idx = ob_xasprintf ("%s/idx", dir);
  const char *id = "sha256:0000000000000000000000000000000000000000000000000000000000000004";
  char *ip = ob_xasprintf ("%s/%s", idx, id + 7);
  const char *text = "100644 1 2 3 4\tok\t\t\n"
                     "10x644 1 2 3 4\tbad-mode\t\t\n"
                     "100644 99999999999 2 3 4\tbad-uid\t\t\n"
                     "100644 1 2 3\tshort\t\t\n"
                     "100644 1 2 3 4 5\tlong\t\t\n"
                     "100644 1 2 3 99999999999999999999\thuge\t\t\n";
  ob_error_t err = NULL;
  mkdir (idx, 0700);
  write_index (ip, id, text, true);
  struct ob_tree *t = ob_tree_new ();
  CHECK (ob_tree_add_layer_indexed (t, idx, id, -1, &err) == 0);
  const struct ob_tree_stat *st = ob_tree_lookup (t, "/ok");
  CHECK (st != NULL && st->uid == 1 && st->gid == 2 && st->mtime == 3 && st->size == 4);
  CHECK (ob_tree_lookup (t, "/bad-mode") == NULL);
  CHECK (ob_tree_lookup (t, "/bad-uid") == NULL);
  CHECK (ob_tree_lookup (t, "/short") == NULL);
  CHECK (ob_tree_lookup (t, "/long") == NULL);
  CHECK (ob_tree_lookup (t, "/huge") == NULL);
  ob_tree_free (t);
  ob_error_free (&err);
  free (ip);
  free (idx);
}

/* What a crash may leave of an index written without fsync is not
 * trusted: a torn or changed file, another layer's index under this name,
 * a version 1 file (no checksum); each makes the layer be read again, and
 * the index is then written anew.  Saving it syncs nothing. */
TEST (test_tree_index_checked)
{
  char *p0 = ob_xasprintf ("%s/c0.tgz", dir);
  char *idx = ob_xasprintf ("%s/idx-checked", dir);
  const char *id = "sha256:00000000000000000000000000000000000000000000000000000000000000c0";
  const char *other = "sha256:00000000000000000000000000000000000000000000000000000000000000c1";
  char *ip = ob_xasprintf ("%s/%s", idx, id + 7);
  /* a forged index: /forged, which the layer does not have */
  const char *forged = "100644 0 0 0 0\tforged\t\t\n";
  int f0 = make_layer (p0, 0);
  ob_error_t err = NULL;
  struct ob_tree *t;
  mkdir (idx, 0700);
  for (int k = 0; k < 5; k++)
    {
      switch (k)
        {
        case 0: /* control: a good index is used as it is (the layer is not read) */
          write_index (ip, id, forged, true);
          break;
        case 1:
          write_index (ip, id, forged, false);
          break;
        case 2:
          write_index (ip, other, forged, true);
          break;
        case 3:
          {
            const char *v1 = "obuild-tree-v1\n100644 0 0 0 0\tforged\t\t\nobuild-tree-end\n";
            CHECK (ob_write_file_atomic_at (AT_FDCWD, ip, v1, strlen (v1), 0600, &err) == 0);
            break;
          }
        case 4: /* torn: the good file cut before its end line */
          write_index (ip, id, forged, true);
          CHECK (truncate (ip, 30) == 0);
          break;
        }
      t = ob_tree_new ();
      lseek (f0, 0, SEEK_SET);
      n_fsync = 0;
      CHECK (ob_tree_add_layer_indexed (t, idx, id, f0, &err) == 0);
      if (k == 0)
        CHECK (ob_tree_lookup (t, "/forged") != NULL && ob_tree_lookup (t, "/etc") == NULL);
      else
        {
          CHECK (ob_tree_lookup (t, "/forged") == NULL && ob_tree_lookup (t, "/etc/passwd") != NULL);
          CHECK_INT (n_fsync, 0);
        }
      ob_tree_free (t);
      if (k > 0)
        {
          /* rewritten: now read without the layer (-1 would fail) */
          t = ob_tree_new ();
          CHECK (ob_tree_add_layer_indexed (t, idx, id, -1, &err) == 0);
          CHECK (ob_tree_lookup (t, "/etc/passwd") != NULL);
          ob_tree_free (t);
        }
    }
  ob_error_free (&err);
  close (f0);
  free (p0);
  free (ip);
  free (idx);
}

TEST (test_statmap)
{
  struct ob_statmap *m = ob_statmap_new ();
  struct stat st;
  char name[32];
  memset (&st, 0, sizeof st);
  /* enough paths to grow the table several times */
  for (int i = 0; i < 5000; i++)
    {
      snprintf (name, sizeof name, "d/%d", i);
      st.st_ino = (ino_t) i + 1;
      st.st_ctim.tv_sec = i;
      st.st_ctim.tv_nsec = i * 7;
      ob_statmap_put (m, name, &st);
    }
  CHECK_INT (ob_statmap_size (m), 5000);
  st.st_ino = 4001;
  st.st_ctim.tv_sec = 4000;
  st.st_ctim.tv_nsec = 28000;
  CHECK_INT (ob_statmap_same (m, "d/4000", &st), 1);
  st.st_ctim.tv_nsec++; /* touched: ctime moved */
  CHECK_INT (ob_statmap_same (m, "d/4000", &st), 0);
  st.st_ctim.tv_nsec--;
  st.st_ino = 9; /* replaced by another inode */
  CHECK_INT (ob_statmap_same (m, "d/4000", &st), 0);
  CHECK_INT (ob_statmap_same (m, "d/5000", &st), -1);
  CHECK_INT (ob_statmap_same (m, "", &st), -1);
  /* a second put replaces */
  ob_statmap_put (m, "d/4000", &st);
  CHECK_INT (ob_statmap_size (m), 5000);
  CHECK_INT (ob_statmap_same (m, "d/4000", &st), 1);
  ob_statmap_free (m);
}

/* A layer's entries noted while it is written, applied to a tree already
 * built (ob_tree_add_index), give the tree a build from both layers'
 * indexes gives. */
static void
note (struct ob_tree_index *x, const char *name, mode_t mode, const char *symlink, const char *hardlink)
{
  struct ob_layer_entry_info e = { 0 };
  e.name = name;
  e.mode = mode;
  e.uid = 1000;
  e.gid = 50;
  e.mtime = 1700000000;
  e.symlink = symlink;
  e.hardlink = hardlink;
  ob_tree_index_note (x, &e);
}

TEST (test_tree_add_index)
{
  char *p = ob_xasprintf ("%s/base.tgz", dir), *idx = ob_xasprintf ("%s/idx-add", dir);
  const char *id0 = "sha256:0000000000000000000000000000000000000000000000000000000000000010";
  const char *id1 = "sha256:0000000000000000000000000000000000000000000000000000000000000011";
  struct ob_tree_index *x = ob_tree_index_new ();
  ob_error_t err = NULL;
  int fd = make_layer (p, 0);
  note (x, "etc/.wh.passwd", S_IFREG, NULL, NULL);
  note (x, "usr/lib/.wh..wh..opq", S_IFREG, NULL, NULL);
  note (x, "usr/lib/new", S_IFREG | 04755, NULL, NULL);
  note (x, "usr/lib/hard", S_IFREG | 0644, NULL, "usr/lib/new");
  /* incrementally: the base's tree, then the noted layer */
  struct ob_tree *t = ob_tree_new ();
  CHECK (ob_tree_add_layer_indexed (t, idx, id0, fd, &err) == 0);
  CHECK (ob_tree_lookup (t, "/etc/passwd") != NULL);
  ob_tree_add_index (t, x);
  check_tree (t);
  ob_tree_add_index (t, NULL); /* nothing */
  check_tree (t);
  ob_tree_free (t);
  /* from the two indexes, as a later build reads them */
  ob_tree_index_save (x, idx, id1);
  t = ob_tree_new ();
  CHECK (ob_tree_add_layer_indexed (t, idx, id0, -1, &err) == 0);
  CHECK (ob_tree_add_layer_indexed (t, idx, id1, -1, &err) == 0);
  check_tree (t);
  ob_tree_free (t);
  ob_tree_index_free (x);
  close (fd);
  free (p);
  free (idx);
}

static void
count_kid (void *data, const char *name)
{
  (void) name;
  (*(long *) data)++;
}

/* A layer may put any number of entries in one directory, in any order,
 * and white any of them out again: a lookup must not cost a scan of the
 * directory (200,000 entries took minutes that way, a hang for a step's
 * COPY), and a removal must keep every other entry findable. */
TEST (test_tree_huge_dir)
{
  enum { N = 200000 };
  struct ob_tree_index *x = ob_tree_index_new (), *y = ob_tree_index_new ();
  struct ob_tree *t = ob_tree_new ();
  char name[64];
  long n = 0;
  bool all = true;
  for (int i = N; i-- > 0;)
    {
      snprintf (name, sizeof name, "big/f%07d", (i * 7919) % N);
      note (x, name, S_IFREG | 0644, NULL, NULL);
    }
  for (int i = 0; i < N; i += 2)
    {
      snprintf (name, sizeof name, "big/.wh.f%07d", i);
      note (y, name, S_IFREG, NULL, NULL);
    }
  ob_tree_add_index (t, x);
  CHECK (ob_tree_children (t, "/big", count_kid, &n) == N);
  ob_tree_add_index (t, y);
  n = 0;
  CHECK (ob_tree_children (t, "/big", count_kid, &n) == N / 2 && n == N / 2);
  for (int i = 0; i < N; i++)
    {
      snprintf (name, sizeof name, "/big/f%07d", i);
      const struct ob_tree_stat *st = ob_tree_lookup (t, name);
      all = all && ((i % 2 == 0) ? st == NULL : (st != NULL && S_ISREG (st->mode)));
    }
  CHECK (all);
  /* the directory itself replaced by a file: every child gone */
  struct ob_tree_index *z = ob_tree_index_new ();
  note (z, "big", S_IFREG | 0600, NULL, NULL);
  ob_tree_add_index (t, z);
  CHECK (ob_tree_lookup (t, "/big/f0000001") == NULL);
  CHECK (ob_tree_children (t, "/big", count_kid, &n) == -1);
  ob_tree_index_free (x);
  ob_tree_index_free (y);
  ob_tree_index_free (z);
  ob_tree_free (t);
}

/* A path may be as deep as a layer's tar header can say (pax: any length):
 * 300,000 directories are made, looked up, resolved and freed again (a
 * recursive free overflowed the stack there), and resolving a long
 * destination costs its length, not its square. */
TEST (test_tree_deep_path)
{
  enum { DEPTH = 300000 };
  struct ob_tree_index *x = ob_tree_index_new (), *y = ob_tree_index_new ();
  struct ob_tree *t = ob_tree_new ();
  struct ob_buf p = { 0 }, q = { 0 };
  for (int i = 0; i < DEPTH; i++)
    ob_buf_adds (&p, "d/");
  ob_buf_adds (&p, "f");
  note (x, p.data, S_IFREG | 0644, NULL, NULL);
  note (x, "top/link", S_IFLNK | 0777, "/d", NULL);
  ob_tree_add_index (t, x);
  ob_buf_addc (&q, '/');
  ob_buf_adds (&q, p.data);
  const struct ob_tree_stat *st = ob_tree_lookup (t, q.data);
  CHECK (st != NULL && S_ISREG (st->mode));
  /* through a symlink, and up and down again, to the same file */
  struct ob_buf r = { 0 };
  ob_buf_adds (&r, "/top/link/");
  for (int i = 1; i < DEPTH; i++)
    ob_buf_adds (&r, "d/../d/");
  ob_buf_adds (&r, "f");
  char *res = ob_tree_resolve (t, r.data, true);
  CHECK (strcmp (res, q.data) == 0);
  free (res);
  note (y, ".wh.d", S_IFREG, NULL, NULL);
  ob_tree_add_index (t, y);
  CHECK (ob_tree_lookup (t, q.data) == NULL);
  CHECK (ob_tree_lookup (t, "/top/link") != NULL);
  ob_tree_free (t);
  /* freed whole, never whited out */
  t = ob_tree_new ();
  ob_tree_add_index (t, x);
  ob_tree_free (t);
  ob_tree_index_free (x);
  ob_tree_index_free (y);
  ob_buf_free (&p);
  ob_buf_free (&q);
  ob_buf_free (&r);
}

int
main (void)
{
  ob_error_t e = NULL;
  if (mkdtemp (dir) == NULL)
    return 1;
  RUN (test_tree_from_layers_and_index);
  RUN (test_tree_hostile_order);
  RUN (test_tree_index_bad_lines);
  RUN (test_tree_index_checked);
  RUN (test_tree_add_index);
  RUN (test_tree_huge_dir);
  RUN (test_tree_deep_path);
  RUN (test_statmap);
  ob_rm_rf_at (AT_FDCWD, dir, &e);
  ob_error_free (&e);
  TAP_DONE ();
}
