#!/bin/sh
# Hostile base images, layouts and archives (from a security review): each
# one is refused with one line naming the problem — exit 9, never a crash —
# the store is left exactly as it was, and nothing is written outside.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
# where the symlinks of hostile layers point: writable by everyone, so an
# escape would show here
outside=$TESTDIR/outside
mkdir -p "$outside" && chmod 1777 "$outside"
HOSTILE_OUTSIDE=$outside
export HOSTILE_OUTSIDE
hostile() { python3 "$FIXTURES/make-hostile-layout.py" "$@"; }
# the store as far as a failed build must not change it: images, blobs,
# tags, unpacked layers, and no scratch left behind
snapshot() {
  (cd "$(store "$1")" && find oci layers -type f -printf '%p %s\n' 2>/dev/null | sort \
    && sha256sum oci/index.json && ls -A tmp)
}
# from CODE PATTERN DESC DOCKERFILE_TEXT: build it as $m, expecting the error
# (check_fail wants that exit code exactly: a crash, >= 128, fails it)
from() {
  _c=$1 _p=$2 _d=$3 _f=$4; shift 4
  # shellcheck disable=SC2059
  printf "$_f" "$@" >"$ctx/Dockerfile"
  check_fail "$_c" "$_p" "[$m] $_d" ob "$m" build -q -t x -f "$ctx/Dockerfile" "$ctx"
}
# bounded CODE PATTERN DESC DOCKERFILE_TEXT: `from`, in bounded time,
# memory and file size (without the fix these ran until killed)
bounded() {
  _c=$1 _p=$2 _d=$3 _f=$4; shift 4
  # shellcheck disable=SC2059
  printf "$_f" "$@" >"$ctx/Dockerfile"
  # (a sanitizer build reserves terabytes of address space)
  _v=1000000; [ -n "${ASAN_OPTIONS:-}" ] && _v=unlimited
  # shellcheck disable=SC2016
  check_fail "$_c" "$_p" "[$m] $_d" as "$m" sh -c 'ulimit -f 102400 && ulimit -v "$0" && exec timeout 20 "$@"' "$_v" \
    env OBUILD_ROOT="$(store "$m")" "$OB" build -q -t x -f "$ctx/Dockerfile" "$ctx"
}

# layouts whose index or descriptors lie
for kind in ok index-is-manifest index-self index-deep index-nested \
    manifest-size-small manifest-size-huge config-size-small config-size-huge \
    layer-size-small layer-size-huge; do
  hostile "$kind" "$TESTDIR/L-$kind"
done
for kind in symlink hardlink-missing; do
  hostile "$kind" "$TESTDIR/L-$kind"
done
for kind in symlink hardlink-missing; do
  hostile --tar "$kind" "$ctx/T-$kind.tar"
done
for kind in hardlink hardlink-missing hardlink-abs ok; do
  hostile --tar "$kind" "$TESTDIR/I-$kind.tar"
done
for kind in bigconfig bigmanifest ok; do
  hostile --docker "$kind" "$TESTDIR/D-$kind.tar"
done
(cd "$TESTDIR/L-index-is-manifest" && tar cf "$TESTDIR/A-index-is-manifest.tar" .)
(cd "$TESTDIR/L-manifest-size-huge" && tar cf "$TESTDIR/A-manifest-size-huge.tar" .)
(cd "$TESTDIR/L-config-size-small" && tar cf "$TESTDIR/A-config-size-small.tar" .)
(cd "$TESTDIR/L-ok" && tar cf "$TESTDIR/A-ok.tar" .)
# files of an archive or layout that are no regular file: a FIFO (the open
# blocked forever), a symlink to /dev/zero (read without end: the memory
# filled), a layer under a symlinked directory (`d -> /dev`, `d/zero`: the
# store's scratch filled)
python3 - "$TESTDIR" "$FIXTURES" <<'PY'
import io, json, os, sys, tarfile
out, fixtures = sys.argv[1], sys.argv[2]
def add(t, name, data=None, typ=tarfile.REGTYPE, link=""):
    ti = tarfile.TarInfo(name); ti.type = typ; ti.linkname = link; ti.mode = 0o644
    if data is not None:
        ti.size = len(data)
    t.addfile(ti, io.BytesIO(data) if data is not None else None)
