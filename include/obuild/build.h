/* build: the executor.  Walks the Dockerfile's stages and instructions,
 * keeps each stage's image config and layers, and writes the final image
 * into the store (and optionally into another OCI layout).  Reports
 * progress through a callback; never prints. */
#ifndef OBUILD_BUILD_H
#define OBUILD_BUILD_H

#include <obuild/error.h>
#include <obuild/image.h>
#include <obuild/layer.h>
#include <obuild/progress.h>
#include <obuild/source.h>
#include <obuild/store.h>

#include <stdbool.h>
#include <stdint.h>

enum
{
  OB_SNAPSHOTTER_AUTO,    /* overlay, else copy */
  OB_SNAPSHOTTER_OVERLAY,
  OB_SNAPSHOTTER_COPY,
};

struct ob_build_opts
{
  struct ob_store *store;
  const char *context_dir;
  /* Dockerfile: path given with -f (relative to the current directory), or
   * NULL to look for Dockerfile then Containerfile in the context.  When
   * dockerfile_text is set it is used instead of reading a file, and
   * dockerfile names it in messages ("-" for standard input). */
  const char *dockerfile;
  const char *dockerfile_text;
  size_t dockerfile_len;
  char **tags;       /* normalised "name:tag", may be NULL */
  char **build_args; /* "K=V", or "K" (value from the environment) */
  char **labels;     /* "K=V" */
  char **annotations; /* "K=V": manifest annotations (--annotation) */
  char **envs;       /* "K=V": image environment (--env) */
  bool squash;       /* the final stage's new layers as one */
  const char *target;
  const char *output_dir; /* also write the image into this OCI layout */
  bool have_epoch;        /* SOURCE_DATE_EPOCH */
  int64_t epoch;
  enum ob_compression compression;
  int compression_level;
  void (*log) (void *data, const char *line);
  void *log_data;
  /* Structured progress (include/obuild/progress.h): when set, the build
   * reports through it instead of log (log still gets the few lines other
   * modules write directly).  With capture_output, each RUN's standard
   * output and error go through a pipe and arrive as OB_EV_OUTPUT events
   * of their step; without it they are the build's own. */
  ob_event_fn event;
  void *event_data;
  bool capture_output;
  /* RUN */
  bool userns_single;   /* single-ID user namespace: emulate root in RUN */
  bool userns_root;     /* real root: each RUN in an identity-mapped user namespace */
  const char *no_isolation; /* RUN cannot be isolated here, and why (NULL: it can) */
  bool container;           /* --isolation=container: RUN in the container's own root */
  char **container_keep;    /* ... paths that must survive it (obuild, store, context, ...) */
  bool network_none;    /* --network=none for every RUN */
  int snapshotter;      /* OB_SNAPSHOTTER_* */
  struct ob_source_opts source; /* --pull, registry options */
  char **secrets;       /* --secret "id=ID[,src=FILE|,env=VAR]" */
  bool no_cache;         /* --no-cache: run every step (results still cached) */
  char **no_cache_filter; /* --no-cache-filter=STAGE */
  int64_t cache_ttl;     /* --cache-ttl, seconds; 0 = forever */
  const char *cache_from; /* --cache-from: OCI layout (oci:DIR[:TAG] or DIR) or registry ref */
  const char *cache_to;
  const char *ssh_sock; /* --ssh default: $SSH_AUTH_SOCK, or NULL */
  const volatile int *interrupted; /* set by the CLI's signal handler */
};

struct ob_build_result
{
  char manifest_digest[72];
  int64_t manifest_size;
  char config_digest[72];
  char **warnings; /* NULL-terminated, e.g. unused build args */
};

/* A --secret value: "id=ID[,src=FILE|,env=VAR][,type=file|env]".  Tells
 * where the secret comes from: exactly one of file and env is set.  The
 * strings point into buf, which the caller frees (also on error).
 * OB_ERR_USAGE for a malformed spec. */
struct ob_secret_spec
{
  char *buf;
  const char *id;
  const char *file;
  const char *env;
};
int ob_build_secret_parse (const char *spec, struct ob_secret_spec *out, ob_error_t *err);

int ob_build_run (const struct ob_build_opts *opts, struct ob_build_result *res, ob_error_t *err);
void ob_build_result_clear (struct ob_build_result *res);

/* --platform with several platforms (build_platforms.c): split the list
 * "os/arch[/variant],..." (OB_ERR_USAGE for a malformed or repeated one). */
int ob_build_platforms_parse (const char *list, char ***out, ob_error_t *err);
/* Build the Dockerfile once per platform (ob_build_run with
 * source.registry.platform set to it), then write an OCI image index listing
 * each manifest with its platform (from its config), tagged with o->tags
 * and written to o->output_dir.  res->manifest_digest is the index's;
 * res->config_digest the first platform's config.  On failure the
 * platforms built so far are not left in the store's index. */
int ob_build_run_platforms (const struct ob_build_opts *o, char *const *platforms, struct ob_build_result *res,
                            ob_error_t *err);

/* Parse "--chmod" values: octal 0-07777.  OB_ERR_DOCKERFILE otherwise. */
int ob_build_parse_chmod (const char *s, mode_t *out, ob_error_t *err);
/* Parse Go durations as HEALTHCHECK takes them ("30s", "1m30s", "500ms"),
 * into nanoseconds. */
int ob_build_parse_duration (const char *s, int64_t *out, ob_error_t *err);
/* Look up a user/group spec "user[:group]" (names or numbers) in the text
 * of an image's /etc/passwd and /etc/group (either may be NULL). */
int ob_build_resolve_owner (const char *spec, const char *passwd, const char *group, uid_t *uid,
                            gid_t *gid, ob_error_t *err);

#endif
