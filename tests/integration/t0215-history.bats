#!/usr/bin/env bats
# Listing and history (issue 14 part 5), with real processes: `secrets
# list` marks staged sets and unsets, a change rolling out (partial) and
# one whose release failed; `releases show vN` names what a release added,
# changed and removed with the digests `secrets list` shows; `releases
# rollback vN` runs an earlier release's config and secrets again (read
# back from the machine's /proc/PID/environ) and is refused where it
# makes no sense; `secrets history NAME` lists each version that set or
# unset NAME. The machine is tests/integration/apps/app.sh.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	platform_start
	APP="$APPS_DIR/app.sh"
}

teardown() {
	run_stop
	platform_stop
}

# status_of APP NAME: NAME's status in `secrets list --json`
status_of() {
	"$COFFER" secrets list -a "$1" --json | jq -r --arg n "$2" '.[] | select(.name == $n) | .status'
}

# digest_of APP NAME: NAME's digest in `secrets list --json`
digest_of() {
	"$COFFER" secrets list -a "$1" --json | jq -r --arg n "$2" '.[] | select(.name == $n) | .digest'
}

status_is() {
	[ "$(status_of "$1" "$2")" = "$3" ]
}

@test "list marks staged sets and unsets, deploy clears them; releases show names the changes with the list's digests; history" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web A=one B=two "KEEP=$CANARY" >/dev/null
	run_logged cli deploy -a web --grace 1s -- "$APP"
	[ "$status" -eq 0 ]
	v1=$(latest_release web)
	[ "$(release_status web "$v1")" = succeeded ]
	a1=$(digest_of web A)
	b1=$(digest_of web B)
	run_logged "$COFFER" secrets list -a web --json
	[ "$(jq -r '[.[].status] | unique | join(",")' <<<"$output")" = deployed ]

	# staged: a changed value, a new name, an unset name still listed
	"$COFFER" secrets set -a web --stage A=one-again C=three >/dev/null
	"$COFFER" secrets unset -a web --stage B >/dev/null
	run_logged "$COFFER" secrets list -a web --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '.[] | "\(.name)=\(.status)"' <<<"$output" | sort | paste -sd' ')" = \
		"A=staged B=unset C=staged KEEP=deployed" ]
	[ "$(jq -r '.[] | select(.name == "B") | .digest' <<<"$output")" = "$b1" ]
	run_logged "$COFFER" secrets list -a web
	[ "$status" -eq 0 ]
	[[ "$output" =~ B\ +$b1\ +Staged\ unset ]]
	[[ "$output" =~ C\ +[0-9a-f]{32}\ +Staged ]]
	[[ "$output" == *"3 staged secrets are not on the app's machines yet"* ]]

	# deployed: the marks are gone, B is no longer listed
	run_logged cli secrets deploy -a web
	[ "$status" -eq 0 ]
	v2=$(latest_release web)
	[ "$v2" -eq $((v1 + 1)) ]
	run_logged "$COFFER" secrets list -a web --json
	[ "$(jq -r '.[] | "\(.name)=\(.status)"' <<<"$output" | sort | paste -sd' ')" = \
		"A=deployed C=deployed KEEP=deployed" ]
	a2=$(digest_of web A)
	c2=$(digest_of web C)
	[ "$a2" != "$a1" ]

	# releases show v2: C added, A changed, B removed, with the list's digests
	run_logged "$COFFER" releases show "v$v2" -a web --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .version <<<"$output")" = "$v2" ]
	[ "$(jq -r .status <<<"$output")" = succeeded ]
	[ "$(jq -r .previous_version <<<"$output")" = "$v1" ]
	[ "$(jq -c '[.added[] | [.name, .digest]]' <<<"$output")" = "[[\"C\",\"$c2\"]]" ]
	[ "$(jq -c '[.changed[] | [.name, .digest, .previous_digest]]' <<<"$output")" = "[[\"A\",\"$a2\",\"$a1\"]]" ]
	[ "$(jq -c '[.removed[] | [.name, .previous_digest]]' <<<"$output")" = "[[\"B\",\"$b1\"]]" ]
	# N works as vN; the table names each change
	run_logged "$COFFER" releases show "$v2" -a web
	[ "$status" -eq 0 ]
	[[ "$output" =~ added\ +C\ +$c2 ]]
	[[ "$output" =~ changed\ +A\ +$a2\ +$a1 ]]
	[[ "$output" =~ removed\ +B\ +-\ +$b1 ]]
	# the first release added everything
	run_logged "$COFFER" releases show "v$v1" -a web --json
	[ "$(jq -r '[.added[].name] | join(",")' <<<"$output")" = A,B,KEEP ]
	run_logged "$COFFER" releases show v999 -a web
	[ "$status" -ne 0 ]
	[[ "$output" == *"no release v999"* ]]
	run_logged "$COFFER" releases show bogus -a web
	[ "$status" -eq 2 ]
	[[ "$output" == *"'bogus' is not a release"* ]]

	# history of A across set, set, unset, set
	"$COFFER" secrets unset -a web --stage A >/dev/null
	"$COFFER" secrets set -a web --stage A=one >/dev/null
	run_logged "$COFFER" secrets history A -a web --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.[].action] | join(",")' <<<"$output")" = set,set,unset,set ]
	[ "$(jq -r 'map(.digest // "-") | join(",")' <<<"$output")" = "$a1,$a2,-,$a1" ]
	[ "$(jq -r '[.[].version] | . == (sort | unique)' <<<"$output")" = true ]
	run_logged "$COFFER" secrets history A -a web
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^VERSION\ +DIGEST\ +STATUS\ +BY\ +DATE ]]
	[[ "${lines[3]}" =~ ^[0-9]+\ +unset\  ]]
	run_logged "$COFFER" secrets history NEVER -a web --json
	[ "$status" -eq 0 ]
	[ "$output" = "[]" ]
	run_logged "$COFFER" secrets history 1BAD -a web
	[ "$status" -eq 2 ]
	[[ "$output" == *"invalid name"* ]]
}

