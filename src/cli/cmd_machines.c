/*
 * cmd_machines.c — `coffer machines list|destroy` and `coffer status`: an
 * app's machines and what it runs (docs/RUNPATH.md, "For the CLI").
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "format.h"
#include "banned.h"

#define MACHINE_COLS 6
#define MS_PER_S 1000
#define STATUS_TEXT_MAX 1024  /* one value of `status`, shown on one line */
#define STATUS_CMD_MAX ((size_t)64 << 10)
#define CONFIRM_MAX 64        /* a typed confirmation line */

static const char *const machine_headers[MACHINE_COLS] = { "ID", "HOST", "RELEASE", "STATE", "PID", "STARTED" };

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
	json_t *rel = json_object_get(m, "release"), *pid = json_object_get(m, "pid");
	cells[0] = client_str(m, "id");
	cells[1] = client_str(m, "host");
	if (json_is_integer(rel) && json_integer_value(rel) > 0 &&
	    !fmt_into(scratch[2], CLIENT_CELL_SIZE, "v%" JSON_INTEGER_FORMAT, json_integer_value(rel)))
		cells[2] = scratch[2];
	else
		cells[2] = "-";
	cells[3] = client_str(m, "state");
	if (json_is_integer(pid) && json_integer_value(pid) > 0 &&
	    !fmt_into(scratch[4], CLIENT_CELL_SIZE, "%" JSON_INTEGER_FORMAT, json_integer_value(pid)))
		cells[4] = scratch[4];
	else
		cells[4] = "-";
	started_cell(json_object_get(m, "started_at"), now, scratch[5], CLIENT_CELL_SIZE);
	cells[5] = scratch[5];
}

static int machines_list(int argc, char **argv)
{
	static const struct client_listing l = {
		"machines list [-a APP] [--all] [--json]",
		"Lists an app's machines: the host each runs on, the release it runs, its\n"
		"state, process id and when it started. Destroyed machines are left out\n"
		"unless --all.\n",
		NULL, "machines", machine_headers, MACHINE_COLS, machine_row,
	};
	return client_list_app_command(argc, argv, &l, "/machines",
				       "      --all                 include destroyed machines\n");
}

/* Asks on the terminal; 1 for "y" or "yes". */
static int confirmed(const char *id, const char *app)
{
	char line[CONFIRM_MAX], shown[FORMAT_STEP_SIZE], app_shown[FORMAT_STEP_SIZE];
	format_first_line(id, "", shown, sizeof(shown));
	format_first_line(app, "", app_shown, sizeof(app_shown));
	fprintf(stderr, "Destroy machine %s of app '%s'? Its process is stopped. [y/N] ", shown, app_shown);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	line[strcspn(line, "\r\n")] = '\0';
	return strcmp(line, "y") == 0 || strcmp(line, "Y") == 0 || strcmp(line, "yes") == 0;
}

static int machines_destroy(int argc, char **argv)
{
	struct client c;
	char prefix[CLIENT_PATH_MAX], path[CLIENT_PATH_MAX];
	json_t *ans = NULL;
	int n_pos = 0, yes = 0, code;
	enum coffer_err rc;
	const struct client_opt opts[] = {
		{ "app", 'a', CLIENT_OPT_VALUE, &c.app_flag },
		{ "yes", 'y', CLIENT_OPT_FLAG, &yes },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};

	client_init(&c, "machines destroy ID [-a APP] [--yes]",
		    "Destroys a machine of an app: its process is stopped and it can no longer\n"
		    "open the app's secrets. The next release (deploy, scale) makes a new one\n"
		    "if the app has fewer machines than its count. On a terminal, asks first\n"
		    "unless --yes.\n",
		    CLIENT_APP_OPTION "  -y, --yes                 do not ask for confirmation\n");
	code = client_parse(&c, argc, argv, opts, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos != 1) {
		code = client_usage_error(&c, "expected one machine ID");
		goto out;
	}
	rc = client_need_app(&c);
	if (!rc)
		rc = client_connect(&c);
	if (!rc)
		rc = client_path(prefix, sizeof(prefix), "/v1/apps/", c.app, "/machines/");
	if (!rc)
		rc = client_path(path, sizeof(path), prefix, argv[1], "");
	if (!rc && !yes && isatty(STDIN_FILENO) && !confirmed(argv[1], c.app))
		rc = client_error(COFFER_ERR_INVALID, "not confirmed: machine not destroyed");
	if (!rc)
		rc = client_call(&c, "DELETE", path, NULL, &ans);
	if (!rc) {
		char id[FORMAT_STEP_SIZE];
		format_first_line(client_str(ans, "id") ? client_str(ans, "id") : argv[1], "", id, sizeof(id));
		printf("Machine %s destroyed\n", id);
	}
	code = client_exit(rc);
out:
	json_decref(ans);
	client_release(&c);
	return code;
}

