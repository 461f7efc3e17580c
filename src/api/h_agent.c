/*
 * h_agent.c — the agents' routes (docs/RUNPATH.md "Agent <-> api"), each
 * signed by a host (the gate verified the signature and the host row's
 * certificate; api_auth_of(req)->host is that row):
 *   GET  /v1/agent/assignments?after=G&wait=S   the host's machines (long poll),
 *                                               each with a fresh boot token
 *   POST /v1/agent/machines/:id/boot-token      a boot token for one of them
 *                                               (the agent's fallback)
 *   POST /v1/agent/machines/:id/events          what one of them did
 * A host only ever sees or touches machines placed on it: any other id is
 * 404, whether it exists or not. What an agent acts on (the assignments and
 * a boot token) is answered signed (answersig.h) with the boot-token key,
 * for the host id and the nonce of the request it answers.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "answersig.h"
#include "api.h"
#include "boottoken.h"
#include "log.h"
#include "parse.h"
#include "release.h"
#include "banned.h"

#define WAIT_DEFAULT_S 25
#define WAIT_MAX_S 30
#define GENERATION_BYTES 8
#define GENERATION_LEN (GENERATION_BYTES * 2)
#define GENERATION_SIZE (GENERATION_LEN + 1)
#define MS_PER_S 1000
#define PID_MAX INT32_MAX
#define EXIT_STATUS_MAX 255
#define EXIT_SIGNAL_MAX 128
#define ANSWER_MAX ((size_t)4 << 20) /* the agent's AGENT_ASSIGNMENTS_MAX */

static const char *const empty_fields[] = { NULL };
static const char *const event_fields[] = { "state",	   "release", "pid", "exit_status", "exit_signal",
					    "started_at", "tail",    NULL };
/* What an agent may say; created and destroyed are the api's to set. */
static const char *const agent_states[] = { "starting", "started", "stopping", "stopped", "failed" };

static int hex_ok(const char *s, size_t len)
{
	if (strlen(s) != len)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/*
 * Answers 200 with doc (consumed), its exact bytes signed for the host and
 * the nonce of its request (answersig.h). Without the boot key there is
 * nothing an agent would accept: 503.
 */
static enum coffer_err signed_reply(struct http_request *req, const struct api_auth *a, json_t *doc)
{
	char sig[ANSWERSIG_B64_SIZE];
	struct buf text;
	enum coffer_err rc;

	if (!doc)
		return http_reply_error(req, COFFER_ERR_NOMEM, NULL);
	if (!a->api->boot_sk) {
		json_decref(doc);
		return api_fail(req, COFFER_ERR_UNAVAILABLE, "the api has no boot key (--boot-key) to sign with");
	}
	/* it may carry boot tokens: wiped when freed */
	buf_init_wiping(&text, ANSWER_MAX);
	rc = json_dump_buf(doc, &text);
	json_decref(doc);
	if (!rc)
		rc = answersig_sign(a->api->boot_sk, a->host.id, http_request_header(req, HOSTAUTH_HEADER_NONCE), 200,
				    text.ptr, text.len, sig);
	if (!rc)
		rc = http_reply(req, 200, "application/json", text.ptr, text.len);
	if (!rc)
		rc = http_reply_header(req, ANSWERSIG_HEADER, sig);
	buf_release(&text);
	return rc ? http_reply_error(req, COFFER_ERR_INTERNAL, NULL) : COFFER_OK;
}

/* ---- the assignment document ---- */

/*
 * One machine's M (RUNPATH.md), or *out NULL when it has nothing to run (its
 * app or release is gone). "config" is the release's config text exactly as
 * stored and signed: the agent takes the command, environment and grace from
 * it and opens its delivery with its hash, so it is never re-encoded here.
 */
static enum coffer_err machine_doc(struct store *s, const struct store_machine *m, struct store_app *app,
				   json_t **out)
{
	struct store_release r = { 0 };
	char spec[RELEASE_SPEC_SIZE];
	enum coffer_err rc = COFFER_OK;

	*out = NULL;
	if (strcmp(app->id, m->app_id) != 0)
		rc = store_app_get(s, m->app_id, app);
	if (!rc)
		rc = store_release_get(s, m->app_id, m->desired_release, &r);
	if (rc == COFFER_ERR_NOT_FOUND) {
		app->id[0] = '\0';
		rc = COFFER_OK;
		goto out;
	}
	if (rc)
		goto out;
	if (release_spec(m->app_id, r.config, r.secrets_version, spec)) {
		log_warn("release_config_unreadable", LF_S("app_id", m->app_id), LF_I("release", r.version));
		goto out; /* nothing the agent could run */
	}
	*out = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "id", m->id, "app", app->name, "app_id", m->app_id,
			 "release", (json_int_t)m->desired_release, "secrets_version", (json_int_t)r.secrets_version,
			 "spec", spec, "config", r.config);
	if (!*out)
		rc = COFFER_ERR_NOMEM;
out:
	store_release_clear(&r);
	return rc;
}

