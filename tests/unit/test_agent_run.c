/*
 * Unit tests of src/agent/agent_run.c: the jti of a boot token, a boot from
 * a sealed delivery into a real child (its exact secrets in
 * /proc/PID/environ), and the whole runner against a fake api and keeper
 * (one local server answering both): boot, adopt, exit with a masked tail
 * and a restart, replace on a new spec, a failure to start, unassign, and
 * the stop of every machine when the runner stops; the boot token of the
 * assignment (and the boot-token route only as the fallback: no token, one
 * about to expire, one the keeper refuses), tokens refreshed by a poll
 * answer of the same generation, and events that never hold a boot up and
 * arrive in order through an api that fails for a while. Every request the
 * agent makes must carry a valid host signature.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "agent.h"
#include "answersig.h"
#include "boottoken.h"
#include "buf.h"
#include "delivery.h"
#include "encode.h"
#include "fs.h"
#include "hostauth.h"
#include "http_server.h"
#include "jws.h"
#include "log.h"
#include "machine.h"
#include "secret.h"

#define PATH_SIZE 512
#define ENVIRON_MAX ((size_t)64 << 10)
#define WAIT_MS 15000
#define POLL_MS 20
#define EVENTS_MAX 256
#define FAKE_POLL_WAIT_MS 1000
#define SECRET_VALUE "s3cr3t-Value-42"
#define HOST_ID "host1"
#define MACHINE_ID "m0123456789abcdef0123456789abcde"
#define MACHINE2_ID "m2223456789abcdef0123456789abcde"

struct fixture {
	char root[PATH_SIZE];
	char state[PATH_SIZE];
	struct agent_identity id;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->root, sizeof(f->root), "/tmp/coffer-agent-run-XXXXXX");
	if (!mkdtemp(f->root) || chmod(f->root, 0755))
		return -1;
	if (fmt_into(f->state, sizeof(f->state), "%s/state", f->root))
		return -1;
	if (agent_identity_load(f->state, &f->id, NULL))
		return -1;
	f->id.enrolled = 1;
	if (str_copy(f->id.host_id, sizeof(f->id.host_id), HOST_ID) || str_copy(f->id.name, sizeof(f->id.name), "h"))
		return -1;
	*state = f;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	agent_identity_release(&f->id);
	nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* /proc/PID/environ as one string with '\n' between entries. */
static void read_environ(pid_t pid, struct buf *out)
{
	char path[PATH_SIZE];
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	/* machine_start returns once exec is past its point of no return; the
	 * kernel sets the new image's environment a moment later */
	for (int tries = 0; tries < 5000; tries++) {
		buf_reset(out);
		assert_int_equal(fs_read_file(path, out), COFFER_OK);
		if (out->len)
			break;
		usleep(1000);
	}
	for (size_t i = 0; i < out->len; i++)
		if (out->ptr[i] == '\0')
			out->ptr[i] = '\n';
}

static int has_line(const struct buf *b, const char *line)
{
	size_t n = strlen(line);
	const char *p = b->ptr;
	while (p && p < b->ptr + b->len) {
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			return 1;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return 0;
}

/* An entry M as the api makes it: "config" is the release's config text, as stored and signed. */
static json_t *assignment_of(const char *id, int64_t release, const char *spec, json_t *config)
{
	char *text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(text);
	json_decref(config);
	json_t *m = json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "id", id, "app", "web", "app_id", "a1", "release",
			      (json_int_t)release, "secrets_version", (json_int_t)2, "spec", spec, "config", text);
	free(text);
	assert_non_null(m);
	return m;
}

static json_t *assignment(const char *id, int64_t release, const char *spec, const char *script)
{
	return assignment_of(id, release, spec,
			     json_pack("{s:[s,s,s],s:I,s:{s:s,s:s},s:I}", "cmd", "/bin/sh", "-c", script, "count",
				       (json_int_t)1, "env", "FOO", "bar", "DB_URL", "from-env", "grace_ms",
				       (json_int_t)60000));
}

/* The hex SHA-256 of an entry's config text: what its delivery is bound to. */
static void config_hash(const json_t *m, char out[DELIVERY_SPEC_HASH_SIZE])
{
	const char *config = json_string_value(json_object_get(m, "config"));
	unsigned char h[crypto_hash_sha256_BYTES];
	assert_non_null(config);
	crypto_hash_sha256(h, (const unsigned char *)config, strlen(config));
	sodium_bin2hex(out, DELIVERY_SPEC_HASH_SIZE, h, sizeof(h));
}

static void seal_for(const struct fixture *f, const char *machine, const char *jti, const char *spec_hash,
		     struct buf *sealed)
{
	struct secret *v = NULL, *w = NULL;
	assert_int_equal(secret_from(SECRET_VALUE, strlen(SECRET_VALUE), &v), COFFER_OK);
	assert_int_equal(secret_from("other", 5, &w), COFFER_OK);
	struct delivery_item items[] = { { "DB_URL", v }, { "API_KEY", w } };
	assert_int_equal(delivery_seal(f->id.seal_pk, f->id.host_id, machine, jti, spec_hash, items, 2, sealed),
			 COFFER_OK);
	secret_free(v);
	secret_free(w);
}

/* ---- jti ---- */

