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

static int hosts_list(int argc, char **argv)
{
	static const char *const headers[] = { "ID", "NAME", "STATE", "LAST HEARTBEAT" };
	static const struct client_listing l = {
		"hosts list [--json]",
		"Lists the hosts enrolled with the keeper (see 'coffer agent'), their state and\n"
		"when each last sent a heartbeat. Needs an admin token.\n",
		"/v1/hosts", "hosts", headers, 4, host_row
	};
	return client_list_command(argc, argv, &l);
}

static const struct client_sub subs[] = {
	{ "list", hosts_list, "hosts list [--json]" },
	{ "ls", hosts_list, NULL },
};

int cmd_hosts(int argc, char **argv)
{
	return client_dispatch("hosts", subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
