/*
 * bench_hosts — many hosts on one api: N simulated agents, each with its
 * own host keys and enrolment, keep a signed long poll for their
 * assignments open (GET /v1/agent/assignments?after=G&wait=S), and the
 * time from a release step to each host's pickup of its new assignment is
 * measured (docs/BENCHMARKS.md, "many hosts").
 *
 *   bench_hosts --name NAME --api URL --keeper URL --store URL --rows-key FILE
 *       --join-tokens FILE --coffer CLI --hosts N [--api-pid PID] [--ca PEM]
 *       [--floor NAME] [--prefix P] [--deadline S]
 *
 * The CLI's environment (COFFER_API_URL, COFFER_TOKEN, COFFER_CONFIG with a
 * deployer key) is the caller's: the release steps are `coffer deploy`s.
 * FILE holds N + 1 join tokens, one a line (coffer keeper join-token).
 *
 * Setup, as the platform does it:
 *   - each host is enrolled with the keeper (POST /v1/hosts/enrol with a
 *     join token: new signing and sealing keys, as the agent makes them);
 *     host 0 is the floor's, hosts 1..N the row's;
 *   - each host keeps one connection to the api, from a loopback address of
 *     its own (127.1.x.y: a real agent is one address per host), on which
 *     it long-polls, signed as the agent signs, and answers a new machine
 *     with a "started" event as the agent does;
 *   - per 100 hosts (RELEASE_COUNT_MAX) one app: `coffer apps create`,
 *     `coffer deploy --count 0 -- /bin/true` (release 1), then one machine
 *     of it per host is placed through the store at release 1 (what the
 *     api's scheduler does; placing 2,000 machines by rolling takes minutes)
 *     and every host waits until it has picked it up and reported it.
 * The measured release step: `coffer deploy -a APP --count C -- /bin/true`
 * for each app, one after the other: the same command, so the api's
 * controller moves every machine to release 2 at once (no start to wait
 * for) and wakes the parked polls. A host's pickup time is from the start
 * of its app's deploy command to the answer that gives it release 2.
 *
 * Lines (bench_util.h): FLOOR (1 host, default "hosts.floor") and NAME,
 * each with "hosts", "pickup_p99_us", "pickup_median_us", "api_rss_kib" and
 * "api_threads" (/proc/PID/status with every host connected and parked),
 * "errors" (failed requests and hosts that never picked up), "deploy_us"
 * (the deploy commands' median wall time; `coffer deploy` waits for the
 * release to finish), "apps", and "api_idle_cpu", "api_step_cpu",
 * "bench_idle_cpu", "bench_step_cpu" (CPU seconds per second of the api
 * and of this program, over the idle window with every host parked and over
 * the measured step: the bench must not be the bottleneck).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "bench_util.h"
#include "buf.h"
#include "encode.h"
#include "hostauth.h"
#include "hpke.h"
#include "json.h"
#include "jws.h"
#include "parse.h"
#include "secret.h"
#include "store.h"
#include "banned.h"

extern char **environ;

#define HOSTS_MAX 20000
#define PER_APP 100 /* RELEASE_COUNT_MAX */
#define URL_MAX 2048
#define PATH_MAX_LEN 512
#define BODY_MAX ((size_t)16 << 10)
#define RESPONSE_MAX ((size_t)4 << 20)
#define JOIN_TOKEN_MAX 256
#define EXTRA_SIZE 512
#define NAME_SIZE 64
#define JSON_DEPTH 16
#define GEN_SIZE 64
#define WAIT_S 25
#define SETTLE_MS 1500
#define RETRY_MS 1000
#define DEADLINE_S_DEFAULT 120
#define MS_PER_S 1000
#define NS_PER_MS 1000000ull
#define FAKE_PID 4242
#define ASSIGN_PATH "/v1/agent/assignments"
#define ENROL_PATH "/v1/hosts/enrol"
#define HEARTBEAT_PATH "/v1/hosts/heartbeat"
#define HEARTBEAT_MS 5000 /* AGENT_HEARTBEAT_MS */
#define USAGE                                                                                                   \
	"usage: bench_hosts --name NAME --api URL --keeper URL --store URL --rows-key FILE --join-tokens FILE " \
	"--coffer CLI --hosts N [--api-pid PID] [--ca PEM] [--floor NAME] [--prefix P] [--deadline S]"

