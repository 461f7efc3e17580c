/*
 * Orgs, tokens, apps and app keys: the tenancy of the store. Each entity
 * is a column table (store_int.h); the functions below keep only their
 * checks and rules.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#include "banned.h"

/* ---- orgs ---- */

static const struct store_col org_cols[] = {
	COLF(struct store_org, id, COL_TEXT, COL_INS),
	COLF(struct store_org, name, COL_TEXT, COL_INS),
	COLF(struct store_org, created_at, COL_INT, COL_INS),
};
static const struct store_entity org_entity = ENTITY("org", struct store_org, org_cols, NULL);

enum coffer_err store_org_create(struct store *s, const char *name, struct store_org *out)
{
	struct store_org o = { 0 };
	enum coffer_err rc;
	if (!name)
		return COFFER_ERR_INVALID;
	if (!store_valid_text(name, sizeof(o.name)))
		return COFFER_ERR_TOO_LARGE;
	store_new_id(o.id);
	memcpy(o.name, name, strlen(name) + 1);
	o.created_at = store_now_ms();
	rc = store_insert(s, &org_entity, STORE_Q_ORG_INSERT, &o);
	if (rc)
		return rc;
	*out = o;
	return COFFER_OK;
}

enum coffer_err store_org_get_by_name(struct store *s, const char *name, struct store_org *out)
{
	return store_get_by(s, &org_entity, STORE_Q_ORG_BY_NAME, name, out);
}

enum coffer_err store_org_get(struct store *s, const char *id, struct store_org *out)
{
	return store_get_by(s, &org_entity, STORE_Q_ORG_BY_ID, id, out);
}

/* ---- tokens ---- */

static const struct store_col token_cols[] = {
	COLF(struct store_token, id, COL_TEXT, COL_INS | COL_KEY),
	COLF(struct store_token, org_id, COL_TEXT, COL_INS | COL_AUTH),
	COLF(struct store_token, hash, COL_BLOB, COL_EXACT | COL_INS | COL_AUTH),
	COLF(struct store_token, role, COL_TEXT, COL_INS | COL_AUTH),
	COLF(struct store_token, app_id, COL_TEXT, COL_INS | COL_ZERO_NULL | COL_AUTH),
	COLF(struct store_token, expires_at, COL_INT, COL_INS | COL_ZERO_NULL | COL_AUTH),
	COLF(struct store_token, revoked_at, COL_INT, COL_AUTH),
	COLF(struct store_token, created_at, COL_INT, COL_INS | COL_AUTH),
	COLF(struct store_token, description, COL_TEXT, COL_INS | COL_AUTH),
	COLF(struct store_token, rotated_at, COL_INT, COL_AUTH_SET),
	COLMAC,
};
static const struct store_auth token_auth = { STORE_TABLE_TOKENS, STORE_Q_TOKEN_ROW, STORE_Q_TOKEN_SEAL };
static const struct store_entity token_entity = AUTH_ENTITY("token", struct store_token, token_cols, NULL, &token_auth);

enum coffer_err store_token_insert(struct store *s, const struct store_token *in, struct store_token *out)
{
	struct store_token t;
	enum coffer_err rc;
	if (!store_valid_text(in->org_id, sizeof(t.org_id)) || !store_valid_text(in->role, sizeof(t.role)) ||
	    !store_valid_text(in->app_id, sizeof(t.app_id)) ||
	    !store_valid_text(in->description, sizeof(t.description)) || in->expires_at < 0)
		return COFFER_ERR_INVALID;
	t = *in;
	store_new_id(t.id);
	t.revoked_at = 0;
	t.rotated_at = 0;
	t.created_at = store_now_ms();
	rc = store_insert(s, &token_entity, STORE_Q_TOKEN_INSERT, &t);
	if (rc)
		return rc;
	*out = t;
	return COFFER_OK;
}

enum coffer_err store_token_get_by_hash(struct store *s, const unsigned char hash[STORE_HASH_LEN],
					struct store_token *out)
{
	return store_get(s, &token_entity, STORE_Q_TOKEN_BY_HASH, PARAMS(VB(hash, STORE_HASH_LEN)), out);
}

