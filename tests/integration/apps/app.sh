#!/bin/sh
# app.sh — the machine the run-path tests deploy (t0600, t0610). It says
# who it is, then, by its environment:
#   PRINT=NAME        prints the value of NAME (the tests check it is masked
#                     wherever coffer shows the output)
#   PRINT_REV=NAME    prints the value of NAME reversed, which the output
#                     masker does not recognise: what a test reads back from
#                     out.log to learn which value a machine got
#   CRASH=1           exits 1 at once
#   EXIT_ONCE=FILE    unless FILE exists: creates it, waits EXIT_AFTER
#                     seconds (default 5) and exits 3 (a crash after the
#                     grace window, once)
# and otherwise becomes `sleep` (same pid, same environment) until stopped.
echo "app up: machine $COFFER_MACHINE_ID release $COFFER_RELEASE_VERSION pid $$"
if [ -n "${PRINT:-}" ]; then
	case $PRINT in
	*[!A-Za-z0-9_]* | "") echo "PRINT must be a name"; exit 2 ;;
	esac
	eval "v=\${$PRINT:-}"
	echo "the value of $PRINT is $v"
fi
if [ -n "${PRINT_REV:-}" ]; then
	case $PRINT_REV in
	*[!A-Za-z0-9_]* | "") echo "PRINT_REV must be a name"; exit 2 ;;
	esac
	eval "v=\${$PRINT_REV:-}"
	echo "the reversed value of $PRINT_REV is $(printf '%s' "$v" | rev)"
fi
if [ "${CRASH:-}" = 1 ]; then
	echo "crashing on purpose"
	exit 1
fi
if [ -n "${EXIT_ONCE:-}" ] && [ ! -e "$EXIT_ONCE" ]; then
	: >"$EXIT_ONCE"
	sleep "${EXIT_AFTER:-5}"
	echo "exiting once, after the grace window"
	exit 3
fi
exec sleep 100000
