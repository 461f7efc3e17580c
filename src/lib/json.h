/*
 * json.h — bounded JSON parsing and strict field access over jansson.
 *
 * Every document that crosses a trust boundary is parsed with
 * json_parse_limited: it refuses documents over a byte limit or nested
 * deeper than a depth limit (checked by a pre-scan before jansson recurses),
 * duplicate keys, NUL bytes (raw or \u0000), invalid UTF-8, a top level that
 * is not an object or array, and anything after the document. The caller
 * owns the json_t it gets back (json_decref). The getters below borrow from
 * the object they read: strings and sub-objects live as long as it does.
 *
 * Error messages (struct json_error) may name a field, never a value.
 */
#ifndef COFFER_JSON_H
#define COFFER_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* Default limits for documents that come from the network or a file. */
#define JSON_MAX_DEPTH_DEFAULT 32
#define JSON_MAX_BYTES_DEFAULT ((size_t)1 << 20)
/* The deepest limit a caller may ask for (jansson's own recursion limit). */
#define JSON_MAX_DEPTH_LIMIT 2048
/* Room for a message; a longer field name is left out of the message. */
#define JSON_ERROR_MESSAGE_MAX 128
/* Field names longer than this are not quoted in messages. */
#define JSON_ERROR_FIELD_MAX 64

struct json_error {
	size_t position;                       /* byte offset of the fault, 0 if none */
	char message[JSON_ERROR_MESSAGE_MAX];  /* lower-case, no value, no full stop */
	int nul_escape;                        /* 1 if the fault is a \u0000 inside a string */
};

/*
 * Parses data[0..len) into *out. COFFER_ERR_TOO_LARGE when len > max_bytes
 * or when [ and { (outside strings) nest deeper than max_depth (a top-level
 * object is depth 1); COFFER_ERR_INVALID for malformed, duplicate-key,
 * NUL-carrying, non-UTF-8 or trailing-garbage input and for a max_depth
 * outside 1..JSON_MAX_DEPTH_LIMIT; COFFER_ERR_NOMEM. err may be NULL; it is
 * filled on failure.
 */
COFFER_MUST_CHECK enum coffer_err json_parse_limited(const char *data, size_t len, size_t max_bytes, int max_depth,
						     json_t **out, struct json_error *err);

/*
 * COFFER_ERR_INVALID if obj is not an object or has a key that is not in
 * `allowed` (a NULL-terminated list); the message names the first unknown
 * field in document order.
 */
COFFER_MUST_CHECK enum coffer_err json_check_fields(const json_t *obj, const char *const allowed[],
						    struct json_error *err);

/*
 * Strict getters. Each fails with COFFER_ERR_INVALID when obj is not an
 * object, when a required field is missing, or when the field has another
 * type (null is a type: it is refused too). An absent optional field
 * returns COFFER_OK and leaves the out-parameters as they were, so set the
 * default first. err may be NULL.
 */
/* A string without NUL bytes; *str is borrowed from obj, len may be NULL. */
COFFER_MUST_CHECK enum coffer_err json_get_string(const json_t *obj, const char *key, int required, const char **str,
						  size_t *len, struct json_error *err);
/* An integer (not a real) in [min, max]. */
COFFER_MUST_CHECK enum coffer_err json_get_int(const json_t *obj, const char *key, int required, int64_t min,
					       int64_t max, int64_t *out, struct json_error *err);
/* true or false; *out is 1 or 0. */
COFFER_MUST_CHECK enum coffer_err json_get_bool(const json_t *obj, const char *key, int required, int *out,
						struct json_error *err);
/* An object or an array, borrowed from obj. */
COFFER_MUST_CHECK enum coffer_err json_get_object(const json_t *obj, const char *key, int required, json_t **out,
						  struct json_error *err);
COFFER_MUST_CHECK enum coffer_err json_get_array(const json_t *obj, const char *key, int required, json_t **out,
						 struct json_error *err);

/*
 * Appends the compact serialisation of doc to b. COFFER_ERR_TOO_LARGE if it
 * does not fit in b->max (b is then as it was).
 */
COFFER_MUST_CHECK enum coffer_err json_dump_buf(const json_t *doc, struct buf *b);

/*
 * Makes jansson wipe every block it frees (sodium_memzero over the whole
 * usable size, then free), process-wide, for daemons whose documents carry
 * values. Call it once at start, before any JSON is made and before other
 * threads exist (json_set_alloc_funcs is not thread-safe).
 */
void json_use_wiping_allocator(void);

#endif