enum hstate { H_IDLE, H_POLL, H_EVENT, H_WAIT };

/* One connection of a host: the polls and events, or the heartbeats (the agent's two threads). */
struct conn {
	CURL *curl;
	struct curl_slist *hdrs;
	struct buf resp;
};

struct host {
	char id[HOSTAUTH_HOST_ID_MAX + 1];
	char ip[32];
	struct secret *sign_sk;
	struct conn c;  /* polls and events */
	struct conn hb; /* heartbeats */
	int hb_busy;
	int hb_ok; /* one heartbeat answered */
	uint64_t hb_next_ns;
	char gen[GEN_SIZE];
	enum hstate st;
	uint64_t retry_ns;
	uint64_t answers;
	/* events to send: machine id and release (the agent reports what it runs) */
	json_t *pending;  /* array of [id, release] */
	json_t *reported; /* object machine id -> release reported */
	int app;          /* index of its app in the phase */
	uint64_t target;  /* release to pick up (0: none yet) */
	uint64_t pickup_ns;
	uint64_t errors;
};

struct app {
	char name[NAME_SIZE];
	char id[STORE_ID_SIZE];
	uint64_t t0_ns;
	uint64_t deploy_ns;
};

static void conn_release(struct conn *c);

static const char *api_url, *ca_file;
static CURLM *multi;
static uint64_t req_errors;

static void common_opts(CURL *c)
{
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	if (ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
}

/* ---- enrolment (as bench_keeper and the agent do) ---- */

static int enrol(CURL *curl, const char *keeper_url, const char *join, const char *name, struct host *h)
{
	unsigned char sign_pk[HOSTAUTH_PK_LEN], seal_pk[HOSTAUTH_PK_LEN], proof[HOSTAUTH_SIG_LEN];
	struct secret *seal_sk = NULL;
	struct curl_slist *headers = NULL;
	struct buf body, resp;
	char url[URL_MAX];
	json_t *req = NULL, *ans = NULL;
	const char *id;
	long status = 0;
	int ex = -1;

	buf_init_wiping(&body, BODY_MAX);
	buf_init(&resp, RESPONSE_MAX);
	if (jws_generate_key(&h->sign_sk, sign_pk) || hpke_generate_keypair(&seal_sk, seal_pk) ||
	    hostauth_enrol_proof_sign(h->sign_sk, join, strlen(join), name, proof))
		goto out;
	req = json_object();
	if (!req || json_object_set_new(req, "join_token", json_string(join)) ||
	    json_object_set_new(req, "name", json_string(name)) || bench_b64_field(req, "sign_pk", sign_pk, sizeof(sign_pk)) ||
	    bench_b64_field(req, "seal_pk", seal_pk, sizeof(seal_pk)) || bench_b64_field(req, "proof", proof, sizeof(proof)) ||
	    json_dump_buf(req, &body) || bench_add_header(&headers, "Content-Type", "application/json") ||
	    fmt_into(url, sizeof(url), "%s%s", keeper_url, ENROL_PATH))
		goto out;
	curl_easy_reset(curl);
	common_opts(curl);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.ptr);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)body.len);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, bench_collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, BENCH_HTTP_TIMEOUT_MS);
	if (curl_easy_perform(curl) != CURLE_OK)
		goto out;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 201) {
		bench_fail("enrolment refused: status %ld: %.200s", status, resp.ptr ? resp.ptr : "");
		goto out;
	}
	if (json_parse_limited(resp.ptr, resp.len, RESPONSE_MAX, JSON_DEPTH, &ans, NULL) ||
	    json_get_string(ans, "host_id", 1, &id, NULL, NULL) || str_copy(h->id, sizeof(h->id), id))
		goto out;
	ex = 0;
