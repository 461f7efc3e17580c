/*
 * cmd_secrets.c — `coffer secrets set|unset|import|list|deploy`.
 *
 * Values go from argv, stdin or a .env document into struct secret (argv
 * copies are blanked at once), then are sealed to the app's key here, each
 * with its keyed digest, and the change's manifest is signed (sign.h): the
 * api never receives a value. Nothing here prints a value.
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
#include "digest.h"
#include "dotenv.h"
#include "encode.h"
#include "format.h"
#include "sign.h"
#include "store.h"
#include "vault.h"
#include "banned.h"

#define VERSION_TEXT 24
#define INVALID_NAME "argument %d: invalid name (letters, digits and '_', not starting with a digit)"

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

/* One value of the change, sealed: {"sealed", "digest", "value_id"}; *change points into item (the caller's). */
static enum coffer_err seal_one(const struct sign_state *st, const struct dotenv_entry *e, char value_id[STORE_ID_SIZE],
				char digest[DIGEST_HEX_LEN + 1], json_t **item)
{
	struct buf sealed, b64;
	enum coffer_err rc;

	if (secret_len(e->value) > DOTENV_VALUE_MAX)
		return client_error(COFFER_ERR_TOO_LARGE, "the value of '%s' is larger than %zu bytes", e->name,
				    DOTENV_VALUE_MAX);
	if (secret_has_nul(e->value))
		return client_error(COFFER_ERR_INVALID, "the value of '%s' holds a NUL byte", e->name);
	store_new_id(value_id);
	buf_init(&sealed, DOTENV_VALUE_MAX + VAULT_SEAL_OVERHEAD);
	buf_init(&b64, 2 * (DOTENV_VALUE_MAX + VAULT_SEAL_OVERHEAD));
	rc = vault_seal_value(st->pk, st->app_id, e->name, st->key_version, value_id, e->value, &sealed);
	if (!rc)
		rc = digest_value(st->digest_key, e->value, digest);
	if (!rc)
		rc = b64url_encode(sealed.ptr, sealed.len, &b64);
	if (!rc) {
		*item = json_pack("{s:s%,s:s,s:s}", "sealed", b64.ptr, b64.len, "digest", digest, "value_id", value_id);
		if (!*item)
			rc = COFFER_ERR_NOMEM;
	}
	buf_release(&b64);
	buf_release(&sealed);
	return rc ? client_error(rc, "cannot seal the value of '%s': %s", e->name, coffer_strerror(rc)) : COFFER_OK;
}

/*
 * The body of a change (sign.h): every value sealed to the app's key, the
 * manifest of the version it makes signed, and the statement of the
 * release it makes when the app runs one (not --stage).
 */
static enum coffer_err fill_change(struct client *c, struct sign_state *st, void *arg, json_t **out,
				   const char **suffix)
{
	const struct dotenv *d = arg;
	int stage = client_flag(c, "stage"), roll = !stage && st->has_release;
	struct store_secret_change *changes = calloc(d->n ? d->n : 1, sizeof(*changes));
	char(*ids)[STORE_ID_SIZE] = calloc(d->n ? d->n : 1, sizeof(*ids));
	char(*digests)[DIGEST_HEX_LEN + 1] = calloc(d->n ? d->n : 1, sizeof(*digests));
	json_t *body = json_pack("{s:{},s:b,s:I}", "secrets", "stage", stage, "key_version", (json_int_t)st->key_version);
	json_t *secrets = json_object_get(body, "secrets");
	struct buf manifest;
	enum coffer_err rc = changes && ids && digests && body ? COFFER_OK : client_error(COFFER_ERR_NOMEM, "out of memory");

	*suffix = "/secrets";
	buf_init(&manifest, STORE_MANIFEST_MAX);
	if (!rc)
		rc = sign_check_head(st);
	if (!rc && roll)
		rc = sign_check_release(st);
	for (size_t i = 0; !rc && i < d->n; i++) {
		const struct dotenv_entry *e = &d->entries[i];
		json_t *item = json_null();
		changes[i].name = e->name;
		changes[i].remove = !e->value;
		if (e->value) {
			rc = seal_one(st, e, ids[i], digests[i], &item);
			changes[i].value_id = ids[i];
			changes[i].digest = digests[i];
			changes[i].ciphertext_len = 0;
		}
		if (!rc && json_object_set_new(secrets, e->name, item))
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	}
	if (!rc) {
		rc = store_manifest_next(st->app_id, st->head_version, st->head_manifest, st->next_version, changes, d->n,
					 &manifest);
		if (rc)
			client_error(rc, "cannot make the manifest of secrets version %llu: %s",
				     (unsigned long long)st->next_version, coffer_strerror(rc));
	}
	if (!rc)
		rc = sign_text(st, manifest.ptr, manifest.len, body, "manifest");
	if (!rc && roll)
		rc = sign_release(st, st->config, st->next_version, manifest.ptr, body);
	buf_release(&manifest);
	free(digests);
	free(ids);
	free(changes);
	if (rc)
		json_decref(body);
	else
		*out = body;
	return rc;
}

