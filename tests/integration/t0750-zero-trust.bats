#!/usr/bin/env bats
# The whole api under the attacker's control (issue 12; docs/THREATS.md
# "the whole api process and read-write store"): its keys (api.rows.key,
# api.boot.key, api.digest.key), its store, its process. rogue_api
# (tests/tools) writes the store as such an api could: token rows with a
# valid MAC, releases pointed at the app's machines, signature rows,
# values it sealed itself. What it cannot hold is a deployer's key or the
# keeper's master key. Each attack, against an app deployed with the
# canary secret, must end with
#   - the keeper's refusal of the open, audited (coffer audit shows it),
#     and no open delivered for the attacker's release (the enrolment
#     attack: the keeper's refusal of the enrolment, audited);
#   - no process on the machine holding the canary but the app's own
#     signed command (every /proc/PID/environ is read), and the canary,
#     reversed or not, nowhere in any output, reason or log.
# Last, the api's memory is scanned for the canary while `secrets set`
# runs, and the scan is shown to find what is there.

load helpers

bats_require_minimum_version 1.5.0

: "${ROGUE_API:=$(dirname "$COFFER")/tests/tools/rogue_api}"

setup() {
	platform_start
	APP="$APPS_DIR/app.sh"
	REV_CANARY=$(printf '%s' "$CANARY" | rev)
	ROWS="$T/keeper/api.rows.key"
	agents_up 1
	MHOST=${HOST_IDS[1]}
	deploy canary -- "$APP"
	[ "$status" -eq 0 ] || { echo "$output" >&2; return 1; }
	wait_until 30 count_started canary 1
	APP_ID=$(store_sql "SELECT id FROM apps WHERE name = 'canary'")
	REL1=$(latest_release canary)
	SV1=$(release_of canary "$REL1" | jq -r .secrets_version)
	config_of canary "$REL1" >"$T/c1.json"
}

teardown() {
	run_stop
	platform_stop
}

# ---- what the attacker does ----

rogue() {
	"$ROGUE_API" "$@"
}

# evil_config FILE: the attacker's machine spec, canonical JSON: the command prints the canary reversed.
evil_config() {
	jq -cnS '{cmd: ["sh", "-c", "echo \"$CANARY_SECRET\" | rev; exit 3"], count: 1, env: {}, grace_ms: 2000}' |
		tr -d '\n' >"$1"
}

# config_of APP RELEASE: the release's config text as stored (and signed).
config_of() {
	store_sql "SELECT config FROM releases WHERE app_id = (SELECT id FROM apps WHERE name = '$1') AND version = $2" |
		tr -d '\n'
}

# manifest_of APP_ID VERSION FILE: the version's manifest text as stored.
manifest_of() {
	printf '%s\n' "$(store_sql "SELECT manifest FROM secret_versions WHERE app_id = '$1' AND version = $2")" >"$3"
}

# statement APP_ID CONFIG_FILE SV OUT: the release statement a deployer would sign (its hash in HASH).
statement() {
	if [ "$3" = 0 ]; then
		rogue statement "$1" "$2" 0 >"$4"
	else
		manifest_of "$1" "$3" "$T/manifest.$3"
		rogue statement "$1" "$2" "$3" "$T/manifest.$3" >"$4"
	fi
	HASH=$(sha256sum "$4" | cut -d' ' -f1)
}

# copy_signatures FROM_APP_ID FROM_HASH TO_APP_ID TO_HASH: every signature
# row of one signed text put under another text (signer and signature as
# they are): a signature moved to what it does not sign.
copy_signatures() {
	local signer sig n=0
	while IFS='|' read -r signer sig; do
		[ -n "$signer" ] || continue
		rogue signature "$STORE_URL" "$3" "$4" "$signer" "$sig"
		n=$((n + 1))
	done < <(store_sql "SELECT signer, signature FROM signatures WHERE app_id = '$1' AND text_hash = '$2'")
	[ "$n" -ge 1 ] || { echo "no signature of $2 to copy" >&2; return 1; }
}

# rogue_release APP CONFIG_FILE SV: the api's release of it, the app's machines pointed at it (REL).
rogue_release() {
	REL=$(rogue release "$STORE_URL" "$ROWS" "$1" "$2" "$3")
	[[ "$REL" =~ ^[0-9]+$ ]]
}

# ---- requests by hand, as the host's agent would make them (t0710) ----

