#!/bin/sh
# What obuild itself (not the step) does with a hostile root file system:
# the image's /etc/passwd and /etc/group, read by obuild to resolve USER
# (RUN) and the user of `obuild run`, may be a FIFO (obuild hung in open),
# a device (root mode: /dev/zero filled obuild's memory) or a sparse file
# of gigabytes (read into memory); each is taken as no such file.
. "$(dirname "$0")/lib.sh"

# tob MODE ARGS...: obuild as MODE, killed after 30 s and kept to 1 GiB of
# address space (a hang or an endless read fails the test, not the suite).
tob() {
  _m=$1; shift
  as "$_m" env OBUILD_ROOT="$(store "$_m")" sh -c 'ulimit -v 1048576; exec timeout -k 5 30 "$@"' sh "$OB" "$@"
}

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
printf 'FROM busybox\nRUN rm /etc/passwd && mkfifo /etc/passwd\nUSER nobody\nRUN true\n' >"$ctx/Dockerfile.fifo"
printf 'FROM busybox\nRUN rm /etc/passwd /etc/group && mkfifo /etc/passwd /etc/group\n' >"$ctx/Dockerfile.fifo-run"
printf 'FROM busybox\nRUN rm /etc/passwd && dd if=/dev/zero of=/etc/passwd bs=1M seek=4095 count=1 2>/dev/null\nUSER nobody\nRUN true\n' >"$ctx/Dockerfile.huge"
chmod -R a+rX "$ctx"

# a base image whose /etc/passwd and /etc/group are /dev/zero's device
devtar=$TESTDIR/zerobase.tar
python3 - "$(busybox_tar)" "$devtar" <<'PY'
import sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
with tarfile.open(src) as i, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as o:
    for m in i.getmembers():
        if m.name.lstrip("./") in ("etc/passwd", "etc/group"):
            continue
        o.addfile(m, i.extractfile(m) if m.isfile() else None)
    for name in ("etc/passwd", "etc/group"):
        t = tarfile.TarInfo(name); t.type = tarfile.CHRTYPE; t.devmajor = 1; t.devminor = 5; t.mode = 0o666
        o.addfile(t)
PY
chmod a+r "$devtar"
printf 'FROM zerobase\nUSER nobody\nRUN true\n' >"$ctx/Dockerfile.zero"

for m in $MODES; do
  import_busybox "$m"
  ob "$m" import --source-date-epoch 1700000000 "$devtar" zerobase:latest >/dev/null 2>&1
  check_fail 3 "Dockerfile.fifo:4: USER nobody: unable to find user nobody" \
    "[$m] USER with /etc/passwd a FIFO: exit 3, obuild does not hang" \
    tob "$m" build -f "$ctx/Dockerfile.fifo" "$ctx"
  check_fail 3 "Dockerfile.huge:4: USER nobody: unable to find user nobody" \
    "[$m] USER with a sparse 4 GiB /etc/passwd: exit 3, not read into memory" \
    tob "$m" build -f "$ctx/Dockerfile.huge" "$ctx"
  check_fail 3 "Dockerfile.zero:3: USER nobody: unable to find user nobody" \
    "[$m] USER with /etc/passwd a device (/dev/zero's in root mode): exit 3" \
    tob "$m" build -f "$ctx/Dockerfile.zero" "$ctx"
  check_eq "[$m] ... no scratch left behind" "$(ls -A "$(store "$m")/tmp" | wc -l)" 0

  tob "$m" build -t fifo-run -f "$ctx/Dockerfile.fifo-run" "$ctx" >"$TESTDIR/.b" 2>&1
  check_eq "[$m] an image with FIFOs for /etc/passwd and /etc/group builds" "$?" 0
  check_eq "[$m] obuild run of it: the command runs, obuild does not hang" \
    "$(tob "$m" run --network none fifo-run echo ran 2>&1)" ran
  check_eq "[$m] obuild run of the image whose /etc/passwd and /etc/group are devices: the command runs" \
    "$(tob "$m" run --network none zerobase echo ran 2>&1)" ran
  check_eq "[$m] ... no scratch left behind" "$(ls -A "$(store "$m")/tmp" | wc -l)" 0
done
done_testing
