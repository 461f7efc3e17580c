/* Unit tests of the release controller's step (src/api/release.c) over a
 * SQLite store in a temp folder. The agents are simulated: each test
 * writes their reports with store_machine_report / store_machine_set_tail
 * and calls release_step with an injected `now`, as the controller thread
 * does every tick. Hosts are real rows whose keeper certificates verify. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "api.h"
#include "buf.h"
#include "hostauth.h"
#include "jws.h"
#include "log.h"
#include "metrics.h"
#include "release.h"
#include "store.h"
#include "store_pool.h"

/* The row MAC key of the tests' connections (row authentication), for every table. */
static const unsigned char test_rows_key[STORE_ROW_KEY_LEN] = "coffer-test-rows-key-32-bytes!!";

#define T0 1800000000000LL /* unix ms */
#define GRACE 1000
#define CONFIG_SIZE 256
#define NO_ID "000000000000000000000000"

static struct {
	char dir[64];
	char url[128];
	struct store *s;
	struct store_org org;
	struct store_app app;
	unsigned char keeper_pk[JWS_PK_LEN];
	struct secret *keeper_sk;
	char h1[STORE_ID_SIZE], h2[STORE_ID_SIZE];
	struct release_env env;
	int64_t beat_at; /* the hosts' last heartbeat; < 0: every step refreshes it */
} F;

/* ---- fixture ---- */

static void add_host(const char *id, const char *name, const struct secret *signer)
{
	struct store_host h = { 0 };
	struct hostauth_identity ident = { 0 };
	assert_int_equal(str_copy(h.id, sizeof(h.id), id), COFFER_OK);
	assert_int_equal(str_copy(h.name, sizeof(h.name), name), COFFER_OK);
	assert_int_equal(str_copy(h.state, sizeof(h.state), "ready"), COFFER_OK);
	randombytes_buf(h.sign_pk, sizeof(h.sign_pk));
	randombytes_buf(h.seal_pk, sizeof(h.seal_pk));
	randombytes_buf(h.mac, sizeof(h.mac));
	h.enrolled_at = T0 - 60000;
	ident = (struct hostauth_identity){ h.id, h.name, h.sign_pk, h.seal_pk };
	assert_int_equal(hostauth_cert_sign(signer, &ident, (T0 - 60000) / 1000, h.cert), COFFER_OK);
	h.cert_len = HOSTAUTH_CERT_LEN;
	assert_int_equal(store_host_put(F.s, &h), COFFER_OK);
	assert_int_equal(store_host_heartbeat(F.s, h.id, T0), COFFER_OK);
}

static int setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	snprintf(F.dir, sizeof(F.dir), "/tmp/coffer-release-test.XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	assert_true(snprintf(F.url, sizeof(F.url), "sqlite:%s/coffer.db", F.dir) < (int)sizeof(F.url));
	assert_int_equal(store_open(F.url, &F.s), COFFER_OK);
	for (int t = 0; t < STORE_TABLE__COUNT; t++)
		assert_int_equal(store_auth_key(F.s, (enum store_table)t, test_rows_key), COFFER_OK);
	assert_int_equal(store_org_create(F.s, "acme", &F.org), COFFER_OK);
	assert_int_equal(store_app_create(F.s, F.org.id, "web", 0, &F.app), COFFER_OK);
	assert_int_equal(jws_generate_key(&F.keeper_sk, F.keeper_pk), COFFER_OK);
	store_new_id(F.h1);
	store_new_id(F.h2);
	add_host(F.h1, "host-1", F.keeper_sk);
	add_host(F.h2, "host-2", F.keeper_sk);
	F.env = (struct release_env){ .keeper_pk = F.keeper_pk };
	F.beat_at = -1;
	return 0;
}

static int teardown(void **state)
{
	char p[160];
	const char *suffix[] = { "", "-wal", "-shm" };
	(void)state;
	store_close(F.s);
	secret_free(F.keeper_sk);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/coffer.db%s", F.dir, suffix[i]);
		unlink(p);
	}
	rmdir(F.dir);
	return 0;
}

/* ---- helpers ---- */

static void refresh_app(void)
{
	assert_int_equal(store_app_get(F.s, F.app.id, &F.app), COFFER_OK);
}

/* A new secrets version (the head), as a secrets change makes it. */
static uint64_t secrets(const char *ciphertext)
{
	uint64_t v = 0;
	struct store_secret_change c = { .name = "DB", .ciphertext = (const unsigned char *)ciphertext,
					 .ciphertext_len = strlen(ciphertext), .digest = "d", .key_version = 1 };
	assert_int_equal(store_secrets_put(F.s, F.app.id, &c, 1, "alice", "staged", NULL, &v), COFFER_OK);
	refresh_app();
	return v;
}

