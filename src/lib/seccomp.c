/* seccomp: the filter every RUN step runs under.
 *
 * The filter allows by default and denies a list of calls modelled on
 * Docker's default profile (moby profiles/seccomp/default.json, which is an
 * allow list; ours is its complement for a process holding no extra
 * capabilities, see the table below).  It is compiled with libseccomp here,
 * in the parent, and exported as a plain BPF program so the sandbox child
 * only has to call ob_seccomp_load(), which allocates nothing. */
#include "config.h"
#include <obuild/seccomp.h>
#include <obuild/seccomp_notify.h>
#include <obuild/util.h>

#include <errno.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_NEWUSER
#define CLONE_NEWUSER 0x10000000
#endif

/* Denied with EPERM, whatever the arguments.  Names libseccomp does not know
 * at all are skipped; names that exist only on some of the filter's
 * architectures (stime, umount, vm86, ...) are added where they exist. */
static const char *const deny_always[] = {
  /* kernel modules and kexec (Docker: CAP_SYS_MODULE / CAP_SYS_BOOT) */
  "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
  "create_module", "get_kernel_syms", "query_module",
  /* kernel keyring: not namespaced (Docker: not allowed at all) */
  "keyctl", "add_key", "request_key",
  /* tracing and profiling of the host kernel (Docker: CAP_SYS_ADMIN/BPF/PERFMON) */
  "bpf", "perf_event_open", "fanotify_init", "lookup_dcookie",
  /* mounts, old and new API (Docker: CAP_SYS_ADMIN) */
  "mount", "umount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen",
  "fsmount", "fspick", "fsconfig", "mount_setattr",
  /* swap, reboot, clocks, accounting, quotas, logs, ttys */
  "swapon", "swapoff", "reboot", "settimeofday", "clock_settime", "clock_settime64",
  "clock_adjtime", "clock_adjtime64", "adjtimex", "stime", "acct", "quotactl",
  "quotactl_fd", "nfsservctl", "syslog", "vhangup", "uselib", "_sysctl",
  /* file handles bypass the mount's path checks (CVE-2014-3519, "shocker") */
  "open_by_handle_at", "name_to_handle_at",
  /* userfaultfd widens kernel race windows; Docker has it only with CAP_SYS_PTRACE */
  "userfaultfd",
  /* inspecting or changing other processes (Docker: CAP_SYS_PTRACE) */
  "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
  "process_madvise",
  /* joining namespaces (Docker: CAP_SYS_ADMIN) */
  "setns",
  /* raw I/O ports and vm86 mode (Docker: CAP_SYS_RAWIO / not allowed) */
  "iopl", "ioperm", "vm86", "vm86old",
  /* io_uring: a large kernel attack surface whose operations (openat,
   * statx, renameat, ...) no seccomp filter sees (Docker and containerd
   * removed it in 2023: moby#46762); liburing and libuv fall back */
  "io_uring_setup", "io_uring_enter", "io_uring_register",
};

/* With emulate_root: the chown family succeeds without effect, or, with
 * owners recorded (ob_seccomp_build_owners), goes to the supervisor in
 * seccomp_notify.c, which records the owner asked for. */
static const char *const chown_family[] = {
  "chown", "fchown", "lchown", "fchownat", "chown32", "fchown32", "lchown32",
};

/* With owners recorded: the stat family goes to the supervisor too, which
 * reports the owner recorded, so that tools copying an owner (useradd's
 * /etc/shadow+ from fstat, sed -i, cp -p, tar) and those showing one
 * (stat, ls -l, find -user) see what subuid mode's kernel would report.
 * Every call costs a round trip through obuild (4-7 us, 2.5-3 of them the
 * two context switches any answer costs): cp -a makes about four a file,
 * two thirds of them of a descriptor.  Neither kind can be left to the
 * kernel: useradd and GNU sed -i copy an owner from fstat of a
 * descriptor, cp -a and tar from lstat of a path. */
static const char *const stat_family[] = {
  "statx",
#if OB_SECCOMP_NOTIFY_STRUCT_STAT
  "stat", "lstat", "fstat", "newfstatat",
#endif
};

/* With owners recorded: renames go to the supervisor, which gives a
 * symlink's recorded owner (kept on its directory, link_owner.h) to its new
 * name before the kernel renames it. */
static const char *const rename_family[] = { "rename", "renameat", "renameat2" };

