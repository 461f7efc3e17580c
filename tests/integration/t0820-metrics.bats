#!/usr/bin/env bats
# Metrics and health (--metrics-listen): every role serves /metrics in the
# Prometheus text format, /healthz and /readyz on a listener of its own.
# The counters move by what the test did (secrets set, a bad token, a
# deploy, a refused open), the text parses line by line, no label holds a
# raw path or an app name, readiness follows the keeper and the api going
# away and coming back, and the canary never shows in a scrape (every
# scrape is kept under $T, which the canary scan reads).

load helpers

bats_require_minimum_version 1.5.0

setup() {
	export METRICS=1 # every role, agents too
	platform_start
	APP="$APPS_DIR/app.sh"
}

teardown() {
	if [ -n "${STOPPED_PID:-}" ]; then
		kill -CONT "$STOPPED_PID" 2>/dev/null || true
	fi
	run_stop
	platform_stop
}

# metrics_port LOG: the port the role that writes LOG serves its metrics on (its last start).
metrics_port() {
	grep 'event=metrics_listening' "$1" | tail -n 1 | sed -E 's/.* port=([0-9]+).*/\1/'
}

# scrape LOG NAME: GET /metrics of that role into a new $T/scrape-NAME.* file; prints its path.
scrape() {
	local port f
	port=$(metrics_port "$1")
	f=$(mktemp "$T/scrape-$2.XXXXXX")
	curl -sS --max-time 10 -D "$f.headers" -o "$f" "http://127.0.0.1:$port/metrics"
	echo "$f"
}

# probe LOG PATH: the status and body of GET PATH on that role's metrics listener ("STATUS BODY...").
probe() {
	local port
	port=$(metrics_port "$1")
	curl -sS --max-time 20 -w ' %{http_code}' "http://127.0.0.1:$port$2" | tee -a "$T/outputs.log"
}

# ready_is LOG CODE [TEXT]: /readyz answers CODE (and its body holds TEXT).
ready_is() {
	local out
	out=$(probe "$1" /readyz) || return 1
	[[ "$out" == *" $2" ]] || return 1
	[ -z "${3:-}" ] || [[ "$out" == *"$3"* ]]
}

# value FILE SERIES: the sample of exactly that series (name{labels}), 0 when absent.
value() {
	awk -v k="$2" '$1 == k { v = $2 } END { print (v == "" ? 0 : v) }' "$1"
}

# answered_2xx FILE LABELS: the sum of coffer_http_requests_total{LABELS,status="2.."}.
answered_2xx() {
	grep -F "coffer_http_requests_total{$2,status=\"2" "$1" | awk '{ s += $2 } END { print s + 0 }'
}

