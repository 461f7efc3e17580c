/*
 * test_http_phase.c — the shared request phases (http_phase.h), once, over
 * loopback with a role of the test's own: the bearer gate and the host gate
 * accepting and refusing, the admission callback, the route flags, the one
 * "denied" rule, and the audit events the done phase hands to the role.
 * What only the api or only the keeper does is tested in their suites.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "buf.h"
#include "hostauth.h"
#include "http_phase.h"
#include "http_server.h"
#include "json.h"
#include "log.h"
#include "secret.h"

#define BODY_MAX 1024
#define FIELD 256
#define ROUTE_REFUSE_ADMIT ((uint32_t)1 << HTTP_ROUTE_OWNER_SHIFT) /* the test role's admit refuses */

/* ---- the test role ---- */

struct event {
	char actor[FIELD], action[FIELD], app[FIELD], detail[FIELD], outcome[FIELD], refusal[FIELD];
	int had_caller;
	int admitted;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct event last;               /* the last event the audit callbacks got */
static atomic_int n_audit, n_refused, n_begin, n_end, n_handler, n_answered;
static atomic_int n_odd; /* a callback saw what it should not: checked by the tests (no asserts off the test thread) */
static unsigned char host_pk[crypto_sign_PUBLICKEYBYTES], other_pk[crypto_sign_PUBLICKEYBYTES];
static struct secret *host_sk, *other_sk;
static struct hostauth_replay *replay;
static struct http_server *server;
static struct http_phases phases;
static char base_url[64];

static void keep(char *dst, const char *src)
{
	if (str_copy(dst, FIELD, src ? src : ""))
		dst[0] = '\0';
}

static enum coffer_err t_begin(void *ctx, struct http_request *req, struct http_caller *c)
{
	(void)ctx;
	(void)req;
	atomic_fetch_add(&n_begin, 1);
	c->role = strdup("role data");
	return c->role ? COFFER_OK : COFFER_ERR_NOMEM;
}

/* Marks the role's data answered: t_end counts data that ends unanswered as odd. */
static void t_answered(void *role)
{
	atomic_fetch_add(&n_answered, 1);
	((char *)role)[0] = 'A';
}

static void t_end(void *role)
{
	atomic_fetch_add(&n_end, 1);
	if (((char *)role)[0] != 'A')
		atomic_fetch_add(&n_odd, 1);
	free(role);
}

/* Hosts: "good" (ready), "pending" (not ready), "forged" (fails the role's check), "down" (store error). */
static enum coffer_err t_host_load(void *ctx, struct http_caller *c, const char *id, struct store_host *out)
{
	(void)ctx;
	if (!c->role) /* begin runs first */
		atomic_fetch_add(&n_odd, 1);
	if (strcmp(id, "forged") == 0)
		return COFFER_ERR_CRYPTO;
	if (strcmp(id, "down") == 0)
		return COFFER_ERR_STORE;
	if (strcmp(id, "good") != 0 && strcmp(id, "pending") != 0)
		return COFFER_ERR_NOT_FOUND;
	memset(out, 0, sizeof(*out));
	memcpy(out->sign_pk, host_pk, sizeof(host_pk));
	if (str_copy(out->id, sizeof(out->id), id) ||
	    str_copy(out->state, sizeof(out->state), strcmp(id, "good") == 0 ? "ready" : "pending"))
		return COFFER_ERR_INTERNAL;
	return COFFER_OK;
}

/* The role's persisted nonces: they outlive the replay cache, as the store outlives a process. */
#define NONCES_MAX 64
static char seen_nonces[NONCES_MAX][HOSTAUTH_NONCE_HEX_LEN + 1];
static int n_nonces;

static enum coffer_err t_replay(void *ctx, struct http_caller *c, const char *host_id, const char *nonce,
				int64_t expires_at, int64_t now)
{
	(void)ctx;
	(void)host_id;
	if (!c->role || expires_at < now || expires_at - now > 2 * HOSTAUTH_WINDOW_S || strlen(nonce) != 32)
		atomic_fetch_add(&n_odd, 1);
	pthread_mutex_lock(&lock);
	enum coffer_err rc = COFFER_OK;
	for (int i = 0; i < n_nonces; i++)
		if (strcmp(seen_nonces[i], nonce) == 0)
			rc = COFFER_ERR_CONFLICT;
	if (!rc && n_nonces < NONCES_MAX && str_copy(seen_nonces[n_nonces++], sizeof(seen_nonces[0]), nonce))
		rc = COFFER_ERR_INTERNAL;
	pthread_mutex_unlock(&lock);
	return rc;
}

static enum coffer_err t_bearer(void *ctx, struct http_caller *c, const char *header, char actor[HTTP_ACTOR_MAX],
				const char **why)
{
	(void)ctx;
	(void)c;
	if (header && strcmp(header, "Bearer down") == 0)
		return COFFER_ERR_UNAVAILABLE;
	if (!header || strcmp(header, "Bearer good") != 0) {
		*why = "bad token";
		return COFFER_ERR_UNAUTH;
	}
	return str_copy(actor, HTTP_ACTOR_MAX, "user-1");
}

static enum coffer_err t_admit(void *ctx, struct http_request *req, const struct http_route *route,
			       struct http_caller *c)
{
	(void)ctx;
	if (c->kind == HTTP_CALLER_NONE) /* admit runs after a gate authenticated */
		atomic_fetch_add(&n_odd, 1);
	if (route->flags & ROUTE_REFUSE_ADMIT)
		return http_phase_refuse(req, COFFER_ERR_FORBIDDEN, "not allowed");
	return COFFER_OK;
}

static void record(const struct http_caller *c, const char *actor, const char *action, const char *app,
		   const char *detail, const char *outcome, const char *refusal)
{
	pthread_mutex_lock(&lock);
	keep(last.actor, actor);
	keep(last.action, action);
	keep(last.app, app);
	keep(last.detail, detail);
	keep(last.outcome, outcome);
	keep(last.refusal, refusal);
	last.had_caller = c != NULL;
	last.admitted = c && c->admitted;
	pthread_mutex_unlock(&lock);
}

static enum coffer_err t_audit(void *ctx, struct http_request *req, const struct http_route *route,
			       const struct http_caller *c, struct store_audit_event *ev)
{
	(void)ctx;
	(void)route;
	if (strcmp(ev->request_id, http_request_id(req)) != 0 || ev->org_id)
		atomic_fetch_add(&n_odd, 1);
	record(c, ev->actor, ev->action, ev->app, ev->detail, ev->outcome, c ? c->refusal : NULL);
	atomic_fetch_add(&n_audit, 1);
	return COFFER_OK;
}

static enum coffer_err t_audit_refused(void *ctx, struct http_request *req, const struct http_route *route,
				       const struct http_caller *c, const char *reason)
{
	(void)ctx;
	(void)req;
	record(c, NULL, route->name, NULL, NULL, NULL, reason);
	atomic_fetch_add(&n_refused, 1);
	return COFFER_OK;
}

static const struct http_phase_ops ops = {
	.begin = t_begin,
	.end = t_end,
	.answered = t_answered,
	.host_load = t_host_load,
	.replay = t_replay,
	.bearer = t_bearer,
	.admit = t_admit,
	.audit = t_audit,
	.audit_refused = t_audit_refused,
};

/* ---- handlers ---- */

/* Answers who the phases found; a body "note" notes an app and a detail, "fail" fails after admission. */
static enum coffer_err h_who(struct http_request *req, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&n_handler, 1);
	const struct http_caller *c = http_caller_of(req);
	size_t len = 0;
	const char *body = http_request_body(req, &len);
	if (!c)
		return COFFER_ERR_INTERNAL;
	if (strcmp(body, "note") == 0)
		http_phase_audit_note(req, NULL, "web", json_pack("{s:s}", "name", "DB_URL"));
	if (strcmp(body, "big") == 0) {
		char big[HTTP_AUDIT_DETAIL_MAX + 10];
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		http_phase_audit_note(req, NULL, NULL, json_pack("{s:s}", "big", big));
	}
	if (strcmp(body, "fail") == 0)
		return http_reply_error(req, COFFER_ERR_NOT_FOUND, "no such thing");
	json_t *doc = json_pack("{s:i,s:i,s:s,s:s}", "kind", (int)c->kind, "admitted", c->admitted, "actor", c->actor,
				"host", c->host.id);
	enum coffer_err rc = doc ? http_reply_json(req, 200, doc) : COFFER_ERR_NOMEM;
	json_decref(doc);
	return rc;
}

