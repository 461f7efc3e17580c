/*
 * test_anchor.c — the audit anchor's signed head (anchor.h): signatures
 * that break on any edit, the one document form, and the poker that
 * coalesces a burst of pokes into one call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "anchor.h"
#include "json.h"
#include "jws.h"

struct keys {
	struct secret *sk;
	unsigned char pk[JWS_PK_LEN];
};

static void keys_make(struct keys *k)
{
	assert_int_equal(jws_generate_key(&k->sk, k->pk), COFFER_OK);
}

static struct anchor_head signed_head(const struct keys *k)
{
	struct anchor_head h = { .seq = 30, .signed_at = 1765000000 };
	memset(h.hash, 0xab, sizeof(h.hash));
	assert_int_equal(anchor_sign(k->sk, &h), COFFER_OK);
	return h;
}

static void test_sign_verify_and_edits(void **state)
{
	(void)state;
	struct keys k, other;
	keys_make(&k);
	keys_make(&other);
	struct anchor_head h = signed_head(&k), e;
	assert_int_equal(anchor_verify(k.pk, &h), COFFER_OK);
	assert_int_equal(anchor_verify(other.pk, &h), COFFER_ERR_CRYPTO);
	e = h;
	e.seq--;
	assert_int_equal(anchor_verify(k.pk, &e), COFFER_ERR_CRYPTO);
	e = h;
	e.hash[31] ^= 1;
	assert_int_equal(anchor_verify(k.pk, &e), COFFER_ERR_CRYPTO);
	e = h;
	e.signed_at++;
	assert_int_equal(anchor_verify(k.pk, &e), COFFER_ERR_CRYPTO);
	e = h;
	e.signature[0] ^= 1;
	assert_int_equal(anchor_verify(k.pk, &e), COFFER_ERR_CRYPTO);
	secret_free(k.sk);
	secret_free(other.sk);
}

static void test_json_round_trip_and_strictness(void **state)
{
	(void)state;
	struct keys k;
	struct anchor_head h, back;
	const char *why = NULL;
	keys_make(&k);
	h = signed_head(&k);
	json_t *doc = anchor_to_json(&h);
	assert_non_null(doc);
	assert_int_equal(anchor_from_json(doc, &back, &why), COFFER_OK);
	assert_null(why);
	assert_memory_equal(&h, &back, sizeof(h));
	assert_string_equal(json_string_value(json_object_get(doc, "hash")),
			    "abababababababababababababababababababababababababababababababab");

	/* one spelling of the hash: upper-case hex is another */
	json_t *e = json_deep_copy(doc);
	json_object_set_new(e, "hash", json_string("ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"));
	assert_int_equal(anchor_from_json(e, &back, &why), COFFER_ERR_INVALID);
	assert_non_null(strstr(why, "\"hash\""));
	json_decref(e);
	/* an unknown field, a missing one, a short signature, a negative seq */
	e = json_deep_copy(doc);
	json_object_set_new(e, "extra", json_integer(1));
	assert_int_equal(anchor_from_json(e, &back, &why), COFFER_ERR_INVALID);
	json_decref(e);
	e = json_deep_copy(doc);
	json_object_del(e, "signed_at");
	assert_int_equal(anchor_from_json(e, &back, &why), COFFER_ERR_INVALID);
	json_decref(e);
	e = json_deep_copy(doc);
	json_object_set_new(e, "signature", json_string("AAAA"));
	assert_int_equal(anchor_from_json(e, &back, &why), COFFER_ERR_INVALID);
	assert_non_null(strstr(why, "\"signature\""));
	json_decref(e);
	e = json_deep_copy(doc);
	json_object_set_new(e, "seq", json_integer(-1));
	assert_int_equal(anchor_from_json(e, &back, &why), COFFER_ERR_INVALID);
	json_decref(e);
	e = json_string("x");
	assert_int_equal(anchor_from_json(e, &back, &why), COFFER_ERR_INVALID);
	json_decref(e);
	json_decref(doc);
	secret_free(k.sk);
}

static int calls;
static void count(void *ctx)
{
	(void)ctx;
	__atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
}

static void test_poker_coalesces_and_runs_pending_on_stop(void **state)
{
	(void)state;
	struct anchor_poker *p = NULL;
	calls = 0;
	assert_int_equal(anchor_poker_start(100, count, NULL, &p), COFFER_OK);
	for (int i = 0; i < 50; i++)
		anchor_poker_poke(p);
	usleep(400 * 1000);
	assert_int_equal(__atomic_load_n(&calls, __ATOMIC_SEQ_CST), 1);
	anchor_poker_poke(p);
	anchor_poker_stop(p); /* the pending poke runs before the thread ends */
	assert_int_equal(calls, 2);
	/* nothing pending: stop calls nothing */
	assert_int_equal(anchor_poker_start(100, count, NULL, &p), COFFER_OK);
	anchor_poker_stop(p);
	assert_int_equal(calls, 2);
	anchor_poker_poke(NULL);
	anchor_poker_stop(NULL);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_verify_and_edits),
		cmocka_unit_test(test_json_round_trip_and_strictness),
		cmocka_unit_test(test_poker_coalesces_and_runs_pending_on_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
