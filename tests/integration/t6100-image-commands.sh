#!/bin/sh
# The image commands of docker/podman: inspect, history, tag, rmi, save,
# load (checked against skopeo and umoci), logout, and info; bad input exits
# with its code and one line, and leaves the store as it was.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
echo hello >"$ctx/f"
printf 'FROM busybox\nENV A=1\nCOPY f /f\nLABEL x=y\n' >"$ctx/Dockerfile"
chmod -R a+rX "$ctx"

# index.json and the blob names: what "unchanged" means for the store
snap() { (cd "$(store_oci "$1")" && sha256sum index.json && ls blobs/sha256); }
nblobs() { ls "$(store_oci "$1")/blobs/sha256" | wc -l; }
digest_of() { ob "$1" images | awk -v t="$2" '$1 == t { print $2 }'; }
py() { python3 -c "$@"; }

for m in $MODES; do
  import_busybox "$m"
  ob "$m" build -q -t app "$ctx" >/dev/null 2>&1
  out=$(userdir "out-$m" "$m")
  dg=$(digest_of "$m" app:latest)

  # ---- inspect ----
  ob "$m" inspect app >"$TESTDIR/i-$m.json" 2>"$TESTDIR/i-$m.err"
  check_eq "[$m] inspect: exit 0" "$?" 0
  check_eq "[$m] inspect: the manifest digest" "$(json_get "$TESTDIR/i-$m.json" 'j["Digest"]')" "$dg"
  check_eq "[$m] inspect: the manifest's media type" "$(json_get "$TESTDIR/i-$m.json" 'j["MediaType"]')" \
    application/vnd.oci.image.manifest.v1+json
  check_eq "[$m] inspect: name and tags" "$(json_get "$TESTDIR/i-$m.json" '[j["Name"], j["RepoTags"]]')" \
    '["app:latest", ["app:latest"]]'
  check_eq "[$m] inspect: layers with digest, size, media type (the blobs')" "$(py '
