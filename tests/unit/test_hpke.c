/* Unit tests of hpke.h: every value of RFC 9180's A.2.1 vectors
 * (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, mode_base),
 * tampering, truncation, sequence limits and refused DH outputs. */
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
#include "hpke.h"
#include "secret.h"

#define VEC_MAX 4096
#define CT_MAX 4096

struct vec {
	json_t *root;
	json_t *v; /* the one test case */
};

static int vec_setup(void **state)
{
	const char *dir = getenv("COFFER_VECTORS_DIR");
	char path[PATH_MAX];
	json_error_t err;
	struct vec *vec = calloc(1, sizeof(*vec));

	if (!vec || !dir ||
	    fmt_into(path, sizeof(path), "%s/hpke-rfc9180-x25519-sha256-chacha20poly1305.json",
		     dir) != COFFER_OK)
		return -1;
	vec->root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	if (!vec->root || json_array_size(vec->root) != 1) {
		print_error("cannot load %s: %s\n", path, err.text);
		return -1;
	}
	vec->v = json_array_get(vec->root, 0);
	*state = vec;
	return 0;
}

static int vec_teardown(void **state)
{
	struct vec *vec = *state;
	json_decref(vec->root);
	free(vec);
	return 0;
}

static void hex_member(json_t *o, const char *key, struct buf *b)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (!s)
		fail_msg("vector has no \"%s\"", key);
	assert_int_equal(hex_decode_buf(s, strlen(s), b), COFFER_OK);
}

static void assert_member_equal(json_t *o, const char *key, const void *got, size_t len)
{
	struct buf b;
	buf_init(&b, VEC_MAX);
	hex_member(o, key, &b);
	assert_int_equal(b.len, len);
	assert_memory_equal(got, b.ptr, len);
	buf_release(&b);
}

static struct secret *secret_member(json_t *o, const char *key)
{
	struct buf b;
	struct secret *s = NULL;
	buf_init(&b, VEC_MAX);
	hex_member(o, key, &b);
	assert_int_equal(secret_from(b.ptr, b.len, &s), COFFER_OK);
	sodium_memzero(b.ptr, b.len);
	buf_release(&b);
	return s;
}

static void assert_kat_equal(json_t *v, const struct hpke_kat *kat)
{
	assert_member_equal(v, "shared_secret", kat->shared_secret, sizeof(kat->shared_secret));
	assert_member_equal(v, "key_schedule_context", kat->key_schedule_context,
			    sizeof(kat->key_schedule_context));
	assert_member_equal(v, "secret", kat->secret, sizeof(kat->secret));
	assert_member_equal(v, "key", kat->key, sizeof(kat->key));
	assert_member_equal(v, "base_nonce", kat->base_nonce, sizeof(kat->base_nonce));
	assert_member_equal(v, "exporter_secret", kat->exporter_secret,
			    sizeof(kat->exporter_secret));
}

static void test_vector_suite(void **state)
{
	struct vec *vec = *state;
	assert_int_equal(json_integer_value(json_object_get(vec->v, "mode")), 0);
	assert_int_equal(json_integer_value(json_object_get(vec->v, "kem_id")), HPKE_KEM_ID);
	assert_int_equal(json_integer_value(json_object_get(vec->v, "kdf_id")), HPKE_KDF_ID);
	assert_int_equal(json_integer_value(json_object_get(vec->v, "aead_id")), HPKE_AEAD_ID);
}

