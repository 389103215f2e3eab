#include "config.h"
#include <obuild/layer.h>
#include <obuild/userns.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static uid_t max_id = (uid_t) -1;
static char *no_isolation; /* why RUN cannot be isolated, or NULL */

const char *
ob_userns_no_isolation (void)
{
  return no_isolation;
}

bool
ob_userns_in_container (const char **why)
{
  static const char *const runtimes[] = { "docker", "kubepods", "containerd", "libpod", "lxc", "crio" };
  cleanup_free char *cg = NULL;
  cleanup_free char *env = NULL;
  size_t len = 0;
  ob_error_t e = NULL;
  const char *dummy;

  if (why == NULL)
    why = &dummy;
  if (access ("/.dockerenv", F_OK) == 0)
    return *why = "/.dockerenv", true;
  if (access ("/run/.containerenv", F_OK) == 0)
    return *why = "/run/.containerenv", true;
  if (ob_read_file_at (AT_FDCWD, "/proc/1/cgroup", &cg, &len, &e) == 0)
    for (size_t i = 0; i < sizeof runtimes / sizeof runtimes[0]; i++)
      if (strstr (cg, runtimes[i]))
        return *why = "/proc/1/cgroup", true;
  ob_error_free (&e);
  if (ob_read_file_at (AT_FDCWD, "/proc/1/environ", &env, &len, &e) == 0)
    for (size_t i = 0; i < len; i += strlen (env + i) + 1)
      if (ob_str_has_prefix (env + i, "container="))
        return *why = "container= in PID 1's environment", true;
  ob_error_free (&e);
  return false;
}

/* No namespace: what works without one works; RUN reports why. */
static void
enter_none (const char *why, enum ob_userns_mode *result)
{
  free (no_isolation);
  no_isolation = ob_xstrdup (why);
  max_id = 0;
  ob_layer_set_owners_unmapped (true);
  *result = OB_USERNS_NONE;
}

uid_t
ob_userns_max_id (void)
{
  return max_id;
}

int
ob_userns_parse_mode (const char *s, enum ob_userns_mode *out, ob_error_t *err)
{
  if (strcmp (s, "auto") == 0)
    *out = OB_USERNS_AUTO;
  else if (strcmp (s, "subuid") == 0)
    *out = OB_USERNS_SUBUID;
  else if (strcmp (s, "single") == 0)
    *out = OB_USERNS_SINGLE;
  else if (strcmp (s, "none") == 0)
    *out = OB_USERNS_NONE;
  else
    return ob_error_make (err, OB_ERR_USAGE, 0, "invalid --userns `%s`: expected auto, subuid, single or none", s);
  return 0;
}

const char *
ob_userns_mode_name (enum ob_userns_mode m)
{
  switch (m)
    {
    case OB_USERNS_AUTO:
      return "auto";
    case OB_USERNS_SUBUID:
      return "subuid";
    case OB_USERNS_SINGLE:
      return "single";
    case OB_USERNS_NONE:
      return "none";
    case OB_USERNS_ROOT:
      return "root";
    }
  return "?";
}

int
ob_userns_find_range (const char *file, const char *user, uid_t id, unsigned long *start,
                      unsigned long *count, ob_error_t *err)
{
  cleanup_file FILE *f = fopen (file, "re");
  char line[1024];
  char idstr[32];
  if (f == NULL)
    return errno == ENOENT ? 0 : ob_error_make (err, OB_ERR_USERNS, errno, "open `%s`", file);
  snprintf (idstr, sizeof idstr, "%u", (unsigned) id);
  while (fgets (line, sizeof line, f))
    {
      char *a = strtok (line, ":\n");
      char *b = strtok (NULL, ":\n");
      char *c = strtok (NULL, ":\n");
      if (a == NULL || b == NULL || c == NULL)
        continue;
      if ((user && strcmp (a, user) == 0) || strcmp (a, idstr) == 0)
        {
          *start = strtoul (b, NULL, 10);
          *count = strtoul (c, NULL, 10);
          if (*count > 0)
            return 1;
        }
    }
  return 0;
}

static int
write_proc (const char *path, const char *text, ob_error_t *err)
{
  cleanup_close int fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return ob_error_make (err, OB_ERR_USERNS, errno, "open `%s`", path);
  if (write (fd, text, strlen (text)) < 0)
    return ob_error_make (err, OB_ERR_USERNS, errno, "write `%s`", path);
  return 0;
}

