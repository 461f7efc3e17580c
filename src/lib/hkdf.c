#include "hkdf.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "banned.h"

/* RFC 5869 §2.2: an absent salt is HashLen zero bytes. */
static const unsigned char zero_salt[HKDF_SHA256_LEN];

static const unsigned char label_separator = 0x00;

void hkdf_extract_parts(const void *salt, size_t salt_len, const struct hkdf_part *parts,
			size_t n_parts, unsigned char prk[HKDF_SHA256_LEN])
{
	crypto_auth_hmacsha256_state st;

	if (salt_len == 0) {
		salt = zero_salt;
		salt_len = sizeof(zero_salt);
	}
	crypto_auth_hmacsha256_init(&st, salt, salt_len);
	for (size_t i = 0; i < n_parts; i++)
		if (parts[i].len)
			crypto_auth_hmacsha256_update(&st, parts[i].ptr, parts[i].len);
	crypto_auth_hmacsha256_final(&st, prk);
	sodium_memzero(&st, sizeof(st));
}

void hkdf_extract(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len,
		  unsigned char prk[HKDF_SHA256_LEN])
{
	const struct hkdf_part part = { ikm, ikm_len };

	hkdf_extract_parts(salt, salt_len, &part, 1, prk);
}

enum coffer_err hkdf_expand_parts(const unsigned char prk[HKDF_SHA256_LEN],
				  const struct hkdf_part *parts, size_t n_parts, void *okm,
				  size_t okm_len)
{
	crypto_auth_hmacsha256_state st;
	unsigned char t[HKDF_SHA256_LEN];
	unsigned char *out = okm;
	size_t done = 0;

	if (okm_len == 0 || okm_len > HKDF_SHA256_OKM_MAX)
		return COFFER_ERR_INVALID;
	/* okm_len <= 255 * HashLen, so the counter fits in one byte */
	for (unsigned int i = 1; done < okm_len; i++) {
		const unsigned char counter = (unsigned char)i;

		crypto_auth_hmacsha256_init(&st, prk, HKDF_SHA256_LEN);
		if (i > 1)
			crypto_auth_hmacsha256_update(&st, t, sizeof(t));
		for (size_t p = 0; p < n_parts; p++)
			if (parts[p].len)
				crypto_auth_hmacsha256_update(&st, parts[p].ptr, parts[p].len);
		crypto_auth_hmacsha256_update(&st, &counter, 1);
		crypto_auth_hmacsha256_final(&st, t);

		size_t take = okm_len - done < sizeof(t) ? okm_len - done : sizeof(t);
		memcpy(out + done, t, take);
		done += take;
	}
	sodium_memzero(t, sizeof(t));
	sodium_memzero(&st, sizeof(st));
	return COFFER_OK;
}

enum coffer_err hkdf_expand(const unsigned char prk[HKDF_SHA256_LEN], const void *info,
			    size_t info_len, void *okm, size_t okm_len)
{
	const struct hkdf_part part = { info, info_len };

	return hkdf_expand_parts(prk, &part, 1, okm, okm_len);
}

enum coffer_err kdf_subkey_into(const struct secret *master, const char *label, const void *ctx, size_t ctx_len,
				struct secret *out)
{
	unsigned char prk[HKDF_SHA256_LEN];
	size_t len = out ? secret_len(out) : 0;
	enum coffer_err rc;

	size_t label_len = label ? strnlen(label, KDF_LABEL_MAX + 1) : 0;
	if (secret_len(master) < KDF_MASTER_MIN_LEN || label_len == 0 ||
	    label_len > KDF_LABEL_MAX || ctx_len > KDF_CONTEXT_MAX || (ctx_len && !ctx) ||
	    len == 0 || len > HKDF_SHA256_OKM_MAX)
		return COFFER_ERR_INVALID;

	const struct hkdf_part info[] = {
		{ label, label_len },
		{ &label_separator, ctx_len ? 1 : 0 },
		{ ctx, ctx_len },
	};

	hkdf_extract(NULL, 0, secret_cbytes(master), secret_len(master), prk);
	rc = hkdf_expand_parts(prk, info, sizeof(info) / sizeof(info[0]), secret_bytes(out), len);
	sodium_memzero(prk, sizeof(prk));
	return rc;
}

enum coffer_err kdf_subkey(const struct secret *master, const char *label, const void *ctx,
			   size_t ctx_len, size_t len, struct secret **out)
{
	struct secret *key = NULL;
	enum coffer_err rc;

	if (len == 0 || len > HKDF_SHA256_OKM_MAX)
		return COFFER_ERR_INVALID;
	rc = secret_new(len, &key);
	if (!rc)
		rc = kdf_subkey_into(master, label, ctx, ctx_len, key);
	if (rc) {
		secret_free(key);
		return rc;
	}
	*out = key;
	return COFFER_OK;
}
