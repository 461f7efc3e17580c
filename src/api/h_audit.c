/*
 * h_audit.c — the audit trail: the api's part of the shared audit phase
 * (http_phase.h), which writes one event per audited request just before
 * the answer leaves (so a client that reads the log after an answer finds
 * the event), refusals included; and GET /v1/audit, GET /v1/audit/verify.
 *
 * An event: org, actor (token id, "host:<id>" or "anonymous"), action (the
 * route's name), app, detail (JSON: names and digests, never values or
 * tokens), outcome ("ok", "denied:<code>", "error:<code>": the phase's one
 * rule), request id. This file adds the org and the app.
 */
#include <string.h>

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
	rc = store_audit_append(s, ev, NULL);
	if (rc == COFFER_ERR_UNAVAILABLE)
		store_rc = rc;
out:
	if (a && a->store)
		api_note(a, store_rc);
	else
		store_pool_release(api->pool, s, store_rc);
	return rc;
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

enum coffer_err h_audit_verify(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	unsigned char hash[STORE_HASH_LEN];
	uint64_t broken = 0, seq = 0;
	char msg[API_MESSAGE_MAX];
	enum coffer_err rc;
	(void)ctx;

	rc = api_note(a, store_audit_verify(a->store, &broken));
	if (rc == COFFER_ERR_CRYPTO) {
		log_error("audit_chain_broken", LF_I("first_broken_seq", broken));
		if (fmt_into(msg, sizeof(msg), "audit chain broken at event %llu", (unsigned long long)broken))
			return COFFER_ERR_INTERNAL;
		return api_reply(req, coffer_err_http_status(COFFER_ERR_CONFLICT),
				 json_pack("{s:{s:s,s:s},s:I}", "error", "code", coffer_err_name(COFFER_ERR_CONFLICT),
					   "message", msg, "first_broken_seq", (json_int_t)broken));
	}
	if (!rc)
		rc = api_note(a, store_audit_head(a->store, &seq, hash));
	if (rc)
		return rc;
	return api_reply(req, 200, json_pack("{s:b,s:I}", "ok", 1, "events", (json_int_t)seq));
}
