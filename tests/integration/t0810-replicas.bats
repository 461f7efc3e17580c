#!/usr/bin/env bats
# Several api replicas on one PostgreSQL store (PostgreSQL only): every
# replica serves every route; exactly one holds the release controller's
# lease, and when it is SIGKILLed mid-release another takes over within a
# few seconds (the time is printed) and finishes the release with no
# machine started twice; an agent given two --api URLs moves its long poll
# to the live one; the CLI fails over along COFFER_API_URL's list and names
# every URL when none answers. The machine is tests/integration/apps/app.sh.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	if [ "${COFFER_TEST_STORE:-}" != pg ]; then
		skip "several api replicas need a shared PostgreSQL store (COFFER_TEST_STORE=pg)"
	fi
	platform_start
	REPLICA_PID=([1]="$API_PID")
	REPLICA_URL=([1]="$API_URL")
	api_replica_start 2
	api_replica_start 3
	APP="$APPS_DIR/app.sh"
}

teardown() {
	[ -n "${T:-}" ] || return 0
	run_stop
	stop_pids "${REPLICA_PID[2]:-}" "${REPLICA_PID[3]:-}"
	platform_stop
}

# lease_holder: the controller lease's holder id ("api-PID-RANDOM"), or nothing.
lease_holder() {
	store_sql "SELECT holder FROM leases WHERE name = 'release-controller'"
}

# holder_pid: the pid in the holder id.
holder_pid() {
	lease_holder | sed -n 's/^api-\([0-9]*\)-[0-9a-f]*$/\1/p'
}

lease_held() {
	[ -n "$(holder_pid)" ]
}

# replica_of PID: the replica number running as PID.
replica_of() {
	local n
	for n in 1 2 3; do
		[ "${REPLICA_PID[n]}" = "$1" ] && echo "$n" && return 0
	done
	return 1
}

# held_by_live_other PID: the lease is held by a live replica other than PID.
held_by_live_other() {
	local p
	p=$(holder_pid)
	[ -n "$p" ] && [ "$p" != "$1" ] && replica_of "$p" >/dev/null && kill -0 "$p"
}

# use_replica N: the tests' own api calls (api_get) go to replica N.
use_replica() {
	API_URL=${REPLICA_URL[$1]}
}

# watching APP VERSION: one machine of the release is in its grace window
watching() {
	release_of "$1" "$2" | jq -e '[.machines[]? | select(.step == "watching")] | length == 1'
}

# machine_procs APP: "ID COUNT" per machine of APP, from the process table
# (processes whose environment names the machine).
machine_procs() {
	local id pid n
	for id in $(machines_json "$1" | jq -r '.[].id'); do
		n=0
		for pid in $(pgrep -x sleep); do
			[ "$(env_of "$pid" COFFER_MACHINE_ID 2>/dev/null)" = "$id" ] && n=$((n + 1))
		done
		echo "$id $n"
	done
}

# starts_of ID VERSION: how many times the agents started machine ID for release VERSION.
starts_of() {
	cat "$T"/agent-*.log | grep -c "event=machine.started machine=$1 release=$2 " || true
}

now_ms() {
	date +%s%3N
}

@test "every replica serves every route: set on one, list on another, an agent registers via a third" {
	"$COFFER" apps create web >/dev/null
	COFFER_API_URL=${REPLICA_URL[2]} run_logged "$COFFER" secrets set -a web LEVEL=one
	[ "$status" -eq 0 ]
	d1=$(COFFER_API_URL=${REPLICA_URL[1]} "$COFFER" secrets list -a web --json | jq -r '.[] | select(.name == "LEVEL") | .digest')
	d3=$(COFFER_API_URL=${REPLICA_URL[3]} "$COFFER" secrets list -a web --json | jq -r '.[] | select(.name == "LEVEL") | .digest')
	[ -n "$d1" ] && [ "$d1" = "$d3" ]
	AGENT_APIS=${REPLICA_URL[3]} agents_up 1
	grep -q "event=agent_registered .*api=${REPLICA_URL[3]}" "$T/agent-h1.log"
	[ "$(COFFER_API_URL=${REPLICA_URL[2]} "$COFFER" hosts list --json | jq -r '.[0].name')" = h1 ]
	# a deploy through replica 2 runs on the agent that polls replica 3
	COFFER_API_URL=${REPLICA_URL[2]} deploy web -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 1
	v=$(latest_release web)
	use_replica 1
	[ "$(release_status web "$v")" = succeeded ]
}

