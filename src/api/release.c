/*
 * release.c — the release controller (a thread per api) and the scheduler.
 * docs/RUNPATH.md "Releases" is the contract; release.h says what each
 * function promises.
 *
 * Why the step is built the way it is: the controller keeps nothing of its
 * own. Each change is one store transaction (store_tx_begin) that locks
 * the app, re-reads the release and its progress, decides ONE change from
 * what the store says now, and writes the change together with the new
 * progress. So an api killed between two changes resumes from the store.
 * Only the holder of the controller's lease steps (release.h); should two
 * ever step one release (a holder paused past its TTL), the lease check in
 * each change's transaction refuses the old holder, and besides they
 * serialise on the app's lock: the second re-reads what the first wrote
 * and finds nothing left to do, or the next change.
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "hostauth.h"
#include "log.h"
#include "metrics.h"
#include "monotime.h"
#include "release.h"
#include "banned.h"

#define PHASE_ROLLING "rolling"
#define PHASE_ROLLBACK "rollback"
#define PHASE_DONE "done"
#define CONFIG_DEPTH_MAX 8
#define PROGRESS_DEPTH_MAX 4
#define STEP_CHANGES_MAX (4 * RELEASE_COUNT_MAX + 16) /* changes one release_step makes at most */
#define LAST_OUTPUT "\nlast output:\n"
#define MS_PER_S 1000
#define RELEASE_HOLDER_SIZE 64

/* ---- the spec of a machine ---- */

static enum coffer_err parse_config(const char *config, json_t **out)
{
	json_t *doc = NULL, *cmd;
	if (!config)
		return COFFER_ERR_INVALID;
	enum coffer_err rc = json_parse_limited(config, strlen(config), STORE_RELEASE_TEXT_MAX, CONFIG_DEPTH_MAX,
						&doc, NULL);
	if (rc)
		return COFFER_ERR_INVALID;
	cmd = json_object_get(doc, "cmd");
	if (!json_is_object(doc) || !json_is_array(cmd) || json_array_size(cmd) == 0) {
		json_decref(doc);
		return COFFER_ERR_INVALID;
	}
	*out = doc;
	return COFFER_OK;
}

static enum coffer_err spec_of(const char *app_id, const json_t *config, uint64_t secrets_version,
			       char out[RELEASE_SPEC_SIZE])
{
	unsigned char hash[crypto_hash_sha256_BYTES];
	json_t *env = json_object_get(config, "env");
	json_t *files = json_object_get(config, "files");
	/* the files only when there are some, so that the spec of a config without stays what it was */
	json_t *doc = json_pack("{s:s,s:O,s:o,s:I,s:O*}", "app_id", app_id, "cmd", json_object_get(config, "cmd"), "env",
				json_is_object(env) ? json_incref(env) : json_object(), "secrets_version",
				(json_int_t)secrets_version, "files", json_is_array(files) ? files : NULL);
	char *text;
	if (!doc)
		return COFFER_ERR_NOMEM;
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (!text)
		return COFFER_ERR_NOMEM;
	crypto_hash_sha256(hash, (const unsigned char *)text, strlen(text));
	free(text);
	sodium_bin2hex(out, RELEASE_SPEC_SIZE, hash, RELEASE_SPEC_BYTES);
	return COFFER_OK;
}

enum coffer_err release_spec(const char *app_id, const char *config, uint64_t secrets_version,
			     char out[RELEASE_SPEC_SIZE])
{
	json_t *doc = NULL;
	if (!app_id || secrets_version > INT64_MAX)
		return COFFER_ERR_INVALID;
	enum coffer_err rc = parse_config(config, &doc);
	if (rc)
		return rc;
	rc = spec_of(app_id, doc, secrets_version, out);
	json_decref(doc);
	return rc;
}

/* ---- one step ---- */

/* What one change works on; everything read inside its transaction. */
struct step {
	const struct release_env *env;
	struct store *s;
	int64_t now;
	struct store_app app;
	struct store_release rel;
	json_t *config;
	int64_t count;
	int64_t grace_ms;
	char spec[RELEASE_SPEC_SIZE];
	json_t *progress;           /* owned; written back with the change */
	struct store_machine_list machines;
	int changed;                /* a change was stored: step again */
	int assignments;            /* a machine was created, destroyed or given another release */
	size_t n_hosts;             /* the hosts whose assignments changed (assignments 2: only these) */
	char hosts[RELEASE_COUNT_MAX][STORE_ID_SIZE];
	const char *ended;          /* "succeeded" or "failed" when this change ends the release (metrics) */
};

