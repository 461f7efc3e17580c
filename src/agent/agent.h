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
 * host.json does not exist. The api's answer key (answersig.h) is not
 * kept: the keeper tells it at enrolment and at every start (GET
 * /v1/hosts/self), and the agent acts only on api answers it verifies
 * (agent_signed_call_verified: the assignments and the boot-token route).
 *
 * Ownership: struct agent_identity owns its private keys (struct secret,
 * wiped by agent_identity_release); public keys, the id and the cert are
 * plain. A join token is a struct secret, borrowed.
 *
 * Running machines (agent_run.c, docs/RUNPATH.md): once registered, the
 * agent starts a runner with three threads besides its own (which
 * heartbeats and waits for SIGINT/SIGTERM):
 *   poll       GET /v1/agent/assignments?after=G&wait=AGENT_POLL_WAIT_S,
 *              signed; keeps the newest document (an answer with the same
 *              generation replaces it too: its boot tokens are fresh) and
 *              wakes the reconcile thread when its generation changes;
 *              retries after AGENT_RETRY_MS on any error
 *   reconcile  ticks every AGENT_TICK_MS (and at once on a new document);
 *              owns every struct machine (machine.h) and the per-machine
 *              state, boots (with the boot token of the machine's entry
 *              while it has AGENT_TOKEN_MIN_LEFT_S left, else or on a 401
 *              from the keeper with one from the boot-token route), adopts,
 *              restarts with backoff, stops what is no longer assigned, and
 *              queues its events
 *   sender     posts the queued events in order, one at a time; one the
 *              api cannot take now is posted again after AGENT_RETRY_MS and
 *              those behind it wait (at most AGENT_EVENTS_MAX queued: the
 *              oldest starting/stopping go first); at stop, what is left
 *              is posted once
 * The waits (AGENT_HEARTBEAT_MS, AGENT_RETRY_MS, AGENT_TICK_MS,
 * AGENT_POLL_WAIT_S and the restart backoff) are read through timescale_ms,
 * so a test shortens them with COFFER_TEST_TIMESCALE (timescale.h); the
 * HTTP timeouts and token freshness are not waits and are not scaled.
 * Machines live in STATE/machines/<id>/{work,logs}, with run.json (the
 * record a later agent adopts the running process by, agent_record.h)
 * while it runs; the work folder is removed when a machine leaves the
 * host, the logs are kept. Secret values
 * live only in the boot path (delivery_open -> machine_start) and in the
 * masking of an exit's tail, in secure memory, wiped at once after; the
 * agent never keeps them, and never logs a value, a token or a tail.
 */
#ifndef COFFER_AGENT_H
#define COFFER_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "answersig.h"
#include "err.h"
#include "hostauth.h"
#include "http_client.h"
#include "json.h"
#include "secret.h"
#include "timescale.h"

#define AGENT_SIGN_KEY_FILE "host.sign.key"
#define AGENT_SEAL_KEY_FILE "host.seal.key"
#define AGENT_IDENTITY_FILE "host.json"
#define AGENT_PENDING_KEYS_FILE "host.keys.pending" /* `agent rotate-keys`: new sign seed || new seal key */
#define AGENT_JOIN_ENV "COFFER_JOIN_TOKEN" /* the join token, when not given with --join */
#define AGENT_KEY_LEN 32
#define AGENT_NAME_SIZE 256
#define AGENT_PATH_MAX 4096
#define AGENT_URL_MAX 2048
#define AGENT_IDENTITY_FILE_MAX ((size_t)4 << 10)
/* shortened by COFFER_TEST_TIMESCALE, a test knob (timescale.h) */
#define AGENT_HEARTBEAT_MS ((int64_t)timescale_ms(5000))
#define AGENT_RETRY_MS ((int64_t)timescale_ms(1000))
#define AGENT_HTTP_TIMEOUT_MS 10000
#define AGENT_RESPONSE_MAX ((size_t)64 << 10)
#define AGENT_REQUEST_MAX ((size_t)64 << 10)
#define AGENT_MESSAGE_MAX 256
#define AGENT_POLL_WAIT_S 25                       /* the long poll's wait */
#define AGENT_POLL_TIMEOUT_MS 35000                /* its HTTP timeout: more than the wait */
#define AGENT_TICK_MS 100                          /* the reconcile loop's tick */
#define AGENT_ASSIGNMENTS_MAX ((size_t)4 << 20)    /* bytes of an assignments answer */
#define AGENT_OPEN_ANSWER_MAX ((size_t)4 << 20)    /* bytes of the keeper's /v1/open answer */
#define AGENT_TAIL_MAX ((size_t)8 << 10)           /* bytes of a tail sent with an event */
#define AGENT_MACHINES_DIR "machines"              /* STATE/machines/<id>/{work,logs} */
#define AGENT_JTI_SIZE 33                          /* a boot token's jti, 32 hex and a NUL */
#define AGENT_POLL_JOIN_MS 200                     /* how long stop waits for the poll thread */
#define AGENT_TOKEN_MIN_LEFT_S 60                  /* an assignment's boot token is used while it has this left */
#define AGENT_EVENTS_MAX 4096                      /* events queued for the api before the oldest go */
#define AGENT_CONFIG_MAX ((size_t)64 << 10)        /* bytes of a release's config (the store's limit) */
#define AGENT_GRACE_DEFAULT_MS 30000               /* a config without grace_ms: the api's default */

