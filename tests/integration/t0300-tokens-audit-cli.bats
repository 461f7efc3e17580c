#!/usr/bin/env bats
# coffer tokens, audit and apps, as a user types them, against real keeper
# and api processes: a token is shown once and never listed; what deploy and
# read tokens may do through the CLI, with the exit codes of each refusal;
# revoked and expired tokens; the audit log (names, never values), its
# filters, its JSON and its verification, tampered or not; apps list and
# destroy, with and without a confirmation.

load helpers

bats_require_minimum_version 1.5.0

# The tests share one platform (each starts with the apps of a new one),
# except these: they read the audit log (whose first page the others fill),
# edit the store, or leave the config file readable by others.
OWN_PLATFORM=(
	"audit lists who did what to which app: names, never values"
	"audit -a APP shows that app's events only"
	"audit does not take the app from COFFER_APP"
	"audit --json is the list of events, oldest first"
	"audit --after and --limit page the log"
	"audit verify: the chain is intact (exit 0)"
	"audit verify: a tampered event is named, exit 6"
	"audit lists the API's default page even when its events are large"
	"the token comes from the config file, which must be private (exit 4 otherwise)"
)

setup_file() { platform_start; }
teardown_file() { platform_stop; }
setup() { platform_test_start; }
teardown() { platform_test_stop; }

TOKEN_RE='^coffer_[A-Za-z0-9_-]{43}$'

# new_token ROLE [APP] [EXPIRY]: a token made through the CLI; sets TOK and TOK_ID.
new_token() {
	local args=(tokens create --role "$1" --json)
	[ -z "${2:-}" ] || args+=(--app "$2")
	[ -z "${3:-}" ] || args+=(--expiry "$3")
	"$COFFER" "${args[@]}" >"$T/token.json"
	TOK=$(jq -r .token "$T/token.json")
	TOK_ID=$(jq -r .id "$T/token.json")
	[[ "$TOK" =~ $TOKEN_RE ]]
}

# The secrets version of APP, as the admin sees it.
version_of() {
	"$COFFER" apps list --json | jq -r --arg n "$1" '.[] | select(.name == $n) | .secrets_version'
}

# ---- tokens ----

@test "tokens create --json: the API's answer, with the token" {
	"$COFFER" apps create web >/dev/null
	run_logged "$COFFER" tokens create --role deploy --app web --description ci --json
	[ "$status" -eq 0 ]
	[[ "$(jq -r .token <<<"$output")" =~ $TOKEN_RE ]]
	[[ "$(jq -r .id <<<"$output")" =~ ^tok_[0-9a-f]{24}$ ]]
	[ "$(jq -r .role <<<"$output")" = deploy ]
	[ "$(jq -r .app <<<"$output")" = web ]
	[ "$(jq -r .expires_at <<<"$output")" = null ]
}

@test "tokens create does not take the app from COFFER_APP" {
	run_logged env COFFER_APP=canary "$COFFER" tokens create --role deploy --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .app <<<"$output")" = null ]
}

@test "tokens create: the token alone on stdout, shown once; its id on stderr" {
	run_logged --separate-stderr "$COFFER" tokens create --role read
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" =~ $TOKEN_RE ]]
	[[ "$stderr" =~ This\ is\ token\ tok_[0-9a-f]{24}\ \(read\)\.\ It\ is\ shown\ this\ once ]]
	[[ "$stderr" != *"$output"* ]]
	# the token works
	run_logged "$COFFER" apps list -t "$output"
	[ "$status" -eq 0 ]
}

@test "tokens create: a bad role or expiry is a usage error, and no token is made" {
	before=$("$COFFER" tokens list --json | jq length)
	run_logged "$COFFER" tokens create --role root
	[ "$status" -eq 2 ]
	[[ "$output" == *"--role must be admin, deploy or read"* ]]
	run_logged "$COFFER" tokens create --role read --expiry forever
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid --expiry"* ]]
	run_logged "$COFFER" tokens create
	[ "$status" -eq 2 ]
	[ "$("$COFFER" tokens list --json | jq length)" = "$before" ]
}

