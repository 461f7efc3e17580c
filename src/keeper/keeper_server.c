/*
 * keeper_server.c — the keeper's HTTP server: its route table, its
 * callbacks of the shared phases (http_phase.h: the api credential, the
 * host row under its registry MAC, the audit of host enrolment and of opens
 * refused before keeper_open ran) and the handlers. Handlers borrow store
 * connections from a store_pool (a struct store is one thread's at a time;
 * the server runs a thread per connection).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <time.h>

#include <sodium.h>

#include "answersig.h"
#include "delivery.h"
#include "encode.h"
#include "fs.h"
#include "http_phase.h"
#include "http_server.h"
#include "json.h"
#include "keeper.h"
#include "kms.h"
#include "log.h"
#include "metrics_server.h"
#include "parse.h"
#include "banned.h"

#ifndef COFFER_VERSION
#define COFFER_VERSION "0.1.0"
#endif

#define BEARER_PREFIX "Bearer "
#define MESSAGE_MAX 512
#define B64_SLACK 8

#define KMS_SEEN_SLOTS 256
#define KMS_SEEN_KEY_MAX (STORE_ID_SIZE + KMS_NAME_MAX + 16)

/*
 * The ok uses of KMS keys audited lately: one slot per hash of (machine,
 * key, op), holding which one it is and the window it was audited in. A
 * collision only audits once more than needed.
 */
struct kms_seen {
	pthread_mutex_t mu;
	struct {
		char key[KMS_SEEN_KEY_MAX];
		int64_t window;
	} slot[KMS_SEEN_SLOTS];
};

struct keeper {
	struct keeper_keys keys;
	struct store_pool *pool;
	struct http_server *server;
	struct hostauth_replay *replay; /* nonces of signed host requests */
	struct http_phases phases;      /* the gate and the audit: keeper_phase_ops over this keeper */
	struct keeper_anchor *anchor;   /* the audit anchor (keeper_audit.c), poked after each append */
	struct metrics_server *metrics; /* NULL without --metrics-listen */
	struct kms_seen kms_seen;       /* when each (machine, key, op) last had an ok use audited */
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* ---- the keeper's side of the shared phases (http_phase.h) ---- */

/* A host row is trusted when its registry MAC verifies (keeper_host_load). */
static enum coffer_err keeper_host_row(void *ctx, struct http_caller *c, const char *id, struct store_host *out)
{
	struct keeper *k = ctx;
	struct store *s = NULL;
	(void)c;
	enum coffer_err rc = store_pool_acquire(k->pool, &s);
	if (rc)
		return rc;
	rc = keeper_host_load(&k->keys, s, id, out);
	store_pool_release(k->pool, s, rc);
	return rc;
}

/* A host request's nonce, in the store so a restarted keeper (or another one) refuses its replay. */
static enum coffer_err keeper_replay(void *ctx, struct http_caller *c, const char *host_id, const char *nonce,
				     int64_t expires_at, int64_t now)
{
	struct keeper *k = ctx;
	struct store *s = NULL;
	(void)c;
	enum coffer_err rc = store_pool_acquire(k->pool, &s);
	if (rc)
		return rc;
	rc = store_host_nonce_use(s, host_id, nonce, expires_at, now);
	store_pool_release(k->pool, s, rc);
	return rc;
}

/* The api credential, compared in constant time; the actor is "api". */
static enum coffer_err keeper_bearer(void *ctx, struct http_caller *c, const char *header, char actor[HTTP_ACTOR_MAX],
				     const char **why)
{
	struct keeper *k = ctx;
	unsigned char got[VAULT_CREDENTIAL_LEN];
	size_t plen = strlen(BEARER_PREFIX);
	int ok = 0;
	(void)c;

	if (header && strncasecmp(header, BEARER_PREFIX, plen) == 0 &&
	    hex_decode(header + plen, strlen(header + plen), got, sizeof(got)) == COFFER_OK)
		ok = ct_equal(got, secret_cbytes(k->keys.credential), sizeof(got));
	sodium_memzero(got, sizeof(got));
	if (!ok) {
		*why = "missing or invalid api credential";
		return COFFER_ERR_UNAUTH;
	}
	return str_copy(actor, HTTP_ACTOR_MAX, "api");
}

static enum coffer_err keeper_audit(void *ctx, struct http_request *req, const struct http_route *route,
				    const struct http_caller *c, struct store_audit_event *ev)
{
	struct keeper *k = ctx;
	struct store *s = NULL;
	(void)req;
	(void)route;
	/* the deployer routes name the org their event belongs to, so the org's audit shows it */
	const char *org = c && c->audit_detail ? json_string_value(json_object_get(c->audit_detail, "org_id")) : NULL;
	if (org)
		ev->org_id = org;
	enum coffer_err rc = store_pool_acquire(k->pool, &s);
	if (rc)
		return rc;
	rc = store_audit_append(s, ev, NULL);
	store_pool_release(k->pool, s, rc);
	keeper_anchor_poke(k->anchor);
	return rc;
}

/*
 * A KMS request refused before h_kms_op decided it (signature, replay, a
 * revoked host, a malformed body): a kms.use event like the handler's own,
 * naming what is known of the request.
 */
static enum coffer_err kms_audit_refused(struct store *s, struct http_request *req, int verified, const char *host,
					 const char *reason)
{
	char actor[HTTP_ACTOR_MAX], outcome[160];
	const char *op = http_request_param(req, "op");
	int host_ok = host && hostauth_host_id_ok(host);
	struct buf detail;
	json_t *d = json_object();
	enum coffer_err rc = d ? COFFER_OK : COFFER_ERR_NOMEM;

	buf_init(&detail, STORE_AUDIT_FIELD_MAX);
	/* the path's op and an unverified host id are the caller's words: named only when well formed */
	if (!rc && kms_op_known(op) &&
	    json_object_set_new(d, "op", json_string(op)))
		rc = COFFER_ERR_NOMEM;
	if (!rc && !verified && host_ok && json_object_set_new(d, "claimed_host", json_string(host)))
		rc = COFFER_ERR_NOMEM;
	if (!rc)
		rc = json_dump_buf(d, &detail);
	if (!rc)
		rc = verified && host_ok ? fmt_into(actor, sizeof(actor), "%s%s", HTTP_HOST_ACTOR_PREFIX, host)
					 : str_copy(actor, sizeof(actor), HTTP_ACTOR_ANONYMOUS);
	if (!rc)
		rc = fmt_into(outcome, sizeof(outcome), "refused: %s", reason ? reason : "refused");
	if (rc == COFFER_ERR_TOO_LARGE)
		rc = str_copy(outcome, sizeof(outcome), "refused");
	if (!rc) {
		struct store_audit_event ev = { .actor = actor, .action = KEEPER_KMS_ACTION, .detail = detail.ptr,
						.outcome = outcome, .request_id = http_request_id(req) };
		rc = store_audit_append(s, &ev, NULL);
	}
	json_decref(d);
	buf_release(&detail);
	return rc;
}

/*
 * A request of a route the handler audits, refused before the handler
 * decided it (signature, body, limits): an open in the open's own form, a
 * KMS request as kms.use.
 */
static enum coffer_err keeper_audit_open_refused(void *ctx, struct http_request *req, const struct http_route *route,
						 const struct http_caller *c, const char *reason)
{
	struct keeper *k = ctx;
	struct store *s = NULL;
	int verified = c && c->kind == HTTP_CALLER_HOST;
	const char *host = verified ? c->host.id : http_request_header(req, HOSTAUTH_HEADER_HOST);
	enum coffer_err rc = store_pool_acquire(k->pool, &s);
	if (rc)
		return rc;
	if (route && route->name && strcmp(route->name, KEEPER_KMS_ACTION) == 0)
		rc = kms_audit_refused(s, req, verified, host, reason);
	else
		rc = keeper_open_audit_refusal(s, host, verified, reason, http_request_id(req));
	store_pool_release(k->pool, s, rc);
	keeper_anchor_poke(k->anchor);
	return rc;
}

static const struct http_phase_ops keeper_phase_ops = {
	.host_load = keeper_host_row,
	.replay = keeper_replay,
	.bearer = keeper_bearer,
	.audit = keeper_audit,
	.audit_refused = keeper_audit_open_refused,
};

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

/* One sealed value of a verify body: {"sealed", "key_version", "value_id"?}, opened (the caller frees *out). */
static enum coffer_err verify_open(struct keeper *k, struct store *s, const char *app_id, const char *name,
				   const json_t *v, const char *value_id, struct secret **out)
{
	const char *text = NULL;
	size_t n = 0;
	int64_t version = 0;
	struct secret *sk = NULL;
	struct buf b;
	enum coffer_err rc = COFFER_ERR_INVALID;

	buf_init(&b, KEEPER_VERIFY_BODY_MAX);
	if (!json_is_object(v) || json_get_string(v, "sealed", 1, &text, &n, NULL) ||
	    json_get_int(v, "key_version", 1, 1, UINT32_MAX, &version, NULL) ||
	    (!value_id && json_get_string(v, "value_id", 1, &value_id, NULL, NULL)) || b64url_decode(text, n, &b))
		goto out;
	rc = keeper_app_key_load(&k->keys, s, app_id, (uint64_t)version, &sk);
	if (!rc)
		rc = vault_open_value(sk, app_id, name, (uint32_t)version, value_id, b.ptr, b.len, out);
out:
	secret_free(sk);
	buf_release(&b);
	return rc;
}

/* POST /v1/verify: KEEPER_VERIFY_PATH in keeper.h. */
static enum coffer_err h_verify(struct http_request *req, void *ctx)
{
	static const char *const allowed[] = { "app_id", "app", "org_id", "name", "actor", "stored", "candidate", NULL };
	struct keeper *k = ctx;
	struct store *s = NULL;
	struct json_error jerr;
	json_t *body = NULL, *answer = NULL;
	const char *app_id = NULL, *name = NULL, *actor = NULL, *app = NULL, *org_id = NULL;
	size_t app_id_len = 0;
	struct secret *stored = NULL, *candidate = NULL;
	unsigned char key[crypto_generichash_KEYBYTES], h1[crypto_generichash_BYTES], h2[crypto_generichash_BYTES];
	int match = 0;
	enum coffer_err rc;

