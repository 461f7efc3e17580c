/* boottoken: a minted token verifies and says who it is for; every claim is
 * required with its type and form, no other claim passes, time and lifetime
 * rules hold, and any other key or any tampering is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "boottoken.h"
#include "jws.h"

#define NOW 1700000000
#define TOK_MAX 8192
#define APP_A "a1b2c3d4e5f60718293a4b5c"
#define APP_B "ffb2c3d4e5f60718293a4b5c"
#define MACHINE "0123456789abcdef01234567"
#define HOST "89abcdef0123456789abcdef"
#define JTI "00112233445566778899aabbccddeeff"

struct keys {
	struct secret *sk;
	unsigned char pk[JWS_PK_LEN];
	struct secret *other_sk;
	unsigned char other_pk[JWS_PK_LEN];
};

static int setup(void **state)
{
	struct keys *k = calloc(1, sizeof(*k));
	if (!k || jws_generate_key(&k->sk, k->pk) || jws_generate_key(&k->other_sk, k->other_pk))
		return -1;
	*state = k;
	return 0;
}

static int teardown(void **state)
{
	struct keys *k = *state;
	secret_free(k->other_sk);
	secret_free(k->sk);
	free(k);
	return 0;
}

static struct boottoken_claims claims_for(const char *app)
{
	struct boottoken_claims c;
	memset(&c, 0, sizeof(c));
	assert_int_equal(str_copy(c.app, sizeof(c.app), app), COFFER_OK);
	assert_int_equal(str_copy(c.machine, sizeof(c.machine), MACHINE), COFFER_OK);
	assert_int_equal(str_copy(c.host, sizeof(c.host), HOST), COFFER_OK);
	c.release = 3;
	c.secrets_version = 7;
	return c;
}

/* A valid payload as a JSON object, for the tests to break one way each. */
static json_t *good_payload(void)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "app", APP_A, "machine", MACHINE, "host",
			      HOST, "release", (json_int_t)3, "secrets_version", (json_int_t)7, "iat",
			      (json_int_t)NOW, "exp", (json_int_t)(NOW + BOOTTOKEN_TTL_DEFAULT), "jti", JTI);
	assert_non_null(o);
	return o;
}

/* Signs a raw payload with the right key: the refusals that follow are about
 * the claims, not the signature. */
static void sign_raw(const struct keys *k, const char *payload, struct buf *tok)
{
	assert_int_equal(jws_sign(k->sk, NULL, payload, strlen(payload), tok), COFFER_OK);
}

/* Signs o (and drops it), then verifies at now. */
static enum coffer_err verify_json(const struct keys *k, json_t *o, int64_t now, struct boottoken_claims *out)
{
	struct buf tok;
	char *s = json_dumps(o, JSON_COMPACT);
	assert_non_null(s);
	json_decref(o);
	buf_init(&tok, TOK_MAX);
	sign_raw(k, s, &tok);
	free(s);
	enum coffer_err rc = boottoken_verify(k->pk, tok.ptr, tok.len, now, out);
	buf_release(&tok);
	return rc;
}

static int is_hex32(const char *s)
{
	if (strlen(s) != BOOTTOKEN_JTI_LEN)
		return 0;
	return strspn(s, "0123456789abcdef") == BOOTTOKEN_JTI_LEN;
}

