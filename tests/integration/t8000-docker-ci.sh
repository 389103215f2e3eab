#!/bin/sh
# obuild in a CI job container with Docker's defaults: a private dockerd
# (no --privileged, Docker's default seccomp profile and capabilities, which
# forbid unshare and mount), a job image holding obuild, builds as the
# container's root and as uid 1000.  Builds without RUN need no namespace:
# COPY --chown, multi-stage COPY --from, metadata, -o, --push all work, give
# the digest the same build gives outside, and Docker itself runs the result;
# a RUN step exits 7 with one line saying what is missing, unless the store
# (a CI cache volume) already holds its result.
. "$(dirname "$0")/lib.sh"

. "$(dirname "$0")/docker-lib.sh"
EPOCH=1700000000
start_registry
trap cleanup EXIT   # start_registry set its own: ours also stops the registry

# The job image: obuild, its libraries and busybox, nothing downloaded.
job_image

ctx=$TESTDIR/ctx
mkdir -p "$ctx/c1" "$ctx/c2" "$ctx/c4"
echo hello >"$ctx/c1/app.txt"
printf '#!/bin/sh\necho "run $GREETING"\n' >"$ctx/c1/run.sh"
cat >"$ctx/c1/Dockerfile" <<'D'
FROM busybox
COPY --chown=1234:5678 app.txt /app/
COPY --chmod=0755 run.sh /usr/local/bin/
ENV GREETING=hello
CMD ["/usr/local/bin/run.sh"]
LABEL ci=docker
D
echo f >"$ctx/c2/f"
cat >"$ctx/c2/Dockerfile" <<'D'
FROM busybox AS a
COPY f /f
FROM scratch
COPY --from=a /f /g
COPY --from=a /bin/busybox /bin/busybox
D
printf 'FROM busybox\nRUN true\n' >"$ctx/c4/Dockerfile"
chmod -R a+rX "$ctx"
chmod 644 "$ctx/c1/run.sh"
BB_TAR=$(busybox_tar)

# The same builds outside Docker, obuild as root: the reference digests.
import_busybox root
ref1=$(SOURCE_DATE_EPOCH=$EPOCH ob root build -q -t app:1 "$ctx/c1")
ref2=$(SOURCE_DATE_EPOCH=$EPOCH ob root build -q -t multi:1 "$ctx/c2")
ref4=$(SOURCE_DATE_EPOCH=$EPOCH ob root build -q -t run:1 "$ctx/c4")
refbb=$(ob root images | awk '$1 == "busybox:latest" { print $2 }')

# incont USER CMD...: CMD in a fresh job container with Docker's defaults as
# USER; the context at /workspace, USER's store at /store, -o dirs at /out.
incont() {
  _u=$1; shift
  dk run --rm --network host --user "$_u" \
    -v "$ctx:/workspace" -v "$st:/store" -v "$out:/out" -v "$BB_TAR:/busybox.tar:ro" \
    -e OBUILD_ROOT=/store -e SOURCE_DATE_EPOCH=$EPOCH \
    ${ASAN_OPTIONS:+-e ASAN_OPTIONS=$ASAN_OPTIONS} ${UBSAN_OPTIONS:+-e UBSAN_OPTIONS=$UBSAN_OPTIONS} \
    -w /workspace obuild-ci:test "$@"
}
snapshot() { (cd "$st" && find oci -printf '%p %s\n' | sort && sha256sum oci/index.json && ls tmp 2>/dev/null); }
has_line() { grep -qxF -- "$2" "$1"; }

