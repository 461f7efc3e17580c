/* Unit tests of keywrap.h: subkey derivation (against an independent value),
 * round trips, and refusal of every kind of tampering and truncation. */
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
#include "encode.h"
#include "keywrap.h"
#include "secret.h"

#define WRAP_MAX 4096

static const char aad[] = "app=0f3c key=3";

struct fixture {
	struct secret *master;
	struct secret *subkey;
	struct secret *pt;
	struct buf wrapped;
};

static int fx_setup(void **state)
{
	unsigned char m[32];
	struct fixture *f = calloc(1, sizeof(*f));

	for (size_t i = 0; i < sizeof(m); i++)
		m[i] = (unsigned char)i;
	if (!f)
		return -1;
	buf_init(&f->wrapped, WRAP_MAX);
	if (secret_from(m, sizeof(m), &f->master) != COFFER_OK ||
	    keywrap_derive(f->master, KEYWRAP_LABEL_APP_KEY, &f->subkey) != COFFER_OK ||
	    secret_new(32, &f->pt) != COFFER_OK)
		return -1;
	randombytes_buf(secret_bytes(f->pt), 32);
	if (keywrap_seal(f->subkey, aad, strlen(aad), f->pt, &f->wrapped) != COFFER_OK)
		return -1;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fixture *f = *state;
	buf_release(&f->wrapped);
	secret_free(f->pt);
	secret_free(f->subkey);
	secret_free(f->master);
	free(f);
	return 0;
}

/* Opens w with f's subkey and the given aad; checks the plaintext on success
 * and that nothing is written on failure. */
static enum coffer_err open_with(struct fixture *f, const struct secret *key, const char *a,
				 const void *w, size_t len)
{
	struct secret *pt = NULL;
	enum coffer_err rc = keywrap_open(key, a, strlen(a), w, len, &pt);
	if (rc == COFFER_OK)
		assert_true(secret_equal(pt, f->pt));
	else
		assert_null(pt);
	secret_free(pt);
	return rc;
}

/* The subkey is HKDF-SHA256(salt "", master, "coffer app-key wrap v1", 32),
 * here as computed by Python's hmac module. */
static void test_derive(void **state)
{
	struct fixture *f = *state;
	char hex[2 * KEYWRAP_KEY_LEN + 1];
	struct secret *other = NULL;

	assert_string_equal(KEYWRAP_LABEL_APP_KEY, "coffer app-key wrap v1");
	assert_int_equal(secret_len(f->subkey), KEYWRAP_KEY_LEN);
	assert_int_equal(hex_encode(secret_cbytes(f->subkey), KEYWRAP_KEY_LEN, hex, sizeof(hex)),
			 COFFER_OK);
	assert_string_equal(hex, "83fe5f036e1b3945b1a28dad8e4e009257af580ab38b9d6156542b2aab16a919");
	/* another label, another subkey */
	assert_int_equal(keywrap_derive(f->master, "coffer app-key wrap v2", &other), COFFER_OK);
	assert_false(secret_equal(other, f->subkey));
	assert_int_equal(open_with(f, other, aad, f->wrapped.ptr, f->wrapped.len), COFFER_ERR_CRYPTO);
	secret_free(other);
}

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(f->wrapped.len, KEYWRAP_NONCE_LEN + 32 + KEYWRAP_TAG_LEN);
	assert_int_equal(open_with(f, f->subkey, aad, f->wrapped.ptr, f->wrapped.len), COFFER_OK);

	/* fresh nonces: the same plaintext wraps differently each time */
	struct buf again;
	buf_init(&again, WRAP_MAX);
	assert_int_equal(keywrap_seal(f->subkey, aad, strlen(aad), f->pt, &again), COFFER_OK);
	assert_int_equal(again.len, f->wrapped.len);
	assert_memory_not_equal(again.ptr, f->wrapped.ptr, KEYWRAP_NONCE_LEN);
	assert_int_equal(open_with(f, f->subkey, aad, again.ptr, again.len), COFFER_OK);

	/* an empty plaintext and an empty aad */
	struct secret *empty = NULL, *out = NULL;
	assert_int_equal(secret_new(0, &empty), COFFER_OK);
	assert_int_equal(keywrap_seal(f->subkey, NULL, 0, empty, &again), COFFER_OK);
	assert_int_equal(again.len, KEYWRAP_OVERHEAD);
	assert_int_equal(keywrap_open(f->subkey, NULL, 0, again.ptr, again.len, &out), COFFER_OK);
	assert_int_equal(secret_len(out), 0);
	secret_free(out);
	secret_free(empty);
	buf_release(&again);
}

