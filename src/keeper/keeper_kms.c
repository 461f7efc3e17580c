/*
 * keeper_kms.c — app KMS keys (kms.h, docs/CRYPTO.md "App KMS keys"):
 * made and rotated here, stored wrapped, and used here for a machine that
 * keeper_kms_grant admits. A key is unwrapped into secure memory for one
 * operation and wiped right after; it never leaves the keeper.
 */
#include <string.h>

#include <sodium.h>

#include "keeper.h"
#include "keywrap.h"
#include "kms.h"
#include "log.h"
#include "banned.h"

_Static_assert(KEYWRAP_OVERHEAD + KMS_KEY_LEN <= STORE_KMS_BLOB_MAX && KMS_PUBLIC_KEY_LEN <= STORE_KMS_BLOB_MAX,
	       "a KMS key fits its row");
_Static_assert(KMS_NAME_MAX + 1 == STORE_KMS_NAME_SIZE, "a key name fits its row");

enum coffer_err keeper_kms_make(const struct keeper_keys *keys, struct store *s, const char *app_id,
				const char *name, const char *type, struct store_kms_key *out)
{
	struct store_kms_key row, latest;
	struct secret *key = NULL;
	struct buf aad, wrapped;
	enum kms_type t;
	enum coffer_err rc;

	buf_init(&aad, KMS_AAD_MAX);
	buf_init(&wrapped, STORE_KMS_BLOB_MAX);
	memset(&row, 0, sizeof(row));
	if (!kms_name_ok(name) || (type && kms_type_parse(type, &t))) {
		rc = COFFER_ERR_INVALID;
		goto out;
	}
	rc = store_kms_key_get(s, app_id, name, 0, &latest);
	if (type && rc == COFFER_OK)
		rc = COFFER_ERR_CONFLICT; /* gen: the name is taken */
	if (type && rc == COFFER_ERR_NOT_FOUND)
		rc = COFFER_OK;
	if (rc)
		goto out;
	if (!type && (kms_type_parse(latest.type, &t) || latest.version >= UINT32_MAX)) {
		rc = COFFER_ERR_CRYPTO; /* the row verified, so the keeper wrote it: never */
		goto out;
	}
	row.version = type ? 1 : latest.version + 1;
	if (str_copy(row.app_id, sizeof(row.app_id), app_id) || str_copy(row.name, sizeof(row.name), name) ||
	    str_copy(row.type, sizeof(row.type), kms_type_name(t))) {
		rc = COFFER_ERR_INVALID;
		goto out;
	}
	rc = secret_new(KMS_KEY_LEN, &key);
	if (rc)
		goto out;
	randombytes_buf(secret_bytes(key), KMS_KEY_LEN);
	if (t == KMS_ED25519) {
		rc = kms_public_key(key, row.public_key);
		row.public_key_len = KMS_PUBLIC_KEY_LEN;
	}
	if (!rc)
		rc = kms_wrap_aad(app_id, name, t, (uint32_t)row.version, &aad);
	if (!rc)
		rc = keywrap_seal(keys->kms_wrap, aad.ptr, aad.len, key, &wrapped);
	if (rc)
		goto out;
	memcpy(row.wrapped, wrapped.ptr, wrapped.len);
	row.wrapped_len = wrapped.len;
	rc = store_kms_key_put(s, &row);
	if (rc)
		goto out;
	log_info("kms_key_made", LF_S("app_id", app_id), LF_S("name", name), LF_S("type", row.type),
		 LF_I("version", row.version));
	*out = row;
out:
	secret_free(key);
	buf_release(&wrapped);
	buf_release(&aad);
	return rc;
}

