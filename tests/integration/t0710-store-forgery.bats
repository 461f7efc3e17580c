#!/usr/bin/env bats
# An attacker with write access to the store (sqlite3 or psql on it, as
# store_sql does) forges and edits the rows that grant access: tokens,
# machines, releases. Every such row carries a MAC under the keeper's rows
# key, which the store does not hold (docs/STORE.md "Row authentication"):
# each forgery is refused, logged row_tampered and audited, and a control
# shows the same request working on the row as it was written. Last, the
# one digest key of the service: two apis given the same --digest-key show
# a value's digest alike.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	platform_start
	APP="$APPS_DIR/app.sh"
	printf '{}' >"$T/empty.json"
}

teardown() {
	run_stop
	stop_pids ${API2_PID:-}
	platform_stop
}

# ---- requests by hand (as in t0610) ----

# host_send HOST URL METHOD PATH BODYFILE: a request signed with HOST's key
# (sign and send, helpers.bash); sets CODE and BODY.
host_send() {
	sign "$1" "$3" "$4" "$5"
	send "$2" "$3" "$4" "$5"
}

# boot_token MACHINE HOST: asks the api for a boot token as HOST; sets TOKEN, CODE, BODY.
boot_token() {
	host_send "$2" "$API_URL" POST "/v1/agent/machines/$1/boot-token" "$T/empty.json"
	TOKEN=$(jq -r '.token // empty' <<<"$BODY")
}

# open_as HOST TOKEN: POST /v1/open to the keeper as HOST.
open_as() {
	jq -cn --arg t "$2" '{token: $t}' >"$T/open.json"
	host_send "$1" "$KEEPER_URL" POST /v1/open "$T/open.json"
}

opened() {
	[ "$CODE" = 200 ] || { echo "status $CODE: $BODY" >&2; return 1; }
	[[ "$(jq -r .sealed <<<"$BODY")" =~ ^[A-Za-z0-9_-]{40,}$ ]]
}

# refused_with STATUS CODE MESSAGE-PART: the last answer was that error, with no token or delivery.
refused_with() {
	[ "$CODE" = "$1" ] || { echo "status $CODE, expected $1: $BODY" >&2; return 1; }
	[ "$(jq -r '.sealed // .token // empty' <<<"$BODY")" = "" ]
	[ "$(jq -r .error.code <<<"$BODY")" = "$2" ] || { echo "code: $BODY" >&2; return 1; }
	[[ "$(jq -r .error.message <<<"$BODY")" == *"$3"* ]] || { echo "message: $BODY" >&2; return 1; }
}

opens_ok() {
	store_sql "SELECT count(*) FROM audit_events WHERE action = 'secrets.open' AND outcome = 'ok'"
}

# run_app APP: deploys app.sh on APP, one machine; sets MID, MHOST, MPID.
run_app() {
	deploy "$1" -- "$APP"
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
	wait_until 30 count_started "$1" 1
	read -r MID MHOST MPID < <(machines_json "$1" | jq -r '.[0] | "\(.id) \(.host_id) \(.pid)"')
}

# claims APP_ID MACHINE HOST RELEASE SECRETS_VERSION: boot token claims as the api makes them.
claims() {
	local now
	now=$(date +%s)
	jq -cn --arg app "$1" --arg m "$2" --arg h "$3" --argjson rel "$4" --argjson sv "$5" --argjson iat "$now" \
		--argjson exp "$((now + 600))" --arg jti "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
		'{app: $app, machine: $m, host: $h, release: $rel, secrets_version: $sv, iat: $iat, exp: $exp, jti: $jti}'
}

# tampered_logged ROLE TABLE: the role logged a refused row of the table.
tampered_logged() {
	grep -q "event=row_tampered table=$2 " "$T/$1.log" || { echo "no row_tampered table=$2 in $1.log" >&2; return 1; }
}

