#!/usr/bin/env bats
# The keeper's POST /v1/open and the api's agent routes, attacked with
# requests crafted by hand: host_sign signs them with an agent's own key
# file (what an attacker holding that host's keys can do), and mint_token
# makes boot tokens with the api's boot key (tokens the api would never
# make, to show that the keeper checks each claim against its own records).
# Each refusal has a control that passes, so the refusal is about the one
# thing changed. Every open, refused or not, is audited with names only.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	platform_start
	APP="$APPS_DIR/app.sh"
	printf '{}' >"$T/empty.json"
}

teardown() {
	run_stop
	platform_stop
}

# boot_token MACHINE HOST: a token from the api's boot-token route, asked
# for by HOST; sets TOKEN (and CODE, BODY).
boot_token() {
	sign "$2" POST "/v1/agent/machines/$1/boot-token" "$T/empty.json"
	send "$API_URL" POST "/v1/agent/machines/$1/boot-token" "$T/empty.json"
	TOKEN=$(jq -r '.token // empty' <<<"$BODY")
}

# open_body TOKEN FILE: the body of an open request.
open_body() {
	jq -cn --arg t "$1" '{token: $t}' >"$2"
}

# open_as HOST TOKEN: a fresh open request by HOST for TOKEN; its body is
# $T/open.json, HDRS its headers (for a replay).
open_as() {
	open_body "$2" "$T/open.json"
	sign "$1" POST /v1/open "$T/open.json"
	send "$KEEPER_URL" POST /v1/open "$T/open.json"
}

# opened: the last answer was a delivery.
opened() {
	[ "$CODE" = 200 ] || { echo "status $CODE: $BODY" >&2; return 1; }
	[[ "$(jq -r .sealed <<<"$BODY")" =~ ^[A-Za-z0-9_-]{40,}$ ]]
}

# refused_with STATUS [MESSAGE-PART]: the last answer was that refusal, with no delivery.
refused_with() {
	[ "$CODE" = "$1" ] || { echo "status $CODE, expected $1: $BODY" >&2; return 1; }
	[ "$(jq -r '.sealed // empty' <<<"$BODY")" = "" ]
	[ -z "${2:-}" ] || [[ "$(jq -r .error.message <<<"$BODY")" == *"$2"* ]] ||
		{ echo "message: $BODY" >&2; return 1; }
}

opens_ok() {
	store_sql "SELECT count(*) FROM audit_events WHERE action = 'secrets.open' AND outcome = 'ok'"
}

opens_refused() {
	store_sql "SELECT count(*) FROM audit_events WHERE action = 'secrets.open' AND outcome LIKE 'refused%'"
}

app_id() {
	store_sql "SELECT id FROM apps WHERE name = '$1'"
}

