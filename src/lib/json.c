#include "json.h"

#include <malloc.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static void set_error(struct json_error *err, size_t position, const char *message)
{
	if (!err)
		return;
	err->position = position;
	err->nul_escape = 0;
	if (str_copy(err->message, sizeof(err->message), message))
		err->message[0] = '\0';
}

/* A field name is quoted in a message only when it is short and plain. */
static int quotable(const char *name)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++, n++)
		if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\' || n >= JSON_ERROR_FIELD_MAX)
			return 0;
	return n > 0;
}

/* "<before> "<key>" <after>", or without the key when it is not quotable. */
static void set_field_error(struct json_error *err, const char *before, const char *key, const char *after)
{
	if (!err)
		return;
	err->position = 0;
	err->nul_escape = 0;
	if (quotable(key) && !fmt_into(err->message, sizeof(err->message), "%s \"%s\"%s%s", before, key,
				       *after ? " " : "", after))
		return;
	if (fmt_into(err->message, sizeof(err->message), "%s%s%s", before, *after ? " " : "", after))
		err->message[0] = '\0';
}

/*
 * Counts nesting before jansson sees the document, so that a hostile
 * document cannot make the parser recurse, and refuses raw NUL bytes
 * (which jansson would otherwise report with the text around them).
 */
static enum coffer_err prescan(const char *data, size_t len, int max_depth, struct json_error *err)
{
	int depth = 0, in_string = 0, escaped = 0;
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (c == '\0') {
			set_error(err, i, "nul byte in document");
			return COFFER_ERR_INVALID;
		}
		if (in_string) {
			if (escaped)
				escaped = 0;
			else if (c == '\\')
				escaped = 1;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == '"') {
			in_string = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth) {
				set_error(err, i, "document nested too deeply");
				return COFFER_ERR_TOO_LARGE;
			}
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return COFFER_OK;
}

/* jansson's texts quote the input, so only its code is used. */
static enum coffer_err from_jansson(const json_error_t *jerr, struct json_error *err)
{
	size_t pos = jerr->position > 0 ? (size_t)jerr->position : 0;
	switch (json_error_code(jerr)) {
	case json_error_out_of_memory:
		set_error(err, pos, "out of memory");
		return COFFER_ERR_NOMEM;
	case json_error_stack_overflow:
		set_error(err, pos, "document nested too deeply");
		return COFFER_ERR_TOO_LARGE;
	case json_error_invalid_utf8:
		set_error(err, pos, "invalid utf-8");
		return COFFER_ERR_INVALID;
	case json_error_premature_end_of_input:
		set_error(err, pos, "unexpected end of document");
		return COFFER_ERR_INVALID;
	case json_error_end_of_input_expected:
		set_error(err, pos, "data after the document");
		return COFFER_ERR_INVALID;
	case json_error_null_character:
		set_error(err, pos, "nul character in document");
		if (err)
			err->nul_escape = 1;
		return COFFER_ERR_INVALID;
	case json_error_null_byte_in_key:
		set_error(err, pos, "nul character in document");
		return COFFER_ERR_INVALID;
	case json_error_duplicate_key:
		set_error(err, pos, "duplicate key");
		return COFFER_ERR_INVALID;
	case json_error_numeric_overflow:
		set_error(err, pos, "number out of range");
		return COFFER_ERR_INVALID;
	case json_error_wrong_type:
		set_error(err, pos, "document must be an object or an array");
		return COFFER_ERR_INVALID;
	default:
		set_error(err, pos, "invalid json");
		return COFFER_ERR_INVALID;
	}
}

enum coffer_err json_parse_limited(const char *data, size_t len, size_t max_bytes, int max_depth, json_t **out,
				   struct json_error *err)
{
	json_error_t jerr;
	json_t *doc;
	enum coffer_err rc;

	if (max_depth < 1 || max_depth > JSON_MAX_DEPTH_LIMIT || (!data && len)) {
		set_error(err, 0, "invalid parser limits");
		return COFFER_ERR_INVALID;
	}
	if (len > max_bytes) {
		set_error(err, max_bytes, "document too large");
		return COFFER_ERR_TOO_LARGE;
	}
	rc = prescan(data, len, max_depth, err);
	if (rc)
		return rc;
	doc = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return from_jansson(&jerr, err);
	*out = doc;
	return COFFER_OK;
}

enum coffer_err json_check_fields(const json_t *obj, const char *const allowed[], struct json_error *err)
{
	const char *key;
	json_t *value;

