/* obuild import: a root filesystem tarball becomes a one-layer image. */
#include "config.h"
#include "cli.h"
#include <obuild/image.h>
#include <obuild/layer.h>
#include <obuild/tree.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct option import_opts[] = {
  { "source-date-epoch", required_argument, NULL, 'e' },
  { "timestamp", required_argument, NULL, 'e' },
  { "platform", required_argument, NULL, 'p' },
  { "quiet", no_argument, NULL, 'q' },
  { "help", no_argument, NULL, 'h' },
  { NULL, 0, NULL, 0 },
};

int
cmd_import (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_layer_opts lo = { .compression = OB_COMPRESS_GZIP };
  struct ob_tree_index *ix = NULL;
  struct ob_layer_result lr;
  struct ob_store *store = NULL;
  struct ob_txn *txn = NULL;
  struct ob_descriptor cd, md, ld;
  cleanup_free char *tag = NULL;
  cleanup_free char *created = NULL;
  cleanup_free char *cfgtext = NULL;
  cleanup_free char *mantext = NULL;
  cleanup_free char *hist = NULL;
  cleanup_free char *base = NULL;
  cleanup_free char *os = NULL, *arch = NULL, *variant = NULL;
  cleanup_close int in = -1;
  const char *env_epoch = getenv ("SOURCE_DATE_EPOCH");
  bool quiet = false;
  json_t *cfg, *man;
  char *tags[2] = { NULL, NULL };
  int c, fd, r = -1;

  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":q", import_opts, NULL)) != -1)
    switch (c)
      {
      case 'e':
        if (cli_parse_epoch (optarg, &lo.mtime_max, err) < 0)
          return -1;
        lo.clamp_mtime = true;
        break;
      case 'p':
        /* the image's platform: the tarball's programs say nothing of it */
        free (os), free (arch), free (variant);
        if (ob_image_platform_parse (optarg, &os, &arch, &variant, err) < 0)
          return ob_error_wrap (err, "--platform");
        break;
      case 'q':
        quiet = true;
        break;
      case 'h':
        printf ("Usage: obuild import [--platform OS/ARCH[/VARIANT]] [--source-date-epoch N] [-q] ROOTFS.tar[.gz|.xz|.zst] NAME[:TAG]\n\n"
                "Make a one-layer base image from a root filesystem tarball (`-` reads standard input).\n"
                "--platform: the image's platform (default: this machine's).\n");
        return 0;
      case ':':
        return ob_error_make (err, OB_ERR_USAGE, 0, "option `%s` needs a value", argv[optind - 1]);
      default:
        return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild import --help`)", argv[optind - 1]);
      }
  if (argc - optind != 2)
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild import ROOTFS.tar NAME[:TAG]");
  if (!lo.clamp_mtime && env_epoch && *env_epoch)
    {
      if (cli_parse_epoch (env_epoch, &lo.mtime_max, err) < 0)
        return ob_error_wrap (err, "SOURCE_DATE_EPOCH");
      lo.clamp_mtime = true;
    }
  if (ob_image_ref_normalize (argv[optind + 1], &tag, err) < 0)
    return -1;
  in = strcmp (argv[optind], "-") == 0 ? dup (0) : open (argv[optind], O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return ob_error_make (err, OB_ERR_CONTEXT, errno, "open `%s`", argv[optind]);
  {
    char *copy = ob_xstrdup (argv[optind]);
    base = ob_xstrdup (basename (copy));
    free (copy);
  }
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    return -1;
  if (ob_txn_begin (store->oci, store->tmp, &txn, err) < 0)
    {
      ob_store_close (store);
      return -1;
    }
  if (ob_txn_blob_create (txn, &fd, err) < 0)
    goto out;
  memset (&lr, 0, sizeof lr);
  /* the layer's tree index, made while it is written (a build's COPY
   * reads it instead of decompressing the layer) */
  lo.on_entry = ob_tree_index_note;
  lo.on_entry_data = ix = ob_tree_index_new ();
  if (ob_layer_import (in, fd, &lo, &lr, err) < 0)
    {
      close (fd);
      ob_error_wrap (err, "import `%s`", argv[optind]);
      goto out;
    }
  {
    cleanup_free char *trees = ob_xasprintf ("%s/trees", store->root);
    ob_tree_index_save (ix, trees, lr.diff_id);
  }
  if (ob_txn_blob_commit (txn, fd, lr.digest, err) < 0)
    goto out;

  created = ob_image_timestamp (lo.clamp_mtime ? lo.mtime_max : (int64_t) time (NULL));
  if (arch)
    cfg = ob_image_config_new (os, arch, variant);
  else
    cfg = ob_image_config_new ("linux", ob_image_host_arch (), ob_image_host_variant ());
  json_object_set_new (ob_image_config_runtime (cfg), "Env",
                       json_pack ("[s]", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
  ob_image_config_add_diff_id (cfg, lr.diff_id);
  hist = ob_xasprintf ("obuild import %s", base);
  ob_image_config_add_history (cfg, created, hist, NULL, false);
  ob_image_config_set_created (cfg, created);
  cfgtext = ob_json_canonical (cfg);
  json_decref (cfg);
  cd.media_type = (char *) OB_MT_OCI_CONFIG;
  cd.size = strlen (cfgtext);
  if (ob_txn_blob_put (txn, cfgtext, strlen (cfgtext), cd.digest, err) < 0)
    goto out;
  ld.media_type = (char *) lr.media_type;
  strcpy (ld.digest, lr.digest);
  ld.size = lr.size;
  man = ob_image_manifest_new (&cd, &ld, 1, NULL);
  mantext = ob_json_canonical (man);
  json_decref (man);
  md.media_type = (char *) OB_MT_OCI_MANIFEST;
  md.size = strlen (mantext);
  if (ob_txn_blob_put (txn, mantext, strlen (mantext), md.digest, err) < 0)
    goto out;
  tags[0] = tag;
  if (ob_txn_commit (txn, &md, tags, err) < 0)
    goto out;
  printf ("%s\n", md.digest);
  if (!quiet)
    printf ("oci:%s:%s\n", ob_layout_path (store->oci), tag);
  r = 0;
out:
  ob_tree_index_free (ix);
  ob_txn_free (txn);
  ob_store_close (store);
  return r;
}
