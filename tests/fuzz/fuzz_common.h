/* Shared by the harnesses that touch the file system: a per-process scratch
 * directory, sandboxed when possible, and a remover that takes any tree an
 * archive can leave (unreadable directories, names too long for one path).
 *
 * The sandbox: a user namespace (mapping all ids when the process is root,
 * else its own) plus a mount namespace with a size-limited tmpfs on the
 * scratch directory.  Writes then cannot fill the disk (ENOSPC at the
 * limit), fsync costs nothing, device nodes cannot be created, and the
 * tmpfs disappears with the process, even after a crash.  Without user
 * namespaces the scratch directory stays on the real file system, files
 * are limited by RLIMIT_FSIZE and CAP_MKNOD is dropped. */
#ifndef OBUILD_FUZZ_COMMON_H
#define OBUILD_FUZZ_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FUZZ_FSIZE_LIMIT (64 << 20)

static const char *fuzz_name = "fuzz";
static char fuzz_scratch[4096];
static bool fuzz_mounted;
static bool fuzz_verbose; /* $FUZZ_VERBOSE: print the errors the library returns */

static void __attribute__ ((noreturn, format (printf, 1, 2), unused))
fuzz_fail (const char *fmt, ...)
{
  va_list ap;
  fprintf (stderr, "%s: ", fuzz_name);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fprintf (stderr, "\n");
  abort ();
}

static bool
fuzz_write_proc (const char *path, const char *text)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);
  bool ok = fd >= 0 && write (fd, text, strlen (text)) == (ssize_t) strlen (text);
  if (fd >= 0)
    close (fd);
  return ok;
}

/* Must run before any thread starts: CLONE_NEWUSER needs a single-threaded
 * process (LLVMFuzzerInitialize runs before libFuzzer's threads). */
static bool
fuzz_enter_sandbox (const char *tmpfs_size)
{
  uid_t uid = getuid ();
  gid_t gid = getgid ();
  char buf[128];

  if (unshare (CLONE_NEWUSER | CLONE_NEWNS) < 0)
    return false;
  fuzz_write_proc ("/proc/self/setgroups", "deny");
  if (!fuzz_write_proc ("/proc/self/uid_map", "0 0 4294967295"))
    {
      snprintf (buf, sizeof buf, "0 %u 1", (unsigned) uid);
      if (!fuzz_write_proc ("/proc/self/uid_map", buf))
        fuzz_fail ("cannot write uid_map after unshare: %s", strerror (errno));
    }
  if (!fuzz_write_proc ("/proc/self/gid_map", "0 0 4294967295"))
    {
      snprintf (buf, sizeof buf, "0 %u 1", (unsigned) gid);
      if (!fuzz_write_proc ("/proc/self/gid_map", buf))
        fuzz_fail ("cannot write gid_map after unshare: %s", strerror (errno));
    }
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return false;
  snprintf (buf, sizeof buf, "size=%s,mode=0700", tmpfs_size);
  if (mount ("fuzz", fuzz_scratch, "tmpfs", MS_NOSUID | MS_NODEV, buf) < 0)
    return false;
  return true;
}

static void
fuzz_drop_mknod (void)
{
  struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct d[2];
  if (syscall (SYS_capget, &h, d) < 0)
    return;
  d[CAP_MKNOD / 32].effective &= ~(1u << (CAP_MKNOD % 32));
  d[CAP_MKNOD / 32].permitted &= ~(1u << (CAP_MKNOD % 32));
  d[CAP_MKNOD / 32].inheritable &= ~(1u << (CAP_MKNOD % 32));
  if (syscall (SYS_capset, &h, d) < 0)
    fuzz_fail ("cannot drop CAP_MKNOD: %s", strerror (errno));
}

/* ---- removing a tree, whatever modes and names it has ---- */

static bool fuzz_unreadable;

static int
fuzz_chmod_cb (const char *path, const struct stat *st, int flag, struct FTW *f)
{
  /* FTW_CHDIR: the current directory is the entry's parent, so the base
   * name works however long the whole path is */
  if ((flag == FTW_D || flag == FTW_DNR) && (st->st_mode & 0700) != 0700)
    fchmodat (AT_FDCWD, path + f->base, 0700, 0);
  if (flag == FTW_DNR || flag == FTW_NS)
    fuzz_unreadable = true; /* walk again: it can be read now */
  return 0;
}

static int
fuzz_rm_cb (const char *path, const struct stat *st, int flag, struct FTW *f)
{
  char up[NAME_MAX + 8];
  (void) st;
  /* FTW_CHDIR: at a directory's FTW_DP, glibc is inside that directory */
  if (flag == FTW_DP)
    {
      snprintf (up, sizeof up, "../%s", path + f->base);
      rmdir (up);
    }
  else
    unlink (path + f->base);
  return 0;
}

/* rm -rf path; aborts when something is left (a harness bug: stop before
 * the disk fills). */
static void
fuzz_rm_tree (const char *path)
{
  struct stat st;
  if (lstat (path, &st) < 0)
    return;
  for (int pass = 0; pass < 64; pass++)
    {
      fuzz_unreadable = false;
      nftw (path, fuzz_chmod_cb, 32, FTW_PHYS | FTW_CHDIR);
      if (!fuzz_unreadable)
        break;
    }
  nftw (path, fuzz_rm_cb, 32, FTW_PHYS | FTW_CHDIR | FTW_DEPTH);
  if (lstat (path, &st) == 0)
    fuzz_fail ("cannot remove %s", path);
}

static void
fuzz_scratch_cleanup (void)
{
  if (fuzz_mounted)
    umount2 (fuzz_scratch, MNT_DETACH);
  /* the mount point, or what is left on the real file system */
  fuzz_rm_tree (fuzz_scratch);
}

/* Make $TMPDIR/<name>.XXXXXX (the per-process scratch directory) and try
 * the sandbox on it. */
static void
fuzz_scratch_init (const char *name, const char *tmpfs_size)
{
  const char *tmp = getenv ("TMPDIR");
  fuzz_name = name;
  fuzz_verbose = getenv ("FUZZ_VERBOSE") != NULL;
  snprintf (fuzz_scratch, sizeof fuzz_scratch, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
  if (mkdtemp (fuzz_scratch) == NULL)
    fuzz_fail ("mkdtemp %s: %s", fuzz_scratch, strerror (errno));
  /* $FUZZ_NO_SANDBOX: try the fallback (or debug without namespaces) */
  fuzz_mounted = getenv ("FUZZ_NO_SANDBOX") == NULL && fuzz_enter_sandbox (tmpfs_size);
  if (!fuzz_mounted)
    {
      struct rlimit rl = { FUZZ_FSIZE_LIMIT, FUZZ_FSIZE_LIMIT };
      const char *why = getenv ("FUZZ_NO_SANDBOX") ? "FUZZ_NO_SANDBOX is set" : strerror (errno);
      signal (SIGXFSZ, SIG_IGN); /* a write past the limit fails with EFBIG */
      setrlimit (RLIMIT_FSIZE, &rl);
      fuzz_drop_mknod ();
      fprintf (stderr, "%s: no private tmpfs (%s); scratch %s is on the real file system\n", name,
               why, fuzz_scratch);
    }
  atexit (fuzz_scratch_cleanup);
}

/* Open file descriptors (a leak check around a library call). */
static int __attribute__ ((unused))
fuzz_count_fds (void)
{
  int n = 0;
  DIR *d = opendir ("/proc/self/fd");
  if (d == NULL)
    return -1;
  while (readdir (d))
    n++;
  closedir (d);
  return n;
}

#endif
