#include "store_pool.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "monotime.h"
#include "banned.h"

struct store_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *url;
	unsigned n;
	/* Connections not lent; a NULL slot is (re)opened on its next loan. */
	struct store *idle[STORE_POOL_MAX];
	unsigned n_idle;
	/* Row MAC keys given to every connection (store_pool_auth_key), also when reopened. */
	unsigned char keys[STORE_TABLE__COUNT][STORE_ROW_KEY_LEN];
	int has_key[STORE_TABLE__COUNT];
	/* The group committer of every connection of the pool (store_group_run). */
	struct store_group *group;
};

/* Gives s every key p holds. */
static enum coffer_err give_keys(const struct store_pool *p, struct store *s)
{
	enum coffer_err rc = COFFER_OK;
	for (int t = 0; t < STORE_TABLE__COUNT && rc == COFFER_OK; t++)
		if (p->has_key[t])
			rc = store_auth_key(s, (enum store_table)t, p->keys[t]);
	return rc;
}

enum coffer_err store_pool_auth_key(struct store_pool *p, enum store_table t,
				    const unsigned char key[STORE_ROW_KEY_LEN])
{
	enum coffer_err rc = COFFER_OK;
	if (!store_table_name(t))
		return COFFER_ERR_INVALID;
	pthread_mutex_lock(&p->mu);
	memcpy(p->keys[t], key, STORE_ROW_KEY_LEN);
	p->has_key[t] = 1;
	for (unsigned i = 0; i < p->n_idle && rc == COFFER_OK; i++)
		if (p->idle[i])
			rc = store_auth_key(p->idle[i], t, key);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

enum coffer_err store_pool_open(const char *url, unsigned n, struct store_pool **out)
{
	struct store_pool *p;
	pthread_condattr_t ca;
	enum coffer_err rc = COFFER_OK;

	if (!url || n == 0 || n > STORE_POOL_MAX)
		return COFFER_ERR_INVALID;
	p = calloc(1, sizeof(*p));
	if (!p)
		return COFFER_ERR_NOMEM;
	p->url = strdup(url);
	if (!p->url) {
		free(p);
		return COFFER_ERR_NOMEM;
	}
	if (pthread_condattr_init(&ca)) {
		free(p->url);
		free(p);
		return COFFER_ERR_NOMEM;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&p->mu, NULL)) {
		pthread_condattr_destroy(&ca);
		free(p->url);
		free(p);
		return COFFER_ERR_NOMEM;
	}
	if (pthread_cond_init(&p->cv, &ca)) {
		pthread_condattr_destroy(&ca);
		pthread_mutex_destroy(&p->mu);
		free(p->url);
		free(p);
		return COFFER_ERR_NOMEM;
	}
	pthread_condattr_destroy(&ca);
	p->n = n;
	rc = store_group_new(&p->group);
	for (; rc == COFFER_OK && p->n_idle < n; p->n_idle++) {
		rc = store_open(url, &p->idle[p->n_idle]);
		if (rc)
			break;
	}
	if (rc) {
		store_pool_close(p);
		return rc;
	}
	*out = p;
	return COFFER_OK;
}

void store_pool_close(struct store_pool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n_idle; i++)
		store_close(p->idle[i]);
	store_group_free(p->group);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	sodium_memzero(p->keys, sizeof(p->keys));
	sodium_memzero(p->url, strlen(p->url));
	free(p->url);
	free(p);
}

unsigned store_pool_size(const struct store_pool *p)
{
	return p->n;
}

enum coffer_err store_pool_acquire(struct store_pool *p, struct store **s)
{
	struct timespec deadline;
	struct store *got;
	enum coffer_err rc;

	monotime_deadline_in(&deadline, STORE_POOL_WAIT_MS);
	pthread_mutex_lock(&p->mu);
	while (p->n_idle == 0) {
		if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT && p->n_idle == 0) {
			pthread_mutex_unlock(&p->mu);
			log_warn("store_pool_exhausted", LF_I("connections", p->n));
			return COFFER_ERR_UNAVAILABLE;
		}
	}
	got = p->idle[--p->n_idle];
	pthread_mutex_unlock(&p->mu);
	if (!got) {
		rc = store_open(p->url, &got);
		if (rc == COFFER_OK) {
			rc = give_keys(p, got);
			if (rc) {
				store_close(got);
				got = NULL;
			}
		}
		if (rc) {
			log_error("store_reopen_failed", LF_S("error", coffer_err_name(rc)));
			store_pool_release(p, NULL, COFFER_OK);
			return rc;
		}
	}
	store_group_attach(got, p->group);
	*s = got;
	return COFFER_OK;
}

void store_pool_release(struct store_pool *p, struct store *s, enum coffer_err last_rc)
{
	if (s && last_rc == COFFER_ERR_UNAVAILABLE) {
		store_close(s);
		s = NULL;
	}
	pthread_mutex_lock(&p->mu);
	p->idle[p->n_idle++] = s;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

enum coffer_err store_pool_ping(struct store_pool *p)
{
	struct store *s;
	enum coffer_err rc = store_pool_acquire(p, &s);
	if (rc)
		return rc;
	rc = store_ping(s);
	store_pool_release(p, s, rc);
	return rc;
}
