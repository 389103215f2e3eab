#!/bin/sh
# Dockerfile compatibility: every case of tests/compat/ is built by obuild
# (in each mode of lib.sh: as root and unprivileged) and by buildah
# (`buildah bud --isolation chroot --layers --format oci`, as root, with its
# own storage under $TESTDIR), and the two images are compared with
# tests/tools/compare-images.py: final file trees (type, mode, owners, content,
# links, xattrs) and the config fields Docker defines.  One TAP line per case.
#
# A case is tests/compat/NNN-name/ holding a Dockerfile and its context, plus
# optionally (none of them is part of the context):
#   args        extra build arguments, one per line, given to both tools
#   env         VAR=VALUE lines, in the environment of both tools
#   Dockerfile.buildah  what buildah builds instead of Dockerfile, when
#               buildah 1.28 lacks a feature: the same result written without it
#   prepare.sh  run (sh, as root) in the copied context before the builds, to
#               make what git cannot hold: empty directories, modes, tars...
#   expect      deliberate or known differences, one directive a line:
#                 ignore-path|ignore-extra|ignore-field|ignore-owner|ignore-mode|
#                 want-field ARG    (passed to compare-images.py; want-field
#                           checks obuild's value of what is ignored)
#                 buildah-format docker   build with buildah's --format docker
#                           (pushed as Docker schema 2 into the layout): its
#                           OCI format drops Healthcheck, Shell and OnBuild
#                 modes MODE...      obuild modes this case runs in (reason in
#                           a comment: e.g. owners set by chown in RUN need
#                           root or subuid)
#                 both-fail REASON   both tools must refuse to build it
#                 known-difference REASON   an obuild bug not fixed yet: the
#                           case is reported as skipped while the images differ
# The differences every case has (buildah's own additions) are in DEFAULT_IGN
# below and documented in doc/compat.md.
# OBUILD_COMPAT_CASES="001-run-basic ..." selects cases.
. "$(dirname "$0")/lib.sh"

CASES=$OBUILD_SRCDIR/tests/compat
CMP="python3 $OBUILD_SRCDIR/tests/tools/compare-images.py"
# buildah 1.28 leaves the mount points of the files it bind-mounts for RUN
# (empty /etc/hosts and /etc/resolv.conf, an empty /run) in the layer of every
# RUN step, and labels every image with its version.
DEFAULT_IGN="--ignore-extra /etc/hosts --ignore-extra /etc/resolv.conf --ignore-extra /run
--ignore-field Labels.io.buildah.version"

if ! command -v buildah >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
  skip "compat suite needs buildah and root"; done_testing
fi
BSTORE=$TESTDIR/bs
BRUN=$TESTDIR/br
# overlay: the vfs driver of buildah 1.28 loses hardlinks made by RUN
BDRIVER=${OBUILD_COMPAT_BUILDAH_DRIVER:-overlay}
bah() { buildah --root "$BSTORE" --runroot "$BRUN" --storage-driver "$BDRIVER" "$@"; }
cleanup_buildah() {
  bah rm -a >/dev/null 2>&1
  bah rmi -a -f >/dev/null 2>&1
  # unmount whatever buildah left mounted under its directories
  grep -o " $BSTORE[^ ]*\| $BRUN[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | while read -r mp; do
    umount -l "$mp" 2>/dev/null
  done
  rm -rf "$BSTORE" "$BRUN"
}
trap cleanup_buildah EXIT INT TERM

# ---- the cases ----
list=""
for d in "$CASES"/[0-9]*/; do
  n=$(basename "$d")
  [ -f "$d/Dockerfile" ] || continue
  if [ -n "${OBUILD_COMPAT_CASES:-}" ]; then
    case " $OBUILD_COMPAT_CASES " in *" $n "*) ;; *) continue ;; esac
  fi
  list="$list $n"
done

# expect_get CASE DIRECTIVE: the arguments of DIRECTIVE lines (one per line)
expect_get() {
  [ -f "$CASES/$1/expect" ] || return 0
  sed -n "s/^$2[[:space:]][[:space:]]*//p; s/^$2\$//p" "$CASES/$1/expect" | sed 's/[[:space:]]*#.*$//'
}
has_expect() { [ -f "$CASES/$1/expect" ] && grep -q "^$2\\b" "$CASES/$1/expect"; }
case_modes() {
  _cm=$(expect_get "$1" modes | tr '\n' ' ')
  if [ -z "$_cm" ]; then echo "$MODES"; return; fi
  _r=""
  for _x in $MODES; do case " $_cm " in *" $_x "*) _r="$_r $_x" ;; esac; done
  echo "$_r"
}
# run_tool CASE CMD...: CMD (a command or function) with the case's args
# appended, then the context $CTX_ARG, in the environment of the case's env
run_tool() {
  _c=$1; shift
  if [ -f "$CASES/$_c/args" ]; then
    while IFS= read -r _a || [ -n "$_a" ]; do
      case $_a in ''|'#'*) continue ;; esac
      set -- "$@" "$_a"
    done <"$CASES/$_c/args"
  fi
  (
    if [ -f "$CASES/$_c/env" ]; then
      while IFS= read -r _kv || [ -n "$_kv" ]; do
        case $_kv in ''|'#'*) continue ;; esac
        export "$_kv"
      done <"$CASES/$_c/env"
    fi
    "$@" "$CTX_ARG"
  )
}

