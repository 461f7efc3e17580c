/*
 * release.h — releases inside the api: making one (every route that
 * changes what an app runs goes through release_create), the scheduler
 * that places machines on hosts, and the controller thread that rolls a
 * release out, watches each replaced machine through its grace window and
 * rolls back on a failure. docs/RUNPATH.md is the contract.
 *
 * Everything a release is lives in the store (store_release: config,
 * status, reason, progress; store_machine: desired and running release);
 * the controller keeps nothing of its own between two steps, so an api
 * killed at any point resumes from the store. With several api replicas
 * over one store, only the holder of the lease RELEASE_LEASE_NAME steps
 * releases (docs/RUNPATH.md "Several api replicas"): each replica's
 * controller tries to take or renew it every RELEASE_LEASE_RENEW_MS, for
 * RELEASE_LEASE_TTL_MS, and steps only while it holds it; every change
 * checks the lease again inside its transaction (store_lease_check), and
 * the re-read under the app's lock stays as a second guard.
 *
 * Ownership: struct release_ctl belongs to struct api (api_start makes it,
 * api_stop stops and frees it). It borrows the api's pool.
 */
#ifndef COFFER_API_RELEASE_H
#define COFFER_API_RELEASE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "json.h"
#include "store.h"
#include "timescale.h"

#define RELEASE_GRACE_DEFAULT_MS 30000
#define RELEASE_GRACE_MAX_MS ((int64_t)3600 * 1000)
#define RELEASE_COUNT_MAX 100              /* machines of one app */
#define RELEASE_CMD_ARGS_MAX 256
#define RELEASE_ENV_MAX 256                /* --env pairs */
#define RELEASE_FILES_MAX 16               /* secrets as files (--file) of one config */
/*
 * The timing constants below go through timescale_ms: COFFER_TEST_TIMESCALE
 * (a test knob, see timescale.h) shortens them for the integration tests.
 */
#define RELEASE_TICK_MS ((int64_t)timescale_ms(200))             /* the controller looks at running releases this often */
#define RELEASE_HOST_STALE_MS ((int64_t)timescale_ms(15000))     /* a host whose last heartbeat is older gets no new machine */
#define RELEASE_START_TIMEOUT_MS ((int64_t)timescale_ms(120000)) /* a replaced machine must report started within this */
#define RELEASE_REASON_MAX ((size_t)8 << 10)
#define RELEASE_TAIL_MAX ((size_t)8 << 10)     /* an agent's masked output tail (STORE_MACHINE_TAIL_MAX) */
#define RELEASE_SPEC_BYTES 8
#define RELEASE_SPEC_LEN (RELEASE_SPEC_BYTES * 2) /* hex characters */
#define RELEASE_SPEC_SIZE (RELEASE_SPEC_LEN + 1)
/*
 * The controller's lease, in real time (not scaled: a loaded test machine
 * must not lose it): a replica killed while holding it is replaced after
 * the TTL, plus at most one renew period (the others try that often).
 */
#define RELEASE_LEASE_NAME "release-controller"
#define RELEASE_LEASE_TTL_MS ((int64_t)5000)
#define RELEASE_LEASE_RENEW_MS ((int64_t)1000)
#define RELEASE_POLL_RECHECK_MS ((int64_t)timescale_ms(1000))    /* a long poll re-reads the store this often (other apis' changes) */

struct release_ctl;
struct api;

/* What a route asks for. */
struct release_request {
	const struct store_app *app;
	const char *actor;          /* "tok_<id>" */
	/*
	 * The new config (JSON text {"cmd","env","count","grace_ms","files"?}, checked by
	 * the caller with release_config_check), or NULL: the current release's
	 * config again (a secrets change or secrets deploy).
	 */
	const char *config;
	uint64_t secrets_version;   /* the secrets version to run; 0 without a config: the app's head */
	int set_head;               /* a rollback: secrets_version becomes the head with the release (a failure moves it back) */
};

/*
 * Checks a config document from a user (deploy, scale) and writes its
 * canonical text (keys sorted, compact) to *out (malloc'd). On a bad one,
 * msg gets what is wrong ("count must be 1..100") and COFFER_ERR_INVALID.
 */
COFFER_MUST_CHECK enum coffer_err release_config_check(const json_t *config, char **out, char *msg, size_t msg_size);

/*
 * Makes the app's next release (status pending) and wakes the controller.
 * previous_version = the app's current release, previous_secrets = its
 * deployed secrets version. COFFER_ERR_CONFLICT when a release of the app
 * is pending or running (*running gets its version, so the route can name
 * it); COFFER_ERR_NOT_FOUND (msg: "app 'web' has no release to take its
 * config from") when config is NULL and the app has no current release.
 */
COFFER_MUST_CHECK enum coffer_err release_create(struct api *api, struct store *s, const struct release_request *rq,
						 uint64_t *version, uint64_t *running, char *msg, size_t msg_size);

