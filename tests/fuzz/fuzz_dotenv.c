/*
 * The .env parser of `coffer secrets import` (src/cli/dotenv.c).
 * Properties: every parsed name is valid and given once, no value holds a
 * NUL or passes DOTENV_VALUE_MAX. (The CLI seals the values it parses: no
 * body of plaintext values is made.)
 */
#include "api.h"
#include "dotenv.h"
#include "encode.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_sodium_init();
	json_use_wiping_allocator();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dotenv d;
	struct dotenv_error err;
	if (size > ((size_t)1 << 20))
		return 0;
	dotenv_init(&d);
	enum coffer_err rc = dotenv_parse(data, size, &d, &err);
	if (rc) {
		FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) && err.message[0]);
		dotenv_release(&d);
		return 0;
	}
	FUZZ_CHECK(d.n <= DOTENV_ENTRIES_MAX);
	for (size_t i = 0; i < d.n; i++) {
		const struct dotenv_entry *e = &d.entries[i];
		FUZZ_CHECK(dotenv_name_valid(e->name, strlen(e->name)));
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(d.entries[j].name, e->name) != 0);
		if (e->value)
			FUZZ_CHECK(secret_len(e->value) <= DOTENV_VALUE_MAX && !secret_has_nul(e->value));
	}
	dotenv_release(&d);
	return 0;
}
