/* obuild save: images of the store to an archive file. */
#include "config.h"
#include "cli.h"
#include <obuild/image.h>
#include <obuild/imagecmd.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const struct option save_opts[] = {
  { "output", required_argument, NULL, 'o' },
  { "format", required_argument, NULL, 'f' },
  { "platform", required_argument, NULL, 'p' },
  { "help", no_argument, NULL, 'h' },
  { NULL, 0, NULL, 0 },
};

int
cmd_save (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_store *store = NULL;
  struct ob_archive_save_opts o = { .format = OB_ARCHIVE_OCI };
  cleanup_strv char **chosen = NULL;
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
        if (ob_archive_format_parse (optarg, &o.format, err) < 0)
          return -1;
        break;
      case 'p':
        {
          cleanup_free char *os = NULL, *arch = NULL, *variant = NULL;
          if (ob_image_platform_parse (optarg, &os, &arch, &variant, err) < 0)
            return ob_error_wrap (err, "--platform");
          o.platform = optarg;
        }
        break;
      case 'h':
        printf ("Usage: obuild save -o FILE [--format oci-archive|docker-archive] [--platform OS/ARCH[/VARIANT]] IMAGE...\n\n"
                "Write the images (tags of the store or manifest digests) to FILE: an oci-archive (a tar of\n"
                "an OCI image layout, the default) or a docker-archive (what `docker save` writes and\n"
                "`docker load` reads, with uncompressed layers).  An oci-archive holds a multi-platform\n"
                "image whole; a docker-archive holds one platform, this machine's unless --platform\n"
                "names another.  --platform saves only that platform's image.\n");
        return 0;
      case ':':
        return ob_error_make (err, OB_ERR_USAGE, 0, "option `%s` needs a value", argv[optind - 1]);
      default:
        return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild save --help`)", argv[optind - 1]);
      }
  if (out == NULL)
    return ob_error_make (err, OB_ERR_USAGE, 0, "save: name the archive to write with -o FILE");
  if (optind >= argc)
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild save -o FILE [--format FORMAT] [--platform OS/ARCH] IMAGE...");
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    return -1;
  r = ob_archive_save (store, argv + optind, argc - optind, &o, out, &chosen, err);
  for (size_t i = 0; r == 0 && chosen && chosen[i] && chosen[i + 1]; i += 2)
    fprintf (stderr, "obuild: warning: `%s` is a multi-platform image: the docker-archive holds only its %s image "
                     "(choose another with --platform)\n",
             chosen[i], chosen[i + 1]);
  ob_store_close (store);
  return r;
}
