#!/bin/sh
# fresh-machine.sh [--keep] [--example-only] [REPO]
#
# What a new user gets: makes a brand-new Debian 12 root filesystem with
# mmdebstrap (the host's apt sources), enters it in new mount and PID
# namespaces with pivot_root (not chroot: the kernel refuses unprivileged
# user namespaces to a chrooted process, and obuild needs them), keeping the
# host's network for apt, clones the repository into it and runs the
# README's quick start exactly as written:
#   1. as an ordinary user, before anything is installed: scripts/example.sh
#      must stop and print the apt-get line to run as root
#   2. as root:  sh scripts/example.sh
#   3. as root:  sh scripts/test.sh          (skipped with --example-only)
#   4. as the ordinary user: sh scripts/example.sh
# and prints each command's result, time and last lines.  Removes what it
# made unless --keep; keeps the logs of failed steps.
#
# REPO: the git repository to clone (default: the one holding this script);
# its HEAD commit is what is tested, not uncommitted changes.  Needs root,
# mmdebstrap, git, util-linux (unshare, pivot_root) and the Debian mirror.
# FRESH_DIR: where the root filesystem is made (default /var/tmp; it needs a
# few GB).  Takes ~20 minutes on 2 cores with the test suite.
# Not part of CI (.ci/run): run it after any change to scripts/, the README
# or the test dependencies.
set -eu
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
keep=0 example_only=0 repo=
while [ $# -gt 0 ]; do
  case $1 in
    --keep) keep=1 ;;
    --example-only) example_only=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "fresh-machine.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -z "$repo" ] || { usage >&2; exit 2; }; repo=$1 ;;
  esac
  shift
done
[ -n "$repo" ] || repo=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-machine.sh: needs root (mmdebstrap, namespaces)" >&2; exit 2
fi
for c in mmdebstrap git unshare pivot_root; do
  command -v "$c" >/dev/null || { echo "fresh-machine.sh: $c is missing (apt-get install mmdebstrap git util-linux)" >&2; exit 2; }
done
rev=$(git -C "$repo" rev-parse --verify HEAD) || { echo "fresh-machine.sh: $repo: not a git repository" >&2; exit 2; }
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  echo "fresh-machine.sh: note: $repo has uncommitted changes; testing its HEAD $rev only" >&2
fi

work=$(mktemp -d "${FRESH_DIR:-/var/tmp}/obuild-fresh.XXXXXX")
root=$work/root
logs=$work/logs
mkdir -p "$root" "$logs"
USERNAME=newuser
results=""      # one line per step, printed at the end
failed_logs=""
status=0

