#include "config.h"
#include "tap.h"
#include <obuild/rootfs.h>
#include <obuild/run.h>

#include <signal.h>

/* STOPSIGNAL values as images carry them: names with or without SIG, any
 * case, numbers, Docker's real-time names; 0 for what names no signal. */
TEST (test_parse_signal)
{
  CHECK_INT (ob_run_parse_signal ("SIGTERM"), SIGTERM);
  CHECK_INT (ob_run_parse_signal ("TERM"), SIGTERM);
  CHECK_INT (ob_run_parse_signal ("sigusr1"), SIGUSR1);
  CHECK_INT (ob_run_parse_signal ("9"), SIGKILL);
  CHECK_INT (ob_run_parse_signal ("SIGWINCH"), SIGWINCH);
  CHECK_INT (ob_run_parse_signal ("SIGRTMIN"), SIGRTMIN);
  CHECK_INT (ob_run_parse_signal ("SIGRTMIN+3"), SIGRTMIN + 3);
  CHECK_INT (ob_run_parse_signal ("RTMAX-1"), SIGRTMAX - 1);
  CHECK_INT (ob_run_parse_signal (""), 0);
  CHECK_INT (ob_run_parse_signal ("SIGNOPE"), 0);
  CHECK_INT (ob_run_parse_signal ("0"), 0);
  CHECK_INT (ob_run_parse_signal ("9x"), 0);
  CHECK_INT (ob_run_parse_signal ("100000"), 0);
  CHECK_INT (ob_run_parse_signal ("SIGRTMIN-1"), 0);
  CHECK_INT (ob_run_parse_signal ("SIGRTMIN+"), 0);
  CHECK_INT (ob_run_parse_signal ("SIGRTMIN+999"), 0);
}

/* USER's groups: the primary first, then /etc/group memberships unless
 * the spec names a group; no duplicates. */
TEST (test_groups)
{
  const char *passwd = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
  const char *group = "root:x:0:\nstaff:x:50:app,other\napp:x:1000:app\nwheel:x:10:root\n";
  gid_t g[8];
  size_t n = ob_rootfs_groups ("app", passwd, group, 1000, 1000, g, 8);
  CHECK_INT ((int) n, 2);
  CHECK_INT ((int) g[0], 1000);
  CHECK_INT ((int) g[1], 50);
  n = ob_rootfs_groups ("app:50", passwd, group, 1000, 50, g, 8);
  CHECK_INT ((int) n, 1);
  CHECK_INT ((int) g[0], 50);
  n = ob_rootfs_groups ("1000", NULL, NULL, 1000, 1000, g, 8);
  CHECK_INT ((int) n, 1);
  n = ob_rootfs_groups ("app", passwd, group, 1000, 1000, g, 1);
  CHECK_INT ((int) n, 1);
}

int
main (void)
{
  RUN (test_parse_signal);
  RUN (test_groups);
  TAP_DONE ();
}
