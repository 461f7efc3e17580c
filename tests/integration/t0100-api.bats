#!/usr/bin/env bats
# The api's HTTP contract (docs/API.md), driven with curl against real
# keeper and api processes: health, apps, secrets (names and digests,
# never values), tokens and roles, org and app isolation, every limit of a
# secrets change (each refused before anything is stored), and the audit
# chain. platform_stop fails a test whose logs, outputs or store hold the
# canary value in plaintext.

load helpers

bats_require_minimum_version 1.5.0

# The tests share one platform (each starts with the apps of a new one),
# except these: they stop a role, edit the store, or look at the audit log
# (whose first page the others fill).
OWN_PLATFORM=(
	"apps create: with the keeper down, 503 and no half-made app"
	"the api refuses key files that others may read"
	"a public key replaced in the store is refused, nothing sealed to it"
	"audit: every mutating call is an event (refusals too), names and digests only; the chain verifies"
	"audit: a tampered event is found by verify"
	"a 10 MB body is refused (413) before it is read"
	"an expired token is 401"
)

setup_file() { platform_start; }
teardown_file() { platform_stop; }

setup() {
	platform_test_start
	# Request bodies carry values: they live outside $T, which is scanned for the canary.
	REQ=$(mktemp -d "${TMPDIR:-/tmp}/coffer-req.XXXXXX")
	TOKEN=$ADMIN_TOKEN
}

teardown() {
	rm -rf "$REQ"
	platform_test_stop
}