@test "tokens list shows a token's id, role and app, never the token" {
	new_token deploy canary 30d
	run_logged "$COFFER" tokens list
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^ID\ +ROLE\ +APP\ +EXPIRES\ +REVOKED\ +CREATED$ ]]
	[[ "$output" =~ $TOK_ID\ +deploy\ +canary\ +in\ (29|30)d\ +-\ +[0-9]+s\ ago ]]
	[[ "$output" != *"$TOK"* ]]
	[[ "$output" != *"${TOK#coffer_}"* ]]
	[[ "$output" != *"$ADMIN_TOKEN"* ]]
	run_logged "$COFFER" tokens list --json
	[ "$status" -eq 0 ]
	[ "$(jq -r --arg id "$TOK_ID" '.[] | select(.id == $id) | .role' <<<"$output")" = deploy ]
	[[ "$output" != *"${TOK#coffer_}"* ]]
	[[ "$output" != *"${ADMIN_TOKEN#coffer_}"* ]]
}

@test "a deploy token for one app sets that app's secrets" {
	"$COFFER" apps create web >/dev/null
	new_token deploy web
	run_logged "$COFFER" secrets set -t "$TOK" -a web "DEPLOYED=$CANARY-deploy"
	[ "$status" -eq 0 ]
	run_logged "$COFFER" secrets list -t "$TOK" -a web
	[ "$status" -eq 0 ]
	[[ "$output" == *DEPLOYED* ]]
}

@test "a deploy token for one app: another app is not found (exit 5), nothing stored" {
	"$COFFER" apps create web >/dev/null
	new_token deploy web
	before=$(version_of canary)
	run_logged "$COFFER" secrets set -t "$TOK" -a canary "INTRUDER=$CANARY-intruder"
	[ "$status" -eq 5 ]
	[[ "$output" == *"app 'canary' not found"* ]]
	[[ "$output" != *"$CANARY"* ]]
	run_logged "$COFFER" secrets list -t "$TOK" -a canary
	[ "$status" -eq 5 ]
	[ "$(version_of canary)" = "$before" ]
}

@test "a deploy token cannot create apps (exit 4)" {
	new_token deploy canary
	run_logged "$COFFER" apps create -t "$TOK" sneaky
	[ "$status" -eq 4 ]
	[ "$("$COFFER" apps list --json | jq -r '[.[].name] | join(",")')" = canary ]
}

@test "a read token lists secrets" {
	new_token read
	run_logged "$COFFER" secrets list -t "$TOK" -a canary
	[ "$status" -eq 0 ]
	[[ "$output" == *CANARY_SECRET* ]]
}

@test "a read token cannot set secrets (exit 4), nothing stored" {
	new_token read
	before=$(version_of canary)
	run_logged "$COFFER" secrets set -t "$TOK" -a canary "READER=$CANARY-reader"
	[ "$status" -eq 4 ]
	[[ "$output" != *"$CANARY"* ]]
	run_logged "$COFFER" secrets unset -t "$TOK" -a canary CANARY_SECRET
	[ "$status" -eq 4 ]
	[ "$(version_of canary)" = "$before" ]
}

@test "tokens revoke: the token then fails with exit 3; the list shows it revoked" {
	new_token deploy
	run_logged "$COFFER" secrets list -t "$TOK" -a canary
	[ "$status" -eq 0 ]
	run_logged "$COFFER" tokens revoke "$TOK_ID"
	[ "$status" -eq 0 ]
	[ "$output" = "Revoked token $TOK_ID" ]
	run_logged "$COFFER" secrets list -t "$TOK" -a canary
	[ "$status" -eq 3 ]
	[[ "$output" == *"token revoked"* ]]
	run_logged "$COFFER" tokens list
	[[ "$output" =~ $TOK_ID\ +deploy\ +-\ +never\ +[0-9]+s\ ago ]]
	# twice is fine; an unknown id is not found
	run_logged "$COFFER" tokens revoke "$TOK_ID"
	[ "$status" -eq 0 ]
	run_logged "$COFFER" tokens revoke tok_000000000000000000000000
	[ "$status" -eq 5 ]
}

@test "tokens create --expiry: the token works, then fails with exit 3 once expired" {
	# 2 s rather than 1 s: room for a slow machine between creating and using it
	new_token read "" 2s
	run_logged "$COFFER" secrets list -t "$TOK" -a canary
	[ "$status" -eq 0 ]
	wait_until 10 exits_with 3 "$COFFER" secrets list -t "$TOK" -a canary
	run_logged "$COFFER" secrets list -t "$TOK" -a canary
	[ "$status" -eq 3 ]
	[[ "$output" == *"token expired"* ]]
}

# ---- audit ----

