/*
 * deployer.c — deployer key files, the texts a deployer or the keeper
 * signs, and their signatures (the formats are in deployer.h).
 */
#include "deployer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "buf.h"
#include "encode.h"
#include "fs.h"
#include "banned.h"

#define SEED_LEN crypto_sign_ed25519_SEEDBYTES
#define KEY_FILE_SIZE (HEX_LEN(SEED_LEN) + 1) /* hex and "\n" */
#define CERT_TEXT_MAX 512
#define DEPLOYER_ENROL_TOKEN_MAX 1024 /* longest token or name in an enrolment proof */
/* The statement's lines besides its ids: context, labels, two hashes, a u64. */
#define RELEASE_TEXT_MAX (128 + DEPLOYER_ID_MAX + 2 * DEPLOYER_HASH_HEX_SIZE + 20)
#define APP_ORG_TEXT_MAX (64 + 2 * DEPLOYER_ID_MAX) /* context, labels, two ids */

_Static_assert(DEPLOYER_PK_LEN == crypto_sign_ed25519_PUBLICKEYBYTES, "an Ed25519 public key");
_Static_assert(DEPLOYER_SK_LEN == crypto_sign_ed25519_SECRETKEYBYTES, "an Ed25519 secret key");
_Static_assert(DEPLOYER_SIG_LEN == crypto_sign_ed25519_BYTES, "an Ed25519 signature");
_Static_assert(DEPLOYER_SIG_B64_LEN == B64URL_LEN(DEPLOYER_SIG_LEN), "signature length");
_Static_assert(DEPLOYER_PK_B64_LEN == B64URL_LEN(DEPLOYER_PK_LEN), "public key length");
_Static_assert(DEPLOYER_HASH_HEX_SIZE == HEX_LEN(crypto_hash_sha256_BYTES) + 1, "hex SHA-256");

/*
 * Ed25519 verifications that passed, remembered process-wide (a bounded
 * ring): whether sig is pk's signature over a text never changes, so a
 * triple found valid once is valid again. The keeper checks the same
 * release statement, manifest and deployer certificate at every open of an
 * app's machines; this keeps each repeat to two hashes and a lookup
 * instead of a verification (about 70 us, 5 % of an open each). Keyed by
 * SHA-256(pk || sig || SHA-256(text)); a failed verification is not kept.
 */
#define VERIFIED_MAX 512
static struct {
	pthread_mutex_t mu;
	unsigned char keys[VERIFIED_MAX][crypto_hash_sha256_BYTES];
	size_t n, next;
} verified = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* 0 when sig is pk's Ed25519 signature over text, as crypto_sign_ed25519_verify_detached. */
static int ed25519_verify(const unsigned char sig[DEPLOYER_SIG_LEN], const void *text, size_t len,
			  const unsigned char pk[DEPLOYER_PK_LEN])
{
	unsigned char key[crypto_hash_sha256_BYTES], h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;
	int found = 0;

	crypto_hash_sha256(h, text, len);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, pk, DEPLOYER_PK_LEN);
	crypto_hash_sha256_update(&st, sig, DEPLOYER_SIG_LEN);
	crypto_hash_sha256_update(&st, h, sizeof(h));
	crypto_hash_sha256_final(&st, key);
	pthread_mutex_lock(&verified.mu);
	for (size_t i = 0; i < verified.n && !found; i++)
		found = memcmp(verified.keys[i], key, sizeof(key)) == 0;
	pthread_mutex_unlock(&verified.mu);
	if (found)
		return 0;
	if (crypto_sign_ed25519_verify_detached(sig, text, len, pk) != 0)
		return -1;
	pthread_mutex_lock(&verified.mu);
	memcpy(verified.keys[verified.next], key, sizeof(key));
	verified.next = (verified.next + 1) % VERIFIED_MAX;
	if (verified.n < VERIFIED_MAX)
		verified.n++;
	pthread_mutex_unlock(&verified.mu);
	return 0;
}

