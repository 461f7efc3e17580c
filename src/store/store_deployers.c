/*
 * Deployers and their signatures (schema version 10). The store checks
 * shapes only: the keeper authenticates each deployer row (its MAC and
 * cert), and each signature verifies under a certified key.
 */
#include <string.h>

#include "store_int.h"

#include "banned.h"

#define TEXT_HASH_LEN (STORE_TEXT_HASH_SIZE - 1)
#define SIGNATURE_LEN (STORE_SIGNATURE_SIZE - 1)

/* ---- deployers ---- */

static const struct store_col deployer_cols[] = {
	COLF(struct store_deployer, id, COL_TEXT, COL_INS),
	COLF(struct store_deployer, org_id, COL_TEXT, COL_INS),
	COLF(struct store_deployer, app_id, COL_TEXT, COL_INS),
	COLF(struct store_deployer, role, COL_TEXT, COL_INS),
	COLF(struct store_deployer, name, COL_TEXT, COL_INS),
	COLF(struct store_deployer, public_key, COL_BLOB, COL_EXACT | COL_INS),
	COLF(struct store_deployer, cert, COL_BLOB, COL_EXACT | COL_INS),
	COLF(struct store_deployer, created_at, COL_INT, COL_INS),
	COLF(struct store_deployer, revoked_at, COL_INT, COL_INS),
	COLF(struct store_deployer, mac, COL_BLOB, COL_EXACT | COL_INS),
};
static const struct store_entity deployer_entity =
	ENTITY("deployer", struct store_deployer, deployer_cols, NULL);

enum coffer_err store_deployer_put(struct store *s, const struct store_deployer *d)
{
	if (!d || !*d->id || !*d->org_id || !*d->app_id || !*d->name || d->created_at < 0 || d->revoked_at < 0 ||
	    (strcmp(d->role, "admin") && strcmp(d->role, "deploy")))
		return COFFER_ERR_INVALID;
	if (!store_valid_text(d->id, sizeof(d->id)) || !store_valid_text(d->org_id, sizeof(d->org_id)) ||
	    !store_valid_text(d->app_id, sizeof(d->app_id)) || !store_valid_text(d->name, sizeof(d->name)))
		return COFFER_ERR_TOO_LARGE;
	return store_insert(s, &deployer_entity, STORE_Q_DEPLOYER_INSERT, d);
}

enum coffer_err store_deployer_get(struct store *s, const char *id, struct store_deployer *out)
{
	return store_get_by(s, &deployer_entity, STORE_Q_DEPLOYER_BY_ID, id, out);
}

enum coffer_err store_deployer_list(struct store *s, const char *org_id, struct store_deployer_list *out)
{
	return store_list_by(s, &deployer_entity, STORE_Q_DEPLOYER_BY_ORG, org_id, (void **)&out->items, &out->n);
}

enum coffer_err store_deployer_list_by_key(struct store *s, const unsigned char *public_key,
					   struct store_deployer_list *out)
{
	if (!public_key)
		return COFFER_ERR_INVALID;
	return store_list(s, &deployer_entity, STORE_Q_DEPLOYER_BY_KEY, PARAMS(VB(public_key, STORE_DEPLOYER_KEY_LEN)),
			  (void **)&out->items, &out->n);
}

void store_deployer_list_release(struct store_deployer_list *l)
{
	store_items_free(&deployer_entity, (void **)&l->items, &l->n);
}

enum coffer_err store_deployer_revoke(struct store *s, const char *id, int64_t revoked_at,
				      const unsigned char mac[STORE_DEPLOYER_MAC_LEN])
{
	if (!id || !*id || revoked_at <= 0 || !mac)
		return COFFER_ERR_INVALID;
	return store_run_one(s, STORE_Q_DEPLOYER_REVOKE, PARAMS(VT(id), VI(revoked_at), VB(mac, STORE_DEPLOYER_MAC_LEN)));
}

/* ---- signatures ---- */

static const struct store_col signature_cols[] = {
	COL(struct store_signature, app_id, COL_TEXT),
	COL(struct store_signature, text_hash, COL_TEXT),
	COL(struct store_signature, signer, COL_TEXT),
	COL(struct store_signature, signature, COL_TEXT),
	COL(struct store_signature, created_at, COL_INT),
};
static const struct store_entity signature_entity =
	ENTITY("signature", struct store_signature, signature_cols, NULL);

/* 1 if s is exactly len characters, each in set. */
static int spelled(const char *s, size_t len, const char *set)
{
	size_t n = 0;
	for (; s && s[n]; n++)
		if (n >= len || !strchr(set, s[n]))
			return 0;
	return s && n == len;
}

static int id_text_ok(const char *s)
{
	return s && *s && store_valid_text(s, STORE_ID_SIZE);
}

enum coffer_err store_signature_add(struct store *s, const char *app_id, const char *text_hash, const char *signer,
				    const char *signature)
{
	if (!id_text_ok(app_id) || !id_text_ok(signer) || !spelled(text_hash, TEXT_HASH_LEN, "0123456789abcdef") ||
	    !spelled(signature, SIGNATURE_LEN,
		     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
		return COFFER_ERR_INVALID;
	/* an unknown app is the foreign key's NOT_FOUND; no row back is another signature there already */
	struct store_rows rows = { 0 };
	enum coffer_err rc = store_run(s, STORE_Q_SIGNATURE_ADD,
				       PARAMS(VT(app_id), VT(text_hash), VT(signer), VT(signature), VI(store_now_ms())),
				       &rows);
	if (rc == COFFER_OK && rows.nrows == 0)
		rc = COFFER_ERR_CONFLICT;
	store_rows_release(&rows);
	return rc;
}

enum coffer_err store_signature_list(struct store *s, const char *app_id, const char *text_hash,
				     struct store_signature_list *out)
{
	if (!app_id || !text_hash)
		return COFFER_ERR_INVALID;
	return store_list(s, &signature_entity, STORE_Q_SIGNATURE_LIST, PARAMS(VT(app_id), VT(text_hash)),
			  (void **)&out->items, &out->n);
}

void store_signature_list_release(struct store_signature_list *l)
{
	store_items_free(&signature_entity, (void **)&l->items, &l->n);
}
