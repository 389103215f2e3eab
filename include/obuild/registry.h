/* registry: a client of the OCI distribution API (and Docker Registry v2) on
 * libcurl.  Pulls manifests and blobs into an OCI layout transaction, every
 * byte verified against its digest; pushes an image from a layout.
 *
 * References follow Docker's normalisation: "debian" ->
 * docker.io/library/debian:latest, "name:tag@sha256:..." pins the digest,
 * "localhost:5000/x" and "127.0.0.1:5000/x" are registries. */
#ifndef OBUILD_REGISTRY_H
#define OBUILD_REGISTRY_H

#include <obuild/error.h>
#include <obuild/image.h>
#include <obuild/progress.h>
#include <obuild/store.h>

#include <stdbool.h>

struct ob_ref
{
  char *registry;   /* "registry-1.docker.io" for docker.io, else host[:port] */
  char *repository; /* "library/debian" */
  char *tag;        /* NULL when only a digest is given */
  char *digest;     /* NULL unless pinned */
  char *canonical;  /* "docker.io/library/debian:latest" (for messages, annotations) */
};

/* Parse and normalise a reference (OB_ERR_USAGE on bad input). */
int ob_ref_parse (const char *s, struct ob_ref **out, ob_error_t *err);
void ob_ref_free (struct ob_ref *r);

struct ob_registry_opts
{
  bool tls_verify;        /* default true; plain HTTP is always allowed for
                             localhost / 127.0.0.0/8 / ::1 as Docker does */
  const char *cert_dir;   /* *.crt CA files, client.cert/client.key (buildah's --cert-dir) */
  const char *auth_file;  /* explicit auth.json; else $REGISTRY_AUTH_FILE,
                             ${XDG_RUNTIME_DIR}/containers/auth.json,
                             ~/.docker/config.json */
  const char *platform;   /* "os/arch[/variant]", NULL: the host's */
  void (*progress) (void *data, const char *line);
  void *progress_data;
  /* Structured events (OB_EV_LOG lines and OB_EV_TRANSFER per blob); when
   * set, used instead of progress.  Called from the transfer threads, one
   * call at a time. */
  ob_event_fn event;
  void *event_data;
};

/* Fill opts with the defaults (tls_verify true, everything else unset). */
void ob_registry_opts_init (struct ob_registry_opts *opts);

/* Open libcurl now (it is opened when first needed, curl_lazy.c): for
 * --isolation=container, before the root file system that holds it is
 * replaced by an image's, whose libraries obuild must never load.  Once per
 * process; a failure is final (later registry calls report it). */
int ob_registry_load_libcurl (ob_error_t *err);

struct ob_registry; /* a connection context: curl share, token cache */
int ob_registry_new (const struct ob_registry_opts *opts, struct ob_registry **out, ob_error_t *err);
void ob_registry_free (struct ob_registry *r);

/* Pull ref into the transaction t (blobs staged, verified: manifest and
 * config by digest, each layer blob by digest and size).  When the
 * reference names an index or a Docker manifest list, the entry for the
 * platform is chosen (a missing platform is an OB_ERR_REGISTRY error
 * listing the platforms there are).  Docker schema2 manifests are kept as
 * they are (their digest is what the registry serves); schema1 refused.
 * Fills *manifest with the descriptor of the image manifest stored.
 * Errors: OB_ERR_REGISTRY (unreachable, refused, not found, auth), OB_ERR_IMAGE
 * (digest mismatch, malformed documents). */
int ob_registry_pull (struct ob_registry *r, const struct ob_ref *ref, struct ob_txn *t,
                      struct ob_descriptor *manifest, ob_error_t *err);

/* Push the image whose manifest is `manifest` in layout src to ref:
 * blobs the registry has are skipped (HEAD), others uploaded (POST +
 * monolithic PUT streamed from the layout, or a cross-repository mount from
 * the base image's repository when it is on the same registry),
 * up to 3 at a time, then the manifest PUT by tag (by digest when ref has
 * no tag) with its mediaType as Content-Type.  Fills the digest the
 * registry reports (must equal manifest->digest).  An index is pushed
 * whole: each manifest it lists (by digest, with its blobs), then the
 * index by tag. */
int ob_registry_push (struct ob_registry *r, struct ob_layout *src,
                      const struct ob_descriptor *manifest, const struct ob_ref *ref,
                      char pushed_digest[72], ob_error_t *err);

/* Try credentials against a registry (GET /v2/ with them, through its token
 * server when it has one): 0 when accepted; OB_ERR_REGISTRY when refused
 * (401/403) or unreachable. */
int ob_registry_check_login (const struct ob_registry_opts *opts, const char *registry,
                             const char *user, const char *password, ob_error_t *err);
/* Remove the credentials for registry from the auth files (obuild logout):
 * OB_ERR_REGISTRY `not logged into REGISTRY` when none has them. */
int ob_registry_logout (const struct ob_registry_opts *opts, const char *registry, ob_error_t *err);
/* Store credentials for a registry in the auth file (obuild login). */
int ob_registry_login (const struct ob_registry_opts *opts, const char *registry,
                       const char *user, const char *password, ob_error_t *err);

/* ---- exposed for tests and for the CLI ---- */

/* One WWW-Authenticate challenge. */
enum ob_auth_scheme
{
  OB_AUTH_NONE = 0,
  OB_AUTH_BASIC,
  OB_AUTH_BEARER,
};
struct ob_auth_challenge
{
  int scheme; /* enum ob_auth_scheme */
  char *realm;
  char *service; /* Bearer only, may be NULL */
  char *scope;   /* Bearer only, may be NULL */
};
/* Parse a WWW-Authenticate header value ("Bearer realm=\"...\",service=...",
 * "Basic realm=..."); with several challenges the first Bearer one wins.
 * OB_ERR_REGISTRY on an unknown scheme or a malformed header. */
int ob_registry_parse_challenge (const char *header, struct ob_auth_challenge *c,
                                 ob_error_t *err);
void ob_auth_challenge_clear (struct ob_auth_challenge *c);

/* Look the credentials for registry (host[:port]; docker.io and its aliases
 * are one registry) up in the auth files, in the order documented above.
 * Returns 1 and fills user/password (caller frees), 0 when there are none,
 * < 0 on an unreadable or malformed file. */
int ob_registry_find_credentials (const struct ob_registry_opts *opts, const char *registry,
                                  char **user, char **password, ob_error_t *err);

#endif
