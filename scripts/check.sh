#!/usr/bin/env bash
# Runs every test of one build folder and prints one summary line:
#   "<label>: N passed, N failed, N skipped"   (label defaults to the folder)
#   scripts/check.sh [BUILD [LABEL [MESON-TEST-OPTIONS...]]]
# Exit status: 0 only if nothing failed.
#
# The PostgreSQL half needs a server: COFFER_TEST_PG_URL when given (as
# .ci/run does), else a throw-away one started here with
# scripts/pg-test-server.sh and stopped at the end. Only without the
# PostgreSQL server binaries is that half skipped (and says so).
# The tests' temporary files go to a folder of their own, on /dev/shm when
# it has room (the roles fsync their key and ready files), else under /tmp.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
label=${2:-$build}
shift 2 2>/dev/null || shift $#

pgdir= tmpdir=
cleanup() {
	[ -n "$pgdir" ] && scripts/pg-test-server.sh stop "$pgdir"
	[ -n "$tmpdir" ] && rm -rf "$tmpdir"
}
trap cleanup EXIT

if [ -z "${COFFER_TEST_PG_URL:-}" ]; then
	pgdir=$(mktemp -d /tmp/coffer-check-pg.XXXXXX)
	if url=$(scripts/pg-test-server.sh start "$pgdir"); then
		export COFFER_TEST_PG_URL=$url
		echo "check: started PostgreSQL for the tests: $url"
	else
		echo "check: could not start PostgreSQL: its tests will skip" >&2
		cat "$pgdir"/*.log >&2 2>/dev/null
		scripts/pg-test-server.sh stop "$pgdir"
		pgdir=
	fi
fi

shm_free_kb=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')
if [ -w /dev/shm ] && [ "${shm_free_kb:-0}" -gt $((2 * 1024 * 1024)) ]; then
	tmpdir=$(mktemp -d /dev/shm/coffer-check.XXXXXX)
else
	tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/coffer-check.XXXXXX")
fi
# machines run as nobody when the tests run as root: they pass through it
chmod 711 "$tmpdir"
export TMPDIR=$tmpdir

start=$(date +%s)
# the integration programs spend most of their time waiting on their roles'
# processes: one program more than there are cores keeps both busy
jobs=${COFFER_TEST_JOBS:-$(($(nproc) + 1))}
meson test -C "$build" --print-errorlogs --num-processes "$jobs" "$@"
rc=$?
log="$build/meson-logs/testlog.json"
if [ ! -s "$log" ]; then
	echo "$label: 0 passed, 1 failed, 0 skipped"
	exit 1
fi
passed=$(jq -s '[.[] | select(.result == "OK" or .result == "EXPECTEDFAIL")] | length' "$log")
failed=$(jq -s '[.[] | select(.result != "OK" and .result != "EXPECTEDFAIL" and .result != "SKIP")] | length' "$log")
skipped=$(jq -s '[.[] | select(.result == "SKIP")] | length' "$log")
jq -rs '.[] | select(.result == "SKIP") | "skipped: \(.name): \(.stdout | split("\n") | map(select(test("skip"; "i"))) | first // "")"' "$log"
# where the time goes: the slowest test programs
echo "$label: slowest test programs (seconds):"
jq -rs 'sort_by(-.duration) | .[:8][] | "  \(.duration | floor)\t\(.name)"' "$log"
echo "$label: the tests took $(($(date +%s) - start)) s"
# why each failed test failed, last, where a shortened log still shows it
jq -rs '.[] | select(.result != "OK" and .result != "EXPECTEDFAIL" and .result != "SKIP") |
	"\(.name): \(.result)", ((.stdout // "") | split("\n") | map(select(test("^(not ok|#)"))) | .[-12:][] | "  \(.)")' "$log"
echo "$label: $passed passed, $failed failed, $skipped skipped"
echo "$passed $failed $skipped" > "$build/summary"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
