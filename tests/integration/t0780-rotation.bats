#!/usr/bin/env bats
# Rotation and revocation (issue 15, part 2), on real processes: a user
# token rotated with an overlap (the old one works within it and is refused
# after it; --self writes the new one into the config file); a host revoked
# while machines run on two hosts (its machines move, its opens are refused
# with the keeper's reason, audited); host keys rotated under a running app,
# with the agent killed -9 at each step of the switch.

load helpers

bats_require_minimum_version 1.5.0

# The token tests share one platform; these run machines on their own.
OWN_PLATFORM=(
	"hosts revoke: the host's machines move to the other host, its opens are refused, audited"
	"hosts revoke: an api killed between the keeper's answer and the move finishes it when it starts again"
	"agent rotate-keys under a running app: kill -9 before the switch and after the keeper's answer; machines never stop; the old key is refused"
)

setup_file() { platform_start; }
teardown_file() { platform_stop; }
setup() {
	platform_test_start
	APP="$APPS_DIR/app.sh"
}
teardown() {
	if own_platform; then run_stop; fi
	platform_test_stop
}

TOKEN_RE='^coffer_[A-Za-z0-9_-]{43}$'

# ---- tokens rotate ----

@test "tokens rotate: a new token like the old; the old works within the overlap, refused after (exit 3)" {
	"$COFFER" apps create web >/dev/null
	"$COFFER" tokens create --role deploy --app web --expiry 30d --description ci --json >"$T/old.json"
	old=$(jq -r .token "$T/old.json") old_id=$(jq -r .id "$T/old.json")
	# 3 s: room for a loaded machine between the rotation and the first use
	run_logged --separate-stderr "$COFFER" tokens rotate "$old_id" --overlap 3s
	[ "$status" -eq 0 ]
	[[ "$output" =~ $TOKEN_RE ]]
	new=$output
	[[ "$stderr" == *"The old token works until "* ]]
	run_logged "$COFFER" tokens list --json
	[ "$status" -eq 0 ]
	new_id=$(jq -r --arg o "$old_id" '[.[] | select(.id != $o and .description == "ci")][0].id' <<<"$output")
	[ "$(jq -r --arg i "$new_id" '.[] | select(.id == $i) | "\(.role) \(.app)"' <<<"$output")" = "deploy web" ]
	# the old token's expiry, never later: a rotation does not make a token live longer
	exp=$(jq -r --arg i "$new_id" '.[] | select(.id == $i) | .expires_at' <<<"$output")
	[ "$exp" = "$(jq -r .expires_at "$T/old.json")" ]
	# the old token, rotated, is not rotated again, even within its overlap (a leaked one mints nothing)
	run_logged "$COFFER" tokens rotate "$old_id"
	[ "$status" -eq 6 ]
	[[ "$output" == *"token '$old_id' was rotated already"* ]]
	[ "$("$COFFER" tokens list --json | jq --arg o "$old_id" '[.[] | select(.description == "ci")] | length')" -eq 2 ]
	# both work within the overlap (the new one's scope is the old one's: web only)
	run_logged "$COFFER" secrets list -a web -t "$new"
	[ "$status" -eq 0 ]
	run_logged "$COFFER" secrets list -a canary -t "$new"
	[ "$status" -ne 0 ]
	# the old one is refused once the overlap ends, the new one still works
	wait_until 20 exits_with 3 "$COFFER" secrets list -a web -t "$old"
	run_logged "$COFFER" secrets list -a web -t "$old"
	[ "$status" -eq 3 ]
	[[ "$output" == *"token expired"* ]]
	run_logged "$COFFER" secrets list -a web -t "$new"
	[ "$status" -eq 0 ]
	# audited: which token became which, and when the old one ends
	run_logged "$COFFER" audit --json
	[ "$status" -eq 0 ]
	[ "$(jq -r --arg o "$old_id" '[.[] | select(.action == "tokens.rotate" and .detail.rotated_from == $o)][0].detail.token_id' <<<"$output")" = "$new_id" ]
	# an expired token is not rotated
	run_logged "$COFFER" tokens rotate "$old_id"
	[ "$status" -eq 6 ]
	[[ "$output" == *"token '$old_id' is expired: it cannot be rotated"* ]]
}

