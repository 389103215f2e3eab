#!/bin/sh
# Base images from anywhere: a real docker-registry on 127.0.0.1 (push with
# obuild, FROM a registry reference, pull by tag and by digest, a corrupted
# blob detected), FROM oci:, oci-archive:, docker-archive: written by skopeo,
# and hostile layouts refused with the store left as it was.
. "$(dirname "$0")/lib.sh"

command -v docker-registry >/dev/null || { skip "docker-registry not installed"; done_testing; }
start_registry

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
echo payload >"$ctx/payload"
printf 'FROM %s/base/busybox:1\nRUN echo built > /built\nCOPY payload /payload\n' "$R" >"$ctx/Dockerfile"
chmod -R a+rX "$ctx"
json_digest() { python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])'; }

for m in $MODES; do
  import_busybox "$m"
  d=$(ob "$m" push -q busybox:latest "$R/base/busybox:1")
  check_eq "[$m] obuild push: the registry has the manifest digest obuild reports" \
    "$(skopeo inspect --tls-verify=false "docker://$R/base/busybox:1" | json_digest)" "$d"
  check "[$m] push again (blobs already there)" ob "$m" push -q busybox:latest "$R/base/busybox:1"
  # a second store that has never seen the base
  fresh=$(store "$m")-fresh; mkdir -p "$fresh"; [ "$m" != root ] && chown "$T_USER" "$fresh"
  if as "$m" env OBUILD_ROOT="$fresh" "$OB" build -t from-reg "$ctx" >"$TESTDIR/o" 2>"$TESTDIR/e"; then
    ok "[$m] FROM a registry reference pulls the base and builds"
  else
    not_ok "[$m] FROM a registry reference pulls the base and builds"; diag <"$TESTDIR/e"
  fi
  check "[$m] the pull is reported" grep -q "pulled $R/base/busybox:1" "$TESTDIR/e"
  check "[$m] the pulled base is tagged in the store" sh -c "OBUILD_ROOT='$fresh' '$OB' images -q | grep -qx '$R/base/busybox:1'"
  man=$(skopeo inspect --raw "oci:$fresh/oci:from-reg:latest")
  check "[$m] base.name annotation" sh -c "echo '$man' | grep -q '\"org.opencontainers.image.base.name\":\"$R/base/busybox:1\"'"
  check "[$m] base.digest annotation" sh -c "echo '$man' | grep -q '\"org.opencontainers.image.base.digest\":\"$d\"'"
  check "[$m] result validates" oci_validate "$fresh/oci" from-reg:latest
  b=$(as "$m" env OBUILD_ROOT="$fresh" "$OB" push from-reg "$R/built/$m:1" 2>"$TESTDIR/pe")
  check "[$m] push mounts the base's blob from its repository (cross-repository mount)" grep -q "mounted from base/busybox" "$TESTDIR/pe"
  check_eq "[$m] pushed build: registry digest equals" "$(skopeo inspect --tls-verify=false "docker://$R/built/$m:1" | json_digest)" "$b"
  check "[$m] pull by digest" as "$m" env OBUILD_ROOT="$fresh" "$OB" pull -q "$R/base/busybox@$d"
  check_fail 9 "not found in the local store .* and --pull=never" "[$m] --pull=never without the image: exit 9" \
    ob "$m" build --pull=never -t x -f "$ctx/Dockerfile" "$ctx"
  check_fail 8 "manifest unknown" "[$m] pull of a missing tag: exit 8" ob "$m" pull "$R/base/busybox:nope"
done

# a corrupted blob on the registry is detected
layer=$(skopeo inspect --raw --tls-verify=false "docker://$R/base/busybox:1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"][7:])')
f=$(find "$TESTDIR/registry-data" -path "*blobs/sha256/*/$layer/data")
printf 'corrupt' | dd of="$f" bs=1 seek=100 conv=notrunc 2>/dev/null
m=$(echo $MODES | awk '{print $1}')
empty=$(store "$m")-empty; mkdir -p "$empty"; [ "$m" != root ] && chown "$T_USER" "$empty"
check_fail 9 "content has digest" "corrupted blob on the registry: exit 9" as "$m" env OBUILD_ROOT="$empty" "$OB" pull "$R/base/busybox:1"
check_eq "... nothing tagged" "$(OBUILD_ROOT="$empty" "$OB" images -q | wc -l)" 0