# as_token TOKEN METHOD PATH [BODY]: a call to the api; sets CODE and BODY.
as_token() {
	CODE=$(curl -sS -o "$T/last.body" -w '%{http_code}' -X "$2" -H "Authorization: Bearer $1" \
		${4:+--data-binary "$4"} "$API_URL$3") || CODE=000
	BODY=$(cat "$T/last.body")
}

# ---- tokens ----

@test "a token row forged with the hash of a token of the attacker's choosing is refused (401) and audited" {
	tok="coffer_$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
	hash=$(printf '%s' "$tok" | sha256sum | cut -d' ' -f1)
	org=$(store_sql "SELECT id FROM orgs WHERE name = 'acme'")
	apps=$(store_sql "SELECT count(*) FROM apps")
	# without a MAC, and with the MAC of the real admin token's row (a replayed MAC)
	store_sql "INSERT INTO tokens (id, org_id, hash, role, created_at, description)
		VALUES ('f0f0f0f0f0f0f0f0f0f0f0f0', '$org', $(blob "$hash"), 'admin', 1, 'forged')"
	as_token "$tok" POST /v1/apps '{"name":"evil"}'
	refused_with 401 unauthenticated "token row failed authentication"
	store_sql "UPDATE tokens SET mac = (SELECT mac FROM tokens WHERE description = 'bootstrap admin')
		WHERE id = 'f0f0f0f0f0f0f0f0f0f0f0f0'"
	as_token "$tok" GET /v1/apps
	refused_with 401 unauthenticated "token row failed authentication"
	[ "$(store_sql "SELECT count(*) FROM apps")" = "$apps" ]
	tampered_logged api tokens
	# the POST is an audited route: its event names the forged row
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'apps.create' AND outcome = 'denied:unauthenticated'
		AND detail LIKE '%token row failed authentication (tampered)%'")" = 1 ]
	# control: the real admin token still works
	as_token "$ADMIN_TOKEN" GET /v1/apps
	[ "$CODE" = 200 ]
}

@test "a read token edited to admin is refused (401); as written it is a read token" {
	"$COFFER" tokens create --role read --json >"$T/read.json"
	tok=$(jq -r .token "$T/read.json")
	api_id=$(jq -r .id "$T/read.json")
	id=$(store_sql "SELECT id FROM tokens WHERE role = 'read'")
	[[ "$api_id" == *"$id" ]]
	as_token "$tok" GET /v1/apps
	[ "$CODE" = 200 ]
	as_token "$tok" POST /v1/apps '{"name":"evil"}'
	[ "$CODE" = 403 ]
	store_sql "UPDATE tokens SET role = 'admin' WHERE id = '$id'"
	as_token "$tok" POST /v1/apps '{"name":"evil"}'
	refused_with 401 unauthenticated "token row failed authentication"
	[ "$("$COFFER" apps list --json | jq '[.[] | select(.name == "evil")] | length')" = 0 ]
	# revoking it does not seal the edited row anew: it stays refused
	run "$COFFER" tokens revoke "$api_id"
	[ "$status" -ne 0 ]
	[[ "$output" == *"stored row failed authentication"* ]]
	[ "$(store_sql "SELECT count(*) FROM tokens WHERE id = '$id' AND revoked_at IS NULL")" = 1 ]
	as_token "$tok" GET /v1/apps
	refused_with 401 unauthenticated "token row failed authentication"
	tampered_logged api tokens
}

@test "api bootstrap needs the rows key: none or a wrong one is refused and writes nothing" {
	orgs=$(store_sql "SELECT count(*) FROM orgs")
	toks=$(store_sql "SELECT count(*) FROM tokens")
	run "$COFFER" api bootstrap --store "$STORE_URL" --org evil
	[ "$status" -eq 2 ]
	[[ "$output" == *"--rows-key"* ]]
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/wrong.key"
	chmod 600 "$T/wrong.key"
	run "$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$T/wrong.key" --org evil
	[ "$status" -ne 0 ]
	[[ "$output" == *"the rows key is not this store's"* ]]
	[ -z "$(grep -E '^coffer_' <<<"$output")" ]
	[ "$(store_sql "SELECT count(*) FROM orgs")" = "$orgs" ]
	[ "$(store_sql "SELECT count(*) FROM tokens")" = "$toks" ]
	# control: with the keeper's rows key
	run "$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --org good
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^coffer_ ]]
	as_token "$output" GET /v1/apps
	[ "$CODE" = 200 ]
}