@test "tokens rotate --self: any role rotates its own token; the config file gets the new one" {
	"$COFFER" tokens create --role read --json >"$T/read.json"
	read_tok=$(jq -r .token "$T/read.json") read_id=$(jq -r .id "$T/read.json")
	jq --arg t "$read_tok" '. + {token: $t}' "$T/config.json" >"$T/self.json"
	chmod 600 "$T/self.json"
	# a read token may not rotate another token, only itself
	run_logged env -u COFFER_TOKEN COFFER_CONFIG="$T/self.json" "$COFFER" tokens rotate "$read_id"
	[ "$status" -eq 4 ]
	run_logged env -u COFFER_TOKEN COFFER_CONFIG="$T/self.json" "$COFFER" tokens rotate --self --overlap 0s
	[ "$status" -eq 0 ]
	[[ "$output" == "Rotated into token tok_"*"; the config file holds it now. The old token works until "* ]]
	[[ "$output" != *coffer_* ]]
	new_tok=$(jq -r .token "$T/self.json")
	[[ "$new_tok" =~ $TOKEN_RE ]]
	[ "$new_tok" != "$read_tok" ]
	[ "$(stat -c %a "$T/self.json")" = 600 ]
	# the file's other fields are kept; the new token works from it, the old one is refused at once
	[ "$(jq -r .api_url "$T/self.json")" = "$(jq -r .api_url "$T/config.json")" ]
	run_logged env -u COFFER_TOKEN COFFER_CONFIG="$T/self.json" "$COFFER" apps list
	[ "$status" -eq 0 ]
	run_logged "$COFFER" apps list -t "$read_tok"
	[ "$status" -eq 3 ]
}

@test "tokens rotate --self: a token in its overlap cannot rotate itself again; the new one expires with the old" {
	"$COFFER" tokens create --role read --expiry 2d --json >"$T/leak.json"
	leak=$(jq -r .token "$T/leak.json")
	jq --arg t "$leak" '. + {token: $t}' "$T/config.json" >"$T/owner.json"
	cp "$T/owner.json" "$T/thief.json"
	chmod 600 "$T/owner.json" "$T/thief.json"
	run_logged env -u COFFER_TOKEN COFFER_CONFIG="$T/owner.json" "$COFFER" tokens rotate --self --overlap 1h
	[ "$status" -eq 0 ]
	# the old token still works (its overlap) but cannot mint another token
	run_logged "$COFFER" apps list -t "$leak"
	[ "$status" -eq 0 ]
	run_logged env -u COFFER_TOKEN COFFER_CONFIG="$T/thief.json" "$COFFER" tokens rotate --self --overlap 1h
	[ "$status" -eq 6 ]
	[[ "$output" == *"was rotated already"* ]]
	[ "$(jq -r .token "$T/thief.json")" = "$leak" ]
	# the new token expires when the old one did, not two days after the rotation
	new_tok=$(jq -r .token "$T/owner.json")
	run_logged "$COFFER" tokens list --json
	[ "$status" -eq 0 ]
	[ "$(jq -r --arg e "$(jq -r .expires_at "$T/leak.json")" --arg o "$(jq -r .id "$T/leak.json")" \
		'[.[] | select(.role == "read" and .id != $o and .expires_at == $e)] | length' <<<"$output")" -eq 1 ]
	[[ "$new_tok" =~ $TOKEN_RE ]]
}

