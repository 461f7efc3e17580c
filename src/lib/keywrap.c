#include "keywrap.h"

#include <sodium.h>
#include <string.h>

#include "banned.h"

enum coffer_err keywrap_derive(const struct secret *master, const char *label,
			       struct secret **subkey)
{
	return kdf_subkey(master, label, NULL, 0, KEYWRAP_KEY_LEN, subkey);
}

enum coffer_err keywrap_seal(const struct secret *subkey, const void *aad, size_t aad_len,
			     const struct secret *plaintext, struct buf *wrapped)
{
	unsigned char nonce[KEYWRAP_NONCE_LEN];
	unsigned long long ct_len = 0;
	size_t pt_len = secret_len(plaintext);
	struct buf tmp;
	enum coffer_err rc;

	buf_init(&tmp, wrapped->max);
	if (secret_len(subkey) != KEYWRAP_KEY_LEN || (aad_len && !aad)) {
		rc = COFFER_ERR_INVALID;
		goto out;
	}
	if (pt_len > KEYWRAP_PLAINTEXT_MAX) {
		rc = COFFER_ERR_TOO_LARGE;
		goto out;
	}
	rc = buf_grow(&tmp, KEYWRAP_OVERHEAD + pt_len);
	if (rc)
		goto out;
	randombytes_buf(nonce, sizeof(nonce));
	memcpy(tmp.ptr, nonce, sizeof(nonce));
	crypto_aead_xchacha20poly1305_ietf_encrypt((unsigned char *)tmp.ptr + KEYWRAP_NONCE_LEN,
						   &ct_len, secret_cbytes(plaintext), pt_len, aad,
						   aad_len, NULL, nonce, secret_cbytes(subkey));
	tmp.len = KEYWRAP_NONCE_LEN + (size_t)ct_len;
	tmp.ptr[tmp.len] = '\0';

	size_t max = wrapped->max;
	buf_release(wrapped);
	*wrapped = tmp;
	wrapped->max = max;
	buf_init(&tmp, max);
out:
	buf_release(&tmp);
	return rc;
}

/* The checks of both opens: COFFER_OK when wrapped may hold a plaintext for subkey. */
static enum coffer_err open_check(const struct secret *subkey, const void *aad, size_t aad_len, const void *wrapped,
				  size_t wrapped_len)
{
	if (secret_len(subkey) != KEYWRAP_KEY_LEN || (aad_len && !aad) || !wrapped || wrapped_len < KEYWRAP_OVERHEAD)
		return COFFER_ERR_INVALID;
	if (wrapped_len - KEYWRAP_OVERHEAD > KEYWRAP_PLAINTEXT_MAX)
		return COFFER_ERR_TOO_LARGE;
	return COFFER_OK;
}

enum coffer_err keywrap_open_into(const struct secret *subkey, const void *aad, size_t aad_len,
				  const void *wrapped, size_t wrapped_len, struct secret *pt)
{
	const unsigned char *w = wrapped;
	unsigned long long pt_len = 0;
	enum coffer_err rc = open_check(subkey, aad, aad_len, wrapped, wrapped_len);

	if (rc)
		return rc;
	if (!pt || secret_len(pt) != wrapped_len - KEYWRAP_OVERHEAD)
		return COFFER_ERR_INVALID;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(secret_bytes(pt), &pt_len, NULL, w + KEYWRAP_NONCE_LEN,
						       wrapped_len - KEYWRAP_NONCE_LEN, aad, aad_len, w,
						       secret_cbytes(subkey)) != 0 ||
	    pt_len != wrapped_len - KEYWRAP_OVERHEAD) {
		sodium_memzero(secret_bytes(pt), secret_len(pt));
		return COFFER_ERR_CRYPTO;
	}
	return COFFER_OK;
}

enum coffer_err keywrap_open(const struct secret *subkey, const void *aad, size_t aad_len,
			     const void *wrapped, size_t wrapped_len, struct secret **plaintext)
{
	struct secret *pt = NULL;
	enum coffer_err rc = open_check(subkey, aad, aad_len, wrapped, wrapped_len);

	if (!rc)
		rc = secret_new(wrapped_len - KEYWRAP_OVERHEAD, &pt);
	if (!rc)
		rc = keywrap_open_into(subkey, aad, aad_len, wrapped, wrapped_len, pt);
	if (!rc) {
		*plaintext = pt;
		pt = NULL;
	}
	secret_free(pt);
	return rc;
}
