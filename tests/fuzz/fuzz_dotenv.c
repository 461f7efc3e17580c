/*
 * The .env parser of `coffer secrets import` (src/cli/dotenv.c) and the
 * request body it makes. Properties: every parsed name is valid, no value
 * holds a NUL or passes DOTENV_VALUE_MAX; the body the CLI would send is
 * accepted by the api's own check of it (api_secrets_body) and carries
 * exactly the parsed names and values (a string, or standard base64 that
 * decodes strictly to the value).
 */
#include "api.h"
#include "dotenv.h"
#include "encode.h"
#include "fuzz.h"

static void check_body(const struct dotenv *d, int stage)
{
	struct dotenv_error err;
	struct secret *body = NULL;
	char msg[API_BODY_MSG_SIZE];
	json_t *doc = NULL, *secrets, *v;

	FUZZ_CHECK(dotenv_request_body(d, stage, &body, &err) == COFFER_OK);
	FUZZ_CHECK(api_secrets_body((const char *)secret_cbytes(body), secret_len(body), API_BODY_SECRETS, &doc, msg) ==
		   COFFER_OK);
	secrets = json_object_get(doc, "secrets");
	FUZZ_CHECK(json_is_object(secrets) && json_object_size(secrets) == d->n);
	FUZZ_CHECK(json_is_true(json_object_get(doc, "stage")) == !!stage);
	for (size_t i = 0; i < d->n; i++) {
		const struct dotenv_entry *e = &d->entries[i];
		v = json_object_get(secrets, e->name);
		FUZZ_CHECK(v);
		if (!e->value) {
			FUZZ_CHECK(json_is_null(v));
			continue;
		}
		size_t n = secret_len(e->value);
		if (json_is_string(v)) {
			FUZZ_CHECK(json_string_length(v) == n && memcmp(json_string_value(v), secret_cbytes(e->value), n) == 0);
			continue;
		}
		json_t *b = json_object_get(v, "base64");
		FUZZ_CHECK(json_is_object(v) && json_object_size(v) == 1 && json_is_string(b));
		unsigned char *out = malloc(n + 3);
		size_t got = 0;
		FUZZ_CHECK(out);
		FUZZ_CHECK(b64_decode_into(B64_STD, json_string_value(b), json_string_length(b), out, n + 3, &got) ==
			   COFFER_OK);
		FUZZ_CHECK(got == n && memcmp(out, secret_cbytes(e->value), n) == 0);
		free(out);
	}
	json_decref(doc);
	secret_free(body);
}

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
	check_body(&d, size & 1);
	dotenv_release(&d);
	return 0;
}
