#!/bin/sh
# A RUN step's big files are compressed while the step still runs (members
# made ahead, layer_precomp.c): the layer is the same, byte for byte, as
# without, a file changed after its members were made is in the layer as
# the step left it, and the image passes its consumers' checks.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
# deterministic content (compared across stores, with SOURCE_DATE_EPOCH);
# the sleep leaves the files settled while the step still runs
printf 'FROM busybox\nRUN mkdir /d && seq 1 400000 >/d/seq && seq 7 3 900000 >/d/seq2 && head -c 50000 /dev/zero >/d/zero && echo small >/d/small && sleep 2\n' >"$ctx/Dockerfile.same"
# random content, a file rewritten in place after it settled, and the
# step's own sums of what it left
printf 'FROM busybox\nRUN head -c 3000000 /dev/urandom >/r && seq 1 200000 >/s && sleep 2 && echo changed | dd of=/r bs=1 seek=1000 conv=notrunc 2>/dev/null && sha256sum /r /s >/sums\n' >"$ctx/Dockerfile.changed"
chmod -R a+rX "$ctx"

# run_step LOG: "<layer_precompressed> <layer_digest>" of the RUN step
run_step() {
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "step_end" and e["instruction"].startswith("RUN"):
        print(e["layer_precompressed"], e["layer_digest"])
PY
}

# build_made_ahead MODE LOG ARGS...: build until the RUN's layer had members
# made ahead (three tries: the thread runs at idle priority, so a machine
# busy elsewhere may leave it no time); the last try's log in LOG
build_made_ahead() {
  _m=$1 _log=$2; shift 2
  for _try in 1 2 3; do
    ob "$_m" build --no-cache --progress=json "$@" 2>"$_log" >/dev/null || return 1
    [ "$(run_step "$_log" | cut -d' ' -f1)" -gt 0 ] 2>/dev/null && return 0
  done
  return 0
}
# plain_build MODE STORE LOG ARGS...: a build without members made ahead
plain_build() {
  _m=$1 _s=$2 _log=$3; shift 3
  as "$_m" env OBUILD_ROOT="$_s" OBUILD_TEST_NO_PRECOMPRESS=1 "$OB" build --progress=json "$@" 2>"$_log" >/dev/null
}

for m in $MODES; do
  import_busybox "$m"
  log=$(userdir "log-$m" "$m")
  # the same layer with and without members made ahead (reproducible
  # builds: libdeflate; the default igzip is compared by the unit tests)
  SOURCE_DATE_EPOCH=1700000000; export SOURCE_DATE_EPOCH
  check "[$m] RUN writing big files" build_made_ahead "$m" "$log/same.json" -t same -f "$ctx/Dockerfile.same" "$ctx"
  set -- $(run_step "$log/same.json") 0 none
  made=$1 layer=$2
  check "[$m] ... some of its layer was compressed while it ran ($made bytes)" test "$made" -gt 0
  other=$(userdir "other-$m" "$m")
  as "$m" env OBUILD_ROOT="$other" "$OB" import --source-date-epoch 1700000000 "$(busybox_tar)" busybox:latest >/dev/null
  check "[$m] the same build without" plain_build "$m" "$other" "$log/plain.json" -t same -f "$ctx/Dockerfile.same" "$ctx"
  set -- $(run_step "$log/plain.json") x none
  check_eq "[$m] ... compressed nothing ahead" "$1" 0
  check_eq "[$m] ... and made the same layer" "$2" "$layer"
  unset SOURCE_DATE_EPOCH

  # a file changed after it settled: in the layer as the step left it
  check "[$m] RUN changing a settled file" build_made_ahead "$m" "$log/changed.json" -t changed -f "$ctx/Dockerfile.changed" "$ctx"
  set -- $(run_step "$log/changed.json") 0
  check "[$m] ... some of its layer was compressed while it ran ($1 bytes)" test "$1" -gt 0
  check "[$m] ... the image validates" oci_validate "$(store_oci "$m")" changed:latest
  check "[$m] ... umoci unpacks it (diff_ids checked)" umoci_unpack "$(store_oci "$m")" changed:latest "$TESTDIR/u-$m"
  check "[$m] ... both files as the step left them" \
    sh -c 'cd "$0/rootfs" && sed "s| /| |" sums | sha256sum -c -' "$TESTDIR/u-$m"
  check "[$m] ... skopeo reads it" skopeo inspect "oci:$(store_oci "$m"):changed:latest"
done
done_testing
