#include "config.h"
#include "tap.h"
#include <obuild/layer.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <archive.h>
#include <archive_entry.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Every fsync of the library linked into this test is seen here: the
 * path it synced and whether that name was in the layout's blobs yet. */
static char fsynced[16][512];
static int n_fsynced;

int
fsync (int fd)
{
  char link[64];
  ssize_t n;
  snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
  if (n_fsynced < 16 && (n = readlink (link, fsynced[n_fsynced], sizeof fsynced[0] - 1)) > 0)
    fsynced[n_fsynced++][n] = '\0';
  return (int) syscall (SYS_fsync, fd);
}

static char *
tmpdir (void)
{
  char *t = ob_xstrdup ("/tmp/ob-store-XXXXXX");
  return mkdtemp (t);
}

static void
rmtree (char *d)
{
  ob_error_t e = NULL;
  ob_rm_rf_at (AT_FDCWD, d, &e);
  ob_error_free (&e);
  free (d);
}

/* Entries of dir, hidden ones too when asked (-1: no such directory). */
static int
count_in (const char *dir, bool hidden)
{
  DIR *d = opendir (dir);
  struct dirent *de;
  int n = 0;
  if (d == NULL)
    return -1;
  while ((de = readdir (d)))
    if (hidden ? strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0 : de->d_name[0] != '.')
      n++;
  closedir (d);
  return n;
}

static int
count_entries (const char *dir)
{
  return count_in (dir, false);
}

/* Put a fake manifest blob in a transaction and commit it under tags. */
static int
commit_manifest (struct ob_layout *l, const char *scratch, const char *content, char **tags,
                 struct ob_descriptor *d)
{
  struct ob_txn *t = NULL;
  ob_error_t err = NULL;
  int r;
  if (ob_txn_begin (l, scratch, &t, &err) < 0)
    return -1;
  d->media_type = (char *) OB_MT_OCI_MANIFEST;
  d->size = strlen (content);
  r = ob_txn_blob_put (t, content, strlen (content), d->digest, &err);
  if (r == 0)
    r = ob_txn_commit (t, d, tags, &err);
  if (err)
    printf ("# %s\n", err->msg);
  ob_error_free (&err);
  ob_txn_free (t);
  return r;
}

TEST (test_layout_create_and_reopen)
{
  char *d = tmpdir ();
  char *p = ob_xasprintf ("%s/layout", d);
  struct ob_layout *l = NULL;
  ob_error_t err = NULL;
  char *text = NULL;
  size_t len;
  CHECK (ob_layout_open (p, true, &l, &err) == 0);
  ob_layout_close (l);
  char *lp = ob_xasprintf ("%s/oci-layout", p);
  CHECK (ob_read_file_at (AT_FDCWD, lp, &text, &len, &err) == 0);
  free (lp);
  CHECK_STR (text, "{\"imageLayoutVersion\":\"1.0.0\"}");
  free (text);
  CHECK (ob_layout_open (p, false, &l, &err) == 0);
  ob_layout_close (l);
  free (p);
  rmtree (d);
}

TEST (test_layout_open_missing_is_image_error)
{
  char *d = tmpdir ();
  struct ob_layout *l = NULL;
  ob_error_t err = NULL;
  CHECK (ob_layout_open (d, false, &l, &err) < 0);
  CHECK_INT (err->kind, OB_ERR_IMAGE);
  CHECK (strstr (err->msg, "not an OCI image layout") != NULL);
  ob_error_free (&err);
  rmtree (d);
}

