/*
 * bench_floor — the machine's own limits that coffer's figures are held
 * against (docs/BENCHMARKS.md):
 *
 *   bench_floor x25519 SECONDS THREADS
 *       X25519 scalar multiplications per second (crypto_scalarmult, the
 *       libsodium coffer links), THREADS threads together, each on its own
 *       scalar and point, for SECONDS seconds.
 *   bench_floor sqlite-commits PATH N
 *       SQLite's raw durable commits per second: a fresh database at PATH
 *       in WAL mode with synchronous=FULL (as store_open sets it), N
 *       transactions of one 100-byte row each (BEGIN IMMEDIATE, INSERT,
 *       COMMIT), and the latency of each.
 *
 * One JSON line per measurement on stdout (bench_util.h).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "bench_util.h"
#include "parse.h"
#include "banned.h"

#define X25519_THREADS_MAX 64
#define X25519_BATCH 64 /* multiplications between clock reads */
#define SQLITE_ROW_BYTES 100
#define SQLITE_N_MAX 10000000
#define SECONDS_MAX 3600
#define EXTRA_SIZE 128

struct x25519_job {
	uint64_t deadline_ns;
	uint64_t count;
};

static void *x25519_run(void *arg)
{
	struct x25519_job *job = arg;
	unsigned char n[crypto_scalarmult_SCALARBYTES], p[crypto_scalarmult_BYTES], q[crypto_scalarmult_BYTES];

	randombytes_buf(n, sizeof(n));
	crypto_scalarmult_base(p, n);
	while (bench_now_ns() < job->deadline_ns) {
		for (int i = 0; i < X25519_BATCH; i++) {
			/* feed the output back so that no call can be skipped */
			if (crypto_scalarmult(q, n, p) != 0)
				return NULL;
			memcpy(p, q, sizeof(p));
		}
		job->count += X25519_BATCH;
	}
	sodium_memzero(n, sizeof(n));
	return NULL;
}

static int run_x25519(int argc, char **argv)
{
	struct x25519_job jobs[X25519_THREADS_MAX];
	pthread_t th[X25519_THREADS_MAX];
	int64_t seconds, threads;
	uint64_t start, total = 0;
	char extra[EXTRA_SIZE];

	if (argc != 4 || parse_int64(argv[2], 1, SECONDS_MAX, &seconds) ||
	    parse_int64(argv[3], 1, X25519_THREADS_MAX, &threads))
		return bench_fail("usage: bench_floor x25519 SECONDS THREADS");
	start = bench_now_ns();
	for (int64_t i = 0; i < threads; i++) {
		jobs[i].deadline_ns = start + (uint64_t)seconds * BENCH_NS_PER_S;
		jobs[i].count = 0;
		if (pthread_create(&th[i], NULL, x25519_run, &jobs[i]))
			return bench_fail("cannot start a thread");
	}
	for (int64_t i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		total += jobs[i].count;
	}
	snprintf(extra, sizeof(extra), ",\"threads\":%lld,\"sodium\":\"%s\"", (long long)threads,
		 sodium_version_string());
	bench_print_rate("floor.x25519", bench_rate_since((double)total, start), "mult/s", extra);
	return 0;
}

static int sql_ok(sqlite3 *db, int rc, const char *what)
{
	if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	bench_fail("sqlite: %s: %s", what, sqlite3_errmsg(db));
	return -1;
}

static int run_sqlite(int argc, char **argv)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *begin = NULL, *ins = NULL, *commit = NULL;
	struct bench_samples s;
	struct bench_stats st;
	unsigned char row[SQLITE_ROW_BYTES];
	int64_t n;
	uint64_t start, t0;
	char extra[EXTRA_SIZE];
	int ex = 1;

	bench_samples_init(&s);
	if (argc != 4 || parse_int64(argv[3], 1, SQLITE_N_MAX, &n))
		return bench_fail("usage: bench_floor sqlite-commits PATH N");
	unlink(argv[2]);
	if (sql_ok(db, sqlite3_open(argv[2], &db), "open") ||
	    sql_ok(db, sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), "wal") ||
	    sql_ok(db, sqlite3_exec(db, "PRAGMA synchronous = FULL", NULL, NULL, NULL), "synchronous") ||
	    sql_ok(db, sqlite3_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)", NULL, NULL, NULL),
		   "create") ||
	    sql_ok(db, sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL), "prepare") ||
	    sql_ok(db, sqlite3_prepare_v2(db, "INSERT INTO t (v) VALUES (?1)", -1, &ins, NULL), "prepare") ||
	    sql_ok(db, sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL), "prepare"))
		goto out;
	randombytes_buf(row, sizeof(row));
	start = bench_now_ns();
	for (int64_t i = 0; i < n; i++) {
		t0 = bench_now_ns();
		if (sql_ok(db, sqlite3_step(begin), "begin") ||
		    sql_ok(db, sqlite3_bind_blob(ins, 1, row, sizeof(row), SQLITE_STATIC), "bind") ||
		    sql_ok(db, sqlite3_step(ins), "insert") || sql_ok(db, sqlite3_step(commit), "commit"))
			goto out;
		sqlite3_reset(begin);
		sqlite3_reset(ins);
		sqlite3_reset(commit);
		if (bench_samples_add(&s, bench_now_ns() - t0)) {
			bench_fail("out of memory");
			goto out;
		}
	}
	snprintf(extra, sizeof(extra), ",\"rate\":%.1f,\"unit\":\"commit/s\",\"sqlite\":\"%s\"",
		 bench_rate_since((double)n, start), sqlite3_libversion());
	bench_stats_of(&s, &st);
	bench_print_stats("floor.sqlite_commit", &st, extra);
	ex = 0;
out:
	sqlite3_finalize(commit);
	sqlite3_finalize(ins);
	sqlite3_finalize(begin);
	sqlite3_close(db);
	bench_samples_release(&s);
	return ex;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return bench_fail("libsodium failed to initialise");
	if (argc >= 2 && strcmp(argv[1], "x25519") == 0)
		return run_x25519(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "sqlite-commits") == 0)
		return run_sqlite(argc, argv);
	return bench_fail("usage: bench_floor x25519 SECONDS THREADS | sqlite-commits PATH N");
}