out:
	json_decref(ans);
	json_decref(req);
	curl_slist_free_all(headers);
	buf_release(&resp);
	buf_release(&body);
	secret_free(seal_sk); /* the bench opens no delivery */
	return ex;
}

/* ---- the simulated agent: one signed request at a time per host ---- */

static int start_request(struct host *h, struct conn *c, const char *method, const char *path, const char *body)
{
	struct hostauth_request r = { .method = method, .path = path, .body = body, .body_len = body ? strlen(body) : 0 };
	struct hostauth_headers hh;
	char url[URL_MAX];

	curl_slist_free_all(c->hdrs);
	c->hdrs = NULL;
	buf_reset(&c->resp);
	if (fmt_into(url, sizeof(url), "%s%s", api_url, path) ||
	    hostauth_sign_headers(h->sign_sk, h->id, &r, (int64_t)time(NULL), &hh) ||
	    bench_add_header(&c->hdrs, HOSTAUTH_HEADER_HOST, hh.host) ||
	    bench_add_header(&c->hdrs, HOSTAUTH_HEADER_TIMESTAMP, hh.timestamp) ||
	    bench_add_header(&c->hdrs, HOSTAUTH_HEADER_NONCE, hh.nonce) ||
	    bench_add_header(&c->hdrs, HOSTAUTH_HEADER_SIGNATURE, hh.signature) ||
	    bench_add_header(&c->hdrs, "Content-Type", "application/json") || !(c->hdrs = curl_slist_append(c->hdrs, "Expect:")))
		return -1;
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->hdrs);
	if (body) {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 0L);
		curl_easy_setopt(c->curl, CURLOPT_COPYPOSTFIELDS, body);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	}
	return curl_multi_add_handle(multi, c->curl) == CURLM_OK ? 0 : -1;
}

static int start_poll(struct host *h)
{
	char path[PATH_MAX_LEN];
	if (fmt_into(path, sizeof(path), "%s?after=%s&wait=%d", ASSIGN_PATH, h->gen, WAIT_S))
		return -1;
	h->st = H_POLL;
	return start_request(h, &h->c, "GET", path, NULL);
}

/* The next queued event, else the next poll. */
static int next_request(struct host *h)
{
	char path[PATH_MAX_LEN], body[BODY_MAX];
	json_t *ev = json_array_get(h->pending, 0);
	if (!ev)
		return start_poll(h);
	const char *id = json_string_value(json_array_get(ev, 0));
	json_int_t rel = json_integer_value(json_array_get(ev, 1));
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long ms = (long long)now.tv_sec * MS_PER_S + now.tv_nsec / (long)NS_PER_MS;
	if (fmt_into(path, sizeof(path), "/v1/agent/machines/%s/events", id) ||
	    fmt_into(body, sizeof(body), "{\"state\":\"started\",\"release\":%lld,\"pid\":%d,\"started_at\":%lld}",
		     (long long)rel, FAKE_PID, ms))
		return -1;
	h->st = H_EVENT;
	return start_request(h, &h->c, "POST", path, body);
}

/* An assignments answer: the generation, pickup, and events for what is new. */
static int on_assignments(struct host *h, uint64_t now)
{
	json_t *doc = NULL, *machines, *m;
	const char *gen;
	size_t i;
	int ex = -1;

	if (json_parse_limited(h->c.resp.ptr, h->c.resp.len, RESPONSE_MAX, JSON_DEPTH, &doc, NULL) ||
	    json_get_string(doc, "generation", 1, &gen, NULL, NULL) || str_copy(h->gen, sizeof(h->gen), gen))
		goto out;
	machines = json_object_get(doc, "machines");
	json_array_foreach(machines, i, m) {
		const char *id = json_string_value(json_object_get(m, "id"));
		json_int_t rel = json_integer_value(json_object_get(m, "release"));
		json_t *seen = id ? json_object_get(h->reported, id) : NULL;
		if (!id)
			goto out;
		if (h->target && !h->pickup_ns && (uint64_t)rel >= h->target)
			h->pickup_ns = now;
		if (!seen || json_integer_value(seen) != rel) {
			if (json_object_set_new(h->reported, id, json_integer(rel)) ||
			    json_array_append_new(h->pending, json_pack("[s,I]", id, rel)))
				goto out;
		}
	}
	h->answers++;
	ex = 0;
out:
	json_decref(doc);
	return ex;
}

