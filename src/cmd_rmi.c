/* obuild rmi: untag images and remove the blobs nothing else needs. */
#include "config.h"
#include "cli.h"
#include <obuild/imagecmd.h>
#include <obuild/prune.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <stdio.h>
#include <string.h>

static void
report (void *data, const char *what, const char *name, int64_t bytes)
{
  (void) data;
  (void) what;
  (void) bytes;
  printf ("Deleted: %s\n", name);
}

int
cmd_rmi (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_store *store = NULL;
  struct ob_prune_opts o = { 0 };
  struct ob_prune_result res;
  cleanup_strv char **untagged = NULL;
  cleanup_strv char **digests = NULL;
  int r = -1;

  if (argc >= 2 && strcmp (argv[1], "--help") == 0)
    {
      printf ("Usage: obuild rmi IMAGE...\n\n"
              "Remove the tags IMAGE names (a tag; a manifest digest removes every tag of that image),\n"
              "then the blobs of those images that no other tag and no build cache entry needs.\n"
              "Unpacked layers are left to `obuild prune`.\n");
      return 0;
    }
  for (int i = 1; i < argc; i++)
    if (argv[i][0] == '-')
      return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild rmi --help`)", argv[i]);
  if (argc < 2)
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild rmi IMAGE...");
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    return -1;
  if (ob_imagecmd_untag (store->oci, argv + 1, &untagged, &digests, err) < 0)
    goto out;
  for (size_t i = 0; untagged[i]; i++)
    printf ("Untagged: %s\n", untagged[i]);
  o.roots = digests;
  o.report = report;
  if (ob_prune (store, &o, &res, err) < 0)
    goto out;
  r = 0;
out:
  ob_store_close (store);
  return r;
}