static enum coffer_err reply_empty(struct http_request *req, int status)
{
	json_t *doc = json_object();
	enum coffer_err rc = doc ? http_reply_json(req, status, doc) : COFFER_ERR_NOMEM;
	json_decref(doc);
	return rc;
}

/* An ungated route whose authority is in the body (as an enrolment's join token). */
static enum coffer_err h_ungated(struct http_request *req, void *ctx)
{
	(void)ctx;
	size_t len = 0;
	const char *body = http_request_body(req, &len);
	if (strcmp(body, "ok") == 0) {
		http_phase_audit_note(req, "host:new", NULL, NULL);
		return reply_empty(req, 201);
	}
	return http_reply_error(req, COFFER_ERR_UNAUTH, "invalid join token");
}

/* The handler audits what it decides (as the keeper's open). */
static enum coffer_err h_self_audit(struct http_request *req, void *ctx)
{
	(void)ctx;
	size_t len = 0;
	const char *body = http_request_body(req, &len);
	if (strcmp(body, "bad") == 0) {
		struct http_caller *c = http_caller_of(req);
		c->refusal = "malformed request body";
		return http_reply_error(req, COFFER_ERR_INVALID, "bad body");
	}
	http_phase_audited(req);
	return reply_empty(req, 200);
}

static const struct http_route routes[] = {
	{ "GET", "/open", 0, 0, h_who, "open" },
	{ "POST", "/bearer", HTTP_ROUTE_AUTH | HTTP_ROUTE_GATE_EARLY | HTTP_ROUTE_AUDIT, BODY_MAX, h_who, "bearer" },
	{ "GET", "/quiet", HTTP_ROUTE_AUTH | HTTP_ROUTE_GATE_EARLY, 0, h_who, "quiet" },
	{ "POST", "/refuse", HTTP_ROUTE_AUTH | HTTP_ROUTE_AUDIT | ROUTE_REFUSE_ADMIT, BODY_MAX, h_who, "refuse" },
	{ "POST", "/host", HTTP_ROUTE_AUTH | HTTP_ROUTE_HOST | HTTP_ROUTE_AUDIT, BODY_MAX, h_who, "host" },
	{ "POST", "/ungated", HTTP_ROUTE_AUDIT, BODY_MAX, h_ungated, "ungated" },
	{ "POST", "/self", HTTP_ROUTE_AUTH | HTTP_ROUTE_HOST | HTTP_ROUTE_AUDIT | HTTP_ROUTE_AUDIT_HANDLER, 16,
	  h_self_audit, "self" },
};

