#include "secret.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "banned.h"

#define SECRET_ALIGN 16 /* every block and every carved secret starts on it */

/* bytes start SECRET_ALIGN-aligned: callers lay out pointer arrays in them (machine.c). */
struct secret {
	size_t len;
	size_t cap;
	int carved; /* in a secret_arena: secret_free wipes, the arena frees */
	unsigned char bytes[] __attribute__((aligned(SECRET_ALIGN)));
};

/* Allocated with sodium_malloc, its size a multiple of SECRET_ALIGN. */
struct secret_arena {
	size_t size; /* bytes of mem */
	size_t used;
	unsigned char mem[] __attribute__((aligned(SECRET_ALIGN)));
};

/* The bytes a secret of len takes, header and terminating NUL included, rounded up. */
static int footprint(size_t len, size_t *size)
{
	if (len > SIZE_MAX - sizeof(struct secret) - 1 - SECRET_ALIGN)
		return 0;
	*size = (sizeof(struct secret) + len + 1 + SECRET_ALIGN - 1) & ~(size_t)(SECRET_ALIGN - 1);
	return 1;
}

enum coffer_err secret_new(size_t len, struct secret **out)
{
	size_t size;
	/* sodium_malloc puts the end of the block against a guard page, so the
	 * start is only aligned when the size is a multiple of the alignment. */
	if (!footprint(len, &size))
		return COFFER_ERR_TOO_LARGE;
	struct secret *s = sodium_malloc(size);
	if (!s)
		return COFFER_ERR_NOMEM;
	s->len = len;
	s->cap = len;
	s->carved = 0;
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
	if (!s)
		return;
	if (s->carved) {
		sodium_memzero(s->bytes, s->cap + 1);
		s->len = 0;
		return;
	}
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

/* The bytes an arena for count secrets of total bytes needs; 0 when too large. */
static size_t arena_size(size_t count, size_t total)
{
	size_t one;
	/* footprint(len) <= footprint(0) + len + SECRET_ALIGN - 1: each secret
	 * costs at most `one` besides its bytes, its rounding included */
	if (!footprint(0, &one))
		return 0;
	one += SECRET_ALIGN;
	if (count > (SIZE_MAX / 2) / one || total > SIZE_MAX / 2 - sizeof(struct secret_arena) - SECRET_ALIGN)
		return 0;
	return (count * one + total + SECRET_ALIGN - 1) & ~(size_t)(SECRET_ALIGN - 1);
}

enum coffer_err secret_arena_new(size_t count, size_t total, struct secret_arena **out)
{
	size_t size = arena_size(count, total);
	struct secret_arena *a;

	if (!size && (count || total))
		return COFFER_ERR_TOO_LARGE;
	a = sodium_malloc(sizeof(struct secret_arena) + size); /* both multiples of SECRET_ALIGN */
	if (!a)
		return COFFER_ERR_NOMEM;
	a->size = size;
	a->used = 0;
	*out = a;
	return COFFER_OK;
}

enum coffer_err secret_arena_take(struct secret_arena *a, size_t len, struct secret **out)
{
	size_t size;
	struct secret *s;

	if (!footprint(len, &size) || size > a->size - a->used)
		return COFFER_ERR_TOO_LARGE;
	s = (struct secret *)(void *)(a->mem + a->used);
	a->used += size;
	s->len = len;
	s->cap = len;
	s->carved = 1;
	sodium_memzero(s->bytes, len + 1);
	*out = s;
	return COFFER_OK;
}

void secret_arena_free(struct secret_arena *a)
{
	if (a)
		sodium_free(a); /* wipes the whole block, every carved secret with it */
}

void secret_arena_wipe(struct secret_arena *a)
{
	if (!a)
		return;
	sodium_memzero(a->mem, a->used);
	a->used = 0;
}

enum coffer_err secret_arena_reuse(struct secret_arena **a, size_t count, size_t total)
{
	size_t size = arena_size(count, total);

	if (!size && (count || total))
		return COFFER_ERR_TOO_LARGE;
	if (*a && (*a)->size >= size) {
		secret_arena_wipe(*a);
		return COFFER_OK;
	}
	secret_arena_free(*a);
	*a = NULL;
	return secret_arena_new(count, total, a);
}