/* Sends the change in d, sealed and signed: POST /v1/apps/:app/secrets. */
static enum coffer_err send_change(struct client *c, struct dotenv *d)
{
	json_t *ans = NULL;
	enum coffer_err rc = sign_run(c, fill_change, d, &ans);
	if (!rc) {
		dotenv_release(d); /* the values are not kept while waiting for the release */
		rc = outcome(c, ans, client_flag(c, "stage"), 0, c->detach);
	}
	json_decref(ans);
	return rc;
}

/* NAME (value v, or NULL to unset it) into the change d. */
static enum coffer_err put_name(struct dotenv *d, const char *name, struct secret *v)
{
	enum coffer_err rc = dotenv_put(d, name, strlen(name), v);
	if (rc)
		client_error(rc, "%s", rc == COFFER_ERR_TOO_LARGE ? "too many names" : coffer_strerror(rc));
	return rc;
}

/* Blanks the value of each NAME=VALUE in argv[1..n] (a whole argument without '='), so that ps no longer shows it. */
static void blank_values(int n, char **argv)
{
	for (int k = 1; k <= n; k++) {
		char *eq = strchr(argv[k], '=');
		client_blank_arg(eq ? eq + 1 : argv[k]);
	}
}

/* The scrub of `secrets set` (cli.h): every argument may be a value. */
static void scrub_set(int argc, char **argv)
{
	blank_values(argc - 1, argv);
}

/* The scrub of `secrets unset`: a NAME=VALUE typed by mistake keeps its value out of ps. */
static void scrub_unset(int argc, char **argv)
{
	for (int k = 1; k < argc; k++) {
		char *eq = strchr(argv[k], '=');
		if (eq)
			client_blank_arg(eq + 1);
	}
}

/*
 * Reads the one NAME=- value from standard input: one final newline (LF or
 * CRLF) is dropped, as `echo s3cret |` adds it, unless raw.
 */
static enum coffer_err value_from_stdin(const char *name, int raw, struct secret **out)
{
	struct secret *v = NULL;
	enum coffer_err rc = dotenv_read(stdin, DOTENV_VALUE_MAX + 2, &v);
	size_t len = v ? secret_len(v) : 0;

	if (!rc && !raw && len && secret_cbytes(v)[len - 1] == '\n') {
		len -= 1 + (len > 1 && secret_cbytes(v)[len - 2] == '\r');
		rc = secret_truncate(v, len);
	}
	if (!rc && secret_len(v) > DOTENV_VALUE_MAX)
		rc = COFFER_ERR_TOO_LARGE;
	if (rc)
		secret_free(v);
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
 */
static enum coffer_err take_pairs(struct client *c, int n, char **argv, struct dotenv *d)
{
	int stdin_arg = 0, overridden = 0;
	char stdin_name[DOTENV_NAME_MAX + 1] = "";
	enum coffer_err rc = COFFER_OK;

