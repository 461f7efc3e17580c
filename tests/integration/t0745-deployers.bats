#!/usr/bin/env bats
# Deployer keys (issue 12, docs/CRYPTO.md "Deployers"): `coffer keeper
# deployer-token` mints a one-time token only the keeper can make; `coffer
# login` enrols the CLI's key with it (proof of possession), keeps the key
# 0600 and pins the keeper's public key in the config; `coffer deployers
# list|revoke` are requests signed by the key. A token used twice, expired,
# edited or absent, a proof by another key, an unsigned, replayed or
# revoked signer are refused; a revocation holds at once, and also when
# the store row is put back as it was. Every enrolment, refusal and
# revocation is audited.

load helpers

bats_require_minimum_version 1.5.0

setup_file() {
	platform_start
}

teardown_file() {
	platform_stop
}

setup() {
	platform_test_start
	# each test's CLI has a config (and deployer key) of its own
	CLI="$T/cli-$BATS_TEST_NUMBER"
	rm -rf "$CLI"
	export COFFER_CONFIG="$CLI/a/config.json"
}

teardown() {
	platform_test_stop
}

# dtoken [ARGS...]: a deployer token of the keeper, for org acme unless --org is given.
dtoken() {
	local org=acme
	[[ " $* " == *" --org "* ]] && org=
	"$COFFER" keeper deployer-token --state-dir "$T/keeper" --store "$STORE_URL" ${org:+--org "$org"} "$@"
}

# login_in NAME TOKEN [ARGS...]: coffer login with the config (and key) in $CLI/NAME.
login_in() {
	local dir=$1 tok=$2
	shift 2
	COFFER_CONFIG="$CLI/$dir/config.json" "$COFFER" login --deployer-token "$tok" --keeper "$KEEPER_URL" "$@"
}

# as NAME CMD...: a coffer command with the config of $CLI/NAME.
as() {
	local dir=$1
	shift
	COFFER_CONFIG="$CLI/$dir/config.json" "$COFFER" "$@"
}

id_of() {
	jq -r .deployer_id "$CLI/$1/config.json"
}

# last_event ACTION: "actor|outcome|org name" of the newest audit event of ACTION.
last_event() {
	store_sql "SELECT e.actor || '|' || e.outcome || '|' || coalesce(o.name, '') FROM audit_events e
		LEFT JOIN orgs o ON o.id = e.org_id WHERE e.action = '$1' ORDER BY e.seq DESC LIMIT 1"
}

# last_detail ACTION FILTER: jq FILTER of the newest ACTION event's detail.
last_detail() {
	store_sql "SELECT detail FROM audit_events WHERE action = '$1' ORDER BY seq DESC LIMIT 1" | jq -r "$2"
}

# b64url_of_hex HEX: base64url without padding of the bytes HEX stands for.
b64url_of_hex() {
	printf '%s' "$1" | xxd -r -p | base64 -w0 | tr '+/' '-_' | tr -d '='
}

# raw_key NAME: the raw 32-byte seed of $CLI/NAME's deployer key, for host_sign (0600).
raw_key() {
	(umask 077 && xxd -r -p <"$CLI/$1/deployer.key" >"$CLI/$1/raw.key")
	echo "$CLI/$1/raw.key"
}

# ed_sign SEEDHEX FILE: base64url Ed25519 signature of FILE's bytes with the seed (openssl).
ed_sign() {
	local pem="$BATS_TEST_TMPDIR/k.pem"
	(umask 077 && printf '302e020100300506032b657004220420%s' "$1" | xxd -r -p |
		openssl pkey -inform DER -out "$pem")
	openssl pkeyutl -sign -inkey "$pem" -rawin -in "$2" | base64 -w0 | tr '+/' '-_' | tr -d '='
}

# ed_pub SEEDHEX: base64url public key of the seed.
ed_pub() {
	printf '302e020100300506032b657004220420%s' "$1" | xxd -r -p | openssl pkey -inform DER -pubout -outform DER |
		tail -c 32 | base64 -w0 | tr '+/' '-_' | tr -d '='
}

