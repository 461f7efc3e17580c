#!/usr/bin/env bats
# Machines outlive their agent (docs/RUNPATH.md, "Machines outlive their
# agent"), with real processes: an agent SIGKILLed and started again adopts
# the machines it finds running (the same pids, one process per machine,
# still restarted on a crash), reaps what is no longer assigned or runs
# another release, never adopts nor signals a process a forged record
# names; a machine whose release changes keeps its old process until the
# new secrets are opened (a keeper outage costs it nothing); --keep-machines
# leaves them running at SIGTERM; `coffer dev` stops its agents before the
# api, so the store ends with the machines stopped. After every agent kill
# the process table is checked: exactly one process per live machine.

load helpers

bats_require_minimum_version 1.5.0

DEV_TEST="coffer dev stops its agents first: the store ends with the machines stopped"

setup() {
	if [ "$BATS_TEST_DESCRIPTION" = "$DEV_TEST" ]; then
		T=$(mktemp -d "${TMPDIR:-/tmp}/coffer-dev.XXXXXX")
		chmod 711 "$T"
		export COFFER_CONFIG="$T/config.json"
		unset COFFER_API_URL COFFER_TOKEN COFFER_APP
		return
	fi
	platform_start
	APP="$APPS_DIR/app.sh"
}

teardown() {
	if [ "$BATS_TEST_DESCRIPTION" = "$DEV_TEST" ]; then
		[ -n "${DEV_PID:-}" ] && kill -INT "$DEV_PID" 2>/dev/null && wait "$DEV_PID" 2>/dev/null
		kill_our_machines
		canary_scan
		rm -rf "$T"
		return
	fi
	[ -n "${SLEEPER:-}" ] && kill -KILL "$SLEEPER" 2>/dev/null
	run_stop
	kill_our_machines
	platform_stop
}

# machine_procs: "PID MACHINE_ID" of every live process that runs in a
# machine's work dir under $T and carries COFFER_MACHINE_ID, in pid order
# (a zombie has neither: it holds nothing).
machine_procs() {
	local cwd pid id
	find /proc/[0-9]*/cwd -maxdepth 0 -lname "$T/*/machines/*/work" 2>/dev/null | while read -r cwd; do
		pid=${cwd#/proc/}
		pid=${pid%/cwd}
		id=$(env_of "$pid" COFFER_MACHINE_ID) || continue
		echo "$pid $id"
	done | sort -n
}

# one_per_machine APP N: the process table holds exactly N machine
# processes, one per machine id, and they are the pids the api lists as
# APP's started machines.
one_per_machine() {
	local procs
	procs=$(machine_procs)
	[ "$(wc -l <<<"$procs")" -eq "$2" ] || return 1
	[ -z "$(awk '{ print $2 }' <<<"$procs" | sort | uniq -d)" ] || return 1
	[ "$(awk '{ print $2 " " $1 }' <<<"$procs" | sort)" = "$(started_pids "$1" | sort)" ]
}

# kill_our_machines: whatever machine process of this test is left.
kill_our_machines() {
	local pid id
	[ -n "${T:-}" ] || return 0
	while read -r pid id; do
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	done < <(machine_procs)
	return 0
}

# adopted N [LOG]: the agent's log says it adopted N machines (since LOG had that many lines).
adopted() {
	[ "$(tail -n +"$((${2:-0} + 1))" "$T/agent-h1.log" | grep -c 'machine.adopted.*an earlier agent')" -ge "$1" ]
}

log_lines() {
	wc -l <"$T/agent-h1.log"
}

# kill_agent: SIGKILL to the agent: its machines stay.
kill_agent() {
	kill -KILL "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PIDS=
}

# pid_of APP ID: the pid the api lists for machine ID of APP.
pid_of() {
	started_pids "$1" | awk -v id="$2" '$1 == id { print $2 }'
}

# pid_changed APP ID OLDPID: machine ID runs a live process other than OLDPID
pid_changed() {
	local pid
	pid=$(pid_of "$1" "$2")
	[ -n "$pid" ] && [ "$pid" != "$3" ] && kill -0 "$pid"
}

# holds_value VALUE: some live process has VALUE in its environment.
holds_value() {
	grep -qzxF -- "LEVEL=$1" /proc/[0-9]*/environ 2>/dev/null
}

# desired_is APP V: every machine of APP is assigned release V.
desired_is() {
	[ "$(machines_json "$1" | jq -r '[.[].desired_release] | unique | join(",")')" = "$2" ]
}

# dev_started DB N: N machines are started in coffer dev's store.
dev_started() {
	[ "$(sqlite3_busy "$1" "SELECT count(*) FROM machines WHERE state = 'started'")" = "$2" ]
}

# keeper_restart ADDR: the keeper again, on the address the agent and the api know.
keeper_restart() {
	rm -f "$T/keeper.ready"
	"$COFFER" keeper --state-dir "$T/keeper" --store "$STORE_URL" --listen "$1" \
		--tls-cert "$TLS_SERVER_CERT" --tls-key "$TLS_SERVER_KEY" \
		--ready-file "$T/keeper.ready" >>"$T/keeper.out" 2>>"$T/keeper.log" 3>&- &
	KEEPER_PID=$!
	wait_file "$T/keeper.ready" "$KEEPER_PID"
}

@test "kill -9 of the agent: the next one adopts the 3 machines, same pids, and still restarts a crash" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web LEVEL=one >/dev/null
	deploy web --count 3 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 3
	wait_until 10 one_per_machine web 3
	before=$(machine_procs)
	listed=$(started_pids web)
	kill_agent
	# the machines outlive it: the same 3 processes
	[ "$(machine_procs)" = "$before" ]
	agent_start h1
	wait_until 30 adopted 3
	wait_until 30 hosts_ready 1
	# exactly 3 machine processes, the same pids, and the api lists them
	one_per_machine web 3
	[ "$(machine_procs)" = "$before" ]
	[ "$(started_pids web)" = "$listed" ]
	echo "# process table after kill -9 and restart: $(machine_procs | tr '\n' ' ')(before: $(tr '\n' ' ' <<<"$before"))" >&3
	run_logged cli machines list -a web --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.[] | select(.state == "started")] | length' <<<"$output")" = 3 ]
	# a tick later still nothing more: the new agent booted none of its own
	[ "$(grep -c 'machine.started' "$T/agent-h1.log")" -eq 3 ]
	one_per_machine web 3
	# an adopted machine that crashes is restarted (its exit status unknown to the agent)
	read -r id pid < <(started_pids web | head -n 1)
	kill -KILL "$pid"
	wait_until 60 pid_changed web "$id" "$pid"
	wait_until 30 one_per_machine web 3
	grep -q 'machine.exited.*exit_unknown=1\|"exit_unknown":1' "$T/agent-h1.log"
	[ "$(env_of "$(pid_of web "$id")" LEVEL)" = one ]
	# and killed once more, then started again: the new pid is adopted too
	kill_agent
	after=$(machine_procs)
	agent_start h1
	wait_until 30 adopted 6
	wait_until 30 one_per_machine web 3
	[ "$(machine_procs)" = "$after" ]
}

