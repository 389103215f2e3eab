/* obuild info: probes (see include/obuild/info.h). */
#include "config.h"
#include <obuild/info.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static void
put (json_t *o, const char *k, const char *v)
{
  json_object_set_new (o, k, v ? json_string (v) : json_null ());
}

static char *
sysctl (const char *path)
{
  cleanup_free char *v = NULL;
  size_t len;
  ob_error_t e = NULL;
  if (ob_read_file_at (AT_FDCWD, path, &v, &len, &e) < 0)
    {
      ob_error_free (&e);
      return ob_xstrdup ("(not present)");
    }
  while (len && (v[len - 1] == '\n' || v[len - 1] == ' '))
    v[--len] = '\0';
  return steal_pointer (&v);
}

static char *
find_tool (const char *name)
{
  const char *path = getenv ("PATH");
  cleanup_free char *copy = ob_xstrdup (path && *path ? path : "/usr/bin:/bin:/usr/sbin:/sbin");
  char *save = NULL;
  for (char *d = strtok_r (copy, ":", &save); d; d = strtok_r (NULL, ":", &save))
    {
      char *p = ob_xasprintf ("%s/%s", d, name);
      struct stat st;
      if (stat (p, &st) == 0 && S_ISREG (st.st_mode) && access (p, X_OK) == 0)
        {
          /* newuidmap works only setuid root or with file capabilities */
          bool caps = getxattr (p, "security.capability", NULL, 0) > 0;
          char *r = ob_xasprintf ("%s (%s)", p, (st.st_mode & S_ISUID) && st.st_uid == 0 ? "setuid root"
                                                 : caps                                   ? "file capabilities"
                                                                                          : "neither setuid nor capabilities: it cannot map ids");
          free (p);
          return r;
        }
      free (p);
    }
  return NULL;
}

