/*
 * The generic read and write paths of the store's entities (store_int.h):
 * one function turns a result row into a C struct by the entity's column
 * table, checking every cell (type, size, NULs), and one binds a struct's
 * columns as parameters. The entity files only describe their rows.
 * Row authentication (store.h) lives here too, so that no caller can read
 * or write an authenticated row around it.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "log.h"
#include "store_int.h"

#include "banned.h"

#define AT(item, off, type) ((type *)(void *)((unsigned char *)(item) + (off)))

static int64_t cell_int(const struct store_cell *c)
{
	return c->type == STORE_V_INT ? c->i : 0;
}

static int is_bytes(const struct store_cell *c)
{
	return c->type == STORE_V_TEXT || c->type == STORE_V_BLOB;
}

/* Moves a text or blob cell's bytes out to *dst (NULL reads as ""). */
static enum coffer_err cell_take(struct store_cell *c, void **dst, size_t *len)
{
	if (c->type == STORE_V_NULL) {
		*dst = calloc(1, 1);
		*len = 0;
		return *dst ? COFFER_OK : COFFER_ERR_NOMEM;
	}
	if (!is_bytes(c))
		return COFFER_ERR_STORE;
	*dst = c->p;
	*len = c->len;
	c->p = NULL;
	c->type = STORE_V_NULL;
	return COFFER_OK;
}

/* Reads one cell into its place in item; a cell that does not fit its column is COFFER_ERR_STORE. */
static enum coffer_err read_col(const struct store_col *col, struct store_cell *c, void *item)
{
	size_t len;
	switch (col->type) {
	case COL_TEXT:
		if (c->type == STORE_V_NULL) {
			AT(item, col->off, char)[0] = '\0';
			return COFFER_OK;
		}
		if (!is_bytes(c) || c->len >= col->size || memchr(c->p, '\0', c->len))
			return COFFER_ERR_STORE;
		memcpy(AT(item, col->off, char), c->p, c->len + 1);
		return COFFER_OK;
	case COL_BLOB:
		if (c->type == STORE_V_NULL && (col->flags & COL_NULL_OK)) {
			*AT(item, col->len_off, size_t) = 0;
			return COFFER_OK;
		}
		if (!is_bytes(c) || c->len > col->size || ((col->flags & COL_EXACT) && c->len != col->size))
			return COFFER_ERR_STORE;
		if (c->len)
			memcpy(AT(item, col->off, unsigned char), c->p, c->len);
		if (!(col->flags & COL_EXACT))
			*AT(item, col->len_off, size_t) = c->len;
		return COFFER_OK;
	case COL_INT:
		*AT(item, col->off, int64_t) = cell_int(c);
		return COFFER_OK;
	case COL_UINT:
		*AT(item, col->off, uint64_t) = cell_int(c) < 0 ? 0 : (uint64_t)cell_int(c);
		return COFFER_OK;
	case COL_CINT:
		*AT(item, col->off, int) = c->type == STORE_V_NULL && (col->flags & COL_NULL_NEG) ? -1 : (int)cell_int(c);
		return COFFER_OK;
	case COL_STR:
		if (col->size && c->type != STORE_V_NULL &&
		    (c->len > col->size || (c->p && memchr(c->p, '\0', c->len))))
			return COFFER_ERR_STORE;
		return cell_take(c, (void **)AT(item, col->off, char *), &len);
	case COL_BYTES:
		return cell_take(c, (void **)AT(item, col->off, unsigned char *), AT(item, col->len_off, size_t));
	case COL_SKIP:
	case COL_MAC:
		return COFFER_OK;
	}
	return COFFER_ERR_INTERNAL;
}

/* ---- row authentication ---- */

#define ROW_MAC_CONTEXT "coffer row v1"
#define ROW_KEY_TEXT_MAX 160 /* the primary key as row_tampered logs it */

static const char *const table_names[STORE_TABLE__COUNT] = {
	[STORE_TABLE_TOKENS] = "tokens",
	[STORE_TABLE_MACHINES] = "machines",
	[STORE_TABLE_RELEASES] = "releases",
	[STORE_TABLE_SECRET_VERSIONS] = "secret_versions",
	[STORE_TABLE_APPS] = "apps",
	[STORE_TABLE_KMS_KEYS] = "kms_keys",
};

const char *store_table_name(enum store_table t)
{
	return (unsigned)t < STORE_TABLE__COUNT ? table_names[t] : NULL;
}