static int64_t start_timeout(const struct step *st)
{
	return st->env->start_timeout_ms > 0 ? st->env->start_timeout_ms : RELEASE_START_TIMEOUT_MS;
}

static int64_t host_stale(const struct step *st)
{
	return st->env->host_stale_ms > 0 ? st->env->host_stale_ms : RELEASE_HOST_STALE_MS;
}

static json_t *progress_new(const char *phase)
{
	return json_pack("{s:s,s:[],s:[],s:n}", "phase", phase, "moved", "created", "current");
}

/* The stored progress, or a fresh one when it is missing or not ours ("{}" of a pending release). */
static enum coffer_err progress_load(struct step *st)
{
	json_t *doc = NULL;
	const char *text = st->rel.progress ? st->rel.progress : "{}";
	if (json_parse_limited(text, strlen(text), STORE_RELEASE_TEXT_MAX, PROGRESS_DEPTH_MAX, &doc, NULL) ||
	    !json_is_object(doc) || !json_is_string(json_object_get(doc, "phase")) ||
	    !json_is_array(json_object_get(doc, "moved")) || !json_is_array(json_object_get(doc, "created"))) {
		json_decref(doc);
		doc = progress_new(PHASE_ROLLING);
		if (!doc)
			return COFFER_ERR_NOMEM;
	}
	st->progress = doc; /* freed with the step */
	if (!json_object_get(doc, "current") && json_object_set_new(doc, "current", json_null()))
		return COFFER_ERR_NOMEM;
	return COFFER_OK;
}

static const char *phase_of(const struct step *st)
{
	return json_string_value(json_object_get(st->progress, "phase"));
}

