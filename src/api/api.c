/*
 * api.c — `coffer api`: runs the API server until SIGINT/SIGTERM, or
 * (`api bootstrap`) creates an org and its first admin token.
 *
 * The server's keys, all written by `keeper init` (0600, refused if others
 * may read them): the digest key (the service's one, so that every api
 * shows a value's digest alike), the row MAC key (the store's rows are
 * authenticated under it, docs/STORE.md "Row authentication"), the boot
 * key, the keeper's public key and the credential the api shows the
 * keeper. Nothing here can open a sealed value.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "opts.h"
#include "release.h"
#include "digest.h"
#include "encode.h"
#include "fs.h"
#include "http_client.h"
#include "log.h"
#include "parse.h"
#include "banned.h"

#define PUB_FILE_MAX 256
#define CREDENTIAL_LEN 32 /* bytes the credential's hex stands for */
#define API_KEY_LEN 32
#define WHY_MAX 512
#define BOOTSTRAP_ACTOR "bootstrap"
#define BOOTSTRAP_DESCRIPTION "bootstrap admin"

/* ---- keys ---- */

static void set_why(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;
	if (!why || !size)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(why, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		why[0] = '\0';
}

/* What a key file error means to an operator. */
static const char *read_problem(enum coffer_err rc)
{
	switch (rc) {
	case COFFER_ERR_FORBIDDEN: return "group or others may read or write it (chmod 600)";
	case COFFER_ERR_NOT_FOUND: return "not found";
	case COFFER_ERR_TOO_LARGE: return "too large";
	case COFFER_ERR_INVALID: return "malformed";
	default: return coffer_strerror(rc);
	}
}

static void set_why_file(char *why, size_t size, const char *what, const char *path, enum coffer_err rc)
{
	if (why && size && fmt_into(why, size, "%s '%s': %s", what, path, read_problem(rc)))
		why[0] = '\0';
}

/* Length without a final newline (and CR). */
static size_t trimmed(const unsigned char *s, size_t len)
{
	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	return len;
}

static enum coffer_err load_keeper_pub(const char *path, unsigned char pk[JWS_PK_LEN], char *why, size_t why_size)
{
	struct buf b;
	buf_init(&b, PUB_FILE_MAX);
	enum coffer_err rc = fs_read_file(path, &b);
	if (rc == COFFER_OK) {
		size_t n = trimmed((const unsigned char *)b.ptr, b.len);
		rc = n == HEX_LEN(JWS_PK_LEN) ? hex_decode(b.ptr, n, pk, JWS_PK_LEN) : COFFER_ERR_INVALID;
	}
	buf_release(&b);
	if (rc)
		set_why_file(why, why_size, "keeper public key", path, rc == COFFER_ERR_IO ? COFFER_ERR_NOT_FOUND : rc);
	return rc;
}

/* The credential the api shows the keeper: the hex as written (fs_read_hex_text), 0600. */
static enum coffer_err load_credential(const char *path, struct secret **out, char *why, size_t why_size)
{
	enum coffer_err rc = fs_read_hex_text(path, CREDENTIAL_LEN, out);
	if (rc)
		set_why_file(why, why_size, "keeper credential", path, rc);
	return rc;
}

/*
 * A 32-byte key the keeper wrote for the api (api.boot.key, api.rows.key,
 * api.digest.key): one line of hex, 0600 (fs_read_hex_key).
 */
static enum coffer_err load_hex_key(const char *path, const char *what, struct secret **out, char *why,
				    size_t why_size)
{
	enum coffer_err rc = fs_read_hex_key(path, API_KEY_LEN, out);
	if (rc)
		set_why_file(why, why_size, what, path, rc);
	return rc;
}

/* The boot-token signing key: api.boot.key holds its Ed25519 seed (wiped once the key pair is made). */
static enum coffer_err load_boot_key(const char *path, struct secret **out, char *why, size_t why_size)
{
	struct secret *seed = NULL;
	unsigned char pk[JWS_PK_LEN];
	enum coffer_err rc = load_hex_key(path, "boot key", &seed, why, why_size);
	if (rc)
		return rc;
	rc = jws_key_from_seed(seed, out, pk);
	secret_free(seed);
	if (rc)
		set_why_file(why, why_size, "boot key", path, rc == COFFER_ERR_NOMEM ? rc : COFFER_ERR_INVALID);
	return rc;
}

/* Gives every connection of the pool the row key of every table the api relies on. */
static enum coffer_err give_row_keys(struct store_pool *pool, const struct secret *rows_key)
{
	enum coffer_err rc = COFFER_OK;
	for (int t = 0; t < STORE_TABLE__COUNT && !rc; t++)
		rc = store_pool_auth_key(pool, (enum store_table)t, secret_cbytes(rows_key));
	return rc;
}

/* ---- readiness (metrics_server.h) ---- */

static struct metric *const api_metrics[] = { &metric_http_requests, &metric_http_duration, &metric_store_duration,
					      &metric_releases, &metric_release_lease_held };

/* The keeper's /v1/health answers 200 within API_READY_TIMEOUT_MS. */
static enum coffer_err keeper_health(const struct api *a)
{
	struct http_client *c = NULL;
	struct buf answer;
	int status = 0;
	buf_init(&answer, API_KEEPER_RESPONSE_MAX);
	enum coffer_err rc = http_client_new(a->keeper_url, API_READY_TIMEOUT_MS, &c);
	if (!rc)
		rc = http_client_request(c, "GET", "/v1/health", NULL, 0, 0, &status, &answer);
	if (!rc && status != 200)
		rc = COFFER_ERR_UNAVAILABLE;
	http_client_free(c);
	buf_release(&answer);
	return rc;
}

/* Ready: the store answers through the pool and the keeper is healthy; the lease is reported, not required. */
static int api_ready(void *ctx, struct buf *report)
{
	const struct api *a = ctx;
	enum coffer_err store_rc = store_pool_ping(a->pool), keeper_rc = keeper_health(a);
	int held = metrics_value(&metric_release_lease_held, NULL) > 0;
	enum coffer_err rc = buf_addf(report, "store: %s%s%s\nkeeper: %s%s%s\nrelease_lease: %s\n",
				      store_rc ? "unreachable (" : "ok", store_rc ? coffer_err_name(store_rc) : "",
				      store_rc ? ")" : "", keeper_rc ? "unreachable (" : "ok",
				      keeper_rc ? coffer_err_name(keeper_rc) : "", keeper_rc ? ")" : "",
				      held ? "held" : "not held");
	return !rc && !store_rc && !keeper_rc;
}

/* ---- start and stop ---- */

enum coffer_err api_start(const struct api_config *cfg, struct api **out, char *why, size_t why_size)
{
	struct api *a;
	size_t n_routes;
	const struct http_route *routes = api_routes(&n_routes);
	unsigned conns = cfg->store_conns ? cfg->store_conns : API_STORE_CONNS_DEFAULT;
	struct secret *rows_key = NULL;
	enum coffer_err rc;

	if (why && why_size)
		why[0] = '\0';
	if (!cfg->state_dir || !cfg->store_url || !cfg->listen || !cfg->keeper_url || !cfg->keeper_pub_file ||
	    !cfg->keeper_credential_file || !cfg->rows_key_file || !cfg->digest_key_file)
		return COFFER_ERR_INVALID;
	a = calloc(1, sizeof(*a));
	if (!a)
		return COFFER_ERR_NOMEM;
	rc = str_copy(a->keeper_url, sizeof(a->keeper_url), cfg->keeper_url);
	if (rc) {
		set_why(why, why_size, "keeper URL too long");
		goto out;
	}
	rc = load_hex_key(cfg->digest_key_file, "digest key", &a->digest_key, why, why_size);
	if (!rc)
		rc = load_hex_key(cfg->rows_key_file, "rows key", &rows_key, why, why_size);
	if (!rc)
		rc = load_keeper_pub(cfg->keeper_pub_file, a->keeper_pk, why, why_size);
	if (!rc)
		rc = load_credential(cfg->keeper_credential_file, &a->keeper_credential, why, why_size);
	if (!rc && cfg->boot_key_file)
		rc = load_boot_key(cfg->boot_key_file, &a->boot_sk, why, why_size);
	if (rc)
		goto out;
	if (!a->boot_sk)
		log_warn("api_no_boot_key", LF_S("effect", "agents get no boot tokens (--boot-key)"));
	rc = store_pool_open(cfg->store_url, conns, &a->pool);
	if (rc) {
		set_why(why, why_size, "cannot open the store: %s", coffer_strerror(rc)); /* the URL may hold a password */
		goto out;
	}
	rc = give_row_keys(a->pool, rows_key);
	if (rc) {
		set_why(why, why_size, "cannot give the store its row keys");
		goto out;
	}
	rc = api_plaintext_load(a->pool, a->keeper_pk, cfg->deployer_key_files, cfg->n_deployer_keys, &a->plaintext, why,
				why_size);
	if (rc && why && why_size && !why[0])
		set_why(why, why_size, "cannot load the deployer keys (--deployer-key)");
	if (rc)
		goto out;
	rc = hostauth_replay_new(0, &a->replay);
	if (rc) {
		set_why(why, why_size, "cannot make the replay cache");
		goto out;
	}
	/* Before the server: its handlers wake the controller. */
	rc = release_ctl_start(a, &a->ctl);
	if (rc) {
		set_why(why, why_size, "cannot start the release controller");
		goto out;
	}
	api_hosts_sweep(a);
	rc = anchor_poker_start(ANCHOR_POKE_DELAY_MS, keeper_client_anchor_quietly, a, &a->anchor_poker);
	if (rc) {
		set_why(why, why_size, "cannot start the audit anchor's poker");
		goto out;
	}
	a->phases = (struct http_phases){ .ops = &api_phase_ops, .ctx = a, .replay = a->replay };
	struct http_server_config hcfg = {
		.listen = cfg->listen, .gate = http_phase_gate, .done = http_phase_done, .hook_ctx = &a->phases,
		.tls_cert_file = cfg->tls_cert_file, .tls_key_file = cfg->tls_key_file, .metrics_role = "api",
		.prefix_headers = &api_ui_headers
	};
	rc = http_server_start(&hcfg, routes, n_routes, a, &a->server);
	if (rc) {
		set_why(why, why_size, "cannot listen on '%s'", cfg->listen);
		goto out;
	}
	if (cfg->metrics_listen) {
		rc = metrics_server_start(cfg->metrics_listen, api_metrics, sizeof(api_metrics) / sizeof(api_metrics[0]),
					  api_ready, a, &a->metrics);
		if (rc) {
			set_why(why, why_size, "cannot listen on '%s' (--metrics-listen)", cfg->metrics_listen);
			goto out;
		}
	}
	if (cfg->ready_file) {
		rc = http_server_write_ready_file(a->server, cfg->listen, cfg->ready_file);
		if (rc) {
			set_why(why, why_size, "cannot write the ready file '%s'", cfg->ready_file);
			goto out;
		}
	}
	log_info("api_started", LF_S("listen", cfg->listen), LF_I("port", http_server_port(a->server)),
		 LF_I("store_conns", conns));
	*out = a;
	a = NULL;
out:
	secret_free(rows_key); /* the connections hold their copies */
	api_stop(a);
	return rc;
}

uint16_t api_port(const struct api *a)
{
	return http_server_port(a->server);
}

void api_stop(struct api *a)
{
	if (!a)
		return;
	metrics_server_stop(a->metrics); /* its readiness check borrows the pool */
	/* Long polls answer now, so the server drains quickly. */
	release_ctl_shutdown(a->ctl);
	/* The server drains first: every store connection is back in the pool. */
	http_server_stop(a->server);
	anchor_poker_stop(a->anchor_poker); /* a last anchoring of the server's appends */
	/* The controller's thread gives its connection back before the pool closes. */
	release_ctl_stop(a->ctl);
	store_pool_close(a->pool);
	hostauth_replay_free(a->replay);
	secret_free(a->digest_key);
	secret_free(a->keeper_credential);
	secret_free(a->boot_sk);
	api_plaintext_free(a->plaintext);
	sodium_memzero(a, sizeof(*a));
	free(a);
}

/* ---- the command ---- */

struct opts {
	const char *state_dir;
	const char *store_url;
	const char *listen;
	const char *keeper_url;
	const char *keeper_pub;
	const char *keeper_credential;
	const char *ready_file;
	const char *log_level;
	const char *store_conns;
	const char *org;
	const char *boot_key;
	const char *tls_cert, *tls_key, *ca;
	const char *rows_key;
	const char *digest_key;
	const char *metrics_listen;
	struct opts_values deployer_keys;
	int json;
};

static int parse_opts(int argc, char **argv, int first, struct opts *o)
{
	const struct opts_spec specs[] = {
		{ "state-dir", 0, OPTS_VALUE, &o->state_dir },	   { "store", 0, OPTS_VALUE, &o->store_url },
		{ "listen", 0, OPTS_VALUE, &o->listen },	   { "keeper", 0, OPTS_VALUE, &o->keeper_url },
		{ "keeper-pub", 0, OPTS_VALUE, &o->keeper_pub },   { "keeper-credential", 0, OPTS_VALUE, &o->keeper_credential },
		{ "ready-file", 0, OPTS_VALUE, &o->ready_file },   { "log-level", 0, OPTS_VALUE, &o->log_level },
		{ "store-conns", 0, OPTS_VALUE, &o->store_conns }, { "org", 0, OPTS_VALUE, &o->org },
		{ "json", 0, OPTS_FLAG, &o->json },		   { "boot-key", 0, OPTS_VALUE, &o->boot_key },
		{ "tls-cert", 0, OPTS_VALUE, &o->tls_cert },	   { "tls-key", 0, OPTS_VALUE, &o->tls_key },
		{ "ca", 0, OPTS_VALUE, &o->ca },		   { "rows-key", 0, OPTS_VALUE, &o->rows_key },
		{ "digest-key", 0, OPTS_VALUE, &o->digest_key }, { "metrics-listen", 0, OPTS_VALUE, &o->metrics_listen },
		{ "deployer-key", 0, OPTS_LIST, &o->deployer_keys }, { NULL, 0, OPTS_FLAG, NULL }
	};
	return opts_parse_role("api", specs, argc, argv, first);
}

/* ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$: safe to print and to put in JSON as is. */
static int org_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > API_ORG_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || !(c == '_' || c == '.' || c == '-')))
			return 0;
	}
	return 1;
}

