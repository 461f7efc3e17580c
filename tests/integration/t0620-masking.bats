#!/usr/bin/env bats
# Live masking and read-once boot tokens (docs/RUNPATH.md, "Output and its
# masking", "Agent <-> keeper"), with real processes: a machine that prints
# its secret (whole, split across two writes, as the last bytes of its
# stream) leaves only *** in its out.log and in a failed release's tail; an
# agent SIGKILLed while the machine prints leaves the machine running and
# its later output still masked (the masker is not the agent's); an
# adopted machine whose record does not say masked (an older agent's start)
# sends no tail of its raw log; a boot
# token opens once: its second open is refused and audited, by a restarted
# keeper too. The machine is tests/integration/apps/printer.sh; its secret
# is the canary, so the canary scan (every file under $T, the machines'
# out.log files included) is the main assertion.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	platform_start
	PRINTER="$APPS_DIR/printer.sh"
}

teardown() {
	run_stop
	platform_stop
}

# the out.log of the app's one machine on agent h1
log_of() {
	local id
	id=$(machines_json "$1" | jq -r '.[0].id')
	echo "$T/agents/h1/machines/$id/logs/out.log"
}

# ticks LOG: how many tick lines LOG holds
ticks() {
	grep -c '^tick ' "$1" || true
}

# more_ticks LOG N: LOG holds more than N tick lines
more_ticks() {
	[ "$(ticks "$1")" -gt "$2" ]
}

# all_masked LOG: every line that should carry the value shows *** instead
all_masked() {
	[ -z "$(grep -v -e '^whole: \*\*\*$' -e '^split: \*\*\* end$' -e '^tick [0-9]*: \*\*\*$' -e '^app up' "$1" | grep -v '^$')" ]
}

@test "a machine printing its secret: whole, split across writes, at the end of its stream: only *** is written" {
	agents_up 1
	deploy canary --env MODE=print -- "$PRINTER"
	[ "$status" -eq 0 ]
	wait_until 30 count_started canary 1
	LOG=$(log_of canary)
	wait_until 20 more_ticks "$LOG" 2
	grep -qx 'whole: \*\*\*' "$LOG"
	grep -qx 'split: \*\*\* end' "$LOG"
	all_masked "$LOG"
	# the agent's own processes: one masker, in a session of its own, not in the machine's group
	pid=$(started_pids canary | awk '{ print $2 }')
	masker=$(pgrep -f 'agent mask-output' | while read -r p; do
		if [ "$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null)" = "$AGENT_PID" ]; then echo "$p"; fi; done)
	[ "$(wc -w <<<"$masker")" -eq 1 ]
	[ "$(awk '{ print $5 }' "/proc/$masker/stat")" != "$(awk '{ print $5 }' "/proc/$pid/stat")" ]
	[ "$(awk '{ print $6 }' "/proc/$masker/stat")" = "$masker" ]

	# the value as the last bytes of the stream, no newline: the machine exits, the release fails with the tail
	deploy canary --env MODE=end -- "$PRINTER"
	[ "$status" -ne 0 ]
	[[ "$output" == *"end: ***"* ]]
	wait_until 30 release_done canary "$(latest_release canary)"
	reason=$(release_of canary "$(latest_release canary)" | jq -r .reason)
	[[ "$reason" == *"end: ***"* ]]
	# the run's log, rotated away by the rollback's start or still there
	grep -qF 'end: ***' "$LOG" "$LOG".* 2>/dev/null
}

@test "an agent SIGKILLed while its machine prints: the machine runs on, its later output still masked" {
	agents_up 1
	deploy canary --env MODE=print -- "$PRINTER"
	[ "$status" -eq 0 ]
	wait_until 30 count_started canary 1
	LOG=$(log_of canary)
	pid=$(started_pids canary | awk '{ print $2 }')
	wait_until 20 more_ticks "$LOG" 2
	kill -KILL "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PIDS=
	n=$(ticks "$LOG")
	wait_until 20 more_ticks "$LOG" $((n + 5))
	kill -0 "$pid"
	all_masked "$LOG"
	# a new agent adopts it; the output goes on, masked
	agent_start h1
	wait_until 30 grep -q 'event=machine.adopted' "$T/agent-h1.log"
	n=$(ticks "$LOG")
	wait_until 20 more_ticks "$LOG" $((n + 3))
	[ "$(started_pids canary | awk '{ print $2 }')" = "$pid" ]
	all_masked "$LOG"
}

