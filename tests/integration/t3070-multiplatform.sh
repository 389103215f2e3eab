#!/bin/sh
# Images for several platforms: build --platform linux/amd64,linux/arm64
# builds the Dockerfile once per platform and tags an OCI image index of
# them; RUN of arm64 goes through qemu-user (binfmt_misc, F flag); the
# cache keeps platforms apart; push sends the index and its manifests, pull
# takes one platform back; save writes the index whole to an oci-archive
# (one platform with --platform or to a docker-archive), load takes it back.  A platform whose interpreter is not registered
# fails RUN with exit 7 saying what to install.
#
# Test hook: OBUILD_TEST_BINFMT_DIR makes obuild read that directory instead
# of /proc/sys/fs/binfmt_misc (used below for the exit-7 cases, so they do
# not depend on what this machine has registered).
. "$(dirname "$0")/lib.sh"

if [ "$(uname -m)" != x86_64 ]; then
  skip "the test's two platforms are amd64 (native) and arm64 (qemu): needs an x86_64 host"
  done_testing
fi

# ---- the interpreter for arm64: binfmt_misc mounted, qemu-aarch64 with F ----
bf=/proc/sys/fs/binfmt_misc
if [ "$(id -u)" -eq 0 ]; then
  [ -e "$bf/status" ] || mount -t binfmt_misc binfmt_misc "$bf" 2>/dev/null
  if [ ! -e "$bf/qemu-aarch64" ] && command -v update-binfmts >/dev/null; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1
  fi
fi
qemu_ok=
if grep -qx enabled "$bf/qemu-aarch64" 2>/dev/null && grep -q '^flags: .*F' "$bf/qemu-aarch64"; then
  qemu_ok=1
fi

# ---- the arm64 base: Debian's busybox-static:arm64 (scripts/deps.sh --test) ----
arm_tar=$IT_ROOT/busybox-arm64.tar
if [ ! -f "$arm_tar" ] || [ "$FIXTURES/busybox-arm64.sh" -nt "$arm_tar" ]; then
  rm -f "$arm_tar"
  sh "$FIXTURES/busybox-arm64.sh" "$arm_tar.tmp" 2>"$TESTDIR/fixture.err" && mv "$arm_tar.tmp" "$arm_tar"
fi

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
echo hi >"$ctx/hi.txt"
# a two-platform base from the two single-platform imports
printf 'FROM busybox-$TARGETARCH\n' >"$ctx/Dockerfile.base"
printf 'FROM base:multi\nRUN uname -m > /arch\n' >"$ctx/Dockerfile"
# a cross-compilation stage runs natively, its result goes to each platform
cat >"$ctx/Dockerfile.cross" <<'EOF'
FROM --platform=$BUILDPLATFORM busybox-amd64 AS build
ARG TARGETARCH
RUN echo "built on $(uname -m) for $TARGETARCH" > /out
FROM base:multi
COPY --from=build /out /out
RUN uname -m > /arch
EOF
printf 'FROM scratch\nCOPY hi.txt /hi.txt\n' >"$ctx/Dockerfile.scratch"
printf 'FROM busybox-amd64\n' >"$ctx/Dockerfile.amd64"
printf 'FROM busybox-$TARGETARCH\nRUN true\n' >"$ctx/Dockerfile.s390x"
chmod -R a+rX "$ctx"

# sources other than the store: an OCI layout with an index (amd64 and
# arm64, a file /arch and ENV ARCH each), the same as an oci-archive
python3 "$FIXTURES/make-multiplatform-layout.py" "$TESTDIR/multi" >/dev/null
tar -C "$TESTDIR/multi" -cf "$TESTDIR/multi.tar" .
chmod -R a+rX "$TESTDIR/multi" "$TESTDIR/multi.tar"
printf 'FROM oci:%s:multi\n' "$TESTDIR/multi" >"$ctx/Dockerfile.layout"
printf 'FROM oci-archive:%s:multi\n' "$TESTDIR/multi.tar" >"$ctx/Dockerfile.archive"

# a binfmt_misc directory without qemu-s390x, and one where it lacks F
nob=$TESTDIR/binfmt-none nof=$TESTDIR/binfmt-nof
mkdir -p "$nob" "$nof"
echo enabled >"$nob/status"
echo enabled >"$nof/status"
printf 'enabled\ninterpreter /usr/libexec/qemu-binfmt/s390x-binfmt-P\nflags: P\noffset 0\n' >"$nof/qemu-s390x"
chmod -R a+rX "$nob" "$nof"

