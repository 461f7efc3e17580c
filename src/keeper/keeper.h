/*
 * keeper.h — the key custodian (`coffer keeper`): its master key and the
 * keys derived from it, app key pairs (made, wrapped, signed, stored, and
 * loaded back with every check), and its HTTP server.
 *
 * The state folder (keeper_init):
 *   keeper.key      the master key: VAULT_MASTER_LEN random bytes, 0600,
 *                   never overwritten
 *   keeper.pub      the keeper's Ed25519 public key (vault_keeper_signing_key),
 *                   64 hex characters and a newline, 0644
 *   api.credential  the api credential (vault_api_credential), 64 hex
 *                   characters and a newline, 0600
 *
 * An app key row (store_app_key_put) for app id A, key version v:
 *   public_key      = pk (HPKE_PK_LEN, X25519)
 *                     || sig (VAULT_SIG_LEN, vault_app_key_sign(A, v, pk))
 *                     = KEEPER_PK_BLOB_LEN (96) bytes
 *   wrapped_private = keywrap_seal(wrap subkey, vault_app_key_aad(A, v), sk)
 *                     = KEYWRAP_OVERHEAD + HPKE_SK_LEN (72) bytes
 * The store is untrusted: keeper_app_key_load opens the wrapped key only
 * with the AAD of the app and version asked for, and checks that the public
 * key in the row is the unwrapped key's and that the signature verifies.
 *
 * Ownership: struct keeper_keys owns its secrets (keeper_keys_release wipes
 * them). A struct keeper owns its keys, its store pool and its server; keeper_stop releases all of it. The master key is only read by
 * keeper_start: the caller frees it as soon as keeper_start returns.
 */
#ifndef COFFER_KEEPER_H
#define COFFER_KEEPER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "hpke.h"
#include "jws.h"
#include "keywrap.h"
#include "secret.h"
#include "store.h"
#include "store_pool.h"
#include "vault.h"

#define KEEPER_KEY_FILE "keeper.key"
#define KEEPER_PUB_FILE "keeper.pub"
#define KEEPER_CREDENTIAL_FILE "api.credential"
#define KEEPER_MASTER_ENV "COFFER_KEEPER_MASTER_KEY" /* the master key as 64 hex characters */
#define KEEPER_PATH_MAX 4096

#define KEEPER_APP_KEY_VERSION 1 /* the version POST /v1/app-keys creates */
#define KEEPER_PK_BLOB_LEN (HPKE_PK_LEN + VAULT_SIG_LEN)
#define KEEPER_WRAPPED_LEN (KEYWRAP_OVERHEAD + HPKE_SK_LEN)
#define KEEPER_APP_KEYS_BODY_MAX ((size_t)4 << 10)
#define KEEPER_STORE_CONNS_DEFAULT 4

/* ---- the state folder and the master key ---- */

struct keeper_paths {
	char key[KEEPER_PATH_MAX];
	char pub[KEEPER_PATH_MAX];
	char credential[KEEPER_PATH_MAX];
};

/* The paths of the three files of state_dir. COFFER_ERR_TOO_LARGE past KEEPER_PATH_MAX. */
COFFER_MUST_CHECK enum coffer_err keeper_paths_of(const char *state_dir, struct keeper_paths *out);

/*
 * `keeper init`: creates state_dir (0700) and writes keeper.key (a new
 * random master key, exclusive), keeper.pub and api.credential.
 * COFFER_ERR_CONFLICT, with nothing written, if keeper.key exists.
 * out (may be NULL) receives the paths.
 */
COFFER_MUST_CHECK enum coffer_err keeper_init(const char *state_dir, struct keeper_paths *out);

/*
 * The master key from a key file (fs_read_private): COFFER_ERR_FORBIDDEN if
 * group or others may read or write it, COFFER_ERR_NOT_FOUND if absent,
 * COFFER_ERR_INVALID if it is not VAULT_MASTER_LEN bytes.
 */
COFFER_MUST_CHECK enum coffer_err keeper_master_from_file(const char *path, struct secret **master);
/*
 * The master key from KEEPER_MASTER_ENV (64 hex characters). The variable's
 * text is wiped and the variable unset in every case. COFFER_ERR_NOT_FOUND
 * if it is not set, COFFER_ERR_INVALID if it is not 64 hex characters.
 */
COFFER_MUST_CHECK enum coffer_err keeper_master_from_env(struct secret **master);

/* ---- keys derived from the master key ---- */

struct keeper_keys {
	struct secret *wrap;                   /* keywrap subkey, KEYWRAP_LABEL_APP_KEY */
	struct secret *signing;                /* Ed25519 signing key, 64-byte form */
	unsigned char signing_pk[JWS_PK_LEN];  /* what keeper.pub holds */
	struct secret *credential;             /* the api credential, VAULT_CREDENTIAL_LEN bytes */
};

COFFER_MUST_CHECK enum coffer_err keeper_keys_derive(const struct secret *master, struct keeper_keys *out);
/* Wipes and frees; a zeroed or released struct is fine. */
void keeper_keys_release(struct keeper_keys *k);

/* ---- app keys ---- */

struct keeper_app_key {
	char app_id[STORE_ID_SIZE];
	uint32_t version;
	unsigned char public_key[HPKE_PK_LEN];
	unsigned char signature[VAULT_SIG_LEN];
};

/*
 * Makes key version KEEPER_APP_KEY_VERSION of the app: a fresh X25519 pair,
 * the private key wrapped and the public key signed, stored as above. The
 * only call that makes an app key. COFFER_ERR_NOT_FOUND for an unknown app,
 * COFFER_ERR_CONFLICT if the app has that key version already.
 */
COFFER_MUST_CHECK enum coffer_err keeper_app_key_create(const struct keeper_keys *keys, struct store *s,
							const char *app_id, struct keeper_app_key *out);
/*
 * The private key of version `version` (>= 1) of the app. COFFER_ERR_CRYPTO,
 * logged as tampering (app id and version only), if the wrapped key does
 * not open under this app id and version, if the row's public key is not
 * the unwrapped key's, or if its signature does not verify.
 * COFFER_ERR_NOT_FOUND if there is no such row.
 */
COFFER_MUST_CHECK enum coffer_err keeper_app_key_load(const struct keeper_keys *keys, struct store *s,
						      const char *app_id, uint64_t version, struct secret **sk);

/* ---- the server ---- */

struct keeper_config {
	const char *store_url;   /* store_open URL */
	const char *listen;      /* HOST:PORT; port 0 picks a free port */
	const char *ready_file;  /* NULL, or written with "http://HOST:PORT\n" once listening */
	unsigned store_conns;    /* store connections (1..STORE_POOL_MAX); 0: KEEPER_STORE_CONNS_DEFAULT */
};

struct keeper;

/*
 * Derives the keys from master, opens the store connections, starts the
 * HTTP server (GET /v1/health, POST /v1/app-keys) and writes the ready file.
 */
COFFER_MUST_CHECK enum coffer_err keeper_start(const struct keeper_config *cfg, const struct secret *master,
					       struct keeper **out);
/* The port the server is bound to. */
uint16_t keeper_port(const struct keeper *k);
const struct keeper_keys *keeper_get_keys(const struct keeper *k);
/* The store connections the handlers share (store_pool.h). */
struct store_pool *keeper_store_pool(const struct keeper *k);
/* Stops the server gracefully, closes the store, wipes the keys, frees k. NULL is allowed. */
void keeper_stop(struct keeper *k);

#endif
