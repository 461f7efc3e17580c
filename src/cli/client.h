/*
 * client.h — what the user commands (apps, secrets, tokens, audit,
 * deploy, releases, machines, scale, status) share: the command line, the
 * config file, the connection to the API, and following a release.
 *
 * A struct client is one command's run: it borrows strings from argv and
 * the environment, owns the token (a struct secret) and the HTTP client,
 * and client_release frees them. The client_* functions that return an
 * enum coffer_err have already told the user what went wrong ("coffer:
 * error: ..." on stderr) when they fail: the caller only turns the code into
 * an exit code (coffer_err_exit_code), so every exit code comes from the one
 * table in err.c.
 *
 * Where things come from:
 *   API URL  env COFFER_API_URL, else "api_url" in the config file;
 *   token    -t/--access-token, else env COFFER_TOKEN, else "token" in the
 *            config file (the flag's value is blanked in argv at once);
 *   app      -a/--app, else env COFFER_APP (client_need_app).
 * Config file: env COFFER_CONFIG, else $XDG_CONFIG_HOME/coffer/config.json,
 * else ~/.config/coffer/config.json; a JSON object with the optional string
 * fields "api_url" and "token" and no others. It is read only when the
 * environment does not give both, and refused when group or others may
 * read or write it (it holds a token).
 */
#ifndef COFFER_CLI_CLIENT_H
#define COFFER_CLI_CLIENT_H

#include <stddef.h>

#include "err.h"
#include "http_client.h"
#include "json.h"
#include "secret.h"

#define CLI_CONFIG_PATH_MAX 4096
#define CLI_CONFIG_MAX ((size_t)64 << 10)
#define CLIENT_TIMEOUT_MS 120000        /* a secrets change may wait for a release */
#define CLIENT_REQUEST_MAX ((size_t)1 << 20)
#define CLIENT_PATH_MAX 1024            /* a request path with its query */
#define CLIENT_SEGMENT_MAX 768          /* one percent-encoded path segment */

/* Where the config file is (it need not exist). COFFER_ERR_NOT_FOUND when neither XDG_CONFIG_HOME nor HOME is set. */
COFFER_MUST_CHECK enum coffer_err cli_config_path(char *out, size_t size);
/*
 * Writes the config file at cli_config_path: {"api_url": ..., "token": ...}
 * (a NULL argument leaves its field out; the file is replaced, not
 * merged). The folder is created 0700 if missing; the file is written with
 * fs_write_atomic, mode 0600 from its creation, and its bytes are built in
 * secure memory. COFFER_ERR_INVALID for an api_url that is not http(s) or
 * holds '"', '\\' or control characters, or a token with bytes outside
 * 0x21..0x7e or a '"' or '\\'. Prints nothing.
 */
COFFER_MUST_CHECK enum coffer_err cli_config_write(const char *api_url, const struct secret *token);
/*
 * Reads the config file at cli_config_path. A missing file gives COFFER_OK
 * with api_url "" and *token NULL. api_url may be NULL (not wanted). *token (NULL if the file has none) is
 * the caller's to secret_free. Prints nothing.
 */
COFFER_MUST_CHECK enum coffer_err cli_config_read(char *api_url, size_t api_url_size, struct secret **token);

/* One option of a command. Every command also takes -h/--help and -t/--access-token. */
enum client_opt_kind { CLIENT_OPT_FLAG, CLIENT_OPT_VALUE, CLIENT_OPT_LIST };
struct client_opt {
	const char *name;       /* long name without "--"; NULL ends a table */
	char short_name;        /* 0: none */
	enum client_opt_kind kind;
	/* int * (set to 1) for a flag, const char ** for a value, struct client_values * for a list */
	void *dst;
};

/* The values of an option that may be given many times (--env K=V --env ...), in order, borrowed from argv. */
#define CLIENT_VALUES_MAX 256
struct client_values {
	const char *v[CLIENT_VALUES_MAX];
	size_t n;
};

struct client {
	const char *usage;       /* "secrets set [-a APP] ... NAME=VALUE..." (without "coffer ") */
	const char *help;        /* what the command does, for -h: lines ending in "\n" */
	const char *options;     /* its option lines ("  -a, --app APP  ...\n"), or NULL */
	const char *app_flag;    /* -a/--app when the command takes it */
	const char *app;         /* resolved by client_need_app */
	struct secret *token;
	char api_url[HTTP_CLIENT_URL_MAX];
	struct http_client *http;
	int quiet_unreachable;   /* client_call does not report an API it cannot reach (a wait retries) */
	int unreachable;         /* the last client_call could not reach the API */
};

/* The help line of -a/--app, for the commands that take it. */
#define CLIENT_APP_OPTION "  -a, --app APP             the app (default: $COFFER_APP)\n"

/* Exit code meaning "carry on" from client_parse. */
#define CLIENT_CONTINUE (-1)

void client_init(struct client *c, const char *usage, const char *help, const char *options);
void client_release(struct client *c);

/*
 * Parses argv[1..argc) (argv[0] is the subcommand's name) against opts
 * (NULL-name terminated; may be NULL), plus -h/--help and
 * -t/--access-token. "--name value", "--name=value", "-x value" and
 * "-xvalue" are accepted; "--" ends the options; options and positional
 * arguments may be mixed. A list option given more than CLIENT_VALUES_MAX
 * times is a usage error. The positional arguments are moved, in order, to
 * argv[1..*n_pos]. Returns CLIENT_CONTINUE, or the exit code to return
 * now: 0 after printing the help, the usage exit code after a usage error
 * (an unknown option is named up to its '=', never with its value).
 */
int client_parse(struct client *c, int argc, char **argv, const struct client_opt *opts, int *n_pos);

