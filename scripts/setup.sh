#!/usr/bin/env bash
# setup.sh: installs what weft needs to build, test, fuzz and benchmark on
# Debian 12. Idempotent: packages already installed are left alone, and
# `apt-get update` runs once, only when something is missing.
# Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config clang clang-format
    libevent-dev libnghttp2-dev libyaml-dev libssl-dev libcmocka-dev node-llhttp
    curl wrk nghttp2-client haproxy nginx python3
    libclang-rt-14-dev iproute2 procps
    redis-server redis-tools
    nghttp2-proxy nghttp2-server valgrind strace
    prometheus
    python3-h2 python3-hpack python3-hyperframe python3-grpcio python3-websockets
)

installed() {
    local status
    status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! installed "$pkg"; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "setup: all ${#PACKAGES[@]} packages present"
    exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "setup: missing packages (${missing[*]}) and not root; rerun as root" >&2
        exit 1
    fi
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

# Debian's nginx, haproxy and redis-server packages start system services on
# install where an init system runs; the tests and the bench start their own
# instances on free loopback ports, so the system ones are not needed. They
# are left as the administrator configured them.
echo "setup: done"
