#!/bin/sh
# --progress: json (every line an object: step start/end pairs, cache hits,
# the layers of the manifest, a RUN's output, the error with its exit code,
# the final digest), plain (each step's duration), quiet (nothing on
# success, a failed step's output), auto without a terminal (plain), the
# live tty view in a real terminal (tmux), and pull/push transfer events
# from a registry on 127.0.0.1.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
echo a >"$ctx/a"
printf 'FROM busybox\nRUN echo RUN-OUT-1 && echo data >/f\nCOPY a /a\nRUN echo RUN-OUT-2\n' >"$ctx/Dockerfile"
printf 'FROM busybox AS base\nRUN echo FAIL-OUT && echo FAIL-ERR >&2 && exit 3\n' >"$ctx/Dockerfile.fail"
chmod -R a+rX "$ctx"
export SOURCE_DATE_EPOCH=1700000000

# jsoncheck FILE WHAT [ARGS]: python checks of a --progress=json stream
cat >"$TESTDIR/jsoncheck.py" <<'PY'
import json, os, sys
path, what = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
evs = []
for n, line in enumerate(open(path, encoding="utf-8"), 1):
    try:
        o = json.loads(line)
    except ValueError:
        sys.exit("line %d is not JSON: %r" % (n, line))
    if not isinstance(o, dict) or "event" not in o or "time" not in o:
        sys.exit("line %d: not an event: %r" % (n, line))
    evs.append(o)
def steps(kind):
    return [e for e in evs if e["event"] == kind]
if what == "valid":
    print(len(evs) > 0 and "ok" or "empty")
elif what == "pairs":
    # every started step ends once, in order, with the same stage/instruction
    st, en = steps("step_start"), steps("step_end")
    key = lambda e: (e["stage"], e["step"], e["instruction"], e["total_steps"])
    ok = [key(e) for e in st] == [key(e) for e in en] and len(st) == st[0]["total_steps"]
    ok = ok and all(isinstance(e["duration_ms"], int) and e["duration_ms"] >= 0 for e in en)
    print("ok" if ok else "bad: %r / %r" % (st, en))
elif what == "cached":
    # the cache flag of each step, "1:0:..."
    print(":".join("1" if e["cached"] else "0" for e in steps("step_end")))
elif what == "layers":
    # the steps' layers are the manifest's last layers, in order
    oci, digest = args
    m = json.load(open(os.path.join(oci, "blobs", "sha256", digest.split(":")[1])))
    mine = [(e["layer_digest"], e["layer_size"]) for e in steps("step_end") if e["layer_digest"]]
    theirs = [(l["digest"], l["size"]) for l in m["layers"]][-len(mine):] if mine else []
    print("ok %d" % len(mine) if mine and mine == theirs else "bad: %r / %r" % (mine, theirs))
elif what == "output":
    # the steps whose output has the text
    print(" ".join(str(e["step"]) for e in steps("output") if args[0] in e["data"]))
elif what == "done":
    d = steps("done")
    print(d[0]["digest"] if len(d) == 1 and evs[-1] is d[0] else "bad")
elif what == "error":
    e = evs[-1]
    failed = [s["step"] for s in steps("step_end") if s["failed"]]
    print("%s %s %s" % (e["event"], e.get("exit_code"), failed) if "status 3" in e.get("message", "") else "bad: %r" % e)
elif what == "warning":
    print(" ".join(e["message"] for e in steps("warning")))
elif what == "stages":
    print(" ".join("%s:%s" % (e["stage"], e["stage_name"]) for e in steps("step_end")))
elif what == "xfer":
    # transfer events: the states seen for action args[0]; each done has done == total
    x = [e for e in steps("transfer") if e["action"] == args[0]]
    bad = [e for e in x if e["state"] == "done" and e["done"] != e["total"]]
    print(" ".join(sorted({e["state"] for e in x})) if not bad else "bad: %r" % bad)
elif what == "xferdigests":
    print(" ".join(sorted({e["digest"] for e in steps("transfer") if e["state"] in ("done", "exists", "mounted")})))
