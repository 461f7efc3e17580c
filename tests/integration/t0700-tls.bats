#!/usr/bin/env bats
# TLS on every link, attacked: the CLI and the agent refuse a server whose
# certificate is not signed by their CA, has expired or is for another
# name; a role refuses to serve plain HTTP on an address that is not
# loopback; a client refuses plain http:// to such a host before
# connecting; and a whole set/list/deploy flow captured on the loopback
# interface shows neither the secret value nor the bearer token.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	platform_start
	BAD="$T/bad"
	mkdir -p "$BAD"
}

teardown() {
	run_stop
	stop_pids ${BAD_PID:-} ${TCPDUMP_PID:-}
	platform_stop
}

# bad_cert NAME DAYS HOSTNAME...: a certificate from the platform's CA.
bad_cert() {
	local name=$1 days=$2
	shift 2
	"$TLS_CERT" cert "$COFFER_CA" "$T/tls/ca.key" "$BAD/$name.pem" "$BAD/$name.key" "$days" "$@"
}

# other_ca_cert: a certificate for the right names from a CA nobody trusts.
other_ca_cert() {
	"$TLS_CERT" ca "$BAD/other-ca.pem" "$BAD/other-ca.key"
	"$TLS_CERT" cert "$BAD/other-ca.pem" "$BAD/other-ca.key" "$BAD/untrusted.pem" "$BAD/untrusted.key" 30 \
		localhost 127.0.0.1 ::1
}

# bad_api_start NAME: a second api on the platform's store and keeper,
# serving $BAD/NAME.pem; BAD_URL is where.
bad_api_start() {
	rm -f "$BAD/api.ready"
	"$COFFER" api --state-dir "$T/api" --store "$STORE_URL" --listen 127.0.0.1:0 \
		--keeper "$KEEPER_URL" --keeper-pub "$T/keeper/keeper.pub" \
		--keeper-credential "$T/keeper/api.credential" --boot-key "$T/keeper/api.boot.key" \
		--rows-key "$T/keeper/api.rows.key" --digest-key "$T/keeper/api.digest.key" \
		--tls-cert "$BAD/$1.pem" --tls-key "$BAD/$1.key" --ca "$COFFER_CA" \
		--ready-file "$BAD/api.ready" >>"$T/bad-api.out" 2>>"$T/bad-api.log" 3>&- &
	BAD_PID=$!
	wait_file "$BAD/api.ready" "$BAD_PID"
	BAD_URL=$(cat "$BAD/api.ready")
}

# secrets_unchanged: the canary app still holds exactly its one secret, at version 1.
secrets_unchanged() {
	[ "$("$COFFER" secrets list -a canary --json | jq -r '[.[].name] | join(",")')" = CANARY_SECRET ]
}

