/*
 * opts.h — the command line of every `coffer` command: one option parser
 * for the user commands (src/cli) and the roles (api, keeper, agent, dev),
 * how a command reports a command-line error, and the roles' entry points.
 *
 * The arrow goes from the CLI down: src/cli/main.c lists the roles in its
 * command table and tells this module where each command's usage line is
 * (opts_set_usage_source); the roles include this header, never the CLI's.
 *
 * Values the parser hands out point into argv (nothing is copied or owned).
 */
#ifndef COFFER_OPTS_H
#define COFFER_OPTS_H

#include <stddef.h>

#include "err.h"

enum opts_kind {
	OPTS_FLAG,  /* dst: int *, set to 1 */
	OPTS_VALUE, /* dst: const char **, the last value given */
	OPTS_LIST,  /* dst: struct opts_values *, every value in order */
	OPTS_HELP,  /* dst: int *, set to 1; parsing stops there (-h, --help) */
};

struct opts_spec {
	const char *name; /* long name without "--"; NULL ends a table */
	char short_name;  /* 0: none */
	enum opts_kind kind;
	void *dst;
};

#define OPTS_VALUES_MAX 256
struct opts_values {
	const char *v[OPTS_VALUES_MAX];
	size_t n;
};

#define OPTS_WHY_SIZE 128 /* what opts_parse writes when it refuses a command line */

/*
 * Parses argv[first..argc) against specs. "--name value", "--name=value",
 * "-x value" and "-xvalue" are accepted; "--" ends the options; options and
 * positional arguments may be mixed; "-" alone is positional. The
 * positional arguments are moved, in order, to argv[first..first+*n_pos).
 * Returns 0; 1 when an OPTS_HELP option stopped it; -1 for a usage error,
 * with why ("unknown option '--x'", "option '--x' needs a value", ...):
 * an option is named up to its '=', never with its value.
 */
COFFER_MUST_CHECK int opts_parse(const struct opts_spec *specs, int argc, char **argv, int first, int *n_pos,
				 char why[OPTS_WHY_SIZE]);

/*
 * Whether typed[0..len) is near enough to name to be a typing mistake of
 * it ("secret" for "secrets", "--stge" for "--stage"): at most one edit
 * (insertion, deletion, substitution or swap of two neighbours) for names
 * of up to 4 characters, two for longer ones. Returns the edits, or -1
 * when it is farther (or typed is empty or longer than 64 bytes).
 */
int opts_near(const char *typed, size_t len, const char *name);
/* Of names[0..n) (NULL entries skipped), the nearest to typed[0..len) (opts_near), or NULL. */
const char *opts_nearest(const char *typed, size_t len, const char *const *names, size_t n);

/*
 * A role's option parsing (api, keeper, agent, dev): opts_parse, and a
 * refusal or any positional argument is reported as "coffer: error: ...;
 * see 'coffer help <cmd>'". Returns 0, or the usage exit code.
 */
COFFER_MUST_CHECK int opts_parse_role(const char *cmd, const struct opts_spec *specs, int argc, char **argv,
				      int first);

/*
 * Prints "coffer: error: <message>" on stderr and returns the exit code of rc.
 */
int opts_fail(enum coffer_err rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "usage: coffer <usage of cmd>" on stderr and returns the usage exit code. */
int opts_usage(const char *cmd);

/* The usage line of cmd (without "coffer "), or "COMMAND [ARGS]" when none is known. */
const char *opts_usage_of(const char *cmd);
/* Where opts_usage finds a command's usage line (set once by main; NULL: "COMMAND [ARGS]"). */
void opts_set_usage_source(const char *(*usage_of)(const char *cmd));

/* The roles' entry points (src/api/api.c, src/keeper/keeper.c, src/agent/agent.c, src/cli/cmd_dev.c). */
int cmd_api(int argc, char **argv);
int cmd_keeper(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_dev(int argc, char **argv);
int cmd_tls(int argc, char **argv); /* src/cli/cmd_tls.c */

#endif