PY
jc() { python3 "$TESTDIR/jsoncheck.py" "$@" 2>&1; }
manifest_blobs() { # OCI DIGEST: the config and layer digests of a manifest
  python3 -c 'import json,os,sys; m=json.load(open(os.path.join(sys.argv[1],"blobs","sha256",sys.argv[2].split(":")[1]))); print(" ".join(sorted({m["config"]["digest"]}|{l["digest"] for l in m["layers"]})))' "$@"
}

for m in $MODES; do
  import_busybox "$m"
  ob "$m" build --progress=json -t p "$ctx" >"$TESTDIR/o1-$m" 2>"$TESTDIR/j1-$m"
  check_eq "[$m] json build exits 0" "$?" 0
  check_eq "[$m] every line of standard error is a JSON event" "$(jc "$TESTDIR/j1-$m" valid)" ok
  check_eq "[$m] ... each step starts and ends once, with stage, instruction and duration" "$(jc "$TESTDIR/j1-$m" pairs)" ok
  check_eq "[$m] ... nothing cached on the first build" "$(jc "$TESTDIR/j1-$m" cached)" "0:0:0:0"
  d1=$(head -1 "$TESTDIR/o1-$m")
  check_eq "[$m] ... the step layers are the manifest's (digest and size)" "$(jc "$TESTDIR/j1-$m" layers "$(store_oci "$m")" "$d1")" "ok 2"
  check_eq "[$m] ... a RUN's output is an output event of its step" "$(jc "$TESTDIR/j1-$m" output RUN-OUT-1)" 2
  check_eq "[$m] ... the last event is done, with the image digest" "$(jc "$TESTDIR/j1-$m" done)" "$d1"
  ob "$m" build --progress=json -t p "$ctx" >"$TESTDIR/o2-$m" 2>"$TESTDIR/j2-$m"
  check_eq "[$m] rebuild: the steps after FROM are cache hits" "$(jc "$TESTDIR/j2-$m" cached)" "0:1:1:1"
  check_eq "[$m] ... with the same layers" "$(jc "$TESTDIR/j2-$m" layers "$(store_oci "$m")" "$d1")" "ok 2"
  check_eq "[$m] ... and no RUN output" "$(jc "$TESTDIR/j2-$m" output RUN-OUT)" ""
  ob "$m" build --progress=json -f "$ctx/Dockerfile.fail" "$ctx" >/dev/null 2>"$TESTDIR/j3-$m"
  check_eq "[$m] a failing RUN: exit 5" "$?" 5
  check_eq "[$m] ... standard error is still only JSON" "$(jc "$TESTDIR/j3-$m" valid)" ok
  check_eq "[$m] ... the last event is the error with its exit code; step 2 failed" "$(jc "$TESTDIR/j3-$m" error)" "error 5 [2]"
  check_eq "[$m] ... the step's stderr is in its output events" "$(jc "$TESTDIR/j3-$m" output FAIL-ERR)" 2
done

m=$(echo $MODES | awk '{print $1}')
check_eq "[$m] json: the failing build's steps carry their stage index and name" "$(jc "$TESTDIR/j3-$m" stages)" "0:base 0:base"
ob "$m" build --progress=json --build-arg UNUSED=1 -t p "$ctx" >/dev/null 2>"$TESTDIR/jw"
check_eq "[$m] json: a warning is an event" "$(jc "$TESTDIR/jw" warning)" 'build argument `UNUSED` was not consumed by any ARG'
# plain: today's lines, each step's end with its duration
ob "$m" build --progress=plain --no-cache -t p "$ctx" >"$TESTDIR/plainout" 2>"$TESTDIR/plain"
check_eq "[$m] plain: every step ends with its duration" "$(grep -cE '^--> DONE [0-9]+\.[0-9]{2}s$' "$TESTDIR/plain")" 4
# (as before --progress: a RUN's standard output is obuild's)
check_eq "[$m] ... after the STEP lines; the RUN's own output not captured" \
  "$(grep -c '^STEP [1-4]/4: ' "$TESTDIR/plain"):$(grep -cx 'RUN-OUT-1' "$TESTDIR/plainout")" "4:1"
