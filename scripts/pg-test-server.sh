#!/usr/bin/env bash
# Starts or stops a throw-away PostgreSQL 15 cluster for the tests.
#   scripts/pg-test-server.sh start DIR   -> prints the URL of a fresh database
#   scripts/pg-test-server.sh stop DIR
# The cluster lives in DIR, listens on 127.0.0.1 only, on a free port, with
# trust authentication for the local user "coffer".
#
# By default the server is fast and not durable (fsync=off,
# synchronous_commit=off, full_page_writes=off): what the tests want.
# PG_DURABLE=1 starts it durable instead, as a production server runs:
# fsync=on, synchronous_commit=on, full_page_writes=on (PostgreSQL's
# defaults; scripts/bench.sh uses it for every PostgreSQL figure and checks
# it with SHOW fsync).
set -euo pipefail
cmd=$1 dir=$2
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || { echo "pg-test-server: no PostgreSQL server binaries (install postgresql-15)" >&2; exit 1; }

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case $cmd in
start)
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
	durable=${PG_DURABLE:-0}
	case $durable in 0 | 1) ;; *) echo "pg-test-server: PG_DURABLE is 0 or 1" >&2; exit 2 ;; esac
	nosync=--no-sync
	[ "$durable" = 1 ] && nosync=""
	as_pg "$bin/initdb" -D "$dir/data" -A trust -U coffer $nosync >"$dir/initdb.log" 2>&1
	port=""
	for p in $(shuf -i 40000-59999 -n 20); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
	done
	[ -n "$port" ] || { echo "pg-test-server: no free port" >&2; exit 1; }
	# throw-away data: no durability (nothing is fsync-ed, nothing waits
	# for the WAL); connections for several test programs at once, each
	# with an api's pool, a keeper and agents
	# (PG_DURABLE=1: every commit on disk before it is answered)
	mode="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c wal_level=minimal -c max_wal_senders=0"
	[ "$durable" = 1 ] && mode="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
	as_pg "$bin/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/server.log" \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 $mode" start >/dev/null
	as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U coffer coffer_test
	echo "postgres://coffer@127.0.0.1:$port/coffer_test"
	;;
stop)
	[ -d "$dir/data" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$dir"
	;;
*)
	echo "usage: $0 start|stop DIR" >&2
	exit 2
	;;
esac
