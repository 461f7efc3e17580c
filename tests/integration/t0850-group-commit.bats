#!/usr/bin/env bats
# Group commit (docs/STORE.md "Group commit"): concurrent `coffer secrets
# set` are committed together, and an answer leaves only once the commit
# that holds its change is durable. The api is killed with SIGKILL in the
# middle of the load and started again: every set that was answered is in
# the store (its version holds its name, with the digest its audit event
# names), every app's versions are contiguous, the audit chain verifies.

load helpers

CLIENTS=4

setup() { platform_start; }
teardown() { stop_client_loops; platform_stop; }

# client_loop K: sets G<K>_<i> on app g<K> until $T/stop exists; each answered
# set appends "NAME VERSION" to $T/answers.K (only once the CLI exited 0).
client_loop() {
	local k=$1 i=0 out v
	while [ ! -e "$T/stop" ]; do
		i=$((i + 1))
		if out=$(timeout 60 "$COFFER" secrets set -a "g$k" "G${k}_$i=value-$k-$i" 2>>"$T/client.$k.err"); then
			v=$(printf '%s\n' "$out" | sed -n 's/.*(version \([0-9][0-9]*\)).*/\1/p')
			printf 'G%s_%s %s\n' "$k" "$i" "${v:-?}" >>"$T/answers.$k"
		fi
	done
}

stop_client_loops() {
	[ -n "${T:-}" ] && [ -d "$T" ] && touch "$T/stop"
	local pid
	for pid in ${CLIENT_PIDS[@]+"${CLIENT_PIDS[@]}"}; do
		wait "$pid" 2>/dev/null || true
	done
	CLIENT_PIDS=()
}

answered() {
	cat "$T"/answers.* 2>/dev/null | wc -l
}

at_least() {
	[ "$(answered)" -ge "$1" ]
}

@test "kill -9 under concurrent sets: every answered set is stored, versions contiguous, the chain verifies" {
	local k name v got digest detail_digest api_addr
	for k in $(seq "$CLIENTS"); do
		"$COFFER" apps create "g$k" >/dev/null
	done
	CLIENT_PIDS=()
	for k in $(seq "$CLIENTS"); do
		client_loop "$k" 3>&- &
		CLIENT_PIDS+=($!)
	done
	# mid-load: enough answers that commits were under way, then SIGKILL
	wait_until 40 at_least 12
	sleep 1 # the load runs on: the kill lands among commits and answers, not at the start of one
	kill -KILL "$API_PID"
	wait "$API_PID" 2>/dev/null || true
	touch "$T/stop"
	stop_client_loops
	api_addr=${API_URL#https://}
	api_start "$api_addr"

	run answered
	[ "$output" -ge 12 ]
	# what the store holds, read once: "app version name digest" per entry, and the sets' audit details
	store_sql "SELECT a.name || ' ' || e.version || ' ' || e.name || ' ' || s.digest FROM secret_entries e
		JOIN apps a ON a.id = e.app_id JOIN secret_values s ON s.id = e.value_id" >"$T/entries"
	store_sql "SELECT app || ' ' || detail FROM audit_events WHERE action = 'secrets.set' AND outcome = 'ok'" \
		>"$T/set-events"
	while read -r name v; do
		k=${name%%_*}
		k=${k#G}
		[ "$v" != "?" ] || { echo "no version in the answer to $name" >&2; false; }
		# the version the client was told holds its name, and the version before does not
		digest=$(awk -v a="g$k" -v v="$v" -v n="$name" '$1 == a && $2 == v && $3 == n { print $4 }' "$T/entries")
		[ -n "$digest" ] || { echo "answered $name (g$k v$v) is not in the store" >&2; false; }
		got=$(awk -v a="g$k" -v v="$((v - 1))" -v n="$name" '$1 == a && $2 == v && $3 == n' "$T/entries")
		[ -z "$got" ]
		# the value's digest is the one the set's audit event (committed with it) names
		detail_digest=$(sed -n "s/^g$k //p" "$T/set-events" | jq -r --argjson v "$v" --arg n "$name" \
			'select(.version == $v) | .set[] | select(.name == $n) | .digest')
		[ "$digest" = "$detail_digest" ] ||
			{ echo "$name: digest '$digest', audit names '$detail_digest'" >&2; false; }
	done < <(cat "$T"/answers.*)

	# every app's versions are 1..max, none missing
	for k in $(seq "$CLIENTS"); do
		got=$(store_sql "SELECT count(*) || ' ' || coalesce(max(version), 0) FROM secret_versions v
			JOIN apps a ON a.id = v.app_id WHERE a.name = 'g$k'")
		[ "${got% *}" = "${got#* }" ] || { echo "g$k: versions not contiguous ($got)" >&2; false; }
	done

	run_logged "$COFFER" audit verify
	[ "$status" -eq 0 ]

	# the restarted api takes sets again
	run_logged "$COFFER" secrets set -a g1 AFTER=restart
	[ "$status" -eq 0 ]
}
