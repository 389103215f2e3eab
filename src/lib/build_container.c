/* build: --isolation=container.  Root in a container that forbids
 * namespaces and mounts (Docker's defaults): the container's own root file
 * system becomes the root of the stage that runs a RUN step, kaniko-style.
 * Before a stage's first RUN (and whenever another stage had the root),
 * everything in "/" is removed except what must survive — every mount point
 * of /proc/self/mountinfo (/proc, /sys, /dev, volumes, /etc/resolv.conf,
 * ...), the paths the caller keeps (obuild itself, its store, the context,
 * the Dockerfile, outputs, credentials) and the directories leading to
 * them — and the stage's layers are extracted onto it, never writing a kept
 * path.  The step's change is found by the copy snapshotter's walk diff,
 * which skips the kept paths and other file systems.  The caller refuses
 * this mode outside a container. */
#include "config.h"
#include "build_priv.h"
#include <obuild/layer.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Which layers the container's root holds (their digests, one a line),
 * for a later build in the same container. */
#define MARKER "/.obuild-root"

/* Decode mountinfo's octal escapes (\040 for a space). */
static char *
unescape (const char *s)
{
  char *out = ob_xmalloc (strlen (s) + 1), *w = out;
  for (; *s; s++)
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7')
      {
        *w++ = (char) (((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
        s += 3;
      }
    else
      *w++ = *s;
  *w = '\0';
  return out;
}

static int
load_keep (struct build *b, ob_error_t *err)
{
  cleanup_free char *mi = NULL;
  size_t len;
  char *save = NULL;

  if (b->container_keep)
    return 0;
  if (ob_read_file_at (AT_FDCWD, "/proc/self/mountinfo", &mi, &len, err) < 0)
    return -1;
  for (char *line = strtok_r (mi, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      /* "id parent major:minor root mount-point options ..." */
      char *f[5] = { 0 };
      char *p = line;
      for (int i = 0; i < 5 && p; i++)
        {
          f[i] = p;
          p = strchr (p, ' ');
          if (p)
            *p++ = '\0';
        }
      if (f[4] && strcmp (f[4], "/") != 0)
        ob_strv_take (&b->container_keep, unescape (f[4]));
    }
  for (size_t i = 0; b->o->container_keep && b->o->container_keep[i]; i++)
    {
      char *r = realpath (b->o->container_keep[i], NULL);
      ob_strv_take (&b->container_keep, r ? r : ob_xstrdup (b->o->container_keep[i]));
    }
  ob_strv_add (&b->container_keep, MARKER);
  ob_strv_add (&b->container_keep, "/proc");
  ob_strv_add (&b->container_keep, "/sys");
  ob_strv_add (&b->container_keep, "/dev");
  return 0;
}

static bool holds (struct build *b, struct stage *s);

/* Remove everything below rel ("" for "/") that is not kept, staying on
 * the root's file system. */
static int
clear (struct build *b, int rootfd, dev_t dev, const char *rel, ob_error_t *err)
{
  int fd = openat (rootfd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_dir DIR *d = NULL;
  cleanup_strv char **names = NULL;
  size_t n = 0;
  struct dirent *de;

  if (fd < 0 || (d = fdopendir (fd)) == NULL)
    {
      if (fd >= 0)
        close (fd);
      return ob_error_make (err, OB_ERR_STORE, errno, "container root: open `/%s`", rel);
    }
  while ((de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      ob_strv_push (&names, &n, ob_xstrdup (de->d_name));
  for (size_t i = 0; names && names[i]; i++)
    {
      cleanup_free char *crel = *rel ? ob_xasprintf ("%s/%s", rel, names[i]) : ob_xstrdup (names[i]);
      struct stat st;
      int k = ob_build_container_kept (b, crel);
      if (k == 1 || fstatat (rootfd, crel, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
        continue;
      if (k == 2 && S_ISDIR (st.st_mode))
        {
          if (clear (b, rootfd, dev, crel, err) < 0)
            return -1;
          continue;
        }
      if (k == 2)
        continue; /* not a directory, yet on the way to a kept path: leave it */
      if (ob_rm_rf_at (rootfd, crel, err) < 0)
        return ob_error_wrap (err, "container root");
    }
  return 0;
}

void
ob_build_container_cleanup (struct build *b)
{
  ob_strv_free (b->container_keep);
  b->container_keep = NULL;
}

int
ob_build_container_prepare (struct build *b, struct stage *s, ob_error_t *err)
{
  cleanup_close int rootfd = open ("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct stat st;

  if (rootfd < 0 || fstat (rootfd, &st) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "open `/`");
  if (load_keep (b, err) < 0)
    return -1;
  if (b->container_stage != s && holds (b, s))
    {
      /* an earlier build in this container left the root as this stage's
       * image (checked by a stat walk: far cheaper than unpacking again) */
      int same = ob_build_container_root_matches (b, s, err);
      if (same < 0)
        return -1;
      if (same)
        {
          if (b->container_stage)
            {
              b->container_stage->copy_applied = 0;
              ob_build_copyfs_forget (b->container_stage);
            }
          b->container_stage = s;
          free (s->copy_rootfs);
          s->copy_rootfs = ob_xstrdup ("/");
          s->copy_applied = s->n_layers;
        }
    }
  if (b->container_stage != s)
    {
      /* the root becomes this stage's image */
      if (b->o->log)
        b->o->log (b->o->log_data, "--isolation=container: making the container's root file system the stage's image");
      if (clear (b, rootfd, st.st_dev, "", err) < 0)
        return -1;
      if (b->container_stage)
        {
          b->container_stage->copy_applied = 0;
          ob_build_copyfs_forget (b->container_stage);
        }
      ob_build_copyfs_forget (s);
      b->container_stage = s;
      free (s->copy_rootfs);
      s->copy_rootfs = ob_xstrdup ("/");
      s->copy_applied = 0;
    }
  for (; s->copy_applied < s->n_layers; s->copy_applied++)
    {
      cleanup_close int fd = -1;
      const char *dg = s->layers[s->copy_applied].digest;
      ob_build_copyfs_forget (s);
      if (ob_txn_blob_open (b->txn, dg, &fd, err) < 0
          || ob_layer_extract_keep (fd, rootfd, (const char *const *) b->container_keep, err) < 0)
        return ob_error_wrap (err, "unpack layer %s onto the container's root", dg);
    }
  if (ob_build_copyfs_record (b, s, err) < 0)
    return -1;
  return ob_build_container_mark (b, s, err);
}

/* The digests of the stage's layers, one a line. */
static char *
layer_list (struct stage *s)
{
  struct ob_buf o = { 0 };
  for (size_t i = 0; i < s->n_layers; i++)
    {
      ob_buf_adds (&o, s->layers[i].digest);
      ob_buf_addc (&o, '\n');
    }
  ob_buf_addc (&o, '\0');
  return o.data;
}

static bool
holds (struct build *b, struct stage *s)
{
  cleanup_free char *want = layer_list (s);
  cleanup_free char *have = NULL;
  size_t len;
  ob_error_t e = NULL;
  (void) b;
  if (ob_read_file_at (AT_FDCWD, MARKER, &have, &len, &e) < 0)
    {
      ob_error_free (&e);
      return false;
    }
  return strcmp (have, want) == 0;
}

int
ob_build_container_root_matches (struct build *b, struct stage *s, ob_error_t *err)
{
  return ob_build_copyfs_unchanged (b, s, "/", err);
}

int
ob_build_container_mark (struct build *b, struct stage *s, ob_error_t *err)
{
  cleanup_free char *list = layer_list (s);
  (void) b;
  /* the root holds these layers only when they are all applied */
  if (s->copy_applied != s->n_layers)
    return 0;
  return ob_write_file_atomic_at (AT_FDCWD, MARKER, list, strlen (list), 0644, err);
}