import json, os, sys
j = json.load(open(sys.argv[1])); d = sys.argv[2]
print(len(j["Layers"]), all(os.path.getsize(d + "/" + l["Digest"][7:]) == l["Size"]
      and l["MediaType"].startswith("application/vnd.oci.image.layer.v1.tar") for l in j["Layers"]),
      sum(l["Size"] for l in j["Layers"]) == j["Size"])' "$TESTDIR/i-$m.json" "$(store_oci "$m")/blobs/sha256")" "2 True True"
  check_eq "[$m] inspect: config and history" "$(json_get "$TESTDIR/i-$m.json" \
    '[j["Config"]["Labels"], j["Config"]["Env"][-1], [h["created_by"] for h in j["History"]][1:], j["History"][1].get("empty_layer")]')" \
    '[{"x": "y"}, "A=1", ["ENV A=1", "COPY f /f", "LABEL x=y"], true]'
  id=$(json_get "$TESTDIR/i-$m.json" 'j["Id"]')
  [ "$m" = root ] && root_id=$id
  check_eq "[$m] inspect --raw: the manifest as stored" "sha256:$(ob "$m" inspect --raw app | sha256sum | cut -c1-64)" "$dg"
  check_eq "[$m] inspect --manifest: the same" "sha256:$(ob "$m" inspect --manifest app | sha256sum | cut -c1-64)" "$dg"
  check_eq "[$m] inspect --config: the config as stored (the image id)" \
    "sha256:$(ob "$m" inspect --config app | sha256sum | cut -c1-64)" "$id"
  check_eq "[$m] inspect --config: what skopeo reads" "$(ob "$m" inspect --config app | sha256sum)" \
    "$(skopeo inspect --raw --config "oci:$(store_oci "$m"):app:latest" | sha256sum)"
  check_eq "[$m] inspect by manifest digest" "$(ob "$m" inspect "$dg" | json_get /dev/stdin 'j["Digest"]')" "$dg"
  short=$(echo "$dg" | cut -c8-19)
  check_eq "[$m] inspect by a 12-digit prefix" "$(ob "$m" inspect "$short" | json_get /dev/stdin '[j["Digest"], j["Name"]]')" \
    "[\"$dg\", null]"
  check_fail 9 '^obuild: image `nope` not found in the store$' "[$m] inspect of an unknown image: exit 9" ob "$m" inspect nope
  check_fail 9 'image `sha256:0000000000000` not found' "[$m] inspect of an unknown digest: exit 9" \
    ob "$m" inspect sha256:0000000000000
  check_fail 2 'invalid tag "Bad!"' "[$m] inspect of an invalid name: exit 2" ob "$m" inspect 'Bad!'
  check_fail 2 'usage: obuild inspect' "[$m] inspect without IMAGE: exit 2" ob "$m" inspect

  # ---- history ----
  ob "$m" history app >"$TESTDIR/h-$m" 2>&1
  check_eq "[$m] history: header and one row per entry" "$(sed -n 1p "$TESTDIR/h-$m" | tr -s ' ')" \
    "IMAGE CREATED CREATED BY SIZE COMMENT"
  check_eq "[$m] history: newest first, image id on top, empty layers 0B" "$(awk 'NR > 1 { print $1, $(NF) }' "$TESTDIR/h-$m" \
    | tr '\n' '|')" "$(echo "$id" | cut -c8-19) 0B|<missing> $(json_get "$TESTDIR/i-$m.json" '"%dB|<missing> 0B|<missing> %.3gMB|" % (j["Layers"][1]["Size"], j["Layers"][0]["Size"] / 1e6)')"
  check "[$m] history: created by, as the Dockerfile says" grep -q '  COPY f /f  ' "$TESTDIR/h-$m"
  check_eq "[$m] history -q" "$(ob "$m" history -q app | tr '\n' ' ')" "$(echo "$id" | cut -c8-19) <missing> <missing> <missing> "
  check_eq "[$m] history --no-trunc: full id" "$(ob "$m" history --no-trunc app | awk 'NR == 2 { print $1 }')" "$id"
  check_fail 9 'image `nope` not found' "[$m] history of an unknown image: exit 9" ob "$m" history nope

  # ---- tag ----
  check "[$m] tag" ob "$m" tag app app:v1 reg.example:5000/team/app:2
  check_eq "[$m] tag: the new tags name the image" "$(digest_of "$m" app:v1) $(digest_of "$m" reg.example:5000/team/app:2)" "$dg $dg"
  check "[$m] tag by digest prefix" ob "$m" tag "$short" bydigest
  check_eq "[$m] ... names the image" "$(digest_of "$m" bydigest:latest)" "$dg"
  snap "$m" >"$TESTDIR/before-$m"
  check_fail 9 'image `nope` not found' "[$m] tag of an unknown image: exit 9" ob "$m" tag nope x
  check_fail 2 'invalid tag "NO!"' "[$m] tag to an invalid name: exit 2" ob "$m" tag app 'NO!'
  check_fail 2 'usage: obuild tag SRC NEW' "[$m] tag without NEW: exit 2" ob "$m" tag app
  snap "$m" >"$TESTDIR/after-$m"
  check_files "[$m] ... the store unchanged" "$TESTDIR/after-$m" "$TESTDIR/before-$m"

  # ---- save ----
  check "[$m] save --format docker-archive" ob "$m" save -o "$out/d.tar" --format docker-archive app
  check_eq "[$m] docker-archive: manifest.json as docker save writes it" "$(tar xOf "$out/d.tar" manifest.json | py '
import json, sys
j = json.load(sys.stdin); e = j[0]
print(len(j), e["RepoTags"], e["Config"] == sys.argv[1][7:] + ".json", [l[-4:] for l in e["Layers"]])' "$id")" \
    "1 ['app:latest'] True ['.tar', '.tar']"
  tar xf "$out/d.tar" -C "$out"
  check_eq "[$m] docker-archive: uncompressed layers named by their diff_id" "$(py '
