/* Unit tests of hkdf.h: RFC 5869's HKDF-SHA256 vectors, the size limits and
 * kdf_subkey's construction. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "buf.h"
#include "encode.h"
#include "hkdf.h"
#include "secret.h"

#define VEC_MAX 4096

static json_t *load_vectors(const char *name)
{
	const char *dir = getenv("COFFER_VECTORS_DIR");
	char path[PATH_MAX];
	json_error_t err;

	assert_non_null(dir);
	assert_int_equal(fmt_into(path, sizeof(path), "%s/%s", dir, name), COFFER_OK);
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	if (!root)
		fail_msg("cannot load %s: %s", path, err.text);
	return root;
}

/* Decodes the hex string member key of o into b. */
static void hex_member(json_t *o, const char *key, struct buf *b)
{
	const char *s = json_string_value(json_object_get(o, key));
	assert_non_null(s);
	assert_int_equal(hex_decode_buf(s, strlen(s), b), COFFER_OK);
}

static void test_rfc5869_vectors(void **state)
{
	(void)state;
	json_t *root = load_vectors("hkdf-rfc5869-sha256.json");
	json_t *cases = json_object_get(root, "cases");
	struct buf ikm, salt, info, prk, okm;
	size_t i;
	json_t *c;

	buf_init(&ikm, VEC_MAX), buf_init(&salt, VEC_MAX), buf_init(&info, VEC_MAX);
	buf_init(&prk, VEC_MAX), buf_init(&okm, VEC_MAX);
	assert_int_equal(json_array_size(cases), 3);
	json_array_foreach(cases, i, c) {
		unsigned char got_prk[HKDF_SHA256_LEN];
		unsigned char got_okm[VEC_MAX];
		size_t L = (size_t)json_integer_value(json_object_get(c, "L"));

		hex_member(c, "ikm", &ikm), hex_member(c, "salt", &salt);
		hex_member(c, "info", &info), hex_member(c, "prk", &prk);
		hex_member(c, "okm", &okm);
		assert_int_equal(okm.len, L);

		hkdf_extract(salt.ptr, salt.len, ikm.ptr, ikm.len, got_prk);
		assert_int_equal(prk.len, HKDF_SHA256_LEN);
		assert_memory_equal(got_prk, prk.ptr, HKDF_SHA256_LEN);
		assert_int_equal(hkdf_expand(got_prk, info.ptr, info.len, got_okm, L), COFFER_OK);
		assert_memory_equal(got_okm, okm.ptr, L);

		/* the same through the _parts forms, split in awkward places */
		struct hkdf_part ikm_parts[] = { { ikm.ptr, 1 }, { NULL, 0 },
						 { ikm.ptr + 1, ikm.len - 1 } };
		struct hkdf_part info_parts[] = { { info.ptr, info.len / 2 },
						  { info.ptr + info.len / 2, info.len - info.len / 2 } };
		memset(got_prk, 0, sizeof(got_prk));
		memset(got_okm, 0, sizeof(got_okm));
		hkdf_extract_parts(salt.ptr, salt.len, ikm_parts, 3, got_prk);
		assert_memory_equal(got_prk, prk.ptr, HKDF_SHA256_LEN);
		assert_int_equal(hkdf_expand_parts(got_prk, info_parts, 2, got_okm, L), COFFER_OK);
		assert_memory_equal(got_okm, okm.ptr, L);
	}
	buf_release(&ikm), buf_release(&salt), buf_release(&info);
	buf_release(&prk), buf_release(&okm);
	json_decref(root);
}

static void test_expand_limits(void **state)
{
	(void)state;
	unsigned char prk[HKDF_SHA256_LEN];
	static unsigned char okm[HKDF_SHA256_OKM_MAX + 1];
	unsigned char first[HKDF_SHA256_LEN + 1];

	memset(prk, 7, sizeof(prk));
	memset(okm, 0xaa, sizeof(okm));
	assert_int_equal(hkdf_expand(prk, "x", 1, okm, 0), COFFER_ERR_INVALID);
	assert_int_equal(hkdf_expand(prk, "x", 1, okm, HKDF_SHA256_OKM_MAX + 1), COFFER_ERR_INVALID);
	/* a refused call writes nothing */
	assert_int_equal(okm[0], 0xaa);
	assert_int_equal(hkdf_expand(prk, "x", 1, okm, HKDF_SHA256_OKM_MAX), COFFER_OK);
	assert_int_equal(okm[HKDF_SHA256_OKM_MAX], 0xaa);
	/* a shorter output is a prefix of a longer one (RFC 5869 §2.3) */
	assert_int_equal(hkdf_expand(prk, "x", 1, first, sizeof(first)), COFFER_OK);
	assert_memory_equal(first, okm, sizeof(first));
	/* the last block differs from the first: the counter moves */
	assert_memory_not_equal(okm, okm + HKDF_SHA256_OKM_MAX - HKDF_SHA256_LEN, HKDF_SHA256_LEN);
}

