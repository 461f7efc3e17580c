/*
 * auth.c — the api's one gate (authentication, app visibility, roles) and
 * its tokens. The order of the checks is the contract: a bad credential is
 * 401 whatever the route; then an app the token may not see is 404, so no
 * name leaks across orgs or outside an app-limited token; only then is a
 * too small role 403. The gates themselves are the shared phases
 * (http_phase.h): this file gives them the api's callbacks. A host route
 * (HTTP_ROUTE_HOST) takes no token: its row is trusted when the keeper's
 * certificate over it verifies.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "encode.h"
#include "http_phase.h"
#include "log.h"
#include "banned.h"

#define BEARER "Bearer "
#define BEARER_LEN 7

static const char *const role_names[] = {
	[API_ROLE_NONE] = "none",
	[API_ROLE_READ] = "read",
	[API_ROLE_DEPLOY] = "deploy",
	[API_ROLE_ADMIN] = "admin",
};

const char *api_role_name(enum api_role r)
{
	return (unsigned)r <= API_ROLE_ADMIN ? role_names[r] : "none";
}

enum api_role api_role_parse(const char *name)
{
	for (int r = API_ROLE_READ; r <= API_ROLE_ADMIN; r++)
		if (strcmp(name, role_names[r]) == 0)
			return (enum api_role)r;
	return API_ROLE_NONE;
}

enum coffer_err api_token_id(const char *store_id, char out[API_TOKEN_ID_SIZE])
{
	return fmt_into(out, API_TOKEN_ID_SIZE, "%s%s", API_TOKEN_ID_PREFIX, store_id);
}

enum coffer_err api_token_mint(struct secret **token, unsigned char hash[STORE_HASH_LEN])
{
	unsigned char raw[API_TOKEN_BYTES];
	struct secret *t = NULL;
	enum coffer_err rc = secret_new(API_TOKEN_LEN, &t);
	if (rc)
		return rc;
	randombytes_buf(raw, sizeof(raw));
	memcpy(secret_bytes(t), API_TOKEN_PREFIX, API_TOKEN_PREFIX_LEN);
	/* Encoded straight into secure memory: the base64 text is the token. */
	sodium_bin2base64((char *)secret_bytes(t) + API_TOKEN_PREFIX_LEN, API_TOKEN_B64_LEN + 1, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	crypto_hash_sha256(hash, secret_cbytes(t), API_TOKEN_LEN);
	*token = t;
	return COFFER_OK;
}

/* ---- authentication ---- */

/* The token's hash if the header is "Bearer coffer_<43 base64url>"; what is wrong otherwise. */
static enum coffer_err parse_bearer(const char *header, unsigned char hash[STORE_HASH_LEN], const char **why)
{
	unsigned char raw[API_TOKEN_BYTES];
	size_t raw_len = 0;

	if (!header || !*header) {
		*why = "missing bearer token";
		return COFFER_ERR_UNAUTH;
	}
	*why = "malformed bearer token";
	if (strncasecmp(header, BEARER, BEARER_LEN) != 0)
		return COFFER_ERR_UNAUTH;
	const char *tok = header + BEARER_LEN;
	if (strlen(tok) != API_TOKEN_LEN || memcmp(tok, API_TOKEN_PREFIX, API_TOKEN_PREFIX_LEN) != 0)
		return COFFER_ERR_UNAUTH;
	/* Strict: the whole text is base64url of exactly 32 bytes. */
	int bad = b64_decode_into(B64_URL, tok + API_TOKEN_PREFIX_LEN, API_TOKEN_B64_LEN, raw, sizeof(raw), &raw_len);
	sodium_memzero(raw, sizeof(raw));
	if (bad || raw_len != API_TOKEN_BYTES)
		return COFFER_ERR_UNAUTH;
	crypto_hash_sha256(hash, (const unsigned char *)tok, API_TOKEN_LEN);
	*why = NULL;
	return COFFER_OK;
}

static const char token_tampered[] = "token row failed authentication (tampered)";