host_send() {
	sign "$1" "$3" "$4" "$5"
	send "$2" "$3" "$4" "$5"
}

open_as() {
	jq -cn --arg t "$2" '{token: $t}' >"$T/open.json"
	host_send "$1" "$KEEPER_URL" POST /v1/open "$T/open.json"
}

# claims APP_ID MACHINE HOST RELEASE SECRETS_VERSION: boot token claims as the api makes them.
claims() {
	local now
	now=$(date +%s)
	jq -cn --arg app "$1" --arg m "$2" --arg h "$3" --argjson rel "$4" --argjson sv "$5" --argjson iat "$now" \
		--argjson exp "$((now + 600))" --arg jti "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" \
		'{app: $app, machine: $m, host: $h, release: $rel, secrets_version: $sv, iat: $iat, exp: $exp, jti: $jti}'
}

# ---- what must hold after each attack ----

# open_events APP RELEASE: the app's secrets.open events for that release, as `coffer audit` shows them (JSON array).
open_events() {
	cli audit -a "$1" --json | tee -a "$T/outputs.log" |
		jq -c --argjson rel "$2" 'if type == "array" then . else .events end
			| [.[] | select(.action == "secrets.open")
			| (.detail | if type == "string" then fromjson else . end) as $d
			| select($d.release == $rel) | {outcome, detail: $d}]'
}

refusals_at_least() {
	[ "$(open_events "$1" "$2" | jq '[.[] | select(.outcome | startswith("refused"))] | length')" -ge "$3" ]
}

# attack_refused APP RELEASE SV [MACHINE]: the keeper refuses to open
# RELEASE for the app's machine (asked by hand with a boot token the api
# minted, and by the agent the api pointed at it), audited; no open of it
# delivered anything; no process holds the canary but the app's own.
attack_refused() {
	local app_id mid=${4:-}
	app_id=$(store_sql "SELECT id FROM apps WHERE name = '$1'")
	# the app's newest live machine on the host (the one the attacker pointed at the release)
	[ -n "$mid" ] || mid=$(store_sql "SELECT id FROM machines WHERE app_id = '$app_id' AND host_id = '$MHOST'
		AND state <> 'destroyed' ORDER BY created_at DESC LIMIT 1")
	[ -n "$mid" ] || { echo "no live machine of $1" >&2; return 1; }
	open_as "$MHOST" "$(mint_token "$(claims "$app_id" "$mid" "$MHOST" "$2" "$3")")"
	[ "$CODE" = 403 ] || [ "$CODE" = 400 ] || { echo "open of the attacker's release: $CODE $BODY" >&2; return 1; }
	[ "$(jq -r '.sealed // empty' <<<"$BODY")" = "" ]
	# the agent's own attempt, on the assignment the api gave it
	wait_until 90 refusals_at_least "$1" "$2" 2
	[ "$(open_events "$1" "$2" | jq '[.[] | select(.outcome == "ok")] | length')" = 0 ] ||
		{ echo "an open of release $2 was delivered" >&2; return 1; }
	no_foreign_holder
}

# no_foreign_holder: every process of this test's machines (its
# COFFER_MACHINE_ID in this store: other test files run beside it, with the
# same canary) whose environment holds the canary runs the app's signed
# command (app.sh, which becomes `sleep 100000`), and the canary, reversed
# or not, is in no output of any machine.
no_foreign_holder() {
	local f pid cmd mid hits
	for f in /proc/[0-9]*/environ; do
		pid=${f#/proc/}
		pid=${pid%/environ}
		grep -qaF -- "$CANARY" "$f" 2>/dev/null || continue
		mid=$(env_of "$pid" COFFER_MACHINE_ID 2>/dev/null || true)
		# every machine's process has one (the agent sets it); none: not a machine
		[[ "$mid" =~ ^[0-9a-f]{24}$ ]] || continue
		[ -n "$(store_sql "SELECT id FROM machines WHERE id = '$mid'")" ] || continue # another test's
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
		case $cmd in
		"sleep 100000 " | "/bin/sh $APP " | "sh $APP ") ;;
		"") ;; # ended meanwhile
		*)
			echo "process $pid ($cmd) holds the canary" >&2
			return 1
			;;
		esac
	done
	hits=$(grep -rlaF -e "$REV_CANARY" -e "$CANARY" "$T" 2>/dev/null || true)
	[ -z "$hits" ] || { echo "the canary is in: $hits" >&2; return 1; }
}

