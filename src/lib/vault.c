#include "vault.h"

#include <sodium.h>
#include <string.h>

#include "hkdf.h"
#include "banned.h"

#define AAD_MAX (2 + VAULT_ID_MAX + 2 + VAULT_ID_MAX + 4 + 2 + VAULT_ID_MAX)

static enum coffer_err add_u16_string(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > VAULT_ID_MAX)
		return COFFER_ERR_INVALID;
	unsigned char len[2] = { (unsigned char)(n >> 8), (unsigned char)n };
	enum coffer_err rc = buf_add(b, len, sizeof(len));
	return rc ? rc : buf_add(b, s, n);
}

static enum coffer_err add_u32(struct buf *b, uint32_t v)
{
	unsigned char be[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
				(unsigned char)v };
	return buf_add(b, be, sizeof(be));
}

/* Puts a u16 length and s at *pos of aad (AAD_MAX bytes). */
static enum coffer_err put_u16_string(unsigned char *aad, size_t *pos, const char *s)
{
	size_t n = strnlen(s, VAULT_ID_MAX + 1);
	if (n == 0 || n > VAULT_ID_MAX)
		return COFFER_ERR_INVALID;
	aad[(*pos)++] = (unsigned char)(n >> 8);
	aad[(*pos)++] = (unsigned char)n;
	memcpy(aad + *pos, s, n);
	*pos += n;
	return COFFER_OK;
}

/* A value's aad (the header's layout) into aad, on the caller's stack: no allocation. */
static enum coffer_err value_aad(const char *app_id, const char *name, uint32_t key_version, const char *value_id,
				 unsigned char aad[AAD_MAX], size_t *len)
{
	size_t pos = 0;
	enum coffer_err rc = put_u16_string(aad, &pos, app_id);
	if (!rc)
		rc = put_u16_string(aad, &pos, name);
	if (rc)
		return rc;
	aad[pos++] = (unsigned char)(key_version >> 24);
	aad[pos++] = (unsigned char)(key_version >> 16);
	aad[pos++] = (unsigned char)(key_version >> 8);
	aad[pos++] = (unsigned char)key_version;
	rc = put_u16_string(aad, &pos, value_id);
	if (rc)
		return rc;
	*len = pos;
	return COFFER_OK;
}

enum coffer_err vault_seal_value(const unsigned char pk[HPKE_PK_LEN], const char *app_id, const char *name,
				 uint32_t key_version, const char *value_id, const struct secret *value, struct buf *sealed)
{
	unsigned char aad[AAD_MAX];
	size_t aad_len = 0;
	enum coffer_err rc = value_aad(app_id, name, key_version, value_id, aad, &aad_len);
	if (!rc)
		rc = hpke_seal(pk, VAULT_INFO, strlen(VAULT_INFO), aad, aad_len, value, sealed);
	return rc;
}

enum coffer_err vault_open_value_into(const struct secret *sk, const unsigned char *pk, const char *app_id,
				      const char *name, uint32_t key_version, const char *value_id, const void *sealed,
				      size_t sealed_len, struct secret *value)
{
	unsigned char aad[AAD_MAX];
	size_t aad_len = 0;
	enum coffer_err rc = value_aad(app_id, name, key_version, value_id, aad, &aad_len);
	if (!rc)
		rc = hpke_open_into(sk, pk, VAULT_INFO, strlen(VAULT_INFO), aad, aad_len, sealed, sealed_len, value);
	else if (value)
		sodium_memzero(secret_bytes(value), secret_len(value));
	return rc;
}

enum coffer_err vault_open_value(const struct secret *sk, const char *app_id, const char *name, uint32_t key_version,
				 const char *value_id, const void *sealed, size_t sealed_len, struct secret **value)
{
	struct secret *v = NULL;
	enum coffer_err rc;

	if (!sealed || sealed_len < VAULT_SEAL_OVERHEAD)
		return COFFER_ERR_INVALID;
	rc = secret_new(sealed_len - VAULT_SEAL_OVERHEAD, &v);
	if (!rc)
		rc = vault_open_value_into(sk, NULL, app_id, name, key_version, value_id, sealed, sealed_len, v);
	if (!rc) {
		*value = v;
		v = NULL;
	}
	secret_free(v);
	return rc;
}

