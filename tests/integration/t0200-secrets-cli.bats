#!/usr/bin/env bats
# coffer secrets, as a user types it, against real keeper and api processes:
# set (argv, '=' in values, empty values, a name twice, NAME=- from stdin,
# argv blanking), unset, all-or-nothing changes, list (table and --json),
# --stage and deploy, import (.env syntax and its errors), where the app and
# the token come from, and the exit codes of each failure. Every value is
# built on the canary, so platform_stop fails a test whose outputs, logs or
# store hold one in plaintext; the tests also look for them directly.

load helpers

bats_require_minimum_version 1.5.0

# The tests share one platform (each starts with the apps of a new one),
# except the one that stops the api.
OWN_PLATFORM=(
	"the API down exits 7, naming the URL, where it came from, and what to do"
)

setup_file() { platform_start; }
teardown_file() { platform_stop; }

setup() {
	platform_test_start
	# .env documents and other files holding values live outside $T (and
	# outside BATS_TEST_TMPDIR), which the canary scan covers
	REQ=$(mktemp -d "${TMPDIR:-/tmp}/coffer-req.XXXXXX")
}

teardown() {
	if [ -n "${BG_PID:-}" ]; then kill "$BG_PID" 2>/dev/null || true; fi
	rm -rf "$REQ"
	platform_test_stop
}

# The secrets version of APP, as apps list --json shows it.
version_of() {
	"$COFFER" apps list --json | jq -r --arg n "$1" '.[] | select(.name == $n) | .secrets_version'
}

# The digest of APP's secret NAME, as secrets list --json shows it.
digest_of() {
	"$COFFER" secrets list -a "$1" --json | jq -r --arg n "$2" '.[] | select(.name == $n) | .digest'
}

# Everything the CLI shows of APP's secrets, and of its apps.
snapshot() {
	"$COFFER" secrets list -a "$1" --json
	"$COFFER" apps list --json
}

# holds APP NAME VALUE: APP's secret NAME holds exactly VALUE: setting it again
# through standard input changes nothing (the api compares digests).
holds() {
	local out
	out=$(printf '%s' "$3" | "$COFFER" secrets set --raw -a "$1" "$2=-" 2>&1) || { echo "set $2: $out" >&2; return 1; }
	printf '%s\n' "$out" >>"$T/outputs.log"
	[[ "$out" == "Nothing changed"* ]] || { echo "$2 does not hold the expected value: $out" >&2; return 1; }
}

# ---- set ----

@test "set one secret: recorded for the first deployment, listed by name" {
	run_logged "$COFFER" secrets set -a canary "ONE=$CANARY-one"
	[ "$status" -eq 0 ]
	[ "$output" = "Secrets are staged for the first deployment (version 2)" ]
	holds canary ONE "$CANARY-one"
	run_logged "$COFFER" secrets list -a canary
	[ "$status" -eq 0 ]
	[[ "$output" == *ONE* ]]
	[[ "$output" != *"$CANARY"* ]]
}

@test "set several secrets: one change, one new version" {
	[ "$(version_of canary)" = 1 ]
	run_logged "$COFFER" secrets set -a canary "S_A=$CANARY-a" "S_B=$CANARY-b" "S_C=$CANARY-c"
	[ "$status" -eq 0 ]
	[ "$output" = "Secrets are staged for the first deployment (version 2)" ]
	[ "$(version_of canary)" = 2 ]
	[ "$("$COFFER" secrets list -a canary --json | jq -r '[.[].name] | join(",")')" = CANARY_SECRET,S_A,S_B,S_C ]
	holds canary S_A "$CANARY-a"
	holds canary S_B "$CANARY-b"
	holds canary S_C "$CANARY-c"
}

@test "set: a value is split at the first '=' and may hold more" {
	run_logged "$COFFER" secrets set -a canary "DB_URL=$CANARY=a=b"
	[ "$status" -eq 0 ]
	[ "$("$COFFER" secrets list -a canary --json | jq -r '[.[].name] | join(",")')" = CANARY_SECRET,DB_URL ]
	holds canary DB_URL "$CANARY=a=b"
}