	rc = http_request_json(req, &body);
	if (rc)
		goto out;
	rc = json_check_fields(body, allowed, &jerr);
	if (!rc)
		rc = json_get_string(body, "app_id", 1, &app_id, &app_id_len, &jerr);
	if (!rc)
		rc = json_get_string(body, "name", 1, &name, NULL, &jerr);
	if (!rc)
		rc = json_get_string(body, "actor", 1, &actor, NULL, &jerr);
	/* labels of the audit event, so that the org's `coffer audit` shows it: the app's name and org */
	if (!rc)
		rc = json_get_string(body, "app", 1, &app, NULL, &jerr);
	if (!rc)
		rc = json_get_string(body, "org_id", 1, &org_id, NULL, &jerr);
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
	rc = verify_open(k, s, app_id, name, json_object_get(body, "stored"), NULL, &stored);
	if (!rc)
		rc = verify_open(k, s, app_id, name, json_object_get(body, "candidate"), VAULT_VERIFY_VALUE_ID,
				 &candidate);
	store_pool_release(k->pool, s, rc);
	if (!rc) {
		/* equal lengths or not, the same work: keyed hashes of both, compared in constant time */
		randombytes_buf(key, sizeof(key));
		crypto_generichash(h1, sizeof(h1), secret_cbytes(stored), secret_len(stored), key, sizeof(key));
		crypto_generichash(h2, sizeof(h2), secret_cbytes(candidate), secret_len(candidate), key, sizeof(key));
		match = sodium_memcmp(h1, h2, sizeof(h1)) == 0;
		sodium_memzero(key, sizeof(key));
		sodium_memzero(h1, sizeof(h1));
		sodium_memzero(h2, sizeof(h2));
	}
	http_phase_audit_note(req, NULL, app,
			      json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", name, "by", actor, "app_id", app_id, "org_id",
					org_id, "outcome", rc ? "refused" : match ? "matches" : "does not match"));
	if (rc == COFFER_ERR_INVALID || rc == COFFER_ERR_CRYPTO) {
		rc = http_reply_error(req, rc, "a sealed value does not open for this app and name");
		goto out;
	}
	if (rc)
		goto out;
	answer = json_pack("{s:b}", "match", match);
	rc = answer ? http_reply_json(req, 200, answer) : COFFER_ERR_NOMEM;
out:
	json_decref(answer);
	secret_free(candidate);
	secret_free(stored);
	json_decref(body);
	return rc;
}

/* What the audit event of an enrolment names: the host id (once enrolled, also the actor) and the name. */
static void enrol_note(struct http_request *req, const char *host_id, const char *name)
{
	char actor[HTTP_ACTOR_MAX];
	json_t *d = json_object();
	if (!d || (host_id && json_object_set_new(d, "host_id", json_string(host_id))) ||
	    (name && json_object_set_new(d, "name", json_string(name)))) {
		json_decref(d);
		return;
	}
	if (host_id && fmt_into(actor, sizeof(actor), "%s%s", HTTP_HOST_ACTOR_PREFIX, host_id))
		host_id = NULL;
	http_phase_audit_note(req, host_id ? actor : NULL, NULL, d);
}

static enum coffer_err h_hosts_enrol(struct http_request *req, void *ctx)
{
	static const char *const allowed[] = { "join_token", "name", "sign_pk", "seal_pk", "proof", NULL };
	struct keeper *k = ctx;
	struct store *s = NULL;
	struct keeper_enrol_request in;
	struct keeper_enrolled out;
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
	if (keeper_host_name_ok(in.name))
		enrol_note(req, NULL, in.name);
	rc = store_pool_acquire(k->pool, &s);
	if (rc)
		goto out;
	rc = keeper_host_enrol(&k->keys, s, &in, now_s() * 1000, &out, &why);
	store_pool_release(k->pool, s, rc);
	if (rc) {
		rc = http_reply_error(req, rc, why);
		goto out;
	}
	enrol_note(req, out.host_id, keeper_host_name_ok(in.name) ? in.name : NULL);
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
		rc = reply_b64url(doc, ANSWERSIG_KEY_FIELD, k->keys.boot_pk, sizeof(k->keys.boot_pk));
	if (!rc)
		rc = http_reply_json(req, 201, doc);
out:
	json_decref(doc);
	json_decref(body);
	return rc;
}

