#!/usr/bin/env bats
# coffer secrets verify (issue 15, part 5; docs/API.md "secrets verify"):
# the candidate is sealed in the CLI, the api forwards it with the stored
# sealed value, the keeper opens both and compares; right and wrong give
# exit 0 and 1, the oracle is rate-limited per token and app (429 with
# Retry-After, the CLI's exit 7), read tokens are refused, every try is
# audited with the name and the outcome and never the candidate. The
# values are the canary's: the scan (teardown) finds them nowhere.

load helpers

bats_require_minimum_version 1.5.0

setup_file() { platform_start; }
teardown_file() { platform_stop; }

setup() {
	unset COFFER_APP
}

teardown() {
	canary_scan
}

# verify APP NAME CANDIDATE [ARGS...]: the candidate on stdin (printf: with echo's newline)
verify() {
	local app=$1 name=$2 cand=$3
	shift 3
	run_logged bash -c 'printf "%s\n" "$1" | "$COFFER" secrets verify -a "$2" "$3" "${@:4}"' _ "$cand" "$app" "$name" "$@"
}

@test "secrets verify: matches (0), does not match (1), --raw, an unknown name" {
	local tok
	"$COFFER" apps create ver1 >/dev/null
	"$COFFER" secrets set -a ver1 "PW=$CANARY" OTHER=x >/dev/null
	verify ver1 PW "$CANARY"
	[ "$status" -eq 0 ]
	[ "$output" = matches ]
	verify ver1 PW "$CANARY-not"
	[ "$status" -eq 1 ]
	[ "$output" = "does not match" ]
	# a prefix is not the value; nor is the other secret's value
	verify ver1 PW "${CANARY:0:8}"
	[ "$status" -eq 1 ]
	verify ver1 OTHER "$CANARY"
	[ "$status" -eq 1 ]
	# --raw keeps the newline echo added: then it does not match
	verify ver1 PW "$CANARY" --raw
	[ "$status" -eq 1 ]
	[ "$output" = "does not match" ]
	verify ver1 NOPE "$CANARY"
	[ "$status" -eq 5 ]
	[[ "$output" == *"app 'ver1' has no secret 'NOPE'"* ]]
	# the audit: each try, with the name and the outcome, never the candidate
	run_logged "$COFFER" audit -a ver1 --json
	[ "$status" -eq 0 ]
	[ "$(jq '[.[] | select(.action == "secrets.verify" and .actor != "api" and .outcome == "ok" and .detail.name == "PW")] | length' <<<"$output")" -ge 4 ]
	jq -e '[.[] | select(.action == "secrets.verify" and .detail.outcome == "matches")] | length >= 1' <<<"$output"
	# the keeper's own event of each comparison, in the org's audit, naming the app and the token
	tok=$(jq -r '[.[] | select(.action == "secrets.verify" and .actor != "api" and .detail.outcome == "matches")][0].actor' <<<"$output")
	[[ "$tok" == tok_* ]]
	jq -e --arg tok "$tok" '[.[] | select(.action == "secrets.verify" and .actor == "api" and .app == "ver1" and .detail.by == $tok and .detail.name == "PW")] | length >= 4' <<<"$output"
	[[ "$output" != *"$CANARY"* ]]
	jq -e '[.[] | select(.action == "secrets.verify" and .detail.outcome == "does not match")] | length >= 3' <<<"$output"
	[[ "$output" != *"$CANARY"* ]]
}

@test "secrets verify is rate-limited per token and app: 429 with Retry-After, the CLI says so" {
	local i tok
	"$COFFER" apps create ver2 >/dev/null
	"$COFFER" secrets set -a ver2 "PW=$CANARY" >/dev/null
	for i in $(seq 10); do
		verify ver2 PW "wrong-$i"
		[ "$status" -eq 1 ]
	done
	verify ver2 PW "$CANARY"
	[ "$status" -eq 7 ]
	[[ "$output" == *"too many tries of secrets verify for app 'ver2': at most 10 a minute per token; try again in "* ]]
	[[ "$output" != *matches* ]]
	# the api's answer: 429 and Retry-After, before the body is read
	run curl -sS -D "$T/ver.headers" -o "$T/ver.body" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
		-H 'Content-Type: application/json' -X POST "$API_URL/v1/apps/ver2/secrets/PW/verify" --data '{}'
	[ "$output" = 429 ]
	grep -qiE '^retry-after: [0-9]+' "$T/ver.headers"
	s=$(grep -iE '^retry-after:' "$T/ver.headers" | tr -dc 0-9)
	[ "$s" -ge 1 ] && [ "$s" -le 60 ]
	# another app of the same token, and another token on this app, have their own budget
	"$COFFER" apps create ver3 >/dev/null
	"$COFFER" secrets set -a ver3 "PW=$CANARY" >/dev/null
	verify ver3 PW "$CANARY"
	[ "$status" -eq 0 ]
	tok=$("$COFFER" tokens create --role admin 2>/dev/null)
	run_logged bash -c 'printf "%s\n" "$1" | "$COFFER" secrets verify -a ver2 PW -t "$2"' _ "$CANARY" "$tok"
	[ "$status" -eq 0 ]
	[ "$output" = matches ]
}

@test "secrets verify: a read token is refused (403), and so is a candidate not sealed to the app" {
	local tok
	"$COFFER" apps create ver4 >/dev/null
	"$COFFER" secrets set -a ver4 "PW=$CANARY" >/dev/null
	tok=$("$COFFER" tokens create --role read 2>/dev/null)
	run_logged bash -c 'printf "%s\n" "$1" | "$COFFER" secrets verify -a ver4 PW -t "$2"' _ "$CANARY" "$tok"
	[ "$status" -eq 4 ]
	[[ "$output" != *match* ]]
	run curl -sS -o "$T/ver.body" -w '%{http_code}' -H "Authorization: Bearer $tok" \
		-H 'Content-Type: application/json' -X POST "$API_URL/v1/apps/ver4/secrets/PW/verify" \
		--data '{"sealed":"AAAA","key_version":1}'
	[ "$output" = 403 ]
	# garbage in place of a sealed candidate: 400, no answer either way
	run curl -sS -o "$T/ver.body" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
		-H 'Content-Type: application/json' -X POST "$API_URL/v1/apps/ver4/secrets/PW/verify" \
		--data '{"sealed":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","key_version":1}'
	[ "$output" = 400 ]
	grep -qF "the candidate does not open for secret 'PW' of app 'ver4'" "$T/ver.body"
	[[ "$(cat "$T/ver.body")" != *match* ]]
}
