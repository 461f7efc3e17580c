#!/usr/bin/env bats
# Connection exhaustion: an attacker on other loopback addresses (127.0.0.2
# and up; the tests' clients are 127.0.0.1) opens hundreds of idle and
# half-sent connections to the api and the keeper (conn_hold,
# tests/security/conn_hold.c). While they are held the CLI is answered at
# once and an agent boots a machine with its secrets; one address gets no
# more than its cap; every held connection is closed by the server after
# the idle timeout. And the agents' long polls park instead of holding the
# server's threads: more of them than the pool has threads leave the CLI
# answered at once.

load helpers

bats_require_minimum_version 1.5.0

IDLE_TIMEOUT_S=10 # HTTP_SERVER_TIMEOUT_S_DEFAULT
PER_IP=32         # HTTP_SERVER_PER_IP_DEFAULT

setup() {
	: "${CONN_HOLD:?CONN_HOLD must name tests/security/conn_hold}"
	platform_start
	APP="$APPS_DIR/app.sh"
	printf '{}' >"$T/empty.json"
}

teardown() {
	stop_pids ${HOLD_PIDS:-} ${POLL_PIDS:-}
	run_stop
	platform_stop
}

port_of() {
	local p=${1##*:}
	echo "${p%%/*}"
}

# hold NAME URL: conn_hold against the role at URL for 15 s, in the
# background: 300 idle connections from 127.0.0.2 (one address: its cap
# applies), 300 from 127.0.0.10-19 (30 each, under the cap: all kept, more
# than the old limit of 256 in all) and 20 that send half a header from
# 127.0.0.3. Its report goes to $T/hold-NAME.out.
hold() {
	local many
	many=$(seq -s, -f '127.0.0.%g' 10 19)
	"$CONN_HOLD" 127.0.0.1 "$(port_of "$2")" 15 idle:300:127.0.0.2 "idle:300:$many" slowtls:20:127.0.0.3 \
		>"$T/hold-$1.out" 2>"$T/hold-$1.err" 3>&- &
	HOLD_PIDS="${HOLD_PIDS:-} $!"
}

holding() {
	grep -qx ready "$T/hold-$1.out"
}

# report_line NAME N: the report's line for the Nth group
report_line() {
	sed -n "$(($2 + 1))p" "$T/hold-$1.out"
}

# field LINE NAME: the number after NAME= in LINE
field() {
	grep -oE "(^| )$2=-?[0-9]+" <<<"$1" | cut -d= -f2
}

# timed_list: runs `coffer secrets list` and sets LIST_MS to how long it took
timed_list() {
	local t0
	t0=$(date +%s%3N)
	run_logged "$COFFER" secrets list -a canary
	LIST_MS=$(($(date +%s%3N) - t0))
	[ "$status" -eq 0 ] || { echo "secrets list failed: $output" >&2; return 1; }
	[[ "$output" == *CANARY_SECRET* ]]
}

# list_baseline: the limit fast_list holds the CLI to: 3 s, or five times
# what the same command takes on this machine with nothing held when that
# is more. On an idle machine the held connections cost nothing measurable
# (~140 ms, like the baseline); the margin is for CI, where a dozen test
# programs share 2 cores (1006 ms was seen there against a 1 s limit). A
# starved server fails by far: "cannot reach the API", or a minute.
list_baseline() {
	timed_list
	timed_list
	LIST_LIMIT_MS=$((LIST_MS * 5 > 3000 ? LIST_MS * 5 : 3000))
	echo "secrets list with nothing held: $LIST_MS ms; limit $LIST_LIMIT_MS ms" >&3
}

# fast_list: `coffer secrets list` succeeds within LIST_LIMIT_MS
fast_list() {
	timed_list
	echo "secrets list: $LIST_MS ms" >&3
	[ "$LIST_MS" -lt "$LIST_LIMIT_MS" ] || { echo "secrets list took $LIST_MS ms" >&2; return 1; }
}

# closed_by_timeout NAME: the report shows every connection closed by the
# server: the capped address's excess at once, the rest after the idle timeout
closed_by_timeout() {
	local one many slow
	one=$(report_line "$1" 1)
	many=$(report_line "$1" 2)
	slow=$(report_line "$1" 3)
	echo "$1: $one | $many | $slow" >&3
	# one address: all connected, all but its cap closed at once, the rest held
	[ "$(field "$one" connected)" = 300 ]
	[ "$(field "$one" early)" -ge $((300 - PER_IP)) ]
	[ "$(field "$one" late)" -ge 1 ]
	# ten addresses under the cap: every connection kept, then timed out
	[ "$(field "$many" connected)" = 300 ]
	[ "$(field "$many" early)" = 0 ]
	[ "$(field "$slow" connected)" = 20 ]
	[ "$(field "$slow" early)" = 0 ]
	local line
	for line in "$one" "$many" "$slow"; do
		[ "$(field "$line" open)" = 0 ]
		# held for most of the timeout (some were opened before "ready"), closed soon after it
		[ "$(field "$line" late_min_ms)" -ge $(((IDLE_TIMEOUT_S - 3) * 1000)) ]
		[ "$(field "$line" late_max_ms)" -le $(((IDLE_TIMEOUT_S + 4) * 1000)) ]
	done
}

@test "hundreds of idle and half-sent connections from other addresses: the CLI and an agent are served, the server closes them after the timeout" {
	list_baseline
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web DB_URL=postgres://held >/dev/null
	hold api "$API_URL"
	hold keeper "$KEEPER_URL"
	wait_until 10 holding api
	wait_until 10 holding keeper
	held_at=$(date +%s%3N)
	# while they are held
	fast_list
	fast_list
	t0=$SECONDS
	deploy web -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started web 1
	machine_env_is web DB_URL postgres://held
	booted_ms=$(($(date +%s%3N) - held_at))
	echo "deploy and boot: $((SECONDS - t0)) s" >&3
	fast_list
	for pid in $HOLD_PIDS; do
		wait "$pid" # each reports when its 15 s are over
	done
	HOLD_PIDS=
	closed_by_timeout api
	closed_by_timeout keeper
	# the machine booted while every connection of the attacker was still held
	for name in api keeper; do
		[ "$booted_ms" -lt "$(field "$(report_line "$name" 2)" late_min_ms)" ]
	done
	# the roles still serve
	fast_list
	grep -q '"max_per_ip":32' "$T/api.log" || grep -q 'max_per_ip=32' "$T/api.log"
}

# sign_poll GEN N: the headers of a signed long poll of the assignments
# after GEN (wait 15 s), in $T/poll-N.hdr, for poll_start.
POLL_WAIT_S=15
sign_poll() {
	local target="/v1/agent/assignments?after=$1&wait=$POLL_WAIT_S"
	"$HOST_SIGN" "$KEY" "$HOST_ID" GET "$target" "" >"$T/poll-$2.hdr"
	[ "$(wc -l <"$T/poll-$2.hdr")" -eq 4 ]
}

# poll_start GEN N: sends poll N in the background; "STATUS SECONDS" goes
# to $T/poll-N.code when it is answered.
poll_start() {
	local target="/v1/agent/assignments?after=$1&wait=$POLL_WAIT_S"
	{ curl -sS -H "@$T/poll-$2.hdr" -o "$T/poll-$2.body" -w '%{http_code} %{time_total}' "$API_URL$target" \
		>"$T/poll-$2.code.tmp" 2>>"$T/poll.err" || echo 000 >"$T/poll-$2.code.tmp"
	  mv "$T/poll-$2.code.tmp" "$T/poll-$2.code"; } 3>&- &
	POLL_PIDS="${POLL_PIDS:-} $!"
}

# conns_to URL N: at least N client connections to URL's port are established
conns_to() {
	[ "$(ss -tnH state established "( dport = :$(port_of "$1") )" | wc -l)" -ge "$2" ]
}

polls_answered() {
	local i
	for i in $(seq "$1"); do
		[ -s "$T/poll-$i.code" ] || return 1
	done
}

@test "long polls park: more of them than the pool's threads, and the CLI is answered at once" {
	COFFER_JOIN_TOKEN=$(join_token) agent_start h1
	HOST_ID=$(cat "$T/agent-h1.ready")
	KEY="$T/agents/h1/host.sign.key"
	agents_stop
	threads=$(grep -m1 http_listening "$T/api.log" | grep -oE '"threads":[0-9]+|threads=[0-9]+' | grep -oE '[0-9]+')
	[ "$threads" -ge 1 ]
	n=$((threads * 2 + 2))
	[ "$n" -lt "$PER_IP" ]
	# the host's generation now: a poll after it waits
	mapfile -t HDRS < <("$HOST_SIGN" "$KEY" "$HOST_ID" GET /v1/agent/assignments "")
	gen=$(curl -sS "${HDRS[@]/#/-H}" "$API_URL/v1/agent/assignments" | jq -r .generation)
	[[ "$gen" =~ ^[0-9a-f]{16}$ ]]
	for i in $(seq "$n"); do
		sign_poll "$gen" "$i"
	done
	list_baseline
	t0=$(date +%s%3N)
	for i in $(seq "$n"); do
		poll_start "$gen" "$i"
	done
	# every poll is connected (and so parked a moment later), none answered
	wait_until 20 conns_to "$API_URL" "$n"
	sleep 0.5
	for i in $(seq "$n"); do
		[ ! -s "$T/poll-$i.code" ] || { echo "poll $i answered early: $(cat "$T/poll-$i.code") $(cat "$T/poll-$i.body")" >&2; return 1; }
	done
	fast_list
	fast_list
	# they answer at their deadline: 200, the same generation
	wait_until $((POLL_WAIT_S + 10)) polls_answered "$n"
	echo "$n long polls over $threads threads answered after $(($(date +%s%3N) - t0)) ms" >&3
	for i in $(seq "$n"); do
		line=$(cat "$T/poll-$i.code")
		code=${line% *}
		secs=${line#* }
		[ "$code" = 200 ]
		[ "$(jq -r .generation "$T/poll-$i.body")" = "$gen" ]
		echo "poll $i: $line" >&3
		# at its deadline, not before
		[ "${secs%.*}" -ge $((POLL_WAIT_S - 1)) ] && [ "${secs%.*}" -lt $((POLL_WAIT_S + 3)) ] ||
			{ echo "poll $i took $secs s" >&2; return 1; }
	done
	POLL_PIDS=
	fast_list
}
