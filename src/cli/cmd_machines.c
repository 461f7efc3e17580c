/*
 * cmd_machines.c — `coffer machines list|destroy` and `coffer status`: an
 * app's machines and what it runs (docs/RUNPATH.md, "For the CLI").
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "client.h"
#include "format.h"
#include "banned.h"

#define MACHINE_COLS 6
#define MS_PER_S 1000
#define STATUS_TEXT_MAX 1024  /* one value of `status`, shown on one line */
#define STATUS_CMD_MAX ((size_t)64 << 10)
#define CONFIRM_PROMPT_MAX 512

static const char *const machine_headers[MACHINE_COLS] = { "ID", "HOST", "RELEASE", "STATE", "PID", "STARTED" };

/* "v3", or none when v is not a positive integer. */
static void version_text(const json_t *v, const char *prefix, const char *none, char *out, size_t size)
{
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    !fmt_into(out, size, "%s%" JSON_INTEGER_FORMAT, prefix, json_integer_value(v)))
		return;
	format_first_line(none, "", out, size);
}

/* started_at as the api gives it: RFC 3339 text, or unix milliseconds. */
static void started_cell(const json_t *v, int64_t now, char *out, size_t size)
{
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    !format_relative((int64_t)(json_integer_value(v) / MS_PER_S), now, out, size))
		return;
	format_when(json_is_string(v) ? json_string_value(v) : NULL, now, "-", out, size);
}

static void machine_row(const json_t *m, int64_t now, const char **cells, char (*scratch)[CLIENT_CELL_SIZE])
{
	version_text(json_object_get(m, "release"), "v", "-", scratch[2], CLIENT_CELL_SIZE);
	version_text(json_object_get(m, "pid"), "", "-", scratch[4], CLIENT_CELL_SIZE);
	cells[0] = client_str(m, "id");
	cells[1] = client_str(m, "host");
	cells[2] = scratch[2];
	cells[3] = client_str(m, "state");
	cells[4] = scratch[4];
	started_cell(json_object_get(m, "started_at"), now, scratch[5], CLIENT_CELL_SIZE);
	cells[5] = scratch[5];
}

static enum coffer_err machines_destroy(struct client *c, int argc, char **argv)
{
	char prefix[CLIENT_PATH_MAX], path[CLIENT_PATH_MAX], prompt[CONFIRM_PROMPT_MAX];
	char shown[FORMAT_STEP_SIZE], app_shown[FORMAT_STEP_SIZE];
	json_t *ans = NULL;
	enum coffer_err rc = client_path(prefix, sizeof(prefix), "/v1/apps/", c->app, "/machines/");

	(void)argc;
	if (!rc)
		rc = client_path(path, sizeof(path), prefix, argv[1], "");
	format_first_line(argv[1], "", shown, sizeof(shown));
	format_first_line(c->app, "", app_shown, sizeof(app_shown));
	if (!rc && fmt_into(prompt, sizeof(prompt), "Destroy machine %s of app '%s'? Its process is stopped. [y/N] ",
			    shown, app_shown))
		rc = client_error(COFFER_ERR_INVALID, "name too long");
	if (!rc && !client_confirm(c, prompt, NULL))
		rc = client_error(COFFER_ERR_INVALID, "not confirmed: machine not destroyed");
	if (!rc)
		rc = client_call(c, "DELETE", path, NULL, &ans);
	if (!rc) {
		format_first_line(client_str(ans, "id") ? client_str(ans, "id") : argv[1], "", shown, sizeof(shown));
		printf("Machine %s destroyed\n", shown);
	}
	json_decref(ans);
	return rc;
}

static const struct client_listing machines_listing = { .app_suffix = "/machines", .key = "machines",
							.headers = machine_headers, .ncols = MACHINE_COLS,
							.row = machine_row, .all = 1 };
static const struct cli_opt list_opts[] = {
	{ "all", 0, OPTS_FLAG, NULL, "include destroyed machines" },
	{ NULL, 0, OPTS_FLAG, NULL, NULL },
};

static const struct cli_cmd machines_cmds[] = {
	{ .name = "list", .alias = "ls", .usage = "machines list [-a APP] [--all] [--json]", .run = client_list_run,
	  .flags = CLI_NEED_APP | CLI_NEED_API | CLI_JSON, .opts = list_opts, .json_help = CLIENT_LIST_JSON_HELP,
	  .data = &machines_listing,
	  .help = "Lists an app's machines: the host each runs on, the release it runs, its\n"
		  "state, process id and when it started. Destroyed machines are left out\n"
		  "unless --all.\n" },
	{ .name = "destroy", .alias = "rm", .usage = "machines destroy ID [-a APP] [--yes]", .run = machines_destroy,
	  .flags = CLI_NEED_APP | CLI_NEED_API | CLI_DESTRUCTIVE, .min_args = 1, .max_args = 1,
	  .args_error = "expected one machine ID",
	  .help = "Destroys a machine of an app: its process is stopped and it can no longer\n"
		  "open the app's secrets. The next release (deploy, scale) makes a new one\n"
		  "if the app has fewer machines than its count. Asks first on a terminal;\n"
		  "without one, needs --yes.\n" },
};
static const struct cli_group machines_group = CLI_GROUP("machines", machines_cmds);
const struct cli_cmd cli_machines = CLI_NOUN("machines", &machines_group, "list an app's machines, or destroy one");

/*
 * Command, count, grace and env of a release config, as `status` shows
 * them; live: the app's machines not destroyed (a count it lacks is said).
 */