# ---- the attacks ----

@test "a token row forged with the rows key, then a deploy of a command that prints the secret: refused" {
	tok=$(rogue token "$STORE_URL" "$ROWS" acme)
	[[ "$tok" =~ ^coffer_ ]]
	evil_config "$T/evil.json"
	# the api's own route: the token passes, the unsigned config does not
	CODE=$(curl -sS -o "$T/last.body" -w '%{http_code}' -X POST -H "Authorization: Bearer $tok" \
		--data-binary "@$T/evil.json" "$API_URL/v1/apps/canary/releases") || CODE=000
	cat "$T/last.body" >>"$T/outputs.log"
	[ "$CODE" = 403 ] || { echo "unsigned deploy answered $CODE: $(cat "$T/last.body")" >&2; return 1; }
	[[ "$(jq -r .error.message "$T/last.body")" == *"not signed by a deployer of this app"* ]]
	[ "$(store_sql "SELECT count(*) FROM releases WHERE app_id = '$APP_ID'")" = 1 ]
	# the api itself makes the release and points the machine at it
	rogue_release canary "$T/evil.json" "$SV1"
	attack_refused canary "$REL" "$SV1"
}

@test "a spec signed by a key never enrolled, or by a deployer row the store was given: refused" {
	pk=$(rogue key "$T/rogue.key")
	[ -n "$pk" ]
	evil_config "$T/evil.json"
	statement "$APP_ID" "$T/evil.json" "$SV1" "$T/evil.stmt"
	sig=$(rogue sign "$T/rogue.key" "$T/evil.stmt")
	rogue signature "$STORE_URL" "$APP_ID" "$HASH" 0123456789abcdef01234567 "$sig"
	manifest_of "$APP_ID" "$SV1" "$T/m1"
	rogue signature "$STORE_URL" "$APP_ID" "$(sha256sum "$T/m1" | cut -d' ' -f1)" 0123456789abcdef01234567 \
		"$(rogue sign "$T/rogue.key" "$T/m1")"
	rogue_release canary "$T/evil.json" "$SV1"
	attack_refused canary "$REL" "$SV1"
	# the same key in a deployers row of its own, cert and MAC copied from the CLI's row
	store_sql "INSERT INTO deployers (id, org_id, app_id, role, name, public_key, cert, created_at, revoked_at, mac)
		SELECT '0123456789abcdef01234567', org_id, app_id, role, 'mallory', $(blob_of_b64url "$pk"), cert, created_at, 0, mac
		FROM deployers LIMIT 1"
	rogue_release canary "$T/evil.json" "$SV1"
	attack_refused canary "$REL" "$SV1"
}

@test "an old signed spec with a newer secrets version, and a newer spec with an older one: refused" {
	run_logged cli secrets set -a canary --stage "OTHER=x"
	[ "$status" -eq 0 ]
	SV2=$(store_sql "SELECT secrets_head FROM apps WHERE id = '$APP_ID'")
	[ "$SV2" -gt "$SV1" ]
	# a second signed release: another spec, with the newer version
	deploy canary --env WHICH=two -- "$APP"
	[ "$status" -eq 0 ]
	REL2=$(latest_release canary)
	[ "$(release_of canary "$REL2" | jq -r .secrets_version)" = "$SV2" ]
	config_of canary "$REL2" >"$T/c2.json"
	wait_until 30 count_started canary 1
	# the old spec with the new secrets, the new spec with the old secrets
	rogue_release canary "$T/c1.json" "$SV2"
	attack_refused canary "$REL" "$SV2"
	rogue_release canary "$T/c2.json" "$SV1"
	attack_refused canary "$REL" "$SV1"
}

@test "the command swapped inside a signed spec, the spec's signatures moved to it: refused" {
	statement "$APP_ID" "$T/c1.json" "$SV1" "$T/c1.stmt"
	good=$HASH
	jq -cS '.cmd = ["sh", "-c", "echo \"$CANARY_SECRET\" | rev; exit 3"]' "$T/c1.json" | tr -d '\n' >"$T/swapped.json"
	statement "$APP_ID" "$T/swapped.json" "$SV1" "$T/swapped.stmt"
	copy_signatures "$APP_ID" "$good" "$APP_ID" "$HASH"
	rogue_release canary "$T/swapped.json" "$SV1"
	attack_refused canary "$REL" "$SV1"
}

