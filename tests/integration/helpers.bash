# Shared by the integration tests: start real keeper and api processes on
# loopback, on the store backend named by COFFER_TEST_STORE (sqlite or pg),
# and check after every test that the canary value leaked nowhere.
#
# A platform of the test's own (a test that stops or restarts a role, or
# needs a fresh store):
#   setup()    { platform_start; }
#   teardown() { platform_stop; }
# One platform for the tests of a file that do not interfere (each test
# still ends with the canary scan):
#   setup_file()    { platform_start; }
#   teardown_file() { platform_stop; }
#   setup()         { platform_test_start; }
#   teardown()      { platform_test_stop; }
#
# After platform_start: T (the platform's folder), STORE_URL, KEEPER_URL,
# API_URL (both https://), ADMIN_TOKEN, and COFFER_API_URL / COFFER_TOKEN /
# COFFER_CONFIG / COFFER_CA exported for the CLI (and CURL_CA_BUNDLE for the
# tests' own curl calls); the app "canary" holds CANARY_SECRET=$CANARY.
# Every temporary folder is made under TMPDIR and every port is chosen by
# the kernel, so test files can run in parallel.

: "${COFFER:?COFFER must name the coffer binary}"
CANARY="cnry-4f7d2b91e6c3-value"

# The roles' timing constants that the tests wait on (heartbeat, host
# staleness, retries, restart back-off, poll intervals) are divided by this
# (src/lib/timescale.h): with 3, a heartbeat every 1.7 s and a host stale
# after 5 s (three heartbeats missed, room for a loaded machine). Grace
# windows and token lifetimes are given to each command instead.
export COFFER_TEST_TIMESCALE="${COFFER_TEST_TIMESCALE:-3}"

# The tests' certificate maker (tests/security/tls_cert.c).
TLS_CERT="${TLS_CERT:-$(dirname "$COFFER")/tests/security/tls_cert}"

# tls_setup: the platform's CA and one server certificate for
# localhost/127.0.0.1/::1 in $T/tls, which the keeper and the api serve
# (TLS_SERVER_CERT, TLS_SERVER_KEY) and every client trusts (COFFER_CA).
tls_setup() {
	mkdir -p "$T/tls"
	"$TLS_CERT" ca "$T/tls/ca.pem" "$T/tls/ca.key"
	"$TLS_CERT" cert "$T/tls/ca.pem" "$T/tls/ca.key" "$T/tls/server.pem" "$T/tls/server.key" 30 \
		localhost 127.0.0.1 ::1
	TLS_SERVER_CERT="$T/tls/server.pem" TLS_SERVER_KEY="$T/tls/server.key"
	export COFFER_CA="$T/tls/ca.pem" CURL_CA_BUNDLE="$T/tls/ca.pem" TLS_SERVER_CERT TLS_SERVER_KEY
}

# wait_file FILE PID: waits up to 60 s (a loaded machine, a sanitizer
# build) for FILE to exist while PID lives.
wait_file() {
	local i
	for i in $(seq 600); do
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
		# a schema of its own in the server's database (cheaper than a
		# database: tests run by the hundred, several at once)
		PG_SCHEMA="coffer_it_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
		psql -q -X "$COFFER_TEST_PG_URL" -c "CREATE SCHEMA $PG_SCHEMA" >/dev/null
		case $COFFER_TEST_PG_URL in
		*\?*) STORE_URL="$COFFER_TEST_PG_URL&options=-csearch_path%3D$PG_SCHEMA" ;;
		*) STORE_URL="$COFFER_TEST_PG_URL?options=-csearch_path%3D$PG_SCHEMA" ;;
		esac
		;;
	*)
		echo "unknown COFFER_TEST_STORE '$COFFER_TEST_STORE'" >&2
		return 1
		;;
	esac
}

