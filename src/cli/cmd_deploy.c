/*
 * cmd_deploy.c — `coffer deploy`, `coffer releases` and `coffer scale count`:
 * the commands that make an app's releases, or list them (docs/RUNPATH.md).
 *
 * A command that makes a release signs its statement with the deployer key
 * (sign.h) and follows it with client_follow_release: it waits
 * (client_wait_release) unless --detach.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "cli.h"
#include "client.h"
#include "dotenv.h"
#include "format.h"
#include "parse.h"
#include "release.h"
#include "sign.h"
#include "banned.h"

#define ENV_ECHO_MAX 64                    /* bytes of a bad --env shown back */
#define REASON_CELL_SIZE 64                /* REASON in `releases`: longer first lines end in "..." */

/* The --env pairs into an object; a bad one is a usage error naming it. */
static enum coffer_err env_object(const struct client *c, const struct opts_values *env, json_t *out)
{
	for (size_t i = 0; i < env->n; i++) {
		const char *arg = env->v[i], *eq = strchr(arg, '=');
		size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
		int shown = (int)(len < ENV_ECHO_MAX ? len : ENV_ECHO_MAX);
		json_t *value;

		if (!eq)
			return client_usage_error(c, "invalid --env '%.*s': expected NAME=VALUE", shown, arg);
		if (!dotenv_name_valid(arg, len))
			return client_usage_error(c, "invalid --env '%.*s=...': the name must be letters, digits and '_', "
						     "not starting with a digit", shown, arg);
		value = json_string(eq + 1);
		if (!value)
			return client_usage_error(c, "invalid --env '%.*s=...': the value is not UTF-8", shown, arg);
		char name[DOTENV_NAME_MAX + 1];
		if (len > DOTENV_NAME_MAX) {
			json_decref(value);
			return client_usage_error(c, "invalid --env '%.*s=...': the name is too long", shown, arg);
		}
		memcpy(name, arg, len);
		name[len] = '\0';
		if (json_object_set_new(out, name, value))
			return client_error(COFFER_ERR_NOMEM, "out of memory");
	}
	return COFFER_OK;
}

/*
 * The --file specs (else the project file's files) into an array of
 * {"path", "secret", "mode"?}: PATH=SECRET[:MODE]. The split is all that
 * is checked here; release_config_check (canonical, below) checks each
 * part and names what is wrong, as the api does.
 */
static enum coffer_err files_array(const struct client *c, const struct opts_values *given, const json_t *project,
				   json_t *out)
{
	size_t n = given->n ? given->n : json_array_size(project);
	for (size_t i = 0; i < n; i++) {
		const char *arg = given->n ? given->v[i] : json_string_value(json_array_get(project, i));
		const char *eq = strchr(arg, '='), *colon = eq ? strchr(eq + 1, ':') : NULL;
		size_t len = strlen(arg);
		int shown = (int)(len < ENV_ECHO_MAX ? len : ENV_ECHO_MAX);
		json_t *f;

		if (!eq || eq == arg || eq[1] == '\0' || eq[1] == ':' || (colon && colon[1] == '\0'))
			return client_usage_error(c, "invalid --file '%.*s': expected PATH=SECRET[:MODE], such as "
						     "/run/secrets/tls.pem=TLS_CERT:0400", shown, arg);
		f = json_pack("{s:s%,s:s%}", "path", arg, (size_t)(eq - arg), "secret", eq + 1,
			      colon ? (size_t)(colon - eq - 1) : strlen(eq + 1));
		if (!f || (colon && json_object_set_new(f, "mode", json_string(colon + 1))) || json_array_append_new(out, f))
			return client_usage_error(c, "invalid --file '%.*s': not UTF-8", shown, arg);
	}
	return COFFER_OK;
}

/* config (a JSON object) in its canonical text, as the api stores it (release_config_check). */
static enum coffer_err canonical(json_t *config, char **out)
{
	char msg[API_MESSAGE_MAX];
	enum coffer_err rc;

