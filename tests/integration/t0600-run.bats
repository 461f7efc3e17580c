#!/usr/bin/env bats
# The run path, end to end, with real processes: agents boot machines with
# their secrets (read back from /proc/PID/environ), releases roll out one
# machine at a time with a 2 s grace window, a crash rolls back, one release
# runs at a time, scale and destroy, an api SIGKILLed mid-release resumes,
# and a crash after the grace window is a restart, not a failure. The
# machine is tests/integration/apps/app.sh. The canary scan covers every
# log and output, what a machine itself prints (its out.log files, masked
# as written) included.

load helpers

bats_require_minimum_version 1.5.0

setup() {
	platform_start
	APP="$APPS_DIR/app.sh"
	SHARED=$(mktemp -d "$T/shared.XXXXXX")
	chmod 1777 "$SHARED"
}

teardown() {
	run_stop
	platform_stop
}

# names and digests of APP's secrets, one "NAME DIGEST" a line
digests() {
	"$COFFER" secrets list -a "$1" --json | jq -r '.[] | "\(.name) \(.digest)"'
}

# the release version a CLI output names ("release v7" or "release 7")
version_in() {
	grep -oE 'release v?[0-9]+' <<<"$1" | head -n 1 | grep -oE '[0-9]+'
}

# watching APP VERSION: one machine of the release is in its grace window
watching() {
	release_of "$1" "$2" | jq -e '[.machines[]? | select(.step == "watching")] | length == 1'
}

# running_release_is APP V: every machine of APP reports running release V
running_release_is() {
	[ "$(machines_json "$1" | jq -r '[.[].release] | unique | join(",")')" = "$2" ]
}

# pid_changed APP ID OLDPID: machine ID runs a live process other than OLDPID
pid_changed() {
	local pid
	pid=$(started_pids "$1" | awk -v id="$2" '$1 == id { print $2 }')
	[ -n "$pid" ] && [ "$pid" != "$3" ] && kill -0 "$pid"
}