for u in 0:0 1000:1000; do
  case $u in 0:0) m=root ;; *) m="uid 1000" ;; esac
  tag=${u%%:*}
  st=$TESTDIR/store-$tag out=$TESTDIR/out-$tag
  mkdir -p "$st" "$out"; chown "$u" "$st" "$out"

  # the harness: this really is a default Docker job container
  check_eq "[$m] the job container runs as $u" "$(incont "$u" sh -c 'echo $(id -u):$(id -g)' 2>&1)" "$u"
  st_line=$(incont "$u" grep -E '^(Seccomp|CapEff):' /proc/self/status 2>&1)
  seccomp=$(echo "$st_line" | awk '$1 == "Seccomp:" { print $2 }')
  capeff=$(echo "$st_line" | awk '$1 == "CapEff:" { print $2 }')
  check_eq "[$m] ... under Docker's default seccomp filter" "$seccomp" 2
  # CAP_SYS_ADMIN is bit 21: without it, no mount and no unshare of mount namespaces
  check_eq "[$m] ... without CAP_SYS_ADMIN" "$(( (0x${capeff:-ffffffffffffffff} >> 21) & 1 ))" 0

  # import needs no namespace
  check "[$m] obuild import of busybox in the job container" \
    incont "$u" obuild import --source-date-epoch $EPOCH /busybox.tar busybox:latest
  got=$(incont "$u" obuild images 2>&1 | awk '$1 == "busybox:latest" { print $2 }')
  check_eq "[$m] ... the same base image digest as outside" "$got" "$refbb"

  # 1. COPY --chown / --chmod, ENV, CMD, LABEL; the store and -o
  d1=$(incont "$u" obuild build -q -t app:1 -o /out/c1 /workspace/c1 2>"$TESTDIR/.err")
  rc=$?
  check_eq "[$m] COPY --chown/--chmod + metadata builds without a namespace (exit 0)" "$rc" 0
  [ "$rc" -eq 0 ] || head -5 "$TESTDIR/.err" | diag
  # (errors of the inspection tools are left out: they only repeat that
  # there is no image when the build failed)
  layer_listing "$out/c1" app:1 -2 >"$TESTDIR/l1a" 2>/dev/null
  layer_listing "$out/c1" app:1 -1 >"$TESTDIR/l1b" 2>/dev/null
  check "[$m] ... -o layout: app/app.txt is 1234:5678 0644 in its layer" has_line "$TESTDIR/l1a" "f 0644 1234:5678 6 - app/app.txt"
  check "[$m] ... and the /app it made is 1234:5678 too" has_line "$TESTDIR/l1a" "d 0755 1234:5678 0 - app"
  check "[$m] ... run.sh is 0:0 0755 in the next layer" has_line "$TESTDIR/l1b" "f 0755 0:0 $(stat -c %s "$ctx/c1/run.sh") - usr/local/bin/run.sh"
  check_eq "[$m] ... the store's app:1 is the image -q printed" \
    "$(json_get "$st/oci/index.json" '[m["digest"] for m in j["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "app:1"]' 2>/dev/null)" \
    "[\"${d1:-none}\"]"
  skopeo_config "$out/c1" app:1 >"$TESTDIR/cfg1" 2>/dev/null
  check_eq "[$m] ... config Env" "$(json_get "$TESTDIR/cfg1" 'j["config"]["Env"][-1]' 2>/dev/null)" "GREETING=hello"
  check_eq "[$m] ... config Cmd" "$(json_get "$TESTDIR/cfg1" 'j["config"]["Cmd"]' 2>/dev/null)" '["/usr/local/bin/run.sh"]'
  check_eq "[$m] ... config Labels" "$(json_get "$TESTDIR/cfg1" 'j["config"]["Labels"]' 2>/dev/null)" '{"ci": "docker"}'
  umoci_unpack "$out/c1" app:1 "$TESTDIR/u1-$tag" >/dev/null 2>&1
  check_eq "[$m] ... umoci unpacks it: /app/app.txt" "$(cat "$TESTDIR/u1-$tag/rootfs/app/app.txt" 2>/dev/null)" hello
  check_eq "[$m] ... /usr/local/bin/run.sh mode 755" "$(stat -c %a "$TESTDIR/u1-$tag/rootfs/usr/local/bin/run.sh" 2>/dev/null)" 755

  # 2. multi-stage COPY --from into scratch
  d2=$(incont "$u" obuild build -q -t multi:1 -o /out/c2 /workspace/c2 2>"$TESTDIR/.err")
  rc=$?
  check_eq "[$m] multi-stage COPY --from into scratch (exit 0)" "$rc" 0
  [ "$rc" -eq 0 ] || head -5 "$TESTDIR/.err" | diag
  layer_listing "$out/c2" multi:1 0 >"$TESTDIR/l2a" 2>/dev/null
  layer_listing "$out/c2" multi:1 1 >"$TESTDIR/l2b" 2>/dev/null
  check_files "[$m] ... first layer: /g" "$TESTDIR/l2a" /dev/stdin <<'L'
