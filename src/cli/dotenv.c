#include "dotenv.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "banned.h"

#define ENTRIES_FIRST 16
#define READ_CHUNK_FIRST 4096
#define TRIPLE "\"\"\""
#define TRIPLE_LEN 3
#define EXPORT_WORD "export"
#define EXPORT_LEN 6
#define B64_VARIANT sodium_base64_VARIANT_ORIGINAL
#define BOM "\xef\xbb\xbf" /* UTF-8's byte order mark, which some editors write first */
#define BOM_LEN 3

/* One physical line after another; lines exclude "\n" and a "\r" before it. */
struct cursor {
	const unsigned char *data;
	size_t len;
	size_t pos;
	size_t line; /* number of the line last returned */
};

/* Counts bytes when p is NULL, writes them otherwise. */
struct writer {
	unsigned char *p;
	size_t len;
};

static int is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static void set_err(struct dotenv_error *err, size_t line, const char *what)
{
	if (!err)
		return;
	err->line = line;
	if (line ? fmt_into(err->message, sizeof(err->message), "line %zu: %s", line, what)
		 : str_copy(err->message, sizeof(err->message), what))
		err->message[0] = '\0';
}

void dotenv_init(struct dotenv *d)
{
	d->entries = NULL;
	d->n = 0;
	d->cap = 0;
	d->note = NULL;
	d->note_ctx = NULL;
}

void dotenv_release(struct dotenv *d)
{
	for (size_t i = 0; i < d->n; i++)
		secret_free(d->entries[i].value);
	free(d->entries);
	dotenv_init(d);
}

int dotenv_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > DOTENV_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
		if (!ok)
			return 0;
	}
	return 1;
}

const struct dotenv_entry *dotenv_find(const struct dotenv *d, const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->entries[i].name, name) == 0)
			return &d->entries[i];
	return NULL;
}

enum coffer_err dotenv_put(struct dotenv *d, const char *name, size_t len, struct secret *value)
{
	enum coffer_err rc = COFFER_OK;
	char key[DOTENV_NAME_MAX + 1];

	if (!dotenv_name_valid(name, len)) {
		rc = COFFER_ERR_INVALID;
		goto out;
	}
	memcpy(key, name, len);
	key[len] = '\0';
	for (size_t i = 0; i < d->n; i++) {
		if (strcmp(d->entries[i].name, key) == 0) {
			secret_free(d->entries[i].value);
			d->entries[i].value = value;
			value = NULL;
			goto out;
		}
	}
	if (d->n >= DOTENV_ENTRIES_MAX) {
		rc = COFFER_ERR_TOO_LARGE;
		goto out;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : ENTRIES_FIRST;
		struct dotenv_entry *e = realloc(d->entries, cap * sizeof(*e));
		if (!e) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
		d->entries = e;
		d->cap = cap;
	}
	memcpy(d->entries[d->n].name, key, len + 1);
	d->entries[d->n].value = value;
	d->n++;
	value = NULL;
out:
	secret_free(value);
	return rc;
}

static int next_line(struct cursor *c, const unsigned char **s, size_t *n)
{
	if (c->pos >= c->len)
		return 0;
	const unsigned char *start = c->data + c->pos;
	const unsigned char *nl = memchr(start, '\n', c->len - c->pos);
	size_t len = nl ? (size_t)(nl - start) : c->len - c->pos;
	c->pos += len + (nl ? 1 : 0);
	if (len > 0 && start[len - 1] == '\r')
		len--;
	c->line++;
	*s = start;
	*n = len;
	return 1;
}

static enum coffer_err check_line(const unsigned char *s, size_t n, size_t line, struct dotenv_error *err)
{
	if (n > DOTENV_LINE_MAX) {
		set_err(err, line, "line too long");
		return COFFER_ERR_TOO_LARGE;
	}
	if (memchr(s, '\0', n)) {
		set_err(err, line, "NUL byte in line");
		return COFFER_ERR_INVALID;
	}
	return COFFER_OK;
}

