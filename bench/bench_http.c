/*
 * bench_http — HTTP load with keep-alive clients, and the no-op server
 * that is the API rows' floor.
 *
 *   bench_http noop-server LISTEN READY_FILE
 *       coffer's HTTP server (src/lib/http_server.h: the same gate, access
 *       log and threading as the api) with one route, GET and POST
 *       /v1/noop, that answers {} and does nothing else. Runs until SIGINT
 *       or SIGTERM; writes READY_FILE ("http://HOST:PORT") once listening.
 *
 *   bench_http load --name NAME --url BASE --path PATH [--method POST]
 *                   [--body TEMPLATE] [--token-file FILE] [--clients 16]
 *                   [--seconds 10] [--warmup 1]
 *                   [--sealed APP_PREFIX --deployer-key FILE --deployer-id ID]
 *                   [--durable 0|1]
 *       CLIENTS threads, each with its own libcurl handle and so its own
 *       keep-alive connection, send requests back to back for WARMUP
 *       seconds (not counted) and then SECONDS seconds. In PATH and BODY
 *       "{c}" is the client's number and "{i}" the request's (so every
 *       `secrets set` sets a new value). FILE holds a bearer token. Prints
 *       one JSON line: latency figures of the counted requests, "rate"
 *       (answered requests per second), "clients" and "errors" (answers
 *       that are not 2xx, and transport failures; the first is described
 *       on stderr, with its status only).
 *
 *       --sealed: `secrets set` as the CLI sends it since issue 12 (src/cli/
 *       sign.c, cmd_secrets.c): client c owns app APP_PREFIX-<c> (two
 *       digits, made beforehand), reads its sealing state once (GET
 *       .../secrets/sealing: the app key, the digest key, the head) and
 *       then, per request, seals a new value of BENCH_SET to the app's key,
 *       computes its keyed digest, makes the manifest of the version the
 *       change makes and signs it with the deployer key (FILE, id ID), and
 *       POSTs it to /v1/apps/APP_PREFIX-<c>/secrets (--path is ignored).
 *       Only the POSTs are timed. The app key is not checked against the
 *       keeper's: a benchmark, not a deployer. --durable adds "durable" to
 *       the line (whether the store fsyncs each commit: the caller knows).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "bench_util.h"
#include "buf.h"
#include "deployer.h"
#include "digest.h"
#include "encode.h"
#include "json.h"
#include "store.h"
#include "vault.h"
#include "fs.h"
#include "http_server.h"
#include "log.h"
#include "parse.h"
#include "secret.h"
#include "banned.h"

#define CLIENTS_MAX 256
#define SECONDS_MAX 3600
#define TEMPLATE_MAX 4096
#define URL_MAX 8192
#define RESPONSE_MAX ((size_t)8 << 20)
#define TOKEN_FILE_MAX 512
#define AUTH_HEADER_MAX 600
#define NOOP_BODY_MAX ((size_t)16 << 10)
#define EXTRA_SIZE 160
#define NUM_SIZE 24

/* ---- the no-op server ---- */

static enum coffer_err h_noop(struct http_request *req, void *ctx)
{
	(void)ctx;
	return http_reply(req, 200, "application/json", "{}", 2);
}

static const struct http_route noop_routes[] = {
	{ "GET", "/v1/noop", 0, 0, h_noop, "noop" },
	{ "POST", "/v1/noop", 0, NOOP_BODY_MAX, h_noop, "noop" },
};

static int run_noop_server(int argc, char **argv)
{
	struct http_server_config cfg = { 0 };
	struct http_server *srv = NULL;
	sigset_t set;
	int sig;

	if (argc != 4)
		return bench_fail("usage: bench_http noop-server LISTEN READY_FILE");
	log_set_role("noop");
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return bench_fail("cannot block signals");
	cfg.listen = argv[2];
	if (http_server_start(&cfg, noop_routes, sizeof(noop_routes) / sizeof(noop_routes[0]), NULL, &srv))
		return bench_fail("cannot start the server on %s", argv[2]);
	if (http_server_write_ready_file(srv, argv[2], argv[3])) {
		http_server_stop(srv);
		return bench_fail("cannot write %s", argv[3]);
	}
	while (sigwait(&set, &sig) != 0)
		;
	http_server_stop(srv);
	return 0;
}