ob "$m" build --progress=plain -t p "$ctx" >/dev/null 2>"$TESTDIR/plain2"
check_eq "[$m] ... a rebuild's hits: --> CACHED with a duration" "$(grep -cE '^--> CACHED [0-9.]+s$' "$TESTDIR/plain2")" 3
# auto without a terminal is plain; OBUILD_PROGRESS and BUILDKIT_PROGRESS choose too
ob "$m" build --progress=auto -t p "$ctx" >/dev/null 2>"$TESTDIR/auto"
check_eq "[$m] auto with standard error not a terminal: plain" \
  "$(grep -c -e '^STEP [1-4]/4: ' -e '^--> CACHED' "$TESTDIR/auto"):$(grep -c "$(printf '\033')" "$TESTDIR/auto")" "7:0"
ob "$m" build -t p "$ctx" >/dev/null 2>"$TESTDIR/default"
check_eq "[$m] ... auto is the default" "$(grep -c -e '^STEP [1-4]/4: ' -e '^--> CACHED' "$TESTDIR/default")" 7
as "$m" env OBUILD_ROOT="$(store "$m")" OBUILD_PROGRESS=json "$OB" build -t p "$ctx" >/dev/null 2>"$TESTDIR/envj"
check_eq "[$m] OBUILD_PROGRESS=json" "$(jc "$TESTDIR/envj" valid)" ok
as "$m" env OBUILD_ROOT="$(store "$m")" OBUILD_PROGRESS=json "$OB" build --progress=plain -t p "$ctx" >/dev/null 2>"$TESTDIR/envp"
check "[$m] ... --progress wins over it" grep -q '^STEP 1/4' "$TESTDIR/envp"
as "$m" env OBUILD_ROOT="$(store "$m")" BUILDKIT_PROGRESS=quiet "$OB" build -t p "$ctx" >"$TESTDIR/bko" 2>"$TESTDIR/bke"
check_eq "[$m] BUILDKIT_PROGRESS=quiet is taken" "$(wc -c <"$TESTDIR/bke"):$(wc -l <"$TESTDIR/bko")" "0:1"
check_fail 2 'progress `fancy`: expected auto, plain, tty, quiet or json' "[$m] an unknown --progress: exit 2" \
  ob "$m" build --progress=fancy "$ctx"
check_fail 2 'OBUILD_PROGRESS `loud`' "[$m] an unknown OBUILD_PROGRESS: exit 2 naming it" \
  as "$m" env OBUILD_ROOT="$(store "$m")" OBUILD_PROGRESS=loud "$OB" build "$ctx"
# quiet (and -q, its alias): nothing on success but the digest on stdout
for q in --progress=quiet -q; do
  ob "$m" build $q --no-cache -t p "$ctx" >"$TESTDIR/qo" 2>"$TESTDIR/qe"
  check_eq "[$m] $q: a successful build prints nothing on stderr, only the digest on stdout" \
    "$(wc -c <"$TESTDIR/qe"):$(wc -l <"$TESTDIR/qo"):$(grep -c '^sha256:' "$TESTDIR/qo")" "0:1:1"
done
check_fail 5 'Dockerfile.fail:2: .*status 3' "[$m] quiet: a failing RUN: exit 5, the error line" \
  ob "$m" build --progress=quiet -f "$ctx/Dockerfile.fail" "$ctx"
check_eq "[$m] ... after the failed step's whole output" \
  "$(grep -c '^ FAIL-OUT$' "$TESTDIR/.err"):$(grep -c '^ FAIL-ERR$' "$TESTDIR/.err"):$(grep -c '^ > \[base 2/2\] RUN' "$TESTDIR/.err")" "1:1:1"

# tty: a real terminal.  The RUN's lines live under it while it runs; the
# finished build: one line per step (CACHED on a rebuild), the RUN's last
# lines kept; a failed step's whole output.
case " $MODES " in *" root "*) have_root=1 ;; *) have_root=0 ;; esac
if [ $have_root = 0 ]; then
  skip "not root: no tty test"