@test "a deployer key enrolled without a keeper token, or with a spent one: refused and audited, never listed" {
	pk=$(rogue key "$T/rogue.key")
	enrol() { # TOKEN: the enrolment request, with a valid proof of possession
		printf 'coffer deployer enrol v1\n%s\n%s\n%s\n' "$1" mallory "$pk" >"$T/proof.txt"
		jq -cn --arg t "$1" --arg pk "$pk" --arg p "$(rogue sign "$T/rogue.key" "$T/proof.txt")" \
			'{token: $t, name: "mallory", public_key: $pk, proof: $p}' >"$T/enrol.json"
		CODE=$(curl -sS -o "$T/last.body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
			--data-binary "@$T/enrol.json" "$KEEPER_URL/v1/deployers/enrol") || CODE=000
		cat "$T/last.body" >>"$T/outputs.log"
	}
	refusals() {
		store_sql "SELECT count(*) FROM audit_events WHERE action LIKE 'deployers.enrol%' AND outcome <> 'ok'"
	}
	before=$(refusals)
	enrol "cdt_$(head -c 48 /dev/urandom | b64url)"
	[[ "$CODE" =~ ^40[013]$ ]] || { echo "forged token: $CODE $(cat "$T/last.body")" >&2; return 1; }
	[ "$(jq -r '.cert // empty' "$T/last.body")" = "" ]
	# a real token, spent by a login first
	tok=$("$COFFER" keeper deployer-token --state-dir "$T/keeper" --store "$STORE_URL" --org acme --role deploy)
	mkdir -p "$T/ci"
	COFFER_CONFIG="$T/ci/config.json" run_logged "$COFFER" login --deployer-token "$tok" --keeper "$KEEPER_URL" --name ci
	[ "$status" -eq 0 ]
	enrol "$tok"
	[[ "$CODE" =~ ^40[0139]$ ]] || { echo "spent token: $CODE $(cat "$T/last.body")" >&2; return 1; }
	[ "$(jq -r '.cert // empty' "$T/last.body")" = "" ]
	[ "$(refusals)" -ge $((before + 2)) ]
	# (audited without an org: a refused token names none the keeper vouches for, so
	# these events are in the store's log, not in an org's `coffer audit`)
	run_logged cli deployers list --json
	[ "$status" -eq 0 ]
	[[ "$output" != *mallory* ]]
	[[ "$output" != *"$pk"* ]]
}

@test "a revoked deployer key: its new and its pending releases refused, and a row put back as it was does not revive it" {
	tok=$("$COFFER" keeper deployer-token --state-dir "$T/keeper" --store "$STORE_URL" --org acme --app canary --role deploy)
	mkdir -p "$T/ci"
	COFFER_CONFIG="$T/ci/config.json" run_logged "$COFFER" login --deployer-token "$tok" --keeper "$KEEPER_URL" --name ci
	[ "$status" -eq 0 ]
	ci=$(jq -r .deployer_id "$T/ci/config.json")
	[ -n "$ci" ] && [ "$ci" != null ]
	# the CI key signs a release that runs, then the admin's next one replaces it
	COFFER_CONFIG="$T/ci/config.json" deploy canary --env WHICH=ci -- "$APP"
	[ "$status" -eq 0 ]
	REL2=$(latest_release canary)
	config_of canary "$REL2" >"$T/c2.json"
	[ "$(store_sql "SELECT count(*) FROM signatures WHERE app_id = '$APP_ID' AND signer = '$ci'")" -ge 1 ]
	deploy canary --env WHICH=admin -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started canary 1
	saved=$(store_sql "SELECT $(hex_of mac) FROM deployers WHERE id = '$ci'")
	run_logged cli deployers revoke "$ci"
	[ "$status" -eq 0 ]
	# a new release with it
	COFFER_CONFIG="$T/ci/config.json" deploy canary --env WHICH=ci2 -- "$APP"
	[ "$status" -ne 0 ]
	r=$(latest_release canary)
	if [ "$r" -gt $((REL2 + 1)) ]; then # made by the api, refused at the keeper
		wait_until 60 releases_settled canary
		[ "$(open_events canary "$r" | jq '[.[] | select(.outcome == "ok")] | length')" = 0 ]
	fi
	# the api makes the CI key's release again from what it signed before (a pending release)
	rogue_release canary "$T/c2.json" "$SV1"
	attack_refused canary "$REL" "$SV1"
	# the row put back as it was before the revocation, with its old MAC
	store_sql "UPDATE deployers SET revoked_at = 0, mac = $(blob "$saved") WHERE id = '$ci'"
	rogue_release canary "$T/c2.json" "$SV1"
	attack_refused canary "$REL" "$SV1"
}

