#!/bin/sh
# --squash, --annotation, --env, --build-arg-file, --target with unneeded
# stages skipped.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox AS unused
RUN echo "UNUSED-$((0+1))-RAN" >&2 && false
FROM busybox AS base
ARG A
ARG B=default
RUN echo "$A" > /a && echo "$B" > /b && mkdir /gone && touch /gone/x && rm /bin/yes
RUN rm -r /gone && mkdir -p /usr/lib && rm -rf /usr/lib && mkdir /usr/lib && echo new > /usr/lib/only
COPY Dockerfile /df
FROM base AS final
LABEL stage=final
DF
printf '# build args\nA=from-file\n\nB=also\n' >"$ctx/args.txt"
chmod -R a+rX "$ctx"
for m in $MODES; do
  import_busybox "$m"
  if ob "$m" build -t sq --squash --annotation org.example.note=hi --env EXTRA=1 --build-arg-file "$ctx/args.txt" "$ctx" >"$TESTDIR/o" 2>"$TESTDIR/e"; then
    ok "[$m] build with --squash, --annotation, --env, --build-arg-file"
  else
    not_ok "[$m] build with --squash, --annotation, --env, --build-arg-file"; diag <"$TESTDIR/e"; continue
  fi
  check_eq "[$m] the stage nobody needs was not built" "$(grep -c 'UNUSED-1-RAN' "$TESTDIR/e")" 0
  c=$TESTDIR/c-$m; skopeo_config "$(store_oci "$m")" sq:latest >"$c"
  check_eq "[$m] --squash: base layer + one" "$(json_get "$c" 'len(j["rootfs"]["diff_ids"])')" 2
  check_eq "[$m] ... history still has every step, one with a layer after the base" \
    "$(json_get "$c" 'len([h for h in j["history"][1:] if not h.get("empty_layer")])')" 1
  check_eq "[$m] --env" "$(json_get "$c" '[e for e in j["config"]["Env"] if e.startswith("EXTRA=")]')" '["EXTRA=1"]'
  man=$(skopeo inspect --raw "oci:$(store_oci "$m"):sq:latest")
  check "[$m] --annotation in the manifest" sh -c "echo '$man' | grep -q '\"org.example.note\":\"hi\"'"
  check "[$m] squashed image validates" oci_validate "$(store_oci "$m")" sq:latest
  check "[$m] ... and unpacks" umoci_unpack "$(store_oci "$m")" sq:latest "$TESTDIR/u-$m"
  r=$TESTDIR/u-$m/rootfs
  check_eq "[$m] --build-arg-file values" "$(cat "$r/a") $(cat "$r/b")" "from-file also"
  check "[$m] deletions across squashed steps hold" test ! -e "$r/bin/yes" -a ! -e "$r/gone"
  check_eq "[$m] a replaced directory holds only the new file" "$(ls "$r/usr/lib")" only
  check "[$m] the COPY is there" test -s "$r/df"
  # an image with an opaque directory as the base of RUN (unpacked for overlay)
  printf 'FROM busybox\nRUN rm -rf /usr/lib && mkdir /usr/lib && echo o > /usr/lib/o\n' >"$ctx/Dockerfile.opq1"
  printf 'FROM oci:%s/opq-%s:opq1\nRUN test "$(ls /usr/lib)" = o && echo fine > /fine\n' "$TESTDIR" "$m" >"$ctx/Dockerfile.opq2"
  chmod a+r "$ctx"/Dockerfile.opq*
  check "[$m] an image with an opaque directory" ob "$m" build -q -t opq1 -f "$ctx/Dockerfile.opq1" "$ctx"
  skopeo copy -q "oci:$(store_oci "$m"):opq1:latest" "oci:$TESTDIR/opq-$m:opq1"; chmod -R a+rX "$TESTDIR/opq-$m"
  fresh=$(store "$m")-opq; mkdir -p "$fresh"; [ "$m" != root ] && chown "$T_USER" "$fresh"
  check "[$m] ... as a RUN base in another store (unpacked): lower contents stay hidden" \
    as "$m" env OBUILD_ROOT="$fresh" "$OB" build -q -t opq2 -f "$ctx/Dockerfile.opq2" "$ctx"
done
done_testing