elif command -v tmux >/dev/null; then
  printf 'FROM busybox\nRUN for i in 1 2 3 4 5 6 7; do echo TTY-LINE-$i; done; sleep 2; echo TTY-LAST\nCOPY a /a\n' >"$ctx/Dockerfile.tty"
  chmod a+r "$ctx/Dockerfile.tty"
  # each run in a fresh 100x40 terminal of its own tmux server
  runs=0
  TMUX_TMPDIR=$TESTDIR; export TMUX_TMPDIR   # the servers' sockets go with the test
  tx() { tmux -L "obuild-t6300-$$-$runs" "$@"; }
  pane() { tx capture-pane -p -J -S -200 -t t6300 2>/dev/null | sed '/^$/d'; }
  # the build, then its exit code
  tty_run() {
    tx kill-server 2>/dev/null
    runs=$((runs + 1))
    tx new-session -d -s t6300 -x 100 -y 40 \
      "env TERM=${2:-xterm} OBUILD_ROOT='$(store root)' '$OB' build $1 '$ctx'; echo RC=\$?; sleep 60"
  }
  tty_wait() { _i=0; until pane | grep -q '^RC=' || [ $_i -ge 300 ]; do sleep 0.1; _i=$((_i + 1)); done; }
  tty_run "-f $ctx/Dockerfile.tty -t tty --no-cache"
  _i=0; until pane | grep -q 'TTY-LINE-7' || [ $_i -ge 150 ]; do sleep 0.1; _i=$((_i + 1)); done
  pane >"$TESTDIR/tty-live"
  check "tty: while the RUN runs: its live line with the elapsed time" \
    grep -Eq '^=> \[2/3\] RUN for i .* [0-9]+\.[0-9]s$' "$TESTDIR/tty-live"
  check "... its last lines under it" grep -q '^ => # TTY-LINE-7$' "$TESTDIR/tty-live"
  check "... and a header with the build's time" grep -Eq '^\[\+\] Building [0-9.]+s \(1/3\)$' "$TESTDIR/tty-live"
  tty_wait
  pane >"$TESTDIR/tty-done"
  check_eq "tty: the finished build: one line per step with its time" \
    "$(grep -cE '^=> \[[1-3]/3\] (FROM|RUN|COPY) .* [0-9]+\.[0-9]s$' "$TESTDIR/tty-done")" 3
  check "... the RUN's output still there under its line" grep -q '^   | TTY-LAST$' "$TESTDIR/tty-done"
  check "... the live view gone" sh -c "! grep -q -e '^\[+\]' -e '=> #' '$TESTDIR/tty-done'"
  check_eq "... exit 0, the digest on stdout" "$(grep -c -e '^RC=0$' -e '^sha256:' "$TESTDIR/tty-done")" 2
  tty_run "-f $ctx/Dockerfile.tty -t tty"
  tty_wait
  pane >"$TESTDIR/tty-cached"
  check_eq "tty: a rebuild: the steps after FROM marked CACHED" \
    "$(grep -cE '^=> CACHED \[[23]/3\] ' "$TESTDIR/tty-cached")" 2
  tty_run "-f $ctx/Dockerfile.fail"
  tty_wait
  pane >"$TESTDIR/tty-fail"
  check "tty: a failing RUN: its line marked ERROR" grep -Eq '^=> ERROR \[base 2/2\] RUN echo FAIL-OUT' "$TESTDIR/tty-fail"
  check "... its whole output shown" sh -c "grep -qx ' FAIL-OUT' '$TESTDIR/tty-fail' && grep -qx ' FAIL-ERR' '$TESTDIR/tty-fail'"
  check "... then the error line and exit 5" sh -c "grep -q '^obuild: .*Dockerfile.fail:2: .*status 3' '$TESTDIR/tty-fail' && grep -qx 'RC=5' '$TESTDIR/tty-fail'"
  tty_run "-f $ctx/Dockerfile.tty -t tty" dumb
  tty_wait
  pane >"$TESTDIR/tty-dumb"
  check "a terminal with TERM=dumb: auto is plain" grep -q '^STEP 1/3: FROM busybox$' "$TESTDIR/tty-dumb"
  tx kill-server 2>/dev/null
