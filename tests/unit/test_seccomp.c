/* Unit tests for seccomp: each case that loads the filter does so in a forked
 * child, which checks syscall results and reports through its exit status.
 * Cases that only inspect the program run a small classic-BPF interpreter
 * over it, which also covers the compat architectures without executing
 * them.
 *
 * Under valgrind (3.19) loading works, through the prctl fallback since
 * valgrind answers seccomp(2) with ENOSYS, but valgrind itself answers some
 * syscalls it does not know (reboot, kexec_load, swapon, fsopen, ...) with
 * ENOSYS and rejects int $0x80, so the cases using them skip there
 * (detected with RUNNING_ON_VALGRIND, or OBUILD_TEST_VALGRIND=1). */
#include "config.h"
#include <obuild/seccomp.h>
#include <obuild/seccomp_notify.h>
#include <obuild/util.h>

#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/reboot.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND_H 1
#endif
#endif

static struct ob_seccomp_prog *prog_plain, *prog_root;
static char *tmpdir;
static const char *skip_reason;

/* Like RUN() but appends a TAP "# SKIP" directive when the case set
 * skip_reason. */
#define RUN_S(name)                                                                \
  do                                                                               \
    {                                                                              \
      tap_case_failed = 0;                                                         \
      skip_reason = NULL;                                                          \
      name ();                                                                     \
      tap_n++;                                                                     \
      if (tap_case_failed)                                                         \
        tap_failed++;                                                              \
      printf ("%sok %d - %s%s%s\n", tap_case_failed ? "not " : "", tap_n, #name,   \
              skip_reason ? " # SKIP " : "", skip_reason ? skip_reason : "");      \
      fflush (stdout);                                                             \
    }                                                                              \
  while (0)

static bool
under_valgrind (void)
{
  const char *e = getenv ("OBUILD_TEST_VALGRIND");
  if (e != NULL && *e != '\0' && strcmp (e, "0") != 0)
    return true;
#ifdef HAVE_VALGRIND_H
  if (RUNNING_ON_VALGRIND)
    return true;
#endif
  return false;
}

/* For cases whose syscalls valgrind does not pass to the kernel. */
static bool
skip_under_valgrind (void)
{
  if (!under_valgrind ())
    return false;
  skip_reason = "valgrind answers these syscalls itself (ENOSYS/EFAULT/SIGILL)";
  return true;
}

/* ---- child processes ---- */