enum coffer_err store_auth_key(struct store *s, enum store_table t, const unsigned char key[STORE_ROW_KEY_LEN])
{
	if (!s || !key || !store_table_name(t))
		return COFFER_ERR_INVALID;
	memcpy(s->keys[t], key, STORE_ROW_KEY_LEN);
	s->has_key[t] = 1;
	return COFFER_OK;
}

static void mac_u64(crypto_auth_hmacsha256_state *st, uint64_t v)
{
	unsigned char b[8];
	be_put(b, v, sizeof(b));
	crypto_auth_hmacsha256_update(st, b, sizeof(b));
}

/* Length-prefixed bytes. */
static void mac_bytes(crypto_auth_hmacsha256_state *st, const void *p, size_t len)
{
	mac_u64(st, len);
	if (len)
		crypto_auth_hmacsha256_update(st, p, len);
}

/* A cell by its kind (a text and a blob of the same bytes are the same value, NULL is none of them). */
static void mac_cell(crypto_auth_hmacsha256_state *st, const struct store_cell *c)
{
	unsigned char tag = c->type == STORE_V_NULL ? 0 : c->type == STORE_V_INT ? 1 : 2;
	crypto_auth_hmacsha256_update(st, &tag, 1);
	if (tag == 1)
		mac_u64(st, (uint64_t)c->i);
	else if (tag == 2)
		mac_bytes(st, c->p, c->len);
}

/*
 * HMAC-SHA256 over "coffer row v1" || 0 || table || then, for each COL_KEY
 * and COL_AUTH column (and COL_AUTH_SET column that is not NULL) in column
 * order, its name and its cell; every text
 * is length-prefixed (u64, big-endian), so no two rows encode alike.
 */
static enum coffer_err row_mac(const struct store *s, const struct store_entity *ent, const struct store_cell *row,
			       unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
	enum store_table t = ent->auth->table;
	crypto_auth_hmacsha256_state st;
	if (!s->has_key[t]) {
		log_error("row_key_missing", LF_S("table", table_names[t]));
		return COFFER_ERR_INTERNAL;
	}
	crypto_auth_hmacsha256_init(&st, s->keys[t], STORE_ROW_KEY_LEN);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)ROW_MAC_CONTEXT, sizeof(ROW_MAC_CONTEXT));
	mac_bytes(&st, table_names[t], strlen(table_names[t]));
	for (size_t k = 0; k < ent->ncols; k++) {
		if (!(ent->cols[k].flags & (COL_KEY | COL_AUTH | COL_AUTH_SET)))
			continue;
		if ((ent->cols[k].flags & COL_AUTH_SET) && row[k].type == STORE_V_NULL)
			continue;
		mac_bytes(&st, ent->cols[k].name, strlen(ent->cols[k].name));
		mac_cell(&st, &row[k]);
	}
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
	return COFFER_OK;
}

static const struct store_cell *mac_cell_of(const struct store_entity *ent, const struct store_cell *row)
{
	for (size_t k = 0; k < ent->ncols; k++)
		if (ent->cols[k].type == COL_MAC)
			return &row[k];
	return NULL;
}

