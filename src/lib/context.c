/* context (part 1): COPY/ADD source resolution that never leaves the build
 * context, loading .dockerignore / .containerignore, and the confined
 * opening of paths that the copy engine (context_copy.c) shares through
 * context_priv.h.
 *
 * Every path is resolved relative to a directory fd: openat2() with
 * RESOLVE_BENEATH on the context side (a symlink pointing outside is an
 * error) and RESOLVE_IN_ROOT on the destination side (a symlink is followed
 * as if the tree were chrooted), then *at() calls on the final component. */
#include "config.h"
#include <obuild/context.h>
#include <obuild/util.h>

#include "context_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* small path helpers (Go's path semantics)                             */
/* ------------------------------------------------------------------ */

char *
ob_context_path_join (const char *a, const char *b)
{
  if (a == NULL || a[0] == '\0' || strcmp (a, ".") == 0)
    return ob_xstrdup (b);
  if (ob_str_has_suffix (a, "/"))
    return ob_xasprintf ("%s%s", a, b);
  return ob_xasprintf ("%s/%s", a, b);
}

/* Does a path component contain an unescaped glob metacharacter? */
static bool
has_wildcards (const char *s)
{
  for (; *s; s++)
    {
      if (*s == '\\')
        {
          if (s[1] == '\0')
            break;
          s++;
        }
      else if (*s == '*' || *s == '?' || *s == '[')
        return true;
    }
  return false;
}

static bool is_visible (int ctxfd, const struct ob_ignore *ig, const char *rel);

/* res (a real path of the context, "" for its root) joined with comp. */
static char *
walk_join (const struct ob_buf *res, const char *comp)
{
  return res->len ? ob_xasprintf ("%s/%s", res->data, comp) : ob_xstrdup (comp);
}

/* Userspace openat2() RESOLVE_IN_ROOT / RESOLVE_BENEATH: walks one
 * component at a time with O_NOFOLLOW and expands symlinks itself: ".." and
 * absolute targets stop at the root (in_root) or fail with EXDEV (beneath),
 * as the kernel does.  It stands in for openat2 on kernels or seccomp
 * profiles (some container runtimes) answering ENOSYS, and under valgrind.
 * With ig it also sees the context as BuildKit does, with the ignored paths
 * left out: every directory entered, every symlink followed and the final
 * entry are checked by their real path (after resolution), and a hidden
 * one is ENOENT, so that no symlink reaches an ignored file.  *real (may be
 * NULL) receives that real path, "" for the root. */
