/* build: what the step executors share about files, beneath them: owner
 * specs (--chown, USER) resolved against the image's passwd and group,
 * owners recorded where the user namespace cannot represent them, and the
 * digest of a COPY/ADD or bind-mount source for a cache key. */
#include "config.h"
#include "build_priv.h"
#include <curl/curl.h>
#include <obuild/layer.h>
#include <obuild/userns.h>
#include <obuild/util.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

int
ob_build_parse_chmod (const char *s, mode_t *out, ob_error_t *err)
{
  char *end;
  long v;
  if (*s == '\0')
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid --chmod value `%s`", s);
  for (const char *p = s; *p; p++)
    if (*p < '0' || *p > '7')
      return ob_error_make (err, OB_ERR_DOCKERFILE, 0,
                            "invalid --chmod value `%s`: expected an octal mode such as 0755", s);
  v = strtol (s, &end, 8);
  if (*end || v < 0 || v > 07777)
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid --chmod value `%s`", s);
  *out = (mode_t) v;
  return 0;
}

static bool
all_digits (const char *s)
{
  if (*s == '\0')
    return false;
  for (; *s; s++)
    if (!isdigit ((unsigned char) *s))
      return false;
  return true;
}

/* A numeric user or group id: -1 when s is not one, -2 when it is out of
 * range.  4294967295 is (uid_t) -1, "no id" for chown(2); larger numbers
 * used to wrap (--chown=4294967296 wrote 0). */
#define OB_MAX_ID 4294967294ULL
static long long
id_value (const char *s)
{
  unsigned long long v;
  if (!all_digits (s))
    return -1;
  errno = 0;
  v = strtoull (s, NULL, 10);
  if (errno || v > OB_MAX_ID)
    return -2;
  return (long long) v;
}

/* Find `name` in a passwd/group text; returns field 3 (id) and, for
 * passwd, field 4 (primary gid), as id_value() gives them. */
static bool
lookup_db (const char *db, const char *name, long long *id, long long *gid)
{
  const char *line = db;
  size_t nl = strlen (name);
  while (line && *line)
    {
      const char *eol = strchr (line, '\n');
      size_t len = eol ? (size_t) (eol - line) : strlen (line);
      if (len > nl && strncmp (line, name, nl) == 0 && line[nl] == ':')
        {
          cleanup_free char *l = ob_xstrndup (line, len);
          char *f[5] = { 0 };
          char *p = l;
          for (int i = 0; i < 5 && p; i++)
            {
              f[i] = p;
              p = strchr (p, ':');
              if (p)
                *p++ = '\0';
            }
          if (f[2] && all_digits (f[2]))
            {
              *id = id_value (f[2]);
              if (gid)
                *gid = f[3] ? id_value (f[3]) : -1;
              return true;
            }
        }
      line = eol ? eol + 1 : NULL;
    }
  return false;
}

int
ob_build_resolve_owner (const char *spec, const char *passwd, const char *group, uid_t *uid,
                        gid_t *gid, ob_error_t *err)
{
  cleanup_free char *u = ob_xstrdup (spec);
  char *g = strchr (u, ':');
  long long id = -1, pgid = -1;
  if (g)
    *g++ = '\0';
  if (*u == '\0')
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid owner `%s`: empty user", spec);
  if (all_digits (u))
    {
      id = id_value (u);
      pgid = id; /* Docker: a UID without GID uses the same number as GID */
    }
  else if (!passwd || !lookup_db (passwd, u, &id, &pgid))
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "unable to find user %s: no matching entries in the image's /etc/passwd", u);
  if (id == -2)
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid owner `%s`: user id out of range (0 to %llu)", spec,
                          OB_MAX_ID);
  if (g && *g)
    {
      if (all_digits (g))
        pgid = id_value (g);
      else if (!group || !lookup_db (group, g, &pgid, NULL))
        return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "unable to find group %s: no matching entries in the image's /etc/group", g);
    }
  if (pgid == -2)
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid owner `%s`: group id out of range (0 to %llu)", spec,
                          OB_MAX_ID);
  if (pgid < 0)
    pgid = id;
  *uid = (uid_t) id;
  *gid = (gid_t) pgid;
  return 0;
}