/* In a child: report a failed check on stdout (TAP comment) and fail. */
#define CCHECK(cond)                                                               \
  do                                                                               \
    {                                                                              \
      if (!(cond))                                                                 \
        {                                                                          \
          int _e = errno;                                                          \
          dprintf (1, "#   child %s:%d: check failed: %s (errno %d)\n", __FILE__,     \
                   __LINE__, #cond, _e);                                           \
          return 1;                                                                \
        }                                                                          \
    }                                                                              \
  while (0)

/* r == -1 && errno == e, for syscalls returning -1 on failure. */
#define FAILS_WITH(call, e) ((call) == -1 && errno == (e))

#define CHILD_SKIP 77

typedef int (*child_fn) (void);

/* Fork; the child optionally runs pre() (e.g. dropping privileges), loads
 * prog (if not NULL) and returns fn()'s value as its exit status.  Returns
 * the exit status, or 128 + signal. */
static int
run_child_pre (const struct ob_seccomp_prog *prog, child_fn pre, child_fn fn)
{
  pid_t pid;
  int status;

  fflush (stdout);
  pid = fork ();
  if (pid < 0)
    return -1;
  if (pid == 0)
    {
      int r;
      if (pre != NULL)
        {
          r = pre ();
          if (r != 0)
            _exit (r);
        }
      if (prog != NULL)
        {
          r = ob_seccomp_load (prog);
          if (r < 0)
            {
              dprintf (1, "#   child: ob_seccomp_load: %s\n", strerror (-r));
              _exit (99);
            }
        }
      _exit (fn ());
    }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  if (WEXITSTATUS (status) == CHILD_SKIP)
    skip_reason = "cannot drop privileges to nobody";
  return WEXITSTATUS (status) == CHILD_SKIP ? 0 : WEXITSTATUS (status);
}

static int
run_child (const struct ob_seccomp_prog *prog, child_fn fn)
{
  return run_child_pre (prog, NULL, fn);
}

static char *
tmp_path (const char *name)
{
  return ob_xasprintf ("%s/%s", tmpdir, name);
}

static int
make_file (const char *name)
{
  cleanup_free char *p = tmp_path (name);
  int fd = open (p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return -1;
  close (fd);
  return 0;
}

/* ---- a classic BPF interpreter for seccomp programs ---- */

static uint32_t
bpf_run (const struct ob_seccomp_prog *p, const struct seccomp_data *d)
{
  const struct sock_filter *f = p->filter;
  uint32_t A = 0, X = 0, M[BPF_MEMWORDS] = { 0 };
  unsigned int pc = 0;

  while (pc < p->len)
    {
      const struct sock_filter *in = &f[pc++];
      uint32_t src = BPF_SRC (in->code) == BPF_X ? X : in->k;
      bool jt;

      switch (BPF_CLASS (in->code))
        {
        case BPF_LD:
        case BPF_LDX:
          {
            uint32_t v;
            if (BPF_MODE (in->code) == BPF_ABS && in->k + 4 <= sizeof *d)
              memcpy (&v, (const char *) d + in->k, 4);
            else if (BPF_MODE (in->code) == BPF_IMM)
              v = in->k;
            else if (BPF_MODE (in->code) == BPF_MEM && in->k < BPF_MEMWORDS)
              v = M[in->k];
            else if (BPF_MODE (in->code) == BPF_LEN)
              v = sizeof *d;
            else
              return 0xdeadbeef;
            if (BPF_CLASS (in->code) == BPF_LD)
              A = v;
            else
              X = v;
            break;
          }
        case BPF_ST:
        case BPF_STX:
          if (in->k >= BPF_MEMWORDS)
            return 0xdeadbeef;
          M[in->k] = BPF_CLASS (in->code) == BPF_ST ? A : X;
          break;
        case BPF_ALU:
          switch (BPF_OP (in->code))
            {
            case BPF_ADD: A += src; break;
            case BPF_SUB: A -= src; break;
            case BPF_MUL: A *= src; break;
            case BPF_DIV: if (src == 0) return 0; A /= src; break;
            case BPF_AND: A &= src; break;
            case BPF_OR: A |= src; break;
            case BPF_LSH: A <<= src & 31; break;
            case BPF_RSH: A >>= src & 31; break;
            case BPF_NEG: A = -A; break;
            default: return 0xdeadbeef;
            }
          break;
        case BPF_JMP:
          if (BPF_OP (in->code) == BPF_JA)
            {
              pc += in->k;
              break;
            }
          switch (BPF_OP (in->code))
            {
            case BPF_JEQ: jt = A == src; break;
            case BPF_JGT: jt = A > src; break;
            case BPF_JGE: jt = A >= src; break;
            case BPF_JSET: jt = (A & src) != 0; break;
            default: return 0xdeadbeef;
            }
          pc += jt ? in->jt : in->jf;
          break;
        case BPF_RET:
          return BPF_RVAL (in->code) == BPF_A ? A : in->k;
        case BPF_MISC:
          if (BPF_MISCOP (in->code) == BPF_TAX)
            X = A;
          else
            A = X;
          break;
        default:
          return 0xdeadbeef;
        }
    }
  return 0xdeadbeef; /* fell off the end: the kernel would reject it */
}

static uint32_t
eval (const struct ob_seccomp_prog *p, uint32_t arch, int nr, uint64_t a0, uint64_t a1,
      uint64_t a2)
{
  struct seccomp_data d;
  memset (&d, 0, sizeof d);
  d.arch = arch;
  d.nr = nr;
  d.args[0] = a0;
  d.args[1] = a1;
  d.args[2] = a2;
  return bpf_run (p, &d);
}

#define RET_ERRNO(e) (SECCOMP_RET_ERRNO | (uint32_t) (e))

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#endif

/* ---- building ---- */

TEST (build_both_ways)
{
  CHECK (prog_plain != NULL && prog_plain->len > 0);
  CHECK (prog_root != NULL && prog_root->len > 0);
  if (prog_plain && prog_root)
    {
      CHECK (prog_plain->len <= BPF_MAXINSNS);
      CHECK (prog_root->len > prog_plain->len);
    }
}

TEST (build_is_deterministic)
{
  struct ob_seccomp_prog *p = NULL;
  ob_error_t err = NULL;

  CHECK_INT (ob_seccomp_build (false, &p, &err), 0);
  CHECK (err == NULL);
  if (p != NULL && prog_plain != NULL)
    {
      CHECK_INT (p->len, prog_plain->len);
      if (p->len == prog_plain->len)
        CHECK (memcmp (p->filter, prog_plain->filter,
                       p->len * sizeof (struct sock_filter)) == 0);
    }
  ob_seccomp_free (p);
  ob_seccomp_free (NULL);
}

/* The owners program sends the chown family to its listener: with the
 * listener closed (no supervisor) chown fails with ENOSYS, never hangs;
 * setuid is still emulated. */
TEST (build_owners_notifies_chown)
{
  struct ob_seccomp_prog *p = NULL;
  ob_error_t err = NULL;
  pid_t pid;
  int st;

  CHECK_INT (ob_seccomp_build_owners (&p, &err), 0);
  CHECK (err == NULL);
  if (p == NULL)
    return;
  CHECK (p->notify);
  if (!ob_seccomp_notify_available ())
    {
      ob_seccomp_free (p);
      return;
    }
  pid = fork ();
  if (pid == 0)
    {
      int fd = ob_seccomp_load (p);
      if (fd < 0)
        _exit (2);
      close (fd);
      if (chown ("/", (uid_t) -1, (gid_t) -1) == 0 || errno != ENOSYS)
        _exit (3);
      if (setuid (0) != 0)
        _exit (4);
      {
        /* the stat family goes to the listener too; other calls on
         * paths stay the kernel's */
        struct stat sb;
        if (fstat (0, &sb) == 0 || errno != ENOSYS)
          _exit (5);
        if (stat ("/", &sb) == 0 || errno != ENOSYS)
          _exit (6);
        if (access ("/", F_OK) != 0)
          _exit (7);
      }
      _exit (0);
    }
  CHECK (pid > 0);
  CHECK (waitpid (pid, &st, 0) == pid);
  CHECK (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  ob_seccomp_free (p);
}

/* The stat family goes to the supervisor, whatever the flags. */
TEST (bpf_owners_stat_rules)
{
#if defined(__x86_64__)
  struct ob_seccomp_prog *p = NULL;
  ob_error_t err = NULL;
  struct seccomp_data d;
  const uint32_t notif = SECCOMP_RET_USER_NOTIF;

  CHECK_INT (ob_seccomp_build_owners (&p, &err), 0);
  if (p == NULL)
    return;
#define EV(n, a2, a3)                                                              \
  (memset (&d, 0, sizeof d), d.arch = AUDIT_ARCH_X86_64, d.nr = (n), d.args[2] = (a2), \
   d.args[3] = (a3), bpf_run (p, &d))
  /* stat 4, fstat 5, lstat 6, newfstatat 262, statx 332, chown 92,
   * access 21, getxattr 191 */
  CHECK_INT (EV (4, 0, 0), notif);
  CHECK_INT (EV (5, 0, 0), notif);
  CHECK_INT (EV (6, 0, 0), notif);
  CHECK_INT (EV (262, 0, AT_EMPTY_PATH), notif);
  CHECK_INT (EV (262, 0, 0), notif);
  CHECK_INT (EV (262, 0, AT_SYMLINK_NOFOLLOW), notif);
  CHECK_INT (EV (332, AT_EMPTY_PATH, 0), notif);
  CHECK_INT (EV (332, 0, STATX_BASIC_STATS), notif);
  CHECK_INT (EV (92, 0, 0), notif);
  CHECK_INT (EV (21, 0, 0), SECCOMP_RET_ALLOW);
  CHECK_INT (EV (191, 0, 0), SECCOMP_RET_ALLOW);
  /* the other programs: the kernel's */
  CHECK_INT (eval (prog_root, AUDIT_ARCH_X86_64, 5, 0, 0, 0), SECCOMP_RET_ALLOW);
  CHECK_INT (eval (prog_root, AUDIT_ARCH_X86_64, 332, 0, 0, AT_EMPTY_PATH), SECCOMP_RET_ALLOW);
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_X86_64, 5, 0, 0, 0), SECCOMP_RET_ALLOW);
#undef EV
  ob_seccomp_free (p);
#else
  skip_reason = "only tested on x86_64";
#endif
}

/* With owners recorded, mknod of a character or block device goes to the
 * supervisor (a placeholder); other mknod calls stay the kernel's. */
TEST (bpf_owners_mknod_rules)
{
#ifdef NATIVE_ARCH
  struct ob_seccomp_prog *p = NULL;
  ob_error_t err = NULL;
  const uint32_t notif = SECCOMP_RET_USER_NOTIF;

  CHECK_INT (ob_seccomp_build_owners (&p, &err), 0);
  if (p == NULL)
    return;
  CHECK_INT (eval (p, NATIVE_ARCH, SYS_mknodat, AT_FDCWD, 0, S_IFCHR | 0666), notif);
  CHECK_INT (eval (p, NATIVE_ARCH, SYS_mknodat, AT_FDCWD, 0, S_IFBLK | 0600), notif);
  CHECK_INT (eval (p, NATIVE_ARCH, SYS_mknodat, AT_FDCWD, 0, S_IFIFO | 0600), SECCOMP_RET_ALLOW);
  CHECK_INT (eval (p, NATIVE_ARCH, SYS_mknodat, AT_FDCWD, 0, S_IFREG | 0600), SECCOMP_RET_ALLOW);
  CHECK_INT (eval (p, NATIVE_ARCH, SYS_mknodat, AT_FDCWD, 0, S_IFSOCK | 0600), SECCOMP_RET_ALLOW);
#ifdef SYS_mknod
  CHECK_INT (eval (p, NATIVE_ARCH, SYS_mknod, 0, S_IFCHR | 0666, 0), notif);
  CHECK_INT (eval (p, NATIVE_ARCH, SYS_mknod, 0, S_IFIFO | 0666, 0), SECCOMP_RET_ALLOW);
#endif
#if defined(__x86_64__)
  /* i386's mknod (14) too */
  CHECK_INT (eval (p, AUDIT_ARCH_I386, 14, 0, S_IFBLK | 0600, 0), notif);
  CHECK_INT (eval (p, AUDIT_ARCH_I386, 14, 0, S_IFIFO | 0600, 0), SECCOMP_RET_ALLOW);
#endif
  /* without a supervisor: succeed without effect, as before */
  CHECK_INT (eval (prog_root, NATIVE_ARCH, SYS_mknodat, AT_FDCWD, 0, S_IFCHR | 0666),
             RET_ERRNO (0));
  ob_seccomp_free (p);
#else
  skip_reason = "no native arch constants for this host";
#endif
}

/* A stat call's arguments, and what is left to the kernel. */
TEST (stat_decode)
{
  struct ob_stat_call c;
  uint64_t a[6] = { 0 };

  a[0] = 0x1000; a[1] = 0x2000;
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_STAT, a, &c), 0);
  CHECK (c.path == 0x1000 && c.buf == 0x2000 && !c.nofollow && !c.statx && !c.fd_only
         && c.dirfd == AT_FDCWD);
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_LSTAT, a, &c), 0);
  CHECK (c.nofollow);
  a[1] = 0; /* NULL buffer: EFAULT is the kernel's */
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_STAT, a, &c), 1);
  a[0] = 0; a[1] = 0x2000; /* NULL path */
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_STAT, a, &c), 1);

  /* fstat: a descriptor, the upper 32 bits ignored as by the kernel */
  a[0] = 0xffffffff00000007ull; a[1] = 0x2000;
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_FSTAT, a, &c), 0);
  CHECK (c.fd_only && c.dirfd == 7 && c.buf == 0x2000);
  a[0] = (uint64_t) -1; /* EBADF */
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_FSTAT, a, &c), 1);

  /* newfstatat (dirfd, path, buf, flags) */
  a[0] = 3; a[1] = 0x1000; a[2] = 0x2000; a[3] = AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW;
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_NEWFSTATAT, a, &c), 0);
  CHECK (c.dirfd == 3 && c.path == 0x1000 && c.buf == 0x2000 && c.empty_path && c.nofollow);
  a[0] = (uint64_t) (int64_t) AT_FDCWD; a[3] = AT_NO_AUTOMOUNT;
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_NEWFSTATAT, a, &c), 0);
  CHECK (c.dirfd == AT_FDCWD && !c.empty_path && !c.nofollow);
  a[3] = 0x40000; /* a flag newfstatat refuses */
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_NEWFSTATAT, a, &c), 1);
  a[3] = AT_STATX_FORCE_SYNC; /* statx's only */
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_NEWFSTATAT, a, &c), 1);

  /* statx (dirfd, path, flags, mask, buf) */
  a[0] = 4; a[1] = 0x1000; a[2] = AT_EMPTY_PATH | AT_STATX_FORCE_SYNC | AT_NO_AUTOMOUNT;
  a[3] = STATX_BASIC_STATS; a[4] = 0x3000;
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_STATX, a, &c), 0);
  CHECK (c.statx && c.dirfd == 4 && c.buf == 0x3000 && c.mask == STATX_BASIC_STATS
         && c.empty_path && !c.nofollow
         && c.sx_flags == (AT_STATX_FORCE_SYNC | AT_NO_AUTOMOUNT));
  a[2] = AT_STATX_SYNC_TYPE; /* both sync flags: EINVAL */
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_STATX, a, &c), 1);
  a[2] = 0; a[3] = STATX__RESERVED;
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_STATX, a, &c), 1);
  a[3] = 0; a[4] = 0;
  CHECK_INT (ob_seccomp_notify_stat_decode (OB_STAT_STATX, a, &c), 1);
  CHECK_INT (ob_seccomp_notify_stat_decode ((enum ob_stat_kind) 99, a, &c), 1);
}