static enum coffer_err print_config(const json_t *config, size_t live)
{
	json_t *cmd = json_object_get(config, "cmd"), *env = json_object_get(config, "env");
	json_t *count = json_object_get(config, "count"), *grace = json_object_get(config, "grace_ms"), *v;
	const char *words[OPTS_VALUES_MAX];
	struct buf b, pair;
	size_t n = 0, i;
	const char *key;
	char text[FORMAT_DURATION_SIZE];
	enum coffer_err rc = COFFER_OK;

	buf_init(&b, STATUS_CMD_MAX);
	buf_init(&pair, STATUS_CMD_MAX);
	json_array_foreach(cmd, i, v) {
		if (n < OPTS_VALUES_MAX)
			words[n++] = json_is_string(v) ? json_string_value(v) : "?";
	}
	if (format_argv(words, n, &b))
		buf_reset(&b);
	printf("%-11s %s\n", "Command", b.len ? b.ptr : "-");
	if (json_is_integer(count) && (json_int_t)live < json_integer_value(count))
		printf("%-11s %" JSON_INTEGER_FORMAT " (%zu machine%s now: the next deploy or scale brings it back to %"
		       JSON_INTEGER_FORMAT ")\n",
		       "Count", json_integer_value(count), live, live == 1 ? "" : "s", json_integer_value(count));
	else if (json_is_integer(count))
		printf("%-11s %" JSON_INTEGER_FORMAT "\n", "Count", json_integer_value(count));
	if (json_is_integer(grace) && json_integer_value(grace) >= 0 &&
	    !format_duration((uint64_t)json_integer_value(grace), text, sizeof(text)))
		printf("%-11s %s\n", "Grace", text);
	buf_reset(&b);
	json_object_foreach(env, key, v) {
		const char *one[1];
		buf_reset(&pair);
		rc = buf_addf(&pair, "%s=%s", key, json_is_string(v) ? json_string_value(v) : "");
		one[0] = pair.ptr;
		if (!rc && b.len)
			rc = buf_addch(&b, ' ');
		if (!rc)
			rc = format_argv(one, 1, &b);
		if (rc)
			break;
	}
	if (!rc)
		printf("%-11s %s\n", "Env", b.len ? b.ptr : "-");
	buf_release(&pair);
	buf_release(&b);
	return rc ? client_error(rc, "cannot show the config: %s", coffer_strerror(rc)) : COFFER_OK;
}

static enum coffer_err status_run(struct client *c, int argc, char **argv)
{
	struct buf out;
	char path[CLIENT_PATH_MAX], name[STATUS_TEXT_MAX], text[STATUS_TEXT_MAX], other[STATUS_TEXT_MAX];
	json_t *ans = NULL, *machines, *config, *m;
	size_t live = 0, i;
	enum coffer_err rc = client_path(path, sizeof(path), "/v1/apps/", c->app, "/status");

	(void)argc, (void)argv;
	buf_init(&out, BUF_MAX_DEFAULT * 16);
	if (!rc)
		rc = client_call(c, "GET", path, NULL, &ans);
	if (!rc && c->json) {
		rc = client_print_json(ans);
		goto out;
	}
	if (rc)
		goto out;
	format_first_line(client_str(ans, "app") ? client_str(ans, "app") : c->app, "", name, sizeof(name));
	printf("%-11s %s\n", "App", name);
	version_text(json_object_get(ans, "current_release"), "v", "none yet: 'coffer deploy' makes one", text,
		     sizeof(text));
	printf("%-11s %s\n", "Release", text);
	version_text(json_object_get(ans, "deployed_version"), "version ", "none deployed", text, sizeof(text));
	version_text(json_object_get(ans, "secrets_head"), "", "-", other, sizeof(other));
	if (!json_is_integer(json_object_get(ans, "secrets_head")) ||
	    json_equal(json_object_get(ans, "deployed_version"), json_object_get(ans, "secrets_head")))
		printf("%-11s %s\n", "Secrets", text);
	else
		printf("%-11s %s (head: %s, staged)\n", "Secrets", text, other);
	if (json_is_integer(json_object_get(ans, "release_in_progress"))) {
		version_text(json_object_get(ans, "release_in_progress"), "v", "-", text, sizeof(text));
		printf("%-11s %s: follow it with 'coffer releases -a %s'\n", "In progress", text, name);
	}
	config = json_object_get(ans, "config");
	machines = json_object_get(ans, "machines");
	json_array_foreach(machines, i, m) {
		const char *state = client_str(m, "state");
		live += !state || strcmp(state, "destroyed") != 0;
	}
	if (json_is_object(config))
		rc = print_config(config, live);
	if (!rc && json_array_size(machines))
		rc = client_table(machines, machine_headers, MACHINE_COLS, machine_row, &out);
	if (!rc && json_array_size(machines))
		printf("\nMachines\n%s", out.ptr);
	else if (!rc)
		printf("\nMachines    none\n");
out:
	buf_release(&out);
	json_decref(ans);
	return rc;
}

const struct cli_cmd cli_status = {
	.name = "status", .run = status_run, .flags = CLI_NEED_APP | CLI_NEED_API | CLI_JSON,
	.usage = "status [-a APP] [--json]", .summary = "show an app's current release, secrets version, config and machines",
	.help = "Shows what an app runs: its current release and secrets version, a release\n"
		"in progress, the release's command and config, and its machines.\n",
};
