/*
 * bench_populate — fills a store with many apps for the scale row, through
 * the store API (store.h), as fast as it allows: each app is one
 * store_app_create and one store_secrets_put of all its secrets, BATCH
 * apps to a transaction (store_tx_begin/_end), from THREADS connections at
 * once.
 *
 *   bench_populate --store URL --org ORG --apps N --secrets M
 *                  [--prefix fill] [--threads 1] [--batch 100] [--value-bytes 32]
 *
 * The apps are PREFIX-000000 ... in the org named ORG (which must exist).
 * Their ciphertexts are random bytes of a real seal's length (the value's
 * length plus VAULT_SEAL_OVERHEAD) and their digests random: nobody opens
 * them; the app the scale row measures is made through the api, with real
 * seals. Prints {"bench":"populate","apps":N,"secrets":M,"seconds":S,...}.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "bench_util.h"
#include "parse.h"
#include "store.h"
#include "vault.h"
#include "banned.h"

#define APPS_MAX 1000000
#define SECRETS_MAX 1000
#define THREADS_MAX 16
#define BATCH_MAX 10000
#define VALUE_BYTES_MAX 4096
#define SECRET_NAME_SIZE 32
#define APP_NAME_SIZE 64
#define DIGEST_HEX_BYTES 16 /* digests are shown as 32 hex characters */
#define EXTRA_SIZE 256

struct job {
	const char *store_url;
	const char *rows_key;
	const char *org_id;
	const char *prefix;
	int64_t first, end; /* apps [first, end) */
	int64_t secrets;
	int64_t value_bytes;
	int64_t batch; /* apps per transaction */
	int failed;
};

