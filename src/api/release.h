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
 * killed at any point resumes from the store, and two apis over one store
 * step the same release safely (each step is one store change under the
 * app's lock, and re-doing a step is harmless).
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

#define RELEASE_GRACE_DEFAULT_MS 30000
#define RELEASE_GRACE_MAX_MS ((int64_t)3600 * 1000)
#define RELEASE_COUNT_MAX 100              /* machines of one app */
#define RELEASE_CMD_ARGS_MAX 256
#define RELEASE_ENV_MAX 256                /* --env pairs */
#define RELEASE_TICK_MS 200                /* the controller looks at running releases this often */
#define RELEASE_HOST_STALE_MS 15000        /* a host whose last heartbeat is older gets no new machine */
#define RELEASE_START_TIMEOUT_MS 120000    /* a replaced machine must report started within this */
#define RELEASE_REASON_MAX ((size_t)8 << 10)

struct release_ctl;
struct api;

/* What a route asks for. */
struct release_request {
	const struct store_app *app;
	const char *actor;          /* "tok_<id>" */
	/*
	 * The new config (JSON text {"cmd","env","count","grace_ms"}, checked by
	 * the caller with release_config_check), or NULL: the current release's
	 * config again (a secrets change or secrets deploy).
	 */
	const char *config;
	uint64_t secrets_version;   /* the secrets version to run; 0: the app's head */
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

/* Starts the controller thread over api->pool. */
COFFER_MUST_CHECK enum coffer_err release_ctl_start(struct api *api, struct release_ctl **out);
/* Wakes the controller now (a release was made, an agent reported). */
void release_ctl_wake(struct release_ctl *c);
/* Stops the thread between two steps and frees c. NULL is allowed. */
void release_ctl_stop(struct release_ctl *c);

/*
 * Wakes every long poll of the api's agents (a machine was created,
 * destroyed, or given another desired release), and waits: returns when
 * woken or after timeout_ms. gen_seen is what the caller last saw;
 * release_assignments_changed bumps the counter.
 */
void release_assignments_changed(struct release_ctl *c);
uint64_t release_assignments_wait(struct release_ctl *c, uint64_t gen_seen, int64_t timeout_ms);

#endif