@test "a machine destroyed while its agent is dead is reaped when the agent starts" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	deploy web --count 2 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 2
	read -r id pid < <(started_pids web | head -n 1)
	read -r other otherpid < <(started_pids web | tail -n 1)
	kill_agent
	run_logged cli machines destroy -a web "$id" --yes
	[ "$status" -eq 0 ]
	kill -0 "$pid" # nobody could stop it yet
	agent_start h1
	wait_until 30 gone "$pid"
	wait_until 30 one_per_machine web 1
	[ "$(machine_procs)" = "$otherpid $other" ]
	grep -q "machine.stopped.*$id\|\"machine\":\"$id\".*unassigned" "$T/agent-h1.log"
}

@test "a release made while the agent is dead: its old process is reaped, no orphan holds the old value" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	old="old-$RANDOM$RANDOM"
	"$COFFER" secrets set -a web "LEVEL=$old" >/dev/null
	deploy web --count 2 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 2
	pids=$(started_pids web | awk '{ print $2 }')
	holds_value "$old"
	kill_agent
	run_logged cli secrets set -a web LEVEL=new --detach
	[ "$status" -eq 0 ]
	v=$(latest_release web)
	agent_start h1
	wait_until 120 release_done web "$v"
	[ "$(release_status web "$v")" = succeeded ]
	for pid in $pids; do wait_until 30 gone "$pid"; done
	wait_until 30 one_per_machine web 2
	machine_env_is web LEVEL new
	run ! holds_value "$old"
}

@test "a forged record naming an unrelated live process: neither adopted nor signalled" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	deploy web --count 1 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 1
	read -r id pid < <(started_pids web)
	rec="$T/agents/h1/machines/$id/run.json"
	[ "$(jq -r .pid "$rec")" = "$pid" ]
	kill_agent
	# the machine is gone, its pid now names a sleep of ours (right pid in the record, wrong start time)
	kill -KILL "$pid"
	wait_until 10 gone "$pid"
	sleep 100000 &
	SLEEPER=$!
	jq -c --argjson p "$SLEEPER" '.pid = $p' "$rec" >"$rec.new"
	mv "$rec.new" "$rec"
	agent_start h1
	wait_until 30 grep -q 'machine.not_adopted' "$T/agent-h1.log"
	# a machine of its own instead, and the sleep untouched (running, not stopped)
	wait_until 60 pid_changed web "$id" "$pid"
	[ "$(pid_of web "$id")" != "$SLEEPER" ]
	wait_until 30 one_per_machine web 1
	kill -0 "$SLEEPER"
	[ "$(awk '{ print $3 }' "/proc/$SLEEPER/stat")" = S ]
	run ! grep -q "machine.adopted.*pid=$SLEEPER\|\"pid\":$SLEEPER" "$T/agent-h1.log"
}

