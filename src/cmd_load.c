/* obuild load: images from a docker-archive or oci-archive into the store. */
#include "config.h"
#include "cli.h"
#include <obuild/imagecmd.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <stdio.h>
#include <string.h>

int
cmd_load (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_store *store = NULL;
  cleanup_strv char **loaded = NULL;
  const char *in = NULL;
  int r;

  for (int i = 1; i < argc; i++)
    {
      if ((strcmp (argv[i], "-i") == 0 || strcmp (argv[i], "--input") == 0) && i + 1 < argc)
        in = argv[++i];
      else if (ob_str_has_prefix (argv[i], "--input="))
        in = argv[i] + 8;
      else if (strcmp (argv[i], "--help") == 0)
        {
          printf ("Usage: obuild load -i FILE\n\n"
                  "Add the images of FILE, a docker-archive (what `docker save` writes) or an oci-archive,\n"
                  "to the store with their tags.  Everything is verified first; on any error the store's\n"
                  "tags are unchanged.\n");
          return 0;
        }
      else
        return ob_error_make (err, OB_ERR_USAGE, 0, "load: unexpected argument `%s` (see `obuild load --help`)",
                              argv[i]);
    }
  if (in == NULL)
    return ob_error_make (err, OB_ERR_USAGE, 0, "load: name the archive to read with -i FILE");
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    return -1;
  r = ob_archive_load (store, in, &loaded, err);
  for (size_t i = 0; r == 0 && loaded[i]; i++)
    printf ("Loaded image: %s\n", loaded[i]);
  ob_store_close (store);
  return r;
}
