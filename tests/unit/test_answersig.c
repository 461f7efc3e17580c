/*
 * test_answersig.c — the api's signature over its answers to agents
 * (answersig.h): a round trip, and a refusal for each thing it covers
 * changed (body, host, nonce, status, key) and for a second spelling of
 * the same signature.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <sodium.h>

#include "answersig.h"
#include "jws.h"
#include "secret.h"

#define BODY "{\"generation\":\"00\",\"machines\":[{\"cmd\":[\"web\"]}]}"
#define NONCE "00112233445566778899aabbccddeeff"

static void test_round_trip_and_refusals(void **state)
{
	struct secret *sk = NULL, *other = NULL;
	unsigned char pk[JWS_PK_LEN], other_pk[JWS_PK_LEN];
	char sig[ANSWERSIG_B64_SIZE], respelled[ANSWERSIG_B64_SIZE];
	size_t n = strlen(BODY);
	(void)state;

	assert_int_equal(jws_generate_key(&sk, pk), COFFER_OK);
	assert_int_equal(jws_generate_key(&other, other_pk), COFFER_OK);
	assert_int_equal(answersig_sign(sk, "h1", NONCE, 200, BODY, n, sig), COFFER_OK);
	assert_int_equal(strlen(sig), ANSWERSIG_B64_LEN);
	assert_int_equal(answersig_verify(pk, "h1", NONCE, 200, BODY, n, sig), COFFER_OK);

	/* one byte of the body: the command rewritten */
	char body[sizeof(BODY)];
	memcpy(body, BODY, sizeof(BODY));
	body[strlen(body) - 6] = 'X';
	assert_int_equal(answersig_verify(pk, "h1", NONCE, 200, body, n, sig), COFFER_ERR_CRYPTO);
	assert_int_equal(answersig_verify(pk, "h1", NONCE, 200, BODY, n - 1, sig), COFFER_ERR_CRYPTO);
	/* another host, another request (nonce), another status, another key */
	assert_int_equal(answersig_verify(pk, "h2", NONCE, 200, BODY, n, sig), COFFER_ERR_CRYPTO);
	assert_int_equal(answersig_verify(pk, "h1", "00112233445566778899aabbccddeefe", 200, BODY, n, sig),
			 COFFER_ERR_CRYPTO);
	assert_int_equal(answersig_verify(pk, "h1", NONCE, 201, BODY, n, sig), COFFER_ERR_CRYPTO);
	assert_int_equal(answersig_verify(other_pk, "h1", NONCE, 200, BODY, n, sig), COFFER_ERR_CRYPTO);
	/* absent, cut, padded */
	assert_int_equal(answersig_verify(pk, "h1", NONCE, 200, BODY, n, NULL), COFFER_ERR_CRYPTO);
	assert_int_equal(answersig_verify(pk, "h1", NONCE, 200, BODY, n, ""), COFFER_ERR_CRYPTO);
	sig[ANSWERSIG_B64_LEN - 1] = '\0';
	assert_int_equal(answersig_verify(pk, "h1", NONCE, 200, BODY, n, sig), COFFER_ERR_CRYPTO);
	assert_int_equal(answersig_sign(sk, "h1", NONCE, 200, BODY, n, sig), COFFER_OK);
	/* a second spelling: libsodium's decoder takes a byte 0x80..0xff for '_' */
	char nonce[sizeof(NONCE)];
	memcpy(nonce, NONCE, sizeof(NONCE));
	char *under = NULL;
	for (int i = 0; !under && i < 4096; i++) {
		nonce[0] = "0123456789abcdef"[i % 16];
		nonce[1] = "0123456789abcdef"[(i / 16) % 16];
		nonce[2] = "0123456789abcdef"[(i / 256) % 16];
		assert_int_equal(answersig_sign(sk, "h1", nonce, 200, BODY, n, sig), COFFER_OK);
		under = memchr(sig, '_', ANSWERSIG_B64_LEN - 1);
	}
	assert_non_null(under);
	assert_int_equal(answersig_verify(pk, "h1", nonce, 200, BODY, n, sig), COFFER_OK);
	memcpy(respelled, sig, sizeof(sig));
	respelled[under - sig] = (char)0x80;
	assert_int_equal(answersig_verify(pk, "h1", nonce, 200, BODY, n, respelled), COFFER_ERR_CRYPTO);
	/* what cannot be signed */
	assert_int_equal(answersig_sign(sk, "", NONCE, 200, BODY, n, sig), COFFER_ERR_INVALID);
	assert_int_equal(answersig_sign(sk, "h1", "a\nb", 200, BODY, n, sig), COFFER_ERR_INVALID);
	assert_int_equal(answersig_sign(sk, "h1", NONCE, 99, BODY, n, sig), COFFER_ERR_INVALID);
	secret_free(sk);
	secret_free(other);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
