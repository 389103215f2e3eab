# Shared by the tests that need a real Docker engine (t8xxx): sourced after
# lib.sh.  Starts a private dockerd (its own socket, data, exec root, config
# and containerd namespace; --bridge none --iptables=false), stopped with
# everything it made when the test exits.  Skips the test, saying why, where
# no daemon can start.  dk runs its client; DOCKER_LIB_CLEANUP (a command)
# is run too at exit.
[ "$(id -u)" -eq 0 ] || { skip "starting a private dockerd needs root"; done_testing; }
command -v dockerd >/dev/null || { skip "dockerd not installed (Debian package docker.io)"; done_testing; }
for c in docker-registry skopeo umoci; do
  command -v $c >/dev/null || { skip "$c not installed"; done_testing; }
done
# the client shipped with this dockerd, else whichever is on PATH
DOCKER=$(dirname "$(command -v dockerd)")/../bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker) || { skip "no docker client"; done_testing; }

# the daemon's runtime sockets live under --exec-root: keep its path short.
# Its data is not under TESTDIR either: lib.sh empties TESTDIR first thing,
# and must not walk into the mounts of a daemon that was killed (-9).
DTOP=/tmp/obd-$$
DRUN=$DTOP/run
DROOT=$DTOP/data
SOCK=$TESTDIR/docker.sock
DPID=
dk() { DOCKER_CONFIG=$TESTDIR/docker-config "$DOCKER" -H "unix://$SOCK" "$@"; }

# leftover mounts of the daemon (overlay2 binds its home onto itself; a
# killed daemon leaves container rootfs mounts), deepest first
unmount_leftovers() {
  awk '{ print $2 }' /proc/self/mounts | grep -E "^($DROOT|$DRUN)(/|\$)" | sort -r |
  while read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp"; done
}
stop_dockerd() {
  [ -n "$DPID" ] || return 0
  if kill -0 "$DPID" 2>/dev/null; then
    dk ps -aq 2>/dev/null | while read -r c; do dk rm -f "$c" >/dev/null 2>&1; done
    kill -TERM "$DPID" 2>/dev/null
    i=0; while kill -0 "$DPID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
    kill -KILL "$DPID" 2>/dev/null
  fi
  wait "$DPID" 2>/dev/null
  # the containerd the daemon started, if the daemon could not stop it
  cp=$DRUN/containerd/containerd.pid
  [ -f "$cp" ] && kill -KILL "$(cat "$cp")" 2>/dev/null
  DPID=
  unmount_leftovers
  rm -rf "$DTOP" "$SOCK"
}
cleanup() {
  stop_dockerd
  [ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null
  rm -rf "$TESTDIR/rootfs"
  ${DOCKER_LIB_CLEANUP:-:}
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
trap 'exit 141' PIPE

# start_dockerd DRIVER: the daemon answers, or returns 1 (log in dockerd-DRIVER.log)
start_dockerd() {
  stop_dockerd
  mkdir -p "$DRUN" "$DROOT" "$TESTDIR/docker-config"
  echo '{}' >"$TESTDIR/daemon.json"
  # its own config file and containerd namespace: nothing of a system
  # Docker is read or shared
  dockerd --config-file "$TESTDIR/daemon.json" --host "unix://$SOCK" \
    --data-root "$DROOT" --exec-root "$DRUN" --pidfile "$DRUN/dockerd.pid" \
    --containerd-namespace "obuild-$T_NAME" --containerd-plugins-namespace "obuild-$T_NAME-plugins" \
    --bridge none --iptables=false --ip-masq=false --storage-driver "$1" \
    >"$TESTDIR/dockerd-$1.log" 2>&1 &
  DPID=$!
  i=0
  while [ $i -lt 120 ]; do
    dk info >/dev/null 2>&1 && return 0
    kill -0 "$DPID" 2>/dev/null || return 1
    sleep 0.5; i=$((i + 1))
  done
  return 1
}
if start_dockerd overlay2; then driver=overlay2
elif start_dockerd vfs; then driver=vfs
else
  why=$(grep -E 'level=(error|fatal)|failed' "$TESTDIR/dockerd-vfs.log" | tail -1 | cut -c1-200)
  skip "dockerd does not start here: ${why:-no answer within 60 s}"
  done_testing
fi
ok "a private dockerd answers (storage driver $driver)"
