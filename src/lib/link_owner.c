/* link_owner: symlink owners recorded on the parent directory.  See
 * include/obuild/link_owner.h. */
#include "config.h"
#include <obuild/link_owner.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#define FP_LEN 16 /* hex digits of the target's sha256 */

bool
ob_link_owner_is_xattr (const char *xattr)
{
  return ob_str_has_prefix (xattr, OB_LINK_OWNER_PREFIX);
}

int
ob_link_owner_name (const char *name, char *buf, size_t size)
{
  size_t need = sizeof OB_LINK_OWNER_PREFIX - 1 + strlen (name);
  if (name[0] == '\0' || strcmp (name, ".") == 0 || strcmp (name, "..") == 0
      || strchr (name, '/') != NULL || need > XATTR_NAME_MAX || need >= size)
    return -1;
  snprintf (buf, size, "%s%s", OB_LINK_OWNER_PREFIX, name);
  return 0;
}

static void
fingerprint (const char *target, char out[FP_LEN + 1])
{
  char dg[OB_DIGEST_LEN];
  ob_sha256_digest (target, strlen (target), dg);
  memcpy (out, dg + 7, FP_LEN); /* after "sha256:" */
  out[FP_LEN] = '\0';
}

void
ob_link_owner_format (uint32_t uid, uint32_t gid, const char *target,
                      char out[OB_LINK_OWNER_VALUE_MAX])
{
  char fp[FP_LEN + 1];
  fingerprint (target, fp);
  snprintf (out, OB_LINK_OWNER_VALUE_MAX, "%lu:%lu:%s", (unsigned long) uid,
            (unsigned long) gid, fp);
}

/* A decimal id below 2^32, no sign, no leading zero but "0"; *p moves past
 * it. */
static bool
parse_id (const char **p, const char *end, uint32_t *out)
{
  uint64_t v = 0;
  const char *s = *p;
  if (s >= end || *s < '0' || *s > '9' || (*s == '0' && s + 1 < end && s[1] >= '0' && s[1] <= '9'))
    return false;
  for (; s < end && *s >= '0' && *s <= '9'; s++)
    {
      v = v * 10 + (uint64_t) (*s - '0');
      if (v > UINT32_MAX)
        return false;
    }
  *out = (uint32_t) v;
  *p = s;
  return true;
}

bool
ob_link_owner_parse (const char *value, size_t len, const char *target, uint32_t *uid,
                     uint32_t *gid)
{
  const char *p = value, *end = value + len;
  char fp[FP_LEN + 1];
  uint32_t u, g;

  if (!parse_id (&p, end, &u) || p >= end || *p++ != ':' || !parse_id (&p, end, &g) || p >= end
      || *p++ != ':' || (size_t) (end - p) != FP_LEN)
    return false;
  fingerprint (target, fp);
  if (memcmp (p, fp, FP_LEN) != 0)
    return false;
  *uid = u;
  *gid = g;
  return true;
}

bool
ob_link_owner_get (int dirfd, const char *name, const char *target, uint32_t *uid, uint32_t *gid)
{
  char xn[XATTR_NAME_MAX + 1], p[64], v[OB_LINK_OWNER_VALUE_MAX];
  uint32_t u, g;
  ssize_t n;

  if (ob_link_owner_name (name, xn, sizeof xn) < 0)
    return false;
  snprintf (p, sizeof p, "/proc/self/fd/%d", dirfd); /* no fgetxattr on O_PATH */
  n = getxattr (p, xn, v, sizeof v);
  if (n <= 0 || !ob_link_owner_parse (v, (size_t) n, target, &u, &g) || (u == 0 && g == 0))
    return false;
  *uid = u;
  *gid = g;
  return true;
}

int
ob_link_owner_set (int dirfd, const char *name, const char *target, uint32_t uid, uint32_t gid)
{
  char xn[XATTR_NAME_MAX + 1], p[64], v[OB_LINK_OWNER_VALUE_MAX];

  if (ob_link_owner_name (name, xn, sizeof xn) < 0)
    return 0;
  snprintf (p, sizeof p, "/proc/self/fd/%d", dirfd);
  if (uid == 0 && gid == 0)
    {
      /* root: what a link without a record stands for */
      if (removexattr (p, xn) < 0 && errno != ENODATA && errno != ENOTSUP)
        return -errno;
      return 0;
    }
  ob_link_owner_format (uid, gid, target, v);
  if (setxattr (p, xn, v, strlen (v), 0) < 0)
    {
      /* ENOSPC, E2BIG: the directory's xattr space is full (ext4: one
       * block); the link stays root's, as a file system without user
       * xattrs leaves it */
      if (errno == ENOSPC || errno == E2BIG)
        {
          (void) removexattr (p, xn); /* not an older owner either */
          return 0;
        }
      return errno == ENOTSUP ? 0 : -errno;
    }
  return 0;
}

/* The directory holding dfd/path (opened without following a symlink, nor
 * leaving dfd) and the link's target; the name is path's last component. */
static int
open_link_parent (int dfd, const char *path, const char **name, char target[PATH_MAX])
{
  struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                          .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS };
  const char *slash = strrchr (path, '/');
  cleanup_free char *dir = slash ? ob_xstrndup (path, (size_t) (slash - path)) : ob_xstrdup (".");
  ssize_t n = readlinkat (dfd, path, target, PATH_MAX);
  long fd;
  if (n < 0 || n >= PATH_MAX)
    {
      if (n >= 0)
        errno = ENAMETOOLONG;
      return -1;
    }
  target[n] = '\0';
  *name = slash ? slash + 1 : path;
  do
    fd = syscall (SYS_openat2, dfd, *dir ? dir : ".", &how, sizeof how);
  while (fd < 0 && (errno == EAGAIN || errno == EINTR));
  return (int) fd;
}

bool
ob_link_owner_get_at (int dfd, const char *path, uint32_t *uid, uint32_t *gid)
{
  char target[PATH_MAX];
  const char *name;
  cleanup_close int pfd = open_link_parent (dfd, path, &name, target);
  return pfd >= 0 && ob_link_owner_get (pfd, name, target, uid, gid);
}

int
ob_link_owner_set_at (int dfd, const char *path, uint32_t uid, uint32_t gid)
{
  char target[PATH_MAX];
  const char *name;
  cleanup_close int pfd = open_link_parent (dfd, path, &name, target);
  if (pfd < 0)
    return errno == EINVAL || errno == ENOENT ? 0 : -errno; /* not a symlink */
  return ob_link_owner_set (pfd, name, target, uid, gid);
}

void
ob_link_owner_inherit (const char *from, const char *to)
{
  cleanup_free char *list = NULL;
  ssize_t len = listxattr (from, NULL, 0);
  if (len <= 0)
    return;
  list = ob_xmalloc ((size_t) len);
  len = listxattr (from, list, (size_t) len);
  for (char *p = list; len > 0 && p < list + len; p += strlen (p) + 1)
    {
      char v[OB_LINK_OWNER_VALUE_MAX];
      ssize_t n;
      if (!ob_link_owner_is_xattr (p) || strlen (p) > XATTR_NAME_MAX)
        continue;
      n = getxattr (from, p, v, sizeof v);
      if (n > 0)
        (void) setxattr (to, p, v, (size_t) n, XATTR_CREATE);
    }
}
