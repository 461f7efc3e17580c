/*
 * hostauth.h — host identity: join tokens, the keeper's host registry MAC,
 * host certificates, the enrolment proof, and signed agent requests with
 * their replay cache. Shared by the keeper (mints join tokens, enrols,
 * MACs and certifies hosts), the api (verifies certificates), the agent
 * (signs) and both servers' gates (verify).
 *
 * Join token (keeper; self-authenticating, so a store writer cannot mint one):
 *   join key = kdf_subkey(master, "coffer join token v1", 32)
 *   raw      = id (16 random bytes) || u64be(expires_at, unix ms)
 *              || HMAC-SHA256(join key, id || u64be(expires_at))        56 bytes
 *   token    = "cjt_" || base64url(raw)                                 79 characters
 * Verification checks the MAC (constant time), then the expiry. It is
 * single-use through the store: the keeper spends the id (hex) with
 * store_join_token_use, which refuses an id spent before.
 *
 * Canonical encoding of a host's identity, used by the MAC and the cert:
 *   L(x) = u32be(byte length of x) || x
 *   identity = L(id) || L(name) || L(sign_pk) || L(seal_pk)
 *
 * Registry MAC (keeper; the store is untrusted):
 *   registry key = kdf_subkey(master, "coffer host registry v1", 32)
 *   mac = HMAC-SHA256(registry key, identity || L(state))               32 bytes
 * The keeper verifies it every time it reads a host row.
 *
 * Host certificate (keeper signs, the api verifies with keeper.pub):
 *   message = "coffer host cert v1" || 0x00 || identity || u64be(issued_at, unix s)
 *   cert    = u64be(issued_at) || Ed25519(keeper signing key, message)  72 bytes
 * The cert carries its issued_at, so it is verifiable on its own.
 *
 * Enrolment proof (the new host proves it holds its signing key):
 *   proof = Ed25519(host signing key, "coffer enrol v1\n" || join token || "\n" || name)
 *
 * Signed agent request (the host's Ed25519 key), in four headers:
 *   Coffer-Host: <host id>      Coffer-Timestamp: <unix seconds>
 *   Coffer-Nonce: <32 lower-case hex, random>
 *   Coffer-Signature: <base64url of the 64-byte signature, 86 characters>
 * over the string
 *   "coffer-request-v1\n" METHOD "\n" PATH "\n" timestamp "\n" nonce "\n"
 *   lower-case hex(SHA-256(body))
 * where PATH includes the query, if any, exactly as sent. Verification, in
 * this order: the headers are well formed; the timestamp is within
 * HOSTAUTH_WINDOW_S of now; the signature verifies under the host's
 * sign_pk; the nonce was not seen within the window (the replay cache,
 * which only signed requests reach). The host id is not in the signed
 * string: the replay cache is keyed by the nonce alone, so a request
 * cannot be replayed under another host id either.
 *
 * Ownership: keys, join tokens and the proof message are struct secret or
 * wiped stack arrays; MACs, certs, signatures and public keys are plain.
 * Outputs are written only on success. Errors: COFFER_ERR_INVALID for
 * malformed input, COFFER_ERR_CRYPTO for a MAC or signature that does not
 * verify, COFFER_ERR_UNAUTH for an expired join token or a refused request.
 */
#ifndef COFFER_HOSTAUTH_H
#define COFFER_HOSTAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "secret.h"

#define HOSTAUTH_LABEL_JOIN "coffer join token v1"
#define HOSTAUTH_LABEL_REGISTRY "coffer host registry v1"
#define HOSTAUTH_CERT_CONTEXT "coffer host cert v1"
#define HOSTAUTH_ENROL_CONTEXT "coffer enrol v1\n"
#define HOSTAUTH_REKEY_CONTEXT "coffer host rekey v1\n"
#define HOSTAUTH_REQUEST_CONTEXT "coffer-request-v1\n"

#define HOSTAUTH_KEY_LEN 32  /* join and registry subkeys */
#define HOSTAUTH_MAC_LEN 32
#define HOSTAUTH_PK_LEN 32   /* sign_pk (Ed25519), seal_pk (X25519) */
#define HOSTAUTH_SK_LEN 64   /* a host signing key, libsodium's seed || pk form */
#define HOSTAUTH_SIG_LEN 64
#define HOSTAUTH_CERT_LEN (8 + HOSTAUTH_SIG_LEN)
#define HOSTAUTH_FIELD_MAX 255 /* longest host id, name or state, in bytes */

