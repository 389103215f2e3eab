# Shared helpers for integration tests (POSIX sh, TAP output).
#
# Every test runs obuild in each available MODE:
#   root    as the real root user (no user namespace)
#   subuid  as the unprivileged user obtest, --userns=subuid
#   single  as the unprivileged user obtest, --userns=single
# When the suite itself runs unprivileged, only the current user's modes run.
set -u
: "${OBUILD_SRCDIR:?OBUILD_SRCDIR must point at the source tree}"
: "${OBUILD_BIN:?OBUILD_BIN must point at the obuild binary}"
T_NAME=$(basename "$0" .sh)
T_USER=obtest
IT_ROOT=${OBUILD_IT_ROOT:-/tmp/obuild-it}
TESTDIR=$IT_ROOT/$T_NAME
FIXTURES=$OBUILD_SRCDIR/tests/fixtures
_n=0
_failed=0

mkdir -p "$IT_ROOT" && chmod 755 "$IT_ROOT"
rm -rf "$TESTDIR" && mkdir -p "$TESTDIR" && chmod 755 "$TESTDIR"
export LC_ALL=C

# ---- TAP ----
ok() { _n=$((_n + 1)); echo "ok $_n - $*"; }
not_ok() { _n=$((_n + 1)); _failed=1; echo "not ok $_n - $*"; }
skip() { _n=$((_n + 1)); echo "ok $_n - $* # skip"; }
diag() { sed 's/^/# /'; }
done_testing() { echo "1..$_n"; exit 0; }

# check DESC CMD...: CMD must succeed.
check() {
  _d=$1; shift
  if "$@" >"$TESTDIR/.out" 2>&1; then ok "$_d"; else
    not_ok "$_d"; head -30 "$TESTDIR/.out" | diag; fi
}
# check_fail CODE PATTERN DESC CMD...: CMD must exit CODE and print PATTERN
# (an extended regex) in its one error line on stderr ("obuild: ...").
check_fail() {
  _code=$1 _pat=$2 _d=$3; shift 3
  "$@" >"$TESTDIR/.out" 2>"$TESTDIR/.err"
  _rc=$?
  # progress lines may precede it; the error itself is one "obuild:" line
  if [ "$_rc" -eq "$_code" ] && [ "$(grep -c '^obuild: ' "$TESTDIR/.err")" -eq 1 ] \
     && grep '^obuild: ' "$TESTDIR/.err" | grep -Eq -- "$_pat"; then
    ok "$_d"
  else
    not_ok "$_d (exit $_rc, wanted $_code and one line matching /$_pat/)"
    head -20 "$TESTDIR/.err" | diag
  fi
}
# check_eq DESC GOT WANT
check_eq() {
  if [ "$2" = "$3" ]; then ok "$1"; else
    not_ok "$1"; printf 'got:  %s\nwant: %s\n' "$2" "$3" | diag; fi
}
# check_files DESC GOTFILE WANTFILE
check_files() {
  if diff -u "$3" "$2" >"$TESTDIR/.diff" 2>&1; then ok "$1"; else
    not_ok "$1"; head -40 "$TESTDIR/.diff" | diag; fi
}

# ---- users and modes ----
setup_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  if ! id "$T_USER" >/dev/null 2>&1; then
    if getent group "$T_USER" >/dev/null; then
      useradd -m -s /bin/sh -g "$T_USER" "$T_USER" || return 1
    else
      useradd -m -s /bin/sh "$T_USER" || return 1
    fi
  fi
  grep -q "^$T_USER:" /etc/subuid 2>/dev/null || echo "$T_USER:300000:65536" >>/etc/subuid
  grep -q "^$T_USER:" /etc/subgid 2>/dev/null || echo "$T_USER:300000:65536" >>/etc/subgid
}
setup_user
# obuild is copied where the unprivileged user can run it.
mkdir -p "$IT_ROOT/bin"
cp "$OBUILD_BIN" "$IT_ROOT/bin/obuild.$$" && mv "$IT_ROOT/bin/obuild.$$" "$IT_ROOT/bin/obuild"
chmod 755 "$IT_ROOT/bin" "$IT_ROOT/bin/obuild"
OB=$IT_ROOT/bin/obuild

