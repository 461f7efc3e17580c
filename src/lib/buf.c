#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "banned.h"

static char empty_string[1];

void buf_init(struct buf *b, size_t max)
{
	b->ptr = empty_string;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->wipe = 0;
}

void buf_init_wiping(struct buf *b, size_t max)
{
	buf_init(b, max);
	b->wipe = 1;
}

void buf_release(struct buf *b)
{
	int wipe = b->wipe;
	if (b->cap) {
		if (wipe)
			sodium_memzero(b->ptr, b->cap);
		free(b->ptr);
	}
	buf_init(b, b->max);
	b->wipe = wipe;
}

void buf_reset(struct buf *b)
{
	if (b->cap && b->wipe)
		sodium_memzero(b->ptr, b->len);
	b->len = 0;
	if (b->cap)
		b->ptr[0] = '\0';
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *p = b->cap ? b->ptr : calloc(1, 1);
	int wipe = b->wipe;
	if (len)
		*len = b->len;
	buf_init(b, b->max);
	b->wipe = wipe;
	return p;
}

enum coffer_err buf_grow(struct buf *b, size_t extra)
{
	if (extra > b->max || b->len > b->max - extra)
		return COFFER_ERR_TOO_LARGE;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return COFFER_OK;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	char *p;
	if (b->wipe) {
		/* realloc could leave a copy behind: copy, then wipe the old block */
		p = malloc(cap);
		if (!p)
			return COFFER_ERR_NOMEM;
		if (b->cap) {
			memcpy(p, b->ptr, b->len + 1);
			sodium_memzero(b->ptr, b->cap);
			free(b->ptr);
		}
	} else {
		p = realloc(b->cap ? b->ptr : NULL, cap);
		if (!p)
			return COFFER_ERR_NOMEM;
	}
	if (!b->cap)
		p[0] = '\0';
	b->ptr = p;
	b->cap = cap;
	return COFFER_OK;
}

enum coffer_err buf_add(struct buf *b, const void *data, size_t len)
{
	enum coffer_err rc = buf_grow(b, len);
	if (rc)
		return rc;
	if (len)
		memcpy(b->ptr + b->len, data, len);
	b->len += len;
	b->ptr[b->len] = '\0';
	return COFFER_OK;
}

enum coffer_err buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

enum coffer_err buf_addch(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

enum coffer_err buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return COFFER_ERR_INVALID;
	enum coffer_err rc = buf_grow(b, (size_t)n);
	if (rc)
		return rc;
	int m = vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	if (m != n) {
		b->ptr[b->len] = '\0';
		return COFFER_ERR_INTERNAL;
	}
	b->len += (size_t)n;
	return COFFER_OK;
}

enum coffer_err buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	enum coffer_err rc = buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

enum coffer_err fmt_into(char *dst, size_t size, const char *fmt, ...)
{
	if (size == 0)
		return COFFER_ERR_TOO_LARGE;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(dst, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		dst[0] = '\0';
		return n < 0 ? COFFER_ERR_INVALID : COFFER_ERR_TOO_LARGE;
	}
	return COFFER_OK;
}

enum coffer_err str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (size == 0 || n >= size) {
		if (size)
			dst[0] = '\0';
		return COFFER_ERR_TOO_LARGE;
	}
	memcpy(dst, src, n + 1);
	return COFFER_OK;
}