static void test_roundtrip(void **state)
{
	struct keys *k = *state;
	struct boottoken_claims in = claims_for(APP_A), minted, minted2, out;
	struct buf tok, tok2;

	buf_init(&tok, TOK_MAX);
	buf_init(&tok2, TOK_MAX);
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, &minted), COFFER_OK);
	assert_int_equal(minted.iat, NOW);
	assert_int_equal(minted.exp, NOW + BOOTTOKEN_TTL_DEFAULT);
	assert_true(is_hex32(minted.jti));

	memset(&out, 0, sizeof(out));
	assert_int_equal(boottoken_verify(k->pk, tok.ptr, tok.len, NOW, &out), COFFER_OK);
	assert_string_equal(out.app, APP_A);
	assert_string_equal(out.machine, MACHINE);
	assert_string_equal(out.host, HOST);
	assert_int_equal(out.release, 3);
	assert_int_equal(out.secrets_version, 7);
	assert_int_equal(out.iat, NOW);
	assert_int_equal(out.exp, NOW + BOOTTOKEN_TTL_DEFAULT);
	assert_string_equal(out.jti, minted.jti);
	assert_memory_equal(&out, &minted, sizeof(out));

	/* the payload holds exactly the documented claims, in that order */
	struct buf payload;
	buf_init(&payload, TOK_MAX);
	assert_int_equal(jws_verify_sig(k->pk, tok.ptr, tok.len, &payload), COFFER_OK);
	char expect[512];
	assert_int_equal(fmt_into(expect, sizeof(expect),
				  "{\"app\":\"" APP_A "\",\"machine\":\"" MACHINE "\",\"host\":\"" HOST
				  "\",\"release\":3,\"secrets_version\":7,\"iat\":%d,\"exp\":%d,\"jti\":\"%s\"}",
				  NOW, NOW + BOOTTOKEN_TTL_DEFAULT, minted.jti),
			 COFFER_OK);
	assert_string_equal(payload.ptr, expect);
	buf_release(&payload);

	/* a fresh jti every time */
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok2, &minted2), COFFER_OK);
	assert_string_not_equal(minted.jti, minted2.jti);

	/* an explicit exp, and minted may be NULL */
	in.exp = NOW + 60;
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok2, NULL), COFFER_OK);
	assert_int_equal(boottoken_verify(k->pk, tok2.ptr, tok2.len, NOW, &out), COFFER_OK);
	assert_int_equal(out.exp, NOW + 60);
	buf_release(&tok2);
	buf_release(&tok);
}

/* The crafting path itself gives a token that verifies: the refusals below
 * come from the one thing each test changes. */
static void test_crafted_control(void **state)
{
	struct boottoken_claims out;
	assert_int_equal(verify_json(*state, good_payload(), NOW, &out), COFFER_OK);
	assert_string_equal(out.jti, JTI);
	assert_string_equal(out.app, APP_A);
}

static const char *const claims[] = { "app", "machine", "host", "release", "secrets_version", "iat", "exp", "jti" };
#define NCLAIMS (sizeof(claims) / sizeof(claims[0]))

static void test_each_claim_missing(void **state)
{
	for (size_t i = 0; i < NCLAIMS; i++) {
		struct boottoken_claims out, before;
		memset(&out, 0x5a, sizeof(out));
		before = out;
		json_t *o = good_payload();
		assert_int_equal(json_object_del(o, claims[i]), 0);
		enum coffer_err rc = verify_json(*state, o, NOW, &out);
		if (rc != COFFER_ERR_INVALID)
			fail_msg("without \"%s\": %s", claims[i], coffer_err_name(rc));
		assert_memory_equal(&out, &before, sizeof(out)); /* untouched on failure */
	}
}

static void test_wrong_type(void **state)
{
	for (size_t i = 0; i < NCLAIMS; i++) {
		int is_string = !strcmp(claims[i], "app") || !strcmp(claims[i], "machine") ||
				!strcmp(claims[i], "host") || !strcmp(claims[i], "jti");
		json_t *wrong[] = {
			is_string ? json_integer(1) : json_string("1"),
			json_real(is_string ? 1.5 : 3.0),
			json_true(),
			json_null(),
			json_array(),
			json_object(),
		};
		for (size_t j = 0; j < sizeof(wrong) / sizeof(wrong[0]); j++) {
			struct boottoken_claims out;
			json_t *o = good_payload();
			assert_int_equal(json_object_set_new(o, claims[i], wrong[j]), 0);
			enum coffer_err rc = verify_json(*state, o, NOW, &out);
			if (rc != COFFER_ERR_INVALID)
				fail_msg("\"%s\" of wrong type %zu: %s", claims[i], j, coffer_err_name(rc));
		}
	}
}

