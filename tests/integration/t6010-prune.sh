#!/bin/sh
# obuild prune: removes blobs and unpacked layers no tag needs (and the cache
# with --all), never what a tag references; --dry-run removes nothing.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
echo one >"$ctx/f"
printf 'FROM busybox\nRUN echo "R-$((0+1))-RAN" >&2 && echo x > /x\nCOPY f /f\n' >"$ctx/Dockerfile"
chmod -R a+rX "$ctx"
age() { find "$(store "$1")/oci/blobs" -type f -exec touch -d '10 minutes ago' {} +; }
for m in $MODES; do
  import_busybox "$m"
  ob "$m" build -q -t app "$ctx" >/dev/null 2>&1
  echo two >"$ctx/f"
  ob "$m" build -q -t app "$ctx" >/dev/null 2>&1   # the first app's COPY layer, config, manifest: dangling
  age "$m"
  n0=$(find "$(store "$m")/oci/blobs" -type f | wc -l)
  ob "$m" prune --dry-run >"$TESTDIR/dry" 2>&1
  check "[$m] --dry-run reports dangling blobs" grep -q '^would remove blob sha256:' "$TESTDIR/dry"
  check_eq "[$m] --dry-run removes nothing" "$(find "$(store "$m")/oci/blobs" -type f | wc -l)" "$n0"
  check "[$m] prune" ob "$m" prune
  n1=$(find "$(store "$m")/oci/blobs" -type f | wc -l)
  check "[$m] prune removed blobs" test "$n1" -lt "$n0"
  check "[$m] tagged images still validate" oci_validate "$(store_oci "$m")" app:latest
  check "[$m] ... and the base" oci_validate "$(store_oci "$m")" busybox:latest
  check "[$m] ... and unpack" umoci_unpack "$(store_oci "$m")" app:latest "$TESTDIR/u-$m"
  check_eq "[$m] ... with the latest content" "$(cat "$TESTDIR/u-$m/rootfs/f")" two
  ob "$m" build -q --progress=plain -t app "$ctx" >/dev/null 2>"$TESTDIR/e1"
  check_eq "[$m] the cache survives a plain prune" "$(grep -c -- '-1-RAN' "$TESTDIR/e1")" 0
  check "[$m] prune --all" ob "$m" prune --all
  ob "$m" build -q --progress=plain -t app "$ctx" >/dev/null 2>"$TESTDIR/e2"
  check_eq "[$m] after prune --all the steps run again" "$(grep -c -- '-1-RAN' "$TESTDIR/e2")" 1
  check "[$m] a build after prune --all validates" oci_validate "$(store_oci "$m")" app:latest
  echo one >"$ctx/f"
done
done_testing
