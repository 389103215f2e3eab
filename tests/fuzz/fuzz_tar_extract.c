/* libFuzzer harness: extraction of hostile layers and archives.  Each input
 * is a tar stream (possibly compressed); it is extracted into a fresh root
 * directory, and the harness aborts if anything appeared outside that root.
 *
 * Per process: a scratch directory holding
 *   root/       the extraction root, made and removed for every input;
 *               pre-populated with a small "lower layer" (files, and symlinks
 *               pointing at the canary by relative and absolute paths and at
 *               "..", so that a resolution that follows them escapes; the ADD
 *               destination is reached through a symlink inside the root)
 *   canary/     an empty sibling that must stay empty and unchanged
 *   layer.out   the output of ob_layer_import
 * and nothing else.  Every input goes through every entry point, each on a
 * fresh root: ob_layer_extract of an image layer into "/" and of an archive
 * (ADD) into a subdirectory, ob_layer_unpack_overlay into an empty root,
 * ob_layer_import, and ob_layer_read_file of etc/passwd.  Open file
 * descriptors are counted around it all (a leak aborts).
 *
 * The scratch directory is a private, size-limited tmpfs when the system
 * allows (see fuzz_common.h): a decompression bomb meets ENOSPC instead of
 * filling the disk, and device nodes cannot be created. */
#include "config.h"
#include <obuild/layer.h>
#include <obuild/tree.h>
#include <obuild/util.h>

#include "fuzz_common.h"

#include <stdint.h>
#include <sys/mman.h>

static char *root_path;    /* scratch/root */
static char *canary_path;  /* scratch/canary */
static int in_fd = -1;     /* memfd holding the input */
static struct stat canary_st;

int LLVMFuzzerInitialize (int *argc, char ***argv);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  (void) argc;
  (void) argv;
  fuzz_scratch_init ("fuzz_tar_extract", "256m");
  root_path = ob_xasprintf ("%s/root", fuzz_scratch);
  canary_path = ob_xasprintf ("%s/canary", fuzz_scratch);
  if (mkdir (canary_path, 0755) < 0 || chmod (canary_path, 0755) < 0
      || stat (canary_path, &canary_st) < 0)
    fuzz_fail ("canary %s: %s", canary_path, strerror (errno));
  in_fd = memfd_create ("fuzz-layer", MFD_CLOEXEC);
  if (in_fd < 0)
    fuzz_fail ("memfd_create: %s", strerror (errno));
  return 0;
}

/* ---- the escape check ---- */

static void
check_outside (void)
{
  struct stat st;
  struct dirent *de;
  DIR *d = opendir (fuzz_scratch);
  if (d == NULL)
    fuzz_fail ("opendir %s: %s", fuzz_scratch, strerror (errno));
  while ((de = readdir (d)))
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0
        && strcmp (de->d_name, "root") != 0 && strcmp (de->d_name, "canary") != 0
        && strcmp (de->d_name, "layer.out") != 0)
      fuzz_fail ("`%s` appeared next to the extraction root", de->d_name);
  closedir (d);
  d = opendir (canary_path);
  if (d == NULL)
    fuzz_fail ("canary %s: %s", canary_path, strerror (errno));
  while ((de = readdir (d)))
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      fuzz_fail ("`canary/%s` was written through the extraction", de->d_name);
  closedir (d);
  if (lstat (canary_path, &st) < 0 || !S_ISDIR (st.st_mode) || st.st_mode != canary_st.st_mode
      || st.st_uid != canary_st.st_uid || st.st_gid != canary_st.st_gid
      || st.st_mtim.tv_sec != canary_st.st_mtim.tv_sec
      || st.st_mtim.tv_nsec != canary_st.st_mtim.tv_nsec)
    fuzz_fail ("the canary directory was changed through the extraction");
}

/* ---- the lower layer the archive lands on ---- */

static void
put (int rootfd, const char *path, const char *content)
{
  int fd = openat (rootfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write (fd, content, strlen (content)) != (ssize_t) strlen (content))
    fuzz_fail ("populate %s: %s", path, strerror (errno));
  close (fd);
}