/* Version `version` (0: the newest) of the key, unwrapped; the type it has. */
static enum coffer_err load(const struct keeper_keys *keys, struct store *s, const char *app_id, const char *name,
			    uint64_t version, enum kms_type *t, uint64_t *got, struct secret **key, const char **why)
{
	struct store_kms_key row;
	struct buf aad;
	enum coffer_err rc = store_kms_key_get(s, app_id, name, version, &row);
	buf_init(&aad, KMS_AAD_MAX);
	if (rc == COFFER_ERR_NOT_FOUND)
		*why = version ? "no such key version" : "no such key";
	if (rc == COFFER_ERR_TAMPERED)
		*why = "key row failed authentication (tampered)";
	if (rc)
		goto out;
	if (kms_type_parse(row.type, t) || row.version > UINT32_MAX) {
		rc = COFFER_ERR_CRYPTO;
		goto out;
	}
	/* The AAD is the one asked for, never the row's: a row moved here does not open. */
	rc = kms_wrap_aad(app_id, name, *t, (uint32_t)row.version, &aad);
	if (!rc)
		rc = keywrap_open(keys->kms_wrap, aad.ptr, aad.len, row.wrapped, row.wrapped_len, key);
	if (rc == COFFER_ERR_CRYPTO || rc == COFFER_ERR_INVALID || (!rc && secret_len(*key) != KMS_KEY_LEN)) {
		if (!rc)
			secret_free(*key);
		*key = NULL;
		log_warn("kms_key_tampered", LF_S("app_id", app_id), LF_S("name", name), LF_I("version", row.version));
		*why = "key failed verification";
		rc = COFFER_ERR_CRYPTO;
		goto out;
	}
	if (!rc)
		*got = row.version;
out:
	buf_release(&aad);
	return rc;
}

enum coffer_err keeper_kms_run(const struct keeper_keys *keys, struct store *s, const char *app_id,
			       const struct keeper_kms_request *req, struct buf *out, int *valid, uint64_t *version,
			       const char **why)
{
	struct secret *key = NULL, *pt = NULL;
	struct buf aad;
	enum kms_type t;
	uint32_t asked = 0;
	uint64_t got = 0;
	int sign = strcmp(req->op, "sign") == 0, verify = strcmp(req->op, "verify") == 0;
	int encrypt = strcmp(req->op, "encrypt") == 0, decrypt = strcmp(req->op, "decrypt") == 0;
	enum coffer_err rc = COFFER_OK;

	buf_init(&aad, KMS_AAD_MAX);
	*why = NULL;
	if (!sign && !verify && !encrypt && !decrypt) {
		*why = "unknown operation";
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	if (verify || decrypt) {
		rc = kms_envelope_version(verify ? req->sig : req->data, verify ? req->sig_len : req->len, &asked);
		if (rc) {
			*why = verify ? "malformed signature" : "malformed ciphertext";
			goto out;
		}
	}
	rc = load(keys, s, app_id, req->name, asked, &t, &got, &key, why);
	if (rc)
		goto out;
	if ((t == KMS_AEAD) != (encrypt || decrypt)) {
		*why = t == KMS_AEAD ? "an aead key encrypts and decrypts only" : "this key signs and verifies only";
		rc = COFFER_ERR_INVALID;
		goto out;
	}
	if (encrypt || decrypt)
		rc = kms_wrap_aad(app_id, req->name, t, (uint32_t)got, &aad);
	if (rc)
		goto out;
	if (sign)
		rc = kms_sign(t, key, (uint32_t)got, req->data, req->len, out);
	else if (encrypt)
		rc = kms_encrypt(key, (uint32_t)got, &aad, req->data, req->len, out);
	else if (verify) {
		rc = kms_verify(t, key, req->sig, req->sig_len, req->data, req->len);
		*valid = rc == COFFER_OK;
		if (rc == COFFER_ERR_CRYPTO)
			rc = COFFER_OK;
	} else {
		rc = kms_decrypt(key, &aad, req->data, req->len, &pt);
		if (rc == COFFER_ERR_CRYPTO)
			*why = "ciphertext does not open with this key";
		if (!rc)
			rc = buf_add(out, secret_cbytes(pt), secret_len(pt));
	}
	if (rc == COFFER_ERR_TOO_LARGE)
		*why = "data too large";
	if (!rc)
		*version = got;
out:
	secret_free(pt);
	secret_free(key);
	buf_release(&aad);
	return rc;
}
