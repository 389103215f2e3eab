#!/bin/sh
# --isolation=container: root in a CI job container with Docker's defaults
# (no namespaces, no mounts) runs RUN steps in the container's own root,
# kaniko-style.  A real dockerd; the layers equal those of the same build in
# a namespace; a Debian service (apt-get install python3) builds, is pushed,
# pulled and run by Docker, and answers; so does the executor image
# (scripts/executor-image.sh).  Refused outside a container and for non-root.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/docker-lib.sh"
start_registry
trap cleanup EXIT   # start_registry set its own: ours also stops the registry
EPOCH=1700000000

job_image

ctx=$TESTDIR/ctx
mkdir -p "$ctx/iso" "$ctx/net" "$ctx/mnt" "$ctx/svc" "$ctx/deep" "$ctx/ahead"
echo content >"$ctx/iso/app.txt"
cat >"$ctx/iso/Dockerfile" <<'D'
FROM busybox
RUN echo hi > /hello && mkdir -p /srv/data && echo x > /srv/data/x && rm -rf /home/app && ln -s /srv/data /data && cp -p /etc/passwd /keep && tr x y </keep >/etc/passwd && touch -r /keep /etc/passwd /hello
COPY app.txt /app/
RUN cat /app/app.txt > /copied && chmod 600 /copied && mkdir -p /var/empty && rm /bin/vi && echo ho > /hello && touch -r /keep /hello
USER 1000
RUN touch /tmp/user-file && id -u > /tmp/uid
USER root
CMD ["cat", "/hello"]
D
printf 'FROM busybox\nRUN --network=none true\n' >"$ctx/net/Dockerfile"
# big files, settled while the step runs: compressed ahead in the container's root too
printf 'FROM busybox\nRUN seq 1 300000 >/big && head -c 100000 /dev/zero >/zero && sleep 2\n' >"$ctx/ahead/Dockerfile"
# a step leaving a path longer than a layer holds (t7060 in the namespaces)
cc -static -O2 -o "$ctx/deep/deeptree" "$FIXTURES/deeptree.c" 2>&1 | diag
printf 'FROM busybox\nCOPY deeptree /deeptree\nRUN /deeptree /tmp/long 3000\n' >"$ctx/deep/Dockerfile"
printf 'FROM busybox\nRUN --mount=type=tmpfs,target=/t true\n' >"$ctx/mnt/Dockerfile"
cat >"$ctx/svc/app.py" <<'P'
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"hello from obuild\n")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
P
cat >"$ctx/svc/Dockerfile" <<'D'
FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*
COPY app.py /app/app.py
EXPOSE 5000
CMD ["python3", "/app/app.py"]
D
chmod -R a+rX "$ctx"

# incont USER STORE CMD...: CMD in a fresh job container with Docker's
# defaults as USER, the context at /workspace, STORE at /store, /out.
out=$TESTDIR/out
mkdir -p "$out"
incont() {
  _u=$1 _st=$2; shift 2
  dk run --rm --network host --user "$_u" \
    -v "$ctx:/workspace" -v "$_st:/store" -v "$out:/out" -v "$(busybox_tar):/busybox.tar:ro" \
    ${DEB:+-v "$DEB:/debian.tar:ro"} \
    -e OBUILD_ROOT=/store -e SOURCE_DATE_EPOCH=$EPOCH \
    ${ASAN_OPTIONS:+-e ASAN_OPTIONS=$ASAN_OPTIONS} ${UBSAN_OPTIONS:+-e UBSAN_OPTIONS=$UBSAN_OPTIONS} \
    -w /workspace obuild-ci:test "$@"
}
layers() { # LAYOUT TAG: each layer's listing after the base's, one file per layer
  _n=$(python3 -c "import json,sys; i=json.load(open(sys.argv[1]+'/index.json')); m=[x for x in i['manifests'] if x.get('annotations',{}).get('org.opencontainers.image.ref.name')==sys.argv[2]][0]; print(len(json.load(open(sys.argv[1]+'/blobs/sha256/'+m['digest'][7:]))['layers']))" "$1" "$2")
  _i=1; while [ "$_i" -lt "$_n" ]; do echo "== layer $_i"; layer_listing "$1" "$2" "$_i"; _i=$((_i + 1)); done
}

