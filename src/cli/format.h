/*
 * format.h — text the CLI shows: aligned tables, relative and RFC 3339
 * dates, and percent-encoded URL path segments.
 *
 * A struct format_table owns copies of every cell it is given; the caller
 * owns the strings it passes in and the buf it renders into. Cells are made
 * safe for a terminal when added (control characters become '?'), so text
 * that came from a peer cannot move the cursor or change colours.
 */
#ifndef COFFER_CLI_FORMAT_H
#define COFFER_CLI_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define FORMAT_TABLE_COLS_MAX 16
#define FORMAT_TABLE_ROWS_MAX 1000000
#define FORMAT_CELL_MAX 4096             /* bytes of one cell; longer cells are cut and end in "..." */
#define FORMAT_TABLE_GAP 2               /* spaces between columns */
#define FORMAT_RFC3339_SIZE 21           /* "2026-11-26T10:00:00Z" and its NUL */
#define FORMAT_RELATIVE_SIZE 32          /* "in 106751991167300d" fits */

struct format_table {
	size_t n_cols;
	size_t n_rows; /* rows added, the header not counted */
	size_t cap;    /* rows allocated, the header counted */
	char **cells;  /* row-major; row 0 is the header */
};

/* headers: n_cols strings (1..FORMAT_TABLE_COLS_MAX), copied. */
COFFER_MUST_CHECK enum coffer_err format_table_init(struct format_table *t, size_t n_cols,
						    const char *const headers[]);
/* Appends one row of t->n_cols cells; a NULL cell shows as "-". */
COFFER_MUST_CHECK enum coffer_err format_table_add(struct format_table *t, const char *const cells[]);
/*
 * Appends the table to out: one line per row, every column but the last
 * padded to its widest cell (counted in UTF-8 characters) and followed by
 * FORMAT_TABLE_GAP spaces; no trailing spaces. out is left as it was on
 * failure.
 */
COFFER_MUST_CHECK enum coffer_err format_table_render(const struct format_table *t, struct buf *out);
void format_table_release(struct format_table *t);

/* Seconds since the epoch as "2026-11-26T10:00:00Z" (UTC); out holds FORMAT_RFC3339_SIZE bytes. */
COFFER_MUST_CHECK enum coffer_err format_rfc3339(int64_t t, char *out, size_t size);
/*
 * Parses an RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS", optional fraction
 * (ignored), then "Z" or "+HH:MM"/"-HH:MM" ('t' and 'z' in lower case too).
 * Years 0001..9999. Anything else is COFFER_ERR_INVALID.
 */
COFFER_MUST_CHECK enum coffer_err format_parse_rfc3339(const char *s, int64_t *out);
/*
 * How long ago `then` was at `now`, in its largest whole unit: "17s ago",
 * "3m ago", "2h ago", "5d ago" (59s, 1m, 59m, 1h, 23h, 1d...), or "in 3m"
 * when then is after now.
 */
COFFER_MUST_CHECK enum coffer_err format_relative(int64_t then, int64_t now, char *out, size_t size);
/*
 * A date cell: `none` when ts is NULL, format_relative of an RFC 3339 ts,
 * or ts itself (cut to fit) when it does not parse. Never fails.
 */
void format_when(const char *ts, int64_t now, const char *none, char *out, size_t size);
/*
 * Percent-encodes one URL path segment or query value: every byte but
 * A-Z a-z 0-9 '-' '_' '~' becomes %XX (so "." and ".." cannot become dot
 * segments). COFFER_ERR_TOO_LARGE if out is too small.
 */
COFFER_MUST_CHECK enum coffer_err format_url_segment(const char *s, char *out, size_t size);

#endif
