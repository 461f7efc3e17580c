#!/usr/bin/env bats
# The CLI's one confirm rule (flyctl's) on a real platform: `machines
# destroy` without a terminal and without --yes is refused and changes
# nothing; with --yes it destroys; on a terminal it asks.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	platform_start
	APP="$APPS_DIR/app.sh"
	SHARED=$(mktemp -d "$T/shared.XXXXXX")
	chmod 1777 "$SHARED"
	agents_up 1
	"$COFFER" apps create web >/dev/null
	deploy web --count 1 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started web 1
	read -r ID PID < <(started_pids web)
}

teardown() {
	run_stop
	platform_stop
}

@test "machines destroy without a terminal and without --yes: refused (exit 2), the machine still runs" {
	run_logged cli machines destroy -a web "$ID" </dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"'machines destroy' is destructive: refusing without a terminal: pass --yes"* ]]
	[[ "$output" != *"destroyed"* ]]
	kill -0 "$PID"
	[ "$(machines_json web | jq -r '[.[] | select(.state == "started")] | .[0].id')" = "$ID" ]
	run_logged cli machines destroy -a web "$ID" --yes </dev/null
	[ "$status" -eq 0 ]
	[ "$output" = "Machine $ID destroyed" ]
	wait_until 20 gone "$PID"
	[ "$(api_get '/v1/apps/web/machines?all=1' | jq -r --arg id "$ID" '.machines[] | select(.id == $id) | .state')" = destroyed ]
}

@test "machines destroy on a terminal: 'n' keeps the machine, 'y' destroys it" {
	command -v script >/dev/null || skip "script (util-linux) is not installed: no pty"
	cmd=$(printf '%q ' "$COFFER" machines destroy -a web "$ID")
	run_logged script -qec "$cmd" /dev/null < <(printf 'n\n')
	[ "$status" -eq 1 ]
	[[ "$output" == *"Destroy machine $ID of app 'web'?"* ]]
	[[ "$output" == *"not confirmed: machine not destroyed"* ]]
	kill -0 "$PID"
	run_logged script -qec "$cmd" /dev/null < <(printf 'y\n')
	[ "$status" -eq 0 ]
	[[ "$output" == *"Machine $ID destroyed"* ]]
	wait_until 20 gone "$PID"
}