@test "audit lists who did what to which app: names, never values" {
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web "AUDITED=$CANARY-audited" >/dev/null
	run_logged "$COFFER" audit
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^SEQ\ +TIME\ +ACTOR\ +ACTION\ +APP\ +OUTCOME\ +DETAIL$ ]]
	[[ "$output" =~ tok_[0-9a-f]{24}\ +apps\.create\ +web\ +ok ]]
	grep -Eq 'tok_[0-9a-f]{24} +secrets\.set +web +ok +.*"AUDITED"' <<<"$output"
	# the detail names the secret and its digest, never the value
	digest=$("$COFFER" secrets list -a web --json | jq -r '.[0].digest')
	[[ "$output" == *"$digest"* ]]
	[[ "$output" != *"$CANARY"* ]]
	[[ "$output" != *"$ADMIN_TOKEN"* ]]
}

@test "audit -a APP shows that app's events only" {
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web "AUDITED=$CANARY-audited" >/dev/null
	run_logged "$COFFER" audit -a web
	[ "$status" -eq 0 ]
	[ "$(awk 'NR > 1 { print $5 }' <<<"$output" | sort -u)" = web ]
	[ "$(awk 'NR > 1 { print $4 }' <<<"$output" | paste -sd,)" = apps.create,secrets.sealing,secrets.set ]
	run_logged "$COFFER" audit
	[ "$(awk 'NR > 1 && $5 == "canary"' <<<"$output" | wc -l)" -ge 2 ]
}

@test "audit does not take the app from COFFER_APP" {
	"$COFFER" apps create web >/dev/null
	run_logged env COFFER_APP=web "$COFFER" audit
	[ "$status" -eq 0 ]
	[ "$(awk 'NR > 1 && $5 == "canary"' <<<"$output" | wc -l)" -ge 2 ]
}

@test "audit --json is the list of events, oldest first" {
	"$COFFER" secrets set -a canary "AUDITED=$CANARY-audited" >/dev/null
	run_logged "$COFFER" audit --json
	[ "$status" -eq 0 ]
	[ "$(jq -r 'type' <<<"$output")" = array ]
	[ "$(jq -r '[.[].seq] == ([.[].seq] | sort) and length >= 4' <<<"$output")" = true ]
	[ "$(jq -r '[.[] | has("seq", "ts", "actor", "action", "app", "detail", "outcome", "request_id")] | all' <<<"$output")" = true ]
	[ "$(jq -r '.[-1] | .action + " " + .app + " " + .detail.set[0].name' <<<"$output")" = "secrets.set canary AUDITED" ]
	[[ "$output" != *"$CANARY"* ]]
}

@test "audit --after and --limit page the log" {
	"$COFFER" secrets set -a canary "A=$CANARY-a" >/dev/null
	run_logged "$COFFER" audit --after 1 --limit 2 --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.[].seq] | join(",")' <<<"$output")" = 2,3 ]
	run_logged "$COFFER" audit --limit many
	[ "$status" -eq 2 ]
	[[ "$output" == *"--after and --limit take a whole number"* ]]
}

@test "audit verify: the chain is intact (exit 0)" {
	"$COFFER" secrets set -a canary "A=$CANARY-a" >/dev/null
	n=$("$COFFER" audit --json | jq length)
	run_logged "$COFFER" audit verify
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "audit chain intact: $n events" ]
}

@test "audit verify: a tampered event is named, exit 6" {
	run_logged "$COFFER" audit verify
	[ "$status" -eq 0 ]
	store_sql "UPDATE audit_events SET action = 'x' WHERE seq = 2"
	run_logged "$COFFER" audit verify
	[ "$status" -eq 6 ]
	[[ "$output" == *"audit chain broken at event 2"* ]]
	[[ "$output" != *intact* ]]
}

@test "audit verify takes no filter" {
	run_logged "$COFFER" audit verify -a canary
	[ "$status" -eq 2 ]
	[[ "$output" == *"'audit verify' takes no -a, --after or --limit"* ]]
}

