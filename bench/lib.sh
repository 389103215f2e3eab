# bench/lib.sh: shared helpers for the obuild vs buildah benchmarks.
# Sourced by bench/run.sh and by each bench/b-NAME.sh (which can run alone).
#
# Environment:
#   BENCH_RUNS=N      timed runs per tool (default 3; --quick sets 1)
#   BENCH_QUICK=1     smallest inputs, busybox base, 1 run (set by --quick)
#   BENCH_USER=name   run both tools as this unprivileged user (root by default)
#   BENCH_BASE=busybox|debian   base image for the RUN benchmarks
#                     (default: debian, busybox with --quick)
#   BENCH_OBUILD=path obuild binary to copy (default: <repo>/obuild)
#   BENCH_KEEP=1      keep the per-run directories (for debugging)
# Everything temporary lives under /tmp/bench-*: /tmp/bench-bin (the obuild
# copy), /tmp/bench-cache (generated inputs, base images), /tmp/bench-run.*
# (one directory per benchmark invocation, by default a loop-mounted ext4
# backed by /tmp/bench-run.*.img; unmounted and removed at exit).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_REPO=$(cd "$BENCH_DIR/.." && pwd)
BENCH_CACHE=${BENCH_CACHE:-/tmp/bench-cache}
BENCH_BIN=${BENCH_BIN:-/tmp/bench-bin}
: "${BENCH_QUICK:=0}"
if [ "$BENCH_QUICK" = 1 ]; then : "${BENCH_RUNS:=1}"; else : "${BENCH_RUNS:=3}"; fi
if [ "$BENCH_QUICK" = 1 ]; then : "${BENCH_BASE:=busybox}"; else : "${BENCH_BASE:=debian}"; fi
: "${BENCH_USER:=}"
: "${BENCH_OBUILD:=$BENCH_REPO/obuild}"
: "${BENCH_RESULTS:=}"   # file that table rows are appended to (run.sh sets it)
OBUILD=$BENCH_BIN/obuild
BUILDAH_TAG=localhost/bench-base:latest

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# ---- setup ---------------------------------------------------------------

# Copy the obuild binary (the tree's one may be rebuilt while we run).
bench_copy_obuild() {
  [ -x "$BENCH_OBUILD" ] || die "no obuild binary at $BENCH_OBUILD"
  mkdir -p "$BENCH_BIN"
  cp "$BENCH_OBUILD" "$BENCH_BIN/obuild.tmp.$$" && mv -f "$BENCH_BIN/obuild.tmp.$$" "$OBUILD"
  chmod 755 "$BENCH_BIN" "$OBUILD"
}

bench_check_tools() {
  local t
  for t in buildah skopeo umoci /usr/bin/time; do
    command -v "$t" >/dev/null || die "missing $t (apt-get install -y buildah skopeo umoci time)"
  done
  if [ -n "$BENCH_USER" ]; then
    [ "$(id -u)" = 0 ] || die "BENCH_USER needs the script to run as root (it switches with runuser)"
    id "$BENCH_USER" >/dev/null 2>&1 || die "no user $BENCH_USER"
    grep -q "^$BENCH_USER:" /etc/subuid || log "warning: $BENCH_USER has no /etc/subuid range; rootless buildah will likely fail"
  fi
}

