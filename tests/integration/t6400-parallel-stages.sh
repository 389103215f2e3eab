#!/bin/sh
# --jobs: stages that do not need each other are built side by side.
# Proof of concurrency (two stages meet through a shared cache mount, which
# only works when both run at once; with --jobs 1 the first one waits in
# vain); the same image as --jobs 1 (digest with SOURCE_DATE_EPOCH); every
# step runs once even with --no-cache; plain lines carry their stage; an
# unused stage is never built; a stage's upper directory becomes its
# unpacked layer, in the parent too; the first failure stops the other
# stages at once with its exit code and message, leaving no process, mount,
# scratch directory or blob behind; --jobs values.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
# meet: a and b each leave a mark and wait for the other's
cat >"$ctx/Dockerfile.meet" <<'D'
ARG LIMIT=150
ARG TOKEN
FROM busybox AS a
ARG LIMIT
ARG TOKEN
RUN --mount=type=cache,id=meet,target=/m,sharing=shared touch /m/a-$TOKEN && i=0 && \
    while [ ! -e /m/b-$TOKEN ]; do i=$((i+1)); [ $i -gt $LIMIT ] && exit 9; sleep 0.1; done && echo met > /a
FROM busybox AS b
ARG LIMIT
ARG TOKEN
RUN --mount=type=cache,id=meet,target=/m,sharing=shared touch /m/b-$TOKEN && i=0 && \
    while [ ! -e /m/a-$TOKEN ]; do i=$((i+1)); [ $i -gt $LIMIT ] && exit 9; sleep 0.1; done && echo met > /b
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
D
# graph: a and b independent, c on a (FROM) and b (COPY --from), the final
# stage on c; u is needed by nothing and would fail
cat >"$ctx/Dockerfile.graph" <<'D'
FROM busybox AS a
RUN echo out-a && echo a > /a
FROM busybox AS u
RUN echo out-u && exit 7
FROM busybox AS b
RUN echo out-b && echo b > /b
FROM a AS c
COPY --from=b /b /b
RUN echo out-c && cat /a /b > /c
FROM busybox
COPY --from=c /c /c
RUN echo out-final
D
cat >"$ctx/Dockerfile.fail" <<'D'
FROM busybox AS a
RUN sleep 1 && echo failing && exit 3
FROM busybox AS b
RUN echo started-b && sleep 30 && echo b > /b
FROM busybox
COPY --from=a /a /a
COPY --from=b /b /b
D
# hostile: 60 stages, each FROM the one before and COPY --from the one
# before that (paths between two stages grow like Fibonacci numbers), and one
# stage beside them all; a walk per question over those paths never ends
{
  printf 'FROM busybox AS s0\nRUN echo 0 > /f0\nFROM busybox AS s1\nRUN echo 1 > /f1\n'
  for i in $(seq 2 59); do
    printf 'FROM s%d AS s%d\nCOPY --from=s%d /f%d /f%d\n' $((i - 1)) "$i" $((i - 2)) $((i - 2)) "$i"
  done
  printf 'FROM busybox AS x\nRUN echo x > /x\nFROM busybox\nCOPY --from=s59 /f59 /f59\nCOPY --from=x /x /x\n'
} >"$ctx/Dockerfile.fib"
# COPY --from sees a stage as RUN does: deletions and replaced directories
# of its layers applied
cat >"$ctx/Dockerfile.view" <<'D'
FROM busybox AS s
RUN rm /etc/group && rm -rf /var/lib && mkdir -p /var/lib/new && echo n > /var/lib/new/f
RUN rm -rf /usr/lib && mkdir /usr/lib && echo x > /usr/lib/only
FROM busybox
COPY --from=s /etc /e
COPY --from=s /var /v
COPY --from=s /usr/lib /ul
D
# ino: each stage's RUN notes the inode of the file it wrote; the store's
# unpacked layer must be the step's own upper directory (the same inode),
# not the layer unpacked again from its blob (COPY --from b mounts b)
cat >"$ctx/Dockerfile.ino" <<'D'
FROM busybox AS a
ARG TOKEN
RUN echo $TOKEN > /a && stat -c %i /a > /a.ino
FROM busybox AS b
ARG TOKEN
RUN echo $TOKEN > /b && stat -c %i /b > /b.ino
FROM a
COPY --from=b /b /b
D
chmod -R a+rX "$ctx"
export SOURCE_DATE_EPOCH=1700000000

