/*
 * agent.h — the host agent (`coffer agent`): its identity (a signing and a
 * sealing key pair, its host id and keeper certificate, kept in its state
 * folder), enrolment with the keeper, and requests signed with its host
 * key (hostauth.h) to the api and the keeper.
 *
 * The state folder (0700):
 *   host.sign.key   the Ed25519 seed, 32 bytes, 0600, written once
 *                   (fs_write_atomic, exclusive: mode set at creation)
 *   host.seal.key   the X25519 private key, 32 bytes, 0600, written once
 *   host.json       {"host_id", "name", "cert" (base64url)}, 0600, written
 *                   atomically once the keeper has enrolled the host
 * A restarted agent reuses all three; it needs a join token only while
 * host.json does not exist.
 *
 * Ownership: struct agent_identity owns its private keys (struct secret,
 * wiped by agent_identity_release); public keys, the id and the cert are
 * plain. A join token is a struct secret, borrowed.
 */
#ifndef COFFER_AGENT_H
#define COFFER_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "hostauth.h"
#include "json.h"
#include "secret.h"

#define AGENT_SIGN_KEY_FILE "host.sign.key"
#define AGENT_SEAL_KEY_FILE "host.seal.key"
#define AGENT_IDENTITY_FILE "host.json"
#define AGENT_JOIN_ENV "COFFER_JOIN_TOKEN" /* the join token, when not given with --join */
#define AGENT_KEY_LEN 32
#define AGENT_NAME_SIZE 256
#define AGENT_PATH_MAX 4096
#define AGENT_URL_MAX 2048
#define AGENT_IDENTITY_FILE_MAX ((size_t)4 << 10)
#define AGENT_HEARTBEAT_MS 5000
#define AGENT_RETRY_MS 1000
#define AGENT_HTTP_TIMEOUT_MS 10000
#define AGENT_RESPONSE_MAX ((size_t)64 << 10)
#define AGENT_REQUEST_MAX ((size_t)64 << 10)
#define AGENT_MESSAGE_MAX 256

struct agent_identity {
	struct secret *sign_sk;                 /* Ed25519, 64-byte form */
	unsigned char sign_pk[HOSTAUTH_PK_LEN];
	struct secret *seal_sk;                 /* X25519 */
	unsigned char seal_pk[HOSTAUTH_PK_LEN];
	int enrolled;                           /* host_id, name and cert below are set */
	char host_id[HOSTAUTH_HOST_ID_MAX + 1];
	char name[AGENT_NAME_SIZE];
	unsigned char cert[HOSTAUTH_CERT_LEN];
};

/*
 * Loads the identity of state_dir, creating the folder and each key file
 * that does not exist yet (*created, may be NULL, says whether keys were
 * made). COFFER_ERR_FORBIDDEN for a key file others may read or write,
 * COFFER_ERR_INVALID for a key or identity file that is malformed.
 */
COFFER_MUST_CHECK enum coffer_err agent_identity_load(const char *state_dir, struct agent_identity *out,
						      int *created);
/* Wipes and frees the keys; a zeroed or released struct is fine. */
void agent_identity_release(struct agent_identity *id);

/*
 * Enrols with the keeper at keeper_url (POST /v1/hosts/enrol) with a join
 * token, under name, and writes host.json. On failure msg gets the
 * keeper's message (never the token).
 */
COFFER_MUST_CHECK enum coffer_err agent_enrol(const char *state_dir, struct agent_identity *id,
					      const char *keeper_url, const struct secret *join_token,
					      const char *name, char *msg, size_t msg_size);

/*
 * One request signed with the host key (hostauth_sign_headers): body (may
 * be NULL: no body) is serialised once and exactly those bytes are signed
 * and sent. A 2xx answer gives COFFER_OK and *answer (may be NULL; the
 * caller's to json_decref). Otherwise the code named by the peer's error
 * body (or derived from the status) and its message in msg;
 * COFFER_ERR_UNAVAILABLE when the peer cannot be reached.
 */
COFFER_MUST_CHECK enum coffer_err agent_signed_call(const struct agent_identity *id, const char *base_url,
						    const char *method, const char *path, const json_t *body,
						    json_t **answer, char *msg, size_t msg_size);

#endif
