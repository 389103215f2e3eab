/* info: what this machine allows obuild to do (`obuild info`) — user
 * namespaces and why not, subordinate id ranges, newuidmap, overlayfs,
 * seccomp user notification, the kernel, the store — probed the way a
 * build uses them, in a child process so the caller is left as it was. */
#ifndef OBUILD_INFO_H
#define OBUILD_INFO_H

#include <obuild/error.h>
#include <obuild/userns.h>

#include <jansson.h>
#include <stdbool.h>

/* An ordered JSON object of facts, each a string (see obuild-info(1) for
 * the keys); "run" is true when RUN steps can be isolated, else "run_problem"
 * says why and what to change.  scratch is a directory on the store's file
 * system for the overlay probe. */
int ob_info_collect (enum ob_userns_mode mode, const char *store_root, const char *scratch, json_t **out,
                     ob_error_t *err);

#endif