static void test_vector_keypairs(void **state)
{
	struct vec *vec = *state;
	struct secret *ikmE = secret_member(vec->v, "ikmE");
	struct secret *ikmR = secret_member(vec->v, "ikmR");
	struct secret *skE = NULL, *skR = NULL;
	unsigned char pkE[HPKE_PK_LEN], pkR[HPKE_PK_LEN], again[HPKE_PK_LEN];

	assert_int_equal(hpke_derive_keypair(ikmE, &skE, pkE), COFFER_OK);
	assert_int_equal(hpke_derive_keypair(ikmR, &skR, pkR), COFFER_OK);
	assert_member_equal(vec->v, "skEm", secret_cbytes(skE), secret_len(skE));
	assert_member_equal(vec->v, "pkEm", pkE, sizeof(pkE));
	assert_member_equal(vec->v, "skRm", secret_cbytes(skR), secret_len(skR));
	assert_member_equal(vec->v, "pkRm", pkR, sizeof(pkR));
	assert_int_equal(hpke_public_key(skR, again), COFFER_OK);
	assert_memory_equal(again, pkR, sizeof(pkR));

	/* an ikm shorter than Nsk is refused */
	struct secret *short_ikm = NULL, *never = NULL;
	assert_int_equal(secret_from("short", 5, &short_ikm), COFFER_OK);
	assert_int_equal(hpke_derive_keypair(short_ikm, &never, again), COFFER_ERR_INVALID);
	assert_null(never);

	secret_free(short_ikm);
	secret_free(skR), secret_free(skE), secret_free(ikmR), secret_free(ikmE);
}

/* Both sides of the setup, every intermediate value, then every encryption
 * sealed and opened, and every export. */
static void test_vector_contexts(void **state)
{
	struct vec *vec = *state;
	json_t *v = vec->v;
	struct secret *ikmE = secret_member(v, "ikmE");
	struct secret *skR = secret_member(v, "skRm");
	struct hpke_ctx *s = NULL, *r = NULL;
	struct hpke_kat kat_s, kat_r;
	unsigned char enc[HPKE_ENC_LEN];
	struct buf info, pkR, aad, pt_b, ct, want;
	json_t *e;
	size_t i;

	buf_init(&info, VEC_MAX), buf_init(&pkR, VEC_MAX), buf_init(&aad, VEC_MAX);
	buf_init(&pt_b, VEC_MAX), buf_init(&ct, CT_MAX), buf_init(&want, VEC_MAX);
	hex_member(v, "info", &info);
	hex_member(v, "pkRm", &pkR);
	assert_int_equal(pkR.len, HPKE_PK_LEN);

	assert_int_equal(hpke_setup_s_derand((unsigned char *)pkR.ptr, ikmE, info.ptr, info.len, enc,
					     &s, &kat_s),
			 COFFER_OK);
	assert_member_equal(v, "enc", enc, sizeof(enc));
	assert_kat_equal(v, &kat_s);
	assert_int_equal(hpke_ctx_role(s), HPKE_SENDER);

	assert_int_equal(hpke_setup_r_kat(enc, skR, info.ptr, info.len, &r, &kat_r), COFFER_OK);
	assert_kat_equal(v, &kat_r);
	assert_int_equal(hpke_ctx_role(r), HPKE_RECEIVER);

	json_t *encs = json_object_get(v, "encryptions");
	assert_int_equal(json_array_size(encs), 6);
	json_array_foreach(encs, i, e) {
		uint64_t seq = (uint64_t)json_integer_value(json_object_get(e, "seq"));
		struct secret *pt = secret_member(e, "pt");
		struct secret *opened = NULL;

		hex_member(e, "aad", &aad);
		hex_member(e, "ct", &want);

		/* the sender reaches seq by sealing every message in between */
		assert_true(hpke_ctx_seq(s) <= seq);
		while (hpke_ctx_seq(s) < seq)
			assert_int_equal(hpke_ctx_seal(s, "", 0, pt, &ct), COFFER_OK);
		assert_int_equal(hpke_ctx_seal(s, aad.ptr, aad.len, pt, &ct), COFFER_OK);
		assert_int_equal(ct.len, want.len);
		assert_memory_equal(ct.ptr, want.ptr, want.len);
		assert_int_equal(hpke_ctx_seq(s), seq + 1);

		/* the receiver jumps to seq */
		assert_int_equal(hpke_ctx_advance(r, seq), COFFER_OK);
		assert_int_equal(hpke_ctx_open(r, aad.ptr, aad.len, want.ptr, want.len, &opened),
				 COFFER_OK);
		assert_true(secret_equal(opened, pt));
		assert_int_equal(hpke_ctx_seq(r), seq + 1);

		/* the nonce in the vector is base_nonce XOR seq, as the code uses */
		unsigned char nonce[HPKE_NONCE_LEN];
		memcpy(nonce, kat_s.base_nonce, sizeof(nonce));
		for (int b = 0; b < 8; b++)
			nonce[HPKE_NONCE_LEN - 1 - b] ^= (unsigned char)(seq >> (8 * b));
		assert_member_equal(e, "nonce", nonce, sizeof(nonce));

		secret_free(opened);
		secret_free(pt);
	}

	json_t *exports = json_object_get(v, "exports");
	assert_int_equal(json_array_size(exports), 3);
	json_array_foreach(exports, i, e) {
		size_t L = (size_t)json_integer_value(json_object_get(e, "L"));
		struct secret *xs = NULL, *xr = NULL;
		struct buf xctx;

		buf_init(&xctx, VEC_MAX);
		hex_member(e, "exporter_context", &xctx);
		assert_int_equal(hpke_ctx_export(s, xctx.ptr, xctx.len, L, &xs), COFFER_OK);
		assert_int_equal(hpke_ctx_export(r, xctx.ptr, xctx.len, L, &xr), COFFER_OK);
		assert_member_equal(e, "exported_value", secret_cbytes(xs), secret_len(xs));
		assert_member_equal(e, "exported_value", secret_cbytes(xr), secret_len(xr));
		secret_free(xr), secret_free(xs);
		buf_release(&xctx);
	}

	sodium_memzero(&kat_s, sizeof(kat_s));
	sodium_memzero(&kat_r, sizeof(kat_r));
	hpke_ctx_free(r), hpke_ctx_free(s);
	buf_release(&want), buf_release(&ct), buf_release(&pt_b);
	buf_release(&aad), buf_release(&pkR), buf_release(&info);
	secret_free(skR), secret_free(ikmE);
}