/* The registry record of the host that signed the request (the gate verified both), and the api's answer key. */
static enum coffer_err h_hosts_self(struct http_request *req, void *ctx)
{
	struct keeper *k = ctx;
	const struct http_caller *c = http_caller_of(req);
	if (!c || c->kind != HTTP_CALLER_HOST)
		return COFFER_ERR_INTERNAL;
	json_t *doc = json_pack("{s:s,s:s,s:s}", "host_id", c->host.id, "name", c->host.name, "state", c->host.state);
	if (!doc)
		return COFFER_ERR_NOMEM;
	enum coffer_err rc = reply_b64url(doc, ANSWERSIG_KEY_FIELD, k->keys.boot_pk, sizeof(k->keys.boot_pk));
	if (!rc)
		rc = http_reply_json(req, 200, doc);
	json_decref(doc);
	return rc;
}

/*
 * POST /v1/hosts/rekey {"host_id","old_sign_pk","sign_pk","seal_pk",
 * "sig_old","sig_new"}: no credential, the two signatures are the
 * authority (keeper_host_rekey checks them); 200 with the new cert.
 */
static enum coffer_err h_hosts_rekey(struct http_request *req, void *ctx)
{
	static const char *const allowed[] = { "host_id", "old_sign_pk", "sign_pk", "seal_pk", "sig_old", "sig_new", NULL };
	struct keeper *k = ctx;
	struct store *s = NULL;
	struct keeper_rekey_request in;
	struct keeper_enrolled out;
	struct json_error jerr;
	json_t *body = NULL, *doc = NULL;
	const char *host_id = NULL, *why = NULL;
	enum coffer_err rc;

	memset(&in, 0, sizeof(in));
	rc = http_request_json(req, &body);
	if (rc)
		goto out;
	rc = json_check_fields(body, allowed, &jerr);
	if (!rc)
		rc = json_get_string(body, "host_id", 1, &host_id, NULL, &jerr);
	if (rc) {
		rc = http_reply_error(req, rc, jerr.message);
		goto out;
	}
	if (!hostauth_host_id_ok(host_id) || str_copy(in.host_id, sizeof(in.host_id), host_id)) {
		rc = http_reply_error(req, COFFER_ERR_UNAUTH, "unknown host");
		goto out;
	}
	enrol_note(req, in.host_id, NULL);
	if ((rc = body_b64(req, body, "old_sign_pk", in.old_sign_pk, sizeof(in.old_sign_pk))) ||
	    (rc = body_b64(req, body, "sign_pk", in.sign_pk, sizeof(in.sign_pk))) ||
	    (rc = body_b64(req, body, "seal_pk", in.seal_pk, sizeof(in.seal_pk))) ||
	    (rc = body_b64(req, body, "sig_old", in.sig_old, sizeof(in.sig_old))) ||
	    (rc = body_b64(req, body, "sig_new", in.sig_new, sizeof(in.sig_new))))
		goto out;
	rc = store_pool_acquire(k->pool, &s);
	if (rc)
		goto out;
	rc = keeper_host_rekey(&k->keys, s, &in, &out, &why);
	store_pool_release(k->pool, s, rc);
	if (rc) {
		if (why)
			log_info("host_rekey_refused", LF_S("host_id", in.host_id), LF_S("reason", why));
		rc = why ? http_phase_refuse(req, rc, why) : rc;
		goto out;
	}
	doc = json_pack("{s:s,s:s}", "host_id", out.host_id, "name", out.name);
	rc = doc ? reply_b64url(doc, "cert", out.cert, sizeof(out.cert)) : COFFER_ERR_NOMEM;
	if (!rc)
		rc = http_reply_json(req, 200, doc);
out:
	json_decref(doc);
	json_decref(body);
	return rc;
}

/*
 * The answer of a host route whose store call (keeper_host_revoke or
 * keeper_host_load) returned rc with h: {"host_id", "name", "state"}, or
 * the refusal (through the audit when audited).
 */
static enum coffer_err reply_host(struct http_request *req, enum coffer_err rc, const struct store_host *h,
				  int audited)
{
	enum coffer_err (*refuse)(struct http_request *, enum coffer_err, const char *) =
		audited ? http_phase_refuse : http_reply_error;
	json_t *doc;
	if (rc == COFFER_ERR_NOT_FOUND)
		return refuse(req, rc, "unknown host");
	if (rc == COFFER_ERR_CRYPTO)
		return refuse(req, COFFER_ERR_CONFLICT, "host record failed verification");
	if (rc)
		return rc;
	doc = json_pack("{s:s,s:s,s:s}", "host_id", h->id, "name", h->name, "state", h->state);
	rc = doc ? http_reply_json(req, 200, doc) : COFFER_ERR_NOMEM;
	json_decref(doc);
	return rc;
}

/*
 * POST /v1/hosts/:id/revoke with the api credential (the api's `hosts
 * revoke`, for an admin): the host is refused from now on (keeper_host_revoke).
 * Revoking a revoked host is 200 again.
 */
static enum coffer_err h_hosts_revoke(struct http_request *req, void *ctx)
{
	struct keeper *k = ctx;
	struct store *s = NULL;
	struct store_host h;
	const char *id = http_request_param(req, "id");
	enum coffer_err rc;

	if (!id || !hostauth_host_id_ok(id))
		return http_reply_error(req, COFFER_ERR_NOT_FOUND, "unknown host");
	http_phase_audit_note(req, NULL, NULL, json_pack("{s:s}", "host_id", id));
	rc = store_pool_acquire(k->pool, &s);
	if (rc)
		return rc;
	rc = keeper_host_revoke(&k->keys, s, id, &h);
	store_pool_release(k->pool, s, rc);
	return reply_host(req, rc, &h, 1);
}

/*
 * GET /v1/hosts/:id (the api credential): the host's id, name and state
 * from its row with the registry MAC verified, so the api can tell a
 * revocation from a state a store writer set (api_hosts_sweep).
 */
static enum coffer_err h_hosts_get(struct http_request *req, void *ctx)
{
	struct keeper *k = ctx;
	struct store *s = NULL;
	struct store_host h;
	const char *id = http_request_param(req, "id");
	enum coffer_err rc;

	if (!id || !hostauth_host_id_ok(id))
		return http_reply_error(req, COFFER_ERR_NOT_FOUND, "unknown host");
	rc = store_pool_acquire(k->pool, &s);
	if (rc)
		return rc;
	rc = keeper_host_load(&k->keys, s, id, &h);
	store_pool_release(k->pool, s, rc);
	return reply_host(req, rc, &h, 0);
}

/*
 * POST /v1/open {"token": "<boot token>"} from a host the gate verified:
 * keeper_open decides, audits and seals; the answer is {"sealed": b64url}.
 */
static enum coffer_err h_open(struct http_request *req, void *ctx)
{
	static const char *const allowed[] = { "token", NULL };
	struct keeper *k = ctx;
	struct http_caller *c = http_caller_of(req);
	struct store *s = NULL;
	struct json_error jerr;
	json_t *body = NULL, *doc = NULL;
	const char *token = NULL, *why = NULL;
	size_t token_len = 0;
	struct buf sealed;
	enum coffer_err rc;

