#!/usr/bin/env bats
# Secrets as files (issue 15, part 1; docs/RUNPATH.md "Secrets as files"):
# `deploy --file PATH=SECRET[:MODE]` and [deploy] files in coffer.toml. The
# machine (tests/integration/apps/files.sh) reads its files from inside its
# own mount namespace and prints their mode, owner, file system and
# SHA-256; the host side shows the per-machine tmpfs under the agent's
# state folder while the machine runs and nothing once it has stopped. Bad
# specs are refused with a message naming the problem and nothing stored.
# The values are the canary's: the scan (teardown) finds them in no log,
# output or store file, nor left on the agent's state folder.

load helpers

bats_require_minimum_version 1.5.0

setup_file() {
	platform_start
	agents_up 1
	export HOST_IDS AGENT_PID
}

teardown_file() {
	local m
	# an agent a test started again (its pid in a file: the test's shell is gone)
	[ ! -e "$T/agent-h1.restarted" ] || stop_pids $(cat "$T/agent-h1.restarted")
	run_stop
	# a machine a failed test left running keeps its tmpfs (the agent leaves it for adoption)
	for m in $(findmnt -rn -o TARGET | grep -F "$T/" || true); do
		umount -l "$m" || true
	done
	platform_stop
}

setup() {
	unset COFFER_APP
	APP="$APPS_DIR/files.sh"
	# the machines see their files under this folder (each in its own namespace)
	DIR="$T/run/secrets"
}

teardown() {
	canary_scan
}

# out_of ID: the out.log of machine ID on h1
out_of() {
	cat "$T/agents/h1/machines/$1/logs/out.log"
}

# printed ID: the machine has printed all it prints
printed() {
	out_of "$1" | grep -q '^files done$'
}

