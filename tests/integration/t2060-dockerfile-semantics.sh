#!/bin/sh
# Dockerfile semantics where BuildKit is the reference (issue: match
# BuildKit): automatic platform ARGs, USER's supplementary groups, escaped
# escapes at the end of a line, EXPOSE word splitting, JSON form followed
# by text.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
df() { printf '%b' "$2" >"$ctx/df.$1"; }
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)

# 1. platform ARGs: predefined for FROM lines, visible in a stage after `ARG NAME`
df platform 'FROM --platform=$BUILDPLATFORM scratch AS base-linux\nFROM base-$TARGETOS\nARG TARGETOS\nARG BUILDARCH\nARG TARGETPLATFORM\nLABEL os=$TARGETOS arch=$BUILDARCH tp=$TARGETPLATFORM undeclared=${TARGETARCH:-unset}\n'
# 2. USER: the primary group and the memberships from the image's /etc/group
# (busybox fixture: app is 1000:1000 and a member of staff, 50)
df groups 'FROM busybox\nUSER app\nRUN id > /tmp/id-app\nUSER 2001:3001\nRUN id > /tmp/id-num\nUSER app:staff\nRUN id > /tmp/id-grp\n'
# 3. an escaped escape at the end of a line is no continuation
df escesc 'FROM scratch\nENV C trailing\\\\\nLABEL a=x\\\\\nLABEL b=y\n'
# 4. EXPOSE splits what an unquoted variable expands to (BuildKit's ProcessWords)
df expose 'FROM scratch\nARG PORTS="3000 4000/udp"\nEXPOSE $PORTS 80\n'
# 5. a JSON array followed by text is the shell form (the line is not JSON)
df jsontail 'FROM scratch\nCMD ["a"] x\nENTRYPOINT ["b"]  \n'
# 6. an invalid image reference in FROM is a Dockerfile error (exit 3, file:line)
df badref 'ARG V=x@@\nFROM scratch\nFROM Bad:Ref\n'
df badref2 'ARG V=x@@\nFROM a$V\n'
# ... and in COPY --from and RUN --mount from=
df badref3 'FROM scratch\nCOPY --from=Bad:Ref /f /g\n'
df badref4 'FROM scratch\nRUN --mount=from=x@@,target=/x true\n'
# 6. EXPOSE ip:host:container: a warning, the container port is exposed
df exposemap 'FROM scratch\nEXPOSE 127.0.0.1:8080:80/udp 9000:90 443\n'
# 6. duplicate stage names: a warning, the name means the latest such stage
df dupstage 'FROM scratch AS a\nLABEL which=first\nFROM scratch AS A\nLABEL which=second\nFROM a\n'
# 7. a RUN heredoc starting with #! is a file run by its path (BuildKit): the
# interpreter gets the script as a file argument, so `awk -f` works
df shebang 'FROM busybox\nRUN <<EOT\n#!/bin/awk -f\nBEGIN { print "awk ran" > "/awk.out" }\nEOT\nRUN <<-EOT\n\t#!/bin/sh -e\n\ttest -x "$0" && test -r "$0" && echo "$0" > /sh.out\n\tEOT\nRUN --security=sandbox echo ok > /sec.out\n'
# 9. RUN flags obuild does not have: exit 3 naming file:line
df insecure 'FROM scratch\nRUN --security=insecure true\n'
df device 'FROM scratch\nRUN --device=/dev/fuse true\n'
df mountvar 'FROM scratch AS a\nFROM scratch\nARG X=a\nRUN --mount=from=$X,target=/x true\n'
# 8. COPY --from takes no variables (BuildKit): exit 3 with its message
df fromvar 'FROM scratch AS a\nFROM scratch\nARG X=a\nCOPY --from=$X /f /g\n'
unset SOURCE_DATE_EPOCH # (it would win over the Dockerfile's)
# 10. ARG SOURCE_DATE_EPOCH=N before FROM: the build's epoch, as BuildKit
# (the same image as --source-date-epoch N); a value that is no number: exit 3
df epoch 'ARG SOURCE_DATE_EPOCH=1600000000\nFROM scratch\nCOPY df.epoch /f\n'
df noepoch 'FROM scratch\nCOPY df.epoch /f\n'
df badepoch 'ARG SOURCE_DATE_EPOCH=yesterday\nFROM scratch\nCOPY df.epoch /f\n'
chmod -R a+rX "$ctx"
snapshot() { (cd "$(store "$1")" && find oci -printf '%p %s\n' | sort && sha256sum oci/index.json; ls tmp); }

