#!/bin/sh
# FROM an image of the local store (made with `obuild import`): COPY with
# --chown names from the image's /etc/passwd, destinations through the
# image's symlinks, WORKDIR, existing directories keep their metadata.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx/app"
echo hello >"$ctx/hello.txt"
echo lib >"$ctx/libfoo.so"
echo main >"$ctx/app/main.txt"
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox
COPY --chown=app:staff hello.txt /home/app/
COPY --chown=1000 hello.txt /tmp/owned
COPY libfoo.so /lib/
WORKDIR /srv/www
COPY app/ ./
COPY --chmod=0600 hello.txt private
DF
chmod -R a+rX "$ctx"

for m in $MODES; do
  check "[$m] import busybox-static rootfs" import_busybox "$m"
  out=$(userdir "out-$m" "$m")
  if ob "$m" build -t from-store -o "$out" "$ctx" >"$TESTDIR/b.out" 2>"$TESTDIR/b.err"; then
    ok "[$m] build FROM busybox succeeds"
  else
    not_ok "[$m] build FROM busybox succeeds"; diag <"$TESTDIR/b.err"; continue
  fi
  check "[$m] image validates" oci_validate "$out" from-store:latest
  check "[$m] umoci unpacks it" umoci_unpack "$out" from-store:latest "$TESTDIR/bundle-$m"
  r=$TESTDIR/bundle-$m/rootfs
  check "[$m] base files are there" test -x "$r/bin/busybox"
  check "[$m] /lib is still a symlink" test -L "$r/lib"
  check_eq "[$m] COPY to /lib/ landed in /usr/lib" "$(cat "$r/usr/lib/libfoo.so")" lib
  check_eq "[$m] WORKDIR-relative COPY" "$(cat "$r/srv/www/main.txt")" main
  check_eq "[$m] --chmod applies" "$(stat -c %a "$r/srv/www/private")" 600

  layer_listing "$out" from-store:latest 1 >"$TESTDIR/l1-$m"
  cat >"$TESTDIR/want-l1" <<'W'
d 0755 0:0 0 - home
d 0755 1000:1000 0 - home/app
f 0644 1000:50 6 - home/app/hello.txt
W
  check_files "[$m] --chown=app:staff resolved from the image; parents keep base metadata" "$TESTDIR/l1-$m" "$TESTDIR/want-l1"
  layer_listing "$out" from-store:latest 2 >"$TESTDIR/l2-$m"
  cat >"$TESTDIR/want-l2" <<'W'
d 1777 0:0 0 - tmp
f 0644 1000:1000 6 - tmp/owned
W
  check_files "[$m] numeric --chown uses uid as gid; /tmp keeps 1777" "$TESTDIR/l2-$m" "$TESTDIR/want-l2"
  layer_listing "$out" from-store:latest 3 >"$TESTDIR/l3-$m"
  check_eq "[$m] the /lib symlink is not replaced by a directory" "$(grep -c ' lib$' "$TESTDIR/l3-$m")" 0
  layer_listing "$out" from-store:latest 4 >"$TESTDIR/l4-$m"
  cat >"$TESTDIR/want-l4" <<'W'
d 0755 0:0 0 - srv
d 0755 0:0 0 - srv/www
W
  check_files "[$m] WORKDIR creates its directory in a layer" "$TESTDIR/l4-$m" "$TESTDIR/want-l4"
  skopeo_config "$out" from-store:latest >"$TESTDIR/cfg-$m"
  check_eq "[$m] WorkingDir" "$(json_get "$TESTDIR/cfg-$m" 'j["config"]["WorkingDir"]')" /srv/www
  check_eq "[$m] 7 layers (1 base + 6)" "$(json_get "$TESTDIR/cfg-$m" 'len(j["rootfs"]["diff_ids"])')" 7
  man=$(skopeo inspect --raw "oci:$out:from-store:latest")
  check "[$m] manifest records the base image name" sh -c "echo '$man' | grep -q '\"org.opencontainers.image.base.name\":\"busybox:latest\"'"
  printf 'FROM busybox\nCOPY --chown=nosuchuser hello.txt /\n' >"$ctx/Dockerfile.badowner"
  check_fail 3 "Dockerfile.badowner:2: .*unable to find user nosuchuser" "[$m] unknown --chown user is a Dockerfile error" \
    ob "$m" build -f "$ctx/Dockerfile.badowner" "$ctx"
  printf 'FROM busybox\nWORKDIR /home/app\n' >"$ctx/Dockerfile.wd"
  check "[$m] WORKDIR of an existing directory builds" ob "$m" build -t wd -f "$ctx/Dockerfile.wd" "$ctx"
  skopeo_config "$(store_oci "$m")" wd:latest >"$TESTDIR/cfg-wd"
  check_eq "[$m] WORKDIR of an existing directory adds no layer" "$(json_get "$TESTDIR/cfg-wd" 'len(j["rootfs"]["diff_ids"])')" 1
done
done_testing