# keeper_start / api_start: (re)start one role; logs go to $T/<role>.log.
# METRICS=1: every role (agents too) also serves its metrics on a port of
# its own, logged as event=metrics_listening (t0820).
# KEEPER_LISTEN: the keeper's address (default 127.0.0.1:0).
keeper_start() {
	rm -f "$T/keeper.ready"
	# 3>&-: bats waits for its fd 3 to close before it ends a file
	"$COFFER" keeper --state-dir "$T/keeper" --store "$STORE_URL" --listen "${KEEPER_LISTEN:-127.0.0.1:0}" \
		--tls-cert "$TLS_SERVER_CERT" --tls-key "$TLS_SERVER_KEY" \
		--ready-file "$T/keeper.ready" ${METRICS:+--metrics-listen 127.0.0.1:0} >>"$T/keeper.out" 2>>"$T/keeper.log" 3>&- &
	KEEPER_PID=$!
	echo "$KEEPER_PID" >"$T/keeper.pid"
	wait_file "$T/keeper.ready" "$KEEPER_PID"
	KEEPER_URL=$(cat "$T/keeper.ready")
}

# api_start [HOST:PORT]: a restart gives the old address, so that agents
# and the CLI keep reaching it. API_PLAIN=1: plain HTTP (loopback only), for
# a test that puts a man in the middle who must see the bytes. API_DEPLOYER_KEY:
# the api's own deployer key (--deployer-key, t0765). API_NAME:
# the replica's name, for its state folder, ready file and logs (default
# "api"; t0900 runs three).
api_start() {
	local tls=(--tls-cert "$TLS_SERVER_CERT" --tls-key "$TLS_SERVER_KEY") name=${API_NAME:-api}
	[ -n "${API_PLAIN:-}" ] && tls=()
	rm -f "$T/$name.ready"
	"$COFFER" api --state-dir "$T/$name" --store "$STORE_URL" --listen "${1:-127.0.0.1:0}" \
		--keeper "$KEEPER_URL" --keeper-pub "$T/keeper/keeper.pub" \
		--keeper-credential "$T/keeper/api.credential" --boot-key "$T/keeper/api.boot.key" \
		--rows-key "$T/keeper/api.rows.key" --digest-key "$T/keeper/api.digest.key" \
		"${tls[@]}" --ca "$COFFER_CA" \
		--ready-file "$T/$name.ready" ${METRICS:+--metrics-listen 127.0.0.1:0} \
		${API_DEPLOYER_KEY:+--deployer-key "$API_DEPLOYER_KEY"} >>"$T/$name.out" 2>>"$T/$name.log" 3>&- &
	API_PID=$!
	echo "$API_PID" >"$T/$name.pid"
	wait_file "$T/$name.ready" "$API_PID"
	API_URL=$(cat "$T/$name.ready")
}

# api_replica_start N: another api (N >= 2) on the platform's store and keys,
# with its own state folder, port, ready file and log ($T/api-N.log):
# REPLICA_PID[N], REPLICA_URL[N]. The platform's api is replica 1.
api_replica_start() {
	local n=$1 pid=$API_PID url=$API_URL
	API_NAME=api-$n api_start
	REPLICA_PID[n]=$API_PID
	REPLICA_URL[n]=$API_URL
	API_PID=$pid API_URL=$url
}

platform_start() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/coffer-it.XXXXXX")
	# machines run as nobody when the tests run as root: they must be able
	# to pass through $T (its files stay unreadable to them)
	chmod 711 "$T"
	store_url_for_test
	tls_setup
	"$COFFER" keeper init --state-dir "$T/keeper" >"$T/keeper-init.out"
	keeper_start
	api_start
	ADMIN_TOKEN=$("$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --org acme)
	export COFFER_API_URL="$API_URL" COFFER_TOKEN="$ADMIN_TOKEN" COFFER_CONFIG="$T/config.json"
	unset COFFER_APP
	deployer_login
	"$COFFER" apps create canary >/dev/null
	"$COFFER" secrets set -a canary "CANARY_SECRET=$CANARY" >/dev/null
	# for the tests of a file that share this platform (setup_file)
	export T STORE_URL PG_SCHEMA KEEPER_URL API_URL KEEPER_PID API_PID ADMIN_TOKEN
}