static int run_bootstrap(int argc, char **argv)
{
	struct opts o = { 0 };
	struct store *s = NULL;
	struct store_org org;
	struct store_token t = { 0 };
	struct secret *token = NULL, *rows_key = NULL;
	char id[API_TOKEN_ID_SIZE], head[API_MESSAGE_MAX], detail[API_MESSAGE_MAX];
	enum coffer_err rc;
	int ex = parse_opts(argc, argv, 2, &o);

	log_set_role("api");
	if (ex)
		return ex;
	if (!o.store_url || !o.org || !o.rows_key || o.state_dir || o.listen || o.keeper_url || o.keeper_pub ||
	    o.keeper_credential || o.ready_file || o.store_conns || o.boot_key || o.digest_key || o.tls_cert || o.tls_key ||
	    o.ca || o.metrics_listen || o.deployer_keys.n)
		return opts_usage("api");
	if (o.log_level) {
		enum log_level level;
		if (log_level_parse(o.log_level, &level))
			return opts_fail(COFFER_ERR_USAGE, "unknown log level '%s'", o.log_level);
		log_set_level(level);
	}
	if (!org_name_ok(o.org))
		return opts_fail(COFFER_ERR_INVALID, "org name must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$");
	if (fs_disable_core_dumps()) /* the token is in this process's memory for a moment */
		return opts_fail(COFFER_ERR_INTERNAL, "cannot disable core dumps");
	/* The rows key first: store access alone mints no token (docs/STORE.md "Row authentication"). */
	rc = load_hex_key(o.rows_key, "rows key", &rows_key, detail, sizeof(detail));
	if (rc)
		return opts_fail(rc, "cannot bootstrap: %s", detail);
	rc = store_open(o.store_url, &s);
	if (rc) {
		secret_free(rows_key);
		return opts_fail(rc, "cannot open the store: %s", coffer_strerror(rc));
	}
	rc = store_auth_key(s, STORE_TABLE_TOKENS, secret_cbytes(rows_key));
	if (rc == COFFER_OK)
		rc = store_token_key_check(s);
	if (rc) {
		ex = opts_fail(rc, "cannot bootstrap: the rows key is not this store's (%s)", coffer_err_name(rc));
		goto out;
	}
	rc = store_org_create(s, o.org, &org);
	if (rc == COFFER_ERR_CONFLICT) {
		ex = opts_fail(rc, "org '%s' exists already", o.org);
		goto out;
	}
	if (!rc)
		rc = str_copy(t.org_id, sizeof(t.org_id), org.id);
	if (!rc)
		rc = str_copy(t.role, sizeof(t.role), api_role_name(API_ROLE_ADMIN));
	if (!rc)
		rc = str_copy(t.description, sizeof(t.description), BOOTSTRAP_DESCRIPTION);
	if (!rc)
		rc = api_token_mint(&token, t.hash);
	if (!rc)
		rc = store_token_insert(s, &t, &t);
	if (!rc)
		rc = api_token_id(t.id, id);
	if (!rc)
		rc = fmt_into(detail, sizeof(detail), "{\"org\":\"%s\",\"token_id\":\"%s\",\"role\":\"admin\"}", o.org, id);
	if (rc) {
		ex = opts_fail(rc, "cannot bootstrap org '%s': %s", o.org, coffer_strerror(rc));
		goto out;
	}
	struct store_audit_event ev = { .org_id = org.id, .actor = BOOTSTRAP_ACTOR, .action = "orgs.bootstrap",
					.detail = detail, .outcome = "ok" };
	rc = store_audit_append(s, &ev, NULL);
	if (rc)
		log_error("audit_append_failed", LF_S("action", "orgs.bootstrap"), LF_S("error", coffer_err_name(rc)));

	/* The token goes from secure memory to stdout, never through a formatted buffer. */
	if (o.json) {
		rc = fmt_into(head, sizeof(head), "{\"org\":\"%s\",\"token_id\":\"%s\",\"token\":\"", o.org, id);
		if (rc || fs_write_all(STDOUT_FILENO, head, strlen(head)) ||
		    fs_write_all(STDOUT_FILENO, secret_cbytes(token), secret_len(token)) ||
		    fs_write_all(STDOUT_FILENO, "\"}\n", 3))
			ex = opts_fail(COFFER_ERR_IO, "cannot write the token");
	} else if (fs_write_all(STDOUT_FILENO, secret_cbytes(token), secret_len(token)) ||
		   fs_write_all(STDOUT_FILENO, "\n", 1)) {
		ex = opts_fail(COFFER_ERR_IO, "cannot write the token");
	}
out:
	secret_free(token);
	secret_free(rows_key);
	store_close(s);
	return ex;
}

