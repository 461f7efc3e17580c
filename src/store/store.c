/*
 * The store's logic, common to both backends: URL dispatch, migrations,
 * transactions, ids, times, the audit hash chain. The backends only run
 * their SQL (store_backend.h).
 */
#include "store.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "store_backend.h"

#include "banned.h"

#define SQLITE_PREFIX "sqlite:"
#define AUDIT_DOMAIN "coffer-audit-v1"
#define AUDIT_VERIFY_PAGE 500

struct store {
	const struct store_backend *be;
	void *conn;
	int tx_depth;   /* open begin()s: 1 = a function's own transaction, 2 = one inside store_tx_begin */
	enum coffer_err tx_failed; /* the first failure inside the caller's transaction */
};

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

static const struct store_cell *cell(const struct store_rows *r, size_t row, size_t col)
{
	return &r->cells[row * r->ncols + col];
}

static int64_t cell_int(const struct store_rows *r, size_t row, size_t col)
{
	const struct store_cell *c = cell(r, row, col);
	return c->type == STORE_V_INT ? c->i : 0;
}

static uint64_t cell_uint(const struct store_rows *r, size_t row, size_t col)
{
	int64_t v = cell_int(r, row, col);
	return v < 0 ? 0 : (uint64_t)v;
}

/* Copies a text cell (NULL reads as "") into a fixed array; a longer one is a store error. */
static enum coffer_err cell_text(const struct store_rows *r, size_t row, size_t col, char *dst, size_t size)
{
	const struct store_cell *c = cell(r, row, col);
	if (c->type == STORE_V_NULL) {
		dst[0] = '\0';
		return COFFER_OK;
	}
	if ((c->type != STORE_V_TEXT && c->type != STORE_V_BLOB) || c->len >= size ||
	    memchr(c->p, '\0', c->len))
		return COFFER_ERR_STORE;
	memcpy(dst, c->p, c->len + 1);
	return COFFER_OK;
}

/* Copies a blob cell of at most size bytes. */
static enum coffer_err cell_blob(const struct store_rows *r, size_t row, size_t col, unsigned char *dst,
				 size_t size, size_t *len)
{
	const struct store_cell *c = cell(r, row, col);
	if ((c->type != STORE_V_BLOB && c->type != STORE_V_TEXT) || c->len > size)
		return COFFER_ERR_STORE;
	if (c->len)
		memcpy(dst, c->p, c->len);
	*len = c->len;
	return COFFER_OK;
}

/* Takes a text or blob cell's bytes (NULL reads as ""). */
static enum coffer_err cell_take(struct store_rows *r, size_t row, size_t col, char **dst, size_t *len)
{
	struct store_cell *c = &r->cells[row * r->ncols + col];
	if (c->type == STORE_V_NULL) {
		*dst = calloc(1, 1);
		if (!*dst)
			return COFFER_ERR_NOMEM;
		if (len)
			*len = 0;
		return COFFER_OK;
	}
	if (c->type != STORE_V_TEXT && c->type != STORE_V_BLOB)
		return COFFER_ERR_STORE;
	*dst = (char *)c->p;
	if (len)
		*len = c->len;
	c->p = NULL;
	c->type = STORE_V_NULL;
	return COFFER_OK;
}

/* ---- parameters and statements ---- */

#define VI(x) ((struct store_val){ .type = STORE_V_INT, .i = (int64_t)(x) })
#define VT(s) ((struct store_val){ .type = STORE_V_TEXT, .p = (s), .len = strlen(s) })
#define VB(b, n) ((struct store_val){ .type = STORE_V_BLOB, .p = (b), .len = (n) })
#define VNULL ((struct store_val){ .type = STORE_V_NULL })
#define PARAMS(...)                                                                                     \
	((const struct store_val[]){ __VA_ARGS__ }),                                                    \
		(sizeof((const struct store_val[]){ __VA_ARGS__ }) / sizeof(struct store_val))

static enum coffer_err run(struct store *s, enum store_q q, const struct store_val *p, size_t n,
			   struct store_rows *rows)
{
	if (rows)
		store_rows_release(rows);
	enum coffer_err rc = s->be->exec(s->conn, q, p, n, rows);
	/* A failed statement spoils the caller's transaction (PostgreSQL aborts it anyway). */
	if (rc && s->tx_depth && !s->tx_failed)
		s->tx_failed = rc;
	return rc;
}

/* Opens a transaction, or joins the caller's (store_tx_begin). */
static enum coffer_err begin(struct store *s, int write)
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
 * Commits when rc is COFFER_OK, rolls back otherwise; returns the outcome.
 * Inside the caller's transaction it only notes a failure: store_tx_end
 * rolls the whole transaction back.
 */
