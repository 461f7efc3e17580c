/*
 * agent.c — `coffer agent`: loads (or makes) the host identity, enrols with
 * the keeper on first start (a join token from --join or COFFER_JOIN_TOKEN,
 * blanked in argv / unset in the environment at once), checks that the
 * keeper still knows the host, registers with the api, writes the ready
 * file, starts the runner (agent_run.c: the assignments poll and the
 * reconcile loop that runs the machines), then heartbeats (signed) every
 * AGENT_HEARTBEAT_MS until SIGINT or SIGTERM, when it stops every machine
 * before it exits (with --keep-machines it leaves them running, for the
 * next agent start to adopt: agent_run.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "agent.h"
#include "opts.h"
#include "encode.h"
#include "fs.h"
#include "http_client.h"
#include "log.h"
#include "mask_output.h"
#include "metrics_server.h"
#include "timescale.h"
#include "banned.h"

#define KEEPER_SELF_PATH "/v1/hosts/self"
#define API_REGISTER_PATH "/v1/hosts/register"
#define API_HEARTBEAT_PATH "/v1/hosts/heartbeat"
#define READY_FILE_MODE 0644
#define HOSTNAME_SIZE 256

struct opts {
	struct opts_values apis; /* --api, repeatable: the api replicas, tried in turn (endpoints.h) */
	char api_list[AGENT_URL_MAX]; /* them as one comma-separated list */
	const char *api_url;          /* api_list, once parsed */
	const char *keeper_url;
	const char *state_dir;
	const char *name;
	const char *ready_file;
	const char *log_level;
	const char *ca;
	const char *metrics_listen;
	char *join; /* points into argv; blanked once copied */
	int keep_machines;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	const struct opts_spec specs[] = {
		{ "join", 0, OPTS_VALUE, &o->join },		 { "api", 0, OPTS_LIST, &o->apis },
		{ "keeper", 0, OPTS_VALUE, &o->keeper_url },	 { "state-dir", 0, OPTS_VALUE, &o->state_dir },
		{ "name", 0, OPTS_VALUE, &o->name },		 { "ready-file", 0, OPTS_VALUE, &o->ready_file },
		{ "log-level", 0, OPTS_VALUE, &o->log_level }, { "ca", 0, OPTS_VALUE, &o->ca },
		{ "metrics-listen", 0, OPTS_VALUE, &o->metrics_listen },
		{ "keep-machines", 0, OPTS_FLAG, &o->keep_machines },
		{ NULL, 0, OPTS_FLAG, NULL }
	};
	return opts_parse_role("agent", specs, argc, argv, 1);
}

/*
 * The join token from --join (then blanked in argv, so ps no longer shows
 * it) or from AGENT_JOIN_ENV (then wiped and unset); *token stays NULL if
 * neither gives one.
 */
static enum coffer_err take_join_token(struct opts *o, struct secret **token)
{
	enum coffer_err rc = COFFER_OK;
	char *env = getenv(AGENT_JOIN_ENV);
	*token = NULL;
	if (o->join) {
		size_t n = strlen(o->join);
		rc = secret_from(o->join, n, token);
		sodium_memzero(o->join, n);
	}
	if (env) {
		size_t n = strlen(env);
		if (!*token && !rc && n)
			rc = secret_from(env, n, token);
		sodium_memzero(env, n);
		if (unsetenv(AGENT_JOIN_ENV) && !rc)
			rc = COFFER_ERR_INTERNAL;
	}
	return rc;
}

/* Sleeps up to ms; 1 if SIGINT or SIGTERM came. */
static int wait_signal(const sigset_t *set, uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	siginfo_t si;
	for (;;) {
		int sig = sigtimedwait(set, &si, &ts);
		if (sig == SIGINT || sig == SIGTERM) {
			log_info("agent_stopping", LF_I("signal", sig));
			return 1;
		}
		if (sig < 0 && errno == EINTR)
			continue;
		return 0;
	}
}

/* ---- readiness (metrics_server.h) ---- */

static struct metric *const agent_metrics[] = { &metric_peer_up, &metric_machines };

/* One peer's line; 1 when its last call got an answer. */
static int peer_line(struct buf *report, const char *peer)
{
	int seen = 0;
	int up = metrics_value(&metric_peer_up, &seen, peer) > 0;
	if (buf_addf(report, "%s: %s\n", peer, up ? "ok" : seen ? "unreachable" : "not reached yet"))
		return 0;
	return up;
}

