#!/usr/bin/env bash
# scripts/bench.sh — every benchmark row of docs/BENCHMARKS.md in one run,
# on this machine: builds coffer in release mode (its own build folder),
# installs the peers (scripts/bench-deps.sh), starts what it needs
# (PostgreSQL, keeper, api, coffer dev), runs every row, prints ONE table
# and writes it, with the machine's description and the date, to
# docs/BENCHMARKS.md (from bench/BENCHMARKS.md.in). `make bench` runs it.
#
#   scripts/bench.sh [SECTION ...]   sections: floor peers api keeper scale boot cli hosts mask
#                                    (default: all)
#   scripts/bench.sh --table-only    the table and the page again, from the last run's figures
#
# Environment:
#   BENCH_BUILD    build folder (default build-bench: release, with frame pointers for perf)
#   BENCH_QUICK=1  short runs (a trial: seconds, not minutes; the figures are noisier)
#   BENCH_NO_DOC=1 print the table but leave docs/BENCHMARKS.md alone
#   BENCH_APPS     apps in the large store of the scale row (default 10000)
#   BENCH_HOSTS    simulated hosts of the hosts row (default 2000; 200 with BENCH_QUICK)
#   BENCH_API_ARGS more arguments for every api the script starts (split on spaces)
#   BENCH_PROFILE  missed (default): a "where the time goes" profile for each
#                  goal row that misses its goal; all: for every goal row; 0: none
#   BENCH_OLD_REF  the commit whose `secrets set` the cli row compares with
#                  (default: the last one before issue 12, which sealed in the api)
#
# The programs of bench/ print one JSON line per measurement; everything
# goes to BUILD/bench-run/results.jsonl and the logs beside it. A row that
# cannot run (a peer missing, a route not there yet) is in the table with
# the reason, and the script still exits 0: it measures, it asserts nothing.
#
# PostgreSQL runs durable (scripts/pg-test-server.sh with PG_DURABLE=1:
# fsync, synchronous_commit and full_page_writes on; the run records what
# SHOW says in its "store.pg" line); SQLite is durable as the store opens
# it (WAL, synchronous=FULL: the "store.sqlite" line).
#
# The goal rows (docs/BENCHMARKS.md "Goals"; bench/table.jq decides met or
# missed) are recorded with `perf record -g` on the role doing the work
# while they run (keeper for row 2, api for rows 3 and 6, agent and keeper
# for row 1); a row that misses its goal gets a summary of its profile in
# BUILD/bench-run/profiles/<row>.txt, which the page includes under the row.
#
# What the rows need of the bench programs (each prints its floor too):
#   row 3  bench_http load --name set.<backend> --url API --path P --token-file FILE
#            --clients 16 --seconds S --sealed PREFIX --deployer-key FILE
#            --deployer-id ID --durable 0|1
#          (apps PREFIX-00..PREFIX-15 exist; the deployer key and id are the
#          CLI's after `coffer login`; --durable: whether the backend fsyncs,
#          from the "store.<backend>" line); prints "set.<backend>" (errors,
#          durable). Its floor "floor.noop" is bench_http's no-op server
#          driven the same way (section api); a "floor.noop" line with
#          "backend" would be preferred for that backend's row.
#   row 6  bench_hosts --name hosts --api API --keeper KEEPER --store URL
#            --rows-key FILE --join-tokens FILE --coffer CLI --hosts N --api-pid PID
#          (FILE: N + 1 join tokens, one a line; the CLI's environment as for
#          row 3: bench_hosts makes its apps and release steps with `coffer`);
#          prints "hosts" (hosts, pickup_p99_us, pickup_median_us,
#          api_rss_kib, api_threads, errors) and its floor "hosts.floor".
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BENCH_BUILD:-$root/build-bench}
case $build in /*) ;; *) build=$root/$build ;; esac
work=$build/bench-run
results=$work/results.jsonl
table_only=0
if [ "${1:-}" = --table-only ]; then
	table_only=1
	shift
fi
sections=${*:-floor peers api keeper scale boot cli hosts mask}

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	FORK_N=300 AGE_N=30 SDC_N=30 DOTENVX_N=3 X_SECONDS=1 SQLITE_N=300
	LOAD_SECONDS=3 KEEPER_SECONDS=3 SCALE_SECONDS=2 BOOT_N=5 CLI_N=5
	SCALE_APPS=${BENCH_APPS:-1000} HOSTS_N=${BENCH_HOSTS:-200}
else
	FORK_N=2000 AGE_N=200 SDC_N=200 DOTENVX_N=15 X_SECONDS=3 SQLITE_N=2000
	LOAD_SECONDS=10 KEEPER_SECONDS=10 SCALE_SECONDS=5 BOOT_N=30 CLI_N=30
	SCALE_APPS=${BENCH_APPS:-10000} HOSTS_N=${BENCH_HOSTS:-2000}
fi
SCALE_SECRETS=100   # per app in the large store
SMALL_SECRETS=10    # the measured app of the scale row, in both stores
SET_CLIENTS=16
BOOT_GRACE=${BENCH_BOOT_GRACE:-500ms}
OLD_REF=${BENCH_OLD_REF:-d988419}
X25519_PER_OPEN=52  # 50 values opened (one X25519 each) + the delivery seal (keygen + one X25519)
PROFILE=${BENCH_PROFILE:-missed}
PROFILE_HZ=499      # samples a second: a profile costs the row well under 1 %

say() { printf 'bench: %s\n' "$*" >&2; }
has() { case " $sections " in *" $1 "*) return 0 ;; esac; return 1; }

# ---- build and peers ----

COFFER=$build/coffer
B=$build/bench
peers=$build/peers
DOTENVX=$peers/node_modules/.bin/dotenvx
started_pids=()
pg_dir=""
RUN_ID=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')

# build_old: coffer as it was at OLD_REF (its tree from git archive, no
# worktree), built in $build/old.
OLD_COFFER=$build/old/build/coffer
build_old() {
	if [ "$(cat "$build/old/ref" 2>/dev/null)" != "$OLD_REF" ]; then
		rm -rf "$build/old"
		mkdir -p "$build/old/src"
		git archive "$OLD_REF" | tar -x -C "$build/old/src" || return 1
		echo "$OLD_REF" >"$build/old/ref"
	fi
	[ -f "$build/old/build/build.ninja" ] ||
		meson setup "$build/old/build" "$build/old/src" -Dbuildtype=release || return 1
	ninja -C "$build/old/build" coffer bench/bench_keeper
}

# Release, with frame pointers so that `perf record -g` has whole stacks.
BENCH_CFLAGS="['-fno-omit-frame-pointer', '-mno-omit-leaf-frame-pointer']"
prepare() {
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" -Dbuildtype=release -Dc_args="$BENCH_CFLAGS" >/dev/null ||
			{ say "meson setup failed"; exit 1; }
	elif ! meson introspect --buildoptions "$build" 2>/dev/null |
		jq -e '.[] | select(.name == "c_args") | .value | index("-fno-omit-frame-pointer")' >/dev/null; then
		meson configure "$build" -Dbuildtype=release -Dc_args="$BENCH_CFLAGS" >/dev/null ||
			{ say "meson configure failed"; exit 1; }
	fi
	say "building coffer and bench/ in release mode ($build)"
	local targets=(coffer) p
	for p in bench_floor bench_boot bench_http bench_keeper bench_populate bench_hosts; do
		[ -f "bench/$p.c" ] && targets+=("bench/$p")
	done
	ninja -C "$build" "${targets[@]}" >"$build/bench-build.log" 2>&1 || {
		tail -n 30 "$build/bench-build.log" >&2
		say "build failed"
		exit 1
	}
	if has cli || has keeper; then
		say "building coffer at $OLD_REF (before issue 12), for the old figures of rows 2 and 5"
		build_old >>"$build/bench-build.log" 2>&1 || say "the build of $OLD_REF failed: the cli row has no old figure"
	fi
	scripts/bench-deps.sh "$peers"
	rm -rf "$work"
	mkdir -p "$work"
	: >"$results"
}

if [ "$table_only" = 1 ]; then
	[ -s "$results" ] && [ -s "$work/machine.json" ] || { say "no figures in $work: run scripts/bench.sh first"; exit 1; }
else
	prepare
fi

# stop_pids PID...: SIGTERM, then SIGKILL for what has not exited in
# BENCH_STOP_SECONDS (default 30: a role that hangs on its way out must not
# hang the run; the script says so).
stop_pids() {
	local pid i left
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	for i in $(seq $((${BENCH_STOP_SECONDS:-30} * 10))); do
		left=0
		for pid in "$@"; do
			# a child that exited is a zombie until waited for: not running
			if [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ] && kill -0 "$pid" 2>/dev/null; then
				left=1
			fi
		done
		[ $left = 0 ] && break
		sleep 0.1
	done
	for pid in "$@"; do
		if kill -0 "$pid" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
			say "pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-40)) did not stop in ${BENCH_STOP_SECONDS:-30} s: killed"
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null || true
	done
}

cleanup() {
	[ -n "$profile_pid" ] && kill -INT "$profile_pid" 2>/dev/null
	[ ${#started_pids[@]} -gt 0 ] && stop_pids "${started_pids[@]}"
	started_pids=()
	kill_boot_machines
	[ -n "$pg_dir" ] && scripts/pg-test-server.sh stop "$pg_dir"
	pg_dir=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A row that could not run: its reason goes in the table.
note() { # note KEY TEXT
	jq -cn --arg b "note.$1" --arg t "$2" '{bench: $b, text: $t}' >>"$results"
}

# run KEY LOG CMD...: runs a bench program; its JSON lines go to results,
# its stderr to LOG; on failure the last line of LOG is noted for KEY.
run() {
	local key=$1 log=$2 out
	shift 2
	out=$("$@" 2>>"$log")
	local rc=$?
	[ -n "$out" ] && printf '%s\n' "$out" | grep '^{' >>"$results"
	if [ $rc -ne 0 ]; then
		note "$key" "did not run: $(grep -v '^\s*$' "$log" | tail -n 1 | cut -c1-200)"
		say "$key: failed (see $log)"
	fi
	return $rc
}

# wait_file FILE PID [SECONDS]: until FILE exists, while PID lives.
wait_file() {
	local i
	for i in $(seq $((${3:-20} * 10))); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# The 50 secret values every boot row uses: NAME=VALUE lines.
make_secrets() {
	local i
	for i in $(seq -w 1 50); do
		printf 'BENCH_SECRET_%s=%s\n' "$i" "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
	done >"$work/secrets50.env"
	head -n 10 "$work/secrets50.env" >"$work/secrets10.env"
	chmod 600 "$work"/secrets*.env
}

# ---- the roles: keeper and api on one backend ----

# platform_start NAME STORE_URL: keeper init, keeper, api, bootstrap; sets
# T, KEEPER_URL, API_URL and the CLI's environment.
platform_start() {
	T=$work/$1
	STORE_URL=$2
	mkdir -p "$T"
	"$COFFER" keeper init --state-dir "$T/keeper" >"$T/keeper-init.out" 2>&1 || return 1
	"$COFFER" keeper --state-dir "$T/keeper" --store "$STORE_URL" --listen 127.0.0.1:0 \
		--ready-file "$T/keeper.ready" 2>>"$T/keeper.log" &
	KEEPER_PID=$!
	started_pids+=("$KEEPER_PID")
	wait_file "$T/keeper.ready" "$KEEPER_PID" || return 1
	KEEPER_URL=$(cat "$T/keeper.ready")
	local boot_key=() api_args
	read -r -a api_args <<<"${BENCH_API_ARGS:-}"
	# the api's boot-token key, once the keeper writes it (docs/RUNPATH.md)
	[ -f "$T/keeper/api.boot.key" ] && boot_key=(--boot-key "$T/keeper/api.boot.key")
	"$COFFER" api --state-dir "$T/api" --store "$STORE_URL" --listen 127.0.0.1:0 \
		--keeper "$KEEPER_URL" --keeper-pub "$T/keeper/keeper.pub" \
		--keeper-credential "$T/keeper/api.credential" "${boot_key[@]}" \
		--rows-key "$T/keeper/api.rows.key" --digest-key "$T/keeper/api.digest.key" \
		--ready-file "$T/api.ready" "${api_args[@]}" 2>>"$T/api.log" &
	API_PID=$!
	started_pids+=("$API_PID")
	wait_file "$T/api.ready" "$API_PID" || return 1
	API_URL=$(cat "$T/api.ready")
	( umask 077; "$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --org bench >"$T/token" 2>>"$T/api.log" ) || return 1
	export COFFER_API_URL=$API_URL COFFER_TOKEN COFFER_CONFIG=$T/cli.json
	COFFER_TOKEN=$(cat "$T/token")
	unset COFFER_APP
	# the CLI's deployer key (issue 12), which seals and signs every change;
	# a coffer from before issue 12 (the cli row's old figure) has none
	if "$COFFER" login --help >/dev/null 2>&1; then
		local tok
		tok=$("$COFFER" keeper deployer-token --state-dir "$T/keeper" --store "$STORE_URL" --org bench \
			--role admin 2>>"$T/cli.log") &&
			"$COFFER" login --deployer-token "$tok" --keeper "$KEEPER_URL" --name bench >>"$T/cli.log" 2>&1 ||
			{ say "$1: coffer login failed (see $T/cli.log)"; return 1; }
	fi
}

platform_stop() {
	local pid
	stop_pids "$API_PID" "$KEEPER_PID"
	local keep=()
	for pid in "${started_pids[@]}"; do
		[ "$pid" != "$API_PID" ] && [ "$pid" != "$KEEPER_PID" ] && keep+=("$pid")
	done
	started_pids=("${keep[@]}")
}

# app_with NAME FILE: creates an app and imports FILE's secrets (staged: it has no machines).
app_with() {
	"$COFFER" apps create "$1" >/dev/null 2>>"$T/cli.log" || return 1
	[ -z "${2:-}" ] || "$COFFER" secrets import -a "$1" <"$2" >/dev/null 2>>"$T/cli.log"
}

# app_released NAME FILE: app_with, and a signed release of no machines, which
# the keeper's opens need (its statement and the version's manifest, signed
# by the CLI's deployer key; bench_keeper makes the machines).
app_released() {
	app_with "$1" "$2" &&
		"$COFFER" deploy -a "$1" --count 0 -- /bin/true >/dev/null 2>>"$T/cli.log"
}

# keeper_bench KEY APP THREADS SECONDS HOSTNAME
keeper_bench() {
	local join
	if [ ! -f "$T/keeper/api.boot.key" ]; then
		note "$1" "not run: the keeper writes no api.boot.key yet (docs/RUNPATH.md, Keys)"
		return 1
	fi
	join=$("$COFFER" keeper join-token --state-dir "$T/keeper" 2>>"$T/cli.log") || {
		note "$1" "not run: coffer keeper join-token failed"
		return 1
	}
	COFFER_JOIN_TOKEN=$join run "$1" "$T/bench-keeper.log" "${BENCH_KEEPER:-$B/bench_keeper}" --name "$1" \
		--keeper "$KEEPER_URL" --boot-key "$T/keeper/api.boot.key" --store "$STORE_URL" --app "$2" \
		--rows-key "$T/keeper/api.rows.key" \
		--threads "$3" --seconds "$4" --host-name "$5"
}

# ---- "where the time goes": perf on the role doing a goal row's work ----

# profile_start ROW PID...: perf record -g on the PIDs (and their threads)
# until profile_stop ROW; the data is summarised at the end of the run,
# for the rows that missed their goal (profile_summaries).
profile_pid=""
# cpu_ticks PID...: their CPU time so far (user + system, clock ticks)
cpu_ticks() {
	local pid t=0 f
	for pid in "$@"; do
		# fields 14 and 15 of /proc/PID/stat, after the command in parentheses
		f=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		set -- $f
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}

profile_start() {
	local row=$1 pids
	shift
	[ "$PROFILE" = 0 ] && return 0
	pids=$(IFS=,; echo "$*")
	mkdir -p "$work/profiles"
	if ! command -v perf >/dev/null; then
		echo "perf is not installed (Debian package linux-perf)" >"$work/profiles/$row.err"
		return 0
	fi
	perf record -g -F "$PROFILE_HZ" -o "$work/profiles/$row.data" -p "$pids" \
		>"$work/profiles/$row.record.log" 2>&1 &
	profile_pid=$!
	echo "$pids" >"$work/profiles/$row.pids"
	echo "${EPOCHREALTIME/./}" >"$work/profiles/$row.t0"
	cpu_ticks "$@" >"$work/profiles/$row.cpu0"
	sleep 0.5 # perf attaches to every thread before the row starts
}

profile_stop() {
	local row=$1 t0 wall_us cpu
	[ -n "$profile_pid" ] || return 0
	# the roles' CPU time over the row: far below the wall time, the row
	# waits (disk, locks, the network) more than it computes, and the
	# profile (CPU samples) shows only the computing part
	local pids
	IFS=, read -r -a pids <"$work/profiles/$row.pids"
	cpu=$(($(cpu_ticks "${pids[@]}") - $(cat "$work/profiles/$row.cpu0")))
	kill -INT "$profile_pid" 2>/dev/null
	wait "$profile_pid" 2>/dev/null
	profile_pid=""
	t0=$(cat "$work/profiles/$row.t0")
	wall_us=$((${EPOCHREALTIME/./} - t0))
	echo $((wall_us / 1000000)) >"$work/profiles/$row.seconds"
	awk -v c="$cpu" -v hz="$(getconf CLK_TCK)" -v w="$wall_us" -v n="$(nproc)" 'BEGIN {
		printf "on CPU %.1f s of %.1f s (%.0f %% of one core; the machine has %d)\n", c / hz, w / 1e6, 100 * c / hz / (w / 1e6), n
	}' >"$work/profiles/$row.cpu"
	[ -s "$work/profiles/$row.data" ] ||
		tail -n 1 "$work/profiles/$row.record.log" >"$work/profiles/$row.err"
}

# profile_summary ROW TITLE WHO: the short text the page includes under the
# row, from ROW's perf data: the share of each thread and library, the
# functions above 2 % (self time; a library shipped without symbols, as
# Debian's libsodium, is one line for all its functions), and the callers
# of those above 5 %.
profile_summary() {
	local row=$1 title=$2 d=$work/profiles data=$work/profiles/$1.data
	{
		printf '%s: perf record -g -F %s -p %s (%s) for %s s during the row; %s samples\n' \
			"$title" "$PROFILE_HZ" "$(cat "$d/$row.pids")" "$3" "$(cat "$d/$row.seconds")" \
			"$(perf report -i "$data" --stdio -g none 2>/dev/null | sed -n 's/^# Samples: \([^ ]*\).*/\1/p' | head -n 1)"
		printf '%s: %s\n\n' "$3" "$(cat "$d/$row.cpu")"
		printf 'threads and libraries (>= 2 %%):\n'
		perf report -i "$data" --no-children --percent-limit 2 --stdio --sort comm,dso -g none 2>/dev/null |
			grep -E '^ +[0-9.]+%' | head -n 10 | sed 's/ *$//'
		printf '\nfunctions (self time, >= 2 %%):\n'
		perf report -i "$data" --no-children --stdio --sort dso,sym -g none 2>/dev/null |
			awk '/^ +[0-9.]+%/ {
				p = $1; sub(/%/, "", p)
				k = $2 "  " $3 " "
				if ($4 ~ /^0x/) k = k "(functions without symbols)"
				else { f = $0; sub(/^ *[^ ]+ +[^ ]+ +[^ ]+ +/, "", f); k = k f }
				sum[k] += p
			}
			END { for (k in sum) if (sum[k] >= 2) printf "%8.2f%%  %s\n", sum[k], k }' |
			sort -rn | head -n 20 | sed 's/ *$//'
		printf '\ncoffer'"'"'s functions, with what they call (>= 5 %%; a library without\n'
		printf 'frame pointers can hide its caller):\n'
		perf report -i "$data" --children --percent-limit 5 --stdio --sort dso,sym -g none 2>/dev/null |
			grep -E '^ +[0-9.]+% +[0-9.]+% +coffer ' | head -n 15 | sed 's/ *$//'
		printf '\ncallers of the functions above 5 %% (self time):\n'
		perf report -i "$data" --no-children --percent-limit 5 --stdio --sort sym \
			-g caller,1,callee,function,percent --max-stack 12 2>/dev/null |
			grep -v '^#' | grep -v '^$' | head -n 60 | sed 's/ *$//'
	} >"$d/$row.txt"
}