static enum coffer_err check_value_len(size_t n, size_t line, struct dotenv_error *err)
{
	char what[DOTENV_ERROR_MAX];
	if (n <= DOTENV_VALUE_MAX)
		return COFFER_OK;
	if (fmt_into(what, sizeof(what), "value longer than %zu bytes", DOTENV_VALUE_MAX))
		what[0] = '\0';
	set_err(err, line, what);
	return COFFER_ERR_TOO_LARGE;
}

/* Only blanks, or blanks then a # comment, after a closing quote. */
static enum coffer_err check_after_quote(const unsigned char *s, size_t n, size_t line, struct dotenv_error *err)
{
	size_t i = 0;
	while (i < n && is_blank(s[i]))
		i++;
	if (i < n && s[i] != '#') {
		set_err(err, line, "unexpected text after the closing quote");
		return COFFER_ERR_INVALID;
	}
	return COFFER_OK;
}

static enum coffer_err plain_value(const unsigned char *s, size_t n, size_t line, struct secret **out,
				   struct dotenv_error *err)
{
	enum coffer_err rc = check_value_len(n, line, err);
	if (rc)
		return rc;
	return secret_from(s, n, out);
}

/* Where a comment starts in an unquoted value s[0..n): at a '#' after a blank (n if none). */
static size_t comment_start(const unsigned char *s, size_t n, int blank_before)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '#' && (i ? is_blank(s[i - 1]) : blank_before))
			return i;
	return n;
}

/*
 * A value in quotes (' " or `) whose opening quote is c->data[open], on
 * line `line`; it may run over several lines (joined with LF, a CRLF read
 * as LF). A backslash keeps the character after it from closing the value
 * and is kept as written, except that in double quotes \n and \r become
 * LF and CR (as dotenv reads them). Only blanks or a # comment may follow
 * the closing quote. c is moved past the line of the closing quote.
 */
static enum coffer_err quoted(struct cursor *c, size_t open, size_t line, struct secret **out,
			      struct dotenv_error *err)
{
	const unsigned char *d = c->data;
	unsigned char q = d[open];
	size_t close = 0, end, closing_line = line, j = 0;
	struct secret *v = NULL;
	enum coffer_err rc;

	for (size_t i = open + 1; i < c->len && !close; i++) {
		if (d[i] == '\\' && i + 1 < c->len)
			i++;
		else if (d[i] == q)
			close = i;
	}
	if (!close) {
		set_err(err, line, q == '"' ? "unterminated double quote" : q == '\'' ? "unterminated single quote"
										  : "unterminated backquote");
		return COFFER_ERR_INVALID;
	}
	for (size_t i = open; i < close; i++)
		closing_line += d[i] == '\n';
	if (memchr(d + open, '\0', close - open)) {
		set_err(err, line, "NUL byte in the value");
		return COFFER_ERR_INVALID;
	}
	const unsigned char *nl = memchr(d + close, '\n', c->len - close);
	end = nl ? (size_t)(nl - d) : c->len;
	rc = check_after_quote(d + close + 1, end - close - 1 - (end > close + 1 && d[end - 1] == '\r'), closing_line,
			       err);
	if (!rc)
		rc = secret_new(close - open - 1, &v);
	if (rc)
		goto out;
	unsigned char *p = secret_bytes(v);
	for (size_t i = open + 1; i < close; i++) {
		if (d[i] == '\r' && d[i + 1] == '\n')
			continue;
		if (q == '"' && d[i] == '\\' && (d[i + 1] == 'n' || d[i + 1] == 'r')) {
			p[j++] = d[++i] == 'n' ? '\n' : '\r';
			continue;
		}
		p[j++] = d[i];
	}
	rc = secret_truncate(v, j);
	if (!rc)
		rc = check_value_len(j, line, err);
	if (rc)
		goto out;
	if (closing_line > line) {
		c->line = closing_line;
		c->pos = nl ? end + 1 : c->len;
	}
	*out = v;
	v = NULL;
out:
	secret_free(v);
	return rc;
}