/* A release as release_create makes it: previous = what the app runs now. */
static uint64_t make_release(const char *cmd, int count, uint64_t secrets_version)
{
	char config[CONFIG_SIZE];
	uint64_t v = 0;
	refresh_app();
	assert_true(snprintf(config, sizeof(config), "{\"cmd\":[\"%s\"],\"count\":%d,\"env\":{\"PORT\":\"8080\"},"
				    "\"grace_ms\":%d}", cmd, count, GRACE) < (int)sizeof(config));
	assert_int_equal(store_release_create(F.s, F.app.id, config, secrets_version, F.app.current_release,
					      F.app.deployed_version, "tok_x", &v),
			 COFFER_OK);
	return v;
}

static void step_at(uint64_t version, int64_t now)
{
	int64_t beat = F.beat_at < 0 ? now : F.beat_at;
	assert_int_equal(store_host_heartbeat(F.s, F.h1, beat), COFFER_OK);
	assert_int_equal(store_host_heartbeat(F.s, F.h2, beat), COFFER_OK);
	assert_int_equal(release_step(&F.env, F.s, F.app.id, version, now), COFFER_OK);
}

static void get_release(uint64_t version, struct store_release *r)
{
	store_release_clear(r);
	assert_int_equal(store_release_get(F.s, F.app.id, version, r), COFFER_OK);
}

static void assert_status(uint64_t version, const char *status)
{
	struct store_release r = { 0 };
	get_release(version, &r);
	assert_string_equal(r.status, status);
	store_release_clear(&r);
}

/* The live machines of the app, oldest first (at most 8). */
static size_t live(struct store_machine out[8])
{
	struct store_machine_list l = { 0 };
	size_t n = 0;
	assert_int_equal(store_machine_list_by_app(F.s, F.app.id, &l), COFFER_OK);
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.items[i].state, "destroyed") != 0 && n < 8)
			out[n++] = l.items[i];
	store_machine_list_release(&l);
	return n;
}

static struct store_machine machine(const char *id)
{
	struct store_machine m;
	assert_int_equal(store_machine_get(F.s, id, &m), COFFER_OK);
	return m;
}

/* progress.current.id of the release, or "" when null. */
static void current_of(uint64_t version, char id[STORE_ID_SIZE])
{
	struct store_release r = { 0 };
	json_t *doc;
	get_release(version, &r);
	doc = json_loads(r.progress, 0, NULL);
	assert_non_null(doc);
	const char *cur = json_string_value(json_object_get(json_object_get(doc, "current"), "id"));
	assert_int_equal(str_copy(id, STORE_ID_SIZE, cur ? cur : ""), COFFER_OK);
	json_decref(doc);
	store_release_clear(&r);
}

static int in_progress(uint64_t version, const char *list, const char *id)
{
	struct store_release r = { 0 };
	json_t *doc, *v;
	size_t i;
	int found = 0;
	get_release(version, &r);
	doc = json_loads(r.progress, 0, NULL);
	assert_non_null(doc);
	json_array_foreach(json_object_get(doc, list), i, v)
		found |= strcmp(json_string_value(v), id) == 0;
	json_decref(doc);
	store_release_clear(&r);
	return found;
}

static const char *phase_is(uint64_t version, const char *phase)
{
	struct store_release r = { 0 };
	json_t *doc;
	get_release(version, &r);
	doc = json_loads(r.progress, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "phase")), phase);
	json_decref(doc);
	store_release_clear(&r);
	return phase;
}

static void started(const char *id, uint64_t version, int64_t at)
{
	assert_int_equal(store_machine_report(F.s, id, "starting", version, 0, -1, 0, 0), COFFER_OK);
	assert_int_equal(store_machine_report(F.s, id, "started", version, 4000, -1, 0, at), COFFER_OK);
}

/* Creation times are milliseconds: keep two machines' apart so "newest" is certain. */
static void tick_clock(void)
{
	usleep(3000);
}

/*
 * Runs a first deploy of `count` machines (cmd "web", secrets version sv)
 * to success, each machine started at once; returns the release. *t is
 * the simulated time, moved on.
 */
static uint64_t first_deploy(int count, uint64_t sv, int64_t *t)
{
	char cur[STORE_ID_SIZE];
	uint64_t v = make_release("web", count, sv);
	for (int i = 0; i < count; i++) {
		tick_clock();
		step_at(v, *t);
		current_of(v, cur);
		assert_int_equal(strlen(cur), STORE_ID_LEN);
		started(cur, v, *t + 10);
		step_at(v, *t + 20);
		*t += 10 + GRACE;
		step_at(v, *t);
	}
	assert_status(v, "succeeded");
	return v;
}

/* ---- tests ---- */

