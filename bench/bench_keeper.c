/*
 * bench_keeper — keeper opens per second and their latency: what a fleet of
 * hosts booting machines asks of the keeper (docs/RUNPATH.md, Agent ↔
 * keeper).
 *
 *   COFFER_JOIN_TOKEN=cjt_... bench_keeper --name NAME --keeper URL
 *       --boot-key FILE --store URL --app APP [--threads 1,2] [--seconds 10]
 *       [--warmup 1] [--host-name NAME]
 *
 * Setup, as the platform would do it:
 *   - enrols a host with the keeper (POST /v1/hosts/enrol with the join
 *     token from the environment: a new signing and sealing key pair, as
 *     the agent makes them);
 *   - creates, through the store, one machine of APP on that host per
 *     client thread (what the api's scheduler does), desired release the
 *     app's current one;
 *   - mints boot tokens as the api does (boottoken_mint) with the api's
 *     boot key, FILE being the keeper state's api.boot.key (64 hex).
 * Then, for each thread count in --threads, that many clients each send
 * host-signed POST /v1/open {"token"} back to back, each with a freshly
 * minted token and a fresh signature, for WARMUP (not counted) and then
 * SECONDS seconds. Only the HTTP exchange is timed (minting and signing
 * are the api's and the agent's work). The first answer of every client
 * is opened (delivery_open with the host's key) and its count of secrets
 * compared with the app's head: "verified" in the output is the number of
 * clients whose delivery held every secret of the app.
 *
 * One JSON line per thread count: NAME.t<T>, latency figures, "rate"
 * (opens per second), "threads", "secrets", "errors", "verified".
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "bench_util.h"
#include "boottoken.h"
#include "buf.h"
#include "delivery.h"
#include "encode.h"
#include "fs.h"
#include "hostauth.h"
#include "hpke.h"
#include "json.h"
#include "jws.h"
#include "parse.h"
#include "secret.h"
#include "store.h"
#include "banned.h"

#define THREADS_MAX 16
#define THREAD_LIST_MAX 8
#define SECONDS_MAX 3600
#define URL_MAX 2048
#define BODY_MAX ((size_t)16 << 10)
#define RESPONSE_MAX ((size_t)4 << 20)
#define JOIN_TOKEN_MAX 256
#define EXTRA_SIZE 256
#define NAME_SIZE 128
#define JSON_DEPTH 8
#define JOIN_ENV "COFFER_JOIN_TOKEN"
#define OPEN_PATH "/v1/open"
#define USAGE "usage: bench_keeper --name NAME --keeper URL --boot-key FILE --store URL --rows-key FILE --app APP ..."
#define ENROL_PATH "/v1/hosts/enrol"

struct host {
	char id[HOSTAUTH_HOST_ID_MAX + 1];
	struct secret *sign_sk;
	struct secret *seal_sk;
};

struct setup {
	const char *keeper_url;
	struct host host;
	struct secret *boot_sk;
	struct store_app app;
	uint64_t secrets; /* names in the app's head */
	char spec_hash[DELIVERY_SPEC_HASH_SIZE]; /* of the current release's config: what deliveries are bound to */
};

struct worker {
	const struct setup *su;
	char machine[STORE_ID_SIZE];
	uint64_t warm_end_ns;
	uint64_t end_ns;
	struct bench_samples samples;
	uint64_t errors;
	long first_status;
	int verified; /* 1: the first delivery held every secret */
	int failed;   /* could not run at all */
};

/* One POST with extra headers; the answer in resp; 0 when an HTTP answer came. */
static int post(CURL *curl, const char *base, const char *path, struct curl_slist *headers, const struct buf *body,
		struct buf *resp, long *status)
{
	char url[URL_MAX];

	if (fmt_into(url, sizeof(url), "%s%s", base, path))
		return -1;
	buf_reset(resp);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->ptr);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)body->len);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, bench_collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, BENCH_HTTP_TIMEOUT_MS);
	if (curl_easy_perform(curl) != CURLE_OK)
		return -1;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

/* curl may send "Expect: 100-continue" and wait for it: an agent does not. */
static int no_expect(struct curl_slist **list)
{
	struct curl_slist *l = curl_slist_append(*list, "Expect:");
	if (!l)
		return -1;
	*list = l;
	return 0;
}

