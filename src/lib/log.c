#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "banned.h"

static enum log_level current_level = LOG_INFO;
static const char *current_role = "coffer";
static int current_fd = 2;

static const char *const level_names[] = { "debug", "info", "warn", "error", "off" };

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (int i = 0; i <= LOG_OFF; i++)
		if (name && strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

void log_set_role(const char *role)
{
	current_role = role;
}

void log_set_fd(int fd)
{
	current_fd = fd;
}

/* logfmt value: bare when safe, else quoted with \" \\ \n \t and \xNN escapes. */
static enum coffer_err add_value(struct buf *b, const char *v)
{
	enum coffer_err rc = COFFER_OK;
	int bare = *v != '\0';
	for (const char *p = v; *p && bare; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p >= 0x7f)
			bare = 0;
	if (bare)
		return buf_adds(b, v);
	rc = buf_addch(b, '"');
	for (const unsigned char *p = (const unsigned char *)v; *p && !rc; p++) {
		if (*p == '"' || *p == '\\')
			rc = buf_addf(b, "\\%c", *p);
		else if (*p == '\n')
			rc = buf_adds(b, "\\n");
		else if (*p == '\t')
			rc = buf_adds(b, "\\t");
		else if (*p < ' ' || *p == 0x7f)
			rc = buf_addf(b, "\\x%02x", *p);
		else
			rc = buf_addch(b, (char)*p);
	}
	return rc ? rc : buf_addch(b, '"');
}

void log_fields(enum log_level level, const char *event, const struct log_field *fields, int n)
{
	if (level < current_level || level >= LOG_OFF)
		return;
	int saved_errno = errno;
	struct buf b;
	buf_init(&b, 16384);
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	enum coffer_err rc = buf_addf(&b, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s role=", tm.tm_year + 1900,
				      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
				      ts.tv_nsec / 1000000, level_names[level]);
	if (!rc)
		rc = add_value(&b, current_role);
	if (!rc)
		rc = buf_adds(&b, " event=");
	if (!rc)
		rc = add_value(&b, event ? event : "");
	for (int i = 0; i < n && !rc; i++) {
		rc = buf_addf(&b, " %s=", fields[i].key ? fields[i].key : "field");
		if (rc)
			break;
		if (fields[i].is_int)
			rc = buf_addf(&b, "%lld", (long long)fields[i].num);
		else
			rc = add_value(&b, fields[i].str ? fields[i].str : "");
	}
	if (rc) {
		buf_reset(&b);
		rc = buf_addf(&b, "level=error role=%s event=log_line_too_long", current_role);
	}
	if (!rc)
		rc = buf_addch(&b, '\n');
	if (!rc) {
		/* One write(2) per line so that lines from threads do not interleave. */
		size_t off = 0;
		while (off < b.len) {
			ssize_t w = write(current_fd, b.ptr + off, b.len - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
	buf_release(&b);
	errno = saved_errno;
}