/* ---- the client side ---- */

struct answer {
	int status;
	struct buf body;
	int www_authenticate;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct answer *a = ud;
	return buf_add(&a->body, p, size * n) == COFFER_OK ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct answer *a = ud;
	if (size * n >= 16 && strncasecmp(p, "WWW-Authenticate", 16) == 0)
		a->www_authenticate = 1;
	return size * n;
}

/* Headers given as h (NULL-ended "Name: value" list). */
static void call(const char *method, const char *path, const char *body, const char *const *h, struct answer *a)
{
	char url[256];
	struct curl_slist *list = NULL;
	CURL *e = curl_easy_init();
	assert_non_null(e);
	memset(a, 0, sizeof(*a));
	buf_init(&a->body, 1 << 20);
	assert_true(snprintf(url, sizeof(url), "%s%s", base_url, path) < (int)sizeof(url));
	for (; h && *h; h++)
		list = curl_slist_append(list, *h);
	list = curl_slist_append(list, "Expect:");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, a);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	long status = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	a->status = (int)status;
	assert_int_equal(buf_add(&a->body, "", 1), COFFER_OK);
	curl_slist_free_all(list);
	curl_easy_cleanup(e);
}

/* A request signed as host with key sk (the path is the signed target). */
static void call_signed(const char *host, const struct secret *sk, const char *path, const char *body,
			struct answer *a, struct hostauth_headers *hh)
{
	char l[4][256];
	const char *h[5];
	struct hostauth_request r = { "POST", path, body, strlen(body) };
	if (host)
		assert_int_equal(hostauth_sign_headers(sk, host, &r, (int64_t)time(NULL), hh), COFFER_OK);
	assert_true(snprintf(l[0], sizeof(l[0]), "%s: %s", HOSTAUTH_HEADER_HOST, hh->host) > 0);
	assert_true(snprintf(l[1], sizeof(l[1]), "%s: %s", HOSTAUTH_HEADER_TIMESTAMP, hh->timestamp) > 0);
	assert_true(snprintf(l[2], sizeof(l[2]), "%s: %s", HOSTAUTH_HEADER_NONCE, hh->nonce) > 0);
	assert_true(snprintf(l[3], sizeof(l[3]), "%s: %s", HOSTAUTH_HEADER_SIGNATURE, hh->signature) > 0);
	for (int i = 0; i < 4; i++)
		h[i] = l[i];
	h[4] = NULL;
	call("POST", path, body, h, a);
}

