#!/bin/sh
# The build cache: a rebuild runs nothing and gives the same digest; keys
# are content (mtime changes and a fresh copy of the context still hit);
# a change rebuilds exactly the steps after it; --no-cache, build args; a
# kill -9 mid-build leaves no usable broken entry; --cache-to/--cache-from
# through an OCI layout and through a registry between two users' stores.
. "$(dirname "$0")/lib.sh"

mkctx() {
  mkdir -p "$1/src"
  echo v1 >"$1/src/app.txt"
  echo lib >"$1/src/lib.txt"
  cat >"$1/Dockerfile" <<'DF'
FROM busybox
ARG FLAVOR=plain
RUN echo "ONE-$((0+1))-RAN" >&2 && echo one > /one
COPY src/ /app/
RUN echo "TWO-$((0+1))-RAN" >&2 && echo "$FLAVOR" > /two && cat /app/app.txt > /copy
WORKDIR /srv
CMD ["cat", "/two"]
DF
  chmod -R a+rX "$1"
}
mkctx "$TESTDIR/ctx"
export SOURCE_DATE_EPOCH=1700000000
cached() { grep -c -- '--> CACHED' "$1"; }
for m in $MODES; do
  import_busybox "$m"
  ob "$m" build -t c "$TESTDIR/ctx" >"$TESTDIR/o1" 2>"$TESTDIR/e1"
  d1=$(head -1 "$TESTDIR/o1")
  check_eq "[$m] first build runs its steps" "$(grep -c -- '-1-RAN' "$TESTDIR/e1")" 2
  ob "$m" build -t c "$TESTDIR/ctx" >"$TESTDIR/o2" 2>"$TESTDIR/e2"
  check_eq "[$m] rebuild: every layer step CACHED" "$(cached "$TESTDIR/e2")" 4
  check_eq "[$m] rebuild: no RUN executed" "$(grep -c -- '-1-RAN' "$TESTDIR/e2")" 0
  check_eq "[$m] rebuild: same manifest digest" "$(head -1 "$TESTDIR/o2")" "$d1"
  ob "$m" build -t c --no-cache "$TESTDIR/ctx" >"$TESTDIR/o7" 2>"$TESTDIR/e7"
  check_eq "[$m] --no-cache runs everything" "$(cached "$TESTDIR/e7"):$(grep -c -- '-1-RAN' "$TESTDIR/e7")" "0:2"
  check_eq "[$m] ... and gives the same digest" "$(head -1 "$TESTDIR/o7")" "$d1"
  touch -d '2001-01-01' "$TESTDIR/ctx/src/app.txt"
  ob "$m" build -t c "$TESTDIR/ctx" >"$TESTDIR/o3" 2>"$TESTDIR/e3"
  check_eq "[$m] an mtime change still hits (keys are content)" "$(cached "$TESTDIR/e3")" 4
  rm -rf "$TESTDIR/clone"; cp -r "$TESTDIR/ctx" "$TESTDIR/clone"; chmod -R a+rX "$TESTDIR/clone"
  ob "$m" build -t c "$TESTDIR/clone" >"$TESTDIR/o4" 2>"$TESTDIR/e4"
  check_eq "[$m] a fresh copy of the context hits" "$(cached "$TESTDIR/e4")" 4
  check_eq "[$m] ... with the same digest" "$(head -1 "$TESTDIR/o4")" "$d1"
  echo v2 >"$TESTDIR/clone/src/app.txt"
  ob "$m" build -t c2 "$TESTDIR/clone" >"$TESTDIR/o5" 2>"$TESTDIR/e5"
  check_eq "[$m] a changed source: steps before it hit, the COPY and after rerun" \
    "$(cached "$TESTDIR/e5"):$(grep -c 'ONE-1-RAN' "$TESTDIR/e5"):$(grep -c 'TWO-1-RAN' "$TESTDIR/e5")" "1:0:1"
  ob "$m" build -t c3 --build-arg FLAVOR=spicy "$TESTDIR/ctx" >"$TESTDIR/o6" 2>"$TESTDIR/e6"
  # as BuildKit: every RUN after the ARG sees it in its environment
  check_eq "[$m] a changed build arg reruns the RUN steps in its scope" "$(grep -c 'TWO-1-RAN' "$TESTDIR/e6"):$(grep -c 'ONE-1-RAN' "$TESTDIR/e6")" "1:1"
done