	buf_init(&sealed, DELIVERY_SEALED_MAX);
	if (!c || c->kind != HTTP_CALLER_HOST)
		return COFFER_ERR_INTERNAL;
	rc = http_request_json(req, &body);
	if (rc) {
		c->refusal = "malformed request body";
		goto out;
	}
	rc = json_check_fields(body, allowed, &jerr);
	if (!rc)
		rc = json_get_string(body, "token", 1, &token, &token_len, &jerr);
	if (rc) {
		c->refusal = "malformed request body";
		rc = http_reply_error(req, rc, jerr.message);
		goto out;
	}
	rc = store_pool_acquire(k->pool, &s);
	if (rc)
		goto out;
	rc = keeper_open(&k->keys, s, &c->host, token, token_len, now_s(), http_request_id(req), &sealed, &why);
	store_pool_release(k->pool, s, rc);
	http_phase_audited(req); /* keeper_open appended the event, refused or not */
	keeper_anchor_poke(k->anchor);
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

/*
 * POST /v1/audit/anchor (the api credential, no body): advances the audit
 * anchor and answers {"head": <signed head>} and, when the chain does not
 * extend it, "problem": why (the head is then the old anchor).
 */
static enum coffer_err h_audit_anchor(struct http_request *req, void *ctx)
{
	struct keeper *k = ctx;
	struct anchor_head head;
	char problem[KEEPER_ANCHOR_PROBLEM_MAX];
	json_t *doc;
	enum coffer_err rc = keeper_anchor_advance(k->anchor, &head, problem, sizeof(problem));

	if (rc && rc != COFFER_ERR_CONFLICT)
		return rc;
	doc = json_pack("{s:o}", "head", anchor_to_json(&head));
	if (!doc || (problem[0] && json_object_set_new(doc, "problem", json_string(problem))))
		rc = COFFER_ERR_NOMEM;
	else
		rc = http_reply_json(req, 200, doc);
	json_decref(doc);
	return rc;
}

/* ---- deployers (keeper_deployers.c) ---- */

/* The audit detail of a deployer route: what is known of the deployer (and the refusal), as names and ids. */
static void deployer_note(struct http_request *req, const struct store_deployer *d, const char *claimed,
			  const char *target, const char *refused)
{
	char actor[HTTP_ACTOR_MAX];
	json_t *j = json_object();
	int bad = !j;
	if (!bad && d)
		bad = json_object_set_new(j, "deployer", json_string(d->id)) ||
		      json_object_set_new(j, "org_id", json_string(d->org_id)) ||
		      json_object_set_new(j, "app_id", json_string(d->app_id)) ||
		      json_object_set_new(j, "role", json_string(d->role)) ||
		      json_object_set_new(j, "name", json_string(d->name));
	if (!bad && !d && claimed && hostauth_host_id_ok(claimed))
		bad = json_object_set_new(j, "claimed_deployer", json_string(claimed));
	if (!bad && target)
		bad = json_object_set_new(j, "target", json_string(target));
	if (!bad && refused)
		bad = json_object_set_new(j, "refused", json_string(refused));
	if (bad) {
		json_decref(j);
		return;
	}
	if (!d || fmt_into(actor, sizeof(actor), "%s%s", KEEPER_DEPLOYER_ACTOR_PREFIX, d->id))
		actor[0] = '\0';
	http_phase_audit_note(req, actor[0] ? actor : NULL, NULL, j);
}

static enum coffer_err deployer_refuse(struct http_request *req, const struct store_deployer *d, const char *claimed,
				       const char *target, enum coffer_err code, const char *why)
{
	log_info("deployer_request_refused", LF_S("deployer_id", d ? d->id : claimed), LF_S("reason", why));
	deployer_note(req, d, claimed, target, why);
	return http_phase_refuse(req, code, why);
}

/*
 * A deployer's signed request, with the hosts' scheme (hostauth.h; the
 * deployer id where the host id goes): a live deployer (keeper_deployer_live),
 * the signature under its key within the window, a nonce not seen by this
 * process nor by the store. 0 with *d the signer, or 1 when it answered
 * (refused, 401) or failed (*rc).
 */
static int deployer_gate(struct keeper *k, struct http_request *req, struct store *s, struct store_deployer *d,
			 enum coffer_err *rc)
{
	size_t body_len = 0;
	const char *body = http_request_body(req, &body_len), *why = NULL;
	struct hostauth_presented p = {
		.host = http_request_header(req, HOSTAUTH_HEADER_HOST),
		.timestamp = http_request_header(req, HOSTAUTH_HEADER_TIMESTAMP),
		.nonce = http_request_header(req, HOSTAUTH_HEADER_NONCE),
		.signature = http_request_header(req, HOSTAUTH_HEADER_SIGNATURE),
	};
	struct hostauth_request r = { http_request_method(req), http_request_target(req), body, body_len };
	int64_t now = now_s(), ts = 0;

	if (!hostauth_host_id_ok(p.host) || !r.path) {
		*rc = deployer_refuse(req, NULL, NULL, NULL, COFFER_ERR_UNAUTH,
				      "missing or malformed deployer signature headers");
		return 1;
	}
	*rc = keeper_deployer_live(&k->keys, s, p.host, d, &why);
	if (*rc == COFFER_ERR_NOT_FOUND || *rc == COFFER_ERR_CRYPTO || *rc == COFFER_ERR_UNAUTH) {
		*rc = deployer_refuse(req, *rc == COFFER_ERR_UNAUTH ? d : NULL, p.host, NULL, COFFER_ERR_UNAUTH, why);
		return 1;
	}
	if (*rc)
		return 1;
	*rc = hostauth_verify(&r, &p, d->public_key, k->replay, now, &why);
	if (*rc == COFFER_ERR_UNAUTH) {
		*rc = deployer_refuse(req, d, NULL, NULL, COFFER_ERR_UNAUTH, why);
		return 1;
	}
	if (*rc)
		return 1;
	/* verified: the timestamp is well formed and the nonce needed as long as it is accepted */
	*rc = parse_int64(p.timestamp, 0, INT64_MAX - HOSTAUTH_WINDOW_S, &ts);
	if (!*rc)
		*rc = store_host_nonce_use(s, d->id, p.nonce, ts + HOSTAUTH_WINDOW_S, now);
	if (*rc == COFFER_ERR_CONFLICT) {
		*rc = deployer_refuse(req, d, NULL, NULL, COFFER_ERR_UNAUTH, "request replayed");
		return 1;
	}
	if (*rc)
		return 1;
	char actor[HTTP_ACTOR_MAX];
	if (fmt_into(actor, sizeof(actor), "%s%s", KEEPER_DEPLOYER_ACTOR_PREFIX, d->id) ||
	    http_request_set_actor(req, actor)) {
		*rc = COFFER_ERR_INTERNAL;
		return 1;
	}
	return 0;
}

/* A deployer as JSON: its row (keys and cert in base64url), live or not. */
static json_t *deployer_json(const struct store_deployer *d, int revoked)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:b}", "id", d->id, "org_id", d->org_id, "app_id",
			      d->app_id, "role", d->role, "name", d->name, "created_at", (json_int_t)d->created_at,
			      "revoked_at", (json_int_t)d->revoked_at, "revoked", revoked);
	if (j && (reply_b64url(j, "public_key", d->public_key, sizeof(d->public_key)) ||
		  reply_b64url(j, "cert", d->cert, sizeof(d->cert)))) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/*
 * POST /v1/deployers/enrol {"token","name","public_key","proof"}: the token
 * is the authority (keeper_deployer_enrol checks it, and the proof); 201
 * with the row, the keeper's cert and its public key.
 */
