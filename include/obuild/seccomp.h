/* seccomp: the filter every RUN step runs under, compiled with libseccomp in
 * the parent (obuild) into a BPF program that the sandbox child only loads.
 *
 * Always: a deny list like Docker's default profile for calls a build step
 * never needs (kexec_load, module loading, keyctl/add_key/request_key, bpf,
 * perf_event_open, mount/umount2/pivot_root, swapon/swapoff, reboot,
 * clock/time setting, acct, ptrace (entirely, as Docker on kernels < 4.8),
 * setns, personalities other than Docker's five, ...), returning EPERM;
 * clone/unshare with CLONE_NEWUSER fail with EPERM and clone3 with ENOSYS
 * (so libc falls back to clone, whose flags BPF can see).
 * With emulate_root (single-ID user namespace): the chown family, the set*id
 * family, setgroups, capset and mknod/mknodat of character or block devices
 * succeed without effect, so package managers work.
 * ob_seccomp_build_owners: the same, but the chown family goes to a user
 * notification listener (SECCOMP_RET_USER_NOTIF) whose supervisor
 * (seccomp_notify.h) records the owners asked for; so do the stat family
 * and mknod/mknodat of character or block devices (the supervisor makes a
 * placeholder that the layer writer turns into the device). */
#ifndef OBUILD_SECCOMP_H
#define OBUILD_SECCOMP_H

#include <obuild/error.h>

#include <stdbool.h>
#include <stddef.h>

struct ob_seccomp_prog
{
  void *filter;        /* struct sock_filter[len] */
  unsigned short len;  /* number of instructions */
  bool notify;         /* loading returns a user notification listener */
};

/* Compile the filter for the host architecture (and its compat
 * architectures, e.g. x86 and x32 on x86_64).  OB_ERR_GENERIC on failure. */
int ob_seccomp_build (bool emulate_root, struct ob_seccomp_prog **out, ob_error_t *err);
/* emulate_root with the chown family sent to a listener; only for kernels
 * where ob_seccomp_notify_available () holds. */
int ob_seccomp_build_owners (struct ob_seccomp_prog **out, ob_error_t *err);
/* The filter of a command in a mode: in single-ID mode the owners one
 * where the kernel has user notification, else ob_seccomp_build;
 * *no_owners (may be NULL) says single-ID mode had to do without. */
int ob_seccomp_build_for (bool userns_single, struct ob_seccomp_prog **out, bool *no_owners,
                          ob_error_t *err);
void ob_seccomp_free (struct ob_seccomp_prog *p);

/* Load the program into the calling thread: sets no_new_privs first.
 * Only raw syscalls: usable in a child after fork/clone.  Returns 0 (for a
 * notify program: the listener descriptor, >= 0) or a negative errno. */
int ob_seccomp_load (const struct ob_seccomp_prog *p);

#endif
