/*
 * keeper_audit.c — the audit anchor (keeper.h "the audit anchor"): the
 * keeper's signed checkpoint of the audit chain's head, kept in its state
 * folder, outside the store. It moves only forward, and only over events
 * that chain from it: a cut, rewritten or replaced chain is refused, logged
 * and audited once as audit_chain_broken, and the old anchor stays.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "fs.h"
#include "json.h"
#include "keeper.h"
#include "log.h"
#include "banned.h"

#define BROKEN_ACTION "audit_chain_broken"
#define BROKEN_ACTOR "keeper"

struct keeper_anchor {
	pthread_mutex_t mu;            /* over everything below: one advance at a time */
	const struct keeper_keys *keys;
	struct store_pool *pool;
	char path[KEEPER_PATH_MAX];    /* "" keeps the anchor in memory only */
	struct anchor_head head;       /* signed */
	char problem[KEEPER_ANCHOR_PROBLEM_MAX]; /* why the last advance was refused; "" if it was not */
	int problem_audited;           /* the problem was audited (once until the chain extends again) */
	struct anchor_poker *poker;
};

static enum coffer_err save(const struct keeper_anchor *a, const struct anchor_head *h)
{
	struct buf text;
	enum coffer_err rc;
	json_t *doc;

	if (!a->path[0])
		return COFFER_OK;
	doc = anchor_to_json(h);
	if (!doc)
		return COFFER_ERR_NOMEM;
	buf_init(&text, ANCHOR_DOC_MAX);
	rc = json_dump_buf(doc, &text);
	if (!rc)
		rc = buf_add(&text, "\n", 1);
	if (!rc)
		rc = fs_write_atomic(a->path, text.ptr, text.len, 0600, 0);
	buf_release(&text);
	json_decref(doc);
	return rc;
}

static enum coffer_err load(struct keeper_anchor *a, const char **why)
{
	struct buf text;
	struct json_error jerr;
	json_t *doc = NULL;
	enum coffer_err rc;

	buf_init(&text, ANCHOR_DOC_MAX);
	rc = fs_read_file(a->path, &text);
	if (rc == COFFER_ERR_NOT_FOUND) {
		/* a new folder: anchored at the empty log, the first advance reads the whole chain */
		buf_release(&text);
		a->head.signed_at = (int64_t)time(NULL);
		rc = anchor_sign(a->keys->signing, &a->head);
		return rc ? rc : save(a, &a->head);
	}
	if (!rc)
		rc = json_parse_limited(text.ptr, text.len, ANCHOR_DOC_MAX, JSON_MAX_DEPTH_DEFAULT, &doc, &jerr);
	if (!rc)
		rc = anchor_from_json(doc, &a->head, why);
	else
		*why = "cannot be read as a head document";
	if (!rc && anchor_verify(a->keys->signing_pk, &a->head)) {
		*why = "is not signed by this keeper's key";
		rc = COFFER_ERR_CRYPTO;
	}
	json_decref(doc);
	buf_release(&text);
	return rc;
}

/* The problem's audit event: once per problem, never poking (it sits on the broken chain). */
static void audit_problem(struct keeper_anchor *a, struct store *s)
{
	char detail[KEEPER_ANCHOR_PROBLEM_MAX + 128];
	json_t *d;
	struct buf text;

	if (a->problem_audited)
		return;
	d = json_pack("{s:I,s:s}", "anchored_seq", (json_int_t)a->head.seq, "problem", a->problem);
	buf_init(&text, sizeof(detail));
	if (d && json_dump_buf(d, &text) == COFFER_OK && str_copy(detail, sizeof(detail), text.ptr) == COFFER_OK) {
		struct store_audit_event ev = { .actor = BROKEN_ACTOR, .action = BROKEN_ACTION, .detail = detail,
						.outcome = "refused: the chain does not extend the anchored head" };
		if (store_audit_append(s, &ev, NULL) == COFFER_OK)
			a->problem_audited = 1;
	}
	buf_release(&text);
	json_decref(d);
}

