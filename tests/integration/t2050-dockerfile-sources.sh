#!/bin/sh
# Which Dockerfile is used: Dockerfile, else Containerfile, -f FILE, -f -.
. "$(dirname "$0")/lib.sh"

c1=$TESTDIR/c1; c2=$TESTDIR/c2; c3=$TESTDIR/c3
mkdir -p "$c1" "$c2" "$c3"
printf 'FROM scratch\nLABEL from=dockerfile\n' >"$c1/Dockerfile"
printf 'FROM scratch\nLABEL from=containerfile\n' >"$c1/Containerfile"
printf 'FROM scratch\nLABEL from=containerfile\n' >"$c2/Containerfile"
printf 'FROM scratch\nLABEL from=other\n' >"$TESTDIR/other.df"
chmod -R a+rX "$TESTDIR"
label() { skopeo_config "$(store_oci "$1")" "$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["Labels"]["from"])'; }
stdin_build() { printf 'FROM scratch\nLABEL from=stdin\n' | ob "$1" build -q -t d -f - "$c3"; }
for m in $MODES; do
  check "[$m] Dockerfile is preferred" ob "$m" build -q -t a "$c1"
  check_eq "[$m] ... and used" "$(label "$m" a:latest)" dockerfile
  check "[$m] Containerfile is found" ob "$m" build -q -t b "$c2"
  check_eq "[$m] ... and used" "$(label "$m" b:latest)" containerfile
  check "[$m] -f names any file" ob "$m" build -q -t c -f "$TESTDIR/other.df" "$c1"
  check_eq "[$m] ... and it is used" "$(label "$m" c:latest)" other
  check "[$m] -f - reads standard input" stdin_build "$m"
  check_eq "[$m] ... and it is used" "$(label "$m" d:latest)" stdin
  check_fail 4 "no Dockerfile or Containerfile in .*c3" "[$m] no Dockerfile: exit 4 naming the context" ob "$m" build "$c3"
  check_fail 4 "cannot read Dockerfile .*/missing.df" "[$m] -f of a missing file: exit 4" ob "$m" build -f "$TESTDIR/missing.df" "$c3"
  out=$(ob "$m" build -q -t e "$c1")
  check_eq "[$m] -q prints only the digest" "$(echo "$out" | grep -Ec '^sha256:[0-9a-f]{64}$'):$(echo "$out" | wc -l)" "1:1"
  iid=$(userdir "iid-$m" "$m")/iid
  # (two builds in different seconds differ in `created`: compare with this build)
  out=$(ob "$m" build -q --iidfile "$iid" -t e "$c1")
  check_eq "[$m] --iidfile holds the build's digest" "$(cat "$iid")" "$out"
  check_eq "[$m] ... which the tag names" "$(ob "$m" images | awk '$1 == "e:latest" { print $2 }')" "$out"
  ob "$m" images -q >"$TESTDIR/images"
  check_eq "[$m] images -q" "$(sort "$TESTDIR/images" | tr '\n' ' ')" "a:latest b:latest c:latest d:latest e:latest "
done
done_testing
