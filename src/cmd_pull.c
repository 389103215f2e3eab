/* obuild pull: a registry image into the store, without building. */
#include "config.h"
#include "cli.h"
#include "progress.h"
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
  P_PROGRESS,
  P_HELP,
};

static const struct option pull_opts[] = {
  { "platform", required_argument, NULL, P_PLATFORM },
  { "tls-verify", required_argument, NULL, P_TLS },
  { "cert-dir", required_argument, NULL, P_CERT },
  { "authfile", required_argument, NULL, P_AUTH },
  { "quiet", no_argument, NULL, 'q' },
  { "progress", required_argument, NULL, P_PROGRESS },
  { "help", no_argument, NULL, P_HELP },
  { NULL, 0, NULL, 0 },
};

int
cmd_pull (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_source_opts so = { .pull = OB_PULL_ALWAYS };
  struct ob_source src;
  struct ob_store *store = NULL;
  bool quiet = false;
  const char *progress_opt = NULL;
  struct cli_progress *pr;
  int c, mode;

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
      case P_PROGRESS:
        progress_opt = optarg;
        break;
      case P_HELP:
        printf ("Usage: obuild pull [--platform OS/ARCH] [--tls-verify BOOL] [--cert-dir DIR] [--authfile FILE]\n"
                "                   [--progress auto|plain|tty|quiet|json] [-q] IMAGE\n");
        return 0;
      case ':':
        return ob_error_make (err, OB_ERR_USAGE, 0, "option `%s` needs a value", argv[optind - 1]);
      default:
        return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild pull --help`)", argv[optind - 1]);
      }
  if (cli_progress_mode (progress_opt, quiet, &mode, err) < 0)
    return -1;
  if (mode == CLI_PROGRESS_QUIET)
    quiet = true;
  if (argc - optind != 1)
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild pull IMAGE");
  if (cli_open_store (g, NULL, false, &store, err) < 0)
    return -1;
  pr = cli_progress_new (mode);
  so.registry.event = cli_progress_event;
  so.registry.event_data = pr;
  if (ob_source_pull (store, argv[optind], &so, &src, err) < 0)
    {
      cli_progress_finish (pr, NULL);
      ob_store_close (store);
      return -1;
    }
  cli_progress_pause (pr);
  printf ("%s\n", src.manifest.digest);
  if (!quiet)
    printf ("oci:%s:%s\n", ob_layout_path (store->oci), src.name);
  cli_progress_resume (pr);
  cli_progress_finish (pr, src.manifest.digest);
  ob_source_clear (&src);
  ob_store_close (store);
  return 0;
}