import hashlib, json, sys
d = sys.argv[1]; i = json.load(open(sys.argv[2]))
ls = json.load(open(d + "/manifest.json"))[0]["Layers"]
print(all(hashlib.sha256(open(d + "/" + l, "rb").read()).hexdigest() == l[:-4] for l in ls),
      ["sha256:" + l[:-4] for l in ls] == [l["DiffID"] for l in i["Layers"]])' "$out" "$TESTDIR/i-$m.json")" "True True"
  check "[$m] docker-archive: repositories file" sh -c "tar xOf '$out/d.tar' repositories | grep -q '\"app\":{\"latest\"'"
  check_eq "[$m] skopeo inspect docker-archive: the same layers" \
    "$(skopeo inspect "docker-archive:$out/d.tar" | json_get /dev/stdin 'j["Layers"]')" \
    "$(json_get "$TESTDIR/i-$m.json" '[l["DiffID"] for l in j["Layers"]]')"
  rm -rf "$TESTDIR/sk-$m" "$TESTDIR/u-$m"
  check "[$m] skopeo copy docker-archive -> oci" skopeo copy -q "docker-archive:$out/d.tar" "oci:$TESTDIR/sk-$m:x"
  check "[$m] ... umoci unpacks it" umoci_unpack "$TESTDIR/sk-$m" x "$TESTDIR/u-$m"
  check_eq "[$m] ... with the content" "$(cat "$TESTDIR/u-$m/rootfs/f")" hello
  check "[$m] save (oci-archive)" ob "$m" save -o "$out/o.tar" app busybox
  check_eq "[$m] skopeo inspect oci-archive: the same manifest" \
    "$(skopeo inspect "oci-archive:$out/o.tar:app:latest" | json_get /dev/stdin 'j["Digest"]')" "$dg"
  check_fail 2 'name the archive to write with -o FILE' "[$m] save without -o: exit 2" ob "$m" save app
  check_fail 2 'unknown format `tgz`' "[$m] save --format tgz: exit 2" ob "$m" save -o "$out/x.tar" --format tgz app
  check_fail 9 'image `nope` not found' "[$m] save of an unknown image: exit 9" ob "$m" save -o "$out/x.tar" app nope
  check "[$m] ... writes nothing" sh -c "! ls '$out' | grep -q '^x\.tar'"

  # ---- rmi ----
  n0=$(nblobs "$m")
  check_eq "[$m] rmi of a tag: untags it" "$(ob "$m" rmi app:v1)" "Untagged: app:v1"
  check_eq "[$m] ... no blob removed: other tags need them" "$(nblobs "$m")" "$n0"
  check "[$m] ... the image still validates" oci_validate "$(store_oci "$m")" app:latest
  snap "$m" >"$TESTDIR/before-$m"
  check_fail 9 '^obuild: image `nope` not found in the store$' "[$m] rmi of an unknown image: exit 9" ob "$m" rmi app nope
  snap "$m" >"$TESTDIR/after-$m"
  check_files "[$m] ... nothing removed (not even app)" "$TESTDIR/after-$m" "$TESTDIR/before-$m"
  ob "$m" rmi "$dg" >"$TESTDIR/rmi-$m" 2>&1
  check_eq "[$m] rmi by digest: every tag of the image" "$(grep -c '^Untagged: ' "$TESTDIR/rmi-$m")" 3
  check "[$m] ... its manifest and config deleted" sh -c "grep -q '^Deleted: $dg\$' '$TESTDIR/rmi-$m' && grep -q '^Deleted: $id\$' '$TESTDIR/rmi-$m'"
  check "[$m] ... the base's blobs kept" oci_validate "$(store_oci "$m")" busybox:latest
  check_eq "[$m] ... only busybox is left" "$(ob "$m" images -q)" busybox:latest
  # while another obuild process has the store open (a build that may be
  # about to reuse any blob), rmi keeps what was written in the last minute
  printf 'FROM busybox\nCOPY a.txt /fresh.txt\n' >"$ctx/Dockerfile.fresh"
  echo "fresh $m" >"$ctx/a.txt"; chmod a+r "$ctx/Dockerfile.fresh" "$ctx/a.txt"
  ob "$m" build -q -t fresh:1 -f "$ctx/Dockerfile.fresh" "$ctx" >/dev/null
  fdg=$(digest_of "$m" fresh:1)
  as "$m" flock -s "$(store "$m")/gc.lock" sleep 3 &
  sleep 0.5
  ob "$m" rmi fresh:1 >"$TESTDIR/rmi-fresh-$m" 2>&1
  check "[$m] rmi while another obuild has the store open: the fresh manifest is kept for a later prune" \
    test -f "$(store_oci "$m")/blobs/sha256/${fdg#sha256:}"
  wait
  ob "$m" build -q -t fresh:1 -f "$ctx/Dockerfile.fresh" "$ctx" >/dev/null
  ob "$m" rmi fresh:1 >"$TESTDIR/rmi-fresh-$m" 2>&1
  check "[$m] ... alone with the store, rmi removes it at once" \
    test ! -e "$(store_oci "$m")/blobs/sha256/${fdg#sha256:}"

  # ---- load ----
  ob "$m" load -i "$out/d.tar" >"$TESTDIR/load-$m" 2>&1
  check_eq "[$m] load a docker-archive" "$(cat "$TESTDIR/load-$m")" "Loaded image: app:latest"
  check_eq "[$m] ... the same config (image id)" "$(ob "$m" inspect app | json_get /dev/stdin 'j["Id"]')" "$id"
  check "[$m] ... validates" oci_validate "$(store_oci "$m")" app:latest
  ob "$m" rmi app >/dev/null
  check_eq "[$m] load an oci-archive" "$(ob "$m" load -i "$out/o.tar" | sort | tr '\n' '|')" \
    "Loaded image: app:latest|Loaded image: busybox:latest|"
  check_eq "[$m] ... the very same manifest" "$(digest_of "$m" app:latest)" "$dg"

  rm -f "$TESTDIR/sk-$m.tar"
  skopeo copy -q "oci:$(store_oci "$m"):app:latest" "docker-archive:$TESTDIR/sk-$m.tar:team/app:v9"
  gzip -c "$TESTDIR/sk-$m.tar" >"$out/sk.tar.gz"; [ "$m" != root ] && chown "$T_USER" "$out/sk.tar.gz"
  check_eq "[$m] load skopeo's (classic, gzipped) docker-archive" "$(ob "$m" load -i "$out/sk.tar.gz")" \
    "Loaded image: docker.io/team/app:v9"
  check_eq "[$m] ... the same image id, found by its short name" "$(ob "$m" inspect team/app:v9 | json_get /dev/stdin 'j["Id"]')" "$id"
  check "[$m] save is deterministic" sh -c "'$OB' --root '$(store "$m")' save -o '$TESTDIR/s1.tar' app busybox \
    && '$OB' --root '$(store "$m")' save -o '$TESTDIR/s2.tar' app busybox && cmp '$TESTDIR/s1.tar' '$TESTDIR/s2.tar'"

  # a bare image: a config without history or runtime part (some tools write them)
  py '