/* ---- the load ---- */

struct load_opts {
	const char *name;
	const char *url;
	const char *path;
	const char *method;
	const char *body;
	char auth[AUTH_HEADER_MAX]; /* "Authorization: Bearer ..." or "" */
	int64_t clients;
	int64_t seconds;
	int64_t warmup;
	const char *sealed;      /* the apps' prefix: sealed and signed sets (--sealed) */
	struct secret *sk;       /* the deployer key */
	const char *signer;      /* its id */
	int durable;             /* -1: not said */
};

/* A client's view of its app (--sealed), as the CLI reads it before a set. */
struct sealing {
	char app[STORE_NAME_SIZE];
	char app_id[STORE_ID_SIZE];
	uint32_t key_version;
	unsigned char pk[HPKE_PK_LEN];
	struct secret *digest_key;
	uint64_t head_version;
	char *head_manifest;     /* NULL: none */
	uint64_t next_version;
	struct buf manifest;     /* the manifest of the change in flight */
};

struct client {
	const struct load_opts *o;
	int index;
	uint64_t warm_end_ns;
	uint64_t end_ns;
	struct bench_samples samples;
	uint64_t errors;
	int failed; /* could not run at all */
	long first_error_status;
	char first_error[CURL_ERROR_SIZE];
	struct sealing st;
};

/* Expands {c} and {i} of tmpl into out (reset first). */
static enum coffer_err expand(const char *tmpl, int c, uint64_t i, struct buf *out)
{
	char num[NUM_SIZE];
	enum coffer_err rc = COFFER_OK;

	buf_reset(out);
	for (const char *p = tmpl; *p && rc == COFFER_OK; p++) {
		if (p[0] == '{' && (p[1] == 'c' || p[1] == 'i') && p[2] == '}') {
			rc = p[1] == 'c' ? fmt_into(num, sizeof(num), "%02d", c)
					 : fmt_into(num, sizeof(num), "%llu", (unsigned long long)i);
			if (rc == COFFER_OK)
				rc = buf_adds(out, num);
			p += 2;
		} else {
			rc = buf_addch(out, *p);
		}
	}
	return rc;
}

/* Appends a header line to *list; 0 or -1. */
static int append(struct curl_slist **list, const char *line)
{
	struct curl_slist *l = curl_slist_append(*list, line);
	if (!l)
		return -1;
	*list = l;
	return 0;
}

static void sealing_clear(struct sealing *st)
{
	secret_free(st->digest_key);
	st->digest_key = NULL;
	free(st->head_manifest);
	st->head_manifest = NULL;
}

static int b64_into(const json_t *o, const char *key, void *out, size_t len)
{
	const char *v = json_string_value(json_object_get(o, key));
	size_t n = 0;
	return !v || b64_decode_into(B64_URL, v, strlen(v), out, len, &n) || n != len ? -1 : 0;
}

/* GET .../secrets/sealing into st (the CLI's state_read, without its checks of the keeper's signatures). */
static int sealing_read(CURL *curl, const struct load_opts *o, struct buf *url, struct buf *resp, struct sealing *st)
{
	unsigned char key[HPKE_PK_LEN + VAULT_SIG_LEN];
	json_t *doc = NULL, *head;
	const char *id, *manifest;
	long status = 0;
	int ex = -1;

	sealing_clear(st);
	buf_reset(url);
	buf_reset(resp);
	if (buf_adds(url, o->url) || buf_adds(url, "/v1/apps/") || buf_adds(url, st->app) ||
	    buf_adds(url, "/secrets/sealing"))
		return -1;
	curl_easy_setopt(curl, CURLOPT_URL, url->ptr);
	curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, NULL);
	if (curl_easy_perform(curl) != CURLE_OK)
		return -1;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200 || json_parse_limited(resp->ptr, resp->len, resp->max, JSON_MAX_DEPTH_DEFAULT, &doc, NULL))
		return -1;
	head = json_object_get(doc, "head");
	id = json_string_value(json_object_get(doc, "app_id"));
	manifest = json_string_value(json_object_get(head, "manifest"));
	if (!id || str_copy(st->app_id, sizeof(st->app_id), id) || b64_into(doc, "public_key", key, sizeof(key)) ||
	    secret_new(DIGEST_KEY_LEN, &st->digest_key) ||
	    b64_into(doc, "digest_key", secret_bytes(st->digest_key), DIGEST_KEY_LEN))
		goto out;
	memcpy(st->pk, key, HPKE_PK_LEN);
	st->key_version = (uint32_t)json_integer_value(json_object_get(doc, "key_version"));
	st->next_version = (uint64_t)json_integer_value(json_object_get(doc, "next_version"));
	st->head_version = (uint64_t)json_integer_value(json_object_get(head, "version"));
	if (manifest && !(st->head_manifest = strdup(manifest)))
		goto out;
	ex = 0;