# ---- machines and releases ----

@test "a machine moved to another host in the store: no boot token for it, the keeper refuses the open, audited" {
	agents_up 2
	run_app canary
	other=${HOST_IDS[1]}
	[ "$other" = "$MHOST" ] && other=${HOST_IDS[2]}
	rel=$(api_get /v1/apps/canary/status | jq -r .current_release)
	sv=$(api_get /v1/apps/canary/status | jq -r .deployed_version)
	# control: the machine's own host gets a token and opens
	boot_token "$MID" "$MHOST"
	[ "$CODE" = 200 ]
	open_as "$MHOST" "$TOKEN"
	opened
	ok=$(opens_ok)
	store_sql "UPDATE machines SET host_id = '$other' WHERE id = '$MID'"
	boot_token "$MID" "$other"
	refused_with 500 row_tampered "its stored row failed authentication"
	# a token naming the other host (one the api would have minted had it trusted the row)
	open_as "$other" "$(mint_token "$(claims "$(store_sql "SELECT id FROM apps WHERE name = 'canary'")" "$MID" "$other" "$rel" "$sv")")"
	refused_with 500 row_tampered "machine row failed authentication (tampered)"
	[ "$(opens_ok)" = "$ok" ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'secrets.open'
		AND outcome = 'refused: machine row failed authentication (tampered)'")" = 1 ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'agent.boot_token' AND outcome LIKE '%row_tampered%'")" -ge 1 ]
	tampered_logged api machines
	tampered_logged keeper machines
	# no process of the other host's agent got the machine's secrets
	for pid in $(pgrep -f "$APP" || true); do
		[ "$(env_of "$pid" COFFER_MACHINE_ID 2>/dev/null || true)" != "$MID" ] || [ "$pid" = "$MPID" ]
	done
}

@test "a destroyed machine edited back to started: no open, and its agent does not start it again" {
	agents_up 1
	run_app canary
	rel=$(api_get /v1/apps/canary/status | jq -r .current_release)
	sv=$(api_get /v1/apps/canary/status | jq -r .deployed_version)
	run_logged cli machines destroy -a canary "$MID" --yes
	[ "$status" -eq 0 ]
	wait_until 20 gone "$MPID"
	ok=$(opens_ok)
	store_sql "UPDATE machines SET state = 'started' WHERE id = '$MID'"
	boot_token "$MID" "$MHOST"
	refused_with 500 row_tampered "its stored row failed authentication"
	open_as "$MHOST" "$(mint_token "$(claims "$(store_sql "SELECT id FROM apps WHERE name = 'canary'")" "$MID" "$MHOST" "$rel" "$sv")")"
	refused_with 500 row_tampered "machine row failed authentication (tampered)"
	# the agent's assignments are refused while the row is there: nothing starts it
	sleep 4
	for pid in $(pgrep -f "$APP" || true); do
		[ "$(env_of "$pid" COFFER_MACHINE_ID 2>/dev/null || true)" != "$MID" ]
	done
	[ "$(opens_ok)" = "$ok" ]
	tampered_logged api machines
	tampered_logged keeper machines
}