@test "set: NAME= sets an empty value" {
	run_logged "$COFFER" secrets set -a canary EMPTY=
	[ "$status" -eq 0 ]
	[[ "$("$COFFER" secrets list -a canary --json | jq -r '.[] | select(.name == "EMPTY") | .digest')" =~ ^[0-9a-f]{32}$ ]]
	holds canary EMPTY ""
	# the same empty value, through stdin under another name: the same keyed digest
	printf '' | "$COFFER" secrets set -a canary EMPTY_TOO=- >/dev/null
	[ "$(digest_of canary EMPTY)" = "$(digest_of canary EMPTY_TOO)" ]
}

@test "set: a name given twice, the last value wins" {
	"$COFFER" secrets set -a canary "TWICE=$CANARY-first" >/dev/null
	first=$(digest_of canary TWICE)
	run_logged "$COFFER" secrets set -a canary "TWICE=$CANARY-first" "TWICE=$CANARY-last"
	[ "$status" -eq 0 ]
	[ "$(version_of canary)" = 3 ]
	last=$(digest_of canary TWICE)
	[ "$first" != "$last" ]
	holds canary TWICE "$CANARY-last"
	[ "$(digest_of canary TWICE)" = "$last" ]
}

@test "set: a later NAME=VALUE wins over NAME=-, and stdin is then not read" {
	run_logged "$COFFER" secrets set -a canary PICK=- "PICK=$CANARY-argv" < <(printf '%s' "$CANARY-stdin")
	[ "$status" -eq 0 ]
	holds canary PICK "$CANARY-argv"
	# and NAME=- after NAME=VALUE: stdin wins
	run_logged "$COFFER" secrets set -a canary "PICK=$CANARY-argv2" PICK=- < <(printf '%s' "$CANARY-stdin")
	[ "$status" -eq 0 ]
	holds canary PICK "$CANARY-stdin"
	run_logged "$COFFER" secrets set -a canary A=- B=- </dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"argument 2: only one NAME=- may read standard input"* ]]
}

@test "set: NAME=- reads the value from stdin, less one final newline unless --raw" {
	run_logged "$COFFER" secrets set -a canary FROM_STDIN=- < <(printf '%s' "$CANARY-stdin")
	[ "$status" -eq 0 ]
	holds canary FROM_STDIN "$CANARY-stdin"
	# the same value on the command line under another name: the same digest
	"$COFFER" secrets set -a canary "FROM_ARGV=$CANARY-stdin" >/dev/null
	[ "$(digest_of canary FROM_STDIN)" = "$(digest_of canary FROM_ARGV)" ]
	# echo's final newline is dropped (one: a second one stays), CRLF too
	run_logged "$COFFER" secrets set -a canary ECHOED=- < <(echo "$CANARY-stdin")
	[ "$status" -eq 0 ]
	[ "$(digest_of canary ECHOED)" = "$(digest_of canary FROM_STDIN)" ]
	run_logged "$COFFER" secrets set -a canary TWO_NL=- < <(printf '%s\n\n' "$CANARY-stdin")
	[ "$status" -eq 0 ]
	holds canary TWO_NL "$CANARY-stdin"$'\n'
	run_logged "$COFFER" secrets set -a canary CRLF=- < <(printf '%s\r\n' "$CANARY-stdin")
	[ "$status" -eq 0 ]
	[ "$(digest_of canary CRLF)" = "$(digest_of canary FROM_STDIN)" ]
	# --raw: byte for byte
	run_logged "$COFFER" secrets set --raw -a canary WITH_NL=- < <(printf '%s\n' "$CANARY-stdin")
	[ "$status" -eq 0 ]
	[ "$(digest_of canary WITH_NL)" != "$(digest_of canary FROM_STDIN)" ]
	holds canary WITH_NL "$CANARY-stdin"$'\n'
}

@test "set: NAME=- takes 64 KiB" {
	run_logged "$COFFER" secrets set -a canary BIG=- < <(head -c 65536 /dev/zero | tr '\0' v)
	[ "$status" -eq 0 ]
	holds canary BIG "$(head -c 65536 /dev/zero | tr '\0' v)"
}

@test "set: NAME=- refuses 64 KiB + 1, naming the secret, and stores nothing" {
	before=$(snapshot canary)
	run_logged "$COFFER" secrets set -a canary "OTHER=$CANARY-o" TOO_BIG=- < <(head -c 65537 /dev/zero | tr '\0' v)
	[ "$status" -eq 1 ]
	[[ "$output" == *"the value of 'TOO_BIG' on standard input is longer than 65536 bytes"* ]]
	[[ "$output" != *vvvvvvvv* ]]
	[ "$(snapshot canary)" = "$before" ]
}

