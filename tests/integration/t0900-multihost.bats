#!/usr/bin/env bats
# Several hosts, for real: PostgreSQL, a keeper, three api replicas and
# three agents, each in a network namespace of its own on a private bridge
# (tests/multihost/netns.bash: the topology, its addresses, what the cases
# observe). Every case rolls a release over 6 machines on the 3 hosts and
# breaks something in the middle: the api stepping it (kill -9), an agent
# (kill -9, then a restart), the keeper (stopped for 30 s), a host's link
# (down). After each, the CLI's machines list, releases and secrets list,
# each machine's /proc/PID/environ and the process table must agree: one
# process per live machine, running the value of the release it reports.
# Root only (CI runs as root); elsewhere the file skips, saying why. It
# runs its own PostgreSQL and needs no COFFER_TEST_PG_URL.

load helpers
source "$BATS_TEST_DIRNAME/../multihost/netns.bash"

bats_require_minimum_version 1.5.0

COUNT=6

setup_file() {
	local why
	why=$(mh_skip_reason)
	if [ -n "$why" ]; then
		echo "$why" >"$BATS_FILE_TMPDIR/skip"
		return 0
	fi
	mh_platform_up
	export MH_API_URLS="${MH_API_URL[*]}"
}

teardown_file() {
	[ -e "$BATS_FILE_TMPDIR/skip" ] && return 0
	mh_teardown
}

setup() {
	[ -e "$BATS_FILE_TMPDIR/skip" ] && skip "$(cat "$BATS_FILE_TMPDIR/skip")"
	read -r -a urls <<<"$MH_API_URLS"
	MH_API_URL=([1]="${urls[0]}" "${urls[1]}" "${urls[2]}")
	mh_heal
	APP_SH="$APPS_DIR/app.sh"
	APP="c$BATS_TEST_NUMBER"
	"$COFFER" apps create "$APP" >/dev/null
	"$COFFER" secrets set -a "$APP" LEVEL=L1 >/dev/null
	run_logged cli deploy -a "$APP" --grace 1s --count "$COUNT" -- "$APP_SH"
	[ "$status" -eq 0 ] || { echo "deploy: $output" >&2; false; }
	mh_remember "$APP" L1
	mh_wait 60 count_started "$APP" "$COUNT"
	# spread: two on each host
	[ "$(machines_json "$APP" | jq -r '[.[].host] | group_by(.) | map(length) | join(",")')" = 2,2,2 ]
	mh_agree "$APP"
}

teardown() {
	[ -e "$BATS_FILE_TMPDIR/skip" ] && return 0
	[ -n "${MH_SAMPLER:-}" ] && mh_sample_stop
	mh_heal || true
	# the case's app goes (once its release is over: a running one refuses
	# the destroy), and with it its machines; a process of it that outlives
	# that is an orphan: named, then ended, so that the next case starts
	# from a clean process table
	mh_wait 90 releases_settled "$APP" || true
	mh_wait 30 "$COFFER" apps destroy "$APP" --yes || echo "could not destroy app $APP" >&2
	mh_wait 30 mh_no_procs "$APP" || echo "orphans of $APP: $(mh_machine_procs "$APP" | tr '\n' ' ')" >&2
	mh_machine_procs "$APP" | while read -r _ pid; do kill -KILL "$pid" 2>/dev/null || true; done
	canary_scan
}

mh_no_procs() {
	[ -z "$(mh_machine_procs "$1")" ]
}

# mh_level APP VALUE [--detach]: secrets set LEVEL=VALUE (a release, once
# the app has machines); remembers VALUE and the digest secrets list
# shows for it under the release it made (LEVEL_OF, DIGEST_OF by version).
mh_level() {
	local app=$1 value=$2 v
	shift 2
	run_logged cli secrets set -a "$app" "$@" "LEVEL=$value"
	[ "$status" -eq 0 ] || { echo "secrets set: $output" >&2; return 1; }
	mh_remember "$app" "$value"
}

# mh_remember APP VALUE: the newest release of APP set LEVEL=VALUE.
mh_remember() {
	local v
	v=$(latest_release "$1")
	LEVEL_OF[v]=$2
	DIGEST_OF[v]=$("$COFFER" secrets list -a "$1" --json | jq -r '.[] | select(.name == "LEVEL") | .digest')
	[ -n "${DIGEST_OF[v]}" ]
	LAST_V=$v
}

# release_running_with_progress APP V: the release is running and at least
# one machine of it is past its start (a step taken: mid-release).
release_mid() {
	release_of "$1" "$2" | jq -e '.status == "running" and ([.machines[]? | select(.step == "watching" or .step == "done")] | length >= 1)'
}