import hashlib, io, json, sys, tarfile
d = sys.argv[1]
lt = io.BytesIO()
with tarfile.open(fileobj=lt, mode="w", format=tarfile.PAX_FORMAT) as t:
    i = tarfile.TarInfo("bare.txt"); i.size = 5; t.addfile(i, io.BytesIO(b"bare\n"))
layer = lt.getvalue(); lid = hashlib.sha256(layer).hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + lid]}}).encode()
cid = hashlib.sha256(cfg).hexdigest()
man = json.dumps([{"Config": cid + ".json", "RepoTags": ["bare:1"], "Layers": [lid + ".tar"]}]).encode()
with tarfile.open(d + "/bare.tar", "w") as t:
    for n, b in ((cid + ".json", cfg), (lid + ".tar", layer), ("manifest.json", man)):
        i = tarfile.TarInfo(n); i.size = len(b); t.addfile(i, io.BytesIO(b))
' "$out"
  [ "$m" != root ] && chown "$T_USER" "$out/bare.tar"
  check_eq "[$m] load a bare image" "$(ob "$m" load -i "$out/bare.tar")" "Loaded image: bare:1"
  check_eq "[$m] ... inspect: empty Config and History" "$(ob "$m" inspect bare:1 | json_get /dev/stdin '[j["Config"], j["History"], len(j["Layers"])]')" \
    "[{}, [], 1]"
  check_eq "[$m] ... history: one row per layer" "$(ob "$m" history bare:1 | awk 'NR > 1 { print $1, $NF }')" \
    "$(ob "$m" inspect --config bare:1 | sha256sum | cut -c1-12) $(ob "$m" inspect bare:1 | json_get /dev/stdin '"%.3gkB" % (j["Size"] / 1e3)')"

  # hostile or broken archives: exit 9, store unchanged
  echo garbage >"$out/garbage.tar"
  mkdir -p "$out/evil" && (cd "$out/evil" && tar xf ../d.tar)
  py '