static void on_heartbeat(struct host *h, CURLcode cc, uint64_t now)
{
	long status = 0;
	curl_multi_remove_handle(multi, h->hb.curl);
	curl_easy_getinfo(h->hb.curl, CURLINFO_RESPONSE_CODE, &status);
	h->hb_busy = 0;
	h->hb_next_ns = now + HEARTBEAT_MS * NS_PER_MS;
	if (cc == CURLE_OK && status == 200) {
		h->hb_ok = 1;
		return;
	}
	if (h->errors++ == 0 && req_errors < 5)
		fprintf(stderr, "bench: host %s: heartbeat: curl %d, status %ld: %.200s\n", h->id, (int)cc, status,
			h->hb.resp.ptr ? h->hb.resp.ptr : "");
	req_errors++;
}

static void heartbeats(struct host *hs, size_t lo, size_t hi, uint64_t now)
{
	for (size_t i = lo; i < hi; i++) {
		struct host *h = &hs[i];
		if (h->hb_busy || now < h->hb_next_ns)
			continue;
		if (start_request(h, &h->hb, "POST", HEARTBEAT_PATH, "{}")) {
			req_errors++;
			h->hb_next_ns = now + RETRY_MS * NS_PER_MS;
			continue;
		}
		h->hb_busy = 1;
	}
}

static void on_done(struct host *h, CURLcode cc, uint64_t now)
{
	long status = 0;
	curl_multi_remove_handle(multi, h->c.curl);
	curl_easy_getinfo(h->c.curl, CURLINFO_RESPONSE_CODE, &status);
	int ok = cc == CURLE_OK && status == 200;
	if (ok && h->st == H_POLL)
		ok = on_assignments(h, now) == 0;
	else if (ok && h->st == H_EVENT)
		json_array_remove(h->pending, 0);
	if (!ok) {
		if (h->errors++ == 0 && req_errors < 5)
			fprintf(stderr, "bench: host %s: %s: curl %d, status %ld: %.200s\n", h->id,
				h->st == H_POLL ? "poll" : "event", (int)cc, status, h->c.resp.ptr ? h->c.resp.ptr : "");
		req_errors++;
		if (h->st == H_EVENT)
			json_array_remove(h->pending, 0); /* not retried: the bench counts it */
		h->st = H_WAIT;
		h->retry_ns = now + RETRY_MS * NS_PER_MS;
		return;
	}
	if (next_request(h)) {
		req_errors++;
		h->st = H_WAIT;
		h->retry_ns = now + RETRY_MS * NS_PER_MS;
	}
}

/* Runs the loop for at most ms, or until done(arg) says so; the hosts are hs[lo..hi). */
static void run_loop(struct host *hs, size_t lo, size_t hi, int64_t ms, int (*done)(struct host *, size_t, size_t))
{
	uint64_t end = bench_now_ns() + (uint64_t)ms * NS_PER_MS;
	for (;;) {
		int running = 0, left;
		CURLMsg *msg;
		uint64_t now = bench_now_ns();
		if (now >= end || (done && done(hs, lo, hi)))
			return;
		for (size_t i = lo; i < hi; i++)
			if (hs[i].st == H_WAIT && now >= hs[i].retry_ns && next_request(&hs[i])) {
				hs[i].st = H_WAIT;
				hs[i].retry_ns = now + RETRY_MS * NS_PER_MS;
			}
		heartbeats(hs, lo, hi, now);
		curl_multi_poll(multi, NULL, 0, 50, NULL);
		curl_multi_perform(multi, &running);
		now = bench_now_ns();
		while ((msg = curl_multi_info_read(multi, &left)))
			if (msg->msg == CURLMSG_DONE) {
				struct host *h = NULL;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h);
				if (msg->easy_handle == h->hb.curl)
					on_heartbeat(h, msg->data.result, now);
				else
					on_done(h, msg->data.result, now);
			}
	}
}

