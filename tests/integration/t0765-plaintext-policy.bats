#!/usr/bin/env bats
# Plaintext values from a plain HTTP client (issue 12; docs/API.md
# "Plaintext values"): refused by default; an org allows them by enrolling
# the api itself as a deployer of the org (`coffer api enrol-deployer`,
# `coffer api --deployer-key`), and then the api seals, digests and signs a
# curl's value as the CLI would, the audit naming the api's deployer; an
# app of another org is still refused; revoking the api's key ends it at
# the api and, when the store row is put back, at the keeper. The value is
# the canary's, so the canary scan covers every log, output and the store.

load helpers

bats_require_minimum_version 1.5.0

VALUE="$CANARY-plain"

setup() {
	platform_start
	APP="$APPS_DIR/app.sh"
}

teardown() {
	run_stop
	platform_stop
}

# put_plain TOKEN APP NAME VALUE: a curl POST of {"secrets": {NAME: VALUE}}
# (the body through stdin, never in a file); sets CODE and BODY.
put_plain() {
	CODE=$(jq -cn --arg n "$3" --arg v "$4" '{secrets: {($n): $v}}' |
		curl -sS -o "$T/last.body" -w '%{http_code}' -H "Authorization: Bearer $1" \
			-H 'Content-Type: application/json' --data-binary @- "$API_URL/v1/apps/$2/secrets") || CODE=000
	BODY=$(cat "$T/last.body")
	printf 'POST %s -> %s %s\n' "$2" "$CODE" "$BODY" >>"$T/outputs.log"
}

message_has() {
	[[ "$(jq -r .error.message <<<"$BODY")" == *"$1"* ]] || { echo "message: $BODY" >&2; return 1; }
}

head_of() {
	api_get "/v1/apps/$1/secrets" | jq -r .version
}

# no_machine_has APP NAME: no started machine of APP has NAME in its environment.
no_machine_has() {
	local id pid
	while read -r id pid; do
		[ -n "$id" ] || continue
		run ! env_of "$pid" "$2"
	done < <(started_pids "$1")
}

@test "by default a plaintext value is refused naming the secret, and nothing is stored" {
	before=$(head_of canary)
	put_plain "$ADMIN_TOKEN" canary PLAIN_VALUE "$VALUE"
	[ "$CODE" = 400 ]
	message_has "value of 'PLAIN_VALUE' is plaintext and this org does not allow plaintext values"
	message_has "coffer secrets set"
	message_has "coffer api enrol-deployer"
	# in base64 too
	CODE=$(jq -cn --arg v "$(printf '%s' "$VALUE" | base64 -w0)" '{secrets: {B64_VALUE: {base64: $v}}}' |
		curl -sS -o "$T/last.body" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
			--data-binary @- "$API_URL/v1/apps/canary/secrets")
	BODY=$(cat "$T/last.body")
	[ "$CODE" = 400 ]
	message_has "value of 'B64_VALUE' is plaintext"
	[ "$(head_of canary)" = "$before" ]
	# a failed enrolment leaves no key behind
	run_logged "$COFFER" api enrol-deployer --deployer-token - --keeper "$KEEPER_URL" --ca "$COFFER_CA" \
		--key "$T/never.key" <<<"cdt_not-a-token"
	[ "$status" -ne 0 ]
	[ ! -e "$T/never.key" ]
	# a key file that is not enrolled allows nothing: logged at start
	(umask 077 && { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; echo; } >"$T/never.key")
	stop_pids "$API_PID"
	API_DEPLOYER_KEY="$T/never.key" api_start "${API_URL#https://}"
	grep -q 'deployer_key_unused.*this key is not enrolled' "$T/api.log"
	put_plain "$ADMIN_TOKEN" canary PLAIN_VALUE "$VALUE"
	[ "$CODE" = 400 ]
	message_has "this org does not allow plaintext values"
	[ "$(head_of canary)" = "$before" ]
}

