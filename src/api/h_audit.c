/*
 * h_audit.c — the audit trail: the api's part of the shared audit phase
 * (http_phase.h), which writes one event per audited request just before
 * the answer leaves (so a client that reads the log after an answer finds
 * the event), refusals included, and asks the keeper to anchor it; and GET
 * /v1/audit, GET|POST /v1/audit/verify (the chain, and that it holds the
 * keeper's signed head and a saved one), GET /v1/audit/head.
 *
 * An event: org, actor (token id, "host:<id>" or "anonymous"), action (the
 * route's name), app, detail (JSON: names and digests, never values or
 * tokens), outcome ("ok", "denied:<code>", "error:<code>": the phase's one
 * rule), request id. This file adds the org and the app.
 */
#include <string.h>

#include <sodium.h>

#include "api.h"
#include "log.h"
#include "parse.h"
#include "banned.h"

enum coffer_err api_audit_event(void *ctx, struct http_request *req, const struct http_route *route,
				const struct http_caller *c, struct store_audit_event *ev)
{
	struct api *api = ctx;
	struct api_auth *a = c ? c->role : NULL;
	struct store *s = a ? a->store : NULL;
	struct store_token who;
	char actor[HTTP_ACTOR_MAX];
	const char *param;
	enum coffer_err rc = COFFER_OK, store_rc = COFFER_OK;

	if (!s) {
		rc = store_pool_acquire(api->pool, &s);
		if (rc)
			return rc;
	}
	ev->org_id = ""; /* hosts belong to no org: their events have org "" */
	if (a && a->authenticated) {
		ev->org_id = a->token.org_id;
	} else if (!(c && c->kind == HTTP_CALLER_HOST) && !(a && a->store)) {
		/* Refused before the gate (e.g. a body too large): who sent it, if a token says so. */
		store_rc = api_identify(s, req, &who);
		if (store_rc == COFFER_OK) {
			rc = api_token_id(who.id, actor);
			if (rc)
				goto out;
			ev->actor = actor;
			ev->org_id = who.org_id;
			if (http_request_set_actor(req, actor))
				log_warn("http_actor_failed");
		}
	}
	if (!ev->app[0]) {
		if (a && a->has_app)
			ev->app = a->app.name;
		else if ((route->flags & API_ROUTE_APP) && (param = http_request_param(req, "app")) &&
			 api_app_name_ok(param))
			ev->app = param;
	}
	rc = store_group_audit_append(s, ev, NULL);
	if (rc == COFFER_ERR_UNAVAILABLE)
		store_rc = rc;
	if (rc == COFFER_OK)
		anchor_poker_poke(api->anchor_poker); /* the keeper anchors it soon, in a batch */
out:
	if (a && a->store)
		api_note(a, store_rc);
	else
		store_pool_release(api->pool, s, store_rc);
	return rc;
}

enum coffer_err api_audit_ok_event(struct http_request *req, char outcome[HTTP_AUDIT_OUTCOME_MAX],
				   struct buf *detail, struct store_audit_event *ev)
{
	struct api_auth *a = api_auth_of(req);
	enum coffer_err rc = http_phase_event(req, 200, COFFER_OK, outcome, detail, ev);
	if (rc)
		return rc;
	ev->org_id = a->token.org_id;
	if (!ev->app[0] && a->has_app)
		ev->app = a->app.name;
	return COFFER_OK;
}

void api_audited(struct http_request *req)
{
	struct api_auth *a = api_auth_of(req);
	http_phase_audited(req);
	anchor_poker_poke(a->api->anchor_poker);
}

static json_t *event_json(const struct store_audit_row *r)
{
	json_t *detail = NULL;
	const char *text = r->ev.detail ? r->ev.detail : "";
	if (json_parse_limited(text, strlen(text), STORE_AUDIT_FIELD_MAX, JSON_MAX_DEPTH_DEFAULT, &detail, NULL))
		detail = json_string(text); /* not JSON: shown as written */
	return json_pack("{s:I,s:o,s:s,s:s,s:s,s:o,s:s,s:s}", "seq", (json_int_t)r->seq, "ts", api_json_time(r->ev.ts),
			 "actor", r->ev.actor ? r->ev.actor : "", "action", r->ev.action ? r->ev.action : "", "app",
			 r->ev.app ? r->ev.app : "", "detail", detail, "outcome", r->ev.outcome ? r->ev.outcome : "",
			 "request_id", r->ev.request_id ? r->ev.request_id : "");
}

