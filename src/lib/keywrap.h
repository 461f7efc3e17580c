/*
 * keywrap.h — wrapping secrets (app private keys) under a subkey of the
 * keeper's master key, with XChaCha20-Poly1305 (libsodium's IETF variant).
 *
 * Construction:
 *   subkey  = kdf_subkey(master, label, no context, 32)     (see hkdf.h)
 *             label KEYWRAP_LABEL_APP_KEY = "coffer app-key wrap v1" for app
 *             private keys; each other use takes a label of its own there
 *   wrapped = nonce (24, random) || ciphertext || tag (16)
 *             = nonce || XChaCha20-Poly1305-Encrypt(subkey, nonce, aad, plaintext)
 * The associated data is the caller's and binds the wrapped key to what it
 * belongs to (for app keys: the app id and the key version), so a wrapped
 * key moved to another row fails to open.
 *
 * Ownership: the master key, subkeys and plaintexts are struct secret; the
 * wrapped form goes to a caller's struct buf, replaced only on success.
 * Errors: COFFER_ERR_INVALID for wrong key sizes or input shorter than
 * nonce + tag, COFFER_ERR_CRYPTO when the tag does not verify (wrong key,
 * wrong aad, tampering), COFFER_ERR_TOO_LARGE past KEYWRAP_PLAINTEXT_MAX.
 */
#ifndef COFFER_KEYWRAP_H
#define COFFER_KEYWRAP_H

#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "hkdf.h"
#include "secret.h"

#define KEYWRAP_KEY_LEN 32   /* crypto_aead_xchacha20poly1305_ietf_KEYBYTES */
#define KEYWRAP_NONCE_LEN 24 /* crypto_aead_xchacha20poly1305_ietf_NPUBBYTES */
#define KEYWRAP_TAG_LEN 16   /* crypto_aead_xchacha20poly1305_ietf_ABYTES */
#define KEYWRAP_OVERHEAD (KEYWRAP_NONCE_LEN + KEYWRAP_TAG_LEN)
#define KEYWRAP_PLAINTEXT_MAX ((size_t)64 * 1024)

#define KEYWRAP_LABEL_APP_KEY KDF_LABEL_APP_KEY_WRAP

/* The wrapping subkey of master (at least KDF_MASTER_MIN_LEN bytes) for label. */
COFFER_MUST_CHECK enum coffer_err keywrap_derive(const struct secret *master, const char *label,
						 struct secret **subkey);

/* wrapped = nonce || ct || tag of plaintext under subkey with aad. */
COFFER_MUST_CHECK enum coffer_err keywrap_seal(const struct secret *subkey, const void *aad,
					       size_t aad_len, const struct secret *plaintext,
					       struct buf *wrapped);

/*
 * keywrap_open into pt, which the caller made (a carved secret, say) of
 * exactly wrapped_len - KEYWRAP_OVERHEAD bytes (COFFER_ERR_INVALID
 * otherwise); on failure pt is wiped.
 */
COFFER_MUST_CHECK enum coffer_err keywrap_open_into(const struct secret *subkey, const void *aad, size_t aad_len,
						    const void *wrapped, size_t wrapped_len, struct secret *pt);

/* The plaintext of wrapped, if it was sealed under subkey with aad. */
COFFER_MUST_CHECK enum coffer_err keywrap_open(const struct secret *subkey, const void *aad,
					       size_t aad_len, const void *wrapped,
					       size_t wrapped_len, struct secret **plaintext);

#endif