# A per-invocation work directory, removed (with any buildah state) at exit.
# BENCH_FS=loop (default as root): a fresh journaled ext4 on a loop file,
# mounted at the work directory.  The point: this machine's / is ext4 *without
# a journal*, where creating files within ~5 minutes of mass deletions (ours,
# or other jobs') spends milliseconds per inode in ext4's recently_deleted()
# scan, which made timings vary 10x.  BENCH_FS=tmp: a plain directory in /tmp.
# BENCH_FS=tmpfs: a tmpfs (no disk at all).
: "${BENCH_FS:=}"
: "${BENCH_FS_SIZE:=24G}"
BENCH_WORK=
BENCH_MOUNTED=
bench_workdir() {
  BENCH_WORK=$(mktemp -d /tmp/bench-run.XXXXXX)
  trap bench_cleanup_all EXIT
  trap 'exit 130' INT TERM
  if [ -z "$BENCH_FS" ]; then
    if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null && command -v mkfs.ext4 >/dev/null; then
      BENCH_FS=loop
    else
      BENCH_FS=tmp
    fi
  fi
  case $BENCH_FS in
    loop)
      truncate -s "$BENCH_FS_SIZE" "$BENCH_WORK.img" &&
        mkfs.ext4 -q -F -E lazy_itable_init=1 "$BENCH_WORK.img" >/dev/null 2>&1 &&
        mount -o loop "$BENCH_WORK.img" "$BENCH_WORK" 2>/dev/null &&
        BENCH_MOUNTED=$BENCH_WORK ||
        { log "warning: no loop ext4 (BENCH_FS=loop), using plain /tmp"; rm -f "$BENCH_WORK.img"; BENCH_FS=tmp; } ;;
    tmpfs)
      mount -t tmpfs -o size="$BENCH_FS_SIZE",mode=755 bench "$BENCH_WORK" && BENCH_MOUNTED=$BENCH_WORK ||
        { log "warning: no tmpfs, using plain /tmp"; BENCH_FS=tmp; } ;;
    tmp) ;;
    *) die "BENCH_FS must be loop, tmpfs or tmp" ;;
  esac
  chmod 755 "$BENCH_WORK"
  mkdir -p "$BENCH_WORK/tmp"; chmod 1777 "$BENCH_WORK/tmp"
  export TMPDIR=$BENCH_WORK/tmp
}

