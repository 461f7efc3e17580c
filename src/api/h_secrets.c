/*
 * h_secrets.c — GET/POST /v1/apps/:app/secrets and .../secrets/deploy.
 *
 * A change is checked whole before anything is sealed or stored: every
 * name, every value's type, size and bytes, the count and bytes the app
 * would hold. Then the app's public key is read from the store and its
 * keeper signature verified (a key replaced in the store is refused), each
 * value is sealed to it, and the change is stored as one new version with
 * the limits enforced again inside the store's transaction. A value lives
 * in a struct secret only as long as its digest or seal takes; the JSON
 * strings that carried it are wiped when freed (json_use_wiping_allocator).
 *
 * Once an app runs (it has a current release), a change that is not staged
 * is rolled out at once: the new version becomes the head and a release of
 * the current config with it is made (docs/RUNPATH.md). While a release of
 * the app is pending or running, every change is refused before anything
 * is stored, so the head never moves under a rollout.
 */
#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "digest.h"
#include "encode.h"
#include "log.h"
#include "release.h"
#include "vault.h"
#include "banned.h"

#define NAME_QUOTE_MAX 300       /* longest invalid name quoted in a message */
#define LABEL_SIZE (NAME_QUOTE_MAX + 32)
#define B64_TEXT_MAX (((API_SECRET_VALUE_MAX + 2) / 3) * 4)
#define AUDIT_ITEM_OVERHEAD 64   /* JSON punctuation and a digest, per name in the detail */
#define MSG_STAGED "staged; deploy with 'coffer secrets deploy'"
#define MSG_FIRST_DEPLOY "recorded for the first deployment"

static const char *const set_fields[] = { "secrets", "stage", NULL };
static const char *const b64_fields[] = { "base64", NULL };
static const char *const deploy_fields[] = { NULL };

struct item {
	const char *name;  /* borrowed from the document */
	json_t *value;     /* borrowed; JSON null for an unset */
	int remove;
	int noop;          /* the head holds this already */
	size_t value_len;
	char digest[DIGEST_HEX_LEN + 1];
	char value_id[STORE_ID_SIZE]; /* the new value row, bound into the seal */
	struct buf sealed;
};

/* "'NAME'" when it can be quoted, otherwise "at position N" (1-based). */
static void name_label(char out[LABEL_SIZE], const char *name, size_t len, size_t pos)
{
	if (api_quotable(name, len, NAME_QUOTE_MAX) && !fmt_into(out, LABEL_SIZE, "'%s'", name))
		return;
	if (fmt_into(out, LABEL_SIZE, "at position %zu", pos))
		out[0] = '\0';
}

