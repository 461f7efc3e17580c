#!/usr/bin/env bats
# What an operator installs (README "Production"): `make install` of the
# binary the test is given, with the man pages, the bash and zsh completion
# and the systemd units, every file in place with its mode; man pages that
# render without a warning and name only options the binary has (the role
# pages: all of them); completion from the binary's own help; units that
# systemd-analyze verifies, with a bounded exposure, whose command lines
# use only real options and, expanded as systemd does with credentials made
# as systemd makes them, run the roles (the keeper and api as an
# unprivileged user) up to a machine booted with its secret; and
# MemoryDenyWriteExecute= of the keeper and api units holds: every role
# runs under the kernel's W^X refusal.

load helpers

bats_require_minimum_version 1.5.0

# Which commands' options each man page may name.
declare -gA PAGE_CMDS=(
	[coffer.1]="agent api apps audit deploy deployers dev help hosts keeper kms login machines releases scale secrets status tokens tls version"
	[coffer-apps.1]="apps status"
	[coffer-secrets.1]="secrets kms"
	[coffer-deploy.1]="deploy releases scale"
	[coffer-machines.1]="machines hosts"
	[coffer-tokens.1]="tokens"
	[coffer-deployers.1]="deployers login"
	[coffer-audit.1]="audit"
	[coffer-tls.1]="tls"
	[coffer-dev.1]="dev"
	[coffer-keeper.8]="keeper"
	[coffer-api.8]="api"
	[coffer-agent.8]="agent"
)
ROLE_PAGES="coffer-keeper.8 coffer-api.8 coffer-agent.8"
UNITS="coffer-keeper.service coffer-api.service coffer-agent.service"

setup_file() {
	SRC="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
	T_FILE=$(mktemp -d "${TMPDIR:-/tmp}/coffer-install.XXXXXX")
	ROOT="$T_FILE/root"
	export SRC T_FILE ROOT
	# from the build folder the test is given: nothing is built here
	make -s -C "$SRC" install BUILD="$(dirname "$COFFER")" DESTDIR="$ROOT" PREFIX=/usr >"$T_FILE/install.log" 2>&1
}

teardown_file() {
	rm -rf "$T_FILE"
}

setup() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/coffer-install-t.XXXXXX")
	export COFFER_CONFIG="$T/config.json"
	unset COFFER_API_URL COFFER_TOKEN COFFER_APP
}

teardown() {
	[ -n "${DEV_PID:-}" ] && kill -INT "$DEV_PID" 2>/dev/null && wait "$DEV_PID" 2>/dev/null
	# the agent first (with --keep-machines its machine stays: stopped after it)
	stop_pids ${AGENT_PID:-}
	stop_pids ${MACHINE_PID:-} ${API_PID:-} ${KEEPER_PID:-}
	canary_scan
	rm -rf "$T"
}

# flags_in: the options (-x, --name) a text on stdin names.
flags_in() {
	grep -oE -- '(^|[^a-zA-Z0-9_-])--?[a-zA-Z][a-zA-Z-]*' | grep -oE -- '--?[a-zA-Z][a-zA-Z-]*' | sort -u
}

# page_flags PAGE: the options an installed man page names (in its source).
page_flags() {
	local f
	f=$(ls "$ROOT"/usr/share/man/man?/"$1")
	sed -e 's/\\f[BIPR]//g' -e 's/\\-/-/g' "$f" | flags_in
}

# subs_of CMD: the subcommands the usage line of CMD shows.
subs_of() {
	"$COFFER" help "$1" | sed -n '1s/^usage: coffer //p' | sed 's/ | /\n/g' |
		awk -v c="$1" '$1 == c && $2 ~ /^[a-z][a-z-]*$/ { print $2 }' | sort -u
}

# help_flags CMD: every option `coffer help CMD` and the --help of CMD and
# of its subcommands show (a refused --help prints nothing on stdout).
help_flags() {
	local cmd=$1 sub
	if [ ! -f "$T_FILE/flags/$cmd" ]; then
		mkdir -p "$T_FILE/flags"
		{
			"$COFFER" help "$cmd"
			"$COFFER" "$cmd" --help 2>/dev/null || true
			for sub in $(subs_of "$cmd"); do
				"$COFFER" "$cmd" "$sub" --help 2>/dev/null || true
			done
		} | flags_in >"$T_FILE/flags/$cmd.tmp"
		mv "$T_FILE/flags/$cmd.tmp" "$T_FILE/flags/$cmd"
	fi
	cat "$T_FILE/flags/$cmd"
}

