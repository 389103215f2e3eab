/* binfmt: may a foreign architecture's RUN execute here (see
 * include/obuild/binfmt.h)? */
#include <obuild/binfmt.h>
#include <obuild/image.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INSTALL_HINT "apt-get install qemu-user-static binfmt-support"

const char *
ob_binfmt_qemu_arch (const char *arch)
{
  static const char *const map[][2] = {
    { "amd64", "x86_64" },   { "arm64", "aarch64" }, { "arm", "arm" },         { "386", "i386" },
    { "ppc64le", "ppc64le" }, { "s390x", "s390x" },   { "riscv64", "riscv64" }, { "mips64le", "mips64el" },
    { "mips64", "mips64" },   { "mipsle", "mipsel" },  { "mips", "mips" },       { "ppc64", "ppc64" },
    { "loong64", "loongarch64" },
  };
  for (size_t i = 0; arch && i < sizeof map / sizeof *map; i++)
    if (strcmp (arch, map[i][0]) == 0)
      return map[i][1];
  return NULL;
}

/* Names some hand-made configs use for the OCI ones. */
static const char *
oci_arch (const char *arch)
{
  static const char *const alias[][2] = {
    { "x86_64", "amd64" }, { "x86-64", "amd64" }, { "aarch64", "arm64" }, { "i386", "386" },
    { "i686", "386" },     { "armhf", "arm" },    { "armel", "arm" },     { "armv7l", "arm" },
  };
  for (size_t i = 0; arch && i < sizeof alias / sizeof *alias; i++)
    if (strcmp (arch, alias[i][0]) == 0)
      return alias[i][1];
  return arch;
}

bool
ob_binfmt_native (const char *arch)
{
  const char *host = ob_image_host_arch ();
  arch = oci_arch (arch);
  if (arch == NULL || strcmp (arch, host) == 0)
    return true;
  /* x86_64 kernels run i386 programs themselves (IA32 emulation) */
  return strcmp (host, "amd64") == 0 && strcmp (arch, "386") == 0;
}

/* The first line of a binfmt_misc file ("enabled" / "disabled"), and
 * whether its "flags:" line holds F. */
static int
read_entry (const char *path, bool *enabled, bool *fix, ob_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len;
  char *flags;
  if (ob_read_file_at (AT_FDCWD, path, &data, &len, err) < 0)
    return -1;
  *enabled = strncmp (data, "enabled", 7) == 0;
  flags = strstr (data, "\nflags:");
  if (fix)
    {
      *fix = false;
      if (flags)
        for (char *p = flags + 7; *p && *p != '\n'; p++)
          if (*p == 'F')
            *fix = true;
    }
  return 0;
}

int
ob_binfmt_check (const char *os, const char *arch, ob_error_t *err)
{
  const char *dir = getenv ("OBUILD_TEST_BINFMT_DIR");
  const char *q;
  cleanup_free char *status = NULL;
  cleanup_free char *entry = NULL;
  bool enabled = false, fix = false;
  struct stat st;
  ob_error_t e = NULL;

  if (ob_binfmt_native (arch))
    return 0;
  if (os == NULL)
    os = "linux";
  if (strcmp (os, "linux") != 0)
    return ob_error_make (err, OB_ERR_USERNS, 0, "RUN for %s/%s: only linux programs can run here", os, arch);
  arch = oci_arch (arch);
  q = ob_binfmt_qemu_arch (arch);
  /* a name obuild does not know (a config saying "unknown"): the kernel
   * decides, as before platforms were looked at */
  if (q == NULL)
    return 0;
  if (dir == NULL || *dir == '\0')
    dir = "/proc/sys/fs/binfmt_misc";
  status = ob_xasprintf ("%s/status", dir);
  entry = ob_xasprintf ("%s/qemu-%s", dir, q);
  if (stat (status, &st) < 0)
    return ob_error_make (err, OB_ERR_USERNS, 0,
                          "RUN for linux/%s needs qemu-user through binfmt_misc, which is not mounted at `%s`: "
                          "%s, then as root mount -t binfmt_misc binfmt_misc %s and update-binfmts --enable",
                          arch, dir, INSTALL_HINT, dir);
  if (read_entry (status, &enabled, NULL, &e) == 0 && !enabled)
    {
      ob_error_free (&e);
      return ob_error_make (err, OB_ERR_USERNS, 0,
                            "RUN for linux/%s needs qemu-user through binfmt_misc, which is disabled (`%s`): "
                            "enable it as root (echo 1 > %s)", arch, status, status);
    }
  ob_error_free (&e);
  if (read_entry (entry, &enabled, &fix, &e) < 0)
    {
      ob_error_free (&e);
      return ob_error_make (err, OB_ERR_USERNS, 0,
                            "RUN for linux/%s needs qemu-%s registered with binfmt_misc (no `%s`): %s "
                            "(it registers the interpreter with the F flag it needs inside the build's root)",
                            arch, q, entry, INSTALL_HINT);
    }
  if (!enabled)
    return ob_error_make (err, OB_ERR_USERNS, 0,
                          "RUN for linux/%s: qemu-%s is disabled in binfmt_misc (`%s`): update-binfmts --enable qemu-%s",
                          arch, q, entry, q);
  if (!fix)
    return ob_error_make (err, OB_ERR_USERNS, 0,
                          "RUN for linux/%s: qemu-%s is registered without the F (fix-binary) flag (`%s`), but the "
                          "interpreter must be usable inside the build's root: %s registers it with F",
                          arch, q, entry, INSTALL_HINT);
  return 0;
}
