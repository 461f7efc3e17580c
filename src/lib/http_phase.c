/*
 * http_phase.c — the phases every coffer server shares (http_phase.h).
 * Nothing here knows a role: what differs between the api and the keeper
 * comes through struct http_phase_ops. Refusal messages are fixed texts and
 * never quote a header.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "buf.h"
#include "http_phase.h"
#include "log.h"
#include "parse.h"
#include "banned.h"

static void caller_release(void *p)
{
	struct http_caller *c = p;
	if (!c)
		return;
	if (c->role && c->phases->ops->end)
		c->phases->ops->end(c->role);
	json_decref(c->audit_detail);
	sodium_memzero(c, sizeof(*c));
	free(c);
}

struct http_caller *http_caller_of(struct http_request *req)
{
	return http_request_auth(req);
}

enum coffer_err http_phase_refuse(struct http_request *req, enum coffer_err code, const char *why)
{
	struct http_caller *c = http_caller_of(req);
	if (c)
		c->refusal = why;
	return http_reply_error(req, code, why);
}

/* The caller is who the gate says; the access log and the audit show actor. */
static enum coffer_err admit_as(struct http_request *req, struct http_caller *c, enum http_caller_kind kind,
				const char *actor)
{
	if (str_copy(c->actor, sizeof(c->actor), actor) || http_request_set_actor(req, c->actor))
		return http_reply_error(req, COFFER_ERR_INTERNAL, NULL);
	c->kind = kind;
	return COFFER_OK;
}

/* A host request refused: logged, and its audit detail names the host id presented and why. */
static enum coffer_err host_refuse(struct http_request *req, const char *host, enum coffer_err rc, const char *why)
{
	log_info("host_request_refused", LF_S("host_id", host), LF_S("reason", why));
	http_phase_audit_note(req, NULL, NULL, json_pack("{s:s,s:s}", "host_id", host, "refused", why));
	return http_phase_refuse(req, rc, why);
}

/*
 * The persisted replay check (ops->replay) of a request hostauth_verify
 * accepted: its timestamp and nonce are well formed, and the nonce is
 * needed as long as the timestamp is accepted.
 */
static enum coffer_err host_replay(struct http_request *req, const struct http_phases *ph, struct http_caller *c,
				   const struct store_host *h, const struct hostauth_presented *p, int64_t now)
{
	int64_t ts = 0;
	enum coffer_err rc;
	if (parse_int64(p->timestamp, 0, INT64_MAX - HOSTAUTH_WINDOW_S, &ts))
		return http_reply_error(req, COFFER_ERR_INTERNAL, NULL);
	rc = ph->ops->replay(ph->ctx, c, h->id, p->nonce, ts + HOSTAUTH_WINDOW_S, now);
	if (rc == COFFER_ERR_CONFLICT)
		return host_refuse(req, h->id, COFFER_ERR_UNAUTH, "request replayed");
	if (rc)
		return http_reply_error(req, rc, NULL);
	return COFFER_OK;
}

/*
 * A host's signed request: a well-formed host id, a row the role loads and
 * checks, a ready host, then hostauth_verify under the row's sign_pk
 * (window, signature, the process's replay cache), then the role's
 * persisted replay check. Every refusal is 401 with its own message.
 */
static enum coffer_err host_gate(struct http_request *req, const struct http_phases *ph, struct http_caller *c)
{
	struct store_host h;
	const char *why = NULL;
	char actor[HTTP_ACTOR_MAX];
	size_t body_len = 0;
	const char *body = http_request_body(req, &body_len);
	struct hostauth_presented p = {
		.host = http_request_header(req, HOSTAUTH_HEADER_HOST),
		.timestamp = http_request_header(req, HOSTAUTH_HEADER_TIMESTAMP),
		.nonce = http_request_header(req, HOSTAUTH_HEADER_NONCE),
		.signature = http_request_header(req, HOSTAUTH_HEADER_SIGNATURE),
	};
	struct hostauth_request r = { http_request_method(req), http_request_target(req), body, body_len };
	enum coffer_err rc;

