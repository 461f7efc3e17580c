/*
 * dotenv.h — secrets on their way from the user to the CLI's sealing
 * (sign.h): the list of NAME=VALUE changes, the .env parser of `coffer
 * secrets import` and bounded reads of standard input. No value leaves
 * the CLI but sealed.
 *
 * A struct dotenv owns its entries; each value is a struct secret (NULL for
 * an unset) and is wiped when the list is released. Names are never secret;
 * values never appear in an error message: parse errors name a line number.
 *
 * The .env rules (`coffer secrets import --help` repeats them with
 * examples; docs/CLI.md lists where they differ from the npm dotenv
 * package's, each on purpose):
 *   - a UTF-8 byte order mark at the start is skipped; lines end in LF or
 *     CRLF; blank lines and lines whose first non-blank character is '#'
 *     are skipped;
 *   - an optional "export " prefix; NAME '=' VALUE, blanks allowed around
 *     '=' (the line is split at its FIRST '=', so a value may hold '=');
 *   - an unquoted value runs to the end of the line or to a '#' after a
 *     blank (" #" starts a comment, which the note callback reports, since
 *     the value may have lost it); a '#' right after another character is
 *     part of the value; trailing blanks are removed;
 *   - '...', "..." and `...` strip the quotes and may run over several
 *     lines (joined with LF); a backslash keeps the quote after it from
 *     closing the value and stays as written, except that in "..." \n and
 *     \r become LF and CR; after the closing quote only blanks or a #
 *     comment may follow;
 *   - """ starts a multi-line value, ended by the first line that ends with
 *     """ (blanks after it allowed); the lines are joined with \n, an empty
 *     rest of the opening line is not part of the value; """x""" on one line
 *     is the value x; no escapes inside """;
 *   - a name given twice: the last value wins.
 * Errors (each naming its line): no '=' in the line, an invalid name, an
 * unterminated quote or """, text after a closing quote, a NUL byte, a line
 * longer than DOTENV_LINE_MAX, a value longer than DOTENV_VALUE_MAX.
 */
#ifndef COFFER_CLI_DOTENV_H
#define COFFER_CLI_DOTENV_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"
#include "secret.h"

#define DOTENV_NAME_MAX 255                      /* bytes of a name (the API's limit) */
#define DOTENV_VALUE_MAX ((size_t)64 << 10)      /* bytes of a value (the API's limit) */
/* Bytes of one physical line, its line ending excluded: the longest value with the longest name fits. */
#define DOTENV_LINE_MAX (DOTENV_VALUE_MAX + DOTENV_NAME_MAX + 64)
#define DOTENV_INPUT_MAX ((size_t)8 << 20)       /* bytes of a whole .env input (the API's body limit) */
#define DOTENV_ENTRIES_MAX 4096                  /* distinct names in one change */
#define DOTENV_ERROR_MAX 128

struct dotenv_entry {
	char name[DOTENV_NAME_MAX + 1];
	struct secret *value; /* NULL: unset the name */
};

/* Told of a line whose unquoted value was cut at " #" (name[0..len) is not NUL-terminated). */
typedef void (*dotenv_note_fn)(void *ctx, size_t line, const char *name, size_t len);

struct dotenv {
	struct dotenv_entry *entries; /* in order of first appearance */
	size_t n;
	size_t cap;
	dotenv_note_fn note; /* NULL (dotenv_init) or set by the caller before dotenv_parse */
	void *note_ctx;
};

struct dotenv_error {
	size_t line;                     /* 1-based; 0 when not about a line */
	char message[DOTENV_ERROR_MAX];  /* "line 3: no '=' in line"; never a value */
};

void dotenv_init(struct dotenv *d);
/* Wipes and frees every value; d may be dotenv_init-ed again. */
void dotenv_release(struct dotenv *d);

/* 1 if name[0..len) matches ^[A-Za-z_][A-Za-z0-9_]*$ and len <= DOTENV_NAME_MAX. */
int dotenv_name_valid(const char *name, size_t len);

/*
 * Sets name to value (NULL: unset), replacing an earlier entry of the same
 * name in place. Takes ownership of value, also on failure.
 * COFFER_ERR_INVALID for an invalid name, COFFER_ERR_TOO_LARGE past
 * DOTENV_ENTRIES_MAX names.
 */
COFFER_MUST_CHECK enum coffer_err dotenv_put(struct dotenv *d, const char *name, size_t len, struct secret *value);
/* The entry of name, or NULL. */
const struct dotenv_entry *dotenv_find(const struct dotenv *d, const char *name);

/*
 * Parses .env text data[0..len) and puts each NAME=VALUE into d. On failure
 * d may hold the entries before the faulty line (release it) and err says
 * which line and why.
 */
COFFER_MUST_CHECK enum coffer_err dotenv_parse(const unsigned char *data, size_t len, struct dotenv *d,
					       struct dotenv_error *err);

/*
 * Reads f to its end into secure memory: at most max bytes (one more is
 * COFFER_ERR_TOO_LARGE). The stream is switched to unbuffered first, so no
 * stdio buffer keeps a copy: call it before any other read of f.
 */
COFFER_MUST_CHECK enum coffer_err dotenv_read(FILE *f, size_t max, struct secret **out);
/* dotenv_read (DOTENV_INPUT_MAX) then dotenv_parse. */
COFFER_MUST_CHECK enum coffer_err dotenv_parse_file(FILE *f, struct dotenv *d, struct dotenv_error *err);

#endif
