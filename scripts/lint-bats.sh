#!/usr/bin/env bash
# Refuses a command negated with `!` in the bats tests and their helpers:
# bats runs a test body under `set -e`, which ignores a negated command (at
# the start of a line or after ; && || then do else), so it fails its test
# only when it is the test's last command. Write `run ! cmd`, or
# `run cmd` followed by a check of "$status".
#   scripts/lint-bats.sh FILE...   exit 0 when no file has such a line
set -uo pipefail
[ $# -gt 0 ] || { echo "usage: $0 FILE..." >&2; exit 2; }
for f in "$@"; do
	[ -r "$f" ] || { echo "lint-bats: cannot read $f" >&2; exit 2; }
done
# a command negated at the start of a line or after ; && || then do else
bad=$(grep -nHE '(^|;|&&|\|\||\<then|\<do|\<else)[[:space:]]*!([[:space:]]|$)' "$@")
if [ -n "$bad" ]; then
	printf '%s\n' "$bad"
	echo "lint-bats: a command negated with '!' never fails a bats test unless it is the last; use 'run !' or 'run' and a status check" >&2
	exit 1
fi
echo "lint-bats: $# files, no negated command"
