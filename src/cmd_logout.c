/* obuild logout: remove the credentials obuild login stored. */
#include "config.h"
#include "cli.h"
#include <obuild/registry.h>
#include <obuild/util.h>

#include <stdio.h>
#include <string.h>

int
cmd_logout (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_registry_opts ro;
  const char *registry = NULL;

  (void) g;
  ob_registry_opts_init (&ro);
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--authfile") == 0 && i + 1 < argc)
        ro.auth_file = argv[++i];
      else if (ob_str_has_prefix (argv[i], "--authfile="))
        ro.auth_file = argv[i] + 11;
      else if (strcmp (argv[i], "--help") == 0)
        {
          printf ("Usage: obuild logout [--authfile FILE] REGISTRY\n\n"
                  "Remove the credentials for REGISTRY from the auth files obuild reads (only FILE with\n"
                  "--authfile).\n");
          return 0;
        }
      else if (argv[i][0] == '-')
        return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild logout --help`)", argv[i]);
      else if (registry)
        return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild logout [--authfile FILE] REGISTRY");
      else
        registry = argv[i];
    }
  if (registry == NULL)
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild logout [--authfile FILE] REGISTRY");
  if (ob_registry_logout (&ro, registry, err) < 0)
    return -1;
  fprintf (stderr, "Removed login credentials for %s\n", registry);
  return 0;
}
