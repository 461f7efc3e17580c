/*
 * api.h — the API server (`coffer api`): it authenticates users, checks
 * deployers' signatures and stores the ciphertexts and keyed digests the
 * CLI made (it never receives a value), the signatures and an audit trail. It holds nothing that can decrypt: no app private key,
 * no master key; only the digest key, the keeper's public key (to verify
 * app keys read from the store) and the credential it shows the keeper.
 *
 * Request flow (docs/API.md): the route table (routes.c) carries, per
 * route, the role it needs (API_ROUTE_ROLE), whether it names an app
 * (API_ROUTE_APP), whether a host signs it instead (HTTP_ROUTE_HOST) and
 * whether it is audited (HTTP_ROUTE_AUDIT). The gate and the audit are the
 * shared phases (http_phase.h) with the api's callbacks (auth.c, h_audit.c):
 * they lend the request a store connection, authenticate the bearer token,
 * resolve the :app (404 across orgs and outside a token's app) and check
 * the role (403); for a host route they check the host's signed request
 * instead (hostauth.h) against a host row whose keeper certificate
 * verifies. Handlers (h_*.c) do no auth or size checks of their own. The
 * done phase appends one audit event per audited request, refused ones
 * included, before the answer is sent.
 *
 * Ownership: struct api owns its keys (wiped by api_stop), its store pool
 * and its server. struct api_auth is one request's, made by the gate's
 * begin callback and released with the request (its store connection goes
 * back to the pool); the audit detail is the request's struct http_caller's
 * (http_phase.h). The token text a handler mints lives in a
 * struct secret and is freed (wiped) once the answer is built.
 */
#ifndef COFFER_API_H
#define COFFER_API_H

#include <stddef.h>
#include <stdint.h>

#include "anchor.h"
#include "deployer.h"
#include "err.h"
#include "hostauth.h"
#include "hpke.h"
#include "http_phase.h"
#include "http_server.h"
#include "json.h"
#include "jws.h"
#include "metrics_server.h"
#include "secret.h"
#include "store.h"
#include "store_pool.h"

#define API_STORE_CONNS_DEFAULT 8
#define API_KEEPER_TIMEOUT_MS 10000
#define API_READY_TIMEOUT_MS 2000 /* the keeper's health, for /readyz */
#define API_KEEPER_RESPONSE_MAX ((size_t)16 << 10)
#define API_URL_MAX 2048
#define API_PATH_MAX 4096
#define API_MESSAGE_MAX 512 /* an error message we build */

/* Tokens: "coffer_" + base64url(32 random bytes), shown once, stored as SHA-256. */
#define API_TOKEN_PREFIX "coffer_"
#define API_TOKEN_PREFIX_LEN 7
#define API_TOKEN_BYTES 32
#define API_TOKEN_B64_LEN 43
#define API_TOKEN_LEN (API_TOKEN_PREFIX_LEN + API_TOKEN_B64_LEN)
#define API_TOKEN_ID_PREFIX "tok_"
#define API_TOKEN_ID_PREFIX_LEN 4
#define API_TOKEN_ID_SIZE (API_TOKEN_ID_PREFIX_LEN + STORE_ID_LEN + 1)
#define API_TOKEN_EXPIRY_MAX_MS ((uint64_t)10 * 366 * 24 * 3600 * 1000) /* ten years */
#define API_TOKEN_OVERLAP_DEFAULT_MS ((uint64_t)3600 * 1000)   /* tokens rotate: the old one lives 1 h more */
#define API_TOKEN_OVERLAP_MAX_MS ((uint64_t)30 * 24 * 3600 * 1000) /* ... at most 30 days */
#define API_ACTOR_ANONYMOUS HTTP_ACTOR_ANONYMOUS

/* Names. */
#define API_APP_NAME_MAX 63 /* ^[a-z][a-z0-9-]{0,62}$ */
#define API_APP_NAME_RULE "^[a-z][a-z0-9-]{0,62}$"
#define API_ORG_NAME_MAX 63 /* ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ */

/* Secrets (DESIGN.md, Limits). */
#define API_SECRET_NAME_MAX 255
#define API_SECRET_NAME_RULE "^[A-Za-z_][A-Za-z0-9_]*$"
#define API_SECRET_RESERVED_PREFIX "COFFER_"
#define API_SECRET_VALUE_MAX ((size_t)64 << 10)
#define API_SECRETS_MAX_COUNT 1000
#define API_SECRETS_MAX_BYTES ((size_t)1 << 20)

