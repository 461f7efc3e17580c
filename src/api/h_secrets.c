/*
 * h_secrets.c — GET/POST /v1/apps/:app/secrets and .../secrets/deploy.
 *
 * The api never sees a value: the deployer's CLI seals each one to the
 * app's public key (which it checks with the keeper's key it pinned at
 * login), computes its keyed digest with the app's digest subkey (GET
 * .../secrets/sealing), and signs the manifest of the version the change
 * makes and, when the change makes a release, the release's statement
 * (deployer.h). A plaintext value in a body is refused, unless the org
 * enrolled the api as one of its deployers (plaintext.c: the api then
 * seals and signs as the CLI would, before the checks below).
 *
 * A change is checked whole before anything is stored: every name, each
 * sealed value's form and size, the count and bytes the app would hold,
 * the signer; then the manifest the store would make is built here and
 * checked against the signed one (409 when the head moved meanwhile), the
 * signatures are stored, and the change is stored as one new version whose
 * manifest the store compares again inside its transaction.
 *
 * Once an app runs (it has a current release), a change that is not staged
 * is rolled out at once: the new version becomes the head and a release of
 * the current config with it is made (docs/RUNPATH.md). While a release of
 * the app is pending or running, every change is refused before anything
 * is stored, so the head never moves under a rollout.
 */
#include <pthread.h>
#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "digest.h"
#include "encode.h"
#include "log.h"
#include "monotime.h"
#include "release.h"
#include "vault.h"
#include "banned.h"

#define NAME_QUOTE_MAX 300       /* longest invalid name quoted in a message */
#define LABEL_SIZE (NAME_QUOTE_MAX + 32)
#define SEALED_B64_MAX B64URL_LEN(API_SECRET_VALUE_MAX + VAULT_SEAL_OVERHEAD)
#define AUDIT_ITEM_OVERHEAD 64   /* JSON punctuation and a digest, per name in the detail */
#define MSG_STAGED "staged; deploy with 'coffer secrets deploy'"
#define MSG_FIRST_DEPLOY "recorded for the first deployment"
#define SECRETS_CHANGED "the app's secrets"

static const char *const set_fields[] = { "secrets", "stage", "key_version", "signer", "manifest", "release", NULL };
static const char *const sealed_fields[] = { "sealed", "digest", "value_id", NULL };
static const char *const deploy_fields[] = { "signer", "release", NULL };

