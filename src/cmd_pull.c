/* obuild pull: a registry image into the store, without building. */
#include "config.h"
#include "cli.h"
#include <obuild/source.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include <getopt.h>
#include <stdio.h>
#include <string.h>

enum
{
  P_PLATFORM = 256,
  P_TLS,
  P_CERT,
  P_AUTH,
  P_HELP,
};

static const struct option pull_opts[] = {
  { "platform", required_argument, NULL, P_PLATFORM },
  { "tls-verify", required_argument, NULL, P_TLS },
  { "cert-dir", required_argument, NULL, P_CERT },
  { "authfile", required_argument, NULL, P_AUTH },
  { "quiet", no_argument, NULL, 'q' },
  { "help", no_argument, NULL, P_HELP },
  { NULL, 0, NULL, 0 },
};

static void
progress (void *data, const char *line)
{
  if (!*(bool *) data)
    fprintf (stderr, "%s\n", line);
}

int
cmd_pull (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_source_opts so = { .pull = OB_PULL_ALWAYS };
  struct ob_source src;
  struct ob_store *store = NULL;
  bool quiet = false;
  int c;

  ob_registry_opts_init (&so.registry);
  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":q", pull_opts, NULL)) != -1)
    switch (c)
      {
      case P_PLATFORM:
        so.registry.platform = optarg;
        break;
      case P_TLS:
        if (cli_parse_bool (optarg, &so.registry.tls_verify, err) < 0)
          return ob_error_wrap (err, "--tls-verify");
        break;
      case P_CERT:
        so.registry.cert_dir = optarg;
        break;
      case P_AUTH:
        so.registry.auth_file = optarg;
        break;
      case 'q':
        quiet = true;
        break;
      case P_HELP:
        printf ("Usage: obuild pull [--platform OS/ARCH] [--tls-verify BOOL] [--cert-dir DIR] [--authfile FILE] [-q] IMAGE\n");
        return 0;
      case ':':
        return ob_error_make (err, OB_ERR_USAGE, 0, "option `%s` needs a value", argv[optind - 1]);
      default:
        return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild pull --help`)", argv[optind - 1]);
      }
  if (argc - optind != 1)
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild pull IMAGE");
  so.registry.progress = progress;
  so.registry.progress_data = &quiet;
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    return -1;
  if (ob_source_pull (store, argv[optind], &so, &src, err) < 0)
    {
      ob_store_close (store);
      return -1;
    }
  printf ("%s\n", src.manifest.digest);
  if (!quiet)
    printf ("oci:%s:%s\n", ob_layout_path (store->oci), src.name);
  ob_source_clear (&src);
  ob_store_close (store);
  return 0;
}
