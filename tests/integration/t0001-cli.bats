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