struct item {
	const char *name;  /* borrowed from the document */
	int remove;
	int noop;          /* the head holds this already */
	size_t value_len;  /* the sealed value's length less VAULT_SEAL_OVERHEAD */
	char digest[DIGEST_HEX_LEN + 1];
	char value_id[STORE_ID_SIZE]; /* the new value row, bound into the seal by the CLI */
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

enum coffer_err api_secret_name_check(struct http_request *req, const char *name, size_t pos)
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

static int id_ok(const char *id)
{
	if (strlen(id) != STORE_ID_LEN)
		return 0;
	for (size_t i = 0; i < STORE_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return 1;
}

/*
 * A set's sealed value {"sealed": base64url, "digest": hex, "value_id": id}
 * into it, its form and size checked (the api cannot read it: no NUL and
 * the value's bytes are the CLI's and the keeper's checks). A plaintext
 * value (a string or {"base64": ...}) is refused, naming the secret only.
 * Answers the error.
 */
static enum coffer_err sealed_of(struct http_request *req, const char *name, const json_t *v, struct item *it)
{
	const char *sealed = json_string_value(json_object_get(v, "sealed"));
	const char *digest = json_string_value(json_object_get(v, "digest"));
	const char *id = json_string_value(json_object_get(v, "value_id"));
	size_t n;

	if (json_is_string(v) || (json_is_object(v) && json_object_get(v, "base64")))
		return api_fail(req, COFFER_ERR_INVALID,
				"value of '%s' is plaintext and this org does not allow plaintext values: seal it "
				"with 'coffer secrets set', or allow them by enrolling the api as a deployer of the "
				"org ('coffer api enrol-deployer', docs/API.md)", name);
	if (!json_is_object(v) || json_check_fields(v, sealed_fields, NULL) || !sealed || !digest || !id)
		return api_fail(req, COFFER_ERR_INVALID,
				"value of '%s' must be null or {\"sealed\", \"digest\", \"value_id\"}", name);
	n = json_string_length(json_object_get(v, "sealed"));
	if (n > SEALED_B64_MAX)
		return api_fail(req, COFFER_ERR_TOO_LARGE, "value of '%s' is larger than %zu bytes", name,
				API_SECRET_VALUE_MAX);
	if (b64url_decode(sealed, n, &it->sealed) || it->sealed.len < VAULT_SEAL_OVERHEAD)
		return api_fail(req, COFFER_ERR_INVALID, "value of '%s' is not a sealed value", name);
	it->value_len = it->sealed.len - VAULT_SEAL_OVERHEAD;
	if (it->value_len > API_SECRET_VALUE_MAX)
		return api_fail(req, COFFER_ERR_TOO_LARGE, "value of '%s' is larger than %zu bytes", name,
				API_SECRET_VALUE_MAX);
	if (!digest_equal(digest, digest))
		return api_fail(req, COFFER_ERR_INVALID, "digest of '%s' must be %d lower-case hex characters", name,
				DIGEST_HEX_LEN);
	if (!id_ok(id))
		return api_fail(req, COFFER_ERR_INVALID, "value_id of '%s' must be %d lower-case hex characters", name,
				STORE_ID_LEN);
	memcpy(it->digest, digest, DIGEST_HEX_LEN + 1);
	memcpy(it->value_id, id, STORE_ID_SIZE);
	return COFFER_OK;
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
	       "api_find_name reads an item's name at its start");

static int name_cmp(const void *name, const void *item)
{
	return strcmp(name, item);
}

/*
 * The item called name in items[0..n) (each size bytes, name their first
 * member), sorted by name, bytewise, as a secret list's entries and its
 * manifest are; NULL when there is none.
 */
const void *api_find_name(const void *items, size_t n, size_t size, const char *name)
{
	return n ? bsearch(name, items, n, size, name_cmp) : NULL;
}

/* The audit detail: names and digests, bounded to fit an audit field, and the deployer who signed. */
static json_t *detail_of(const struct item *items, size_t n, uint64_t version, int stage, int unchanged,
			 const char *deployer)
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
	if (d)
		json_object_set_new(d, "deployer", json_string(deployer));
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
enum coffer_err api_app_public_key(struct api_auth *a, unsigned char pk[HPKE_PK_LEN], uint32_t *version)
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
 * Makes the release of a new secrets version (the current config, signed
 * with that version). When none can be made (another release won the race, or the
 * store failed), the head goes back to where it was, the version is marked
 * superseded and the error is answered: no head without its release.
 */
static enum coffer_err roll_out(struct http_request *req, struct api_auth *a, uint64_t version, uint64_t before,
				const char *config, uint64_t *release)
{
	char msg[API_MESSAGE_MAX];
	uint64_t running = 0;
	struct release_request rq = { &a->app, a->token_id, config, version, 0 };
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

/*
 * A change that unsets a secret a file of config delivers (docs/RUNPATH.md
 * "Secrets as files") is refused: its release could not start a machine.
 * *refused is 1 when this answered 400.
 */
static enum coffer_err refuse_unset_file(struct http_request *req, const struct api_auth *a, const char *config,
					 const struct item *items, size_t n, int *refused)
{
	json_t *doc = config ? json_loads(config, 0, NULL) : NULL, *files = json_object_get(doc, "files");
	enum coffer_err rc = COFFER_OK;
	*refused = 0;
	for (size_t i = 0; i < json_array_size(files) && !*refused; i++) {
		const char *sname = json_string_value(json_object_get(json_array_get(files, i), "secret"));
		const char *path = json_string_value(json_object_get(json_array_get(files, i), "path"));
		for (size_t k = 0; sname && path && k < n && !*refused; k++) {
			if (!items[k].remove || strcmp(items[k].name, sname) != 0)
				continue;
			*refused = 1;
			rc = api_fail(req, COFFER_ERR_INVALID,
				      "secret '%s' is the file '%s' of the current release of app '%s': deploy without "
				      "that file before unsetting it",
				      sname, path, a->app.name);
		}
	}
	json_decref(doc);
	return rc;
}

/* The current release's row (its config), for a change that rolls out. */
static enum coffer_err current_release(struct api_auth *a, struct store_release *r)
{
	enum coffer_err rc = api_note(a, store_release_get(a->store, a->app.id, a->app.current_release, r));
	if (!rc && !r->config)
		rc = COFFER_ERR_TAMPERED;
	return rc;
}

/*
 * A change of h_secrets_set as the group committer runs it (store.h,
 * store_group_run): the new version and, when ev is set, the request's
 * audit event, in one transaction and one durable commit with the
 * changes of other requests.
 */
struct set_change {
	const char *app_id;
	const struct store_secret_change *changes;
	size_t n;
	const char *actor;
	const char *status;
	const struct store_secret_limits *limits;
	const char *manifest;
	const struct store_audit_event *ev;
	uint64_t version;
};

static enum coffer_err set_change_run(struct store *s, void *arg)
{
	struct set_change *c = arg;
	enum coffer_err rc = store_secrets_put_signed(s, c->app_id, c->changes, c->n, c->actor, c->status, c->limits,
						      c->manifest, &c->version);
	if (!rc && c->ev)
		rc = store_audit_append(s, c->ev, NULL);
	return rc;
}

enum coffer_err h_secrets_set(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	json_t *doc = NULL, *secrets = NULL, *v;
	struct item *items = NULL;
	struct store_secret_change *changes = NULL;
	struct store_secret_list head = { 0 };
	struct store_release cur = { 0 };
	struct api_signer signer;
	struct buf manifest;
	char *head_manifest = NULL;
	unsigned char pk[HPKE_PK_LEN];
	uint32_t key_version = 0;
	int64_t want_key = 0;
	uint64_t version = 0, max = 0, count, bytes, req_bytes = 0, release = 0, running = 0;
	size_t n = 0, i;
	int stage = 0, noop = 1, roll;
	const char *key;
	struct json_error jerr;
	struct store_audit_event ev;
	char outcome[HTTP_AUDIT_OUTCOME_MAX];
	struct buf detail;
	enum coffer_err rc;
	(void)ctx;

	buf_init(&manifest, STORE_MANIFEST_MAX);
	buf_init(&detail, HTTP_AUDIT_DETAIL_MAX + 1);
	rc = parse_body(req, &doc);
	if (!rc)
		rc = api_plaintext_seal(req, a, doc); /* an org that allows plaintext values (plaintext.c) */
	if (rc)
		goto out;
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
	for (i = 0; i < n; i++)
		buf_init(&items[i].sealed, STORE_CIPHERTEXT_MAX);

	/* 1. Every name, then every sealed value, is checked before anything else. */
	i = 0;
	json_object_foreach(secrets, key, v) {
		rc = api_secret_name_check(req, key, ++i);
		if (rc)
			goto out;
	}
	i = 0;
	json_object_foreach(secrets, key, v) {
		struct item *it = &items[i++];
		it->name = key;
		if (json_is_null(v)) {
			it->remove = 1;
			continue;
		}
		rc = sealed_of(req, key, v, it);
		if (rc)
			goto out;
		req_bytes += it->value_len;
		if (req_bytes > API_SECRETS_MAX_BYTES) {
			rc = api_fail(req, COFFER_ERR_TOO_LARGE, "the values of one change hold more than %zu bytes",
				      API_SECRETS_MAX_BYTES);
			goto out;
		}
	}
	if (json_get_int(doc, "key_version", n > 0, 0, UINT32_MAX, &want_key, &jerr)) {
		rc = api_fail(req, COFFER_ERR_INVALID, "invalid request body: %s", jerr.message);
		goto out;
	}
	rc = api_signer(req, a, doc, &signer);
	if (rc)
		goto out;

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
		const struct store_secret *old = api_find_name(head.items, head.n, sizeof(*head.items), it->name);
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
		api_audit_note(req, a->app.name, detail_of(items, n, head.version, stage, 1, signer.id));
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

	/* 3. The values were sealed to the app's newest key, verified here too. */
	rc = api_app_public_key(a, pk, &key_version);
	if (rc) {
		rc = http_reply_error(req, rc, "app key failed verification");
		goto out;
	}
	if ((int64_t)key_version != want_key && want_key) {
		rc = api_fail(req, COFFER_ERR_CONFLICT, "the app's key changed meanwhile: read again and seal again");
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
		changes[i].ciphertext = (const unsigned char *)it->sealed.ptr;
		changes[i].ciphertext_len = it->sealed.len;
		changes[i].digest = it->digest;
		changes[i].key_version = key_version;
		changes[i].value_id = it->value_id;
	}

	/* 4. The manifest the store will make, and the release, as the deployer signed them. */
	rc = api_version_manifest(a, head.version, &head_manifest);
	if (!rc)
		rc = api_note(a, store_secrets_version_max(a->store, a->app.id, &max));
	if (!rc)
		rc = store_manifest_next(a->app.id, head.version, head_manifest, max + 1, changes, n, &manifest);
	if (rc == COFFER_ERR_CRYPTO) {
		rc = manifest_refused(req, a, head.version);
		goto out;
	}
	if (rc == COFFER_ERR_INVALID) { /* a value id given twice */
		rc = api_fail(req, rc, "invalid change: each value needs its own value_id");
		goto out;
	}
	if (!rc && roll)
		rc = current_release(a, &cur);
	if (!rc && roll) {
		int refused = 0;
		rc = refuse_unset_file(req, a, cur.config, items, n, &refused);
		if (refused)
			goto out;
	}
	if (!rc)
		rc = api_plaintext_sign(a, doc, manifest.ptr, manifest.len, roll ? cur.config : NULL, max + 1);
	if (!rc)
		rc = api_signed(req, a, &signer, doc, "manifest", manifest.ptr, manifest.len, SECRETS_CHANGED);
	if (!rc && roll && !json_object_get(doc, "release")) /* the CLI saw no release: the first one came meanwhile */
		rc = api_fail(req, COFFER_ERR_CONFLICT, "the app's release changed meanwhile: read again and sign again");
	if (!rc && roll)
		rc = api_release_signed(req, a, &signer, doc, cur.config, max + 1, manifest.ptr);
	if (rc)
		goto out;

	/*
	 * 5. One new version, the limits and the manifest checked again under the app's lock; when
	 * nothing follows it (no roll-out), committed with its audit event. The version can only be
	 * max + 1: the manifest names it.
	 */
	const struct store_secret_limits limits = { API_SECRETS_MAX_COUNT, API_SECRETS_MAX_BYTES, VAULT_SEAL_OVERHEAD };
	struct set_change sc = { a->app.id, changes, n, a->token_id, roll ? "pending" : "staged", &limits,
				 manifest.ptr, NULL, 0 };
	if (!roll) {
		api_audit_note(req, a->app.name, detail_of(items, n, max + 1, stage, 0, signer.id));
		rc = api_audit_ok_event(req, outcome, &detail, &ev);
		if (rc)
			goto out;
		sc.ev = &ev;
	}
	rc = api_note(a, store_group_run(a->store, set_change_run, &sc));
	version = sc.version;
	if (rc && !roll)
		api_audit_note(req, NULL, json_object()); /* the refusal's event names no version */
	if (!rc && !roll)
		api_audited(req);
	if (rc == COFFER_ERR_TOO_LARGE) {
		rc = api_fail(req, rc, "app '%s' would pass its limits: at most %d secrets and 1 MiB of values",
			      a->app.name, API_SECRETS_MAX_COUNT);
		goto out;
	}
	if (rc == COFFER_ERR_CONFLICT) {
		rc = api_fail(req, rc, SECRETS_CHANGED " changed meanwhile: read again and sign again");
		goto out;
	}
	if (rc == COFFER_ERR_CRYPTO) { /* the head changed under us to one whose manifest does not parse */
		rc = manifest_refused(req, a, head.version);
		goto out;
	}
	if (rc)
		goto out;
	if (roll) {
		/* 6. The current config with the new head; the head goes back if no release can be made. */
		json_t *d = detail_of(items, n, version, stage, 0, signer.id); /* the request's audit detail owns it */
		api_audit_note(req, a->app.name, d);
		rc = roll_out(req, a, version, head.version, cur.config, &release);
		if (d)
			json_object_set_new(d, rc ? "undone" : "release", rc ? json_true() : json_integer((json_int_t)release));
		if (rc)
			goto out;
		rc = api_reply(req, 201, json_pack("{s:I,s:s,s:I}", "version", (json_int_t)version, "status",
						   "deploying", "release", (json_int_t)release));
		goto out;
	}
	/* Staged, or the app has never run: the change waits for a deploy. */
	rc = api_reply(req, 200, json_pack("{s:I,s:s,s:s}", "version", (json_int_t)version, "status", "staged", "message",
					   stage ? MSG_STAGED : MSG_FIRST_DEPLOY));
out:
	sodium_memzero(pk, sizeof(pk));
	free(changes);
	if (items)
		for (i = 0; i < n; i++)
			buf_release(&items[i].sealed);
	free(items);
	free(head_manifest);
	buf_release(&manifest);
	buf_release(&detail);
	store_release_clear(&cur);
	store_secret_list_release(&head);
	json_decref(doc);
	return rc;
}

/* One row of the list: the name and digest of m, its status, the times of entry e (NULL: none). */
static enum coffer_err list_add(json_t *list, const struct store_manifest_item *m, const char *status,
				const struct store_secret *e)
{
	json_t *item = json_pack("{s:s,s:s,s:s,s:o,s:o}", "name", m->name, "digest", m->digest, "status", status,
				 "created_at", api_json_time(e ? e->created_at : 0), "updated_at",
				 api_json_time(e ? e->updated_at : 0));
	return !item || json_array_append_new(list, item) ? COFFER_ERR_NOMEM : COFFER_OK;
}

/*
 * The app's newest release: whether it is rolling out (pending or
 * running), and the manifest of a failed one's secrets version when the
 * app does not run that version (what it failed to deploy).
 */
static enum coffer_err newest_release(struct api_auth *a, int *rolling, struct store_manifest_item **failed,
				      size_t *failed_n, int *has_failed)
{
	struct store_release_list l = { 0 };
	enum coffer_err rc = api_note(a, store_release_list(a->store, a->app.id, &l));
	*rolling = *has_failed = 0;
	if (!rc && l.n) {
		const struct store_release *r = &l.items[0];
		*rolling = strcmp(r->status, "pending") == 0 || strcmp(r->status, "running") == 0;
		if (strcmp(r->status, "failed") == 0 && r->secrets_version != a->app.deployed_version) {
			rc = api_version_items(a, r->secrets_version, failed, failed_n);
			*has_failed = !rc;
		}
	}
	store_release_list_release(&l);
	return rc;
}

/*
 * The head's names, and the names the app runs that the head unsets, each
 * with a status computed here so that every client shows the same
 * (docs/API.md): deployed (the app runs this digest), staged (the head
 * holds a change not deployed), unset (the app runs the name, the head
 * unsets it), partial (the newest release is rolling this change out),
 * failed (the newest release failed to deploy this name's change; the
 * digest is what it tried when the app does not run the name).
 */
enum coffer_err h_secrets_list(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_secret_list head = { 0 }, deployed = { 0 };
	struct store_manifest_item *failed = NULL;
	size_t failed_n = 0;
	int rolling = 0, has_failed = 0;
	json_t *list = NULL;
	enum coffer_err rc;
	(void)ctx;

	rc = api_note(a, store_secrets_get(a->store, a->app.id, 0, &head));
	if (!rc && a->app.deployed_version)
		rc = api_note(a, store_secrets_get(a->store, a->app.id, a->app.deployed_version, &deployed));
	if (!rc)
		rc = newest_release(a, &rolling, &failed, &failed_n, &has_failed);
	if (rc == COFFER_ERR_CRYPTO) {
		rc = manifest_refused(req, a, a->app.deployed_version);
		goto out;
	}
	if (rc)
		goto out;
	if (!head.manifest_ok || (a->app.deployed_version && !deployed.manifest_ok)) {
		rc = manifest_refused(req, a, head.manifest_ok ? deployed.version : head.version);
		goto out;
	}
	list = json_array();
	if (!list) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	/* The manifest is what the keeper delivers: its names and digests; the times are the entries'. */
	for (size_t i = 0; !rc && i < head.manifest_n; i++) {
		const struct store_manifest_item *m = &head.manifest[i];
		const struct store_secret *e = api_find_name(head.items, head.n, sizeof(*head.items), m->name);
		const struct store_manifest_item *d =
			api_find_name(deployed.manifest, deployed.manifest_n, sizeof(*deployed.manifest), m->name);
		const struct store_manifest_item *f =
			has_failed ? api_find_name(failed, failed_n, sizeof(*failed), m->name) : NULL;
		int runs = d && digest_equal(d->digest, m->digest);
		const char *status = runs ? "deployed" : "staged";
		if (rolling && !runs)
			status = "partial";
		else if (has_failed && runs && !(f && digest_equal(f->digest, m->digest)))
			status = "failed"; /* the failed release changed or unset it; the app runs this digest */
		else if (has_failed && !runs && f && digest_equal(f->digest, m->digest))
			status = "failed"; /* this change is the one that failed (a first deployment keeps it) */
		rc = list_add(list, m, status, e);
	}
	for (size_t i = 0; !rc && i < deployed.manifest_n; i++) {
		const struct store_manifest_item *d = &deployed.manifest[i];
		if (api_find_name(head.manifest, head.manifest_n, sizeof(*head.manifest), d->name))
			continue;
		rc = list_add(list, d, rolling ? "partial" : "unset",
			      api_find_name(deployed.items, deployed.n, sizeof(*deployed.items), d->name));
	}
	for (size_t i = 0; !rc && i < failed_n; i++) { /* a name the failed release added */
		const struct store_manifest_item *f = &failed[i];
		if (!api_find_name(head.manifest, head.manifest_n, sizeof(*head.manifest), f->name) &&
		    !api_find_name(deployed.manifest, deployed.manifest_n, sizeof(*deployed.manifest), f->name))
			rc = list_add(list, f, "failed", NULL);
	}
	if (!rc)
		rc = api_reply(req, 200, json_pack("{s:s,s:I,s:O}", "app", a->app.name, "version",
						   (json_int_t)head.version, "secrets", list));
out:
	json_decref(list);
	free(failed);
	store_secret_list_release(&deployed);
	store_secret_list_release(&head);
	return rc;
}

enum coffer_err h_secrets_deploy(struct http_request *req, void *ctx)
{
	struct api *api = ctx;
	struct api_auth *a = api_auth_of(req);
	struct store_release cur = { 0 };
	struct api_signer signer;
	json_t *doc = NULL;
	char msg[API_MESSAGE_MAX];
	uint64_t head = a->app.secrets_head, release = 0, running = 0;
	struct release_request rq;
	size_t len;
	enum coffer_err rc;

	http_request_body(req, &len);
	if (len) { /* the CLI's body; an empty one gets as far as the signer check */
		rc = api_body(req, deploy_fields, &doc);
		if (rc)
			return rc;
	}
	api_audit_note(req, a->app.name, json_pack("{s:I}", "version", (json_int_t)head));
	if (!a->app.current_release) {
		rc = api_fail(req, COFFER_ERR_CONFLICT,
			      "app '%s' has no machines to deploy to; the secrets are staged for the first deployment",
			      a->app.name);
		goto out;
	}
	/* The current config with the head, whatever it holds (a redeploy of the same is harmless). */
	rc = api_signer(req, a, doc, &signer);
	if (!rc)
		rc = current_release(a, &cur);
	if (!rc)
		rc = api_release_signed(req, a, &signer, doc, cur.config, head, NULL);
	if (rc)
		goto out;
	msg[0] = '\0';
	rq = (struct release_request){ &a->app, a->token_id, cur.config, head, 0 };
	rc = api_note(a, release_create(api, a->store, &rq, &release, &running, msg, sizeof(msg)));
	if (rc == COFFER_ERR_CONFLICT || rc == COFFER_ERR_NOT_FOUND) {
		rc = api_fail(req, rc, "%s", msg[0] ? msg : "no release could be made");
		goto out;
	}
	if (rc)
		goto out;
	if (head && head != a->app.deployed_version &&
	    api_note(a, store_secrets_set_status(a->store, a->app.id, head, "pending")))
		log_warn("secrets_status_failed", LF_S("app", a->app.name), LF_I("version", head));
	api_audit_note(req, a->app.name,
		       json_pack("{s:I,s:I,s:s}", "version", (json_int_t)head, "release", (json_int_t)release, "deployer",
				 signer.id));
	rc = api_reply(req, 201, json_pack("{s:I,s:s,s:I}", "release", (json_int_t)release, "status", "pending",
					   "version", (json_int_t)head));
out:
	store_release_clear(&cur);
	json_decref(doc);
	return rc;
}

/* ---- POST /v1/apps/:app/secrets/:name/verify (docs/API.md "secrets verify") ---- */

/*
 * The oracle's limit: VERIFY_LIMIT tries per token and app in each window
 * of VERIFY_WINDOW_MS, per api process. One table for the process, its
 * slots reused once their window is over (all busy: the oldest window is
 * dropped, which can only let its holder try sooner).
 */
#define VERIFY_LIMIT 10
#define VERIFY_WINDOW_MS ((int64_t)60000)
#define VERIFY_SLOTS 1024
#define VERIFY_KEY_SIZE (API_TOKEN_ID_SIZE + STORE_ID_SIZE + 2)
#define VERIFY_BODY_SEALED_MAX ((size_t)(API_SECRET_VALUE_MAX + VAULT_SEAL_OVERHEAD) * 4 / 3 + 8)

static const char *const verify_fields[] = { "sealed", "key_version", NULL };

static struct {
	pthread_mutex_t mu;
	struct verify_slot {
		char key[VERIFY_KEY_SIZE];
		int64_t start; /* monotime_ms of the window's first try */
		unsigned count;
	} slots[VERIFY_SLOTS];
} verify_limits = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* Counts a try of key; 0 if it is within the limit, else the seconds until the window ends. */
static int64_t verify_try(const char *key)
{
	int64_t now = monotime_ms(), wait = 0;
	struct verify_slot *free_slot = NULL, *oldest = NULL, *slot = NULL;
	pthread_mutex_lock(&verify_limits.mu);
	for (size_t i = 0; i < VERIFY_SLOTS && !slot; i++) {
		struct verify_slot *s = &verify_limits.slots[i];
		int live = s->key[0] && now - s->start < VERIFY_WINDOW_MS;
		if (live && strcmp(s->key, key) == 0)
			slot = s;
		else if (!live && !free_slot)
			free_slot = s;
		else if (live && (!oldest || s->start < oldest->start))
			oldest = s;
	}
	if (!slot) {
		slot = free_slot ? free_slot : oldest;
		if (str_copy(slot->key, sizeof(slot->key), key))
			slot->key[0] = '\0';
		slot->start = now;
		slot->count = 0;
	}
	if (slot->count >= VERIFY_LIMIT) {
		wait = (slot->start + VERIFY_WINDOW_MS - now + 999) / 1000;
		wait = wait > 0 ? wait : 1;
	} else {
		slot->count++;
	}
	pthread_mutex_unlock(&verify_limits.mu);
	return wait;
}

enum coffer_err h_secrets_verify(struct http_request *req, void *ctx)
{
	struct api *api = ctx;
	struct api_auth *a = api_auth_of(req);
	const char *name = http_request_param(req, "name");
	struct store_secret_list head = { 0 };
	json_t *doc = NULL, *fwd = NULL;
	const struct store_manifest_item *m;
	const struct store_secret *e = NULL;
	const char *sealed = NULL;
	size_t sealed_len = 0;
	int64_t key_version = 0, wait;
	char key[VERIFY_KEY_SIZE], retry[24];
	struct buf stored;
	int match = 0;
	enum coffer_err rc;

	buf_init(&stored, VERIFY_BODY_SEALED_MAX);
	rc = name ? api_secret_name_check(req, name, 0) : COFFER_ERR_INTERNAL;
	if (rc)
		goto out;
	if (fmt_into(key, sizeof(key), "%s/%s", a->token_id, a->app.id)) {
		rc = COFFER_ERR_INTERNAL;
		goto out;
	}
	if ((wait = verify_try(key)) > 0) {
		if (fmt_into(retry, sizeof(retry), "%lld", (long long)wait) ||
		    http_reply_header(req, "Retry-After", retry))
			retry[0] = '\0';
		rc = api_fail(req, COFFER_ERR_RATE_LIMITED,
			      "too many tries of secrets verify for app '%s': at most %d a minute per token; try again "
			      "in %s s",
			      a->app.name, VERIFY_LIMIT, retry[0] ? retry : "60");
		goto out;
	}
	rc = api_body(req, verify_fields, &doc);
	if (rc)
		goto out;
	if (json_get_string(doc, "sealed", 1, &sealed, &sealed_len, NULL) || sealed_len == 0 ||
	    sealed_len >= VERIFY_BODY_SEALED_MAX || json_get_int(doc, "key_version", 1, 1, UINT32_MAX, &key_version, NULL)) {
		rc = api_fail(req, COFFER_ERR_INVALID,
			      "'sealed' must be the candidate sealed to the app's key, in base64url, with its "
			      "'key_version'");
		goto out;
	}
	rc = api_note(a, store_secrets_get(a->store, a->app.id, 0, &head));
	if (rc)
		goto out;
	if (!head.manifest_ok) {
		rc = manifest_refused(req, a, head.version);
		goto out;
	}
	/* the value the head's manifest names, and only that one */
	m = api_find_name(head.manifest, head.manifest_n, sizeof(*head.manifest), name);
	if (m)
		e = api_find_name(head.items, head.n, sizeof(*head.items), name);
	if (!m || !e || strcmp(e->value_id, m->value_id) != 0) {
		rc = api_fail(req, COFFER_ERR_NOT_FOUND, "app '%s' has no secret '%s'", a->app.name, name);
		goto out;
	}
	rc = b64url_encode(e->ciphertext, e->ciphertext_len, &stored);
	if (rc)
		goto out;
	fwd = json_pack("{s:s,s:s,s:s,s:s,s:s,s:{s:s%,s:I,s:s},s:{s:s%,s:I}}", "app_id", a->app.id, "app",
			a->app.name, "org_id", a->token.org_id, "name", name, "actor", a->token_id, "stored", "sealed", stored.ptr, stored.len, "key_version",
			(json_int_t)e->key_version, "value_id", e->value_id, "candidate", "sealed", sealed, sealed_len,
			"key_version", (json_int_t)key_version);
	if (!fwd) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	rc = keeper_client_verify(api, fwd, &match);
	if (rc == COFFER_ERR_INVALID || rc == COFFER_ERR_CRYPTO) {
		rc = api_fail(req, COFFER_ERR_INVALID,
			      "the candidate does not open for secret '%s' of app '%s': seal it to the app's key "
			      "(coffer secrets verify)",
			      name, a->app.name);
		goto out;
	}
	if (rc)
		goto out;
	api_audit_note(req, a->app.name,
		       json_pack("{s:s,s:s}", "name", name, "outcome", match ? "matches" : "does not match"));
	rc = api_reply(req, 200, json_pack("{s:b}", "match", match));
out:
	buf_release(&stored);
	json_decref(fwd);
	json_decref(doc);
	store_secret_list_release(&head);
	return rc;
}