static int
unshare_error (int e, ob_error_t *err)
{
  cleanup_free char *max = NULL;
  size_t len;
  ob_error_t ignored = NULL;
  if (ob_read_file_at (AT_FDCWD, "/proc/sys/user/max_user_namespaces", &max, &len, &ignored) == 0
      && atoi (max) == 0)
    {
      ob_error_free (&ignored);
      return ob_error_make (err, OB_ERR_USERNS, 0,
                            "user namespaces are disabled (user.max_user_namespaces=0); enable "
                            "them with `sysctl -w user.max_user_namespaces=15000`");
    }
  ob_error_free (&ignored);
  free (max);
  max = NULL;
  if (ob_read_file_at (AT_FDCWD, "/proc/sys/kernel/unprivileged_userns_clone", &max, &len, &ignored) == 0
      && atoi (max) == 0)
    {
      ob_error_free (&ignored);
      return ob_error_make (err, OB_ERR_USERNS, 0,
                            "unprivileged user namespaces are disabled "
                            "(kernel.unprivileged_userns_clone=0); enable them with "
                            "`sysctl -w kernel.unprivileged_userns_clone=1`");
    }
  ob_error_free (&ignored);
  free (max);
  max = NULL;
  if (ob_read_file_at (AT_FDCWD, "/proc/sys/kernel/apparmor_restrict_unprivileged_userns", &max, &len,
                       &ignored)
          == 0
      && atoi (max) == 1)
    {
      ob_error_free (&ignored);
      return ob_error_make (err, OB_ERR_USERNS, 0,
                            "AppArmor restricts unprivileged user namespaces "
                            "(kernel.apparmor_restrict_unprivileged_userns=1); allow obuild with an "
                            "AppArmor profile granting `userns,` or set the sysctl to 0");
    }
  ob_error_free (&ignored);
  return ob_error_make (err, OB_ERR_USERNS, e,
                        "cannot create a user namespace (a seccomp policy or a surrounding "
                        "container may forbid it; run obuild where unshare(CLONE_NEWUSER) is allowed)");
}

/* unshare(CLONE_NEWUSER) failed (nothing changed yet).  With `auto`, go
 * on without a namespace: builds without RUN need none, and a RUN step
 * fails with this reason. */
static int
unshare_fallback (enum ob_userns_mode mode, int e, enum ob_userns_mode *result, ob_error_t *err)
{
  ob_error_t why = NULL;
  cleanup_free char *msg = NULL;
  unshare_error (e, &why);
  if (mode != OB_USERNS_AUTO)
    {
      *err = why;
      return -1;
    }
  msg = ob_xasprintf ("RUN needs a user namespace: %s; builds without RUN work here", why->msg);
  ob_error_free (&why);
  enter_none (msg, result);
  return 0;
}

/* Run newuidmap/newgidmap for pid with "0 id 1 1 start count". */
static int
run_idmap (const char *tool, pid_t pid, unsigned id, unsigned long start, unsigned long count,
           ob_error_t *err)
{
  char spid[32], sid[32], sstart[32], scount[32];
  int status;
  pid_t c;
  snprintf (spid, sizeof spid, "%d", (int) pid);
  snprintf (sid, sizeof sid, "%u", id);
  snprintf (sstart, sizeof sstart, "%lu", start);
  snprintf (scount, sizeof scount, "%lu", count);
  c = fork ();
  if (c < 0)
    return ob_error_make (err, OB_ERR_USERNS, errno, "fork");
  if (c == 0)
    {
      int devnull = open ("/dev/null", O_WRONLY);
      if (devnull >= 0)
        dup2 (devnull, 1);
      ob_nofile_restore ();
      execlp (tool, tool, spid, "0", sid, "1", "1", sstart, scount, (char *) NULL);
      _exit (127);
    }
  while (waitpid (c, &status, 0) < 0)
    if (errno != EINTR)
      return ob_error_make (err, OB_ERR_USERNS, errno, "waitpid");
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return ob_error_make (err, OB_ERR_USERNS, 0, "%s failed (exit status %d)", tool,
                          WIFEXITED (status) ? WEXITSTATUS (status) : -1);
  return 0;
}