static void test_bad_forms(void **state)
{
	static const struct {
		const char *claim;
		const char *value;
	} bad[] = {
		{ "app", "" },
		{ "app", "App" },
		{ "app", "a-b" },
		{ "app", "a b" },
		{ "app", "a.b" },
		{ "app", "0123456789012345678901234567890123456789012345678901234567890123x" }, /* 65 */
		{ "machine", "m\xc3\xa9" },
		{ "host", "h/1" },
		{ "jti", "0011223344556677889900aabbccddee0" },  /* 33 */
		{ "jti", "0011223344556677889900aabbccdde" },    /* 31 */
		{ "jti", "00112233445566778899AABBCCDDEEFF" },   /* upper case */
		{ "jti", "0011223344556677889900aabbccddeg" },   /* not hex */
		{ "jti", "" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct boottoken_claims out;
		json_t *o = good_payload();
		assert_int_equal(json_object_set_new(o, bad[i].claim, json_string(bad[i].value)), 0);
		enum coffer_err rc = verify_json(*state, o, NOW, &out);
		if (rc != COFFER_ERR_INVALID)
			fail_msg("case %zu (\"%s\"): %s", i, bad[i].claim, coffer_err_name(rc));
	}
	/* the longest id passes */
	struct boottoken_claims out;
	json_t *o = good_payload();
	const char *id64 = "0123456789012345678901234567890123456789012345678901234567890123";
	assert_int_equal(json_object_set_new(o, "host", json_string(id64)), 0);
	assert_int_equal(verify_json(*state, o, NOW, &out), COFFER_OK);
	assert_string_equal(out.host, id64);

	/* negative integers */
	const char *ints[] = { "release", "secrets_version", "iat" };
	for (size_t i = 0; i < 3; i++) {
		o = good_payload();
		assert_int_equal(json_object_set_new(o, ints[i], json_integer(-1)), 0);
		assert_int_equal(verify_json(*state, o, NOW, &out), COFFER_ERR_INVALID);
	}
	/* zero versions are allowed (0 = none) */
	o = good_payload();
	assert_int_equal(json_object_set_new(o, "secrets_version", json_integer(0)), 0);
	assert_int_equal(verify_json(*state, o, NOW, &out), COFFER_OK);
	assert_int_equal(out.secrets_version, 0);
}

static void test_unknown_claim(void **state)
{
	const char *extra[] = { "nbf", "aud", "sub", "scope", "App", "" };
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		struct boottoken_claims out;
		json_t *o = good_payload();
		assert_int_equal(json_object_set_new(o, extra[i], json_integer(NOW)), 0);
		enum coffer_err rc = verify_json(*state, o, NOW, &out);
		if (rc != COFFER_ERR_INVALID)
			fail_msg("with \"%s\": %s", extra[i], coffer_err_name(rc));
	}
}

static void test_not_one_object(void **state)
{
	struct keys *k = *state;
	const char *payloads[] = {
		"[]",
		"\"x\"",
		"{\"app\":\"" APP_A "\",\"app\":\"" APP_B "\",\"machine\":\"" MACHINE "\",\"host\":\"" HOST
		"\",\"release\":3,\"secrets_version\":7,\"iat\":1700000000,\"exp\":1700000600,\"jti\":\"" JTI "\"}",
		"{\"app\":\"" APP_A "\",\"machine\":\"" MACHINE "\",\"host\":\"" HOST
		"\",\"release\":3,\"secrets_version\":7,\"iat\":1700000000,\"exp\":1700000600,\"jti\":\"" JTI "\"} x",
		"{\"app\":\"" APP_A "\",\"machine\":\"" MACHINE "\",\"host\":\"" HOST
		"\",\"release\":99999999999999999999,\"secrets_version\":7,\"iat\":1700000000,\"exp\":1700000600,"
		"\"jti\":\"" JTI "\"}",
	};
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		struct boottoken_claims out;
		struct buf tok;
		buf_init(&tok, TOK_MAX);
		sign_raw(k, payloads[i], &tok);
		enum coffer_err rc = boottoken_verify(k->pk, tok.ptr, tok.len, NOW, &out);
		if (rc != COFFER_ERR_INVALID)
			fail_msg("payload %zu: %s", i, coffer_err_name(rc));
		buf_release(&tok);
	}

	/* a payload past BOOTTOKEN_PAYLOAD_MAX */
	struct boottoken_claims out;
	char big[BOOTTOKEN_PAYLOAD_MAX + 64];
	memset(big, ' ', sizeof(big) - 1);
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	big[sizeof(big) - 1] = '\0';
	struct buf tok;
	buf_init(&tok, TOK_MAX);
	sign_raw(k, big, &tok);
	assert_int_equal(boottoken_verify(k->pk, tok.ptr, tok.len, NOW, &out), COFFER_ERR_INVALID);
	buf_release(&tok);
}

