/*
 * keeper_keys.c — the keeper's master key (made, read from a file or the
 * environment), the keys derived from it, and app key pairs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "encode.h"
#include "fs.h"
#include "hkdf.h"
#include "keeper.h"
#include "log.h"
#include "banned.h"

#define STATE_DIR_MODE 0700
#define KEY_FILE_MODE 0600
#define PUB_FILE_MODE 0644
#define CREDENTIAL_FILE_MODE 0600
#define BOOT_KEY_FILE_MODE 0600
#define API_KEY_FILE_MODE 0600
#define HEX_LINE_SIZE (HEX_LEN(32) + 2) /* 64 hex characters, a newline, a NUL */
#define AAD_MAX (2 + VAULT_ID_MAX + 4)

_Static_assert(VAULT_CREDENTIAL_LEN == 32 && JWS_PK_LEN == 32 && VAULT_BOOT_SEED_LEN == 32 &&
		       VAULT_ROWS_KEY_LEN == 32 && VAULT_DIGEST_KEY_LEN == 32,
	       "hex files hold 32 bytes");
_Static_assert(DEPLOYER_SIG_LEN == STORE_APP_ORG_SIG_LEN, "an org signature is a keeper signature");
_Static_assert(KEEPER_PK_BLOB_LEN <= STORE_KEY_BLOB_MAX && KEEPER_WRAPPED_LEN <= STORE_KEY_BLOB_MAX,
	       "app key blobs fit the store");

enum coffer_err keeper_paths_of(const char *state_dir, struct keeper_paths *out)
{
	struct keeper_paths p;
	enum coffer_err rc = fmt_into(p.key, sizeof(p.key), "%s/%s", state_dir, KEEPER_KEY_FILE);
	if (!rc)
		rc = fmt_into(p.pub, sizeof(p.pub), "%s/%s", state_dir, KEEPER_PUB_FILE);
	if (!rc)
		rc = fmt_into(p.credential, sizeof(p.credential), "%s/%s", state_dir, KEEPER_CREDENTIAL_FILE);
	if (!rc)
		rc = fmt_into(p.boot_key, sizeof(p.boot_key), "%s/%s", state_dir, KEEPER_BOOT_KEY_FILE);
	if (!rc)
		rc = fmt_into(p.rows_key, sizeof(p.rows_key), "%s/%s", state_dir, KEEPER_ROWS_KEY_FILE);
	if (!rc)
		rc = fmt_into(p.digest_key, sizeof(p.digest_key), "%s/%s", state_dir, KEEPER_DIGEST_KEY_FILE);
	if (!rc)
		*out = p;
	return rc;
}

/*
 * Writes 32 bytes as a line of hex, created exclusively (COFFER_ERR_CONFLICT
 * if path exists); the line is wiped (it may be the credential or a seed).
 */
static enum coffer_err write_hex_file(const char *path, const unsigned char *bytes, mode_t mode)
{
	char line[HEX_LINE_SIZE];
	enum coffer_err rc = hex_encode(bytes, 32, line, sizeof(line) - 1);
	if (!rc) {
		line[HEX_LEN(32)] = '\n';
		rc = fs_write_atomic(path, line, HEX_LEN(32) + 1, mode, 1);
	}
	sodium_memzero(line, sizeof(line));
	return rc;
}

/* Writes the file unless it exists (never overwritten); counts what it wrote. */
static enum coffer_err add_hex_file(const char *path, const unsigned char *bytes, mode_t mode, unsigned *added)
{
	enum coffer_err rc = write_hex_file(path, bytes, mode);
	if (rc == COFFER_ERR_CONFLICT)
		return COFFER_OK;
	if (!rc)
		(*added)++;
	return rc;
}

/* The files derived from the master key, each written only if missing. */
static enum coffer_err add_derived_files(const struct keeper_paths *p, const struct secret *master,
					 const struct keeper_keys *keys, unsigned *added)
{
	struct secret *seed = NULL;
	enum coffer_err rc = add_hex_file(p->pub, keys->signing_pk, PUB_FILE_MODE, added);
	if (!rc)
		rc = add_hex_file(p->credential, secret_cbytes(keys->credential), CREDENTIAL_FILE_MODE, added);
	if (!rc)
		rc = vault_api_boot_seed(master, &seed);
	if (!rc)
		rc = add_hex_file(p->boot_key, secret_cbytes(seed), BOOT_KEY_FILE_MODE, added);
	if (!rc)
		rc = add_hex_file(p->rows_key, secret_cbytes(keys->rows), API_KEY_FILE_MODE, added);
	secret_free(seed);
	seed = NULL;
	if (!rc)
		rc = vault_digest_key(master, &seed);
	if (!rc)
		rc = add_hex_file(p->digest_key, secret_cbytes(seed), API_KEY_FILE_MODE, added);
	secret_free(seed);
	return rc;
}

