#!/bin/sh
# executor-image.sh [-o LAYOUT] [-t NAME[:TAG]] [--obuild BIN]
#
# Build, with obuild itself, the executor image: FROM scratch, obuild and
# everything it needs at run time under /obuild (the binary, the shared
# objects it loads, the dynamic loader, the CA bundle, a busybox shell for
# CI job scripts; its store in /obuild/store, out of the way of RUN steps,
# which see the container's whole root), working directory
# /workspace, entrypoint obuild, OBUILD_ISOLATION=container.  Run it as
#   docker run --rm -v "$PWD":/workspace IMAGE build -t REG/app:1 --push .
# (see doc/ci.md).  The image goes into obuild's store under NAME (default
# obuild-executor:latest) and, with -o, into the OCI layout LAYOUT.
set -eu
cd "$(dirname "$0")/.."
bin=./obuild out="" name=obuild-executor:latest
while [ $# -gt 0 ]; do
  case $1 in
    -o) out=$2; shift 2 ;;
    -t) name=$2; shift 2 ;;
    --obuild) bin=$2; shift 2 ;;
    *) echo "usage: $0 [-o LAYOUT] [-t NAME[:TAG]] [--obuild BIN]" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || sh scripts/build.sh
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/obuild/bin" "$ctx/obuild/lib" "$ctx/obuild/libexec"
cp "$bin" "$ctx/obuild/libexec/obuild"
loader=""
# libcurl is opened by obuild when first needed (not linked): it, found
# beside obuild's libc (the same architecture), and what it needs are
# copied too
curl_so=$(dirname "$(ldd "$bin" | sed -n 's/.*libc\.so\.6 => \(\/[^ ]*\).*/\1/p')")/libcurl.so.4
[ -e "$curl_so" ] || { echo "executor-image.sh: $curl_so not found (apt-get install libcurl4)" >&2; exit 1; }
cp -L "$curl_so" "$ctx/obuild/lib/libcurl.so.4"
for lib in $( (ldd "$bin"; ldd "$curl_so") | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\).*/\1/p' | sort -u); do
  cp -L "$lib" "$ctx/obuild/lib/"
  case $(basename "$lib") in ld-linux*|ld64.so*|ld-musl*) loader=/obuild/lib/$(basename "$lib") ;; esac
done
[ -n "$loader" ] || { echo "executor-image.sh: no dynamic loader in ldd $bin" >&2; exit 1; }
# a shell for CI systems that run job scripts (GitLab): busybox-static,
# kept under /obuild like the rest, and obuild as a command of it
bb=$(command -v busybox || echo /bin/busybox)
[ -x "$bb" ] || { echo "executor-image.sh: busybox-static is needed (apt-get install busybox-static)" >&2; exit 1; }
cp "$bb" "$ctx/obuild/bin/busybox"
for a in sh ash cat echo printf mkdir ls env base64 test true false sed grep tr cut id sleep; do
  ln -s busybox "$ctx/obuild/bin/$a"
done
printf '#!/obuild/bin/sh\nexec %s --library-path /obuild/lib /obuild/libexec/obuild "$@"\n' "$loader" >"$ctx/obuild/bin/obuild"
chmod 755 "$ctx/obuild/bin/obuild"
if [ -r /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/obuild/ca.crt"
else
  : >"$ctx/obuild/ca.crt"
fi
cat >"$ctx/Dockerfile" <<EOF
FROM scratch
COPY obuild/ /obuild/
ENV PATH=/obuild/bin \\
    OBUILD_ROOT=/obuild/store \\
    OBUILD_ISOLATION=container \\
    OBUILD_SELF_CONTAINED=/obuild \\
    OBUILD_CA_FILE=/obuild/ca.crt \\
    SSL_CERT_FILE=/obuild/ca.crt
WORKDIR /workspace
ENTRYPOINT ["/obuild/bin/obuild"]
LABEL org.opencontainers.image.title="obuild executor" \\
      org.opencontainers.image.description="obuild for CI job containers: docker run --rm -v \\\$PWD:/workspace IMAGE build -t REG/app:1 --push ."
EOF
set -- build -q -t "$name"
[ -n "$out" ] && set -- "$@" -o "$out"
"$bin" "$@" "$ctx"