/* A context refuses to go back, to run out of sequence numbers, and to be
 * used in the other role. */
static void test_sequence_and_roles(void **state)
{
	(void)state;
	struct secret *skR = NULL, *pt = NULL, *opened = NULL;
	struct hpke_ctx *s = NULL, *r = NULL;
	unsigned char pkR[HPKE_PK_LEN], enc[HPKE_ENC_LEN];
	struct buf ct, last;

	buf_init(&ct, CT_MAX), buf_init(&last, CT_MAX);
	assert_int_equal(hpke_generate_keypair(&skR, pkR), COFFER_OK);
	assert_int_equal(secret_from("hello", 5, &pt), COFFER_OK);
	assert_int_equal(hpke_setup_s(pkR, "i", 1, enc, &s), COFFER_OK);
	assert_int_equal(hpke_setup_r(enc, skR, "i", 1, &r), COFFER_OK);

	assert_int_equal(hpke_ctx_seal(s, NULL, 0, pt, &ct), COFFER_OK);
	assert_int_equal(hpke_ctx_advance(s, 0), COFFER_ERR_INVALID); /* no nonce reuse */
	assert_int_equal(hpke_ctx_seq(s), 1);

	/* the last usable sequence number works; the one after is refused */
	assert_int_equal(hpke_ctx_advance(s, UINT64_MAX - 1), COFFER_OK);
	assert_int_equal(hpke_ctx_seal(s, NULL, 0, pt, &last), COFFER_OK);
	assert_int_equal(hpke_ctx_seal(s, NULL, 0, pt, &ct), COFFER_ERR_TOO_LARGE);
	assert_int_equal(hpke_ctx_seq(s), UINT64_MAX);

	assert_int_equal(hpke_ctx_advance(r, UINT64_MAX - 1), COFFER_OK);
	assert_int_equal(hpke_ctx_open(r, NULL, 0, last.ptr, last.len, &opened), COFFER_OK);
	assert_true(secret_equal(opened, pt));
	secret_free(opened);
	opened = NULL;
	assert_int_equal(hpke_ctx_open(r, NULL, 0, last.ptr, last.len, &opened),
			 COFFER_ERR_TOO_LARGE);
	assert_null(opened);

	/* roles */
	assert_int_equal(hpke_ctx_open(s, NULL, 0, ct.ptr, ct.len, &opened), COFFER_ERR_USAGE);
	assert_int_equal(hpke_ctx_seal(r, NULL, 0, pt, &ct), COFFER_ERR_USAGE);
	assert_int_equal(hpke_ctx_export(s, NULL, 0, 0, &opened), COFFER_ERR_INVALID);
	assert_int_equal(hpke_ctx_export(s, NULL, 0, HPKE_EXPORT_MAX + 1, &opened),
			 COFFER_ERR_INVALID);
	assert_null(opened);

	/* a failed open does not move the sequence */
	struct hpke_ctx *r2 = NULL;
	struct hpke_ctx *s2 = NULL;
	assert_int_equal(hpke_setup_s(pkR, NULL, 0, enc, &s2), COFFER_OK);
	assert_int_equal(hpke_setup_r(enc, skR, NULL, 0, &r2), COFFER_OK);
	assert_int_equal(hpke_ctx_seal(s2, "a", 1, pt, &ct), COFFER_OK);
	assert_int_equal(hpke_ctx_open(r2, "b", 1, ct.ptr, ct.len, &opened), COFFER_ERR_CRYPTO);
	assert_int_equal(hpke_ctx_seq(r2), 0);
	assert_int_equal(hpke_ctx_open(r2, "a", 1, ct.ptr, ct.len, &opened), COFFER_OK);
	assert_true(secret_equal(opened, pt));
	secret_free(opened);

	hpke_ctx_free(s2), hpke_ctx_free(r2);
	hpke_ctx_free(r), hpke_ctx_free(s);
	secret_free(pt), secret_free(skR);
	buf_release(&last), buf_release(&ct);
}

