#!/bin/sh
# Every metadata instruction ends up in the image config as Docker writes
# it; ARG/ENV expansion; --build-arg, --label; history entries.
. "$(dirname "$0")/lib.sh"

ctx=$TESTDIR/ctx
mkdir -p "$ctx"
cat >"$ctx/Dockerfile" <<'DF'
# syntax=docker/dockerfile:1
ARG BASE=scratch
FROM ${BASE}
ARG VERSION=1.0
ARG FROMCLI
ENV APP_HOME=/srv/app \
    GREETING="hello world"
ENV LEGACY legacy value
LABEL org.example.version=$VERSION "org.example.desc"="a ${GREETING}"
MAINTAINER Jane Doe <jane@example.com>
EXPOSE 80 443/tcp 53/udp 8000-8002
VOLUME /data /cache
VOLUME ["/logs"]
USER 1000:1000
WORKDIR $APP_HOME
WORKDIR sub
STOPSIGNAL SIGQUIT
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --retries=3 CMD wget -q -O- http://localhost/ || exit 1
ENTRYPOINT ["/bin/app", "--serve"]
CMD serve --port 80
ONBUILD COPY . /src
LABEL fromcli=${FROMCLI:-unset} homeless=${NOPE:-default} alt=${APP_HOME:+set}
DF

for m in $MODES; do
  if ob "$m" build -t meta --build-arg FROMCLI=cli --build-arg UNUSED=1 --label extra=yes "$ctx" \
       >"$TESTDIR/out" 2>"$TESTDIR/err"; then
    ok "[$m] build with every metadata instruction"
  else
    not_ok "[$m] build with every metadata instruction"; diag <"$TESTDIR/err"; continue
  fi
  check "[$m] unused --build-arg is warned about" grep -q "warning: build argument .UNUSED. was not consumed" "$TESTDIR/err"
  c=$TESTDIR/cfg-$m.json
  skopeo_config "$(store_oci "$m")" meta:latest >"$c"
  g() { json_get "$c" "$1"; }
  check_eq "[$m] Env" "$(g 'j["config"]["Env"]')" \
    '["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP_HOME=/srv/app", "GREETING=hello world", "LEGACY=legacy value"]'
  check_eq "[$m] Labels" "$(g 'j["config"]["Labels"]')" \
    '{"alt": "set", "extra": "yes", "fromcli": "cli", "homeless": "default", "org.example.desc": "a hello world", "org.example.version": "1.0"}'
  check_eq "[$m] author from MAINTAINER" "$(g 'j["author"]')" "Jane Doe <jane@example.com>"
  check_eq "[$m] ExposedPorts" "$(g 'sorted(j["config"]["ExposedPorts"])')" \
    '["443/tcp", "53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"]'
  check_eq "[$m] Volumes" "$(g 'sorted(j["config"]["Volumes"])')" '["/cache", "/data", "/logs"]'
  check_eq "[$m] User" "$(g 'j["config"]["User"]')" "1000:1000"
  check_eq "[$m] WorkingDir relative to the previous one" "$(g 'j["config"]["WorkingDir"]')" /srv/app/sub
  check_eq "[$m] StopSignal" "$(g 'j["config"]["StopSignal"]')" SIGQUIT
  check_eq "[$m] Shell" "$(g 'j["config"]["Shell"]')" '["/bin/ash", "-eo", "pipefail", "-c"]'
  check_eq "[$m] Healthcheck" "$(g 'j["config"]["Healthcheck"]')" \
    '{"Interval": 30000000000, "Retries": 3, "StartPeriod": 60000000000, "Test": ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"], "Timeout": 5000000000}'
  check_eq "[$m] Entrypoint" "$(g 'j["config"]["Entrypoint"]')" '["/bin/app", "--serve"]'
  check_eq "[$m] shell-form CMD uses SHELL" "$(g 'j["config"]["Cmd"]')" '["/bin/ash", "-eo", "pipefail", "-c", "serve --port 80"]'
  check_eq "[$m] OnBuild" "$(g 'j["config"]["OnBuild"]')" '["COPY . /src"]'
  check_eq "[$m] created is RFC 3339" "$(g 'j["created"]' | grep -Ec '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$')" 1
  check_eq "[$m] history: one entry per instruction after FROM" "$(g 'len(j["history"])')" 19
  check_eq "[$m] WORKDIR made a layer, metadata did not" "$(g 'len(j["rootfs"]["diff_ids"])')" 2
  check_eq "[$m] history entry of ENV" "$(g 'j["history"][2]["created_by"]')" "ENV APP_HOME=/srv/app GREETING=hello world"
  check_eq "[$m] architecture" "$(g 'j["architecture"]')" "$(dpkg --print-architecture)"
  check_eq "[$m] os" "$(g 'j["os"]')" linux
done

# ENTRYPOINT clears an inherited CMD; ONBUILD triggers run in the child.
mkdir -p "$TESTDIR/child"
echo payload >"$TESTDIR/child/payload.txt"
cat >"$TESTDIR/child/Dockerfile" <<'DF'
FROM meta
ENTRYPOINT ["/bin/other"]
DF
chmod -R a+rX "$TESTDIR/child"
for m in $MODES; do
  if ob "$m" build -t child "$TESTDIR/child" >/dev/null 2>"$TESTDIR/err"; then
    ok "[$m] build FROM an image with ONBUILD"
  else
    not_ok "[$m] build FROM an image with ONBUILD"; diag <"$TESTDIR/err"; continue
  fi
  c=$TESTDIR/child-$m.json
  skopeo_config "$(store_oci "$m")" child:latest >"$c"
  check_eq "[$m] inherited CMD is cleared by ENTRYPOINT" "$(json_get "$c" 'j["config"].get("Cmd")')" null
  check_eq "[$m] ONBUILD triggers are consumed" "$(json_get "$c" 'j["config"].get("OnBuild")')" null
  check_eq "[$m] ONBUILD COPY ran (one more layer)" "$(json_get "$c" 'len(j["rootfs"]["diff_ids"])')" 3
done
done_testing
