#!/usr/bin/env bats
# The agent's links attacked on the wire. A man in the middle
# (tests/security/tamper_proxy.c) between the agent and the api rewrites a
# machine's command in the assignments: the api's answers are signed with
# its boot-token key for the host and the nonce of the request, with the
# public key from the keeper, so the agent refuses the document, logs it
# and keeps running what it runs. A captured signed request replayed after
# the keeper or the api restarted is refused: the nonces are in the store
# (docs/RUNPATH.md "Replay of signed host requests"). The api serves plain
# HTTP on loopback in that test (API_PLAIN, allowed there): the proxy relays
# TCP and would see only ciphertext under TLS, where the signature is the
# second line.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	platform_start
	printf '{}' >"$T/empty.json"
	KEY="$T/agents/h1/host.sign.key" # sign (helpers.bash) signs with agent h1's key
}

teardown() {
	stop_pids ${PROXY_PID:-} ${DEPLOY_PID:-} ${API2_PID:-}
	run_stop
	platform_stop
}

# proxy_start: the tampering proxy in front of the api; PROXY_URL. While
# $T/tamper.on exists it rewrites SAFEMARK into EVILMARK in every answer.
proxy_start() {
	rm -f "$T/proxy.ready"
	"$TAMPER_PROXY" "$T/proxy.ready" "${API_URL##*:}" "$T/tamper.on" SAFEMARK EVILMARK 2>>"$T/proxy.log" 3>&- &
	PROXY_PID=$!
	wait_file "$T/proxy.ready" "$PROXY_PID"
	PROXY_URL=$(cat "$T/proxy.ready")
}

# refused_replay: the last answer was 401 "request replayed".
refused_replay() {
	[ "$CODE" = 401 ] || { echo "status $CODE, expected 401: $BODY" >&2; return 1; }
	[ "$(jq -r .error.message <<<"$BODY")" = "request replayed" ]
}

# one_machine: deploys app.sh on canary (one machine); MID and MHOST.
one_machine() {
	deploy canary --count 1 -- "$APPS_DIR/app.sh"
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
	wait_until 30 count_started canary 1
	read -r MID MHOST < <(machines_json canary | jq -r '.[0] | "\(.id) \(.host_id)"')
}

# machine_file PID NAME: NAME exists in the work folder of the machine with that pid (its cwd).
machine_file() {
	[ -e "$(readlink "/proc/$1/cwd")/$2" ]
}

@test "a command rewritten between the api and the agent is refused: it never runs, what runs keeps running" {
	stop_pids "$API_PID"
	API_PLAIN=1 api_start "${API_URL#*://}"
	export COFFER_API_URL="$API_URL"
	proxy_start
	COFFER_JOIN_TOKEN=$(join_token) API_URL=$PROXY_URL agent_start h1
	wait_until 20 hosts_ready 1
	# control: through the proxy, untouched, the machine runs its command
	deploy canary --count 1 -- sh -c 'touch SAFEMARK.1; exec sleep 100000'
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
	wait_until 30 count_started canary 1
	read -r _ pid < <(started_pids canary)
	wait_until 10 machine_file "$pid" SAFEMARK.1
	work=$(readlink "/proc/$pid/cwd")
	run grep -c agent_answer_refused "$T/agent-h1.log"
	[ "$output" = 0 ]
	# from now on the proxy turns SAFEMARK into EVILMARK in what the api answers
	: >"$T/tamper.on"
	"$COFFER" deploy -a canary --grace 2s -- sh -c 'touch SAFEMARK.2; exec sleep 100000' \
		>>"$T/outputs.log" 2>&1 3>&- &
	DEPLOY_PID=$!
	wait_until 30 grep -q rewrote "$T/tamper.on.log"
	sleep 5 # time for the agent to act on it, were it to (more polls, each answered rewritten)
	# the rewritten command never ran anywhere; the machine of release 1 still runs
	run find "$T/agents" -name 'EVILMARK*'
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	kill -0 "$pid"
	[ ! -e "$work/SAFEMARK.2" ]
	[ "$(started_pids canary | wc -l)" = 1 ]
	# the refusal is logged with the path and the reason, never with the document
	grep -q 'event=agent_answer_refused.*reason="answer signature does not verify"' "$T/agent-h1.log"
	grep 'event=agent_answer_refused' "$T/agent-h1.log" | grep -q 'path="\?/v1/agent/assignments'
	run grep -c EVILMARK "$T/agent-h1.log"
	[ "$output" = 0 ]
}

