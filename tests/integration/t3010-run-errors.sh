#!/bin/sh
# A failing RUN: the Dockerfile line and status, exit code 5, the store as
# it was.  Isolation: no host file, no store, no host loopback with
# --network=none.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
printf 'FROM busybox\nRUN true\nRUN exit 3\n' >"$ctx/Dockerfile.fail"
printf 'FROM busybox\nRUN /no/such/binary\n' >"$ctx/Dockerfile.missing"
printf 'FROM busybox\nRUN ["/no/such/binary"]\n' >"$ctx/Dockerfile.missing-exec"
marker=obuild-host-marker-$$
cat >"$ctx/Dockerfile.iso" <<DF
FROM busybox
RUN test -z "\$(find / -xdev -name '$marker' 2>/dev/null)" && test -z "\$(find / -xdev -name 'index.json' 2>/dev/null)"
DF
chmod -R a+rX "$ctx"
touch "/tmp/$marker" "$TESTDIR/$marker"
[ "$(id -u)" -eq 0 ] && touch "/home/$T_USER/$marker"

# a server on the host's loopback
start_http "$TESTDIR"
trap 'kill $srv 2>/dev/null; rm -f "/tmp/$marker" "/home/$T_USER/$marker"' EXIT
printf 'FROM busybox\nRUN wget -q -O /got http://127.0.0.1:%s/\n' "$port" >"$ctx/Dockerfile.net"
printf 'FROM busybox\nRUN --network=none wget -q -T 2 -O /got http://127.0.0.1:%s/\n' "$port" >"$ctx/Dockerfile.nonet"
printf 'FROM busybox\nRUN cat /proc/net/dev | grep -v -e Inter -e face | cut -d: -f1 | tr -d " " > /ifs\n' >"$ctx/Dockerfile.ifs"
chmod a+r "$ctx"/*

snapshot() { (cd "$(store "$1")" && find oci -printf '%p %s\n' | sort && sha256sum oci/index.json); }
for m in $MODES; do
  import_busybox "$m"
  snapshot "$m" >"$TESTDIR/before"
  check_fail 5 'Dockerfile.fail:3: RUN exit 3: the command exited with status 3' "[$m] RUN exit 3: exit code 5, line and status" \
    ob "$m" build -t x -f "$ctx/Dockerfile.fail" "$ctx"
  check_fail 5 'Dockerfile.missing:2: .*status 127' "[$m] shell form of a missing command: status 127" \
    ob "$m" build -t x -f "$ctx/Dockerfile.missing" "$ctx"
  check_fail 5 'Dockerfile.missing-exec:2: .*/no/such/binary' "[$m] exec form of a missing command names it" \
    ob "$m" build -t x -f "$ctx/Dockerfile.missing-exec" "$ctx"
  snapshot "$m" >"$TESTDIR/after"
  check_files "[$m] failed RUN steps leave the store as it was" "$TESTDIR/after" "$TESTDIR/before"
  check_eq "[$m] no scratch left behind" "$(ls -A "$(store "$m")/tmp" | wc -l)" 0
  check "[$m] RUN cannot see host files or the store" ob "$m" build -q -f "$ctx/Dockerfile.iso" "$ctx"
  check "[$m] RUN reaches the host's loopback by default" ob "$m" build -q -f "$ctx/Dockerfile.net" "$ctx"
  check_fail 5 'status 1' "[$m] RUN --network=none cannot" ob "$m" build -q -f "$ctx/Dockerfile.nonet" "$ctx"
  check "[$m] --network=none build" ob "$m" build -q -t ifs --network=none -f "$ctx/Dockerfile.ifs" "$ctx"
  check "[$m] ... unpacks" umoci_unpack "$(store_oci "$m")" ifs:latest "$TESTDIR/ifs-$m"
  check_eq "[$m] ... has only lo" "$(cat "$TESTDIR/ifs-$m/rootfs/ifs")" lo
done
done_testing