/* The host's machines array and its generation. */
static enum coffer_err assignments(struct store *s, const char *host_id, json_t **out, char gen[GENERATION_SIZE])
{
	struct store_machine_list ml = { 0 };
	struct store_app app = { 0 };
	unsigned char hash[crypto_hash_sha256_BYTES];
	json_t *list = json_array();
	char *text = NULL;
	enum coffer_err rc = list ? store_machine_list_by_host(s, host_id, &ml) : COFFER_ERR_NOMEM;
	for (size_t i = 0; !rc && i < ml.n; i++) {
		json_t *item = NULL;
		if (ml.items[i].desired_release == 0 || strcmp(ml.items[i].state, "destroyed") == 0)
			continue;
		rc = machine_doc(s, &ml.items[i], &app, &item);
		if (!rc && item && json_array_append_new(list, item))
			rc = COFFER_ERR_NOMEM;
	}
	if (!rc) {
		text = json_dumps(list, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text)
			rc = COFFER_ERR_NOMEM;
	}
	if (!rc) {
		crypto_hash_sha256(hash, (const unsigned char *)text, strlen(text));
		sodium_bin2hex(gen, GENERATION_SIZE, hash, GENERATION_BYTES);
		*out = list;
		list = NULL;
	}
	free(text);
	json_decref(list);
	store_machine_list_release(&ml);
	return rc;
}

/* Gives the request's store connection back while it waits, so long polls do not hold the pool. */
static void put_store(struct api_auth *a)
{
	if (a->store)
		store_pool_release(a->api->pool, a->store, a->store_rc);
	a->store = NULL;
	a->store_rc = COFFER_OK;
}

/*
 * Puts a boot token for its desired release ("boot_token", "boot_token_exp")
 * in each machine entry, after the generation was computed without them: a
 * token alone never changes the generation. Minted per answer and not
 * audited one by one (the keeper audits every open, refused or not; a token
 * is useless without the host's private key). Without a boot key the
 * entries go without tokens and the agent asks the boot-token route (503).
 */
static enum coffer_err add_tokens(const struct api_auth *a, json_t *machines)
{
	struct boottoken_claims in, minted;
	struct buf token;
	size_t i;
	json_t *m;
	enum coffer_err rc = COFFER_OK;
	int64_t now = (int64_t)time(NULL);

	if (!a->api->boot_sk)
		return COFFER_OK;
	buf_init_wiping(&token, JWS_TOKEN_MAX);
	json_array_foreach(machines, i, m) {
		const char *id = json_string_value(json_object_get(m, "id"));
		const char *app_id = json_string_value(json_object_get(m, "app_id"));
		json_int_t release = json_integer_value(json_object_get(m, "release"));
		json_int_t secrets_version = json_integer_value(json_object_get(m, "secrets_version"));
		memset(&in, 0, sizeof(in));
		if (!id || !app_id || release <= 0 || secrets_version < 0 || str_copy(in.app, sizeof(in.app), app_id) ||
		    str_copy(in.machine, sizeof(in.machine), id) || str_copy(in.host, sizeof(in.host), a->host.id)) {
			rc = COFFER_ERR_INTERNAL;
			break;
		}
		in.release = (uint64_t)release;
		in.secrets_version = (uint64_t)secrets_version;
		rc = boottoken_mint(a->api->boot_sk, &in, now, &token, &minted);
		if (rc) {
			log_error("boot_token_mint_failed", LF_S("machine", id), LF_S("error", coffer_err_name(rc)));
			rc = COFFER_ERR_INTERNAL;
			break;
		}
		if (json_object_set_new(m, "boot_token", json_stringn(token.ptr, token.len)) ||
		    json_object_set_new(m, "boot_token_exp", json_integer((json_int_t)minted.exp))) {
			rc = COFFER_ERR_NOMEM;
			break;
		}
	}
	buf_release(&token);
	return rc;
}

