/*
 * store_pool.h — a fixed set of store connections shared by the threads of
 * a daemon (a struct store is one thread's at a time; libmicrohttpd runs a
 * thread per connection).
 *
 * All connections are opened by store_pool_open, so a bad URL or a database
 * that is down fails the start, not a request. store_pool_acquire lends one
 * connection to the calling thread until store_pool_release gives it back;
 * while all are lent it waits (mutex + condition variable), at most
 * STORE_POOL_WAIT_MS, then answers COFFER_ERR_UNAVAILABLE. A connection
 * given back after it answered COFFER_ERR_UNAVAILABLE (the server went
 * away) is closed and reopened on its next loan.
 *
 * The connections share one group committer (store_group_run): the
 * writes of the threads that hold them are committed together.
 *
 * Ownership: the pool owns its connections and a copy of the URL (wiped
 * when it is closed: it may carry a password). store_pool_close must only
 * run once every connection is back.
 */
#ifndef COFFER_STORE_POOL_H
#define COFFER_STORE_POOL_H

#include "err.h"
#include "store.h"

#define STORE_POOL_MAX 64            /* connections in one pool */
#define STORE_POOL_WAIT_MS 30000     /* longest wait for a free connection */

struct store_pool;

/* Opens n (1..STORE_POOL_MAX) connections to url. */
COFFER_MUST_CHECK enum coffer_err store_pool_open(const char *url, unsigned n, struct store_pool **out);
/*
 * Gives every connection of p, now and when reopened, the MAC key of table t
 * (store_auth_key). Call it before the first loan.
 */
COFFER_MUST_CHECK enum coffer_err store_pool_auth_key(struct store_pool *p, enum store_table t,
						      const unsigned char key[STORE_ROW_KEY_LEN]);
/* Closes every connection and frees p; NULL is allowed. */
void store_pool_close(struct store_pool *p);
/* The number of connections of the pool. */
unsigned store_pool_size(const struct store_pool *p);

/*
 * Lends a connection to the calling thread. COFFER_ERR_UNAVAILABLE when
 * none comes free within STORE_POOL_WAIT_MS, or when a connection to
 * reopen cannot be opened (the error of store_open otherwise).
 */
COFFER_MUST_CHECK enum coffer_err store_pool_acquire(struct store_pool *p, struct store **s);
/*
 * Gives s back. last_rc is the last result the borrower had from it: a
 * connection that answered COFFER_ERR_UNAVAILABLE is closed and reopened
 * on its next loan. s NULL gives back an empty slot (after a failed
 * acquire nothing needs to be given back).
 */
void store_pool_release(struct store_pool *p, struct store *s, enum coffer_err last_rc);

/* A connection from the pool runs store_ping: COFFER_OK when the database answers (readiness). */
COFFER_MUST_CHECK enum coffer_err store_pool_ping(struct store_pool *p);

#endif
