#!/usr/bin/env bats
# Faults the fuzz targets (tests/fuzz, docs/FUZZ.md) stand guard over,
# attacked on a real api: a \u0000 in a secrets-set body does not let an
# unknown field through, a sealed value is strict base64url, and a bearer token respelled with a byte 0x80-0xFF
# (which libsodium 1.0.18's decoder read as '_') is not the token.

load helpers

bats_require_minimum_version 1.5.0

setup_file() { platform_start; }
teardown_file() { platform_stop; }
setup() { platform_test_start; }
teardown() { platform_test_stop; }

# post TOKEN PATH BODY: sets CODE and BODY; the answer is kept under $T for the canary scan.
post() {
	CODE=$(curl -sS -o "$T/last.body" -w '%{http_code}' -H "Authorization: Bearer $1" \
		-H 'Content-Type: application/json' --data-binary "$3" "$API_URL$2") || CODE=000
	BODY=$(cat "$T/last.body")
	printf 'POST %s -> %s %s\n' "$2" "$CODE" "$BODY" >>"$T/outputs.log"
}

version_of() {
	curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" "$API_URL/v1/apps/$1/secrets" | jq -r .version
}

@test "a \\u0000 in a secrets-set body does not skip the unknown-field check" {
	before=$(version_of canary)
	for body in '{"secrets":{"A":"x"},"other":"\u0000"}' '{"other":"\u0000","secrets":{"A":"x"}}' \
		'{"secrets":{"A":"\u0000"},"stage":false,"other":1}'; do
		post "$ADMIN_TOKEN" /v1/apps/canary/secrets "$body"
		[ "$CODE" = 400 ]
		[ "$(jq -r .error.code <<<"$BODY")" = invalid_argument ]
		[[ "$(jq -r .error.message <<<"$BODY")" == *'unknown field "other"'* ]]
	done
	[ "$(version_of canary)" = "$before" ]
	# the \u0000 alone is still named by its secret
	post "$ADMIN_TOKEN" /v1/apps/canary/secrets '{"secrets":{"NUL_VALUE":"a\u0000b"}}'
	[ "$CODE" = 400 ]
	[[ "$(jq -r .error.message <<<"$BODY")" == *"'NUL_VALUE' is plaintext"* ]]
	[ "$(version_of canary)" = "$before" ]
	# the refusals are audited
	n=$(curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" "$API_URL/v1/audit?app=canary" |
		jq '[.events[] | select(.action == "secrets.set" and .outcome == "error:invalid_argument")] | length')
	[ "$n" -ge 4 ]
}

@test "a sealed value in base64url takes the alphabet only" {
	before=$(version_of canary)
	z=$(printf '%032d' 0) id=$(printf '%024d' 0)
	# 60 zero bytes: 80 characters of base64url; bytes 0x80-0xFF (U+00FF is C3 BF
	# in UTF-8) in place of its last one are not base64url, though libsodium
	# 1.0.18 read them as '_'
	sealed=$(head -c 60 /dev/zero | base64 -w0 | tr '+/' '-_' | tr -d '=')
	post "$ADMIN_TOKEN" /v1/apps/canary/secrets \
		"{\"secrets\":{\"B64\":{\"sealed\":\"${sealed%?}\u00ff\",\"digest\":\"$z\",\"value_id\":\"$id\"}}}"
	[ "$CODE" = 400 ]
	[[ "$(jq -r .error.message <<<"$BODY")" == *"'B64' is not a sealed value"* ]]
	[ "$(version_of canary)" = "$before" ]
	# in the alphabet it passes the value checks, and is refused for what follows (no signature)
	post "$ADMIN_TOKEN" /v1/apps/canary/secrets \
		"{\"secrets\":{\"B64\":{\"sealed\":\"$sealed\",\"digest\":\"$z\",\"value_id\":\"$id\"}},\"key_version\":1}"
	[ "$CODE" = 403 ]
	[[ "$(jq -r .error.message <<<"$BODY")" == *"not signed by a deployer of this app"* ]]
	[ "$(version_of canary)" = "$before" ]
}

# (The token is looked up by a hash of its text, so a respelling never found
# it; it is refused as malformed now, before any lookup.)
@test "a bearer token respelled with a byte 0x80-0xFF for '_' is refused as malformed" {
	# a read token whose random part holds a '_' (about one in two does)
	tok=
	for _ in $(seq 1 40); do
		tok=$(curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" --data-binary '{"role":"read"}' \
			"$API_URL/v1/tokens" | jq -r .token)
		[[ "${tok#coffer_}" == *_* ]] && break
	done
	[[ "${tok#coffer_}" == *_* ]]
	code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tok" "$API_URL/v1/apps")
	[ "$code" = 200 ]
	rest=${tok#coffer_}
	for b in $'\x80' $'\xbf' $'\xff'; do
		bad="coffer_${rest/_/$b}"
		code=$(curl -sS -o "$T/last.body" -w '%{http_code}' -H "Authorization: Bearer $bad" "$API_URL/v1/apps")
		[ "$code" = 401 ]
		[ "$(jq -r .error.message "$T/last.body")" = "malformed bearer token" ]
	done
}