@test "audit lists the API's default page even when its events are large" {
	# 100 changes, each unsetting 200 absent names of 250 bytes: every event's
	# detail is near the api's cap (60 KiB), and the api's default page is 100
	# events, the oldest first
	pad=$(head -c 250 /dev/zero | tr '\0' N)
	names=()
	for i in $(seq 200); do names+=("${pad}_$i"); done
	for r in $(seq 100); do
		"$COFFER" secrets unset -a canary "${names[@]}" >/dev/null
	done
	run_logged "$COFFER" audit --limit 1 --after 50 --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '.[0].action' <<<"$output")" = secrets.set ]
	[ "$(jq -r '.[0].detail.unset | length' <<<"$output")" -ge 150 ]
	run_logged "$COFFER" audit --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '.[0].seq' <<<"$output")" = 1 ]
	[ "$(jq length <<<"$output")" -ge 50 ]
	run_logged "$COFFER" audit -a canary
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^SEQ\ +TIME ]]
}

@test "the token comes from the config file, which must be private (exit 4 otherwise)" {
	printf '{"api_url": "%s", "token": "%s"}\n' "$API_URL" "$ADMIN_TOKEN" >"$T/config.json"
	chmod 600 "$T/config.json"
	run_logged env -u COFFER_TOKEN -u COFFER_API_URL "$COFFER" secrets list -a canary
	[ "$status" -eq 0 ]
	[[ "$output" == *CANARY_SECRET* ]]
	chmod 644 "$T/config.json"
	run_logged env -u COFFER_TOKEN -u COFFER_API_URL "$COFFER" secrets list -a canary
	[ "$status" -eq 4 ]
	[[ "$output" == *"config file '$T/config.json' may be read or written by group or others: make it private (chmod 600)"* ]]
	[[ "$output" != *"$ADMIN_TOKEN"* ]]
}

# ---- apps ----

@test "apps list: a table of NAME SECRETS CREATED, and --json" {
	"$COFFER" apps create web >/dev/null
	run_logged "$COFFER" apps list
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^NAME\ +SECRETS\ +CREATED$ ]]
	[[ "${lines[1]}" =~ ^canary\ +1\ +[0-9]+s\ ago$ ]]
	[[ "${lines[2]}" =~ ^web\ +0\ +[0-9]+s\ ago$ ]]
	[ "${#lines[@]}" -eq 3 ]
	run_logged "$COFFER" apps list --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.[].name] | join(",")' <<<"$output")" = canary,web ]
	[ "$(jq -r '.[] | select(.name == "canary") | .secrets_count' <<<"$output")" = 1 ]
}

@test "apps create prints the new app; a taken name is a conflict (exit 6)" {
	run_logged "$COFFER" apps create web
	[ "$status" -eq 0 ]
	[ "$output" = "New app created: web" ]
	run_logged "$COFFER" apps create web
	[ "$status" -eq 6 ]
	[[ "$output" == *"app 'web' exists already"* ]]
}

@test "apps destroy --yes: the app and its secrets are gone (exit 5 after)" {
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web "DOOMED=$CANARY-doomed" >/dev/null
	run_logged "$COFFER" apps destroy web --yes
	[ "$status" -eq 0 ]
	[ "$output" = "Destroyed app web" ]
	run_logged "$COFFER" secrets list -a web
	[ "$status" -eq 5 ]
	[[ "$output" == *"app 'web' not found"* ]]
	[ "$("$COFFER" apps list --json | jq -r '[.[].name] | join(",")')" = canary ]
}

@test "apps destroy without --yes and without a terminal is a usage error; nothing destroyed" {
	run_logged "$COFFER" apps destroy canary </dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"'apps destroy' is destructive: refusing without a terminal: pass --yes"* ]]
	run_logged "$COFFER" secrets list -a canary
	[ "$status" -eq 0 ]
	[[ "$output" == *CANARY_SECRET* ]]
}

@test "apps destroy on a terminal: a wrong name typed destroys nothing, the right one does" {
	command -v script >/dev/null || skip "script (util-linux) is not installed: no pty"
	cmd=$(printf '%q ' "$COFFER" apps destroy canary)
	run_logged script -qec "$cmd" /dev/null < <(printf 'canar\n')
	[ "$status" -eq 1 ]
	[[ "$output" == *"Type the app's name to confirm"* ]]
	[[ "$output" == *"the name typed does not match: app 'canary' not destroyed"* ]]
	run_logged "$COFFER" secrets list -a canary
	[ "$status" -eq 0 ]
	run_logged script -qec "$cmd" /dev/null < <(printf 'canary\n')
	[ "$status" -eq 0 ]
	[[ "$output" == *"Destroyed app canary"* ]]
	run_logged "$COFFER" secrets list -a canary
	[ "$status" -eq 5 ]
}