	msg[0] = '\0';
	rc = release_config_check(config, out, msg, sizeof(msg));
	if (rc == COFFER_ERR_INVALID || rc == COFFER_ERR_TOO_LARGE)
		return client_error(rc, "%s", msg[0] ? msg : "invalid config");
	if (rc)
		return client_error(rc, "%s", coffer_strerror(rc));
	return COFFER_OK;
}

/* The current release's config, parsed (NULL when the app has none). */
static enum coffer_err current_config(const struct sign_state *st, json_t **out)
{
	*out = NULL;
	if (!st->has_release)
		return COFFER_OK;
	*out = json_loads(st->config, 0, NULL);
	return *out ? COFFER_OK : client_bad_answer("the current release's config");
}

/*
 * `deploy`: the config of the command line, count and grace taken from the
 * current release's when not given (else 1 and 30 s), with the head's
 * secrets, signed; the head's manifest is checked before it is co-signed.
 */
static enum coffer_err fill_deploy(struct client *c, struct sign_state *st, void *arg, json_t **out,
				   const char **suffix)
{
	json_t *body = json_deep_copy(c->body), *cur = NULL, *v;
	char *config = NULL;
	enum coffer_err rc = body ? COFFER_OK : client_error(COFFER_ERR_NOMEM, "out of memory");

	(void)arg;
	*suffix = c->cmd->data;
	if (!rc)
		rc = current_config(st, &cur);
	if (!rc && !json_object_get(body, "count")) {
		v = json_object_get(cur, "count");
		if (json_object_set_new(body, "count", json_is_integer(v) ? json_copy(v) : json_integer(1)))
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	}
	if (!rc && !json_object_get(body, "grace_ms")) {
		v = json_object_get(cur, "grace_ms");
		if (json_object_set_new(body, "grace_ms",
					json_is_integer(v) ? json_copy(v) : json_integer(RELEASE_GRACE_DEFAULT_MS)))
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	}
	if (!rc)
		rc = canonical(body, &config);
	if (!rc)
		rc = sign_check_head(st);
	if (!rc)
		rc = sign_release(st, config, st->head_version, st->head_manifest, body);
	free(config);
	json_decref(cur);
	if (rc)
		json_decref(body);
	else
		*out = body;
	return rc;
}

/* `scale count`: the current release's config with another count and its secrets, signed once checked. */
static enum coffer_err fill_scale(struct client *c, struct sign_state *st, void *arg, json_t **out,
				  const char **suffix)
{
	json_t *body = json_deep_copy(c->body), *cur = NULL;
	char *config = NULL;
	enum coffer_err rc = body ? COFFER_OK : client_error(COFFER_ERR_NOMEM, "out of memory");

	(void)arg;
	*suffix = c->cmd->data;
	if (!rc && st->has_release) { /* without one, the api says there is nothing to scale */
		rc = sign_check_release(st);
		if (!rc)
			rc = current_config(st, &cur);
		if (!rc && json_object_set(cur, "count", json_object_get(body, "count")))
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
		if (!rc)
			rc = canonical(cur, &config);
		if (!rc)
			rc = sign_release(st, config, st->release_secrets, st->release_manifest, body);
	}
	free(config);
	json_decref(cur);
	if (rc)
		json_decref(body);
	else
		*out = body;
	return rc;
}

/* The run of deploy and scale count: the body their check made, signed, and the release it makes followed. */
static enum coffer_err make_release(struct client *c, int argc, char **argv)
{
	json_t *ans = NULL;
	enum coffer_err rc = sign_run(c, strcmp(c->cmd->name, "deploy") == 0 ? fill_deploy : fill_scale, NULL, &ans);

	(void)argc, (void)argv;
	if (!rc)
		rc = client_follow_release(c, ans, c->detach);
	json_decref(ans);
	return rc;
}

/*
 * The command line of `deploy`, into its body: {"cmd": [...], "env": {...},
 * "count"?, "grace_ms"?}; what it leaves out, from the project file's
 * [deploy] (project.h).
 */
static enum coffer_err deploy_check(struct client *c, int argc, char **argv)
{
	json_t *body = c->body = json_object();
	const char *count = client_value(c, "count"), *grace = client_value(c, "grace");
	json_t *cmd = json_array(), *envs = json_object(), *files = json_array();
	const struct project *p;
	uint64_t n = 0, grace_ms = 0;
	enum coffer_err rc = client_project(c, &p);

