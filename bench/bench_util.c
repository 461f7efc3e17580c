/* bench_util.c — the clock, the samples and the JSON lines of bench_util.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "bench_util.h"
#include "buf.h"
#include "encode.h"
#include "fs.h"
#include "secret.h"
#include "store.h"
#include "banned.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * BENCH_NS_PER_S + (uint64_t)ts.tv_nsec;
}

double bench_rate_since(double count, uint64_t start_ns)
{
	uint64_t ns = bench_now_ns() - start_ns;
	return ns ? count * (double)BENCH_NS_PER_S / (double)ns : 0;
}

void bench_samples_init(struct bench_samples *s)
{
	s->ns = NULL;
	s->n = 0;
	s->cap = 0;
}

int bench_samples_add(struct bench_samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : BENCH_SAMPLES_INITIAL;
		uint64_t *p = realloc(s->ns, cap * sizeof(*p));
		if (!p)
			return -1;
		s->ns = p;
		s->cap = cap;
	}
	s->ns[s->n++] = ns;
	return 0;
}

int bench_samples_merge(struct bench_samples *to, const struct bench_samples *from)
{
	for (size_t i = 0; i < from->n; i++)
		if (bench_samples_add(to, from->ns[i]))
			return -1;
	return 0;
}

void bench_samples_release(struct bench_samples *s)
{
	free(s->ns);
	bench_samples_init(s);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile p (0..100] of sorted samples. */
static double rank_us(const struct bench_samples *s, double p)
{
	size_t k = (size_t)((p / 100.0) * (double)s->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return (double)s->ns[k - 1] / 1000.0;
}

void bench_stats_of(struct bench_samples *s, struct bench_stats *out)
{
	double sum = 0;

	memset(out, 0, sizeof(*out));
	if (s->n == 0)
		return;
	qsort(s->ns, s->n, sizeof(*s->ns), cmp_u64);
	for (size_t i = 0; i < s->n; i++)
		sum += (double)s->ns[i];
	out->n = s->n;
	if (s->n % 2)
		out->median_us = (double)s->ns[s->n / 2] / 1000.0;
	else
		out->median_us = ((double)s->ns[s->n / 2 - 1] + (double)s->ns[s->n / 2]) / 2000.0;
	out->p99_us = rank_us(s, 99.0);
	out->mean_us = sum / (double)s->n / 1000.0;
	out->min_us = (double)s->ns[0] / 1000.0;
	out->max_us = (double)s->ns[s->n - 1] / 1000.0;
}

void bench_print_stats(const char *name, const struct bench_stats *st, const char *extra)
{
	printf("{\"bench\":\"%s\",\"n\":%zu,\"median_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,"
	       "\"min_us\":%.1f,\"max_us\":%.1f%s}\n",
	       name, st->n, st->median_us, st->p99_us, st->mean_us, st->min_us, st->max_us, extra ? extra : "");
	fflush(stdout);
}

void bench_print_rate(const char *name, double rate, const char *unit, const char *extra)
{
	printf("{\"bench\":\"%s\",\"rate\":%.1f,\"unit\":\"%s\"%s}\n", name, rate, unit, extra ? extra : "");
	fflush(stdout);
}

int bench_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int bench_store_open(const char *url, const char *rows_key_file, struct store **out)
{
	struct secret *key = NULL;
	struct store *s = NULL;
	int bad = 0;
	if (!rows_key_file || fs_read_hex_key(rows_key_file, STORE_ROW_KEY_LEN, &key) != COFFER_OK)
		return bench_fail("cannot read the rows key '%s'", rows_key_file ? rows_key_file : "(none)");
	if (store_open(url, &s) != COFFER_OK) {
		secret_free(key);
		return bench_fail("cannot open the store");
	}
	for (int t = 0; t < STORE_TABLE__COUNT && !bad; t++)
		bad = store_auth_key(s, (enum store_table)t, secret_cbytes(key)) != COFFER_OK;
	secret_free(key);
	if (bad) {
		store_close(s);
		return bench_fail("cannot give the store its row keys");
	}
	*out = s;
	return 0;
}

size_t bench_collect(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	return buf_add(b, data, size * n) ? 0 : size * n;
}

int bench_add_header(struct curl_slist **list, const char *name, const char *value)
{
	char line[BENCH_HEADER_MAX];
	struct curl_slist *l;

	if (fmt_into(line, sizeof(line), "%s: %s", name, value))
		return -1;
	l = curl_slist_append(*list, line);
	if (!l)
		return -1;
	*list = l;
	return 0;
}

int bench_b64_field(json_t *obj, const char *key, const void *data, size_t len)
{
	struct buf b;
	int ex = -1;

	buf_init(&b, (size_t)16 << 10);
	if (b64url_encode(data, len, &b) == COFFER_OK && json_object_set_new(obj, key, json_string(b.ptr)) == 0)
		ex = 0;
	buf_release(&b);
	return ex;
}
