#!/bin/sh
# Bad input: one clear line naming the file/line/path, the documented exit
# code, and the store left exactly as it was.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx/sub"
echo ok >"$ctx/ok.txt"
echo x >"$ctx/a"; echo y >"$ctx/b"
ln -s /etc/passwd "$ctx/abs-link"
ln -s ../../../../../../etc/passwd "$ctx/sub/rel-link"
printf 'FROM scratch\nCOPY ok.txt /\n' >"$ctx/Dockerfile"
df() { printf '%b' "$2" >"$ctx/df.$1"; }
df bad-instr 'FROM scratch\nRUNN echo\n'
df missing 'FROM scratch\n\nCOPY nope.txt /\n'
df escape 'FROM scratch\nCOPY ../../../../../../../../../etc/passwd /\n'
df abs-link 'FROM scratch\nCOPY abs-link /x\n'
df rel-link 'FROM scratch\nCOPY sub/rel-link /x\n'
df multi 'FROM scratch\nCOPY a b /dest\n'
df chmod 'FROM scratch\nCOPY --chmod=999 a /\n'
df flag 'FROM scratch\nCOPY --frob=1 a /\n'
df nofrom 'COPY a /\n'
df json 'FROM scratch\nSHELL /bin/sh\n'
df heredoc 'FROM scratch\nCOPY <<EOF /x\nnever ends\n'
df noimage 'FROM no-such-image:1\n'
df fromvar 'FROM scratch\nCOPY --from=nostage a /\n'
chmod -R a+rX "$ctx"

snapshot() { (cd "$(store "$1")" && find oci -printf '%p %s\n' | sort && sha256sum oci/index.json; ls tmp); }
for m in $MODES; do
  check "[$m] a good build first" ob "$m" build -q -t good "$ctx"
  snapshot "$m" >"$TESTDIR/before-$m"
  check_fail 3 '/df\.bad-instr:2: unknown instruction "RUNN"' "[$m] unknown instruction: exit 3 with file:line" \
    ob "$m" build -f "$ctx/df.bad-instr" -t x "$ctx"
  check_fail 4 '/df\.missing:3: COPY source not found in build context: nope.txt' "[$m] missing COPY source: exit 4" \
    ob "$m" build -f "$ctx/df.missing" -t x "$ctx"
  # ".." stops at the context's root (BuildKit): /etc/passwd of the context
  check_fail 4 '/df\.escape:2: COPY source not found in build context: \.\./\.\./\.\./\.\./\.\./\.\./\.\./\.\./\.\./etc/passwd' "[$m] ../../etc/passwd stays in the context: exit 4" \
    ob "$m" build -f "$ctx/df.escape" -t x "$ctx"
  check_fail 4 '/df\.abs-link:2: .*abs-link.*escapes the build context' "[$m] absolute symlink out of the context: exit 4" \
    ob "$m" build -f "$ctx/df.abs-link" -t x "$ctx"
  check_fail 4 '/df\.rel-link:2: .*rel-link.*escapes the build context' "[$m] relative symlink out of the context: exit 4" \
    ob "$m" build -f "$ctx/df.rel-link" -t x "$ctx"
  check_fail 3 '/df\.multi:2: When using COPY with more than one source file' "[$m] several sources need dest/: exit 3" \
    ob "$m" build -f "$ctx/df.multi" -t x "$ctx"
  check_fail 3 '/df\.chmod:2: invalid --chmod value .999.' "[$m] bad --chmod: exit 3" \
    ob "$m" build -f "$ctx/df.chmod" -t x "$ctx"
  check_fail 3 '/df\.flag:2: .*unknown flag.*frob' "[$m] unknown instruction flag: exit 3" \
    ob "$m" build -f "$ctx/df.flag" -t x "$ctx"
  check_fail 3 'df\.nofrom' "[$m] no FROM: exit 3" ob "$m" build -f "$ctx/df.nofrom" -t x "$ctx"
  check_fail 3 '/df\.json:2: .*SHELL' "[$m] SHELL not JSON: exit 3" ob "$m" build -f "$ctx/df.json" -t x "$ctx"
  check_fail 3 '/df\.heredoc:2: .*(unterminated|heredoc)' "[$m] unterminated heredoc: exit 3" ob "$m" build -f "$ctx/df.heredoc" -t x "$ctx"
  check_fail 9 '/df\.noimage:1: FROM no-such-image:1: image .no-such-image:1. not found in the local store .* and --pull=never' \
    "[$m] unknown base image with --pull=never: exit 9" ob "$m" build --pull=never -f "$ctx/df.noimage" -t x "$ctx"
  check_fail 8 '/df\.noimage:1: FROM no-such-image:1: image .no-such-image:1. is not in the local store .*, and pulling it failed: .*cannot reach registry' \
    "[$m] unknown base image, registry unreachable: exit 8" ob "$m" build -f "$ctx/df.noimage" -t x "$ctx"
  check_fail 8 '/df\.fromvar:2: COPY --from=nostage: .*pulling it failed' "[$m] --from of neither a stage nor a reachable image: exit 8" \
    ob "$m" build -f "$ctx/df.fromvar" -t x "$ctx"
  check_fail 2 'no stage named .nope.' "[$m] --target of no stage: exit 2" ob "$m" build --target nope -t x "$ctx"
  snapshot "$m" >"$TESTDIR/after-$m"
  check_files "[$m] failed builds left the store exactly as it was" "$TESTDIR/after-$m" "$TESTDIR/before-$m"
done
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$TESTDIR/ro-store" && chmod 555 "$TESTDIR/ro-store"
  check_fail 6 "store: .*ro-store.*Permission denied" "unwritable store: exit 6 naming it" \
    as single env OBUILD_ROOT="$TESTDIR/ro-store/x" "$OB" build "$ctx"
  mkdir -p "$TESTDIR/ro-out" && chmod 555 "$TESTDIR/ro-out"
  check_fail 6 "output.*ro-out.*Permission denied" "unwritable --output: exit 6" \
    as single env OBUILD_ROOT="$(store single)" "$OB" build -o "$TESTDIR/ro-out/layout" "$ctx"
fi
done_testing