/* Every host answered at least once, is polling again and has nothing left to report. */
static int all_parked(struct host *hs, size_t lo, size_t hi)
{
	for (size_t i = lo; i < hi; i++)
		if (!hs[i].hb_ok || hs[i].answers == 0 || hs[i].st != H_POLL || json_array_size(hs[i].pending) > 0)
			return 0;
	return 1;
}

static int all_picked(struct host *hs, size_t lo, size_t hi)
{
	for (size_t i = lo; i < hi; i++)
		if (!hs[i].pickup_ns)
			return 0;
	return 1;
}

static int all_placed(struct host *hs, size_t lo, size_t hi)
{
	for (size_t i = lo; i < hi; i++)
		if (json_object_size(hs[i].reported) == 0)
			return 0;
	return all_parked(hs, lo, hi);
}

/* ---- the CLI and /proc ---- */

static const char *coffer_cli;

static pid_t cli_spawn(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	pid_t pid = -1;
	if (posix_spawn_file_actions_init(&fa))
		return -1;
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	if (posix_spawn(&pid, coffer_cli, &fa, NULL, argv, environ))
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static int cli_run(char *const argv[])
{
	int status = 0;
	pid_t pid = cli_spawn(argv);
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		bench_fail("coffer %s %s failed", argv[1], argv[2] ? argv[2] : "");
		return -1;
	}
	return 0;
}

/* VmRSS (KiB) and Threads of pid; 0 when unknown. */
static void proc_status(long pid, long *rss_kib, long *threads)
{
	char path[64], line[256];
	FILE *f;
	*rss_kib = 0;
	*threads = 0;
	if (pid <= 0 || fmt_into(path, sizeof(path), "/proc/%ld/status", pid) || !(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			*rss_kib = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "Threads:", 8) == 0)
			*threads = strtol(line + 8, NULL, 10);
	}
	fclose(f);
}