	for (int k = 1; k <= n && !rc; k++) {
		char *arg = argv[k], *eq = strchr(arg, '=');
		struct secret *v = NULL;
		char name[DOTENV_NAME_MAX + 1];

		/* the argument is never echoed: it may be a value typed by mistake */
		if (!eq) {
			rc = client_usage_error(c, "argument %d: expected NAME=VALUE", k);
			break;
		}
		size_t len = (size_t)(eq - arg);
		if (!dotenv_name_valid(arg, len)) {
			rc = client_usage_error(c, INVALID_NAME, k);
			break;
		}
		memcpy(name, arg, len);
		name[len] = '\0';
		if (strcmp(eq + 1, "-") == 0) {
			if (stdin_arg) {
				rc = client_usage_error(c, "argument %d: only one NAME=- may read standard input", k);
				break;
			}
			if (isatty(STDIN_FILENO)) {
				rc = client_usage_error(c, "argument %d: %s=- reads the value from standard input, "
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
			rc = rc == COFFER_ERR_TOO_LARGE
				     ? client_error(rc, "more than %d names in one change", DOTENV_ENTRIES_MAX)
				     : client_error(rc, "%s", coffer_strerror(rc));
			break;
		}
		if (stdin_arg && strcmp(name, stdin_name) == 0)
			overridden = 1; /* a later NAME=VALUE wins over NAME=- */
	}
	blank_values(n, argv);
	if (!rc && stdin_arg && !overridden) {
		struct secret *v = NULL;
		rc = value_from_stdin(stdin_name, client_flag(c, "raw"), &v);
		if (!rc)
			rc = put_name(d, stdin_name, v);
	}
	return rc;
}

/* How a change is filled from the command line (set, unset, import). */
typedef enum coffer_err (*change_fill_fn)(struct client *c, int argc, char **argv, struct dotenv *d);

/* A change: filled by fill, then sent (and its release followed). */
static enum coffer_err run_change(struct client *c, int argc, char **argv, change_fill_fn fill)
{
	struct dotenv d;
	enum coffer_err rc;

	dotenv_init(&d);
	rc = fill(c, argc, argv, &d);
	if (!rc)
		rc = send_change(c, &d);
	dotenv_release(&d);
	return rc;
}

static enum coffer_err fill_set(struct client *c, int argc, char **argv, struct dotenv *d)
{
	return take_pairs(c, argc - 1, argv, d);
}

static enum coffer_err fill_unset(struct client *c, int argc, char **argv, struct dotenv *d)
{
	for (int k = 1; k < argc; k++) {
		if (!dotenv_name_valid(argv[k], strlen(argv[k])))
			return client_usage_error(c, INVALID_NAME, k);
		enum coffer_err rc = put_name(d, argv[k], NULL);
		if (rc)
			return rc;
	}
	return COFFER_OK;
}

/* A value of the .env document cut at " #": said, since the value may have lost it (never the value). */
static void note_comment(void *ctx, size_t line, const char *name, size_t len)
{
	(void)ctx;
	fprintf(stderr, "coffer: note: line %zu: the text of %.*s after ' #' is read as a comment; "
			"quote the value if it belongs to it\n",
		line, (int)len, name);
}

static enum coffer_err fill_import(struct client *c, int argc, char **argv, struct dotenv *d)
{
	struct dotenv_error err = { 0, "" };
	enum coffer_err rc;

	(void)argc, (void)argv;
	if (isatty(STDIN_FILENO))
		return client_usage_error(c, "standard input is a terminal: redirect a .env file or pipe it in");
	d->note = note_comment;
	rc = dotenv_parse_file(stdin, d, &err);
	if (rc)
		return client_error(rc, "%s", err.message[0] ? err.message : coffer_strerror(rc));
	if (d->n == 0)
		return client_error(COFFER_ERR_INVALID, "no NAME=VALUE line on standard input");
	return COFFER_OK;
}

static enum coffer_err secrets_set(struct client *c, int argc, char **argv)
{
	return run_change(c, argc, argv, fill_set);
}

static enum coffer_err secrets_unset(struct client *c, int argc, char **argv)
{
	return run_change(c, argc, argv, fill_unset);
}

static enum coffer_err secrets_import(struct client *c, int argc, char **argv)
{
	return run_change(c, argc, argv, fill_import);
}

static int by_name(const void *a, const void *b)
{
	const char *x = client_str(*(json_t *const *)a, "name"), *y = client_str(*(json_t *const *)b, "name");
	return strcmp(x ? x : "", y ? y : "");
}

/* The list as `--json` shows it: exactly name, digest, status, created_at, updated_at. */
static enum coffer_err print_list_json(const json_t *rows)
{
	size_t n = json_array_size(rows);
	static const char *const fields[] = { "name", "digest", "status", "created_at", "updated_at" };
	enum coffer_err rc = COFFER_OK;
	json_t *list = json_array();

	for (size_t i = 0; list && i < n && !rc; i++) {
		json_t *o = json_object();
		for (size_t f = 0; o && f < sizeof(fields) / sizeof(fields[0]); f++) {
			json_t *v = json_object_get(json_array_get(rows, i), fields[f]);
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

/* The api's status of a name (docs/API.md), as the table shows it (flyctl's words where it has them). */
static const char *status_text(const char *status)
{
	static const char *const words[][2] = { { "deployed", "Deployed" }, { "staged", "Staged" },
						{ "unset", "Staged unset" }, { "partial", "Partial" },
						{ "failed", "Failed" } };
	if (!status)
		return "-";
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(status, words[i][0]) == 0)
			return words[i][1];
	return status;
}

static void secret_row(const json_t *item, int64_t now, const char **cells, char (*scratch)[CLIENT_CELL_SIZE])
{
	const char *when = client_str(item, "updated_at");
	format_when(when ? when : client_str(item, "created_at"), now, "-", scratch[3], CLIENT_CELL_SIZE);
	cells[0] = client_str(item, "name");
	cells[1] = client_str(item, "digest");
	cells[2] = status_text(client_str(item, "status"));
	cells[3] = scratch[3];
}

/* The secrets of the answer, sorted by name, into *out (the caller's to json_decref). */
static enum coffer_err sorted_secrets(const json_t *ans, json_t **out)
{
	json_t *list = NULL, **rows = NULL, *sorted = NULL;
	size_t n;
	enum coffer_err rc = COFFER_OK;

	if (json_get_array(ans, "secrets", 1, &list, NULL))
		return client_bad_answer("no \"secrets\" list");
	n = json_array_size(list);
	rows = calloc(n ? n : 1, sizeof(*rows));
	sorted = json_array();
	if (!rows || !sorted)
		rc = COFFER_ERR_NOMEM;
	for (size_t i = 0; !rc && i < n; i++)
		rows[i] = json_array_get(list, i);
	if (!rc)
		qsort(rows, n, sizeof(*rows), by_name);
	for (size_t i = 0; !rc && i < n; i++)
		if (json_array_append(sorted, rows[i]))
			rc = COFFER_ERR_NOMEM;
	free(rows);
	if (rc) {
		json_decref(sorted);
		return client_error(rc, "out of memory");
	}
	*out = sorted;
	return COFFER_OK;
}

/*
 * The hint under a list with staged secrets: a command that works from
 * where the app is ('secrets deploy' needs a release to redeploy; before
 * the first one, 'coffer deploy' takes them).
 */
static enum coffer_err staged_hint(struct client *c, size_t staged)
{
	char path[CLIENT_PATH_MAX];
	json_t *st = NULL, *release;
	enum coffer_err rc = client_path(path, sizeof(path), "/v1/apps/", c->app, "/status");

	if (!rc)
		rc = client_call(c, "GET", path, NULL, &st);
	if (rc)
		return rc;
	release = json_object_get(st, "current_release");
	if (json_is_integer(release) && json_integer_value(release) > 0)
		printf("\n%zu staged secret%s not on the app's machines yet: deploy with "
		       "'coffer secrets deploy -a %s'\n",
		       staged, staged == 1 ? " is" : "s are", c->app);
	else
		printf("\n%zu staged secret%s for the app's first deployment: 'coffer deploy -a %s -- COMMAND' "
		       "starts its machines with them\n",
		       staged, staged == 1 ? " is" : "s are", c->app);
	json_decref(st);
	return COFFER_OK;
}

static enum coffer_err secrets_list(struct client *c, int argc, char **argv)
{
	static const char *const headers[] = { "NAME", "DIGEST", "STATUS", "DATE" };
	struct buf out;
	char path[CLIENT_PATH_MAX];
	json_t *ans = NULL, *rows = NULL, *item;
	size_t staged = 0, i;
	enum coffer_err rc = client_path(path, sizeof(path), "/v1/apps/", c->app, "/secrets");

	(void)argc, (void)argv;
	buf_init(&out, BUF_MAX_DEFAULT * 16);
	if (!rc)
		rc = client_call(c, "GET", path, NULL, &ans);
	if (!rc)
		rc = sorted_secrets(ans, &rows);
	if (!rc && c->json) {
		rc = print_list_json(rows);
		goto out;
	}
	if (!rc)
		rc = client_table(rows, headers, 4, secret_row, &out);
	if (rc)
		goto out;
	json_array_foreach(rows, i, item) {
		const char *status = client_str(item, "status");
		if (status && (strcmp(status, "staged") == 0 || strcmp(status, "unset") == 0))
			staged++;
	}
	fwrite(out.ptr, 1, out.len, stdout);
	if (staged)
		rc = staged_hint(c, staged);
out:
	buf_release(&out);
	json_decref(rows);
	json_decref(ans);
	return rc;
}

static void history_row(const json_t *item, int64_t now, const char **cells, char (*scratch)[CLIENT_CELL_SIZE])
{
	json_t *v = json_object_get(item, "version");
	const char *action = client_str(item, "action");
	if (!json_is_integer(v) || fmt_into(scratch[0], CLIENT_CELL_SIZE, "%" JSON_INTEGER_FORMAT, json_integer_value(v)))
		scratch[0][0] = '\0';
	format_when(client_str(item, "created_at"), now, "-", scratch[4], CLIENT_CELL_SIZE);
	cells[0] = scratch[0];
	cells[1] = action && strcmp(action, "unset") == 0 ? "unset" : client_str(item, "digest");
	cells[2] = client_str(item, "status");
	cells[3] = client_str(item, "actor");
	cells[4] = scratch[4];
}

/* `secrets history NAME`: every secrets version that set or unset NAME, oldest first. */
static enum coffer_err secrets_history(struct client *c, int argc, char **argv)
{
	static const char *const headers[] = { "VERSION", "DIGEST", "STATUS", "BY", "DATE" };
	char path[CLIENT_PATH_MAX], tail[STORE_NAME_SIZE + 32];
	struct buf out;
	json_t *ans = NULL, *list = NULL;
	enum coffer_err rc = COFFER_OK;

	(void)argc;
	if (!dotenv_name_valid(argv[1], strlen(argv[1])) || strlen(argv[1]) > STORE_NAME_MAX)
		return client_usage_error(c, INVALID_NAME, 1);
	buf_init(&out, BUF_MAX_DEFAULT * 16);
	if (fmt_into(tail, sizeof(tail), "/secrets/%s/history", argv[1]))
		rc = client_error(COFFER_ERR_INTERNAL, "path too long");
	if (!rc)
		rc = client_path(path, sizeof(path), "/v1/apps/", c->app, tail);
	if (!rc)
		rc = client_call(c, "GET", path, NULL, &ans);
	if (!rc && json_get_array(ans, "history", 1, &list, NULL))
		rc = client_bad_answer("no \"history\" list");
	if (!rc && c->json)
		rc = client_print_json(list);
	else if (!rc && json_array_size(list) == 0)
		printf("app '%s' never had a secret '%s'\n", c->app, argv[1]);
	else if (!rc)
		rc = client_table(list, headers, 5, history_row, &out);
	if (!rc && !c->json)
		fwrite(out.ptr, 1, out.len, stdout);
	buf_release(&out);
	json_decref(ans);
	return rc;
}

/* The body of `secrets deploy`: the current config with the head, signed. */
static enum coffer_err fill_deploy(struct client *c, struct sign_state *st, void *arg, json_t **out,
				   const char **suffix)
{
	json_t *body = json_object();
	enum coffer_err rc = body ? COFFER_OK : client_error(COFFER_ERR_NOMEM, "out of memory");

	(void)c, (void)arg;
	*suffix = "/secrets/deploy";
	if (!rc && st->has_release) { /* without one, the api says there is nothing to deploy to */
		rc = sign_check_release(st);
		if (!rc)
			rc = sign_check_head(st);
		if (!rc)
			rc = sign_release(st, st->config, st->head_version, st->head_manifest, body);
	}
	if (rc)
		json_decref(body);
	else
		*out = body;
	return rc;
}

static enum coffer_err secrets_deploy(struct client *c, int argc, char **argv)
{
	json_t *ans = NULL;
	enum coffer_err rc = sign_run(c, fill_deploy, NULL, &ans);

	(void)argc, (void)argv;
	if (!rc)
		rc = outcome(c, ans, 0, 1, c->detach);
	json_decref(ans);
	return rc;
}

/* ---- secrets verify ---- */

struct verify_arg {
	const char *name;
	struct secret *candidate;
	char suffix[STORE_NAME_SIZE + 32];
};

/* The body of a verify: the candidate sealed to the app's key as a set seals a value, for VAULT_VERIFY_VALUE_ID. */
static enum coffer_err fill_verify(struct client *c, struct sign_state *st, void *arg, json_t **out,
				   const char **suffix)
{
	struct verify_arg *va = arg;
	struct buf sealed, b64;
	enum coffer_err rc;

	(void)c;
	*suffix = va->suffix;
	buf_init(&sealed, DOTENV_VALUE_MAX + VAULT_SEAL_OVERHEAD);
	buf_init(&b64, 2 * (DOTENV_VALUE_MAX + VAULT_SEAL_OVERHEAD));
	rc = vault_seal_value(st->pk, st->app_id, va->name, st->key_version, VAULT_VERIFY_VALUE_ID, va->candidate,
			      &sealed);
	if (!rc)
		rc = b64url_encode(sealed.ptr, sealed.len, &b64);
	if (!rc && !(*out = json_pack("{s:s%,s:I}", "sealed", b64.ptr, b64.len, "key_version",
				      (json_int_t)st->key_version)))
		rc = COFFER_ERR_NOMEM;
	buf_release(&b64);
	buf_release(&sealed);
	return rc ? client_error(rc, "cannot seal the candidate for '%s': %s", va->name, coffer_strerror(rc))
		  : COFFER_OK;
}

/* `secrets verify NAME`: the candidate from stdin, sealed here; the keeper compares; "matches" or "does not match". */
static enum coffer_err secrets_verify(struct client *c, int argc, char **argv)
{
	struct verify_arg va = { .name = argv[1] };
	json_t *ans = NULL;
	enum coffer_err rc;

	(void)argc;
	if (!dotenv_name_valid(va.name, strlen(va.name)) || strlen(va.name) > DOTENV_NAME_MAX)
		return client_usage_error(c, "NAME must be letters, digits and '_', not starting with a digit");
	if (fmt_into(va.suffix, sizeof(va.suffix), "/secrets/%s/verify", va.name))
		return client_usage_error(c, "NAME is too long");
	rc = value_from_stdin(va.name, client_flag(c, "raw"), &va.candidate);
	if (!rc)
		rc = sign_run(c, fill_verify, &va, &ans);
	secret_free(va.candidate);
	if (!rc && !json_is_boolean(json_object_get(ans, "match")))
		rc = client_bad_answer("secrets verify");
	if (!rc) {
		int match = json_is_true(json_object_get(ans, "match"));
		printf("%s\n", match ? "matches" : "does not match");
		rc = match ? COFFER_OK : COFFER_ERR_CRYPTO;
	}
	json_decref(ans);
	return rc;
}

/* What set, unset and import take beyond their flags. */
static const struct cli_opt change_opts[] = {
	{ "stage", 0, OPTS_FLAG, NULL, "record the change without deploying it ('coffer secrets deploy')" },
	{ NULL, 0, OPTS_FLAG, NULL, NULL },
};
static const struct cli_opt set_opts[] = {
	{ "stage", 0, OPTS_FLAG, NULL, "record the change without deploying it ('coffer secrets deploy')" },
	{ "raw", 0, OPTS_FLAG, NULL, "NAME=-: keep a final newline of standard input (the value byte for byte)" },
	{ NULL, 0, OPTS_FLAG, NULL, NULL },
};
#define CHANGE_FLAGS (CLI_NEED_APP | CLI_NEED_API | CLI_DETACH)
static const struct cli_opt verify_opts[] = {
	{ "raw", 0, OPTS_FLAG, NULL, "keep a final newline of standard input (the candidate byte for byte)" },
	{ NULL, 0, OPTS_FLAG, NULL, NULL },
};

static const struct cli_cmd secrets_cmds[] = {
	{ .name = "set", .run = secrets_set, .scrub = scrub_set, .flags = CHANGE_FLAGS, .opts = set_opts,
	  .usage = "secrets set [-a APP] [--stage] [--detach] [--raw] NAME=VALUE ...",
	  .min_args = 1, .max_args = CLI_ARGS_ANY, .args_error = "expected NAME=VALUE",
	  .help = "Sets secrets of an app, all in one change: every one of them or none.\n"
		  "When the app runs a release, the change makes a new one and this waits\n"
		  "for it (--stage: no release; --detach: do not wait).\n"
		  "Each argument is split at its first '=': a value may hold '=', and NAME=\n"
		  "sets an empty value. A name given twice: the last value wins. NAME=- reads\n"
		  "that value from standard input (at most 64 KiB, not from a terminal; one\n"
		  "NAME=- at most); one final newline is dropped, as 'echo VALUE |' adds it\n"
		  "(--raw: kept, the value byte for byte). Values on the command line are\n"
		  "blanked in the process's arguments once read, but your shell may keep\n"
		  "them in its history: prefer NAME=- or 'coffer secrets import'.\n" },
	{ .name = "unset", .run = secrets_unset, .scrub = scrub_unset, .flags = CHANGE_FLAGS, .opts = change_opts,
	  .usage = "secrets unset [-a APP] [--stage] [--detach] NAME ...",
	  .min_args = 1, .max_args = CLI_ARGS_ANY, .args_error = "expected NAME",
	  .help = "Unsets secrets of an app, all in one change. Unsetting a name the app does\n"
		  "not have is not an error.\n" },
	{ .name = "import", .run = secrets_import, .flags = CHANGE_FLAGS, .opts = change_opts,
	  .usage = "secrets import [-a APP] [--stage] [--detach] < FILE",
	  .args_error = "unexpected argument: the .env document is read from standard input",
	  .help = "Sets the secrets of a .env document read from standard input, all in one\n"
		  "change, read as most .env files are written (the npm dotenv package's\n"
		  "rules; docs/IMPORT.md lists where coffer differs, and why):\n"
		  "  # a comment line                 skipped, as are blank lines\n"
		  "  export A=x                       'export ' is allowed: A is x\n"
		  "  A = x                            blanks around '=' are allowed: x\n"
		  "  A=a=b                            split at the first '=': a=b\n"
		  "  A=value # note                   ' #' starts a comment: value (said on\n"
		  "                                   standard error; quote it to keep it)\n"
		  "  A=pass#word                      '#' after a character stays: pass#word\n"
		  "  A=\"a\\nb\"                         in \"...\" only \\n and \\r are escapes: a,\n"
		  "                                   a line break, b; A=\"a\\\"b\" is a\\\"b\n"
		  "  A='a\\nb'                         '...' and `...`: no escapes: a\\nb\n"
		  "  A=\"line 1                        a quoted value may run over several\n"
		  "  line 2\"                          lines: line 1, a line break, line 2\n"
		  "  A=\"\"\"                            a value on the lines up to the first\n"
		  "  line 1                           one ending with \"\"\" (no escapes)\n"
		  "  \"\"\"\n"
		  "A UTF-8 byte order mark at the start and CRLF line ends are fine. A name\n"
		  "given twice: the last value wins. Names are letters, digits and '_', not\n"
		  "starting with a digit. Errors name the line, never a value, and nothing\n"
		  "is stored.\n" },
	{ .name = "list", .alias = "ls", .run = secrets_list, .flags = CLI_NEED_APP | CLI_NEED_API | CLI_JSON,
	  .usage = "secrets list [-a APP] [--json]",
	  .json_help = "print [{name, digest, status, created_at, updated_at}]",
	  .help = "Lists an app's secrets: names, keyed digests of the values, status and\n"
		  "when each was last set. No command shows a value. STATUS is:\n"
		  "  Deployed      the app's machines run this value\n"
		  "  Staged        set, not deployed yet ('coffer secrets deploy')\n"
		  "  Staged unset  the machines still have it; unset, not deployed yet\n"
		  "  Partial       the release rolling out now brings this change\n"
		  "  Failed        the newest release, which brought this change, failed:\n"
		  "                the machines run the digest shown, or lack the name\n"
		  "--json has the same status in lower case: deployed, staged, unset,\n"
		  "partial, failed.\n" },
	{ .name = "history", .run = secrets_history, .flags = CLI_NEED_APP | CLI_NEED_API | CLI_JSON,
	  .usage = "secrets history NAME [-a APP] [--json]",
	  .min_args = 1, .max_args = 1, .args_error = "expected one NAME",
	  .json_help = "print [{version, action (set or unset), digest (null when unset), status, actor, created_at}]",
	  .help = "Lists every secrets version of an app that set or unset NAME, oldest\n"
		  "first: the version, the digest of the value it set (or 'unset'), the\n"
		  "version's status, who made it and when. Setting the same value again\n"
		  "shows the same digest. No command shows a value.\n" },
	{ .name = "verify", .run = secrets_verify, .flags = CLI_NEED_APP | CLI_NEED_API, .opts = verify_opts,
	  .usage = "secrets verify [-a APP] [--raw] NAME < CANDIDATE",
	  .min_args = 1, .max_args = 1, .args_error = "expected one NAME",
	  .help = "Says whether the value on standard input equals the stored value of NAME:\n"
		  "prints \"matches\" (exit 0) or \"does not match\" (exit 1), never a value.\n"
		  "One final newline of standard input is dropped, as 'echo VALUE |' adds it\n"
		  "(--raw: kept). The candidate is sealed here to the app's key, as a set seals\n"
		  "a value: only the keeper opens it, compares it with the stored value in\n"
		  "constant time and audits the try (the name and the outcome). At most 10\n"
		  "tries a minute per token and app (exit 7 past that); a read token cannot.\n" },
	{ .name = "deploy", .run = secrets_deploy, .flags = CLI_NEED_APP | CLI_NEED_API | CLI_DETACH,
	  .usage = "secrets deploy [-a APP] [--detach]",
	  .help = "Deploys the staged secrets of an app (see --stage of set, unset, import):\n"
		  "a release with the current command and the staged secrets, which replaces\n"
		  "the app's machines one at a time; this waits for it unless --detach.\n" },
	{ .name = "keys", .group = &cli_keys_group,
	  .usage = "secrets keys gen|list|rotate|rm [-a APP] [--type hmac-sha256|aead|ed25519] [NAME] [--json] [--yes]",
	  .help = "An app's KMS keys: see 'coffer secrets keys --help'.\n" },
};
static const struct cli_group secrets_group = CLI_GROUP("secrets", secrets_cmds);
const struct cli_cmd cli_secrets =
	CLI_NOUN("secrets", &secrets_group, "set, unset, import, list and deploy an app's secrets (values are never shown)");