/*
 * A first deploy: count machines made one at a time, each watched through
 * its window, spread over the two hosts; a host whose certificate does not
 * verify gets none even though it would win every tie.
 */
static void test_first_deploy(void **state)
{
	struct store_machine ms[8];
	struct secret *other_sk = NULL;
	unsigned char other_pk[JWS_PK_LEN];
	char cur[STORE_ID_SIZE], first[STORE_ID_SIZE];
	(void)state;

	assert_int_equal(jws_generate_key(&other_sk, other_pk), COFFER_OK);
	add_host(NO_ID, "host-0-forged", other_sk); /* sorts first, no machines */
	secret_free(other_sk);
	uint64_t sv = secrets("c1");
	uint64_t v = make_release("web", 2, sv);
	assert_status(v, "pending");

	step_at(v, T0);
	assert_status(v, "running");
	assert_int_equal(live(ms), 1);
	current_of(v, first);
	assert_string_equal(first, ms[0].id);
	assert_true(in_progress(v, "created", first));
	assert_int_equal(ms[0].desired_release, v);
	assert_string_not_equal(ms[0].host_id, NO_ID);
	/* waiting for the agent: nothing moves */
	step_at(v, T0 + 50);
	assert_int_equal(live(ms), 1);
	started(first, v, T0 + 100);
	step_at(v, T0 + 200);
	step_at(v, T0 + 100 + GRACE - 1);
	assert_int_equal(live(ms), 1); /* the window is not over: no second machine yet */
	current_of(v, cur);
	assert_string_equal(cur, first);
	tick_clock();
	step_at(v, T0 + 100 + GRACE);
	assert_true(in_progress(v, "moved", first));
	assert_int_equal(live(ms), 2);
	current_of(v, cur);
	assert_string_equal(cur, ms[1].id);
	/* spread: fewest machines of this app first */
	assert_string_not_equal(ms[0].host_id, ms[1].host_id);
	assert_string_not_equal(ms[1].host_id, NO_ID);
	started(cur, v, T0 + 2000);
	step_at(v, T0 + 2000 + GRACE);
	assert_status(v, "succeeded");
	phase_is(v, "done");
	refresh_app();
	assert_int_equal(F.app.current_release, v);
	assert_int_equal(F.app.deployed_version, sv);
	struct store_secret_list l = { 0 };
	assert_int_equal(store_secrets_get(F.s, F.app.id, sv, &l), COFFER_OK);
	assert_string_equal(l.status, "deployed");
	store_secret_list_release(&l);
	/* a finished release is left alone */
	step_at(v, T0 + 99999);
	assert_int_equal(live(ms), 2);
}

/* A new release over 2 machines: one at a time, each only after its grace window. */
static void test_roll_one_at_a_time(void **state)
{
	struct store_machine ms[8];
	char cur[STORE_ID_SIZE];
	int64_t t = T0;
	(void)state;
	uint64_t sv1 = secrets("c1");
	uint64_t v1 = first_deploy(2, sv1, &t);
	uint64_t sv2 = secrets("c2");
	uint64_t v2 = make_release("web", 2, sv2);
	assert_int_equal(live(ms), 2);
	const struct store_machine a = ms[0], b = ms[1];

	step_at(v2, t);
	current_of(v2, cur);
	assert_string_equal(cur, a.id); /* oldest first */
	assert_int_equal(machine(a.id).desired_release, v2);
	assert_int_equal(machine(b.id).desired_release, v1);
	step_at(v2, t + 5000); /* no start yet, but within the start timeout */
	assert_int_equal(machine(b.id).desired_release, v1);
	started(a.id, v2, t + 5000);
	step_at(v2, t + 5000 + GRACE - 1);
	assert_int_equal(machine(b.id).desired_release, v1);
	step_at(v2, t + 5000 + GRACE);
	assert_true(in_progress(v2, "moved", a.id));
	current_of(v2, cur);
	assert_string_equal(cur, b.id);
	assert_int_equal(machine(b.id).desired_release, v2);
	assert_int_equal(live(ms), 2); /* replaced, not added */
	started(b.id, v2, t + 7000);
	step_at(v2, t + 7000 + GRACE - 1);
	assert_status(v2, "running");
	step_at(v2, t + 7000 + GRACE);
	assert_status(v2, "succeeded");
	refresh_app();
	assert_int_equal(F.app.current_release, v2);
	assert_int_equal(F.app.deployed_version, sv2);
}

/*
 * A machine that exits inside its window fails the release: the reason
 * names it, its exit status and its tail; the moved machine goes back;
 * the secrets head returns; the failed version is marked.
 */