# deployer_login: enrols the CLI's deployer key (admin of the org acme, all
# apps) with a one-time token from the keeper: the CLI signs every change
# of the tests with it ($T/deployer.key, beside $COFFER_CONFIG).
deployer_login() {
	local tok
	tok=$("$COFFER" keeper deployer-token --state-dir "$T/keeper" --store "$STORE_URL" --org acme --role admin)
	"$COFFER" login --deployer-token "$tok" --keeper "$KEEPER_URL" --name tests >/dev/null
}

# platform_test_start / platform_test_stop: setup and teardown of a test in
# a file whose tests share one platform (platform_start in setup_file).
# Each test starts with the apps of a new platform (apps_fresh). A test
# named in the file's OWN_PLATFORM array (descriptions) gets a platform of
# its own instead: one that stops or restarts a role, edits the store, or
# looks at what the others leave behind (tokens, the audit log). The
# canary scan runs after every test.
platform_test_start() {
	if own_platform; then
		platform_start
		return
	fi
	[ -n "${T:-}" ] && [ -d "$T" ] || { echo "no platform: platform_start in setup_file" >&2; return 1; }
	unset COFFER_APP
	kill -0 "$KEEPER_PID" && kill -0 "$API_PID" || { echo "a role of the file's platform is down" >&2; return 1; }
	apps_fresh
}

# apps_fresh: destroys every app of the org and makes "canary" with the
# canary secret again: the apps a new platform starts with (secrets
# versions from 1, new app keys, nothing staged), for the tests of a file
# that look at the org's apps and secrets only, not at its tokens or audit
# log.
apps_fresh() {
	local name
	for name in $("$COFFER" apps list --json | jq -r '.[].name'); do
		"$COFFER" apps destroy "$name" --yes >/dev/null
	done
	"$COFFER" apps create canary >/dev/null
	"$COFFER" secrets set -a canary "CANARY_SECRET=$CANARY" >/dev/null
}

platform_test_stop() {
	if own_platform; then
		platform_stop
		return
	fi
	canary_scan
}

own_platform() {
	local d
	for d in ${OWN_PLATFORM[@]+"${OWN_PLATFORM[@]}"}; do
		[ "$d" = "$BATS_TEST_DESCRIPTION" ] && return 0
	done
	return 1
}

# Every log, output and store file of the test, and the PostgreSQL
# database's dump: none may hold the canary in plaintext.
canary_scan() {
	local hits
	if [ -n "${PG_SCHEMA:-}" ]; then
		if ! pg_dump -n "$PG_SCHEMA" "$COFFER_TEST_PG_URL" >"$T/pg-dump.sql" 2>"$T/pg-dump.err" ||
			[ ! -s "$T/pg-dump.sql" ]; then
			echo "canary scan: no dump of the PostgreSQL schema $PG_SCHEMA: $(cat "$T/pg-dump.err")" >&2
			return 1
		fi
		# a bytea column is dumped in hex: a value stored unsealed shows only so
		if dump_holds "$T/pg-dump.sql" "$CANARY"; then
			echo "canary value found in the PostgreSQL dump" >&2
			return 1
		fi
	fi
	# what a machine itself prints is masked before it reaches its out.log
	# (docs/RUNPATH.md "Output and its masking"): out.log files are scanned too;
	# a running machine's secret files (t0630) are its secrets, in memory:
	# allowed only on the tmpfs the agent mounted for it
	hits=$(grep -rlaF -- "$CANARY" "$T" "${BATS_TEST_TMPDIR:-/nonexistent}" 2>/dev/null |
		while IFS= read -r f; do
			if [[ "$f" =~ ^($T/agents/[^/]+/machines/[0-9a-f]+/secrets)/ ]] &&
				[ "$(findmnt -n -o FSTYPE "${BASH_REMATCH[1]}" 2>/dev/null)" = tmpfs ]; then
				continue
			fi
			echo "$f"
		done || true)
	if [ -n "$hits" ]; then
		echo "canary value found in: $hits" >&2
		return 1
	fi
}

