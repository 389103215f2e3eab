/* rootfs: the overlay root of an image's unpacked layers and the image's
 * users (see include/obuild/rootfs.h).  Moved out of build_run.c so that
 * `obuild run` mounts and resolves exactly as RUN steps do. */
#include "config.h"
#include <obuild/rootfs.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- overlay ---- */

static int
sys_fsopen (const char *fs, unsigned flags)
{
  return (int) syscall (SYS_fsopen, fs, flags);
}

static int
sys_fsconfig (int fd, unsigned cmd, const char *key, const void *val, int aux)
{
  return (int) syscall (SYS_fsconfig, fd, cmd, key, val, aux);
}

static int
sys_fsmount (int fd, unsigned flags, unsigned attr)
{
  return (int) syscall (SYS_fsmount, fd, flags, attr);
}

static int
sys_move_mount (int from_dfd, const char *from, int to_dfd, const char *to, unsigned flags)
{
  return (int) syscall (SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

/* The new mount API takes lower directories one by one ("lowerdir+", Linux
 * 6.8), so 150 layers do not hit the one-page limit of mount options.
 * "volatile" (Linux 5.10): the overlay neither passes the step's fsyncs on
 * (dpkg's) nor syncs the upper file system when unmounted; a crash loses the
 * build anyway, and the store re-unpacks layers written in an earlier boot
 * (store.h). */
static int
mount_overlay_fsconfig (char *const *lowers, size_t n, const char *upper, const char *work,
                        const char *target, bool vol)
{
  cleanup_close int fsfd = sys_fsopen ("overlay", FSOPEN_CLOEXEC);
  cleanup_close int mfd = -1;
  if (fsfd < 0)
    return -1;
  for (size_t i = n; i-- > 0;)
    if (sys_fsconfig (fsfd, FSCONFIG_SET_STRING, "lowerdir+", lowers[i], 0) < 0)
      return -1;
  if (sys_fsconfig (fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0
      || sys_fsconfig (fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0
      || sys_fsconfig (fsfd, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0
      || (vol && sys_fsconfig (fsfd, FSCONFIG_SET_FLAG, "volatile", NULL, 0) < 0)
      || sys_fsconfig (fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return -1;
  mfd = sys_fsmount (fsfd, FSMOUNT_CLOEXEC, 0);
  if (mfd < 0)
    return -1;
  return sys_move_mount (mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
}

/* Classic mount(2): lower paths are short symlinks ("0", "1", ...) in
 * linkdir, resolved relative to it, to stay under the page limit. */
static int
mount_overlay_classic (size_t n, const char *linkdir, const char *upper, const char *work,
                       const char *target, bool vol)
{
  struct ob_buf o = { 0 };
  cleanup_close int cwd = open (".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r, e;
  ob_buf_adds (&o, vol ? "userxattr,volatile,lowerdir=" : "userxattr,lowerdir=");
  for (size_t i = n; i-- > 0;)
    {
      char num[24];
      snprintf (num, sizeof num, "%zu%s", i, i ? ":" : "");
      ob_buf_adds (&o, num);
    }
  ob_buf_adds (&o, ",upperdir=");
  ob_buf_adds (&o, upper);
  ob_buf_adds (&o, ",workdir=");
  ob_buf_adds (&o, work);
  if (chdir (linkdir) < 0)
    {
      ob_buf_free (&o);
      return -1;
    }
  r = mount ("overlay", target, "overlay", 0, o.data);
  e = errno;
  if (cwd >= 0 && fchdir (cwd) < 0)
    {
      /* nothing to do: paths used later are absolute */
    }
  ob_buf_free (&o);
  errno = e;
  return r;
}

int
ob_rootfs_mount_overlay (char *const *lowers, size_t n, const char *rundir, const char *upper,
                         const char *work, const char *target, ob_error_t *err)
{
  cleanup_free char *linkdir = ob_xasprintf ("%s/l", rundir);
  bool vol = ob_store_boot_id () != NULL;
  if (mount_overlay_fsconfig (lowers, n, upper, work, target, vol) == 0
      || (vol && mount_overlay_fsconfig (lowers, n, upper, work, target, false) == 0))
    return 0;
  if (mkdir (linkdir, 0700) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "mkdir `%s`", linkdir);
  for (size_t i = 0; i < n; i++)
    {
      char num[24];
      snprintf (num, sizeof num, "%zu", i);
      cleanup_close int dfd = open (linkdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd < 0 || symlinkat (lowers[i], dfd, num) < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "symlink in `%s`", linkdir);
    }
  if (mount_overlay_classic (n, linkdir, upper, work, target, vol) < 0
      && (!vol || mount_overlay_classic (n, linkdir, upper, work, target, false) < 0))
    return ob_error_make (err, OB_ERR_STEP, errno,
                          "mount the overlay root filesystem for RUN on `%s` (unprivileged "
                          "overlayfs needs Linux 5.11 or later)",
                          target);
  return 0;
}

/* ---- the image's users ---- */

char *
ob_rootfs_read (const char *root, const char *path)
{
  /* O_NONBLOCK: the image's (or an earlier step's) FIFO there must not
   * hang obuild in open, nor a device or an endless file fill its memory:
   * a regular file of a sane size only */
  struct open_how how = { .flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                          .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  cleanup_close int rfd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  cleanup_close int fd = -1;
  struct ob_buf b = { 0 };
  struct stat st;
  if (rfd < 0)
    return NULL;
  fd = (int) syscall (SYS_openat2, rfd, path, &how, sizeof how);
  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || st.st_size > OB_ROOTFS_READ_MAX)
    return NULL;
  for (;;)
    {
      char tmp[65536];
      ssize_t r = read (fd, tmp, sizeof tmp);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0 || b.len + (size_t) r > OB_ROOTFS_READ_MAX)
        {
          ob_buf_free (&b);
          return NULL;
        }
      if (r == 0)
        break;
      ob_buf_add (&b, tmp, (size_t) r);
    }
  return ob_buf_steal (&b);
}

char *
ob_rootfs_passwd_field (const char *passwd, uid_t uid, int field)
{
  const char *line = passwd;
  while (line && *line)
    {
      const char *eol = strchr (line, '\n');
      cleanup_free char *l = eol ? ob_xstrndup (line, eol - line) : ob_xstrdup (line);
      char *f[7] = { 0 }, *p = l;
      for (int i = 0; i < 7 && p; i++)
        {
          f[i] = p;
          p = strchr (p, ':');
          if (p)
            *p++ = '\0';
        }
      if (f[2] && f[field] && (uid_t) strtoul (f[2], NULL, 10) == uid && *f[2])
        return ob_xstrdup (f[field]);
      line = eol ? eol + 1 : NULL;
    }
  return NULL;
}

/* Supplementary groups of user `name` from an /etc/group text. */
static size_t
supplementary_groups (const char *group, const char *name, gid_t *out, size_t max)
{
  const char *line = group;
  size_t n = 0;
  while (name && line && *line && n < max)
    {
      const char *eol = strchr (line, '\n');
      cleanup_free char *l = eol ? ob_xstrndup (line, eol - line) : ob_xstrdup (line);
      char *f[4] = { 0 }, *p = l;
      for (int i = 0; i < 4 && p; i++)
        {
          f[i] = p;
          p = strchr (p, ':');
          if (p)
            *p++ = '\0';
        }
      if (f[2] && f[3])
        {
          char *save = NULL;
          for (char *m = strtok_r (f[3], ",", &save); m; m = strtok_r (NULL, ",", &save))
            if (strcmp (m, name) == 0)
              out[n++] = (gid_t) strtoul (f[2], NULL, 10);
        }
      line = eol ? eol + 1 : NULL;
    }
  return n;
}

size_t
ob_rootfs_groups (const char *user, const char *passwd, const char *group, uid_t uid, gid_t gid, gid_t *groups,
                  size_t max)
{
  size_t n = 0;
  if (max == 0)
    return 0;
  groups[n++] = gid;
  if (strchr (user, ':') == NULL && passwd)
    {
      cleanup_free char *name = ob_rootfs_passwd_field (passwd, uid, 0);
      gid_t more[64];
      size_t k = supplementary_groups (group, name, more, max - 1 < 64 ? max - 1 : 64);
      for (size_t i = 0; i < k; i++)
        {
          bool dup = false;
          for (size_t j = 0; j < n && !dup; j++)
            dup = groups[j] == more[i];
          if (!dup && n < max)
            groups[n++] = more[i];
        }
    }
  return n;
}
