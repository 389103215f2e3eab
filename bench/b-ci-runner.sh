#!/bin/bash
# ci-runner: a cold CI runner.  Empty store / storage; the base is pulled
# from a docker-registry on 127.0.0.1 (started here), the example service
# is built and pushed back to that registry.  obuild: `obuild build --push
# -t REG/app:N` (the pull happens in FROM); buildah: `buildah bud
# --pull=always` then `buildah push docker://REG/app:N`.  Both over plain
# HTTP to 127.0.0.1, gzip layers, fresh storage per run.  Needs
# docker-registry (Debian package docker-registry); skipped otherwise.
# Run alone: bash bench/b-ci-runner.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ci_registry_stop() {
  [ -n "${CI_REG_PID:-}" ] && kill "$CI_REG_PID" 2>/dev/null && wait "$CI_REG_PID" 2>/dev/null
  CI_REG_PID=
}

b_ci_runner() {
  local r=$BENCH_WORK/res/ci-runner w=$BENCH_WORK/ci-runner cmd port i d reg
  if ! command -v docker-registry >/dev/null; then
    note "ci-runner: skipped (needs docker-registry, Debian package docker-registry)"
    return 0
  fi
  obuild_has_run; [ $? -eq 0 ] || { note "ci-runner: skipped (obuild cannot run RUN steps here)"; return 0; }
  cmd=$(service_run_cmd)
  log "ci-runner: $BENCH_BASE base from a registry on 127.0.0.1, RUN $cmd, push back"
  mkdir -p "$w"; chmod 755 "$w"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  reg=127.0.0.1:$port
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\nlog:\n  level: error\n' \
    "$w/registry-data" "$reg" >"$w/registry.yml"
  docker-registry serve "$w/registry.yml" >"$w/registry.log" 2>&1 &
  CI_REG_PID=$!
  for i in $(seq 50); do curl -s -o /dev/null "http://$reg/v2/" && break; sleep 0.1; done
  if ! skopeo copy -q --dest-tls-verify=false "oci:$(base_oci "$BENCH_BASE"):base" "docker://$reg/base:1" >"$w/seed.log" 2>&1; then
    log "ci-runner: pushing the base to the registry failed, see $w/seed.log"; ci_registry_stop; return 1
  fi
  service_ctx "$w/ctx" "$reg/base:1" "$cmd"
  for i in $(seq "$BENCH_RUNS"); do
    d=$(fresh_dir "ob-ci-$i")
    measure "$r.ob" ob "$d" build -q --push -t "$reg/app:ob$i" "$w/ctx" || { ci_registry_stop; return 1; }
    rm -rf "$d"
    d=$(fresh_dir "bh-ci-$i")
    measure "$r.bh" bash -c 'bh "$1" bud -q --isolation chroot --layers --pull=always --tls-verify=false -t bench-img "$2" >/dev/null &&
      bh "$1" push -q --tls-verify=false bench-img "docker://$3"' bash "$d" "$w/ctx" "$reg/app:bh$i" || { ci_registry_stop; return 1; }
    bench_buildah_wipe "$d"; rm -rf "$d"
  done
  # both pushed what they built
  skopeo inspect --tls-verify=false "docker://$reg/app:ob1" >/dev/null 2>&1 || { log "ci-runner: obuild's push is not in the registry"; ci_registry_stop; return 1; }
  skopeo inspect --tls-verify=false "docker://$reg/app:bh1" >/dev/null 2>&1 || { log "ci-runner: buildah's push is not in the registry"; ci_registry_stop; return 1; }
  ci_registry_stop
  table_row "ci-runner ($BENCH_BASE)" "$r.ob" "$r.bh"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  bench_init; table_header; b_ci_runner
fi
