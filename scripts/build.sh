#!/bin/sh
# Configure (once) and build obuild in the source tree.  Quiet when all is
# well: what reaches the terminal is a warning or an error.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x configure ]; then
  # autoreconf reports each helper script it copies on stderr: not warnings
  out=$(autoreconf -fi 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
  printf '%s\n' "$out" | grep -v "^[^ ]*: installing '" >&2 || true
fi
[ -f Makefile ] || ./configure --enable-werror ${OBUILD_CONFIGURE_FLAGS:-} >/dev/null
make -s -j"$(nproc)" >/dev/null