TEST (load_rejects_empty_program)
{
  struct ob_seccomp_prog empty = { NULL, 0, false };
  CHECK_INT (ob_seccomp_load (NULL), -EINVAL);
  CHECK_INT (ob_seccomp_load (&empty), -EINVAL);
}

/* ---- the program, interpreted ---- */

#ifdef NATIVE_ARCH
static int persona_reports;

/* Docker's allowed personas. */
static bool
persona_allowed (uint32_t v)
{
  return v == 0 || v == 8 || v == 0x20000 || v == 0x20008 || v == 0xffffffff;
}

static void
check_persona (uint32_t arch, int nr, uint32_t v)
{
  uint32_t r = eval (prog_plain, arch, nr, v, 0, 0);
  uint32_t want = persona_allowed (v) ? SECCOMP_RET_ALLOW : RET_ERRNO (EPERM);
  if (r != want && persona_reports++ < 10)
    {
      printf ("#   personality(0x%x): filter returns 0x%x, expected 0x%x\n", v, r, want);
      tap_case_failed = 1;
    }
  else if (r != want)
    tap_case_failed = 1;
}
#endif

TEST (bpf_personality_matches_docker)
{
#ifdef NATIVE_ARCH
  uint32_t i, j, seed = 12345;

  if (prog_plain == NULL)
    {
      CHECK (0);
      return;
    }
  /* every value with at most two bits set or at most two bits clear */
  for (i = 0; i < 32 && !tap_case_failed; i++)
    for (j = 0; j < 32; j++)
      {
        uint32_t v = (1u << i) | (1u << j);
        check_persona (NATIVE_ARCH, SYS_personality, v);
        check_persona (NATIVE_ARCH, SYS_personality, ~v);
      }
  check_persona (NATIVE_ARCH, SYS_personality, 0);
  check_persona (NATIVE_ARCH, SYS_personality, 0xffffffff);
  check_persona (NATIVE_ARCH, SYS_personality, 0x20008);
  check_persona (NATIVE_ARCH, SYS_personality, ADDR_NO_RANDOMIZE);
  check_persona (NATIVE_ARCH, SYS_personality, READ_IMPLIES_EXEC);
  for (i = 0; i < 200000 && !tap_case_failed; i++)
    {
      seed = seed * 1103515245u + 12345u;
      check_persona (NATIVE_ARCH, SYS_personality, seed ^ (seed >> 13));
    }
#if defined(__x86_64__)
  check_persona (AUDIT_ARCH_I386, 136, 0x20008);
  check_persona (AUDIT_ARCH_I386, 136, 0xffffffff);
  check_persona (AUDIT_ARCH_I386, 136, ADDR_NO_RANDOMIZE);
#endif
#else
  skip_reason = "no native arch constants for this host";
#endif
}

