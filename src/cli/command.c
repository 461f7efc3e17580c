/*
 * command.c — running one row of the command table (cli.h): its setup
 * flags applied before its body, its usage and help written from the row,
 * a noun's subcommands, and the confirm rule of destructive commands.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "client.h"
#include "banned.h"

#define SUBCOMMAND_ECHO_MAX 32 /* an unknown subcommand is named only when short and plain */
#define SUBCOMMANDS_MAX 32     /* a noun's subcommands compared for a suggestion */
#define SPECS_MAX (CLIENT_OPTS_MAX + 11) /* the row's, the shared ones (app, config, json, yes, detach, token, ca, help), the end */
#define OPTION_TEXT_SIZE 64    /* "--name ARG" in a help line */
#define CONFIRM_MAX 256        /* a typed confirmation line */

/* The options every user command takes, after its own. */
static const struct cli_opt app_opt = { "app", 'a', OPTS_VALUE, "APP", CLIENT_APP_HELP };
static const struct cli_opt config_opt = { "config", 'c', OPTS_VALUE, "FILE",
					   "the project file (default: " PROJECT_FILE " here or in a folder above)" };
static const struct cli_opt json_opt = { "json", 'j', OPTS_FLAG, NULL, "print the API's answer as JSON" };
static const struct cli_opt yes_opt = { "yes", 'y', OPTS_FLAG, NULL, "do not ask for confirmation" };
static const struct cli_opt detach_opt = { "detach", 0, OPTS_FLAG, NULL,
					   "return once the release is made, without waiting for it" };
static const struct cli_opt token_opt = { "access-token", 't', OPTS_LIST, "TOKEN",
					  "access token (default: $COFFER_TOKEN, then the config file)" };
static const struct cli_opt ca_opt = { "ca", 0, OPTS_VALUE, "FILE",
				       "CA file to verify the API's certificate (default: $COFFER_CA, then the config file)" };
static const struct cli_opt help_opt = { "help", 'h', OPTS_HELP, NULL, "show this help" };

static void print_option(const struct cli_opt *o, const char *help)
{
	char text[OPTION_TEXT_SIZE];
	if (fmt_into(text, sizeof(text), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : ""))
		text[0] = '\0';
	if (o->short_name)
		printf("  -%c, %-21s %s\n", o->short_name, text, help ? help : o->help);
	else
		printf("      %-21s %s\n", text, help ? help : o->help);
}

static void print_help(const struct cli_cmd *cmd)
{
	printf("usage: coffer %s\n\n%s\noptions:\n", cmd->usage, cmd->help ? cmd->help : "");
	if (cmd->flags & CLI_NEED_APP) {
		print_option(&app_opt, NULL);
		print_option(&config_opt, NULL);
	}
	for (const struct cli_opt *o = cmd->opts; o && o->name; o++)
		print_option(o, NULL);
	if (cmd->flags & CLI_DESTRUCTIVE)
		print_option(&yes_opt, NULL);
	if (cmd->flags & CLI_DETACH)
		print_option(&detach_opt, NULL);
	if (cmd->flags & CLI_JSON)
		print_option(&json_opt, cmd->json_help);
	print_option(&token_opt, NULL);
	print_option(&ca_opt, NULL);
	print_option(&help_opt, NULL);
}

enum coffer_err client_usage_error(const struct client *c, const char *fmt, ...)
{
	va_list ap;
	fputs("coffer: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: coffer %s\n", c->cmd->usage);
	return COFFER_ERR_USAGE;
}

static size_t opt_index(const struct client *c, const char *name)
{
	for (size_t i = 0; c->cmd->opts && c->cmd->opts[i].name; i++)
		if (strcmp(c->cmd->opts[i].name, name) == 0)
			return i;
	fprintf(stderr, "coffer: BUG: command '%s' has no option '%s'\n", c->cmd->name, name);
	abort();
}

int client_flag(const struct client *c, const char *name)
{
	return c->flag[opt_index(c, name)];
}

const char *client_value(const struct client *c, const char *name)
{
	return c->value[opt_index(c, name)];
}