/* kdf_subkey against HKDF computed here, and against a value computed with
 * Python's hmac module (an independent implementation). */
static void test_subkey(void **state)
{
	(void)state;
	unsigned char m[32];
	struct secret *master = NULL, *k1 = NULL, *k2 = NULL, *k3 = NULL, *k4 = NULL;
	unsigned char prk[HKDF_SHA256_LEN], want[32];
	char hex[65];

	for (size_t i = 0; i < sizeof(m); i++)
		m[i] = (unsigned char)i;
	assert_int_equal(secret_from(m, sizeof(m), &master), COFFER_OK);

	assert_int_equal(kdf_subkey(master, "coffer test v1", NULL, 0, 32, &k1), COFFER_OK);
	assert_int_equal(secret_len(k1), 32);
	hkdf_extract(NULL, 0, m, sizeof(m), prk);
	assert_int_equal(hkdf_expand(prk, "coffer test v1", 14, want, 32), COFFER_OK);
	assert_memory_equal(secret_cbytes(k1), want, 32);
	assert_int_equal(hex_encode(secret_cbytes(k1), 32, hex, sizeof(hex)), COFFER_OK);
	assert_string_equal(hex, "b4fe96753a2aa774120c9203f6182d004f6214ad2450384adbeee8283df82719");

	/* with a context: info = label || 0x00 || context */
	assert_int_equal(kdf_subkey(master, "coffer test v1", "app", 3, 32, &k2), COFFER_OK);
	assert_int_equal(hkdf_expand(prk, "coffer test v1\0app", 18, want, 32), COFFER_OK);
	assert_memory_equal(secret_cbytes(k2), want, 32);
	assert_false(secret_equal(k1, k2));

	/* another label, another key; the label/context split is unambiguous */
	assert_int_equal(kdf_subkey(master, "coffer test v2", NULL, 0, 32, &k3), COFFER_OK);
	assert_false(secret_equal(k1, k3));
	assert_int_equal(kdf_subkey(master, "coffer test v1a", "pp", 2, 32, &k4), COFFER_OK);
	assert_false(secret_equal(k2, k4));

	/* refused: short master, empty or long label, zero or huge length */
	struct secret *short_master = NULL, *never = NULL;
	char long_label[KDF_LABEL_MAX + 2];
	memset(long_label, 'a', sizeof(long_label) - 1);
	long_label[sizeof(long_label) - 1] = '\0';
	assert_int_equal(secret_from(m, KDF_MASTER_MIN_LEN - 1, &short_master), COFFER_OK);
	assert_int_equal(kdf_subkey(short_master, "l", NULL, 0, 32, &never), COFFER_ERR_INVALID);
	assert_int_equal(kdf_subkey(master, "", NULL, 0, 32, &never), COFFER_ERR_INVALID);
	assert_int_equal(kdf_subkey(master, long_label, NULL, 0, 32, &never), COFFER_ERR_INVALID);
	assert_int_equal(kdf_subkey(master, "l", NULL, 0, 0, &never), COFFER_ERR_INVALID);
	assert_int_equal(kdf_subkey(master, "l", NULL, 0, HKDF_SHA256_OKM_MAX + 1, &never),
			 COFFER_ERR_INVALID);
	assert_int_equal(kdf_subkey(master, "l", NULL, 5, 32, &never), COFFER_ERR_INVALID);
	assert_null(never);

	secret_free(short_master);
	secret_free(k4), secret_free(k3), secret_free(k2), secret_free(k1);
	secret_free(master);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5869_vectors),
		cmocka_unit_test(test_expand_limits),
		cmocka_unit_test(test_subkey),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
