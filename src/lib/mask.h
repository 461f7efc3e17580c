/*
 * mask.h — streaming masking of secret values in a byte stream.
 *
 * A mask_stream holds copies of the values (in secure memory, wiped by
 * mask_stream_free) and the last maxlen - 1 bytes it has been fed but not
 * yet written (a value may still be completing there). Every byte inside
 * any occurrence of any value (overlapping occurrences too) is covered;
 * each run of covered bytes is written as "***", once, however many writes
 * it was split across. Empty values are ignored; any byte, NUL included,
 * may occur in a value or in the stream.
 *
 * The search: a table of the values by first byte (a 256-entry index) and
 * memcmp at each position whose byte starts some value. Simple, and fast
 * when few values share a first byte; see bench/bench_mask.c.
 *
 * Ownership: the caller owns the values it passes (they are copied) and
 * what emit is given (borrowed for the call). The carry is secure memory.
 */
#ifndef COFFER_LIB_MASK_H
#define COFFER_LIB_MASK_H

#include <stddef.h>

#include "err.h"
#include "secret.h"

#define MASK_TEXT "***"
#define MASK_VALUES_MAX 4096                  /* values of one stream */
#define MASK_VALUE_MAX ((size_t)64 << 10)     /* bytes of one value (a secret's limit) */
#define MASK_CHUNK ((size_t)64 << 10)         /* bytes taken in at a time */

struct mask_stream;

/* Where masked bytes go; nonzero stops the stream (mask_feed/mask_finish return COFFER_ERR_IO). */
typedef int (*mask_emit_fn)(void *ctx, const unsigned char *p, size_t n);

/* A stream masking values[0..n) (NULL entries and empty values ignored); COFFER_ERR_TOO_LARGE past the limits. */
COFFER_MUST_CHECK enum coffer_err mask_stream_new(const struct secret *const *values, size_t n, mask_emit_fn emit,
						  void *ctx, struct mask_stream **out);

/* Takes in p[0..n): writes what can no longer be part of a value, keeps the rest. */
COFFER_MUST_CHECK enum coffer_err mask_feed(struct mask_stream *ms, const unsigned char *p, size_t n);

/* The end of the stream: writes what was kept, masked. Nothing may be fed after. */
COFFER_MUST_CHECK enum coffer_err mask_finish(struct mask_stream *ms);

/* Wipes and frees. NULL is allowed. */
void mask_stream_free(struct mask_stream *ms);

#endif