# enrol_raw TOKEN NAME PUB PROOF: POST /v1/deployers/enrol by hand; CODE and BODY.
enrol_raw() {
	jq -n --arg t "$1" --arg n "$2" --arg k "$3" --arg p "$4" '{token: $t, name: $n, public_key: $k, proof: $p}' \
		>"$BATS_TEST_TMPDIR/enrol.json"
	HDRS=()
	send "$KEEPER_URL" POST /v1/deployers/enrol "$BATS_TEST_TMPDIR/enrol.json"
}

@test "login enrols the CLI's key with a one-time token: key 0600, the keeper's key pinned, audited" {
	tok=$(dtoken --role admin)
	[[ "$tok" == cdt_* ]]
	run login_in a "$tok" --name alice
	[ "$status" -eq 0 ]
	[[ "$output" == *"Logged in as deployer "*" (alice): role admin, every app"* ]]
	[ "$(stat -c %a "$CLI/a/deployer.key")" = 600 ]
	[ "$(stat -c %a "$CLI/a/config.json")" = 600 ]
	grep -qxE '[0-9a-f]{64}' "$CLI/a/deployer.key"
	id=$(id_of a)
	[ "$(jq -r .keeper_url "$CLI/a/config.json")" = "$KEEPER_URL" ]
	[ "$(jq -r .keeper_public_key "$CLI/a/config.json")" = "$(b64url_of_hex "$(head -c 64 "$T/keeper/keeper.pub")")" ]
	[ "$(store_sql "SELECT role || '|' || app_id || '|' || name || '|' || revoked_at FROM deployers WHERE id = '$id'")" = "admin|*|alice|0" ]
	[ "$(last_event deployers.enrol)" = "deployer:$id|ok|acme" ]
	[ "$(last_detail deployers.enrol .deployer)" = "$id" ]
	# an app-limited deploy key
	run login_in b "$(dtoken --app canary)" --name ci
	[ "$status" -eq 0 ]
	[[ "$output" == *"(ci): role deploy, "* ]]
	[ "$(store_sql "SELECT a.name FROM deployers d JOIN apps a ON a.id = d.app_id WHERE d.id = '$(id_of b)'")" = canary ]
	# a second login of the same CLI enrols the same key again, under a new id
	key=$(cat "$CLI/a/deployer.key")
	run login_in a "$(dtoken)" --name alice2
	[ "$status" -eq 0 ]
	[ "$(cat "$CLI/a/deployer.key")" = "$key" ]
	[ "$(id_of a)" != "$id" ]
	# the token is written nowhere
	run grep -rlaF -- "$tok" "$T"
	[ "$status" -eq 1 ]
}

@test "the token from stdin; a config's other fields are kept" {
	mkdir -p "$CLI/a"
	printf '{"api_url": "%s", "token": "%s"}\n' "$API_URL" "$ADMIN_TOKEN" >"$CLI/a/config.json"
	chmod 600 "$CLI/a/config.json"
	tok=$(dtoken)
	run login_in a - --name piped <<<"$tok"
	[ "$status" -eq 0 ]
	[ "$(jq -r .api_url "$CLI/a/config.json")" = "$API_URL" ]
	[ "$(jq -r .token "$CLI/a/config.json")" = "$ADMIN_TOKEN" ]
	[ -n "$(id_of a)" ]
	COFFER_CONFIG="$CLI/a/config.json" COFFER_TOKEN= COFFER_API_URL= run "$COFFER" apps list --json
	[ "$status" -eq 0 ]
}

@test "a token used twice is refused, and the refusal audited" {
	tok=$(dtoken)
	run login_in a "$tok"
	[ "$status" -eq 0 ]
	run login_in b "$tok"
	[ "$status" -eq 3 ]
	[[ "$output" == *"deployer token already used"* ]]
	[ ! -e "$CLI/b/config.json" ] || [ "$(jq -r '.deployer_id // ""' "$CLI/b/config.json")" = "" ]
	[ "$(last_event deployers.enrol)" = "anonymous|denied:unauthenticated|" ]
	[ "$(last_detail deployers.enrol .refused)" = "deployer token already used" ]
	[ "$(store_sql "SELECT count(*) FROM deployers")" -ge 1 ]
}

