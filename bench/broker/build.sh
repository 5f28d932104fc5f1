#!/bin/sh
# Builds the broker benchmark's load generator into bench/broker/build/ (git-ignored) with the
# system C compiler ($CC, default cc) against OpenSSL. When the compiler or the OpenSSL headers are
# missing it installs them with apt-get if run as root (Debian), and otherwise says how and fails.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/build"
cc=${CC:-cc}
missing=""
command -v "$cc" >/dev/null 2>&1 || missing="$missing gcc"
[ -f /usr/include/openssl/ssl.h ] || missing="$missing libssl-dev"
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build.sh: the load generator needs$missing: install with  sudo apt-get install -y$missing" >&2
    exit 1
  fi
  echo "build.sh: installing$missing with apt-get install -y$missing" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
  cc=${CC:-gcc}
fi
mkdir -p "$out"
if [ ! -x "$out/loadgen" ] || [ "$here/loadgen.c" -nt "$out/loadgen" ] || [ "$0" -nt "$out/loadgen" ]; then
  "$cc" -O2 -Wall -Wextra -o "$out/loadgen.tmp" "$here/loadgen.c" -lssl -lcrypto
  mv "$out/loadgen.tmp" "$out/loadgen"
fi
echo "$out/loadgen"
