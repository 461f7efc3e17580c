/*
 * The run path: hosts (and spent join tokens), machines, releases and
 * leases. Each entity is a column table (store_int.h); the functions below
 * keep only their checks and their rules: destroyed is final, one pending
 * or running release per app, a finished release stays finished, one
 * holder per lease.
 */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#include "banned.h"

static int one_of(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(s, set[i]) == 0)
			return 1;
	return 0;
}

/* ---- hosts ---- */

/* Keys and the MAC must have their exact size; a NULL cert (before schema version 2) reads as empty. */
static const struct store_col host_cols[] = {
	COLF(struct store_host, id, COL_TEXT, COL_INS),
	COLF(struct store_host, name, COL_TEXT, COL_INS),
	COLF(struct store_host, sign_pk, COL_BLOB, COL_EXACT | COL_INS),
	COLF(struct store_host, seal_pk, COL_BLOB, COL_EXACT | COL_INS),
	COLF(struct store_host, mac, COL_BLOB, COL_EXACT | COL_INS),
	COLF(struct store_host, state, COL_TEXT, COL_INS),
	COLF(struct store_host, enrolled_at, COL_INT, COL_INS),
	COL(struct store_host, last_heartbeat, COL_INT),
	COLBLOB(struct store_host, cert, cert_len, COL_NULL_OK | COL_INS),
};
static const struct store_entity host_entity = ENTITY("host", struct store_host, host_cols, NULL);

enum coffer_err store_host_put(struct store *s, const struct store_host *h)
{
	if (!h->id[0] || !h->name[0] || !h->state[0] || h->enrolled_at < 0)
		return COFFER_ERR_INVALID;
	if (!store_valid_text(h->id, sizeof(h->id)) || !store_valid_text(h->name, sizeof(h->name)) ||
	    !store_valid_text(h->state, sizeof(h->state)) || h->cert_len > sizeof(h->cert))
		return COFFER_ERR_TOO_LARGE;
	return store_insert(s, &host_entity, STORE_Q_HOST_INSERT, h);
}

enum coffer_err store_host_get(struct store *s, const char *id, struct store_host *out)
{
	return store_get_by(s, &host_entity, STORE_Q_HOST_BY_ID, id, out);
}

enum coffer_err store_host_get_by_name(struct store *s, const char *name, struct store_host *out)
{
	return store_get_by(s, &host_entity, STORE_Q_HOST_BY_NAME, name, out);
}

enum coffer_err store_host_list(struct store *s, struct store_host_list *out)
{
	return store_list(s, &host_entity, STORE_Q_HOST_LIST, NULL, 0, (void **)&out->items, &out->n);
}

void store_host_list_release(struct store_host_list *l)
{
	store_items_free(&host_entity, (void **)&l->items, &l->n);
}

enum coffer_err store_host_update(struct store *s, const struct store_host *h)
{
	if (!h->id[0] || !h->state[0])
		return COFFER_ERR_INVALID;
	if (!store_valid_text(h->state, sizeof(h->state)) || h->cert_len > sizeof(h->cert))
		return COFFER_ERR_TOO_LARGE;
	return store_run_one(s, STORE_Q_HOST_UPDATE,
			     PARAMS(VT(h->id), VB(h->sign_pk, sizeof(h->sign_pk)), VB(h->seal_pk, sizeof(h->seal_pk)),
				    VB(h->mac, sizeof(h->mac)), VT(h->state), VB(h->cert, h->cert_len)));
}

struct heartbeat {
	const char *id;
	int64_t at;
};

static enum coffer_err heartbeat_change(struct store *s, void *arg)
{
	const struct heartbeat *h = arg;
	return store_run_one(s, STORE_Q_HOST_HEARTBEAT, PARAMS(VT(h->id), VI(h->at)));
}

/* A change of the group of s: every host heartbeats, and their commits are shared. */
enum coffer_err store_host_heartbeat(struct store *s, const char *id, int64_t at)
{
	if (!id || at <= 0)
		return COFFER_ERR_INVALID;
	struct heartbeat h = { id, at };
	return store_group_run(s, heartbeat_change, &h);
}

