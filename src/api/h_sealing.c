/*
 * h_sealing.c — what a deployer's CLI needs to make a change it signs
 * (GET /v1/apps/:app/secrets/sealing), and the checks of the signatures
 * it sends with a secrets change, a deploy, a scale or a secrets deploy
 * (docs/CRYPTO.md "Deployers"; issue 12).
 *
 * The api never holds a deployer key: it checks that a signature verifies
 * under a key the keeper certified for this app's org (the certificate
 * verified with the keeper's public key, as app keys are), that the
 * signed text is the one it is about to store (else 409: the CLI reads
 * again and signs again), and stores the signature (store_signature_add)
 * before the version or release it vouches for. The keeper checks the same
 * signatures again at open, with the registry it authenticates itself: a
 * check here only refuses early, it is not what the secrets rely on.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "deployer.h"
#include "digest.h"
#include "encode.h"
#include "log.h"
#include "parse.h"
#include "vault.h"
#include "banned.h"

#define NOT_SIGNED "not signed by a deployer of this app"

static const char *const signed_fields[] = { "sha256", "signature", NULL };

/* base64url of len bytes as a JSON string (NULL if out of memory). */
static json_t *b64_json(const void *p, size_t len)
{
	struct buf b;
	json_t *v = NULL;
	buf_init_wiping(&b, 4096); /* it carries the app's digest subkey too */
	if (b64url_encode(p, len, &b) == COFFER_OK)
		v = json_stringn(b.ptr, b.len);
	buf_release(&b);
	return v;
}

/* COFFER_OK when the deployer row's certificate verifies with the keeper's key and it covers the app, live. */
static enum coffer_err deployer_ok(const struct api *api, const struct store_app *app, const struct store_deployer *d)
{
	struct deployer_cert c = { d->id, d->org_id, d->app_id, d->role, d->public_key };

	if (d->revoked_at || !deployer_covers(d->org_id, d->app_id, app->org_id, app->id) ||
	    deployer_cert_verify(api->keeper_pk, &c, d->cert) != COFFER_OK)
		return COFFER_ERR_FORBIDDEN;
	return COFFER_OK;
}

enum coffer_err api_signer(struct http_request *req, struct api_auth *a, const json_t *doc, struct api_signer *out)
{
	struct store_deployer d;
	const char *id = json_string_value(json_object_get(doc, "signer"));
	enum coffer_err rc;

	if (!id)
		return api_fail(req, COFFER_ERR_FORBIDDEN, NOT_SIGNED ": no \"signer\" (run 'coffer login')");
	memset(&d, 0, sizeof(d));
	/* only an id of the store's shape is named back (never what else the body holds) */
	rc = deployer_id_ok(id) ? api_note(a, store_deployer_get(a->store, id, &d)) : COFFER_ERR_NOT_FOUND;
	if (rc == COFFER_ERR_NOT_FOUND || rc == COFFER_ERR_INVALID)
		return api_fail(req, COFFER_ERR_FORBIDDEN, NOT_SIGNED ": no deployer '%s'", deployer_id_ok(id) ? id : "?");
	if (rc)
		return rc;
	if (deployer_ok(a->api, &a->app, &d)) {
		log_warn("deployer_refused", LF_S("app", a->app.name), LF_S("deployer", d.id),
			 LF_I("revoked_at", d.revoked_at));
		return api_fail(req, COFFER_ERR_FORBIDDEN, NOT_SIGNED ": deployer '%s' is revoked, not certified "
							   "by the keeper or not for this app", d.id);
	}
	rc = str_copy(out->id, sizeof(out->id), d.id);
	memcpy(out->pk, d.public_key, DEPLOYER_PK_LEN);
	return rc;
}

enum coffer_err api_signed(struct http_request *req, struct api_auth *a, const struct api_signer *signer,
			   const json_t *doc, const char *field, const char *text, size_t len, const char *what)
{
	json_t *o = json_object_get(doc, field);
	const char *hash = json_string_value(json_object_get(o, "sha256"));
	const char *sig = json_string_value(json_object_get(o, "signature"));
	char want[DEPLOYER_HASH_HEX_SIZE];

	if (!json_is_object(o) || json_check_fields(o, signed_fields, NULL) || !hash || !sig)
		return api_fail(req, COFFER_ERR_FORBIDDEN, NOT_SIGNED ": no \"%s\" signature {\"sha256\", \"signature\"}",
				field);
	deployer_hash_hex(text, len, want);
	if (strcmp(hash, want) != 0)
		return api_fail(req, COFFER_ERR_CONFLICT, "%s changed meanwhile: read again and sign again", what);
	if (deployer_verify(signer->pk, text, len, sig) != COFFER_OK)
		return api_fail(req, COFFER_ERR_FORBIDDEN, NOT_SIGNED ": the %s signature of deployer '%s' does not verify",
				field, signer->id);
	return api_note(a, store_signature_add(a->store, a->app.id, want, signer->id, sig));
}

