/*
 * Host-signed requests (the Coffer-* headers, hostauth.h) and join tokens,
 * under fixed keys (one per host id, below).
 *   mode 0: the input is "host\ntimestamp\nnonce\nsignature\nmethod\npath\nbody".
 *           If it verifies (the seed corpus holds requests signed with the
 *           fuzz key, which the fuzzer respells), signing the same request
 *           again gives the very same headers (one spelling), and the same
 *           request is then refused as a replay.
 *   mode 1: the input gives a request: sign, verify, replay refused; then
 *           one byte of a header, the method, the path or the body changes:
 *           refused.
 *   mode 2: the input is a join token: if it verifies, its base64url is the
 *           one spelling of its bytes.
 *   mode 3: make a join token, verify it, change one byte: refused.
 * COFFER_FUZZ_SEEDS=<dir> writes signed seeds and exits.
 */
#include <inttypes.h>

#include "encode.h"
#include "fuzz.h"
#include "hostauth.h"

#define NOW 1800000000            /* unix seconds */
#define NOW_MS ((int64_t)NOW * 1000) /* join tokens count in ms */
#define HOST "host-1"
#define FIELDS 7

static struct secret *host_sk, *join_key;

/*
 * Each host has a key of its own, as in the api, which looks the key up by
 * Coffer-Host (the host id is not in the signed text): here the seed is a
 * hash of the id, sk (when not NULL) gets the private half.
 */
static void host_key(const char *host, unsigned char pk[HOSTAUTH_PK_LEN], struct secret *sk)
{
	unsigned char seed[crypto_sign_SEEDBYTES], skb[HOSTAUTH_SK_LEN];
	crypto_generichash(seed, sizeof(seed), (const unsigned char *)(host ? host : ""), host ? strlen(host) : 0,
			   NULL, 0);
	crypto_sign_seed_keypair(pk, sk ? secret_bytes(sk) : skb, seed);
	sodium_memzero(skb, sizeof(skb));
}

static enum coffer_err verify(const struct hostauth_request *r, const struct hostauth_presented *p,
			      struct hostauth_replay *cache)
{
	const char *why = NULL;
	unsigned char pk[HOSTAUTH_PK_LEN];
	host_key(p->host, pk, NULL);
	enum coffer_err rc = hostauth_verify(r, p, pk, cache, NOW, &why);
	FUZZ_CHECK(rc == COFFER_OK || why != NULL);
	return rc;
}

static struct hostauth_replay *new_cache(void)
{
	struct hostauth_replay *c = NULL;
	if (hostauth_replay_new(16, &c))
		abort();
	return c;
}

/* Splits s at '\n' into at most FIELDS fields (the last takes the rest); the others are NULL. */
static void split(char *s, size_t len, char *f[FIELDS], size_t *last_len)
{
	size_t i = 0;
	char *p = s, *end = s + len;
	memset(f, 0, sizeof(char *) * FIELDS);
	f[i] = p;
	while (i + 1 < FIELDS) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
		f[++i] = p;
	}
	*last_len = i == FIELDS - 1 ? (size_t)(end - f[i]) : 0;
}

static void check_raw(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), *f[FIELDS];
	size_t body_len;
	split(s, size, f, &body_len);
	struct hostauth_presented p = { f[0], f[1], f[2], f[3] };
	struct hostauth_request r = { f[4], f[5], f[6], body_len };
	struct hostauth_replay *cache = new_cache();
	if (verify(&r, &p, cache) == COFFER_OK) {
		struct hostauth_headers h;
		int64_t ts = 0;
		FUZZ_CHECK(sscanf(p.timestamp, "%" SCNd64, &ts) == 1);
		unsigned char pk[HOSTAUTH_PK_LEN];
		host_key(p.host, pk, host_sk);
		FUZZ_CHECK(hostauth_sign_headers_with(host_sk, p.host, &r, ts, p.nonce, &h) == COFFER_OK);
		FUZZ_CHECK(strcmp(h.host, p.host) == 0 && strcmp(h.timestamp, p.timestamp) == 0 &&
			   strcmp(h.nonce, p.nonce) == 0 && strcmp(h.signature, p.signature) == 0);
		FUZZ_CHECK(verify(&r, &p, cache) != COFFER_OK); /* replayed */
	}
	hostauth_replay_free(cache);
	free(s);
}