/* The primary key as text, "a/b", cut at size (for the log, which escapes what it is given). */
static void key_text(const struct store_entity *ent, const struct store_cell *row, char *out, size_t size)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t k = 0; k < ent->ncols && used < size; k++) {
		const struct store_cell *c = &row[k];
		int n;
		if (!(ent->cols[k].flags & COL_KEY))
			continue;
		if (c->type == STORE_V_INT)
			n = snprintf(out + used, size - used, "%s%lld", used ? "/" : "", (long long)c->i);
		else
			n = snprintf(out + used, size - used, "%s%.*s", used ? "/" : "", c->p ? (int)c->len : 0,
				     c->p ? (const char *)c->p : "");
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* Row i of r as ent's table authenticates it: COFFER_ERR_TAMPERED (logged) when its MAC does not verify. */
static enum coffer_err row_verify(const struct store *s, const struct store_entity *ent, const struct store_rows *r,
				  size_t i)
{
	unsigned char want[crypto_auth_hmacsha256_BYTES];
	const struct store_cell *row, *mac;
	char key[ROW_KEY_TEXT_MAX];
	enum coffer_err rc;
	if (!ent->auth)
		return COFFER_OK;
	row = &r->cells[i * r->ncols];
	mac = mac_cell_of(ent, row);
	if (r->ncols < ent->ncols || !mac)
		return COFFER_ERR_INTERNAL;
	rc = row_mac(s, ent, row, want);
	if (rc)
		return rc;
	if (mac->type == STORE_V_BLOB && mac->len == sizeof(want) && sodium_memcmp(mac->p, want, sizeof(want)) == 0)
		return COFFER_OK;
	key_text(ent, row, key, sizeof(key));
	log_warn("row_tampered", LF_S("table", table_names[ent->auth->table]), LF_S("key", key));
	return COFFER_ERR_TAMPERED;
}

/* Reads row i into item (zeroed first); on an error item may own part of the row (ent->clear frees it). */
static enum coffer_err read_row(const struct store_entity *ent, struct store_rows *r, size_t i, void *item)
{
	enum coffer_err rc = COFFER_OK;
	memset(item, 0, ent->size);
	if (r->ncols < ent->ncols)
		return COFFER_ERR_INTERNAL;
	for (size_t k = 0; k < ent->ncols && rc == COFFER_OK; k++)
		rc = read_col(&ent->cols[k], &r->cells[i * r->ncols + k], item);
	return rc;
}

static void item_clear(const struct store_entity *ent, void *item)
{
	if (ent->clear)
		ent->clear(item);
}

enum coffer_err store_get(struct store *s, const struct store_entity *ent, enum store_q q,
			  const struct store_val *p, size_t n, void *out)
{
	struct store_rows rows = { 0 };
	void *item = calloc(1, ent->size);
	enum coffer_err rc = item ? store_run(s, q, p, n, &rows) : COFFER_ERR_NOMEM;
	if (rc)
		goto out;
	if (rows.nrows == 0) {
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	rc = row_verify(s, ent, &rows, 0);
	if (!rc)
		rc = read_row(ent, &rows, 0, item);
	if (rc) {
		item_clear(ent, item);
		goto out;
	}
	memcpy(out, item, ent->size);
out:
	free(item);
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_list(struct store *s, const struct store_entity *ent, enum store_q q,
			   const struct store_val *p, size_t n, void **items, size_t *count)
{
	struct store_rows rows = { 0 };
	unsigned char *l = NULL;
	size_t got = 0;
	enum coffer_err rc = store_run(s, q, p, n, &rows);
	if (rc)
		goto out;
	if (rows.nrows) {
		l = calloc(rows.nrows, ent->size);
		if (!l) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	for (; got < rows.nrows; got++) {
		rc = row_verify(s, ent, &rows, got);
		if (rc)
			goto out;
		rc = read_row(ent, &rows, got, l + got * ent->size);
		if (rc) {
			got++; /* so that the partly read item is freed too */
			goto out;
		}
	}
	*items = l;
	*count = got;
	l = NULL;
out:
	store_items_free(ent, (void **)&l, &got);
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_get_by(struct store *s, const struct store_entity *ent, enum store_q q, const char *key,
			     void *out)
{
	if (!key)
		return COFFER_ERR_INVALID;
	return store_get(s, ent, q, PARAMS(VT(key)), out);
}

enum coffer_err store_list_by(struct store *s, const struct store_entity *ent, enum store_q q, const char *key,
			      void **items, size_t *count)
{
	if (!key)
		return COFFER_ERR_INVALID;
	return store_list(s, ent, q, PARAMS(VT(key)), items, count);
}

void store_items_free(const struct store_entity *ent, void **items, size_t *count)
{
	unsigned char *l = *items;
	for (size_t i = 0; l && i < *count; i++)
		item_clear(ent, l + i * ent->size);
	free(l);
	*items = NULL;
	*count = 0;
}

/* The parameter for one column of item; COL_ZERO_NULL makes "" and 0 NULL. */
static struct store_val col_val(const struct store_col *col, const void *item)
{
	static const unsigned char empty[1];
	const char *text;
	int64_t i;
	switch (col->type) {
	case COL_TEXT:
	case COL_STR:
		text = col->type == COL_TEXT ? AT(item, col->off, const char) : *AT(item, col->off, const char *);
		if (!text)
			text = "";
		return (col->flags & COL_ZERO_NULL) && !*text ? VNULL : VT(text);
	case COL_BLOB:
		return VB(AT(item, col->off, const unsigned char),
			  (col->flags & COL_EXACT) ? col->size : *AT(item, col->len_off, const size_t));
	case COL_BYTES:
		if (!*AT(item, col->off, const unsigned char *))
			return VB(empty, 0);
		return VB(*AT(item, col->off, const unsigned char *), *AT(item, col->len_off, const size_t));
	case COL_INT:
	case COL_UINT:
		i = *AT(item, col->off, const int64_t);
		return (col->flags & COL_ZERO_NULL) && !i ? VNULL : VI(i);
	case COL_CINT:
		return VI(*AT(item, col->off, const int));
	case COL_SKIP:
	case COL_MAC:
		break;
	}
	return VNULL;
}

enum coffer_err store_insert(struct store *s, const struct store_entity *ent, enum store_q q, const void *item)
{
	struct store_val p[STORE_MAX_PARAMS];
	size_t n = 0;
	for (size_t k = 0; k < ent->ncols; k++) {
		if (!(ent->cols[k].flags & COL_INS))
			continue;
		if (n == STORE_MAX_PARAMS)
			return COFFER_ERR_INTERNAL;
		p[n++] = col_val(&ent->cols[k], item);
	}
	if (!ent->auth)
		return store_run(s, q, p, n, NULL);
	struct store_val key[STORE_MAX_PARAMS];
	size_t k = 0;
	for (size_t c = 0; c < ent->ncols; c++)
		if ((ent->cols[c].flags & COL_KEY) && k < STORE_MAX_PARAMS)
			key[k++] = col_val(&ent->cols[c], item);
	return store_write(s, ent, q, p, n, key, k);
}

/*
 * Seals the row of key: reads it as written and stores its MAC. The row is
 * read back, so nothing in the database may change it on the way: coffer
 * makes no triggers or rewrite rules, and one found (a store writer's,
 * which would edit the row between the write and this read, to have it
 * sealed) refuses every authenticated write.
 */
enum coffer_err store_row_seal(struct store *s, const struct store_entity *ent, const struct store_val *key, size_t k)
{
	struct store_rows rows = { 0 };
	struct store_val p[STORE_MAX_PARAMS];
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	uint64_t triggers = 0;
	enum coffer_err rc = store_run_uint(s, STORE_Q_TRIGGERS, NULL, 0, &triggers);
	if (rc == COFFER_OK && triggers) {
		log_error("row_seal_refused", LF_S("table", table_names[ent->auth->table]),
			  LF_S("reason", "the database has triggers or rewrite rules coffer did not make"));
		return COFFER_ERR_TAMPERED;
	}
	if (rc == COFFER_OK)
		rc = k < STORE_MAX_PARAMS ? store_run(s, ent->auth->row, key, k, &rows) : COFFER_ERR_INTERNAL;
	if (rc == COFFER_OK && (rows.nrows != 1 || rows.ncols < ent->ncols))
		rc = COFFER_ERR_INTERNAL; /* q wrote another row than key names */
	if (rc == COFFER_OK)
		rc = row_mac(s, ent, rows.cells, mac);
	store_rows_release(&rows);
	if (rc)
		return rc;
	memcpy(p, key, k * sizeof(*key));
	p[k] = VB(mac, sizeof(mac));
	return store_run(s, ent->auth->seal, p, k + 1, NULL);
}

enum coffer_err store_write(struct store *s, const struct store_entity *ent, enum store_q q,
			    const struct store_val *p, size_t n, const struct store_val *key, size_t k)
{
	struct store_rows rows = { 0 };
	int none = 0;
	enum coffer_err rc;
	if (!ent->auth)
		return COFFER_ERR_INTERNAL;
	if (!s->has_key[ent->auth->table]) { /* before anything is written */
		log_error("row_key_missing", LF_S("table", table_names[ent->auth->table]));
		return COFFER_ERR_INTERNAL;
	}
	rc = store_begin(s, 1);
	if (rc)
		return rc;
	/* The row as it was, locked: an edited row is refused, not sealed anew. */
	rc = store_run(s, ent->auth->row, key, k, &rows);
	if (rc == COFFER_OK && rows.nrows)
		rc = row_verify(s, ent, &rows, 0);
	if (rc == COFFER_OK)
		rc = store_run(s, q, p, n, &rows);
	/* q matched no row: nothing was written, which is no failure of the caller's transaction */
	none = rc == COFFER_OK && rows.ncols && !rows.nrows;
	store_rows_release(&rows);
	if (rc == COFFER_OK && !none)
		rc = store_row_seal(s, ent, key, k);
	rc = store_finish(s, rc);
	return rc == COFFER_OK && none ? COFFER_ERR_NOT_FOUND : rc;
}
