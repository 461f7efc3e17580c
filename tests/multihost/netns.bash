# netns.bash — the multi-host topology of t0900-multihost.bats, in network
# namespaces, sourced after tests/integration/helpers.bash.
#
# One run makes, under a prefix of its own (cmh<pid>x<random>-):
#   <p>net                      a bridge br0; the other end of every veth
#   <p>db      198.18.X.2       PostgreSQL (initdb + pg_ctl, listening on
#                               that address only, trust for the /24)
#   <p>keeper  198.18.X.3       the keeper
#   <p>ctl     198.18.X.4       where the test's CLI, curl and psql run
#   <p>api1..3 198.18.X.11-13   three api replicas on the one store
#   <p>host1..3 198.18.X.21-23  one agent each, its machines beside it
# X is the test run's own third octet (from its pid) in 198.18.0.0/15, the
# RFC 2544 benchmarking range: addresses no real network uses. Each run has
# its own bridge in its own namespace, so two runs never share a link even
# when their X is the same; only the namespace names must differ, and the
# prefix makes them differ. Nothing is added to the host's own namespace.
#
# The helpers run unchanged inside the namespaces: $COFFER is a wrapper
# that execs the real binary under `ip netns exec "$MH_NS"` (default: ctl),
# and curl, psql and pg_dump on PATH are wrappers into ctl. A role started
# by the helpers (`MH_NS=<p>api2 api_start ADDR`) has the wrapper's pid,
# which becomes the role itself (ip netns exec execs it).
#
# Every link is TLS (certificates from `coffer tls`, each carrying its
# namespace's address) but the store's: PostgreSQL is plain TCP inside the
# private bridge.

# mh_skip_reason: why this machine cannot run the test (empty when it can).
mh_skip_reason() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "the multi-host test needs root (network namespaces); run it as root, as CI does"
		return
	fi
	if ! command -v ip >/dev/null 2>&1; then
		echo "the multi-host test needs iproute2 (ip netns)"
		return
	fi
	local probe="cmhprobe$$"
	if ! ip netns add "$probe" 2>/dev/null; then
		echo "ip netns add fails here (no CAP_SYS_ADMIN or no network namespaces)"
		return
	fi
	ip netns del "$probe" 2>/dev/null || true
	if ! ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
		echo "the multi-host test needs the PostgreSQL server binaries (postgresql-15)"
	fi
}

MH_NODES="db keeper ctl api1 api2 api3 host1 host2 host3"