# profile_summaries: for each goal row that missed its goal (bench/table.jq,
# part "missed"), or every recorded row with BENCH_PROFILE=all, the summary
# (ROW.txt, beside its perf data ROW.data); the files of the others are dropped.
profile_summaries() {
	local row title who missed
	[ "$PROFILE" = 0 ] || [ ! -d "$work/profiles" ] && return 0
	missed=" $(table_jq missed | tr '\n' ' ') "
	while IFS='|' read -r row title who; do
		[ -f "$work/profiles/$row.pids" ] || continue
		case $missed in
		*" $row "*) ;;
		*) [ "$PROFILE" = all ] || { rm -f "$work/profiles/$row".*; continue; } ;;
		esac
		[ -s "$work/profiles/$row.data" ] || continue # perf failed: ROW.err says why
		say "profile of row $row ($title)"
		profile_summary "$row" "$title" "$who" # the data stays, for perf report -i
		rm -f "$work/profiles/$row".{cpu0,t0,seconds,record.log}
	done <<-'EOF'
		1-boot|row 1, boot with 50 secrets|agent and keeper
		2-keeper-sqlite|row 2, keeper opens, SQLite, 1 and 2 clients|keeper
		2-keeper-pg|row 2, keeper opens, PostgreSQL, 1 and 2 clients|keeper
		3-set-sqlite|row 3, api secrets set, SQLite|api
		3-set-pg|row 3, api secrets set, PostgreSQL|api
		6-hosts|row 6, many hosts|api
	EOF
}

