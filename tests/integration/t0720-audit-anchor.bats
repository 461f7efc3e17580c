#!/usr/bin/env bats
# The audit head anchored outside the store (issue 10, part 4): the keeper
# signs the chain's head and keeps it in its state folder; `audit verify`
# checks that the chain holds it, and a head saved with `audit head`. The
# attacker writes the store: it cuts the tail, rewrites it with hashes
# recomputed (the chain is unkeyed SHA-256: docs/STORE.md "Audit chain"),
# replaces the whole chain; and it edits a saved head file.

load helpers

bats_require_minimum_version 1.5.0

# every test edits the store or the keeper's folder
setup() { platform_start; }
teardown() { platform_stop; }

# ---- the attacker's tools: the store's rows and the chain's hash, by hand ----

# hex_col EXPR WHERE: a BLOB column as lower-case hex.
hex_col() {
	if [ -n "${PG_SCHEMA:-}" ]; then
		store_sql "SELECT encode($1, 'hex') FROM audit_events WHERE $2"
	else
		store_sql "SELECT lower(hex($1)) FROM audit_events WHERE $2"
	fi
}

last_seq() { store_sql "SELECT coalesce(max(seq), 0) FROM audit_events"; }

# be_hex N BYTES: N big-endian in BYTES bytes, as hex.
be_hex() { printf "%0$(($2 * 2))x" "$1"; }
# field_hex S: L(S) = u32be(length) || S, as hex (ASCII S).
field_hex() { be_hex "${#1}" 4; printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }

# forged_hash SEQ PREV_HEX: the hash of the attacker's event SEQ (ts SEQ,
# actor "attacker", action "nothing.happened", every other field ""), as
# store_audit.c computes it.
forged_hash() {
	{
		printf '%s' "$2"
		field_hex coffer-audit-v1
		be_hex "$1" 8
		be_hex "$1" 8
		field_hex ""
		field_hex attacker
		field_hex nothing.happened
		field_hex ""
		field_hex ""
		field_hex ""
		field_hex ""
	} | xxd -r -p | sha256sum | cut -c1-64
}

# forge_from SEQ LAST: deletes events SEQ.. and writes events SEQ..LAST of
# the attacker's, chained from event SEQ-1 (or genesis): a chain that
# verifies on its own.
forge_from() {
	local seq prev h sql
	if [ "$1" -gt 1 ]; then prev=$(hex_col hash "seq = $(($1 - 1))"); else prev=$(printf '%064d' 0); fi
	sql="BEGIN; DELETE FROM audit_events WHERE seq >= $1;"
	for seq in $(seq "$1" "$2"); do
		h=$(forged_hash "$seq" "$prev")
		sql+=" INSERT INTO audit_events (seq, ts, org_id, actor, action, app, detail, outcome, request_id, prev_hash, hash)
			VALUES ($seq, $seq, '', 'attacker', 'nothing.happened', '', '', '', '', $(blob "$prev"), $(blob "$h"));"
		prev=$h
	done
	store_sql "$sql COMMIT;"
}

# anchored_seq: the seq of the keeper's head file.
anchored_seq() { jq -r .seq "$T/keeper/audit.head"; }

# some_events N: N audited requests of the api.
some_events() {
	local i
	for i in $(seq "$1"); do
		"$COFFER" secrets set -a canary "N$i=v$i" >/dev/null
	done
}

# roles_restart: the keeper (a new port) and then the api, at its old address.
roles_restart() {
	stop_pids "$API_PID" "$KEEPER_PID"
	keeper_start
	api_start "${API_URL#*://}"
}

# anchored: verify passes, so the keeper's head is the chain's last event;
# then the pokes of the appends before it have run (ANCHOR_POKE_DELAY_MS),
# so the attack below is not raced by one (which would find it and append
# its audit_chain_broken event).
anchored() {
	run_logged "$COFFER" audit verify
	[ "$status" -eq 0 ]
	[ "$(anchored_seq)" = "$(last_seq)" ]
	sleep 1
}

# ---- tests ----

@test "the keeper anchors the api's appends by itself, in the background" {
	some_events 3
	n=$(last_seq)
	# no verify and no head call: the api's poke makes the keeper advance
	wait_until 10 sh -c "[ \"\$(jq -r .seq '$T/keeper/audit.head')\" -ge $n ]"
	# and the keeper's own appends (an enrolment it refused and audited)
	run_logged curl -s -X POST -H 'Content-Type: application/json' -d '{}' "$KEEPER_URL/v1/hosts/enrol"
	wait_until 10 sh -c "[ \"\$(jq -r .seq '$T/keeper/audit.head')\" -gt $n ]"
	[ "$(store_sql "SELECT action FROM audit_events WHERE seq = $(anchored_seq)")" = hosts.enrol ]
	run_logged "$COFFER" audit verify
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "audit chain intact: "*" events" ]]
	[[ "${lines[1]}" == "it holds the keeper's signed head (event "*")" ]]
}