else
  skip "tmux not installed: no tty test"
fi

# pull and push: transfer events per blob
if [ $have_root = 0 ]; then
  skip "not root: no pull/push progress test"
elif command -v docker-registry >/dev/null; then
  start_registry
  m=root
  ob "$m" push --progress=json p:latest "$R/prog/p:1" >"$TESTDIR/po" 2>"$TESTDIR/pj"
  check_eq "push --progress=json exits 0" "$?" 0
  check_eq "... every line a JSON event" "$(jc "$TESTDIR/pj" valid)" ok
  pd=$(head -1 "$TESTDIR/po")
  check_eq "... a transfer event per blob, done with every byte" "$(jc "$TESTDIR/pj" xfer push | sed 's/ progress//')" "done start"
  check_eq "... for the config and each layer" "$(jc "$TESTDIR/pj" xferdigests)" "$(manifest_blobs "$(store_oci "$m")" "$pd")"
  check_eq "... then done with the pushed digest" "$(jc "$TESTDIR/pj" done)" "$pd"
  ob "$m" push --progress=json p:latest "$R/prog/p:1" >/dev/null 2>"$TESTDIR/pj2"
  check_eq "push again: the blobs are there" "$(jc "$TESTDIR/pj2" xfer push)" "exists"
  rm -rf "$TESTDIR/pullstore"
  "$OB" --root "$TESTDIR/pullstore" pull --progress=json "$R/prog/p:1" >"$TESTDIR/plo" 2>"$TESTDIR/plj"
  check_eq "pull --progress=json exits 0" "$?" 0
  check_eq "... every line a JSON event" "$(jc "$TESTDIR/plj" valid)" ok
  check_eq "... a transfer event per blob, start and done" "$(jc "$TESTDIR/plj" xfer pull | sed 's/ progress//')" "done start"
  check_eq "... for the config and each layer" "$(jc "$TESTDIR/plj" xferdigests)" "$(manifest_blobs "$(store_oci "$m")" "$pd")"
  check_eq "... then done with the digest" "$(jc "$TESTDIR/plj" done)" "$pd"
  rm -rf "$TESTDIR/pullstore"
  "$OB" --root "$TESTDIR/pullstore" pull --progress=plain "$R/prog/p:1" >/dev/null 2>"$TESTDIR/plp"
  check "pull --progress=plain: today's lines" grep -q '^Copied blob sha256:' "$TESTDIR/plp"
  rm -rf "$TESTDIR/pullstore"
  "$OB" --root "$TESTDIR/pullstore" pull --progress=tty "$R/prog/p:1" >/dev/null 2>"$TESTDIR/plt"
  check_eq "pull --progress=tty: a line per blob pulled, with its size and time" \
    "$(grep -cE '^=> pulled sha256:[0-9a-f]{12} [0-9.]+ [kMG]?B +[0-9]+\.[0-9]s$' "$TESTDIR/plt")" \
    "$(manifest_blobs "$(store_oci "$m")" "$pd" | wc -w)"
  "$OB" --root "$TESTDIR/pullstore" pull -q "$R/prog/p:1" >"$TESTDIR/pqo" 2>"$TESTDIR/pqe"
  check_eq "pull -q: nothing on stderr, the digest on stdout" "$(wc -c <"$TESTDIR/pqe"):$(cat "$TESTDIR/pqo")" "0:$pd"
  check_fail 8 "127.0.0.1" "pull from a missing repository: exit 8" "$OB" --root "$TESTDIR/pullstore" pull "$R/prog/none:1"
  "$OB" --root "$TESTDIR/pullstore" pull --progress=json "$R/prog/none:1" >/dev/null 2>"$TESTDIR/plf"
  check_eq "... with json: the error event carries exit code 8" \
    "$(python3 -c 'import json,sys; e=[json.loads(l) for l in open(sys.argv[1])][-1]; print(e["event"], e["exit_code"])' "$TESTDIR/plf")" "error 8"
else
  skip "docker-registry not installed: no pull/push progress test"
fi
done_testing
