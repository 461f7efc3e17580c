/*
 * h_tokens.c — POST/GET /v1/tokens, DELETE /v1/tokens/:id, POST
 * /v1/tokens/:id/rotate (and /v1/tokens/self/rotate). A token's text exists
 * once: made in secure memory, put in the answer, wiped.
 */
#include <string.h>

#include "api.h"
#include "parse.h"
#include "banned.h"

static const char *const create_fields[] = { "role", "app", "expiry", "description", NULL };

/* The app names of the org, to show a token's app. */
static const char *app_name_of(const struct store_app_list *apps, const char *app_id)
{
	for (size_t i = 0; i < apps->n; i++)
		if (strcmp(apps->items[i].id, app_id) == 0)
			return apps->items[i].name;
	return NULL;
}

static json_t *token_json(const struct store_token *t, const char *app_name)
{
	char id[API_TOKEN_ID_SIZE];
	if (api_token_id(t->id, id))
		return NULL;
	return json_pack("{s:s,s:s,s:s?,s:s,s:o,s:o,s:o}", "id", id, "role", t->role, "app", app_name,
			 "description", t->description, "created_at", api_json_time(t->created_at), "expires_at",
			 api_json_time(t->expires_at), "revoked_at", api_json_time(t->revoked_at));
}

/* The new token's answer and audit detail (create and rotate). */
static enum coffer_err token_answer(struct http_request *req, const struct store_token *t, const char *app,
				    const struct secret *token, const char *rotated_from, int64_t old_until)
{
	char id[API_TOKEN_ID_SIZE];
	json_t *answer, *detail;
	enum coffer_err rc = api_token_id(t->id, id);
	if (rc)
		return rc;
	answer = json_pack("{s:s,s:s%,s:s,s:s?,s:o,s:o}", "id", id, "token", (const char *)secret_cbytes(token),
			   (size_t)API_TOKEN_LEN, "role", t->role, "app", app, "expires_at", api_json_time(t->expires_at),
			   "created_at", api_json_time(t->created_at));
	detail = json_pack("{s:s,s:s,s:s?,s:o}", "token_id", id, "role", t->role, "app", app, "expires_at",
			   api_json_time(t->expires_at));
	if (answer && detail && rotated_from &&
	    (json_object_set_new(answer, "rotated_from", json_string(rotated_from)) ||
	     json_object_set_new(answer, "old_expires_at", api_json_time(old_until)) ||
	     json_object_set_new(detail, "rotated_from", json_string(rotated_from)) ||
	     json_object_set_new(detail, "old_expires_at", api_json_time(old_until)))) {
		json_decref(detail);
		detail = NULL;
	}
	if (!detail) {
		json_decref(answer); /* wiped as it is freed */
		return COFFER_ERR_NOMEM;
	}
	api_audit_note(req, app, detail);
	return api_reply(req, 201, answer); /* the document (and the token in it) is freed, wiped */
}

