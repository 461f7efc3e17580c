/*
 * h_releases.c — POST /v1/apps/:app/releases (deploy a new config), GET
 * the app's releases and one release with its progress
 * (docs/RUNPATH.md). A release is made by release_create; the controller
 * thread rolls it out.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "parse.h"
#include "release.h"
#include "banned.h"

#define RELEASES_LIST_MAX 1000 /* ?limit at most */
#define RELEASES_LIST_DEFAULT 100

static const char *const deploy_fields[] = { "cmd", "env", "count", "files", "grace_ms", "signer", "release", NULL };
static const char *const config_only[] = { "signer", "release", NULL };

/*
 * 1 if some host could take a new machine: its certificate verifies, it
 * is ready, and its last heartbeat is recent (RELEASE_HOST_STALE_MS).
 */
static enum coffer_err any_host_ready(struct api_auth *a, int *ready)
{
	struct store_host_list hosts = { 0 };
	int64_t now = api_now_ms();
	int found = 0;
	enum coffer_err rc = api_note(a, store_host_list(a->store, &hosts));
	if (rc)
		return rc;
	for (size_t i = 0; i < hosts.n && !found; i++) {
		const struct store_host *h = &hosts.items[i];
		if (strcmp(h->state, API_HOST_STATE_READY) != 0 || h->last_heartbeat <= 0 ||
		    now - h->last_heartbeat > RELEASE_HOST_STALE_MS)
			continue;
		found = api_host_check(a->api, h, NULL) == COFFER_OK;
	}
	store_host_list_release(&hosts);
	*ready = found;
	return COFFER_OK;
}

/* The app's current config, parsed, or NULL (*cur) when it has no current release. */
static enum coffer_err current_config(struct api_auth *a, json_t **cur)
{
	struct store_release r = { 0 };
	enum coffer_err rc;
	*cur = NULL;
	if (!a->app.current_release)
		return COFFER_OK;
	rc = api_note(a, store_release_get(a->store, a->app.id, a->app.current_release, &r));
	if (rc)
		return rc;
	*cur = r.config ? json_loads(r.config, 0, NULL) : NULL;
	store_release_clear(&r);
	return COFFER_OK;
}

/*
 * Every secret a file of the config names is in secrets version `version`
 * of the app (0: it has none); else *missing is the first file that names
 * another (borrowed from files).
 */
static enum coffer_err files_secrets_exist(struct api_auth *a, const json_t *files, uint64_t version,
					   const json_t **missing)
{
	struct store_secret_list l = { 0 };
	enum coffer_err rc = COFFER_OK;
	*missing = NULL;
	if (!json_array_size(files))
		return COFFER_OK;
	if (version) {
		rc = api_note(a, store_secrets_get(a->store, a->app.id, version, &l));
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < json_array_size(files) && !*missing; i++) {
		const json_t *f = json_array_get(files, i);
		const char *name = json_string_value(json_object_get(f, "secret"));
		size_t k = 0;
		while (k < l.n && strcmp(l.items[k].name, name) != 0)
			k++;
		if (k == l.n)
			*missing = f;
	}
	store_secret_list_release(&l);
	return rc;
}

enum coffer_err h_releases_create(struct http_request *req, void *ctx)
{
	struct api *api = ctx;
	struct api_auth *a = api_auth_of(req);
	json_t *doc = NULL, *cur = NULL, *sigs = NULL, *v;
	struct api_signer signer;
	char *config = NULL;
	char msg[API_MESSAGE_MAX];
	struct release_request rq;
	uint64_t version = 0, running = 0, secrets = a->app.secrets_head;
	int ready = 0;
	enum coffer_err rc;