enum coffer_err h_agent_assignments(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct release_ctl *ctl = a->api->ctl;
	const char *after = http_request_query(req, "after");
	const char *wait_text = http_request_query(req, "wait");
	uint64_t wait_s = WAIT_DEFAULT_S;
	char gen[GENERATION_SIZE];
	json_t *machines = NULL;
	enum coffer_err rc;
	(void)ctx;

	if (after && *after && !hex_ok(after, GENERATION_LEN))
		return http_reply_error(req, COFFER_ERR_INVALID, "after must be a generation (16 hex characters)");
	if (wait_text && (parse_uint64(wait_text, WAIT_MAX_S, &wait_s) || wait_s < 1))
		return http_reply_error(req, COFFER_ERR_INVALID, "wait must be 1 to 30 seconds");
	/*
	 * Parked between checks, not waiting on a thread: woken by a change in
	 * this api, and re-run every RELEASE_POLL_RECHECK_MS for another api's.
	 * The ticket comes before the read, so a change between the two wakes
	 * the park at once.
	 */
	struct http_waitq *q = release_assignments_queue(ctl);
	uint64_t ticket = http_waitq_ticket(q);
	int64_t left = (int64_t)wait_s * MS_PER_S - http_request_age_ms(req);
	if (!a->store) {
		rc = store_pool_acquire(a->api->pool, &a->store);
		if (rc) {
			a->store = NULL;
			return http_reply_error(req, rc, NULL);
		}
	}
	rc = api_note(a, assignments(a->store, a->host.id, &machines, gen));
	if (rc)
		return http_reply_error(req, rc, NULL);
	if (after && *after && strcmp(gen, after) == 0 && left > 0 && !release_ctl_stopping(ctl)) {
		put_store(a); /* nothing held while parked */
		if (!http_request_park_key(req, q, ticket, left < RELEASE_POLL_RECHECK_MS ? left : RELEASE_POLL_RECHECK_MS,
					   release_host_key(a->host.id))) {
			json_decref(machines);
			return COFFER_OK;
		}
		/* the server is stopping: answer with what there is */
	}
	rc = add_tokens(a, machines);
	if (rc) {
		json_decref(machines);
		return http_reply_error(req, rc, NULL);
	}
	return signed_reply(req, a, json_pack("{s:s,s:o}", "generation", gen, "machines", machines));
}

/* ---- one machine of this host ---- */

/* The machine :id if it is on the signing host and not destroyed; else the error is answered. */
static enum coffer_err host_machine(struct http_request *req, struct api_auth *a, struct store_machine *out)
{
	const char *id = http_request_param(req, "id");
	enum coffer_err rc;
	if (!id || !hex_ok(id, STORE_ID_LEN))
		return http_reply_error(req, COFFER_ERR_NOT_FOUND, "machine not found on this host");
	rc = api_note(a, store_machine_get(a->store, id, out));
	if (rc == COFFER_OK && strcmp(out->host_id, a->host.id) != 0)
		rc = COFFER_ERR_NOT_FOUND; /* another host's: the same answer as none */
	if (rc == COFFER_ERR_NOT_FOUND)
		return api_fail(req, rc, "machine '%s' not found on this host", id);
	if (rc == COFFER_ERR_TAMPERED)
		return api_fail(req, rc, "machine '%s': its stored row failed authentication (tampered)", id);
	if (rc)
		return http_reply_error(req, rc, NULL);
	if (strcmp(out->state, "destroyed") == 0)
		return api_fail(req, COFFER_ERR_CONFLICT, "machine '%s' is destroyed", id);
	return COFFER_OK;
}

enum coffer_err h_agent_boot_token(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_machine m;
	struct store_release r = { 0 };
	struct store_app app;
	struct boottoken_claims in = { 0 }, minted;
	struct buf token;
	json_t *doc = NULL;
	enum coffer_err rc;
	(void)ctx;

	buf_init_wiping(&token, JWS_TOKEN_MAX);
	rc = api_body(req, empty_fields, &doc);
	if (rc)
		goto out;
	const char *id = http_request_param(req, "id");
	api_audit_note(req, NULL, json_pack("{s:s}", "machine", id && hex_ok(id, STORE_ID_LEN) ? id : ""));
	if (!a->api->boot_sk) {
		rc = api_fail(req, COFFER_ERR_UNAVAILABLE, "the api has no boot key (--boot-key)");
		goto out;
	}
	rc = host_machine(req, a, &m);
	if (rc)
		goto out;
	rc = api_note(a, store_app_get(a->store, m.app_id, &app));
	if (!rc && m.desired_release == 0)
		rc = COFFER_ERR_CONFLICT;
	if (!rc)
		rc = api_note(a, store_release_get(a->store, m.app_id, m.desired_release, &r));
	if (rc == COFFER_ERR_CONFLICT || rc == COFFER_ERR_NOT_FOUND) {
		rc = api_fail(req, COFFER_ERR_CONFLICT, "machine '%s' has no release to run", m.id);
		goto out;
	}
	if (rc == COFFER_ERR_TAMPERED) {
		rc = api_fail(req, rc, "release %llu of machine '%s': its stored row failed authentication (tampered)",
			      (unsigned long long)m.desired_release, m.id);
		goto out;
	}
	if (rc) {
		rc = http_reply_error(req, rc, NULL);
		goto out;
	}
	if (str_copy(in.app, sizeof(in.app), m.app_id) || str_copy(in.machine, sizeof(in.machine), m.id) ||
	    str_copy(in.host, sizeof(in.host), a->host.id)) {
		rc = http_reply_error(req, COFFER_ERR_INTERNAL, NULL);
		goto out;
	}
	in.release = m.desired_release;
	in.secrets_version = r.secrets_version;
	rc = boottoken_mint(a->api->boot_sk, &in, (int64_t)time(NULL), &token, &minted);
	if (rc) {
		log_error("boot_token_mint_failed", LF_S("machine", m.id), LF_S("error", coffer_err_name(rc)));
		rc = http_reply_error(req, COFFER_ERR_INTERNAL, NULL);
		goto out;
	}
	/* names the token by its jti, never by its text */
	api_audit_note(req, app.name,
		       json_pack("{s:s,s:s,s:I,s:I,s:s}", "machine", m.id, "host_id", a->host.id, "release",
				 (json_int_t)in.release, "secrets_version", (json_int_t)in.secrets_version, "jti",
				 minted.jti));
	rc = signed_reply(req, a, json_pack("{s:s%,s:I}", "token", token.ptr, token.len, "exp", (json_int_t)minted.exp));
out:
	buf_release(&token);
	store_release_clear(&r);
	json_decref(doc);
	return rc;
}