TEST (bpf_compat_arches)
{
#if defined(__x86_64__)
  const uint32_t x32 = 0x40000000; /* __X32_SYSCALL_BIT */

  if (prog_plain == NULL || prog_root == NULL)
    {
      CHECK (0);
      return;
    }
  /* i386: keyctl 288, getpid 20, mount 21, chown32 212, mknod 14, clone 120,
   * clone3 435, ptrace 26 */
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_I386, 288, 0, 0, 0), RET_ERRNO (EPERM));
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_I386, 21, 0, 0, 0), RET_ERRNO (EPERM));
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_I386, 26, 0, 0, 0), RET_ERRNO (EPERM));
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_I386, 20, 0, 0, 0), SECCOMP_RET_ALLOW);
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_I386, 212, 0, 0, 0), SECCOMP_RET_ALLOW);
  CHECK_INT (eval (prog_root, AUDIT_ARCH_I386, 212, 0, 0, 0), RET_ERRNO (0));
  CHECK_INT (eval (prog_root, AUDIT_ARCH_I386, 14, 0, S_IFCHR | 0600, 0), RET_ERRNO (0));
  CHECK_INT (eval (prog_root, AUDIT_ARCH_I386, 14, 0, S_IFIFO | 0600, 0), SECCOMP_RET_ALLOW);
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_I386, 120, CLONE_NEWUSER | SIGCHLD, 0, 0),
             RET_ERRNO (EPERM));
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_I386, 120, SIGCHLD, 0, 0), SECCOMP_RET_ALLOW);
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_I386, 435, 0, 0, 0), RET_ERRNO (ENOSYS));
  /* x32: keyctl 250, getpid 39, chown 92 */
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_X86_64, x32 | 250, 0, 0, 0), RET_ERRNO (EPERM));
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_X86_64, x32 | 39, 0, 0, 0), SECCOMP_RET_ALLOW);
  CHECK_INT (eval (prog_root, AUDIT_ARCH_X86_64, x32 | 92, 0, 0, 0), RET_ERRNO (0));
  /* an architecture the filter does not know is never allowed */
  CHECK (eval (prog_plain, AUDIT_ARCH_AARCH64, 39, 0, 0, 0) != SECCOMP_RET_ALLOW);
#elif defined(__aarch64__)
  /* arm (EABI): keyctl 311, getpid 20, chown32 212 */
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_ARM, 311, 0, 0, 0), RET_ERRNO (EPERM));
  CHECK_INT (eval (prog_plain, AUDIT_ARCH_ARM, 20, 0, 0, 0), SECCOMP_RET_ALLOW);
  CHECK_INT (eval (prog_root, AUDIT_ARCH_ARM, 212, 0, 0, 0), RET_ERRNO (0));
#else
  skip_reason = "compat arch numbers only written down for x86_64 and aarch64";
#endif
}

TEST (bpf_mknod_mode_masks)
{
#ifdef NATIVE_ARCH
  if (prog_root == NULL)
    {
      CHECK (0);
      return;
    }
  CHECK_INT (eval (prog_root, NATIVE_ARCH, SYS_mknodat, AT_FDCWD, 0, S_IFCHR | 0666),
             RET_ERRNO (0));
  CHECK_INT (eval (prog_root, NATIVE_ARCH, SYS_mknodat, AT_FDCWD, 0, S_IFBLK | 0600),
             RET_ERRNO (0));
  CHECK_INT (eval (prog_root, NATIVE_ARCH, SYS_mknodat, AT_FDCWD, 0, S_IFIFO | 0600),
             SECCOMP_RET_ALLOW);
  CHECK_INT (eval (prog_root, NATIVE_ARCH, SYS_mknodat, AT_FDCWD, 0, S_IFREG | 0600),
             SECCOMP_RET_ALLOW);
  CHECK_INT (eval (prog_root, NATIVE_ARCH, SYS_mknodat, AT_FDCWD, 0, S_IFSOCK | 0600),
             SECCOMP_RET_ALLOW);
  /* without emulation, mknod is left to the kernel */
  CHECK_INT (eval (prog_plain, NATIVE_ARCH, SYS_mknodat, AT_FDCWD, 0, S_IFCHR | 0666),
             SECCOMP_RET_ALLOW);
#ifdef SYS_mknod
  CHECK_INT (eval (prog_root, NATIVE_ARCH, SYS_mknod, 0, S_IFCHR | 0666, 0), RET_ERRNO (0));
  CHECK_INT (eval (prog_root, NATIVE_ARCH, SYS_mknod, 0, S_IFIFO | 0666, 0),
             SECCOMP_RET_ALLOW);
#endif
#else
  skip_reason = "no native arch constants for this host";
#endif
}

/* ---- deny list, loaded ---- */

