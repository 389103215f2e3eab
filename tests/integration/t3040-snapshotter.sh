#!/bin/sh
# --snapshotter=copy (the fallback when overlayfs cannot be mounted) gives
# the same layers as overlay: the same manifest digest with
# SOURCE_DATE_EPOCH; and the same file tree when a directory is replaced
# (overlay writes an opaque marker, copy one whiteout per old entry).
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox
RUN echo hello > /hello.txt && mkdir -p /opt/x && echo t > /opt/x/tool && chmod 4755 /opt/x/tool && ln -s hello.txt /link && ln /hello.txt /hard
COPY Dockerfile /opt/x/
RUN rm /bin/yes && rm -r /var/lib && echo changed >> /etc/group && rm /opt/x/Dockerfile
RUN true
USER 1000
RUN echo mine > /home/app/mine
DF
cat >"$ctx/Dockerfile.replace" <<'DF'
FROM busybox
RUN rm -rf /usr/lib && mkdir /usr/lib && echo new > /usr/lib/only && chmod 700 /root
DF
chmod -R a+rX "$ctx"
for m in $MODES; do
  import_busybox "$m"
  d1=$(SOURCE_DATE_EPOCH=1700000000 ob "$m" build -q --snapshotter=overlay -t ov "$ctx")
  d2=$(SOURCE_DATE_EPOCH=1700000000 ob "$m" build -q --snapshotter=copy -t cp "$ctx")
  check_eq "[$m] overlay and copy snapshotters: same manifest digest" "$d2" "$d1"
  check "[$m] copy-snapshotter image validates" oci_validate "$(store_oci "$m")" cp:latest
  check "[$m] copy: replace a directory" ob "$m" build -q --snapshotter=copy -t rcp -f "$ctx/Dockerfile.replace" "$ctx"
  check "[$m] overlay: replace a directory" ob "$m" build -q --snapshotter=overlay -t rov -f "$ctx/Dockerfile.replace" "$ctx"
  umoci_unpack "$(store_oci "$m")" rcp:latest "$TESTDIR/rcp-$m"
  umoci_unpack "$(store_oci "$m")" rov:latest "$TESTDIR/rov-$m"
  tree_listing "$TESTDIR/rcp-$m/rootfs" >"$TESTDIR/t-rcp"
  tree_listing "$TESTDIR/rov-$m/rootfs" >"$TESTDIR/t-rov"
  check_files "[$m] ... the same file tree" "$TESTDIR/t-rcp" "$TESTDIR/t-rov"
  check_eq "[$m] ... holding only the new file" "$(ls "$TESTDIR/rcp-$m/rootfs/usr/lib")" only
done
done_testing
