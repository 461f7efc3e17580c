/*
 * cmd_login.c — the CLI's deployer key (client.h, deployer.h): `coffer
 * login` enrols it at the keeper with a one-time deployer token;
 * `coffer deployers list|revoke` are requests to the keeper signed with
 * it (the hosts' scheme, hostauth.h, the deployer id where the host id
 * goes); cli_deployer_load gives it to the commands that sign.
 *
 * The key is deployer.key beside the config file (0600, made exclusively,
 * never overwritten: a second login enrols the same key again, at another
 * keeper or with another token). The keeper's public key is pinned in the
 * config at login, from its answer over TLS verified with the CA; every
 * certificate the CLI relies on later is checked with it.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "client.h"
#include "encode.h"
#include "format.h"
#include "fs.h"
#include "hostauth.h"
#include "banned.h"

#define KEY_FILE "deployer.key"
#define TOKEN_MAX 1024           /* a deployer token read from stdin, in characters */
#define NAME_SIZE 64             /* the default name: USER@HOST, cut */
#define KEEPER_TIMEOUT_MS 30000
#define KEEPER_RESPONSE_MAX ((size_t)1 << 20)
#define ENROL_BODY_MAX ((size_t)8 << 10)
#define NO_DEPLOYER "no deployer key: run 'coffer login --deployer-token ...'"

enum coffer_err cli_deployer_key_path(char *out, size_t size)
{
	char path[CLI_CONFIG_PATH_MAX];
	enum coffer_err rc = cli_config_path(path, sizeof(path));
	if (!rc)
		rc = fmt_into(out, size, "%s/%s", dirname(path), KEY_FILE);
	return rc;
}

void cli_deployer_release(struct cli_deployer *d)
{
	if (!d)
		return;
	secret_free(d->sk);
	sodium_memzero(d, sizeof(*d));
}

/* Reports a config file that cannot be read, naming it. */
static enum coffer_err config_error(enum coffer_err rc)
{
	char path[CLI_CONFIG_PATH_MAX];
	if (cli_config_path(path, sizeof(path)))
		path[0] = '\0';
	if (rc == COFFER_ERR_FORBIDDEN)
		return client_error(rc, "config file '%s' may be read or written by group or others: make it private "
					"(chmod 600)",
				    path);
	return client_error(rc, "cannot read config file '%s': %s", path, coffer_strerror(rc));
}

enum coffer_err cli_deployer_load(struct cli_deployer *d)
{
	struct cli_config_deployer cfg;
	struct cli_deployer out;
	char key_path[CLI_CONFIG_PATH_MAX];
	size_t n = 0;
	enum coffer_err rc = cli_config_read_deployer(&cfg);

	memset(&out, 0, sizeof(out));
	if (rc)
		return config_error(rc);
	if (!cfg.deployer_id[0] || !cfg.keeper_public_key[0])
		return client_error(COFFER_ERR_UNAUTH, NO_DEPLOYER);
	if (b64_decode_into(B64_URL, cfg.keeper_public_key, strlen(cfg.keeper_public_key), out.keeper_pk,
			    sizeof(out.keeper_pk), &n) ||
	    n != sizeof(out.keeper_pk))
		return client_error(COFFER_ERR_INVALID, "\"keeper_public_key\" in the config file is not a key: run "
							"'coffer login' again");
	if (!hostauth_host_id_ok(cfg.deployer_id))
		return client_error(COFFER_ERR_INVALID, "\"deployer_id\" in the config file is not an id: run "
							"'coffer login' again");
	if (!cfg.deployer_org_id[0] || !cfg.deployer_app_id[0])
		return client_error(COFFER_ERR_INVALID, "the config file does not name the deployer's org and app "
							"(logged in before they were kept): run 'coffer login' again");
	rc = cli_deployer_key_path(key_path, sizeof(key_path));
	if (!rc)
		rc = deployer_key_load(key_path, &out.sk, out.pk);
	if (rc == COFFER_ERR_NOT_FOUND)
		return client_error(COFFER_ERR_UNAUTH, NO_DEPLOYER);
	if (rc == COFFER_ERR_FORBIDDEN)
		return client_error(rc, "deployer key '%s' may be read or written by group or others: make it private "
					"(chmod 600)",
				    key_path);
	if (rc)
		return client_error(rc, "cannot read deployer key '%s': %s", key_path, coffer_strerror(rc));
	memcpy(out.id, cfg.deployer_id, sizeof(out.id));
	memcpy(out.org_id, cfg.deployer_org_id, sizeof(out.org_id));
	memcpy(out.app_id, cfg.deployer_app_id, sizeof(out.app_id));
	memcpy(out.keeper_url, cfg.keeper_url, sizeof(out.keeper_url));
	*d = out;
	return COFFER_OK;
}

