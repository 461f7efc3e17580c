/*
 * store_backend.h — what a store backend (store_sqlite.c, store_pg.c)
 * provides to store.c. Internal to src/store.
 *
 * A backend is a driver: it opens a connection, runs transactions, and runs
 * the statement STORE_Q_x of its own SQL table with bound parameters,
 * copying result rows into a struct store_rows the caller owns. All the
 * logic (transactions, ids, times, hashing) lives in store.c, so the two
 * backends differ only in SQL text and in how they talk to their library.
 * Each backend converts its library's errors to enum coffer_err in exactly
 * one function.
 */
#ifndef COFFER_STORE_BACKEND_H
#define COFFER_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/*
 * Statements. The parameters are numbered ?1.. (SQLite) or $1.. (PostgreSQL)
 * in the order given in the comment; result columns in the order listed.
 */
enum store_q {
	STORE_Q_MIGRATE_LOCK,       /* serialise migrators; no result */
	STORE_Q_MIGRATION_MAX,      /* -> max version */
	STORE_Q_MIGRATION_INSERT,   /* version, applied_at */
	STORE_Q_ORG_INSERT,         /* id, name, created_at */
	STORE_Q_ORG_BY_NAME,        /* name -> id, name, created_at */
	STORE_Q_ORG_BY_ID,          /* id -> same */
	STORE_Q_TOKEN_INSERT,       /* id, org_id, hash, role, app_id, expires_at, created_at, description */
	STORE_Q_TOKEN_BY_HASH,      /* hash -> TOKEN_COLS */
	STORE_Q_TOKEN_LIST,         /* org_id -> TOKEN_COLS */
	STORE_Q_TOKEN_REVOKE,       /* id, org_id, now -> id */
	STORE_Q_APP_INSERT,         /* id, org_id, name, created_at, grace_ms */
	STORE_Q_APP_BY_NAME,        /* name -> APP_COLS */
	STORE_Q_APP_BY_ID,          /* id -> APP_COLS */
	STORE_Q_APP_LIST,           /* org_id -> APP_COLS */
	STORE_Q_APP_DELETE,         /* id -> id */
	STORE_Q_APP_LOCK,           /* id -> secrets_head; locks the row until the end of the transaction */
	STORE_Q_APP_SET_HEAD,       /* id, version */
	STORE_Q_KEY_INSERT,         /* app_id, version, public_key, wrapped_private, created_at */
	STORE_Q_KEY_GET,            /* app_id, version -> KEY_COLS */
	STORE_Q_KEY_LATEST,         /* app_id -> KEY_COLS */
	STORE_Q_VERSION_MAX,        /* app_id -> max version */
	STORE_Q_VERSION_INSERT,     /* app_id, version, created_at, actor, status */
	STORE_Q_VERSION_GET,        /* app_id, version -> VERSION_COLS */
	STORE_Q_VERSION_LIST,       /* app_id -> VERSION_COLS */
	STORE_Q_VERSION_SET_STATUS, /* app_id, version, status -> version */
	STORE_Q_VALUE_INSERT,       /* id, app_id, name, ciphertext, digest, key_version, created_at */
	STORE_Q_ENTRY_COPY,         /* app_id, from version, to version */
	STORE_Q_ENTRY_UPSERT,       /* app_id, version, name, value_id, first_set_at */
	STORE_Q_ENTRY_DELETE,       /* app_id, version, name */
	STORE_Q_ENTRY_LIST,         /* app_id, version -> name, ciphertext, digest, key_version, first_set_at, created_at */
	STORE_Q_ENTRY_STATS,        /* app_id, version -> count, ciphertext bytes */
	STORE_Q_AUDIT_LOCK,         /* serialise appenders; no result */
	STORE_Q_AUDIT_LAST,         /* -> seq, hash */
	STORE_Q_AUDIT_INSERT,       /* seq, ts, org_id, actor, action, app, detail, outcome, request_id, prev_hash, hash */
	STORE_Q_AUDIT_LIST,         /* after seq, org_id or '', app or '', limit -> AUDIT_COLS */
	/* schema version 2 */
	STORE_Q_HOST_INSERT,        /* id, name, sign_pk, seal_pk, mac, state, enrolled_at, cert */
	STORE_Q_HOST_BY_ID,         /* id -> HOST_COLS */
	STORE_Q_HOST_BY_NAME,       /* name -> HOST_COLS */
	STORE_Q_HOST_LIST,          /* -> HOST_COLS, by name */
	STORE_Q_HOST_HEARTBEAT,     /* id, last_heartbeat -> id */
	STORE_Q_JOIN_TOKEN_INSERT,  /* id, used_at */
	/* schema version 3 */
	STORE_Q_MACHINE_INSERT,     /* id, app_id, host_id, desired_release, state, created_at */
	STORE_Q_MACHINE_BY_ID,      /* id -> MACHINE_COLS */
	STORE_Q_MACHINE_BY_APP,     /* app_id -> MACHINE_COLS, by created_at, id */
	STORE_Q_MACHINE_BY_HOST,    /* host_id -> MACHINE_COLS not destroyed, by created_at, id */
	STORE_Q_MACHINE_SET_DESIRED, /* id, desired_release, updated_at -> id; not if destroyed */
	STORE_Q_MACHINE_REPORT,     /* id, state, running_release, pid, exit_status, exit_signal, started_at,
				       updated_at -> id; not if destroyed */
	STORE_Q_MACHINE_DESTROY,    /* id, updated_at -> id */
	STORE_Q_RELEASE_ACTIVE,     /* app_id -> version of a pending or running release */
	STORE_Q_RELEASE_MAX,        /* app_id -> max version */
	STORE_Q_RELEASE_INSERT,     /* app_id, version, config, secrets_version, status, actor, created_at,
				       previous_version, previous_secrets */
	STORE_Q_RELEASE_GET,        /* app_id, version -> RELEASE_COLS */
	STORE_Q_RELEASE_LIST,       /* app_id -> RELEASE_COLS, newest first */
	STORE_Q_RELEASE_RUNNING,    /* -> RELEASE_COLS of pending and running releases, oldest first */
	STORE_Q_RELEASE_UPDATE,     /* app_id, version, status, reason or NULL, progress or NULL, updated_at */
	STORE_Q_APP_SET_RELEASE,    /* id, current_release, deployed_version */
	/* schema version 4 */
	STORE_Q_MACHINE_SET_TAIL,   /* id, tail or NULL -> id; not if destroyed */
	STORE_Q_MACHINE_TAIL,       /* id -> tail */
	STORE_Q_MACHINE_LOAD,       /* app_id -> host_id, live machines, live machines of the app; by host_id */
	STORE_Q__COUNT
};