enum coffer_err vault_app_key_aad(const char *app_id, uint32_t version, struct buf *aad)
{
	buf_reset(aad);
	enum coffer_err rc = add_u16_string(aad, app_id);
	if (!rc)
		rc = add_u32(aad, version);
	if (rc)
		buf_reset(aad);
	return rc;
}

static enum coffer_err sign_message(const char *app_id, uint32_t version, const unsigned char pk[HPKE_PK_LEN],
				    struct buf *msg)
{
	struct buf aad;
	buf_init(&aad, AAD_MAX);
	enum coffer_err rc = vault_app_key_aad(app_id, version, &aad);
	if (!rc)
		rc = buf_add(msg, VAULT_SIGN_CONTEXT, sizeof(VAULT_SIGN_CONTEXT)); /* with its NUL */
	if (!rc)
		rc = buf_add(msg, aad.ptr, aad.len);
	if (!rc)
		rc = buf_add(msg, pk, HPKE_PK_LEN);
	buf_release(&aad);
	return rc;
}

enum coffer_err vault_app_key_sign(const struct secret *signing_sk, const char *app_id, uint32_t version,
				   const unsigned char pk[HPKE_PK_LEN], unsigned char sig[VAULT_SIG_LEN])
{
	if (secret_len(signing_sk) != crypto_sign_ed25519_SECRETKEYBYTES)
		return COFFER_ERR_INVALID;
	struct buf msg;
	buf_init(&msg, 1024);
	enum coffer_err rc = sign_message(app_id, version, pk, &msg);
	if (!rc && crypto_sign_ed25519_detached(sig, NULL, (const unsigned char *)msg.ptr, msg.len,
						secret_cbytes(signing_sk)) != 0)
		rc = COFFER_ERR_CRYPTO;
	buf_release(&msg);
	return rc;
}

enum coffer_err vault_app_key_verify(const unsigned char keeper_pk[JWS_PK_LEN], const char *app_id, uint32_t version,
				     const unsigned char pk[HPKE_PK_LEN], const unsigned char sig[VAULT_SIG_LEN])
{
	struct buf msg;
	buf_init(&msg, 1024);
	enum coffer_err rc = sign_message(app_id, version, pk, &msg);
	if (!rc && crypto_sign_ed25519_verify_detached(sig, (const unsigned char *)msg.ptr, msg.len, keeper_pk) != 0)
		rc = COFFER_ERR_CRYPTO;
	buf_release(&msg);
	return rc;
}

enum coffer_err vault_keeper_signing_key(const struct secret *master, struct secret **sk, unsigned char pk[JWS_PK_LEN])
{
	struct secret *seed = NULL;
	enum coffer_err rc = kdf_subkey(master, VAULT_LABEL_KEEPER_SIGNING, NULL, 0, JWS_SEED_LEN, &seed);
	if (!rc)
		rc = jws_key_from_seed(seed, sk, pk);
	secret_free(seed);
	return rc;
}

enum coffer_err vault_api_credential(const struct secret *master, struct secret **credential)
{
	return kdf_subkey(master, VAULT_LABEL_API_CREDENTIAL, NULL, 0, VAULT_CREDENTIAL_LEN, credential);
}

enum coffer_err vault_api_boot_seed(const struct secret *master, struct secret **seed)
{
	return kdf_subkey(master, VAULT_LABEL_API_BOOT, NULL, 0, VAULT_BOOT_SEED_LEN, seed);
}

enum coffer_err vault_rows_key(const struct secret *master, struct secret **key)
{
	return kdf_subkey(master, VAULT_LABEL_ROWS, NULL, 0, VAULT_ROWS_KEY_LEN, key);
}

enum coffer_err vault_digest_key(const struct secret *master, struct secret **key)
{
	return kdf_subkey(master, VAULT_LABEL_API_DIGEST, NULL, 0, VAULT_DIGEST_KEY_LEN, key);
}
