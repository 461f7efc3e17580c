#include "secret.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "banned.h"

struct secret {
	size_t len;
	size_t cap;
	unsigned char bytes[];
};

enum coffer_err secret_new(size_t len, struct secret **out)
{
	if (len > SIZE_MAX - sizeof(struct secret) - 32)
		return COFFER_ERR_TOO_LARGE;
	/* sodium_malloc puts the end of the block against a guard page, so the
	 * start is only aligned when the size is a multiple of the alignment. */
	size_t size = (sizeof(struct secret) + len + 1 + 15) & ~(size_t)15;
	struct secret *s = sodium_malloc(size);
	if (!s)
		return COFFER_ERR_NOMEM;
	s->len = len;
	s->cap = len;
	sodium_memzero(s->bytes, len + 1);
	*out = s;
	return COFFER_OK;
}

enum coffer_err secret_from(const void *data, size_t len, struct secret **out)
{
	struct secret *s;
	enum coffer_err rc = secret_new(len, &s);
	if (rc)
		return rc;
	if (len)
		memcpy(s->bytes, data, len);
	*out = s;
	return COFFER_OK;
}

enum coffer_err secret_dup(const struct secret *s, struct secret **out)
{
	return secret_from(s->bytes, s->len, out);
}

void secret_free(struct secret *s)
{
	if (s)
		sodium_free(s); /* sodium_free wipes the whole allocation */
}

unsigned char *secret_bytes(struct secret *s)
{
	return s->bytes;
}

const unsigned char *secret_cbytes(const struct secret *s)
{
	return s->bytes;
}

size_t secret_len(const struct secret *s)
{
	return s->len;
}

enum coffer_err secret_truncate(struct secret *s, size_t len)
{
	if (len > s->len)
		return COFFER_ERR_INVALID;
	sodium_memzero(s->bytes + len, s->len - len);
	s->len = len;
	return COFFER_OK;
}

int ct_equal(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}

int secret_equal(const struct secret *a, const struct secret *b)
{
	if (a->len != b->len)
		return 0;
	return ct_equal(a->bytes, b->bytes, a->len);
}

int secret_has_nul(const struct secret *s)
{
	return memchr(s->bytes, 0, s->len) != NULL;
}
