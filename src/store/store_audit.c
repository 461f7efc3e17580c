/*
 * The audit log: an append-only hash chain (docs/STORE.md "Audit chain").
 * Events are an entity (store_int.h); the chain's hashing and its check
 * are below.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "log.h"
#include "store_int.h"

#include "banned.h"

#define AUDIT_DOMAIN "coffer-audit-v1"
#define AUDIT_VERIFY_PAGE 500

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

static void hash_field(crypto_hash_sha256_state *st, const char *s)
{
	unsigned char len[4];
	size_t n = strlen(s);
	be_put(len, n, sizeof(len));
	crypto_hash_sha256_update(st, len, sizeof(len));
	crypto_hash_sha256_update(st, (const unsigned char *)s, n);
}

static enum coffer_err check_event(const struct store_audit_event *ev)
{
	const char *fields[] = { ev->org_id, ev->actor, ev->action, ev->app, ev->detail, ev->outcome, ev->request_id };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i] && strlen(fields[i]) > STORE_AUDIT_FIELD_MAX)
			return COFFER_ERR_TOO_LARGE;
	return COFFER_OK;
}

enum coffer_err store_audit_hash(uint64_t seq, const struct store_audit_event *ev,
				 const unsigned char prev_hash[STORE_HASH_LEN], unsigned char out[STORE_HASH_LEN])
{
	crypto_hash_sha256_state st;
	unsigned char num[8];
	enum coffer_err rc = check_event(ev);
	if (rc)
		return rc;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, prev_hash, STORE_HASH_LEN);
	hash_field(&st, AUDIT_DOMAIN);
	be_put(num, seq, sizeof(num));
	crypto_hash_sha256_update(&st, num, sizeof(num));
	be_put(num, (uint64_t)ev->ts, sizeof(num));
	crypto_hash_sha256_update(&st, num, sizeof(num));
	hash_field(&st, or_empty(ev->org_id));
	hash_field(&st, or_empty(ev->actor));
	hash_field(&st, or_empty(ev->action));
	hash_field(&st, or_empty(ev->app));
	hash_field(&st, or_empty(ev->detail));
	hash_field(&st, or_empty(ev->outcome));
	hash_field(&st, or_empty(ev->request_id));
	crypto_hash_sha256_final(&st, out);
	return COFFER_OK;
}

/* AUDIT_LAST's row. */
struct audit_head {
	uint64_t seq;
	unsigned char hash[STORE_HASH_LEN];
};

static const struct store_col head_cols[] = {
	COL(struct audit_head, seq, COL_UINT),
	COLF(struct audit_head, hash, COL_BLOB, COL_EXACT),
};
static const struct store_entity head_entity = ENTITY("audit head", struct audit_head, head_cols, NULL);

static void audit_row_free(void *item)
{
	struct store_audit_row *r = item;
	free((char *)r->ev.org_id);
	free((char *)r->ev.actor);
	free((char *)r->ev.action);
	free((char *)r->ev.app);
	free((char *)r->ev.detail);
	free((char *)r->ev.outcome);
	free((char *)r->ev.request_id);
	memset(r, 0, sizeof(*r));
}

/* The strings are owned by the row; the hashes must be 32 bytes. */
static const struct store_col audit_cols[] = {
	COLF(struct store_audit_row, seq, COL_UINT, COL_INS),
	COLN("ts", struct store_audit_row, ev.ts, COL_INT, COL_INS),
	{ "org_id", COL_STR, offsetof(struct store_audit_row, ev.org_id), 0, 0, COL_INS },
	{ "actor", COL_STR, offsetof(struct store_audit_row, ev.actor), 0, 0, COL_INS },
	{ "action", COL_STR, offsetof(struct store_audit_row, ev.action), 0, 0, COL_INS },
	{ "app", COL_STR, offsetof(struct store_audit_row, ev.app), 0, 0, COL_INS },
	{ "detail", COL_STR, offsetof(struct store_audit_row, ev.detail), 0, 0, COL_INS },
	{ "outcome", COL_STR, offsetof(struct store_audit_row, ev.outcome), 0, 0, COL_INS },
	{ "request_id", COL_STR, offsetof(struct store_audit_row, ev.request_id), 0, 0, COL_INS },
	COLF(struct store_audit_row, prev_hash, COL_BLOB, COL_EXACT | COL_INS),
	COLF(struct store_audit_row, hash, COL_BLOB, COL_EXACT | COL_INS),
};
static const struct store_entity audit_entity =
	ENTITY("audit event", struct store_audit_row, audit_cols, audit_row_free);

/* The last event's seq and hash (0 and zeros when the log is empty), inside the caller's transaction. */
static enum coffer_err audit_last(struct store *s, struct audit_head *out)
{
	enum coffer_err rc = store_get(s, &head_entity, STORE_Q_AUDIT_LAST, NULL, 0, out);
	if (rc == COFFER_ERR_NOT_FOUND) {
		memset(out, 0, sizeof(*out));
		rc = COFFER_OK;
	}
	return rc;
}

enum coffer_err store_audit_append(struct store *s, const struct store_audit_event *ev, uint64_t *seq)
{
	struct store_audit_row row = { .ev = *ev };
	struct audit_head last = { 0 };
	enum coffer_err rc = check_event(ev);
	if (rc)
		return rc;
	if (!row.ev.ts)
		row.ev.ts = store_now_ms();