@test "a cut tail fails verify, naming where the chain ends and the anchored head" {
	some_events 3
	anchored
	n=$(last_seq)
	store_sql "DELETE FROM audit_events WHERE seq > $((n - 3))"
	run_logged "$COFFER" audit verify
	[ "$status" -eq 6 ]
	# the keeper refused to advance and appended its audit_chain_broken event onto the cut chain
	[[ "$output" == *"the chain ends at seq $((n - 2)) but the anchored head is seq $n"* ]]
	[[ "$output" != *intact* ]]
	[ "$(store_sql "SELECT action FROM audit_events WHERE seq = $((n - 2))")" = audit_chain_broken ]
	[[ "$(store_sql "SELECT detail FROM audit_events WHERE seq = $((n - 2))")" == *'"anchored_seq":'$n* ]]
	# it kept its anchor, logged the problem, and audited it once
	[ "$(anchored_seq)" = "$n" ]
	grep -q 'event=audit_chain_broken anchored_seq='"$n" "$T/keeper.log"
	run_logged "$COFFER" audit verify
	[ "$status" -eq 6 ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'audit_chain_broken'")" = 1 ]
}

@test "a tail rewritten with recomputed hashes fails verify" {
	some_events 3
	anchored
	n=$(last_seq)
	forge_from $((n - 1)) "$n"
	# the forged rows are in (their hashes chain: verify names no broken event below)
	[ "$(store_sql "SELECT actor FROM audit_events WHERE seq = $n")" = attacker ]
	run_logged "$COFFER" audit verify
	[ "$status" -eq 6 ]
	[[ "$output" == *"event $n is not the anchored head: the chain was rewritten or replaced"* ]]
	[[ "$output" != *"broken at event"* ]]
	[ "$(anchored_seq)" = "$n" ]
}

@test "a replaced chain fails verify, longer or shorter than the anchored one" {
	some_events 2
	anchored
	n=$(last_seq)
	forge_from 1 $((n + 4))
	run_logged "$COFFER" audit verify
	[ "$status" -eq 6 ]
	[[ "$output" == *"event $n is not the anchored head: the chain was rewritten or replaced"* ]]
	forge_from 1 3
	run_logged "$COFFER" audit verify
	[ "$status" -eq 6 ]
	[[ "$output" == *"but the anchored head is seq $n"* ]]
	[ "$(anchored_seq)" = "$n" ]
}

@test "the keeper refuses to advance over a cut chain, even after the api appended more, and across a restart" {
	some_events 2
	anchored
	n=$(last_seq)
	store_sql "DELETE FROM audit_events WHERE seq > $((n - 2))"
	# the api appends onto the cut chain, past the anchored seq
	some_events 6
	[ "$(last_seq)" -gt "$n" ]
	run_logged "$COFFER" audit head
	[ "$status" -eq 6 ]
	[[ "$output" == *"the keeper refuses to advance its anchored head: event $n is not the anchored one"* ]]
	[ "$(anchored_seq)" = "$n" ]
	roles_restart
	run_logged "$COFFER" audit verify
	[ "$status" -eq 6 ]
	[[ "$output" == *"event $n is not the anchored head"* ]]
	[ "$(anchored_seq)" = "$n" ]
	# refused over and over, audited once per keeper run
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'audit_chain_broken'")" -le 2 ]
}

