#!/bin/bash
# big-run-layer: one RUN that writes a big layer on a Debian minbase base:
#   RUN cp -a /usr /usr2 && cp -a /usr /usr3 && cp -a /var/lib /varlib2
# (~450 MB in ~25,000 files), until the image is in an OCI layout
# (obuild build -o DIR vs buildah bud + push oci:DIR).  The base is already
# imported / pulled and unpacked: a warm-up build of `RUN true` on the same
# base runs first, untimed, for both tools.  --quick: busybox base, small copy.
# Three extra rows (not the main result; BENCH_BIGRUN_EXTRA=0 skips them):
# obuild with --compression-level 6, with --compression zstd, and without
# compressing the step's files while it runs (OBUILD_TEST_NO_PRECOMPRESS=1),
# against the same buildah runs (buildah keeps its default gzip).
# Run alone: bash bench/b-big-run-layer.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

b_big_run_layer() {
  local cmd='cp -a /usr /usr2 && cp -a /usr /usr3 && cp -a /var/lib /varlib2'
  [ "$BENCH_BASE" = busybox ] && cmd='cp -a /bin /bin2 && cp -a /usr /usr2 && cp -a /etc /etc2'
  log "big-run-layer: $BENCH_BASE base, RUN $cmd"
  local r=$BENCH_WORK/res/bigrun w=$BENCH_WORK/bigrun i d st v
  local extra=${BENCH_BIGRUN_EXTRA:-1}
  mkdir -p "$w/ctx"
  printf 'FROM %s\nRUN true\n' "$OB_BASE" >"$w/ob-warm.Dockerfile"
  printf 'FROM %s\nRUN %s\n' "$OB_BASE" "$cmd" >"$w/ob.Dockerfile"
  printf 'FROM %s\nRUN true\n' "$BH_BASE" >"$w/bh-warm.Dockerfile"
  printf 'FROM %s\nRUN %s\n' "$BH_BASE" "$cmd" >"$w/bh.Dockerfile"
  chmod -R a+rX "$w"
  base_oci "$BENCH_BASE" >/dev/null || return 1
  obuild_has_run; st=$?
  [ $st -eq 1 ] && return 1
  for i in $(seq "$BENCH_RUNS"); do
    if [ $st -eq 0 ]; then
      d=$(fresh_dir ob-bigrun)
      { ob_import "$d" && ob "$d" build -q -t warm -f "$w/ob-warm.Dockerfile" "$w/ctx" >/dev/null; } ||
        { log "obuild warm-up failed"; return 1; }
      measure "$r.ob" ob_build "$d" "$w/ob.Dockerfile" "$w/ctx" || return 1
      check_out "$d" || return 1
      rm -rf "$d"
      [ "$extra" = 1 ] && for v in gzip6 zstd plain; do
        d=$(fresh_dir ob-bigrun-$v)
        { ob_import "$d" && ob "$d" build -q -t warm -f "$w/ob-warm.Dockerfile" "$w/ctx" >/dev/null; } ||
          { log "obuild warm-up failed"; return 1; }
        case $v in
          gzip6) measure "$r.ob-$v" ob_build_opts "$d" "$w/ob.Dockerfile" "$w/ctx" --compression-level 6 || return 1 ;;
          zstd) measure "$r.ob-$v" ob_build_opts "$d" "$w/ob.Dockerfile" "$w/ctx" --compression zstd || return 1 ;;
          plain) measure "$r.ob-$v" ob_build_plain "$d" "$w/ob.Dockerfile" "$w/ctx" || return 1 ;;
        esac
        check_out "$d" || return 1
        rm -rf "$d"
      done
    fi
    d=$(fresh_dir bh-bigrun)
    { bh_pull "$d" >/dev/null && bh "$d" bud -q --isolation chroot --layers --pull=never -t warm \
        -f "$w/bh-warm.Dockerfile" "$w/ctx" >/dev/null; } || { log "buildah warm-up failed"; return 1; }
    measure "$r.bh" bh_bud_push "$d" "$w/bh.Dockerfile" "$w/ctx" || return 1
    check_out "$d" || return 1
    bench_buildah_wipe "$d"; rm -rf "$d"
  done
  [ $st -eq 2 ] && note "big-run-layer: obuild does not support RUN yet, its column is empty"
  table_row "big-run-layer ($BENCH_BASE)" "$r.ob" "$r.bh"
  if [ $st -eq 0 ] && [ "$extra" = 1 ]; then
    table_row "  extra: ob gzip level 6" "$r.ob-gzip6" "$r.bh"
    table_row "  extra: ob zstd" "$r.ob-zstd" "$r.bh"
    table_row "  extra: ob not made ahead" "$r.ob-plain" "$r.bh"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  bench_init; table_header; b_big_run_layer
fi