enum coffer_err store_join_token_use(struct store *s, const char *id)
{
	if (!id || !*id)
		return COFFER_ERR_INVALID;
	if (strlen(id) > STORE_JOIN_TOKEN_ID_MAX)
		return COFFER_ERR_TOO_LARGE;
	return store_run(s, STORE_Q_JOIN_TOKEN_INSERT, PARAMS(VT(id), VI(store_now_ms())), NULL);
}

struct nonce_use {
	const char *host_id, *nonce;
	int64_t expires_at, now;
};

static enum coffer_err nonce_change(struct store *s, void *arg)
{
	const struct nonce_use *u = arg;
	enum coffer_err rc = store_run(s, STORE_Q_HOST_NONCE_PURGE, PARAMS(VI(u->now)), NULL);
	if (!rc)
		rc = store_run_one(s, STORE_Q_HOST_NONCE_USE,
				   PARAMS(VT(u->host_id), VT(u->nonce), VI(u->expires_at), VI(u->now)));
	return rc;
}

/*
 * A change of the group of s (store_group_run): concurrent signed requests
 * share one durable commit, and each is answered only after its nonce is
 * durable. Two uses of one nonce in one batch: the second sees the first's
 * row (same transaction) and is the replay.
 */
enum coffer_err store_host_nonce_use(struct store *s, const char *host_id, const char *nonce, int64_t expires_at,
				     int64_t now)
{
	if (!host_id || !*host_id || !nonce || !*nonce || expires_at < now)
		return COFFER_ERR_INVALID;
	if (!store_valid_text(host_id, STORE_NAME_SIZE) || !store_valid_text(nonce, STORE_NAME_SIZE))
		return COFFER_ERR_TOO_LARGE;
	struct nonce_use u = { host_id, nonce, expires_at, now };
	enum coffer_err rc = store_group_run(s, nonce_change, &u);
	return rc == COFFER_ERR_NOT_FOUND ? COFFER_ERR_CONFLICT : rc;
}

enum coffer_err store_boot_token_spend(struct store *s, const char *jti, int64_t expires_at, int64_t purge_before,
				       int *spent)
{
	*spent = 0;
	if (!jti || !*jti || expires_at <= 0)
		return COFFER_ERR_INVALID;
	if (!store_valid_text(jti, STORE_NAME_SIZE))
		return COFFER_ERR_TOO_LARGE;
	enum coffer_err rc = store_run(s, STORE_Q_BOOT_TOKEN_PURGE, PARAMS(VI(purge_before)), NULL);
	if (!rc)
		rc = store_run_one(s, STORE_Q_BOOT_TOKEN_SPEND,
				   PARAMS(VT(jti), VI(expires_at), VI(store_now_ms() / 1000)));
	if (rc == COFFER_ERR_NOT_FOUND) {
		*spent = 1; /* the insert met the jti's row: no other outcome sets it */
		return COFFER_ERR_CONFLICT;
	}
	return rc;
}

/* ---- machines ---- */

static int valid_machine_state(const char *state)
{
	static const char *const states[] = { "created", "starting", "started", "stopping",
					      "stopped", "failed",   "destroyed" };
	return one_of(state, states, sizeof(states) / sizeof(states[0]));
}

/* NULL pid, exit status and signal read as none (0, -1, 0). */
static const struct store_col machine_cols[] = {
	COLF(struct store_machine, id, COL_TEXT, COL_INS | COL_KEY),
	COLF(struct store_machine, app_id, COL_TEXT, COL_INS | COL_AUTH),
	COLF(struct store_machine, host_id, COL_TEXT, COL_INS | COL_AUTH),
	COLF(struct store_machine, desired_release, COL_UINT, COL_INS | COL_AUTH),
	COLF(struct store_machine, running_release, COL_UINT, COL_AUTH),
	COLF(struct store_machine, state, COL_TEXT, COL_INS | COL_AUTH),
	COLF(struct store_machine, pid, COL_INT, COL_AUTH),
	COLF(struct store_machine, exit_status, COL_CINT, COL_NULL_NEG | COL_AUTH),
	COLF(struct store_machine, exit_signal, COL_CINT, COL_AUTH),
	COLF(struct store_machine, started_at, COL_INT, COL_AUTH),
	COLF(struct store_machine, restarts, COL_UINT, COL_AUTH),
	COLF(struct store_machine, created_at, COL_INT, COL_INS | COL_AUTH),
	COLF(struct store_machine, updated_at, COL_INT, COL_AUTH),
	COLMAC,
};
static const struct store_auth machine_auth = { STORE_TABLE_MACHINES, STORE_Q_MACHINE_ROW, STORE_Q_MACHINE_SEAL };
static const struct store_entity machine_entity =
	AUTH_ENTITY("machine", struct store_machine, machine_cols, NULL, &machine_auth);