/* Join tokens. */
#define HOSTAUTH_JOIN_PREFIX "cjt_"
#define HOSTAUTH_JOIN_PREFIX_LEN 4
#define HOSTAUTH_JOIN_ID_BYTES 16
#define HOSTAUTH_JOIN_ID_HEX_SIZE (2 * HOSTAUTH_JOIN_ID_BYTES + 1)
#define HOSTAUTH_JOIN_RAW_LEN (HOSTAUTH_JOIN_ID_BYTES + 8 + HOSTAUTH_MAC_LEN)
#define HOSTAUTH_JOIN_B64_LEN 75 /* base64url of HOSTAUTH_JOIN_RAW_LEN bytes, no padding */
#define HOSTAUTH_JOIN_TOKEN_LEN (HOSTAUTH_JOIN_PREFIX_LEN + HOSTAUTH_JOIN_B64_LEN)

/* Signed requests. */
#define HOSTAUTH_HEADER_HOST "Coffer-Host"
#define HOSTAUTH_HEADER_TIMESTAMP "Coffer-Timestamp"
#define HOSTAUTH_HEADER_NONCE "Coffer-Nonce"
#define HOSTAUTH_HEADER_SIGNATURE "Coffer-Signature"
#define HOSTAUTH_WINDOW_S 60        /* accepted clock difference, either way */
#define HOSTAUTH_NONCE_BYTES 16
#define HOSTAUTH_NONCE_HEX_LEN (2 * HOSTAUTH_NONCE_BYTES)
#define HOSTAUTH_HOST_ID_MAX 64     /* host ids are 1..64 of [a-z0-9_-] */
#define HOSTAUTH_TIMESTAMP_SIZE 21  /* decimal int64 and a NUL */
#define HOSTAUTH_SIGNATURE_B64_LEN 86
#define HOSTAUTH_METHOD_MAX 16
#define HOSTAUTH_PATH_MAX 4096
#define HOSTAUTH_REPLAY_CAPACITY_DEFAULT 65536

/* ---- subkeys of the keeper's master key ---- */

COFFER_MUST_CHECK enum coffer_err hostauth_join_key(const struct secret *master, struct secret **key);
COFFER_MUST_CHECK enum coffer_err hostauth_registry_key(const struct secret *master, struct secret **key);

/* ---- join tokens ---- */

/* A new join token (HOSTAUTH_JOIN_TOKEN_LEN characters in secure memory) valid until expires_at (unix ms). */
COFFER_MUST_CHECK enum coffer_err hostauth_join_token_make(const struct secret *join_key, int64_t expires_at,
							   struct secret **token);
/*
 * Checks a join token at now (unix ms). COFFER_ERR_INVALID if it is not
 * "cjt_" and 75 strict base64url characters, COFFER_ERR_CRYPTO if its MAC
 * does not verify (another keeper's, or edited), COFFER_ERR_UNAUTH if it
 * has expired. On success id_hex gets its id (32 hex characters) and
 * *expires_at (may be NULL) its expiry.
 */
COFFER_MUST_CHECK enum coffer_err hostauth_join_token_verify(const struct secret *join_key, const char *token,
							     size_t token_len, int64_t now,
							     char id_hex[HOSTAUTH_JOIN_ID_HEX_SIZE],
							     int64_t *expires_at);

/* ---- a host's identity: the registry MAC and the certificate ---- */

struct hostauth_identity {
	const char *id;               /* 1..HOSTAUTH_FIELD_MAX bytes */
	const char *name;             /* 1..HOSTAUTH_FIELD_MAX bytes */
	const unsigned char *sign_pk; /* HOSTAUTH_PK_LEN bytes */
	const unsigned char *seal_pk; /* HOSTAUTH_PK_LEN bytes */
};

COFFER_MUST_CHECK enum coffer_err hostauth_registry_mac(const struct secret *registry_key,
							const struct hostauth_identity *h, const char *state,
							unsigned char mac[HOSTAUTH_MAC_LEN]);
/* COFFER_ERR_CRYPTO if mac is not the registry MAC of (h, state). */
COFFER_MUST_CHECK enum coffer_err hostauth_registry_verify(const struct secret *registry_key,
							   const struct hostauth_identity *h, const char *state,
							   const unsigned char mac[HOSTAUTH_MAC_LEN]);

/* Signs h with the keeper's 64-byte signing key; issued_at in unix seconds (>= 0). */
COFFER_MUST_CHECK enum coffer_err hostauth_cert_sign(const struct secret *keeper_sk, const struct hostauth_identity *h,
						     int64_t issued_at, unsigned char cert[HOSTAUTH_CERT_LEN]);
/*
 * COFFER_ERR_INVALID if cert is not HOSTAUTH_CERT_LEN bytes, COFFER_ERR_CRYPTO
 * if it is not the keeper's signature over h; *issued_at (may be NULL) gets
 * the cert's issue time on success.
 */
COFFER_MUST_CHECK enum coffer_err hostauth_cert_verify(const unsigned char keeper_pk[HOSTAUTH_PK_LEN],
						       const struct hostauth_identity *h, const unsigned char *cert,
						       size_t cert_len, int64_t *issued_at);

/* ---- the key rotation proof (`coffer agent rotate-keys`) ---- */

