/*
 * store_group.c — group commit (store.h "Group commit", docs/STORE.md).
 *
 * Leader and followers: a writer queues its change and waits. When no
 * commit is under way, the first waiter becomes the leader: it takes every
 * queued change, runs them one after the other in ONE transaction on its
 * own connection, each inside a savepoint (a change that fails is rolled
 * back to its savepoint and fails alone), commits once, and wakes the
 * writers of the batch. Changes queued meanwhile wait for the next leader,
 * so the more writers wait on a commit, the more the next one holds. No
 * thread of its own and no connection of its own: the leader is a writer
 * that holds a connection anyway.
 *
 * Backend-agnostic: the savepoints are plain SQL the backends run.
 */
#include <pthread.h>
#include <stdlib.h>

#include "log.h"
#include "store_int.h"

#include "banned.h"

struct change {
	store_change_fn fn;
	void *arg;
	enum coffer_err rc;
	int done;
	struct change *next;
};

struct store_group {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct change *head; /* queued, not taken by a leader yet */
	struct change **tail;
	int leading;         /* a leader runs a batch */
	uint64_t commits;    /* transactions committed by leaders */
	uint64_t changes;    /* changes the leaders ran (committed, or failed alone) */
};

enum coffer_err store_group_new(struct store_group **out)
{
	struct store_group *g = calloc(1, sizeof(*g));
	if (!g)
		return COFFER_ERR_NOMEM;
	if (pthread_mutex_init(&g->mu, NULL)) {
		free(g);
		return COFFER_ERR_NOMEM;
	}
	if (pthread_cond_init(&g->cv, NULL)) {
		pthread_mutex_destroy(&g->mu);
		free(g);
		return COFFER_ERR_NOMEM;
	}
	g->tail = &g->head;
	*out = g;
	return COFFER_OK;
}

void store_group_free(struct store_group *g)
{
	if (!g)
		return;
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

void store_group_attach(struct store *s, struct store_group *g)
{
	s->group = g;
}

void store_group_stats(struct store_group *g, struct store_group_stats *out)
{
	pthread_mutex_lock(&g->mu);
	out->commits = g->commits;
	out->changes = g->changes;
	out->queued = 0;
	for (const struct change *c = g->head; c; c = c->next)
		out->queued++;
	pthread_mutex_unlock(&g->mu);
}

/* One change in a transaction of its own (store_tx_begin: the store calls inside join it). */
static enum coffer_err run_alone(struct store *s, store_change_fn fn, void *arg)
{
	enum coffer_err rc = store_tx_begin(s);
	if (rc)
		return rc;
	return store_tx_end(s, fn(s, arg));
}

/*
 * One change of a batch inside its savepoint: its outcome. COFFER_OK in
 * *broken unless a savepoint statement failed (the transaction is lost).
 */
static enum coffer_err run_saved(struct store *s, struct change *c, enum coffer_err *broken)
{
	enum coffer_err rc = s->be->script(s->conn, "SAVEPOINT change");
	if (rc) {
		*broken = rc;
		return rc;
	}
	s->tx_failed = COFFER_OK;
	rc = c->fn(s, c->arg);
	if (rc == COFFER_OK)
		rc = s->tx_failed; /* a store call inside failed, and its caller went on */
	if (rc) {
		enum coffer_err undo = s->be->script(s->conn, "ROLLBACK TO SAVEPOINT change");
		if (undo)
			*broken = undo;
	}
	s->tx_failed = COFFER_OK;
	if (!*broken) {
		enum coffer_err rel = s->be->script(s->conn, "RELEASE SAVEPOINT change");
		if (rel)
			*broken = rel;
	}
	return rc;
}

/*
 * The leader's work: every change of batch in one transaction, one commit.
 * When the transaction itself fails (a begin, a savepoint or the commit),
 * each change runs again alone, so none fails for another's sake.
 */
static void run_batch(struct store *s, struct store_group *g, struct change *batch)
{
	enum coffer_err rc, broken = COFFER_OK;
	size_t n = 0;

	if (!batch->next) {
		/* A lone change needs no savepoint: the transaction is its own (no statements added to it). */
		batch->rc = run_alone(s, batch->fn, batch->arg);
		pthread_mutex_lock(&g->mu);
		g->commits += batch->rc == COFFER_OK;
		g->changes++;
		pthread_mutex_unlock(&g->mu);
		return;
	}
	rc = store_tx_begin(s);
	for (struct change *c = batch; c && !rc && !broken; c = c->next) {
		c->rc = run_saved(s, c, &broken);
		n++;
	}
	if (!rc) {
		rc = store_tx_end(s, broken);
		if (rc == COFFER_ERR_UNAVAILABLE && !broken) {
			/*
			 * The connection went during the commit: whether it
			 * committed is unknown, and running the changes again
			 * could apply them twice. Each writer hears what a lone
			 * transaction would have said.
			 */
			log_warn("store_group_commit_unknown", LF_I("changes", n));
			for (struct change *c = batch; c; c = c->next)
				c->rc = rc;
			return;
		}
	}
	if (rc) {
		if (n > 1 || broken)
			log_warn("store_group_retry", LF_S("error", coffer_err_name(rc)), LF_I("changes", n));
		for (struct change *c = batch; c; c = c->next)
			c->rc = run_alone(s, c->fn, c->arg);
		return;
	}
	pthread_mutex_lock(&g->mu);
	g->commits++;
	g->changes += n;
	pthread_mutex_unlock(&g->mu);
}

enum coffer_err store_group_run(struct store *s, store_change_fn fn, void *arg)
{
	struct store_group *g = s->group;
	struct change me = { .fn = fn, .arg = arg };

	if (!fn)
		return COFFER_ERR_INVALID;
	if (s->tx_depth) /* inside the caller's transaction: the change is part of it */
		return fn(s, arg);
	if (!g)
		return run_alone(s, fn, arg);

	pthread_mutex_lock(&g->mu);
	*g->tail = &me;
	g->tail = &me.next;
	while (!me.done) {
		if (g->leading) {
			pthread_cond_wait(&g->cv, &g->mu);
			continue;
		}
		/* Lead: take everything queued (this change too, unless a leader ran it already). */
		struct change *batch = g->head;
		g->head = NULL;
		g->tail = &g->head;
		g->leading = 1;
		pthread_mutex_unlock(&g->mu);
		run_batch(s, g, batch);
		pthread_mutex_lock(&g->mu);
		for (struct change *c = batch, *next; c; c = next) {
			next = c->next; /* c belongs to its writer once done is set */
			c->done = 1;
		}
		g->leading = 0;
		pthread_cond_broadcast(&g->cv);
	}
	pthread_mutex_unlock(&g->mu);
	return me.rc;
}

/* store_group_audit_append's change. */
struct audit_change {
	const struct store_audit_event *ev;
	uint64_t *seq;
};

static enum coffer_err audit_change(struct store *s, void *arg)
{
	struct audit_change *a = arg;
	return store_audit_append(s, a->ev, a->seq);
}

enum coffer_err store_group_audit_append(struct store *s, const struct store_audit_event *ev, uint64_t *seq)
{
	struct audit_change a = { ev, seq };
	return store_group_run(s, audit_change, &a);
}