/* CPU seconds (user + system) of pid so far; 0 when unknown. */
static double proc_cpu_s(long pid)
{
	char path[64], text[1024];
	unsigned long ut = 0, stt = 0;
	FILE *f;
	if (pid <= 0 || fmt_into(path, sizeof(path), "/proc/%ld/stat", pid) || !(f = fopen(path, "r")))
		return 0;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	const char *p = strrchr(text, ')');
	/* after ") ": state and 10 fields, then utime and stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) != 2)
		return 0;
	return (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- one phase: hosts [lo, hi) ---- */

struct run {
	struct store *st;
	const char *prefix;
	long api_pid;
	int64_t deadline_s;
};

static int phase(const struct run *r, struct host *hs, size_t lo, size_t hi, const char *label, const char *tag)
{
	size_t n = hi - lo, n_apps = (n + PER_APP - 1) / PER_APP;
	struct app *apps = calloc(n_apps, sizeof(*apps));
	struct bench_samples pick, dep;
	struct bench_stats ps, ds;
	char extra[EXTRA_SIZE], count[16];
	long rss = 0, threads = 0;
	uint64_t errors0 = req_errors, missed = 0;
	int ex = 1;

	bench_samples_init(&pick);
	bench_samples_init(&dep);
	if (!apps)
		return bench_fail("out of memory");
	/* connected and parked */
	for (size_t i = lo; i < hi; i++)
		if (start_poll(&hs[i]))
			hs[i].st = H_WAIT;
	run_loop(hs, lo, hi, r->deadline_s * MS_PER_S, all_parked);
	if (!all_parked(hs, lo, hi)) {
		bench_fail("%s: not every host is polling after %llds", label, (long long)r->deadline_s);
		goto out;
	}
	uint64_t t_idle = bench_now_ns();
	double api0 = proc_cpu_s(r->api_pid), me0 = self_cpu_s();
	run_loop(hs, lo, hi, SETTLE_MS, NULL);
	double idle_s = (double)(bench_now_ns() - t_idle) / 1e9;
	double api_idle = (proc_cpu_s(r->api_pid) - api0) / idle_s, me_idle = (self_cpu_s() - me0) / idle_s;
	proc_status(r->api_pid, &rss, &threads);

	/* the apps, release 1, one machine per host placed through the store */
	for (size_t a = 0; a < n_apps; a++) {
		struct store_app app;
		size_t per = (n - a * PER_APP) < PER_APP ? (n - a * PER_APP) : PER_APP;
		snprintf(apps[a].name, sizeof(apps[a].name), "%s-%s%zu", r->prefix, tag, a);
		snprintf(count, sizeof(count), "%zu", per);
		char *create[] = { (char *)coffer_cli, "apps", "create", apps[a].name, NULL };
		char *deploy[] = { (char *)coffer_cli, "deploy", "-a", apps[a].name, "--count", "0", "--", "/bin/true", NULL };
		if (cli_run(create) || cli_run(deploy))
			goto out;
		if (store_app_get_by_name(r->st, apps[a].name, &app) || app.current_release == 0) {
			bench_fail("app %s: not found or no release", apps[a].name);
			goto out;
		}
		memcpy(apps[a].id, app.id, sizeof(apps[a].id));
		for (size_t k = 0; k < per; k++) {
			struct store_machine m;
			struct host *h = &hs[lo + a * PER_APP + k];
			if (store_machine_create(r->st, app.id, h->id, app.current_release, &m)) {
				bench_fail("cannot place a machine");
				goto out;
			}
			h->app = (int)a;
		}
	}
	/* every host has its machine (at the next recheck) and has reported it */
	run_loop(hs, lo, hi, r->deadline_s * MS_PER_S, all_placed);
	if (!all_placed(hs, lo, hi)) {
		bench_fail("%s: not every host picked up its machine in %llds", label, (long long)r->deadline_s);
		goto out;
	}
	run_loop(hs, lo, hi, SETTLE_MS, NULL);

	/* the release step: one deploy per app, one after the other */
	for (size_t i = lo; i < hi; i++)
		hs[i].target = 2;
	uint64_t t_step = bench_now_ns();
	double api1 = proc_cpu_s(r->api_pid), me1 = self_cpu_s();
	for (size_t a = 0; a < n_apps; a++) {
		size_t per = (n - a * PER_APP) < PER_APP ? (n - a * PER_APP) : PER_APP;
		int status = 0;
		snprintf(count, sizeof(count), "%zu", per);
		char *deploy[] = { (char *)coffer_cli, "deploy", "-a", apps[a].name, "--count", count, "--", "/bin/true", NULL };
		apps[a].t0_ns = bench_now_ns();
		pid_t pid = cli_spawn(deploy);
		if (pid < 0) {
			bench_fail("cannot start coffer deploy");
			goto out;
		}
		/* the hosts are served while the command runs */
		for (;;) {
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w == pid)
				break;
			if (w < 0 && errno != EINTR) {
				status = 1;
				break;
			}
			run_loop(hs, lo, hi, 5, NULL);
		}
		apps[a].deploy_ns = bench_now_ns() - apps[a].t0_ns;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			bench_fail("coffer deploy -a %s failed", apps[a].name);
			goto out;
		}
		if (bench_samples_add(&dep, apps[a].deploy_ns))
			goto out;
	}
	run_loop(hs, lo, hi, r->deadline_s * MS_PER_S, all_picked);
	double step_s = (double)(bench_now_ns() - t_step) / 1e9;
	double api_step = (proc_cpu_s(r->api_pid) - api1) / step_s, me_step = (self_cpu_s() - me1) / step_s;
	for (size_t i = lo; i < hi; i++) {
		struct host *h = &hs[i];
		if (!h->pickup_ns) {
			missed++;
			continue;
		}
		if (bench_samples_add(&pick, h->pickup_ns - apps[h->app].t0_ns))
			goto out;
	}
	/* the events of the pickups go out before the next phase */
	run_loop(hs, lo, hi, r->deadline_s * MS_PER_S, all_parked);
	bench_stats_of(&pick, &ps);
	bench_stats_of(&dep, &ds);
	snprintf(extra, sizeof(extra),
		 ",\"hosts\":%zu,\"pickup_p99_us\":%.0f,\"pickup_median_us\":%.0f,\"api_rss_kib\":%ld,"
		 "\"api_threads\":%ld,\"errors\":%llu,\"apps\":%zu,\"deploy_us\":%.0f,\"api_idle_cpu\":%.3f,"
		 "\"api_step_cpu\":%.3f,\"bench_idle_cpu\":%.3f,\"bench_step_cpu\":%.3f",
		 n, ps.p99_us, ps.median_us, rss, threads, (unsigned long long)(req_errors - errors0 + missed), n_apps,
		 ds.median_us, api_idle, api_step, me_idle, me_step);
	bench_print_stats(label, &ps, extra);
	fflush(stdout);
	ex = 0;