@test "an expired token, an edited one and another keeper's are refused" {
	tok=$(dtoken --ttl 1s)
	sleep 2 # the token's life, not an assertion
	run login_in a "$tok"
	[ "$status" -eq 3 ]
	[[ "$output" == *"deployer token expired"* ]]
	# one character of the MAC part changed
	tok=$(dtoken)
	c=${tok: -5:1}
	[ "$c" = A ] && r=B || r=A
	run login_in a "${tok:0:${#tok}-5}$r${tok: -4}"
	[ "$status" -eq 3 ]
	[[ "$output" == *"invalid deployer token"* ]]
	# the org's id changed inside the token: the MAC no longer verifies
	other=$(mktemp -d "$T/other-keeper.XXXXXX")
	"$COFFER" keeper init --state-dir "$other" >/dev/null
	tok=$("$COFFER" keeper deployer-token --state-dir "$other" --store "$STORE_URL" --org acme)
	run login_in a "$tok"
	[ "$status" -eq 3 ]
	[[ "$output" == *"invalid deployer token"* ]]
	[ "$(last_event deployers.enrol)" = "anonymous|denied:unauthenticated|" ]
	[ "$(last_detail deployers.enrol .refused)" = "invalid deployer token" ]
	[ ! -e "$CLI/a/config.json" ] || [ "$(jq -r '.deployer_id // ""' "$CLI/a/config.json")" = "" ]
}

@test "enrolment without a keeper token, or with a proof by another key, is refused" {
	seed_a=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
	seed_b=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
	pub_b=$(ed_pub "$seed_b")
	# no token at all, a made-up one
	enrol_raw "" mallory "$pub_b" "$(printf 'x%.0s' $(seq 86))"
	[ "$CODE" = 400 ] || [ "$CODE" = 401 ]
	fake="cdt_$(od -An -N100 -tx1 /dev/urandom | xxd -r -p | base64 -w0 | tr '+/' '-_' | tr -d '=')"
	printf 'coffer deployer enrol v1\n%s\nmallory\n%s\n' "$fake" "$pub_b" >"$BATS_TEST_TMPDIR/text"
	enrol_raw "$fake" mallory "$pub_b" "$(ed_sign "$seed_b" "$BATS_TEST_TMPDIR/text")"
	[ "$CODE" = 401 ]
	[ "$(jq -r .error.message <<<"$BODY")" = "invalid deployer token" ]
	# a real token, the proof over key b's text signed by key a: refused, and the token not spent
	tok=$(dtoken)
	printf 'coffer deployer enrol v1\n%s\nmallory\n%s\n' "$tok" "$pub_b" >"$BATS_TEST_TMPDIR/text"
	enrol_raw "$tok" mallory "$pub_b" "$(ed_sign "$seed_a" "$BATS_TEST_TMPDIR/text")"
	[ "$CODE" = 401 ]
	[ "$(jq -r .error.message <<<"$BODY")" = "enrolment proof does not verify" ]
	[ "$(last_event deployers.enrol)" = "anonymous|denied:unauthenticated|" ]
	[ "$(last_detail deployers.enrol .refused)" = "enrolment proof does not verify" ]
	[ "$(store_sql "SELECT count(*) FROM deployers WHERE name = 'mallory'")" = 0 ]
	# the control: key b's own proof passes, with the same token
	enrol_raw "$tok" mallory "$pub_b" "$(ed_sign "$seed_b" "$BATS_TEST_TMPDIR/text")"
	[ "$CODE" = 201 ]
	[ "$(jq -r .public_key <<<"$BODY")" = "$pub_b" ]
	[ "$(jq -r .keeper_public_key <<<"$BODY")" = "$(b64url_of_hex "$(head -c 64 "$T/keeper/keeper.pub")")" ]
}

