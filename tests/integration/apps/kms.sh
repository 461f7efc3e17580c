#!/bin/sh
# kms.sh — the machine of t0640: it runs `coffer kms` for the test, as a
# process of the machine. Each request the test leaves in $KMS_DIR is
# req.N (the arguments, one a line, written last) and req.N.in (standard
# input); the answer is req.N.out, req.N.err and, once done, req.N.rc.
echo "kms app up: machine $COFFER_MACHINE_ID"
while :; do
	for r in "$KMS_DIR"/req.*[0-9]; do
		[ -e "$r" ] || continue
		[ -e "$r.rc" ] && continue
		set --
		while IFS= read -r a; do
			set -- "$@" "$a"
		done <"$r"
		"$KMS_COFFER" kms "$@" <"$r.in" >"$r.out" 2>"$r.err"
		echo $? >"$r.tmp"
		mv "$r.tmp" "$r.rc"
	done
	sleep 0.1
done
