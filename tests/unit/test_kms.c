/* Unit tests of kms.h: the envelopes (version prefix, each body), sign and
 * verify of both signing types, aead round trips, refusals of tampering,
 * of another key version's AAD and of sizes past the limit, and the
 * binding of a wrapped key to its app, name, type and version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "buf.h"
#include "hkdf.h"
#include "keywrap.h"
#include "kms.h"
#include "secret.h"

#define OUT_MAX (KMS_ENVELOPE_MAX + 64)

static struct secret *key_of(unsigned char fill)
{
	unsigned char k[KMS_KEY_LEN];
	struct secret *s = NULL;
	memset(k, fill, sizeof(k));
	assert_int_equal(secret_from(k, sizeof(k), &s), COFFER_OK);
	return s;
}

static void test_types_and_names(void **state)
{
	enum kms_type t;
	(void)state;
	assert_int_equal(kms_type_parse("ed25519", &t), 0);
	assert_int_equal(t, KMS_ED25519);
	assert_int_equal(kms_type_parse("hmac-sha256", &t), 0);
	assert_int_equal(t, KMS_HMAC_SHA256);
	assert_int_equal(kms_type_parse("aead", &t), 0);
	assert_int_equal(t, KMS_AEAD);
	assert_int_equal(kms_type_parse("rsa", &t), -1);
	assert_int_equal(kms_type_parse(NULL, &t), -1);
	assert_string_equal(kms_type_name(KMS_AEAD), "aead");
	assert_true(kms_name_ok("sig.v2_main-key"));
	assert_false(kms_name_ok(""));
	assert_false(kms_name_ok("a/b"));
	assert_false(kms_name_ok("a b"));
	char n[KMS_NAME_MAX + 2];
	memset(n, 'k', sizeof(n));
	n[KMS_NAME_MAX] = '\0';
	assert_true(kms_name_ok(n)); /* 64: the edge */
	n[KMS_NAME_MAX] = 'k';
	n[KMS_NAME_MAX + 1] = '\0';
	assert_false(kms_name_ok(n)); /* 65 */
}

static void test_envelope_version(void **state)
{
	static const unsigned char v7[] = { 0, 0, 0, 7, 1, 2 }, v0[] = { 0, 0, 0, 0, 1 };
	uint32_t v = 0;
	(void)state;
	assert_int_equal(kms_envelope_version(v7, sizeof(v7), &v), COFFER_OK);
	assert_int_equal(v, 7);
	assert_int_equal(kms_envelope_version(v0, sizeof(v0), &v), COFFER_ERR_INVALID);
	assert_int_equal(kms_envelope_version(v7, 3, &v), COFFER_ERR_INVALID);
	assert_int_equal(kms_envelope_version(NULL, 0, &v), COFFER_ERR_INVALID);
}

static void test_hmac(void **state)
{
	struct secret *k = key_of(1), *other = key_of(2);
	struct buf env;
	unsigned char want[KMS_HMAC_LEN];
	(void)state;
	buf_init(&env, OUT_MAX);
	assert_int_equal(kms_sign(KMS_HMAC_SHA256, k, 3, "data", 4, &env), COFFER_OK);
	assert_int_equal(env.len, KMS_VERSION_LEN + KMS_HMAC_LEN);
	assert_memory_equal(env.ptr, "\0\0\0\3", 4);
	/* the body is plain HMAC-SHA256 */
	crypto_auth_hmacsha256(want, (const unsigned char *)"data", 4, secret_cbytes(k));
	assert_memory_equal(env.ptr + 4, want, sizeof(want));
	assert_int_equal(kms_verify(KMS_HMAC_SHA256, k, env.ptr, env.len, "data", 4), COFFER_OK);
	assert_int_equal(kms_verify(KMS_HMAC_SHA256, k, env.ptr, env.len, "datA", 4), COFFER_ERR_CRYPTO);
	assert_int_equal(kms_verify(KMS_HMAC_SHA256, other, env.ptr, env.len, "data", 4), COFFER_ERR_CRYPTO);
	assert_int_equal(kms_verify(KMS_HMAC_SHA256, k, env.ptr, env.len - 1, "data", 4), COFFER_ERR_CRYPTO);
	env.ptr[10] ^= 1;
	assert_int_equal(kms_verify(KMS_HMAC_SHA256, k, env.ptr, env.len, "data", 4), COFFER_ERR_CRYPTO);
	buf_release(&env);
	secret_free(other);
	secret_free(k);
}

