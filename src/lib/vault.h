/*
 * vault.h — how coffer seals secret values and vouches for app keys.
 * Shared by the CLI (seals), the api (verifies app keys), the keeper (wraps and signs
 * app keys, opens) and the tests that attack them.
 *
 * Sealing a value (the deployer's CLI) and opening it (keeper), HPKE base mode (hpke.h):
 *   info = "coffer secret v2"
 *   aad  = u16(len app_id) || app_id || u16(len name) || name || u32(key_version)
 *          || u16(len value_id) || value_id
 *   sealed = enc (32) || ciphertext || tag (16)
 * The aad binds a ciphertext to its app, its name, the key version and the
 * value row it was made for (value_id: the secret_values id, made by the
 * api before it seals, so the version the value was set in): one moved to
 * another name or app, relabelled with another key version, or copied over
 * another value row (an older value put back) fails.
 *
 * App keys (keeper): one X25519 pair per (app id, key version).
 *   wrapped private key = keywrap_seal(keywrap subkey "coffer app-key wrap v1",
 *                                     aad = u16(len app_id) || app_id || u32(version))
 *   signature = Ed25519(keeper signing key,
 *                       "coffer app-key v1" || 0x00 || aad || public key)
 * The api verifies the signature with the keeper's public key before it
 * seals anything, so a public key replaced in the store is refused.
 *
 * Keys derived from the keeper's master key (kdf_subkey, hkdf.h):
 *   keeper signing seed  "coffer keeper signing v1"   (Ed25519 seed)
 *   api credential       "coffer api credential v1"   (32 bytes, shown as hex)
 *   api boot-token seed  "coffer api boot v1"         (Ed25519 seed of the api's
 *                                                     boot-token key, boottoken.h)
 *   row MAC key          "coffer rows v1"             (32 bytes: the store's row
 *                                                     authentication, store.h)
 *   digest key           "coffer api digest v1"       (32 bytes: the service's one
 *                                                     keyed digest of values, digest.h)
 *
 * Ownership: keys and plaintexts are struct secret (a plaintext opened
 * "into" is the caller's, carved from its secret_arena); sealed bytes and
 * signatures are plain (they are not secret). Outputs are written only on
 * success. Errors: COFFER_ERR_INVALID for malformed input (sizes, an app id
 * or name over VAULT_ID_MAX), COFFER_ERR_CRYPTO when a seal or signature does
 * not verify.
 */
#ifndef COFFER_VAULT_H
#define COFFER_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "hpke.h"
#include "jws.h"
#include "secret.h"

#define VAULT_INFO "coffer secret v2"
#define VAULT_SIGN_CONTEXT "coffer app-key v1"
#define VAULT_LABEL_KEEPER_SIGNING "coffer keeper signing v1"
#define VAULT_LABEL_API_CREDENTIAL "coffer api credential v1"
#define VAULT_LABEL_API_BOOT "coffer api boot v1"
#define VAULT_LABEL_ROWS "coffer rows v1"
#define VAULT_LABEL_API_DIGEST "coffer api digest v1"

#define VAULT_ID_MAX 255                          /* longest app id, name or value id, in bytes */
#define VAULT_SEAL_OVERHEAD (HPKE_ENC_LEN + HPKE_TAG_LEN) /* sealed length - value length */
#define VAULT_SIG_LEN JWS_SIG_LEN
#define VAULT_CREDENTIAL_LEN 32
#define VAULT_MASTER_LEN 32
#define VAULT_BOOT_SEED_LEN JWS_SEED_LEN
#define VAULT_ROWS_KEY_LEN 32
#define VAULT_DIGEST_KEY_LEN 32

/*
 * The value_id a candidate of `secrets verify` is sealed for (CLI) and
 * opened with (keeper): never a store id (those are [a-z0-9_]), so a
 * sealed candidate cannot be passed off as a stored value, nor one the
 * other way round.
 */
#define VAULT_VERIFY_VALUE_ID "verify:candidate"

/* Seals value to an app's public key, for the value row value_id. */
COFFER_MUST_CHECK enum coffer_err vault_seal_value(const unsigned char pk[HPKE_PK_LEN], const char *app_id,
						   const char *name, uint32_t key_version, const char *value_id,
						   const struct secret *value, struct buf *sealed);
/* Opens what vault_seal_value sealed for exactly this app, name, key version and value row. */
COFFER_MUST_CHECK enum coffer_err vault_open_value(const struct secret *sk, const char *app_id, const char *name,
						   uint32_t key_version, const char *value_id, const void *sealed,
						   size_t sealed_len, struct secret **value);
/*
 * The same open into the caller's secret value, which must be exactly
 * sealed_len - VAULT_SEAL_OVERHEAD bytes (one carved from the secret_arena
 * of all the values of an open): no secure allocation. pk is sk's public
 * key when the caller holds it (one X25519 fewer per value), or NULL.
 * value is wiped on failure.
 */
COFFER_MUST_CHECK enum coffer_err vault_open_value_into(const struct secret *sk, const unsigned char *pk,
							const char *app_id, const char *name, uint32_t key_version,
							const char *value_id, const void *sealed, size_t sealed_len,
							struct secret *value);

/* The associated data of an app's wrapped private key (into aad, reset first). */
COFFER_MUST_CHECK enum coffer_err vault_app_key_aad(const char *app_id, uint32_t version, struct buf *aad);
/* Signs (app id, version, public key) with the keeper's 64-byte signing key. */
COFFER_MUST_CHECK enum coffer_err vault_app_key_sign(const struct secret *signing_sk, const char *app_id,
						     uint32_t version, const unsigned char pk[HPKE_PK_LEN],
						     unsigned char sig[VAULT_SIG_LEN]);
COFFER_MUST_CHECK enum coffer_err vault_app_key_verify(const unsigned char keeper_pk[JWS_PK_LEN], const char *app_id,
						       uint32_t version, const unsigned char pk[HPKE_PK_LEN],
						       const unsigned char sig[VAULT_SIG_LEN]);

/* The keeper's Ed25519 signing key (64-byte form) and public key, from its master key. */
COFFER_MUST_CHECK enum coffer_err vault_keeper_signing_key(const struct secret *master, struct secret **sk,
							   unsigned char pk[JWS_PK_LEN]);
/* The credential the api presents to the keeper, from the master key. */
COFFER_MUST_CHECK enum coffer_err vault_api_credential(const struct secret *master, struct secret **credential);
/*
 * The seed (VAULT_BOOT_SEED_LEN bytes) of the api's boot-token signing key,
 * from the master key: the keeper writes it for the api (api.boot.key) and
 * derives the public half itself (jws_key_from_seed), so that no file can
 * swap the key it verifies boot tokens with.
 */
COFFER_MUST_CHECK enum coffer_err vault_api_boot_seed(const struct secret *master, struct secret **seed);
/*
 * The row MAC key (VAULT_ROWS_KEY_LEN bytes), from the master key: the
 * keeper writes it for the api (api.rows.key) and derives it itself to
 * verify the machine, release and secrets version rows it relies on.
 */
COFFER_MUST_CHECK enum coffer_err vault_rows_key(const struct secret *master, struct secret **key);
/* The service's digest key (VAULT_DIGEST_KEY_LEN bytes), from the master key: api.digest.key. */
COFFER_MUST_CHECK enum coffer_err vault_digest_key(const struct secret *master, struct secret **key);

#endif
