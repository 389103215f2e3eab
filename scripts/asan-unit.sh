#!/bin/sh
# Build the unit tests and an obuild binary with AddressSanitizer and UBSan
# into build-asan/ (separate from the main build) — the sanitizer leg of the
# suite: tests/run.sh runs the unit tests and the integration tests with them.
set -eu
cd "$(dirname "$0")/.."
out=build-asan
mkdir -p "$out"
CFLAGS="-g -O1 -std=gnu11 -Iinclude -I. -include config.h -Wall -Wextra -Werror -Wno-unused-parameter -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
LIBS="$(pkg-config --libs libarchive libcrypto jansson libseccomp zlib libzstd libdeflate) -lisal -lpthread"
objs=""
for c in src/lib/*.c; do
  o=$out/$(basename "$c" .c).o
  if [ ! -f "$o" ] || [ "$c" -nt "$o" ] || [ -n "$(find include src/lib -name '*.h' -newer "$o" 2>/dev/null | head -1)" ]; then
    # shellcheck disable=SC2086
    gcc $CFLAGS -c "$c" -o "$o" &
  fi
  objs="$objs $o"
done
wait
for t in tests/unit/test_*.c; do
  b=$out/$(basename "$t" .c)
  # shellcheck disable=SC2086
  gcc $CFLAGS "$t" $objs -o "$b" $LIBS
done
# shellcheck disable=SC2086
gcc $CFLAGS src/*.c $objs -o "$out/obuild" $LIBS
