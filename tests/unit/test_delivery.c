/* delivery: secrets sealed to a host open only with that host's key, for that
 * host, machine, jti and spec hash; the plaintext layout is the documented one, and a
 * malformed one is refused even when it is properly sealed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "delivery.h"

#define HOST "89abcdef0123456789abcdef"
#define MACHINE "0123456789abcdef01234567"
#define JTI "00112233445566778899aabbccddeeff"
/* the hex SHA-256 of a release config */
#define SPEC "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
#define SPEC2 "9f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"
#define CANARY "canary-7d1e04-delivery"
#define SEALED_MAX ((size_t)4 << 20)

struct fixture {
	struct secret *sk;
	unsigned char pk[HPKE_PK_LEN];
	struct secret *other_sk;
	unsigned char other_pk[HPKE_PK_LEN];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || hpke_generate_keypair(&f->sk, f->pk) || hpke_generate_keypair(&f->other_sk, f->other_pk))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	secret_free(f->other_sk);
	secret_free(f->sk);
	free(f);
	return 0;
}

static struct secret *sec(const void *data, size_t len)
{
	struct secret *s = NULL;
	assert_int_equal(secret_from(data, len, &s), COFFER_OK);
	return s;
}

static void add_u16(struct buf *b, size_t v)
{
	unsigned char be[2] = { (unsigned char)(v >> 8), (unsigned char)v };
	assert_int_equal(buf_add(b, be, 2), COFFER_OK);
}

static void add_u32(struct buf *b, size_t v)
{
	unsigned char be[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
				(unsigned char)v };
	assert_int_equal(buf_add(b, be, 4), COFFER_OK);
}

/* The documented aad, built independently of delivery.c. */
static void make_aad(const char *host, const char *machine, const char *jti, const char *spec, struct buf *aad)
{
	const char *ids[] = { host, machine, jti, spec };
	for (int i = 0; i < 4; i++) {
		add_u16(aad, strlen(ids[i]));
		assert_int_equal(buf_adds(aad, ids[i]), COFFER_OK);
	}
}

/* One item of the documented plaintext. */
static void add_item(struct buf *pt, const char *name, size_t nl, const void *value, size_t vl)
{
	add_u16(pt, nl);
	assert_int_equal(buf_add(pt, name, nl), COFFER_OK);
	add_u32(pt, vl);
	assert_int_equal(buf_add(pt, value, vl), COFFER_OK);
}

/* The test-only path: seals any plaintext exactly as delivery_seal would
 * (right info, right aad), then opens it with delivery_open. */
static enum coffer_err open_crafted(const struct fixture *f, const struct buf *plain, struct delivery_list *out)
{
	struct buf aad, sealed;
	struct secret *pt = sec(plain->ptr, plain->len);
	buf_init(&aad, 1024);
	buf_init(&sealed, SEALED_MAX);
	make_aad(HOST, MACHINE, JTI, SPEC, &aad);
	assert_int_equal(hpke_seal(f->pk, DELIVERY_INFO, strlen(DELIVERY_INFO), aad.ptr, aad.len, pt, &sealed),
			 COFFER_OK);
	enum coffer_err rc = delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, sealed.len, out);
	buf_release(&sealed);
	buf_release(&aad);
	secret_free(pt);
	return rc;
}

static void test_roundtrip_empty(void **state)
{
	struct fixture *f = *state;
	struct delivery_list l;
	struct buf sealed;

	buf_init(&sealed, SEALED_MAX);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, NULL, 0, &sealed), COFFER_OK);
	assert_int_equal(sealed.len, DELIVERY_COUNT_LEN + DELIVERY_OVERHEAD);
	l.n = 99;
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, sealed.len, &l), COFFER_OK);
	assert_int_equal(l.n, 0);
	assert_null(l.items);
	delivery_list_release(&l);
	buf_release(&sealed);
}

