#!/usr/bin/env bash
# Install the system packages the end-to-end tests need (Debian 12, as root).
#
# Idempotent and fast on reruns: packages that dpkg already reports as
# installed are skipped, and `apt-get update` only runs when a missing
# package has no install candidate in the local package lists (or when an
# install from stale lists fails).
#
# Everything is installed with --no-install-recommends: wireguard-tools
# recommends a kernel image, which a test machine must not pull in.
set -euo pipefail

PACKAGES=(
    iproute2
    iputils-ping
    wireguard-tools
    wireguard-go
    iperf3
    tcpdump
    nftables
    procps
    jq
    ethtool
    ca-certificates
    openssl
    coturn
    conntrack
    redis-server
)

if [[ "$(id -u)" -ne 0 ]]; then
    echo "install-deps.sh: must run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

missing=()
for pkg in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps.sh: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi
echo "install-deps.sh: missing: ${missing[*]}"

# Refresh the package lists only when some missing package is unknown to them.
need_update=0
for pkg in "${missing[@]}"; do
    candidate="$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    if [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
        need_update=1
        break
    fi
done
if [[ $need_update -eq 1 ]]; then
    apt-get update
fi

install() {
    apt-get install -y --no-install-recommends "${missing[@]}"
}

# Lists that name a package but point at a version the mirror no longer has
# make the install fail; refresh once and retry in that case.
if ! install; then
    if [[ $need_update -eq 0 ]]; then
        echo "install-deps.sh: install failed, refreshing package lists and retrying" >&2
        apt-get update
        install
    else
        exit 1
    fi
fi
echo "install-deps.sh: done"
