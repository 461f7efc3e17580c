/*
 * h_kms.c — an app's KMS keys (docs/API.md "KMS keys"): the api only
 * forwards to the keeper, which makes, rotates, lists and removes them;
 * no key passes through the api (answers hold names, types, versions and
 * ed25519 public keys).
 */
#include <string.h>

#include "api.h"
#include "kms.h"
#include "banned.h"

static const char *const gen_fields[] = { "name", "type", NULL };

/* Asks the keeper for op on this app (name and type may be NULL) and answers what it said. */
static enum coffer_err forward(struct http_request *req, struct api *api, struct api_auth *a, const char *op,
			       const char *name, const char *type, int status)
{
	char msg[API_MESSAGE_MAX] = "";
	json_t *body = json_pack("{s:s,s:s}", "op", op, "app_id", a->app.id), *ans = NULL;
	enum coffer_err rc = body ? COFFER_OK : COFFER_ERR_NOMEM;
	if (!rc && name && json_object_set_new(body, "name", json_string(name)))
		rc = COFFER_ERR_NOMEM;
	if (!rc && type && json_object_set_new(body, "type", json_string(type)))
		rc = COFFER_ERR_NOMEM;
	if (!rc)
		rc = keeper_client_kms_keys(api, body, &ans, msg, sizeof(msg));
	json_decref(body);
	if (rc == COFFER_ERR_NOT_FOUND || rc == COFFER_ERR_CONFLICT || rc == COFFER_ERR_INVALID)
		return api_fail(req, rc, "%s", msg[0] ? msg : coffer_strerror(rc));
	if (rc)
		return rc;
	if (!name && ans) { /* list: the app's name beside the keeper's answer */
		if (json_object_set_new(ans, "app", json_string(a->app.name))) {
			json_decref(ans);
			return COFFER_ERR_NOMEM;
		}
	}
	return api_reply(req, status, ans);
}

/* The :name of the route, checked before it goes anywhere. */
static const char *route_name(struct http_request *req, struct api_auth *a, enum coffer_err *rc)
{
	const char *name = http_request_param(req, "name");
	if (!name || !kms_name_ok(name)) {
		*rc = api_fail(req, COFFER_ERR_NOT_FOUND, "app '%s' has no such key", a->app.name);
		return NULL;
	}
	api_audit_note(req, a->app.name, json_pack("{s:s}", "key", name));
	return name;
}

enum coffer_err h_kms_gen(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	json_t *body = NULL;
	const char *name = NULL, *type = NULL;
	enum kms_type t;
	enum coffer_err rc = api_body(req, gen_fields, &body);
	if (rc)
		return rc;
	if (json_get_string(body, "name", 1, &name, NULL, NULL) || !kms_name_ok(name))
		rc = api_fail(req, COFFER_ERR_INVALID, "'name' must be 1 to %d of A-Z a-z 0-9 _ . -", KMS_NAME_MAX);
	else if (json_get_string(body, "type", 1, &type, NULL, NULL) || kms_type_parse(type, &t))
		rc = api_fail(req, COFFER_ERR_INVALID, "'type' must be hmac-sha256, aead or ed25519");
	else {
		api_audit_note(req, a->app.name, json_pack("{s:s,s:s}", "key", name, "type", type));
		rc = forward(req, ctx, a, "gen", name, type, 201);
	}
	json_decref(body);
	return rc;
}

enum coffer_err h_kms_list(struct http_request *req, void *ctx)
{
	return forward(req, ctx, api_auth_of(req), "list", NULL, NULL, 200);
}

enum coffer_err h_kms_rotate(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	enum coffer_err rc = COFFER_OK;
	const char *name = route_name(req, a, &rc);
	return name ? forward(req, ctx, a, "rotate", name, NULL, 201) : rc;
}

enum coffer_err h_kms_rm(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	enum coffer_err rc = COFFER_OK;
	const char *name = route_name(req, a, &rc);
	return name ? forward(req, ctx, a, "rm", name, NULL, 200) : rc;
}