/* Enrols a new host named name with the keeper, as the agent does. */
static int enrol(const char *keeper_url, const char *name, struct host *h)
{
	unsigned char sign_pk[HOSTAUTH_PK_LEN], seal_pk[HOSTAUTH_PK_LEN], proof[HOSTAUTH_SIG_LEN];
	const char *env = getenv(JOIN_ENV), *id;
	struct secret *join = NULL;
	struct curl_slist *headers = NULL;
	struct buf body, resp;
	json_t *req = NULL, *ans = NULL;
	CURL *curl = NULL;
	long status = 0;
	int ex = -1;

	buf_init_wiping(&body, BODY_MAX);
	buf_init(&resp, RESPONSE_MAX);
	if (!env || !*env || strlen(env) > JOIN_TOKEN_MAX) {
		bench_fail("%s must hold a join token (coffer keeper join-token)", JOIN_ENV);
		goto out;
	}
	if (secret_from(env, strlen(env), &join))
		goto out;
	sodium_memzero((char *)env, strlen(env));
	unsetenv(JOIN_ENV);
	if (jws_generate_key(&h->sign_sk, sign_pk) || hpke_generate_keypair(&h->seal_sk, seal_pk) ||
	    hostauth_enrol_proof_sign(h->sign_sk, (const char *)secret_cbytes(join), secret_len(join), name, proof)) {
		bench_fail("cannot make the host's keys");
		goto out;
	}
	req = json_object();
	if (!req ||
	    json_object_set_new(req, "join_token", json_stringn((const char *)secret_cbytes(join), secret_len(join))) ||
	    json_object_set_new(req, "name", json_string(name)) ||
	    bench_b64_field(req, "sign_pk", sign_pk, sizeof(sign_pk)) ||
	    bench_b64_field(req, "seal_pk", seal_pk, sizeof(seal_pk)) ||
	    bench_b64_field(req, "proof", proof, sizeof(proof)) ||
	    json_dump_buf(req, &body) || bench_add_header(&headers, "Content-Type", "application/json") ||
	    !(curl = curl_easy_init())) {
		bench_fail("out of memory");
		goto out;
	}
	if (post(curl, keeper_url, ENROL_PATH, headers, &body, &resp, &status) || status != 201) {
		bench_fail("enrolment refused: status %ld: %.200s", status, resp.ptr);
		goto out;
	}
	if (json_parse_limited(resp.ptr, resp.len, RESPONSE_MAX, JSON_DEPTH, &ans, NULL) ||
	    json_get_string(ans, "host_id", 1, &id, NULL, NULL) || str_copy(h->id, sizeof(h->id), id)) {
		bench_fail("enrolment: unexpected answer");
		goto out;
	}
	ex = 0;
out:
	json_decref(ans);
	json_decref(req);
	if (curl)
		curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	buf_release(&resp);
	buf_release(&body);
	secret_free(join);
	return ex;
}

/* The api's boot-token signing key from api.boot.key (64 hex characters). */
static int load_boot_key(const char *file, struct secret **sk)
{
	struct secret *seed = NULL;
	unsigned char pk[JWS_PK_LEN];
	enum coffer_err rc = fs_read_hex_key(file, JWS_SEED_LEN, &seed);
	int ex = -1;

	if (rc && rc != COFFER_ERR_INVALID) {
		bench_fail("cannot read the boot key %s", file);
		return -1;
	}
	if (rc || jws_key_from_seed(seed, sk, pk))
		bench_fail("%s is not 64 hex characters", file);
	else
		ex = 0;
	secret_free(seed);
	return ex;
}

