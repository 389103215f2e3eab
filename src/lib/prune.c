#include "config.h"
#include <obuild/image.h>
#include <obuild/prune.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GRACE_SECONDS 60

struct set
{
  char **v;
};

static bool
set_has (const struct set *s, const char *x)
{
  for (size_t i = 0; s->v && s->v[i]; i++)
    if (strcmp (s->v[i], x) == 0)
      return true;
  return false;
}

static void
set_add (struct set *s, const char *x)
{
  if (x && !set_has (s, x))
    ob_strv_add (&s->v, x);
}

/* Mark a manifest or index and everything it references. */
static int
mark (struct ob_store *st, const char *digest, struct set *blobs, struct set *diff_ids, int depth,
      ob_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len, i;
  json_t *j, *e;
  if (depth > 8 || set_has (blobs, digest))
    return 0;
  set_add (blobs, digest);
  if (ob_layout_blob_read (st->oci, digest, &data, &len, err) < 0)
    return -1;
  j = json_loadb (data, len, 0, NULL);
  if (j == NULL)
    return 0;
  json_array_foreach (json_object_get (j, "manifests"), i, e)
    {
      const char *d = json_string_value (json_object_get (e, "digest"));
      if (ob_digest_valid (d) && ob_layout_has_blob (st->oci, d) && mark (st, d, blobs, diff_ids, depth + 1, err) < 0)
        {
          json_decref (j);
          return -1;
        }
    }
  json_array_foreach (json_object_get (j, "layers"), i, e)
    set_add (blobs, json_string_value (json_object_get (e, "digest")));
  {
    const char *cd = json_string_value (json_object_get (json_object_get (j, "config"), "digest"));
    if (ob_digest_valid (cd))
      {
        cleanup_free char *cdata = NULL;
        size_t clen;
        ob_error_t e2 = NULL;
        set_add (blobs, cd);
        if (ob_layout_blob_read (st->oci, cd, &cdata, &clen, &e2) == 0)
          {
            json_t *c = json_loadb (cdata, clen, 0, NULL);
            json_t *id;
            size_t k;
            json_array_foreach (json_object_get (json_object_get (c, "rootfs"), "diff_ids"), k, id)
              set_add (diff_ids, json_string_value (id));
            json_decref (c);
          }
        ob_error_free (&e2);
      }
  }
  json_decref (j);
  return 0;
}

static int64_t
tree_bytes (int dfd, const char *name)
{
  struct stat st;
  int64_t total = 0;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return 0;
  total = st.st_blocks * 512;
  if (S_ISDIR (st.st_mode))
    {
      int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      cleanup_dir DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
      struct dirent *de;
      while (d && (de = readdir (d)))
        if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
          total += tree_bytes (dirfd (d), de->d_name);
    }
  return total;
}

static int
remove_entry (const struct ob_prune_opts *o, int dfd, const char *name, const char *what, const char *label,
              int64_t bytes, ob_error_t *err)
{
  if (o->report)
    o->report (o->report_data, what, label, bytes);
  if (o->dry_run)
    return 0;
  return ob_rm_rf_at (dfd, name, err);
}

