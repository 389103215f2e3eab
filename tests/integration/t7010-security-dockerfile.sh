#!/bin/sh
# Hostile Dockerfiles: deep nesting, exponential expansion, huge numbers of
# instructions, NUL bytes and invalid UTF-8, out-of-range ids, heredoc
# names that are paths, mount points made or removed through symlinks,
# a stage's symlinks followed on the host.  Each one
# ends with the documented exit code and one line naming file:line (never a
# crash, a hang, an exhausted memory or a silently changed instruction), and
# the store is left as it was.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
echo x >"$ctx/a"
python3 - "$ctx" <<'PY'
import sys
d = sys.argv[1]
def w(name, data):
    open(d + "/df." + name, "wb").write(data if isinstance(data, bytes) else data.encode())
# ${a:-${a:-...}} 30,000 deep: overflowed the lexer's stack
w("nest", "FROM scratch\nENV x=" + "${a:-" * 30000 + "y" + "}" * 30000 + "\n")
# the same in double quotes inside the nesting
w("nestq", "FROM scratch\nLABEL x=" + "\"${a:-" * 20000 + "y" + "}\"" * 20000 + "\n")
# 64 levels are fine
w("nest64", "FROM scratch\nENV x=" + "${a:-" * 64 + "deep" + "}" * 64 + "\n")
# 1 KiB doubled 40 times: the 11th doubling passes 1 MiB
w("double", "FROM scratch\nENV x=" + "A" * 1024 + "\n" + "ENV x=$x$x\n" * 40)
# many 1 MiB values under different names: the configuration passes 16 MiB
w("total", "FROM scratch\nENV a=" + "A" * 1024 + "\nENV b=" + "$a" * 1024 + "\n"
  + "".join("ENV c%d=$b\n" % i for i in range(40)))
# a stage copied by FROM <stage> again and again
w("chain", "FROM scratch AS s0\nENV a=" + "A" * 1024 + "\nENV b=" + "$a" * 1024 + "\n"
  + "ENV c=$b d=$b\n" + "".join("FROM s%d AS s%d\n" % (i, i + 1) for i in range(40)))
# pattern operators on a 1 MiB value: a trim is linear, a replacement
# scanning the rest from every position is bounded
w("pattern", "FROM scratch\nENV a=" + "A" * 1024 + "\nENV b=" + "$a" * 1024 + "\n"
  + "ENV c=${b##*B}\nENV d=${b//*a*a*a/x}\n")
# 100,000 ENV instructions (quadratic before)
w("manyenv", "FROM scratch\n" + "".join("ENV v%d=%d\n" % (i, i) for i in range(100000))
  + "ENV last=$v5-$v99999\n")
# 100,000 stages: each FROM looked its name up among all the stages before
# it, and each AS name was compared with all before it (minutes)
w("stages", "".join("FROM scratch AS s%d\nENV n=%d\n" % (i, i) for i in range(100000)) + "FROM S54321\n")
# 50,000 stages of one name: FROM takes the latest, each repeat is warned of
w("dupstages", "".join("FROM scratch AS dup\nENV n=%d\n" % i for i in range(50000)) + "FROM dup\n")
# RUN in exec form with 100,000 arguments (quadratic before)
w("runargs", 'FROM busybox:latest\nRUN ["/bin/sh", "-c", "echo $# >/n", "x", '
  + ", ".join('"a"' for _ in range(100000)) + "]\n")
# 40,000 ARGs in a RUN's environment (quadratic before), and ARGs given
# again: the last declaration with a value counts (BuildKit), `ARG u`
# keeps u=1
w("runenv", "FROM busybox:latest\n" + "".join("ARG a%d=%d\n" % (i, i) for i in range(40000))
  + "ARG r=1\nARG r=2\nARG u=1\nARG u\n"
  + "RUN env | grep -c '^a[0-9]*=' >/n && echo \"$r-${u-unset}-$a39999\" >>/n\n")
# one RUN with 257 --mount options (100,000 took minutes to mount and undo)
w("mounts", "FROM busybox:latest\nRUN " + " ".join("--mount=type=tmpfs,target=/t%d" % i for i in range(257)) + " true\n")
w("mounts256", "FROM busybox:latest\nRUN " + " ".join("--mount=type=tmpfs,target=/t%d" % i for i in range(256))
  + " test -d /t255\n")