# call METHOD PATH [BODY|@FILE]: one request with $TOKEN; sets CODE and BODY.
# Every answer is kept under $T, so the canary scan covers it.
call() {
	local args=(-sS -o "$T/last.body" -D "$T/last.headers" -w '%{http_code}' -X "$1")
	[ -n "$TOKEN" ] && args+=(-H "Authorization: Bearer $TOKEN")
	if [ $# -ge 3 ]; then
		args+=(-H 'Content-Type: application/json' --data-binary "$3")
	fi
	CODE=$(curl "${args[@]}" "$API_URL$2") || CODE=000
	BODY=$(cat "$T/last.body" 2>/dev/null || true)
	printf '%s %s -> %s %s\n' "$1" "$2" "$CODE" "$BODY" >>"$T/outputs.log"
}

# The secrets version of an app, as the admin sees it.
version_of() {
	curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" "$API_URL/v1/apps/$1/secrets" | jq -r .version
}

# expect CODE ERROR-CODE [MESSAGE-PART]: the last answer was this error.
expect_error() {
	[ "$CODE" = "$1" ] || { echo "status $CODE, expected $1: $BODY" >&2; return 1; }
	[ "$(jq -r .error.code <<<"$BODY")" = "$2" ] || { echo "code: $BODY" >&2; return 1; }
	if [ $# -ge 3 ]; then
		[[ "$(jq -r .error.message <<<"$BODY")" == *"$3"* ]] || { echo "message: $BODY" >&2; return 1; }
	fi
}

# refused_unstored BODY|@FILE CODE ERROR-CODE [MESSAGE-PART]: a secrets change is
# refused with that error and the app's secrets version does not move.
refused_unstored() {
	local before
	before=$(version_of canary)
	call POST /v1/apps/canary/secrets "$1"
	shift
	expect_error "$@"
	[ "$(version_of canary)" = "$before" ]
	[[ "$BODY" != *"$CANARY"* ]]
}

# cli_set APP ARGS...: `coffer secrets set -a APP ARGS` with $TOKEN (the CLI
# seals and signs: the api takes no plaintext value); sets status and output.
cli_set() {
	local app=$1
	shift
	run env COFFER_TOKEN="${TOKEN:-$ADMIN_TOKEN}" "$COFFER" secrets set -a "$app" "$@"
	printf 'secrets set -a %s -> %s %s\n' "$app" "$status" "$output" >>"$T/outputs.log"
}

# new_token ROLE [APP] [EXPIRY]: prints a new token of the admin's org.
new_token() {
	local body
	body=$(jq -nc --arg role "$1" --arg app "${2:-}" --arg expiry "${3:-}" \
		'{role: $role} + (if $app != "" then {app: $app} else {} end) + (if $expiry != "" then {expiry: $expiry} else {} end)')
	curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" --data-binary "$body" "$API_URL/v1/tokens" | jq -r .token
}

token_id_of() {
	curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" --data-binary "$(jq -nc --arg r "$1" '{role: $r}')" \
		"$API_URL/v1/tokens" >"$REQ/tok.json"
	jq -r .id "$REQ/tok.json"
}

# ---- health, apps ----

@test "health answers without a token, with a request id" {
	TOKEN= call GET /v1/health
	[ "$CODE" = 200 ]
	[ "$(jq -c . <<<"$BODY")" = '{"status":"ok","role":"api","version":"0.1.0"}' ]
	grep -qiE '^x-request-id: [0-9a-f]{16}' "$T/last.headers"
}

@test "apps: create, list, get, refuse a taken or malformed name, destroy" {
	call POST /v1/apps '{"name":"web"}'
	[ "$CODE" = 201 ]
	[ "$(jq -r .name <<<"$BODY")" = web ]
	[ "$(jq -r .key_version <<<"$BODY")" = 1 ]
	[[ "$(jq -r .created_at <<<"$BODY")" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]]
	call POST /v1/apps '{"name":"web"}'
	expect_error 409 conflict "app 'web' exists already"
	call POST /v1/apps '{"name":"Web"}'
	expect_error 400 invalid_argument "must match"
	call POST /v1/apps '{"name":"web","extra":1}'
	expect_error 400 invalid_argument 'unknown field'
	call GET /v1/apps
	[ "$CODE" = 200 ]
	[ "$(jq -r '[.apps[].name] | join(",")' <<<"$BODY")" = canary,web ]
	[ "$(jq -r '.apps[] | select(.name == "canary") | .secrets_count' <<<"$BODY")" = 1 ]
	call GET /v1/apps/web
	[ "$CODE" = 200 ]
	[ "$(jq -r .secrets_version <<<"$BODY")" = 0 ]
	call DELETE /v1/apps/web
	[ "$CODE" = 200 ]
	[ "$(jq -c . <<<"$BODY")" = '{"name":"web","destroyed":true}' ]
	call GET /v1/apps/web
	expect_error 404 not_found "app 'web' not found"
}

@test "apps create: with the keeper down, 503 and no half-made app" {
	kill -TERM "$KEEPER_PID"
	wait "$KEEPER_PID" || true
	call POST /v1/apps '{"name":"orphan"}'
	expect_error 503 unavailable "keeper unavailable"
	call GET /v1/apps/orphan
	expect_error 404 not_found
	keeper_start
	# the api was told the old keeper URL: the name is still free once it is back
	api_restart_with_keeper
	call POST /v1/apps '{"name":"orphan"}'
	[ "$CODE" = 201 ]
}

api_restart_with_keeper() {
	kill -TERM "$API_PID"
	wait "$API_PID" || true
	api_start
}

@test "the api refuses key files that others may read" {
	kill -TERM "$API_PID"
	wait "$API_PID" || true
	args=(api --state-dir "$T/api" --store "$STORE_URL" --listen 127.0.0.1:0 --keeper "$KEEPER_URL"
	      --keeper-pub "$T/keeper/keeper.pub" --keeper-credential "$T/keeper/api.credential"
	      --rows-key "$T/keeper/api.rows.key" --digest-key "$T/keeper/api.digest.key")
	local f
	for f in api.digest.key api.rows.key; do
		[ "$(stat -c %a "$T/keeper/$f")" = 600 ]
		chmod 644 "$T/keeper/$f"
		run_logged "$COFFER" "${args[@]}"
		[ "$status" -ne 0 ]
		[[ "$output" == *"key '$T/keeper/$f'"*"group or others may read"* ]]
		chmod 600 "$T/keeper/$f"
	done
	chmod 640 "$T/keeper/api.credential"
	run_logged "$COFFER" "${args[@]}"
	[ "$status" -ne 0 ]
	[[ "$output" == *"keeper credential"*"group or others may read"* ]]
	chmod 600 "$T/keeper/api.credential"
	api_start
	call GET /v1/apps/canary/secrets
	[ "$CODE" = 200 ]
}

# ---- secrets ----

@test "secrets: set, list names and digests, stage, unchanged, unset" {
	call POST /v1/apps '{"name":"web"}'
	# a plaintext value, as a string or in base64, is refused naming the secret only
	call POST /v1/apps/web/secrets "{\"secrets\":{\"B_KEY\":\"$CANARY-b\"}}"
	expect_error 400 invalid_argument "value of 'B_KEY' is plaintext"
	[[ "$BODY" != *"$CANARY"* ]]
	call POST /v1/apps/web/secrets "{\"secrets\":{\"A_KEY\":{\"base64\":\"$(printf '%s-a' "$CANARY" | base64 -w0)\"}}}"
	expect_error 400 invalid_argument "value of 'A_KEY' is plaintext"
	call GET /v1/apps/web/secrets
	[ "$(jq -r .version <<<"$BODY")" = 0 ]

	printf '%s-a' "$CANARY" >"$REQ/a"
	cli_set web "B_KEY=$CANARY-b" A_KEY=- <"$REQ/a"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Secrets are staged for the first deployment (version 1)"* ]]

	call GET /v1/apps/web/secrets
	[ "$CODE" = 200 ]
	[ "$(jq -r .app <<<"$BODY")" = web ]
	[ "$(jq -r .version <<<"$BODY")" = 1 ]
	[ "$(jq -r '[.secrets[].name] | join(",")' <<<"$BODY")" = A_KEY,B_KEY ]
	[ "$(jq -r '[.secrets[].digest | test("^[0-9a-f]{32}$")] | all' <<<"$BODY")" = true ]
	[ "$(jq -r '[.secrets[].status] | unique | join(",")' <<<"$BODY")" = staged ]
	[ "$(jq -r '.secrets[0] | keys | join(",")' <<<"$BODY")" = created_at,digest,name,status,updated_at ]
	[[ "$BODY" != *"$CANARY"* ]]
	digest_b=$(jq -r '.secrets[1].digest' <<<"$BODY")

	# the same value again (the same digest): no new version
	cli_set web "B_KEY=$CANARY-b"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Nothing changed: the secrets are already as given (version 1)"* ]]
	# unsetting an absent name changes nothing either
	run "$COFFER" secrets unset -a web NOPE
	[[ "$output" == *"Nothing changed: the secrets are already as given (version 1)"* ]]

	cli_set web --stage "B_KEY=$CANARY-c"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Secrets are staged as version 2"* ]]
	call GET /v1/apps/web/secrets
	[ "$(jq -r '.secrets[1].digest' <<<"$BODY")" != "$digest_b" ]

	run "$COFFER" secrets unset -a web A_KEY
	[[ "$output" == *"(version 3)"* ]]
	call GET /v1/apps/web/secrets
	[ "$(jq -r '[.secrets[].name] | join(",")' <<<"$BODY")" = B_KEY ]
}

@test "digests are keyed per app: one value, two apps, two digests" {
	call POST /v1/apps '{"name":"web"}'
	cli_set web "CANARY_SECRET=$CANARY"
	[ "$status" -eq 0 ]
	a=$(curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" "$API_URL/v1/apps/canary/secrets" | jq -r .secrets[0].digest)
	b=$(curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" "$API_URL/v1/apps/web/secrets" | jq -r .secrets[0].digest)
	[[ "$a" =~ ^[0-9a-f]{32}$ ]]
	[[ "$b" =~ ^[0-9a-f]{32}$ ]]
	[ "$a" != "$b" ]
}

@test "no route returns a value; neither process logs one" {
	read_tok=$(new_token read)
	for path in /v1/health /v1/apps /v1/apps/canary /v1/apps/canary/secrets /v1/tokens /v1/audit /v1/audit/verify; do
		call GET "$path"
		[ "$CODE" = 200 ]
		[[ "$BODY" != *"$CANARY"* ]]
		TOKEN=$read_tok call GET "$path"
		[[ "$BODY" != *"$CANARY"* ]]
	done
	call POST /v1/apps/canary/secrets/deploy '{}'
	[[ "$BODY" != *"$CANARY"* ]]
	run ! grep -qF -- "$CANARY" "$T/api.log"
	# the value is stored sealed: its bytes are nowhere in the store either
	store_dump "$REQ/dump.sql"
	[ -s "$REQ/dump.sql" ]
	run ! dump_holds "$REQ/dump.sql" "$CANARY"
}

@test "secrets deploy with no machines is a conflict that says so" {
	call POST /v1/apps/canary/secrets/deploy
	expect_error 409 conflict "app 'canary' has no machines to deploy to; the secrets are staged for the first deployment"
	call POST /v1/apps/canary/secrets/deploy '{"x":1}'
	expect_error 400 invalid_argument
}

@test "a public key replaced in the store is refused, nothing sealed to it" {
	call POST /v1/apps '{"name":"other"}'
	before=$(version_of canary)
	posts=$(set_posts)
	store_sql "UPDATE app_keys SET public_key = (SELECT k.public_key FROM app_keys k JOIN apps a ON a.id = k.app_id WHERE a.name = 'other') WHERE app_id = (SELECT id FROM apps WHERE name = 'canary')"
	# the CLI checks the key with the keeper key it pinned: nothing is sealed or sent
	cli_set canary "NEW=$CANARY-x"
	[ "$status" -ne 0 ]
	[[ "$output" == *"the app's public key is not signed by the keeper you logged in with"* ]]
	[ "$(version_of canary)" = "$before" ]
	[ "$(set_posts)" = "$posts" ]
}

# How many secrets-set requests the api has logged for the app canary.
set_posts() {
	grep -cE 'event=http_request method=POST .*path=/v1/apps/canary/secrets( |$)' "$T/api.log" || [ $? -eq 1 ]
}

# ---- tokens and roles ----

@test "tokens: create (shown once), list (never the token), revoke twice" {
	call POST /v1/tokens '{"role":"deploy","app":"canary","expiry":"30d","description":"ci"}'
	[ "$CODE" = 201 ]
	tok=$(jq -r .token <<<"$BODY")
	id=$(jq -r .id <<<"$BODY")
	[[ "$tok" =~ ^coffer_[A-Za-z0-9_-]{43}$ ]]
	[[ "$id" =~ ^tok_[0-9a-f]{24}$ ]]
	[ "$(jq -r .role <<<"$BODY")" = deploy ]
	[ "$(jq -r .app <<<"$BODY")" = canary ]
	[ "$(jq -r .expires_at <<<"$BODY")" != null ]
	call GET /v1/tokens
	[ "$CODE" = 200 ]
	[[ "$BODY" != *"$tok"* ]]
	[ "$(jq -r --arg id "$id" '.tokens[] | select(.id == $id) | .description' <<<"$BODY")" = ci ]
	[ "$(jq -r --arg id "$id" '.tokens[] | select(.id == $id) | .app' <<<"$BODY")" = canary ]
	run ! grep -qF -- "$tok" "$T/api.log"
	call DELETE "/v1/tokens/$id"
	[ "$CODE" = 200 ]
	first=$(jq -r .revoked_at <<<"$BODY")
	[ "$first" != null ]
	call DELETE "/v1/tokens/$id"
	[ "$CODE" = 200 ]
	[ "$(jq -r .revoked_at <<<"$BODY")" = "$first" ]
	call DELETE /v1/tokens/tok_000000000000000000000000
	expect_error 404 not_found
	call POST /v1/tokens '{"role":"root"}'
	expect_error 400 invalid_argument
	call POST /v1/tokens '{"role":"admin","app":"canary"}'
	expect_error 400 invalid_argument
	call POST /v1/tokens '{"role":"read","expiry":"forever"}'
	expect_error 400 invalid_argument
}

@test "roles: read lists, deploy sets, only admin manages apps, tokens and audit" {
	read_tok=$(new_token read)
	deploy_tok=$(new_token deploy)
	TOKEN=$read_tok call GET /v1/apps/canary/secrets
	[ "$CODE" = 200 ]
	TOKEN=$read_tok call GET /v1/apps
	[ "$CODE" = 200 ]
	TOKEN=$read_tok call POST /v1/apps '{"name":"nope"}'
	expect_error 403 forbidden
	TOKEN=$deploy_tok cli_set canary DEPLOYED=x
	[ "$status" -eq 0 ]
	TOKEN=$deploy_tok call POST /v1/apps '{"name":"nope"}'
	expect_error 403 forbidden
	TOKEN=$deploy_tok call DELETE /v1/apps/canary
	expect_error 403 forbidden
	TOKEN=$deploy_tok call GET /v1/tokens
	expect_error 403 forbidden
	TOKEN=$deploy_tok call GET /v1/audit
	expect_error 403 forbidden
	TOKEN=$read_tok call POST /v1/tokens '{"role":"admin"}'
	expect_error 403 forbidden
}

@test "a read token setting a secret is 403 and stores nothing" {
	TOKEN=$(new_token read)
	refused_unstored "{\"secrets\":{\"X\":\"$CANARY-r\"}}" 403 forbidden
	refused_unstored '{"secrets":{"CANARY_SECRET":null}}' 403 forbidden
}

@test "another org's app is 404, never 403, on every app route" {
	other=$("$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --org globex)
	[[ "$other" =~ ^coffer_ ]]
	run "$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --org globex
	[ "$status" -eq 6 ]
	[[ "$output" == *"org 'globex' exists already"* ]]
	before=$(version_of canary)
	TOKEN=$other call GET /v1/apps/canary
	expect_error 404 not_found "app 'canary' not found"
	TOKEN=$other call GET /v1/apps/canary/secrets
	expect_error 404 not_found "app 'canary' not found"
	TOKEN=$other call POST /v1/apps/canary/secrets '{"secrets":{"X":"y"}}'
	expect_error 404 not_found "app 'canary' not found"
	TOKEN=$other call DELETE /v1/apps/canary
	expect_error 404 not_found
	TOKEN=$other call POST /v1/apps/canary/secrets/deploy
	expect_error 404 not_found
	TOKEN=$other call POST /v1/tokens '{"role":"deploy","app":"canary"}'
	expect_error 404 not_found
	TOKEN=$other call GET /v1/apps
	[ "$(jq -c .apps <<<"$BODY")" = '[]' ]
	TOKEN=$other call GET /v1/audit
	[ "$(jq -r '[.events[] | select(.app == "canary" and .outcome == "ok")] | length' <<<"$BODY")" = 0 ]
	[ "$(version_of canary)" = "$before" ]
}

@test "an app-limited token sees only its app: another app is 404" {
	call POST /v1/apps '{"name":"web"}'
	TOKEN=$(new_token deploy web)
	call GET /v1/apps
	[ "$(jq -r '[.apps[].name] | join(",")' <<<"$BODY")" = web ]
	cli_set web OK=fine
	[ "$status" -eq 0 ]
	refused_unstored '{"secrets":{"X":"y"}}' 404 not_found "app 'canary' not found"
	call GET /v1/apps/canary/secrets
	expect_error 404 not_found
}

# ---- credentials ----

@test "a missing token is 401" {
	TOKEN= call GET /v1/apps
	expect_error 401 unauthenticated "missing bearer token"
	TOKEN= call POST /v1/apps/canary/secrets '{"secrets":{"X":"y"}}'
	expect_error 401 unauthenticated
	[ "$(version_of canary)" = 1 ]
}

@test "malformed tokens are 401 and never echoed" {
	for bad in "nope" "coffer_short" "coffer_$(printf 'A%.0s' $(seq 44))" "coffer_$(printf '!%.0s' $(seq 43))" \
		"xoffer_$(printf 'A%.0s' $(seq 43))"; do
		CODE=$(curl -sS -o "$T/last.body" -w '%{http_code}' -H "Authorization: Bearer $bad" "$API_URL/v1/apps")
		BODY=$(cat "$T/last.body")
		expect_error 401 unauthenticated "malformed bearer token"
		[[ "$BODY" != *"$bad"* ]]
	done
	CODE=$(curl -sS -o "$T/last.body" -w '%{http_code}' -H "Authorization: Basic $ADMIN_TOKEN" "$API_URL/v1/apps")
	BODY=$(cat "$T/last.body")
	expect_error 401 unauthenticated "malformed bearer token"
	TOKEN="coffer_$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')" call GET /v1/apps
	expect_error 401 unauthenticated "unknown token"
	run ! grep -qF -- "$ADMIN_TOKEN" "$T/api.log"
}

@test "an expired token is 401" {
	# a token row is authenticated (an edited expiry would be refused as tampered): one that runs out
	TOKEN=$(new_token deploy "" 3s)
	call GET /v1/apps
	[ "$CODE" = 200 ]
	sleep 3.2
	refused_unstored '{"secrets":{"X":"y"}}' 401 unauthenticated "token expired"
}

@test "a revoked token is 401" {
	call POST /v1/tokens '{"role":"deploy"}'
	tok=$(jq -r .token <<<"$BODY")
	id=$(jq -r .id <<<"$BODY")
	call DELETE "/v1/tokens/$id"
	[ "$CODE" = 200 ]
	TOKEN=$tok
	refused_unstored '{"secrets":{"X":"y"}}' 401 unauthenticated "token revoked"
}

# ---- secrets limits: each refused before anything is stored ----

@test "secret name: empty" {
	refused_unstored "{\"secrets\":{\"\":\"$CANARY\"}}" 400 invalid_argument "must match"
}

@test "secret name: leading digit" {
	refused_unstored "{\"secrets\":{\"OK\":\"1\",\"1ABC\":\"$CANARY\"}}" 400 invalid_argument "secret name '1ABC' must match"
}

@test "secret name: dash" {
	refused_unstored "{\"secrets\":{\"A-B\":\"$CANARY\"}}" 400 invalid_argument "secret name 'A-B' must match"
}

@test "secret name: dot" {
	refused_unstored "{\"secrets\":{\"A.B\":\"$CANARY\"}}" 400 invalid_argument "secret name 'A.B' must match"
}

@test "secret name: space" {
	refused_unstored "{\"secrets\":{\"A B\":\"$CANARY\"}}" 400 invalid_argument "secret name 'A B' must match"
}

@test "secret name: non-ASCII is named by its position" {
	refused_unstored "{\"secrets\":{\"GOOD\":\"x\",\"CAFÉ\":\"$CANARY\"}}" 400 invalid_argument \
		"secret name at position 2 must match"
}

@test "secret name: 256 bytes refused, 255 accepted" {
	n256=$(printf 'N%.0s' $(seq 256))
	refused_unstored "{\"secrets\":{\"$n256\":\"$CANARY\"}}" 400 invalid_argument "longer than 255 bytes"
	cli_set canary "${n256:1}=$CANARY"
	[ "$status" -eq 0 ]
	[ "$(version_of canary)" = 2 ]
}

@test "secret name: the COFFER_ prefix is reserved" {
	refused_unstored "{\"secrets\":{\"COFFER_TOKEN\":\"$CANARY\"}}" 400 invalid_argument "secret name 'COFFER_TOKEN' is reserved"
}

@test "secret value: a NUL byte is refused, naming the secret" {
	# the api cannot see a value: the CLI refuses it before sealing (and the keeper at open)
	printf '%s\0tail' "$CANARY" >"$REQ/nul"
	before=$(version_of canary)
	cli_set canary WITH_NUL=- <"$REQ/nul"
	[ "$status" -ne 0 ]
	[[ "$output" == *"'WITH_NUL'"*"NUL byte"* ]]
	[[ "$output" != *"$CANARY"* ]]
	[ "$(version_of canary)" = "$before" ]
	# in plaintext, the api refuses it as plaintext, naming the secret only
	refused_unstored "{\"secrets\":{\"WITH_NUL\":\"$CANARY\\u0000tail\"}}" 400 invalid_argument \
		"value of 'WITH_NUL' is plaintext"
	refused_unstored '{"secrets":{"B64_NUL":{"base64":"YQBi"}}}' 400 invalid_argument \
		"value of 'B64_NUL' is plaintext"
}

@test "secret value: 64 KiB + 1 refused (413), 64 KiB accepted" {
	# the api sees the sealed value's size: one of 64 KiB + 1 of value (48 bytes of seal more)
	sealed=$(head -c $((65537 + 48)) /dev/zero | base64 -w0 | tr '+/' '-_' | tr -d '=')
	printf '{"secrets":{"BIG":{"sealed":"%s","digest":"%032d","value_id":"%024d"}}}' "$sealed" 0 0 >"$REQ/over.json"
	refused_unstored "@$REQ/over.json" 413 too_large "value of 'BIG' is larger than 65536 bytes"
	# the CLI refuses it before sealing
	head -c 65537 /dev/zero | tr '\0' v >"$REQ/big"
	cli_set canary BIG=- <"$REQ/big"
	[ "$status" -ne 0 ]
	[[ "$output" == *"longer than 65536 bytes"* ]]
	head -c 65536 /dev/zero | tr '\0' v >"$REQ/max"
	cli_set canary BIG=- <"$REQ/max"
	[ "$status" -eq 0 ]
	[ "$(version_of canary)" = 2 ]
}

@test "the 1,001st secret is refused (413); 1,000 are fine" {
	# canary holds 1 secret: 999 more make 1,000
	seq 1 999 | awk '{ printf "S_%d=v%d\n", $1, $1 }' >"$REQ/999.env"
	run "$COFFER" secrets import -a canary <"$REQ/999.env"
	[ "$status" -eq 0 ]
	[ "$(curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" "$API_URL/v1/apps/canary" | jq -r .secrets_count)" = 1000 ]
	before=$(version_of canary)
	cli_set canary ONE_TOO_MANY=x
	[ "$status" -ne 0 ]
	[[ "$output" == *"at most 1000"* ]]
	[ "$(version_of canary)" = "$before" ]
	# replacing one of them is not a new name
	cli_set canary S_1=changed
	[ "$status" -eq 0 ]
}

@test "1 MiB + 1 of values is refused (413); 1 MiB is fine" {
	# canary holds CANARY_SECRET; 15 x 64 KiB + the rest up to 1 MiB exactly
	have=${#CANARY}
	chunk=$(head -c 65536 /dev/zero | tr '\0' m)
	rest=$((1048576 - have - 15 * 65536))
	{
		for i in $(seq 1 15); do printf 'M_%d=%s\n' "$i" "$chunk"; done
		printf 'M_REST=%s\n' "$(head -c "$rest" /dev/zero | tr '\0' r)"
	} >"$REQ/mib.env"
	run "$COFFER" secrets import -a canary <"$REQ/mib.env"
	[ "$status" -eq 0 ]
	before=$(version_of canary)
	cli_set canary ONE_BYTE=x
	[ "$status" -ne 0 ]
	[[ "$output" == *"1 MiB"* ]]
	[ "$(version_of canary)" = "$before" ]
}

@test "malformed JSON is 400" {
	refused_unstored '{"secrets":{"A":"b"}' 400 invalid_argument "invalid request body"
	refused_unstored '{"secrets":{"A":"b"}} trailing' 400 invalid_argument
	refused_unstored '{"secrets":{"A":"b","A":"c"}}' 400 invalid_argument "duplicate"
}

@test "wrong types are 400" {
	refused_unstored '{"secrets":["A"]}' 400 invalid_argument
	refused_unstored '{"secrets":{"A":1}}' 400 invalid_argument "value of 'A' must be null or {"
	refused_unstored '{"secrets":{"A":true}}' 400 invalid_argument "value of 'A' must be null or {"
	refused_unstored '{"secrets":{"A":{"sealed":1}}}' 400 invalid_argument "value of 'A'"
	refused_unstored "{\"secrets\":{\"A\":{\"sealed\":\"!!\",\"digest\":\"$(printf '%032d' 0)\",\"value_id\":\"$(printf '%024d' 0)\"}}}" \
		400 invalid_argument "value of 'A' is not a sealed value"
	refused_unstored '{"secrets":{"A":"b"},"stage":"yes"}' 400 invalid_argument
	refused_unstored '[]' 400 invalid_argument
}

@test "unknown fields are 400" {
	refused_unstored '{"secrets":{"A":"b"},"force":true}' 400 invalid_argument 'unknown field "force"'
	refused_unstored '{"secrets":{"A":{"base64":"YQ==","hex":"61"}}}' 400 invalid_argument "value of 'A'"
}

@test "a document nested 1,000 deep is refused" {
	{
		printf '{"secrets":{"A":'
		head -c 1000 /dev/zero | tr '\0' '['
		head -c 1000 /dev/zero | tr '\0' ']'
		printf '}}'
	} >"$REQ/deep.json"
	refused_unstored "@$REQ/deep.json" 413 too_large "nested too deeply"
}

@test "a 10 MB body is refused (413) before it is read" {
	head -c 10000000 /dev/zero | tr '\0' a >"$REQ/huge.json"
	refused_unstored "@$REQ/huge.json" 413 too_large
	# the api is still serving, and the refusal is audited with its sender
	call GET /v1/health
	[ "$CODE" = 200 ]
	call GET /v1/audit
	[ "$(jq -r '.events | last | .outcome' <<<"$BODY")" = error:too_large ]
	[[ "$(jq -r '.events | last | .actor' <<<"$BODY")" =~ ^tok_[0-9a-f]{24}$ ]]
}

@test "a 1 MB header is refused (431)" {
	before=$(version_of canary)
	printf 'X-Big: %s\r\n' "$(head -c 1000000 /dev/zero | tr "\\0" h)" >"$REQ/header.txt"
	CODE=$(curl -sS -o /dev/null -w '%{http_code}' -H "@$REQ/header.txt" -H "Authorization: Bearer $ADMIN_TOKEN" \
		--data-binary '{"secrets":{"X":"y"}}' "$API_URL/v1/apps/canary/secrets" 2>"$REQ/header.err") || CODE=000
	# 431; or, when the server's close (with the rest of the header still
	# unread) resets the connection before curl reads the answer, the reset
	[ "$CODE" = 431 ] || { [ "$CODE" = 000 ] && grep -q 'reset by peer' "$REQ/header.err"; } ||
		{ echo "status $CODE: $(cat "$REQ/header.err")" >&2; false; }
	[ "$(version_of canary)" = "$before" ]
	call GET /v1/health
	[ "$CODE" = 200 ]
}

@test "unknown routes are 404, other methods 405" {
	call GET /v1/nope
	expect_error 404 not_found
	call PUT /v1/apps '{}'
	[ "$CODE" = 405 ]
	grep -qi '^allow: ' "$T/last.headers"
}

# ---- audit ----

@test "audit: every mutating call is an event (refusals too), names and digests only; the chain verifies" {
	read_tok=$(new_token read)
	TOKEN=$read_tok call POST /v1/apps/canary/secrets "{\"secrets\":{\"X\":\"$CANARY-denied\"}}"
	[ "$CODE" = 403 ]
	TOKEN= call POST /v1/apps '{"name":"anon"}'
	[ "$CODE" = 401 ]
	cli_set canary "AUDITED=$CANARY-audited"
	[ "$status" -eq 0 ]
	run "$COFFER" secrets unset -a canary CANARY_SECRET
	[ "$status" -eq 0 ]
	call POST /v1/apps/canary/secrets '{"secrets":{"bad-name":"x"}}'
	[ "$CODE" = 400 ]

	call GET "/v1/audit?app=canary"
	[ "$CODE" = 200 ]
	[[ "$BODY" != *"$CANARY"* ]]
	[[ "$BODY" != *"$ADMIN_TOKEN"* ]]
	ok=$(jq -c '[.events[] | select(.action == "secrets.set" and .outcome == "ok")] | .[-2]' <<<"$BODY")
	[ "$(jq -r .detail.set[0].name <<<"$ok")" = AUDITED ]
	[[ "$(jq -r .detail.set[0].digest <<<"$ok")" =~ ^[0-9a-f]{32}$ ]]
	ok=$(jq -c '[.events[] | select(.action == "secrets.set" and .outcome == "ok")] | last' <<<"$BODY")
	[ "$(jq -r .detail.unset[0] <<<"$ok")" = CANARY_SECRET ]
	[[ "$(jq -r .actor <<<"$ok")" =~ ^tok_[0-9a-f]{24}$ ]]
	[[ "$(jq -r .request_id <<<"$ok")" =~ ^[0-9a-f]{16}$ ]]
	[ "$(jq -r '[.events[] | select(.outcome == "denied:forbidden")] | length' <<<"$BODY")" = 1 ]
	[ "$(jq -r '[.events[] | select(.outcome == "error:invalid_argument")] | length' <<<"$BODY")" = 1 ]
	# the anonymous attempt belongs to no org: this org's log does not show it
	call GET /v1/audit
	[ "$(jq -r '[.events[] | select(.actor == "anonymous")] | length' <<<"$BODY")" = 0 ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE actor = 'anonymous' AND outcome = 'denied:unauthenticated'")" = 1 ]
	# paging
	call GET "/v1/audit?after=1&limit=2"
	[ "$(jq -r '[.events[].seq] | join(",")' <<<"$BODY")" = 2,3 ]
	call GET "/v1/audit?limit=0"
	expect_error 400 invalid_argument

	call GET /v1/audit/verify
	[ "$CODE" = 200 ]
	[ "$(jq -r .ok <<<"$BODY")" = true ]
	[ "$(jq -r .events <<<"$BODY")" -ge 8 ]
}

@test "audit: a tampered event is found by verify" {
	call GET /v1/audit/verify
	[ "$CODE" = 200 ]
	store_sql "UPDATE audit_events SET action = 'apps.nothing' WHERE seq = 2"
	call GET /v1/audit/verify
	expect_error 409 conflict "audit chain broken at event 2"
	[ "$(jq -r .first_broken_seq <<<"$BODY")" = 2 ]
}
