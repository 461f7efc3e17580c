/*
 * main.c — the `coffer` binary: one table of subcommands, dispatched by name.
 * Every role (api, keeper, agent, dev) and every user command is an entry here.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "client.h"
#include "log.h"
#include "banned.h"

static const struct cli_command commands[] = {
	{ "agent", cmd_agent, "agent --api URL --keeper URL --state-dir DIR [--join TOKEN] [--name NAME] [--ready-file PATH] "
	  "[--log-level LEVEL]",
	  "run the host agent: enrol once with a join token, register with the api, heartbeat" },
	{ "api", cmd_api, "api --state-dir DIR --store URL --listen HOST:PORT --keeper URL --keeper-pub FILE --keeper-credential FILE --boot-key FILE "
	  "[--ready-file PATH] [--log-level LEVEL] [--store-conns N] | api bootstrap --store URL --org NAME [--json]",
	  "run the API server (seals, never opens), or create an org and its first admin token" },
	{ "apps", cmd_apps, "apps create NAME | apps list [--json] | apps destroy NAME [--yes]", "manage apps" },
	{ "audit", cmd_audit, "audit [-a APP] [--json] | audit verify", "list the audit log, or verify its hash chain" },
	{ "deploy", cmd_deploy,
	  "deploy [-a APP] [--count N] [--grace DURATION] [--env NAME=VALUE ...] [--detach] -- COMMAND [ARGS...]",
	  "make a release that runs COMMAND on the app's machines, and wait for it" },
	{ "dev", cmd_dev, "dev [--state-dir DIR] [--api-addr HOST:PORT] [--keeper-addr HOST:PORT] [--agents N]",
	  "run every role on this machine, on SQLite (for trying coffer)" },
	{ "help", cmd_help, "help [COMMAND]", "show commands, or one command's usage, and the exit codes" },
	{ "hosts", cmd_hosts, "hosts list [--json]", "list the enrolled hosts, their state and last heartbeat" },
	{ "keeper", cmd_keeper, "keeper init --state-dir DIR | keeper join-token --state-dir DIR [--key-file PATH] [--ttl DURATION] "
	  "| keeper --state-dir DIR --store URL --listen HOST:PORT [--ready-file PATH] [--key-file PATH] [--log-level LEVEL]",
	  "create the master key, print a one-time host join token, or run the key custodian" },
	{ "machines", cmd_machines, "machines list [-a APP] [--all] [--json] | machines destroy ID [-a APP] [--yes]",
	  "list an app's machines, or destroy one" },
	{ "releases", cmd_releases, "releases [-a APP] [--json]", "list an app's releases, newest first" },
	{ "scale", cmd_scale, "scale count N [-a APP] [--detach]", "change how many machines an app runs" },
	{ "secrets", cmd_secrets,
	  "secrets set|unset|import|list|deploy [-a APP] [--stage] [--detach] [--json] ...",
	  "set, unset, import, list and deploy an app's secrets (values are never shown)" },
	{ "status", cmd_status, "status [-a APP] [--json]",
	  "show an app's current release, secrets version, config and machines" },
	{ "tokens", cmd_tokens, "tokens create --role admin|deploy|read [--app APP] [--expiry DURATION] [--json] | tokens list [--json] | tokens revoke ID",
	  "manage access tokens" },
	{ "version", cmd_version, "version", "print the version" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int cli_fail(enum coffer_err rc, const char *fmt, ...)
{
	va_list ap;
	fputs("coffer: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return coffer_err_exit_code(rc);
}

int cli_usage(const char *cmd)
{
	const struct cli_command *c = find_command(cmd);
	fprintf(stderr, "usage: coffer %s\n", c ? c->usage : "COMMAND [ARGS]");
	return coffer_err_exit_code(COFFER_ERR_USAGE);
}

int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("version");
	printf("coffer %s\n", COFFER_VERSION);
	return 0;
}

int cmd_help(int argc, char **argv)
{
	if (argc > 2)
		return cli_usage("help");
	if (argc == 2) {
		const struct cli_command *c = find_command(argv[1]);
		if (!c)
			return cli_fail(COFFER_ERR_USAGE, "unknown command '%s'", argv[1]);
		printf("usage: coffer %s\n\n%s\n", c->usage, c->summary);
		return 0;
	}
	printf("usage: coffer COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		printf("  %-9s %s\n", commands[i].name, commands[i].summary);
	printf("\nRun 'coffer help COMMAND' for the usage of a command.\n");
	printf("\nexit codes:\n");
	static const enum coffer_err shown[] = { COFFER_OK,	   COFFER_ERR_INTERNAL,  COFFER_ERR_USAGE,
						 COFFER_ERR_UNAUTH,   COFFER_ERR_FORBIDDEN, COFFER_ERR_NOT_FOUND,
						 COFFER_ERR_CONFLICT, COFFER_ERR_UNAVAILABLE };
	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
		enum coffer_err e = shown[i];
		const char *what = e == COFFER_OK ? "success" : e == COFFER_ERR_INTERNAL ? "failure" : coffer_strerror(e);
		printf("  %d  %s\n", coffer_err_exit_code(e), what);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "coffer: error: libsodium failed to initialise\n");
		return 1;
	}
	log_set_role("cli");
	if (argc < 2)
		return cmd_help(1, argv);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return cmd_help(1, argv);
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(1, argv);
	const struct cli_command *c = find_command(argv[1]);
	if (!c) {
		fprintf(stderr, "coffer: error: unknown command '%s'; see 'coffer help'\n", argv[1]);
		return coffer_err_exit_code(COFFER_ERR_USAGE);
	}
	int code = c->run(argc - 1, argv + 1);
	if (client_interrupted()) {
		/* Ctrl-C stopped a wait after its cleanup: end as the shell expects of an interrupted command */
		fflush(stdout);
		signal(SIGINT, SIG_DFL);
		raise(SIGINT);
	}
	return code;
}
