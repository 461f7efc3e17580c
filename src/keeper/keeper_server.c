/*
 * keeper_server.c — the keeper's HTTP server: its route table, the gate
 * (the api credential, or a host's signed request), the handlers, and the
 * audit of host enrolment and of opens refused before keeper_open ran. Handlers borrow store connections from a
 * store_pool (a struct store is one thread's at a time; the server runs a
 * thread per connection).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "delivery.h"
#include "encode.h"
#include "fs.h"
#include "http_server.h"
#include "json.h"
#include "keeper.h"
#include "log.h"
#include "parse.h"
#include "banned.h"

#ifndef COFFER_VERSION
#define COFFER_VERSION "0.1.0"
#endif

#define BEARER_PREFIX "Bearer "
#define MESSAGE_MAX 512
#define AUDIT_ACTOR_ANONYMOUS "anonymous"
#define AUDIT_HOST_PREFIX "host:" /* the actor of a host: the api's form too */
#define AUDIT_ACTOR_SIZE 64
#define AUDIT_OUTCOME_SIZE 64
#define AUDIT_DETAIL_MAX 1024
#define B64_SLACK 8

/* Route flags of the keeper, from HTTP_ROUTE_OWNER_SHIFT up. */
#define KEEPER_ROUTE_HOST ((uint32_t)1 << HTTP_ROUTE_OWNER_SHIFT) /* a host's signed request (hostauth.h) */

struct keeper {
	struct keeper_keys keys;
	struct store_pool *pool;
	struct http_server *server;
	struct hostauth_replay *replay; /* nonces of signed host requests */
};

/*
 * One request's note (http_request_auth): the host a signed request came
 * from (set by the gate), or the host an enrolment made (for the audit).
 */
struct keeper_note {
	int is_host;
	struct store_host host;
	int enrolled;
	char host_id[STORE_ID_SIZE];
	char name[STORE_NAME_SIZE];
	const char *refusal; /* a fixed reason the gate or the handler refused for, for the audit */
	int open_audited;    /* keeper_open appended the event of this open */
};

static void note_release(void *p)
{
	free(p);
}

static struct keeper_note *note_of(struct http_request *req)
{
	struct keeper_note *n = http_request_auth(req);
	if (n)
		return n;
	n = calloc(1, sizeof(*n));
	if (n)
		http_request_set_auth(req, n, note_release);
	return n;
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* Notes why a request was refused (a fixed string), for the audit; returns code. */
static enum coffer_err refuse(struct http_request *req, enum coffer_err code, const char *why)
{
	struct keeper_note *n = note_of(req);
	if (n)
		n->refusal = why;
	return http_reply_error(req, code, why);
}

/* ---- the gate: the api credential, compared in constant time; or a host's signature ---- */

/*
 * A host's signed request: the host id names a row whose registry MAC
 * verifies, the host is ready, and the signature (hostauth_verify) holds
 * under the row's sign_pk. Every refusal is 401 with its own message.
 */
static enum coffer_err host_gate(struct http_request *req, struct keeper *k)
{
	struct store *s = NULL;
	struct store_host h;
	struct keeper_note *n;
	const char *why = NULL;
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
		return refuse(req, COFFER_ERR_UNAUTH, "missing or malformed host signature headers");
	if (!r.path)
		return refuse(req, COFFER_ERR_UNAUTH, "request target too long to verify");
	rc = store_pool_acquire(k->pool, &s);
	if (rc)
		return http_reply_error(req, rc, NULL);
	rc = keeper_host_load(&k->keys, s, p.host, &h);
	store_pool_release(k->pool, s, rc);
	if (rc == COFFER_ERR_NOT_FOUND)
		return refuse(req, COFFER_ERR_UNAUTH, "unknown host");
	if (rc == COFFER_ERR_CRYPTO)
		return refuse(req, COFFER_ERR_UNAUTH, "host record failed verification");
	if (rc)
		return http_reply_error(req, rc, NULL);
	if (strcmp(h.state, KEEPER_HOST_STATE_READY) != 0)
		return refuse(req, COFFER_ERR_UNAUTH, "host is not enrolled");
	rc = hostauth_verify(&r, &p, h.sign_pk, k->replay, now_s(), &why);
	if (rc) {
		log_info("host_request_refused", LF_S("host_id", h.id), LF_S("reason", why));
		return refuse(req, rc, why);
	}
	n = note_of(req);
	if (!n)
		return COFFER_ERR_NOMEM;
	n->is_host = 1;
	n->host = h;
	return http_request_set_actor(req, h.id);
}

static enum coffer_err gate(struct http_request *req, const struct http_route *route, void *ctx)
{
	struct keeper *k = ctx;
	unsigned char got[VAULT_CREDENTIAL_LEN];
	int ok = 0;

