#!/bin/sh
# obuild run, in every mode: the command's output and exit status (128+N
# for a signal), the image's Entrypoint/Cmd/Env/WorkingDir/User/StopSignal
# and the options that replace them, -e/--env-file, -v binds (ro and rw),
# -i, -t in a real pseudo-terminal, an image with 30,000 Env entries and Cmd
# arguments, --network none, --name; a busybox httpd
# service in the background stopped with SIGTERM, a command ignoring SIGTERM
# killed after --stop-timeout or a second signal, and obuild SIGKILLed:
# nothing (process, mount, upper directory) is left behind.  The usage,
# missing-image, missing-source and no-isolation errors.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx/ep" "$ctx/svc" "$ctx/stop" "$ctx/www"
cat >"$ctx/ep/Dockerfile" <<'DF'
FROM busybox
ENV FOO=image BAR=image
WORKDIR /srv/app
USER app
ENTRYPOINT ["echo", "ep"]
CMD ["default", "cmd"]
DF
cat >"$ctx/svc/Dockerfile" <<'DF'
FROM busybox
COPY index.html /www/index.html
RUN ln -s ../../../../obuild-t6200-escape /esc
ARG PORT
ENV PORT=$PORT
CMD httpd -f -p 127.0.0.1:$PORT -h /www
DF
echo "served by obuild run" >"$ctx/svc/index.html"
cat >"$ctx/stop/Dockerfile" <<'DF'
FROM busybox
STOPSIGNAL SIGUSR1
CMD ["sh", "-c", "trap 'echo got-usr1; exit 42' USR1; echo ready >/tmp/ready; while :; do sleep 0.1; done"]
DF
# an image whose Env has 30,000 entries (one given twice) and whose Cmd has
# 30,000 arguments: each Env entry was compared with all before it
mkdir -p "$ctx/big"
python3 - "$ctx/big/Dockerfile" <<'PY'
import sys
open(sys.argv[1], "w").write("FROM busybox\n" + "".join("ENV E%d=%d\n" % (i, i) for i in range(30000))
  + "ENV E7=again\n"
  + 'CMD ["sh", "-c", "echo $(env | grep -c ^E[0-9]) $E7 $E29999 $#", "x", ' + ", ".join('"a"' for _ in range(30000)) + "]\n")
PY
chmod -R a+rX "$ctx"
printf '# comment\n\nFILE1=from-file\nFOO=file\n' >"$TESTDIR/env.list"
chmod 644 "$TESTDIR/env.list"

# wait_for CMD...: up to 10 s for CMD to succeed
wait_for() {
  _i=0
  until "$@" >/dev/null 2>&1; do
    _i=$((_i + 1)); [ $_i -ge 100 ] && return 1; sleep 0.1
  done
}
# nothing_left MODE PATTERN: no process matching PATTERN, no mount of the
# store's in any mount namespace, no scratch directory in its tmp/
nothing_left() {
  _s=$(store "$1")
  ! ps -eo args | grep -v grep | grep -q -- "$2" \
    && ! grep -qs -- "$_s" /proc/[0-9]*/mountinfo \
    && [ -z "$(ls -A "$_s/tmp" 2>/dev/null)" ]
}

port=$(($(free_port) - 1)) # the services listen on port + 1, which the kernel says is free
for m in $MODES; do
  import_busybox "$m"
  ok=true
  for i in ep svc stop; do
    ob "$m" build -q --build-arg PORT=$((port + 1)) -t "$i" "$ctx/$i" >"$TESTDIR/b-$m-$i.out" 2>&1 || { ok=false; diag <"$TESTDIR/b-$m-$i.out"; }
  done
  if $ok; then ok "[$m] images built"; else not_ok "[$m] images built"; continue; fi
  d=$(userdir "d-$m" "$m")

  check_eq "[$m] echo" "$(ob "$m" run busybox echo hello 2>&1)" hello
  dg=$(ob "$m" images | awk '$1 == "busybox:latest" { print $2 }')
  check_eq "[$m] by manifest digest" "$(ob "$m" run "$dg" echo by-digest 2>&1)" by-digest
  check_eq "[$m] by a digest prefix, --rm accepted" "$(ob "$m" run --rm "$(echo "$dg" | cut -c8-20)" echo by-prefix 2>&1)" by-prefix
  ob "$m" run busybox sh -c 'exit 3' >/dev/null 2>&1
  check_eq "[$m] the exit status passes through" "$?" 3
  ob "$m" run busybox sh -c 'kill -KILL $$' >/dev/null 2>&1
  check_eq "[$m] killed by a signal: 128+N" "$?" 137
  ob "$m" run busybox sh -c 'kill -TERM $$' >/dev/null 2>&1
  check_eq "[$m] killed by SIGTERM: 143" "$?" 143
  check_eq "[$m] stdout and stderr pass through" \
    "$(ob "$m" run busybox sh -c 'echo out; echo err >&2' 2>"$TESTDIR/err" ; cat "$TESTDIR/err")" "out
