/*
 * h_hosts.c — GET /v1/hosts (admin), and the host-signed POST
 * /v1/hosts/register and POST /v1/hosts/heartbeat. The keeper creates host
 * rows; the api trusts a row only when the keeper's certificate in it
 * verifies (api_host_check), and writes nothing but last_heartbeat. The
 * gate has checked the host's signature before any of this runs.
 */
#include <string.h>

#include "api.h"
#include "encode.h"
#include "log.h"
#include "banned.h"

#define B64_SLACK 8

static const char *const register_fields[] = { "host_id", "name", "sign_pk", "seal_pk", "cert", NULL };
static const char *const heartbeat_fields[] = { NULL };

static json_t *host_json(const struct store_host *h, int64_t issued_at)
{
	return json_pack("{s:s,s:s,s:s,s:o,s:o}", "id", h->id, "name", h->name, "state", h->state, "enrolled_at",
			 api_json_time(issued_at * 1000), "last_heartbeat", api_json_time(h->last_heartbeat));
}

enum coffer_err h_hosts_list(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_host_list hosts = { 0 };
	json_t *list = NULL;
	int64_t issued_at;
	enum coffer_err rc;
	(void)ctx;

	rc = api_note(a, store_host_list(a->store, &hosts));
	if (rc)
		goto out;
	list = json_array();
	if (!list) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < hosts.n; i++) {
		/* a row whose certificate does not verify is not a host (api_host_check logs it) */
		if (api_host_check(a->api, &hosts.items[i], &issued_at))
			continue;
		json_t *item = host_json(&hosts.items[i], issued_at);
		if (!item || json_array_append_new(list, item)) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	rc = api_reply(req, 200, json_pack("{s:O}", "hosts", list));
out:
	json_decref(list);
	store_host_list_release(&hosts);
	return rc;
}

/* A base64url field of exactly len bytes; 0 or -1. */
static int get_b64(const json_t *doc, const char *key, unsigned char *out, size_t len)
{
	const char *text;
	size_t n;
	struct buf b;
	int ok;
	if (json_get_string(doc, key, 1, &text, &n, NULL))
		return -1;
	buf_init(&b, len + B64_SLACK);
	ok = b64url_decode(text, n, &b) == COFFER_OK && b.len == len;
	if (ok)
		memcpy(out, b.ptr, len);
	buf_release(&b);
	return ok ? 0 : -1;
}

/*
 * The host presents its certificate and keys. The certificate must verify
 * with the keeper's key over what the body says, and the body must be the
 * signing host's own row: its request signature was checked (by the gate)
 * with that row's sign_pk, so it matches the certificate's.
 */
enum coffer_err h_hosts_register(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	const struct store_host *row = &a->host;
	json_t *doc = NULL;
	const char *id = NULL, *name = NULL;
	unsigned char sign_pk[HOSTAUTH_PK_LEN], seal_pk[HOSTAUTH_PK_LEN], cert[HOSTAUTH_CERT_LEN];
	struct json_error jerr;
	int64_t now = api_now_ms();
	enum coffer_err rc;
	(void)ctx;

	rc = api_body(req, register_fields, &doc);
	if (rc)
		return rc;
	api_audit_note(req, NULL, json_pack("{s:s,s:s}", "host_id", row->id, "name", row->name));
	if ((rc = json_get_string(doc, "host_id", 1, &id, NULL, &jerr)) ||
	    (rc = json_get_string(doc, "name", 1, &name, NULL, &jerr))) {
		rc = api_fail(req, rc, "invalid request body: %s", jerr.message);
		goto out;
	}
	if (get_b64(doc, "sign_pk", sign_pk, sizeof(sign_pk)) || get_b64(doc, "seal_pk", seal_pk, sizeof(seal_pk)) ||
	    get_b64(doc, "cert", cert, sizeof(cert))) {
		rc = http_reply_error(req, COFFER_ERR_INVALID,
				      "sign_pk and seal_pk must be 32 bytes and cert 72 bytes, in base64url");
		goto out;
	}
	struct hostauth_identity presented = { id, name, sign_pk, seal_pk };
	if (hostauth_cert_verify(a->api->keeper_pk, &presented, cert, sizeof(cert), NULL) != COFFER_OK) {
		log_warn("host_register_refused", LF_S("host_id", row->id), LF_S("reason", "certificate"));
		rc = http_reply_error(req, COFFER_ERR_UNAUTH, "host certificate does not verify");
		goto out;
	}
	if (strcmp(id, row->id) != 0 || strcmp(name, row->name) != 0 ||
	    !ct_equal(sign_pk, row->sign_pk, sizeof(sign_pk)) || !ct_equal(seal_pk, row->seal_pk, sizeof(seal_pk))) {
		log_warn("host_register_refused", LF_S("host_id", row->id), LF_S("reason", "another host's certificate"));
		rc = http_reply_error(req, COFFER_ERR_UNAUTH, "the certificate is not the signing host's");
		goto out;
	}
	rc = api_note(a, store_host_heartbeat(a->store, row->id, now));
	if (rc)
		goto out;
	log_info("host_registered", LF_S("host_id", row->id), LF_S("name", row->name));
	rc = api_reply(req, 200, json_pack("{s:s,s:s,s:s,s:o}", "host_id", row->id, "name", row->name, "state",
					   row->state, "last_heartbeat", api_json_time(now)));
out:
	json_decref(doc);
	return rc;
}

enum coffer_err h_hosts_heartbeat(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	json_t *doc = NULL;
	int64_t now = api_now_ms();
	enum coffer_err rc;
	(void)ctx;

	rc = api_body(req, heartbeat_fields, &doc);
	if (rc)
		return rc;
	json_decref(doc);
	rc = api_note(a, store_host_heartbeat(a->store, a->host.id, now));
	if (rc)
		return rc;
	return api_reply(req, 200, json_pack("{s:s,s:o}", "host_id", a->host.id, "last_heartbeat", api_json_time(now)));
}