static enum coffer_err check_name(struct http_request *req, const char *name, size_t pos)
{
	char label[LABEL_SIZE];
	size_t len = strlen(name);
	int ok = len > 0 && ((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z') || name[0] == '_');
	for (size_t i = 1; ok && i < len; i++) {
		char c = name[i];
		ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
	}
	name_label(label, name, len, pos);
	if (len > API_SECRET_NAME_MAX)
		return api_fail(req, COFFER_ERR_INVALID, "secret name %s is longer than %d bytes", label,
				API_SECRET_NAME_MAX);
	if (!ok)
		return api_fail(req, COFFER_ERR_INVALID, "secret name %s must match %s", label, API_SECRET_NAME_RULE);
	if (strncmp(name, API_SECRET_RESERVED_PREFIX, strlen(API_SECRET_RESERVED_PREFIX)) == 0)
		return api_fail(req, COFFER_ERR_INVALID, "secret name %s is reserved: the prefix %s belongs to coffer",
				label, API_SECRET_RESERVED_PREFIX);
	return COFFER_OK;
}

/*
 * The bytes of a set's value (a string, or {"base64": ...}) in secure
 * memory, checked: no NUL, at most API_SECRET_VALUE_MAX. Answers the error.
 */
static enum coffer_err value_of(struct http_request *req, const char *name, const json_t *v, struct secret **out)
{
	struct secret *s = NULL;
	enum coffer_err rc;

	if (json_is_string(v)) {
		size_t n = json_string_length(v);
		if (n > API_SECRET_VALUE_MAX)
			return api_fail(req, COFFER_ERR_TOO_LARGE, "value of '%s' is larger than %zu bytes", name,
					API_SECRET_VALUE_MAX);
		if (memchr(json_string_value(v), '\0', n))
			return api_fail(req, COFFER_ERR_INVALID, "value of '%s' contains a NUL byte", name);
		rc = secret_from(json_string_value(v), n, &s);
		if (rc)
			return rc;
	} else if (json_is_object(v)) {
		json_t *b = json_object_get(v, "base64");
		size_t n, got = 0;
		if (json_check_fields(v, b64_fields, NULL) || !json_is_string(b))
			goto wrong_type;
		n = json_string_length(b);
		if (n > B64_TEXT_MAX)
			return api_fail(req, COFFER_ERR_TOO_LARGE, "value of '%s' is larger than %zu bytes", name,
					API_SECRET_VALUE_MAX);
		rc = secret_new(n / 4 * 3 + 3, &s);
		if (rc)
			return rc;
		if (b64_decode_into(B64_STD, json_string_value(b), n, secret_bytes(s), secret_len(s), &got)) {
			secret_free(s);
			return api_fail(req, COFFER_ERR_INVALID, "value of '%s' is not valid base64", name);
		}
		rc = secret_truncate(s, got);
		if (rc) {
			secret_free(s);
			return rc;
		}
		if (got > API_SECRET_VALUE_MAX) {
			secret_free(s);
			return api_fail(req, COFFER_ERR_TOO_LARGE, "value of '%s' is larger than %zu bytes", name,
					API_SECRET_VALUE_MAX);
		}
		if (secret_has_nul(s)) {
			secret_free(s);
			return api_fail(req, COFFER_ERR_INVALID, "value of '%s' contains a NUL byte", name);
		}
	} else {
		goto wrong_type;
	}
	*out = s;
	return COFFER_OK;
wrong_type:
	return api_fail(req, COFFER_ERR_INVALID, "value of '%s' must be a string, null or {\"base64\": \"...\"}", name);
}

/*
 * The body. A \u0000 inside a string is refused by json_parse_limited;
 * when that is the only fault, the document is read again with jansson's
 * JSON_ALLOW_NUL (the size and depth pre-checks have passed) so that the
 * answer can name the secret whose value holds it; that document goes
 * through the same field check as any other.
 */
enum coffer_err api_secrets_body(const char *body, size_t len, size_t max, json_t **out,
				 char msg[API_BODY_MSG_SIZE])
{
	struct json_error jerr;
	json_error_t jj;
	enum coffer_err rc = json_parse_limited(body, len, max, JSON_MAX_DEPTH_DEFAULT, out, &jerr);
	if (rc == COFFER_ERR_INVALID && jerr.nul_escape) {
		*out = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jj);
		if (*out && json_is_object(*out))
			rc = COFFER_OK;
		else if (*out) {
			json_decref(*out);
			*out = NULL;
		}
	}
	if (rc) {
		if (fmt_into(msg, API_BODY_MSG_SIZE, "invalid request body: %s at byte %zu", jerr.message, jerr.position))
			msg[0] = '\0';
		return rc;
	}
	if (json_check_fields(*out, set_fields, &jerr)) {
		json_decref(*out);
		*out = NULL;
		if (fmt_into(msg, API_BODY_MSG_SIZE, "invalid request body: %s", jerr.message))
			msg[0] = '\0';
		return COFFER_ERR_INVALID;
	}
	return COFFER_OK;
}

static enum coffer_err parse_body(struct http_request *req, json_t **out)
{
	char msg[API_BODY_MSG_SIZE];
	size_t len;
	const char *body = http_request_body(req, &len);
	enum coffer_err rc = api_secrets_body(body, len, http_request_route(req)->max_body, out, msg);
	return rc ? api_fail(req, rc, "%s", msg) : COFFER_OK;
}

_Static_assert(offsetof(struct store_secret, name) == 0 && offsetof(struct store_manifest_item, name) == 0,
	       "find_name reads an item's name at its start");

static int name_cmp(const void *name, const void *item)
{
	return strcmp(name, item);
}

/*
 * The item called name in items[0..n) (each size bytes, name their first
 * member), sorted by name, bytewise, as a secret list's entries and its
 * manifest are; NULL when there is none.
 */
static const void *find_name(const void *items, size_t n, size_t size, const char *name)
{
	return n ? bsearch(name, items, n, size, name_cmp) : NULL;
}

/* The audit detail: names and digests, bounded to fit an audit field. */
static json_t *detail_of(const struct item *items, size_t n, uint64_t version, int stage, int unchanged)
{
	json_t *set = json_array(), *unset = json_array();
	size_t used = 0, left = 0;
	for (size_t i = 0; set && unset && i < n; i++) {
		size_t cost = strlen(items[i].name) + AUDIT_ITEM_OVERHEAD;
		if (used + cost > API_AUDIT_DETAIL_MAX) {
			left++;
			continue;
		}
		used += cost;
		if (items[i].remove)
			json_array_append_new(unset, json_string(items[i].name));
		else
			json_array_append_new(set, json_pack("{s:s,s:s}", "name", items[i].name, "digest", items[i].digest));
	}
	if (!set || !unset) {
		json_decref(set);
		json_decref(unset);
		return NULL;
	}
	json_t *d = json_pack("{s:I,s:b,s:o,s:o}", "version", (json_int_t)version, "stage", stage, "set", set, "unset",
			      unset);
	if (d && unchanged)
		json_object_set_new(d, "unchanged", json_true());
	if (d && left)
		json_object_set_new(d, "names_left_out", json_integer((json_int_t)left));
	return d;
}

/*
 * A secrets version whose manifest does not parse (store.h): edited in the
 * store, or made before schema 7. Logged, answered 500; nothing is stored.
 */
static enum coffer_err manifest_refused(struct http_request *req, const struct api_auth *a, uint64_t version)
{
	log_error("secrets_manifest_invalid", LF_S("app", a->app.name), LF_S("app_id", a->app.id),
		  LF_I("version", version));
	return http_reply_error(req, COFFER_ERR_INTERNAL, "secrets version failed verification");
}

/* Reads the app's newest public key and checks the keeper's signature over it. */
static enum coffer_err app_public_key(struct api_auth *a, unsigned char pk[HPKE_PK_LEN], uint32_t *version)
{
	struct store_app_key key;
	enum coffer_err rc = api_note(a, store_app_key_get(a->store, a->app.id, 0, &key));
	if (rc) {
		log_error("app_key_missing", LF_S("app", a->app.name), LF_S("error", coffer_err_name(rc)));
		return COFFER_ERR_INTERNAL;
	}
	if (key.public_key_len != HPKE_PK_LEN + VAULT_SIG_LEN || key.version == 0 || key.version > UINT32_MAX ||
	    vault_app_key_verify(a->api->keeper_pk, a->app.id, (uint32_t)key.version, key.public_key,
				 key.public_key + HPKE_PK_LEN) != COFFER_OK) {
		log_error("app_key_rejected", LF_S("message", "app key failed verification"), LF_S("app", a->app.name),
			  LF_S("app_id", a->app.id), LF_I("key_version", key.version));
		return COFFER_ERR_INTERNAL;
	}
	memcpy(pk, key.public_key, HPKE_PK_LEN);
	*version = (uint32_t)key.version;
	return COFFER_OK;
}

/*
 * Makes the release of a new secrets version (the current config, that
 * version). When none can be made (another release won the race, or the
 * store failed), the head goes back to where it was, the version is marked
 * superseded and the error is answered: no head without its release.
 */
static enum coffer_err roll_out(struct http_request *req, struct api_auth *a, uint64_t version, uint64_t before,
				uint64_t *release)
{
	char msg[API_MESSAGE_MAX];
	uint64_t running = 0;
	struct release_request rq = { &a->app, a->token_id, NULL, version };
	enum coffer_err rc, undo;

	msg[0] = '\0';
	rc = api_note(a, release_create(a->api, a->store, &rq, release, &running, msg, sizeof(msg)));
	if (!rc)
		return COFFER_OK;
	undo = api_note(a, store_secrets_set_head(a->store, a->app.id, before));
	if (!undo)
		undo = api_note(a, store_secrets_set_status(a->store, a->app.id, version, "superseded"));
	if (undo)
		log_error("secrets_head_undo_failed", LF_S("app", a->app.name), LF_I("version", version),
			  LF_I("head_before", before), LF_S("error", coffer_err_name(undo)));
	log_warn("secrets_release_refused", LF_S("app", a->app.name), LF_I("version", version),
		 LF_S("error", coffer_err_name(rc)));
	if (rc == COFFER_ERR_CONFLICT || rc == COFFER_ERR_NOT_FOUND)
		return api_fail(req, rc, "%s", msg[0] ? msg : "no release could be made");
	return rc;
}

enum coffer_err h_secrets_set(struct http_request *req, void *ctx)
{
	struct api *api = ctx;
	struct api_auth *a = api_auth_of(req);
	json_t *doc = NULL, *secrets = NULL, *v;
	struct item *items = NULL;
	struct store_secret_change *changes = NULL;
	struct store_secret_list head = { 0 };
	struct secret *app_key = NULL, *value = NULL;
	unsigned char pk[HPKE_PK_LEN];
	uint32_t key_version = 0;
	uint64_t version = 0, count, bytes, req_bytes = 0, release = 0, running = 0;
	size_t n = 0, i;
	int stage = 0, noop = 1, roll;
	const char *key;
	struct json_error jerr;
	enum coffer_err rc;