TEST (test_txn_commit_tags_and_resolve)
{
  char *d = tmpdir ();
  char *p = ob_xasprintf ("%s/oci", d);
  struct ob_layout *l = NULL;
  ob_error_t err = NULL;
  struct ob_descriptor m1, m2, got = { 0 };
  char *tags1[] = { (char *) "app:1", (char *) "app:latest", NULL };
  char *tags2[] = { (char *) "app:latest", NULL };
  struct ob_layout_entry *e = NULL;
  size_t n = 0;
  CHECK (ob_layout_open (p, true, &l, &err) == 0);
  CHECK (commit_manifest (l, d, "{\"one\":1}", tags1, &m1) == 0);
  CHECK (commit_manifest (l, d, "{\"two\":2}", tags2, &m2) == 0);
  CHECK (ob_layout_resolve (l, "app:1", &got, &err) == 0);
  CHECK_STR (got.digest, m1.digest);
  ob_descriptor_clear (&got);
  CHECK (ob_layout_resolve (l, "app", &got, &err) == 0);
  CHECK_STR (got.digest, m2.digest);
  ob_descriptor_clear (&got);
  CHECK (ob_layout_resolve (l, m1.digest, &got, &err) == 0);
  ob_descriptor_clear (&got);
  CHECK (ob_layout_resolve (l, "app:2", &got, &err) < 0);
  CHECK_INT (err->kind, OB_ERR_IMAGE);
  ob_error_free (&err);
  CHECK (ob_layout_list (l, &e, &n, &err) == 0);
  CHECK_INT (n, 2);
  ob_layout_entries_free (e, n);
  CHECK_INT (count_entries (d), 1); /* scratch directories removed */
  ob_layout_close (l);
  free (p);
  rmtree (d);
}

/* A fresh layout in a temporary directory, and a transaction on it. */
struct fixture
{
  char *d, *p;
  struct ob_layout *l;
  struct ob_txn *t;
};

static void
fixture_open (struct fixture *f)
{
  ob_error_t err = NULL;
  f->d = tmpdir ();
  f->p = ob_xasprintf ("%s/oci", f->d);
  f->l = NULL;
  f->t = NULL;
  CHECK (ob_layout_open (f->p, true, &f->l, &err) == 0);
  CHECK (ob_txn_begin (f->l, f->d, &f->t, &err) == 0);
  ob_error_free (&err);
}

static void
fixture_close (struct fixture *f)
{
  ob_txn_free (f->t);
  ob_layout_close (f->l);
  free (f->p);
  rmtree (f->d);
}

/* A staged blob is synced when the transaction publishes it, before its
 * name enters blobs/sha256, not when it is staged. */
TEST (test_txn_blob_synced_at_publish)
{
  struct fixture f;
  ob_error_t err = NULL;
  char digest[OB_DIGEST_LEN];
  bool synced_staged = false;
  fixture_open (&f);
  n_fsynced = 0;
  CHECK (ob_txn_blob_put (f.t, "layer bytes", 11, digest, &err) == 0);
  CHECK_INT (n_fsynced, 0);
  CHECK (ob_txn_publish (f.t, &err) == 0);
  for (int i = 0; i < n_fsynced; i++)
    if (ob_str_has_suffix (fsynced[i], digest + 7) && strstr (fsynced[i], "/blobs/sha256/") == NULL)
      synced_staged = true;
  CHECK (synced_staged);
  CHECK (ob_layout_has_blob (f.l, digest));
  fixture_close (&f);
}

/* Tagging what is tagged already (a rebuild whose every step was cached)
 * writes nothing and syncs nothing; another tag is written. */
TEST (test_commit_unchanged_writes_nothing)
{
  char *d = tmpdir ();
  char *p = ob_xasprintf ("%s/oci", d);
  char *ip = ob_xasprintf ("%s/oci/index.json", d);
  struct ob_layout *l = NULL;
  ob_error_t err = NULL;
  struct ob_descriptor m;
  char *tags[] = { (char *) "app:1", NULL };
  char *other[] = { (char *) "app:2", NULL };
  struct stat a, b;
  CHECK (ob_layout_open (p, true, &l, &err) == 0);
  CHECK (commit_manifest (l, d, "{\"app\":1}", tags, &m) == 0);
  CHECK (stat (ip, &a) == 0);
  n_fsynced = 0;
  CHECK (commit_manifest (l, d, "{\"app\":1}", tags, &m) == 0);
  CHECK_INT (n_fsynced, 0);
  CHECK (stat (ip, &b) == 0 && a.st_ino == b.st_ino);
  CHECK (commit_manifest (l, d, "{\"app\":1}", other, &m) == 0);
  CHECK (n_fsynced > 0);
  CHECK (stat (ip, &b) == 0 && a.st_ino != b.st_ino);
  ob_layout_close (l);
  free (ip);
  free (p);
  rmtree (d);
}

