#include "client.h"

#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "fs.h"
#include "format.h"
#include "banned.h"

#define CONFIG_DIR_MODE 0700
#define CONFIG_FILE_MODE 0600
#define CONFIG_DEPTH 2
#define CONFIG_SUFFIX "/coffer/config.json"
#define CONFIG_HOME_SUFFIX "/.config/coffer/config.json"
#define SUBCOMMAND_ECHO_MAX 32  /* an unknown subcommand is named only when short and plain */
#define OPTION_ECHO_MAX 48      /* bytes of an unknown option's name shown back */
#define WAIT_MACHINES_MAX 256   /* machines whose last step a wait remembers */
#define WAIT_ID_SIZE 65         /* a machine id remembered (store ids are 32 hex) */
#define WAIT_STEP_SIZE 16       /* a step name remembered ("rolled_back") */
#define WAIT_REASON_MAX ((size_t)64 << 10)
#define NS_PER_MS 1000000L
#define MS_PER_S 1000

static const char common_help[] =
	"  -t, --access-token TOKEN  access token (default: $COFFER_TOKEN, then the config file)\n"
	"  -h, --help                show this help\n";

enum coffer_err cli_config_path(char *out, size_t size)
{
	const char *env = getenv("COFFER_CONFIG");
	if (env && *env)
		return str_copy(out, size, env);
	env = getenv("XDG_CONFIG_HOME");
	if (env && env[0] == '/') /* the XDG spec ignores a relative value */
		return fmt_into(out, size, "%s" CONFIG_SUFFIX, env);
	env = getenv("HOME");
	if (env && *env)
		return fmt_into(out, size, "%s" CONFIG_HOME_SUFFIX, env);
	return COFFER_ERR_NOT_FOUND;
}

/* Printable ASCII without '"' and '\\': can go into a JSON string as it is. */
static int json_plain(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
			return 0;
	return 1;
}

static void append(unsigned char *dst, size_t *pos, const void *src, size_t n)
{
	if (dst)
		memcpy(dst + *pos, src, n);
	*pos += n;
}

/* Counts (dst NULL) or writes the config document. */
static size_t config_doc(unsigned char *dst, const char *api_url, const struct secret *token)
{
	size_t pos = 0;
	append(dst, &pos, "{", 1);
	if (api_url) {
		append(dst, &pos, "\n  \"api_url\": \"", 15);
		append(dst, &pos, api_url, strlen(api_url));
		append(dst, &pos, "\"", 1);
	}
	if (token) {
		if (api_url)
			append(dst, &pos, ",", 1);
		append(dst, &pos, "\n  \"token\": \"", 13);
		append(dst, &pos, secret_cbytes(token), secret_len(token));
		append(dst, &pos, "\"", 1);
	}
	append(dst, &pos, "\n}\n", 3);
	return pos;
}

enum coffer_err cli_config_write(const char *api_url, const struct secret *token)
{
	char path[CLI_CONFIG_PATH_MAX], dir[CLI_CONFIG_PATH_MAX];
	struct secret *doc = NULL;
	enum coffer_err rc;

	if (api_url && ((strncmp(api_url, "http://", 7) != 0 && strncmp(api_url, "https://", 8) != 0) ||
			!json_plain((const unsigned char *)api_url, strlen(api_url))))
		return COFFER_ERR_INVALID;
	if (token && (secret_len(token) == 0 || !json_plain(secret_cbytes(token), secret_len(token))))
		return COFFER_ERR_INVALID;
	rc = cli_config_path(path, sizeof(path));
	if (!rc)
		rc = str_copy(dir, sizeof(dir), path);
	if (!rc)
		rc = fs_mkdir_p(dirname(dir), CONFIG_DIR_MODE);
	if (!rc)
		rc = secret_new(config_doc(NULL, api_url, token), &doc);
	if (rc)
		goto out;
	config_doc(secret_bytes(doc), api_url, token);
	rc = fs_write_atomic(path, secret_cbytes(doc), secret_len(doc), CONFIG_FILE_MODE, 0);
out:
	secret_free(doc);
	return rc;
}

/* jansson keeps its own copy of a string: wipe it before it is freed. */
static void wipe_json_string(json_t *s)
{
	if (json_is_string(s))
		sodium_memzero((char *)json_string_value(s), json_string_length(s));
}