# oci:, oci-archive:, docker-archive: written by skopeo
src=$(store_oci "$m")
skopeo copy -q "oci:$src:busybox:latest" "oci:$TESTDIR/layout:bb" 
skopeo copy -q "oci:$src:busybox:latest" "oci-archive:$TESTDIR/bb-oci.tar:bb"
skopeo copy -q "oci:$src:busybox:latest" "docker-archive:$TESTDIR/bb-docker.tar:bb:latest"
chmod -R a+rX "$TESTDIR/layout" "$TESTDIR"/bb-*.tar
for ref in "oci:$TESTDIR/layout:bb" "oci-archive:$TESTDIR/bb-oci.tar:bb" "docker-archive:$TESTDIR/bb-docker.tar" "docker-archive:$TESTDIR/bb-docker.tar:bb:latest"; do
  printf 'FROM %s\nRUN test -x /bin/busybox && echo ok > /from-archive\n' "$ref" >"$ctx/Dockerfile.src"
  if ob "$m" build -q -t fromsrc -f "$ctx/Dockerfile.src" "$ctx" >/dev/null 2>"$TESTDIR/e"; then
    ok "[$m] FROM $ref"
  else
    not_ok "[$m] FROM $ref"; diag <"$TESTDIR/e"
  fi
  check "[$m] ... validates" oci_validate "$(store_oci "$m")" fromsrc:latest
done

# hostile and broken layouts: a clear error, exit 9, nothing outside, the store as it was
snapshot() { (cd "$(store "$1")" && find oci layers trees verified -printf '%p %s\n' 2>/dev/null | sort && sha256sum oci/index.json); }
snapshot "$m" >"$TESTDIR/before"
for kind in traversal symlink hardlink longname hugeheader digest diffid truncated; do
  python3 "$FIXTURES/make-hostile-layout.py" "$kind" "$TESTDIR/hostile-$kind"
  chmod -R a+rX "$TESTDIR/hostile-$kind"
  printf 'FROM oci:%s:bad\nRUN true\n' "$TESTDIR/hostile-$kind" >"$ctx/Dockerfile.$kind"
  check_fail 9 "Dockerfile.$kind:[12]: .*(\\.\\.|escape|outside|longer|digest|diff_id|read layer|gzip|Truncated|truncated|unexpected|header|large)" \
    "[$m] hostile layout ($kind): exit 9 with the reason" ob "$m" build -t x -f "$ctx/Dockerfile.$kind" "$ctx"
done
check "nothing escaped by traversal" test ! -e "$TESTDIR/escaped-by-traversal"
check "nothing escaped through a symlink" test ! -e /tmp/escaped-by-symlink
snapshot "$m" >"$TESTDIR/after"
check_files "[$m] hostile inputs left the store as it was" "$TESTDIR/after" "$TESTDIR/before"
# libcurl is opened the first time a registry or ADD <url> needs it: not
# linked, so no other build loads it, and its absence is one clear error
check "obuild is not linked against libcurl" sh -c "! ldd '$OB' | grep -q libcurl"
for m in $MODES; do
  nocurl() { as "$m" env OBUILD_TEST_LIBCURL=libcurl-missing.so.4 OBUILD_ROOT="$(store "$m")" "$OB" "$@"; }
  check_fail 1 "cannot load libcurl.*libcurl-missing.so.4" "[$m] pull without libcurl: exit 1 naming the library" \
    nocurl pull "$R/base/busybox:1"
  check_fail 1 "cannot load libcurl" "[$m] push without libcurl: exit 1" nocurl push busybox:latest "$R/base/nocurl:1"
  printf 'FROM busybox:latest\nADD http://%s/v2/ /v2.json\n' "$R" >"$ctx/Dockerfile.url"
  check_fail 1 "Dockerfile.url:2: .*cannot load libcurl" "[$m] ADD <url> without libcurl: exit 1 naming the line" \
    nocurl build -q -t nocurl -f "$ctx/Dockerfile.url" "$ctx"
  printf 'FROM busybox:latest\nRUN echo ok > /ok\nCOPY payload /payload\n' >"$ctx/Dockerfile.local"
  check "[$m] a build from the store needs no libcurl" nocurl build -q -t nocurl -f "$ctx/Dockerfile.local" "$ctx"
  check "[$m] ... and ADD <url> works with it" ob "$m" build -q -t withcurl -f "$ctx/Dockerfile.url" "$ctx"
done
done_testing
