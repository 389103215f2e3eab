#!/bin/sh
# Concurrent builds into one store never lose a tag (index.json is updated
# under a lock).
. "$(dirname "$0")/lib.sh"

for m in $MODES; do
  for i in 1 2 3 4 5 6; do
    mkdir -p "$TESTDIR/c$i"
    echo "$i" >"$TESTDIR/c$i/f"
    printf 'FROM scratch\nCOPY f /f\n' >"$TESTDIR/c$i/Dockerfile"
  done
  chmod -R a+rX "$TESTDIR"
  pids=""
  for i in 1 2 3 4 5 6; do
    ob "$m" build -q -t "con:$i" "$TESTDIR/c$i" >"$TESTDIR/o$i" 2>&1 &
    pids="$pids $!"
  done
  fails=0
  for p in $pids; do wait "$p" || fails=$((fails + 1)); done
  check_eq "[$m] six concurrent builds succeed" "$fails" 0
  check_eq "[$m] all six tags are in index.json" "$(ob "$m" images -q | sort | tr '\n' ' ')" \
    "con:1 con:2 con:3 con:4 con:5 con:6 "
  check "[$m] store validates" oci_validate "$(store_oci "$m")" con:3
  check_eq "[$m] no scratch directories are left" "$(ls "$(store "$m")/tmp" | wc -l)" 0
done
done_testing
