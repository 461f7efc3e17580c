/*
 * buf.h — bounded, growable byte buffers.
 *
 * A struct buf owns its bytes. It always keeps a NUL after the last byte so
 * that text can be read as a C string, and it never grows past `max` bytes:
 * an append that would pass the limit fails with COFFER_ERR_TOO_LARGE and
 * leaves the buffer as it was. A buf is not for secrets; see secret.h.
 */
#ifndef COFFER_BUF_H
#define COFFER_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

struct buf {
	char *ptr;  /* NUL-terminated; never NULL after buf_init */
	size_t len; /* bytes in use, NUL excluded */
	size_t cap; /* bytes allocated */
	size_t max; /* the most len may ever be */
	int wipe;   /* set by buf_init_wiping: old and freed bytes are wiped */
};

#define BUF_MAX_DEFAULT ((size_t)1 << 20)

void buf_init(struct buf *b, size_t max);
/*
 * Like buf_init, for text that carries secrets on their way in or out (a
 * request body, a JSON document with values): growing copies and wipes
 * instead of realloc, and reset and release wipe the bytes.
 */
void buf_init_wiping(struct buf *b, size_t max);
/* Frees the bytes; the buf may be buf_init-ed again. */
void buf_release(struct buf *b);
/* Keeps the allocation, empties the content. */
void buf_reset(struct buf *b);
/* Hands the bytes to the caller (free() them) and re-initialises b. */
char *buf_detach(struct buf *b, size_t *len);

COFFER_MUST_CHECK enum coffer_err buf_grow(struct buf *b, size_t extra);
COFFER_MUST_CHECK enum coffer_err buf_add(struct buf *b, const void *data, size_t len);
COFFER_MUST_CHECK enum coffer_err buf_adds(struct buf *b, const char *s);
COFFER_MUST_CHECK enum coffer_err buf_addch(struct buf *b, char c);
COFFER_MUST_CHECK enum coffer_err buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
COFFER_MUST_CHECK enum coffer_err buf_vaddf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * Formats into a fixed array: fails with COFFER_ERR_TOO_LARGE (and leaves an
 * empty string) instead of truncating.
 */
COFFER_MUST_CHECK enum coffer_err fmt_into(char *dst, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Copies a NUL-terminated string into a fixed array; fails rather than truncates. */
COFFER_MUST_CHECK enum coffer_err str_copy(char *dst, size_t size, const char *src);

#endif
