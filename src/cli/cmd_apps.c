/*
 * cmd_apps.c — `coffer apps create|list|destroy`.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "format.h"
#include "banned.h"

#define CONFIRM_MAX 256   /* a typed confirmation line */

static int apps_create(int argc, char **argv)
{
	struct client c;
	json_t *body = NULL, *ans = NULL;
	int n_pos = 0, code;
	enum coffer_err rc;

	client_init(&c, "apps create NAME",
		    "Creates an app and its key pair. NAME: lower-case letters, digits and '-',\n"
		    "starting with a letter, at most 63 characters.\n",
		    NULL);
	code = client_parse(&c, argc, argv, NULL, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos != 1) {
		code = client_usage_error(&c, "expected one NAME");
		goto out;
	}
	rc = client_connect(&c);
	if (!rc) {
		body = json_pack("{s:s}", "name", argv[1]);
		if (!body)
			rc = client_error(COFFER_ERR_INVALID, "cannot encode the request: is NAME UTF-8?");
	}
	if (!rc)
		rc = client_call(&c, "POST", "/v1/apps", body, &ans);
	if (!rc)
		printf("New app created: %s\n", argv[1]);
	code = client_exit(rc);
out:
	json_decref(ans);
	json_decref(body);
	client_release(&c);
	return code;
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

static int apps_list(int argc, char **argv)
{
	static const char *const headers[] = { "NAME", "SECRETS", "CREATED" };
	static const struct client_listing l = { "apps list [--json]", "Lists the apps this token can see.\n",
						 "/v1/apps", "apps", headers, 3, app_row };
	return client_list_command(argc, argv, &l);
}

/* Asks on the terminal for the app's name; 1 when typed exactly. */
static int confirmed(const char *name)
{
	char line[CONFIRM_MAX];
	fprintf(stderr,
		"Destroying app '%s' deletes its keys and its secrets for good (the audit log keeps its events).\n"
		"Type the app's name to confirm: ",
		name);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	line[strcspn(line, "\r\n")] = '\0';
	return strcmp(line, name) == 0;
}

static int apps_destroy(int argc, char **argv)
{
	struct client c;
	json_t *ans = NULL;
	char path[CLIENT_PATH_MAX];
	int n_pos = 0, yes = 0, code;
	enum coffer_err rc;
	const struct client_opt opts[] = {
		{ "yes", 'y', CLIENT_OPT_FLAG, &yes },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};

	client_init(&c, "apps destroy NAME [--yes]",
		    "Destroys an app: its keys and its secrets are deleted; the audit log keeps its\n"
		    "events. Without --yes, asks you to type the app's name (on a terminal only).\n",
		    "  -y, --yes                 do not ask for confirmation\n");
	code = client_parse(&c, argc, argv, opts, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos != 1) {
		code = client_usage_error(&c, "expected one NAME");
		goto out;
	}
	if (!yes && !isatty(STDIN_FILENO)) {
		code = client_usage_error(&c, "not destroying app '%s' without confirmation: pass --yes", argv[1]);
		goto out;
	}
	rc = client_connect(&c);
	if (!rc)
		rc = client_path(path, sizeof(path), "/v1/apps/", argv[1], "");
	if (!rc && !yes && !confirmed(argv[1]))
		rc = client_error(COFFER_ERR_INVALID, "the name typed does not match: app '%s' not destroyed", argv[1]);
	if (!rc)
		rc = client_call(&c, "DELETE", path, NULL, &ans);
	if (!rc)
		printf("Destroyed app %s\n", argv[1]);
	code = client_exit(rc);
out:
	json_decref(ans);
	client_release(&c);
	return code;
}

static const struct client_sub subs[] = {
	{ "create", apps_create, "apps create NAME" },
	{ "list", apps_list, "apps list [--json]" },
	{ "ls", apps_list, NULL },
	{ "destroy", apps_destroy, "apps destroy NAME [--yes]" },
};

int cmd_apps(int argc, char **argv)
{
	return client_dispatch("apps", subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