ok = tarfile.open(out + "/D-ok.tar")
files = {m.name: ok.extractfile(m).read() for m in ok.getmembers()}
man = json.loads(files["manifest.json"])
for kind in ("manifest-fifo", "manifest-zero", "layer-fifo", "layer-symdir", "config-symdir"):
    with tarfile.open("%s/D-%s.tar" % (out, kind), "w") as t:
        m = json.loads(json.dumps(man))
        if kind == "layer-fifo":
            m[0]["Layers"] = ["fifo"]; add(t, "fifo", typ=tarfile.FIFOTYPE)
        if kind == "layer-symdir":
            m[0]["Layers"] = ["d/zero"]; add(t, "d", typ=tarfile.SYMTYPE, link="/dev")
        if kind == "config-symdir":
            m[0]["Config"] = "d/passwd"; add(t, "d", typ=tarfile.SYMTYPE, link="/etc")
        if kind == "manifest-fifo":
            add(t, "manifest.json", typ=tarfile.FIFOTYPE)
        elif kind == "manifest-zero":
            add(t, "manifest.json", typ=tarfile.SYMTYPE, link="/dev/zero")
        else:
            add(t, "manifest.json", json.dumps(m).encode())
        for n, d in files.items():
            if n != "manifest.json":
                add(t, n, d)
# oci-archives of the valid layout, one file replaced
lay = out + "/L-ok"
mdg = json.load(open(lay + "/index.json"))["manifests"][0]["digest"][7:]
for kind in ("index-fifo", "index-zero", "blob-fifo"):
    with tarfile.open("%s/A-%s.tar" % (out, kind), "w") as t:
        for root, dirs, names in os.walk(lay):
            for n in sorted(names):
                rel = os.path.relpath(os.path.join(root, n), lay)
                if rel == "index.json" and kind == "index-fifo":
                    add(t, rel, typ=tarfile.FIFOTYPE)
                elif rel == "index.json" and kind == "index-zero":
                    add(t, rel, typ=tarfile.SYMTYPE, link="/dev/zero")
                elif n == mdg and kind == "blob-fifo":
                    add(t, rel, typ=tarfile.FIFOTYPE)
                else:
                    add(t, rel, open(os.path.join(root, n), "rb").read())
PY
# archives naming one image 50 times, under 50 tags; 1000 times (the most
# obuild loads); 1001 times
python3 - "$TESTDIR" <<'PY'
import io, json, sys, tarfile
out = sys.argv[1]
for src, dst, count in (("A-ok", "A-many", 50), ("D-ok", "D-many", 50), ("A-ok", "A-1000", 1000),
                        ("D-ok", "D-1000", 1000), ("A-ok", "A-1001", 1001), ("D-ok", "D-1001", 1001)):
    with tarfile.open("%s/%s.tar" % (out, src)) as a, tarfile.open("%s/%s.tar" % (out, dst), "w") as t:
        for m in a.getmembers():
            data = a.extractfile(m).read() if m.isfile() else None
            if m.name.lstrip("./") == "index.json":
                j = json.loads(data); e = j["manifests"][0]
                j["manifests"] = [dict(e, annotations={"org.opencontainers.image.ref.name": "%s:%d" % (dst.lower(), i)}) for i in range(count)]
                data = json.dumps(j).encode()
            if m.name == "manifest.json":
                j = json.loads(data)
                data = json.dumps([dict(j[0], RepoTags=["%s:%d" % (dst.lower(), i)]) for i in range(count)]).encode()
            if data is not None:
                m.size = len(data)
            t.addfile(m, io.BytesIO(data) if data is not None else None)