@test "end to end: deploy, the machine's environment, secrets set rolls it, digests and releases" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web DB_URL=postgres://first >/dev/null
	deploy web --env GREETING=hello -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started web 1
	v1=$(latest_release web)
	[ "$v1" -ge 1 ]
	[ "$(release_status web "$v1")" = succeeded ]
	# machines list: one machine, started, with a live pid on h1
	run_logged cli machines list -a web --json
	[ "$status" -eq 0 ]
	m=$(jq -c 'if type == "array" then . else .machines end' <<<"$output")
	[ "$(jq length <<<"$m")" = 1 ]
	id=$(jq -r '.[0].id' <<<"$m")
	pid=$(jq -r '.[0].pid' <<<"$m")
	[[ "$id" =~ ^[0-9a-f]{24}([0-9a-f]{8})?$ ]]
	[ "$(jq -r '.[0].state' <<<"$m")" = started ]
	[ "$(jq -r '.[0].host' <<<"$m")" = h1 ]
	[ "$(jq -r '.[0].release' <<<"$m")" = "$v1" ]
	kill -0 "$pid"
	run_logged cli machines list -a web
	[ "$status" -eq 0 ]
	[[ "$output" == *"$id"* ]]
	[[ "$output" == *started* ]]
	[[ "$output" == *"$pid"* ]]
	# its environment: coffer's names, the --env pair, the secret, nothing of the agent's
	[ "$(env_of "$pid" COFFER_APP_NAME)" = web ]
	[ "$(env_of "$pid" COFFER_MACHINE_ID)" = "$id" ]
	[ "$(env_of "$pid" COFFER_RELEASE_VERSION)" = "$v1" ]
	[ "$(env_of "$pid" GREETING)" = hello ]
	[ "$(env_of "$pid" DB_URL)" = postgres://first ]
	[ "$(env_of "$pid" PATH)" = /usr/local/bin:/usr/bin:/bin ]
	run ! env_of "$pid" COFFER_TOKEN
	run ! env_of "$pid" COFFER_JOIN_TOKEN
	before=$(digests web)
	# secrets set waits for the release, and the new machine has the new value
	run_logged cli secrets set -a web DB_URL=postgres://second "CANARY_COPY=$CANARY"
	[ "$status" -eq 0 ]
	v2=$(latest_release web)
	[ "$v2" -eq $((v1 + 1)) ]
	[ "$(release_status web "$v2")" = succeeded ]
	wait_until 10 count_started web 1
	read -r id2 pid2 < <(started_pids web)
	[ "$pid2" != "$pid" ]
	run ! kill -0 "$pid" 2>/dev/null
	[ "$(env_of "$pid2" DB_URL)" = postgres://second ]
	[ "$(env_of "$pid2" CANARY_COPY)" = "$CANARY" ]
	[ "$(env_of "$pid2" COFFER_RELEASE_VERSION)" = "$v2" ]
	[ "$(env_of "$pid2" GREETING)" = hello ]
	# the digest of DB_URL changed, a new name appeared
	after=$(digests web)
	[ "$(grep '^DB_URL ' <<<"$before")" != "$(grep '^DB_URL ' <<<"$after")" ]
	grep -q '^CANARY_COPY [0-9a-f]\{32\}$' <<<"$after"
	run_logged cli secrets list -a web --json
	[ "$(jq -r '[.[].status] | unique | join(",")' <<<"$output")" = deployed ]
	# releases shows both, succeeded
	run_logged cli releases -a web --json
	[ "$status" -eq 0 ]
	r=$(jq -c 'if type == "array" then . else .releases end' <<<"$output")
	[ "$(jq -r --argjson v "$v2" '.[] | select(.version == $v) | .status' <<<"$r")" = succeeded ]
	[ "$(jq -r --argjson v "$v1" '.[] | select(.version == $v) | .status' <<<"$r")" = succeeded ]
	run_logged cli releases -a web
	[ "$status" -eq 0 ]
	[[ "$output" == *succeeded* ]]
	# the agent's log names the machine, never a value (the canary scan checks that too)
	grep -q "$id2" "$T/agent-h1.log"
	run ! grep -q 'postgres://second' "$T/agent-h1.log" "$T/api.log" "$T/keeper.log"
}

@test "a secret wins over an --env of the same name; COFFER_ names in --env are refused" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web SHADOW=from-secret >/dev/null
	deploy web --env SHADOW=from-env --env PLAIN=from-env -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started web 1
	read -r _ pid < <(started_pids web)
	[ "$(env_of "$pid" SHADOW)" = from-secret ]
	[ "$(env_of "$pid" PLAIN)" = from-env ]
	v=$(latest_release web)
	for bad in COFFER_APP_NAME=evil COFFER_MACHINE_ID=x COFFER_ANYTHING=1; do
		deploy web --env "$bad" -- "$APP"
		[ "$status" -ne 0 ]
		[[ "$output" == *COFFER_* ]]
		[[ "$output" == *reserved* ]]
		[ "$(latest_release web)" = "$v" ]
	done
	# and the machine runs on untouched
	[ "$(started_pids web | awk '{print $2}')" = "$pid" ]
	[ "$(env_of "$pid" COFFER_APP_NAME)" = web ]
}

@test "crash rollback: the release fails with the reason, the machine runs on, the secrets are as before" {
	agents_up 1
	# the canary app: its machine prints CANARY_SECRET at every start
	deploy canary --env PRINT=CANARY_SECRET -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started canary 1
	read -r id pid < <(started_pids canary)
	v1=$(latest_release canary)
	before=$(digests canary)
	[ -n "$before" ]
	run_logged cli secrets set -a canary CRASH=1
	[ "$status" -ne 0 ]
	v2=$(latest_release canary)
	[ "$v2" -eq $((v1 + 1)) ]
	# the reason: the machine, its exit status, its output with the values masked
	[[ "$output" == *"machine $id exited with status 1"* ]]
	[[ "$output" == *"last output:"* ]]
	[[ "$output" == *"the value of CANARY_SECRET is ***"* ]]
	[[ "$output" == *"crashing on purpose"* ]]
	[[ "$output" != *"$CANARY"* ]]
	# the machine runs on with the old environment
	wait_until 30 count_started canary 1
	read -r id_after pid_after < <(started_pids canary)
	[ "$id_after" = "$id" ]
	[ "$(env_of "$pid_after" CANARY_SECRET)" = "$CANARY" ]
	run ! env_of "$pid_after" CRASH
	[ "$(env_of "$pid_after" COFFER_RELEASE_VERSION)" = "$v1" ]
	# the secrets are as before: same names, same digests; the name the failed
	# release added is listed as failed (t0215 has the other marks)
	[ "$("$COFFER" secrets list -a canary --json | jq -r '.[] | select(.status != "failed") | "\(.name) \(.digest)"')" = "$before" ]
	[ "$("$COFFER" secrets list -a canary --json | jq -r '.[] | select(.status == "failed") | .name')" = CRASH ]
	# releases --json: the failed release and its reason
	run_logged cli releases -a canary --json
	[ "$status" -eq 0 ]
	r=$(jq -c --argjson v "$v2" 'if type == "array" then . else .releases end | .[] | select(.version == $v)' <<<"$output")
	[ "$(jq -r .status <<<"$r")" = failed ]
	[[ "$(jq -r .reason <<<"$r")" == "machine $id exited with status 1"* ]]
	[[ "$(jq -r .reason <<<"$r")" == *"the value of CANARY_SECRET is ***"* ]]
	[ "$(release_status canary "$v1")" = succeeded ]
	# the app still runs release v1
	[ "$(api_get /v1/apps/canary/status | jq -r .current_release)" = "$v1" ]
	# the stored reason is masked too (the canary scan covers the store and its dump; the
	# machine's own tail row is replaced by its next exit, which a loaded run may see first)
	[ "$(store_sql "SELECT count(*) FROM releases WHERE reason LIKE '%CANARY_SECRET is ***%'")" -ge 1 ]
}