/* ---- requests to the keeper ---- */

/* Prints the keeper's error message (control characters as '?') or the status; the code. */
static enum coffer_err keeper_error(int status, const struct buf *resp)
{
	enum coffer_err rc = coffer_err_from_http_status(status);
	json_t *doc = NULL, *err = NULL;
	const char *name = NULL, *text = NULL;
	char safe[HTTP_CLIENT_MESSAGE_MAX];

	if (rc == COFFER_OK)
		rc = COFFER_ERR_PROTOCOL;
	if (resp->len && !json_parse_limited(resp->ptr, resp->len, resp->max, JSON_MAX_DEPTH_DEFAULT, &doc, NULL) &&
	    !json_get_object(doc, "error", 1, &err, NULL) && !json_get_string(err, "code", 1, &name, NULL, NULL)) {
		enum coffer_err named = coffer_err_from_name(name);
		if (named != COFFER_OK && named != COFFER_ERR_PROTOCOL)
			rc = named;
		if (json_get_string(err, "message", 0, &text, NULL, NULL))
			text = NULL;
	}
	if (text && *text) {
		size_t i = 0;
		for (; text[i] && i + 1 < sizeof(safe); i++)
			safe[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
		safe[i] = '\0';
		client_error(rc, "the keeper: %s", safe);
	} else {
		client_error(rc, "the keeper answered HTTP %d (%s)", status, coffer_strerror(rc));
	}
	json_decref(doc);
	return rc;
}

/*
 * One request to the keeper at url: signed by d when given (its nonce is
 * never resent), with body (may be NULL). A 2xx answer's document goes to
 * *out. Reports what fails.
 */
static enum coffer_err keeper_call(const char *url, const struct cli_deployer *d, const char *method,
				   const char *path, const struct buf *body, json_t **out)
{
	struct http_client *c = NULL;
	struct hostauth_headers h;
	struct buf resp;
	json_t *doc = NULL;
	int status = 0;
	enum coffer_err rc = http_client_new(url, KEEPER_TIMEOUT_MS, &c);

	buf_init(&resp, KEEPER_RESPONSE_MAX);
	if (rc == COFFER_ERR_INVALID) {
		rc = client_error(COFFER_ERR_USAGE, "invalid keeper URL '%s': it must start with http:// or https://",
				  url);
		goto out;
	}
	if (!rc && d) {
		struct hostauth_request r = { method, path, body ? body->ptr : NULL, body ? body->len : 0 };
		http_client_no_resend(c);
		rc = hostauth_sign_headers(d->sk, d->id, &r, (int64_t)time(NULL), &h);
		if (!rc)
			rc = http_client_add_header(c, HOSTAUTH_HEADER_HOST, h.host);
		if (!rc)
			rc = http_client_add_header(c, HOSTAUTH_HEADER_TIMESTAMP, h.timestamp);
		if (!rc)
			rc = http_client_add_header(c, HOSTAUTH_HEADER_NONCE, h.nonce);
		if (!rc)
			rc = http_client_add_header(c, HOSTAUTH_HEADER_SIGNATURE, h.signature);
	}
	if (rc) {
		client_error(rc, "cannot make the request to the keeper: %s", coffer_strerror(rc));
		goto out;
	}
	rc = http_client_request(c, method, path, body ? body->ptr : NULL, body ? body->len : 0, 0, &status, &resp);
	if (rc) {
		const char *why = http_client_last_error(c);
		client_error(rc, "cannot reach the keeper at %s%s%s", url, why[0] ? ": " : "", why);
		goto out;
	}
	if (status < 200 || status > 299) {
		rc = keeper_error(status, &resp);
		goto out;
	}
	if (json_parse_limited(resp.ptr, resp.len, resp.max, JSON_MAX_DEPTH_DEFAULT, &doc, NULL) ||
	    !json_is_object(doc)) {
		rc = client_error(COFFER_ERR_PROTOCOL, "the keeper answered a document that is not a JSON object");
		goto out;
	}
	*out = doc;
	doc = NULL;
out:
	json_decref(doc);
	buf_release(&resp);
	http_client_free(c);
	return rc;
}

/* A base64url field of exactly len bytes in the keeper's answer. */
static int answer_b64(const json_t *doc, const char *key, unsigned char *out, size_t len)
{
	const char *s = client_str(doc, key);
	size_t n = 0;
	return s && !b64_decode_into(B64_URL, s, strlen(s), out, len, &n) && n == len;
}

/*
 * cli_deployer_enrol's work. key_file NULL: the CLI's key (made if
 * missing) and its config file written; else a new key made there
 * (exclusively) and no config written (`coffer api enrol-deployer`).
 */
static enum coffer_err enrol_key(const char *keeper_url, const char *ca, const struct secret *token, const char *name,
				 const char *key_file, json_t **answer)
{
	char key_path[CLI_CONFIG_PATH_MAX], pk_b64[DEPLOYER_PK_B64_SIZE], proof[DEPLOYER_SIG_B64_SIZE];
	unsigned char pk[DEPLOYER_PK_LEN], keeper_pk[DEPLOYER_PK_LEN], cert[DEPLOYER_SIG_LEN];
	struct secret *sk = NULL, *text = NULL;
	struct cli_config_deployer cfg;
	struct buf body;
	json_t *ans = NULL;
	int made = 0; /* key_file made here: removed again if the enrolment fails */
	enum coffer_err rc;

	buf_init_wiping(&body, ENROL_BODY_MAX); /* it carries the token */
	if (ca && (rc = http_client_set_ca_file(ca)) != COFFER_OK) {
		rc = client_error(rc, "cannot read the CA file '%s': %s", ca, coffer_strerror(rc));
		goto out;
	}
	if (key_file) {
		rc = str_copy(key_path, sizeof(key_path), key_file);
		if (!rc)
			rc = deployer_key_create(key_path, pk);
		if (rc == COFFER_ERR_CONFLICT) {
			rc = client_error(rc, "'%s' exists: a new deployer key is made there, never over another one",
					  key_path);
			goto out;
		}
		made = !rc;
		if (!rc)
			rc = deployer_key_load(key_path, &sk, pk);
	} else {
		rc = cli_deployer_key_path(key_path, sizeof(key_path));
		if (rc) {
			rc = client_error(rc, "no config folder: set COFFER_CONFIG, XDG_CONFIG_HOME or HOME");
			goto out;
		}
		/* the key there is enrolled again; else a new one, made exclusively in the config's folder */
		rc = deployer_key_load(key_path, &sk, pk);
	}
	if (rc == COFFER_ERR_NOT_FOUND) {
		char dir[CLI_CONFIG_PATH_MAX];
		rc = str_copy(dir, sizeof(dir), key_path);
		if (!rc)
			rc = fs_mkdir_p(dirname(dir), 0700);
		if (!rc)
			rc = deployer_key_create(key_path, pk);
		if (!rc)
			rc = deployer_key_load(key_path, &sk, pk);
	}
	if (rc == COFFER_ERR_FORBIDDEN) {
		rc = client_error(rc, "deployer key '%s' may be read or written by group or others: make it private "
				      "(chmod 600)",
				  key_path);
		goto out;
	}
	if (rc) {
		rc = client_error(rc, "cannot make or read the deployer key '%s': %s", key_path, coffer_strerror(rc));
		goto out;
	}
	rc = deployer_enrol_text((const char *)secret_cbytes(token), secret_len(token), name, pk, &text);
	if (rc) {
		rc = client_error(COFFER_ERR_USAGE, "the deployer token or the name is malformed");
		goto out;
	}
	rc = deployer_sign(sk, secret_cbytes(text), secret_len(text), proof);
	sodium_bin2base64(pk_b64, sizeof(pk_b64), pk, sizeof(pk), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	/* {"token":"...","name":...,"public_key":"...","proof":"..."}: the token is printable ASCII (checked) */
	for (size_t i = 0; !rc && i < secret_len(token); i++)
		if (secret_cbytes(token)[i] < 0x21 || secret_cbytes(token)[i] > 0x7e || secret_cbytes(token)[i] == '"' ||
		    secret_cbytes(token)[i] == '\\')
			rc = COFFER_ERR_USAGE;
	if (rc) {
		rc = client_error(rc, "the deployer token is malformed");
		goto out;
	}
	json_t *jname = json_string(name);
	char *name_json = jname ? json_dumps(jname, JSON_ENCODE_ANY) : NULL;
	json_decref(jname);
	if (!name_json) {
		rc = client_error(COFFER_ERR_USAGE, "the name must be UTF-8");
		goto out;
	}
	rc = buf_adds(&body, "{\"token\":\"");
	if (!rc)
		rc = buf_add(&body, secret_cbytes(token), secret_len(token));
	if (!rc)
		rc = buf_addf(&body, "\",\"name\":%s,\"public_key\":\"%s\",\"proof\":\"%s\"}", name_json, pk_b64, proof);
	free(name_json);
	if (rc) {
		rc = client_error(rc, "cannot encode the request: %s", coffer_strerror(rc));
		goto out;
	}
	rc = keeper_call(keeper_url, NULL, "POST", "/v1/deployers/enrol", &body, &ans);
	if (rc)
		goto out;
	/* the keeper's answer: our key, certified by the key we pin, for the id it names */
	const char *id = client_str(ans, "id"), *org = client_str(ans, "org_id"), *app = client_str(ans, "app_id"),
		   *role = client_str(ans, "role");
	unsigned char echoed[DEPLOYER_PK_LEN];
	struct deployer_cert c = { id, org, app, role, pk };
	if (!id || !hostauth_host_id_ok(id) || !answer_b64(ans, "public_key", echoed, sizeof(echoed)) ||
	    memcmp(echoed, pk, sizeof(pk)) != 0 || !answer_b64(ans, "keeper_public_key", keeper_pk, sizeof(keeper_pk)) ||
	    !answer_b64(ans, "cert", cert, sizeof(cert)) || deployer_cert_verify(keeper_pk, &c, cert) != COFFER_OK) {
		rc = client_bad_answer("a deployer certificate that does not verify");
		goto out;
	}
	if (key_file)
		goto done;
	rc = cli_config_read_deployer(&cfg);
	if (rc) {
		rc = config_error(rc);
		goto out;
	}
	memset(&cfg, 0, sizeof(cfg));
	sodium_bin2base64(cfg.keeper_public_key, sizeof(cfg.keeper_public_key), keeper_pk, sizeof(keeper_pk),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	rc = str_copy(cfg.keeper_url, sizeof(cfg.keeper_url), keeper_url);
	if (!rc)
		rc = str_copy(cfg.deployer_id, sizeof(cfg.deployer_id), id);
	/* the org and app scope the keeper certified (verified above): what this CLI may sign for */
	if (!rc)
		rc = str_copy(cfg.deployer_org_id, sizeof(cfg.deployer_org_id), org);
	if (!rc)
		rc = str_copy(cfg.deployer_app_id, sizeof(cfg.deployer_app_id), app);
	if (!rc)
		rc = cli_config_write_deployer(&cfg);
	if (rc) {
		rc = client_error(rc, "enrolled as deployer %s, but cannot write the config file: %s", id,
				  coffer_strerror(rc));
		goto out;
	}
done:
	if (answer) {
		*answer = ans;
		ans = NULL;
	}
out:
	if (rc && made && unlink(key_path) != 0)
		(void)client_error(COFFER_ERR_IO, "cannot remove the unenrolled key '%s'", key_path);
	json_decref(ans);
	buf_release(&body);
	secret_free(text);
	secret_free(sk);
	return rc;
}

/* ---- coffer login ---- */

/* The CA for the keeper: --ca, else COFFER_CA, else "ca" in the config file ("" when none). */
static enum coffer_err resolve_ca(const struct client *c, char *ca, size_t size)
{
	const char *env = getenv("COFFER_CA");
	struct secret *token = NULL;
	if (c->ca_flag || (env && *env))
		return str_copy(ca, size, c->ca_flag ? c->ca_flag : env) ? client_error(COFFER_ERR_USAGE, "the CA file's path is too long")
									  : COFFER_OK;
	enum coffer_err rc = cli_config_read(NULL, 0, ca, size, &token);
	secret_free(token);
	return rc ? config_error(rc) : COFFER_OK;
}

/* The token: the flag's value (blanked in argv at once), or stdin's first line for "-". */
static enum coffer_err read_token(const char *flag, struct secret **token)
{
	enum coffer_err rc;
	if (strcmp(flag, "-") != 0) {
		rc = secret_from(flag, strlen(flag), token);
		client_blank_arg((char *)flag);
		return rc ? client_error(rc, "%s", coffer_strerror(rc)) : COFFER_OK;
	}
	struct secret *t = NULL;
	size_t n = 0;
	rc = secret_new(TOKEN_MAX + 1, &t);
	if (rc)
		return client_error(rc, "%s", coffer_strerror(rc));
	for (;;) {
		ssize_t r = read(STDIN_FILENO, secret_bytes(t) + n, TOKEN_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n > TOKEN_MAX || memchr(secret_cbytes(t), '\n', n))
			break;
	}
	const unsigned char *nl = memchr(secret_cbytes(t), '\n', n);
	if (nl)
		n = (size_t)(nl - secret_cbytes(t));
	while (n && secret_cbytes(t)[n - 1] == '\r')
		n--;
	if (n == 0 || n > TOKEN_MAX || secret_truncate(t, n)) {
		secret_free(t);
		return client_error(COFFER_ERR_USAGE, "no deployer token on standard input (one line)");
	}
	*token = t;
	return COFFER_OK;
}

enum coffer_err cli_deployer_enrol(const char *keeper_url, const char *ca, const struct secret *token,
				   const char *name, json_t **answer)
{
	return enrol_key(keeper_url, ca, token, name, NULL, answer);
}

static enum coffer_err login_run(struct client *c, int argc, char **argv)
{
	const char *flag = client_value(c, "deployer-token"), *keeper = client_value(c, "keeper");
	const char *name = client_value(c, "name");
	char ca[HTTP_CLIENT_CA_PATH_MAX] = "", default_name[NAME_SIZE], host[NAME_SIZE];
	struct cli_config_deployer cfg;
	struct secret *token = NULL;
	json_t *ans = NULL;
	enum coffer_err rc;

	(void)argc, (void)argv;
	if (!flag)
		return client_usage_error(c, "give the one-time token: --deployer-token TOKEN (or - to read it from stdin)");
	rc = read_token(flag, &token);
	if (rc)
		return rc;
	if (!keeper) {
		rc = cli_config_read_deployer(&cfg);
		if (rc) {
			rc = config_error(rc);
			goto out;
		}
		if (!cfg.keeper_url[0]) {
			rc = client_usage_error(c, "no keeper URL: use --keeper URL");
			goto out;
		}
		keeper = cfg.keeper_url;
	}
	if (!name) {
		const char *user = getenv("USER");
		if (gethostname(host, sizeof(host)) != 0)
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
		/* the keeper's rule: [A-Za-z0-9][A-Za-z0-9_.@-]{0,62}; anything else becomes '-' */
		if (fmt_into(default_name, sizeof(default_name), "%.24s@%.32s", user && *user ? user : "deployer",
			     host[0] ? host : "localhost"))
			memcpy(default_name, "deployer", sizeof("deployer"));
		for (size_t i = 0; default_name[i]; i++) {
			char ch = default_name[i];
			int alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
			if (!alnum && (i == 0 || !(ch == '_' || ch == '.' || ch == '@' || ch == '-')))
				default_name[i] = i == 0 ? 'd' : '-';
		}
		name = default_name;
	}
	rc = resolve_ca(c, ca, sizeof(ca));
	if (!rc)
		rc = cli_deployer_enrol(keeper, ca[0] ? ca : NULL, token, name, &ans);
	if (rc)
		goto out;
	if (c->json) {
		rc = client_print_json(ans);
	} else {
		const char *app = client_str(ans, "app_id");
		printf("Logged in as deployer %s (%s): role %s, %s, org %s\n", client_str(ans, "id"),
		       client_str(ans, "name"), client_str(ans, "role"),
		       app && strcmp(app, DEPLOYER_ALL_APPS) == 0 ? "every app" : app ? app : "?",
		       client_str(ans, "org_id"));
	}
out:
	json_decref(ans);
	secret_free(token);
	return rc;
}

/* `login` takes the token as an option's value: out of ps even when setup fails first. */
static void login_scrub(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "cdt_", 4) == 0 || strncmp(argv[i], "--deployer-token=", 17) == 0)
			client_blank_arg(argv[i]);
}

static const struct cli_opt login_opts[] = {
	{ "deployer-token", 0, OPTS_VALUE, "TOKEN", "the one-time token from 'coffer keeper deployer-token' (-: stdin)" },
	{ "keeper", 0, OPTS_VALUE, "URL", "the keeper (default: \"keeper_url\" in the config file)" },
	{ "name", 0, OPTS_VALUE, "NAME", "the key's name in 'coffer deployers list' (default: USER@HOST)" },
	{ NULL, 0, OPTS_FLAG, NULL, NULL },
};

const struct cli_cmd cli_login = {
	.name = "login", .run = login_run, .scrub = login_scrub, .flags = CLI_JSON, .opts = login_opts,
	.usage = "login --deployer-token TOKEN|- [--keeper URL] [--name NAME] [--ca FILE] [--json]",
	.summary = "enrol this CLI's deployer key at the keeper with a one-time deployer token",
	.json_help = "print the keeper's answer (the deployer's id, org, app, role and certificate)",
	.help = "Makes this CLI's deployer key (deployer.key beside the config file, 0600) if it\n"
		"has none, enrols it at the keeper with a one-time token from 'coffer keeper\n"
		"deployer-token' (proving it holds the key), and writes the keeper's URL, its\n"
		"public key (pinned) and the deployer id into the config file. The key then\n"
		"signs what this CLI deploys. With - the token is read from standard input.\n",
};

/* ---- coffer deployers ---- */

static enum coffer_err deployers_connect(struct client *c, struct cli_deployer *d)
{
	char ca[HTTP_CLIENT_CA_PATH_MAX] = "";
	enum coffer_err rc = cli_deployer_load(d);
	if (!rc)
		rc = resolve_ca(c, ca, sizeof(ca));
	if (!rc && (rc = http_client_set_ca_file(ca[0] ? ca : NULL)) != COFFER_OK)
		rc = client_error(rc, "cannot read the CA file '%s': %s", ca, coffer_strerror(rc));
	if (!rc && !d->keeper_url[0])
		rc = client_error(COFFER_ERR_USAGE, "no \"keeper_url\" in the config file: run 'coffer login' again");
	return rc;
}

static void deployer_row(const json_t *item, int64_t now, const char **cells, char (*scratch)[CLIENT_CELL_SIZE])
{
	json_t *created = json_object_get(item, "created_at");
	int tampered = json_is_true(json_object_get(item, "tampered"));
	cells[0] = client_str(item, "id");
	cells[1] = client_str(item, "name");
	cells[2] = client_str(item, "role");
	cells[3] = client_str(item, "app_id");
	cells[4] = tampered ? "TAMPERED" : json_is_true(json_object_get(item, "revoked")) ? "revoked" : "live";
	if (!json_is_integer(created) ||
	    format_relative(json_integer_value(created) / 1000, now, scratch[5], CLIENT_CELL_SIZE))
		memcpy(scratch[5], "-", 2);
	cells[5] = scratch[5];
}

static const char *const deployer_headers[] = { "ID", "NAME", "ROLE", "APP", "STATUS", "CREATED" };

static enum coffer_err deployers_list(struct client *c, int argc, char **argv)
{
	struct cli_deployer d = { 0 };
	json_t *ans = NULL;
	struct buf out;
	(void)argc, (void)argv;

