/*
 * h_history.c — what a release changed (GET .../releases/:version/changes),
 * a secret name's history (GET .../secrets/:name/history) and a rollback to
 * an earlier release (POST .../releases/:version/rollback).
 *
 * Both readings come from the secrets versions' manifests, read through
 * the store's authenticated path (store_secrets_version_get checks each
 * row's MAC) and parsed for exactly their app and version: names and
 * digests only, never a value and never a row the api cannot vouch for.
 *
 * A rollback is a release the deployer signed: its CLI read release vN's
 * config and secrets version (GET .../secrets/sealing?release=N), checked
 * that a deployer of the app signed them, and signed the statement of a
 * new release of them; the api checks that signature as for any release
 * (api_release_signed), so it cannot make one alone. The head moves to
 * vN's secrets version with the release (a failure moves it back).
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "changes.h"
#include "log.h"
#include "parse.h"
#include "release.h"
#include "banned.h"

static const char *const rollback_fields[] = { "signer", "release", NULL };

enum coffer_err api_version_items(struct api_auth *a, uint64_t version, struct store_manifest_item **items,
				  size_t *n)
{
	struct store_secret_version v;
	enum coffer_err rc;

	*items = NULL;
	*n = 0;
	if (version == 0)
		return COFFER_OK;
	memset(&v, 0, sizeof(v));
	rc = api_note(a, store_secrets_version_get(a->store, a->app.id, version, &v));
	if (!rc)
		rc = store_manifest_parse(a->app.id, version, v.manifest, items, n);
	if (rc == COFFER_ERR_CRYPTO)
		log_error("secrets_manifest_invalid", LF_S("app", a->app.name), LF_S("app_id", a->app.id),
			  LF_I("version", version));
	store_secret_version_clear(&v);
	return rc;
}

/* The route's :version, or a 400. */
static enum coffer_err version_param(struct http_request *req, uint64_t *version)
{
	const char *param = http_request_param(req, "version");
	if (!param || parse_uint64(param, INT64_MAX, version) || *version == 0)
		return api_fail(req, COFFER_ERR_INVALID, "release version must be a positive integer");
	return COFFER_OK;
}

/* Release `version` of the app into r, or a 404 naming it. */
static enum coffer_err release_of(struct http_request *req, struct api_auth *a, uint64_t version,
				  struct store_release *r)
{
	enum coffer_err rc = api_note(a, store_release_get(a->store, a->app.id, version, r));
	if (rc == COFFER_ERR_NOT_FOUND)
		return api_fail(req, rc, "app '%s' has no release v%llu", a->app.name, (unsigned long long)version);
	return rc;
}

static enum coffer_err answer_crypto(struct http_request *req, enum coffer_err rc)
{
	return rc == COFFER_ERR_CRYPTO ? http_reply_error(req, COFFER_ERR_INTERNAL, "secrets version failed verification")
				       : rc;
}

/*
 * {"version", "previous_version", "secrets_version", "previous_secrets_version",
 * "added", "changed", "removed"}: release vN's secrets against those of the
 * release it replaced (what the app ran before it; none for the first).
 */
enum coffer_err h_releases_changes(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_release r = { 0 };
	struct store_manifest_item *before = NULL, *after = NULL;
	size_t bn = 0, an = 0;
	uint64_t version = 0;
	json_t *doc = NULL;
	enum coffer_err rc;
	(void)ctx;

	rc = version_param(req, &version);
	if (!rc)
		rc = release_of(req, a, version, &r);
	if (!rc)
		rc = api_version_items(a, r.previous_secrets, &before, &bn);
	if (!rc)
		rc = api_version_items(a, r.secrets_version, &after, &an);
	if (rc) {
		rc = answer_crypto(req, rc);
		goto out;
	}
	doc = changes_json(before, bn, after, an);
	if (!doc || json_object_set_new(doc, "version", json_integer((json_int_t)r.version)) ||
	    json_object_set_new(doc, "previous_version", json_integer((json_int_t)r.previous_version)) ||
	    json_object_set_new(doc, "secrets_version", json_integer((json_int_t)r.secrets_version)) ||
	    json_object_set_new(doc, "previous_secrets_version", json_integer((json_int_t)r.previous_secrets))) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	rc = api_reply(req, 200, doc);
	doc = NULL;
out:
	json_decref(doc);
	free(after);
	free(before);
	store_release_clear(&r);
	return rc;
}

/*
 * {"name", "history": [{"version", "action": "set"|"unset", "digest" (null
 * for unset), "status", "actor", "created_at"}]}, oldest first: every
 * secrets version in which the name was set (a new value row, even with
 * the same digest) or unset. A name never set has an empty history.
 */