/* With emulate_root: succeed without effect (SCMP_ACT_ERRNO(0) returns 0). */
static const char *const fake_always[] = {
  "setuid", "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid",
  "setregid32", "setresuid", "setresuid32", "setresgid", "setresgid32", "setfsuid",
  "setfsuid32", "setfsgid", "setfsgid32", "setgroups", "setgroups32", "capset",
};

/* Personas Docker allows: PER_LINUX (0), PER_LINUX32 (0x8), UNAME26 (0x20000),
 * PER_LINUX32|UNAME26 (0x20008), and 0xffffffff, which only queries. */
#define PERSONA_FREE_BITS 0x20008u /* the bits set in the allowed personas */

static void
ctx_releasep (scmp_filter_ctx *ctx)
{
  if (*ctx != NULL)
    seccomp_release (*ctx);
}

static int
add_rule (scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned int n_cmp,
          const struct scmp_arg_cmp *cmp, ob_error_t *err)
{
  int nr = seccomp_syscall_resolve_name (name);
  int r;

  if (nr == __NR_SCMP_ERROR)
    return 0; /* unknown to this libseccomp: nothing to filter */
  r = seccomp_rule_add_array (ctx, action, nr, n_cmp, cmp);
  if (r < 0)
    return ob_error_make (err, OB_ERR_GENERIC, -r, "seccomp_rule_add %s", name);
  return 0;
}

static int
add_rules (scmp_filter_ctx ctx, uint32_t action, const char *const *names, size_t n,
           ob_error_t *err)
{
  size_t i;
  for (i = 0; i < n; i++)
    {
      int ret = add_rule (ctx, action, names[i], 0, NULL, err);
      if (ret < 0)
        return ret;
    }
  return 0;
}

static int
add_arg_rule (scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned int arg,
              scmp_datum_t mask, scmp_datum_t value, ob_error_t *err)
{
  struct scmp_arg_cmp cmp = { .arg = arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = mask,
                              .datum_b = value };
  return add_rule (ctx, action, name, 1, &cmp, err);
}

/* Deny every persona but the five Docker allows.  libseccomp takes one
 * comparison per argument in a rule, and rules for one syscall and action
 * are OR-ed, so the complement of the allowed set is written as a union of
 * masked-equality cubes over the low 32 bits (the kernel's argument is an
 * unsigned int, so higher bits do not matter):
 *   - x with bit 0 set and a clear bit: split by the lowest clear bit c >= 1
 *     (bits 0..c-1 set, bit c clear), 31 cubes;
 *   - x with bit 0 clear and some bit outside PERSONA_FREE_BITS set: split by
 *     the lowest such bit b (bit 0 and the other such bits below b clear,
 *     bit b set), 29 cubes.
 * Bit 0 is outside PERSONA_FREE_BITS, so both families lie outside the
 * allowed set, and every other value falls in one of them. */
static int
add_personality_rules (scmp_filter_ctx ctx, ob_error_t *err)
{
  unsigned int bit;
  int ret;

  for (bit = 1; bit < 32; bit++)
    {
      uint32_t mask = (uint32_t) ((UINT64_C (2) << bit) - 1);
      ret = add_arg_rule (ctx, SCMP_ACT_ERRNO (EPERM), "personality", 0, mask, mask >> 1,
                          err);
      if (ret < 0)
        return ret;
    }
  for (bit = 1; bit < 32; bit++)
    {
      uint32_t mask;
      if (PERSONA_FREE_BITS & (1u << bit))
        continue;
      mask = (uint32_t) ((UINT64_C (2) << bit) - 1) & ~PERSONA_FREE_BITS;
      ret = add_arg_rule (ctx, SCMP_ACT_ERRNO (EPERM), "personality", 0, mask, 1u << bit,
                          err);
      if (ret < 0)
        return ret;
    }
  return 0;
}

