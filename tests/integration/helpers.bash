# Shared by the integration tests: start real keeper and api processes on
# loopback, on the store backend named by COFFER_TEST_STORE (sqlite or pg),
# and check after every test that the canary value leaked nowhere.
#
#   setup()    { platform_start; }
#   teardown() { platform_stop; }
#
# After platform_start: T (the test's folder), STORE_URL, KEEPER_URL,
# API_URL, ADMIN_TOKEN, and COFFER_API_URL / COFFER_TOKEN / COFFER_CONFIG
# exported for the CLI; the app "canary" holds CANARY_SECRET=$CANARY.

: "${COFFER:?COFFER must name the coffer binary}"
CANARY="cnry-4f7d2b91e6c3-value"

# wait_file FILE PID: waits up to 15 s for FILE to exist while PID lives.
wait_file() {
	local i
	for i in $(seq 150); do
		[ -s "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || { echo "process $2 exited before writing $1" >&2; return 1; }
		sleep 0.1
	done
	echo "timed out waiting for $1" >&2
	return 1
}

store_url_for_test() {
	case "${COFFER_TEST_STORE:-sqlite}" in
	sqlite)
		STORE_URL="sqlite:$T/store.db"
		;;
	pg)
		if [ -z "${COFFER_TEST_PG_URL:-}" ]; then
			[ -n "${CI:-}" ] && { echo "CI needs COFFER_TEST_PG_URL" >&2; return 1; }
			skip "COFFER_TEST_PG_URL is not set (no PostgreSQL server)"
		fi
		PG_DB="coffer_it_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
		psql -q -X "$COFFER_TEST_PG_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
		STORE_URL="${COFFER_TEST_PG_URL%/*}/$PG_DB"
		;;
	*)
		echo "unknown COFFER_TEST_STORE '$COFFER_TEST_STORE'" >&2
		return 1
		;;
	esac
}

# keeper_start / api_start: (re)start one role; logs go to $T/<role>.log.
keeper_start() {
	rm -f "$T/keeper.ready"
	"$COFFER" keeper --state-dir "$T/keeper" --store "$STORE_URL" --listen 127.0.0.1:0 \
		--ready-file "$T/keeper.ready" 2>>"$T/keeper.log" &
	KEEPER_PID=$!
	wait_file "$T/keeper.ready" "$KEEPER_PID"
	KEEPER_URL=$(cat "$T/keeper.ready")
}

api_start() {
	rm -f "$T/api.ready"
	"$COFFER" api --state-dir "$T/api" --store "$STORE_URL" --listen 127.0.0.1:0 \
		--keeper "$KEEPER_URL" --keeper-pub "$T/keeper/keeper.pub" \
		--keeper-credential "$T/keeper/api.credential" \
		--ready-file "$T/api.ready" 2>>"$T/api.log" &
	API_PID=$!
	wait_file "$T/api.ready" "$API_PID"
	API_URL=$(cat "$T/api.ready")
}

platform_start() {
	T=$(mktemp -d "${BATS_TMPDIR:-/tmp}/coffer-it.XXXXXX")
	store_url_for_test
	"$COFFER" keeper init --state-dir "$T/keeper" >"$T/keeper-init.out"
	keeper_start
	api_start
	ADMIN_TOKEN=$("$COFFER" api bootstrap --store "$STORE_URL" --org acme)
	export COFFER_API_URL="$API_URL" COFFER_TOKEN="$ADMIN_TOKEN" COFFER_CONFIG="$T/config.json"
	unset COFFER_APP
	"$COFFER" apps create canary >/dev/null
	"$COFFER" secrets set -a canary "CANARY_SECRET=$CANARY" >/dev/null
}

# Every log, output and store file of the test, and the PostgreSQL
# database's dump: none may hold the canary in plaintext.
canary_scan() {
	local hits
	if [ -n "${PG_DB:-}" ]; then
		pg_dump "${COFFER_TEST_PG_URL%/*}/$PG_DB" >"$T/pg-dump.sql" 2>/dev/null || true
	fi
	hits=$(grep -rlaF -- "$CANARY" "$T" "${BATS_TEST_TMPDIR:-/nonexistent}" 2>/dev/null || true)
	if [ -n "$hits" ]; then
		echo "canary value found in: $hits" >&2
		return 1
	fi
}

platform_stop() {
	local rc=0
	[ -n "${T:-}" ] || return 0
	for pid in ${API_PID:-} ${KEEPER_PID:-}; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in ${API_PID:-} ${KEEPER_PID:-}; do
		wait "$pid" 2>/dev/null || true
	done
	# bats keeps each test's output in memory; it is scanned through $output files below
	canary_scan || rc=1
	if [ -n "${PG_DB:-}" ]; then
		psql -q -X "$COFFER_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	[ "$rc" -eq 0 ] && rm -rf "$T"
	return "$rc"
}

# run_logged CMD...: like bats' run, and also keeps the output under $T so
# that the canary scan covers what every command printed.
run_logged() {
	run "$@"
	printf '%s\n' "$output" >>"$T/outputs.log"
}

# store_sql SQL: runs one statement on the test's store, either backend.
store_sql() {
	if [ -n "${PG_DB:-}" ]; then
		psql -q -X -At "${COFFER_TEST_PG_URL%/*}/$PG_DB" -c "$1"
	else
		sqlite3 "$T/store.db" "$1"
	fi
}

# store_dump FILE: a plain dump of the whole store.
store_dump() {
	if [ -n "${PG_DB:-}" ]; then
		pg_dump "${COFFER_TEST_PG_URL%/*}/$PG_DB" >"$1"
	else
		sqlite3 "$T/store.db" .dump >"$1"
	fi
}

# ---- agents (t0500) ----

# agent_start NAME [ARGS...]: (re)starts an agent with its state in
# $T/agents/NAME and its log in $T/agent-NAME.log; waits until it is
# registered (its ready file). AGENT_PID is its pid. Give a join token with
# COFFER_JOIN_TOKEN=... in the environment or --join.
agent_start() {
	local name=$1
	shift
	rm -f "$T/agent-$name.ready"
	"$COFFER" agent --api "$API_URL" --keeper "$KEEPER_URL" --state-dir "$T/agents/$name" --name "$name" \
		--ready-file "$T/agent-$name.ready" "$@" 2>>"$T/agent-$name.log" &
	AGENT_PID=$!
	AGENT_PIDS="${AGENT_PIDS:-} $AGENT_PID"
	wait_file "$T/agent-$name.ready" "$AGENT_PID"
}

# agents_stop: stops every agent agent_start started (before platform_stop).
agents_stop() {
	local pid
	for pid in ${AGENT_PIDS:-}; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in ${AGENT_PIDS:-}; do
		wait "$pid" 2>/dev/null || true
	done
	AGENT_PIDS=
}

# join_token [ARGS...]: a new join token from the test's keeper.
join_token() {
	"$COFFER" keeper join-token --state-dir "$T/keeper" "$@"
}