# parses FILE: every line a "# HELP"/"# TYPE" comment or "name{labels} value";
# every sample's metric has a TYPE line before it; counters end in _total.
parses() {
	local f=$1 bad
	bad=$(grep -vE '^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*$' "$f" |
		grep -vE '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? (-?[0-9.]+([eE][-+]?[0-9]+)?|[-+]Inf|NaN)$' || true)
	if [ -n "$bad" ]; then
		echo "lines that do not parse in $f: $bad" >&2
		return 1
	fi
	awk '/^# TYPE / { type[$3] = $4; if ($4 == "counter" && $3 !~ /_total$/) { print "counter " $3; exit 1 } next }
	     /^#/ { next }
	     { n = $1; sub(/\{.*/, "", n); b = n; sub(/_(bucket|sum|count)$/, "", b)
	       if (!(n in type) && !((b in type) && type[b] == "histogram")) { print "no TYPE for " n; exit 1 } }' "$f"
	grep -q '^text/plain; version=0.0.4' <(grep -i '^content-type:' "$f.headers" | sed 's/^[^:]*: *//')
}

@test "metrics: the counters move by what happened, the text parses, no raw path, app name or canary" {
	agents_up 1
	local a0 k0 a1 k1 g1
	a0=$(scrape "$T/api.log" api)
	k0=$(scrape "$T/keeper.log" keeper)
	parses "$a0"
	parses "$k0"
	# two secrets sets, one bad token
	"$COFFER" apps create metricsapp >/dev/null
	"$COFFER" secrets set -a metricsapp A=1 >/dev/null
	"$COFFER" secrets set -a metricsapp B=2 >/dev/null
	run curl -sS -o /dev/null -w '%{http_code}' --cacert "$COFFER_CA" -H "Authorization: Bearer coffer_not_a_token" \
		"$API_URL/v1/apps"
	[ "$output" = 401 ]
	# an open the keeper refuses before deciding: no host signature
	run curl -sS -o /dev/null -w '%{http_code}' --cacert "$COFFER_CA" -X POST -H 'Content-Type: application/json' \
		--data '{}' "$KEEPER_URL/v1/open"
	[ "$output" = 401 ]
	# a deploy: one machine, its secrets opened by the keeper
	deploy metricsapp -- "$APP"
	[ "$status" -eq 0 ]
	wait_until 30 count_started metricsapp 1

	a1=$(scrape "$T/api.log" api)
	k1=$(scrape "$T/keeper.log" keeper)
	parses "$a1"
	parses "$k1"
	local set='role="api",route="/v1/apps/:app/secrets",method="POST"'
	[ "$(( $(answered_2xx "$a1" "$set") - $(answered_2xx "$a0" "$set") ))" -eq 2 ]
	local bad='coffer_http_requests_total{role="api",route="/v1/apps",method="GET",status="401"}'
	[ "$(( $(value "$a1" "$bad") - $(value "$a0" "$bad") ))" -eq 1 ]
	local ok='coffer_releases_total{outcome="succeeded"}'
	[ "$(( $(value "$a1" "$ok") - $(value "$a0" "$ok") ))" -eq 1 ]
	grep -q '^# TYPE coffer_release_lease_held gauge$' "$a1"
	[ "$(value "$a1" coffer_release_lease_held)" = 1 ] # the only api steps the release it just ran
	local opened='coffer_keeper_opens_total{outcome="opened",reason="ok"}'
	[ "$(( $(value "$k1" "$opened") - $(value "$k0" "$opened") ))" -ge 1 ]
	local refused='coffer_keeper_opens_total{outcome="refused",reason="before_open"}'
	[ "$(( $(value "$k1" "$refused") - $(value "$k0" "$refused") ))" -eq 1 ]
	local kopen='coffer_http_requests_total{role="keeper",route="/v1/open",method="POST",status="401"}'
	[ "$(( $(value "$k1" "$kopen") - $(value "$k0" "$kopen") ))" -eq 1 ]
	# a histogram's +Inf bucket is its count; the store was timed
	local lat='coffer_http_request_duration_seconds'
	local sel='{role="api",route="/v1/apps/:app/secrets"'
	[ "$(value "$a1" "${lat}_bucket${sel},le=\"+Inf\"}")" = "$(value "$a1" "${lat}_count${sel}}")" ]
	[ "$(value "$a1" "${lat}_count${sel}}")" -ge 2 ]
	[ "$(value "$a1" 'coffer_store_duration_seconds_count{op="query"}')" -gt \
		"$(value "$a0" 'coffer_store_duration_seconds_count{op="query"}')" ]
	[ "$(value "$k1" 'coffer_store_duration_seconds_count{op="commit"}')" -gt 0 ]
	# the agent: its machine running, both peers answering
	wait_until 20 eval '[ "$(value "$(scrape "$T/agent-h1.log" agent)" "coffer_agent_machines{state=\"running\"}")" = 1 ]'
	g1=$(scrape "$T/agent-h1.log" agent)
	parses "$g1"
	[ "$(value "$g1" 'coffer_agent_peer_up{peer="api"}')" = 1 ]
	[ "$(value "$g1" 'coffer_agent_peer_up{peer="keeper"}')" = 1 ]
	# no label holds a raw path, an id or the app's name; the canary never shows
	for f in "$a1" "$k1" "$g1"; do
		run ! grep -F metricsapp "$f"
		run ! grep -F "$CANARY" "$f"
		run ! grep -E 'route="[^"]*/[0-9a-f]{16,}' "$f"
	done
}

@test "health and readiness: /healthz, and /readyz follows the keeper and the api going away and back" {
	agents_up 1
	[ "$(probe "$T/api.log" /healthz)" = "ok
 200" ]
	[ "$(probe "$T/keeper.log" /healthz)" = "ok
 200" ]
	[ "$(probe "$T/agent-h1.log" /healthz)" = "ok
 200" ]
	ready_is "$T/keeper.log" 200 "store: ok"
	ready_is "$T/api.log" 200 "store: ok"
	ready_is "$T/api.log" 200 "keeper: ok"
	ready_is "$T/api.log" 200 "release_lease: held"
	wait_until 20 ready_is "$T/agent-h1.log" 200 "api: ok"
	ready_is "$T/agent-h1.log" 200 "keeper: ok"

	# the keeper stops answering (SIGSTOP): the api is not ready, naming the keeper
	STOPPED_PID=$KEEPER_PID
	kill -STOP "$KEEPER_PID"
	wait_until 30 ready_is "$T/api.log" 503 "keeper: unreachable"
	ready_is "$T/api.log" 503 "store: ok"
	kill -CONT "$KEEPER_PID"
	STOPPED_PID=
	wait_until 30 ready_is "$T/api.log" 200 "keeper: ok"

	# the api goes away: the agent's calls fail, it is not ready, naming the api; back when it returns
	stop_pids "$API_PID"
	wait_until 30 ready_is "$T/agent-h1.log" 503 "api: unreachable"
	api_start "${API_URL#https://}"
	wait_until 30 ready_is "$T/agent-h1.log" 200 "api: ok"
	ready_is "$T/api.log" 200
}
