/*
 * encode.h — hex, base64url (RFC 4648 §5, no padding) and, for secret
 * values, base64 (§4, padded); strict both ways. Decoders refuse any
 * character outside the alphabet, padding where none belongs, whitespace,
 * odd lengths and non-zero trailing bits; output is written only on success.
 */
#ifndef COFFER_ENCODE_H
#define COFFER_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define HEX_LEN(n) ((n) * 2)
#define B64URL_LEN(n) (((n) * 4 + 2) / 3)

/* Lower-case hex; out must hold 2 * len + 1 bytes. */
COFFER_MUST_CHECK enum coffer_err hex_encode(const void *in, size_t len, char *out, size_t out_size);
/* Decodes exactly out_len bytes from a string of exactly 2 * out_len hex digits. */
COFFER_MUST_CHECK enum coffer_err hex_decode(const char *in, size_t in_len, void *out, size_t out_len);
/* Decodes any even-length hex string into b (reset first). */
COFFER_MUST_CHECK enum coffer_err hex_decode_buf(const char *in, size_t in_len, struct buf *b);

enum b64_alphabet {
	B64_URL, /* RFC 4648 §5 without padding (tokens, signatures, keys) */
	B64_STD, /* RFC 4648 §4 with its '=' padding (secret values) */
};

/*
 * Decodes into out (out_size bytes); *out_len is the decoded length. One
 * spelling per value: bytes outside the alphabet (0x80-0xFF included), '='
 * other than B64_STD's final padding, a lone last character and non-zero
 * trailing bits are COFFER_ERR_INVALID; output too large for out is
 * COFFER_ERR_TOO_LARGE.
 */
COFFER_MUST_CHECK enum coffer_err b64_decode_into(enum b64_alphabet a, const char *in, size_t in_len, void *out,
						  size_t out_size, size_t *out_len);
COFFER_MUST_CHECK enum coffer_err b64url_encode(const void *in, size_t len, struct buf *out);
/* Decodes into b (reset first). */
COFFER_MUST_CHECK enum coffer_err b64url_decode(const char *in, size_t in_len, struct buf *out);

/*
 * Big-endian unsigned numbers of n bytes (n at most 8): the lengths and
 * numbers inside signed, hashed or MAC-ed messages, and PostgreSQL's binary
 * integers. be_put writes the low n bytes of v to p[0..n).
 */
void be_put(unsigned char *p, uint64_t v, size_t n);
uint64_t be_get(const unsigned char *p, size_t n);

#endif
