/*
 * keeper.c — `coffer keeper`: `keeper init` makes the state folder and the
 * master key; `keeper join-token` prints a one-time join token for a host;
 * `keeper deployer-token` a one-time deployer token for an org (or app);
 * `keeper [serve]` runs the key custodian until SIGINT/SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "opts.h"
#include "fs.h"
#include "http_server.h"
#include "json.h"
#include "keeper.h"
#include "log.h"
#include "parse.h"
#include "banned.h"

struct opts {
	const char *state_dir;
	const char *key_file;
	const char *store_url;
	const char *listen;
	const char *ready_file;
	const char *log_level;
	const char *ttl;
	const char *tls_cert, *tls_key;
	const char *metrics_listen;
	const char *org, *app, *role; /* deployer-token */
};

/* Parses options from argv[first]; returns 0, or the usage exit code. */
static int parse_opts(int argc, char **argv, int first, struct opts *o)
{
	const struct opts_spec specs[] = {
		{ "state-dir", 0, OPTS_VALUE, &o->state_dir },	 { "key-file", 0, OPTS_VALUE, &o->key_file },
		{ "store", 0, OPTS_VALUE, &o->store_url },	 { "listen", 0, OPTS_VALUE, &o->listen },
		{ "ready-file", 0, OPTS_VALUE, &o->ready_file }, { "log-level", 0, OPTS_VALUE, &o->log_level },
		{ "ttl", 0, OPTS_VALUE, &o->ttl },		 { "tls-cert", 0, OPTS_VALUE, &o->tls_cert },
		{ "tls-key", 0, OPTS_VALUE, &o->tls_key },	 { "metrics-listen", 0, OPTS_VALUE, &o->metrics_listen },
		{ "org", 0, OPTS_VALUE, &o->org },		 { "app", 0, OPTS_VALUE, &o->app },
		{ "role", 0, OPTS_VALUE, &o->role },
		{ NULL, 0, OPTS_FLAG, NULL }
	};
	return opts_parse_role("keeper", specs, argc, argv, first);
}

static int run_init(int argc, char **argv)
{
	struct opts o = { 0 };
	struct keeper_paths p;
	int existed = 0;
	unsigned added = 0;
	int ex = parse_opts(argc, argv, 2, &o);
	if (ex)
		return ex;
	if (!o.state_dir || o.key_file || o.store_url || o.listen || o.ready_file || o.log_level || o.ttl ||
	    o.tls_cert || o.tls_key || o.org || o.app || o.role)
		return opts_usage("keeper");
	/* An existing master key is kept: init then only adds the derived files that are missing. */
	enum coffer_err rc = keeper_init(o.state_dir, &p, &existed, &added);
	switch (rc) {
	case COFFER_OK:
		break;
	case COFFER_ERR_FORBIDDEN:
		return opts_fail(rc, "key file '%s/%s' may be read or written by group or others; run 'chmod 600' on it",
				o.state_dir, KEEPER_KEY_FILE);
	case COFFER_ERR_INVALID:
		return opts_fail(rc, "key file '%s/%s' does not hold a %d-byte master key", o.state_dir,
				KEEPER_KEY_FILE, VAULT_MASTER_LEN);
	default:
		return opts_fail(rc, "cannot initialise the keeper in '%s': %s", o.state_dir, coffer_strerror(rc));
	}
	if (existed)
		printf("a master key exists already in '%s': kept it; %u missing file%s written\n", o.state_dir, added,
		       added == 1 ? "" : "s");
	printf("master key:     %s\n", p.key);
	printf("keeper key:     %s\n", p.pub);
	printf("api credential: %s\n", p.credential);
	printf("api boot key:   %s\n", p.boot_key);
	printf("api rows key:   %s\n", p.rows_key);
	printf("api digest key: %s\n", p.digest_key);
	return 0;
}

static int load_master(const struct opts *o, struct secret **master)
{
	struct keeper_paths p;
	const char *path = o->key_file;
	enum coffer_err rc = keeper_master_from_env(master);
	if (rc == COFFER_OK) {
		if (!o->key_file)
			return 0;
		secret_free(*master);
		*master = NULL;
		return opts_fail(COFFER_ERR_USAGE, "give the master key in %s or --key-file, not both",
				KEEPER_MASTER_ENV);
	}
	if (rc != COFFER_ERR_NOT_FOUND)
		return opts_fail(rc, "%s must be 64 hex characters", KEEPER_MASTER_ENV);
	if (!path) {
		if (!o->state_dir)
			return opts_usage("keeper");
		rc = keeper_paths_of(o->state_dir, &p);
		if (rc)
			return opts_fail(rc, "state folder path too long");
		path = p.key;
	}
	rc = keeper_master_from_file(path, master);
	switch (rc) {
	case COFFER_OK:
		return 0;
	case COFFER_ERR_FORBIDDEN:
		return opts_fail(rc, "key file '%s' may be read or written by group or others; run 'chmod 600 %s'",
				path, path);
	case COFFER_ERR_NOT_FOUND:
		return opts_fail(rc, "key file '%s' not found; run 'coffer keeper init --state-dir DIR' first", path);
	case COFFER_ERR_INVALID:
		return opts_fail(rc, "key file '%s' does not hold a %d-byte master key", path, VAULT_MASTER_LEN);
	default:
		return opts_fail(rc, "cannot read key file '%s': %s", path, coffer_strerror(rc));
	}
}