@test "set: a value that is not UTF-8 is sent as bytes and stored" {
	run_logged "$COFFER" secrets set -a canary BINARY=- < <(printf '\377\376%s\200' "$CANARY")
	[ "$status" -eq 0 ]
	holds canary BINARY "$(printf '\377\376%s\200' "$CANARY")"
}

@test "set: a NUL byte on stdin is refused, naming the secret, and nothing is stored" {
	before=$(snapshot canary)
	run_logged "$COFFER" secrets set -a canary WITH_NUL=- < <(printf '%s\0tail' "$CANARY")
	[ "$status" -eq 1 ]
	[[ "$output" == *"the value of 'WITH_NUL' on standard input holds a NUL byte"* ]]
	[ "$(snapshot canary)" = "$before" ]
}

@test "set: NAME=- refuses a terminal on stdin" {
	command -v script >/dev/null || skip "script (util-linux) is not installed: no pty"
	before=$(version_of canary)
	run_logged script -qec "$(printf '%q ' "$COFFER" secrets set -a canary TYPED=-)" /dev/null </dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"argument 1: TYPED=- reads the value from standard input, which is a terminal: pipe the value in"* ]]
	[ "$(version_of canary)" = "$before" ]
}

@test "set: an argument without '=' is a usage error that does not echo it" {
	before=$(snapshot canary)
	run_logged "$COFFER" secrets set -a canary "GOOD=$CANARY-good" "$CANARY-typed-alone"
	[ "$status" -eq 2 ]
	[[ "$output" == *"argument 2: expected NAME=VALUE"* ]]
	[[ "$output" == *"usage: coffer secrets set"* ]]
	[[ "$output" != *"$CANARY"* ]]
	[ "$(snapshot canary)" = "$before" ]
}

@test "set: an unknown option is named without its value" {
	run_logged "$COFFER" secrets set -a canary "--value=$CANARY-opt" "X=$CANARY-x"
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown option '--value'"* ]]
	[[ "$output" != *"$CANARY"* ]]
	run_logged "$COFFER" secrets set -a canary "-v$CANARY-opt" "X=$CANARY-x"
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown option '-v'"* ]]
	[[ "$output" != *"$CANARY"* ]]
}

@test "set: values and the token are blanked from the process's arguments while it runs" {
	mkfifo "$REQ/stdin"
	exec 8<>"$REQ/stdin" # a writer, so that the reader's open does not block
	"$COFFER" secrets set -a canary -t "$ADMIN_TOKEN" "ARGV_SECRET=$CANARY-argv" STDIN_SECRET=- \
		<"$REQ/stdin" >"$T/bg.out" 2>&1 8>&- &
	BG_PID=$!
	# wait until it blocks reading the fifo: every argument has been taken by then
	blocked=
	for i in $(seq 300); do
		[ "$(cat /proc/$BG_PID/wchan 2>/dev/null)" = pipe_read ] && blocked=1 && break
		[[ "$(cat /proc/$BG_PID/syscall 2>/dev/null)" == "0 0x0 "* ]] && blocked=1 && break # x86-64: read(0, ...)
		sleep 0.1
	done
	[ -n "$blocked" ]
	args=$(tr '\0' ' ' </proc/$BG_PID/cmdline)
	printf '%s' "$CANARY-stdin" >&8
	exec 8>&-
	rc=0
	wait "$BG_PID" || rc=$?
	BG_PID=
	[ "$rc" -eq 0 ]
	# the right process, its names kept; the value and the token gone
	[[ "$args" == *"secrets set -a canary -t "*" ARGV_SECRET="*" STDIN_SECRET="* ]]
	[[ "$args" != *"$CANARY"* ]]
	[[ "$args" != *"$ADMIN_TOKEN"* ]]
	[[ "$args" != *"${ADMIN_TOKEN#coffer_}"* ]]
	holds canary ARGV_SECRET "$CANARY-argv"
	holds canary STDIN_SECRET "$CANARY-stdin"
}

# ---- all or nothing ----