static void test_roundtrip_one(void **state)
{
	struct fixture *f = *state;
	struct secret *v = sec(CANARY, strlen(CANARY));
	struct delivery_item it = { "DATABASE_URL", v };
	struct delivery_list l;
	struct buf sealed;

	buf_init(&sealed, SEALED_MAX);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, &it, 1, &sealed), COFFER_OK);
	assert_int_equal(sealed.len,
			 DELIVERY_COUNT_LEN + DELIVERY_ITEM_OVERHEAD + strlen("DATABASE_URL") + strlen(CANARY) +
				 DELIVERY_OVERHEAD);
	assert_null(memmem(sealed.ptr, sealed.len, CANARY, strlen(CANARY)));
	assert_null(memmem(sealed.ptr, sealed.len, "DATABASE_URL", strlen("DATABASE_URL")));
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, sealed.len, &l), COFFER_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].name, "DATABASE_URL");
	assert_true(secret_equal(l.items[0].value, v));
	assert_non_null(l.arena); /* the values live in the list's one secure block */
	delivery_list_release(&l);
	assert_int_equal(l.n, 0);
	assert_null(l.items);
	assert_null(l.arena);
	buf_release(&sealed);
	secret_free(v);
}

/* 1,000 items given in descending order, one of them 64 KiB and one empty:
 * they come back ascending, each with its own value. */
static void test_roundtrip_many(void **state)
{
	struct fixture *f = *state;
	enum { N = DELIVERY_ITEMS_MAX };
	static char names[N][16];
	struct delivery_item *items = calloc(N, sizeof(*items));
	struct secret **values = calloc(N, sizeof(*values));
	unsigned char *big = malloc(DELIVERY_VALUE_MAX);
	struct delivery_list l;
	struct buf sealed;

	assert_non_null(items);
	assert_non_null(values);
	assert_non_null(big);
	for (size_t i = 0; i < DELIVERY_VALUE_MAX; i++)
		big[i] = (unsigned char)(1 + i % 255); /* every byte but NUL */
	for (int i = 0; i < N; i++) {
		int k = N - 1 - i;
		char v[32];
		assert_int_equal(fmt_into(names[i], sizeof(names[i]), "S_%04d", k), COFFER_OK);
		assert_int_equal(fmt_into(v, sizeof(v), "value-%d", k * 7), COFFER_OK);
		if (k == 500)
			values[i] = sec(big, DELIVERY_VALUE_MAX);
		else if (k == 3)
			values[i] = sec("", 0);
		else
			values[i] = sec(v, strlen(v));
		items[i].name = names[i];
		items[i].value = values[i];
	}
	buf_init(&sealed, SEALED_MAX);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, items, N, &sealed), COFFER_OK);
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, sealed.len, &l), COFFER_OK);
	assert_int_equal(l.n, N);
	for (int k = 0; k < N; k++) {
		char name[16];
		assert_int_equal(fmt_into(name, sizeof(name), "S_%04d", k), COFFER_OK);
		assert_string_equal(l.items[k].name, name);
		assert_true(secret_equal(l.items[k].value, values[N - 1 - k]));
	}
	assert_int_equal(secret_len(l.items[500].value), DELIVERY_VALUE_MAX);
	assert_memory_equal(secret_cbytes(l.items[500].value), big, DELIVERY_VALUE_MAX);
	assert_int_equal(secret_len(l.items[3].value), 0);
	delivery_list_release(&l);
	buf_release(&sealed);
	for (int i = 0; i < N; i++)
		secret_free(values[i]);
	free(big);
	free(values);
	free(items);
}