static enum coffer_err h_deployers_enrol(struct http_request *req, void *ctx)
{
	static const char *const allowed[] = { "token", "name", "public_key", "proof", NULL };
	struct keeper *k = ctx;
	struct store *s = NULL;
	struct keeper_deployer_enrol_request in;
	struct store_deployer d;
	struct json_error jerr;
	json_t *body = NULL, *doc = NULL;
	const char *why = NULL;
	enum coffer_err rc;

	memset(&in, 0, sizeof(in));
	rc = http_request_json(req, &body);
	if (rc)
		goto out;
	rc = json_check_fields(body, allowed, &jerr);
	if (!rc)
		rc = json_get_string(body, "token", 1, &in.token, &in.token_len, &jerr);
	if (!rc)
		rc = json_get_string(body, "name", 1, &in.name, NULL, &jerr);
	if (!rc)
		rc = json_get_string(body, "proof", 1, &in.proof, NULL, &jerr);
	if (rc) {
		deployer_note(req, NULL, NULL, NULL, "malformed request body");
		rc = http_phase_refuse(req, rc, jerr.message);
		goto out;
	}
	if ((rc = body_b64(req, body, "public_key", in.public_key, sizeof(in.public_key))))
		goto out;
	rc = store_pool_acquire(k->pool, &s);
	if (rc)
		goto out;
	rc = keeper_deployer_enrol(&k->keys, s, &in, now_s() * 1000, &d, &why);
	store_pool_release(k->pool, s, rc);
	if (rc) {
		if (why) {
			log_info("deployer_enrol_refused", LF_S("reason", why));
			deployer_note(req, NULL, NULL, NULL, why);
			rc = http_phase_refuse(req, rc, why);
		}
		goto out;
	}
	deployer_note(req, &d, NULL, NULL, NULL);
	doc = deployer_json(&d, 0);
	if (!doc) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	rc = reply_b64url(doc, "keeper_public_key", k->keys.signing_pk, sizeof(k->keys.signing_pk));
	if (!rc)
		rc = http_reply_json(req, 201, doc);
out:
	json_decref(doc);
	json_decref(body);
	return rc;
}

/* GET /v1/deployers, deployer-signed: the signer's org's deployers, revoked ones marked. */
static enum coffer_err h_deployers_list(struct http_request *req, void *ctx)
{
	struct keeper *k = ctx;
	struct store *s = NULL;
	struct store_deployer me;
	struct store_deployer_list l = { 0 };
	json_t *doc = NULL, *arr = NULL;
	enum coffer_err rc = store_pool_acquire(k->pool, &s);

	if (rc)
		return rc;
	if (deployer_gate(k, req, s, &me, &rc))
		goto out;
	deployer_note(req, &me, NULL, NULL, NULL);
	rc = store_deployer_list(s, me.org_id, &l);
	if (rc)
		goto out;
	arr = json_array();
	if (!arr) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < l.n && !rc; i++) {
		/* each row as the keeper relies on it: a row that fails its checks is marked, not hidden */
		const char *why = NULL;
		enum coffer_err live = keeper_deployer_live(&k->keys, s, l.items[i].id, NULL, &why);
		if (live && live != COFFER_ERR_UNAUTH && live != COFFER_ERR_CRYPTO) {
			rc = live;
			break;
		}
		json_t *j = deployer_json(&l.items[i], live == COFFER_ERR_UNAUTH);
		if (!j || (live == COFFER_ERR_CRYPTO && json_object_set_new(j, "tampered", json_true())) ||
		    json_array_append_new(arr, j))
			rc = COFFER_ERR_NOMEM;
	}
	if (rc)
		goto out;
	doc = json_pack("{s:O}", "deployers", arr);
	if (!doc) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	rc = http_reply_json(req, 200, doc);
out:
	store_pool_release(k->pool, s, rc);
	store_deployer_list_release(&l);
	json_decref(arr);
	json_decref(doc);
	return rc;
}

/*
 * POST /v1/deployers/:id/revoke, deployer-signed: by the deployer itself,
 * or by an admin of the same org whose app is "*". Revoking a revoked
 * deployer is fine (200 again).
 */
static enum coffer_err h_deployers_revoke(struct http_request *req, void *ctx)
{
	struct keeper *k = ctx;
	struct store *s = NULL;
	struct store_deployer me, target;
	const char *id = http_request_param(req, "id"), *why = NULL;
	json_t *doc = NULL;
	enum coffer_err rc = store_pool_acquire(k->pool, &s);

	if (rc)
		return rc;
	if (deployer_gate(k, req, s, &me, &rc))
		goto out;
	if (!id || !hostauth_host_id_ok(id)) {
		rc = deployer_refuse(req, &me, NULL, NULL, COFFER_ERR_NOT_FOUND, "unknown deployer");
		goto out;
	}
	if (strcmp(id, me.id) != 0) {
		rc = store_deployer_get(s, id, &target);
		/* another org's deployer is not visible: the same answer as none */
		if (rc == COFFER_ERR_NOT_FOUND || (rc == COFFER_OK && strcmp(target.org_id, me.org_id) != 0)) {
			rc = deployer_refuse(req, &me, NULL, id, COFFER_ERR_NOT_FOUND, "unknown deployer");
			goto out;
		}
		if (rc)
			goto out;
		if (strcmp(me.role, DEPLOYER_ROLE_ADMIN) != 0 || strcmp(me.app_id, DEPLOYER_ALL_APPS) != 0) {
			rc = deployer_refuse(req, &me, NULL, id, COFFER_ERR_FORBIDDEN,
					     "only the key itself or an admin of every app of its org may revoke it");
			goto out;
		}
	}
	rc = keeper_deployer_revoke(&k->keys, s, id, now_s() * 1000, &why);
	if (rc && why) {
		rc = deployer_refuse(req, &me, NULL, id, rc == COFFER_ERR_CRYPTO ? COFFER_ERR_CONFLICT : rc, why);
		goto out;
	}
	if (rc)
		goto out;
	deployer_note(req, &me, NULL, id, NULL);
	doc = json_pack("{s:s,s:b}", "id", id, "revoked", 1);
	rc = doc ? http_reply_json(req, 200, doc) : COFFER_ERR_NOMEM;
out:
	store_pool_release(k->pool, s, rc);
	json_decref(doc);
	return rc;
}

/* ---- app KMS keys (keeper_kms.c) ---- */