	if (route->flags & KEEPER_ROUTE_HOST)
		return host_gate(req, k);
	if (!(route->flags & HTTP_ROUTE_AUTH))
		return COFFER_OK;
	const char *h = http_request_header(req, "Authorization");
	size_t plen = strlen(BEARER_PREFIX);
	if (h && strncasecmp(h, BEARER_PREFIX, plen) == 0 &&
	    hex_decode(h + plen, strlen(h + plen), got, sizeof(got)) == COFFER_OK)
		ok = ct_equal(got, secret_cbytes(k->keys.credential), sizeof(got));
	sodium_memzero(got, sizeof(got));
	if (!ok)
		return http_reply_error(req, COFFER_ERR_UNAUTH, "missing or invalid api credential");
	return http_request_set_actor(req, "api");
}

/* ---- handlers ---- */

static enum coffer_err h_health(struct http_request *req, void *ctx)
{
	(void)ctx;
	json_t *doc = json_pack("{s:s,s:s,s:s}", "status", "ok", "role", "keeper", "version", COFFER_VERSION);
	if (!doc)
		return COFFER_ERR_NOMEM;
	enum coffer_err rc = http_reply_json(req, 200, doc);
	json_decref(doc);
	return rc;
}

/* App ids are the store's; anything else cannot name an app, and is safe to quote. */
static int app_id_ok(const char *id, size_t len)
{
	if (len == 0 || len > VAULT_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

static enum coffer_err reply_b64url(json_t *doc, const char *key, const void *data, size_t len)
{
	struct buf b;
	buf_init(&b, B64URL_LEN(len) + 1);
	enum coffer_err rc = b64url_encode(data, len, &b);
	if (!rc && json_object_set_new(doc, key, json_stringn(b.ptr, b.len)))
		rc = COFFER_ERR_NOMEM;
	buf_release(&b);
	return rc;
}

static enum coffer_err h_app_keys(struct http_request *req, void *ctx)
{
	static const char *const allowed[] = { "app_id", NULL };
	struct keeper *k = ctx;
	struct store *s = NULL;
	struct keeper_app_key key;
	struct json_error jerr;
	json_t *body = NULL, *doc = NULL;
	const char *app_id = NULL;
	size_t app_id_len = 0;
	char msg[MESSAGE_MAX];
	enum coffer_err rc;

	rc = http_request_json(req, &body);
	if (rc)
		goto out;
	rc = json_check_fields(body, allowed, &jerr);
	if (!rc)
		rc = json_get_string(body, "app_id", 1, &app_id, &app_id_len, &jerr);
	if (rc) {
		rc = http_reply_error(req, rc, jerr.message);
		goto out;
	}
	if (!app_id_ok(app_id, app_id_len)) {
		rc = http_reply_error(req, COFFER_ERR_INVALID, "'app_id' is not an app id");
		goto out;
	}
	rc = store_pool_acquire(k->pool, &s);
	if (rc)
		goto out;
	rc = keeper_app_key_create(&k->keys, s, app_id, &key);
	store_pool_release(k->pool, s, rc);
	if (rc == COFFER_ERR_NOT_FOUND || rc == COFFER_ERR_CONFLICT) {
		if (fmt_into(msg, sizeof(msg), "app '%s' %s", app_id,
			     rc == COFFER_ERR_NOT_FOUND ? "not found" : "has a key already"))
			msg[0] = '\0';
		rc = http_reply_error(req, rc, msg[0] ? msg : NULL);
		goto out;
	}
	if (rc)
		goto out;
	doc = json_pack("{s:s,s:I}", "app_id", key.app_id, "version", (json_int_t)key.version);
	if (!doc) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	rc = reply_b64url(doc, "public_key", key.public_key, sizeof(key.public_key));
	if (!rc)
		rc = reply_b64url(doc, "signature", key.signature, sizeof(key.signature));
	if (!rc)
		rc = http_reply_json(req, 201, doc);
out:
	json_decref(doc);
	json_decref(body);
	return rc;
}

/* Decodes a base64url field of exactly len bytes; on failure answers 400 naming the field. */
static enum coffer_err body_b64(struct http_request *req, const json_t *doc, const char *key, unsigned char *out,
				size_t len)
{
	const char *text = NULL;
	size_t n = 0;
	char msg[MESSAGE_MAX];
	struct buf b;
	enum coffer_err rc = json_get_string(doc, key, 1, &text, &n, NULL);
	buf_init(&b, len + B64_SLACK);
	if (!rc)
		rc = b64url_decode(text, n, &b);
	if (!rc && b.len != len)
		rc = COFFER_ERR_INVALID;
	if (!rc)
		memcpy(out, b.ptr, len);
	buf_release(&b);
	if (rc == COFFER_ERR_NOMEM)
		return rc;
	if (rc) {
		if (fmt_into(msg, sizeof(msg), "'%s' must be %zu bytes in base64url", key, len))
			msg[0] = '\0';
		return http_reply_error(req, COFFER_ERR_INVALID, msg[0] ? msg : NULL);
	}
	return COFFER_OK;
}

static enum coffer_err h_hosts_enrol(struct http_request *req, void *ctx)
{
	static const char *const allowed[] = { "join_token", "name", "sign_pk", "seal_pk", "proof", NULL };
	struct keeper *k = ctx;
	struct store *s = NULL;
	struct keeper_enrol_request in;
	struct keeper_enrolled out;
	struct keeper_note *n;
	struct json_error jerr;
	json_t *body = NULL, *doc = NULL;
	const char *why = NULL;
	char issued[32];
	struct tm tm;
	enum coffer_err rc;

	memset(&in, 0, sizeof(in));
	rc = http_request_json(req, &body);
	if (rc)
		goto out;
	rc = json_check_fields(body, allowed, &jerr);
	if (!rc)
		rc = json_get_string(body, "join_token", 1, &in.join_token, &in.join_token_len, &jerr);
	if (!rc)
		rc = json_get_string(body, "name", 1, &in.name, NULL, &jerr);
	if (rc) {
		rc = http_reply_error(req, rc, jerr.message);
		goto out;
	}
	if ((rc = body_b64(req, body, "sign_pk", in.sign_pk, sizeof(in.sign_pk))) ||
	    (rc = body_b64(req, body, "seal_pk", in.seal_pk, sizeof(in.seal_pk))) ||
	    (rc = body_b64(req, body, "proof", in.proof, sizeof(in.proof))))
		goto out;
	n = note_of(req);
	if (!n) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	if (keeper_host_name_ok(in.name) && str_copy(n->name, sizeof(n->name), in.name))
		n->name[0] = '\0';
	rc = store_pool_acquire(k->pool, &s);
	if (rc)
		goto out;
	rc = keeper_host_enrol(&k->keys, s, &in, now_s() * 1000, &out, &why);
	store_pool_release(k->pool, s, rc);
	if (rc) {
		rc = http_reply_error(req, rc, why);
		goto out;
	}
	n->enrolled = 1;
	memcpy(n->host_id, out.host_id, sizeof(n->host_id));
	time_t t = (time_t)out.issued_at;
	if (!gmtime_r(&t, &tm) || strftime(issued, sizeof(issued), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		rc = COFFER_ERR_INTERNAL;
		goto out;
	}
	doc = json_pack("{s:s,s:s,s:s}", "host_id", out.host_id, "name", out.name, "issued_at", issued);
	if (!doc) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	rc = reply_b64url(doc, "cert", out.cert, sizeof(out.cert));
	if (!rc)
		rc = http_reply_json(req, 201, doc);
out:
	json_decref(doc);
	json_decref(body);
	return rc;
}

/* The registry record of the host that signed the request (the gate verified both). */
static enum coffer_err h_hosts_self(struct http_request *req, void *ctx)
{
	(void)ctx;
	struct keeper_note *n = http_request_auth(req);
	if (!n || !n->is_host)
		return COFFER_ERR_INTERNAL;
	json_t *doc = json_pack("{s:s,s:s,s:s}", "host_id", n->host.id, "name", n->host.name, "state", n->host.state);
	if (!doc)
		return COFFER_ERR_NOMEM;
	enum coffer_err rc = http_reply_json(req, 200, doc);
	json_decref(doc);
	return rc;
}

/*
 * POST /v1/open {"token": "<boot token>"} from a host the gate verified:
 * keeper_open decides, audits and seals; the answer is {"sealed": b64url}.
 */
static enum coffer_err h_open(struct http_request *req, void *ctx)
{
	static const char *const allowed[] = { "token", NULL };
	struct keeper *k = ctx;
	struct keeper_note *n = http_request_auth(req);
	struct store *s = NULL;
	struct json_error jerr;
	json_t *body = NULL, *doc = NULL;
	const char *token = NULL, *why = NULL;
	size_t token_len = 0;
	struct buf sealed;
	enum coffer_err rc;

	buf_init(&sealed, DELIVERY_SEALED_MAX);
	if (!n || !n->is_host)
		return COFFER_ERR_INTERNAL;
	rc = http_request_json(req, &body);
	if (rc) {
		n->refusal = "malformed request body";
		goto out;
	}
	rc = json_check_fields(body, allowed, &jerr);
	if (!rc)
		rc = json_get_string(body, "token", 1, &token, &token_len, &jerr);
	if (rc) {
		n->refusal = "malformed request body";
		rc = http_reply_error(req, rc, jerr.message);
		goto out;
	}
	rc = store_pool_acquire(k->pool, &s);
	if (rc)
		goto out;
	rc = keeper_open(&k->keys, s, &n->host, token, token_len, now_s(), http_request_id(req), &sealed, &why);
	store_pool_release(k->pool, s, rc);
	n->open_audited = 1;
	if (rc) {
		rc = http_reply_error(req, rc, why);
		goto out;
	}
	doc = json_object();
	if (!doc) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	rc = reply_b64url(doc, "sealed", sealed.ptr, sealed.len);
	if (!rc)
		rc = http_reply_json(req, 200, doc);
out:
	json_decref(doc);
	json_decref(body);
	buf_release(&sealed);
	return rc;
}

/* An open refused before keeper_open ran (signature, body, limits): audited all the same. */
static void audit_open_refused(struct http_request *req, struct keeper *k, const struct keeper_note *n,
			       enum coffer_err code)
{
	struct store *s = NULL;
	int verified = n && n->is_host;
	const char *host = verified ? n->host.id : http_request_header(req, HOSTAUTH_HEADER_HOST);
	const char *reason = n && n->refusal ? n->refusal : coffer_err_name(code);
	enum coffer_err rc = store_pool_acquire(k->pool, &s);
	if (!rc) {
		rc = keeper_open_audit_refusal(s, host, verified, reason, http_request_id(req));
		store_pool_release(k->pool, s, rc);
	}
	if (rc)
		log_error("audit_append_failed", LF_S("action", KEEPER_OPEN_ACTION),
			  LF_S("request_id", http_request_id(req)), LF_S("error", coffer_err_name(rc)));
}

/* ---- audit: one event per audited request (host enrolment, opens), refusals included ---- */

static void audit_done(struct http_request *req, const struct http_route *route, int status, enum coffer_err code,
		       void *ctx)
{
	struct keeper *k = ctx;
	struct keeper_note *n = http_request_auth(req);
	struct store *s = NULL;
	char outcome[AUDIT_OUTCOME_SIZE];
	char actor[AUDIT_ACTOR_SIZE] = AUDIT_ACTOR_ANONYMOUS;
	struct buf detail;
	json_t *d = NULL;
	enum coffer_err rc;

	if (!(route->flags & HTTP_ROUTE_AUDIT))
		return;
	if (route->handler == h_open) {
		/* keeper_open audits every open it decides; the rest are refusals before it */
		if (!n || !n->open_audited)
			audit_open_refused(req, k, n, code ? code : coffer_err_from_http_status(status));
		return;
	}
	if (n && n->enrolled && fmt_into(actor, sizeof(actor), "%s%s", AUDIT_HOST_PREFIX, n->host_id))
		return;
	buf_init(&detail, AUDIT_DETAIL_MAX);
	if (code == COFFER_OK && status < 400) {
		rc = str_copy(outcome, sizeof(outcome), "ok");
	} else {
		enum coffer_err c = code ? code : coffer_err_from_http_status(status);
		int denied = c == COFFER_ERR_UNAUTH || c == COFFER_ERR_FORBIDDEN;
		rc = fmt_into(outcome, sizeof(outcome), "%s:%s", denied ? "denied" : "error", coffer_err_name(c));
	}
	/* host id and name only */
	d = json_object();
	if (!rc && (!d || (n && n->enrolled && json_object_set_new(d, "host_id", json_string(n->host_id))) ||
		    (n && n->name[0] && json_object_set_new(d, "name", json_string(n->name))) ||
		    json_dump_buf(d, &detail)))
		rc = COFFER_ERR_NOMEM;
	if (!rc)
		rc = store_pool_acquire(k->pool, &s);
	if (!rc) {
		struct store_audit_event ev = {
			.actor = actor,
			.action = route->name,
			.detail = detail.ptr,
			.outcome = outcome,
			.request_id = http_request_id(req),
		};
		rc = store_audit_append(s, &ev, NULL);
		store_pool_release(k->pool, s, rc);
	}
	if (rc)
		log_error("audit_append_failed", LF_S("action", route->name), LF_S("request_id", http_request_id(req)),
			  LF_S("error", coffer_err_name(rc)));
	json_decref(d);
	buf_release(&detail);
}

static const struct http_route routes[] = {
	{ "GET", "/v1/health", 0, 0, h_health, "health" },
	{ "POST", "/v1/app-keys", HTTP_ROUTE_AUTH | HTTP_ROUTE_GATE_EARLY, KEEPER_APP_KEYS_BODY_MAX, h_app_keys,
	  "app_keys.create" },
	/* no credential: the join token in the body is the authority, checked by keeper_host_enrol */
	{ "POST", "/v1/hosts/enrol", HTTP_ROUTE_AUDIT, KEEPER_ENROL_BODY_MAX, h_hosts_enrol, "hosts.enrol" },
	{ "GET", "/v1/hosts/self", KEEPER_ROUTE_HOST, 0, h_hosts_self, "hosts.self" },
	/* host-signed; the boot token in the body is the authority for one machine's secrets */
	{ "POST", "/v1/open", KEEPER_ROUTE_HOST | HTTP_ROUTE_AUDIT, KEEPER_OPEN_BODY_MAX, h_open, KEEPER_OPEN_ACTION },
};

/* ---- start and stop ---- */

enum coffer_err keeper_start(const struct keeper_config *cfg, const struct secret *master, struct keeper **out)
{
	struct keeper *k = NULL;
	const char *step = "config";
	enum coffer_err rc;
	unsigned n = cfg->store_conns ? cfg->store_conns : KEEPER_STORE_CONNS_DEFAULT;

	if (!cfg->store_url || !cfg->listen)
		return COFFER_ERR_INVALID;
	k = calloc(1, sizeof(*k));
	if (!k)
		return COFFER_ERR_NOMEM;
	step = "keys";
	rc = keeper_keys_derive(master, &k->keys);
	if (rc)
		goto out;
	step = "store";
	rc = store_pool_open(cfg->store_url, n, &k->pool);
	if (rc)
		goto out;
	step = "replay_cache";
	rc = hostauth_replay_new(0, &k->replay);
	if (rc)
		goto out;
	step = "listen";
	struct http_server_config hcfg = { .listen = cfg->listen, .gate = gate, .done = audit_done };
	rc = http_server_start(&hcfg, routes, sizeof(routes) / sizeof(routes[0]), k, &k->server);
	if (rc)
		goto out;
	step = "ready_file";
	if (cfg->ready_file)
		rc = http_server_write_ready_file(k->server, cfg->listen, cfg->ready_file);
	if (rc)
		goto out;
	log_info("keeper_started", LF_S("listen", cfg->listen), LF_I("port", http_server_port(k->server)),
		 LF_I("store_conns", store_pool_size(k->pool)));
	*out = k;
	k = NULL;
out:
	if (rc)
		log_error("keeper_start_failed", LF_S("step", step), LF_S("error", coffer_err_name(rc)));
	keeper_stop(k);
	return rc;
}

uint16_t keeper_port(const struct keeper *k)
{
	return http_server_port(k->server);
}

const struct keeper_keys *keeper_get_keys(const struct keeper *k)
{
	return &k->keys;
}

struct store_pool *keeper_store_pool(const struct keeper *k)
{
	return k->pool;
}

void keeper_stop(struct keeper *k)
{
	if (!k)
		return;
	/* Stopping the server joins its threads: every connection is back in the pool after it. */
	http_server_stop(k->server);
	store_pool_close(k->pool);
	hostauth_replay_free(k->replay);
	keeper_keys_release(&k->keys);
	free(k);
}