/*
 * The valid token of the bearer header, or COFFER_ERR_UNAUTH with *why; a
 * store error as itself.
 */
static enum coffer_err authenticate(struct store *s, const char *header, struct store_token *out, const char **why)
{
	unsigned char hash[STORE_HASH_LEN];
	struct store_token t;
	enum coffer_err rc = parse_bearer(header, hash, why);
	if (rc)
		return rc;
	rc = store_token_get_by_hash(s, hash, &t);
	if (rc == COFFER_ERR_NOT_FOUND || (rc == COFFER_OK && !ct_equal(t.hash, hash, sizeof(hash)))) {
		*why = "unknown token";
		return COFFER_ERR_UNAUTH;
	}
	/* A forged or edited token row (logged row_tampered by the store) is refused like a wrong token. */
	if (rc == COFFER_ERR_TAMPERED) {
		*why = token_tampered;
		return COFFER_ERR_UNAUTH;
	}
	if (rc) {
		*why = NULL;
		return rc;
	}
	if (t.revoked_at) {
		*why = "token revoked";
		return COFFER_ERR_UNAUTH;
	}
	if (t.expires_at && t.expires_at <= api_now_ms()) {
		*why = "token expired";
		return COFFER_ERR_UNAUTH;
	}
	*out = t;
	return COFFER_OK;
}

enum coffer_err api_identify(struct store *s, struct http_request *req, struct store_token *token)
{
	const char *why;
	return authenticate(s, http_request_header(req, "Authorization"), token, &why);
}

enum coffer_err api_host_check(const struct api *api, const struct store_host *h, int64_t *issued_at)
{
	struct hostauth_identity id = { h->id, h->name, h->sign_pk, h->seal_pk };
	if (hostauth_cert_verify(api->keeper_pk, &id, h->cert, h->cert_len, issued_at) != COFFER_OK) {
		log_warn("host_row_tampered", LF_S("host_id", h->id), LF_S("check", "certificate"));
		return COFFER_ERR_CRYPTO;
	}
	return COFFER_OK;
}

enum coffer_err api_note(struct api_auth *a, enum coffer_err rc)
{
	if (a && rc == COFFER_ERR_UNAVAILABLE)
		a->store_rc = rc;
	return rc;
}

/* The :app of the route, if the token may see it; 404 otherwise. */
static enum coffer_err resolve_app(struct http_request *req, struct api_auth *a)
{
	const char *name = http_request_param(req, "app");
	struct store_app app;
	enum coffer_err rc;

	if (!name)
		return http_reply_error(req, COFFER_ERR_INTERNAL, NULL); /* a route flag without :app */
	if (!api_app_name_ok(name))
		return http_reply_error(req, COFFER_ERR_NOT_FOUND, "app not found");
	rc = api_note(a, store_app_get_by_name(a->store, name, &app));
	if (rc == COFFER_OK && (strcmp(app.org_id, a->token.org_id) != 0 ||
				(a->token.app_id[0] && strcmp(app.id, a->token.app_id) != 0)))
		rc = COFFER_ERR_NOT_FOUND; /* never 403 across orgs or apps */
	if (rc == COFFER_ERR_NOT_FOUND)
		return api_fail(req, rc, "app '%s' not found", name);
	if (rc == COFFER_ERR_TAMPERED) /* logged row_tampered by the store */
		return api_fail(req, rc, "app '%s': its stored row failed authentication (tampered)", name);
	if (rc)
		return http_reply_error(req, rc, NULL);
	a->app = app;
	a->has_app = 1;
	return COFFER_OK;
}

/* ---- the api's side of the shared phases (http_phase.h) ---- */

/* The request's principal and a store connection lent to it, before any gate. */
static enum coffer_err api_begin(void *ctx, struct http_request *req, struct http_caller *c)
{
	struct api *api = ctx;
	struct api_auth *a = calloc(1, sizeof(*a));
	enum coffer_err rc;

	if (!a)
		return COFFER_ERR_NOMEM;
	a->api = api;
	c->role = a;
	rc = store_pool_acquire(api->pool, &a->store);
	if (rc) {
		a->store = NULL;
		return http_reply_error(req, rc, NULL);
	}
	return COFFER_OK;
}