/* Length of s[0..n) without trailing blanks. */
static size_t rtrim(const unsigned char *s, size_t n)
{
	while (n > 0 && is_blank(s[n - 1]))
		n--;
	return n;
}

static int ends_triple(const unsigned char *s, size_t n, size_t *content)
{
	n = rtrim(s, n);
	if (n < TRIPLE_LEN || memcmp(s + n - TRIPLE_LEN, TRIPLE, TRIPLE_LEN) != 0)
		return 0;
	*content = n - TRIPLE_LEN;
	return 1;
}

static void put(struct writer *w, const void *data, size_t n)
{
	if (w->p && n)
		memcpy(w->p + w->len, data, n);
	w->len += n;
}

/*
 * The lines of a """ value: the rest of the opening line (unless blank),
 * then the lines up to the one ending with """. Counts or writes; *closing
 * is the cursor after the closing line.
 */
static enum coffer_err triple_lines(struct cursor c, const unsigned char *rest, size_t rn, size_t open_line,
				    struct writer *w, struct cursor *closing, struct dotenv_error *err)
{
	const unsigned char *s;
	size_t n, content;
	enum coffer_err rc;

	if (rtrim(rest, rn) > 0) {
		put(w, rest, rn);
		put(w, "\n", 1);
	}
	while (next_line(&c, &s, &n)) {
		rc = check_line(s, n, c.line, err);
		if (rc)
			return rc;
		if (ends_triple(s, n, &content)) {
			put(w, s, content);
			*closing = c;
			return COFFER_OK;
		}
		put(w, s, n);
		put(w, "\n", 1);
		if (w->len > DOTENV_VALUE_MAX) /* stop early; the caller reports it */
			return COFFER_OK;
	}
	set_err(err, open_line, "unterminated \"\"\" (no line ends with \"\"\")");
	return COFFER_ERR_INVALID;
}

/* rest follows the opening """ on line open_line; c is after that line and is moved past the value. */
static enum coffer_err triple_quoted(struct cursor *c, const unsigned char *rest, size_t rn, size_t open_line,
				     struct secret **out, struct dotenv_error *err)
{
	struct writer w = { NULL, 0 };
	struct cursor closing = *c;
	struct secret *v = NULL;
	size_t content;
	enum coffer_err rc;

	if (ends_triple(rest, rn, &content))
		return plain_value(rest, content, open_line, out, err);
	rc = triple_lines(*c, rest, rn, open_line, &w, &closing, err);
	if (!rc)
		rc = check_value_len(w.len, open_line, err);
	if (!rc)
		rc = secret_new(w.len, &v);
	if (rc)
		goto out;
	w.p = secret_bytes(v);
	w.len = 0;
	rc = triple_lines(*c, rest, rn, open_line, &w, &closing, err);
	if (rc)
		goto out;
	*c = closing;
	*out = v;
	v = NULL;
out:
	secret_free(v);
	return rc;
}

enum coffer_err dotenv_parse(const unsigned char *data, size_t len, struct dotenv *d, struct dotenv_error *err)
{
	struct cursor c = { data, len, 0, 0 };
	const unsigned char *s;
	size_t n;
	enum coffer_err rc = COFFER_OK;

