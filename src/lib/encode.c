#include "encode.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "banned.h"

enum coffer_err hex_encode(const void *in, size_t len, char *out, size_t out_size)
{
	if (len > (SIZE_MAX - 1) / 2 || out_size < len * 2 + 1)
		return COFFER_ERR_TOO_LARGE;
	sodium_bin2hex(out, out_size, in, len);
	return COFFER_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum coffer_err hex_decode(const char *in, size_t in_len, void *out, size_t out_len)
{
	if (in_len != out_len * 2)
		return COFFER_ERR_INVALID;
	for (size_t i = 0; i < in_len; i++)
		if (hexval(in[i]) < 0)
			return COFFER_ERR_INVALID;
	unsigned char *o = out;
	for (size_t i = 0; i < out_len; i++)
		o[i] = (unsigned char)(hexval(in[2 * i]) << 4 | hexval(in[2 * i + 1]));
	return COFFER_OK;
}

enum coffer_err hex_decode_buf(const char *in, size_t in_len, struct buf *b)
{
	buf_reset(b);
	if (in_len % 2)
		return COFFER_ERR_INVALID;
	enum coffer_err rc = buf_grow(b, in_len / 2);
	if (rc)
		return rc;
	rc = hex_decode(in, in_len, b->ptr, in_len / 2);
	if (rc)
		return rc;
	b->len = in_len / 2;
	b->ptr[b->len] = '\0';
	return COFFER_OK;
}

enum coffer_err b64url_encode(const void *in, size_t len, struct buf *out)
{
	buf_reset(out);
	size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	enum coffer_err rc = buf_grow(out, n);
	if (rc)
		return rc;
	sodium_bin2base64(out->ptr, n, in, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	out->len = strlen(out->ptr);
	return COFFER_OK;
}

enum coffer_err b64url_decode(const char *in, size_t in_len, struct buf *out)
{
	buf_reset(out);
	if (in_len % 4 == 1)
		return COFFER_ERR_INVALID;
	size_t cap = in_len / 4 * 3 + 3;
	enum coffer_err rc = buf_grow(out, cap);
	if (rc)
		return rc;
	size_t bin_len = 0;
	const char *end = NULL;
	if (sodium_base642bin((unsigned char *)out->ptr, cap, in, in_len, NULL, &bin_len, &end,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != in + in_len) {
		buf_reset(out);
		return COFFER_ERR_INVALID;
	}
	out->len = bin_len;
	out->ptr[bin_len] = '\0';
	return COFFER_OK;
}
