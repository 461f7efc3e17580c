/*
 * Unit tests of src/lib/mask.c: the streaming masker gives, for every way
 * of cutting the stream into writes, exactly what a whole-text reference
 * gives (every byte of every occurrence covered, each run of covered bytes
 * one "***").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "buf.h"
#include "mask.h"
#include "secret.h"

#define OUT_MAX (256 * 1024)

struct sink {
	unsigned char data[OUT_MAX];
	size_t len;
	int fail;
};

static int sink_emit(void *ctx, const unsigned char *p, size_t n)
{
	struct sink *s = ctx;
	if (s->fail || s->len + n > sizeof(s->data))
		return -1;
	memcpy(s->data + s->len, p, n);
	s->len += n;
	return 0;
}

/* The reference: whole text, a covered flag per byte. */
static size_t reference(const unsigned char *t, size_t len, const unsigned char *const *v, const size_t *vl,
			size_t n, unsigned char *out)
{
	unsigned char *cov = calloc(len + 1, 1);
	assert_non_null(cov);
	for (size_t k = 0; k < n; k++) {
		if (!vl[k])
			continue;
		for (size_t p = 0; p + vl[k] <= len; p++)
			if (memcmp(t + p, v[k], vl[k]) == 0)
				memset(cov + p, 1, vl[k]);
	}
	size_t o = 0;
	for (size_t p = 0; p < len; p++) {
		if (cov[p]) {
			if (p == 0 || !cov[p - 1]) {
				memcpy(out + o, MASK_TEXT, 3);
				o += 3;
			}
		} else {
			out[o++] = t[p];
		}
	}
	free(cov);
	return o;
}

static struct secret **make_values(const unsigned char *const *v, const size_t *vl, size_t n)
{
	struct secret **s = calloc(n + 1, sizeof(*s));
	assert_non_null(s);
	for (size_t k = 0; k < n; k++)
		assert_int_equal(secret_from(v[k], vl[k], &s[k]), COFFER_OK);
	return s;
}

static void free_values(struct secret **s, size_t n)
{
	for (size_t k = 0; k < n; k++)
		secret_free(s[k]);
	free(s);
}

/* Feeds t in pieces ending at the cuts (sorted, each < len), compares with the reference. */
static void check_cuts(const unsigned char *t, size_t len, const unsigned char *const *v, const size_t *vl, size_t n,
		       const size_t *cuts, size_t n_cuts)
{
	static unsigned char want[OUT_MAX];
	static struct sink got;
	struct secret **s = make_values(v, vl, n);
	struct mask_stream *ms = NULL;
	got.len = 0;
	got.fail = 0;
	assert_int_equal(mask_stream_new((const struct secret *const *)s, n, sink_emit, &got, &ms), COFFER_OK);
	size_t at = 0;
	for (size_t i = 0; i <= n_cuts; i++) {
		size_t end = i < n_cuts ? cuts[i] : len;
		assert_int_equal(mask_feed(ms, t + at, end - at), COFFER_OK);
		at = end;
	}
	assert_int_equal(mask_finish(ms), COFFER_OK);
	mask_stream_free(ms);
	free_values(s, n);
	size_t wl = reference(t, len, v, vl, n, want);
	assert_int_equal(got.len, wl);
	assert_memory_equal(got.data, want, wl);
}

/* Every single cut, every pair of cuts, and one byte at a time. */
static void check_all_cuts(const char *text, size_t len, const unsigned char *const *v, const size_t *vl, size_t n)
{
	const unsigned char *t = (const unsigned char *)text;
	check_cuts(t, len, v, vl, n, NULL, 0);
	for (size_t a = 0; a <= len; a++) {
		check_cuts(t, len, v, vl, n, &a, 1);
		for (size_t b = a; b <= len; b++) {
			size_t c[2] = { a, b };
			check_cuts(t, len, v, vl, n, c, 2);
		}
	}
	size_t *each = calloc(len + 1, sizeof(*each));
	assert_non_null(each);
	for (size_t i = 0; i < len; i++)
		each[i] = i;
	check_cuts(t, len, v, vl, n, each, len);
	free(each);
}

