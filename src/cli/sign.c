/*
 * sign.c — sealing and signing in the CLI (sign.h).
 */
#include "sign.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "deployer.h"
#include "digest.h"
#include "encode.h"
#include "vault.h"
#include "banned.h"

#define NO_TRUST "the api's answer cannot be trusted"

static enum coffer_err b64_field(const json_t *o, const char *key, void *out, size_t len)
{
	const char *s = json_string_value(json_object_get(o, key));
	size_t n = 0;
	if (!s || b64_decode_into(B64_URL, s, strlen(s), out, len, &n) || n != len)
		return COFFER_ERR_PROTOCOL;
	return COFFER_OK;
}

static uint64_t uint_field(const json_t *o, const char *key, int *bad)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		*bad = 1;
		return 0;
	}
	return (uint64_t)json_integer_value(v);
}

/* A text field that may be null (NULL then). */
static const char *text_or_null(const json_t *o, const char *key, int *bad)
{
	const json_t *v = json_object_get(o, key);
	if (json_is_null(v))
		return NULL;
	if (!json_is_string(v))
		*bad = 1;
	return json_string_value(v);
}

static void state_release(struct sign_state *st)
{
	json_decref(st->doc);
	secret_free(st->digest_key);
	st->doc = NULL;
	st->digest_key = NULL;
}

/*
 * GET .../secrets/sealing into st, the app key and the app's org checked
 * with the pinned keeper key, and the app one this CLI's certificate
 * covers: the api names the app and its org, so nothing is sealed or
 * signed for another org's app (nor for one the api moved to this org).
 */
static enum coffer_err state_read(struct client *c, uint64_t release, struct sign_state *st)
{
	char path[CLIENT_PATH_MAX], suffix[64];
	unsigned char key[HPKE_PK_LEN + VAULT_SIG_LEN], org_sig[DEPLOYER_SIG_LEN];
	const json_t *head, *rel;
	uint64_t kv;
	int bad = 0;
	enum coffer_err rc = COFFER_OK;

	if (fmt_into(suffix, sizeof(suffix), "/secrets/sealing%s%llu", release ? "?release=" : "",
		     (unsigned long long)release) ||
	    (!release && str_copy(suffix, sizeof(suffix), "/secrets/sealing")))
		rc = client_error(COFFER_ERR_INTERNAL, "path too long");
	if (!rc)
		rc = client_path(path, sizeof(path), "/v1/apps/", c->app, suffix);

	if (!rc)
		rc = client_call(c, "GET", path, NULL, &st->doc);
	if (rc)
		return rc;
	head = json_object_get(st->doc, "head");
	rel = json_object_get(st->doc, "release");
	st->app_id = json_string_value(json_object_get(st->doc, "app_id"));
	st->org_id = json_string_value(json_object_get(st->doc, "org_id"));
	kv = uint_field(st->doc, "key_version", &bad);
	st->next_version = uint_field(st->doc, "next_version", &bad);
	st->head_version = uint_field(head, "version", &bad);
	st->head_manifest = text_or_null(head, "manifest", &bad);
	st->head_signatures = json_object_get(head, "signatures");
	st->has_release = json_is_object(rel);
	if (st->has_release) {
		st->release_version = uint_field(rel, "version", &bad);
		st->config = json_string_value(json_object_get(rel, "config"));
		st->release_secrets = uint_field(rel, "secrets_version", &bad);
		st->release_manifest = text_or_null(rel, "manifest", &bad);
		st->release_signatures = json_object_get(rel, "signatures");
		bad = bad || !st->config || !json_is_array(st->release_signatures);
	}
	bad = bad || (release && (!st->has_release || st->release_version != release));
	if (bad || !st->app_id || !st->org_id || kv == 0 || kv > UINT32_MAX || st->next_version == 0 ||
	    !json_is_array(st->head_signatures) || (st->head_version == 0) != (st->head_manifest == NULL))
		return client_bad_answer("the sealing state of the app");
	st->key_version = (uint32_t)kv;
	if (b64_field(st->doc, "public_key", key, sizeof(key)))
		return client_bad_answer("\"public_key\" (the app key and the keeper's signature)");
	if (vault_app_key_verify(st->deployer.keeper_pk, st->app_id, st->key_version, key, key + HPKE_PK_LEN))
		return client_error(COFFER_ERR_CRYPTO,
				    "the app's public key is not signed by the keeper you logged in with: " NO_TRUST
				    ", nothing was sent");
	memcpy(st->pk, key, HPKE_PK_LEN);
	if (b64_field(st->doc, "org_signature", org_sig, sizeof(org_sig)) ||
	    deployer_app_org_verify(st->deployer.keeper_pk, st->app_id, st->org_id, org_sig) != COFFER_OK)
		return client_error(COFFER_ERR_CRYPTO,
				    "the app's org is not the one the keeper you logged in with bound it to: " NO_TRUST
				    ", nothing was sent");
	if (!deployer_covers(st->deployer.org_id, st->deployer.app_id, st->org_id, st->app_id))
		return client_error(COFFER_ERR_FORBIDDEN,
				    "your deployer key (org %s, app %s) does not cover app %s of org %s: nothing was sent",
				    st->deployer.org_id, st->deployer.app_id, st->app_id, st->org_id);
	rc = secret_new(DIGEST_KEY_LEN, &st->digest_key);
	if (!rc && b64_field(st->doc, "digest_key", secret_bytes(st->digest_key), DIGEST_KEY_LEN))
		rc = client_bad_answer("\"digest_key\"");
	return rc;
}