@test "the platform serves HTTPS only: plain HTTP to its ports gets no answer, the ready files say https" {
	[[ "$API_URL" == https://127.0.0.1:* ]]
	[[ "$KEEPER_URL" == https://127.0.0.1:* ]]
	run curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "http://${API_URL#https://}/v1/health"
	[ "$status" -ne 0 ]
	run curl -fsS "$API_URL/v1/health"
	[ "$status" -eq 0 ]
	# TLS 1.3 is what a current client gets
	run curl -sS -o /dev/null -w '%{ssl_verify_result}' --tlsv1.3 "$API_URL/v1/health"
	[ "$status" -eq 0 ]
	[ "$output" = 0 ]
}

@test "the CLI refuses an api whose certificate is from a CA it does not trust" {
	other_ca_cert
	bad_api_start untrusted
	COFFER_API_URL="$BAD_URL" run_logged "$COFFER" secrets set -a canary OTHER=value-not-sent
	[ "$status" -eq 1 ]
	[[ "$output" == *"the certificate of ${BAD_URL#https://} is not signed by the CA in '$COFFER_CA'"* ]]
	# the same api with its CA given: the CLI talks to it
	COFFER_API_URL="$BAD_URL" run_logged "$COFFER" apps list --ca "$BAD/other-ca.pem"
	[ "$status" -eq 0 ]
	secrets_unchanged
}

@test "the CLI refuses an api whose certificate has expired" {
	bad_cert expired -5 localhost 127.0.0.1
	bad_api_start expired
	COFFER_API_URL="$BAD_URL" run_logged "$COFFER" secrets set -a canary OTHER=value-not-sent
	[ "$status" -eq 1 ]
	not_after=$(date -u -d "$(openssl x509 -in "$BAD/expired.pem" -noout -enddate | cut -d= -f2)" '+%Y-%m-%d %H:%M:%S UTC')
	[[ "$output" == *"the certificate of ${BAD_URL#https://} has expired (not after $not_after)"* ]]
	secrets_unchanged
}

@test "the CLI refuses an api whose certificate is for another name" {
	bad_cert othername 30 api.example.org 192.0.2.7
	bad_api_start othername
	COFFER_API_URL="$BAD_URL" run_logged "$COFFER" secrets set -a canary OTHER=value-not-sent
	[ "$status" -eq 1 ]
	[[ "$output" == *"the certificate of ${BAD_URL#https://} is for another name"* ]]
	secrets_unchanged
}

@test "the CLI's CA comes from --ca, then COFFER_CA, then the config file; a missing CA file is named" {
	other_ca_cert
	# COFFER_CA (the platform's CA) is refused by the other CA's api; --ca wins over it
	bad_api_start untrusted
	COFFER_API_URL="$BAD_URL" run_logged "$COFFER" apps list --ca "$BAD/other-ca.pem"
	[ "$status" -eq 0 ]
	# the config file's "ca" when neither is given
	jq -n --arg u "$BAD_URL" --arg c "$BAD/other-ca.pem" '{api_url: $u, ca: $c}' >"$T/config.json"
	chmod 600 "$T/config.json"
	COFFER_API_URL="$BAD_URL" COFFER_CA= run_logged "$COFFER" apps list
	[ "$status" -eq 0 ]
	run_logged "$COFFER" apps list --ca "$T/no-such-ca.pem"
	[ "$status" -eq 5 ]
	[[ "$output" == *"cannot read the CA file '$T/no-such-ca.pem' (--ca)"* ]]
}

@test "an agent refuses a keeper, and an api, whose certificate is not signed by its CA" {
	other_ca_cert
	token=$(join_token)
	# the keeper (the platform's CA) seen with another CA: enrolment refused, nothing sent
	run_logged env COFFER_JOIN_TOKEN="$token" timeout 30 "$COFFER" agent --api "$API_URL" --keeper "$KEEPER_URL" \
		--state-dir "$T/agents/h1" --name h1 --ca "$BAD/other-ca.pem"
	[ "$status" -ne 0 ]
	[[ "$output" == *"cannot enrol with the keeper at $KEEPER_URL"*"is not signed by the CA in '$BAD/other-ca.pem'"* ]]
	[ "$("$COFFER" hosts list --json | jq length)" = 0 ]
	# a trusted keeper, an api from the other CA: the agent enrols but does not register
	bad_api_start untrusted
	run_logged env COFFER_JOIN_TOKEN="$token" timeout 30 "$COFFER" agent --api "$BAD_URL" --keeper "$KEEPER_URL" \
		--state-dir "$T/agents/h2" --name h2 --ca "$COFFER_CA"
	[ "$status" -ne 0 ]
	[[ "$output" == *"the certificate of ${BAD_URL#https://} is not signed by the CA in '$COFFER_CA'"* ]]
	[ ! -e "$T/agent-h2.ready" ]
}

@test "coffer tls makes a CA and a certificate that an api serves and the CLI verifies" {
	run_logged "$COFFER" tls ca --dir "$T/ops"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$T/ops/ca.key")" = 600 ]
	run_logged "$COFFER" tls cert --dir "$T/ops" --name api --host localhost --host 127.0.0.1 --days 30
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$T/ops/api.key")" = 600 ]
	openssl x509 -in "$T/ops/api.pem" -noout -text >"$T/ops/api.txt"
	grep -q 'ASN1 OID: prime256v1' "$T/ops/api.txt"
	grep -q 'DNS:localhost, IP Address:127.0.0.1' "$T/ops/api.txt"
	grep -q 'TLS Web Server Authentication' "$T/ops/api.txt"
	cp "$T/ops/api.pem" "$T/ops/api.key" "$BAD/"
	bad_api_start api
	COFFER_API_URL="$BAD_URL" run_logged "$COFFER" apps list --ca "$T/ops/ca.pem"
	[ "$status" -eq 0 ]
	[[ "$output" == *canary* ]]
	# a CA is never replaced: the clients that trust it would stop working
	before=$(sha256sum <"$T/ops/ca.pem")
	run_logged "$COFFER" tls ca --dir "$T/ops"
	[ "$status" -eq 0 ]
	[ "$(sha256sum <"$T/ops/ca.pem")" = "$before" ]
	run_logged "$COFFER" tls cert --dir "$T/none" --name api --host localhost
	[ "$status" -eq 5 ]
	[[ "$output" == *"no CA in '$T/none'"* ]]
}

@test "a role refuses to serve plain HTTP on an address that is not loopback" {
	run_logged timeout 20 "$COFFER" keeper --state-dir "$T/keeper" --store "$STORE_URL" --listen 0.0.0.0:0
	[ "$status" -eq 4 ]
	[[ "$output" == *"refusing to serve plain HTTP on '0.0.0.0:0', which is not a loopback address: give --tls-cert FILE and --tls-key FILE"* ]]
	run_logged timeout 20 "$COFFER" api --state-dir "$T/api" --store "$STORE_URL" --listen '[::]:0' \
		--keeper "$KEEPER_URL" --keeper-pub "$T/keeper/keeper.pub" \
		--keeper-credential "$T/keeper/api.credential" --boot-key "$T/keeper/api.boot.key" \
		--rows-key "$T/keeper/api.rows.key" --digest-key "$T/keeper/api.digest.key"
	[ "$status" -eq 4 ]
	[[ "$output" == *"refusing to serve plain HTTP on '[::]:0'"* ]]
	# only one of the two files: refused too
	run_logged "$COFFER" keeper --state-dir "$T/keeper" --store "$STORE_URL" --listen 127.0.0.1:0 \
		--tls-cert "$TLS_SERVER_CERT"
	[ "$status" -eq 2 ]
	[[ "$output" == *"give both --tls-cert and --tls-key, or neither"* ]]
	# a key others may read: refused, named
	cp "$TLS_SERVER_KEY" "$BAD/open.key"
	chmod 644 "$BAD/open.key"
	run_logged "$COFFER" keeper --state-dir "$T/keeper" --store "$STORE_URL" --listen 0.0.0.0:0 \
		--tls-cert "$TLS_SERVER_CERT" --tls-key "$BAD/open.key"
	[ "$status" -eq 4 ]
	[[ "$output" == *"the TLS key '$BAD/open.key' may be read or written by group or others"* ]]
}

@test "a client refuses plain http:// to a host that is not loopback, before connecting" {
	# 192.0.2.0/24 is TEST-NET-1: a connection attempt would hang, then fail as unreachable
	COFFER_API_URL=http://192.0.2.1:4680 run_logged timeout 20 "$COFFER" apps list
	[ "$status" -eq 4 ]
	[[ "$output" == *"refusing plain http:// to 192.0.2.1:4680, which is not a loopback address: use https://"* ]]
	token=$(join_token)
	run_logged env COFFER_JOIN_TOKEN="$token" timeout 20 "$COFFER" agent --api "$API_URL" \
		--keeper http://192.0.2.1:4681 --state-dir "$T/agents/h1" --name h1 --ca "$COFFER_CA"
	[ "$status" -ne 0 ]
	[[ "$output" == *"refusing plain http:// to 192.0.2.1:4681"* ]]
}

# hex TEXT: TEXT's bytes as lower-case hex
hex() {
	printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'
}

@test "a captured set/list/deploy flow holds neither the secret value nor the bearer token" {
	if [ "$(id -u)" -ne 0 ] || [ -z "$(command -v tcpdump)" ]; then
		[ -z "${CI:-}" ] || { echo "CI must capture: run as root with tcpdump installed" >&2; return 1; }
		skip "tcpdump needs root and tcpdump installed"
	fi
	api_port=${API_URL##*:}
	keeper_port=${KEEPER_URL##*:}
	tcpdump -i lo -U -n -s 0 -w "$T/lo.pcap" "tcp port $api_port or tcp port $keeper_port" 2>"$T/tcpdump.log" 3>&- &
	TCPDUMP_PID=$!
	wait_until 20 grep -q 'listening on' "$T/tcpdump.log"
	agents_up 1
	"$COFFER" apps create web >/dev/null
	logged "$COFFER" secrets set -a web "CAPTURED=$CANARY" >/dev/null
	logged "$COFFER" secrets list -a web >/dev/null
	deploy web --env PRINT=CAPTURED -- "$APPS_DIR/app.sh"
	[ "$status" -eq 0 ]
	wait_until 30 count_started web 1
	wait_until 10 machine_env_is web CAPTURED "$CANARY"
	stop_pids "$TCPDUMP_PID"
	TCPDUMP_PID=
	# the capture holds the flow: many packets, TLS records among them
	packets=$(tcpdump -r "$T/lo.pcap" -n 2>/dev/null | wc -l)
	[ "$packets" -gt 50 ]
	# neither as bytes nor as hex text (any case)
	for needle in "$CANARY" "$ADMIN_TOKEN" "$(hex "$CANARY")" "$(hex "$ADMIN_TOKEN")" "Authorization: Bearer"; do
		run grep -ciaF -- "$needle" "$T/lo.pcap"
		[ "$output" = 0 ] || { echo "found in the capture: $needle" | sed "s/$CANARY/<canary>/" >&2; false; }
	done
	rm -f "$T/lo.pcap"
}
