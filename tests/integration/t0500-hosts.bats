#!/usr/bin/env bats
# Hosts: enrolment with one-time join tokens, the identity an agent keeps
# in its state folder, hosts list, and signed agent requests. A replayed,
# tampered, stale or unknown-host request is refused (401) and changes
# nothing; a host row edited or copied in the store is refused by the api
# and by the keeper. host_sign (tests/security/host_sign.c) signs requests
# with an agent's key file, so each refusal is shown against a control that
# passes.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	platform_start
	printf '{}' >"$T/empty.json"
	printf '{"machines":[]}' >"$T/other.json"
}

teardown() {
	agents_stop
	platform_stop
}

# enrol_stopped NAME: enrols an agent, then stops it, so that nothing but
# the test's own requests moves its row. Sets HOST_ID and KEY.
enrol_stopped() {
	COFFER_JOIN_TOKEN=$(join_token) agent_start "$1"
	HOST_ID=$(cat "$T/agent-$1.ready")
	KEY="$T/agents/$1/host.sign.key"
	agents_stop
}

heartbeat_of() {
	store_sql "SELECT last_heartbeat FROM hosts WHERE id = '$1'"
}

# heartbeat_after ID MS: the host's last heartbeat is later than MS.
heartbeat_after() {
	[ "$(heartbeat_of "$1")" -gt "$2" ]
}

# clock_past MS: this machine's clock (the api's) has passed MS by 2 ms, so
# that a heartbeat written now would be later than one written at MS.
clock_past() {
	[ "$(date +%s%3N)" -gt $(($1 + 2)) ]
}

# seconds_past MS: the clock in whole seconds (as the keeper's enrolment
# reads it) has passed MS.
seconds_past() {
	[ $(($(date +%s) * 1000)) -gt "$1" ]
}

host_count() {
	store_sql "SELECT count(*) FROM hosts"
}