@test "an org that enrolled the api: curl sets a value, a machine boots with it, the audit names the api; another org is refused" {
	agents_up 1
	deploy canary -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started canary 1
	enrol_api
	# the enrol key is made once, never over another
	run "$COFFER" api enrol-deployer --deployer-token - --keeper "$KEEPER_URL" --ca "$COFFER_CA" \
		--key "$T/api-deployer.key" <<<"cdt_x"
	[ "$status" -ne 0 ]
	[[ "$output" == *"exists"* ]]
	v1=$(latest_release canary)
	put_plain "$ADMIN_TOKEN" canary PLAIN_VALUE "$VALUE"
	[ "$CODE" = 201 ]
	[ "$(jq -r .status <<<"$BODY")" = deploying ]
	v2=$(jq -r .release <<<"$BODY")
	[ "$v2" -gt "$v1" ]
	wait_until 90 release_done canary "$v2"
	[ "$(release_status canary "$v2")" = succeeded ]
	wait_until 30 machine_env_is canary PLAIN_VALUE "$VALUE"
	machine_env_is canary CANARY_SECRET "$CANARY"
	# the api sealed it: stored as the CLI stores a value, digest listed, signed by the api's deployer
	[ "$(api_get /v1/apps/canary/secrets | jq -r '[.secrets[].name] | join(",")')" = CANARY_SECRET,PLAIN_VALUE ]
	api_get "/v1/audit?app=canary" | jq -e --arg d "$API_DEPLOYER_ID" \
		'[.events[] | select(.action == "secrets.set" and .outcome == "ok" and .detail.deployer == $d) |
		  .detail.set[].name] == ["PLAIN_VALUE"]' >/dev/null
	[ "$(store_sql "SELECT count(*) FROM signatures WHERE signer = '$API_DEPLOYER_ID'")" = 2 ]
	# the keeper's open names it as the statement's and the manifest's signer
	store_sql "SELECT detail FROM audit_events WHERE action = 'secrets.open' AND outcome = 'ok'" |
		jq -e --arg d "$API_DEPLOYER_ID" 'select(.deployer == $d and .manifest_deployer == $d)' >/dev/null
	# the CLI co-signs what the api signed: a later change through the CLI rolls out
	run_logged cli secrets set -a canary OTHER=x
	[ "$status" -eq 0 ]
	# an app of another org: no key of the api covers it
	other=$("$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --org initech)
	COFFER_TOKEN="$other" "$COFFER" apps create theirs >/dev/null
	put_plain "$other" theirs PLAIN_VALUE "$VALUE"
	[ "$CODE" = 400 ]
	message_has "value of 'PLAIN_VALUE' is plaintext and this org does not allow plaintext values"
	[ "$(curl -sS -H "Authorization: Bearer $other" "$API_URL/v1/apps/theirs/secrets" | jq -r .version)" = 0 ]
	# a body mixing plaintext with a signer is refused: the api signs only what it sealed
	CODE=$(jq -cn --arg v "$VALUE" --arg s "$(deployer_id)" '{secrets: {MIXED: $v}, signer: $s}' |
		curl -sS -o "$T/last.body" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
			--data-binary @- "$API_URL/v1/apps/canary/secrets")
	BODY=$(cat "$T/last.body")
	[ "$CODE" = 400 ]
	message_has "a change with plaintext values holds no sealed value, signer"
}

