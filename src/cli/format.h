/*
 * format.h — text the CLI shows: aligned tables, relative and RFC 3339
 * dates, durations, percent-encoded URL path segments, a release's
 * per-machine progress lines and text from a peer made safe for a terminal.
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
#define FORMAT_DURATION_SIZE 32          /* "213503982334d23h59m59s999ms" fits */
#define FORMAT_STEP_SIZE 160             /* a machine's progress line */
#define FORMAT_STEP_ID_MAX 64            /* bytes of a machine id shown; longer ones are cut */
#define FORMAT_STEP_NAME_MAX 32          /* bytes of an unknown step's name shown */

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

/*
 * A duration in milliseconds in its units, largest first, zero units left
 * out: "0s", "500ms", "2s", "1m30s", "1h", "1d2h", "2s500ms". It reads
 * back with parse_duration_ms.
 */
COFFER_MUST_CHECK enum coffer_err format_duration(uint64_t ms, char *out, size_t size);
/*
 * One machine's progress in a release (step as in docs/RUNPATH.md):
 * "machine ID: replacing", "machine ID: started, watching (Ns left)" (N =
 * grace_left_ms in whole seconds, rounded up, never below 0), "machine ID:
 * passed", "machine ID: rolled back", "machine ID: waiting"; any other step
 * is shown as it is. id and step come from a peer: control characters
 * become '?', and they are cut to FORMAT_STEP_ID_MAX / FORMAT_STEP_NAME_MAX
 * bytes. COFFER_ERR_TOO_LARGE if out is too small (FORMAT_STEP_SIZE is
 * enough for anything).
 */
COFFER_MUST_CHECK enum coffer_err format_machine_step(const char *id, const char *step, int64_t grace_left_ms,
						      char *out, size_t size);
/*
 * The first line of s (up to '\n' or '\r') for a table cell, control
 * characters as '?', cut to fit size with "..." at the end when longer
 * (never inside a UTF-8 sequence). NULL gives none. Never fails (size >= 4).
 */
void format_first_line(const char *s, const char *none, char *out, size_t size);
/*
 * Appends s to out for a terminal: newlines and tabs are kept, every other
 * control character (ESC included) becomes '?'. out is left as it was on
 * failure.
 */
COFFER_MUST_CHECK enum coffer_err format_terminal_text(const char *s, struct buf *out);
/*
 * Appends argv as a shell would read it back, separated by spaces: a word of
 * only A-Z a-z 0-9 and _ - . / : = @ % + , is shown as it is, any other
 * (the empty word too) in single quotes, a quote as '\''; control
 * characters become '?'. out is left as it was on failure.
 */
COFFER_MUST_CHECK enum coffer_err format_argv(const char *const argv[], size_t n, struct buf *out);

#endif