static void test_ed25519(void **state)
{
	struct secret *k = key_of(3);
	unsigned char pk[KMS_PUBLIC_KEY_LEN], other_pk[KMS_PUBLIC_KEY_LEN];
	struct secret *other = key_of(4);
	struct buf env;
	(void)state;
	buf_init(&env, OUT_MAX);
	assert_int_equal(kms_public_key(k, pk), COFFER_OK);
	assert_int_equal(kms_public_key(other, other_pk), COFFER_OK);
	assert_int_equal(kms_sign(KMS_ED25519, k, 1, "hello", 5, &env), COFFER_OK);
	assert_int_equal(env.len, KMS_VERSION_LEN + KMS_ED25519_SIG_LEN);
	/* the body is an RFC 8032 signature any implementation checks */
	assert_int_equal(crypto_sign_verify_detached((const unsigned char *)env.ptr + 4, (const unsigned char *)"hello",
						     5, pk),
			 0);
	assert_int_equal(kms_verify_public(pk, env.ptr, env.len, "hello", 5), COFFER_OK);
	assert_int_equal(kms_verify(KMS_ED25519, k, env.ptr, env.len, "hello", 5), COFFER_OK);
	assert_int_equal(kms_verify_public(other_pk, env.ptr, env.len, "hello", 5), COFFER_ERR_CRYPTO);
	assert_int_equal(kms_verify_public(pk, env.ptr, env.len, "hellO", 5), COFFER_ERR_CRYPTO);
	assert_int_equal(kms_verify_public(pk, env.ptr, env.len - 1, "hello", 5), COFFER_ERR_CRYPTO);
	/* aead keys do not sign */
	assert_int_equal(kms_sign(KMS_AEAD, k, 1, "hello", 5, &env), COFFER_ERR_INVALID);
	buf_release(&env);
	secret_free(other);
	secret_free(k);
}

static void test_aead(void **state)
{
	struct secret *k = key_of(5), *pt = NULL;
	struct buf aad, aad2, aad_other, env;
	(void)state;
	buf_init(&aad, KMS_AAD_MAX);
	buf_init(&aad2, KMS_AAD_MAX);
	buf_init(&aad_other, KMS_AAD_MAX);
	buf_init(&env, OUT_MAX);
	assert_int_equal(kms_wrap_aad("app1", "box", KMS_AEAD, 1, &aad), COFFER_OK);
	assert_int_equal(kms_wrap_aad("app1", "box", KMS_AEAD, 2, &aad2), COFFER_OK);
	assert_int_equal(kms_wrap_aad("app2", "box", KMS_AEAD, 1, &aad_other), COFFER_OK);
	assert_int_equal(kms_encrypt(k, 1, &aad, "secret text", 11, &env), COFFER_OK);
	assert_int_equal(env.len, KMS_VERSION_LEN + KMS_NONCE_LEN + 11 + KMS_TAG_LEN);
	assert_memory_equal(env.ptr, "\0\0\0\1", 4);
	assert_int_equal(kms_decrypt(k, &aad, env.ptr, env.len, &pt), COFFER_OK);
	assert_int_equal(secret_len(pt), 11);
	assert_memory_equal(secret_cbytes(pt), "secret text", 11);
	secret_free(pt);
	pt = NULL;
	/* another version's or another app's associated data, a flipped bit, a cut: nothing opens */
	assert_int_equal(kms_decrypt(k, &aad2, env.ptr, env.len, &pt), COFFER_ERR_CRYPTO);
	assert_int_equal(kms_decrypt(k, &aad_other, env.ptr, env.len, &pt), COFFER_ERR_CRYPTO);
	assert_int_equal(kms_decrypt(k, &aad, env.ptr, KMS_VERSION_LEN + KMS_NONCE_LEN + KMS_TAG_LEN - 1, &pt),
			 COFFER_ERR_CRYPTO);
	env.ptr[env.len - 1] ^= 1;
	assert_int_equal(kms_decrypt(k, &aad, env.ptr, env.len, &pt), COFFER_ERR_CRYPTO);
	env.ptr[env.len - 1] ^= 1;
	env.ptr[KMS_VERSION_LEN] ^= 1; /* the nonce */
	assert_int_equal(kms_decrypt(k, &aad, env.ptr, env.len, &pt), COFFER_ERR_CRYPTO);
	assert_null(pt);
	/* empty data: a ciphertext of nonce and tag only, which opens to nothing */
	assert_int_equal(kms_encrypt(k, 1, &aad, "", 0, &env), COFFER_OK);
	assert_int_equal(env.len, KMS_VERSION_LEN + KMS_NONCE_LEN + KMS_TAG_LEN);
	assert_int_equal(kms_decrypt(k, &aad, env.ptr, env.len, &pt), COFFER_OK);
	assert_int_equal(secret_len(pt), 0);
	secret_free(pt);
	pt = NULL;
	/* two encryptions differ (a random nonce each) */
	struct buf env2;
	buf_init(&env2, OUT_MAX);
	assert_int_equal(kms_encrypt(k, 1, &aad, "secret text", 11, &env2), COFFER_OK);
	assert_int_equal(kms_encrypt(k, 1, &aad, "secret text", 11, &env), COFFER_OK);
	assert_memory_not_equal(env.ptr, env2.ptr, env.len);
	buf_release(&env2);
	buf_release(&env);
	buf_release(&aad_other);
	buf_release(&aad2);
	buf_release(&aad);
	secret_free(k);
}

