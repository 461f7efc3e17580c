/*
 * cmd_secrets.c — `coffer secrets set|unset|import|list|deploy`.
 *
 * Values go from argv, stdin or a .env document into struct secret (argv
 * copies are blanked at once), then into a request body built in secure
 * memory (dotenv_request_body); nothing here prints a value.
 *
 * A change (not --stage) to an app that runs a release, and `secrets
 * deploy`, make a release: the API answers {"release": V, ...} and the
 * command follows it like `coffer deploy` (client_follow_release).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "dotenv.h"
#include "format.h"
#include "banned.h"

#define VERSION_TEXT 24

#define APP_OPTION CLIENT_APP_OPTION
#define CHANGE_OPTIONS                                                                                  \
	APP_OPTION                                                                                      \
	"      --stage               record the change without deploying it ('coffer secrets deploy')\n" \
	"      --detach              return once the release is made, without waiting for it\n"

struct change_opts {
	int stage;
	int detach;
};

/* Prints what the API did with a change (set, unset, import, deploy). */
static enum coffer_err report(const struct client *c, const json_t *ans, int stage, int deploy)
{
	const char *status = client_str(ans, "status");
	json_t *v = json_object_get(ans, "version");
	char version[VERSION_TEXT] = "?";

	if (!status)
		return client_bad_answer("no \"status\"");
	if (json_is_integer(v) && fmt_into(version, sizeof(version), "%" JSON_INTEGER_FORMAT, json_integer_value(v)))
		version[0] = '\0';
	if (strcmp(status, "unchanged") == 0) {
		if (deploy)
			printf("Nothing staged to deploy: the app runs secrets version %s\n", version);
		else
			printf("Nothing changed: the secrets are already as given (version %s)\n", version);
	} else if (strcmp(status, "staged") == 0 && stage) {
		printf("Secrets are staged as version %s, not yet on the app's machines.\n"
		       "Deploy them with 'coffer secrets deploy -a %s'.\n",
		       version, c->app);
	} else if (strcmp(status, "staged") == 0) {
		printf("Secrets are staged for the first deployment (version %s)\n", version);
	} else if (strcmp(status, "deployed") == 0) {
		printf("Secrets version %s deployed\n", version);
	} else {
		char safe[VERSION_TEXT];
		size_t n = strlen(status) < sizeof(safe) - 1 ? strlen(status) : sizeof(safe) - 1;
		for (size_t i = 0; i < n; i++)
			safe[i] = status[i] < 0x20 || status[i] == 0x7f ? '?' : status[i];
		safe[n] = '\0';
		printf("Secrets version %s: %s\n", version, safe);
	}
	return COFFER_OK;
}

/* What the API did with a change: a release to follow ({"release": V}), or report(). */
static enum coffer_err outcome(struct client *c, const json_t *ans, int stage, int deploy, int detach)
{
	if (json_is_integer(json_object_get(ans, "release")))
		return client_follow_release(c, ans, detach);
	return report(c, ans, stage, deploy);
}

/* Sends the change in d: POST /v1/apps/:app/secrets. */
static enum coffer_err send_change(struct client *c, const struct dotenv *d, const struct change_opts *o)
{
	struct secret *body = NULL;
	struct dotenv_error err = { 0, "" };
	char path[CLIENT_PATH_MAX];
	json_t *ans = NULL;
	enum coffer_err rc;

	rc = dotenv_request_body(d, o->stage, &body, &err);
	if (rc)
		client_error(rc, "%s", err.message[0] ? err.message : coffer_strerror(rc));
	if (!rc)
		rc = client_path(path, sizeof(path), "/v1/apps/", c->app, "/secrets");
	if (!rc)
		rc = client_call_secret(c, "POST", path, body, &ans);
	secret_free(body); /* the values are not kept while waiting for the release */
	body = NULL;
	if (!rc)
		rc = outcome(c, ans, o->stage, 0, o->detach);
	json_decref(ans);
	secret_free(body);
	return rc;
}