/* Prints a join token, alone, on stdout: from secure memory, never through a formatted buffer. */
static int run_join_token(int argc, char **argv)
{
	struct opts o = { 0 };
	struct secret *master = NULL, *token = NULL;
	struct keeper_keys keys = { 0 };
	uint64_t ttl_ms = KEEPER_JOIN_TTL_DEFAULT_MS;
	int ex = parse_opts(argc, argv, 2, &o);
	enum coffer_err rc;

	if (!ex && (o.store_url || o.listen || o.ready_file || o.log_level || o.tls_cert || o.tls_key || o.org ||
		    o.app || o.role))
		ex = opts_usage("keeper");
	if (!ex && o.ttl && (parse_duration_ms(o.ttl, KEEPER_JOIN_TTL_MAX_MS, &ttl_ms) || ttl_ms == 0))
		ex = opts_fail(COFFER_ERR_USAGE, "--ttl must be a duration from 1s to 7d, such as 30m or 1h");
	if (ex) {
		/* The master key never lingers in the environment, even on a usage error. */
		if (keeper_master_from_env(&master) == COFFER_OK)
			secret_free(master);
		return ex;
	}
	if (fs_disable_core_dumps())
		return opts_fail(COFFER_ERR_INTERNAL, "cannot disable core dumps");
	ex = load_master(&o, &master);
	if (ex)
		return ex;
	rc = keeper_keys_derive(master, &keys);
	secret_free(master);
	if (!rc)
		rc = keeper_join_token_make(&keys, ttl_ms, &token);
	if (rc) {
		ex = opts_fail(rc, "cannot make a join token: %s", coffer_strerror(rc));
		goto out;
	}
	if (fs_write_all(STDOUT_FILENO, secret_cbytes(token), secret_len(token)) || fs_write_all(STDOUT_FILENO, "\n", 1))
		ex = opts_fail(COFFER_ERR_IO, "cannot write the join token");
out:
	secret_free(token);
	keeper_keys_release(&keys);
	return ex;
}

/*
 * Prints a one-time deployer token, alone, on stdout, for the org (and
 * app) named, which it looks up in the store (the apps row verified with
 * the row key the keeper derives).
 */
static int run_deployer_token(int argc, char **argv)
{
	struct opts o = { 0 };
	struct secret *master = NULL, *token = NULL;
	struct keeper_keys keys = { 0 };
	struct store *s = NULL;
	struct store_org org;
	struct store_app app;
	uint64_t ttl_ms = KEEPER_DEPLOYER_TTL_DEFAULT_MS;
	int ex = parse_opts(argc, argv, 2, &o);
	const char *role = o.role ? o.role : DEPLOYER_ROLE_DEPLOY;
	enum coffer_err rc;

	if (!ex && (!o.store_url || !o.org || o.listen || o.ready_file || o.log_level || o.tls_cert || o.tls_key))
		ex = opts_usage("keeper");
	if (!ex && strcmp(role, DEPLOYER_ROLE_ADMIN) && strcmp(role, DEPLOYER_ROLE_DEPLOY))
		ex = opts_fail(COFFER_ERR_USAGE, "--role must be admin or deploy");
	if (!ex && o.ttl && (parse_duration_ms(o.ttl, KEEPER_DEPLOYER_TTL_MAX_MS, &ttl_ms) || ttl_ms == 0))
		ex = opts_fail(COFFER_ERR_USAGE, "--ttl must be a duration from 1s to 30d, such as 30m or 1h");
	if (ex) {
		/* The master key never lingers in the environment, even on a usage error. */
		if (keeper_master_from_env(&master) == COFFER_OK)
			secret_free(master);
		return ex;
	}
	if (fs_disable_core_dumps())
		return opts_fail(COFFER_ERR_INTERNAL, "cannot disable core dumps");
	ex = load_master(&o, &master);
	if (ex)
		return ex;
	rc = keeper_keys_derive(master, &keys);
	secret_free(master);
	if (rc) {
		ex = opts_fail(rc, "cannot derive the keeper's keys: %s", coffer_strerror(rc));
		goto out;
	}
	rc = store_open(o.store_url, &s);
	if (!rc)
		rc = store_auth_key(s, STORE_TABLE_APPS, secret_cbytes(keys.rows));
	if (rc) {
		ex = opts_fail(rc, "cannot open the store: %s", coffer_strerror(rc));
		goto out;
	}
	rc = store_org_get_by_name(s, o.org, &org);
	if (rc) {
		ex = rc == COFFER_ERR_NOT_FOUND ? opts_fail(rc, "org '%s' not found", o.org)
						: opts_fail(rc, "cannot read org '%s': %s", o.org, coffer_strerror(rc));
		goto out;
	}
	if (o.app) {
		rc = store_app_get_by_name(s, o.app, &app);
		if (!rc && strcmp(app.org_id, org.id) != 0)
			rc = COFFER_ERR_NOT_FOUND;
		if (rc) {
			ex = rc == COFFER_ERR_NOT_FOUND
				     ? opts_fail(rc, "app '%s' not found in org '%s'", o.app, o.org)
				     : opts_fail(rc, "cannot read app '%s': %s", o.app, coffer_strerror(rc));
			goto out;
		}
	}
	rc = keeper_deployer_token_make(&keys, org.id, o.app ? app.id : DEPLOYER_ALL_APPS, role, ttl_ms, &token);
	if (rc) {
		ex = opts_fail(rc, "cannot make a deployer token: %s", coffer_strerror(rc));
		goto out;
	}
	if (fs_write_all(STDOUT_FILENO, secret_cbytes(token), secret_len(token)) || fs_write_all(STDOUT_FILENO, "\n", 1))
		ex = opts_fail(COFFER_ERR_IO, "cannot write the deployer token");
out:
	store_close(s);
	secret_free(token);
	keeper_keys_release(&keys);
	return ex;
}

