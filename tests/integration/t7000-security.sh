#!/bin/sh
# A RUN step never reaches the host, the store or obuild's files, in every
# mode: no inherited descriptor (WORKDIR /proc/self/fd/N, the runc
# CVE-2024-21626 pattern), no capability outside Docker's default set, a
# user namespace even as root, read-only /proc/sys, runc's masked paths,
# devices only in /dev, no device of the image opens anything.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
marker=PWNED-$$

# 1. WORKDIR through an inherited descriptor: every fd obuild could hold
for n in 3 4 5 6 7 8 9 10 11 12; do
  cat >"$ctx/Dockerfile.fd$n" <<DF
FROM busybox
WORKDIR /proc/self/fd/$n
RUN for i in 1 2 3 4 5 6 7 8 9 10; do cd ..; done; ls -a; echo x > $marker; echo x > tmp/$marker; echo x > oci/$marker; exit 0
DF
done
# ... through a symlink in the image, through PID 1's root
cat >"$ctx/Dockerfile.link" <<DF
FROM busybox
RUN ln -s /proc/self/fd/3 /wd
WORKDIR /wd
RUN cd ../../../../..; echo x > $marker
DF
cat >"$ctx/Dockerfile.init-cwd" <<DF
FROM busybox
WORKDIR /proc/1/root
RUN touch /proc-root-$marker; pwd > /where
DF
# 2. what a step may do: a script that prints FAIL lines for each escape
cat >"$ctx/probe.sh" <<'SH'
#!/bin/sh
fail=0
bad() { echo "FAIL: $*"; fail=1; }
# capabilities: Docker's default set at most (CAP_SYS_ADMIN is bit 21)
bnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)
[ $(( 0x$bnd & ~0xa80425fb )) -eq 0 ] || bad "bounding set $bnd beyond Docker's default"
eff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
[ $(( 0x$eff & (1 << 21) )) -eq 0 ] || bad "CAP_SYS_ADMIN in the effective set"
# sysctls: read-only
v=$(cat /proc/sys/kernel/printk_ratelimit)
if (echo "$v" > /proc/sys/kernel/printk_ratelimit) 2>/dev/null; then bad "wrote a host sysctl"; fi
if (echo 1 > /proc/sysrq-trigger) 2>/dev/null; then bad "wrote /proc/sysrq-trigger"; fi
# devices: made by the step or shipped in the image, none opens
# (single-ID mode's mknod makes an empty placeholder file: what counts is
# whether anything of the kernel log comes back)
if mknod /tmp/kmsg c 1 11 2>/dev/null && [ -n "$(head -c 1 /tmp/kmsg 2>/dev/null)" ]; then bad "read the host's kernel log through mknod"; fi
[ -c /image-kmsg ] && echo "probe: the image's device node is there"
# (rootless, an image's device is an empty placeholder file, which stat
# reports as the device in single-ID mode: again, what counts is whether
# any byte comes back)
if [ -c /image-kmsg ] && [ "$(head -c 1 /image-kmsg 2>/dev/null | wc -c)" -gt 0 ]; then bad "read the host's kernel log through the image's device"; fi
if [ -b /image-vda ] && [ "$(head -c 1 /image-vda 2>/dev/null | wc -c)" -gt 0 ]; then bad "read a host disk through the image's device"; fi
# /dev holds only the standard nodes
for f in /dev/*; do
  case ${f#/dev/} in null|zero|full|random|urandom|tty|ptmx|pts|shm|fd|stdin|stdout|stderr) ;; *) bad "unexpected /dev entry $f" ;; esac
done
# masked /proc entries are empty
for f in /proc/keys /proc/timer_list /proc/sched_debug /proc/kcore; do
  [ -e "$f" ] || continue
  [ "$(head -c 1 "$f" 2>/dev/null | wc -c)" -eq 0 ] || bad "$f is readable"
done
for d in /proc/acpi /proc/scsi /sys/firmware; do
  [ -d "$d" ] || continue
  [ -z "$(ls -A "$d")" ] || bad "$d is not empty"
done
# no descriptor of obuild's: PID 1's and ours are stdio only
[ -z "$(ls /proc/1/fd 2>/dev/null)" ] || bad "init holds descriptors: $(ls /proc/1/fd)"
# a command run by the step inherits stdio only (ls's own 3 is /proc/self/fd)
fds=$(ls /proc/self/fd | tr '\n' ' ')
[ "$fds" = "0 1 2 3 " ] || bad "inherited descriptors: $fds"
# mount calls are refused
if umount /proc/sys 2>/dev/null; then bad "unmounted /proc/sys"; fi
if mount -t tmpfs none /mnt 2>/dev/null; then bad "mounted a tmpfs"; fi
# a user namespace of its own, also as root
[ "$(readlink /proc/self/ns/user)" != "$HOST_USERNS" ] || bad "the host's user namespace"
[ "$fail" -eq 0 ] && echo "probe: all checks passed"
exit "$fail"
SH
chmod a+rx "$ctx/probe.sh"
cat >"$ctx/Dockerfile.probe" <<'DF'
FROM devbase
ARG HOST_USERNS
COPY probe.sh /probe.sh
RUN HOST_USERNS=$HOST_USERNS /probe.sh
USER 1000
RUN HOST_USERNS=$HOST_USERNS /probe.sh
DF
chmod -R a+rX "$ctx"

# a base image that carries device nodes (a hostile image: the host's
# kernel log and first disk), imported as each mode can
devtar=$TESTDIR/devbase.tar
python3 - "$(busybox_tar)" "$devtar" <<'PY'
import sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
with tarfile.open(src) as i, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as o:
    for m in i.getmembers():
        o.addfile(m, i.extractfile(m) if m.isfile() else None)
    for name, typ, major, minor in (("image-kmsg", tarfile.CHRTYPE, 1, 11), ("image-vda", tarfile.BLKTYPE, 253, 0)):
        t = tarfile.TarInfo(name); t.type = typ; t.devmajor = major; t.devminor = minor; t.mode = 0o666
        o.addfile(t)
PY
chmod a+r "$devtar"
# a base image whose /etc/hosts and /etc/hostname (bind-mount targets of
# every step) are symlinks to magic links
linktar=$TESTDIR/linkbase.tar
python3 - "$(busybox_tar)" "$linktar" <<'PY'
import sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
with tarfile.open(src) as i, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as o:
    for m in i.getmembers():
        o.addfile(m, i.extractfile(m) if m.isfile() else None)
    for name, target in (("etc/hosts", "/proc/self/fd/3"), ("etc/hostname", "../proc/1/root/hostname")):
        t = tarfile.TarInfo(name); t.type = tarfile.SYMTYPE; t.linkname = target
        o.addfile(t)
PY
chmod a+r "$linktar"
printf 'FROM linkbase\nRUN echo x > /etc/hosts; echo x > /etc/hostname\n' >"$ctx/Dockerfile.mountlink"
printf 'FROM busybox\nRUN mkdir -p /m && ln -s /proc/self/fd/3 /m/t\nRUN --mount=type=tmpfs,target=/m/t/x touch /m/t/x/$marker\n' >"$ctx/Dockerfile.mounttarget"

# canaries: places the step must not reach
canary=$TESTDIR/canary
mkdir -p "$canary" && chmod 1777 "$canary"

snapshot() { (cd "$(store "$1")" && find oci -printf '%p %s\n' | sort && sha256sum oci/index.json); }
found() { find "$TESTDIR" /tmp "/home/$T_USER" /root -xdev -name "*$marker*" 2>/dev/null | head -5; }
host_userns=$(readlink /proc/self/ns/user)

for m in $MODES; do
  import_busybox "$m"
  ob "$m" import --source-date-epoch 1700000000 "$linktar" linkbase:latest >/dev/null 2>&1
  snapshot "$m" >"$TESTDIR/before"
  for n in 3 4 5 6 7 8 9 10 11 12; do
    check_fail 5 "Dockerfile.fd$n:3: RUN: working directory \`/proc/self/fd/$n\`" \
      "[$m] WORKDIR /proc/self/fd/$n: exit 5 naming the directory" \
      ob "$m" build -f "$ctx/Dockerfile.fd$n" "$ctx"
  done
  check_fail 5 "Dockerfile.link:4: RUN: working directory \`/wd\`" \
    "[$m] WORKDIR through a symlink to /proc/self/fd/3: exit 5" ob "$m" build -f "$ctx/Dockerfile.link" "$ctx"
  check_fail 5 "Dockerfile.mountlink:2: RUN: open mount point .* on \`/etc/hosts\`" \
    "[$m] /etc/hosts -> /proc/self/fd/3 in the image: the step's bind mount refuses it (exit 5)" \
    ob "$m" build -f "$ctx/Dockerfile.mountlink" "$ctx"
  check_fail 5 "Dockerfile.mounttarget:3: RUN: open mount point .* on \`/m/t/x\`" \
    "[$m] a --mount target through a symlink to /proc/self/fd/3: exit 5" \
    ob "$m" build -f "$ctx/Dockerfile.mounttarget" "$ctx"
  check_eq "[$m] no file written outside by the WORKDIR and mount attempts" "$(found)" ""
  snapshot "$m" >"$TESTDIR/after"
  check_files "[$m] the store is as it was" "$TESTDIR/after" "$TESTDIR/before"
  check_eq "[$m] no scratch left behind" "$(ls -A "$(store "$m")/tmp" | wc -l)" 0
  check_fail 5 "Dockerfile.init-cwd:3: RUN: working directory \`/proc/1/root\`" \
    "[$m] WORKDIR /proc/1/root (a magic link): exit 5" ob "$m" build -f "$ctx/Dockerfile.init-cwd" "$ctx"
  check_eq "[$m] ... nothing written on the host" "$(ls / | grep -c "$marker")" 0

  # the image with device nodes: root keeps them, the others record or drop them
  ob "$m" import --source-date-epoch 1700000000 "$devtar" devbase:latest >"$TESTDIR/.imp" 2>&1
  check_eq "[$m] a base image with device nodes imports" "$?" 0
  ob "$m" build --no-cache --build-arg HOST_USERNS="$host_userns" -f "$ctx/Dockerfile.probe" "$ctx" \
    >"$TESTDIR/probe-$m.out" 2>&1
  rc=$?
  check_eq "[$m] the probe of every escape passes as root and as USER 1000 (exit)" "$rc" 0
  check_eq "[$m] ... both runs report all checks passed" "$(grep -c '^probe: all checks passed' "$TESTDIR/probe-$m.out")" 2
  grep -E '^FAIL|^obuild:' "$TESTDIR/probe-$m.out" | diag
  if [ "$m" = root ] || [ "$m" = single ]; then
    check_eq "[$m] ... and the image's device nodes were there to try (single-ID mode: placeholders stat shows as devices)" \
      "$(grep -c "^probe: the image's device node is there" "$TESTDIR/probe-$m.out")" 2
  fi
done
done_testing