# stop_pids PID...: SIGTERM to each, then waits until each has ended (also
# when it is not a child of this shell: a platform of setup_file).
stop_pids() {
	local pid i
	for pid in "$@"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "$@"; do
		wait "$pid" 2>/dev/null || true
		for i in $(seq 600); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
	done
}

platform_stop() {
	local rc=0 f pid pids=()
	[ -n "${T:-}" ] || return 0
	# the roles as this shell knows them, and as their pid files do: a test
	# that restarted one (its own subshell) leaves the new pid only there;
	# a pid is taken only while its command line still names $T
	for f in "$T"/*.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$T/" && pids+=("$pid")
	done
	stop_pids ${API_PID:-} ${KEEPER_PID:-} ${pids[@]+"${pids[@]}"}
	# bats keeps each test's output in memory; it is scanned through $output files below
	canary_scan || rc=1
	if [ -n "${PG_SCHEMA:-}" ]; then
		psql -q -X "$COFFER_TEST_PG_URL" -c "DROP SCHEMA IF EXISTS $PG_SCHEMA CASCADE" >/dev/null 2>&1 || true
	fi
	[ "$rc" -eq 0 ] && rm -rf "$T"
	return "$rc"
}

# deployer_id: the id of the CLI's deployer key (coffer login wrote it into the config file).
deployer_id() {
	jq -r .deployer_id "$COFFER_CONFIG"
}

# run_logged CMD...: like bats' run, and also keeps the output under $T so
# that the canary scan covers what every command printed.
run_logged() {
	run "$@"
	printf '%s\n' "$output" >>"$T/outputs.log"
}

# store_sql SQL: runs one statement on the test's store, either backend.
store_sql() {
	if [ -n "${PG_SCHEMA:-}" ]; then
		psql -q -X -At "$STORE_URL" -c "$1"
	else
		sqlite3_busy "$T/store.db" "$1"
	fi
}

# sqlite3_busy ARGS...: the sqlite3 shell, waiting up to 10 s on a lock the
# api's writer holds instead of failing with "database is locked".
sqlite3_busy() {
	sqlite3 -cmd '.timeout 10000' "$@"
}

# blob HEX: a BLOB literal of the store's SQL (t0710, t0720, t0750).
blob() {
	if [ -n "${PG_SCHEMA:-}" ]; then printf "decode('%s', 'hex')" "$1"; else printf "X'%s'" "$1"; fi
}

# store_dump FILE: a plain dump of the whole store.
store_dump() {
	if [ -n "${PG_SCHEMA:-}" ]; then
		pg_dump -n "$PG_SCHEMA" "$COFFER_TEST_PG_URL" >"$1"
	else
		sqlite3_busy "$T/store.db" .dump >"$1"
	fi
}

# dump_holds FILE VALUE: the store dump FILE holds VALUE, as text or in
# the hex a dump writes a BLOB or bytea column in (SQLite X'..', PostgreSQL
# \x..): a value stored unsealed in the ciphertext column shows only so.
dump_holds() {
	local hex
	hex=$(printf '%s' "$2" | od -An -tx1 -v | tr -d ' \n')
	grep -qaF -- "$2" "$1" || grep -qaiF -- "$hex" "$1"
}

# ---- agents (t0500) ----

# agent_start NAME [ARGS...]: (re)starts an agent with its state in
# $T/agents/NAME and its log in $T/agent-NAME.log; waits until it is
# registered (its ready file). AGENT_PID is its pid. Give a join token with
# COFFER_JOIN_TOKEN=... in the environment or --join. AGENT_APIS: the api
# URLs it is given, space-separated, each as an --api (default $API_URL).
agent_start() {
	local name=$1 url apis=()
	shift
	for url in ${AGENT_APIS:-$API_URL}; do
		apis+=(--api "$url")
	done
	rm -f "$T/agent-$name.ready"
	"$COFFER" agent "${apis[@]}" --keeper "$KEEPER_URL" --state-dir "$T/agents/$name" --name "$name" \
		--ca "$COFFER_CA" --ready-file "$T/agent-$name.ready" ${METRICS:+--metrics-listen 127.0.0.1:0} "$@" \
		>>"$T/agent-$name.out" 2>>"$T/agent-$name.log" 3>&- &
	AGENT_PID=$!
	AGENT_PIDS="${AGENT_PIDS:-} $AGENT_PID"
	wait_file "$T/agent-$name.ready" "$AGENT_PID"
}

# agents_stop: stops every agent agent_start started (before platform_stop).
agents_stop() {
	stop_pids ${AGENT_PIDS:-}
	AGENT_PIDS=
}

# join_token [ARGS...]: a new join token from the test's keeper.
join_token() {
	"$COFFER" keeper join-token --state-dir "$T/keeper" "$@"
}

# ---- the run path (t0600, t0610) ----

# Requests by hand as an enrolled host (t0610, t0710, t0715, t0730):
# host_sign signs them with the host's key, curl sends them.

# key_of HOST_ID: the signing key file of the agent with that host id.
key_of() {
	local f
	for f in "$T"/agent-*.ready; do
		if [ "$(cat "$f")" = "$1" ]; then
			f=${f##*/agent-}
			echo "$T/agents/${f%.ready}/host.sign.key"
			return 0
		fi
	done
	return 1
}