enum coffer_err store_machine_create(struct store *s, const char *app_id, const char *host_id,
				     uint64_t desired_release, struct store_machine *out)
{
	struct store_machine m = { 0 };
	enum coffer_err rc;
	if (!app_id || !host_id || !*host_id || desired_release > INT64_MAX)
		return COFFER_ERR_INVALID;
	if (!store_valid_text(app_id, sizeof(m.app_id)) || !store_valid_text(host_id, sizeof(m.host_id)))
		return COFFER_ERR_TOO_LARGE;
	store_new_id(m.id);
	memcpy(m.app_id, app_id, strlen(app_id) + 1);
	memcpy(m.host_id, host_id, strlen(host_id) + 1);
	memcpy(m.state, "created", sizeof("created"));
	m.desired_release = desired_release;
	m.exit_status = -1;
	m.created_at = store_now_ms();
	m.updated_at = m.created_at;
	rc = store_insert(s, &machine_entity, STORE_Q_MACHINE_INSERT, &m);
	if (rc)
		return rc;
	*out = m;
	return COFFER_OK;
}

enum coffer_err store_machine_get(struct store *s, const char *id, struct store_machine *out)
{
	return store_get_by(s, &machine_entity, STORE_Q_MACHINE_BY_ID, id, out);
}

enum coffer_err store_machine_list_by_app(struct store *s, const char *app_id, struct store_machine_list *out)
{
	return store_list_by(s, &machine_entity, STORE_Q_MACHINE_BY_APP, app_id, (void **)&out->items, &out->n);
}

enum coffer_err store_machine_list_by_host(struct store *s, const char *host_id, struct store_machine_list *out)
{
	return store_list_by(s, &machine_entity, STORE_Q_MACHINE_BY_HOST, host_id, (void **)&out->items, &out->n);
}

void store_machine_list_release(struct store_machine_list *l)
{
	store_items_free(&machine_entity, (void **)&l->items, &l->n);
}

/*
 * Runs an update that matches only a live machine. When it matched none:
 * NOT_FOUND if there is no such machine, CONFLICT if it is destroyed
 * (destroyed is final).
 */
static enum coffer_err machine_update(struct store *s, const char *id, enum store_q q, const struct store_val *p,
				      size_t n)
{
	struct store_machine m;
	enum coffer_err rc = store_write(s, &machine_entity, q, p, n, PARAMS(VT(id)));
	if (rc != COFFER_ERR_NOT_FOUND)
		return rc;
	rc = store_machine_get(s, id, &m);
	return rc ? rc : COFFER_ERR_CONFLICT;
}

enum coffer_err store_machine_set_desired(struct store *s, const char *id, uint64_t release)
{
	if (!id || release > INT64_MAX)
		return COFFER_ERR_INVALID;
	return machine_update(s, id, STORE_Q_MACHINE_SET_DESIRED, PARAMS(VT(id), VI(release), VI(store_now_ms())));
}

enum coffer_err store_machine_report(struct store *s, const char *id, const char *state, uint64_t running_release,
				     int64_t pid, int exit_status, int exit_signal, int64_t started_at)
{
	if (!id || !valid_machine_state(state) || running_release > INT64_MAX || pid < 0 || exit_status < -1 ||
	    exit_signal < 0 || started_at < 0)
		return COFFER_ERR_INVALID;
	return machine_update(s, id, STORE_Q_MACHINE_REPORT,
			      PARAMS(VT(id), VT(state), VI(running_release), pid ? VI(pid) : VNULL,
				     exit_status >= 0 ? VI(exit_status) : VNULL, exit_signal ? VI(exit_signal) : VNULL,
				     started_at ? VI(started_at) : VNULL, VI(store_now_ms())));
}