@test "a spec signed for another app, moved with its signatures to the app with the secret: refused" {
	run_logged cli apps create other
	[ "$status" -eq 0 ]
	OTHER_ID=$(store_sql "SELECT id FROM apps WHERE name = 'other'")
	# a deployer signs the printing command for an app that holds no secret
	deploy other -- sh -c 'echo "$CANARY_SECRET" | rev; exit 3'
	ORel=$(latest_release other)
	[ "$ORel" -ge 1 ]
	config_of other "$ORel" >"$T/o.json"
	osv=$(release_of other "$ORel" | jq -r .secrets_version)
	statement "$OTHER_ID" "$T/o.json" "$osv" "$T/o.stmt"
	ohash=$HASH
	[ "$(store_sql "SELECT count(*) FROM signatures WHERE app_id = '$OTHER_ID' AND text_hash = '$ohash'")" -ge 1 ]
	# moved as is (the statement names the other app) and under the canary app's statement
	copy_signatures "$OTHER_ID" "$ohash" "$APP_ID" "$ohash"
	statement "$APP_ID" "$T/o.json" "$SV1" "$T/moved.stmt"
	copy_signatures "$OTHER_ID" "$ohash" "$APP_ID" "$HASH"
	rogue_release canary "$T/o.json" "$SV1"
	attack_refused canary "$REL" "$SV1"
}

@test "a deployer key of another app, with the api, signs this app's spec and manifest: refused" {
	run_logged cli apps create other
	[ "$status" -eq 0 ]
	tok=$("$COFFER" keeper deployer-token --state-dir "$T/keeper" --store "$STORE_URL" --org acme --app other --role deploy)
	mkdir -p "$T/ci"
	COFFER_CONFIG="$T/ci/config.json" run_logged "$COFFER" login --deployer-token "$tok" --keeper "$KEEPER_URL" --name other-ci
	[ "$status" -eq 0 ]
	ci=$(jq -r .deployer_id "$T/ci/config.json")
	[ -f "$T/ci/deployer.key" ]
	# the key holder signs, for the app it does not cover, the printing command and the deployed manifest
	evil_config "$T/evil.json"
	statement "$APP_ID" "$T/evil.json" "$SV1" "$T/evil.stmt"
	rogue signature "$STORE_URL" "$APP_ID" "$HASH" "$ci" "$(rogue sign "$T/ci/deployer.key" "$T/evil.stmt")"
	rogue signature "$STORE_URL" "$APP_ID" "$(sha256sum "$T/manifest.$SV1" | cut -d' ' -f1)" "$ci" \
		"$(rogue sign "$T/ci/deployer.key" "$T/manifest.$SV1")"
	rogue_release canary "$T/evil.json" "$SV1"
	attack_refused canary "$REL" "$SV1"
}

# evil_org: a second org "evil" with an admin deployer of every app of
# it, logged in under $T/evil (the api's own key under the plaintext
# policy is such a key); EVIL_TOKEN is the org's admin token, EVIL its
# deployer id.
evil_org() {
	EVIL_TOKEN=$("$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$ROWS" --org evil)
	[[ "$EVIL_TOKEN" =~ ^coffer_ ]]
	tok=$("$COFFER" keeper deployer-token --state-dir "$T/keeper" --store "$STORE_URL" --org evil --role admin)
	mkdir -p "$T/evil"
	COFFER_CONFIG="$T/evil/config.json" run_logged "$COFFER" login --deployer-token "$tok" --keeper "$KEEPER_URL" --name evil
	[ "$status" -eq 0 ]
	EVIL=$(jq -r .deployer_id "$T/evil/config.json")
	[ -f "$T/evil/deployer.key" ] && [ -n "$EVIL" ] && [ "$EVIL" != null ]
}

# move_app APP_ID ORG_NAME: the app's row moved to that org, its MAC made anew with the rows key.
move_app() {
	store_sql "UPDATE apps SET org_id = (SELECT id FROM orgs WHERE name = '$2') WHERE id = '$1'"
	rogue reseal "$STORE_URL" "$ROWS" "$1"
}

