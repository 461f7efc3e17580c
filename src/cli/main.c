/*
 * main.c — the `coffer` binary: one table of commands, dispatched by name.
 * Every role (api, keeper, agent, dev) and every user command is a row
 * here; a noun's subcommands are rows of its cmd_<noun>.c (cli.h).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "client.h"
#include "log.h"
#include "banned.h"

#define USAGE_TEXT_MAX 1024

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct cli_cmd agent_cmd = {
	.name = "agent", .main = cmd_agent,
	.usage = "agent --api URL [--api URL]... --keeper URL --state-dir DIR [--join TOKEN] [--name NAME] "
		 "[--ready-file PATH] [--ca FILE] [--log-level LEVEL] [--metrics-listen HOST:PORT] [--keep-machines] "
		 "| agent rotate-keys --state-dir DIR",
	.summary = "run the host agent: enrol once with a join token, register with the api, heartbeat; rotate its keys",
};
/* `api enrol-deployer` enrols a key at the keeper, as `login` does: the CLI's; the rest is the api role's. */
static int cmd_api_or_enrol(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "enrol-deployer") == 0)
		return cli_api_enrol_deployer(argc, argv);
	return cmd_api(argc, argv);
}

static const struct cli_cmd api_cmd = {
	.name = "api", .main = cmd_api_or_enrol,
	.usage = "api --state-dir DIR --store URL --listen HOST:PORT --keeper URL --keeper-pub FILE --keeper-credential "
		 "FILE --boot-key FILE --rows-key FILE --digest-key FILE [--tls-cert FILE --tls-key FILE] [--ca FILE] "
		 "[--ready-file PATH] [--log-level LEVEL] [--store-conns N] [--metrics-listen HOST:PORT] [--deployer-key FILE]... "
		 "| api bootstrap --store URL --rows-key FILE --org NAME [--json] | api enrol-deployer --deployer-token TOKEN|- "
		 "--keeper URL [--ca FILE] --key FILE [--name NAME]",
	.summary = "run the API server (seals, never opens), or create an org and its first admin token",
};
static const struct cli_cmd dev_cmd = {
	.name = "dev", .main = cmd_dev,
	.usage = "dev [--state-dir DIR] [--api-addr HOST:PORT] [--keeper-addr HOST:PORT] [--agents N] [-v|--verbose]",
	.summary = "run every role on this machine, on SQLite (for trying coffer)",
};
static const struct cli_cmd help_cmd = {
	.name = "help", .main = cmd_help, .usage = "help [COMMAND]",
	.summary = "show commands, or one command's usage, and the exit codes",
};
static const struct cli_cmd keeper_cmd = {
	.name = "keeper", .main = cmd_keeper,
	.usage = "keeper init --state-dir DIR | keeper join-token --state-dir DIR [--key-file PATH] [--ttl DURATION] "
		 "| keeper deployer-token --state-dir DIR --store URL --org NAME [--app NAME] [--role admin|deploy] "
		 "[--ttl DURATION] [--key-file PATH] | keeper --state-dir DIR --store URL --listen HOST:PORT [--tls-cert FILE --tls-key FILE] "
		 "[--ready-file PATH] [--key-file PATH] [--log-level LEVEL] [--metrics-listen HOST:PORT]",
	.summary = "create the master key, print a one-time host join or deployer token, or run the key custodian",
};
static const struct cli_cmd tls_cmd = {
	.name = "tls", .main = cmd_tls,
	.usage = "tls ca --dir DIR [--days N] | tls cert --dir DIR --name NAME --host HOST... [--days N]",
	.summary = "make a CA, or a server certificate signed by it (for --tls-cert/--tls-key and --ca)",
};
static const struct cli_cmd version_cmd = {
	.name = "version", .main = cmd_version, .usage = "version", .summary = "print the version",
};

/* Every command, in the order `coffer help` lists them. */
static const struct cli_cmd *const commands[] = {
	&agent_cmd, &api_cmd,	   &cli_apps,	 &cli_audit,	&cli_deploy,  &cli_deployers, &dev_cmd,	    &help_cmd,	 &cli_hosts,
	&keeper_cmd, &cli_kms, &cli_login, &cli_machines, &cli_releases, &cli_scale, &cli_secrets, &cli_status, &cli_tokens, &tls_cmd, &version_cmd,
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cli_cmd *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

static char usage_buf[USAGE_TEXT_MAX];

static const char *usage_of(const char *name)
{
	const struct cli_cmd *c = find_command(name);
	if (!c)
		return NULL;
	cli_usage_text(c, usage_buf, sizeof(usage_buf));
	return usage_buf;
}

static int cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return opts_usage("version");
	printf("coffer %s\n", COFFER_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	if (argc > 2)
		return opts_usage("help");
	if (argc == 2) {
		const struct cli_cmd *c = find_command(argv[1]);
		if (!c)
			return opts_fail(COFFER_ERR_USAGE, "unknown command '%s'", argv[1]);
		printf("usage: coffer %s\n\n%s\n", usage_of(argv[1]), c->summary);
		return 0;
	}
	printf("usage: coffer COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		printf("  %-9s %s\n", commands[i]->name, commands[i]->summary);
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
	opts_set_usage_source(usage_of);
	if (argc < 2)
		return cmd_help(1, argv);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return cmd_help(1, argv);
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(1, argv);
	const struct cli_cmd *c = find_command(argv[1]);
	if (!c) {
		const char *names[N_COMMANDS], *near;
		for (size_t i = 0; i < N_COMMANDS; i++)
			names[i] = commands[i]->name;
		near = opts_nearest(argv[1], strlen(argv[1]), names, N_COMMANDS);
		if (near)
			fprintf(stderr, "coffer: error: unknown command '%s'; did you mean '%s'?\n", argv[1], near);
		else
			fprintf(stderr, "coffer: error: unknown command '%s'; see 'coffer help'\n", argv[1]);
		return coffer_err_exit_code(COFFER_ERR_USAGE);
	}
	int code = cli_run(c, argc - 1, argv + 1);
	if (client_interrupted()) {
		/* Ctrl-C stopped a wait after its cleanup: end as the shell expects of an interrupted command */
		fflush(stdout);
		signal(SIGINT, SIG_DFL);
		raise(SIGINT);
	}
	return code;
}
