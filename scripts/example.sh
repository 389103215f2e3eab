#!/bin/sh
# Quick start: install what building needs, build obuild, build the example
# image (examples/hello) with it.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
sh scripts/deps.sh --example
sh scripts/build.sh
sh examples/build-example.sh
# obuild is not installed anywhere: say exactly how to call it
cat <<MSG

obuild is built at $top/obuild (not installed). Call it as
  $top/obuild images
or put it on your PATH for this shell:
  export PATH="$top:\$PATH"
(or install it: make install, as root, into /usr/local/bin)
MSG