	rc = store_begin(s, 1);
	if (rc)
		return rc;
	rc = store_run(s, STORE_Q_AUDIT_LOCK, NULL, 0, NULL);
	if (rc)
		goto out;
	rc = audit_last(s, &last);
	if (rc)
		goto out;
	row.seq = last.seq + 1;
	memcpy(row.prev_hash, last.hash, sizeof(row.prev_hash));
	rc = store_audit_hash(row.seq, &row.ev, row.prev_hash, row.hash);
	if (rc)
		goto out;
	/* NULL strings are stored as "" (store_insert binds a NULL string so). */
	rc = store_insert(s, &audit_entity, STORE_Q_AUDIT_INSERT, &row);
out:
	rc = store_finish(s, rc);
	if (rc == COFFER_OK && seq)
		*seq = row.seq;
	return rc;
}

enum coffer_err store_audit_list(struct store *s, const struct store_audit_filter *f, struct store_audit_list *out)
{
	static const struct store_audit_filter all;
	size_t limit;

	if (!f)
		f = &all;
	limit = f->limit && f->limit < STORE_AUDIT_LIST_MAX ? f->limit : STORE_AUDIT_LIST_MAX;
	if (f->after_seq > INT64_MAX)
		return COFFER_ERR_INVALID;
	return store_list(s, &audit_entity, STORE_Q_AUDIT_LIST,
			  PARAMS(VI(f->after_seq), VT(or_empty(f->org_id)), VT(or_empty(f->app)), VI(limit)),
			  (void **)&out->items, &out->n);
}

void store_audit_list_release(struct store_audit_list *l)
{
	store_items_free(&audit_entity, (void **)&l->items, &l->n);
}

enum coffer_err store_audit_head(struct store *s, uint64_t *seq, unsigned char hash[STORE_HASH_LEN])
{
	struct audit_head last;
	enum coffer_err rc = store_begin(s, 0);
	if (rc)
		return rc;
	rc = store_finish(s, audit_last(s, &last));
	if (rc)
		return rc;
	*seq = last.seq;
	memcpy(hash, last.hash, sizeof(last.hash));
	return COFFER_OK;
}

enum coffer_err store_audit_event_hash(struct store *s, uint64_t seq, unsigned char hash[STORE_HASH_LEN])
{
	struct store_audit_list one = { 0 };
	struct store_audit_filter f = { .after_seq = seq - 1, .limit = 1 };
	enum coffer_err rc;

	if (seq == 0)
		return COFFER_ERR_INVALID;
	rc = store_audit_list(s, &f, &one);
	if (rc)
		return rc;
	if (one.n == 1 && one.items[0].seq == seq)
		memcpy(hash, one.items[0].hash, STORE_HASH_LEN);
	else
		rc = COFFER_ERR_NOT_FOUND;
	store_audit_list_release(&one);
	return rc;
}

enum coffer_err store_audit_verify_from(struct store *s, uint64_t from_seq,
					const unsigned char from_hash[STORE_HASH_LEN], uint64_t *end_seq,
					unsigned char end_hash[STORE_HASH_LEN], uint64_t *first_broken_seq)
{
	struct store_audit_list page = { 0 };
	struct store_audit_filter f = { .limit = AUDIT_VERIFY_PAGE };
	unsigned char prev[STORE_HASH_LEN], h[STORE_HASH_LEN];
	uint64_t expect = from_seq + 1;
	enum coffer_err rc;

	if (from_seq >= INT64_MAX)
		return COFFER_ERR_INVALID;
	memcpy(prev, from_hash, sizeof(prev));
	for (;;) {
		f.after_seq = expect - 1;
		rc = store_audit_list(s, &f, &page);
		if (rc)
			return rc;
		if (page.n == 0)
			break;
		for (size_t i = 0; i < page.n; i++) {
			const struct store_audit_row *r = &page.items[i];
			/*
			 * A gap means a deleted event; a prev_hash that differs means the
			 * event before was changed and re-hashed; a hash that differs
			 * means this event's fields (or its hash) were changed.
			 */
			rc = store_audit_hash(r->seq, &r->ev, prev, h);
			if (rc == COFFER_ERR_TOO_LARGE)
				rc = COFFER_ERR_CRYPTO;
			if (rc == COFFER_OK &&
			    (r->seq != expect || sodium_memcmp(r->prev_hash, prev, sizeof(prev)) != 0 ||
			     sodium_memcmp(r->hash, h, sizeof(h)) != 0))
				rc = COFFER_ERR_CRYPTO;
			if (rc) {
				store_audit_list_release(&page);
				if (rc == COFFER_ERR_CRYPTO) {
					log_warn("audit_chain_broken", LF_I("seq", expect));
					*first_broken_seq = expect;
				}
				return rc;
			}
			memcpy(prev, r->hash, sizeof(prev));
			expect++;
		}
		store_audit_list_release(&page);
	}
	*end_seq = expect - 1;
	memcpy(end_hash, prev, sizeof(prev));
	return COFFER_OK;
}

enum coffer_err store_audit_verify(struct store *s, uint64_t *first_broken_seq)
{
	static const unsigned char genesis[STORE_HASH_LEN];
	unsigned char end_hash[STORE_HASH_LEN];
	uint64_t end_seq;
	return store_audit_verify_from(s, 0, genesis, &end_seq, end_hash, first_broken_seq);
}
