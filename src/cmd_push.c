/* obuild push: an image of the store to a registry. */
#include "config.h"
#include "cli.h"
#include "progress.h"
#include <obuild/registry.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

int
cli_push_image (struct ob_store *store, const char *image, const char *dest, const struct ob_registry_opts *ro,
                char pushed[72], ob_error_t *err)
{
  struct ob_registry *reg = NULL;
  struct ob_ref *ref = NULL;
  struct ob_descriptor md = { 0 };
  cleanup_free char *local = NULL;
  int r = -1;

  if (ob_str_has_prefix (dest, "docker://"))
    dest += 9;
  if (ob_ref_parse (dest, &ref, err) < 0)
    return -1;
  if (ob_image_ref_normalize (image, &local, err) < 0 || ob_layout_resolve_entry (store->oci, local, &md, err) < 0
      || ob_registry_new (ro, &reg, err) < 0 || ob_registry_push (reg, store->oci, &md, ref, pushed, err) < 0)
    goto out;
  if (ro->event)
    {
      cleanup_free char *line = ob_xasprintf ("pushed %s to %s", local, ref->canonical);
      struct ob_event ev = { .type = OB_EV_LOG, .text = line, .stage = -1 };
      ro->event (ro->event_data, &ev);
    }
  else if (ro->progress)
    fprintf (stderr, "pushed %s to %s\n", local, ref->canonical);
  r = 0;
out:
  ob_descriptor_clear (&md);
  ob_registry_free (reg);
  ob_ref_free (ref);
  return r;
}

enum
{
  P_TLS = 256,
  P_CERT,
  P_AUTH,
  P_DIGESTFILE,
  P_PROGRESS,
  P_HELP,
};

static const struct option push_opts[] = {
  { "tls-verify", required_argument, NULL, P_TLS },
  { "cert-dir", required_argument, NULL, P_CERT },
  { "authfile", required_argument, NULL, P_AUTH },
  { "digestfile", required_argument, NULL, P_DIGESTFILE },
  { "progress", required_argument, NULL, P_PROGRESS },
  { "quiet", no_argument, NULL, 'q' },
  { "help", no_argument, NULL, P_HELP },
  { NULL, 0, NULL, 0 },
};

int
cmd_push (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_registry_opts ro;
  struct ob_store *store = NULL;
  const char *digestfile = NULL, *dest;
  char pushed[72];
  bool quiet = false;
  const char *progress_opt = NULL;
  struct cli_progress *pr = NULL;
  int c, r = -1, mode;

  ob_registry_opts_init (&ro);
  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":q", push_opts, NULL)) != -1)
    switch (c)
      {
      case P_TLS:
        if (cli_parse_bool (optarg, &ro.tls_verify, err) < 0)
          return ob_error_wrap (err, "--tls-verify");
        break;
      case P_CERT:
        ro.cert_dir = optarg;
        break;
      case P_AUTH:
        ro.auth_file = optarg;
        break;
      case P_DIGESTFILE:
        digestfile = optarg;
        break;
      case 'q':
        quiet = true;
        break;
      case P_PROGRESS:
        progress_opt = optarg;
        break;
      case P_HELP:
        printf ("Usage: obuild push [--tls-verify BOOL] [--cert-dir DIR] [--authfile FILE] [--digestfile FILE]\n"
                "                   [--progress auto|plain|tty|quiet|json] [-q] IMAGE [DEST]\n\n"
                "Push IMAGE (a tag of the store) to DEST (a registry reference, `docker://` optional);\n"
                "without DEST, to the registry IMAGE names.\n");
        return 0;
      case ':':
        return ob_error_make (err, OB_ERR_USAGE, 0, "option `%s` needs a value", argv[optind - 1]);
      default:
        return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild push --help`)", argv[optind - 1]);
      }
  if (cli_progress_mode (progress_opt, quiet, &mode, err) < 0)
    return -1;
  if (argc - optind < 1 || argc - optind > 2)
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild push IMAGE [DEST]");
  dest = argc - optind == 2 ? argv[optind + 1] : argv[optind];
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    goto out;
  pr = cli_progress_new (mode);
  ro.event = cli_progress_event;
  ro.event_data = pr;
  if (cli_push_image (store, argv[optind], dest, &ro, pushed, err) < 0)
    goto out;
  if (digestfile && ob_write_file_atomic_at (AT_FDCWD, digestfile, pushed, strlen (pushed), 0644, err) < 0)
    goto out;
  cli_progress_pause (pr);
  printf ("%s\n", pushed);
  cli_progress_resume (pr);
  r = 0;
out:
  cli_progress_finish (pr, r == 0 ? pushed : NULL);
  ob_store_close (store);
  return r;
}