@test "deployers list: the signer's org only, each key's state" {
	run login_in a "$(dtoken --role admin)" --name alice
	[ "$status" -eq 0 ]
	run login_in b "$(dtoken --app canary)" --name ci
	[ "$status" -eq 0 ]
	"$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --org globex >/dev/null
	run login_in g "$(dtoken --org globex --role admin)" --name gus
	[ "$status" -eq 0 ]
	run as b deployers list --json
	[ "$status" -eq 0 ]
	jq -e --arg a "$(id_of a)" --arg b "$(id_of b)" \
		'[.deployers[] | select(.id == $a or .id == $b) | .revoked] == [false, false]' <<<"$output"
	run as b deployers list --json
	[[ "$output" != *"$(id_of g)"* ]]
	run as g deployers list --json
	[ "$(jq '.deployers | length' <<<"$output")" = 1 ]
	run as a deployers list
	[ "$status" -eq 0 ]
	[[ "$output" == *ID*NAME*ROLE*APP*STATUS* ]]
	[[ "$output" == *"$(id_of b)"*ci*deploy*live* ]]
	[ "$(last_event deployers.list)" = "deployer:$(id_of a)|ok|acme" ]
	# without a login: the message says what to do
	run as nobody deployers list
	[ "$status" -eq 3 ]
	[[ "$output" == *"no deployer key: run 'coffer login --deployer-token ...'"* ]]
}

@test "revoke: by the key itself or an admin of every app; refused at once afterwards; audited" {
	run login_in a "$(dtoken --role admin)" --name alice
	[ "$status" -eq 0 ]
	run login_in b "$(dtoken --app canary --role admin)" --name appadmin
	[ "$status" -eq 0 ]
	run login_in c "$(dtoken)" --name ci
	[ "$status" -eq 0 ]
	run login_in d "$(dtoken)" --name ci2
	[ "$status" -eq 0 ]
	"$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --org initech >/dev/null
	run login_in g "$(dtoken --org initech --role admin)" --name gus
	[ "$status" -eq 0 ]
	# neither a deploy key, nor an admin of one app, nor another org's admin may revoke another key
	run as c deployers revoke "$(id_of a)"
	[ "$status" -eq 4 ]
	[[ "$output" == *"only the key itself or an admin of every app of its org may revoke it"* ]]
	[ "$(last_event deployers.revoke)" = "deployer:$(id_of c)|denied:forbidden|acme" ]
	[ "$(last_detail deployers.revoke .target)" = "$(id_of a)" ]
	run as b deployers revoke "$(id_of c)"
	[ "$status" -eq 4 ]
	run as g deployers revoke "$(id_of c)"
	[ "$status" -eq 5 ]
	run as a deployers list --json
	[ "$(jq '[.deployers[] | select(.revoked)] | length' <<<"$output")" = 0 ]
	# a key revokes itself: its next request is refused
	run as c deployers revoke "$(id_of c)"
	[ "$status" -eq 0 ]
	[ "$output" = "Revoked deployer $(id_of c)" ]
	[ "$(last_event deployers.revoke)" = "deployer:$(id_of c)|ok|acme" ]
	run as c deployers list
	[ "$status" -eq 3 ]
	[[ "$output" == *"deployer key revoked"* ]]
	[ "$(last_event deployers.list)" = "deployer:$(id_of c)|denied:unauthenticated|acme" ]
	[ "$(last_detail deployers.list .refused)" = "deployer key revoked" ]
	run as c deployers revoke "$(id_of d)"
	[ "$status" -eq 3 ]
	# the admin revokes another key; twice is fine
	run as a deployers revoke "$(id_of d)"
	[ "$status" -eq 0 ]
	run as a deployers revoke "$(id_of d)"
	[ "$status" -eq 0 ]
	[ "$(last_event deployers.revoke)" = "deployer:$(id_of a)|ok|acme" ]
	run as d deployers list
	[ "$status" -eq 3 ]
	run as a deployers list --json
	jq -e --arg c "$(id_of c)" --arg d "$(id_of d)" \
		'[.deployers[] | select(.revoked) | .id] | sort == ([$c, $d] | sort)' <<<"$output"
	[ "$(store_sql "SELECT count(*) FROM deployers WHERE revoked_at > 0")" = 2 ]
	grep -qxF "$(id_of c)" "$T/keeper/deployers.revoked"
	grep -qxF "$(id_of d)" "$T/keeper/deployers.revoked"
	[ "$(grep -cxF "$(id_of d)" "$T/keeper/deployers.revoked")" = 1 ]
}

