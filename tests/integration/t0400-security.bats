#!/usr/bin/env bats
# The threat model's write-path rows, attacked: the API's whole state and a
# copy of the store cannot open a value; ciphertexts moved in the store fail
# to open. vault_probe is the attacker (tests/security/vault_probe.c); the
# keeper's master key is its positive control, so the probe is known to work.

load helpers

bats_require_minimum_version 1.5.0

# The tests that only read share one platform; those that edit the store
# have their own.
OWN_PLATFORM=(
	"a ciphertext moved to another name fails to open"
	"a ciphertext moved to another app fails to open"
)

setup_file() { platform_start; }
teardown_file() { platform_stop; }
setup() { platform_test_start; }
teardown() { platform_test_stop; }

@test "positive control: the keeper's master key opens the canary" {
	run_logged "$VAULT_PROBE" --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --app canary --master "$T/keeper/keeper.key" --canary "$CANARY"
	[ "$status" -eq 0 ]
	[[ "$output" == *"CANARY_SECRET opened"* ]]
	[[ "$output" == *"CANARY_SECRET canary"* ]]
}

@test "the API's whole state cannot open a value" {
	mkdir -p "$T/loot"
	cp /proc/"$API_PID"/environ "$T/loot/api.environ"
	cp /proc/"$API_PID"/cmdline "$T/loot/api.cmdline"
	loot=(--loot "$T/api" --loot "$T/keeper/keeper.pub" --loot "$T/keeper/api.credential"
	      --loot "$T/keeper/api.rows.key" --loot "$T/keeper/api.digest.key" --loot "$T/keeper/api.boot.key"
	      --loot "$T/config.json" --loot "$T/api.ready" --loot "$T/loot")
	[ -z "${PG_SCHEMA:-}" ] && loot+=(--loot "$T/store.db")
	run_logged "$VAULT_PROBE" --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --app canary "${loot[@]}" --canary "$CANARY"
	[ "$status" -eq 1 ]
	[[ "$output" == *"CANARY_SECRET refused"* ]]
	[[ "$output" != *"opened"* ]]
	# and none of it holds the value in plaintext
	run ! grep -rqaF -- "$CANARY" "$T/api" "$T/keeper/keeper.pub" "$T/keeper/api.credential" "$T/keeper/api.rows.key" \
		"$T/keeper/api.digest.key" "$T/loot"
}

@test "a copy of the store holds no value and opens nothing" {
	store_dump "$T/dump.sql"
	[ -s "$T/dump.sql" ]
	run ! dump_holds "$T/dump.sql" "$CANARY"
	run_logged "$VAULT_PROBE" --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --app canary --loot "$T/dump.sql"
	[ "$status" -eq 1 ]
	[[ "$output" == *"CANARY_SECRET refused"* ]]
}

@test "a ciphertext moved to another name fails to open" {
	"$COFFER" apps create shop >/dev/null
	"$COFFER" secrets set -a shop FIRST=one-value SECOND=two-value >/dev/null
	app=$(store_sql "SELECT id FROM apps WHERE name = 'shop'")
	store_sql "UPDATE secret_values SET ciphertext = (SELECT ciphertext FROM secret_values
		   WHERE app_id = '$app' AND name = 'FIRST') WHERE app_id = '$app' AND name = 'SECOND'"
	run_logged "$VAULT_PROBE" --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --app shop --master "$T/keeper/keeper.key"
	[[ "$output" == *"FIRST opened"* ]]
	[[ "$output" == *"SECOND refused"* ]]
}

@test "a ciphertext moved to another app fails to open" {
	"$COFFER" apps create shop >/dev/null
	"$COFFER" secrets set -a shop CANARY_SECRET=placeholder >/dev/null
	shop=$(store_sql "SELECT id FROM apps WHERE name = 'shop'")
	canary=$(store_sql "SELECT id FROM apps WHERE name = 'canary'")
	store_sql "UPDATE secret_values SET ciphertext = (SELECT ciphertext FROM secret_values
		   WHERE app_id = '$canary' AND name = 'CANARY_SECRET') WHERE app_id = '$shop'"
	run_logged "$VAULT_PROBE" --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --app shop --master "$T/keeper/keeper.key" --canary "$CANARY"
	[ "$status" -eq 1 ]
	[[ "$output" == *"CANARY_SECRET refused"* ]]
	[[ "$output" != *"canary"* ]]
}