static void assert_error(const struct answer *a, int status, const char *code, const char *message)
{
	char want[512];
	assert_int_equal(a->status, status);
	assert_true(snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message) <
		    (int)sizeof(want));
	assert_string_equal(a->body.ptr, want);
}

static void assert_event(const char *action, const char *actor, const char *outcome)
{
	pthread_mutex_lock(&lock);
	assert_string_equal(last.action, action);
	assert_string_equal(last.actor, actor);
	assert_string_equal(last.outcome, outcome);
	pthread_mutex_unlock(&lock);
}

static json_t *answer_json(const struct answer *a)
{
	json_t *doc = NULL;
	assert_int_equal(json_parse_limited(a->body.ptr, a->body.len - 1, BODY_MAX, 8, &doc, NULL), COFFER_OK);
	return doc;
}

/* ---- tests ---- */

static int setup(void **state)
{
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
	(void)state;
	log_set_level(LOG_ERROR);
	assert_int_equal(sodium_init() >= 0, 1);
	assert_int_equal(secret_new(HOSTAUTH_SK_LEN, &host_sk), COFFER_OK);
	assert_int_equal(secret_new(HOSTAUTH_SK_LEN, &other_sk), COFFER_OK);
	crypto_sign_keypair(host_pk, sk);
	memcpy(secret_bytes(host_sk), sk, sizeof(sk));
	crypto_sign_keypair(other_pk, sk);
	memcpy(secret_bytes(other_sk), sk, sizeof(sk));
	sodium_memzero(sk, sizeof(sk));
	assert_int_equal(hostauth_replay_new(0, &replay), COFFER_OK);
	phases = (struct http_phases){ .ops = &ops, .ctx = NULL, .replay = replay };
	struct http_server_config cfg = {
		.listen = "127.0.0.1:0", .gate = http_phase_gate, .done = http_phase_done, .hook_ctx = &phases
	};
	assert_int_equal(http_server_start(&cfg, routes, sizeof(routes) / sizeof(routes[0]), NULL, &server),
			 COFFER_OK);
	assert_true(snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%u", http_server_port(server)) > 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	http_server_stop(server);
	hostauth_replay_free(replay);
	secret_free(host_sk);
	secret_free(other_sk);
	return 0;
}

static void test_route_without_auth(void **state)
{
	struct answer a;
	(void)state;
	int begins = atomic_load(&n_begin), audits = atomic_load(&n_audit);
	call("GET", "/open", NULL, NULL, &a);
	assert_int_equal(a.status, 200);
	json_t *doc = answer_json(&a);
	assert_int_equal(json_integer_value(json_object_get(doc, "kind")), HTTP_CALLER_NONE);
	assert_int_equal(json_integer_value(json_object_get(doc, "admitted")), 0);
	json_decref(doc);
	assert_int_equal(atomic_load(&n_begin), begins); /* no gate, no role data */
	assert_int_equal(atomic_load(&n_audit), audits); /* not audited */
	buf_release(&a.body);
}

static void test_bearer_accepts(void **state)
{
	struct answer a;
	const char *h[] = { "Authorization: Bearer good", NULL };
	(void)state;
	call("POST", "/bearer", "x", h, &a);
	assert_int_equal(a.status, 200);
	json_t *doc = answer_json(&a);
	assert_int_equal(json_integer_value(json_object_get(doc, "kind")), HTTP_CALLER_BEARER);
	assert_int_equal(json_integer_value(json_object_get(doc, "admitted")), 1);
	assert_string_equal(json_string_value(json_object_get(doc, "actor")), "user-1");
	json_decref(doc);
	assert_event("bearer", "user-1", "ok");
	assert_string_equal(last.detail, "{}");
	assert_true(last.admitted);
	buf_release(&a.body);
}

static void test_bearer_refuses(void **state)
{
	struct answer a;
	const char *bad[] = { "Authorization: Bearer nope", NULL };
	const char *down[] = { "Authorization: Bearer down", NULL };
	(void)state;
	int handled = atomic_load(&n_handler);

	call("POST", "/bearer", "x", NULL, &a);
	assert_error(&a, 401, "unauthenticated", "bad token");
	assert_true(a.www_authenticate);
	assert_event("bearer", "anonymous", "denied:unauthenticated");
	assert_string_equal(last.refusal, "bad token");
	buf_release(&a.body);

	call("POST", "/bearer", "x", bad, &a);
	assert_error(&a, 401, "unauthenticated", "bad token");
	buf_release(&a.body);

	/* the role's own failure is an error, not a denial, and carries no challenge */
	call("POST", "/bearer", "x", down, &a);
	assert_int_equal(a.status, 503);
	assert_false(a.www_authenticate);
	assert_event("bearer", "anonymous", "error:unavailable");
	buf_release(&a.body);

	/* a refused route without HTTP_ROUTE_AUDIT is answered the same, and not audited */
	int audits = atomic_load(&n_audit);
	call("GET", "/quiet", NULL, bad, &a);
	assert_error(&a, 401, "unauthenticated", "bad token");
	assert_int_equal(atomic_load(&n_audit), audits);
	buf_release(&a.body);

	assert_int_equal(atomic_load(&n_handler), handled);
}

static void test_admit_refuses(void **state)
{
	struct answer a;
	const char *h[] = { "Authorization: Bearer good", NULL };
	(void)state;
	int handled = atomic_load(&n_handler);
	call("POST", "/refuse", "x", h, &a);
	assert_error(&a, 403, "forbidden", "not allowed");
	assert_int_equal(atomic_load(&n_handler), handled);
	/* authenticated, not admitted: the actor is known, the outcome a denial */
	assert_event("refuse", "user-1", "denied:forbidden");
	assert_false(last.admitted);
	buf_release(&a.body);
}

static void test_host_accepts(void **state)
{
	struct answer a;
	struct hostauth_headers hh;
	(void)state;
	call_signed("good", host_sk, "/host", "x", &a, &hh);
	assert_int_equal(a.status, 200);
	json_t *doc = answer_json(&a);
	assert_int_equal(json_integer_value(json_object_get(doc, "kind")), HTTP_CALLER_HOST);
	assert_string_equal(json_string_value(json_object_get(doc, "actor")), "host:good");
	assert_string_equal(json_string_value(json_object_get(doc, "host")), "good");
	json_decref(doc);
	assert_event("host", "host:good", "ok");
	buf_release(&a.body);

	/* the same request again: the replay cache refuses it */
	call_signed(NULL, host_sk, "/host", "x", &a, &hh);
	assert_error(&a, 401, "unauthenticated", "request replayed");
	assert_event("host", "anonymous", "denied:unauthenticated");
	assert_string_equal(last.detail, "{\"host_id\":\"good\",\"refused\":\"request replayed\"}");
	buf_release(&a.body);

	/* after a restart (a new replay cache), the role's persisted nonces still refuse it */
	struct hostauth_replay *old = phases.replay;
	assert_int_equal(hostauth_replay_new(0, &phases.replay), COFFER_OK);
	call_signed(NULL, host_sk, "/host", "x", &a, &hh);
	assert_error(&a, 401, "unauthenticated", "request replayed");
	assert_event("host", "anonymous", "denied:unauthenticated");
	buf_release(&a.body);
	hostauth_replay_free(phases.replay);
	phases.replay = old;
}

static void test_host_refuses(void **state)
{
	static const struct {
		const char *host;
		int other_key;
		int status;
		const char *code, *message;
	} cases[] = {
		{ "ghost", 0, 401, "unauthenticated", "unknown host" },
		{ "forged", 0, 401, "unauthenticated", "host record failed verification" },
		{ "pending", 0, 401, "unauthenticated", "host is not enrolled" },
		{ "good", 1, 401, "unauthenticated", "request signature does not verify" },
		{ "down", 0, 500, "store_error", "store error" },
	};
	struct answer a;
	struct hostauth_headers hh;
	(void)state;
	int handled = atomic_load(&n_handler);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		call_signed(cases[i].host, cases[i].other_key ? other_sk : host_sk, "/host", "x", &a, &hh);
		assert_int_equal(a.status, cases[i].status);
		if (cases[i].status == 401) {
			assert_error(&a, 401, cases[i].code, cases[i].message);
			assert_event("host", "anonymous", "denied:unauthenticated");
			assert_string_equal(last.refusal, cases[i].message);
		} else {
			assert_event("host", "anonymous", "error:store_error");
		}
		buf_release(&a.body);
	}
	/* no signature headers at all; a token is no substitute */
	const char *h[] = { "Authorization: Bearer good", NULL };
	call("POST", "/host", "x", h, &a);
	assert_error(&a, 401, "unauthenticated", "missing or malformed host signature headers");
	buf_release(&a.body);
	/* the body is signed: another body under the same headers does not verify */
	call_signed("good", host_sk, "/host", "x", &a, &hh);
	assert_int_equal(a.status, 200);
	buf_release(&a.body);
	struct hostauth_request r = { "POST", "/host", "x", 1 };
	assert_int_equal(hostauth_sign_headers(host_sk, "good", &r, (int64_t)time(NULL), &hh), COFFER_OK);
	call_signed(NULL, host_sk, "/host", "y", &a, &hh);
	assert_error(&a, 401, "unauthenticated", "request signature does not verify");
	buf_release(&a.body);

	assert_int_equal(atomic_load(&n_handler), handled + 1);
}

