/* Unit tests of jws.h: RFC 8037's Ed25519 JWS vector, strict parsing (each
 * refusal on its own) and the time claims. */
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
#include "jws.h"
#include "secret.h"

#define TOK_MAX 16384
#define NOW 1700000000

struct keys {
	struct secret *sk;
	unsigned char pk[JWS_PK_LEN];
	struct secret *other_sk;
	unsigned char other_pk[JWS_PK_LEN];
};

static int keys_setup(void **state)
{
	struct keys *k = calloc(1, sizeof(*k));
	if (!k || jws_generate_key(&k->sk, k->pk) != COFFER_OK ||
	    jws_generate_key(&k->other_sk, k->other_pk) != COFFER_OK)
		return -1;
	*state = k;
	return 0;
}

static int keys_teardown(void **state)
{
	struct keys *k = *state;
	secret_free(k->other_sk);
	secret_free(k->sk);
	free(k);
	return 0;
}

static void b64(const void *data, size_t len, struct buf *out)
{
	struct buf t;
	buf_init(&t, TOK_MAX);
	assert_int_equal(b64url_encode(data, len, &t), COFFER_OK);
	assert_int_equal(buf_add(out, t.ptr, t.len), COFFER_OK);
	buf_release(&t);
}

/* A token with any header, signed directly with libsodium: shows that the
 * refusals below are about the header, not the signature. */
static void make_token(const struct secret *sk64, const char *header, const char *payload,
		       struct buf *out)
{
	unsigned char sig[JWS_SIG_LEN];
	buf_reset(out);
	b64(header, strlen(header), out);
	assert_int_equal(buf_addch(out, '.'), COFFER_OK);
	b64(payload, strlen(payload), out);
	assert_int_equal(secret_len(sk64), JWS_SK_LEN);
	crypto_sign_ed25519_detached(sig, NULL, (unsigned char *)out->ptr, out->len,
				     secret_cbytes(sk64));
	assert_int_equal(buf_addch(out, '.'), COFFER_OK);
	b64(sig, sizeof(sig), out);
}

static enum coffer_err verify(const unsigned char *pk, const struct buf *tok)
{
	struct buf payload;
	buf_init(&payload, TOK_MAX);
	assert_int_equal(buf_adds(&payload, "untouched"), COFFER_OK);
	enum coffer_err rc = jws_verify(pk, tok->ptr, tok->len, NOW, &payload);
	if (rc)
		assert_string_equal(payload.ptr, "untouched");
	buf_release(&payload);
	return rc;
}