static void test_expired(void **state)
{
	struct keys *k = *state;
	struct boottoken_claims in = claims_for(APP_A), out;
	struct buf tok;

	buf_init(&tok, TOK_MAX);
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_OK);
	assert_int_equal(boottoken_verify(k->pk, tok.ptr, tok.len, NOW + BOOTTOKEN_TTL_DEFAULT - 1, &out), COFFER_OK);
	assert_int_equal(boottoken_verify(k->pk, tok.ptr, tok.len, NOW + BOOTTOKEN_TTL_DEFAULT, &out),
			 COFFER_ERR_UNAUTH);
	assert_int_equal(boottoken_verify(k->pk, tok.ptr, tok.len, NOW + 86400, &out), COFFER_ERR_UNAUTH);
	buf_release(&tok);
}

static void test_iat_in_future(void **state)
{
	struct keys *k = *state;
	struct boottoken_claims in = claims_for(APP_A), out;
	struct buf tok;

	/* within the skew: accepted */
	json_t *o = good_payload();
	assert_int_equal(json_object_set_new(o, "iat", json_integer(NOW + JWS_CLOCK_SKEW_S)), 0);
	assert_int_equal(json_object_set_new(o, "exp", json_integer(NOW + JWS_CLOCK_SKEW_S + 600)), 0);
	assert_int_equal(verify_json(k, o, NOW, &out), COFFER_OK);
	/* one second past it: refused */
	o = good_payload();
	assert_int_equal(json_object_set_new(o, "iat", json_integer(NOW + JWS_CLOCK_SKEW_S + 1)), 0);
	assert_int_equal(json_object_set_new(o, "exp", json_integer(NOW + JWS_CLOCK_SKEW_S + 601)), 0);
	assert_int_equal(verify_json(k, o, NOW, &out), COFFER_ERR_UNAUTH);

	/* minted an hour ahead */
	buf_init(&tok, TOK_MAX);
	assert_int_equal(boottoken_mint(k->sk, &in, NOW + 3600, &tok, NULL), COFFER_OK);
	assert_int_equal(boottoken_verify(k->pk, tok.ptr, tok.len, NOW, &out), COFFER_ERR_UNAUTH);
	buf_release(&tok);
}

