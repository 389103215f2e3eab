/* obuild: command table, global options, printing of errors.  What the
 * commands share lives in cli_common.c, beneath them. */
#include "config.h"
#include "cli.h"
#include "progress.h"
#include <obuild/sandbox.h>
#include <obuild/store.h>
#include <obuild/userns.h>
#include <obuild/util.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct
{
  const char *name;
  int (*fn) (struct cli_global *, int, char **, ob_error_t *);
  const char *help;
} commands[] = {
  { "build", cmd_build, "build an image from a Dockerfile" },
  { "import", cmd_import, "make a one-layer base image from a root filesystem tarball" },
  { "images", cmd_images, "list the images in the store" },
  { "pull", cmd_pull, "pull an image from a registry into the store" },
  { "push", cmd_push, "push an image of the store to a registry" },
  { "login", cmd_login, "store credentials for a registry" },
  { "prune", cmd_prune, "remove what no tag needs (and the cache with --all)" },
  { "inspect", cmd_inspect, "show an image of the store as JSON (or its manifest, config)" },
  { "history", cmd_history, "show the history of an image" },
  { "tag", cmd_tag, "add tags to an image of the store" },
  { "rmi", cmd_rmi, "remove tags, and the blobs nothing else needs" },
  { "logout", cmd_logout, "remove the credentials login stored" },
  { "save", cmd_save, "write images to an oci-archive or docker-archive" },
  { "load", cmd_load, "read images from a docker-archive or oci-archive" },
  { "run", cmd_run, "run a command from an image of the store (in the RUN sandbox)" },
  { "info", cmd_info, "what this machine allows (user namespaces, overlay, ...)" },
};

static void
usage (FILE *f)
{
  fprintf (f, "Usage: obuild [--root DIR] COMMAND [OPTIONS] [ARGS]\n"
              "       obuild [build options] CONTEXT      (short for `obuild build`)\n\n"
              "Commands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf (f, "  %-8s %s\n", commands[i].name, commands[i].help);
  fprintf (f, "\nRun `obuild COMMAND --help` for a command's options; see obuild(1).\n");
}

char **cli_main_argv;

int
main (int argc, char **argv)
{
  struct cli_global g = { 0 };
  ob_error_t err = NULL;
  int i = 1, r;

  cli_main_argv = argv;
  ob_nofile_raise ();

  while (i < argc)
    {
      if (strcmp (argv[i], "--root") == 0 && i + 1 < argc)
        {
          g.root = argv[i + 1];
          i += 2;
        }
      else if (ob_str_has_prefix (argv[i], "--root="))
        g.root = argv[i++] + 7;
      else
        break;
    }
  if (i >= argc)
    {
      usage (stderr);
      return OB_ERR_USAGE;
    }
  if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0 || strcmp (argv[i], "help") == 0)
    {
      usage (stdout);
      return 0;
    }
  if (strcmp (argv[i], "--version") == 0 || strcmp (argv[i], "version") == 0)
    {
      printf ("obuild %s\n", PACKAGE_VERSION);
      return 0;
    }
  for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
    if (strcmp (argv[i], commands[k].name) == 0)
      {
        r = commands[k].fn (&g, argc - i, argv + i, &err);
        goto done;
      }
  if (argv[i][0] != '-' && access (argv[i], F_OK) != 0)
    {
      fprintf (stderr, "obuild: unknown command `%s` (see `obuild --help`)\n", argv[i]);
      return OB_ERR_USAGE;
    }
  /* `obuild -t name:tag .` is `obuild build -t name:tag .` */
  argv[i - 1 < 0 ? 0 : i - 1] = (char *) "build";
  r = cmd_build (&g, argc - i + 1, argv + i - 1, &err);
done:
  if (r < 0)
    {
      int code = err ? err->kind : OB_ERR_GENERIC;
      if (cli_error_reporter) /* --progress=json: the error as an event */
        cli_error_reporter (err ? err->msg : "unknown error", code);
      else
        {
          char *msg = cli_visible (err ? err->msg : "unknown error");
          fprintf (stderr, "obuild: %s\n", msg);
          free (msg);
        }
      ob_error_free (&err);
      return code;
    }
  return r;
}