static void *job_run(void *arg)
{
	struct job *j = arg;
	struct store *s = NULL;
	struct store_secret_change *ch = NULL;
	char (*names)[SECRET_NAME_SIZE] = NULL;
	char (*digests)[STORE_DIGEST_SIZE] = NULL;
	unsigned char *ct = NULL;
	size_t ct_len = (size_t)j->value_bytes + VAULT_SEAL_OVERHEAD;
	unsigned char raw[DIGEST_HEX_BYTES];

	j->failed = 1;
	ch = calloc((size_t)j->secrets, sizeof(*ch));
	names = calloc((size_t)j->secrets, sizeof(*names));
	digests = calloc((size_t)j->secrets, sizeof(*digests));
	ct = malloc(ct_len * (size_t)j->secrets);
	if (!ch || !names || !digests || !ct || bench_store_open(j->store_url, j->rows_key, &s)) {
		bench_fail("populate: cannot open the store");
		goto out;
	}
	for (int64_t k = 0; k < j->secrets; k++) {
		if (fmt_into(names[k], SECRET_NAME_SIZE, "SECRET_%04lld", (long long)k))
			goto out;
		ch[k].name = names[k];
		ch[k].ciphertext = ct + (size_t)k * ct_len;
		ch[k].ciphertext_len = ct_len;
		ch[k].digest = digests[k];
		ch[k].key_version = 1;
	}
	for (int64_t i = j->first; i < j->end; i++) {
		struct store_app app;
		char name[APP_NAME_SIZE];
		uint64_t version;
		enum coffer_err rc = COFFER_OK;

		if ((i - j->first) % j->batch == 0 && (rc = store_tx_begin(s))) {
			bench_fail("populate: cannot begin a transaction: %s", coffer_strerror(rc));
			goto out;
		}
		randombytes_buf(ct, ct_len * (size_t)j->secrets);
		for (int64_t k = 0; k < j->secrets; k++) {
			randombytes_buf(raw, sizeof(raw));
			sodium_bin2hex(digests[k], STORE_DIGEST_SIZE, raw, sizeof(raw));
		}
		if (fmt_into(name, sizeof(name), "%s-%06lld", j->prefix, (long long)i))
			goto out;
		rc = store_app_create(s, j->org_id, name, 0, &app);
		if (rc == COFFER_OK)
			rc = store_secrets_put(s, app.id, ch, (size_t)j->secrets, "bench", "staged", NULL, &version);
		if (rc || (i - j->first + 1) % j->batch == 0 || i + 1 == j->end)
			rc = store_tx_end(s, rc); /* rolls back on an error */
		if (rc) {
			bench_fail("populate: app %s: %s", name, coffer_strerror(rc));
			goto out;
		}
	}
	j->failed = 0;
out:
	store_close(s);
	free(ct);
	free(digests);
	free(names);
	free(ch);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },   { "org", required_argument, NULL, 'o' },
		{ "rows-key", required_argument, NULL, 'r' },
		{ "apps", required_argument, NULL, 'a' },    { "secrets", required_argument, NULL, 'n' },
		{ "prefix", required_argument, NULL, 'p' },  { "threads", required_argument, NULL, 't' },
		{ "value-bytes", required_argument, NULL, 'v' }, { "batch", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	const char *store_url = NULL, *org = NULL, *prefix = "fill", *rows_key = NULL;
	int64_t apps = 0, secrets = 0, threads = 1, value_bytes = 32, batch = 100;
	struct job jobs[THREADS_MAX];
	pthread_t th[THREADS_MAX];
	struct store *s = NULL;
	struct store_org o;
	char extra[EXTRA_SIZE];
	uint64_t start;
	int c, started = 0, ex = 1;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': store_url = optarg; break;
		case 'r': rows_key = optarg; break;
		case 'o': org = optarg; break;
		case 'p': prefix = optarg; break;
		case 'a':
			if (parse_int64(optarg, 1, APPS_MAX, &apps))
				return bench_fail("--apps: 1..%d", APPS_MAX);
			break;
		case 'n':
			if (parse_int64(optarg, 1, SECRETS_MAX, &secrets))
				return bench_fail("--secrets: 1..%d", SECRETS_MAX);
			break;
		case 't':
			if (parse_int64(optarg, 1, THREADS_MAX, &threads))
				return bench_fail("--threads: 1..%d", THREADS_MAX);
			break;
		case 'b':
			if (parse_int64(optarg, 1, BATCH_MAX, &batch))
				return bench_fail("--batch: 1..%d", BATCH_MAX);
			break;
		case 'v':
			if (parse_int64(optarg, 1, VALUE_BYTES_MAX, &value_bytes))
				return bench_fail("--value-bytes: 1..%d", VALUE_BYTES_MAX);
			break;
		default:
			return bench_fail("usage: bench_populate --store URL --rows-key FILE --org ORG --apps N --secrets M");
		}
	}
	if (!store_url || !rows_key || !org || !apps || !secrets)
		return bench_fail("usage: bench_populate --store URL --rows-key FILE --org ORG --apps N --secrets M");
	if (sodium_init() < 0)
		return bench_fail("libsodium failed to initialise");
	if (store_open(store_url, &s) || store_org_get_by_name(s, org, &o)) {
		store_close(s);
		return bench_fail("no org '%s' in the store", org);
	}
	store_close(s);

	start = bench_now_ns();
	for (int64_t t = 0; t < threads; t++) {
		jobs[t] = (struct job){ .store_url = store_url, .rows_key = rows_key, .org_id = o.id, .prefix = prefix,
					.first = apps * t / threads, .end = apps * (t + 1) / threads,
					.secrets = secrets, .value_bytes = value_bytes, .batch = batch };
		if (pthread_create(&th[t], NULL, job_run, &jobs[t]))
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (started < threads)
		return bench_fail("cannot start a thread");
	for (int i = 0; i < started; i++)
		if (jobs[i].failed)
			return 1;
	snprintf(extra, sizeof(extra),
		 ",\"apps\":%lld,\"secrets\":%lld,\"threads\":%lld,\"batch\":%lld,\"seconds\":%.1f", (long long)apps, (long long)secrets, (long long)threads, (long long)batch,
		 (double)(bench_now_ns() - start) / (double)BENCH_NS_PER_S);
	bench_print_rate("populate", bench_rate_since((double)apps, start), "app/s", extra);
	ex = 0;
	return ex;
}
