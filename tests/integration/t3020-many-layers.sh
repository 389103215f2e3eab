#!/bin/sh
# 150 RUN steps: the overlay of 150 lower directories mounts (mount options
# are limited to one page), and every step's change is its own layer.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
{ echo "FROM busybox"; i=1; while [ $i -le 150 ]; do echo "RUN echo $i > /f$i"; i=$((i + 1)); done; } >"$ctx/Dockerfile"
chmod -R a+rX "$ctx"
# one unprivileged mode is enough here (the mount code is the same)
m=$(echo $MODES | awk '{print $NF}')
import_busybox "$m"
check "[$m] 150 RUN steps build" ob "$m" build -q -t many "$ctx"
c=$TESTDIR/cfg
skopeo_config "$(store_oci "$m")" many:latest >"$c"
check_eq "[$m] 151 layers" "$(json_get "$c" 'len(j["rootfs"]["diff_ids"])')" 151
check "[$m] unpacks" umoci_unpack "$(store_oci "$m")" many:latest "$TESTDIR/u"
check_eq "[$m] last step's file" "$(cat "$TESTDIR/u/rootfs/f150")" 150
check_eq "[$m] first step's file" "$(cat "$TESTDIR/u/rootfs/f1")" 1
done_testing
