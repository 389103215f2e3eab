#!/bin/sh
# A COPY whose files no later step reads is written straight from its
# sources into the layer (no file created): the layer must be the one the
# copy into an upper directory gives, byte for byte, for every kind of
# entry, and the copy must still happen on disk where a later RUN or
# stage needs it.  OBUILD_TEST_NO_COPY_STREAM=1 forces the old path.
. "$(dirname "$0")/lib.sh"

SOURCE_DATE_EPOCH=1700000000
export SOURCE_DATE_EPOCH
ctx=$TESTDIR/ctx
mkdir -p "$ctx/tree/sub/deeper" "$ctx/tree/empty" "$ctx/ign/skip" "$ctx/d1/same" "$ctx/d2/same"
echo one >"$ctx/tree/one"; printf 'x%.0s' $(seq 1 5000) >"$ctx/tree/sub/big"
echo run >"$ctx/tree/sub/deeper/tool"; chmod 4755 "$ctx/tree/sub/deeper/tool"
echo secret >"$ctx/tree/private"; chmod 0600 "$ctx/tree/private"
ln -s one "$ctx/tree/rel"; ln -s /etc/passwd "$ctx/tree/abs"; ln -s gone "$ctx/tree/dangling"
ln "$ctx/tree/one" "$ctx/tree/sub/hard"
mkfifo "$ctx/tree/fifo"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.note", b"kept"); os.setxattr(sys.argv[2], "user.dir", b"d"); os.setxattr(sys.argv[1], "user.obuild.owner", b"9:9")' \
  "$ctx/tree/sub/big" "$ctx/tree/sub"
echo k >"$ctx/ign/keep"; echo s >"$ctx/ign/skip/x"; echo t >"$ctx/ign/top"
printf 'ign/*\n!ign/keep\n' >"$ctx/.dockerignore"
echo a >"$ctx/d1/same/f"; echo b >"$ctx/d2/same/f"; echo c >"$ctx/d2/other"
mkdir -p "$ctx/d3/same"; echo g >"$ctx/d3/same/g"; chmod 0775 "$ctx/d3/same"
ln -s tree "$ctx/treelink"
chmod 0750 "$ctx/tree/sub"
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox AS base
RUN mkdir -p /opt/x && chmod 0700 /opt/x && chown 5:6 /opt/x && mkdir /src && echo s >/src/f && chown 7:8 /src/f && ln -s f /src/l
FROM base
COPY . /opt/x/ctx/
COPY tree /opt/x/
COPY --chown=1234:5678 --chmod=0640 tree/one tree/private /files/
COPY treelink /linked/
COPY tree/one /single
COPY ign /ign/
COPY d1 d2 /merged/
COPY d1 d3 /merged2/
COPY --from=base /src /fromsrc/
COPY --from=base --chown=3:4 /src/f /fromsrc2
ADD tree/sub/big /added
DF
find "$ctx" -exec touch -h -d @1600000000 {} +
chmod -R a+rX "$ctx"

# unpacked_missing MODE TAG: how many layers of TAG the store has no
# unpacked form of (a streamed COPY leaves none)
unpacked_missing() {
  python3 - "$(store_oci "$1")" "$2" "$(store "$1")/layers" <<'PY'
import json, os, sys
layout, tag, ldir = sys.argv[1:4]
idx = json.load(open(os.path.join(layout, "index.json")))
d = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][-1]
blob = lambda x: os.path.join(layout, "blobs", *x.split(":"))
cfg = json.load(open(blob(json.load(open(blob(d["digest"])))["config"]["digest"])))
have = set()
for sub in os.listdir(ldir):
    have.update(os.listdir(os.path.join(ldir, sub)))
print(sum(1 for i in cfg["rootfs"]["diff_ids"] if i.split(":")[1] not in have))
PY
}
diff_ids() {
  skopeo inspect --config "oci:$(store_oci "$1"):$2" | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["rootfs"]["diff_ids"]))'
}

ob_nostream() {
  _m=$1; shift
  as "$_m" env OBUILD_ROOT="$(store "$_m")" OBUILD_TEST_NO_COPY_STREAM=1 "$OB" "$@"
}