err"

  # the image's metadata, and what replaces it
  check_eq "[$m] Entrypoint and Cmd" "$(ob "$m" run ep 2>&1)" "ep default cmd"
  check_eq "[$m] arguments replace Cmd" "$(ob "$m" run ep other 2>&1)" "ep other"
  check_eq "[$m] --entrypoint replaces Entrypoint and drops Cmd" "$(ob "$m" run --entrypoint echo ep 2>&1)" ""
  check_eq "[$m] WorkingDir" "$(ob "$m" run --entrypoint sh ep -c pwd 2>&1)" /srv/app
  check_eq "[$m] --entrypoint with arguments" "$(ob "$m" run --entrypoint sh ep -c 'echo $FOO $BAR' 2>&1)" "image image"
  check_eq "[$m] -e and --env-file (-e wins)" \
    "$(ob "$m" run --env-file "$TESTDIR/env.list" -e BAR=opt -e NEW=1 --entrypoint sh ep -c 'echo $FOO $BAR $FILE1 $NEW' 2>&1)" \
    "file opt from-file 1"
  check_eq "[$m] -e K takes the value here, or none" \
    "$(HOSTVAR=here ob "$m" run -e HOSTVAR -e UNSETVAR busybox sh -c 'echo $HOSTVAR ${UNSETVAR-unset}' 2>&1)" "here unset"
  check_eq "[$m] -w (created when missing)" "$(ob "$m" run -w /new/dir --entrypoint sh ep -c pwd 2>&1)" /new/dir
  if [ "$m" = single ]; then
    check_eq "[$m] image User: root in single-ID mode (documented)" "$(ob "$m" run --entrypoint id ep -u 2>&1)" 0
    check_eq "[$m] -u: root in single-ID mode" "$(ob "$m" run -u nobody busybox id -u 2>&1)" 0
  else
    check_eq "[$m] image User with its groups" "$(ob "$m" run --entrypoint id ep 2>&1)" \
      "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)"
    check_eq "[$m] -u USER:GROUP" "$(ob "$m" run -u nobody:50 busybox id 2>&1)" \
      "uid=65534(nobody) gid=50(staff) groups=50(staff)"
    check_eq "[$m] -u root replaces the image's User" "$(ob "$m" run -u 0 --entrypoint id ep -u 2>&1)" 0
  fi
  check_fail 2 "-u nosuch: unable to find user nosuch" "[$m] -u unknown user: exit 2" ob "$m" run -u nosuch busybox true
  check_eq "[$m] HOME and HOSTNAME" "$(ob "$m" run busybox sh -c 'echo $HOME $HOSTNAME' 2>&1)" "/root obuild"
  check_eq "[$m] --name is the hostname" "$(ob "$m" run --name web1 busybox hostname 2>&1)" web1
  check_eq "[$m] --network none: loopback only" \
    "$(ob "$m" run --network none busybox sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "' 2>&1)" lo
  hostnet=$(tail -n +3 /proc/net/dev | wc -l)
  check_eq "[$m] ... the host's interfaces" \
    "$(ob "$m" run busybox sh -c 'tail -n +3 /proc/net/dev | wc -l' 2>&1)" "$hostnet"

  # binds
  echo data >"$d/in.txt"; chmod 644 "$d/in.txt"
  check_eq "[$m] -v rw: the command writes the host's directory" \
    "$(ob "$m" run -v "$d:/data" busybox sh -c 'cat /data/in.txt && echo written >/data/out.txt' 2>&1; cat "$d/out.txt")" "data
