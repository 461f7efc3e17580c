#include "project.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fs.h"
#include "parse.h"
#include "banned.h"

#define STRING_MAX 4096                                /* bytes of one string value */
#define KEY_MAX 32                                     /* bytes of a key or a table's name */
#define COMMAND_WORDS_MAX 256                          /* words of [deploy] command */

struct lex {
	const char *p, *end;
	size_t line;
	const char *path;
	char *why;
	char table[KEY_MAX]; /* "" at the top, else "deploy" */
};

static enum coffer_err fail(struct lex *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static enum coffer_err fail(struct lex *l, const char *fmt, ...)
{
	char what[PROJECT_WHY_SIZE];
	va_list ap;
	va_start(ap, fmt);
	if (vsnprintf(what, sizeof(what), fmt, ap) < 0)
		what[0] = '\0';
	va_end(ap);
	if (fmt_into(l->why, PROJECT_WHY_SIZE, "%s:%zu: %s", l->path, l->line, what))
		l->why[0] = '\0';
	return COFFER_ERR_INVALID;
}

/* Skips blanks; with lines, also line ends and comments. */
static void skip(struct lex *l, int lines)
{
	while (l->p < l->end) {
		char c = *l->p;
		if (c == ' ' || c == '\t' || (lines && c == '\r')) {
			l->p++;
		} else if (lines && c == '\n') {
			l->p++;
			l->line++;
		} else if (lines && c == '#') {
			while (l->p < l->end && *l->p != '\n')
				l->p++;
		} else {
			return;
		}
	}
}

/* The end of a line: blanks, an optional comment, then a line end or the end of the text. */
static enum coffer_err end_of_line(struct lex *l)
{
	skip(l, 0);
	if (l->p < l->end && *l->p == '#')
		while (l->p < l->end && *l->p != '\n')
			l->p++;
	if (l->p < l->end && *l->p == '\r')
		l->p++;
	if (l->p < l->end && *l->p != '\n')
		return fail(l, "unexpected text after the value");
	if (l->p < l->end) {
		l->p++;
		l->line++;
	}
	return COFFER_OK;
}

static int bare(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static enum coffer_err key(struct lex *l, char out[KEY_MAX])
{
	size_t n = 0;
	while (l->p < l->end && bare(*l->p)) {
		if (n + 1 >= KEY_MAX)
			return fail(l, "a key longer than %d characters", KEY_MAX - 1);
		out[n++] = *l->p++;
	}
	out[n] = '\0';
	return n ? COFFER_OK : fail(l, "expected a key (letters, digits, '_' or '-')");
}

/* A "..." or '...' string (one line) into out (NUL-terminated, *len bytes). */
static enum coffer_err string(struct lex *l, char out[STRING_MAX], size_t *len)
{
	char q = l->p < l->end ? *l->p : 0;
	size_t n = 0;
	if (q != '"' && q != '\'')
		return fail(l, "expected a string in \"...\" or '...'");
	for (l->p++; l->p < l->end && *l->p != q; l->p++) {
		char c = *l->p;
		if (c == '\n' || c == '\0')
			return fail(l, c ? "a string runs past the end of its line" : "a NUL byte in a string");
		if (q == '"' && c == '\\') {
			char e = ++l->p < l->end ? *l->p : 0;
			c = e == '"' ? '"' : e == '\\' ? '\\' : e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : 0;
			if (!c)
				return fail(l, "an unknown escape in a string (\\\" \\\\ \\n \\t \\r are known)");
		}
		if (n + 1 >= STRING_MAX)
			return fail(l, "a string longer than %d bytes", STRING_MAX - 1);
		out[n++] = c;
	}
	if (l->p >= l->end)
		return fail(l, "a string without its closing quote");
	l->p++;
	out[n] = '\0';
	*len = n;
	return COFFER_OK;
}

/* A bare integer (digits only) up to the end of its token. */
static enum coffer_err integer(struct lex *l, const char *what, uint64_t max, int64_t *out)
{
	char digits[24];
	size_t n = 0;
	uint64_t v;
	while (l->p < l->end && bare(*l->p) && n + 1 < sizeof(digits))
		digits[n++] = *l->p++;
	digits[n] = '\0';
	if (!n || parse_uint64(digits, max, &v))
		return fail(l, "%s must be a whole number from 0 to %llu", what, (unsigned long long)max);
	*out = (int64_t)v;
	return COFFER_OK;
}

/* ["word", ...] for key `what` (example: what it may look like), which may span lines (comments allowed between words). */
static enum coffer_err words(struct lex *l, const char *what, const char *example, json_t **out)
{
	char s[STRING_MAX];
	size_t len;
	json_t *a = json_array();
	enum coffer_err rc = a ? COFFER_OK : COFFER_ERR_NOMEM;

	if (!rc && (l->p >= l->end || *l->p != '['))
		rc = fail(l, "%s must be an array of strings, such as %s", what, example);
	if (!rc)
		l->p++;
	while (!rc) {
		skip(l, 1);
		if (l->p < l->end && *l->p == ']') {
			l->p++;
			break;
		}
		rc = string(l, s, &len);
		if (!rc && json_array_size(a) >= COMMAND_WORDS_MAX)
			rc = fail(l, "%s has more than %d words", what, COMMAND_WORDS_MAX);
		if (!rc) {
			json_t *w = json_stringn(s, len);
			rc = !w ? fail(l, "a word of %s is not UTF-8", what) : json_array_append_new(a, w) ? COFFER_ERR_NOMEM
													   : COFFER_OK;
		}
		skip(l, 1);
		if (!rc && l->p < l->end && *l->p == ',')
			l->p++;
		else if (!rc && (l->p >= l->end || *l->p != ']'))
			rc = fail(l, "expected ',' or ']' in %s", what);
	}
	if (!rc && json_array_size(a) == 0)
		rc = fail(l, "%s is empty", what);
	if (rc) {
		json_decref(a);
		return rc;
	}
	*out = a;
	return COFFER_OK;
}

static enum coffer_err value(struct lex *l, const char *k, struct project *p)
{
	char s[STRING_MAX];
	size_t len;
	enum coffer_err rc;
	int deploy = strcmp(l->table, "deploy") == 0;

	if (!deploy && strcmp(k, "app") == 0) {
		if (p->app[0])
			return fail(l, "app is given twice");
		rc = string(l, s, &len);
		if (!rc && (len == 0 || len >= PROJECT_APP_MAX))
			rc = fail(l, "app must be an app's name (1 to %d characters)", PROJECT_APP_MAX - 1);
		if (!rc)
			memcpy(p->app, s, len + 1);
		return rc;
	}
	if (deploy && strcmp(k, "command") == 0) {
		if (p->command)
			return fail(l, "command is given twice");
		return words(l, "command", "[\"sh\", \"-c\", \"exec ./server\"]", &p->command);
	}
	if (deploy && strcmp(k, "files") == 0) {
		if (p->files)
			return fail(l, "files is given twice");
		return words(l, "files", "[\"/run/secrets/tls.pem=TLS_CERT:0400\"]", &p->files);
	}
	if (deploy && strcmp(k, "count") == 0) {
		if (p->count >= 0)
			return fail(l, "count is given twice");
		return integer(l, "count", DEPLOY_COUNT_MAX, &p->count);
	}
	if (deploy && strcmp(k, "grace") == 0) {
		uint64_t ms;
		if (p->grace_ms >= 0)
			return fail(l, "grace is given twice");
		rc = string(l, s, &len);
		if (!rc && parse_duration_ms(s, DEPLOY_GRACE_MAX_MS, &ms))
			rc = fail(l, "grace must be a duration such as \"30s\", \"500ms\" or \"2m\"");
		if (!rc)
			p->grace_ms = (int64_t)ms;
		return rc;
	}
	return fail(l, "unknown key '%s'%s (known: %s)", k, deploy ? " in [deploy]" : "",
		    deploy ? "command, count, files, grace" : "app, and the table [deploy]");
}

enum coffer_err project_parse(const char *path, const char *text, size_t len, struct project *p,
			      char why[PROJECT_WHY_SIZE])
{
	struct lex l = { text, text + len, 1, path, why, "" };
	int seen_deploy = 0;
	enum coffer_err rc = COFFER_OK;

	why[0] = '\0';
	p->command = NULL;
	p->files = NULL;
	p->app[0] = '\0';
	p->count = -1;
	p->grace_ms = -1;
	if (str_copy(p->path, sizeof(p->path), path))
		p->path[0] = '\0';
	while (!rc) {
		char k[KEY_MAX];
		skip(&l, 1);
		if (l.p >= l.end)
			break;
		if (*l.p == '[') {
			l.p++;
			skip(&l, 0);
			rc = key(&l, k);
			skip(&l, 0);
			if (!rc && (l.p >= l.end || *l.p != ']'))
				rc = fail(&l, "expected ']' after the table's name");
			if (!rc && strcmp(k, "deploy") != 0)
				rc = fail(&l, "unknown table [%s] (known: [deploy])", k);
			if (!rc && seen_deploy++)
				rc = fail(&l, "the table [deploy] is given twice");
			if (!rc) {
				l.p++;
				memcpy(l.table, "deploy", sizeof("deploy"));
				rc = end_of_line(&l);
			}
			continue;
		}
		rc = key(&l, k);
		skip(&l, 0);
		if (!rc && (l.p >= l.end || *l.p != '='))
			rc = fail(&l, "expected '=' after the key '%s'", k);
		if (!rc) {
			l.p++;
			skip(&l, 0);
			rc = value(&l, k, p);
		}
		if (!rc)
			rc = end_of_line(&l);
	}
	if (rc)
		project_release(p);
	if (rc && rc != COFFER_ERR_INVALID && fmt_into(why, PROJECT_WHY_SIZE, "%s: %s", path, coffer_strerror(rc)))
		why[0] = '\0';
	return rc;
}

/* why = "<fmt>" (a message that does not fit is cut to nothing: the caller's own then). */
static void say(char why[PROJECT_WHY_SIZE], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(char why[PROJECT_WHY_SIZE], const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vsnprintf(why, PROJECT_WHY_SIZE, fmt, ap) < 0)
		why[0] = '\0';
	va_end(ap);
}

enum coffer_err project_load(const char *path, struct project *p, char why[PROJECT_WHY_SIZE])
{
	char found[PROJECT_PATH_MAX], dir[PROJECT_PATH_MAX];
	struct buf b;
	enum coffer_err rc;

	memset(p, 0, sizeof(*p));
	p->count = -1;
	p->grace_ms = -1;
	why[0] = '\0';
	if (path) {
		if (str_copy(found, sizeof(found), path)) {
			say(why, "the project file's path is too long");
			return COFFER_ERR_USAGE;
		}
	} else {
		/* the current folder, then each one above it, up to / */
		if (!getcwd(dir, sizeof(dir)))
			return COFFER_OK;
		for (;;) {
			if (fmt_into(found, sizeof(found), "%s%s" PROJECT_FILE, dir, strcmp(dir, "/") ? "/" : ""))
				return COFFER_OK;
			if (access(found, F_OK) == 0)
				break;
			char *slash = strrchr(dir, '/');
			if (!slash || strcmp(dir, "/") == 0)
				return COFFER_OK;
			slash[slash == dir] = '\0';
		}
	}
	/*
	 * Only a file of this user (or root) that nobody else may write: one
	 * that another user planted in a folder above (/tmp/coffer.toml)
	 * would name the app and the command a deploy signs.
	 */
	struct stat st;
	if (stat(found, &st) == 0 &&
	    ((st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & (S_IWGRP | S_IWOTH)))) {
		say(why, "%s belongs to another user or others may write it: refusing to take an app or a command "
			 "from it (chown it, chmod go-w it, or give -a)", found);
		return COFFER_ERR_FORBIDDEN;
	}
	buf_init(&b, PROJECT_SIZE_MAX);
	rc = fs_read_file(found, &b);
	if (rc == COFFER_ERR_TOO_LARGE)
		say(why, "%s: larger than %zu bytes", found, PROJECT_SIZE_MAX);
	else if (rc)
		say(why, "cannot read the project file %s: %s", found,
		    rc == COFFER_ERR_NOT_FOUND ? "no such file" : coffer_strerror(rc));
	if (!rc && memchr(b.ptr, '\0', b.len)) {
		say(why, "%s: a NUL byte in the file", found);
		rc = COFFER_ERR_INVALID;
	}
	if (!rc)
		rc = project_parse(found, b.ptr ? b.ptr : "", b.len, p, why);
	buf_release(&b);
	return rc;
}

void project_release(struct project *p)
{
	json_decref(p->command);
	p->command = NULL;
	json_decref(p->files);
	p->files = NULL;
}
