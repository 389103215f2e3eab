#!/bin/sh
# Install what obuild needs to build and to run its tests on Debian 12.
# Installs only missing packages; as non-root, prints the command instead.
set -eu
PKGS="build-essential autoconf automake pkg-config libarchive-dev libjansson-dev \
libseccomp-dev libssl-dev libcurl4-openssl-dev zlib1g-dev libzstd-dev libdeflate-dev"
if [ "${1:-}" = "--test" ]; then
  PKGS="$PKGS uidmap busybox-static skopeo umoci oci-image-tool docker-registry python3 \
passwd util-linux valgrind curl xz-utils zstd mmdebstrap apache2-utils openssl python3-jwt python3-cryptography docker.io \
clang libclang-rt-14-dev"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "obuild needs these Debian packages:$missing" >&2
  echo "install them with: sudo apt-get install -y$missing" >&2
  exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