enum coffer_err h_audit_list(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_audit_list events = { 0 };
	struct store_audit_filter f = { .org_id = a->token.org_id, .limit = API_AUDIT_LIMIT_DEFAULT };
	const char *app = http_request_query(req, "app");
	const char *after = http_request_query(req, "after");
	const char *limit = http_request_query(req, "limit");
	uint64_t n;
	json_t *list = NULL;
	enum coffer_err rc;
	(void)ctx;

	if (app && *app) {
		if (!api_app_name_ok(app))
			return http_reply_error(req, COFFER_ERR_INVALID, "app must match " API_APP_NAME_RULE);
		f.app = app;
	}
	if (after && parse_uint64(after, INT64_MAX, &f.after_seq))
		return http_reply_error(req, COFFER_ERR_INVALID, "after must be an event number");
	if (limit) {
		if (parse_uint64(limit, STORE_AUDIT_LIST_MAX, &n) || n == 0)
			return api_fail(req, COFFER_ERR_INVALID, "limit must be a number from 1 to %d", STORE_AUDIT_LIST_MAX);
		f.limit = (size_t)n;
	}
	/* one more than asked, to tell whether there is a next page */
	size_t want = f.limit;
	if (f.limit < STORE_AUDIT_LIST_MAX)
		f.limit++;
	rc = api_note(a, store_audit_list(a->store, &f, &events));
	if (rc)
		goto out;
	list = json_array();
	if (!list) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	/* a page holds at most `want` events and, past the first, API_AUDIT_PAGE_BYTES of detail */
	size_t bytes = 0, i;
	for (i = 0; i < events.n && i < want; i++) {
		const struct store_audit_row *r = &events.items[i];
		bytes += strlen(r->ev.detail ? r->ev.detail : "") + API_AUDIT_ROW_OVERHEAD;
		if (i > 0 && bytes > API_AUDIT_PAGE_BYTES)
			break;
		json_t *item = event_json(r);
		if (!item || json_array_append_new(list, item)) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	json_t *next = i < events.n ? json_integer((json_int_t)events.items[i - 1].seq) : json_null();
	rc = api_reply(req, 200, json_pack("{s:O,s:o}", "events", list, "next_after", next));
out:
	json_decref(list);
	store_audit_list_release(&events);
	return rc;
}

/* The keeper's head after it tried to advance; answers the failure itself (*answered) when there is none. */
static enum coffer_err keeper_head(struct http_request *req, struct anchor_head *head, char *problem, size_t size,
				   int *answered)
{
	struct api_auth *a = api_auth_of(req);
	enum coffer_err rc = keeper_client_audit_anchor(a->api, head, problem, size);
	*answered = rc != COFFER_OK;
	if (rc == COFFER_ERR_CRYPTO)
		return api_fail(req, rc, "the keeper's audit head does not verify under keeper.pub");
	if (rc)
		return api_fail(req, COFFER_ERR_UNAVAILABLE, "cannot get the anchored audit head from the keeper");
	return COFFER_OK;
}

/* A 409 naming the problem; first_broken_seq when there is one (else 0). */
static enum coffer_err reply_broken(struct http_request *req, const char *msg, uint64_t first_broken_seq)
{
	log_error("audit_chain_broken", LF_S("problem", msg), LF_I("first_broken_seq", first_broken_seq));
	json_t *doc = json_pack("{s:{s:s,s:s},s:b}", "error", "code", coffer_err_name(COFFER_ERR_CONFLICT), "message",
				msg, "ok", 0);
	if (doc && first_broken_seq &&
	    json_object_set_new(doc, "first_broken_seq", json_integer((json_int_t)first_broken_seq))) {
		json_decref(doc);
		doc = NULL;
	}
	return api_reply(req, coffer_err_http_status(COFFER_ERR_CONFLICT), doc);
}

/*
 * Whether the chain, intact up to end_seq, holds head (named `which`):
 * "" when it does, else why not in msg.
 */
static enum coffer_err holds(struct store *s, uint64_t end_seq, const struct anchor_head *head, const char *which,
			     char *msg, size_t size)
{
	unsigned char h[STORE_HASH_LEN];
	enum coffer_err rc;

	msg[0] = '\0';
	if (head->seq == 0)
		return COFFER_OK;
	if (head->seq > end_seq)
		return fmt_into(msg, size, "the chain ends at seq %llu but %s is seq %llu", (unsigned long long)end_seq,
				which, (unsigned long long)head->seq);
	rc = store_audit_event_hash(s, head->seq, h);
	if (rc == COFFER_ERR_NOT_FOUND) /* cut while we looked */
		return fmt_into(msg, size, "the chain no longer holds seq %llu, %s", (unsigned long long)head->seq,
				which);
	if (rc)
		return rc;
	if (sodium_memcmp(h, head->hash, sizeof(h)) != 0)
		return fmt_into(msg, size, "event %llu is not %s: the chain was rewritten or replaced",
				(unsigned long long)head->seq, which);
	return COFFER_OK;
}

/*
 * GET /v1/audit/verify, and POST with {"head": <a saved head>}: the chain
 * recomputed from genesis, then it must hold the keeper's signed head (the
 * keeper advances first) and the saved head, whose signature is checked
 * with keeper.pub. 200 {"ok": true, "events": N, "head": <keeper's>} or
 * 409 naming the first problem.
 */
enum coffer_err h_audit_verify(struct http_request *req, void *ctx)
{
	static const char *const fields[] = { "head", NULL };
	struct api_auth *a = api_auth_of(req);
	unsigned char hash[STORE_HASH_LEN];
	static const unsigned char genesis[STORE_HASH_LEN];
	struct anchor_head keeper = { 0 }, saved = { 0 };
	uint64_t broken = 0, end = 0;
	char msg[API_MESSAGE_MAX], problem[API_MESSAGE_MAX];
	json_t *body = NULL, *doc = NULL;
	const char *why = NULL;
	int has_saved = 0, answered = 0;
	enum coffer_err rc;
	(void)ctx;

	if (strcmp(http_request_method(req), "POST") == 0) {
		rc = api_body(req, fields, &body);
		if (rc)
			return rc;
		rc = json_get_object(body, "head", 1, &doc, NULL);
		if (!rc)
			rc = anchor_from_json(doc, &saved, &why);
		if (rc == COFFER_ERR_NOMEM)
			goto out;
		if (rc) {
			rc = api_fail(req, COFFER_ERR_INVALID, "the saved head is not a head document: %s",
				      why ? why : "\"head\" must be an object");
			goto out;
		}
		if (anchor_verify(a->api->keeper_pk, &saved)) {
			log_warn("audit_head_rejected", LF_S("where", "saved head"), LF_I("seq", saved.seq));
			rc = api_fail(req, COFFER_ERR_CRYPTO,
				      "the saved head's signature does not verify under keeper.pub: it was forged or edited");
			goto out;
		}
		has_saved = 1;
	}
	rc = keeper_head(req, &keeper, problem, sizeof(problem), &answered);
	if (answered)
		goto out;
	rc = api_note(a, store_audit_verify_from(a->store, 0, genesis, &end, hash, &broken));
	if (rc == COFFER_ERR_CRYPTO) {
		if (fmt_into(msg, sizeof(msg), "audit chain broken at event %llu", (unsigned long long)broken))
			msg[0] = '\0';
		rc = reply_broken(req, msg, broken);
		goto out;
	}
	if (!rc)
		rc = api_note(a, holds(a->store, end, &keeper, "the anchored head", msg, sizeof(msg)));
	if (!rc && !msg[0] && has_saved)
		rc = api_note(a, holds(a->store, end, &saved, "the saved head", msg, sizeof(msg)));
	if (!rc && !msg[0] && problem[0]) /* holds both, yet the keeper could not advance: report it */
		rc = fmt_into(msg, sizeof(msg), "the keeper cannot advance its anchored head: %s", problem);
	if (rc)
		goto out;
	if (msg[0]) {
		rc = reply_broken(req, msg, 0);
		goto out;
	}
	rc = api_reply(req, 200,
		       json_pack("{s:b,s:I,s:o}", "ok", 1, "events", (json_int_t)end, "head", anchor_to_json(&keeper)));
	if (!rc && has_saved)
		log_info("audit_verified", LF_I("events", end), LF_I("saved_head_seq", saved.seq));
out:
	json_decref(body);
	return rc;
}

/*
 * GET /v1/audit/head: the keeper's signed head after it advanced, to keep
 * elsewhere; 409 naming the problem when the chain does not extend it.
 */
enum coffer_err h_audit_head(struct http_request *req, void *ctx)
{
	struct anchor_head head;
	char problem[API_MESSAGE_MAX], msg[API_MESSAGE_MAX];
	int answered = 0;
	enum coffer_err rc = keeper_head(req, &head, problem, sizeof(problem), &answered);
	(void)ctx;

	if (answered)
		return rc;
	if (problem[0]) {
		if (fmt_into(msg, sizeof(msg), "the keeper refuses to advance its anchored head: %s", problem))
			msg[0] = '\0';
		return reply_broken(req, msg, 0);
	}
	return api_reply(req, 200, anchor_to_json(&head));
}