@test "audit head saves the signed head; verify --head holds the chain to it after the keeper's anchor is lost" {
	some_events 2
	run_logged "$COFFER" audit head
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$T/head.json"
	n=$(jq -r .seq "$T/head.json")
	[ "$n" = "$(last_seq)" ]
	[ "$(jq -r 'keys | join(",")' "$T/head.json")" = hash,seq,signature,signed_at ]
	[ "$(jq -r .hash "$T/head.json")" = "$(hex_col hash "seq = $n")" ]
	# an intact chain, grown since, verifies against it
	some_events 2
	run_logged "$COFFER" audit verify --head "$T/head.json"
	[ "$status" -eq 0 ]
	[[ "${lines[1]}" == *"and the saved head" ]]
	# the attacker cuts the tail and the keeper's anchor is gone (a new
	# keeper folder's first anchor is whatever chain it finds)
	store_sql "DELETE FROM audit_events WHERE seq > $((n - 2))"
	stop_pids "$API_PID" "$KEEPER_PID"
	rm "$T/keeper/audit.head"
	keeper_start
	api_start "${API_URL#*://}"
	run_logged "$COFFER" audit verify
	[ "$status" -eq 0 ]
	run_logged "$COFFER" audit verify --head "$T/head.json"
	[ "$status" -eq 6 ]
	# (the chain ends at n - 2, or at n - 1 when a poke of the api's last
	# batch reached the keeper after the cut and it audited the break)
	[[ "$output" == *"the chain ends at seq $((n - 2)) but the saved head is seq $n"* ||
		"$output" == *"the chain ends at seq $((n - 1)) but the saved head is seq $n"* ]]
	# and a rewritten one, longer than the saved head: forged events
	# appended to what is left (the anchored head, at n - 2 or at the
	# keeper's own event n - 1, stays in place and holds)
	forge_from $(($(last_seq) + 1)) $((n + 5))
	run_logged "$COFFER" audit verify --head "$T/head.json"
	[ "$status" -ne 0 ]
	[[ "$output" == *"is not the saved head: the chain was rewritten or replaced"* ]]
}

@test "an edited or forged head file is refused" {
	some_events 1
	"$COFFER" audit head >"$T/head.json"
	run_logged "$COFFER" audit verify --head "$T/head.json"
	[ "$status" -eq 0 ]
	n=$(jq -r .seq "$T/head.json")
	# edited: an earlier seq (what a cut would need), or another hash, or a later time
	for edit in ".seq = $((n - 1))" ".hash = \"$(printf '%064d' 0)\"" ".signed_at += 1"; do
		jq "$edit" "$T/head.json" >"$T/edited.json"
		run_logged "$COFFER" audit verify --head "$T/edited.json"
		[ "$status" -ne 0 ]
		[[ "$output" == *"the saved head's signature does not verify under keeper.pub: it was forged or edited"* ]]
	done
	# forged: a head of the attacker's chain, signed with a key of the attacker's
	jq '.signature = "'"$(head -c 64 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"'"' "$T/head.json" >"$T/forged.json"
	run_logged "$COFFER" audit verify --head "$T/forged.json"
	[ "$status" -ne 0 ]
	[[ "$output" == *"does not verify under keeper.pub"* ]]
	# not a head at all
	printf 'not json\n' >"$T/junk.json"
	run_logged "$COFFER" audit verify --head "$T/junk.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"is not a head document"* ]]
	jq '. + {"extra": 1}' "$T/head.json" >"$T/extra.json"
	run_logged "$COFFER" audit verify --head "$T/extra.json"
	[ "$status" -ne 0 ]
	[[ "$output" == *"the saved head is not a head document"* ]]
	run_logged "$COFFER" audit head --head "$T/head.json"
	[ "$status" -eq 2 ]
	[[ "$output" == *"only 'audit verify' takes --head"* ]]
}

@test "the keeper refuses to start on an audit.head it did not sign" {
	some_events 1
	anchored
	n=$(anchored_seq)
	stop_pids "$API_PID" "$KEEPER_PID"
	# an earlier seq, as one would need to hide a cut
	jq ".seq = $((n - 1))" "$T/keeper/audit.head" >"$T/edited.head"
	cp "$T/edited.head" "$T/keeper/audit.head"
	run_logged timeout 20 "$COFFER" keeper --state-dir "$T/keeper" --store "$STORE_URL" --listen 127.0.0.1:0 3>&-
	[ "$status" -ne 0 ]
	[[ "$output" == *"event=audit_anchor_refused"*"problem=\"is not signed by this keeper's key\""* ]]
	[ "$(jq -r .seq "$T/keeper/audit.head")" = $((n - 1)) ]
	KEEPER_PID= API_PID=
}

@test "only an admin reads the head or verifies; the keeper's anchor route wants the api credential" {
	"$COFFER" tokens create --role deploy --json >"$T/token.json"
	tok=$(jq -r .token "$T/token.json")
	"$COFFER" audit head >"$T/head.json"
	for cmd in "audit head" "audit verify" "audit verify --head $T/head.json"; do
		# shellcheck disable=SC2086
		run_logged env COFFER_TOKEN="$tok" "$COFFER" $cmd
		[ "$status" -eq 4 ]
	done
	run_logged curl -s -o /dev/null -w '%{http_code}' -X POST "$KEEPER_URL/v1/audit/anchor"
	[ "$output" = 401 ]
	run_logged curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $tok" "$KEEPER_URL/v1/audit/anchor"
	[ "$output" = 401 ]
}