written"
  ob "$m" run -v "$d:/data:ro" busybox sh -c 'echo x >/data/ro.txt' >"$TESTDIR/ro.out" 2>&1
  check_eq "[$m] -v :ro: a write fails (status 1)" "$?" 1
  check "[$m] ... with a read-only file system" grep -q "Read-only file system" "$TESTDIR/ro.out"
  check "[$m] ... and nothing written" test ! -e "$d/ro.txt"
  check_eq "[$m] -v target through a symlink: resolved inside the root" \
    "$(ob "$m" run -v "$d:/esc/sub:ro" --entrypoint cat svc /obuild-t6200-escape/sub/in.txt 2>&1)" data
  check "[$m] ... nothing made on the host" test ! -e /obuild-t6200-escape
  check_fail 4 "-v: source .*/nonexistent.*No such file" "[$m] -v missing source: exit 4" \
    ob "$m" run -v "$d/nonexistent:/x" busybox true
  check_fail 2 "-v: the target .rel. is not an absolute path" "[$m] -v relative target: exit 2" \
    ob "$m" run -v "$d:rel" busybox true
  check_fail 2 "cannot mount over ./proc/x." "[$m] -v over /proc: exit 2" ob "$m" run -v "$d:/proc/x" busybox true

  # standard input, terminals
  check_eq "[$m] -i: stdin passes" "$(echo piped | ob "$m" run -i busybox cat 2>&1)" piped
  check_eq "[$m] without -i: no stdin" "$(echo piped | ob "$m" run busybox cat 2>&1)" ""
  as "$m" script -qec "env OBUILD_ROOT=$(store "$m") $OB run -t busybox sh -c 'test -t 0 && test -t 1 && echo \"tty \$TERM\"; exit 5'" /dev/null \
    >"$TESTDIR/tty-$m.out" 2>&1
  check_eq "[$m] -t: a terminal, exit status kept" "$?" 5
  check_eq "[$m] -t: TERM=xterm, output through the terminal" "$(tr -d '\r' <"$TESTDIR/tty-$m.out")" "tty xterm"
  printf 'echo in-$((6*7))\nexit 6\n' | as "$m" script -qec "env OBUILD_ROOT=$(store "$m") $OB run -it busybox sh" /dev/null \
    >"$TESTDIR/tty2-$m.out" 2>&1
  check_eq "[$m] -it: an interactive shell, exit status kept" "$?" 6
  check "[$m] -it: typed input reaches the shell" grep -q "in-42" "$TESTDIR/tty2-$m.out"
  # -i from a terminal without -t: a pipe (the terminal would stop the
  # command, whose process group is not its foreground one)
  printf 'shout\n' | as "$m" script -qec "env OBUILD_ROOT=$(store "$m") $OB run -i busybox sh -c 'test -t 0 || echo pipe; tr a-z A-Z; exit 8'" /dev/null \
    >"$TESTDIR/tty3-$m.out" 2>&1
  check_eq "[$m] -i on a terminal: exit status kept" "$?" 8
  check_eq "[$m] -i on a terminal: stdin through a pipe" "$(tr -d '\r' <"$TESTDIR/tty3-$m.out" | grep -v '^shout$')" "pipe