/* Reads the one NAME=- value from standard input. */
static enum coffer_err value_from_stdin(const char *name, struct secret **out)
{
	struct secret *v = NULL;
	enum coffer_err rc = dotenv_read(stdin, DOTENV_VALUE_MAX, &v);
	if (rc == COFFER_ERR_TOO_LARGE)
		return client_error(rc, "the value of '%s' on standard input is longer than %zu bytes", name,
				    DOTENV_VALUE_MAX);
	if (rc)
		return client_error(rc, "cannot read the value of '%s' from standard input: %s", name,
				    coffer_strerror(rc));
	if (secret_has_nul(v)) {
		secret_free(v);
		return client_error(COFFER_ERR_INVALID, "the value of '%s' on standard input holds a NUL byte", name);
	}
	*out = v;
	return COFFER_OK;
}

/*
 * NAME=VALUE arguments argv[1..n] into d. Each value is blanked in argv as
 * soon as it is copied (and every argument on the way out, whatever
 * happened), before the one NAME=- value, if any, is read from stdin.
 * Returns CLIENT_CONTINUE or the exit code.
 */
static int take_pairs(struct client *c, int n, char **argv, struct dotenv *d)
{
	int code = CLIENT_CONTINUE, stdin_arg = 0, overridden = 0;
	char stdin_name[DOTENV_NAME_MAX + 1] = "";
	enum coffer_err rc = COFFER_OK;

	for (int k = 1; k <= n && code == CLIENT_CONTINUE; k++) {
		char *arg = argv[k], *eq = strchr(arg, '=');
		struct secret *v = NULL;
		char name[DOTENV_NAME_MAX + 1];

		/* the argument is never echoed: it may be a value typed by mistake */
		if (!eq) {
			code = client_usage_error(c, "argument %d: expected NAME=VALUE", k);
			break;
		}
		size_t len = (size_t)(eq - arg);
		if (!dotenv_name_valid(arg, len)) {
			code = client_usage_error(c, "argument %d: invalid name (letters, digits and '_', not "
						     "starting with a digit)", k);
			break;
		}
		memcpy(name, arg, len);
		name[len] = '\0';
		if (strcmp(eq + 1, "-") == 0) {
			if (stdin_arg) {
				code = client_usage_error(c, "argument %d: only one NAME=- may read standard input", k);
				break;
			}
			if (isatty(STDIN_FILENO)) {
				code = client_usage_error(c, "argument %d: %s=- reads the value from standard input, "
							     "which is a terminal: pipe the value in", k, name);
				break;
			}
			stdin_arg = k;
			memcpy(stdin_name, name, len + 1);
			continue;
		}
		rc = secret_from(eq + 1, strlen(eq + 1), &v);
		client_blank_arg(eq + 1);
		if (!rc)
			rc = dotenv_put(d, name, len, v);
		if (rc) {
			code = client_exit(rc == COFFER_ERR_TOO_LARGE ? client_error(rc, "more than %d names in one change",
										      DOTENV_ENTRIES_MAX)
								     : client_error(rc, "%s", coffer_strerror(rc)));
			break;
		}
		if (stdin_arg && strcmp(name, stdin_name) == 0)
			overridden = 1; /* a later NAME=VALUE wins over NAME=- */
	}
	for (int k = 1; k <= n; k++) {
		char *eq = strchr(argv[k], '=');
		client_blank_arg(eq ? eq + 1 : argv[k]);
	}
	if (code == CLIENT_CONTINUE && stdin_arg && !overridden) {
		struct secret *v = NULL;
		rc = value_from_stdin(stdin_name, &v);
		if (!rc) {
			rc = dotenv_put(d, stdin_name, strlen(stdin_name), v);
			if (rc)
				client_error(rc, "%s", rc == COFFER_ERR_TOO_LARGE ? "too many names" : coffer_strerror(rc));
		}
		if (rc)
			code = client_exit(rc);
	}
	return code;
}