int
ob_userns_enter (enum ob_userns_mode mode, enum ob_userns_mode *result, ob_error_t *err)
{
  uid_t uid = getuid ();
  gid_t gid = getgid ();
  struct passwd *pw;
  unsigned long us = 0, uc = 0, gs = 0, gc = 0;
  bool have_ranges = false;
  char buf[128];

  if (geteuid () == 0)
    {
      /* Real root: no user namespace, only a private mount namespace —
       * private for real: on a host whose / is shared, the build's mounts
       * must not propagate back. */
      *result = OB_USERNS_ROOT;
      max_id = (uid_t) -1;
      if (mode == OB_USERNS_NONE)
        {
          free (no_isolation);
          no_isolation = ob_xstrdup ("--userns=none: RUN steps need a namespace");
          return 0;
        }
      if (unshare (CLONE_NEWNS) < 0)
        {
          /* A container without CAP_SYS_ADMIN (Docker's defaults): files
           * keep their owners as root may set them, RUN cannot run. */
          if (errno != EPERM || (mode != OB_USERNS_AUTO && mode != OB_USERNS_NONE))
            return ob_error_make (err, OB_ERR_USERNS, errno, "unshare(CLONE_NEWNS)");
          free (no_isolation);
          no_isolation = ob_xstrdup ("RUN needs mount namespaces, and this environment refuses them to root "
                                     "(unshare(CLONE_NEWNS): Operation not permitted: a container without "
                                     "CAP_SYS_ADMIN?); builds without RUN work here");
          return 0;
        }
      if (mount ("none", "/", "none", MS_REC | MS_SLAVE, NULL) < 0)
        return ob_error_make (err, OB_ERR_USERNS, errno, "make the mount namespace private");
      return 0;
    }
  if (mode == OB_USERNS_NONE)
    {
      enter_none ("--userns=none: RUN steps need a user namespace", result);
      return 0;
    }

  if (mode != OB_USERNS_SINGLE)
    {
      int r1, r2;
      pw = getpwuid (uid);
      r1 = ob_userns_find_range ("/etc/subuid", pw ? pw->pw_name : NULL, uid, &us, &uc, err);
      if (r1 < 0)
        return -1;
      pw = getpwuid (uid);
      r2 = ob_userns_find_range ("/etc/subgid", pw ? pw->pw_name : NULL, uid, &gs, &gc, err);
      if (r2 < 0)
        return -1;
      have_ranges = r1 == 1 && r2 == 1 && access ("/usr/bin/newuidmap", X_OK) == 0
                    && access ("/usr/bin/newgidmap", X_OK) == 0;
      if (!have_ranges && mode == OB_USERNS_SUBUID)
        return ob_error_make (err, OB_ERR_USERNS, 0,
                              "--userns=subuid: no /etc/subuid and /etc/subgid range for uid %u, "
                              "or newuidmap/newgidmap missing (Debian package uidmap); add one "
                              "with `usermod --add-subuids 100000-165535 --add-subgids "
                              "100000-165535 USER`",
                              (unsigned) uid);
    }

  if (have_ranges)
    {
      /* newuidmap must write our maps from outside: a child waits until we
       * have unshared, then runs the tools on our pid. */
      int p[2];
      pid_t parent = getpid (), child;
      int status;
      char c = 0;
      if (pipe2 (p, O_CLOEXEC) < 0)
        return ob_error_make (err, OB_ERR_USERNS, errno, "pipe");
      child = fork ();
      if (child < 0)
        return ob_error_make (err, OB_ERR_USERNS, errno, "fork");
      if (child == 0)
        {
          ob_error_t e = NULL;
          close (p[1]);
          if (read (p[0], &c, 1) != 1 || c != 'u')
            _exit (2);
          if (run_idmap ("newuidmap", parent, uid, us, uc, &e) < 0
              || run_idmap ("newgidmap", parent, gid, gs, gc, &e) < 0)
            _exit (3);
          _exit (0);
        }
      close (p[0]);
      if (unshare (CLONE_NEWUSER) < 0)
        {
          int e = errno;
          close (p[1]);
          waitpid (child, &status, 0);
          return unshare_fallback (mode, e, result, err);
        }
      c = 'u';
      if (write (p[1], &c, 1) != 1)
        {
          close (p[1]);
          return ob_error_make (err, OB_ERR_USERNS, errno, "signal id-map helper");
        }
      close (p[1]);
      while (waitpid (child, &status, 0) < 0)
        if (errno != EINTR)
          return ob_error_make (err, OB_ERR_USERNS, errno, "waitpid");
      if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        return ob_error_make (err, OB_ERR_USERNS, 0,
                              "newuidmap/newgidmap could not map the subuid range %lu:%lu for uid %u",
                              us, uc, (unsigned) uid);
      *result = OB_USERNS_SUBUID;
      max_id = (uid_t) (uc < gc ? uc : gc);
    }
  else
    {
      if (unshare (CLONE_NEWUSER) < 0)
        return unshare_fallback (mode, errno, result, err);
      snprintf (buf, sizeof buf, "0 %u 1\n", (unsigned) uid);
      if (write_proc ("/proc/self/uid_map", buf, err) < 0)
        return -1;
      if (write_proc ("/proc/self/setgroups", "deny", err) < 0)
        return -1;
      snprintf (buf, sizeof buf, "0 %u 1\n", (unsigned) gid);
      if (write_proc ("/proc/self/gid_map", buf, err) < 0)
        return -1;
      *result = OB_USERNS_SINGLE;
      max_id = 0;
    }
  if (setresgid (0, 0, 0) < 0 || setresuid (0, 0, 0) < 0)
    return ob_error_make (err, OB_ERR_USERNS, errno, "become root in the user namespace");
  if (unshare (CLONE_NEWNS) < 0)
    return ob_error_make (err, OB_ERR_USERNS, errno, "unshare(CLONE_NEWNS)");
  if (mount ("none", "/", "none", MS_REC | MS_SLAVE, NULL) < 0)
    return ob_error_make (err, OB_ERR_USERNS, errno, "make the mount namespace private");
  return 0;
}
