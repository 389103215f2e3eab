#!/bin/sh
# obuild stays valgrind-clean (no invalid access, no use of uninitialised
# memory, no definite leak) on the main paths: import, a cold COPY build, a
# cached rebuild, a RUN build, a RUN whose files are compressed while it
# runs, in every mode.  (valgrind 3.19 does not know
# openat2(2): obuild's fallback for it runs here, with a warning.)
. "$(dirname "$0")/lib.sh"

command -v valgrind >/dev/null || { skip "valgrind not installed"; done_testing; }
ctx=$TESTDIR/ctx
mkdir -p "$ctx/src/d"
echo one >"$ctx/src/one"; echo two >"$ctx/src/d/two"; ln -s one "$ctx/src/link"
printf 'FROM busybox\nCOPY src /src\nRUN echo hi > /x && mkdir /d && rm /src/one\nLABEL a=b\n' >"$ctx/Dockerfile"
printf 'FROM busybox\nRUN seq 1 100000 >/s && head -c 300000 /dev/zero >/z && sleep 3\n' >"$ctx/Dockerfile.ahead"
chmod -R a+rX "$ctx"
vg() { # MODE ARGS...: obuild under valgrind
  _m=$1; shift
  as "$_m" env OBUILD_ROOT="$(store "$_m")" valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
    --error-exitcode=99 "$OB" "$@"
}
vg_log() { # LOG MODE ARGS...: vg, its standard error in LOG
  _l=$1; shift
  vg "$@" 2>"$_l"
}
for m in $MODES; do
  check "[$m] import under valgrind" vg "$m" import -q "$(busybox_tar)" busybox:latest
  check "[$m] cold COPY + RUN build under valgrind" vg "$m" build -q -t v "$ctx"
  check "[$m] cached rebuild under valgrind" vg "$m" build -q -t v "$ctx"
  check "[$m] ... the image validates" oci_validate "$(store_oci "$m")" v:latest
  log=$(userdir "log-$m" "$m")
  check "[$m] RUN with members made ahead under valgrind" \
    vg_log "$log/ahead.json" "$m" build --progress=json -t ahead -f "$ctx/Dockerfile.ahead" "$ctx"
  check "[$m] ... they were made ahead" grep -q '"layer_precompressed":[1-9]' "$log/ahead.json"
done
done_testing
