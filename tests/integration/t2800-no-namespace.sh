#!/bin/sh
# Builds without RUN need no namespace: as a user where user namespaces are
# forbidden (auto falls back; --userns=none chooses it) and as root without
# CAP_SYS_ADMIN (a container with Docker's defaults).  The image is the one
# the other modes build, owners included; a RUN step that must run exits 7
# with the reason, one whose result is cached needs no isolation.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
  skip "needs root (a user without namespaces, root without CAP_SYS_ADMIN)"; done_testing
fi
export SOURCE_DATE_EPOCH=1700000000
ctx=$TESTDIR/ctx
mkdir -p "$ctx"
echo hello >"$ctx/app.txt"
printf '#!/bin/sh\necho hi\n' >"$ctx/run.sh"
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox AS a
COPY --chown=1234:5678 app.txt /app/
COPY --chmod=0755 run.sh /usr/local/bin/
WORKDIR /srv/data
ENV A=b
LABEL x=y
CMD ["cat", "/app/app.txt"]
FROM scratch
COPY --from=a /bin/busybox /bin/busybox
COPY --from=a --chown=7:8 /app /app
COPY --from=a /usr/local/bin/run.sh /run.sh
DF
printf 'FROM busybox\nRUN echo ran > /ran\n' >"$ctx/Dockerfile.run"
chmod -R a+rX "$ctx"
uid=$(id -u "$T_USER")

# the reference: the same build in a namespace
ref_mode=subuid
import_busybox "$ref_mode"
ref_a=$(ob "$ref_mode" build -q -t ref-a --target a "$ctx")
ref=$(ob "$ref_mode" build -q -t ref "$ctx")
cache=$(userdir cache "$ref_mode")
check "the reference's RUN result goes to a cache layout" \
  ob "$ref_mode" build -q -t ref-run --cache-to "oci:$cache" -f "$ctx/Dockerfile.run" "$ctx"
chmod -R a+rX "$cache"
check_eq "the reference builds in $ref_mode mode" "$(echo "$ref" | cut -c1-7)" "sha256:"

# VARIANT: how obuild is run without a namespace
#   none     the user, --userns=none (OBUILD_USERNS=none)
#   nouserns the user where user.max_user_namespaces=0 (auto falls back)
#   nocap    root without CAP_SYS_ADMIN in its bounding set
run_variant() { # VARIANT STORE ARGS...
  _v=$1 _s=$2; shift 2
  case $_v in
    none) runuser -u "$T_USER" -- env HOME="/home/$T_USER" OBUILD_USERNS=none OBUILD_ROOT="$_s" \
            SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH "$OB" "$@" ;;
    nouserns) python3 "$FIXTURES/no-userns.py" "$uid" env HOME="/home/$T_USER" OBUILD_ROOT="$_s" \
            SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH "$OB" "$@" ;;
    nocap) setpriv --bounding-set -sys_admin -- env OBUILD_ROOT="$_s" "$OB" "$@" ;;
  esac
}

for v in none nouserns nocap; do
  st=$TESTDIR/store-$v
  mkdir -p "$st"
  [ "$v" != nocap ] && chown "$T_USER" "$st"
  check "[$v] import a base image" run_variant "$v" "$st" import --source-date-epoch 1700000000 "$(busybox_tar)" busybox:latest
  d_a=$(run_variant "$v" "$st" build -q -t app-a --target a "$ctx" 2>"$TESTDIR/$v.err")
  check_eq "[$v] a COPY-only stage builds, the same image as in a namespace" "$d_a" "$ref_a"
  head -5 "$TESTDIR/$v.err" | diag
  d=$(run_variant "$v" "$st" build -q -t app "$ctx" 2>"$TESTDIR/$v.err")
  check_eq "[$v] FROM scratch + COPY --from: the same image as in a namespace" "$d" "$ref"
  head -5 "$TESTDIR/$v.err" | diag
  layer_listing "$st/oci" app-a:latest 1 >"$TESTDIR/$v.l1"
  check_eq "[$v] COPY --chown=1234:5678 owners in the layer" \
    "$(awk '{print $3, $6}' "$TESTDIR/$v.l1" | tr '\n' ' ')" "1234:5678 app 1234:5678 app/app.txt "
  layer_listing "$st/oci" app:latest 1 >"$TESTDIR/$v.l2"
  check_eq "[$v] COPY --from --chown=7:8 owners in the layer" \
    "$(awk '{print $3, $6}' "$TESTDIR/$v.l2" | tr '\n' ' ')" "7:8 app 7:8 app/app.txt "
  check "[$v] oci-image-tool validates it" oci_validate "$st/oci" app:latest
  check "[$v] umoci unpacks it" umoci_unpack "$st/oci" app:latest "$TESTDIR/u-$v"
  check_eq "[$v] ... with its files" "$(cat "$TESTDIR/u-$v/rootfs/app/app.txt")" hello
  case $v in
    none) why='RUN: --userns=none: RUN steps need a user namespace$' ;;
    nouserns) why='RUN: RUN needs a user namespace: user namespaces are disabled .*; builds without RUN work here$' ;;
    nocap) why='RUN: RUN needs mount namespaces, and this environment refuses them to root .*; builds without RUN work here$' ;;
  esac
  check_fail 7 "Dockerfile.run:2: $why" "[$v] a RUN step that must run: exit 7 with the reason" \
    run_variant "$v" "$st" build -f "$ctx/Dockerfile.run" "$ctx"
  d=$(run_variant "$v" "$st" build -q --cache-from "oci:$cache" -f "$ctx/Dockerfile.run" "$ctx" 2>"$TESTDIR/$v.err")
  check_eq "[$v] ... a RUN step found in the cache needs no isolation" "$d" "$(ob "$ref_mode" build -q -f "$ctx/Dockerfile.run" "$ctx")"
  head -5 "$TESTDIR/$v.err" | diag
done
done_testing
