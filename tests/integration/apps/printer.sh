#!/bin/sh
# printer.sh — the machine of t0620: prints the value of its secret
# CANARY_SECRET in the ways a masker could miss, by MODE:
#   print  whole on a line; split across two writes with a pause between;
#          then a line with the value every 0.1 s, numbered, until stopped
#   end    the value as the very last bytes of its output, no newline, then exits 1
v=${CANARY_SECRET:?}
head=$(printf '%s' "$v" | cut -c1-9)
rest=$(printf '%s' "$v" | cut -c10-)
case ${MODE:-print} in
print)
	echo "whole: $v"
	printf 'split: %s' "$head"
	sleep 0.5
	printf '%s end\n' "$rest"
	i=0
	while :; do
		i=$((i + 1))
		echo "tick $i: $v"
		sleep 0.1
	done
	;;
end)
	echo "ending"
	printf 'end: %s' "$v"
	exit 1
	;;
esac
