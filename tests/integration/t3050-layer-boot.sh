#!/bin/sh
# Unpacked layers are a cache written without fsync: RUN's overlay is
# volatile, and each unpacked layer carries the boot id that wrote it
# (layers/<mode>/<hex>.boot).  After a reboot (simulated with
# OBUILD_TEST_BOOT_ID) a layer directory from the earlier boot is unpacked
# again from its blob, so data a crash lost never reaches a build.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
printf 'FROM busybox\nRUN grep " / overlay .*volatile" /proc/mounts > /mounts && echo payload > /data\n' >"$ctx/Dockerfile.one"
printf 'FROM one\nRUN cat /data > /copied\n' >"$ctx/Dockerfile.two"
chmod -R a+rX "$ctx"
boot=$(cat /proc/sys/kernel/random/boot_id)
for m in $MODES; do
  import_busybox "$m"
  check "[$m] RUN on a volatile overlay root" ob "$m" build -q -t one -f "$ctx/Dockerfile.one" "$ctx"
  ldir=$(ls -d "$(store "$m")"/layers/*/ | head -n 1)
  n_dirs=$(find "$ldir" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | wc -l)
  n_marks=$(find "$ldir" -mindepth 1 -maxdepth 1 -name '*.boot' | wc -l)
  check_eq "[$m] every unpacked layer (base, RUN upper) has a boot mark" "$n_dirs:$n_marks" "2:2"
  check_eq "[$m] ... holding this boot's id" "$(cat "$ldir"/*.boot | sort -u)" "$boot"
  # ext4 places the directories made in tmp/ and layers/<mode>/ by its
  # top-level rule (+T), away from inodes earlier builds freed
  if flags=$(lsattr -d "$(store "$m")/tmp" "$ldir" 2>/dev/null); then
    check_eq "[$m] the store's tmp and layer directories carry ext4's top-directory flag" \
      "$(echo "$flags" | awk '$1 ~ /T/' | wc -l)" 2
  else
    skip "[$m] the store's file system has no inode flags (lsattr)"
  fi
  # the RUN's layer directory loses its data, as a crash before writeback would
  data=$(find "$ldir" -mindepth 2 -maxdepth 2 -name data | head -n 1)
  check "[$m] the RUN's upper became the layer's directory" test -n "$data"
  : >"$data"
  as "$m" env OBUILD_TEST_BOOT_ID=another-boot OBUILD_ROOT="$(store "$m")" "$OB" build -q --no-cache -t two -f "$ctx/Dockerfile.two" "$ctx" >/dev/null
  umoci_unpack "$(store_oci "$m")" two:latest "$TESTDIR/two-$m"
  check_eq "[$m] after a reboot the layer is unpacked again from its blob" "$(cat "$TESTDIR/two-$m/rootfs/copied")" payload
  check "[$m] ... and marked with the new boot" grep -qx another-boot "$(dirname "$data").boot"
  check_eq "[$m] ... as is every layer that build used" "$(grep -lx "$boot" "$ldir"/*.boot | wc -l)" 0
  orphan="$ldir$(printf '%064d' 0).boot"
  echo x >"$orphan"; [ "$m" != root ] && chown "$T_USER" "$orphan"
  ob "$m" prune >/dev/null 2>&1
  check "[$m] prune removes a boot mark without its layer" test ! -e "$orphan"
done

# after a reboot, builds that start together re-unpack the same layers
# without taking each other's fresh directories
m=$(echo $MODES | awk '{print $NF}')
for i in 1 2 3; do
  as "$m" env OBUILD_TEST_BOOT_ID=third-boot OBUILD_ROOT="$(store "$m")" "$OB" build -q --no-cache \
    -t "par$i" -f "$ctx/Dockerfile.two" "$ctx" >"$TESTDIR/par$i.out" 2>&1 &
done
wait
ok_n=0
for i in 1 2 3; do
  umoci_unpack "$(store_oci "$m")" "par$i:latest" "$TESTDIR/par$i" 2>/dev/null &&
    [ "$(cat "$TESTDIR/par$i/rootfs/copied" 2>/dev/null)" = payload ] && ok_n=$((ok_n + 1))
done
check_eq "[$m] three concurrent builds after a reboot all succeed with the right content" "$ok_n" 3
[ "$ok_n" = 3 ] || cat "$TESTDIR"/par*.out | diag
done_testing
