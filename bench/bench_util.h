/*
 * bench_util.h — what the benchmark programs of bench/ share: a monotonic
 * clock, a growable list of latency samples with its median and p99, and
 * the one JSON line per measurement that scripts/bench.sh assembles into
 * the table.
 *
 * Ownership: a struct bench_samples owns its array (bench_samples_release
 * frees it). The benchmark programs assert nothing: they print figures, and
 * an error goes to stderr with a non-zero exit.
 */
#ifndef COFFER_BENCH_UTIL_H
#define COFFER_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_SAMPLES_INITIAL 1024
#define BENCH_NAME_MAX 128
#define BENCH_NS_PER_S 1000000000u
#define BENCH_HTTP_TIMEOUT_MS 30000L /* one request of a load, at most */

/* Nanoseconds of CLOCK_MONOTONIC. */
uint64_t bench_now_ns(void);
/* count per second from start_ns (bench_now_ns) until now. */
double bench_rate_since(double count, uint64_t start_ns);

struct bench_samples {
	uint64_t *ns; /* one latency per sample */
	size_t n;
	size_t cap;
};

void bench_samples_init(struct bench_samples *s);
/* 0, or -1 when out of memory. */
int bench_samples_add(struct bench_samples *s, uint64_t ns);
/* Appends every sample of from (0, or -1 when out of memory). */
int bench_samples_merge(struct bench_samples *to, const struct bench_samples *from);
void bench_samples_release(struct bench_samples *s);

struct bench_stats {
	size_t n;
	double median_us;
	double p99_us;
	double mean_us;
	double min_us;
	double max_us;
};

/* Sorts the samples in place and computes the figures (all 0 when there are none). */
void bench_stats_of(struct bench_samples *s, struct bench_stats *out);

/*
 * Prints one JSON line to stdout:
 *   {"bench":NAME,"n":..,"median_us":..,"p99_us":..,"mean_us":..,"min_us":..,"max_us":..<extra>}
 * extra is "" or more members, starting with a comma (",\"rate\":12.5").
 */
void bench_print_stats(const char *name, const struct bench_stats *st, const char *extra);

/* Prints {"bench":NAME,"rate":RATE,"unit":UNIT<extra>} to stdout. */
void bench_print_rate(const char *name, double rate, const char *unit, const char *extra);

struct store;
/*
 * Opens the store as a role does: with the keeper's rows key (api.rows.key,
 * hex, 0600: fs_read_hex_key) given for every authenticated table (store.h "Row authentication").
 * 0 on success, else 1 with the reason on stderr.
 */
int bench_store_open(const char *url, const char *rows_key_file, struct store **out);

/* ---- what the programs that speak HTTP with libcurl share ---- */

struct curl_slist;
typedef struct json_t json_t;
#define BENCH_HEADER_MAX 256 /* bytes of one "Name: value" request header */

/* A CURLOPT_WRITEFUNCTION appending to the struct buf of CURLOPT_WRITEDATA (0, ending the transfer, when full). */
size_t bench_collect(char *data, size_t size, size_t n, void *arg);
/* Appends "Name: value" to *list; 0 or -1. */
int bench_add_header(struct curl_slist **list, const char *name, const char *value);
/* obj[key] = base64url of data[0..len); 0 or -1. */
int bench_b64_field(json_t *obj, const char *key, const void *data, size_t len);

/* Prints "bench: <msg>" to stderr and returns 1 (an exit status). */
int bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