import json, sys
d = sys.argv[1]; m = json.load(open(d + "/manifest.json"))
m[0]["Config"] = "../../../../etc/passwd"
json.dump(m, open(d + "/m-escape.json", "w"))
l = m[0]["Layers"][-1]; open(d + "/" + l, "r+b").write(b"X")   # content no longer its diff_id
' "$out/evil"
  (cd "$out/evil" && cp manifest.json keep.json && tar cf ../tampered.tar manifest.json *.tar *.json \
    && mv m-escape.json manifest.json && tar cf ../escape.tar manifest.json *.tar && cp keep.json manifest.json)
  [ "$m" != root ] && chown -R "$T_USER" "$out"
  snap "$m" >"$TESTDIR/before-$m"
  check_fail 9 'garbage\.tar`: not a docker-archive or oci-archive' "[$m] load of a non-archive: exit 9" \
    ob "$m" load -i "$out/garbage.tar"
  check_fail 9 'uncompressed content has digest .* the config.s diff_id is' "[$m] load of a tampered layer: exit 9" \
    ob "$m" load -i "$out/tampered.tar"
  check_fail 9 'outside the archive' "[$m] load of a path out of the archive: exit 9" ob "$m" load -i "$out/escape.tar"
  check_fail 9 'open `.*/none.tar`' "[$m] load of a missing file: exit 9" ob "$m" load -i "$out/none.tar"
  check_fail 2 'name the archive to read with -i FILE' "[$m] load without -i: exit 2" ob "$m" load
  snap "$m" >"$TESTDIR/after-$m"
  check_files "[$m] ... the store unchanged" "$TESTDIR/after-$m" "$TESTDIR/before-$m"
done

# ---- docker itself: its load takes our docker-archive, our load its save ----
if [ "$(id -u)" -eq 0 ] && command -v dockerd >/dev/null && [ -n "${root_id:-}" ]; then
  # a private daemon (tests/fixtures/docker/dockerd.sh), stopped with all it
  # made (containers, mounts, its directory) whatever happens
  DTOP=/tmp/obd6100-$$ SOCK=/tmp/obd6100-$$.sock DCONF=$TESTDIR DNAME=$T_NAME
  . "$FIXTURES/docker/dockerd.sh"
  trap 'stop_dockerd' EXIT
  if start_dockerd vfs; then
    check_eq "[docker] docker load takes obuild's docker-archive" "$(dk load -i "$TESTDIR/out-root/d.tar" 2>&1)" \
      "Loaded image: app:latest"
    check_eq "[docker] ... as the same image" "$(dk image inspect --format '{{.Id}}' app:latest)" "$root_id"
    check_eq "[docker] ... and runs it" "$(timeout 60 "$DOCKER" -H "unix://$SOCK" run --rm --network none app:latest cat /f 2>&1)" hello
    dk save -o "$TESTDIR/docker-save.tar" app:latest
    dst=$TESTDIR/from-docker
    check_eq "[docker] obuild load takes docker save's output" "$(OBUILD_ROOT=$dst "$OB" load -i "$TESTDIR/docker-save.tar")" \
      "Loaded image: app:latest"
    check_eq "[docker] ... as the same image" "$(OBUILD_ROOT=$dst "$OB" inspect app | json_get /dev/stdin 'j["Id"]')" "$root_id"
  else
    skip "[docker] dockerd did not start"; diag <"$TESTDIR/dockerd-vfs.log"
  fi
  stop_dockerd; trap - EXIT
  check "[docker] ... and the daemon left nothing behind" test ! -e "$DTOP"
