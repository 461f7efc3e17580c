/*
 * cmd_hosts.c — `coffer hosts list`: the hosts the keeper enrolled whose
 * certificate the api verified, their state and last heartbeat; `coffer
 * hosts revoke`.
 */
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "client.h"
#include "format.h"
#include "banned.h"

#define CONFIRM_PROMPT_MAX 512

static void host_row(const json_t *host, int64_t now, const char **cells, char (*scratch)[CLIENT_CELL_SIZE])
{
	format_when(client_str(host, "last_heartbeat"), now, "never", scratch[3], CLIENT_CELL_SIZE);
	cells[0] = client_str(host, "id");
	cells[1] = client_str(host, "name");
	cells[2] = client_str(host, "state");
	cells[3] = scratch[3];
}

static enum coffer_err hosts_revoke(struct client *c, int argc, char **argv)
{
	char path[CLIENT_PATH_MAX], prompt[CONFIRM_PROMPT_MAX];
	json_t *ans = NULL;
	enum coffer_err rc = client_path(path, sizeof(path), "/v1/hosts/", argv[1], "/revoke");

	(void)argc;
	if (!rc && fmt_into(prompt, sizeof(prompt),
			    "Revoking host '%s' is for good: the keeper refuses it from now on and its machines\n"
			    "move to other hosts. Type the host's name to confirm: ", argv[1]))
		rc = client_error(COFFER_ERR_INVALID, "name too long");
	if (!rc && !client_confirm(c, prompt, argv[1]))
		rc = client_error(COFFER_ERR_INVALID, "the name typed does not match: host '%s' not revoked", argv[1]);
	if (!rc)
		rc = client_call(c, "POST", path, NULL, &ans);
	if (!rc && c->json)
		rc = client_print_json(ans);
	else if (!rc)
		printf("Revoked host %s; %zu machine(s) moved to other hosts\n", argv[1],
		       json_array_size(json_object_get(ans, "machines")));
	json_decref(ans);
	return rc;
}

static const char *const host_headers[] = { "ID", "NAME", "STATE", "LAST HEARTBEAT" };
static const struct client_listing hosts_listing = { .path = "/v1/hosts", .key = "hosts", .headers = host_headers,
						     .ncols = 4, .row = host_row };

static const struct cli_cmd hosts_cmds[] = {
	{ .name = "list", .alias = "ls", .usage = "hosts list [--json]", .run = client_list_run,
	  .flags = CLI_NEED_API | CLI_JSON, .json_help = CLIENT_LIST_JSON_HELP, .data = &hosts_listing,
	  .help = "Lists the hosts enrolled with the keeper (see 'coffer agent'), their state and\n"
		  "when each last sent a heartbeat. Needs an admin token.\n" },
	{ .name = "revoke", .usage = "hosts revoke HOST [--yes] [--json]", .run = hosts_revoke,
	  .flags = CLI_NEED_API | CLI_DESTRUCTIVE | CLI_JSON, .json_help = "print the API's answer",
	  .help = "Revokes a host (by name or id) for good: the keeper refuses its every request\n"
		  "and open from now on, its agent stops its machines, and the api moves them to\n"
		  "other ready hosts (each app keeps its count). Needs an admin token of an org\n"
		  "that runs every live machine on the host (hosts belong to no org). Without\n"
		  "--yes, asks you to type the host's name (on a terminal only).\n",
	  .min_args = 1, .max_args = 1, .args_error = "expected one HOST" },
};
static const struct cli_group hosts_group = CLI_GROUP("hosts", hosts_cmds);
const struct cli_cmd cli_hosts =
	CLI_NOUN("hosts", &hosts_group, "list the enrolled hosts, revoke one");