	if (!rc && count && parse_uint64(count, DEPLOY_COUNT_MAX, &n))
		rc = client_usage_error(c, "--count must be a whole number of machines");
	else if (!rc && grace && parse_duration_ms(grace, DEPLOY_GRACE_MAX_MS, &grace_ms))
		rc = client_usage_error(c, "--grace must be a duration such as 30s, 500ms or 2m");
	else if (!rc && (!body || !cmd || !envs || !files))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	for (int k = 1; !rc && k < argc; k++) {
		json_t *a = json_string(argv[k]);
		if (!a)
			rc = client_usage_error(c, "word %d of COMMAND is not UTF-8", k);
		else if (json_array_append_new(cmd, a))
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	}
	if (!rc && argc < 2 && !p->command)
		rc = client_usage_error(c, "expected a COMMAND to run, after '--' (or command in the [deploy] of %s)",
					p->path[0] ? p->path : PROJECT_FILE);
	if (!rc && argc < 2 && json_array_extend(cmd, p->command))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	if (!rc && argc < 2) /* what is signed and run comes from a file: say which */
		fprintf(stderr, "coffer: the command of [deploy] in %s\n", p->path);
	if (!rc && !count && p->count >= 0)
		count = "", n = (uint64_t)p->count;
	if (!rc && !grace && p->grace_ms >= 0)
		grace = "", grace_ms = (uint64_t)p->grace_ms;
	if (!rc)
		rc = env_object(c, &c->list, envs);
	if (!rc)
		rc = files_array(c, &c->list2, p->files, files);
	if (!rc && (json_object_set(body, "cmd", cmd) || json_object_set(body, "env", envs) ||
		    (json_array_size(files) && json_object_set(body, "files", files)) ||
		    (count && json_object_set_new(body, "count", json_integer((json_int_t)n))) ||
		    (grace && json_object_set_new(body, "grace_ms", json_integer((json_int_t)grace_ms)))))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	json_decref(files);
	json_decref(envs);
	json_decref(cmd);
	return rc;
}

static const struct cli_opt deploy_opts[] = {
	{ "count", 0, OPTS_VALUE, "N", "how many machines to run" },
	{ "grace", 0, OPTS_VALUE, "DURATION", "how long each new machine must stay up (30s, 500ms, 2m)" },
	{ "env", 'e', OPTS_LIST, "NAME=VALUE", "a plain (not secret) environment variable; repeatable" },
	{ "file", 0, OPTS_LIST, "PATH=SECRET[:MODE]",
	  "the secret SECRET as the file PATH (MODE 0400, 0440, 0600 or 0640; default 0400), not in the "
	  "environment; repeatable" },
	{ NULL, 0, OPTS_FLAG, NULL, NULL },
};

const struct cli_cmd cli_deploy = {
	.name = "deploy", .check = deploy_check, .run = make_release, .data = "/releases", .flags = CLI_NEED_APP | CLI_NEED_API | CLI_DETACH,
	.opts = deploy_opts,
	.min_args = 0, .max_args = CLI_ARGS_ANY,
	.usage = "deploy [-a APP] [--count N] [--grace DURATION] [--env NAME=VALUE ...] [--file PATH=SECRET[:MODE] ...] "
		 "[--detach] [-- COMMAND [ARGS...]]",
	.summary = "make a release that runs COMMAND on the app's machines, and wait for it",
	.help = "Makes a new release of an app that runs COMMAND on its machines, and waits\n"
		"while the release replaces them one at a time: each new machine must stay up\n"
		"for the grace period, or the release fails and the machines go back to the\n"
		"previous release. The app's deployed secrets are in each machine's\n"
		"environment, except those given with --file: each of those is only a file\n"
		"the machine reads at PATH (owned by the machine's user, MODE 0400 unless\n"
		"given), on a tmpfs the host's agent mounts for the machine and removes when\n"
		"it stops; the folder of PATH shows only the machine's secret files. At most\n"
		"16 files, each in a folder other than /, folders not nested. A deploy\n"
		"without --file (or files in coffer.toml) has no files.\n"
		"Ctrl-C stops waiting, not the release.\n"
		"Without --count or --grace, the current release's are kept (at first: 1 and 30s).\n"
		"In a folder with a coffer.toml (or above one), its app and its [deploy]\n"
		"command, count, grace and files are used where the command line gives none:\n"
		"  app = \"web\"\n  [deploy]\n  command = [\"sh\", \"-c\", \"exec ./server\"]\n"
		"  count = 2\n  grace = \"30s\"\n  files = [\"/run/secrets/tls.pem=TLS_CERT:0400\"]\n",
};