int client_confirm(const struct client *c, const char *prompt, const char *typed)
{
	char line[CONFIRM_MAX];
	if (c->yes)
		return 1;
	fputs(prompt, stderr);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	line[strcspn(line, "\r\n")] = '\0';
	if (typed)
		return strcmp(line, typed) == 0;
	return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

static void add_spec(struct opts_spec *specs, size_t *n, const struct cli_opt *o, void *dst)
{
	specs[(*n)++] = (struct opts_spec){ o->name, o->short_name, o->kind, dst };
}

/* The options of the row and of its flags, into c; the token given with -t into secure memory. */
static enum coffer_err parse(struct client *c, int argc, char **argv, int *n_pos, int *help)
{
	const struct cli_cmd *cmd = c->cmd;
	struct opts_spec specs[SPECS_MAX];
	char why[OPTS_WHY_SIZE];
	size_t n = 0, lists = 0;
	int r;

	for (size_t i = 0; cmd->opts && cmd->opts[i].name; i++) {
		const struct cli_opt *o = &cmd->opts[i];
		if (i >= CLIENT_OPTS_MAX || (o->kind == OPTS_LIST && lists++ > 1))
			return client_error(COFFER_ERR_INTERNAL, "BUG: command '%s': too many options", cmd->name);
		add_spec(specs, &n, o, o->kind == OPTS_FLAG ? (void *)&c->flag[i] :
				       o->kind == OPTS_LIST ? (void *)(lists == 1 ? &c->list : &c->list2) :
							      (void *)&c->value[i]);
	}
	if (cmd->flags & CLI_NEED_APP) {
		add_spec(specs, &n, &app_opt, &c->app_flag);
		add_spec(specs, &n, &config_opt, &c->config_flag);
	}
	if (cmd->flags & CLI_JSON)
		add_spec(specs, &n, &json_opt, &c->json);
	if (cmd->flags & CLI_DESTRUCTIVE)
		add_spec(specs, &n, &yes_opt, &c->yes);
	if (cmd->flags & CLI_DETACH)
		add_spec(specs, &n, &detach_opt, &c->detach);
	add_spec(specs, &n, &token_opt, &c->token_args);
	add_spec(specs, &n, &ca_opt, &c->ca_flag);
	add_spec(specs, &n, &help_opt, help);
	specs[n] = (struct opts_spec){ NULL, 0, OPTS_FLAG, NULL };

	r = opts_parse(specs, argc, argv, 1, n_pos, why);
	/* a token on the command line goes into secure memory and out of ps at once, whatever else happened */
	for (size_t i = 0; i < c->token_args.n; i++) {
		const char *t = c->token_args.v[i];
		enum coffer_err rc = COFFER_OK;
		if (i + 1 == c->token_args.n) {
			secret_free(c->token);
			c->token = NULL;
			rc = secret_from(t, strlen(t), &c->token);
		}
		client_blank_arg((char *)t);
		if (rc)
			return client_error(rc, "%s", coffer_strerror(rc));
	}
	if (r < 0)
		return client_usage_error(c, "%s", why);
	if (r > 0)
		print_help(cmd);
	return COFFER_OK;
}

enum coffer_err client_project(struct client *c, const struct project **out)
{
	char why[PROJECT_WHY_SIZE];
	if (!c->project_read) {
		enum coffer_err rc = project_load(c->config_flag, &c->project, why);
		if (rc)
			return client_usage_error(c, "%s", why[0] ? why : coffer_strerror(rc));
		c->project_read = 1;
	}
	*out = &c->project;
	return COFFER_OK;
}

/* The app: -a, else $COFFER_APP, else the project file's. */
static enum coffer_err need_app(struct client *c)
{
	const struct project *p;
	const char *app = c->app_flag;
	enum coffer_err rc;
	if (!app || !*app)
		app = getenv("COFFER_APP");
	if ((!app || !*app) || c->config_flag) {
		rc = client_project(c, &p);
		if (rc)
			return rc;
		if ((!app || !*app) && p->app[0])
			app = p->app;
	}
	if (!app || !*app)
		return client_usage_error(c, "no app given: use -a APP, set COFFER_APP, or put app = \"NAME\" in "
					     PROJECT_FILE " (here or in a folder above, or -c FILE)");
	c->app = app;
	return COFFER_OK;
}

/* How many bytes of a usage line name the command: its leading lower-case words ("apps destroy"). */
static int command_words(const char *usage)
{
	size_t n = 0, end = 0;
	for (; usage[n]; n++) {
		if (usage[n] == ' ')
			continue;
		if (!(usage[n] >= 'a' && usage[n] <= 'z'))
			break;
		while (usage[n] && usage[n] != ' ')
			n++;
		end = n;
		if (!usage[n])
			break;
	}
	return (int)end;
}

/* The setup the row's flags ask for, in order; then the body. */
static enum coffer_err setup_and_run(struct client *c, int argc, char **argv)
{
	const struct cli_cmd *cmd = c->cmd;
	int n_pos = 0, help = 0;
	enum coffer_err rc = parse(c, argc, argv, &n_pos, &help);

	if (rc || help)
		return rc;
	if (n_pos < cmd->min_args || (cmd->max_args != CLI_ARGS_ANY && n_pos > cmd->max_args))
		return client_usage_error(c, "%s", cmd->args_error ? cmd->args_error : "unexpected argument");
	if (cmd->flags & CLI_NEED_APP) {
		rc = need_app(c);
		if (rc)
			return rc;
	}
	if (cmd->check) {
		rc = cmd->check(c, n_pos + 1, argv);
		if (rc)
			return rc;
	}
	/* flyctl's rule: nobody to ask, and no --yes, is no */
	if ((cmd->flags & CLI_DESTRUCTIVE) && !c->yes && !isatty(STDIN_FILENO))
		return client_usage_error(c, "'%.*s' is destructive: refusing without a terminal: pass --yes",
					  command_words(cmd->usage), cmd->usage);
	if (cmd->flags & CLI_NEED_API) {
		rc = client_connect(c);
		if (rc)
			return rc;
	}
	return cmd->run(c, n_pos + 1, argv);
}

/* A subcommand the user typed is echoed only when it cannot be a value typed by mistake. */
static int plain_word(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || s[n] == '-') || n >= SUBCOMMAND_ECHO_MAX)
			return 0;
	return n > 0;
}