@test "a revoked key stays revoked when the store row is put back as it was, MAC included" {
	run login_in a "$(dtoken)" --name ci
	[ "$status" -eq 0 ]
	id=$(id_of a)
	if [ -n "${PG_SCHEMA:-}" ]; then hexmac="encode(mac, 'hex')"; else hexmac="hex(mac)"; fi
	mac=$(store_sql "SELECT $hexmac FROM deployers WHERE id = '$id'")
	run as a deployers revoke "$id"
	[ "$status" -eq 0 ]
	if [ -n "${PG_SCHEMA:-}" ]; then
		store_sql "UPDATE deployers SET revoked_at = 0, mac = decode('$mac', 'hex') WHERE id = '$id'"
	else
		store_sql "UPDATE deployers SET revoked_at = 0, mac = X'$mac' WHERE id = '$id'"
	fi
	[ "$(store_sql "SELECT revoked_at FROM deployers WHERE id = '$id'")" = 0 ]
	run as a deployers list
	[ "$status" -eq 3 ]
	[[ "$output" == *"deployer key revoked"* ]]
	# and a row edited otherwise (the role raised) fails its MAC
	run login_in b "$(dtoken --app canary)" --name ci2
	[ "$status" -eq 0 ]
	store_sql "UPDATE deployers SET role = 'admin', app_id = '*' WHERE id = '$(id_of b)'"
	run as b deployers list
	[ "$status" -eq 3 ]
	[[ "$output" == *"deployer record failed verification"* ]]
	run login_in c "$(dtoken --role admin)" --name alice
	run as c deployers list --json
	jq -e --arg b "$(id_of b)" '.deployers[] | select(.id == $b) | .tampered' <<<"$output"
}

@test "deployer requests: unsigned, signed by another key, for another path, or replayed are refused" {
	run login_in a "$(dtoken)" --name ci
	[ "$status" -eq 0 ]
	id=$(id_of a)
	key=$(raw_key a)
	: >"$BATS_TEST_TMPDIR/empty"
	HDRS=()
	send "$KEEPER_URL" GET /v1/deployers
	[ "$CODE" = 401 ]
	[ "$(jq -r .error.message <<<"$BODY")" = "missing or malformed deployer signature headers" ]
	# signed for another path
	KEY=$key sign "$id" GET /v1/deployers/x "$BATS_TEST_TMPDIR/empty"
	send "$KEEPER_URL" GET /v1/deployers
	[ "$CODE" = 401 ]
	[ "$(jq -r .error.message <<<"$BODY")" = "request signature does not verify" ]
	# signed by a key that is not this deployer's (another CLI's)
	run login_in b "$(dtoken)" --name other
	KEY=$(raw_key b) sign "$id" GET /v1/deployers "$BATS_TEST_TMPDIR/empty"
	send "$KEEPER_URL" GET /v1/deployers
	[ "$CODE" = 401 ]
	# an unknown deployer id
	KEY=$key sign 000000000000000000000000 GET /v1/deployers "$BATS_TEST_TMPDIR/empty"
	send "$KEEPER_URL" GET /v1/deployers
	[ "$CODE" = 401 ]
	[ "$(jq -r .error.message <<<"$BODY")" = "unknown deployer" ]
	# the control, then its replay
	KEY=$key sign "$id" GET /v1/deployers "$BATS_TEST_TMPDIR/empty"
	send "$KEEPER_URL" GET /v1/deployers
	[ "$CODE" = 200 ]
	send "$KEEPER_URL" GET /v1/deployers
	[ "$CODE" = 401 ]
	[ "$(jq -r .error.message <<<"$BODY")" = "request replayed" ]
}

@test "deployer-token: only for an org and app that exist, a known role, a ttl in range" {
	run dtoken --org nosuch
	[ "$status" -eq 5 ]
	[[ "$output" == *"org 'nosuch' not found"* ]]
	run dtoken --app nosuch
	[ "$status" -eq 5 ]
	[[ "$output" == *"app 'nosuch' not found in org 'acme'"* ]]
	run dtoken --role read
	[ "$status" -eq 2 ]
	run dtoken --ttl 0s
	[ "$status" -eq 2 ]
	run "$COFFER" keeper deployer-token --state-dir "$T/keeper" --org acme
	[ "$status" -eq 2 ]
}