enum coffer_err store_machine_destroy(struct store *s, const char *id)
{
	if (!id)
		return COFFER_ERR_INVALID;
	return store_write(s, &machine_entity, STORE_Q_MACHINE_DESTROY, PARAMS(VT(id), VI(store_now_ms())),
			   PARAMS(VT(id)));
}

enum coffer_err store_machine_set_tail(struct store *s, const char *id, const char *tail)
{
	if (!id)
		return COFFER_ERR_INVALID;
	if (tail && strlen(tail) > STORE_MACHINE_TAIL_MAX)
		return COFFER_ERR_TOO_LARGE;
	return machine_update(s, id, STORE_Q_MACHINE_SET_TAIL, PARAMS(VT(id), tail ? VT(tail) : VNULL));
}

/* MACHINE_TAIL's one column: NULL reads as "", at most STORE_MACHINE_TAIL_MAX bytes, no NUL. */
struct tail_row {
	char *tail;
};

static void tail_clear(void *item)
{
	struct tail_row *t = item;
	free(t->tail);
	t->tail = NULL;
}

static const struct store_col tail_cols[] = {
	COLSTR("tail", struct tail_row, tail, STORE_MACHINE_TAIL_MAX),
};
static const struct store_entity tail_entity = ENTITY("machine tail", struct tail_row, tail_cols, tail_clear);

enum coffer_err store_machine_tail(struct store *s, const char *id, struct buf *out)
{
	struct tail_row t = { 0 };
	size_t len;
	enum coffer_err rc;
	if (!id || !out)
		return COFFER_ERR_INVALID;
	rc = store_get(s, &tail_entity, STORE_Q_MACHINE_TAIL, PARAMS(VT(id)), &t);
	if (rc)
		return rc;
	len = strlen(t.tail);
	if (len > out->max) {
		rc = COFFER_ERR_TOO_LARGE;
	} else {
		buf_reset(out);
		rc = buf_add(out, t.tail, len);
	}
	tail_clear(&t);
	return rc;
}

static const struct store_col load_cols[] = {
	COL(struct store_host_load, host_id, COL_TEXT),
	COLN("count(*)", struct store_host_load, machines, COL_UINT, 0),
	COLN("sum(...)", struct store_host_load, app_machines, COL_UINT, 0),
};
static const struct store_entity load_entity = ENTITY("host load", struct store_host_load, load_cols, NULL);

enum coffer_err store_machine_load(struct store *s, const char *app_id, struct store_host_load_list *out)
{
	return store_list_by(s, &load_entity, STORE_Q_MACHINE_LOAD, app_id, (void **)&out->items, &out->n);
}

void store_host_load_list_release(struct store_host_load_list *l)
{
	store_items_free(&load_entity, (void **)&l->items, &l->n);
}

/* ---- releases ---- */

static int valid_release_status(const char *status)
{
	static const char *const statuses[] = { "pending", "running", "succeeded", "failed" };
	return one_of(status, statuses, sizeof(statuses) / sizeof(statuses[0]));
}

static int release_active(const char *status)
{
	return strcmp(status, "pending") == 0 || strcmp(status, "running") == 0;
}

static void release_clear(void *item)
{
	store_release_clear(item);
}

