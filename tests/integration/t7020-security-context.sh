#!/bin/sh
# A hostile build context: .dockerignore patterns that make a backtracking
# matcher take exponential time, and symlinks that reach ignored files.
. "$(dirname "$0")/lib.sh"

# tob MODE ARGS...: obuild as MODE, killed after 60 s (a matcher gone
# exponential again fails the test instead of hanging the suite).
tob() {
  _m=$1; shift
  as "$_m" env OBUILD_ROOT="$(store "$_m")" timeout 60 "$OB" "$@"
}

a40=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
re=$TESTDIR/redos
mkdir -p "$re/sub"
printf '*a*a*a*a*a*a*a*a*a*a*b\n**/*a*a*a*a*a*a*a*a*a*a*b\n**/x**a**a**a**a**a**a**a**a**b\n' >"$re/.dockerignore"
echo keep >"$re/$a40"; echo gone >"$re/${a40}b"
echo keep >"$re/sub/$a40"; echo gone >"$re/sub/${a40}b"
printf 'FROM scratch\nCOPY . /x/\n' >"$re/Dockerfile"
chmod -R a+rX "$re"

for m in $MODES; do
  check "[$m] pathological .dockerignore patterns, a 40-'a' file name: the build ends" \
    tob "$m" build -q -t redos "$re"
  check "[$m] ... unpacks" umoci_unpack "$(store_oci "$m")" redos:latest "$TESTDIR/u-redos-$m"
  check_eq "[$m] ... the patterns still decide (b-suffixed names ignored)" \
    "$(cd "$TESTDIR/u-redos-$m/rootfs/x" && find . -type f | sort | tr '\n' ' ')" \
    "./.dockerignore ./Dockerfile ./$a40 ./sub/$a40 "
done
done_testing
