/*
 * The store's core, common to every entity: result rows, statements,
 * transactions, ids and times, URL dispatch and migrations. The backends
 * only run SQL (store_backend.h); the entities are in store_<entity>.c
 * (store_int.h).
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "monotime.h"
#include "store_int.h"

#include "banned.h"

#define SQLITE_PREFIX "sqlite:"

/* ---- result rows (used by the backends) ---- */

enum coffer_err store_rows_add(struct store_rows *r, struct store_cell **row)
{
	if (r->ncols == 0)
		return COFFER_ERR_INTERNAL;
	if (r->nrows == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		if (cap > SIZE_MAX / r->ncols / sizeof(struct store_cell))
			return COFFER_ERR_NOMEM;
		struct store_cell *cells = realloc(r->cells, cap * r->ncols * sizeof(*cells));
		if (!cells)
			return COFFER_ERR_NOMEM;
		r->cells = cells;
		r->cap = cap;
	}
	struct store_cell *first = r->cells + r->nrows * r->ncols;
	for (size_t i = 0; i < r->ncols; i++)
		first[i] = (struct store_cell){ .type = STORE_V_NULL };
	r->nrows++;
	*row = first;
	return COFFER_OK;
}

enum coffer_err store_cell_set(struct store_cell *c, enum store_vtype type, int64_t i, const void *p, size_t len)
{
	c->type = type;
	c->i = i;
	c->p = NULL;
	c->len = 0;
	if (type != STORE_V_TEXT && type != STORE_V_BLOB)
		return COFFER_OK;
	if (len == SIZE_MAX)
		return COFFER_ERR_TOO_LARGE;
	c->p = malloc(len + 1);
	if (!c->p) {
		c->type = STORE_V_NULL;
		return COFFER_ERR_NOMEM;
	}
	if (len)
		memcpy(c->p, p, len);
	c->p[len] = '\0';
	c->len = len;
	return COFFER_OK;
}

void store_rows_release(struct store_rows *r)
{
	for (size_t i = 0; i < r->nrows * r->ncols; i++)
		free(r->cells[i].p);
	free(r->cells);
	r->cells = NULL;
	r->nrows = 0;
	r->cap = 0;
	r->ncols = 0;
}

/* ---- statements ---- */

enum coffer_err store_run(struct store *s, enum store_q q, const struct store_val *p, size_t n,
			  struct store_rows *rows)
{
	if (rows)
		store_rows_release(rows);
	double t0 = monotime_s();
	enum coffer_err rc = s->be->exec(s->conn, q, p, n, rows);
	metrics_observe(&metric_store_duration, monotime_s() - t0, "query");
	/* A failed statement spoils the caller's transaction (PostgreSQL aborts it anyway). */
	if (rc && s->tx_depth && !s->tx_failed)
		s->tx_failed = rc;
	return rc;
}

