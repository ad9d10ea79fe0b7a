#!/usr/bin/env bash
# Install the Debian packages Sluice builds and tests with, when they are missing:
# the PostgreSQL and Redis servers, what rdkafka's bundled librdkafka build needs, and the
# Chromium the console's browser tests drive, and openssl and curl for the Kubernetes API
# server's certificates and health checks (tests/services/kube.sh; it builds its binaries
# with Go, which the machine image provides).
# Idempotent and quiet when everything is present.
set -euo pipefail
NAME=deps
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(
  postgresql redis-server redis-tools
  cmake pkg-config libcurl4-openssl-dev libssl-dev zlib1g-dev libsasl2-dev libzstd-dev
  maven
  chromium
  openssl curl
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
for tool in java mvn cargo node npm go; do
  command -v "$tool" >/dev/null || die "$tool is not installed; this machine image should provide it"
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
[[ "$(id -u)" == 0 ]] || die "missing packages ${missing[*]}; install them (as root: $0)"
say "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" > "${TMPDIR:-/tmp}/sluice-apt.log" 2>&1 \
  || { tail -n 30 "${TMPDIR:-/tmp}/sluice-apt.log" >&2; die "apt-get install failed"; }
say "installed"