static void test_exit_fails_and_rolls_back(void **state)
{
	struct store_machine ms[8];
	struct store_release r = { 0 };
	char cur[STORE_ID_SIZE], want[512];
	int64_t t = T0;
	(void)state;
	uint64_t sv1 = secrets("c1");
	uint64_t v1 = first_deploy(2, sv1, &t);
	uint64_t sv2 = secrets("c2");
	uint64_t v2 = make_release("web", 2, sv2);
	assert_int_equal(live(ms), 2);
	const struct store_machine a = ms[0], b = ms[1];

	step_at(v2, t);
	started(a.id, v2, t + 10);
	step_at(v2, t + 10 + GRACE);
	current_of(v2, cur);
	assert_string_equal(cur, b.id);
	/* the old process stopping for the replacement is not a failure */
	assert_int_equal(store_machine_report(F.s, b.id, "stopped", v1, 0, 0, 15, 0), COFFER_OK);
	step_at(v2, t + 20 + GRACE);
	assert_status(v2, "running");
	started(b.id, v2, t + 30 + GRACE);
	step_at(v2, t + 40 + GRACE);
	assert_int_equal(store_machine_report(F.s, b.id, "stopped", v2, 0, 3, 0, 0), COFFER_OK);
	assert_int_equal(store_machine_set_tail(F.s, b.id, "boom\nDB=***"), COFFER_OK);
	step_at(v2, t + 50 + GRACE);

	get_release(v2, &r);
	assert_string_equal(r.status, "failed");
	snprintf(want, sizeof(want), "machine %s exited with status 3\nlast output:\nboom\nDB=***", b.id);
	assert_string_equal(r.reason, want);
	store_release_clear(&r);
	phase_is(v2, "rollback");
	assert_int_equal(machine(a.id).desired_release, v1); /* moved, and back */
	assert_int_equal(machine(b.id).desired_release, v1);
	assert_int_equal(live(ms), 2);
	refresh_app();
	assert_int_equal(F.app.secrets_head, sv1);
	assert_int_equal(F.app.current_release, v1);
	assert_int_equal(F.app.deployed_version, sv1);
	struct store_secret_list l = { 0 };
	assert_int_equal(store_secrets_get(F.s, F.app.id, sv2, &l), COFFER_OK);
	assert_string_equal(l.status, "failed");
	store_secret_list_release(&l);
	/* the rollback ran once: stepping again changes nothing */
	step_at(v2, t + 60 + GRACE);
	assert_status(v2, "failed");
}

/* A restart inside the window (a new started_at, one restart more, no stopped seen) fails too. */
static void test_restart_fails(void **state)
{
	struct store_machine ms[8];
	struct store_release r = { 0 };
	char want[256];
	int64_t t = T0;
	(void)state;
	uint64_t sv1 = secrets("c1");
	uint64_t v1 = first_deploy(1, sv1, &t);
	uint64_t v2 = make_release("web --new", 1, sv1);
	assert_int_equal(live(ms), 1);

	step_at(v2, t);
	started(ms[0].id, v2, t + 10);
	step_at(v2, t + 20);
	/* the agent restarted it: only the second start is seen */
	assert_int_equal(store_machine_report(F.s, ms[0].id, "started", v2, 4001, -1, 0, t + 30), COFFER_OK);
	assert_int_equal(machine(ms[0].id).restarts, 1);
	step_at(v2, t + 40);
	get_release(v2, &r);
	assert_string_equal(r.status, "failed");
	snprintf(want, sizeof(want), "machine %s restarted within the grace window", ms[0].id);
	assert_string_equal(r.reason, want);
	store_release_clear(&r);
	assert_int_equal(machine(ms[0].id).desired_release, v1);
	/* same secrets: the version stays deployed and the head where it was */
	refresh_app();
	assert_int_equal(F.app.secrets_head, sv1);
	struct store_secret_list l = { 0 };
	assert_int_equal(store_secrets_get(F.s, F.app.id, sv1, &l), COFFER_OK);
	assert_string_equal(l.status, "deployed");
	store_secret_list_release(&l);
}

/* No start within the start timeout fails the release. */
/* A crash and restart that both happen before the controller's first look still fail the release. */
static void test_restart_before_first_look(void **state)
{
	struct store_machine ms[8];
	struct store_release r = { 0 };
	char want[256];
	int64_t t = T0;
	(void)state;
	uint64_t sv1 = secrets("c1");
	first_deploy(1, sv1, &t);
	uint64_t v2 = make_release("web --new", 1, sv1);
	assert_int_equal(live(ms), 1);

	step_at(v2, t);
	started(ms[0].id, v2, t + 10);
	assert_int_equal(store_machine_report(F.s, ms[0].id, "stopped", v2, 0, 1, 0, 0), COFFER_OK);
	assert_int_equal(store_machine_report(F.s, ms[0].id, "started", v2, 4001, -1, 0, t + 30), COFFER_OK);
	step_at(v2, t + 40); /* the first look sees it started, as if nothing had happened */
	get_release(v2, &r);
	assert_string_equal(r.status, "failed");
	snprintf(want, sizeof(want), "machine %s restarted within the grace window", ms[0].id);
	assert_string_equal(r.reason, want);
	store_release_clear(&r);
}