int
ob_context_walk_path (int rootfd, const char *path, int flags, bool in_root,
                      const struct ob_ignore *ig, char **real)
{
  int stack[256];
  int depth = 0, links = 0, ret = -1, e = 0;
  cleanup_free char *rest = ob_xstrdup (path);
  struct ob_buf res = { 0 }; /* the real path of stack[depth] */
  char *p = rest;
  char *got = NULL; /* the real path of the final entry */

  ob_buf_adds (&res, "");
  stack[0] = openat (rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (stack[0] < 0)
    {
      ob_buf_free (&res);
      return -1;
    }
  for (;;)
    {
      char *comp, *end;
      bool last;
      struct stat st;
      cleanup_free char *at = NULL;

      if (*p == '/')
        {
          if (!in_root)
            {
              e = EXDEV;
              break;
            }
          while (depth > 0)
            close (stack[depth--]);
          res.len = 0;
          res.data[0] = '\0';
        }
      while (*p == '/')
        p++;
      if (*p == '\0')
        {
          ret = openat (stack[depth], ".", (flags & ~O_NOFOLLOW) | O_CLOEXEC);
          e = errno;
          break;
        }
      comp = p;
      end = strchr (p, '/');
      p = end ? end : p + strlen (p);
      if (end)
        *p++ = '\0';
      last = *p == '\0' || strspn (p, "/") == strlen (p);
      if (strcmp (comp, ".") == 0)
        continue;
      if (strcmp (comp, "..") == 0)
        {
          if (depth > 0)
            {
              char *slash = memrchr (res.data, '/', res.len);
              close (stack[depth--]);
              res.len = slash ? (size_t) (slash - res.data) : 0;
              res.data[res.len] = '\0';
            }
          else if (!in_root)
            {
              e = EXDEV;
              break;
            }
          continue;
        }
      if (fstatat (stack[depth], comp, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          e = errno;
          break;
        }
      at = walk_join (&res, comp);
      if (ig && !is_visible (rootfd, ig, at))
        {
          e = ENOENT;
          break;
        }
      if (S_ISLNK (st.st_mode) && (!last || !(flags & O_NOFOLLOW)))
        {
          char target[PATH_MAX + 1];
          ssize_t n = readlinkat (stack[depth], comp, target, PATH_MAX);
          char *np;
          if (n < 0 || ++links > 40)
            {
              e = n < 0 ? errno : ELOOP;
              break;
            }
          target[n] = '\0';
          np = ob_xasprintf ("%s/%s", target, p);
          free (rest);
          rest = p = np;
          continue;
        }
      if (last)
        {
          ret = openat (stack[depth], comp, flags | O_NOFOLLOW | O_CLOEXEC);
          e = errno;
          if (ret >= 0)
            got = steal_pointer (&at);
          break;
        }
      if (depth + 1 >= (int) (sizeof stack / sizeof stack[0]))
        {
          e = ENAMETOOLONG;
          break;
        }
      stack[depth + 1] = openat (stack[depth], comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (stack[depth + 1] < 0)
        {
          e = errno;
          break;
        }
      depth++;
      res.len = 0;
      ob_buf_adds (&res, at);
    }
  if (ret >= 0 && real)
    *real = got ? got : ob_xstrdup (res.data);
  else
    free (got);
  while (depth >= 0)
    close (stack[depth--]);
  ob_buf_free (&res);
  errno = e;
  return ret;
}

static int
resolve_fallback (int rootfd, const char *path, int flags, bool in_root)
{
  return ob_context_walk_path (rootfd, path, flags, in_root, NULL, NULL);
}

/* openat() confined to dirfd: RESOLVE_BENEATH (escaping is EXDEV) or
 * RESOLVE_IN_ROOT (dirfd is "/").  O_CLOEXEC always. */
int
ob_context_openat2 (int dirfd, const char *path, int flags, uint64_t resolve)
{
  static int no_openat2;
  struct open_how how = { 0 };

  how.flags = (uint64_t) flags | O_CLOEXEC;
  how.resolve = resolve | RESOLVE_NO_MAGICLINKS;
  while (!no_openat2)
    {
      long r = syscall (SYS_openat2, dirfd, path, &how, sizeof how);
      if (r >= 0 || (errno != EAGAIN && errno != ENOSYS))
        return (int) r;
      if (errno == ENOSYS)
        no_openat2 = 1;
    }
  return resolve_fallback (dirfd, path, flags, (resolve & RESOLVE_IN_ROOT) != 0);
}

int
ob_ignore_load (int ctxfd, struct ob_ignore **out, ob_error_t *err)
{
  static const char *const names[] = { ".containerignore", ".dockerignore" };

  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    {
      /* a symlink is followed inside the context, as BuildKit's transfer
       * of the context does (its root is "/", ".." stops there): one that
       * leads outside names a file of the context, absent as a rule */
      cleanup_close int fd = ob_context_openat2 (ctxfd, names[i], O_RDONLY, RESOLVE_IN_ROOT);
      cleanup_free char *text = NULL;
      const char *nul;
      size_t len = 0;
      if (fd < 0)
        {
          if (errno == ENOENT || errno == ENOTDIR)
            continue;
          return ob_error_make (err, OB_ERR_CONTEXT, errno, "open `%s`", names[i]);
        }
      if (ob_read_fd (fd, &text, &len, err) < 0)
        {
          ob_error_set_kind (err, OB_ERR_CONTEXT);
          return ob_error_wrap (err, "`%s`", names[i]);
        }
      /* a NUL would end the text early: the patterns after it were
       * silently ignored (and what they exclude sent) */
      if ((nul = memchr (text, '\0', len)) != NULL)
        {
          int line = 1;
          for (const char *c = text; c < nul; c++)
            line += *c == '\n';
          return ob_error_make (err, OB_ERR_CONTEXT, 0, "%s:%d: NUL byte", names[i], line);
        }
      return ob_ignore_parse (names[i], text, out, err);
    }
  return ob_ignore_parse ("(none)", "", out, err);
}

/* ------------------------------------------------------------------ */
/* source resolution                                                    */
/* ------------------------------------------------------------------ */

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Sorted names of a directory, without "." and "..".  Takes ownership of fd. */
int
ob_context_read_dir_names (int fd, char ***out, ob_error_t *err)
{
  cleanup_dir DIR *d = fdopendir (fd);
  cleanup_strv char **names = ob_xmalloc0 (sizeof (char *));
  size_t n = 0;
  struct dirent *de;

  if (d == NULL)
    {
      int e = errno;
      close (fd);
      return ob_error_make (err, OB_ERR_CONTEXT, e, "opendir");
    }
  errno = 0;
  while ((de = readdir (d)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      ob_strv_push (&names, &n, ob_xstrdup (de->d_name));
      errno = 0;
    }
  if (errno != 0)
    return ob_error_make (err, OB_ERR_CONTEXT, errno, "readdir");
  qsort (names, n, sizeof (char *), cmp_str);
  *out = steal_pointer (&names);
  return 0;
}

/* Is some entry below the directory `rel` (not itself) kept by ig?  Only
 * asked when rel is excluded and ig has '!' exceptions: BuildKit then still
 * sends the directory with the re-included children. */
static bool
has_visible_child (int ctxfd, const struct ob_ignore *ig, const char *rel, int depth)
{
  cleanup_strv char **names = NULL;
  int fd;

  if (depth > 64)
    return false;
  fd = ob_context_openat2 (ctxfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, RESOLVE_BENEATH);
  if (fd < 0 || ob_context_read_dir_names (fd, &names, NULL) < 0)
    return false;
  for (size_t i = 0; names[i]; i++)
    {
      cleanup_free char *child = ob_context_path_join (rel, names[i]);
      struct stat st;
      if (!ob_ignore_match (ig, child))
        return true;
      if (fstatat (ctxfd, child, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode)
          && has_visible_child (ctxfd, ig, child, depth + 1))
        return true;
    }
  return false;
}

static bool
is_visible (int ctxfd, const struct ob_ignore *ig, const char *rel)
{
  struct stat st;
  if (!ob_ignore_match (ig, rel))
    return true;
  if (!ob_ignore_has_exceptions (ig))
    return false;
  return fstatat (ctxfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR (st.st_mode)
         && has_visible_child (ctxfd, ig, rel, 0);
}

static int
escape_error (const char *src, int e, ob_error_t *err)
{
  if (e == EXDEV)
    return ob_error_make (err, OB_ERR_CONTEXT, 0,
                          "COPY source %s: symlink escapes the build context", src);
  return ob_error_make (err, OB_ERR_CONTEXT, e, "COPY source %s", src);
}

int
ob_context_not_found (const char *src, ob_error_t *err)
{
  return ob_error_make (err, OB_ERR_CONTEXT, 0, "COPY source not found in build context: %s",
                        src);
}

/* resolve: RESOLVE_BENEATH for the build context, RESOLVE_IN_ROOT for the
 * root file system of another stage (COPY --from). */
static int
resolve_impl (int ctxfd, const struct ob_ignore *ig, const char *src, bool allow_empty_glob,
              uint64_t how, char ***out, ob_error_t *err)
{
  /* as BuildKit (path.Join("/", src), then a root-bounded walk): a
   * source is a path under the root, ".." above it stays at it, so
   * "../x" is "x" and nothing names what is outside */
  cleanup_free char *rooted = ob_xasprintf ("/%s", src);
  cleanup_free char *clean = ob_path_clean (rooted);
  cleanup_strv char **cands = NULL;
  cleanup_strv char **result = ob_xmalloc0 (sizeof (char *));
  size_t n_result = 0;
  const char *rel = clean;
  bool globbed = false;
  char *save = NULL, *comp;

  while (*rel == '/')
    rel++;
  if (*rel == '\0')
    rel = ".";
  if (strcmp (rel, ".") == 0)
    {
      ob_strv_add (&result, ".");
      *out = steal_pointer (&result);
      return 0;
    }

  /* Expand the wildcards one component at a time against the entries. */
  ob_strv_add (&cands, "");
  for (comp = strtok_r ((char *) rel, "/", &save); comp; comp = strtok_r (NULL, "/", &save))
    {
      cleanup_strv char **next = ob_xmalloc0 (sizeof (char *));
      size_t n_next = 0;
      bool wild = has_wildcards (comp);

      if (wild && ob_path_match (comp, "") < 0)
        return ob_error_make (err, OB_ERR_CONTEXT, 0, "COPY source %s: syntax error in pattern",
                              src);
      globbed |= wild;
      for (size_t i = 0; cands[i]; i++)
        {
          cleanup_strv char **names = NULL;
          int fd;

          if (!wild)
            {
              ob_strv_push (&next, &n_next, ob_context_path_join (cands[i], comp));
              continue;
            }
          fd = ob_context_openat2 (ctxfd, cands[i][0] ? cands[i] : ".", O_RDONLY | O_DIRECTORY,
                                   how);
          if (fd < 0)
            {
              if (errno == ENOENT || errno == ENOTDIR)
                continue;
              return escape_error (src, errno, err);
            }
          if (ob_context_read_dir_names (fd, &names, err) < 0)
            return ob_error_wrap (err, "COPY source %s", src);
          for (size_t j = 0; names[j]; j++)
            {
              cleanup_free char *p = NULL;
              if (ob_path_match (comp, names[j]) != 1)
                continue;
              p = ob_context_path_join (cands[i], names[j]);
              if (ig && !is_visible (ctxfd, ig, p))
                continue;
              ob_strv_push (&next, &n_next, steal_pointer (&p));
            }
        }
      ob_strv_free (cands);
      cands = steal_pointer (&next);
    }

  /* Each candidate must exist, without leaving the context. */
  for (size_t i = 0; cands[i]; i++)
    {
      /* with patterns, the real path counts too (a symlink must not reach
       * an ignored file): see ob_context_walk_path */
      cleanup_close int fd = ig ? ob_context_walk_path (ctxfd, cands[i], O_PATH,
                                                        (how & RESOLVE_IN_ROOT) != 0, ig, NULL)
                                : ob_context_openat2 (ctxfd, cands[i], O_PATH, how);
      if (fd < 0)
        {
          if (errno == ENOENT || errno == ENOTDIR)
            {
              if (globbed)
                continue;
              return ob_context_not_found (src, err);
            }
          return escape_error (src, errno, err);
        }
      if (ig && !is_visible (ctxfd, ig, cands[i]))
        {
          if (globbed)
            continue;
          return ob_context_not_found (src, err);
        }
      ob_strv_push (&result, &n_result, ob_xstrdup (cands[i]));
    }
  if (result[0] == NULL && !(globbed && allow_empty_glob))
    return ob_context_not_found (src, err);

  /* sort + dedup */
  {
    size_t n = ob_strv_len (result), w = 0;
    qsort (result, n, sizeof (char *), cmp_str);
    for (size_t i = 0; i < n; i++)
      {
        if (w > 0 && strcmp (result[w - 1], result[i]) == 0)
          free (result[i]);
        else
          result[w++] = result[i];
      }
    result[w] = NULL;
  }
  *out = steal_pointer (&result);
  return 0;
}

int
ob_context_resolve (int ctxfd, const struct ob_ignore *ig, const char *src, bool allow_empty_glob,
                    char ***out, ob_error_t *err)
{
  return resolve_impl (ctxfd, ig, src, allow_empty_glob, RESOLVE_BENEATH, out, err);
}

/* The real path of rel below dirfd (symlinks resolved, "." for the top):
 * in_root follows absolute links as if dirfd were "/", ig hides ignored
 * paths. */
static int
real_path (int dirfd, const struct ob_ignore *ig, bool in_root, const char *rel, char **out, ob_error_t *err)
{
  cleanup_close int fd = -1;
  char *real = NULL;

  fd = ob_context_walk_path (dirfd, rel, O_PATH, in_root, ig, &real);
  if (fd < 0)
    {
      if (errno == ENOENT || errno == ENOTDIR)
        return ob_context_not_found (rel, err);
      return escape_error (rel, errno, err);
    }
  if (real[0] == '\0')
    {
      free (real);
      real = ob_xstrdup (".");
    }
  *out = real;
  return 0;
}

int
ob_context_real_path (int ctxfd, const struct ob_ignore *ig, const char *rel, char **out,
                      ob_error_t *err)
{
  return real_path (ctxfd, ig, false, rel, out, err);
}

int
ob_context_real_path_in_root (int rootfd, const char *rel, char **out, ob_error_t *err)
{
  return real_path (rootfd, NULL, true, rel, out, err);
}

int
ob_context_resolve_in_root (int rootfd, const struct ob_ignore *ig, const char *src,
                            bool allow_empty_glob, char ***out, ob_error_t *err)
{
  return resolve_impl (rootfd, ig, src, allow_empty_glob, RESOLVE_IN_ROOT, out, err);
}
