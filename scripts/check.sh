#!/usr/bin/env bash
# Runs every test of one build folder and prints one summary line:
#   "<label>: N passed, N failed, N skipped"   (label defaults to the folder)
# Exit status: 0 only if nothing failed.
set -uo pipefail
build=${1:-build}
label=${2:-$build}
meson test -C "$build" --print-errorlogs --num-processes 2
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
echo "$label: $passed passed, $failed failed, $skipped skipped"
echo "$passed $failed $skipped" > "$build/summary"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
