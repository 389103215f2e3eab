#!/bin/bash
# copy-small-files: FROM scratch + COPY of a context of 20,000 files of 1-4 KiB
# in 200 directories, cold (empty store / fresh buildah storage), until the
# image is in an OCI layout: `obuild build -o DIR` vs `buildah bud` + `buildah
# push oci:DIR`.  --quick: 2,000 files in 20 directories.
# Run alone: bash bench/b-copy-small-files.sh  (BENCH_RUNS, BENCH_USER, BENCH_QUICK)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

b_copy_small_files() {
  local n=20000 dirs=200
  [ "$BENCH_QUICK" = 1 ] && { n=2000; dirs=20; }
  log "copy-small-files: $n files in $dirs directories"
  local ctx df=$BENCH_WORK/copy.Dockerfile r=$BENCH_WORK/res/copy i d
  ctx=$(small_files_ctx "$n" "$dirs") || return 1
  printf 'FROM scratch\nCOPY . /data/\n' >"$df"; chmod 644 "$df"
  for i in $(seq "$BENCH_RUNS"); do
    d=$(fresh_dir ob-copy)
    measure "$r.ob" ob_build "$d" "$df" "$ctx" || return 1
    rm -rf "$d"
    d=$(fresh_dir bh-copy)
    measure "$r.bh" bh_bud_push "$d" "$df" "$ctx" || return 1
    bench_buildah_wipe "$d"; rm -rf "$d"
  done
  table_row "copy-small-files ($n)" "$r.ob" "$r.bh"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  bench_init; table_header; b_copy_small_files
fi
