/* Internal to the build module (build.c, build_copy.c). */
#ifndef OBUILD_BUILD_PRIV_H
#define OBUILD_BUILD_PRIV_H

#include <obuild/build.h>
#include <obuild/context.h>
#include <obuild/dockerfile.h>
#include <obuild/cache.h>
#include <obuild/seccomp.h>
#include <obuild/tree.h>
#include <obuild/statmap.h>

struct stage
{
  size_t index;
  char *name;        /* AS name (lower-case) or NULL */
  size_t first, end; /* instructions [first, end) including the FROM */
  bool needed, built;
  json_t *config;
  struct ob_descriptor *layers;
  size_t n_layers;
  int64_t last_precompressed; /* of the layer added last: made ahead */
  char *base_name, *base_digest;
  struct ob_tree *tree; /* built lazily from the layers */
  /* the entries of layers added since the tree was built, applied when a
   * step next needs the tree (a last step's layer never is) */
  struct ob_tree_index **tree_pending;
  size_t n_tree_pending;
  char **arg_keys;      /* ARGs in scope (values may be NULL) */
  char **arg_vals;
  size_t n_args;
  bool cmd_set; /* CMD given in this stage (ENTRYPOINT then keeps it) */
  char **layer_dirs;    /* unpacked form of each layer (lazily), or NULL */
  size_t n_base_layers; /* layers that came with FROM */
  char *copy_rootfs;    /* copy snapshotter: the stage's root, changed in place */
  char cache_key[72];   /* key of the stage's last filesystem state */
  size_t copy_applied;  /* layers already applied to copy_rootfs */
  /* inode and ctime of each entry of copy_rootfs when it last equalled the
   * stage's tree, or NULL (statmap.h): what the next diff compares with */
  struct ob_statmap *copy_seen;
  char **copy_linked; /* files the last diff linked into its upper dir */
  char *rootfs; /* the stage unpacked, for COPY --from (lazily) */
  /* steps that changed the filesystem, found in the cache or executed;
   * a stage made only of hits keeps the time of its cached steps */
  size_t n_hits, n_misses;
  char *hit_created;      /* latest `created` among the hits */
  size_t n_base_history;  /* history entries that came with FROM <image> */
  size_t df_bytes;        /* what the Dockerfile put in it (ob_build_account) */
  json_t *env_index;      /* "KEY" -> position in the config's Env (build.c) */
  json_t *env_indexed;    /* the Env array env_index describes (borrowed) */
  size_t env_indexed_n;   /* its size when env_index was last brought up to date */
  json_t *arg_index;      /* "NAME" -> position of its last ARG in arg_keys */
  bool step_cached;       /* the running step was found in the cache (events) */
  size_t *deps;           /* stages it needs (FROM, COPY --from, RUN --mount from) */
  size_t n_deps;
  bool prebuilt;          /* built by a child process (build_jobs.c): replayed quietly */
};

struct build
{
  const struct ob_build_opts *o;
  struct ob_dockerfile *df;
  char *dfname;
  int ctxfd;
  struct ob_ignore *ig;
  struct ob_txn *txn;
  struct stage *stages;
  size_t n_stages;
  /* the named stages sorted by (lower-case name, index), for
   * ob_build_find_stage: a Dockerfile of 100,000 stages looked each name
   * up among all the stages before it */
  struct stage_name *stage_names;
  size_t n_stage_names;
  char **meta_keys; /* ARGs before the first FROM */
  char **meta_vals;
  size_t n_meta;
  char **warnings; /* about the Dockerfile, handed to the result on success */
  size_t n_warnings; /* appended with ob_build_warn */
  json_t *meta_index;     /* "NAME" -> position of its last global ARG */
  json_t *meta_set_index; /* "NAME" -> ... of its last global ARG with a value */
  size_t expanded;        /* bytes counted by ob_build_account */
  char **used_args;
  char *created;
  size_t step, total_steps;
  unsigned scratch_counter;
  struct ob_layer_opts lopts;
  /* the RUN step's members made ahead, while its layer is committed */
  const struct ob_layer_precomp *precomp;
  struct ob_seccomp_prog *seccomp; /* compiled once, for every RUN */
  bool use_copy; /* the copy snapshotter (chosen, or overlay failed) */
  struct ob_cache *cache;
  char **cache_keys;    /* every key of this build (for --cache-to) */
  size_t n_cache_keys;
  struct stage **image_stages; /* images loaded for COPY --from=<image> */
  size_t n_image_stages;
  char **adopt_dirs; /* step upper dirs to keep as unpacked layers: "diffid\tpath" */
  struct stage *container_stage; /* --isolation=container: whose image "/" holds */
  char **container_keep;         /* ... and the paths never touched there */
  struct stage *cur_stage;       /* the stage being built, for events */
  char **stage_mounts; /* overlays mounted for COPY --from (ob_build_stage_mount) */
  bool quiet;      /* no events or log lines (a prebuilt stage's replay) */
  bool concurrent; /* a child process building a stage beside others */
  bool *dep_closure; /* --jobs: which stage needs which (build_jobs.c) */
};

