/*
 * dotenv_json: reads a .env document on standard input and prints what
 * `coffer secrets import` would set, as one JSON object {"NAME": "value"}
 * (the differential test against the npm dotenv package,
 * tests/integration/t0210-dotenv-diff.bats), or {"error": "<message>"}
 * with exit status 1. Each note of a value cut at " #" goes to standard
 * error as "note: line N: NAME". Test-only: it prints values.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "dotenv.h"
#include "json.h"

static void on_note(void *ctx, size_t line, const char *name, size_t len)
{
	(void)ctx;
	fprintf(stderr, "note: line %zu: %.*s\n", line, (int)len, name);
}

int main(void)
{
	struct dotenv d;
	struct dotenv_error err;
	json_t *out = json_object();
	int status = 0;

	if (sodium_init() < 0 || !out)
		return 2;
	dotenv_init(&d);
	d.note = on_note;
	if (dotenv_parse_file(stdin, &d, &err)) {
		json_object_set_new(out, "error", json_string(err.message));
		status = 1;
	} else {
		for (size_t i = 0; i < d.n; i++)
			json_object_set_new(out, d.entries[i].name,
					    json_stringn((const char *)secret_cbytes(d.entries[i].value),
							 secret_len(d.entries[i].value)));
	}
	char *text = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
	if (!text)
		return 2;
	puts(text);
	free(text);
	json_decref(out);
	dotenv_release(&d);
	return status;
}