static int secrets_set(int argc, char **argv)
{
	struct client c;
	struct change_opts o = { 0, 0 };
	struct dotenv d;
	int n_pos = 0, code;
	enum coffer_err rc;
	const struct client_opt opts[] = {
		{ "app", 'a', CLIENT_OPT_VALUE, &c.app_flag },
		{ "stage", 0, CLIENT_OPT_FLAG, &o.stage },
		{ "detach", 0, CLIENT_OPT_FLAG, &o.detach },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};

	dotenv_init(&d);
	client_init(&c, "secrets set [-a APP] [--stage] [--detach] NAME=VALUE ...",
		    "Sets secrets of an app, all in one change: every one of them or none.\n"
		    "When the app runs a release, the change makes a new one and this waits\n"
		    "for it (--stage: no release; --detach: do not wait).\n"
		    "Each argument is split at its first '=': a value may hold '=', and NAME=\n"
		    "sets an empty value. A name given twice: the last value wins. NAME=- reads\n"
		    "that value from standard input (at most 64 KiB, not from a terminal; one\n"
		    "NAME=- at most), byte for byte: a final newline is part of it (printf '%s'\n"
		    "leaves none). Values on the command line are blanked in the process's\n"
		    "arguments once read, but your shell may keep them in its history: prefer\n"
		    "NAME=- or 'coffer secrets import'.\n",
		    CHANGE_OPTIONS);
	code = client_parse(&c, argc, argv, opts, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos < 1) {
		code = client_usage_error(&c, "expected NAME=VALUE");
		goto out;
	}
	rc = client_need_app(&c);
	if (!rc)
		rc = client_connect(&c);
	if (rc) {
		for (int k = 1; k <= n_pos; k++) { /* blank the values on every path */
			char *eq = strchr(argv[k], '=');
			client_blank_arg(eq ? eq + 1 : argv[k]);
		}
		code = client_exit(rc);
		goto out;
	}
	code = take_pairs(&c, n_pos, argv, &d);
	if (code != CLIENT_CONTINUE)
		goto out;
	code = client_exit(send_change(&c, &d, &o));
out:
	dotenv_release(&d);
	client_release(&c);
	return code;
}

