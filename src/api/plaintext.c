/*
 * plaintext.c — the org policy that lets a plain HTTP client (curl) set a
 * value over TLS for scripting (issue 12; docs/API.md "Plaintext values").
 *
 * Off by default: the api takes only values the deployer's CLI sealed and
 * signed. An org allows plaintext values by enrolling the api itself as a
 * deployer of that org (the keeper operator makes a deployer token for
 * it, the api's operator runs `coffer api enrol-deployer` and starts the
 * api with --deployer-key FILE). For an app such a key covers, the api
 * does what the CLI does: it seals each value to the app's public key
 * (which it verifies with the keeper's key), computes its keyed digest,
 * and signs the manifest of the version and, when the change releases,
 * the release's statement with that key. The rest of the secrets path
 * then checks and stores the change as it does the CLI's: the signer is
 * the api's deployer id, which the audit names.
 *
 * This gives the api a deployer's power for that org (docs/THREATS.md),
 * and no more: revoking its key (`coffer deployers revoke`) ends it at
 * once, at the api (the signer's row) and at the keeper (every open of a
 * release the key signed). At start every key's registry rows are found
 * by public key; a row whose certificate does not verify with the
 * keeper's key, or that is revoked, is logged and not used.
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "deployer.h"
#include "digest.h"
#include "encode.h"
#include "log.h"
#include "vault.h"
#include "banned.h"

/* Set in a request's document by api_plaintext_seal (no client can send it: the body's fields are checked first). */
#define SEALED_HERE "plaintext_sealed_by_api"
#define B64_TEXT_MAX (((API_SECRET_VALUE_MAX + 2) / 3) * 4)
#define SEALED_MAX (API_SECRET_VALUE_MAX + VAULT_SEAL_OVERHEAD)

struct plaintext_row {
	struct secret *sk;       /* borrowed from keys[] */
	struct store_deployer d; /* certificate verified, live at start */
};

struct api_plaintext {
	struct secret *keys[API_DEPLOYER_KEYS_MAX];
	size_t n_keys;
	struct plaintext_row *rows;
	size_t n_rows;
};

void api_plaintext_free(struct api_plaintext *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_keys; i++)
		secret_free(p->keys[i]);
	free(p->rows);
	free(p);
}

