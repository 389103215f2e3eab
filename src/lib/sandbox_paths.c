/* sandbox: paths inside the step's root — resolved without ever leaving it
 * (openat2 RESOLVE_IN_ROOT, or by hand where openat2 is refused), and the
 * mount points a step needs, made before it starts.  Used by sandbox.c on
 * both sides of the clone (the resolver allocates nothing). */
#include "config.h"
#include <obuild/sandbox.h>
#include <obuild/util.h>
#include "sandbox_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Resolve path inside the tree at rootfd by hand, like RESOLVE_IN_ROOT:
 * symlinks are expanded relative to the root, ".." stops at it.  For
 * kernels without openat2 (or a seccomp profile that refuses it, or
 * valgrind).  Allocation-free: used after clone. */
int
ob_sandbox_resolve_in_root (int rootfd, const char *path, int flags)
{
  char rest[PATH_MAX], tmp[PATH_MAX];
  struct stat root_st, st;
  int cur, links = 0;
  char *p;

  if (fstat (rootfd, &root_st) < 0)
    return -1;
  if (strlen (path) >= sizeof rest)
    {
      errno = ENAMETOOLONG;
      return -1;
    }
  strcpy (rest, path);
  cur = openat (rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  p = rest;
  while (cur >= 0)
    {
      char *comp, *end;
      int next, saved;
      bool last;

      while (*p == '/')
        p++;
      if (*p == '\0')
        break;
      comp = p;
      end = strchr (p, '/');
      if (end)
        *end = '\0';
      p = end ? end + 1 : comp + strlen (comp);
      last = end == NULL || p[strspn (p, "/")] == '\0';

      if (strcmp (comp, ".") == 0)
        continue;
      if (strcmp (comp, "..") == 0)
        {
          if (fstat (cur, &st) == 0 && st.st_dev == root_st.st_dev && st.st_ino == root_st.st_ino)
            continue;
          next = openat (cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        }
      else
        next = openat (cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      saved = errno;
      if (next < 0)
        {
          close (cur);
          errno = saved;
          return -1;
        }
      if (fstat (next, &st) == 0 && S_ISLNK (st.st_mode) && !(last && (flags & O_NOFOLLOW)))
        {
          char target[PATH_MAX];
          ssize_t n = readlinkat (next, "", target, sizeof target - 1);
          close (next);
          if (n < 0 || ++links > 40
              || snprintf (tmp, sizeof tmp, "%.*s/%s", (int) n, target, p) >= (int) sizeof tmp)
            {
              close (cur);
              errno = n < 0 ? errno : links > 40 ? ELOOP : ENAMETOOLONG;
              return -1;
            }
          strcpy (rest, tmp);
          p = rest;
          if (target[0] == '/')
            {
              close (cur);
              cur = openat (rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
            }
          continue;
        }
      close (cur);
      cur = next;
    }
  if (cur >= 0 && (flags & O_DIRECTORY) && fstat (cur, &st) == 0 && !S_ISDIR (st.st_mode))
    {
      close (cur);
      errno = ENOTDIR;
      return -1;
    }
  return cur;
}

/* Resolve path (absolute or relative to the root) inside the tree at rootfd:
 * symlinks and ".." never leave it.  Returns an O_PATH fd (flags may add
 * O_DIRECTORY, O_NOFOLLOW) or -1 with errno. */
int
ob_sandbox_open_in_root (int rootfd, const char *path, int flags)
{
  struct open_how how = { 0 };
  int fd;

  how.flags = (unsigned long long) (flags | O_PATH | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  fd = (int) syscall (SYS_openat2, rootfd, path, &how, sizeof how);
  if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
    return fd;
  return ob_sandbox_resolve_in_root (rootfd, path, flags);
}

void
ob_sandbox_fd_path (char *buf, size_t size, int fd)
{
  snprintf (buf, size, "/proc/self/fd/%d", fd);
}

/* Path of fd relative to the root whose host path is root_real. */
char *
ob_sandbox_path_in_root (const char *root_real, int fd, const char *fallback)
{
  char link[64], buf[PATH_MAX];
  size_t rl = strlen (root_real);
  ssize_t n;

  ob_sandbox_fd_path (link, sizeof link, fd);
  n = readlink (link, buf, sizeof buf - 1);
  if (n < 0)
    return ob_xstrdup (fallback);
  buf[n] = '\0';
  if (strcmp (root_real, "/") == 0)
    return ob_xstrdup (buf);
  if (strncmp (buf, root_real, rl) != 0 || (buf[rl] != '/' && buf[rl] != '\0'))
    return ob_xstrdup (fallback);
  return ob_xstrdup (buf[rl] ? buf + rl : "/");
}

/* Make sure the mount point path (absolute, inside the root) exists as a
 * directory (dir) or a non-directory, creating it and its parents when
 * missing and recording each creation in *made.  A dangling symlink on the
 * way is followed (inside the root), like runc does for
 * /etc/resolv.conf -> ../run/.../stub-resolv.conf. */
int
ob_sandbox_ensure_mount_point (int rootfd, const char *root_real, const char *path, bool dir, char ***made,
                    ob_error_t *err)
{
  cleanup_free char *cur = ob_xstrdup (path);
  int hops = 0;

restart:
  if (++hops > 40)
    return ob_error_make (err, OB_ERR_STEP, ELOOP, "create mount point `%s`", path);
  {
    cleanup_close int parent = ob_sandbox_open_in_root (rootfd, "/", O_PATH | O_DIRECTORY);
    cleanup_free char *prefix = ob_xmalloc (strlen (cur) + 2);
    char *p = cur;
    size_t plen = 0;

    if (parent < 0)
      return ob_error_make (err, OB_ERR_STEP, errno, "open rootfs");
    prefix[0] = '\0';
    for (;;)
      {
        char *comp, *end;
        bool last;
        cleanup_close int fd = -1;
        struct stat st;

        while (*p == '/')
          p++;
        if (*p == '\0')
          break;
        comp = p;
        end = strchr (p, '/');
        p = end ? end : p + strlen (p);
        while (*p == '/')
          p++;
        last = *p == '\0';

        prefix[plen++] = '/';
        memcpy (prefix + plen, comp, (size_t) ((end ? end : comp + strlen (comp)) - comp));
        plen += (size_t) ((end ? end : comp + strlen (comp)) - comp);
        prefix[plen] = '\0';
        if (end)
          *end = '\0';

        fd = ob_sandbox_open_in_root (rootfd, prefix, O_PATH);
        if (fd < 0 && errno != ENOENT)
          return ob_error_make (err, OB_ERR_STEP, errno, "open mount point `%s`", prefix);
        if (fd < 0 && fstatat (parent, comp, &st, AT_SYMLINK_NOFOLLOW) == 0
            && S_ISLNK (st.st_mode))
          {
            char target[PATH_MAX];
            ssize_t n = readlinkat (parent, comp, target, sizeof target - 1);
            char *rest = end ? end + 1 : (char *) "";
            char *next;
            if (n < 0)
              return ob_error_make (err, OB_ERR_STEP, errno, "readlink `%s`", prefix);
            target[n] = '\0';
            /* prefix minus its last component is the link's directory. */
            prefix[plen - strlen (comp) - 1] = '\0';
            if (target[0] == '/')
              next = ob_xasprintf ("%s/%s", target, rest);
            else
              next = ob_xasprintf ("%s/%s/%s", prefix, target, rest);
            free (cur);
            cur = next;
            goto restart;
          }
        if (fd < 0)
          {
            int r;
            if (!last || dir)
              r = mkdirat (parent, comp, 0755);
            else
              {
                r = openat (parent, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                            0644);
                if (r >= 0)
                  r = close (r);
              }
            if (r < 0)
              return ob_error_make (err, OB_ERR_STEP, errno, "create mount point `%s`", prefix);
            fd = openat (parent, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0)
              return ob_error_make (err, OB_ERR_STEP, errno, "open mount point `%s`", prefix);
            ob_strv_take (made, ob_sandbox_path_in_root (root_real, fd, prefix));
          }
        if (fstat (fd, &st) < 0)
          return ob_error_make (err, OB_ERR_STEP, errno, "stat mount point `%s`", prefix);
        if (!last && !S_ISDIR (st.st_mode))
          return ob_error_make (err, OB_ERR_STEP, ENOTDIR, "mount point `%s`", path);
        if (last && dir != !!S_ISDIR (st.st_mode))
          return ob_error_make (err, OB_ERR_STEP, dir ? ENOTDIR : EISDIR, "mount point `%s`",
                                path);
        close (parent);
        parent = ob_steal_fd (&fd);
      }
  }
  return 0;
}

int
ob_sandbox_prepare_mount_points (const struct ob_sandbox_opts *o, int rootfd, char ***made,
                      ob_error_t *err)
{
  static const char *const dirs[] = { "/proc", "/dev", "/sys" };
  cleanup_free char *root_real = realpath (o->rootfs, NULL);

  if (root_real == NULL)
    return ob_error_make (err, OB_ERR_STEP, errno, "rootfs `%s`", o->rootfs);
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    if (ob_sandbox_ensure_mount_point (rootfd, root_real, dirs[i], true, made, err) < 0)
      return -1;
  for (size_t i = 0; i < o->n_mounts; i++)
    {
      struct stat st;
      if (stat (o->mounts[i].source, &st) < 0)
        return ob_error_make (err, OB_ERR_STEP, errno, "bind source `%s`",
                              o->mounts[i].source);
      if (ob_sandbox_ensure_mount_point (rootfd, root_real, o->mounts[i].target, S_ISDIR (st.st_mode),
                              made, err)
          < 0)
        return -1;
    }
  return 0;
}