/* A download in the transaction's scratch directory is staged by renaming
 * it; a path elsewhere is refused and left alone. */
TEST (test_txn_blob_take)
{
  struct fixture f;
  ob_error_t err = NULL;
  char digest[OB_DIGEST_LEN], *data = NULL, *dl, *dl2;
  size_t len = 0;
  int fd = -1;
  char *outside;
  ob_sha256_digest ("downloaded", 10, digest);
  fixture_open (&f);
  outside = ob_xasprintf ("%s/outside", f.d);
  dl = ob_xasprintf ("%s/dl-1", ob_txn_scratch (f.t));
  dl2 = ob_xasprintf ("%s/dl-2", ob_txn_scratch (f.t));
  CHECK (ob_write_file_atomic_at (AT_FDCWD, dl, "downloaded", 10, 0600, &err) == 0);
  CHECK (ob_write_file_atomic_at (AT_FDCWD, dl2, "downloaded", 10, 0600, &err) == 0);
  CHECK (ob_write_file_atomic_at (AT_FDCWD, outside, "downloaded", 10, 0600, &err) == 0);
  CHECK (ob_txn_blob_take (f.t, outside, digest, &err) < 0);
  CHECK (err != NULL && strstr (err->msg, "not a file of the transaction") != NULL);
  ob_error_free (&err);
  CHECK (access (outside, F_OK) == 0);
  {
    char *sneaky = ob_xasprintf ("%s/../outside", ob_txn_scratch (f.t));
    CHECK (ob_txn_blob_take (f.t, sneaky, digest, &err) < 0);
    ob_error_free (&err);
    CHECK (access (outside, F_OK) == 0);
    free (sneaky);
  }
  CHECK (ob_txn_blob_take (f.t, dl, digest, &err) == 0);
  CHECK (access (dl, F_OK) < 0);
  CHECK (ob_txn_blob_open (f.t, digest, &fd, &err) == 0);
  CHECK (ob_read_fd (fd, &data, &len, &err) == 0 && len == 10 && memcmp (data, "downloaded", 10) == 0);
  free (data);
  close (fd);
  /* the same content again: already staged, the file is dropped */
  CHECK (ob_txn_blob_take (f.t, dl2, digest, &err) == 0);
  CHECK (access (dl2, F_OK) < 0);
  CHECK (ob_txn_publish (f.t, &err) == 0);
  CHECK (ob_layout_has_blob (f.l, digest));
  free (dl);
  free (dl2);
  free (outside);
  fixture_close (&f);
}

/* A small layer (a directory and a file), gzip or plain tar. */
static int
write_layer (const char *path, bool gzip)
{
  struct archive *a = archive_write_new ();
  struct archive_entry *e = archive_entry_new ();
  archive_write_set_format_pax_restricted (a);
  if (gzip)
    archive_write_add_filter_gzip (a);
  archive_write_open_filename (a, path);
  archive_entry_set_pathname (e, "etc/");
  archive_entry_set_mode (e, S_IFDIR | 0755);
  archive_write_header (a, e);
  archive_entry_clear (e);
  archive_entry_set_pathname (e, "etc/hostname");
  archive_entry_set_mode (e, S_IFREG | 0644);
  archive_entry_set_size (e, 5);
  archive_write_header (a, e);
  archive_write_data (a, "base\n", 5);
  archive_entry_free (e);
  archive_write_close (a);
  archive_write_free (a);
  return open (path, O_RDONLY);
}

/* A gzip layer is checked against its diff_id while it is unpacked: kept
 * when it matches; when it does not, an image error and nothing left in
 * the store's layers or trees.  Plain tar, or a layer already unpacked: 1,
 * nothing done (the caller reads it instead). */