enum coffer_err cli_config_read(char *api_url, size_t api_url_size, struct secret **token)
{
	static const char *const fields[] = { "api_url", "token", NULL };
	char path[CLI_CONFIG_PATH_MAX], url[HTTP_CLIENT_URL_MAX] = "";
	struct secret *raw = NULL, *tok = NULL;
	json_t *doc = NULL;
	const char *s = NULL;
	size_t len = 0;
	enum coffer_err rc;

	rc = cli_config_path(path, sizeof(path));
	if (!rc)
		rc = fs_read_private(path, CLI_CONFIG_MAX, &raw);
	if (rc == COFFER_ERR_NOT_FOUND) /* no file, or no HOME: no config */
		rc = COFFER_OK;
	if (!rc && raw)
		rc = json_parse_limited((const char *)secret_cbytes(raw), secret_len(raw), CLI_CONFIG_MAX,
					CONFIG_DEPTH, &doc, NULL);
	if (!rc && raw && !json_is_object(doc))
		rc = COFFER_ERR_INVALID;
	if (!rc && doc)
		rc = json_check_fields(doc, fields, NULL);
	if (!rc && doc)
		rc = json_get_string(doc, "api_url", 0, &s, NULL, NULL);
	if (!rc && s)
		rc = str_copy(url, sizeof(url), s);
	s = NULL;
	if (!rc && doc)
		rc = json_get_string(doc, "token", 0, &s, &len, NULL);
	if (!rc && s && len)
		rc = secret_from(s, len, &tok);
	if (!rc && api_url)
		rc = str_copy(api_url, api_url_size, url);
	if (rc)
		goto out;
	*token = tok;
	tok = NULL;
out:
	if (doc)
		wipe_json_string(json_object_get(doc, "token"));
	json_decref(doc);
	secret_free(tok);
	secret_free(raw);
	return rc;
}

void client_init(struct client *c, const char *usage, const char *help, const char *options)
{
	memset(c, 0, sizeof(*c));
	c->usage = usage;
	c->help = help;
	c->options = options;
}

void client_release(struct client *c)
{
	http_client_free(c->http);
	secret_free(c->token);
	memset(c, 0, sizeof(*c));
}

static void live_interrupt(void);