static int
child_keyctl (void)
{
  /* KEYCTL_GET_KEYRING_ID (0) of the session keyring (-3): harmless */
  CCHECK (FAILS_WITH (syscall (SYS_keyctl, 0, -3, 0, 0, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_add_key, "user", "obuild", "x", 1, -3), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_request_key, "user", "obuild", NULL, 0), EPERM));
  return 0;
}

TEST (deny_keyctl)
{
  CHECK_INT (run_child (prog_plain, child_keyctl), 0);
}

static int
child_bpf (void)
{
  /* an invalid command: EINVAL if the filter let it through */
  CCHECK (FAILS_WITH (syscall (SYS_bpf, 9999, NULL, 0), EPERM));
  return 0;
}

TEST (deny_bpf)
{
  CHECK_INT (run_child (prog_plain, child_bpf), 0);
}

static int
child_perf (void)
{
  CCHECK (FAILS_WITH (syscall (SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM));
  return 0;
}

TEST (deny_perf_event_open)
{
  if (skip_under_valgrind ())
    return;
  CHECK_INT (run_child (prog_plain, child_perf), 0);
}

static int
child_mount (void)
{
  CCHECK (FAILS_WITH (mount ("none", "/nonexistent/obuild", "tmpfs", 0, NULL), EPERM));
  CCHECK (FAILS_WITH (umount2 ("/nonexistent/obuild", 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_pivot_root, "/nonexistent/a", "/nonexistent/b"), EPERM));
#ifdef SYS_fsopen
  CCHECK (FAILS_WITH (syscall (SYS_fsopen, "tmpfs", 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_fsmount, -1, 0, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_fspick, AT_FDCWD, "/nonexistent/obuild", 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_fsconfig, -1, 0, NULL, NULL, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_open_tree, AT_FDCWD, "/nonexistent/obuild", 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_move_mount, -1, "", -1, "", 0), EPERM));
#endif
#ifdef SYS_mount_setattr
  CCHECK (FAILS_WITH (syscall (SYS_mount_setattr, -1, "", 0, NULL, 0), EPERM));
#endif
  return 0;
}

TEST (deny_mount_family)
{
  if (skip_under_valgrind ())
    return;
  CHECK_INT (run_child (prog_plain, child_mount), 0);
}

static int
child_unshare_user (void)
{
  CCHECK (FAILS_WITH (unshare (CLONE_NEWUSER), EPERM));
  CCHECK (FAILS_WITH (unshare (CLONE_NEWUSER | CLONE_NEWNS), EPERM));
  return 0;
}

TEST (deny_unshare_newuser)
{
  CHECK_INT (run_child (prog_plain, child_unshare_user), 0);
}

static int
child_clone_user (void)
{
  long r = syscall (SYS_clone, (unsigned long) (CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL,
                    NULL);
  if (r == 0)
    _exit (0); /* the filter failed and we are the new process */
  if (r > 0)
    waitpid ((pid_t) r, NULL, 0);
  CCHECK (r == -1 && errno == EPERM);
  return 0;
}

TEST (deny_clone_newuser)
{
  CHECK_INT (run_child (prog_plain, child_clone_user), 0);
}

static int
child_clone3 (void)
{
#ifdef SYS_clone3
  CCHECK (FAILS_WITH (syscall (SYS_clone3, NULL, 0), ENOSYS));
#endif
  return 0;
}

TEST (clone3_enosys)
{
  CHECK_INT (run_child (prog_plain, child_clone3), 0);
  CHECK_INT (run_child (prog_root, child_clone3), 0);
}

static int
child_kexec (void)
{
  /* bad flags: EINVAL (or EPERM unprivileged) without the filter */
  CCHECK (FAILS_WITH (syscall (SYS_kexec_load, 0, 0, NULL, 0xdead0000UL), EPERM));
#ifdef SYS_kexec_file_load
  CCHECK (FAILS_WITH (syscall (SYS_kexec_file_load, -1, -1, 0, NULL, 0xdead0000UL), EPERM));
#endif
  return 0;
}

TEST (deny_kexec_load)
{
  if (skip_under_valgrind ())
    return;
  CHECK_INT (run_child (prog_plain, child_kexec), 0);
}

static int
child_modules (void)
{
  CCHECK (FAILS_WITH (syscall (SYS_init_module, NULL, 0, ""), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_finit_module, -1, "", 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_delete_module, "obuild_nonexistent", 0), EPERM));
  return 0;
}

TEST (deny_module_loading)
{
  CHECK_INT (run_child (prog_plain, child_modules), 0);
}

static int
child_reboot_control (void)
{
  /* Without a filter a wrong magic number gives EINVAL when privileged (or
   * EPERM otherwise): proves the arguments below can never reboot. */
  long r = syscall (SYS_reboot, 0x12345678, 0x9abcdef0, LINUX_REBOOT_CMD_CAD_OFF, NULL);
  CCHECK (r == -1 && (errno == EINVAL || errno == EPERM));
  return 0;
}

static int
child_reboot (void)
{
  CCHECK (FAILS_WITH (syscall (SYS_reboot, 0x12345678, 0x9abcdef0, LINUX_REBOOT_CMD_CAD_OFF,
                               NULL),
                      EPERM));
  return 0;
}

TEST (deny_reboot)
{
  if (skip_under_valgrind ())
    return;
  CHECK_INT (run_child (NULL, child_reboot_control), 0);
  CHECK_INT (run_child (prog_plain, child_reboot), 0);
}

static int
child_ptrace (void)
{
  long word = 0;

  /* PEEKUSER of the parent, which we do not trace: ESRCH without the filter */
  CCHECK (FAILS_WITH (syscall (SYS_ptrace, 3 /* PTRACE_PEEKUSER */, getppid (), 0, &word),
                      EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_process_vm_readv, getppid (), NULL, 0, NULL, 0, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_process_vm_writev, getppid (), NULL, 0, NULL, 0, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_kcmp, getpid (), getppid (), 0, 0, 0), EPERM));
  return 0;
}

TEST (deny_ptrace)
{
  CHECK_INT (run_child (prog_plain, child_ptrace), 0);
}

static int
child_misc_denied (void)
{
  struct timespec ts = { 0, 0 };

  CCHECK (FAILS_WITH (syscall (SYS_swapon, "/nonexistent/obuild", 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_swapoff, "/nonexistent/obuild"), EPERM));
  /* setting CLOCK_MONOTONIC is EINVAL without the filter */
  CCHECK (FAILS_WITH (syscall (SYS_clock_settime, CLOCK_MONOTONIC, &ts), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_settimeofday, NULL, NULL), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_acct, (const char *) 1), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_setns, -1, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_syslog, 10 /* SIZE_BUFFER */, NULL, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_userfaultfd, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_open_by_handle_at, -1, NULL, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_name_to_handle_at, AT_FDCWD, "/", NULL, NULL, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_quotactl, 0, NULL, 0, NULL), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_vhangup), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_fanotify_init, 0, 0), EPERM));
