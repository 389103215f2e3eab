#!/bin/sh
# Build the example image: make a busybox base from Debian's busybox-static,
# import it, build examples/hello, and write the image to examples/out too.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
obuild=${OBUILD:-$top/obuild}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sh "$top/tests/fixtures/make-busybox-rootfs.sh" "$work/busybox.tar"
"$obuild" import -q "$work/busybox.tar" busybox:latest >/dev/null
"$obuild" build -t hello:1.0 -o "$top/examples/out" "$top/examples/hello"
echo "image written to $top/examples/out (tag hello:1.0); inspect it with:"
echo "  skopeo inspect oci:$top/examples/out:hello:1.0"
