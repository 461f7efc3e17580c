/*
 * secret.h — memory for plaintexts, keys and tokens.
 *
 * A struct secret owns bytes allocated with sodium_malloc (guard pages,
 * locked, never swapped) and wiped by secret_free. The type is opaque: the
 * only ways in or out are the explicit accessors below, and nothing that
 * formats text (log.h, buf_addf) takes one. Code that must hand the bytes to
 * a foreign API calls secret_bytes() at that call and nowhere else.
 */
#ifndef COFFER_SECRET_H
#define COFFER_SECRET_H

#include <stddef.h>

#include "err.h"

struct secret;

/* A zeroed secret of len bytes (len may be 0). */
COFFER_MUST_CHECK enum coffer_err secret_new(size_t len, struct secret **out);
/* A secret holding a copy of data. The caller wipes its own copy. */
COFFER_MUST_CHECK enum coffer_err secret_from(const void *data, size_t len, struct secret **out);
/* A secret holding a copy of the secret s. */
COFFER_MUST_CHECK enum coffer_err secret_dup(const struct secret *s, struct secret **out);
/* Wipes and frees; NULL is allowed. */
void secret_free(struct secret *s);

unsigned char *secret_bytes(struct secret *s);
const unsigned char *secret_cbytes(const struct secret *s);
size_t secret_len(const struct secret *s);
/* Shortens the visible length (the tail is wiped); len must not grow. */
COFFER_MUST_CHECK enum coffer_err secret_truncate(struct secret *s, size_t len);
/* Constant-time comparison of lengths and contents; 1 when equal. */
int secret_equal(const struct secret *a, const struct secret *b);
/* Constant-time comparison of two byte strings of equal length; 1 when equal. */
int ct_equal(const void *a, const void *b, size_t len);
/* 1 if the secret contains a NUL byte. */
int secret_has_nul(const struct secret *s);

/*
 * An arena: ONE sodium_malloc block that many secrets are carved from, for
 * code that needs many at once (the values of one open): one mmap, one
 * mlock and one set of guard pages instead of one each. A carved secret is
 * used like any other; secret_free on it wipes its bytes and frees nothing.
 * secret_arena_free wipes and frees the whole block, so it comes after the
 * last use of every secret carved from it. The arena owns its secrets.
 */
struct secret_arena;

/* An arena with room for count secrets whose lengths add up to at most total. */
COFFER_MUST_CHECK enum coffer_err secret_arena_new(size_t count, size_t total, struct secret_arena **out);
/* A zeroed secret of len bytes carved from a; COFFER_ERR_TOO_LARGE when a is full. */
COFFER_MUST_CHECK enum coffer_err secret_arena_take(struct secret_arena *a, size_t len, struct secret **out);
/* Wipes and frees the block and every secret in it; NULL is allowed. */
void secret_arena_free(struct secret_arena *a);
/*
 * An arena kept for reuse (one per thread, say, across the opens it
 * serves): *a is wiped whole and emptied (every secret carved from it is
 * gone) and kept when it has room for count secrets of total bytes, else
 * freed and replaced by a new one (*a may be NULL). Nothing of one use
 * survives into the next; the block stays mapped and locked in between.
 */
COFFER_MUST_CHECK enum coffer_err secret_arena_reuse(struct secret_arena **a, size_t count, size_t total);
/*
 * Wipes every secret carved from a and empties it for the next use
 * (secret_arena_reuse); NULL is allowed. The carved secrets are gone with
 * it: a pointer to one must not be used, nor given to secret_free, after.
 */
void secret_arena_wipe(struct secret_arena *a);

#endif