static void test_lifetime(void **state)
{
	struct keys *k = *state;
	struct boottoken_claims in = claims_for(APP_A), out;
	struct buf tok;
	json_t *o;

	o = good_payload();
	assert_int_equal(json_object_set_new(o, "exp", json_integer(NOW + BOOTTOKEN_TTL_MAX)), 0);
	assert_int_equal(verify_json(k, o, NOW, &out), COFFER_OK);
	o = good_payload();
	assert_int_equal(json_object_set_new(o, "exp", json_integer(NOW + BOOTTOKEN_TTL_MAX + 1)), 0);
	assert_int_equal(verify_json(k, o, NOW, &out), COFFER_ERR_INVALID);
	o = good_payload();
	assert_int_equal(json_object_set_new(o, "exp", json_integer(NOW + 86400 * 365)), 0);
	assert_int_equal(verify_json(k, o, NOW, &out), COFFER_ERR_INVALID);
	o = good_payload(); /* exp == iat, verified before iat so it is not expired */
	assert_int_equal(json_object_set_new(o, "iat", json_integer(NOW + 10)), 0);
	assert_int_equal(json_object_set_new(o, "exp", json_integer(NOW + 10)), 0);
	assert_int_equal(verify_json(k, o, NOW, &out), COFFER_ERR_INVALID);
	o = good_payload(); /* exp before iat */
	assert_int_equal(json_object_set_new(o, "iat", json_integer(NOW + 10)), 0);
	assert_int_equal(json_object_set_new(o, "exp", json_integer(NOW + 5)), 0);
	assert_int_equal(verify_json(k, o, NOW, &out), COFFER_ERR_INVALID);

	/* the minter keeps to the same rule */
	buf_init(&tok, TOK_MAX);
	in.exp = NOW + BOOTTOKEN_TTL_MAX;
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_OK);
	assert_int_equal(boottoken_verify(k->pk, tok.ptr, tok.len, NOW + BOOTTOKEN_TTL_MAX - 1, &out), COFFER_OK);
	buf_reset(&tok);
	in.exp = NOW + BOOTTOKEN_TTL_MAX + 1;
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_ERR_INVALID);
	in.exp = NOW;
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_ERR_INVALID);
	in.exp = NOW - 1;
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_ERR_INVALID);
	assert_int_equal(tok.len, 0); /* untouched by the failures */
	buf_release(&tok);
}

static void test_wrong_key(void **state)
{
	struct keys *k = *state;
	struct boottoken_claims in = claims_for(APP_A), out;
	struct buf tok;

	buf_init(&tok, TOK_MAX);
	assert_int_equal(boottoken_mint(k->other_sk, &in, NOW, &tok, NULL), COFFER_OK);
	assert_int_equal(boottoken_verify(k->pk, tok.ptr, tok.len, NOW, &out), COFFER_ERR_CRYPTO);
	assert_int_equal(boottoken_verify(k->other_pk, tok.ptr, tok.len, NOW, &out), COFFER_OK);
	buf_release(&tok);
}

/* Replaces the character at i with another base64url character. */
static void flip(char *s, size_t i)
{
	s[i] = s[i] == 'A' ? 'B' : 'A';
}

static void test_tampered(void **state)
{
	struct keys *k = *state;
	struct boottoken_claims in = claims_for(APP_A), out;
	struct buf tok;

	buf_init(&tok, TOK_MAX);
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_OK);
	char *d1 = strchr(tok.ptr, '.'), *d2 = strrchr(tok.ptr, '.');
	assert_non_null(d1);
	assert_true(d2 > d1);

	size_t in_payload = (size_t)(d1 - tok.ptr) + 1 + (size_t)(d2 - d1) / 2;
	size_t in_sig = (size_t)(d2 - tok.ptr) + 10;
	size_t at[] = { in_payload, in_sig };
	for (size_t i = 0; i < 2; i++) {
		char was = tok.ptr[at[i]];
		flip(tok.ptr, at[i]);
		assert_int_equal(boottoken_verify(k->pk, tok.ptr, tok.len, NOW, &out), COFFER_ERR_CRYPTO);
		tok.ptr[at[i]] = was;
		/* restored, it verifies again */
		assert_int_equal(boottoken_verify(k->pk, tok.ptr, tok.len, NOW, &out), COFFER_OK);
	}
	/* truncated */
	assert_int_not_equal(boottoken_verify(k->pk, tok.ptr, tok.len - 1, NOW, &out), COFFER_OK);
	buf_release(&tok);
}

/* The token names its app; the keeper compares it with the app it is asked
 * to open. A token of app A is never one of app B. */
