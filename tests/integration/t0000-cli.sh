#!/bin/sh
# Command line: help, version, usage errors and their exit codes.
. "$(dirname "$0")/lib.sh"

check "--help prints the commands" sh -c "'$OB' --help | grep -q 'build'"
check "--version prints the version" sh -c "'$OB' --version | grep -Eq '^obuild [0-9]+\.'"
check "build --help lists --tag" sh -c "'$OB' build --help | grep -q -- '--tag'"
check_fail 2 "unknown command" "unknown command exits 2" "$OB" frobnicate
check_fail 2 "unknown option .--bogus." "unknown build option exits 2" "$OB" build --bogus .
check_fail 2 "missing CONTEXT" "build without context exits 2" "$OB" build
check_fail 2 "invalid --isolation .bogus.: expected auto or container" "an unknown --isolation exits 2" \
  "$OB" build --isolation=bogus .
check_fail 2 "invalid --userns .bogus.: expected auto, subuid, single or none" "an unknown --userns exits 2" \
  "$OB" build --userns=bogus .
check_fail 2 'invalid tag "Bad:Name"' "upper-case tag name exits 2" "$OB" build -t Bad:Name .
check_fail 2 'invalid tag "x:-y"' "malformed tag exits 2" "$OB" build -t x:-y .
check_fail 2 "label .*KEY=VALUE" "--label without = exits 2" "$OB" build --label foo .
check_fail 2 "compression" "unknown --compression exits 2" "$OB" build --compression lz4 .
check_fail 2 "--userns" "bad --userns exits 2" env OBUILD_ROOT="$TESTDIR/s" "$OB" build --userns=maybe "$TESTDIR"
check_fail 4 "build context .*/nonexistent" "missing context dir exits 4" "$OB" build "$TESTDIR/nonexistent"
check_fail 2 "usage: obuild import" "import without arguments exits 2" "$OB" import
done_testing
