#!/bin/sh
# The libFuzzer harnesses of tests/fuzz/ build and run for a short while
# each (OBUILD_FUZZ_TIME seconds, default 30) without a crash, timeout, leak
# or running out of memory: scripts/fuzz.sh's TAP lines are passed through.
# Skipped only when clang is missing.  Crashing inputs and the logs are kept
# in OBUILD_FUZZ_ARTIFACTS (default: a directory the failure names).
# Not for the sanitizer leg of tests/run.sh: it builds its own ASan binaries.
set -u
: "${OBUILD_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"

if ! command -v "${CC:-clang}" >/dev/null 2>&1; then
  echo "ok 1 - fuzz smoke # skip ${CC:-clang} not found (scripts/deps.sh --test installs it)"
  echo "1..1"
  exit 0
fi
n=0
fails=0
out=$(mktemp "${TMPDIR:-/tmp}/obuild-fuzz-smoke.XXXXXX")
trap 'rm -f "$out"' EXIT
sh "$OBUILD_SRCDIR/scripts/fuzz.sh" --time "${OBUILD_FUZZ_TIME:-30}" \
  ${OBUILD_FUZZ_ARTIFACTS:+--artifacts "$OBUILD_FUZZ_ARTIFACTS"} >"$out" 2>&1
rc=$?
# renumber: fuzz.sh's plan is replaced by ours, which adds its exit status
while IFS= read -r line; do
  case $line in
    "ok "*|"not ok "*)
      n=$((n + 1))
      case $line in "not ok "*) fails=$((fails + 1)) ;; esac
      echo "$line" | sed -E "s/^(not )?ok [0-9]+/\\1ok $n/"
      ;;
    1..*) ;;
    *) echo "# $line" | sed 's/^# # /# /' ;;
  esac
done <"$out"
n=$((n + 1))
if [ "$rc" -eq 0 ] && [ "$fails" -eq 0 ] && [ "$n" -gt 1 ]; then
  echo "ok $n - scripts/fuzz.sh exits 0"
else
  echo "not ok $n - scripts/fuzz.sh exits 0 (status $rc, $fails failed)"
fi
echo "1..$n"