static void test_token_jti(void **state)
{
	(void)state;
	struct secret *sk = NULL;
	unsigned char pk[JWS_PK_LEN];
	struct buf token;
	struct boottoken_claims in, minted;
	char jti[AGENT_JTI_SIZE];

	buf_init(&token, JWS_TOKEN_MAX);
	assert_int_equal(jws_generate_key(&sk, pk), COFFER_OK);
	memset(&in, 0, sizeof(in));
	strcpy(in.app, "a1"); /* test code: banned.h is not included */
	strcpy(in.machine, "m1");
	strcpy(in.host, "host1");
	in.release = 3;
	in.secrets_version = 2;
	assert_int_equal(boottoken_mint(sk, &in, (int64_t)time(NULL), &token, &minted), COFFER_OK);
	assert_int_equal(agent_token_jti(token.ptr, token.len, jti), COFFER_OK);
	assert_string_equal(jti, minted.jti);
	assert_int_equal(strlen(jti), 32);

	assert_int_equal(agent_token_jti("abc", 3, jti), COFFER_ERR_INVALID);
	assert_int_equal(agent_token_jti("a.b", 3, jti), COFFER_ERR_INVALID);
	/* payload without a jti, and one with an upper-case jti */
	const char *no_jti = "eyJhbGciOiJFZERTQSJ9.eyJhIjoxfQ.sig";
	assert_int_equal(agent_token_jti(no_jti, strlen(no_jti), jti), COFFER_ERR_INVALID);
	struct buf p;
	buf_init(&p, 1024);
	const char *bad = "{\"jti\":\"0123456789ABCDEF0123456789abcdef\"}";
	assert_int_equal(b64url_encode(bad, strlen(bad), &p), COFFER_OK);
	char tok[256];
	snprintf(tok, sizeof(tok), "h.%s.s", p.ptr);
	assert_int_equal(agent_token_jti(tok, strlen(tok), jti), COFFER_ERR_INVALID);
	buf_release(&p);
	buf_release(&token);
	secret_free(sk);
}

/* ---- boot from a sealed delivery ---- */

static void test_boot_sealed(void **state)
{
	struct fixture *f = *state;
	const char *jti = "00112233445566778899aabbccddeeff";
	struct buf sealed, env;
	struct machine *m = NULL;
	struct machine_error err;
	struct machine_exit ex;
	size_t n = 0;
	char path[2 * PATH_SIZE], hash[DELIVERY_SPEC_HASH_SIZE];
	struct stat st;

	buf_init(&sealed, DELIVERY_SEALED_MAX);
	buf_init(&env, ENVIRON_MAX);
	json_t *a = assignment(MACHINE_ID, 5, "spec1", "sleep 30");
	config_hash(a, hash);
	seal_for(f, MACHINE_ID, jti, hash, &sealed);
	assert_int_equal(agent_boot_sealed(&f->id, f->state, a, jti, sealed.ptr, sealed.len, &m, &n, &err), COFFER_OK);
	assert_non_null(m);
	assert_int_equal(n, 2);
	read_environ(machine_pid(m), &env);
	assert_true(has_line(&env, "DB_URL=" SECRET_VALUE)); /* a secret wins over --env */
	assert_false(has_line(&env, "DB_URL=from-env"));
	assert_true(has_line(&env, "API_KEY=other"));
	assert_true(has_line(&env, "FOO=bar"));
	assert_true(has_line(&env, "COFFER_APP_NAME=web"));
	assert_true(has_line(&env, "COFFER_MACHINE_ID=" MACHINE_ID));
	assert_true(has_line(&env, "COFFER_RELEASE_VERSION=5"));
	snprintf(path, sizeof(path), "%s/machines/%s/work", f->state, MACHINE_ID);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(machine_stop(m, 2000, &ex), COFFER_OK);
	assert_int_equal(ex.signal, SIGTERM);
	machine_free(m);
	m = NULL;

	/* another jti, another machine: the seal does not open, nothing starts */
	assert_int_equal(agent_boot_sealed(&f->id, f->state, a, "ffffffffffffffffffffffffffffffff", sealed.ptr,
					   sealed.len, &m, &n, &err),
			 COFFER_ERR_CRYPTO);
	assert_null(m);
	assert_non_null(strstr(err.message, "cannot open the delivered secrets"));
	json_t *b = assignment(MACHINE2_ID, 5, "spec1", "sleep 30");
	assert_int_equal(agent_boot_sealed(&f->id, f->state, b, jti, sealed.ptr, sealed.len, &m, &n, &err),
			 COFFER_ERR_CRYPTO);
	assert_null(m);
	json_decref(b);

	/*
	 * The same machine with its config changed after the keeper sealed for
	 * the signed one (the api swapped the command): the seal does not open,
	 * the command never runs.
	 */
	char marker[2 * PATH_SIZE], script[3 * PATH_SIZE];
	snprintf(marker, sizeof(marker), "%s/swapped-command-ran", f->state);
	snprintf(script, sizeof(script), "touch '%s'; sleep 30", marker);
	json_t *swapped = assignment(MACHINE_ID, 5, "spec1", script);
	assert_int_equal(agent_boot_sealed(&f->id, f->state, swapped, jti, sealed.ptr, sealed.len, &m, &n, &err),
			 COFFER_ERR_CRYPTO);
	assert_null(m);
	assert_non_null(strstr(err.message, "not sealed for this machine's config"));
	assert_int_equal(stat(marker, &st), -1);
	json_decref(swapped);

	/* a missing command fails to start, with a reason and no value in it */
	json_t *c = assignment_of(MACHINE_ID, 5, "x", json_pack("{s:[s],s:{}}", "cmd", "no-such-command-coffer", "env"));
	buf_reset(&sealed);
	config_hash(c, hash);
	seal_for(f, MACHINE_ID, jti, hash, &sealed);
	assert_int_equal(agent_boot_sealed(&f->id, f->state, c, jti, sealed.ptr, sealed.len, &m, &n, &err),
			 COFFER_ERR_NOT_FOUND);
	assert_null(m);
	assert_non_null(strstr(err.message, "no-such-command-coffer"));
	assert_null(strstr(err.message, SECRET_VALUE));

	/* malformed assignments: a bad id, an empty cmd, a config that is not JSON, cmd outside the config */
	json_t *d = assignment_of("../x", 5, "x", json_pack("{s:[s]}", "cmd", "sleep"));
	assert_int_equal(agent_boot_sealed(&f->id, f->state, d, jti, sealed.ptr, sealed.len, &m, &n, &err),
			 COFFER_ERR_INVALID);
	json_decref(d);
	d = assignment_of(MACHINE_ID, 5, "x", json_pack("{s:[]}", "cmd"));
	assert_int_equal(agent_boot_sealed(&f->id, f->state, d, jti, sealed.ptr, sealed.len, &m, &n, &err),
			 COFFER_ERR_INVALID);
	json_decref(d);
	d = json_pack("{s:s,s:s,s:I,s:s,s:s}", "id", MACHINE_ID, "app", "web", "release", (json_int_t)5, "spec", "x",
		      "config", "{\"cmd\":[\"sleep\"");
	assert_int_equal(agent_boot_sealed(&f->id, f->state, d, jti, sealed.ptr, sealed.len, &m, &n, &err),
			 COFFER_ERR_INVALID);
	json_decref(d);
	d = json_pack("{s:s,s:s,s:I,s:s,s:[s],s:{}}", "id", MACHINE_ID, "app", "web", "release", (json_int_t)5, "spec",
		      "x", "cmd", "sleep", "env");
	assert_int_equal(agent_boot_sealed(&f->id, f->state, d, jti, sealed.ptr, sealed.len, &m, &n, &err),
			 COFFER_ERR_INVALID);
	assert_null(m);
	json_decref(a);
	json_decref(c);
	json_decref(d);
	buf_release(&env);
	buf_release(&sealed);
}