	if (!json_is_object(obj)) {
		set_error(err, 0, "expected an object");
		return COFFER_ERR_INVALID;
	}
	json_object_foreach((json_t *)obj, key, value) {
		int known = 0;
		for (size_t i = 0; allowed && allowed[i] && !known; i++)
			known = strcmp(allowed[i], key) == 0;
		if (!known) {
			set_field_error(err, "unknown field", key, "");
			return COFFER_ERR_INVALID;
		}
	}
	return COFFER_OK;
}

/* Finds key; *found is NULL for an absent optional field. */
static enum coffer_err lookup(const json_t *obj, const char *key, int required, json_t **found,
			      struct json_error *err)
{
	if (!json_is_object(obj)) {
		set_error(err, 0, "expected an object");
		return COFFER_ERR_INVALID;
	}
	*found = json_object_get(obj, key);
	if (!*found && required) {
		set_field_error(err, "missing field", key, "");
		return COFFER_ERR_INVALID;
	}
	return COFFER_OK;
}

static enum coffer_err wrong_type(const char *key, const char *must_be, struct json_error *err)
{
	set_field_error(err, "field", key, must_be);
	return COFFER_ERR_INVALID;
}

enum coffer_err json_get_string(const json_t *obj, const char *key, int required, const char **str, size_t *len,
				struct json_error *err)
{
	json_t *v;
	enum coffer_err rc = lookup(obj, key, required, &v, err);
	if (rc || !v)
		return rc;
	if (!json_is_string(v))
		return wrong_type(key, "must be a string", err);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (strlen(s) != n) {
		set_field_error(err, "field", key, "contains a nul character");
		return COFFER_ERR_INVALID;
	}
	*str = s;
	if (len)
		*len = n;
	return COFFER_OK;
}

enum coffer_err json_get_int(const json_t *obj, const char *key, int required, int64_t min, int64_t max,
			     int64_t *out, struct json_error *err)
{
	json_t *v;
	enum coffer_err rc = lookup(obj, key, required, &v, err);
	if (rc || !v)
		return rc;
	if (!json_is_integer(v))
		return wrong_type(key, "must be an integer", err);
	json_int_t n = json_integer_value(v);
	if (n < min || n > max) {
		set_field_error(err, "field", key, "out of range");
		return COFFER_ERR_INVALID;
	}
	*out = (int64_t)n;
	return COFFER_OK;
}

enum coffer_err json_get_bool(const json_t *obj, const char *key, int required, int *out, struct json_error *err)
{
	json_t *v;
	enum coffer_err rc = lookup(obj, key, required, &v, err);
	if (rc || !v)
		return rc;
	if (!json_is_boolean(v))
		return wrong_type(key, "must be a boolean", err);
	*out = json_is_true(v);
	return COFFER_OK;
}

enum coffer_err json_get_object(const json_t *obj, const char *key, int required, json_t **out,
				struct json_error *err)
{
	json_t *v;
	enum coffer_err rc = lookup(obj, key, required, &v, err);
	if (rc || !v)
		return rc;
	if (!json_is_object(v))
		return wrong_type(key, "must be an object", err);
	*out = v;
	return COFFER_OK;
}

enum coffer_err json_get_array(const json_t *obj, const char *key, int required, json_t **out,
			       struct json_error *err)
{
	json_t *v;
	enum coffer_err rc = lookup(obj, key, required, &v, err);
	if (rc || !v)
		return rc;
	if (!json_is_array(v))
		return wrong_type(key, "must be an array", err);
	*out = v;
	return COFFER_OK;
}

struct dump_state {
	struct buf *b;
	enum coffer_err rc;
};

static int dump_cb(const char *buffer, size_t size, void *data)
{
	struct dump_state *st = data;
	st->rc = buf_add(st->b, buffer, size);
	return st->rc ? -1 : 0;
}

enum coffer_err json_dump_buf(const json_t *doc, struct buf *b)
{
	struct dump_state st = { .b = b, .rc = COFFER_OK };
	size_t old_len = b->len;

	if (!doc)
		return COFFER_ERR_INVALID;
	if (json_dump_callback(doc, dump_cb, &st, JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
		b->len = old_len;
		if (b->cap)
			b->ptr[old_len] = '\0';
		return st.rc ? st.rc : COFFER_ERR_NOMEM;
	}
	return COFFER_OK;
}

/* jansson allocates with malloc and never reallocs, so wiping on free covers every copy it makes. */
static void wiping_free(void *p)
{
	if (!p)
		return;
	sodium_memzero(p, malloc_usable_size(p));
	free(p);
}

void json_use_wiping_allocator(void)
{
	json_set_alloc_funcs(malloc, wiping_free);
}
