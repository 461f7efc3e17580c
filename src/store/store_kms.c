/*
 * The keeper's KMS keys (schema version 12). The store checks shapes only;
 * every row is authenticated (STORE_TABLE_KMS_KEYS), and the keeper binds
 * each wrapped key to its app, name, type and version (docs/CRYPTO.md).
 */
#include <string.h>

#include "store_int.h"

#include "banned.h"

static const struct store_col kms_cols[] = {
	COLF(struct store_kms_key, app_id, COL_TEXT, COL_INS | COL_KEY),
	COLF(struct store_kms_key, name, COL_TEXT, COL_INS | COL_KEY),
	COLF(struct store_kms_key, version, COL_UINT, COL_INS | COL_KEY),
	COLF(struct store_kms_key, type, COL_TEXT, COL_INS | COL_AUTH),
	COLBLOB(struct store_kms_key, public_key, public_key_len, COL_NULL_OK | COL_INS | COL_AUTH),
	COLBLOB(struct store_kms_key, wrapped, wrapped_len, COL_INS | COL_AUTH),
	COLF(struct store_kms_key, created_at, COL_INT, COL_INS | COL_AUTH),
	COLMAC,
};
static const struct store_auth kms_auth = { STORE_TABLE_KMS_KEYS, STORE_Q_KMS_KEY_ROW, STORE_Q_KMS_KEY_SEAL };
static const struct store_entity kms_entity = AUTH_ENTITY("kms key", struct store_kms_key, kms_cols, NULL, &kms_auth);

static int name_ok(const char *name)
{
	return name && *name && store_valid_text(name, STORE_KMS_NAME_SIZE);
}

enum coffer_err store_kms_key_put(struct store *s, const struct store_kms_key *k)
{
	struct store_kms_key row;
	if (!k || !*k->app_id || !name_ok(k->name) || k->version == 0 || k->version > INT64_MAX || !*k->type ||
	    !store_valid_text(k->type, sizeof(k->type)) || k->wrapped_len == 0 || k->wrapped_len > STORE_KMS_BLOB_MAX ||
	    k->public_key_len > STORE_KMS_BLOB_MAX)
		return COFFER_ERR_INVALID;
	row = *k;
	row.created_at = store_now_ms();
	return store_insert(s, &kms_entity, STORE_Q_KMS_KEY_INSERT, &row);
}

enum coffer_err store_kms_key_get(struct store *s, const char *app_id, const char *name, uint64_t version,
				  struct store_kms_key *out)
{
	if (!app_id || !name_ok(name) || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	if (version)
		return store_get(s, &kms_entity, STORE_Q_KMS_KEY_ROW, PARAMS(VT(app_id), VT(name), VI(version)), out);
	return store_get(s, &kms_entity, STORE_Q_KMS_KEY_LATEST, PARAMS(VT(app_id), VT(name)), out);
}

enum coffer_err store_kms_key_list(struct store *s, const char *app_id, struct store_kms_key_list *out)
{
	return store_list_by(s, &kms_entity, STORE_Q_KMS_KEY_LIST, app_id, (void **)&out->items, &out->n);
}

void store_kms_key_list_release(struct store_kms_key_list *l)
{
	store_items_free(&kms_entity, (void **)&l->items, &l->n);
}

enum coffer_err store_kms_key_delete(struct store *s, const char *app_id, const char *name)
{
	struct store_rows rows = { 0 };
	enum coffer_err rc;
	if (!app_id || !name_ok(name))
		return COFFER_ERR_INVALID;
	rc = store_run(s, STORE_Q_KMS_KEY_DELETE, PARAMS(VT(app_id), VT(name)), &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = COFFER_ERR_NOT_FOUND;
	store_rows_release(&rows);
	return rc;
}