/* Route bodies (docs/API.md). */
#define API_BODY_SMALL ((size_t)16 << 10)
#define API_BODY_SECRETS ((size_t)8 << 20)

/* Times: RFC 3339 UTC with seconds. */
#define API_TIME_SIZE 32

/* Audit. */
#define API_AUDIT_LIMIT_DEFAULT 100
#define API_AUDIT_ROW_OVERHEAD 512 /* bytes of an event's JSON besides its detail, at most */
#define API_AUDIT_PAGE_BYTES ((size_t)1 << 20) /* a page stops growing past this; next_after says where to go on */
#define API_AUDIT_DETAIL_MAX HTTP_AUDIT_DETAIL_MAX /* under STORE_AUDIT_FIELD_MAX */

/* Roles, ordered: admin > deploy > read. */
enum api_role { API_ROLE_NONE = 0, API_ROLE_READ = 1, API_ROLE_DEPLOY = 2, API_ROLE_ADMIN = 3 };

/* Route flags of the api, from HTTP_ROUTE_OWNER_SHIFT up. */
#define API_ROUTE_ROLE(r) ((uint32_t)(r) << HTTP_ROUTE_OWNER_SHIFT) /* the least role allowed */
#define API_ROUTE_ROLE_MASK API_ROUTE_ROLE(3)
#define API_ROUTE_APP ((uint32_t)1 << (HTTP_ROUTE_OWNER_SHIFT + 2)) /* the gate resolves :app */

/* Hosts: the keeper creates them; the api writes last_heartbeat only. */
#define API_HOST_STATE_READY HTTP_HOST_STATE_READY
#define API_HOST_STATE_REVOKED HTTP_HOST_STATE_REVOKED

struct release_ctl;

struct api {
	struct store_pool *pool;
	struct secret *digest_key;                /* DIGEST_KEY_LEN bytes */
	unsigned char keeper_pk[JWS_PK_LEN];      /* verifies app keys */
	struct secret *keeper_credential;         /* 64 hex characters, the bearer shown to the keeper */
	char keeper_url[API_URL_MAX];
	struct http_server *server;
	struct hostauth_replay *replay;           /* nonces of signed host requests */
	struct release_ctl *ctl;                  /* the release controller (release.h) */
	struct secret *boot_sk;                   /* boot-token signing key, JWS_SK_LEN bytes; NULL without --boot-key */
	struct http_phases phases;                /* the gate and the audit: api_phase_ops over this api */
	struct anchor_poker *anchor_poker;        /* asks the keeper to anchor the audit head after appends */
	struct metrics_server *metrics;           /* NULL without --metrics-listen */
	struct api_plaintext *plaintext;          /* the api's deployer keys (plaintext.c); NULL: none */
};

/* One request's principal: the role data (http_caller.role) the gate's phases fill. */
struct api_auth {
	struct api *api;
	struct store *store;       /* lent for the request; NULL until the gate got one */
	enum coffer_err store_rc;  /* COFFER_ERR_UNAVAILABLE if the connection should be reopened */
	int authenticated;         /* token below is valid */
	struct store_token token;
	char token_id[API_TOKEN_ID_SIZE];
	enum api_role role;
	int has_app;               /* app below is the route's :app */
	struct store_app app;
	int host_authenticated;    /* host below signed the request (HTTP_ROUTE_HOST) */
	struct store_host host;    /* its row, whose certificate verified */
};

struct api_config {
	const char *state_dir;          /* the api's state folder */
	const char *store_url;
	const char *listen;             /* HOST:PORT; port 0 picks a free one */
	const char *keeper_url;
	const char *keeper_pub_file;
	const char *keeper_credential_file;
	const char *ready_file;         /* NULL, or written with "http(s)://HOST:PORT\n" once listening */
	unsigned store_conns;           /* 0: API_STORE_CONNS_DEFAULT */
	const char *boot_key_file;      /* NULL, or the keeper's api.boot.key: 64 hex, the Ed25519 seed (0600) */
	const char *tls_cert_file, *tls_key_file; /* PEM; both NULL: plain HTTP on loopback only */
	const char *rows_key_file;      /* the keeper's api.rows.key: 64 hex, the row MAC key (0600) */
	const char *digest_key_file;    /* the keeper's api.digest.key: 64 hex, the service's digest key (0600) */
	const char *metrics_listen;     /* NULL, or HOST:PORT of the metrics and health listener (metrics_server.h) */
	const char *const *deployer_key_files; /* --deployer-key: the api's own deployer keys (plaintext.c) */
	size_t n_deployer_keys;
};