@test "three machines on two agents: spread, a rolling update, a failing one rolls back only its machine" {
	agents_up 2
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web LEVEL=one >/dev/null
	deploy web --count 3 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 3
	# spread over both hosts: 2 and 1
	[ "$(machines_json web | jq -r '[.[].host_id] | group_by(.) | map(length) | sort | join(",")')" = 1,2 ]
	[ "$(machines_json web | jq -r '[.[].host] | unique | join(",")')" = h1,h2 ]
	old=$(started_pids web)
	# a rolling secrets set: every machine gets a new process with the new value
	run_logged cli secrets set -a web LEVEL=two
	[ "$status" -eq 0 ]
	wait_until 20 count_started web 3
	new=$(started_pids web)
	[ "$(awk '{print $1}' <<<"$new")" = "$(awk '{print $1}' <<<"$old")" ]
	while read -r id pid; do
		oldpid=$(awk -v id="$id" '$1 == id { print $2 }' <<<"$old")
		[ "$pid" != "$oldpid" ]
		[ "$(env_of "$pid" LEVEL)" = two ]
	done <<<"$new"
	v=$(latest_release web)
	[ "$(release_status web "$v")" = succeeded ]
	# a failing one: the first machine it touches crashes; that one goes back, the others are untouched
	run_logged cli secrets set -a web CRASH=1
	[ "$status" -ne 0 ]
	touched=$(grep -oE 'machine [0-9a-f]{24,32} exited with status 1' <<<"$output" | awk '{print $2}')
	[ -n "$touched" ]
	wait_until 30 count_started web 3
	after=$(started_pids web)
	while read -r id pid; do
		before_pid=$(awk -v id="$id" '$1 == id { print $2 }' <<<"$new")
		if [ "$id" = "$touched" ]; then
			[ "$pid" != "$before_pid" ]
		else
			[ "$pid" = "$before_pid" ]
		fi
		[ "$(env_of "$pid" LEVEL)" = two ]
		run ! env_of "$pid" CRASH
		[ "$(env_of "$pid" COFFER_RELEASE_VERSION)" = "$v" ]
	done <<<"$after"
	[ "$(release_status web $((v + 1)))" = failed ]
	[ "$(api_get /v1/apps/web/status | jq -r .current_release)" = "$v" ]
	[ "$(machines_json web | jq -r '[.[].desired_release] | unique | join(",")')" = "$v" ]
}

@test "one release at a time: a change while a release runs is a conflict naming it" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web LEVEL=one >/dev/null
	deploy web -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started web 1
	# a long grace window keeps the next release running
	run_logged cli deploy -a web --grace 8s --detach --env SLOW=1 -- "$APP"
	[ "$status" -eq 0 ]
	v=$(latest_release web)
	wait_until 10 release_is web "$v" running
	head=$(api_get /v1/apps/web/status | jq -r .secrets_head)
	before=$(digests web)
	run_logged cli secrets set -a web LEVEL=two
	[ "$status" -eq 6 ]
	[[ "$output" == *"app 'web' has release v$v in progress"* ]]
	run_logged cli secrets set -a web --stage LEVEL=three
	[ "$status" -eq 6 ]
	[[ "$output" == *"release v$v in progress"* ]]
	run_logged cli secrets deploy -a web
	[ "$status" -eq 6 ]
	deploy web -- "$APP"
	[ "$status" -eq 6 ]
	[[ "$output" == *"release v$v in progress"* ]]
	# nothing moved: no new release, the same head, the same secrets
	[ "$(latest_release web)" = "$v" ]
	[ "$(api_get /v1/apps/web/status | jq -r .secrets_head)" = "$head" ]
	[ "$(digests web)" = "$before" ]
	wait_until 60 release_done web "$v"
	[ "$(release_status web "$v")" = succeeded ]
	# an app with a release: staged secrets get the 'secrets deploy' hint
	api_get /v1/apps/web/status | jq -e '.current_release > 0' >/dev/null
	run_logged "$COFFER" secrets set -a web --stage STAGED_ONLY=x
	[ "$status" -eq 0 ]
	run_logged "$COFFER" secrets list -a web
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "1 staged secret is not on the app's machines yet: deploy with 'coffer secrets deploy -a web'" ]
}