TEST (test_layer_dir_checked)
{
  char *d = tmpdir ();
  char *root = ob_xasprintf ("%s/store", d);
  char *gz = ob_xasprintf ("%s/l.tgz", d), *plain = ob_xasprintf ("%s/l.tar", d);
  char *layers = NULL, *dir = NULL, *trees = ob_xasprintf ("%s/trees", root);
  const char *wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
  struct ob_store *st = NULL;
  ob_error_t err = NULL;
  char id[OB_DIGEST_LEN];
  int fgz = write_layer (gz, true), fplain = write_layer (plain, false);
  CHECK (ob_layer_diff_id (fgz, id, &err) == 0);
  CHECK (ob_store_open (root, &st, &err) == 0);
  ob_store_set_layer_mode (st, "root");
  layers = ob_xasprintf ("%s/layers/root", root);
  /* wrong diff_id: refused, nothing kept */
  CHECK (ob_store_layer_dir_checked (st, wrong, fgz, &err) < 0);
  CHECK (err != NULL && err->kind == OB_ERR_IMAGE && strstr (err->msg, id) != NULL
         && strstr (err->msg, "the config's diff_id is") != NULL);
  ob_error_free (&err);
  CHECK_INT (count_in (layers, true), 0);
  CHECK (count_in (trees, true) <= 0);
  /* plain tar: not checked this way, nothing made */
  CHECK_INT (ob_store_layer_dir_checked (st, wrong, fplain, &err), 1);
  CHECK (count_in (layers, true) <= 0);
  /* the right one: unpacked, its index kept */
  CHECK_INT (ob_store_layer_dir_checked (st, id, fgz, &err), 0);
  CHECK (ob_store_layer_dir (st, id, -1, &dir, &err) == 0); /* there: the blob is not read */
  {
    char *f = ob_xasprintf ("%s/etc/hostname", dir);
    char *data = NULL;
    size_t len = 0;
    CHECK (ob_read_file_at (AT_FDCWD, f, &data, &len, &err) == 0 && len == 5 && memcmp (data, "base\n", 5) == 0);
    free (data);
    free (f);
  }
  CHECK_INT (count_entries (trees), 1);
  /* already unpacked: 1 */
  CHECK_INT (ob_store_layer_dir_checked (st, id, fgz, &err), 1);
  ob_store_close (st);
  close (fgz);
  close (fplain);
  free (dir);
  free (layers);
  free (trees);
  free (gz);
  free (plain);
  free (root);
  rmtree (d);
}

TEST (test_txn_abort_leaves_layout_unchanged)
{
  char *d = tmpdir ();
  char *p = ob_xasprintf ("%s/oci", d);
  char *blobs = ob_xasprintf ("%s/oci/blobs/sha256", d);
  struct ob_layout *l = NULL;
  struct ob_txn *t = NULL;
  ob_error_t err = NULL;
  char dg[72];
  int fd;
  CHECK (ob_layout_open (p, true, &l, &err) == 0);
  CHECK (ob_txn_begin (l, d, &t, &err) == 0);
  CHECK (ob_txn_blob_put (t, "abc", 3, dg, &err) == 0);
  CHECK (ob_txn_blob_open (t, dg, &fd, &err) == 0);
  close (fd);
  CHECK (!ob_layout_has_blob (l, dg));
  ob_txn_free (t);
  CHECK_INT (count_entries (blobs), 0);
  CHECK_INT (count_entries (d), 1);
  ob_layout_close (l);
  free (p);
  free (blobs);
  rmtree (d);
}

