/*
 * log.h — leveled, structured logging: one logfmt line per event on stderr.
 *
 *   log_info("listening", LF_S("addr", addr), LF_I("port", port));
 *   -> ts=2026-11-26T10:00:00.123Z level=info role=api event=listening addr=127.0.0.1 port=8080
 *
 * Fields are typed: LF_S takes a const char * and LF_I an integer, so a
 * struct secret cannot be passed (it is a compile error). Callers must still
 * never pass a value, a token, a header or a request body; the logger quotes
 * and escapes what it is given so that one event stays one line.
 */
#ifndef COFFER_LOG_H
#define COFFER_LOG_H

#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

struct log_field {
	const char *key;
	const char *str; /* used when is_int == 0; NULL prints as "" */
	int64_t num;
	int is_int;
};

#define LF_S(k, v) ((struct log_field){ .key = (k), .str = (v), .num = 0, .is_int = 0 })
#define LF_I(k, v) ((struct log_field){ .key = (k), .str = 0, .num = (int64_t)(v), .is_int = 1 })

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "debug", "info", "warn", "error", "off"; returns -1 for anything else. */
int log_level_parse(const char *name, enum log_level *out);
/* Names the process's role in every line ("api", "keeper", "agent", "cli"). */
void log_set_role(const char *role);
/* Sends lines to fd instead of stderr (2); for tests. */
void log_set_fd(int fd);

void log_fields(enum log_level level, const char *event, const struct log_field *fields, int n);

#define LOG__N(...) ((int)(sizeof((struct log_field[]){ __VA_ARGS__ }) / sizeof(struct log_field)))
#define log_at(level, event, ...)                                                                  \
	log_fields((level), (event), (const struct log_field[]){ LF_S(0, 0), ##__VA_ARGS__ } + 1,   \
		   LOG__N(LF_S(0, 0), ##__VA_ARGS__) - 1)
#define log_debug(event, ...) log_at(LOG_DEBUG, event, ##__VA_ARGS__)
#define log_info(event, ...) log_at(LOG_INFO, event, ##__VA_ARGS__)
#define log_warn(event, ...) log_at(LOG_WARN, event, ##__VA_ARGS__)
#define log_error(event, ...) log_at(LOG_ERROR, event, ##__VA_ARGS__)

#endif
