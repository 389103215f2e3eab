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
chmod -R a+rX "$ctx"

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
done
done_testing