	rc = parse_body(req, &doc);
	if (rc)
		return rc;
	if ((rc = json_get_object(doc, "secrets", 1, &secrets, &jerr)) ||
	    (rc = json_get_bool(doc, "stage", 0, &stage, &jerr))) {
		rc = api_fail(req, rc, "invalid request body: %s", jerr.message);
		goto out;
	}
	n = json_object_size(secrets);
	if (n > API_SECRETS_MAX_COUNT) {
		rc = api_fail(req, COFFER_ERR_TOO_LARGE, "too many secrets in one change: at most %d",
			      API_SECRETS_MAX_COUNT);
		goto out;
	}
	items = calloc(n ? n : 1, sizeof(*items));
	if (!items) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}

	/* 1. Every name and value is checked, and digested, before anything is sealed. */
	rc = digest_app_key(api->digest_key, a->app.id, &app_key);
	if (rc)
		goto out;
	i = 0;
	json_object_foreach(secrets, key, v) {
		struct item *it = &items[i++];
		buf_init(&it->sealed, STORE_CIPHERTEXT_MAX);
		it->name = key;
		it->value = v;
		rc = check_name(req, key, i);
		if (rc)
			goto out;
		if (json_is_null(v)) {
			it->remove = 1;
			continue;
		}
		rc = value_of(req, key, v, &value);
		if (rc)
			goto out;
		it->value_len = secret_len(value);
		req_bytes += it->value_len;
		rc = digest_value(app_key, value, it->digest);
		secret_free(value);
		value = NULL;
		if (rc)
			goto out;
		if (req_bytes > API_SECRETS_MAX_BYTES) {
			rc = api_fail(req, COFFER_ERR_TOO_LARGE, "the values of one change hold more than %zu bytes",
				      API_SECRETS_MAX_BYTES);
			goto out;
		}
	}