/* The architectures a native process can switch to, as in Docker's archMap. */
static int
add_compat_arches (scmp_filter_ctx ctx, ob_error_t *err)
{
  uint32_t compat[2] = { 0, 0 };
  size_t i;

  switch (seccomp_arch_native ())
    {
    case SCMP_ARCH_X86_64:
      compat[0] = SCMP_ARCH_X86;
      compat[1] = SCMP_ARCH_X32;
      break;
    case SCMP_ARCH_AARCH64:
      compat[0] = SCMP_ARCH_ARM;
      break;
    case SCMP_ARCH_S390X:
      compat[0] = SCMP_ARCH_S390;
      break;
    case SCMP_ARCH_MIPS64:
      compat[0] = SCMP_ARCH_MIPS;
      compat[1] = SCMP_ARCH_MIPS64N32;
      break;
    case SCMP_ARCH_MIPS64N32:
      compat[0] = SCMP_ARCH_MIPS;
      compat[1] = SCMP_ARCH_MIPS64;
      break;
    case SCMP_ARCH_MIPSEL64:
      compat[0] = SCMP_ARCH_MIPSEL;
      compat[1] = SCMP_ARCH_MIPSEL64N32;
      break;
    case SCMP_ARCH_MIPSEL64N32:
      compat[0] = SCMP_ARCH_MIPSEL;
      compat[1] = SCMP_ARCH_MIPSEL64;
      break;
    default:
      break;
    }
  for (i = 0; i < 2 && compat[i] != 0; i++)
    {
      int r = seccomp_arch_add (ctx, compat[i]);
      if (r < 0 && r != -EEXIST)
        return ob_error_make (err, OB_ERR_GENERIC, -r, "seccomp_arch_add 0x%x",
                              (unsigned int) compat[i]);
    }
  return 0;
}

static int
add_namespace_rules (scmp_filter_ctx ctx, ob_error_t *err)
{
  /* clone's flags are its first argument everywhere but on s390. */
  uint32_t native = seccomp_arch_native ();
  unsigned int clone_flags_arg
      = native == SCMP_ARCH_S390X || native == SCMP_ARCH_S390 ? 1 : 0;
  int ret;

  /* A nested user namespace would give the step a fresh full capability
   * set, past the deny list's reasoning; other namespace flags are allowed
   * (each step already owns its mount/pid/uts/ipc namespaces). */
  ret = add_arg_rule (ctx, SCMP_ACT_ERRNO (EPERM), "clone", clone_flags_arg, CLONE_NEWUSER,
                      CLONE_NEWUSER, err);
  if (ret < 0)
    return ret;
  ret = add_arg_rule (ctx, SCMP_ACT_ERRNO (EPERM), "unshare", 0, CLONE_NEWUSER,
                      CLONE_NEWUSER, err);
  if (ret < 0)
    return ret;
  /* clone3 passes its flags in memory, where BPF cannot look: ENOSYS makes
   * glibc and others fall back to clone, which is checked above. */
  return add_rule (ctx, SCMP_ACT_ERRNO (ENOSYS), "clone3", 0, NULL, err);
}

/* Only device nodes: FIFOs, sockets and regular files made with mknod
 * really exist afterwards.  With owners recorded, the supervisor makes a
 * placeholder the layer writer turns into the device (seccomp_notify.c);
 * else the call succeeds without effect. */
static int
add_device_rules (scmp_filter_ctx ctx, uint32_t action, ob_error_t *err)
{
  int ret = add_arg_rule (ctx, action, "mknod", 1, S_IFMT, S_IFCHR, err);
  if (ret == 0)
    ret = add_arg_rule (ctx, action, "mknod", 1, S_IFMT, S_IFBLK, err);
  if (ret == 0)
    ret = add_arg_rule (ctx, action, "mknodat", 2, S_IFMT, S_IFCHR, err);
  if (ret == 0)
    ret = add_arg_rule (ctx, action, "mknodat", 2, S_IFMT, S_IFBLK, err);
  return ret;
}

static int
add_emulate_root_rules (scmp_filter_ctx ctx, bool notify, ob_error_t *err)
{
  int ret = add_rules (ctx, notify ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO (0), chown_family,
                       sizeof chown_family / sizeof chown_family[0], err);
  if (ret < 0)
    return ret;
  if (notify)
    ret = add_rules (ctx, SCMP_ACT_NOTIFY, stat_family,
                     sizeof stat_family / sizeof stat_family[0], err);
  /* the supervisor keeps the step's root while no process has left it */
  if (ret == 0 && notify)
    ret = add_rule (ctx, SCMP_ACT_NOTIFY, "chroot", 0, NULL, err);
  /* a symlink's recorded owner follows it to its new name */
  if (ret == 0 && notify)
    ret = add_rules (ctx, SCMP_ACT_NOTIFY, rename_family,
                     sizeof rename_family / sizeof rename_family[0], err);
  if (ret < 0)
    return ret;
  ret = add_rules (ctx, SCMP_ACT_ERRNO (0), fake_always,
                   sizeof fake_always / sizeof fake_always[0], err);
  if (ret < 0)
    return ret;

  return add_device_rules (ctx, notify ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO (0), err);
}

/* seccomp_export_bpf only writes to a file descriptor (libseccomp 2.5 has
 * no in-memory export), so go through an anonymous memfd. */
