#!/usr/bin/env bash
# The one list of Debian packages coffer needs to build, test and run.
# Installs the missing ones when run as root; otherwise names them and fails.
set -euo pipefail

packages=(
	build-essential pkg-config meson ninja-build
	libsodium-dev libsqlite3-dev libpq-dev libmicrohttpd-dev libgnutls28-dev
	libcurl4-openssl-dev libjansson-dev libcmocka-dev
	bats sqlite3 postgresql-15 curl jq procps xxd openssl tcpdump iproute2
	clang libclang-rt-dev
	groff-base man-db zsh systemd
	nodejs
	chromium chromium-driver
)
# npm for the differential .env test (t0210); a Node.js from elsewhere
# (NodeSource's) brings its own npm, which Debian's package conflicts with
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: run 'sudo scripts/deps.sh' or install them yourself" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
