#!/bin/sh
# deps.sh [--example|--test]: install the Debian 12 packages obuild needs to
# build (with --example: and to build examples/hello; with --test: and to run
# the whole test suite).  Installs only what is missing; as another user than
# root, prints the command to run instead.
set -eu
PKGS="build-essential autoconf automake pkg-config libarchive-dev libjansson-dev \
libseccomp-dev libssl-dev libcurl4-openssl-dev zlib1g-dev libzstd-dev libdeflate-dev libisal-dev"
case ${1:-} in
  --example) PKGS="$PKGS busybox-static" ;;   # the example's base image
  --test)
    # busybox-static: the tests' base image; uidmap: subuid mode; buildah:
    # t5000-compat and bench/run.sh (t9000), which also needs time (/usr/bin/time);
    # mmdebstrap: t3100-debian's base (from the Debian mirror)
    # openssh-client: ssh-agent, for t3200-run-mount's RUN --mount=type=ssh
    # docker.io: t8000/t8010 start a private Docker engine (CI job containers)
    # clang, libclang-rt-14-dev: the libFuzzer harnesses (t7900-fuzz-smoke)
    # qemu-user-static, binfmt-support: t3070-multiplatform's arm64 RUN (qemu-aarch64
    # registered with the F flag); its arm64 busybox is fetched below
    # tmux: a real terminal for t6300-progress's --progress=tty
    # zsh, fish: t0010-install checks their completions
    # strace: t7030-security-image counts the unpacks of a load
    PKGS="$PKGS uidmap busybox-static skopeo umoci oci-image-tool docker-registry python3 \
passwd util-linux valgrind curl xz-utils zstd mmdebstrap apache2-utils openssl python3-jwt python3-cryptography \
buildah time e2fsprogs openssh-client docker.io clang libclang-rt-14-dev qemu-user-static binfmt-support tmux zsh fish strace" ;;
  "") ;;
  *) echo "usage: deps.sh [--example|--test]" >&2; exit 2 ;;
esac
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# t3070-multiplatform's arm64 base: Debian's busybox-static:arm64 (adds the
# arm64 architecture to dpkg), downloaded once into /var/cache/obuild-tests
fetch_arm64() {
  [ "${1:-}" = --test ] || return 0
  if [ "$(id -u)" -ne 0 ]; then
    [ -s "${OBUILD_TEST_CACHE:-/var/cache/obuild-tests}/busybox-static_arm64.deb" ] ||
      echo "the tests also need, as root: sh tests/fixtures/busybox-arm64.sh --fetch" >&2
    return 0
  fi
  sh "$(dirname "$0")/../tests/fixtures/busybox-arm64.sh" --fetch
}
if [ -z "$missing" ]; then
  fetch_arm64 "${1:-}"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "obuild needs these Debian packages:$missing" >&2
  echo "install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends$missing" >&2
  exit 1
fi
echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# apt's own output stays visible: its errors are what to read when this fails
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing
fetch_arm64 "${1:-}"
