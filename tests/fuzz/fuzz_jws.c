/*
 * JWS (jws.h) and boot tokens (boottoken.h) under one fixed key.
 *   mode 0: the input is a token. If it verifies (the seed corpus holds
 *           tokens signed with the fuzz key, which the fuzzer respells), each
 *           of its three parts must be the one base64url spelling of what it
 *           decodes to; a boot token that verifies has claims of the
 *           documented forms.
 *   mode 1: the input is a payload: sign, verify (the payload comes back),
 *           then change one byte of the token: it must no longer verify.
 *   mode 2: the input gives boot-token claims: mint, verify (the same
 *           claims come back), change one byte: refused.
 * COFFER_FUZZ_SEEDS=<dir> writes tokens for the seed corpus and exits.
 */
#include <inttypes.h>
#include <unistd.h>

#include "boottoken.h"
#include "encode.h"
#include "fuzz.h"
#include "jws.h"

#define NOW 1800000000 /* the fuzz clock, in unix seconds */

static struct secret *sk;
static unsigned char pk[JWS_PK_LEN];

/* Each '.'-separated part of token decodes and encodes back to itself. */
static void check_spelling(const char *token, size_t len)
{
	struct buf dec, enc;
	size_t start = 0, parts = 0;
	buf_init(&dec, JWS_TOKEN_MAX);
	buf_init(&enc, JWS_TOKEN_MAX * 2);
	for (size_t i = 0; i <= len; i++) {
		if (i < len && token[i] != '.')
			continue;
		parts++;
		FUZZ_CHECK(b64url_decode(token + start, i - start, &dec) == COFFER_OK);
		FUZZ_CHECK(b64url_encode(dec.ptr, dec.len, &enc) == COFFER_OK);
		FUZZ_CHECK(enc.len == i - start && memcmp(enc.ptr, token + start, enc.len) == 0);
		start = i + 1;
	}
	FUZZ_CHECK(parts == 3);
	buf_release(&dec);
	buf_release(&enc);
}

static void check_raw(const char *token, size_t len)
{
	struct buf payload;
	struct boottoken_claims c;
	buf_init(&payload, JWS_TOKEN_MAX);
	if (jws_verify_sig(pk, token, len, &payload) == COFFER_OK)
		check_spelling(token, len);
	if (boottoken_verify(pk, token, len, NOW, &c) == COFFER_OK) {
		check_spelling(token, len);
		FUZZ_CHECK(boottoken_id_ok(c.app) && boottoken_id_ok(c.machine) && boottoken_id_ok(c.host));
		FUZZ_CHECK(c.release <= INT64_MAX && c.secrets_version <= INT64_MAX);
		FUZZ_CHECK(c.exp > NOW && c.exp - c.iat >= 1 && c.exp - c.iat <= BOOTTOKEN_TTL_MAX);
		FUZZ_CHECK(strlen(c.jti) == BOOTTOKEN_JTI_LEN && strspn(c.jti, "0123456789abcdef") == BOOTTOKEN_JTI_LEN);
	}
	buf_release(&payload);
}

/* token with byte pos set to b; 1 if that changed it. */
static int mutate(struct buf *token, size_t pos, uint8_t b)
{
	pos %= token->len;
	if ((uint8_t)token->ptr[pos] == b)
		return 0;
	token->ptr[pos] = (char)b;
	return 1;
}

static void check_sign(const uint8_t *data, size_t size, size_t pos, uint8_t b)
{
	struct buf token, payload;
	buf_init(&token, JWS_TOKEN_MAX);
	buf_init(&payload, JWS_TOKEN_MAX);
	if (jws_sign(sk, NULL, data, size, &token) == COFFER_OK) {
		FUZZ_CHECK(jws_verify_sig(pk, token.ptr, token.len, &payload) == COFFER_OK);
		FUZZ_CHECK(payload.len == size && (size == 0 || memcmp(payload.ptr, data, size) == 0));
		check_spelling(token.ptr, token.len);
		if (mutate(&token, pos, b))
			FUZZ_CHECK(jws_verify_sig(pk, token.ptr, token.len, &payload) != COFFER_OK);
	} else {
		FUZZ_CHECK(size > JWS_TOKEN_MAX / 2);
	}
	buf_release(&token);
	buf_release(&payload);
}

/* An id of [a-z0-9_] from the input, up to BOOTTOKEN_ID_MAX characters (empty at its end). */
static void take_id(const uint8_t **data, size_t *size, char out[BOOTTOKEN_ID_SIZE])
{
	static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
	size_t n = fuzz_byte(data, size) % (BOOTTOKEN_ID_MAX + 1), i;
	for (i = 0; i < n && *size; i++)
		out[i] = set[fuzz_byte(data, size) % (sizeof(set) - 1)];
	out[i] = '\0';
}