# sign METHOD PATH BODYFILE [HOST [TIMESTAMP [NONCE]]]: the headers of a
# request signed with $KEY, in HDRS.
sign() {
	mapfile -t HDRS < <("$HOST_SIGN" "$KEY" "${4:-$HOST_ID}" "$1" "$2" "$3" ${5:+"$5"} ${6:+"$6"})
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

# refused MESSAGE-PART: the last answer was 401 with that message.
refused() {
	[ "$CODE" = 401 ] || { echo "status $CODE, expected 401: $BODY" >&2; return 1; }
	[ "$(jq -r .error.code <<<"$BODY")" = unauthenticated ]
	[[ "$(jq -r .error.message <<<"$BODY")" == *"$1"* ]] || { echo "message: $BODY" >&2; return 1; }
}

# ---- enrolment ----

@test "an agent enrols, registers and heartbeats; hosts list shows it" {
	token=$(join_token)
	[[ "$token" =~ ^cjt_[A-Za-z0-9_-]{75}$ ]]
	COFFER_JOIN_TOKEN=$token agent_start h1
	id=$(cat "$T/agent-h1.ready")
	[[ "$id" =~ ^[0-9a-f]{24}$ ]]
	run_logged "$COFFER" hosts list
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^ID\ +NAME\ +STATE\ +LAST\ HEARTBEAT$ ]]
	[[ "${lines[1]}" =~ ^$id\ +h1\ +ready\ +[0-9]+s\ ago$ ]]
	run_logged "$COFFER" hosts list --json
	[ "$status" -eq 0 ]
	[ "$(jq -r 'length' <<<"$output")" = 1 ]
	[ "$(jq -r '.[0] | [.id, .name, .state] | join(" ")' <<<"$output")" = "$id h1 ready" ]
	[[ "$(jq -r '.[0].enrolled_at' <<<"$output")" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]]
	# a recent heartbeat, and the next one a heartbeat interval later
	# (AGENT_HEARTBEAT_MS, 5 s, divided by COFFER_TEST_TIMESCALE)
	first=$(heartbeat_of "$id")
	[ $(( $(date +%s) * 1000 - first )) -lt 10000 ]
	wait_until 15 heartbeat_after "$id" "$first"
	[ "$(heartbeat_of "$id")" -gt "$first" ]
	# the keeper audited the enrolment, the api the registration: host id and name only
	[ "$(store_sql "SELECT detail FROM audit_events WHERE action = 'hosts.enrol' AND outcome = 'ok' AND actor = 'host:$id'")" = "{\"host_id\":\"$id\",\"name\":\"h1\"}" ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'hosts.register' AND outcome = 'ok' AND actor = 'host:$id'")" = 1 ]
	# the join token is nowhere in the agent's files, the logs or the store
	run grep -rlF -- "$token" "$T/agents" "$T"/*.log
	[ "$status" -eq 1 ]
	store_dump "$T/dump.sql"
	run grep -lF -- "$token" "$T/dump.sql"
	[ "$status" -eq 1 ]
	# hosts list needs an admin token
	read_token=$(curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" --data-binary '{"role":"read"}' "$API_URL/v1/tokens" | jq -r .token)
	run_logged env COFFER_TOKEN="$read_token" "$COFFER" hosts list
	[ "$status" -eq 4 ]
}

@test "the agent's private keys are 0600, its folder 0700; a key others can read is refused" {
	COFFER_JOIN_TOKEN=$(join_token) agent_start h1
	[ "$(stat -c %a "$T/agents/h1")" = 700 ]
	for f in host.sign.key host.seal.key host.json; do
		[ "$(stat -c %a "$T/agents/h1/$f")" = 600 ]
	done
	[ "$(stat -c %s "$T/agents/h1/host.sign.key")" = 32 ]
	[ "$(stat -c %s "$T/agents/h1/host.seal.key")" = 32 ]
	# no temporary file left beside them
	[ "$(ls -A "$T/agents/h1" | sort | tr '\n' ' ')" = "host.json host.seal.key host.sign.key " ]
	agents_stop
	chmod 640 "$T/agents/h1/host.seal.key"
	run_logged timeout 30 "$COFFER" agent --ca "$COFFER_CA" --api "$API_URL" --keeper "$KEEPER_URL" --state-dir "$T/agents/h1"
	[ "$status" -eq 4 ]
	[[ "$output" == *"may be read or written by group or others"* ]]
}

@test "a join token works once" {
	token=$(join_token)
	COFFER_JOIN_TOKEN=$token agent_start h1
	run_logged env COFFER_JOIN_TOKEN="$token" timeout 30 "$COFFER" agent --ca "$COFFER_CA" --api "$API_URL" --keeper "$KEEPER_URL" \
		--state-dir "$T/agents/h2" --name h2
	[ "$status" -eq 3 ]
	[[ "$output" == *"join token already used"* ]]
	[[ "$output" != *"$token"* ]]
	[ "$(host_count)" = 1 ]
	[ ! -e "$T/agents/h2/host.json" ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'hosts.enrol' AND outcome = 'denied:unauthenticated'")" = 1 ]
}

@test "an expired join token is refused" {
	token=$(join_token --ttl 1s)
	# it expires 1 s after it was made, at the latest 1 s from now, by a
	# keeper that reads its clock in whole seconds (now_s() * 1000)
	made=$(date +%s%3N)
	wait_until 5 seconds_past $((made + 1000))
	run_logged timeout 30 "$COFFER" agent --ca "$COFFER_CA" --join "$token" --api "$API_URL" --keeper "$KEEPER_URL" --state-dir "$T/agents/h1" --name h1
	[ "$status" -eq 3 ]
	[[ "$output" == *"join token expired"* ]]
	[ "$(host_count)" = 0 ]
	[ ! -e "$T/agents/h1/host.json" ]
}

@test "a join token of another keeper, or an edited one, is refused" {
	"$COFFER" keeper init --state-dir "$T/other" >/dev/null
	other=$("$COFFER" keeper join-token --state-dir "$T/other")
	run_logged env COFFER_JOIN_TOKEN="$other" timeout 30 "$COFFER" agent --ca "$COFFER_CA" --api "$API_URL" --keeper "$KEEPER_URL" \
		--state-dir "$T/agents/h1" --name h1
	[ "$status" -eq 3 ]
	[[ "$output" == *"invalid join token"* ]]
	token=$(join_token)
	# one character of the MAC changed
	last=${token: -2:1}
	[ "$last" = A ] && swap=B || swap=A
	edited="${token:0:${#token}-2}$swap${token: -1}"
	run_logged env COFFER_JOIN_TOKEN="$edited" timeout 30 "$COFFER" agent --ca "$COFFER_CA" --api "$API_URL" --keeper "$KEEPER_URL" \
		--state-dir "$T/agents/h1" --name h1
	[ "$status" -eq 3 ]
	[[ "$output" == *"invalid join token"* ]]
	[ "$(host_count)" = 0 ]
	# the unedited token still works: it was not spent by the refusals
	COFFER_JOIN_TOKEN=$token agent_start h1
	[ "$(host_count)" = 1 ]
}

@test "a restarted agent reuses its identity, without a join token" {
	token=$(join_token)
	COFFER_JOIN_TOKEN=$token agent_start h1
	id=$(cat "$T/agent-h1.ready")
	keys=$(sha256sum "$T/agents/h1"/host.*.key)
	agents_stop
	agent_start h1
	[ "$(cat "$T/agent-h1.ready")" = "$id" ]
	[ "$(sha256sum "$T/agents/h1"/host.*.key)" = "$keys" ]
	agents_stop
	# a spent token given again is ignored: the agent is enrolled already
	agent_start h1 --join "$token"
	[ "$(cat "$T/agent-h1.ready")" = "$id" ]
	[ "$(host_count)" = 1 ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'hosts.register' AND outcome = 'ok'")" = 3 ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'hosts.enrol'")" = 1 ]
}

# ---- signed requests ----

@test "control: requests signed with the host's key pass at the api and the keeper" {
	enrol_stopped h1
	before=$(heartbeat_of "$HOST_ID")
	wait_until 5 clock_past "$before"
	sign POST /v1/hosts/heartbeat "$T/empty.json"
	send "$API_URL" POST /v1/hosts/heartbeat "$T/empty.json"
	[ "$CODE" = 200 ]
	[ "$(jq -r .host_id <<<"$BODY")" = "$HOST_ID" ]
	[ "$(heartbeat_of "$HOST_ID")" -gt "$before" ]
	sign GET /v1/hosts/self ""
	send "$KEEPER_URL" GET /v1/hosts/self
	[ "$CODE" = 200 ]
	[ "$(jq -c 'del(.api_answer_pk)' <<<"$BODY")" = "{\"host_id\":\"$HOST_ID\",\"name\":\"h1\",\"state\":\"ready\"}" ]
	[[ "$(jq -r .api_answer_pk <<<"$BODY")" =~ ^[A-Za-z0-9_-]{43}$ ]]
}

@test "a replayed signed request is refused (api and keeper) and changes nothing" {
	enrol_stopped h1
	sign POST /v1/hosts/heartbeat "$T/empty.json"
	send "$API_URL" POST /v1/hosts/heartbeat "$T/empty.json"
	[ "$CODE" = 200 ]
	before=$(heartbeat_of "$HOST_ID")
	wait_until 5 clock_past "$before"
	send "$API_URL" POST /v1/hosts/heartbeat "$T/empty.json"
	refused "request replayed"
	[ "$(heartbeat_of "$HOST_ID")" = "$before" ]
	sign GET /v1/hosts/self ""
	send "$KEEPER_URL" GET /v1/hosts/self
	[ "$CODE" = 200 ]
	send "$KEEPER_URL" GET /v1/hosts/self
	refused "request replayed"
	# a replayed registration is refused too, and not audited as a success
	sign POST /v1/hosts/register "$T/empty.json"
	send "$API_URL" POST /v1/hosts/register "$T/empty.json"
	[ "$CODE" = 400 ] # it passed the gate: {} is not a registration
	send "$API_URL" POST /v1/hosts/register "$T/empty.json"
	refused "request replayed"
	[ "$(heartbeat_of "$HOST_ID")" = "$before" ]
}

@test "a tampered body, path or method is refused and changes nothing" {
	enrol_stopped h1
	before=$(heartbeat_of "$HOST_ID")
	wait_until 5 clock_past "$before"
	sign POST /v1/hosts/heartbeat "$T/empty.json"
	send "$API_URL" POST /v1/hosts/heartbeat "$T/other.json"
	refused "request signature does not verify"
	sign POST /v1/hosts/heartbeat "$T/empty.json"
	send "$API_URL" POST /v1/hosts/register "$T/empty.json"
	refused "request signature does not verify"
	sign GET /v1/hosts/selfx ""
	send "$KEEPER_URL" GET /v1/hosts/self
	refused "request signature does not verify"
	# the signature covers the query string too
	sign POST /v1/hosts/heartbeat "$T/empty.json"
	send "$API_URL" POST "/v1/hosts/heartbeat?x=1" "$T/empty.json"
	refused "request signature does not verify"
	sign GET /v1/hosts/self ""
	send "$KEEPER_URL" GET "/v1/hosts/self?x=1"
	refused "request signature does not verify"
	sign GET /v1/hosts/self ""
	send "$KEEPER_URL" POST /v1/hosts/self
	[ "$CODE" = 405 ] # the method is the route's before any signature
	[ "$(heartbeat_of "$HOST_ID")" = "$before" ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'hosts.register' AND outcome = 'ok'")" = 1 ]
	# the untouched request still passes: the refusals were about the tampering
	sign POST /v1/hosts/heartbeat "$T/empty.json"
	send "$API_URL" POST /v1/hosts/heartbeat "$T/empty.json"
	[ "$CODE" = 200 ]
}

@test "an unknown host id is refused, its id not echoed, and nothing changes" {
	enrol_stopped h1
	before=$(heartbeat_of "$HOST_ID")
	unknown=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	sign POST /v1/hosts/heartbeat "$T/empty.json" "$unknown"
	send "$API_URL" POST /v1/hosts/heartbeat "$T/empty.json"
	refused "unknown host"
	[[ "$BODY" != *"$unknown"* ]]
	sign GET /v1/hosts/self "" "$unknown"
	send "$KEEPER_URL" GET /v1/hosts/self
	refused "unknown host"
	[[ "$BODY" != *"$unknown"* ]]
	[ "$(heartbeat_of "$HOST_ID")" = "$before" ]
	[ "$(host_count)" = 1 ]
	# no signature headers at all
	HDRS=()
	send "$API_URL" POST /v1/hosts/heartbeat "$T/empty.json"
	refused "missing or malformed host signature headers"
}

@test "a stale or future timestamp is refused and changes nothing" {
	enrol_stopped h1
	before=$(heartbeat_of "$HOST_ID")
	ts=$(( $(date +%s) - 120 ))
	sign POST /v1/hosts/heartbeat "$T/empty.json" "$HOST_ID" "$ts"
	send "$API_URL" POST /v1/hosts/heartbeat "$T/empty.json"
	refused "request timestamp outside the allowed window"
	[[ "$BODY" != *"$ts"* ]]
	sign POST /v1/hosts/heartbeat "$T/empty.json" "$HOST_ID" $(( $(date +%s) + 120 ))
	send "$API_URL" POST /v1/hosts/heartbeat "$T/empty.json"
	refused "request timestamp outside the allowed window"
	sign GET /v1/hosts/self "" "$HOST_ID" $(( $(date +%s) - 120 ))
	send "$KEEPER_URL" GET /v1/hosts/self
	refused "request timestamp outside the allowed window"
	[ "$(heartbeat_of "$HOST_ID")" = "$before" ]
}

# ---- the store is untrusted ----

@test "a host row edited in the store is refused by the api and the keeper" {
	enrol_stopped h1
	store_sql "UPDATE hosts SET name = 'evil' WHERE id = '$HOST_ID'"
	before=$(heartbeat_of "$HOST_ID")
	run_logged "$COFFER" hosts list --json
	[ "$status" -eq 0 ]
	[ "$(jq -r 'length' <<<"$output")" = 0 ]
	sign POST /v1/hosts/heartbeat "$T/empty.json"
	send "$API_URL" POST /v1/hosts/heartbeat "$T/empty.json"
	refused "host record failed verification"
	sign GET /v1/hosts/self ""
	send "$KEEPER_URL" GET /v1/hosts/self
	refused "host record failed verification"
	[ "$(heartbeat_of "$HOST_ID")" = "$before" ]
	grep -q "event=host_row_tampered host_id=$HOST_ID check=certificate" "$T/api.log"
	grep -q "event=host_row_tampered host_id=$HOST_ID check=registry_mac" "$T/keeper.log"
	# the agent, restarted, is refused by the keeper
	run_logged timeout 30 "$COFFER" agent --ca "$COFFER_CA" --api "$API_URL" --keeper "$KEEPER_URL" --state-dir "$T/agents/h1"
	[ "$status" -eq 3 ]
	[[ "$output" == *"refuses this host: host record failed verification"* ]]
	# a state changed in the store (the cert does not cover it, the MAC does)
	store_sql "UPDATE hosts SET name = 'h1', state = 'ready ' WHERE id = '$HOST_ID'"
	sign GET /v1/hosts/self ""
	send "$KEEPER_URL" GET /v1/hosts/self
	refused "host record failed verification"
	# put back as it was, the row verifies again: the refusals were the edits
	store_sql "UPDATE hosts SET state = 'ready' WHERE id = '$HOST_ID'"
	sign GET /v1/hosts/self ""
	send "$KEEPER_URL" GET /v1/hosts/self
	[ "$CODE" = 200 ]
}

@test "a host row copied under another id in the store is no host" {
	enrol_stopped h1
	copy=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	store_sql "INSERT INTO hosts (id, name, sign_pk, seal_pk, mac, state, enrolled_at, last_heartbeat, cert)
		SELECT '$copy', 'h1-copy', sign_pk, seal_pk, mac, state, enrolled_at, last_heartbeat, cert
		FROM hosts WHERE id = '$HOST_ID'"
	[ "$(host_count)" = 2 ]
	before=$(heartbeat_of "$copy")
	run_logged "$COFFER" hosts list --json
	[ "$(jq -r '[.[].id] | join(",")' <<<"$output")" = "$HOST_ID" ]
	# the attacker holds h1's key, and signs as the copy
	sign POST /v1/hosts/heartbeat "$T/empty.json" "$copy"
	send "$API_URL" POST /v1/hosts/heartbeat "$T/empty.json"
	refused "host record failed verification"
	sign GET /v1/hosts/self "" "$copy"
	send "$KEEPER_URL" GET /v1/hosts/self
	refused "host record failed verification"
	[ "$(heartbeat_of "$copy")" = "$before" ]
}