/* The answer is queued: the store connection goes back now, not when the answer is out (http_phase.h). */
static void api_answered(void *p)
{
	struct api_auth *a = p;
	if (a->store)
		store_pool_release(a->api->pool, a->store, a->store_rc);
	a->store = NULL;
	a->store_rc = COFFER_OK;
}

static void api_end(void *p)
{
	struct api_auth *a = p;
	if (a->store)
		store_pool_release(a->api->pool, a->store, a->store_rc);
	sodium_memzero(a, sizeof(*a));
	free(a);
}

struct api_auth *api_auth_of(struct http_request *req)
{
	struct http_caller *c = http_caller_of(req);
	return c ? c->role : NULL;
}

/* A host row is trusted when the keeper's certificate over it verifies. */
static enum coffer_err api_host_load(void *ctx, struct http_caller *c, const char *id, struct store_host *out)
{
	struct api_auth *a = c->role;
	struct store_host h;
	enum coffer_err rc = api_note(a, store_host_get(a->store, id, &h));
	(void)ctx;
	if (rc)
		return rc;
	rc = api_host_check(a->api, &h, NULL);
	if (rc)
		return rc;
	*out = h;
	return COFFER_OK;
}

/* A host request's nonce, in the store: a restarted api, or another replica, refuses its replay. */
static enum coffer_err api_replay(void *ctx, struct http_caller *c, const char *host_id, const char *nonce,
				  int64_t expires_at, int64_t now)
{
	struct api_auth *a = c->role;
	(void)ctx;
	return api_note(a, store_host_nonce_use(a->store, host_id, nonce, expires_at, now));
}

/* A user's token: valid, not revoked, not expired; the actor is its id. */
static enum coffer_err api_bearer(void *ctx, struct http_caller *c, const char *header, char actor[HTTP_ACTOR_MAX],
				  const char **why)
{
	struct api_auth *a = c->role;
	enum coffer_err rc = api_note(a, authenticate(a->store, header, &a->token, why));
	(void)ctx;
	if (rc == COFFER_ERR_UNAUTH && *why == token_tampered) {
		/* the audit event of an audited route names the forged row, not only "denied:unauthenticated" */
		json_decref(c->audit_detail);
		c->audit_detail = json_pack("{s:s}", "refused", *why);
	}
	if (rc)
		return rc;
	a->authenticated = 1;
	a->role = api_role_parse(a->token.role);
	if (api_token_id(a->token.id, a->token_id) || str_copy(actor, HTTP_ACTOR_MAX, a->token_id))
		return COFFER_ERR_INTERNAL;
	return COFFER_OK;
}

/* A host is admitted as itself; a token then needs to see the :app, then the route's role. */
static enum coffer_err api_admit(void *ctx, struct http_request *req, const struct http_route *route,
				 struct http_caller *c)
{
	struct api_auth *a = c->role;
	enum coffer_err rc;
	(void)ctx;

	if (c->kind == HTTP_CALLER_HOST) {
		a->host_authenticated = 1;
		a->host = c->host;
		return COFFER_OK;
	}
	if (route->flags & API_ROUTE_APP) {
		rc = resolve_app(req, a);
		if (rc)
			return rc;
	}
	enum api_role need = (enum api_role)((route->flags & API_ROUTE_ROLE_MASK) >> HTTP_ROUTE_OWNER_SHIFT);
	if (need == API_ROLE_NONE || a->role < need)
		return api_fail(req, COFFER_ERR_FORBIDDEN, "a %s token may not do this: it needs the %s role",
				api_role_name(a->role), api_role_name(need));
	return COFFER_OK;
}

const struct http_phase_ops api_phase_ops = {
	.begin = api_begin,
	.end = api_end,
	.answered = api_answered,
	.host_load = api_host_load,
	.replay = api_replay,
	.bearer = api_bearer,
	.admit = api_admit,
	.audit = api_audit_event,
};