static int run_serve(int argc, char **argv)
{
	struct opts o = { 0 };
	struct api *a = NULL;
	enum log_level level = LOG_INFO;
	uint64_t conns = 0;
	char why[WHY_MAX];
	sigset_t set;
	int sig = 0;
	int ex = parse_opts(argc, argv, 1, &o);

	log_set_role("api");
	if (ex)
		return ex;
	if (!o.state_dir || !o.store_url || !o.listen || !o.keeper_url || !o.keeper_pub || !o.keeper_credential ||
	    !o.rows_key || !o.digest_key || o.org || o.json)
		return opts_usage("api");
	if (o.log_level && log_level_parse(o.log_level, &level))
		return opts_fail(COFFER_ERR_USAGE, "unknown log level '%s'", o.log_level);
	if (o.store_conns && (parse_uint64(o.store_conns, STORE_POOL_MAX, &conns) || conns == 0))
		return opts_fail(COFFER_ERR_USAGE, "--store-conns must be 1 to %d", STORE_POOL_MAX);
	log_set_level(level);
	struct http_server_config tls_cfg = { .listen = o.listen, .tls_cert_file = o.tls_cert, .tls_key_file = o.tls_key };
	char tls_why[HTTP_TLS_WHY_MAX];
	enum coffer_err rc = http_server_check_tls(&tls_cfg, tls_why, sizeof(tls_why));
	if (rc)
		return opts_fail(rc, "%s", tls_why);
	rc = http_client_set_ca_file(o.ca);
	if (rc)
		return opts_fail(rc, "cannot read the CA file '%s' (--ca): %s", o.ca, coffer_strerror(rc));
	if (fs_disable_core_dumps())
		return opts_fail(COFFER_ERR_INTERNAL, "cannot disable core dumps");
	/* Blocked before the server's threads exist, so only sigwait below sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return opts_fail(COFFER_ERR_INTERNAL, "cannot block signals");

	struct api_config cfg = {
		.state_dir = o.state_dir,
		.store_url = o.store_url,
		.listen = o.listen,
		.keeper_url = o.keeper_url,
		.keeper_pub_file = o.keeper_pub,
		.keeper_credential_file = o.keeper_credential,
		.ready_file = o.ready_file,
		.store_conns = (unsigned)conns,
		.boot_key_file = o.boot_key,
		.tls_cert_file = o.tls_cert,
		.tls_key_file = o.tls_key,
		.rows_key_file = o.rows_key,
		.digest_key_file = o.digest_key,
		.metrics_listen = o.metrics_listen,
		.deployer_key_files = o.deployer_keys.v,
		.n_deployer_keys = o.deployer_keys.n,
	};
	rc = api_start(&cfg, &a, why, sizeof(why));
	if (rc)
		return opts_fail(rc, "cannot start the api: %s", why[0] ? why : coffer_strerror(rc));
	while (sigwait(&set, &sig) != 0)
		;
	log_info("api_stopping", LF_I("signal", sig));
	api_stop(a);
	log_info("api_stopped");
	return 0;
}

int cmd_api(int argc, char **argv)
{
	/* Request documents carry values: whatever jansson frees is wiped first. */
	json_use_wiping_allocator();
	if (argc >= 2 && strcmp(argv[1], "bootstrap") == 0)
		return run_bootstrap(argc, argv);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		(void)opts_usage("api");
		return 0;
	}
	return run_serve(argc, argv);
}
