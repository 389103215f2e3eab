#!/bin/bash
# parallel-stages: three stages, two of them independent with a RUN of
# ~2 s each (sleep 2 and a small write), the last copying from both; fresh
# store / storage per run, the base imported / pulled untimed, a warm-up
# build of the base first as in big-run-layer.  obuild --jobs 2 against
# buildah bud --jobs 2 (target >= 2x), and against obuild --jobs 1 (the
# second row; target >= 1.8x).  Run alone: bash bench/b-parallel-stages.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parallel_df() { # BASE
  printf 'FROM %s AS a\nRUN sleep 2 && echo a > /a && cp -a /etc /etc-a\n' "$1"
  printf 'FROM %s AS b\nRUN sleep 2 && echo b > /b && cp -a /etc /etc-b\n' "$1"
  printf 'FROM %s\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n' "$1"
}

b_parallel_stages() {
  local r=$BENCH_WORK/res/parallel w=$BENCH_WORK/parallel i d st j
  log "parallel-stages: $BENCH_BASE base, two independent stages of RUN sleep 2, one copying from both"
  mkdir -p "$w/ctx"
  printf 'FROM %s\nRUN true\n' "$OB_BASE" >"$w/ob-warm.Dockerfile"
  printf 'FROM %s\nRUN true\n' "$BH_BASE" >"$w/bh-warm.Dockerfile"
  parallel_df "$OB_BASE" >"$w/ob.Dockerfile"
  parallel_df "$BH_BASE" >"$w/bh.Dockerfile"
  chmod -R a+rX "$w"
  base_oci "$BENCH_BASE" >/dev/null || return 1
  obuild_has_run; st=$?
  [ $st -eq 0 ] || { note "parallel-stages: skipped (obuild cannot run RUN steps here)"; return 0; }
  for i in $(seq "$BENCH_RUNS"); do
    for j in 2 1; do
      d=$(fresh_dir ob-par$j)
      { ob_import "$d" && ob "$d" build -q -t warm -f "$w/ob-warm.Dockerfile" "$w/ctx" >/dev/null; } ||
        { log "obuild warm-up failed"; return 1; }
      measure "$r.ob$j" ob_build_opts "$d" "$w/ob.Dockerfile" "$w/ctx" --jobs "$j" || return 1
      check_out "$d" || return 1
      rm -rf "$d"
    done
    d=$(fresh_dir bh-par)
    { bh_pull "$d" >/dev/null && bh "$d" bud -q --isolation chroot --layers --pull=never -t warm \
        -f "$w/bh-warm.Dockerfile" "$w/ctx" >/dev/null; } || { log "buildah warm-up failed"; return 1; }
    measure "$r.bh" bash -c 'bh "$1" bud -q --isolation chroot --layers --jobs 2 --pull=never -t bench-img -f "$2" "$3" >/dev/null &&
      bh "$1" push -q bench-img "oci:$1/out:bench-img"' bash "$d" "$w/bh.Dockerfile" "$w/ctx" || return 1
    check_out "$d" || return 1
    bench_buildah_wipe "$d"; rm -rf "$d"
  done
  table_row "parallel-stages ($BENCH_BASE) j2" "$r.ob2" "$r.bh"
  table_row "  extra: ob --jobs 2 vs --jobs 1" "$r.ob2" "$r.ob1"
  note "parallel-stages: the second row's 'buildah' column is obuild --jobs 1 (target: ratio <= 0.55, i.e. >= 1.8x)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  bench_init; table_header; b_parallel_stages
fi