enum coffer_err api_version_manifest(struct api_auth *a, uint64_t version, char **manifest)
{
	struct store_secret_version v;
	enum coffer_err rc;

	*manifest = NULL;
	if (version == 0)
		return COFFER_OK;
	memset(&v, 0, sizeof(v));
	rc = api_note(a, store_secrets_version_get(a->store, a->app.id, version, &v));
	if (!rc && (!v.manifest || !*v.manifest))
		rc = COFFER_ERR_CRYPTO; /* made before manifests: nothing a deployer could have signed */
	if (!rc) {
		*manifest = v.manifest;
		v.manifest = NULL;
	}
	store_secret_version_clear(&v);
	return rc;
}

enum coffer_err api_release_signed(struct http_request *req, struct api_auth *a, const struct api_signer *signer,
				   const json_t *doc, const char *config, uint64_t secrets_version, const char *manifest)
{
	char *stored = NULL, *text = NULL;
	size_t len = 0;
	enum coffer_err rc = manifest ? COFFER_OK : api_version_manifest(a, secrets_version, &stored);
	if (!manifest)
		manifest = stored;
	if (!rc)
		rc = deployer_release_text(a->app.id, config, strlen(config), secrets_version, manifest,
					   manifest ? strlen(manifest) : 0, &text, &len);
	if (rc) {
		log_error("release_statement_failed", LF_S("app", a->app.name), LF_I("secrets_version", secrets_version),
			  LF_S("error", coffer_err_name(rc)));
		rc = COFFER_ERR_INTERNAL;
	} else {
		rc = api_signed(req, a, signer, doc, "release", text, len, "the app's release");
	}
	free(text);
	free(stored);
	return rc;
}

/* [{signer, signature, org_id, app_id, role, public_key, cert}] of the signatures over text (NULL: none). */
static enum coffer_err signatures_json(struct api_auth *a, const char *text, json_t **out)
{
	struct store_signature_list l = { 0 };
	char hash[DEPLOYER_HASH_HEX_SIZE];
	json_t *list = json_array();
	enum coffer_err rc = list ? COFFER_OK : COFFER_ERR_NOMEM;

	if (!rc && text) {
		deployer_hash_hex(text, strlen(text), hash);
		rc = api_note(a, store_signature_list(a->store, a->app.id, hash, &l));
	}
	for (size_t i = 0; !rc && i < l.n; i++) {
		struct store_deployer d;
		memset(&d, 0, sizeof(d));
		if (api_note(a, store_deployer_get(a->store, l.items[i].signer, &d)))
			continue; /* the CLI judges what is there */
		json_t *item = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:o}", "signer", l.items[i].signer, "signature",
					 l.items[i].signature, "org_id", d.org_id, "app_id", d.app_id, "role", d.role,
					 "public_key", b64_json(d.public_key, DEPLOYER_PK_LEN), "cert",
					 b64_json(d.cert, DEPLOYER_SIG_LEN));
		if (!item || json_array_append_new(list, item))
			rc = COFFER_ERR_NOMEM;
	}
	store_signature_list_release(&l);
	if (rc)
		json_decref(list);
	else
		*out = list;
	return rc;
}

/* {"version", "manifest", "signatures"} of the app's secrets version v (0: none). */
static enum coffer_err version_json(struct api_auth *a, uint64_t v, json_t **out)
{
	char *manifest = NULL;
	json_t *sigs = NULL;
	enum coffer_err rc = api_version_manifest(a, v, &manifest);
	if (!rc)
		rc = signatures_json(a, manifest, &sigs);
	if (!rc) {
		*out = json_pack("{s:I,s:o,s:o}", "version", (json_int_t)v, "manifest",
				 manifest ? json_string(manifest) : json_null(), "signatures", sigs);
		if (!*out)
			rc = COFFER_ERR_NOMEM;
	}
	free(manifest);
	return rc;
}