	/* 2. Against the head: what changes, and what the app would hold. */
	rc = api_note(a, store_secrets_get(a->store, a->app.id, 0, &head));
	if (rc)
		goto out;
	if (!head.manifest_ok) {
		rc = manifest_refused(req, a, head.version);
		goto out;
	}
	count = head.n;
	bytes = 0;
	for (size_t k = 0; k < head.n; k++)
		bytes += head.items[k].ciphertext_len > VAULT_SEAL_OVERHEAD ? head.items[k].ciphertext_len - VAULT_SEAL_OVERHEAD
									    : 0;
	for (i = 0; i < n; i++) {
		struct item *it = &items[i];
		const struct store_secret *old = find_name(head.items, head.n, sizeof(*head.items), it->name);
		size_t old_len = old && old->ciphertext_len > VAULT_SEAL_OVERHEAD ? old->ciphertext_len - VAULT_SEAL_OVERHEAD
										  : 0;
		if (it->remove) {
			it->noop = !old;
			if (old) {
				count--;
				bytes -= old_len;
			}
			continue;
		}
		it->noop = old && digest_equal(old->digest, it->digest);
		if (old)
			bytes -= old_len;
		else
			count++;
		bytes += it->value_len;
	}
	for (i = 0; i < n; i++)
		noop = noop && items[i].noop;
	if (noop) {
		api_audit_note(req, a->app.name, detail_of(items, n, head.version, stage, 1));
		rc = api_reply(req, 200, json_pack("{s:I,s:s}", "version", (json_int_t)head.version, "status", "unchanged"));
		goto out;
	}
	if (count > API_SECRETS_MAX_COUNT) {
		rc = api_fail(req, COFFER_ERR_TOO_LARGE, "app '%s' would have %llu secrets: at most %d", a->app.name,
			      (unsigned long long)count, API_SECRETS_MAX_COUNT);
		goto out;
	}
	if (bytes > API_SECRETS_MAX_BYTES) {
		rc = api_fail(req, COFFER_ERR_TOO_LARGE, "app '%s' would hold %llu bytes of values: at most %zu (1 MiB)",
			      a->app.name, (unsigned long long)bytes, API_SECRETS_MAX_BYTES);
		goto out;
	}

