/*
 * h_apps.c — POST/GET /v1/apps, GET/DELETE /v1/apps/:app. An app exists
 * only with its key pair: if the keeper cannot make it, the app row is
 * removed again before answering.
 */
#include <string.h>

#include "api.h"
#include "log.h"
#include "banned.h"

#define APP_KEY_VERSION 1

static const char *const create_fields[] = { "name", NULL };

static json_t *app_json(struct api_auth *a, const struct store_app *app, enum coffer_err *rc)
{
	uint64_t count = 0, bytes = 0;
	*rc = api_note(a, store_secrets_stats(a->store, app->id, 0, &count, &bytes));
	if (*rc)
		return NULL;
	json_t *doc = json_pack("{s:s,s:o,s:I,s:I}", "name", app->name, "created_at", api_json_time(app->created_at),
				"secrets_count", (json_int_t)count, "secrets_version", (json_int_t)app->secrets_head);
	if (!doc)
		*rc = COFFER_ERR_NOMEM;
	return doc;
}

enum coffer_err h_apps_create(struct http_request *req, void *ctx)
{
	struct api *api = ctx;
	struct api_auth *a = api_auth_of(req);
	json_t *doc = NULL;
	const char *name = NULL;
	size_t name_len = 0;
	struct store_app app;
	struct json_error jerr;
	enum coffer_err rc;

	rc = api_body(req, create_fields, &doc);
	if (rc)
		return rc;
	rc = json_get_string(doc, "name", 1, &name, &name_len, &jerr);
	if (rc) {
		rc = api_fail(req, rc, "invalid request body: %s", jerr.message);
		goto out;
	}
	if (!api_app_name_ok(name)) {
		rc = api_quotable(name, name_len, API_APP_NAME_MAX + 1)
			     ? api_fail(req, COFFER_ERR_INVALID, "app name '%s' must match %s", name, API_APP_NAME_RULE)
			     : api_fail(req, COFFER_ERR_INVALID, "app name must match %s", API_APP_NAME_RULE);
		goto out;
	}
	api_audit_note(req, name, NULL);
	rc = api_note(a, store_app_create(a->store, a->token.org_id, name, 0, &app));
	if (rc == COFFER_ERR_CONFLICT) {
		rc = api_fail(req, rc, "app '%s' exists already", name);
		goto out;
	}
	if (rc)
		goto out;
	rc = keeper_client_create_app_key(api, app.id);
	if (rc) {
		/* No half-made app: without its key it cannot hold a secret. */
		enum coffer_err undo = api_note(a, store_app_destroy(a->store, app.id));
		if (undo)
			log_error("app_create_undo_failed", LF_S("app", name), LF_S("error", coffer_err_name(undo)));
		log_warn("app_create_failed", LF_S("app", name), LF_S("reason", "keeper"),
			 LF_S("error", coffer_err_name(rc)));
		rc = http_reply_error(req, COFFER_ERR_UNAVAILABLE, "keeper unavailable");
		goto out;
	}
	api_audit_note(req, name, json_pack("{s:i}", "key_version", APP_KEY_VERSION));
	rc = api_reply(req, 201, json_pack("{s:s,s:o,s:i}", "name", app.name, "created_at",
					   api_json_time(app.created_at), "key_version", APP_KEY_VERSION));
out:
	json_decref(doc);
	return rc;
}

enum coffer_err h_apps_list(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_app_list apps = { 0 };
	json_t *list = NULL;
	enum coffer_err rc;
	(void)ctx;

	rc = api_note(a, store_app_list(a->store, a->token.org_id, &apps));
	if (rc)
		goto out;
	list = json_array();
	if (!list) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < apps.n; i++) {
		/* An app-limited token sees its app only. */
		if (a->token.app_id[0] && strcmp(apps.items[i].id, a->token.app_id) != 0)
			continue;
		json_t *item = app_json(a, &apps.items[i], &rc);
		if (!item)
			goto out;
		if (json_array_append_new(list, item)) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	rc = api_reply(req, 200, json_pack("{s:O}", "apps", list));
out:
	json_decref(list);
	store_app_list_release(&apps);
	return rc;
}

enum coffer_err h_apps_get(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	enum coffer_err rc;
	(void)ctx;
	json_t *doc = app_json(a, &a->app, &rc);
	if (!doc)
		return rc;
	return api_reply(req, 200, doc);
}

enum coffer_err h_apps_destroy(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	enum coffer_err rc;
	(void)ctx;

	api_audit_note(req, a->app.name, json_pack("{s:I}", "secrets_version", (json_int_t)a->app.secrets_head));
	rc = api_note(a, store_app_destroy(a->store, a->app.id));
	if (rc == COFFER_ERR_NOT_FOUND)
		return api_fail(req, rc, "app '%s' not found", a->app.name);
	if (rc)
		return rc;
	return api_reply(req, 200, json_pack("{s:s,s:b}", "name", a->app.name, "destroyed", 1));
}