/*
 * Release `version` (0: the current one): version, config, secrets
 * version, its manifest and the statement's signatures.
 */
static enum coffer_err release_json_of(struct api_auth *a, uint64_t version, json_t **out)
{
	struct store_release r = { 0 };
	json_t *sigs = NULL;
	char *manifest = NULL, *text = NULL;
	size_t len = 0;
	enum coffer_err rc;

	*out = json_null();
	if (!version)
		version = a->app.current_release;
	if (!version)
		return COFFER_OK;
	rc = api_note(a, store_release_get(a->store, a->app.id, version, &r));
	if (!rc)
		rc = api_version_manifest(a, r.secrets_version, &manifest);
	if (!rc)
		rc = deployer_release_text(a->app.id, r.config ? r.config : "", r.config ? strlen(r.config) : 0,
					   r.secrets_version, manifest, manifest ? strlen(manifest) : 0, &text, &len);
	if (!rc)
		rc = signatures_json(a, text, &sigs);
	if (!rc) {
		*out = json_pack("{s:I,s:s,s:I,s:o,s:o}", "version", (json_int_t)r.version, "config",
				 r.config ? r.config : "", "secrets_version", (json_int_t)r.secrets_version, "manifest",
				 manifest ? json_string(manifest) : json_null(), "signatures", sigs);
		if (!*out)
			rc = COFFER_ERR_NOMEM;
	}
	free(text);
	free(manifest);
	store_release_clear(&r);
	return rc;
}

enum coffer_err h_secrets_sealing(struct http_request *req, void *ctx)
{
	struct api *api = ctx;
	struct api_auth *a = api_auth_of(req);
	struct store_app_key key;
	struct secret *digest_key = NULL;
	json_t *head = NULL, *release = NULL, *dk = NULL;
	const char *q = http_request_query(req, "release");
	uint64_t max = 0, release_version = 0;
	enum coffer_err rc;

	/* ?release=N: that release instead of the current one (a rollback signs it again) */
	if (q && (parse_uint64(q, INT64_MAX, &release_version) || release_version == 0))
		return api_fail(req, COFFER_ERR_INVALID, "release must be a positive integer");
	rc = api_note(a, store_app_key_get(a->store, a->app.id, 0, &key));
	if (!rc && (key.public_key_len != HPKE_PK_LEN + VAULT_SIG_LEN || key.version == 0 || key.version > UINT32_MAX))
		rc = COFFER_ERR_TAMPERED;
	if (rc) {
		log_error("app_key_missing", LF_S("app", a->app.name), LF_S("error", coffer_err_name(rc)));
		return http_reply_error(req, COFFER_ERR_INTERNAL, "app key failed verification");
	}
	rc = digest_app_key(api->digest_key, a->app.id, &digest_key);
	if (!rc)
		rc = api_note(a, store_secrets_version_max(a->store, a->app.id, &max));
	if (!rc)
		rc = version_json(a, a->app.secrets_head, &head);
	if (!rc)
		rc = release_json_of(a, release_version, &release);
	if (rc == COFFER_ERR_NOT_FOUND && release_version) {
		rc = api_fail(req, rc, "app '%s' has no release v%llu", a->app.name, (unsigned long long)release_version);
		goto out;
	}
	if (rc == COFFER_ERR_CRYPTO)
		rc = http_reply_error(req, COFFER_ERR_INTERNAL, "secrets version failed verification");
	if (rc)
		goto out;
	dk = b64_json(secret_cbytes(digest_key), secret_len(digest_key));
	rc = api_reply(req, 200,
		       json_pack("{s:s,s:s,s:o,s:I,s:o,s:o,s:I,s:O,s:O}", "app_id", a->app.id, "org_id", a->app.org_id,
				 "org_signature",
				 key.org_sig_len ? b64_json(key.org_sig, key.org_sig_len) : json_null(), "key_version",
				 (json_int_t)key.version, "public_key", b64_json(key.public_key, key.public_key_len),
				 "digest_key", dk, "next_version", (json_int_t)(max + 1), "head", head, "release",
				 release));
out:
	json_decref(head);
	json_decref(release);
	secret_free(digest_key);
	return rc;
}