static void tamper(struct fixture *f, size_t at)
{
	unsigned char *w = malloc(f->wrapped.len);
	assert_non_null(w);
	memcpy(w, f->wrapped.ptr, f->wrapped.len);
	w[at] ^= 0x80;
	assert_int_equal(open_with(f, f->subkey, aad, w, f->wrapped.len), COFFER_ERR_CRYPTO);
	free(w);
}

static void test_flipped_nonce(void **state)
{
	struct fixture *f = *state;
	tamper(f, 0);
	tamper(f, KEYWRAP_NONCE_LEN - 1);
}

static void test_flipped_ciphertext(void **state)
{
	struct fixture *f = *state;
	tamper(f, KEYWRAP_NONCE_LEN);
	tamper(f, KEYWRAP_NONCE_LEN + 31);
}

static void test_flipped_tag(void **state)
{
	struct fixture *f = *state;
	tamper(f, f->wrapped.len - KEYWRAP_TAG_LEN);
	tamper(f, f->wrapped.len - 1);
}

static void test_flipped_aad(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(open_with(f, f->subkey, "app=0f3c key=2", f->wrapped.ptr, f->wrapped.len),
			 COFFER_ERR_CRYPTO);
	assert_int_equal(open_with(f, f->subkey, "", f->wrapped.ptr, f->wrapped.len),
			 COFFER_ERR_CRYPTO);
}

static void test_wrong_master(void **state)
{
	struct fixture *f = *state;
	unsigned char m[32];
	struct secret *master = NULL, *subkey = NULL;

	for (size_t i = 0; i < sizeof(m); i++)
		m[i] = (unsigned char)i;
	m[31] ^= 1; /* one bit away from the right master */
	assert_int_equal(secret_from(m, sizeof(m), &master), COFFER_OK);
	assert_int_equal(keywrap_derive(master, KEYWRAP_LABEL_APP_KEY, &subkey), COFFER_OK);
	assert_int_equal(open_with(f, subkey, aad, f->wrapped.ptr, f->wrapped.len), COFFER_ERR_CRYPTO);
	secret_free(subkey);
	secret_free(master);
}

static void test_truncated(void **state)
{
	struct fixture *f = *state;
	const size_t lens[] = { 0, 1, KEYWRAP_NONCE_LEN, KEYWRAP_OVERHEAD - 1 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		unsigned char *cut = malloc(lens[i] ? lens[i] : 1);
		assert_non_null(cut);
		memcpy(cut, f->wrapped.ptr, lens[i]);
		assert_int_equal(open_with(f, f->subkey, aad, cut, lens[i]), COFFER_ERR_INVALID);
		free(cut);
	}
	/* well-formed but shortened: the tag no longer matches */
	assert_int_equal(open_with(f, f->subkey, aad, f->wrapped.ptr, f->wrapped.len - 1),
			 COFFER_ERR_CRYPTO);
	assert_int_equal(open_with(f, f->subkey, aad, f->wrapped.ptr, KEYWRAP_OVERHEAD),
			 COFFER_ERR_CRYPTO);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;
	struct secret *short_key = NULL, *never = NULL, *big = NULL;
	struct buf out;

	buf_init(&out, WRAP_MAX);
	assert_int_equal(buf_adds(&out, "keep"), COFFER_OK);
	assert_int_equal(secret_from("short", 5, &short_key), COFFER_OK);
	assert_int_equal(keywrap_derive(short_key, KEYWRAP_LABEL_APP_KEY, &never), COFFER_ERR_INVALID);
	assert_int_equal(keywrap_derive(f->master, "", &never), COFFER_ERR_INVALID);
	assert_int_equal(keywrap_seal(short_key, aad, strlen(aad), f->pt, &out), COFFER_ERR_INVALID);
	assert_int_equal(keywrap_open(short_key, aad, strlen(aad), f->wrapped.ptr, f->wrapped.len,
				      &never),
			 COFFER_ERR_INVALID);
	assert_int_equal(secret_new(KEYWRAP_PLAINTEXT_MAX + 1, &big), COFFER_OK);
	assert_int_equal(keywrap_seal(f->subkey, aad, strlen(aad), big, &out), COFFER_ERR_TOO_LARGE);
	/* an output buffer too small for the result */
	struct buf small;
	buf_init(&small, KEYWRAP_OVERHEAD);
	assert_int_equal(keywrap_seal(f->subkey, aad, strlen(aad), f->pt, &small),
			 COFFER_ERR_TOO_LARGE);
	assert_string_equal(out.ptr, "keep");
	assert_null(never);
	buf_release(&small);
	secret_free(big);
	secret_free(short_key);
	buf_release(&out);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_derive),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_flipped_nonce),
		cmocka_unit_test(test_flipped_ciphertext),
		cmocka_unit_test(test_flipped_tag),
		cmocka_unit_test(test_flipped_aad),
		cmocka_unit_test(test_wrong_master),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