@test "tokens rotate: bad input is named, nothing changes" {
	run_logged "$COFFER" tokens rotate
	[ "$status" -eq 2 ]
	[[ "$output" == *"give a token ID or --self (one of them)"* ]]
	run_logged "$COFFER" tokens rotate tok_000000000000000000000000 --self
	[ "$status" -eq 2 ]
	run_logged "$COFFER" tokens rotate --self --overlap soon
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid --overlap"* ]]
	# the overlap's edge: 30 days is fine, a second more is not
	"$COFFER" tokens create --role read --json >"$T/r.json"
	rid=$(jq -r .id "$T/r.json")
	run_logged "$COFFER" tokens rotate "$rid" --overlap 30d1s
	[ "$status" -eq 1 ]
	[[ "$output" == *"overlap must be a duration such as 1h or 10m, at most 30 days"* ]]
	[ "$("$COFFER" tokens list --json | jq -r --arg i "$rid" '.[] | select(.id == $i) | .expires_at')" = null ]
	run_logged "$COFFER" tokens rotate "$rid" --overlap 30d --json
	[ "$status" -eq 0 ]
	[ "$("$COFFER" tokens list --json | jq -r --arg i "$rid" '.[] | select(.id == $i) | .expires_at')" != null ]
	run_logged "$COFFER" tokens rotate tok_000000000000000000000000
	[ "$status" -eq 5 ]
	[[ "$output" == *"token 'tok_000000000000000000000000' not found"* ]]
}

# ---- hosts revoke ----

# on_host APP HOST_ID N: exactly N machines of APP, all started, all on that host.
on_host() {
	local m
	m=$(machines_json "$1")
	[ "$(jq length <<<"$m")" -eq "$3" ] &&
		[ "$(jq --arg h "$2" '[.[] | select(.state == "started" and .host_id == $h)] | length' <<<"$m")" -eq "$3" ]
}

@test "hosts revoke: the host's machines move to the other host, its opens are refused, audited" {
	agents_up 2
	h1=${HOST_IDS[1]} h2=${HOST_IDS[2]}
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web LEVEL=one >/dev/null
	deploy web --count 2 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 2
	m=$(machines_json web)
	# one on each host (the scheduler spreads an app)
	[ "$(jq --arg h "$h1" '[.[] | select(.host_id == $h)] | length' <<<"$m")" -eq 1 ]
	h1_pids=$(jq -r --arg h "$h1" '.[] | select(.host_id == $h) | .pid' <<<"$m")
	h2_before=$(started_pids web | grep -v -F -f <(jq -r --arg h "$h1" '.[] | select(.host_id == $h) | .id' <<<"$m"))

	# without --yes and without a terminal: refused, nothing changes
	run_logged "$COFFER" hosts revoke h1 </dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"'hosts revoke' is destructive: refusing without a terminal: pass --yes"* ]]
	[ "$("$COFFER" hosts list --json | jq -r '.[] | select(.name == "h1") | .state')" = ready ]

	# an admin of another org may not revoke a host that runs this org's machines: nothing changes
	other=$("$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --org globex)
	[[ "$other" =~ ^coffer_ ]]
	run_logged "$COFFER" hosts revoke h1 --yes --json -t "$other"
	[ "$status" -eq 4 ]
	[[ "$output" == *"host 'h1' runs machines of another org: only the operator may revoke it"* ]]
	[[ "$output" != *web* ]]
	[ "$("$COFFER" hosts list --json | jq -r '.[] | select(.name == "h1") | .state')" = ready ]
	[ "$(started_pids web | wc -l)" -eq 2 ]

	run_logged "$COFFER" hosts revoke h1 --yes --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .state <<<"$output")" = revoked ]
	[ "$(jq '.machines | length' <<<"$output")" -eq 1 ]
	[ "$(jq -r '.releases[0].app' <<<"$output")" = web ]
	[ "$("$COFFER" hosts list --json | jq -r '.[] | select(.name == "h1") | .state')" = revoked ]

	# the app keeps its count, all on h2; h2's machines were not restarted (the same spec)
	wait_until 60 on_host web "$h2" 2
	while read -r id pid; do
		[ "$(started_pids web | grep -c "^$id $pid\$")" -eq 1 ]
	done <<<"$h2_before"
	# h1's agent stopped its machines
	for pid in $h1_pids; do
		wait_until 30 gone "$pid"
	done
	grep -q 'agent_host_revoked' "$T/agent-h1.log"

	# the keeper refuses h1's open at once, with its reason, and audits the refusal
	echo '{"token": "x"}' >"$T/open.json"
	sign "$h1" POST /v1/open "$T/open.json"
	send "$KEEPER_URL" POST /v1/open "$T/open.json"
	[ "$CODE" = 401 ]
	[ "$(jq -r .error.message <<<"$BODY")" = "host is revoked" ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'secrets.open' AND outcome = 'refused: host is revoked'")" -ge 1 ]
	# and every other signed request of it: the api refuses it too
	echo '{}' >"$T/hb.json"
	sign "$h1" POST /v1/hosts/heartbeat "$T/hb.json"
	send "$API_URL" POST /v1/hosts/heartbeat "$T/hb.json"
	[ "$CODE" = 401 ]
	[ "$(jq -r .error.message <<<"$BODY")" = "host is revoked" ]
	# audited by the api (who, which host, what moved) and by the keeper
	run_logged "$COFFER" audit --json
	[ "$status" -eq 0 ]
	[ "$(jq -r --arg h "$h1" '[.[] | select(.action == "hosts.revoke" and .detail.host_id == $h)][-1].detail.machines | length' <<<"$output")" -eq 1 ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'hosts.revoke' AND actor = 'api'")" -ge 1 ]

	# again: fine, nothing left to move; an unknown host is named
	run_logged "$COFFER" hosts revoke h1 --yes --json
	[ "$status" -eq 0 ]
	[ "$(jq '.machines | length' <<<"$output")" -eq 0 ]
	run_logged "$COFFER" hosts revoke nosuch --yes
	[ "$status" -eq 5 ]
	[[ "$output" == *"host 'nosuch' not found"* ]]
}

