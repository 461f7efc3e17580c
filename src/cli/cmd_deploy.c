/*
 * cmd_deploy.c — `coffer deploy`, `coffer releases` and `coffer scale count`:
 * the commands that make an app's releases, or list them (docs/RUNPATH.md).
 *
 * A command that makes a release follows it with client_follow_release:
 * it waits (client_wait_release) unless --detach.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "dotenv.h"
#include "format.h"
#include "parse.h"
#include "banned.h"

#define COUNT_MAX 1000000                  /* the api sets the real limit and names it */
#define GRACE_MAX_MS ((uint64_t)7 * 24 * 3600 * 1000)
#define ENV_ECHO_MAX 64                    /* bytes of a bad --env shown back */
#define REASON_CELL_SIZE 64                /* REASON in `releases`: longer first lines end in "..." */

#define DETACH_OPTION "      --detach              return once the release is made, without waiting for it\n"

/* The --env pairs into an object; a bad one is a usage error naming it. Returns CLIENT_CONTINUE or the exit code. */
static int env_object(const struct client *c, const struct client_values *env, json_t *out)
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
			return client_exit(client_error(COFFER_ERR_NOMEM, "out of memory"));
	}
	return CLIENT_CONTINUE;
}

/* Posts body to /v1/apps/:app<suffix> and follows the release it makes. */
static enum coffer_err make_release(struct client *c, const char *suffix, const json_t *body, int detach)
{
	char path[CLIENT_PATH_MAX];
	json_t *ans = NULL;
	enum coffer_err rc = client_path(path, sizeof(path), "/v1/apps/", c->app, suffix);
	if (!rc)
		rc = client_call(c, "POST", path, body, &ans);
	if (!rc)
		rc = client_follow_release(c, ans, detach);
	json_decref(ans);
	return rc;
}

int cmd_deploy(int argc, char **argv)
{
	struct client c;
	struct client_values env = { { NULL }, 0 };
	const char *count = NULL, *grace = NULL;
	json_t *body = NULL, *cmd = NULL, *envs = NULL;
	int n_pos = 0, detach = 0, code;
	uint64_t n = 0, grace_ms = 0;
	enum coffer_err rc;
	const struct client_opt opts[] = {
		{ "app", 'a', CLIENT_OPT_VALUE, &c.app_flag },
		{ "count", 0, CLIENT_OPT_VALUE, &count },
		{ "grace", 0, CLIENT_OPT_VALUE, &grace },
		{ "env", 'e', CLIENT_OPT_LIST, &env },
		{ "detach", 0, CLIENT_OPT_FLAG, &detach },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};

	client_init(&c, "deploy [-a APP] [--count N] [--grace DURATION] [--env NAME=VALUE ...] [--detach] -- COMMAND [ARGS...]",
		    "Makes a new release of an app that runs COMMAND on its machines, and waits\n"
		    "while the release replaces them one at a time: each new machine must stay up\n"
		    "for the grace period, or the release fails and the machines go back to the\n"
		    "previous release. The app's deployed secrets are in each machine's\n"
		    "environment. Ctrl-C stops waiting, not the release.\n"
		    "Without --count or --grace, the current release's are kept (at first: 1 and 30s).\n",
		    CLIENT_APP_OPTION
		    "      --count N             how many machines to run\n"
		    "      --grace DURATION      how long each new machine must stay up (30s, 500ms, 2m)\n"
		    "  -e, --env NAME=VALUE      a plain (not secret) environment variable; repeatable\n"
		    DETACH_OPTION);
	code = client_parse(&c, argc, argv, opts, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos < 1) {
		code = client_usage_error(&c, "expected a COMMAND to run, after '--'");
		goto out;
	}
	if (count && parse_uint64(count, COUNT_MAX, &n)) {
		code = client_usage_error(&c, "--count must be a whole number of machines");
		goto out;
	}
	if (grace && parse_duration_ms(grace, GRACE_MAX_MS, &grace_ms)) {
		code = client_usage_error(&c, "--grace must be a duration such as 30s, 500ms or 2m");
		goto out;
	}
	body = json_object();
	cmd = json_array();
	envs = json_object();
	if (!body || !cmd || !envs) {
		code = client_exit(client_error(COFFER_ERR_NOMEM, "out of memory"));
		goto out;
	}
	for (int k = 1; k <= n_pos; k++) {
		json_t *a = json_string(argv[k]);
		if (!a) {
			code = client_usage_error(&c, "word %d of COMMAND is not UTF-8", k);
			goto out;
		}
		if (json_array_append_new(cmd, a)) {
			code = client_exit(client_error(COFFER_ERR_NOMEM, "out of memory"));
			goto out;
		}
	}
	code = env_object(&c, &env, envs);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (json_object_set(body, "cmd", cmd) || json_object_set(body, "env", envs) ||
	    (count && json_object_set_new(body, "count", json_integer((json_int_t)n))) ||
	    (grace && json_object_set_new(body, "grace_ms", json_integer((json_int_t)grace_ms)))) {
		code = client_exit(client_error(COFFER_ERR_NOMEM, "out of memory"));
		goto out;
	}
	rc = client_need_app(&c);
	if (!rc)
		rc = client_connect(&c);
	if (!rc)
		rc = make_release(&c, "/releases", body, detach);
	code = client_exit(rc);
out:
	json_decref(envs);
	json_decref(cmd);
	json_decref(body);
	client_release(&c);
	return code;
}

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