enum coffer_err keeper_init(const char *state_dir, struct keeper_paths *out, int *existed, unsigned *added)
{
	struct keeper_paths p;
	struct secret *master = NULL;
	struct keeper_keys keys = { 0 };
	int had_key = 0;
	unsigned n = 0;
	enum coffer_err rc = keeper_paths_of(state_dir, &p);
	if (rc)
		goto out;
	rc = fs_mkdir_p(state_dir, STATE_DIR_MODE);
	if (rc)
		goto out;
	rc = secret_new(VAULT_MASTER_LEN, &master);
	if (rc)
		goto out;
	randombytes_buf(secret_bytes(master), secret_len(master));
	/* The key first and exclusively: an existing key is never replaced, only read. */
	rc = fs_write_atomic(p.key, secret_cbytes(master), secret_len(master), KEY_FILE_MODE, 1);
	if (rc == COFFER_ERR_CONFLICT) {
		secret_free(master);
		master = NULL;
		had_key = 1;
		rc = keeper_master_from_file(p.key, &master);
	} else if (!rc) {
		n++;
	}
	if (rc)
		goto out;
	rc = keeper_keys_derive(master, &keys);
	if (!rc)
		rc = add_derived_files(&p, master, &keys, &n);
	if (rc)
		goto out;
	if (out)
		*out = p;
	if (existed)
		*existed = had_key;
	if (added)
		*added = n;
out:
	keeper_keys_release(&keys);
	secret_free(master);
	return rc;
}

enum coffer_err keeper_master_from_file(const char *path, struct secret **master)
{
	struct secret *m = NULL;
	enum coffer_err rc = fs_read_private(path, VAULT_MASTER_LEN, &m);
	if (rc == COFFER_ERR_TOO_LARGE)
		rc = COFFER_ERR_INVALID;
	if (!rc && secret_len(m) != VAULT_MASTER_LEN)
		rc = COFFER_ERR_INVALID;
	if (!rc) {
		*master = m;
		m = NULL;
	}
	secret_free(m);
	return rc;
}

enum coffer_err keeper_master_from_env(struct secret **master)
{
	struct secret *m = NULL;
	char *text = getenv(KEEPER_MASTER_ENV);
	enum coffer_err rc = COFFER_OK;
	if (!text)
		return COFFER_ERR_NOT_FOUND;
	size_t len = strlen(text);
	rc = secret_new(VAULT_MASTER_LEN, &m);
	if (!rc && hex_decode(text, len, secret_bytes(m), secret_len(m)))
		rc = COFFER_ERR_INVALID;
	/* The environment's copy is ours to wipe: it lives in this process's memory. */
	sodium_memzero(text, len);
	if (unsetenv(KEEPER_MASTER_ENV) && !rc)
		rc = COFFER_ERR_INTERNAL;
	if (!rc) {
		*master = m;
		m = NULL;
	}
	secret_free(m);
	return rc;
}

/* The public half of the api's boot-token key: derived, so no file can swap it. */
static enum coffer_err boot_public_key(const struct secret *master, unsigned char pk[JWS_PK_LEN])
{
	struct secret *seed = NULL, *sk = NULL;
	enum coffer_err rc = vault_api_boot_seed(master, &seed);
	if (!rc)
		rc = jws_key_from_seed(seed, &sk, pk);
	secret_free(sk);
	secret_free(seed);
	return rc;
}

enum coffer_err keeper_keys_derive(const struct secret *master, struct keeper_keys *out)
{
	struct keeper_keys k = { 0 };
	enum coffer_err rc = COFFER_OK;
	if (secret_len(master) != VAULT_MASTER_LEN)
		return COFFER_ERR_INVALID;
	rc = keywrap_derive(master, KEYWRAP_LABEL_APP_KEY, &k.wrap);
	if (!rc)
		rc = vault_keeper_signing_key(master, &k.signing, k.signing_pk);
	if (!rc)
		rc = vault_api_credential(master, &k.credential);
	if (!rc)
		rc = hostauth_join_key(master, &k.join);
	if (!rc)
		rc = hostauth_registry_key(master, &k.registry);
	if (!rc)
		rc = boot_public_key(master, k.boot_pk);
	if (!rc)
		rc = vault_rows_key(master, &k.rows);
	if (!rc)
		rc = kdf_subkey(master, KEEPER_LABEL_DEPLOYER_TOKEN, NULL, 0, KEEPER_DEPLOYER_KEY_LEN, &k.deployer_token);
	if (!rc)
		rc = kdf_subkey(master, KEEPER_LABEL_DEPLOYER_REGISTRY, NULL, 0, KEEPER_DEPLOYER_KEY_LEN,
				&k.deployer_registry);
	if (!rc)
		rc = vault_digest_key(master, &k.digest);
	if (!rc)
		rc = keywrap_derive(master, KDF_LABEL_KMS_KEY_WRAP, &k.kms_wrap);
	if (rc) {
		keeper_keys_release(&k);
		return rc;
	}
	*out = k;
	return COFFER_OK;
}

