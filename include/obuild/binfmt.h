/* binfmt: running the programs of another architecture.  A RUN of a
 * foreign platform executes its binaries through qemu-user, which the
 * kernel starts by binfmt_misc.  The interpreter must be registered with
 * the F (fix-binary) flag: the kernel then opens it at registration, so it
 * works inside the build's root and user namespace, where its path does not
 * exist. */
#ifndef OBUILD_BINFMT_H
#define OBUILD_BINFMT_H

#include <obuild/error.h>

#include <stdbool.h>

/* qemu's name of an OCI architecture ("arm64" -> "aarch64"), NULL when
 * obuild knows of no qemu-user for it. */
const char *ob_binfmt_qemu_arch (const char *arch);

/* Does this machine run arch's programs natively (the host's own, or 386
 * on amd64)? */
bool ob_binfmt_native (const char *arch);

/* Can a RUN of platform os/arch execute here?  0 when natively, or when
 * binfmt_misc has qemu-<arch> enabled with the F flag, or when arch is no
 * architecture obuild knows (the kernel then decides).  Otherwise
 * OB_ERR_USERNS, one line saying what to install or enable.  The directory
 * read is /proc/sys/fs/binfmt_misc, or $OBUILD_TEST_BINFMT_DIR when set (a
 * hook for the test suite only: a directory laid out as binfmt_misc). */
int ob_binfmt_check (const char *os, const char *arch, ob_error_t *err);

#endif