# store_open_events APP_ID RELEASE OUTCOME_LIKE: how many of the app's
# secrets.open events for that release have such an outcome (read from the
# store: the events of a moved app are under the org its row names).
store_open_events() {
	store_sql "SELECT detail FROM audit_events WHERE action = 'secrets.open' AND outcome LIKE '$3'
		AND app = (SELECT name FROM apps WHERE id = '$1')" |
		jq -s --argjson rel "$2" '[.[] | select(.release == $rel)] | length'
}

@test "the app moved to another org in the store with a valid rows MAC, signed by that org's deployer: refused at the keeper" {
	evil_org
	move_app "$APP_ID" evil
	# the api answers for the app under its new org now
	[ "$(store_sql "SELECT o.name FROM apps a JOIN orgs o ON o.id = a.org_id WHERE a.id = '$APP_ID'")" = evil ]
	# the other org's deployer signs the printing command with the deployed secrets, and their manifest
	evil_config "$T/evil.json"
	statement "$APP_ID" "$T/evil.json" "$SV1" "$T/evil.stmt"
	rogue signature "$STORE_URL" "$APP_ID" "$HASH" "$EVIL" "$(rogue sign "$T/evil/deployer.key" "$T/evil.stmt")"
	rogue signature "$STORE_URL" "$APP_ID" "$(sha256sum "$T/manifest.$SV1" | cut -d' ' -f1)" "$EVIL" \
		"$(rogue sign "$T/evil/deployer.key" "$T/manifest.$SV1")"
	rogue_release canary "$T/evil.json" "$SV1"
	mid=$(store_sql "SELECT id FROM machines WHERE app_id = '$APP_ID' AND host_id = '$MHOST'
		AND state <> 'destroyed' ORDER BY created_at DESC LIMIT 1")
	open_as "$MHOST" "$(mint_token "$(claims "$APP_ID" "$mid" "$MHOST" "$REL" "$SV1")")"
	[ "$CODE" = 403 ] || { echo "open of the moved app's release: $CODE $BODY" >&2; return 1; }
	[ "$(jq -r '.sealed // empty' <<<"$BODY")" = "" ]
	[[ "$BODY" == *"app's org binding failed verification"* ]]
	# the agent's own attempt too; each audited with its check, none delivered
	moved_refusals() { [ "$(store_open_events "$APP_ID" "$REL" "refused: app%s org binding%")" -ge 2 ]; }
	wait_until 90 moved_refusals
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'secrets.open'
		AND outcome LIKE 'refused: app%s org binding%' AND detail LIKE '%\"check\":\"app_org\"%'")" -ge 2 ]
	[ "$(store_open_events "$APP_ID" "$REL" ok)" = 0 ]
	no_foreign_holder
}

@test "the api names another org for the app, or an app of another org: the CLI seals and signs nothing" {
	evil_org
	SV=$(store_sql "SELECT secrets_head FROM apps WHERE id = '$APP_ID'")
	sigs=$(store_sql "SELECT count(*) FROM signatures")
	posts() { # the api's log lines of requests that change the app's secrets (none: 0)
		grep -cE 'event=http_request method=POST .*path=/v1/apps/canary/secrets( |$)' "$T/api.log" || [ $? -eq 1 ]
	}
	sent=$(posts)
	# moved: the api answers the sealing state with org evil (to that org's admin token)
	move_app "$APP_ID" evil
	COFFER_TOKEN=$EVIL_TOKEN run_logged cli secrets set -a canary --stage "OTHER=x"
	[ "$status" -ne 0 ]
	[[ "$output" == *"the app's org is not the one the keeper you logged in with bound it to"* ]]
	[[ "$output" == *"nothing was sent"* ]]
	# back in its org, to the other org's deployer key: its certificate does not cover the app
	move_app "$APP_ID" acme
	COFFER_CONFIG="$T/evil/config.json" run_logged cli secrets set -a canary --stage "OTHER=x"
	[ "$status" -ne 0 ]
	[[ "$output" == *"does not cover app $APP_ID"* ]]
	[[ "$output" == *"nothing was sent"* ]]
	[ "$(store_sql "SELECT secrets_head FROM apps WHERE id = '$APP_ID'")" = "$SV" ]
	[ "$(store_sql "SELECT count(*) FROM signatures")" = "$sigs" ]
	[ "$(store_sql "SELECT count(*) FROM secret_entries WHERE app_id = '$APP_ID' AND name = 'OTHER'")" = 0 ]
	# the api was sent no change at all; a deployer of the app's org sends one (the count's control)
	[ "$(posts)" = "$sent" ]
	run_logged cli secrets set -a canary --stage "OTHER=x"
	[ "$status" -eq 0 ]
	[ "$(posts)" -gt "$sent" ]
}