# one image under 10001 tags: more than obuild loads from an archive
with tarfile.open("%s/D-ok.tar" % out) as a, tarfile.open("%s/D-tags.tar" % out, "w") as t:
    for m in a.getmembers():
        data = a.extractfile(m).read() if m.isfile() else None
        if m.name == "manifest.json":
            j = json.loads(data)
            data = json.dumps([dict(j[0], RepoTags=["d-tags:%d" % i for i in range(10001)])]).encode()
        if data is not None:
            m.size = len(data)
        t.addfile(m, io.BytesIO(data) if data is not None else None)
PY
# an image and an archive compressed with lrzip, which libarchive decodes
# with the program `lrzip` (a fake one here, that leaves a mark outside)
python3 - "$TESTDIR" <<'PY'
import hashlib, json, os, sys
out = sys.argv[1] + "/L-lrzip"
os.makedirs(out + "/blobs/sha256")
def put(d):
    h = hashlib.sha256(d).hexdigest()
    open(out + "/blobs/sha256/" + h, "wb").write(d)
    return "sha256:" + h
# (read as it is, without the filter: its diff_id is its digest)
raw = b"LRZI\x00\x06" + b"\x00" * 200
open(sys.argv[1] + "/lrzip.tar.lrz", "wb").write(raw)
ld = put(raw)
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": [ld]}}).encode()
cd = put(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": len(raw)}]}).encode()
md = put(man)
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
           "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "bad"}}]}, open(out + "/index.json", "w"))
PY
fakebin=$TESTDIR/fakebin
mkdir -p "$fakebin"
printf '#!/bin/sh\ntouch "%s/lrzip-ran"\ncat >/dev/null\n' "$outside" >"$fakebin/lrzip"
chmod 755 "$fakebin/lrzip"
echo f >"$ctx/f"
# an image listing one layer (8 MiB of zeros, gzip-compressed) 2000 times
python3 - "$TESTDIR" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
out = sys.argv[1] + "/L-dup"
os.makedirs(out + "/blobs/sha256")
def put(d):
    h = hashlib.sha256(d).hexdigest()
    open(out + "/blobs/sha256/" + h, "wb").write(d)
    return "sha256:" + h
b = io.BytesIO()
with tarfile.open(fileobj=b, mode="w") as t:
    ti = tarfile.TarInfo("zeros"); ti.size = 8 << 20
    t.addfile(ti, io.BytesIO(bytes(ti.size)))
raw = b.getvalue()
blob = gzip.compress(raw, mtime=0)
ld, n = put(blob), 2000
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()] * n}}).encode()
cd = put(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": len(blob)}] * n}).encode()
md = put(man)
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
           "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "bad"}}]}, open(out + "/index.json", "w"))
PY
# a docker-archive naming one layer file (4 MiB) 2000 times
python3 - "$TESTDIR" <<'PY'
import hashlib, io, json, sys, tarfile
def tar_bytes(entries):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w") as t:
        for n, d in entries:
            ti = tarfile.TarInfo(n); ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
    return b.getvalue()
raw, n = tar_bytes([("zeros", bytes(4 << 20))]), 2000
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()] * n}}).encode()
man = json.dumps([{"Config": "config.json", "RepoTags": ["dup:latest"], "Layers": ["layer.tar"] * n}]).encode()
open(sys.argv[1] + "/D-dup.tar", "wb").write(tar_bytes([("manifest.json", man), ("config.json", cfg), ("layer.tar", raw)]))
PY
# ... and the same in layouts
for kind in index-fifo index-zero blob-fifo index-sparse; do
  cp -r "$TESTDIR/L-ok" "$TESTDIR/L-$kind"
