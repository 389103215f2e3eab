#!/bin/sh
# Run every unit test program and integration script (all speak TAP), print
# a failure summary and the closing line "N passed, N failed, N skipped".
set -u
: "${OBUILD_SRCDIR:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${OBUILD_UNIT_DIR:=$OBUILD_SRCDIR/tests/unit}"
: "${OBUILD_BIN:=$OBUILD_SRCDIR/obuild}"
export OBUILD_SRCDIR OBUILD_BIN
# Logs go to OBUILD_RESULTS, or to a directory of our own of which only the
# failures' logs are kept (and nothing at all when everything passed).
if [ -n "${OBUILD_RESULTS:-}" ]; then
  results=$OBUILD_RESULTS own_results=
else
  results=$(mktemp -d /tmp/obuild-results.XXXXXX) own_results=1
fi
mkdir -p "$results"
# The integration tests' scratch directory (lib.sh): removed before the run,
# so nothing an earlier run left (a half-made base tarball, a store) is
# trusted, and after it (it holds hundreds of MB); OBUILD_KEEP=1 keeps it.
IT_ROOT=${OBUILD_IT_ROOT:-/tmp/obuild-it}
export OBUILD_IT_ROOT=$IT_ROOT
# bench/run.sh (t9000) keeps its generated inputs there too
export BENCH_CACHE=$IT_ROOT/bench-cache BENCH_BIN=$IT_ROOT/bench-bin
it_clean() {
  [ -d "$IT_ROOT" ] || return 0
  # unmount whatever a killed test left mounted there, deepest first, and
  # never follow a mount point out of it
  awk -v p="$IT_ROOT/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts 2>/dev/null | sort -r |
    while read -r _m; do umount -l "$_m" 2>/dev/null; done
  rm -rf --one-file-system "$IT_ROOT" 2>/dev/null && return 0
  # as a user, a subuid-mode store holds files of the user's subordinate
  # ids: remove them from a user namespace that maps those ids
  command -v unshare >/dev/null && unshare --map-root-user --map-auto \
    rm -rf --one-file-system "$IT_ROOT" 2>/dev/null && return 0
  echo "run.sh: could not remove all of $IT_ROOT" >&2
  return 1
}
# one run at a time per scratch directory: a second one would empty it
# under the first (set OBUILD_IT_ROOT to run beside another)
mkdir -p "$(dirname "$IT_ROOT")"
if command -v flock >/dev/null && (: >>"$IT_ROOT.lock") 2>/dev/null; then
  exec 9>>"$IT_ROOT.lock"
  if ! flock -n 9; then
    echo "run.sh: $IT_ROOT is in use by another run (give OBUILD_IT_ROOT a directory of its own)" >&2
    exit 1
  fi
fi
it_clean || exit 1
pass=0 fail=0 skip=0
failed_list=""

run_one() { # name command...
  name=$1; shift
  log="$results/$(echo "$name" | tr '/' '_').log"
  start=$(date +%s)
  "$@" >"$log" 2>&1 9>&- # the lock stays ours: a daemon a test leaks cannot hold it
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
  elif [ -n "$own_results" ]; then
    rm -f "$log"
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
# buildah comparison, the benchmark and fuzzing smoke tests and the install
# test exercise nothing more (the fuzzers are sanitizer builds themselves),
# valgrind cannot run a sanitizer build, and the container-isolation test
# (two minutes of Docker) runs once
if [ -n "${OBUILD_ASAN_BIN:-}" ] && [ -x "$OBUILD_ASAN_BIN" ]; then
  for t in "$OBUILD_SRCDIR"/tests/integration/t[0-9]*.sh; do
    n=$(basename "$t" .sh)
    case " ${OBUILD_ASAN_SKIP:-t0010-install t5000-compat t7900-fuzz-smoke t8010-isolation-container t9000-bench-smoke t9010-valgrind} " in *" $n "*) continue ;; esac
    if [ -n "${OBUILD_TESTS:-}" ]; then
      case " $OBUILD_TESTS " in *" $n "*) ;; *) continue ;; esac
    fi
    run_one "asan-integration/$n" env OBUILD_BIN="$OBUILD_ASAN_BIN" \
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 sh "$t"
  done
fi
[ "${OBUILD_KEEP:-0}" = 1 ] || it_clean
if [ -n "$failed_list" ]; then
  echo "failed:$failed_list (logs in $results)"
elif [ -n "$own_results" ]; then
  rm -rf "$results"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