TEST (test_blob_read_verifies_digest)
{
  char *d = tmpdir ();
  char *p = ob_xasprintf ("%s/oci", d);
  struct ob_layout *l = NULL;
  ob_error_t err = NULL;
  struct ob_descriptor m;
  char *tags[] = { (char *) "x:1", NULL };
  char *data = NULL;
  size_t len;
  CHECK (ob_layout_open (p, true, &l, &err) == 0);
  CHECK (commit_manifest (l, d, "{\"x\":1}", tags, &m) == 0);
  CHECK (ob_layout_blob_read (l, m.digest, &data, &len, &err) == 0);
  free (data);
  /* corrupt the blob on disk */
  char *bp = ob_xasprintf ("%s/blobs/sha256/%s", p, m.digest + 7);
  chmod (bp, 0644);
  int fd = open (bp, O_WRONLY | O_TRUNC);
  CHECK (write (fd, "{\"x\":2}", 7) == 7);
  close (fd);
  CHECK (ob_layout_blob_read (l, m.digest, &data, &len, &err) < 0);
  CHECK_INT (err->kind, OB_ERR_IMAGE);
  CHECK (strstr (err->msg, "content has digest") != NULL);
  ob_error_free (&err);
  CHECK (ob_layout_blob_read (l, "sha256:../../etc/passwd", &data, &len, &err) < 0);
  CHECK (strstr (err->msg, "invalid digest") != NULL);
  ob_error_free (&err);
  free (bp);
  ob_layout_close (l);
  free (p);
  rmtree (d);
}

TEST (test_copy_between_layouts)
{
  char *d = tmpdir ();
  char *p1 = ob_xasprintf ("%s/a", d), *p2 = ob_xasprintf ("%s/b", d);
  struct ob_layout *a = NULL, *b = NULL;
  struct ob_txn *t = NULL;
  ob_error_t err = NULL;
  struct ob_descriptor m;
  char *tags[] = { (char *) "x:1", NULL };
  CHECK (ob_layout_open (p1, true, &a, &err) == 0);
  CHECK (ob_layout_open (p2, true, &b, &err) == 0);
  CHECK (commit_manifest (a, d, "{\"y\":1}", tags, &m) == 0);
  CHECK (ob_txn_begin (b, d, &t, &err) == 0);
  CHECK (ob_txn_blob_copy_from (t, a, m.digest, &err) == 0);
  CHECK (ob_txn_commit (t, &m, tags, &err) == 0);
  ob_txn_free (t);
  CHECK (ob_layout_has_blob (b, m.digest));
  ob_layout_close (a);
  ob_layout_close (b);
  free (p1);
  free (p2);
  rmtree (d);
}

/* Tag `tag` -> a descriptor of media type mt for blob content (digest in d). */
static int
commit_typed (struct ob_layout *l, const char *scratch, const char *mt, const char *content,
              int64_t size, const char *tag, struct ob_descriptor *d)
{
  struct ob_txn *t = NULL;
  ob_error_t err = NULL;
  char *tags[] = { (char *) tag, NULL };
  int r;
  if (ob_txn_begin (l, scratch, &t, &err) < 0)
    return -1;
  d->media_type = (char *) mt;
  r = ob_txn_blob_put (t, content, strlen (content), d->digest, &err);
  d->size = size >= 0 ? size : (int64_t) strlen (content);
  if (r == 0)
    r = ob_txn_commit (t, d, tags, &err);
  if (err)
    printf ("# %s\n", err->msg);
  ob_error_free (&err);
  ob_txn_free (t);
  return r;
}

/* An index holding one descriptor. */
static char *
index_of (const char *mt, const char *digest, size_t size)
{
  return ob_xasprintf ("{\"manifests\":[{\"digest\":\"%s\",\"mediaType\":\"%s\",\"size\":%zu}],"
                       "\"schemaVersion\":2}", digest, mt, size);
}

TEST (test_resolve_index_that_is_a_manifest)
{
  char *d = tmpdir ();
  char *p = ob_xasprintf ("%s/oci", d);
  struct ob_layout *l = NULL;
  ob_error_t err = NULL;
  struct ob_descriptor m, got = { 0 };
  const char *man = "{\"config\":{},\"layers\":[],\"schemaVersion\":2}";
  CHECK (ob_layout_open (p, true, &l, &err) == 0);
  /* index.json says "index", the blob is a manifest: once a double free */
  CHECK (commit_typed (l, d, OB_MT_OCI_INDEX, man, -1, "x:1", &m) == 0);
  CHECK (ob_layout_resolve (l, "x:1", &got, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "not an image index") != NULL);
  CHECK (got.media_type == NULL);
  ob_error_free (&err);
  ob_descriptor_clear (&got);
  CHECK (ob_layout_lookup (l, "x:1", &got, &err) < 0);
  ob_error_free (&err);
  ob_descriptor_clear (&got);
  /* the same from a Docker list type */
  CHECK (commit_typed (l, d, OB_MT_DOCKER_LIST, man, -1, "x:2", &m) == 0);
  CHECK (ob_layout_resolve (l, "x:2", &got, &err) < 0);
  CHECK (err && strstr (err->msg, "not an image index") != NULL);
  ob_error_free (&err);
  ob_descriptor_clear (&got);
  /* not there: lookup says so without an error */
  CHECK (ob_layout_lookup (l, "nope:1", &got, &err) == 0 && err == NULL);
  ob_layout_close (l);
  free (p);
  rmtree (d);
}