# make_ctx CASE DIR OWNER: a private copy of the context, prepared
make_ctx() {
  rm -rf "$2"; mkdir -p "$2"
  (cd "$CASES/$1" && tar --exclude=./args --exclude=./env --exclude=./expect \
     --exclude=./prepare.sh --exclude=./Dockerfile.buildah -cf - .) | tar -C "$2" -xpf - || return 1
  if [ -f "$CASES/$1/prepare.sh" ]; then
    (cd "$2" && sh "$CASES/$1/prepare.sh") || return 1
  fi
  [ "$3" = root ] || chown -R "$T_USER" "$2"
  chmod 755 "$2"
}

# ---- buildah: base image, then every case, in the background ----
mkdir -p "$TESTDIR/ob" "$TESTDIR/res" "$TESTDIR/cmp-cache"
export COMPARE_IMAGES_CACHE=$TESTDIR/cmp-cache
import_busybox root || { not_ok "import busybox into obuild"; done_testing; }
if ! bah pull -q "oci:$(store_oci root):busybox:latest" >"$TESTDIR/bpull.log" 2>&1 \
   || ! bah tag "$(tail -1 "$TESTDIR/bpull.log")" busybox:latest >>"$TESTDIR/bpull.log" 2>&1; then
  not_ok "busybox into buildah's storage"; diag <"$TESTDIR/bpull.log"; done_testing
fi
# whatever the pull named it, only localhost/busybox:latest stays
bah images --format '{{.Name}}:{{.Tag}}' | grep -v '^localhost/busybox:latest$' | while read -r i; do
  bah rmi "$i" >/dev/null 2>&1
done

buildah_all() {
  for c in $list; do
    r=$TESTDIR/res/$c
    CTX_ARG=$TESTDIR/ctx-buildah/$c
    if ! make_ctx "$c" "$CTX_ARG" root >"$r.bah.log" 2>&1; then echo fail >"$r.bah"; continue; fi
    fmt=$(expect_get "$c" buildah-format | head -1)
    fmt=${fmt:-oci}
    pfmt=oci; [ "$fmt" = docker ] && pfmt=v2s2
    set -- bud --pull=never --isolation chroot --layers --format "$fmt" -t "compat-$c"
    [ -f "$CASES/$c/Dockerfile.buildah" ] && set -- "$@" -f "$CASES/$c/Dockerfile.buildah"
    if run_tool "$c" bah "$@" >>"$r.bah.log" 2>&1 \
       && bah push -q --format "$pfmt" "compat-$c" "oci:$TESTDIR/bo:$c" >>"$r.bah.log" 2>&1; then
      echo ok >"$r.bah"
    else
      echo fail >"$r.bah"
    fi
  done
}
buildah_all &
bpid=$!

# ---- obuild, in each mode ----
for m in $MODES; do
  [ "$m" = root ] || import_busybox "$m"
  out=$(userdir "ob-$m" "$m")
  for c in $list; do
    case " $(case_modes "$c") " in *" $m "*) ;; *) continue ;; esac
    r=$TESTDIR/res/$c
    CTX_ARG=$TESTDIR/ctx-$m/$c
    mkdir -p "$TESTDIR/ctx-$m" && chmod 755 "$TESTDIR/ctx-$m"
    if ! make_ctx "$c" "$CTX_ARG" "$m" >"$r.$m.log" 2>&1; then echo fail >"$r.$m"; continue; fi
    if run_tool "$c" as "$m" env OBUILD_ROOT="$(store "$m")" "$OB" build \
         -t "$c" -o "$out" >>"$r.$m.log" 2>&1; then
      echo ok >"$r.$m"
    else
      echo fail >"$r.$m"
    fi
  done
done
wait "$bpid"

# ---- compare ----
for c in $list; do
  r=$TESTDIR/res/$c
  modes=$(case_modes "$c")
  why=$(expect_get "$c" known-difference | head -1)
  if has_expect "$c" both-fail; then
    bad=""
    [ "$(cat "$r.bah")" = fail ] || bad="$bad buildah"
    for m in $modes; do [ "$(cat "$r.$m")" = fail ] || bad="$bad obuild[$m]"; done
    if [ -z "$bad" ]; then ok "$c: both refuse it ($(expect_get "$c" both-fail | head -1))"
    elif [ -n "$why" ]; then ok "$c # skip known difference:$bad built it: $why"
    else not_ok "$c: should fail but built:$bad"; fi
    continue
  fi
  if [ "$(cat "$r.bah")" != ok ]; then
    not_ok "$c: buildah build failed"; tail -15 "$r.bah.log" | diag; continue
  fi
  # the comparison options: defaults + the case's
  set -- $DEFAULT_IGN
  for o in ignore-path ignore-extra ignore-field ignore-owner ignore-mode want-field; do
    _vals=$(expect_get "$c" "$o")
    _ifs=$IFS; IFS='
'
    for v in $_vals; do set -- "$@" "--$o" "$v"; done
    IFS=$_ifs
  done
  fail="" diffs=""
  for m in $modes; do
    if [ "$(cat "$r.$m")" != ok ]; then
      fail="$fail $m(build)"; diffs="$diffs
[$m] obuild build failed:
$(tail -8 "$r.$m.log")"
      continue
    fi
    if ! $CMP "$@" "$TESTDIR/ob-$m:$c:latest" "$TESTDIR/bo:$c" >"$r.$m.cmp" 2>&1; then
      fail="$fail $m"; diffs="$diffs
[$m] A=obuild B=buildah
$(head -20 "$r.$m.cmp")"
    fi
  done
  if [ -n "$why" ]; then
    if [ -n "$fail" ]; then ok "$c # skip known difference:$fail: $why"
    else ok "$c ($modes): same image although expect says known-difference: update $c/expect"; fi
  elif [ -z "$fail" ]; then
    ok "$c ($(echo $modes))"
  else
    not_ok "$c: differs in:$fail"; printf '%s\n' "$diffs" | diag
  fi
done
done_testing