# ---- sections ----

section_floor() {
	say "floors: fork/exec, X25519, SQLite commits"
	run floor.fork_exec "$work/floor.log" "$B/bench_boot" run floor.fork_exec "$FORK_N" -- /bin/true
	run floor.x25519 "$work/floor.log" "$B/bench_floor" x25519 "$X_SECONDS" 1
	run floor.x25519 "$work/floor.log" "$B/bench_floor" x25519 "$X_SECONDS" 2
	run floor.sqlite_commit "$work/floor.log" "$B/bench_floor" sqlite-commits "$work/raw-commits.db" "$SQLITE_N"
	rm -f "$work"/raw-commits.db*
}

section_peers() {
	local d=$work/peers
	mkdir -p "$d"
	say "peers: dotenvx, age, systemd-creds (50 secrets each)"
	# dotenvx: the 50 values encrypted in .env, the private key in .env.keys beside it
	if [ -x "$DOTENVX" ]; then
		cp "$work/secrets50.env" "$d/.env"
		if (cd "$d" && "$DOTENVX" encrypt -f .env >"$d/dotenvx-encrypt.log" 2>&1); then
			(cd "$d" && run peer.dotenvx "$d/dotenvx.log" "$B/bench_boot" run peer.dotenvx "$DOTENVX_N" -- \
				"$DOTENVX" run -q -f .env -- /bin/true)
		else
			note peer.dotenvx "did not run: dotenvx encrypt failed"
		fi
	else
		note peer.dotenvx "not run: dotenvx is not installed (npm @dotenvx/dotenvx)"
	fi
	# age: the 50 lines encrypted to an X25519 identity
	if command -v age >/dev/null && command -v age-keygen >/dev/null; then
		age-keygen -o "$d/age.key" 2>/dev/null
		age -e -r "$(age-keygen -y "$d/age.key")" -o "$d/secrets.age" "$work/secrets50.env"
		run peer.age "$d/age.log" "$B/bench_boot" decrypt-exec peer.age "$AGE_N" -- \
			age -d -i "$d/age.key" "$d/secrets.age"
	else
		note peer.age "not run: age is not installed (Debian package age)"
	fi
	# systemd-creds: a credential sealed with the host key (no TPM here)
	if command -v systemd-creds >/dev/null; then
		if systemd-creds encrypt --with-key=host --name=env "$work/secrets50.env" "$d/env.cred" \
			2>"$d/sdc-encrypt.log"; then
			run peer.systemd_creds "$d/sdc.log" "$B/bench_boot" decrypt-exec peer.systemd_creds "$SDC_N" -- \
				systemd-creds decrypt --with-key=host --name=env "$d/env.cred" -
		else
			note peer.systemd_creds "did not run: systemd-creds encrypt --with-key=host: $(tail -n 1 "$d/sdc-encrypt.log")"
		fi
	else
		note peer.systemd_creds "not run: systemd-creds is not installed (Debian package systemd)"
	fi
}