enum coffer_err client_error(enum coffer_err rc, const char *fmt, ...)
{
	va_list ap;
	live_interrupt(); /* an error during a wait starts on a line of its own */
	fputs("coffer: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return rc;
}

int client_usage_error(const struct client *c, const char *fmt, ...)
{
	va_list ap;
	fputs("coffer: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: coffer %s\n", c->usage);
	return coffer_err_exit_code(COFFER_ERR_USAGE);
}

int client_exit(enum coffer_err rc)
{
	return coffer_err_exit_code(rc);
}

void client_blank_arg(char *s)
{
	if (s)
		sodium_memzero(s, strlen(s));
}

static const struct client_opt *find_long(const struct client_opt *opts, const char *name, size_t len)
{
	for (; opts && opts->name; opts++)
		if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
			return opts;
	return NULL;
}

static const struct client_opt *find_short(const struct client_opt *opts, char ch)
{
	for (; opts && opts->name; opts++)
		if (opts->short_name && opts->short_name == ch)
			return opts;
	return NULL;
}

/* Takes the token given on the command line into secure memory and blanks it in argv. */
static int take_token(struct client *c, char *value)
{
	struct secret *t = NULL;
	enum coffer_err rc = secret_from(value, strlen(value), &t);
	client_blank_arg(value);
	if (rc) {
		client_error(rc, "%s", coffer_strerror(rc));
		return client_exit(rc);
	}
	secret_free(c->token);
	c->token = t;
	return CLIENT_CONTINUE;
}

static int print_help(const struct client *c)
{
	printf("usage: coffer %s\n\n%s\noptions:\n%s%s", c->usage, c->help ? c->help : "",
	       c->options ? c->options : "", common_help);
	return 0;
}

int client_parse(struct client *c, int argc, char **argv, const struct client_opt *opts, int *n_pos)
{
	static const struct client_opt builtin[] = {
		{ "help", 'h', CLIENT_OPT_FLAG, NULL },
		{ "access-token", 't', CLIENT_OPT_VALUE, NULL },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};
	int npos = 0, only_pos = 0;

	for (int i = 1; i < argc; i++) {
		char *arg = argv[i], *value = NULL;
		const struct client_opt *o;
		char shown[OPTION_ECHO_MAX + 1];

		if (only_pos || arg[0] != '-' || arg[1] == '\0') {
			argv[++npos] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (arg[1] == '-') {
			const char *name = arg + 2;
			char *eq = strchr(arg, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			o = find_long(opts, name, len);
			if (!o)
				o = find_long(builtin, name, len);
			if (eq)
				value = eq + 1;
			/* shown: the option's name, never what follows '=' */
			if (fmt_into(shown, sizeof(shown), "--%.*s", (int)(len < OPTION_ECHO_MAX - 2 ? len : OPTION_ECHO_MAX - 2),
				     name))
				shown[0] = '\0';
		} else {
			o = find_short(opts, arg[1]);
			if (!o)
				o = find_short(builtin, arg[1]);
			if (arg[2])
				value = arg + 2;
			shown[0] = '-', shown[1] = arg[1], shown[2] = '\0';
		}
		if (!o)
			return client_usage_error(c, "unknown option '%s'", shown);
		if (o->kind == CLIENT_OPT_FLAG) {
			if (value)
				return client_usage_error(c, "option '%s' takes no value", shown);
			if (o == &builtin[0])
				return print_help(c);
			*(int *)o->dst = 1;
			continue;
		}
		if (!value) {
			if (i + 1 >= argc)
				return client_usage_error(c, "option '%s' needs a value", shown);
			value = argv[++i];
		}
		if (o == &builtin[1]) {
			int code = take_token(c, value);
			if (code != CLIENT_CONTINUE)
				return code;
			continue;
		}
		if (o->kind == CLIENT_OPT_LIST) {
			struct client_values *l = o->dst;
			if (l->n >= CLIENT_VALUES_MAX)
				return client_usage_error(c, "option '%s' given more than %d times", shown,
							  CLIENT_VALUES_MAX);
			l->v[l->n++] = value;
			continue;
		}
		*(const char **)o->dst = value;
	}
	*n_pos = npos;
	return CLIENT_CONTINUE;
}

/* A subcommand the user typed is echoed only when it cannot be a value typed by mistake. */
static int plain_word(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || s[n] == '-') || n >= SUBCOMMAND_ECHO_MAX)
			return 0;
	return n > 0;
}

static void print_subs(FILE *f, const char *group, const struct client_sub *subs, size_t n_subs)
{
	fprintf(f, "usage: coffer %s COMMAND [OPTIONS]\n\ncommands:\n", group);
	for (size_t i = 0; i < n_subs; i++)
		if (subs[i].usage)
			fprintf(f, "  coffer %s\n", subs[i].usage);
	fprintf(f, "\nRun 'coffer %s COMMAND --help' for the options of a command.\n", group);
}

int client_dispatch(const char *group, const struct client_sub *subs, size_t n_subs, int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "coffer: error: '%s' needs a command\n", group);
		print_subs(stderr, group, subs, n_subs);
		return client_exit(COFFER_ERR_USAGE);
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		print_subs(stdout, group, subs, n_subs);
		return 0;
	}
	for (size_t i = 0; i < n_subs; i++)
		if (strcmp(subs[i].name, argv[1]) == 0)
			return subs[i].run(argc - 1, argv + 1);
	if (plain_word(argv[1]))
		fprintf(stderr, "coffer: error: unknown command '%s %s'\n", group, argv[1]);
	else
		fprintf(stderr, "coffer: error: unknown command for '%s'\n", group);
	print_subs(stderr, group, subs, n_subs);
	return client_exit(COFFER_ERR_USAGE);
}

enum coffer_err client_need_app(struct client *c)
{
	const char *app = c->app_flag;
	if (!app || !*app)
		app = getenv("COFFER_APP");
	if (!app || !*app) {
		client_usage_error(c, "no app given: use -a APP or set COFFER_APP");
		return COFFER_ERR_USAGE;
	}
	c->app = app;
	return COFFER_OK;
}

