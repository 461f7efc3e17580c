/*
 * cli.h — the `coffer` command table: each row declares a command once
 * (name, usage, help, options, positional arguments) with setup flags
 * that cli_run applies before the body runs, like git's run_builtin:
 *
 *   parse the options (the row's own, those its flags add, -h, -t)
 *   -> the number of positional arguments -> the app (CLI_NEED_APP)
 *   -> the row's check of its own options -> the confirm rule
 *   (CLI_DESTRUCTIVE) -> the API (CLI_NEED_API) -> body
 *
 * A body sees a struct client whose setup is done, and its positional
 * arguments in argv[1..argc) (argv[0] is the command's name). It returns an
 * enum coffer_err it has already reported (client_error,
 * client_usage_error); cli_run turns it into the exit code.
 *
 * The roles (api, keeper, agent, dev) are rows too, with a `main` that gets
 * the whole command line: their options go through opts.h, which they
 * include instead of this header.
 */
#ifndef COFFER_CLI_H
#define COFFER_CLI_H

#include <stddef.h>

#include "err.h"
#include "opts.h"

struct client;

enum cli_flags {
	CLI_NEED_APP = 1 << 0,    /* takes -a/--app; the app is -a, else $COFFER_APP, else a usage error */
	CLI_NEED_API = 1 << 1,    /* connects to the API (URL and token) before the body */
	CLI_JSON = 1 << 2,        /* takes --json (c->json) */
	CLI_DESTRUCTIVE = 1 << 3, /* takes -y/--yes; without it and without a terminal: refused (client_confirm) */
	CLI_DETACH = 1 << 4,      /* makes a release: takes --detach (c->detach) */
};

/* One option of a row, beyond those its flags add. */
struct cli_opt {
	const char *name; /* long name; NULL ends a table */
	char short_name;
	enum opts_kind kind;
	const char *arg;  /* its value's name in the help ("N"), NULL for a flag */
	const char *help; /* one line, without the final newline */
};

#define CLI_ARGS_ANY (-1)

struct cli_group;

struct cli_cmd {
	const char *name;
	const char *usage;   /* one line, without "coffer " */
	const char *summary; /* top level: the line `coffer help` shows */
	const char *help;    /* what --help says about it: lines ending in "\n" */
	unsigned flags;      /* enum cli_flags */
	const struct cli_opt *opts;
	int min_args, max_args;  /* positional arguments; max CLI_ARGS_ANY: no limit */
	const char *args_error;  /* the usage error when their number is off */
	const char *json_help;   /* CLI_JSON: what --json prints, when not the API's answer */
	const void *data;        /* the body's own (a listing: struct client_listing) */
	/* checks the command line before the API is reached (may leave a request body in c->body) */
	enum coffer_err (*check)(struct client *c, int argc, char **argv);
	enum coffer_err (*run)(struct client *c, int argc, char **argv);
	int (*main)(int argc, char **argv);  /* instead of run: no setup (roles, help, version) */
	const struct cli_group *group;       /* instead of run: a noun whose subcommands these are */
	const char *alias;                   /* another name ("ls"), not listed */
	/* blanks in argv[1..argc) what ps must not show (values), after the body or a failed setup */
	void (*scrub)(int argc, char **argv);
};

struct cli_group {
	const char *name;
	const struct cli_cmd *cmds;
	size_t n;
};

#define CLI_GROUP(name_, rows) { name_, rows, sizeof(rows) / sizeof(rows[0]) }
#define CLI_NOUN(name_, group_, summary_) { .name = name_, .group = group_, .summary = summary_ }

/* Runs row cmd with argv[0] its name: setup by its flags, then its body; returns the exit code. */
int cli_run(const struct cli_cmd *cmd, int argc, char **argv);
/* Writes the usage of cmd ("apps create NAME | apps list [--json] | ...", for a group) into out. */
void cli_usage_text(const struct cli_cmd *cmd, char *out, size_t size);

/* The rows of src/cli/cmd_<noun>.c that main.c's table lists: a noun (its subcommands) or a command. */
extern const struct cli_cmd cli_apps, cli_audit, cli_deploy, cli_hosts, cli_machines, cli_releases, cli_scale,
	cli_secrets, cli_status, cli_tokens;
extern const struct cli_cmd cli_deployers, cli_login; /* cmd_login.c */
extern const struct cli_cmd cli_kms;                 /* cmd_kms.c */
extern const struct cli_group cli_keys_group;        /* cmd_kms.c: `secrets keys` */

#endif