static const struct client_sub machines_subs[] = {
	{ "list", machines_list, "machines list [-a APP] [--all] [--json]" },
	{ "ls", machines_list, NULL },
	{ "destroy", machines_destroy, "machines destroy ID [-a APP] [--yes]" },
	{ "rm", machines_destroy, NULL },
};

int cmd_machines(int argc, char **argv)
{
	return client_dispatch("machines", machines_subs, sizeof(machines_subs) / sizeof(machines_subs[0]), argc,
			       argv);
}

/* "v3", or none when v is not a positive integer. */
static void version_text(const json_t *v, const char *prefix, const char *none, char *out, size_t size)
{
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    !fmt_into(out, size, "%s%" JSON_INTEGER_FORMAT, prefix, json_integer_value(v)))
		return;
	format_first_line(none, "", out, size);
}

/* Command, count, grace and env of a release config, as `status` shows them. */
static enum coffer_err print_config(const json_t *config)
{
	json_t *cmd = json_object_get(config, "cmd"), *env = json_object_get(config, "env");
	json_t *count = json_object_get(config, "count"), *grace = json_object_get(config, "grace_ms"), *v;
	const char *words[CLIENT_VALUES_MAX];
	struct buf b, pair;
	size_t n = 0, i;
	const char *key;
	char text[FORMAT_DURATION_SIZE];
	enum coffer_err rc = COFFER_OK;

	buf_init(&b, STATUS_CMD_MAX);
	buf_init(&pair, STATUS_CMD_MAX);
	json_array_foreach(cmd, i, v) {
		if (n < CLIENT_VALUES_MAX)
			words[n++] = json_is_string(v) ? json_string_value(v) : "?";
	}
	if (format_argv(words, n, &b))
		buf_reset(&b);
	printf("%-11s %s\n", "Command", b.len ? b.ptr : "-");
	if (json_is_integer(count))
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

int cmd_status(int argc, char **argv)
{
	struct client c;
	struct format_table t = { 0 };
	struct buf out;
	char path[CLIENT_PATH_MAX], name[STATUS_TEXT_MAX], text[STATUS_TEXT_MAX], other[STATUS_TEXT_MAX];
	json_t *ans = NULL, *machines, *m, *config;
	int n_pos = 0, json = 0, code;
	size_t i;
	enum coffer_err rc;
	const struct client_opt opts[] = {
		{ "app", 'a', CLIENT_OPT_VALUE, &c.app_flag },
		{ "json", 0, CLIENT_OPT_FLAG, &json },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};

	buf_init(&out, BUF_MAX_DEFAULT * 16);
	client_init(&c, "status [-a APP] [--json]",
		    "Shows what an app runs: its current release and secrets version, a release\n"
		    "in progress, the release's command and config, and its machines.\n",
		    CLIENT_APP_OPTION "      --json                print the API's answer as JSON\n");
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
		rc = client_path(path, sizeof(path), "/v1/apps/", c.app, "/status");
	if (!rc)
		rc = client_call(&c, "GET", path, NULL, &ans);
	if (!rc && json) {
		rc = client_print_json(ans);
		goto done;
	}
	if (rc)
		goto done;
	format_first_line(client_str(ans, "app") ? client_str(ans, "app") : c.app, "", name, sizeof(name));
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
	if (json_is_object(config))
		rc = print_config(config);
	machines = json_object_get(ans, "machines");
	if (!rc && format_table_init(&t, MACHINE_COLS, machine_headers))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	int64_t now = (int64_t)time(NULL);
	json_array_foreach(rc ? NULL : machines, i, m) {
		const char *cells[MACHINE_COLS];
		char scratch[MACHINE_COLS][CLIENT_CELL_SIZE] = { { 0 } };
		for (size_t k = 0; k < MACHINE_COLS; k++)
			cells[k] = "";
		machine_row(m, now, cells, scratch);
		if (format_table_add(&t, cells)) {
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
			break;
		}
	}
	if (!rc && t.n_rows && format_table_render(&t, &out))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	if (!rc && t.n_rows)
		printf("\nMachines\n%s", out.ptr);
	else if (!rc)
		printf("\nMachines    none\n");
done:
	code = client_exit(rc);
out:
	format_table_release(&t);
	buf_release(&out);
	json_decref(ans);
	client_release(&c);
	return code;
}
