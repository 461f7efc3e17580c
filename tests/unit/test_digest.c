/* Unit tests of digest.h: the construction checked against HKDF and HMAC
 * computed here and against values from an independent implementation
 * (Python's hmac module), per-app separation, format and comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "digest.h"
#include "encode.h"
#include "hkdf.h"
#include "secret.h"

struct keys {
	struct secret *digest_key;
	struct secret *app1;
	struct secret *app2;
};

static int keys_setup(void **state)
{
	unsigned char k[DIGEST_KEY_LEN];
	struct keys *ks = calloc(1, sizeof(*ks));

	memset(k, 0x42, sizeof(k));
	if (!ks || secret_from(k, sizeof(k), &ks->digest_key) != COFFER_OK ||
	    digest_app_key(ks->digest_key, "app-1", &ks->app1) != COFFER_OK ||
	    digest_app_key(ks->digest_key, "app-2", &ks->app2) != COFFER_OK)
		return -1;
	*state = ks;
	return 0;
}

static int keys_teardown(void **state)
{
	struct keys *ks = *state;
	secret_free(ks->app2);
	secret_free(ks->app1);
	secret_free(ks->digest_key);
	free(ks);
	return 0;
}

static void digest_of(const struct secret *app_key, const char *value, char out[DIGEST_HEX_LEN + 1])
{
	struct secret *v = NULL;
	assert_int_equal(secret_from(value, strlen(value), &v), COFFER_OK);
	assert_int_equal(digest_value(app_key, v, out), COFFER_OK);
	secret_free(v);
}

/* The construction, recomputed from hkdf.h and libsodium's HMAC directly. */
static void test_construction(void **state)
{
	struct keys *ks = *state;
	unsigned char prk[HKDF_SHA256_LEN], app_key[DIGEST_KEY_LEN];
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	char want[DIGEST_HEX_LEN + 1], got[DIGEST_HEX_LEN + 1];
	static const char info[] = "coffer digest v1\0app-1";

	hkdf_extract(NULL, 0, secret_cbytes(ks->digest_key), secret_len(ks->digest_key), prk);
	assert_int_equal(hkdf_expand(prk, info, sizeof(info) - 1, app_key, sizeof(app_key)),
			 COFFER_OK);
	assert_int_equal(secret_len(ks->app1), DIGEST_KEY_LEN);
	assert_memory_equal(secret_cbytes(ks->app1), app_key, sizeof(app_key));

	crypto_auth_hmacsha256(mac, (const unsigned char *)"hunter2", 7, app_key);
	assert_int_equal(hex_encode(mac, DIGEST_BYTES, want, sizeof(want)), COFFER_OK);
	digest_of(ks->app1, "hunter2", got);
	assert_string_equal(got, want);
	sodium_memzero(app_key, sizeof(app_key));
	sodium_memzero(prk, sizeof(prk));
}

/* Known answers from Python: hmac.new(app_key, b"hunter2", sha256) with
 * app_key from RFC 5869 HKDF over the same inputs. */
static void test_known_answers(void **state)
{
	struct keys *ks = *state;
	char got[DIGEST_HEX_LEN + 1];
	char key_hex[2 * DIGEST_KEY_LEN + 1];

	assert_int_equal(hex_encode(secret_cbytes(ks->app1), DIGEST_KEY_LEN, key_hex, sizeof(key_hex)),
			 COFFER_OK);
	assert_string_equal(key_hex, "4253e20d366032b93e194cd446049f216c7a76b21828de944c3e0cca1872b21a");
	digest_of(ks->app1, "hunter2", got);
	assert_string_equal(got, "55ae79dc25f3220f537893b61ac0468c");
	digest_of(ks->app2, "hunter2", got);
	assert_string_equal(got, "25ae6dd1c09120982fa95b6f5cfdbc34");
}

static void test_apps_differ(void **state)
{
	struct keys *ks = *state;
	char d1[DIGEST_HEX_LEN + 1], d2[DIGEST_HEX_LEN + 1], again[DIGEST_HEX_LEN + 1];

	digest_of(ks->app1, "same value", d1);
	digest_of(ks->app2, "same value", d2);
	assert_string_not_equal(d1, d2);
	assert_false(digest_equal(d1, d2));
	digest_of(ks->app1, "same value", again);
	assert_string_equal(d1, again);
	assert_true(digest_equal(d1, again));
}

static void test_format(void **state)
{
	struct keys *ks = *state;
	char d[DIGEST_HEX_LEN + 1];
	const char *values[] = { "", "x", "a much longer value with\nnewlines and \xff bytes" };

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		memset(d, 'Z', sizeof(d));
		digest_of(ks->app1, values[i], d);
		assert_int_equal(strlen(d), DIGEST_HEX_LEN);
		for (size_t j = 0; j < DIGEST_HEX_LEN; j++)
			assert_non_null(strchr("0123456789abcdef", d[j]));
	}
}

static void test_one_byte_change(void **state)
{
	struct keys *ks = *state;
	char a[DIGEST_HEX_LEN + 1], b[DIGEST_HEX_LEN + 1], c[DIGEST_HEX_LEN + 1];
	digest_of(ks->app1, "password1", a);
	digest_of(ks->app1, "password2", b);
	digest_of(ks->app1, "password1 ", c);
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
	assert_false(digest_equal(a, b));
}

static void test_equal(void **state)
{
	(void)state;
	const char *d = "55ae79dc25f3220f537893b61ac0468c";
	char copy[DIGEST_HEX_LEN + 1];
	memcpy(copy, d, sizeof(copy));
	assert_true(digest_equal(d, copy));
	copy[DIGEST_HEX_LEN - 1] = 'd';
	assert_false(digest_equal(d, copy));
	/* malformed digests never compare equal, even to themselves */
	const char *bad[] = { "", "55ae79dc25f3220f537893b61ac0468", "55ae79dc25f3220f537893b61ac0468c0",
			      "55AE79DC25F3220F537893B61AC0468C", "55ae79dc25f3220f537893b61ac0468g" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(digest_equal(bad[i], bad[i]));
	assert_false(digest_equal(NULL, d));
	assert_false(digest_equal(d, NULL));
}

static void test_refusals(void **state)
{
	struct keys *ks = *state;
	struct secret *never = NULL, *short_key = NULL, *v = NULL;
	char long_id[DIGEST_APP_ID_MAX + 2];
	char d[DIGEST_HEX_LEN + 1] = "untouched";

	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_int_equal(digest_app_key(ks->digest_key, "", &never), COFFER_ERR_INVALID);
	assert_int_equal(digest_app_key(ks->digest_key, NULL, &never), COFFER_ERR_INVALID);
	assert_int_equal(digest_app_key(ks->digest_key, long_id, &never), COFFER_ERR_INVALID);
	assert_int_equal(secret_from("short", 5, &short_key), COFFER_OK);
	assert_int_equal(digest_app_key(short_key, "app-1", &never), COFFER_ERR_INVALID);
	assert_null(never);
	assert_int_equal(secret_from("v", 1, &v), COFFER_OK);
	assert_int_equal(digest_value(short_key, v, d), COFFER_ERR_INVALID);
	assert_string_equal(d, "untouched");
	secret_free(v);
	secret_free(short_key);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_construction), cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_apps_differ),  cmocka_unit_test(test_format),
		cmocka_unit_test(test_one_byte_change), cmocka_unit_test(test_equal),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
