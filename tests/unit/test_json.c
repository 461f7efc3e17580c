/*
 * test_json.c — bounded parsing and strict getters of json.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "json.h"

/* n arrays nested: "[[[...]]]". */
static char *nested(int n, size_t *len)
{
	char *s = malloc((size_t)n * 2 + 1);
	assert_non_null(s);
	memset(s, '[', (size_t)n);
	memset(s + n, ']', (size_t)n);
	s[n * 2] = '\0';
	*len = (size_t)n * 2;
	return s;
}

static enum coffer_err parse(const char *s, json_t **out, struct json_error *err)
{
	return json_parse_limited(s, strlen(s), JSON_MAX_BYTES_DEFAULT, JSON_MAX_DEPTH_DEFAULT, out, err);
}

static void test_depth_1000_refused(void **state)
{
	(void)state;
	size_t len;
	char *s = nested(1000, &len);
	json_t *doc = NULL;
	struct json_error err;
	assert_int_equal(json_parse_limited(s, len, JSON_MAX_BYTES_DEFAULT, JSON_MAX_DEPTH_DEFAULT, &doc, &err),
			 COFFER_ERR_TOO_LARGE);
	assert_null(doc);
	/* refused by the pre-scan at the first bracket past the limit */
	assert_int_equal(err.position, JSON_MAX_DEPTH_DEFAULT);
	assert_string_equal(err.message, "document nested too deeply");
	free(s);
}

static void test_depth_limit_edge(void **state)
{
	(void)state;
	size_t len;
	json_t *doc = NULL;
	char *s = nested(JSON_MAX_DEPTH_DEFAULT, &len);
	assert_int_equal(json_parse_limited(s, len, JSON_MAX_BYTES_DEFAULT, JSON_MAX_DEPTH_DEFAULT, &doc, NULL),
			 COFFER_OK);
	assert_true(json_is_array(doc));
	json_decref(doc);
	free(s);

	doc = NULL;
	s = nested(JSON_MAX_DEPTH_DEFAULT + 1, &len);
	assert_int_equal(json_parse_limited(s, len, JSON_MAX_BYTES_DEFAULT, JSON_MAX_DEPTH_DEFAULT, &doc, NULL),
			 COFFER_ERR_TOO_LARGE);
	assert_null(doc);
	free(s);

	/* objects count as well as arrays: depth 3 with a limit of 3 and 2 */
	const char *mixed = "{\"a\":[{\"b\":1}]}";
	assert_int_equal(json_parse_limited(mixed, strlen(mixed), 100, 3, &doc, NULL), COFFER_OK);
	json_decref(doc);
	assert_int_equal(json_parse_limited(mixed, strlen(mixed), 100, 2, &doc, NULL), COFFER_ERR_TOO_LARGE);
}

static void test_brackets_in_strings_not_counted(void **state)
{
	(void)state;
	json_t *doc = NULL;
	const char *s = "{\"k\":\"[[[[{{{{\\\"[[[[\",\"[[[[\":\"}}]]\"}";
	assert_int_equal(json_parse_limited(s, strlen(s), 1000, 1, &doc, NULL), COFFER_OK);
	assert_string_equal(json_string_value(json_object_get(doc, "k")), "[[[[{{{{\"[[[[");
	json_decref(doc);
}

static void test_size_limit_edge(void **state)
{
	(void)state;
	json_t *doc = NULL;
	struct json_error err;
	const char *s = "{\"a\":\"0123456789\"}"; /* 18 bytes */
	size_t n = strlen(s);
	assert_int_equal(n, 18);
	assert_int_equal(json_parse_limited(s, n, n, JSON_MAX_DEPTH_DEFAULT, &doc, NULL), COFFER_OK);
	json_decref(doc);
	doc = NULL;
	assert_int_equal(json_parse_limited(s, n, n - 1, JSON_MAX_DEPTH_DEFAULT, &doc, &err), COFFER_ERR_TOO_LARGE);
	assert_null(doc);
	assert_string_equal(err.message, "document too large");
}

static void test_duplicate_keys_refused(void **state)
{
	(void)state;
	json_t *doc = NULL;
	struct json_error err;
	assert_int_equal(parse("{\"a\":1,\"a\":\"VALUECANARY\"}", &doc, &err), COFFER_ERR_INVALID);
	assert_null(doc);
	assert_string_equal(err.message, "duplicate key");
	assert_null(strstr(err.message, "VALUECANARY"));
	/* the same key at different levels is fine */
	assert_int_equal(parse("{\"a\":{\"a\":1}}", &doc, NULL), COFFER_OK);
	json_decref(doc);
}