/* An optional integer field in [min, max]; null or absent leaves *out. */
static enum coffer_err opt_int(const json_t *doc, const char *key, int64_t min, int64_t max, int64_t *out,
			       struct json_error *jerr)
{
	if (json_is_null(json_object_get(doc, key)))
		return COFFER_OK;
	return json_get_int(doc, key, 0, min, max, out, jerr);
}

enum coffer_err h_agent_events(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_machine m;
	struct json_error jerr;
	json_t *doc = NULL;
	const char *state = NULL, *tail = NULL;
	size_t tail_len = 0;
	int64_t release = 0, pid = 0, exit_status = -1, exit_signal = 0, started_at = 0;
	int known = 0;
	enum coffer_err rc;
	(void)ctx;

	rc = api_body(req, event_fields, &doc);
	if (rc)
		return rc;
	if ((rc = json_get_string(doc, "state", 1, &state, NULL, &jerr)) ||
	    (rc = json_get_int(doc, "release", 1, 0, INT64_MAX, &release, &jerr)) ||
	    (rc = opt_int(doc, "pid", 0, PID_MAX, &pid, &jerr)) ||
	    (rc = opt_int(doc, "exit_status", -1, EXIT_STATUS_MAX, &exit_status, &jerr)) ||
	    (rc = opt_int(doc, "exit_signal", 0, EXIT_SIGNAL_MAX, &exit_signal, &jerr)) ||
	    (rc = opt_int(doc, "started_at", 0, INT64_MAX, &started_at, &jerr)) ||
	    (!json_is_null(json_object_get(doc, "tail")) &&
	     (rc = json_get_string(doc, "tail", 0, &tail, &tail_len, &jerr)))) {
		rc = api_fail(req, rc, "invalid request body: %s", jerr.message);
		goto out;
	}
	for (size_t i = 0; i < sizeof(agent_states) / sizeof(agent_states[0]); i++)
		known |= strcmp(state, agent_states[i]) == 0;
	if (!known) {
		rc = http_reply_error(req, COFFER_ERR_INVALID,
				      "state must be one of starting, started, stopping, stopped, failed");
		goto out;
	}
	if (tail_len > RELEASE_TAIL_MAX) {
		rc = api_fail(req, COFFER_ERR_TOO_LARGE, "tail must be at most %zu bytes", (size_t)RELEASE_TAIL_MAX);
		goto out;
	}
	if (strcmp(state, "started") == 0 && started_at == 0) {
		rc = http_reply_error(req, COFFER_ERR_INVALID, "a started event needs started_at");
		goto out;
	}
	rc = host_machine(req, a, &m);
	if (rc)
		goto out;
	int ended = strcmp(state, "stopped") == 0 || strcmp(state, "failed") == 0;
	rc = api_note(a, store_tx_begin(a->store));
	if (!rc) {
		rc = store_machine_report(a->store, m.id, state, (uint64_t)release, pid, (int)exit_status,
					  (int)exit_signal, started_at);
		/* an exit's tail replaces the last one; no tail clears it, so no stale output is shown */
		if (!rc && ended)
			rc = store_machine_set_tail(a->store, m.id, tail);
		rc = api_note(a, store_tx_end(a->store, rc));
	}
	if (rc == COFFER_ERR_CONFLICT) {
		rc = api_fail(req, rc, "machine '%s' is destroyed", m.id);
		goto out;
	}
	if (rc) {
		rc = http_reply_error(req, rc, NULL);
		goto out;
	}
	log_debug("machine_event", LF_S("machine", m.id), LF_S("state", state), LF_I("release", release));
	release_ctl_wake(a->api->ctl);
	rc = api_reply(req, 200, json_object());
out:
	json_decref(doc);
	return rc;
}