enum coffer_err h_tokens_create(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	json_t *doc = NULL;
	const char *role_text = NULL, *app = NULL, *expiry = NULL, *description = "";
	size_t description_len = 0;
	struct store_token t = { 0 };
	struct store_app found = { 0 };
	struct secret *token = NULL;
	uint64_t expiry_ms = 0;
	enum api_role role;
	enum coffer_err rc;
	struct json_error jerr;
	(void)ctx;

	rc = api_body(req, create_fields, &doc);
	if (rc)
		return rc;
	if ((rc = json_get_string(doc, "role", 1, &role_text, NULL, &jerr)) ||
	    (rc = json_get_string(doc, "app", 0, &app, NULL, &jerr)) ||
	    (rc = json_get_string(doc, "expiry", 0, &expiry, NULL, &jerr)) ||
	    (rc = json_get_string(doc, "description", 0, &description, &description_len, &jerr))) {
		rc = api_fail(req, rc, "invalid request body: %s", jerr.message);
		goto out;
	}
	role = api_role_parse(role_text);
	if (role == API_ROLE_NONE) {
		rc = api_fail(req, COFFER_ERR_INVALID, "role must be admin, deploy or read");
		goto out;
	}
	if (app && role == API_ROLE_ADMIN) {
		rc = api_fail(req, COFFER_ERR_INVALID, "an admin token cannot be limited to one app");
		goto out;
	}
	if (expiry && (parse_duration_ms(expiry, API_TOKEN_EXPIRY_MAX_MS, &expiry_ms) || expiry_ms == 0)) {
		rc = api_fail(req, COFFER_ERR_INVALID, "expiry must be a duration such as 30d or 12h, at most 10 years");
		goto out;
	}
	if (description_len >= sizeof(t.description)) {
		rc = api_fail(req, COFFER_ERR_INVALID, "description is longer than %zu bytes", sizeof(t.description) - 1);
		goto out;
	}
	if (app) {
		api_audit_note(req, app, NULL);
		rc = api_app_name_ok(app) ? api_note(a, store_app_get_by_name(a->store, app, &found)) : COFFER_ERR_NOT_FOUND;
		if (rc == COFFER_OK && strcmp(found.org_id, a->token.org_id) != 0)
			rc = COFFER_ERR_NOT_FOUND;
		if (rc == COFFER_ERR_NOT_FOUND) {
			rc = api_app_name_ok(app) ? api_fail(req, rc, "app '%s' not found", app)
						  : http_reply_error(req, rc, "app not found");
			goto out;
		}
		if (rc)
			goto out;
	}

	rc = str_copy(t.org_id, sizeof(t.org_id), a->token.org_id);
	if (!rc)
		rc = str_copy(t.role, sizeof(t.role), api_role_name(role));
	if (!rc)
		rc = str_copy(t.app_id, sizeof(t.app_id), app ? found.id : "");
	if (!rc)
		rc = str_copy(t.description, sizeof(t.description), description);
	if (rc)
		goto out;
	t.expires_at = expiry ? api_now_ms() + (int64_t)expiry_ms : 0;
	rc = api_token_mint(&token, t.hash);
	if (rc)
		goto out;
	rc = api_note(a, store_token_insert(a->store, &t, &t));
	if (!rc)
		rc = token_answer(req, &t, app, token, NULL, 0);
out:
	secret_free(token);
	json_decref(doc);
	return rc;
}

enum coffer_err h_tokens_list(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_token_list tokens = { 0 };
	struct store_app_list apps = { 0 };
	json_t *list = NULL;
	enum coffer_err rc;
	(void)ctx;

	rc = api_note(a, store_token_list(a->store, a->token.org_id, &tokens));
	if (!rc)
		rc = api_note(a, store_app_list(a->store, a->token.org_id, &apps));
	if (rc)
		goto out;
	list = json_array();
	if (!list) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < tokens.n; i++) {
		const struct store_token *t = &tokens.items[i];
		json_t *item = token_json(t, t->app_id[0] ? app_name_of(&apps, t->app_id) : NULL);
		if (!item || json_array_append_new(list, item)) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	rc = api_reply(req, 200, json_pack("{s:O}", "tokens", list));
out:
	json_decref(list);
	store_app_list_release(&apps);
	store_token_list_release(&tokens);
	return rc;
}