done
# an index.json of 1 GiB that costs no disk (read whole, it filled the memory)
truncate -s 1G "$TESTDIR/L-index-sparse/index.json"
md=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$TESTDIR/L-ok/index.json")
rm "$TESTDIR/L-index-fifo/index.json" "$TESTDIR/L-index-zero/index.json" "$TESTDIR/L-blob-fifo/blobs/sha256/$md"
mkfifo "$TESTDIR/L-index-fifo/index.json" "$TESTDIR/L-blob-fifo/blobs/sha256/$md"
ln -s /dev/zero "$TESTDIR/L-index-zero/index.json"
chmod -R a+rX "$TESTDIR"

for m in $MODES; do
  # something in the store first, so "unchanged" means something
  check "[$m] a valid layout as the base" ob "$m" build -q -t good -f - "$ctx" <<EOF
FROM oci:$TESTDIR/L-ok:bad
EOF
  check "[$m] two nested indexes are followed" ob "$m" build -q -t nested -f - "$ctx" <<EOF
FROM oci:$TESTDIR/L-index-nested:bad
EOF
  snapshot "$m" >"$TESTDIR/before-$m"

  # 3: index.json says "index", the blob is a manifest (was a double free, exit 134)
  from 9 'Dockerfile:1: FROM oci:.*L-index-is-manifest:bad: .*index sha256:[0-9a-f]{64}: not an image index' \
    "index entry whose blob is a manifest: exit 9" 'FROM oci:%s:bad\n' "$TESTDIR/L-index-is-manifest"
  from 9 'Dockerfile:1: FROM oci-archive:.*: index sha256:[0-9a-f]{64}: not an image index' \
    "... in an oci-archive: exit 9" 'FROM oci-archive:%s:bad\n' "$TESTDIR/A-index-is-manifest.tar"
  from 9 'Dockerfile:1: .*index.* blob sha256:(ab){32}: size [0-9]+, the descriptor says 200' \
    "an index listing itself: exit 9" 'FROM oci:%s:bad\n' "$TESTDIR/L-index-self"
  from 9 'Dockerfile:1: .*index sha256:[0-9a-f]{64}: indexes nested more than 8 deep' \
    "1000 nested indexes: exit 9, no stack overflow" 'FROM oci:%s:bad\n' "$TESTDIR/L-index-deep"

  # 11: sizes that do not match the blob, or that no JSON document has
  from 9 'Dockerfile:1: .*manifest: blob sha256:[0-9a-f]{64}: size [0-9]+, the descriptor says 10$' \
    "manifest size 10 in index.json: exit 9" 'FROM oci:%s:bad\n' "$TESTDIR/L-manifest-size-small"
  from 9 'Dockerfile:1: .*manifest: sha256:[0-9a-f]{64}: size 1000000000000000 is more than the 4194304 bytes allowed' \
    "manifest size 10^15: refused before reading, exit 9" 'FROM oci:%s:bad\n' "$TESTDIR/L-manifest-size-huge"
  from 9 'Dockerfile:1: FROM oci-archive:.*: size 1000000000000000 is more than the 4194304 bytes allowed' \
    "... in an oci-archive: exit 9" 'FROM oci-archive:%s:bad\n' "$TESTDIR/A-manifest-size-huge.tar"
  from 9 'Dockerfile:1: .*config: blob sha256:[0-9a-f]{64}: size [0-9]+, the descriptor says 10$' \
    "config size 10: exit 9" 'FROM oci:%s:bad\n' "$TESTDIR/L-config-size-small"
  from 9 'Dockerfile:1: FROM oci-archive:.*config: blob sha256:[0-9a-f]{64}: size [0-9]+, the descriptor says 10$' \
    "... in an oci-archive: exit 9" 'FROM oci-archive:%s:bad\n' "$TESTDIR/A-config-size-small.tar"
  from 9 'Dockerfile:1: .*manifest config sha256:[0-9a-f]{64}: size 1000000000000000 is more than the 4194304 bytes allowed' \
    "config size 10^15: exit 9" 'FROM oci:%s:bad\n' "$TESTDIR/L-config-size-huge"
  from 9 'Dockerfile:1: .*layer #0: blob sha256:[0-9a-f]{64}: size [0-9]+, the descriptor says 10$' \
    "layer size 10 (its content known from an earlier build): exit 9" 'FROM oci:%s:bad\n' "$TESTDIR/L-layer-size-small"
  from 9 'Dockerfile:1: .*layer #0: blob sha256:[0-9a-f]{64}: size [0-9]+, the descriptor says 1000000000000000$' \
    "layer size 10^15: exit 9" 'FROM oci:%s:bad\n' "$TESTDIR/L-layer-size-huge"

  from 9 'Dockerfile:1: FROM docker-archive:.*: .config.json.: size [0-9]+ is more than the 4194304 bytes allowed' \
    "docker-archive with a config of 5 MiB: exit 9" 'FROM docker-archive:%s\n' "$TESTDIR/D-bigconfig.tar"
  from 9 'Dockerfile:1: FROM docker-archive:.*: manifest.json: size [0-9]+ is more than the 4194304 bytes allowed' \
    "docker-archive with a manifest.json of 5 MiB: exit 9" 'FROM docker-archive:%s\n' "$TESTDIR/D-bigmanifest.tar"

  # 12a: an entry under a symlink its layer (or archive) planted, pointing
  # outside: refused naming the layer and the entry, never followed
  # (a stage with RUN unpacks its base while checking it, at FROM; a stage
  # built on another unpacks it at its first RUN)
  from 9 "Dockerfile:1: FROM oci:[^ ]*L-symlink:bad: layer sha256:[0-9a-f]{64}: unpack layer sha256:[0-9a-f]{64}: entry .lnk/escaped-by-symlink.: its parent .lnk. is a symlink to .$outside. that leads to no directory inside the root" \
    "layer entry under a symlink to outside: exit 9 naming layer and entry" 'FROM oci:%s:bad\nRUN true\n' "$TESTDIR/L-symlink"
  from 9 "Dockerfile:3: unpack layer sha256:[0-9a-f]{64}: entry .lnk/escaped-by-symlink.: its parent .lnk. is a symlink to .$outside. that leads to no directory inside the root" \
    "... at the RUN of a stage built on it: exit 9" 'FROM oci:%s:bad AS a\nFROM a\nRUN true\n' "$TESTDIR/L-symlink"
  from 9 "Dockerfile:2: COPY --from=oci:.*unpack layer sha256:[0-9a-f]{64}: entry .lnk/escaped-by-symlink.: its parent .lnk. is a symlink" \
    "... in COPY --from: exit 9" 'FROM scratch\nCOPY --from=oci:%s:bad /ok /\n' "$TESTDIR/L-symlink"
  from 9 "Dockerfile:1: FROM oci:[^ ]*L-hardlink-missing:bad: layer sha256:[0-9a-f]{64}: unpack layer sha256:[0-9a-f]{64}: entry .h.: hardlink target .not-in-the-archive. does not exist" \
    "layer hardlink to a file not in it: exit 9" 'FROM oci:%s:bad\nRUN true\n' "$TESTDIR/L-hardlink-missing"
  from 9 "Dockerfile:3: unpack layer sha256:[0-9a-f]{64}: entry .h.: hardlink target .not-in-the-archive. does not exist" \
    "... at the RUN of a stage built on it: exit 9" 'FROM oci:%s:bad AS a\nFROM a\nRUN true\n' "$TESTDIR/L-hardlink-missing"
  from 4 "Dockerfile:2: ADD .T-symlink.tar.: entry .lnk/escaped-by-symlink.: its parent .lnk. is a symlink to .$outside." \
    "ADD of a local tar, entry under a symlink to outside: exit 4 naming archive and entry" 'FROM scratch\nADD T-symlink.tar /\n'
  from 4 "Dockerfile:2: ADD .T-hardlink-missing.tar.: entry .h.: hardlink target .not-in-the-archive. does not exist" \
    "ADD of a local tar, hardlink to a file not in it: exit 4" 'FROM scratch\nADD T-hardlink-missing.tar /\n'

  # 12b: obuild import checks hardlinks now, not the first RUN
  check_fail 9 "import .*I-hardlink.tar.: entry .h.: hardlink: entry .\.\./\.\./etc/passwd.: path contains \.\." \
    "[$m] import: hardlink to ../../etc/passwd: exit 9" ob "$m" import "$TESTDIR/I-hardlink.tar" imp:1
  check_fail 9 "import .*I-hardlink-missing.tar.: entry .h.: hardlink to .not-in-the-archive., which is no earlier file of the archive" \
    "[$m] import: hardlink to a path not in the tar: exit 9" ob "$m" import "$TESTDIR/I-hardlink-missing.tar" imp:1
  check_fail 9 "import .*I-hardlink-abs.tar.: entry .h.: hardlink to ./?etc/passwd., which is no earlier file of the archive" \
    "[$m] import: hardlink to /etc/passwd: exit 9" ob "$m" import "$TESTDIR/I-hardlink-abs.tar" imp:1

  # files that are no regular file, or under a symlink out of the archive
  for k in manifest-fifo manifest-zero; do
    bounded 9 "Dockerfile:1: FROM docker-archive:.*D-$k.tar: not a docker-archive: .manifest.json.: not a regular file\$" \
      "docker-archive whose manifest.json is a $k: exit 9" 'FROM docker-archive:%s\n' "$TESTDIR/D-$k.tar"
  done
  bounded 9 'Dockerfile:1: FROM docker-archive:.*D-layer-fifo.tar: .fifo.: not a regular file$' \
    "docker-archive whose layer is a FIFO: exit 9" 'FROM docker-archive:%s\n' "$TESTDIR/D-layer-fifo.tar"
  bounded 9 'Dockerfile:1: FROM docker-archive:.*D-layer-symdir.tar: path .d/zero. outside the archive$' \
    "docker-archive layer d/zero, d -> /dev: exit 9" 'FROM docker-archive:%s\n' "$TESTDIR/D-layer-symdir.tar"
  bounded 9 'Dockerfile:1: FROM docker-archive:.*D-config-symdir.tar: path .d/passwd. outside the archive$' \
    "docker-archive config d/passwd, d -> /etc: exit 9" 'FROM docker-archive:%s\n' "$TESTDIR/D-config-symdir.tar"
  for k in index-fifo index-zero; do
    bounded 9 "Dockerfile:1: FROM oci-archive:.*A-$k.tar: .*/index.json.: not a regular file\$" \
      "oci-archive whose index.json is a $k: exit 9" 'FROM oci-archive:%s\n' "$TESTDIR/A-$k.tar"
    bounded 9 "Dockerfile:1: FROM oci:.*L-$k:bad: .*L-$k/index.json.: not a regular file\$" \
      "layout whose index.json is a $k: exit 9" 'FROM oci:%s:bad\n' "$TESTDIR/L-$k"
  done
  bounded 9 "Dockerfile:1: FROM oci:.*L-index-sparse:bad: .*L-index-sparse/index.json.: 1073741824 bytes, more than the 67108864 allowed\$" \
    "layout whose index.json is a sparse 1 GiB file: exit 9" 'FROM oci:%s:bad\n' "$TESTDIR/L-index-sparse"
  bounded 9 'Dockerfile:1: FROM oci-archive:.*A-blob-fifo.tar: .*blob sha256:[0-9a-f]{64} in .*: not a regular file$' \
    "oci-archive whose manifest blob is a FIFO: exit 9" 'FROM oci-archive:%s\n' "$TESTDIR/A-blob-fifo.tar"
  bounded 9 'Dockerfile:1: FROM oci:.*L-blob-fifo:bad: .*blob sha256:[0-9a-f]{64} in .*L-blob-fifo.: not a regular file$' \
    "layout whose manifest blob is a FIFO: exit 9" 'FROM oci:%s:bad\n' "$TESTDIR/L-blob-fifo"
  check_fail 9 'A-blob-fifo.tar: .*blob sha256:[0-9a-f]{64} in .*: not a regular file$' \
    "[$m] load of that oci-archive: exit 9" as "$m" timeout 20 env OBUILD_ROOT="$(store "$m")" "$OB" load -i "$TESTDIR/A-blob-fifo.tar"

  # an external decompressor libarchive would run (the extractor has none)
  opath=$PATH
  PATH=$fakebin:$PATH
  from 9 "layer sha256:[0-9a-f]{64}: read layer: Unrecognized archive format" \
    "a base image whose layer is lrzip-compressed, COPY: exit 9" 'FROM oci:%s:bad\nCOPY f /f\n' "$TESTDIR/L-lrzip"
  check_fail 9 'lrzip\.tar\.lrz.: not a docker-archive or oci-archive: Unrecognized archive format' \
    "[$m] load of an lrzip-compressed file: exit 9" ob "$m" load -i "$TESTDIR/lrzip.tar.lrz"
  PATH=$opath
  check "[$m] ... the program lrzip was not run" test ! -e "$outside/lrzip-ran"

  snapshot "$m" >"$TESTDIR/after-$m"
  check_files "[$m] the store is as it was" "$TESTDIR/after-$m" "$TESTDIR/before-$m"
  check_eq "[$m] nothing was written outside" "$(ls -A "$outside")" ""

  # the layer is checked once, not 2000 times (16 GB to inflate and hash:
  # 19 s here)
  printf 'FROM oci:%s:bad\n' "$TESTDIR/L-dup" >"$ctx/Dockerfile"
  check "[$m] an image listing one layer 2000 times, in under 10 s" \
    as "$m" timeout 10 env OBUILD_ROOT="$(store "$m")" "$OB" build -q -t dup -f "$ctx/Dockerfile" "$ctx"
  # ... and a docker-archive's file once (8 GB to copy and hash: 11 s here)
  printf 'FROM docker-archive:%s\n' "$TESTDIR/D-dup.tar" >"$ctx/Dockerfile"
  check "[$m] a docker-archive naming one layer file 2000 times, in under 5 s" \
    as "$m" timeout 5 env OBUILD_ROOT="$(store "$m")" "$OB" build -q -t dup -f "$ctx/Dockerfile" "$ctx"

  # the store's own index.json, made hostile (a copy of the store)
  s=$(store "$m")
  cp "$s/oci/index.json" "$TESTDIR/index.json.$m"
  for change in index size-10 size-huge; do
    python3 - "$s/oci/index.json" "$change" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