static int id_in(const json_t *list, const char *id)
{
	size_t i;
	const json_t *v;
	json_array_foreach(list, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
			return 1;
	return 0;
}

static enum coffer_err id_add(struct step *st, const char *list, const char *id)
{
	json_t *l = json_object_get(st->progress, list);
	if (id_in(l, id))
		return COFFER_OK;
	return json_array_append_new(l, json_string(id)) ? COFFER_ERR_NOMEM : COFFER_OK;
}

static enum coffer_err set_current(struct step *st, json_t *cur)
{
	if (!cur)
		return COFFER_ERR_NOMEM;
	return json_object_set_new(st->progress, "current", cur) ? COFFER_ERR_NOMEM : COFFER_OK;
}

/* Stores the release's status, reason (NULL keeps it) and the progress: the end of every change. */
static enum coffer_err save(struct step *st, const char *status, const char *reason)
{
	char *text = json_dumps(st->progress, JSON_COMPACT | JSON_PRESERVE_ORDER);
	enum coffer_err rc;
	if (!text)
		return COFFER_ERR_NOMEM;
	rc = store_release_update(st->s, st->app.id, st->rel.version, status, reason, text);
	free(text);
	if (rc == COFFER_OK)
		st->changed = 1;
	return rc;
}

static struct store_machine *machine_in(struct step *st, const char *id)
{
	for (size_t i = 0; i < st->machines.n; i++)
		if (strcmp(st->machines.items[i].id, id) == 0)
			return &st->machines.items[i];
	return NULL;
}

static int live(const struct store_machine *m)
{
	return strcmp(m->state, "destroyed") != 0;
}

/* ---- the scheduler ---- */

/*
 * A host for a new machine of the app: certificate verifies, state ready,
 * a heartbeat within the stale limit; fewest machines of this app, then
 * fewest machines, then host id. COFFER_ERR_NOT_FOUND when none is.
 */
static enum coffer_err pick_host(struct step *st, char out[STORE_ID_SIZE])
{
	struct store_host_list hosts = { 0 };
	struct store_host_load_list load = { 0 };
	const struct store_host *best = NULL;
	uint64_t best_app = 0, best_all = 0;
	enum coffer_err rc = store_host_list(st->s, &hosts);
	if (!rc)
		rc = store_machine_load(st->s, st->app.id, &load);
	if (rc)
		goto out;
	for (size_t i = 0; i < hosts.n; i++) {
		const struct store_host *h = &hosts.items[i];
		struct hostauth_identity id = { h->id, h->name, h->sign_pk, h->seal_pk };
		uint64_t n_app = 0, n_all = 0;
		if (strcmp(h->state, API_HOST_STATE_READY) != 0 || h->last_heartbeat <= 0 ||
		    st->now - h->last_heartbeat > host_stale(st) || strlen(h->id) >= STORE_ID_SIZE)
			continue;
		if (hostauth_cert_verify(st->env->keeper_pk, &id, h->cert, h->cert_len, NULL) != COFFER_OK) {
			log_warn("host_row_tampered", LF_S("host_id", h->id), LF_S("check", "certificate"));
			continue;
		}
		for (size_t j = 0; j < load.n; j++) {
			if (strcmp(load.items[j].host_id, h->id) == 0) {
				n_app = load.items[j].app_machines;
				n_all = load.items[j].machines;
			}
		}
		if (!best || n_app < best_app || (n_app == best_app && n_all < best_all) ||
		    (n_app == best_app && n_all == best_all && strcmp(h->id, best->id) < 0)) {
			best = h;
			best_app = n_app;
			best_all = n_all;
		}
	}
	if (!best)
		rc = COFFER_ERR_NOT_FOUND;
	else
		rc = str_copy(out, STORE_ID_SIZE, best->id);
out:
	store_host_load_list_release(&load);
	store_host_list_release(&hosts);
	return rc;
}

/* ---- failure, rollback, success ---- */

enum failure { FAIL_EXIT, FAIL_RESTART, FAIL_TIMEOUT };

/* Appends the last `room` bytes of tail at most, starting on a character boundary. */
static enum coffer_err add_tail(struct buf *b, const char *tail, size_t len, size_t room)
{
	const char *p = tail;
	if (len > room) {
		p = tail + (len - room);
		while (p < tail + len && ((unsigned char)*p & 0xc0) == 0x80)
			p++;
		len = (size_t)(tail + len - p);
	}
	return buf_add(b, p, len);
}

/* Notes the failure (reason, phase rollback); the rollback is the next change. */
static enum coffer_err fail(struct step *st, const char *reason)
{
	enum coffer_err rc = COFFER_OK;
	if (json_object_set_new(st->progress, "phase", json_string(PHASE_ROLLBACK)))
		rc = COFFER_ERR_NOMEM;
	if (!rc)
		rc = save(st, "running", reason);
	if (!rc)
		log_info("release_failing", LF_S("app_id", st->app.id), LF_I("release", st->rel.version));
	return rc;
}

static enum coffer_err fail_machine(struct step *st, const struct store_machine *m, enum failure why)
{
	struct buf reason, tail;
	enum coffer_err rc;
	int failed_start = why == FAIL_EXIT && strcmp(m->state, "failed") == 0;
	buf_init(&reason, RELEASE_REASON_MAX);
	buf_init(&tail, STORE_MACHINE_TAIL_MAX);
	rc = store_machine_tail(st->s, m->id, &tail);
	if (rc)
		goto out;
	if (why == FAIL_TIMEOUT)
		rc = buf_addf(&reason, "machine %s did not start within %lld s", m->id,
			      (long long)(start_timeout(st) / MS_PER_S));
	else if (why == FAIL_RESTART)
		rc = buf_addf(&reason, "machine %s restarted within the grace window", m->id);
	else if (failed_start)
		rc = buf_addf(&reason, "machine %s failed to start%s", m->id, tail.len ? ": " : "");
	else if (m->exit_signal > 0)
		rc = buf_addf(&reason, "machine %s was killed by signal %d", m->id, m->exit_signal);
	else if (m->exit_status >= 0)
		rc = buf_addf(&reason, "machine %s exited with status %d", m->id, m->exit_status);
	else
		rc = buf_addf(&reason, "machine %s stopped", m->id);
	if (rc)
		goto out;
	if (tail.len && failed_start) {
		rc = add_tail(&reason, tail.ptr, tail.len, reason.max - reason.len);
	} else if (tail.len && reason.len + strlen(LAST_OUTPUT) < reason.max) {
		rc = buf_adds(&reason, LAST_OUTPUT);
		if (!rc)
			rc = add_tail(&reason, tail.ptr, tail.len, reason.max - reason.len);
	}
	if (!rc)
		rc = fail(st, reason.ptr);
out:
	buf_release(&tail);
	buf_release(&reason);
	return rc;
}

/*
 * Step 4: every machine on this release goes back to the previous one (or
 * is destroyed: one this release made, or all when there was none before),
 * the secrets head goes back, status failed. Harmless to run again.
 */
static enum coffer_err rollback(struct step *st)
{
	const json_t *created = json_object_get(st->progress, "created");
	const struct store_release *r = &st->rel;
	enum coffer_err rc = COFFER_OK;
	for (size_t i = 0; i < st->machines.n && !rc; i++) {
		const struct store_machine *m = &st->machines.items[i];
		if (!live(m) || m->desired_release != r->version)
			continue;
		if (r->previous_version == 0 || id_in(created, m->id))
			rc = store_machine_destroy(st->s, m->id);
		else
			rc = store_machine_set_desired(st->s, m->id, r->previous_version);
		st->assignments = 1;
	}
	/*
	 * The secrets go back only when there is something to go back to: a
	 * first deployment's secrets were staged, not run, and stay the head.
	 */
	if (!rc && r->previous_version && r->secrets_version && r->secrets_version != r->previous_secrets) {
		if (st->app.secrets_head != r->previous_secrets)
			rc = store_secrets_set_head(st->s, st->app.id, r->previous_secrets);
		if (!rc)
			rc = store_secrets_set_status(st->s, st->app.id, r->secrets_version, "failed");
	}
	if (!rc)
		rc = set_current(st, json_null());
	if (!rc)
		rc = save(st, "failed", NULL);
	if (!rc)
		log_info("release_failed", LF_S("app_id", st->app.id), LF_I("release", r->version));
	if (!rc)
		st->ended = "failed";
	return rc;
}

/* Step 3: the extras (newest first) go, the app runs this release now. */
static enum coffer_err succeed(struct step *st)
{
	int64_t kept = 0;
	enum coffer_err rc = COFFER_OK;
	for (size_t i = 0; i < st->machines.n; i++)
		if (live(&st->machines.items[i]))
			kept++;
	for (size_t i = st->machines.n; i-- > 0 && kept > st->count && !rc;) {
		const struct store_machine *m = &st->machines.items[i];
		if (!live(m))
			continue;
		rc = store_machine_destroy(st->s, m->id);
		kept--;
		st->assignments = 1;
	}
	if (!rc)
		rc = store_app_set_current_release(st->s, st->app.id, st->rel.version, st->rel.secrets_version);
	if (!rc && st->rel.secrets_version)
		rc = store_secrets_set_status(st->s, st->app.id, st->rel.secrets_version, "deployed");
	if (!rc && json_object_set_new(st->progress, "phase", json_string(PHASE_DONE)))
		rc = COFFER_ERR_NOMEM;
	if (!rc)
		rc = set_current(st, json_null());
	if (!rc)
		rc = save(st, "succeeded", NULL);
	if (!rc)
		log_info("release_succeeded", LF_S("app_id", st->app.id), LF_I("release", st->rel.version));
	if (!rc)
		st->ended = "succeeded";
	return rc;
}

/* Notes that host_id's assignments changed (those hosts' polls are woken, not every host's). */
static void touched(struct step *st, const char *host_id)
{
	if (st->assignments == 1)
		return;
	for (size_t i = 0; i < st->n_hosts; i++)
		if (strcmp(st->hosts[i], host_id) == 0)
			return;
	if (st->n_hosts < RELEASE_COUNT_MAX &&
	    str_copy(st->hosts[st->n_hosts], sizeof(st->hosts[0]), host_id) == COFFER_OK) {
		st->n_hosts++;
		st->assignments = 2;
	} else {
		st->assignments = 1;
	}
}

/* ---- rolling ---- */

/*
 * restarts0 is the machine's restart count when it was picked: a crash and
 * restart that all happen before the controller first sees the machine
 * started still shows as a count that moved.
 */
static json_t *current_new(const char *id, int64_t since, uint64_t restarts0)
{
	return json_pack("{s:s,s:I,s:I,s:n,s:n,s:n}", "id", id, "since", (json_int_t)since, "restarts0",
			 (json_int_t)restarts0, "started_at", "restarts", "seen");
}

/* Watches progress.current: its start, then its grace window. */
static enum coffer_err watch(struct step *st, json_t *cur)
{
	const char *id = json_string_value(json_object_get(cur, "id"));
	struct store_machine *m = id ? machine_in(st, id) : NULL;
	json_t *seen_at = json_object_get(cur, "started_at");
	int64_t since = (int64_t)json_integer_value(json_object_get(cur, "since"));
	enum coffer_err rc;

	if (!m || !live(m) || m->desired_release != st->rel.version) {
		/* destroyed (or taken over) under us: nothing to watch; the roll goes on without it */
		rc = set_current(st, json_null());
		return rc ? rc : save(st, "running", NULL);
	}
	int on_this = m->running_release == st->rel.version;
	int started = on_this && strcmp(m->state, "started") == 0 && m->started_at > 0;
	if (on_this && (strcmp(m->state, "stopped") == 0 || strcmp(m->state, "failed") == 0))
		return fail_machine(st, m, FAIL_EXIT);
	if (!json_is_integer(seen_at)) {
		if (started) {
			json_t *r0 = json_object_get(cur, "restarts0");
			if (json_is_integer(r0) && m->restarts != (uint64_t)json_integer_value(r0))
				return fail_machine(st, m, FAIL_RESTART);
			/* the window runs on the api's clock from here, never the host's */
			if (json_object_set_new(cur, "started_at", json_integer((json_int_t)m->started_at)) ||
			    json_object_set_new(cur, "restarts", json_integer((json_int_t)m->restarts)) ||
			    json_object_set_new(cur, "seen", json_integer((json_int_t)st->now)))
				return COFFER_ERR_NOMEM;
			return save(st, "running", NULL);
		}
		if (st->now - since >= start_timeout(st))
			return fail_machine(st, m, FAIL_TIMEOUT);
		return COFFER_OK;
	}
	int64_t started_at = (int64_t)json_integer_value(seen_at);
	uint64_t restarts = (uint64_t)json_integer_value(json_object_get(cur, "restarts"));
	if (!started || m->started_at != started_at || m->restarts != restarts)
		return fail_machine(st, m, FAIL_RESTART);
	/*
	 * started_at is the host's clock. A start for this release cannot come
	 * before it was picked (since, the api's clock): one that seems to is a
	 * host clock running behind, and the window then runs from when the api
	 * first saw the machine started, so it is never cut short.
	 */
	json_t *seen = json_object_get(cur, "seen");
	int64_t from = started_at < since && json_is_integer(seen) ? (int64_t)json_integer_value(seen) : started_at;
	if (st->now - from < st->grace_ms)
		return COFFER_OK;
	rc = id_add(st, "moved", m->id);
	if (!rc)
		rc = set_current(st, json_null());
	return rc ? rc : save(st, "running", NULL);
}

/* 1 when release `version` of the app runs what this release runs (the same spec). */
static enum coffer_err same_spec(struct step *st, uint64_t version, int *same)
{
	struct store_release other = { 0 };
	json_t *config = NULL;
	char spec[RELEASE_SPEC_SIZE];
	enum coffer_err rc;
	*same = 0;
	if (version == 0)
		return COFFER_OK;
	rc = store_release_get(st->s, st->app.id, version, &other);
	if (rc == COFFER_ERR_NOT_FOUND) {
		store_release_clear(&other);
		return COFFER_OK;
	}
	if (!rc && parse_config(other.config, &config) == COFFER_OK) {
		rc = spec_of(st->app.id, config, other.secrets_version, spec);
		if (!rc)
			*same = strcmp(spec, st->spec) == 0;
	}
	json_decref(config);
	store_release_clear(&other);
	return rc;
}

/* Step 2 without a machine to watch: the next machine, a new one, or the success. */
static enum coffer_err next(struct step *st)
{
	const json_t *moved = json_object_get(st->progress, "moved");
	struct store_machine *pick = NULL;
	int64_t n_live = 0;
	char host[STORE_ID_SIZE];
	enum coffer_err rc;

	for (size_t i = 0; i < st->machines.n; i++) {
		struct store_machine *m = &st->machines.items[i];
		if (!live(m))
			continue;
		if (++n_live > st->count)
			continue; /* an extra: destroyed at the end */
		if (!pick && m->desired_release != st->rel.version && !id_in(moved, m->id))
			pick = m;
	}
	if (pick) {
		int same = 0;
		uint64_t from = pick->desired_release;
		rc = same_spec(st, from, &same);
		if (!rc)
			rc = store_machine_set_desired(st->s, pick->id, st->rel.version);
		if (rc)
			return rc;
		touched(st, pick->host_id);
		if (!same) {
			rc = set_current(st, current_new(pick->id, st->now, pick->restarts));
			return rc ? rc : save(st, "running", NULL);
		}
		/*
		 * A relabel has nothing to watch: the others of the same release
		 * (the same spec) are relabelled in this change too, one commit
		 * for them all instead of one each (many hosts, docs/BENCHMARKS.md).
		 */
		rc = id_add(st, "moved", pick->id);
		n_live = 0;
		for (size_t i = 0; !rc && i < st->machines.n; i++) {
			struct store_machine *m = &st->machines.items[i];
			if (!live(m) || ++n_live > st->count || m == pick || m->desired_release != from ||
			    id_in(moved, m->id))
				continue;
			rc = store_machine_set_desired(st->s, m->id, st->rel.version);
			if (!rc)
				rc = id_add(st, "moved", m->id);
			touched(st, m->host_id);
		}
		return rc ? rc : save(st, "running", NULL);
	}
	if (n_live < st->count) {
		struct store_machine made;
		rc = pick_host(st, host);
		if (rc == COFFER_ERR_NOT_FOUND)
			return fail(st, "no host is ready to run machines");
		if (!rc)
			rc = store_machine_create(st->s, st->app.id, host, st->rel.version, &made);
		if (rc)
			return rc;
		touched(st, host);
		rc = id_add(st, "created", made.id);
		if (!rc)
			rc = set_current(st, current_new(made.id, st->now, made.restarts));
		if (!rc)
			log_info("machine_created", LF_S("app_id", st->app.id), LF_S("machine", made.id),
				 LF_S("host_id", host), LF_I("release", st->rel.version));
		return rc ? rc : save(st, "running", NULL);
	}
	return succeed(st);
}

static enum coffer_err decide(struct step *st)
{
	json_t *cur;
	int64_t count = 1, grace = RELEASE_GRACE_DEFAULT_MS;
	enum coffer_err rc = store_app_get(st->s, st->rel.app_id, &st->app);
	if (rc)
		return rc;
	rc = progress_load(st);
	if (rc)
		return rc;
	if (strcmp(st->rel.status, "pending") == 0) {
		json_decref(st->progress);
		st->progress = progress_new(PHASE_ROLLING);
		if (!st->progress)
			return COFFER_ERR_NOMEM;
		log_info("release_started", LF_S("app_id", st->app.id), LF_I("release", st->rel.version));
		return save(st, "running", NULL);
	}
	rc = store_machine_list_by_app(st->s, st->app.id, &st->machines);
	if (rc)
		return rc;
	if (strcmp(phase_of(st), PHASE_ROLLBACK) == 0)
		return rollback(st);
	if (strcmp(phase_of(st), PHASE_ROLLING) != 0)
		return COFFER_OK; /* "done" but still running: cannot happen; leave it be */
	if (parse_config(st->rel.config, &st->config))
		return fail(st, "the release's config is not valid");
	if (json_is_integer(json_object_get(st->config, "count")))
		count = (int64_t)json_integer_value(json_object_get(st->config, "count"));
	if (json_is_integer(json_object_get(st->config, "grace_ms")))
		grace = (int64_t)json_integer_value(json_object_get(st->config, "grace_ms"));
	if (count < 0 || count > RELEASE_COUNT_MAX || grace < 0 || grace > RELEASE_GRACE_MAX_MS)
		return fail(st, "the release's config is not valid");
	st->count = count;
	st->grace_ms = grace;
	rc = spec_of(st->app.id, st->config, st->rel.secrets_version, st->spec);
	if (rc)
		return rc;
	cur = json_object_get(st->progress, "current");
	if (json_is_object(cur))
		return watch(st, cur);
	return next(st);
}

/* One change at most, in one transaction. */
static enum coffer_err step_once(const struct release_env *env, struct store *s, const char *app_id, uint64_t version,
				 int64_t now, int *changed)
{
	struct step st = { .env = env, .s = s, .now = now };
	int held = 1;
	enum coffer_err rc = store_tx_begin(s);
	if (rc)
		return rc;
	/* the fence: this transaction changes nothing unless the lease is still ours */
	if (env->lease_holder)
		rc = store_lease_check(s, RELEASE_LEASE_NAME, env->lease_holder, &held);
	if (!rc && !held)
		rc = COFFER_ERR_CONFLICT;
	if (!rc)
		rc = store_app_lock(s, app_id);
	if (!rc)
		rc = store_release_get(s, app_id, version, &st.rel);
	if (rc == COFFER_ERR_NOT_FOUND)
		rc = COFFER_OK; /* the app or the release is gone */
	else if (!rc && (strcmp(st.rel.status, "pending") == 0 || strcmp(st.rel.status, "running") == 0))
		rc = decide(&st);
	rc = store_tx_end(s, rc);
	if (rc == COFFER_OK && st.assignments == 2)
		for (size_t i = 0; i < st.n_hosts; i++)
			release_assignments_changed_host(env->ctl, st.hosts[i]);
	else if (rc == COFFER_OK && st.assignments)
		release_assignments_changed(env->ctl);
	if (rc == COFFER_OK && st.ended)
		metrics_counter_add(&metric_releases, 1, st.ended);
	if (rc == COFFER_OK)
		*changed = st.changed;
	json_decref(st.progress);
	json_decref(st.config);
	store_machine_list_release(&st.machines);
	store_release_clear(&st.rel);
	return rc;
}

enum coffer_err release_step(const struct release_env *env, struct store *s, const char *app_id, uint64_t version,
			     int64_t now)
{
	if (!env || !env->keeper_pk || !s || !app_id || version == 0 || version > INT64_MAX)
		return COFFER_ERR_INVALID;
	for (int i = 0; i < STEP_CHANGES_MAX; i++) {
		int changed = 0;
		enum coffer_err rc = step_once(env, s, app_id, version, now, &changed);
		if (rc || !changed)
			return rc;
	}
	return COFFER_OK;
}

/* ---- the controller thread ---- */

struct release_ctl {
	struct api *api;
	pthread_mutex_t mu;
	pthread_cond_t wake_cv;    /* the controller waits here */
	struct http_waitq *assign_q; /* long polls park here (thread-safe on its own) */
	pthread_t thread;
	int thread_started;
	int stopping;
	int woken;
	char holder[RELEASE_HOLDER_SIZE]; /* this process's lease holder id, random per start */
	int leader;                /* holds the lease (as last seen); under mu */
	int64_t lease_tried_ms;    /* monotime of the last take or renewal (controller thread only) */
};

/* Records whether this api holds the lease now, and logs a change. */
static void set_leader(struct release_ctl *c, int leader, const char *why)
{
	pthread_mutex_lock(&c->mu);
	int was = c->leader;
	c->leader = leader;
	pthread_mutex_unlock(&c->mu);
	metrics_gauge_set(&metric_release_lease_held, leader ? 1 : 0);
	if (leader && !was)
		log_info("release_lease_acquired", LF_S("holder", c->holder), LF_I("ttl_ms", RELEASE_LEASE_TTL_MS));
	else if (!leader && was)
		log_warn("release_lease_lost", LF_S("holder", c->holder), LF_S("reason", why),
			 LF_S("effect", "this api steps no release until it holds the lease again"));
}

int release_ctl_leader(struct release_ctl *c)
{
	int leader;
	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	leader = c->leader;
	pthread_mutex_unlock(&c->mu);
	return leader;
}

/*
 * Takes or renews the lease every RELEASE_LEASE_RENEW_MS (sooner would
 * only load the store). A failed renewal is a lost lease: stepping stops
 * at once, and the fence in each change covers a renewal that is late.
 */
static enum coffer_err lease_tick(struct release_ctl *c, struct store *s)
{
	int64_t now = monotime_ms();
	int held = 0;
	if (c->lease_tried_ms && now - c->lease_tried_ms < RELEASE_LEASE_RENEW_MS)
		return COFFER_OK;
	c->lease_tried_ms = now;
	enum coffer_err rc = store_lease_acquire(s, RELEASE_LEASE_NAME, c->holder, RELEASE_LEASE_TTL_MS, &held);
	if (rc) {
		log_warn("release_lease_renew_failed", LF_S("holder", c->holder), LF_S("error", coffer_err_name(rc)));
		held = 0;
	}
	set_leader(c, held, rc ? "renewal failed" : "held by another api");
	return rc;
}

static int64_t wall_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * MS_PER_S + t.tv_nsec / 1000000;
}