#ifdef SYS_io_uring_setup
  /* EFAULT without the filter (no params) */
  CCHECK (FAILS_WITH (syscall (SYS_io_uring_setup, 1, NULL), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_io_uring_register, -1, 0, NULL, 0), EPERM));
#endif
#if defined(__x86_64__)
  CCHECK (FAILS_WITH (syscall (SYS_iopl, 0), EPERM));
  CCHECK (FAILS_WITH (syscall (SYS_ioperm, 0, 0, 0), EPERM));
#endif
  return 0;
}

TEST (deny_misc)
{
  if (skip_under_valgrind ())
    return;
  CHECK_INT (run_child (prog_plain, child_misc_denied), 0);
}

static int
child_personality (void)
{
  int cur = personality (0xffffffff);
  CCHECK (cur != -1);
  CCHECK (personality (PER_LINUX) != -1);
  CCHECK (personality (PER_LINUX32) != -1);
  CCHECK (personality (UNAME26) != -1);
  CCHECK (personality (PER_LINUX32 | UNAME26) != -1);
  CCHECK (personality (PER_LINUX) != -1);
  CCHECK (FAILS_WITH (personality (ADDR_NO_RANDOMIZE), EPERM));
  CCHECK (FAILS_WITH (personality (READ_IMPLIES_EXEC), EPERM));
  CCHECK (FAILS_WITH (personality (MMAP_PAGE_ZERO), EPERM));
  CCHECK (FAILS_WITH (personality (PER_BSD), EPERM));
  CCHECK (FAILS_WITH (personality (0xfffffffe), EPERM));
  CCHECK (personality (0xffffffff) == PER_LINUX);
  return 0;
}

TEST (personality_only_docker_personas)
{
  CHECK_INT (run_child (prog_plain, child_personality), 0);
}

/* ---- ordinary calls still work ---- */

