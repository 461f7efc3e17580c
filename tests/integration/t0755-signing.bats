#!/usr/bin/env bats
# Signatures of deployers on real processes (issue 12, docs/API.md
# "Signatures in a request"): the api refuses an unsigned change, a signer
# that is no live deployer of the app, and a signature over another text
# than the one it would store (409, which the CLI answers by signing
# again); the CLI refuses to co-sign a manifest or a config that no
# deployer signed. Attacks by a compromised api are t0750's.

load helpers

bats_require_minimum_version 1.5.0

OWN_PLATFORM=(
	"a revoked deployer is refused by the api"
)

setup_file() { platform_start; }
teardown_file() { platform_stop; }
setup() { platform_test_start; }
teardown() { platform_test_stop; }

# post PATH BODY: with the admin token; sets CODE and BODY (kept under $T for the canary scan).
post() {
	CODE=$(curl -sS -o "$T/last.body" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
		-H 'Content-Type: application/json' --data-binary "$2" "$API_URL$1") || CODE=000
	BODY=$(cat "$T/last.body")
	printf 'POST %s -> %s %s\n' "$1" "$CODE" "$BODY" >>"$T/outputs.log"
}

message_has() {
	[[ "$(jq -r .error.message <<<"$BODY")" == *"$1"* ]] || { echo "message: $BODY" >&2; return 1; }
}

releases_count() {
	api_get "/v1/apps/$1/releases" | jq '.releases | length'
}

@test "a release without a deployer's signature is 403 and makes nothing" {
	post /v1/apps/canary/releases '{"cmd":["true"],"count":0}'
	[ "$CODE" = 403 ]
	message_has 'not signed by a deployer of this app: no "signer"'
	post /v1/apps/canary/releases '{"cmd":["true"],"count":0,"signer":"000000000000000000000000","release":{"sha256":"00","signature":"00"}}'
	[ "$CODE" = 403 ]
	message_has "not signed by a deployer of this app: no deployer '000000000000000000000000'"
	# a live deployer, but no signature of the statement
	post /v1/apps/canary/releases "{\"cmd\":[\"true\"],\"count\":0,\"signer\":\"$(deployer_id)\"}"
	[ "$CODE" = 403 ]
	message_has 'no "release" signature'
	[ "$(releases_count canary)" = 0 ]
	# the audit names the refusal
	[ "$(api_get "/v1/audit?app=canary" | jq '[.events[] | select(.action == "releases.create" and (.outcome | endswith("forbidden")))] | length')" = 3 ]
}

@test "a signature over another statement is 409 'changed meanwhile'; a bad signature over this one is 403" {
	run_logged cli deploy -a canary --count 0 -- true
	[ "$(releases_count canary)" = 1 ]
	config='{"cmd":["true"],"count":0,"env":{},"grace_ms":30000}'
	other=$(printf 'another text' | sha256sum | cut -d' ' -f1)
	sig=$(head -c 64 /dev/zero | base64 -w0 | tr '+/' '-_' | tr -d '=')
	post /v1/apps/canary/releases "{\"cmd\":[\"true\"],\"count\":0,\"signer\":\"$(deployer_id)\",\"release\":{\"sha256\":\"$other\",\"signature\":\"$sig\"}}"
	[ "$CODE" = 409 ]
	message_has "the app's release changed meanwhile: read again and sign again"
	# the statement's own hash with a signature that does not verify
	app_id=$(store_sql "SELECT id FROM apps WHERE name = 'canary'")
	manifest=$(store_sql "SELECT manifest FROM secret_versions WHERE app_id = '$app_id' AND version = 1")
	hash=$(printf 'coffer release v1\napp %s\nconfig %s\nsecrets 1\nmanifest %s\n' "$app_id" \
		"$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)" "$(printf '%s\n' "$manifest" | sha256sum | cut -d' ' -f1)" |
		sha256sum | cut -d' ' -f1)
	post /v1/apps/canary/releases "{\"cmd\":[\"true\"],\"count\":0,\"signer\":\"$(deployer_id)\",\"release\":{\"sha256\":\"$hash\",\"signature\":\"$sig\"}}"
	[ "$CODE" = 403 ]
	message_has "the release signature of deployer '$(deployer_id)' does not verify"
	[ "$(releases_count canary)" = 1 ]
}

@test "concurrent changes all land: the CLI signs again after a 409" {
	pids=()
	for i in 1 2 3 4; do
		"$COFFER" secrets set -a canary --stage "RACE_$i=v$i" >"$T/race-$i.out" 2>&1 &
		pids+=($!)
	done
	for i in 1 2 3 4; do
		wait "${pids[$((i - 1))]}" || { cat "$T/race-$i.out" >&2; false; }
	done
	run "$COFFER" secrets list -a canary --json
	[ "$(jq -r '[.[].name] | join(",")' <<<"$output")" = CANARY_SECRET,RACE_1,RACE_2,RACE_3,RACE_4 ]
	# each change's audit event names the deployer who signed it
	[ "$(api_get "/v1/audit?app=canary" | jq -r --arg d "$(deployer_id)" \
		'[.events[] | select(.action == "secrets.set" and .outcome == "ok") | .detail.deployer == $d] | unique | join(",")')" = true ]
}

@test "the CLI does not co-sign a manifest or a config no deployer signed" {
	run_logged cli deploy -a canary --count 0 -- true
	head=$(api_get /v1/apps/canary/secrets | jq -r .version)
	store_sql "DELETE FROM signatures"
	run "$COFFER" secrets set -a canary --stage OTHER=x
	[ "$status" -ne 0 ]
	[[ "$output" == *"secrets version $head is not signed by a deployer of this app: refusing to sign it"* ]]
	run "$COFFER" scale count 0 -a canary
	[ "$status" -ne 0 ]
	[[ "$output" == *"release v1 is not signed by a deployer of this app: refusing to sign its config"* ]]
	[ "$(api_get /v1/apps/canary/secrets | jq -r .version)" = "$head" ]
	[ "$(releases_count canary)" = 1 ]
	# a new deploy signs its own config and co-signs nothing unsigned but the head: refused too
	run "$COFFER" deploy -a canary --count 0 -- true
	[ "$status" -ne 0 ]
	[[ "$output" == *"is not signed by a deployer of this app"* ]]
}

@test "a revoked deployer is refused by the api" {
	store_sql "UPDATE deployers SET revoked_at = 1"
	run "$COFFER" secrets set -a canary --stage OTHER=x
	[ "$status" -ne 0 ]
	[[ "$output" == *"not signed by a deployer of this app: deployer '$(deployer_id)' is revoked"* ]]
	run "$COFFER" deploy -a canary --count 0 -- true
	[ "$status" -ne 0 ]
	[[ "$output" == *"is revoked"* ]]
	[ "$(releases_count canary)" = 0 ]
}