for e in j["manifests"]:
    if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == "good:latest":
        if sys.argv[2] == "index":
            e["mediaType"] = "application/vnd.oci.image.index.v1+json"
        else:
            e["size"] = 10 if sys.argv[2] == "size-10" else 10 ** 15
json.dump(j, open(sys.argv[1], "w"))
EOF
    snapshot "$m" >"$TESTDIR/before-$m"
    case $change in
      index) pat='not an image index' ;;
      size-10) pat='manifest: blob sha256:[0-9a-f]{64}: size [0-9]+, the descriptor says 10$' ;;
      size-huge) pat='size 1000000000000000 is more than the 4194304 bytes allowed' ;;
    esac
    from 9 "Dockerfile:1: FROM good: store .*: good:latest: .*$pat" \
      "the store's index.json ($change): exit 9, no pull" 'FROM good\n'
    snapshot "$m" >"$TESTDIR/after-$m"
    check_files "[$m] ... the store is as it was" "$TESTDIR/after-$m" "$TESTDIR/before-$m"
    cp "$TESTDIR/index.json.$m" "$s/oci/index.json"
  done
done
# found by fuzz_image_json: an index whose second entry is broken, FROM
# the layout without a tag (a NULL list freed: segmentation fault)
bad=$TESTDIR/L-broken-entry
mkdir -p "$bad/blobs/sha256"
printf '{"imageLayoutVersion":"1.0.0"}' >"$bad/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"digest":"sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881","size":1},{}]}' >"$bad/index.json"
chmod -R a+rX "$bad"
for m in $MODES; do
  from 9 "Dockerfile:1: FROM oci:$bad: .*index.json" \
    "an index.json with a broken entry, FROM oci:DIR without a tag: exit 9" 'FROM oci:%s\n' "$bad"