static int
child_ordinary (void)
{
  cleanup_free char *dir = tmp_path ("ordinary");
  cleanup_free char *file = tmp_path ("ordinary/f");
  char buf[8];
  int fd, status;
  pid_t pid;

  CCHECK (getpid () > 1);
  CCHECK (mkdir (dir, 0755) == 0 || errno == EEXIST);
  fd = open (file, O_RDWR | O_CREAT | O_TRUNC, 0644);
  CCHECK (fd >= 0);
  CCHECK (write (fd, "hello", 5) == 5);
  CCHECK (lseek (fd, 0, SEEK_SET) == 0);
  CCHECK (read (fd, buf, sizeof buf) == 5);
  CCHECK (memcmp (buf, "hello", 5) == 0);
  close (fd);
  CCHECK (unlink (file) == 0);
  CCHECK (rmdir (dir) == 0);
  CCHECK (prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
  CCHECK (prctl (PR_GET_SECCOMP, 0, 0, 0, 0) == 2);

  /* fork: glibc uses clone (or clone3, which must fall back) */
  pid = fork ();
  CCHECK (pid >= 0);
  if (pid == 0)
    _exit (42);
  CCHECK (waitpid (pid, &status, 0) == pid);
  CCHECK (WIFEXITED (status) && WEXITSTATUS (status) == 42);
  /* clone with namespace flags other than CLONE_NEWUSER is not filtered:
   * the kernel decides (EPERM unprivileged, success as root) */
  return 0;
}

TEST (ordinary_calls_work)
{
  CHECK_INT (run_child (prog_plain, child_ordinary), 0);
  CHECK_INT (run_child (prog_root, child_ordinary), 0);
}

static int
child_threads_exec (void)
{
  /* posix_spawn / system use clone(CLONE_VM|CLONE_VFORK) or clone3 */
  int r = system ("exit 7");
  CCHECK (WIFEXITED (r) && WEXITSTATUS (r) == 7);
  return 0;
}

TEST (exec_and_spawn_work)
{
  CHECK_INT (run_child (prog_plain, child_threads_exec), 0);
  CHECK_INT (run_child (prog_root, child_threads_exec), 0);
}

/* ---- root emulation off: chown is not faked ---- */

static uid_t victim_uid;

/* Become nobody if we are root, so that chown is really checked. */
static int
pre_drop_to_nobody (void)
{
  if (geteuid () != 0)
    return 0;
  if (setgroups (0, NULL) < 0 || setresgid (65534, 65534, 65534) < 0
      || setresuid (65534, 65534, 65534) < 0)
    return CHILD_SKIP;
  return 0;
}

static int
child_chown_real (void)
{
  cleanup_free char *file = tmp_path ("victim");
  struct stat st;

  CCHECK (geteuid () != 0);
  /* give the file away (unprivileged), or take a root-owned one */
  CCHECK (FAILS_WITH (chown (file, victim_uid == 0 ? 12345 : 0, 0), EPERM));
  CCHECK (stat (file, &st) == 0 && st.st_uid == victim_uid);
  return 0;
}

TEST (plain_chown_not_faked)
{
  struct stat st;
  cleanup_free char *file = tmp_path ("victim");

  CHECK_INT (make_file ("victim"), 0);
  CHECK_INT (stat (file, &st), 0);
  victim_uid = st.st_uid;
  CHECK_INT (run_child_pre (prog_plain, pre_drop_to_nobody, child_chown_real), 0);
  unlink (file);
}

static int
child_mknod_plain (void)
{
  cleanup_free char *dev = tmp_path ("plain-null");
  struct stat st;

  /* the kernel decides: created as real root, EPERM otherwise */
  if (mknod (dev, S_IFCHR | 0600, makedev (1, 3)) == 0)
    {
      CCHECK (lstat (dev, &st) == 0 && S_ISCHR (st.st_mode));
      unlink (dev);
    }
  else
    CCHECK (errno == EPERM);
  return 0;
}

TEST (plain_mknod_left_to_kernel)
{
  CHECK_INT (run_child (prog_plain, child_mknod_plain), 0);
}

/* ---- root emulation on ---- */

static int
child_chown_faked (void)
{
  cleanup_free char *file = tmp_path ("owned");
  cleanup_free char *link = tmp_path ("owned-link");
  struct stat before, st;
  int fd;

  CCHECK (lstat (file, &before) == 0);
  fd = open (file, O_RDONLY);
  CCHECK (fd >= 0);
  CCHECK (chown (file, 12345, 12345) == 0);
  CCHECK (lchown (file, 12345, 12345) == 0);
  CCHECK (fchown (fd, 12345, 12345) == 0);
  CCHECK (fchownat (AT_FDCWD, file, 12345, 12345, 0) == 0);
  CCHECK (fchownat (fd, "", 12345, 12345, AT_EMPTY_PATH) == 0);
  CCHECK (lchown (link, 12345, 12345) == 0);
#ifdef SYS_chown
  CCHECK (syscall (SYS_chown, file, 12345, 12345) == 0);
  CCHECK (syscall (SYS_lchown, file, 12345, 12345) == 0);
#endif
  CCHECK (syscall (SYS_fchown, fd, 12345, 12345) == 0);
  CCHECK (syscall (SYS_fchownat, AT_FDCWD, file, 12345, 12345, 0) == 0);
  close (fd);
  CCHECK (lstat (file, &st) == 0);
  CCHECK (st.st_uid == before.st_uid && st.st_gid == before.st_gid);
  CCHECK (st.st_uid != 12345);
  return 0;
}

TEST (emulate_chown_family)
{
  cleanup_free char *file = tmp_path ("owned");
  cleanup_free char *link = tmp_path ("owned-link");

  CHECK_INT (make_file ("owned"), 0);
  CHECK_INT (symlink ("owned", link), 0);
  CHECK_INT (run_child (prog_root, child_chown_faked), 0);
  unlink (link);
  unlink (file);
}

static int
child_chown_faked_unprivileged (void)
{
  cleanup_free char *file = tmp_path ("victim");
  struct stat st;

  CCHECK (geteuid () != 0);
  CCHECK (chown (file, 0, 0) == 0);
  CCHECK (chown (file, 12345, 12345) == 0);
  CCHECK (stat (file, &st) == 0 && st.st_uid == victim_uid);
  return 0;
}

TEST (emulate_chown_unprivileged)
{
  struct stat st;
  cleanup_free char *file = tmp_path ("victim");

  CHECK_INT (make_file ("victim"), 0);
  CHECK_INT (stat (file, &st), 0);
  victim_uid = st.st_uid;
  CHECK_INT (run_child_pre (prog_root, pre_drop_to_nobody, child_chown_faked_unprivileged),
             0);
  unlink (file);
}

static int
child_setid_faked (void)
{
  uid_t uid = getuid (), euid = geteuid ();
  gid_t gid = getgid (), egid = getegid ();
  gid_t groups[64], one = 1234;
  int ngroups = getgroups (64, groups), n2;

  CCHECK (ngroups >= 0);
  CCHECK (setuid (1234) == 0);
  CCHECK (seteuid (1234) == 0);
  CCHECK (setreuid (1234, 1234) == 0);
  CCHECK (setresuid (1234, 1234, 1234) == 0);
  CCHECK (setgid (1234) == 0);
  CCHECK (setegid (1234) == 0);
  CCHECK (setregid (1234, 1234) == 0);
  CCHECK (setresgid (1234, 1234, 1234) == 0);
  CCHECK (syscall (SYS_setfsuid, 1234) == 0);
  CCHECK (syscall (SYS_setfsgid, 1234) == 0);
  CCHECK (setgroups (1, &one) == 0);
  CCHECK (setgroups (0, NULL) == 0);
  CCHECK (getuid () == uid && geteuid () == euid);
  CCHECK (getgid () == gid && getegid () == egid);
  n2 = getgroups (64, groups);
  CCHECK (n2 == ngroups);
  return 0;
}

TEST (emulate_setid_family)
{
  CHECK_INT (run_child (prog_root, child_setid_faked), 0);
}

static int
child_setid_real (void)
{
  uid_t uid = getuid ();
  /* without emulation an unprivileged setuid to a foreign id fails */
  if (uid != 0)
    CCHECK (FAILS_WITH (setuid (uid == 1234 ? 1235 : 1234), EPERM));
  else
    {
      CCHECK (setresuid (1234, 1234, 1234) == 0);
      CCHECK (getuid () == 1234);
    }
  return 0;
}

TEST (plain_setid_not_faked)
{
  CHECK_INT (run_child (prog_plain, child_setid_real), 0);
}

static int
child_capset (void)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct before[2], empty[2], after[2];

  /* valgrind marks only data[0] as written by capget */
  memset (before, 0, sizeof before);
  memset (after, 0, sizeof after);
  memset (empty, 0, sizeof empty);
  CCHECK (syscall (SYS_capget, &hdr, before) == 0);
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  CCHECK (syscall (SYS_capset, &hdr, empty) == 0);
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  CCHECK (syscall (SYS_capget, &hdr, after) == 0);
  CCHECK (memcmp (before, after, sizeof before) == 0);
  return 0;
}

TEST (emulate_capset)
{
  CHECK_INT (run_child (prog_root, child_capset), 0);
}

static int
child_mknod_faked (void)
{
  cleanup_free char *chr = tmp_path ("null");
  cleanup_free char *blk = tmp_path ("loop9");
  cleanup_free char *fifo = tmp_path ("fifo");
  cleanup_free char *reg = tmp_path ("regular");
  struct stat st;

  CCHECK (mknod (chr, S_IFCHR | 0666, makedev (1, 3)) == 0);
  CCHECK (lstat (chr, &st) == -1 && errno == ENOENT);
  CCHECK (mknod (blk, S_IFBLK | 0600, makedev (7, 9)) == 0);
  CCHECK (lstat (blk, &st) == -1 && errno == ENOENT);
#ifdef SYS_mknod
  CCHECK (syscall (SYS_mknod, chr, S_IFCHR | 0666, makedev (1, 3)) == 0);
  CCHECK (lstat (chr, &st) == -1 && errno == ENOENT);
  CCHECK (syscall (SYS_mknod, fifo, S_IFIFO | 0600, 0) == 0);
  CCHECK (lstat (fifo, &st) == 0 && S_ISFIFO (st.st_mode));
  CCHECK (unlink (fifo) == 0);
#endif
  CCHECK (mknod (fifo, S_IFIFO | 0600, 0) == 0);
  CCHECK (lstat (fifo, &st) == 0 && S_ISFIFO (st.st_mode));
  CCHECK (mknod (reg, S_IFREG | 0600, 0) == 0);
  CCHECK (lstat (reg, &st) == 0 && S_ISREG (st.st_mode));
  /* a real mknod still reports real errors */
  CCHECK (FAILS_WITH (mknod (fifo, S_IFIFO | 0600, 0), EEXIST));
  unlink (fifo);
  unlink (reg);
  return 0;
}