	if (!hostauth_host_id_ok(p.host))
		return http_phase_refuse(req, COFFER_ERR_UNAUTH, "missing or malformed host signature headers");
	if (!r.path)
		return http_phase_refuse(req, COFFER_ERR_UNAUTH, "request target too long to verify");
	if (!ph->ops->host_load || !ph->ops->replay || !ph->replay)
		return http_reply_error(req, COFFER_ERR_INTERNAL, NULL);
	rc = ph->ops->host_load(ph->ctx, c, p.host, &h);
	if (rc == COFFER_ERR_NOT_FOUND)
		return host_refuse(req, p.host, COFFER_ERR_UNAUTH, "unknown host");
	if (rc == COFFER_ERR_CRYPTO)
		return host_refuse(req, p.host, COFFER_ERR_UNAUTH, "host record failed verification");
	if (rc)
		return http_reply_error(req, rc, NULL);
	if (strcmp(h.state, HTTP_HOST_STATE_REVOKED) == 0)
		return host_refuse(req, h.id, COFFER_ERR_UNAUTH, "host is revoked");
	if (strcmp(h.state, HTTP_HOST_STATE_READY) != 0)
		return host_refuse(req, h.id, COFFER_ERR_UNAUTH, "host is not enrolled");
	int64_t now = (int64_t)time(NULL);
	rc = hostauth_verify(&r, &p, h.sign_pk, ph->replay, now, &why);
	if (rc)
		return host_refuse(req, h.id, rc, why);
	rc = host_replay(req, ph, c, &h, &p, now);
	if (rc)
		return rc;
	c->host = h;
	if (fmt_into(actor, sizeof(actor), "%s%s", HTTP_HOST_ACTOR_PREFIX, h.id))
		return http_reply_error(req, COFFER_ERR_INTERNAL, NULL);
	return admit_as(req, c, HTTP_CALLER_HOST, actor);
}

/* A bearer credential in the Authorization header, checked by the role. */
static enum coffer_err bearer_gate(struct http_request *req, const struct http_phases *ph, struct http_caller *c)
{
	char actor[HTTP_ACTOR_MAX] = "";
	const char *why = NULL;
	enum coffer_err rc;

	if (!ph->ops->bearer)
		return http_reply_error(req, COFFER_ERR_INTERNAL, NULL);
	rc = ph->ops->bearer(ph->ctx, c, http_request_header(req, "Authorization"), actor, &why);
	if (rc == COFFER_ERR_UNAUTH) {
		if (http_reply_header(req, "WWW-Authenticate", "Bearer"))
			log_warn("http_header_failed", LF_S("header", "WWW-Authenticate"));
		return http_phase_refuse(req, rc, why);
	}
	if (rc)
		return http_reply_error(req, rc, NULL);
	return admit_as(req, c, HTTP_CALLER_BEARER, actor);
}

enum coffer_err http_phase_gate(struct http_request *req, const struct http_route *route, void *phases)
{
	const struct http_phases *ph = phases;
	struct http_caller *c = calloc(1, sizeof(*c));
	enum coffer_err rc;

	/* every matched route gets a caller: an ungated handler may still note its audit */
	if (!c)
		return COFFER_ERR_NOMEM;
	c->phases = ph;
	http_request_set_auth(req, c, caller_release);
	if (!(route->flags & HTTP_ROUTE_AUTH))
		return COFFER_OK;
	if (ph->ops->begin) {
		rc = ph->ops->begin(ph->ctx, req, c);
		if (rc)
			return rc;
	}
	rc = (route->flags & HTTP_ROUTE_HOST) ? host_gate(req, ph, c) : bearer_gate(req, ph, c);
	if (rc)
		return rc;
	if (ph->ops->admit) {
		rc = ph->ops->admit(ph->ctx, req, route, c);
		if (rc)
			return rc;
	}
	c->admitted = 1;
	return COFFER_OK;
}

/* ---- audit ---- */

int http_phase_denied(const struct http_caller *c, enum coffer_err code)
{
	if (c && c->admitted)
		return 0;
	return code == COFFER_ERR_UNAUTH || code == COFFER_ERR_FORBIDDEN || code == COFFER_ERR_NOT_FOUND;
}