done
# an archive naming one image 50 times was unpacked for each: 50 times its
# size in the scratch directory (the number of unpacks is counted by strace)
if command -v strace >/dev/null 2>&1; then
  for m in $MODES; do
    u=$(userdir "trace-$m" "$m")
    for a in A-many D-many; do
      # (LeakSanitizer cannot run under strace)
      check "[$m] load of $a (50 tags of one image)" as "$m" strace -f -qq -e trace=mkdir,mkdirat -o "$u/$a" \
        env ${ASAN_OPTIONS:+ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0} OBUILD_ROOT="$(store "$m")" "$OB" load -i "$TESTDIR/$a.tar"
      check_eq "[$m] ... the archive was unpacked once" "$(grep -c '/archive-[0-9]*"' "$u/$a")" 1
      check_eq "[$m] ... all 50 tags" "$(ob "$m" images -q | grep -c "^$(echo "$a" | tr '[:upper:]' '[:lower:]'):")" 50
    done
  done
else
  skip "load of an archive naming one image 50 times: no strace"
fi
# an archive listing 1001 images is refused before anything is read (each
# image was looked up in the list, verified and committed alone: 2000
# images took 84 s, the 40,000 a manifest.json holds hours); 1000 images
# load, with one write of the store's index
for m in $MODES; do
  for a in A-1001 D-1001; do
    snapshot "$m" >"$TESTDIR/before-$m"
    check_fail 9 "$a.tar\`: the archive lists 1001 images, more than the 1000 obuild loads at once" \
      "[$m] load of $a: exit 9" as "$m" timeout 20 env OBUILD_ROOT="$(store "$m")" "$OB" load -i "$TESTDIR/$a.tar"
    snapshot "$m" >"$TESTDIR/after-$m"
    check_files "[$m] ... the store is as it was" "$TESTDIR/after-$m" "$TESTDIR/before-$m"
  done
  snapshot "$m" >"$TESTDIR/before-$m"
  check_fail 9 "D-tags.tar\`: the archive names more than 10000 tags" \
    "[$m] load of one image under 10001 tags: exit 9" as "$m" timeout 20 env OBUILD_ROOT="$(store "$m")" "$OB" load -i "$TESTDIR/D-tags.tar"
  snapshot "$m" >"$TESTDIR/after-$m"
  check_files "[$m] ... the store is as it was" "$TESTDIR/after-$m" "$TESTDIR/before-$m"
done
m=${MODES%% *}
for a in A-1000 D-1000; do
  check "[$m] load of $a (1000 tags of one image)" \
    as "$m" timeout 120 env OBUILD_ROOT="$(store "$m")" "$OB" load -i "$TESTDIR/$a.tar"
  check_eq "[$m] ... all 1000 tags" "$(ob "$m" images -q | grep -c "^$(echo "$a" | tr '[:upper:]' '[:lower:]'):")" 1000
done
# a valid tarball is still imported
m=${MODES%% *}
check "[$m] import of a tarball with valid hardlinks" ob "$m" import -q "$TESTDIR/I-ok.tar" imp:ok
done_testing
