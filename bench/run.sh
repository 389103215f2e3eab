#!/bin/bash
# bench/run.sh [--quick] [NAME...]: obuild vs buildah benchmarks, side by side.
#   NAME: copy-small-files big-run-layer first-build unpack-base
#         cached-rebuild rebuild-change ci-runner parallel-stages container-run-layer (default: all)
#   --quick  smoke test (CI): 1 run each, smallest inputs, busybox base; never
#            judges times.  Exit status is non-zero only if a tool fails.
# Environment: BENCH_RUNS (default 3), BENCH_USER (run both tools as that
# unprivileged user), BENCH_BASE (debian|busybox), BENCH_FS (loop|tmpfs|tmp,
# or both: one table on a fresh loop ext4, one on plain /tmp; the default as
# root without --quick), BENCH_OBUILD (binary to copy).  See bench/README.md.
set -u
ALL="copy-small-files big-run-layer first-build unpack-base cached-rebuild rebuild-change ci-runner parallel-stages container-run-layer"
names=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) export BENCH_QUICK=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) case " $ALL " in *" $1 "*) names="$names $1" ;; *) echo "run.sh: unknown benchmark $1 (have: $ALL)" >&2; exit 2 ;; esac ;;
  esac
  shift
done
[ -n "$names" ] || names=$ALL

# Both file systems: the targets must hold where users build (an aged /tmp)
# as well as on a fresh file system.  One table each.
if [ "${BENCH_FS:-}" = both ] || { [ -z "${BENCH_FS:-}" ] && [ "$(id -u)" = 0 ] && [ -z "${BENCH_QUICK:-}" ]; }; then
  rc=0
  for fs in loop tmp; do
    BENCH_FS=$fs bash "$0" $names || rc=1
    echo
  done
  exit $rc
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
for n in $names; do . "$here/b-$n.sh"; done

bench_init
BENCH_RESULTS=$BENCH_WORK/results
: >"$BENCH_RESULTS"
start=$(date +%s)
failed=
for n in $names; do
  if ! "b_${n//-/_}"; then
    failed="$failed $n"
    printf '| %-28s | %16s | %17s | %20s | %20s | %21s |\n' "$n" FAILED - - - - >>"$BENCH_RESULTS"
  fi
done

echo
echo "obuild vs buildah $(buildah --version | awk '{print $3}'), $BENCH_RUNS run(s) each (median), user ${BENCH_USER:-root}, base $BENCH_BASE, work fs $BENCH_FS"
echo "$(nproc) CPUs, $(uname -r), load average at end: $(cut -d' ' -f1-3 /proc/loadavg), $(( $(date +%s) - start )) s in all"
echo "ratio < 1: obuild faster; (Nx) = buildah time / obuild time"
echo
table_header
cat "$BENCH_RESULTS"
[ -f "$BENCH_RESULTS.notes" ] && { echo; cat "$BENCH_RESULTS.notes"; }
if [ -n "$failed" ]; then
  echo; echo "FAILED:$failed" >&2
  exit 1
fi
exit 0
