/*
 * keeper_server.c — the keeper's HTTP server: its route table, the gate
 * that checks the api credential, and the handlers. Handlers borrow store
 * connections from a store_pool (a struct store is one thread's at a time;
 * the server runs a thread per connection).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

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

struct keeper {
	struct keeper_keys keys;
	struct store_pool *pool;
	struct http_server *server;
};

/* ---- the gate: the api credential, compared in constant time ---- */

static enum coffer_err gate(struct http_request *req, const struct http_route *route, void *ctx)
{
	struct keeper *k = ctx;
	unsigned char got[VAULT_CREDENTIAL_LEN];
	int ok = 0;

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

static const struct http_route routes[] = {
	{ "GET", "/v1/health", 0, 0, h_health, "health" },
	{ "POST", "/v1/app-keys", HTTP_ROUTE_AUTH, KEEPER_APP_KEYS_BODY_MAX, h_app_keys, "app_keys.create" },
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
	step = "listen";
	struct http_server_config hcfg = { .listen = cfg->listen, .gate = gate };
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
	keeper_keys_release(&k->keys);
	free(k);
}