enum coffer_err client_connect(struct client *c)
{
	char path[CLI_CONFIG_PATH_MAX] = "";
	char url[HTTP_CLIENT_URL_MAX] = "";
	struct secret *config_token = NULL;
	const char *env_url = getenv("COFFER_API_URL");
	const char *env_token = getenv("COFFER_TOKEN");
	enum coffer_err rc = COFFER_OK;

	if (!c->token && env_token && *env_token) {
		rc = secret_from(env_token, strlen(env_token), &c->token);
		if (rc)
			return client_error(rc, "%s", coffer_strerror(rc));
	}
	if (env_url && *env_url) {
		rc = str_copy(url, sizeof(url), env_url);
		if (rc)
			return client_error(COFFER_ERR_USAGE, "COFFER_API_URL is too long");
	}
	if (!url[0] || !c->token) {
		if (cli_config_path(path, sizeof(path)))
			path[0] = '\0';
		rc = cli_config_read(url[0] ? NULL : url, url[0] ? 0 : sizeof(url), &config_token);
		if (rc == COFFER_ERR_FORBIDDEN)
			return client_error(rc, "config file '%s' may be read or written by group or others: "
						"make it private (chmod 600)", path);
		if (rc == COFFER_ERR_INVALID || rc == COFFER_ERR_TOO_LARGE)
			return client_error(rc, "config file '%s' is not a JSON object with only the string fields "
						"\"api_url\" and \"token\"", path);
		if (rc)
			return client_error(rc, "cannot read config file '%s': %s", path, coffer_strerror(rc));
		if (!c->token) {
			c->token = config_token;
			config_token = NULL;
		}
		secret_free(config_token);
	}
	if (!url[0])
		return client_error(COFFER_ERR_USAGE, "no API URL: set COFFER_API_URL, or run 'coffer dev', which "
						      "writes it to the config file (%s)", path[0] ? path : "none");
	if (!c->token)
		return client_error(COFFER_ERR_UNAUTH, "no access token: use -t TOKEN, set COFFER_TOKEN, or put "
						       "\"token\" in the config file");
	rc = str_copy(c->api_url, sizeof(c->api_url), url);
	if (!rc)
		rc = http_client_new(url, CLIENT_TIMEOUT_MS, &c->http);
	if (rc == COFFER_ERR_INVALID)
		return client_error(COFFER_ERR_USAGE, "invalid API URL '%s': it must start with http:// or https://",
				    url);
	if (rc)
		return client_error(rc, "%s", coffer_strerror(rc));
	rc = http_client_set_token(c->http, c->token);
	if (rc == COFFER_ERR_INVALID)
		return client_error(COFFER_ERR_UNAUTH, "the access token is malformed");
	if (rc)
		return client_error(rc, "%s", coffer_strerror(rc));
	return COFFER_OK;
}