/* The plaintext is exactly the documented layout, sorted by name, under the documented info and aad. */
static void test_layout(void **state)
{
	struct fixture *f = *state;
	struct secret *xy = sec("xy", 2), *empty = sec("", 0), *pt = NULL;
	struct delivery_item items[] = { { "b", xy }, { "A_1", empty } };
	struct buf sealed, aad;

	buf_init(&sealed, SEALED_MAX);
	buf_init(&aad, 1024);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, items, 2, &sealed), COFFER_OK);
	make_aad(HOST, MACHINE, JTI, SPEC, &aad);
	assert_int_equal(hpke_open(f->sk, "coffer delivery v2", 18, aad.ptr, aad.len, sealed.ptr, sealed.len, &pt),
			 COFFER_OK);
	static const unsigned char want[] = { 0, 2, 0, 3, 'A', '_', '1', 0, 0, 0, 0, 0, 1, 'b', 0, 0, 0, 2, 'x', 'y' };
	assert_int_equal(secret_len(pt), sizeof(want));
	assert_memory_equal(secret_cbytes(pt), want, sizeof(want));
	secret_free(pt);
	buf_release(&aad);
	buf_release(&sealed);
	secret_free(empty);
	secret_free(xy);
}

static void seal_one(const struct fixture *f, struct buf *sealed, struct secret **v)
{
	*v = sec(CANARY, strlen(CANARY));
	struct delivery_item it = { "API_KEY", *v };
	buf_init(sealed, SEALED_MAX);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, &it, 1, sealed), COFFER_OK);
}

static void test_other_host_key(void **state)
{
	struct fixture *f = *state;
	struct delivery_list l = { NULL, 0, NULL };
	struct secret *v;
	struct buf sealed;

	seal_one(f, &sealed, &v);
	assert_int_equal(delivery_open(f->other_sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, sealed.len, &l),
			 COFFER_ERR_CRYPTO);
	assert_null(l.items);
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, sealed.len, &l), COFFER_OK);
	delivery_list_release(&l);
	buf_release(&sealed);
	secret_free(v);
}

static void test_other_binding(void **state)
{
	struct fixture *f = *state;
	static const char *const cases[][4] = {
		{ "other_host", MACHINE, JTI, SPEC },
		{ HOST, "other_machine", JTI, SPEC },
		{ HOST, MACHINE, "ffeeddccbbaa99887766554433221100", SPEC },
		{ MACHINE, HOST, JTI, SPEC }, /* host and machine swapped */
		{ HOST "0", MACHINE, JTI, SPEC },
		{ HOST, MACHINE, JTI, SPEC2 }, /* another config: the api changed the spec */
	};
	struct secret *v;
	struct buf sealed;

	seal_one(f, &sealed, &v);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct delivery_list l = { NULL, 0, NULL };
		enum coffer_err rc = delivery_open(f->sk, cases[i][0], cases[i][1], cases[i][2], cases[i][3],
						   sealed.ptr, sealed.len, &l);
		if (rc != COFFER_ERR_CRYPTO)
			fail_msg("case %zu: %s", i, coffer_err_name(rc));
		assert_null(l.items);
	}
	buf_release(&sealed);
	secret_free(v);
}

/* The spec hash is 64 lower-case hex characters, on seal and on open. */
static void test_spec_hash_form(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"",
		"8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa",   /* 63 */
		"8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa40", /* 65 */
		"8F434346648F6B96DF89DDA901C5176B10A6D83961DD3C1AC88B59B2DC327AA4", /* upper case */
		"8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aag",
		NULL,
	};
	struct secret *v = sec("v", 1);
	struct delivery_item it = { "A", v };
	struct buf sealed;

	buf_init(&sealed, SEALED_MAX);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, &it, 1, &sealed), COFFER_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct buf other;
		struct delivery_list l = { NULL, 0, NULL };
		buf_init(&other, SEALED_MAX);
		if (delivery_seal(f->pk, HOST, MACHINE, JTI, bad[i], &it, 1, &other) != COFFER_ERR_INVALID)
			fail_msg("seal, case %zu", i);
		assert_int_equal(other.len, 0);
		if (delivery_open(f->sk, HOST, MACHINE, JTI, bad[i], sealed.ptr, sealed.len, &l) != COFFER_ERR_INVALID)
			fail_msg("open, case %zu", i);
		assert_null(l.items);
		buf_release(&other);
	}
	buf_release(&sealed);
	secret_free(v);
}