int deployer_id_ok(const char *id)
{
	size_t n = 0;
	if (!id)
		return 0;
	for (; id[n]; n++)
		if (n >= DEPLOYER_ID_MAX ||
		    !((id[n] >= 'a' && id[n] <= 'z') || (id[n] >= '0' && id[n] <= '9') || id[n] == '_'))
			return 0;
	return n > 0;
}

/* ---- the key file ---- */

enum coffer_err deployer_key_create(const char *path, unsigned char pk[DEPLOYER_PK_LEN])
{
	unsigned char seed[SEED_LEN], sk[DEPLOYER_SK_LEN], p[DEPLOYER_PK_LEN];
	char text[KEY_FILE_SIZE + 1];
	enum coffer_err rc;

	if (!path || !*path)
		return COFFER_ERR_INVALID;
	randombytes_buf(seed, sizeof(seed));
	crypto_sign_ed25519_seed_keypair(p, sk, seed);
	rc = hex_encode(seed, sizeof(seed), text, sizeof(text));
	if (!rc) {
		text[HEX_LEN(SEED_LEN)] = '\n';
		rc = fs_write_atomic(path, text, KEY_FILE_SIZE, 0600, 1);
	}
	if (!rc)
		memcpy(pk, p, DEPLOYER_PK_LEN);
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(text, sizeof(text));
	return rc;
}

enum coffer_err deployer_key_load(const char *path, struct secret **sk, unsigned char pk[DEPLOYER_PK_LEN])
{
	struct secret *seed = NULL, *k = NULL;
	unsigned char p[DEPLOYER_PK_LEN];
	enum coffer_err rc = fs_read_hex_key(path, SEED_LEN, &seed);
	if (!rc)
		rc = secret_new(DEPLOYER_SK_LEN, &k);
	if (!rc && crypto_sign_ed25519_seed_keypair(p, secret_bytes(k), secret_cbytes(seed)) != 0)
		rc = COFFER_ERR_CRYPTO;
	secret_free(seed);
	if (rc) {
		secret_free(k);
		return rc;
	}
	memcpy(pk, p, DEPLOYER_PK_LEN);
	*sk = k;
	return COFFER_OK;
}

/* ---- texts ---- */

void deployer_hash_hex(const void *data, size_t len, char out[DEPLOYER_HASH_HEX_SIZE])
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(digest, data ? data : (const void *)"", len);
	sodium_bin2hex(out, DEPLOYER_HASH_HEX_SIZE, digest, sizeof(digest));
}

/* Hands b's text to the caller: *text owns it, *len is its length. */
static enum coffer_err take(struct buf *b, char **text, size_t *len)
{
	size_t n = 0;
	char *t = buf_detach(b, &n);
	if (!t)
		return COFFER_ERR_NOMEM;
	*text = t;
	*len = n;
	return COFFER_OK;
}

enum coffer_err deployer_release_text(const char *app_id, const char *config, size_t config_len,
				      uint64_t secrets_version, const char *manifest, size_t manifest_len,
				      char **text, size_t *len)
{
	char config_hash[DEPLOYER_HASH_HEX_SIZE], manifest_hash[DEPLOYER_HASH_HEX_SIZE];
	struct buf b;
	enum coffer_err rc;

	if (!deployer_id_ok(app_id) || (!config && config_len) || !text || !len ||
	    (secrets_version == 0) != (manifest == NULL))
		return COFFER_ERR_INVALID;
	deployer_hash_hex(config, config_len, config_hash);
	if (manifest)
		deployer_hash_hex(manifest, manifest_len, manifest_hash);
	else
		memcpy(manifest_hash, "-", 2);
	buf_init(&b, RELEASE_TEXT_MAX);
	rc = buf_addf(&b, "coffer release v1\napp %s\nconfig %s\nsecrets %" PRIu64 "\nmanifest %s\n", app_id,
		      config_hash, secrets_version, manifest_hash);
	if (!rc)
		rc = take(&b, text, len);
	buf_release(&b);
	return rc;
}

static int role_ok(const char *role)
{
	return role && (!strcmp(role, DEPLOYER_ROLE_ADMIN) || !strcmp(role, DEPLOYER_ROLE_DEPLOY));
}

