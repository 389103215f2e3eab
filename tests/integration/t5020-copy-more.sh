#!/bin/sh
# ADD <url> (with --checksum), COPY --exclude and COPY --parents.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx/docs/sub" "$ctx/a/b" "$TESTDIR/www"
echo r >"$ctx/docs/readme.md"; echo t >"$ctx/docs/notes.txt"; echo s >"$ctx/docs/sub/deep.md"; echo k >"$ctx/docs/keep.txt"
echo x >"$ctx/a/b/x.txt"; echo y >"$ctx/a/y.txt"
echo "remote content" >"$TESTDIR/www/file.txt"
sum=$(sha256sum "$TESTDIR/www/file.txt" | cut -d' ' -f1)
start_http "$TESTDIR/www"
trap 'kill $srv 2>/dev/null' EXIT
cat >"$ctx/Dockerfile" <<DF
FROM scratch
ADD http://127.0.0.1:$port/file.txt /dl/
ADD --checksum=sha256:$sum http://127.0.0.1:$port/file.txt /renamed.txt
COPY --exclude=*.md --exclude=notes.txt docs /docs/
COPY --parents a/b/x.txt a/y.txt /p/
DF
printf 'FROM scratch\nADD --checksum=sha256:%064d http://127.0.0.1:%s/file.txt /x\n' 0 "$port" >"$ctx/Dockerfile.badsum"
printf 'FROM scratch\nADD http://127.0.0.1:%s/missing.txt /x\n' "$port" >"$ctx/Dockerfile.404"
chmod -R a+rX "$ctx"
for m in $MODES; do
  check "[$m] ADD url, COPY --exclude, COPY --parents" ob "$m" build -q -t more "$ctx"
  check "[$m] ... unpacks" umoci_unpack "$(store_oci "$m")" more:latest "$TESTDIR/u-$m"
  r=$TESTDIR/u-$m/rootfs
  check_eq "[$m] ADD url into a directory" "$(cat "$r/dl/file.txt")" "remote content"
  check_eq "[$m] ... mode 0600 as Docker" "$(stat -c %a "$r/dl/file.txt")" 600
  check_eq "[$m] ADD --checksum url to a file name" "$(cat "$r/renamed.txt")" "remote content"
  check_eq "[$m] COPY --exclude (relative to the source, at any depth only when the pattern says so)" \
    "$(cd "$r/docs" && find . -type f | sort | tr '\n' ' ')" "./keep.txt ./sub/deep.md "
  check_eq "[$m] COPY --parents keeps the source paths" "$(cd "$r/p" && find . -type f | sort | tr '\n' ' ')" "./a/b/x.txt ./a/y.txt "
  check_fail 4 'checksum mismatch' "[$m] a wrong --checksum: exit 4" ob "$m" build -f "$ctx/Dockerfile.badsum" "$ctx"
  check_fail 4 'Dockerfile.404:2: ADD http://.*404' "[$m] a URL that answers 404: exit 4" ob "$m" build -f "$ctx/Dockerfile.404" "$ctx"
done
done_testing