# terminal escape sequences in a name the error quotes (an OSC setting the
# window title): shown as \xNN, never sent to the terminal as such
w("escape", "FROM scratch\nCOPY \"\x1b]0;t\x07x\" /x\n")
# NUL bytes and invalid UTF-8
w("nul", b"FROM scratch\nRUN echo a\0b\n")
w("nulcomment", b"FROM scratch\n# a\0b\nENV a=b\n")
w("label", b"FROM scratch\nLABEL k=\xff\n")
w("cmd", b"FROM scratch\nCMD [\"\xff\"]\n")
w("cont", b"FROM scratch\nENV a=b \\\n  c=\xc3\x28\n")
w("heredoc", b"FROM scratch\nCOPY <<EOF /x\nab\xffc\nEOF\n")
w("bom", b"\xef\xbb\xbfFROM scratch\n# latin-1 in a comment: \xe9\nLABEL k=\xc3\xa9\n")
w("arg", "FROM scratch\nARG v\nLABEL k=$v\n")
# ${x#?} takes one byte, half of the character
w("split", "FROM scratch\nENV x=\u00e9\nLABEL k=${x#?}\n")
# ids beyond 32 bits, and -1 (4294967295) which is no id
w("chown", "FROM scratch\nCOPY --chown=4294967295:4294967296 a /x\n")
w("chown2", "FROM scratch\nCOPY --chown=1:99999999999999999999 a /x\n")
w("chown3", "FROM scratch\nCOPY --chown=4294967296 a /x\n")
w("user", "FROM busybox:latest\nUSER 4294967296\nRUN true\n")
w("chownok", "FROM scratch\nCOPY --chown=4294967294:7 a /x\n")
PY
# a heredoc's name is a file name: a path was written (and is now removed)
# relative to the build's scratch directory, anywhere the user may write
mkdir -p "$TESTDIR/escape"
chmod 1777 "$TESTDIR/escape"
up=$(printf '../%.0s' $(seq 40))
printf 'FROM scratch\nCOPY <<%s%s/evil /x\nescaped\n%s%s/evil\n' "$up" "${TESTDIR#/}/escape" "$up" "${TESTDIR#/}/escape" >"$ctx/df.hdpath"
printf 'FROM scratch\nCOPY <<a/b /x/\nab\na/b\n' >"$ctx/df.hdslash"
printf 'FROM scratch\nADD <<.. /x/\nab\n..\n' >"$ctx/df.hddots"
# RUN --mount: a mount point below a cache mount or a copy of a context
# directory was made in that source on the host, through the symlinks a
# step or the context left there (`link -> /anywhere`): the host's
# /anywhere got the directory or empty file
mesc=$TESTDIR/mescape
mkdir -p "$mesc"
chmod 1777 "$mesc"
mctx=$TESTDIR/mctx
mkdir -p "$mctx/d"
echo f >"$mctx/f"
ln -s "$mesc" "$mctx/d/link"
printf 'FROM busybox:latest\nRUN --mount=type=cache,target=/c,id=t7010 ln -sfn %s /c/link\nRUN --mount=type=cache,target=/c,id=t7010 --mount=type=tmpfs,target=/c/link/evil true\n' \
  "$mesc" >"$mctx/df.mcache"
printf 'FROM busybox:latest\nRUN --mount=type=bind,source=d,target=/m,rw --mount=type=bind,source=f,target=/m/link/evilf true\n' \
  >"$mctx/df.mbind"
printf 'FROM busybox:latest\nRUN --mount=type=cache,target=/c,id=t7010ok mkdir -p /c/real && ln -s real /c/rel\nRUN --mount=type=cache,target=/c,id=t7010ok --mount=type=bind,source=f,target=/c/rel/f --mount=type=tmpfs,target=/c/new/t cat /c/real/f\n' \
  >"$mctx/df.mok"
# ... and the mount points a step's mounts needed were removed after it
# through a symlink the step put in their place (mv /a /z; ln -s /anywhere
# /a): the host's empty files and directories there were removed
printf 'FROM busybox:latest\nARG V\nRUN --mount=type=bind,source=f,target=/a/victim --mount=type=tmpfs,target=/a/victimdir mv /a /z && ln -s $V /a\n' \
  >"$mctx/df.mrm"