/*
 * Reads the keeper's files (digest key, rows key, public key, credential,
 * boot key), opens the store pool and gives it the row keys, starts the server and
 * writes the ready file. why (may be NULL) receives what failed, for the
 * operator; never a key.
 */
COFFER_MUST_CHECK enum coffer_err api_start(const struct api_config *cfg, struct api **out, char *why,
					    size_t why_size);
uint16_t api_port(const struct api *a);
/* Stops the server gracefully, closes the pool, wipes the keys, frees a. NULL is allowed. */
void api_stop(struct api *a);

/* ---- routes.c ---- */

const struct http_route *api_routes(size_t *n);

/* ---- auth.c: the gate, tokens ---- */

/* The api's callbacks of the shared phases (ctx: struct api). */
extern const struct http_phase_ops api_phase_ops;
/* The request's principal (never NULL inside a handler of an authenticated route). */
struct api_auth *api_auth_of(struct http_request *req);
/*
 * Who sent req, without answering: for the audit of a request refused
 * before the gate ran. COFFER_OK and *token when the bearer is a valid token.
 */
COFFER_MUST_CHECK enum coffer_err api_identify(struct store *s, struct http_request *req, struct store_token *token);
/*
 * Checks a host row read from the store against its keeper certificate
 * (hostauth_cert_verify with the keeper's public key): COFFER_ERR_CRYPTO,
 * logged as tampering (host id only), when it does not verify. *issued_at
 * (may be NULL) gets the cert's issue time (unix seconds).
 */
COFFER_MUST_CHECK enum coffer_err api_host_check(const struct api *api, const struct store_host *h,
						 int64_t *issued_at);
/* Records a store result: an unreachable database gets its connection reopened. Returns rc. */
enum coffer_err api_note(struct api_auth *a, enum coffer_err rc);

/* A new token (API_TOKEN_LEN characters in secure memory) and its SHA-256. */
COFFER_MUST_CHECK enum coffer_err api_token_mint(struct secret **token, unsigned char hash[STORE_HASH_LEN]);
/* "tok_" + the store id. */
COFFER_MUST_CHECK enum coffer_err api_token_id(const char *store_id, char out[API_TOKEN_ID_SIZE]);
const char *api_role_name(enum api_role r);
/* API_ROLE_NONE for an unknown name. */
enum api_role api_role_parse(const char *name);

/* ---- shared helpers (routes.c) ---- */