@test "hosts revoke: an api killed between the keeper's answer and the move finishes it when it starts again" {
	agents_up 2
	h1=${HOST_IDS[1]} h2=${HOST_IDS[2]}
	"$COFFER" apps create web >/dev/null
	deploy web --count 2 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 2
	# an api that kills itself (kill -9) right after the keeper revoked the host
	addr=${API_URL#https://}
	kill -KILL "$API_PID"
	wait "$API_PID" 2>/dev/null || true
	COFFER_TEST_CRASH_AT=revoke-keeper-answered api_start "$addr"
	run_logged "$COFFER" hosts revoke h1 --yes
	[ "$status" -ne 0 ]
	wait_until 30 gone "$API_PID"
	# the keeper revoked it; its machine is still h1's in the store
	[ "$(store_sql "SELECT state FROM hosts WHERE id = '$h1'")" = revoked ]
	[ "$(store_sql "SELECT count(*) FROM machines WHERE host_id = '$h1' AND state <> 'destroyed'")" -eq 1 ]
	# the api's next start finishes the move: the app keeps its count, on h2
	api_start "$addr"
	wait_until 60 on_host web "$h2" 2
	[ "$(store_sql "SELECT count(*) FROM machines WHERE host_id = '$h1' AND state <> 'destroyed'")" -eq 0 ]

	# a store writer marks h2 revoked: the keeper, whose row is authenticated, does not confirm it (the
	# edited row fails its registry MAC), so the api's next start moves nothing, and says why
	store_sql "UPDATE hosts SET state = 'revoked' WHERE id = '$h2'" >/dev/null
	kill -KILL "$API_PID"
	wait "$API_PID" 2>/dev/null || true
	api_start "$addr"
	[ "$(store_sql "SELECT count(*) FROM machines WHERE host_id = '$h2' AND state <> 'destroyed'")" -eq 2 ]
	on_host web "$h2" 2
	grep -q "revoked_host_not_confirmed host_id=$h2" "$T/api.log"
}

# ---- agent rotate-keys ----

# keeper_self KEYFILE: the HTTP status of the keeper's GET /v1/hosts/self signed by h1 with KEYFILE.
keeper_self() {
	: >"$T/nobody"
	KEY=$1 sign "$H1" GET /v1/hosts/self "$T/nobody"
	send "$KEEPER_URL" GET /v1/hosts/self
	echo "$CODE"
}

# still_running PIDS: every "ID PID" line's process lives, and the api lists exactly these.
still_running() {
	local id pid
	while read -r id pid; do
		kill -0 "$pid" || return 1
	done <<<"$1"
	[ "$(started_pids web)" = "$1" ]
}

@test "agent rotate-keys under a running app: kill -9 before the switch and after the keeper's answer; machines never stop; the old key is refused" {
	agents_up 1
	H1=${HOST_IDS[1]}
	dir=$T/agents/h1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web LEVEL=one >/dev/null
	deploy web --count 1 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 1
	before=$(started_pids web)
	cp "$dir/host.sign.key" "$T/old.sign.key"
	cp "$dir/host.seal.key" "$T/old.seal.key"

	# step 1: the new keys are written to the pending file, nothing else changes
	run_logged "$COFFER" agent rotate-keys --state-dir "$dir"
	[ "$status" -eq 0 ]
	[[ "$output" == *"New host keys are pending in $dir/host.keys.pending"* ]]
	[ "$(stat -c %a "$dir/host.keys.pending")" = 600 ]
	cmp "$dir/host.sign.key" "$T/old.sign.key"
	[ "$(keeper_self "$T/old.sign.key")" = 200 ]
	# twice: the pending keys are kept (a retry sends the same proof)
	cp "$dir/host.keys.pending" "$T/pending.copy"
	run_logged "$COFFER" agent rotate-keys --state-dir "$dir"
	[ "$status" -eq 0 ]
	[[ "$output" == *"pending already"* ]]
	cmp "$dir/host.keys.pending" "$T/pending.copy"

	# kill -9 of the agent before the switch: its machines keep running
	kill -KILL "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PIDS=
	still_running "$before"

	# step 2: the next agent dies (kill -9) right after the keeper took the new keys, before any file changed
	run env COFFER_TEST_CRASH_AT=rekey-answered "$COFFER" agent --api "$API_URL" --keeper "$KEEPER_URL" \
		--state-dir "$dir" --name h1 --ca "$COFFER_CA"
	[ "$status" -eq 137 ]
	[ -e "$dir/host.keys.pending" ]
	cmp "$dir/host.sign.key" "$T/old.sign.key"
	cmp "$dir/host.seal.key" "$T/old.seal.key"
	# the keeper has the new keys: the old one is refused at once
	[ "$(keeper_self "$T/old.sign.key")" = 401 ]
	[ "$(jq -r .error.message <<<"$BODY")" != "host is revoked" ]
	still_running "$before"

	# step 3: a plain start re-sends the same proof, the keeper answers the same, the files switch
	agent_start h1
	wait_until 30 hosts_ready 1
	[ ! -e "$dir/host.keys.pending" ]
	run ! cmp -s "$dir/host.sign.key" "$T/old.sign.key"
	run ! cmp -s "$dir/host.seal.key" "$T/old.seal.key"
	grep -q 'agent_keys_rotated' "$T/agent-h1.log"
	[ "$(keeper_self "$dir/host.sign.key")" = 200 ]
	[ "$(keeper_self "$T/old.sign.key")" = 401 ]
	# the machines never stopped: the same processes, adopted
	wait_until 30 still_running "$before"
	# and a new machine boots on the host with the new keys (the keeper seals to the new seal key)
	run_logged cli scale count 2 -a web
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 2
	[ "$(api_get /v1/apps/web/releases | jq '[.releases[] | select(.status == "failed")] | length')" -eq 0 ]
	# audited by the keeper
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'hosts.rekey' AND outcome = 'ok'")" -ge 1 ]
}
