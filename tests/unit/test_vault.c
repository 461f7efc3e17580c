/* vault: values sealed to an app key open only for their own app, name, key
 * version and value row; app-key signatures refuse a replaced public key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "encode.h"
#include "vault.h"

#define CANARY "canary-3f1c9a-value"
#define ROW "0123456789abcdef01234567"       /* the value row sealed for */
#define OLDER_ROW "fedcba9876543210fedcba98" /* another row of the same name */

struct fixture {
	struct secret *sk;
	unsigned char pk[HPKE_PK_LEN];
	struct secret *value;
	struct buf sealed;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || hpke_generate_keypair(&f->sk, f->pk) || secret_from(CANARY, strlen(CANARY), &f->value))
		return -1;
	buf_init(&f->sealed, 4096);
	if (vault_seal_value(f->pk, "app_a", "DATABASE_URL", 1, ROW, f->value, &f->sealed))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	secret_free(f->sk);
	secret_free(f->value);
	buf_release(&f->sealed);
	free(f);
	return 0;
}

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(f->sealed.len, strlen(CANARY) + VAULT_SEAL_OVERHEAD);
	assert_null(memmem(f->sealed.ptr, f->sealed.len, CANARY, strlen(CANARY)));
	struct secret *out = NULL;
	assert_int_equal(vault_open_value(f->sk, "app_a", "DATABASE_URL", 1, ROW, f->sealed.ptr, f->sealed.len, &out),
			 COFFER_OK);
	assert_true(secret_equal(out, f->value));
	secret_free(out);
}

static void test_moved_to_other_name(void **state)
{
	struct fixture *f = *state;
	struct secret *out = NULL;
	assert_int_equal(vault_open_value(f->sk, "app_a", "OTHER", 1, ROW, f->sealed.ptr, f->sealed.len, &out),
			 COFFER_ERR_CRYPTO);
	assert_null(out);
}

static void test_moved_to_other_app(void **state)
{
	struct fixture *f = *state;
	struct secret *out = NULL;
	assert_int_equal(vault_open_value(f->sk, "app_b", "DATABASE_URL", 1, ROW, f->sealed.ptr, f->sealed.len, &out),
			 COFFER_ERR_CRYPTO);
	assert_null(out);
}

static void test_other_key_version(void **state)
{
	struct fixture *f = *state;
	struct secret *out = NULL;
	assert_int_equal(vault_open_value(f->sk, "app_a", "DATABASE_URL", 2, ROW, f->sealed.ptr, f->sealed.len, &out),
			 COFFER_ERR_CRYPTO);
	assert_null(out);
}

/* An older value's ciphertext of the same name copied over another value row does not open there. */
static void test_copied_to_other_row(void **state)
{
	struct fixture *f = *state;
	struct secret *out = NULL;
	assert_int_equal(vault_open_value(f->sk, "app_a", "DATABASE_URL", 1, OLDER_ROW, f->sealed.ptr, f->sealed.len,
					  &out),
			 COFFER_ERR_CRYPTO);
	assert_null(out);
}

static void test_wrong_key(void **state)
{
	struct fixture *f = *state;
	struct secret *sk2 = NULL, *out = NULL;
	unsigned char pk2[HPKE_PK_LEN];
	assert_int_equal(hpke_generate_keypair(&sk2, pk2), COFFER_OK);
	assert_int_equal(vault_open_value(sk2, "app_a", "DATABASE_URL", 1, ROW, f->sealed.ptr, f->sealed.len, &out),
			 COFFER_ERR_CRYPTO);
	assert_null(out);
	secret_free(sk2);
}