int64_t api_now_ms(void);
/* RFC 3339 UTC with seconds; a JSON null for 0. NULL if out of memory. */
json_t *api_json_time(int64_t ms);
COFFER_MUST_CHECK enum coffer_err api_time_text(int64_t ms, char out[API_TIME_SIZE]);
/* 1 if name matches API_APP_NAME_RULE. */
int api_app_name_ok(const char *name);
/* 1 if s is 1..max printable ASCII characters (0x20..0x7e) without quotes or backslashes. */
int api_quotable(const char *s, size_t len, size_t max);
/* Replies with doc (consumed; NULL answers out of memory). */
COFFER_MUST_CHECK enum coffer_err api_reply(struct http_request *req, int status, json_t *doc);
/* Replies with a formatted error message (never a value or a token in it). */
COFFER_MUST_CHECK enum coffer_err api_fail(struct http_request *req, enum coffer_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * The body of a secrets set (h_secrets.c), without a request: parsed, with
 * a \u0000 in a string let through for the handler to name, and only the
 * known fields. On failure *out is NULL and msg says what is wrong.
 */
#define API_BODY_MSG_SIZE (JSON_ERROR_MESSAGE_MAX + 64)
COFFER_MUST_CHECK enum coffer_err api_secrets_body(const char *body, size_t len, size_t max, json_t **out,
						   char msg[API_BODY_MSG_SIZE]);
/* Parses the body as JSON and checks its fields; on failure the error is answered. */
COFFER_MUST_CHECK enum coffer_err api_body(struct http_request *req, const char *const fields[], json_t **out);
/* What the audit event of req names: the app (copied, if a valid app name) and a detail (consumed). */
void api_audit_note(struct http_request *req, const char *app, json_t *detail);
/*
 * The event of an authenticated request answered ok, as api_audit_event
 * would append it (h_audit.c), for a handler that commits it with its
 * change (store_group_run); api_audited once that commit is durable.
 */
COFFER_MUST_CHECK enum coffer_err api_audit_ok_event(struct http_request *req, char outcome[HTTP_AUDIT_OUTCOME_MAX],
						    struct buf *detail, struct store_audit_event *ev);
void api_audited(struct http_request *req);

/* ---- h_sealing.c: deployers' signatures (docs/CRYPTO.md "Deployers") ---- */

struct api_signer {
	char id[DEPLOYER_ID_MAX + 1];
	unsigned char pk[DEPLOYER_PK_LEN];
};
/*
 * The request's signer (the body's "signer", a deployer id): a deployer
 * row whose keeper certificate verifies, not revoked, covering the app.
 * Otherwise answers 403 "not signed by a deployer of this app: ...".
 */
COFFER_MUST_CHECK enum coffer_err api_signer(struct http_request *req, struct api_auth *a, const json_t *doc,
					     struct api_signer *out);
/*
 * Checks doc[field] = {"sha256", "signature"} against text, the one the
 * api is about to store: a hash of another text answers 409 "<what> changed
 * meanwhile: ..." (the CLI reads again and signs again), a signature that
 * does not verify under the signer's key 403. Then stores the signature
 * (store_signature_add), before what it vouches for is made.
 */
COFFER_MUST_CHECK enum coffer_err api_signed(struct http_request *req, struct api_auth *a,
					     const struct api_signer *signer, const json_t *doc, const char *field,
					     const char *text, size_t len, const char *what);
/*
 * api_signed of doc's "release": the statement (deployer.h) of config with
 * secrets_version and its manifest (manifest: its text when the version is
 * still to be made, NULL: read from the store).
 */
COFFER_MUST_CHECK enum coffer_err api_release_signed(struct http_request *req, struct api_auth *a,
						     const struct api_signer *signer, const json_t *doc,
						     const char *config, uint64_t secrets_version,
						     const char *manifest);
/* The manifest text of the app's secrets version (malloc'd; NULL for 0). COFFER_ERR_CRYPTO: it has none. */
COFFER_MUST_CHECK enum coffer_err api_version_manifest(struct api_auth *a, uint64_t version, char **manifest);

/* The app's newest public key, its keeper signature verified (h_secrets.c); COFFER_ERR_INTERNAL, logged, if not. */
COFFER_MUST_CHECK enum coffer_err api_app_public_key(struct api_auth *a, unsigned char pk[HPKE_PK_LEN],
						     uint32_t *version);

/* ---- plaintext.c: the org policy allowing plaintext values (the api enrolled as a deployer) ---- */

#define API_DEPLOYER_KEYS_MAX 8
struct api_plaintext;
/*
 * Loads each deployer key file and finds its registry rows by public key;
 * keeps those certified by the keeper (keeper_pk) and live, logs the others.
 * *out stays NULL for n == 0. why gets what failed (a file, never a key).
 */
COFFER_MUST_CHECK enum coffer_err api_plaintext_load(struct store_pool *pool, const unsigned char *keeper_pk,
						     const char *const *files, size_t n, struct api_plaintext **out,
						     char *why, size_t why_size);
void api_plaintext_free(struct api_plaintext *p);
/*
 * A secrets change's document with plaintext values ({"NAME": "value"} or
 * {"NAME": {"base64": ...}}) for an app one of the api's keys covers: each
 * value is sealed and digested in place, "signer" and "key_version" set.
 * Nothing done when there is no plaintext value or no key covers the app
 * (the handler refuses the values). Answers its errors.
 */
COFFER_MUST_CHECK enum coffer_err api_plaintext_seal(struct http_request *req, struct api_auth *a, json_t *doc);
/*
 * For a document api_plaintext_seal sealed: signs the manifest and, when
 * config is not NULL, the statement of its release with secrets version
 * version, into doc's "manifest" and "release". Nothing for other documents.
 */
COFFER_MUST_CHECK enum coffer_err api_plaintext_sign(struct api_auth *a, json_t *doc, const char *manifest,
						     size_t manifest_len, const char *config, uint64_t version);

/* ---- handlers ---- */

enum coffer_err h_health(struct http_request *req, void *ctx);
enum coffer_err h_tokens_create(struct http_request *req, void *ctx);
enum coffer_err h_tokens_list(struct http_request *req, void *ctx);
enum coffer_err h_tokens_revoke(struct http_request *req, void *ctx);
enum coffer_err h_tokens_rotate(struct http_request *req, void *ctx);
enum coffer_err h_apps_create(struct http_request *req, void *ctx);
enum coffer_err h_apps_list(struct http_request *req, void *ctx);
enum coffer_err h_apps_get(struct http_request *req, void *ctx);
enum coffer_err h_apps_destroy(struct http_request *req, void *ctx);
enum coffer_err h_secrets_list(struct http_request *req, void *ctx);
/* The item called name in items[0..n) (each size bytes, name their first member, sorted by name), or NULL. */
const void *api_find_name(const void *items, size_t n, size_t size, const char *name);
/* A secret name's rules (docs/API.md), answered (400) naming it, or "at position pos" when it cannot be quoted. */
COFFER_MUST_CHECK enum coffer_err api_secret_name_check(struct http_request *req, const char *name, size_t pos);
/* ---- h_history.c: what a release changed, a name's history, rollback ---- */
/* The manifest of secrets version `version` of the app (0: none, empty), parsed: *items the caller's to free. */
COFFER_MUST_CHECK enum coffer_err api_version_items(struct api_auth *a, uint64_t version,
						    struct store_manifest_item **items, size_t *n);
enum coffer_err h_releases_changes(struct http_request *req, void *ctx);
enum coffer_err h_releases_rollback(struct http_request *req, void *ctx);
enum coffer_err h_secrets_history(struct http_request *req, void *ctx);
enum coffer_err h_secrets_set(struct http_request *req, void *ctx);
enum coffer_err h_secrets_deploy(struct http_request *req, void *ctx);
enum coffer_err h_secrets_verify(struct http_request *req, void *ctx);
enum coffer_err h_secrets_sealing(struct http_request *req, void *ctx);
enum coffer_err h_audit_list(struct http_request *req, void *ctx);
enum coffer_err h_audit_verify(struct http_request *req, void *ctx);
enum coffer_err h_audit_head(struct http_request *req, void *ctx);
enum coffer_err h_hosts_list(struct http_request *req, void *ctx);
enum coffer_err h_hosts_revoke(struct http_request *req, void *ctx);
/*
 * A revoked host's machines go elsewhere (h_hosts.c): its live machines
 * destroyed, each of their apps given a release of its current spec (which
 * recreates the count on ready hosts); moved and releases (each may be
 * NULL) get the machine ids and {"app","version"} made, of org_id's apps
 * only (NULL: of every org). Idempotent.
 */
COFFER_MUST_CHECK enum coffer_err api_hosts_move(struct api *api, struct store *s, const char *host_id,
						 const char *org_id, const char *actor, json_t *moved,
						 json_t *releases);
/* At the api's start: api_hosts_move for every revoked host (what a killed `hosts revoke` left); logs a failure. */
void api_hosts_sweep(struct api *api);
#define API_HOSTS_SWEEP_ACTOR "api"
#define API_TEST_CRASH_ENV "COFFER_TEST_CRASH_AT" /* a test knob: the api kills itself at the named point (t0780) */
enum coffer_err h_hosts_register(struct http_request *req, void *ctx);
enum coffer_err h_hosts_heartbeat(struct http_request *req, void *ctx);
/* h_releases.c, h_machines.c: users' run-path routes (docs/RUNPATH.md) */
enum coffer_err h_releases_create(struct http_request *req, void *ctx);
enum coffer_err h_releases_list(struct http_request *req, void *ctx);
enum coffer_err h_releases_get(struct http_request *req, void *ctx);
enum coffer_err h_apps_scale(struct http_request *req, void *ctx);
enum coffer_err h_apps_status(struct http_request *req, void *ctx);
enum coffer_err h_machines_list(struct http_request *req, void *ctx);
enum coffer_err h_machines_destroy(struct http_request *req, void *ctx);
/* h_kms.c: an app's KMS keys, forwarded to the keeper */
enum coffer_err h_kms_gen(struct http_request *req, void *ctx);
enum coffer_err h_kms_list(struct http_request *req, void *ctx);
enum coffer_err h_kms_rotate(struct http_request *req, void *ctx);
enum coffer_err h_kms_rm(struct http_request *req, void *ctx);
/* h_agent.c: agents' routes, host-signed */
enum coffer_err h_agent_assignments(struct http_request *req, void *ctx);
enum coffer_err h_agent_boot_token(struct http_request *req, void *ctx);
enum coffer_err h_agent_events(struct http_request *req, void *ctx);
/* h_ui.c: the web dashboard's static files (docs/DASHBOARD.md) */
enum coffer_err h_ui(struct http_request *req, void *ctx);
/* Its headers (CSP ...), on every answer under /ui, the server's 404 and 405 too. */
extern const struct http_prefix_headers api_ui_headers;
/* the files themselves, generated from src/api/ui by embed.py */
struct api_ui_file {
	const char *name; /* "app.js" */
	const char *type; /* its Content-Type */
	const unsigned char *data;
	size_t len;
};
extern const struct api_ui_file api_ui_files[];
extern const size_t api_ui_files_count;

/* ---- h_audit.c: the audit phase's callback ---- */

/*
 * Completes an audit event with the org and app of the request (and, for a
 * request refused before the gate, the token that sent it) and appends it.
 */
COFFER_MUST_CHECK enum coffer_err api_audit_event(void *ctx, struct http_request *req, const struct http_route *route,
						  const struct http_caller *c, struct store_audit_event *ev);

/* ---- keeper_client.c ---- */

/*
 * Asks the keeper for the app's key pair (key version 1) and checks its
 * answer: the app id, the version and the signature over the public key
 * (with the keeper's public key). COFFER_ERR_UNAVAILABLE when the keeper
 * cannot be reached; the keeper's error otherwise; COFFER_ERR_CRYPTO for an
 * answer that does not verify. Never logs the credential.
 */
COFFER_MUST_CHECK enum coffer_err keeper_client_create_app_key(const struct api *api, const char *app_id);
/*
 * Asks the keeper to advance its audit anchor (POST /v1/audit/anchor) and
 * returns the signed head it holds afterwards, its signature checked with
 * the keeper's public key (COFFER_ERR_CRYPTO, logged, when it does not
 * verify). problem gets "" or the keeper's reason for not advancing (the
 * chain does not extend its anchor). COFFER_ERR_UNAVAILABLE when the keeper
 * cannot be reached.
 */
COFFER_MUST_CHECK enum coffer_err keeper_client_audit_anchor(const struct api *api, struct anchor_head *head,
							     char *problem, size_t problem_size);
/*
 * POST /v1/kms/keys with body (the keeper's KMS key routes): *answer is the
 * keeper's answer; its error's code and message (msg) otherwise.
 */
COFFER_MUST_CHECK enum coffer_err keeper_client_kms_keys(const struct api *api, const json_t *body, json_t **answer,
							 char *msg, size_t msg_size);
/*
 * Asks the keeper to revoke host_id (POST /v1/hosts/:id/revoke): from its
 * answer on, the keeper refuses the host's every request and open. msg
 * gets the keeper's message on a refusal.
 */
COFFER_MUST_CHECK enum coffer_err keeper_client_revoke_host(const struct api *api, const char *host_id, char *msg,
							    size_t msg_size);
/*
 * The host's state as the keeper holds it (GET /v1/hosts/:id), under its
 * registry MAC: what the store's hosts.state cannot be trusted for (a
 * store writer edits it). COFFER_ERR_NOT_FOUND for a host the keeper does
 * not know, COFFER_ERR_CONFLICT for a row that fails its verification.
 */
COFFER_MUST_CHECK enum coffer_err keeper_client_host_state(const struct api *api, const char *host_id, char *state,
							   size_t state_size);
/*
 * Asks the keeper whether two sealed values of the app's NAME open to the
 * same bytes (POST /v1/verify, keeper.h): body is the request the handler
 * made, {"app_id", "name", "actor", "stored", "candidate"}. *match only on
 * success. COFFER_ERR_UNAVAILABLE when the keeper cannot be reached, the
 * keeper's error otherwise (COFFER_ERR_INVALID or _CRYPTO: a value that
 * does not open).
 */
COFFER_MUST_CHECK enum coffer_err keeper_client_verify(const struct api *api, const json_t *body, int *match);
/* The api's anchor_poker callback: keeper_client_audit_anchor, its result only logged. ctx is the api. */
void keeper_client_anchor_quietly(void *ctx);

#endif