# sign AS_HOST METHOD PATH BODYFILE [TIMESTAMP]: HDRS for a request signed
# by that host's key (AS_HOST may be an unknown id: then KEY must be set).
sign() {
	local key=${KEY:-}
	[ -n "$key" ] || key=$(key_of "$1")
	mapfile -t HDRS < <("$HOST_SIGN" "$key" "$1" "$2" "$3" "$4" ${5:+"$5"})
	[ "${#HDRS[@]}" -eq 4 ]
}

# send URL METHOD PATH [BODYFILE]: sends HDRS; sets CODE and BODY (kept under $T).
send() {
	local args=(-sS -o "$T/last.body" -w '%{http_code}' -X "$2" -H 'Content-Type: application/json') h
	for h in "${HDRS[@]}"; do
		args+=(-H "$h")
	done
	[ -n "${4:-}" ] && args+=(--data-binary "@$4")
	CODE=$(curl "${args[@]}" "$1$3") || CODE=000
	BODY=$(cat "$T/last.body" 2>/dev/null || true)
	printf '%s %s -> %s %s\n' "$2" "$3" "$CODE" "$BODY" >>"$T/outputs.log"
}


APPS_DIR="$BATS_TEST_DIRNAME/apps"

# wait_until SECONDS CMD...: runs CMD every 0.1 s until it succeeds; fails
# (naming CMD) once SECONDS have passed and CMD was tried at least 5 times
# a second (on a loaded machine, where CMD itself is slow, that is longer).
wait_until() {
	local limit=$1 end tries=0
	shift
	end=$((SECONDS + limit + 1))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		tries=$((tries + 1))
		[ "$SECONDS" -lt "$end" ] || [ "$tries" -lt $((limit * 5)) ] || break
		sleep 0.1
	done
	echo "timed out after ${limit}s waiting for: $*" >&2
	return 1
}

# exits_with STATUS CMD...: CMD exits with STATUS (for wait_until).
exits_with() {
	local want=$1 rc=0
	shift
	"$@" || rc=$?
	[ "$rc" -eq "$want" ]
}

