#!/bin/sh
# Layer compression: gzip (parallel independent members, readable by gzip
# -t, Python's gzip and skopeo), zstd and none; deterministic output; a
# zstd image used as a base.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx/data"
head -c 3000000 /dev/urandom >"$ctx/data/random.bin"
seq 1 400000 >"$ctx/data/text.txt"
printf 'FROM scratch\nCOPY data/ /data/\n' >"$ctx/Dockerfile"
chmod -R a+rX "$ctx"
blob_of() { # LAYOUT TAG -> path of the first layer blob and its media type
  python3 - "$1" "$2" <<'PY'
import json, os, sys
l, tag = sys.argv[1], sys.argv[2]
idx = json.load(open(os.path.join(l, "index.json")))
d = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][-1]["digest"]
man = json.load(open(os.path.join(l, "blobs/sha256", d[7:])))
cfg = json.load(open(os.path.join(l, "blobs/sha256", man["config"]["digest"][7:])))
ly = man["layers"][0]
print(os.path.join(l, "blobs/sha256", ly["digest"][7:]), ly["mediaType"], cfg["rootfs"]["diff_ids"][0])
PY
}
m=$(echo $MODES | awk '{print $NF}')
for comp in gzip zstd none; do
  check "[$m] build with --compression=$comp" ob "$m" build -q --compression "$comp" -t "c-$comp" "$ctx"
  set -- $(blob_of "$(store_oci "$m")" "c-$comp:latest")
  blob=$1 mt=$2 diff=$3
  case $comp in
    gzip)
      check_eq "[$m] gzip media type" "$mt" application/vnd.oci.image.layer.v1.tar+gzip
      check "[$m] gzip -t accepts the blob" gzip -t "$blob"
      check "[$m] gzip output has several members (parallel)" test "$(python3 -c "import sys; d=open(sys.argv[1],'rb').read(); print(d.count(b'\x1f\x8b\x08\x00\x00\x00\x00\x00'))" "$blob")" -gt 1
      check_eq "[$m] Python's gzip gives the diff_id" "sha256:$(python3 -c "import gzip,hashlib,sys; print(hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())" "$blob")" "$diff"
      check_eq "[$m] zlib (gzip -dc) gives the diff_id" "sha256:$(gzip -dc "$blob" | sha256sum | cut -d' ' -f1)" "$diff"
      check "[$m] umoci unpacks it" umoci_unpack "$(store_oci "$m")" c-gzip:latest "$TESTDIR/u-gzip"
      check "[$m] ... intact" cmp "$TESTDIR/u-gzip/rootfs/data/random.bin" "$ctx/data/random.bin" ;;
    zstd)
      check_eq "[$m] zstd media type" "$mt" application/vnd.oci.image.layer.v1.tar+zstd
      check_eq "[$m] zstd -d gives the diff_id" "sha256:$(zstd -dc "$blob" | sha256sum | cut -d' ' -f1)" "$diff"
      check "[$m] skopeo reads the zstd image" skopeo inspect "oci:$(store_oci "$m"):c-zstd:latest" ;;
    none)
      check_eq "[$m] uncompressed media type" "$mt" application/vnd.oci.image.layer.v1.tar
      check_eq "[$m] blob is the tar (digest = diff_id)" "sha256:$(sha256sum "$blob" | cut -d' ' -f1)" "$diff"
      check "[$m] validates" oci_validate "$(store_oci "$m")" c-none:latest ;;
  esac
done
d1=$(SOURCE_DATE_EPOCH=1 ob "$m" build -q --no-cache -t det1 "$ctx")
d2=$(SOURCE_DATE_EPOCH=1 ob "$m" build -q --no-cache -t det2 "$ctx")
check_eq "[$m] parallel gzip is deterministic" "$d2" "$d1"
import_busybox "$m"
printf 'FROM busybox\nCOPY data/ /data/\n' >"$ctx/Dockerfile.z1"
printf 'FROM zbase\nRUN test -s /data/random.bin && echo ok > /ok\n' >"$ctx/Dockerfile.z2"; chmod a+r "$ctx"/Dockerfile.z*
check "[$m] a zstd image on busybox" ob "$m" build -q --compression zstd -t zbase -f "$ctx/Dockerfile.z1" "$ctx"
check "[$m] ... as a base for RUN (zstd layers unpacked)" ob "$m" build -q -t onzstd -f "$ctx/Dockerfile.z2" "$ctx"
check "[$m] --compression-level 1" ob "$m" build -q --no-cache --compression-level 1 -t lvl "$ctx"
# bases from a layout, in a fresh store: a gzip layer is checked against its
# diff_id while it is unpacked for RUN, a zstd or uncompressed one by reading
# it first; every one is checked, then RUN sees them all
check "[$m] an uncompressed image on busybox" ob "$m" build -q --compression none -t nbase -f "$ctx/Dockerfile.z1" "$ctx"
for b in zbase nbase; do
  skopeo copy -q "oci:$(store_oci "$m"):$b:latest" "oci:$TESTDIR/lay-$b:b"
  chmod -R a+rX "$TESTDIR/lay-$b"
  printf 'FROM oci:%s:b\nRUN test -s /data/random.bin && test -x /bin/busybox && echo ok > /ok\n' "$TESTDIR/lay-$b" >"$ctx/Dockerfile.lay-$b"
  chmod a+r "$ctx/Dockerfile.lay-$b"
done
for mm in $MODES; do
  for b in zbase nbase; do
    fresh=$(userdir "fresh-$mm-$b" "$mm")
    check "[$mm] FROM a layout of $b in a fresh store, and RUN" \
      as "$mm" env OBUILD_ROOT="$fresh" "$OB" build -q -t "on-$b" -f "$ctx/Dockerfile.lay-$b" "$ctx"
    check_eq "[$mm] ... both its layers checked" "$(ls "$fresh/verified" 2>/dev/null | wc -l)" 2
    check_eq "[$mm] ... and unpacked" "$(ls -d "$fresh"/layers/*/[0-9a-f]*[0-9a-f] 2>/dev/null | wc -l)" 3
  done
done
done_testing