# 1. busybox: RUN, deletions, a COPY between, USER 1000
st=$TESTDIR/store-root
mkdir -p "$st"
check "[root] import busybox in the job container" \
  incont 0:0 "$st" obuild import --source-date-epoch $EPOCH /busybox.tar busybox:latest
incont 0:0 "$st" obuild build --isolation=container -t iso:1 -o /out/iso /workspace/iso >"$TESTDIR/iso.out" 2>&1
rc=$?
check_eq "[root] --isolation=container: RUN steps build in a default job container (exit 0)" "$rc" 0
[ "$rc" -eq 0 ] || tail -5 "$TESTDIR/iso.out" | diag
import_busybox root
ob root build -q -t iso:1 -o "$TESTDIR/ref-iso" "$ctx/iso" >/dev/null 2>"$TESTDIR/.err" || diag <"$TESTDIR/.err"
layers "$out/iso" iso:1 >"$TESTDIR/iso.layers" 2>&1
layers "$TESTDIR/ref-iso" iso:1 >"$TESTDIR/ref-iso.layers" 2>&1
check_files "[root] ... its layers equal those of the same build in a namespace (paths, types, modes, owners, sizes, whiteouts)" \
  "$TESTDIR/iso.layers" "$TESTDIR/ref-iso.layers"
check "[root] ... oci-image-tool validates it" oci_validate "$out/iso" iso:1
check "[root] ... umoci unpacks it" umoci_unpack "$out/iso" iso:1 "$TESTDIR/u-iso"
check_eq "[root] ... USER 1000's RUN ran as 1000" "$(cat "$TESTDIR/u-iso/rootfs/tmp/uid" 2>&1)" 1000
check_eq "[root] ... files rewritten in place with size and mtime kept are in the layers (base's and an earlier RUN's)" \
  "$(head -n 1 "$TESTDIR/u-iso/rootfs/etc/passwd" | cut -d: -f1,2) $(cat "$TESTDIR/u-iso/rootfs/hello" 2>&1)" "root:y ho"
check_eq "[root] ... /home/app deleted, /bin/vi deleted" \
  "$(ls -d "$TESTDIR/u-iso/rootfs/home/app" "$TESTDIR/u-iso/rootfs/bin/vi" 2>/dev/null | wc -l)" 0

