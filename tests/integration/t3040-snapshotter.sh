#!/bin/sh
# --snapshotter=copy (the fallback when overlayfs cannot be mounted) gives
# the same layers as overlay (built without the cache, which overlay filled):
# the same manifest digest with
# SOURCE_DATE_EPOCH; and the same file tree when a directory is replaced
# (overlay writes an opaque marker, copy one whiteout per old entry); and a
# file rewritten in place with its size and mtime kept (ctime and inode
# tell, not the metadata in the layers) is in the copy snapshotter's layer.
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
cat >"$ctx/Dockerfile.inplace" <<'DF'
FROM busybox
RUN cp -p /etc/passwd /keep && tr a-z A-Z </keep >/etc/passwd && touch -r /keep /etc/passwd
RUN echo aaaa >/f && touch -r /keep /f && ln -s f /l
RUN echo bbbb >/f && touch -r /keep /f && chmod 644 /keep
DF
chmod -R a+rX "$ctx"
for m in $MODES; do
  import_busybox "$m"
  d1=$(SOURCE_DATE_EPOCH=1700000000 ob "$m" build -q --snapshotter=overlay -t ov "$ctx")
  d2=$(SOURCE_DATE_EPOCH=1700000000 ob "$m" build -q --no-cache --snapshotter=copy -t cp "$ctx")
  check_eq "[$m] overlay and copy snapshotters: same manifest digest" "$d2" "$d1"
  check "[$m] copy-snapshotter image validates" oci_validate "$(store_oci "$m")" cp:latest
  check "[$m] copy: replace a directory" ob "$m" build -q --no-cache --snapshotter=copy -t rcp -f "$ctx/Dockerfile.replace" "$ctx"
  check "[$m] overlay: replace a directory" ob "$m" build -q --snapshotter=overlay -t rov -f "$ctx/Dockerfile.replace" "$ctx"
  umoci_unpack "$(store_oci "$m")" rcp:latest "$TESTDIR/rcp-$m"
  umoci_unpack "$(store_oci "$m")" rov:latest "$TESTDIR/rov-$m"
  tree_listing "$TESTDIR/rcp-$m/rootfs" >"$TESTDIR/t-rcp"
  tree_listing "$TESTDIR/rov-$m/rootfs" >"$TESTDIR/t-rov"
  check_files "[$m] ... the same file tree" "$TESTDIR/t-rcp" "$TESTDIR/t-rov"
  check_eq "[$m] ... holding only the new file" "$(ls "$TESTDIR/rcp-$m/rootfs/usr/lib")" only
  # rewritten in place, size and mtime as before: overlay copies the file
  # up, the copy snapshotter sees its ctime move
  d1=$(SOURCE_DATE_EPOCH=1700000000 ob "$m" build -q --snapshotter=overlay -t iov -f "$ctx/Dockerfile.inplace" "$ctx")
  d2=$(SOURCE_DATE_EPOCH=1700000000 ob "$m" build -q --no-cache --snapshotter=copy -t icp -f "$ctx/Dockerfile.inplace" "$ctx")
  check_eq "[$m] a file rewritten in place, its size and mtime kept: same digest with both snapshotters" "$d2" "$d1"
  umoci_unpack "$(store_oci "$m")" icp:latest "$TESTDIR/icp-$m"
  check_eq "[$m] ... the base's file rewritten in the first RUN" "$(head -n 1 "$TESTDIR/icp-$m/rootfs/etc/passwd" | cut -d: -f1)" ROOT
  check_eq "[$m] ... a file rewritten by a later RUN" "$(cat "$TESTDIR/icp-$m/rootfs/f")" bbbb
  check_eq "[$m] ... the last layer holds the rewritten file and the chmod'ed one" \
    "$(layer_listing "$(store_oci "$m")" icp:latest | awk '{print $NF}' | sort | tr '\n' ' ')" "f keep "
done
done_testing