/* Opens the first delivery of a worker: 1 when it holds every secret of the app. */
static int verify_delivery(const struct worker *w, const struct buf *resp, const char *jti)
{
	struct delivery_list l;
	struct buf sealed;
	json_t *ans = NULL;
	const char *b64;
	int ok = 0;

	delivery_list_init(&l);
	buf_init(&sealed, RESPONSE_MAX);
	if (json_parse_limited(resp->ptr, resp->len, RESPONSE_MAX, JSON_DEPTH, &ans, NULL) == COFFER_OK &&
	    json_get_string(ans, "sealed", 1, &b64, NULL, NULL) == COFFER_OK &&
	    b64url_decode(b64, strlen(b64), &sealed) == COFFER_OK &&
	    delivery_open(w->su->host.seal_sk, w->su->host.id, w->machine, jti, w->su->spec_hash, sealed.ptr,
			  sealed.len, &l) == COFFER_OK)
		ok = l.n == w->su->secrets;
	delivery_list_release(&l);
	buf_release(&sealed);
	json_decref(ans);
	return ok;
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	const struct setup *su = w->su;
	struct boottoken_claims in = { 0 }, minted;
	struct hostauth_headers hh;
	struct buf token, body, resp;
	CURL *curl = curl_easy_init();
	int first = 1;

	buf_init_wiping(&token, JWS_TOKEN_MAX);
	buf_init_wiping(&body, BODY_MAX);
	buf_init(&resp, RESPONSE_MAX);
	if (!curl || str_copy(in.app, sizeof(in.app), su->app.id) ||
	    str_copy(in.machine, sizeof(in.machine), w->machine) || str_copy(in.host, sizeof(in.host), su->host.id)) {
		w->failed = 1;
		goto out;
	}
	in.release = su->app.current_release;
	in.secrets_version = su->app.secrets_head;
	for (;;) {
		struct hostauth_request r = { .method = "POST", .path = OPEN_PATH };
		struct curl_slist *headers = NULL;
		int64_t now = (int64_t)time(NULL);
		uint64_t t0, t1;
		long status = 0;
		int sent;

		if (bench_now_ns() >= w->end_ns)
			break;
		buf_reset(&body);
		if (boottoken_mint(su->boot_sk, &in, now, &token, &minted) ||
		    buf_addf(&body, "{\"token\":\"%s\"}", token.ptr)) {
			w->failed = 1;
			goto out;
		}
		r.body = body.ptr;
		r.body_len = body.len;
		if (hostauth_sign_headers(su->host.sign_sk, su->host.id, &r, now, &hh) ||
		    bench_add_header(&headers, "Content-Type", "application/json") ||
		    bench_add_header(&headers, HOSTAUTH_HEADER_HOST, hh.host) ||
		    bench_add_header(&headers, HOSTAUTH_HEADER_TIMESTAMP, hh.timestamp) ||
		    bench_add_header(&headers, HOSTAUTH_HEADER_NONCE, hh.nonce) ||
		    bench_add_header(&headers, HOSTAUTH_HEADER_SIGNATURE, hh.signature) || no_expect(&headers)) {
			curl_slist_free_all(headers);
			w->failed = 1;
			goto out;
		}
		t0 = bench_now_ns();
		sent = post(curl, su->keeper_url, OPEN_PATH, headers, &body, &resp, &status);
		t1 = bench_now_ns();
		curl_slist_free_all(headers);
		if (sent || status != 200) {
			if (w->errors++ == 0) {
				w->first_status = status;
				bench_fail("open refused: status %ld: %.200s", status, resp.ptr);
			}
			continue;
		}
		if (first) {
			w->verified = verify_delivery(w, &resp, minted.jti);
			first = 0;
		}
		if (t0 >= w->warm_end_ns && bench_samples_add(&w->samples, t1 - t0)) {
			w->failed = 1;
			goto out;
		}
	}
out:
	if (curl)
		curl_easy_cleanup(curl);
	buf_release(&resp);
	buf_release(&body);
	buf_release(&token);
	return NULL;
}