# mh_agree APP: the CLI, the store and the processes tell one story:
# - releases: none pending or running; the current one is every machine's
# - machines list: COUNT machines, started, each with a live pid
# - each pid's environ: its machine id, its release, LEVEL of that release
# - secrets list: LEVEL deployed, with the digest of the current release's value
# - the process table: exactly one process per live machine (no orphan, no
#   duplicate), for this app and for every app of the test
mh_agree() {
	local app=$1 m r cur id pid rel host n=0 procs
	run_logged cli releases -a "$app" --json
	[ "$status" -eq 0 ]
	r=$(jq -c 'if type == "array" then . else .releases end' <<<"$output")
	[ "$(jq '[.[] | select(.status == "pending" or .status == "running")] | length' <<<"$r")" = 0 ]
	cur=$(api_get "/v1/apps/$app/status" | jq -r .current_release)
	[ "$(jq -r --argjson v "$cur" '.[] | select(.version == $v) | .status' <<<"$r")" = succeeded ]
	run_logged cli machines list -a "$app" --json
	[ "$status" -eq 0 ]
	m=$(jq -c 'if type == "array" then . else .machines end' <<<"$output")
	[ "$(jq length <<<"$m")" -eq "$COUNT" ] || { echo "machines list: $(jq length <<<"$m") machines, want $COUNT" >&2; return 1; }
	while read -r id pid rel host; do
		[ "$rel" = "$cur" ] || { echo "machine $id on $host runs release $rel, current is $cur" >&2; return 1; }
		kill -0 "$pid" 2>/dev/null || { echo "machine $id on $host: pid $pid is not running" >&2; return 1; }
		[ "$(env_of "$pid" COFFER_MACHINE_ID)" = "$id" ]
		[ "$(env_of "$pid" COFFER_RELEASE_VERSION)" = "$rel" ]
		[ "$(env_of "$pid" LEVEL)" = "${LEVEL_OF[$rel]}" ] || { echo "machine $id: LEVEL is not the value of release $rel" >&2; return 1; }
		n=$((n + 1))
	done < <(jq -r '.[] | select(.state == "started") | "\(.id) \(.pid) \(.release) \(.host)"' <<<"$m")
	[ "$n" -eq "$COUNT" ] || { echo "$n of $COUNT machines started" >&2; return 1; }
	run_logged cli secrets list -a "$app" --json
	[ "$status" -eq 0 ]
	# LEVEL is deployed, or marked failed when the newest release (which changed it) failed
	local want=deployed
	[ "$(jq -r 'max_by(.version) | .status' <<<"$r")" = failed ] && want=failed
	[ "$(jq -r '.[] | select(.name == "LEVEL") | .status' <<<"$output")" = "$want" ] ||
		{ echo "secrets list: LEVEL is not $want" >&2; return 1; }
	[ "$(jq -r '.[] | select(.name == "LEVEL") | .digest' <<<"$output")" = "${DIGEST_OF[$cur]}" ]
	# the process table: this app's processes are exactly the listed (id, pid)
	procs=$(mh_machine_procs "$app" | sort)
	if [ "$procs" != "$(jq -r '.[] | "\(.id) \(.pid)"' <<<"$m" | sort)" ]; then
		echo "process table of $app (machine id, pid):" >&2
		echo "$procs" >&2
		echo "machines list:" >&2
		jq -r '.[] | "\(.id) \(.pid) \(.state) \(.host)"' <<<"$m" >&2
		return 1
	fi
	# and no machine id of any app runs twice
	[ -z "$(mh_machine_procs | awk '{print $1}' | sort | uniq -d)" ] || { echo "a machine id runs twice" >&2; return 1; }
	PROC_CHECK="$(wc -l <<<"$procs") processes for $COUNT machines of $app, one each"
}

# started_once APP V: every machine of APP started exactly once under
# release V (app.sh says "app up: machine ID release V" in its out.log at
# every start; release numbers are per app, so only APP's machine ids
# count); prints the count per machine when not.
started_once() {
	local starts ids
	ids=$(machines_json "$1" | jq -r '.[].id')
	starts=$(find "$T/agents" -name 'out.log*' -type f -exec cat {} + 2>/dev/null |
		grep -oE "app up: machine [0-9a-f]+ release $2 " | awk '{print $4}' | grep -xF -- "$ids" | sort | uniq -c)
	if [ "$(awk '$1 != 1' <<<"$starts")" != "" ] || [ "$(grep -c . <<<"$starts")" -ne "$COUNT" ]; then
		echo "starts under release $2 (count, machine):" >&2
		echo "$starts" >&2
		return 1
	fi
}