@test "set: one invalid name among good ones stores nothing (checked before sending)" {
	before=$(snapshot canary)
	run_logged "$COFFER" secrets set -a canary "GOOD_1=$CANARY-1" "1BAD=$CANARY-2" "GOOD_2=$CANARY-3"
	[ "$status" -eq 2 ]
	[[ "$output" == *"argument 2: invalid name"* ]]
	[[ "$output" != *"$CANARY"* ]]
	[ "$(snapshot canary)" = "$before" ]
}

@test "set: one name the api refuses among good ones stores nothing" {
	before=$(snapshot canary)
	run_logged "$COFFER" secrets set -a canary "GOOD_1=$CANARY-1" "COFFER_MINE=$CANARY-2" "GOOD_2=$CANARY-3"
	[ "$status" -eq 1 ]
	[[ "$output" == *"secret name 'COFFER_MINE' is reserved"* ]]
	[[ "$output" != *"$CANARY"* ]]
	[ "$(snapshot canary)" = "$before" ]
}

# ---- unset ----

@test "unset: an existing name goes, the others stay" {
	"$COFFER" secrets set -a canary "KEEP=$CANARY-k" "DROP=$CANARY-d" >/dev/null
	run_logged "$COFFER" secrets unset -a canary DROP
	[ "$status" -eq 0 ]
	[ "$output" = "Secrets are staged for the first deployment (version 3)" ]
	[ "$("$COFFER" secrets list -a canary --json | jq -r '[.[].name] | join(",")')" = CANARY_SECRET,KEEP ]
}

@test "unset: an absent name is not an error and makes no version" {
	run_logged "$COFFER" secrets unset -a canary NEVER_SET ALSO_ABSENT
	[ "$status" -eq 0 ]
	[ "$output" = "Nothing changed: the secrets are already as given (version 1)" ]
	[ "$(version_of canary)" = 1 ]
}

@test "unset: NAME=VALUE typed by mistake is refused without echoing the value" {
	before=$(snapshot canary)
	run_logged "$COFFER" secrets unset -a canary "CANARY_SECRET=$CANARY"
	[ "$status" -eq 2 ]
	[[ "$output" == *"argument 1: invalid name"* ]]
	[[ "$output" != *"$CANARY"* ]]
	[ "$(snapshot canary)" = "$before" ]
}

# ---- list ----

@test "list: a table of NAME DIGEST STATUS DATE, sorted by name, staged rows and the deploy hint" {
	"$COFFER" secrets set -a canary "ZED=$CANARY-z" "ALPHA=$CANARY-a" "MID=$CANARY-m" >/dev/null
	run_logged "$COFFER" secrets list -a canary
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" =~ ^NAME\ +DIGEST\ +STATUS\ +DATE$ ]]
	names=$(printf '%s\n' "${lines[@]:1:4}" | awk '{ print $1 }' | paste -sd,)
	[ "$names" = ALPHA,CANARY_SECRET,MID,ZED ]
	for i in 1 2 3 4; do
		[[ "${lines[$i]}" =~ ^[A-Z_]+\ +[0-9a-f]{32}\ +Staged\ +[0-9]+s\ ago$ ]]
	done
	# columns line up under their headers
	col=$(awk 'NR == 1 { print index($0, "DIGEST") }' <<<"$output")
	[ "$(awk -v c="$col" 'NR >= 2 && NR <= 5 { print substr($0, c, 1) }' <<<"$output" | grep -c '[0-9a-f]')" = 4 ]
	# no release yet: the hint names the command that works now (secrets deploy would refuse)
	[ "${lines[5]}" = "4 staged secrets are for the app's first deployment: 'coffer deploy -a canary -- COMMAND' starts its machines with them" ]
	[ "${#lines[@]}" -eq 6 ]
	[[ "$output" != *"$CANARY"* ]]
}