static void check_signed(const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "POST", "PUT", "DELETE" };
	char nonce[HOSTAUTH_NONCE_HEX_LEN + 1], path[HOSTAUTH_PATH_MAX + 1], method[8];
	unsigned char nb[HOSTAUTH_NONCE_BYTES];
	struct hostauth_headers h;
	uint8_t what = fuzz_byte(&data, &size), b = fuzz_byte(&data, &size);
	size_t pos = (size_t)fuzz_byte(&data, &size) << 8;
	pos |= fuzz_byte(&data, &size);
	snprintf(method, sizeof(method), "%s", methods[fuzz_byte(&data, &size) % 4]);
	for (size_t i = 0; i < sizeof(nb); i++)
		nb[i] = fuzz_byte(&data, &size);
	if (hex_encode(nb, sizeof(nb), nonce, sizeof(nonce)))
		abort();
	/* the path: '/' and printable ASCII from the input, up to the first byte that is not */
	size_t n = 1;
	path[0] = '/';
	while (size && n < 200 && data[0] >= 0x21 && data[0] <= 0x7e)
		path[n++] = (char)fuzz_byte(&data, &size);
	path[n] = '\0';
	fuzz_take(&data, &size, 1);
	unsigned char *body = size ? malloc(size) : NULL;
	if (size)
		memcpy(body, data, size);
	int64_t ts = NOW - HOSTAUTH_WINDOW_S + (int64_t)(b % (2 * HOSTAUTH_WINDOW_S + 1));
	struct hostauth_request r = { method, path, body, size };
	unsigned char pk[HOSTAUTH_PK_LEN];
	host_key(HOST, pk, host_sk);
	FUZZ_CHECK(hostauth_sign_headers_with(host_sk, HOST, &r, ts, nonce, &h) == COFFER_OK);
	struct hostauth_presented p = { h.host, h.timestamp, h.nonce, h.signature };
	struct hostauth_replay *cache = new_cache();
	FUZZ_CHECK(verify(&r, &p, cache) == COFFER_OK);
	FUZZ_CHECK(verify(&r, &p, cache) != COFFER_OK);
	hostauth_replay_free(cache);

	/* one byte of one part changed: refused */
	char *target;
	size_t len;
	switch (what % 7) {
	case 0: target = h.host, len = strlen(h.host); break;
	case 1: target = h.timestamp, len = strlen(h.timestamp); break;
	case 2: target = h.nonce, len = strlen(h.nonce); break;
	case 3: target = h.signature, len = strlen(h.signature); break;
	case 4: target = method, len = strlen(method); break;
	case 5: target = path, len = strlen(path); break;
	default: target = (char *)body, len = size; break;
	}
	uint8_t to = (uint8_t)(what >> 3 | (b & 0x80)) ^ (uint8_t)pos;
	if (len && to && (uint8_t)target[pos % len] != to) {
		target[pos % len] = (char)to;
		cache = new_cache();
		FUZZ_CHECK(verify(&r, &p, cache) != COFFER_OK);
		hostauth_replay_free(cache);
	}
	free(body);
}

static void check_join_raw(const uint8_t *data, size_t size)
{
	char id[HOSTAUTH_JOIN_ID_HEX_SIZE];
	int64_t expires = 0;
	char *s = fuzz_cstr(data, size);
	if (hostauth_join_token_verify(join_key, s, size, NOW_MS, id, &expires) == COFFER_OK) {
		struct buf dec, enc;
		buf_init(&dec, 256);
		buf_init(&enc, 256);
		FUZZ_CHECK(size == HOSTAUTH_JOIN_TOKEN_LEN && expires > NOW_MS);
		FUZZ_CHECK(b64url_decode(s + HOSTAUTH_JOIN_PREFIX_LEN, HOSTAUTH_JOIN_B64_LEN, &dec) == COFFER_OK);
		FUZZ_CHECK(b64url_encode(dec.ptr, dec.len, &enc) == COFFER_OK);
		FUZZ_CHECK(strcmp(enc.ptr, s + HOSTAUTH_JOIN_PREFIX_LEN) == 0);
		buf_release(&dec);
		buf_release(&enc);
	}
	free(s);
}