/* A host whose clock runs behind the api's cannot cut the grace window short. */
static void test_host_clock_behind(void **state)
{
	struct store_machine ms[8];
	int64_t t = T0;
	(void)state;
	uint64_t sv1 = secrets("c1");
	first_deploy(1, sv1, &t);
	uint64_t v2 = make_release("web --new", 1, sv1);
	assert_int_equal(live(ms), 1);

	step_at(v2, t + 1000);
	started(ms[0].id, v2, t - 10 * GRACE); /* the host's clock: far behind */
	step_at(v2, t + 1100);
	step_at(v2, t + 1200);
	assert_status(v2, "running");
	step_at(v2, t + 1100 + GRACE - 1);
	assert_status(v2, "running");
	step_at(v2, t + 1100 + GRACE);
	assert_status(v2, "succeeded");
}

static void test_start_timeout(void **state)
{
	struct store_machine ms[8];
	struct store_release r = { 0 };
	char want[256];
	int64_t t = T0;
	(void)state;
	uint64_t sv1 = secrets("c1");
	uint64_t v1 = first_deploy(1, sv1, &t);
	uint64_t v2 = make_release("web --slow", 1, sv1);
	assert_int_equal(live(ms), 1);

	step_at(v2, t);
	assert_int_equal(store_machine_report(F.s, ms[0].id, "starting", v2, 0, -1, 0, 0), COFFER_OK);
	step_at(v2, t + RELEASE_START_TIMEOUT_MS - 1);
	assert_status(v2, "running");
	step_at(v2, t + RELEASE_START_TIMEOUT_MS);
	get_release(v2, &r);
	assert_string_equal(r.status, "failed");
	snprintf(want, sizeof(want), "machine %s did not start within 120 s", ms[0].id);
	assert_string_equal(r.reason, want);
	store_release_clear(&r);
	assert_int_equal(machine(ms[0].id).desired_release, v1);
}

/* A failed first deploy destroys the machines it made; its staged secrets stay the head. */
static void test_failed_first_deploy(void **state)
{
	struct store_machine ms[8];
	struct store_release r = { 0 };
	char cur[STORE_ID_SIZE], want[256];
	(void)state;
	uint64_t sv = secrets("c1");
	uint64_t v = make_release("nope", 2, sv);

	step_at(v, T0);
	current_of(v, cur);
	assert_int_equal(store_machine_report(F.s, cur, "failed", v, 0, -1, 0, 0), COFFER_OK);
	assert_int_equal(store_machine_set_tail(F.s, cur, "cannot run \"nope\": No such file or directory"),
			 COFFER_OK);
	step_at(v, T0 + 10);
	get_release(v, &r);
	assert_string_equal(r.status, "failed");
	snprintf(want, sizeof(want), "machine %s failed to start: cannot run \"nope\": No such file or directory", cur);
	assert_string_equal(r.reason, want);
	store_release_clear(&r);
	assert_int_equal(live(ms), 0);
	assert_string_equal(machine(cur).state, "destroyed");
	refresh_app();
	assert_int_equal(F.app.current_release, 0);
	assert_int_equal(F.app.secrets_head, sv);
}

/* No ready host (stale heartbeats): the release fails with the scheduler's reason, nothing made. */
static void test_no_host(void **state)
{
	struct store_machine ms[8];
	struct store_release r = { 0 };
	(void)state;
	uint64_t v = make_release("web", 1, 0);
	F.beat_at = T0;
	step_at(v, T0 + RELEASE_HOST_STALE_MS); /* just fresh enough */
	assert_int_equal(live(ms), 1);
	assert_int_equal(store_machine_destroy(F.s, ms[0].id), COFFER_OK);
	/* the watched machine went away; a new one is due, but every heartbeat is stale now */
	step_at(v, T0 + RELEASE_HOST_STALE_MS + 1);
	get_release(v, &r);
	assert_string_equal(r.status, "failed");
	assert_string_equal(r.reason, "no host is ready to run machines");
	store_release_clear(&r);
	assert_int_equal(live(ms), 0);
}

/*
 * A relabel (same cmd, env and secrets: a scale-up): the running machines
 * move at once without a window; only the new machine is watched.
 */
