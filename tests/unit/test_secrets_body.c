/* Unit tests of the secrets-set body check (api_secrets_body, h_secrets.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "api.h"

static enum coffer_err check(const char *body, json_t **doc, char msg[API_BODY_MSG_SIZE])
{
	return api_secrets_body(body, strlen(body), API_BODY_SECRETS, doc, msg);
}

static void test_known_fields(void **state)
{
	(void)state;
	char msg[API_BODY_MSG_SIZE];
	json_t *doc = NULL;
	assert_int_equal(check("{\"secrets\":{\"A\":\"x\"},\"stage\":true}", &doc, msg), COFFER_OK);
	assert_non_null(doc);
	json_decref(doc);
	assert_int_equal(check("{\"secrets\":{\"A\":\"x\"},\"other\":1}", &doc, msg), COFFER_ERR_INVALID);
	assert_null(doc);
	assert_non_null(strstr(msg, "unknown field"));
	assert_int_equal(check("{\"secrets\":{}", &doc, msg), COFFER_ERR_INVALID);
	assert_non_null(strstr(msg, "at byte"));
	assert_int_equal(check("[]", &doc, msg), COFFER_ERR_INVALID);
	assert_null(doc);
}

/* A \u0000 passes the parse (the handler names the secret that holds it), never the field check. */
static void test_nul_keeps_field_check(void **state)
{
	(void)state;
	char msg[API_BODY_MSG_SIZE];
	json_t *doc = NULL;
	assert_int_equal(check("{\"secrets\":{\"A\":\"x\\u0000y\"}}", &doc, msg), COFFER_OK);
	assert_non_null(doc);
	json_decref(doc);
	const char *bad[] = {
		"{\"secrets\":{\"A\":\"x\"},\"other\":\"\\u0000\"}",
		"{\"other\":\"\\u0000\",\"secrets\":{\"A\":\"x\"}}",
		"{\"secrets\":{\"A\":\"\\u0000\"},\"stage\":false,\"x\":null}",
		"[\"\\u0000\"]",
		"{\"secrets\":{\"A\":\"\\u0000\"},\"secrets\":{}}",
		NULL,
	};
	for (int i = 0; bad[i]; i++) {
		doc = NULL;
		assert_int_equal(check(bad[i], &doc, msg), COFFER_ERR_INVALID);
		assert_null(doc);
		assert_non_null(strstr(msg, "invalid request body"));
	}
}

/* A raw NUL byte is refused, wherever it is: jansson would read past one after a number (found by fuzz_body). */
static void test_raw_nul_refused(void **state)
{
	(void)state;
	char msg[API_BODY_MSG_SIZE];
	static const char body[] = "{\"secrets\":{\"C\":{\"4\":[5\0]}}}";
	static const char also[] = "{\"secrets\":{\"A\":\"\\u0000\"}}\0";
	json_t *doc = NULL;
	assert_int_equal(api_secrets_body(body, sizeof(body) - 1, API_BODY_SECRETS, &doc, msg), COFFER_ERR_INVALID);
	assert_null(doc);
	assert_non_null(strstr(msg, "nul byte in document"));
	assert_int_equal(api_secrets_body(also, sizeof(also) - 1, API_BODY_SECRETS, &doc, msg), COFFER_ERR_INVALID);
	assert_null(doc);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_fields),
		cmocka_unit_test(test_nul_keeps_field_check),
		cmocka_unit_test(test_raw_nul_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
