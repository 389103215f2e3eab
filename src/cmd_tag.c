/* obuild tag: more names for an image of the store. */
#include "config.h"
#include "cli.h"
#include <obuild/imagecmd.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <stdio.h>
#include <string.h>

int
cmd_tag (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_store *store = NULL;
  int r;
  if (argc >= 2 && strcmp (argv[1], "--help") == 0)
    {
      printf ("Usage: obuild tag SRC NEW...\n\n"
              "Point each tag NEW at the image SRC (a tag of the store or a manifest digest).\n"
              "A tag that named another image is moved.\n");
      return 0;
    }
  for (int i = 1; i < argc; i++)
    if (argv[i][0] == '-')
      return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild tag --help`)", argv[i]);
  if (argc < 3)
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild tag SRC NEW...");
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    return -1;
  r = ob_imagecmd_tag (store->oci, argv[1], argv + 2, err);
  ob_store_close (store);
  return r;
}
