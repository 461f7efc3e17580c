/* hostauth: join tokens (single keeper, unexpired, untampered), the
 * registry MAC and the host cert (every field bound), the enrolment
 * proof, and signed requests (every signed part bound, stale and replayed
 * requests refused, a full replay cache refusing rather than forgetting). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "encode.h"
#include "hostauth.h"
#include "jws.h"

#define NOW_MS 1800000000000LL
#define NOW_S 1800000000LL
#define HOUR_MS 3600000LL
#define THREADS 8
#define THREAD_REQUESTS 64

static struct secret *make_master(unsigned char fill)
{
	struct secret *m = NULL;
	assert_int_equal(secret_new(32, &m), COFFER_OK);
	memset(secret_bytes(m), fill, 32);
	return m;
}

static struct secret *join_key_of(unsigned char fill)
{
	struct secret *m = make_master(fill), *k = NULL;
	assert_int_equal(hostauth_join_key(m, &k), COFFER_OK);
	secret_free(m);
	return k;
}

static struct secret *registry_key_of(unsigned char fill)
{
	struct secret *m = make_master(fill), *k = NULL;
	assert_int_equal(hostauth_registry_key(m, &k), COFFER_OK);
	secret_free(m);
	return k;
}

/* ---- join tokens ---- */

static struct secret *make_token(const struct secret *key, int64_t expires_at)
{
	struct secret *t = NULL;
	assert_int_equal(hostauth_join_token_make(key, expires_at, &t), COFFER_OK);
	assert_int_equal(secret_len(t), HOSTAUTH_JOIN_TOKEN_LEN);
	return t;
}

static enum coffer_err verify_token(const struct secret *key, const struct secret *t, int64_t now, char *id,
				    int64_t *exp)
{
	return hostauth_join_token_verify(key, (const char *)secret_cbytes(t), secret_len(t), now, id, exp);
}