out:
	/* the hosts of this phase hang up */
	for (size_t i = lo; i < hi; i++) {
		if (hs[i].st == H_POLL || hs[i].st == H_EVENT)
			curl_multi_remove_handle(multi, hs[i].c.curl);
		if (hs[i].hb_busy)
			curl_multi_remove_handle(multi, hs[i].hb.curl);
		hs[i].st = H_IDLE;
		hs[i].hb_busy = 0;
		conn_release(&hs[i].c);
		conn_release(&hs[i].hb);
	}
	bench_samples_release(&pick);
	bench_samples_release(&dep);
	free(apps);
	return ex;
}

static void conn_release(struct conn *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
	curl_slist_free_all(c->hdrs);
	c->hdrs = NULL;
	buf_release(&c->resp);
}

static int conn_init(struct host *h, struct conn *c)
{
	char iface[48];
	buf_init(&c->resp, RESPONSE_MAX);
	c->curl = curl_easy_init();
	if (!c->curl)
		return -1;
	common_opts(c->curl);
	snprintf(iface, sizeof(iface), "host!%s", h->ip);
	curl_easy_setopt(c->curl, CURLOPT_INTERFACE, iface);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, bench_collect);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &c->resp);
	curl_easy_setopt(c->curl, CURLOPT_PRIVATE, (char *)h);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)(WAIT_S + 30) * MS_PER_S);
	return 0;
}

