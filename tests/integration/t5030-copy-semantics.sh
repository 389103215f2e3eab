#!/bin/sh
# COPY/ADD semantics that follow BuildKit (issue 12): a symlink named as a
# source is followed, "." or an existing directory is a directory
# destination, COPY --from keeps the source's owners, and the directory
# COPY creates for a directory source takes that directory's mode.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx/dir" "$TESTDIR/own/out" "$TESTDIR/own/tree/sub"
echo real >"$ctx/real.txt"; ln -s real.txt "$ctx/link.txt"
echo a >"$ctx/a"; echo b >"$ctx/b"
echo one >"$ctx/n1.txt"; echo two >"$ctx/n2.txt"
echo d >"$ctx/dir/f"; ln -s f "$ctx/dir/inner"
mkdir "$TESTDIR/arc"; echo in-tar >"$TESTDIR/arc/member"
tar -C "$TESTDIR/arc" -czf "$ctx/arc.tar.gz" member; ln -s arc.tar.gz "$ctx/arclink"
# a base image whose files have owners other than root
echo o >"$TESTDIR/own/owned"; echo x >"$TESTDIR/own/out/x"; echo t >"$TESTDIR/own/tree/sub/t"
chmod 0750 "$TESTDIR/own/out"; chmod 0711 "$TESTDIR/own/tree/sub"
tar -C "$TESTDIR/own" --numeric-owner --owner=100 --group=200 -cf "$TESTDIR/own.tar" .
# COPY --parents with a /./ pivot and ** (BuildKit)
mkdir -p "$ctx/px/y/z" "$ctx/px/w"
echo 1 >"$ctx/px/y/a.txt"; echo 2 >"$ctx/px/y/z/b.txt"; echo 3 >"$ctx/px/w/c.md"
# an archive whose entries have owners 100:200, for ADD --chown
mkdir -p "$TESTDIR/arcown/d"; echo f >"$TESTDIR/arcown/d/f"; ln -s f "$TESTDIR/arcown/d/l"
tar -C "$TESTDIR/arcown" --numeric-owner --owner=100 --group=200 -cf "$ctx/arcown.tar" d
# .dockerignore as a symlink: followed inside the context only (BuildKit)
mkdir -p "$TESTDIR/ign-out" "$TESTDIR/ign-in"
echo a >"$TESTDIR/ign-rules"
for d in ign-out ign-in; do echo a >"$TESTDIR/$d/a"; echo b >"$TESTDIR/$d/b"; done
ln -s "$TESTDIR/ign-rules" "$TESTDIR/ign-out/.dockerignore"
echo b >"$TESTDIR/ign-in/rules"; ln -s /rules "$TESTDIR/ign-in/.dockerignore"
printf 'FROM scratch\nCOPY a* b* /c/\n' >"$TESTDIR/Dockerfile.ign"
chmod -R a+rX "$TESTDIR/ign-out" "$TESTDIR/ign-in" "$TESTDIR/ign-rules" "$TESTDIR/Dockerfile.ign"
chmod -R a+rX "$ctx"; chmod a+r "$TESTDIR/own.tar"
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox AS base
RUN mkdir /target && echo t >/target/f && ln -s f /target/lnk && ln -s /target /data && ln -s /target/f /abs
FROM own:latest AS owned
FROM busybox
RUN ln -s /symlink /src && ln -s /gone/deeper /src2 && ln -s /filetarget /src3
COPY a /src/
COPY b /src2/
COPY a /src3
WORKDIR /w
COPY --from=base /bin/ls /test/
COPY --from=base /data /data
COPY --from=base /abs /abs
COPY link.txt /ctx/
COPY dir /cdir/
ADD arclink /added/
COPY a b .
COPY a b /w
COPY n*.txt /testdir
COPY ../a ../../dir/../b /up/
# (new steps above: the checks below read the last five layers)
COPY --from=owned /owned /owned
COPY --from=owned --chown=7:8 /owned /owned2
COPY --from=owned /tree /tree
COPY --from=owned /out/ /app/out/
COPY --from=owned --chown=7:8 /out /app/out2
DF
# ADD --unpack of a local and a downloaded archive: a local web server
mkdir -p "$TESTDIR/www"; cp "$ctx/arcown.tar" "$TESTDIR/www/"
start_http "$TESTDIR/www"
trap 'kill $srv 2>/dev/null' EXIT
cat >"$ctx/Dockerfile.unpack" <<DF
FROM scratch
ADD --unpack=false arcown.tar /raw/
ADD --unpack http://127.0.0.1:$port/arcown.tar /urlx/
ADD http://127.0.0.1:$port/arcown.tar /urlraw/
DF
# more cases, one step a layer (layer 0 is busybox's), checked by index
cat >"$ctx/Dockerfile.more" <<'DF'
FROM busybox
ADD --chown=7:8 arcown.tar /tarown/
ADD arcown.tar /tarkeep/
COPY --parents px/./**/*.txt /par/
COPY --parents px/./y **/*.md /par2/
COPY <<$EOF <<"Q" /hd/
dollar
$EOF
quoted $HOME
Q
DF
printf 'FROM scratch\nCOPY a b /nodir\n' >"$ctx/Dockerfile.nodir"
printf 'FROM busybox\nRUN ln -s /gone/x /src4\nCOPY a /src4\n' >"$ctx/Dockerfile.dangle"
printf 'FROM own:latest AS o\nFROM scratch\nCOPY --from=o /owned /tree /\n' >"$ctx/Dockerfile.norun"
for m in $MODES; do
  import_busybox "$m"
  check "[$m] import a base image with owners 100:200" ob "$m" import "$TESTDIR/own.tar" own:latest
  check "[$m] build" ob "$m" build -q -t sem "$ctx"
  check "[$m] ... unpacks" umoci_unpack "$(store_oci "$m")" sem:latest "$TESTDIR/u-$m"
  r=$TESTDIR/u-$m/rootfs
  check_eq "[$m] COPY of a symlink to busybox copies the file" "$(stat -c %F "$r/test/ls")" "regular file"
  check_eq "[$m] ... its content" "$(cmp -s "$r/test/ls" "$r/bin/busybox" && echo same)" same
  check_eq "[$m] COPY of an absolute symlink to a directory copies the directory" "$(stat -c %F "$r/data"):$(cat "$r/data/f")" "directory:t"
  check_eq "[$m] ... a symlink inside it stays a link" "$(readlink "$r/data/lnk")" f
  check_eq "[$m] COPY of an absolute symlink to a file copies the file" "$(stat -c %F "$r/abs"):$(cat "$r/abs")" "regular file:t"
  check_eq "[$m] COPY of a context symlink copies its target under the link's name" "$(stat -c %F "$r/ctx/link.txt"):$(cat "$r/ctx/link.txt")" "regular file:real"
  check_eq "[$m] a symlink inside a copied context directory stays a link" "$(readlink "$r/cdir/inner")" f
  check_eq "[$m] ADD of a context symlink to an archive extracts it" "$(cat "$r/added/member")" in-tar
  check_eq "[$m] COPY to a dangling symlink writes through it" "$(readlink "$r/src"):$(cat "$r/symlink/a")" "/symlink:a"
  check_eq "[$m] COPY a /src3 to a dangling symlink without /: the file at its target, the link kept (BuildKit)" \
    "$(readlink "$r/src3"):$(stat -c %F "$r/filetarget"):$(cat "$r/filetarget")" "/filetarget:regular file:a"
  check_eq "[$m] ... creating the missing directories" "$(readlink "$r/src2"):$(cat "$r/gone/deeper/b")" "/gone/deeper:b"
  check_eq "[$m] COPY n*.txt /testdir with several matches: a file, the last match" "$(stat -c %F "$r/testdir"):$(cat "$r/testdir")" "regular file:two"
  check_eq "[$m] COPY a b . (WORKDIR) and COPY a b /w (existing directory)" "$(cat "$r/w/a" "$r/w/b")" "a
b"
  check_eq "[$m] COPY --from keeps the owner of a file" "$(layer_listing "$(store_oci "$m")" sem:latest -5 | awk '$NF=="owned"{print $3}')" 100:200
  check_eq "[$m] COPY --from --chown overrides it" "$(layer_listing "$(store_oci "$m")" sem:latest -4 | awk '$NF=="owned2"{print $3}')" 7:8
  check_eq "[$m] COPY --from keeps owners and modes in a directory" \
    "$(layer_listing "$(store_oci "$m")" sem:latest -3 | awk '{print $1, $2, $3, $NF}' | sort | tr '\n' ' ')" \
    "d 0711 100:200 tree/sub d 0755 100:200 tree f 0644 100:200 tree/sub/t "
  check_eq "[$m] the directory COPY creates takes the source directory's mode and owner" \
    "$(layer_listing "$(store_oci "$m")" sem:latest -2 | awk '$NF=="app/out"{print $2, $3}')" "0750 100:200"
  check_eq "[$m] ... but --chown's owner" \
    "$(layer_listing "$(store_oci "$m")" sem:latest -1 | awk '$NF=="app/out2"{print $2, $3}')" "0750 7:8"
  check_eq "[$m] COPY ../a at the context's root is COPY a (BuildKit)" "$(cat "$r/up/a" "$r/up/b")" "a
b"
  if ob "$m" build -q -t more -f "$ctx/Dockerfile.more" "$ctx" >"$TESTDIR/out" 2>&1; then
    ok "[$m] build Dockerfile.more"
    # (single mode records a symlink's owner on its directory)
    want="d 7:8 tarown d 7:8 tarown/d f 7:8 tarown/d/f l 7:8 tarown/d/l "
    check_eq "[$m] ADD --chown of a local archive: every extracted entry and the created directory take the owner" \
      "$(layer_listing "$(store_oci "$m")" more:latest 1 | awk '{print $1, $3, $NF}' | sort | tr '\n' ' ')" "$want"
    check_eq "[$m] ADD of an archive without --chown keeps its owners" \
      "$(layer_listing "$(store_oci "$m")" more:latest 2 | awk '$NF ~ /tarkeep\/d/ {print $1, $3, $NF}' | sort | tr '\n' ' ')" \
      "d 100:200 tarkeep/d f 100:200 tarkeep/d/f l 100:200 tarkeep/d/l "
    umoci_unpack "$(store_oci "$m")" more:latest "$TESTDIR/m-$m"
    check_eq "[$m] COPY --parents px/./**/*.txt: paths from the pivot, ** at any depth" \
      "$(cd "$TESTDIR/m-$m/rootfs/par" && find . -type f | sort | tr '\n' ' ')" "./y/a.txt ./y/z/b.txt "
    check_eq "[$m] COPY --parents px/./y **/*.md: a directory from the pivot, ** from the root" \
      "$(cd "$TESTDIR/m-$m/rootfs/par2" && find . -type f | sort | tr '\n' ' ')" "./px/w/c.md ./y/a.txt ./y/z/b.txt "
    check_eq "[$m] COPY <<\$EOF: the heredoc named \$EOF (BuildKit), and <<\"Q\" not expanded" \
      "$(cd "$TESTDIR/m-$m/rootfs/hd" && ls -A && cat ./\$EOF Q)" "\$EOF
