#!/usr/bin/env bats
# The web dashboard under /ui (docs/DASHBOARD.md), in a real browser:
# Debian's headless Chromium driven through chromedriver's WebDriver
# protocol with curl and jq. It signs in with the admin token, loads the
# deployer key file (`coffer deployers export`), sets a secret through the
# form in an org that does NOT allow plaintext values (so only a value
# sealed and a change signed in the browser can pass), watches the release
# finish, sees the digest (the CLI's) and the audit entry naming the
# deployer, and checks that no page, no API response the browser got, no
# browser storage and no file of the browser's profile holds the value. No
# key, a malformed key file and a key file of another keeper: a clear
# message and nothing stored. A screenshot of each page goes to
# $COFFER_TEST_ARTEFACTS (else $T, removed on success). Also: the headers
# of every /ui answer (the CSP), 404 and 405 included, without a browser;
# the crypto alone is tests/unit/test_seal.js (meson test seal).

load helpers

bats_require_minimum_version 1.5.0

VALUE="$CANARY-dash"
CSP="default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

# one platform for both tests; the canary scan runs when it stops
setup_file() {
	platform_start
}

teardown_file() {
	platform_stop
}

setup() {
	SHOTS="${COFFER_TEST_ARTEFACTS:-$T}"
	mkdir -p "$SHOTS"
}

teardown() {
	echo "# $SECONDS browser_stop" >&3
	browser_stop
	run_stop
}

# headers_of PATH [METHOD]: the answer's status line and headers (lower-case names).
headers_of() {
	curl -sS -o /dev/null -D - -X "${2:-GET}" "$API_URL$1" | tr -d '\r' | sed 's/^[A-Za-z-]*:/\L&/'
}

@test "every /ui answer carries the CSP and the other headers, the server's 404 and 405 too" {
	for p in /ui /ui/ /ui/index.html /ui/app.js /ui/seal.js /ui/style.css /ui/nope.js /ui/a/b /ui/%2e%2e/api.c \
		"/ui POST" "/ui/app.js DELETE" "/ui/ FOO"; do
		h=$(headers_of $p)
		grep -qxF "content-security-policy: $CSP" <<<"$h" || { echo "$p: no CSP in: $h" >&2; return 1; }
		grep -qx 'x-content-type-options: nosniff' <<<"$h"
		grep -qx 'referrer-policy: no-referrer' <<<"$h"
		grep -qx 'cache-control: no-store' <<<"$h"
		grep -qx 'x-frame-options: DENY' <<<"$h"
	done
	[[ "$(headers_of /ui)" == "HTTP/"*" 200"* ]]
	grep -qx 'content-type: text/html; charset=utf-8' <<<"$(headers_of /ui/)"
	grep -qx 'content-type: text/javascript; charset=utf-8' <<<"$(headers_of /ui/app.js)"
	grep -qx 'content-type: text/javascript; charset=utf-8' <<<"$(headers_of /ui/seal.js)"
	grep -qx 'content-type: text/css; charset=utf-8' <<<"$(headers_of /ui/style.css)"
	# (a path outside the files, ../ included, is the server's own 404)
	for p in /ui/nope.js /ui/..%2Fapi.c /ui/%2e%2e/api.c /ui/index.htm /ui/a/b; do
		[[ "$(headers_of "$p")" == "HTTP/"*" 404"* ]]
	done
	h=$(headers_of /ui POST)
	[[ "$h" == "HTTP/"*" 405"* ]]
	grep -qx 'allow: GET' <<<"$h"
	# only /ui's answers: the API's own have no CSP (a prefix, not a substring)
	run ! grep -qi '^content-security-policy' <<<"$(headers_of /v1/apps) $(headers_of /uix)"
	# no inline script or style anywhere: the CSP would block them
	run ! grep -qiE '<script>|<script [^>]*>[^<]|<style|\sstyle=|\son[a-z]+=' <(curl -sS "$API_URL/ui")
	# the page needs no token; the API still does
	[ "$(curl -sS -o /dev/null -w '%{http_code}' "$API_URL/v1/apps")" = 401 ]
}

# ---- WebDriver (https://www.w3.org/TR/webdriver2/) over curl ----