# same_inode MODE NAME: the store's unpacked layer holding NAME.ino has
# NAME with the inode the step saw
same_inode() {
  for _f in "$(store "$1")"/layers/*/*/"$2".ino; do
    [ -f "$_f" ] && [ "$(stat -c %i "${_f%.ino}")" = "$(cat "$_f")" ] && return 0
  done
  return 1
}

# leftovers MODE: what a build of MODE left that it should not have
leftovers() {
  _st=$(store "$1")
  {
    grep -F " $_st" /proc/self/mountinfo
    ls -A "$_st/tmp" 2>/dev/null | grep '^\.obuild-'
    ps -eo args | grep -x 'sleep 30'
  } 2>/dev/null | wc -l
}

for m in $MODES; do
  import_busybox "$m"
  ob "$m" build -q --jobs 2 --build-arg TOKEN=1 -t meet -f "$ctx/Dockerfile.meet" "$ctx" >"$TESTDIR/meet.out" 2>&1
  check_eq "[$m] --jobs 2: two stages that wait for each other both finish (exit 0)" "$?" 0
  check_fail 5 "Dockerfile.meet:6: RUN .*status 9" "[$m] --jobs 1: the same stages one after another cannot meet (exit 5)" \
    ob "$m" build -q --jobs 1 --build-arg TOKEN=2 --build-arg LIMIT=20 -f "$ctx/Dockerfile.meet" "$ctx"
  umoci_unpack "$(store_oci "$m")" meet:latest "$TESTDIR/u-meet-$m"
  check_eq "[$m] ... the image holds both stages' files" "$(cat "$TESTDIR/u-meet-$m/rootfs/a" "$TESTDIR/u-meet-$m/rootfs/b" 2>&1 | tr '\n' ' ')" "met met "

  ob "$m" build -q --jobs 2 --build-arg TOKEN="ino-$m" -t ino -f "$ctx/Dockerfile.ino" "$ctx" >/dev/null 2>"$TESTDIR/ino.err"
  check_eq "[$m] --jobs 2, COPY --from a stage a child built: exit 0" "$?" 0
  check "[$m] ... that stage's unpacked layer is the child's own directory, not unpacked again" same_inode "$m" b
  check "[$m] ... and so is the other stage's" same_inode "$m" a
  check_eq "[$m] ... no mount or scratch directory left" "$(leftovers "$m")" 0

  d1=$(ob "$m" build -q --jobs 1 --no-cache -t g1 -f "$ctx/Dockerfile.graph" "$ctx" 2>"$TESTDIR/g1.err")
  ob "$m" build --progress=plain --jobs 2 --no-cache -t g2 -f "$ctx/Dockerfile.graph" "$ctx" >"$TESTDIR/g2.out" 2>"$TESTDIR/g2.err"
  check_eq "[$m] --jobs 2 --no-cache: exit 0" "$?" 0
  d2=$(tail -n 2 "$TESTDIR/g2.out" | head -n 1)
  check_eq "[$m] ... the same image as --jobs 1 (manifest digest)" "$d2" "$d1"
  check "[$m] ... oci-image-tool validates it" oci_validate "$(store_oci "$m")" g2:latest
  umoci_unpack "$(store_oci "$m")" g2:latest "$TESTDIR/u-g2-$m"
  check_eq "[$m] ... /c holds what a and b wrote" "$(cat "$TESTDIR/u-g2-$m/rootfs/c" 2>&1 | tr '\n' ' ')" "a b "
  check_eq "[$m] ... each RUN ran once (a, b, c, final), the unused stage u never" \
    "$(grep -ho '^\(\[[a-z#0-9]*\] \)\{0,1\}out-[a-z]*$' "$TESTDIR/g2.out" "$TESTDIR/g2.err" | sed 's/^\[[a-z#0-9]*\] //' | sort | tr '\n' ' ')" \
    "out-a out-b out-c out-final "
  check "[$m] ... plain lines of stages built side by side carry the stage: [a] and [b] steps" \
    sh -c "grep -q '^\[a\] STEP 2/.*RUN echo out-a' '$TESTDIR/g2.err' && grep -q '^\[b\] STEP .*RUN echo out-b' '$TESTDIR/g2.err' && grep -q '^\[a\] out-a\$' '$TESTDIR/g2.err'"
  check_eq "[$m] ... no line of the unused stage" "$(grep -c '^\[u\]' "$TESTDIR/g2.err")" 0
  ob "$m" build --progress=plain --jobs 2 -t g3 -f "$ctx/Dockerfile.graph" "$ctx" >"$TESTDIR/g3.out" 2>"$TESTDIR/g3.err"
  check_eq "[$m] a rebuild with --jobs 2: exit 0, no RUN ran again" \
    "$?:$(cat "$TESTDIR/g3.out" "$TESTDIR/g3.err" | grep -c '^\(\[[a-z#0-9]*\] \)\{0,1\}out-[a-z]*$')" "0:0"
  check "[$m] ... its steps CACHED (a's RUN among them)" \
    sh -c "[ \$(grep -c -- '--> CACHED' '$TESTDIR/g3.err') -ge 6 ] && grep -q '^\[a\] --> CACHED' '$TESTDIR/g3.err'"

  nb=$(ls "$(store_oci "$m")/blobs/sha256" | wc -l)
  cp "$(store_oci "$m")/index.json" "$TESTDIR/index.before"
  t0=$(date +%s)
  check_fail 5 "Dockerfile.fail:2: RUN sleep 1 && echo failing && exit 3: the command exited with status 3" \
    "[$m] a stage fails while another runs: exit 5, the failing step named" \
    ob "$m" build --progress=plain --jobs 2 -t f -f "$ctx/Dockerfile.fail" "$ctx"
  t1=$(date +%s)
  check "[$m] ... the other stage (sleep 30) was stopped: the build ended in $((t1 - t0)) s" test $((t1 - t0)) -lt 20
  check_eq "[$m] ... no process, mount or scratch directory left" "$(leftovers "$m")" 0
  check_eq "[$m] ... no blob and no tag added to the store" \
    "$(ls "$(store_oci "$m")/blobs/sha256" | wc -l) $(cmp "$(store_oci "$m")/index.json" "$TESTDIR/index.before" && echo same)" "$nb same"