enum coffer_err store_token_key_check(struct store *s)
{
	struct store_token t;
	enum coffer_err rc = store_get(s, &token_entity, STORE_Q_TOKEN_FIRST, NULL, 0, &t);
	return rc == COFFER_ERR_NOT_FOUND ? COFFER_OK : rc;
}

enum coffer_err store_token_get(struct store *s, const char *org_id, const char *id, struct store_token *out)
{
	if (!org_id || !id)
		return COFFER_ERR_INVALID;
	return store_get(s, &token_entity, STORE_Q_TOKEN_GET, PARAMS(VT(id), VT(org_id)), out);
}

enum coffer_err store_token_list(struct store *s, const char *org_id, struct store_token_list *out)
{
	return store_list_by(s, &token_entity, STORE_Q_TOKEN_LIST, org_id, (void **)&out->items, &out->n);
}

void store_token_list_release(struct store_token_list *l)
{
	store_items_free(&token_entity, (void **)&l->items, &l->n);
}

enum coffer_err store_token_revoke(struct store *s, const char *org_id, const char *token_id)
{
	if (!org_id || !token_id)
		return COFFER_ERR_INVALID;
	return store_write(s, &token_entity, STORE_Q_TOKEN_REVOKE,
			   PARAMS(VT(token_id), VT(org_id), VI(store_now_ms())), PARAMS(VT(token_id)));
}

enum coffer_err store_token_rotate(struct store *s, const char *org_id, const char *old_id, int64_t old_until,
				   const struct store_token *in, struct store_token *out)
{
	struct store_token t;
	enum coffer_err rc;
	if (!org_id || !old_id || !in || strcmp(in->org_id, org_id) != 0 || old_until <= 0)
		return COFFER_ERR_INVALID;
	rc = store_tx_begin(s);
	if (rc)
		return rc;
	rc = store_write(s, &token_entity, STORE_Q_TOKEN_EXPIRE_BY, PARAMS(VT(old_id), VT(org_id), VI(old_until), VI(store_now_ms())),
			 PARAMS(VT(old_id)));
	if (!rc)
		rc = store_token_insert(s, in, &t);
	rc = store_tx_end(s, rc);
	if (rc)
		return rc;
	*out = t;
	return COFFER_OK;
}

/* ---- apps ---- */

static const struct store_col app_cols[] = {
	COLF(struct store_app, id, COL_TEXT, COL_INS | COL_KEY),
	COLF(struct store_app, org_id, COL_TEXT, COL_INS | COL_AUTH),
	COLF(struct store_app, name, COL_TEXT, COL_INS | COL_AUTH),
	COLF(struct store_app, created_at, COL_INT, COL_INS | COL_AUTH),
	COLF(struct store_app, secrets_head, COL_UINT, COL_AUTH),
	COLF(struct store_app, deployed_version, COL_UINT, COL_AUTH),
	COLF(struct store_app, current_release, COL_UINT, COL_AUTH),
	COLF(struct store_app, grace_ms, COL_INT, COL_INS | COL_AUTH),
	COLMAC,
};
static const struct store_auth app_auth = { STORE_TABLE_APPS, STORE_Q_APP_LOCK, STORE_Q_APP_SEAL };
const struct store_entity store_app_entity = AUTH_ENTITY("app", struct store_app, app_cols, NULL, &app_auth);

enum coffer_err store_app_create(struct store *s, const char *org_id, const char *name, int64_t grace_ms,
				 struct store_app *out)
{
	struct store_app a = { 0 };
	enum coffer_err rc;
	if (!org_id || !name || grace_ms < 0)
		return COFFER_ERR_INVALID;
	if (!store_valid_text(org_id, sizeof(a.org_id)) || !store_valid_text(name, sizeof(a.name)))
		return COFFER_ERR_TOO_LARGE;
	store_new_id(a.id);
	memcpy(a.org_id, org_id, strlen(org_id) + 1);
	memcpy(a.name, name, strlen(name) + 1);
	a.created_at = store_now_ms();
	a.grace_ms = grace_ms ? grace_ms : STORE_GRACE_MS_DEFAULT;
	rc = store_insert(s, &store_app_entity, STORE_Q_APP_INSERT, &a);
	if (rc)
		return rc;
	*out = a;
	return COFFER_OK;
}

enum coffer_err store_lock_app_row(struct store *s, const char *app_id, struct store_app *out)
{
	struct store_app a;
	return store_get(s, &store_app_entity, STORE_Q_APP_LOCK, PARAMS(VT(app_id)), out ? out : &a);
}