static void test_other_app(void **state)
{
	struct keys *k = *state;
	struct boottoken_claims a = claims_for(APP_A), out;
	struct buf tok;

	buf_init(&tok, TOK_MAX);
	assert_int_equal(boottoken_mint(k->sk, &a, NOW, &tok, NULL), COFFER_OK);
	assert_int_equal(boottoken_verify(k->pk, tok.ptr, tok.len, NOW, &out), COFFER_OK);
	assert_string_equal(out.app, APP_A);
	assert_string_not_equal(out.app, APP_B);

	/* and swapping the app inside the payload breaks the signature */
	char *p = strstr(tok.ptr, ".");
	assert_non_null(p);
	struct buf forged;
	buf_init(&forged, TOK_MAX);
	struct boottoken_claims b = claims_for(APP_B);
	struct buf tok_b;
	buf_init(&tok_b, TOK_MAX);
	assert_int_equal(boottoken_mint(k->sk, &b, NOW, &tok_b, NULL), COFFER_OK);
	/* header and signature of A's token around B's payload */
	char *pb = strchr(tok_b.ptr, '.'), *sb = strrchr(tok_b.ptr, '.');
	char *sa = strrchr(tok.ptr, '.');
	assert_int_equal(buf_add(&forged, tok.ptr, (size_t)(p - tok.ptr)), COFFER_OK);
	assert_int_equal(buf_add(&forged, pb, (size_t)(sb - pb)), COFFER_OK);
	assert_int_equal(buf_adds(&forged, sa), COFFER_OK);
	assert_int_equal(boottoken_verify(k->pk, forged.ptr, forged.len, NOW, &out), COFFER_ERR_CRYPTO);
	/* B's own token says B */
	assert_int_equal(boottoken_verify(k->pk, tok_b.ptr, tok_b.len, NOW, &out), COFFER_OK);
	assert_string_equal(out.app, APP_B);
	buf_release(&tok_b);
	buf_release(&forged);
	buf_release(&tok);
}

static void test_mint_refuses(void **state)
{
	struct keys *k = *state;
	struct boottoken_claims in;
	struct buf tok;

	buf_init(&tok, TOK_MAX);
	in = claims_for("App");
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_ERR_INVALID);
	in = claims_for("");
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_ERR_INVALID);
	in = claims_for("a\"b");
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_ERR_INVALID);
	in = claims_for(APP_A);
	in.host[0] = '\0';
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_ERR_INVALID);
	in = claims_for(APP_A);
	in.release = (uint64_t)INT64_MAX + 1;
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_ERR_INVALID);
	in = claims_for(APP_A);
	in.secrets_version = UINT64_MAX;
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_ERR_INVALID);
	in = claims_for(APP_A);
	assert_int_equal(boottoken_mint(k->sk, &in, -1, &tok, NULL), COFFER_ERR_INVALID);
	assert_int_equal(boottoken_mint(k->sk, &in, INT64_MAX, &tok, NULL), COFFER_ERR_INVALID);
	assert_int_equal(tok.len, 0);

	/* the largest versions round-trip */
	in.release = INT64_MAX;
	in.secrets_version = INT64_MAX;
	struct boottoken_claims out;
	assert_int_equal(boottoken_mint(k->sk, &in, NOW, &tok, NULL), COFFER_OK);
	assert_int_equal(boottoken_verify(k->pk, tok.ptr, tok.len, NOW, &out), COFFER_OK);
	assert_true(out.release == (uint64_t)INT64_MAX);
	assert_true(out.secrets_version == (uint64_t)INT64_MAX);
	buf_release(&tok);

	assert_true(boottoken_id_ok("tok_0123abc"));
	assert_false(boottoken_id_ok("tok-0123"));
	assert_false(boottoken_id_ok(NULL));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_crafted_control),
		cmocka_unit_test(test_each_claim_missing),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_bad_forms),
		cmocka_unit_test(test_unknown_claim),
		cmocka_unit_test(test_not_one_object),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_iat_in_future),
		cmocka_unit_test(test_lifetime),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_other_app),
		cmocka_unit_test(test_mint_refuses),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
