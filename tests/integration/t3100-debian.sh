#!/bin/sh
# A real distribution: a Debian bookworm minbase made with mmdebstrap and
# imported, then apt-get, useradd/groupadd, chown and dpkg -i inside RUN,
# in every mode; the image, unpacked, runs python3 and answers HTTP, and
# so does `obuild run` of it in the background, until SIGTERM stops it.
# Needs the Debian mirror (the only network this project has); slow.
. "$(dirname "$0")/lib.sh"

deb=$IT_ROOT/debian-minbase.tar
# debian_ok TAR: a tar archive holding a Debian root with apt-get, not
# whatever an interrupted or older run left under that name
debian_ok() {
  [ -f "$1" ] && tar -tf "$1" 2>/dev/null | grep -qx './usr/bin/apt-get'
}
if ! debian_ok "$deb"; then
  rm -rf "$deb" "$deb.tmp"
  if [ "$(id -u)" -ne 0 ] || ! command -v mmdebstrap >/dev/null; then
    skip "mmdebstrap base needs root and mmdebstrap"; done_testing
  fi
  # --format=tar: mmdebstrap guesses the format from the file name otherwise
  # (".tmp" would make a directory)
  if ! mmdebstrap --quiet --variant=minbase --mode=root --format=tar bookworm "$deb.tmp" \
       >"$TESTDIR/mmdebstrap.log" 2>&1 || ! debian_ok "$deb.tmp"; then
    rm -rf "$deb.tmp"
    not_ok "mmdebstrap a Debian bookworm minbase"; diag <"$TESTDIR/mmdebstrap.log"; done_testing
  fi
  mv "$deb.tmp" "$deb"
fi
chmod 644 "$deb"

ctx=$TESTDIR/ctx
mkdir -p "$ctx" "$TESTDIR/pkg/DEBIAN" "$TESTDIR/pkg/usr/share/obuild-hello"
cat >"$TESTDIR/pkg/DEBIAN/control" <<'C'
Package: obuild-hello
Version: 1.0
Architecture: all
Maintainer: obuild tests <tests@obuild.invalid>
Description: a package installed with dpkg -i by the tests
C
echo "hello from a .deb" >"$TESTDIR/pkg/usr/share/obuild-hello/hello.txt"
dpkg-deb --root-owner-group --build "$TESTDIR/pkg" "$ctx/hello.deb" >/dev/null
cat >"$ctx/app.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"hello from obuild\n")
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 5000), H).serve_forever()
PY
cat >"$ctx/Dockerfile" <<'DF'
FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*
RUN groupadd -g 2000 grp && useradd -m -u 2000 -g grp usr && touch /owned && chown usr:grp /owned && \
    useradd -u 1500 svc && install -d -o svc -g svc /srv/svc && touch /srv/f && chown svc:svc /srv/f
