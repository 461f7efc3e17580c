/*
 * The generic read and write paths of the store's entities (store_int.h):
 * one function turns a result row into a C struct by the entity's column
 * table, checking every cell (type, size, NULs), and one binds a struct's
 * columns as parameters. The entity files only describe their rows.
 */
#include <stdlib.h>
#include <string.h>

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
		return COFFER_OK;
	}
	return COFFER_ERR_INTERNAL;
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
	return store_run(s, q, p, n, NULL);
}