static void test_join_token_roundtrip(void **state)
{
	(void)state;
	struct secret *key = join_key_of(1), *t1 = make_token(key, NOW_MS + HOUR_MS), *t2 = make_token(key, NOW_MS + HOUR_MS);
	char id1[HOSTAUTH_JOIN_ID_HEX_SIZE] = "", id2[HOSTAUTH_JOIN_ID_HEX_SIZE] = "";
	int64_t exp = 0;

	assert_memory_equal(secret_cbytes(t1), "cjt_", 4);
	assert_int_equal(verify_token(key, t1, NOW_MS, id1, &exp), COFFER_OK);
	assert_int_equal(exp, NOW_MS + HOUR_MS);
	assert_int_equal(strlen(id1), 32);
	assert_int_equal(strspn(id1, "0123456789abcdef"), 32);
	assert_int_equal(verify_token(key, t2, NOW_MS + HOUR_MS - 1, id2, NULL), COFFER_OK);
	assert_string_not_equal(id1, id2); /* each token its own id */
	/* the id is the first 16 raw bytes */
	unsigned char raw[HOSTAUTH_JOIN_RAW_LEN];
	size_t raw_len = 0;
	assert_int_equal(sodium_base642bin(raw, sizeof(raw), (const char *)secret_cbytes(t1) + 4, HOSTAUTH_JOIN_B64_LEN,
					   NULL, &raw_len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
			 0);
	char hex[33];
	sodium_bin2hex(hex, sizeof(hex), raw, 16);
	assert_string_equal(hex, id1);
	secret_free(t1);
	secret_free(t2);
	secret_free(key);
}

static void test_join_token_expired(void **state)
{
	(void)state;
	struct secret *key = join_key_of(1), *t = make_token(key, NOW_MS);
	char id[HOSTAUTH_JOIN_ID_HEX_SIZE] = "unchanged";
	assert_int_equal(verify_token(key, t, NOW_MS - 1, id, NULL), COFFER_OK);
	snprintf(id, sizeof(id), "%s", "unchanged");
	assert_int_equal(verify_token(key, t, NOW_MS, id, NULL), COFFER_ERR_UNAUTH);
	assert_int_equal(verify_token(key, t, NOW_MS + HOUR_MS, id, NULL), COFFER_ERR_UNAUTH);
	assert_string_equal(id, "unchanged");
	secret_free(t);
	secret_free(key);
}

/* Re-encodes raw (56 bytes) as a token. */
static struct secret *encode_token(const unsigned char *raw)
{
	struct secret *t = NULL;
	assert_int_equal(secret_new(HOSTAUTH_JOIN_TOKEN_LEN, &t), COFFER_OK);
	memcpy(secret_bytes(t), "cjt_", 4);
	sodium_bin2base64((char *)secret_bytes(t) + 4, HOSTAUTH_JOIN_B64_LEN + 1, raw, HOSTAUTH_JOIN_RAW_LEN,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return t;
}

static void test_join_token_tampered(void **state)
{
	(void)state;
	struct secret *key = join_key_of(1), *t = make_token(key, NOW_MS + HOUR_MS), *forged;
	unsigned char raw[HOSTAUTH_JOIN_RAW_LEN];
	size_t raw_len = 0;
	char id[HOSTAUTH_JOIN_ID_HEX_SIZE];

	assert_int_equal(sodium_base642bin(raw, sizeof(raw), (const char *)secret_cbytes(t) + 4, HOSTAUTH_JOIN_B64_LEN,
					   NULL, &raw_len, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
			 0);
	/* one bit in the id, in the expiry (a later one), in the MAC: each refused */
	const size_t at[] = { 0, 15, 16, 23, 24, 55 };
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		raw[at[i]] ^= 0x01;
		forged = encode_token(raw);
		assert_int_equal(verify_token(key, forged, NOW_MS, id, NULL), COFFER_ERR_CRYPTO);
		secret_free(forged);
		raw[at[i]] ^= 0x01;
	}
	forged = encode_token(raw);
	assert_int_equal(verify_token(key, forged, NOW_MS, id, NULL), COFFER_OK); /* the control */
	secret_free(forged);
	/* malformed: prefix, length, alphabet, padding */
	char text[HOSTAUTH_JOIN_TOKEN_LEN + 2];
	memcpy(text, secret_cbytes(t), HOSTAUTH_JOIN_TOKEN_LEN);
	text[0] = 'x';
	assert_int_equal(hostauth_join_token_verify(key, text, HOSTAUTH_JOIN_TOKEN_LEN, NOW_MS, id, NULL),
			 COFFER_ERR_INVALID);
	memcpy(text, secret_cbytes(t), HOSTAUTH_JOIN_TOKEN_LEN);
	assert_int_equal(hostauth_join_token_verify(key, text, HOSTAUTH_JOIN_TOKEN_LEN - 1, NOW_MS, id, NULL),
			 COFFER_ERR_INVALID);
	text[10] = '+';
	assert_int_equal(hostauth_join_token_verify(key, text, HOSTAUTH_JOIN_TOKEN_LEN, NOW_MS, id, NULL),
			 COFFER_ERR_INVALID);
	memcpy(text, secret_cbytes(t), HOSTAUTH_JOIN_TOKEN_LEN);
	text[HOSTAUTH_JOIN_TOKEN_LEN] = '=';
	assert_int_equal(hostauth_join_token_verify(key, text, HOSTAUTH_JOIN_TOKEN_LEN + 1, NOW_MS, id, NULL),
			 COFFER_ERR_INVALID);
	sodium_memzero(raw, sizeof(raw));
	secret_free(t);
	secret_free(key);
}

static void test_join_token_wrong_master(void **state)
{
	(void)state;
	struct secret *key = join_key_of(1), *other = join_key_of(2), *reg = registry_key_of(1);
	struct secret *t = make_token(key, NOW_MS + HOUR_MS);
	char id[HOSTAUTH_JOIN_ID_HEX_SIZE];
	assert_int_equal(verify_token(other, t, NOW_MS, id, NULL), COFFER_ERR_CRYPTO);
	/* the registry subkey of the same master is another key */
	assert_int_equal(verify_token(reg, t, NOW_MS, id, NULL), COFFER_ERR_CRYPTO);
	assert_int_equal(verify_token(key, t, NOW_MS, id, NULL), COFFER_OK);
	secret_free(t);
	secret_free(reg);
	secret_free(other);
	secret_free(key);
}

/* ---- registry MAC and cert ---- */

struct host_fixture {
	char id[32];
	char name[32];
	unsigned char sign_pk[32];
	unsigned char seal_pk[32];
	struct hostauth_identity h;
};

static void host_init(struct host_fixture *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->id, sizeof(f->id), "%s", "0123456789abcdef01234567");
	snprintf(f->name, sizeof(f->name), "%s", "web-1");
	memset(f->sign_pk, 0x11, sizeof(f->sign_pk));
	memset(f->seal_pk, 0x22, sizeof(f->seal_pk));
	f->h = (struct hostauth_identity){ f->id, f->name, f->sign_pk, f->seal_pk };
}

/* Changes field k (0 id, 1 name, 2 sign_pk, 3 seal_pk) of f by one byte, or back. */
static void flip_field(struct host_fixture *f, int k)
{
	switch (k) {
	case 0: f->id[5] ^= 0x01; break;
	case 1: f->name[4] ^= 0x01; break;
	case 2: f->sign_pk[31] ^= 0x01; break;
	case 3: f->seal_pk[0] ^= 0x01; break;
	}
}

static void test_registry_mac_binds_each_field(void **state)
{
	(void)state;
	struct secret *key = registry_key_of(1), *other = registry_key_of(2);
	struct host_fixture f;
	unsigned char mac[HOSTAUTH_MAC_LEN], m2[HOSTAUTH_MAC_LEN];
	host_init(&f);
	assert_int_equal(hostauth_registry_mac(key, &f.h, "ready", mac), COFFER_OK);
	assert_int_equal(hostauth_registry_verify(key, &f.h, "ready", mac), COFFER_OK);
	for (int k = 0; k < 4; k++) {
		flip_field(&f, k);
		assert_int_equal(hostauth_registry_mac(key, &f.h, "ready", m2), COFFER_OK);
		assert_memory_not_equal(mac, m2, sizeof(mac));
		assert_int_equal(hostauth_registry_verify(key, &f.h, "ready", mac), COFFER_ERR_CRYPTO);
		flip_field(&f, k);
	}
	assert_int_equal(hostauth_registry_verify(key, &f.h, "revoked", mac), COFFER_ERR_CRYPTO);
	assert_int_equal(hostauth_registry_verify(other, &f.h, "ready", mac), COFFER_ERR_CRYPTO);
	/* length prefixes: moving a byte from the id to the name changes the MAC */
	snprintf(f.id, sizeof(f.id), "%s", "abc");
	snprintf(f.name, sizeof(f.name), "%s", "de");
	assert_int_equal(hostauth_registry_mac(key, &f.h, "ready", mac), COFFER_OK);
	snprintf(f.id, sizeof(f.id), "%s", "ab");
	snprintf(f.name, sizeof(f.name), "%s", "cde");
	assert_int_equal(hostauth_registry_verify(key, &f.h, "ready", mac), COFFER_ERR_CRYPTO);
	assert_int_equal(hostauth_registry_mac(key, &f.h, "", m2), COFFER_ERR_INVALID);
	f.name[0] = '\0';
	assert_int_equal(hostauth_registry_mac(key, &f.h, "ready", m2), COFFER_ERR_INVALID);
	secret_free(other);
	secret_free(key);
}

static void test_cert(void **state)
{
	(void)state;
	struct secret *sk = NULL, *other_sk = NULL;
	unsigned char pk[32], other_pk[32], cert[HOSTAUTH_CERT_LEN];
	struct host_fixture f;
	int64_t at = 0;

	assert_int_equal(jws_generate_key(&sk, pk), COFFER_OK);
	assert_int_equal(jws_generate_key(&other_sk, other_pk), COFFER_OK);
	host_init(&f);
	assert_int_equal(hostauth_cert_sign(sk, &f.h, NOW_S, cert), COFFER_OK);
	assert_int_equal(hostauth_cert_verify(pk, &f.h, cert, sizeof(cert), &at), COFFER_OK);
	assert_int_equal(at, NOW_S);
	for (int k = 0; k < 4; k++) {
		flip_field(&f, k);
		assert_int_equal(hostauth_cert_verify(pk, &f.h, cert, sizeof(cert), NULL), COFFER_ERR_CRYPTO);
		flip_field(&f, k);
	}
	assert_int_equal(hostauth_cert_verify(other_pk, &f.h, cert, sizeof(cert), NULL), COFFER_ERR_CRYPTO);
	/* the issue time is signed too */
	cert[7] ^= 0x01;
	assert_int_equal(hostauth_cert_verify(pk, &f.h, cert, sizeof(cert), NULL), COFFER_ERR_CRYPTO);
	cert[7] ^= 0x01;
	assert_int_equal(hostauth_cert_verify(pk, &f.h, cert, sizeof(cert) - 1, NULL), COFFER_ERR_INVALID);
	/* another keeper's cert over the same host does not verify with this keeper's key */
	unsigned char forged[HOSTAUTH_CERT_LEN];
	assert_int_equal(hostauth_cert_sign(other_sk, &f.h, NOW_S, forged), COFFER_OK);
	assert_int_equal(hostauth_cert_verify(pk, &f.h, forged, sizeof(forged), NULL), COFFER_ERR_CRYPTO);
	assert_int_equal(hostauth_cert_verify(pk, &f.h, cert, sizeof(cert), NULL), COFFER_OK);
	secret_free(other_sk);
	secret_free(sk);
}

static void test_enrol_proof(void **state)
{
	(void)state;
	struct secret *sk = NULL, *other = NULL;
	unsigned char pk[32], other_pk[32], proof[HOSTAUTH_SIG_LEN];
	const char *token = "cjt_example", *token2 = "cjt_exampld";
	assert_int_equal(jws_generate_key(&sk, pk), COFFER_OK);
	assert_int_equal(jws_generate_key(&other, other_pk), COFFER_OK);
	assert_int_equal(hostauth_enrol_proof_sign(sk, token, strlen(token), "web-1", proof), COFFER_OK);
	assert_int_equal(hostauth_enrol_proof_verify(pk, token, strlen(token), "web-1", proof), COFFER_OK);
	assert_int_equal(hostauth_enrol_proof_verify(pk, token2, strlen(token2), "web-1", proof), COFFER_ERR_CRYPTO);
	assert_int_equal(hostauth_enrol_proof_verify(pk, token, strlen(token), "web-2", proof), COFFER_ERR_CRYPTO);
	assert_int_equal(hostauth_enrol_proof_verify(other_pk, token, strlen(token), "web-1", proof), COFFER_ERR_CRYPTO);
	/* a token cut short is another message */
	assert_int_equal(hostauth_enrol_proof_verify(pk, token, strlen(token) - 1, "web-1", proof), COFFER_ERR_CRYPTO);
	secret_free(other);
	secret_free(sk);
}

/* The rotation proof binds the host id and each key, and needs the signer's key. */
static void test_rekey_proof(void **state)
{
	(void)state;
	struct secret *old_sk = NULL, *new_sk = NULL;
	unsigned char old_pk[32], new_pk[32], seal_pk[32], other[32], sig[HOSTAUTH_SIG_LEN];
	assert_int_equal(jws_generate_key(&old_sk, old_pk), COFFER_OK);
	assert_int_equal(jws_generate_key(&new_sk, new_pk), COFFER_OK);
	memset(seal_pk, 7, sizeof(seal_pk));
	struct hostauth_rekey r = { "h0123", old_pk, new_pk, seal_pk };
	assert_int_equal(hostauth_rekey_sign(old_sk, &r, sig), COFFER_OK);
	assert_int_equal(hostauth_rekey_verify(old_pk, &r, sig), COFFER_OK);
	assert_int_equal(hostauth_rekey_verify(new_pk, &r, sig), COFFER_ERR_CRYPTO);
	/* the same keys, the same message: a retry's signature verifies as the first */
	unsigned char again[HOSTAUTH_SIG_LEN];
	assert_int_equal(hostauth_rekey_sign(old_sk, &r, again), COFFER_OK);
	assert_memory_equal(sig, again, sizeof(sig));
	struct hostauth_rekey other_host = { "h0124", old_pk, new_pk, seal_pk };
	assert_int_equal(hostauth_rekey_verify(old_pk, &other_host, sig), COFFER_ERR_CRYPTO);
	memcpy(other, seal_pk, sizeof(other));
	other[31] ^= 1;
	struct hostauth_rekey other_seal = { "h0123", old_pk, new_pk, other };
	assert_int_equal(hostauth_rekey_verify(old_pk, &other_seal, sig), COFFER_ERR_CRYPTO);
	struct hostauth_rekey swapped = { "h0123", new_pk, old_pk, seal_pk };
	assert_int_equal(hostauth_rekey_verify(old_pk, &swapped, sig), COFFER_ERR_CRYPTO);
	struct hostauth_rekey bad_id = { "H!", old_pk, new_pk, seal_pk };
	assert_int_equal(hostauth_rekey_sign(old_sk, &bad_id, sig), COFFER_ERR_INVALID);
	secret_free(new_sk);
	secret_free(old_sk);
}

/* ---- signed requests ---- */

struct req_fixture {
	struct secret *sk;
	unsigned char pk[32];
	struct hostauth_replay *cache;
	char method[16];
	char path[64];
	char body[64];
	struct hostauth_request r;
	struct hostauth_headers h;
	struct hostauth_presented p;
};

static int req_setup(void **state)
{
	struct req_fixture *f = calloc(1, sizeof(*f));
	if (!f || jws_generate_key(&f->sk, f->pk) || hostauth_replay_new(0, &f->cache))
		return -1;
	snprintf(f->method, sizeof(f->method), "%s", "POST");
	snprintf(f->path, sizeof(f->path), "%s", "/v1/hosts/heartbeat?x=1");
	snprintf(f->body, sizeof(f->body), "%s", "{\"machines\":[]}");
	f->r = (struct hostauth_request){ f->method, f->path, f->body, strlen(f->body) };
	if (hostauth_sign_headers(f->sk, "0123456789abcdef01234567", &f->r, NOW_S, &f->h))
		return -1;
	f->p = (struct hostauth_presented){ f->h.host, f->h.timestamp, f->h.nonce, f->h.signature };
	*state = f;
	return 0;
}

static int req_teardown(void **state)
{
	struct req_fixture *f = *state;
	hostauth_replay_free(f->cache);
	secret_free(f->sk);
	free(f);
	return 0;
}

static enum coffer_err verify_at(struct req_fixture *f, int64_t now, const char **why)
{
	return hostauth_verify(&f->r, &f->p, f->pk, f->cache, now, why);
}

static void test_request_roundtrip(void **state)
{
	struct req_fixture *f = *state;
	const char *why = "unset";
	assert_string_equal(f->h.host, "0123456789abcdef01234567");
	assert_string_equal(f->h.timestamp, "1800000000");
	assert_int_equal(strlen(f->h.nonce), HOSTAUTH_NONCE_HEX_LEN);
	assert_int_equal(strlen(f->h.signature), HOSTAUTH_SIGNATURE_B64_LEN);
	assert_int_equal(verify_at(f, NOW_S, &why), COFFER_OK);
	assert_null(why);
	assert_int_equal(hostauth_replay_count(f->cache), 1);
	/* two signatures of the same request differ in their nonce */
	struct hostauth_headers h2;
	assert_int_equal(hostauth_sign_headers(f->sk, f->h.host, &f->r, NOW_S, &h2), COFFER_OK);
	assert_string_not_equal(h2.nonce, f->h.nonce);
}

static void expect_refused(struct req_fixture *f, const char *want)
{
	const char *why = NULL;
	assert_int_equal(verify_at(f, NOW_S, &why), COFFER_ERR_UNAUTH);
	assert_non_null(why);
	assert_string_equal(why, want);
}

static void test_request_tampered(void **state)
{
	struct req_fixture *f = *state;
	const char *bad = "request signature does not verify";
	char saved[HOSTAUTH_SIGNATURE_B64_LEN + 1];

	f->method[1] ^= 0x01; /* POST -> PNST */
	expect_refused(f, bad);
	f->method[1] ^= 0x01;
	f->path[5] ^= 0x01;
	expect_refused(f, bad);
	f->path[5] ^= 0x01;
	f->path[strlen(f->path) - 1] = '2'; /* the query is signed */
	expect_refused(f, bad);
	f->path[strlen(f->path) - 1] = '1';
	f->body[3] ^= 0x01;
	expect_refused(f, bad);
	f->body[3] ^= 0x01;
	f->r.body_len--;
	expect_refused(f, bad);
	f->r.body_len++;
	f->h.timestamp[9] = '1'; /* one second later: inside the window, but not what was signed */
	expect_refused(f, bad);
	f->h.timestamp[9] = '0';
	char nonce0 = f->h.nonce[0];
	f->h.nonce[0] = nonce0 == 'a' ? 'b' : 'a';
	expect_refused(f, bad);
	f->h.nonce[0] = nonce0;
	memcpy(saved, f->h.signature, sizeof(saved));
	f->h.signature[10] = f->h.signature[10] == 'A' ? 'B' : 'A';
	expect_refused(f, bad);
	memcpy(f->h.signature, saved, sizeof(saved));
	/* another key */
	unsigned char other[32];
	memcpy(other, f->pk, sizeof(other));
	f->pk[0] ^= 0x01;
	expect_refused(f, bad);
	memcpy(f->pk, other, sizeof(other));
	/* nothing refused entered the cache; the untouched request passes */
	assert_int_equal(hostauth_replay_count(f->cache), 0);
	const char *why;
	assert_int_equal(verify_at(f, NOW_S, &why), COFFER_OK);
}

/* A '_' of the signature spelled as a byte 0x80-0xFF (libsodium 1.0.18 read those as '_'). */
static void test_request_signature_respelled(void **state)
{
	struct req_fixture *f = *state;
	char *u;
	for (int i = 0; i < 64 && !(u = strchr(f->h.signature, '_')); i++)
		assert_int_equal(hostauth_sign_headers(f->sk, f->h.host, &f->r, NOW_S, &f->h), COFFER_OK);
	assert_non_null(u); /* 64 signatures without a '_': about 1 in 10^37 */
	*u = (char)0xff;
	expect_refused(f, "missing or malformed host signature headers");
	*u = (char)0x80;
	expect_refused(f, "missing or malformed host signature headers");
	*u = '_';
	const char *why;
	assert_int_equal(verify_at(f, NOW_S, &why), COFFER_OK);
}

static void test_request_malformed(void **state)
{
	struct req_fixture *f = *state;
	const char *bad = "missing or malformed host signature headers";
	const char *saved;

	saved = f->p.nonce;
	f->p.nonce = NULL;
	expect_refused(f, bad);
	f->p.nonce = "0123456789ABCDEF0123456789abcdef"; /* upper case */
	expect_refused(f, bad);
	f->p.nonce = saved;
	saved = f->p.timestamp;
	f->p.timestamp = "+1800000000";
	expect_refused(f, bad);
	f->p.timestamp = saved;
	saved = f->p.signature;
	f->p.signature = "AAAA";
	expect_refused(f, bad);
	f->p.signature = saved;
	saved = f->p.host;
	f->p.host = "Host-With-Caps";
	expect_refused(f, bad);
	f->p.host = saved;
	f->r.method = "post";
	expect_refused(f, bad);
	f->r.method = f->method;
	assert_int_equal(hostauth_replay_count(f->cache), 0);
}

static void test_request_replayed(void **state)
{
	struct req_fixture *f = *state;
	const char *why;
	assert_int_equal(verify_at(f, NOW_S, &why), COFFER_OK);
	assert_int_equal(verify_at(f, NOW_S + 1, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "request replayed");
	assert_int_equal(verify_at(f, NOW_S + HOSTAUTH_WINDOW_S, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "request replayed");
	/* past the window it is stale instead: either way refused */
	assert_int_equal(verify_at(f, NOW_S + HOSTAUTH_WINDOW_S + 1, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "request timestamp outside the allowed window");
	/* the same nonce under another host id (the same key) is a replay too */
	f->p.host = "another-host";
	assert_int_equal(verify_at(f, NOW_S, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, "request replayed");
}

static void test_request_stale(void **state)
{
	struct req_fixture *f = *state;
	const char *why;
	const char *stale = "request timestamp outside the allowed window";
	assert_int_equal(verify_at(f, NOW_S + HOSTAUTH_WINDOW_S + 1, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, stale);
	assert_int_equal(verify_at(f, NOW_S - HOSTAUTH_WINDOW_S - 1, &why), COFFER_ERR_UNAUTH);
	assert_string_equal(why, stale);
	assert_int_equal(hostauth_replay_count(f->cache), 0);
	/* the edge of the window is inside it */
	assert_int_equal(verify_at(f, NOW_S + HOSTAUTH_WINDOW_S, &why), COFFER_OK);
}

static void sign_new(struct req_fixture *f, int64_t ts)
{
	assert_int_equal(hostauth_sign_headers(f->sk, "0123456789abcdef01234567", &f->r, ts, &f->h), COFFER_OK);
}

static void test_cache_full_refuses(void **state)
{
	struct req_fixture *f = *state;
	const char *why;
	hostauth_replay_free(f->cache);
	assert_int_equal(hostauth_replay_new(3, &f->cache), COFFER_OK);
	for (int i = 0; i < 3; i++) {
		sign_new(f, NOW_S);
		assert_int_equal(verify_at(f, NOW_S, &why), COFFER_OK);
	}
	assert_int_equal(hostauth_replay_count(f->cache), 3);
	sign_new(f, NOW_S + 10);
	assert_int_equal(verify_at(f, NOW_S + 10, &why), COFFER_ERR_UNAVAILABLE);
	assert_string_equal(why, "replay cache full");
	/* refused, not forgotten: the first three are still replays */
	assert_int_equal(hostauth_replay_count(f->cache), 3);
	/* once the first three are past the window, their three slots come free */
	for (int i = 0; i < 3; i++) {
		sign_new(f, NOW_S + HOSTAUTH_WINDOW_S + 1);
		assert_int_equal(verify_at(f, NOW_S + HOSTAUTH_WINDOW_S + 1, &why), COFFER_OK);
	}
	assert_int_equal(hostauth_replay_count(f->cache), 3);
	sign_new(f, NOW_S + HOSTAUTH_WINDOW_S + 1);
	assert_int_equal(verify_at(f, NOW_S + HOSTAUTH_WINDOW_S + 1, &why), COFFER_ERR_UNAVAILABLE);
}

struct race {
	struct req_fixture *f;
	struct hostauth_headers *h;
	int ok;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;
	for (int i = 0; i < THREAD_REQUESTS; i++) {
		struct hostauth_presented p = { r->h[i].host, r->h[i].timestamp, r->h[i].nonce, r->h[i].signature };
		const char *why;
		if (hostauth_verify(&r->f->r, &p, r->f->pk, r->f->cache, NOW_S, &why) == COFFER_OK)
			r->ok++;
	}
	return NULL;
}

/* Threads racing to use the same signed requests: each is accepted exactly once. */
static void test_cache_concurrent(void **state)
{
	struct req_fixture *f = *state;
	struct hostauth_headers h[THREAD_REQUESTS];
	struct race r[THREADS];
	pthread_t t[THREADS];
	int total = 0;
	for (int i = 0; i < THREAD_REQUESTS; i++)
		assert_int_equal(hostauth_sign_headers(f->sk, "0123456789abcdef01234567", &f->r, NOW_S, &h[i]),
				 COFFER_OK);
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct race){ f, h, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		total += r[i].ok;
	}
	assert_int_equal(total, THREAD_REQUESTS);
	assert_int_equal(hostauth_replay_count(f->cache), THREAD_REQUESTS);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_join_token_roundtrip),
		cmocka_unit_test(test_join_token_expired),
		cmocka_unit_test(test_join_token_tampered),
		cmocka_unit_test(test_join_token_wrong_master),
		cmocka_unit_test(test_registry_mac_binds_each_field),
		cmocka_unit_test(test_cert),
		cmocka_unit_test(test_enrol_proof),
		cmocka_unit_test(test_rekey_proof),
		cmocka_unit_test_setup_teardown(test_request_roundtrip, req_setup, req_teardown),
		cmocka_unit_test_setup_teardown(test_request_tampered, req_setup, req_teardown),
		cmocka_unit_test_setup_teardown(test_request_signature_respelled, req_setup, req_teardown),
		cmocka_unit_test_setup_teardown(test_request_malformed, req_setup, req_teardown),
		cmocka_unit_test_setup_teardown(test_request_replayed, req_setup, req_teardown),
		cmocka_unit_test_setup_teardown(test_request_stale, req_setup, req_teardown),
		cmocka_unit_test_setup_teardown(test_cache_full_refuses, req_setup, req_teardown),
		cmocka_unit_test_setup_teardown(test_cache_concurrent, req_setup, req_teardown),
	};
	return cmocka_run_group_tests_name("hostauth", tests, NULL, NULL);
}