# index FILE: "arch=digest" per manifest of the index, in order
index_lines() {
  python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
assert j["mediaType"] == "application/vnd.oci.image.index.v1+json", j.get("mediaType")
for m in j["manifests"]:
    print("%s/%s=%s" % (m["platform"]["os"], m["platform"]["architecture"], m["digest"]))' "$1"
}
# validate_index LAYOUT TAG: the index blob by its schema, each manifest as an image
validate_index() {
  _l=$1 _t=$2 _vi=$TESTDIR/.vi.$$
  skopeo inspect --raw "oci:$_l:$_t" >"$_vi.json" || return 1
  oci-image-tool validate --type imageIndex "$_vi.json" >/dev/null || return 1
  for _e in $(index_lines "$_vi.json"); do
    rm -rf "$_vi"; mkdir -p "$_vi"
    cp "$_l/oci-layout" "$_vi/" && cp -al "$_l/blobs" "$_vi/blobs"
    python3 - "$_l/index.json" "$_t" "${_e#*=}" >"$_vi/index.json" <<'PY' || return 1
import json, sys
idx = json.load(open(sys.argv[1]))
top = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]]
assert len(top) == 1
blob = json.load(open(sys.argv[1].rsplit("/", 1)[0] + "/blobs/sha256/" + top[0]["digest"][7:]))
m = [x for x in blob["manifests"] if x["digest"] == sys.argv[3]][0]
m["annotations"] = {"org.opencontainers.image.ref.name": "one"}
print(json.dumps({"schemaVersion": 2, "manifests": [m]}))
PY
    oci-image-tool validate --type image --ref name=one "$_vi" >/dev/null || return 1
  done
  rm -rf "$_vi" "$_vi.json"
}
# arch_of LAYOUT TAG ARCH OUT: the file /arch (and /out) of that platform's image
unpack_platform() {
  rm -rf "$TESTDIR/.p"
  skopeo --override-arch "$3" copy -q "oci:$1:$2" "oci:$TESTDIR/.p:x" && umoci_unpack "$TESTDIR/.p" x "$4"
}

# archive_images FILE TAG: an oci-archive checked (every blob by its
# digest, each used, sizes as the descriptors say; index.json one entry for
# TAG); prints the entry's media type and digest, then the architecture of
# each image it holds, in order
archive_images() {
  python3 - "$1" "$2" <<'PY'
import hashlib, json, sys, tarfile
t = tarfile.open(sys.argv[1])
blobs = {}
for e in t.getmembers():
    if e.isfile() and e.name.startswith("blobs/sha256/"):
        data = t.extractfile(e).read()
        h = e.name[len("blobs/sha256/"):]
        assert hashlib.sha256(data).hexdigest() == h, e.name
        blobs["sha256:" + h] = data
idx = json.load(t.extractfile("index.json"))
assert len(idx["manifests"]) == 1, idx
top = idx["manifests"][0]
assert top["annotations"]["org.opencontainers.image.ref.name"] == sys.argv[2], top
used = set()
def blob(d):
    data = blobs[d["digest"]]
    assert len(data) == d["size"], d
    used.add(d["digest"])
    return data
out = [top["mediaType"], top["digest"]]
def image(d):
    m = json.loads(blob(d))
    for l in m["layers"]:
        blob(l)
    out.append(json.loads(blob(m["config"]))["architecture"])
if top["mediaType"] == "application/vnd.oci.image.index.v1+json":
    for d in json.loads(blob(top))["manifests"]:
        image(d)
else:
    image(top)
assert used == set(blobs), set(blobs) - used
print(" ".join(out))
PY
}
# docker_archive_arch FILE: the architecture of each image of a docker-archive
docker_archive_arch() {
  python3 -c 'import json,sys,tarfile
t = tarfile.open(sys.argv[1])
print(" ".join(json.load(t.extractfile(c))["architecture"] for c in [e["Config"] for e in json.load(t.extractfile("manifest.json"))]))' "$1"
}

reg=
if command -v docker-registry >/dev/null; then
  start_registry
  reg=$R
fi