for m in $MODES; do
  import_busybox "$m"
  check "[$m] build, COPY streamed" ob "$m" build -q -t s "$ctx"
  # ten of the eleven COPY/ADD layers are streamed (`COPY d1 d3` merges
  # two same/ directories); `COPY d1 d2` writes same/f twice, which a plan
  # does not model: copied to disk
  check_eq "[$m] the streamed COPY layers were never unpacked" "$(unpacked_missing "$m" s:latest)" 10
  check "[$m] build, COPY into an upper directory" ob_nostream "$m" build -q --no-cache -t u "$ctx"
  ds=$(diff_ids "$m" s:latest); du=$(diff_ids "$m" u:latest)
  check_eq "[$m] thirteen layers" "$(echo "$ds" | wc -w)" 13
  check_eq "[$m] every layer the same, streamed or not" "$ds" "$du"
  [ "$ds" = "$du" ] && check_eq "[$m] ... the same image" "$(skopeo inspect --raw "oci:$(store_oci "$m"):s:latest" | sha256sum)" "$(skopeo inspect --raw "oci:$(store_oci "$m"):u:latest" | sha256sum)"
  [ "$ds" = "$du" ] || python3 "$OBUILD_SRCDIR/tests/tools/explain-digest-diff.py" "$(store_oci "$m")" s:latest "$(store_oci "$m")" u:latest | diag
  check "[$m] image validates" oci_validate "$(store_oci "$m")" s:latest
  check "[$m] umoci unpacks it" umoci_unpack "$(store_oci "$m")" s:latest "$TESTDIR/u-$m"
  r=$TESTDIR/u-$m/rootfs
  check_eq "[$m] the hardlink and its file" "$(stat -c %i "$r/opt/x/one")" "$(stat -c %i "$r/opt/x/sub/hard")"
  check_eq "[$m] setuid mode kept" "$(stat -c %a "$r/opt/x/sub/deeper/tool")" 4755
  check_eq "[$m] a symlink stays one" "$(readlink "$r/opt/x/abs")" /etc/passwd
  check "[$m] the fifo" test -p "$r/opt/x/fifo"
  check_eq "[$m] the user xattr" "$(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.note").decode())' "$r/opt/x/sub/big" 2>&1)" kept
  check_eq "[$m] .dockerignore: excluded, the exception kept" "$(cd "$r/ign" && find . | sort | tr '\n' ' ')" ". ./keep "
  check_eq "[$m] the later of two sources wins" "$(cat "$r/merged/same/f")" b
  check_eq "[$m] two directories merged, the later one's mode" "$(cd "$r/merged2/same" && ls | tr '\n' ' '; stat -c %a .)" "f g 775"
  layer_listing "$(store_oci "$m")" s:latest 3 >"$TESTDIR/l-$m"
  check "[$m] the context's user.obuild.owner is not an owner" grep -q '^f 0644 0:0 5000 - opt/x/sub/big$' "$TESTDIR/l-$m"
  check "[$m] an ancestor the image has keeps its owner and mode" grep -q '^d 0700 5:6 0 - opt/x$' "$TESTDIR/l-$m"
  layer_listing "$(store_oci "$m")" s:latest 10 >"$TESTDIR/lf-$m"
  check "[$m] COPY --from keeps the source's owner" grep -q '^f 0644 7:8 2 - fromsrc/f$' "$TESTDIR/lf-$m"
  layer_listing "$(store_oci "$m")" s:latest 4 >"$TESTDIR/lc-$m"
  check "[$m] --chown and --chmod" grep -q '^f 0640 1234:5678 7 - files/private$' "$TESTDIR/lc-$m"
done

# past the plan's cap on entries (a million; 5 here) the copy is made on
# disk: the same layers, unpacked
for m in $MODES; do
  check "[$m] build with a plan of at most 5 entries" \
    as "$m" env OBUILD_ROOT="$(store "$m")" OBUILD_TEST_PLAN_MAX=5 "$OB" build -q --no-cache -t c "$ctx"
  check_eq "[$m] ... the same layers" "$(diff_ids "$m" c:latest)" "$(diff_ids "$m" s:latest)"
done
rm -rf "$(store root)/layers"
check "[root] again with a fresh layer directory" \
  env OBUILD_ROOT="$(store root)" OBUILD_TEST_PLAN_MAX=5 "$OB" build -q --no-cache -t c "$ctx"
# seven COPY/ADD layers have at most 5 entries (/single, /files, /ign,
# /merged2, /fromsrc, /fromsrc2, /added); the others are copied to disk
check_eq "[root] ... only the small COPY layers were not unpacked" "$(unpacked_missing root c:latest)" 7

# a later RUN reads the copied files: they are on disk then
printf 'FROM busybox\nCOPY tree /t/\nRUN cat /t/one /t/sub/hard >/both\n' >"$ctx/Dockerfile.run"
# another stage copies from this one
printf 'FROM busybox AS a\nCOPY tree /t/\nFROM busybox\nCOPY --from=a /t/one /o\n' >"$ctx/Dockerfile.from"
for m in $MODES; do
  check "[$m] COPY then RUN" ob "$m" build -q -t r -f "$ctx/Dockerfile.run" "$ctx"
  check_eq "[$m] ... the RUN saw the files" "$(ob "$m" run --rm r cat /both 2>&1)" "one
one"
  check "[$m] COPY --from a stage whose COPY it reads" ob "$m" build -q -t f -f "$ctx/Dockerfile.from" "$ctx"
  check_eq "[$m] ... the file" "$(ob "$m" run --rm f cat /o 2>&1)" one
done

done_testing