#define V(s) ((const unsigned char *)(s))

static void test_plain(void **state)
{
	(void)state;
	const unsigned char *v[] = { V("s3cr3t") };
	size_t vl[] = { 6 };
	const char *t = "db is s3cr3t\nnothing here\ns3cr3ts3cr3t and s3cr3";
	check_all_cuts(t, strlen(t), v, vl, 1);
	/* the exact expectation once, not only against the reference */
	struct secret **s = make_values(v, vl, 1);
	struct mask_stream *ms = NULL;
	static struct sink got;
	got.len = 0;
	assert_int_equal(mask_stream_new((const struct secret *const *)s, 1, sink_emit, &got, &ms), COFFER_OK);
	assert_int_equal(mask_feed(ms, V(t), 9), COFFER_OK);
	assert_int_equal(mask_feed(ms, V(t) + 9, strlen(t) - 9), COFFER_OK);
	assert_int_equal(mask_finish(ms), COFFER_OK);
	const char *want = "db is ***\nnothing here\n*** and s3cr3";
	assert_int_equal(got.len, strlen(want));
	assert_memory_equal(got.data, want, strlen(want));
	mask_stream_free(ms);
	free_values(s, 1);
}

/* What cannot be part of a value is written at once; only a tail that may start one waits. */
static void test_prompt(void **state)
{
	(void)state;
	const unsigned char *v[] = { V("secret") };
	size_t vl[] = { 6 };
	struct secret **s = make_values(v, vl, 1);
	struct mask_stream *ms = NULL;
	static struct sink got;
	got.len = 0;
	assert_int_equal(mask_stream_new((const struct secret *const *)s, 1, sink_emit, &got, &ms), COFFER_OK);
	assert_int_equal(mask_feed(ms, V("a line\n"), 7), COFFER_OK);
	assert_int_equal(got.len, 7);
	assert_int_equal(mask_feed(ms, V("then sec"), 8), COFFER_OK);
	assert_int_equal(got.len, 12); /* "then " written, "sec" waits */
	assert_int_equal(mask_feed(ms, V("ret!"), 4), COFFER_OK);
	assert_int_equal(mask_finish(ms), COFFER_OK);
	assert_int_equal(got.len, strlen("a line\nthen ***!"));
	assert_memory_equal(got.data, "a line\nthen ***!", got.len);
	mask_stream_free(ms);
	free_values(s, 1);
}

static void test_value_at_end(void **state)
{
	(void)state;
	const unsigned char *v[] = { V("tail-secret") };
	size_t vl[] = { 11 };
	const char *t = "last: tail-secret";
	check_all_cuts(t, strlen(t), v, vl, 1);
}

static void test_overlapping(void **state)
{
	(void)state;
	const unsigned char *v[] = { V("abcab"), V("bca"), V("cabx"), V("aa"), V("a") };
	size_t vl[] = { 5, 3, 4, 2, 1 };
	const char *t = "xxabcabcabxyy aaab  bcab zcab";
	check_all_cuts(t, strlen(t), v, vl, 5);
	check_all_cuts(t, strlen(t), v, vl, 4); /* without the one-byte value */
	/* one value inside another */
	const unsigned char *w[] = { V("inner"), V("the-inner-one") };
	size_t wl[] = { 5, 13 };
	const char *u = "a the-inner-one b inner c the-inner-on";
	check_all_cuts(u, strlen(u), w, wl, 2);
}

static void test_empty_values(void **state)
{
	(void)state;
	const unsigned char *v[] = { V(""), V("pw"), V("") };
	size_t vl[] = { 0, 2, 0 };
	const char *t = "a pw b";
	check_all_cuts(t, strlen(t), v, vl, 3);
	/* only empty values: the stream passes as it is */
	check_all_cuts(t, strlen(t), v, vl, 1);
	/* no values at all */
	check_cuts(V(t), strlen(t), NULL, NULL, 0, NULL, 0);
}

