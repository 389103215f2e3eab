/* userns: enter the build's user namespace (and mount namespace) once, at
 * the start of a build, so every later step — copying with owners, writing
 * layers, mounting overlays — sees container ownership.
 *
 *   subuid mode: container 0 -> the user, 1..N -> the user's /etc/subuid and
 *                /etc/subgid range, written by newuidmap/newgidmap.
 *   single mode: container 0 -> the user only (setgroups denied).
 *   root:        a real root process needs no user namespace (each RUN
 *                step gets one of its own, see sandbox.h).
 *   none:        no namespace at all (chosen, or `auto` where the kernel or
 *                a surrounding container forbids them): builds without RUN
 *                work, owners are recorded as in single mode (layer.h); a
 *                RUN step fails with the reason (ob_userns_no_isolation). */
#ifndef OBUILD_USERNS_H
#define OBUILD_USERNS_H

#include <obuild/error.h>

#include <stdbool.h>
#include <sys/types.h>

enum ob_userns_mode
{
  OB_USERNS_AUTO,
  OB_USERNS_SUBUID,
  OB_USERNS_SINGLE,
  OB_USERNS_NONE,
  OB_USERNS_ROOT, /* result only: ran as real root, no namespace entered */
};

/* Parse "auto" | "subuid" | "single" | "none" (OB_ERR_USAGE otherwise). */
int ob_userns_parse_mode (const char *s, enum ob_userns_mode *out, ob_error_t *err);
const char *ob_userns_mode_name (enum ob_userns_mode m);

/* Find the calling user's range in a subid file ("/etc/subuid" format:
 * name-or-id:start:count).  Returns 1 and fills start/count when found,
 * 0 when not, < 0 on error. */
int ob_userns_find_range (const char *file, const char *user, uid_t id, unsigned long *start,
                          unsigned long *count, ob_error_t *err);

/* Enter the namespaces.  Afterwards the process is uid/gid 0 inside.
 * *result tells the mode actually used.  When user namespaces are not
 * allowed, the error (OB_ERR_USERNS) names the cause and the fix. */
int ob_userns_enter (enum ob_userns_mode mode, enum ob_userns_mode *result, ob_error_t *err);

/* NULL when RUN steps can be isolated after ob_userns_enter; otherwise
 * why not (one line: what the environment refused, and what would work). */
const char *ob_userns_no_isolation (void);

/* Are we inside a container?  Evidence: /.dockerenv, /run/.containerenv,
 * a container runtime in /proc/1/cgroup, or the `container` variable PID 1
 * was started with.  *why (may be NULL) names the evidence found. */
bool ob_userns_in_container (const char **why);

/* Highest container uid that can own a file in the current mode (0 in
 * single mode, the range size in subuid mode, UINT_MAX as root). */
uid_t ob_userns_max_id (void);

#endif