@test "make install puts every file in place with its mode, and uninstall removes them" {
	[ -x "$ROOT/usr/bin/coffer" ]
	[ "$(stat -c %a "$ROOT/usr/bin/coffer")" = 755 ]
	cmp "$ROOT/usr/bin/coffer" "$COFFER"
	for page in "${!PAGE_CMDS[@]}"; do
		f="$ROOT/usr/share/man/man${page##*.}/$page"
		[ -f "$f" ] || { echo "missing $f"; false; }
		[ "$(stat -c %a "$f")" = 644 ]
	done
	[ "$(ls "$SRC"/man | wc -l)" -eq "${#PAGE_CMDS[@]}" ]
	for f in usr/share/bash-completion/completions/coffer usr/share/zsh/site-functions/_coffer \
		usr/lib/systemd/system/coffer-keeper.service usr/lib/systemd/system/coffer-api.service \
		usr/lib/systemd/system/coffer-agent.service; do
		[ -f "$ROOT/$f" ] || { echo "missing $f"; false; }
		[ "$(stat -c %a "$ROOT/$f")" = 644 ]
	done
	# the units run the installed binary
	for u in $UNITS; do
		grep -q '^ExecStart=/usr/bin/coffer ' "$ROOT/usr/lib/systemd/system/$u"
		run grep -c /usr/local "$ROOT/usr/lib/systemd/system/$u"
		[ "$output" = 0 ]
	done
	cp -a "$ROOT" "$T/root"
	make -s -C "$SRC" uninstall DESTDIR="$T/root" PREFIX=/usr
	run find "$T/root" -type f
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "make install refuses without a built binary, naming it" {
	run make -s -C "$SRC" install BUILD="$T/nobuild" DESTDIR="$T/root" PREFIX=/usr
	[ "$status" -ne 0 ]
	[[ "$output" == *"no $T/nobuild/coffer: run 'make build' first"* ]]
	[ ! -e "$T/root" ]
}

@test "every man page renders without a warning" {
	for page in "${!PAGE_CMDS[@]}"; do
		f=$(ls "$ROOT"/usr/share/man/man?/"$page")
		run groff -man -Tutf8 -ww -z "$f"
		[ "$status" -eq 0 ]
		[ -z "$output" ] || { echo "$page: $output"; false; }
		run --separate-stderr env LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$f"
		[ "$status" -eq 0 ]
		[ -z "$stderr" ] || { echo "$page: $stderr"; false; }
		[[ "$output" == *NAME* ]]
	done
	# the installed tree is a man path: man finds the pages by name
	run env MANPATH="$ROOT/usr/share/man" man -w coffer-agent
	[ "$status" -eq 0 ]
	[ "$output" = "$ROOT/usr/share/man/man8/coffer-agent.8" ]
}

@test "every option a man page names exists in the help of its commands; a role page names all of its role's" {
	bad=""
	for page in "${!PAGE_CMDS[@]}"; do
		known=$(for c in ${PAGE_CMDS[$page]}; do help_flags "$c"; done
			[ "$page" = coffer.1 ] && printf '%s\n' --version -h --help # main()'s own
			true)
		bad+=$(comm -23 <(page_flags "$page") <(sort -u <<<"$known") | sed "s/^/ $page:/" | tr -d '\n')
	done
	for page in $ROLE_PAGES; do
		bad+=$(comm -13 <(page_flags "$page") <(help_flags "${PAGE_CMDS[$page]}") | sed "s/^/ $page:missing:/" | tr -d '\n')
	done
	[ -z "$bad" ] || { echo "options out of step with the help:$bad"; false; }
}

# complete WORD...: the bash completion of a command line whose last word is
# being completed, from the installed file and binary.
complete_bash() {
	PATH="$ROOT/usr/bin:$PATH" bash -c '
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
		_coffer
		((${#COMPREPLY[@]} == 0)) || printf "%s\n" "${COMPREPLY[@]}"' _ "$ROOT/usr/share/bash-completion/completions/coffer" "$@" | tr '\n' ' '
}

@test "bash completion completes commands, subcommands and options from the binary's help" {
	run complete_bash coffer sec
	[ "$output" = "secrets " ]
	run complete_bash coffer secrets ""
	[ "$output" = "deploy history import keys list set unset verify " ]
	run complete_bash coffer secrets set --
	[[ "$output" == *"--stage "* ]]
	[[ "$output" == *"--detach "* ]]
	[[ "$output" == *"--app "* ]]
	[[ "$output" == *"--access-token "* ]]
	[[ "$output" != *"--json"* ]]
	run complete_bash coffer keeper ""
	[ "$output" = "deployer-token init join-token " ]
	run complete_bash coffer keeper join-token --
	[ "$output" = "--key-file --state-dir --ttl " ]
	run complete_bash coffer help mach
	[ "$output" = "machines " ]
	run complete_bash coffer deploy -a web -- sh ""
	[ -z "$output" ]
	# every command, and every option of every role
	run complete_bash coffer ""
	want=$("$COFFER" help | awk '/^commands:/ { f = 1; next } /^$/ { f = 0 } f { print $1 }' | tr '\n' ' ')
	[ "$output" = "$want" ]
	for role in keeper api agent; do
		output=$(complete_bash coffer "$role" --
			for sub in $(subs_of "$role"); do complete_bash coffer "$role" "$sub" --; done)
		for flag in $(help_flags "$role"); do
			[[ " $output" == *" $flag "* ]] || { echo "$role: $flag not completed"; false; }
		done
	done
}

@test "zsh completion parses and completes from the binary's help" {
	command -v zsh >/dev/null || skip "zsh is not installed (scripts/deps.sh installs it)"
	f="$ROOT/usr/share/zsh/site-functions/_coffer"
	run zsh -n "$f"
	[ "$status" -eq 0 ]
	[ "$(head -n 1 "$f")" = "#compdef coffer" ]
	# the function body, with compadd and _files standing in for zsh's
	run env PATH="$ROOT/usr/bin:$PATH" zsh -f -c '
		compadd() { [[ $1 == -a ]] && print -rl -- ${(P)2}; }
		_files() { print FILES; }
		words=(coffer secrets ""); CURRENT=3; source "$1"
		words=(coffer tls cert --); CURRENT=4; source "$1"
		words=(coffer deploy -- sh); CURRENT=4; source "$1"' _ "$f"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | tr '\n' ' ')" = "deploy history import keys list set unset verify --days --dir --host --name FILES " ]
}

# unit_for_verify UNIT: a copy of the installed unit whose binary is the one
# in DESTDIR (verify needs it to exist), in $T/units.
unit_for_verify() {
	mkdir -p "$T/units"
	sed "s|/usr/bin/coffer|$ROOT/usr/bin/coffer|" "$ROOT/usr/lib/systemd/system/$1" >"$T/units/$1"
}

@test "each systemd unit passes systemd-analyze verify, and its command line uses only real options" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (scripts/deps.sh installs systemd)"
	for u in $UNITS; do
		unit_for_verify "$u"
		# MANPATH: Documentation=man:coffer-ROLE(8) must be an installed page
		run --separate-stderr env MANPATH="$ROOT/usr/share/man" SYSTEMD_LOG_LEVEL=notice \
			systemd-analyze verify "$T/units/$u"
		[ "$status" -eq 0 ] || { echo "$u: $stderr"; false; }
		[ -z "$stderr" ] || { echo "$u: $stderr"; false; }
		role=${u#coffer-}
		role=${role%.service}
		known=$(help_flags "$role")
		used=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$T/units/$u" | flags_in)
		[ -n "$used" ]
		for flag in $used; do
			grep -qxF -- "$flag" <<<"$known" || { echo "$u: ExecStart uses $flag, not an option of '$role'"; false; }
		done
	done
	# the agent's machines outlive it (issue 11): only the agent is signalled
	grep -qx 'KillMode=process' "$T/units/coffer-agent.service"
	grep -q -- '--keep-machines' "$T/units/coffer-agent.service"
}

@test "systemd-analyze security: the keeper's and the api's exposure at most 2.0, the agent's at most 4.5" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (scripts/deps.sh installs systemd)"
	run systemd-analyze security --help
	[[ "$output" == *--offline* ]] || skip "this systemd-analyze has no --offline"
	for u in $UNITS; do
		unit_for_verify "$u"
		run systemd-analyze security --offline=true --no-pager "$T/units/$u"
		[ "$status" -eq 0 ]
		level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$output")
		[ -n "$level" ]
		echo "# $u: exposure $level" >&3
		case $u in
		coffer-agent.service) max=4.5 ;;
		*) max=2.0 ;;
		esac
		awk -v l="$level" -v m="$max" 'BEGIN { exit !(l <= m) }' || { echo "$u: exposure $level > $max"; false; }
	done
}

@test "MemoryDenyWriteExecute fits: every role serves, opens and runs a machine under the kernel's W^X refusal" {
	[ "$(uname -m)" = x86_64 ] || skip "the prctl system call number here is x86_64's"
	# prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN): what MemoryDenyWriteExecute= enforces, inherited by children
	mdwe='syscall(157, 65, 1, 0, 0, 0) == 0 or exit 3; exec @ARGV or exit 4'
	# mmap(NULL, 4096, PROT_READ|PROT_WRITE|PROT_EXEC, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0): refused under it
	run perl -e 'syscall(9, 0, 4096, 7, 0x22, -1, 0) == -1 and exit 1;
		syscall(157, 65, 1, 0, 0, 0) == 0 or exit 3; exit(syscall(9, 0, 4096, 7, 0x22, -1, 0) == -1 ? 0 : 2)'
	[ "$status" -ne 3 ] || skip "this kernel has no PR_SET_MDWE (Linux 6.3)"
	[ "$status" -eq 0 ]
	perl -e "$mdwe" "$COFFER" dev --state-dir "$T/state" --api-addr 127.0.0.1:0 --keeper-addr 127.0.0.1:0 \
		>"$T/dev.out" 2>>"$T/dev.log" &
	DEV_PID=$!
	wait_file "$T/state/env" "$DEV_PID"
	wait_until 30 grep -q COFFER_TOKEN "$T/dev.out"
	run "$COFFER" apps create web
	[ "$status" -eq 0 ]
	run "$COFFER" secrets set -a web "CANARY_SECRET=$CANARY"
	[ "$status" -eq 0 ]
	run "$COFFER" deploy -a web --grace 1s -- sleep 600
	[ "$status" -eq 0 ]
	[[ "$output" == *"Release v1 succeeded"* ]]
	kill -INT "$DEV_PID"
	wait "$DEV_PID"
	DEV_PID=
}

# ---- the units' command lines, run as systemd would ----

# as_service CMD...: execs CMD as the user of a DynamicUser= unit would be
# (nobody here) when the test runs as root, else as this user; in the
# background, its pid is CMD's.
as_service() {
	if [ "$(id -u)" -eq 0 ]; then
		exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	fi
	exec "$@"
}

# unit_argv UNIT ROLE: the installed unit's ExecStart as systemd expands it
# with the variables of this shell ("${X}" one word, "$X" split at blanks),
# one word a line.
unit_argv() {
	local line w
	line=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$ROOT/usr/lib/systemd/system/$1" | sed 's/^ExecStart=//; s/\\$//' | tr '\n' ' ')
	set -f
	for w in $line; do
		if [[ $w =~ ^\$([A-Z_]+)$ ]]; then
			printf '%s\n' ${!BASH_REMATCH[1]}
			continue
		fi
		while [[ $w =~ \$\{([A-Z_]+)\} ]]; do
			w=${w/"${BASH_REMATCH[0]}"/${!BASH_REMATCH[1]}}
		done
		printf '%s\n' "$w"
	done
	set +f
}

# unit_credentials UNIT: $CREDENTIALS_DIRECTORY as systemd makes it for UNIT:
# a copy of each LoadCredential= file (its path under $T), 0400 in a 0500
# folder, owned by the service's user.
unit_credentials() {
	local dir="$T/credentials/$1" id path
	mkdir -p "$dir"
	while IFS=: read -r id path; do
		cp "$T$path" "$dir/$id"
		chmod 0400 "$dir/$id"
	done < <(sed -n 's/^LoadCredential=//p' "$ROOT/usr/lib/systemd/system/$1")
	chmod 0500 "$dir"
	if [ "$(id -u)" -eq 0 ] && grep -qx 'DynamicUser=yes' "$ROOT/usr/lib/systemd/system/$1"; then
		chown -R nobody:nogroup "$dir"
	fi
	CREDENTIALS_DIRECTORY=$dir
}

# role_port LOG EVENT: the port a role logged it listens on.
role_port() {
	sed -n "s/.*event=$2 .* port=\([0-9]*\).*/\1/p" "$1" | head -n 1
}

@test "each unit's command line, with its credentials, runs its role: a machine boots with its secret" {
	command -v setpriv >/dev/null || skip "setpriv is not installed"
	chmod 0711 "$T" # the machine's user passes through to its work folder
	# /etc/coffer as README "Production" lays it out, under $T
	E="$T/etc/coffer"
	"$COFFER" tls ca --dir "$E/ca" >/dev/null
	"$COFFER" tls cert --dir "$E/ca" --name lo --host 127.0.0.1 >/dev/null
	"$COFFER" keeper init --state-dir "$E/keeper" >/dev/null
	install -m 0600 "$E/ca/lo.pem" "$E/keeper/tls.pem"
	install -m 0600 "$E/ca/lo.key" "$E/keeper/tls.key"
	install -m 0600 /dev/null "$E/keeper/pgpass"
	install -d -m 0700 "$E/api" "$E/agent"
	install -m 0600 "$E/keeper/keeper.pub" "$E"/keeper/api.* "$E/keeper/pgpass" "$E/api/"
	install -m 0600 "$E/ca/ca.pem" "$E/api/ca.pem"
	install -m 0600 "$E/ca/lo.pem" "$E/api/tls.pem"
	install -m 0600 "$E/ca/lo.key" "$E/api/tls.key"
	install -m 0600 "$E/ca/ca.pem" "$E/agent/ca.pem"
	mkdir -p "$T/store" "$T/state/keeper" "$T/state/api" "$T/state/agent"
	[ "$(id -u)" -ne 0 ] || chown nobody:nogroup "$T/store" "$T/state/keeper" "$T/state/api"
	STORE_URL="sqlite:$T/store/coffer.db"
	METRICS_LISTEN=127.0.0.1:0

	unit_credentials coffer-keeper.service
	STATE_DIRECTORY="$T/state/keeper" LISTEN=127.0.0.1:0
	mapfile -t argv < <(unit_argv coffer-keeper.service keeper)
	[ "${argv[1]}" = keeper ]
	as_service env PGPASSFILE="$CREDENTIALS_DIRECTORY/pgpass" "$COFFER" "${argv[@]:1}" 2>"$T/keeper.log" &
	KEEPER_PID=$!
	wait_until 30 grep -q event=keeper_started "$T/keeper.log"
	[[ "$(ps -o args= -p "$KEEPER_PID")" == "$COFFER keeper "* ]]
	KEEPER_URL="https://127.0.0.1:$(role_port "$T/keeper.log" keeper_started)"

	unit_credentials coffer-api.service
	STATE_DIRECTORY="$T/state/api"
	mapfile -t argv < <(unit_argv coffer-api.service api)
	as_service env PGPASSFILE="$CREDENTIALS_DIRECTORY/pgpass" "$COFFER" "${argv[@]:1}" 2>"$T/api.log" &
	API_PID=$!
	wait_until 30 grep -q event=api_started "$T/api.log"
	export COFFER_API_URL="https://127.0.0.1:$(role_port "$T/api.log" api_started)" COFFER_CA="$E/ca/ca.pem"
	COFFER_TOKEN=$(as_service "$COFFER" api bootstrap --store "$STORE_URL" \
		--rows-key "$CREDENTIALS_DIRECTORY/api.rows.key" --org acme 2>>"$T/api.log")
	export COFFER_TOKEN
	# the CLI's deployer key, enrolled with a token made from the keeper's state (as a join token is)
	"$COFFER" login --keeper "$KEEPER_URL" --deployer-token \
		"$("$COFFER" keeper deployer-token --state-dir "$E/keeper" --store "$STORE_URL" --org acme)" >/dev/null

	unit_credentials coffer-agent.service
	STATE_DIRECTORY="$T/state/agent" API_ARGS="--api $COFFER_API_URL"
	mapfile -t argv < <(unit_argv coffer-agent.service agent)
	COFFER_JOIN_TOKEN=$("$COFFER" keeper join-token --state-dir "$E/keeper") "$COFFER" "${argv[@]:1}" 2>"$T/agent.log" &
	AGENT_PID=$!
	wait_until 30 grep -q event=agent_registered "$T/agent.log"

	run "$COFFER" apps create web
	[ "$status" -eq 0 ]
	run "$COFFER" secrets set -a web "CANARY_SECRET=$CANARY"
	[ "$status" -eq 0 ]
	run "$COFFER" deploy -a web --grace 1s -- sleep 600
	[ "$status" -eq 0 ]
	[[ "$output" == *"Release v1 succeeded"* ]]
	MACHINE_PID=$("$COFFER" machines list -a web --json | jq -r '.[0].pid')
	[ -n "$MACHINE_PID" ]
	[ "$(tr '\0' '\n' <"/proc/$MACHINE_PID/environ" | grep -c "^CANARY_SECRET=$CANARY\$")" -eq 1 ]
	if [ "$(id -u)" -eq 0 ]; then
		# the keeper and the api run as the unprivileged user, the machine too
		[ "$(ps -o user= -p "$KEEPER_PID")" = nobody ]
		[ "$(ps -o user= -p "$API_PID")" = nobody ]
		[ "$(ps -o user= -p "$MACHINE_PID")" = nobody ]
	fi
}