# The floor of the api rows: the same HTTP server answering a route that does nothing.
section_noop() {
	local ready=$work/noop.ready pid
	say "api floor: the no-op route, $SET_CLIENTS clients"
	"$B/bench_http" noop-server 127.0.0.1:0 "$ready" 2>"$work/noop-server.log" &
	pid=$!
	started_pids+=("$pid")
	if wait_file "$ready" "$pid"; then
		run floor.noop "$work/noop.log" "$B/bench_http" load --name floor.noop --url "$(cat "$ready")" \
			--path /v1/noop --method POST --body '{"secrets":{"BENCH_SET":"v-{c}-{i}"}}' \
			--clients "$SET_CLIENTS" --seconds "$LOAD_SECONDS"
	else
		note floor.noop "did not run: the no-op server did not start"
	fi
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# section_backend NAME STORE_URL: rows 2, 3 and 4 on one backend.
section_backend() {
	local be=$1 url=$2 i
	if ! platform_start "$be" "$url"; then
		say "$be: the keeper or the api did not start (see $work/$be/*.log)"
		for k in set keeper.open scale.list.small scale.list.large scale.open.small scale.open.large; do
			note "$k.$be" "did not run: the keeper or the api did not start"
		done
		platform_stop
		return
	fi
	if has api; then
		say "$be: api secrets set, $SET_CLIENTS clients, sealed and signed as the CLI sends them"
		set_bench "$be"
	fi
	if has keeper; then
		say "$be: keeper opens, 50 secrets, 1 and 2 clients"
		if app_released open50 "$work/secrets50.env"; then
			profile_start "2-keeper-$be" "$KEEPER_PID"
			keeper_bench "keeper.open.$be" open50 1,2 "$KEEPER_SECONDS" "bench-open"
			profile_stop "2-keeper-$be"
		else
			note "keeper.open.$be" "did not run: apps create, secrets import or deploy failed (see $T/cli.log)"
		fi
	fi
	if has scale; then
		say "$be: scale, 1 app x $SMALL_SECRETS secrets"
		app_released scale "$work/secrets10.env"
		run "scale.list.small.$be" "$T/scale.log" "$B/bench_http" load --name "scale.list.small.$be" \
			--url "$API_URL" --path /v1/apps/scale/secrets --token-file "$T/token" --clients 1 \
			--seconds "$SCALE_SECONDS"
		keeper_bench "scale.open.small.$be" scale 1 "$SCALE_SECONDS" "bench-scale-small"
		local threads=1
		[ "$be" = pg ] && threads=2
		say "$be: populating $SCALE_APPS apps x $SCALE_SECRETS secrets through the store API"
		run "populate.$be" "$T/populate.log" "$B/bench_populate" --store "$STORE_URL" --org bench \
			--rows-key "$T/keeper/api.rows.key" \
			--apps $((SCALE_APPS - 1)) --secrets "$SCALE_SECRETS" --threads "$threads" &&
			sed -i "\$s/\"bench\":\"populate\"/\"bench\":\"populate.$be\"/" "$results"
		say "$be: scale, $SCALE_APPS apps x $SCALE_SECRETS secrets"
		run "scale.list.large.$be" "$T/scale.log" "$B/bench_http" load --name "scale.list.large.$be" \
			--url "$API_URL" --path /v1/apps/scale/secrets --token-file "$T/token" --clients 1 \
			--seconds "$SCALE_SECONDS"
		keeper_bench "scale.open.large.$be" scale 1 "$SCALE_SECONDS" "bench-scale-large"
	fi
	platform_stop
}

# Row 3 on the platform of platform_start: 16 clients, each setting new
# values in its own app (set-00..set-15, no machines: the change is
# recorded, no release runs), sealed and signed as the CLI sends them
# (bench_http load --sealed, with the deployer key `coffer login` made);
# --durable says whether the backend fsyncs (the "store.<backend>" line).
set_bench() {
	local be=$1 i durable
	durable=$(jq -rs --arg b "store.$be" '[.[] | select(.bench == $b) | .durable] | first // false | if . then 1 else 0 end' "$results")
	for i in $(seq 0 $((SET_CLIENTS - 1))); do
		i=$(printf '%02d' "$i")
		app_with "set-$i" || { note "set.$be" "did not run: apps create set-$i failed (see $T/cli.log)"; return 1; }
	done
	profile_start "3-set-$be" "$API_PID"
	run "set.$be" "$T/set.log" "$B/bench_http" load --name "set.$be" --url "$API_URL" \
		--path /v1/apps/set/secrets --method POST --token-file "$T/token" \
		--clients "$SET_CLIENTS" --seconds "$LOAD_SECONDS" --sealed set \
		--deployer-key "$(dirname "$COFFER_CONFIG")/deployer.key" \
		--deployer-id "$(jq -r .deployer_id "$COFFER_CONFIG")" --durable "$durable"
	profile_stop "3-set-$be"
	if grep -q "unrecognized option '--sealed'" "$T/set.log"; then
		sed -i '$d' "$results"
		note "set.$be" "not run: bench_http has no --sealed yet (sealed and signed sets, issue 13)"
	fi
}

# store_line BACKEND URL: what makes the backend durable, as the run finds
# it: PostgreSQL's settings (SHOW), SQLite's synchronous as the store sets it.
store_line() {
	if [ "$1" = pg ]; then
		local f s w
		f=$(psql "$2" -XAtc 'SHOW fsync' 2>>"$work/pg-server.log")
		s=$(psql "$2" -XAtc 'SHOW synchronous_commit' 2>>"$work/pg-server.log")
		w=$(psql "$2" -XAtc 'SHOW full_page_writes' 2>>"$work/pg-server.log")
		jq -cn --arg f "$f" --arg s "$s" --arg w "$w" \
			'{bench: "store.pg", fsync: $f, synchronous_commit: $s, full_page_writes: $w,
			  durable: ($f == "on" and $s == "on" and $w == "on")}' >>"$results"
	else
		local sync
		sync=$(grep -o 'PRAGMA synchronous = [A-Z]*' src/store/store_sqlite.c | awk '{ print $4 }')
		jq -cn --arg s "${sync:-?}" '{bench: "store.sqlite", journal: "WAL", synchronous: $s,
			durable: ($s == "FULL" or $s == "EXTRA")}' >>"$results"
	fi
}