static uint64_t take_u64(const uint8_t **data, size_t *size)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | fuzz_byte(data, size);
	return v;
}

static void check_boot(const uint8_t *data, size_t size, size_t pos, uint8_t b)
{
	struct boottoken_claims in = { 0 }, minted, got;
	struct buf token;
	take_id(&data, &size, in.app);
	take_id(&data, &size, in.machine);
	take_id(&data, &size, in.host);
	in.release = take_u64(&data, &size) >> (fuzz_byte(&data, &size) % 64);
	in.secrets_version = take_u64(&data, &size) >> (fuzz_byte(&data, &size) % 64);
	in.exp = fuzz_byte(&data, &size) & 1 ? 0 : NOW + (int64_t)(take_u64(&data, &size) % (2 * BOOTTOKEN_TTL_MAX));
	buf_init(&token, JWS_TOKEN_MAX);
	enum coffer_err rc = boottoken_mint(sk, &in, NOW, &token, &minted);
	int valid = boottoken_id_ok(in.app) && boottoken_id_ok(in.machine) && boottoken_id_ok(in.host) &&
		    in.release <= INT64_MAX && in.secrets_version <= INT64_MAX &&
		    (in.exp == 0 || (in.exp > NOW && in.exp - NOW <= BOOTTOKEN_TTL_MAX));
	FUZZ_CHECK((rc == COFFER_OK) == valid);
	if (rc == COFFER_OK) {
		FUZZ_CHECK(boottoken_verify(pk, token.ptr, token.len, NOW, &got) == COFFER_OK);
		FUZZ_CHECK(strcmp(got.app, in.app) == 0 && strcmp(got.machine, in.machine) == 0 &&
			   strcmp(got.host, in.host) == 0 && got.release == in.release &&
			   got.secrets_version == in.secrets_version && got.iat == NOW && got.exp == minted.exp &&
			   (in.exp == 0 || got.exp == in.exp) && strcmp(got.jti, minted.jti) == 0);
		check_spelling(token.ptr, token.len);
		if (mutate(&token, pos, b))
			FUZZ_CHECK(boottoken_verify(pk, token.ptr, token.len, NOW, &got) != COFFER_OK);
	}
	buf_release(&token);
}

static void write_seed(const char *dir, const char *name, uint8_t mode, const void *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(&mode, 1, 1, f) != 1 || (len && fwrite(data, 1, len, f) != len) || fclose(f))
		abort();
}

/* Seed tokens signed with the fuzz key, so mode 0 starts from tokens that verify. */
static void write_seeds(const char *dir)
{
	struct buf t;
	struct boottoken_claims c = { .app = "app_1", .machine = "mch_1", .host = "host_1", .release = 3,
				      .secrets_version = 7 };
	buf_init(&t, JWS_TOKEN_MAX);
	if (jws_sign(sk, NULL, "{\"sub\":\"x\",\"exp\":1900000000}", 28, &t) != COFFER_OK)
		abort();
	write_seed(dir, "jws-valid", 0, t.ptr, t.len);
	if (jws_sign(sk, "key_1", "\xff\xfe\xfd\x00?>", 6, &t) != COFFER_OK)
		abort();
	write_seed(dir, "jws-kid-binary", 0, t.ptr, t.len);
	if (boottoken_mint(sk, &c, NOW, &t, NULL) != COFFER_OK)
		abort();
	write_seed(dir, "boot-valid", 0, t.ptr, t.len);
	write_seed(dir, "sign-payload", 1, "{\"a\":1}\x01\x02\x03", 10);
	write_seed(dir, "boot-claims", 2, "\x05" "abcde\x05" "fghij\x03xyz\x00\x00\x00\x00\x00\x00\x00\x05\x00", 21);
	buf_release(&t);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	struct secret *seed = NULL;
	fuzz_sodium_init();
	if (secret_new(JWS_SEED_LEN, &seed))
		abort();
	memset(secret_bytes(seed), 0x42, JWS_SEED_LEN);
	if (jws_key_from_seed(seed, &sk, pk))
		abort();
	secret_free(seed);
	const char *dir = getenv("COFFER_FUZZ_SEEDS");
	if (dir) {
		write_seeds(dir);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 2 * JWS_TOKEN_MAX)
		return 0;
	uint8_t mode = fuzz_byte(&data, &size) % 3;
	if (mode == 0) {
		char *s = fuzz_cstr(data, size);
		check_raw(s, size);
		free(s);
		return 0;
	}
	size_t pos = (size_t)fuzz_byte(&data, &size) << 8;
	pos |= fuzz_byte(&data, &size);
	uint8_t b = fuzz_byte(&data, &size);
	if (mode == 1)
		check_sign(data, size, pos, b);
	else
		check_boot(data, size, pos, b);
	return 0;
}