@test "a release sent back to an older secrets version in the store is refused" {
	agents_up 1
	run_app canary
	run_logged cli secrets set -a canary "OTHER=x"
	[ "$status" -eq 0 ]
	rel=$(latest_release canary)
	wait_until 30 release_done canary "$rel"
	[ "$(release_status canary "$rel")" = succeeded ]
	sv=$(release_of canary "$rel" | jq -r .secrets_version)
	[ "$sv" -ge 2 ]
	id=$(machines_json canary | jq -r '.[0].id')
	boot_token "$id" "$MHOST"
	[ "$CODE" = 200 ]
	[ "$(token_claims "$TOKEN" | jq -r .secrets_version)" = "$sv" ]
	store_sql "UPDATE releases SET secrets_version = 1 WHERE version = $rel"
	boot_token "$id" "$MHOST"
	refused_with 500 row_tampered "release $rel of machine '$id': its stored row failed authentication"
	run "$COFFER" releases -a canary
	[ "$status" -ne 0 ]
	[[ "$output" == *"stored row failed authentication"* ]]
	tampered_logged api releases
	# control: the row put back as it was written verifies again
	store_sql "UPDATE releases SET secrets_version = $sv WHERE version = $rel"
	boot_token "$id" "$MHOST"
	[ "$CODE" = 200 ]
}

# ---- apps ----

# counts: secrets versions, releases and machines in the store, one line.
counts() {
	store_sql "SELECT (SELECT count(*) FROM secret_versions) || ' ' || (SELECT count(*) FROM releases) || ' ' ||
		(SELECT count(*) FROM machines)"
}

@test "an app moved into another org in the store: that org's token cannot reach or deploy it, audited" {
	agents_up 1
	evil=$("$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --org evil)
	[[ "$evil" =~ ^coffer_ ]]
	# control: across orgs the app is not found
	as_token "$evil" GET /v1/apps/canary/secrets
	refused_with 404 not_found "app 'canary' not found"
	before=$(counts)
	store_sql "UPDATE apps SET org_id = (SELECT id FROM orgs WHERE name = 'evil') WHERE name = 'canary'"
	as_token "$evil" GET /v1/apps/canary/secrets
	refused_with 500 row_tampered "app 'canary': its stored row failed authentication (tampered)"
	as_token "$evil" GET /v1/apps
	refused_with 500 row_tampered "stored row failed authentication"
	# deploying code that would print the app's secrets
	run env COFFER_TOKEN="$evil" timeout 60 "$COFFER" deploy -a canary --grace 2s -- "$APP"
	[ "$status" -ne 0 ]
	[[ "$output" == *"app 'canary': its stored row failed authentication"* ]]
	[ "$(counts)" = "$before" ]
	tampered_logged api apps
	# (the CLI is refused at its first step: reading the app's sealing state)
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'secrets.sealing'
		AND org_id = (SELECT id FROM orgs WHERE name = 'evil') AND outcome LIKE '%row_tampered%'")" = 1 ]
	# the app's own org is refused too while the row is edited; put back, it verifies again
	as_token "$ADMIN_TOKEN" GET /v1/apps/canary/secrets
	refused_with 500 row_tampered "stored row failed authentication"
	store_sql "UPDATE apps SET org_id = (SELECT id FROM orgs WHERE name = 'acme') WHERE name = 'canary'"
	as_token "$ADMIN_TOKEN" GET /v1/apps/canary/secrets
	[ "$CODE" = 200 ]
	as_token "$evil" GET /v1/apps/canary/secrets
	[ "$CODE" = 404 ]
}