static void test_scale_up_relabels(void **state)
{
	struct store_machine ms[8];
	char cur[STORE_ID_SIZE];
	int64_t t = T0;
	(void)state;
	uint64_t sv = secrets("c1");
	first_deploy(2, sv, &t);
	uint64_t v2 = make_release("web", 3, sv);
	assert_int_equal(live(ms), 2);
	const struct store_machine a = ms[0], b = ms[1];

	tick_clock();
	step_at(v2, t);
	assert_true(in_progress(v2, "moved", a.id));
	assert_true(in_progress(v2, "moved", b.id));
	assert_int_equal(machine(a.id).desired_release, v2);
	assert_int_equal(machine(b.id).desired_release, v2);
	assert_int_equal(live(ms), 3);
	current_of(v2, cur);
	assert_string_equal(cur, ms[2].id);
	assert_true(in_progress(v2, "created", cur));
	assert_false(in_progress(v2, "created", a.id));
	/* a relabelled machine is not watched: its exit now is not this release's failure */
	assert_int_equal(store_machine_report(F.s, a.id, "stopped", machine(a.id).running_release, 0, 1, 0, 0),
			 COFFER_OK);
	started(cur, v2, t + 10);
	step_at(v2, t + 10 + GRACE);
	assert_status(v2, "succeeded");
}

/* The store's commits so far, from the metrics (coffer_store_duration_seconds_count{op="commit"}). */
static long store_commits(void)
{
	static const char key[] = "coffer_store_duration_seconds_count{op=\"commit\"} ";
	struct buf out;
	long n = 0;
	buf_init(&out, (size_t)1 << 20);
	assert_int_equal(metrics_render(&out), COFFER_OK);
	const char *p = out.ptr ? strstr(out.ptr, key) : NULL;
	if (p)
		n = strtol(p + strlen(key), NULL, 10);
	buf_release(&out);
	return n;
}

/*
 * A relabel of several machines (the same spec, count unchanged) is one
 * change for them all: pending → running, the three relabels, the success
 * (three changes and commits, not five).
 */
static void test_relabels_in_one_change(void **state)
{
	struct store_machine ms[8];
	int64_t t = T0;
	(void)state;
	uint64_t sv = secrets("c1");
	first_deploy(3, sv, &t);
	assert_int_equal(live(ms), 3);
	uint64_t v2 = make_release("web", 3, sv);
	long commits0 = store_commits();
	step_at(v2, t);
	assert_status(v2, "succeeded");
	for (int i = 0; i < 3; i++) {
		assert_true(in_progress(v2, "moved", ms[i].id));
		assert_int_equal(machine(ms[i].id).desired_release, v2);
	}
	/* step_at's two heartbeats, then each change one transaction and release_step's last look one more */
	assert_int_equal(store_commits() - commits0, 2 + 3 + 1);
}

/* A scale-down: the oldest machine is relabelled, the newest extras are destroyed at the success. */
static void test_scale_down(void **state)
{
	struct store_machine ms[8];
	int64_t t = T0;
	(void)state;
	uint64_t sv = secrets("c1");
	first_deploy(3, sv, &t);
	assert_int_equal(live(ms), 3);
	const struct store_machine a = ms[0], b = ms[1], c = ms[2];
	uint64_t v2 = make_release("web", 1, sv);

	step_at(v2, t);
	assert_status(v2, "succeeded");
	assert_int_equal(live(ms), 1);
	assert_string_equal(ms[0].id, a.id);
	assert_int_equal(ms[0].desired_release, v2);
	assert_string_equal(machine(b.id).state, "destroyed");
	assert_string_equal(machine(c.id).state, "destroyed");
	refresh_app();
	assert_int_equal(F.app.current_release, v2);
}

/*
 * Resume: a store left mid-rollback by a killed api (reason noted, phase
 * rollback, a machine still on the failed release) is finished by a fresh
 * env; the reason is kept.
 */
static void test_resume_rollback(void **state)
{
	struct store_machine ms[8];
	struct store_release r = { 0 };
	char progress[256];
	int64_t t = T0;
	(void)state;
	uint64_t sv1 = secrets("c1");
	uint64_t v1 = first_deploy(2, sv1, &t);
	uint64_t sv2 = secrets("c2");
	uint64_t v2 = make_release("web", 2, sv2);
	assert_int_equal(live(ms), 2);
	/* what the store holds after "machine b exited" was noted and before the rollback ran */
	assert_int_equal(store_machine_set_desired(F.s, ms[0].id, v2), COFFER_OK);
	assert_int_equal(store_machine_set_desired(F.s, ms[1].id, v2), COFFER_OK);
	snprintf(progress, sizeof(progress),
		 "{\"phase\":\"rollback\",\"moved\":[\"%s\"],\"created\":[],\"current\":{\"id\":\"%s\",\"since\":%lld,"
		 "\"started_at\":null,\"restarts\":null}}",
		 ms[0].id, ms[1].id, (long long)t);
	assert_int_equal(store_release_update(F.s, F.app.id, v2, "running", "machine b exited with status 1",
					      progress),
			 COFFER_OK);

	struct release_env fresh = { .keeper_pk = F.keeper_pk };
	assert_int_equal(release_step(&fresh, F.s, F.app.id, v2, t + 1), COFFER_OK);
	get_release(v2, &r);
	assert_string_equal(r.status, "failed");
	assert_string_equal(r.reason, "machine b exited with status 1");
	store_release_clear(&r);
	assert_int_equal(machine(ms[0].id).desired_release, v1);
	assert_int_equal(machine(ms[1].id).desired_release, v1);
	refresh_app();
	assert_int_equal(F.app.secrets_head, sv1);
}

