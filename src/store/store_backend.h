/*
 * store_backend.h — what a store backend (store_sqlite.c, store_pg.c)
 * provides to the store's logic. Internal to src/store.
 *
 * A backend is a driver: it opens a connection, runs transactions, and runs
 * the statement STORE_Q_x of the shared table (store_sql.def) with bound
 * parameters, copying result rows into a struct store_rows the caller
 * owns. All the logic (transactions, ids, times, hashing, entities) lives
 * above it (store_int.h), so the two backends differ only in how they talk
 * to their library.
 * Each backend converts its library's errors to enum coffer_err in exactly
 * one function.
 */
#ifndef COFFER_STORE_BACKEND_H
#define COFFER_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/*
 * Statements: one table for both databases (store_sql.def). Parameters
 * and result columns are listed in the comment above each.
 */
enum store_q {
#define Q(name, sql, pg) STORE_Q_##name,
#include "store_sql.def"
#undef Q
	STORE_Q__COUNT
};

/* A statement's text: sql for both databases, unless pg (PostgreSQL's own) is set. */
struct store_stmt {
	const char *sql;
	const char *pg;
};

extern const struct store_stmt store_stmts[STORE_Q__COUNT];

/*
 * The migrations, one list for both backends (store_sql.c): entry i is the
 * SQL script of schema version i + 1, in each backend's dialect.
 */
extern const char *const store_sqlite_migrations[];
extern const char *const store_pg_migrations[];
extern const size_t store_n_migrations;

/* The table of applied migrations, the same in both backends. */
#define STORE_MIGRATIONS_TABLE                                                                          \
	"CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"

#define STORE_MAX_PARAMS 12

enum store_vtype { STORE_V_NULL, STORE_V_INT, STORE_V_TEXT, STORE_V_BLOB };

/* A bound parameter; p is a NUL-terminated string for STORE_V_TEXT. */
struct store_val {
	enum store_vtype type;
	int64_t i;
	const void *p;
	size_t len;
};

/* A result cell; p is owned by the rows and has a NUL after len bytes. */
struct store_cell {
	enum store_vtype type;
	int64_t i;
	unsigned char *p;
	size_t len;
};

struct store_rows {
	size_t nrows;
	size_t ncols;
	size_t cap;               /* rows allocated */
	struct store_cell *cells; /* nrows * ncols, row-major */
};

struct store_backend {
	const char *name;
	/* migrations[i] is the SQL script of schema version i + 1 (store_n_migrations of them). */
	const char *const *migrations;
	enum coffer_err (*open)(const char *target, void **conn);
	void (*close)(void *conn);
	/* write: the transaction will write (SQLite takes the write lock now). */
	enum coffer_err (*begin)(void *conn, int write);
	enum coffer_err (*commit)(void *conn);
	void (*rollback)(void *conn);
	/* Runs statement q; rows (reset first) may be NULL to ignore results. */
	enum coffer_err (*exec)(void *conn, enum store_q q, const struct store_val *params,
						  size_t n, struct store_rows *rows);
	/* Runs a fixed script (migrations); never input. */
	enum coffer_err (*script)(void *conn, const char *sql);
};

extern const struct store_backend store_sqlite_backend;
extern const struct store_backend store_pg_backend;

/*
 * Shared by the backends: result storage. store_rows_add appends a row of
 * r->ncols NULL cells (set r->ncols first) and points *row at it.
 */
COFFER_MUST_CHECK enum coffer_err store_rows_add(struct store_rows *r, struct store_cell **row);
COFFER_MUST_CHECK enum coffer_err store_cell_set(struct store_cell *c, enum store_vtype type, int64_t i,
						 const void *p, size_t len);
void store_rows_release(struct store_rows *r);

#endif