/* A message from the API, fit for a terminal: control characters become '?'. */
static void print_peer_message(const char *msg)
{
	char safe[HTTP_CLIENT_MESSAGE_MAX];
	size_t i = 0;
	for (; msg[i] && i + 1 < sizeof(safe); i++) {
		unsigned char ch = (unsigned char)msg[i];
		safe[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	safe[i] = '\0';
	client_error(COFFER_OK, "%s", safe);
}

/* The code and message of a non-2xx answer; the message is printed. */
static enum coffer_err api_error(int status, const struct buf *resp)
{
	enum coffer_err rc = coffer_err_from_http_status(status);
	json_t *doc = NULL, *err = NULL;
	const char *name = NULL, *text = NULL;

	if (rc == COFFER_OK)
		rc = COFFER_ERR_PROTOCOL;
	if (resp->len &&
	    !json_parse_limited(resp->ptr, resp->len, resp->max, JSON_MAX_DEPTH_DEFAULT, &doc, NULL) &&
	    !json_get_object(doc, "error", 1, &err, NULL) && !json_get_string(err, "code", 1, &name, NULL, NULL)) {
		enum coffer_err named = coffer_err_from_name(name);
		if (named != COFFER_OK && (named != COFFER_ERR_PROTOCOL || strcmp(name, "protocol_error") == 0))
			rc = named;
		if (json_get_string(err, "message", 0, &text, NULL, NULL))
			text = NULL;
	}
	if (text && *text)
		print_peer_message(text);
	else
		client_error(rc, "the API answered HTTP %d (%s)", status, coffer_strerror(rc));
	json_decref(doc);
	return rc;
}

static enum coffer_err call(struct client *c, const char *method, const char *path, const void *body, size_t len,
			    json_t **out)
{
	struct buf resp;
	json_t *doc = NULL;
	int status = 0;
	enum coffer_err rc;

	buf_init_wiping(&resp, HTTP_CLIENT_RESPONSE_MAX_DEFAULT);
	rc = http_client_request(c->http, method, path, body, len, 0, &status, &resp);
	c->unreachable = rc == COFFER_ERR_UNAVAILABLE;
	if (rc == COFFER_ERR_UNAVAILABLE) {
		if (!c->quiet_unreachable)
			client_error(rc, "cannot reach the API at %s", c->api_url);
		goto out;
	}
	if (rc) {
		client_error(rc, "request to the API at %s failed: %s", c->api_url, coffer_strerror(rc));
		goto out;
	}
	if (status < 200 || status > 299) {
		rc = api_error(status, &resp);
		goto out;
	}
	if (resp.len && json_parse_limited(resp.ptr, resp.len, resp.max, JSON_MAX_DEPTH_DEFAULT, &doc, NULL)) {
		rc = client_bad_answer("a document that is not valid JSON");
		goto out;
	}
	if (out && !doc) {
		rc = client_bad_answer("an empty body");
		goto out;
	}
	if (out) {
		*out = doc;
		doc = NULL;
	}
out:
	json_decref(doc);
	buf_release(&resp);
	return rc;
}

enum coffer_err client_call(struct client *c, const char *method, const char *path, const json_t *body,
			    json_t **out)
{
	struct buf req;
	enum coffer_err rc = COFFER_OK;

	buf_init_wiping(&req, CLIENT_REQUEST_MAX);
	if (body)
		rc = json_dump_buf(body, &req);
	if (rc)
		client_error(rc, "cannot encode the request: %s", coffer_strerror(rc));
	else
		rc = call(c, method, path, body ? req.ptr : NULL, req.len, out);
	buf_release(&req);
	return rc;
}

enum coffer_err client_call_secret(struct client *c, const char *method, const char *path, const struct secret *body,
				   json_t **out)
{
	return call(c, method, path, secret_cbytes(body), secret_len(body), out);
}

enum coffer_err client_path(char *out, size_t size, const char *prefix, const char *segment, const char *suffix)
{
	char seg[CLIENT_SEGMENT_MAX];
	if (!*segment)
		return client_error(COFFER_ERR_USAGE, "an empty name is not allowed");
	if (format_url_segment(segment, seg, sizeof(seg)) || fmt_into(out, size, "%s%s%s", prefix, seg, suffix))
		return client_error(COFFER_ERR_INVALID, "name too long: '%.64s...'", segment);
	return COFFER_OK;
}

enum coffer_err client_print_json(const json_t *doc)
{
	if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) || fputc('\n', stdout) == EOF ||
	    fflush(stdout))
		return client_error(COFFER_ERR_IO, "cannot write to standard output");
	return COFFER_OK;
}

enum coffer_err client_bad_answer(const char *what)
{
	return client_error(COFFER_ERR_PROTOCOL, "unexpected answer from the API: %s", what);
}