for m in $MODES; do
  s=$(store_oci "$m")
  import_busybox "$m"
  ob "$m" tag busybox:latest busybox-amd64:latest
  ob "$m" import --platform linux/s390x --source-date-epoch 1700000000 "$(busybox_tar)" busybox-s390x:latest >/dev/null

  # ---- bad input: exit 2, nothing in the store changes ----
  before=$(sha256sum "$s/index.json")
  check_fail 2 'lists linux/amd64 twice' "[$m] --platform naming a platform twice: exit 2" \
    ob "$m" build --platform linux/amd64,linux/amd64 -t x "$ctx"
  check_fail 2 'invalid --platform "linux/amd64,"' "[$m] --platform with an empty entry: exit 2" \
    ob "$m" build --platform linux/amd64, -t x "$ctx"
  check_fail 2 'invalid platform "arm64": expected os/arch' "[$m] --platform without an os: exit 2" \
    ob "$m" build --platform linux/amd64,arm64 -t x "$ctx"
  check_fail 2 '^obuild: --platform: invalid platform "linux"' "[$m] import --platform linux: exit 2" \
    ob "$m" import --platform linux "$(busybox_tar)" y
  check_fail 2 '^obuild: --cache-to with several platforms is not supported' "[$m] --cache-to with two platforms: exit 2" \
    ob "$m" build --platform linux/amd64,linux/arm64 --cache-to "oci:$TESTDIR/cache-$m" -t x "$ctx"
  check_eq "[$m] ... and the store's index is unchanged" "$(sha256sum "$s/index.json")" "$before"

  # ---- no interpreter for the platform: exit 7 saying what to do ----
  check_fail 7 '^obuild: [^ ]*/Dockerfile.s390x:2: RUN for linux/s390x needs qemu-s390x registered with binfmt_misc .*apt-get install qemu-user-static binfmt-support.*F flag' \
    "[$m] RUN for s390x without qemu-s390x registered: exit 7 naming the packages and the F flag" \
    as "$m" env OBUILD_ROOT="$(store "$m")" OBUILD_TEST_BINFMT_DIR="$nob" "$OB" build --platform linux/s390x -f "$ctx/Dockerfile.s390x" "$ctx"
  check_fail 7 '^obuild: [^ ]*/Dockerfile.s390x:2: RUN for linux/s390x: qemu-s390x is registered without the F \(fix-binary\) flag .*inside the build' \
    "[$m] RUN for s390x, qemu-s390x without the F flag: exit 7 saying F is needed" \
    as "$m" env OBUILD_ROOT="$(store "$m")" OBUILD_TEST_BINFMT_DIR="$nof" "$OB" build --platform linux/s390x -f "$ctx/Dockerfile.s390x" "$ctx"
  check_fail 7 '^obuild: [^ ]*/Dockerfile.s390x:2: RUN for linux/s390x needs qemu-user through binfmt_misc, which is not mounted' \
    "[$m] binfmt_misc not mounted: exit 7 saying how to mount it" \
    as "$m" env OBUILD_ROOT="$(store "$m")" OBUILD_TEST_BINFMT_DIR="$TESTDIR/nowhere" "$OB" build --platform linux/s390x -f "$ctx/Dockerfile.s390x" "$ctx"
  check_fail 7 '^obuild: platform linux/s390x: [^ ]*/Dockerfile.s390x:2: RUN for linux/s390x needs qemu-s390x' \
    "[$m] a two-platform build whose second platform cannot RUN: exit 7 naming the platform" \
    as "$m" env OBUILD_ROOT="$(store "$m")" OBUILD_TEST_BINFMT_DIR="$nob" "$OB" build --platform linux/amd64,linux/s390x -t half:1 -f "$ctx/Dockerfile.s390x" "$ctx"
  check_eq "[$m] ... and the store's index is as before (no tag, no untagged platform left)" \
    "$(sha256sum "$s/index.json")" "$before"

  # ---- the cache keeps platforms apart, even on the same (scratch) base ----
  ob "$m" build --platform linux/amd64 -t sc-amd:1 -f "$ctx/Dockerfile.scratch" "$ctx" >/dev/null 2>&1
  ob "$m" build --platform linux/arm64 -t sc-arm:1 -f "$ctx/Dockerfile.scratch" "$ctx" >"$TESTDIR/sc.out" 2>&1
  check "[$m] a COPY cached for amd64 is not reused for arm64" sh -c "! grep -q CACHED '$TESTDIR/sc.out'"
  check_eq "[$m] ... FROM scratch for arm64 is an arm64 image" \
    "$(skopeo_config "$s" sc-arm:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["architecture"])')" arm64

  # ---- bases taken for the platform from layouts, archives, the store ----
  for src in layout archive; do
    check "[$m] FROM an index in an oci${src#layout}: two platforms" \
      ob "$m" build --platform linux/amd64,linux/arm64 -t from-$src:1 -f "$ctx/Dockerfile.$src" "$ctx"
    for a in amd64 arm64; do
      check_eq "[$m] ... the $a image has the $a base" \
        "$(skopeo --override-arch $a inspect --config "oci:$s:from-$src:1" | python3 -c 'import json,sys; print([e for e in json.load(sys.stdin)["config"]["Env"] if e.startswith("ARCH=")])')" "['ARCH=$a']"
    done
  done
  ob "$m" save --format docker-archive -o "$(userdir save-$m "$m")/amd64.tar" busybox-amd64:latest
  printf 'FROM docker-archive:%s\n' "$TESTDIR/save-$m/amd64.tar" >"$ctx/Dockerfile.docker-$m"
  before=$(sha256sum "$s/index.json")
  check_fail 9 "docker-archive:.* is an image for linux/amd64, not for linux/arm64" \
    "[$m] --platform linux/arm64 FROM a docker-archive of amd64: exit 9 saying so" \
    ob "$m" build --platform linux/arm64 -t x -f "$ctx/Dockerfile.docker-$m" "$ctx"
  check_fail 9 '`busybox-amd64:latest` is an image for linux/amd64, not for linux/arm64' \
    "[$m] --platform linux/arm64 FROM an amd64 image of the store, --pull=never: exit 9 saying so" \
    ob "$m" build --pull=never --platform linux/arm64 -t x -f "$ctx/Dockerfile.amd64" "$ctx"
  check_fail 9 'oci:.*multi:multi: index sha256:[0-9a-f]* has no image for linux/s390x' \
    "[$m] --platform linux/s390x FROM an index without it: exit 9 naming the platform" \
    ob "$m" build --platform linux/s390x -t x -f "$ctx/Dockerfile.layout" "$ctx"
  check_eq "[$m] ... and the store's index is unchanged" "$(sha256sum "$s/index.json")" "$before"

  if [ ! -f "$arm_tar" ]; then
    skip "[$m] two-platform build: no arm64 busybox ($(head -1 "$TESTDIR/fixture.err"))"
    continue
  fi
  if [ -z "$qemu_ok" ]; then
    skip "[$m] two-platform build: qemu-aarch64 is not registered with the F flag in $bf (apt-get install qemu-user-static binfmt-support; as root mount binfmt_misc and update-binfmts --enable)"
    continue
  fi
  check "[$m] import --platform linux/arm64 of the arm64 rootfs" \
    ob "$m" import --platform linux/arm64 --source-date-epoch 1700000000 "$arm_tar" busybox-arm64:latest
  check_eq "[$m] ... its config says arm64" \
    "$(skopeo_config "$s" busybox-arm64:latest | python3 -c 'import json,sys; print(json.load(sys.stdin)["architecture"])')" arm64

  # ---- a two-platform base, then a two-platform build on it ----
  check "[$m] two-platform base (FROM busybox-\$TARGETARCH)" \
    ob "$m" build --platform linux/amd64,linux/arm64 -t base:multi -f "$ctx/Dockerfile.base" "$ctx"
  d=$(ob "$m" build -q --platform linux/amd64,linux/arm64 -t app:1 "$ctx" 2>"$TESTDIR/app.err")
  check_eq "[$m] build --platform linux/amd64,linux/arm64 exits 0" "$?" 0
  head -5 "$TESTDIR/app.err" | diag
  skopeo inspect --raw "oci:$s:app:1" >"$TESTDIR/app-$m.json"
  check_eq "[$m] the tag points at an index (skopeo inspect --raw), its digest printed" \
    "sha256:$(sha256sum <"$TESTDIR/app-$m.json" | cut -d' ' -f1)" "$d"
  lines=$(index_lines "$TESTDIR/app-$m.json" | cut -d= -f1 | tr '\n' ' ')
  check_eq "[$m] ... listing linux/amd64 and linux/arm64" "$lines" "linux/amd64 linux/arm64 "
  check "[$m] ... a valid index of valid images (oci-image-tool)" validate_index "$s" app:1
  check_eq "[$m] skopeo --override-arch arm64 inspect: arm64" \
    "$(skopeo --override-arch arm64 inspect "oci:$s:app:1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Architecture"])')" arm64
  check_eq "[$m] no untagged per-platform entries are left in the store" \
    "$(python3 -c 'import json,sys; print(sum(1 for m in json.load(open(sys.argv[1]))["manifests"] if not m.get("annotations")))' "$s/index.json")" 0
  check "[$m] amd64 image unpacks (umoci)" unpack_platform "$s" app:1 amd64 "$TESTDIR/u-$m-amd64"
  check_eq "[$m] ... RUN uname -m ran as x86_64" "$(cat "$TESTDIR/u-$m-amd64/rootfs/arch")" x86_64
  check "[$m] arm64 image unpacks (umoci)" unpack_platform "$s" app:1 arm64 "$TESTDIR/u-$m-arm64"
  check_eq "[$m] ... RUN uname -m ran as aarch64 (qemu)" "$(cat "$TESTDIR/u-$m-arm64/rootfs/arch")" aarch64
  check_eq "[$m] inspect shows this machine's platform of the index" \
    "$(ob "$m" inspect --config app:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["architecture"])')" amd64
  check_eq "[$m] inspect --platform linux/arm64 shows the arm64 one" \
    "$(ob "$m" inspect --platform linux/arm64 --config app:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["architecture"])')" arm64

  # ---- save and load the two-platform image: the index whole ----
  sv=$(userdir "msave-$m" "$m")
  check "[$m] save the two-platform tag to an oci-archive" ob "$m" save -o "$sv/app.tar" app:1
  check_eq "[$m] ... index.json -> the index as stored -> the amd64 and arm64 images, every blob by its digest" \
    "$(archive_images "$sv/app.tar" app:1)" "application/vnd.oci.image.index.v1+json $d amd64 arm64"
  check_eq "[$m] ... skopeo inspect --raw oci-archive: the index" \
    "sha256:$(skopeo inspect --raw "oci-archive:$sv/app.tar" | sha256sum | cut -d' ' -f1)" "$d"
  check_eq "[$m] ... skopeo --override-arch arm64 inspect oci-archive: arm64" \
    "$(skopeo --override-arch arm64 inspect "oci-archive:$sv/app.tar" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Architecture"])')" arm64
  ob "$m" save -o "$sv/again.tar" app:1
  check "[$m] ... saved again: the same bytes" cmp -s "$sv/app.tar" "$sv/again.tar"
  ld=$(userdir "mload-$m" "$m")
  check_eq "[$m] load it into an empty store" \
    "$(as "$m" env OBUILD_ROOT="$ld" "$OB" load -i "$sv/app.tar")" "Loaded image: app:1"
  check_eq "[$m] ... the tag is the index" \
    "sha256:$(skopeo inspect --raw "oci:$ld/oci:app:1" | sha256sum | cut -d' ' -f1)" "$d"
  check_eq "[$m] ... inspect --platform linux/arm64 of the loaded tag: arm64" \
    "$(as "$m" env OBUILD_ROOT="$ld" "$OB" inspect --platform linux/arm64 --config app:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["architecture"])')" arm64
  check_eq "[$m] ... run of the loaded tag runs this machine's image" \
    "$(as "$m" env OBUILD_ROOT="$ld" "$OB" run app:1 cat /arch 2>&1)" x86_64
  printf 'FROM app:1\nCOPY hi.txt /hi.txt\n' >"$ctx/Dockerfile.loaded"
  check "[$m] ... FROM the loaded tag with --platform linux/arm64 (no RUN)" \
    as "$m" env OBUILD_ROOT="$ld" "$OB" build -q --pull=never --platform linux/arm64 -t on-loaded:1 -f "$ctx/Dockerfile.loaded" "$ctx"
  check_eq "[$m] ... is an arm64 image" \
    "$(skopeo_config "$ld/oci" on-loaded:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["architecture"])')" arm64
  arm_md=$(index_lines "$TESTDIR/app-$m.json" | sed -n 's|^linux/arm64=||p')
  check "[$m] save --platform linux/arm64" ob "$m" save --platform linux/arm64 -o "$sv/arm.tar" app:1
  check_eq "[$m] ... one manifest, of arm64" \
    "$(archive_images "$sv/arm.tar" app:1)" "application/vnd.oci.image.manifest.v1+json $arm_md arm64"
  ob "$m" save --format docker-archive -o "$sv/app-docker.tar" app:1 >"$TESTDIR/dsave.out" 2>"$TESTDIR/dsave.err"
  check_eq "[$m] docker-archive of the two-platform tag: exit 0" "$?" 0
  check_eq "[$m] ... with one warning naming the platform saved and --platform" "$(cat "$TESTDIR/dsave.err")" \
    'obuild: warning: `app:1` is a multi-platform image: the docker-archive holds only its linux/amd64 image (choose another with --platform)'
  check_eq "[$m] ... holding the amd64 image" "$(docker_archive_arch "$sv/app-docker.tar")" amd64
  ob "$m" save --format docker-archive --platform linux/arm64 -o "$sv/arm-docker.tar" app:1 2>"$TESTDIR/dsave.err"
  check_eq "[$m] docker-archive --platform linux/arm64: the arm64 image, no warning" \
    "$(docker_archive_arch "$sv/arm-docker.tar") $(wc -c <"$TESTDIR/dsave.err")" "arm64 0"
  ob "$m" build -q --platform linux/arm64,linux/s390x -t sc-multi:1 -f "$ctx/Dockerfile.scratch" "$ctx" >/dev/null 2>&1
  ls "$sv" >"$TESTDIR/sv.before"
  check_fail 2 '^obuild: `sc-multi:1` is a multi-platform image without linux/amd64 \(it has linux/arm64, linux/s390x\): a docker-archive holds one platform, choose it with --platform$' \
    "[$m] docker-archive of an index without this machine's platform: exit 2 naming --platform" \
    ob "$m" save --format docker-archive -o "$sv/x.tar" sc-multi:1
  check_fail 2 '^obuild: --platform: invalid platform "linux": expected os/arch' "[$m] save --platform linux: exit 2" \
    ob "$m" save --platform linux -o "$sv/x.tar" app:1
  check_fail 9 '^obuild: app:1: index sha256:[0-9a-f]{64} has no image for linux/s390x$' \
    "[$m] save --platform linux/s390x of an index without it: exit 9" \
    ob "$m" save --platform linux/s390x -o "$sv/x.tar" app:1
  check_fail 9 '^obuild: `busybox-amd64:latest` is an image for linux/amd64, not for linux/arm64$' \
    "[$m] save --platform linux/arm64 of an amd64 image: exit 9" \
    ob "$m" save --platform linux/arm64 -o "$sv/x.tar" busybox-amd64:latest
  check_eq "[$m] ... no file written by the refused saves" "$(ls "$sv")" "$(cat "$TESTDIR/sv.before")"
  # a hostile archive: its index lists the arm64 manifest, which it lacks
  python3 - "$sv/app.tar" "$sv/bad.tar" "$arm_md" <<'PY'
