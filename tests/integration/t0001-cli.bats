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
