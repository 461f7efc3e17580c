/*
 * cmd_tokens.c — `coffer tokens create|list|revoke`.
 *
 * A new token is printed once, on stdout, and its copy in the parsed
 * answer is wiped before it is freed. No other command shows a token.
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

static int tokens_create(int argc, char **argv)
{
	struct client c;
	const char *role = NULL, *app = NULL, *expiry = NULL, *description = NULL;
	json_t *body = NULL, *ans = NULL, *tok;
	int n_pos = 0, json = 0, code;
	uint64_t ms;
	enum coffer_err rc;
	const struct client_opt opts[] = {
		{ "role", 0, CLIENT_OPT_VALUE, &role },
		{ "app", 'a', CLIENT_OPT_VALUE, &app },
		{ "expiry", 0, CLIENT_OPT_VALUE, &expiry },
		{ "description", 0, CLIENT_OPT_VALUE, &description },
		{ "json", 0, CLIENT_OPT_FLAG, &json },
		{ NULL, 0, CLIENT_OPT_FLAG, NULL },
	};

	client_init(&c, "tokens create --role admin|deploy|read [--app APP] [--expiry DURATION] [--description TEXT] [--json]",
		    "Creates an access token and prints it once: store it now, it cannot be shown\n"
		    "again. admin: everything in the org; deploy: set, unset and deploy secrets;\n"
		    "read: list apps and secrets. --app limits the token to one app (COFFER_APP\n"
		    "is not used here: the limit is always explicit).\n",
		    "      --role ROLE           admin, deploy or read\n"
		    "  -a, --app APP             the one app the token may act on\n"
		    "      --expiry DURATION     lifetime, e.g. 30d, 12h, 1h30m (default: none)\n"
		    "      --description TEXT    a note shown by 'tokens list --json'\n"
		    "      --json                print the API's answer (it holds the token)\n");
	code = client_parse(&c, argc, argv, opts, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos != 0) {
		code = client_usage_error(&c, "unexpected argument");
		goto out;
	}
	if (!role || (strcmp(role, "admin") != 0 && strcmp(role, "deploy") != 0 && strcmp(role, "read") != 0)) {
		code = client_usage_error(&c, "--role must be admin, deploy or read");
		goto out;
	}
	if (expiry && parse_duration_ms(expiry, UINT64_MAX, &ms)) {
		code = client_usage_error(&c, "invalid --expiry: a duration such as 30d, 12h or 1h30m");
		goto out;
	}
	rc = client_connect(&c);
	if (!rc) {
		body = json_pack("{s:s}", "role", role);
		if (!body || (app && json_object_set_new(body, "app", json_string(app))) ||
		    (expiry && json_object_set_new(body, "expiry", json_string(expiry))) ||
		    (description && json_object_set_new(body, "description", json_string(description))))
			rc = client_error(COFFER_ERR_NOMEM, "cannot encode the request (is --description UTF-8?)");
	}
	if (!rc)
		rc = client_call(&c, "POST", "/v1/tokens", body, &ans);
	tok = json_object_get(ans, "token");
	if (!rc && (!json_is_string(tok) || !printable(json_string_value(tok))))
		rc = client_bad_answer("no \"token\"");
	if (!rc && json) {
		rc = client_print_json(ans);
	} else if (!rc) {
		fwrite(json_string_value(tok), 1, json_string_length(tok), stdout);
		fputc('\n', stdout);
		fflush(stdout);
		const char *id = client_str(ans, "id");
		fprintf(stderr, "\nThis is token %s (%s). It is shown this once: store it now.\n", id ? id : "?", role);
	}
	if (json_is_string(tok)) /* jansson's copy of the token */
		sodium_memzero((char *)json_string_value(tok), json_string_length(tok));
	code = client_exit(rc);
out:
	json_decref(ans);
	json_decref(body);
	client_release(&c);
	return code;
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

static int tokens_list(int argc, char **argv)
{
	static const char *const headers[] = { "ID", "ROLE", "APP", "EXPIRES", "REVOKED", "CREATED" };
	static const struct client_listing l = { "tokens list [--json]", "Lists the org's access tokens (never the tokens themselves).\n", "/v1/tokens", "tokens",
						 headers, 6, token_row };
	return client_list_command(argc, argv, &l);
}

static int tokens_revoke(int argc, char **argv)
{
	struct client c;
	char path[CLIENT_PATH_MAX];
	json_t *ans = NULL;
	int n_pos = 0, code;
	enum coffer_err rc;

	client_init(&c, "tokens revoke ID",
		    "Revokes an access token by its id (tok_..., see 'coffer tokens list').\n"
		    "Revoking twice is not an error.\n",
		    NULL);
	code = client_parse(&c, argc, argv, NULL, &n_pos);
	if (code != CLIENT_CONTINUE)
		goto out;
	if (n_pos != 1) {
		code = client_usage_error(&c, "expected one ID");
		goto out;
	}
	rc = client_connect(&c);
	if (!rc)
		rc = client_path(path, sizeof(path), "/v1/tokens/", argv[1], "");
	if (!rc)
		rc = client_call(&c, "DELETE", path, NULL, &ans);
	if (!rc)
		printf("Revoked token %s\n", argv[1]);
	code = client_exit(rc);
out:
	json_decref(ans);
	client_release(&c);
	return code;
}

static const struct client_sub subs[] = {
	{ "create", tokens_create,
	  "tokens create --role admin|deploy|read [--app APP] [--expiry DURATION] [--description TEXT] [--json]" },
	{ "list", tokens_list, "tokens list [--json]" },
	{ "ls", tokens_list, NULL },
	{ "revoke", tokens_revoke, "tokens revoke ID" },
};

int cmd_tokens(int argc, char **argv)
{
	return client_dispatch("tokens", subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
}