# wd METHOD PATH [JSON]: a command of the session (PATH after /session/ID);
# prints its "value". The JSON comes through stdin when it is "-".
wd() {
	local out
	out=$(curl -sS --max-time 60 -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
		"$WD_URL/session/$WD_SESSION$2") || return 1
	jq -c --arg c "$1 $2" 'if (.value | type) == "object" and .value.error != null then
		("webdriver \($c): \(.value.error): \(.value.message)\n" | halt_error(1)) else .value end' <<<"$out"
}

browser_start() {
	local spki port
	# trust the platform's certificate by its key only (not every certificate)
	spki=$(openssl x509 -in "$TLS_SERVER_CERT" -pubkey -noout | openssl pkey -pubin -outform der |
		openssl dgst -sha256 -binary | base64)
	PROFILE="$T/chromium-profile"
	mkdir -p "$PROFILE"
	chromedriver --port=0 --log-level=WARNING >"$T/chromedriver.log" 2>&1 3>&- &
	WD_PID=$!
	wait_until 30 grep -q 'started successfully on port' "$T/chromedriver.log"
	port=$(sed -n 's/.*started successfully on port \([0-9]*\).*/\1/p' "$T/chromedriver.log")
	WD_URL="http://127.0.0.1:$port"
	WD_SESSION=$(jq -cn --arg profile "$PROFILE" --arg spki "$spki" '{capabilities: {alwaysMatch: {
		browserName: "chrome", "goog:loggingPrefs": {performance: "ALL", browser: "ALL"},
		"goog:chromeOptions": {binary: "/usr/bin/chromium", args: ["--headless=new", "--no-sandbox",
			"--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--window-size=1280,900",
			"--user-data-dir=\($profile)", "--ignore-certificate-errors-spki-list=\($spki)"]}}}}' |
		curl -sS --max-time 90 -H 'Content-Type: application/json' --data-binary @- "$WD_URL/session" |
		jq -r '.value.sessionId // empty')
	[ -n "$WD_SESSION" ] || { echo "no webdriver session: $(cat "$T/chromedriver.log")" >&2; return 1; }
}

browser_stop() {
	[ -n "${WD_SESSION:-}" ] && curl -sS --max-time 30 -X DELETE "$WD_URL/session/$WD_SESSION" >/dev/null 2>&1
	WD_SESSION=
	[ -n "${WD_PID:-}" ] && stop_pids "$WD_PID"
	WD_PID=
}

# find CSS: the element's WebDriver id.
find() {
	wd POST /element "$(jq -cn --arg s "$1" '{using: "css selector", value: $s}')" | jq -r 'to_entries[0].value'
}
click() { wd POST "/element/$(find "$1")/click" '{}' >/dev/null; }
# type CSS: types stdin into the element (stdin, so a value is never an argument)
type_in() {
	local id
	id=$(find "$1") || return 1
	jq -Rsc '{text: (. | rtrimstr("\n"))}' | curl -sS --max-time 30 -H 'Content-Type: application/json' \
		--data-binary @- "$WD_URL/session/$WD_SESSION/element/$id/value" | jq -e '.value == null' >/dev/null
}
# js SCRIPT [ARGS_JSON]: the value of a synchronous script
js() { wd POST /execute/sync "$(jq -cn --arg s "$1" --argjson a "${2:-[]}" '{script: $s, args: $a}')"; }
text_of() { js 'const e = document.querySelector(arguments[0]); return e ? e.textContent : null;' "$(jq -cn --arg s "$1" '[$s]')" | jq -r .; }
visible() { [ "$(js 'const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0;' "$(jq -cn --arg s "$1" '[$s]')")" = true ]; }
has_text() { [[ "$(text_of "$1")" == *"$2"* ]]; }

# shot NAME: a screenshot of the page as NAME.png in the artefacts folder
shot() {
	wd GET /screenshot | jq -r . | base64 -d >"$SHOTS/dashboard-$1.png"
	[ "$(head -c 8 "$SHOTS/dashboard-$1.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
}

WATCH='window.__seen = [];
new MutationObserver((ms) => {
	for (const m of ms) {
		if (m.type === "attributes") window.__seen.push(String(m.target.getAttribute(m.attributeName)));
		else if (m.type === "characterData") window.__seen.push(m.target.data);
		else for (const n of m.addedNodes) window.__seen.push(n.textContent || "");
	}
}).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});'

