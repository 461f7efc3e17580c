#!/usr/bin/env bash
# Installs the peers `make bench` compares coffer with, skipping what is
# there already:
#   Debian: age, systemd (systemd-creds), nodejs and npm   (apt-get; needs root)
#   npm:    @dotenvx/dotenvx, into a local prefix (no root needed)
#   usage:  scripts/bench-deps.sh PREFIX     (PREFIX e.g. build-bench/peers)
# Prints nothing on success but what it installs; a peer that cannot be
# installed is reported and left out (scripts/bench.sh says so in its row).
set -uo pipefail
prefix=${1:?usage: scripts/bench-deps.sh PREFIX}
mkdir -p "$prefix"

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
command -v age >/dev/null 2>&1 || need+=(age)
command -v systemd-creds >/dev/null 2>&1 || need+=(systemd)
command -v node >/dev/null 2>&1 || have_pkg nodejs || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench-deps: missing Debian packages: ${need[*]} (run as root to install them)" >&2
	else
		echo "bench-deps: installing ${need[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq || echo "bench-deps: apt-get update failed" >&2
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
			echo "bench-deps: apt-get install ${need[*]} failed" >&2
	fi
fi

# dotenvx from the npm registry, in a prefix of our own.
if [ ! -x "$prefix/node_modules/.bin/dotenvx" ]; then
	if command -v npm >/dev/null 2>&1; then
		echo "bench-deps: installing @dotenvx/dotenvx into $prefix" >&2
		npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error @dotenvx/dotenvx >/dev/null ||
			echo "bench-deps: npm install @dotenvx/dotenvx failed" >&2
	else
		echo "bench-deps: npm is missing; dotenvx is left out" >&2
	fi
fi
exit 0