# logged CMD...: runs CMD, its standard output also kept under $T (scanned).
logged() {
	"$@" | tee -a "$T/outputs.log"
	return "${PIPESTATUS[0]}"
}

# agents_up N: enrols and starts agents h1..hN, each with a new join token;
# HOST_IDS[i] is the host id of h<i>. Waits until the api sees each one ready.
agents_up() {
	local i
	HOST_IDS=()
	for i in $(seq "$1"); do
		COFFER_JOIN_TOKEN=$(join_token) agent_start "h$i"
		HOST_IDS[$i]=$(cat "$T/agent-h$i.ready")
	done
	wait_until 20 hosts_ready "$1"
}

hosts_ready() {
	[ "$("$COFFER" hosts list --json | jq '[.[] | select(.state == "ready")] | length')" -ge "$1" ]
}

# api_get PATH: GET on the api with the admin token; the body is printed
# and kept under $T.
api_get() {
	logged curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" "$API_URL$1"
}

# machines_json APP: the app's machines, as the api lists them (a JSON array).
machines_json() {
	api_get "/v1/apps/$1/machines" | jq -c '.machines'
}

# started_pids APP: "ID PID" per started machine, in id order.
started_pids() {
	machines_json "$1" | jq -r '[.[] | select(.state == "started")] | sort_by(.id) | .[] | "\(.id) \(.pid)"'
}

# count_started APP N: exactly N machines of APP run a live process.
count_started() {
	local n=0 id pid
	while read -r id pid; do
		[ -n "$id" ] || continue
		kill -0 "$pid" 2>/dev/null || return 1
		n=$((n + 1))
	done < <(started_pids "$1")
	[ "$n" -eq "$2" ] && [ "$(machines_json "$1" | jq length)" -eq "$2" ]
}

# release_of APP VERSION: the release as the api shows it (JSON).
release_of() {
	api_get "/v1/apps/$1/releases/$2"
}

release_status() {
	release_of "$1" "$2" | jq -r .status
}

release_is() {
	[ "$(release_status "$1" "$2")" = "$3" ]
}

# gone PID: the process has ended.
gone() {
	if kill -0 "$1" 2>/dev/null; then return 1; fi
}

# release_done APP VERSION: it succeeded or failed.
release_done() {
	case "$(release_status "$1" "$2")" in
	succeeded | failed) return 0 ;;
	*) return 1 ;;
	esac
}

# latest_release APP: the newest release's version (0 for none).
latest_release() {
	api_get "/v1/apps/$1/releases" | jq -r '.releases[0].version // 0'
}

# releases_settled APP: no release of APP is pending or running.
releases_settled() {
	[ "$(api_get "/v1/apps/$1/releases" | jq '[.releases[] | select(.status == "pending" or .status == "running")] | length')" = 0 ]
}

# env_of PID NAME: NAME's value in the process's environment; fails when
# the process or the name is not there. Never logged: it may be a value.
env_of() {
	local line
	[ -r "/proc/$1/environ" ] || return 1
	while IFS= read -r -d '' line; do
		if [ "${line%%=*}" = "$2" ]; then
			printf '%s' "${line#*=}"
			return 0
		fi
	done <"/proc/$1/environ"
	return 1
}

# machine_env_is APP NAME VALUE: every started machine of APP has NAME=VALUE.
machine_env_is() {
	local id pid n=0
	while read -r id pid; do
		[ -n "$id" ] || continue
		[ "$(env_of "$pid" "$2")" = "$3" ] || return 1
		n=$((n + 1))
	done < <(started_pids "$1")
	[ "$n" -gt 0 ]
}

# cli ARGS...: the CLI, for a command that waits on a release: never longer than 150 s.
cli() {
	timeout 150 "$COFFER" "$@"
}

