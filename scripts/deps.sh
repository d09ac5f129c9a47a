#!/usr/bin/env bash
# Install the Debian 12 packages that building, testing and the demo need.
# The one package list for `make demo`, `make test` and .ci/run: add a package here, nowhere else.
# Idempotent and quiet when everything is present; needs root only when something is missing.
# `deps.sh --bench` adds what the benchmarks under bench/ need (peers to compare against).
set -euo pipefail

PKGS=(
    # build
    build-essential pkg-config meson ninja-build clang llvm libclang-rt-14-dev
    # libraries (see ../BRIEF: the dependency table in ARCHITECTURE.md)
    libuv1-dev libjansson-dev libyaml-dev libssl-dev libsodium-dev libseccomp-dev
    libcurl4-openssl-dev libsqlite3-dev libpq-dev
    # unit and black-box tests
    libcmocka-dev python3 python3-pytest python3-requests python3-yaml
    # static analysis and tools the tests drive
    cppcheck
    binutils curl openssl iproute2 procps dnsutils
)
if [ "${1:-}" = "--bench" ]; then
    PKGS+=(libhttp-parser-dev)
elif [ $# -gt 0 ]; then
    echo "deps.sh: unknown argument '$1' (expected nothing or --bench)" >&2
    exit 2
fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
    echo "deps.sh: run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
# Package maintainer scripts must not start system services behind the tests' backs.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
fi
trap 'if [ $created_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps.sh: done" >&2