static void test_tampered(void **state)
{
	struct fixture *f = *state;
	struct secret *v;
	struct buf sealed;

	seal_one(f, &sealed, &v);
	size_t at[] = { 0, HPKE_ENC_LEN - 1, HPKE_ENC_LEN, HPKE_ENC_LEN + 5, sealed.len - HPKE_TAG_LEN - 1,
			sealed.len - 1 };
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			struct delivery_list l = { NULL, 0, NULL };
			sealed.ptr[at[i]] ^= (char)(1 << bit);
			enum coffer_err rc = delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, sealed.len, &l);
			sealed.ptr[at[i]] ^= (char)(1 << bit);
			if (rc != COFFER_ERR_CRYPTO)
				fail_msg("byte %zu bit %d: %s", at[i], bit, coffer_err_name(rc));
		}
	}
	struct delivery_list l;
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, sealed.len, &l), COFFER_OK);
	delivery_list_release(&l);
	buf_release(&sealed);
	secret_free(v);
}

static void test_truncated_and_trailing(void **state)
{
	struct fixture *f = *state;
	struct delivery_list l = { NULL, 0, NULL };
	struct secret *v;
	struct buf sealed;

	seal_one(f, &sealed, &v);
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, sealed.len - 1, &l), COFFER_ERR_CRYPTO);
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, DELIVERY_OVERHEAD, &l),
			 COFFER_ERR_CRYPTO);
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, DELIVERY_OVERHEAD - 1, &l),
			 COFFER_ERR_INVALID);
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, 0, &l), COFFER_ERR_INVALID);
	assert_int_equal(buf_addch(&sealed, 0), COFFER_OK);
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, sealed.len, &l), COFFER_ERR_CRYPTO);
	assert_null(l.items);

	/* past the largest delivery: refused before any work */
	unsigned char *huge = calloc(1, DELIVERY_SEALED_MAX + 1);
	assert_non_null(huge);
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, huge, DELIVERY_SEALED_MAX + 1, &l),
			 COFFER_ERR_TOO_LARGE);
	free(huge);
	buf_release(&sealed);
	secret_free(v);
}

