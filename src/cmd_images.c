/* obuild images: list the store's index. */
#include "config.h"
#include "cli.h"
#include <obuild/store.h>
#include <obuild/util.h>

#include <stdio.h>
#include <string.h>

int
cmd_images (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_store *store = NULL;
  struct ob_layout_entry *e = NULL;
  size_t n = 0;
  bool quiet = false;
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "-q") == 0 || strcmp (argv[i], "--quiet") == 0)
        quiet = true;
      else if (strcmp (argv[i], "--help") == 0)
        {
          printf ("Usage: obuild images [-q]\n\nList the tagged images of the store with their "
                  "manifest digests; -q prints only the tags.\n");
          return 0;
        }
      else
        return ob_error_make (err, OB_ERR_USAGE, 0, "images: unexpected argument `%s`", argv[i]);
    }
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    return -1;
  if (ob_layout_list (store->oci, &e, &n, err) < 0)
    {
      ob_store_close (store);
      return -1;
    }
  for (size_t i = 0; i < n; i++)
    {
      if (quiet)
        {
          if (e[i].tag)
            printf ("%s\n", e[i].tag);
        }
      else
        printf ("%-40s %s\n", e[i].tag ? e[i].tag : "<none>", e[i].desc.digest);
    }
  ob_layout_entries_free (e, n);
  ob_store_close (store);
  return 0;
}
