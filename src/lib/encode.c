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

/* The 6-bit value of c in the alphabet, or -1. */
static int b64val(enum b64_alphabet a, unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (a == B64_URL ? '-' : '+'))
		return 62;
	if (c == (a == B64_URL ? '_' : '/'))
		return 63;
	return -1;
}

/*
 * Our own decoder rather than sodium_base642bin: libsodium 1.0.18 reads every
 * byte 0x80-0xFF as the alphabet's 63rd character, so one value would have
 * many spellings. Here every byte is checked against the alphabet first.
 */
enum coffer_err b64_decode_into(enum b64_alphabet a, const char *in, size_t in_len, void *out, size_t out_size,
				size_t *out_len)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = in_len;
	if (a == B64_STD) { /* padded to whole groups: strip at most two '=' */
		if (n % 4)
			return COFFER_ERR_INVALID;
		for (int i = 0; i < 2 && n > 0 && s[n - 1] == '='; i++)
			n--;
	}
	if (n % 4 == 1)
		return COFFER_ERR_INVALID;
	for (size_t i = 0; i < n; i++)
		if (b64val(a, s[i]) < 0)
			return COFFER_ERR_INVALID;
	size_t len = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	/* the bits of the last character past the last whole byte must be zero */
	if ((n % 4 == 2 && (b64val(a, s[n - 1]) & 0x0f)) || (n % 4 == 3 && (b64val(a, s[n - 1]) & 0x03)))
		return COFFER_ERR_INVALID;
	if (len > out_size)
		return COFFER_ERR_TOO_LARGE;
	unsigned char *o = out;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 6 | (uint32_t)b64val(a, s[i])) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[w++] = (unsigned char)(acc >> bits);
		}
	}
	sodium_memzero(&acc, sizeof(acc)); /* a secret value's last bits */
	*out_len = len;
	return COFFER_OK;
}

enum coffer_err b64url_decode(const char *in, size_t in_len, struct buf *out)
{
	buf_reset(out);
	size_t cap = in_len / 4 * 3 + 2, got = 0;
	enum coffer_err rc = buf_grow(out, cap);
	if (rc)
		return rc;
	rc = b64_decode_into(B64_URL, in, in_len, out->ptr, cap, &got);
	if (rc) {
		buf_reset(out);
		return rc;
	}
	out->len = got;
	out->ptr[got] = '\0';
	return COFFER_OK;
}

void be_put(unsigned char *p, uint64_t v, size_t n)
{
	for (size_t i = n; i-- > 0; v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

uint64_t be_get(const unsigned char *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}