else
  skip "[docker] needs root and dockerd"
fi

# ---- info ----
for m in $MODES; do
  ob "$m" info >"$TESTDIR/info-$m" 2>&1
  check_eq "[$m] info: exit 0 where RUN works" "$?" 0
  check_eq "[$m] info: the mode builds get, RUN possible" \
    "$(grep -E '^(userns mode|namespaces for RUN|RUN):' "$TESTDIR/info-$m" | tr -s ' ' | tr '\n' '|')" \
    "userns mode: $m|namespaces for RUN: ok|RUN: can run here|"
  check "[$m] info: kernel, store, overlay, newuidmap" sh -c "grep -q '^kernel: *Linux ' '$TESTDIR/info-$m' \
    && grep -q '^store: *$(store "$m") (' '$TESTDIR/info-$m' && grep -q '^overlay: ' '$TESTDIR/info-$m' \
    && grep -q '^newuidmap: ' '$TESTDIR/info-$m'"
  check_eq "[$m] info --json" "$(ob "$m" info --json | json_get /dev/stdin '[j["run"], j["userns mode"]]')" "[true, \"$m\"]"
done
if [ "$(id -u)" -eq 0 ]; then
  nst=$(userdir nouserns-store single)
  python3 "$FIXTURES/no-userns.py" "$(id -u "$T_USER")" env HOME="/home/$T_USER" OBUILD_ROOT="$nst" "$OB" info \
    >"$TESTDIR/info-nouserns" 2>"$TESTDIR/info-nouserns.err"
  check_eq "[info] user namespaces disabled: exit 7" "$?" 7
  check "[info] ... names the sysctl and the fix" grep -q \
    '^obuild: RUN steps cannot run here: RUN needs a user namespace: user namespaces are disabled (user.max_user_namespaces=0); enable them with `sysctl' \
    "$TESTDIR/info-nouserns.err"
  check "[info] ... and shows it" grep -q '^user.max_user_namespaces: *0$' "$TESTDIR/info-nouserns"
  setpriv --bounding-set -sys_admin -- env OBUILD_ROOT="$TESTDIR/nocap-store" "$OB" info >/dev/null 2>"$TESTDIR/info-nocap.err"
  check_eq "[info] root without CAP_SYS_ADMIN: exit 7" "$?" 7
  check "[info] ... says why" grep -q '^obuild: RUN steps cannot run here: RUN needs mount namespaces' "$TESTDIR/info-nocap.err"
else
  skip "[info] refused namespaces need root to set up"
fi

# ---- logout (no store involved: once) ----
auth=$TESTDIR/auth.json
REGISTRY_AUTH_FILE=$auth "$OB" login --no-check -u u -p p localhost:5999 2>/dev/null
REGISTRY_AUTH_FILE=$auth "$OB" login --no-check -u v -p q other.example 2>/dev/null
check_eq "[logout] removes the registry's credentials" "$(REGISTRY_AUTH_FILE=$auth "$OB" logout localhost:5999 2>&1; echo "exit $?")" \
  "Removed login credentials for localhost:5999
exit 0"
check_eq "[logout] ... and only them" "$(json_get "$auth" 'sorted(j["auths"])')" '["other.example"]'
check_fail 8 '^obuild: not logged into localhost:5999$' "[logout] again: exit 8" env REGISTRY_AUTH_FILE="$auth" "$OB" logout localhost:5999
check_fail 2 'usage: obuild logout' "[logout] without REGISTRY: exit 2" "$OB" logout

done_testing
