#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz, each for a bounded time, under
# ASan+UBSan, and prints one summary line (docs/FUZZ.md):
#   "fuzz: N passed, N failed, 0 skipped"
#   scripts/fuzz.sh [SECONDS [TARGET...]]     (default: 60 s, every target)
# A target fails on a crash, a leak, a sanitizer report, a timeout or a
# property it checks (FUZZ_CHECK). The build is FUZZ_BUILD (default
# build-fuzz/, set up here with clang); FUZZ_JOBS targets run at a time
# (default: the number of cores). Each target's corpus grows in
# FUZZ_BUILD/fuzz-corpus/<target> from the seeds in tests/fuzz/corpus/<target>;
# a failing input is saved as FUZZ_BUILD/fuzz-artifacts/<target>-crash-*.
# Exit status: 0 only if every target passed.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift 2>/dev/null
build=${FUZZ_BUILD:-build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}

if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=()
	for f in tests/fuzz/fuzz_*.c; do
		t=${f##*/fuzz_}
		targets+=("${t%.c}")
	done
fi

summary() { # passed failed
	mkdir -p "$build"
	echo "$1 $2 0" > "$build/summary"
	echo "fuzz: $1 passed, $2 failed, 0 skipped"
}

start=$(date +%s)
if [ ! -f "$build/build.ninja" ] &&
	! CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
		-Doptimization=1 -Ddebug=true >/dev/null; then
	echo "fuzz: cannot set up $build (clang, libclang-rt-dev: scripts/deps.sh)" >&2
	summary 0 "${#targets[@]}"
	exit 1
fi
if ! ninja -C "$build" fuzz >/dev/null; then
	ninja -C "$build" fuzz 2>&1 | tail -30 >&2
	echo "fuzz: the targets do not build" >&2
	summary 0 "${#targets[@]}"
	exit 1
fi
echo "fuzz: built in $(($(date +%s) - start)) s; $secs s per target, $jobs at a time"

mkdir -p "$build/fuzz-logs" "$build/fuzz-artifacts"
# the http target's store and files (left behind by a crash): on /dev/shm
# when it can, removed at the end
tmpdir=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/coffer-fuzz.XXXXXX")
trap 'rm -rf "$tmpdir"' EXIT
export TMPDIR=$tmpdir
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run_one() {
	local t=$1 exe="$build/tests/fuzz/fuzz_$1" work="$build/fuzz-corpus/$1"
	mkdir -p "$work"
	[ -x "$exe" ] || { echo "no such target: $t" > "$build/fuzz-logs/$t.log"; return 1; }
	"$exe" -max_total_time="$secs" -timeout=60 -rss_limit_mb=2560 -max_len=16384 \
		-artifact_prefix="$build/fuzz-artifacts/$t-" -print_final_stats=1 \
		"$work" "tests/fuzz/corpus/$t" > "$build/fuzz-logs/$t.log" 2>&1
}

declare -A pid_of=()
passed=0 failed=0
finish() { # target rc
	local runs
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/fuzz-logs/$1.log")
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1))
		echo "fuzz: $1 ok (${runs:-?} inputs)"
	else
		failed=$((failed + 1))
		echo "fuzz: $1 FAILED (exit $2); the end of $build/fuzz-logs/$1.log:" >&2
		grep -E 'property failed|ERROR: |SUMMARY|Test unit written|^artifact' "$build/fuzz-logs/$1.log" | head -20 >&2
		echo "fuzz: reproduce with $build/tests/fuzz/fuzz_$1 <the crash file>" >&2
	fi
}
for t in "${targets[@]}"; do
	while [ "${#pid_of[@]}" -ge "$jobs" ]; do
		wait -n -p done_pid
		rc=$?
		finish "${pid_of[$done_pid]}" "$rc"
		unset "pid_of[$done_pid]"
	done
	run_one "$t" &
	pid_of[$!]=$t
done
while [ "${#pid_of[@]}" -gt 0 ]; do
	wait -n -p done_pid
	rc=$?
	finish "${pid_of[$done_pid]}" "$rc"
	unset "pid_of[$done_pid]"
done
echo "fuzz: took $(($(date +%s) - start)) s"
summary "$passed" "$failed"
[ "$failed" -eq 0 ]
