#include "opts.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "banned.h"

#define OPTION_ECHO_MAX 48 /* bytes of an option's name shown back */
#define OPTS_VALUES_MAX_TEXT "256" /* OPTS_VALUES_MAX, in a message */
_Static_assert(OPTS_VALUES_MAX == 256, "OPTS_VALUES_MAX_TEXT");

static const char *(*usage_source)(const char *cmd);

static const struct opts_spec *find_long(const struct opts_spec *s, const char *name, size_t len)
{
	for (; s && s->name; s++)
		if (strlen(s->name) == len && strncmp(s->name, name, len) == 0)
			return s;
	return NULL;
}

static const struct opts_spec *find_short(const struct opts_spec *s, char ch)
{
	for (; s && s->name; s++)
		if (s->short_name && s->short_name == ch)
			return s;
	return NULL;
}

/* "option '--x' <what>" into why. */
static int refuse(char why[OPTS_WHY_SIZE], const char *shown, const char *what)
{
	if (fmt_into(why, OPTS_WHY_SIZE, "option '%s' %s", shown, what))
		why[0] = '\0';
	return -1;
}

int opts_parse(const struct opts_spec *specs, int argc, char **argv, int first, int *n_pos, char why[OPTS_WHY_SIZE])
{
	int npos = 0, only_pos = 0;

	for (int i = first; i < argc; i++) {
		char *arg = argv[i], *value = NULL;
		const struct opts_spec *o;
		char shown[OPTION_ECHO_MAX + 1];

		if (only_pos || arg[0] != '-' || arg[1] == '\0') {
			argv[first + npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (arg[1] == '-') {
			const char *name = arg + 2;
			char *eq = strchr(arg, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			o = find_long(specs, name, len);
			if (eq)
				value = eq + 1;
			/* shown: the option's name, never what follows '=' */
			if (fmt_into(shown, sizeof(shown), "--%.*s",
				     (int)(len < OPTION_ECHO_MAX - 2 ? len : OPTION_ECHO_MAX - 2), name))
				shown[0] = '\0';
		} else {
			o = find_short(specs, arg[1]);
			if (arg[2])
				value = arg + 2;
			shown[0] = '-', shown[1] = arg[1], shown[2] = '\0';
		}
		if (!o) {
			if (fmt_into(why, OPTS_WHY_SIZE, "unknown option '%s'", shown))
				why[0] = '\0';
			return -1;
		}
		if (o->kind == OPTS_FLAG || o->kind == OPTS_HELP) {
			if (value)
				return refuse(why, shown, "takes no value");
			*(int *)o->dst = 1;
			if (o->kind == OPTS_HELP)
				return 1;
			continue;
		}
		if (!value) {
			if (i + 1 >= argc)
				return refuse(why, shown, "needs a value");
			value = argv[++i];
		}
		if (o->kind == OPTS_LIST) {
			struct opts_values *l = o->dst;
			if (l->n >= OPTS_VALUES_MAX)
				return refuse(why, shown, "given more than " OPTS_VALUES_MAX_TEXT " times");
			l->v[l->n++] = value;
			continue;
		}
		*(const char **)o->dst = value;
	}
	*n_pos = npos;
	return 0;
}

int opts_parse_role(const char *cmd, const struct opts_spec *specs, int argc, char **argv, int first)
{
	char why[OPTS_WHY_SIZE];
	int n_pos = 0;
	/* specs hold no OPTS_HELP here: `coffer ROLE --help` is answered before its options are parsed */
	if (opts_parse(specs, argc, argv, first, &n_pos, why))
		return opts_fail(COFFER_ERR_USAGE, "%s; see 'coffer help %s'", why, cmd);
	if (n_pos > 0)
		return opts_fail(COFFER_ERR_USAGE, "unexpected argument '%s'; see 'coffer help %s'", argv[first], cmd);
	return 0;
}

int opts_fail(enum coffer_err rc, const char *fmt, ...)
{
	va_list ap;
	fputs("coffer: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return coffer_err_exit_code(rc);
}

const char *opts_usage_of(const char *cmd)
{
	const char *usage = usage_source ? usage_source(cmd) : NULL;
	return usage ? usage : "COMMAND [ARGS]";
}

int opts_usage(const char *cmd)
{
	fprintf(stderr, "usage: coffer %s\n", opts_usage_of(cmd));
	return coffer_err_exit_code(COFFER_ERR_USAGE);
}

void opts_set_usage_source(const char *(*usage_of)(const char *cmd))
{
	usage_source = usage_of;
}