@test "an api enrolled for one app allows plaintext for that app only" {
	"$COFFER" apps create web >/dev/null
	"$COFFER" apps create api-only >/dev/null
	enrol_api --app api-only
	put_plain "$ADMIN_TOKEN" web PLAIN_VALUE "$VALUE"
	[ "$CODE" = 400 ]
	message_has "this org does not allow plaintext values"
	put_plain "$ADMIN_TOKEN" api-only PLAIN_VALUE "$VALUE"
	[ "$CODE" = 200 ]
	[ "$(jq -r .status <<<"$BODY")" = staged ]
	[ "$(head_of api-only)" = 1 ]
	# a NUL, as before, is refused naming the secret
	CODE=$(jq -cn '{secrets: {NUL_VALUE: {base64: "YQBi"}}}' |
		curl -sS -o "$T/last.body" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
			--data-binary @- "$API_URL/v1/apps/api-only/secrets")
	BODY=$(cat "$T/last.body")
	[ "$CODE" = 400 ]
	message_has "value of 'NUL_VALUE' contains a NUL byte"
	[ "$(head_of api-only)" = 1 ]
}

@test "revoking the api's key: refused at the api at once, and at the keeper when the row is put back" {
	agents_up 1
	deploy canary -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started canary 1
	enrol_api
	put_plain "$ADMIN_TOKEN" canary FIRST "$VALUE"
	[ "$CODE" = 201 ]
	wait_until 90 release_done canary "$(jq -r .release <<<"$BODY")"
	wait_until 30 machine_env_is canary FIRST "$VALUE"
	if [ -n "${PG_SCHEMA:-}" ]; then hexmac="encode(mac, 'hex')"; else hexmac="hex(mac)"; fi
	mac=$(store_sql "SELECT $hexmac FROM deployers WHERE id = '$API_DEPLOYER_ID'")
	# the org's admin revokes the api's key
	run_logged "$COFFER" deployers revoke "$API_DEPLOYER_ID"
	[ "$status" -eq 0 ]
	before=$(head_of canary)
	v=$(latest_release canary)
	put_plain "$ADMIN_TOKEN" canary SECOND "$VALUE-2"
	[ "$CODE" = 403 ]
	message_has "deployer '$API_DEPLOYER_ID' is revoked"
	[ "$(head_of canary)" = "$before" ]
	[ "$(latest_release canary)" = "$v" ]
	# a store writer puts the row back as it was: the api takes it, the keeper does not
	if [ -n "${PG_SCHEMA:-}" ]; then
		store_sql "UPDATE deployers SET revoked_at = 0, mac = decode('$mac', 'hex') WHERE id = '$API_DEPLOYER_ID'"
	else
		store_sql "UPDATE deployers SET revoked_at = 0, mac = X'$mac' WHERE id = '$API_DEPLOYER_ID'"
	fi
	put_plain "$ADMIN_TOKEN" canary SECOND "$VALUE-2"
	[ "$CODE" = 201 ]
	v2=$(jq -r .release <<<"$BODY")
	wait_until 120 release_done canary "$v2"
	[ "$(release_status canary "$v2")" = failed ]
	# no process got the value (the machine's restart with the release before fails too: the
	# api's key signed that one as well, and every release it signed is refused now)
	run ! grep -lsaF -- "$VALUE-2" /proc/[0-9]*/environ
	no_machine_has canary SECOND
	# the keeper's refusal is audited: the check, the revoked signer
	store_sql "SELECT detail FROM audit_events WHERE action = 'secrets.open' AND outcome LIKE 'refused%'" |
		jq -e --arg d "$API_DEPLOYER_ID" --argjson v "$v2" 'select(.release == $v and .failed.check == "statement_signature") |
			.refused_signatures[] | select(.deployer == $d and .why == "deployer key revoked")' >/dev/null
	# restarted with the revoked key (the row revoked again): logged, not used
	run_logged "$COFFER" deployers revoke "$API_DEPLOYER_ID"
	[ "$status" -eq 0 ]
	stop_pids "$API_PID"
	API_DEPLOYER_KEY="$T/api-deployer.key" api_start "${API_URL#https://}"
	grep -q "deployer_key_revoked.*$API_DEPLOYER_ID" "$T/api.log"
	put_plain "$ADMIN_TOKEN" canary THIRD "$VALUE-3"
	[ "$CODE" = 400 ]
	message_has "value of 'THIRD' is plaintext and this org does not allow plaintext values"
}