@test "list --json: exactly name, digest, status, created_at, updated_at, with RFC 3339 times" {
	"$COFFER" secrets set -a canary "B_KEY=$CANARY-b" "A_KEY=$CANARY-a" >/dev/null
	run_logged "$COFFER" secrets list -a canary --json
	[ "$status" -eq 0 ]
	[ "$(jq -r 'type' <<<"$output")" = array ]
	[ "$(jq -r '[.[].name] | join(",")' <<<"$output")" = A_KEY,B_KEY,CANARY_SECRET ]
	[ "$(jq -c '[.[] | keys_unsorted] | unique' <<<"$output")" = '[["name","digest","status","created_at","updated_at"]]' ]
	[ "$(jq -r '[.[].digest | test("^[0-9a-f]{32}$")] | all' <<<"$output")" = true ]
	[ "$(jq -r '[.[].status] | unique | join(",")' <<<"$output")" = staged ]
	rfc3339='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'
	[ "$(jq -r --arg re "$rfc3339" '[.[] | .created_at, .updated_at | test($re)] | all' <<<"$output")" = true ]
	# and they are now, give or take a minute
	now=$(date -u +%s)
	[ "$(jq -r --argjson now "$now" '[.[].updated_at | fromdateiso8601 | (. - $now) | fabs < 60] | all' <<<"$output")" = true ]
	[[ "$output" != *"$CANARY"* ]]
}

@test "list: an app without secrets shows the header only" {
	"$COFFER" apps create empty >/dev/null
	run_logged "$COFFER" secrets list -a empty
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^NAME\ +DIGEST\ +STATUS\ +DATE$ ]]
	run_logged "$COFFER" secrets list -a empty --json
	[ "$status" -eq 0 ]
	[ "$output" = "[]" ]
}

@test "list: one staged secret, the hint in the singular" {
	run_logged "$COFFER" secrets list -a canary
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = "1 staged secret is for the app's first deployment: 'coffer deploy -a canary -- COMMAND' starts its machines with them" ]
}

# ---- stage and deploy ----

@test "set --stage records the change and says how to deploy it" {
	run_logged "$COFFER" secrets set --stage -a canary "LATER=$CANARY-later"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "Secrets are staged as version 2, not yet on the app's machines." ]
	[ "${lines[1]}" = "Deploy them with 'coffer secrets deploy -a canary'." ]
	[ "$(version_of canary)" = 2 ]
	[ "$("$COFFER" secrets list -a canary --json | jq -r '.[] | select(.name == "LATER") | .status')" = staged ]
	holds canary LATER "$CANARY-later"
}

@test "secrets deploy with no machines exits with the conflict code and says why" {
	"$COFFER" secrets set --stage -a canary "LATER=$CANARY-later" >/dev/null
	run_logged "$COFFER" secrets deploy -a canary
	[ "$status" -eq 6 ]
	[[ "$output" == *"app 'canary' has no machines to deploy to"* ]]
	[ "$(version_of canary)" = 2 ]
}

# ---- import ----

