#!/usr/bin/env bats
# The command table: help, version, unknown commands and exit codes.

@test "help lists the commands and the exit codes" {
	run "$COFFER" help
	[ "$status" -eq 0 ]
	[[ "$output" == *"dev "* ]]
	[[ "$output" == *"exit codes:"* ]]
	[[ "$output" == *"2  usage error"* ]]
	[[ "$output" == *"5  not found"* ]]
}

@test "version prints the version" {
	run "$COFFER" version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^coffer\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "an unknown command is a usage error (exit 2) naming it" {
	run "$COFFER" frobnicate
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown command 'frobnicate'"* ]]
}

@test "help for one command shows its usage; extra arguments are a usage error" {
	run "$COFFER" help version
	[ "$status" -eq 0 ]
	[[ "$output" == "usage: coffer version"* ]]
	run "$COFFER" version extra
	[ "$status" -eq 2 ]
}

@test "the binary is hardened: PIE, full RELRO, stack protector, fortified" {
	command -v readelf >/dev/null || skip "readelf is not installed"
	run readelf -h "$COFFER"
	[[ "$output" == *"DYN (Position-Independent Executable file)"* ]]
	run readelf -d "$COFFER"
	[[ "$output" == *"BIND_NOW"* ]]
	[[ "$output" == *"PIE"* ]]
	run readelf -l "$COFFER"
	[[ "$output" == *"GNU_RELRO"* ]]
	run readelf -W --dyn-syms "$COFFER"
	[[ "$output" == *"__stack_chk_fail"* ]]
	# _FORTIFY_SOURCE (left to the sanitizers in their build)
	[[ "$output" == *"__asan_init"* ]] || [[ "$output" == *"_chk@"* ]]
}

@test "every command and subcommand answers --help with its usage, declared once in its table row" {
	for cmd in "apps create" "apps list" "apps destroy" "audit" "deploy" "hosts list" "machines list" \
		"machines destroy" "releases" "scale count" "secrets set" "secrets unset" "secrets import" \
		"secrets list" "secrets deploy" "status" "tokens create" "tokens list" "tokens revoke"; do
		# shellcheck disable=SC2086
		run "$COFFER" $cmd --help
		[ "$status" -eq 0 ]
		[[ "$output" == "usage: coffer $cmd"* ]]
		[[ "$output" == *"-h, --help"* ]]
		# `coffer help NOUN` shows the same line among its subcommands'
		run "$COFFER" help "${cmd%% *}"
		[ "$status" -eq 0 ]
		line=$("$COFFER" $cmd --help | head -n 1)
		[[ "$output" == *"${line#usage: coffer }"* ]]
	done
}

@test "a usage error names the problem and shows the command's usage; aliases run the same row" {
	run "$COFFER" apps create
	[ "$status" -eq 2 ]
	[[ "$output" == *"expected one NAME"* ]]
	[[ "$output" == *"usage: coffer apps create NAME"* ]]
	run "$COFFER" machines rm --help
	[ "$status" -eq 0 ]
	[[ "$output" == "usage: coffer machines destroy"* ]]
	run "$COFFER" secrets
	[ "$status" -eq 2 ]
	[[ "$output" == *"'secrets' needs a command"* ]]
	run "$COFFER" secrets frob
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown command 'secrets frob'"* ]]
}

@test "the flags of a row add their options: --json where it prints JSON, --yes where it destroys" {
	run "$COFFER" apps create web --json
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown option '--json'"* ]]
	run "$COFFER" apps list --yes
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown option '--yes'"* ]]
	run "$COFFER" apps destroy --help
	[[ "$output" == *"-y, --yes"* ]]
	run "$COFFER" status --help
	[[ "$output" == *"--json"* ]]
	[[ "$output" == *"-a, --app APP"* ]]
}

@test "a destructive command without a terminal and without --yes is refused before anything else" {
	# no API is configured: the refusal comes first, and names --yes
	run env -u COFFER_API_URL COFFER_CONFIG=/nonexistent "$COFFER" machines destroy m1 -a web </dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"'machines destroy' is destructive: refusing without a terminal: pass --yes"* ]]
	run env -u COFFER_API_URL COFFER_CONFIG=/nonexistent "$COFFER" apps destroy web </dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"'apps destroy' is destructive: refusing without a terminal: pass --yes"* ]]
	# with --yes it goes on (to the missing API URL)
	run env -u COFFER_API_URL COFFER_CONFIG=/nonexistent "$COFFER" machines destroy m1 -a web --yes </dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"no API URL"* ]]
}

@test "the roles parse with the same parser: an unknown option is named without its value" {
	run "$COFFER" api --bogus=s3cr3t
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown option '--bogus'; see 'coffer help api'"* ]]
	[[ "$output" != *s3cr3t* ]]
	run "$COFFER" keeper init --state-dir
	[ "$status" -eq 2 ]
	[[ "$output" == *"option '--state-dir' needs a value"* ]]
	run "$COFFER" agent extra
	[ "$status" -eq 2 ]
	[[ "$output" == *"unexpected argument 'extra'; see 'coffer help agent'"* ]]
	run "$COFFER" dev --agents=x
	[ "$status" -eq 2 ]
	run "$COFFER" dev --help
	[ "$status" -eq 0 ]
	[[ "$output" == "usage: coffer dev "* ]]
}

@test "a mistyped command, subcommand or option gets a 'did you mean' (exit 2); a far one does not" {
	run "$COFFER" secret list
	[ "$status" -eq 2 ]
	[ "$output" = "coffer: error: unknown command 'secret'; did you mean 'secrets'?" ]
	run "$COFFER" secrets lsit
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "coffer: error: unknown command 'secrets lsit'; did you mean 'secrets list'?" ]
	run "$COFFER" secrets list --jsno -a web
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "coffer: error: unknown option '--jsno'; did you mean '--json'?" ]
	run "$COFFER" secrets set --stage=1 --stgae A=1 -a web
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "coffer: error: option '--stage' takes no value" ]
	run "$COFFER" secrets set --stgae A=1 -a web
	[ "${lines[0]}" = "coffer: error: unknown option '--stgae'; did you mean '--stage'?" ]
	run "$COFFER" frobnicate
	[ "$status" -eq 2 ]
	[ "$output" = "coffer: error: unknown command 'frobnicate'; see 'coffer help'" ]
	run "$COFFER" secrets zzzzzz
	[ "${lines[0]}" = "coffer: error: unknown command 'secrets zzzzzz'" ]
	# an option's value after '=' is never shown back, near or not
	run "$COFFER" secrets list --jsn=s3cr3t-value -a web
	[ "$status" -eq 2 ]
	[[ "$output" != *"s3cr3t-value"* ]]
	[ "${lines[0]}" = "coffer: error: unknown option '--jsn'; did you mean '--json'?" ]
}

@test "-j is --json wherever --json is taken" {
	run "$COFFER" secrets list --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"  -j, --json"* ]]
	# parsed as --json: with no API, the error is about reaching it, not the option
	COFFER_CONFIG=/nonexistent COFFER_API_URL=https://127.0.0.1:1 COFFER_TOKEN=x run "$COFFER" apps list -j
	[ "$status" -eq 7 ]
	[[ "$output" != *"unknown option"* ]]
	run "$COFFER" apps create -j web
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown option '-j'"* ]]
}
