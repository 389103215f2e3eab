#!/bin/sh
# Directory trees deeper than any path: a step can leave one (mkdirat and
# openat, one level at a time, need no long path), a base image's layer can
# name one.  A layer entry's path is at most 4095 bytes: up to that, every
# mode builds the tree (walked with a descriptor per level, where the
# unprivileged user's soft limit is 1024); beyond, exit 5 (a step's tree)
# or 9 (an image's) with one line naming the path cut short, no crash (a
# 30,000-deep tree overflowed obuild's stack), and nothing of the step
# left in the store (a deep scratch tree was removed one descriptor and
# stack frame per level).
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
if ! cc -static -O2 -o "$ctx/deeptree" "$FIXTURES/deeptree.c" 2>"$TESTDIR/cc.err"; then
  not_ok "cc -static builds the deeptree helper"; diag <"$TESTDIR/cc.err"; done_testing
fi
# 1500 levels: tmp/t/a/.../a/bottom is 3012 bytes
cat >"$ctx/Dockerfile.ok" <<'DF'
FROM busybox
COPY deeptree /deeptree
RUN /deeptree /tmp/t 1500
RUN cd /tmp/t && n=0 && while cd a 2>/dev/null; do n=$((n+1)); done && test -f bottom && echo $n >/count
DF
printf 'FROM busybox\nCOPY --from=deep-ok /tmp/t /copied\n' >"$ctx/Dockerfile.copy"
cat >"$ctx/Dockerfile.ok-user" <<'DF'
FROM busybox
COPY deeptree /deeptree
USER nobody
RUN /deeptree /tmp/u 1500
DF
printf 'FROM busybox\nCOPY deeptree /deeptree\nRUN /deeptree /tmp/long 3000\n' >"$ctx/Dockerfile.long"
printf 'FROM busybox\nRUN ulimit -n >/nofile\n' >"$ctx/Dockerfile.nofile"
printf 'FROM busybox\nCOPY deeptree /deeptree\nRUN /deeptree /tmp/deep 40000\n' >"$ctx/Dockerfile.huge"
printf 'FROM busybox\nCOPY deeptree /deeptree\nUSER nobody\nRUN /deeptree /tmp/deep 40000\n' >"$ctx/Dockerfile.huge-user"
chmod -R a+rX "$ctx"

# a base image naming a 5000-byte path (pax header)
longtar=$TESTDIR/long-base.tar
python3 - "$(busybox_tar)" "$longtar" <<'PY'
import io, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
with tarfile.open(src) as i, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as o:
    for m in i.getmembers():
        o.addfile(m, i.extractfile(m) if m.isfile() else None)
    t = tarfile.TarInfo("x/" + "b/" * 2496 + "end"); t.size = 2
    o.addfile(t, io.BytesIO(b"hi"))
PY
chmod a+r "$longtar"

bottom=tmp/t/$(printf 'a/%.0s' $(seq 1500))bottom
snapshot() { (cd "$(store "$1")" && find oci -printf '%p %s\n' | sort && sha256sum oci/index.json); }
for m in $MODES; do
  import_busybox "$m"
  o=$(store_oci "$m")
  check "[$m] a RUN leaving a 1500-deep tree (3012-byte path) builds" \
    ob "$m" build -q -t deep-ok -f "$ctx/Dockerfile.ok" "$ctx"
  check_eq "[$m] its layer holds the deepest file" \
    "$(layer_listing "$o" deep-ok:latest 2 2>/dev/null | grep -c " $bottom\$")" 1
  check_eq "[$m] the next RUN sees the whole tree" "$(layer_file "$o" deep-ok:latest 3 count 2>/dev/null)" 1500
  check "[$m] COPY --from copies it" ob "$m" build -q -t deep-copy -f "$ctx/Dockerfile.copy" "$ctx"
  check_eq "[$m] ... all of it" \
    "$(layer_listing "$o" deep-copy:latest -1 2>/dev/null | grep -c " copied/$(printf 'a/%.0s' $(seq 1500))bottom\$")" 1
  check "[$m] as USER nobody too" ob "$m" build -q -t deep-user -f "$ctx/Dockerfile.ok-user" "$ctx"
  check_eq "[$m] its layer holds the deepest file" \
    "$(layer_listing "$o" deep-user:latest -1 2>/dev/null | grep -c " tmp/u/$(printf 'a/%.0s' $(seq 1500))bottom\$")" 1
  # obuild raised its own soft limit on open files for those walks; the
  # step keeps the one obuild was started with
  check "[$m] a step reads its open-file limit" ob "$m" build -q -t nofile -f "$ctx/Dockerfile.nofile" "$ctx"
  check_eq "[$m] ... the limit obuild was started with" "$(layer_file "$o" nofile:latest -1 nofile 2>/dev/null)" \
    "$(as "$m" sh -c 'ulimit -n')"

  # the copy snapshotter (no overlayfs) walks the step's whole root (it
  # walked each path's parents for each entry: 36 s for this tree)
  check "[$m] --snapshotter=copy: the 1500-deep tree builds" \
    ob "$m" build -q --no-cache --snapshotter=copy -t deep-cp -f "$ctx/Dockerfile.ok" "$ctx"
  check_eq "[$m] ... its layer holds the deepest file" \
    "$(layer_listing "$o" deep-cp:latest 2 2>/dev/null | grep -c " $bottom\$")" 1

  snapshot "$m" >"$TESTDIR/before"
  check_fail 5 'Dockerfile.long:3: path `tmp/long/a/a/a/.*` is 4096 bytes long, more than a layer holds \(4095\)' \
    "[$m] a 3000-deep tree: exit 5, the path cut short" ob "$m" build -q -t x -f "$ctx/Dockerfile.long" "$ctx"
  check_eq "[$m] ... its message is one short line" "$(grep -c '^obuild: .\{0,200\}$' "$TESTDIR/.err")" 1
  for f in huge huge-user; do
    check_fail 5 "Dockerfile.$f:[34]: path \`tmp/deep/a/.*\` is 4096 bytes long" \
      "[$m] a 40,000-deep tree ($f): exit 5, no crash" ob "$m" build -q -t x -f "$ctx/Dockerfile.$f" "$ctx"
  done
  check_fail 5 "Dockerfile.huge:3: path \`tmp/deep/a/.*\` is 4096 bytes long" \
    "[$m] --snapshotter=copy: the 40,000-deep tree exits 5" \
    ob "$m" build -q --no-cache --snapshotter=copy -t x -f "$ctx/Dockerfile.huge" "$ctx"
  check_eq "[$m] nothing of the steps is left in the store's scratch" "$(ls -A "$(store "$m")/tmp" 2>&1)" ""
  check_fail 9 'path `x/b/b/b/.*` is 4997 bytes long, more than a layer holds \(4095\)' \
    "[$m] a base layer naming a 5000-byte path: exit 9" ob "$m" import "$longtar" long:latest
  snapshot "$m" >"$TESTDIR/after"
  check_files "[$m] ... and the store is as it was" "$TESTDIR/after" "$TESTDIR/before"
done
done_testing