# no_value_in_page: neither the page's source nor its text, nor any input's
# value, nor sessionStorage, localStorage or the cookies hold the value.
no_value_in_page() {
	local seen
	seen=$(wd GET /source)
	[[ "$seen" != *"$CANARY"* ]] || { echo "the value is in the page source" >&2; return 1; }
	seen=$(js 'return JSON.stringify({text: document.body.innerText, ever: window.__seen,
		inputs: [...document.querySelectorAll("input")].map((i) => i.value),
		session: Object.entries(sessionStorage), local: Object.entries(localStorage), cookie: document.cookie});' |
		jq -r .)
	[[ "$seen" != *"$CANARY"* ]] || { echo "the value is (or was) in the page's text, inputs or storage" >&2; return 1; }
	[[ "$seen" == *'"ever":['* ]] || { echo "the page watch is not running" >&2; return 1; }
	seen=$(wd GET /cookie)
	[[ "$seen" != *"$CANARY"* ]] || { echo "the value is in a cookie" >&2; return 1; }
}

# set_through_form: types the value into the form, submits, checks the
# confirmation (it names the secret and the app, not the value), confirms.
set_through_form() {
	type_in '#secret-value' <<<"$VALUE"
	click '#secret-set'
	wait_until 10 visible '#confirm'
	has_text '#confirm-text' 'Set DASH_SECRET on canary?'
	no_value_in_page
	click '#confirm-ok'
}