const char *client_str(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int client_list_command(int argc, char **argv, const struct client_listing *l)
{
	return client_list_app_command(argc, argv, l, NULL, NULL);
}

int client_list_app_command(int argc, char **argv, const struct client_listing *l, const char *app_suffix,
			    const char *all_help)
{
	struct client c;
	struct format_table t = { 0 };
	struct buf out, help;
	char path[CLIENT_PATH_MAX];
	json_t *ans = NULL, *list = NULL, *item;
	int n_pos = 0, json = 0, all = 0, code;
	size_t i;
	enum coffer_err rc;
	struct client_opt opts[4];
	size_t n_opts = 0;

	opts[n_opts++] = (struct client_opt){ "json", 0, CLIENT_OPT_FLAG, &json };
	if (app_suffix)
		opts[n_opts++] = (struct client_opt){ "app", 'a', CLIENT_OPT_VALUE, &c.app_flag };
	if (all_help)
		opts[n_opts++] = (struct client_opt){ "all", 0, CLIENT_OPT_FLAG, &all };
	opts[n_opts] = (struct client_opt){ NULL, 0, CLIENT_OPT_FLAG, NULL };

	buf_init(&out, BUF_MAX_DEFAULT * 16);
	buf_init(&help, BUF_MAX_DEFAULT);
	client_init(&c, l->usage, l->help, NULL);
	if ((app_suffix && buf_adds(&help, CLIENT_APP_OPTION)) ||
	    (all_help && buf_adds(&help, all_help)) ||
	    buf_adds(&help, "      --json                print the API's list as JSON\n")) {
		code = client_exit(client_error(COFFER_ERR_NOMEM, "out of memory"));
		goto out;
	}
	c.options = help.ptr;
	code = client_parse(&c, argc, argv, opts, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos != 0) {
		code = client_usage_error(&c, "unexpected argument");
		goto out;
	}
	rc = l->ncols <= CLIENT_LIST_COLS_MAX ? COFFER_OK : COFFER_ERR_INTERNAL;
	if (!rc && app_suffix)
		rc = client_need_app(&c);
	if (!rc)
		rc = client_connect(&c);
	if (!rc && app_suffix)
		rc = client_path(path, sizeof(path), "/v1/apps/", c.app, app_suffix);
	else if (!rc)
		rc = str_copy(path, sizeof(path), l->path) ? client_error(COFFER_ERR_INTERNAL, "path too long") : COFFER_OK;
	if (!rc && all && strlen(path) + sizeof("?all=1") > sizeof(path))
		rc = client_error(COFFER_ERR_INVALID, "name too long");
	if (!rc && all)
		memcpy(path + strlen(path), "?all=1", sizeof("?all=1"));
	if (!rc)
		rc = client_call(&c, "GET", path, NULL, &ans);
	if (!rc && json_get_array(ans, l->key, 1, &list, NULL))
		rc = client_bad_answer("no list in the answer");
	if (!rc && json) {
		rc = client_print_json(list);
		goto done;
	}
	if (!rc && format_table_init(&t, l->ncols, l->headers))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	int64_t now = (int64_t)time(NULL);
	json_array_foreach(rc ? NULL : list, i, item) {
		const char *cells[CLIENT_LIST_COLS_MAX];
		char scratch[CLIENT_LIST_COLS_MAX][CLIENT_CELL_SIZE] = { { 0 } };
		for (size_t k = 0; k < l->ncols; k++)
			cells[k] = "";
		l->row(item, now, cells, scratch);
		if (format_table_add(&t, cells)) {
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
			break;
		}
	}
	if (!rc && format_table_render(&t, &out))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	if (!rc)
		fwrite(out.ptr, 1, out.len, stdout);
done:
	code = client_exit(rc);
out:
	format_table_release(&t);
	buf_release(&help);
	buf_release(&out);
	json_decref(ans);
	client_release(&c);
	return code;
}

/* ---- following a release ---- */

static volatile sig_atomic_t got_sigint;
static int interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	got_sigint = 1;
}

int client_interrupted(void)
{
	return interrupted;
}

