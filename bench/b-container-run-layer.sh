#!/bin/bash
# container-run-layer: the big-run-layer build (one RUN writing a big layer,
# then the image into an OCI layout) with --isolation=container, as root in
# a job container with Docker's defaults (a private dockerd), against the
# same build by the same obuild in a user namespace outside Docker.  The
# container side includes what that mode costs: starting the container,
# obuild copying itself, making the container's root the base image, and
# the walk diff.  Not a buildah comparison: the row's second column is
# obuild in a namespace (target: ratio <= 1.5).  Needs root and docker.io;
# skipped (with a note) otherwise.  Run alone: bash bench/b-container-run-layer.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

b_container_run_layer() {
  local cmd='cp -a /usr /usr2 && cp -a /usr /usr3 && cp -a /var/lib /varlib2'
  [ "$BENCH_BASE" = busybox ] && cmd='cp -a /bin /bin2 && cp -a /usr /usr2 && cp -a /etc /etc2'
  local r=$BENCH_WORK/res/ctrun w=$BENCH_WORK/ctrun i d tar cid
  if [ "$(id -u)" != 0 ] || ! command -v dockerd >/dev/null; then
    note "container-run-layer: skipped (needs root and dockerd, Debian package docker.io)"
    return 0
  fi
  log "container-run-layer: $BENCH_BASE base, RUN $cmd, --isolation=container vs a user namespace"
  mkdir -p "$w/ctx" "$w/conf"
  printf 'FROM %s\nRUN true\n' "$OB_BASE" >"$w/ctx/warm.Dockerfile"
  printf 'FROM %s\nRUN %s\n' "$OB_BASE" "$cmd" >"$w/ctx/Dockerfile"
  chmod -R a+rX "$w"
  tar=$(base_tar "$BENCH_BASE") || return 1
  # the daemon's data root (the job container's root file system, where
  # the RUN writes) on the benchmark's file system, as the namespace side's
  # store: the same disk for both (plain /tmp costs ~1 ms per new inode
  # after mass deletions, see README.md)
  DTOP=/tmp/obb-$$ DROOT=$BENCH_WORK/docker-data SOCK=$w/docker.sock DCONF=$w/conf DNAME=bench
  . "$BENCH_REPO/tests/fixtures/docker/dockerd.sh"
  export -f dk; export DOCKER DCONF SOCK   # measure runs its command in bash -c
  if ! start_dockerd overlay2 && ! start_dockerd vfs; then
    note "container-run-layer: skipped, dockerd does not start here (see $w/conf)"
    stop_dockerd
    return 0
  fi
  # the executor image (scripts/executor-image.sh) made with this obuild
  if ! bash "$BENCH_REPO/scripts/executor-image.sh" --obuild "$OBUILD" -o "$w/exec" >"$w/exec.log" 2>&1 ||
     ! skopeo copy -q "oci:$w/exec:obuild-executor:latest" "docker-archive:$w/exec.tar:obuild-executor:bench" >>"$w/exec.log" 2>&1 ||
     ! dk load -q -i "$w/exec.tar" >>"$w/exec.log" 2>&1; then
    log "executor image failed, see $w/exec.log"; stop_dockerd; return 1
  fi
  for i in $(seq "$BENCH_RUNS"); do
    # a job container whose store (a volume) holds the base; cold: its root
    # becomes the base first
    # the output layout on the store's volume, as the namespace side's is
    # on its store's file system: one mount, so blobs are hard links there
    # too (across two bind mounts linkat fails with EXDEV and each blob is
    # copied, ~0.8 s for this layer)
    d=$(fresh_dir ct-run); mkdir -p "$d/store/bench-out"
    OBUILD_ROOT=$d/store "$OBUILD" import -q "$tar" "$OB_BASE" >/dev/null || { stop_dockerd; return 1; }
    cid=$(dk run -d --network host --entrypoint "" -v "$w/ctx:/workspace" -v "$d/store:/obuild/store" \
      obuild-executor:bench sleep 100000) || { stop_dockerd; return 1; }
    measure "$r.cold" dk exec "$cid" obuild build -q -t bench-img -o /obuild/store/bench-out/cold /workspace || { stop_dockerd; return 1; }
    # warm, as the big-run-layer benchmark: the base already in place
    # (a RUN true build before, untimed)
    dk exec "$cid" obuild build -q -t warm -f /workspace/warm.Dockerfile /workspace >/dev/null 2>&1 || { stop_dockerd; return 1; }
    measure "$r.ct" dk exec "$cid" obuild build -q --no-cache -t bench-img -o /obuild/store/bench-out/img /workspace || { stop_dockerd; return 1; }
    [ -f "$d/store/bench-out/img/index.json" ] || { log "no OCI layout in $d/store/bench-out/img"; stop_dockerd; return 1; }
    dk rm -f "$cid" >/dev/null 2>&1
    rm -rf "$d"
    # the same build in a user namespace (as BENCH_USER when set), warm
    d=$(fresh_dir ns-run)
    { ob_import "$d" && ob "$d" build -q -t warm -f "$w/ctx/warm.Dockerfile" "$w/ctx" >/dev/null; } || { stop_dockerd; return 1; }
    measure "$r.ns" ob_build "$d" "$w/ctx/Dockerfile" "$w/ctx" || { stop_dockerd; return 1; }
    check_out "$d" || { stop_dockerd; return 1; }
    rm -rf "$d"
  done
  stop_dockerd
  table_row "container-run-layer ($BENCH_BASE) vs ns" "$r.ct" "$r.ns"
  table_row "  extra: cold container vs ns" "$r.cold" "$r.ns"
  note "container-run-layer: obuild --isolation=container in a Docker job container (executor image) vs obuild in a user namespace, not buildah; both warm (target ratio <= 1.5); the cold row includes making the container's root the base"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  bench_init; table_header; b_container_run_layer
fi
