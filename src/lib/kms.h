/*
 * kms.h — app KMS keys: keys the keeper holds and a machine uses through
 * its agent (sign, verify, encrypt, decrypt) without ever reading them
 * (docs/CRYPTO.md "App KMS keys").
 *
 * Every key is KMS_KEY_LEN random bytes: an HMAC-SHA256 key, an
 * XChaCha20-Poly1305 key, or an Ed25519 seed. Each version of a key is
 * wrapped (keywrap.h, subkey KDF_LABEL_KMS_KEY_WRAP) with kms_wrap_aad as
 * its associated data, so a wrapped key moved to another app, name, type
 * or version does not open.
 *
 * Envelopes (what sign and encrypt give, what verify and decrypt take):
 *   envelope   = version (4 bytes, big-endian, >= 1) || body
 *   signature  body = HMAC-SHA256(key, data) (32) or Ed25519(data) (64)
 *   ciphertext body = nonce (24, random) || XChaCha20-Poly1305(key, nonce,
 *                     aad = kms_wrap_aad(app, name, "aead", version), data)
 * The version says which version of the key made it, so verify and
 * decrypt accept every version still stored, while sign and encrypt use
 * the newest. An Ed25519 body is a plain RFC 8032 signature: strip the 4
 * bytes and any Ed25519 implementation verifies it with the public key.
 *
 * Ownership: keys are struct secret (the caller's); outputs go to a
 * caller's struct buf, replaced only on success.
 */
#ifndef COFFER_KMS_H
#define COFFER_KMS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "secret.h"

#define KMS_KEY_LEN 32
#define KMS_VERSION_LEN 4
#define KMS_PUBLIC_KEY_LEN 32 /* Ed25519 */
#define KMS_HMAC_LEN 32
#define KMS_ED25519_SIG_LEN 64
#define KMS_NONCE_LEN 24
#define KMS_TAG_LEN 16
#define KMS_DATA_MAX ((size_t)64 << 10) /* bytes of data signed, verified, encrypted or decrypted */
#define KMS_ENVELOPE_MAX (KMS_VERSION_LEN + KMS_NONCE_LEN + KMS_DATA_MAX + KMS_TAG_LEN)
#define KMS_NAME_MAX 64 /* a key's name: [A-Za-z0-9_.-], 1 to 64 bytes */
#define KMS_AAD_MAX 256
/*
 * The machine's side (docs/RUNPATH.md "KMS socket"): the agent serves a
 * Unix socket whose path is in the machine's environment as KMS_SOCKET_ENV;
 * one request per connection, one JSON line each way:
 *   -> {"op": "sign"|"verify"|"encrypt"|"decrypt", "key": NAME,
 *       "data": base64url, "signature": base64url (verify)}\n
 *   <- the keeper's answer ({"key","version","signature"|"ciphertext"|
 *      "data"|"valid"}) or {"error":{"code","message"}}\n
 * A line longer than KMS_LINE_MAX is refused.
 */
#define KMS_SOCKET_ENV "COFFER_KMS_SOCKET"
#define KMS_LINE_MAX ((size_t)192 << 10)

enum kms_type { KMS_HMAC_SHA256, KMS_AEAD, KMS_ED25519 };

/* "hmac-sha256", "aead", "ed25519" -> 0 and *out; -1 for anything else. */
int kms_type_parse(const char *text, enum kms_type *out);
const char *kms_type_name(enum kms_type t);
/* 1 when name is a key name (see KMS_NAME_MAX). */
int kms_name_ok(const char *name);
/* 1 when op is one of the four operations a machine may ask for: sign, verify, encrypt, decrypt. */
int kms_op_known(const char *op);

/* The associated data of a wrapped key version (and of an aead ciphertext). */
COFFER_MUST_CHECK enum coffer_err kms_wrap_aad(const char *app_id, const char *name, enum kms_type t,
					       uint32_t version, struct buf *out);

/* The Ed25519 public key of a seed. */
COFFER_MUST_CHECK enum coffer_err kms_public_key(const struct secret *seed, unsigned char pk[KMS_PUBLIC_KEY_LEN]);

/* The version an envelope names: COFFER_ERR_INVALID for one too short or naming version 0. */
COFFER_MUST_CHECK enum coffer_err kms_envelope_version(const void *env, size_t len, uint32_t *version);

/* The signature envelope of data under key version `version` (hmac-sha256 or ed25519). */
COFFER_MUST_CHECK enum coffer_err kms_sign(enum kms_type t, const struct secret *key, uint32_t version,
					   const void *data, size_t len, struct buf *out);
/*
 * COFFER_OK when env is a signature of data under key (whose version the
 * caller took from env), COFFER_ERR_CRYPTO when it is not.
 */
COFFER_MUST_CHECK enum coffer_err kms_verify(enum kms_type t, const struct secret *key, const void *env,
					     size_t env_len, const void *data, size_t len);
/* As kms_verify for ed25519 with only the public key (what anyone can do). */
COFFER_MUST_CHECK enum coffer_err kms_verify_public(const unsigned char pk[KMS_PUBLIC_KEY_LEN], const void *env,
						    size_t env_len, const void *data, size_t len);

/* The ciphertext envelope of data; aad from kms_wrap_aad(app, name, KMS_AEAD, version). */
COFFER_MUST_CHECK enum coffer_err kms_encrypt(const struct secret *key, uint32_t version, const struct buf *aad,
					      const void *data, size_t len, struct buf *out);
/* The plaintext of env into a new secret; COFFER_ERR_CRYPTO when it does not open. */
COFFER_MUST_CHECK enum coffer_err kms_decrypt(const struct secret *key, const struct buf *aad, const void *env,
					      size_t env_len, struct secret **out);

#endif