# run_app APP [N [DEPLOY_OPTION...]]: deploys app.sh on APP with N machines
# (default 1) and the options given; sets MID (the first machine's id),
# MHOST (its host id), MPID, and REL and SV (the app's release and secrets
# version, for claims).
run_app() {
	local app=$1 n=${2:-1}
	shift $(($# < 2 ? $# : 2))
	deploy "$app" --count "$n" "$@" -- "$APP"
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
	wait_until 30 count_started "$app" "$n"
	read -r MID MHOST MPID < <(machines_json "$app" | jq -r 'sort_by(.id) | .[0] | "\(.id) \(.host_id) \(.pid)"')
	REL=$(api_get "/v1/apps/$app/status" | jq -r .current_release)
	SV=$(api_get "/v1/apps/$app/status" | jq -r .deployed_version)
}

# claims APP_ID MACHINE HOST [IAT [EXP]]: boot token claims as the api makes them.
claims() {
	local now
	now=$(date +%s)
	jq -cn --arg app "$1" --arg m "$2" --arg h "$3" --argjson iat "${4:-$now}" --argjson exp "${5:-$((now + 600))}" \
		--arg jti "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
		--argjson rel "${REL:-1}" --argjson sv "${SV:-1}" \
		'{app: $app, machine: $m, host: $h, release: $rel, secrets_version: $sv, iat: $iat, exp: $exp, jti: $jti}'
}

@test "control, replay and tampering: a captured open request works once, an altered one never" {
	agents_up 1
	run_app canary
	boot_token "$MID" "$MHOST"
	[ "$CODE" = 200 ]
	[ -n "$TOKEN" ]
	[ "$(jq -r .exp <<<"$BODY")" -gt "$(date +%s)" ]
	c=$(token_claims "$TOKEN")
	[ "$(jq -r .machine <<<"$c")" = "$MID" ]
	[ "$(jq -r .host <<<"$c")" = "$MHOST" ]
	[ "$(jq -r .app <<<"$c")" = "$(app_id canary)" ]
	ok=$(opens_ok)
	open_as "$MHOST" "$TOKEN"
	opened
	[ "$(opens_ok)" = $((ok + 1)) ]
	# the very same request again
	send "$KEEPER_URL" POST /v1/open "$T/open.json"
	refused_with 401 "request replayed"
	# the body changed under the signature (another token)
	boot_token "$MID" "$MHOST"
	other=$TOKEN
	open_body "$TOKEN" "$T/open.json"
	sign "$MHOST" POST /v1/open "$T/open.json"
	open_body "$other." "$T/tampered.json"
	send "$KEEPER_URL" POST /v1/open "$T/tampered.json"
	refused_with 401 "request signature does not verify"
	# the target changed
	sign "$MHOST" POST /v1/open "$T/open.json"
	send "$KEEPER_URL" POST "/v1/open?machine=x" "$T/open.json"
	refused_with 401 "request signature does not verify"
	# a token with one claim edited (signed body, but the token's signature breaks)
	edited=$(jq -c '.machine = "0123456789abcdef01234567"' <<<"$(token_claims "$other")" | b64url)
	forged="$(cut -d. -f1 <<<"$other").$edited.$(cut -d. -f3 <<<"$other")"
	open_as "$MHOST" "$forged"
	refused_with 401
	# nothing of that opened anything; the untouched request still does
	[ "$(opens_ok)" = $((ok + 1)) ]
	open_as "$MHOST" "$other"
	opened
}

@test "a token of app A's machine does not open app B, nor B's machine with A's token" {
	agents_up 1
	"$COFFER" apps create shop >/dev/null
	"$COFFER" secrets set -a shop SHOP_KEY=shop-value >/dev/null
	run_app shop
	shop_m=$MID
	run_app canary
	[ "$MHOST" = "${HOST_IDS[1]}" ]
	canary_id=$(app_id canary)
	shop_id=$(app_id shop)
	# control: a token minted by hand like the api's opens
	tok=$(mint_token "$(claims "$canary_id" "$MID" "$MHOST")")
	open_as "$MHOST" "$tok"
	opened
	ok=$(opens_ok)
	refused=$(opens_refused)
	# canary's machine, claimed for shop
	tok=$(mint_token "$(claims "$shop_id" "$MID" "$MHOST")")
	open_as "$MHOST" "$tok"
	refused_with 403
	# shop's machine, claimed for canary
	tok=$(mint_token "$(claims "$canary_id" "$shop_m" "$MHOST")")
	open_as "$MHOST" "$tok"
	refused_with 403
	# an unknown machine
	tok=$(mint_token "$(claims "$canary_id" 0123456789abcdef01234567 "$MHOST")")
	open_as "$MHOST" "$tok"
	refused_with 404
	[ "$(opens_ok)" = "$ok" ]
	[ "$(opens_refused)" = $((refused + 3)) ]
	# the api's own token for shop's machine names shop: the app is the api's record, not the caller's
	boot_token "$shop_m" "$MHOST"
	[ "$CODE" = 200 ]
	[ "$(jq -r .app <<<"$(token_claims "$TOKEN")")" = "$shop_id" ]
}

@test "a token for one host is refused with another host's signature; an unknown host is refused" {
	agents_up 2
	run_app canary
	other=${HOST_IDS[1]}
	[ "$other" = "$MHOST" ] && other=${HOST_IDS[2]}
	boot_token "$MID" "$MHOST"
	[ "$CODE" = 200 ]
	ok=$(opens_ok)
	# host B signs, with host A's token
	open_as "$other" "$TOKEN"
	refused_with 403
	# host B cannot get a token for A's machine from the api either
	boot_token "$MID" "$other"
	[ "$CODE" = 404 ]
	[ -z "$TOKEN" ]
	# a token naming host B, for a machine on A, signed by B
	tok=$(mint_token "$(claims "$(app_id canary)" "$MID" "$other")")
	open_as "$other" "$tok"
	refused_with 403
	# an unknown host id, signed with A's key
	unknown=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	KEY=$(key_of "$MHOST") sign "$unknown" POST /v1/open "$T/open.json"
	send "$KEEPER_URL" POST /v1/open "$T/open.json"
	refused_with 401 "unknown host"
	[ "$(opens_ok)" = "$ok" ]
	# control: A itself opens with it
	boot_token "$MID" "$MHOST"
	open_as "$MHOST" "$TOKEN"
	opened
}

@test "an expired token, or one signed by another key, is refused" {
	agents_up 1
	run_app canary
	now=$(date +%s)
	ok=$(opens_ok)
	tok=$(mint_token "$(claims "$(app_id canary)" "$MID" "$MHOST" $((now - 700)) $((now - 100)))")
	open_as "$MHOST" "$tok"
	refused_with 401
	# one from the future
	tok=$(mint_token "$(claims "$(app_id canary)" "$MID" "$MHOST" $((now + 600)) $((now + 1200)))")
	open_as "$MHOST" "$tok"
	refused_with 401
	# another keeper's api boot key
	"$COFFER" keeper init --state-dir "$T/other" >/dev/null
	good=$T/keeper/api.boot.key
	mv "$good" "$T/boot.key.saved"
	cp "$T/other/api.boot.key" "$good"
	tok=$(mint_token "$(claims "$(app_id canary)" "$MID" "$MHOST")")
	mv "$T/boot.key.saved" "$good"
	open_as "$MHOST" "$tok"
	refused_with 401
	[ "$(opens_ok)" = "$ok" ]
	# control: the same claims, now, with the right key
	tok=$(mint_token "$(claims "$(app_id canary)" "$MID" "$MHOST")")
	open_as "$MHOST" "$tok"
	opened
}

@test "a destroyed machine: its last open replayed and a new open with its token are refused" {
	agents_up 1
	run_app canary 2
	boot_token "$MID" "$MHOST"
	[ "$CODE" = 200 ]
	open_as "$MHOST" "$TOKEN"
	opened
	cp "$T/open.json" "$T/last-open.json"
	last=("${HDRS[@]}")
	run_logged cli machines destroy -a canary "$MID" --yes
	[ "$status" -eq 0 ]
	wait_until 20 gone "$MPID"
	ok=$(opens_ok)
	HDRS=("${last[@]}")
	send "$KEEPER_URL" POST /v1/open "$T/last-open.json"
	refused_with 401 "request replayed"
	# a fresh request, with the token minted before the destroy (not expired)
	open_as "$MHOST" "$TOKEN"
	refused_with 409
	# and no new token for it
	boot_token "$MID" "$MHOST"
	[ "$CODE" = 409 ]
	[ -z "$TOKEN" ]
	[ "$(opens_ok)" = "$ok" ]
	# events about it are refused too
	jq -cn --argjson rel "$REL" --argjson at "$(($(date +%s) * 1000))" \
		'{state: "started", release: $rel, pid: 4242, started_at: $at}' >"$T/event.json"
	sign "$MHOST" POST "/v1/agent/machines/$MID/events" "$T/event.json"
	send "$API_URL" POST "/v1/agent/machines/$MID/events" "$T/event.json"
	[ "$CODE" = 409 ]
	[ "$(api_get "/v1/apps/canary/machines?all=1" | jq -r --arg id "$MID" '.machines[] | select(.id == $id) | .state')" = destroyed ]
	# the other machine of the app still opens: the refusal is about the destroyed one
	other=$(machines_json canary | jq -r '.[0].id')
	[ "$other" != "$MID" ]
	boot_token "$other" "$MHOST"
	open_as "$MHOST" "$TOKEN"
	opened
}

@test "a ciphertext moved in the store: the open is refused and no machine boots with the moved value" {
	agents_up 1
	"$COFFER" apps create shop >/dev/null
	"$COFFER" secrets set -a shop FIRST=one-value SECOND=two-value >/dev/null
	# every machine of shop prints its SECOND reversed at start (into its out.log; reversed: not masked)
	run_app shop 1 --env PRINT_REV=SECOND
	[ "$(env_of "$MPID" SECOND)" = two-value ]
	# the out.log scan below sees what a machine prints
	wait_until 10 grep -rqaF 'the reversed value of SECOND is eulav-owt' "$T"/agents/ --include='out.log*'
	boot_token "$MID" "$MHOST"
	open_as "$MHOST" "$TOKEN"
	opened
	shop=$(app_id shop)
	store_sql "UPDATE secret_values SET ciphertext = (SELECT ciphertext FROM secret_values
		   WHERE app_id = '$shop' AND name = 'FIRST') WHERE app_id = '$shop' AND name = 'SECOND'"
	refused=$(opens_refused)
	boot_token "$MID" "$MHOST"
	open_as "$MHOST" "$TOKEN"
	[ "$CODE" != 200 ]
	[ -z "$(jq -r '.sealed // empty' <<<"$BODY")" ]
	[ "$(opens_refused)" = $((refused + 1)) ]
	# a new machine (scale) cannot boot: the release fails and the app keeps its one machine
	run_logged cli scale count 2 -a shop
	[ "$status" -ne 0 ]
	[[ "$output" == *"failed to start"* ]]
	wait_until 30 releases_settled shop
	wait_until 30 count_started shop 1
	[ "$(started_pids shop)" = "$MID $MPID" ]
	[ "$(env_of "$MPID" SECOND)" = two-value ]
	# no process of any machine of the app ever ran with the moved value
	while read -r pid; do
		[ -n "$pid" ] && [ "$pid" != null ] || continue
		if kill -0 "$pid" 2>/dev/null; then [ "$(env_of "$pid" SECOND)" != one-value ]; fi
	done < <(api_get "/v1/apps/shop/machines?all=1" | jq -r '.machines[].pid')
	run ! grep -rqaF eulav-eno "$T"/agents/*/ --include='out.log*'
	# another app's ciphertext moved in: refused the same way
	canary=$(app_id canary)
	store_sql "UPDATE secret_values SET ciphertext = (SELECT ciphertext FROM secret_values
		   WHERE app_id = '$canary' AND name = 'CANARY_SECRET') WHERE app_id = '$shop' AND name = 'FIRST'"
	before=$(opens_refused)
	boot_token "$MID" "$MHOST"
	open_as "$MHOST" "$TOKEN"
	[ "$CODE" != 200 ]
	[ -z "$(jq -r '.sealed // empty' <<<"$BODY")" ]
	[ "$(opens_refused)" = $((before + 1)) ]
}

@test "every open is audited with names, never values; refusals with their reason" {
	agents_up 1
	"$COFFER" secrets set -a canary --stage SECOND_NAME=second-value >/dev/null
	run_app canary
	rows=$(store_sql "SELECT detail FROM audit_events WHERE action = 'secrets.open' AND outcome = 'ok'")
	[ -n "$rows" ]
	d=$(head -n 1 <<<"$rows")
	[ "$(jq -r '.machine' <<<"$d")" = "$MID" ]
	[ "$(jq -r '.host' <<<"$d")" = "$MHOST" ]
	[ "$(jq -r '.names | sort | join(",")' <<<"$d")" = CANARY_SECRET,SECOND_NAME ]
	[[ "$rows" != *second-value* ]]
	# a refusal: its reason, no names opened
	boot_token "$MID" "$MHOST"
	open_as "$MHOST" "$TOKEN"
	opened
	tok=$(mint_token "$(claims "$(app_id canary)" 0123456789abcdef01234567 "$MHOST")")
	open_as "$MHOST" "$tok"
	refused_with 404
	r=$(store_sql "SELECT outcome || ' ' || detail FROM audit_events WHERE action = 'secrets.open' AND outcome LIKE 'refused%'")
	[ "$(wc -l <<<"$r")" = 1 ]
	[[ "$r" == *0123456789abcdef01234567* ]]
	[[ "$r" != *second-value* ]]
	# coffer audit shows them to the org's admin, by app
	run_logged cli audit -a canary --json
	[ "$status" -eq 0 ]
	ev=$(jq -c 'if type == "array" then . else .events end | [.[] | select(.action == "secrets.open")]' <<<"$output")
	[ "$(jq 'length' <<<"$ev")" -ge 2 ]
	[ "$(jq -r '[.[] | select(.outcome == "ok")] | length' <<<"$ev")" -ge 2 ]
	[[ "$ev" == *CANARY_SECRET* ]]
	[[ "$ev" != *second-value* ]]
	run_logged cli audit verify
	[ "$status" -eq 0 ]
}
