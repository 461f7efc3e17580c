/*
 * open_signer.h — test helpers for the keeper's checks at open (issue 12):
 * deployers put straight into the store as the keeper enrols them (cert
 * and registry MAC), signatures over release statements and manifests as
 * the CLI makes them, and value digests as the CLI computes them. Shared
 * by test_keeper.c and test_keeper_open.c. Failures abort the test
 * (cmocka asserts).
 */
#ifndef COFFER_TEST_OPEN_SIGNER_H
#define COFFER_TEST_OPEN_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "deployer.h"
#include "digest.h"
#include "keeper.h"
#include "store.h"

struct test_deployer {
	char id[STORE_ID_SIZE];
	struct secret *sk; /* Ed25519, 64-byte form */
	unsigned char pk[DEPLOYER_PK_LEN];
};

/*
 * A new deployer of org_id for app_id ("*": every app) with role, its row
 * certified with keys->signing and MAC'd as keeper_deployer_enrol writes it.
 */
void test_deployer_make(const struct keeper_keys *keys, struct store *s, const char *org_id, const char *app_id,
			const char *role, struct test_deployer *out);
void test_deployer_free(struct test_deployer *d);

/* d's signature over text, stored for app_id under the text's hash. */
void test_sign_text(struct store *s, const struct test_deployer *d, const char *app_id, const char *text, size_t len);

/*
 * d signs what an open of (app, release `release`, secrets `version`)
 * needs: the statement over the release's config, version and the
 * version's manifest, and that manifest (version > 0).
 */
void test_sign_open(struct store *s, const struct test_deployer *d, const char *app_id, uint64_t release,
		    uint64_t version);

/* The digest of value for app_id, as the CLI computes it with the app's digest subkey. */
void test_digest(const struct keeper_keys *keys, const char *app_id, const char *value, size_t len,
		 char out[DIGEST_HEX_LEN + 1]);

#endif
