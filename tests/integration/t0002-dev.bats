#!/usr/bin/env bats
# coffer dev: every role on one machine, on SQLite; export lines only once
# every role answers; supervision; a clean stop; a restart reuses the state.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/coffer-dev.XXXXXX")
	export COFFER_CONFIG="$T/config.json"
	unset COFFER_API_URL COFFER_TOKEN COFFER_APP
}

teardown() {
	[ -n "${DEV_PID:-}" ] && kill -INT "$DEV_PID" 2>/dev/null && wait "$DEV_PID" 2>/dev/null
	canary_scan
	rm -rf "$T"
}

# dev_start [ARGS...]: coffer dev on $T/state, with ARGS.
dev_start() {
	rm -f "$T/state/env" "$T/dev.out"
	"$COFFER" dev --state-dir "$T/state" --api-addr 127.0.0.1:0 --keeper-addr 127.0.0.1:0 "$@" \
		>"$T/dev.out" 2>>"$T/dev.log" &
	DEV_PID=$!
	wait_file "$T/state/env" "$DEV_PID"
	# the export lines come after the env file: wait for them too
	wait_until 30 grep -q COFFER_TOKEN "$T/dev.out"
}

# api_replaced PID: dev runs an api again, not PID; NEW is its pid.
api_replaced() {
	NEW=$(role_pid api)
	[ -n "$NEW" ] && [ "$NEW" != "$1" ]
}

# api_healthy: the api that STATE/env names answers its health check.
api_healthy() {
	source "$T/state/env"
	curl -fsS --cacert "$COFFER_CA" "$COFFER_API_URL/v1/health"
}

role_pid() { pgrep -P "$DEV_PID" -f "coffer $1 " | head -n 1; }

@test "dev prints the export lines, writes env and config, and the CLI works with them" {
	dev_start
	grep -q '^export COFFER_API_URL=https://127.0.0.1:[0-9]*$' "$T/dev.out"
	grep -qx "export COFFER_CA=$T/state/tls/ca.pem" "$T/dev.out"
	[ "$(jq -r .ca "$T/config.json")" = "$T/state/tls/ca.pem" ]
	[ "$(stat -c %a "$T/state/tls/ca.key")" = 600 ]
	grep -q '^export COFFER_TOKEN=coffer_' "$T/dev.out"
	cmp "$T/dev.out" "$T/state/env"
	[ "$(stat -c %a "$T/state/env")" = 600 ]
	[ "$(stat -c %a "$T/config.json")" = 600 ]
	[ "$(stat -c %a "$T/state/keeper/keeper.key")" = 600 ]
	# the CLI finds the API and the token in its config alone
	run "$COFFER" apps create web
	[ "$status" -eq 0 ]
	run "$COFFER" secrets set -a web "CANARY_SECRET=$CANARY"
	[ "$status" -eq 0 ]
	run "$COFFER" secrets list -a web
	[ "$status" -eq 0 ]
	[[ "$output" == *CANARY_SECRET* ]]
	[[ "$output" != *"$CANARY"* ]]
	# the CLI's deployer key is enrolled (admin of every app) with nothing more to do
	[ "$(stat -c %a "$T/deployer.key")" = 600 ]
	id=$(jq -r .deployer_id "$T/config.json")
	run "$COFFER" deployers list --json
	[ "$status" -eq 0 ]
	[ "$(jq -r --arg id "$id" '.deployers[] | select(.id == $id) | .role + " " + .app_id' <<<"$output")" = "admin *" ]
}

@test "dev restarts a role that dies, and Ctrl-C stops every role" {
	dev_start
	api=$(role_pid api)
	keeper=$(role_pid keeper)
	[ -n "$api" ]
	[ -n "$keeper" ]
	kill -KILL "$api"
	wait_until 30 api_replaced "$api"
	new=$NEW
	[ -n "$new" ]
	[ "$new" != "$api" ]
	wait_until 30 api_healthy
	source "$T/state/env"
	run curl -fsS --cacert "$COFFER_CA" "$COFFER_API_URL/v1/health"
	[ "$status" -eq 0 ]
	kill -INT "$DEV_PID"
	wait "$DEV_PID"
	DEV_PID=
	run ! kill -0 "$new" 2>/dev/null
	run ! kill -0 "$keeper" 2>/dev/null
}

@test "a second dev run on the same state reuses keys and token" {
	dev_start
	first=$(grep COFFER_TOKEN "$T/state/env")
	deployer=$(jq -r .deployer_id "$T/config.json")
	"$COFFER" apps create kept >/dev/null
	kill -INT "$DEV_PID"
	wait "$DEV_PID"
	dev_start
	[ "$(grep COFFER_TOKEN "$T/state/env")" = "$first" ]
	run "$COFFER" apps list
	[ "$status" -eq 0 ]
	[[ "$output" == *kept* ]]
	# the same deployer, not enrolled again; its keeper's new address in the config
	[ "$(jq -r .deployer_id "$T/config.json")" = "$deployer" ]
	run "$COFFER" deployers list --json
	[ "$status" -eq 0 ]
	[ "$(jq '.deployers | length' <<<"$output")" = 1 ]
}

@test "without COFFER_CONFIG, a dev on its own state folder keeps the CLI's config there and says how to use it" {
	unset COFFER_CONFIG
	mkdir "$T/home"
	HOME="$T/home" dev_start
	[ -f "$T/state/cli-config.json" ]
	[ "$(stat -c %a "$T/state/cli-config.json")" = 600 ]
	# the default config (another dev's) is left alone
	[ ! -e "$T/home/.config/coffer" ]
	grep -qx "export COFFER_CONFIG=$T/state/cli-config.json" "$T/state/env"
	grep -q "in another terminal, first run: source $T/state/env" "$T/dev.log"
	# another terminal: the env file alone points the CLI at this dev
	run env -u COFFER_CONFIG HOME="$T/home" bash -c "source '$T/state/env' && '$COFFER' apps create web"
	[ "$status" -eq 0 ]
	run env -u COFFER_CONFIG HOME="$T/home" bash -c "source '$T/state/env' && '$COFFER' secrets set -a web 'CANARY_SECRET=$CANARY'"
	[ "$status" -eq 0 ]
}

@test "quiet by default: the roles' logs go to DIR/logs, not the terminal; -v shows them too" {
	dev_start
	grep -q "The roles' logs are in $T/state/logs (-v: here too)" "$T/dev.log"
	wait_until 30 grep -q 'route=hosts.heartbeat' "$T/state/logs/api.log"
	[ -s "$T/state/logs/keeper.log" ]
	[ -s "$T/state/logs/dev-1.log" ]
	# only dev's own lines on its terminal
	run grep -c -v '^coffer dev: \|^  coffer ' "$T/dev.log"
	[ "$output" = 0 ]
	kill -INT "$DEV_PID"
	wait "$DEV_PID"
	: >"$T/dev.log"
	dev_start -v
	wait_until 30 grep -q 'route=hosts.heartbeat' "$T/dev.log"
}