	/* No change while a release rolls: it would move the head under it. */
	rc = api_note(a, release_running_of(a->store, a->app.id, &running));
	if (rc)
		goto out;
	if (running) {
		rc = api_fail(req, COFFER_ERR_CONFLICT,
			      "app '%s' has release v%llu in progress; wait for it or check 'coffer releases -a %s'",
			      a->app.name, (unsigned long long)running, a->app.name);
		goto out;
	}
	roll = !stage && a->app.current_release != 0;

	/* 3. Seal to the app's verified key; each value is wiped once sealed. */
	rc = app_public_key(a, pk, &key_version);
	if (rc) {
		rc = http_reply_error(req, rc, "app key failed verification");
		goto out;
	}
	changes = calloc(n, sizeof(*changes));
	if (!changes) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct item *it = &items[i];
		changes[i].name = it->name;
		changes[i].remove = it->remove;
		if (it->remove)
			continue;
		store_new_id(it->value_id);
		rc = value_of(req, it->name, it->value, &value);
		if (!rc)
			rc = vault_seal_value(pk, a->app.id, it->name, key_version, it->value_id, value, &it->sealed);
		secret_free(value);
		value = NULL;
		if (rc)
			goto out;
		changes[i].ciphertext = (const unsigned char *)it->sealed.ptr;
		changes[i].ciphertext_len = it->sealed.len;
		changes[i].digest = it->digest;
		changes[i].key_version = key_version;
		changes[i].value_id = it->value_id;
	}

	/* 4. One new version, the limits checked again under the app's lock. */
	const struct store_secret_limits limits = { API_SECRETS_MAX_COUNT, API_SECRETS_MAX_BYTES, VAULT_SEAL_OVERHEAD };
	rc = api_note(a, store_secrets_put(a->store, a->app.id, changes, n, a->token_id, roll ? "pending" : "staged",
					   &limits, &version));
	if (rc == COFFER_ERR_TOO_LARGE) {
		rc = api_fail(req, rc, "app '%s' would pass its limits: at most %d secrets and 1 MiB of values",
			      a->app.name, API_SECRETS_MAX_COUNT);
		goto out;
	}
	if (rc == COFFER_ERR_CRYPTO) { /* the head changed under us to one whose manifest does not parse */
		rc = manifest_refused(req, a, head.version);
		goto out;
	}
	if (rc)
		goto out;
	if (roll) {
		/* 5. The current config with the new head; the head goes back if no release can be made. */
		json_t *d = detail_of(items, n, version, stage, 0); /* the request's audit detail owns it */
		api_audit_note(req, a->app.name, d);
		rc = roll_out(req, a, version, head.version, &release);
		if (d)
			json_object_set_new(d, rc ? "undone" : "release", rc ? json_true() : json_integer((json_int_t)release));
		if (rc)
			goto out;
		rc = api_reply(req, 201, json_pack("{s:I,s:s,s:I}", "version", (json_int_t)version, "status",
						   "deploying", "release", (json_int_t)release));
		goto out;
	}
	api_audit_note(req, a->app.name, detail_of(items, n, version, stage, 0));
	/* Staged, or the app has never run: the change waits for a deploy. */
	rc = api_reply(req, 200, json_pack("{s:I,s:s,s:s}", "version", (json_int_t)version, "status", "staged", "message",
					   stage ? MSG_STAGED : MSG_FIRST_DEPLOY));