sha() {
	printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

# mounted_on_host ID: the machine's tmpfs, as the host sees it
mounted_on_host() {
	[ "$(findmnt -n -o FSTYPE "$T/agents/h1/machines/$1/secrets")" = tmpfs ]
}

not_mounted_on_host() {
	if findmnt -n "$T/agents/h1/machines/$1/secrets" >/dev/null; then return 1; fi
	[ ! -e "$T/agents/h1/machines/$1/secrets" ]
}

@test "a machine reads its secret files: value, mode, owner, tmpfs; not in its environment; gone when it stops" {
	local cert key id pid user before
	cert=$(printf -- '-----BEGIN CERT-----\n%s\nline two\n-----END CERT-----' "$CANARY")
	key="k-$CANARY"
	"$COFFER" apps create files1 >/dev/null
	"$COFFER" secrets set -a files1 "TLS_CERT=$cert" "TLS_KEY=$key" PLAIN=visible >/dev/null
	deploy files1 --env "FILES=$DIR/tls.pem $DIR/tls.key" \
		--file "$DIR/tls.pem=TLS_CERT" --file "$DIR/tls.key=TLS_KEY:0440" -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started files1 1
	read -r id pid < <(started_pids files1)
	wait_until 20 printed "$id"
	user=$(id -un nobody)
	out=$(out_of "$id")
	grep -qxF "file $DIR/tls.pem stat 400 $user $(id -gn nobody)" <<<"$out"
	grep -qxF "file $DIR/tls.key stat 440 $user $(id -gn nobody)" <<<"$out"
	grep -qxF "file $DIR/tls.pem fstype tmpfs" <<<"$out"
	grep -qxF "file $DIR/tls.pem sha256 $(sha "$cert")" <<<"$out"
	grep -qxF "file $DIR/tls.key sha256 $(sha "$key")" <<<"$out"
	# file only: not in the environment; the secret no file names is there
	run ! env_of "$pid" TLS_CERT
	run ! env_of "$pid" TLS_KEY
	[ "$(env_of "$pid" PLAIN)" = visible ]
	# the host: a tmpfs of the machine, 0700, its user's; the target folder holds nothing
	mounted_on_host "$id"
	[ "$(stat -c '%a %U' "$T/agents/h1/machines/$id/secrets")" = "700 $user" ]
	[ -z "$(ls -A "$DIR")" ]
	# the config the deployer signed carries the files
	run_logged cli releases -a files1 --json
	jq -e '.[0].config | .files == [{"mode":"0400","path":"'"$DIR"'/tls.pem","secret":"TLS_CERT"},{"mode":"0440","path":"'"$DIR"'/tls.key","secret":"TLS_KEY"}]' <<<"$output"
	# a secret the running release delivers as a file cannot be unset: nothing stored
	before=$("$COFFER" secrets list -a files1 --json)
	run_logged cli secrets unset -a files1 TLS_CERT
	[ "$status" -eq 1 ]
	[[ "$output" == *"secret 'TLS_CERT' is the file '$DIR/tls.pem' of the current release of app 'files1': deploy without that file before unsetting it"* ]]
	[ "$("$COFFER" secrets list -a files1 --json)" = "$before" ]
	# stopped (scale 0): the tmpfs is unmounted and its folder gone
	run_logged cli scale count 0 -a files1
	[ "$status" -eq 0 ]
	wait_until 20 gone "$pid"
	wait_until 20 not_mounted_on_host "$id"
}

@test "a release without the file drops it; coffer.toml's [deploy] files" {
	local id pid id2 pid2 proj
	"$COFFER" apps create files2 >/dev/null
	"$COFFER" secrets set -a files2 "TOKEN=$CANARY" >/dev/null
	# from the project file
	proj=$(mktemp -d "$T/proj.XXXXXX")
	cat >"$proj/coffer.toml" <<TOML
app = "files2"
[deploy]
command = ["$APP"]
grace = "2s"
files = ["$DIR/token=TOKEN:0600"]
TOML
	chmod 600 "$proj/coffer.toml"
	run_logged bash -c "cd '$proj' && timeout 150 '$COFFER' deploy --env 'FILES=$DIR/token'"
	[ "$status" -eq 0 ]
	wait_until 30 count_started files2 1
	read -r id pid < <(started_pids files2)
	wait_until 20 printed "$id"
	grep -qxF "file $DIR/token stat 600 $(id -un nobody) $(id -gn nobody)" <<<"$(out_of "$id")"
	grep -qxF "file $DIR/token sha256 $(sha "$CANARY")" <<<"$(out_of "$id")"
	run ! env_of "$pid" TOKEN
	mounted_on_host "$id"
	# a deploy with no --file (and no project file) has no files: the secret is back in the environment
	deploy files2 --env "FILES=$DIR/token" -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 gone "$pid"
	wait_until 30 count_started files2 1
	read -r id2 pid2 < <(started_pids files2)
	wait_until 20 printed "$id2"
	grep -qxF "file $DIR/token missing" <<<"$(out_of "$id2")"
	[ "$(env_of "$pid2" TOKEN)" = "$CANARY" ]
	wait_until 20 not_mounted_on_host "$id"
	run_logged cli scale count 0 -a files2
	[ "$status" -eq 0 ]
}

# refused SUBSTRING ARGS...: deploy of files3 with ARGS fails, naming SUBSTRING, and makes no release
refused() {
	local want=$1 before
	shift
	before=$(latest_release files3)
	deploy files3 "$@" -- "$APP"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$want"* ]] || { echo "expected '$want' in: $output" >&2; return 1; }
	[ "$(latest_release files3)" = "$before" ]
}

@test "bad --file specs: precise messages, nothing stored" {
	local many=() i
	"$COFFER" apps create files3 >/dev/null
	"$COFFER" secrets set -a files3 "CERT=$CANARY" >/dev/null
	refused "expected PATH=SECRET[:MODE]" --file "$DIR/x"
	refused "expected PATH=SECRET[:MODE]" --file "$DIR/x="
	refused "file 'run/x' must be an absolute path" --file "run/x=CERT"
	refused "file '$DIR/../x' has a \".\" or \"..\" component" --file "$DIR/../x=CERT"
	refused "file '/x' must be in a folder other than \"/\"" --file "/x=CERT"
	refused "may hold only letters" --file "$DIR/a b=CERT"
	refused "file '$DIR/x' is given twice" --file "$DIR/x=CERT" --file "$DIR/x=CERT:0440"
	refused "file '$DIR/sub/y' is in a folder inside the folder of file '$DIR/x'" \
		--file "$DIR/x=CERT" --file "$DIR/sub/y=CERT"
	refused "file '$DIR/x': mode must be octal" --file "$DIR/x=CERT:0644"
	refused "file '$DIR/x': mode must be octal" --file "$DIR/x=CERT:0200"
	refused "file '$DIR/x': mode must be octal" --file "$DIR/x=CERT:rw"
	refused "file '$DIR/x': the secret name must match" --file "$DIR/x=COFFER_X"
	refused "file '$DIR/x': app 'files3' has no secret 'NOPE' to deploy" --file "$DIR/x=NOPE"
	# at most 16 files: 16 pass the checks (and run), 17 do not
	for i in $(seq 17); do many+=(--file "$DIR/f$i=CERT"); done
	refused "files must be an array of at most 16 files" "${many[@]}"
	[ "$(latest_release files3)" = 0 ]
	deploy files3 "${many[@]:0:32}" -- "$APP"
	[ "$status" -eq 0 ]
	[ "$(latest_release files3)" = 1 ]
	run_logged cli scale count 0 -a files3
	[ "$status" -eq 0 ]
	# the api checks as the CLI does: a config sent by hand is refused the same way
	run curl -sS -o "$T/bad.json" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
		-H 'Content-Type: application/json' -X POST "$API_URL/v1/apps/files3/releases" \
		--data '{"cmd":["sh"],"files":[{"path":"/etc/../x","secret":"CERT"}]}'
	[ "$output" = 400 ]
	grep -qF "has a \\\".\\\" or \\\"..\\\" component" "$T/bad.json"
	[ "$(latest_release files3)" = 2 ]
}

@test "an agent killed and started again adopts a machine with files: they stay while it runs, go when it stops" {
	local id pid
	"$COFFER" apps create files4 >/dev/null
	"$COFFER" secrets set -a files4 "KEY=$CANARY" >/dev/null
	deploy files4 --env "FILES=$DIR/key" --file "$DIR/key=KEY" -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started files4 1
	read -r id pid < <(started_pids files4)
	wait_until 20 printed "$id"
	mounted_on_host "$id"
	# SIGKILL: the machine and its tmpfs outlive the agent; the next agent adopts it
	kill -KILL "$AGENT_PID"
	wait "$AGENT_PID" 2>/dev/null || true
	AGENT_PIDS=
	kill -0 "$pid"
	mounted_on_host "$id"
	agent_start h1
	echo "$AGENT_PID" >"$T/agent-h1.restarted"
	wait_until 30 grep -q "machine.adopted.*$id" "$T/agent-h1.log"
	mounted_on_host "$id"
	[ "$(started_pids files4)" = "$id $pid" ]
	# the adopted machine stops: its files are swept by the agent that did not mount them
	run_logged cli scale count 0 -a files4
	[ "$status" -eq 0 ]
	wait_until 20 gone "$pid"
	wait_until 20 not_mounted_on_host "$id"
}