struct lookup
{
  struct build *b;
  struct stage *s; /* NULL: meta args only (FROM lines) */
};
const char *ob_build_lookup (void *data, const char *name);
/* Value of an ENV of the config, or NULL. */
const char *ob_build_env_get (json_t *config, const char *name);

/* Error helper: "<Dockerfile>:<line>: <message>" for the instruction. */
int ob_build_instr_error (struct build *b, const struct ob_instr *in, ob_error_t *err, int kind,
                          const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));
/* A hostile Dockerfile must not make the build hold gigabytes: the bytes
 * its expansions produce and its instructions add to image configurations
 * (a FROM <stage> copy counted again) are at most this many, in total. */
#define OB_BUILD_MAX_EXPANDED (16 << 20)
/* Count n such bytes for in (s may be NULL); an error naming in's line
 * once the total passes OB_BUILD_MAX_EXPANDED. */
int ob_build_account (struct build *b, struct stage *s, const struct ob_instr *in, size_t n,
                      ob_error_t *err);
int ob_build_word (struct build *b, struct stage *s, const struct ob_instr *in, const char *raw,
                   char **out, ob_error_t *err);

int ob_build_stage_tree (struct build *b, struct stage *s, ob_error_t *err);
/* Forget the stage's tree and the layers pending for it (its layers
 * changed otherwise than by a step's new layer). */
void ob_build_stage_tree_drop (struct stage *s);
int ob_build_read_image_file (struct build *b, struct stage *s, const char *path, char **out,
                              ob_error_t *err);
char *ob_build_scratch_dir (struct build *b, const char *what, ob_error_t *err);
/* Write the upper directory as a new layer of s, with a history entry.
 * upper_path (may be NULL) is kept as the unpacked form of the layer for
 * later RUN steps.  With drop_empty, a change with no entries adds only an
 * empty_layer history entry (as BuildKit does for RUN). */
int ob_build_commit_layer (struct build *b, struct stage *s, int upperfd, const char *upper_path,
                           const char *created_by, bool drop_empty, ob_error_t *err);
/* Give directories that the tree already has their image metadata. */
int ob_build_fix_ancestors (struct build *b, struct stage *s, int upperfd, const char *dir,
                            ob_error_t *err);
/* Absolute path of a (raw, expanded) destination against WORKDIR. */
char *ob_build_abs_path (struct stage *s, const char *p);

/* xattr carrying an owner the user namespace cannot represent ("uid:gid");
 * the layer writer puts it in the tar header and drops the xattr. */
#define OB_OWNER_XATTR OB_LAYER_OWNER_XATTR
int ob_build_record_owner (int dfd, const char *path, uid_t uid, gid_t gid, ob_error_t *err);

int ob_build_run_step (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err);
/* The copy snapshotter (build_copyfs.c). */
int ob_build_copyfs_prepare (struct build *b, struct stage *s, ob_error_t *err);
int ob_build_copyfs_diff (struct build *b, struct stage *s, const char *upper, ob_error_t *err);
/* A layer written from a copy's plan (ob_context_plan), without an
 * unpacked form. */
struct ob_layer_src;
int ob_build_commit_sources (struct build *b, struct stage *s, int srcfd, const struct ob_layer_src *entries,
                             size_t n, const char *created_by, ob_error_t *err);
/* The step's change as a change list read straight from rootfd (no upper
 * directory: --isolation=container, where the root is a container's
 * overlay and building an upper would cost more than the layer). */
struct ob_changes;
int ob_build_copyfs_changes (struct build *b, struct stage *s, int rootfd, struct ob_changes **out, ob_error_t *err);
/* ob_build_commit_layer for a change list (paths relative to upperfd). */
int ob_build_commit_changes (struct build *b, struct stage *s, int upperfd, const struct ob_changes *changes,
                             const char *upper_path, const char *created_by, bool drop_empty, ob_error_t *err);