	buf_init(&out, CLIENT_REQUEST_MAX);
	enum coffer_err rc = deployers_connect(c, &d);
	if (!rc)
		rc = keeper_call(d.keeper_url, &d, "GET", "/v1/deployers", NULL, &ans);
	if (!rc && !json_is_array(json_object_get(ans, "deployers")))
		rc = client_bad_answer("no \"deployers\" list");
	if (!rc && c->json)
		rc = client_print_json(ans);
	else if (!rc)
		rc = client_table(json_object_get(ans, "deployers"), deployer_headers, 6, deployer_row, &out);
	if (!rc && !c->json) {
		fwrite(out.ptr, 1, out.len, stdout);
		fflush(stdout);
	}
	buf_release(&out);
	json_decref(ans);
	cli_deployer_release(&d);
	return rc;
}

static enum coffer_err deployers_revoke(struct client *c, int argc, char **argv)
{
	struct cli_deployer d = { 0 };
	char path[CLIENT_PATH_MAX];
	json_t *ans = NULL;
	(void)argc;

	enum coffer_err rc = client_path(path, sizeof(path), "/v1/deployers/", argv[1], "/revoke");
	if (!rc)
		rc = deployers_connect(c, &d);
	if (!rc)
		rc = keeper_call(d.keeper_url, &d, "POST", path, NULL, &ans);
	if (!rc)
		printf("Revoked deployer %s\n", argv[1]);
	json_decref(ans);
	cli_deployer_release(&d);
	return rc;
}

/*
 * `coffer deployers export FILE`: the deployer key and the keeper's pinned
 * public key in one file for the dashboard (docs/DASHBOARD.md), which
 * imports it into a non-extractable key in the tab's memory. JSON:
 *   {"kind": "coffer deployer key v1", "deployer_id", "org_id", "app_id",
 *    "key": base64url seed, "public_key", "keeper_public_key"}
 * Made exclusively with mode 0600, the text in secure memory; never
 * overwrites a file.
 */
#define EXPORT_KIND "coffer deployer key v1"
#define EXPORT_MAX 1024

static enum coffer_err deployers_export(struct client *c, int argc, char **argv)
{
	struct cli_deployer d = { 0 };
	char pk[DEPLOYER_PK_B64_SIZE], keeper[DEPLOYER_PK_B64_SIZE];
	struct secret *text = NULL, *seed = NULL;
	enum coffer_err rc = cli_deployer_load(&d);
	(void)c;
	(void)argc;