@test "a signed open request replayed to the keeper after it restarted is refused and audited" {
	COFFER_JOIN_TOKEN=$(join_token) agent_start h1
	wait_until 20 hosts_ready 1
	one_machine
	sign "$MHOST" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	send "$API_URL" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	[ "$CODE" = 200 ]
	jq -cn --arg t "$(jq -r .token <<<"$BODY")" '{token: $t}' >"$T/open.json"
	sign "$MHOST" POST /v1/open "$T/open.json"
	send "$KEEPER_URL" POST /v1/open "$T/open.json"
	[ "$CODE" = 200 ] || { echo "control: $CODE $BODY" >&2; return 1; }
	stop_pids "$KEEPER_PID"
	keeper_start
	# the very same request (headers and body) to the new keeper process
	send "$KEEPER_URL" POST /v1/open "$T/open.json"
	refused_replay
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'secrets.open' AND outcome = 'refused: request replayed' AND detail LIKE '%$MHOST%'")" = 1 ]
	# a new request of that host is not a replay (with a new token: the first one is spent, t0620)
	sign "$MHOST" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	send "$API_URL" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	[ "$CODE" = 200 ]
	jq -cn --arg t "$(jq -r .token <<<"$BODY")" '{token: $t}' >"$T/open.json"
	sign "$MHOST" POST /v1/open "$T/open.json"
	send "$KEEPER_URL" POST /v1/open "$T/open.json"
	[ "$CODE" = 200 ] || { echo "fresh: $CODE $BODY" >&2; return 1; }
}

@test "a signed boot-token request replayed to the api after it restarted is refused and audited" {
	COFFER_JOIN_TOKEN=$(join_token) agent_start h1
	wait_until 20 hosts_ready 1
	one_machine
	sign "$MHOST" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	send "$API_URL" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	[ "$CODE" = 200 ]
	stop_pids "$API_PID"
	api_start "${API_URL#*://}"
	send "$API_URL" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	refused_replay
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'agent.boot_token' AND outcome = 'denied:unauthenticated' AND detail LIKE '%request replayed%' AND detail LIKE '%$MHOST%'")" = 1 ]
	# the nonces of requests whose window has passed are purged
	[ "$(store_sql "SELECT count(*) FROM host_nonces WHERE expires_at < $(($(date +%s) - 1))")" = 0 ]
}

@test "a signed request answered by one api replica is refused by another on the same store" {
	COFFER_JOIN_TOKEN=$(join_token) agent_start h1
	wait_until 20 hosts_ready 1
	one_machine
	# a second api on the same store and keeper, its own state folder
	"$COFFER" api --state-dir "$T/api2" --store "$STORE_URL" --listen 127.0.0.1:0 \
		--keeper "$KEEPER_URL" --keeper-pub "$T/keeper/keeper.pub" \
		--keeper-credential "$T/keeper/api.credential" --boot-key "$T/keeper/api.boot.key" \
		--rows-key "$T/keeper/api.rows.key" --digest-key "$T/keeper/api.digest.key" --ca "$COFFER_CA" \
		--ready-file "$T/api2.ready" >>"$T/api2.out" 2>>"$T/api2.log" 3>&- &
	API2_PID=$!
	wait_file "$T/api2.ready" "$API2_PID"
	api2=$(cat "$T/api2.ready")
	# control: each replica answers a fresh request
	sign "$MHOST" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	send "$api2" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	[ "$CODE" = 200 ]
	sign "$MHOST" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	send "$API_URL" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	[ "$CODE" = 200 ]
	# the same request to the other replica
	send "$api2" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	refused_replay
	grep -q "event=host_request_refused host_id=$MHOST reason=\"request replayed\"" "$T/api2.log"
}
