#!/usr/bin/env bats
# A store writer against a secrets version (docs/CRYPTO.md "Secrets
# versions"): with sqlite3/psql on the store, as an attacker with the
# store's credentials would, each test edits the rows of the version a
# running app is on, and a machine's next boot is refused by the keeper,
# audited with the name and the check that failed, never a value. The app
# "shop" runs one machine (tests/integration/apps/app.sh) whose KEY was
# old-$CANARY in secrets version 1 and is new-$CANARY in version 2: the
# old value must never reach a machine again (the canary scan covers every
# log, output and store dump). Each refusal has a control: the same open
# before the edit works. A manifest rewritten along with its entries is
# refused by the secret_versions row's MAC (docs/STORE.md "Row
# authentication").

load helpers

bats_require_minimum_version 1.5.0

setup() {
	platform_start
	APP="$APPS_DIR/app.sh"
	OLD="old-$CANARY"
	NEW="new-$CANARY"
}

teardown() {
	run_stop
	platform_stop
}

# Requests as the agent's host: sign and send (helpers.bash), as t0610 does.

# boot: what an agent does to boot machine MID on MHOST: a boot token from
# the api (for the machine's current release and its secrets version),
# then the keeper's open. Sets CODE and BODY.
boot() {
	printf '{}' >"$T/empty.json"
	sign "$MHOST" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	send "$API_URL" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	[ "$CODE" = 200 ] || { echo "boot token: $CODE $BODY" >&2; return 1; }
	jq -cn --arg t "$(jq -r .token <<<"$BODY")" '{token: $t}' >"$T/open.json"
	sign "$MHOST" POST /v1/open "$T/open.json"
	send "$KEEPER_URL" POST /v1/open "$T/open.json"
}

opened() {
	[ "$CODE" = 200 ] || { echo "status $CODE: $BODY" >&2; return 1; }
	[[ "$(jq -r .sealed <<<"$BODY")" =~ ^[A-Za-z0-9_-]{40,}$ ]]
}

# refused NAME CHECK: the last open was refused (400, no delivery), and its
# audit event (the newest secrets.open) names NAME and CHECK; the keeper's
# log line too. Neither holds a value (the canary scan checks that too).
refused() {
	local ev
	[ "$CODE" = 400 ] || { echo "status $CODE, expected 400: $BODY" >&2; return 1; }
	[ -z "$(jq -r '.sealed // empty' <<<"$BODY")" ]
	[ "$(jq -r .error.message <<<"$BODY")" = "secret failed verification" ]
	ev=$(store_sql "SELECT outcome FROM audit_events WHERE action = 'secrets.open' ORDER BY seq DESC LIMIT 1")
	[ "$ev" = "refused: secret failed verification" ] || { echo "outcome: $ev" >&2; return 1; }
	ev=$(store_sql "SELECT detail FROM audit_events WHERE action = 'secrets.open' ORDER BY seq DESC LIMIT 1")
	[ "$(jq -c .failed <<<"$ev")" = "$(jq -cn --arg n "$1" --arg c "$2" '{name: $n, check: $c}')" ] ||
		{ echo "detail: $ev" >&2; return 1; }
	grep -q "event=secret_open_refused app_id=$SHOP name=$1 .*check=$2" "$T/keeper.log"
}

# value_id VERSION NAME: the value row shop's VERSION maps NAME to.
value_id() {
	store_sql "SELECT value_id FROM secret_entries WHERE app_id = '$SHOP' AND version = $1 AND name = '$2'"
}

# no_old_value: no started machine of shop has KEY=$OLD.
no_old_value() {
	local id pid
	while read -r id pid; do
		[ -n "$id" ] || continue
		[ "$(env_of "$pid" KEY)" != "$OLD" ] || return 1
	done < <(started_pids shop)
}

