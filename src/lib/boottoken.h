/*
 * boottoken.h — boot tokens: the short-lived credential that lets a host
 * have one machine's secrets opened. Shared by the api (mints one when a
 * machine is placed or (re)started), the agent (passes it on unread) and
 * the keeper (verifies it before it opens anything).
 *
 * A boot token is a compact JWS, alg EdDSA (jws.h), header {"alg":"EdDSA"},
 * whose payload holds exactly these claims and nothing else:
 *   {"app":"<app id>","machine":"<machine id>","host":"<host id>",
 *    "release":<integer>,"secrets_version":<integer>,
 *    "iat":<unix s>,"exp":<unix s>,"jti":"<32 lower-case hex>"}
 *   ids              [a-z0-9_]{1,BOOTTOKEN_ID_MAX} (store ids, "tok_"-like)
 *   release,
 *   secrets_version  integers in 0..INT64_MAX (0 = none, as in the store)
 *   exp              iat + BOOTTOKEN_TTL_DEFAULT unless the minter asks for
 *                    less or more; exp - iat is 1..BOOTTOKEN_TTL_MAX
 *   jti              16 random bytes in hex, fresh for every token
 *
 * Keys: the api signs with a boot-token signing key (Ed25519, not the
 * keeper's key and not a host's) whose seed the keeper derives from its
 * master key (vault_api_boot_seed) and hands over once as api.boot.key;
 * the keeper derives the public half itself and verifies with it, so no
 * file or store row can swap it. A token signed by any other key is
 * COFFER_ERR_CRYPTO.
 *
 * Verification is strict, in this order: the JWS (jws_verify_sig; a
 * payload over BOOTTOKEN_PAYLOAD_MAX is COFFER_ERR_INVALID); the payload is
 * a JSON object without duplicate names holding every claim above with its
 * type and form, and no other, and exp - iat is in 1..BOOTTOKEN_TTL_MAX
 * (COFFER_ERR_INVALID); then the time claims at `now` (jws_verify_claims:
 * exp <= now, or iat more than JWS_CLOCK_SKEW_S in the future, is
 * COFFER_ERR_UNAUTH). A valid token says who it was
 * minted for, nothing more: the keeper compares app, machine and host with
 * what it is asked to open and checks in its own records that the machine
 * exists, is on that host and is not destroyed.
 *
 * Times are unix seconds (JWS NumericDate), not the store's milliseconds.
 *
 * Ownership: the signing key is a struct secret (jws.h forms); public keys
 * are 32-byte arrays; claims are plain values in a caller's struct (a token
 * is a credential, a claim is not). The token goes to a caller's struct buf,
 * replaced only on success. Outputs are written only on success.
 */
#ifndef COFFER_BOOTTOKEN_H
#define COFFER_BOOTTOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "jws.h"
#include "secret.h"

#define BOOTTOKEN_TTL_DEFAULT 600  /* seconds: exp = iat + this when none is asked for */
#define BOOTTOKEN_TTL_MAX 3600     /* the longest lifetime minted or accepted, in seconds */
#define BOOTTOKEN_ID_MAX 64        /* longest app, machine or host id, in bytes */
#define BOOTTOKEN_ID_SIZE (BOOTTOKEN_ID_MAX + 1)
#define BOOTTOKEN_JTI_BYTES 16
#define BOOTTOKEN_JTI_LEN (BOOTTOKEN_JTI_BYTES * 2) /* hex characters */
#define BOOTTOKEN_JTI_SIZE (BOOTTOKEN_JTI_LEN + 1)
#define BOOTTOKEN_PAYLOAD_MAX 1024 /* the longest payload accepted; a real one is under 400 */

struct boottoken_claims {
	char app[BOOTTOKEN_ID_SIZE];
	char machine[BOOTTOKEN_ID_SIZE];
	char host[BOOTTOKEN_ID_SIZE];
	uint64_t release;
	uint64_t secrets_version;
	int64_t iat;                   /* unix seconds */
	int64_t exp;                   /* unix seconds */
	char jti[BOOTTOKEN_JTI_SIZE];
};

/*
 * Mints a token for in->app, machine, host, release and secrets_version,
 * with iat = now, exp = in->exp (0: now + BOOTTOKEN_TTL_DEFAULT) and a fresh
 * random jti; in->iat and in->jti are ignored. *minted (when not NULL) gets
 * the claims as signed, so the caller can record the jti. COFFER_ERR_INVALID
 * for a malformed id, a version past INT64_MAX, a negative now, or an exp
 * not in now + 1..BOOTTOKEN_TTL_MAX; jws_sign's errors otherwise.
 */
COFFER_MUST_CHECK enum coffer_err boottoken_mint(const struct secret *sk, const struct boottoken_claims *in,
						 int64_t now, struct buf *token, struct boottoken_claims *minted);

/* Verifies token under the api's boot-token public key at time now (above). */
COFFER_MUST_CHECK enum coffer_err boottoken_verify(const unsigned char pk[JWS_PK_LEN], const char *token,
						   size_t token_len, int64_t now, struct boottoken_claims *out);

/* 1 when s is [a-z0-9_]{1,BOOTTOKEN_ID_MAX}. */
int boottoken_id_ok(const char *s);

#endif