TEST (test_resolve_nested_indexes_bounded)
{
  char *d = tmpdir ();
  char *p = ob_xasprintf ("%s/oci", d);
  struct ob_layout *l = NULL;
  ob_error_t err = NULL;
  struct ob_descriptor m, cur, got = { 0 };
  const char *man = "{\"config\":{},\"layers\":[],\"schemaVersion\":2}";
  CHECK (ob_layout_open (p, true, &l, &err) == 0);
  CHECK (commit_typed (l, d, OB_MT_OCI_MANIFEST, man, -1, "m:1", &m) == 0);
  cur = m;
  /* index -> index -> manifest: followed */
  for (int i = 0; i < 2; i++)
    {
      char *x = index_of (cur.media_type, cur.digest, cur.size);
      CHECK (commit_typed (l, d, OB_MT_OCI_INDEX, x, -1, "nested:1", &cur) == 0);
      free (x);
    }
  CHECK (ob_layout_resolve (l, "nested:1", &got, &err) == 0);
  CHECK_STR (got.digest, m.digest);
  CHECK_STR (got.media_type, OB_MT_OCI_MANIFEST);
  ob_descriptor_clear (&got);
  /* 1000 deep: refused after OB_MAX_INDEX_DEPTH, no deep recursion (the
   * blobs written directly: a transaction syncs each, too slow here) */
  {
    char *tags[] = { (char *) "deep:1", NULL };
    struct ob_txn *t = NULL;
    for (int i = 0; i < 998; i++)
      {
        char *x = index_of (cur.media_type, cur.digest, cur.size);
        char *bp;
        int fd;
        ob_sha256_digest (x, strlen (x), cur.digest);
        bp = ob_xasprintf ("%s/blobs/sha256/%s", p, cur.digest + 7);
        fd = open (bp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        CHECK (fd >= 0 && write (fd, x, strlen (x)) == (ssize_t) strlen (x));
        close (fd);
        cur.media_type = (char *) OB_MT_OCI_INDEX;
        cur.size = strlen (x);
        free (bp);
        free (x);
      }
    CHECK (ob_txn_begin (l, d, &t, &err) == 0);
    CHECK (ob_txn_commit (t, &cur, tags, &err) == 0);
    ob_txn_free (t);
  }
  CHECK (ob_layout_resolve (l, "deep:1", &got, &err) < 0);
  CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "nested more than") != NULL);
  CHECK (got.media_type == NULL);
  ob_error_free (&err);
  /* an index naming itself cannot hash to its own name: its content is refused */
  {
    const char *self = "sha256:abababababababababababababababababababababababababababababababab";
    char *x = index_of (OB_MT_OCI_INDEX, self, 200);
    char *bp = ob_xasprintf ("%s/blobs/sha256/%s", p, self + 7);
    CHECK (ob_write_file_atomic_at (AT_FDCWD, bp, x, strlen (x), 0644, &err) == 0);
    CHECK (commit_typed (l, d, OB_MT_OCI_INDEX, x, -1, "self:1", &cur) == 0);
    /* point the tag at the blob named by the fake digest */
    char *ip = ob_xasprintf ("%s/index.json", p);
    char *y = ob_xasprintf ("{\"manifests\":[{\"annotations\":{\"org.opencontainers.image.ref.name\":\"self:1\"},"
                            "\"digest\":\"%s\",\"mediaType\":\"%s\",\"size\":%zu}],\"schemaVersion\":2}",
                            self, OB_MT_OCI_INDEX, strlen (x));
    CHECK (ob_write_file_atomic_at (AT_FDCWD, ip, y, strlen (y), 0644, &err) == 0);
    CHECK (ob_layout_resolve (l, "self:1", &got, &err) < 0);
    CHECK (err && err->kind == OB_ERR_IMAGE);
    ob_error_free (&err);
    free (x);
    free (y);
    free (ip);
    free (bp);
  }
  ob_layout_close (l);
  free (p);
  rmtree (d);
}