bench_cleanup_all() {
  [ -n "$BENCH_WORK" ] && [ -d "$BENCH_WORK" ] || return 0
  local d
  for d in "$BENCH_WORK"/*/bstore; do
    [ -d "$d" ] && bench_buildah_wipe "$(dirname "$d")"
  done
  bench_umount_under "$BENCH_WORK"
  if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $BENCH_WORK"; return 0; fi
  if [ -n "$BENCH_MOUNTED" ]; then
    umount "$BENCH_MOUNTED" 2>/dev/null || umount -l "$BENCH_MOUNTED"
    rm -f "$BENCH_WORK.img"
  fi
  rm -rf "$BENCH_WORK"
}

# Unmount anything still mounted below $1 (deepest first).
bench_umount_under() {
  local m
  awk -v p="$1/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# Run a command as the benchmark user (or as is).
as_user() {
  if [ -n "$BENCH_USER" ]; then
    runuser -u "$BENCH_USER" -- env HOME="$(getent passwd "$BENCH_USER" | cut -d: -f6)" \
      XDG_RUNTIME_DIR= XDG_DATA_HOME= "$@"
  else
    "$@"
  fi
}

# Give a path to the benchmark user.
own() { [ -z "$BENCH_USER" ] || chown -R "$BENCH_USER:" "$@"; }

# A fresh directory for one run of one tool: $1 = name under the work dir.
fresh_dir() {
  local d=$BENCH_WORK/$1
  [ -d "$d/bstore" ] && bench_buildah_wipe "$d"
  bench_umount_under "$d"
  rm -rf "$d"; mkdir -p "$d"; own "$d"
  printf '%s\n' "$d"
}

# ---- the two tools -------------------------------------------------------

# ob DIR ARGS...: obuild with its store in DIR/ostore.
ob() { local d=$1; shift; as_user env OBUILD_ROOT="$d/ostore" "$OBUILD" "$@"; }

# bh DIR ARGS...: buildah with private storage in DIR/bstore, DIR/brun.
bh() {
  local d=$1; shift
  as_user buildah --root "$d/bstore" --runroot "$d/brun" --storage-driver overlay "$@"
}

# Remove buildah containers/images and storage of a run directory.
bench_buildah_wipe() {
  local d=$1
  [ -d "$d/bstore" ] || return 0
  bh "$d" rm -a >/dev/null 2>&1 || true
  bh "$d" rmi -a -f >/dev/null 2>&1 || true
  bench_umount_under "$d/bstore"; bench_umount_under "$d/brun"
  rm -rf "$d/bstore" "$d/brun" 2>/dev/null || true
}

# bh_bud_push DIR DOCKERFILE CONTEXT [PULL-POLICY]: buildah bud (chroot
# isolation, --layers) then push to the OCI layout DIR/out, what
# `obuild build -o DIR/out` does.  The pull policy defaults to never.
bh_bud_push() {
  local d=$1 df=$2 ctx=$3 pull=${4:-never}
  bh "$d" bud -q --isolation chroot --layers --pull="$pull" -t bench-img -f "$df" "$ctx" >/dev/null &&
    bh "$d" push -q bench-img "oci:$d/out:bench-img"
}
# bh_bud DIR DOCKERFILE CONTEXT: buildah bud alone (the image stays in its
# storage; no layout written).
bh_bud() {
  local d=$1 df=$2 ctx=$3
  bh "$d" bud -q --isolation chroot --layers --pull=never -t bench-img -f "$df" "$ctx" >/dev/null
}
# ob_build DIR DOCKERFILE CONTEXT: obuild build, also into the layout DIR/out.
ob_build() {
  local d=$1 df=$2 ctx=$3
  ob "$d" build -q -t bench-img -f "$df" -o "$d/out" "$ctx" >/dev/null
}
# ob_build_opts DIR DOCKERFILE CONTEXT OPTIONS...: ob_build with more options.
ob_build_opts() {
  local d=$1 df=$2 ctx=$3; shift 3
  ob "$d" build -q "$@" -t bench-img -f "$df" -o "$d/out" "$ctx" >/dev/null
}
# ob_build_plain DIR DOCKERFILE CONTEXT: ob_build without members made
# ahead (a RUN's files compressed while it runs; off for comparison)
ob_build_plain() {
  local d=$1 df=$2 ctx=$3
  as_user env OBUILD_ROOT="$d/ostore" OBUILD_TEST_NO_PRECOMPRESS=1 "$OBUILD" build -q -t bench-img -f "$df" \
    -o "$d/out" "$ctx" >/dev/null
}
export -f as_user ob bh bh_bud_push bh_bud ob_build ob_build_opts ob_build_plain
export OBUILD BENCH_USER

# ---- inputs --------------------------------------------------------------

# The busybox rootfs tarball (tests/fixtures/make-busybox-rootfs.sh).
base_tar_busybox() {
  local t=$BENCH_CACHE/busybox-rootfs.tar
  if [ ! -s "$t" ]; then
    mkdir -p "$BENCH_CACHE"
    sh "$BENCH_REPO/tests/fixtures/make-busybox-rootfs.sh" "$t.tmp" || die "busybox rootfs"
    mv "$t.tmp" "$t"
  fi
  chmod 755 "$BENCH_CACHE"; chmod 644 "$t"
  printf '%s\n' "$t"
}

# A Debian bookworm minbase tarball made with mmdebstrap (cached; needs root
# and Debian's mirror the first time, ~30 s).
base_tar_debian() {
  local t=$BENCH_CACHE/debian-minbase.tar
  if [ ! -s "$t" ]; then
    [ "$(id -u)" = 0 ] || die "making the Debian base needs root (mmdebstrap --mode=root)"
    command -v mmdebstrap >/dev/null || die "apt-get install -y mmdebstrap"
    mkdir -p "$BENCH_CACHE"
    log "mmdebstrap bookworm minbase -> $t"
    mmdebstrap --quiet --variant=minbase --mode=root --format=tar bookworm "$t.tmp" \
      >"$BENCH_CACHE/mmdebstrap.log" 2>&1 || { rm -f "$t.tmp"; die "mmdebstrap failed, see $BENCH_CACHE/mmdebstrap.log"; }
    mv "$t.tmp" "$t"
  fi
  chmod 755 "$BENCH_CACHE"; chmod 644 "$t"
  printf '%s\n' "$t"
}

base_tar() { case $1 in busybox) base_tar_busybox ;; debian) base_tar_debian ;; *) die "unknown base $1" ;; esac; }

# The same base as an OCI layout, for buildah and umoci: made once by obuild
# import into a scratch store, then copied with skopeo to
# $BENCH_CACHE/oci-$1 (tag "base").  Prints the layout path.
base_oci() {
  local name=$1 tar lay=$BENCH_CACHE/oci-$1 tmp
  tar=$(base_tar "$name") || exit 1
  if [ ! -f "$lay/index.json" ] || [ "$lay/.stamp" -ot "$tar" ]; then
    tmp=$(mktemp -d /tmp/bench-imp.XXXXXX)
    OBUILD_ROOT=$tmp "$OBUILD" import -q --source-date-epoch 1700000000 "$tar" base:latest >/dev/null \
      || { rm -rf "$tmp"; die "obuild import $tar"; }
    rm -rf "$lay"
    skopeo copy -q "oci:$tmp/oci:base:latest" "oci:$lay:base" || { rm -rf "$tmp"; die "skopeo copy"; }
    rm -rf "$tmp"; touch "$lay/.stamp"
  fi
  chmod -R a+rX "$lay"
  printf '%s\n' "$lay"
}

# A context of N files of 1-4 KiB spread over D directories (deterministic
# content, cached).  Prints the directory.
small_files_ctx() {
  local n=$1 dirs=$2 c=$BENCH_CACHE/ctx-files-$1-$2
  if [ ! -f "$c/.done" ]; then
    rm -rf "$c"; mkdir -p "$c"
    perl -e '
      my ($root, $n, $d) = @ARGV; my $per = int(($n + $d - 1) / $d); my $s = 12345;
      sub rnd { $s = ($s * 1103515245 + 12345) % 2147483648; return $s; }
      for my $i (0 .. $n - 1) {
        my $dir = sprintf("%s/d%03d", $root, int($i / $per));
        mkdir $dir unless -d $dir;
        my $len = 1024 + rnd() % 3073;
        my $buf = join("", map { chr(32 + rnd() % 95) } 1 .. 64);
        my $data = substr($buf x (int($len / 64) + 1), 0, $len);
        open(my $f, ">", sprintf("%s/f%05d.txt", $dir, $i)) or die $!;
        print $f $data; close $f;
      }' "$c" "$n" "$dirs" || die "generating the context"
    touch "$c/.done"
  fi
  chmod -R a+rX "$c"
  printf '%s\n' "$c"
}

# ---- measuring -----------------------------------------------------------

# measure OUTPREFIX CMD...: run CMD once; append the wall seconds to
# OUTPREFIX.t and the peak RSS (KiB, largest single process of the tree, as
# /usr/bin/time reports it) to OUTPREFIX.m.  Returns CMD's status; its output
# goes to OUTPREFIX.log.
measure() {
  local p=$1; shift
  local t0 t1 rc rss
  # untimed: no dirty data of earlier commands (the other tool's run, its
  # clean-up) is still being written back when the timed command starts
  sync
  t0=$(date +%s.%N)
  # bash -c so that the exported shell functions below (ob, bh, ...) work.
  /usr/bin/time -f '%M' -o "$p.rss1" bash -c '"$@"' bash "$@" >>"$p.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  if [ $rc -ne 0 ]; then
    log "FAILED (exit $rc): $*"; tail -n 15 "$p.log" | sed 's/^/    /' >&2
    return $rc
  fi
  rss=$(tail -n 1 "$p.rss1")
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >>"$p.t"
  echo "$rss" >>"$p.m"
  return 0
}

# median FILE: median of the numbers in FILE ("-" when empty).
median() {
  [ -s "$1" ] || { echo "-"; return; }
  sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2];
    else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# peak_mib FILE: largest peak RSS in FILE, in MiB.
peak_mib() {
  [ -s "$1" ] || { echo "-"; return; }
  sort -n "$1" | tail -n 1 | awk '{ printf "%.1f\n", $1 / 1024 }'
}

table_header() {
  printf '| %-28s | %16s | %17s | %20s | %20s | %21s |\n' \
    benchmark "obuild median s" "buildah median s" "ratio obuild/buildah" "obuild peak RSS MiB" "buildah peak RSS MiB"
  printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 30))" "$(printf -- '-%.0s' $(seq 18))" \
    "$(printf -- '-%.0s' $(seq 19))" "$(printf -- '-%.0s' $(seq 22))" "$(printf -- '-%.0s' $(seq 22))" \
    "$(printf -- '-%.0s' $(seq 23))"
}

# table_row NAME APREFIX BPREFIX: a row comparing the runs recorded under two
# prefixes (the second tool is buildah unless NAME says otherwise).
table_row() {
  local name=$1 a=$2 b=$3 ma mb ratio
  ma=$(median "$a.t"); mb=$(median "$b.t")
  if [ "$ma" = - ] || [ "$mb" = - ]; then ratio="-"
  else ratio=$(awk -v x="$ma" -v y="$mb" 'BEGIN { if (y > 0) printf "%.2f (%.1fx)", x / y, y / x; else print "-" }'); fi
  local row
  row=$(printf '| %-28s | %16s | %17s | %20s | %20s | %21s |' \
    "$name" "$ma" "$mb" "$ratio" "$(peak_mib "$a.m")" "$(peak_mib "$b.m")")
  if [ -n "$BENCH_RESULTS" ]; then printf '%s\n' "$row" >>"$BENCH_RESULTS"; log "$row"
  else printf '%s\n' "$row"; fi
  return 0
}

# A note under the table (also collected by run.sh).
note() {
  printf '  note: %s\n' "$*" >&2
  [ -n "$BENCH_RESULTS" ] && printf 'note: %s\n' "$*" >>"$BENCH_RESULTS.notes"
  return 0
}

# Set up the common state for a benchmark script run alone or from run.sh.
bench_init() {
  bench_check_tools
  bench_copy_obuild
  bench_workdir
  mkdir -p "$BENCH_WORK/res"
  log "obuild $(sha256sum "$OBUILD" | cut -c1-12), $BENCH_RUNS run(s), user ${BENCH_USER:-root}, base $BENCH_BASE"
}

# Does this obuild run RUN?  (Probed once on the busybox base.)  Returns 0
# yes, 2 when obuild says RUN is not supported (yet), 1 on another failure.
OBUILD_RUN_STATUS=
obuild_has_run() {
  [ -n "$OBUILD_RUN_STATUS" ] && return "$OBUILD_RUN_STATUS"
  local d
  d=$(fresh_dir probe-run)
  mkdir -p "$d/ctx"; printf 'FROM base\nRUN true\n' >"$d/Dockerfile"; own "$d"
  ob "$d" import -q "$(base_tar_busybox)" base:latest >/dev/null 2>"$d/err" &&
    ob "$d" build -q -t probe -f "$d/Dockerfile" "$d/ctx" >/dev/null 2>>"$d/err"
  local rc=$?
  if [ $rc -ne 0 ]; then
    log "obuild RUN probe failed: $(tail -n 1 "$d/err")"
    if grep -q 'not supported' "$d/err"; then rc=2; else rc=1; fi
  fi
  rm -rf "$d"
  OBUILD_RUN_STATUS=$rc
  return $rc
}

# Dockerfile text for a base: the name obuild uses (a store tag made by
# `obuild import`) or the one buildah uses (an image tagged in its storage).
OB_BASE=base:latest
BH_BASE=localhost/bench-base:latest

# ob_import DIR: import the base tarball into DIR's obuild store as base:latest.
ob_import() { ob "$1" import -q "$(base_tar "$BENCH_BASE")" "$OB_BASE" >/dev/null; }
# bh_pull DIR: pull the base OCI layout into DIR's buildah storage, tag it.
bh_pull() {
  local id
  id=$(bh "$1" pull -q "oci:$(base_oci "$BENCH_BASE"):base") && bh "$1" tag "$id" "$BH_BASE"
}
# ob_import_build DIR DOCKERFILE CONTEXT: import the base, then ob_build.
ob_import_build() { ob_import "$1" && ob_build "$@"; }
# check_out DIR: the run left an OCI layout in DIR/out.
check_out() { [ -f "$1/out/index.json" ] || { log "no OCI layout in $1/out"; return 1; }; }
export -f ob_import bh_pull ob_import_build base_tar base_tar_busybox base_tar_debian base_oci log die own
export BENCH_BASE BENCH_CACHE BENCH_REPO OB_BASE BH_BASE

# ---- the "example service" (cached-rebuild, rebuild-change) --------------

# The RUN of the example service: apt-get install of python3 on the Debian
# base when Debian's mirror answers; otherwise (and noted) a RUN that writes
# ~50 MB of files; on the busybox base (--quick) a small RUN.
service_run_cmd() {
  if [ "$BENCH_BASE" = busybox ]; then
    echo 'mkdir -p /data && for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=/data/f$i bs=64k count=4 2>/dev/null; done'
  elif curl -s -o /dev/null --max-time 10 http://deb.debian.org/debian/dists/bookworm/InRelease; then
    echo 'apt-get update && apt-get install -y --no-install-recommends python3'
  else
    echo 'mkdir -p /data && for i in $(seq 1 50); do head -c 1048576 /dev/urandom > /data/f$i; done'
  fi
}

# service_ctx DIR BASE RUNCMD: write DIR/Dockerfile and DIR/app.py for the
# example service: FROM BASE, RUN RUNCMD, COPY app.py /app/, CMD.
service_ctx() {
  local c=$1 base=$2 cmd=$3
  mkdir -p "$c"
  printf 'FROM %s\nRUN %s\nCOPY app.py /app/\nCMD ["python3", "/app/app.py"]\n' "$base" "$cmd" >"$c/Dockerfile"
  printf '# the example service\nVERSION = "0"\n\nif __name__ == "__main__":\n    print("hello from", VERSION)\n' >"$c/app.py"
  chmod -R a+rX "$c"; own "$c"
}

# service_change DIR N: the one-line change of app.py before a timed rebuild.
service_change() { sed -i "s/^VERSION = .*/VERSION = \"$2\"/" "$1/app.py"; }