@test "an app's secrets head set back to an older version: no secrets set or deploy on it, no machine gets the old value" {
	agents_up 1
	run_app canary
	run_logged cli secrets set -a canary "ROTATED=old-value"
	[ "$status" -eq 0 ]
	wait_until 30 release_done canary "$(latest_release canary)"
	old=$(store_sql "SELECT secrets_head FROM apps WHERE name = 'canary'")
	run_logged cli secrets set -a canary "ROTATED=new-value"
	[ "$status" -eq 0 ]
	rel=$(latest_release canary)
	wait_until 30 release_done canary "$rel"
	[ "$(release_status canary "$rel")" = succeeded ]
	machine_env_is canary ROTATED new-value
	head=$(store_sql "SELECT secrets_head FROM apps WHERE name = 'canary'")
	[ "$head" -gt "$old" ]
	before=$(counts)
	store_sql "UPDATE apps SET secrets_head = $old WHERE name = 'canary'"
	# a secrets set would rebase on the old version's values, a deploy would take them
	run_logged cli secrets set -a canary "OTHER=x"
	[ "$status" -ne 0 ]
	[[ "$output" == *"app 'canary': its stored row failed authentication"* ]]
	deploy canary -- "$APP"
	[ "$status" -ne 0 ]
	[[ "$output" == *"app 'canary': its stored row failed authentication"* ]]
	[ "$(counts)" = "$before" ]
	tampered_logged api apps
	# (each command is refused at its first step: reading the app's sealing state)
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'secrets.sealing'
		AND outcome LIKE '%row_tampered%'")" = 2 ]
	# control: the head put back as it was written verifies again
	store_sql "UPDATE apps SET secrets_head = $head WHERE name = 'canary'"
	[ "$(latest_release canary)" = "$rel" ]
	machine_env_is canary ROTATED new-value
	run_logged cli secrets set -a canary "OTHER=x"
	[ "$status" -eq 0 ]
}

# ---- the one digest key ----

# api2_start DIGEST_KEY: a second api on the same store and keeper; API2_URL.
api2_start() {
	rm -f "$T/api2.ready"
	"$COFFER" api --state-dir "$T/api2" --store "$STORE_URL" --listen 127.0.0.1:0 \
		--keeper "$KEEPER_URL" --keeper-pub "$T/keeper/keeper.pub" \
		--keeper-credential "$T/keeper/api.credential" --boot-key "$T/keeper/api.boot.key" \
		--rows-key "$T/keeper/api.rows.key" --digest-key "$1" \
		--ready-file "$T/api2.ready" >>"$T/api2.out" 2>>"$T/api2.log" 3>&- &
	API2_PID=$!
	wait_file "$T/api2.ready" "$API2_PID"
	API2_URL=$(cat "$T/api2.ready")
}

digests_via() {
	COFFER_API_URL="$1" "$COFFER" secrets list -a canary --json | jq -c '[.[] | {name, digest}]'
}

@test "two apis with the same --digest-key show the same digest of a value" {
	api2_start "$T/keeper/api.digest.key"
	# one value set as two names, one through each api
	"$COFFER" secrets set -a canary --stage "FIRST=$CANARY-d" >/dev/null
	COFFER_API_URL="$API2_URL" "$COFFER" secrets set -a canary --stage "SECOND=$CANARY-d" >/dev/null
	for url in "$API_URL" "$API2_URL"; do
		digests_via "$url" >"$T/digests.$((++n))"
		[ "$(jq -r '.[] | select(.name == "FIRST") | .digest' "$T/digests.$n")" = \
			"$(jq -r '.[] | select(.name == "SECOND") | .digest' "$T/digests.$n")" ]
	done
	# secrets list does not change with the api serving it
	cmp "$T/digests.1" "$T/digests.2"
	[[ "$(jq -r '.[] | select(.name == "FIRST") | .digest' "$T/digests.1")" =~ ^[0-9a-f]{16,}$ ]]
	# control: an api with another digest key gives the same value another digest
	stop_pids "$API2_PID"
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/other.digest.key"
	chmod 600 "$T/other.digest.key"
	api2_start "$T/other.digest.key"
	COFFER_API_URL="$API2_URL" "$COFFER" secrets set -a canary --stage "THIRD=$CANARY-d" >/dev/null
	digests_via "$API_URL" >"$T/digests.3"
	[ "$(jq -r '.[] | select(.name == "THIRD") | .digest' "$T/digests.3")" != \
		"$(jq -r '.[] | select(.name == "FIRST") | .digest' "$T/digests.3")" ]
}