static int secrets_unset(int argc, char **argv)
{
	struct client c;
	struct change_opts o = { 0, 0 };
	struct dotenv d;
	int n_pos = 0, code;
	enum coffer_err rc;
	const struct client_opt opts[] = {
		{ "app", 'a', CLIENT_OPT_VALUE, &c.app_flag },
		{ "stage", 0, CLIENT_OPT_FLAG, &o.stage },
		{ "detach", 0, CLIENT_OPT_FLAG, &o.detach },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};

	dotenv_init(&d);
	client_init(&c, "secrets unset [-a APP] [--stage] [--detach] NAME ...",
		    "Unsets secrets of an app, all in one change. Unsetting a name the app does\n"
		    "not have is not an error.\n",
		    CHANGE_OPTIONS);
	code = client_parse(&c, argc, argv, opts, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	for (int k = 1; k <= n_pos; k++) { /* NAME=VALUE typed here by mistake: keep the value out of ps */
		char *eq = strchr(argv[k], '=');
		if (eq)
			client_blank_arg(eq + 1);
	}
	if (n_pos < 1) {
		code = client_usage_error(&c, "expected NAME");
		goto out;
	}
	for (int k = 1; k <= n_pos; k++) {
		if (!dotenv_name_valid(argv[k], strlen(argv[k]))) {
			code = client_usage_error(&c, "argument %d: invalid name (letters, digits and '_', not "
						      "starting with a digit)", k);
			goto out;
		}
		rc = dotenv_put(&d, argv[k], strlen(argv[k]), NULL);
		if (rc) {
			code = client_exit(client_error(rc, "%s", rc == COFFER_ERR_TOO_LARGE ? "too many names"
										       : coffer_strerror(rc)));
			goto out;
		}
	}
	rc = client_need_app(&c);
	if (!rc)
		rc = client_connect(&c);
	if (!rc)
		rc = send_change(&c, &d, &o);
	code = client_exit(rc);
out:
	dotenv_release(&d);
	client_release(&c);
	return code;
}

static int secrets_import(int argc, char **argv)
{
	struct client c;
	struct change_opts o = { 0, 0 };
	struct dotenv d;
	struct dotenv_error err = { 0, "" };
	int n_pos = 0, code;
	enum coffer_err rc;
	const struct client_opt opts[] = {
		{ "app", 'a', CLIENT_OPT_VALUE, &c.app_flag },
		{ "stage", 0, CLIENT_OPT_FLAG, &o.stage },
		{ "detach", 0, CLIENT_OPT_FLAG, &o.detach },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};

	dotenv_init(&d);
	client_init(&c, "secrets import [-a APP] [--stage] [--detach] < FILE",
		    "Sets the secrets of a .env document read from standard input, all in one\n"
		    "change. Blank lines and '#' comment lines are skipped; an 'export ' prefix\n"
		    "and blanks around '=' are allowed; \"...\" (with \\n \\\" \\\\ escapes) and '...'\n"
		    "quotes are removed; a value starting with \"\"\" runs up to the first line\n"
		    "ending with \"\"\". '#' inside an unquoted value is part of the value. A name\n"
		    "given twice: the last value wins. Errors name the line, never a value.\n",
		    CHANGE_OPTIONS);
	code = client_parse(&c, argc, argv, opts, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos != 0) {
		code = client_usage_error(&c, "unexpected argument: the .env document is read from standard input");
		goto out;
	}
	if (isatty(STDIN_FILENO)) {
		code = client_usage_error(&c, "standard input is a terminal: redirect a .env file or pipe it in");
		goto out;
	}
	rc = client_need_app(&c);
	if (!rc)
		rc = client_connect(&c);
	if (!rc) {
		rc = dotenv_parse_file(stdin, &d, &err);
		if (rc)
			client_error(rc, "%s", err.message[0] ? err.message : coffer_strerror(rc));
	}
	if (!rc && d.n == 0)
		rc = client_error(COFFER_ERR_INVALID, "no NAME=VALUE line on standard input");
	if (!rc)
		rc = send_change(&c, &d, &o);
	code = client_exit(rc);
out:
	dotenv_release(&d);
	client_release(&c);
	return code;
}

static int by_name(const void *a, const void *b)
{
	const char *x = client_str(*(json_t *const *)a, "name"), *y = client_str(*(json_t *const *)b, "name");
	return strcmp(x ? x : "", y ? y : "");
}

/* The list as `--json` shows it: exactly name, digest, status, created_at, updated_at. */
static enum coffer_err print_list_json(json_t **rows, size_t n)
{
	static const char *const fields[] = { "name", "digest", "status", "created_at", "updated_at" };
	enum coffer_err rc = COFFER_OK;
	json_t *list = json_array();

	for (size_t i = 0; list && i < n && !rc; i++) {
		json_t *o = json_object();
		for (size_t f = 0; o && f < sizeof(fields) / sizeof(fields[0]); f++) {
			json_t *v = json_object_get(rows[i], fields[f]);
			if (json_object_set(o, fields[f], json_is_string(v) ? v : json_null())) {
				json_decref(o);
				o = NULL;
			}
		}
		if (!o || json_array_append_new(list, o))
			rc = COFFER_ERR_NOMEM;
	}
	if (!list || rc)
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	else
		rc = client_print_json(list);
	json_decref(list);
	return rc;
}

static const char *status_text(const char *status)
{
	if (!status)
		return "-";
	if (strcmp(status, "deployed") == 0)
		return "Deployed";
	if (strcmp(status, "staged") == 0)
		return "Staged";
	return status;
}

static int secrets_list(int argc, char **argv)
{
	static const char *const headers[] = { "NAME", "DIGEST", "STATUS", "DATE" };
	struct client c;
	struct format_table t = { 0 };
	struct buf out;
	char path[CLIENT_PATH_MAX];
	json_t *ans = NULL, *list = NULL, **rows = NULL;
	int n_pos = 0, json = 0, code;
	size_t n = 0, staged = 0;
	enum coffer_err rc;
	const struct client_opt opts[] = {
		{ "app", 'a', CLIENT_OPT_VALUE, &c.app_flag },
		{ "json", 0, CLIENT_OPT_FLAG, &json },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};

	buf_init(&out, BUF_MAX_DEFAULT * 16);
	client_init(&c, "secrets list [-a APP] [--json]",
		    "Lists an app's secrets: names, keyed digests of the values, status and\n"
		    "when each was last set. No command shows a value.\n",
		    APP_OPTION "      --json                print [{name, digest, status, created_at, updated_at}]\n");
	code = client_parse(&c, argc, argv, opts, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos != 0) {
		code = client_usage_error(&c, "unexpected argument");
		goto out;
	}
	rc = client_need_app(&c);
	if (!rc)
		rc = client_connect(&c);
	if (!rc)
		rc = client_path(path, sizeof(path), "/v1/apps/", c.app, "/secrets");
	if (!rc)
		rc = client_call(&c, "GET", path, NULL, &ans);
	if (!rc && json_get_array(ans, "secrets", 1, &list, NULL))
		rc = client_bad_answer("no \"secrets\" list");
	if (!rc) {
		n = json_array_size(list);
		rows = calloc(n ? n : 1, sizeof(*rows));
		if (!rows)
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; !rc && i < n; i++)
		rows[i] = json_array_get(list, i);
	if (!rc)
		qsort(rows, n, sizeof(*rows), by_name);
	if (!rc && json) {
		rc = print_list_json(rows, n);
		goto done;
	}
	if (!rc && format_table_init(&t, 4, headers))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; !rc && i < n; i++) {
		char date[FORMAT_RELATIVE_SIZE];
		const char *when = client_str(rows[i], "updated_at");
		const char *status = client_str(rows[i], "status");
		format_when(when ? when : client_str(rows[i], "created_at"), now, "-", date, sizeof(date));
		const char *row[] = { client_str(rows[i], "name"), client_str(rows[i], "digest"), status_text(status),
				      date };
		if (status && strcmp(status, "staged") == 0)
			staged++;
		if (format_table_add(&t, row))
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	}
	if (!rc && format_table_render(&t, &out))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	if (!rc) {
		fwrite(out.ptr, 1, out.len, stdout);
		if (staged)
			printf("\n%zu staged secret%s not on the app's machines yet: deploy with "
			       "'coffer secrets deploy -a %s'\n",
			       staged, staged == 1 ? " is" : "s are", c.app);
	}
done:
	code = client_exit(rc);
out:
	free(rows);
	format_table_release(&t);
	buf_release(&out);
	json_decref(ans);
	client_release(&c);
	return code;
}