out:
	sodium_memzero(pk, sizeof(pk));
	secret_free(value);
	secret_free(app_key);
	free(changes);
	if (items)
		for (i = 0; i < n; i++)
			buf_release(&items[i].sealed);
	free(items);
	store_secret_list_release(&head);
	json_decref(doc);
	return rc;
}

enum coffer_err h_secrets_list(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_secret_list head = { 0 }, deployed = { 0 };
	json_t *list = NULL;
	enum coffer_err rc;
	(void)ctx;

	rc = api_note(a, store_secrets_get(a->store, a->app.id, 0, &head));
	if (!rc && a->app.deployed_version)
		rc = api_note(a, store_secrets_get(a->store, a->app.id, a->app.deployed_version, &deployed));
	if (rc)
		goto out;
	if (!head.manifest_ok) {
		rc = manifest_refused(req, a, head.version);
		goto out;
	}
	list = json_array();
	if (!list) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	/* The manifest is what the keeper delivers: its names and digests; the times are the entries'. */
	for (size_t i = 0; i < head.manifest_n; i++) {
		const struct store_manifest_item *m = &head.manifest[i];
		const struct store_secret *e = find_name(head.items, head.n, sizeof(*head.items), m->name);
		const struct store_manifest_item *d =
			a->app.deployed_version
				? find_name(deployed.manifest, deployed.manifest_n, sizeof(*deployed.manifest), m->name)
				: NULL;
		int is_deployed = d && digest_equal(d->digest, m->digest);
		json_t *item = json_pack("{s:s,s:s,s:s,s:o,s:o}", "name", m->name, "digest", m->digest, "status",
					 is_deployed ? "deployed" : "staged", "created_at",
					 api_json_time(e ? e->created_at : 0), "updated_at",
					 api_json_time(e ? e->updated_at : 0));
		if (!item || json_array_append_new(list, item)) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	rc = api_reply(req, 200, json_pack("{s:s,s:I,s:O}", "app", a->app.name, "version", (json_int_t)head.version,
					   "secrets", list));
out:
	json_decref(list);
	store_secret_list_release(&deployed);
	store_secret_list_release(&head);
	return rc;
}

enum coffer_err h_secrets_deploy(struct http_request *req, void *ctx)
{
	struct api *api = ctx;
	struct api_auth *a = api_auth_of(req);
	json_t *doc = NULL;
	char msg[API_MESSAGE_MAX];
	uint64_t head = a->app.secrets_head, release = 0, running = 0;
	struct release_request rq = { &a->app, a->token_id, NULL, head };
	size_t len;
	enum coffer_err rc;

	http_request_body(req, &len);
	if (len) { /* no fields yet: an empty body or {} */
		rc = api_body(req, deploy_fields, &doc);
		json_decref(doc);
		if (rc)
			return rc;
	}
	api_audit_note(req, a->app.name, json_pack("{s:I}", "version", (json_int_t)head));
	if (!a->app.current_release)
		return api_fail(req, COFFER_ERR_CONFLICT,
				"app '%s' has no machines to deploy to; the secrets are staged for the first deployment",
				a->app.name);
	/* The current config with the head, whatever it holds (a redeploy of the same is harmless). */
	msg[0] = '\0';
	rc = api_note(a, release_create(api, a->store, &rq, &release, &running, msg, sizeof(msg)));
	if (rc == COFFER_ERR_CONFLICT || rc == COFFER_ERR_NOT_FOUND)
		return api_fail(req, rc, "%s", msg[0] ? msg : "no release could be made");
	if (rc)
		return rc;
	if (head && head != a->app.deployed_version &&
	    api_note(a, store_secrets_set_status(a->store, a->app.id, head, "pending")))
		log_warn("secrets_status_failed", LF_S("app", a->app.name), LF_I("version", head));
	api_audit_note(req, a->app.name,
		       json_pack("{s:I,s:I}", "version", (json_int_t)head, "release", (json_int_t)release));
	return api_reply(req, 201, json_pack("{s:I,s:s,s:I}", "release", (json_int_t)release, "status", "pending",
					     "version", (json_int_t)head));
}