/* ---- the runner against a fake api and keeper ---- */

struct event {
	char machine[64];
	char state[16];
	int64_t release;
	int64_t pid;
	int64_t started_at;
	int64_t answered_at; /* when the fake api answered the post (unix ms) */
	int64_t exit_status;
	int64_t exit_signal;
	int has_tail;
	char tail[1024];
};

/* What the fake api puts in each assignment as its boot token. */
enum fake_tokens {
	TOKENS_GOOD,    /* a fresh token, as the api does */
	TOKENS_NONE,    /* none (an api without a boot key) */
	TOKENS_SOON,    /* one that expires in 30 s */
	TOKENS_FOREIGN, /* one signed by another key: the keeper answers 401 */
};

struct fake {
	pthread_mutex_t mu;
	const struct fixture *f;
	struct secret *boot_sk;
	struct secret *foreign_sk;
	json_t *machines;       /* the assignments */
	uint64_t gen;
	struct event events[EVENTS_MAX];
	int n_events;
	int opens;
	int opens_refused;      /* 401 for a bad token */
	int route_tokens;       /* tokens from the boot-token route */
	int bad_signatures;
	int refuse_open;        /* the keeper answers 409 */
	int opens_reused;       /* opens with a token already opened once (the keeper refuses them, 401) */
	char seen_jti[256][BOOTTOKEN_ID_SIZE + 8];
	int n_seen;
	enum fake_tokens tokens;
	int events_fail;        /* the next this many event posts are answered 503 */
	int events_delay_ms;    /* each event post is answered after this long */
	struct hostauth_replay *replay;
	int forge_answers;      /* the api's answers are signed with foreign_sk */
	char *signed_config;    /* NULL, or the config the keeper seals for (the signed one), whatever the api says */
};

/*
 * The hash the keeper seals machine's delivery for: its release's config,
 * here the config of the machine's assignment, or the signed one the test
 * set (an api that changed the config after it was signed). Under k->mu.
 */
static void keeper_hash_locked(struct fake *k, const char *machine, char out[DELIVERY_SPEC_HASH_SIZE])
{
	size_t i;
	json_t *m;
	unsigned char h[crypto_hash_sha256_BYTES];
	const char *config = k->signed_config;
	json_array_foreach(k->machines, i, m) {
		if (!config && strcmp(json_string_value(json_object_get(m, "id")), machine) == 0)
			config = json_string_value(json_object_get(m, "config"));
	}
	assert_non_null(config);
	crypto_hash_sha256(h, (const unsigned char *)config, strlen(config));
	sodium_bin2hex(out, DELIVERY_SPEC_HASH_SIZE, h, sizeof(h));
}

/* Checks the host signature of req as the api and keeper do. */
static int signed_ok(struct fake *k, struct http_request *req)
{
	size_t len = 0;
	const char *body = http_request_body(req, &len);
	struct hostauth_request r = { http_request_method(req), http_request_target(req), body, len };
	struct hostauth_presented p = { http_request_header(req, HOSTAUTH_HEADER_HOST),
					http_request_header(req, HOSTAUTH_HEADER_TIMESTAMP),
					http_request_header(req, HOSTAUTH_HEADER_NONCE),
					http_request_header(req, HOSTAUTH_HEADER_SIGNATURE) };
	const char *why = NULL;
	int ok = p.host && strcmp(p.host, HOST_ID) == 0 &&
		 hostauth_verify(&r, &p, k->f->id.sign_pk, k->replay, (int64_t)time(NULL), &why) == COFFER_OK;
	if (!ok) {
		pthread_mutex_lock(&k->mu);
		k->bad_signatures++;
		pthread_mutex_unlock(&k->mu);
	}
	return ok;
}