static void test_binary(void **state)
{
	(void)state;
	static const unsigned char bin[] = { 0x00, 0xff, 0x00, 0x80 };
	static const unsigned char text[] = { 'x', 0x00, 0xff, 0x00, 0xff, 0x00, 0x80, '\n', 0x00, 0x00, 0xff, 0x00, 0x80 };
	const unsigned char *v[] = { bin };
	size_t vl[] = { sizeof(bin) };
	check_all_cuts((const char *)text, sizeof(text), v, vl, 1);
}

/* Random streams over a small alphabet (many near misses) against the reference. */
static void test_random(void **state)
{
	(void)state;
	static unsigned char t[3000];
	unsigned char vb[6][40];
	const unsigned char *v[6];
	size_t vl[6], cuts[16];
	for (int round = 0; round < 300; round++) {
		size_t n = 1 + randombytes_uniform(6), len = randombytes_uniform(sizeof(t));
		for (size_t k = 0; k < n; k++) {
			vl[k] = randombytes_uniform(40);
			for (size_t i = 0; i < vl[k]; i++)
				vb[k][i] = (unsigned char)('a' + randombytes_uniform(3));
			v[k] = vb[k];
		}
		for (size_t i = 0; i < len; i++)
			t[i] = (unsigned char)('a' + randombytes_uniform(4));
		size_t n_cuts = len ? randombytes_uniform(16) : 0;
		for (size_t i = 0; i < n_cuts; i++)
			cuts[i] = randombytes_uniform((uint32_t)len + 1);
		for (size_t i = 1; i < n_cuts; i++) /* sort */
			for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
				size_t x = cuts[j];
				cuts[j] = cuts[j - 1];
				cuts[j - 1] = x;
			}
		check_cuts(t, len, v, vl, n, cuts, n_cuts);
	}
}

/* Longer than one chunk: a value across the chunk boundary of one big write. */
static void test_chunks(void **state)
{
	(void)state;
	size_t len = MASK_CHUNK * 2 + 100;
	unsigned char *t = malloc(len);
	assert_non_null(t);
	memset(t, '.', len);
	const unsigned char *v[] = { V("0123456789") };
	size_t vl[] = { 10 };
	memcpy(t + MASK_CHUNK - 4, "0123456789", 10);
	memcpy(t + len - 10, "0123456789", 10);
	check_cuts(t, len, v, vl, 1, NULL, 0);
	size_t c = MASK_CHUNK + 3;
	check_cuts(t, len, v, vl, 1, &c, 1);
	free(t);
}

static void test_limits(void **state)
{
	(void)state;
	struct mask_stream *ms = NULL;
	static struct sink got;
	struct secret *big = NULL;
	assert_int_equal(secret_new(MASK_VALUE_MAX + 1, &big), COFFER_OK);
	const struct secret *vals[] = { big };
	assert_int_equal(mask_stream_new(vals, 1, sink_emit, &got, &ms), COFFER_ERR_TOO_LARGE);
	assert_int_equal(secret_truncate(big, MASK_VALUE_MAX), COFFER_OK);
	assert_int_equal(mask_stream_new(vals, 1, sink_emit, &got, &ms), COFFER_OK);
	mask_stream_free(ms);
	ms = NULL;
	assert_int_equal(mask_stream_new(vals, MASK_VALUES_MAX + 1, sink_emit, &got, &ms), COFFER_ERR_TOO_LARGE);
	secret_free(big);
	/* a failing sink stops the stream */
	struct secret *pw = NULL;
	assert_int_equal(secret_from("pw", 2, &pw), COFFER_OK);
	const struct secret *one[] = { pw };
	got.len = 0;
	got.fail = 1;
	assert_int_equal(mask_stream_new(one, 1, sink_emit, &got, &ms), COFFER_OK);
	assert_int_equal(mask_feed(ms, V("hello pw"), 8), COFFER_ERR_IO);
	mask_stream_free(ms);
	secret_free(pw);
	got.fail = 0;
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain), cmocka_unit_test(test_prompt),	  cmocka_unit_test(test_value_at_end), cmocka_unit_test(test_overlapping),
		cmocka_unit_test(test_empty_values), cmocka_unit_test(test_binary),    cmocka_unit_test(test_random),
		cmocka_unit_test(test_chunks),	  cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
