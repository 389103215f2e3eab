#!/bin/bash
# first-build: the first build on an empty store, base included: obuild
# imports the Debian minbase rootfs tarball (`obuild import`, which gzips it
# into a layer) then builds; buildah, on fresh storage, builds
# `FROM oci:LAYOUT:base` (pulling the already-compressed layer from an OCI
# layout) then pushes.  Dockerfile: RUN echo hi > /x, COPY of a small file.
# Second row (when obuild supports it): obuild given buildah's very input,
# FROM oci:LAYOUT:base, no import.
# Until the image is in an OCI layout.  --quick: busybox base.
# Run alone: bash bench/b-first-build.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

b_first_build() {
  log "first-build: $BENCH_BASE base"
  local r=$BENCH_WORK/res/first w=$BENCH_WORK/first lay i d st oci_ok=
  lay=$(base_oci "$BENCH_BASE") || return 1
  mkdir -p "$w/ctx"
  echo "a small file" >"$w/ctx/small.txt"
  printf 'FROM %s\nRUN echo hi > /x\nCOPY small.txt /small.txt\n' "$OB_BASE" >"$w/ob.Dockerfile"
  printf 'FROM oci:%s:base\nRUN echo hi > /x\nCOPY small.txt /small.txt\n' "$lay" >"$w/bh.Dockerfile"
  printf 'FROM oci:%s:base\n' "$lay" >"$w/probe.Dockerfile"
  chmod -R a+rX "$w"
  obuild_has_run; st=$?
  [ $st -eq 1 ] && return 1
  for i in $(seq "$BENCH_RUNS"); do
    if [ $st -eq 0 ]; then
      d=$(fresh_dir ob-first)
      measure "$r.ob" ob_import_build "$d" "$w/ob.Dockerfile" "$w/ctx" || return 1
      check_out "$d" || return 1
      rm -rf "$d"
    fi
    if [ $st -eq 0 ] && [ "$oci_ok" != no ]; then
      # obuild given exactly buildah's input: FROM oci:LAYOUT:base (no import)
      d=$(fresh_dir ob-first-oci)
      if [ -z "$oci_ok" ]; then
        ob "$d" build -q -t probe -f "$w/probe.Dockerfile" "$w/ctx" >/dev/null 2>&1 && oci_ok=yes || oci_ok=no
        rm -rf "$d"; d=$(fresh_dir ob-first-oci)
      fi
      if [ "$oci_ok" = yes ]; then
        measure "$r.ob-oci" ob_build "$d" "$w/bh.Dockerfile" "$w/ctx" || return 1
        check_out "$d" || return 1
      fi
      rm -rf "$d"
    fi
    d=$(fresh_dir bh-first)
    measure "$r.bh" bh_bud_push "$d" "$w/bh.Dockerfile" "$w/ctx" missing || return 1
    check_out "$d" || return 1
    bench_buildah_wipe "$d"; rm -rf "$d"
  done
  [ $st -eq 2 ] && note "first-build: obuild does not support RUN yet, its column is empty"
  table_row "first-build ($BENCH_BASE)" "$r.ob" "$r.bh"
  if [ "$oci_ok" = yes ]; then
    table_row "first-build, ob FROM oci:" "$r.ob-oci" "$r.bh"
  elif [ $st -eq 0 ]; then
    note "first-build: this obuild cannot build FROM oci:LAYOUT:tag, no second row"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  bench_init; table_header; b_first_build
fi
