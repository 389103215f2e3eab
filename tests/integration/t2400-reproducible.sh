#!/bin/sh
# Same inputs + SOURCE_DATE_EPOCH => the same manifest digest, from two
# checkout directories, at different times, as root and unprivileged.
. "$(dirname "$0")/lib.sh"

mk_ctx() {
  mkdir -p "$1/src/deep/er"
  echo one >"$1/src/one"
  echo two >"$1/src/deep/er/two"
  ln -sf one "$1/src/link"
  printf 'FROM scratch\nCOPY src /app/\nLABEL a=b\nWORKDIR /app\nCMD ["/app/one"]\n' >"$1/Dockerfile"
  chmod -R a+rX "$1"
}
mk_ctx "$TESTDIR/ctx1"
sleep 1
mk_ctx "$TESTDIR/ctx2"
digests=""
for m in $MODES; do
  d1=$(SOURCE_DATE_EPOCH=1700000000 ob "$m" build -q -t r1 "$TESTDIR/ctx1")
  sleep 1
  d2=$(ob "$m" build -q --source-date-epoch 1700000000 -t r2 "$TESTDIR/ctx2")
  check_eq "[$m] two checkouts, two times: same digest" "$d1" "$d2"
  [ "$d1" = "$d2" ] || python3 "$OBUILD_SRCDIR/tests/tools/explain-digest-diff.py" "$(store_oci "$m")" r1:latest "$(store_oci "$m")" r2:latest | diag
  digests="$digests $d1"
  c=$(skopeo inspect --config "oci:$(store_oci "$m"):r1:latest" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["created"], j["history"][0]["created"])')
  check_eq "[$m] created comes from SOURCE_DATE_EPOCH" "$c" "2023-11-14T22:13:20Z 2023-11-14T22:13:20Z"
  layer_listing "$(store_oci "$m")" r1:latest 0 >"$TESTDIR/l-$m"
  d3=$(ob "$m" build -q --no-cache -t r3 "$TESTDIR/ctx1")
  # the explainer names what differs (here: the times)
  check "[$m] the digest explainer names the difference" sh -c "python3 '$OBUILD_SRCDIR/tests/tools/explain-digest-diff.py' '$(store_oci "$m")' r1:latest '$(store_oci "$m")' r3:latest | grep -q 'created'"
  if [ "$d3" != "$d1" ]; then ok "[$m] without SOURCE_DATE_EPOCH the digest differs"; else not_ok "[$m] without SOURCE_DATE_EPOCH the digest differs"; fi
done
first=$(echo $digests | cut -d' ' -f1)
same=yes
for d in $digests; do [ "$d" = "$first" ] || same=no; done
check_eq "same digest in every mode ($MODES)" "$same" yes

# with RUN: root and unprivileged (subuid), cold and warm cache, two dirs
mkdir -p "$TESTDIR/rctx"
printf 'FROM busybox\nRUN mkdir -p /opt/a && echo x > /opt/a/f && ln -s f /opt/a/l && chmod 4755 /opt/a/f\nCOPY src /src/\n' >"$TESTDIR/rctx/Dockerfile"
mkdir -p "$TESTDIR/rctx/src"; echo s >"$TESTDIR/rctx/src/s"; chmod -R a+rX "$TESTDIR/rctx"
rd=""
for m in $MODES; do
  [ "$m" = single ] && continue   # single-ID mode cannot keep other owners: not comparable
  import_busybox "$m"
  a=$(SOURCE_DATE_EPOCH=1700000000 ob "$m" build -q -t rr "$TESTDIR/rctx")
  b=$(SOURCE_DATE_EPOCH=1700000000 ob "$m" build -q -t rr "$TESTDIR/rctx")
  check_eq "[$m] RUN build: cold and warm cache give the same digest" "$b" "$a"
  rd="$rd $a"
done
first=$(echo $rd | cut -d' ' -f1); same=yes
for d in $rd; do [ "$d" = "$first" ] || same=no; done
check_eq "RUN build: the same digest as root and unprivileged (subuid)" "$same" yes
if [ "$same" != yes ]; then
  python3 "$OBUILD_SRCDIR/tests/tools/explain-digest-diff.py" "$(store_oci root)" rr:latest "$(store_oci subuid)" rr:latest 2>&1 | diag
fi
done_testing
