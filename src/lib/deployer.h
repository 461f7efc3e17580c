/*
 * deployer.h — deployer keys and what they sign (docs/CRYPTO.md
 * "Deployers"; issue 12, the zero-trust control plane).
 *
 * A deployer is a person or a CI system with an Ed25519 key enrolled at
 * the keeper for an org (optionally one app), through a one-time token
 * only the keeper can make. The keeper certifies the key (a signature the
 * api and the CLI check with the keeper's public key) and keeps the
 * registry row authenticated with a master subkey the store and the api
 * never hold. A deployer signs:
 *
 *   - each secrets version's manifest (the text of store.h's manifest, as is);
 *   - each release's statement, the text below, which binds the release's
 *     config (the machine spec, canonical JSON) to one secrets version and
 *     that version's manifest.
 *
 * The keeper opens a machine's secrets only when its release's statement
 * is signed by a live deployer of the app, and binds the delivery to the
 * config's hash, which the agent checks against the config it execs.
 *
 * Every signed text starts with its own "coffer ... v1\n" line, so no
 * signature of one kind verifies as another (nor as a boot token, a host
 * request or an answer signature, whose inputs start otherwise).
 *
 * Texts (every line ends with "\n"; ids are store ids, [a-z0-9_]{1,64}):
 *
 *   release statement                      deployer certificate
 *     coffer release v1                      coffer deployer v1
 *     app <app id>                           id <deployer id>
 *     config <hex SHA-256 of config>         org <org id>
 *     secrets <version, decimal>             app <app id, or "*" for all>
 *     manifest <hex SHA-256 of the           role <admin|deploy>
 *       version's manifest, or "-"           key <base64url public key>
 *       for version 0>
 *
 * The keeper also signs which org an app belongs to, when it makes the
 * app's key (the app row's org is the api's to rewrite; this is not):
 *
 *   app's org
 *     coffer app org v1
 *     app <app id>
 *     org <org id>
 *
 * Signatures travel and are stored as base64url (86 characters).
 */
#ifndef COFFER_DEPLOYER_H
#define COFFER_DEPLOYER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "secret.h"

#define DEPLOYER_PK_LEN 32
#define DEPLOYER_SK_LEN 64            /* libsodium's seed || pk form */
#define DEPLOYER_SIG_LEN 64
#define DEPLOYER_SIG_B64_LEN 86
#define DEPLOYER_SIG_B64_SIZE (DEPLOYER_SIG_B64_LEN + 1)
#define DEPLOYER_PK_B64_LEN 43
#define DEPLOYER_PK_B64_SIZE (DEPLOYER_PK_B64_LEN + 1)
#define DEPLOYER_HASH_HEX_SIZE 65     /* hex SHA-256 and its NUL */
#define DEPLOYER_ID_MAX 64
#define DEPLOYER_ALL_APPS "*"
#define DEPLOYER_ROLE_ADMIN "admin"
#define DEPLOYER_ROLE_DEPLOY "deploy"

/* 1 if id has the shape of a store id: 1..DEPLOYER_ID_MAX - 1 of [a-z0-9_]. */
int deployer_id_ok(const char *id);

/* ---- the key file: 64 lower-case hex characters of the Ed25519 seed and "\n", mode 0600 ---- */

/* Makes a new key at path (created exclusively, 0600; COFFER_ERR_CONFLICT if it exists). */
COFFER_MUST_CHECK enum coffer_err deployer_key_create(const char *path, unsigned char pk[DEPLOYER_PK_LEN]);
/* Loads a key file: sk (DEPLOYER_SK_LEN bytes, secure memory) and its public key. */
COFFER_MUST_CHECK enum coffer_err deployer_key_load(const char *path, struct secret **sk,
						    unsigned char pk[DEPLOYER_PK_LEN]);

/* ---- texts ---- */

/* Lower-case hex SHA-256 of len bytes. */
void deployer_hash_hex(const void *data, size_t len, char out[DEPLOYER_HASH_HEX_SIZE]);

/*
 * The statement of a release (malloc'd text, *len without the NUL).
 * manifest is the version's manifest text, NULL (and secrets_version 0)
 * for a release with no secrets version. COFFER_ERR_INVALID for a bad id
 * or a manifest given with version 0 or missing with another.
 */