@test "--detach returns at once with the release version; status shows it in progress" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	deploy web -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started web 1
	start=$(date +%s%N)
	run_logged cli deploy -a web --grace 5s --detach --env NEXT=1 -- "$APP"
	took=$((($(date +%s%N) - start) / 1000000))
	[ "$status" -eq 0 ]
	[ "$took" -lt 3000 ]
	v=$(latest_release web)
	[ "$(version_in "$output")" = "$v" ]
	run_logged cli status -a web --json
	[ "$status" -eq 0 ]
	[ "$(jq -r .release_in_progress <<<"$output")" = "$v" ]
	run_logged cli status -a web
	[ "$status" -eq 0 ]
	[[ "$output" == *"v$v"* ]]
	# same for a detached secrets set, once this one is done
	wait_until 60 release_done web "$v"
	run_logged cli secrets set -a web --detach X=1
	[ "$status" -eq 0 ]
	[ "$(latest_release web)" = $((v + 1)) ]
	[ "$(api_get /v1/apps/web/status | jq -r .release_in_progress)" = $((v + 1)) ]
	wait_until 60 release_done web $((v + 1))
	[ "$(api_get /v1/apps/web/status | jq -r .release_in_progress)" = null ]
}

@test "an app without machines: secrets set stages, secrets deploy says there is nothing to deploy to" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	run_logged cli secrets set -a web ONE=1
	[ "$status" -eq 0 ]
	[[ "$output" == *"staged for the first deployment"* ]]
	run_logged cli secrets deploy -a web
	[ "$status" -eq 6 ]
	[[ "$output" == *"app 'web' has no machines to deploy to"* ]]
	[ "$(latest_release web)" = 0 ]
	[ "$(machines_json web | jq length)" = 0 ]
}

@test "machines destroy: the process ends and the machine is gone from the list" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	deploy web --count 2 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started web 2
	read -r id pid < <(started_pids web | head -n 1)
	read -r other otherpid < <(started_pids web | tail -n 1)
	run_logged cli machines destroy -a web "$id" --yes
	[ "$status" -eq 0 ]
	wait_until 20 gone "$pid"
	[ "$(machines_json web | jq -r '[.[].id] | join(",")')" = "$other" ]
	[ "$(api_get '/v1/apps/web/machines?all=1' | jq -r --arg id "$id" '.machines[] | select(.id == $id) | .state')" = destroyed ]
	kill -0 "$otherpid"
	# status says the count is now one short, and what makes it whole
	run_logged "$COFFER" status -a web
	[ "$status" -eq 0 ]
	[[ "$output" == *"Count       2 (1 machine now: the next deploy or scale brings it back to 2)"* ]]
	# destroying it again, or an unknown one
	run_logged cli machines destroy -a web 0123456789abcdef01234567 --yes
	[ "$status" -eq 5 ]
}

@test "scale: count 2, then 3, then 1" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web S=1 >/dev/null
	deploy web --count 2 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started web 2
	two=$(started_pids web)
	run_logged cli scale count 3 -a web
	[ "$status" -eq 0 ]
	wait_until 30 count_started web 3
	three=$(started_pids web)
	# the two stay as they were (a scale keeps the spec), a third is added
	while read -r id pid; do
		grep -qx "$id $pid" <<<"$three"
	done <<<"$two"
	v=$(latest_release web)
	[ "$(api_get /v1/apps/web/status | jq -r .config.count)" = 3 ]
	while read -r id pid; do
		[ "$(env_of "$pid" S)" = 1 ]
	done <<<"$three"
	run_logged cli scale count 1 -a web
	[ "$status" -eq 0 ]
	wait_until 30 count_started web 1
	left=$(started_pids web)
	grep -qx "$left" <<<"$three"
	# the processes of the two destroyed ones ended
	while read -r id pid; do
		[ "$id $pid" = "$left" ] && continue
		wait_until 20 gone "$pid"
	done <<<"$three"
	[ "$(api_get /v1/apps/web/status | jq -r .config.count)" = 1 ]
	[ "$(latest_release web)" = $((v + 1)) ]
	[ "$(release_status web $((v + 1)))" = succeeded ]
}

