/*
 * client.h — what the user commands (apps, secrets, tokens, audit,
 * deploy, releases, machines, scale, status) share: the command line, the
 * config file, the connection to the API, and following a release.
 *
 * A struct client is one command's run (cli_run makes it): it borrows
 * strings from argv and the environment, owns the token (a struct secret)
 * and the HTTP client, and cli_run frees them after the body. The
 * client_* functions that return an enum coffer_err have already told the
 * user what went wrong ("coffer: error: ..." on stderr) when they fail: the
 * caller only passes the code on, and cli_run turns it into the exit code
 * (coffer_err_exit_code), so every exit code comes from the one table in
 * err.c.
 *
 * Where things come from:
 *   API URL  env COFFER_API_URL, else "api_url" in the config file; either
 *            may be a comma-separated list of api replicas, failed over
 *            between as endpoints.h says (a request whose connection broke
 *            after sending is not resent unless it is a GET: its outcome is
 *            reported unknown);
 *   token    -t/--access-token, else env COFFER_TOKEN, else "token" in the
 *            config file (the flag's value is blanked in argv at once);
 *   app      -a/--app, else env COFFER_APP (rows flagged CLI_NEED_APP);
 *   CA       --ca FILE, else env COFFER_CA, else "ca" in the config file,
 *            else the system's trust store: the API's certificate is always
 *            verified against it (http_client.h).
 * Config file: env COFFER_CONFIG, else $XDG_CONFIG_HOME/coffer/config.json,
 * else ~/.config/coffer/config.json; a JSON object with the optional string
 * fields "api_url", "ca" (an absolute path) and "token", and the deployer's
 * "keeper_url", "keeper_public_key" and "deployer_id" (`coffer login`), and
 * no others. The deployer's key is deployer.key beside it (0600). It is read only when the
 * environment does not give both, and refused when group or others may
 * read or write it (it holds a token).
 */
#ifndef COFFER_CLI_CLIENT_H
#define COFFER_CLI_CLIENT_H

#include <stddef.h>

#include "buf.h"
#include "cli.h"
#include "deployer.h"
#include "err.h"
#include "http_client.h"
#include "json.h"
#include "opts.h"
#include "project.h"
#include "secret.h"

#define CLI_CONFIG_PATH_MAX 4096
#define CLI_CONFIG_MAX ((size_t)64 << 10)
#define CLIENT_TIMEOUT_MS 120000        /* a secrets change may wait for a release */
#define CLIENT_REQUEST_MAX ((size_t)8 << 20)   /* the api's secrets body limit: 1 MiB of values sealed, in base64url */
#define CLIENT_PATH_MAX 1024            /* a request path with its query */
#define CLIENT_SEGMENT_MAX 768          /* one percent-encoded path segment */

/* Where the config file is (it need not exist). COFFER_ERR_NOT_FOUND when neither XDG_CONFIG_HOME nor HOME is set. */
COFFER_MUST_CHECK enum coffer_err cli_config_path(char *out, size_t size);
/*
 * Writes the config file at cli_config_path: {"api_url": ..., "ca": ..., "token": ...}
 * (a NULL argument leaves its field out; the file is replaced, not
 * merged). The folder is created 0700 if missing; the file is written with
 * fs_write_atomic, mode 0600 from its creation, and its bytes are built in
 * secure memory. COFFER_ERR_INVALID for an api_url that is not http(s) or
 * holds '"', '\\' or control characters, a ca that is not an absolute path
 * of such characters, or a token with bytes outside
 * 0x21..0x7e or a '"' or '\\'. Prints nothing.
 */
COFFER_MUST_CHECK enum coffer_err cli_config_write(const char *api_url, const char *ca, const struct secret *token);
/*
 * Reads the config file at cli_config_path. A missing file gives COFFER_OK
 * with api_url "", ca "" and *token NULL. api_url and ca may be NULL (not wanted). *token (NULL if the file has none) is
 * the caller's to secret_free. Prints nothing.
 */
COFFER_MUST_CHECK enum coffer_err cli_config_read(char *api_url, size_t api_url_size, char *ca, size_t ca_size,
						  struct secret **token);

