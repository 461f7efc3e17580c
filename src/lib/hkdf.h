/*
 * hkdf.h — HKDF-SHA256 (RFC 5869) on libsodium's HMAC-SHA256, and the one
 * way coffer derives a subkey from a master key.
 *
 * Extract: PRK = HMAC-SHA256(salt, IKM); an empty salt means 32 zero bytes.
 * Expand:  T(i) = HMAC-SHA256(PRK, T(i-1) || info || i), OKM = first L bytes
 *          of T(1) || T(2) || ..., L at most 255 * 32.
 * The _parts variants take the IKM or the info as a list of pieces that are
 * hashed as their concatenation, so callers (HPKE's labeled functions) need
 * no scratch buffer for key material.
 *
 * Subkeys (kdf_subkey):
 *   subkey = HKDF-SHA256(salt = "", IKM = master, info, L)
 *   info   = label                       when there is no context
 *          = label || 0x00 || context    otherwise
 * A label is a fixed ASCII string without NUL, so the first NUL ends it and
 * no (label, context) pair can give the info of another. The labels in use:
 *   KDF_LABEL_APP_KEY_WRAP "coffer app-key wrap v1"  keywrap.h, master key,
 *                                                   no context
 *   KDF_LABEL_DIGEST       "coffer digest v1"        digest.h, digest key,
 *                                                   context = app id
 * A new purpose gets a new label here; a label is never reused for another.
 *
 * Ownership: callers own every buffer; PRKs and OKMs written to caller
 * arrays are the caller's to wipe. kdf_subkey returns a struct secret the
 * caller frees.
 */
#ifndef COFFER_HKDF_H
#define COFFER_HKDF_H

#include <stddef.h>

#include "err.h"
#include "secret.h"

#define HKDF_SHA256_LEN 32                      /* HashLen, and the PRK size */
#define HKDF_SHA256_OKM_MAX (255 * HKDF_SHA256_LEN) /* largest L */

#define KDF_MASTER_MIN_LEN 32 /* a master key shorter than this is refused */
#define KDF_LABEL_MAX 128     /* longest label, in bytes */
#define KDF_CONTEXT_MAX 1024  /* longest context, in bytes */

#define KDF_LABEL_APP_KEY_WRAP "coffer app-key wrap v1"
#define KDF_LABEL_DIGEST "coffer digest v1"
#define KDF_LABEL_KMS_KEY_WRAP "coffer kms key wrap v1" /* kms.h: app KMS keys */

/* One piece of a concatenated input; len 0 pieces may have a NULL ptr. */
struct hkdf_part {
	const void *ptr;
	size_t len;
};

/* PRK = HKDF-Extract(salt, ikm). salt may be NULL when salt_len is 0. */
void hkdf_extract(const void *salt, size_t salt_len, const void *ikm, size_t ikm_len,
		  unsigned char prk[HKDF_SHA256_LEN]);
/* As hkdf_extract with IKM = parts[0] || parts[1] || ... */
void hkdf_extract_parts(const void *salt, size_t salt_len, const struct hkdf_part *parts,
			size_t n_parts, unsigned char prk[HKDF_SHA256_LEN]);

/* OKM = HKDF-Expand(prk, info, okm_len); COFFER_ERR_INVALID if okm_len is
 * 0 or above HKDF_SHA256_OKM_MAX. okm is written only on success. */
COFFER_MUST_CHECK enum coffer_err hkdf_expand(const unsigned char prk[HKDF_SHA256_LEN],
					      const void *info, size_t info_len, void *okm,
					      size_t okm_len);
/* As hkdf_expand with info = parts[0] || parts[1] || ... */
COFFER_MUST_CHECK enum coffer_err hkdf_expand_parts(const unsigned char prk[HKDF_SHA256_LEN],
						    const struct hkdf_part *parts, size_t n_parts,
						    void *okm, size_t okm_len);

/*
 * A subkey of len bytes (1..HKDF_SHA256_OKM_MAX) of master for the purpose
 * named by label (1..KDF_LABEL_MAX bytes, no NUL), optionally narrowed by a
 * context (0..KDF_CONTEXT_MAX bytes; NULL when ctx_len is 0). See the
 * construction above. COFFER_ERR_INVALID for a short master or bad sizes.
 */
COFFER_MUST_CHECK enum coffer_err kdf_subkey(const struct secret *master, const char *label,
					     const void *ctx, size_t ctx_len, size_t len,
					     struct secret **out);
/* As kdf_subkey, into out (a caller's secret of the subkey's length: from an arena, say). */
COFFER_MUST_CHECK enum coffer_err kdf_subkey_into(const struct secret *master, const char *label,
						  const void *ctx, size_t ctx_len, struct secret *out);

#endif