COFFER_MUST_CHECK enum coffer_err deployer_release_text(const char *app_id, const char *config, size_t config_len,
							uint64_t secrets_version, const char *manifest,
							size_t manifest_len, char **text, size_t *len);

struct deployer_cert {
	const char *id;
	const char *org_id;
	const char *app_id; /* DEPLOYER_ALL_APPS for every app of the org */
	const char *role;   /* DEPLOYER_ROLE_ADMIN or DEPLOYER_ROLE_DEPLOY */
	const unsigned char *pk;
};

/* The certificate text of c (malloc'd). COFFER_ERR_INVALID for a bad id or role. */
COFFER_MUST_CHECK enum coffer_err deployer_cert_text(const struct deployer_cert *c, char **text, size_t *len);

/*
 * The keeper's certificate: its Ed25519 signature (64 raw bytes, as the
 * store keeps it) over deployer_cert_text(c), made with its 64-byte
 * signing key and checked with its public key (keeper.pub, or the key the
 * CLI pinned at login). verify: COFFER_OK, or COFFER_ERR_CRYPTO (another
 * key, any field of c changed, a bad c).
 */
COFFER_MUST_CHECK enum coffer_err deployer_cert_sign(const struct secret *keeper_sk, const struct deployer_cert *c,
						     unsigned char cert[DEPLOYER_SIG_LEN]);
COFFER_MUST_CHECK enum coffer_err deployer_cert_verify(const unsigned char keeper_pk[DEPLOYER_PK_LEN],
						       const struct deployer_cert *c,
						       const unsigned char cert[DEPLOYER_SIG_LEN]);

/*
 * The keeper's binding of an app to its org: its Ed25519 signature (64
 * raw bytes, stored with the app key) over the "app's org" text above.
 * The keeper checks it at every open (the org a deployer must be of), the
 * CLI before it seals or signs for an app. verify: COFFER_OK, or
 * COFFER_ERR_CRYPTO (another key, app or org, a bad id, NULL).
 */
#define DEPLOYER_APP_ORG_CONTEXT "coffer app org v1\n"
COFFER_MUST_CHECK enum coffer_err deployer_app_org_sign(const struct secret *keeper_sk, const char *app_id,
							const char *org_id, unsigned char sig[DEPLOYER_SIG_LEN]);
COFFER_MUST_CHECK enum coffer_err deployer_app_org_verify(const unsigned char keeper_pk[DEPLOYER_PK_LEN],
							  const char *app_id, const char *org_id,
							  const unsigned char sig[DEPLOYER_SIG_LEN]);

/*
 * The enrolment proof's text (POST /v1/deployers/enrol), which the new
 * key signs with deployer_sign:
 *   "coffer deployer enrol v1\n" token "\n" name "\n" base64url(pk) "\n"
 * In secure memory (it holds the one-time token). COFFER_ERR_INVALID for
 * an empty token or name, or one holding a newline or a NUL.
 */
#define DEPLOYER_ENROL_CONTEXT "coffer deployer enrol v1\n"
COFFER_MUST_CHECK enum coffer_err deployer_enrol_text(const char *token, size_t token_len, const char *name,
						      const unsigned char pk[DEPLOYER_PK_LEN], struct secret **text);

/* ---- signatures ---- */

/* Signs text with a 64-byte Ed25519 key: out gets the base64url signature. */
COFFER_MUST_CHECK enum coffer_err deployer_sign(const struct secret *sk, const void *text, size_t len,
						char out[DEPLOYER_SIG_B64_SIZE]);
/*
 * COFFER_OK when sig is pk's signature over text, in its one spelling
 * (86 base64url characters); COFFER_ERR_CRYPTO otherwise (NULL, malformed,
 * another key or text).
 */
COFFER_MUST_CHECK enum coffer_err deployer_verify(const unsigned char pk[DEPLOYER_PK_LEN], const void *text,
						  size_t len, const char *sig);

/*
 * 1 if a deployer certified for (org_id, cert_app_id, role) may sign for
 * app_id of org app_org_id: the same org, all apps or this one, either role.
 */
int deployer_covers(const char *cert_org_id, const char *cert_app_id, const char *app_org_id, const char *app_id);

#endif