	if (rc)
		return rc;
	rc = secret_new(EXPORT_MAX, &text);
	if (!rc)
		rc = secret_new(DEPLOYER_PK_B64_SIZE, &seed);
	if (rc) {
		cli_deployer_release(&d);
		secret_free(text);
		return client_error(rc, "out of memory");
	}
	/* libsodium's secret key is seed || public key */
	sodium_bin2base64((char *)secret_bytes(seed), DEPLOYER_PK_B64_SIZE, secret_cbytes(d.sk), DEPLOYER_PK_LEN,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_bin2base64(pk, sizeof(pk), d.pk, DEPLOYER_PK_LEN, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_bin2base64(keeper, sizeof(keeper), d.keeper_pk, DEPLOYER_PK_LEN, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	rc = fmt_into((char *)secret_bytes(text), EXPORT_MAX,
		      "{\"kind\": \"" EXPORT_KIND "\", \"deployer_id\": \"%s\", \"org_id\": \"%s\", \"app_id\": \"%s\",\n"
		      " \"key\": \"%s\", \"public_key\": \"%s\", \"keeper_public_key\": \"%s\"}\n",
		      d.id, d.org_id, d.app_id, (const char *)secret_cbytes(seed), pk, keeper);
	if (!rc)
		rc = fs_write_atomic(argv[1], secret_cbytes(text), strlen((const char *)secret_cbytes(text)), 0600, 1);
	if (rc == COFFER_ERR_CONFLICT)
		client_error(rc, "'%s' exists: export writes a new file only", argv[1]);
	else if (rc)
		client_error(rc, "cannot write '%s': %s", argv[1], coffer_strerror(rc));
	else
		printf("Wrote deployer %s's key and the keeper's public key to %s (mode 0600): load it in the "
		       "dashboard to set and unset secrets; keep it as private as the key itself\n",
		       d.id, argv[1]);
	secret_free(seed);
	secret_free(text);
	cli_deployer_release(&d);
	return rc;
}

static const struct cli_cmd deployers_cmds[] = {
	{ .name = "list", .alias = "ls", .usage = "deployers list [--ca FILE] [--json]", .run = deployers_list,
	  .flags = CLI_JSON, .json_help = "print the keeper's list as JSON",
	  .help = "Lists the deployer keys of your org (signed with this CLI's key, sent to the\n"
		  "keeper): live, revoked, or TAMPERED when a row fails the keeper's checks.\n" },
	{ .name = "revoke", .usage = "deployers revoke ID [--ca FILE]", .run = deployers_revoke,
	  .help = "Revokes a deployer key by its id, at once: its signatures no longer open any\n"
		  "machine's secrets. A key may revoke itself; an admin of every app of the org\n"
		  "may revoke any key of the org. Revoking twice is not an error.\n",
	  .min_args = 1, .max_args = 1, .args_error = "expected one ID" },
	{ .name = "export", .usage = "deployers export FILE", .run = deployers_export,
	  .help = "Writes this CLI's deployer key, its id, org and app and the keeper's public key\n"
		  "pinned at login into FILE (a new file, mode 0600), for the web dashboard, which\n"
		  "seals and signs in the browser with it. Keep FILE as private as the key itself.\n",
	  .min_args = 1, .max_args = 1, .args_error = "expected one FILE" },
};
static const struct cli_group deployers_group = CLI_GROUP("deployers", deployers_cmds);
const struct cli_cmd cli_deployers = CLI_NOUN("deployers", &deployers_group, "list, revoke or export deployer keys");

/* ---- coffer api enrol-deployer: the api's own deployer key (plaintext values, docs/API.md) ---- */

int cli_api_enrol_deployer(int argc, char **argv)
{
	const char *flag = NULL, *keeper = NULL, *ca = NULL, *key = NULL, *name = NULL;
	const struct opts_spec specs[] = {
		{ "deployer-token", 0, OPTS_VALUE, &flag }, { "keeper", 0, OPTS_VALUE, &keeper },
		{ "ca", 0, OPTS_VALUE, &ca },		    { "key", 0, OPTS_VALUE, &key },
		{ "name", 0, OPTS_VALUE, &name },	    { NULL, 0, OPTS_FLAG, NULL },
	};
	struct secret *token = NULL;
	json_t *ans = NULL;
	enum coffer_err rc;
	int ex = opts_parse_role("api", specs, argc, argv, 2);

	if (!ex && (!flag || !keeper || !key))
		ex = opts_usage("api");
	if (ex) {
		login_scrub(argc, argv);
		return ex;
	}
	rc = read_token(flag, &token);
	if (!rc)
		rc = enrol_key(keeper, ca, token, name ? name : "api", key, &ans);
	if (!rc) {
		const char *app = client_str(ans, "app_id");
		printf("%s\n", client_str(ans, "id"));
		(void)fflush(stdout); /* the id first, for a script reading both streams */
		fprintf(stderr,
			"The api's deployer key '%s' is enrolled (role %s, %s of org %s): start the api with "
			"--deployer-key %s to let this org set plaintext values.\n",
			key, client_str(ans, "role"), app && strcmp(app, DEPLOYER_ALL_APPS) == 0 ? "every app" : "one app",
			client_str(ans, "org_id"), key);
	}
	json_decref(ans);
	secret_free(token);
	return coffer_err_exit_code(rc);
}