static void test_rfc8037_vector(void **state)
{
	(void)state;
	const char *dir = getenv("COFFER_VECTORS_DIR");
	char path[PATH_MAX];
	json_error_t err;
	struct buf d, x, tok, payload;
	struct secret *seed = NULL, *sk = NULL;
	unsigned char pk[JWS_PK_LEN], pk2[JWS_PK_LEN];

	assert_non_null(dir);
	assert_int_equal(fmt_into(path, sizeof(path), "%s/jws-rfc8037-ed25519.json", dir), COFFER_OK);
	json_t *v = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	assert_non_null(v);
	json_t *jwk = json_object_get(v, "private_key_jwk");
	const char *d_s = json_string_value(json_object_get(jwk, "d"));
	const char *x_s = json_string_value(json_object_get(jwk, "x"));
	const char *want = json_string_value(json_object_get(v, "jws"));
	const char *pl = json_string_value(json_object_get(v, "payload"));
	assert_non_null(d_s), assert_non_null(x_s), assert_non_null(want), assert_non_null(pl);
	assert_string_equal(json_string_value(json_object_get(v, "protected_header")),
			    "{\"alg\":\"EdDSA\"}");

	buf_init(&d, 64), buf_init(&x, 64), buf_init(&tok, TOK_MAX), buf_init(&payload, TOK_MAX);
	assert_int_equal(b64url_decode(d_s, strlen(d_s), &d), COFFER_OK);
	assert_int_equal(b64url_decode(x_s, strlen(x_s), &x), COFFER_OK);
	assert_int_equal(d.len, JWS_SEED_LEN);
	assert_int_equal(x.len, JWS_PK_LEN);
	assert_int_equal(secret_from(d.ptr, d.len, &seed), COFFER_OK);
	sodium_memzero(d.ptr, d.len);

	/* the key: x is the public key of d */
	assert_int_equal(jws_key_from_seed(seed, &sk, pk), COFFER_OK);
	assert_memory_equal(pk, x.ptr, JWS_PK_LEN);
	assert_int_equal(jws_public_key(seed, pk2), COFFER_OK);
	assert_memory_equal(pk2, x.ptr, JWS_PK_LEN);
	assert_int_equal(jws_public_key(sk, pk2), COFFER_OK);
	assert_memory_equal(pk2, x.ptr, JWS_PK_LEN);

	/* signing gives exactly the RFC's token, with the seed or the full key */
	assert_int_equal(jws_sign(seed, NULL, pl, strlen(pl), &tok), COFFER_OK);
	assert_string_equal(tok.ptr, want);
	assert_int_equal(jws_sign(sk, NULL, pl, strlen(pl), &tok), COFFER_OK);
	assert_string_equal(tok.ptr, want);

	/* and it verifies, giving back the payload */
	assert_int_equal(jws_verify(pk, want, strlen(want), NOW, &payload), COFFER_OK);
	assert_int_equal(payload.len, strlen(pl));
	assert_memory_equal(payload.ptr, pl, payload.len);
	buf_reset(&payload);
	assert_int_equal(jws_verify_sig(pk, want, strlen(want), &payload), COFFER_OK);
	assert_string_equal(payload.ptr, pl);

	/* a 64-byte key whose public half is not its seed's is refused */
	unsigned char bad[JWS_SK_LEN];
	struct secret *bad_sk = NULL;
	memcpy(bad, secret_cbytes(sk), JWS_SK_LEN);
	bad[JWS_SK_LEN - 1] ^= 1;
	assert_int_equal(secret_from(bad, sizeof(bad), &bad_sk), COFFER_OK);
	sodium_memzero(bad, sizeof(bad));
	assert_int_equal(jws_sign(bad_sk, NULL, pl, strlen(pl), &tok), COFFER_ERR_INVALID);
	secret_free(bad_sk);

	secret_free(sk), secret_free(seed);
	buf_release(&payload), buf_release(&tok), buf_release(&x), buf_release(&d);
	json_decref(v);
}