static void
populate (int rootfd)
{
  cleanup_free char *abs_canary = ob_xasprintf ("%s", canary_path);
  if (mkdirat (rootfd, "etc", 0755) < 0 || mkdirat (rootfd, "dir", 0755) < 0
      || mkdirat (rootfd, "dir/sub", 0755) < 0 || mkdirat (rootfd, "sub", 0755) < 0)
    fuzz_fail ("populate: %s", strerror (errno));
  put (rootfd, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  put (rootfd, "dir/sub/file", "lower\n");
  put (rootfd, "dir/keep", "lower\n");
  if (symlinkat ("../canary", rootfd, "evil") < 0 || symlinkat (abs_canary, rootfd, "abs") < 0
      || symlinkat ("..", rootfd, "up") < 0 || symlinkat ("../../canary", rootfd, "dir/evil") < 0
      || symlinkat ("../dir", rootfd, "sub/dest") < 0)
    fuzz_fail ("populate: %s", strerror (errno));
}

static void
check_err (int r, ob_error_t *err)
{
  if (r < 0)
    {
      if (*err == NULL || (*err)->msg == NULL || (*err)->kind == 0)
        fuzz_fail ("an error without a message");
      if (fuzz_verbose)
        fprintf (stderr, "%s: error %d: %s\n", fuzz_name, (*err)->kind, (*err)->msg);
      ob_error_free (err);
    }
  else if (*err != NULL)
    fuzz_fail ("success with an error set: %s", (*err)->msg);
}

/* One way in: 0 an image layer into "/", 1 an ADD archive into a directory
 * reached through symlinks of the lower layer, 2 an overlay lower directory
 * (empty root), 3 an import (no root). */
static void
run_mode (unsigned mode)
{
  ob_error_t err = NULL;
  int rootfd = -1, r;

  if (mode != 3)
    {
      if (mkdir (root_path, 0755) < 0)
        fuzz_fail ("mkdir %s: %s", root_path, strerror (errno));
      rootfd = open (root_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (rootfd < 0)
        fuzz_fail ("open %s: %s", root_path, strerror (errno));
      if (mode != 2)
        populate (rootfd);
    }
  lseek (in_fd, 0, SEEK_SET);
  switch (mode)
    {
    case 0:
      r = ob_layer_extract (in_fd, rootfd, "/", true, true, &err);
      break;
    case 1:
      r = ob_layer_extract (in_fd, rootfd, "/sub/dest/x", false, true, &err);
      break;
    case 2:
      {
        /* with the tree index made as it reads (store.c does) */
        struct ob_tree_index *ix = ob_tree_index_new ();
        r = ob_layer_unpack_overlay (in_fd, rootfd, ob_tree_index_note, ix, &err);
        ob_tree_index_free (ix);
      }
      break;
    default:
      {
        struct ob_tree_index *ix = ob_tree_index_new ();
        struct ob_layer_opts opts = { .compression = OB_COMPRESS_NONE, .clamp_mtime = true,
                                      .mtime_max = 1700000000, .on_entry = ob_tree_index_note,
                                      .on_entry_data = ix };
        struct ob_layer_result res;
        cleanup_free char *out = ob_xasprintf ("%s/layer.out", fuzz_scratch);
        int ofd = open (out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (ofd < 0)
          fuzz_fail ("open %s: %s", out, strerror (errno));
        r = ob_layer_import (in_fd, ofd, &opts, &res, &err);
        if (r == 0 && (!ob_digest_valid (res.digest) || !ob_digest_valid (res.diff_id)))
          fuzz_fail ("import: invalid digests");
        close (ofd);
        unlink (out);
        ob_tree_index_free (ix);
      }
      break;
    }
  check_err (r, &err);
  if (rootfd >= 0)
    close (rootfd);
  check_outside ();
  if (mode != 3)
    fuzz_rm_tree (root_path);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  ob_error_t err = NULL;
  char *content = NULL;
  size_t len = 0;
  int r, fds_before, fds_after;

  if (ftruncate (in_fd, 0) < 0 || pwrite (in_fd, data, size, 0) != (ssize_t) size)
    fuzz_fail ("memfd: %s", strerror (errno));
  fds_before = fuzz_count_fds ();

  lseek (in_fd, 0, SEEK_SET);
  (void) ob_layer_is_archive (in_fd);
  for (unsigned mode = 0; mode < 4; mode++)
    run_mode (mode);
  r = ob_layer_read_file (&in_fd, 1, "/etc/passwd", &content, &len, &err);
  check_err (r, &err);
  free (content);

  fds_after = fuzz_count_fds ();
  if (fds_after != fds_before)
    fuzz_fail ("%d file descriptors before, %d after", fds_before, fds_after);
  return 0;
}
