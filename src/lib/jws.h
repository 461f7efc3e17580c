/*
 * jws.h — compact JWS (RFC 7515) with alg "EdDSA" over Ed25519 (RFC 8037),
 * and the checks of the registered time claims (RFC 7519 §4.1).
 *
 * Layout: BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature)
 *   header    {"alg":"EdDSA"}, or {"alg":"EdDSA","kid":"<kid>"} when a key
 *             id is given (kid: 1..JWS_KID_MAX of [A-Za-z0-9._-])
 *   signature Ed25519 (64 bytes) over the ASCII of the first two segments
 *             and the dot between them
 *
 * Verification is strict: exactly three segments, strict base64url (no
 * padding, no whitespace, canonical trailing bits), a header of at most
 * JWS_HEADER_MAX bytes that is a JSON object without duplicate names whose
 * "alg" is exactly "EdDSA", whose only other members are "kid" (as above)
 * and "typ" (a short string) — so "crit" and everything else are refused —
 * and a signature of exactly 64 bytes. The header is checked before the key
 * is used.
 *
 * Claims (jws_verify_claims): a JSON object; "exp", "nbf" and "iat" are
 * optional, and when present must be integer NumericDates:
 *   exp <= now                    -> COFFER_ERR_UNAUTH (expired)
 *   nbf > now + JWS_CLOCK_SKEW_S  -> COFFER_ERR_UNAUTH (not yet valid)
 *   iat > now + JWS_CLOCK_SKEW_S  -> COFFER_ERR_UNAUTH (issued in the future)
 * Callers that need other claims (boot tokens: app, machine, host, jti, a
 * required exp) read them from the object jws_verify_claims returns.
 *
 * Errors: COFFER_ERR_INVALID for anything malformed or refused (including an
 * oversized token), COFFER_ERR_CRYPTO for a signature that does not verify,
 * COFFER_ERR_UNAUTH for a time claim that does not hold now.
 *
 * Ownership: keys are struct secret (a 32-byte seed or libsodium's 64-byte
 * seed || public key); public keys are 32-byte arrays. Tokens and payloads
 * are written to a caller's struct buf, replaced only on success.
 */
#ifndef COFFER_JWS_H
#define COFFER_JWS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "secret.h"

#define JWS_SEED_LEN 32     /* crypto_sign_ed25519_SEEDBYTES */
#define JWS_SK_LEN 64       /* crypto_sign_ed25519_SECRETKEYBYTES */
#define JWS_PK_LEN 32       /* crypto_sign_ed25519_PUBLICKEYBYTES */
#define JWS_SIG_LEN 64      /* crypto_sign_ed25519_BYTES */
#define JWS_TOKEN_MAX 8192  /* longest token accepted or made, in bytes */
#define JWS_HEADER_MAX 256  /* longest decoded header accepted */
#define JWS_KID_MAX 64      /* longest key id */
#define JWS_TYP_MAX 32      /* longest "typ" accepted */
#define JWS_CLOCK_SKEW_S 60 /* tolerance for nbf and iat, in seconds */

/* The Ed25519 key pair of a 32-byte seed; *sk is the 64-byte form. */
COFFER_MUST_CHECK enum coffer_err jws_key_from_seed(const struct secret *seed, struct secret **sk,
						    unsigned char pk[JWS_PK_LEN]);
/* A fresh random key pair; *sk is the 64-byte form. */
COFFER_MUST_CHECK enum coffer_err jws_generate_key(struct secret **sk,
						   unsigned char pk[JWS_PK_LEN]);
/* The public key of a seed or of a 64-byte key (whose halves must agree). */
COFFER_MUST_CHECK enum coffer_err jws_public_key(const struct secret *sk,
						 unsigned char pk[JWS_PK_LEN]);

/*
 * Signs payload into a compact JWS in *out. kid NULL: header {"alg":"EdDSA"};
 * otherwise {"alg":"EdDSA","kid":"<kid>"}. COFFER_ERR_INVALID for a bad key
 * or kid, COFFER_ERR_TOO_LARGE past JWS_TOKEN_MAX or out's max.
 */
COFFER_MUST_CHECK enum coffer_err jws_sign(const struct secret *sk, const char *kid,
					   const void *payload, size_t payload_len,
					   struct buf *out);

/* Parses token strictly and checks its signature under pk; the payload,
 * whatever it is, goes to *payload (COFFER_ERR_TOO_LARGE past its max).
 * No claim is looked at. */
COFFER_MUST_CHECK enum coffer_err jws_verify_sig(const unsigned char pk[JWS_PK_LEN],
						 const char *token, size_t token_len,
						 struct buf *payload);

/* The time claims of a JSON-object payload at time now (seconds since the
 * epoch). *claims (when not NULL) gets the parsed object; json_decref it. */
COFFER_MUST_CHECK enum coffer_err jws_verify_claims(const void *payload, size_t payload_len,
						    int64_t now, json_t **claims);

/* jws_verify_sig, then, when the payload starts with '{' (after JSON
 * whitespace), jws_verify_claims: such a payload must be a JSON object with
 * valid claims. Tokens that must carry claims call jws_verify_claims too. */
COFFER_MUST_CHECK enum coffer_err jws_verify(const unsigned char pk[JWS_PK_LEN], const char *token,
					     size_t token_len, int64_t now, struct buf *payload);

#endif