/* A token for machine as the api mints it, signed with sk, expiring at exp (0: the default). */
static void mint_for(const struct secret *sk, const char *machine, int64_t exp, struct buf *token)
{
	struct boottoken_claims in;
	memset(&in, 0, sizeof(in));
	snprintf(in.app, sizeof(in.app), "a1");
	snprintf(in.machine, sizeof(in.machine), "%s", machine);
	snprintf(in.host, sizeof(in.host), HOST_ID);
	in.release = 1;
	in.secrets_version = 2;
	in.exp = exp;
	assert_int_equal(boottoken_mint(sk, &in, (int64_t)time(NULL), token, NULL), COFFER_OK);
}

/* The document as the api answers it: a token minted per answer in each entry, not in the generation. */
static json_t *doc_locked(struct fake *k)
{
	char gen[17];
	struct buf token;
	size_t i;
	json_t *m, *machines = json_deep_copy(k->machines);
	assert_non_null(machines);
	snprintf(gen, sizeof(gen), "%016llx", (unsigned long long)k->gen);
	buf_init(&token, JWS_TOKEN_MAX);
	json_array_foreach(machines, i, m) {
		int64_t exp = k->tokens == TOKENS_SOON ? (int64_t)time(NULL) + 30 : (int64_t)time(NULL) + 600;
		if (k->tokens == TOKENS_NONE)
			break;
		mint_for(k->tokens == TOKENS_FOREIGN ? k->foreign_sk : k->boot_sk,
			 json_string_value(json_object_get(m, "id")), k->tokens == TOKENS_SOON ? exp : 0, &token);
		assert_int_equal(json_object_set_new(m, "boot_token", json_stringn(token.ptr, token.len)), 0);
		assert_int_equal(json_object_set_new(m, "boot_token_exp", json_integer(exp)), 0);
	}
	buf_release(&token);
	return json_pack("{s:s,s:o}", "generation", gen, "machines", machines);
}

/* Answers 200 with doc (consumed) signed as the api signs (answersig.h), with another key when k->forge_answers. */
static enum coffer_err fake_reply(struct fake *k, struct http_request *req, json_t *doc)
{
	char sig[ANSWERSIG_B64_SIZE];
	struct buf text;
	buf_init(&text, AGENT_ASSIGNMENTS_MAX);
	pthread_mutex_lock(&k->mu);
	const struct secret *sk = k->forge_answers ? k->foreign_sk : k->boot_sk;
	pthread_mutex_unlock(&k->mu);
	enum coffer_err rc = json_dump_buf(doc, &text);
	json_decref(doc);
	if (!rc)
		rc = answersig_sign(sk, HOST_ID, http_request_header(req, HOSTAUTH_HEADER_NONCE), 200, text.ptr, text.len,
				    sig);
	if (!rc)
		rc = http_reply(req, 200, "application/json", text.ptr, text.len);
	if (!rc)
		rc = http_reply_header(req, ANSWERSIG_HEADER, sig);
	buf_release(&text);
	return rc;
}

static enum coffer_err h_assignments(struct http_request *req, void *ctx)
{
	struct fake *k = ctx;
	const char *after = http_request_query(req, "after");
	const char *wait = http_request_query(req, "wait");
	if (!signed_ok(k, req))
		return http_reply_error(req, COFFER_ERR_UNAUTH, "bad signature");
	if (!wait || strcmp(wait, "25") != 0)
		return http_reply_error(req, COFFER_ERR_INVALID, "wait");
	int64_t until = now_ms() + FAKE_POLL_WAIT_MS;
	json_t *doc;
	for (;;) {
		pthread_mutex_lock(&k->mu);
		doc = doc_locked(k);
		pthread_mutex_unlock(&k->mu);
		const char *g = json_string_value(json_object_get(doc, "generation"));
		if (!after || strcmp(after, g) != 0 || now_ms() >= until)
			break;
		json_decref(doc);
		sleep_ms(POLL_MS);
	}
	return fake_reply(k, req, doc);
}

static enum coffer_err h_boot_token(struct http_request *req, void *ctx)
{
	struct fake *k = ctx;
	struct buf token;
	if (!signed_ok(k, req))
		return http_reply_error(req, COFFER_ERR_UNAUTH, "bad signature");
	pthread_mutex_lock(&k->mu);
	k->route_tokens++;
	pthread_mutex_unlock(&k->mu);
	buf_init(&token, JWS_TOKEN_MAX);
	mint_for(k->boot_sk, http_request_param(req, "id"), 0, &token);
	json_t *a = json_pack("{s:s,s:I}", "token", token.ptr, "exp", (json_int_t)time(NULL) + 600);
	enum coffer_err rc = fake_reply(k, req, a);
	buf_release(&token);
	return rc;
}