/*
 * A host's move from its old signing key to new keys, signed twice over
 *   HOSTAUTH_REKEY_CONTEXT || host id || "\n" || old sign_pk || new sign_pk || new seal_pk
 * by the old signing key (the host asks) and by the new one (it holds it).
 * The same keys give the same message, so a retry re-sends the same proof.
 */
struct hostauth_rekey {
	const char *host_id;
	const unsigned char *old_sign_pk; /* HOSTAUTH_PK_LEN each */
	const unsigned char *sign_pk;
	const unsigned char *seal_pk;
};
COFFER_MUST_CHECK enum coffer_err hostauth_rekey_sign(const struct secret *sk, const struct hostauth_rekey *r,
						      unsigned char sig[HOSTAUTH_SIG_LEN]);
COFFER_MUST_CHECK enum coffer_err hostauth_rekey_verify(const unsigned char pk[HOSTAUTH_PK_LEN],
							const struct hostauth_rekey *r,
							const unsigned char sig[HOSTAUTH_SIG_LEN]);

/* ---- the enrolment proof ---- */

COFFER_MUST_CHECK enum coffer_err hostauth_enrol_proof_sign(const struct secret *host_sk, const char *join_token,
							    size_t join_token_len, const char *name,
							    unsigned char proof[HOSTAUTH_SIG_LEN]);
COFFER_MUST_CHECK enum coffer_err hostauth_enrol_proof_verify(const unsigned char sign_pk[HOSTAUTH_PK_LEN],
							      const char *join_token, size_t join_token_len,
							      const char *name,
							      const unsigned char proof[HOSTAUTH_SIG_LEN]);

/* ---- signed requests ---- */

/* What a request signature covers besides the timestamp and the nonce. */
struct hostauth_request {
	const char *method; /* 1..HOSTAUTH_METHOD_MAX upper-case letters */
	const char *path;   /* starts with '/', the query included; at most HOSTAUTH_PATH_MAX */
	const void *body;   /* may be NULL when body_len is 0 */
	size_t body_len;
};

/* The four header values a signed request carries. */
struct hostauth_headers {
	char host[HOSTAUTH_HOST_ID_MAX + 1];
	char timestamp[HOSTAUTH_TIMESTAMP_SIZE];
	char nonce[HOSTAUTH_NONCE_HEX_LEN + 1];
	char signature[HOSTAUTH_SIGNATURE_B64_LEN + 1];
};

/* 1 if id is 1..HOSTAUTH_HOST_ID_MAX characters of [a-z0-9_-]. */
int hostauth_host_id_ok(const char *id);

/* Signs r as host_id at now (unix seconds) with a fresh random nonce; host_sk is the 64-byte form. */
COFFER_MUST_CHECK enum coffer_err hostauth_sign_headers(const struct secret *host_sk, const char *host_id,
							const struct hostauth_request *r, int64_t now,
							struct hostauth_headers *out);
/* The same with a given timestamp and nonce (32 lower-case hex): for the tests that craft requests. */
COFFER_MUST_CHECK enum coffer_err hostauth_sign_headers_with(const struct secret *host_sk, const char *host_id,
							     const struct hostauth_request *r, int64_t timestamp,
							     const char *nonce, struct hostauth_headers *out);

/*
 * The replay cache: nonces seen within the window, each kept until its
 * timestamp + HOSTAUTH_WINDOW_S has passed. Thread-safe (one mutex). Its
 * size is bounded: when every slot holds a live nonce it refuses new
 * requests (COFFER_ERR_UNAVAILABLE) rather than forget one.
 */
struct hostauth_replay;

/* capacity 0: HOSTAUTH_REPLAY_CAPACITY_DEFAULT. */
COFFER_MUST_CHECK enum coffer_err hostauth_replay_new(size_t capacity, struct hostauth_replay **out);
void hostauth_replay_free(struct hostauth_replay *c);
/* Live and expired entries still held (for tests and metrics). */
size_t hostauth_replay_count(struct hostauth_replay *c);

/* The header values a request presented; NULL when absent. */
struct hostauth_presented {
	const char *host;
	const char *timestamp;
	const char *nonce;
	const char *signature;
};

/*
 * Verifies a signed request at now (unix seconds) under sign_pk, the key
 * of the host the caller found for p->host (1 if hostauth_host_id_ok).
 * COFFER_OK, or COFFER_ERR_UNAUTH with *why one of:
 *   "missing or malformed host signature headers"
 *   "request timestamp outside the allowed window"
 *   "request signature does not verify"
 *   "request replayed"
 * or COFFER_ERR_UNAVAILABLE "replay cache full". *why never holds a header
 * value. Only a request whose signature verifies enters the cache.
 */
COFFER_MUST_CHECK enum coffer_err hostauth_verify(const struct hostauth_request *r,
						  const struct hostauth_presented *p,
						  const unsigned char sign_pk[HOSTAUTH_PK_LEN],
						  struct hostauth_replay *cache, int64_t now, const char **why);

#endif