SHOUT"

  # a service in the background: httpd, stopped with SIGTERM
  p=$((port + 1))
  ob_bg "$m" "$d/pid" run svc >"$TESTDIR/svc-$m.out" 2>&1 &
  bg=$!
  if wait_for curl -sf "http://127.0.0.1:$p/index.html"; then
    check_eq "[$m] the service answers on the host's port" "$(curl -sf "http://127.0.0.1:$p/index.html")" "served by obuild run"
  else
    not_ok "[$m] the service answers on the host's port"; diag <"$TESTDIR/svc-$m.out"
  fi
  kill -TERM "$(cat "$d/pid")"
  wait "$bg"
  check_eq "[$m] SIGTERM: forwarded, obuild exits 143" "$?" 143
  check "[$m] nothing left: process, mount, upper directory" nothing_left "$m" "httpd -f -p 127.0.0.1:$p"

  # StopSignal: SIGTERM becomes SIGUSR1, which the command traps
  ob_bg "$m" "$d/pid" run stop >"$TESTDIR/stop-$m.out" 2>&1 &
  bg=$!
  wait_for sh -c "grep -qs . '$(store "$m")'/tmp/.obuild-*-run-*/upper/tmp/ready" || sleep 1
  kill -TERM "$(cat "$d/pid")"
  wait "$bg"
  check_eq "[$m] StopSignal SIGUSR1 for SIGTERM: the command's exit status" "$?" 42
  check "[$m] ... the command saw SIGUSR1" grep -q got-usr1 "$TESTDIR/stop-$m.out"
  # SIGINT goes as itself
  ob_bg "$m" "$d/pid" run busybox sh -c "trap 'exit 9' INT; touch /tmp/ready; while :; do sleep 0.1; done" >/dev/null 2>&1 &
  bg=$!
  wait_for sh -c "ls '$(store "$m")'/tmp/.obuild-*-run-*/upper/tmp/ready" || sleep 1
  kill -INT "$(cat "$d/pid")"
  wait "$bg"
  check_eq "[$m] SIGINT forwarded" "$?" 9

  # a command that ignores SIGTERM: SIGKILLed after --stop-timeout, or at
  # a second signal (a watchdog SIGKILLs obuild itself after 30 s, and says so)
  for how in timeout twice; do
    rm -f "$d/ready-$how" "$d/fired-$how" "$d/stop-$how"
    opt=""; [ $how = timeout ] && opt="--stop-timeout 1"
    ob_bg "$m" "$d/pid" run $opt -v "$d:/d" busybox sh -c "trap '' TERM INT; touch /d/ready-$how; while :; do sleep 0.1; done" >/dev/null 2>&1 &
    bg=$!
    wait_for test -e "$d/ready-$how" || sleep 1
    # (short sleeps: no sleep outlives the check, for a later test to count)
    (i=0; while [ $i -lt 300 ] && [ ! -e "$d/stop-$how" ]; do sleep 0.1; i=$((i + 1)); done
     [ -e "$d/stop-$how" ] || { touch "$d/fired-$how"; kill -KILL "$(cat "$d/pid")"; }) 2>/dev/null &
    dog=$!
    kill -TERM "$(cat "$d/pid")"
    [ $how = twice ] && { sleep 0.5; kill -INT "$(cat "$d/pid")"; }
    wait "$bg"
    rc=$?
    touch "$d/stop-$how"
    wait "$dog"
    check_eq "[$m] a command ignoring SIGTERM is SIGKILLed ($how): obuild exits 137, by itself" \
      "$rc:$(test -e "$d/fired-$how" && echo watchdog)" "137:"
  done
  check "[$m] ... nothing left" nothing_left "$m" "obuild run"

  # obuild SIGKILLed: the container dies with it, the next run cleans up
  ob_bg "$m" "$d/pid" run busybox sleep 4242$$ >/dev/null 2>&1 &
  bg=$!
  wait_for sh -c "ps -eo args | grep -qx 'sleep 4242$$'"
  kill -KILL "$(cat "$d/pid")"
  wait "$bg" 2>/dev/null
  wait_for sh -c "! ps -eo args | grep -qx 'sleep 4242$$'"
  check "[$m] SIGKILL of obuild: the command is gone" sh -c "! ps -eo args | grep -qx 'sleep 4242$$'"
  check "[$m] ... its upper directory stays until the next obuild" sh -c "ls -d '$(store "$m")'/tmp/.obuild-*-run-*"
  ob "$m" run busybox true
  check "[$m] ... which removes it" nothing_left "$m" "sleep 4242$$"

  ob "$m" build -q -t big "$ctx/big" >/dev/null
  check_eq "[$m] an image with 30,000 Env entries and 30,000 Cmd arguments runs with them all, -e replacing one" \
    "$(ob "$m" run -e E29999=opt big 2>&1)" "30000 again opt 30000"

  # errors
  check_fail 9 "image .nosuch. not found" "[$m] missing image: exit 9" ob "$m" run nosuch
  check_fail 2 "no command: image .busybox. sets no Entrypoint or Cmd" "[$m] no command: exit 2" ob "$m" run busybox
  check_fail 127 "exec .nosuchcmd.: No such file or directory" "[$m] command not found: exit 127" ob "$m" run busybox nosuchcmd
  check_fail 2 "-w .rel.: not an absolute path" "[$m] relative -w: exit 2" ob "$m" run -w rel busybox true
  check_fail 2 "unknown option .--bogus." "[$m] unknown option: exit 2" ob "$m" run --bogus busybox true
  check_fail 2 "--network .bridge.: expected host or none" "[$m] bad --network: exit 2" ob "$m" run --network bridge busybox true
  check_fail 2 "usage: obuild run" "[$m] no image: exit 2" ob "$m" run
  check_fail 4 "--env-file.*nosuch" "[$m] missing --env-file: exit 4" ob "$m" run --env-file "$d/nosuch" busybox true
  check_fail 7 "run: --userns=none" "[$m] --userns=none: exit 7" ob "$m" run --userns none busybox true
  check_fail 2 "--stop-timeout .soon.: expected seconds" "[$m] bad --stop-timeout: exit 2" ob "$m" run --stop-timeout soon busybox true
  check "[$m] nothing left after all that" nothing_left "$m" "obuild run"
done
done_testing