for m in $MODES; do
  c=$TESTDIR/cfg-$m.json
  if ob "$m" build -q -f "$ctx/df.platform" -t plat "$ctx" >"$TESTDIR/out" 2>&1; then
    ok "[$m] FROM --platform=\$BUILDPLATFORM and FROM base-\$TARGETOS build"
    skopeo_config "$(store_oci "$m")" plat:latest >"$c"
    check_eq "[$m] platform ARGs after ARG NAME; undeclared ones stay unset in a stage" \
      "$(json_get "$c" 'j["config"]["Labels"]')" \
      "{\"arch\": \"$arch\", \"os\": \"linux\", \"tp\": \"linux/$arch\", \"undeclared\": \"unset\"}"
  else
    not_ok "[$m] FROM --platform=\$BUILDPLATFORM and FROM base-\$TARGETOS build"; diag <"$TESTDIR/out"
  fi
  if ob "$m" build -q --platform linux/arm64/v8 -f "$ctx/df.platform" -t plat2 "$ctx" >"$TESTDIR/out" 2>&1; then
    ok "[$m] --platform sets the TARGET* ARGs"
    skopeo_config "$(store_oci "$m")" plat2:latest >"$c"
    check_eq "[$m] TARGETPLATFORM from --platform, BUILDARCH from this machine" \
      "$(json_get "$c" 'j["config"]["Labels"]')" \
      "{\"arch\": \"$arch\", \"os\": \"linux\", \"tp\": \"linux/arm64/v8\", \"undeclared\": \"unset\"}"
  else
    not_ok "[$m] --platform sets the TARGET* ARGs"; diag <"$TESTDIR/out"
  fi
  if ob "$m" build -q -f "$ctx/df.escesc" -t escesc "$ctx" >"$TESTDIR/out" 2>&1; then
    skopeo_config "$(store_oci "$m")" escesc:latest >"$c"
    check_eq "[$m] ENV ending in two escapes ends the instruction" "$(json_get "$c" 'j["config"]["Env"][-1]')" 'C=trailing\'
    check_eq "[$m] LABEL a=x + two escapes, then LABEL b=y" "$(json_get "$c" 'j["config"]["Labels"]')" '{"a": "x\\", "b": "y"}'
  else
    not_ok "[$m] escaped escape at the end of a line"; diag <"$TESTDIR/out"
  fi
  if ob "$m" build -q -f "$ctx/df.expose" -t expose "$ctx" >"$TESTDIR/out" 2>&1; then
    skopeo_config "$(store_oci "$m")" expose:latest >"$c"
    check_eq "[$m] EXPOSE \$PORTS: one port per word of the value" \
      "$(json_get "$c" 'sorted(j["config"]["ExposedPorts"])')" '["3000/tcp", "4000/udp", "80/tcp"]'
  else
    not_ok "[$m] EXPOSE \$PORTS with PORTS=\"3000 4000/udp\""; diag <"$TESTDIR/out"
  fi
  if ob "$m" build -q -f "$ctx/df.jsontail" -t jsontail "$ctx" >"$TESTDIR/out" 2>&1; then
    skopeo_config "$(store_oci "$m")" jsontail:latest >"$c"
    check_eq "[$m] CMD [\"a\"] x is the shell form" "$(json_get "$c" 'j["config"]["Cmd"]')" '["/bin/sh", "-c", "[\"a\"] x"]'
    check_eq "[$m] blanks after the array keep the exec form" "$(json_get "$c" 'j["config"]["Entrypoint"]')" '["b"]'
  else
    not_ok "[$m] JSON form followed by text"; diag <"$TESTDIR/out"
  fi
  snapshot "$m" >"$TESTDIR/before-$m"
  check_fail 3 '/df\.badref:3: FROM Bad:Ref: invalid tag "Bad:Ref": name components must be lower-case' \
    "[$m] FROM Bad:Ref: exit 3 naming file:line" ob "$m" build --pull=never -f "$ctx/df.badref" -t x "$ctx"
  check_fail 3 '/df\.badref2:2: FROM ax@@: invalid tag "ax@@"' \
    "[$m] an expanded invalid reference: exit 3 naming file:line" ob "$m" build -f "$ctx/df.badref2" -t x "$ctx"
  check_fail 3 '/df\.fromvar:4: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround$' \
    "[$m] COPY --from=\$X: exit 3 naming file:line" ob "$m" build -f "$ctx/df.fromvar" -t x "$ctx"
  check_fail 3 '/df\.insecure:2: RUN --security=insecure is not supported: every step runs in the sandbox$' \
    "[$m] RUN --security=insecure: exit 3" ob "$m" build -f "$ctx/df.insecure" -t x "$ctx"
  check_fail 3 '/df\.device:2: RUN --device is not supported$' \
    "[$m] RUN --device: exit 3" ob "$m" build -f "$ctx/df.device" -t x "$ctx"
  check_fail 3 "/df\\.mountvar:4: 'from' doesn't support variable expansion, define alias stage instead\$" \
    "[$m] RUN --mount=from=\$X: exit 3" ob "$m" build -f "$ctx/df.mountvar" -t x "$ctx"
  check_fail 3 '/df\.badref3:2: COPY --from=Bad:Ref: invalid tag "Bad:Ref": name components must be lower-case' \
    "[$m] COPY --from=Bad:Ref: exit 3 naming file:line" ob "$m" build --pull=never -f "$ctx/df.badref3" -t x "$ctx"
  check_fail 3 '/df\.badref4:2: RUN --mount from=x@@: invalid tag "x@@"' \
    "[$m] RUN --mount=from=x@@: exit 3 naming file:line" ob "$m" build --pull=never -f "$ctx/df.badref4" -t x "$ctx"
  check_fail 3 '/df\.badepoch:1: invalid SOURCE_DATE_EPOCH: yesterday$' \
    "[$m] ARG SOURCE_DATE_EPOCH=yesterday: exit 3" ob "$m" build -f "$ctx/df.badepoch" -t x "$ctx"
  check_fail 2 '^obuild: --build-arg SOURCE_DATE_EPOCH: invalid SOURCE_DATE_EPOCH: x1$' \
    "[$m] --build-arg SOURCE_DATE_EPOCH=x1: exit 2" ob "$m" build --build-arg SOURCE_DATE_EPOCH=x1 -f "$ctx/df.noepoch" -t x "$ctx"
  snapshot "$m" >"$TESTDIR/after-$m"
  check_files "[$m] the failed builds left the store as it was" "$TESTDIR/after-$m" "$TESTDIR/before-$m"
  if ob "$m" build -q -f "$ctx/df.exposemap" -t exposemap "$ctx" >"$TESTDIR/out" 2>"$TESTDIR/err"; then
    skopeo_config "$(store_oci "$m")" exposemap:latest >"$c"
    check_eq "[$m] EXPOSE ip:host:container exposes the container port" \
      "$(json_get "$c" 'sorted(j["config"]["ExposedPorts"])')" '["443/tcp", "80/udp", "90/tcp"]'
    check_eq "[$m] ... with one warning per mapping, naming file:line" "$(grep -c "warning: .*/df\.exposemap:2: EXPOSE instruction should not define an IP address or host-port mapping, found '\(127.0.0.1:8080:80/udp\|9000:90\)'" "$TESTDIR/err")" 2
  else
    not_ok "[$m] EXPOSE ip:host:container"; diag <"$TESTDIR/err"
  fi
  if ob "$m" build -q -f "$ctx/df.dupstage" -t dupstage "$ctx" >"$TESTDIR/out" 2>"$TESTDIR/err"; then
    skopeo_config "$(store_oci "$m")" dupstage:latest >"$c"
    check_eq "[$m] FROM a after two stages named a: the latest" "$(json_get "$c" 'j["config"]["Labels"]')" '{"which": "second"}'
    check "[$m] ... with a warning naming file:line" \
      grep -q 'warning: .*/df\.dupstage:3: Duplicate stage name "a", stage names should be unique' "$TESTDIR/err"
  else
    not_ok "[$m] duplicate stage names"; diag <"$TESTDIR/err"
  fi

  id1=$(ob "$m" build -q --no-cache -f "$ctx/df.epoch" -t epoch1 "$ctx" 2>"$TESTDIR/err")
  id2=$(ob "$m" build -q --no-cache --source-date-epoch 1600000000 -f "$ctx/df.noepoch" -t epoch2 "$ctx" 2>>"$TESTDIR/err")
  check_eq "[$m] ARG SOURCE_DATE_EPOCH=N gives the image --source-date-epoch N gives" "${id1:-none}" "${id2:-none2}"
  skopeo_config "$(store_oci "$m")" epoch1:latest >"$c"
  check_eq "[$m] ... created at N" "$(json_get "$c" 'j["created"]')" "2020-09-13T12:26:40Z"
  import_busybox "$m"
  out=$(userdir "out-$m" "$m")
  if ob "$m" build -q -f "$ctx/df.groups" -t groups -o "$out" "$ctx" >"$TESTDIR/out" 2>&1 \
     && umoci_unpack "$out" groups:latest "$TESTDIR/u-$m" >"$TESTDIR/out" 2>&1; then
    ok "[$m] RUN id after USER"
    r=$TESTDIR/u-$m/rootfs/tmp
    if [ "$m" = single ]; then
      # setgroups is denied in a user namespace with one ID: every step runs
      # as root with the groups it has (man/obuild-build.1, USER)
      check_eq "[$m] USER app: root in single-ID mode" "$(cat "$r/id-app")" "uid=0(root) gid=0(root) groups=0(root)"
    else
      check_eq "[$m] USER app: primary group and memberships" "$(cat "$r/id-app")" \
        "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)"
      check_eq "[$m] USER 2001:3001: the primary group" "$(cat "$r/id-num")" "uid=2001 gid=3001 groups=3001"
      check_eq "[$m] USER app:staff: only the given group" "$(cat "$r/id-grp")" "uid=1000(app) gid=50(staff) groups=50(staff)"
    fi
  else
    not_ok "[$m] RUN id after USER"; diag <"$TESTDIR/out"
  fi
  if ob "$m" build -q -f "$ctx/df.shebang" -t shebang -o "$out" "$ctx" >"$TESTDIR/out" 2>&1 \
     && umoci_unpack "$out" shebang:latest "$TESTDIR/s-$m" >"$TESTDIR/out" 2>&1; then
    check_eq "[$m] RUN <<EOT with #!/bin/awk -f runs awk on the script file" "$(cat "$TESTDIR/s-$m/rootfs/awk.out")" "awk ran"
    check_eq "[$m] ... and <<- with #!/bin/sh -e: \$0 is an executable file" "$(cat "$TESTDIR/s-$m/rootfs/sh.out")" "/dev/stdin"
    check_eq "[$m] RUN --security=sandbox: the default, accepted" "$(cat "$TESTDIR/s-$m/rootfs/sec.out")" "ok"
  else
    not_ok "[$m] RUN heredoc with a #! line"; diag <"$TESTDIR/out"
  fi
done
done_testing