enum coffer_err store_run_one(struct store *s, enum store_q q, const struct store_val *p, size_t n)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc = store_run(s, q, p, n, &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = COFFER_ERR_NOT_FOUND;
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_run_uint(struct store *s, enum store_q q, const struct store_val *p, size_t n,
			       uint64_t *out)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc = store_run(s, q, p, n, &rows);
	if (rc == COFFER_OK) {
		const struct store_cell *c = rows.nrows && rows.ncols ? &rows.cells[0] : NULL;
		*out = c && c->type == STORE_V_INT && c->i > 0 ? (uint64_t)c->i : 0;
	}
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_begin(struct store *s, int write)
{
	if (s->tx_depth) {
		s->tx_depth++;
		return COFFER_OK;
	}
	enum coffer_err rc = s->be->begin(s->conn, write);
	if (rc == COFFER_OK)
		s->tx_depth = 1;
	return rc;
}

/*
 * Inside the caller's transaction it only notes a failure: store_tx_end
 * rolls the whole transaction back.
 */
enum coffer_err store_finish(struct store *s, enum coffer_err rc)
{
	if (s->tx_depth > 1) {
		s->tx_depth--;
		if (rc && !s->tx_failed)
			s->tx_failed = rc;
		return rc;
	}
	s->tx_depth = 0;
	if (rc == COFFER_OK) {
		double t0 = monotime_s();
		rc = s->be->commit(s->conn);
		metrics_observe(&metric_store_duration, monotime_s() - t0, "commit");
		if (rc == COFFER_OK)
			return COFFER_OK;
	}
	s->be->rollback(s->conn);
	return rc;
}

int64_t store_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void store_new_id(char id[STORE_ID_SIZE])
{
	unsigned char raw[STORE_ID_BYTES];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(id, STORE_ID_SIZE, raw, sizeof(raw));
}

int store_valid_text(const char *s, size_t size)
{
	return s && strlen(s) < size;
}

/* ---- open and migrations ---- */

static enum coffer_err migrate(struct store *s)
{
	const struct store_backend *be = s->be;
	uint64_t from = 0, v;
	enum coffer_err rc = store_begin(s, 1);
	if (rc)
		return rc;
	rc = store_run(s, STORE_Q_MIGRATE_LOCK, NULL, 0, NULL);
	if (rc)
		goto out;
	rc = be->script(s->conn, STORE_MIGRATIONS_TABLE);
	if (rc)
		goto out;
	rc = store_run_uint(s, STORE_Q_MIGRATION_MAX, NULL, 0, &from);
	if (rc)
		goto out;
	if (from > store_n_migrations) {
		log_error("store_schema_newer", LF_S("backend", be->name), LF_I("schema", from),
			  LF_I("known", store_n_migrations));
		rc = COFFER_ERR_STORE;
		goto out;
	}
	for (v = from + 1; v <= store_n_migrations; v++) {
		rc = be->script(s->conn, be->migrations[v - 1]);
		if (rc)
			goto out;
		rc = store_run(s, STORE_Q_MIGRATION_INSERT, PARAMS(VI(v), VI(store_now_ms())), NULL);
		if (rc)
			goto out;
	}
out:
	rc = store_finish(s, rc);
	if (rc == COFFER_OK && from < store_n_migrations)
		log_info("store_migrated", LF_S("backend", be->name), LF_I("from", from),
			 LF_I("to", store_n_migrations));
	return rc;
}

static int has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

enum coffer_err store_open(const char *url, struct store **out)
{
	const struct store_backend *be;
	const char *target = url;
	struct store *s = NULL;
	enum coffer_err rc;

	if (!url || !*url)
		return COFFER_ERR_INVALID;
	if (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://")) {
		be = &store_pg_backend;
	} else if (has_prefix(url, SQLITE_PREFIX)) {
		be = &store_sqlite_backend;
		target = url + strlen(SQLITE_PREFIX);
	} else if (strstr(url, "://")) {
		return COFFER_ERR_INVALID;
	} else {
		be = &store_sqlite_backend;
	}
	if (!*target)
		return COFFER_ERR_INVALID;
	if (sodium_init() < 0)
		return COFFER_ERR_INTERNAL;

	s = calloc(1, sizeof(*s));
	if (!s)
		return COFFER_ERR_NOMEM;
	s->be = be;
	rc = be->open(target, &s->conn);
	if (rc)
		goto out;
	rc = migrate(s);
	if (rc)
		goto out;
	*out = s;
	s = NULL;
out:
	store_close(s);
	return rc;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->conn)
		s->be->close(s->conn);
	sodium_memzero(s->keys, sizeof(s->keys));
	free(s);
}

const char *store_backend_name(const struct store *s)
{
	return s->be->name;
}

uint64_t store_schema_version(const struct store *s)
{
	(void)s; /* both backends know the same versions */
	return store_n_migrations;
}

enum coffer_err store_ping(struct store *s)
{
	uint64_t ignored;
	return store_run_uint(s, STORE_Q_MIGRATION_MAX, NULL, 0, &ignored);
}

/* ---- the caller's transactions ---- */

enum coffer_err store_tx_begin(struct store *s)
{
	if (s->tx_depth)
		return COFFER_ERR_INTERNAL; /* not nested */
	s->tx_failed = COFFER_OK;
	enum coffer_err rc = store_begin(s, 1);
	if (rc == COFFER_OK)
		s->tx_depth = 2; /* the functions inside see a caller's transaction */
	return rc;
}

enum coffer_err store_tx_end(struct store *s, enum coffer_err rc)
{
	if (s->tx_depth != 2)
		return rc ? rc : COFFER_ERR_INTERNAL;
	if (rc == COFFER_OK)
		rc = s->tx_failed;
	s->tx_depth = 1;
	s->tx_failed = COFFER_OK;
	return store_finish(s, rc);
}


enum coffer_err store_app_lock(struct store *s, const char *app_id)
{
	if (!app_id)
		return COFFER_ERR_INVALID;
	if (s->tx_depth != 2)
		return COFFER_ERR_INTERNAL; /* only inside store_tx_begin */
	return store_lock_app(s, app_id);
}