enum coffer_err deployer_cert_text(const struct deployer_cert *c, char **text, size_t *len)
{
	char pk[DEPLOYER_PK_B64_SIZE];
	struct buf b;
	enum coffer_err rc;

	if (!c || !deployer_id_ok(c->id) || !deployer_id_ok(c->org_id) || !c->app_id ||
	    (strcmp(c->app_id, DEPLOYER_ALL_APPS) && !deployer_id_ok(c->app_id)) || !role_ok(c->role) || !c->pk || !text ||
	    !len)
		return COFFER_ERR_INVALID;
	sodium_bin2base64(pk, sizeof(pk), c->pk, DEPLOYER_PK_LEN, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	buf_init(&b, CERT_TEXT_MAX);
	rc = buf_addf(&b, "coffer deployer v1\nid %s\norg %s\napp %s\nrole %s\nkey %s\n", c->id, c->org_id,
		      c->app_id, c->role, pk);
	if (!rc)
		rc = take(&b, text, len);
	buf_release(&b);
	return rc;
}

enum coffer_err deployer_enrol_text(const char *token, size_t token_len, const char *name,
				    const unsigned char pk[DEPLOYER_PK_LEN], struct secret **text)
{
	char pk_b64[DEPLOYER_PK_B64_SIZE];
	struct secret *t = NULL;
	size_t ctx_len = strlen(DEPLOYER_ENROL_CONTEXT), name_len = name ? strlen(name) : 0;
	enum coffer_err rc;

	if (!token || !token_len || memchr(token, '\n', token_len) || memchr(token, '\0', token_len) || !name_len ||
	    strchr(name, '\n') || !pk || !text)
		return COFFER_ERR_INVALID;
	if (token_len > DEPLOYER_ENROL_TOKEN_MAX || name_len > DEPLOYER_ENROL_TOKEN_MAX)
		return COFFER_ERR_TOO_LARGE;
	sodium_bin2base64(pk_b64, sizeof(pk_b64), pk, DEPLOYER_PK_LEN, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	rc = secret_new(ctx_len + token_len + 1 + name_len + 1 + DEPLOYER_PK_B64_LEN + 1, &t);
	if (rc)
		return rc;
	unsigned char *p = secret_bytes(t);
	memcpy(p, DEPLOYER_ENROL_CONTEXT, ctx_len);
	p += ctx_len;
	memcpy(p, token, token_len);
	p += token_len;
	*p++ = '\n';
	memcpy(p, name, name_len);
	p += name_len;
	*p++ = '\n';
	memcpy(p, pk_b64, DEPLOYER_PK_B64_LEN);
	p += DEPLOYER_PK_B64_LEN;
	*p = '\n';
	*text = t;
	return COFFER_OK;
}

/* The keeper's signature over text (its 64-byte key), and its check (COFFER_ERR_CRYPTO when it fails). */
static enum coffer_err keeper_sign(const struct secret *keeper_sk, const char *text, size_t len,
				   unsigned char sig[DEPLOYER_SIG_LEN])
{
	if (!keeper_sk || secret_len(keeper_sk) != DEPLOYER_SK_LEN)
		return COFFER_ERR_INVALID;
	if (crypto_sign_ed25519_detached(sig, NULL, (const unsigned char *)text, len, secret_cbytes(keeper_sk)) != 0)
		return COFFER_ERR_CRYPTO;
	return COFFER_OK;
}

static enum coffer_err keeper_verify(const unsigned char keeper_pk[DEPLOYER_PK_LEN], const char *text, size_t len,
				     const unsigned char sig[DEPLOYER_SIG_LEN])
{
	if (!keeper_pk || !sig || ed25519_verify(sig, text, len, keeper_pk) != 0)
		return COFFER_ERR_CRYPTO;
	return COFFER_OK;
}

enum coffer_err deployer_cert_sign(const struct secret *keeper_sk, const struct deployer_cert *c,
				   unsigned char cert[DEPLOYER_SIG_LEN])
{
	char *t = NULL;
	size_t n = 0;
	enum coffer_err rc = deployer_cert_text(c, &t, &n);

	if (!rc)
		rc = keeper_sign(keeper_sk, t, n, cert);
	free(t);
	return rc;
}

enum coffer_err deployer_cert_verify(const unsigned char keeper_pk[DEPLOYER_PK_LEN], const struct deployer_cert *c,
				     const unsigned char cert[DEPLOYER_SIG_LEN])
{
	char *t = NULL;
	size_t n = 0;
	enum coffer_err rc = deployer_cert_text(c, &t, &n) == COFFER_OK ? keeper_verify(keeper_pk, t, n, cert)
									  : COFFER_ERR_CRYPTO;
	free(t);
	return rc;
}

/* The "app's org" text into out (APP_ORG_TEXT_MAX); COFFER_ERR_INVALID for a bad id. */
static enum coffer_err app_org_text(const char *app_id, const char *org_id, char out[APP_ORG_TEXT_MAX], size_t *len)
{
	if (!deployer_id_ok(app_id) || !deployer_id_ok(org_id) ||
	    fmt_into(out, APP_ORG_TEXT_MAX, DEPLOYER_APP_ORG_CONTEXT "app %s\norg %s\n", app_id, org_id))
		return COFFER_ERR_INVALID;
	*len = strlen(out);
	return COFFER_OK;
}

enum coffer_err deployer_app_org_sign(const struct secret *keeper_sk, const char *app_id, const char *org_id,
				      unsigned char sig[DEPLOYER_SIG_LEN])
{
	char t[APP_ORG_TEXT_MAX];
	size_t n = 0;
	enum coffer_err rc = app_org_text(app_id, org_id, t, &n);
	return rc ? rc : keeper_sign(keeper_sk, t, n, sig);
}

enum coffer_err deployer_app_org_verify(const unsigned char keeper_pk[DEPLOYER_PK_LEN], const char *app_id,
					const char *org_id, const unsigned char sig[DEPLOYER_SIG_LEN])
{
	char t[APP_ORG_TEXT_MAX];
	size_t n = 0;
	if (app_org_text(app_id, org_id, t, &n))
		return COFFER_ERR_CRYPTO;
	return keeper_verify(keeper_pk, t, n, sig);
}

/* ---- signatures ---- */

enum coffer_err deployer_sign(const struct secret *sk, const void *text, size_t len, char out[DEPLOYER_SIG_B64_SIZE])
{
	unsigned char sig[DEPLOYER_SIG_LEN];

	if (!sk || secret_len(sk) != DEPLOYER_SK_LEN || (!text && len))
		return COFFER_ERR_INVALID;
	if (crypto_sign_ed25519_detached(sig, NULL, text ? text : (const void *)"", len, secret_cbytes(sk)) != 0)
		return COFFER_ERR_CRYPTO;
	sodium_bin2base64(out, DEPLOYER_SIG_B64_SIZE, sig, sizeof(sig), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return COFFER_OK;
}

enum coffer_err deployer_verify(const unsigned char pk[DEPLOYER_PK_LEN], const void *text, size_t len,
				const char *sig)
{
	unsigned char raw[DEPLOYER_SIG_LEN];
	size_t n = 0;

	/* the one strict decoder: one spelling per signature */
	if (!pk || !sig || (!text && len) || strlen(sig) != DEPLOYER_SIG_B64_LEN ||
	    b64_decode_into(B64_URL, sig, DEPLOYER_SIG_B64_LEN, raw, sizeof(raw), &n) != COFFER_OK ||
	    n != sizeof(raw))
		return COFFER_ERR_CRYPTO;
	if (ed25519_verify(raw, text ? text : (const void *)"", len, pk) != 0)
		return COFFER_ERR_CRYPTO;
	return COFFER_OK;
}

int deployer_covers(const char *cert_org_id, const char *cert_app_id, const char *app_org_id, const char *app_id)
{
	if (!deployer_id_ok(cert_org_id) || !cert_app_id || !deployer_id_ok(app_org_id) || !deployer_id_ok(app_id))
		return 0;
	if (strcmp(cert_org_id, app_org_id))
		return 0;
	return !strcmp(cert_app_id, DEPLOYER_ALL_APPS) || !strcmp(cert_app_id, app_id);
}