static void tick(struct release_ctl *c)
{
	struct store *s = NULL;
	struct store_release_list running = { 0 };
	struct release_env env = { .keeper_pk = c->api->keeper_pk, .ctl = c, .lease_holder = c->holder };
	enum coffer_err rc = store_pool_acquire(c->api->pool, &s);
	if (rc) {
		log_warn("release_tick_failed", LF_S("error", coffer_err_name(rc)));
		c->lease_tried_ms = 0; /* the lease was not renewed: try at once next time */
		set_leader(c, 0, "no store connection");
		return;
	}
	/* a failed renewal's error goes back with the connection, so a dead one is replaced */
	rc = lease_tick(c, s);
	if (!rc && release_ctl_leader(c))
		rc = store_release_running(s, &running);
	for (size_t i = 0; !rc && i < running.n && !release_ctl_stopping(c) && release_ctl_leader(c); i++) {
		if (i > 0) /* many releases: renewed on time between them too */
			rc = lease_tick(c, s);
		if (rc || !release_ctl_leader(c))
			break;
		enum coffer_err step_rc = release_step(&env, s, running.items[i].app_id, running.items[i].version,
						       wall_ms());
		if (step_rc == COFFER_ERR_CONFLICT) {
			/* the fence refused, or a concurrent change won: renewing now says which (and logs a loss) */
			c->lease_tried_ms = 0;
			rc = lease_tick(c, s);
		}
		if (step_rc && release_ctl_leader(c)) {
			/* left as it was (one transaction per change): the next tick tries again */
			log_warn("release_step_failed", LF_S("app_id", running.items[i].app_id),
				 LF_I("release", running.items[i].version), LF_S("error", coffer_err_name(step_rc)));
			if (step_rc == COFFER_ERR_UNAVAILABLE)
				rc = step_rc;
		}
	}
	if (rc)
		log_warn("release_tick_failed", LF_S("error", coffer_err_name(rc)));
	store_release_list_release(&running);
	store_pool_release(c->api->pool, s, rc);
}

