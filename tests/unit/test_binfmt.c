/* Platforms: parsing "os/arch[/variant]" and --platform lists, and the
 * binfmt_misc detection for a foreign RUN (through OBUILD_TEST_BINFMT_DIR,
 * a directory laid out as /proc/sys/fs/binfmt_misc). */
#include "config.h"
#include "tap.h"
#include <obuild/binfmt.h>
#include <obuild/build.h>
#include <obuild/image.h>
#include <obuild/util.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

TEST (test_platform_parse)
{
  char *os, *arch, *variant;
  ob_error_t err = NULL;
  CHECK_INT (ob_image_platform_parse ("linux/arm64/v8", &os, &arch, &variant, &err), 0);
  CHECK_STR (os, "linux");
  CHECK_STR (arch, "arm64");
  CHECK_STR (variant, "v8");
  free (os), free (arch), free (variant);
  CHECK_INT (ob_image_platform_parse ("linux/amd64", &os, &arch, &variant, &err), 0);
  CHECK_STR (arch, "amd64");
  CHECK (variant == NULL);
  free (os), free (arch), free (variant);
  const char *bad[] = { "linux", "/amd64", "linux/", "linux//v7", "linux/arm/", "linux/arm/v7/x", "" };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    {
      CHECK_INT (ob_image_platform_parse (bad[i], &os, &arch, &variant, &err), -1);
      CHECK (os == NULL && arch == NULL && variant == NULL);
      if (err)
        {
          CHECK_INT (err->kind, OB_ERR_USAGE);
          CHECK (strstr (err->msg, "expected os/arch[/variant]") != NULL);
        }
      ob_error_free (&err);
    }
}

TEST (test_platform_list)
{
  char **v = NULL;
  ob_error_t err = NULL;
  CHECK_INT (ob_build_platforms_parse ("linux/amd64,linux/arm64/v8", &v, &err), 0);
  CHECK (v && v[0] && v[1] && v[2] == NULL);
  if (v && v[0] && v[1])
    {
      CHECK_STR (v[0], "linux/amd64");
      CHECK_STR (v[1], "linux/arm64/v8");
    }
  ob_strv_free (v);
  const char *bad[] = { "", ",linux/amd64", "linux/amd64,", "linux/amd64,,linux/arm64", "linux/amd64,linux/amd64",
                        "linux/amd64,arm64" };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    {
      v = NULL;
      CHECK_INT (ob_build_platforms_parse (bad[i], &v, &err), -1);
      CHECK (v == NULL);
      CHECK (err && err->kind == OB_ERR_USAGE);
      ob_error_free (&err);
    }
}

static char dir[] = "/tmp/ob-binfmt-XXXXXX";

static void
put (const char *name, const char *text)
{
  char *p = ob_xasprintf ("%s/%s", dir, name);
  ob_error_t err = NULL;
  if (text == NULL)
    unlink (p);
  else if (ob_write_file_atomic_at (AT_FDCWD, p, text, strlen (text), 0644, &err) < 0)
    {
      printf ("#   %s\n", err->msg);
      ob_error_free (&err);
      tap_case_failed = 1;
    }
  free (p);
}

/* the check for arch: 0, or the error's kind and a piece of its message */
static void
expect (const char *arch, int kind, const char *piece)
{
  ob_error_t err = NULL;
  int r = ob_binfmt_check ("linux", arch, &err);
  if (kind == 0)
    {
      CHECK_INT (r, 0);
      if (err)
        printf ("#   %s: %s\n", arch, err->msg);
    }
  else
    {
      CHECK_INT (r, -1);
      CHECK (err && err->kind == kind);
      if (err && strstr (err->msg, piece) == NULL)
        {
          printf ("#   %s: `%s` lacks `%s`\n", arch, err->msg, piece);
          tap_case_failed = 1;
        }
      CHECK (err && strchr (err->msg, '\n') == NULL);
    }
  ob_error_free (&err);
}

TEST (test_binfmt_check)
{
  const char *foreign = strcmp (ob_image_host_arch (), "s390x") == 0 ? "arm64" : "s390x";
  const char *q = ob_binfmt_qemu_arch (foreign);
  char *entry = ob_xasprintf ("qemu-%s", q);
  CHECK (mkdtemp (dir) != NULL);
  setenv ("OBUILD_TEST_BINFMT_DIR", dir, 1);
  CHECK_STR (ob_binfmt_qemu_arch ("arm64"), "aarch64");
  CHECK (ob_binfmt_qemu_arch ("pdp11") == NULL);
  /* the host's own architecture needs nothing, not even binfmt_misc */
  expect (ob_image_host_arch (), 0, NULL);
  expect (foreign, OB_ERR_USERNS, "which is not mounted");
  put ("status", "disabled\n");
  expect (foreign, OB_ERR_USERNS, "which is disabled");
  put ("status", "enabled\n");
  expect (foreign, OB_ERR_USERNS, "apt-get install qemu-user-static binfmt-support");
  put (entry, "disabled\ninterpreter /usr/libexec/qemu-binfmt/x\nflags: PF\noffset 0\n");
  expect (foreign, OB_ERR_USERNS, "update-binfmts --enable");
  put (entry, "enabled\ninterpreter /usr/libexec/qemu-binfmt/x\nflags: POC\noffset 0\n");
  expect (foreign, OB_ERR_USERNS, "without the F (fix-binary) flag");
  put (entry, "enabled\ninterpreter /usr/libexec/qemu-binfmt/x\nflags: PF\noffset 0\n");
  expect (foreign, 0, NULL);
  expect ("pdp11", 0, NULL); /* unknown: left to the kernel */
  expect ("x86_64", strcmp (ob_image_host_arch (), "amd64") == 0 ? 0 : OB_ERR_USERNS, "qemu");
  {
    ob_error_t err = NULL;
    CHECK_INT (ob_binfmt_check ("windows", foreign, &err), -1);
    CHECK (err && strstr (err->msg, "only linux programs") != NULL);
    ob_error_free (&err);
  }
  put (entry, NULL);
  put ("status", NULL);
  rmdir (dir);
  unsetenv ("OBUILD_TEST_BINFMT_DIR");
  free (entry);
}

int
main (void)
{
  RUN (test_platform_parse);
  RUN (test_platform_list);
  RUN (test_binfmt_check);
  TAP_DONE ();
}