static enum coffer_err h_open(struct http_request *req, void *ctx)
{
	struct fake *k = ctx;
	struct boottoken_claims c;
	unsigned char pk[JWS_PK_LEN];
	json_t *body = NULL;
	const char *token;
	size_t n;
	struct buf sealed, b64;
	char hash[DELIVERY_SPEC_HASH_SIZE];
	if (!signed_ok(k, req))
		return http_reply_error(req, COFFER_ERR_UNAUTH, "bad signature");
	pthread_mutex_lock(&k->mu);
	k->opens++;
	int refuse = k->refuse_open;
	pthread_mutex_unlock(&k->mu);
	if (refuse)
		return http_reply_error(req, COFFER_ERR_CONFLICT, "machine destroyed");
	if (http_request_json(req, &body) || json_get_string(body, "token", 1, &token, &n, NULL) ||
	    jws_public_key(k->boot_sk, pk) || boottoken_verify(pk, token, n, (int64_t)time(NULL), &c)) {
		json_decref(body);
		pthread_mutex_lock(&k->mu);
		k->opens_refused++;
		pthread_mutex_unlock(&k->mu);
		return http_reply_error(req, COFFER_ERR_UNAUTH, "bad token");
	}
	json_decref(body);
	/* read-once, as the keeper: a jti opens once */
	pthread_mutex_lock(&k->mu);
	int reused = 0;
	for (int i = 0; i < k->n_seen; i++)
		reused |= strcmp(k->seen_jti[i], c.jti) == 0;
	if (reused)
		k->opens_reused++;
	else if (k->n_seen < 256)
		snprintf(k->seen_jti[k->n_seen++], sizeof(k->seen_jti[0]), "%s", c.jti);
	pthread_mutex_unlock(&k->mu);
	if (reused)
		return http_reply_error(req, COFFER_ERR_UNAUTH, "boot token already used");
	buf_init(&sealed, DELIVERY_SEALED_MAX);
	buf_init(&b64, AGENT_OPEN_ANSWER_MAX);
	pthread_mutex_lock(&k->mu);
	keeper_hash_locked(k, c.machine, hash);
	pthread_mutex_unlock(&k->mu);
	seal_for(k->f, c.machine, c.jti, hash, &sealed);
	if (b64url_encode(sealed.ptr, sealed.len, &b64))
		return COFFER_ERR_INTERNAL;
	json_t *a = json_pack("{s:s}", "sealed", b64.ptr);
	enum coffer_err rc = http_reply_json(req, 200, a);
	json_decref(a);
	buf_release(&b64);
	buf_release(&sealed);
	return rc;
}

static int64_t unix_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum coffer_err h_events(struct http_request *req, void *ctx)
{
	struct fake *k = ctx;
	json_t *body = NULL;
	const char *state = NULL, *tail = NULL;
	struct event e;
	if (!signed_ok(k, req))
		return http_reply_error(req, COFFER_ERR_UNAUTH, "bad signature");
	pthread_mutex_lock(&k->mu);
	int delay = k->events_delay_ms, fail = k->events_fail > 0;
	if (fail)
		k->events_fail--;
	pthread_mutex_unlock(&k->mu);
	if (delay)
		sleep_ms(delay);
	if (fail)
		return http_reply_error(req, COFFER_ERR_UNAVAILABLE, "the store is busy");
	memset(&e, 0, sizeof(e));
	e.exit_status = e.exit_signal = e.pid = e.started_at = -1;
	if (http_request_json(req, &body) || json_get_string(body, "state", 1, &state, NULL, NULL) ||
	    json_get_int(body, "release", 1, 0, INT64_MAX, &e.release, NULL) ||
	    json_get_int(body, "pid", 0, 0, INT64_MAX, &e.pid, NULL) ||
	    json_get_int(body, "started_at", 0, 0, INT64_MAX, &e.started_at, NULL) ||
	    json_get_int(body, "exit_status", 0, 0, 255, &e.exit_status, NULL) ||
	    json_get_int(body, "exit_signal", 0, 0, 64, &e.exit_signal, NULL) ||
	    json_get_string(body, "tail", 0, &tail, NULL, NULL)) {
		json_decref(body);
		return http_reply_error(req, COFFER_ERR_INVALID, "bad event");
	}
	snprintf(e.machine, sizeof(e.machine), "%s", http_request_param(req, "id"));
	snprintf(e.state, sizeof(e.state), "%s", state);
	if (tail) {
		e.has_tail = 1;
		snprintf(e.tail, sizeof(e.tail), "%s", tail);
	}
	json_decref(body);
	e.answered_at = unix_now_ms();
	pthread_mutex_lock(&k->mu);
	if (k->n_events < EVENTS_MAX)
		k->events[k->n_events++] = e;
	pthread_mutex_unlock(&k->mu);
	json_t *a = json_object();
	enum coffer_err rc = http_reply_json(req, 200, a);
	json_decref(a);
	return rc;
}

static const struct http_route fake_routes[] = {
	{ "GET", "/v1/agent/assignments", 0, 0, h_assignments, NULL },
	{ "POST", "/v1/agent/machines/:id/boot-token", 0, 1024, h_boot_token, NULL },
	{ "POST", "/v1/agent/machines/:id/events", 0, 1 << 16, h_events, NULL },
	{ "POST", "/v1/open", 0, 1 << 14, h_open, NULL },
};

static void set_machines(struct fake *k, json_t *machines)
{
	pthread_mutex_lock(&k->mu);
	json_decref(k->machines);
	k->machines = machines;
	k->gen++;
	pthread_mutex_unlock(&k->mu);
}

/* Waits for the first event at index >= *from of machine in state (and release, if > 0); its index. */
static int wait_event(struct fake *k, int from, const char *machine, const char *state, int64_t release,
		      struct event *out)
{
	int64_t until = now_ms() + WAIT_MS;
	while (now_ms() < until) {
		pthread_mutex_lock(&k->mu);
		for (int i = from; i < k->n_events; i++) {
			struct event *e = &k->events[i];
			if (strcmp(e->machine, machine) == 0 && strcmp(e->state, state) == 0 &&
			    (release <= 0 || e->release == release)) {
				*out = *e;
				pthread_mutex_unlock(&k->mu);
				return i;
			}
		}
		pthread_mutex_unlock(&k->mu);
		sleep_ms(POLL_MS);
	}
	fail_msg("no '%s' event for %s release %lld", state, machine, (long long)release);
	return -1;
}

