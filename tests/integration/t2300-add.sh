#!/bin/sh
# ADD: local tar archives (plain, gzip, xz, zstd) are extracted; other files
# are copied like COPY.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
src=$TESTDIR/src
mkdir -p "$ctx" "$src/pkg/bin"
echo tool >"$src/pkg/bin/tool"
chmod 755 "$src/pkg/bin/tool"
ln -s tool "$src/pkg/bin/alias"
tar --numeric-owner --owner=0 --group=0 -C "$src" -cf "$ctx/plain.tar" pkg
tar --numeric-owner --owner=0 --group=0 -C "$src" -czf "$ctx/pkg.tgz" pkg
tar --numeric-owner --owner=0 --group=0 -C "$src" -cJf "$ctx/pkg.tar.xz" pkg
tar --numeric-owner --owner=0 --group=0 -C "$src" --zstd -cf "$ctx/pkg.tar.zst" pkg
echo "not an archive" >"$ctx/notes.gz"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
ADD plain.tar /plain
ADD pkg.tgz /gz/
ADD pkg.tar.xz /xz
ADD pkg.tar.zst /zst
ADD notes.gz /notes.gz
DF
chmod -R a+rX "$ctx"
for m in $MODES; do
  out=$(userdir "out-$m" "$m")
  check "[$m] ADD build" ob "$m" build -q -t add -o "$out" "$ctx"
  check "[$m] umoci unpacks it" umoci_unpack "$out" add:latest "$TESTDIR/b-$m"
  r=$TESTDIR/b-$m/rootfs
  for d in plain gz xz zst; do
    check_eq "[$m] $d archive extracted" "$(cat "$r/$d/pkg/bin/tool" 2>&1)" tool
    check_eq "[$m] $d archive keeps symlinks" "$(readlink "$r/$d/pkg/bin/alias")" tool
    check_eq "[$m] $d archive keeps modes" "$(stat -c %a "$r/$d/pkg/bin/tool")" 755
  done
  check_eq "[$m] a non-archive is copied as is" "$(cat "$r/notes.gz")" "not an archive"
done
done_testing
