/*
 * cmd_hosts.c — `coffer hosts list`: the hosts the keeper enrolled whose
 * certificate the api verified, their state and last heartbeat.
 */
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "client.h"
#include "format.h"
#include "banned.h"

static void host_row(const json_t *host, int64_t now, const char **cells, char (*scratch)[CLIENT_CELL_SIZE])
{
	format_when(client_str(host, "last_heartbeat"), now, "never", scratch[3], CLIENT_CELL_SIZE);
	cells[0] = client_str(host, "id");
	cells[1] = client_str(host, "name");
	cells[2] = client_str(host, "state");
	cells[3] = scratch[3];
}

static const char *const host_headers[] = { "ID", "NAME", "STATE", "LAST HEARTBEAT" };
static const struct client_listing hosts_listing = { .path = "/v1/hosts", .key = "hosts", .headers = host_headers,
						     .ncols = 4, .row = host_row };

static const struct cli_cmd hosts_cmds[] = {
	{ .name = "list", .alias = "ls", .usage = "hosts list [--json]", .run = client_list_run,
	  .flags = CLI_NEED_API | CLI_JSON, .json_help = CLIENT_LIST_JSON_HELP, .data = &hosts_listing,
	  .help = "Lists the hosts enrolled with the keeper (see 'coffer agent'), their state and\n"
		  "when each last sent a heartbeat. Needs an admin token.\n" },
};
static const struct cli_group hosts_group = CLI_GROUP("hosts", hosts_cmds);
const struct cli_cmd cli_hosts =
	CLI_NOUN("hosts", &hosts_group, "list the enrolled hosts, their state and last heartbeat");