# mh_addr NODE: the node's address.
mh_addr() {
	local last
	case $1 in
	db) last=2 ;;
	keeper) last=3 ;;
	ctl) last=4 ;;
	api[1-3]) last=$((10 + ${1#api})) ;;
	host[1-3]) last=$((20 + ${1#host})) ;;
	*) echo "mh_addr: unknown node $1" >&2; return 1 ;;
	esac
	echo "$MH_NET.$last"
}

# mh_ns NODE: the node's namespace name.
mh_ns() {
	echo "$MH_PREFIX$1"
}

# mh_in NODE CMD...: runs CMD in NODE's namespace.
mh_in() {
	local node=$1
	shift
	ip netns exec "$MH_PREFIX$node" "$@"
}

# mh_topology_up: the namespaces, the bridge and the veth pairs (in $T).
mh_topology_up() {
	MH_PREFIX="cmh$$x$((RANDOM % 1000))-"
	MH_NET="198.18.$(($$ % 250 + 1))"
	export MH_PREFIX MH_NET
	echo "$MH_PREFIX" >"$T/mh.prefix"
	ip netns add "${MH_PREFIX}net"
	ip -n "${MH_PREFIX}net" link add br0 type bridge
	ip -n "${MH_PREFIX}net" link set br0 up
	local node ns
	for node in $MH_NODES; do
		ns=$(mh_ns "$node")
		ip netns add "$ns"
		ip -n "${MH_PREFIX}net" link add "$node" type veth peer name eth0 netns "$ns"
		ip -n "${MH_PREFIX}net" link set "$node" master br0 up
		ip -n "$ns" link set lo up
		ip -n "$ns" addr add "$(mh_addr "$node")/24" dev eth0
		ip -n "$ns" link set eth0 up
	done
	MH_HOST_INODES=$(stat -Lc %i "/run/netns/${MH_PREFIX}host1" "/run/netns/${MH_PREFIX}host2" "/run/netns/${MH_PREFIX}host3" | tr '\n' ' ')
	export MH_HOST_INODES
	mh_wrappers
}

# mh_wrappers: $COFFER, curl, psql and pg_dump, each run in a namespace.
mh_wrappers() {
	local tool real
	mkdir -p "$T/bin"
	MH_COFFER_REAL=${MH_COFFER_REAL:-$COFFER}
	export MH_COFFER_REAL
	cat >"$T/bin/coffer" <<'WRAP'
#!/bin/sh
exec ip netns exec "${MH_NS:-${MH_PREFIX}ctl}" "$MH_COFFER_REAL" "$@"
WRAP
	for tool in curl psql pg_dump; do
		real=$(command -v "$tool") || continue
		printf '#!/bin/sh\nexec ip netns exec "${MH_PREFIX}ctl" %s "$@"\n' "$real" >"$T/bin/$tool"
	done
	chmod 755 "$T"/bin/*
	COFFER="$T/bin/coffer"
	PATH="$T/bin:$PATH"
	export COFFER PATH
}

# mh_pg_start: PostgreSQL in db, on its address only, port 5432 (the
# namespace's own); COFFER_TEST_PG_URL names its database.
mh_pg_start() {
	local bin addr
	bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	addr=$(mh_addr db)
	mkdir -p "$T/pg"
	chown postgres: "$T/pg"
	runuser -u postgres -- "$bin/initdb" -D "$T/pg/data" -A trust -U coffer --no-sync >"$T/pg/initdb.log" 2>&1
	echo "host all all $MH_NET.0/24 trust" >>"$T/pg/data/pg_hba.conf"
	mh_in db runuser -u postgres -- "$bin/pg_ctl" -D "$T/pg/data" -w -t 60 -l "$T/pg/server.log" \
		-o "-p 5432 -k $T/pg -c listen_addresses=$addr -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >/dev/null
	mh_in db runuser -u postgres -- "$bin/createdb" -h "$addr" -p 5432 -U coffer coffer_mh
	COFFER_TEST_PG_URL="postgres://coffer@$addr:5432/coffer_mh"
	COFFER_TEST_STORE=pg
	export COFFER_TEST_PG_URL COFFER_TEST_STORE
}

# mh_tls: the CA and one certificate per serving node, for its address.
mh_tls() {
	local node
	"$MH_COFFER_REAL" tls ca --dir "$T/tls" >/dev/null
	for node in keeper api1 api2 api3; do
		"$MH_COFFER_REAL" tls cert --dir "$T/tls" --name "$node" --host "$(mh_addr "$node")" >/dev/null
	done
	COFFER_CA="$T/tls/ca.pem"
	CURL_CA_BUNDLE="$T/tls/ca.pem"
	export COFFER_CA CURL_CA_BUNDLE
}

MH_KEEPER_PORT=7440
MH_API_PORT=7443

# mh_keeper_start: the keeper in its namespace, on its fixed address (a
# restart keeps it).
mh_keeper_start() {
	TLS_SERVER_CERT="$T/tls/keeper.pem" TLS_SERVER_KEY="$T/tls/keeper.key" \
		KEEPER_LISTEN="$(mh_addr keeper):$MH_KEEPER_PORT" MH_NS=$(mh_ns keeper) keeper_start
	echo "$KEEPER_PID" >"$T/pid.keeper"
	export KEEPER_URL KEEPER_PID
}

# mh_api_start N: api replica N in its namespace, on its fixed address;
# MH_API_URL[N] is its URL, $T/pid.apiN holds its pid.
mh_api_start() {
	local n=$1
	TLS_SERVER_CERT="$T/tls/api$n.pem" TLS_SERVER_KEY="$T/tls/api$n.key" API_NAME="api$n" \
		MH_NS=$(mh_ns "api$n") api_start "$(mh_addr "api$n"):$MH_API_PORT"
	MH_API_URL[n]=$API_URL
	echo "$API_PID" >"$T/pid.api$n"
}

# mh_use_api N: the test's CLI and curl talk to api N.
mh_use_api() {
	API_URL=${MH_API_URL[$1]}
	COFFER_API_URL=$API_URL
	export API_URL COFFER_API_URL
}

# mh_agent_apis N: the api URLs host N's agent is given, its own replica
# first (hostN prefers apiN), then the others.
mh_agent_apis() {
	local n=$1 i
	for i in 0 1 2; do
		echo "${MH_API_URL[$(((n - 1 + i) % 3 + 1))]}"
	done
}

# mh_agent_start N [ARGS...]: host N's agent (a join token the first time),
# with every api URL (--api repeated); $T/pid.hostN holds its pid.
mh_agent_start() {
	local n=$1
	shift
	local apis
	apis=$(mh_agent_apis "$n" | tr '\n' ' ')
	if [ ! -e "$T/agents/host$n/identity.json" ] && [ ! -e "$T/enrolled.host$n" ]; then
		COFFER_JOIN_TOKEN=$(join_token) AGENT_APIS="$apis" MH_NS=$(mh_ns "host$n") agent_start "host$n" "$@"
		: >"$T/enrolled.host$n"
	else
		AGENT_APIS="$apis" MH_NS=$(mh_ns "host$n") agent_start "host$n" "$@"
	fi
	echo "$AGENT_PID" >"$T/pid.host$n"
}

# mh_platform_up: the whole platform, every role in its namespace.
mh_platform_up() {
	T=$(mktemp -d "${TMPDIR:-/tmp}/coffer-mh.XXXXXX")
	chmod 711 "$T"
	export T
	mh_topology_up
	mh_pg_start
	store_url_for_test
	mh_tls
	"$COFFER" keeper init --state-dir "$T/keeper" >"$T/keeper-init.out"
	mh_keeper_start
	local n
	for n in 1 2 3; do
		mh_api_start "$n"
	done
	ADMIN_TOKEN=$("$COFFER" api bootstrap --store "$STORE_URL" --rows-key "$T/keeper/api.rows.key" --org acme)
	mh_use_api 1
	COFFER_TOKEN=$ADMIN_TOKEN COFFER_CONFIG="$T/config.json"
	export COFFER_TOKEN COFFER_CONFIG ADMIN_TOKEN STORE_URL PG_SCHEMA
	unset COFFER_APP
	deployer_login
	"$COFFER" apps create canary >/dev/null
	"$COFFER" secrets set -a canary "CANARY_SECRET=$CANARY" >/dev/null
	for n in 1 2 3; do
		mh_agent_start "$n"
	done
	wait_until 30 hosts_ready 3
}

# mh_heal: every role up and every link up again after a case: an api,
# the keeper or an agent that is not running is started again.
mh_heal() {
	local n
	for n in host1 host2 host3; do
		ip -n "${MH_PREFIX}net" link set "$n" up 2>/dev/null || true
	done
	kill -0 "$(cat "$T/pid.keeper")" 2>/dev/null || mh_keeper_start
	for n in 1 2 3; do
		kill -0 "$(cat "$T/pid.api$n")" 2>/dev/null || mh_api_start "$n"
	done
	for n in 1 2 3; do
		kill -0 "$(cat "$T/pid.host$n")" 2>/dev/null || mh_agent_start "$n"
	done
	mh_use_api 1
}

# mh_teardown: ends every process of the run (each recorded pid, then
# whatever still lives in one of its namespaces: machines, orphans,
# PostgreSQL), deletes every namespace (and with them every veth and the
# bridge) and the run's folder. Safe to call twice, and after a failure
# anywhere in the setup.
mh_teardown() {
	local rc=0 prefix f pid node ns bin
	[ -n "${T:-}" ] && [ -d "$T" ] || return 0
	prefix=$(cat "$T/mh.prefix" 2>/dev/null || true)
	# the agents first (their last events), then the roles
	for f in "$T"/pid.host* "$T"/pid.api* "$T"/pid.keeper; do
		[ -e "$f" ] && stop_pids "$(cat "$f")"
	done
	bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -n "$prefix" ] && [ -d "$T/pg/data" ]; then
		# the scan dumps the store before it stops
		canary_scan || rc=1
		ip netns exec "${prefix}db" runuser -u postgres -- "$bin/pg_ctl" -D "$T/pg/data" -m immediate stop \
			>/dev/null 2>&1 || true
	else
		canary_scan || rc=1
	fi
	if [ -n "$prefix" ]; then
		for node in $MH_NODES net; do
			ns="$prefix$node"
			ip netns list | grep -q "^$ns\b" || continue
			for pid in $(ip netns pids "$ns" 2>/dev/null); do
				kill -KILL "$pid" 2>/dev/null || true
			done
			ip netns del "$ns" 2>/dev/null || { echo "teardown: could not delete namespace $ns" >&2; rc=1; }
		done
	fi
	rm -rf "$T"
	return "$rc"
}

# ---- what the cases observe ----

# mh_now: seconds since the epoch, with milliseconds.
mh_now() {
	printf '%.3f\n' "$EPOCHREALTIME"
}

# mh_wait SECONDS CMD...: runs CMD until it succeeds, for SECONDS at most
# (a plain deadline: the checks waited on here take a second or more each
# on a loaded machine, where wait_until's "5 tries a second" would stretch
# a limit many times over).
mh_wait() {
	local limit=$1 end=$((SECONDS + $1 + 1))
	shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.2
	done
	echo "timed out after ${limit}s waiting for: $*" >&2
	return 1
}

# mh_machine_procs [APP]: "MACHINE_ID PID" of every process in a host
# namespace that a machine runs (the agent sets COFFER_MACHINE_ID in a
# machine's environment), of APP only when given. Orphans count: a
# process that left its agent stays in the namespace. One ps for the
# three namespaces (by their inode), so that the sampler is quick.
mh_machine_procs() {
	local pid id
	for pid in $(ps -eo pid=,netns= | awk -v want="$MH_HOST_INODES" 'BEGIN { split(want, w, " "); for (i in w) in_ns[w[i]] = 1 } ($2 in in_ns) { print $1 }'); do
		id=$(env_of "$pid" COFFER_MACHINE_ID) || continue
		if [ -n "${1:-}" ]; then
			[ "$(env_of "$pid" COFFER_APP_NAME)" = "$1" ] || continue
		fi
		echo "$id $pid"
	done
}

# mh_stepper APP VERSION: the api replica (1..3) stepping the release: the
# holder of the controller's lease in the store (the replica whose log
# names that holder, or a holder naming the replica's address or pid), else the replica whose log last says it
# acquired a lease, else the one whose log says it started the release.
mh_stepper() {
	local holder n best="" best_ts="" ts
	holder=$(store_sql "SELECT holder FROM leases WHERE expires_at > $(date +%s%3N) ORDER BY expires_at DESC LIMIT 1" 2>/dev/null || true)
	if [ -n "$holder" ]; then
		for n in 1 2 3; do
			if grep -qF -- "$holder" "$T/api$n.log" 2>/dev/null || [[ "$holder" == *"$(mh_addr "api$n")"* ]] || [[ " $holder " =~ [^0-9]$(cat "$T/pid.api$n")[^0-9] ]]; then
				echo "$n"
				return 0
			fi
		done
	fi
	for n in 1 2 3; do
		ts=$(grep -E 'event=[a-z_]*lease[a-z_]*(acquired|taken|won)' "$T/api$n.log" 2>/dev/null | tail -n 1 | grep -oE '^ts=[^ ]+' || true)
		if [ -n "$ts" ] && { [ -z "$best_ts" ] || [[ "$ts" > "$best_ts" ]]; }; then
			best=$n best_ts=$ts
		fi
	done
	if [ -n "$best" ]; then
		echo "$best"
		return 0
	fi
	for n in 1 2 3; do
		if grep -E "event=release_started .*release=$2( |\$)" "$T/api$n.log" >/dev/null 2>&1; then
			echo "$n"
			return 0
		fi
	done
	return 1
}

# mh_sample_start: samples, as often as it can (a few times a second on a
# loaded machine) until mh_sample_stop, which
# machine ids have a process (one line "SECONDS ID ID ..." to $T/samples).
mh_sample_start() {
	: >"$T/samples"
	(
		local line id
		while [ ! -e "$T/samples.stop" ]; do
			line=$EPOCHREALTIME
			while read -r id _; do line="$line $id"; done < <(mh_machine_procs)
			echo "$line" >>"$T/samples"
		done
	) 3>&- &
	MH_SAMPLER=$!
}

mh_sample_stop() {
	: >"$T/samples.stop"
	wait "$MH_SAMPLER" 2>/dev/null || true
	rm -f "$T/samples.stop"
}

# mh_downtime ID...: for each machine id, "ID SECONDS": the longest time
# the samples saw no process for it (from the last sample with one to the
# next with one, or to the end).
mh_downtime() {
	awk -v ids="$*" '
		BEGIN { n = split(ids, want, " ") }
		NR == 1 { for (i = 1; i <= n; i++) last[i] = $1 }
		{
			t = $1
			for (i = 1; i <= n; i++) {
				seen = 0
				for (j = 2; j <= NF; j++) if ($j == want[i]) seen = 1
				if (seen) {
					if (down[i] != "") { d = t - last[i]; if (d > worst[i]) worst[i] = d; down[i] = "" }
					last[i] = t
				} else if (down[i] == "") down[i] = t
			}
			end = t
		}
		END {
			for (i = 1; i <= n; i++) {
				if (down[i] != "") { d = end - last[i]; if (d > worst[i]) worst[i] = d }
				printf "%s %.1f\n", want[i], worst[i] + 0
			}
		}' "$T/samples"
}

# mh_missing FROM TO ID...: for each machine id, "ID SECONDS MISSING N":
# among the N samples taken from FROM to TO (mh_now times), in how many it
# had no process, and the longest time without one in that window.
mh_missing() {
	local from=$1 to=$2
	shift 2
	awk -v from="$from" -v to="$to" -v ids="$*" '
		BEGIN { n = split(ids, want, " ") }
		$1 >= from && $1 <= to {
			samples++
			for (i = 1; i <= n; i++) {
				seen = 0
				for (j = 2; j <= NF; j++) if ($j == want[i]) seen = 1
				if (seen) {
					if (down[i] != "") { d = $1 - down[i]; if (d > worst[i]) worst[i] = d; down[i] = "" }
				} else {
					missing[i]++
					if (down[i] == "") down[i] = (prev != "" ? prev : $1)
				}
			}
			prev = $1
		}
		END {
			for (i = 1; i <= n; i++) {
				if (down[i] != "") { d = prev - down[i]; if (d > worst[i]) worst[i] = d }
				printf "%s %.1f %d %d\n", want[i], worst[i] + 0, missing[i] + 0, samples + 0
			}
		}' "$T/samples"
}
