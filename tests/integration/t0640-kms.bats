#!/usr/bin/env bats
# App KMS keys, end to end with real processes: `secrets keys gen` makes
# keys the keeper holds; a machine (apps/kms.sh) signs, verifies, encrypts
# and decrypts through its agent's socket with `coffer kms`; an ed25519
# signature verifies with the public key `keys list --json` shows, with
# openssl and with `coffer kms verify --public-key`; rotation keeps old
# signatures and ciphertexts valid; the keeper refuses a machine of
# another app, a destroyed machine (its socket gone too) and a forged
# host request for it; the socket admits only the machine's processes.
#
# What is checked of "the key never leaves the keeper", honestly: every
# answer (api, keeper, socket) and the machine's environment hold no key
# field; the store holds each version wrapped (nonce, 32 bytes sealed, tag:
# 72 bytes, under its row MAC), and a wrapped key moved to another version
# does not open; the key bytes themselves are never known to the test, so
# no scan for them is possible.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	platform_start
	SHARED=$(mktemp -d "$T/shared.XXXXXX")
	chmod 1777 "$SHARED"
	# the machine runs as nobody when the tests run as root: its own copy of the binary
	cp "$COFFER" "$SHARED/coffer"
	chmod 755 "$SHARED/coffer"
	N=0
	printf 'a message to sign\n' >"$T/msg"
	printf 'another message\n' >"$T/msg2"
}

teardown() {
	run_stop
	platform_stop
}

# kms_run APP: deploys apps/kms.sh for APP and waits for it; MID, MPID, SOCK,
# and KDIR, the folder of APP's requests: each app's own, as a machine
# destroyed is replaced by a new one of its app that answers its requests
# too (two apps sharing one would both answer, each writing its own result).
kms_run() {
	KDIR="$SHARED/$1"
	mkdir -p "$KDIR"
	chmod 1777 "$KDIR"
	# --detach: the test waits for the machine, not for the release's grace window
	deploy "$1" --detach --env "KMS_DIR=$KDIR" --env "KMS_COFFER=$SHARED/coffer" -- "$APPS_DIR/kms.sh"
	[ "$status" -eq 0 ]
	wait_until 30 count_started "$1" 1
	read -r MID MPID < <(started_pids "$1")
	SOCK=$(env_of "$MPID" COFFER_KMS_SOCKET)
}

# in_machine INPUT ARGS...: `coffer kms ARGS... < INPUT` run by the machine
# of the last kms_run's app; KS its status, KOUT its output, KERR its errors.
in_machine() {
	local r
	N=$((N + 1))
	r="$KDIR/req.$N"
	cp "$1" "$r.in"
	shift
	printf '%s\n' "$@" >"$r.tmp"
	mv "$r.tmp" "$r"
	wait_until 30 test -e "$r.rc"
	KS=$(cat "$r.rc")
	KOUT=$(cat "$r.out")
	KERR=$(cat "$r.err")
	printf 'machine: kms %s -> %s %s %s\n' "$*" "$KS" "$KOUT" "$KERR" >>"$T/outputs.log"
}

# pk_of APP KEY VERSION: the public key `keys list --json` shows.
pk_of() {
	"$COFFER" secrets keys list -a "$1" --json |
		jq -r --arg k "$2" --argjson v "$3" '.[] | select(.name == $k and .version == $v) | .public_key'
}

# b64d: base64url on stdin, decoded.
b64d() {
	local s
	s=$(tr -- '-_' '+/')
	while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done
	printf '%s' "$s" | base64 -d
}

# openssl_verifies PK SIG FILE: openssl checks the ed25519 signature (the envelope's body) of FILE.
openssl_verifies() {
	{ printf '302a300506032b6570032100' | xxd -r -p; printf '%s' "$1" | b64d; } >"$T/pk.der"
	printf '%s' "$2" | b64d | tail -c +5 >"$T/sig.raw"
	openssl pkeyutl -verify -pubin -keyform DER -inkey "$T/pk.der" -rawin -in "$3" -sigfile "$T/sig.raw"
}

