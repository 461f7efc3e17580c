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

static int hosts_list(int argc, char **argv)
{
	static const char *const headers[] = { "ID", "NAME", "STATE", "LAST HEARTBEAT" };
	struct client c;
	struct format_table t = { 0 };
	struct buf out;
	json_t *ans = NULL, *list = NULL, *host;
	int n_pos = 0, json = 0, code;
	size_t i;
	enum coffer_err rc;
	const struct client_opt opts[] = {
		{ "json", 0, CLIENT_OPT_FLAG, &json },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};

	buf_init(&out, BUF_MAX_DEFAULT * 16);
	client_init(&c, "hosts list [--json]",
		    "Lists the hosts enrolled with the keeper (see 'coffer agent'), their state and\n"
		    "when each last sent a heartbeat. Needs an admin token.\n",
		    "      --json                print the API's list as JSON\n");
	code = client_parse(&c, argc, argv, opts, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos != 0) {
		code = client_usage_error(&c, "unexpected argument");
		goto out;
	}
	rc = client_connect(&c);
	if (!rc)
		rc = client_call(&c, "GET", "/v1/hosts", NULL, &ans);
	if (!rc && json_get_array(ans, "hosts", 1, &list, NULL))
		rc = client_bad_answer("no \"hosts\" list");
	if (!rc && json) {
		rc = client_print_json(list);
		goto done;
	}
	if (!rc && format_table_init(&t, 4, headers))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	int64_t now = (int64_t)time(NULL);
	json_array_foreach(rc ? NULL : list, i, host) {
		char beat[FORMAT_RELATIVE_SIZE];
		format_when(client_str(host, "last_heartbeat"), now, "never", beat, sizeof(beat));
		const char *row[] = { client_str(host, "id"), client_str(host, "name"), client_str(host, "state"), beat };
		if (format_table_add(&t, row)) {
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
			break;
		}
	}
	if (!rc && format_table_render(&t, &out))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	if (!rc)
		fwrite(out.ptr, 1, out.len, stdout);
done:
	code = client_exit(rc);
out:
	format_table_release(&t);
	buf_release(&out);
	json_decref(ans);
	client_release(&c);
	return code;
}

static const struct client_sub subs[] = {
	{ "list", hosts_list, "hosts list [--json]" },
	{ "ls", hosts_list, NULL },
};

int cmd_hosts(int argc, char **argv)
{
	return client_dispatch("hosts", subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