cleanup() {
  trap - EXIT INT TERM
  # every mount was made in a private mount namespace that is gone by now
  if [ "$keep" = 1 ]; then
    echo "kept: $work (root filesystem: $root, logs: $logs)"
    return
  fi
  if [ -n "$failed_logs" ]; then
    kept=$(mktemp -d /tmp/obuild-fresh-logs.XXXXXX)
    for l in $failed_logs; do cp "$l" "$kept/"; done
    echo "logs of the failed steps: $kept"
  fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# enter CMD...: run CMD inside the new system as root, in new mount and PID
# namespaces whose root is the new root filesystem (pivot_root), with a
# fresh /proc, the host's /dev and /sys, a tmpfs /run, the host's network
# and a clean environment.
enter() {
  unshare --mount --pid --fork --propagation private sh -c '
    set -e
    r=$1; shift
    mount --bind "$r" "$r"
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs -o mode=755 tmpfs "$r/run"
    cp /etc/resolv.conf "$r/etc/resolv.conf"
    cd "$r"
    mkdir -p .oldroot
    pivot_root . .oldroot
    cd /
    umount -l /.oldroot
    rmdir /.oldroot
    exec env -i HOME=/root TERM="${TERM:-dumb}" \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  ' sh "$root" "$@"
}

# step ID NAME WANT-RC CMD...: run CMD (its output shown and logged in
# $logs/ID.log), time it, record whether it exited WANT-RC ("0" or "nonzero").
step() {
  _id=$1 _name=$2 _want=$3; shift 3
  _log=$logs/$_id.log
  echo
  echo "=== $_name"
  _t0=$(date +%s)
  { "$@" 2>&1 && echo 0 >"$_log.rc" || echo $? >"$_log.rc"; } | tee "$_log"
  _rc=$(cat "$_log.rc")
  _secs=$(( $(date +%s) - _t0 ))
  if { [ "$_want" = 0 ] && [ "$_rc" -eq 0 ]; } || { [ "$_want" = nonzero ] && [ "$_rc" -ne 0 ]; }; then
    _res=ok
  else
    _res=FAILED; status=1; failed_logs="$failed_logs $_log"
  fi
  results="$results
$_res: $_name: exit $_rc after $(( _secs / 60 ))m$(( _secs % 60 ))s"
  _tail=$(grep -v '^[[:space:]]*$' "$_log" | tail -n 3 | sed 's/^/    /')
  [ -z "$_tail" ] || results="$results
$_tail"
  [ "$_res" = ok ]
}

echo "host: $(uname -r), $(nproc) CPUs, user.max_user_namespaces=$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo ?)" \
  "kernel.unprivileged_userns_clone=$(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo absent)"
echo "testing $repo at $rev in $root"

# ---- the machine ----
# the host's apt sources (sources.list and sources.list.d/*.list|*.sources)
set --
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$f" ] && set -- "$@" "$f"
done
# "important": the packages of a minimal Debian install, plus git to clone
step mmdebstrap "mmdebstrap a Debian 12 root filesystem" 0 \
  mmdebstrap --mode=root --variant=important --include=git bookworm "$root" "$@" || exit 1
[ -s "$root/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
echo "fresh" >"$root/etc/hostname"
step useradd "create the ordinary user $USERNAME" 0 enter useradd -m -s /bin/bash "$USERNAME" || exit 1
# what each of them clones: the commit under test, as the branch a clone
# checks out, in a bare repository of their own (git refuses to clone from
# a repository another user owns)
bare() { # DIR OWNER
  git clone -q --bare "$repo" "$1"
  git --git-dir="$1" update-ref refs/heads/fresh-machine "$rev"
  git --git-dir="$1" symbolic-ref HEAD refs/heads/fresh-machine
  [ "$2" = root ] || chown -R "$(grep "^$2:" "$root/etc/passwd" | cut -d: -f3,4)" "$1"
}
bare "$root/root/obuild.git" root
bare "$root/home/$USERNAME/obuild.git" "$USERNAME"

as_user() { enter runuser -l "$USERNAME" -c "$1"; }

# ---- 1. before anything is installed, as the user: the hint ----
step user-hint "user: sh scripts/example.sh on the bare machine (must stop, naming the apt-get line)" nonzero \
  as_user 'git clone -q ~/obuild.git obuild && cd obuild && sh scripts/example.sh' || true
if ! grep -q '^  sudo apt-get update && sudo apt-get install -y --no-install-recommends ' \
     "$logs/user-hint.log"; then
  status=1
  results="$results
FAILED: ... the line 'sudo apt-get update && sudo apt-get install -y --no-install-recommends ...' was not printed"
fi

# ---- 2, 3: the README's two commands as root ----
step root-example "root: sh scripts/example.sh" 0 \
  enter sh -c 'git clone -q /root/obuild.git /root/obuild && cd /root/obuild && sh scripts/example.sh' || true
if [ "$example_only" = 0 ]; then
  step root-test "root: sh scripts/test.sh" 0 enter sh -c 'cd /root/obuild && sh scripts/test.sh' || true
  # as root with every test dependency installed nothing may be skipped
  if ! tail -n 1 "$logs/root-test.log" | grep -Eq '^[0-9]+ passed, 0 failed, 0 skipped$'; then
    status=1; failed_logs="$failed_logs $logs/root-test.log"
    results="$results
FAILED: ... the suite did not end with '0 failed, 0 skipped'"
  fi
  # a run that passed leaves nothing behind in the temporary directories
  left=$(cd "$root" && ls -d tmp/* tmp/.[!.]* var/tmp/* var/tmp/.[!.]* 2>/dev/null | tr '\n' ' ')
  if [ -n "$left" ]; then
    status=1
    results="$results
FAILED: ... the suite left behind: $left"
  fi
fi

# ---- 4. the first command as the user, now that root installed the packages ----
step user-example "user: sh scripts/example.sh" 0 as_user 'cd obuild && sh scripts/example.sh' || true

echo
echo "=== fresh Debian 12 machine, $repo at $(git -C "$repo" log -1 --format='%h %s' "$rev" | cut -c1-60)"
printf '%s\n' "$results" | sed '1d'
[ "$status" -eq 0 ] && echo "all steps as expected" || echo "some steps FAILED"
exit "$status"