static void test_refuses_bad_ids(void **state)
{
	struct fixture *f = *state;
	char long_name[VAULT_ID_MAX + 2];
	memset(long_name, 'A', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	struct buf out;
	buf_init(&out, 4096);
	assert_int_equal(vault_seal_value(f->pk, "app_a", "", 1, ROW, f->value, &out), COFFER_ERR_INVALID);
	assert_int_equal(vault_seal_value(f->pk, "app_a", long_name, 1, ROW, f->value, &out), COFFER_ERR_INVALID);
	long_name[VAULT_ID_MAX] = '\0';
	assert_int_equal(vault_seal_value(f->pk, "app_a", long_name, 1, ROW, f->value, &out), COFFER_OK);
	assert_int_equal(vault_seal_value(f->pk, "app_a", "DATABASE_URL", 1, "", f->value, &out), COFFER_ERR_INVALID);
	buf_release(&out);
}

/* Fills a secret with a non-zero pattern, so a test can see it wiped. */
static void fill(struct secret *s)
{
	memset(secret_bytes(s), 0xA5, secret_len(s));
}

static int all_zero(const struct secret *s)
{
	return sodium_is_zero(secret_cbytes(s), secret_len(s));
}

/* Opened into a carved secret: the same value, with or without the public key. */
static void test_open_into(void **state)
{
	struct fixture *f = *state;
	struct secret_arena *a = NULL;
	struct secret *v = NULL, *w = NULL;
	assert_int_equal(secret_arena_new(2, 2 * strlen(CANARY), &a), COFFER_OK);
	assert_int_equal(secret_arena_take(a, strlen(CANARY), &v), COFFER_OK);
	assert_int_equal(secret_arena_take(a, strlen(CANARY), &w), COFFER_OK);
	assert_int_equal(vault_open_value_into(f->sk, f->pk, "app_a", "DATABASE_URL", 1, ROW, f->sealed.ptr,
					       f->sealed.len, v),
			 COFFER_OK);
	assert_int_equal(vault_open_value_into(f->sk, NULL, "app_a", "DATABASE_URL", 1, ROW, f->sealed.ptr,
					       f->sealed.len, w),
			 COFFER_OK);
	assert_true(secret_equal(v, f->value));
	assert_true(secret_equal(w, f->value));
	/* secret_free on a carved secret wipes it (the arena frees) */
	secret_free(v);
	assert_int_equal(secret_len(v), 0);
	assert_true(sodium_is_zero(secret_cbytes(v), strlen(CANARY)));
	assert_true(secret_equal(w, f->value));
	secret_arena_free(a);
}

/* Every failed open into leaves the target wiped, whatever failed. */
static void test_open_into_wipes_on_failure(void **state)
{
	struct fixture *f = *state;
	struct secret_arena *a = NULL;
	struct secret *v = NULL, *shorter = NULL;
	unsigned char other_pk[HPKE_PK_LEN];
	struct secret *other_sk = NULL;
	size_t len = strlen(CANARY);

	assert_int_equal(hpke_generate_keypair(&other_sk, other_pk), COFFER_OK);
	assert_int_equal(secret_arena_new(2, 2 * len, &a), COFFER_OK);
	assert_int_equal(secret_arena_take(a, len, &v), COFFER_OK);
	assert_int_equal(secret_arena_take(a, len - 1, &shorter), COFFER_OK);

	fill(v);
	assert_int_equal(vault_open_value_into(f->sk, f->pk, "app_a", "OTHER", 1, ROW, f->sealed.ptr, f->sealed.len, v),
			 COFFER_ERR_CRYPTO); /* moved to another name */
	assert_true(all_zero(v));
	fill(v);
	assert_int_equal(vault_open_value_into(f->sk, f->pk, "app_b", "DATABASE_URL", 1, ROW, f->sealed.ptr,
					       f->sealed.len, v),
			 COFFER_ERR_CRYPTO); /* moved to another app */
	assert_true(all_zero(v));
	fill(v);
	assert_int_equal(vault_open_value_into(f->sk, other_pk, "app_a", "DATABASE_URL", 1, ROW, f->sealed.ptr,
					       f->sealed.len, v),
			 COFFER_ERR_CRYPTO); /* a public key that is not sk's */
	assert_true(all_zero(v));
	fill(v);
	assert_int_equal(vault_open_value_into(other_sk, NULL, "app_a", "DATABASE_URL", 1, ROW, f->sealed.ptr,
					       f->sealed.len, v),
			 COFFER_ERR_CRYPTO); /* another key */
	assert_true(all_zero(v));
	fill(v);
	assert_int_equal(vault_open_value_into(f->sk, f->pk, "", "DATABASE_URL", 1, ROW, f->sealed.ptr, f->sealed.len, v),
			 COFFER_ERR_INVALID); /* a bad id */
	assert_true(all_zero(v));
	fill(shorter);
	assert_int_equal(vault_open_value_into(f->sk, f->pk, "app_a", "DATABASE_URL", 1, ROW, f->sealed.ptr,
					       f->sealed.len, shorter),
			 COFFER_ERR_INVALID); /* a target of the wrong length */
	assert_true(all_zero(shorter));
	fill(v);
	assert_int_equal(vault_open_value_into(f->sk, f->pk, "app_a", "DATABASE_URL", 1, ROW, f->sealed.ptr,
					       VAULT_SEAL_OVERHEAD - 1, v),
			 COFFER_ERR_INVALID); /* truncated */
	assert_true(all_zero(v));
	secret_arena_free(a);
	secret_free(other_sk);
}

/* An arena holds exactly what it was sized for, whatever the lengths; then it is full. */
/* A reused arena: kept while it has room, wiped whole between uses, replaced when it has none. */
static void test_arena_reuse(void **state)
{
	(void)state;
	struct secret_arena *a = NULL, *kept;
	struct secret *v = NULL, *w = NULL;
	size_t len = strlen(CANARY);

	assert_int_equal(secret_arena_reuse(&a, 2, 2 * len), COFFER_OK); /* none yet: made */
	assert_non_null(a);
	assert_int_equal(secret_arena_take(a, len, &v), COFFER_OK);
	assert_int_equal(secret_arena_take(a, len, &w), COFFER_OK);
	memcpy(secret_bytes(v), CANARY, len);
	memcpy(secret_bytes(w), CANARY, len);

	kept = a;
	assert_int_equal(secret_arena_reuse(&a, 1, len), COFFER_OK); /* room: the same block, emptied and wiped */
	assert_ptr_equal(a, kept);
	assert_true(sodium_is_zero(secret_cbytes(w), len)); /* the last use's bytes are gone */
	assert_int_equal(secret_arena_take(a, len, &v), COFFER_OK);
	assert_int_equal(secret_arena_take(a, len, &w), COFFER_OK); /* the whole block is free again */
	assert_true(sodium_is_zero(secret_cbytes(v), len));

	assert_int_equal(secret_arena_reuse(&a, 4, 64 * len), COFFER_OK); /* too small: another, larger one */
	assert_non_null(a);
	for (int i = 0; i < 4; i++)
		assert_int_equal(secret_arena_take(a, 16 * len, &v), COFFER_OK);
	secret_arena_wipe(a);
	assert_int_equal(secret_arena_take(a, 16 * len, &v), COFFER_OK); /* emptied */
	secret_arena_wipe(NULL);
	secret_arena_free(a);
}

static void test_arena_sizes(void **state)
{
	(void)state;
	static const size_t lens[] = { 0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 255, 4096, 65536, 3 };
	size_t n = sizeof(lens) / sizeof(lens[0]), total = 0;
	struct secret *s[sizeof(lens) / sizeof(lens[0])];
	struct secret_arena *a = NULL;

	for (size_t i = 0; i < n; i++)
		total += lens[i];
	for (size_t k = 1; k <= n; k++) { /* every prefix of the list, so every rounding */
		size_t t = 0;
		for (size_t i = 0; i < k; i++)
			t += lens[i];
		assert_int_equal(secret_arena_new(k, t, &a), COFFER_OK);
		for (size_t i = 0; i < k; i++) {
			assert_int_equal(secret_arena_take(a, lens[i], &s[i]), COFFER_OK);
			assert_int_equal(secret_len(s[i]), lens[i]);
			assert_true(sodium_is_zero(secret_cbytes(s[i]), lens[i] + 1)); /* zeroed, NUL after */
			assert_int_equal((uintptr_t)secret_cbytes(s[i]) % 16, 0); /* as secret_new's */
			memset(secret_bytes(s[i]), (int)(i + 1), lens[i]);
		}
		for (size_t i = 0; i < k; i++) /* no secret overlaps another */
			for (size_t j = 0; j < lens[i]; j++)
				assert_int_equal(secret_cbytes(s[i])[j], (unsigned char)(i + 1));
		assert_int_equal(secret_arena_take(a, total + 1, &s[0]), COFFER_ERR_TOO_LARGE);
		secret_arena_free(a);
	}
	for (size_t len = 0; len <= 40; len++) { /* many of one length: the worst rounding */
		struct secret *x = NULL;
		assert_int_equal(secret_arena_new(16, 16 * len, &a), COFFER_OK);
		for (int i = 0; i < 16; i++)
			assert_int_equal(secret_arena_take(a, len, &x), COFFER_OK);
		secret_arena_free(a);
	}
	assert_int_equal(secret_arena_new(SIZE_MAX / 2, 1, &a), COFFER_ERR_TOO_LARGE);
	assert_int_equal(secret_arena_new(1, SIZE_MAX, &a), COFFER_ERR_TOO_LARGE);
	secret_arena_free(NULL);
}

static void test_app_key_signature(void **state)
{
	(void)state;
	struct secret *master = NULL, *sk = NULL, *sk_again = NULL, *app_sk = NULL;
	unsigned char kpk[JWS_PK_LEN], kpk_again[JWS_PK_LEN], app_pk[HPKE_PK_LEN], other_pk[HPKE_PK_LEN];
	unsigned char sig[VAULT_SIG_LEN];
	assert_int_equal(secret_new(VAULT_MASTER_LEN, &master), COFFER_OK);
	randombytes_buf(secret_bytes(master), VAULT_MASTER_LEN);
	assert_int_equal(vault_keeper_signing_key(master, &sk, kpk), COFFER_OK);
	assert_int_equal(vault_keeper_signing_key(master, &sk_again, kpk_again), COFFER_OK);
	assert_memory_equal(kpk, kpk_again, JWS_PK_LEN); /* derived, so stable */
	assert_int_equal(hpke_generate_keypair(&app_sk, app_pk), COFFER_OK);
	memcpy(other_pk, app_pk, sizeof(other_pk));
	other_pk[0] ^= 1;
	assert_int_equal(vault_app_key_sign(sk, "app_a", 1, app_pk, sig), COFFER_OK);
	assert_int_equal(vault_app_key_verify(kpk, "app_a", 1, app_pk, sig), COFFER_OK);
	/* a replaced public key, another app, another version: refused */
	assert_int_equal(vault_app_key_verify(kpk, "app_a", 1, other_pk, sig), COFFER_ERR_CRYPTO);
	assert_int_equal(vault_app_key_verify(kpk, "app_b", 1, app_pk, sig), COFFER_ERR_CRYPTO);
	assert_int_equal(vault_app_key_verify(kpk, "app_a", 2, app_pk, sig), COFFER_ERR_CRYPTO);
	sig[10] ^= 1;
	assert_int_equal(vault_app_key_verify(kpk, "app_a", 1, app_pk, sig), COFFER_ERR_CRYPTO);
	secret_free(master);
	secret_free(sk);
	secret_free(sk_again);
	secret_free(app_sk);
}

static void test_api_credential(void **state)
{
	(void)state;
	struct secret *m1 = NULL, *m2 = NULL, *c1 = NULL, *c1b = NULL, *c2 = NULL;
	assert_int_equal(secret_new(VAULT_MASTER_LEN, &m1), COFFER_OK);
	assert_int_equal(secret_new(VAULT_MASTER_LEN, &m2), COFFER_OK);
	randombytes_buf(secret_bytes(m1), VAULT_MASTER_LEN);
	randombytes_buf(secret_bytes(m2), VAULT_MASTER_LEN);
	assert_int_equal(vault_api_credential(m1, &c1), COFFER_OK);
	assert_int_equal(vault_api_credential(m1, &c1b), COFFER_OK);
	assert_int_equal(vault_api_credential(m2, &c2), COFFER_OK);
	assert_int_equal(secret_len(c1), VAULT_CREDENTIAL_LEN);
	assert_true(secret_equal(c1, c1b));
	assert_false(secret_equal(c1, c2));
	secret_free(m1);
	secret_free(m2);
	secret_free(c1);
	secret_free(c1b);
	secret_free(c2);
}

/* HKDF-SHA256(salt "", IKM = bytes 0x00..0x1f, info = label, 32), computed apart (Python hmac). */
#define KAT_BOOT_SEED "a3d449bdeb1be65bbb5ebe4ae7849363628227b3c7be818ed47ace0fd2b04138"
#define KAT_CREDENTIAL "f53555a36dae4893a7e16d6beef6edeb77d785b193187b2b669a2fa5c8763e20"

#define KAT_ROWS_KEY "cf9171acdcfeacc605cac2b1f718e158376783cc813b40b4fe7b33ccfad40807"
#define KAT_DIGEST_KEY "05fd6aec51ed0741d707c55153b55f971a0505a7195a01c2ff111da34d2555d6"

/* The rows key and the service's digest key: pinned labels, and neither is another derived key. */
static void test_rows_and_digest_keys(void **state)
{
	(void)state;
	struct secret *m = NULL, *rows = NULL, *digest = NULL, *cred = NULL, *seed = NULL;
	unsigned char want[32];
	assert_int_equal(secret_new(VAULT_MASTER_LEN, &m), COFFER_OK);
	for (size_t i = 0; i < VAULT_MASTER_LEN; i++)
		secret_bytes(m)[i] = (unsigned char)i;
	assert_int_equal(vault_rows_key(m, &rows), COFFER_OK);
	assert_int_equal(secret_len(rows), VAULT_ROWS_KEY_LEN);
	assert_int_equal(hex_decode(KAT_ROWS_KEY, strlen(KAT_ROWS_KEY), want, sizeof(want)), COFFER_OK);
	assert_memory_equal(secret_cbytes(rows), want, sizeof(want));
	assert_int_equal(vault_digest_key(m, &digest), COFFER_OK);
	assert_int_equal(secret_len(digest), VAULT_DIGEST_KEY_LEN);
	assert_int_equal(hex_decode(KAT_DIGEST_KEY, strlen(KAT_DIGEST_KEY), want, sizeof(want)), COFFER_OK);
	assert_memory_equal(secret_cbytes(digest), want, sizeof(want));
	assert_int_equal(vault_api_credential(m, &cred), COFFER_OK);
	assert_int_equal(vault_api_boot_seed(m, &seed), COFFER_OK);
	assert_false(secret_equal(rows, digest));
	assert_false(secret_equal(rows, cred) || secret_equal(rows, seed));
	assert_false(secret_equal(digest, cred) || secret_equal(digest, seed));
	secret_free(m);
	secret_free(rows);
	secret_free(digest);
	secret_free(cred);
	secret_free(seed);
}

static void test_api_boot_seed(void **state)
{
	(void)state;
	struct secret *m = NULL, *m2 = NULL, *seed = NULL, *again = NULL, *other = NULL, *cred = NULL;
	struct secret *sk = NULL, *keeper_sk = NULL;
	unsigned char want[32], pk[JWS_PK_LEN], keeper_pk[JWS_PK_LEN];

	assert_int_equal(secret_new(VAULT_MASTER_LEN, &m), COFFER_OK);
	for (size_t i = 0; i < VAULT_MASTER_LEN; i++)
		secret_bytes(m)[i] = (unsigned char)i;
	/* The label is pinned: a known answer for the boot seed and, as a check of the method, the credential. */
	assert_int_equal(vault_api_boot_seed(m, &seed), COFFER_OK);
	assert_int_equal(secret_len(seed), VAULT_BOOT_SEED_LEN);
	assert_int_equal(hex_decode(KAT_BOOT_SEED, strlen(KAT_BOOT_SEED), want, sizeof(want)), COFFER_OK);
	assert_memory_equal(secret_cbytes(seed), want, sizeof(want));
	assert_int_equal(vault_api_credential(m, &cred), COFFER_OK);
	assert_int_equal(hex_decode(KAT_CREDENTIAL, strlen(KAT_CREDENTIAL), want, sizeof(want)), COFFER_OK);
	assert_memory_equal(secret_cbytes(cred), want, sizeof(want));
	assert_false(secret_equal(seed, cred));

	/* Stable for one master, another for another master. */
	assert_int_equal(vault_api_boot_seed(m, &again), COFFER_OK);
	assert_true(secret_equal(seed, again));
	assert_int_equal(secret_new(VAULT_MASTER_LEN, &m2), COFFER_OK);
	randombytes_buf(secret_bytes(m2), VAULT_MASTER_LEN);
	assert_int_equal(vault_api_boot_seed(m2, &other), COFFER_OK);
	assert_false(secret_equal(seed, other));

	/* Not the keeper's own signing key. */
	assert_int_equal(jws_key_from_seed(seed, &sk, pk), COFFER_OK);
	assert_int_equal(vault_keeper_signing_key(m, &keeper_sk, keeper_pk), COFFER_OK);
	assert_memory_not_equal(pk, keeper_pk, JWS_PK_LEN);

	/* A short master key is refused. */
	struct secret *short_m = NULL, *none = NULL;
	assert_int_equal(secret_new(8, &short_m), COFFER_OK);
	assert_int_not_equal(vault_api_boot_seed(short_m, &none), COFFER_OK);
	assert_null(none);

	sodium_memzero(want, sizeof(want));
	secret_free(short_m);
	secret_free(keeper_sk);
	secret_free(sk);
	secret_free(cred);
	secret_free(other);
	secret_free(m2);
	secret_free(again);
	secret_free(seed);
	secret_free(m);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moved_to_other_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moved_to_other_app, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_key_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copied_to_other_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_bad_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_into, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_into_wipes_on_failure, setup, teardown),
		cmocka_unit_test(test_arena_sizes),
		cmocka_unit_test(test_arena_reuse),
		cmocka_unit_test(test_app_key_signature),
		cmocka_unit_test(test_api_credential),
		cmocka_unit_test(test_api_boot_seed), cmocka_unit_test(test_rows_and_digest_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
