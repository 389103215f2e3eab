/* Internal to the seccomp_notify module: the supervisor's state, and the
 * helpers that reach the calling process's files, which the supervisor
 * loop with its chown, mknod and rename handlers (seccomp_notify.c) and
 * the stat emulation (seccomp_stat.c) share. */
#ifndef OBUILD_SECCOMP_NOTIFY_PRIV_H
#define OBUILD_SECCOMP_NOTIFY_PRIV_H

#include <obuild/seccomp_notify.h>

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct seccomp_notif;

/* How many calls family[] (seccomp_notify.c) names: the size of
 * struct ob_notify_native's nr. */
#define OB_NOTIFY_N_FAMILY 19

/* The file's type, device and mount, with one statx. */
struct ob_notify_file_id
{
  mode_t mode;
  dev_t dev;
  uint64_t mnt; /* the mount id, or (Linux < 5.8) the device */
};

/* The supervisor's own state: the native numbers, and pidfds of the last
 * threads that called (PIDFD_THREAD, Linux >= 6.9), kept so that a
 * descriptor's stat takes the caller's file with one pidfd_getfd instead
 * of a walk through /proc (cp -a makes two such calls a file). */
#define OB_NOTIFY_PIDFD_SLOTS 8
struct ob_notify_native
{
  uint32_t arch;
  int nr[OB_NOTIFY_N_FAMILY];
  pid_t tid[OB_NOTIFY_PIDFD_SLOTS];
  int pidfd[OB_NOTIFY_PIDFD_SLOTS]; /* -1: empty */
  unsigned int next;
  bool no_pidfd; /* the kernel cannot: /proc it is */
  /* the step's root, while no process of it has called chroot: until then
   * every process's root is the one the sandbox gave the first (mounts,
   * pivot_root and setns are denied), and /proc/PID/root need not be
   * walked for each call */
  int root;
  bool chrooted;
  int chroot_nr;
  int self_fd; /* /proc/self/fd, for listxattrat (Linux >= 6.13), or -1 */
  bool stat_continue; /* benchmarks: every stat call left to the kernel at once */
  int rename_nr[3];   /* rename, renameat, renameat2 */
  /* a recorded symlink being renamed: its old directory and name, and the
   * link (settle_rename) */
  int pend_fd;
  char pend_name[NAME_MAX + 1];
  dev_t pend_dev;
  ino_t pend_ino;
};

/* handle's answer (and ob_notify_handle_stat's): the kernel performs the
 * call itself (SECCOMP_USER_NOTIF_FLAG_CONTINUE) */
#define OB_NOTIFY_LEAVE 2

/* In seccomp_stat.c, each described there. */
int ob_notify_read_path (pid_t pid, uint64_t addr, char *buf);
int ob_notify_start_dir (pid_t pid, int dirfd, char *out, size_t size);
int ob_notify_open_in_root (int rootfd, const char *path, bool nofollow);
int ob_notify_file_id (int fd, struct ob_notify_file_id *id);
bool ob_notify_has_name (const char *list, ssize_t len, const char *name);
int ob_notify_caller_root (struct ob_notify_native *n, pid_t pid);
int ob_notify_open_proc_fd (pid_t pid, int dirfd, int flags);
int ob_notify_link_parent (pid_t pid, int rootfd, const char *full, int dirfd, char name[NAME_MAX + 1]);
bool ob_notify_link_is_in (int rootfd, int dirfd, const char *name, const struct stat *st);
int ob_notify_handle_stat (struct ob_notify_native *nat, int listener, const struct seccomp_notif *req,
                           enum ob_stat_kind kind);

/* In seccomp_notify.c. */
int ob_notify_gone_or (int listener, const struct seccomp_notif *req, int e);

#endif