static void test_limits(void **state)
{
	struct secret *k = key_of(6);
	unsigned char *data = calloc(1, KMS_DATA_MAX + 1);
	struct buf env, aad;
	(void)state;
	assert_non_null(data);
	buf_init(&env, OUT_MAX);
	buf_init(&aad, KMS_AAD_MAX);
	assert_int_equal(kms_wrap_aad("a", "k", KMS_AEAD, 1, &aad), COFFER_OK);
	assert_int_equal(kms_sign(KMS_ED25519, k, 1, data, KMS_DATA_MAX, &env), COFFER_OK);
	assert_int_equal(kms_sign(KMS_ED25519, k, 1, data, KMS_DATA_MAX + 1, &env), COFFER_ERR_TOO_LARGE);
	assert_int_equal(kms_sign(KMS_HMAC_SHA256, k, 1, data, KMS_DATA_MAX + 1, &env), COFFER_ERR_TOO_LARGE);
	assert_int_equal(kms_encrypt(k, 1, &aad, data, KMS_DATA_MAX, &env), COFFER_OK);
	assert_int_equal(env.len, KMS_ENVELOPE_MAX);
	assert_int_equal(kms_encrypt(k, 1, &aad, data, KMS_DATA_MAX + 1, &env), COFFER_ERR_TOO_LARGE);
	assert_int_equal(kms_sign(KMS_HMAC_SHA256, k, 0, data, 1, &env), COFFER_ERR_INVALID); /* version 0 */
	buf_release(&aad);
	buf_release(&env);
	free(data);
	secret_free(k);
}

/* A wrapped key opens only with the AAD of its own app, name, type and version. */
static void test_wrap_binding(void **state)
{
	unsigned char m[32];
	struct secret *master = NULL, *sub = NULL, *key = key_of(7), *back = NULL;
	struct buf aad, wrapped;
	(void)state;
	memset(m, 9, sizeof(m));
	buf_init(&aad, KMS_AAD_MAX);
	buf_init(&wrapped, 256);
	assert_int_equal(secret_from(m, sizeof(m), &master), COFFER_OK);
	assert_int_equal(keywrap_derive(master, KDF_LABEL_KMS_KEY_WRAP, &sub), COFFER_OK);
	assert_int_equal(kms_wrap_aad("app1", "sig", KMS_ED25519, 1, &aad), COFFER_OK);
	assert_int_equal(keywrap_seal(sub, aad.ptr, aad.len, key, &wrapped), COFFER_OK);
	assert_int_equal(wrapped.len, KEYWRAP_OVERHEAD + KMS_KEY_LEN);
	assert_int_equal(keywrap_open(sub, aad.ptr, aad.len, wrapped.ptr, wrapped.len, &back), COFFER_OK);
	assert_memory_equal(secret_cbytes(back), secret_cbytes(key), KMS_KEY_LEN);
	secret_free(back);
	back = NULL;
	static const struct {
		const char *app, *name;
		enum kms_type t;
		uint32_t v;
	} others[] = {
		{ "app1", "sig", KMS_ED25519, 2 }, { "app2", "sig", KMS_ED25519, 1 },
		{ "app1", "sig2", KMS_ED25519, 1 }, { "app1", "sig", KMS_HMAC_SHA256, 1 },
		{ "app1s", "ig", KMS_ED25519, 1 }, /* the fields are length-prefixed */
	};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		assert_int_equal(kms_wrap_aad(others[i].app, others[i].name, others[i].t, others[i].v, &aad), COFFER_OK);
		assert_int_equal(keywrap_open(sub, aad.ptr, aad.len, wrapped.ptr, wrapped.len, &back), COFFER_ERR_CRYPTO);
		assert_null(back);
	}
	/* the app keys' wrap subkey is another key */
	struct secret *app_sub = NULL;
	assert_int_equal(keywrap_derive(master, KEYWRAP_LABEL_APP_KEY, &app_sub), COFFER_OK);
	assert_int_equal(kms_wrap_aad("app1", "sig", KMS_ED25519, 1, &aad), COFFER_OK);
	assert_int_equal(keywrap_open(app_sub, aad.ptr, aad.len, wrapped.ptr, wrapped.len, &back), COFFER_ERR_CRYPTO);
	assert_int_equal(kms_wrap_aad("app1", "bad/name", KMS_ED25519, 1, &aad), COFFER_ERR_INVALID);
	assert_int_equal(kms_wrap_aad("app1", "sig", KMS_ED25519, 0, &aad), COFFER_ERR_INVALID);
	secret_free(app_sub);
	buf_release(&wrapped);
	buf_release(&aad);
	secret_free(key);
	secret_free(sub);
	secret_free(master);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types_and_names), cmocka_unit_test(test_envelope_version),
		cmocka_unit_test(test_hmac),		cmocka_unit_test(test_ed25519),
		cmocka_unit_test(test_aead),		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_wrap_binding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