/* Resume: a roll left mid-way (a machine started, inside its window) goes on from the store. */
static void test_resume_roll(void **state)
{
	struct store_machine ms[8];
	char progress[256], cur[STORE_ID_SIZE];
	int64_t t = T0;
	(void)state;
	uint64_t sv1 = secrets("c1");
	first_deploy(2, sv1, &t);
	uint64_t sv2 = secrets("c2");
	uint64_t v2 = make_release("web", 2, sv2);
	assert_int_equal(live(ms), 2);
	assert_int_equal(store_release_update(F.s, F.app.id, v2, "running", NULL, "{}"), COFFER_OK);
	assert_int_equal(store_machine_set_desired(F.s, ms[0].id, v2), COFFER_OK);
	started(ms[0].id, v2, t + 10);
	snprintf(progress, sizeof(progress),
		 "{\"phase\":\"rolling\",\"moved\":[],\"created\":[],\"current\":{\"id\":\"%s\",\"since\":%lld,"
		 "\"started_at\":%lld,\"restarts\":0}}",
		 ms[0].id, (long long)t, (long long)(t + 10));
	assert_int_equal(store_release_update(F.s, F.app.id, v2, "running", NULL, progress), COFFER_OK);

	F.env = (struct release_env){ .keeper_pk = F.keeper_pk }; /* as after a restart */
	step_at(v2, t + 10 + GRACE - 1);
	current_of(v2, cur);
	assert_string_equal(cur, ms[0].id);
	step_at(v2, t + 10 + GRACE);
	assert_true(in_progress(v2, "moved", ms[0].id));
	current_of(v2, cur);
	assert_string_equal(cur, ms[1].id);
	started(ms[1].id, v2, t + 2000);
	step_at(v2, t + 2000 + GRACE);
	assert_status(v2, "succeeded");
	assert_int_equal(live(ms), 2);
}

