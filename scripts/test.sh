#!/bin/sh
# The whole test suite on a fresh Debian 12 machine: install what is
# missing, build, run unit and integration tests.  Ends with
# "N passed, N failed, N skipped" and exits non-zero on any failure.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh --test
sh scripts/build.sh
make -j"$(nproc)" check TESTS= >/dev/null   # builds the unit test programs
sh scripts/asan-unit.sh                      # the ASan/UBSan leg of the unit tests
OBUILD_ASAN_UNIT_DIR=$PWD/build-asan OBUILD_ASAN_BIN=$PWD/build-asan/obuild exec make -s test
