#!/bin/sh
# Ctrl-C / SIGTERM during a RUN step: the step is killed, obuild exits 130,
# nothing is left running, the store is as it was.  Where user namespaces
# are not allowed: exit 7 and a message naming the cause and the fix.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
printf 'FROM busybox\nRUN echo started && sleep 37\n' >"$ctx/Dockerfile"
chmod -R a+rX "$ctx"
snapshot() { (cd "$(store "$1")" && find oci -printf '%p %s\n' | sort && sha256sum oci/index.json); }
for m in $MODES; do
  import_busybox "$m"
  for sig in INT TERM; do
    snapshot "$m" >"$TESTDIR/before"
    ob "$m" build -t x "$ctx" >"$TESTDIR/o" 2>"$TESTDIR/e" &
    bg=$!
    i=0; until grep -q started "$TESTDIR/o" "$TESTDIR/e" 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
    # obuild itself, not the step's processes (clones with the same command line)
    pid= i=0
    while [ -z "$pid" ] && [ $i -lt 50 ]; do
      for p in $(pgrep -f "$OB build -t x $ctx"); do
        pp=$(ps -o ppid= -p "$p" | tr -d ' ')
        [ "$(readlink "/proc/$p/exe")" = "$OB" ] && [ "$(readlink "/proc/$pp/exe")" != "$OB" ] && pid=$p
      done
      [ -n "$pid" ] || sleep 0.1
      i=$((i + 1))
    done
    start=$(date +%s)
    kill -"$sig" "$pid"
    wait "$bg"; rc=$?
    check_eq "[$m] SIG$sig during RUN: exit 130" "$rc" 130
    check "[$m] SIG$sig: stopped promptly" test $(($(date +%s) - start)) -le 5
    check "[$m] SIG$sig: says it was interrupted" grep -q '^obuild: .*interrupted' "$TESTDIR/e"
    i=0; while pgrep -x -f 'sleep 37' >/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
    check_eq "[$m] SIG$sig: the step's processes are gone (within 2 s)" "$(pgrep -c -x -f 'sleep 37')" 0
    snapshot "$m" >"$TESTDIR/after"
    check_files "[$m] SIG$sig: store as it was" "$TESTDIR/after" "$TESTDIR/before"
  done
  check_eq "[$m] no scratch directory left" "$(ls -A "$(store "$m")/tmp" | wc -l)" 0
done

if [ "$(id -u)" -eq 0 ]; then
  check_fail 7 'user namespaces are disabled \(user.max_user_namespaces=0\); enable them with .sysctl -w user.max_user_namespaces=' \
    "user namespaces disabled: exit 7, cause and fix" \
    python3 "$FIXTURES/no-userns.py" "$(id -u "$T_USER")" env OBUILD_ROOT="$(store single)" "$OB" build "$ctx"
  check_fail 7 '--userns=subuid: no /etc/subuid' "--userns=subuid without a range: exit 7" \
    runuser -u nobody -- env OBUILD_ROOT=$IT_ROOT/nobody-store "$OB" build --userns=subuid "$ctx"
else
  skip "user namespace errors need root to set up"
fi
done_testing