/* The long texts are owned by the struct: at most STORE_RELEASE_TEXT_MAX bytes, no NUL. */
static const struct store_col release_cols[] = {
	COLF(struct store_release, app_id, COL_TEXT, COL_INS | COL_KEY),
	COLF(struct store_release, version, COL_UINT, COL_INS | COL_KEY),
	{ "config", COL_STR, offsetof(struct store_release, config), STORE_RELEASE_TEXT_MAX, 0, COL_INS | COL_AUTH },
	COLF(struct store_release, secrets_version, COL_UINT, COL_INS | COL_AUTH),
	COLF(struct store_release, status, COL_TEXT, COL_INS | COL_AUTH),
	{ "reason", COL_STR, offsetof(struct store_release, reason), STORE_RELEASE_TEXT_MAX, 0, COL_AUTH },
	COLF(struct store_release, actor, COL_TEXT, COL_INS | COL_AUTH),
	COLF(struct store_release, previous_version, COL_UINT, COL_INS | COL_AUTH),
	COLF(struct store_release, previous_secrets, COL_UINT, COL_INS | COL_AUTH),
	{ "progress", COL_STR, offsetof(struct store_release, progress), STORE_RELEASE_TEXT_MAX, 0, COL_AUTH },
	COLF(struct store_release, created_at, COL_INT, COL_INS | COL_AUTH),
	COLF(struct store_release, updated_at, COL_INT, COL_AUTH),
	COLMAC,
};
static const struct store_auth release_auth = { STORE_TABLE_RELEASES, STORE_Q_RELEASE_ROW, STORE_Q_RELEASE_SEAL };
static const struct store_entity release_entity =
	AUTH_ENTITY("release", struct store_release, release_cols, release_clear, &release_auth);

void store_release_clear(struct store_release *r)
{
	free(r->config);
	free(r->reason);
	free(r->progress);
	memset(r, 0, sizeof(*r));
}

void store_release_list_release(struct store_release_list *l)
{
	store_items_free(&release_entity, (void **)&l->items, &l->n);
}

enum coffer_err store_release_create(struct store *s, const char *app_id, const char *config,
				     uint64_t secrets_version, uint64_t previous_version, uint64_t previous_secrets,
				     const char *actor, uint64_t *version)
{
	struct store_release r = { 0 };
	uint64_t max = 0;
	enum coffer_err rc;

	if (!app_id || !config || !actor || secrets_version > INT64_MAX || previous_version > INT64_MAX ||
	    previous_secrets > INT64_MAX)
		return COFFER_ERR_INVALID;
	if (strlen(config) > STORE_RELEASE_TEXT_MAX || strlen(actor) >= STORE_ACTOR_SIZE)
		return COFFER_ERR_TOO_LARGE;
	if (store_valid_text(app_id, sizeof(r.app_id)))
		memcpy(r.app_id, app_id, strlen(app_id) + 1); /* else the lock below finds no such app */
	r.config = (char *)config; /* only read by store_insert */
	r.secrets_version = secrets_version;
	memcpy(r.status, "pending", sizeof("pending"));
	memcpy(r.actor, actor, strlen(actor) + 1);
	r.previous_version = previous_version;
	r.previous_secrets = previous_secrets;
	r.created_at = store_now_ms();

	rc = store_begin(s, 1);
	if (rc)
		return rc;
	/* The app row lock serialises release creators: two cannot both see none running. */
	rc = store_lock_app(s, app_id);
	if (rc)
		goto out;
	rc = store_run_one(s, STORE_Q_RELEASE_ACTIVE, PARAMS(VT(app_id)));
	if (rc != COFFER_ERR_NOT_FOUND) {
		rc = rc ? rc : COFFER_ERR_CONFLICT;
		goto out;
	}
	rc = store_run_uint(s, STORE_Q_RELEASE_MAX, PARAMS(VT(app_id)), &max);
	if (rc)
		goto out;
	r.version = max + 1;
	rc = store_insert(s, &release_entity, STORE_Q_RELEASE_INSERT, &r);
out:
	rc = store_finish(s, rc);
	if (rc == COFFER_OK)
		*version = r.version;
	return rc;
}