done

m=root
ob "$m" build -q --jobs 2 -t fib -f "$ctx/Dockerfile.fib" "$ctx" >"$TESTDIR/fib.out" 2>"$TESTDIR/fib.err" &
fibpid=$!
i=0; while kill -0 "$fibpid" 2>/dev/null && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$fibpid" 2>/dev/null; then kill "$fibpid"; fi
wait "$fibpid"
check_eq "[$m] 60 stages each needing the two before, one beside them: built within 120 s (exit 0)" "$?" 0
for m in $MODES; do
  ob "$m" build -q --jobs 2 -t view -f "$ctx/Dockerfile.view" "$ctx" >/dev/null 2>"$TESTDIR/view.err"
  check_eq "[$m] COPY --from a stage with deletions and a replaced directory: exit 0" "$?" 0
  umoci_unpack "$(store_oci "$m")" view:latest "$TESTDIR/u-view-$m"
  v=$TESTDIR/u-view-$m/rootfs
  check_eq "[$m] ... the deleted file is not there, the replaced directories hold only the new entries" \
    "$(ls "$v/e" | tr '\n' ' ')| $(ls "$v/v/lib" | tr '\n' ' ')| $(ls "$v/ul" | tr '\n' ' ')" "hostname passwd | new | only "
  check_eq "[$m] ... no mount or scratch directory left" "$(leftovers "$m")" 0
done

check_fail 2 "--jobs .0.: expected a number from 1 to 64" "--jobs 0: exit 2" ob root build --jobs 0 "$ctx"
check_fail 2 "--jobs .x.: expected a number from 1 to 64" "--jobs x: exit 2" ob root build --jobs x "$ctx"
done_testing
