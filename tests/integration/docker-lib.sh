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
[ -x "$(dirname "$(command -v dockerd)")/../bin/docker" ] || command -v docker >/dev/null || { skip "no docker client"; done_testing; }
# the daemon's runtime sockets live under --exec-root: keep its path short.
# Its data is not under TESTDIR either: lib.sh empties TESTDIR first thing,
# and must not walk into the mounts of a daemon that was killed (-9).
DTOP=/tmp/obd-$$ SOCK=$TESTDIR/docker.sock DCONF=$TESTDIR DNAME=$T_NAME
. "$FIXTURES/docker/dockerd.sh"
cleanup() {
  stop_dockerd
  [ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null
  rm -rf "$TESTDIR/rootfs"
  ${DOCKER_LIB_CLEANUP:-:}
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
trap 'exit 141' PIPE

if start_dockerd overlay2; then driver=overlay2
elif start_dockerd vfs; then driver=vfs
else
  why=$(grep -E 'level=(error|fatal)|failed' "$TESTDIR/dockerd-vfs.log" | tail -1 | cut -c1-200)
  skip "dockerd does not start here: ${why:-no answer within 60 s}"
  done_testing
fi
ok "a private dockerd answers (storage driver $driver)"

# job_image: the CI job image obuild-ci:test (obuild, its libraries and
# busybox, nothing downloaded), or the test ends here
job_image() {
  if sh "$FIXTURES/docker/make-ci-rootfs.sh" "$OB" "$TESTDIR/rootfs" >"$TESTDIR/.out" 2>&1 &&
     tar -C "$TESTDIR/rootfs" -c . | dk import - obuild-ci:test >>"$TESTDIR/.out" 2>&1; then
    ok "job image obuild-ci:test imported"
  else
    not_ok "job image obuild-ci:test imported"; diag <"$TESTDIR/.out"; done_testing
  fi
}