/* Properly sealed plaintexts that break one rule each: COFFER_ERR_INVALID. */
static void test_malformed_inner(void **state)
{
	struct fixture *f = *state;
	struct delivery_list l = { NULL, 0, NULL };
	struct buf pt;
	char name256[256];
	unsigned char *big = malloc(DELIVERY_VALUE_MAX + 1);

	assert_non_null(big);
	memset(big, 'v', DELIVERY_VALUE_MAX + 1);
	memset(name256, 'N', sizeof(name256));
	buf_init(&pt, SEALED_MAX);

	/* control: the crafting path gives a delivery that opens */
	add_u16(&pt, 2);
	add_item(&pt, "A", 1, "1", 1);
	add_item(&pt, "B", 1, "2", 1);
	assert_int_equal(open_crafted(f, &pt, &l), COFFER_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.items[1].name, "B");
	delivery_list_release(&l);
	/* control: the longest name and the largest value pass */
	buf_reset(&pt);
	add_u16(&pt, 1);
	add_item(&pt, name256, 255, big, DELIVERY_VALUE_MAX);
	assert_int_equal(open_crafted(f, &pt, &l), COFFER_OK);
	assert_int_equal(strlen(l.items[0].name), 255);
	delivery_list_release(&l);
	buf_reset(&pt);

#define REFUSED(what_)                                                                     \
	do {                                                                               \
		enum coffer_err rc_ = open_crafted(f, &pt, &l);                            \
		if (rc_ != COFFER_ERR_INVALID)                                             \
			fail_msg("%s: %s", what_, coffer_err_name(rc_));                   \
		assert_null(l.items);                                                      \
		buf_reset(&pt);                                                            \
	} while (0)

	REFUSED("empty plaintext");
	assert_int_equal(buf_addch(&pt, 0), COFFER_OK);
	REFUSED("one byte");
	add_u16(&pt, 1);
	REFUSED("count 1, no item");
	add_u16(&pt, 0);
	assert_int_equal(buf_addch(&pt, 0), COFFER_OK);
	REFUSED("count 0, a trailing byte");
	add_u16(&pt, 1);
	add_item(&pt, "A", 1, "1", 1);
	assert_int_equal(buf_addch(&pt, 0), COFFER_OK);
	REFUSED("one item, a trailing byte");
	add_u16(&pt, 2);
	add_item(&pt, "A", 1, "1", 1);
	REFUSED("count 2, one item");
	add_u16(&pt, 1);
	add_item(&pt, "", 0, "1", 1);
	REFUSED("empty name");
	add_u16(&pt, 1);
	add_item(&pt, "1A", 2, "1", 1);
	REFUSED("name starting with a digit");
	add_u16(&pt, 1);
	add_item(&pt, "A-B", 3, "1", 1);
	REFUSED("name with a dash");
	add_u16(&pt, 1);
	add_item(&pt, "A\0B", 3, "1", 1);
	REFUSED("name with a NUL");
	add_u16(&pt, 1);
	add_item(&pt, name256, 256, "1", 1);
	REFUSED("name of 256 bytes");
	add_u16(&pt, 1);
	add_u16(&pt, 5);
	assert_int_equal(buf_adds(&pt, "ABC"), COFFER_OK);
	REFUSED("name longer than the rest");
	add_u16(&pt, 1);
	add_u16(&pt, 1);
	assert_int_equal(buf_adds(&pt, "A"), COFFER_OK);
	add_u32(&pt, 10);
	assert_int_equal(buf_adds(&pt, "short"), COFFER_OK);
	REFUSED("value longer than the rest");
	add_u16(&pt, 1);
	add_u16(&pt, 1);
	assert_int_equal(buf_adds(&pt, "A"), COFFER_OK);
	assert_int_equal(buf_add(&pt, "\0\0", 2), COFFER_OK);
	REFUSED("value length cut short");
	add_u16(&pt, 1);
	add_item(&pt, "A", 1, "a\0b", 3);
	REFUSED("value with a NUL");
	add_u16(&pt, 1);
	add_item(&pt, "A", 1, big, DELIVERY_VALUE_MAX + 1);
	REFUSED("value of 64 KiB + 1");
	add_u16(&pt, 2);
	add_item(&pt, "A", 1, "1", 1);
	add_item(&pt, "A", 1, "2", 1);
	REFUSED("a name twice");
	add_u16(&pt, 2);
	add_item(&pt, "B", 1, "1", 1);
	add_item(&pt, "A", 1, "2", 1);
	REFUSED("names out of order");
	add_u16(&pt, 2);
	add_item(&pt, "AB", 2, "1", 1);
	add_item(&pt, "A", 1, "2", 1);
	REFUSED("a longer name before its prefix");

	/* too many items, each of them valid */
	add_u16(&pt, DELIVERY_ITEMS_MAX + 1);
	for (int i = 0; i <= DELIVERY_ITEMS_MAX; i++) {
		char n[16];
		assert_int_equal(fmt_into(n, sizeof(n), "S%05d", i), COFFER_OK);
		add_item(&pt, n, strlen(n), "v", 1);
	}
	REFUSED("1,001 items");
	/* more than 1 MiB of values, each value valid */
	size_t k = DELIVERY_VALUES_TOTAL_MAX / DELIVERY_VALUE_MAX + 1;
	add_u16(&pt, k);
	for (size_t i = 0; i < k; i++) {
		char n[16];
		assert_int_equal(fmt_into(n, sizeof(n), "S%05zu", i), COFFER_OK);
		add_item(&pt, n, strlen(n), big, DELIVERY_VALUE_MAX);
	}
	REFUSED("values over 1 MiB");
#undef REFUSED
	buf_release(&pt);
	free(big);
}