if [ -n "${OBUILD_MODES:-}" ]; then
  MODES=$OBUILD_MODES
elif [ "$(id -u)" -eq 0 ]; then
  MODES="root subuid single"
else
  MODES="single"
  grep -q "^$(id -un):" /etc/subuid 2>/dev/null && MODES="subuid single"
fi

# as MODE CMD...: run CMD as the user of MODE (stdin passed through).
as() {
  _m=$1; shift
  case $_m in
    root) "$@" ;;
    subuid|single)
      if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$T_USER" -- env HOME="/home/$T_USER" PATH="$PATH" LC_ALL=C \
          OBUILD_USERNS="$_m" ${SOURCE_DATE_EPOCH:+SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH} "$@"
      else
        env OBUILD_USERNS="$_m" "$@"
      fi ;;
  esac
}
# store MODE: the store directory of this test for MODE (created, owned by the user).
store() {
  _s=$TESTDIR/store-$1
  if [ ! -d "$_s" ]; then
    mkdir -p "$_s"
    [ "$1" != root ] && [ "$(id -u)" -eq 0 ] && chown "$T_USER" "$_s"
  fi
  echo "$_s"
}
# ob MODE ARGS...: obuild as MODE with this test's store for MODE.
ob() {
  _m=$1; shift
  as "$_m" env OBUILD_ROOT="$(store "$_m")" "$OB" "$@"
}
# ob_bg MODE PIDFILE ARGS...: `ob MODE ARGS...` meant for the background
# (`ob_bg ... &`); PIDFILE (writable by MODE's user) receives obuild's own
# pid, not runuser's, to signal it.
ob_bg() {
  _m=$1 _pf=$2; shift 2
  as "$_m" sh -c 'echo $$ >"$0"; exec "$@"' "$_pf" env OBUILD_ROOT="$(store "$_m")" "$OB" "$@"
}
# A directory the MODE's user can write.
userdir() {
  _u=$TESTDIR/$1; mkdir -p "$_u"
  [ "$2" != root ] && [ "$(id -u)" -eq 0 ] && chown "$T_USER" "$_u"
  echo "$_u"
}

# ---- base images ----
# busybox_tar: a tiny root filesystem made from Debian's busybox-static.
busybox_tar() {
  _t=$IT_ROOT/busybox.tar
  # made again unless it is a whole archive newer than its recipe (a test
  # run on its own may find what an older run left)
  if [ ! -f "$_t" ] || [ "$FIXTURES/make-busybox-rootfs.sh" -nt "$_t" ] \
     || ! tar -tf "$_t" 2>/dev/null | grep -qx './bin/busybox'; then
    rm -f "$_t"
    sh "$FIXTURES/make-busybox-rootfs.sh" "$_t.tmp" && mv "$_t.tmp" "$_t"
  fi
  echo "$_t"
}
# import_busybox MODE: import it as busybox:latest into MODE's store.
import_busybox() {
  # a fixed time: the same base image in every store, whenever imported
  ob "$1" import --source-date-epoch 1700000000 "$(busybox_tar)" busybox:latest >/dev/null
}

# ---- image inspection (run as root or the current user) ----
# oci_validate DIR TAG
# oci-image-tool 1.0.0~rc selects by the pre-1.0 annotation key, so with
# several images in one layout it cannot pick one: validate a view of the
# layout (same blobs, hard-linked) whose index.json holds only TAG.
oci_validate() {
  _v=$TESTDIR/.validate.$$
  rm -rf "$_v"; mkdir -p "$_v"
  cp "$1/oci-layout" "$_v/" && cp -al "$1/blobs" "$_v/blobs" 2>/dev/null || cp -a "$1/blobs" "$_v/blobs"
  python3 - "$1/index.json" "$2" >"$_v/index.json" <<'PY' || return 1
import json, sys
idx = json.load(open(sys.argv[1]))
idx["manifests"] = [m for m in idx["manifests"]
                    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]]
