/* obuild inspect: an image of the store as JSON, or one of its blobs. */
#include "config.h"
#include "cli.h"
#include <obuild/imagecmd.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <stdio.h>
#include <string.h>

int
cmd_inspect (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_store *store = NULL;
  const char *image = NULL;
  bool config = false, manifest = false;
  const char *platform = NULL;
  int r = -1;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--config") == 0)
        config = true;
      else if (strcmp (argv[i], "--manifest") == 0 || strcmp (argv[i], "--raw") == 0)
        manifest = true;
      else if (strcmp (argv[i], "--platform") == 0 || ob_str_has_prefix (argv[i], "--platform="))
        {
          cleanup_free char *os = NULL, *arch = NULL, *variant = NULL;
          platform = argv[i][10] == '=' ? argv[i] + 11 : i + 1 < argc ? argv[++i] : NULL;
          if (platform == NULL)
            return ob_error_make (err, OB_ERR_USAGE, 0, "option `--platform` needs a value");
          if (ob_image_platform_parse (platform, &os, &arch, &variant, err) < 0)
            return ob_error_wrap (err, "--platform");
          ob_imagecmd_set_platform (platform);
        }
      else if (strcmp (argv[i], "--help") == 0)
        {
          printf ("Usage: obuild inspect [--platform OS/ARCH[/VARIANT]] [--config | --manifest | --raw] IMAGE\n\n"
                  "Print IMAGE (a tag of the store or a manifest digest) as JSON: its manifest digest and\n"
                  "media type, tags, config, layers with sizes, history.  --config prints the config blob,\n"
                  "--manifest (or --raw) the manifest, byte for byte.  Of a multi-platform image (an index)\n"
                  "the manifest for this machine's platform, or for --platform.\n");
          return 0;
        }
      else if (argv[i][0] == '-' && argv[i][1])
        return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild inspect --help`)", argv[i]);
      else if (image)
        return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild inspect [--config | --manifest | --raw] IMAGE");
      else
        image = argv[i];
    }
  if (image == NULL)
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild inspect [--config | --manifest | --raw] IMAGE");
  if (config && manifest)
    return ob_error_make (err, OB_ERR_USAGE, 0, "inspect: --config and --manifest/--raw exclude each other");
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    return -1;
  if (config || manifest)
    {
      cleanup_free char *data = NULL;
      size_t len;
      if (ob_imagecmd_blob (store->oci, image, config ? OB_IMAGECMD_CONFIG : OB_IMAGECMD_MANIFEST, &data, &len,
                            err) < 0)
        goto out;
      /* as stored: its sha256 is the digest */
      if (fwrite (data, 1, len, stdout) != len || fflush (stdout) != 0)
        {
          ob_error_make (err, OB_ERR_STORE, 0, "write to standard output failed");
          goto out;
        }
    }
  else
    {
      json_t *j = NULL;
      char *text;
      if (ob_imagecmd_inspect (store->oci, image, &j, err) < 0)
        goto out;
      text = json_dumps (j, JSON_INDENT (4) | JSON_PRESERVE_ORDER);
      json_decref (j);
      if (text == NULL)
        ob_oom ();
      printf ("%s\n", text);
      free (text);
    }
  r = 0;
out:
  ob_store_close (store);
  return r;
}
