/*
 * cmd_tokens.c — `coffer tokens create|list|revoke|rotate`.
 *
 * A new token is printed once, on stdout, and its copy in the parsed
 * answer is wiped before it is freed. No other command shows a token
 * (`tokens rotate --self` writes it into the config file instead when the
 * rotated token is the file's).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cli.h"
#include "client.h"
#include "format.h"
#include "parse.h"
#include "banned.h"

/* A token is plain ASCII: anything else is not printed to a terminal. */
static int printable(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e)
			return 0;
	return n > 0;
}

/* --role and --expiry, and the request body. */
static enum coffer_err tokens_create_check(struct client *c, int argc, char **argv)
{
	const char *role = client_value(c, "role"), *app = client_value(c, "app");
	const char *expiry = client_value(c, "expiry"), *description = client_value(c, "description");
	uint64_t ms;

	(void)argc, (void)argv;
	if (!role || (strcmp(role, "admin") != 0 && strcmp(role, "deploy") != 0 && strcmp(role, "read") != 0))
		return client_usage_error(c, "--role must be admin, deploy or read");
	if (expiry && parse_duration_ms(expiry, UINT64_MAX, &ms))
		return client_usage_error(c, "invalid --expiry: a duration such as 30d, 12h or 1h30m");
	c->body = json_pack("{s:s}", "role", role);
	if (!c->body || (app && json_object_set_new(c->body, "app", json_string(app))) ||
	    (expiry && json_object_set_new(c->body, "expiry", json_string(expiry))) ||
	    (description && json_object_set_new(c->body, "description", json_string(description))))
		return client_error(COFFER_ERR_NOMEM, "cannot encode the request (is --description UTF-8?)");
	return COFFER_OK;
}

/*
 * Whether the token this run uses is the config file's: only then does
 * `rotate --self` replace it there (a token from -t or COFFER_TOKEN is
 * the caller's to store).
 */
static int token_is_config(const struct client *c, char *url, size_t url_size, char *ca, size_t ca_size)
{
	struct secret *file_token = NULL;
	int same = cli_config_read(url, url_size, ca, ca_size, &file_token) == COFFER_OK && file_token &&
		   secret_equal(file_token, c->token);
	secret_free(file_token);
	return same;
}

/* Prints the new token of create or rotate once, or writes it into the config file (to_config). */
static enum coffer_err token_made(struct client *c, const char *method_path, int to_config)
{
	char url[HTTP_CLIENT_URL_MAX] = "", ca[HTTP_CLIENT_CA_PATH_MAX] = "";
	struct secret *fresh = NULL;
	json_t *ans = NULL, *tok;
	const char *id, *old_until;
	enum coffer_err rc;

	to_config = to_config && token_is_config(c, url, sizeof(url), ca, sizeof(ca));
	rc = client_call(c, "POST", method_path, c->body, &ans);
	tok = json_object_get(ans, "token");
	if (!rc && (!json_is_string(tok) || !printable(json_string_value(tok))))
		rc = client_bad_answer("no \"token\"");
	id = client_str(ans, "id");
	old_until = client_str(ans, "old_expires_at");
	if (!rc && to_config) {
		rc = secret_from(json_string_value(tok), json_string_length(tok), &fresh);
		if (!rc)
			rc = cli_config_write(url[0] ? url : NULL, ca[0] ? ca : NULL, fresh);
		if (rc) { /* a rotated token is not rotated again: the new one must not be lost */
			client_error(rc, "the new token could not be written into the config file; it is on stdout, "
					 "shown this once: store it now");
			fwrite(json_string_value(tok), 1, json_string_length(tok), stdout);
			fputc('\n', stdout);
			fflush(stdout);
		} else if (c->json) {
			sodium_memzero((char *)json_string_value(tok), json_string_length(tok));
			rc = json_object_del(ans, "token") ? COFFER_ERR_NOMEM : client_print_json(ans);
			tok = NULL;
		} else
			printf("Rotated into token %s; the config file holds it now. The old token works until %s.\n",
			       id ? id : "?", old_until ? old_until : "now");
	} else if (!rc && c->json) {
		rc = client_print_json(ans);
	} else if (!rc) {
		fwrite(json_string_value(tok), 1, json_string_length(tok), stdout);
		fputc('\n', stdout);
		fflush(stdout);
		fprintf(stderr, "\nThis is token %s (%s). It is shown this once: store it now.\n", id ? id : "?",
			client_str(ans, "role") ? client_str(ans, "role") : "?");
		if (old_until)
			fprintf(stderr, "The old token works until %s.\n", old_until);
	}
	if (json_is_string(tok)) /* jansson's copy of the token */
		sodium_memzero((char *)json_string_value(tok), json_string_length(tok));
	secret_free(fresh);
	json_decref(ans);
	return rc;
}

static enum coffer_err tokens_create(struct client *c, int argc, char **argv)
{
	(void)argc, (void)argv;
	return token_made(c, "/v1/tokens", 0);
}

/* TOKEN_ID or --self (one of them), --overlap, and the request body. */
static enum coffer_err tokens_rotate_check(struct client *c, int argc, char **argv)
{
	const char *overlap = client_value(c, "overlap");
	int self = client_flag(c, "self");
	uint64_t ms;

	(void)argv;
	if (self == (argc > 1))
		return client_usage_error(c, "give a token ID or --self (one of them)");
	if (overlap && parse_duration_ms(overlap, UINT64_MAX, &ms))
		return client_usage_error(c, "invalid --overlap: a duration such as 1h, 10m or 0s");
	c->body = overlap ? json_pack("{s:s}", "overlap", overlap) : json_object();
	if (!c->body)
		return client_error(COFFER_ERR_NOMEM, "cannot encode the request");
	return COFFER_OK;
}