	if (err)
		set_err(err, 0, "");
	if (len >= BOM_LEN && memcmp(data, BOM, BOM_LEN) == 0)
		c.pos = BOM_LEN;
	while (next_line(&c, &s, &n)) {
		size_t line = c.line, i = 0, name_end, v;
		struct secret *value = NULL;

		rc = check_line(s, n, line, err);
		if (rc)
			return rc;
		while (i < n && is_blank(s[i]))
			i++;
		if (i == n || s[i] == '#')
			continue;
		if (n - i > EXPORT_LEN && memcmp(s + i, EXPORT_WORD, EXPORT_LEN) == 0 && is_blank(s[i + EXPORT_LEN])) {
			size_t k = i + EXPORT_LEN;
			while (k < n && is_blank(s[k]))
				k++;
			if (k < n && s[k] != '=') /* "export = x" sets a variable named export */
				i = k;
		}
		const unsigned char *eq = memchr(s + i, '=', n - i);
		if (!eq) {
			set_err(err, line, "no '=' in line");
			return COFFER_ERR_INVALID;
		}
		name_end = (size_t)(eq - s);
		v = name_end + 1;
		name_end = i + rtrim(s + i, name_end - i);
		if (!dotenv_name_valid((const char *)s + i, name_end - i)) {
			set_err(err, line, "invalid name (letters, digits and '_', not starting with a digit)");
			return COFFER_ERR_INVALID;
		}
		while (v < n && is_blank(s[v]))
			v++;
		if (n - v >= TRIPLE_LEN && memcmp(s + v, TRIPLE, TRIPLE_LEN) == 0)
			rc = triple_quoted(&c, s + v + TRIPLE_LEN, n - v - TRIPLE_LEN, line, &value, err);
		else if (v < n && (s[v] == '"' || s[v] == '\'' || s[v] == '`'))
			rc = quoted(&c, (size_t)(s - data) + v, line, &value, err);
		else {
			size_t cut = comment_start(s + v, n - v, is_blank(s[v - 1]));
			if (cut < n - v && d->note)
				d->note(d->note_ctx, line, (const char *)s + i, name_end - i);
			rc = plain_value(s + v, rtrim(s + v, cut), line, &value, err);
		}
		if (rc)
			return rc;
		rc = dotenv_put(d, (const char *)s + i, name_end - i, value);
		if (rc == COFFER_ERR_TOO_LARGE)
			set_err(err, line, "too many names");
		if (rc)
			return rc;
	}
	return COFFER_OK;
}

enum coffer_err dotenv_read(FILE *f, size_t max, struct secret **out)
{
	struct secret *s = NULL, *t = NULL;
	size_t cap = max < READ_CHUNK_FIRST ? max + 1 : READ_CHUNK_FIRST, len = 0;
	enum coffer_err rc;

	if (max >= SIZE_MAX / 2)
		return COFFER_ERR_INVALID;
	if (setvbuf(f, NULL, _IONBF, 0))
		return COFFER_ERR_IO;
	rc = secret_new(cap, &s);
	if (rc)
		goto out;
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				rc = COFFER_ERR_TOO_LARGE;
				goto out;
			}
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			rc = secret_new(ncap, &t);
			if (rc)
				goto out;
			memcpy(secret_bytes(t), secret_cbytes(s), len);
			secret_free(s);
			s = t;
			t = NULL;
			cap = ncap;
		}
		size_t r = fread(secret_bytes(s) + len, 1, cap - len, f);
		len += r;
		if (r == 0) {
			if (ferror(f)) {
				rc = COFFER_ERR_IO;
				goto out;
			}
			break;
		}
	}
	rc = secret_truncate(s, len);
	if (rc)
		goto out;
	*out = s;
	s = NULL;
out:
	secret_free(s);
	return rc;
}

enum coffer_err dotenv_parse_file(FILE *f, struct dotenv *d, struct dotenv_error *err)
{
	struct secret *in = NULL;
	enum coffer_err rc = dotenv_read(f, DOTENV_INPUT_MAX, &in);
	if (rc == COFFER_ERR_TOO_LARGE)
		set_err(err, 0, "input larger than 8 MiB");
	else if (rc)
		set_err(err, 0, coffer_strerror(rc));
	if (!rc)
		rc = dotenv_parse(secret_cbytes(in), secret_len(in), d, err);
	secret_free(in);
	return rc;
}