static int pid_alive(pid_t pid)
{
	return kill(pid, 0) == 0;
}

static int get_count(struct fake *k, const int *counter)
{
	pthread_mutex_lock(&k->mu);
	int n = *counter;
	pthread_mutex_unlock(&k->mu);
	return n;
}

static void set_int(struct fake *k, int *field, int value)
{
	pthread_mutex_lock(&k->mu);
	*field = value;
	pthread_mutex_unlock(&k->mu);
}

static void set_tokens(struct fake *k, enum fake_tokens t)
{
	pthread_mutex_lock(&k->mu);
	k->tokens = t;
	pthread_mutex_unlock(&k->mu);
}

/* The fake api and keeper on one local server, and a runner against it. */
static void fake_start(struct fixture *f, struct fake *k, struct http_server **srv, struct agent_runner **r)
{
	struct http_server_config cfg = { .listen = "127.0.0.1:0", .drain_ms = 3000 };
	unsigned char pk[JWS_PK_LEN];
	static char url[64];

	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->mu, NULL);
	k->f = f;
	k->machines = json_array();
	assert_int_equal(jws_generate_key(&k->boot_sk, f->id.answer_pk), COFFER_OK);
	f->id.has_answer_pk = 1; /* as the keeper tells it */
	assert_int_equal(jws_generate_key(&k->foreign_sk, pk), COFFER_OK);
	assert_int_equal(hostauth_replay_new(0, &k->replay), COFFER_OK);
	assert_int_equal(http_server_start(&cfg, fake_routes, sizeof(fake_routes) / sizeof(fake_routes[0]), k, srv),
			 COFFER_OK);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)http_server_port(*srv));
	const char *exe = getenv("COFFER_EXE"); /* the masker's program: the coffer binary of this build */
	assert_non_null(exe);
	struct agent_run_config rc = { &f->id, url, url, f->state, 0, exe };
	assert_int_equal(agent_runner_start(&rc, r), COFFER_OK);
}

static void fake_stop(struct fake *k, struct http_server *srv)
{
	http_server_stop(srv);
	json_decref(k->machines);
	free(k->signed_config);
	secret_free(k->boot_sk);
	secret_free(k->foreign_sk);
	hostauth_replay_free(k->replay);
	pthread_mutex_destroy(&k->mu);
}