/* The copy snapshotter's reference for the next diff (statmap.h):
 * recorded by a stat walk when there is none (the root must equal the
 * tree), forgotten when layers are extracted onto the root. */
int ob_build_copyfs_record (struct build *b, struct stage *s, ob_error_t *err);
void ob_build_copyfs_forget (struct stage *s);
/* After the diff's upper directory is gone: record the files it had linked
 * (their ctime moved with the link and the unlink). */
void ob_build_copyfs_settle (struct stage *s);
/* 1 when root holds exactly the stage's tree (stat-level), 0 when not. */
int ob_build_copyfs_unchanged (struct build *b, struct stage *s, const char *root, ob_error_t *err);

/* Load an image into a stage (FROM, COPY --from=<image>). */
void ob_build_stage_clear (struct stage *s);
int ob_build_load_image (struct build *b, struct stage *s, const char *ref, ob_error_t *err);

/* RUN --mount (build_mount.c): turn the step's --mount flags into sandbox
 * mounts.  Paths in *mounts and *cleanup are owned by the returned arrays;
 * ob_build_mounts_release undoes what prepare set up (locks, temporary
 * files) after the step. */
struct ob_build_mounts
{
  struct ob_sandbox_mount *mounts;
  size_t n;
  char **owned;   /* strings the mounts point at */
  int *locks;     /* fds holding sharing=locked cache locks */
  size_t n_locks;
  char **remove;  /* temporary files/dirs to delete afterwards */
  char **env;     /* "K=V" to add to the step's environment (SSH_AUTH_SOCK) */
  char *cache_id; /* identity of the mounts for the cache key (no secrets) */
};
int ob_build_mounts_prepare (struct build *b, struct stage *s, const struct ob_instr *in,
                             const char *rootfs, struct ob_build_mounts *out, ob_error_t *err);
void ob_build_mounts_release (struct ob_build_mounts *m);
/* The raw from= values of in's --mount flags (for the stage planner). */
char **ob_build_mount_froms (const struct ob_instr *in);

/* Build cache.  ob_build_cache_begin starts a step key (parent state +
 * kind); the step adds what defines it (cache_add); ob_build_cache_try
 * applies a hit (layer, history) and returns 1, or returns 0 on a miss;
 * after a miss the step runs and ob_build_cache_done records its result. */
struct ob_sha256 *ob_build_cache_begin (struct build *b, struct stage *s, const char *kind);
void ob_build_cache_add (struct ob_sha256 *h, const char *str);
int ob_build_cache_try (struct build *b, struct stage *s, struct ob_sha256 *h, char key[72],
                        ob_error_t *err);
void ob_build_cache_done (struct build *b, struct stage *s, const char *key, size_t layers_before);

/* --cache-from / --cache-to (build_cache.c) */
int ob_build_cache_import (struct build *b, const char *ref, ob_error_t *err);
int ob_build_cache_export (struct build *b, const char *ref, ob_error_t *err);

/* Add the content of a source (relative to dfd) to a cache key. */
int ob_build_digest_source (struct build *b, int dfd, const struct ob_ignore *ig, const char *rel,
                            bool follow, struct ob_sha256 *h, ob_error_t *err);

/* chown every directory of `dir` in upperfd (owner xattr where the user
 * namespace cannot represent it). */
int ob_build_own_tree (int upperfd, const char *dir, uid_t uid, gid_t gid, ob_error_t *err);

/* --squash: the stage's layers after its base become one. */
int ob_build_squash (struct build *b, struct stage *s, ob_error_t *err);

/* ADD <url> (build_copy.c). */
int ob_build_fetch_url (struct build *b, const char *url, const char *checksum, int dfd, char **name,
                        ob_error_t *err);

int ob_build_copy (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err);
int ob_build_workdir_mkdir (struct build *b, struct stage *s, const char *dir, ob_error_t *err);
struct stage *ob_build_find_stage (struct build *b, const char *name, size_t before);
/* Sort the stages' names for ob_build_find_stage, once every stage is
 * known; warns of a name given again (BuildKit's DuplicateStageName). */
void ob_build_index_stages (struct build *b);
/* Append a warning (taking msg) in O(1). */
void ob_build_warn (struct build *b, char *msg);