static int secrets_deploy(int argc, char **argv)
{
	struct client c;
	struct change_opts o = { 0, 0 };
	char path[CLIENT_PATH_MAX];
	json_t *body = NULL, *ans = NULL;
	int n_pos = 0, code;
	enum coffer_err rc;
	const struct client_opt opts[] = {
		{ "app", 'a', CLIENT_OPT_VALUE, &c.app_flag },
		{ "detach", 0, CLIENT_OPT_FLAG, &o.detach },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};

	client_init(&c, "secrets deploy [-a APP] [--detach]",
		    "Deploys the staged secrets of an app (see --stage of set, unset, import):\n"
		    "a release with the current command and the staged secrets, which replaces\n"
		    "the app's machines one at a time; this waits for it unless --detach.\n",
		    APP_OPTION "      --detach              return once the release is made, without waiting for it\n");
	code = client_parse(&c, argc, argv, opts, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos != 0) {
		code = client_usage_error(&c, "unexpected argument");
		goto out;
	}
	rc = client_need_app(&c);
	if (!rc)
		rc = client_connect(&c);
	if (!rc)
		rc = client_path(path, sizeof(path), "/v1/apps/", c.app, "/secrets/deploy");
	if (!rc) {
		body = json_object();
		if (!body)
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	}
	if (!rc)
		rc = client_call(&c, "POST", path, body, &ans);
	if (!rc)
		rc = outcome(&c, ans, 0, 1, o.detach);
	code = client_exit(rc);
out:
	json_decref(ans);
	json_decref(body);
	client_release(&c);
	return code;
}

static const struct client_sub subs[] = {
	{ "set", secrets_set, "secrets set [-a APP] [--stage] [--detach] NAME=VALUE ..." },
	{ "unset", secrets_unset, "secrets unset [-a APP] [--stage] [--detach] NAME ..." },
	{ "import", secrets_import, "secrets import [-a APP] [--stage] [--detach] < FILE" },
	{ "list", secrets_list, "secrets list [-a APP] [--json]" },
	{ "ls", secrets_list, NULL },
	{ "deploy", secrets_deploy, "secrets deploy [-a APP] [--detach]" },
};

int cmd_secrets(int argc, char **argv)
{
	return client_dispatch("secrets", subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