/* One subcommand of a group ("secrets set"). */
struct client_sub {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the subcommand's name */
	const char *usage;                 /* without "coffer " */
};
/*
 * Runs the subcommand named by argv[1] (argv[0] is the group, e.g.
 * "secrets"). -h/--help lists the subcommands (exit 0); none or an unknown
 * one is a usage error.
 */
int client_dispatch(const char *group, const struct client_sub *subs, size_t n_subs, int argc, char **argv);

/* Prints "coffer: error: <message>" on stderr and returns rc. */
enum coffer_err client_error(enum coffer_err rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "coffer: error: <message>" and the usage line on stderr; returns the usage exit code. */
int client_usage_error(const struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Exit code for rc, an error client_* already reported. */
int client_exit(enum coffer_err rc);

/*
 * A listing command (`apps list`, `tokens list`, `hosts list`, `releases`,
 * `machines list`): takes --json, GETs `path`, and prints the array under
 * `key` as JSON or as a table whose rows `row` fills: cells[i] for column
 * i, pointing into the item or into scratch[i] (CLIENT_CELL_SIZE bytes
 * each) for formatted text.
 */
#define CLIENT_CELL_SIZE 64
#define CLIENT_LIST_COLS_MAX 8
typedef void (*client_row_fn)(const json_t *item, int64_t now, const char **cells,
			      char (*scratch)[CLIENT_CELL_SIZE]);
struct client_listing {
	const char *usage, *help; /* as for client_init */
	const char *path;         /* GET path */
	const char *key;          /* the array's name in the answer */
	const char *const *headers;
	size_t ncols; /* at most CLIENT_LIST_COLS_MAX */
	client_row_fn row;
};
int client_list_command(int argc, char **argv, const struct client_listing *l);
/*
 * The same for a list of one app: the command also takes -a/--app and GETs
 * "/v1/apps/<app><app_suffix>" (l->path is not used); with all_help (its
 * help line) not NULL it takes --all, which adds "?all=1".
 */
int client_list_app_command(int argc, char **argv, const struct client_listing *l, const char *app_suffix,
			    const char *all_help);

/* Resolves the app (-a, else COFFER_APP); usage error "no app given: use -a APP or set COFFER_APP". */
COFFER_MUST_CHECK enum coffer_err client_need_app(struct client *c);
/* Resolves the API URL and the token (see above) and makes the HTTP client. */
COFFER_MUST_CHECK enum coffer_err client_connect(struct client *c);

/*
 * One JSON call. body may be NULL. On a 2xx answer *out (may be NULL when
 * the answer is not wanted) is the parsed document, the caller's to
 * json_decref. A peer that cannot be reached: COFFER_ERR_UNAVAILABLE,
 * "cannot reach the API at URL". An API error: its message from the body
 * ("coffer: error: app 'web' not found") and the code named in the body's
 * error.code (coffer_err_from_name), else the one of the HTTP status.
 */
COFFER_MUST_CHECK enum coffer_err client_call(struct client *c, const char *method, const char *path,
					      const json_t *body, json_t **out);
/* The same with a body already serialised in secure memory (secret values). */
COFFER_MUST_CHECK enum coffer_err client_call_secret(struct client *c, const char *method, const char *path,
						     const struct secret *body, json_t **out);

/* "prefix" + percent-encoded segment + "suffix" into out; reports a name that is too long. */
COFFER_MUST_CHECK enum coffer_err client_path(char *out, size_t size, const char *prefix, const char *segment,
					      const char *suffix);

/* Prints doc as indented JSON and a newline on stdout. */
COFFER_MUST_CHECK enum coffer_err client_print_json(const json_t *doc);
/* "API answered something unexpected" (COFFER_ERR_PROTOCOL), naming the field. */
enum coffer_err client_bad_answer(const char *what);

/* The string field key of o, or NULL when absent or not a string (for display). */
const char *client_str(const json_t *o, const char *key);

/*
 * Waits for release `version` of c->app (resolved): polls GET
 * /v1/apps/:app/releases/:version every CLIENT_WAIT_POLL_MS and prints each
 * machine's progress (format_machine_step) — on a terminal one live line
 * rewritten in place, else one plain line each time a machine's step
 * changes. At the end "Release vN succeeded" on stdout (COFFER_OK), or
 * "Release vN failed: <reason>" with the whole reason on stderr
 * (COFFER_ERR_INTERNAL: exit 1). Ctrl-C stops waiting, not the release: it
 * says so on stderr and returns COFFER_ERR_UNAVAILABLE with
 * client_interrupted() true. An API that cannot be reached (restarting) is
 * polled again for up to CLIENT_WAIT_UNREACHABLE_MS; any other API error
 * ends the wait, reported as client_call does.
 */
#define CLIENT_WAIT_POLL_MS 250
#define CLIENT_WAIT_UNREACHABLE_MS 30000  /* an API that cannot be reached for this long ends the wait */
COFFER_MUST_CHECK enum coffer_err client_wait_release(struct client *c, int64_t version);
/*
 * For an answer that made a release ({"release": V, "version": S, ...}; S,
 * the secrets version, may be absent or 0): prints "Release vN created"
 * (" with secrets version S" when S > 0), then with detach "Follow release
 * vN with 'coffer releases -a APP'" and COFFER_OK, else client_wait_release.
 */
COFFER_MUST_CHECK enum coffer_err client_follow_release(struct client *c, const json_t *ans, int detach);
/* 1 once Ctrl-C stopped client_wait_release: main() then dies of SIGINT after cleaning up. */
int client_interrupted(void);

/*
 * Overwrites a string of argv in place with NUL bytes so that ps(1) no
 * longer shows it (its pointer stays valid and reads as "").
 */
void client_blank_arg(char *s);

#endif