static void check_join_made(const uint8_t *data, size_t size)
{
	struct secret *t = NULL;
	char id[HOSTAUTH_JOIN_ID_HEX_SIZE];
	int64_t expires = 0;
	size_t pos = fuzz_byte(&data, &size);
	uint8_t b = fuzz_byte(&data, &size);
	FUZZ_CHECK(hostauth_join_token_make(join_key, NOW_MS + 1 + fuzz_byte(&data, &size), &t) == COFFER_OK);
	char *s = fuzz_cstr(secret_cbytes(t), secret_len(t));
	FUZZ_CHECK(hostauth_join_token_verify(join_key, s, strlen(s), NOW_MS, id, &expires) == COFFER_OK);
	pos %= strlen(s);
	if ((uint8_t)s[pos] != b && b) {
		s[pos] = (char)b;
		FUZZ_CHECK(hostauth_join_token_verify(join_key, s, strlen(s), NOW_MS, id, &expires) != COFFER_OK);
	}
	free(s);
	secret_free(t);
}

static void write_seed(const char *dir, const char *name, uint8_t mode, const void *data, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(&mode, 1, 1, f) != 1 || (len && fwrite(data, 1, len, f) != len) || fclose(f))
		abort();
}

static void write_seeds(const char *dir)
{
	struct hostauth_headers h;
	struct hostauth_request r = { "POST", "/v1/agent/machines/m_1/open?x=1", "{\"a\":1}", 7 };
	struct secret *t = NULL;
	char text[8192];
	unsigned char pk[HOSTAUTH_PK_LEN];
	host_key(HOST, pk, host_sk);
	if (hostauth_sign_headers_with(host_sk, HOST, &r, NOW, "00112233445566778899aabbccddeeff", &h))
		abort();
	int n = snprintf(text, sizeof(text), "%s\n%s\n%s\n%s\n%s\n%s\n%s", h.host, h.timestamp, h.nonce, h.signature,
			 r.method, r.path, (const char *)r.body);
	write_seed(dir, "signed-post", 0, text, (size_t)n);
	r = (struct hostauth_request){ "GET", "/v1/agent/wait", NULL, 0 };
	if (hostauth_sign_headers_with(host_sk, HOST, &r, NOW - 30, "ffeeddccbbaa99887766554433221100", &h))
		abort();
	n = snprintf(text, sizeof(text), "%s\n%s\n%s\n%s\n%s\n%s\n", h.host, h.timestamp, h.nonce, h.signature,
		     r.method, r.path);
	write_seed(dir, "signed-get", 0, text, (size_t)n);
	write_seed(dir, "sign-mutate", 1, "\x03\x10\x00\x05\x01" "0123456789abcdef" "v1/x?y=z\n{}", 31);
	if (hostauth_join_token_make(join_key, NOW_MS + 60000, &t))
		abort();
	write_seed(dir, "join-valid", 2, secret_cbytes(t), secret_len(t));
	write_seed(dir, "join-mutate", 3, "\x10\x41\x05", 3);
	secret_free(t);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_sodium_init();
	if (secret_new(HOSTAUTH_SK_LEN, &host_sk) || secret_new(HOSTAUTH_KEY_LEN, &join_key))
		abort();
	memset(secret_bytes(join_key), 0x33, HOSTAUTH_KEY_LEN);
	const char *dir = getenv("COFFER_FUZZ_SEEDS");
	if (dir) {
		write_seeds(dir);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16384)
		return 0;
	switch (fuzz_byte(&data, &size) % 4) {
	case 0: check_raw(data, size); break;
	case 1: check_signed(data, size); break;
	case 2: check_join_raw(data, size); break;
	default: check_join_made(data, size); break;
	}
	return 0;
}