# Row 6: many hosts against one api (SQLite), on a platform of its own:
# bench_hosts enrols HOSTS_N hosts (and its floor's one) with the keeper,
# holds their signed long polls on the api and times the pickup of a
# release step's assignments (its apps and deploys by the CLI).
section_hosts() {
	local i
	say "hosts: $HOSTS_N simulated hosts on one api"
	if [ ! -x "$B/bench_hosts" ]; then
		note hosts "not run: bench/bench_hosts is not built yet (issue 13)"
		return
	fi
	if ! platform_start hosts "sqlite:$work/hosts/store.db"; then
		note hosts "did not run: the keeper or the api did not start (see $work/hosts/*.log)"
		platform_stop
		return
	fi
	for i in $(seq 0 "$HOSTS_N"); do
		"$COFFER" keeper join-token --state-dir "$T/keeper" 2>>"$T/cli.log" || break
	done >"$T/join-tokens"
	if [ "$(wc -l <"$T/join-tokens")" -ne $((HOSTS_N + 1)) ]; then
		note hosts "did not run: coffer keeper join-token failed"
	else
		profile_start 6-hosts "$API_PID"
		run hosts "$T/hosts.log" "$B/bench_hosts" --name hosts --api "$API_URL" --keeper "$KEEPER_URL" \
			--store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --join-tokens "$T/join-tokens" \
			--coffer "$COFFER" --hosts "$HOSTS_N" --api-pid "$API_PID"
		profile_stop 6-hosts
	fi
	rm -f "$T/join-tokens"
	platform_stop
}

