/* obuild login: store registry credentials in the auth file. */
#include "config.h"
#include "cli.h"
#include <obuild/registry.h>
#include <obuild/util.h>

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct option login_opts[] = {
  { "username", required_argument, NULL, 'u' },
  { "password", required_argument, NULL, 'p' },
  { "password-stdin", no_argument, NULL, 's' },
  { "authfile", required_argument, NULL, 'a' },
  { "tls-verify", required_argument, NULL, 't' },
  { "cert-dir", required_argument, NULL, 'c' },
  { "no-check", no_argument, NULL, 'n' },
  { "help", no_argument, NULL, 'h' },
  { NULL, 0, NULL, 0 },
};

int
cmd_login (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_registry_opts ro;
  const char *user = NULL, *password = NULL;
  cleanup_free char *stdin_pw = NULL;
  bool from_stdin = false, check = true;
  int c;

  (void) g;
  ob_registry_opts_init (&ro);
  optind = 1;
  opterr = 0;
  while ((c = getopt_long (argc, argv, ":u:p:", login_opts, NULL)) != -1)
    switch (c)
      {
      case 'u':
        user = optarg;
        break;
      case 'p':
        password = optarg;
        break;
      case 's':
        from_stdin = true;
        break;
      case 'a':
        ro.auth_file = optarg;
        break;
      case 't':
        if (cli_parse_bool (optarg, &ro.tls_verify, err) < 0)
          return ob_error_wrap (err, "--tls-verify");
        break;
      case 'c':
        ro.cert_dir = optarg;
        break;
      case 'n':
        check = false;
        break;
      case 'h':
        printf ("Usage: obuild login -u USER (-p PASSWORD | --password-stdin) [--authfile FILE]\n"
                "                    [--tls-verify BOOL] [--cert-dir DIR] [--no-check] REGISTRY\n\n"
                "Check the credentials against the registry (unless --no-check), then store them.\n");
        return 0;
      case ':':
        return ob_error_make (err, OB_ERR_USAGE, 0, "option `%s` needs a value", argv[optind - 1]);
      default:
        return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild login --help`)", argv[optind - 1]);
      }
  if (argc - optind != 1 || user == NULL || (password == NULL && !from_stdin))
    return ob_error_make (err, OB_ERR_USAGE, 0, "usage: obuild login -u USER (-p PASSWORD | --password-stdin) REGISTRY");
  if (from_stdin)
    {
      size_t len;
      if (ob_read_fd (0, &stdin_pw, &len, err) < 0)
        return -1;
      while (len > 0 && (stdin_pw[len - 1] == '\n' || stdin_pw[len - 1] == '\r'))
        stdin_pw[--len] = '\0';
      password = stdin_pw;
    }
  if (check && ob_registry_check_login (&ro, argv[optind], user, password, err) < 0)
    return ob_error_wrap (err, "login %s (nothing stored)", argv[optind]);
  if (ob_registry_login (&ro, argv[optind], user, password, err) < 0)
    return -1;
  fprintf (stderr, "Login Succeeded (credentials %sstored for %s)\n", check ? "checked and " : "", argv[optind]);
  return 0;
}