/* "tok_" and STORE_ID_LEN lower-case hex characters. */
static int token_id_ok(const char *id)
{
	if (strlen(id) != API_TOKEN_ID_SIZE - 1 || strncmp(id, API_TOKEN_ID_PREFIX, API_TOKEN_ID_PREFIX_LEN) != 0)
		return 0;
	for (const char *p = id + API_TOKEN_ID_PREFIX_LEN; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

enum coffer_err h_tokens_revoke(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_token t;
	const char *id = http_request_param(req, "id");
	const char *store_id;
	enum coffer_err rc;
	(void)ctx;

	if (!token_id_ok(id))
		return http_reply_error(req, COFFER_ERR_NOT_FOUND, "token not found");
	store_id = id + API_TOKEN_ID_PREFIX_LEN;
	api_audit_note(req, NULL, json_pack("{s:s}", "token_id", id));
	rc = api_note(a, store_token_revoke(a->store, a->token.org_id, store_id));
	if (rc == COFFER_ERR_NOT_FOUND)
		return api_fail(req, rc, "token '%s' not found", id);
	if (!rc)
		rc = api_note(a, store_token_get(a->store, a->token.org_id, store_id, &t));
	if (rc)
		return rc == COFFER_ERR_NOT_FOUND ? COFFER_ERR_INTERNAL : rc;
	return api_reply(req, 200, json_pack("{s:s,s:o}", "id", id, "revoked_at", api_json_time(t.revoked_at)));
}

static const char *const rotate_fields[] = { "overlap", NULL };

/*
 * A new token with the old one's org, role, app, description and expiry
 * (the same instant: a rotation never makes a token live longer, and one
 * that never expires makes one that never expires); the old one keeps
 * working until the overlap ends, and is marked rotated, so it cannot be
 * rotated again: a leaked token used in its overlap mints nothing. A
 * longer life is a new token (`tokens create`). "self" is the caller's own
 * token, which any role may rotate (its route row); any other id needs an
 * admin (its route row).
 */
enum coffer_err h_tokens_rotate(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_token old = { 0 }, t = { 0 };
	struct store_app found = { 0 };
	const char *id = http_request_param(req, "id"), *overlap = NULL;
	char old_id[API_TOKEN_ID_SIZE];
	struct secret *token = NULL;
	uint64_t overlap_ms = API_TOKEN_OVERLAP_DEFAULT_MS;
	int64_t now = api_now_ms(), old_until;
	json_t *doc = NULL;
	struct json_error jerr;
	enum coffer_err rc;
	int known = 0;
	(void)ctx;

	rc = api_body(req, rotate_fields, &doc);
	if (rc)
		return rc;
	if ((rc = json_get_string(doc, "overlap", 0, &overlap, NULL, &jerr))) {
		rc = api_fail(req, rc, "invalid request body: %s", jerr.message);
		goto out;
	}
	if (overlap && parse_duration_ms(overlap, API_TOKEN_OVERLAP_MAX_MS, &overlap_ms)) {
		rc = api_fail(req, COFFER_ERR_INVALID, "overlap must be a duration such as 1h or 10m, at most 30 days");
		goto out;
	}
	if (!id) { /* /v1/tokens/self/rotate: the route names no id */
		old = a->token;
		known = 1;
	} else if (token_id_ok(id)) {
		rc = api_note(a, store_token_get(a->store, a->token.org_id, id + API_TOKEN_ID_PREFIX_LEN, &old));
		if (rc && rc != COFFER_ERR_NOT_FOUND)
			goto out;
		known = rc == COFFER_OK;
		rc = COFFER_OK;
	}
	if (!known) {
		rc = token_id_ok(id) ? api_fail(req, COFFER_ERR_NOT_FOUND, "token '%s' not found", id)
				     : http_reply_error(req, COFFER_ERR_NOT_FOUND, "token not found");
		goto out;
	}
	rc = api_token_id(old.id, old_id);
	if (rc)
		goto out;
	api_audit_note(req, NULL, json_pack("{s:s}", "rotated_from", old_id));
	if (old.revoked_at || (old.expires_at && old.expires_at <= now)) {
		rc = api_fail(req, COFFER_ERR_CONFLICT, "token '%s' is %s: it cannot be rotated", old_id,
			      old.revoked_at ? "revoked" : "expired");
		goto out;
	}
	if (old.rotated_at) {
		rc = api_fail(req, COFFER_ERR_CONFLICT,
			      "token '%s' was rotated already: use the token it was rotated to, or make a new one",
			      old_id);
		goto out;
	}
	if (old.app_id[0]) {
		rc = api_note(a, store_app_get(a->store, old.app_id, &found));
		if (rc)
			goto out;
	}
	t = old;
	t.expires_at = old.expires_at; /* never later than the old token's (0: it never expires) */
	old_until = now + (int64_t)overlap_ms;
	if (old.expires_at && old.expires_at < old_until)
		old_until = old.expires_at;
	rc = api_token_mint(&token, t.hash);
	if (!rc)
		rc = api_note(a, store_token_rotate(a->store, old.org_id, old.id, old_until, &t, &t));
	if (rc == COFFER_ERR_NOT_FOUND) /* revoked or rotated meanwhile */
		rc = api_fail(req, COFFER_ERR_CONFLICT, "token '%s' is revoked or was rotated already: it cannot be rotated",
			      old_id);
	else if (!rc)
		rc = token_answer(req, &t, old.app_id[0] ? found.name : NULL, token, old_id, old_until);
out:
	secret_free(token);
	json_decref(doc);
	return rc;
}