@test "import: comments, blanks, export, blanks around '=', quotes" {
	{
		echo '# a comment line'
		echo ''
		echo '   '
		echo "  # an indented comment with $CANARY-in-comment"
		echo "export EXPORTED=$CANARY-exp"
		printf 'SPACED \t=  %s  \t\n' "$CANARY-sp"
		echo "DQ=\"$CANARY dq\""
		echo "DQ_ESC=\"$CANARY\\n\\\"q\\\"\\\\\" # a comment after the quote"
		echo "SQ='$CANARY \\n sq'"
		echo "HASH=$CANARY#not-a-comment"
		echo "INLINE=$CANARY-kept # $CANARY-comment"
		echo "LAST=$CANARY-no-final-newline" | tr -d '\n'
	} >"$REQ/doc.env"
	run "$COFFER" secrets import -a canary <"$REQ/doc.env"
	printf '%s\n' "$output" >>"$T/outputs.log"
	[ "$status" -eq 0 ]
	# the cut at " #" is said (line and name, never the value), the rest as before
	[ "${lines[0]}" = "coffer: note: line 11: the text of INLINE after ' #' is read as a comment; quote the value if it belongs to it" ]
	[ "${lines[1]}" = "Secrets are staged for the first deployment (version 2)" ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$("$COFFER" secrets list -a canary --json | jq -r '[.[].name] | join(",")')" = \
		CANARY_SECRET,DQ,DQ_ESC,EXPORTED,HASH,INLINE,LAST,SPACED,SQ ]
	holds canary INLINE "$CANARY-kept"
	holds canary EXPORTED "$CANARY-exp"
	holds canary SPACED "$CANARY-sp"
	holds canary DQ "$CANARY dq"
	holds canary DQ_ESC "$CANARY"$'\n''\"q\"\\'
	holds canary SQ "$CANARY \\n sq"
	holds canary HASH "$CANARY#not-a-comment"
	holds canary LAST "$CANARY-no-final-newline"
}

@test "import: \"\"\" values on several lines and on one line" {
	{
		echo "ML=\"\"\"$CANARY-line1"
		echo "  line2 with \"quotes\" and \\n kept"
		echo "line3\"\"\""
		echo 'PEM="""'
		echo "-----BEGIN $CANARY-----"
		echo '-----END-----'
		echo '"""'
		echo "ONE=\"\"\"$CANARY-one\"\"\""
		echo 'AFTER=plain'
	} >"$REQ/doc.env"
	run_logged "$COFFER" secrets import -a canary <"$REQ/doc.env"
	[ "$status" -eq 0 ]
	[ "$("$COFFER" secrets list -a canary --json | jq -r '[.[].name] | join(",")')" = AFTER,CANARY_SECRET,ML,ONE,PEM ]
	holds canary ML "$CANARY-line1"$'\n  line2 with "quotes" and \\n kept\nline3'
	# an opening line with nothing after """: the value starts on the next line
	# and ends with the newline before the closing """
	holds canary PEM "-----BEGIN $CANARY-----"$'\n-----END-----\n'
	holds canary ONE "$CANARY-one"
	holds canary AFTER plain
}

@test "import: CRLF line endings" {
	printf 'A=%s\r\n# comment\r\n\r\nB="%s"\r\nC="""%s\r\nsecond\r\n"""\r\n' "$CANARY-a" "$CANARY-b" "$CANARY-c" >"$REQ/doc.env"
	run_logged "$COFFER" secrets import -a canary <"$REQ/doc.env"
	[ "$status" -eq 0 ]
	holds canary A "$CANARY-a"
	holds canary B "$CANARY-b"
	holds canary C "$CANARY-c"$'\nsecond\n'
}

@test "import: a name given twice, the last value wins" {
	printf 'TWICE=%s\nOTHER=x\nTWICE=%s\n' "$CANARY-first" "$CANARY-last" >"$REQ/doc.env"
	run_logged "$COFFER" secrets import -a canary <"$REQ/doc.env"
	[ "$status" -eq 0 ]
	holds canary TWICE "$CANARY-last"
}

@test "import: a document without NAME=VALUE lines is refused" {
	run_logged "$COFFER" secrets import -a canary < <(printf '# only a comment\n\n')
	[ "$status" -eq 1 ]
	[[ "$output" == *"no NAME=VALUE line on standard input"* ]]
	[ "$(version_of canary)" = 1 ]
}

@test "import: a \"\"\" value over 64 KiB names its opening line, and nothing is stored" {
	{
		printf 'GOOD=%s\nHUGE="""' "$CANARY-good"
		for i in $(seq 70); do printf '%s\n' "$(head -c 1000 /dev/zero | tr '\0' h)"; done
		printf 'end"""\n'
	} >"$REQ/doc.env"
	before=$(snapshot canary)
	run_logged "$COFFER" secrets import -a canary <"$REQ/doc.env"
	[ "$status" -eq 1 ]
	[[ "$output" == *"line 2: value longer than 65536 bytes"* ]]
	[[ "$output" != *hhhhhhhh* ]]
	[ "$(snapshot canary)" = "$before" ]
}

@test "import: a line without '=' names its line, not its text, and nothing is stored" {
	printf 'GOOD=%s\n# comment\n\n%s\nLATER=x\n' "$CANARY-good" "$CANARY-no-equals" >"$REQ/doc.env"
	before=$(snapshot canary)
	run_logged "$COFFER" secrets import -a canary <"$REQ/doc.env"
	[ "$status" -eq 1 ]
	[[ "$output" == *"line 4: no '=' in line"* ]]
	[[ "$output" != *"$CANARY"* ]]
	[ "$(snapshot canary)" = "$before" ]
}

@test "import: an unterminated \"\"\" names its opening line, and nothing is stored" {
	printf 'GOOD=%s\nOPEN="""%s\nmore %s\n' "$CANARY-good" "$CANARY-open" "$CANARY-more" >"$REQ/doc.env"
	before=$(snapshot canary)
	run_logged "$COFFER" secrets import -a canary <"$REQ/doc.env"
	[ "$status" -eq 1 ]
	[[ "$output" == *"line 2: unterminated \"\"\""* ]]
	[[ "$output" != *"$CANARY"* ]]
	[ "$(snapshot canary)" = "$before" ]
}

@test "import: an over-long line names its line, and nothing is stored" {
	{
		printf 'GOOD=%s\nOTHER=x\nLONG=' "$CANARY-good"
		for i in $(seq 3000); do printf '%s' "$CANARY"; done # 69,000 bytes
		printf '\nAFTER=y\n'
	} >"$REQ/doc.env"
	before=$(snapshot canary)
	run_logged "$COFFER" secrets import -a canary <"$REQ/doc.env"
	[ "$status" -eq 1 ]
	[[ "$output" == *"line 3: line too long"* ]]
	[[ "$output" != *"$CANARY"* ]]
	[ "$(snapshot canary)" = "$before" ]
}

@test "import: an invalid name names its line, and nothing is stored" {
	printf 'GOOD=%s\nBAD-NAME=%s\n' "$CANARY-good" "$CANARY-bad" >"$REQ/doc.env"
	before=$(snapshot canary)
	run_logged "$COFFER" secrets import -a canary <"$REQ/doc.env"
	[ "$status" -eq 1 ]
	[[ "$output" == *"line 2: invalid name"* ]]
	[[ "$output" != *"$CANARY"* ]]
	[ "$(snapshot canary)" = "$before" ]
}

@test "import: refuses a terminal on stdin" {
	command -v script >/dev/null || skip "script (util-linux) is not installed: no pty"
	run_logged script -qec "$(printf '%q ' "$COFFER" secrets import -a canary)" /dev/null </dev/null
	[ "$status" -eq 2 ]
	[[ "$output" == *"standard input is a terminal: redirect a .env file or pipe it in"* ]]
}

# ---- app, token, exit codes ----

@test "the app comes from COFFER_APP, and -a wins over it" {
	run_logged env COFFER_APP=canary "$COFFER" secrets set "FROM_ENV=$CANARY-env"
	[ "$status" -eq 0 ]
	run_logged env COFFER_APP=canary "$COFFER" secrets list
	[ "$status" -eq 0 ]
	[[ "$output" == *FROM_ENV* ]]
	"$COFFER" apps create other >/dev/null
	run_logged env COFFER_APP=canary "$COFFER" secrets set -a other "FROM_FLAG=$CANARY-flag"
	[ "$status" -eq 0 ]
	[ "$("$COFFER" secrets list -a other --json | jq -r '[.[].name] | join(",")')" = FROM_FLAG ]
	[ "$(version_of canary)" = 2 ]
}

@test "no app given is a usage error (exit 2) that says how to give one" {
	before=$(snapshot canary)
	run_logged "$COFFER" secrets set "NO_APP=$CANARY-noapp"
	[ "$status" -eq 2 ]
	[[ "$output" == *"no app given: use -a APP, set COFFER_APP, or put app = \"NAME\" in coffer.toml"* ]]
	[[ "$output" != *"$CANARY"* ]]
	run_logged "$COFFER" secrets list
	[ "$status" -eq 2 ]
	[[ "$output" == *"no app given"* ]]
	[ "$(snapshot canary)" = "$before" ]
}

@test "-t TOKEN wins over COFFER_TOKEN" {
	bogus="coffer_$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
	run_logged env COFFER_TOKEN="$bogus" "$COFFER" secrets list -a canary -t "$ADMIN_TOKEN"
	[ "$status" -eq 0 ]
	[[ "$output" == *CANARY_SECRET* ]]
	run_logged "$COFFER" secrets list -a canary -t "$bogus"
	[ "$status" -eq 3 ]
}

@test "a wrong token exits 3, never echoing the token, and stores nothing" {
	bogus="coffer_$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
	before=$(snapshot canary)
	run_logged env COFFER_TOKEN="$bogus" "$COFFER" secrets set -a canary "X=$CANARY-x"
	[ "$status" -eq 3 ]
	[[ "$output" == *"unknown token"* ]]
	[[ "$output" != *"$bogus"* ]]
	[[ "$output" != *"$CANARY"* ]]
	[ "$(snapshot canary)" = "$before" ]
}

@test "a malformed token (a value pasted by mistake) exits 3 without echoing it" {
	run_logged "$COFFER" secrets list -a canary -t "$CANARY-pasted"
	[ "$status" -eq 3 ]
	[[ "$output" == *"malformed"* ]]
	[[ "$output" != *"$CANARY"* ]]
	run_logged env COFFER_TOKEN="coffer_ $CANARY" "$COFFER" secrets list -a canary
	[ "$status" -eq 3 ]
	[[ "$output" != *"$CANARY"* ]]
}

@test "no token at all exits 3 and says where a token comes from" {
	run_logged env -u COFFER_TOKEN "$COFFER" secrets list -a canary
	[ "$status" -eq 3 ]
	[[ "$output" == *"no access token: use -t TOKEN, set COFFER_TOKEN"* ]]
}

@test "an unknown app exits 5" {
	run_logged "$COFFER" secrets set -a nope "X=$CANARY-x"
	[ "$status" -eq 5 ]
	[[ "$output" == *"app 'nope' not found"* ]]
	run_logged "$COFFER" secrets list -a nope
	[ "$status" -eq 5 ]
	run_logged "$COFFER" secrets import -a nope <<<"X=y"
	[ "$status" -eq 5 ]
}

# ---- the project file ----

@test "coffer.toml names the app: set and list with no -a in its folder or below; -a and -c come first" {
	unset COFFER_APP
	mkdir -p "$T/proj/sub"
	printf '# the project\napp = "canary"\n' >"$T/proj/coffer.toml"
	chmod 0644 "$T/proj/coffer.toml" # whatever the umask: coffer refuses a file others may write
	cd "$T/proj/sub"
	run_logged "$COFFER" secrets set "PROJ=$CANARY-proj"
	[ "$status" -eq 0 ]
	run_logged "$COFFER" secrets list --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.[].name] | index("PROJ") != null' <<<"$output")" = true ]
	# -a wins over the file
	"$COFFER" apps create other >/dev/null
	run_logged "$COFFER" secrets list -a other --json
	[ "$status" -eq 0 ]
	[ "$output" = "[]" ]
	# elsewhere, no app: the message says where one may come from
	cd "$T"
	run_logged "$COFFER" secrets list
	[ "$status" -eq 2 ]
	[[ "$output" == *"no app given: use -a APP, set COFFER_APP, or put app = \"NAME\" in coffer.toml"* ]]
	# -c names the file
	run_logged "$COFFER" secrets list -c "$T/proj/coffer.toml" --json
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.[].name] | index("PROJ") != null' <<<"$output")" = true ]
	run_logged "$COFFER" secrets list -c "$T/nope.toml"
	[ "$status" -eq 2 ]
	[[ "$output" == *"cannot read the project file $T/nope.toml: no such file"* ]]
}