/* The deployer's fields of the config file, written by `coffer login`; "" when absent. */
struct cli_config_deployer {
	char keeper_url[HTTP_CLIENT_URL_MAX];
	char keeper_public_key[DEPLOYER_PK_B64_SIZE]; /* base64url: the keeper's key, pinned at login */
	char deployer_id[DEPLOYER_ID_MAX + 1];
	char deployer_org_id[DEPLOYER_ID_MAX + 1]; /* the org and app scope ("*": all) the keeper certified */
	char deployer_app_id[DEPLOYER_ID_MAX + 1];
};
/* Reads them (all "" when there is no file). Prints nothing. cli_config_write keeps them. */
COFFER_MUST_CHECK enum coffer_err cli_config_read_deployer(struct cli_config_deployer *out);
/* Writes them, keeping the file's other fields. COFFER_ERR_INVALID as cli_config_write. Prints nothing. */
COFFER_MUST_CHECK enum coffer_err cli_config_write_deployer(const struct cli_config_deployer *dep);
/* The deployer key file: deployer.key in the config file's folder. */
COFFER_MUST_CHECK enum coffer_err cli_deployer_key_path(char *out, size_t size);

/*
 * The CLI's deployer (`coffer login`): its key, its id and the keeper's
 * public key pinned at login, for the commands that sign (deployer.h).
 * cli_deployer_release wipes and frees the key; a zeroed struct is fine.
 */
struct cli_deployer {
	struct secret *sk;                        /* DEPLOYER_SK_LEN bytes */
	unsigned char pk[DEPLOYER_PK_LEN];
	char id[DEPLOYER_ID_MAX + 1];
	char org_id[DEPLOYER_ID_MAX + 1];         /* its certificate's org */
	char app_id[DEPLOYER_ID_MAX + 1];         /* its certificate's app, DEPLOYER_ALL_APPS for all */
	unsigned char keeper_pk[DEPLOYER_PK_LEN]; /* checks certs (deployer_cert_verify), app keys and app orgs */
	char keeper_url[HTTP_CLIENT_URL_MAX];
};
/*
 * Loads the deployer of the config file. Reports (as every client_*
 * function) and returns COFFER_ERR_UNAUTH "no deployer key: run 'coffer
 * login --deployer-token ...'" when the config has no deployer or the key
 * file is missing; COFFER_ERR_FORBIDDEN for a key file others may read;
 * COFFER_ERR_INVALID for a malformed key file or config field.
 */
COFFER_MUST_CHECK enum coffer_err cli_deployer_load(struct cli_deployer *d);
void cli_deployer_release(struct cli_deployer *d);

/*
 * Enrols the CLI's deployer key (made if missing, else the one there) at
 * the keeper (keeper_url; its TLS verified with the CA file ca, NULL: the
 * system's) with a one-time deployer token, under name, and writes
 * keeper_url, the keeper's public key and the deployer id into the config
 * file. Reports what fails. On success *answer (may be NULL) is the
 * keeper's answer (id, org_id, app_id, role, name, ...), the caller's to
 * json_decref. Used by `coffer login` and `coffer dev`.
 */
COFFER_MUST_CHECK enum coffer_err cli_deployer_enrol(const char *keeper_url, const char *ca, const struct secret *token,
						     const char *name, json_t **answer);

/*
 * `coffer api enrol-deployer --deployer-token TOKEN|- --keeper URL [--ca FILE]
 * --key FILE [--name NAME]`: makes the api's deployer key at FILE (0600,
 * exclusively) and enrols it like cli_deployer_enrol, writing no config;
 * prints the deployer id. Returns the exit code.
 */
int cli_api_enrol_deployer(int argc, char **argv);

/* A command's run: what its setup parsed and resolved (cli.h, cli_run). */
#define CLIENT_OPTS_MAX 12 /* options of a row (struct cli_opt) */
struct client {
	const struct cli_cmd *cmd;
	const char *app_flag;    /* -a/--app (CLI_NEED_APP) */
	const char *config_flag; /* -c/--config: the project file (CLI_NEED_APP) */
	struct project project;  /* the project file, once client_project read it */
	int project_read;
	const char *app;         /* resolved: -a, else $COFFER_APP (CLI_NEED_APP) */
	int json, yes, detach;   /* --json, --yes, --detach, for the rows whose flags take them */
	const char *value[CLIENT_OPTS_MAX]; /* the row's options, by their index in cmd->opts */
	int flag[CLIENT_OPTS_MAX];
	struct opts_values list; /* the row's first OPTS_LIST option, if any */
	struct opts_values list2; /* its second one (deploy's --file) */
	struct opts_values token_args; /* -t/--access-token (each blanked in argv once parsed) */
	const char *ca_flag;     /* --ca */
	json_t *body;            /* a request body the row's check made for its run (freed after the run) */
	struct secret *token;
	char api_url[HTTP_CLIENT_URL_MAX];
	char api_url_from[CLI_CONFIG_PATH_MAX + 32]; /* "COFFER_API_URL" or "the config file PATH" */
	struct http_client *http;
	int quiet_unreachable;   /* client_call does not report an API it cannot reach (a wait retries) */
	int unreachable;         /* the last client_call could not reach the API */
	int retry_changed;       /* a 409 "changed meanwhile" is not reported: it sets changed (sign.h) */
	int changed;
};