struct sealed {
	struct secret *skR;
	struct secret *pt;
	struct buf msg; /* enc || ct || tag */
};

static const char info_str[] = "coffer test info";
static const char aad_str[] = "app=a name=DB key=1";

static void sealed_init(struct sealed *x)
{
	unsigned char pkR[HPKE_PK_LEN];
	buf_init(&x->msg, CT_MAX);
	assert_int_equal(hpke_generate_keypair(&x->skR, pkR), COFFER_OK);
	assert_int_equal(secret_from("postgres://u:p@h/db", 19, &x->pt), COFFER_OK);
	assert_int_equal(hpke_seal(pkR, info_str, strlen(info_str), aad_str, strlen(aad_str),
				   x->pt, &x->msg),
			 COFFER_OK);
	assert_int_equal(x->msg.len, HPKE_ENC_LEN + 19 + HPKE_TAG_LEN);
}

static void sealed_release(struct sealed *x)
{
	buf_release(&x->msg);
	secret_free(x->pt);
	secret_free(x->skR);
}

/* Opens x->msg with x->skR and the given info and aad. */
static enum coffer_err open_with(struct sealed *x, const char *info, const char *aad,
				 const void *msg, size_t len)
{
	struct secret *pt = NULL;
	enum coffer_err rc = hpke_open(x->skR, info, strlen(info), aad, strlen(aad), msg, len, &pt);
	if (rc == COFFER_OK)
		assert_true(secret_equal(pt, x->pt));
	else
		assert_null(pt);
	secret_free(pt);
	return rc;
}