out:
	json_decref(doc);
	return ex;
}

/* The body of a set of BENCH_SET to a new value, sealed and signed as the CLI makes it. */
static int sealed_body(const struct load_opts *o, struct sealing *st, int c, uint64_t i, struct buf *out)
{
	char value_id[STORE_ID_SIZE], digest[DIGEST_HEX_LEN + 1], hash[DEPLOYER_HASH_HEX_SIZE];
	char sig[DEPLOYER_SIG_B64_SIZE], text[NUM_SIZE * 2];
	struct secret *value = NULL;
	struct buf sealed, b64;
	json_t *body = NULL;
	int ex = -1;

	store_new_id(value_id);
	buf_init(&sealed, 4096);
	buf_init(&b64, 8192);
	if (fmt_into(text, sizeof(text), "v-%02d-%llu", c, (unsigned long long)i) ||
	    secret_from(text, strlen(text), &value) ||
	    vault_seal_value(st->pk, st->app_id, "BENCH_SET", st->key_version, value_id, value, &sealed) ||
	    digest_value(st->digest_key, value, digest) || b64url_encode(sealed.ptr, sealed.len, &b64))
		goto out;
	struct store_secret_change change = { .name = "BENCH_SET", .digest = digest, .value_id = value_id };
	if (store_manifest_next(st->app_id, st->head_version, st->head_manifest, st->next_version, &change, 1,
				&st->manifest) ||
	    deployer_sign(o->sk, st->manifest.ptr, st->manifest.len, sig))
		goto out;
	deployer_hash_hex(st->manifest.ptr, st->manifest.len, hash);
	body = json_pack("{s:{s:{s:s%,s:s,s:s}},s:b,s:I,s:s,s:{s:s,s:s}}", "secrets", "BENCH_SET", "sealed", b64.ptr,
			 b64.len, "digest", digest, "value_id", value_id, "stage", 0, "key_version",
			 (json_int_t)st->key_version, "signer", o->signer, "manifest", "sha256", hash, "signature", sig);
	buf_reset(out);
	if (body && json_dump_buf(body, out) == COFFER_OK)
		ex = 0;
out:
	json_decref(body);
	secret_free(value);
	buf_release(&b64);
	buf_release(&sealed);
	return ex;
}

/* After an answered set: the change's version is the head now. */
static int sealed_advance(struct sealing *st)
{
	char *m = strdup(st->manifest.ptr);
	if (!m)
		return -1;
	free(st->head_manifest);
	st->head_manifest = m;
	st->head_version = st->next_version++;
	return 0;
}

/* The path, URL and body of request i of client cl. */
static int next_request(struct client *cl, uint64_t i, struct buf *path, struct buf *url, struct buf *body)
{
	const struct load_opts *o = cl->o;
	if (o->sealed) {
		buf_reset(path);
		return buf_adds(path, "/v1/apps/") || buf_adds(path, cl->st.app) || buf_adds(path, "/secrets") ||
		       buf_adds(url, o->url) || buf_add(url, path->ptr, path->len) ||
		       sealed_body(o, &cl->st, cl->index, i, body);
	}
	return expand(o->path, cl->index, i, path) || buf_adds(url, o->url) || buf_add(url, path->ptr, path->len) ||
	       expand(o->body ? o->body : "", cl->index, i, body);
}