	rc = api_body(req, deploy_fields, &doc);
	if (rc)
		return rc;
	sigs = json_pack("{s:O?,s:O?}", "signer", json_object_get(doc, "signer"), "release",
			 json_object_get(doc, "release"));
	for (const char *const *f = config_only; sigs && *f; f++)
		json_object_del(doc, *f);
	if (!sigs) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	/* count and grace_ms default to the current config's (else 1 and 30 s) */
	rc = current_config(a, &cur);
	if (rc)
		goto out;
	if (!json_object_get(doc, "count")) {
		v = json_object_get(cur, "count");
		if (json_object_set_new(doc, "count", json_is_integer(v) ? json_copy(v) : json_integer(1))) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	if (!json_object_get(doc, "grace_ms")) {
		v = json_object_get(cur, "grace_ms");
		if (json_object_set_new(doc, "grace_ms",
					json_is_integer(v) ? json_copy(v) : json_integer(RELEASE_GRACE_DEFAULT_MS))) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	msg[0] = '\0';
	rc = release_config_check(doc, &config, msg, sizeof(msg));
	if (rc == COFFER_ERR_INVALID || rc == COFFER_ERR_TOO_LARGE) {
		rc = api_fail(req, rc, "%s", msg[0] ? msg : "invalid config");
		goto out;
	}
	if (rc)
		goto out;
	{
		const json_t *missing;
		rc = files_secrets_exist(a, json_object_get(doc, "files"), secrets, &missing);
		if (!rc && missing) {
			rc = api_fail(req, COFFER_ERR_INVALID, "file '%s': app '%s' has no secret '%s' to deploy",
				      json_string_value(json_object_get(missing, "path")), a->app.name,
				      json_string_value(json_object_get(missing, "secret")));
		}
		if (rc)
			goto out;
	}
	if (json_integer_value(json_object_get(doc, "count")) > 0) {
		rc = any_host_ready(a, &ready);
		if (rc)
			goto out;
		if (!ready) {
			rc = api_fail(req, COFFER_ERR_UNAVAILABLE, "no host is ready to run machines");
			goto out;
		}
	}
	rc = api_signer(req, a, sigs, &signer);
	if (!rc)
		rc = api_release_signed(req, a, &signer, sigs, config, secrets, NULL);
	if (rc)
		goto out;
	rq = (struct release_request){ &a->app, a->token_id, config, secrets, 0 };
	rc = api_note(a, release_create(api, a->store, &rq, &version, &running, msg, sizeof(msg)));
	if (rc == COFFER_ERR_CONFLICT) {
		rc = api_fail(req, rc, "%s", msg);
		goto out;
	}
	if (rc)
		goto out;
	api_audit_note(req, a->app.name,
		       json_pack("{s:I,s:I,s:I,s:s}", "release", (json_int_t)version, "secrets_version",
				 (json_int_t)secrets, "count", json_integer_value(json_object_get(doc, "count")), "deployer",
				 signer.id));
	rc = api_reply(req, 201, json_pack("{s:I,s:s,s:I}", "release", (json_int_t)version, "status", "pending",
					   "version", (json_int_t)secrets));
out:
	free(config);
	json_decref(sigs);
	json_decref(cur);
	json_decref(doc);
	return rc;
}

enum coffer_err h_releases_list(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_release_list l = { 0 };
	const char *q = http_request_query(req, "limit");
	uint64_t limit = RELEASES_LIST_DEFAULT;
	json_t *list = NULL;
	enum coffer_err rc;
	(void)ctx;

	if (q && (parse_uint64(q, RELEASES_LIST_MAX, &limit) || limit == 0))
		return api_fail(req, COFFER_ERR_INVALID, "limit must be an integer 1..%d", RELEASES_LIST_MAX);
	rc = api_note(a, store_release_list(a->store, a->app.id, &l));
	if (rc)
		goto out;
	list = json_array();
	if (!list) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < l.n && i < limit; i++) {
		json_t *item = release_json(a->store, &l.items[i]);
		if (!item || json_array_append_new(list, item)) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	rc = api_reply(req, 200, json_pack("{s:O}", "releases", list));
out:
	json_decref(list);
	store_release_list_release(&l);
	return rc;
}

enum coffer_err h_releases_get(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	const char *param = http_request_param(req, "version");
	struct store_release r = { 0 };
	uint64_t version = 0;
	enum coffer_err rc;
	(void)ctx;

	if (!param || parse_uint64(param, INT64_MAX, &version) || version == 0)
		return api_fail(req, COFFER_ERR_INVALID, "release version must be a positive integer");
	rc = api_note(a, store_release_get(a->store, a->app.id, version, &r));
	if (rc == COFFER_ERR_NOT_FOUND)
		return api_fail(req, rc, "app '%s' has no release v%llu", a->app.name, (unsigned long long)version);
	if (rc)
		return rc;
	rc = api_reply(req, 200, release_json(a->store, &r));
	store_release_clear(&r);
	return rc;
}