# deploy APP ARGS...: `coffer deploy` of APP with a 2 s grace window; ARGS
# are its options, then -- and the command.
deploy() {
	local app=$1
	shift
	run_logged cli deploy -a "$app" --grace 2s "$@"
}

# machine_pids_of_test: every pid a machine of this test ever reported
# (from the store), so that teardown ends only what the test started.
machine_pids_of_test() {
	store_sql "SELECT pid FROM machines WHERE pid IS NOT NULL AND pid > 0" 2>/dev/null || true
}

# run_stop: stops the agents and then whatever machine process they left.
run_stop() {
	local pids pid
	[ -n "${T:-}" ] || return 0
	pids=$(machine_pids_of_test)
	agents_stop
	for pid in $pids; do
		# only a machine of ours: its environment names one of our machine ids
		if [ -r "/proc/$pid/environ" ] && tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -q '^COFFER_MACHINE_ID=' &&
			[ -n "$(store_sql "SELECT id FROM machines WHERE id = '$(env_of "$pid" COFFER_MACHINE_ID)'" 2>/dev/null)" ]; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
}

# ---- boot tokens by hand (t0610) ----

b64url() {
	base64 -w0 | tr '+/' '-_' | tr -d '='
}

# mint_token CLAIMS: a boot token over the JSON CLAIMS, signed with the
# api's boot key from the keeper's state (the key the api signs with).
# Only the tests mint this way: to make tokens the api would never make.
mint_token() {
	local dir hdr pl sig
	dir=$(mktemp -d "$T/mint.XXXXXX")
	{ printf '302e020100300506032b657004220420'; tr -d ' \n' <"$T/keeper/api.boot.key"; } | xxd -r -p >"$dir/key.der"
	openssl pkey -inform DER -in "$dir/key.der" -out "$dir/key.pem" 2>/dev/null || { rm -rf "$dir"; return 1; }
	hdr=$(printf '{"alg":"EdDSA"}' | b64url)
	pl=$(printf '%s' "$1" | b64url)
	printf '%s.%s' "$hdr" "$pl" >"$dir/in"
	sig=$(openssl pkeyutl -sign -inkey "$dir/key.pem" -rawin -in "$dir/in" | b64url)
	rm -rf "$dir"
	[ -n "$sig" ] || return 1
	printf '%s.%s.%s\n' "$hdr" "$pl" "$sig"
}

# token_claims TOKEN: the payload of a boot token (JSON).
token_claims() {
	local p
	p=$(cut -d. -f2 <<<"$1" | tr -- '-_' '+/')
	while [ $((${#p} % 4)) -ne 0 ]; do p="$p="; done
	base64 -d <<<"$p"
}

# enrol_api [ARGS...] (t0765, t0770): lets the org acme post plaintext values
# (docs/API.md "Plaintext values"): a deployer token of the org acme (ARGS: its --app/--role),
# the api's key enrolled with it at $T/api-deployer.key (API_DEPLOYER_ID),
# and the api restarted at its address with --deployer-key.
enrol_api() {
	local tok
	tok=$("$COFFER" keeper deployer-token --state-dir "$T/keeper" --store "$STORE_URL" --org acme "$@")
	run_logged "$COFFER" api enrol-deployer --deployer-token - --keeper "$KEEPER_URL" --ca "$COFFER_CA" \
		--key "$T/api-deployer.key" --name api <<<"$tok"
	[ "$status" -eq 0 ] || { echo "enrol-deployer: $output" >&2; return 1; }
	API_DEPLOYER_ID=$(grep -xE '[0-9a-f]{24}' <<<"$output")
	[[ "$output" == *"start the api with --deployer-key $T/api-deployer.key"* ]]
	[ "$(stat -c %a "$T/api-deployer.key")" = 600 ]
	stop_pids "$API_PID"
	API_DEPLOYER_KEY="$T/api-deployer.key" api_start "${API_URL#https://}"
	grep -q "plaintext_values_allowed.*$API_DEPLOYER_ID" "$T/api.log"
}
