/* prune: remove what no tag needs — unreferenced blobs, unpacked layer
 * directories of no tagged image, and (with all) the build cache.  What a
 * tag references (its manifest, config, layers, their unpacked form) is
 * never removed; blobs written in the last minute are left alone, since a
 * build may be between storing them and tagging them. */
#ifndef OBUILD_PRUNE_H
#define OBUILD_PRUNE_H

#include <obuild/error.h>
#include <obuild/store.h>

#include <stdbool.h>
#include <stdint.h>

struct ob_prune_opts
{
  bool all;     /* also the build cache (entries, cache mounts) */
  bool dry_run; /* report, remove nothing */
  void (*report) (void *data, const char *what, const char *name, int64_t bytes);
  void *report_data;
  /* rmi: only blobs these manifests (or indexes) reach are candidates,
   * without the grace period; unpacked layers and the cache are left to a
   * plain prune.  NULL-terminated, or NULL for a whole prune. */
  char *const *roots;
};

struct ob_prune_result
{
  size_t blobs, layer_dirs, cache_entries;
  int64_t bytes;
};

int ob_prune (struct ob_store *s, const struct ob_prune_opts *o, struct ob_prune_result *res,
              ob_error_t *err);

#endif