# outcome_final: the change's outcome is final (succeeded, failed or an error)
outcome_final() {
	[[ "$(js 'return document.getElementById("outcome").dataset.state')" =~ ^\"(succeeded|failed|error)\"$ ]]
}

# load_key FILE: chooses FILE in the deployer key's file input.
load_key() {
	type_in '#key-file' <<<"$1"
}
key_loaded() { [ "$(js 'return document.getElementById("key-status").dataset.loaded')" = '"true"' ]; }
# set_disabled: the set button and every unset button are off
set_disabled() {
	[ "$(js 'return [document.getElementById("secret-set").disabled,
		[...document.querySelectorAll("button[data-unset]")].every((b) => b.disabled)]')" = '[true,true]' ]
}
# no_dash_secret: the api stored nothing of DASH_SECRET
no_dash_secret() {
	[ "$(api_get /v1/apps/canary/secrets | jq '[.secrets[] | select(.name == "DASH_SECRET")] | length')" = 0 ]
}

@test "the dashboard in Chromium: sign in, set a secret, watch its release; the value stays out of the browser" {
	if [ -z "$(command -v chromium)" ] || [ -z "$(command -v chromedriver)" ]; then
		[ -z "${CI:-}" ] || { echo "CI needs chromium and chromium-driver (scripts/deps.sh)" >&2; return 1; }
		skip "chromium and chromium-driver are not installed (scripts/deps.sh)"
	fi
	echo "# $SECONDS agents_up 1" >&3
	agents_up 1
	deploy canary -- "$APPS_DIR/app.sh"
	[ "$status" -eq 0 ]
	wait_until 30 count_started canary 1
	# the key file for the browser: the CLI's deployer key and the keeper key it pinned, 0600, never overwritten
	run_logged "$COFFER" deployers export "$T/browser-key.json"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Wrote deployer $(deployer_id)'s key"* ]]
	[ "$(stat -c %a "$T/browser-key.json")" = 600 ]
	jq -e --arg id "$(deployer_id)" --arg k "$(jq -r .keeper_public_key "$COFFER_CONFIG")" \
		'.kind == "coffer deployer key v1" and .deployer_id == $id and .keeper_public_key == $k' "$T/browser-key.json"
	run_logged "$COFFER" deployers export "$T/browser-key.json"
	[ "$status" -ne 0 ]
	[[ "$output" == *"browser-key.json' exists: export writes a new file only"* ]]
	# a file that is not a key file; one whose keeper key is another (the deployer's own)
	jq 'del(.key)' "$T/browser-key.json" >"$T/bad-key.json"
	jq '.keeper_public_key = .public_key' "$T/browser-key.json" >"$T/other-keeper.json"
	echo "# $SECONDS browser_start" >&3
	browser_start

	# sign in
	# every text and attribute the page ever shows, kept from its first
	# moment (DevTools runs this outside the page's CSP): a value shown for
	# an instant is caught too
	wd POST /goog/cdp/execute "$(jq -cn --arg s "$WATCH" '{cmd: "Page.addScriptToEvaluateOnNewDocument", params: {source: $s}}')" >/dev/null
	wd POST /url "$(jq -cn --arg u "$API_URL/ui" '{url: $u}')" >/dev/null
	wait_until 60 visible '#token'
	shot signin
	type_in '#token' <<<"$ADMIN_TOKEN"
	click '#signin'
	wait_until 20 visible '#apps tr[data-app="canary"]'
	shot apps
	echo "# $SECONDS signed in" >&3
	# the token is in this tab's sessionStorage only
	[ "$(js 'return [sessionStorage.getItem("coffer.token") === arguments[0], localStorage.length, document.cookie];' \
		"$(jq -cn --arg t "$ADMIN_TOKEN" '[$t]')")" = '[true,0,""]' ]

	# set DASH_SECRET through the form, confirm, watch the release
	click '#apps tr[data-app="canary"] a'
	wait_until 20 visible '#secrets tr[data-name="CANARY_SECRET"]'
	before=$(latest_release canary)
	type_in '#secret-name' <<<DASH_SECRET
	# no key loaded: set and unset are off, and the page says why
	has_text '#key-status' 'No deployer key loaded: set and unset are off (coffer deployers export FILE'
	set_disabled
	shot nokey
	# a file that is not a key file: named, not loaded
	load_key "$T/bad-key.json"
	wait_until 10 has_text '#key-status' 'Not loaded: "key" in the key file is not 32 bytes of base64url.'
	set_disabled
	# a key file of another keeper: the app key does not check, nothing is sent
	load_key "$T/other-keeper.json"
	wait_until 10 key_loaded
	set_through_form
	wait_until 30 has_text '#outcome' "Set DASH_SECRET failed: the app's public key is not signed by the keeper of your key file"
	has_text '#outcome' 'nothing was sent'
	shot refused
	[ "$(latest_release canary)" = "$before" ]
	no_dash_secret
	# the org does not allow plaintext values: only the browser's sealed, signed change passes
	load_key "$T/browser-key.json"
	wait_until 10 has_text '#key-status' "Deployer key loaded: $(deployer_id) (org "
	# a non-extractable key in this tab's memory: nothing in its storage
	[ "$(js 'return [localStorage.length, sessionStorage.length]')" = '[0,1]' ]
	set_through_form
	echo "# $SECONDS confirmed" >&3
	# the release ends (a value the keeper cannot open fails it): then it must have succeeded
	wait_until 90 outcome_final
	[ "$(js 'return document.getElementById("outcome").dataset.state')" = '"succeeded"' ] ||
		{ echo "the release did not succeed: $(text_of '#outcome')" >&2; return 1; }
	release=$(latest_release canary)
	[ "$release" -gt "$before" ]
	has_text '#outcome' "Set DASH_SECRET: release v$release succeeded"
	echo "# $SECONDS wait_until 30 machine_env_is canary DASH_SECRET" >&3
	wait_until 30 machine_env_is canary DASH_SECRET "$VALUE"
	# the new digest, as the CLI lists it (the browser's keyed digest), on the page
	digest=$("$COFFER" secrets list -a canary --json | jq -r '.[] | select(.name == "DASH_SECRET") | .digest')
	[[ "$digest" =~ ^[0-9a-f]{32}$ ]]
	# the same value set by the CLI is unchanged: the digests agree
	run_logged cli secrets set -a canary DASH_SECRET=- <<<"$VALUE"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Nothing changed: the secrets are already as given"* ]]
	wait_until 20 has_text '#secrets tr[data-name="DASH_SECRET"] td.digest' "$digest"
	has_text '#secrets tr[data-name="DASH_SECRET"]' deployed
	no_value_in_page
	shot secrets
	echo "# $SECONDS secrets" >&3

	click '#tabs a[data-tab="releases"]'
	wait_until 20 has_text "#releases tr[data-version=\"$release\"]" succeeded
	shot releases
	click '#tabs a[data-tab="machines"]'
	wait_until 20 has_text '#machines' started
	shot machines
	click '#tabs a[data-tab="audit"]'
	wait_until 20 has_text '#audit-verify' 'Audit chain verified'
	wait_until 20 visible '#audit tr[data-action="secrets.set"]'
	has_text '#audit tr[data-action="secrets.set"]' DASH_SECRET
	has_text '#audit tr[data-action="secrets.set"]' "$digest"
	has_text '#audit tr[data-action="secrets.set"]' "\"deployer\":\"$(deployer_id)\""
	no_value_in_page
	echo "# $SECONDS shot audit" >&3
	shot audit

	# a refusal is shown as the api says it: an unknown app's route is 404
	# (an app limit)
	wd POST /url "$(jq -cn --arg u "$API_URL/ui#/apps/nosuch/secrets" '{url: $u}')" >/dev/null
	wait_until 20 has_text '#error' 'Error 404: app'
	shot error

	# a read token: the pages, and the api's 403s shown as such
	click '#signout'
	wait_until 20 visible '#token'
	read_token=$(curl -sS -H "Authorization: Bearer $ADMIN_TOKEN" --data-binary '{"role": "read"}' \
		"$API_URL/v1/tokens" | jq -r .token)
	type_in '#token' <<<"$read_token"
	click '#signin'
	wait_until 20 visible '#apps tr[data-app="canary"]'
	click '#apps tr[data-app="canary"] a'
	wait_until 20 visible '#secrets tr[data-name="DASH_SECRET"]'
	# signing out dropped the key: load it again
	set_disabled
	load_key "$T/browser-key.json"
	wait_until 10 key_loaded
	click '#secrets tr[data-name="DASH_SECRET"] button'
	wait_until 10 visible '#confirm'
	has_text '#confirm-text' 'Unset DASH_SECRET on canary?'
	click '#confirm-ok'
	wait_until 20 has_text '#outcome' 'Unset DASH_SECRET failed (403)'
	shot forbidden
	click '#tabs a[data-tab="audit"]'
	wait_until 20 has_text '#error' 'Not allowed (403)'
	[ "$(latest_release canary)" = "$release" ]

	# every API response the browser got (from its network log): none holds the value
	wd POST /se/log '{"type": "performance"}' |
		jq -r '.[].message | fromjson | .message | select(.method == "Network.responseReceived") |
			.params | select(.response.url | startswith("'"$API_URL"'/")) | "\(.requestId) \(.response.url)"' |
		awk '!seen[$2]++ || $2 ~ /\/secrets$/' >"$T/responses.txt" # the polls: one of each URL
	grep -q "/v1/apps/canary/secrets\$" "$T/responses.txt"
	grep -q "/v1/audit/verify\$" "$T/responses.txt"
	grep -q "/ui/app.js\$" "$T/responses.txt"
	checked=0
	while read -r id url; do
		body=$(wd POST /goog/cdp/execute "$(jq -cn --arg id "$id" '{cmd: "Network.getResponseBody", params: {requestId: $id}}')") ||
			continue # a redirect or an evicted body: the ones that matter are below
		[[ "$body" != *"$CANARY"* ]] || { echo "the value is in the response of $url" >&2; return 1; }
		checked=$((checked + 1))
	done <"$T/responses.txt"
	[ "$checked" -ge 8 ]
	# no CSP violation or script error in the console
	run ! grep -iE 'content security policy|uncaught' <<<"$(wd POST /se/log '{"type": "browser"}')"

	# the browser closed, nothing in its profile holds the value (the canary scan of $T covers it too)
	browser_stop
	run ! grep -rlaF -- "$CANARY" "$PROFILE"
	ls "$SHOTS"/dashboard-{signin,apps,nokey,refused,secrets,releases,machines,audit,error,forbidden}.png
}