static void test_seal_refuses(void **state)
{
	struct fixture *f = *state;
	struct secret *ok = sec("v", 1), *nul = sec("a\0b", 3), *big = NULL;
	struct buf sealed;
	char id256[257];

	memset(id256, 'a', 256);
	id256[256] = '\0';
	assert_int_equal(secret_new(DELIVERY_VALUE_MAX + 1, &big), COFFER_OK);
	memset(secret_bytes(big), 'v', DELIVERY_VALUE_MAX + 1);
	buf_init(&sealed, SEALED_MAX);

	struct delivery_item one = { "A", ok };
	assert_int_equal(delivery_seal(f->pk, "", MACHINE, JTI, SPEC, &one, 1, &sealed), COFFER_ERR_INVALID);
	assert_int_equal(delivery_seal(f->pk, HOST, NULL, JTI, SPEC, &one, 1, &sealed), COFFER_ERR_INVALID);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, id256, SPEC, &one, 1, &sealed), COFFER_ERR_INVALID);
	id256[255] = '\0'; /* 255 bytes: the longest id */
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, id256, SPEC, &one, 1, &sealed), COFFER_OK);
	struct delivery_list l;
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, id256, SPEC, sealed.ptr, sealed.len, &l), COFFER_OK);
	delivery_list_release(&l);
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, "", SPEC, sealed.ptr, sealed.len, &l), COFFER_ERR_INVALID);
	buf_reset(&sealed);

	struct delivery_item bad_name = { "1A", ok }, dash = { "A-B", ok }, with_nul = { "A", nul },
			     too_big = { "A", big }, no_value = { "A", NULL };
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, &bad_name, 1, &sealed), COFFER_ERR_INVALID);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, &dash, 1, &sealed), COFFER_ERR_INVALID);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, &with_nul, 1, &sealed), COFFER_ERR_INVALID);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, &too_big, 1, &sealed), COFFER_ERR_TOO_LARGE);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, &no_value, 1, &sealed), COFFER_ERR_INVALID);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, NULL, 1, &sealed), COFFER_ERR_INVALID);
	struct delivery_item twice[] = { { "A", ok }, { "B", ok }, { "A", ok } };
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, twice, 3, &sealed), COFFER_ERR_INVALID);

	/* 1,001 items */
	struct delivery_item *many = calloc(DELIVERY_ITEMS_MAX + 1, sizeof(*many));
	static char names[DELIVERY_ITEMS_MAX + 1][16];
	assert_non_null(many);
	for (int i = 0; i <= DELIVERY_ITEMS_MAX; i++) {
		assert_int_equal(fmt_into(names[i], sizeof(names[i]), "S%05d", i), COFFER_OK);
		many[i].name = names[i];
		many[i].value = ok;
	}
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, many, DELIVERY_ITEMS_MAX + 1, &sealed),
			 COFFER_ERR_TOO_LARGE);
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, many, DELIVERY_ITEMS_MAX, &sealed), COFFER_OK);
	buf_reset(&sealed);

	/* more than 1 MiB of values in all */
	assert_int_equal(secret_truncate(big, DELIVERY_VALUE_MAX), COFFER_OK);
	size_t k = DELIVERY_VALUES_TOTAL_MAX / DELIVERY_VALUE_MAX;
	for (size_t i = 0; i <= k; i++)
		many[i].value = big;
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, many, k + 1, &sealed), COFFER_ERR_TOO_LARGE);
	assert_int_equal(sealed.len, 0); /* untouched by every failure */
	assert_int_equal(delivery_seal(f->pk, HOST, MACHINE, JTI, SPEC, many, k, &sealed), COFFER_OK);
	assert_int_equal(delivery_open(f->sk, HOST, MACHINE, JTI, SPEC, sealed.ptr, sealed.len, &l), COFFER_OK);
	assert_int_equal(l.n, k);
	delivery_list_release(&l);

	free(many);
	buf_release(&sealed);
	secret_free(big);
	secret_free(nul);
	secret_free(ok);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_empty),
		cmocka_unit_test(test_roundtrip_one),
		cmocka_unit_test(test_roundtrip_many),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_other_host_key),
		cmocka_unit_test(test_other_binding),
		cmocka_unit_test(test_spec_hash_form),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_truncated_and_trailing),
		cmocka_unit_test(test_malformed_inner),
		cmocka_unit_test(test_seal_refuses),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