TEST (emulate_mknod)
{
  CHECK_INT (run_child (prog_root, child_mknod_faked), 0);
}

static int
child_mknodat_faked (void)
{
  struct stat st;
  int dfd = open (tmpdir, O_RDONLY | O_DIRECTORY);

  CCHECK (dfd >= 0);
  CCHECK (mknodat (dfd, "at-null", S_IFCHR | 0666, makedev (1, 3)) == 0);
  CCHECK (fstatat (dfd, "at-null", &st, AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT);
  CCHECK (mknodat (dfd, "at-blk", S_IFBLK | 0666, makedev (7, 0)) == 0);
  CCHECK (fstatat (dfd, "at-blk", &st, AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT);
  CCHECK (syscall (SYS_mknodat, dfd, "at-null", S_IFCHR | 0666, makedev (1, 3)) == 0);
  CCHECK (fstatat (dfd, "at-null", &st, AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT);
  CCHECK (mknodat (dfd, "at-fifo", S_IFIFO | 0644, 0) == 0);
  CCHECK (fstatat (dfd, "at-fifo", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISFIFO (st.st_mode));
  CCHECK (mkfifoat (dfd, "at-fifo2", 0644) == 0);
  CCHECK (fstatat (dfd, "at-fifo2", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISFIFO (st.st_mode));
  unlinkat (dfd, "at-fifo", 0);
  unlinkat (dfd, "at-fifo2", 0);
  close (dfd);
  return 0;
}

TEST (emulate_mknodat)
{
  CHECK_INT (run_child (prog_root, child_mknodat_faked), 0);
}

TEST (emulate_keeps_deny_list)
{
  if (skip_under_valgrind ())
    return;
  CHECK_INT (run_child (prog_root, child_keyctl), 0);
  CHECK_INT (run_child (prog_root, child_mount), 0);
  CHECK_INT (run_child (prog_root, child_ptrace), 0);
  CHECK_INT (run_child (prog_root, child_unshare_user), 0);
  CHECK_INT (run_child (prog_root, child_reboot), 0);
}

/* ---- compat syscalls for real (x86_64: int $0x80 enters the i386 ABI) ---- */

#if defined(__x86_64__)
static long
int80 (long nr, long a, long b, long c)
{
  long r;
  __asm__ volatile ("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
  return r;
}

static int
child_int80_control (void)
{
  /* i386 getpid; SIGSEGV here means the kernel has no ia32 emulation */
  return int80 (20, 0, 0, 0) == getpid () ? 0 : 1;
}

static int
child_int80 (void)
{
  long pid = int80 (20, 0, 0, 0);
  CCHECK (pid == getpid ());
  /* keyctl(GET_KEYRING_ID, session) */
  CCHECK (int80 (288, 0, -3, 0) == -EPERM);
  /* clone3 */
  CCHECK (int80 (435, 0, 0, 0) == -ENOSYS);
  /* unshare(CLONE_NEWUSER) */
  CCHECK (int80 (310, CLONE_NEWUSER, 0, 0) == -EPERM);
  return 0;
}

static int
child_int80_emulate (void)
{
  /* chown32 with a pointer the i386 ABI cannot even express: EFAULT if the
   * filter let it through */
  static char path[] = "/nonexistent";
  CCHECK (int80 (212, (long) path, 12345, 12345) == 0);
  /* setuid32 */
  CCHECK (int80 (213, 1234, 0, 0) == 0);
  CCHECK (getuid () != 1234);
  return 0;
}
#endif

TEST (compat_abi_is_filtered)
{
#if defined(__x86_64__)
  int r;

  if (skip_under_valgrind ())
    return;
  r = run_child (NULL, child_int80_control);
  if (r != 0)
    {
      skip_reason = "no ia32 emulation in this kernel";
      return;
    }
  CHECK_INT (run_child (prog_plain, child_int80), 0);
  CHECK_INT (run_child (prog_root, child_int80_emulate), 0);
#else
  skip_reason = "only tested on x86_64";
#endif
}

int
main (void)
{
  ob_error_t err = NULL;
  char tmpl[] = "/tmp/obuild-test-seccomp-XXXXXX";

  if (ob_seccomp_build (false, &prog_plain, &err) < 0
      || ob_seccomp_build (true, &prog_root, &err) < 0)
    {
      printf ("Bail out! ob_seccomp_build: %s\n", err ? err->msg : "?");
      ob_error_free (&err);
      return 1;
    }
  tmpdir = mkdtemp (tmpl);
  if (tmpdir == NULL || chmod (tmpdir, 0777) < 0)
    {
      printf ("Bail out! mkdtemp: %s\n", strerror (errno));
      return 1;
    }

  RUN (build_both_ways);
  RUN (build_is_deterministic);
  RUN (load_rejects_empty_program);
  RUN (build_owners_notifies_chown);
  RUN (bpf_owners_stat_rules);
  RUN (bpf_owners_mknod_rules);
  RUN (stat_decode);
  RUN_S (bpf_personality_matches_docker);
  RUN_S (bpf_compat_arches);
  RUN_S (bpf_mknod_mode_masks);
  RUN_S (deny_keyctl);
  RUN_S (deny_bpf);
  RUN_S (deny_perf_event_open);
  RUN_S (deny_mount_family);
  RUN_S (deny_unshare_newuser);
  RUN_S (deny_clone_newuser);
  RUN_S (clone3_enosys);
  RUN_S (deny_kexec_load);
  RUN_S (deny_module_loading);
  RUN_S (deny_reboot);
  RUN_S (deny_ptrace);
  RUN_S (deny_misc);
  RUN_S (personality_only_docker_personas);
  RUN_S (ordinary_calls_work);
  RUN_S (exec_and_spawn_work);
  RUN_S (plain_chown_not_faked);
  RUN_S (plain_mknod_left_to_kernel);
  RUN_S (plain_setid_not_faked);
  RUN_S (emulate_chown_family);
  RUN_S (emulate_chown_unprivileged);
  RUN_S (emulate_setid_family);
  RUN_S (emulate_capset);
  RUN_S (emulate_mknod);
  RUN_S (emulate_mknodat);
  RUN_S (emulate_keeps_deny_list);
  RUN_S (compat_abi_is_filtered);

  ob_seccomp_free (prog_plain);
  ob_seccomp_free (prog_root);
  rmdir (tmpdir);
  TAP_DONE ();
}