static int64_t wall_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * The controller thread over a pool: woken, it steps a new release (a
 * machine appears and the long polls' queue is woken); a shutdown wakes
 * the queue too.
 */
static int woken_since(struct release_ctl *ctl, uint64_t ticket)
{
	for (int i = 0; i < 500; i++) {
		if (http_waitq_ticket(release_assignments_queue(ctl)) != ticket)
			return 1;
		usleep(10000);
	}
	return 0;
}

static void test_controller_thread(void **state)
{
	struct api api = { 0 };
	struct release_ctl *ctl = NULL;
	struct store_machine ms[8];
	(void)state;
	assert_int_equal(store_pool_open(F.url, 2, &api.pool), COFFER_OK);
	for (int t = 0; t < STORE_TABLE__COUNT; t++)
		assert_int_equal(store_pool_auth_key(api.pool, (enum store_table)t, test_rows_key), COFFER_OK);
	memcpy(api.keeper_pk, F.keeper_pk, sizeof(api.keeper_pk));
	assert_int_equal(release_ctl_start(&api, &ctl), COFFER_OK);
	assert_non_null(release_assignments_queue(ctl));
	assert_null(release_assignments_queue(NULL));
	uint64_t gen = http_waitq_ticket(release_assignments_queue(ctl));
	/* nothing changed: nothing wakes the queue */
	usleep(100000);
	assert_int_equal(http_waitq_ticket(release_assignments_queue(ctl)), gen);

	assert_int_equal(store_host_heartbeat(F.s, F.h1, wall_ms()), COFFER_OK);
	assert_int_equal(store_host_heartbeat(F.s, F.h2, wall_ms() - 60000), COFFER_OK); /* stale */
	uint64_t v = make_release("web", 1, 0);
	int64_t t = wall_ms();
	release_ctl_wake(ctl);
	assert_true(woken_since(ctl, gen)); /* a machine was made, and the queue was woken */
	assert_true(wall_ms() - t < 2000);
	assert_int_equal(live(ms), 1);
	assert_int_equal(ms[0].desired_release, v);
	assert_string_equal(ms[0].host_id, F.h1); /* the only host with a fresh heartbeat */
	assert_status(v, "running");
	assert_true(release_ctl_leader(ctl)); /* it stepped: it holds the lease */
	int held = -1;
	assert_int_equal(store_lease_acquire(F.s, RELEASE_LEASE_NAME, "other-api", 60000, &held), COFFER_OK);
	assert_int_equal(held, 0);

	uint64_t next = http_waitq_ticket(release_assignments_queue(ctl));
	release_ctl_shutdown(ctl);
	assert_int_not_equal(http_waitq_ticket(release_assignments_queue(ctl)), next); /* woken by the shutdown */
	assert_true(release_ctl_stopping(ctl));
	release_ctl_stop(ctl);
	assert_false(release_ctl_leader(NULL));
	/* stopping gave the lease up: another takes it at once */
	assert_int_equal(store_lease_acquire(F.s, RELEASE_LEASE_NAME, "other-api", 60000, &held), COFFER_OK);
	assert_int_equal(held, 1);
	store_pool_close(api.pool);
}

/* Under a lease, a step changes nothing unless its holder holds the lease (the fence in each change). */
static void test_lease_fence(void **state)
{
	struct store_machine ms[8];
	int held = 0;
	(void)state;
	uint64_t v = make_release("web", 1, 0);
	assert_int_equal(store_host_heartbeat(F.s, F.h1, T0), COFFER_OK);
	F.env.lease_holder = "api-a";
	assert_int_equal(release_step(&F.env, F.s, F.app.id, v, T0), COFFER_ERR_CONFLICT); /* nobody holds it */
	assert_status(v, "pending");
	assert_int_equal(live(ms), 0);
	assert_int_equal(store_lease_acquire(F.s, RELEASE_LEASE_NAME, "api-b", 60000, &held), COFFER_OK);
	assert_int_equal(held, 1);
	assert_int_equal(release_step(&F.env, F.s, F.app.id, v, T0), COFFER_ERR_CONFLICT); /* another holds it */
	assert_status(v, "pending");
	assert_int_equal(live(ms), 0);
	assert_int_equal(store_lease_release(F.s, RELEASE_LEASE_NAME, "api-b"), COFFER_OK);
	assert_int_equal(store_lease_acquire(F.s, RELEASE_LEASE_NAME, "api-a", 60000, &held), COFFER_OK);
	assert_int_equal(held, 1);
	step_at(v, T0);
	assert_status(v, "running");
	assert_int_equal(live(ms), 1);
}

/* The spec: the same for the same (app, cmd, env, secrets), different when any differs. */
static void test_spec(void **state)
{
	char a[RELEASE_SPEC_SIZE], b[RELEASE_SPEC_SIZE];
	(void)state;
	assert_int_equal(release_spec("app1", "{\"cmd\":[\"web\"],\"count\":1,\"env\":{\"A\":\"1\"}}", 3, a), COFFER_OK);
	assert_int_equal(strlen(a), RELEASE_SPEC_LEN);
	assert_int_equal(release_spec("app1", "{\"count\":5,\"env\":{\"A\":\"1\"},\"grace_ms\":9,\"cmd\":[\"web\"]}", 3, b),
			 COFFER_OK);
	assert_string_equal(a, b);
	assert_int_equal(release_spec("app1", "{\"cmd\":[\"web\"],\"env\":{\"A\":\"2\"}}", 3, b), COFFER_OK);
	assert_string_not_equal(a, b);
	assert_int_equal(release_spec("app1", "{\"cmd\":[\"web\"],\"env\":{\"A\":\"1\"}}", 4, b), COFFER_OK);
	assert_string_not_equal(a, b);
	assert_int_equal(release_spec("app2", "{\"cmd\":[\"web\"],\"env\":{\"A\":\"1\"}}", 3, b), COFFER_OK);
	assert_string_not_equal(a, b);
	assert_int_equal(release_spec("app1", "{\"cmd\":[\"web\",\"-v\"],\"env\":{\"A\":\"1\"}}", 3, b), COFFER_OK);
	assert_string_not_equal(a, b);
	assert_int_equal(release_spec("app1", "{\"env\":{}}", 3, b), COFFER_ERR_INVALID);
	assert_int_equal(release_spec("app1", "not json", 3, b), COFFER_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec),
		cmocka_unit_test_setup_teardown(test_first_deploy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roll_one_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_fails_and_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_before_first_look, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_clock_behind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_first_deploy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scale_up_relabels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relabels_in_one_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scale_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_roll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_controller_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_fence, setup, teardown),
	};
	if (sodium_init() < 0)
		return 1;
	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