static void *run(void *arg)
{
	struct release_ctl *c = arg;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		struct timespec until;
		monotime_deadline_in(&until, RELEASE_TICK_MS); /* the conds use CLOCK_MONOTONIC */
		while (!c->stopping && !c->woken)
			if (pthread_cond_timedwait(&c->wake_cv, &c->mu, &until) == ETIMEDOUT)
				break;
		c->woken = 0;
		int stop = c->stopping;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;
		tick(c);
	}
	return NULL;
}

static void ctl_free(struct release_ctl *c)
{
	http_waitq_free(c->assign_q);
	pthread_cond_destroy(&c->wake_cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

enum coffer_err release_ctl_start(struct api *api, struct release_ctl **out)
{
	pthread_condattr_t attr;
	struct release_ctl *c;
	if (!api || !api->pool)
		return COFFER_ERR_INVALID;
	c = calloc(1, sizeof(*c));
	if (!c)
		return COFFER_ERR_NOMEM;
	c->api = api;
	char rnd[STORE_ID_SIZE];
	store_new_id(rnd);
	if (fmt_into(c->holder, sizeof(c->holder), "api-%ld-%s", (long)getpid(), rnd)) {
		free(c);
		return COFFER_ERR_INTERNAL;
	}
	if (pthread_condattr_init(&attr)) {
		free(c);
		return COFFER_ERR_NOMEM;
	}
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&c->mu, NULL) || pthread_cond_init(&c->wake_cv, &attr)) {
		pthread_condattr_destroy(&attr);
		free(c);
		return COFFER_ERR_NOMEM;
	}
	pthread_condattr_destroy(&attr);
	if (http_waitq_new(&c->assign_q) || pthread_create(&c->thread, NULL, run, c)) {
		ctl_free(c);
		return COFFER_ERR_NOMEM;
	}
	c->thread_started = 1;
	*out = c;
	return COFFER_OK;
}