static void release_row(const json_t *r, int64_t now, const char **cells, char (*scratch)[CLIENT_CELL_SIZE])
{
	json_t *v = json_object_get(r, "version");
	if (!json_is_integer(v) ||
	    fmt_into(scratch[0], CLIENT_CELL_SIZE, "v%" JSON_INTEGER_FORMAT, json_integer_value(v)))
		scratch[0][0] = '\0';
	format_first_line(client_str(r, "reason"), "", scratch[2], REASON_CELL_SIZE);
	format_when(client_str(r, "created_at"), now, "-", scratch[4], CLIENT_CELL_SIZE);
	cells[0] = scratch[0];
	cells[1] = client_str(r, "status");
	cells[2] = scratch[2];
	cells[3] = client_str(r, "actor");
	cells[4] = scratch[4];
}

static enum coffer_err scale_count_check(struct client *c, int argc, char **argv)
{
	uint64_t n = 0;

	(void)argc;
	if (parse_uint64(argv[1], DEPLOY_COUNT_MAX, &n))
		return client_usage_error(c, "N must be a whole number of machines");
	c->body = json_pack("{s:I}", "count", (json_int_t)n);
	return c->body ? COFFER_OK : client_error(COFFER_ERR_NOMEM, "out of memory");
}

/* A release named as vN or N on the command line: N, or a usage error naming the argument. */
static enum coffer_err release_arg(struct client *c, const char *arg, uint64_t *out)
{
	const char *digits = arg[0] == 'v' ? arg + 1 : arg;
	if (parse_uint64(digits, INT64_MAX, out) || *out == 0)
		return client_usage_error(c, "'%.*s' is not a release: expected vN or N (see 'coffer releases -a %s')",
					  ENV_ECHO_MAX, arg, c->app);
	return COFFER_OK;
}

/* GET /v1/apps/APP/releases/N<suffix> into *ans. */
static enum coffer_err get_release(struct client *c, uint64_t n, const char *suffix, json_t **ans)
{
	char path[CLIENT_PATH_MAX], tail[64];
	enum coffer_err rc = COFFER_OK;

	if (fmt_into(tail, sizeof(tail), "/releases/%" PRIu64 "%s", n, suffix))
		rc = client_error(COFFER_ERR_INTERNAL, "path too long");
	if (!rc)
		rc = client_path(path, sizeof(path), "/v1/apps/", c->app, tail);
	if (!rc)
		rc = client_call(c, "GET", path, NULL, ans);
	return rc;
}

static const char *cell_or(const char *s, const char *none)
{
	return s && *s ? s : none;
}

/* One row of the changes table per item of list (added, changed or removed). */
static enum coffer_err changes_rows(struct format_table *t, const json_t *doc, const char *list)
{
	size_t i;
	json_t *item;
	json_array_foreach(json_object_get(doc, list), i, item) {
		const char *cells[4] = { list, cell_or(client_str(item, "name"), "?"),
					 cell_or(client_str(item, "digest"), "-"),
					 cell_or(client_str(item, "previous_digest"), "-") };
		if (format_table_add(t, cells))
			return client_error(COFFER_ERR_NOMEM, "out of memory");
	}
	return COFFER_OK;
}

/*
 * `releases show vN`: the release's fields and what its secrets changed
 * against the release it replaced (GET .../releases/N and .../changes):
 * names and digests, never a value.
 */