f 0644 0:0 2 - g
L
  check "[$m] ... second layer: /bin/busybox 0755" \
    has_line "$TESTDIR/l2b" "f 0755 0:0 $(stat -c %s "$(command -v busybox || echo /bin/busybox)") - bin/busybox"

  # 3. the same digests as the builds outside Docker
  check_eq "[$m] case 1 inside Docker has the digest of the build outside" "$d1" "$ref1"
  check_eq "[$m] case 2 inside Docker has the digest of the build outside" "$d2" "$ref2"

  # 4. RUN needs a namespace: exit 7, one line, the store unchanged
  snapshot >"$TESTDIR/before" 2>&1
  # root lacks mount namespaces (no CAP_SYS_ADMIN), uid 1000 user namespaces
  case $u in 0:0) what="mount namespaces" ;; *) what="a user namespace" ;; esac
  check_fail 7 "Dockerfile:2: RUN: RUN needs $what.*; builds without RUN work here\$" \
    "[$m] RUN: exit 7, one line: Dockerfile:2, RUN needs $what, builds without RUN work" \
    incont "$u" obuild build -t run:1 /workspace/c4
  snapshot >"$TESTDIR/after" 2>&1
  check_files "[$m] ... the store is as it was" "$TESTDIR/after" "$TESTDIR/before"

  # 4b. a RUN cached by a job that had namespaces (the store as a CI cache
  # volume) needs none: a cache hit, the same image
  st=$TESTDIR/cache-$tag
  cp -a "$(store root)" "$st" && chown -R "$u" "$st"
  d6=$(incont "$u" obuild build -q -t run:1 /workspace/c4 2>"$TESTDIR/.err")
  rc=$?
  check_eq "[$m] RUN cached in the store: exit 0" "$rc" 0
  [ "$rc" -eq 0 ] || head -5 "$TESTDIR/.err" | diag
  check_eq "[$m] ... the image built outside" "$d6" "$ref4"
  st=$TESTDIR/store-$tag

  # 5. --push from the job container; Docker pulls and runs the image
  img=$R/ci/app-$tag:1
  d5=$(incont "$u" obuild build -q --push -t "$img" /workspace/c1 2>"$TESTDIR/.err")
  rc=$?
  check_eq "[$m] build --push to $R (exit 0)" "$rc" 0
  [ "$rc" -eq 0 ] || head -5 "$TESTDIR/.err" | diag
  if [ "$rc" -ne 0 ]; then
    # nothing was pushed: say so once instead of five times
    for t in "docker pulls it" "the pulled digest is obuild's" "docker run cat /app/app.txt" \
      "owned 1234:5678 in the container" "its CMD runs with its ENV"; do
      not_ok "[$m] ... $t (nothing pushed)"
    done
    continue
  fi
  check "[$m] ... docker pulls it" dk pull -q "$img"
  check_eq "[$m] ... the pulled digest is obuild's" \
    "$(dk image inspect --format '{{index .RepoDigests 0}}' "$img" 2>&1)" "$R/ci/app-$tag@$d5"
  check_eq "[$m] ... docker run cat /app/app.txt" "$(dk run --rm --network none "$img" cat /app/app.txt 2>&1)" hello
  check_eq "[$m] ... owned 1234:5678 in the container" \
    "$(dk run --rm --network none "$img" stat -c %u:%g /app/app.txt 2>&1)" 1234:5678
  check_eq "[$m] ... its CMD runs with its ENV" "$(dk run --rm --network none "$img" 2>&1)" "run hello"
  dk rmi -f "$img" >/dev/null 2>&1
done
done_testing