static void print_subs(FILE *f, const struct cli_group *g)
{
	fprintf(f, "usage: coffer %s COMMAND [OPTIONS]\n\ncommands:\n", g->name);
	for (size_t i = 0; i < g->n; i++)
		fprintf(f, "  coffer %s\n", g->cmds[i].usage);
	fprintf(f, "\nRun 'coffer %s COMMAND --help' for the options of a command.\n", g->name);
}

static int run_group(const struct cli_group *g, int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "coffer: error: '%s' needs a command\n", g->name);
		print_subs(stderr, g);
		return coffer_err_exit_code(COFFER_ERR_USAGE);
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		print_subs(stdout, g);
		return 0;
	}
	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->cmds[i].name, argv[1]) == 0 || (g->cmds[i].alias && strcmp(g->cmds[i].alias, argv[1]) == 0))
			return cli_run(&g->cmds[i], argc - 1, argv + 1);
	if (plain_word(argv[1])) {
		const char *names[2 * SUBCOMMANDS_MAX], *near;
		size_t n = 0;
		for (size_t i = 0; i < g->n && i < SUBCOMMANDS_MAX; i++) {
			names[n++] = g->cmds[i].name;
			names[n++] = g->cmds[i].alias;
		}
		near = opts_nearest(argv[1], strlen(argv[1]), names, n);
		if (near)
			fprintf(stderr, "coffer: error: unknown command '%s %s'; did you mean '%s %s'?\n", g->name, argv[1],
				g->name, near);
		else
			fprintf(stderr, "coffer: error: unknown command '%s %s'\n", g->name, argv[1]);
	} else
		fprintf(stderr, "coffer: error: unknown command for '%s'\n", g->name);
	print_subs(stderr, g);
	return coffer_err_exit_code(COFFER_ERR_USAGE);
}

int cli_run(const struct cli_cmd *cmd, int argc, char **argv)
{
	if (cmd->main)
		return cmd->main(argc, argv);
	/* a noun that is a command too (releases): its own options or none run it, a word its subcommand */
	if (cmd->group && !(cmd->run && (argc < 2 || argv[1][0] == '-')))
		return run_group(cmd->group, argc, argv);

	struct client *c = calloc(1, sizeof(*c));
	if (!c)
		return coffer_err_exit_code(client_error(COFFER_ERR_NOMEM, "out of memory"));
	c->cmd = cmd;
	enum coffer_err rc = setup_and_run(c, argc, argv);
	if (cmd->scrub)
		cmd->scrub(argc, argv);
	json_decref(c->body);
	project_release(&c->project);
	http_client_free(c->http);
	secret_free(c->token);
	sodium_memzero(c, sizeof(*c));
	free(c);
	return coffer_err_exit_code(rc);
}

void cli_usage_text(const struct cli_cmd *cmd, char *out, size_t size)
{
	size_t pos = 0;
	out[0] = '\0';
	if (cmd->usage) {
		if (str_copy(out, size, cmd->usage))
			out[0] = '\0';
		if (!cmd->group)
			return;
		pos = strlen(out);
	}
	for (size_t i = 0; i < cmd->group->n; i++) {
		if (fmt_into(out + pos, size - pos, "%s%s", pos ? " | " : "", cmd->group->cmds[i].usage))
			return;
		pos += strlen(out + pos);
	}
}
