/*
 * cli.h — what every `coffer` subcommand shares: the command table entry,
 * error reporting and exit codes (all from err.h's one table).
 */
#ifndef COFFER_CLI_H
#define COFFER_CLI_H

#include "err.h"

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command's name; returns the exit code */
	const char *usage;                 /* one line: arguments and options */
	const char *summary;               /* one line: what it does */
};

/* Prints "coffer: error: <message>" on stderr and returns the exit code of rc. */
int cli_fail(enum coffer_err rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "coffer: <usage of cmd>" on stderr and returns the usage exit code. */
int cli_usage(const char *cmd);

int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_dev(int argc, char **argv);
/* user commands: src/cli/cmd_<noun>.c */
int cmd_apps(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_deploy(int argc, char **argv);   /* cmd_deploy.c, with cmd_releases and cmd_scale */
int cmd_releases(int argc, char **argv);
int cmd_scale(int argc, char **argv);
int cmd_hosts(int argc, char **argv);
int cmd_machines(int argc, char **argv); /* cmd_machines.c, with cmd_status */
int cmd_status(int argc, char **argv);
int cmd_secrets(int argc, char **argv);
int cmd_tokens(int argc, char **argv);
/* roles: src/api/api.c, src/keeper/keeper.c and src/agent/agent.c */
int cmd_api(int argc, char **argv);
int cmd_keeper(int argc, char **argv);
int cmd_agent(int argc, char **argv);

#endif