static enum coffer_err releases_show(struct client *c, int argc, char **argv)
{
	static const char *const headers[] = { "CHANGE", "NAME", "DIGEST", "PREVIOUS" };
	static const char *const lists[] = { "added", "changed", "removed" };
	struct format_table t = { 0 };
	struct buf out;
	char when[CLIENT_CELL_SIZE], reason[REASON_CELL_SIZE];
	json_t *rel = NULL, *ch = NULL, *doc = NULL;
	uint64_t n = 0;
	enum coffer_err rc = release_arg(c, argv[1], &n);

	(void)argc;
	buf_init(&out, BUF_MAX_DEFAULT * 16);
	if (!rc)
		rc = get_release(c, n, "", &rel);
	if (!rc)
		rc = get_release(c, n, "/changes", &ch);
	if (rc)
		goto out;
	if (c->json) {
		doc = json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?}", "version",
				json_object_get(rel, "version"), "status", json_object_get(rel, "status"), "reason",
				json_object_get(rel, "reason"), "actor", json_object_get(rel, "actor"), "created_at",
				json_object_get(rel, "created_at"), "secrets_version",
				json_object_get(rel, "secrets_version"), "previous_version",
				json_object_get(ch, "previous_version"), "previous_secrets_version",
				json_object_get(ch, "previous_secrets_version"), "added", json_object_get(ch, "added"),
				"changed", json_object_get(ch, "changed"), "removed", json_object_get(ch, "removed"));
		rc = doc ? client_print_json(doc) : client_error(COFFER_ERR_NOMEM, "out of memory");
		goto out;
	}
	format_when(client_str(rel, "created_at"), (int64_t)time(NULL), "-", when, sizeof(when));
	format_first_line(client_str(rel, "reason"), "-", reason, sizeof(reason));
	printf("Release          v%" JSON_INTEGER_FORMAT "\n", json_integer_value(json_object_get(rel, "version")));
	printf("Status           %s\n", cell_or(client_str(rel, "status"), "-"));
	printf("Reason           %s\n", reason);
	printf("By               %s\n", cell_or(client_str(rel, "actor"), "-"));
	printf("Date             %s\n", when);
	if (json_integer_value(json_object_get(ch, "previous_version")) > 0)
		printf("Secrets version  %" JSON_INTEGER_FORMAT " (v%" JSON_INTEGER_FORMAT " ran %" JSON_INTEGER_FORMAT ")\n\n",
		       json_integer_value(json_object_get(rel, "secrets_version")),
		       json_integer_value(json_object_get(ch, "previous_version")),
		       json_integer_value(json_object_get(ch, "previous_secrets_version")));
	else
		printf("Secrets version  %" JSON_INTEGER_FORMAT " (the first release)\n\n",
		       json_integer_value(json_object_get(rel, "secrets_version")));
	if (format_table_init(&t, 4, headers))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	for (size_t k = 0; !rc && k < 3; k++)
		rc = changes_rows(&t, ch, lists[k]);
	if (!rc && format_table_render(&t, &out))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	if (!rc && t.n_rows == 0)
		printf("no secret changed\n");
	else if (!rc)
		fwrite(out.ptr, 1, out.len, stdout);
out:
	format_table_release(&t);
	buf_release(&out);
	json_decref(doc);
	json_decref(ch);
	json_decref(rel);
	return rc;
}

struct rollback {
	uint64_t version;
	char suffix[64];
};

/*
 * `releases rollback vN`: the state read with release vN in it
 * (sign_run_release); its statement must be signed by a deployer of the
 * app, as any config this CLI co-signs; then a new release of its config
 * and secrets version, signed.
 */
static enum coffer_err fill_rollback(struct client *c, struct sign_state *st, void *arg, json_t **out,
				     const char **suffix)
{
	struct rollback *rb = arg;
	json_t *body = json_object();
	enum coffer_err rc = body ? COFFER_OK : client_error(COFFER_ERR_NOMEM, "out of memory");

	(void)c;
	*suffix = rb->suffix;
	if (!rc)
		rc = sign_check_release(st);
	if (!rc)
		rc = sign_release(st, st->config, st->release_secrets, st->release_manifest, body);
	if (rc)
		json_decref(body);
	else
		*out = body;
	return rc;
}

