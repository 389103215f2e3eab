/* cache: the build cache.  A layer-producing step (COPY, ADD, RUN, WORKDIR
 * that creates its directory) has a key: sha256 over its parent step's key
 * (rooted in the base image's manifest digest), the instruction after
 * expansion, what it can see of the config (environment, ARGs, user,
 * working directory, shell), its mounts' identities and, for COPY/ADD, the
 * content digest of its sources (path, type, mode, size, content, link
 * target, xattrs — never mtimes or owners).  Secrets never enter a key.
 *
 * Entries live in $OBUILD_ROOT/cache/entries/<key hex>, one small JSON file
 * each, written atomically after the build that made them succeeded (so the
 * layer blob is in the store), and checked again when used: a damaged entry
 * or a missing blob is a miss.  File content digests are remembered in a
 * stat-keyed index ($OBUILD_ROOT/cache/files) so a large context is not
 * re-read every build. */
#ifndef OBUILD_CACHE_H
#define OBUILD_CACHE_H

#include <obuild/error.h>

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/stat.h>

struct ob_cache;

struct ob_cache_entry
{
  bool empty;            /* the step changed nothing: no layer */
  char digest[72];       /* layer blob */
  int64_t size;
  char media_type[96];
  char diff_id[72];
  char *created_by;      /* history */
  char *created;
  int64_t stamp;         /* when the entry was written (unix time) */
};

int ob_cache_open (const char *root, struct ob_cache **out, ob_error_t *err);
/* Writes the pending entries and the file index; then frees. */
int ob_cache_close (struct ob_cache *c, bool flush, ob_error_t *err);

/* 1 and *out filled on a hit (entries older than ttl seconds, when ttl > 0,
 * are misses), 0 on a miss.  Entries imported with ob_cache_import are
 * consulted after the local ones. */
int ob_cache_lookup (struct ob_cache *c, const char *key, int64_t ttl, struct ob_cache_entry *out);
void ob_cache_entry_clear (struct ob_cache_entry *e);
/* The entries remembered so far, as "key<TAB>json" lines (to free). */
char **ob_cache_pending (struct ob_cache *c);
/* Take an entry ("key<TAB>json", from ob_cache_pending) that another
 * process of this build recorded (a stage built side by side): written
 * with this cache's, and found by lookups before the store's entries. */
int ob_cache_adopt (struct ob_cache *c, const char *line, ob_error_t *err);
/* Was key adopted from another process of this build? */
bool ob_cache_in_session (struct ob_cache *c, const char *key);
/* Remember an entry, written by ob_cache_close (flush). */
void ob_cache_record (struct ob_cache *c, const char *key, const struct ob_cache_entry *e);

/* Content digest of a regular file, through the stat-keyed index. */
int ob_cache_file_digest (struct ob_cache *c, int dirfd, const char *name, const struct stat *st,
                          char out[72], ob_error_t *err);

/* Exported entries (for --cache-to) as canonical JSON {"key": entry, ...}
 * for the given keys; and the reverse (--cache-from). */
char *ob_cache_export (struct ob_cache *c, char *const *keys);
int ob_cache_import (struct ob_cache *c, const char *json, size_t len, ob_error_t *err);

#endif