/* --isolation=container (build_container.c): make "/" the stage's root
 * (its layers applied, the kept paths untouched); whether a path
 * (relative to "/") is kept (1), on the way to a kept path (2), or not (0). */
int ob_build_container_prepare (struct build *b, struct stage *s, ob_error_t *err);
int ob_build_container_kept (struct build *b, const char *path);
/* What the build kept for --isolation=container, freed at its end. */
void ob_build_container_cleanup (struct build *b);
/* Whether the root still equals the stage's image (1) or not (0); record
 * that it holds the stage's layers (after a RUN step's commit too). */
int ob_build_container_root_matches (struct build *b, struct stage *s, ob_error_t *err);
int ob_build_container_mark (struct build *b, struct stage *s, ob_error_t *err);

/* Progress events (build_events.c); only when o->event is set. */
void ob_build_emit_text (struct build *b, int type, const char *text);
void ob_build_emit_step (struct build *b, struct stage *s, const struct ob_instr *in, int type, int64_t t0,
                         size_t layers_before, bool failed);
/* With o->capture_output: a pipe for the RUN's stdout and stderr (*wfd,
 * -1 without capture) whose lines become OB_EV_OUTPUT events of the step;
 * finish closes *wfd and waits for the reader. */
struct ob_build_output;
int ob_build_output_start (struct build *b, struct stage *s, const struct ob_instr *in,
                           struct ob_build_output **out, int *wfd, ob_error_t *err);
void ob_build_output_finish (struct ob_build_output **c, int *wfd);

/* ---- the module's layers (doc/architecture.md): the scheduler (build.c)
 * calls the step executors, which call the shared state; never upwards ---- */

/* Step executors of FROM and the metadata instructions (build_meta.c). */
int ob_build_from (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err);
/* The base image's ONBUILD triggers (a JSON array, or NULL), removed from
 * the stage's config: the scheduler runs them after FROM. */
json_t *ob_build_take_onbuild (struct stage *s);
int ob_build_kv (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err);
int ob_build_arg (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err);
int ob_build_healthcheck (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err);
int ob_build_meta (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err);
void ob_build_predefine_platform_args (struct build *b);
int ob_build_declare_arg (struct build *b, struct stage *s, const struct ob_instr *in, const struct ob_kv *kv,
                          ob_error_t *err);
bool ob_build_is_proxy_arg (const char *k);

/* The scheduler (build.c, build_jobs.c). */
int ob_build_build_stage (struct build *b, struct stage *s, ob_error_t *err);
/* --jobs: build the stages the target needs, except the target, in child
 * processes, side by side as their dependencies allow; each comes back as
 * staged blobs and cache entries, so that the build's own pass over them
 * finds every step done.  0 when done (or nothing to do side by side). */
int ob_build_jobs_prebuild (struct build *b, size_t target, ob_error_t *err);

/* The final image (build_image.c). */
int ob_build_write_image (struct build *b, struct stage *s, struct ob_build_result *res, ob_error_t *err);

/* Shared state (build_state.c). */
void ob_build_log (struct build *b, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
void ob_build_env_forget (struct stage *s);
const char *ob_build_env_lookup (struct stage *s, const char *key);
void ob_build_env_set (struct stage *s, const char *key, const char *value);
void ob_build_history (struct build *b, struct stage *s, const char *created_by, bool empty);
void ob_build_index_put (json_t **index, const char *name, size_t i);
long ob_build_index_get (json_t *index, const char *name);
const char *ob_build_arg_value (struct build *b, const char *name, bool *found);
void ob_build_arg_mark_used (struct build *b, const char *name);
int ob_build_words (struct build *b, struct stage *s, const struct ob_instr *in, bool split, char ***out,
                    ob_error_t *err);
char *ob_build_clean_abs (const char *p);
void ob_build_stage_add_layer (struct stage *s, const struct ob_descriptor *d);
/* The store's unpacked form of each of the stage's layers (s->layer_dirs). */
int ob_build_ensure_lowers (struct build *b, struct stage *s, ob_error_t *err);
/* A read-only view of the stage (COPY --from): an overlay mount of its
 * unpacked layers, or NULL in *out where none can be had. */
void ob_build_stage_mount (struct build *b, struct stage *s, char **out);
/* Unmount them all (the build's end, a child's end). */
void ob_build_stage_unmount_all (struct build *b);
int ob_build_load_image_platform (struct build *b, struct stage *s, const char *ref, const char *platform,
                                  ob_error_t *err);

#endif