enum coffer_err store_lock_app(struct store *s, const char *app_id)
{
	return store_lock_app_row(s, app_id, NULL);
}

enum coffer_err store_app_get_by_name(struct store *s, const char *name, struct store_app *out)
{
	return store_get_by(s, &store_app_entity, STORE_Q_APP_BY_NAME, name, out);
}

enum coffer_err store_app_get(struct store *s, const char *id, struct store_app *out)
{
	return store_get_by(s, &store_app_entity, STORE_Q_APP_BY_ID, id, out);
}

enum coffer_err store_app_list(struct store *s, const char *org_id, struct store_app_list *out)
{
	return store_list_by(s, &store_app_entity, STORE_Q_APP_LIST, org_id, (void **)&out->items, &out->n);
}

void store_app_list_release(struct store_app_list *l)
{
	store_items_free(&store_app_entity, (void **)&l->items, &l->n);
}

enum coffer_err store_app_destroy(struct store *s, const char *app_id)
{
	enum coffer_err rc;
	if (!app_id)
		return COFFER_ERR_INVALID;
	rc = store_begin(s, 1);
	if (rc)
		return rc;
	rc = store_lock_app(s, app_id);
	/* The schema's ON DELETE CASCADE removes everything that hangs from the app. */
	if (rc == COFFER_OK)
		rc = store_run_one(s, STORE_Q_APP_DELETE, PARAMS(VT(app_id)));
	return store_finish(s, rc);
}

/* ---- app keys ---- */

static const struct store_col key_cols[] = {
	COL(struct store_app_key, app_id, COL_TEXT),
	COL(struct store_app_key, version, COL_UINT),
	COLBLOB(struct store_app_key, public_key, public_key_len, 0),
	COLBLOB(struct store_app_key, wrapped_private, wrapped_private_len, 0),
	COL(struct store_app_key, created_at, COL_INT),
	COLBLOB(struct store_app_key, org_sig, org_sig_len, COL_NULL_OK),
};
static const struct store_entity key_entity = ENTITY("app key", struct store_app_key, key_cols, NULL);

enum coffer_err store_app_key_put(struct store *s, const char *app_id, uint64_t version,
				  const unsigned char *public_key, size_t public_key_len,
				  const unsigned char *wrapped_private, size_t wrapped_private_len,
				  const unsigned char org_sig[STORE_APP_ORG_SIG_LEN])
{
	if (!app_id || !public_key || !wrapped_private || !org_sig || version == 0 || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	if (public_key_len > STORE_KEY_BLOB_MAX || wrapped_private_len > STORE_KEY_BLOB_MAX)
		return COFFER_ERR_TOO_LARGE;
	return store_run(s, STORE_Q_KEY_INSERT,
			 PARAMS(VT(app_id), VI(version), VB(public_key, public_key_len),
				VB(wrapped_private, wrapped_private_len), VI(store_now_ms()),
				VB(org_sig, STORE_APP_ORG_SIG_LEN)),
			 NULL);
}

enum coffer_err store_app_key_unbound(struct store *s, struct store_app_key_list *out)
{
	return store_list(s, &key_entity, STORE_Q_KEY_UNBOUND, NULL, 0, (void **)&out->items, &out->n);
}

void store_app_key_list_release(struct store_app_key_list *l)
{
	store_items_free(&key_entity, (void **)&l->items, &l->n);
}

enum coffer_err store_app_key_bind(struct store *s, const char *app_id, uint64_t version,
				   const unsigned char org_sig[STORE_APP_ORG_SIG_LEN])
{
	if (!app_id || !org_sig || version == 0 || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	return store_run_one(s, STORE_Q_KEY_BIND, PARAMS(VT(app_id), VI(version), VB(org_sig, STORE_APP_ORG_SIG_LEN)));
}

enum coffer_err store_app_key_get(struct store *s, const char *app_id, uint64_t version, struct store_app_key *out)
{
	if (!app_id || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	if (version)
		return store_get(s, &key_entity, STORE_Q_KEY_GET, PARAMS(VT(app_id), VI(version)), out);
	return store_get(s, &key_entity, STORE_Q_KEY_LATEST, PARAMS(VT(app_id)), out);
}