static enum coffer_err releases_rollback(struct client *c, int argc, char **argv)
{
	struct rollback rb = { 0 };
	json_t *ans = NULL;
	enum coffer_err rc = release_arg(c, argv[1], &rb.version);

	(void)argc;
	if (!rc && fmt_into(rb.suffix, sizeof(rb.suffix), "/releases/%" PRIu64 "/rollback", rb.version))
		rc = client_error(COFFER_ERR_INTERNAL, "path too long");
	if (!rc)
		rc = sign_run_release(c, rb.version, fill_rollback, &rb, &ans);
	if (!rc)
		rc = client_follow_release(c, ans, c->detach);
	json_decref(ans);
	return rc;
}

static const struct cli_cmd releases_cmds[] = {
	{ .name = "show", .run = releases_show, .flags = CLI_NEED_APP | CLI_NEED_API | CLI_JSON,
	  .usage = "releases show vN [-a APP] [--json]",
	  .min_args = 1, .max_args = 1, .args_error = "expected one release (vN)",
	  .json_help = "print {version, status, reason, actor, created_at, secrets_version, previous_version,\n"
		       "previous_secrets_version, added: [{name, digest}], changed: [{name, digest,\n"
		       "previous_digest}], removed: [{name, previous_digest}]}",
	  .help = "Shows a release: its status, why it failed, who made it and when, its\n"
		  "secrets version, and which secrets it added, changed and removed against\n"
		  "the release it replaced (names and digests; no command shows a value).\n" },
	{ .name = "rollback", .run = releases_rollback, .flags = CLI_NEED_APP | CLI_NEED_API | CLI_DETACH,
	  .usage = "releases rollback vN [-a APP] [--detach]",
	  .min_args = 1, .max_args = 1, .args_error = "expected one release (vN)",
	  .help = "Makes a new release with the command, config and secrets of an earlier\n"
		  "release vN, and waits for it as deploy does: machines are replaced one at\n"
		  "a time, and a failure keeps what runs now. vN must have been signed by a\n"
		  "deployer of the app; this CLI signs the new release. The secrets of vN\n"
		  "become the app's secrets (changes staged since stay in the history).\n"
		  "Refused for the current release and while a release is in progress.\n" },
};
static const struct cli_group releases_group = CLI_GROUP("releases", releases_cmds);

static const char *const release_headers[] = { "VERSION", "STATUS", "REASON", "BY", "DATE" };
static const struct client_listing releases_listing = { .app_suffix = "/releases", .key = "releases",
							.headers = release_headers, .ncols = 5, .row = release_row };

const struct cli_cmd cli_releases = {
	.name = "releases", .run = client_list_run, .group = &releases_group,
	.flags = CLI_NEED_APP | CLI_NEED_API | CLI_JSON,
	.json_help = CLIENT_LIST_JSON_HELP, .data = &releases_listing, .usage = "releases [-a APP] [--json]",
	.summary = "list an app's releases, newest first",
	.help = "Lists an app's releases, newest first: each is a command, its config and a\n"
		"secrets version. REASON is the first line of why a release failed; --json\n"
		"has the whole reason (with the machine's last output, secrets masked).\n"
		"'coffer releases show vN' shows one release and what it changed;\n"
		"'coffer releases rollback vN' makes a new release of an earlier one.\n",
};

static const struct cli_cmd scale_cmds[] = {
	{ .name = "count", .check = scale_count_check, .run = make_release, .data = "/scale", .flags = CLI_NEED_APP | CLI_NEED_API | CLI_DETACH,
	  .usage = "scale count N [-a APP] [--detach]",
	  .min_args = 1, .max_args = 1, .args_error = "expected one N",
	  .help = "Runs N machines of an app (0 stops them all): a release with the current\n"
		  "command and secrets. New machines are watched through the grace period;\n"
		  "extra ones are destroyed, newest first.\n" },
};
static const struct cli_group scale_group = CLI_GROUP("scale", scale_cmds);
const struct cli_cmd cli_scale = CLI_NOUN("scale", &scale_group, "change how many machines an app runs");
