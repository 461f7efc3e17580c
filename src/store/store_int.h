/*
 * store_int.h — what the store's logic files (store_<entity>.c) share.
 * Internal to src/store.
 *
 * store_core.c owns the connection, statements, transactions, ids and
 * times; store_schema.c turns rows into C structs and C structs into
 * parameters, driven by an entity table: the columns of a row, their type
 * and where each lands in the struct. An entity file describes its
 * entities once and lets store_get, store_list and store_insert do the
 * reading and writing; only its domain rules are its own code.
 */
#ifndef COFFER_STORE_INT_H
#define COFFER_STORE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store.h"
#include "store_backend.h"

struct store {
	const struct store_backend *be;
	void *conn;
	int tx_depth;              /* open begin()s: 1 = a function's own transaction, 2 = one inside store_tx_begin */
	enum coffer_err tx_failed; /* the first failure inside the caller's transaction */
	struct store_group *group; /* the group committer its writes join (store_group_run), or NULL */
	/* Row MAC keys (store_auth_key), wiped by store_close. */
	unsigned char keys[STORE_TABLE__COUNT][STORE_ROW_KEY_LEN];
	int has_key[STORE_TABLE__COUNT];
};

/* ---- parameters and statements (store_core.c) ---- */

#define VI(x) ((struct store_val){ .type = STORE_V_INT, .i = (int64_t)(x) })
#define VT(s) ((struct store_val){ .type = STORE_V_TEXT, .p = (s), .len = strlen(s) })
#define VB(b, n) ((struct store_val){ .type = STORE_V_BLOB, .p = (b), .len = (n) })
#define VNULL ((struct store_val){ .type = STORE_V_NULL })
#define PARAMS(...)                                                                                     \
	((const struct store_val[]){ __VA_ARGS__ }),                                                    \
		(sizeof((const struct store_val[]){ __VA_ARGS__ }) / sizeof(struct store_val))

/* Runs q; rows (reset first) may be NULL. A failure spoils the caller's transaction. */
COFFER_MUST_CHECK enum coffer_err store_run(struct store *s, enum store_q q, const struct store_val *p, size_t n,
					    struct store_rows *rows);
/* Runs q, which must return a row (an UPDATE ... RETURNING, a lock): none is COFFER_ERR_NOT_FOUND. */
COFFER_MUST_CHECK enum coffer_err store_run_one(struct store *s, enum store_q q, const struct store_val *p,
						size_t n);
/* Runs q, whose one row holds one integer (a max, a head); none reads as 0. */
COFFER_MUST_CHECK enum coffer_err store_run_uint(struct store *s, enum store_q q, const struct store_val *p,
						 size_t n, uint64_t *out);
/* Opens a transaction, or joins the caller's (store_tx_begin). */
COFFER_MUST_CHECK enum coffer_err store_begin(struct store *s, int write);
/* Commits when rc is COFFER_OK, else rolls back (inside the caller's: notes the failure); the outcome. */
COFFER_MUST_CHECK enum coffer_err store_finish(struct store *s, enum coffer_err rc);
int64_t store_now_ms(void);
int store_valid_text(const char *s, size_t size);
/*
 * Locks the app's row until the end of the transaction and verifies it
 * (row authentication, store_apps.c): NOT_FOUND for an unknown app,
 * TAMPERED for an edited one; *out (may be NULL) is the row.
 */
COFFER_MUST_CHECK enum coffer_err store_lock_app_row(struct store *s, const char *app_id, struct store_app *out);
COFFER_MUST_CHECK enum coffer_err store_lock_app(struct store *s, const char *app_id);

/* The row of an app's secrets version, verified (store_secrets.c); NOT_FOUND if there is none. out
 * NULL: only checks that the row exists and verifies. */
COFFER_MUST_CHECK enum coffer_err store_version_row(struct store *s, const char *app_id, uint64_t version,
						   struct store_secret_version *out);

/* ---- entities (store_schema.c) ---- */

enum store_col_type {
	COL_TEXT,  /* char[size]; NULL reads as "", a longer text or one with a NUL is COFFER_ERR_STORE */
	COL_BLOB,  /* unsigned char[size] and a size_t length at len_off; COL_EXACT: exactly size bytes */
	COL_INT,   /* int64_t; NULL (and a non-integer) reads as 0 */
	COL_UINT,  /* uint64_t; NULL and negatives read as 0 */
	COL_CINT,  /* int; NULL reads as 0, or -1 with COL_NULL_NEG */
	COL_STR,   /* char *, owned by the item; NULL reads as ""; size > 0: at most size bytes, no NUL */
	COL_BYTES, /* unsigned char *, owned by the item, and a size_t length at len_off */
	COL_SKIP,  /* a column the struct does not keep */
	COL_MAC,   /* the row's MAC (row authentication): verified, not kept in the struct */
};

/* Column flags. */
#define COL_EXACT 1u      /* COL_BLOB: exactly size bytes */
#define COL_NULL_OK 2u    /* COL_BLOB: NULL reads as empty */
#define COL_NULL_NEG 4u   /* COL_CINT: NULL reads as -1 */
#define COL_INS 8u        /* bound by store_insert, in column order */
#define COL_ZERO_NULL 16u /* store_insert binds an empty text or a 0 as NULL */
#define COL_KEY 32u       /* part of the primary key: authenticated, and names the row in row_tampered */
#define COL_AUTH 64u      /* authenticated: a change to it without the table's key is refused on read */
/*
 * Authenticated when not NULL: a column added to a table whose rows were
 * sealed before it existed. Such a row (NULL there) verifies as it was
 * sealed; setting the column, or clearing it on a row sealed with it, is
 * refused on read like any COL_AUTH change.
 */