static void test_single_shot(void **state)
{
	(void)state;
	struct sealed x;
	sealed_init(&x);
	assert_int_equal(open_with(&x, info_str, aad_str, x.msg.ptr, x.msg.len), COFFER_OK);

	/* two seals of one value differ (fresh ephemeral key) */
	struct buf again;
	unsigned char pkR[HPKE_PK_LEN];
	buf_init(&again, CT_MAX);
	assert_int_equal(hpke_public_key(x.skR, pkR), COFFER_OK);
	assert_int_equal(hpke_seal(pkR, info_str, strlen(info_str), aad_str, strlen(aad_str), x.pt,
				   &again),
			 COFFER_OK);
	assert_int_equal(again.len, x.msg.len);
	assert_memory_not_equal(again.ptr, x.msg.ptr, x.msg.len);
	assert_int_equal(open_with(&x, info_str, aad_str, again.ptr, again.len), COFFER_OK);

	/* an output buffer too small is refused and left as it was */
	struct buf small;
	buf_init(&small, HPKE_ENC_LEN + HPKE_TAG_LEN);
	assert_int_equal(buf_adds(&small, "keep"), COFFER_OK);
	assert_int_equal(hpke_seal(pkR, NULL, 0, NULL, 0, x.pt, &small), COFFER_ERR_TOO_LARGE);
	assert_string_equal(small.ptr, "keep");

	buf_release(&small);
	buf_release(&again);
	sealed_release(&x);
}

static void flip(struct buf *b, size_t at)
{
	b->ptr[at] ^= 0x01;
}

static void test_tamper_enc(void **state)
{
	(void)state;
	struct sealed x;
	sealed_init(&x);
	flip(&x.msg, 3);
	assert_int_equal(open_with(&x, info_str, aad_str, x.msg.ptr, x.msg.len), COFFER_ERR_CRYPTO);
	sealed_release(&x);
}

static void test_tamper_ciphertext(void **state)
{
	(void)state;
	struct sealed x;
	sealed_init(&x);
	flip(&x.msg, HPKE_ENC_LEN + 2);
	assert_int_equal(open_with(&x, info_str, aad_str, x.msg.ptr, x.msg.len), COFFER_ERR_CRYPTO);
	sealed_release(&x);
}

static void test_tamper_tag(void **state)
{
	(void)state;
	struct sealed x;
	sealed_init(&x);
	flip(&x.msg, x.msg.len - 1);
	assert_int_equal(open_with(&x, info_str, aad_str, x.msg.ptr, x.msg.len), COFFER_ERR_CRYPTO);
	sealed_release(&x);
}

static void test_tamper_aad(void **state)
{
	(void)state;
	struct sealed x;
	sealed_init(&x);
	/* one bit of the aad: 'a' -> '`' */
	assert_int_equal(open_with(&x, info_str, "`pp=a name=DB key=1", x.msg.ptr, x.msg.len),
			 COFFER_ERR_CRYPTO);
	assert_int_equal(open_with(&x, info_str, "", x.msg.ptr, x.msg.len), COFFER_ERR_CRYPTO);
	sealed_release(&x);
}

static void test_tamper_info(void **state)
{
	(void)state;
	struct sealed x;
	sealed_init(&x);
	assert_int_equal(open_with(&x, "boffer test info", aad_str, x.msg.ptr, x.msg.len),
			 COFFER_ERR_CRYPTO);
	sealed_release(&x);
}

static void test_wrong_key(void **state)
{
	(void)state;
	struct sealed x;
	struct secret *other = NULL, *pt = NULL;
	unsigned char pk[HPKE_PK_LEN];

	sealed_init(&x);
	assert_int_equal(hpke_generate_keypair(&other, pk), COFFER_OK);
	assert_int_equal(hpke_open(other, info_str, strlen(info_str), aad_str, strlen(aad_str),
				   x.msg.ptr, x.msg.len, &pt),
			 COFFER_ERR_CRYPTO);
	assert_null(pt);
	secret_free(other);
	sealed_release(&x);
}

