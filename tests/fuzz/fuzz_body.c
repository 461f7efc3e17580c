/*
 * Request bodies: json_parse_limited (every route's body, through
 * http_request_json) and the secrets-set body (api_secrets_body, which lets
 * a \u0000 through for the handler to name). Properties: an accepted
 * document is an object or array without NUL in any string or key, without
 * duplicate keys, and prints and parses back to an equal document; the
 * secrets-set body is accepted only as an object of the known fields, and
 * differs from json_parse_limited only where the text holds a \u0000.
 */
#include "api.h"
#include "fuzz.h"
#include "json.h"

#define BODY_MAX ((size_t)64 << 10)

/* 1 if no string or key anywhere in v holds a NUL byte. */
static int nul_free(const json_t *v)
{
	const char *key;
	json_t *item;
	size_t i;
	if (json_is_string(v))
		return memchr(json_string_value(v), '\0', json_string_length(v)) == NULL;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, item)
			if (!nul_free(item))
				return 0;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, item)
			if (!nul_free(item))
				return 0;
	}
	return 1;
}

static void check_limited(const uint8_t *data, size_t size, int *parsed)
{
	struct json_error jerr;
	json_t *doc = NULL;
	*parsed = json_parse_limited((const char *)data, size, BODY_MAX, JSON_MAX_DEPTH_DEFAULT, &doc, &jerr) ==
		  COFFER_OK;
	if (!*parsed) {
		FUZZ_CHECK(doc == NULL);
		FUZZ_CHECK(memchr(jerr.message, '\0', sizeof(jerr.message)) != NULL);
		return;
	}
	FUZZ_CHECK(json_is_object(doc) || json_is_array(doc));
	FUZZ_CHECK(nul_free(doc));
	FUZZ_CHECK(!memchr(data, '\0', size));
	/* it prints and reads back as the same document */
	char *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
	FUZZ_CHECK(text);
	json_t *again = NULL;
	FUZZ_CHECK(json_parse_limited(text, strlen(text), BODY_MAX * 2, JSON_MAX_DEPTH_DEFAULT, &again, &jerr) ==
		   COFFER_OK);
	FUZZ_CHECK(json_equal(doc, again));
	json_decref(again);
	free(text);
	json_decref(doc);
}

static void check_secrets_body(const uint8_t *data, size_t size, int parsed)
{
	char msg[API_BODY_MSG_SIZE];
	json_t *doc = NULL;
	const char *key;
	json_t *v;
	enum coffer_err rc = api_secrets_body((const char *)data, size, BODY_MAX, &doc, msg);
	if (rc) {
		FUZZ_CHECK(doc == NULL);
		FUZZ_CHECK(strncmp(msg, "invalid request body: ", 22) == 0 || rc != COFFER_ERR_INVALID);
		return;
	}
	FUZZ_CHECK(json_is_object(doc));
	/* the fields of a secrets-set body (docs/API.md), none other */
	json_object_foreach(doc, key, v)
		FUZZ_CHECK(strcmp(key, "secrets") == 0 || strcmp(key, "stage") == 0 || strcmp(key, "key_version") == 0 ||
			   strcmp(key, "signer") == 0 || strcmp(key, "manifest") == 0 || strcmp(key, "release") == 0);
	/* beyond json_parse_limited, only a document with a \u0000 in it */
	if (!parsed) {
		FUZZ_CHECK(!nul_free(doc));
		FUZZ_CHECK(!memchr(data, '\0', size));
	}
	json_decref(doc);
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
	int parsed;
	check_limited(data, size, &parsed);
	check_secrets_body(data, size, parsed);
	return 0;
}