static void *client_run(void *arg)
{
	struct client *cl = arg;
	const struct load_opts *o = cl->o;
	struct curl_slist *headers = NULL;
	struct buf url, path, body, resp;
	CURL *curl = curl_easy_init();
	uint64_t i = 0;

	buf_init(&url, URL_MAX);
	buf_init(&path, URL_MAX);
	buf_init(&body, TEMPLATE_MAX);
	buf_init(&resp, RESPONSE_MAX);
	/* no "Expect: 100-continue" (curl's for larger bodies): a client of ours does not wait for one */
	if (!curl || append(&headers, "Content-Type: application/json") || append(&headers, "Expect:") ||
	    (o->auth[0] && append(&headers, o->auth))) {
		cl->failed = 1;
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, o->method);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, bench_collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, BENCH_HTTP_TIMEOUT_MS);
	buf_init(&cl->st.manifest, STORE_MANIFEST_MAX);
	if (o->sealed && (fmt_into(cl->st.app, sizeof(cl->st.app), "%s-%02d", o->sealed, cl->index) ||
			  sealing_read(curl, o, &url, &resp, &cl->st))) {
		cl->failed = 1;
		goto out;
	}
	for (;;) {
		uint64_t t0 = bench_now_ns(), t1;
		long status = 0;
		CURLcode cc;

		if (t0 >= cl->end_ns)
			break;
		buf_reset(&resp);
		buf_reset(&url);
		if (next_request(cl, i, &path, &url, &body)) {
			cl->failed = 1;
			goto out;
		}
		i++;
		curl_easy_setopt(curl, CURLOPT_URL, url.ptr);
		if (o->body || o->sealed) {
			curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.ptr);
			curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)body.len);
		} else {
			curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
			curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, o->method);
		}
		cc = curl_easy_perform(curl);
		t1 = bench_now_ns();
		if (cc == CURLE_OK)
			curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		if (cc != CURLE_OK || status < 200 || status > 299) {
			if (cl->errors++ == 0) {
				cl->first_error_status = status;
				if (str_copy(cl->first_error, sizeof(cl->first_error),
					     cc != CURLE_OK ? curl_easy_strerror(cc) : "an error status"))
					cl->first_error[0] = '\0';
			}
			/* a set refused (the head moved?): read the app's state again */
			if (o->sealed && sealing_read(curl, o, &url, &resp, &cl->st)) {
				cl->failed = 1;
				goto out;
			}
			continue;
		}
		if (o->sealed && sealed_advance(&cl->st)) {
			cl->failed = 1;
			goto out;
		}
		if (t0 >= cl->warm_end_ns && bench_samples_add(&cl->samples, t1 - t0)) {
			cl->failed = 1;
			goto out;
		}
	}
out:
	sealing_clear(&cl->st);
	buf_release(&cl->st.manifest);
	curl_slist_free_all(headers);
	if (curl)
		curl_easy_cleanup(curl);
	buf_release(&resp);
	buf_release(&body);
	buf_release(&path);
	buf_release(&url);
	return NULL;
}

static int read_token(const char *file, char auth[AUTH_HEADER_MAX])
{
	struct secret *tok = NULL;
	size_t len;
	int ex = -1;

	if (fs_read_private(file, TOKEN_FILE_MAX, &tok))
		return -1;
	len = secret_len(tok);
	while (len && (secret_cbytes(tok)[len - 1] == '\n' || secret_cbytes(tok)[len - 1] == '\r'))
		len--;
	if (fmt_into(auth, AUTH_HEADER_MAX, "Authorization: Bearer %.*s", (int)len,
		     (const char *)secret_cbytes(tok)) == COFFER_OK)
		ex = 0;
	secret_free(tok);
	return ex;
}