# OBUILD_KEEP: what it names survives, the rest of the old root does not
got=$(incont 0:0 "$st" sh -c 'mkdir /keepme /dropme && echo kept > /keepme/x && echo gone > /dropme/x &&
  OBUILD_KEEP=/keepme obuild build -q --no-cache --isolation=container -t iso:2 /workspace/iso >/dev/null 2>&1 &&
  cat /keepme/x && ls -d /dropme 2>/dev/null; echo "rc=$?"' 2>&1 | tr '\n' ' ')
check_eq "[root] OBUILD_KEEP=/keepme survives the root's replacement, /dropme does not" "$got" "kept rc=1 "

# members made ahead in the container's root (files changed since the step
# began, on its own file system): three tries, the thread has idle priority
for try in 1 2 3; do
  incont 0:0 "$st" obuild build --no-cache --progress=json --isolation=container -t ahead:1 -o /out/ahead \
    /workspace/ahead >/dev/null 2>"$TESTDIR/ahead.json"
  made=$(grep -o '"layer_precompressed":[0-9]*' "$TESTDIR/ahead.json" | tail -n 1 | cut -d: -f2)
  [ "${made:-0}" -gt 0 ] && break
done
check "[root] --isolation=container: a RUN's big files compressed while it ran (${made:-0} bytes)" test "${made:-0}" -gt 0
check "[root] ... umoci unpacks the image" umoci_unpack "$out/ahead" ahead:1 "$TESTDIR/u-ahead"
check_eq "[root] ... the file as the step wrote it" "$(sha256sum <"$TESTDIR/u-ahead/rootfs/big")" "$(seq 1 300000 | sha256sum)"

# 2. what cannot work there, and where it must not run
check_fail 7 "Dockerfile:2: RUN --network=none needs a network namespace, which --isolation=container cannot create" \
  "[root] RUN --network=none: exit 7" incont 0:0 "$st" obuild build --isolation=container /workspace/net
check_fail 7 "Dockerfile:2: RUN --mount needs mount\\(2\\), which --isolation=container cannot use" \
  "[root] RUN --mount: exit 7" incont 0:0 "$st" obuild build --isolation=container /workspace/mnt
check_fail 5 'Dockerfile:3: path `tmp/long/a/a/a/.*` is 4096 bytes long, more than a layer holds \(4095\)' \
  "[root] a step's 3000-deep tree: exit 5, the path cut short" \
  incont 0:0 "$st" obuild build --isolation=container /workspace/deep
ust=$TESTDIR/store-1000
mkdir -p "$ust" && chown 1000:1000 "$ust"
check_fail 7 "--isolation=container needs root in the container" "[uid 1000] --isolation=container: exit 7" \
  incont 1000:1000 "$ust" obuild build --isolation=container /workspace/iso
# outside any container (a root directory without /.dockerenv, in new mount
# and PID namespaces): refused, and that root is left as it was
mkdir -p "$TESTDIR/rootfs/workspace/x"
printf 'FROM scratch\nRUN true\n' >"$TESTDIR/rootfs/workspace/x/Dockerfile"
ls -A "$TESTDIR/rootfs" >"$TESTDIR/before"
check_fail 7 "refusing: .--isolation=container. would replace this machine's root filesystem" \
  "outside a container: refused with exit 7" \
  unshare --mount --pid --fork --mount-proc --root="$TESTDIR/rootfs" /usr/local/bin/obuild build --isolation=container /workspace/x
ls -A "$TESTDIR/rootfs" >"$TESTDIR/after"
check_files "... and that root file system is untouched" "$TESTDIR/after" "$TESTDIR/before"

# 3. the Debian service: apt-get in RUN, --push, Docker pulls and runs it
DEB=$IT_ROOT/debian-minbase.tar
if [ ! -s "$DEB" ] || ! tar -tf "$DEB" ./usr/bin/apt-get >/dev/null 2>&1; then
  rm -f "$DEB"
  mmdebstrap --quiet --variant=minbase --mode=root --format=tar bookworm "$DEB.tmp" >"$TESTDIR/mmdebstrap.log" 2>&1 &&
    mv "$DEB.tmp" "$DEB"
fi
if [ ! -s "$DEB" ]; then
  not_ok "a Debian bookworm minbase (mmdebstrap)"; diag <"$TESTDIR/mmdebstrap.log"; done_testing
fi
chmod a+r "$DEB"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
svc_check() { # WHO IMAGE: docker pulls and runs IMAGE, curl gets its answer, SIGTERM stops it
  check "[$1] ... docker pulls it" dk pull -q "$2"
  cid=$(dk run -d --network host -e PORT="$port" "$2" 2>&1)
  i=0; until curl -sf "http://127.0.0.1:$port/" >"$TESTDIR/answer" 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
  check_eq "[$1] ... docker run: curl gets the service's answer" "$(cat "$TESTDIR/answer" 2>&1)" "hello from obuild"
  dk stop -t 5 "$cid" >/dev/null 2>&1
  dk rm -f "$cid" >/dev/null 2>&1
  rm -f "$TESTDIR/answer"
}
tree_of() { # LAYOUT TAG: paths, types, modes, owners (sizes of what apt does not log or cache)
  umoci_unpack "$1" "$2" "$TESTDIR/t.$$" >/dev/null 2>&1 || return 1
  tree_listing "$TESTDIR/t.$$/rootfs" --owners |
    grep -vE ' \./(var/log|var/cache|var/lib/apt|var/lib/dpkg|etc/ld\.so\.cache)(/|$)' |
    grep -vE ' \./root/\.cache' | awk '$1 == "d" || $1 == "l" { print; next } { $4 = "-"; print }'
  rm -rf "$TESTDIR/t.$$"
}
sst=$TESTDIR/store-svc
mkdir -p "$sst"
check "[root] import the Debian base in the job container" \
  incont 0:0 "$sst" obuild import --source-date-epoch $EPOCH /debian.tar debian:bookworm
incont 0:0 "$sst" obuild build --isolation=container --push -t "$R/ci/svc:1" /workspace/svc >"$TESTDIR/svc.out" 2>&1
rc=$?
check_eq "[root] the Debian service (apt-get install python3) builds with --isolation=container and --push (exit 0)" "$rc" 0
[ "$rc" -eq 0 ] || tail -8 "$TESTDIR/svc.out" | diag
svc_check root "$R/ci/svc:1"
# the reference: the same Dockerfile in a namespace, outside Docker
ob root import --source-date-epoch $EPOCH "$DEB" debian:bookworm >/dev/null 2>&1
ob root build -q -t svc:1 -o "$TESTDIR/ref-svc" "$ctx/svc" >/dev/null 2>"$TESTDIR/.err" || tail -5 "$TESTDIR/.err" | diag
skopeo copy -q --src-tls-verify=false "docker://$R/ci/svc:1" "oci:$TESTDIR/svc-pulled:svc:1" >/dev/null 2>&1
tree_of "$TESTDIR/svc-pulled" svc:1 >"$TESTDIR/svc.tree"
tree_of "$TESTDIR/ref-svc" svc:1 >"$TESTDIR/ref-svc.tree"
check "[root] ... its file tree is not empty" test "$(wc -l <"$TESTDIR/svc.tree")" -gt 1000
check_files "[root] ... and equals the namespace build's (paths, types, modes, owners; sizes outside logs and caches)" \
  "$TESTDIR/svc.tree" "$TESTDIR/ref-svc.tree"

# 4. the executor image does the same
if sh "$OBUILD_SRCDIR/scripts/executor-image.sh" --obuild "$OB" -o "$TESTDIR/exec-layout" >"$TESTDIR/.out" 2>&1 &&
   skopeo copy -q "oci:$TESTDIR/exec-layout:obuild-executor:latest" "docker-archive:$TESTDIR/exec.tar:obuild-executor:test" >>"$TESTDIR/.out" 2>&1 &&
   dk load -q -i "$TESTDIR/exec.tar" >>"$TESTDIR/.out" 2>&1; then
  ok "the executor image builds (scripts/executor-image.sh) and docker loads it"
else
  not_ok "the executor image builds (scripts/executor-image.sh) and docker loads it"; diag <"$TESTDIR/.out"
fi
est=$TESTDIR/store-exec
mkdir -p "$est"
exrun() { dk run --rm --network host -v "$ctx/svc:/workspace" -v "$est:/obuild/store" -v "$DEB:/debian.tar:ro" obuild-executor:test "$@"; }
check "[executor] import the Debian base" exrun import --source-date-epoch $EPOCH /debian.tar debian:bookworm
# as a GitLab job runs it: its own shell, a job script
dk run --rm --network host --entrypoint "" -v "$ctx/svc:/workspace" -v "$est:/obuild/store" obuild-executor:test \
  sh -c "mkdir -p /root/.docker && echo '{}' > /root/.docker/config.json && obuild build --push -t $R/ci/svc-exec:1 /workspace" \
  >"$TESTDIR/exec.out" 2>&1
rc=$?
check_eq "[executor] a job script in its shell: obuild build --push (exit 0)" "$rc" 0
[ "$rc" -eq 0 ] || tail -8 "$TESTDIR/exec.out" | diag
svc_check executor "$R/ci/svc-exec:1"
done_testing