@test "list marks a change rolling out as partial, and one whose release failed as failed" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web A=one >/dev/null
	# a grace window long enough to see the next release in progress
	run_logged cli deploy -a web --grace 3s -- "$APP"
	[ "$status" -eq 0 ]
	a1=$(digest_of web A)
	run_logged cli secrets set -a web --detach A=two
	[ "$status" -eq 0 ]
	v=$(latest_release web)
	run_logged "$COFFER" secrets list -a web
	release_done web "$v" || [[ "$output" =~ A\ +[0-9a-f]{32}\ +Partial ]]
	wait_until 60 release_done web "$v"
	status_is web A deployed
	a2=$(digest_of web A)

	# a release whose machine exits at once: it fails, the app runs on
	run_logged cli secrets set -a web A=three CRASH=1
	[ "$status" -ne 0 ]
	v=$(latest_release web)
	[ "$(release_status web "$v")" = failed ]
	run_logged "$COFFER" secrets list -a web --json
	[ "$(jq -r '.[] | "\(.name)=\(.status)"' <<<"$output" | sort | paste -sd' ')" = "A=failed CRASH=failed" ]
	# A: the digest the machines run; CRASH: the one that failed
	[ "$(jq -r '.[] | select(.name == "A") | .digest' <<<"$output")" = "$a2" ]
	[ "$a2" != "$a1" ]
	run_logged "$COFFER" secrets list -a web
	[[ "$output" =~ CRASH\ +[0-9a-f]{32}\ +Failed ]]
	# releases show of the failed release: its reason, and what it tried
	run_logged "$COFFER" releases show "v$v" -a web --json
	[ "$(jq -r .status <<<"$output")" = failed ]
	[ "$(jq -r '[.added[].name] | join(",")' <<<"$output")" = CRASH ]
	[ "$(jq -r '[.changed[].name] | join(",")' <<<"$output")" = A ]
	# staging a new change of A marks it staged again
	"$COFFER" secrets set -a web --stage A=four >/dev/null
	status_is web A staged
}

@test "rollback runs an earlier release's secrets again; refused for the current one, an unknown one, one in progress" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web A=one >/dev/null
	run_logged cli deploy -a web --grace 1s --env GREETING=first -- "$APP"
	[ "$status" -eq 0 ]
	v1=$(latest_release web)
	a1=$(digest_of web A)
	run_logged cli secrets set -a web A=two "B=$CANARY"
	[ "$status" -eq 0 ]
	v2=$(latest_release web)
	wait_until 30 machine_env_is web A two

	# refused: the current release, an unknown one, not a release
	run_logged cli releases rollback "v$v2" -a web
	[ "$status" -ne 0 ]
	[[ "$output" == *"release v$v2 is the current release of app 'web'"* ]]
	run_logged cli releases rollback v77 -a web
	[ "$status" -ne 0 ]
	[[ "$output" == *"no release v77"* ]]
	run_logged cli releases rollback 0 -a web
	[ "$status" -eq 2 ]
	# without the deployer's signature the api makes none
	curl -sS -o "$T/unsigned.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
		-H 'Content-Type: application/json' --data '{}' "$API_URL/v1/apps/web/releases/$v1/rollback" >"$T/unsigned.code"
	[ "$(cat "$T/unsigned.code")" = 403 ]
	[ "$(latest_release web)" = "$v2" ]

	# the rollback: a new release with v1's secrets and config, waited for
	run_logged cli releases rollback "v$v1" -a web
	[ "$status" -eq 0 ]
	v3=$(latest_release web)
	[ "$v3" -eq $((v2 + 1)) ]
	[ "$(release_status web "$v3")" = succeeded ]
	wait_until 30 machine_env_is web A one
	wait_until 30 machine_env_is web GREETING first
	read -r _ pid < <(started_pids web)
	run ! env_of "$pid" B
	[ "$(env_of "$pid" COFFER_RELEASE_VERSION)" = "$v3" ]
	# the list shows v1's secrets, deployed
	run_logged "$COFFER" secrets list -a web --json
	[ "$(jq -r '.[] | "\(.name)=\(.status)"' <<<"$output" | paste -sd' ')" = "A=deployed" ]
	[ "$(digest_of web A)" = "$a1" ]
	run_logged "$COFFER" releases show "v$v3" -a web --json
	[ "$(jq -r '[.removed[].name] | join(",")' <<<"$output")" = B ]
	[ "$(jq -r '.changed[0].digest' <<<"$output")" = "$a1" ]

	# refused while a release is in progress
	run_logged cli secrets set -a web --detach A=five
	[ "$status" -eq 0 ]
	v4=$(latest_release web)
	run_logged cli releases rollback "v$v2" -a web
	if [ "$status" -ne 0 ]; then
		[[ "$output" == *"has release v$v4 in progress"* ]]
		wait_until 60 release_done web "$v4"
		[ "$(latest_release web)" = "$v4" ]
	else # a loaded machine finished v4 first: then the rollback was a release of its own
		[ "$(latest_release web)" = $((v4 + 1)) ]
	fi
}