@test "a broken coffer.toml is a usage error naming its file and line, and nothing is stored" {
	unset COFFER_APP
	mkdir -p "$T/proj"
	before=$(snapshot canary)
	printf 'app = "canary"\nname = "x"\n' >"$T/proj/coffer.toml"
	chmod 0644 "$T/proj/coffer.toml" # whatever the umask: coffer refuses a file others may write
	cd "$T/proj"
	run_logged "$COFFER" secrets set "BROKEN=$CANARY-broken"
	[ "$status" -eq 2 ]
	[[ "$output" == *"$T/proj/coffer.toml:2: unknown key 'name' (known: app, and the table [deploy])"* ]]
	[[ "$output" != *"$CANARY"* ]]
	[ "$(snapshot canary)" = "$before" ]
}

@test "the API down exits 7, naming the URL, where it came from, and what to do" {
	kill -TERM "$API_PID"
	wait "$API_PID" || true
	run_logged "$COFFER" secrets set -a canary "X=$CANARY-x"
	[ "$status" -eq 7 ]
	[[ "$output" == *"cannot reach the API at $API_URL (from "* ]]
	[[ "$output" == *"is the api running? 'coffer dev' (what 'make run' starts) serves one on this machine; to use another, set COFFER_API_URL"* ]]
	[[ "$output" != *"$CANARY"* ]]
	run_logged "$COFFER" secrets list -a canary
	[ "$status" -eq 7 ]
	[[ "$output" == *"cannot reach the API at $API_URL (from "* ]]
}