# Machines left by the boot row: only ours (their environment names this run).
kill_boot_machines() {
	local p
	[ "${boot_ran:-0}" = 1 ] || return 0
	for p in /proc/[0-9]*; do
		if tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qx "BENCH_RUN=$RUN_ID"; then
			kill -KILL "${p#/proc/}" 2>/dev/null || true
		fi
	done
}

# Row 1, coffer's side: boots by `coffer deploy` under `coffer dev`; the agent
# logs event=machine.started with boot_us (assignment picked up -> exec).
section_boot() {
	local d=$work/dev pid k i from to
	mkdir -p "$d"
	boot_ran=1
	say "boot: coffer dev, $BOOT_N boots each with 0, 10 and 50 secrets"
	COFFER_CONFIG=$d/cli.json "$COFFER" dev --state-dir "$d/state" --api-addr 127.0.0.1:0 \
		--keeper-addr 127.0.0.1:0 -v >"$d/dev.out" 2>"$d/dev.log" & # -v: the roles' logs (machine.started) in dev.log
	pid=$!
	started_pids+=("$pid")
	if ! wait_file "$d/state/env" "$pid" 60; then
		for k in 0 10 50; do note "boot.coffer.s$k" "did not run: coffer dev did not start (see $d/dev.log)"; done
		return
	fi
	(
		# shellcheck disable=SC1091
		. "$d/state/env"
		export COFFER_API_URL COFFER_TOKEN COFFER_CONFIG=$d/cli.json
		T=$d
		for k in 0 10 50; do
			file=""
			[ "$k" = 10 ] && file=$work/secrets10.env
			[ "$k" = 50 ] && file=$work/secrets50.env
			if ! app_with "boot$k" "$file"; then
				note "boot.coffer.s$k" "did not run: apps create or secrets import failed"
				continue
			fi
			# the 50-secret boots are profiled on the agent and the keeper
			if [ "$k" = 50 ]; then
				mapfile -t boot_pids < <(sed -n 's/^coffer dev: \(keeper ready at\|agent .* ready in\) .* (pid \([0-9]*\))$/\2/p' "$d/dev.log")
				profile_start 1-boot "${boot_pids[@]}"
			fi
			from=$(wc -l <"$d/dev.log")
			ok=1
			for i in $(seq "$BOOT_N"); do
				if ! "$COFFER" deploy -a "boot$k" --grace "$BOOT_GRACE" --env "BENCH_RUN=$RUN_ID" \
					--env "BENCH_I=$i" -- /bin/sleep 3600 >>"$d/deploy.log" 2>&1; then
					note "boot.coffer.s$k" "did not run: coffer deploy failed: $(tail -n 1 "$d/deploy.log" | cut -c1-160)"
					ok=0
					break
				fi
			done
			to=$(wc -l <"$d/dev.log")
			[ "$k" = 50 ] && profile_stop 1-boot
			"$COFFER" scale count 0 -a "boot$k" >>"$d/deploy.log" 2>&1 || true
			[ $ok = 1 ] || continue
			# boot_us of each machine.started line this app's deploys caused
			sed -n "$((from + 1)),${to}p" "$d/dev.log" | grep 'event=machine.started' |
				grep -o 'boot_us=[0-9]*' | cut -d= -f2 >"$d/boot$k.us"
			if [ ! -s "$d/boot$k.us" ]; then
				note "boot.coffer.s$k" "did not run: the agent logged no machine.started with boot_us"
				continue
			fi
			jq -sc --arg b "boot.coffer.s$k" --argjson s "$k" '
				sort as $a | ($a | length) as $n |
				{bench: $b, n: $n, secrets: $s,
				 median_us: (if $n % 2 == 1 then $a[($n - 1) / 2] else ($a[$n / 2 - 1] + $a[$n / 2]) / 2 end),
				 p99_us: $a[([(($n * 0.99) | ceil), 1] | max) - 1],
				 min_us: $a[0], max_us: $a[$n - 1]}' "$d/boot$k.us" >>"$results"
		done
	)
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	kill_boot_machines
}