void keeper_keys_release(struct keeper_keys *k)
{
	if (!k)
		return;
	secret_free(k->wrap);
	secret_free(k->signing);
	secret_free(k->credential);
	secret_free(k->join);
	secret_free(k->registry);
	secret_free(k->rows);
	secret_free(k->deployer_token);
	secret_free(k->deployer_registry);
	secret_free(k->digest);
	secret_free(k->kms_wrap);
	sodium_memzero(k, sizeof(*k));
}

enum coffer_err keeper_app_key_create(const struct keeper_keys *keys, struct store *s, const char *app_id,
				      struct keeper_app_key *out)
{
	struct store_app app;
	struct store_app_key row;
	struct keeper_app_key made;
	unsigned char org_sig[DEPLOYER_SIG_LEN];
	struct secret *sk = NULL;
	struct buf aad, wrapped;
	unsigned char blob[KEEPER_PK_BLOB_LEN];
	const uint32_t version = KEEPER_APP_KEY_VERSION;
	enum coffer_err rc;

	buf_init(&aad, AAD_MAX);
	buf_init(&wrapped, STORE_KEY_BLOB_MAX);
	rc = store_app_get(s, app_id, &app);
	if (rc)
		goto out;
	/* A concurrent create that wins between this check and the put makes the put answer conflict. */
	rc = store_app_key_get(s, app.id, version, &row);
	if (rc == COFFER_OK)
		rc = COFFER_ERR_CONFLICT;
	if (rc != COFFER_ERR_NOT_FOUND)
		goto out;
	memset(&made, 0, sizeof(made));
	rc = str_copy(made.app_id, sizeof(made.app_id), app.id);
	if (!rc)
		rc = hpke_generate_keypair(&sk, made.public_key);
	if (!rc)
		rc = vault_app_key_aad(app.id, version, &aad);
	if (!rc)
		rc = keywrap_seal(keys->wrap, aad.ptr, aad.len, sk, &wrapped);
	if (!rc)
		rc = vault_app_key_sign(keys->signing, app.id, version, made.public_key, made.signature);
	if (!rc) /* the org the app row names now: the api's, when it creates the app, as it is its to choose */
		rc = deployer_app_org_sign(keys->signing, app.id, app.org_id, org_sig);
	if (rc)
		goto out;
	memcpy(blob, made.public_key, HPKE_PK_LEN);
	memcpy(blob + HPKE_PK_LEN, made.signature, VAULT_SIG_LEN);
	rc = store_app_key_put(s, app.id, version, blob, sizeof(blob), (const unsigned char *)wrapped.ptr,
			       wrapped.len, org_sig);
	if (rc)
		goto out;
	made.version = version;
	log_info("app_key_created", LF_S("app_id", app.id), LF_I("version", version));
	*out = made;
out:
	buf_release(&wrapped);
	buf_release(&aad);
	secret_free(sk);
	return rc;
}

static enum coffer_err tampered(const char *app_id, uint64_t version, const char *check)
{
	log_warn("app_key_tampered", LF_S("app_id", app_id), LF_I("version", version), LF_S("check", check));
	return COFFER_ERR_CRYPTO;
}