# mh_secs SINCE: seconds from SINCE (mh_now) to now, one decimal.
mh_secs() {
	awk -v a="$1" -v b="$(mh_now)" 'BEGIN { printf "%.1f", b - a }'
}

# mh_outcome APP V: "succeeded" or "failed: REASON" (the release is done).
mh_outcome() {
	release_of "$1" "$2" | jq -r 'if .status == "failed" then "failed: \((.reason // "no reason") | split("\n")[0])" else .status end'
}

# mh_settled APP: the release is over and the machines show it: COUNT
# started, with live pids, all on the current release, and the process
# table agrees (mh_agree, quiet, for mh_wait).
mh_settled() {
	releases_settled "$1" && count_started "$1" "$COUNT" && mh_agree "$1" 2>/dev/null
}

@test "kill -9 of the api stepping a release: another api finishes it, no step twice" {
	mh_level "$APP" L2 --detach
	v=$LAST_V
	mh_wait 60 release_mid "$APP" "$v"
	run mh_stepper "$APP" "$v"
	[ "$status" -eq 0 ] || { echo "no api is seen stepping release $v" >&2; false; }
	k=$output
	before=$(release_of "$APP" "$v" | jq -c '.machines')
	t0=$(mh_now)
	kill -KILL "$(cat "$T/pid.api$k")"
	# the test's own CLI moves to a live replica (the agents have all three)
	mh_use_api $((k % 3 + 1))
	lease="" step=""
	while [ -z "$lease" ] || [ -z "$step" ]; do
		if [ -z "$step" ] && [ "$(release_of "$APP" "$v" | jq -c '.machines')" != "$before" ]; then step=$(mh_secs "$t0"); fi
		if [ -z "$lease" ] && n=$(mh_stepper "$APP" "$v") && [ "$n" != "$k" ]; then lease="$(mh_secs "$t0") s (api$n)"; fi
		[ "$(mh_secs "$t0" | cut -d. -f1)" -lt 60 ] || break
		sleep 0.2
	done
	echo "# api kill: api$k killed mid-release v$v; lease taken over after ${lease:-never (60 s)}; release progressed after ${step:-never (60 s)} s" >&3
	mh_wait 150 release_done "$APP" "$v"
	echo "# api kill: release v$v $(mh_outcome "$APP" "$v")" >&3
	[ "$(release_status "$APP" "$v")" = succeeded ]
	[ -n "$lease" ]
	started_once "$APP" "$v"
	mh_wait 60 mh_settled "$APP"
	mh_agree "$APP"
	echo "# api kill: $PROC_CHECK" >&3
}

@test "kill -9 of an agent mid-release and its restart: its machines run on and are adopted, none twice, no orphan" {
	mh_level "$APP" L2 --detach
	v=$LAST_V
	mh_wait 60 release_mid "$APP" "$v"
	mine=$(machines_json "$APP" | jq -r '.[] | select(.host == "host2") | "\(.id) \(.pid)"')
	kill -KILL "$(cat "$T/pid.host2")"
	t0=$(mh_now)
	# without their agent, its machines run on (a window to see them end in,
	# not a wait for a condition)
	sleep 2
	while read -r id pid; do
		kill -0 "$pid" 2>/dev/null || { echo "machine $id (pid $pid) ended with its agent" >&2; false; }
	done <<<"$mine"
	mh_agent_start 2
	mh_wait 150 release_done "$APP" "$v"
	out=$(mh_outcome "$APP" "$v")
	echo "# agent kill: host2's agent killed mid-release v$v and restarted; release $out ($(mh_secs "$t0") s after the kill)" >&3
	mh_wait 60 mh_settled "$APP" || true
	procs=$(mh_machine_procs "$APP" | sort)
	echo "# agent kill: process table: $(wc -l <<<"$procs") processes of $APP, $(awk '{print $1}' <<<"$procs" | sort -u | wc -l) machine ids, $(machines_json "$APP" | jq length) machines listed" >&3
	mh_agree "$APP"
	echo "# agent kill: $PROC_CHECK" >&3
	# adopted: each of host2's old processes either still is its machine's
	# process or has ended, replaced by a process of the release
	cur=$(api_get "/v1/apps/$APP/status" | jq -r .current_release)
	while read -r id pid; do
		now=$(started_pids "$APP" | awk -v id="$id" '$1 == id { print $2 }')
		[ -n "$now" ] || continue # moved to another host: mh_agree saw no orphan
		if [ "$now" != "$pid" ]; then
			run ! kill -0 "$pid"
			[ "$(env_of "$now" COFFER_RELEASE_VERSION)" = "$cur" ]
		fi
	done <<<"$mine"
	started_once "$APP" "$v" || [ "$out" != succeeded ]
}

