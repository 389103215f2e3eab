#!/bin/sh
# A registry that lies: sizes that do not match, answers that never end,
# redirect loops, answers that trickle.  Each pull ends with one line and a documented exit code,
# in bounded time, and leaves the store as it was.
. "$(dirname "$0")/lib.sh"

# the image the fake registry serves: busybox from a store of this test
src=$TESTDIR/src-store
mkdir -p "$src"
OBUILD_ROOT=$src "$OB" import --source-date-epoch 1700000000 "$(busybox_tar)" busybox:latest >/dev/null 2>&1
md=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['manifests'][0]['digest'])" "$src/oci/index.json")
python3 "$FIXTURES/registry/hostile_registry.py" "$TESTDIR/port" "$src/oci" "$md" 2>"$TESTDIR/registry.log" &
srv=$!
trap 'kill $srv 2>/dev/null' EXIT
i=0; until [ -s "$TESTDIR/port" ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
R=127.0.0.1:$(cat "$TESTDIR/port")

snapshot() { (cd "$(store "$1")" && find . -path ./tmp -prune -o -printf '%p %s\n' | sort); }
for m in $MODES; do
  snapshot "$m" >"$TESTDIR/before"
  check_fail 9 "blob sha256:[0-9a-f]+: .*answer larger than [0-9]+ bytes" \
    "[$m] a layer larger than its descriptor, downloaded: exit 9" ob "$m" pull "$R/img:layerlie"
  # the control: the honest tag pulls
  check "[$m] the honest manifest pulls" ob "$m" pull "$R/img:good"
  snapshot "$m" >"$TESTDIR/before"
  check_fail 9 "manifest $md is [0-9]+ bytes, its descriptor in the index says 10\$" \
    "[$m] an index whose manifest descriptor says 10 bytes: exit 9" ob "$m" pull "$R/img:badsize"
  check_fail 9 "its descriptor in the index says 1000000000000000\$" \
    "[$m] ... says 10^15 bytes: exit 9" ob "$m" pull "$R/img:hugesize"
  check_fail 9 "manifests/bigmanifest: answer larger than 4194304 bytes" \
    "[$m] a 5 MiB manifest: exit 9" ob "$m" pull "$R/img:bigmanifest"
  check_fail 9 "manifests/endless: answer larger than 4194304 bytes" \
    "[$m] a manifest that never ends: exit 9" ob "$m" pull "$R/img:endless"
  # (the blob is in the store since the honest pull: checked against its size there)
  check_fail 9 "blob sha256:[0-9a-f]+: size [0-9]+, the descriptor says [0-9]+" \
    "[$m] a layer larger than its descriptor: exit 9" ob "$m" pull "$R/img:layerlie"
  check_fail 8 "Maximum \\(10\\) redirects followed" \
    "[$m] a blob that redirects to itself: exit 8" ob "$m" pull "$R/img:redirloop"
  snapshot "$m" >"$TESTDIR/after"
  check_files "[$m] the lies left the store as it was" "$TESTDIR/after" "$TESTDIR/before"
done
# a manifest sent two bytes a second passes any low-speed limit: each
# transfer has a deadline (here 2 s instead of 5 minutes plus its size at
# 64 KiB/s); three tries, then exit 8 (once: the code is the same in every
# mode)
m=root
snapshot "$m" >"$TESTDIR/before"
t0=$(date +%s)
check_fail 8 "cannot reach registry 127.0.0.1:[0-9]+: .*[Tt]imed out" \
  "[$m] a registry sending two bytes a second: exit 8 at the deadline" \
  env OBUILD_TEST_REGISTRY_DEADLINE=2 OBUILD_ROOT="$(store "$m")" "$OB" pull "$R/img:slow"
t1=$(date +%s)
check "[$m] ... within 30 s (three tries of 2 s, backoff): took $((t1 - t0)) s" test $((t1 - t0)) -lt 30
snapshot "$m" >"$TESTDIR/after"
check_files "[$m] ... the store as it was" "$TESTDIR/after" "$TESTDIR/before"
done_testing