#define COL_AUTH_SET 128u

struct store_col {
	const char *name; /* as in the statement's column list */
	enum store_col_type type;
	size_t off;       /* where the value lands in the struct */
	size_t size;      /* COL_TEXT, COL_BLOB: the array's size; COL_STR: the most bytes (0 = any) */
	size_t len_off;   /* COL_BLOB, COL_BYTES: where the length lands */
	unsigned flags;
};

/*
 * Row authentication of an entity (store.h): its table, and the two
 * statements store_write needs. Its column table names the authenticated
 * columns (COL_KEY, COL_AUTH) and the MAC (COL_MAC), so adding a column to
 * the authenticated set is adding COL_AUTH to its entry.
 */
struct store_auth {
	enum store_table table;
	enum store_q row;  /* the primary key -> the entity's columns, the row locked to the end of the transaction */
	enum store_q seal; /* the primary key, then the MAC */
};

struct store_entity {
	const char *name;
	size_t size; /* of the struct */
	const struct store_col *cols;
	size_t ncols;
	void (*clear)(void *item); /* frees what an item owns and zeroes it; NULL: it owns nothing */
	const struct store_auth *auth; /* NULL: the rows are not authenticated */
};

/* Column table helpers: C(struct, member, type[, flags]) and the like. */
#define COLF(st, m, type, flags) { #m, type, offsetof(st, m), sizeof(((st *)0)->m), 0, flags }
#define COL(st, m, type) COLF(st, m, type, 0)
#define COLN(name, st, m, type, flags) { name, type, offsetof(st, m), sizeof(((st *)0)->m), 0, flags }
#define COLBLOB(st, m, len, flags) { #m, COL_BLOB, offsetof(st, m), sizeof(((st *)0)->m), offsetof(st, len), flags }
#define COLBYTES(name, st, m, len) { name, COL_BYTES, offsetof(st, m), 0, offsetof(st, len), 0 }
#define COLSTRF(name, st, m, max, flags) { name, COL_STR, offsetof(st, m), max, 0, flags }
#define COLSTR(name, st, m, max) COLSTRF(name, st, m, max, 0)
#define COLMAC { "mac", COL_MAC, 0, 0, 0, 0 }
#define ENTITY(nm, st, cols, clr) { nm, sizeof(st), cols, sizeof(cols) / sizeof(cols[0]), clr, NULL }
#define AUTH_ENTITY(nm, st, cols, clr, auth) { nm, sizeof(st), cols, sizeof(cols) / sizeof(cols[0]), clr, auth }

/* The one row of q into *out (ent->size bytes), written only on success; no row is NOT_FOUND. */
COFFER_MUST_CHECK enum coffer_err store_get(struct store *s, const struct store_entity *ent, enum store_q q,
					    const struct store_val *p, size_t n, void *out);
/* Every row of q as a new array of items, written only on success. */
COFFER_MUST_CHECK enum coffer_err store_list(struct store *s, const struct store_entity *ent, enum store_q q,
					     const struct store_val *p, size_t n, void **items, size_t *count);
/* store_get and store_list by one text key (an id, a name): a NULL key is COFFER_ERR_INVALID. */
COFFER_MUST_CHECK enum coffer_err store_get_by(struct store *s, const struct store_entity *ent, enum store_q q,
					       const char *key, void *out);
COFFER_MUST_CHECK enum coffer_err store_list_by(struct store *s, const struct store_entity *ent, enum store_q q,
						const char *key, void **items, size_t *count);
/* Frees an array of items (and what each owns); zeroes *items and *count. */
void store_items_free(const struct store_entity *ent, void **items, size_t *count);
/*
 * Runs q with the COL_INS columns of item as its parameters, in column
 * order; an authenticated entity's row is sealed (store_write, its key
 * from item's COL_KEY columns).
 */
COFFER_MUST_CHECK enum coffer_err store_insert(struct store *s, const struct store_entity *ent, enum store_q q,
					       const void *item);
/*
 * The one write path of an authenticated entity: runs q, which writes the
 * one row whose primary key is key[0..k), and seals it, in one transaction
 * (or the caller's): the row as it was, if there is one, must verify first
 * (COFFER_ERR_TAMPERED: nothing is written, so an edited row is never
 * laundered by an update), then q runs, then the row as it now is gets its
 * MAC. A q that returns columns but no row (an UPDATE ... RETURNING that
 * matched none) is COFFER_ERR_NOT_FOUND.
 */
COFFER_MUST_CHECK enum coffer_err store_write(struct store *s, const struct store_entity *ent, enum store_q q,
					      const struct store_val *p, size_t n, const struct store_val *key,
					      size_t k);

/*
 * Seals the row of key as it is now, unchecked: store_write's last step.
 * Only store_write calls it; tests/tools/rogue_api seals a row it edited,
 * as anyone holding the table's key can.
 */
COFFER_MUST_CHECK enum coffer_err store_row_seal(struct store *s, const struct store_entity *ent,
						 const struct store_val *key, size_t k);

/* The apps row (store_apps.c), authenticated: every write is store_write with the app's id as key. */
extern const struct store_entity store_app_entity;

#endif