struct agent_identity {
	struct secret *sign_sk;                 /* Ed25519, 64-byte form */
	unsigned char sign_pk[HOSTAUTH_PK_LEN];
	struct secret *seal_sk;                 /* X25519 */
	unsigned char seal_pk[HOSTAUTH_PK_LEN];
	int enrolled;                           /* host_id, name and cert below are set */
	char host_id[HOSTAUTH_HOST_ID_MAX + 1];
	char name[AGENT_NAME_SIZE];
	unsigned char cert[HOSTAUTH_CERT_LEN];
	int has_answer_pk;                      /* answer_pk below is set: the keeper told it */
	unsigned char answer_pk[ANSWERSIG_PK_LEN]; /* the key the api's answers are signed with (answersig.h) */
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
 * Host key rotation, in two halves (docs/CRYPTO.md "Host key rotation").
 * agent_rotate_begin (`coffer agent rotate-keys`, on the state folder)
 * writes new keys to AGENT_PENDING_KEYS_FILE (0600, exclusively: *pending
 * is 1 and nothing is written when one is pending already); nothing else
 * changes. agent_rotate_finish, at every agent start before anything is
 * signed, sends a pending file's proof (hostauth_rekey) to the keeper and,
 * once the keeper answers with the new cert, makes the new keys current:
 * the seal key file, host.json, then the sign key file, then the pending
 * file is removed. A crash at any point leaves files a restart finishes
 * (the keeper answers a retry the same); *rotated says whether id now
 * holds new keys. On a refusal msg gets the keeper's message.
 */
COFFER_MUST_CHECK enum coffer_err agent_rotate_begin(const char *state_dir, int *pending);
COFFER_MUST_CHECK enum coffer_err agent_rotate_finish(const char *state_dir, struct agent_identity *id,
						      const char *keeper_url, int *rotated, char *msg, size_t msg_size);

/*
 * Enrols with the keeper at keeper_url (POST /v1/hosts/enrol) with a join
 * token, under name, and writes host.json. On failure msg gets the
 * keeper's message (never the token).
 */
COFFER_MUST_CHECK enum coffer_err agent_enrol(const char *state_dir, struct agent_identity *id,
					      const char *keeper_url, const struct secret *join_token,
					      const char *name, char *msg, size_t msg_size);

/*
 * Every call records whether its peer answered (gauge coffer_agent_peer_up,
 * peer "keeper" for keeper_url, "api" for any other URL), for the agent's
 * /readyz; set once before any thread calls.
 */
void agent_peers_set_keeper(const char *keeper_url);
/* The reconcile loop's count of machines running and not running (gauge coffer_agent_machines). */
void agent_machines_seen(size_t running, size_t down);

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

/*
 * Takes the api's answer key (answersig.h) from a keeper's answer (the
 * enrolment's or GET /v1/hosts/self's): COFFER_ERR_PROTOCOL when it is
 * missing or malformed. Never from the api: the keeper derives it.
 */
COFFER_MUST_CHECK enum coffer_err agent_identity_answer_key(struct agent_identity *id, const json_t *keeper_answer);

/*
 * agent_signed_call with its own HTTP timeout (ms) and answer limit
 * (bytes): for the long poll and the keeper's sealed deliveries.
 */
COFFER_MUST_CHECK enum coffer_err agent_signed_call_ex(const struct agent_identity *id, const char *base_url,
						       const char *method, const char *path, const json_t *body,
						       unsigned timeout_ms, size_t response_max, json_t **answer,
						       char *msg, size_t msg_size);

/*
 * agent_signed_call_ex over a kept connection: *conn (NULL at first) is the
 * client of the calls before to base_url and is reused, so they share one
 * TCP and TLS connection (keep-alive); it is left in *conn after an answer
 * (any status), freed after a call that got none. One *conn per thread; the
 * caller http_client_free-s it at the end.
 */
COFFER_MUST_CHECK enum coffer_err agent_signed_call_kept(const struct agent_identity *id, const char *base_url,
							 const char *method, const char *path, const json_t *body,
							 unsigned timeout_ms, size_t response_max,
							 struct http_client **conn, json_t **answer, char *msg,
							 size_t msg_size);

/*
 * agent_signed_call_ex for an answer the agent acts on: a 2xx answer must
 * carry the api's signature (answersig.h) over its exact bytes, this
 * host's id and the nonce of this request, under id->answer_pk. One that
 * does not is refused: logged (agent_answer_refused, with the path),
 * COFFER_ERR_CRYPTO, no *answer.
 */
COFFER_MUST_CHECK enum coffer_err agent_signed_call_verified(const struct agent_identity *id, const char *base_url,
							     const char *method, const char *path,
							     const json_t *body, unsigned timeout_ms,
							     size_t response_max, json_t **answer, char *msg,
							     size_t msg_size);

/* ---- running machines (agent_run.c) ---- */

struct agent_run_config {
	const struct agent_identity *id; /* enrolled; borrowed until agent_runner_stop returns */
	const char *api_url;
	const char *keeper_url;
	const char *state_dir;           /* made absolute by the runner */
	int keep_machines;               /* agent_runner_stop leaves the machines running (--keep-machines) */
	const char *mask_exe;            /* the output masker's program (AGENT_MASK_EXE); NULL: unmasked logs, and no tail is reported */
};

#define AGENT_MASK_EXE "/proc/self/exe" /* the agent's own binary, even once replaced on disk */

struct agent_runner;
struct machine;
struct machine_error;

/*
 * Starts the poll and reconcile threads; *out only on success. The
 * reconcile thread first adopts the machines an earlier agent left running
 * (their records in STATE/machines/<id>/run.json, agent_record.h).
 */
COFFER_MUST_CHECK enum coffer_err agent_runner_start(const struct agent_run_config *cfg, struct agent_runner **out);
/*
 * Stops every machine (SIGTERM to all, then SIGKILL after the stop
 * timeout) and reports them stopped, or with keep_machines leaves them
 * running for the next agent to adopt; ends the threads and frees. NULL is
 * allowed. A long poll still waiting on the api is left to end by itself
 * (it holds nothing of the caller's).
 */
void agent_runner_stop(struct agent_runner *r);

/*
 * The jti of a boot token (the JWS payload's "jti", 32 lower-case hex),
 * read without verifying: the agent is the token's intended reader and
 * the keeper verifies it. COFFER_ERR_INVALID for anything malformed.
 */
COFFER_MUST_CHECK enum coffer_err agent_token_jti(const char *token, size_t token_len, char jti[AGENT_JTI_SIZE]);

/*
 * Boots one machine from the keeper's sealed delivery: opens it with the
 * host's seal key for (host id, machine id, jti, hex SHA-256 of the
 * assignment's "config" text), starts the machine of assignment `m`
 * (RUNPATH.md M: id, app, release, and cmd and env parsed from config) in
 * state_dir/machines/<id>/{work,logs}, and wipes the values right after
 * machine_start returns. state_dir must be absolute. *out and *n_secrets
 * (may be NULL) only on success; err (may be NULL) gets the reason on a
 * failure to start (never a value). A delivery sealed for another config
 * (one the api changed after it was signed) does not open: COFFER_ERR_CRYPTO,
 * nothing started.
 */
COFFER_MUST_CHECK enum coffer_err agent_boot_sealed(const struct agent_identity *id, const char *state_dir,
						    const json_t *m, const char *jti, const void *sealed,
						    size_t sealed_len, struct machine **out, size_t *n_secrets,
						    struct machine_error *err);

#endif