/*
 * Column lists shared by several statements (both backends name the same
 * columns in the same order).
 */
#define STORE_TOKEN_COLS "id, org_id, hash, role, app_id, expires_at, revoked_at, created_at, description"
#define STORE_APP_COLS                                                                                  \
	"id, org_id, name, created_at, secrets_head, deployed_version, current_release, grace_ms"
#define STORE_KEY_COLS "app_id, version, public_key, wrapped_private, created_at"
#define STORE_VERSION_COLS "version, created_at, actor, status"
#define STORE_AUDIT_COLS "seq, ts, org_id, actor, action, app, detail, outcome, request_id, prev_hash, hash"
#define STORE_HOST_COLS "id, name, sign_pk, seal_pk, mac, state, enrolled_at, last_heartbeat, cert"
#define STORE_MACHINE_COLS                                                                              \
	"id, app_id, host_id, desired_release, running_release, state, pid, exit_status, exit_signal, "   \
	"started_at, restarts, created_at, updated_at"
#define STORE_RELEASE_COLS                                                                              \
	"app_id, version, config, secrets_version, status, reason, actor, previous_version, "             \
	"previous_secrets, progress, created_at, updated_at"

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
	/* migrations[i] is the SQL script of schema version i + 1. */
	const char *const *migrations;
	size_t n_migrations;
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