enum coffer_err store_release_get(struct store *s, const char *app_id, uint64_t version, struct store_release *out)
{
	if (!app_id || version == 0 || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	return store_get(s, &release_entity, STORE_Q_RELEASE_GET, PARAMS(VT(app_id), VI(version)), out);
}

enum coffer_err store_release_list(struct store *s, const char *app_id, struct store_release_list *out)
{
	return store_list_by(s, &release_entity, STORE_Q_RELEASE_LIST, app_id, (void **)&out->items, &out->n);
}

enum coffer_err store_release_running(struct store *s, struct store_release_list *out)
{
	return store_list(s, &release_entity, STORE_Q_RELEASE_RUNNING, NULL, 0, (void **)&out->items, &out->n);
}

enum coffer_err store_release_update(struct store *s, const char *app_id, uint64_t version, const char *status,
				     const char *reason, const char *progress)
{
	struct store_release cur = { 0 };
	enum coffer_err rc;

	if (!app_id || version == 0 || version > INT64_MAX || !valid_release_status(status))
		return COFFER_ERR_INVALID;
	if ((reason && strlen(reason) > STORE_RELEASE_TEXT_MAX) ||
	    (progress && strlen(progress) > STORE_RELEASE_TEXT_MAX))
		return COFFER_ERR_TOO_LARGE;
	rc = store_begin(s, 1);
	if (rc)
		return rc;
	rc = store_lock_app(s, app_id);
	if (rc)
		goto out;
	rc = store_get(s, &release_entity, STORE_Q_RELEASE_GET, PARAMS(VT(app_id), VI(version)), &cur);
	if (rc)
		goto out;
	/* A finished release coming back would make two active releases of one app. */
	if (!release_active(cur.status) && release_active(status)) {
		rc = COFFER_ERR_CONFLICT;
		goto out;
	}
	rc = store_write(s, &release_entity, STORE_Q_RELEASE_UPDATE,
			 PARAMS(VT(app_id), VI(version), VT(status), reason ? VT(reason) : VNULL,
				progress ? VT(progress) : VNULL, VI(store_now_ms())),
			 PARAMS(VT(app_id), VI(version)));
out:
	store_release_clear(&cur);
	return store_finish(s, rc);
}

enum coffer_err store_app_set_current_release(struct store *s, const char *app_id, uint64_t release,
					      uint64_t deployed_version)
{
	enum coffer_err rc;

	if (!app_id || release > INT64_MAX || deployed_version > INT64_MAX)
		return COFFER_ERR_INVALID;
	rc = store_begin(s, 1);
	if (rc)
		return rc;
	rc = store_lock_app(s, app_id);
	if (rc == COFFER_OK && release) {
		struct store_release r = { 0 };
		rc = store_release_get(s, app_id, release, &r);
		store_release_clear(&r);
	}
	if (rc == COFFER_OK && deployed_version)
		rc = store_version_row(s, app_id, deployed_version, NULL);
	if (rc == COFFER_OK)
		rc = store_write(s, &store_app_entity, STORE_Q_APP_SET_RELEASE,
				 PARAMS(VT(app_id), VI(release), VI(deployed_version)), PARAMS(VT(app_id)));
	return store_finish(s, rc);
}

/* ---- leases (schema version 5) ---- */

enum coffer_err store_lease_acquire(struct store *s, const char *name, const char *holder, int64_t ttl_ms,
				    int *held)
{
	int64_t now = store_now_ms();
	enum coffer_err rc;
	if (!name || !*name || !holder || !*holder || ttl_ms <= 0 || ttl_ms > INT64_MAX - now || !held)
		return COFFER_ERR_INVALID;
	if (strlen(name) > STORE_NAME_MAX || strlen(holder) > STORE_NAME_MAX)
		return COFFER_ERR_TOO_LARGE;
	/* One conditional upsert: it returns a row only when the caller holds the lease now. */
	rc = store_run_one(s, STORE_Q_LEASE_ACQUIRE, PARAMS(VT(name), VT(holder), VI(now + ttl_ms), VI(now)));
	if (rc && rc != COFFER_ERR_NOT_FOUND)
		return rc;
	*held = rc == COFFER_OK;
	return COFFER_OK;
}

enum coffer_err store_lease_release(struct store *s, const char *name, const char *holder)
{
	if (!name || !holder)
		return COFFER_ERR_INVALID;
	return store_run_one(s, STORE_Q_LEASE_RELEASE, PARAMS(VT(name), VT(holder)));
}

enum coffer_err store_lease_check(struct store *s, const char *name, const char *holder, int *held)
{
	enum coffer_err rc;
	if (!name || !holder || !held)
		return COFFER_ERR_INVALID;
	rc = store_run_one(s, STORE_Q_LEASE_CHECK, PARAMS(VT(name), VT(holder), VI(store_now_ms())));
	if (rc && rc != COFFER_ERR_NOT_FOUND)
		return rc;
	*held = rc == COFFER_OK;
	return COFFER_OK;
}