/* 127.1.0.1 ..: one address per host, as real agents are (the api's per-address limit). */
static int host_curl(struct host *h, size_t i)
{
	snprintf(h->ip, sizeof(h->ip), "127.%zu.%zu.%zu", 1 + i / 62500, (i / 250) % 250, 1 + i % 250);
	return conn_init(h, &h->c) || conn_init(h, &h->hb) ? -1 : 0;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },     { "api", required_argument, NULL, 'a' },
		{ "keeper", required_argument, NULL, 'k' },   { "store", required_argument, NULL, 's' },
		{ "rows-key", required_argument, NULL, 'r' }, { "join-tokens", required_argument, NULL, 'j' },
		{ "coffer", required_argument, NULL, 'c' },   { "hosts", required_argument, NULL, 'h' },
		{ "api-pid", required_argument, NULL, 'p' },  { "ca", required_argument, NULL, 'C' },
		{ "floor", required_argument, NULL, 'f' },    { "prefix", required_argument, NULL, 'x' },
		{ "deadline", required_argument, NULL, 'd' }, { NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *keeper = NULL, *store_url = NULL, *rows_key = NULL, *tokens = NULL;
	const char *floor_name = "hosts.floor";
	struct run r = { .prefix = "bh", .deadline_s = DEADLINE_S_DEFAULT };
	int64_t n = 0, v;
	struct host *hs = NULL;
	FILE *tf = NULL;
	CURL *ec = NULL;
	int c, ex = 1;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'n': name = optarg; break;
		case 'a': api_url = optarg; break;
		case 'k': keeper = optarg; break;
		case 's': store_url = optarg; break;
		case 'r': rows_key = optarg; break;
		case 'j': tokens = optarg; break;
		case 'c': coffer_cli = optarg; break;
		case 'C': ca_file = optarg; break;
		case 'f': floor_name = optarg; break;
		case 'x': r.prefix = optarg; break;
		case 'h':
			if (parse_int64(optarg, 1, HOSTS_MAX, &n))
				return bench_fail("--hosts must be 1..%d", HOSTS_MAX);
			break;
		case 'p':
			if (parse_int64(optarg, 1, INT32_MAX, &v))
				return bench_fail("--api-pid must be a pid");
			r.api_pid = (long)v;
			break;
		case 'd':
			if (parse_int64(optarg, 1, 3600, &r.deadline_s))
				return bench_fail("--deadline must be 1..3600 seconds");
			break;
		default: return bench_fail("%s", USAGE);
		}
	}
	if (!name || !api_url || !keeper || !store_url || !rows_key || !tokens || !coffer_cli || n == 0)
		return bench_fail("%s", USAGE);
	if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT))
		return bench_fail("cannot initialise libsodium or libcurl");
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	if (bench_store_open(store_url, rows_key, &r.st))
		return 1;
	hs = calloc((size_t)n + 1, sizeof(*hs));
	multi = curl_multi_init();
	ec = curl_easy_init();
	tf = fopen(tokens, "r");
	if (!hs || !multi || !ec || !tf) {
		bench_fail("cannot start (out of memory, or cannot read %s)", tokens);
		goto out;
	}
	/*
	 * Idle connections kept: n + 16, for 2n + 2 (each host polls on one and
	 * heartbeats on another), so some hosts reconnect during the row. An
	 * agent keeps both, but 2,000 hosts' 4,002 connections are at the api's
	 * limit (4,096, split between its threads): see docs/BENCHMARKS.md, "many
	 * hosts", for the row with 2n + 18 at 500 hosts and what it asks of that
	 * limit.
	 */
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)n + 16);
	/* enrolment: host 0 is the floor's */
	uint64_t t_enrol = bench_now_ns();
	for (int64_t i = 0; i <= n; i++) {
		char join[JOIN_TOKEN_MAX + 2], hname[NAME_SIZE];
		struct host *h = &hs[i];
		if (!fgets(join, sizeof(join), tf)) {
			bench_fail("%s holds fewer than %lld join tokens", tokens, (long long)n + 1);
			goto out;
		}
		join[strcspn(join, "\r\n")] = '\0';
		snprintf(hname, sizeof(hname), "%s-h%lld", r.prefix, (long long)i);
		h->pending = json_array();
		h->reported = json_object();
		int bad = !h->pending || !h->reported || enrol(ec, keeper, join, hname, h) || host_curl(h, (size_t)i);
		sodium_memzero(join, sizeof(join));
		if (bad) {
			bench_fail("cannot enrol host %lld", (long long)i);
			goto out;
		}
	}
	fprintf(stderr, "bench: %lld hosts enrolled in %.1f s\n", (long long)n + 1,
		(double)(bench_now_ns() - t_enrol) / 1e9);
	if (phase(&r, hs, 0, 1, floor_name, "f") || phase(&r, hs, 1, (size_t)n + 1, name, "r"))
		goto out;
	ex = 0;
out:
	if (tf)
		fclose(tf);
	if (hs)
		for (int64_t i = 0; i <= n; i++) {
			conn_release(&hs[i].c);
			conn_release(&hs[i].hb);
			secret_free(hs[i].sign_sk);
			json_decref(hs[i].pending);
			json_decref(hs[i].reported);
		}
	free(hs);
	if (ec)
		curl_easy_cleanup(ec);
	if (multi)
		curl_multi_cleanup(multi);
	store_close(r.st);
	return ex;
}
