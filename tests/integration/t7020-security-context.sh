#!/bin/sh
# A hostile build context: .dockerignore patterns that make a backtracking
# matcher take exponential time, symlinks that reach ignored files, and a
# .dockerignore or Dockerfile that is a symlink out of the context.
. "$(dirname "$0")/lib.sh"

# tob MODE ARGS...: obuild as MODE, killed after 60 s (a matcher gone
# exponential again fails the test instead of hanging the suite).
tob() {
  _m=$1; shift
  as "$_m" env OBUILD_ROOT="$(store "$_m")" timeout -k 5 60 "$OB" "$@"
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

# ---- symlinks must not reach what .dockerignore leaves out ----
sc=$TESTDIR/symlinks
mkdir -p "$sc/d/sub" "$sc/hidden"
echo secret >"$sc/d/secret"; echo pub >"$sc/d/pub"; echo key >"$sc/d/sub/a.key"; echo txt >"$sc/d/sub/a.txt"
echo keep >"$sc/hidden/keep"; echo other >"$sc/hidden/other"
ln -s d "$sc/dd"; ln -s d/secret "$sc/link"; ln -s hidden "$sc/hh"
printf 'd/secret\n**/*.key\nhidden\n!hidden/keep\n' >"$sc/.dockerignore"
df() { printf 'FROM scratch\n%s\n' "$2" >"$sc/df.$1"; }
df copy 'COPY dd/secret /a'
df add 'ADD dd/secret /a'
df link 'COPY link /x'
df exc 'COPY hh/other /x'
df plain 'COPY d/secret /a'
cat >"$sc/df.ok" <<'DF'
FROM scratch
COPY dd/* /glob/
COPY dd /dir/
ADD dd /add/
COPY hh /hh/
COPY hh/keep /keep
COPY --exclude=pub dd /ex/
DF
cat >"$sc/df.mount" <<'DF'
FROM busybox
RUN --mount=type=bind,source=dd,target=/m ls -A /m > /dd.ls; ls -A /m/sub > /dd-sub.ls
RUN --mount=type=bind,target=/c sh -c 'cat /c/dd/secret /c/d/secret /c/link /c/hh/other; ls -A /c/dd; ls -A /c/hh' > /ctx.ls 2>/dev/null; true
RUN --mount=type=bind,source=hh/keep,target=/k cat /k > /keep
DF
printf 'FROM busybox\nRUN --mount=type=bind,source=link,target=/m cat /m\n' >"$sc/df.mount-link"
printf 'FROM busybox\nRUN --mount=type=bind,source=dd/secret,target=/m cat /m\n' >"$sc/df.mount-dd"
# ---- a symlinked .dockerignore is followed inside the context only ----
# COPY --exclude read it again on the host, through the symlink: a file
# outside the context became patterns (its lines quoted in their errors)
il=$TESTDIR/ignlink
mkdir -p "$il/out" "$il/in/sub"
printf 'host secret [\n' >"$TESTDIR/hostfile"
printf 'b\n' >"$il/in/sub/ign"
ln -s "$TESTDIR/hostfile" "$il/out/.dockerignore"
ln -s /sub/ign "$il/in/.dockerignore"
for d in out in; do
  echo a >"$il/$d/a"; echo b >"$il/$d/b"
  printf 'FROM scratch\nCOPY --exclude=a . /x/\n' >"$il/$d/Dockerfile"
done
# ... and so is a symlinked Dockerfile (it was read on the host: a file
# outside the context, its first word quoted in the parse error)
dl=$TESTDIR/dflink
mkdir -p "$dl/out" "$dl/in/d"
printf 'TOPSECRET-WORD and more\n' >"$TESTDIR/hostdf"
ln -s "$TESTDIR/hostdf" "$dl/out/Dockerfile"
printf 'FROM scratch\nCOPY d /d\n' >"$dl/in/d/Df"
ln -s /d/Df "$dl/in/Dockerfile"
chmod -R a+rX "$sc" "$il" "$dl" "$TESTDIR/hostfile" "$TESTDIR/hostdf"

for m in $MODES; do
  check_fail 4 '/df\.plain:2: COPY source not found in build context: d/secret$' "[$m] COPY of an ignored file: exit 4 (as before)" \
    ob "$m" build -f "$sc/df.plain" -t x "$sc"
  check_fail 4 '/df\.copy:2: COPY source not found in build context: dd/secret$' "[$m] COPY of an ignored file through a symlinked directory: exit 4" \
    ob "$m" build -f "$sc/df.copy" -t x "$sc"
  check_fail 4 '/df\.add:2: COPY source not found in build context: dd/secret$' "[$m] ADD of it: exit 4" \
    ob "$m" build -f "$sc/df.add" -t x "$sc"
  check_fail 4 '/df\.link:2: COPY source not found in build context: link$' "[$m] COPY of a symlink to an ignored file: exit 4" \
    ob "$m" build -f "$sc/df.link" -t x "$sc"
  check_fail 4 '/df\.exc:2: COPY source not found in build context: hh/other$' "[$m] ... also below an ignored directory with an exception" \
    ob "$m" build -f "$sc/df.exc" -t x "$sc"
  check "[$m] wildcards and directories through symlinks" ob "$m" build -q -f "$sc/df.ok" -t ok "$sc"
  check "[$m] ... unpacks" umoci_unpack "$(store_oci "$m")" ok:latest "$TESTDIR/u-ok-$m"
  r=$TESTDIR/u-ok-$m/rootfs
  check_eq "[$m] ... the ignored files are in none of them, the exception is" \
    "$(cd "$r" && find . ! -type d | sort | tr '\n' ' ')" \
    "./add/pub ./add/sub/a.txt ./dir/pub ./dir/sub/a.txt ./ex/sub/a.txt ./glob/a.txt ./glob/pub ./hh/keep ./keep "
  # what is ignored is not part of the cache key either
  echo changed >"$sc/d/secret"; echo changed >"$sc/hidden/other"
  ob "$m" build -f "$sc/df.ok" -t ok "$sc" >"$TESTDIR/ok-again-$m" 2>&1
  check_eq "[$m] ... changing the ignored files keeps every step cached" "$(grep -c 'CACHED' "$TESTDIR/ok-again-$m")" 6
  echo secret >"$sc/d/secret"; echo other >"$sc/hidden/other"

  import_busybox "$m"
  check "[$m] RUN --mount=type=bind of the context and of a symlinked directory" \
    ob "$m" build -q -f "$sc/df.mount" -t mnt "$sc"
  check "[$m] ... unpacks" umoci_unpack "$(store_oci "$m")" mnt:latest "$TESTDIR/u-mnt-$m"
  r=$TESTDIR/u-mnt-$m/rootfs
  check_eq "[$m] ... source=dd: the ignored files are not in the mount" "$(tr '\n' ' ' <"$r/dd.ls")$(tr '\n' ' ' <"$r/dd-sub.ls")" "pub sub a.txt "
  check_eq "[$m] ... the whole context: nothing ignored reachable, by any name" "$(tr '\n' ' ' <"$r/ctx.ls")" "pub sub keep "
  check_eq "[$m] ... the exception is" "$(cat "$r/keep")" keep
  check_fail 4 '/df\.mount-link:2: RUN --mount source=link: not found in the build context' \
    "[$m] RUN --mount source= a symlink to an ignored file: exit 4" ob "$m" build -f "$sc/df.mount-link" -t x "$sc"
  check_fail 4 '/df\.mount-dd:2: RUN --mount source=dd/secret: not found in the build context' \
    "[$m] RUN --mount source= an ignored file through a symlinked directory: exit 4" ob "$m" build -f "$sc/df.mount-dd" -t x "$sc"

  check "[$m] COPY --exclude, .dockerignore a symlink to a file outside the context: builds" \
    ob "$m" build -q -t ignout "$il/out"
  check_eq "[$m] ... that file is no .dockerignore (nothing but --exclude left out)" \
    "$(layer_listing "$(store_oci "$m")" ignout:latest | awk '{print $NF}' | tr '\n' ' ')" \
    "x x/.dockerignore x/Dockerfile x/b "
  check "[$m] COPY --exclude, .dockerignore a symlink inside the context (absolute)" \
    ob "$m" build -q -t ignin "$il/in"
  check_eq "[$m] ... its patterns apply with --exclude's" \
    "$(layer_listing "$(store_oci "$m")" ignin:latest | awk '{print $NF}' | tr '\n' ' ')" \
    "x x/.dockerignore x/Dockerfile x/sub x/sub/ign "
  check_fail 4 "no Dockerfile or Containerfile in \`$dl/out\`" \
    "[$m] Dockerfile a symlink to a file outside the context: exit 4, none found" ob "$m" build -t x "$dl/out"
  check_eq "[$m] ... nothing of that file printed" "$(grep -c TOPSECRET "$TESTDIR/.err" "$TESTDIR/.out" | grep -vc ':0$')" 0
  check "[$m] Dockerfile a symlink inside the context (absolute): builds" ob "$m" build -q -t dfin "$dl/in"
done

# A context directory 1,500 levels deep is copied (its digest walked with
# a small stack frame: 970 levels overflowed it); a 3,000-deep one holds a
# path longer than a layer can (exit 4, the path cut short).
deep=$TESTDIR/deep
mkdir -p "$deep/ok" "$deep/long"
if cc -static -O2 -o "$TESTDIR/deeptree" "$FIXTURES/deeptree.c" 2>"$TESTDIR/cc.err"; then
  "$TESTDIR/deeptree" "$deep/ok/t" 1500 && "$TESTDIR/deeptree" "$deep/long/t" 3000
else
  diag <"$TESTDIR/cc.err"
fi
printf 'FROM scratch\nCOPY t /t\n' >"$deep/ok/Dockerfile"
cp "$deep/ok/Dockerfile" "$deep/long/Dockerfile"
chmod -R a+rX "$deep"
bottom=t/$(printf 'a/%.0s' $(seq 1500))bottom
for m in $MODES; do
  check "[$m] COPY of a context directory 1500 levels deep" tob "$m" build -q -t deep "$deep/ok"
  check_eq "[$m] ... its layer holds the deepest file" \
    "$(layer_listing "$(store_oci "$m")" deep:latest 2>/dev/null | grep -c " $bottom\$")" 1
  check_fail 4 'Dockerfile:2: path `t/a/a/a/.*` is 4097 bytes long, more than a layer holds \(4095\)' \
    "[$m] 3000 levels: exit 4, the path cut short" tob "$m" build -q -t deep-long "$deep/long"
done
done_testing