# kms_forged HOST OP BODY: a host-signed POST /v1/kms/OP by hand; CODE, BODY.
kms_forged() {
	printf '%s' "$3" >"$T/kms.json"
	sign "$1" POST "/v1/kms/$2" "$T/kms.json"
	send "$KEEPER_URL" POST "/v1/kms/$2" "$T/kms.json"
}

@test "a machine signs, verifies, encrypts and decrypts through its socket; rotation keeps old versions valid" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	run_logged cli secrets keys gen -a web sig --type ed25519 --json
	[ "$status" -eq 0 ]
	# what an answer says of a key: never the key
	[ "$(jq -c 'keys' <<<"$output")" = '["created_at","name","public_key","type","version"]' ]
	[ "$(jq -r .version <<<"$output")" = 1 ]
	run_logged cli secrets keys gen -a web mac --type hmac-sha256
	[ "$status" -eq 0 ]
	[[ "$output" == *"Made key mac (hmac-sha256, version 1) of app web"* ]]
	run_logged cli secrets keys gen -a web box --type aead
	[ "$status" -eq 0 ]
	# a taken name, a bad type, a bad name: refused, nothing made
	run_logged cli secrets keys gen -a web box --type aead
	[ "$status" -ne 0 ]
	[[ "$output" == *"a key of that name exists"* ]]
	run_logged cli secrets keys gen -a web other --type rsa
	[ "$status" -eq 2 ]
	[[ "$output" == *"--type must be hmac-sha256, aead or ed25519"* ]]
	run_logged cli secrets keys gen -a web 'bad/name' --type aead
	[ "$status" -eq 2 ]
	run_logged cli secrets keys list -a web --json
	[ "$(jq -r '[.[].name] | join(",")' <<<"$output")" = box,mac,sig ]
	[ "$(jq -r '[.[] | select(.public_key)] | length' <<<"$output")" = 1 ]
	run_logged cli secrets keys list -a web
	[[ "$output" == *"PUBLIC KEY"* ]]
	[[ "$output" == *ed25519* ]]

	kms_run web
	# the socket: the machine's user's, in a folder of the agent's that user cannot write (it could
	# swap the socket for a link to a file the agent would then hand it); gone with the machine
	[ -S "$SOCK" ]
	[ "$(stat -c %a "$(dirname "$SOCK")")" = 711 ]
	[ "$(stat -c %U "$(dirname "$SOCK")")" = "$(id -un)" ]
	[ "$(stat -c %U "$SOCK")" = "$( [ "$(id -u)" = 0 ] && echo nobody || id -un)" ]
	if [ "$(id -u)" = 0 ]; then
		run setpriv --reuid=nobody --regid=nogroup --clear-groups touch "$(dirname "$SOCK")/x"
		[ "$status" -ne 0 ]
		[ ! -e "$(dirname "$SOCK")/x" ]
	fi

	# ed25519: signed in the machine, verified by openssl and by coffer outside with the public key
	in_machine "$T/msg" sign --key sig
	[ "$KS" = 0 ]
	sig1=$KOUT
	[ "$(printf '%s' "$sig1" | b64d | head -c 4 | xxd -p)" = 00000001 ]
	pk1=$(pk_of web sig 1)
	openssl_verifies "$pk1" "$sig1" "$T/msg"
	run ! openssl_verifies "$pk1" "$sig1" "$T/msg2"
	run_logged cli kms verify --public-key "$pk1" --signature "$sig1" <"$T/msg"
	[ "$status" -eq 0 ]
	[ "$output" = valid ]
	run_logged cli kms verify --public-key "$pk1" --signature "$sig1" <"$T/msg2"
	[ "$status" -ne 0 ]
	[[ "$output" == *"does not verify"* ]]
	in_machine "$T/msg" verify --key sig --signature "$sig1"
	[ "$KS" = 0 ]
	[ "$KOUT" = valid ]
	in_machine "$T/msg2" verify --key sig --signature "$sig1"
	[ "$KS" != 0 ]

	# hmac-sha256: deterministic, verifies in the machine, not over other data
	in_machine "$T/msg" sign --key mac
	[ "$KS" = 0 ]
	mac1=$KOUT
	[ "$(printf '%s' "$mac1" | b64d | wc -c)" = 36 ]
	in_machine "$T/msg" sign --key mac
	[ "$KOUT" = "$mac1" ]
	in_machine "$T/msg" verify --key mac --signature "$mac1"
	[ "$KS" = 0 ]
	in_machine "$T/msg2" verify --key mac --signature "$mac1"
	[ "$KS" != 0 ]
	# a key signs only what its type does
	in_machine "$T/msg" encrypt --key mac
	[ "$KS" != 0 ]
	[[ "$KERR" == *"signs and verifies only"* ]]

	# aead: a round trip; a changed ciphertext does not open
	printf 'attack at dawn' >"$T/pt"
	in_machine "$T/pt" encrypt --key box
	[ "$KS" = 0 ]
	ct1=$KOUT
	printf '%s\n' "$ct1" >"$T/ct1"
	in_machine "$T/ct1" decrypt --key box
	[ "$KS" = 0 ]
	[ "$KOUT" = "attack at dawn" ]
	# one character of the ciphertext's body changed (not the last: its low bits may be padding)
	c=${ct1:45:1}
	[ "$c" = A ] && swap=B || swap=A
	printf '%s\n' "${ct1:0:45}$swap${ct1:46}" >"$T/ct-bad"
	[ "$(cat "$T/ct-bad")" != "$ct1" ]
	in_machine "$T/ct-bad" decrypt --key box
	[ "$KS" != 0 ]
	[[ "$KERR" == *"does not open"* ]]

	# rotation: new operations use version 2; version 1's signature and ciphertext still hold
	run_logged cli secrets keys rotate -a web sig
	[ "$status" -eq 0 ]
	[[ "$output" == *"at version 2"* ]]
	run_logged cli secrets keys rotate -a web box
	[ "$status" -eq 0 ]
	in_machine "$T/msg" sign --key sig
	sig2=$KOUT
	[ "$(printf '%s' "$sig2" | b64d | head -c 4 | xxd -p)" = 00000002 ]
	pk2=$(pk_of web sig 2)
	[ -n "$pk2" ]
	[ "$pk2" != "$pk1" ]
	openssl_verifies "$pk2" "$sig2" "$T/msg"
	run ! openssl_verifies "$pk1" "$sig2" "$T/msg"
	in_machine "$T/msg" verify --key sig --signature "$sig1"
	[ "$KS" = 0 ]
	in_machine "$T/ct1" decrypt --key box
	[ "$KOUT" = "attack at dawn" ]
	in_machine "$T/pt" encrypt --key box
	[ "$(printf '%s' "$KOUT" | b64d | head -c 4 | xxd -p)" = 00000002 ]

	# the store holds each version wrapped (nonce, 32 sealed bytes, tag), sealed by its row MAC
	[ "$(store_sql "SELECT count(*) FROM kms_keys WHERE length(wrapped) = 72 AND length(mac) = 32")" = 5 ]
	# a wrapped key moved to another version does not open (its AAD names the version), nor does an edited row
	v1=$(store_sql "SELECT hex(wrapped) FROM kms_keys WHERE name = 'sig' AND version = 1" 2>/dev/null ||
		store_sql "SELECT encode(wrapped, 'hex') FROM kms_keys WHERE name = 'sig' AND version = 1")
	store_sql "UPDATE kms_keys SET wrapped = $(blob "$v1") WHERE name = 'sig' AND version = 2"
	in_machine "$T/msg" sign --key sig
	[ "$KS" != 0 ]
	[[ "$KERR" == *"tampered"* || "$KERR" == *"failed verification"* ]]

	# rm: every version goes; the machine's next use is refused
	run_logged cli secrets keys rm -a web box --yes
	[ "$status" -eq 0 ]
	in_machine "$T/ct1" decrypt --key box
	[ "$KS" != 0 ]
	[[ "$KERR" == *"no such key"* ]]
	run_logged cli secrets keys rm -a web box --yes
	[ "$status" -ne 0 ]
}

