#!/bin/sh
# files.sh — the machine of t0630 (secrets as files). For each path in
# $FILES (separated by spaces) it prints, as seen from inside the machine:
#   file PATH stat MODE USER GROUP
#   file PATH fstype FSTYPE        (of the file's folder: findmnt)
#   file PATH sha256 HEX           (of the content: the test compares it)
# or "file PATH missing"; then "files done" and it becomes `sleep`.
echo "files up: machine $COFFER_MACHINE_ID release $COFFER_RELEASE_VERSION pid $$"
for f in ${FILES:-}; do
	if [ -f "$f" ]; then
		echo "file $f stat $(stat -c '%a %U %G' "$f")"
		echo "file $f fstype $(findmnt -n -o FSTYPE --target "${f%/*}")"
		echo "file $f sha256 $(sha256sum <"$f" | cut -d' ' -f1)"
	else
		echo "file $f missing"
	fi
done
echo "files done"
exec sleep 100000
