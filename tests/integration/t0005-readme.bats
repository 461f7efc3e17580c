#!/usr/bin/env bats
# The README's quick start, typed as written: `make link` (what `make run`
# does before it starts `coffer dev`) puts coffer on PATH, `coffer dev`
# runs with the README's XDG_STATE_HOME, and every "$ " line of the quick
# start's console block runs as it stands, its exit status (0, or the
# "exit N" its comment names) and its output compared line by line with
# what the README shows, less what differs on every run (ids, digests,
# pids, ages, the temporary folders).

load helpers

bats_require_minimum_version 1.5.0

README="$BATS_TEST_DIRNAME/../../README.md"
REPO="$BATS_TEST_DIRNAME/../.."

setup() {
	# under /tmp, not TMPDIR: the machine's KMS socket path (under the state
	# folder) must fit a socket address (108 bytes), as the README's does
	T=$(mktemp -d /tmp/coffer-readme.XXXXXX)
	chmod 0711 "$T"
	mkdir -p "$T/home" "$T/bin"
	unset COFFER_CONFIG COFFER_API_URL COFFER_TOKEN COFFER_CA COFFER_APP
}

teardown() {
	[ -n "${DEV_PID:-}" ] && kill -INT "$DEV_PID" 2>/dev/null && wait "$DEV_PID" 2>/dev/null
	canary_scan
	rm -rf "$T"
}

# normalize: what differs on every run, out of the text on stdin (and a
# machine's "replacing" step, which a poll sees or not, by timing).
normalize() {
	sed -E -e "s#/tmp/qs/state#STATE#g" -e "s#$T/qs/state#STATE#g" -e "s#/root#HOME#g" -e "s#$T/home#HOME#g" \
		-e 's/[0-9a-f]{32}/HEX/g' -e 's/[0-9a-f]{24}/ID/g' -e 's/tok_[0-9a-f]+/TOK/g' \
		-e 's/[0-9]+s ago/Ns ago/g' -e 's/\([0-9]+s left\)/(Ns left)/g' -e 's/\b[0-9]{3,}\b/N/g' \
		-e 's/ +/ /g' -e 's/ $//' | grep -vx 'machine ID: replacing'
}

@test "the quick start runs as the README types it, and prints what the README shows" {
	# the README's block: commands ("$ " lines) and what each prints
	awk '/^## Quick start/ { q = 1 } q && /^```console$/ { on = 1; next } on && /^```$/ { exit } on' "$README" \
		>"$T/block"
	[ "$(grep -c '^\$ ' "$T/block")" -ge 10 ]
	# `make run`: a link on PATH, then `coffer dev` (here with the README's state folder)
	run make -s -C "$REPO" link BUILD="$(dirname "$COFFER")" LINK_DIR="$T/bin"
	[ "$status" -eq 0 ]
	[ "$(readlink "$T/bin/coffer")" = "$COFFER" ]
	export PATH="$T/bin:$PATH" HOME="$T/home" XDG_STATE_HOME="$T/qs/state"
	coffer dev >"$T/dev.out" 2>"$T/dev.log" &
	DEV_PID=$!
	wait_file "$T/qs/state/coffer/env" "$DEV_PID"
	wait_until 30 grep -q COFFER_TOKEN "$T/dev.out"
	local cmd="" want="" n=0 bad=0 line
	check() {
		[ -n "$cmd" ] || return 0
		local code=0 exp=0 got
		[[ "$cmd" =~ \#.*exit\ ([0-9]+) ]] && exp=${BASH_REMATCH[1]}
		got=$(timeout 120 bash -c "${cmd//\/tmp\/qs\/state/$T/qs/state}" 2>&1) || code=$?
		n=$((n + 1))
		if [ "$code" -ne "$exp" ]; then
			printf 'command %d exited %d, not %d: %s\n%s\n' "$n" "$code" "$exp" "$cmd" "$got"
			bad=1
		elif [ "$(normalize <<<"$got")" != "$(normalize <<<"$want")" ]; then
			printf 'command %d printed what the README does not show: %s\n' "$n" "$cmd"
			diff <(normalize <<<"$want") <(normalize <<<"$got") || true
			bad=1
		fi
	}
	while IFS= read -r line; do
		if [[ "$line" == '$ '* ]]; then
			check
			cmd=${line#\$ } want=""
		else
			want+="${want:+$'\n'}$line"
		fi
	done <"$T/block"
	check
	[ "$bad" -eq 0 ]
	# and a canary set the same way is nowhere in the state folder's files
	run coffer secrets set -a web --stage "CANARY_SECRET=$CANARY"
	[ "$status" -eq 0 ]
}
