#!/bin/sh
# Build the libFuzzer harnesses of tests/fuzz/ with clang (ASan + UBSan,
# straight from src/lib/*.c, into build-fuzz/) and run each for a while on a
# copy of its seed corpus.  Speaks TAP, one line per harness:
#   ok 1 - fuzz_dockerfile 60s: 123456 execs, 2057 exec/s, cov 1234 ft 5678, corpus 345
#   not ok 2 - fuzz_ignore 60s: timeout (artifact: /tmp/.../timeout-...)
# and exits non-zero when a harness crashed, timed out, ran out of memory or
# leaked.
#
#   scripts/fuzz.sh [--time SECONDS] [--artifacts DIR] [--build-only] [NAME...]
#
# --time: per harness (default 60).  --artifacts: where crashing inputs and
# the full logs go (default: a temporary directory, kept and named in the
# output when something failed).  NAME: fuzz_dockerfile fuzz_ignore
# fuzz_tar_extract fuzz_image_json (default: all).  CC picks the compiler
# (default clang).  Needs config.h: runs scripts/build.sh when it is missing.
set -eu
cd "$(dirname "$0")/.."

time=60
artifacts=""
build_only=false
names=""
while [ $# -gt 0 ]; do
  case $1 in
    --time) time=${2:?--time needs a number of seconds}; shift 2 ;;
    --time=*) time=${1#--time=}; shift ;;
    --artifacts) artifacts=${2:?--artifacts needs a directory}; shift 2 ;;
    --artifacts=*) artifacts=${1#--artifacts=}; shift ;;
    --build-only) build_only=true; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) n=${1##*/}; names="$names ${n%.c}"; shift ;;
  esac
done
# (0 would mean "forever" to libFuzzer)
case $time in ''|*[!0-9]*|0) echo "fuzz.sh: --time takes whole seconds (> 0)" >&2; exit 2 ;; esac
all="fuzz_dockerfile fuzz_ignore fuzz_tar_extract fuzz_image_json"
[ -n "$names" ] || names=$all
for n in $names; do
  [ -f "tests/fuzz/$n.c" ] || { echo "fuzz.sh: no harness $n (have: $all)" >&2; exit 2; }
done
CC=${CC:-clang}

# Inputs larger than this are not tried: the harnesses stay fast, and the
# known worst cases (deep nesting, large archives) are reachable below it.
max_len() {
  case $1 in
    fuzz_dockerfile) echo 65536 ;;
    fuzz_ignore) echo 4096 ;;
    fuzz_tar_extract) echo 1048576 ;;
    fuzz_image_json) echo 65536 ;;
  esac
}

# ---- build ----
[ -f config.h ] || sh scripts/build.sh
out=build-fuzz
mkdir -p "$out/obj"
CFLAGS="-g -O1 -std=gnu11 -Iinclude -I. -include config.h -Wall -Wextra -Wno-unused-parameter \
-fno-omit-frame-pointer -fno-sanitize-recover=undefined"
SAN="-fsanitize=address,undefined"
LIBS="$(pkg-config --libs libarchive libcrypto jansson libseccomp zlib libzstd libdeflate) -lisal -lpthread"
build_log=$out/build.log
: >"$build_log"
objs=""
pids=""
for c in src/lib/*.c; do
  o=$out/obj/$(basename "$c" .c).o
  # the library is instrumented for coverage too (fuzzer-no-link); it is
  # not ours to hold to clang's warnings, hence no -Werror here
  # shellcheck disable=SC3013 # -nt: dash and bash have it
  if [ ! -f "$o" ] || [ "$c" -nt "$o" ] || [ config.h -nt "$o" ] \
    || [ -n "$(find include src/lib -name '*.h' -newer "$o" 2>/dev/null | head -1)" ]; then
    # shellcheck disable=SC2086
    $CC $CFLAGS $SAN,fuzzer-no-link -c "$c" -o "$o" >>"$build_log" 2>&1 &
    pids="$pids $!"
  fi
  objs="$objs $o"
done
build_ok=true
for p in $pids; do wait "$p" || build_ok=false; done
for n in $names; do
  $build_ok || break
  # shellcheck disable=SC2086
  $CC $CFLAGS -Werror $SAN,fuzzer "tests/fuzz/$n.c" $objs -o "$out/$n" $LIBS >>"$build_log" 2>&1 \
    || build_ok=false
done
if ! $build_ok; then
  echo "not ok 1 - build the fuzz harnesses with $CC"
  sed 's/^/# /' "$build_log" | head -n 40
  echo "1..1"
  exit 1
fi
$build_only && exit 0

# ---- run ----
work=$(mktemp -d "${TMPDIR:-/tmp}/obuild-fuzz.XXXXXX")
[ -n "$artifacts" ] || artifacts=$work/artifacts
mkdir -p "$artifacts"
artifacts=$(cd "$artifacts" && pwd)
keep=false
cleanup() {
  # the harnesses' scratch directories live under $work too
  if $keep && [ "$artifacts" = "$work/artifacts" ]; then
    find "$work" -mindepth 1 -maxdepth 1 ! -name artifacts -exec rm -rf {} +
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

i=0
failed=0
for n in $names; do
  i=$((i + 1))
  corpus=$work/corpus-$n
  mkdir -p "$corpus"
  if [ -d "tests/fuzz/corpus/$n" ]; then
    cp -R "tests/fuzz/corpus/$n/." "$corpus/"
  fi
  # the tar seeds are generated (512-byte headers make them too big to keep)
  if [ "$n" = fuzz_tar_extract ]; then
    python3 tests/fuzz/make-seeds.py --tar "$corpus" >/dev/null 2>&1 \
      || echo "# $n: no python3, starting from an empty corpus"
  fi
  dict=""
  [ -f "tests/fuzz/$n.dict" ] && dict="-dict=tests/fuzz/$n.dict"
  log=$artifacts/$n.log
  # one process, no -jobs/-workers: the machine is shared
  set +e
  # shellcheck disable=SC2086
  TMPDIR=$work ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0 \
    UBSAN_OPTIONS=print_stacktrace=1 \
    "$out/$n" -max_total_time="$time" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$n")" \
    -artifact_prefix="$artifacts/$n-" -print_final_stats=1 $dict "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
  stats="${execs:-?} execs, ${speed:-?} exec/s, cov ${cov:-?} ft ${ft:-?}, corpus ${corp:-?}"
  what=""
  if grep -q 'ERROR: libFuzzer: timeout' "$log"; then what="timeout"
  elif grep -qE 'ERROR: libFuzzer: out-of-memory|allocation-size-too-big|out of memory' "$log"; then what="out of memory"
  elif grep -q 'ERROR: LeakSanitizer' "$log"; then what="leak"
  elif grep -qE 'ERROR: (AddressSanitizer|libFuzzer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' "$log"; then what="crash"
  elif [ "$rc" -ne 0 ]; then what="exit status $rc"
  fi
  if [ -z "$what" ]; then
    echo "ok $i - $n ${time}s: $stats"
  else
    failed=$((failed + 1))
    keep=true
    art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    echo "not ok $i - $n ${time}s: $what after $stats${art:+ (input: $art)}"
    # the report and the top of its stack
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error:| *#[0-9]+ 0x|[a-z_]+: )' "$log" \
      | grep -v -E 'in (__sanitizer|__asan|__ubsan|fuzzer::|main|__libc|_start)' \
      | head -n 16 | sed 's/^/#   /'
    echo "#   log: $log"
  fi
done
echo "1..$i"
[ "$failed" -eq 0 ]
