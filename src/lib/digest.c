#include "digest.h"

#include <sodium.h>
#include <string.h>

#include "encode.h"

#include "banned.h"

/* The checks of digest_app_key: COFFER_ERR_INVALID, or the app id's length in *n. */
static enum coffer_err app_key_args(const struct secret *digest_key, const char *app_id, size_t *n)
{
	size_t id_len = app_id ? strnlen(app_id, DIGEST_APP_ID_MAX + 1) : 0;

	if (secret_len(digest_key) != DIGEST_KEY_LEN || id_len == 0 ||
	    id_len > DIGEST_APP_ID_MAX)
		return COFFER_ERR_INVALID;
	*n = id_len;
	return COFFER_OK;
}

enum coffer_err digest_app_key(const struct secret *digest_key, const char *app_id,
			       struct secret **app_key)
{
	size_t id_len = 0;
	enum coffer_err rc = app_key_args(digest_key, app_id, &id_len);
	return rc ? rc : kdf_subkey(digest_key, DIGEST_LABEL, app_id, id_len, DIGEST_KEY_LEN, app_key);
}

enum coffer_err digest_app_key_into(const struct secret *digest_key, const char *app_id, struct secret *app_key)
{
	size_t id_len = 0;
	enum coffer_err rc = app_key_args(digest_key, app_id, &id_len);
	if (!rc && secret_len(app_key) != DIGEST_KEY_LEN)
		rc = COFFER_ERR_INVALID;
	return rc ? rc : kdf_subkey_into(digest_key, DIGEST_LABEL, app_id, id_len, app_key);
}

enum coffer_err digest_value(const struct secret *app_key, const struct secret *value,
			     char out[DIGEST_HEX_LEN + 1])
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char hex[DIGEST_HEX_LEN + 1];
	enum coffer_err rc;

	if (secret_len(app_key) != DIGEST_KEY_LEN)
		return COFFER_ERR_INVALID;
	crypto_auth_hmacsha256(mac, secret_cbytes(value), secret_len(value),
			       secret_cbytes(app_key));
	rc = hex_encode(mac, DIGEST_BYTES, hex, sizeof(hex));
	if (rc)
		goto out;
	memcpy(out, hex, sizeof(hex));
out:
	sodium_memzero(mac, sizeof(mac));
	return rc;
}

static int well_formed(const char *d)
{
	if (!d || strnlen(d, DIGEST_HEX_LEN + 1) != DIGEST_HEX_LEN)
		return 0;
	for (size_t i = 0; i < DIGEST_HEX_LEN; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			return 0;
	return 1;
}

int digest_equal(const char *a, const char *b)
{
	if (!well_formed(a) || !well_formed(b))
		return 0;
	return ct_equal(a, b, DIGEST_HEX_LEN);
}
