#include "opts.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "banned.h"

#define OPTION_ECHO_MAX 48 /* bytes of an option's name shown back */
#define OPTS_SPECS_MAX 64  /* options of one command, for a suggestion */
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

#define NEAR_MAX 64 /* bytes of a word compared by opts_near */

int opts_near(const char *typed, size_t len, const char *name)
{
	/* optimal string alignment distance, three rows of the table */
	unsigned rows[3][NEAR_MAX + 1], *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
	size_t m = strlen(name);
	if (!len || len > NEAR_MAX || m > NEAR_MAX)
		return -1;
	for (size_t j = 0; j <= m; j++)
		prev[j] = (unsigned)j;
	for (size_t i = 1; i <= len; i++) {
		cur[0] = (unsigned)i;
		for (size_t j = 1; j <= m; j++) {
			unsigned cost = typed[i - 1] != name[j - 1], best = prev[j - 1] + cost;
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (i > 1 && j > 1 && typed[i - 1] == name[j - 2] && typed[i - 2] == name[j - 1] &&
			    prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			cur[j] = best;
		}
		unsigned *t = prev2;
		prev2 = prev, prev = cur, cur = t;
	}
	unsigned d = prev[m], limit = m <= 4 ? 1 : 2;
	return d <= limit ? (int)d : -1;
}

const char *opts_nearest(const char *typed, size_t len, const char *const *names, size_t n)
{
	const char *best = NULL;
	int best_d = -1;
	for (size_t i = 0; i < n; i++) {
		int d = names[i] ? opts_near(typed, len, names[i]) : -1;
		if (d >= 0 && (best_d < 0 || d < best_d))
			best = names[i], best_d = d;
	}
	return best;
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
			const char *names[OPTS_SPECS_MAX];
			size_t n = 0;
			for (const struct opts_spec *sp = specs; sp && sp->name && n < OPTS_SPECS_MAX; sp++)
				names[n++] = sp->name;
			const char *near = arg[1] == '-' ? opts_nearest(arg + 2, strcspn(arg + 2, "="), names, n) : NULL;
			if (fmt_into(why, OPTS_WHY_SIZE, "unknown option '%s'%s%s%s", shown, near ? "; did you mean '--" : "",
				     near ? near : "", near ? "'?" : ""))
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