/* Runs `threads` clients; prints one line. */
static int run_phase(const char *name, const struct setup *su, struct worker *ws, int threads, int64_t warmup,
		     int64_t seconds)
{
	pthread_t th[THREADS_MAX];
	struct bench_samples all;
	struct bench_stats st;
	uint64_t start = bench_now_ns(), errors = 0;
	char extra[EXTRA_SIZE], label[NAME_SIZE];
	int started = 0, verified = 0, ex = 1;

	bench_samples_init(&all);
	for (int i = 0; i < threads; i++) {
		bench_samples_init(&ws[i].samples);
		ws[i].su = su;
		ws[i].warm_end_ns = start + (uint64_t)warmup * BENCH_NS_PER_S;
		ws[i].end_ns = ws[i].warm_end_ns + (uint64_t)seconds * BENCH_NS_PER_S;
		ws[i].errors = 0;
		ws[i].verified = 0;
		ws[i].failed = 0;
		if (pthread_create(&th[i], NULL, worker_run, &ws[i]))
			break;
		started++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (started < threads) {
		bench_fail("cannot start a thread");
		goto out;
	}
	for (int i = 0; i < threads; i++) {
		if (ws[i].failed) {
			bench_fail("%s: client %d could not run", name, i);
			goto out;
		}
		errors += ws[i].errors;
		verified += ws[i].verified;
		if (bench_samples_merge(&all, &ws[i].samples)) {
			bench_fail("out of memory");
			goto out;
		}
	}
	bench_stats_of(&all, &st);
	snprintf(label, sizeof(label), "%s.t%d", name, threads);
	snprintf(extra, sizeof(extra),
		 ",\"rate\":%.1f,\"unit\":\"open/s\",\"threads\":%d,\"secrets\":%llu,\"errors\":%llu,\"verified\":%d",
		 (double)st.n / (double)seconds, threads, (unsigned long long)su->secrets,
		 (unsigned long long)errors, verified);
	bench_print_stats(label, &st, extra);
	ex = 0;
out:
	for (int i = 0; i < threads; i++)
		bench_samples_release(&ws[i].samples);
	bench_samples_release(&all);
	return ex;
}

/* "1,2" -> {1, 2}; the count or -1. */
static int parse_threads(const char *s, int out[THREAD_LIST_MAX])
{
	char item[NAME_SIZE];
	int n = 0;

	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		int64_t v;
		if (n == THREAD_LIST_MAX || len >= sizeof(item))
			return -1;
		memcpy(item, s, len);
		item[len] = '\0';
		if (parse_int64(item, 1, THREADS_MAX, &v))
			return -1;
		out[n++] = (int)v;
		s += len + (comma ? 1 : 0);
	}
	return n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },	  { "keeper", required_argument, NULL, 'k' },
		{ "boot-key", required_argument, NULL, 'b' },	  { "store", required_argument, NULL, 's' },
		{ "app", required_argument, NULL, 'a' },	  { "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 'S' },	  { "warmup", required_argument, NULL, 'w' },
		{ "host-name", required_argument, NULL, 'h' }, { "rows-key", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *boot_key = NULL, *store_url = NULL, *app = NULL, *host_name = "bench-host";
	const char *rows_key = NULL;
	struct setup su = { 0 };
	struct worker ws[THREADS_MAX];
	struct store *st = NULL;
	int threads[THREAD_LIST_MAX] = { 1, 2 }, n_threads = 2, max_threads = 0, c, ex = 1;
	int64_t seconds = 10, warmup = 1;
	uint64_t bytes;
	struct store_release release = { 0 };
	unsigned char hash[crypto_hash_sha256_BYTES];

	memset(ws, 0, sizeof(ws));
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'k': su.keeper_url = optarg; break;
		case 'b': boot_key = optarg; break;
		case 's': store_url = optarg; break;
		case 'r': rows_key = optarg; break;
		case 'a': app = optarg; break;
		case 'h': host_name = optarg; break;
		case 't':
			n_threads = parse_threads(optarg, threads);
			if (n_threads <= 0)
				return bench_fail("--threads: a list like 1,2 (each 1..%d)", THREADS_MAX);
			break;
		case 'S':
			if (parse_int64(optarg, 1, SECONDS_MAX, &seconds))
				return bench_fail("--seconds: 1..%d", SECONDS_MAX);
			break;
		case 'w':
			if (parse_int64(optarg, 0, SECONDS_MAX, &warmup))
				return bench_fail("--warmup: 0..%d", SECONDS_MAX);
			break;
		default:
			return bench_fail("%s", USAGE);
		}
	}
	if (!name || !su.keeper_url || !boot_key || !store_url || !app)
		return bench_fail("%s", USAGE);
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT))
		return bench_fail("cannot initialise libsodium or libcurl");
	for (int i = 0; i < n_threads; i++)
		if (threads[i] > max_threads)
			max_threads = threads[i];

	if (load_boot_key(boot_key, &su.boot_sk) || enrol(su.keeper_url, host_name, &su.host))
		goto out;
	if (bench_store_open(store_url, rows_key, &st) || store_app_get_by_name(st, app, &su.app) ||
	    store_secrets_stats(st, su.app.id, 0, &su.secrets, &bytes) ||
	    store_release_get(st, su.app.id, su.app.current_release, &release)) {
		store_release_clear(&release);
		bench_fail("cannot read app '%s' and its current release from the store", app);
		goto out;
	}
	crypto_hash_sha256(hash, (const unsigned char *)release.config, strlen(release.config));
	sodium_bin2hex(su.spec_hash, sizeof(su.spec_hash), hash, sizeof(hash));
	store_release_clear(&release);
	for (int i = 0; i < max_threads; i++) {
		struct store_machine m;
		if (store_machine_create(st, su.app.id, su.host.id, su.app.current_release, &m) ||
		    str_copy(ws[i].machine, sizeof(ws[i].machine), m.id)) {
			bench_fail("cannot create a machine of '%s'", app);
			goto out;
		}
	}
	store_close(st);
	st = NULL;
	for (int i = 0; i < n_threads; i++)
		if (run_phase(name, &su, ws, threads[i], warmup, seconds))
			goto out;
	ex = 0;
out:
	store_close(st);
	secret_free(su.host.seal_sk);
	secret_free(su.host.sign_sk);
	secret_free(su.boot_sk);
	curl_global_cleanup();
	return ex;
}
