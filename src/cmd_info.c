/* obuild info: what this machine allows, and what obuild will use. */
#include "config.h"
#include "cli.h"
#include <obuild/info.h>
#include <obuild/store.h>
#include <obuild/userns.h>
#include <obuild/util.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
cmd_info (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_store *store = NULL;
  enum ob_userns_mode mode = OB_USERNS_AUTO;
  const char *userns = getenv ("OBUILD_USERNS");
  bool json = false;
  json_t *o = NULL, *v;
  const char *k;
  int r = -1;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--json") == 0 || strcmp (argv[i], "--format=json") == 0)
        json = true;
      else if (ob_str_has_prefix (argv[i], "--userns="))
        userns = argv[i] + 9;
      else if (strcmp (argv[i], "--help") == 0)
        {
          printf ("Usage: obuild info [--userns=MODE] [--json]\n\n"
                  "Show what this machine allows and what obuild will use: kernel, store, subordinate id\n"
                  "ranges, newuidmap, the user-namespace sysctls, the mode builds get, whether RUN steps\n"
                  "can be isolated (and why not), overlayfs.  Exit 0 when RUN can work, 7 otherwise.\n");
          return 0;
        }
      else
        return ob_error_make (err, OB_ERR_USAGE, 0, "info: unexpected argument `%s` (see `obuild info --help`)", argv[i]);
    }
  if (userns && *userns && ob_userns_parse_mode (userns, &mode, err) < 0)
    return -1;
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    return -1;
  if (ob_info_collect (mode, store->root, store->tmp, &o, err) < 0)
    goto out;
  if (json)
    {
      char *text = json_dumps (o, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
      if (text == NULL)
        ob_oom ();
      printf ("%s\n", text);
      free (text);
    }
  else
    json_object_foreach (o, k, v)
      if (json_is_string (v))
        printf ("%s:%*s %s\n", k, (int) (strlen (k) < 45 ? 45 - strlen (k) : 0), "", json_string_value (v));
  if (!json_is_true (json_object_get (o, "run")))
    {
      ob_error_make (err, OB_ERR_USERNS, 0, "RUN steps cannot run here: %s",
                     json_string_value (json_object_get (o, "run_problem")));
      goto out;
    }
  if (!json)
    printf ("RUN:%*s %s\n", 42, "", "can run here");
  r = 0;
out:
  json_decref (o);
  ob_store_close (store);
  return r;
}