Q
dollar
quoted \$HOME"
  else
    not_ok "[$m] build Dockerfile.more"; diag <"$TESTDIR/out"
  fi
  if ob "$m" build -q -t ign -f "$TESTDIR/Dockerfile.ign" "$TESTDIR/ign-out" >"$TESTDIR/out" 2>&1; then
    check_eq "[$m] a .dockerignore symlink leading outside the context is no .dockerignore" \
      "$(layer_listing "$(store_oci "$m")" ign:latest | awk '{print $NF}' | sort | tr '\n' ' ')" "c c/a c/b "
  else
    not_ok "[$m] a .dockerignore symlink leading outside the context"; diag <"$TESTDIR/out"
  fi
  if ob "$m" build -q -t ign2 -f "$TESTDIR/Dockerfile.ign" "$TESTDIR/ign-in" >"$TESTDIR/out" 2>&1; then
    check_eq "[$m] a .dockerignore symlink to /rules reads the context's rules" \
      "$(layer_listing "$(store_oci "$m")" ign2:latest | awk '{print $NF}' | sort | tr '\n' ' ')" "c c/a "
  else
    not_ok "[$m] a .dockerignore symlink to /rules"; diag <"$TESTDIR/out"
  fi
  if ob "$m" build -q -t unpack -f "$ctx/Dockerfile.unpack" "$ctx" >"$TESTDIR/out" 2>&1; then
    l=$(store_oci "$m")
    check_eq "[$m] ADD --unpack=false of a local archive copies the file" "$(layer_listing "$l" unpack:latest 0 | awk '{print $1, $NF}' | tr '\n' ' ')" "d raw f raw/arcown.tar "
    check_eq "[$m] ADD --unpack of a downloaded archive extracts it" "$(layer_listing "$l" unpack:latest 1 | awk '{print $1, $NF}' | sort | tr '\n' ' ')" "d urlx d urlx/d f urlx/d/f l urlx/d/l "
    check_eq "[$m] ADD of a downloaded archive without --unpack copies the file" "$(layer_listing "$l" unpack:latest 2 | awk '{print $1, $NF}' | tr '\n' ' ')" "d urlraw f urlraw/arcown.tar "
  else
    not_ok "[$m] ADD --unpack"; diag <"$TESTDIR/out"
  fi
  check_fail 4 'Dockerfile.dangle:3: COPY to /src4: the symlink leads to /gone/x, in a directory that does not exist$' \
    "[$m] COPY to a dangling symlink whose target's directory is missing: exit 4 (BuildKit fails too)" \
    ob "$m" build -f "$ctx/Dockerfile.dangle" "$ctx"
  check_fail 3 'Dockerfile.nodir:2: When using COPY with more than one source file, the destination must be a directory and end with a /' \
    "[$m] several sources to a destination that is not a directory: exit 3" ob "$m" build -f "$ctx/Dockerfile.nodir" "$ctx"
done
# without any user namespace (--userns=none) the owners are kept too
if [ "$(id -u)" -eq 0 ]; then
  none() { runuser -u "$T_USER" -- env HOME="/home/$T_USER" OBUILD_USERNS=none OBUILD_ROOT="$(store none)" "$OB" "$@"; }
  check "[none] import" none import "$TESTDIR/own.tar" own:latest
  check "[none] COPY --from without a namespace" none build -q -t norun -f "$ctx/Dockerfile.norun" "$ctx"
  check_eq "[none] ... keeps the owners" \
    "$(layer_listing "$(store_oci none)" norun:latest | awk '{print $1, $3, $NF}' | sort | tr '\n' ' ')" \
    "d 100:200 sub f 100:200 owned f 100:200 sub/t "
else
  skip "[none] needs root to run as the unprivileged user"
fi
done_testing