static void test_trailing_garbage_refused(void **state)
{
	(void)state;
	json_t *doc = NULL;
	struct json_error err;
	assert_int_equal(parse("{\"a\":1} x", &doc, &err), COFFER_ERR_INVALID);
	assert_string_equal(err.message, "data after the document");
	assert_int_equal(parse("{\"a\":1}{}", &doc, NULL), COFFER_ERR_INVALID);
	assert_int_equal(parse("[1],", &doc, NULL), COFFER_ERR_INVALID);
	assert_null(doc);
	assert_int_equal(parse("{\"a\":1} \n\t ", &doc, NULL), COFFER_OK);
	json_decref(doc);
}

static void test_nul_and_encoding_refused(void **state)
{
	(void)state;
	json_t *doc = NULL;
	struct json_error err;
	const char raw[] = "{\"a\":\"x\0y\"}";
	assert_int_equal(json_parse_limited(raw, sizeof(raw) - 1, 100, 4, &doc, &err), COFFER_ERR_INVALID);
	assert_int_equal(err.position, 7);
	assert_int_equal(parse("{\"a\":\"x\\u0000y\"}", &doc, NULL), COFFER_ERR_INVALID);
	assert_int_equal(parse("{\"a\\u0000\":1}", &doc, NULL), COFFER_ERR_INVALID);
	assert_int_equal(parse("{\"a\":\"\xff\xfe\"}", &doc, &err), COFFER_ERR_INVALID);
	assert_string_equal(err.message, "invalid utf-8");
	/* a scalar at the top level, an empty document, bad syntax */
	assert_int_equal(parse("1", &doc, NULL), COFFER_ERR_INVALID);
	assert_int_equal(parse("", &doc, NULL), COFFER_ERR_INVALID);
	assert_int_equal(parse("{\"a\":}", &doc, NULL), COFFER_ERR_INVALID);
	assert_null(doc);
	/* limits out of range are refused */
	assert_int_equal(json_parse_limited("{}", 2, 10, 0, &doc, NULL), COFFER_ERR_INVALID);
	assert_int_equal(json_parse_limited("{}", 2, 10, JSON_MAX_DEPTH_LIMIT + 1, &doc, NULL), COFFER_ERR_INVALID);
	assert_null(doc);
}

static void test_unknown_field_named(void **state)
{
	(void)state;
	json_t *doc = NULL;
	struct json_error err;
	static const char *const allowed[] = { "name", "value", NULL };
	assert_int_equal(parse("{\"name\":\"A\",\"vaule\":\"VALUECANARY\",\"zzz\":1}", &doc, NULL), COFFER_OK);
	assert_int_equal(json_check_fields(doc, allowed, &err), COFFER_ERR_INVALID);
	assert_string_equal(err.message, "unknown field \"vaule\"");
	json_decref(doc);

	assert_int_equal(parse("{\"name\":\"A\",\"value\":\"B\"}", &doc, NULL), COFFER_OK);
	assert_int_equal(json_check_fields(doc, allowed, &err), COFFER_OK);
	json_decref(doc);

	/* an unprintable or huge name is not quoted back */
	assert_int_equal(parse("{\"bad\\nname\":1}", &doc, NULL), COFFER_OK);
	assert_int_equal(json_check_fields(doc, allowed, &err), COFFER_ERR_INVALID);
	assert_string_equal(err.message, "unknown field");
	json_decref(doc);

	assert_int_equal(parse("[1]", &doc, NULL), COFFER_OK);
	assert_int_equal(json_check_fields(doc, allowed, &err), COFFER_ERR_INVALID);
	json_decref(doc);
}