enum coffer_err h_secrets_history(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	const char *name = http_request_param(req, "name");
	struct store_secret_version_list l = { 0 };
	struct store_manifest_item *items = NULL;
	char last_value[STORE_ID_SIZE] = "";
	json_t *list = NULL;
	enum coffer_err rc;
	(void)ctx;

	if (!name)
		return api_fail(req, COFFER_ERR_INVALID, "a secret name is needed");
	rc = api_secret_name_check(req, name, 1);
	if (rc)
		return rc;
	rc = api_note(a, store_secrets_history(a->store, a->app.id, &l));
	list = rc ? NULL : json_array();
	if (!rc && !list)
		rc = COFFER_ERR_NOMEM;
	for (size_t i = 0; !rc && i < l.n; i++) {
		const struct store_secret_version *v = &l.items[i];
		const struct store_manifest_item *it;
		json_t *row = NULL;
		size_t n = 0;

		rc = store_manifest_parse(a->app.id, v->version, v->manifest, &items, &n);
		if (rc) {
			log_error("secrets_manifest_invalid", LF_S("app", a->app.name), LF_S("app_id", a->app.id),
				  LF_I("version", v->version));
			break;
		}
		it = api_find_name(items, n, sizeof(*items), name);
		int want = it ? strcmp(it->value_id, last_value) != 0 : last_value[0] != '\0';
		if (want && it)
			row = json_pack("{s:I,s:s,s:s}", "version", (json_int_t)v->version, "action", "set", "digest",
					it->digest);
		else if (want)
			row = json_pack("{s:I,s:s,s:n}", "version", (json_int_t)v->version, "action", "unset", "digest");
		if (it)
			memcpy(last_value, it->value_id, sizeof(last_value));
		else
			last_value[0] = '\0';
		free(items);
		items = NULL;
		if (want && (!row || json_object_set_new(row, "status", json_string(v->status)) ||
			     json_object_set_new(row, "actor", json_string(v->actor)) ||
			     json_object_set_new(row, "created_at", api_json_time(v->created_at)) ||
			     json_array_append_new(list, row)))
			rc = COFFER_ERR_NOMEM;
	}
	if (rc) {
		rc = answer_crypto(req, rc);
		goto out;
	}
	rc = api_reply(req, 200, json_pack("{s:s,s:O}", "name", name, "history", list));
out:
	json_decref(list);
	store_secret_version_list_release(&l);
	return rc;
}

/*
 * A new release of release vN's config and secrets version, signed by the
 * deployer (body {"signer", "release"}), made as any release is
 * (release_create: one per app at a time, rolled out, failure keeps the
 * old). Refused: an unknown vN (404), vN the current release or a release
 * in progress (409).
 */
enum coffer_err h_releases_rollback(struct http_request *req, void *ctx)
{
	struct api *api = ctx;
	struct api_auth *a = api_auth_of(req);
	struct store_release r = { 0 };
	struct api_signer signer;
	struct release_request rq;
	char msg[API_MESSAGE_MAX];
	uint64_t version = 0, made = 0, running = 0;
	json_t *doc = NULL;
	enum coffer_err rc;

	rc = version_param(req, &version);
	if (!rc)
		rc = api_body(req, rollback_fields, &doc);
	if (rc)
		return rc;
	api_audit_note(req, a->app.name, json_pack("{s:I}", "from", (json_int_t)version));
	rc = release_of(req, a, version, &r);
	if (rc)
		goto out;
	if (version == a->app.current_release) {
		rc = api_fail(req, COFFER_ERR_CONFLICT, "release v%llu is the current release of app '%s': nothing to roll back",
			      (unsigned long long)version, a->app.name);
		goto out;
	}
	rc = api_note(a, release_running_of(a->store, a->app.id, &running));
	if (!rc && running) {
		rc = api_fail(req, COFFER_ERR_CONFLICT,
			      "app '%s' has release v%llu in progress; wait for it or check 'coffer releases -a %s'",
			      a->app.name, (unsigned long long)running, a->app.name);
		goto out;
	}
	if (!rc)
		rc = api_signer(req, a, doc, &signer);
	if (!rc)
		rc = api_release_signed(req, a, &signer, doc, r.config ? r.config : "", r.secrets_version, NULL);
	if (rc)
		goto out;
	msg[0] = '\0';
	rq = (struct release_request){ &a->app, a->token_id, r.config ? r.config : "", r.secrets_version, 1 };
	rc = api_note(a, release_create(api, a->store, &rq, &made, &running, msg, sizeof(msg)));
	if (rc == COFFER_ERR_CONFLICT || rc == COFFER_ERR_NOT_FOUND) {
		rc = api_fail(req, rc, "%s", msg[0] ? msg : "no release could be made");
		goto out;
	}
	if (rc)
		goto out;
	api_audit_note(req, a->app.name,
		       json_pack("{s:I,s:I,s:I,s:s}", "from", (json_int_t)version, "release", (json_int_t)made,
				 "secrets_version", (json_int_t)r.secrets_version, "deployer", signer.id));
	rc = api_reply(req, 201, json_pack("{s:I,s:s,s:I}", "release", (json_int_t)made, "status", "pending", "version",
					   (json_int_t)r.secrets_version));
out:
	json_decref(doc);
	store_release_clear(&r);
	return rc;
}