static void test_denied_rule(void **state)
{
	struct http_caller c;
	char out[HTTP_AUDIT_OUTCOME_MAX];
	(void)state;
	memset(&c, 0, sizeof(c));

	/* refused by a gate, or on a route without one: 401, 403, 404 are denials */
	assert_true(http_phase_denied(NULL, COFFER_ERR_UNAUTH));
	assert_true(http_phase_denied(&c, COFFER_ERR_FORBIDDEN));
	assert_true(http_phase_denied(&c, COFFER_ERR_NOT_FOUND));
	assert_false(http_phase_denied(&c, COFFER_ERR_CONFLICT));
	assert_false(http_phase_denied(&c, COFFER_ERR_STORE));
	assert_false(http_phase_denied(NULL, COFFER_ERR_TOO_LARGE));
	/* once admitted, nothing is a denial */
	c.admitted = 1;
	assert_false(http_phase_denied(&c, COFFER_ERR_NOT_FOUND));
	assert_false(http_phase_denied(&c, COFFER_ERR_FORBIDDEN));

	assert_int_equal(http_phase_outcome(&c, 200, COFFER_OK, out), COFFER_OK);
	assert_string_equal(out, "ok");
	assert_int_equal(http_phase_outcome(&c, 404, COFFER_ERR_NOT_FOUND, out), COFFER_OK);
	assert_string_equal(out, "error:not_found");
	assert_int_equal(http_phase_outcome(NULL, 404, COFFER_ERR_NOT_FOUND, out), COFFER_OK);
	assert_string_equal(out, "denied:not_found");
	/* a status without a code: the code of the status */
	assert_int_equal(http_phase_outcome(NULL, 413, COFFER_OK, out), COFFER_OK);
	assert_string_equal(out, "error:too_large");
}

