#!/bin/sh
# Quick start: install what is missing, build obuild, build the example image.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh --test
sh scripts/build.sh
exec sh examples/build-example.sh
