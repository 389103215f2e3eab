/* What the commands share: option values, the store opened in the right
 * user namespace, signal handling.  Called by src/cmd_*.c and obuild.c;
 * calls only the library. */
#include "config.h"
#include "cli.h"
#include "progress.h"
#include <obuild/registry.h>
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

int
cli_parse_bool (const char *s, bool *out, ob_error_t *err)
{
  if (strcmp (s, "true") == 0 || strcmp (s, "1") == 0 || strcmp (s, "yes") == 0)
    *out = true;
  else if (strcmp (s, "false") == 0 || strcmp (s, "0") == 0 || strcmp (s, "no") == 0)
    *out = false;
  else
    return ob_error_make (err, OB_ERR_USAGE, 0, "`%s`: expected true or false", s);
  return 0;
}

int
cli_parse_epoch (const char *s, int64_t *out, ob_error_t *err)
{
  char *end;
  long long v;
  errno = 0;
  v = strtoll (s, &end, 10);
  if (*s == '\0' || *end || errno || v < 0)
    return ob_error_make (err, OB_ERR_USAGE, 0, "invalid timestamp `%s`: expected seconds since the epoch", s);
  *out = v;
  return 0;
}

static const char *entered_mode;
volatile int cli_interrupted;

const char *
cli_userns_mode (void)
{
  return entered_mode;
}

bool
cli_userns_is (const char *mode)
{
  return entered_mode && strcmp (entered_mode, mode) == 0;
}

static void
on_signal (int sig)
{
  (void) sig;
  cli_interrupted = 1;
  ob_sandbox_interrupt ();
}

void
cli_install_signals (void)
{
  struct sigaction sa;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
}

int
cli_open_store (struct cli_global *g, const char *userns, bool enter, struct ob_store **out,
                ob_error_t *err)
{
  cleanup_free char *root = g->root ? ob_xstrdup (g->root) : ob_store_default_root ();
  enum ob_userns_mode mode = OB_USERNS_AUTO, got;
  if (userns == NULL)
    userns = getenv ("OBUILD_USERNS");
  if (userns && *userns && ob_userns_parse_mode (userns, &mode, err) < 0)
    return -1;
  /* The store path is resolved before entering the namespace: inside it we
   * are uid 0 and the default would change. */
  if (root[0] != '/')
    {
      cleanup_free char *cwd = getcwd (NULL, 0);
      char *abs = ob_xasprintf ("%s/%s", cwd ? cwd : ".", root);
      free (root);
      root = abs;
    }
  if (enter)
    {
      if (ob_userns_enter (mode, &got, err) < 0)
        return -1;
      entered_mode = ob_userns_mode_name (got);
    }
  if (ob_store_open (root, out, err) < 0)
    return -1;
  if (entered_mode)
    ob_store_set_layer_mode (*out, entered_mode);
  return 0;
}

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