@test "the keeper stopped for 30 s mid-release: no machine loses its process, the release ends cleanly" {
	before=$(started_pids "$APP")
	ids=$(awk '{print $1}' <<<"$before" | tr '\n' ' ')
	mh_sample_start
	mh_level "$APP" L2 --detach
	v=$LAST_V
	mh_wait 60 release_mid "$APP" "$v"
	stop_pids "$(cat "$T/pid.keeper")"
	t0=$(mh_now)
	sleep 30 # the outage itself, not a wait for a condition
	t_down=$(awk -v t="$t0" 'BEGIN { printf "%.3f", t + 3 }')
	t_up=$(mh_now)
	mh_keeper_start
	echo "# keeper outage: keeper down $(mh_secs "$t0") s" >&3
	mh_wait 150 release_done "$APP" "$v"
	out=$(mh_outcome "$APP" "$v")
	mh_wait 60 mh_settled "$APP" || true
	mh_sample_stop
	down=$(mh_downtime $ids)
	outage=$(mh_missing "$t_down" "$t_up" $ids)
	echo "# keeper outage: release v$v $out; machine downtime during the outage: $(awk '{ s = $2 > s ? $2 : s } END { printf "%.1f", s + 0 }' <<<"$outage") s at most ($(awk '{ n += $3 } END { print n + 0 }' <<<"$outage") machine-samples missing of $(head -n 1 <<<"$outage" | awk '{print $4}') samples); longest gap over the whole case (swaps included): $(sort -k2 -n -r <<<"$down" | head -n 1 | awk '{print $2}') s" >&3
	# while the keeper is away (from 3 s after the stop to the restart) no
	# machine may be left without its process: a swap whose secrets were
	# opened before the stop may still fall in the window, a gap of a
	# sample or two (at most 5 s on a loaded machine); being down for the
	# outage is 27 s
	[ "$(head -n 1 <<<"$outage" | awk '{print $4}')" -ge 5 ] || { echo "too few samples during the outage" >&2; false; }
	while read -r id secs missing _; do
		[ "$(awk -v s="$secs" 'BEGIN { print (s <= 5) }')" = 1 ] ||
			{ echo "machine $id had no process for $secs s of the outage ($missing samples)" >&2; false; }
	done <<<"$outage"
	# over the whole case a gap is a swap (old stopped, new started), a
	# second or two between samples on a loaded machine; never an outage's
	while read -r id secs; do
		[ "$(awk -v s="$secs" 'BEGIN { print (s <= 10) }')" = 1 ] || { echo "machine $id had no process for $secs s" >&2; false; }
	done <<<"$down"
	mh_agree "$APP"
	echo "# keeper outage: $PROC_CHECK" >&3
	# each machine still runs its first process, or one of the release's
	cur=$(api_get "/v1/apps/$APP/status" | jq -r .current_release)
	while read -r id pid; do
		old=$(awk -v id="$id" '$1 == id { print $2 }' <<<"$before")
		[ "$pid" = "$old" ] || [ "$(env_of "$pid" COFFER_RELEASE_VERSION)" = "$cur" ]
	done < <(started_pids "$APP")
}

@test "one host's link cut mid-release: its machines move to the other hosts, or the release fails saying why" {
	mh_level "$APP" L2 --detach
	v=$LAST_V
	mh_wait 60 release_mid "$APP" "$v"
	ip -n "${MH_PREFIX}net" link set host3 down
	t0=$(mh_now)
	mh_wait 150 release_done "$APP" "$v"
	out=$(mh_outcome "$APP" "$v")
	echo "# link cut: host3 cut mid-release v$v; release $out after $(mh_secs "$t0") s" >&3
	if [ "$(release_status "$APP" "$v")" = succeeded ]; then
		# rescheduled: COUNT started machines, none on host3
		mh_wait 60 count_started "$APP" "$COUNT"
		[ "$(machines_json "$APP" | jq '[.[] | select(.host == "host3")] | length')" = 0 ]
	else
		# a reason that names the machine or the host it waited for
		[[ "$out" =~ machine\ [0-9a-f]+|host ]]
	fi
	ip -n "${MH_PREFIX}net" link set host3 up
	mh_wait 60 hosts_ready 3
	mh_wait 60 mh_settled "$APP" || true
	mh_agree "$APP"
	echo "# link cut: after the link is back: $PROC_CHECK" >&3
}
