#include "config.h"
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

void
ob_cleanup_freep (void *p)
{
  void **pp = (void **) p;
  free (*pp);
}

void
ob_cleanup_closep (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
    }
}

void
ob_cleanup_dirp (DIR **d)
{
  if (*d)
    closedir (*d);
}

void
ob_cleanup_filep (FILE **f)
{
  if (*f)
    fclose (*f);
}

void
ob_cleanup_strvp (char ***v)
{
  ob_strv_free (*v);
}

bool
ob_strv_env_has (char *const *env, const char *key)
{
  size_t n = strlen (key);
  for (size_t i = 0; env && env[i]; i++)
    if (strncmp (env[i], key, n) == 0 && env[i][n] == '=')
      return true;
  return false;
}

size_t
ob_strv_len (char *const *v)
{
  size_t n = 0;
  while (v && v[n])
    n++;
  return n;
}

void
ob_strv_take (char ***v, char *s)
{
  size_t n = ob_strv_len (*v);
  *v = ob_xrealloc (*v, (n + 2) * sizeof (char *));
  (*v)[n] = s;
  (*v)[n + 1] = NULL;
}

void
ob_strv_add (char ***v, const char *s)
{
  ob_strv_take (v, ob_xstrdup (s));
}

char **
ob_strv_dup (char *const *v)
{
  size_t n = ob_strv_len (v);
  char **r = ob_xmalloc0 ((n + 1) * sizeof (char *));
  for (size_t i = 0; i < n; i++)
    r[i] = ob_xstrdup (v[i]);
  return r;
}