static void test_runner(void **state)
{
	struct fixture *f = *state;
	struct fake k;
	struct http_server *srv = NULL;
	struct agent_runner *r = NULL;
	char path[2 * PATH_SIZE];
	struct buf env;
	struct event e, e2;
	struct stat st;
	int at;

	buf_init(&env, ENVIRON_MAX);
	fake_start(f, &k, &srv, &r);

	/* 1. assigned: boots with its secrets */
	set_machines(&k, json_pack("[o]", assignment(MACHINE_ID, 1, "spec1",
						      "echo \"db is $DB_URL\"; echo plain line; exec sleep 30")));
	at = wait_event(&k, 0, MACHINE_ID, "starting", 1, &e);
	at = wait_event(&k, at, MACHINE_ID, "started", 1, &e);
	assert_true(e.pid > 0);
	assert_true(e.started_at > 0);
	read_environ((pid_t)e.pid, &env);
	assert_true(has_line(&env, "DB_URL=" SECRET_VALUE));
	assert_true(has_line(&env, "COFFER_RELEASE_VERSION=1"));
	/* with the assignment's token: the boot-token route is not asked */
	assert_int_equal(get_count(&k, &k.route_tokens), 0);
	assert_int_equal(get_count(&k, &k.opens), 1);

	/* 2. same spec, new release: adopted, no restart */
	set_machines(&k, json_pack("[o]", assignment(MACHINE_ID, 2, "spec1",
						      "echo \"db is $DB_URL\"; echo plain line; exec sleep 30")));
	at = wait_event(&k, at, MACHINE_ID, "started", 2, &e2);
	assert_int_equal(e2.pid, e.pid);
	assert_int_equal(e2.started_at, e.started_at);
	assert_true(pid_alive((pid_t)e.pid));

	/* 2b. answers signed with another key: refused, nothing changes on the host */
	pthread_mutex_lock(&k.mu);
	k.forge_answers = 1;
	int events_before = k.n_events;
	pthread_mutex_unlock(&k.mu);
	set_machines(&k, json_pack("[o]", assignment(MACHINE_ID, 9, "spec9", "exec sleep 30")));
	sleep_ms(1500);
	assert_int_equal(get_count(&k, &k.n_events), events_before);
	assert_true(pid_alive((pid_t)e.pid));
	pthread_mutex_lock(&k.mu);
	k.forge_answers = 0;
	pthread_mutex_unlock(&k.mu);
	set_machines(&k, json_pack("[o]", assignment(MACHINE_ID, 2, "spec1",
						      "echo \"db is $DB_URL\"; echo plain line; exec sleep 30")));
	sleep_ms(500);

	/* 3. it exits: stopped with the masked tail, then restarted with backoff */
	int opens_before = k.opens;
	sleep_ms(200); /* let the shell write its lines */
	int64_t killed_at = unix_now_ms();
	assert_int_equal(kill((pid_t)e.pid, SIGKILL), 0);
	at = wait_event(&k, at, MACHINE_ID, "stopped", 2, &e2);
	assert_int_equal(e2.exit_signal, SIGKILL);
	assert_true(e2.has_tail);
	assert_non_null(strstr(e2.tail, "db is ***"));
	assert_non_null(strstr(e2.tail, "plain line"));
	assert_null(strstr(e2.tail, SECRET_VALUE));
	at = wait_event(&k, at, MACHINE_ID, "started", 2, &e2);
	/* the tail was masked as written: only the restart opened */
	assert_int_equal(get_count(&k, &k.opens), opens_before + 1);
	/* the backoff, by the agent's own start time (not when this thread saw the events: a loaded machine delays that) */
	assert_true(e2.started_at - killed_at >= MACHINE_BACKOFF_FIRST_MS);
	assert_int_not_equal(e2.pid, e.pid);
	e = e2;

	/* 4. a new spec: stopping, then the new one boots */
	set_machines(&k, json_pack("[o]", assignment(MACHINE_ID, 3, "spec2", "exec sleep 30")));
	at = wait_event(&k, at, MACHINE_ID, "stopping", 2, &e2);
	at = wait_event(&k, at, MACHINE_ID, "started", 3, &e2);
	assert_int_not_equal(e2.pid, e.pid);
	assert_false(pid_alive((pid_t)e.pid));
	e = e2;

	/* 5. a second machine that cannot start: failed, with the reason */
	json_t *bad = assignment_of(MACHINE2_ID, 3, "s",
				    json_pack("{s:[s],s:{},s:I}", "cmd", "no-such-command-coffer", "env", "grace_ms",
					      (json_int_t)1000));
	set_machines(&k, json_pack("[o,o]", assignment(MACHINE_ID, 3, "spec2", "exec sleep 30"), bad));
	wait_event(&k, at, MACHINE2_ID, "failed", 3, &e2);
	assert_true(e2.has_tail);
	assert_non_null(strstr(e2.tail, "no-such-command-coffer"));

	/* 6. unassigned: stopped, forgotten, work dir removed, logs kept */
	set_machines(&k, json_pack("[o]", assignment(MACHINE2_ID, 4, "s2", "exec sleep 30")));
	at = wait_event(&k, at, MACHINE_ID, "stopped", 3, &e2);
	assert_int_equal(e2.exit_signal, SIGTERM);
	assert_false(pid_alive((pid_t)e.pid));
	snprintf(path, sizeof(path), "%s/machines/%s/work", f->state, MACHINE_ID);
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/machines/%s/logs/out.log", f->state, MACHINE_ID);
	assert_int_equal(stat(path, &st), 0);

	/* 7. an exit while the keeper refuses opens: its tail still comes (the log is masked, nothing is opened) */
	at = wait_event(&k, 0, MACHINE2_ID, "started", 4, &e);
	pthread_mutex_lock(&k.mu);
	k.refuse_open = 1;
	pthread_mutex_unlock(&k.mu);
	assert_int_equal(kill((pid_t)e.pid, SIGKILL), 0);
	at = wait_event(&k, at, MACHINE2_ID, "stopped", 4, &e2);
	assert_true(e2.has_tail);
	pthread_mutex_lock(&k.mu);
	k.refuse_open = 0;
	pthread_mutex_unlock(&k.mu);
	wait_event(&k, at, MACHINE2_ID, "started", 4, &e);

	/* 8. the runner stops: every machine is stopped */
	agent_runner_stop(r);
	assert_false(pid_alive((pid_t)e.pid));
	assert_int_equal(k.bad_signatures, 0);
	/* no token was opened twice */
	assert_int_equal(k.opens_reused, 0);

	fake_stop(&k, srv);
	buf_release(&env);
}

/*
 * An api that changed a machine's config after it was signed (another
 * command, here one that would leave a mark): the keeper seals for the
 * signed config, the agent's open fails, the machine is reported failed
 * with the reason and its command never runs. Given the signed config
 * back, it boots.
 */
static void test_runner_config_changed(void **state)
{
	struct fixture *f = *state;
	struct fake k;
	struct http_server *srv = NULL;
	struct agent_runner *r = NULL;
	char marker[2 * PATH_SIZE], script[3 * PATH_SIZE];
	struct event e, e2;
	struct stat st;

	fake_start(f, &k, &srv, &r);
	json_t *honest = assignment(MACHINE_ID, 1, "spec1", "exec sleep 30");
	pthread_mutex_lock(&k.mu);
	k.signed_config = strdup(json_string_value(json_object_get(honest, "config")));
	assert_non_null(k.signed_config);
	pthread_mutex_unlock(&k.mu);

	snprintf(marker, sizeof(marker), "%s/swapped-command-ran", f->state);
	snprintf(script, sizeof(script), "touch '%s'; exec sleep 30", marker);
	set_machines(&k, json_pack("[o]", assignment(MACHINE_ID, 1, "spec1", script)));
	int at = wait_event(&k, 0, MACHINE_ID, "failed", 1, &e);
	assert_true(e.has_tail);
	assert_non_null(strstr(e.tail, "not sealed for this machine's config"));
	assert_null(strstr(e.tail, SECRET_VALUE));
	assert_true(get_count(&k, &k.opens) >= 1);
	pthread_mutex_lock(&k.mu);
	for (int i = 0; i < k.n_events; i++)
		assert_string_not_equal(k.events[i].state, "started");
	pthread_mutex_unlock(&k.mu);
	assert_int_equal(stat(marker, &st), -1);

	/* the signed config: it boots */
	set_machines(&k, json_pack("[o]", honest));
	at = wait_event(&k, at, MACHINE_ID, "started", 1, &e);
	assert_true(pid_alive((pid_t)e.pid));
	assert_int_equal(stat(marker, &st), -1);

	/* a new release whose config the api changed: refused, and the running process is not stopped for it */
	set_machines(&k, json_pack("[o]", assignment(MACHINE_ID, 2, "spec2", script)));
	at = wait_event(&k, at, MACHINE_ID, "failed", 2, &e2);
	assert_non_null(strstr(e2.tail, "not sealed for this machine's config"));
	assert_true(pid_alive((pid_t)e.pid));
	assert_int_equal(stat(marker, &st), -1);
	pthread_mutex_lock(&k.mu);
	for (int i = at; i < k.n_events; i++)
		assert_string_not_equal(k.events[i].state, "stopping");
	pthread_mutex_unlock(&k.mu);

	agent_runner_stop(r);
	fake_stop(&k, srv);
}