static int run_serve(int argc, char **argv, int first)
{
	struct opts o = { 0 };
	struct secret *master = NULL;
	struct keeper *k = NULL;
	enum log_level level = LOG_INFO;
	sigset_t set;
	int sig = 0, ex;

	log_set_role("keeper");
	/* Enrolment bodies carry join tokens: whatever jansson frees is wiped (before any thread exists). */
	json_use_wiping_allocator();
	ex = parse_opts(argc, argv, first, &o);
	if (ex) {
		/* The master key never lingers in the environment, even on a usage error. */
		if (keeper_master_from_env(&master) == COFFER_OK)
			secret_free(master);
		return ex;
	}
	if (o.log_level && log_level_parse(o.log_level, &level)) {
		ex = opts_fail(COFFER_ERR_USAGE, "unknown log level '%s'", o.log_level);
		if (keeper_master_from_env(&master) == COFFER_OK)
			secret_free(master);
		return ex;
	}
	log_set_level(level);
	if (fs_disable_core_dumps())
		return opts_fail(COFFER_ERR_INTERNAL, "cannot disable core dumps");
	ex = load_master(&o, &master);
	if (ex)
		return ex;
	if (!o.store_url || !o.listen || o.ttl || o.org || o.app || o.role) {
		secret_free(master);
		return opts_usage("keeper");
	}
	char anchor[KEEPER_PATH_MAX];
	if (!o.state_dir || fmt_into(anchor, sizeof(anchor), "%s/%s", o.state_dir, KEEPER_ANCHOR_FILE)) {
		secret_free(master);
		return opts_fail(COFFER_ERR_USAGE, "the keeper keeps its audit anchor in --state-dir DIR: give one");
	}
	char revoked[KEEPER_PATH_MAX];
	if (fmt_into(revoked, sizeof(revoked), "%s/%s", o.state_dir, KEEPER_DEPLOYERS_REVOKED_FILE)) {
		secret_free(master);
		return opts_fail(COFFER_ERR_USAGE, "state folder path too long");
	}
	char app_orgs[KEEPER_PATH_MAX];
	if (fmt_into(app_orgs, sizeof(app_orgs), "%s/%s", o.state_dir, KEEPER_APP_ORGS_FILE)) {
		secret_free(master);
		return opts_fail(COFFER_ERR_USAGE, "state folder path too long");
	}
	struct keeper_config cfg = { .store_url = o.store_url, .listen = o.listen, .ready_file = o.ready_file,
				     .tls_cert_file = o.tls_cert, .tls_key_file = o.tls_key, .anchor_file = anchor,
				     .metrics_listen = o.metrics_listen, .deployers_revoked_file = revoked,
				     .app_orgs_file = app_orgs };
	char why[HTTP_TLS_WHY_MAX];
	struct http_server_config tls_cfg = { .listen = o.listen, .tls_cert_file = o.tls_cert, .tls_key_file = o.tls_key };
	enum coffer_err rc = http_server_check_tls(&tls_cfg, why, sizeof(why));
	if (rc) {
		secret_free(master);
		return opts_fail(rc, "%s", why);
	}
	/* Blocked before the server's threads exist, so only sigwait below sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL)) {
		secret_free(master);
		return opts_fail(COFFER_ERR_INTERNAL, "cannot block signals");
	}
	rc = keeper_start(&cfg, master, &k);
	secret_free(master);
	if (rc)
		return opts_fail(rc, "cannot start the keeper: %s", coffer_strerror(rc));
	while (sigwait(&set, &sig) != 0)
		;
	log_info("keeper_stopping", LF_I("signal", sig));
	keeper_stop(k);
	log_info("keeper_stopped");
	return 0;
}

int cmd_keeper(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return run_init(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "join-token") == 0)
		return run_join_token(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "deployer-token") == 0)
		return run_deployer_token(argc, argv);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		(void)opts_usage("keeper");
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return run_serve(argc, argv, 2);
	return run_serve(argc, argv, 1);
}