import sys, tarfile
src, dst = tarfile.open(sys.argv[1]), tarfile.open(sys.argv[2], "w")
for e in src.getmembers():
    if e.name != "blobs/sha256/" + sys.argv[3][7:]:
        dst.addfile(e, src.extractfile(e) if e.isfile() else None)
dst.close()
PY
  chmod a+r "$sv/bad.tar"
  ls "$sv" >"$TESTDIR/sv.before"
  before=$(cd "$s/.." && find . -path ./tmp -prune -o -print | sort | sha256sum; sha256sum oci/index.json)
  check_fail 9 "^obuild: oci-archive:.*/bad.tar: index $d lists $arm_md \(linux/arm64\), which the archive does not have\$" \
    "[$m] load of an archive whose index lists a manifest it lacks: exit 9 naming it" \
    ob "$m" load -i "$sv/bad.tar"
  check_eq "[$m] ... and the store is unchanged" \
    "$(cd "$s/.." && find . -path ./tmp -prune -o -print | sort | sha256sum; sha256sum oci/index.json)" "$before"
  # a store whose index lacks a platform's manifest (damaged): refused, not half saved
  rm -rf "$TESTDIR/partial-$m"
  cp -a "$(store "$m")" "$TESTDIR/partial-$m"
  rm -f "$TESTDIR/partial-$m/oci/blobs/sha256/${arm_md#sha256:}"
  check_fail 9 "^obuild: app:1: index $d lists $arm_md \\(linux/arm64\\), which the store does not have: save one platform with --platform\$" \
    "[$m] save of an index whose arm64 manifest the store lacks: exit 9 naming it" \
    as "$m" env OBUILD_ROOT="$TESTDIR/partial-$m" "$OB" save -o "$sv/y.tar" app:1
  check_eq "[$m] ... no archive written" "$(ls "$sv")" "$(cat "$TESTDIR/sv.before")"
  rm -rf "$TESTDIR/partial-$m"

  # ---- the cache: a rebuild hits for each platform, the same index ----
  d2=$(ob "$m" build -q --platform linux/amd64,linux/arm64 -t app:2 "$ctx" 2>/dev/null)
  ob "$m" build --platform linux/amd64,linux/arm64 -t app:2 "$ctx" >"$TESTDIR/re.out" 2>&1
  check_eq "[$m] rebuild: both RUN steps CACHED" "$(grep -c 'CACHED' "$TESTDIR/re.out")" 2
  check_eq "[$m] ... the same index digest" "$d2" "$d"
  ob "$m" build --platform linux/arm64 -t app-arm:1 "$ctx" >"$TESTDIR/one.out" 2>&1
  check_eq "[$m] a single arm64 build reuses the arm64 step, not the amd64 one" \
    "$(skopeo inspect --raw "oci:$s:app-arm:1" | sha256sum | cut -d' ' -f1)" \
    "$(index_lines "$TESTDIR/app-$m.json" | sed -n 's|^linux/arm64=sha256:||p')"

  # ---- FROM --platform=$BUILDPLATFORM: a native stage in a cross build ----
  check "[$m] cross build with a FROM --platform=\$BUILDPLATFORM stage" \
    ob "$m" build --platform linux/amd64,linux/arm64 -t cross:1 -f "$ctx/Dockerfile.cross" "$ctx"
  check "[$m] ... arm64 image unpacks" unpack_platform "$s" cross:1 arm64 "$TESTDIR/c-$m-arm64"
  check_eq "[$m] ... its /out was built natively for arm64" "$(cat "$TESTDIR/c-$m-arm64/rootfs/out")" "built on x86_64 for arm64"
  check_eq "[$m] ... its own RUN ran as aarch64" "$(cat "$TESTDIR/c-$m-arm64/rootfs/arch")" aarch64

  # ---- --output: the index in another layout ----
  out=$(userdir "out-$m" "$m")
  check "[$m] --output with two platforms" ob "$m" build --platform linux/amd64,linux/arm64 -t app:1 --output "$out" "$ctx"
  check "[$m] ... the layout holds the index and both images (oci-image-tool)" validate_index "$out" app:1

  # ---- push the index, pull each platform back ----
  if [ -z "$reg" ]; then
    skip "[$m] push/pull: docker-registry not installed"
    continue
  fi
  check "[$m] push the index" ob "$m" push app:1 "$reg/multi/$m:1"
  skopeo inspect --raw --tls-verify=false "docker://$reg/multi/$m:1" >"$TESTDIR/pushed-$m.json"
  check_files "[$m] the registry serves the same index" "$TESTDIR/pushed-$m.json" "$TESTDIR/app-$m.json"
  check "[$m] push the index loaded from the oci-archive" \
    as "$m" env OBUILD_ROOT="$ld" "$OB" push app:1 "$reg/multi/$m:loaded"
  skopeo inspect --raw --tls-verify=false "docker://$reg/multi/$m:loaded" >"$TESTDIR/pushed-l-$m.json"
  check_files "[$m] ... the registry serves the same index" "$TESTDIR/pushed-l-$m.json" "$TESTDIR/app-$m.json"
  d3=$(ob "$m" build -q --platform linux/amd64,linux/arm64 --push -t "$reg/multi/$m:2" "$ctx" 2>/dev/null)
  check_eq "[$m] build --push of two platforms: the index digest" "$d3" "$d"
  skopeo inspect --raw --tls-verify=false "docker://$reg/multi/$m:2" >"$TESTDIR/pushed2-$m.json"
  check_files "[$m] ... is what the registry serves" "$TESTDIR/pushed2-$m.json" "$TESTDIR/app-$m.json"
  for a in amd64 arm64; do
    want=$(index_lines "$TESTDIR/app-$m.json" | sed -n "s|^linux/$a=||p")
    check "[$m] pull --platform linux/$a" ob "$m" pull -q --platform "linux/$a" "$reg/multi/$m:1"
    check_eq "[$m] ... gives the $a manifest" \
      "$(ob "$m" inspect "$reg/multi/$m:1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')" "$want"
  done
done
done_testing