COPY hello.deb /tmp/
RUN dpkg -i /tmp/hello.deb && rm /tmp/hello.deb
COPY app.py /app.py
RUN apt-get update && apt-get install -y --no-install-recommends man-db && rm -rf /var/lib/apt/lists/*
EXPOSE 5000
CMD ["python3", "/app.py"]
DF
chmod -R a+rX "$ctx"

for m in $MODES; do
  check "[$m] import the Debian base" ob "$m" import "$deb" debian:bookworm
  # --pull=never: a base that failed to import must not come from a registry
  if ob "$m" build --pull=never -t pyapp "$ctx" >"$TESTDIR/b-$m.out" 2>"$TESTDIR/b-$m.err"; then
    ok "[$m] apt-get install python3, useradd, chown, dpkg -i in RUN"
  else
    not_ok "[$m] apt-get install python3, useradd, chown, dpkg -i in RUN"; tail -30 "$TESTDIR/b-$m.err" | diag; continue
  fi
  check "[$m] image validates" oci_validate "$(store_oci "$m")" pyapp:latest
  check "[$m] umoci unpacks it" umoci_unpack "$(store_oci "$m")" pyapp:latest "$TESTDIR/u-$m"
  r=$TESTDIR/u-$m/rootfs
  check "[$m] python3 is installed" test -x "$r/usr/bin/python3"
  check "[$m] useradd wrote /etc/passwd" grep -q '^usr:x:2000:2000:' "$r/etc/passwd"
  check "[$m] dpkg -i installed the package" grep -q '^Package: obuild-hello$' "$r/var/lib/dpkg/status"
  check_eq "[$m] ... with its file" "$(cat "$r/usr/share/obuild-hello/hello.txt")" "hello from a .deb"
  check "[$m] apt's sandbox configuration is not in the image" sh -c "! grep -rqs obuild '$r/etc/apt'"
  layer_listing "$(store_oci "$m")" pyapp:latest 2 >"$TESTDIR/l2-$m"
  # single-ID mode too: its supervisor records what chown asks for
  check "[$m] chown usr:grp gives 2000:2000 in the layer" grep -q '^f 0644 2000:2000 0 - owned$' "$TESTDIR/l2-$m"
  check "[$m] install -d -o svc and chown svc:svc give 1500:1500 in the layer" \
    sh -c "grep -q '^d [0-7]* 1500:1500 0 - srv/svc\$' '$TESTDIR/l2-$m' && grep -q '^f 0644 1500:1500 0 - srv/f\$' '$TESTDIR/l2-$m'"
  awk '{ print $3, $NF }' "$TESTDIR/l2-$m" >"$TESTDIR/o2-$m"
  # useradd keeps /etc/shadow's group (shadow, 42) by fstat()ing the old
  # file and fchown()ing the new one: single-ID mode's supervisor reports
  # the recorded owner to that fstat
  check "[$m] useradd keeps /etc/shadow and /etc/gshadow 0:42" \
    sh -c "grep -qx '0:42 etc/shadow' '$TESTDIR/o2-$m' && grep -qx '0:42 etc/gshadow' '$TESTDIR/o2-$m'"
  if [ "$m" = single ] && [ -f "$TESTDIR/o2-subuid" ]; then
    check_files "[$m] that layer (useradd, install -d -o, chown): the same owners as in subuid mode, file by file" \
      "$TESTDIR/o2-$m" "$TESTDIR/o2-subuid"
  fi
  # man-db's postinst gives /var/cache/man to the user man: every owner of
  # that layer as in subuid mode (the names and owners; dpkg's logs differ
  # in size from run to run)
  layer_listing "$(store_oci "$m")" pyapp:latest 6 | awk '{ print $3, $NF }' >"$TESTDIR/l6-$m"
  check "[$m] man-db's layer has /var/cache/man owned by man (6:12)" grep -q '^6:12 var/cache/man$' "$TESTDIR/l6-$m"
  if [ "$m" = single ] && [ -f "$TESTDIR/l6-subuid" ]; then
    check_files "[$m] man-db's layer: the same owners as in subuid mode" "$TESTDIR/l6-$m" "$TESTDIR/l6-subuid"
  fi
  if [ "$(id -u)" -eq 0 ]; then
    port=$(free_port)
    chroot "$r" /usr/bin/python3 /app.py "$port" >"$TESTDIR/app-$m.out" 2>&1 &
    app=$!
    i=0; until curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 || [ $i -ge 300 ] || ! kill -0 "$app" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
    got=$(curl -sf "http://127.0.0.1:$port/")
    check_eq "[$m] the image runs python3 /app.py and answers HTTP" "$got" "hello from obuild"
    [ "$got" = "hello from obuild" ] || diag <"$TESTDIR/app-$m.out"
    kill "$app" 2>/dev/null; wait "$app" 2>/dev/null
  fi
  # the user story's end: run it, ask it, stop it
  port=$(free_port)
  d=$(userdir "run-$m" "$m")
  ob_bg "$m" "$d/pid" run pyapp python3 /app.py "$port" >"$TESTDIR/run-$m.out" 2>&1 &
  bg=$!
  i=0; until curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1 || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
  check_eq "[$m] obuild run pyapp: python3 answers HTTP on the host's port" "$(curl -sf "http://127.0.0.1:$port/")" "hello from obuild"
  kill -TERM "$(cat "$d/pid")"
  wait "$bg"
  check_eq "[$m] SIGTERM stops it: obuild exits 143" "$?" 143
  check "[$m] ... leaving no process and no scratch directory" \
    sh -c "! ps -eo args | grep -qx 'python3 /app.py $port' && [ -z \"\$(ls -A '$(store "$m")/tmp')\" ]"
done
done_testing
