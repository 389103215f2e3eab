#!/bin/sh
# Run every unit test program and integration script (all speak TAP), print
# a failure summary and the closing line "N passed, N failed, N skipped".
set -u
: "${OBUILD_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${OBUILD_UNIT_DIR:=$OBUILD_SRCDIR/tests/unit}"
: "${OBUILD_BIN:=$OBUILD_SRCDIR/obuild}"
export OBUILD_SRCDIR OBUILD_BIN
results=${OBUILD_RESULTS:-$(mktemp -d /tmp/obuild-results.XXXXXX)}
mkdir -p "$results"
pass=0 fail=0 skip=0
failed_list=""

run_one() { # name command...
  name=$1; shift
  log="$results/$(echo "$name" | tr '/' '_').log"
  start=$(date +%s)
  "$@" >"$log" 2>&1
  rc=$?
  p=$(grep -cE '^ok [0-9]+' "$log" || true)
  s=$(grep -cE '^ok [0-9]+.*# (skip|SKIP)' "$log" || true)
  f=$(grep -cE '^not ok [0-9]+' "$log" || true)
  p=$((p - s))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
    echo "not ok - $name exited with status $rc" >>"$log"
  fi
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
  printf '%-44s %4d passed %3d failed %3d skipped  (%ss)\n' "$name" "$p" "$f" "$s" "$(($(date +%s) - start))"
  if [ "$f" -ne 0 ]; then
    failed_list="$failed_list $name"
    grep -E '^not ok|^#' "$log" | head -40 | sed 's/^/    /'
  fi
}

for t in "$OBUILD_UNIT_DIR"/test_*; do
  case "$t" in *.c|*.o|*.log|*.trs) continue ;; esac
  [ -x "$t" ] || continue
  run_one "unit/$(basename "$t")" "$t"
done
# the sanitizer leg: the same unit tests built with ASan/UBSan
if [ -n "${OBUILD_ASAN_UNIT_DIR:-}" ]; then
  for t in "$OBUILD_ASAN_UNIT_DIR"/test_*; do
    case "$t" in *.c|*.o) continue ;; esac
    [ -x "$t" ] || continue
    run_one "asan/$(basename "$t")" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 "$t"
  done
fi
for t in "$OBUILD_SRCDIR"/tests/integration/t[0-9]*.sh; do
  [ -f "$t" ] || continue
  if [ -n "${OBUILD_TESTS:-}" ]; then
    case " $OBUILD_TESTS " in *" $(basename "$t" .sh) "*) ;; *) continue ;; esac
  fi
  run_one "integration/$(basename "$t" .sh)" sh "$t"
done
# ... and the integration tests again with the sanitizer build of obuild
# (leaks, overflows, undefined behaviour make obuild exit non-zero); the
# buildah comparison and the benchmark smoke test exercise nothing more,
# valgrind cannot run a sanitizer build
if [ -n "${OBUILD_ASAN_BIN:-}" ] && [ -x "$OBUILD_ASAN_BIN" ]; then
  for t in "$OBUILD_SRCDIR"/tests/integration/t[0-9]*.sh; do
    n=$(basename "$t" .sh)
    case " ${OBUILD_ASAN_SKIP:-t5000-compat t9000-bench-smoke t9010-valgrind} " in *" $n "*) continue ;; esac
    if [ -n "${OBUILD_TESTS:-}" ]; then
      case " $OBUILD_TESTS " in *" $n "*) ;; *) continue ;; esac
    fi
    run_one "asan-integration/$n" env OBUILD_BIN="$OBUILD_ASAN_BIN" \
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 sh "$t"
  done
fi
[ -n "$failed_list" ] && echo "failed:$failed_list (logs in $results)"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
