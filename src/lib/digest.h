/*
 * digest.h — keyed digests of secret values, shown by `secrets list` so a
 * user can tell whether a value changed without anyone reading it.
 *
 * Construction:
 *   app_key = kdf_subkey(digest_key, "coffer digest v1", context = app id, 32)
 *           = HKDF-SHA256(salt "", digest_key,
 *                         info "coffer digest v1" || 0x00 || app id, 32)   (hkdf.h)
 *   digest  = lower-case hex of the first 16 bytes of
 *             HMAC-SHA256(app_key, value)                  -> 32 characters
 * The key makes offline guessing of short values impossible without the
 * API's digest key, and the per-app subkey makes the same value show two
 * different digests in two apps.
 *
 * Ownership: the digest key and app keys are struct secret; a digest is not
 * secret and lives in a caller's char[DIGEST_HEX_LEN + 1].
 */
#ifndef COFFER_DIGEST_H
#define COFFER_DIGEST_H

#include <stddef.h>

#include "err.h"
#include "hkdf.h"
#include "secret.h"

#define DIGEST_KEY_LEN 32                  /* digest key and app keys */
#define DIGEST_BYTES 16                    /* HMAC bytes kept */
#define DIGEST_HEX_LEN (2 * DIGEST_BYTES) /* characters shown */
#define DIGEST_APP_ID_MAX 255              /* longest app id, in bytes */
#define DIGEST_LABEL KDF_LABEL_DIGEST

/* The digest subkey of app_id (1..DIGEST_APP_ID_MAX bytes). */
COFFER_MUST_CHECK enum coffer_err digest_app_key(const struct secret *digest_key,
						 const char *app_id, struct secret **app_key);
/* As digest_app_key, into app_key (a caller's secret of DIGEST_KEY_LEN bytes, from an arena say). */
COFFER_MUST_CHECK enum coffer_err digest_app_key_into(const struct secret *digest_key, const char *app_id,
						      struct secret *app_key);

/* The digest of value under app_key, as DIGEST_HEX_LEN lower-case hex
 * characters and a NUL in out. */
COFFER_MUST_CHECK enum coffer_err digest_value(const struct secret *app_key,
					       const struct secret *value,
					       char out[DIGEST_HEX_LEN + 1]);

/* 1 if a and b are the same well-formed digest (constant time in their
 * content), else 0. */
int digest_equal(const char *a, const char *b);

#endif