# COPY --from=STAGE --exclude/--parents: whether a source was a directory
# was asked of the host, through the stage's absolute symlinks: a host path
# that is a directory (here $P, a file in the stage) changed what was copied
mkdir -p "$TESTDIR/probe"
cat >"$mctx/df.fromstat" <<'DF'
FROM busybox:latest AS a
ARG P
RUN mkdir -p "${P%/*}" /d/sub && echo f >"$P" && ln -s "$P" /p && echo f >/d/sub/f && echo g >/d/g && ln -s /d /ld
FROM busybox:latest
COPY --from=a --exclude=p /p /out/
COPY --from=a --exclude=g /ld /ex/
COPY --from=a --parents /ld /par/
RUN test ! -e /out
RUN test "$(find /ex /par | sort | tr '\n' ' ')" = "/ex /ex/sub /ex/sub/f /par /par/ld /par/ld/g /par/ld/sub /par/ld/sub/f "
DF
# a NUL in .dockerignore cut it short: what the patterns after it exclude
# was sent
ictx=$TESTDIR/ictx
mkdir -p "$ictx"
echo secret >"$ictx/secret"
printf 'FROM scratch\nCOPY . /\n' >"$ictx/Dockerfile"
printf 'Dockerfile\n\0\nsecret\n' >"$ictx/.dockerignore"
chmod -R a+rX "$ctx" "$ictx" "$mctx"
# config_of MODE TAG: the image config, read from the layout (skopeo refuses
# configs over 4 MiB)
config_of() {
  python3 - "$(store_oci "$1")" "$2" <<'PY'
import json, os, sys
layout, tag = sys.argv[1], sys.argv[2]
idx = json.load(open(os.path.join(layout, "index.json")))
desc = [m for m in idx["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][-1]
def blob(d):
    return open(os.path.join(layout, "blobs", *d.split(":"))).read()
print(blob(json.loads(blob(desc["digest"]))["config"]["digest"]))
PY
}

# ob_bounded SECONDS MODE ARGS...: ob, stopped after SECONDS (a hang
# guard: the inputs below took seconds to minutes when something was
# quadratic, and take well under one second now)
ob_bounded() {
  _t=$1 _m=$2; shift 2
  as "$_m" env OBUILD_ROOT="$(store "$_m")" timeout -k 30 "$_t" "$OB" "$@"
}
snapshot() { (cd "$(store "$1")" && find oci -printf '%p %s\n' | sort && sha256sum oci/index.json; ls tmp); }
for m in $MODES; do
  import_busybox "$m"
  check "[$m] a good build first" ob "$m" build -q -t good -f "$ctx/df.nest64" "$ctx"
  snapshot "$m" >"$TESTDIR/before-$m"

  check_fail 3 '/df\.nest:2: .*nested more than 64 levels' "[$m] \${a:-\${a:-...}} 30,000 deep: exit 3, no crash" \
    ob "$m" build -f "$ctx/df.nest" -t x "$ctx"
  check_fail 3 '/df\.nestq:2: .*nested more than 64 levels' "[$m] nesting through double quotes: exit 3" \
    ob "$m" build -f "$ctx/df.nestq" -t x "$ctx"
  check_fail 3 '/df\.double:13: .*longer than 1 MiB' "[$m] ENV x=\$x\$x doubling: exit 3 at the line passing 1 MiB" \
    ob "$m" build -f "$ctx/df.double" -t x "$ctx"
  check_fail 3 '/df\.total:18: .*more than 16 MiB' "[$m] values of many ENVs: exit 3 at the line passing 16 MiB" \
    ob "$m" build -f "$ctx/df.total" -t x "$ctx"
  check_fail 3 '/df\.chain:9: .*more than 16 MiB' "[$m] a stage copied by FROM again and again: exit 3" \
    ob "$m" build -f "$ctx/df.chain" -t x "$ctx"
  check_fail 3 '/df\.pattern:5: .*pattern matching too expensive' "[$m] \${b//*a*a*a/x} of a 1 MiB value: exit 3, no hang" \
    ob "$m" build -f "$ctx/df.pattern" -t x "$ctx"

  check_fail 3 '/df\.nul:2: NUL byte' "[$m] NUL in RUN: exit 3, not run as \`echo a\`" \
    ob "$m" build -f "$ctx/df.nul" -t x "$ctx"
  check_fail 3 '/df\.nulcomment:2: NUL byte' "[$m] NUL in a comment: exit 3" \
    ob "$m" build -f "$ctx/df.nulcomment" -t x "$ctx"
  check_fail 3 '/df\.label:2: invalid UTF-8' "[$m] LABEL k=\\xff: exit 3, not dropped" \
    ob "$m" build -f "$ctx/df.label" -t x "$ctx"
  check_fail 3 '/df\.cmd:2: invalid UTF-8' "[$m] CMD [\"\\xff\"]: exit 3" \
    ob "$m" build -f "$ctx/df.cmd" -t x "$ctx"
  check_fail 3 '/df\.cont:3: invalid UTF-8' "[$m] invalid UTF-8 on a continuation line: exit 3 naming that line" \
    ob "$m" build -f "$ctx/df.cont" -t x "$ctx"
  check_fail 3 '/df\.heredoc:3: invalid UTF-8' "[$m] invalid UTF-8 in a heredoc body: exit 3" \
    ob "$m" build -f "$ctx/df.heredoc" -t x "$ctx"
  check_fail 3 '/df\.hdpath:2: COPY: heredoc name `(\.\./)+.*/escape/evil` is not a file name' \
    "[$m] COPY <<../../(...)/evil: exit 3" ob "$m" build -f "$ctx/df.hdpath" -t x "$ctx"
  check "[$m] ... nothing written outside the build's scratch directory" test ! -e "$TESTDIR/escape/evil"
  check_fail 3 '/df\.hdslash:2: COPY: heredoc name `a/b` is not a file name' "[$m] COPY <<a/b: exit 3" \
    ob "$m" build -f "$ctx/df.hdslash" -t x "$ctx"
  check_fail 3 '/df\.hddots:2: ADD: heredoc name `\.\.` is not a file name' "[$m] ADD <<..: exit 3" \
    ob "$m" build -f "$ctx/df.hddots" -t x "$ctx"
  check_fail 3 '/df\.split:3: invalid UTF-8 after expansion' "[$m] \${x#?} cutting a character in two: exit 3" \
    ob "$m" build -f "$ctx/df.split" -t x "$ctx"
  check_fail 2 'build-arg v: .*invalid UTF-8' "[$m] --build-arg with invalid UTF-8: exit 2" \
    ob "$m" build -f "$ctx/df.arg" --build-arg "v=$(printf 'a\377')" -t x "$ctx"
  check_fail 2 'label k: .*invalid UTF-8' "[$m] --label with invalid UTF-8: exit 2" \
    ob "$m" build -f "$ctx/df.nest64" --label "k=$(printf 'a\377')" -t x "$ctx"
  check_fail 2 'env k: .*invalid UTF-8' "[$m] --env with invalid UTF-8: exit 2" \
    ob "$m" build -f "$ctx/df.nest64" --env "k=$(printf '\300\200')" -t x "$ctx"

  check_fail 4 '\.dockerignore:2: NUL byte' "[$m] NUL in .dockerignore: exit 4" \
    ob "$m" build -t x "$ictx"
  check_fail 4 'df\.escape:2: COPY source not found in build context: \\x1b\]0;t\\x07x$' \
    "[$m] an escape sequence in a missing source: exit 4, shown as \\x1b" \
    ob "$m" build --progress=plain -f "$ctx/df.escape" -t x "$ctx"
  check "[$m] ... no control character reaches stderr (progress lines included)" \
    sh -c "! tr -d '\\t\\n' <'$TESTDIR/.err' | LC_ALL=C grep -q '[[:cntrl:]]'"
  check_fail 3 '/df\.mounts:2: RUN has more than 256 --mount options' "[$m] RUN with 257 --mount options: exit 3" \
    ob "$m" build -f "$ctx/df.mounts" -t x "$ctx"

  check_fail 3 '/df\.chown:2: COPY --chown.*4294967295' "[$m] --chown=4294967295:4294967296: exit 3" \
    ob "$m" build -f "$ctx/df.chown" -t x "$ctx"
  check_fail 3 '/df\.chown2:2: COPY --chown.*99999999999999999999' "[$m] --chown gid past 64 bits: exit 3" \
    ob "$m" build -f "$ctx/df.chown2" -t x "$ctx"
  check_fail 3 '/df\.chown3:2: COPY --chown.*4294967296' "[$m] --chown=4294967296: exit 3" \
    ob "$m" build -f "$ctx/df.chown3" -t x "$ctx"
  check_fail 3 '/df\.user:3: .*user id out of range' "[$m] USER 4294967296 for RUN: exit 3" \
    ob "$m" build -f "$ctx/df.user" -t x "$ctx"

  snapshot "$m" >"$TESTDIR/after-$m"
  check_files "[$m] failed builds left the store as it was" "$TESTDIR/after-$m" "$TESTDIR/before-$m"

  rm -rf "$mesc" && mkdir "$mesc" && chmod 1777 "$mesc"
  check_fail 3 '/df\.mcache:3: RUN --mount target=/c/link/evil: /c/link is a symlink leading out of the mount at /c or to nothing, not followed' \
    "[$m] a --mount target through a symlink a step left in a cache mount: exit 3" \
    ob "$m" build -f "$mctx/df.mcache" -t x "$mctx"
  check_fail 3 '/df\.mbind:2: RUN --mount target=/m/link/evilf: /m/link is a symlink leading out of the mount at /m or to nothing, not followed' \
    "[$m] ... through a symlink of the context in a rw bind: exit 3" \
    ob "$m" build -f "$mctx/df.mbind" -t x "$mctx"
  check_eq "[$m] ... nothing made outside" "$(ls -A "$mesc")" ""
  for snap in overlay copy; do
    v=$(userdir "victim-$m-$snap" "$m")
    mkdir "$v/victimdir" && : >"$v/victim"
    [ "$m" != root ] && chown "$T_USER" "$v/victimdir" "$v/victim"
    check "[$m] a step that puts a symlink where its mount points were builds (--snapshotter=$snap)" \
      ob "$m" build -q --snapshotter="$snap" -f "$mctx/df.mrm" --build-arg "V=$v" -t x "$mctx"
    check "[$m] ... the empty file and directory it leads to are not removed" test -f "$v/victim" -a -d "$v/victimdir"
  done

  check "[$m] COPY --from --exclude/--parents: a stage's symlinks followed in the stage only, never on the host" \
    ob "$m" build -q --no-cache -f "$mctx/df.fromstat" --build-arg "P=$TESTDIR/probe" -t x "$mctx"

  # what must keep working
  check "[$m] mount points below a cache mount, also through a symlink inside it" \
    ob "$m" build -q -f "$mctx/df.mok" -t x "$mctx"
  check "[$m] UTF-8 BOM, latin-1 in a comment and UTF-8 in a LABEL build" \
    ob "$m" build -q -t bom -f "$ctx/df.bom" "$ctx"
  c=$TESTDIR/config-$m.json
  skopeo_config "$(store_oci "$m")" bom:latest >"$c"
  check_eq "[$m] the LABEL keeps its UTF-8 value" "$(json_get "$c" 'j["config"]["Labels"]["k"] == "\u00e9"')" true
  skopeo_config "$(store_oci "$m")" good:latest >"$c"
  check_eq "[$m] 64 nested levels expand to the innermost default" "$(json_get "$c" '[e for e in j["config"]["Env"] if e.startswith("x=")]')" '["x=deep"]'
  check "[$m] --chown=4294967294:7 (the largest id) is accepted" \
    ob "$m" build -q -t chownok -f "$ctx/df.chownok" "$ctx"
  layer_listing "$(store_oci "$m")" chownok:latest >"$TESTDIR/ls-$m"
  check_eq "[$m] ... and recorded in the layer" "$(grep ' x$' "$TESTDIR/ls-$m" | cut -d' ' -f3)" 4294967294:7
  check "[$m] 100,000 ENV instructions build" ob "$m" build -q -t manyenv -f "$ctx/df.manyenv" "$ctx"
  config_of "$m" manyenv:latest >"$c"
  check_eq "[$m] ... every one in the config, in order" \
    "$(json_get "$c" '[len(j["config"]["Env"]), j["config"]["Env"][1], j["config"]["Env"][100000], j["config"]["Env"][-1]]')" \
    '[100002, "v0=0", "v99999=99999", "last=5-99999"]'
  check "[$m] 100,000 stages build within 30 s (80 s before, 0.3 s now)" \
    ob_bounded 30 "$m" build -q -t stages -f "$ctx/df.stages" "$ctx"
  config_of "$m" stages:latest >"$c"
  check_eq "[$m] ... FROM S54321 is stage s54321" "$(json_get "$c" '[e for e in j["config"]["Env"] if e.startswith("n=")]')" '["n=54321"]'
  ob_bounded 120 "$m" build -t dupstages -f "$ctx/df.dupstages" "$ctx" >"$TESTDIR/dup.out" 2>&1
  check_eq "[$m] 50,000 stages named alike build, 49,999 warnings (the first at line 3)" \
    "$?:$(grep -c 'warning: .*Duplicate stage name "dup"' "$TESTDIR/dup.out"):$(grep -m1 -o 'df.dupstages:[0-9]*: Duplicate' "$TESTDIR/dup.out")" \
    "0:49999:df.dupstages:3: Duplicate"
  config_of "$m" dupstages:latest >"$c"
  check_eq "[$m] ... FROM dup is the last of them" "$(json_get "$c" '[e for e in j["config"]["Env"] if e.startswith("n=")]')" '["n=49999"]'
  check "[$m] RUN in exec form with 100,000 arguments builds" \
    ob_bounded 120 "$m" build -q -t runargs -f "$ctx/df.runargs" "$ctx"
  check_eq "[$m] ... the command got them all" "$(layer_file "$(store_oci "$m")" runargs:latest 1 n)" 100000
  check "[$m] RUN with 40,000 ARGs builds" ob_bounded 120 "$m" build -q -t runenv -f "$ctx/df.runenv" "$ctx"
  check_eq "[$m] ... all in its environment; an ARG given again counts as last declared with a value" \
    "$(layer_file "$(store_oci "$m")" runenv:latest 1 n)" "40000
2-1-39999"
  check "[$m] RUN with 256 --mount options builds" ob "$m" build -q -t x -f "$ctx/df.mounts256" "$ctx"
done

# single-ID mode: whether a step gets obuild's apt configuration depends on
# the image's /etc/apt, asked inside the root; an image whose /etc links to
# a host directory made it a probe of whether that host path exists
if echo " $MODES " | grep -q ' single '; then
  m=single
  mkdir -p "$TESTDIR/probe-host/apt" "$TESTDIR/probe-ctx"
  python3 - "$(busybox_tar)" "$TESTDIR/probe.tar" "$TESTDIR/probe-host" <<'PY'
import sys, tarfile
src, dst = tarfile.open(sys.argv[1]), tarfile.open(sys.argv[2], "w")
for m in src.getmembers():
    n = m.name.lstrip("./")
    if n != "etc" and not n.startswith("etc/"):
        dst.addfile(m, src.extractfile(m) if m.isfile() else None)
l = tarfile.TarInfo("etc")
l.type, l.linkname = tarfile.SYMTYPE, sys.argv[3]
dst.addfile(l)
dst.close()
PY
  printf 'FROM probe\nRUN echo "apt=[$APT_CONFIG]"\n' >"$TESTDIR/probe-ctx/Dockerfile"
  chmod -R a+rX "$TESTDIR/probe-host" "$TESTDIR/probe-ctx" "$TESTDIR/probe.tar"
  ob "$m" import "$TESTDIR/probe.tar" probe:latest >/dev/null
  ob "$m" build --progress=plain -t probe2 "$TESTDIR/probe-ctx" >"$TESTDIR/probe.out" 2>&1
  check_eq "[$m] an image whose /etc links to a host directory holding apt/: built, no apt configuration given" \
    "$?:$(grep -x 'apt=\[[^]$]*\]' "$TESTDIR/probe.out")" "0:apt=[]"
fi
done_testing