static json_t *kms_key_json(const struct store_kms_key *k)
{
	char made[32];
	struct tm tm;
	time_t t = (time_t)(k->created_at / 1000);
	if (!gmtime_r(&t, &tm) || strftime(made, sizeof(made), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return NULL;
	json_t *j = json_pack("{s:s,s:s,s:I,s:s}", "name", k->name, "type", k->type, "version",
			      (json_int_t)k->version, "created_at", made);
	if (j && k->public_key_len && reply_b64url(j, "public_key", k->public_key, k->public_key_len)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/*
 * POST /v1/kms/keys, the api credential: {"op": "gen"|"rotate"|"rm"|"list",
 * "app_id", "name", "type"}. gen and rotate answer the new version (201),
 * rm {"name","removed":true}, list {"keys":[...]} (every version).
 */
static enum coffer_err h_kms_keys(struct http_request *req, void *ctx)
{
	static const char *const allowed[] = { "op", "app_id", "name", "type", NULL };
	struct keeper *k = ctx;
	struct store *s = NULL;
	struct store_kms_key key;
	struct store_kms_key_list l = { 0 };
	struct json_error jerr;
	json_t *body = NULL, *doc = NULL, *arr = NULL;
	const char *op = NULL, *app_id = NULL, *name = NULL, *type = NULL;
	size_t app_id_len = 0;
	enum coffer_err rc = http_request_json(req, &body);

	if (rc)
		goto out;
	rc = json_check_fields(body, allowed, &jerr);
	if (!rc)
		rc = json_get_string(body, "op", 1, &op, NULL, &jerr);
	if (!rc)
		rc = json_get_string(body, "app_id", 1, &app_id, &app_id_len, &jerr);
	if (!rc)
		rc = json_get_string(body, "name", strcmp(op, "list") != 0, &name, NULL, &jerr);
	if (!rc)
		rc = json_get_string(body, "type", strcmp(op, "gen") == 0, &type, NULL, &jerr);
	if (rc) {
		rc = http_reply_error(req, rc, jerr.message);
		goto out;
	}
	enum kms_type t;
	if (!app_id_ok(app_id, app_id_len) || (name && !kms_name_ok(name)) || (type && kms_type_parse(type, &t)) ||
	    (strcmp(op, "gen") && strcmp(op, "rotate") && strcmp(op, "rm") && strcmp(op, "list"))) {
		rc = http_reply_error(req, COFFER_ERR_INVALID,
				      !app_id_ok(app_id, app_id_len) ? "'app_id' is not an app id"
				      : name && !kms_name_ok(name)   ? "'name' must be 1 to 64 of A-Z a-z 0-9 _ . -"
				      : type && kms_type_parse(type, &t) ? "'type' must be hmac-sha256, aead or ed25519"
									 : "'op' must be gen, rotate, rm or list");
		goto out;
	}
	json_t *note = json_pack("{s:s,s:s}", "op", op, "app_id", app_id);
	if (note && name)
		json_object_set_new(note, "name", json_string(name));
	http_phase_audit_note(req, NULL, NULL, note);
	rc = store_pool_acquire(k->pool, &s);
	if (rc)
		goto out;
	if (strcmp(op, "list") == 0) {
		rc = store_kms_key_list(s, app_id, &l);
		arr = rc ? NULL : json_array();
		for (size_t i = 0; !rc && i < l.n; i++)
			if (!arr || json_array_append_new(arr, kms_key_json(&l.items[i])))
				rc = COFFER_ERR_NOMEM;
		if (!rc && !(doc = json_pack("{s:O}", "keys", arr)))
			rc = COFFER_ERR_NOMEM;
	} else if (strcmp(op, "rm") == 0) {
		rc = store_kms_key_delete(s, app_id, name);
		if (!rc && !(doc = json_pack("{s:s,s:b}", "name", name, "removed", 1)))
			rc = COFFER_ERR_NOMEM;
	} else {
		rc = keeper_kms_make(&k->keys, s, app_id, name, strcmp(op, "gen") == 0 ? type : NULL, &key);
		if (!rc && !(doc = kms_key_json(&key)))
			rc = COFFER_ERR_NOMEM;
	}
	store_pool_release(k->pool, s, rc);
	if (rc == COFFER_ERR_NOT_FOUND || rc == COFFER_ERR_CONFLICT) {
		rc = http_reply_error(req, rc,
				      rc == COFFER_ERR_CONFLICT && strcmp(op, "rotate") == 0
					      ? "the key was rotated meanwhile; try again"
				      : rc == COFFER_ERR_CONFLICT ? "a key of that name exists (rotate it, or rm it first)"
				      : name			  ? "no such key (or app)"
								  : "no such app");
		goto out;
	}
	if (!rc)
		rc = http_reply_json(req, strcmp(op, "gen") == 0 || strcmp(op, "rotate") == 0 ? 201 : 200, doc);
out:
	store_kms_key_list_release(&l);
	json_decref(arr);
	json_decref(doc);
	json_decref(body);
	return rc;
}

/* 1 when an ok use of (machine, key, op) is to be audited now: the first in its window. */
static int kms_audit_due(struct kms_seen *seen, const char *machine, const char *name, const char *op, int64_t now)
{
	char key[KMS_SEEN_KEY_MAX];
	unsigned char h[8];
	int due = 1;
	if (fmt_into(key, sizeof(key), "%s/%s/%s", machine, name, op))
		return 1;
	crypto_generichash(h, sizeof(h), (const unsigned char *)key, strlen(key), NULL, 0);
	size_t i = (size_t)(be_get(h, sizeof(h)) % KMS_SEEN_SLOTS);
	int64_t window = now / KEEPER_KMS_AUDIT_WINDOW_S;
	pthread_mutex_lock(&seen->mu);
	if (seen->slot[i].window == window && strcmp(seen->slot[i].key, key) == 0)
		due = 0;
	else {
		seen->slot[i].window = window;
		memcpy(seen->slot[i].key, key, strlen(key) + 1);
	}
	pthread_mutex_unlock(&seen->mu);
	return due;
}

/* The audit event of a machine's use of a key: every refusal, and an ok use once per window. */
static enum coffer_err kms_audit(struct keeper *k, struct store *s, struct http_request *req, const char *host,
				 const char *machine, const char *app_id, const char *name, const char *op,
				 uint64_t version, const char *outcome)
{
	char actor[HTTP_ACTOR_MAX];
	struct store_app app;
	struct buf detail;
	json_t *d = json_pack("{s:s,s:s,s:s}", "machine", machine, "key", name, "op", op);
	enum coffer_err rc = d ? COFFER_OK : COFFER_ERR_NOMEM;
	int have_app = app_id && store_app_get(s, app_id, &app) == COFFER_OK;

	buf_init(&detail, STORE_AUDIT_FIELD_MAX);
	if (!rc && version && json_object_set_new(d, "version", json_integer((json_int_t)version)))
		rc = COFFER_ERR_NOMEM;
	if (!rc && strcmp(outcome, "ok") == 0 &&
	    json_object_set_new(d, "audited", json_string("the first ok use per machine, key and op per minute")))
		rc = COFFER_ERR_NOMEM;
	if (!rc)
		rc = json_dump_buf(d, &detail);
	if (!rc)
		rc = fmt_into(actor, sizeof(actor), "%s%s", HTTP_HOST_ACTOR_PREFIX, host);
	if (!rc) {
		struct store_audit_event ev = { .org_id = have_app ? app.org_id : NULL, .actor = actor,
						.action = KEEPER_KMS_ACTION, .app = have_app ? app.name : NULL,
						.detail = detail.ptr, .outcome = outcome,
						.request_id = http_request_id(req) };
		rc = store_audit_append(s, &ev, NULL);
		keeper_anchor_poke(k->anchor);
	}
	json_decref(d);
	buf_release(&detail);
	return rc;
}

/* Decodes an optional base64url field (at most max bytes) into out (a wiping buf). */
static enum coffer_err body_b64_field(const json_t *doc, const char *key, int required, size_t max, struct buf *out)
{
	const char *text = NULL;
	size_t n = 0;
	enum coffer_err rc = json_get_string(doc, key, required, &text, &n, NULL);
	if (rc || !text)
		return rc;
	if (n > B64URL_LEN(max))
		return COFFER_ERR_TOO_LARGE;
	return b64url_decode(text, n, out);
}

/*
 * POST /v1/kms/:op from a host the gate verified: {"machine", "key",
 * "data" (base64url), "signature" (verify)}. keeper_kms_grant decides
 * whether the machine may use its app's keys, then keeper_kms_run. The
 * answer: {"key","version","signature"|"ciphertext"|"data"|"valid"}.
 */
static enum coffer_err h_kms_op(struct http_request *req, void *ctx)
{
	static const char *const allowed[] = { "machine", "key", "data", "signature", NULL };
	struct keeper *k = ctx;
	struct http_caller *c = http_caller_of(req);
	const char *op = http_request_param(req, "op"), *machine = NULL, *name = NULL, *why = NULL;
	struct store *s = NULL;
	struct json_error jerr;
	json_t *body = NULL, *doc = NULL;
	struct buf data, sig, out;
	char app[STORE_ID_SIZE] = "", outcome[160];
	uint64_t version = 0;
	int valid = 0;
	enum coffer_err rc, arc;

	buf_init_wiping(&data, KMS_ENVELOPE_MAX + B64_SLACK);
	buf_init(&sig, KMS_ENVELOPE_MAX + B64_SLACK);
	buf_init_wiping(&out, KMS_ENVELOPE_MAX);
	if (!c || c->kind != HTTP_CALLER_HOST || !op)
		return COFFER_ERR_INTERNAL;
	rc = http_request_json(req, &body);
	if (rc)
		goto out;
	rc = json_check_fields(body, allowed, &jerr);
	if (!rc)
		rc = json_get_string(body, "machine", 1, &machine, NULL, &jerr);
	if (!rc)
		rc = json_get_string(body, "key", 1, &name, NULL, &jerr);
	if (rc) {
		rc = http_reply_error(req, rc, jerr.message);
		goto out;
	}
	if (!hostauth_host_id_ok(machine) || !kms_name_ok(name)) {
		rc = http_reply_error(req, COFFER_ERR_INVALID, "'machine' or 'key' is malformed");
		goto out;
	}
	rc = body_b64_field(body, "data", 1, KMS_ENVELOPE_MAX, &data);
	if (!rc)
		rc = body_b64_field(body, "signature", strcmp(op, "verify") == 0, KMS_ENVELOPE_MAX, &sig);
	if (rc) {
		rc = http_reply_error(req, rc == COFFER_ERR_TOO_LARGE ? rc : COFFER_ERR_INVALID,
				      rc == COFFER_ERR_TOO_LARGE ? "'data' or 'signature' is too large"
								 : "'data' and 'signature' must be base64url");
		goto out;
	}
	rc = store_pool_acquire(k->pool, &s);
	if (rc)
		goto out;
	rc = keeper_kms_grant(&k->keys, s, &c->host, machine, app, &why);
	if (!rc) {
		struct keeper_kms_request r = { op, name, data.ptr, data.len, sig.ptr, sig.len };
		rc = keeper_kms_run(&k->keys, s, app, &r, &out, &valid, &version, &why);
	}
	if (rc && !why)
		arc = fmt_into(outcome, sizeof(outcome), "error: %s", coffer_err_name(rc));
	else if (rc)
		arc = fmt_into(outcome, sizeof(outcome), "refused: %s", why);
	else
		arc = str_copy(outcome, sizeof(outcome), "ok");
	if (!arc && (rc || kms_audit_due(&k->kms_seen, machine, name, op, now_s())))
		arc = kms_audit(k, s, req, c->host.id, machine, app[0] ? app : NULL, name, op, version, outcome);
	if (!arc)
		http_phase_audited(req); /* decided here: audited, or an ok use within its minute */
	store_pool_release(k->pool, s, rc ? rc : arc);
	if (!rc && arc)
		rc = arc; /* a use that cannot be audited is not answered */
	/* only the four ops name a series: the route's :op is the caller's */
	int known = kms_op_known(op);
	metrics_counter_add(&metric_keeper_kms_ops, 1, known ? op : "other", !rc ? "ok" : why ? "refused" : "error");
	log_info(rc ? "kms_refused" : "kms_used", LF_S("host_id", c->host.id), LF_S("machine_id", machine),
		 LF_S("key", name), LF_S("op", op), LF_S("reason", rc ? (why ? why : coffer_err_name(rc)) : NULL));
	if (rc) {
		if (why)
			rc = http_reply_error(req, rc, why);
		goto out;
	}
	doc = json_pack("{s:s,s:I}", "key", name, "version", (json_int_t)version);
	if (!doc) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	if (strcmp(op, "verify") == 0)
		rc = json_object_set_new(doc, "valid", json_boolean(valid)) ? COFFER_ERR_NOMEM : COFFER_OK;
	else
		rc = reply_b64url(doc, strcmp(op, "sign") == 0 ? "signature" : strcmp(op, "encrypt") == 0 ? "ciphertext" : "data",
				  out.ptr, out.len);
	if (!rc)
		rc = http_reply_json(req, 200, doc);
out:
	json_decref(doc);
	json_decref(body);
	buf_release(&out);
	buf_release(&sig);
	buf_release(&data);
	return rc;
}

/* host-signed routes: the signature covers the body, so the gate runs after it */
#define HOST (HTTP_ROUTE_AUTH | HTTP_ROUTE_HOST)

static const struct http_route routes[] = {
	{ "GET", "/v1/health", 0, 0, h_health, "health" },
	{ "POST", "/v1/app-keys", HTTP_ROUTE_AUTH | HTTP_ROUTE_GATE_EARLY, KEEPER_APP_KEYS_BODY_MAX, h_app_keys,
	  "app_keys.create" },
	/* no credential: the join token in the body is the authority, checked by keeper_host_enrol */
	{ "POST", "/v1/hosts/enrol", HTTP_ROUTE_AUDIT, KEEPER_ENROL_BODY_MAX, h_hosts_enrol, "hosts.enrol" },
	{ "GET", "/v1/hosts/self", HOST, 0, h_hosts_self, "hosts.self" },
	/* no credential: the old and the new key's signatures in the body are the authority (keeper_host_rekey) */
	{ "POST", "/v1/hosts/rekey", HTTP_ROUTE_AUDIT, KEEPER_ENROL_BODY_MAX, h_hosts_rekey, "hosts.rekey" },
	/* the api credential: the api's check of a revocation the store shows (api_hosts_sweep) */
	{ "GET", "/v1/hosts/:id", HTTP_ROUTE_AUTH | HTTP_ROUTE_GATE_EARLY, 0, h_hosts_get, "hosts.get" },
	/* the api credential: the api's `hosts revoke` */
	{ "POST", "/v1/hosts/:id/revoke", HTTP_ROUTE_AUTH | HTTP_ROUTE_GATE_EARLY | HTTP_ROUTE_AUDIT, 0, h_hosts_revoke,
	  "hosts.revoke" },
	/* host-signed; the boot token in the body is the authority for one machine's secrets; keeper_open audits */
	{ "POST", "/v1/open", HOST | HTTP_ROUTE_AUDIT | HTTP_ROUTE_AUDIT_HANDLER, KEEPER_OPEN_BODY_MAX, h_open,
	  KEEPER_OPEN_ACTION },
	/* the token in the body is the authority (keeper_deployer_enrol) */
	{ "POST", "/v1/deployers/enrol", HTTP_ROUTE_AUDIT, KEEPER_DEPLOYERS_BODY_MAX, h_deployers_enrol,
	  "deployers.enrol" },
	/* deployer-signed (the hosts' scheme): the handler checks the signer, with its store connection */
	{ "GET", "/v1/deployers", HTTP_ROUTE_AUDIT, 0, h_deployers_list, "deployers.list" },
	{ "POST", "/v1/deployers/:id/revoke", HTTP_ROUTE_AUDIT, 0, h_deployers_revoke, "deployers.revoke" },
	{ "POST", "/v1/kms/keys", HTTP_ROUTE_AUTH | HTTP_ROUTE_GATE_EARLY | HTTP_ROUTE_AUDIT, KEEPER_KMS_KEYS_BODY_MAX,
	  h_kms_keys, "kms.keys" },
	/* host-signed; keeper_kms_grant is the authority; h_kms_op audits (refusals, and ok uses once a minute) */
	{ "POST", "/v1/kms/:op", HOST | HTTP_ROUTE_AUDIT | HTTP_ROUTE_AUDIT_HANDLER, KEEPER_KMS_OP_BODY_MAX, h_kms_op,
	  KEEPER_KMS_ACTION },
	/* the api credential; the api forwards a user's verify (h_secrets_verify) */
	{ "POST", KEEPER_VERIFY_PATH, HTTP_ROUTE_AUTH | HTTP_ROUTE_GATE_EARLY | HTTP_ROUTE_AUDIT, KEEPER_VERIFY_BODY_MAX,
	  h_verify, "secrets.verify" },
	/* not audited: an event per anchoring would itself need anchoring */
	{ "POST", KEEPER_AUDIT_ANCHOR_PATH, HTTP_ROUTE_AUTH | HTTP_ROUTE_GATE_EARLY, 0, h_audit_anchor,
	  "audit.anchor" },
};

/* ---- readiness (metrics_server.h) ---- */

static struct metric *const keeper_metrics[] = { &metric_http_requests, &metric_http_duration,
						 &metric_store_duration, &metric_keeper_opens, &metric_keeper_kms_ops };

/* Ready: the store answers through the pool. */
static int keeper_ready(void *ctx, struct buf *report)
{
	const struct keeper *k = ctx;
	enum coffer_err store_rc = store_pool_ping(k->pool);
	enum coffer_err rc = buf_addf(report, "store: %s%s%s\n", store_rc ? "unreachable (" : "ok",
				      store_rc ? coffer_err_name(store_rc) : "", store_rc ? ")" : "");
	return !rc && !store_rc;
}

/* ---- start and stop ---- */

enum coffer_err keeper_start(const struct keeper_config *cfg, const struct secret *master, struct keeper **out)
{
	struct keeper *k = NULL;
	const char *step = "config", *why = NULL;
	enum coffer_err rc;
	unsigned n = cfg->store_conns ? cfg->store_conns : KEEPER_STORE_CONNS_DEFAULT;

	if (!cfg->store_url || !cfg->listen)
		return COFFER_ERR_INVALID;
	k = calloc(1, sizeof(*k));
	if (!k)
		return COFFER_ERR_NOMEM;
	pthread_mutex_init(&k->kms_seen.mu, NULL);
	step = "keys";
	rc = keeper_keys_derive(master, &k->keys);
	if (!rc && cfg->deployers_revoked_file)
		rc = str_copy(k->keys.deployers_revoked, sizeof(k->keys.deployers_revoked), cfg->deployers_revoked_file);
	if (rc)
		goto out;
	step = "store";
	rc = store_pool_open(cfg->store_url, n, &k->pool);
	if (rc)
		goto out;
	/* The rows the keeper relies on to open (docs/STORE.md "Row authentication"); never tokens. */
	step = "row_keys";
	static const enum store_table verified[] = { STORE_TABLE_MACHINES, STORE_TABLE_RELEASES,
						     STORE_TABLE_SECRET_VERSIONS, STORE_TABLE_APPS,
						     STORE_TABLE_KMS_KEYS };
	for (size_t i = 0; i < sizeof(verified) / sizeof(verified[0]) && !rc; i++)
		rc = store_pool_auth_key(k->pool, verified[i], secret_cbytes(k->keys.rows));
	if (rc)
		goto out;
	step = "app_orgs";
	if (cfg->app_orgs_file) {
		struct store *s = NULL;
		rc = store_pool_acquire(k->pool, &s);
		if (!rc) {
			rc = keeper_app_orgs_bind(&k->keys, s, cfg->app_orgs_file);
			store_pool_release(k->pool, s, rc);
		}
	}
	if (rc)
		goto out;
	step = "replay_cache";
	rc = hostauth_replay_new(0, &k->replay);
	if (rc)
		goto out;
	step = "audit_anchor";
	rc = keeper_anchor_open(&k->keys, k->pool, cfg->anchor_file, &k->anchor, &why);
	if (rc) {
		log_error("audit_anchor_refused", LF_S("file", cfg->anchor_file ? cfg->anchor_file : "(memory)"),
			  LF_S("problem", why ? why : coffer_err_name(rc)));
		goto out;
	}
	step = "listen";
	k->phases = (struct http_phases){ .ops = &keeper_phase_ops, .ctx = k, .replay = k->replay };
	struct http_server_config hcfg = {
		.listen = cfg->listen, .gate = http_phase_gate, .done = http_phase_done, .hook_ctx = &k->phases,
		.tls_cert_file = cfg->tls_cert_file, .tls_key_file = cfg->tls_key_file, .metrics_role = "keeper"
	};
	rc = http_server_start(&hcfg, routes, sizeof(routes) / sizeof(routes[0]), k, &k->server);
	if (rc)
		goto out;
	step = "metrics_listen";
	if (cfg->metrics_listen)
		rc = metrics_server_start(cfg->metrics_listen, keeper_metrics,
					  sizeof(keeper_metrics) / sizeof(keeper_metrics[0]), keeper_ready, k, &k->metrics);
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
	metrics_server_stop(k->metrics); /* its readiness check borrows the pool */
	/* Stopping the server joins its threads: every connection is back in the pool after it. */
	http_server_stop(k->server);
	keeper_anchor_close(k->anchor); /* its last advance borrows a connection */
	store_pool_close(k->pool);
	hostauth_replay_free(k->replay);
	keeper_keys_release(&k->keys);
	pthread_mutex_destroy(&k->kms_seen.mu);
	free(k);
}
