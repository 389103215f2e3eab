/* link_owner: symlink owners recorded on the parent directory.  See
 * include/obuild/link_owner.h. */
#include "config.h"
#include <obuild/link_owner.h>
#include <obuild/util.h>

#include <errno.h>
#include <linux/limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

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