enum coffer_err http_phase_outcome(const struct http_caller *c, int status, enum coffer_err code,
				   char out[HTTP_AUDIT_OUTCOME_MAX])
{
	if (code == COFFER_OK && status < 400)
		return str_copy(out, HTTP_AUDIT_OUTCOME_MAX, "ok");
	enum coffer_err e = code ? code : coffer_err_from_http_status(status);
	return fmt_into(out, HTTP_AUDIT_OUTCOME_MAX, "%s:%s", http_phase_denied(c, e) ? "denied" : "error",
			coffer_err_name(e));
}

void http_phase_audit_note(struct http_request *req, const char *actor, const char *app, json_t *detail)
{
	struct http_caller *c = http_caller_of(req);
	if (!c) {
		json_decref(detail);
		return;
	}
	if (actor && str_copy(c->audit_actor, sizeof(c->audit_actor), actor))
		c->audit_actor[0] = '\0';
	if (app && str_copy(c->audit_app, sizeof(c->audit_app), app))
		c->audit_app[0] = '\0';
	if (detail) {
		json_decref(c->audit_detail);
		c->audit_detail = detail;
	}
}

void http_phase_audited(struct http_request *req)
{
	struct http_caller *c = http_caller_of(req);
	if (c)
		c->audited = 1;
}

static void audit_failed(struct http_request *req, const struct http_route *route, enum coffer_err rc)
{
	log_error("audit_append_failed", LF_S("action", route->name), LF_S("request_id", http_request_id(req)),
		  LF_S("error", coffer_err_name(rc)));
}

static const char *event_actor(const struct http_caller *c)
{
	if (c && c->kind != HTTP_CALLER_NONE)
		return c->actor;
	if (c && c->audit_actor[0])
		return c->audit_actor;
	return HTTP_ACTOR_ANONYMOUS;
}

enum coffer_err http_phase_event(struct http_request *req, int status, enum coffer_err code,
				 char outcome[HTTP_AUDIT_OUTCOME_MAX], struct buf *detail, struct store_audit_event *ev)
{
	const struct http_caller *c = http_caller_of(req);
	enum coffer_err rc = http_phase_outcome(c, status, code, outcome);
	if (rc)
		return rc;
	buf_reset(detail);
	if (!c || !c->audit_detail || json_dump_buf(c->audit_detail, detail) || detail->len > HTTP_AUDIT_DETAIL_MAX) {
		buf_reset(detail);
		rc = buf_adds(detail, "{}");
		if (rc)
			return rc;
	}
	*ev = (struct store_audit_event){
		.actor = event_actor(c),
		.action = http_request_route(req)->name,
		.app = c ? c->audit_app : "",
		.detail = detail->ptr,
		.outcome = outcome,
		.request_id = http_request_id(req),
	};
	return COFFER_OK;
}

static void phase_audit(struct http_request *req, const struct http_route *route, int status, enum coffer_err code,
			const struct http_phases *ph)
{
	const struct http_caller *c = http_caller_of(req);
	char outcome[HTTP_AUDIT_OUTCOME_MAX];
	struct store_audit_event ev;
	struct buf detail;
	enum coffer_err rc;

	if (!(route->flags & HTTP_ROUTE_AUDIT) || (c && c->audited))
		return;
	if (route->flags & HTTP_ROUTE_AUDIT_HANDLER) {
		const char *reason = c && c->refusal ? c->refusal
					: coffer_err_name(code ? code : coffer_err_from_http_status(status));
		rc = ph->ops->audit_refused ? ph->ops->audit_refused(ph->ctx, req, route, c, reason)
					    : COFFER_ERR_INTERNAL;
		if (rc)
			audit_failed(req, route, rc);
		return;
	}
	buf_init(&detail, HTTP_AUDIT_DETAIL_MAX + 1);
	rc = http_phase_event(req, status, code, outcome, &detail, &ev);
	if (!rc) {
		ev.action = route->name;
		rc = ph->ops->audit ? ph->ops->audit(ph->ctx, req, route, c, &ev) : COFFER_ERR_INTERNAL;
		if (rc)
			audit_failed(req, route, rc);
	}
	buf_release(&detail);
}

void http_phase_done(struct http_request *req, const struct http_route *route, int status, enum coffer_err code,
		     void *phases)
{
	const struct http_phases *ph = phases;
	struct http_caller *c;

	phase_audit(req, route, status, code, ph);
	c = http_caller_of(req);
	if (c && c->role && ph->ops->answered)
		ph->ops->answered(c->role);
}