@test "coffer deploy in a project folder takes the app, command, count and grace of its coffer.toml; a flag wins" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	mkdir -p "$T/proj/src"
	printf 'app = "web"\n\n[deploy]\ncommand = ["%s"]\ncount = 2\ngrace = "2s"\n' "$APP" >"$T/proj/coffer.toml"
	chmod 0644 "$T/proj/coffer.toml" # whatever the umask: coffer refuses a file others may write
	cd "$T/proj/src"
	unset COFFER_APP
	run_logged cli deploy
	[ "$status" -eq 0 ]
	[[ "$output" == *"coffer: the command of [deploy] in $T/proj/coffer.toml"* ]]
	wait_until 30 count_started web 2
	[ "$(api_get /v1/apps/web/status | jq -c '.config | [.cmd, .count, .grace_ms]')" = "[[\"$APP\"],2,2000]" ]
	run_logged cli deploy --count 1
	[ "$status" -eq 0 ]
	[ "$(api_get /v1/apps/web/status | jq -c '.config | [.cmd, .count, .grace_ms]')" = "[[\"$APP\"],1,2000]" ]
	# without a command anywhere: a usage error that says where one goes
	printf 'app = "web"\n' >"$T/proj/coffer.toml"
	chmod 0644 "$T/proj/coffer.toml" # whatever the umask: coffer refuses a file others may write
	run_logged cli deploy
	[ "$status" -eq 2 ]
	[[ "$output" == *"expected a COMMAND to run, after '--' (or command in the [deploy] of $T/proj/coffer.toml)"* ]]
}

@test "an api SIGKILLed during a release's grace window resumes it after a restart" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	"$COFFER" secrets set -a web LEVEL=one >/dev/null
	deploy web --count 2 -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 40 count_started web 2
	old=$(started_pids web)
	run_logged cli deploy -a web --grace 4s --detach --env NEXT=2 -- "$APP"
	[ "$status" -eq 0 ]
	v=$(latest_release web)
	# the first machine is in its grace window
	wait_until 30 watching web "$v"
	addr=${API_URL#https://}
	kill -KILL "$API_PID"
	wait "$API_PID" 2>/dev/null || true
	api_start "$addr"
	[ "$API_URL" = "https://$addr" ]
	wait_until 90 release_done web "$v"
	st=$(release_status web "$v")
	[ "$st" = succeeded ] || [ "$st" = failed ]
	releases_settled web
	[ "$(store_sql "SELECT count(*) FROM releases WHERE status IN ('pending', 'running')")" = 0 ]
	# machines consistent with the outcome: two, started, running what they should
	wait_until 30 count_started web 2
	want=$v
	[ "$st" = failed ] && want=$((v - 1))
	[ "$(machines_json web | jq -r '[.[].desired_release] | unique | join(",")')" = "$want" ]
	wait_until 30 running_release_is web "$want"
	while read -r id pid; do
		[ "$(env_of "$pid" COFFER_RELEASE_VERSION)" = "$want" ]
		if [ "$st" = succeeded ]; then [ "$(env_of "$pid" NEXT)" = 2 ]; fi
	done < <(started_pids web)
	[ "$(api_get /v1/apps/web/status | jq -r .current_release)" = "$want" ]
	grep -q 'api_started' "$T/api.log"
}

@test "a machine that exits after its grace window is restarted by the agent; no release fails" {
	agents_up 1
	"$COFFER" apps create web >/dev/null
	deploy web --env "EXIT_ONCE=$SHARED/exited" --env EXIT_AFTER=5 -- "$APP"
	[ "$status" -eq 0 ]
	v=$(latest_release web)
	[ "$(release_status web "$v")" = succeeded ]
	read -r id pid < <(started_pids web)
	[ -e "$SHARED/exited" ]
	# it exits 3 about 5 s after its start; the agent starts it again
	wait_until 40 pid_changed web "$id" "$pid"
	run ! kill -0 "$pid" 2>/dev/null
	read -r id2 pid2 < <(started_pids web)
	[ "$id2" = "$id" ]
	[ "$(env_of "$pid2" COFFER_RELEASE_VERSION)" = "$v" ]
	sleep 3 # the restarted one stays up
	kill -0 "$pid2"
	[ "$(latest_release web)" = "$v" ]
	[ "$(release_status web "$v")" = succeeded ]
	[ "$(api_get /v1/apps/web/releases | jq '[.releases[] | select(.status == "failed")] | length')" = 0 ]
}
