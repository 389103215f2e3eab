#!/bin/sh
# What obuild itself (not the step) does with a hostile root file system:
# the image's /etc/passwd and /etc/group, read by obuild to resolve USER
# (RUN) and the user of `obuild run`, may be a FIFO (obuild hung in open),
# a device (root mode: /dev/zero filled obuild's memory) or a sparse file
# of hundreds of MiB (read into memory); each is taken as no such file.  And
# every bind mount of a step is nodev, as its root: root mode keeps an
# image's device nodes in its unpacked layers, which RUN --mount=from=
# binds (a hostile image's block device 0666 opened the host's disk).
. "$(dirname "$0")/lib.sh"

# tob MODE ARGS...: obuild as MODE, killed after 30 s and kept to 1 GiB of
# address space (a hang or an endless read fails the test, not the suite);
# an ASan build, which reserves terabytes of shadow memory, to allocations
# of 512 MiB (its option: a limit on RSS starts a thread, and a process
# with threads cannot make a user namespace).
vlimit=1048576
grep -q __asan_init "$OB" 2>/dev/null && vlimit=unlimited
tob() {
  _m=$1; shift
  as "$_m" env OBUILD_ROOT="$(store "$_m")" \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=512" \
    sh -c 'ulimit -v "$0"; exec timeout -k 5 30 "$@"' "$vlimit" "$OB" "$@"
}

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
printf 'FROM busybox\nRUN rm /etc/passwd && mkfifo /etc/passwd\nUSER nobody\nRUN true\n' >"$ctx/Dockerfile.fifo"
printf 'FROM busybox\nRUN rm /etc/passwd /etc/group && mkfifo /etc/passwd /etc/group\n' >"$ctx/Dockerfile.fifo-run"
printf 'FROM busybox\nRUN rm /etc/passwd && dd if=/dev/zero of=/etc/passwd bs=1M seek=599 count=1 2>/dev/null\nUSER nobody\nRUN true\n' >"$ctx/Dockerfile.huge"
# the same layer, then COPY --chown, which reads /etc/passwd from the layers
printf 'FROM busybox\nRUN rm /etc/passwd && dd if=/dev/zero of=/etc/passwd bs=1M seek=599 count=1 2>/dev/null\nCOPY --chown=nobody Dockerfile.huge /x\n' >"$ctx/Dockerfile.huge-copy"
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

# a base image carrying the host's kernel log and first disk as devices
vdatar=$TESTDIR/vdabase.tar
python3 - "$(busybox_tar)" "$vdatar" <<'PY'
import sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
with tarfile.open(src) as i, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as o:
    for m in i.getmembers():
        o.addfile(m, i.extractfile(m) if m.isfile() else None)
    for name, typ, major, minor in (("image-kmsg", tarfile.CHRTYPE, 1, 11), ("image-vda", tarfile.BLKTYPE, 253, 0), ("image-sda", tarfile.BLKTYPE, 8, 0)):
        t = tarfile.TarInfo(name); t.type = typ; t.devmajor = major; t.devminor = minor; t.mode = 0o666
        o.addfile(t)
PY
chmod a+r "$vdatar"
# the mount options of the step's bind mounts, and whether a device of the
# image's layer gives a byte
cat >"$ctx/Dockerfile.binds" <<'DF'
FROM busybox
RUN --mount=type=bind,from=vdabase,target=/x --mount=type=cache,target=/c --mount=type=tmpfs,target=/t \
    --mount=type=bind,target=/ctx \
    awk '$5=="/x"||$5=="/c"||$5=="/t"||$5=="/ctx"||$5=="/etc/hosts"{print $5, ($6 ~ /(^|,)nodev(,|$)/) ? "nodev" : "DEV:" $6}' /proc/self/mountinfo | sort; \
    for d in /x/image-kmsg /x/image-vda /x/image-sda; do [ "$(head -c 1 $d 2>/dev/null | wc -c)" -eq 0 ] || echo "READ $d"; done
DF

for m in $MODES; do
  import_busybox "$m"
  ob "$m" import --source-date-epoch 1700000000 "$devtar" zerobase:latest >/dev/null 2>&1
  check_fail 3 "Dockerfile.fifo:4: USER nobody: unable to find user nobody" \
    "[$m] USER with /etc/passwd a FIFO: exit 3, obuild does not hang" \
    tob "$m" build -f "$ctx/Dockerfile.fifo" "$ctx"
  check_fail 3 "Dockerfile.huge:4: USER nobody: unable to find user nobody" \
    "[$m] USER with a sparse 600 MiB /etc/passwd: exit 3, not read into memory" \
    tob "$m" build -f "$ctx/Dockerfile.huge" "$ctx"
  tob "$m" build -f "$ctx/Dockerfile.huge-copy" "$ctx" >"$TESTDIR/.hc" 2>&1
  check_eq "[$m] COPY --chown with a sparse 600 MiB /etc/passwd in a layer: exit 3 naming the user, not read into memory" \
    "$?:$(grep -c '^obuild: .*Dockerfile.huge-copy:3: .*nobody' "$TESTDIR/.hc")" "3:1"
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

  ob "$m" import --source-date-epoch 1700000000 "$vdatar" vdabase:latest >/dev/null 2>&1
  tob "$m" build --no-cache --progress plain -f "$ctx/Dockerfile.binds" "$ctx" >"$TESTDIR/binds-$m.out" 2>&1
  check_eq "[$m] RUN with bind, cache and tmpfs mounts (one of an image with devices) (exit)" "$?" 0
  check_eq "[$m] ... every bind mount of the step is nodev, none of the image's devices gives a byte" \
    "$(grep -E '^(/|DEV|READ)' "$TESTDIR/binds-$m.out" | grep -v '^/[a-z/]* nodev$')" ""
  check_eq "[$m] ... all five mounts were seen" "$(grep -c ' nodev$' "$TESTDIR/binds-$m.out")" 5
  vol=$(userdir vol-$m "$m")
  check_eq "[$m] obuild run -v: the volume is nodev" \
    "$(tob "$m" run --network none -v "$vol:/v" vdabase awk '$5=="/v"{print ($6 ~ /(^|,)nodev(,|$)/) ? "nodev" : $6}' /proc/self/mountinfo 2>&1)" nodev
done
done_testing