/*
 * 1 if one of sigs is a signature over text by a deployer the keeper
 * certified for the app: of the same org as the app, which state_read
 * verified against the keeper's binding (and as this CLI's own key).
 */
static int signed_by_deployer(const struct sign_state *st, const json_t *sigs, const char *text, size_t len)
{
	size_t i;
	const json_t *s;

	json_array_foreach(sigs, i, s) {
		unsigned char pk[DEPLOYER_PK_LEN], cert[DEPLOYER_SIG_LEN];
		struct deployer_cert dc = { json_string_value(json_object_get(s, "signer")),
					     json_string_value(json_object_get(s, "org_id")),
					     json_string_value(json_object_get(s, "app_id")),
					     json_string_value(json_object_get(s, "role")), pk };
		const char *sig = json_string_value(json_object_get(s, "signature"));

		if (dc.id && dc.org_id && dc.app_id && sig && !b64_field(s, "public_key", pk, sizeof(pk)) &&
		    !b64_field(s, "cert", cert, sizeof(cert)) &&
		    deployer_covers(dc.org_id, dc.app_id, st->org_id, st->app_id) &&
		    deployer_cert_verify(st->deployer.keeper_pk, &dc, cert) == COFFER_OK &&
		    deployer_verify(pk, text, len, sig) == COFFER_OK)
			return 1;
	}
	return 0;
}

enum coffer_err sign_check_head(const struct sign_state *st)
{
	if (st->head_version == 0 ||
	    signed_by_deployer(st, st->head_signatures, st->head_manifest, strlen(st->head_manifest)))
		return COFFER_OK;
	return client_error(COFFER_ERR_CRYPTO,
			    "secrets version %llu is not signed by a deployer of this app: refusing to sign it "
			    "(set the secrets again, or check 'coffer audit')",
			    (unsigned long long)st->head_version);
}

enum coffer_err sign_check_release(const struct sign_state *st)
{
	char *text = NULL;
	size_t len = 0;
	int ok = 0;

	if (!st->has_release)
		return COFFER_OK;
	if (deployer_release_text(st->app_id, st->config, strlen(st->config), st->release_secrets,
				  st->release_manifest, st->release_manifest ? strlen(st->release_manifest) : 0, &text,
				  &len) == COFFER_OK)
		ok = signed_by_deployer(st, st->release_signatures, text, len);
	free(text);
	if (ok)
		return COFFER_OK;
	return client_error(COFFER_ERR_CRYPTO,
			    "release v%llu is not signed by a deployer of this app: refusing to sign its config "
			    "(deploy with 'coffer deploy', or check 'coffer audit')",
			    (unsigned long long)st->release_version);
}

enum coffer_err sign_text(const struct sign_state *st, const char *text, size_t len, json_t *body,
			  const char *field)
{
	char hash[DEPLOYER_HASH_HEX_SIZE], sig[DEPLOYER_SIG_B64_SIZE];
	enum coffer_err rc = deployer_sign(st->deployer.sk, text, len, sig);

	if (rc)
		return client_error(rc, "cannot sign with the deployer key: %s", coffer_strerror(rc));
	deployer_hash_hex(text, len, hash);
	if (json_object_set_new(body, "signer", json_string(st->deployer.id)) ||
	    json_object_set_new(body, field, json_pack("{s:s,s:s}", "sha256", hash, "signature", sig)))
		return client_error(COFFER_ERR_NOMEM, "out of memory");
	return COFFER_OK;
}

enum coffer_err sign_release(const struct sign_state *st, const char *config, uint64_t version,
			     const char *manifest, json_t *body)
{
	char *text = NULL;
	size_t len = 0;
	enum coffer_err rc = deployer_release_text(st->app_id, config, strlen(config), version, manifest,
						   manifest ? strlen(manifest) : 0, &text, &len);
	if (rc)
		return client_error(rc, "cannot make the release statement: %s", coffer_strerror(rc));
	rc = sign_text(st, text, len, body, "release");
	free(text);
	return rc;
}

enum coffer_err sign_run(struct client *c, sign_fill_fn fill, void *arg, json_t **ans)
{
	return sign_run_release(c, 0, fill, arg, ans);
}

enum coffer_err sign_run_release(struct client *c, uint64_t release, sign_fill_fn fill, void *arg, json_t **ans)
{
	struct sign_state st;
	char path[CLIENT_PATH_MAX];
	enum coffer_err rc;

	memset(&st, 0, sizeof(st));
	rc = cli_deployer_load(&st.deployer);
	if (rc)
		return rc;
	c->retry_changed = 1;
	for (int attempt = 1; attempt <= SIGN_TRIES; attempt++) {
		json_t *body = NULL;
		const char *suffix = NULL;
		c->changed = 0;
		if (attempt == SIGN_TRIES)
			c->retry_changed = 0; /* the last try reports what the api says */
		rc = state_read(c, release, &st);
		if (!rc)
			rc = fill(c, &st, arg, &body, &suffix);
		if (!rc)
			rc = client_path(path, sizeof(path), "/v1/apps/", c->app, suffix);
		if (!rc)
			rc = client_call(c, "POST", path, body, ans);
		json_decref(body);
		state_release(&st);
		if (!rc || !c->changed)
			break;
	}
	c->retry_changed = 0;
	cli_deployer_release(&st.deployer);
	return rc;
}
