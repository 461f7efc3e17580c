/*
 * anchor.h — the audit anchor: a signed checkpoint of the audit chain's head
 * (docs/STORE.md "Audit chain", docs/API.md "GET /v1/audit/head") and the
 * coalescing background poke the api and the keeper use to renew it.
 *
 * A head is (seq, hash of event seq, signed_at) signed by the keeper's
 * Ed25519 key (vault_keeper_signing_key); its public half is keeper.pub.
 *   message = ANCHOR_CONTEXT (with its NUL) || u64be(seq) || hash
 *             || u64be(signed_at)
 * Its one document form (the keeper's file audit.head, the keeper's and the
 * api's answers, what `coffer audit head` prints and `verify --head` reads):
 *   {"seq": N, "hash": "<64 hex>", "signed_at": <unix s>, "signature": "<b64url>"}
 * seq 0 with a zero hash is the empty log.
 *
 * Ownership: a struct anchor_head is plain data. An anchor_poker owns its
 * thread; anchor_poker_stop joins it and frees it.
 */
#ifndef COFFER_ANCHOR_H
#define COFFER_ANCHOR_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "jws.h"
#include "secret.h"

#define ANCHOR_CONTEXT "coffer audit head v1"
#define ANCHOR_HASH_LEN 32
#define ANCHOR_SIG_LEN JWS_SIG_LEN
#define ANCHOR_DOC_MAX 1024          /* the longest head document accepted */
#define ANCHOR_POKE_DELAY_MS 200     /* how long a poke waits for more pokes to join it */

struct anchor_head {
	uint64_t seq;
	unsigned char hash[ANCHOR_HASH_LEN];
	int64_t signed_at; /* unix seconds */
	unsigned char signature[ANCHOR_SIG_LEN];
};

/* Signs h (seq, hash, signed_at) with the 64-byte Ed25519 key signing_sk into h->signature. */
COFFER_MUST_CHECK enum coffer_err anchor_sign(const struct secret *signing_sk, struct anchor_head *h);
/* COFFER_ERR_CRYPTO unless h->signature is pk's over h. */
COFFER_MUST_CHECK enum coffer_err anchor_verify(const unsigned char pk[JWS_PK_LEN], const struct anchor_head *h);

/* The document of h (new reference), NULL when out of memory. */
json_t *anchor_to_json(const struct anchor_head *h);
/*
 * Reads a head document: exactly the four fields, each well formed (hash 64
 * lower-case hex, signature 64 bytes in base64url). COFFER_ERR_INVALID with
 * *why naming the field otherwise. Does not check the signature.
 */
COFFER_MUST_CHECK enum coffer_err anchor_from_json(const json_t *doc, struct anchor_head *h, const char **why);

/*
 * A background thread that calls fn(ctx) after a poke, at most once per
 * delay_ms: the pokes of a burst (one per appended event) share one call.
 * A poke never waits on fn. Stopping runs fn one last time if a poke is
 * pending, then joins the thread.
 */
struct anchor_poker;
typedef void (*anchor_poke_fn)(void *ctx);
COFFER_MUST_CHECK enum coffer_err anchor_poker_start(unsigned delay_ms, anchor_poke_fn fn, void *ctx,
						     struct anchor_poker **out);
/* NULL is allowed (does nothing). */
void anchor_poker_poke(struct anchor_poker *p);
/* NULL is allowed. */
void anchor_poker_stop(struct anchor_poker *p);

#endif