void
ob_strv_free (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

bool
ob_str_has_prefix (const char *s, const char *prefix)
{
  return strncmp (s, prefix, strlen (prefix)) == 0;
}

bool
ob_str_has_suffix (const char *s, const char *suffix)
{
  size_t a = strlen (s), b = strlen (suffix);
  return a >= b && memcmp (s + a - b, suffix, b) == 0;
}

void
ob_buf_add (struct ob_buf *b, const void *data, size_t n)
{
  if (b->len + n + 1 > b->cap)
    {
      size_t cap = b->cap ? b->cap : 64;
      while (cap < b->len + n + 1)
        cap *= 2;
      b->data = ob_xrealloc (b->data, cap);
      b->cap = cap;
    }
  if (n)
    memcpy (b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void
ob_buf_addc (struct ob_buf *b, char c)
{
  ob_buf_add (b, &c, 1);
}

void
ob_buf_adds (struct ob_buf *b, const char *s)
{
  ob_buf_add (b, s, strlen (s));
}

char *
ob_buf_steal (struct ob_buf *b)
{
  char *r;
  if (b->data == NULL)
    ob_buf_add (b, "", 0);
  r = b->data;
  b->data = NULL;
  b->len = b->cap = 0;
  return r;
}

void
ob_buf_free (struct ob_buf *b)
{
  free (b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

int
ob_read_fd (int fd, char **out, size_t *len, ob_error_t *err)
{
  struct ob_buf b = { 0 };
  char tmp[65536];
  for (;;)
    {
      ssize_t r = read (fd, tmp, sizeof tmp);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          ob_buf_free (&b);
          return ob_error_make (err, OB_ERR_STORE, errno, "read");
        }
      if (r == 0)
        break;
      ob_buf_add (&b, tmp, r);
    }
  if (len)
    *len = b.len;
  *out = ob_buf_steal (&b);
  return 0;
}

int
ob_read_file_at (int dirfd, const char *path, char **out, size_t *len, ob_error_t *err)
{
  cleanup_close int fd = openat (dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", path);
  if (ob_read_fd (fd, out, len, err) < 0)
    return ob_error_wrap (err, "`%s`", path);
  return 0;
}

int
ob_write_all (int fd, const void *buf, size_t n, ob_error_t *err)
{
  const char *p = buf;
  while (n > 0)
    {
      ssize_t w = write (fd, p, n);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          return ob_error_make (err, OB_ERR_STORE, errno, "write");
        }
      p += w;
      n -= w;
    }
  return 0;
}

int
ob_write_file_atomic_at (int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                         ob_error_t *err)
{
  cleanup_free char *tmp = ob_xasprintf ("%s.tmp.%d", path, (int) getpid ());
  cleanup_close int fd = openat (dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "create `%s`", tmp);
  if (ob_write_all (fd, data, len, err) < 0 || fsync (fd) < 0)
    {
      if (*err == NULL)
        ob_error_make (err, OB_ERR_STORE, errno, "fsync `%s`", tmp);
      unlinkat (dirfd, tmp, 0);
      return ob_error_wrap (err, "`%s`", path);
    }
  if (renameat (dirfd, tmp, dirfd, path) < 0)
    {
      int e = errno;
      unlinkat (dirfd, tmp, 0);
      return ob_error_make (err, OB_ERR_STORE, e, "rename `%s`", path);
    }
  return 0;
}

int
ob_write_file_new_at (int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                      ob_error_t *err)
{
  cleanup_close int fd = openat (dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "create `%s`", path);
  if (ob_write_all (fd, data, len, err) < 0)
    {
      unlinkat (dirfd, path, 0);
      return ob_error_wrap (err, "`%s`", path);
    }
  return 0;
}

int
ob_write_file_unsynced_at (int dirfd, const char *path, const void *data, size_t len, mode_t mode,
                           ob_error_t *err)
{
  cleanup_free char *tmp = ob_xasprintf ("%s.tmp.%d", path, (int) getpid ());
  unlinkat (dirfd, tmp, 0); /* a dead process's, with our pid */
  if (ob_write_file_new_at (dirfd, tmp, data, len, mode, err) < 0)
    return ob_error_wrap (err, "`%s`", path);
  if (renameat (dirfd, tmp, dirfd, path) < 0)
    {
      int e = errno;
      unlinkat (dirfd, tmp, 0);
      return ob_error_make (err, OB_ERR_STORE, e, "rename `%s`", path);
    }
  return 0;
}

int
ob_mkdir_p_at (int dirfd, const char *path, mode_t mode, ob_error_t *err)
{
  cleanup_free char *p = ob_xstrdup (path);
  size_t n = strlen (p);
  for (size_t i = 1; i <= n; i++)
    {
      if (p[i] == '/' || p[i] == '\0')
        {
          char saved = p[i];
          p[i] = '\0';
          if (mkdirat (dirfd, p, mode) < 0 && errno != EEXIST)
            return ob_error_make (err, OB_ERR_STORE, errno, "mkdir `%s`", p);
          p[i] = saved;
        }
    }
  return 0;
}

/* Directories nested deeper than this below what ob_rm_rf_at removes are
 * first moved up to its top: a step can leave a tree a million levels deep,
 * and a descriptor, a directory buffer and a stack frame per level would
 * run out (a crash, or a scratch directory never removed). */
#define RM_MAX_DEPTH 64

struct rm_state
{
  int topfd;      /* the directory being emptied */
  unsigned moved; /* directories moved up to topfd in this pass */
  unsigned next;  /* the next name tried for one */
};

static int rm_entry (struct rm_state *rs, int dirfd, const char *path, int depth, ob_error_t *err);

/* Move dirfd/name to the top with a name of its own. */
static int
rm_move_up (struct rm_state *rs, int dirfd, const char *name, ob_error_t *err)
{
  for (int tries = 0; tries < 1000; tries++)
    {
      char to[32];
      struct stat st;
      int r;
      snprintf (to, sizeof to, ".obuild-rm-%u", rs->next++);
      r = renameat2 (dirfd, name, rs->topfd, to, RENAME_NOREPLACE);
      if (r < 0 && errno == EINVAL)
        {
          /* a file system without RENAME_NOREPLACE: no one else writes here */
          if (fstatat (rs->topfd, to, &st, AT_SYMLINK_NOFOLLOW) == 0)
            continue;
          r = renameat (dirfd, name, rs->topfd, to);
        }
      if (r == 0)
        {
          rs->moved++;
          return 0;
        }
      if (errno == EACCES && fchmodat (dirfd, name, 0700, 0) == 0)
        continue; /* moving a directory rewrites its `..`: it must be writable */
      if (errno != EEXIST)
        return ob_error_make (err, OB_ERR_STORE, errno, "move `%s` up to remove it", name);
    }
  return ob_error_make (err, OB_ERR_STORE, EEXIST, "move `%s` up to remove it", name);
}

static int
rm_rf_children (struct rm_state *rs, int dfd, int depth, ob_error_t *err)
{
  cleanup_dir DIR *d = fdopendir (dfd);
  struct dirent *de;
  if (d == NULL)
    {
      close (dfd);
      return ob_error_make (err, OB_ERR_STORE, errno, "opendir");
    }
  while ((de = readdir (d)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (depth >= RM_MAX_DEPTH && de->d_type == DT_DIR)
        {
          if (rm_move_up (rs, dirfd (d), de->d_name, err) < 0)
            return -1;
          continue;
        }
      if (rm_entry (rs, dirfd (d), de->d_name, depth + 1, err) < 0)
        return -1;
    }
  return 0;
}

/* Remove dirfd/path; depth: how far below the top dirfd is. */
static int
rm_entry (struct rm_state *rs, int dirfd, const char *path, int depth, ob_error_t *err)
{
  struct stat st;
  if (fstatat (dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : ob_error_make (err, OB_ERR_STORE, errno, "stat `%s`", path);
  if (S_ISDIR (st.st_mode))
    {
      int fd;
      if (depth >= RM_MAX_DEPTH)
        return rm_move_up (rs, dirfd, path, err); /* d_type was unknown */
      fd = openat (dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0 && errno == EACCES)
        {
          /* A directory left without r/x permission: give them back. */
          if (fchmodat (dirfd, path, 0700, 0) == 0)
            fd = openat (dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
      if (fd < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", path);
      if (!(st.st_mode & S_IWUSR) && fchmod (fd, st.st_mode | S_IRWXU) < 0)
        {
          /* removal below reports the real problem */
        }
      if (depth == 0)
        {
          /* the top: emptied again while deeper directories came up */
          rs->topfd = fd;
          do
            {
              int again = dup (fd);
              rs->moved = 0;
              if (again < 0)
                {
                  ob_error_make (err, OB_ERR_STORE, errno, "dup");
                  close (fd);
                  return ob_error_wrap (err, "remove `%s`", path);
                }
              lseek (again, 0, SEEK_SET);
              if (rm_rf_children (rs, again, depth, err) < 0)
                {
                  close (fd);
                  return ob_error_wrap (err, "remove `%s`", path);
                }
            }
          while (rs->moved > 0);
          close (fd);
        }
      else if (rm_rf_children (rs, fd, depth, err) < 0)
        return ob_error_wrap (err, "remove `%s`", path);
      if (unlinkat (dirfd, path, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return ob_error_make (err, OB_ERR_STORE, errno, "rmdir `%s`", path);
      return 0;
    }
  if (unlinkat (dirfd, path, 0) < 0 && errno != ENOENT)
    return ob_error_make (err, OB_ERR_STORE, errno, "unlink `%s`", path);
  return 0;
}

int
ob_rm_rf_at (int dirfd, const char *path, ob_error_t *err)
{
  struct rm_state rs = { .topfd = -1 };
  return rm_entry (&rs, dirfd, path, 0, err);
}

/* The soft limit a process started with, for the programs obuild starts. */
static struct rlimit nofile_orig;
static bool nofile_raised;

void
ob_nofile_raise (void)
{
  struct rlimit rl;
  rlim_t want = OB_NOFILE_WANT;
  if (getrlimit (RLIMIT_NOFILE, &rl) < 0)
    return;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
    want = rl.rlim_max;
  if (rl.rlim_cur >= want)
    return;
  nofile_orig = rl;
  rl.rlim_cur = want;
  if (setrlimit (RLIMIT_NOFILE, &rl) == 0)
    nofile_raised = true;
}

void
ob_nofile_restore (void)
{
  if (nofile_raised)
    (void) setrlimit (RLIMIT_NOFILE, &nofile_orig);
}

int
ob_mkdtemp_in (const char *parent, const char *prefix, char **out, ob_error_t *err)
{
  char *p = ob_xasprintf ("%s/%sXXXXXX", parent, prefix);
  if (mkdtemp (p) == NULL)
    {
      int e = errno;
      ob_error_make (err, OB_ERR_STORE, e, "create temporary directory in `%s`", parent);
      free (p);
      return -1;
    }
  *out = p;
  return 0;
}

/* Why: an ext4 without a journal (common for /tmp and CI disks) skips, for
 * every inode it allocates, each free inode of the group that was freed in
 * the last seconds (recently_deleted()), one cache lookup each.  A store's
 * layer and step directories are made and removed by the thousand files, in
 * the group of their parent, build after build: creating a base's 8,700 files
 * there cost 2 s instead of 0.4 s.  The top-level rule starts each new
 * directory in the group with the fewest directories among those with more
 * free inodes and blocks than average, usually not the one just emptied. */
void
ob_dir_spread (const char *path)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int flags = 0;
  if (fd < 0)
    return;
  /* the ioctl takes an int, whatever its definition says */
  if (ioctl (fd, FS_IOC_GETFLAGS, &flags) == 0 && !(flags & FS_TOPDIR_FL))
    {
      flags |= FS_TOPDIR_FL;
      (void) ioctl (fd, FS_IOC_SETFLAGS, &flags);
    }
  close (fd);
}

struct ob_sha256
{
  EVP_MD_CTX *ctx;
};

struct ob_sha256 *
ob_sha256_new (void)
{
  struct ob_sha256 *h = ob_xmalloc0 (sizeof *h);
  h->ctx = EVP_MD_CTX_new ();
  if (h->ctx == NULL || EVP_DigestInit_ex (h->ctx, EVP_sha256 (), NULL) != 1)
    ob_oom ();
  return h;
}

void
ob_sha256_update (struct ob_sha256 *h, const void *data, size_t n)
{
  EVP_DigestUpdate (h->ctx, data, n);
}

void
ob_sha256_final (struct ob_sha256 *h, char out[OB_DIGEST_LEN])
{
  unsigned char md[32];
  unsigned int mdlen = 0;
  static const char hex[] = "0123456789abcdef";
  EVP_DigestFinal_ex (h->ctx, md, &mdlen);
  memcpy (out, "sha256:", 7);
  for (int i = 0; i < 32; i++)
    {
      out[7 + 2 * i] = hex[md[i] >> 4];
      out[8 + 2 * i] = hex[md[i] & 15];
    }
  out[OB_DIGEST_LEN - 1] = '\0';
  ob_sha256_free (h);
}

void
ob_sha256_free (struct ob_sha256 *h)
{
  if (h == NULL)
    return;
  EVP_MD_CTX_free (h->ctx);
  free (h);
}

void
ob_sha256_digest (const void *data, size_t n, char out[OB_DIGEST_LEN])
{
  struct ob_sha256 *h = ob_sha256_new ();
  ob_sha256_update (h, data, n);
  ob_sha256_final (h, out);
}

bool
ob_digest_valid (const char *s)
{
  if (s == NULL || strncmp (s, "sha256:", 7) != 0)
    return false;
  s += 7;
  for (int i = 0; i < OB_SHA256_HEX_LEN; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return s[OB_SHA256_HEX_LEN] == '\0';
}

void
ob_strv_push (char ***v, size_t *n, char *s)
{
  size_t k = *n + 1;
  if ((k & (k - 1)) == 0)
    *v = ob_xrealloc (*v, 2 * k * sizeof (char *));
  (*v)[(*n)++] = s;
  (*v)[*n] = NULL;
}

void
ob_strv_take_all (char ***v, char **more)
{
  size_t n = ob_strv_len (*v), m = ob_strv_len (more);
  if (m == 0)
    {
      free (more);
      return;
    }
  *v = ob_xrealloc (*v, (n + m + 1) * sizeof (char *));
  memcpy (*v + n, more, (m + 1) * sizeof (char *));
  free (more);
}

int
ob_copy_fd (int in, int out, const char *what, ob_error_t *err)
{
  char buf[65536];
  for (;;)
    {
      ssize_t n = copy_file_range (in, NULL, out, NULL, 1 << 30, 0);
      if (n == 0)
        return 0;
      if (n > 0)
        continue;
      if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return ob_error_make (err, OB_ERR_STORE, errno, "copy %s", what);
      break;
    }
  for (;;)
    {
      ssize_t n = read (in, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "read %s", what);
      if (n == 0)
        return 0;
      if (ob_write_all (out, buf, (size_t) n, err) < 0)
        return -1;
    }
}

/* ---- a set of strings ---- */

static unsigned char hash_key[16];
static pthread_once_t hash_key_once = PTHREAD_ONCE_INIT;

static void
hash_key_init (void)
{
  size_t got = 0;
  while (got < sizeof hash_key)
    {
      ssize_t n = getrandom (hash_key + got, sizeof hash_key - got, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          /* no randomness at all: a key of the time and pid, still not
           * known to whoever wrote the input */
          uint64_t x = (uint64_t) time (NULL) ^ ((uint64_t) getpid () << 32) ^ (uint64_t) (uintptr_t) &got;
          memcpy (hash_key, &x, sizeof x);
          memcpy (hash_key + 8, &x, sizeof x);
          return;
        }
      got += (size_t) n;
    }
}

static uint64_t
le64 (const unsigned char *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

#define ROTL64(x, b) (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                       \
  do                                                                                                                   \
    {                                                                                                                  \
      v0 += v1;                                                                                                        \
      v1 = ROTL64 (v1, 13);                                                                                            \
      v1 ^= v0;                                                                                                        \
      v0 = ROTL64 (v0, 32);                                                                                            \
      v2 += v3;                                                                                                        \
      v3 = ROTL64 (v3, 16);                                                                                            \
      v3 ^= v2;                                                                                                        \
      v0 += v3;                                                                                                        \
      v3 = ROTL64 (v3, 21);                                                                                            \
      v3 ^= v0;                                                                                                        \
      v2 += v1;                                                                                                        \
      v1 = ROTL64 (v1, 17);                                                                                            \
      v1 ^= v2;                                                                                                        \
      v2 = ROTL64 (v2, 32);                                                                                            \
    }                                                                                                                  \
  while (0)

uint64_t
ob_hash_keyed (const void *data, size_t len)
{
  const unsigned char *p = data;
  pthread_once (&hash_key_once, hash_key_init);
  uint64_t k0 = le64 (hash_key), k1 = le64 (hash_key + 8);
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
  uint64_t b = (uint64_t) len << 56;
  size_t i = 0;
  for (; i + 8 <= len; i += 8)
    {
      uint64_t m = le64 (p + i);
      v3 ^= m;
      SIPROUND;
      v0 ^= m;
    }
  for (size_t k = 0; i + k < len; k++)
    b |= (uint64_t) p[i + k] << (8 * k);
  v3 ^= b;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

bool
ob_strset_has (const struct ob_strset *set, const char *s)
{
  if (set->cap == 0)
    return false;
  for (size_t i = (size_t) ob_hash_keyed (s, strlen (s)) & (set->cap - 1);; i = (i + 1) & (set->cap - 1))
    {
      if (set->slots[i] == NULL)
        return false;
      if (strcmp (set->slots[i], s) == 0)
        return true;
    }
}

static void
strset_insert (char **slots, size_t cap, char *s)
{
  size_t i = (size_t) ob_hash_keyed (s, strlen (s)) & (cap - 1);
  while (slots[i])
    i = (i + 1) & (cap - 1);
  slots[i] = s;
}

void
ob_strset_add (struct ob_strset *set, const char *s)
{
  if (ob_strset_has (set, s))
    return;
  if (2 * (set->n + 1) > set->cap)
    {
      size_t cap = set->cap ? set->cap * 2 : 256;
      char **slots = ob_xmalloc0 (cap * sizeof (char *));
      for (size_t i = 0; i < set->cap; i++)
        if (set->slots[i])
          strset_insert (slots, cap, set->slots[i]);
      free (set->slots);
      set->slots = slots;
      set->cap = cap;
    }
  strset_insert (set->slots, set->cap, ob_xstrdup (s));
  set->n++;
}

void
ob_strset_free (struct ob_strset *set)
{
  for (size_t i = 0; i < set->cap; i++)
    free (set->slots[i]);
  free (set->slots);
  memset (set, 0, sizeof *set);
}