# two_versions: shop runs one machine on h1 with secrets version 1 (KEY,
# OTHER), then `secrets set KEY` rolls it to version 2. Sets SHOP, MID,
# MHOST, MPID; the control open of version 2 works.
two_versions() {
	agents_up 1
	"$COFFER" apps create shop >/dev/null
	"$COFFER" secrets set -a shop "KEY=$OLD" OTHER=other-value >/dev/null
	deploy shop -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started shop 1
	wait_until 30 releases_settled shop
	run_logged cli secrets set -a shop "KEY=$NEW"
	[ "$status" -eq 0 ] || { echo "secrets set: $output" >&2; return 1; }
	wait_until 30 count_started shop 1
	read -r MID MHOST MPID < <(machines_json shop | jq -r '.[0] | "\(.id) \(.host_id) \(.pid)"')
	[ "$(env_of "$MPID" KEY)" = "$NEW" ]
	[ "$(api_get /v1/apps/shop/status | jq -r .deployed_version)" = 2 ]
	SHOP=$(app_id shop)
	boot
	opened
}

app_id() {
	store_sql "SELECT id FROM apps WHERE name = '$1'"
}

@test "an older ciphertext copied over the newer value row of the same name: refused, no machine gets the old value" {
	two_versions
	digest=$("$COFFER" secrets list -a shop --json | jq -r '.[] | select(.name == "KEY") | .digest')
	old=$(value_id 1 KEY)
	new=$(value_id 2 KEY)
	[ "$old" != "$new" ]
	store_sql "UPDATE secret_values SET ciphertext = (SELECT ciphertext FROM secret_values WHERE id = '$old')
		   WHERE id = '$new'"
	boot
	refused KEY ciphertext
	# and with the old digest too: the manifest holds the new one
	store_sql "UPDATE secret_values SET digest = (SELECT digest FROM secret_values WHERE id = '$old') WHERE id = '$new'"
	boot
	refused KEY digest
	# secrets list shows the manifest: the new value's digest still
	[ "$("$COFFER" secrets list -a shop --json | jq -r '.[] | select(.name == "KEY") | .digest')" = "$digest" ]
	# a new machine cannot boot: the release fails, and no machine ever runs with the old value
	run_logged cli scale count 2 -a shop
	[ "$status" -ne 0 ]
	[[ "$output" == *"failed to start"* ]]
	no_old_value
	# the machine that ran keeps the new value
	[ "$(env_of "$MPID" KEY)" = "$NEW" ]
}

@test "a version's entry pointed at the older value row: refused by the manifest" {
	two_versions
	old=$(value_id 1 KEY)
	new=$(value_id 2 KEY)
	store_sql "UPDATE secret_entries SET value_id = '$old' WHERE app_id = '$SHOP' AND version = 2 AND name = 'KEY'"
	boot
	refused KEY value_row
	no_old_value
	# put back, it opens: the refusal was about that one row
	store_sql "UPDATE secret_entries SET value_id = '$new' WHERE app_id = '$SHOP' AND version = 2 AND name = 'KEY'"
	boot
	opened
}

@test "the manifest rewritten with its entry to name the older value row: refused by the row's MAC" {
	two_versions
	old=$(value_id 1 KEY)
	new=$(value_id 2 KEY)
	old_digest=$(store_sql "SELECT digest FROM secret_values WHERE id = '$old'")
	new_digest=$(store_sql "SELECT digest FROM secret_values WHERE id = '$new'")
	manifest=$(store_sql "SELECT manifest FROM secret_versions WHERE app_id = '$SHOP' AND version = 2")
	# consistent as far as the manifest goes: entry and manifest both name the old row and digest
	store_sql "UPDATE secret_entries SET value_id = '$old' WHERE app_id = '$SHOP' AND version = 2 AND name = 'KEY'"
	store_sql "UPDATE secret_versions SET manifest = replace(replace(manifest, '$new', '$old'), '$new_digest', '$old_digest')
		   WHERE app_id = '$SHOP' AND version = 2"
	[ "$(store_sql "SELECT manifest FROM secret_versions WHERE app_id = '$SHOP' AND version = 2")" != "$manifest" ]
	boot
	[ "$CODE" = 500 ] || { echo "status $CODE: $BODY" >&2; return 1; }
	[ -z "$(jq -r '.sealed // empty' <<<"$BODY")" ]
	[ "$(store_sql "SELECT outcome FROM audit_events WHERE action = 'secrets.open' ORDER BY seq DESC LIMIT 1")" = \
		"refused: secrets version row failed authentication (tampered)" ]
	grep -q "event=row_tampered table=secret_versions " "$T/keeper.log"
	# the api refuses to list it too, and no machine gets the old value
	run "$COFFER" secrets list -a shop
	[ "$status" -ne 0 ]
	no_old_value
	# put back, it opens
	store_sql "UPDATE secret_entries SET value_id = '$new' WHERE app_id = '$SHOP' AND version = 2 AND name = 'KEY'"
	store_sql "UPDATE secret_versions SET manifest = replace(replace(manifest, '$old', '$new'), '$old_digest', '$new_digest')
		   WHERE app_id = '$SHOP' AND version = 2"
	boot
	opened
}