@test "keeper down during a release: the old process runs throughout, the new one starts once it is back" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web LEVEL=one >/dev/null
	deploy web --count 1 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 1
	read -r id pid < <(started_pids web)
	addr=${KEEPER_URL#https://}
	stop_pids "$KEEPER_PID"
	run_logged cli secrets set -a web LEVEL=two --detach
	[ "$status" -eq 0 ]
	v=$(latest_release web)
	# the machine is assigned the new release: its old process runs on, sampled for 3 s (the
	# outage stays well within the release's start timeout, 40 s at the tests' timescale)
	wait_until 30 desired_is web "$v"
	for i in $(seq 15); do
		kill -0 "$pid"
		[ "$(started_pids web)" = "$id $pid" ]
		sleep 0.2
	done
	[ "$(env_of "$pid" LEVEL)" = one ]
	# the agent tried to open the new secrets, could not, and kept it
	wait_until 60 grep -q 'machine.swap_deferred' "$T/agent-h1.log"
	one_per_machine web 1
	keeper_restart "$addr"
	wait_until 120 release_done web "$v"
	st=$(release_status web "$v")
	[ "$st" = succeeded ] || { release_of web "$v" >&2; false; }
	wait_until 30 pid_changed web "$id" "$pid"
	wait_until 30 gone "$pid"
	wait_until 30 one_per_machine web 1
	machine_env_is web LEVEL two
	# the swap: open first (succeeded), then stop and start; the gap is the stop and the exec
	from=$(grep 'event=machine.replacing' "$T/agent-h1.log" | tail -n 1 | cut -d' ' -f1)
	to=$(grep 'event=machine.started' "$T/agent-h1.log" | tail -n 1 | cut -d' ' -f1)
	[ -n "$from" ] && [ -n "$to" ]
	echo "# down during the outage: 0 ms (pid $pid ran throughout); the swap after it: $(($(date -d "${to#ts=}" +%s%3N) - $(date -d "${from#ts=}" +%s%3N))) ms" >&3
}

@test "--keep-machines: SIGTERM leaves the machines running and the next start adopts them" {
	COFFER_JOIN_TOKEN=$(join_token) agent_start h1 --keep-machines
	wait_until 20 hosts_ready 1
	"$COFFER" apps create web >/dev/null
	deploy web --count 2 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 2
	before=$(machine_procs)
	listed=$(started_pids web)
	kill -TERM "$AGENT_PID"
	rc=0
	wait "$AGENT_PID" || rc=$?
	[ "$rc" -eq 0 ]
	AGENT_PIDS=
	grep -q 'machine.left_running' "$T/agent-h1.log"
	[ "$(machine_procs)" = "$before" ]
	agent_start h1 --keep-machines
	wait_until 30 adopted 2
	wait_until 30 one_per_machine web 2
	[ "$(machine_procs)" = "$before" ]
	[ "$(started_pids web)" = "$listed" ]
	# without the flag, SIGTERM drains: the machines stop and are reported stopped
	kill -TERM "$AGENT_PID"
	rc=0
	wait "$AGENT_PID" || rc=$?
	[ "$rc" -eq 0 ]
	AGENT_PIDS=
	agent_start h1
	wait_until 30 adopted 4
	kill -TERM "$AGENT_PID"
	rc=0
	wait "$AGENT_PID" || rc=$?
	[ "$rc" -eq 0 ]
	AGENT_PIDS=
	grep -q 'machine.stopped.*reason="agent stopping"' "$T/agent-h1.log"
	for pid in $(awk '{ print $1 }' <<<"$before"); do wait_until 30 gone "$pid"; done
	[ -z "$(machine_procs)" ]
	[ "$(machines_json web | jq -r '[.[].state] | unique | join(",")')" = stopped ]
}

@test "coffer dev stops its agents first: the store ends with the machines stopped" {
	[ "${COFFER_TEST_STORE:-}" = pg ] && skip "coffer dev runs on SQLite: this runs in the sqlite run"
	"$COFFER" dev --state-dir "$T/state" --api-addr 127.0.0.1:0 --keeper-addr 127.0.0.1:0 \
		>"$T/dev.out" 2>>"$T/dev.log" &
	DEV_PID=$!
	wait_file "$T/state/env" "$DEV_PID"
	wait_until 30 grep -q COFFER_TOKEN "$T/dev.out"
	"$COFFER" apps create web >/dev/null
	run_logged timeout 150 "$COFFER" deploy -a web --grace 2s --count 2 -- "$APPS_DIR/app.sh"
	[ "$status" -eq 0 ]
	db="$T/state/coffer.db"
	wait_until 40 dev_started "$db" 2
	pids=$(sqlite3_busy "$db" "SELECT pid FROM machines")
	kill -INT "$DEV_PID"
	wait "$DEV_PID"
	DEV_PID=
	for pid in $pids; do run ! kill -0 "$pid"; done
	# the agents' last events reached the api before it stopped
	[ "$(sqlite3_busy "$db" "SELECT group_concat(DISTINCT state) FROM machines")" = stopped ]
}