# time_loop KEY N FUNC: runs FUNC I for I in 1..N, each timed by the wall
# clock around it; one JSON line of median and p99 for KEY. FUNC's output
# goes to $T/cli.log.
time_loop() {
	local key=$1 n=$2 fn=$3 i t0 t1
	: >"$T/$key.us"
	for i in $(seq "$n"); do
		t0=${EPOCHREALTIME/./}
		if ! "$fn" "$i" >>"$T/cli.log" 2>&1; then
			note "$key" "did not run: $(tail -n 1 "$T/cli.log" | cut -c1-160)"
			return 1
		fi
		t1=${EPOCHREALTIME/./}
		echo $((t1 - t0)) >>"$T/$key.us"
	done
	jq -sc --arg b "$key" 'sort as $a | ($a | length) as $n |
		{bench: $b, n: $n,
		 median_us: (if $n % 2 == 1 then $a[($n - 1) / 2] else ($a[$n / 2 - 1] + $a[$n / 2]) / 2 end),
		 p99_us: $a[([(($n * 0.99) | ceil), 1] | max) - 1]}' "$T/$key.us" >>"$results"
}

# cli_set I: `coffer secrets set` of CLI_K new values (staged: the app has no machines).
cli_set() {
	local args=() k
	for k in $(seq "$CLI_K"); do
		args+=("BENCH_$k=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')")
	done
	"$COFFER" secrets set -a "cli$CLI_K" --stage "${args[@]}"
}

# cli_floor I: the CLI's one read of the same api (process start, TLS, one request).
cli_floor() {
	"$COFFER" secrets list -a cli1
}

# the masking row: a machine's 100 MB of output with 50 secrets, through the masker vs straight to its log
section_mask() {
	say "machine output: 100 MB with 50 secrets, masked vs unmasked"
	run mask "$work/mask.log" "$B/bench_mask" "$COFFER" "$work/mask-out.log" 100 50
}

# section_cli_on WHICH: row 5 on a platform of its own (SQLite), with the coffer at $COFFER.
section_cli_on() {
	local which=$1 k
	if ! platform_start "cli-$which" "sqlite:$work/cli-$which/store.db"; then
		for k in 1 10 50; do note "cli.set.$which.s$k" "did not run: the keeper or the api did not start"; done
		platform_stop
		return
	fi
	for k in 1 10 50; do
		"$COFFER" apps create "cli$k" >>"$T/cli.log" 2>&1 || { note "cli.set.$which.s$k" "did not run: apps create failed"; continue; }
		CLI_K=$k time_loop "cli.set.$which.s$k" "$CLI_N" cli_set
	done
	time_loop "cli.floor.$which" "$CLI_N" cli_floor
	platform_stop
}

# Row 2's old figure: the keeper's open of 50 secrets (SQLite, 1 client) by
# the coffer before issue 12, with no signature checks, on a platform of its own.
section_keeper_old() {
	if [ ! -x "$OLD_COFFER" ]; then
		note keeper.open.old.sqlite "not run: no build of $OLD_REF"
		return
	fi
	say "old keeper: opens, 50 secrets, 1 client, coffer at $OLD_REF"
	COFFER=$OLD_COFFER platform_start keeper-old "sqlite:$work/keeper-old/store.db" &&
		COFFER=$OLD_COFFER app_with open50 "$work/secrets50.env" &&
		COFFER=$OLD_COFFER BENCH_KEEPER=$build/old/build/bench/bench_keeper \
			keeper_bench keeper.open.old.sqlite open50 1 "$KEEPER_SECONDS" bench-open-old ||
		note keeper.open.old.sqlite.t1 "did not run: see $work/keeper-old/*.log"
	platform_stop
}