@test "one replica holds the controller lease; kill -9 of it mid-release: another takes over, no machine starts twice" {
	# exactly one holder (one row), one of the three replicas, and it logged taking the lease
	wait_until 20 lease_held
	first=$(holder_pid)
	n=$(replica_of "$first")
	grep -q "event=release_lease_acquired holder=api-$first-" "$([ "$n" = 1 ] && echo "$T/api.log" || echo "$T/api-$n.log")"
	# and only it: no other replica ever took it
	[ "$(cat "$T/api.log" "$T"/api-[0-9].log | grep -c 'event=release_lease_acquired')" -eq 1 ]
	export COFFER_API_URL="${REPLICA_URL[1]},${REPLICA_URL[2]},${REPLICA_URL[3]}"
	AGENT_APIS="${REPLICA_URL[1]} ${REPLICA_URL[2]} ${REPLICA_URL[3]}" agents_up 3
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web LEVEL=one >/dev/null
	deploy web --count 4 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 60 count_started web 4
	run_logged cli deploy -a web --grace 3s --detach --env NEXT=2 -- "$APP"
	[ "$status" -eq 0 ]
	v=$(latest_release web)
	wait_until 30 watching web "$v"
	# the holder dies in the middle of the rolling release
	killed_at=$(now_ms)
	kill -KILL "$first"
	wait "$first" 2>/dev/null || true
	for m in 1 2 3; do [ "$m" = "$n" ] || { use_replica "$m"; break; }; done
	wait_until 30 held_by_live_other "$first"
	took=$(($(now_ms) - killed_at))
	echo "# lease takeover after kill -9 of the holder: ${took} ms (TTL 5000 ms, renewed every 1000 ms)" >&3
	echo "takeover_ms=$took" >>"$T/outputs.log"
	[ "$took" -lt 20000 ]
	second=$(holder_pid)
	grep -q "event=release_lease_acquired holder=api-$second-" "$([ "$(replica_of "$second")" = 1 ] && echo "$T/api.log" || echo "$T/api-$(replica_of "$second").log")"
	# the new holder finishes the release
	wait_until 120 release_done web "$v"
	[ "$(release_status web "$v")" = succeeded ]
	wait_until 30 count_started web 4
	while read -r id pid; do
		[ "$(env_of "$pid" NEXT)" = 2 ]
		[ "$(env_of "$pid" COFFER_RELEASE_VERSION)" = "$v" ]
		# started once for the release, and one process per machine
		[ "$(starts_of "$id" "$v")" = 1 ]
	done < <(started_pids web)
	[ "$(machine_procs web | awk '$2 != 1' | wc -l)" = 0 ]
	[ "$(machine_procs web | wc -l)" = 4 ]
	[ "$(store_sql "SELECT count(*) FROM leases")" = 1 ]
}

@test "an agent with two --api URLs keeps its machines scheduled when the api it polls is killed" {
	wait_until 20 lease_held
	holder=$(replica_of "$(holder_pid)")
	# the agent polls a replica that does not step releases (its first URL), and falls back to the holder
	for a in 1 2 3; do [ "$a" = "$holder" ] || break; done
	AGENT_APIS="${REPLICA_URL[a]} ${REPLICA_URL[holder]}" agents_up 1
	use_replica "$holder"
	export COFFER_API_URL=${REPLICA_URL[holder]}
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web LEVEL=one >/dev/null
	deploy web --count 2 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 60 count_started web 2
	kill -KILL "${REPLICA_PID[a]}"
	wait "${REPLICA_PID[a]}" 2>/dev/null || true
	run_logged cli deploy -a web --grace 2s --env NEXT=2 -- "$APP"
	[ "$status" -eq 0 ]
	v=$(latest_release web)
	[ "$(release_status web "$v")" = succeeded ]
	wait_until 30 count_started web 2
	while read -r id pid; do
		[ "$(env_of "$pid" NEXT)" = 2 ]
	done < <(started_pids web)
	# the poll failed on the dead replica, and succeeded after that
	sed -n '/event=agent_poll_failed/,$p' "$T/agent-h1.log" | grep -q 'event=agent_poll_ok'
}

@test "the CLI fails over along COFFER_API_URL; with every URL down the error names each" {
	dead=${REPLICA_URL[3]}
	kill -KILL "${REPLICA_PID[3]}"
	wait "${REPLICA_PID[3]}" 2>/dev/null || true
	COFFER_API_URL="http://127.0.0.1:1,$dead,${REPLICA_URL[2]}" run_logged "$COFFER" apps create web
	[ "$status" -eq 0 ]
	COFFER_API_URL="$dead,${REPLICA_URL[1]}" run_logged "$COFFER" secrets set -a web LEVEL=one
	[ "$status" -eq 0 ]
	COFFER_API_URL="http://127.0.0.1:1,$dead,${REPLICA_URL[2]}" run_logged "$COFFER" secrets list -a web
	[ "$status" -eq 0 ]
	[[ "$output" == *LEVEL* ]]
	# the config file's "api_url" takes the same list
	jq -n --arg u "$dead,${REPLICA_URL[2]}" --arg t "$ADMIN_TOKEN" --arg ca "$COFFER_CA" \
		'{api_url: $u, token: $t, ca: $ca}' >"$T/replicas-config.json"
	chmod 600 "$T/replicas-config.json"
	run_logged env -u COFFER_API_URL -u COFFER_TOKEN COFFER_CONFIG="$T/replicas-config.json" "$COFFER" apps list
	[ "$status" -eq 0 ]
	[[ "$output" == *web* ]]
	COFFER_API_URL="http://127.0.0.1:1,$dead" run_logged "$COFFER" apps list
	[ "$status" -eq 7 ]
	[[ "$output" == *"cannot reach the API at any of its URLs"* ]]
	[[ "$output" == *"http://127.0.0.1:1: "* ]]
	[[ "$output" == *"$dead: "* ]]
}