# restarted APP OLDPID: the app's one machine runs a live process other than OLDPID
restarted() {
	local pid
	pid=$(started_pids "$1" | awk '{ print $2 }')
	[ -n "$pid" ] && [ "$pid" != "$2" ] && kill -0 "$pid"
}

@test "an adopted machine whose record does not say masked (an older agent's start): its exit sends no tail" {
	agents_up 1
	deploy canary --env MODE=print -- "$PRINTER"
	[ "$status" -eq 0 ]
	wait_until 30 count_started canary 1
	LOG=$(log_of canary)
	id=$(machines_json canary | jq -r '.[0].id')
	pid=$(started_pids canary | awk '{ print $2 }')
	rec="$T/agents/h1/machines/$id/run.json"
	[ "$(jq -r .masked "$rec")" = true ]
	kill -KILL "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PIDS=
	# the record an older agent wrote: no "masked"; its log holds raw output
	jq -c 'del(.masked)' "$rec" >"$rec.new"
	mv "$rec.new" "$rec"
	agent_start h1
	wait_until 30 grep -q 'event=machine.adopted' "$T/agent-h1.log"
	kill -STOP "$pid"
	echo "raw: unmasked-marker-7f3a" >>"$LOG"
	kill -KILL "$pid"
	wait_until 60 restarted canary "$pid"
	grep -q 'machine.tail_withheld.*output not masked' "$T/agent-h1.log"
	# nothing of that log left the host: not in the store, not in any event
	run grep -rlF unmasked-marker-7f3a "$T" --exclude='out.log*'
	[ "$status" -eq 1 ]
	# the new start writes its record masked again
	[ "$(jq -r .masked "$rec")" = true ]
}

@test "a boot token opens once: a second open is refused and audited, after a keeper restart too" {
	agents_up 1
	deploy canary -- "$PRINTER"
	[ "$status" -eq 0 ]
	wait_until 30 count_started canary 1
	MID=$(machines_json canary | jq -r '.[0].id')
	MHOST=${HOST_IDS[1]}
	echo '{}' >"$T/empty.json"
	sign "$MHOST" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	send "$API_URL" POST "/v1/agent/machines/$MID/boot-token" "$T/empty.json"
	[ "$CODE" = 200 ]
	jq -cn --arg t "$(jq -r .token <<<"$BODY")" '{token: $t}' >"$T/open.json"
	sign "$MHOST" POST /v1/open "$T/open.json"
	send "$KEEPER_URL" POST /v1/open "$T/open.json"
	[ "$CODE" = 200 ] || { echo "first open: $CODE $BODY" >&2; return 1; }
	# the same token in a new, validly signed request (not a replayed request: a replayed token)
	sign "$MHOST" POST /v1/open "$T/open.json"
	send "$KEEPER_URL" POST /v1/open "$T/open.json"
	[ "$CODE" = 401 ]
	[ "$(jq -r .error.message <<<"$BODY")" = "boot token already used" ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'secrets.open' AND outcome = 'refused: boot token already used' AND actor = 'host:$MHOST'")" = 1 ]
	# the spend is in the store: a restarted keeper refuses it as well
	stop_pids "$KEEPER_PID"
	keeper_start
	sign "$MHOST" POST /v1/open "$T/open.json"
	send "$KEEPER_URL" POST /v1/open "$T/open.json"
	[ "$CODE" = 401 ]
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'secrets.open' AND outcome = 'refused: boot token already used'")" = 2 ]
	# the agent's own boots never reuse a token: no refusal of its opens but ours
	[ "$(store_sql "SELECT count(*) FROM audit_events WHERE action = 'secrets.open' AND outcome = 'ok'")" -ge 1 ]
}