/* Sleeps ms, or less when Ctrl-C comes (the handler has no SA_RESTART). */
static void nap_ms(long ms)
{
	struct timespec ts = { ms / MS_PER_S, (ms % MS_PER_S) * NS_PER_MS };
	while (!got_sigint && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * MS_PER_S + t.tv_nsec / NS_PER_MS;
}

struct wait_seen {
	char id[WAIT_ID_SIZE];
	char step[WAIT_STEP_SIZE];
};

/* What a wait shows: the steps seen so far and, on a terminal, the live line. */
struct wait_view {
	int live;             /* stdout is a terminal */
	size_t live_len;      /* bytes of the live line on screen; 0: none */
	char live_text[FORMAT_STEP_SIZE];
	struct wait_seen seen[WAIT_MACHINES_MAX];
	size_t n_seen;
};

/* The wait whose live line is on screen, if any (client_error clears it). */
static struct wait_view *live_view;

/* Wipes the live line so that the next output starts on a clean line. */
static void live_clear(struct wait_view *v)
{
	if (!v->live_len)
		return;
	printf("\r%*s\r", (int)v->live_len, "");
	v->live_len = 0;
	v->live_text[0] = '\0';
	fflush(stdout);
}

static void live_interrupt(void)
{
	if (live_view)
		live_clear(live_view);
}

static void live_show(struct wait_view *v, const char *text)
{
	size_t n = strlen(text);
	if (v->live_len && strcmp(v->live_text, text) == 0)
		return;
	/* pad over what is left of a longer line */
	printf("\r%s%*s", text, v->live_len > n ? (int)(v->live_len - n) : 0, "");
	if (v->live_len > n)
		printf("\r%s", text);
	v->live_len = n;
	memcpy(v->live_text, text, n + 1);
	fflush(stdout);
}

/* 1 when the machine's step differs from the one seen last (and remembers it). */
static int step_changed(struct wait_view *v, const char *id, const char *step)
{
	size_t i;
	for (i = 0; i < v->n_seen; i++)
		if (strncmp(v->seen[i].id, id, WAIT_ID_SIZE - 1) == 0)
			break;
	if (i == v->n_seen) {
		if (v->n_seen == WAIT_MACHINES_MAX)
			return 1; /* too many to remember: shown every time */
		v->n_seen++;
		if (str_copy(v->seen[i].id, WAIT_ID_SIZE, id))
			memcpy(v->seen[i].id, id, WAIT_ID_SIZE - 1), v->seen[i].id[WAIT_ID_SIZE - 1] = '\0';
		v->seen[i].step[0] = '\0';
	}
	if (strncmp(v->seen[i].step, step, WAIT_STEP_SIZE - 1) == 0)
		return 0;
	if (str_copy(v->seen[i].step, WAIT_STEP_SIZE, step))
		memcpy(v->seen[i].step, step, WAIT_STEP_SIZE - 1), v->seen[i].step[WAIT_STEP_SIZE - 1] = '\0';
	return 1;
}

/*
 * Shows the machines of one poll. Plain: a line for each machine whose step
 * changed (waiting is not news). Terminal: a machine that passed or rolled
 * back gets a line of its own; the one being replaced or watched is the live
 * line, its countdown rewritten in place.
 */
static void show_machines(struct wait_view *v, const json_t *machines)
{
	const char *live = NULL;
	char live_line[FORMAT_STEP_SIZE] = "";
	size_t i;
	json_t *m;

	json_array_foreach(machines, i, m) {
		const char *id = client_str(m, "id"), *step = client_str(m, "step");
		json_t *left = json_object_get(m, "grace_left_ms");
		char line[FORMAT_STEP_SIZE];
		if (!id || !step || strcmp(step, "waiting") == 0)
			continue;
		if (format_machine_step(id, step, json_is_integer(left) ? json_integer_value(left) : 0, line,
					sizeof(line)))
			continue;
		int changed = step_changed(v, id, step);
		int active = strcmp(step, "replacing") == 0 || strcmp(step, "watching") == 0;
		if (v->live && active) {
			if (!live) {
				memcpy(live_line, line, strlen(line) + 1);
				live = live_line;
			}
			continue;
		}
		if (!changed)
			continue;
		live_clear(v);
		printf("%s\n", line);
	}
	if (live)
		live_show(v, live);
	else
		live_clear(v);
	fflush(stdout);
}

/* The whole reason of a failed release on stderr, safe for a terminal. */
static void print_failure(int64_t version, const char *reason)
{
	struct buf b;
	buf_init(&b, WAIT_REASON_MAX);
	if (!reason || format_terminal_text(reason, &b))
		buf_reset(&b);
	while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\t' || b.ptr[b.len - 1] == ' '))
		b.ptr[--b.len] = '\0';
	fprintf(stderr, "Release v%" PRId64 " failed: %s\n", version, b.len ? b.ptr : "(no reason given)");
	buf_release(&b);
}

/* Ctrl-C: the release goes on without us. */
static enum coffer_err stop_waiting(struct wait_view *v, const struct client *c, int64_t version)
{
	live_clear(v);
	fprintf(stderr, "Stopped waiting: release v%" PRId64 " keeps going on the api. Follow it with "
			"'coffer releases -a %s'\n",
		version, c->app);
	interrupted = 1;
	return COFFER_ERR_UNAVAILABLE;
}

enum coffer_err client_wait_release(struct client *c, int64_t version)
{
	struct wait_view *v = calloc(1, sizeof(*v));
	struct sigaction sa, old;
	char path[CLIENT_PATH_MAX], suffix[CLIENT_SEGMENT_MAX];
	json_t *r = NULL;
	int64_t unreachable_since = 0;
	enum coffer_err rc;

	if (!v)
		return client_error(COFFER_ERR_NOMEM, "out of memory");
	v->live = isatty(STDOUT_FILENO);
	rc = fmt_into(suffix, sizeof(suffix), "/releases/%" PRId64, version);
	if (!rc)
		rc = client_path(path, sizeof(path), "/v1/apps/", c->app, suffix);
	if (rc) {
		free(v);
		return rc;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	got_sigint = 0;
	sigaction(SIGINT, &sa, &old);
	live_view = v;
	c->quiet_unreachable = 1;
	for (;;) {
		rc = client_call(c, "GET", path, NULL, &r);
		if (rc && c->unreachable && !got_sigint) {
			int64_t now = now_ms();
			if (!unreachable_since) {
				unreachable_since = now;
				live_clear(v);
				fprintf(stderr, "coffer: cannot reach the API at %s; trying again for %ds\n", c->api_url,
					CLIENT_WAIT_UNREACHABLE_MS / MS_PER_S);
			}
			if (now - unreachable_since < CLIENT_WAIT_UNREACHABLE_MS) {
				nap_ms(CLIENT_WAIT_POLL_MS);
				if (!got_sigint)
					continue;
			} else {
				client_error(rc, "cannot reach the API at %s: release v%" PRId64 " may still be in "
						 "progress; check 'coffer releases -a %s'", c->api_url, version, c->app);
				break;
			}
		}
		if (rc && got_sigint) {
			rc = stop_waiting(v, c, version);
			break;
		}
		if (rc)
			break;
		if (unreachable_since) {
			unreachable_since = 0;
			fprintf(stderr, "coffer: the API answers again\n");
		}
		const char *status = client_str(r, "status");
		json_t *machines = json_object_get(r, "machines");
		if (!status) {
			rc = client_bad_answer("a release without \"status\"");
			break;
		}
		if (json_is_array(machines))
			show_machines(v, machines);
		if (strcmp(status, "succeeded") == 0) {
			live_clear(v);
			printf("Release v%" PRId64 " succeeded\n", version);
			break;
		}
		if (strcmp(status, "failed") == 0) {
			live_clear(v);
			fflush(stdout);
			print_failure(version, client_str(r, "reason"));
			rc = COFFER_ERR_INTERNAL;
			break;
		}
		if (strcmp(status, "pending") != 0 && strcmp(status, "running") != 0) {
			live_clear(v);
			rc = client_bad_answer("a release status that is none of pending, running, succeeded, failed");
			break;
		}
		json_decref(r);
		r = NULL;
		nap_ms(CLIENT_WAIT_POLL_MS);
		if (got_sigint) {
			rc = stop_waiting(v, c, version);
			break;
		}
	}
	c->quiet_unreachable = 0;
	live_view = NULL;
	sigaction(SIGINT, &old, NULL);
	fflush(stdout);
	json_decref(r);
	free(v);
	return rc;
}

enum coffer_err client_follow_release(struct client *c, const json_t *ans, int detach)
{
	json_t *rel = json_object_get(ans, "release"), *sv = json_object_get(ans, "version");
	if (!json_is_integer(rel) || json_integer_value(rel) <= 0)
		return client_bad_answer("no \"release\" version");
	int64_t version = (int64_t)json_integer_value(rel);
	if (json_is_integer(sv) && json_integer_value(sv) > 0)
		printf("Release v%" PRId64 " created with secrets version %" JSON_INTEGER_FORMAT "\n", version,
		       json_integer_value(sv));
	else
		printf("Release v%" PRId64 " created\n", version);
	if (detach) {
		printf("Follow release v%" PRId64 " with 'coffer releases -a %s'\n", version, c->app);
		return COFFER_OK;
	}
	fflush(stdout);
	return client_wait_release(c, version);
}