/* Does the chain extend the anchor? Sets a->problem and answers CONFLICT when it does not. */
static enum coffer_err extend(struct keeper_anchor *a, struct store *s, uint64_t *end_seq,
			      unsigned char end_hash[STORE_HASH_LEN])
{
	unsigned char h[STORE_HASH_LEN];
	uint64_t broken = 0, last = 0;
	enum coffer_err rc = COFFER_OK;

	if (a->head.seq > 0) {
		rc = store_audit_event_hash(s, a->head.seq, h);
		if (rc == COFFER_ERR_NOT_FOUND) {
			rc = store_audit_head(s, &last, h);
			if (!rc && fmt_into(a->problem, sizeof(a->problem),
					    "the chain ends at seq %llu but the anchored head is seq %llu",
					    (unsigned long long)last, (unsigned long long)a->head.seq))
				rc = COFFER_ERR_INTERNAL;
			return rc ? rc : COFFER_ERR_CONFLICT;
		}
		if (rc)
			return rc;
		if (sodium_memcmp(h, a->head.hash, sizeof(h)) != 0) {
			if (fmt_into(a->problem, sizeof(a->problem),
				     "event %llu is not the anchored one: the chain was rewritten or replaced",
				     (unsigned long long)a->head.seq))
				return COFFER_ERR_INTERNAL;
			return COFFER_ERR_CONFLICT;
		}
	}
	rc = store_audit_verify_from(s, a->head.seq, a->head.hash, end_seq, end_hash, &broken);
	if (rc == COFFER_ERR_CRYPTO) {
		if (fmt_into(a->problem, sizeof(a->problem), "the chain breaks at event %llu, after the anchored head",
			     (unsigned long long)broken))
			return COFFER_ERR_INTERNAL;
		return COFFER_ERR_CONFLICT;
	}
	return rc;
}

enum coffer_err keeper_anchor_advance(struct keeper_anchor *a, struct anchor_head *out, char *problem,
				      size_t problem_size)
{
	struct store *s = NULL;
	struct anchor_head next = { 0 };
	unsigned char end_hash[STORE_HASH_LEN];
	uint64_t end_seq = 0;
	enum coffer_err rc;

	pthread_mutex_lock(&a->mu);
	rc = store_pool_acquire(a->pool, &s);
	if (rc)
		goto out;
	rc = extend(a, s, &end_seq, end_hash);
	if (rc == COFFER_ERR_CONFLICT) {
		log_error("audit_chain_broken", LF_I("anchored_seq", a->head.seq), LF_S("problem", a->problem));
		audit_problem(a, s);
	} else if (rc == COFFER_OK && end_seq > a->head.seq) {
		next.seq = end_seq;
		memcpy(next.hash, end_hash, sizeof(next.hash));
		next.signed_at = (int64_t)time(NULL);
		rc = anchor_sign(a->keys->signing, &next);
		if (!rc)
			rc = save(a, &next);
		if (!rc)
			a->head = next;
		else
			log_error("audit_anchor_not_saved", LF_S("error", coffer_err_name(rc)));
	}
	if (rc == COFFER_OK) {
		a->problem[0] = '\0';
		a->problem_audited = 0;
	}
	store_pool_release(a->pool, s, rc == COFFER_ERR_CONFLICT ? COFFER_OK : rc);
out:
	if (rc == COFFER_OK || rc == COFFER_ERR_CONFLICT) {
		*out = a->head;
		if (problem && problem_size && str_copy(problem, problem_size, a->problem))
			problem[0] = '\0';
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

static void advance_quietly(void *ctx)
{
	struct anchor_head h;
	enum coffer_err rc = keeper_anchor_advance(ctx, &h, NULL, 0);
	if (rc && rc != COFFER_ERR_CONFLICT)
		log_warn("audit_anchor_failed", LF_S("error", coffer_err_name(rc)));
}

void keeper_anchor_poke(struct keeper_anchor *a)
{
	if (a)
		anchor_poker_poke(a->poker);
}

enum coffer_err keeper_anchor_open(const struct keeper_keys *keys, struct store_pool *pool, const char *path,
				   struct keeper_anchor **out, const char **why)
{
	struct keeper_anchor *a = calloc(1, sizeof(*a));
	enum coffer_err rc;

	*why = NULL;
	if (!a)
		return COFFER_ERR_NOMEM;
	a->keys = keys;
	a->pool = pool;
	if (pthread_mutex_init(&a->mu, NULL)) {
		free(a);
		return COFFER_ERR_INTERNAL;
	}
	rc = path ? str_copy(a->path, sizeof(a->path), path) : COFFER_OK;
	if (!rc && path)
		rc = load(a, why);
	else if (!rc)
		rc = anchor_sign(keys->signing, &a->head);
	if (!rc)
		rc = anchor_poker_start(ANCHOR_POKE_DELAY_MS, advance_quietly, a, &a->poker);
	if (rc) {
		pthread_mutex_destroy(&a->mu);
		free(a);
		return rc;
	}
	log_info("audit_anchor_loaded", LF_I("seq", a->head.seq), LF_S("file", a->path[0] ? a->path : "(memory)"));
	anchor_poker_poke(a->poker); /* catch up with what was appended while the keeper was away */
	*out = a;
	return COFFER_OK;
}

void keeper_anchor_close(struct keeper_anchor *a)
{
	if (!a)
		return;
	anchor_poker_stop(a->poker); /* the last pending advance runs here */
	pthread_mutex_destroy(&a->mu);
	free(a);
}