/* what failed, for the operator (cut when long) */
static void why_into(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void why_into(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;
	if (!why || !size)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(why, size, fmt, ap);
	va_end(ap);
}

/* The rows of one key: those certified by the keeper and live are kept, the others logged. */
static enum coffer_err load_rows(struct api_plaintext *p, struct store *s, const unsigned char keeper_pk[],
				 const char *path, struct secret *sk, const unsigned char pk[DEPLOYER_PK_LEN])
{
	struct store_deployer_list l = { 0 };
	size_t kept = 0;
	enum coffer_err rc = store_deployer_list_by_key(s, pk, &l);

	if (rc)
		return rc;
	for (size_t i = 0; i < l.n; i++) {
		const struct store_deployer *d = &l.items[i];
		struct deployer_cert c = { d->id, d->org_id, d->app_id, d->role, d->public_key };
		struct plaintext_row *rows;

		if (deployer_cert_verify(keeper_pk, &c, d->cert) != COFFER_OK) {
			log_error("deployer_key_rejected", LF_S("message", "certificate does not verify with the keeper's key"),
				  LF_S("file", path), LF_S("deployer", d->id));
			continue;
		}
		if (d->revoked_at) {
			log_warn("deployer_key_revoked", LF_S("file", path), LF_S("deployer", d->id),
				 LF_I("revoked_at", d->revoked_at));
			continue;
		}
		rows = realloc(p->rows, (p->n_rows + 1) * sizeof(*rows));
		if (!rows) {
			rc = COFFER_ERR_NOMEM;
			break;
		}
		p->rows = rows;
		p->rows[p->n_rows].sk = sk;
		p->rows[p->n_rows++].d = *d;
		kept++;
		log_info("plaintext_values_allowed", LF_S("deployer", d->id), LF_S("org_id", d->org_id),
			 LF_S("app_id", d->app_id), LF_S("role", d->role));
	}
	if (!rc && !kept)
		log_warn("deployer_key_unused", LF_S("file", path),
			 LF_S("message", l.n ? "no live enrolment of this key" : "this key is not enrolled"));
	store_deployer_list_release(&l);
	return rc;
}

enum coffer_err api_plaintext_load(struct store_pool *pool, const unsigned char *keeper_pk, const char *const *files,
				   size_t n, struct api_plaintext **out, char *why, size_t why_size)
{
	struct api_plaintext *p;
	struct store *s = NULL;
	enum coffer_err rc = COFFER_OK;

	*out = NULL;
	if (n == 0)
		return COFFER_OK;
	if (n > API_DEPLOYER_KEYS_MAX) {
		why_into(why, why_size, "at most %d --deployer-key", API_DEPLOYER_KEYS_MAX);
		return COFFER_ERR_USAGE;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return COFFER_ERR_NOMEM;
	rc = store_pool_acquire(pool, &s);
	for (size_t i = 0; !rc && i < n; i++) {
		unsigned char pk[DEPLOYER_PK_LEN];
		rc = deployer_key_load(files[i], &p->keys[i], pk);
		if (rc) {
			why_into(why, why_size, "cannot read the deployer key '%s': %s%s", files[i], coffer_strerror(rc),
				       rc == COFFER_ERR_FORBIDDEN ? " (it must be 0600)" : "");
			break;
		}
		p->n_keys = i + 1;
		rc = load_rows(p, s, keeper_pk, files[i], p->keys[i], pk);
		if (rc)
			why_into(why, why_size, "cannot read the deployers of '%s' from the store: %s", files[i],
				       coffer_strerror(rc));
	}
	if (s)
		store_pool_release(pool, s, rc);
	if (rc) {
		api_plaintext_free(p);
		return rc;
	}
	*out = p;
	return COFFER_OK;
}

/* The api's enrolment covering app (NULL: its org does not allow plaintext values). */
static const struct plaintext_row *covering(const struct api_plaintext *p, const struct store_app *app)
{
	for (size_t i = 0; p && i < p->n_rows; i++)
		if (deployer_covers(p->rows[i].d.org_id, p->rows[i].d.app_id, app->org_id, app->id))
			return &p->rows[i];
	return NULL;
}

static int is_plaintext(const json_t *v)
{
	return json_is_string(v) || (json_is_object(v) && json_object_get(v, "base64"));
}

/*
 * The bytes of a plaintext value (a string, or {"base64": standard base64})
 * in secure memory, checked: no NUL, at most API_SECRET_VALUE_MAX. Answers
 * the error, naming the secret only.
 */
static enum coffer_err value_of(struct http_request *req, const char *name, const json_t *v, struct secret **out)
{
	const json_t *b = json_object_get(v, "base64");
	size_t n = json_is_string(v) ? json_string_length(v) : json_string_length(b), got = 0;
	struct secret *s = NULL;
	enum coffer_err rc;

	if (json_is_object(v) && (json_object_size(v) != 1 || !json_is_string(b)))
		return api_fail(req, COFFER_ERR_INVALID, "value of '%s' must be a string, null or {\"base64\": \"...\"}",
				name);
	if (n > (json_is_string(v) ? API_SECRET_VALUE_MAX : B64_TEXT_MAX))
		return api_fail(req, COFFER_ERR_TOO_LARGE, "value of '%s' is larger than %zu bytes", name,
				API_SECRET_VALUE_MAX);
	if (json_is_string(v)) {
		rc = secret_from(json_string_value(v), n, &s);
	} else {
		rc = secret_new(n / 4 * 3 + 3, &s);
		if (!rc && b64_decode_into(B64_STD, json_string_value(b), n, secret_bytes(s), secret_len(s), &got)) {
			secret_free(s);
			return api_fail(req, COFFER_ERR_INVALID, "value of '%s' is not valid base64", name);
		}
		if (!rc)
			rc = secret_truncate(s, got);
	}
	if (!rc && secret_len(s) > API_SECRET_VALUE_MAX)
		rc = api_fail(req, COFFER_ERR_TOO_LARGE, "value of '%s' is larger than %zu bytes", name,
			      API_SECRET_VALUE_MAX);
	if (!rc && secret_has_nul(s))
		rc = api_fail(req, COFFER_ERR_INVALID, "value of '%s' contains a NUL byte", name);
	if (rc) {
		secret_free(s);
		return rc;
	}
	*out = s;
	return COFFER_OK;
}

/* {"sealed", "digest", "value_id"} of value, as the CLI makes it (cmd_secrets.c). */
static enum coffer_err seal_one(const unsigned char pk[HPKE_PK_LEN], const struct secret *digest_key,
				const char *app_id, const char *name, uint32_t key_version, const struct secret *value,
				json_t **out)
{
	char value_id[STORE_ID_SIZE], digest[DIGEST_HEX_LEN + 1];
	struct buf sealed, b64;
	enum coffer_err rc;

	buf_init(&sealed, SEALED_MAX);
	buf_init(&b64, B64URL_LEN(SEALED_MAX) + 1);
	store_new_id(value_id);
	rc = vault_seal_value(pk, app_id, name, key_version, value_id, value, &sealed);
	if (!rc)
		rc = digest_value(digest_key, value, digest);
	if (!rc)
		rc = b64url_encode(sealed.ptr, sealed.len, &b64);
	if (!rc) {
		*out = json_pack("{s:s%,s:s,s:s}", "sealed", b64.ptr, b64.len, "digest", digest, "value_id", value_id);
		if (!*out)
			rc = COFFER_ERR_NOMEM;
	}
	buf_release(&b64);
	buf_release(&sealed);
	return rc;
}

enum coffer_err api_plaintext_seal(struct http_request *req, struct api_auth *a, json_t *doc)
{
	static const char *const signed_by_cli[] = { "signer", "manifest", "release", "key_version" };
	json_t *secrets = json_object_get(doc, "secrets"), *v;
	const struct plaintext_row *row;
	struct secret *digest_key = NULL;
	unsigned char pk[HPKE_PK_LEN];
	uint32_t key_version = 0;
	size_t plain = 0, sealed = 0, i;
	const char *name;
	enum coffer_err rc;

	json_object_foreach(secrets, name, v) {
		if (is_plaintext(v))
			plain++;
		else if (!json_is_null(v))
			sealed++;
	}
	row = plain ? covering(a->api->plaintext, &a->app) : NULL;
	if (!row)
		return COFFER_OK; /* the handler refuses each plaintext value, or there is none */
	for (i = 0; i < sizeof(signed_by_cli) / sizeof(signed_by_cli[0]); i++)
		sealed += json_object_get(doc, signed_by_cli[i]) != NULL;
	if (sealed)
		return api_fail(req, COFFER_ERR_INVALID,
				"a change with plaintext values holds no sealed value, signer, signature nor key_version: "
				"the api seals and signs it");
	rc = api_app_public_key(a, pk, &key_version);
	if (rc)
		return http_reply_error(req, rc, "app key failed verification");
	rc = digest_app_key(a->api->digest_key, a->app.id, &digest_key);
	json_object_foreach(secrets, name, v) {
		struct secret *value = NULL;
		json_t *item = NULL;
		enum coffer_err seal_rc;

		if (rc)
			break;
		if (!is_plaintext(v))
			continue;
		rc = value_of(req, name, v, &value);
		if (rc)
			break;
		seal_rc = seal_one(pk, digest_key, a->app.id, name, key_version, value, &item);
		secret_free(value);
		if (seal_rc == COFFER_ERR_INVALID)
			continue; /* a name vault cannot bind: the handler's name check refuses it */
		rc = seal_rc;
		if (!rc && json_object_set_new(secrets, name, item)) /* replaces v in place; the old one is wiped */
			rc = COFFER_ERR_NOMEM;
	}
	secret_free(digest_key);
	sodium_memzero(pk, sizeof(pk));
	if (rc)
		return rc;
	if (json_object_set_new(doc, "signer", json_string(row->d.id)) ||
	    json_object_set_new(doc, "key_version", json_integer(key_version)) ||
	    json_object_set_new(doc, SEALED_HERE, json_integer((json_int_t)(row - a->api->plaintext->rows))))
		return COFFER_ERR_NOMEM;
	log_info("secrets_plaintext_sealed", LF_S("app", a->app.name), LF_S("deployer", row->d.id),
		 LF_I("values", plain));
	return COFFER_OK;
}

/* doc[field] = {"sha256", "signature"}: the api's deployer key over text, as the CLI's sign_text makes it. */
static enum coffer_err sign_into(const struct secret *sk, const char *text, size_t len, json_t *doc, const char *field)
{
	char hash[DEPLOYER_HASH_HEX_SIZE], sig[DEPLOYER_SIG_B64_SIZE];
	enum coffer_err rc = deployer_sign(sk, text, len, sig);
	if (rc)
		return rc;
	deployer_hash_hex(text, len, hash);
	return json_object_set_new(doc, field, json_pack("{s:s,s:s}", "sha256", hash, "signature", sig)) ? COFFER_ERR_NOMEM
													  : COFFER_OK;
}

enum coffer_err api_plaintext_sign(struct api_auth *a, json_t *doc, const char *manifest, size_t manifest_len,
				   const char *config, uint64_t version)
{
	const json_t *mark = json_object_get(doc, SEALED_HERE);
	const struct api_plaintext *p = a->api->plaintext;
	char *text = NULL;
	size_t len = 0;
	enum coffer_err rc;

	if (!mark)
		return COFFER_OK;
	if (!p || json_integer_value(mark) < 0 || (size_t)json_integer_value(mark) >= p->n_rows)
		return COFFER_ERR_INTERNAL;
	const struct secret *sk = p->rows[json_integer_value(mark)].sk;
	rc = sign_into(sk, manifest, manifest_len, doc, "manifest");
	if (!rc && config)
		rc = deployer_release_text(a->app.id, config, strlen(config), version, manifest, manifest_len, &text, &len);
	if (!rc && config)
		rc = sign_into(sk, text, len, doc, "release");
	free(text);
	if (rc) {
		log_error("secrets_plaintext_sign_failed", LF_S("app", a->app.name), LF_S("error", coffer_err_name(rc)));
		rc = COFFER_ERR_INTERNAL;
	}
	return rc;
}
