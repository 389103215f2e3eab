#include "config.h"
#include "tap.h"
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The library's fsyncs, counted. */
static int n_fsync;

int
fsync (int fd)
{
  n_fsync++;
  return (int) syscall (SYS_fsync, fd);
}

TEST (test_sha256_known_vector)
{
  char d[OB_DIGEST_LEN];
  ob_sha256_digest ("abc", 3, d);
  CHECK_STR (d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST (test_sha256_streaming_equals_oneshot)
{
  char a[OB_DIGEST_LEN], b[OB_DIGEST_LEN];
  struct ob_sha256 *h = ob_sha256_new ();
  ob_sha256_update (h, "hello ", 6);
  ob_sha256_update (h, "world", 5);
  ob_sha256_final (h, a);
  ob_sha256_digest ("hello world", 11, b);
  CHECK_STR (a, b);
}

TEST (test_digest_valid)
{
  CHECK (ob_digest_valid ("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  CHECK (!ob_digest_valid ("sha256:BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  CHECK (!ob_digest_valid ("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"));
  CHECK (!ob_digest_valid ("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0"));
  CHECK (!ob_digest_valid ("sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  CHECK (!ob_digest_valid ("sha256:../../../../etc/passwd"));
  CHECK (!ob_digest_valid (""));
  CHECK (!ob_digest_valid (NULL));
}

TEST (test_strv)
{
  cleanup_strv char **v = NULL;
  ob_strv_add (&v, "a");
  ob_strv_add (&v, "b");
  CHECK_INT (ob_strv_len (v), 2);
  CHECK_STR (v[1], "b");
  CHECK (v[2] == NULL);
  char **d = ob_strv_dup (v);
  CHECK_STR (d[0], "a");
  ob_strv_free (d);
  {
    /* pushed one by one (O(1) each), then appended at once */
    char **more = NULL;
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
      ob_strv_push (&more, &n, ob_xasprintf ("%d", i));
    CHECK_INT (n, 1000);
    ob_strv_take_all (&v, more);
    CHECK_INT (ob_strv_len (v), 1002);
    CHECK_STR (v[1], "b");
    CHECK_STR (v[2], "0");
    CHECK_STR (v[1001], "999");
    ob_strv_take_all (&v, NULL);
    CHECK_INT (ob_strv_len (v), 1002);
  }
}

TEST (test_buf)
{
  struct ob_buf b = { 0 };
  for (int i = 0; i < 1000; i++)
    ob_buf_addc (&b, 'x');
  ob_buf_adds (&b, "end");
  CHECK_INT (b.len, 1003);
  char *s = ob_buf_steal (&b);
  CHECK_STR (s + 1000, "end");
  free (s);
}

TEST (test_files_atomic_mkdir_rm)
{
  char tmpl[] = "/tmp/ob-util-XXXXXX";
  char *dir = mkdtemp (tmpl);
  ob_error_t err = NULL;
  int dfd = open (dir, O_RDONLY | O_DIRECTORY);
  char *data = NULL;
  size_t len = 0;
  CHECK (ob_mkdir_p_at (dfd, "a/b/c", 0755, &err) == 0);
  CHECK (ob_mkdir_p_at (dfd, "a/b/c", 0755, &err) == 0);
  CHECK (ob_write_file_atomic_at (dfd, "a/b/c/f", "data", 4, 0600, &err) == 0);
  CHECK (ob_read_file_at (dfd, "a/b/c/f", &data, &len, &err) == 0);
  CHECK_INT (len, 4);
  CHECK_STR (data, "data");
  free (data);
  CHECK (ob_read_file_at (dfd, "missing", &data, &len, &err) < 0);
  CHECK (err != NULL && strstr (err->msg, "missing") != NULL);
  ob_error_free (&err);
  chmod (tmpl, 0755);
  mkdirat (dfd, "ro", 0755);
  mkdirat (dfd, "ro/inner", 0755);
  fchmodat (dfd, "ro", 0500, 0);
  CHECK (ob_rm_rf_at (dfd, "a", &err) == 0);
  CHECK (ob_rm_rf_at (dfd, "ro", &err) == 0);
  CHECK (ob_rm_rf_at (dfd, "never-existed", &err) == 0);
  close (dfd);
  CHECK (rmdir (dir) == 0);
}

/* A tree 20,000 levels deep (what a step can leave) is removed with 100
 * descriptors allowed: what lies deeper than rm's bound is moved up, not
 * walked down with a descriptor and a stack frame per level. */
TEST (test_rm_rf_deep)
{
  char tmpl[] = "/tmp/ob-util-XXXXXX";
  char *dir = mkdtemp (tmpl);
  ob_error_t err = NULL;
  int dfd = open (dir, O_RDONLY | O_DIRECTORY);
  int fd = -1;
  struct rlimit old, low;
  bool made = dfd >= 0 && mkdirat (dfd, "top", 0755) == 0;
  fd = made ? openat (dfd, "top", O_RDONLY | O_DIRECTORY) : -1;
  for (int i = 0; fd >= 0 && i < 20000; i++)
    {
      /* a file and a directory without write permission on the way */
      int next = -1;
      if (mkdirat (fd, "d", i == 7000 ? 0500 : 0755) < 0 || (next = openat (fd, "d", O_RDONLY | O_DIRECTORY)) < 0
          || (i % 1000 == 0 && mknodat (fd, "f", S_IFREG | 0644, 0) < 0))
        made = false;
      close (fd);
      fd = next;
    }
  if (fd >= 0)
    close (fd);
  CHECK (made);
  CHECK_INT (getrlimit (RLIMIT_NOFILE, &old), 0);
  low = old;
  low.rlim_cur = 100;
  CHECK_INT (setrlimit (RLIMIT_NOFILE, &low), 0);
  CHECK_INT (ob_rm_rf_at (dfd, "top", &err), 0);
  if (err)
    printf ("# %s\n", err->msg);
  CHECK_INT (setrlimit (RLIMIT_NOFILE, &old), 0);
  CHECK (faccessat (dfd, "top", F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
  close (dfd);
  CHECK (rmdir (dir) == 0);
}

/* The soft limit on open files: raised to the hard one (at most
 * OB_NOFILE_WANT), and given back for a program obuild starts. */
TEST (test_nofile_raise_restore)
{
  struct rlimit old, rl;
  pid_t pid;
  int st = -1;
  CHECK_INT (getrlimit (RLIMIT_NOFILE, &old), 0);
  rl = old;
  rl.rlim_cur = 256;
  CHECK_INT (setrlimit (RLIMIT_NOFILE, &rl), 0);
  ob_nofile_raise ();
  CHECK_INT (getrlimit (RLIMIT_NOFILE, &rl), 0);
  CHECK (rl.rlim_cur == (old.rlim_max < OB_NOFILE_WANT ? old.rlim_max : OB_NOFILE_WANT));
  pid = fork ();
  if (pid == 0)
    {
      ob_nofile_restore ();
      _exit (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == 256 ? 0 : 1);
    }
  CHECK (pid > 0 && waitpid (pid, &st, 0) == pid);
  CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  CHECK_INT (setrlimit (RLIMIT_NOFILE, &old), 0);
}

/* A scratch file: written whole, never synced, never over an existing name
 * nor through a symlink; the atomic write syncs. */
TEST (test_write_file_new)
{
  char tmpl[] = "/tmp/ob-util-XXXXXX";
  char *dir = mkdtemp (tmpl);
  ob_error_t err = NULL;
  int dfd = open (dir, O_RDONLY | O_DIRECTORY);
  char *data = NULL;
  size_t len = 0;
  struct stat st;
  umask (022);
  n_fsync = 0;
  CHECK (ob_write_file_new_at (dfd, "f", "hello\n", 6, 0640, &err) == 0);
  CHECK (ob_read_file_at (dfd, "f", &data, &len, &err) == 0);
  CHECK (len == 6 && data && memcmp (data, "hello\n", 6) == 0);
  free (data);
  CHECK (fstatat (dfd, "f", &st, 0) == 0 && (st.st_mode & 07777) == 0640);
  CHECK_INT (n_fsync, 0);
  /* an existing name is not replaced */
  CHECK (ob_write_file_new_at (dfd, "f", "other", 5, 0644, &err) < 0);
  CHECK (err && strstr (err->msg, "`f`") && strstr (err->msg, "exists"));
  ob_error_free (&err);
  CHECK (ob_read_file_at (dfd, "f", &data, &len, &err) == 0 && len == 6);
  free (data);
  /* nor followed through a symlink (dangling: O_CREAT would make its target) */
  CHECK (symlinkat ("target", dfd, "link") == 0);
  CHECK (ob_write_file_new_at (dfd, "link", "x", 1, 0644, &err) < 0);
  ob_error_free (&err);
  CHECK (fstatat (dfd, "target", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT);
  CHECK (ob_write_file_atomic_at (dfd, "g", "x", 1, 0644, &err) == 0);
  CHECK_INT (n_fsync, 1);
  CHECK (ob_rm_rf_at (AT_FDCWD, dir, &err) == 0);
  close (dfd);
}

TEST (test_error_wrap_and_kind)
{
  ob_error_t err = NULL;
  CHECK (ob_error_make (&err, OB_ERR_STORE, 2, "open `%s`", "x") == -1);
  CHECK_STR (err->msg, "open `x`: No such file or directory");
  ob_error_wrap (&err, "layer %d", 3);
  CHECK_STR (err->msg, "layer 3: open `x`: No such file or directory");
  ob_error_set_kind (&err, OB_ERR_CONTEXT);
  CHECK_INT (err->kind, OB_ERR_CONTEXT);
  ob_error_free (&err);
  CHECK (err == NULL);
}

static int
dir_flags (const char *path)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY), flags = -1;
  if (fd >= 0 && ioctl (fd, FS_IOC_GETFLAGS, &flags) < 0)
    flags = -1;
  if (fd >= 0)
    close (fd);
  return flags;
}

/* Is /tmp a file system with inode flags (ext4 on CI)?  Else skip. */
static bool
tmp_has_flags (void)
{
  char tmpl[] = "/tmp/ob-util-XXXXXX";
  char *dir = mkdtemp (tmpl);
  bool yes = dir != NULL && dir_flags (dir) >= 0;
  if (dir)
    rmdir (dir);
  return yes;
}

TEST (test_dir_spread)
{
  char tmpl[] = "/tmp/ob-util-XXXXXX";
  char *dir = mkdtemp (tmpl);
  cleanup_free char *a = ob_xasprintf ("%s/a", dir);
  cleanup_free char *b = ob_xasprintf ("%s/b", dir);
  cleanup_free char *link = ob_xasprintf ("%s/link", dir);
  cleanup_free char *file = ob_xasprintf ("%s/file", dir);
  int fd, flags;
  CHECK (mkdir (a, 0755) == 0 && mkdir (b, 0755) == 0 && symlink ("b", link) == 0);
  CHECK ((fd = open (file, O_WRONLY | O_CREAT, 0644)) >= 0);
  close (fd);
  /* a flag already there stays */
  fd = open (a, O_RDONLY | O_DIRECTORY);
  flags = dir_flags (a) | FS_NOATIME_FL;
  CHECK (ioctl (fd, FS_IOC_SETFLAGS, &flags) == 0);
  close (fd);
  CHECK (!(dir_flags (a) & FS_TOPDIR_FL));
  ob_dir_spread (a);
  CHECK ((dir_flags (a) & (FS_TOPDIR_FL | FS_NOATIME_FL)) == (FS_TOPDIR_FL | FS_NOATIME_FL));
  ob_dir_spread (a); /* twice is fine */
  CHECK (dir_flags (a) & FS_TOPDIR_FL);
  /* a symlink is not followed, a file and a missing path are left alone */
  ob_dir_spread (link);
  CHECK (!(dir_flags (b) & FS_TOPDIR_FL));
  ob_dir_spread (file);
  ob_dir_spread ("/nonexistent/obuild");
  ob_error_t err = NULL;
  CHECK (ob_rm_rf_at (AT_FDCWD, dir, &err) == 0);
}

/* The string set: every string added is found, nothing else is, a string
 * added twice counts once, and strings of one length that differ in one
 * byte (what a crafted archive's paths would look like) spread. */
TEST (test_strset)
{
  struct ob_strset set = { 0 };
  char name[64];
  bool all = true;
  for (int i = 0; i < 100000; i++)
    {
      snprintf (name, sizeof name, "usr/share/f%08d", i);
      ob_strset_add (&set, name);
      if (i % 3 == 0)
        ob_strset_add (&set, name);
    }
  CHECK_INT (set.n, 100000);
  for (int i = 0; i < 100000; i++)
    {
      snprintf (name, sizeof name, "usr/share/f%08d", i);
      all = all && ob_strset_has (&set, name);
    }
  CHECK (all);
  CHECK (!ob_strset_has (&set, "usr/share/f00100000"));
  CHECK (!ob_strset_has (&set, ""));
  CHECK (ob_hash_keyed ("abc", 3) == ob_hash_keyed ("abc", 3));
  CHECK (ob_hash_keyed ("abc", 3) != ob_hash_keyed ("abd", 3));
  CHECK (ob_hash_keyed ("", 0) != ob_hash_keyed ("\0", 1));
  ob_strset_free (&set);
  CHECK (set.n == 0 && set.cap == 0);
}

int
main (void)
{
  RUN (test_sha256_known_vector);
  RUN (test_sha256_streaming_equals_oneshot);
  RUN (test_digest_valid);
  RUN (test_strv);
  RUN (test_buf);
  RUN (test_files_atomic_mkdir_rm);
  RUN (test_write_file_new);
  RUN (test_rm_rf_deep);
  RUN (test_nofile_raise_restore);
  RUN (test_error_wrap_and_kind);
  RUN (test_strset);
  if (tmp_has_flags ())
    RUN (test_dir_spread);
  else
    printf ("ok %d - test_dir_spread # skip /tmp has no inode flags\n", ++tap_n);
  TAP_DONE ();
}
