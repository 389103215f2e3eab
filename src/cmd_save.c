/* obuild save: images of the store to an archive file. */
#include "config.h"
#include "cli.h"
#include <obuild/imagecmd.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const struct option save_opts[] = {
  { "output", required_argument, NULL, 'o' },
  { "format", required_argument, NULL, 'f' },
  { "help", no_argument, NULL, 'h' },
  { NULL, 0, NULL, 0 },
};

int
cmd_save (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_store *store = NULL;
  enum ob_archive_format format = OB_ARCHIVE_OCI;
  const char *out = NULL;
  int c, r;

  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":o:", save_opts, NULL)) != -1)
    switch (c)
      {
      case 'o':
        out = optarg;
        break;
      case 'f':
        if (ob_archive_format_parse (optarg, &format, err) < 0)
          return -1;
        break;
      case 'h':
        printf ("Usage: obuild save -o FILE [--format oci-archive|docker-archive] IMAGE...\n\n"
                "Write the images (tags of the store or manifest digests) to FILE: an oci-archive (a tar of\n"
                "an OCI image layout, the default) or a docker-archive (what `docker save` writes and\n"
                "`docker load` reads, with uncompressed layers).\n");
        return 0;
      case ':':
        return ob_error_make (err, OB_ERR_USAGE, 0, "option `%s` needs a value", argv[optind - 1]);
      default:
        return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild save --help`)", argv[optind - 1]);
      }
  if (out == NULL)
    return ob_error_make (err, OB_ERR_USAGE, 0, "save: name the archive to write with -o FILE");
  if (optind >= argc)
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild save -o FILE [--format FORMAT] IMAGE...");
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    return -1;
  r = ob_archive_save (store, argv + optind, argc - optind, format, out, err);
  ob_store_close (store);
  return r;
}