int
ob_prune (struct ob_store *st, const struct ob_prune_opts *o, struct ob_prune_result *res,
          ob_error_t *err)
{
  struct set blobs = { NULL }, diff_ids = { NULL }, cand = { NULL }, cand_ids = { NULL };
  struct ob_layout_entry *e = NULL;
  size_t n = 0;
  cleanup_free char *blobdir = ob_xasprintf ("%s/blobs/sha256", ob_layout_path (st->oci));
  cleanup_free char *cachedir = ob_xasprintf ("%s/cache/entries", st->root);
  cleanup_free char *layersroot = ob_xasprintf ("%s/layers", st->root);
  cleanup_close int lock = open (ob_layout_path (st->oci), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  time_t now = time (NULL);
  /* no other obuild process has the store open: no build can be about to
   * use a blob, so even fresh ones may go (rmi right after a build) */
  bool alone = o->roots != NULL && ob_store_gc_exclusive (st);
  int r = -1;

  memset (res, 0, sizeof *res);
  /* no build tags an image while we decide */
  if (lock < 0 || flock (lock, LOCK_EX) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "lock `%s`", ob_layout_path (st->oci));
  if (ob_layout_list (st->oci, &e, &n, err) < 0)
    goto out;
  for (size_t i = 0; i < n; i++)
    if (ob_layout_has_blob (st->oci, e[i].desc.digest) && mark (st, e[i].desc.digest, &blobs, &diff_ids, 0, err) < 0)
      goto out;

  for (size_t i = 0; o->roots && o->roots[i]; i++)
    if (ob_layout_has_blob (st->oci, o->roots[i]) && mark (st, o->roots[i], &cand, &cand_ids, 0, err) < 0)
      goto out;

  /* the build cache: kept (and what it names) unless --all */
  {
    cleanup_dir DIR *d = opendir (cachedir);
    struct dirent *de;
    while (d && (de = readdir (d)))
      {
        cleanup_free char *data = NULL;
        size_t len;
        ob_error_t e2 = NULL;
        json_t *j;
        if (de->d_name[0] == '.')
          continue;
        if (o->all && o->roots == NULL)
          {
            if (remove_entry (o, dirfd (d), de->d_name, "cache entry", de->d_name, 0, err) < 0)
              goto out;
            res->cache_entries++;
            continue;
          }
        if (ob_read_file_at (dirfd (d), de->d_name, &data, &len, &e2) < 0)
          {
            ob_error_free (&e2);
            continue;
          }
        j = json_loadb (data, len, 0, NULL);
        set_add (&blobs, json_string_value (json_object_get (j, "digest")));
        set_add (&diff_ids, json_string_value (json_object_get (j, "diff_id")));
        json_decref (j);
      }
    if (o->all && !o->dry_run && o->roots == NULL)
      {
        cleanup_free char *files = ob_xasprintf ("%s/cache/files", st->root);
        cleanup_free char *mounts = ob_xasprintf ("%s/cache-mounts", st->root);
        unlink (files);
        if (ob_rm_rf_at (AT_FDCWD, mounts, err) < 0)
          goto out;
      }
  }

  /* blobs */
  {
    cleanup_dir DIR *d = opendir (blobdir);
    struct dirent *de;
    while (d && (de = readdir (d)))
      {
        cleanup_free char *dg = ob_xasprintf ("sha256:%s", de->d_name);
        struct stat sb;
        if (!ob_digest_valid (dg) || set_has (&blobs, dg) || fstatat (dirfd (d), de->d_name, &sb, 0) < 0)
          continue;
        /* a blob written (or found again by a build) in the last minute
         * may belong to a build that has not tagged it yet */
        if ((o->roots && !set_has (&cand, dg)) || (!alone && now - sb.st_mtime < GRACE_SECONDS))
          continue;
        if (remove_entry (o, dirfd (d), de->d_name, "blob", dg, sb.st_size, err) < 0)
          goto out;
        res->blobs++;
        res->bytes += sb.st_size;
      }
  }

  if (o->roots)
    {
      r = 0;
      goto out;
    }
  /* unpacked layers, for every user-namespace mode */
  {
    cleanup_dir DIR *modes = opendir (layersroot);
    struct dirent *m;
    while (modes && (m = readdir (modes)))
      {
        int fd;
        cleanup_dir DIR *d = NULL;
        struct dirent *de;
        if (m->d_name[0] == '.')
          continue;
        fd = openat (dirfd (modes), m->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        d = fd >= 0 ? fdopendir (fd) : NULL;
        while (d && (de = readdir (d)))
          {
            cleanup_free char *id = ob_xasprintf ("sha256:%s", de->d_name);
            cleanup_free char *label = NULL;
            cleanup_free char *marker = ob_xasprintf ("%s.boot", de->d_name);
            int64_t bytes;
            size_t len = strlen (de->d_name);
            if (len > 5 && strcmp (de->d_name + len - 5, ".boot") == 0)
              {
                /* the boot mark of an unpacked layer (store.c) without it */
                cleanup_free char *hex = ob_xstrndup (de->d_name, len - 5);
                struct stat sb;
                if (!o->dry_run && fstatat (dirfd (d), hex, &sb, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
                  unlinkat (dirfd (d), de->d_name, 0);
                continue;
              }
            if (!ob_digest_valid (id) || set_has (&diff_ids, id))
              continue;
            label = ob_xasprintf ("%s/%s", m->d_name, de->d_name);
            bytes = tree_bytes (dirfd (d), de->d_name);
            if (remove_entry (o, dirfd (d), de->d_name, "layer directory", label, bytes, err) < 0)
              goto out;
            if (!o->dry_run)
              unlinkat (dirfd (d), marker, 0);
            res->layer_dirs++;
            res->bytes += bytes;
          }
      }
  }
  /* metadata indexes of layers (the tree module's): same rule */
  {
    cleanup_free char *trees = ob_xasprintf ("%s/trees", st->root);
    cleanup_dir DIR *d = opendir (trees);
    struct dirent *de;
    while (d && (de = readdir (d)))
      {
        cleanup_free char *id = ob_xasprintf ("sha256:%s", de->d_name);
        if (!ob_digest_valid (id) || set_has (&diff_ids, id))
          continue;
        if (!o->dry_run)
          unlinkat (dirfd (d), de->d_name, 0);
      }
  }
  r = 0;
out:
  flock (lock, LOCK_UN);
  ob_layout_entries_free (e, n);
  ob_strv_free (blobs.v);
  ob_strv_free (diff_ids.v);
  ob_strv_free (cand.v);
  ob_strv_free (cand_ids.v);
  return r;
}