enum coffer_err keeper_app_key_load_into(const struct keeper_keys *keys, struct store *s, const char *app_id,
					 uint64_t version, struct secret *sk, unsigned char pk[HPKE_PK_LEN])
{
	struct store_app_key row;
	struct buf aad;
	enum coffer_err rc;

	buf_init(&aad, AAD_MAX);
	if (version < 1 || version > UINT32_MAX || !sk || secret_len(sk) != HPKE_SK_LEN) {
		rc = COFFER_ERR_INVALID;
		goto out;
	}
	rc = vault_app_key_aad(app_id, (uint32_t)version, &aad);
	if (!rc)
		rc = store_app_key_get(s, app_id, version, &row);
	if (rc)
		goto out;
	if (row.version != version || row.public_key_len != KEEPER_PK_BLOB_LEN ||
	    row.wrapped_private_len < KEYWRAP_OVERHEAD ||
	    row.wrapped_private_len - KEYWRAP_OVERHEAD != HPKE_SK_LEN) {
		rc = tampered(app_id, version, row.version != version || row.public_key_len != KEEPER_PK_BLOB_LEN
							   ? "layout"
							   : "unwrap");
		goto out;
	}
	/* The AAD is this app's and this version's, never the row's: a row moved here does not open. */
	rc = keywrap_open_into(keys->wrap, aad.ptr, aad.len, row.wrapped_private, row.wrapped_private_len, sk);
	if (rc == COFFER_ERR_CRYPTO || rc == COFFER_ERR_INVALID) {
		rc = tampered(app_id, version, "unwrap");
		goto out;
	}
	if (rc)
		goto out;
	rc = hpke_public_key(sk, pk);
	if (rc)
		goto out;
	if (!ct_equal(pk, row.public_key, HPKE_PK_LEN)) {
		rc = tampered(app_id, version, "public_key");
		goto out;
	}
	rc = vault_app_key_verify(keys->signing_pk, app_id, (uint32_t)version, row.public_key,
				  row.public_key + HPKE_PK_LEN);
	if (rc)
		rc = tampered(app_id, version, "signature");
out:
	if (rc) {
		if (sk)
			sodium_memzero(secret_bytes(sk), secret_len(sk));
		sodium_memzero(pk, HPKE_PK_LEN);
	}
	buf_release(&aad);
	return rc;
}

enum coffer_err keeper_app_key_load(const struct keeper_keys *keys, struct store *s, const char *app_id,
				    uint64_t version, struct secret **sk)
{
	unsigned char pk[HPKE_PK_LEN];
	struct secret *key = NULL;
	enum coffer_err rc = secret_new(HPKE_SK_LEN, &key);

	if (!rc)
		rc = keeper_app_key_load_into(keys, s, app_id, version, key, pk);
	sodium_memzero(pk, sizeof(pk));
	if (!rc) {
		*sk = key;
		key = NULL;
	}
	secret_free(key);
	return rc;
}

enum coffer_err keeper_app_org_check(const struct keeper_keys *keys, struct store *s, const char *app_id,
				     const char *org_id)
{
	struct store_app_key row;
	enum coffer_err rc = store_app_key_get(s, app_id, 0, &row);
	const char *check = NULL;

	if (rc == COFFER_ERR_NOT_FOUND)
		check = "no_key";
	else if (rc)
		return rc;
	else if (row.org_sig_len != DEPLOYER_SIG_LEN)
		check = "no_signature";
	else if (deployer_app_org_verify(keys->signing_pk, app_id, org_id, row.org_sig) != COFFER_OK)
		check = "signature";
	if (!check)
		return COFFER_OK;
	log_warn("app_org_refused", LF_S("app_id", app_id), LF_S("org_id", org_id), LF_S("check", check));
	return COFFER_ERR_CRYPTO;
}

enum coffer_err keeper_app_orgs_bind(const struct keeper_keys *keys, struct store *s, const char *marker_file)
{
	static const char marker[] = "coffer app orgs bound v1\n";
	struct store_app_key_list l = { 0 };
	enum coffer_err rc;
	size_t bound = 0;

	if (access(marker_file, F_OK) == 0)
		return COFFER_OK; /* bound once already: never again from what the store says */
	if (errno != ENOENT) {
		log_error("app_orgs_marker_unreadable", LF_S("file", marker_file), LF_S("error", strerror(errno)));
		return COFFER_ERR_IO;
	}
	rc = store_app_key_unbound(s, &l);
	for (size_t i = 0; i < l.n && !rc; i++) {
		struct store_app app;
		unsigned char sig[DEPLOYER_SIG_LEN];
		rc = store_app_get(s, l.items[i].app_id, &app);
		if (!rc)
			rc = deployer_app_org_sign(keys->signing, app.id, app.org_id, sig);
		if (!rc)
			rc = store_app_key_bind(s, app.id, l.items[i].version, sig);
		if (rc == COFFER_ERR_NOT_FOUND || rc == COFFER_ERR_TAMPERED)
			rc = COFFER_OK; /* gone, bound meanwhile by another keeper, or a row that fails its MAC: left unbound */
		else if (!rc)
			bound++;
	}
	store_app_key_list_release(&l);
	if (!rc)
		rc = fs_write_atomic(marker_file, marker, sizeof(marker) - 1, 0600, 1);
	if (rc)
		log_error("app_orgs_bind_failed", LF_S("error", coffer_err_name(rc)));
	else
		log_info("app_orgs_bound", LF_I("keys", bound), LF_S("trust", "the org each app row named (first use)"));
	return rc;
}
