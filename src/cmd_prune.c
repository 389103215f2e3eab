/* obuild prune: free what no tag needs. */
#include "config.h"
#include "cli.h"
#include <obuild/prune.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <stdio.h>
#include <string.h>

static void
report (void *data, const char *what, const char *name, int64_t bytes)
{
  bool dry = *(bool *) data;
  printf ("%s %s %s (%.1f MiB)\n", dry ? "would remove" : "removed", what, name, bytes / 1048576.0);
}

int
cmd_prune (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_prune_opts o = { 0 };
  struct ob_prune_result res;
  struct ob_store *store = NULL;
  const char *userns = NULL;
  int r;
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--all") == 0 || strcmp (argv[i], "-a") == 0)
        o.all = true;
      else if (strcmp (argv[i], "--dry-run") == 0 || strcmp (argv[i], "-n") == 0)
        o.dry_run = true;
      else if (ob_str_has_prefix (argv[i], "--userns="))
        userns = argv[i] + 9;
      else if (strcmp (argv[i], "--help") == 0)
        {
          printf ("Usage: obuild prune [--all] [--dry-run]\n\nRemove blobs no tag references, unpacked layers "
                  "of no tagged image, and with --all the build cache. Tagged images are never touched.\n");
          return 0;
        }
      else
        return ob_error_make (err, OB_ERR_USAGE, 0, "prune: unexpected argument `%s`", argv[i]);
    }
  o.report = report;
  o.report_data = &o.dry_run;
  /* unpacked layers belong to the user namespace that made them */
  if (cli_open_store (g, userns, true, &store, err) < 0)
    return -1;
  r = ob_prune (store, &o, &res, err);
  if (r == 0)
    printf ("%s %zu blobs, %zu layer directories, %zu cache entries: %.1f MiB\n", o.dry_run ? "would free" : "freed",
            res.blobs, res.layer_dirs, res.cache_entries, res.bytes / 1048576.0);
  ob_store_close (store);
  return r;
}
