/* --isolation=container replaces the container's root file system with each
 * stage's image, /usr and its libraries included.  Before that, obuild
 * copies itself, every shared object it has loaded and the CA bundle into a
 * directory of its store (which is kept) and runs again from there through
 * the copied dynamic loader, so nothing it needs lives in the root it
 * replaces.  libcurl, otherwise opened when first needed, is opened first in
 * every run: copied with the rest, and never looked for in an image's root. */
#include "config.h"
#include "cli.h"
#include <obuild/registry.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
copy_to (const char *from, const char *to, mode_t mode, ob_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len;
  if (ob_read_file_at (AT_FDCWD, from, &data, &len, err) < 0)
    return -1;
  return ob_write_file_atomic_at (AT_FDCWD, to, data, len, mode, err);
}

static const char *
base_name (const char *p)
{
  const char *s = strrchr (p, '/');
  return s ? s + 1 : p;
}

static char *relocated_dir;

static void
remove_relocated (void)
{
  ob_error_t e = NULL;
  if (relocated_dir && ob_rm_rf_at (AT_FDCWD, relocated_dir, &e) < 0)
    ob_error_free (&e);
}

int
cli_relocate (const char *store_root, char ***keep, ob_error_t *err)
{
  cleanup_free char *maps = NULL;
  cleanup_free char *tmpl = NULL;
  cleanup_free char *libdir = NULL;
  cleanup_free char *exe = NULL;
  cleanup_free char *loader = NULL;
  cleanup_strv char **seen = NULL;
  cleanup_strv char **args = NULL;
  const char *done = getenv ("OBUILD_RELOCATED");
  const char *self = getenv ("OBUILD_SELF_CONTAINED");
  char *save = NULL;
  size_t len;
  ob_error_t e = NULL;

  /* a machine without libcurl still builds; its registry calls say why not */
  if (ob_registry_load_libcurl (&e) < 0)
    ob_error_free (&e);

  if (self && *self)
    {
      /* the executor image: obuild and all it needs live in this
       * directory, which stays */
      ob_strv_add (keep, self);
      return 0;
    }
  if (done && *done)
    {
      /* the second run: keep and, at exit, remove the copy */
      relocated_dir = ob_xstrdup (done);
      atexit (remove_relocated);
      ob_strv_add (keep, done);
      return 0;
    }
  if (ob_mkdir_p_at (AT_FDCWD, store_root, 0700, err) < 0)
    return -1;
  tmpl = ob_xasprintf ("%s/exec.XXXXXX", store_root);
  if (mkdtemp (tmpl) == NULL)
    return ob_error_make (err, OB_ERR_STORE, errno, "--isolation=container: create `%s`", tmpl);
  libdir = ob_xasprintf ("%s/lib", tmpl);
  exe = ob_xasprintf ("%s/obuild", tmpl);
  if (mkdir (libdir, 0755) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "--isolation=container: create `%s`", libdir);
  if (copy_to ("/proc/self/exe", exe, 0755, err) < 0)
    return ob_error_wrap (err, "--isolation=container: copy obuild");
  if (ob_read_file_at (AT_FDCWD, "/proc/self/maps", &maps, &len, err) < 0)
    return -1;
  for (char *line = strtok_r (maps, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *path = strchr (line, '/');
      cleanup_free char *to = NULL;
      char real_exe[4096];
      ssize_t n = readlink ("/proc/self/exe", real_exe, sizeof real_exe - 1);
      bool dup = false;
      if (path == NULL || strstr (path, " (deleted)"))
        continue;
      for (size_t i = 0; seen && seen[i] && !dup; i++)
        dup = strcmp (seen[i], path) == 0;
      if (dup)
        continue;
      real_exe[n > 0 ? n : 0] = '\0';
      if (strcmp (path, real_exe) == 0)
        continue;
      ob_strv_add (&seen, path);
      to = ob_xasprintf ("%s/%s", libdir, base_name (path));
      if (copy_to (path, to, 0755, err) < 0)
        return ob_error_wrap (err, "--isolation=container: copy `%s`", path);
      if (ob_str_has_prefix (base_name (path), "ld-linux") || ob_str_has_prefix (base_name (path), "ld64.so")
          || ob_str_has_prefix (base_name (path), "ld-musl"))
        {
          free (loader);
          loader = ob_xstrdup (to);
        }
    }
  if (loader == NULL)
    return ob_error_make (err, OB_ERR_GENERIC, 0, "--isolation=container: cannot find obuild's dynamic loader");
  if (access ("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
    {
      cleanup_free char *ca = ob_xasprintf ("%s/ca.crt", tmpl);
      if (copy_to ("/etc/ssl/certs/ca-certificates.crt", ca, 0644, err) < 0)
        return -1;
      setenv ("OBUILD_CA_FILE", ca, 1);
    }
  setenv ("OBUILD_RELOCATED", tmpl, 1);
  ob_strv_add (&args, loader);
  ob_strv_add (&args, "--library-path");
  ob_strv_add (&args, libdir);
  ob_strv_add (&args, exe);
  for (size_t i = 1; cli_main_argv[i]; i++)
    ob_strv_add (&args, cli_main_argv[i]);
  fflush (NULL);
  ob_nofile_restore ();
  execv (loader, args);
  return ob_error_make (err, OB_ERR_GENERIC, errno, "--isolation=container: run `%s`", loader);
}