int
ob_build_record_owner (int dfd, const char *path, uid_t uid, gid_t gid, ob_error_t *err)
{
  char val[64];
  cleanup_close int fd = openat (dfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  snprintf (val, sizeof val, "%u:%u", (unsigned) uid, (unsigned) gid);
  if (fd < 0)
    return errno == ELOOP ? 0 : ob_error_make (err, OB_ERR_STORE, errno, "open `%s`", path);
  if (fsetxattr (fd, OB_OWNER_XATTR, val, strlen (val), 0) < 0 && errno != ENOTSUP)
    return ob_error_make (err, OB_ERR_STORE, errno, "set owner of `%s`", path);
  return 0;
}

static int
cmp_strp (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* One entry's part of ob_build_digest_source.  Its buffers stay out of the
 * recursive function's frame: a source can be 2,000 directories deep. */
static __attribute__ ((noinline)) int
digest_entry (struct build *b, int dfd, const char *rel, const struct stat *pst, struct ob_sha256 *h,
              ob_error_t *err)
{
  struct stat st = *pst;
  char line[128];
  snprintf (line, sizeof line, "%o %lld", (unsigned) st.st_mode, S_ISDIR (st.st_mode) ? 0LL : (long long) st.st_size);
  ob_build_cache_add (h, rel);
  ob_build_cache_add (h, line);
  if (S_ISREG (st.st_mode))
    {
      char dg[72];
      if (ob_cache_file_digest (b->cache, dfd, rel, &st, dg, err) < 0)
        return -1;
      ob_build_cache_add (h, dg);
    }
  else if (S_ISLNK (st.st_mode))
    {
      char target[4096];
      ssize_t n = readlinkat (dfd, rel, target, sizeof target - 1);
      target[n < 0 ? 0 : n] = '\0';
      ob_build_cache_add (h, target);
    }
  if (S_ISREG (st.st_mode) || S_ISDIR (st.st_mode))
    {
      cleanup_free char *p = ob_xasprintf ("/proc/self/fd/%d/%s", dfd, rel);
      char names[4096];
      ssize_t n = llistxattr (p, names, sizeof names);
      for (ssize_t i = 0; n > 0 && i < n; i += strlen (names + i) + 1)
        if (ob_str_has_prefix (names + i, "user.") && strcmp (names + i, OB_OWNER_XATTR) != 0)
          {
            char v[4096];
            ssize_t vn = lgetxattr (p, names + i, v, sizeof v);
            ob_build_cache_add (h, names + i);
            ob_sha256_update (h, v, vn > 0 ? (size_t) vn : 0);
          }
    }
  return 0;
}

/* The content of a source for the cache key: path, type, mode, size,
 * content digest, link target and user xattrs of every entry, in order —
 * never mtimes or owners (COPY sets those). */
int
ob_build_digest_source (struct build *b, int dfd, const struct ob_ignore *ig, const char *rel, bool follow,
               struct ob_sha256 *h, ob_error_t *err)
{
  struct stat st;
  /* what a layer cannot hold (and the bound on this walk's depth) */
  if (strlen (rel) > OB_LAYER_PATH_MAX)
    return ob_layer_path_too_long (rel, OB_ERR_CONTEXT, err);
  if (fstatat (dfd, rel, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) < 0)
    return ob_error_make (err, OB_ERR_CONTEXT, errno, "stat `%s`", rel);
  if (digest_entry (b, dfd, rel, &st, h, err) < 0)
    return -1;
  if (S_ISDIR (st.st_mode))
    {
      cleanup_strv char **kids = NULL;
      size_t n = 0;
      int fd = openat (dfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      cleanup_dir DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
      struct dirent *de;
      if (d == NULL)
        {
          if (fd >= 0)
            close (fd);
          return ob_error_make (err, OB_ERR_CONTEXT, errno, "open `%s`", rel);
        }
      while ((de = readdir (d)))
        if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
          ob_strv_push (&kids, &n, strcmp (rel, ".") == 0 ? ob_xstrdup (de->d_name) : ob_xasprintf ("%s/%s", rel, de->d_name));
      if (n > 1)
        qsort (kids, n, sizeof *kids, cmp_strp);
      for (size_t i = 0; kids && kids[i]; i++)
        {
          if (ig && ob_ignore_match (ig, kids[i]))
            continue;
          if (ob_build_digest_source (b, dfd, ig, kids[i], false, h, err) < 0)
            return -1;
        }
    }
  return 0;
}