/* The help line of -a/--app, for the commands that take it. */
#define CLIENT_APP_HELP "the app (default: $COFFER_APP)"

/* The row's option `name` (a programmer's error, reported as such, when the row has none). */
int client_flag(const struct client *c, const char *name);
const char *client_value(const struct client *c, const char *name);

/*
 * flyctl's confirm rule for a destructive command (CLI_DESTRUCTIVE): with
 * --yes it goes ahead; without a terminal on standard input, cli_run has
 * already refused ("'CMD' is destructive: refusing without a terminal:
 * pass --yes"); on a terminal it prints prompt on stderr and reads a line:
 * typed NULL accepts "y" or "yes" (any case), else exactly typed. Returns 1
 * to go ahead.
 */
int client_confirm(const struct client *c, const char *prompt, const char *typed);

/* Prints "coffer: error: <message>" on stderr and returns rc. */
enum coffer_err client_error(enum coffer_err rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "coffer: error: <message>" and the command's usage line on stderr; returns COFFER_ERR_USAGE. */
enum coffer_err client_usage_error(const struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A listing command (`apps list`, `tokens list`, `hosts list`, `releases`,
 * `machines list`): a row whose run is client_list_run and whose data is a
 * struct client_listing. It GETs `path` (with app_suffix: the path
 * "/v1/apps/<app><app_suffix>"; "?all=1" added when `all` and the row's
 * --all is given) and prints the array under `key` as JSON (--json) or as a table
 * whose rows `row` fills: cells[i] for column i, pointing into the item or
 * into scratch[i] (CLIENT_CELL_SIZE bytes each) for formatted text.
 */
#define CLIENT_CELL_SIZE 64
#define CLIENT_LIST_COLS_MAX 8
#define CLIENT_LIST_JSON_HELP "print the API's list as JSON"
typedef void (*client_row_fn)(const json_t *item, int64_t now, const char **cells,
			      char (*scratch)[CLIENT_CELL_SIZE]);
struct client_listing {
	const char *path;         /* GET path */
	const char *app_suffix;   /* or this, after the app's path */
	const char *key;          /* the array's name in the answer */
	const char *const *headers;
	size_t ncols; /* at most CLIENT_LIST_COLS_MAX */
	client_row_fn row;
	int all;      /* the row has an option "all": with it, "?all=1" */
};
COFFER_MUST_CHECK enum coffer_err client_list_run(struct client *c, int argc, char **argv);
/*
 * The table of items (a JSON array) with these columns, filled by row,
 * appended to out. Reports what fails.
 */
COFFER_MUST_CHECK enum coffer_err client_table(const json_t *items, const char *const *headers, size_t ncols,
					       client_row_fn row, struct buf *out);

/* Resolves the API URL and the token (see above) and makes the HTTP client (CLI_NEED_API). */
COFFER_MUST_CHECK enum coffer_err client_connect(struct client *c);

/*
 * The project file (project.h): -c/--config FILE, else coffer.toml here
 * or above (p->path "" when there is none); read once per command. A file
 * that cannot be read or parsed is reported (usage error, exit 2).
 */
COFFER_MUST_CHECK enum coffer_err client_project(struct client *c, const struct project **out);

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
/* Clears the live line of a wait, if one is on screen, so that what follows starts on a line of its own. */
void client_live_clear(void);
/* 1 once Ctrl-C stopped client_wait_release: main() then dies of SIGINT after cleaning up. */
int client_interrupted(void);

/*
 * Overwrites a string of argv in place with NUL bytes so that ps(1) no
 * longer shows it (its pointer stays valid and reads as "").
 */
void client_blank_arg(char *s);

#endif