static int run_load(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },	{ "url", required_argument, NULL, 'u' },
		{ "path", required_argument, NULL, 'p' },	{ "method", required_argument, NULL, 'm' },
		{ "body", required_argument, NULL, 'b' },	{ "token-file", required_argument, NULL, 't' },
		{ "clients", required_argument, NULL, 'c' },	{ "seconds", required_argument, NULL, 's' },
		{ "warmup", required_argument, NULL, 'w' },	{ "sealed", required_argument, NULL, 'S' },
		{ "deployer-key", required_argument, NULL, 'k' }, { "deployer-id", required_argument, NULL, 'i' },
		{ "durable", required_argument, NULL, 'd' },	{ NULL, 0, NULL, 0 },
	};
	struct load_opts o = { .method = "GET", .clients = 16, .seconds = 10, .warmup = 1, .durable = -1 };
	unsigned char deployer_pk[DEPLOYER_PK_LEN];
	struct client *cls = NULL;
	pthread_t *th = NULL;
	struct bench_samples all;
	struct bench_stats st;
	uint64_t start, errors = 0;
	char extra[EXTRA_SIZE];
	int c, started = 0, ex = 1;

	bench_samples_init(&all);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': o.name = optarg; break;
		case 'u': o.url = optarg; break;
		case 'p': o.path = optarg; break;
		case 'm': o.method = optarg; break;
		case 'b': o.body = optarg; break;
		case 't':
			if (read_token(optarg, o.auth))
				return bench_fail("cannot read the token file %s", optarg);
			break;
		case 'c':
			if (parse_int64(optarg, 1, CLIENTS_MAX, &o.clients))
				return bench_fail("--clients: 1..%d", CLIENTS_MAX);
			break;
		case 's':
			if (parse_int64(optarg, 1, SECONDS_MAX, &o.seconds))
				return bench_fail("--seconds: 1..%d", SECONDS_MAX);
			break;
		case 'w':
			if (parse_int64(optarg, 0, SECONDS_MAX, &o.warmup))
				return bench_fail("--warmup: 0..%d", SECONDS_MAX);
			break;
		case 'S': o.sealed = optarg; o.method = "POST"; break;
		case 'i': o.signer = optarg; break;
		case 'k':
			if (deployer_key_load(optarg, &o.sk, deployer_pk))
				return bench_fail("cannot read the deployer key %s", optarg);
			break;
		case 'd': o.durable = strcmp(optarg, "1") == 0; break;
		default:
			return bench_fail("usage: bench_http load --name NAME --url BASE --path PATH ...");
		}
	}
	if (!o.name || !o.url || !(o.path || o.sealed) || (o.sealed && (!o.sk || !o.signer))) {
		secret_free(o.sk);
		return bench_fail("usage: bench_http load --name NAME --url BASE --path PATH ...");
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return bench_fail("curl_global_init failed");
	cls = calloc((size_t)o.clients, sizeof(*cls));
	th = calloc((size_t)o.clients, sizeof(*th));
	if (!cls || !th) {
		bench_fail("out of memory");
		goto out;
	}
	start = bench_now_ns();
	for (int i = 0; i < o.clients; i++) {
		cls[i].o = &o;
		cls[i].index = i;
		cls[i].warm_end_ns = start + (uint64_t)o.warmup * BENCH_NS_PER_S;
		cls[i].end_ns = cls[i].warm_end_ns + (uint64_t)o.seconds * BENCH_NS_PER_S;
		bench_samples_init(&cls[i].samples);
		if (pthread_create(&th[i], NULL, client_run, &cls[i])) {
			bench_fail("cannot start a thread");
			goto join;
		}
		started++;
	}
join:
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (started < o.clients)
		goto out;
	for (int i = 0; i < o.clients; i++) {
		if (cls[i].failed) {
			bench_fail("%s: client %d could not run", o.name, i);
			goto out;
		}
		if (cls[i].errors && errors == 0)
			bench_fail("%s: first failure: status %ld (%s)", o.name, cls[i].first_error_status,
				   cls[i].first_error);
		errors += cls[i].errors;
		if (bench_samples_merge(&all, &cls[i].samples)) {
			bench_fail("out of memory");
			goto out;
		}
	}
	bench_stats_of(&all, &st);
	snprintf(extra, sizeof(extra), ",\"rate\":%.1f,\"unit\":\"req/s\",\"clients\":%lld,\"errors\":%llu%s",
		 (double)st.n / (double)o.seconds, (long long)o.clients, (unsigned long long)errors,
		 o.durable < 0 ? "" : o.durable ? ",\"durable\":true" : ",\"durable\":false");
	bench_print_stats(o.name, &st, extra);
	ex = 0;
out:
	if (cls)
		for (int i = 0; i < o.clients; i++)
			bench_samples_release(&cls[i].samples);
	free(th);
	free(cls);
	bench_samples_release(&all);
	sodium_memzero(o.auth, sizeof(o.auth));
	secret_free(o.sk);
	curl_global_cleanup();
	return ex;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return bench_fail("libsodium failed to initialise");
	if (argc >= 2 && strcmp(argv[1], "noop-server") == 0)
		return run_noop_server(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "load") == 0)
		return run_load(argc - 1, argv + 1);
	return bench_fail("usage: bench_http noop-server LISTEN READY_FILE | load ...");
}
