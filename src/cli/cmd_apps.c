/*
 * cmd_apps.c — `coffer apps create|list|destroy`.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "client.h"
#include "format.h"
#include "banned.h"

#define CONFIRM_PROMPT_MAX 512

static enum coffer_err apps_create(struct client *c, int argc, char **argv)
{
	json_t *body = json_pack("{s:s}", "name", argv[1]), *ans = NULL;
	enum coffer_err rc = COFFER_OK;

	(void)argc;
	if (!body)
		rc = client_error(COFFER_ERR_INVALID, "cannot encode the request: is NAME UTF-8?");
	if (!rc)
		rc = client_call(c, "POST", "/v1/apps", body, &ans);
	if (!rc)
		printf("New app created: %s\n", argv[1]);
	json_decref(ans);
	json_decref(body);
	return rc;
}

static void app_row(const json_t *app, int64_t now, const char **cells, char (*scratch)[CLIENT_CELL_SIZE])
{
	json_t *n = json_object_get(app, "secrets_count");
	int counted = json_is_integer(n) && fmt_into(scratch[1], CLIENT_CELL_SIZE, "%" JSON_INTEGER_FORMAT,
						     json_integer_value(n)) == COFFER_OK;
	format_when(client_str(app, "created_at"), now, "-", scratch[2], CLIENT_CELL_SIZE);
	cells[0] = client_str(app, "name");
	cells[1] = counted ? scratch[1] : "-";
	cells[2] = scratch[2];
}

static enum coffer_err apps_destroy(struct client *c, int argc, char **argv)
{
	char path[CLIENT_PATH_MAX], prompt[CONFIRM_PROMPT_MAX];
	json_t *ans = NULL;
	enum coffer_err rc = client_path(path, sizeof(path), "/v1/apps/", argv[1], "");

	(void)argc;
	if (!rc && fmt_into(prompt, sizeof(prompt),
			    "Destroying app '%s' deletes its keys and its secrets for good (the audit log keeps its "
			    "events).\nType the app's name to confirm: ", argv[1]))
		rc = client_error(COFFER_ERR_INVALID, "name too long");
	if (!rc && !client_confirm(c, prompt, argv[1]))
		rc = client_error(COFFER_ERR_INVALID, "the name typed does not match: app '%s' not destroyed", argv[1]);
	if (!rc)
		rc = client_call(c, "DELETE", path, NULL, &ans);
	if (!rc)
		printf("Destroyed app %s\n", argv[1]);
	json_decref(ans);
	return rc;
}

static const char *const app_headers[] = { "NAME", "SECRETS", "CREATED" };
static const struct client_listing apps_listing = { .path = "/v1/apps", .key = "apps", .headers = app_headers,
						    .ncols = 3, .row = app_row };

static const struct cli_cmd apps_cmds[] = {
	{ .name = "create", .usage = "apps create NAME", .run = apps_create, .flags = CLI_NEED_API,
	  .help = "Creates an app and its key pair. NAME: lower-case letters, digits and '-',\n"
		  "starting with a letter, at most 63 characters.\n",
	  .min_args = 1, .max_args = 1, .args_error = "expected one NAME" },
	{ .name = "list", .alias = "ls", .usage = "apps list [--json]", .run = client_list_run,
	  .flags = CLI_NEED_API | CLI_JSON, .json_help = CLIENT_LIST_JSON_HELP, .data = &apps_listing,
	  .help = "Lists the apps this token can see.\n" },
	{ .name = "destroy", .usage = "apps destroy NAME [--yes]", .run = apps_destroy,
	  .flags = CLI_NEED_API | CLI_DESTRUCTIVE,
	  .help = "Destroys an app: its keys and its secrets are deleted; the audit log keeps its\n"
		  "events. Without --yes, asks you to type the app's name (on a terminal only).\n",
	  .min_args = 1, .max_args = 1, .args_error = "expected one NAME" },
};
static const struct cli_group apps_group = CLI_GROUP("apps", apps_cmds);
const struct cli_cmd cli_apps = CLI_NOUN("apps", &apps_group, "manage apps");
