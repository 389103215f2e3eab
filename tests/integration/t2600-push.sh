#!/bin/sh
# The layout obuild writes is what skopeo pushes: a real docker-registry on
# 127.0.0.1, push with skopeo, the registry's digest equals obuild's.
. "$(dirname "$0")/lib.sh"

command -v docker-registry >/dev/null || { skip "docker-registry not installed"; done_testing; }
start_registry
port=${R#*:}
check "registry answers on 127.0.0.1:$port" curl -sf "http://127.0.0.1:$port/v2/"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
echo hi >"$ctx/hi.txt"
printf 'FROM busybox\nCOPY hi.txt /hi.txt\nCMD ["cat", "/hi.txt"]\n' >"$ctx/Dockerfile"
chmod -R a+rX "$ctx"
for m in $MODES; do
  import_busybox "$m"
  d=$(ob "$m" build -q -t push-me:1 "$ctx")
  check "[$m] skopeo copy oci:STORE:push-me:1 to the registry" \
    skopeo copy -q --dest-tls-verify=false "oci:$(store_oci "$m"):push-me:1" "docker://127.0.0.1:$port/obuild/$m:1"
  got=$(skopeo inspect --tls-verify=false "docker://127.0.0.1:$port/obuild/$m:1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')
  check_eq "[$m] registry digest equals obuild's" "$got" "$d"
  check "[$m] skopeo copies it back" skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/obuild/$m:1" "oci:$TESTDIR/back-$m:x"
  check "[$m] the round-tripped image unpacks" umoci_unpack "$TESTDIR/back-$m" x "$TESTDIR/u-$m"
  check_eq "[$m] ... with our file" "$(cat "$TESTDIR/u-$m/rootfs/hi.txt")" hi

  # build --push: every -t to its registry, after the build
  d=$(ob "$m" build -q --push -t "127.0.0.1:$port/pushed/$m:a" -t "127.0.0.1:$port/pushed/$m:b" "$ctx")
  check_eq "[$m] build --push exits 0" "$?" 0
  for t in a b; do
    got=$(skopeo inspect --tls-verify=false "docker://127.0.0.1:$port/pushed/$m:$t" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')
    check_eq "[$m] build --push: tag $t in the registry has the built digest" "$got" "$d"
  done
  dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  check_fail 8 "^obuild: --push 127.0.0.1:$dead/nowhere:1: .*127.0.0.1:$dead" \
    "[$m] build --push to an unreachable registry: exit 8 naming it" \
    ob "$m" build --push -t "127.0.0.1:$dead/nowhere:1" "$ctx"
  check "[$m] ... and the image is in the store all the same" sh -c "ob_images=\$(env OBUILD_ROOT='$(store "$m")' '$OB' images 2>&1); echo \"\$ob_images\" | grep -q '127.0.0.1:$dead/nowhere'"
  check_fail 2 "--push needs at least one -t" "[$m] build --push without -t: exit 2" ob "$m" build --push "$ctx"
done
done_testing
