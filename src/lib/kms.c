#include "kms.h"

#include <string.h>

#include <sodium.h>

#include "encode.h"
#include "banned.h"

_Static_assert(KMS_KEY_LEN == crypto_auth_hmacsha256_KEYBYTES && KMS_KEY_LEN == crypto_sign_SEEDBYTES &&
		       KMS_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES &&
		       KMS_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES &&
		       KMS_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES &&
		       KMS_ED25519_SIG_LEN == crypto_sign_BYTES && KMS_PUBLIC_KEY_LEN == crypto_sign_PUBLICKEYBYTES,
	       "the sizes are libsodium's");

#define AAD_CONTEXT "coffer kms v1"

static const char *const type_names[] = { [KMS_HMAC_SHA256] = "hmac-sha256", [KMS_AEAD] = "aead",
					  [KMS_ED25519] = "ed25519" };

int kms_type_parse(const char *text, enum kms_type *out)
{
	for (size_t i = 0; text && i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (strcmp(text, type_names[i]) == 0) {
			*out = (enum kms_type)i;
			return 0;
		}
	return -1;
}

const char *kms_type_name(enum kms_type t)
{
	return (unsigned)t < sizeof(type_names) / sizeof(type_names[0]) ? type_names[t] : "?";
}

int kms_op_known(const char *op)
{
	return op && (!strcmp(op, "sign") || !strcmp(op, "verify") || !strcmp(op, "encrypt") || !strcmp(op, "decrypt"));
}

int kms_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > KMS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

/* Length-prefixed, so no two (app, name, type) give the same bytes. */
static enum coffer_err add_field(struct buf *b, const char *s)
{
	unsigned char len[2];
	size_t n = strlen(s);
	if (n > 0xffff)
		return COFFER_ERR_INVALID;
	be_put(len, n, sizeof(len));
	enum coffer_err rc = buf_add(b, len, sizeof(len));
	return rc ? rc : buf_add(b, s, n);
}

enum coffer_err kms_wrap_aad(const char *app_id, const char *name, enum kms_type t, uint32_t version,
			     struct buf *out)
{
	unsigned char v[KMS_VERSION_LEN];
	struct buf b;
	enum coffer_err rc;
	if (!app_id || !kms_name_ok(name) || version == 0)
		return COFFER_ERR_INVALID;
	buf_init(&b, KMS_AAD_MAX);
	be_put(v, version, sizeof(v));
	rc = add_field(&b, AAD_CONTEXT);
	if (!rc)
		rc = add_field(&b, app_id);
	if (!rc)
		rc = add_field(&b, name);
	if (!rc)
		rc = add_field(&b, kms_type_name(t));
	if (!rc)
		rc = buf_add(&b, v, sizeof(v));
	if (rc) {
		buf_release(&b);
		return rc;
	}
	buf_release(out);
	*out = b;
	return COFFER_OK;
}

enum coffer_err kms_public_key(const struct secret *seed, unsigned char pk[KMS_PUBLIC_KEY_LEN])
{
	struct secret *sk = NULL;
	enum coffer_err rc;
	if (secret_len(seed) != KMS_KEY_LEN)
		return COFFER_ERR_INVALID;
	rc = secret_new(crypto_sign_SECRETKEYBYTES, &sk);
	if (rc)
		return rc;
	crypto_sign_seed_keypair(pk, secret_bytes(sk), secret_cbytes(seed));
	secret_free(sk);
	return COFFER_OK;
}

enum coffer_err kms_envelope_version(const void *env, size_t len, uint32_t *version)
{
	if (!env || len < KMS_VERSION_LEN)
		return COFFER_ERR_INVALID;
	uint64_t v = be_get(env, KMS_VERSION_LEN);
	if (v == 0)
		return COFFER_ERR_INVALID;
	*version = (uint32_t)v;
	return COFFER_OK;
}

/* The raw signature of data into sig (KMS_ED25519_SIG_LEN bytes of room); its length. */
static enum coffer_err raw_sign(enum kms_type t, const struct secret *key, const void *data, size_t len,
				unsigned char *sig, size_t *sig_len)
{
	struct secret *sk = NULL;
	unsigned char pk[KMS_PUBLIC_KEY_LEN];
	enum coffer_err rc;
	if (secret_len(key) != KMS_KEY_LEN || (len && !data) || len > KMS_DATA_MAX)
		return len > KMS_DATA_MAX ? COFFER_ERR_TOO_LARGE : COFFER_ERR_INVALID;
	if (t == KMS_HMAC_SHA256) {
		crypto_auth_hmacsha256(sig, data, len, secret_cbytes(key));
		*sig_len = KMS_HMAC_LEN;
		return COFFER_OK;
	}
	if (t != KMS_ED25519)
		return COFFER_ERR_INVALID;
	rc = secret_new(crypto_sign_SECRETKEYBYTES, &sk);
	if (rc)
		return rc;
	crypto_sign_seed_keypair(pk, secret_bytes(sk), secret_cbytes(key));
	crypto_sign_detached(sig, NULL, data, len, secret_cbytes(sk));
	secret_free(sk);
	*sig_len = KMS_ED25519_SIG_LEN;
	return COFFER_OK;
}

enum coffer_err kms_sign(enum kms_type t, const struct secret *key, uint32_t version, const void *data, size_t len,
			 struct buf *out)
{
	unsigned char env[KMS_VERSION_LEN + KMS_ED25519_SIG_LEN];
	size_t sig_len = 0;
	struct buf b;
	enum coffer_err rc;
	if (version == 0)
		return COFFER_ERR_INVALID;
	rc = raw_sign(t, key, data, len, env + KMS_VERSION_LEN, &sig_len);
	if (rc)
		return rc;
	be_put(env, version, KMS_VERSION_LEN);
	buf_init(&b, out->max);
	rc = buf_add(&b, env, KMS_VERSION_LEN + sig_len);
	if (rc) {
		buf_release(&b);
		return rc;
	}
	size_t max = out->max;
	buf_release(out);
	*out = b;
	out->max = max;
	return COFFER_OK;
}

enum coffer_err kms_verify(enum kms_type t, const struct secret *key, const void *env, size_t env_len,
			   const void *data, size_t len)
{
	unsigned char sig[KMS_ED25519_SIG_LEN], pk[KMS_PUBLIC_KEY_LEN];
	size_t sig_len = 0;
	uint32_t v;
	enum coffer_err rc = kms_envelope_version(env, env_len, &v);
	if (rc)
		return rc;
	if (t == KMS_ED25519) {
		rc = kms_public_key(key, pk);
		return rc ? rc : kms_verify_public(pk, env, env_len, data, len);
	}
	rc = raw_sign(t, key, data, len, sig, &sig_len);
	if (rc)
		return rc;
	if (env_len != KMS_VERSION_LEN + sig_len)
		rc = COFFER_ERR_CRYPTO;
	else if (sodium_memcmp(sig, (const unsigned char *)env + KMS_VERSION_LEN, sig_len) != 0)
		rc = COFFER_ERR_CRYPTO;
	sodium_memzero(sig, sizeof(sig));
	return rc;
}

enum coffer_err kms_verify_public(const unsigned char pk[KMS_PUBLIC_KEY_LEN], const void *env, size_t env_len,
				  const void *data, size_t len)
{
	uint32_t v;
	enum coffer_err rc = kms_envelope_version(env, env_len, &v);
	if (rc)
		return rc;
	if (len > KMS_DATA_MAX)
		return COFFER_ERR_TOO_LARGE;
	if (env_len != KMS_VERSION_LEN + KMS_ED25519_SIG_LEN)
		return COFFER_ERR_CRYPTO;
	if (crypto_sign_verify_detached((const unsigned char *)env + KMS_VERSION_LEN, data, len, pk) != 0)
		return COFFER_ERR_CRYPTO;
	return COFFER_OK;
}

enum coffer_err kms_encrypt(const struct secret *key, uint32_t version, const struct buf *aad, const void *data,
			    size_t len, struct buf *out)
{
	unsigned long long ct_len = 0;
	struct buf b;
	enum coffer_err rc;
	if (secret_len(key) != KMS_KEY_LEN || version == 0 || !aad || (len && !data))
		return COFFER_ERR_INVALID;
	if (len > KMS_DATA_MAX)
		return COFFER_ERR_TOO_LARGE;
	buf_init(&b, out->max);
	rc = buf_grow(&b, KMS_VERSION_LEN + KMS_NONCE_LEN + len + KMS_TAG_LEN);
	if (rc) {
		buf_release(&b);
		return rc;
	}
	unsigned char *p = (unsigned char *)b.ptr;
	be_put(p, version, KMS_VERSION_LEN);
	randombytes_buf(p + KMS_VERSION_LEN, KMS_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(p + KMS_VERSION_LEN + KMS_NONCE_LEN, &ct_len, data, len,
						   (const unsigned char *)aad->ptr, aad->len, NULL,
						   p + KMS_VERSION_LEN, secret_cbytes(key));
	b.len = KMS_VERSION_LEN + KMS_NONCE_LEN + (size_t)ct_len;
	b.ptr[b.len] = '\0';
	size_t max = out->max;
	buf_release(out);
	*out = b;
	out->max = max;
	return COFFER_OK;
}

enum coffer_err kms_decrypt(const struct secret *key, const struct buf *aad, const void *env, size_t env_len,
			    struct secret **out)
{
	const unsigned char *e = env;
	struct secret *pt = NULL;
	unsigned long long pt_len = 0;
	uint32_t v;
	enum coffer_err rc = kms_envelope_version(env, env_len, &v);
	if (rc)
		return rc;
	if (secret_len(key) != KMS_KEY_LEN || !aad)
		return COFFER_ERR_INVALID;
	if (env_len < KMS_VERSION_LEN + KMS_NONCE_LEN + KMS_TAG_LEN)
		return COFFER_ERR_CRYPTO;
	if (env_len > KMS_ENVELOPE_MAX)
		return COFFER_ERR_TOO_LARGE;
	rc = secret_new(env_len - KMS_VERSION_LEN - KMS_NONCE_LEN - KMS_TAG_LEN, &pt);
	if (rc)
		return rc;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		    secret_bytes(pt), &pt_len, NULL, e + KMS_VERSION_LEN + KMS_NONCE_LEN,
		    env_len - KMS_VERSION_LEN - KMS_NONCE_LEN, (const unsigned char *)aad->ptr, aad->len,
		    e + KMS_VERSION_LEN, secret_cbytes(key)) != 0) {
		secret_free(pt);
		return COFFER_ERR_CRYPTO;
	}
	*out = pt;
	return COFFER_OK;
}
