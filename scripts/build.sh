#!/bin/sh
# Configure (once) and build obuild in the source tree.
set -eu
cd "$(dirname "$0")/.."
[ -x configure ] || autoreconf -fi >/dev/null
[ -f Makefile ] || ./configure --enable-werror ${OBUILD_CONFIGURE_FLAGS:-} >/dev/null
make -j"$(nproc)" >/dev/null