static void test_denied_over_the_wire(void **state)
{
	struct answer a;
	const char *h[] = { "Authorization: Bearer good", NULL };
	(void)state;

	/* admitted, then the handler's 404: an error */
	call("POST", "/bearer", "fail", h, &a);
	assert_error(&a, 404, "not_found", "no such thing");
	assert_event("bearer", "user-1", "error:not_found");
	buf_release(&a.body);

	/* an ungated route whose handler refuses the caller: a denial, with no role data made */
	int begins = atomic_load(&n_begin);
	call("POST", "/ungated", "no", NULL, &a);
	assert_error(&a, 401, "unauthenticated", "invalid join token");
	assert_event("ungated", "anonymous", "denied:unauthenticated");
	assert_int_equal(atomic_load(&n_begin), begins);
	buf_release(&a.body);

	/* its handler names the actor it learnt */
	call("POST", "/ungated", "ok", NULL, &a);
	assert_int_equal(a.status, 201);
	assert_event("ungated", "host:new", "ok");
	buf_release(&a.body);
}

static void test_audit_note_and_detail(void **state)
{
	struct answer a;
	const char *h[] = { "Authorization: Bearer good", NULL };
	(void)state;

	call("POST", "/bearer", "note", h, &a);
	assert_int_equal(a.status, 200);
	assert_event("bearer", "user-1", "ok");
	assert_string_equal(last.app, "web");
	assert_string_equal(last.detail, "{\"name\":\"DB_URL\"}");
	buf_release(&a.body);

	/* a detail over HTTP_AUDIT_DETAIL_MAX is written as {} */
	call("POST", "/bearer", "big", h, &a);
	assert_int_equal(a.status, 200);
	assert_string_equal(last.detail, "{}");
	buf_release(&a.body);

	/* refused before the gate (a body over the limit): the audit runs without a caller */
	char body[BODY_MAX + 2];
	memset(body, 'b', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	call("POST", "/host", body, NULL, &a);
	assert_int_equal(a.status, 413);
	assert_event("host", "anonymous", "error:too_large");
	assert_false(last.had_caller);
	buf_release(&a.body);
}

static void test_handler_audits(void **state)
{
	struct answer a;
	struct hostauth_headers hh;
	(void)state;
	int audits = atomic_load(&n_audit), refused = atomic_load(&n_refused);

	/* the handler audited: the phase adds nothing */
	call_signed("good", host_sk, "/self", "ok", &a, &hh);
	assert_int_equal(a.status, 200);
	assert_int_equal(atomic_load(&n_audit), audits);
	assert_int_equal(atomic_load(&n_refused), refused);
	buf_release(&a.body);

	/* refused by the gate: the role's refusal hook, with the gate's reason */
	call_signed("ghost", host_sk, "/self", "ok", &a, &hh);
	assert_int_equal(a.status, 401);
	assert_int_equal(atomic_load(&n_refused), refused + 1);
	assert_string_equal(last.refusal, "unknown host");
	assert_true(last.had_caller);
	buf_release(&a.body);

	/* refused by the handler before it audits: the reason it noted */
	call_signed("good", host_sk, "/self", "bad", &a, &hh);
	assert_int_equal(a.status, 400);
	assert_int_equal(atomic_load(&n_refused), refused + 2);
	assert_string_equal(last.refusal, "malformed request body");
	buf_release(&a.body);

	/* refused before the gate: no caller, the error's name */
	call("POST", "/self", "this body is over sixteen bytes", NULL, &a);
	assert_int_equal(a.status, 413);
	assert_int_equal(atomic_load(&n_refused), refused + 3);
	assert_string_equal(last.refusal, "too_large");
	assert_false(last.had_caller);
	buf_release(&a.body);
	assert_int_equal(atomic_load(&n_audit), audits);
}

static void test_role_data_released(void **state)
{
	struct answer a;
	const char *h[] = { "Authorization: Bearer good", NULL };
	(void)state;
	for (int i = 0; i < 5; i++) {
		call("POST", "/bearer", "x", h, &a);
		buf_release(&a.body);
	}
	/* ops->answered ran when each answer was queued, before it went out */
	assert_int_equal(atomic_load(&n_answered), atomic_load(&n_begin));
	/* ops->end runs when each request is freed, just after its answer went out */
	for (int i = 0; i < 500 && atomic_load(&n_end) != atomic_load(&n_begin); i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	assert_int_equal(atomic_load(&n_end), atomic_load(&n_begin));
	assert_true(atomic_load(&n_begin) >= 5);
	assert_int_equal(atomic_load(&n_odd), 0);
}

static void test_route_flags_checked(void **state)
{
	static const struct http_route host_without_auth[] = { { "POST", "/x", HTTP_ROUTE_HOST, 0, h_who, "x" } };
	static const struct http_route host_early[] = {
		{ "POST", "/x", HTTP_ROUTE_AUTH | HTTP_ROUTE_HOST | HTTP_ROUTE_GATE_EARLY, 0, h_who, "x" }
	};
	static const struct http_route handler_audit_alone[] = {
		{ "POST", "/x", HTTP_ROUTE_AUDIT_HANDLER, 0, h_who, "x" }
	};
	struct http_server_config cfg = { .listen = "127.0.0.1:0", .gate = http_phase_gate, .hook_ctx = &phases };
	struct http_server *s = NULL;
	(void)state;
	assert_int_equal(http_server_start(&cfg, host_without_auth, 1, NULL, &s), COFFER_ERR_INVALID);
	assert_int_equal(http_server_start(&cfg, host_early, 1, NULL, &s), COFFER_ERR_INVALID);
	assert_int_equal(http_server_start(&cfg, handler_audit_alone, 1, NULL, &s), COFFER_ERR_INVALID);
	assert_null(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_without_auth),
		cmocka_unit_test(test_bearer_accepts),
		cmocka_unit_test(test_bearer_refuses),
		cmocka_unit_test(test_admit_refuses),
		cmocka_unit_test(test_host_accepts),
		cmocka_unit_test(test_host_refuses),
		cmocka_unit_test(test_denied_rule),
		cmocka_unit_test(test_denied_over_the_wire),
		cmocka_unit_test(test_audit_note_and_detail),
		cmocka_unit_test(test_handler_audits),
		cmocka_unit_test(test_role_data_released),
		cmocka_unit_test(test_route_flags_checked),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