TEST (test_blob_sizes_checked)
{
  char *d = tmpdir ();
  char *p = ob_xasprintf ("%s/oci", d);
  struct ob_layout *l = NULL;
  ob_error_t err = NULL;
  struct ob_descriptor m, got = { 0 };
  char *data = NULL;
  size_t len;
  const char *man = "{\"config\":{},\"layers\":[],\"schemaVersion\":2}";
  CHECK (ob_layout_open (p, true, &l, &err) == 0);
  CHECK (commit_typed (l, d, OB_MT_OCI_MANIFEST, man, -1, "ok:1", &m) == 0);
  CHECK (ob_layout_blob_read_desc (l, &m, &data, &len, &err) == 0);
  CHECK_INT (len, strlen (man));
  free (data);
  data = NULL;
  /* index.json lies about the manifest's size, smaller and larger */
  int64_t wrong[] = { 10, (int64_t) strlen (man) + 1, 1000000000000000LL };
  for (int i = 0; i < 3; i++)
    {
      struct ob_descriptor w = m;
      w.size = wrong[i];
      CHECK (ob_layout_blob_read_desc (l, &w, &data, &len, &err) < 0);
      CHECK (data == NULL);
      CHECK (err && err->kind == OB_ERR_IMAGE
             && strstr (err->msg, i == 2 ? "bytes allowed" : "the descriptor says") != NULL);
      ob_error_free (&err);
      CHECK (commit_typed (l, d, OB_MT_OCI_MANIFEST, man, wrong[i], "bad:1", &w) == 0);
      CHECK (ob_layout_resolve (l, "bad:1", &got, &err) < 0);
      CHECK (got.media_type == NULL);
      CHECK (err && err->kind == OB_ERR_IMAGE);
      ob_error_free (&err);
      /* an index with the wrong size for itself */
      char *x = index_of (OB_MT_OCI_MANIFEST, m.digest, m.size);
      CHECK (commit_typed (l, d, OB_MT_OCI_INDEX, x, wrong[i], "badidx:1", &w) == 0);
      CHECK (ob_layout_resolve (l, "badidx:1", &got, &err) < 0);
      CHECK (err && err->kind == OB_ERR_IMAGE);
      ob_error_free (&err);
      free (x);
    }
  CHECK (ob_layout_resolve (l, "ok:1", &got, &err) == 0);
  ob_descriptor_clear (&got);
  ob_layout_close (l);
  free (p);
  rmtree (d);
}

/* ob_txn_commit_many gives the index that committing each in turn gives:
 * a tag goes to the last that names it, an untagged entry goes when a
 * later commit is of its manifest, entries already there are kept or
 * dropped the same way. */
static void
commit_each (struct ob_layout *l, const char *d, size_t n, const struct ob_descriptor *m, char **const *tags, bool many)
{
  ob_error_t err = NULL;
  struct ob_txn *t = NULL;
  if (many)
    {
      CHECK (ob_txn_begin (l, d, &t, &err) == 0);
      CHECK (ob_txn_commit_many (t, n, m, (char *const *const *) tags, &err) == 0);
      ob_txn_free (t);
      return;
    }
  for (size_t i = 0; i < n; i++)
    {
      CHECK (ob_txn_begin (l, d, &t, &err) == 0);
      CHECK (ob_txn_commit (t, &m[i], tags[i], &err) == 0);
      ob_txn_free (t);
    }
}