int cmd_releases(int argc, char **argv)
{
	static const char *const headers[] = { "VERSION", "STATUS", "REASON", "BY", "DATE" };
	static const struct client_listing l = {
		"releases [-a APP] [--json]",
		"Lists an app's releases, newest first: each is a command, its config and a\n"
		"secrets version. REASON is the first line of why a release failed; --json\n"
		"has the whole reason (with the machine's last output, secrets masked).\n",
		NULL, "releases", headers, 5, release_row,
	};
	return client_list_app_command(argc, argv, &l, "/releases", NULL);
}

static int scale_count(int argc, char **argv)
{
	struct client c;
	json_t *body = NULL;
	int n_pos = 0, detach = 0, code;
	uint64_t n = 0;
	enum coffer_err rc;
	const struct client_opt opts[] = {
		{ "app", 'a', CLIENT_OPT_VALUE, &c.app_flag },
		{ "detach", 0, CLIENT_OPT_FLAG, &detach },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};

	client_init(&c, "scale count N [-a APP] [--detach]",
		    "Runs N machines of an app (0 stops them all): a release with the current\n"
		    "command and secrets. New machines are watched through the grace period;\n"
		    "extra ones are destroyed, newest first.\n",
		    CLIENT_APP_OPTION DETACH_OPTION);
	code = client_parse(&c, argc, argv, opts, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos != 1) {
		code = client_usage_error(&c, "expected one N");
		goto out;
	}
	if (parse_uint64(argv[1], COUNT_MAX, &n)) {
		code = client_usage_error(&c, "N must be a whole number of machines");
		goto out;
	}
	body = json_pack("{s:I}", "count", (json_int_t)n);
	if (!body) {
		code = client_exit(client_error(COFFER_ERR_NOMEM, "out of memory"));
		goto out;
	}
	rc = client_need_app(&c);
	if (!rc)
		rc = client_connect(&c);
	if (!rc)
		rc = make_release(&c, "/scale", body, detach);
	code = client_exit(rc);
out:
	json_decref(body);
	client_release(&c);
	return code;
}

static const struct client_sub scale_subs[] = {
	{ "count", scale_count, "scale count N [-a APP] [--detach]" },
};

int cmd_scale(int argc, char **argv)
{
	return client_dispatch("scale", scale_subs, sizeof(scale_subs) / sizeof(scale_subs[0]), argc, argv);
}
