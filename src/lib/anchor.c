#include "anchor.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "encode.h"
#include "json.h"
#include "monotime.h"
#include "banned.h"

#define MESSAGE_LEN (sizeof(ANCHOR_CONTEXT) + 8 + ANCHOR_HASH_LEN + 8)
#define B64_SLACK 8

static void message(const struct anchor_head *h, unsigned char msg[MESSAGE_LEN])
{
	size_t pos = sizeof(ANCHOR_CONTEXT); /* with its NUL */
	memcpy(msg, ANCHOR_CONTEXT, pos);
	be_put(msg + pos, h->seq, 8);
	pos += 8;
	memcpy(msg + pos, h->hash, ANCHOR_HASH_LEN);
	pos += ANCHOR_HASH_LEN;
	be_put(msg + pos, (uint64_t)h->signed_at, 8);
}

enum coffer_err anchor_sign(const struct secret *signing_sk, struct anchor_head *h)
{
	unsigned char msg[MESSAGE_LEN];
	if (secret_len(signing_sk) != crypto_sign_ed25519_SECRETKEYBYTES || h->signed_at < 0)
		return COFFER_ERR_INVALID;
	message(h, msg);
	if (crypto_sign_ed25519_detached(h->signature, NULL, msg, sizeof(msg), secret_cbytes(signing_sk)) != 0)
		return COFFER_ERR_CRYPTO;
	return COFFER_OK;
}

enum coffer_err anchor_verify(const unsigned char pk[JWS_PK_LEN], const struct anchor_head *h)
{
	unsigned char msg[MESSAGE_LEN];
	if (h->signed_at < 0)
		return COFFER_ERR_CRYPTO;
	message(h, msg);
	return crypto_sign_ed25519_verify_detached(h->signature, msg, sizeof(msg), pk) == 0 ? COFFER_OK
											     : COFFER_ERR_CRYPTO;
}

json_t *anchor_to_json(const struct anchor_head *h)
{
	char hex[HEX_LEN(ANCHOR_HASH_LEN) + 1];
	struct buf sig;
	json_t *doc = NULL;

	buf_init(&sig, B64URL_LEN(ANCHOR_SIG_LEN) + B64_SLACK);
	if (hex_encode(h->hash, sizeof(h->hash), hex, sizeof(hex)) == COFFER_OK &&
	    b64url_encode(h->signature, sizeof(h->signature), &sig) == COFFER_OK)
		doc = json_pack("{s:I,s:s,s:I,s:s%}", "seq", (json_int_t)h->seq, "hash", hex, "signed_at",
				(json_int_t)h->signed_at, "signature", sig.ptr, sig.len);
	buf_release(&sig);
	return doc;
}

enum coffer_err anchor_from_json(const json_t *doc, struct anchor_head *h, const char **why)
{
	static const char *const allowed[] = { "seq", "hash", "signed_at", "signature", NULL };
	struct anchor_head out = { 0 };
	struct json_error jerr;
	const char *hash = NULL, *sig = NULL;
	size_t hash_len = 0, sig_len = 0;
	int64_t seq = 0;
	struct buf b;
	enum coffer_err rc;

	*why = "a head is an object with \"seq\", \"hash\", \"signed_at\" and \"signature\"";
	if (!json_is_object(doc) || json_check_fields(doc, allowed, &jerr) ||
	    json_get_int(doc, "seq", 1, 0, INT64_MAX, &seq, &jerr) ||
	    json_get_int(doc, "signed_at", 1, 0, INT64_MAX, &out.signed_at, &jerr) ||
	    json_get_string(doc, "hash", 1, &hash, &hash_len, &jerr) ||
	    json_get_string(doc, "signature", 1, &sig, &sig_len, &jerr))
		return COFFER_ERR_INVALID;
	out.seq = (uint64_t)seq;
	/* one spelling: lower-case hex only */
	for (size_t i = 0; i < hash_len; i++)
		if (hash[i] >= 'A' && hash[i] <= 'F')
			hash_len = 0;
	if (hash_len != HEX_LEN(ANCHOR_HASH_LEN) || hex_decode(hash, hash_len, out.hash, sizeof(out.hash))) {
		*why = "\"hash\" must be 64 lower-case hex characters";
		return COFFER_ERR_INVALID;
	}
	buf_init(&b, ANCHOR_SIG_LEN + B64_SLACK);
	rc = b64url_decode(sig, sig_len, &b);
	if (!rc && b.len != ANCHOR_SIG_LEN)
		rc = COFFER_ERR_INVALID;
	if (!rc)
		memcpy(out.signature, b.ptr, ANCHOR_SIG_LEN);
	buf_release(&b);
	if (rc == COFFER_ERR_NOMEM)
		return rc;
	if (rc) {
		*why = "\"signature\" must be 64 bytes in base64url";
		return COFFER_ERR_INVALID;
	}
	*why = NULL;
	*h = out;
	return COFFER_OK;
}

/* ---- the poker ---- */

struct anchor_poker {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	pthread_t thread;
	int pending;
	int stopping;
	unsigned delay_ms;
	anchor_poke_fn fn;
	void *ctx;
};

static void *poker_main(void *arg)
{
	struct anchor_poker *p = arg;
	struct timespec until;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->pending && !p->stopping)
			pthread_cond_wait(&p->cond, &p->mu);
		if (!p->pending)
			break; /* stopping, nothing left to do */
		/* let the rest of the burst arrive: its pokes join this call */
		monotime_deadline_in(&until, p->delay_ms);
		while (!p->stopping && pthread_cond_timedwait(&p->cond, &p->mu, &until) != ETIMEDOUT)
			;
		p->pending = 0;
		pthread_mutex_unlock(&p->mu);
		p->fn(p->ctx);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

enum coffer_err anchor_poker_start(unsigned delay_ms, anchor_poke_fn fn, void *ctx, struct anchor_poker **out)
{
	pthread_condattr_t attr;
	struct anchor_poker *p = calloc(1, sizeof(*p));
	if (!p)
		return COFFER_ERR_NOMEM;
	p->delay_ms = delay_ms;
	p->fn = fn;
	p->ctx = ctx;
	if (pthread_condattr_init(&attr)) {
		free(p);
		return COFFER_ERR_NOMEM;
	}
	int bad = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) || pthread_cond_init(&p->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (bad) {
		free(p);
		return COFFER_ERR_INTERNAL;
	}
	if (pthread_mutex_init(&p->mu, NULL)) {
		pthread_cond_destroy(&p->cond);
		free(p);
		return COFFER_ERR_INTERNAL;
	}
	if (pthread_create(&p->thread, NULL, poker_main, p)) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cond);
		free(p);
		return COFFER_ERR_INTERNAL;
	}
	*out = p;
	return COFFER_OK;
}

void anchor_poker_poke(struct anchor_poker *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	if (!p->pending) {
		p->pending = 1;
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->mu);
}

void anchor_poker_stop(struct anchor_poker *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cond);
	free(p);
}
