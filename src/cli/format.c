#include "format.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

#define SECS_PER_MIN 60
#define SECS_PER_HOUR 3600
#define SECS_PER_DAY 86400
#define TABLE_ROWS_FIRST 16
#define ELLIPSIS "..."
#define NULL_CELL "-"

/* Bytes of s that fit in max bytes without cutting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* A copy fit for a terminal: control characters become '?'; cut past FORMAT_CELL_MAX. */
static char *cell_copy(const char *s)
{
	if (!s)
		s = NULL_CELL;
	size_t n = strlen(s), keep = n;
	int cut = 0;
	if (n > FORMAT_CELL_MAX) {
		keep = utf8_cut(s, FORMAT_CELL_MAX - (sizeof(ELLIPSIS) - 1));
		cut = 1;
	}
	char *c = malloc(keep + (cut ? sizeof(ELLIPSIS) : 1));
	if (!c)
		return NULL;
	for (size_t i = 0; i < keep; i++) {
		unsigned char ch = (unsigned char)s[i];
		c[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (cut)
		memcpy(c + keep, ELLIPSIS, sizeof(ELLIPSIS));
	else
		c[keep] = '\0';
	return c;
}

/* Display width: UTF-8 characters (bytes that do not continue a sequence). */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void format_table_release(struct format_table *t)
{
	if (t->cells)
		for (size_t i = 0; i < (t->n_rows + 1) * t->n_cols; i++)
			free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

enum coffer_err format_table_init(struct format_table *t, size_t n_cols, const char *const headers[])
{
	memset(t, 0, sizeof(*t));
	if (n_cols == 0 || n_cols > FORMAT_TABLE_COLS_MAX)
		return COFFER_ERR_INVALID;
	t->cells = calloc(TABLE_ROWS_FIRST * n_cols, sizeof(*t->cells));
	if (!t->cells)
		return COFFER_ERR_NOMEM;
	t->n_cols = n_cols;
	t->cap = TABLE_ROWS_FIRST;
	for (size_t i = 0; i < n_cols; i++) {
		t->cells[i] = cell_copy(headers[i]);
		if (!t->cells[i]) {
			format_table_release(t);
			return COFFER_ERR_NOMEM;
		}
	}
	return COFFER_OK;
}

enum coffer_err format_table_add(struct format_table *t, const char *const cells[])
{
	size_t used = t->n_rows + 1; /* the header is row 0 */
	if (t->n_rows >= FORMAT_TABLE_ROWS_MAX)
		return COFFER_ERR_TOO_LARGE;
	if (used == t->cap) {
		size_t cap = t->cap * 2;
		char **p = realloc(t->cells, cap * t->n_cols * sizeof(*p));
		if (!p)
			return COFFER_ERR_NOMEM;
		t->cells = p;
		t->cap = cap;
	}
	char **row = t->cells + used * t->n_cols;
	for (size_t i = 0; i < t->n_cols; i++) {
		row[i] = cell_copy(cells[i]);
		if (!row[i]) {
			while (i > 0)
				free(row[--i]);
			return COFFER_ERR_NOMEM;
		}
	}
	t->n_rows++;
	return COFFER_OK;
}

enum coffer_err format_table_render(const struct format_table *t, struct buf *out)
{
	size_t widths[FORMAT_TABLE_COLS_MAX] = { 0 };
	size_t old_len = out->len;
	enum coffer_err rc = COFFER_OK;

	for (size_t r = 0; r <= t->n_rows; r++)
		for (size_t c = 0; c < t->n_cols; c++) {
			size_t w = width(t->cells[r * t->n_cols + c]);
			if (w > widths[c])
				widths[c] = w;
		}
	for (size_t r = 0; r <= t->n_rows && !rc; r++) {
		for (size_t c = 0; c < t->n_cols && !rc; c++) {
			const char *cell = t->cells[r * t->n_cols + c];
			rc = buf_adds(out, cell);
			if (c + 1 == t->n_cols)
				break;
			for (size_t pad = width(cell); pad < widths[c] + FORMAT_TABLE_GAP && !rc; pad++)
				rc = buf_addch(out, ' ');
		}
		if (!rc)
			rc = buf_addch(out, '\n');
	}
	if (rc) {
		out->len = old_len;
		if (out->cap)
			out->ptr[old_len] = '\0';
	}
	return rc;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

enum coffer_err format_rfc3339(int64_t t, char *out, size_t size)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if ((int64_t)tt != t || !gmtime_r(&tt, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
		return COFFER_ERR_INVALID;
	return fmt_into(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* n decimal digits at s into *v; 0 if any is not a digit. */
static int digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		*v = *v * 10 + (s[i] - '0');
	}
	return 1;
}

enum coffer_err format_parse_rfc3339(const char *s, int64_t *out)
{
	static const unsigned char mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;

	if (!s || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) || s[13] != ':' ||
	    !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
		return COFFER_ERR_INVALID;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return COFFER_ERR_INVALID;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '+' ? 1 : -1;
		if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return COFFER_ERR_INVALID;
		p += 6;
	} else {
		return COFFER_ERR_INVALID;
	}
	if (*p != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
		return COFFER_ERR_INVALID;
	if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
		return COFFER_ERR_INVALID;
	if (sec == 60) /* a leap second counts as the last second of its minute */
		sec = 59;
	int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * SECS_PER_DAY + h * SECS_PER_HOUR +
		    mi * SECS_PER_MIN + sec;
	t -= sign * (oh * SECS_PER_HOUR + om * SECS_PER_MIN);
	*out = t;
	return COFFER_OK;
}

enum coffer_err format_relative(int64_t then, int64_t now, char *out, size_t size)
{
	int past = then <= now;
	/* the difference of two int64 fits in a uint64 */
	uint64_t diff = past ? (uint64_t)now - (uint64_t)then : (uint64_t)then - (uint64_t)now;
	uint64_t n;
	char unit;

	if (diff < SECS_PER_MIN) {
		n = diff, unit = 's';
	} else if (diff < SECS_PER_HOUR) {
		n = diff / SECS_PER_MIN, unit = 'm';
	} else if (diff < SECS_PER_DAY) {
		n = diff / SECS_PER_HOUR, unit = 'h';
	} else {
		n = diff / SECS_PER_DAY, unit = 'd';
	}
	if (past)
		return fmt_into(out, size, "%" PRIu64 "%c ago", n, unit);
	return fmt_into(out, size, "in %" PRIu64 "%c", n, unit);
}

void format_when(const char *ts, int64_t now, const char *none, char *out, size_t size)
{
	int64_t t;
	const char *text = ts ? ts : none;
	if (!size)
		return;
	if (ts && !format_parse_rfc3339(ts, &t) && !format_relative(t, now, out, size))
		return;
	size_t n = utf8_cut(text, size - 1);
	memcpy(out, text, n);
	out[n] = '\0';
}

enum coffer_err format_url_segment(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t j = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			    *p == '-' || *p == '_' || *p == '~';
		size_t need = plain ? 1 : 3;
		if (j + need >= size) {
			if (size)
				out[0] = '\0';
			return COFFER_ERR_TOO_LARGE;
		}
		if (plain) {
			out[j++] = (char)*p;
		} else {
			out[j++] = '%';
			out[j++] = hex[*p >> 4];
			out[j++] = hex[*p & 15];
		}
	}
	if (j >= size)
		return COFFER_ERR_TOO_LARGE;
	out[j] = '\0';
	return COFFER_OK;
}

enum coffer_err format_duration(uint64_t ms, char *out, size_t size)
{
	static const struct {
		uint64_t ms;
		const char *unit;
	} units[] = {
		{ (uint64_t)SECS_PER_DAY * 1000, "d" }, { (uint64_t)SECS_PER_HOUR * 1000, "h" },
		{ (uint64_t)SECS_PER_MIN * 1000, "m" }, { 1000, "s" },
		{ 1, "ms" },
	};
	size_t pos = 0;

	if (ms == 0)
		return fmt_into(out, size, "0s");
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t n = ms / units[i].ms;
		if (!n)
			continue;
		ms -= n * units[i].ms;
		if (pos >= size || fmt_into(out + pos, size - pos, "%" PRIu64 "%s", n, units[i].unit)) {
			if (size)
				out[0] = '\0';
			return COFFER_ERR_TOO_LARGE;
		}
		pos += strlen(out + pos);
	}
	return COFFER_OK;
}

/* s cut to max bytes (at a UTF-8 boundary), control characters as '?', into out (max + 1 bytes). */
static void safe_copy(const char *s, size_t max, char *out)
{
	size_t n = utf8_cut(s, max);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	out[n] = '\0';
}

enum coffer_err format_machine_step(const char *id, const char *step, int64_t grace_left_ms, char *out,
				    size_t size)
{
	char sid[FORMAT_STEP_ID_MAX + 1], sstep[FORMAT_STEP_NAME_MAX + 1];

	safe_copy(id ? id : "?", FORMAT_STEP_ID_MAX, sid);
	if (!step)
		step = "?";
	if (strcmp(step, "watching") == 0) {
		int64_t left = grace_left_ms > 0 ? grace_left_ms / 1000 + (grace_left_ms % 1000 != 0) : 0;
		return fmt_into(out, size, "machine %s: started, watching (%" PRId64 "s left)", sid, left);
	}
	if (strcmp(step, "rolled_back") == 0)
		return fmt_into(out, size, "machine %s: rolled back", sid);
	safe_copy(step, FORMAT_STEP_NAME_MAX, sstep);
	return fmt_into(out, size, "machine %s: %s", sid, sstep);
}

void format_first_line(const char *s, const char *none, char *out, size_t size)
{
	if (size < sizeof(ELLIPSIS))
		return;
	if (!s)
		s = none ? none : "";
	size_t line = strcspn(s, "\r\n");
	if (line < size) {
		/* utf8_cut looks at s[max]: copy the line alone */
		safe_copy(s, line, out);
		out[line] = '\0';
		return;
	}
	size_t keep = utf8_cut(s, size - sizeof(ELLIPSIS));
	safe_copy(s, keep, out);
	memcpy(out + strlen(out), ELLIPSIS, sizeof(ELLIPSIS));
}

enum coffer_err format_terminal_text(const char *s, struct buf *out)
{
	size_t old_len = out->len;
	enum coffer_err rc = COFFER_OK;

	for (; *s && !rc; s++) {
		unsigned char ch = (unsigned char)*s;
		rc = buf_addch(out, (ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f ? '?' : (char)ch);
	}
	if (rc) {
		out->len = old_len;
		if (out->cap)
			out->ptr[old_len] = '\0';
	}
	return rc;
}

static int shell_plain(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("_-./:=@%+,", c)))
			return 0;
	}
	return 1;
}

enum coffer_err format_argv(const char *const argv[], size_t n, struct buf *out)
{
	size_t old_len = out->len;
	enum coffer_err rc = COFFER_OK;

	for (size_t i = 0; i < n && !rc; i++) {
		const char *a = argv[i] ? argv[i] : "";
		if (i)
			rc = buf_addch(out, ' ');
		if (!rc && shell_plain(a)) {
			rc = buf_adds(out, a);
			continue;
		}
		if (!rc)
			rc = buf_addch(out, '\'');
		for (const char *p = a; *p && !rc; p++) {
			unsigned char ch = (unsigned char)*p;
			if (ch == '\'')
				rc = buf_adds(out, "'\\''");
			else
				rc = buf_addch(out, ch < 0x20 || ch == 0x7f ? '?' : (char)ch);
		}
		if (!rc)
			rc = buf_addch(out, '\'');
	}
	if (rc) {
		out->len = old_len;
		if (out->cap)
			out->ptr[old_len] = '\0';
	}
	return rc;
}