static void test_truncated(void **state)
{
	(void)state;
	struct sealed x;
	sealed_init(&x);
	/* nothing, shorter than enc, enc only, shorter than enc + tag */
	const size_t lens[] = { 0, 1, HPKE_ENC_LEN - 1, HPKE_ENC_LEN, HPKE_ENC_LEN + 1,
				HPKE_ENC_LEN + HPKE_TAG_LEN - 1 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		/* a copy of exactly that length, so ASan sees any read past it */
		unsigned char *cut = malloc(lens[i] ? lens[i] : 1);
		assert_non_null(cut);
		memcpy(cut, x.msg.ptr, lens[i]);
		assert_int_equal(open_with(&x, info_str, aad_str, cut, lens[i]), COFFER_ERR_INVALID);
		free(cut);
	}
	/* enc + tag with the ciphertext cut off: well-formed, but wrong */
	unsigned char *short_ct = malloc(HPKE_ENC_LEN + HPKE_TAG_LEN);
	assert_non_null(short_ct);
	memcpy(short_ct, x.msg.ptr, HPKE_ENC_LEN + HPKE_TAG_LEN);
	assert_int_equal(open_with(&x, info_str, aad_str, short_ct, HPKE_ENC_LEN + HPKE_TAG_LEN),
			 COFFER_ERR_CRYPTO);
	free(short_ct);
	assert_int_equal(open_with(&x, info_str, aad_str, x.msg.ptr, x.msg.len - 1),
			 COFFER_ERR_CRYPTO);
	sealed_release(&x);
}

/* RFC 9180 §7.1.4: a DH output of all zeros (a small-order public key) is
 * refused on both sides. */
static void test_zero_dh(void **state)
{
	(void)state;
	static const unsigned char small_order[][HPKE_PK_LEN] = {
		{ 0 },	/* 0 */
		{ 1 },	/* 1 */
		{ 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
		  0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
		  0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00 }, /* order 8 */
	};
	struct secret *skR = NULL, *pt = NULL, *out = NULL;
	unsigned char pkR[HPKE_PK_LEN], enc[HPKE_ENC_LEN];
	struct hpke_ctx *ctx = NULL;
	struct buf msg;

	buf_init(&msg, CT_MAX);
	assert_int_equal(hpke_generate_keypair(&skR, pkR), COFFER_OK);
	assert_int_equal(secret_from("v", 1, &pt), COFFER_OK);
	for (size_t i = 0; i < sizeof(small_order) / sizeof(small_order[0]); i++) {
		assert_int_equal(hpke_seal(small_order[i], NULL, 0, NULL, 0, pt, &msg),
				 COFFER_ERR_CRYPTO);
		assert_int_equal(msg.len, 0);
		assert_int_equal(hpke_setup_s(small_order[i], NULL, 0, enc, &ctx), COFFER_ERR_CRYPTO);
		assert_int_equal(hpke_setup_r(small_order[i], skR, NULL, 0, &ctx), COFFER_ERR_CRYPTO);
		assert_null(ctx);

		unsigned char forged[HPKE_ENC_LEN + HPKE_TAG_LEN + 1] = { 0 };
		memcpy(forged, small_order[i], HPKE_ENC_LEN);
		assert_int_equal(hpke_open(skR, NULL, 0, NULL, 0, forged, sizeof(forged), &out),
				 COFFER_ERR_CRYPTO);
		assert_null(out);
	}
	buf_release(&msg);
	secret_free(pt), secret_free(skR);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest vectors[] = {
		cmocka_unit_test(test_vector_suite),
		cmocka_unit_test(test_vector_keypairs),
		cmocka_unit_test(test_vector_contexts),
	};
	const struct CMUnitTest others[] = {
		cmocka_unit_test(test_sequence_and_roles),
		cmocka_unit_test(test_single_shot),
		cmocka_unit_test(test_tamper_enc),
		cmocka_unit_test(test_tamper_ciphertext),
		cmocka_unit_test(test_tamper_tag),
		cmocka_unit_test(test_tamper_aad),
		cmocka_unit_test(test_tamper_info),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_zero_dh),
	};
	int failed = cmocka_run_group_tests_name("vectors", vectors, vec_setup, vec_teardown);
	failed += cmocka_run_group_tests_name("hpke", others, NULL, NULL);
	return failed ? 1 : 0;
}