TEST (test_txn_commit_many_is_commits_in_turn)
{
  char *d = tmpdir ();
  char *pa = ob_xasprintf ("%s/a", d), *pb = ob_xasprintf ("%s/b", d);
  char *ia = ob_xasprintf ("%s/index.json", pa), *ib = ob_xasprintf ("%s/index.json", pb);
  struct ob_layout *a = NULL, *b = NULL;
  ob_error_t err = NULL;
  struct ob_descriptor m[6];
  char *t_xy[] = { (char *) "x:1", (char *) "y:1", NULL }, *t_x[] = { (char *) "x:1", NULL };
  char *t_z[] = { (char *) "z:1", NULL }, *t_y[] = { (char *) "y:1", NULL };
  char **before[] = { t_y, NULL };
  char **batch[] = { t_xy, NULL, t_x, NULL, t_z, NULL };
  cleanup_free char *da = NULL, *db = NULL;
  size_t la = 0, lb = 0;
  for (int i = 0; i < 6; i++)
    {
      m[i].media_type = (char *) "application/vnd.oci.image.manifest.v1+json";
      snprintf (m[i].digest, sizeof m[i].digest, "sha256:%064d", i);
      m[i].size = 100 + i;
    }
  /* batch: m0 x:1 y:1; m1 untagged; m2 x:1; m1 untagged again; m1 z:1; m3 untagged */
  struct ob_descriptor bm[6] = { m[0], m[1], m[2], m[1], m[1], m[3] };
  /* already there: m5 y:1, m3 untagged */
  struct ob_descriptor pre[2] = { m[5], m[3] };
  CHECK (ob_layout_open (pa, true, &a, &err) == 0);
  CHECK (ob_layout_open (pb, true, &b, &err) == 0);
  commit_each (a, d, 2, pre, before, false);
  commit_each (b, d, 2, pre, before, false);
  commit_each (a, d, 6, bm, batch, false);
  commit_each (b, d, 6, bm, batch, true);
  CHECK (ob_read_file_at (AT_FDCWD, ia, &da, &la, &err) == 0);
  CHECK (ob_read_file_at (AT_FDCWD, ib, &db, &lb, &err) == 0);
  CHECK (la == lb && memcmp (da, db, la) == 0);
  /* what that is, in order: y:1 on m0, x:1 on m2, z:1 on m1, and m3
   * untagged (there before, committed again last) */
  struct ob_layout_entry *e = NULL;
  size_t n = 0;
  CHECK (ob_layout_list (b, &e, &n, &err) == 0);
  CHECK_INT (n, 4);
  if (n == 4)
    {
      CHECK (e[0].tag && strcmp (e[0].tag, "y:1") == 0 && strcmp (e[0].desc.digest, m[0].digest) == 0);
      CHECK (e[1].tag && strcmp (e[1].tag, "x:1") == 0 && strcmp (e[1].desc.digest, m[2].digest) == 0);
      CHECK (e[2].tag && strcmp (e[2].tag, "z:1") == 0 && strcmp (e[2].desc.digest, m[1].digest) == 0);
      CHECK (e[3].tag == NULL && strcmp (e[3].desc.digest, m[3].digest) == 0);
    }
  ob_layout_entries_free (e, n);
  ob_layout_close (a);
  ob_layout_close (b);
  free (pa);
  free (pb);
  free (ia);
  free (ib);
  rmtree (d);
}

int
main (void)
{
  RUN (test_layout_create_and_reopen);
  RUN (test_layout_open_missing_is_image_error);
  RUN (test_txn_commit_many_is_commits_in_turn);
  RUN (test_txn_commit_tags_and_resolve);
  RUN (test_txn_blob_synced_at_publish);
  RUN (test_commit_unchanged_writes_nothing);
  RUN (test_txn_blob_take);
  RUN (test_layer_dir_checked);
  RUN (test_txn_abort_leaves_layout_unchanged);
  RUN (test_blob_read_verifies_digest);
  RUN (test_copy_between_layouts);
  RUN (test_resolve_index_that_is_a_manifest);
  RUN (test_resolve_nested_indexes_bounded);
  RUN (test_blob_sizes_checked);
  TAP_DONE ();
}