# --no-cache-filter runs one stage again, --cache-ttl ignores old entries
m=$(echo $MODES | awk '{print $NF}')
mkdir -p "$TESTDIR/fctx"
cat >"$TESTDIR/fctx/Dockerfile" <<'DF'
FROM busybox AS first
RUN echo "FIRST-$((0+1))-RAN" >&2 && echo a > /a
FROM busybox AS second
COPY --from=first /a /a
RUN echo "SECOND-$((0+1))-RAN" >&2 && echo b > /b
DF
chmod -R a+rX "$TESTDIR/fctx"
ob "$m" build -q -t f "$TESTDIR/fctx" >/dev/null 2>&1
ob "$m" build -q --progress=plain -t f --no-cache-filter second "$TESTDIR/fctx" >/dev/null 2>"$TESTDIR/ef"
check_eq "[$m] --no-cache-filter=second reruns that stage only" \
  "$(grep -c 'FIRST-1-RAN' "$TESTDIR/ef"):$(grep -c 'SECOND-1-RAN' "$TESTDIR/ef")" "0:1"
# entries carry the time they were written: make them two hours old
for f in "$(store "$m")"/cache/entries/*; do
  python3 -c "import json,sys,time; p=sys.argv[1]; j=json.load(open(p)); j['stamp']=int(time.time())-7200; json.dump(j,open(p,'w'))" "$f"
done
ob "$m" build -q --progress=plain -t f --cache-ttl 1h "$TESTDIR/fctx" >/dev/null 2>"$TESTDIR/et"
check_eq "[$m] --cache-ttl 1h: two-hour-old entries are not used" "$(grep -c -- '-1-RAN' "$TESTDIR/et")" 2
ob "$m" build -q --progress=plain -t f --cache-ttl 24h "$TESTDIR/fctx" >/dev/null 2>"$TESTDIR/et2"
check_eq "[$m] --cache-ttl 24h: fresh entries are used" "$(grep -c -- '-1-RAN' "$TESTDIR/et2")" 0
check_fail 2 "cache-ttl" "[$m] a bad --cache-ttl: exit 2" ob "$m" build --cache-ttl soon "$TESTDIR/fctx"

# without SOURCE_DATE_EPOCH: a build made only of cache hits keeps the time
# of its cached steps (the same image, as docker build gives); a build with
# a step that ran carries its own time
unset SOURCE_DATE_EPOCH
mkdir -p "$TESTDIR/tctx"
printf 'FROM busybox\nRUN echo "T-$((0+1))-RAN" >&2 && echo t > /t\nLABEL after=run\nCOPY Dockerfile /df\n' >"$TESTDIR/tctx/Dockerfile"
chmod -R a+rX "$TESTDIR/tctx"
t1=$(ob "$m" build -q -t t "$TESTDIR/tctx" 2>/dev/null)
sleep 1.1
t2=$(ob "$m" build -q --progress=plain -t t "$TESTDIR/tctx" 2>"$TESTDIR/et3")
check_eq "[$m] no SOURCE_DATE_EPOCH: a fully cached rebuild a second later gives the same digest" \
  "$(grep -c -- '-1-RAN' "$TESTDIR/et3"):$t2" "0:$t1"
c1=$(skopeo_config "$(store_oci "$m")" t:latest | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["created"], len({h["created"] for h in j["history"][1:]}))')
check_eq "[$m] ... config and the build's history share one time" "${c1#* }" 1
sleep 1.1
t3=$(ob "$m" build -q --no-cache -t t "$TESTDIR/tctx" 2>/dev/null)
c3=$(skopeo_config "$(store_oci "$m")" t:latest | python3 -c 'import json,sys; print(json.load(sys.stdin)["created"])')
check "[$m] ... a build that runs its steps has a later time" test "$c3" \> "${c1% *}"
check "[$m] ... and another digest" test "$t3" != "$t1"
export SOURCE_DATE_EPOCH=1700000000
# layers made with one SOURCE_DATE_EPOCH (file times clamped to it) do not
# serve a build with another
ob "$m" build -q -t t "$TESTDIR/tctx" >/dev/null 2>&1
SOURCE_DATE_EPOCH=1600000000 ob "$m" build -q --progress=plain -t t "$TESTDIR/tctx" >/dev/null 2>"$TESTDIR/et4"
check_eq "[$m] another SOURCE_DATE_EPOCH misses the cache" "$(grep -c -- '-1-RAN' "$TESTDIR/et4")" 1
SOURCE_DATE_EPOCH=1700000000 ob "$m" build -q --progress=plain -t t "$TESTDIR/tctx" >/dev/null 2>"$TESTDIR/et5"
check_eq "[$m] ... and the first one still hits" "$(grep -c -- '-1-RAN' "$TESTDIR/et5")" 0

# kill -9 in the middle of a build: no entry for the unfinished step
m=$(echo $MODES | awk '{print $NF}')
mkdir -p "$TESTDIR/kctx"
printf 'FROM busybox\nRUN echo "started-$((0+1))-slow" >&2 && sleep 5 && echo done > /slow\n' >"$TESTDIR/kctx/Dockerfile"
chmod -R a+rX "$TESTDIR/kctx"
ob "$m" build -t k "$TESTDIR/kctx" >/dev/null 2>"$TESTDIR/ek" &
i=0; until grep -q started-1-slow "$TESTDIR/ek" 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
for p in $(pgrep -f "$OB build -t k"); do kill -9 "$p" 2>/dev/null; done
wait
ob "$m" build -t k "$TESTDIR/kctx" >/dev/null 2>"$TESTDIR/ek2"
check_eq "[$m] after kill -9 the step is not taken from the cache (it runs again)" "$(grep -c started-1-slow "$TESTDIR/ek2")" 1
check "[$m] ... and the result is valid" oci_validate "$(store_oci "$m")" k:latest

# --cache-to / --cache-from through an OCI layout, between two stores
m1=$(echo $MODES | awk '{print $1}')
cdir=$(userdir cache-layout "$m1")
ob "$m1" build -t share --cache-to "$cdir" "$TESTDIR/ctx" >"$TESTDIR/s1" 2>"$TESTDIR/s1e"
check "cache exported to an OCI layout" test -f "$cdir/index.json"
other=$TESTDIR/store-other; mkdir -p "$other"; [ "$m1" != root ] && chown "$T_USER" "$other"
as "$m1" env OBUILD_ROOT="$other" "$OB" import -q "$(busybox_tar)" busybox:latest >/dev/null
as "$m1" env OBUILD_ROOT="$other" "$OB" build -t share --cache-from "$cdir" "$TESTDIR/ctx" >"$TESTDIR/s2" 2>"$TESTDIR/s2e"
check_eq "another store with --cache-from the layout: every step CACHED" "$(cached "$TESTDIR/s2e"):$(grep -c -- '-1-RAN' "$TESTDIR/s2e")" "4:0"
check_eq "... same digest" "$(head -1 "$TESTDIR/s2")" "$(head -1 "$TESTDIR/s1")"

# two CI runners sharing nothing but a registry (and no SOURCE_DATE_EPOCH:
# the fully cached build keeps runner 1's time)
unset SOURCE_DATE_EPOCH
if command -v docker-registry >/dev/null && [ "$(id -u)" -eq 0 ]; then
  start_registry
  r1=$TESTDIR/runner1; r2=$TESTDIR/runner2; mkdir -p "$r1" "$r2"; chown "$T_USER" "$r2"
  env OBUILD_ROOT="$r1" "$OB" import -q "$(busybox_tar)" busybox:latest >/dev/null
  env OBUILD_ROOT="$r1" "$OB" push -q busybox:latest "$R/base/busybox:1" >/dev/null
  printf 'FROM %s/base/busybox:1\nRUN echo "REMOTE-$((0+1))-RAN" >&2 && echo x > /x\nCOPY src/ /app/\n' "$R" >"$TESTDIR/ctx/Dockerfile.remote"
  chmod a+r "$TESTDIR/ctx/Dockerfile.remote"
  env OBUILD_ROOT="$r1" "$OB" build -t svc --cache-to "$R/cache/svc:1" -f "$TESTDIR/ctx/Dockerfile.remote" "$TESTDIR/ctx" >"$TESTDIR/r1" 2>"$TESTDIR/r1e"
  check "runner 1 (root) builds and exports its cache to the registry" test -s "$TESTDIR/r1"
  as subuid env OBUILD_ROOT="$r2" "$OB" build -t svc --cache-from "$R/cache/svc:1" -f "$TESTDIR/ctx/Dockerfile.remote" "$TESTDIR/ctx" >"$TESTDIR/r2" 2>"$TESTDIR/r2e"
  check_eq "runner 2 (another user, empty store) with --cache-from: every step CACHED, no RUN" \
    "$(cached "$TESTDIR/r2e"):$(grep -c REMOTE-1-RAN "$TESTDIR/r2e")" "2:0"
  check_eq "... and the same manifest digest" "$(head -1 "$TESTDIR/r2")" "$(head -1 "$TESTDIR/r1")"
else
  skip "registry cache sharing needs root and docker-registry"
fi
done_testing