static enum coffer_err finish(struct store *s, enum coffer_err rc)
{
	if (s->tx_depth > 1) {
		s->tx_depth--;
		if (rc && !s->tx_failed)
			s->tx_failed = rc;
		return rc;
	}
	s->tx_depth = 0;
	if (rc == COFFER_OK) {
		rc = s->be->commit(s->conn);
		if (rc == COFFER_OK)
			return COFFER_OK;
	}
	s->be->rollback(s->conn);
	return rc;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void new_id(char id[STORE_ID_SIZE])
{
	unsigned char raw[STORE_ID_BYTES];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(id, STORE_ID_SIZE, raw, sizeof(raw));
}

static int valid_text(const char *s, size_t size)
{
	return s && strlen(s) < size;
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

/* ---- open and migrations ---- */

static enum coffer_err migrate(struct store *s)
{
	const struct store_backend *be = s->be;
	struct store_rows rows = { 0 };
	uint64_t from = 0, v;
	enum coffer_err rc = begin(s, 1);
	if (rc)
		return rc;
	rc = run(s, STORE_Q_MIGRATE_LOCK, NULL, 0, NULL);
	if (rc)
		goto out;
	rc = be->script(s->conn, STORE_MIGRATIONS_TABLE);
	if (rc)
		goto out;
	rc = run(s, STORE_Q_MIGRATION_MAX, NULL, 0, &rows);
	if (rc)
		goto out;
	from = rows.nrows ? cell_uint(&rows, 0, 0) : 0;
	if (from > be->n_migrations) {
		log_error("store_schema_newer", LF_S("backend", be->name), LF_I("schema", from),
			  LF_I("known", be->n_migrations));
		rc = COFFER_ERR_STORE;
		goto out;
	}
	for (v = from + 1; v <= be->n_migrations; v++) {
		rc = be->script(s->conn, be->migrations[v - 1]);
		if (rc)
			goto out;
		rc = run(s, STORE_Q_MIGRATION_INSERT, PARAMS(VI(v), VI(now_ms())), NULL);
		if (rc)
			goto out;
	}
out:
	store_rows_release(&rows);
	rc = finish(s, rc);
	if (rc == COFFER_OK && from < be->n_migrations)
		log_info("store_migrated", LF_S("backend", be->name), LF_I("from", from),
			 LF_I("to", be->n_migrations));
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
	free(s);
}

const char *store_backend_name(const struct store *s)
{
	return s->be->name;
}

uint64_t store_schema_version(const struct store *s)
{
	return s->be->n_migrations;
}

void store_new_id(char id[STORE_ID_SIZE])
{
	new_id(id);
}

/* ---- the caller's transactions ---- */

enum coffer_err store_tx_begin(struct store *s)
{
	if (s->tx_depth)
		return COFFER_ERR_INTERNAL; /* not nested */
	s->tx_failed = COFFER_OK;
	enum coffer_err rc = begin(s, 1);
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
	return finish(s, rc);
}

/* ---- orgs ---- */

static enum coffer_err org_from_rows(const struct store_rows *r, struct store_org *o)
{
	enum coffer_err rc;
	if (r->nrows == 0)
		return COFFER_ERR_NOT_FOUND;
	if ((rc = cell_text(r, 0, 0, o->id, sizeof(o->id))) || (rc = cell_text(r, 0, 1, o->name, sizeof(o->name))))
		return rc;
	o->created_at = cell_int(r, 0, 2);
	return COFFER_OK;
}

enum coffer_err store_org_create(struct store *s, const char *name, struct store_org *out)
{
	struct store_org o = { 0 };
	enum coffer_err rc;
	if (!name)
		return COFFER_ERR_INVALID;
	if (!valid_text(name, sizeof(o.name)))
		return COFFER_ERR_TOO_LARGE;
	new_id(o.id);
	memcpy(o.name, name, strlen(name) + 1);
	o.created_at = now_ms();
	rc = run(s, STORE_Q_ORG_INSERT, PARAMS(VT(o.id), VT(o.name), VI(o.created_at)), NULL);
	if (rc)
		return rc;
	*out = o;
	return COFFER_OK;
}

static enum coffer_err org_get(struct store *s, enum store_q q, const char *key, struct store_org *out)
{
	struct store_rows rows = { 0 };
	struct store_org o;
	enum coffer_err rc;
	if (!key)
		return COFFER_ERR_INVALID;
	rc = run(s, q, PARAMS(VT(key)), &rows);
	if (rc)
		goto out;
	rc = org_from_rows(&rows, &o);
	if (rc)
		goto out;
	*out = o;
out:
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_org_get_by_name(struct store *s, const char *name, struct store_org *out)
{
	return org_get(s, STORE_Q_ORG_BY_NAME, name, out);
}

enum coffer_err store_org_get(struct store *s, const char *id, struct store_org *out)
{
	return org_get(s, STORE_Q_ORG_BY_ID, id, out);
}

/* ---- tokens ---- */

/* Reads a row of STORE_TOKEN_COLS. */
static enum coffer_err token_from_row(const struct store_rows *r, size_t i, struct store_token *t)
{
	enum coffer_err rc;
	size_t hash_len = 0;
	memset(t, 0, sizeof(*t));
	if ((rc = cell_text(r, i, 0, t->id, sizeof(t->id))) ||
	    (rc = cell_text(r, i, 1, t->org_id, sizeof(t->org_id))) ||
	    (rc = cell_blob(r, i, 2, t->hash, sizeof(t->hash), &hash_len)) ||
	    (rc = cell_text(r, i, 3, t->role, sizeof(t->role))) ||
	    (rc = cell_text(r, i, 4, t->app_id, sizeof(t->app_id))) ||
	    (rc = cell_text(r, i, 8, t->description, sizeof(t->description))))
		return rc;
	if (hash_len != STORE_HASH_LEN)
		return COFFER_ERR_STORE;
	t->expires_at = cell_int(r, i, 5);
	t->revoked_at = cell_int(r, i, 6);
	t->created_at = cell_int(r, i, 7);
	return COFFER_OK;
}

enum coffer_err store_token_insert(struct store *s, const struct store_token *in, struct store_token *out)
{
	struct store_token t;
	enum coffer_err rc;
	if (!valid_text(in->org_id, sizeof(t.org_id)) || !valid_text(in->role, sizeof(t.role)) ||
	    !valid_text(in->app_id, sizeof(t.app_id)) || !valid_text(in->description, sizeof(t.description)) ||
	    in->expires_at < 0)
		return COFFER_ERR_INVALID;
	t = *in;
	new_id(t.id);
	t.revoked_at = 0;
	t.created_at = now_ms();
	rc = run(s, STORE_Q_TOKEN_INSERT,
		 PARAMS(VT(t.id), VT(t.org_id), VB(t.hash, sizeof(t.hash)), VT(t.role),
			t.app_id[0] ? VT(t.app_id) : VNULL, t.expires_at ? VI(t.expires_at) : VNULL,
			VI(t.created_at), VT(t.description)),
		 NULL);
	if (rc)
		return rc;
	*out = t;
	return COFFER_OK;
}

enum coffer_err store_token_get_by_hash(struct store *s, const unsigned char hash[STORE_HASH_LEN],
					struct store_token *out)
{
	struct store_rows rows = { 0 };
	struct store_token t;
	enum coffer_err rc = run(s, STORE_Q_TOKEN_BY_HASH, PARAMS(VB(hash, STORE_HASH_LEN)), &rows);
	if (rc)
		goto out;
	if (rows.nrows == 0) {
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	rc = token_from_row(&rows, 0, &t);
	if (rc)
		goto out;
	*out = t;
out:
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_token_list(struct store *s, const char *org_id, struct store_token_list *out)
{
	struct store_rows rows = { 0 };
	struct store_token_list l = { 0 };
	enum coffer_err rc;
	if (!org_id)
		return COFFER_ERR_INVALID;
	rc = run(s, STORE_Q_TOKEN_LIST, PARAMS(VT(org_id)), &rows);
	if (rc)
		goto out;
	if (rows.nrows) {
		l.items = calloc(rows.nrows, sizeof(*l.items));
		if (!l.items) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	for (; l.n < rows.nrows; l.n++) {
		rc = token_from_row(&rows, l.n, &l.items[l.n]);
		if (rc)
			goto out;
	}
	*out = l;
	l = (struct store_token_list){ 0 };
out:
	store_token_list_release(&l);
	store_rows_release(&rows);
	return rc;
}

void store_token_list_release(struct store_token_list *l)
{
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

enum coffer_err store_token_revoke(struct store *s, const char *org_id, const char *token_id)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc;
	if (!org_id || !token_id)
		return COFFER_ERR_INVALID;
	rc = run(s, STORE_Q_TOKEN_REVOKE, PARAMS(VT(token_id), VT(org_id), VI(now_ms())), &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = COFFER_ERR_NOT_FOUND;
	store_rows_release(&rows);
	return rc;
}

/* ---- apps ---- */

/* Reads a row of STORE_APP_COLS. */
static enum coffer_err app_from_row(const struct store_rows *r, size_t i, struct store_app *a)
{
	enum coffer_err rc;
	memset(a, 0, sizeof(*a));
	if ((rc = cell_text(r, i, 0, a->id, sizeof(a->id))) ||
	    (rc = cell_text(r, i, 1, a->org_id, sizeof(a->org_id))) ||
	    (rc = cell_text(r, i, 2, a->name, sizeof(a->name))))
		return rc;
	a->created_at = cell_int(r, i, 3);
	a->secrets_head = cell_uint(r, i, 4);
	a->deployed_version = cell_uint(r, i, 5);
	a->current_release = cell_uint(r, i, 6);
	a->grace_ms = cell_int(r, i, 7);
	return COFFER_OK;
}

enum coffer_err store_app_create(struct store *s, const char *org_id, const char *name, int64_t grace_ms,
				 struct store_app *out)
{
	struct store_app a = { 0 };
	enum coffer_err rc;
	if (!org_id || !name || grace_ms < 0)
		return COFFER_ERR_INVALID;
	if (!valid_text(org_id, sizeof(a.org_id)) || !valid_text(name, sizeof(a.name)))
		return COFFER_ERR_TOO_LARGE;
	new_id(a.id);
	memcpy(a.org_id, org_id, strlen(org_id) + 1);
	memcpy(a.name, name, strlen(name) + 1);
	a.created_at = now_ms();
	a.grace_ms = grace_ms ? grace_ms : STORE_GRACE_MS_DEFAULT;
	rc = run(s, STORE_Q_APP_INSERT, PARAMS(VT(a.id), VT(a.org_id), VT(a.name), VI(a.created_at), VI(a.grace_ms)),
		 NULL);
	if (rc)
		return rc;
	*out = a;
	return COFFER_OK;
}

static enum coffer_err app_get(struct store *s, enum store_q q, const char *key, struct store_app *out)
{
	struct store_rows rows = { 0 };
	struct store_app a;
	enum coffer_err rc;
	if (!key)
		return COFFER_ERR_INVALID;
	rc = run(s, q, PARAMS(VT(key)), &rows);
	if (rc)
		goto out;
	if (rows.nrows == 0) {
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	rc = app_from_row(&rows, 0, &a);
	if (rc)
		goto out;
	*out = a;
out:
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_app_get_by_name(struct store *s, const char *name, struct store_app *out)
{
	return app_get(s, STORE_Q_APP_BY_NAME, name, out);
}

enum coffer_err store_app_get(struct store *s, const char *id, struct store_app *out)
{
	return app_get(s, STORE_Q_APP_BY_ID, id, out);
}

enum coffer_err store_app_list(struct store *s, const char *org_id, struct store_app_list *out)
{
	struct store_rows rows = { 0 };
	struct store_app_list l = { 0 };
	enum coffer_err rc;
	if (!org_id)
		return COFFER_ERR_INVALID;
	rc = run(s, STORE_Q_APP_LIST, PARAMS(VT(org_id)), &rows);
	if (rc)
		goto out;
	if (rows.nrows) {
		l.items = calloc(rows.nrows, sizeof(*l.items));
		if (!l.items) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	for (; l.n < rows.nrows; l.n++) {
		rc = app_from_row(&rows, l.n, &l.items[l.n]);
		if (rc)
			goto out;
	}
	*out = l;
	l = (struct store_app_list){ 0 };
out:
	store_app_list_release(&l);
	store_rows_release(&rows);
	return rc;
}

void store_app_list_release(struct store_app_list *l)
{
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

enum coffer_err store_app_destroy(struct store *s, const char *app_id)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc;
	if (!app_id)
		return COFFER_ERR_INVALID;
	rc = begin(s, 1);
	if (rc)
		return rc;
	rc = run(s, STORE_Q_APP_LOCK, PARAMS(VT(app_id)), &rows);
	if (rc)
		goto out;
	if (rows.nrows == 0) {
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	/* The schema's ON DELETE CASCADE removes everything that hangs from the app. */
	rc = run(s, STORE_Q_APP_DELETE, PARAMS(VT(app_id)), &rows);
	if (rc == COFFER_OK && rows.nrows != 1)
		rc = COFFER_ERR_NOT_FOUND;
out:
	store_rows_release(&rows);
	return finish(s, rc);
}

/* ---- app keys ---- */

enum coffer_err store_app_key_put(struct store *s, const char *app_id, uint64_t version,
				  const unsigned char *public_key, size_t public_key_len,
				  const unsigned char *wrapped_private, size_t wrapped_private_len)
{
	if (!app_id || !public_key || !wrapped_private || version == 0 || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	if (public_key_len > STORE_KEY_BLOB_MAX || wrapped_private_len > STORE_KEY_BLOB_MAX)
		return COFFER_ERR_TOO_LARGE;
	return run(s, STORE_Q_KEY_INSERT,
		   PARAMS(VT(app_id), VI(version), VB(public_key, public_key_len),
			  VB(wrapped_private, wrapped_private_len), VI(now_ms())),
		   NULL);
}

enum coffer_err store_app_key_get(struct store *s, const char *app_id, uint64_t version, struct store_app_key *out)
{
	struct store_rows rows = { 0 };
	struct store_app_key k = { 0 };
	enum coffer_err rc;
	if (!app_id || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	if (version)
		rc = run(s, STORE_Q_KEY_GET, PARAMS(VT(app_id), VI(version)), &rows);
	else
		rc = run(s, STORE_Q_KEY_LATEST, PARAMS(VT(app_id)), &rows);
	if (rc)
		goto out;
	if (rows.nrows == 0) {
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	if ((rc = cell_text(&rows, 0, 0, k.app_id, sizeof(k.app_id))) ||
	    (rc = cell_blob(&rows, 0, 2, k.public_key, sizeof(k.public_key), &k.public_key_len)) ||
	    (rc = cell_blob(&rows, 0, 3, k.wrapped_private, sizeof(k.wrapped_private), &k.wrapped_private_len)))
		goto out;
	k.version = cell_uint(&rows, 0, 1);
	k.created_at = cell_int(&rows, 0, 4);
	*out = k;
out:
	store_rows_release(&rows);
	return rc;
}

/* ---- secrets ---- */

static enum coffer_err check_change(const struct store_secret_change *c)
{
	if (!c->name)
		return COFFER_ERR_INVALID;
	if (strlen(c->name) >= STORE_NAME_SIZE)
		return COFFER_ERR_TOO_LARGE;
	if (c->remove)
		return COFFER_OK;
	if (!c->digest || (!c->ciphertext && c->ciphertext_len) || c->key_version > INT64_MAX)
		return COFFER_ERR_INVALID;
	if (strlen(c->digest) >= STORE_DIGEST_SIZE || c->ciphertext_len > STORE_CIPHERTEXT_MAX)
		return COFFER_ERR_TOO_LARGE;
	return COFFER_OK;
}

/* Checks the new version against the caller's limits, inside the transaction. */
static enum coffer_err check_limits(struct store *s, const char *app_id, uint64_t version,
				    const struct store_secret_limits *lim)
{
	struct store_rows rows = { 0 };
	uint64_t count, bytes, overhead;
	enum coffer_err rc;
	if (!lim || (!lim->max_count && !lim->max_bytes))
		return COFFER_OK;
	rc = run(s, STORE_Q_ENTRY_STATS, PARAMS(VT(app_id), VI(version)), &rows);
	if (rc)
		goto out;
	count = rows.nrows ? cell_uint(&rows, 0, 0) : 0;
	bytes = rows.nrows ? cell_uint(&rows, 0, 1) : 0;
	overhead = lim->per_value_overhead && count > UINT64_MAX / lim->per_value_overhead
			   ? UINT64_MAX
			   : count * lim->per_value_overhead;
	bytes = bytes > overhead ? bytes - overhead : 0;
	if ((lim->max_count && count > lim->max_count) || (lim->max_bytes && bytes > lim->max_bytes))
		rc = COFFER_ERR_TOO_LARGE;
out:
	store_rows_release(&rows);
	return rc;
}

/* Applies one element of a change to the new version's mapping. */
static enum coffer_err apply_change(struct store *s, const char *app_id, uint64_t version,
				    const struct store_secret_change *c, int64_t now)
{
	char value_id[STORE_ID_SIZE];
	static const unsigned char empty[1];
	if (c->remove)
		return run(s, STORE_Q_ENTRY_DELETE, PARAMS(VT(app_id), VI(version), VT(c->name)), NULL);
	new_id(value_id);
	enum coffer_err rc = run(s, STORE_Q_VALUE_INSERT,
				 PARAMS(VT(value_id), VT(app_id), VT(c->name),
					VB(c->ciphertext ? c->ciphertext : empty, c->ciphertext_len), VT(c->digest),
					VI(c->key_version), VI(now)),
				 NULL);
	if (rc)
		return rc;
	return run(s, STORE_Q_ENTRY_UPSERT, PARAMS(VT(app_id), VI(version), VT(c->name), VT(value_id), VI(now)),
		   NULL);
}

enum coffer_err store_secrets_put(struct store *s, const char *app_id, const struct store_secret_change *changes,
				  size_t n, const char *actor, const char *status,
				  const struct store_secret_limits *limits, uint64_t *new_version)
{
	struct store_rows rows = { 0 };
	uint64_t head, version = 0;
	int64_t now = now_ms();
	enum coffer_err rc;

	if (!app_id || !actor || !status || !*status || n == 0 || !changes)
		return COFFER_ERR_INVALID;
	if (strlen(actor) >= STORE_ACTOR_SIZE || strlen(status) >= STORE_STATUS_SIZE)
		return COFFER_ERR_TOO_LARGE;
	for (size_t i = 0; i < n; i++) {
		rc = check_change(&changes[i]);
		if (rc)
			return rc;
	}

	rc = begin(s, 1);
	if (rc)
		return rc;
	/* The app row lock serialises every writer of this app's secrets. */
	rc = run(s, STORE_Q_APP_LOCK, PARAMS(VT(app_id)), &rows);
	if (rc)
		goto out;
	if (rows.nrows == 0) {
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	head = cell_uint(&rows, 0, 0);
	rc = run(s, STORE_Q_VERSION_MAX, PARAMS(VT(app_id)), &rows);
	if (rc)
		goto out;
	version = (rows.nrows ? cell_uint(&rows, 0, 0) : 0) + 1;
	rc = run(s, STORE_Q_VERSION_INSERT, PARAMS(VT(app_id), VI(version), VI(now), VT(actor), VT(status)), NULL);
	if (rc)
		goto out;
	if (head) {
		rc = run(s, STORE_Q_ENTRY_COPY, PARAMS(VT(app_id), VI(head), VI(version)), NULL);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rc = apply_change(s, app_id, version, &changes[i], now);
		if (rc)
			goto out;
	}
	rc = check_limits(s, app_id, version, limits);
	if (rc)
		goto out;
	rc = run(s, STORE_Q_APP_SET_HEAD, PARAMS(VT(app_id), VI(version)), NULL);
out:
	store_rows_release(&rows);
	rc = finish(s, rc);
	if (rc == COFFER_OK)
		*new_version = version;
	return rc;
}

/* The app's head, or NOT_FOUND for an unknown app. */
static enum coffer_err read_head(struct store *s, const char *app_id, uint64_t *head)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc = run(s, STORE_Q_APP_BY_ID, PARAMS(VT(app_id)), &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = COFFER_ERR_NOT_FOUND;
	if (rc == COFFER_OK)
		*head = cell_uint(&rows, 0, 4);
	store_rows_release(&rows);
	return rc;
}

/* Reads a row of STORE_VERSION_COLS. */
static enum coffer_err version_from_row(const struct store_rows *r, size_t i, struct store_secret_version *v)
{
	enum coffer_err rc;
	memset(v, 0, sizeof(*v));
	if ((rc = cell_text(r, i, 2, v->actor, sizeof(v->actor))) ||
	    (rc = cell_text(r, i, 3, v->status, sizeof(v->status))))
		return rc;
	v->version = cell_uint(r, i, 0);
	v->created_at = cell_int(r, i, 1);
	return COFFER_OK;
}

static enum coffer_err secret_from_row(struct store_rows *r, size_t i, struct store_secret *e)
{
	enum coffer_err rc;
	char *ct = NULL;
	memset(e, 0, sizeof(*e));
	if ((rc = cell_text(r, i, 0, e->name, sizeof(e->name))) ||
	    (rc = cell_text(r, i, 2, e->digest, sizeof(e->digest))) ||
	    (rc = cell_take(r, i, 1, &ct, &e->ciphertext_len)))
		return rc;
	e->ciphertext = (unsigned char *)ct;
	e->key_version = cell_uint(r, i, 3);
	e->created_at = cell_int(r, i, 4);
	e->updated_at = cell_int(r, i, 5);
	return COFFER_OK;
}

enum coffer_err store_secrets_get(struct store *s, const char *app_id, uint64_t version,
				  struct store_secret_list *out)
{
	struct store_rows rows = { 0 };
	struct store_secret_list l = { 0 };
	struct store_secret_version v;
	enum coffer_err rc;

	if (!app_id || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	rc = begin(s, 0);
	if (rc)
		return rc;
	if (version == 0) {
		rc = read_head(s, app_id, &version);
		if (rc || version == 0)
			goto out;
	}
	rc = run(s, STORE_Q_VERSION_GET, PARAMS(VT(app_id), VI(version)), &rows);
	if (rc)
		goto out;
	if (rows.nrows == 0) {
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	rc = version_from_row(&rows, 0, &v);
	if (rc)
		goto out;
	l.version = v.version;
	l.created_at = v.created_at;
	memcpy(l.actor, v.actor, sizeof(l.actor));
	memcpy(l.status, v.status, sizeof(l.status));
	rc = run(s, STORE_Q_ENTRY_LIST, PARAMS(VT(app_id), VI(version)), &rows);
	if (rc)
		goto out;
	if (rows.nrows) {
		l.items = calloc(rows.nrows, sizeof(*l.items));
		if (!l.items) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < rows.nrows; i++) {
		rc = secret_from_row(&rows, i, &l.items[i]);
		l.n = i + 1; /* so that release frees a partly read item */
		if (rc)
			goto out;
	}
out:
	store_rows_release(&rows);
	rc = finish(s, rc);
	if (rc == COFFER_OK) {
		*out = l;
		l = (struct store_secret_list){ 0 };
	}
	store_secret_list_release(&l);
	return rc;
}

void store_secret_list_release(struct store_secret_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].ciphertext);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

enum coffer_err store_secrets_history(struct store *s, const char *app_id, struct store_secret_version_list *out)
{
	struct store_rows rows = { 0 };
	struct store_secret_version_list l = { 0 };
	uint64_t head;
	enum coffer_err rc;

	if (!app_id)
		return COFFER_ERR_INVALID;
	rc = begin(s, 0);
	if (rc)
		return rc;
	rc = read_head(s, app_id, &head);
	if (rc)
		goto out;
	rc = run(s, STORE_Q_VERSION_LIST, PARAMS(VT(app_id)), &rows);
	if (rc)
		goto out;
	if (rows.nrows) {
		l.items = calloc(rows.nrows, sizeof(*l.items));
		if (!l.items) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	for (; l.n < rows.nrows; l.n++) {
		rc = version_from_row(&rows, l.n, &l.items[l.n]);
		if (rc)
			goto out;
	}
out:
	store_rows_release(&rows);
	rc = finish(s, rc);
	if (rc == COFFER_OK) {
		*out = l;
		l = (struct store_secret_version_list){ 0 };
	}
	store_secret_version_list_release(&l);
	return rc;
}

void store_secret_version_list_release(struct store_secret_version_list *l)
{
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

enum coffer_err store_secrets_stats(struct store *s, const char *app_id, uint64_t version, uint64_t *count,
				    uint64_t *bytes)
{
	struct store_rows rows = { 0 };
	uint64_t c = 0, b = 0;
	enum coffer_err rc;

	if (!app_id || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	rc = begin(s, 0);
	if (rc)
		return rc;
	if (version == 0) {
		rc = read_head(s, app_id, &version);
		if (rc || version == 0)
			goto out;
	}
	rc = run(s, STORE_Q_VERSION_GET, PARAMS(VT(app_id), VI(version)), &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = COFFER_ERR_NOT_FOUND;
	if (rc)
		goto out;
	rc = run(s, STORE_Q_ENTRY_STATS, PARAMS(VT(app_id), VI(version)), &rows);
	if (rc)
		goto out;
	if (rows.nrows) {
		c = cell_uint(&rows, 0, 0);
		b = cell_uint(&rows, 0, 1);
	}
out:
	store_rows_release(&rows);
	rc = finish(s, rc);
	if (rc == COFFER_OK) {
		*count = c;
		*bytes = b;
	}
	return rc;
}

enum coffer_err store_secrets_set_head(struct store *s, const char *app_id, uint64_t version)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc;

	if (!app_id || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	rc = begin(s, 1);
	if (rc)
		return rc;
	rc = run(s, STORE_Q_APP_LOCK, PARAMS(VT(app_id)), &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = COFFER_ERR_NOT_FOUND;
	if (rc)
		goto out;
	if (version) {
		rc = run(s, STORE_Q_VERSION_GET, PARAMS(VT(app_id), VI(version)), &rows);
		if (rc == COFFER_OK && rows.nrows == 0)
			rc = COFFER_ERR_NOT_FOUND;
		if (rc)
			goto out;
	}
	rc = run(s, STORE_Q_APP_SET_HEAD, PARAMS(VT(app_id), VI(version)), NULL);
out:
	store_rows_release(&rows);
	return finish(s, rc);
}

enum coffer_err store_secrets_set_status(struct store *s, const char *app_id, uint64_t version, const char *status)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc;

	if (!app_id || !status || !*status || version == 0 || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	if (strlen(status) >= STORE_STATUS_SIZE)
		return COFFER_ERR_TOO_LARGE;
	rc = run(s, STORE_Q_VERSION_SET_STATUS, PARAMS(VT(app_id), VI(version), VT(status)), &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = COFFER_ERR_NOT_FOUND;
	store_rows_release(&rows);
	return rc;
}

/* ---- hosts ---- */

/* Reads a row of STORE_HOST_COLS; keys and the MAC must have their exact size. */
static enum coffer_err host_from_row(const struct store_rows *r, size_t i, struct store_host *h)
{
	size_t sign_len = 0, seal_len = 0, mac_len = 0;
	enum coffer_err rc;
	memset(h, 0, sizeof(*h));
	if ((rc = cell_text(r, i, 0, h->id, sizeof(h->id))) || (rc = cell_text(r, i, 1, h->name, sizeof(h->name))) ||
	    (rc = cell_blob(r, i, 2, h->sign_pk, sizeof(h->sign_pk), &sign_len)) ||
	    (rc = cell_blob(r, i, 3, h->seal_pk, sizeof(h->seal_pk), &seal_len)) ||
	    (rc = cell_blob(r, i, 4, h->mac, sizeof(h->mac), &mac_len)) ||
	    (rc = cell_text(r, i, 5, h->state, sizeof(h->state))))
		return rc;
	if (sign_len != STORE_HOST_KEY_LEN || seal_len != STORE_HOST_KEY_LEN || mac_len != STORE_HOST_MAC_LEN)
		return COFFER_ERR_STORE;
	if (cell(r, i, 8)->type != STORE_V_NULL) {
		rc = cell_blob(r, i, 8, h->cert, sizeof(h->cert), &h->cert_len);
		if (rc)
			return rc;
	}
	h->enrolled_at = cell_int(r, i, 6);
	h->last_heartbeat = cell_int(r, i, 7);
	return COFFER_OK;
}

enum coffer_err store_host_put(struct store *s, const struct store_host *h)
{
	static const unsigned char empty[1];
	if (!h->id[0] || !h->name[0] || !h->state[0] || h->enrolled_at < 0)
		return COFFER_ERR_INVALID;
	if (!valid_text(h->id, sizeof(h->id)) || !valid_text(h->name, sizeof(h->name)) ||
	    !valid_text(h->state, sizeof(h->state)) || h->cert_len > sizeof(h->cert))
		return COFFER_ERR_TOO_LARGE;
	return run(s, STORE_Q_HOST_INSERT,
		   PARAMS(VT(h->id), VT(h->name), VB(h->sign_pk, sizeof(h->sign_pk)), VB(h->seal_pk, sizeof(h->seal_pk)),
			  VB(h->mac, sizeof(h->mac)), VT(h->state), VI(h->enrolled_at),
			  h->cert_len ? VB(h->cert, h->cert_len) : VB(empty, 0)),
		   NULL);
}

static enum coffer_err host_get(struct store *s, enum store_q q, const char *key, struct store_host *out)
{
	struct store_rows rows = { 0 };
	struct store_host h;
	enum coffer_err rc;
	if (!key)
		return COFFER_ERR_INVALID;
	rc = run(s, q, PARAMS(VT(key)), &rows);
	if (rc)
		goto out;
	if (rows.nrows == 0) {
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	rc = host_from_row(&rows, 0, &h);
	if (rc)
		goto out;
	*out = h;
out:
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_host_get(struct store *s, const char *id, struct store_host *out)
{
	return host_get(s, STORE_Q_HOST_BY_ID, id, out);
}

enum coffer_err store_host_get_by_name(struct store *s, const char *name, struct store_host *out)
{
	return host_get(s, STORE_Q_HOST_BY_NAME, name, out);
}

enum coffer_err store_host_list(struct store *s, struct store_host_list *out)
{
	struct store_rows rows = { 0 };
	struct store_host_list l = { 0 };
	enum coffer_err rc = run(s, STORE_Q_HOST_LIST, NULL, 0, &rows);
	if (rc)
		goto out;
	if (rows.nrows) {
		l.items = calloc(rows.nrows, sizeof(*l.items));
		if (!l.items) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	for (; l.n < rows.nrows; l.n++) {
		rc = host_from_row(&rows, l.n, &l.items[l.n]);
		if (rc)
			goto out;
	}
	*out = l;
	l = (struct store_host_list){ 0 };
out:
	store_host_list_release(&l);
	store_rows_release(&rows);
	return rc;
}

void store_host_list_release(struct store_host_list *l)
{
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

enum coffer_err store_host_heartbeat(struct store *s, const char *id, int64_t at)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc;
	if (!id || at <= 0)
		return COFFER_ERR_INVALID;
	rc = run(s, STORE_Q_HOST_HEARTBEAT, PARAMS(VT(id), VI(at)), &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = COFFER_ERR_NOT_FOUND;
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_join_token_use(struct store *s, const char *id)
{
	if (!id || !*id)
		return COFFER_ERR_INVALID;
	if (strlen(id) > STORE_JOIN_TOKEN_ID_MAX)
		return COFFER_ERR_TOO_LARGE;
	return run(s, STORE_Q_JOIN_TOKEN_INSERT, PARAMS(VT(id), VI(now_ms())), NULL);
}

/* ---- machines ---- */

static int valid_machine_state(const char *state)
{
	static const char *const states[] = { "created", "starting", "started", "stopping",
					      "stopped", "failed",   "destroyed" };
	for (size_t i = 0; state && i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(state, states[i]) == 0)
			return 1;
	return 0;
}

/* Reads a row of STORE_MACHINE_COLS; NULL pid, exit status and signal read as none. */
static enum coffer_err machine_from_row(const struct store_rows *r, size_t i, struct store_machine *m)
{
	enum coffer_err rc;
	memset(m, 0, sizeof(*m));
	if ((rc = cell_text(r, i, 0, m->id, sizeof(m->id))) ||
	    (rc = cell_text(r, i, 1, m->app_id, sizeof(m->app_id))) ||
	    (rc = cell_text(r, i, 2, m->host_id, sizeof(m->host_id))) ||
	    (rc = cell_text(r, i, 5, m->state, sizeof(m->state))))
		return rc;
	m->desired_release = cell_uint(r, i, 3);
	m->running_release = cell_uint(r, i, 4);
	m->pid = cell_int(r, i, 6);
	m->exit_status = cell(r, i, 7)->type == STORE_V_NULL ? -1 : (int)cell_int(r, i, 7);
	m->exit_signal = (int)cell_int(r, i, 8);
	m->started_at = cell_int(r, i, 9);
	m->restarts = cell_uint(r, i, 10);
	m->created_at = cell_int(r, i, 11);
	m->updated_at = cell_int(r, i, 12);
	return COFFER_OK;
}

enum coffer_err store_machine_create(struct store *s, const char *app_id, const char *host_id,
				     uint64_t desired_release, struct store_machine *out)
{
	struct store_machine m = { 0 };
	enum coffer_err rc;
	if (!app_id || !host_id || !*host_id || desired_release > INT64_MAX)
		return COFFER_ERR_INVALID;
	if (!valid_text(app_id, sizeof(m.app_id)) || !valid_text(host_id, sizeof(m.host_id)))
		return COFFER_ERR_TOO_LARGE;
	new_id(m.id);
	memcpy(m.app_id, app_id, strlen(app_id) + 1);
	memcpy(m.host_id, host_id, strlen(host_id) + 1);
	memcpy(m.state, "created", sizeof("created"));
	m.desired_release = desired_release;
	m.exit_status = -1;
	m.created_at = now_ms();
	m.updated_at = m.created_at;
	rc = run(s, STORE_Q_MACHINE_INSERT,
		 PARAMS(VT(m.id), VT(m.app_id), VT(m.host_id), VI(m.desired_release), VT(m.state), VI(m.created_at)),
		 NULL);
	if (rc)
		return rc;
	*out = m;
	return COFFER_OK;
}

enum coffer_err store_machine_get(struct store *s, const char *id, struct store_machine *out)
{
	struct store_rows rows = { 0 };
	struct store_machine m;
	enum coffer_err rc;
	if (!id)
		return COFFER_ERR_INVALID;
	rc = run(s, STORE_Q_MACHINE_BY_ID, PARAMS(VT(id)), &rows);
	if (rc)
		goto out;
	if (rows.nrows == 0) {
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	rc = machine_from_row(&rows, 0, &m);
	if (rc)
		goto out;
	*out = m;
out:
	store_rows_release(&rows);
	return rc;
}

static enum coffer_err machine_list(struct store *s, enum store_q q, const char *key, struct store_machine_list *out)
{
	struct store_rows rows = { 0 };
	struct store_machine_list l = { 0 };
	enum coffer_err rc;
	if (!key)
		return COFFER_ERR_INVALID;
	rc = run(s, q, PARAMS(VT(key)), &rows);
	if (rc)
		goto out;
	if (rows.nrows) {
		l.items = calloc(rows.nrows, sizeof(*l.items));
		if (!l.items) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	for (; l.n < rows.nrows; l.n++) {
		rc = machine_from_row(&rows, l.n, &l.items[l.n]);
		if (rc)
			goto out;
	}
	*out = l;
	l = (struct store_machine_list){ 0 };
out:
	store_machine_list_release(&l);
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_machine_list_by_app(struct store *s, const char *app_id, struct store_machine_list *out)
{
	return machine_list(s, STORE_Q_MACHINE_BY_APP, app_id, out);
}

enum coffer_err store_machine_list_by_host(struct store *s, const char *host_id, struct store_machine_list *out)
{
	return machine_list(s, STORE_Q_MACHINE_BY_HOST, host_id, out);
}

void store_machine_list_release(struct store_machine_list *l)
{
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/*
 * After an update that matched no live machine: NOT_FOUND if there is no
 * such machine, CONFLICT if it is destroyed (destroyed is final).
 */
static enum coffer_err machine_missed(struct store *s, const char *id)
{
	struct store_machine m;
	enum coffer_err rc = store_machine_get(s, id, &m);
	return rc ? rc : COFFER_ERR_CONFLICT;
}

enum coffer_err store_machine_set_desired(struct store *s, const char *id, uint64_t release)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc;
	if (!id || release > INT64_MAX)
		return COFFER_ERR_INVALID;
	rc = run(s, STORE_Q_MACHINE_SET_DESIRED, PARAMS(VT(id), VI(release), VI(now_ms())), &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = machine_missed(s, id);
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_machine_report(struct store *s, const char *id, const char *state, uint64_t running_release,
				     int64_t pid, int exit_status, int exit_signal, int64_t started_at)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc;
	if (!id || !valid_machine_state(state) || running_release > INT64_MAX || pid < 0 || exit_status < -1 ||
	    exit_signal < 0 || started_at < 0)
		return COFFER_ERR_INVALID;
	rc = run(s, STORE_Q_MACHINE_REPORT,
		 PARAMS(VT(id), VT(state), VI(running_release), pid ? VI(pid) : VNULL,
			exit_status >= 0 ? VI(exit_status) : VNULL, exit_signal ? VI(exit_signal) : VNULL,
			started_at ? VI(started_at) : VNULL, VI(now_ms())),
		 &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = machine_missed(s, id);
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_machine_destroy(struct store *s, const char *id)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc;
	if (!id)
		return COFFER_ERR_INVALID;
	rc = run(s, STORE_Q_MACHINE_DESTROY, PARAMS(VT(id), VI(now_ms())), &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = COFFER_ERR_NOT_FOUND;
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_machine_set_tail(struct store *s, const char *id, const char *tail)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc;
	if (!id)
		return COFFER_ERR_INVALID;
	if (tail && strlen(tail) > STORE_MACHINE_TAIL_MAX)
		return COFFER_ERR_TOO_LARGE;
	rc = run(s, STORE_Q_MACHINE_SET_TAIL, PARAMS(VT(id), tail ? VT(tail) : VNULL), &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = machine_missed(s, id);
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_machine_tail(struct store *s, const char *id, struct buf *out)
{
	struct store_rows rows = { 0 };
	const struct store_cell *c;
	enum coffer_err rc;
	if (!id || !out)
		return COFFER_ERR_INVALID;
	rc = run(s, STORE_Q_MACHINE_TAIL, PARAMS(VT(id)), &rows);
	if (rc)
		goto out;
	if (rows.nrows == 0) {
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	c = cell(&rows, 0, 0);
	if (c->type != STORE_V_NULL && c->type != STORE_V_TEXT && c->type != STORE_V_BLOB) {
		rc = COFFER_ERR_STORE;
		goto out;
	}
	if (c->type != STORE_V_NULL && (c->len > STORE_MACHINE_TAIL_MAX || memchr(c->p, '\0', c->len))) {
		rc = COFFER_ERR_STORE;
		goto out;
	}
	if (c->type != STORE_V_NULL && c->len > out->max) {
		rc = COFFER_ERR_TOO_LARGE;
		goto out;
	}
	buf_reset(out);
	if (c->type != STORE_V_NULL)
		rc = buf_add(out, c->p, c->len);
out:
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_machine_load(struct store *s, const char *app_id, struct store_host_load_list *out)
{
	struct store_rows rows = { 0 };
	struct store_host_load_list l = { 0 };
	enum coffer_err rc;
	if (!app_id)
		return COFFER_ERR_INVALID;
	rc = run(s, STORE_Q_MACHINE_LOAD, PARAMS(VT(app_id)), &rows);
	if (rc)
		goto out;
	if (rows.nrows) {
		l.items = calloc(rows.nrows, sizeof(*l.items));
		if (!l.items) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	for (; l.n < rows.nrows; l.n++) {
		struct store_host_load *h = &l.items[l.n];
		rc = cell_text(&rows, l.n, 0, h->host_id, sizeof(h->host_id));
		if (rc)
			goto out;
		h->machines = cell_uint(&rows, l.n, 1);
		h->app_machines = cell_uint(&rows, l.n, 2);
	}
	*out = l;
	l = (struct store_host_load_list){ 0 };
out:
	store_host_load_list_release(&l);
	store_rows_release(&rows);
	return rc;
}

void store_host_load_list_release(struct store_host_load_list *l)
{
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* ---- releases ---- */

static int valid_release_status(const char *status)
{
	static const char *const statuses[] = { "pending", "running", "succeeded", "failed" };
	for (size_t i = 0; status && i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (strcmp(status, statuses[i]) == 0)
			return 1;
	return 0;
}

static int release_active(const char *status)
{
	return strcmp(status, "pending") == 0 || strcmp(status, "running") == 0;
}

/* Takes a text cell of at most STORE_RELEASE_TEXT_MAX bytes without a NUL. */
static enum coffer_err release_text(struct store_rows *r, size_t i, size_t col, char **dst)
{
	const struct store_cell *c = cell(r, i, col);
	size_t len;
	if (c->type != STORE_V_NULL &&
	    (c->len > STORE_RELEASE_TEXT_MAX || (c->p && memchr(c->p, '\0', c->len))))
		return COFFER_ERR_STORE;
	return cell_take(r, i, col, dst, &len);
}

/* Reads a row of STORE_RELEASE_COLS, taking its long texts. */
static enum coffer_err release_from_row(struct store_rows *r, size_t i, struct store_release *rel)
{
	enum coffer_err rc;
	memset(rel, 0, sizeof(*rel));
	if ((rc = release_text(r, i, 2, &rel->config)) || (rc = release_text(r, i, 5, &rel->reason)) ||
	    (rc = release_text(r, i, 9, &rel->progress)) ||
	    (rc = cell_text(r, i, 0, rel->app_id, sizeof(rel->app_id))) ||
	    (rc = cell_text(r, i, 4, rel->status, sizeof(rel->status))) ||
	    (rc = cell_text(r, i, 6, rel->actor, sizeof(rel->actor))))
		return rc;
	rel->version = cell_uint(r, i, 1);
	rel->secrets_version = cell_uint(r, i, 3);
	rel->previous_version = cell_uint(r, i, 7);
	rel->previous_secrets = cell_uint(r, i, 8);
	rel->created_at = cell_int(r, i, 10);
	rel->updated_at = cell_int(r, i, 11);
	return COFFER_OK;
}

void store_release_clear(struct store_release *r)
{
	free(r->config);
	free(r->reason);
	free(r->progress);
	memset(r, 0, sizeof(*r));
}

void store_release_list_release(struct store_release_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		store_release_clear(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

/* Locks the app's row until the end of the transaction; NOT_FOUND for an unknown app. */
static enum coffer_err lock_app(struct store *s, const char *app_id)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc = run(s, STORE_Q_APP_LOCK, PARAMS(VT(app_id)), &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = COFFER_ERR_NOT_FOUND;
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_app_lock(struct store *s, const char *app_id)
{
	if (!app_id)
		return COFFER_ERR_INVALID;
	if (s->tx_depth != 2)
		return COFFER_ERR_INTERNAL; /* only inside store_tx_begin */
	return lock_app(s, app_id);
}

enum coffer_err store_release_create(struct store *s, const char *app_id, const char *config,
				     uint64_t secrets_version, uint64_t previous_version, uint64_t previous_secrets,
				     const char *actor, uint64_t *version)
{
	struct store_rows rows = { 0 };
	uint64_t v = 0;
	int64_t now = now_ms();
	enum coffer_err rc;

	if (!app_id || !config || !actor || secrets_version > INT64_MAX || previous_version > INT64_MAX ||
	    previous_secrets > INT64_MAX)
		return COFFER_ERR_INVALID;
	if (strlen(config) > STORE_RELEASE_TEXT_MAX || strlen(actor) >= STORE_ACTOR_SIZE)
		return COFFER_ERR_TOO_LARGE;

	rc = begin(s, 1);
	if (rc)
		return rc;
	/* The app row lock serialises release creators: two cannot both see none running. */
	rc = lock_app(s, app_id);
	if (rc)
		goto out;
	rc = run(s, STORE_Q_RELEASE_ACTIVE, PARAMS(VT(app_id)), &rows);
	if (rc == COFFER_OK && rows.nrows)
		rc = COFFER_ERR_CONFLICT;
	if (rc)
		goto out;
	rc = run(s, STORE_Q_RELEASE_MAX, PARAMS(VT(app_id)), &rows);
	if (rc)
		goto out;
	v = (rows.nrows ? cell_uint(&rows, 0, 0) : 0) + 1;
	rc = run(s, STORE_Q_RELEASE_INSERT,
		 PARAMS(VT(app_id), VI(v), VT(config), VI(secrets_version), VT("pending"), VT(actor), VI(now),
			VI(previous_version), VI(previous_secrets)),
		 NULL);
out:
	store_rows_release(&rows);
	rc = finish(s, rc);
	if (rc == COFFER_OK)
		*version = v;
	return rc;
}

/* The release, inside the caller's transaction or on its own. */
static enum coffer_err release_get(struct store *s, const char *app_id, uint64_t version, struct store_release *out)
{
	struct store_rows rows = { 0 };
	struct store_release r = { 0 };
	enum coffer_err rc = run(s, STORE_Q_RELEASE_GET, PARAMS(VT(app_id), VI(version)), &rows);
	if (rc)
		goto out;
	if (rows.nrows == 0) {
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	rc = release_from_row(&rows, 0, &r);
	if (rc)
		goto out;
	*out = r;
	r = (struct store_release){ 0 };
out:
	store_release_clear(&r);
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_release_get(struct store *s, const char *app_id, uint64_t version, struct store_release *out)
{
	if (!app_id || version == 0 || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	return release_get(s, app_id, version, out);
}

static enum coffer_err release_list(struct store *s, enum store_q q, const struct store_val *p, size_t n,
				    struct store_release_list *out)
{
	struct store_rows rows = { 0 };
	struct store_release_list l = { 0 };
	enum coffer_err rc = run(s, q, p, n, &rows);
	if (rc)
		goto out;
	if (rows.nrows) {
		l.items = calloc(rows.nrows, sizeof(*l.items));
		if (!l.items) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < rows.nrows; i++) {
		rc = release_from_row(&rows, i, &l.items[i]);
		l.n = i + 1; /* so that release frees a partly read item */
		if (rc)
			goto out;
	}
	*out = l;
	l = (struct store_release_list){ 0 };
out:
	store_release_list_release(&l);
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_release_list(struct store *s, const char *app_id, struct store_release_list *out)
{
	if (!app_id)
		return COFFER_ERR_INVALID;
	return release_list(s, STORE_Q_RELEASE_LIST, PARAMS(VT(app_id)), out);
}

enum coffer_err store_release_running(struct store *s, struct store_release_list *out)
{
	return release_list(s, STORE_Q_RELEASE_RUNNING, NULL, 0, out);
}

enum coffer_err store_release_update(struct store *s, const char *app_id, uint64_t version, const char *status,
				     const char *reason, const char *progress)
{
	struct store_release cur = { 0 };
	enum coffer_err rc;

	if (!app_id || version == 0 || version > INT64_MAX || !valid_release_status(status))
		return COFFER_ERR_INVALID;
	if ((reason && strlen(reason) > STORE_RELEASE_TEXT_MAX) ||
	    (progress && strlen(progress) > STORE_RELEASE_TEXT_MAX))
		return COFFER_ERR_TOO_LARGE;
	rc = begin(s, 1);
	if (rc)
		return rc;
	rc = lock_app(s, app_id);
	if (rc)
		goto out;
	rc = release_get(s, app_id, version, &cur);
	if (rc)
		goto out;
	/* A finished release coming back would make two active releases of one app. */
	if (!release_active(cur.status) && release_active(status)) {
		rc = COFFER_ERR_CONFLICT;
		goto out;
	}
	rc = run(s, STORE_Q_RELEASE_UPDATE,
		 PARAMS(VT(app_id), VI(version), VT(status), reason ? VT(reason) : VNULL,
			progress ? VT(progress) : VNULL, VI(now_ms())),
		 NULL);
out:
	store_release_clear(&cur);
	return finish(s, rc);
}

enum coffer_err store_app_set_current_release(struct store *s, const char *app_id, uint64_t release,
					      uint64_t deployed_version)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc;

	if (!app_id || release > INT64_MAX || deployed_version > INT64_MAX)
		return COFFER_ERR_INVALID;
	rc = begin(s, 1);
	if (rc)
		return rc;
	rc = lock_app(s, app_id);
	if (rc)
		goto out;
	if (release) {
		rc = run(s, STORE_Q_RELEASE_GET, PARAMS(VT(app_id), VI(release)), &rows);
		if (rc == COFFER_OK && rows.nrows == 0)
			rc = COFFER_ERR_NOT_FOUND;
		if (rc)
			goto out;
	}
	if (deployed_version) {
		rc = run(s, STORE_Q_VERSION_GET, PARAMS(VT(app_id), VI(deployed_version)), &rows);
		if (rc == COFFER_OK && rows.nrows == 0)
			rc = COFFER_ERR_NOT_FOUND;
		if (rc)
			goto out;
	}
	rc = run(s, STORE_Q_APP_SET_RELEASE, PARAMS(VT(app_id), VI(release), VI(deployed_version)), &rows);
	if (rc == COFFER_OK && rows.nrows != 1)
		rc = COFFER_ERR_NOT_FOUND;
out:
	store_rows_release(&rows);
	return finish(s, rc);
}

/* ---- audit ---- */

static void put_be(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static void hash_field(crypto_hash_sha256_state *st, const char *s)
{
	unsigned char len[4];
	size_t n = strlen(s);
	put_be(len, n, (int)sizeof(len));
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
	put_be(num, seq, (int)sizeof(num));
	crypto_hash_sha256_update(&st, num, sizeof(num));
	put_be(num, (uint64_t)ev->ts, (int)sizeof(num));
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

/* The last event's seq and hash, inside the caller's transaction. */
static enum coffer_err audit_last(struct store *s, uint64_t *seq, unsigned char hash[STORE_HASH_LEN])
{
	struct store_rows rows = { 0 };
	size_t len = 0;
	enum coffer_err rc = run(s, STORE_Q_AUDIT_LAST, NULL, 0, &rows);
	if (rc)
		goto out;
	if (rows.nrows == 0) {
		*seq = 0;
		memset(hash, 0, STORE_HASH_LEN);
		goto out;
	}
	rc = cell_blob(&rows, 0, 1, hash, STORE_HASH_LEN, &len);
	if (rc == COFFER_OK && len != STORE_HASH_LEN)
		rc = COFFER_ERR_STORE;
	if (rc == COFFER_OK)
		*seq = cell_uint(&rows, 0, 0);
out:
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_audit_append(struct store *s, const struct store_audit_event *ev, uint64_t *seq)
{
	struct store_audit_event e = *ev;
	unsigned char prev[STORE_HASH_LEN], hash[STORE_HASH_LEN];
	uint64_t last = 0;
	enum coffer_err rc = check_event(ev);
	if (rc)
		return rc;
	if (!e.ts)
		e.ts = now_ms();

	rc = begin(s, 1);
	if (rc)
		return rc;
	rc = run(s, STORE_Q_AUDIT_LOCK, NULL, 0, NULL);
	if (rc)
		goto out;
	rc = audit_last(s, &last, prev);
	if (rc)
		goto out;
	rc = store_audit_hash(last + 1, &e, prev, hash);
	if (rc)
		goto out;
	rc = run(s, STORE_Q_AUDIT_INSERT,
		 PARAMS(VI(last + 1), VI(e.ts), VT(or_empty(e.org_id)), VT(or_empty(e.actor)), VT(or_empty(e.action)),
			VT(or_empty(e.app)), VT(or_empty(e.detail)), VT(or_empty(e.outcome)),
			VT(or_empty(e.request_id)), VB(prev, sizeof(prev)), VB(hash, sizeof(hash))),
		 NULL);
out:
	rc = finish(s, rc);
	if (rc == COFFER_OK && seq)
		*seq = last + 1;
	return rc;
}

static void audit_row_free(struct store_audit_row *r)
{
	free((char *)r->ev.org_id);
	free((char *)r->ev.actor);
	free((char *)r->ev.action);
	free((char *)r->ev.app);
	free((char *)r->ev.detail);
	free((char *)r->ev.outcome);
	free((char *)r->ev.request_id);
}

/* Reads a row of STORE_AUDIT_COLS, taking its strings. */
static enum coffer_err audit_from_row(struct store_rows *r, size_t i, struct store_audit_row *a)
{
	char *text[7] = { 0 };
	size_t len;
	enum coffer_err rc = COFFER_OK;
	memset(a, 0, sizeof(*a));
	for (size_t k = 0; k < 7 && rc == COFFER_OK; k++)
		rc = cell_take(r, i, 2 + k, &text[k], NULL);
	a->ev.org_id = text[0];
	a->ev.actor = text[1];
	a->ev.action = text[2];
	a->ev.app = text[3];
	a->ev.detail = text[4];
	a->ev.outcome = text[5];
	a->ev.request_id = text[6];
	if (rc)
		return rc;
	if ((rc = cell_blob(r, i, 9, a->prev_hash, sizeof(a->prev_hash), &len)) || len != STORE_HASH_LEN ||
	    (rc = cell_blob(r, i, 10, a->hash, sizeof(a->hash), &len)) || len != STORE_HASH_LEN)
		return rc ? rc : COFFER_ERR_STORE;
	a->seq = cell_uint(r, i, 0);
	a->ev.ts = cell_int(r, i, 1);
	return COFFER_OK;
}

enum coffer_err store_audit_list(struct store *s, const struct store_audit_filter *f, struct store_audit_list *out)
{
	static const struct store_audit_filter all;
	struct store_rows rows = { 0 };
	struct store_audit_list l = { 0 };
	size_t limit;
	enum coffer_err rc;

	if (!f)
		f = &all;
	limit = f->limit && f->limit < STORE_AUDIT_LIST_MAX ? f->limit : STORE_AUDIT_LIST_MAX;
	if (f->after_seq > INT64_MAX)
		return COFFER_ERR_INVALID;
	rc = run(s, STORE_Q_AUDIT_LIST,
		 PARAMS(VI(f->after_seq), VT(or_empty(f->org_id)), VT(or_empty(f->app)), VI(limit)), &rows);
	if (rc)
		goto out;
	if (rows.nrows) {
		l.items = calloc(rows.nrows, sizeof(*l.items));
		if (!l.items) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < rows.nrows; i++) {
		rc = audit_from_row(&rows, i, &l.items[i]);
		l.n = i + 1;
		if (rc)
			goto out;
	}
	*out = l;
	l = (struct store_audit_list){ 0 };
out:
	store_audit_list_release(&l);
	store_rows_release(&rows);
	return rc;
}

void store_audit_list_release(struct store_audit_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		audit_row_free(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

enum coffer_err store_audit_head(struct store *s, uint64_t *seq, unsigned char hash[STORE_HASH_LEN])
{
	unsigned char h[STORE_HASH_LEN];
	uint64_t last;
	enum coffer_err rc = begin(s, 0);
	if (rc)
		return rc;
	rc = finish(s, audit_last(s, &last, h));
	if (rc)
		return rc;
	*seq = last;
	memcpy(hash, h, sizeof(h));
	return COFFER_OK;
}

enum coffer_err store_audit_verify(struct store *s, uint64_t *first_broken_seq)
{
	struct store_audit_list page = { 0 };
	struct store_audit_filter f = { .limit = AUDIT_VERIFY_PAGE };
	unsigned char prev[STORE_HASH_LEN] = { 0 }, h[STORE_HASH_LEN];
	uint64_t expect = 1;
	enum coffer_err rc;

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
	return COFFER_OK;
}