static void test_kid(void **state)
{
	struct keys *k = *state;
	struct buf tok, hdr;
	buf_init(&tok, TOK_MAX), buf_init(&hdr, TOK_MAX);

	assert_int_equal(jws_sign(k->sk, "boot-2024.1_a", "p", 1, &tok), COFFER_OK);
	const char *dot = strchr(tok.ptr, '.');
	assert_non_null(dot);
	assert_int_equal(b64url_decode(tok.ptr, (size_t)(dot - tok.ptr), &hdr), COFFER_OK);
	assert_string_equal(hdr.ptr, "{\"alg\":\"EdDSA\",\"kid\":\"boot-2024.1_a\"}");
	assert_int_equal(verify(k->pk, &tok), COFFER_OK);

	/* a kid that would need escaping, an empty one and a long one are refused */
	char long_kid[JWS_KID_MAX + 2];
	memset(long_kid, 'k', sizeof(long_kid) - 1);
	long_kid[sizeof(long_kid) - 1] = '\0';
	assert_int_equal(jws_sign(k->sk, "a\"b", "p", 1, &tok), COFFER_ERR_INVALID);
	assert_int_equal(jws_sign(k->sk, "", "p", 1, &tok), COFFER_ERR_INVALID);
	assert_int_equal(jws_sign(k->sk, long_kid, "p", 1, &tok), COFFER_ERR_INVALID);

	/* typ is accepted; a kid with a bad character is refused on verify */
	make_token(k->sk, "{\"typ\":\"JWT\",\"alg\":\"EdDSA\",\"kid\":\"k1\"}", "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_OK);
	make_token(k->sk, "{\"alg\":\"EdDSA\",\"kid\":\"k 1\"}", "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);

	buf_release(&hdr), buf_release(&tok);
}

static void test_alg_none(void **state)
{
	struct keys *k = *state;
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	/* signed or not, "none" is refused */
	make_token(k->sk, "{\"alg\":\"none\"}", "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	buf_reset(&tok);
	b64("{\"alg\":\"none\"}", 14, &tok);
	assert_int_equal(buf_adds(&tok, ".cA."), COFFER_OK);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	buf_release(&tok);
}

static void test_alg_hs256(void **state)
{
	struct keys *k = *state;
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	make_token(k->sk, "{\"alg\":\"HS256\"}", "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	/* nor a near miss */
	make_token(k->sk, "{\"alg\":\"eddsa\"}", "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	make_token(k->sk, "{\"alg\":\"EdDSA \"}", "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	make_token(k->sk, "{\"alg\":[\"EdDSA\"]}", "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	buf_release(&tok);
}

static void test_header_rules(void **state)
{
	struct keys *k = *state;
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	make_token(k->sk, "{\"alg\":\"EdDSA\"}", "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_OK); /* the control */

	const char *refused[] = {
		"{}",                                              /* missing alg */
		"{\"kid\":\"k\"}",                                 /* missing alg */
		"{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\"}",           /* duplicate */
		"{\"alg\":\"EdDSA\",\"crit\":[\"exp\"]}",          /* crit */
		"{\"alg\":\"EdDSA\",\"jku\":\"https://x\"}",       /* unknown member */
		"{\"alg\":\"EdDSA\",\"typ\":\"\"}",                /* empty typ */
		"[\"alg\",\"EdDSA\"]",                             /* not an object */
		"{\"alg\":\"EdDSA\"} ",                            /* fine JSON, but then... */
	};
	for (size_t i = 0; i + 1 < sizeof(refused) / sizeof(refused[0]); i++) {
		make_token(k->sk, refused[i], "p", &tok);
		assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	}
	/* trailing whitespace inside the header is still valid JSON: accepted */
	make_token(k->sk, refused[7], "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_OK);
	/* trailing bytes after the object are not */
	make_token(k->sk, "{\"alg\":\"EdDSA\"}x", "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	/* a header past JWS_HEADER_MAX */
	char big[JWS_HEADER_MAX + 64];
	assert_int_equal(fmt_into(big, sizeof(big), "{\"alg\":\"EdDSA\",\"typ\":\"%0*d\"}",
				  JWS_HEADER_MAX, 0),
			 COFFER_OK);
	make_token(k->sk, big, "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	buf_release(&tok);
}

static void test_header_not_json(void **state)
{
	struct keys *k = *state;
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	make_token(k->sk, "alg=EdDSA", "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	make_token(k->sk, "{\"alg\":\"EdDSA\"", "p", &tok);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	buf_release(&tok);
}

static void signed_token(struct keys *k, const char *payload, struct buf *tok)
{
	assert_int_equal(jws_sign(k->sk, NULL, payload, strlen(payload), tok), COFFER_OK);
	assert_int_equal(verify(k->pk, tok), COFFER_OK);
}

static void test_extra_segment(void **state)
{
	struct keys *k = *state;
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	signed_token(k, "p", &tok);
	assert_int_equal(buf_adds(&tok, ".AAAA"), COFFER_OK);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	signed_token(k, "p", &tok);
	assert_int_equal(buf_addch(&tok, '.'), COFFER_OK);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	/* two segments */
	signed_token(k, "p", &tok);
	*strrchr(tok.ptr, '.') = '\0';
	tok.len = strlen(tok.ptr);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	buf_release(&tok);
}

static void test_trailing_garbage(void **state)
{
	struct keys *k = *state;
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	const char *tails[] = { "A", "=", " ", "\n", "AAAA" };
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		signed_token(k, "p", &tok);
		assert_int_equal(buf_adds(&tok, tails[i]), COFFER_OK);
		assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	}
	/* an embedded NUL: the length says there is more */
	signed_token(k, "p", &tok);
	assert_int_equal(buf_add(&tok, "\0", 1), COFFER_OK);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	buf_release(&tok);
}

static void test_bad_base64url(void **state)
{
	struct keys *k = *state;
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	/* in the header, the payload and the signature; '+' and '/' are the
	 * other alphabet */
	const char bad[] = { '+', '/', '=', '*' };
	for (size_t i = 0; i < sizeof(bad); i++) {
		signed_token(k, "payload!", &tok);
		tok.ptr[1] = bad[i];
		assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
		signed_token(k, "payload!", &tok);
		strchr(tok.ptr, '.')[2] = bad[i];
		assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
		signed_token(k, "payload!", &tok);
		strrchr(tok.ptr, '.')[5] = bad[i];
		assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	}
	/* non-zero spare bits: 64 bytes leave 2 unused bits in the last of 86
	 * characters, and 'B' (value 1) sets one of them */
	signed_token(k, "p", &tok);
	tok.ptr[tok.len - 1] = 'B';
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	/* a byte 0x80-0xFF for '_' (libsodium 1.0.18 read it as '_'): the
	 * payload 0xFFFFFF is "____" */
	const unsigned char high[] = { 0x80, 0xbf, 0xc0, 0xff };
	for (size_t i = 0; i < sizeof(high); i++) {
		signed_token(k, "\xff\xff\xff", &tok);
		char *payload = strchr(tok.ptr, '.') + 1;
		assert_memory_equal(payload, "____.", 5);
		assert_int_equal(verify(k->pk, &tok), COFFER_OK);
		payload[2] = (char)high[i];
		assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	}
	buf_release(&tok);
}

static void test_signature_length(void **state)
{
	struct keys *k = *state;
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	/* empty signature */
	signed_token(k, "p", &tok);
	tok.len = (size_t)(strrchr(tok.ptr, '.') + 1 - tok.ptr);
	tok.ptr[tok.len] = '\0';
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	/* 63 and 65 bytes */
	unsigned char sig[JWS_SIG_LEN + 1] = { 0 };
	for (size_t n = JWS_SIG_LEN - 1; n <= JWS_SIG_LEN + 1; n += 2) {
		signed_token(k, "p", &tok);
		tok.len = (size_t)(strrchr(tok.ptr, '.') + 1 - tok.ptr);
		tok.ptr[tok.len] = '\0';
		b64(sig, n, &tok);
		assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	}
	buf_release(&tok);
}

static void test_flipped_signature(void **state)
{
	struct keys *k = *state;
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	signed_token(k, "p", &tok);
	/* 'A' <-> 'B' flips the lowest bit of a sextet and stays canonical */
	char *c = strrchr(tok.ptr, '.') + 10;
	*c = *c == 'A' ? 'B' : 'A';
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_CRYPTO);
	buf_release(&tok);
}

static void test_flipped_payload(void **state)
{
	struct keys *k = *state;
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	signed_token(k, "pay", &tok);
	char *c = strchr(tok.ptr, '.') + 1;
	*c = *c == 'A' ? 'B' : 'A';
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_CRYPTO);
	buf_release(&tok);
}

static void test_wrong_key(void **state)
{
	struct keys *k = *state;
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	signed_token(k, "p", &tok);
	assert_int_equal(verify(k->other_pk, &tok), COFFER_ERR_CRYPTO);
	buf_release(&tok);
}

static enum coffer_err verify_claims_payload(struct keys *k, const char *payload)
{
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	assert_int_equal(jws_sign(k->sk, NULL, payload, strlen(payload), &tok), COFFER_OK);
	enum coffer_err rc = verify(k->pk, &tok);
	buf_release(&tok);
	return rc;
}

static void test_expired(void **state)
{
	struct keys *k = *state;
	char p[128];
	assert_int_equal(fmt_into(p, sizeof(p), "{\"exp\":%d}", NOW - 1), COFFER_OK);
	assert_int_equal(verify_claims_payload(k, p), COFFER_ERR_UNAUTH);
	/* exp == now is expired already */
	assert_int_equal(fmt_into(p, sizeof(p), "{\"exp\":%d}", NOW), COFFER_OK);
	assert_int_equal(verify_claims_payload(k, p), COFFER_ERR_UNAUTH);
	assert_int_equal(fmt_into(p, sizeof(p), "{\"app\":\"a\",\"exp\":%d}", NOW + 1), COFFER_OK);
	assert_int_equal(verify_claims_payload(k, p), COFFER_OK);
	/* JSON whitespace before the object does not dodge the claims */
	assert_int_equal(fmt_into(p, sizeof(p), " \n{\"exp\":%d}", NOW - 1), COFFER_OK);
	assert_int_equal(verify_claims_payload(k, p), COFFER_ERR_UNAUTH);
	/* the raw check does not look at claims */
	struct buf tok, payload;
	buf_init(&tok, TOK_MAX), buf_init(&payload, TOK_MAX);
	assert_int_equal(fmt_into(p, sizeof(p), "{\"exp\":%d}", NOW - 1), COFFER_OK);
	assert_int_equal(jws_sign(k->sk, NULL, p, strlen(p), &tok), COFFER_OK);
	assert_int_equal(jws_verify_sig(k->pk, tok.ptr, tok.len, &payload), COFFER_OK);
	assert_string_equal(payload.ptr, p);
	buf_release(&payload), buf_release(&tok);
}

static void test_claims(void **state)
{
	struct keys *k = *state;
	char p[256];
	json_t *claims = NULL;

	/* not yet valid, issued in the future (beyond the skew), within the skew */
	assert_int_equal(fmt_into(p, sizeof(p), "{\"nbf\":%d}", NOW + JWS_CLOCK_SKEW_S + 1), COFFER_OK);
	assert_int_equal(verify_claims_payload(k, p), COFFER_ERR_UNAUTH);
	assert_int_equal(fmt_into(p, sizeof(p), "{\"iat\":%d}", NOW + JWS_CLOCK_SKEW_S + 1), COFFER_OK);
	assert_int_equal(verify_claims_payload(k, p), COFFER_ERR_UNAUTH);
	assert_int_equal(fmt_into(p, sizeof(p), "{\"iat\":%d,\"nbf\":%d,\"exp\":%d}",
				  NOW + JWS_CLOCK_SKEW_S, NOW + JWS_CLOCK_SKEW_S, NOW + 600),
			 COFFER_OK);
	assert_int_equal(verify_claims_payload(k, p), COFFER_OK);

	/* malformed claims */
	const char *bad[] = {
		"{\"exp\":\"1800000000\"}", "{\"exp\":1800000000.5}", "{\"exp\":null}",
		"{\"exp\":1800000000,\"exp\":1800000001}", "{\"exp\":99999999999999999999}",
		"{\"iat\":1800000001,\"exp\":1800000000}", "{\"exp\":1800000000", "{}x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(verify_claims_payload(k, bad[i]), COFFER_ERR_INVALID);
	/* a payload that is not an object is opaque to jws_verify */
	assert_int_equal(verify_claims_payload(k, "[1]"), COFFER_OK);
	assert_int_equal(verify_claims_payload(k, ""), COFFER_OK);

	/* jws_verify_claims hands back the object, and wants an object */
	const char *ok = "{\"app\":\"web\",\"exp\":1800000000}";
	assert_int_equal(jws_verify_claims(ok, strlen(ok), NOW, &claims), COFFER_OK);
	assert_non_null(claims);
	assert_string_equal(json_string_value(json_object_get(claims, "app")), "web");
	json_decref(claims);
	claims = NULL;
	assert_int_equal(jws_verify_claims("[1]", 3, NOW, &claims), COFFER_ERR_INVALID);
	assert_int_equal(jws_verify_claims(ok, strlen(ok), 1800000000, &claims), COFFER_ERR_UNAUTH);
	assert_null(claims);
}

static void test_sizes(void **state)
{
	struct keys *k = *state;
	struct buf tok, small;
	buf_init(&tok, TOK_MAX), buf_init(&small, 4);

	/* the largest payload that fits in a token, and one byte more */
	size_t fit = (JWS_TOKEN_MAX - B64URL_LEN(15) - 2 - B64URL_LEN(JWS_SIG_LEN)) * 3 / 4;
	char *p = malloc(fit + 3);
	assert_non_null(p);
	memset(p, 'x', fit + 3);
	assert_int_equal(jws_sign(k->sk, NULL, p, fit, &tok), COFFER_OK);
	assert_true(tok.len <= JWS_TOKEN_MAX);
	assert_int_equal(verify(k->pk, &tok), COFFER_OK);
	/* the payload does not fit the caller's buffer: refused, left alone */
	assert_int_equal(buf_adds(&small, "keep"), COFFER_OK);
	assert_int_equal(jws_verify(k->pk, tok.ptr, tok.len, NOW, &small), COFFER_ERR_TOO_LARGE);
	assert_string_equal(small.ptr, "keep");
	assert_int_equal(jws_sign(k->sk, NULL, p, fit + 3, &tok), COFFER_ERR_TOO_LARGE);
	/* a well-signed token past the limit is refused */
	p[fit + 3 - 1] = '\0';
	make_token(k->sk, "{\"alg\":\"EdDSA\"}", p, &tok);
	assert_true(tok.len > JWS_TOKEN_MAX);
	assert_int_equal(verify(k->pk, &tok), COFFER_ERR_INVALID);
	free(p);
	/* an empty token */
	assert_int_equal(jws_verify(k->pk, "", 0, NOW, &tok), COFFER_ERR_INVALID);
	buf_release(&small), buf_release(&tok);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8037_vector),
		cmocka_unit_test(test_kid),
		cmocka_unit_test(test_alg_none),
		cmocka_unit_test(test_alg_hs256),
		cmocka_unit_test(test_header_rules),
		cmocka_unit_test(test_header_not_json),
		cmocka_unit_test(test_extra_segment),
		cmocka_unit_test(test_trailing_garbage),
		cmocka_unit_test(test_bad_base64url),
		cmocka_unit_test(test_signature_length),
		cmocka_unit_test(test_flipped_signature),
		cmocka_unit_test(test_flipped_payload),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_sizes),
	};
	return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