@test "the keeper refuses another app's machine, a destroyed machine and a forged request for it; the socket admits only the machine" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" apps create api >/dev/null
	"$COFFER" secrets keys gen -a web sig --type ed25519 >/dev/null
	kms_run api
	# a machine of another app: its app has no such key, and it cannot name web's
	in_machine "$T/msg" sign --key sig
	[ "$KS" != 0 ]
	[[ "$KERR" == *"no such key"* ]]
	run_logged cli machines destroy -a api "$MID" --yes
	[ "$status" -eq 0 ]
	wait_until 20 gone "$MPID"

	kms_run web
	host=$(cat "$T/agent-h1.ready")
	# a process outside the machine (this shell) is turned away by the socket
	run env COFFER_KMS_SOCKET="$SOCK" "$COFFER" kms sign --key sig <"$T/msg"
	[ "$status" -ne 0 ]
	wait_until 10 grep -q 'peer is not the machine' "$T/agent-h1.log"
	# and so is one of the machine's user outside its session (when this test can be that user)
	if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
		nobody=$(id -u nobody)
		run setpriv --reuid="$nobody" --regid="$(id -g nobody)" --clear-groups \
			env COFFER_KMS_SOCKET="$SOCK" "$SHARED/coffer" kms sign --key sig <"$T/msg"
		[ "$status" -ne 0 ]
		wait_until 10 grep -q 'peer is not a process of the machine' "$T/agent-h1.log"
	fi
	# the host itself may ask for its machine (that is what the agent does) ...
	data=$(printf 'hi' | b64url)
	kms_forged "$host" sign "{\"machine\":\"$MID\",\"key\":\"sig\",\"data\":\"$data\"}"
	[ "$CODE" = 200 ]
	# the same request again is a replay, refused by the gate before the handler, and audited as kms.use
	send "$KEEPER_URL" POST /v1/kms/sign "$T/kms.json"
	[ "$CODE" = 401 ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'kms.use' AND outcome = 'refused: request replayed' AND detail LIKE '%\"claimed_host\":\"$host\"%'")" = 1 ]
	# ... up to the limit of 64 KiB of data, and not a byte over
	head -c 65536 /dev/zero >"$T/64k"
	kms_forged "$host" sign "{\"machine\":\"$MID\",\"key\":\"sig\",\"data\":\"$(b64url <"$T/64k")\"}"
	[ "$CODE" = 200 ]
	head -c 65537 /dev/zero >"$T/64k1"
	kms_forged "$host" sign "{\"machine\":\"$MID\",\"key\":\"sig\",\"data\":\"$(b64url <"$T/64k1")\"}"
	[ "$CODE" = 413 ]
	in_machine "$T/64k1" sign --key sig
	[ "$KS" != 0 ]
	[[ "$KERR" == *"over 65536 bytes"* ]]
	# an unknown machine, and an unknown op
	kms_forged "$host" sign "{\"machine\":\"0123456789abcdef01234567\",\"key\":\"sig\",\"data\":\"$data\"}"
	[ "$CODE" = 404 ]
	kms_forged "$host" export "{\"machine\":\"$MID\",\"key\":\"sig\",\"data\":\"$data\"}"
	[ "$CODE" = 404 ]

	# audited: ok uses once per machine, key and op a minute; every refusal
	in_machine "$T/msg" sign --key sig
	[ "$KS" = 0 ]
	in_machine "$T/msg" sign --key sig
	[ "$KS" = 0 ]
	# four ok uses so far (two forged, two in the machine), in one or two minutes: one event a minute
	oks=$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'kms.use' AND outcome = 'ok' AND detail LIKE '%$MID%'")
	[ "$oks" -ge 1 ]
	[ "$oks" -le 2 ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'kms.use' AND outcome LIKE 'refused: %'")" -ge 3 ]

	# destroyed: the socket goes with the machine, and the keeper refuses the host's request for it
	run_logged cli machines destroy -a web "$MID" --yes
	[ "$status" -eq 0 ]
	wait_until 20 gone "$MPID"
	wait_until 20 test ! -e "$SOCK"
	[ ! -e "$(dirname "$SOCK")" ]
	kms_forged "$host" sign "{\"machine\":\"$MID\",\"key\":\"sig\",\"data\":\"$data\"}"
	[ "$CODE" = 409 ]
	[[ "$(jq -r .error.message <<<"$BODY")" == *"machine is destroyed"* ]]
}
