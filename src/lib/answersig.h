/*
 * answersig.h — the api's signature over what it answers an agent
 * (docs/RUNPATH.md "Signed answers"). The api signs with its boot-token key
 * (Ed25519; the seed is the keeper's api.boot.key), a key the store does not
 * hold; the agent verifies with the public half the keeper tells it at
 * enrolment and in GET /v1/hosts/self, never with one the api sends.
 *
 * Header: Coffer-Answer-Signature: <base64url, no padding, 86 characters>
 * over the string
 *   "coffer-answer-v1\n" host id "\n" request nonce "\n" status "\n"
 *   lower-case hex(SHA-256(body))
 * where the request nonce is the Coffer-Nonce of the host's signed request
 * this answers: fresh per request, so a signed answer cannot be replayed
 * to the agent for another request, nor to another host. The context
 * string cannot begin a JWS signing input (base64url), so the key's
 * signatures over boot tokens and over answers cannot be taken for each
 * other. One spelling: a signature that does not re-encode to the header
 * exactly is refused.
 */
#ifndef COFFER_ANSWERSIG_H
#define COFFER_ANSWERSIG_H

#include <stddef.h>

#include "err.h"
#include "secret.h"

#define ANSWERSIG_HEADER "Coffer-Answer-Signature"
/* The keeper's field (enrolment answer, GET /v1/hosts/self) with the public key, base64url. */
#define ANSWERSIG_KEY_FIELD "api_answer_pk"
#define ANSWERSIG_PK_LEN 32
#define ANSWERSIG_SK_LEN 64
#define ANSWERSIG_B64_LEN 86
#define ANSWERSIG_B64_SIZE (ANSWERSIG_B64_LEN + 1)

/* The header's value for an answer (status, body) to host_id's request with nonce; sk is the 64-byte form. */
COFFER_MUST_CHECK enum coffer_err answersig_sign(const struct secret *sk, const char *host_id, const char *nonce,
						 int status, const void *body, size_t body_len,
						 char out[ANSWERSIG_B64_SIZE]);

/*
 * COFFER_OK when sig (the header's value; NULL when absent) is pk's
 * signature over the answer; COFFER_ERR_CRYPTO otherwise (absent,
 * malformed, another key, another body, host, nonce or status).
 */
COFFER_MUST_CHECK enum coffer_err answersig_verify(const unsigned char pk[ANSWERSIG_PK_LEN], const char *host_id,
						   const char *nonce, int status, const void *body, size_t body_len,
						   const char *sig);

#endif
