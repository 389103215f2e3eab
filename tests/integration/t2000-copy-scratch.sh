#!/bin/sh
# FROM scratch + COPY: files, directories, wildcards, symlinks, hardlinks,
# .dockerignore, modes; the image is checked with oci-image-tool, umoci and
# skopeo, and the layer's tar entries are compared with what Docker writes.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx/dir/sub" "$ctx/empty" "$ctx/ignored" "$ctx/sp ace"
echo hello >"$ctx/hello.txt"
echo a >"$ctx/dir/a.txt"
echo b >"$ctx/dir/sub/b.txt"
echo secret >"$ctx/ignored/key"
echo log >"$ctx/dir/debug.log"
echo ü >"$ctx/sp ace/ünï cödé.txt"
printf '#!/bin/sh\necho run\n' >"$ctx/tool.sh"
chmod 4755 "$ctx/tool.sh"
ln -s hello.txt "$ctx/link-to-hello"
ln "$ctx/dir/a.txt" "$ctx/dir/a-hard.txt"
ln -s sub/b.txt "$ctx/dir/link-b"
printf 'ignored\n**/*.log\n' >"$ctx/.dockerignore"
cat >"$ctx/Dockerfile" <<'DF'
FROM scratch
COPY hello.txt /
COPY dir /opt/dir/
COPY *.sh link-to-hello /bin/
COPY ["sp ace", "/data/"]
COPY empty /empty
COPY hello.txt /renamed.txt
DF
chmod -R a+rX "$ctx"

cat >"$TESTDIR/want-tree" <<'W'
d 0755 - - ./bin
f 0644 6 - ./bin/link-to-hello
f 4755 19 - ./bin/tool.sh
d 0755 - - ./data
f 0644 3 - ./data/ünï cödé.txt
d 0755 - - ./empty
f 0644 6 - ./hello.txt
d 0755 - - ./opt
d 0755 - - ./opt/dir
f 0644 2 - ./opt/dir/a-hard.txt
f 0644 2 - ./opt/dir/a.txt
l 0777 9 sub/b.txt ./opt/dir/link-b
d 0755 - - ./opt/dir/sub
f 0644 2 - ./opt/dir/sub/b.txt
f 0644 6 - ./renamed.txt
W

for m in $MODES; do
  out=$(userdir "out-$m" "$m")
  if ob "$m" build -t copy-test:1 -o "$out" "$ctx" >"$TESTDIR/build-$m.out" 2>"$TESTDIR/build-$m.err"; then
    ok "[$m] build FROM scratch with COPY succeeds"
  else
    not_ok "[$m] build FROM scratch with COPY succeeds"; diag <"$TESTDIR/build-$m.err"
    continue
  fi
  digest=$(head -1 "$TESTDIR/build-$m.out")
  check_eq "[$m] stdout starts with the manifest digest" "$(echo "$digest" | grep -Ec '^sha256:[0-9a-f]{64}$')" 1
  check "[$m] stdout names the oci: reference" grep -qx "oci:$(store_oci "$m"):copy-test:1" "$TESTDIR/build-$m.out"
  check "[$m] store passes oci-image-tool validate" oci_validate "$(store_oci "$m")" copy-test:1
  check "[$m] --output layout passes oci-image-tool validate" oci_validate "$out" copy-test:1
  check "[$m] umoci unpack --rootless succeeds" umoci_unpack "$out" copy-test:1 "$TESTDIR/bundle-$m"
  tree_listing "$TESTDIR/bundle-$m/rootfs" >"$TESTDIR/tree-$m"
  check_files "[$m] unpacked tree is exactly what COPY defines" "$TESTDIR/tree-$m" "$TESTDIR/want-tree"
  check_eq "[$m] file content survives" "$(cat "$TESTDIR/bundle-$m/rootfs/opt/dir/sub/b.txt")" b
  check_eq "[$m] hardlinks stay hardlinks" \
    "$(stat -c %i "$TESTDIR/bundle-$m/rootfs/opt/dir/a.txt")" "$(stat -c %i "$TESTDIR/bundle-$m/rootfs/opt/dir/a-hard.txt")"
  check_eq "[$m] skopeo sees the manifest digest" \
    "$(skopeo inspect "oci:$out:copy-test:1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])')" "$digest"
  layer_listing "$out" copy-test:1 2 >"$TESTDIR/layer0-$m"
  check_eq "[$m] layer entries have owner 0:0 and empty user names" \
    "$(awk '{print $3}' "$TESTDIR/layer0-$m" | sort -u)" "0:0"
  check_eq "[$m] no uname/gname in layer entries" "$(grep -c uname= "$TESTDIR/layer0-$m")" 0
  check "[$m] setuid bit is kept in the layer" grep -q '^f 4755 0:0 19 - bin/tool.sh$' "$TESTDIR/layer0-$m"
  skopeo_config "$out" copy-test:1 >"$TESTDIR/config-$m.json"
  check_eq "[$m] config has 6 diff_ids" "$(json_get "$TESTDIR/config-$m.json" 'len(j["rootfs"]["diff_ids"])')" 6
  check_eq "[$m] history has 6 entries with layers" \
    "$(json_get "$TESTDIR/config-$m.json" 'len([h for h in j["history"] if not h.get("empty_layer")])')" 6
  check_eq "[$m] default PATH in Env" "$(json_get "$TESTDIR/config-$m.json" 'j["config"]["Env"][0]')" \
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
done
done_testing
