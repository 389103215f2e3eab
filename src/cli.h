/* The command-line interface: one small file per command.  Only this layer
 * prints, and it maps error kinds to exit codes (see obuild(1)). */
#ifndef OBUILD_CLI_H
#define OBUILD_CLI_H

#include <obuild/error.h>

#include <stdbool.h>
#include <stdint.h>

struct cli_global
{
  const char *root; /* --root, or NULL for the default store */
};

int cmd_build (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_import (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_images (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_pull (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_push (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_prune (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_login (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_inspect (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_history (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_tag (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_rmi (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_logout (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_save (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_load (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_info (struct cli_global *g, int argc, char **argv, ob_error_t *err);
int cmd_run (struct cli_global *g, int argc, char **argv, ob_error_t *err);
/* "true"/"false" (and 1/0, yes/no). */
int cli_parse_bool (const char *s, bool *out, ob_error_t *err);

/* Shared by commands that write to the store: resolve the store root
 * before entering the user namespace (which makes us uid 0), enter it, open
 * the store. */
struct ob_store;
int cli_open_store (struct cli_global *g, const char *userns, bool enter, struct ob_store **out,
                    ob_error_t *err);
/* The user-namespace mode cli_open_store entered ("root", "subuid",
 * "single"), or NULL when it did not enter one. */
const char *cli_userns_mode (void);
/* Did cli_open_store enter that mode? */
bool cli_userns_is (const char *mode);
/* SIGINT/SIGTERM: stop the running step and make the build return. */
void cli_install_signals (void);
extern volatile int cli_interrupted;
/* Push IMAGE (a tag of the store) to DEST (a registry reference,
 * `docker://` optional); pushed receives the manifest digest.  Prints
 * "pushed ..." on stderr when ro->progress is set. */
struct ob_registry_opts;
int cli_push_image (struct ob_store *store, const char *image, const char *dest,
                    const struct ob_registry_opts *ro, char pushed[72], ob_error_t *err);
/* --isolation=container: copy obuild, its shared objects and the CA bundle
 * under store_root and run again from there (never returns on success);
 * in that second run, add the copy to *keep and remove it at exit. */
int cli_relocate (const char *store_root, char ***keep, ob_error_t *err);
/* main's argv, for cli_relocate */
extern char **cli_main_argv;
/* Parse SOURCE_DATE_EPOCH-style integer seconds. */
int cli_parse_epoch (const char *s, int64_t *out, ob_error_t *err);

#endif