@test "a name dropped from a version, or one added to it: refused" {
	two_versions
	other=$(value_id 2 OTHER)
	first=$(store_sql "SELECT first_set_at FROM secret_entries WHERE app_id = '$SHOP' AND version = 2 AND name = 'OTHER'")
	store_sql "DELETE FROM secret_entries WHERE app_id = '$SHOP' AND version = 2 AND name = 'OTHER'"
	boot
	refused OTHER missing_from_version
	store_sql "INSERT INTO secret_entries (app_id, version, name, value_id, first_set_at)
		   VALUES ('$SHOP', 2, 'OTHER', '$other', $first)"
	boot
	opened
	# an extra name, mapped to a genuine value row of the app
	store_sql "INSERT INTO secret_entries (app_id, version, name, value_id, first_set_at)
		   VALUES ('$SHOP', 2, 'EXTRA', '$other', $first)"
	boot
	refused EXTRA not_in_manifest
	no_old_value
}

@test "a row moved to another name or to another app: refused" {
	two_versions
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web KEY=web-value >/dev/null
	web=$(app_id web)
	key=$(value_id 2 KEY)
	# an entry renamed: OTHER's row now under MOVED
	store_sql "UPDATE secret_entries SET name = 'MOVED' WHERE app_id = '$SHOP' AND version = 2 AND name = 'OTHER'"
	boot
	refused MOVED not_in_manifest
	store_sql "UPDATE secret_entries SET name = 'OTHER' WHERE app_id = '$SHOP' AND version = 2 AND name = 'MOVED'"
	boot
	opened
	# OTHER's ciphertext (same app, same key) copied into KEY's row
	saved=$(store_sql "SELECT digest FROM secret_values WHERE id = '$key'")
	store_sql "CREATE TABLE saved_ct AS SELECT ciphertext FROM secret_values WHERE id = '$key'"
	store_sql "UPDATE secret_values SET ciphertext = (SELECT ciphertext FROM secret_values WHERE id = '$(value_id 2 OTHER)')
		   WHERE id = '$key'"
	boot
	refused KEY ciphertext
	store_sql "UPDATE secret_values SET ciphertext = (SELECT ciphertext FROM saved_ct) WHERE id = '$key'"
	boot
	opened
	# web's KEY row: its ciphertext copied into shop's, then shop's entry pointed at web's row
	wkey=$(store_sql "SELECT value_id FROM secret_entries WHERE app_id = '$web' AND name = 'KEY'")
	store_sql "UPDATE secret_values SET ciphertext = (SELECT ciphertext FROM secret_values WHERE id = '$wkey')
		   WHERE id = '$key'"
	boot
	refused KEY ciphertext
	store_sql "UPDATE secret_values SET ciphertext = (SELECT ciphertext FROM saved_ct) WHERE id = '$key'"
	store_sql "UPDATE secret_entries SET value_id = '$wkey' WHERE app_id = '$SHOP' AND version = 2 AND name = 'KEY'"
	boot
	refused KEY value_row
	[ "$saved" = "$(store_sql "SELECT digest FROM secret_values WHERE id = '$key'")" ]
	no_old_value
}