static enum coffer_err tokens_rotate(struct client *c, int argc, char **argv)
{
	char path[CLIENT_PATH_MAX];
	int self = client_flag(c, "self");
	enum coffer_err rc = client_path(path, sizeof(path), "/v1/tokens/", self ? "self" : argv[1], "/rotate");
	(void)argc;
	return rc ? rc : token_made(c, path, self);
}

static void token_row(const json_t *tok, int64_t now, const char **cells, char (*scratch)[CLIENT_CELL_SIZE])
{
	format_when(client_str(tok, "expires_at"), now, "never", scratch[3], CLIENT_CELL_SIZE);
	format_when(client_str(tok, "revoked_at"), now, "-", scratch[4], CLIENT_CELL_SIZE);
	format_when(client_str(tok, "created_at"), now, "-", scratch[5], CLIENT_CELL_SIZE);
	cells[0] = client_str(tok, "id");
	cells[1] = client_str(tok, "role");
	cells[2] = client_str(tok, "app");
	for (int k = 3; k < 6; k++)
		cells[k] = scratch[k];
}

static enum coffer_err tokens_revoke(struct client *c, int argc, char **argv)
{
	char path[CLIENT_PATH_MAX];
	json_t *ans = NULL;
	enum coffer_err rc = client_path(path, sizeof(path), "/v1/tokens/", argv[1], "");

	(void)argc;
	if (!rc)
		rc = client_call(c, "DELETE", path, NULL, &ans);
	if (!rc)
		printf("Revoked token %s\n", argv[1]);
	json_decref(ans);
	return rc;
}

static const char *const token_headers[] = { "ID", "ROLE", "APP", "EXPIRES", "REVOKED", "CREATED" };
static const struct client_listing tokens_listing = { .path = "/v1/tokens", .key = "tokens",
						      .headers = token_headers, .ncols = 6, .row = token_row };

static const struct cli_opt create_opts[] = {
	{ "role", 0, OPTS_VALUE, "ROLE", "admin, deploy or read" },
	{ "app", 'a', OPTS_VALUE, "APP", "the one app the token may act on" },
	{ "expiry", 0, OPTS_VALUE, "DURATION", "lifetime, e.g. 30d, 12h, 1h30m (default: none)" },
	{ "description", 0, OPTS_VALUE, "TEXT", "a note shown by 'tokens list --json'" },
	{ NULL, 0, OPTS_FLAG, NULL, NULL },
};

static const struct cli_opt rotate_opts[] = {
	{ "self", 0, OPTS_FLAG, NULL, "rotate the token this command uses" },
	{ "overlap", 0, OPTS_VALUE, "DURATION", "how long the old token keeps working (default: 1h, at most 30d)" },
	{ NULL, 0, OPTS_FLAG, NULL, NULL },
};

static const struct cli_cmd tokens_cmds[] = {
	{ .name = "create", .check = tokens_create_check, .run = tokens_create, .flags = CLI_NEED_API | CLI_JSON,
	  .opts = create_opts,
	  .json_help = "print the API's answer (it holds the token)",
	  .usage = "tokens create --role admin|deploy|read [--app APP] [--expiry DURATION] [--description TEXT] [--json]",
	  .help = "Creates an access token and prints it once: store it now, it cannot be shown\n"
		  "again. admin: everything in the org; deploy: set, unset and deploy secrets;\n"
		  "read: list apps and secrets. --app limits the token to one app (COFFER_APP\n"
		  "is not used here: the limit is always explicit).\n" },
	{ .name = "list", .alias = "ls", .usage = "tokens list [--json]", .run = client_list_run,
	  .flags = CLI_NEED_API | CLI_JSON, .json_help = CLIENT_LIST_JSON_HELP, .data = &tokens_listing,
	  .help = "Lists the org's access tokens (never the tokens themselves).\n" },
	{ .name = "revoke", .usage = "tokens revoke ID", .run = tokens_revoke, .flags = CLI_NEED_API,
	  .help = "Revokes an access token by its id (tok_..., see 'coffer tokens list').\n"
		  "Revoking twice is not an error.\n",
	  .min_args = 1, .max_args = 1, .args_error = "expected one ID" },
	{ .name = "rotate", .check = tokens_rotate_check, .run = tokens_rotate, .flags = CLI_NEED_API | CLI_JSON,
	  .opts = rotate_opts, .json_help = "print the API's answer (it holds the token, unless written to the config)",
	  .usage = "tokens rotate ID|--self [--overlap DURATION] [--json]",
	  .help = "Makes a new token with the same role, app, description and expiry as the\n"
		  "old one (never a later expiry), and prints it once. The old token keeps\n"
		  "working until the overlap ends (default 1h), then is refused; it cannot be\n"
		  "rotated again. For a longer life, an admin makes a new token (tokens create)\n"
		  "and revokes the old one. Rotating another token needs an admin\n"
		  "token; --self rotates the token in use (any role), and when that token comes\n"
		  "from the config file, writes the new one there (atomically) instead of\n"
		  "printing it.\n",
	  .max_args = 1, .args_error = "expected one ID" },
};
static const struct cli_group tokens_group = CLI_GROUP("tokens", tokens_cmds);
const struct cli_cmd cli_tokens = CLI_NOUN("tokens", &tokens_group, "manage access tokens");