assert len(idx["manifests"]) == 1, "tag %s: %d entries" % (sys.argv[2], len(idx["manifests"]))
print(json.dumps(idx))
PY
  oci-image-tool validate --type image --ref "name=$2" "$_v" && rm -rf "$_v"
}
# umoci_unpack DIR TAG BUNDLE: unpack rootless from a private copy of DIR.
umoci_unpack() {
  _c=$TESTDIR/.umoci-layout.$$
  rm -rf "$_c" "$3"; cp -a "$1" "$_c"
  umoci unpack --rootless --image "$_c:$2" "$3" >/dev/null && rm -rf "$_c"
}
# tree_listing ROOT [--owners]: one line per entry: type mode size link path
tree_listing() {
  python3 "$FIXTURES/tree-listing.py" "$@"
}
# layer_file LAYOUT TAG N NAME: the content of NAME in layer N
layer_file() {
  python3 - "$1" "$2" "$3" "$4" <<'PY'
import json, os, sys, tarfile
layout, tag, n, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
idx = json.load(open(os.path.join(layout, "index.json")))
d = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag][-1]
blob = lambda x: os.path.join(layout, "blobs", *x.split(":"))
m = json.load(open(blob(d["digest"])))
with tarfile.open(blob(m["layers"][n]["digest"]), "r:*") as t:
    sys.stdout.write(t.extractfile(name).read().decode())
PY
}
# layer_listing DIR TAG [N]: entries of layer N (default: last) of the image,
# "type mode uid:gid size link name", read with Python's tarfile.
layer_listing() {
  python3 "$FIXTURES/layer-listing.py" "$1" "$2" "${3:--1}"
}
# config_field DIR TAG EXPR: a field of the config via skopeo (JSON) + python.
skopeo_config() {
  skopeo inspect --raw --config "oci:$1:$2"
}
json_get() { # JSONFILE EXPR (python expression on `j`)
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(json.dumps(v, sort_keys=True) if not isinstance(v,str) else v)" "$1" "$2"
}
store_oci() { echo "$(store "$1")/oci"; }

# free_port: a TCP port of 127.0.0.1 that nothing listens on now (the
# kernel's choice)
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_http DIR: python3's web server for DIR on 127.0.0.1 at a free port;
# sets port and srv (its pid, for the caller's trap).  Waits up to 30 s
# for it to answer, and says why when it never does.
start_http() {
  port=$(free_port)
  python3 -u -m http.server "$port" --bind 127.0.0.1 --directory "$1" >"$TESTDIR/http-$port.log" 2>&1 &
  srv=$!
  _i=0
  # it says so once it has bound the port (not another server on it)
  until grep -q '^Serving HTTP' "$TESTDIR/http-$port.log" 2>/dev/null && curl -s -o /dev/null "http://127.0.0.1:$port/"; do
    if ! kill -0 "$srv" 2>/dev/null || [ $_i -ge 300 ]; then
      not_ok "a web server on 127.0.0.1:$port answers"
      diag <"$TESTDIR/http-$port.log"
      return 1
    fi
    sleep 0.1; _i=$((_i + 1))
  done
}

# start_registry [HTTP_YAML [TOP_YAML]]: a docker-registry on 127.0.0.1 at a
# free port, storing in this test's directory.  HTTP_YAML is added under
# `http:` (e.g. tls), TOP_YAML at the top level (e.g. auth).  Sets
# R=127.0.0.1:PORT; the registry is stopped when the test exits.
start_registry() {
  _port=$(free_port)
  {
    printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\n' "$TESTDIR/registry-data"
    printf 'http:\n  addr: 127.0.0.1:%s\n' "$_port"
    [ -n "${1:-}" ] && printf '%s\n' "$1"
    [ -n "${2:-}" ] && printf '%s\n' "$2"
    printf 'log:\n  level: error\n'
  } >"$TESTDIR/registry.yml"
  docker-registry serve "$TESTDIR/registry.yml" >"$TESTDIR/registry.log" 2>&1 &
  REG_PID=$!
  trap 'kill $REG_PID 2>/dev/null' EXIT
  _i=0
  until curl -sk -o /dev/null "http://127.0.0.1:$_port/v2/" 2>/dev/null || curl -sk -o /dev/null "https://127.0.0.1:$_port/v2/" 2>/dev/null || [ $_i -ge 50 ]; do
    sleep 0.1; _i=$((_i + 1))
  done
  R=127.0.0.1:$_port
}