/* The version of the app's pending or running release, or 0. */
COFFER_MUST_CHECK enum coffer_err release_running_of(struct store *s, const char *app_id, uint64_t *version);

/*
 * The JSON of a release for the CLI (docs/RUNPATH.md): version, status,
 * reason, actor, secrets_version, config, created_at, updated_at, and
 * machines: [{id, host, step, grace_left_ms}] from the progress. NULL when
 * out of memory.
 */
json_t *release_json(struct store *s, const struct store_release *r);

/*
 * A machine's spec (RUNPATH.md "Agent <-> api"): the first RELEASE_SPEC_BYTES
 * of SHA-256 over the compact, key-sorted JSON
 *   {"app_id":"<id>","cmd":[...],"env":{...},"secrets_version":N}
 * (and "files":[...] when the config has files) in lower-case hex. cmd,
 * env and files come from config (a release's config text; a missing env
 * is {}). Two releases with the same spec run the same
 * process: the agent keeps it, the controller moves it without a window.
 * COFFER_ERR_INVALID for a config that is not a JSON object with a cmd array.
 */
COFFER_MUST_CHECK enum coffer_err release_spec(const char *app_id, const char *config, uint64_t secrets_version,
					       char out[RELEASE_SPEC_SIZE]);

/* What release_step works with (the controller thread fills it from the api). */
struct release_env {
	const unsigned char *keeper_pk; /* JWS_PK_LEN bytes: a host's certificate must verify under it */
	struct release_ctl *ctl;        /* told of changed assignments; NULL: nobody */
	int64_t start_timeout_ms;       /* 0: RELEASE_START_TIMEOUT_MS */
	int64_t host_stale_ms;          /* 0: RELEASE_HOST_STALE_MS */
	const char *lease_holder;       /* each change only while it holds RELEASE_LEASE_NAME; NULL: no lease */
};

/*
 * Steps the app's release `version` as far as it can go at `now` (unix
 * ms), docs/RUNPATH.md "Releases" steps 1-4: each change (pending to
 * running, a machine relabelled, replaced, created or passed, the failure
 * noted, the rollback, the success) is ONE store transaction under the
 * app's lock that re-reads the release first, so a step interrupted
 * anywhere, or run by two apis at once, leaves a consistent store and the
 * next step goes on from it. Returns once the release waits for an agent
 * (or a grace window), or is finished; a finished or unknown release is
 * left alone (COFFER_OK). Store errors are returned (nothing half done).
 * With env->lease_holder, a change is made only while that holder holds
 * the lease (checked in its transaction): COFFER_ERR_CONFLICT when it does
 * not (nothing done).
 */
COFFER_MUST_CHECK enum coffer_err release_step(const struct release_env *env, struct store *s, const char *app_id,
					       uint64_t version, int64_t now);

/*
 * Starts the controller thread over api->pool (api->pool must be open):
 * every RELEASE_TICK_MS, or at once when woken, it steps every release of
 * store_release_running while it holds the lease (a holder id random per
 * start; logged release_lease_acquired / release_lease_lost). Stopping
 * gives the lease up, so another replica takes it at once.
 */
COFFER_MUST_CHECK enum coffer_err release_ctl_start(struct api *api, struct release_ctl **out);
/* Wakes the controller now (a release was made, an agent reported). NULL is allowed. */
void release_ctl_wake(struct release_ctl *c);
/*
 * Tells the thread and every long poll to finish (waits return at once),
 * without freeing c: call it before stopping the http server, whose
 * handlers may still hold c. NULL is allowed.
 */
void release_ctl_shutdown(struct release_ctl *c);
/* Stops the thread between two steps and frees c (shutting it down first if needed). NULL is allowed. */
void release_ctl_stop(struct release_ctl *c);

/*
 * The long polls of the api's agents park on the queue (http_request_park);
 * release_assignments_changed wakes them (a machine was created, destroyed,
 * or given another desired release): call it after the change is
 * committed. release_ctl_shutdown wakes them too. Both accept NULL (the
 * queue is then NULL: a park waits for its deadline only).
 */
struct http_waitq;
void release_assignments_changed(struct release_ctl *c);
/*
 * Only host_id's assignments changed: wakes the polls parked for that host
 * (h_agent.c parks with release_host_key of its host), and those parked
 * with an older ticket; the others stay parked.
 */
void release_assignments_changed_host(struct release_ctl *c, const char *host_id);
/* The park key of a host's long polls (a hash; never 0). */
uint64_t release_host_key(const char *host_id);
struct http_waitq *release_assignments_queue(struct release_ctl *c);
/* 1 once release_ctl_shutdown ran: a long poll answers now. */
int release_ctl_stopping(struct release_ctl *c);
/* 1 while this api holds the controller's lease (as last seen). NULL: 0. */
int release_ctl_leader(struct release_ctl *c);

#endif
