#include "config.h"
#include <obuild/snapshot.h>
#include <obuild/util.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

struct changes_builder
{
  struct ob_change *items;
  size_t n;
  size_t cap;
};

static void
add_change (struct changes_builder *b, char *path, enum ob_change_kind kind)
{
  if (b->n == b->cap)
    {
      b->cap = b->cap ? b->cap * 2 : 64;
      b->items = ob_xrealloc (b->items, b->cap * sizeof *b->items);
    }
  b->items[b->n].path = path;
  b->items[b->n].kind = kind;
  b->n++;
}

/* Read an xattr of dirfd/name without following a final symlink and without
 * needing read permission on the file: go through the directory's magic
 * link.  Returns the value length, or -1 (errno set). */
static ssize_t
xattr_get_at (int dirfd, const char *name, const char *attr, char *buf, size_t size)
{
  char path[64 + NAME_MAX];
  if ((size_t) snprintf (path, sizeof path, "/proc/self/fd/%d/%s", dirfd, name) >= sizeof path)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  return lgetxattr (path, attr, buf, size);
}

static bool
has_xattr_value (int dirfd, const char *name, const char *attr, const char *want)
{
  char buf[16];
  ssize_t r = xattr_get_at (dirfd, name, attr, buf, sizeof buf);
  if (r < 0)
    return want == NULL && errno == ERANGE; /* present, with a long value */
  if (want == NULL)
    return true;
  return (size_t) r == strlen (want) && memcmp (buf, want, r) == 0;
}

static bool
is_whiteout (int dirfd, const char *name, const struct stat *st)
{
  if (S_ISCHR (st->st_mode) && st->st_rdev == makedev (0, 0))
    return true;
  /* xattr whiteouts (overlayfs >= 6.7) are empty regular files. */
  if (S_ISREG (st->st_mode) && st->st_size == 0)
    return has_xattr_value (dirfd, name, "user.overlay.whiteout", NULL)
           || has_xattr_value (dirfd, name, "trusted.overlay.whiteout", NULL);
  return false;
}

static bool
is_opaque (int dirfd, const char *name)
{
  /* "x" means "has xattr whiteouts inside", not opaque: only "y" counts. */
  return has_xattr_value (dirfd, name, "user.overlay.opaque", "y")
         || has_xattr_value (dirfd, name, "trusted.overlay.opaque", "y");
}

static int
cmp_names (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Sorted names of the directory dfd (consumes dfd). */
static int
read_dir_sorted (int dfd, const char *path, char ***out, size_t *n_out, ob_error_t *err)
{
  cleanup_dir DIR *d = fdopendir (dfd);
  cleanup_strv char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  if (d == NULL)
    {
      int e = errno;
      close (dfd);
      return ob_error_make (err, OB_ERR_STORE, e, "opendir `%s`", path);
    }
  for (;;)
    {
      errno = 0;
      de = readdir (d);
      if (de == NULL)
        {
          if (errno != 0)
            return ob_error_make (err, OB_ERR_STORE, errno, "readdir `%s`", path);
          break;
        }
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (n + 2 > cap)
        {
          cap = cap ? cap * 2 : 16;
          names = ob_xrealloc (names, cap * sizeof (char *));
        }
      names[n++] = ob_xstrdup (de->d_name);
      names[n] = NULL;
    }
  if (n > 1)
    qsort (names, n, sizeof (char *), cmp_names);
  *out = steal_pointer (&names);
  *n_out = n;
  return 0;
}

/* Append the changes below directory dfd (whose path is `prefix`, "" for the
 * root).  Consumes dfd. */
static int
scan_dir (int dfd, const char *prefix, struct changes_builder *b, ob_error_t *err)
{
  cleanup_close int fd = dfd;
  cleanup_strv char **names = NULL;
  size_t n = 0;
  int listfd = openat (fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (listfd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", *prefix ? prefix : ".");
  if (read_dir_sorted (listfd, *prefix ? prefix : ".", &names, &n, err) < 0)
    return -1;

  for (size_t i = 0; i < n; i++)
    {
      struct stat st;
      char *path = *prefix ? ob_xasprintf ("%s/%s", prefix, names[i]) : ob_xstrdup (names[i]);
      /* the bound on the walk's depth, descriptors and memory, too */
      if (strlen (path) > OB_LAYER_PATH_MAX)
        {
          ob_layer_path_too_long (path, OB_ERR_STEP, err);
          free (path);
          return -1;
        }
      if (fstatat (fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          int e = errno;
          ob_error_make (err, OB_ERR_STORE, e, "stat `%s`", path);
          free (path);
          return -1;
        }
      if (is_whiteout (fd, names[i], &st))
        {
          add_change (b, path, OB_CHANGE_WHITEOUT);
          continue;
        }
      add_change (b, path, OB_CHANGE_ENTRY);
      if (S_ISDIR (st.st_mode))
        {
          int child = openat (fd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (child < 0)
            return ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", path);
          if (is_opaque (fd, names[i]))
            add_change (b, ob_xstrdup (path), OB_CHANGE_OPAQUE);
          if (scan_dir (child, path, b, err) < 0)
            return -1;
        }
    }
  return 0;
}

int
ob_layer_path_too_long (const char *path, enum ob_error_kind kind, ob_error_t *err)
{
  return ob_error_make (err, kind, 0, "path `%.40s...` is %zu bytes long, more than a layer holds (%d)", path,
                        strlen (path), OB_LAYER_PATH_MAX);
}

int
ob_snapshot_scan (int upperfd, struct ob_changes **out, ob_error_t *err)
{
  struct changes_builder b = { 0 };
  struct ob_changes *c;
  int fd = openat (upperfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open upper directory");
  if (scan_dir (fd, "", &b, err) < 0)
    {
      for (size_t i = 0; i < b.n; i++)
        free (b.items[i].path);
      free (b.items);
      return -1;
    }
  c = ob_xmalloc0 (sizeof *c);
  c->items = b.items;
  c->n = b.n;
  *out = c;
  return 0;
}

void
ob_changes_free (struct ob_changes *c)
{
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n; i++)
    free (c->items[i].path);
  free (c->items);
  free (c);
}