# service_bench KIND: cached-rebuild (KIND=cached, nothing changes) or
# rebuild-change (KIND=change, app.py gets a one-line change before each
# timed run).  Each tool keeps one store / storage for all runs of the
# benchmark and its output layout DIR/out; the first build is untimed.
service_bench() {
  local kind=$1 name r w cmd i d st t0 t1
  [ "$kind" = cached ] && name=cached-rebuild || name=rebuild-change
  r=$BENCH_WORK/res/$name; w=$BENCH_WORK/$name
  cmd=$(service_run_cmd)
  log "$name: $BENCH_BASE base, RUN $cmd"
  case $cmd in
    *apt-get*) ;;
    *) [ "$BENCH_BASE" = busybox ] ||
         note "$name: Debian mirror unreachable, RUN writes ~50 MB of random files instead of apt-get install python3" ;;
  esac
  obuild_has_run; st=$?
  [ $st -eq 1 ] && return 1
  base_oci "$BENCH_BASE" >/dev/null || return 1
  mkdir -p "$w"; chmod 755 "$w"
  service_ctx "$w/ob-ctx" "$OB_BASE" "$cmd"
  service_ctx "$w/bh-ctx" "$BH_BASE" "$cmd"

  if [ $st -eq 0 ]; then
    d=$(fresh_dir "ob-$name")
    t0=$(date +%s.%N)
    { ob_import "$d" && ob_build "$d" "$w/ob-ctx/Dockerfile" "$w/ob-ctx"; } >"$r.ob.first.log" 2>&1 ||
      { log "obuild first build failed"; tail -n 15 "$r.ob.first.log" >&2; return 1; }
    t1=$(date +%s.%N)
    log "$name: obuild first build (untimed, import included) $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
    for i in $(seq "$BENCH_RUNS"); do
      [ "$kind" = change ] && service_change "$w/ob-ctx" "$i"
      measure "$r.ob" ob_build "$d" "$w/ob-ctx/Dockerfile" "$w/ob-ctx" || return 1
      check_out "$d" || return 1
    done
    if [ "$kind" = cached ]; then
      # Check that obuild really ran no step.
      ob "$d" build -t bench-img -f "$w/ob-ctx/Dockerfile" -o "$d/out" "$w/ob-ctx" >"$r.ob.check" 2>&1
      [ "$(grep -c -- '--> CACHED' "$r.ob.check")" -ge 2 ] ||
        note "$name: obuild did not report its RUN and COPY as CACHED"
    fi
    rm -rf "$d"
  fi

  d=$(fresh_dir "bh-$name")
  t0=$(date +%s.%N)
  { bh_pull "$d" >/dev/null && bh_bud_push "$d" "$w/bh-ctx/Dockerfile" "$w/bh-ctx"; } >"$r.bh.first.log" 2>&1 ||
    { log "buildah first build failed"; tail -n 15 "$r.bh.first.log" >&2; return 1; }
  t1=$(date +%s.%N)
  log "$name: buildah first build (untimed, pull included) $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
  for i in $(seq "$BENCH_RUNS"); do
    [ "$kind" = change ] && service_change "$w/bh-ctx" "$i"
    measure "$r.bh" bh_bud_push "$d" "$w/bh-ctx/Dockerfile" "$w/bh-ctx" || return 1
    check_out "$d" || return 1
    # buildah without writing a layout (its image stays in its storage, as
    # obuild's does in the store): another change, so this run builds too
    [ "$kind" = change ] && service_change "$w/bh-ctx" "$i-bud"
    measure "$r.bhnp" bh_bud "$d" "$w/bh-ctx/Dockerfile" "$w/bh-ctx" || return 1
  done
  bench_buildah_wipe "$d"; rm -rf "$d"
  [ $st -eq 2 ] && note "$name: obuild does not support RUN yet, its column is empty"
  table_row "$name ($BENCH_BASE)" "$r.ob" "$r.bh"
  table_row "  extra: bh without push" "$r.ob" "$r.bhnp"
}
export -f service_change
