#!/bin/sh
# The benchmark suite still runs end to end for both tools (bench/run.sh
# --quick: busybox base, one run each).  A smoke test: it checks that every
# benchmark produced a time for obuild and for buildah, never the times.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v buildah >/dev/null || ! command -v umoci >/dev/null; then
  skip "the benchmark smoke test needs root, buildah and umoci"
  done_testing
fi
out=$TESTDIR/bench.out
BENCH_OBUILD="$OB" bash "$OBUILD_SRCDIR/bench/run.sh" --quick >"$out" 2>&1
rc=$?
check_eq "bench/run.sh --quick exits 0" "$rc" 0
[ "$rc" -eq 0 ] || tail -n 30 "$out" | diag
check_eq "... and no benchmark failed" "$(grep -c 'FAILED' "$out")" 0
for b in copy-small-files big-run-layer first-build unpack-base cached-rebuild rebuild-change; do
  # | name (...) | obuild s | buildah s | ratio | rss | rss |: both times numbers
  row=$(grep -E "^\\| $b \\(" "$out" | tail -n 1)
  check "[$b] a row with a time for each tool" \
    sh -c 'echo "$1" | awk -F"|" "{ exit !(\$3 ~ /^ *[0-9]+\\.[0-9]+ *\$/ && \$4 ~ /^ *[0-9]+\\.[0-9]+ *\$/) }"' sh "$row"
done
done_testing