static int
export_program (scmp_filter_ctx ctx, struct ob_seccomp_prog **out, ob_error_t *err)
{
  cleanup_close int fd = -1;
  cleanup_free void *buf = NULL;
  struct ob_seccomp_prog *p;
  struct stat st;
  size_t size, done = 0;
  int r;

  fd = memfd_create ("obuild-seccomp", MFD_CLOEXEC);
  if (fd < 0)
    return ob_error_make (err, OB_ERR_GENERIC, errno, "memfd_create");
  r = seccomp_export_bpf (ctx, fd);
  if (r < 0)
    return ob_error_make (err, OB_ERR_GENERIC, -r, "seccomp_export_bpf");
  if (fstat (fd, &st) < 0)
    return ob_error_make (err, OB_ERR_GENERIC, errno, "fstat seccomp program");
  size = (size_t) st.st_size;
  if (size == 0 || size % sizeof (struct sock_filter) != 0
      || size / sizeof (struct sock_filter) > BPF_MAXINSNS)
    return ob_error_make (err, OB_ERR_GENERIC, 0,
                          "seccomp program has an invalid size (%zu bytes)", size);

  buf = ob_xmalloc (size);
  while (done < size)
    {
      ssize_t n = pread (fd, (char *) buf + done, size - done, (off_t) done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return ob_error_make (err, OB_ERR_GENERIC, errno, "read seccomp program");
      if (n == 0)
        return ob_error_make (err, OB_ERR_GENERIC, 0, "read seccomp program: short read");
      done += (size_t) n;
    }

  p = ob_xmalloc0 (sizeof *p);
  p->filter = steal_pointer (&buf);
  p->len = (unsigned short) (size / sizeof (struct sock_filter));
  *out = p;
  return 0;
}

static int
build (bool emulate_root, bool notify, struct ob_seccomp_prog **out, ob_error_t *err)
{
  __attribute__ ((cleanup (ctx_releasep))) scmp_filter_ctx ctx = NULL;
  int ret;

  *out = NULL;
  ctx = seccomp_init (SCMP_ACT_ALLOW);
  if (ctx == NULL)
    return ob_error_make (err, OB_ERR_GENERIC, ENOMEM, "seccomp_init");

  ret = add_compat_arches (ctx, err);
  if (ret < 0)
    return ret;
  ret = add_rules (ctx, SCMP_ACT_ERRNO (EPERM), deny_always,
                   sizeof deny_always / sizeof deny_always[0], err);
  if (ret < 0)
    return ret;
  ret = add_personality_rules (ctx, err);
  if (ret < 0)
    return ret;
  ret = add_namespace_rules (ctx, err);
  if (ret < 0)
    return ret;
  if (emulate_root)
    {
      ret = add_emulate_root_rules (ctx, notify, err);
      if (ret < 0)
        return ret;
    }
  ret = export_program (ctx, out, err);
  if (ret == 0)
    (*out)->notify = notify;
  return ret;
}

int
ob_seccomp_build (bool emulate_root, struct ob_seccomp_prog **out, ob_error_t *err)
{
  return build (emulate_root, false, out, err);
}

int
ob_seccomp_build_owners (struct ob_seccomp_prog **out, ob_error_t *err)
{
  return build (true, true, out, err);
}

int
ob_seccomp_build_for (bool userns_single, struct ob_seccomp_prog **out, bool *no_owners,
                      ob_error_t *err)
{
  bool owners = userns_single && ob_seccomp_notify_available ();
  if (no_owners)
    *no_owners = userns_single && !owners;
  return build (userns_single, owners, out, err);
}

void
ob_seccomp_free (struct ob_seccomp_prog *p)
{
  if (p == NULL)
    return;
  free (p->filter);
  free (p);
}

int
ob_seccomp_load (const struct ob_seccomp_prog *p)
{
  struct sock_fprog fprog;

  if (p == NULL || p->filter == NULL || p->len == 0)
    return -EINVAL;
  fprog.len = p->len;
  fprog.filter = p->filter;

  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return -errno;
#ifdef SYS_seccomp
  if (p->notify)
    {
      /* the listener: only seccomp(2) hands it out */
      long fd = syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                         SECCOMP_FILTER_FLAG_NEW_LISTENER, &fprog);
      return fd >= 0 ? (int) fd : -errno;
    }
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0)
    return 0;
  if (errno != ENOSYS)
    return -errno;
#else
  if (p->notify)
    return -ENOSYS;
#endif
  if (prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) < 0)
    return -errno;
  return 0;
}