@test "a value sealed by the api itself into a new secrets version: never opened, and the CLI does not sign on top of it" {
	SV2=$(printf 'evil-value' | rogue seal "$STORE_URL" "$ROWS" "$T/keeper/api.digest.key" canary EVIL)
	[ "$SV2" -gt "$SV1" ]
	manifest_of "$APP_ID" "$SV2" "$T/m2"
	# a deployer's next change does not take the api's version in
	run_logged cli secrets set -a canary --stage "OTHER=x"
	[ "$status" -ne 0 ]
	[[ "$output" == *"is not signed by a deployer of this app"* ]]
	[ "$(store_sql "SELECT count(*) FROM signatures WHERE app_id = '$APP_ID'
		AND text_hash = '$(sha256sum "$T/m2" | cut -d' ' -f1)'")" = 0 ]
	# the api's release of it, with the signatures of the deployed release copied to its statement
	statement "$APP_ID" "$T/c1.json" "$SV1" "$T/c1.stmt"
	good=$HASH
	statement "$APP_ID" "$T/c1.json" "$SV2" "$T/c1v2.stmt"
	copy_signatures "$APP_ID" "$good" "$APP_ID" "$HASH"
	rogue_release canary "$T/c1.json" "$SV2"
	attack_refused canary "$REL" "$SV2"
}

@test "the api's memory never holds the canary while secrets set runs; the scan finds what is there" {
	mem_has() { # NEEDLE: the api process's memory holds it (rogue_api memscan, as root)
		printf '%s' "$1" | rogue memscan "$API_PID" >/dev/null
	}
	[ "$(id -u)" = 0 ] || skip "reading another process's memory needs root"
	# positive control: an app name the api was sent and stored is in its memory
	ctl="memctl$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
	run_logged cli apps create "$ctl"
	[ "$status" -eq 0 ]
	mem_has "$ctl"
	# the canary, set again under other names among 30 others; the CLI is
	# stopped every 5 ms of its run and the api scanned meanwhile (a run on
	# loopback is short: a scan or two), then again after: what the api was
	# sent stays in its freed memory, as the run before issue 12 showed
	run -1 mem_has "$CANARY"
	more=()
	for i in $(seq 30); do more+=("FILL_$i=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"); done
	"$COFFER" secrets set -a canary --stage "COPY_A=$CANARY" "${more[@]}" "COPY_B=$CANARY" >"$T/set.out" 2>&1 &
	setpid=$!
	scans=0
	running() { # PID: alive, and not a zombie (an ended child stays one until the wait below)
		kill -0 "$1" 2>/dev/null || return 1
		case "$(sed -n 's/^State:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)" in
		Z* | "") return 1 ;;
		esac
	}
	while running "$setpid"; do
		kill -STOP "$setpid" 2>/dev/null || break
		run -1 mem_has "$CANARY"
		scans=$((scans + 1))
		kill -CONT "$setpid" 2>/dev/null || break
		sleep 0.005
	done
	wait "$setpid"
	echo "# $scans scans during the set" >&3
	[ "$scans" -ge 1 ]
	[ "$(store_sql "SELECT count(*) FROM secret_entries WHERE app_id = '$APP_ID' AND name = 'COPY_B'")" -ge 1 ]
	run -1 mem_has "$CANARY"
	# and after a deploy of it too (the open is the keeper's)
	run_logged cli secrets deploy -a canary
	run -1 mem_has "$CANARY"
}

# ---- store literals ----

# hex_of COLUMN: the SQL of a BLOB column as lower-case hex.
hex_of() {
	if [ -n "${PG_SCHEMA:-}" ]; then printf "encode(%s, 'hex')" "$1"; else printf "lower(hex(%s))" "$1"; fi
}

# blob_of_b64url B64URL: a BLOB literal of the bytes.
blob_of_b64url() {
	local p
	p=$(tr -- '-_' '+/' <<<"$1")
	while [ $((${#p} % 4)) -ne 0 ]; do p="$p="; done
	blob "$(base64 -d <<<"$p" | od -An -tx1 -v | tr -d ' \n')"
}