void release_ctl_wake(struct release_ctl *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->woken = 1;
	pthread_cond_signal(&c->wake_cv);
	pthread_mutex_unlock(&c->mu);
}

void release_ctl_shutdown(struct release_ctl *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stopping = 1;
	pthread_cond_broadcast(&c->wake_cv);
	pthread_mutex_unlock(&c->mu);
	http_waitq_wake(c->assign_q); /* parked long polls run again and see release_ctl_stopping */
}

int release_ctl_stopping(struct release_ctl *c)
{
	int stopping;
	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	stopping = c->stopping;
	pthread_mutex_unlock(&c->mu);
	return stopping;
}

/* On a clean stop: another api takes the lease at its next try instead of after the TTL. */
static void lease_give_up(struct release_ctl *c)
{
	struct store *s = NULL;
	enum coffer_err rc = store_pool_acquire(c->api->pool, &s);
	if (!rc)
		rc = store_lease_release(s, RELEASE_LEASE_NAME, c->holder);
	if (s)
		store_pool_release(c->api->pool, s, rc == COFFER_ERR_NOT_FOUND ? COFFER_OK : rc);
	if (rc == COFFER_OK)
		log_info("release_lease_released", LF_S("holder", c->holder));
	pthread_mutex_lock(&c->mu);
	c->leader = 0;
	pthread_mutex_unlock(&c->mu);
	metrics_gauge_set(&metric_release_lease_held, 0);
}

void release_ctl_stop(struct release_ctl *c)
{
	if (!c)
		return;
	release_ctl_shutdown(c);
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	if (release_ctl_leader(c))
		lease_give_up(c);
	ctl_free(c);
}

void release_assignments_changed(struct release_ctl *c)
{
	if (c)
		http_waitq_wake(c->assign_q);
}

uint64_t release_host_key(const char *host_id)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */
	for (const char *p = host_id; p && *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h ? h : 1; /* 0 is "any" */
}

void release_assignments_changed_host(struct release_ctl *c, const char *host_id)
{
	if (c)
		http_waitq_wake_key(c->assign_q, release_host_key(host_id));
}

struct http_waitq *release_assignments_queue(struct release_ctl *c)
{
	return c ? c->assign_q : NULL;
}