static void test_getters_strict(void **state)
{
	(void)state;
	json_t *doc = NULL, *sub = NULL;
	struct json_error err;
	const char *str = "default";
	size_t len = 99;
	int64_t n = -7;
	int b = 5;

	assert_int_equal(parse("{\"s\":\"hello\",\"i\":42,\"r\":1.5,\"t\":true,\"z\":null,\"o\":{},\"a\":[],"
			       "\"v\":\"VALUECANARY\"}",
			       &doc, NULL),
			 COFFER_OK);

	assert_int_equal(json_get_string(doc, "s", 1, &str, &len, &err), COFFER_OK);
	assert_string_equal(str, "hello");
	assert_int_equal(len, 5);

	/* wrong types refused, naming the field and never the value */
	str = "default";
	assert_int_equal(json_get_string(doc, "i", 1, &str, &len, &err), COFFER_ERR_INVALID);
	assert_string_equal(err.message, "field \"i\" must be a string");
	assert_string_equal(str, "default");
	assert_int_equal(json_get_string(doc, "z", 0, &str, &len, &err), COFFER_ERR_INVALID);
	assert_int_equal(json_get_int(doc, "v", 1, 0, 100, &n, &err), COFFER_ERR_INVALID);
	assert_string_equal(err.message, "field \"v\" must be an integer");
	assert_null(strstr(err.message, "VALUECANARY"));
	assert_int_equal(json_get_int(doc, "r", 1, 0, 100, &n, &err), COFFER_ERR_INVALID);
	assert_int_equal(json_get_bool(doc, "s", 1, &b, &err), COFFER_ERR_INVALID);
	assert_int_equal(json_get_object(doc, "a", 1, &sub, &err), COFFER_ERR_INVALID);
	assert_int_equal(json_get_array(doc, "o", 1, &sub, &err), COFFER_ERR_INVALID);
	assert_int_equal(n, -7);
	assert_int_equal(b, 5);
	assert_null(sub);

	/* ranges */
	assert_int_equal(json_get_int(doc, "i", 1, 0, 41, &n, &err), COFFER_ERR_INVALID);
	assert_string_equal(err.message, "field \"i\" out of range");
	assert_int_equal(json_get_int(doc, "i", 1, 42, 42, &n, &err), COFFER_OK);
	assert_int_equal(n, 42);

	assert_int_equal(json_get_bool(doc, "t", 1, &b, &err), COFFER_OK);
	assert_int_equal(b, 1);
	assert_int_equal(json_get_object(doc, "o", 1, &sub, &err), COFFER_OK);
	assert_true(json_is_object(sub));
	assert_int_equal(json_get_array(doc, "a", 1, &sub, &err), COFFER_OK);
	assert_true(json_is_array(sub));

	/* missing: required refused, optional leaves the default */
	assert_int_equal(json_get_string(doc, "nope", 1, &str, &len, &err), COFFER_ERR_INVALID);
	assert_string_equal(err.message, "missing field \"nope\"");
	str = "default";
	assert_int_equal(json_get_string(doc, "nope", 0, &str, &len, &err), COFFER_OK);
	assert_string_equal(str, "default");
	n = 3;
	assert_int_equal(json_get_int(doc, "nope", 0, 0, 10, &n, &err), COFFER_OK);
	assert_int_equal(n, 3);

	/* not an object */
	assert_int_equal(json_get_string(json_object_get(doc, "a"), "s", 1, &str, &len, &err), COFFER_ERR_INVALID);
	json_decref(doc);

	/* a string built with a NUL inside is refused by the getter */
	doc = json_object();
	assert_non_null(doc);
	assert_int_equal(json_object_set_new(doc, "k", json_stringn("a\0b", 3)), 0);
	assert_int_equal(json_get_string(doc, "k", 1, &str, &len, &err), COFFER_ERR_INVALID);
	json_decref(doc);
}

static void test_dump_buf(void **state)
{
	(void)state;
	struct buf b;
	json_t *doc = json_pack("{s:s,s:i,s:[i,i]}", "a", "x", "b", 2, "c", 1, 2);
	assert_non_null(doc);

	buf_init(&b, 64);
	assert_int_equal(buf_adds(&b, "<"), COFFER_OK);
	assert_int_equal(json_dump_buf(doc, &b), COFFER_OK);
	assert_string_equal(b.ptr, "<{\"a\":\"x\",\"b\":2,\"c\":[1,2]}");
	buf_release(&b);

	buf_init(&b, 10);
	assert_int_equal(buf_adds(&b, "<"), COFFER_OK);
	assert_int_equal(json_dump_buf(doc, &b), COFFER_ERR_TOO_LARGE);
	assert_string_equal(b.ptr, "<");
	assert_int_equal(b.len, 1);
	buf_release(&b);
	json_decref(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_depth_1000_refused),
		cmocka_unit_test(test_depth_limit_edge),
		cmocka_unit_test(test_brackets_in_strings_not_counted),
		cmocka_unit_test(test_size_limit_edge),
		cmocka_unit_test(test_duplicate_keys_refused),
		cmocka_unit_test(test_trailing_garbage_refused),
		cmocka_unit_test(test_nul_and_encoding_refused),
		cmocka_unit_test(test_unknown_field_named),
		cmocka_unit_test(test_getters_strict),
		cmocka_unit_test(test_dump_buf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