static int64_t
tree_bytes (int dfd, const char *name, int depth)
{
  struct stat st;
  int64_t total;
  if (fstatat (dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return 0;
  total = (int64_t) st.st_blocks * 512;
  if (S_ISDIR (st.st_mode) && depth < 64)
    {
      int fd = openat (dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      cleanup_dir DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
      struct dirent *de;
      if (d == NULL && fd >= 0)
        close (fd);
      while (d && (de = readdir (d)))
        if (strcmp (de->d_name, ".") && strcmp (de->d_name, ".."))
          total += tree_bytes (dirfd (d), de->d_name, depth + 1);
    }
  return total;
}

/* In a child: enter the namespaces as a build does, then try what RUN
 * needs.  One JSON object back through the pipe. */
static void
probe_child (enum ob_userns_mode mode, const char *scratch, int out)
{
  ob_error_t e = NULL;
  enum ob_userns_mode got;
  json_t *o = json_object ();
  char *text;
  if (ob_userns_enter (mode, &got, &e) < 0)
    {
      put (o, "error", e->msg);
      ob_error_free (&e);
    }
  else
    {
      const char *why = ob_userns_no_isolation ();
      put (o, "mode", ob_userns_mode_name (got));
      put (o, "no_isolation", why);
      if (why == NULL)
        {
          /* the namespaces of a RUN step (root gets a user namespace per step) */
          int flags = CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | (got == OB_USERNS_ROOT ? CLONE_NEWUSER : 0);
          cleanup_free char *l = ob_xasprintf ("%s/l", scratch);
          cleanup_free char *u = ob_xasprintf ("%s/u", scratch);
          cleanup_free char *w = ob_xasprintf ("%s/w", scratch);
          cleanup_free char *m = ob_xasprintf ("%s/m", scratch);
          cleanup_free char *opts = ob_xasprintf ("userxattr,lowerdir=%s,upperdir=%s,workdir=%s", l, u, w);
          if (mkdir (l, 0755) < 0 || mkdir (u, 0755) < 0 || mkdir (w, 0755) < 0 || mkdir (m, 0755) < 0)
            json_object_set_new (o, "overlay", json_string_nocheck (strerror (errno)));
          else if (mount ("overlay", m, "overlay", 0, opts) < 0)
            {
              char *s = ob_xasprintf ("not available (%s): RUN steps use the copy snapshotter (slower; "
                                      "unprivileged overlayfs needs Linux 5.11 or later)",
                                      strerror (errno));
              put (o, "overlay", s);
              free (s);
            }
          else
            {
              put (o, "overlay", got == OB_USERNS_ROOT ? "available (userxattr)" : "available (unprivileged, userxattr)");
              umount2 (m, MNT_DETACH);
            }
          if (unshare (flags) < 0)
            {
              char *s = ob_xasprintf ("unshare(PID, UTS, IPC%s namespaces): %s", got == OB_USERNS_ROOT ? ", user" : "",
                                      strerror (errno));
              put (o, "namespaces", s);
              free (s);
            }
          else
            put (o, "namespaces", "ok");
          ob_rm_rf_at (AT_FDCWD, scratch, &e);
          ob_error_free (&e);
        }
    }
  text = json_dumps (o, JSON_COMPACT);
  if (text)
    {
      ob_write_all (out, text, strlen (text), &e);
      free (text);
    }
  _exit (0);
}

static bool
seccomp_notify_available (void)
{
#ifdef SECCOMP_GET_ACTION_AVAIL
  uint32_t act = SECCOMP_RET_USER_NOTIF;
  return syscall (SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &act) == 0;
#else
  return false;
#endif
}

int
ob_info_collect (enum ob_userns_mode mode, const char *store_root, const char *scratch, json_t **out,
                 ob_error_t *err)
{
  json_t *o = json_object (), *probe = NULL;
  struct utsname un;
  struct passwd *pw = getpwuid (getuid ());
  const char *user = pw ? pw->pw_name : NULL;
  cleanup_free char *tmp = NULL;
  cleanup_free char *text = NULL;
  char *s;
  int p[2], status;
  size_t len;
  pid_t c;
  bool ok;
  const char *problem = NULL;

  if (uname (&un) == 0)
    {
      s = ob_xasprintf ("%s %s (%s)", un.sysname, un.release, un.machine);
      put (o, "kernel", s);
      free (s);
    }
  s = ob_xasprintf ("%s (uid %u, gid %u)", user ? user : "?", (unsigned) getuid (), (unsigned) getgid ());
  put (o, "user", s);
  free (s);
  s = ob_xasprintf ("%s (%.1f MiB)", store_root, tree_bytes (AT_FDCWD, store_root, 0) / 1048576.0);
  put (o, "store", s);
  free (s);
  for (int k = 0; k < 2; k++)
    {
      const char *file = k == 0 ? "/etc/subuid" : "/etc/subgid";
      unsigned long start, count;
      ob_error_t e = NULL;
      int r = ob_userns_find_range (file, user, getuid (), &start, &count, &e);
      s = r > 0 ? ob_xasprintf ("%lu-%lu (%s)", start, start + count - 1, file)
                : ob_xasprintf ("none in %s%s", file, getuid () == 0 ? "" : ": subuid mode needs one (usermod --add-subuids)");
      put (o, k == 0 ? "subuid" : "subgid", s);
      free (s);
      ob_error_free (&e);
    }
  for (int k = 0; k < 2; k++)
    {
      const char *tool = k == 0 ? "newuidmap" : "newgidmap";
      s = find_tool (tool);
      put (o, tool, s ? s : "not found (Debian package uidmap): subuid mode needs it");
      free (s);
    }
  s = sysctl ("/proc/sys/user/max_user_namespaces");
  put (o, "user.max_user_namespaces", s);
  free (s);
  s = sysctl ("/proc/sys/kernel/unprivileged_userns_clone");
  put (o, "kernel.unprivileged_userns_clone", s);
  free (s);
  s = sysctl ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  put (o, "kernel.apparmor_restrict_unprivileged_userns", s);
  free (s);
  put (o, "seccomp user notification", seccomp_notify_available () ? "available" : "not available");

  if (ob_mkdtemp_in (scratch, "info-", &tmp, err) < 0)
    goto fail;
  if (pipe2 (p, O_CLOEXEC) < 0)
    {
      ob_error_make (err, OB_ERR_GENERIC, errno, "pipe");
      goto fail;
    }
  fflush (NULL);
  c = fork ();
  if (c < 0)
    {
      ob_error_make (err, OB_ERR_GENERIC, errno, "fork");
      close (p[0]);
      close (p[1]);
      goto fail;
    }
  if (c == 0)
    {
      close (p[0]);
      probe_child (mode, tmp, p[1]);
    }
  close (p[1]);
  if (ob_read_fd (p[0], &text, &len, err) < 0)
    {
      close (p[0]);
      waitpid (c, &status, 0);
      goto fail;
    }
  close (p[0]);
  while (waitpid (c, &status, 0) < 0 && errno == EINTR)
    ;
  {
    ob_error_t e = NULL;
    ob_rm_rf_at (AT_FDCWD, tmp, &e);
    ob_error_free (&e);
  }
  probe = json_loadb (text, len, 0, NULL);
  if (probe == NULL)
    {
      ob_error_make (err, OB_ERR_GENERIC, 0, "the namespace probe ended without an answer");
      goto fail;
    }
  if (json_string_value (json_object_get (probe, "error")))
    {
      problem = json_string_value (json_object_get (probe, "error"));
      put (o, "user namespace", problem);
    }
  else
    {
      const char *mode_name = json_string_value (json_object_get (probe, "mode"));
      put (o, "userns mode", mode_name);
      problem = json_string_value (json_object_get (probe, "no_isolation"));
      if (problem == NULL && strcmp (json_string_value (json_object_get (probe, "namespaces")) ?: "", "ok") != 0)
        problem = json_string_value (json_object_get (probe, "namespaces"));
      put (o, "namespaces for RUN", json_string_value (json_object_get (probe, "namespaces")) ?: "not tried");
      put (o, "overlay", json_string_value (json_object_get (probe, "overlay")) ?: "not tried");
    }
  ok = problem == NULL;
  json_object_set_new (o, "run", json_boolean (ok));
  if (!ok)
    put (o, "run_problem", problem);
  json_decref (probe);
  *out = o;
  return 0;
fail:
  json_decref (o);
  return -1;
}
