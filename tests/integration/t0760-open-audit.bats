#!/usr/bin/env bats
# The keeper's open on real processes (issue 12, docs/CRYPTO.md "Opening
# for a host"): every open names the deployers whose signatures it relied
# on, and `coffer audit` shows them; once the signer's key is revoked, the
# machine that exits is not booted again: the keeper refuses its open, and
# the refusal names the revoked signature. The attacks of a compromised
# api are t0750's; the checks one by one are tests/unit/test_keeper_open.c.

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

# audit_opens APP OUTCOME_PREFIX: the secrets.open events of APP whose outcome starts so, as a JSON array
audit_opens() {
	run_logged cli audit -a "$1" --json
	[ "$status" -eq 0 ] || return 1
	jq -c --arg o "$2" '[(if type == "array" then . else .events end)[]
		| select(.action == "secrets.open" and (.outcome | startswith($o)))
		| .detail |= (if type == "string" then fromjson else . end)]' <<<"$output"
}

# refused_open APP: the keeper has refused an open of APP since it began (an audited refusal)
refused_open() {
	local ev
	ev=$(audit_opens "$1" "refused: ") || return 1
	[ "$(jq length <<<"$ev")" -gt 0 ]
}

@test "every open names the deployers it relied on; a revoked signer's machine is not booted again" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web DB_URL=postgres://first >/dev/null
	deploy web -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started web 1
	me=$(deployer_id)
	[ -n "$me" ]
	ok=$(audit_opens web ok)
	[ "$(jq length <<<"$ok")" -ge 1 ]
	[ "$(jq -r '.[-1].detail.deployer' <<<"$ok")" = "$me" ]
	[ "$(jq -r '.[-1].detail.manifest_deployer' <<<"$ok")" = "$me" ]
	# the table shows it too
	run_logged cli audit -a web
	[ "$status" -eq 0 ]
	grep -q "\"deployer\":\"$me\"" <<<"$output"

	# the signer's key revoked: the running machine's process ends; it is not started again
	run_logged cli deployers revoke "$me"
	[ "$status" -eq 0 ]
	read -r _ pid < <(started_pids web)
	kill "$pid"
	wait_until 60 refused_open web
	ev=$(audit_opens web "refused: ")
	[ "$(jq -r '.[-1].outcome' <<<"$ev")" = "refused: release not signed by a live deployer of this app" ]
	[ "$(jq -r '.[-1].detail.failed.check' <<<"$ev")" = statement_signature ]
	[ "$(jq -r --arg me "$me" '.[-1].detail.refused_signatures[] | select(.deployer == $me) | .why' <<<"$ev" | head -n 1)" = "deployer key revoked" ]
	run ! count_started web 1
}