# Row 5: `coffer secrets set` of 1, 10 and 50 values, the wall time of the
# command against the api on loopback: values sealed (and the manifest
# signed) in the CLI; beside it the same command of the coffer before issue
# 12 (values sealed in the api), each with its floor.
section_cli() {
	say "cli: secrets set of 1, 10 and 50 values, $CLI_N each"
	section_cli_on new
	if [ -x "$OLD_COFFER" ]; then
		COFFER=$OLD_COFFER section_cli_on old
	else
		for k in 1 10 50; do note "cli.set.old.s$k" "not run: no build of $OLD_REF"; done
	fi
}

# ---- the run ----

run_all() {
	t_start=$(date +%s)
	make_secrets
	has floor && section_floor
	has peers && section_peers
	has api && section_noop
	if has api || has keeper || has scale; then
		store_line sqlite
		section_backend sqlite "sqlite:$work/sqlite/store.db"
		pg_dir=$work/pg # under build-bench, which the postgres user can enter
		# durable: every PostgreSQL figure is of a server that fsyncs
		if pg_url=$(PG_DURABLE=1 scripts/pg-test-server.sh start "$pg_dir" 2>"$work/pg-server.log"); then
			store_line pg "$pg_url"
			section_backend pg "$pg_url"
		else
			for k in set keeper.open scale.list.small scale.list.large scale.open.small scale.open.large; do
				note "$k.pg" "did not run: PostgreSQL did not start (scripts/pg-test-server.sh)"
			done
		fi
		scripts/pg-test-server.sh stop "$pg_dir"
		pg_dir=""
	fi
	has keeper && section_keeper_old
	has boot && section_boot
	has cli && section_cli
	has hosts && section_hosts
	has mask && section_mask
	t_total=$(($(date +%s) - t_start))
}

# ---- the machine and the table ----

machine_json() {
	local cpu mem deb pgv
	cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
	mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	deb=$(cat /etc/debian_version 2>/dev/null || echo unknown)
	pgv=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	pgv=$([ -n "$pgv" ] && "$pgv/postgres" --version 2>/dev/null | awk '{ print $3 }')
	jq -cn --arg nproc "$(nproc)" --arg cpu "$cpu" --arg mem "$mem" --arg kernel "$(uname -r)" \
		--arg debian "$deb" --arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" --arg total "$t_total" \
		--arg pg "${pgv:-}" --arg node "$(node --version 2>/dev/null)" \
		--arg dotenvx "$([ -x "$DOTENVX" ] && "$DOTENVX" --version 2>/dev/null)" \
		--arg age "$(age --version 2>/dev/null)" \
		--arg systemd "$(systemctl --version 2>/dev/null | head -n 1 | awk '{ print $2 }')" \
		--arg quick "${BENCH_QUICK:-0}" \
		'{nproc: $nproc, cpu: $cpu, mem: $mem, kernel: $kernel, debian: $debian, date: $date,
		  seconds: $total, pg: $pg, node: $node, dotenvx: $dotenvx, age: $age, systemd: $systemd,
		  quick: $quick}'
}
if [ "$table_only" = 0 ]; then
	run_all
	machine_json >"$work/machine.json"
fi

# table_jq PART: bench/table.jq over results.jsonl; PART is goals (the
# issue's table: each goal row, its floor, its goal, met or missed), rows
# (every measurement) or missed (the keys of the goal rows that missed).
table_jq() {
	jq -rs --arg part "$1" --argjson per_open "$X25519_PER_OPEN" --argjson apps "$SCALE_APPS" \
		--argjson small "$SMALL_SECRETS" --argjson large "$SCALE_SECRETS" -f bench/table.jq "$results"
}
[ "$table_only" = 0 ] && profile_summaries
goals=$(table_jq goals) || { say "cannot make the goals table (results in $results)"; exit 1; }
# rows of sections not asked for have no measurement and no note: left out
table=$(table_jq rows | grep -v '| not run | |$') || { say "cannot make the table (results in $results)"; exit 1; }
sqlite_v=$(jq -rs '[.[] | select(.sqlite) | .sqlite] | first // "?"' "$results")
sodium_v=$(jq -rs '[.[] | select(.sodium) | .sodium] | first // "?"' "$results")
machine=$(jq -r --arg sqlite "$sqlite_v" --arg sodium "$sodium_v" '"\(.nproc) cores (\(.cpu)), \(.mem) RAM, Linux \(.kernel), Debian \(.debian); " +
	"libsodium \($sodium), SQLite \($sqlite), PostgreSQL \(.pg), node \(.node), dotenvx \(.dotenvx), " +
	"age \(.age), systemd \(.systemd); a run of \(.seconds) s, \(.date)" +
	(if .quick == "1" then " (BENCH_QUICK: a short trial)" else "" end)' "$work/machine.json")
printf '\n%s\n\n%s\n\n%s\n' "$machine" "$goals" "$table"
for f in "$work"/profiles/*.txt; do
	[ -f "$f" ] && say "profile: $f"
done

if [ "${BENCH_NO_DOC:-0}" != 1 ]; then
	# @PROFILE row@: the row's profile of this run, or a line saying why there is none
	awk -v machine="$machine" -v goals="$goals" -v table="$table" -v dir="$work/profiles" '
		$0 == "@MACHINE@" { print machine; next }
		$0 == "@GOALS@" { print goals; next }
		$0 == "@TABLE@" { print table; next }
		$1 == "@PROFILE" {
			row = $2; sub(/@$/, "", row)
			f = dir "/" row ".txt"; e = dir "/" row ".err"
			if ((getline line < f) > 0) {
				print "Where the time goes in this run:"; print ""; print "```"; print line
				while ((getline line < f) > 0) print line
				print "```"
			} else if ((getline line < e) > 0) print "No profile: perf failed (" line ")."
			else print "No profile in this run: the row met its goal, or did not run."
			next
		}
		{ print }' bench/BENCHMARKS.md.in >docs/BENCHMARKS.md.tmp && mv docs/BENCHMARKS.md.tmp docs/BENCHMARKS.md
	say "wrote docs/BENCHMARKS.md (raw figures: $results)"
fi
