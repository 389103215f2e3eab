#!/bin/bash
# unpack-base: extracting a base image (Debian bookworm minbase, ~170 MB,
# ~8,700 files; busybox with --quick) from its compressed layer:
#   obuild:  first RUN (`RUN true`) on a freshly imported base, which unpacks
#            the layer into the store's layer directory (import not timed);
#   umoci:   `umoci unpack --rootless` of the same image (OCI layout);
#   buildah: first `buildah from oci:LAYOUT:base` on fresh storage (pull into
#            containers/storage = extraction, plus the container).
# Run alone: bash bench/b-unpack-base.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

b_unpack_base() {
  log "unpack-base: $BENCH_BASE base"
  local lay r=$BENCH_WORK/res/unpack df=$BENCH_WORK/unpack.Dockerfile i d st
  lay=$(base_oci "$BENCH_BASE") || return 1
  printf 'FROM %s\nRUN true\n' "$OB_BASE" >"$df"; chmod 644 "$df"
  mkdir -p "$BENCH_WORK/emptyctx"; chmod 755 "$BENCH_WORK/emptyctx"
  obuild_has_run; st=$?
  [ $st -eq 1 ] && return 1
  for i in $(seq "$BENCH_RUNS"); do
    if [ $st -eq 0 ]; then
      d=$(fresh_dir ob-unpack)
      ob_import "$d" || { log "obuild import failed"; return 1; }
      measure "$r.ob" ob "$d" build -q -t bench-img -f "$df" "$BENCH_WORK/emptyctx" || return 1
      rm -rf "$d"
    fi
    d=$(fresh_dir umoci-unpack)
    measure "$r.umoci" as_user umoci unpack --rootless --image "$lay:base" "$d/bundle" || return 1
    rm -rf "$d"
    d=$(fresh_dir bh-unpack)
    measure "$r.bh" bh "$d" from -q --pull-always "oci:$lay:base" || return 1
    bench_buildah_wipe "$d"; rm -rf "$d"
  done
  [ $st -eq 2 ] && note "unpack-base: obuild does not support RUN yet, its column is empty"
  table_row "unpack-base ($BENCH_BASE)" "$r.ob" "$r.bh"
  table_row "unpack-base, umoci as 2nd" "$r.ob" "$r.umoci"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  bench_init; table_header; b_unpack_base
fi