/* Ready: the api and the keeper answered the agent's last call to each. */
static int agent_ready(void *ctx, struct buf *report)
{
	(void)ctx;
	int api = peer_line(report, "api");
	int keeper = peer_line(report, "keeper");
	return api && keeper;
}

static json_t *register_body(const struct agent_identity *id)
{
	char sign[B64URL_LEN(HOSTAUTH_PK_LEN) + 1], seal[B64URL_LEN(HOSTAUTH_PK_LEN) + 1],
		cert[B64URL_LEN(HOSTAUTH_CERT_LEN) + 1];
	sodium_bin2base64(sign, sizeof(sign), id->sign_pk, sizeof(id->sign_pk), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_bin2base64(seal, sizeof(seal), id->seal_pk, sizeof(id->seal_pk), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_bin2base64(cert, sizeof(cert), id->cert, sizeof(id->cert), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return json_pack("{s:s,s:s,s:s,s:s,s:s}", "host_id", id->host_id, "name", id->name, "sign_pk", sign, "seal_pk",
			 seal, "cert", cert);
}

/*
 * Calls until an answer that is not "unavailable" (the peer is starting or
 * restarting), or a signal (*stopped). Returns the last result.
 */
static enum coffer_err call_retrying(const struct agent_identity *id, const sigset_t *set, const char *url,
				     const char *method, const char *path, const json_t *body, json_t **answer,
				     char *msg, size_t msg_size, int *stopped)
{
	int warned = 0;
	for (;;) {
		enum coffer_err rc = agent_signed_call(id, url, method, path, body, answer, msg, msg_size);
		if (rc != COFFER_ERR_UNAVAILABLE)
			return rc;
		if (!warned++)
			log_warn("agent_peer_unavailable", LF_S("url", url), LF_S("path", path));
		if (wait_signal(set, AGENT_RETRY_MS)) {
			*stopped = 1;
			return rc;
		}
	}
}

static int run(struct opts *o, const sigset_t *set)
{
	struct agent_identity id;
	struct secret *join = NULL;
	char msg[AGENT_MESSAGE_MAX], host[HOSTNAME_SIZE];
	const char *name = o->name;
	json_t *body = NULL;
	struct agent_runner *runner = NULL;
	struct metrics_server *metrics = NULL;
	int created = 0, stopped = 0, ex = 0;
	enum coffer_err rc;

	memset(&id, 0, sizeof(id));
	rc = take_join_token(o, &join);
	if (rc) {
		ex = opts_fail(rc, "cannot read the join token");
		goto out;
	}
	if (!o->state_dir || !o->api_url || !o->keeper_url) {
		ex = opts_usage("agent");
		goto out;
	}
	rc = http_client_set_ca_file(o->ca);
	if (rc) {
		ex = opts_fail(rc, "cannot read the CA file '%s' (--ca): %s", o->ca, coffer_strerror(rc));
		goto out;
	}
	if (fs_disable_core_dumps()) {
		ex = opts_fail(COFFER_ERR_INTERNAL, "cannot disable core dumps");
		goto out;
	}
	rc = agent_identity_load(o->state_dir, &id, &created);
	if (rc == COFFER_ERR_FORBIDDEN) {
		ex = opts_fail(rc, "a key file in '%s' may be read or written by group or others; run 'chmod 600' on it",
			      o->state_dir);
		goto out;
	}
	if (rc) {
		ex = opts_fail(rc, "cannot load the host identity from '%s': %s", o->state_dir, coffer_strerror(rc));
		goto out;
	}
	if (created)
		log_info("agent_keys_created", LF_S("state_dir", o->state_dir));
	agent_peers_set_keeper(o->keeper_url);
	if (id.enrolled) {
		/* new keys pending (`coffer agent rotate-keys`): the keeper takes them before anything is signed */
		int rotated = 0;
		rc = agent_rotate_finish(o->state_dir, &id, o->keeper_url, &rotated, msg, sizeof(msg));
		if (rc) {
			ex = opts_fail(rc, "cannot move to the new host keys pending in '%s': %s", o->state_dir,
				      msg[0] ? msg : coffer_strerror(rc));
			goto out;
		}
		if (rotated)
			log_info("agent_keys_rotated", LF_S("host_id", id.host_id));
	}
	if (o->metrics_listen) {
		rc = metrics_server_start(o->metrics_listen, agent_metrics, sizeof(agent_metrics) / sizeof(agent_metrics[0]),
					  agent_ready, NULL, &metrics);
		if (rc) {
			ex = opts_fail(rc, "cannot listen on '%s' (--metrics-listen)", o->metrics_listen);
			goto out;
		}
	}

	if (!id.enrolled) {
		if (!join) {
			ex = opts_fail(COFFER_ERR_USAGE,
				      "this host is not enrolled yet: give --join TOKEN (from 'coffer keeper join-token')");
			goto out;
		}
		if (!name) {
			if (gethostname(host, sizeof(host)) != 0) {
				ex = opts_fail(COFFER_ERR_USAGE, "cannot read the host name: give --name NAME");
				goto out;
			}
			host[sizeof(host) - 1] = '\0';
			name = host;
		}
		rc = agent_enrol(o->state_dir, &id, o->keeper_url, join, name, msg, sizeof(msg));
		if (rc) {
			ex = opts_fail(rc, "cannot enrol with the keeper at %s: %s", o->keeper_url,
				      msg[0] ? msg : coffer_strerror(rc));
			goto out;
		}
		log_info("agent_enrolled", LF_S("host_id", id.host_id), LF_S("name", id.name));
	} else {
		if (join)
			log_info("agent_join_token_ignored", LF_S("reason", "already enrolled"), LF_S("host_id", id.host_id));
		if (o->name && strcmp(o->name, id.name) != 0)
			log_warn("agent_name_ignored", LF_S("reason", "enrolled under another name"), LF_S("name", id.name));
		/* The keeper must still know this host (its registry row verifies). */
		json_t *self = NULL;
		rc = call_retrying(&id, set, o->keeper_url, "GET", KEEPER_SELF_PATH, NULL, &self, msg, sizeof(msg),
				   &stopped);
		/* the key the api's answers are signed with comes from the keeper, afresh at every start */
		if (!rc && agent_identity_answer_key(&id, self)) {
			rc = COFFER_ERR_PROTOCOL;
			if (str_copy(msg, sizeof(msg), "its answer has no api answer key"))
				msg[0] = '\0';
		}
		json_decref(self);
		if (stopped)
			goto out;
		if (rc) {
			ex = opts_fail(rc, "the keeper at %s refuses this host: %s", o->keeper_url,
				      msg[0] ? msg : coffer_strerror(rc));
			goto out;
		}
	}
	secret_free(join);
	join = NULL;

	body = register_body(&id);
	if (!body) {
		ex = opts_fail(COFFER_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = call_retrying(&id, set, o->api_url, "POST", API_REGISTER_PATH, body, NULL, msg, sizeof(msg), &stopped);
	if (stopped)
		goto out;
	if (rc) {
		ex = opts_fail(rc, "the api at %s refuses to register this host: %s", o->api_url,
			      msg[0] ? msg : coffer_strerror(rc));
		goto out;
	}
	log_info("agent_registered", LF_S("host_id", id.host_id), LF_S("name", id.name), LF_S("api", o->api_url));
	if (o->ready_file) {
		char line[HOSTAUTH_HOST_ID_MAX + 2];
		if (fmt_into(line, sizeof(line), "%s\n", id.host_id) ||
		    fs_write_atomic(o->ready_file, line, strlen(line), READY_FILE_MODE, 0)) {
			ex = opts_fail(COFFER_ERR_IO, "cannot write the ready file '%s'", o->ready_file);
			goto out;
		}
	}

	json_decref(body);
	body = json_object();
	if (!body) {
		ex = opts_fail(COFFER_ERR_NOMEM, "out of memory");
		goto out;
	}
	struct agent_run_config rcfg = { &id, o->api_url, o->keeper_url, o->state_dir, o->keep_machines,
					 AGENT_MASK_EXE };
	rc = agent_runner_start(&rcfg, &runner);
	if (rc) {
		ex = opts_fail(rc, "cannot start running machines: %s", coffer_strerror(rc));
		goto out;
	}
	int failing = 0;
	while (!wait_signal(set, AGENT_HEARTBEAT_MS)) {
		rc = agent_signed_call(&id, o->api_url, "POST", API_HEARTBEAT_PATH, body, NULL, msg, sizeof(msg));
		if (rc && !failing)
			log_warn("agent_heartbeat_failed", LF_S("error", coffer_err_name(rc)), LF_S("message", msg));
		else if (!rc && failing)
			log_info("agent_heartbeat_ok");
		failing = rc != COFFER_OK;
	}
out:
	/* every machine is stopped before the agent exits, or left running with --keep-machines */
	agent_runner_stop(runner);
	metrics_server_stop(metrics);
	if (stopped || ex == 0)
		log_info("agent_stopped");
	json_decref(body);
	secret_free(join);
	agent_identity_release(&id);
	return ex;
}

/*
 * `coffer agent rotate-keys --state-dir DIR`: new host keys, pending until
 * the agent's next start moves to them (agent_rotate_begin). Run on the
 * host, as the agent's user; the running agent is not touched.
 */
static int run_rotate_keys(int argc, char **argv)
{
	const char *state_dir = NULL;
	struct agent_identity id;
	int pending = 0, ex;
	enum coffer_err rc;
	const struct opts_spec specs[] = { { "state-dir", 0, OPTS_VALUE, &state_dir }, { NULL, 0, OPTS_FLAG, NULL } };

	ex = opts_parse_role("agent", specs, argc, argv, 2);
	if (ex)
		return ex;
	if (!state_dir)
		return opts_usage("agent");
	if (fs_disable_core_dumps())
		return opts_fail(COFFER_ERR_INTERNAL, "cannot disable core dumps");
	rc = agent_identity_load(state_dir, &id, NULL);
	if (rc)
		return opts_fail(rc, "cannot load the host identity from '%s': %s", state_dir, coffer_strerror(rc));
	if (!id.enrolled) {
		agent_identity_release(&id);
		return opts_fail(COFFER_ERR_USAGE, "the host of '%s' is not enrolled: nothing to rotate", state_dir);
	}
	agent_identity_release(&id);
	rc = agent_rotate_begin(state_dir, &pending);
	if (rc)
		return opts_fail(rc, "cannot write new keys in '%s': %s", state_dir, coffer_strerror(rc));
	printf("%s in %s/%s: the agent moves to them when it next starts\n"
	       "(restart it; with --keep-machines, or after kill -9, its machines keep running).\n",
	       pending ? "New host keys are pending already" : "New host keys are pending", state_dir,
	       AGENT_PENDING_KEYS_FILE);
	return 0;
}

int cmd_agent(int argc, char **argv)
{
	struct opts o = { 0 };
	enum log_level level = LOG_INFO;
	sigset_t set;
	int ex;

	if (argc == 2 && strcmp(argv[1], MASK_OUTPUT_ARG) == 0)
		return agent_mask_output(); /* hidden: the machine output masker machine_start runs */
	log_set_role("agent");
	/* the enrolment body carries the join token: whatever jansson frees is wiped */
	json_use_wiping_allocator();
	if (argc >= 2 && strcmp(argv[1], "rotate-keys") == 0)
		return run_rotate_keys(argc, argv);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		(void)opts_usage("agent");
		return 0;
	}
	ex = parse_opts(argc, argv, &o);
	for (size_t i = 0; !ex && i < o.apis.n; i++) {
		size_t len = strlen(o.api_list);
		if (fmt_into(o.api_list + len, sizeof(o.api_list) - len, "%s%s", i ? "," : "", o.apis.v[i]))
			ex = opts_fail(COFFER_ERR_USAGE, "the --api URLs are too long together (%d bytes at most)",
				       AGENT_URL_MAX - 1);
		o.api_url = o.api_list;
	}
	if (!ex && o.log_level && log_level_parse(o.log_level, &level))
		ex = opts_fail(COFFER_ERR_USAGE, "unknown log level '%s'", o.log_level);
	if (ex) {
		if (o.join)
			sodium_memzero(o.join, strlen(o.join));
		char *env = getenv(AGENT_JOIN_ENV);
		if (env) {
			sodium_memzero(env, strlen(env));
			unsetenv(AGENT_JOIN_ENV);
		}
		return ex;
	}
	log_set_level(level);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return opts_fail(COFFER_ERR_INTERNAL, "cannot block signals");
	return run(&o, &set);
}