/* The boot-token route as the fallback, tokens refreshed without a new generation, and events off the boot path. */
static void test_runner_tokens_events(void **state)
{
	struct fixture *f = *state;
	struct fake k;
	struct http_server *srv = NULL;
	struct agent_runner *r = NULL;
	struct event e, e2;
	int at, routes, opens, refused;

	fake_start(f, &k, &srv, &r);

	/* 1. no token in the assignment: the route's */
	set_tokens(&k, TOKENS_NONE);
	set_machines(&k, json_pack("[o]", assignment(MACHINE_ID, 1, "spec1", "exec sleep 30")));
	at = wait_event(&k, 0, MACHINE_ID, "started", 1, &e);
	assert_int_equal(get_count(&k, &k.route_tokens), 1);
	assert_int_equal(get_count(&k, &k.opens_refused), 0);

	/* 2. a token about to expire: the route's */
	set_tokens(&k, TOKENS_SOON);
	set_machines(&k, json_pack("[o]", assignment(MACHINE_ID, 2, "spec2", "exec sleep 30")));
	at = wait_event(&k, at, MACHINE_ID, "started", 2, &e);
	assert_int_equal(get_count(&k, &k.route_tokens), 2);
	assert_int_equal(get_count(&k, &k.opens_refused), 0);

	/* 3. the same generation again after the poll's wait: its fresh token is used (restart) */
	set_tokens(&k, TOKENS_GOOD);
	sleep_ms(2 * FAKE_POLL_WAIT_MS);
	routes = get_count(&k, &k.route_tokens);
	opens = get_count(&k, &k.opens);
	assert_int_equal(kill((pid_t)e.pid, SIGKILL), 0);
	at = wait_event(&k, at, MACHINE_ID, "stopped", 2, &e2);
	at = wait_event(&k, at, MACHINE_ID, "started", 2, &e);
	assert_int_equal(get_count(&k, &k.route_tokens), routes);
	assert_int_equal(get_count(&k, &k.opens), opens + 1); /* the boot: the tail needs no open */
	assert_int_equal(get_count(&k, &k.opens_reused), 0);

	/* 4. a token the keeper refuses (401): one more from the route, and the boot goes on */
	set_tokens(&k, TOKENS_FOREIGN);
	refused = get_count(&k, &k.opens_refused);
	set_machines(&k, json_pack("[o]", assignment(MACHINE_ID, 3, "spec3", "exec sleep 30")));
	at = wait_event(&k, at, MACHINE_ID, "started", 3, &e);
	assert_int_equal(get_count(&k, &k.route_tokens), routes + 1);
	assert_int_equal(get_count(&k, &k.opens_refused), refused + 1);
	set_tokens(&k, TOKENS_GOOD);

	/* 5. a slow events route: the machine is running before its `starting` is answered */
	set_int(&k, &k.events_delay_ms, 1500);
	set_machines(&k, json_pack("[o]", assignment(MACHINE_ID, 4, "spec4", "exec sleep 30")));
	int starting = wait_event(&k, at, MACHINE_ID, "starting", 4, &e2);
	at = wait_event(&k, starting, MACHINE_ID, "started", 4, &e);
	assert_true(e.started_at < e2.answered_at);
	set_int(&k, &k.events_delay_ms, 0);

	/* 6. the events route fails for a while: every event comes, each machine's in order */
	int before = get_count(&k, &k.n_events);
	set_int(&k, &k.events_fail, 3);
	set_machines(&k, json_pack("[o]", assignment(MACHINE_ID, 5, "spec5", "exec sleep 30")));
	int stopping = wait_event(&k, before, MACHINE_ID, "stopping", 4, &e2);
	starting = wait_event(&k, before, MACHINE_ID, "starting", 5, &e2);
	at = wait_event(&k, before, MACHINE_ID, "started", 5, &e);
	assert_true(stopping < starting);
	assert_true(starting < at);
	assert_int_equal(get_count(&k, &k.events_fail), 0);
	assert_int_equal(get_count(&k, &k.n_events), before + 3);

	/* 7. the runner stops: the machine's stopped is posted before stop returns */
	agent_runner_stop(r);
	assert_false(pid_alive((pid_t)e.pid));
	wait_event(&k, at, MACHINE_ID, "stopped", 5, &e2);
	assert_int_equal(e2.exit_signal, SIGTERM);
	assert_int_equal(k.bad_signatures, 0);
	fake_stop(&k, srv);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	log_set_level(LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_jti),
		cmocka_unit_test_setup_teardown(test_boot_sealed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runner_tokens_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runner_config_changed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
