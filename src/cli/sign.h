/*
 * sign.h — what the CLI does before a change reaches the api (issue 12,
 * docs/CRYPTO.md "Deployers"): it reads GET /v1/apps/:app/secrets/sealing,
 * checks the app's public key with the keeper's key pinned at login, seals
 * every value itself, computes its keyed digest, and signs with the
 * deployer key (cli_deployer_load) the manifest of the version the change
 * makes and the statement of the release it makes. Before it co-signs a
 * manifest or a config it did not make, it checks that a deployer the
 * keeper certified for the app's org signed it.
 *
 * A command's try is sign_run: a 409 "... changed meanwhile" from the api
 * (another change won the race) reads the sealing state again and signs
 * again, up to SIGN_TRIES times.
 */
#ifndef COFFER_CLI_SIGN_H
#define COFFER_CLI_SIGN_H

#include <stdint.h>

#include "client.h"
#include "hpke.h"

#define SIGN_TRIES 4

/* The sealing state of an app, as the api answered and the CLI checked it. */
struct sign_state {
	json_t *doc;                    /* the answer; the strings below point into it */
	const char *app_id;
	const char *org_id;
	uint32_t key_version;
	unsigned char pk[HPKE_PK_LEN];  /* verified with the pinned keeper key */
	struct secret *digest_key;      /* the app's digest subkey */
	uint64_t next_version;          /* the version a change makes */
	uint64_t head_version;          /* 0: none */
	const char *head_manifest;      /* NULL: none */
	const json_t *head_signatures;
	int has_release;
	uint64_t release_version;
	const char *config;             /* the current release's config */
	uint64_t release_secrets;       /* and the secrets version it runs */
	const char *release_manifest;   /* NULL: none */
	const json_t *release_signatures;
	struct cli_deployer deployer;
};

/*
 * One try of a command: fills *body from the state (the caller's to
 * json_decref) and names the route to POST it to.
 */
typedef enum coffer_err (*sign_fill_fn)(struct client *c, struct sign_state *st, void *arg, json_t **body,
					const char **suffix);

/*
 * Loads the deployer key, then up to SIGN_TRIES times: reads the state,
 * lets fill make the body, POSTs it to /v1/apps/:app<suffix>. *ans is the
 * api's answer. Reports every error.
 */
COFFER_MUST_CHECK enum coffer_err sign_run(struct client *c, sign_fill_fn fill, void *arg, json_t **ans);
/* sign_run with release `release` of the app (not 0) in the state instead of the current one (a rollback). */
COFFER_MUST_CHECK enum coffer_err sign_run_release(struct client *c, uint64_t release, sign_fill_fn fill, void *arg,
						   json_t **ans);

/* Adds "signer" and body[field] = {"sha256", "signature"} over text. */
COFFER_MUST_CHECK enum coffer_err sign_text(const struct sign_state *st, const char *text, size_t len, json_t *body,
					    const char *field);
/* sign_text of the statement of a release of config with secrets_version (manifest: its text, NULL for 0). */
COFFER_MUST_CHECK enum coffer_err sign_release(const struct sign_state *st, const char *config, uint64_t version,
					       const char *manifest, json_t *body);
/* Checks that the head manifest, or the current release's config, was signed by a deployer of the app. */
COFFER_MUST_CHECK enum coffer_err sign_check_head(const struct sign_state *st);
COFFER_MUST_CHECK enum coffer_err sign_check_release(const struct sign_state *st);

#endif
