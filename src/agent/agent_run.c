/*
 * agent_run.c — the agent's machines (docs/RUNPATH.md, "Agent <-> api" and
 * "Agent <-> keeper"): the long poll of the host's assignments, and the
 * reconcile loop that boots, adopts, restarts and stops machines and
 * reports their events. See the top of agent.h.
 *
 * Threads: the poll thread owns its copy of the host's signing key and
 * shares only `struct shared` (refcounted, so a long poll still waiting when
 * the agent stops can end by itself). The reconcile thread owns every
 * struct local and struct machine; nothing else touches them. The sender
 * thread posts the events the reconcile thread queues in `struct outbox`,
 * one at a time and in order, so no boot waits for a report.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <sodium.h>

#include "agent.h"
#include "agent_kms.h"
#include "agent_record.h"
#include "boottoken.h"
#include "deliver.h"
#include "buf.h"
#include "delivery.h"
#include "deployer.h"
#include "encode.h"
#include "fs.h"
#include "log.h"
#include "machine.h"
#include "monotime.h"
#include "timescale.h"
#include "banned.h"

#define ASSIGNMENTS_PATH "/v1/agent/assignments"
#define HOST_REVOKED_MESSAGE "host is revoked" /* the shared host gate's refusal (http_phase.c) */
#define REVOKED_GENERATION "0"                  /* the assignments a revoked host keeps: none */
#define MACHINES_PATH "/v1/agent/machines/"
#define KEEPER_OPEN_PATH "/v1/open"
#define WORK_DIR_NAME "work"
#define LOG_DIR_NAME "logs"
#define SECRETS_DIR_NAME "secrets" /* the tmpfs of the "file" delivery mode (deliver_files.c) */
#define FILES_MAX 16               /* a config's files (the api's RELEASE_FILES_MAX) */
#define GENERATION_MAX 64
#define SPEC_MAX AGENT_SPEC_MAX
#define CONFIG_DEPTH_MAX 8
#define REQUEST_PATH_MAX 512
#define TAIL_RAW_MAX ((size_t)256 << 10) /* masked tail before it is cut to AGENT_TAIL_MAX */
#define TOKEN_PAYLOAD_MAX 1024
#define ARGV_MAX 4096
#define ENV_PAIRS_MAX 4096
#define NFTW_FDS 16
#define MACHINES_DIR_MODE 0711
#define MS_PER_S 1000
#define NS_PER_MS 1000000L
#define NS_PER_US 1000L
#define US_PER_S 1000000

_Static_assert(AGENT_JTI_SIZE == BOOTTOKEN_JTI_SIZE, "a jti is 32 hex characters");
_Static_assert(DELIVERY_SPEC_HASH_SIZE == DEPLOYER_HASH_HEX_SIZE, "a spec hash is a deployer text hash");

/* ---- time ---- */

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * US_PER_S + ts.tv_nsec / NS_PER_US;
}

static int64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * MS_PER_S + ts.tv_nsec / NS_PER_MS;
}

/* A message, cut short if it must be (messages only: never a path or an id that must be whole). */
__attribute__((format(printf, 3, 4))) static void set_msg(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;
	if (!size)
		return;
	va_start(ap, fmt);
	if (vsnprintf(dst, size, fmt, ap) < 0)
		dst[0] = '\0';
	va_end(ap);
}

/* ---- boot tokens and deliveries ---- */

enum coffer_err agent_token_jti(const char *token, size_t token_len, char jti[AGENT_JTI_SIZE])
{
	const char *dot1, *dot2, *s;
	size_t n;
	struct buf payload;
	json_t *doc = NULL;
	enum coffer_err rc = COFFER_ERR_INVALID;

	buf_init(&payload, TOKEN_PAYLOAD_MAX);
	dot1 = token ? memchr(token, '.', token_len) : NULL;
	dot2 = dot1 ? memchr(dot1 + 1, '.', token_len - (size_t)(dot1 + 1 - token)) : NULL;
	if (!dot2 || b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload) ||
	    json_parse_limited(payload.ptr, payload.len, TOKEN_PAYLOAD_MAX, JSON_MAX_DEPTH_DEFAULT, &doc, NULL) ||
	    json_get_string(doc, "jti", 1, &s, &n, NULL) || n != BOOTTOKEN_JTI_LEN)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			goto out;
	memcpy(jti, s, n + 1);
	rc = COFFER_OK;
out:
	json_decref(doc);
	buf_release(&payload);
	return rc;
}

/* STATE/machines/<id>/<leaf> */
static enum coffer_err machine_dir(char out[AGENT_PATH_MAX], const char *state_dir, const char *id, const char *leaf)
{
	return fmt_into(out, AGENT_PATH_MAX, "%s/%s/%s/%s", state_dir, AGENT_MACHINES_DIR, id, leaf);
}

/*
 * The fields of an assignment the agent needs; strings borrowed from the
 * document. What it runs (cmd, env, grace) comes only from "config", the
 * release's config text as signed, whose hash the delivery must carry.
 */
struct assignment {
	const char *id;
	const char *app;
	const char *spec;
	int64_t release;
	const char *config; /* the text, as the api stored it */
	size_t config_len;
	json_t *parsed;     /* config parsed: owned (assignment_release) */
	int64_t grace_ms;
	json_t *cmd;        /* borrowed from parsed */
	json_t *env;        /* borrowed from parsed; NULL when none */
	json_t *files;      /* borrowed from parsed; NULL when none: [{"path","secret","mode"}] */
};

static void assignment_release(struct assignment *a)
{
	json_decref(a->parsed);
	a->parsed = NULL;
}

/* *a from entry m; assignment_release it after, whatever this returns. */
static enum coffer_err assignment_parse(const json_t *m, struct assignment *a)
{
	size_t n;
	memset(a, 0, sizeof(*a));
	a->grace_ms = AGENT_GRACE_DEFAULT_MS;
	if (json_get_string(m, "id", 1, &a->id, NULL, NULL) || !boottoken_id_ok(a->id) ||
	    json_get_string(m, "app", 1, &a->app, &n, NULL) || n == 0 || n >= AGENT_NAME_SIZE ||
	    json_get_string(m, "spec", 1, &a->spec, &n, NULL) || n == 0 || n > SPEC_MAX ||
	    json_get_int(m, "release", 1, 1, INT64_MAX, &a->release, NULL) ||
	    json_get_string(m, "config", 1, &a->config, &a->config_len, NULL) || a->config_len > AGENT_CONFIG_MAX ||
	    json_parse_limited(a->config, a->config_len, AGENT_CONFIG_MAX, CONFIG_DEPTH_MAX, &a->parsed, NULL) ||
	    json_get_int(a->parsed, "grace_ms", 0, 0, INT64_MAX / 2, &a->grace_ms, NULL) ||
	    json_get_array(a->parsed, "cmd", 1, &a->cmd, NULL) || json_array_size(a->cmd) == 0 ||
	    json_array_size(a->cmd) > ARGV_MAX || json_get_object(a->parsed, "env", 0, &a->env, NULL) ||
	    (a->env && json_object_size(a->env) > ENV_PAIRS_MAX) ||
	    json_get_array(a->parsed, "files", 0, &a->files, NULL) || json_array_size(a->files) > FILES_MAX)
		return COFFER_ERR_INVALID;
	for (size_t i = 0; i < json_array_size(a->files); i++) {
		const json_t *f = json_array_get(a->files, i);
		if (!json_is_string(json_object_get(f, "path")) || !json_is_string(json_object_get(f, "secret")) ||
		    !json_is_string(json_object_get(f, "mode")))
			return COFFER_ERR_INVALID;
	}
	for (size_t i = 0; i < json_array_size(a->cmd); i++) {
		const json_t *v = json_array_get(a->cmd, i);
		if (!json_is_string(v) || (i == 0 && json_string_length(v) == 0))
			return COFFER_ERR_INVALID;
	}
	return COFFER_OK;
}

/* What a delivery for a must be bound to: the hex SHA-256 of its config text, byte for byte. */
static void assignment_spec_hash(const struct assignment *a, char out[DELIVERY_SPEC_HASH_SIZE])
{
	deployer_hash_hex(a->config, a->config_len, out);
}

/*
 * Opens the delivery for machine a with the host's seal key; the message
 * says why not (never a value).
 */
static enum coffer_err open_delivery(const struct agent_identity *id, const struct assignment *a, const char *jti,
				     const void *sealed, size_t sealed_len, struct delivery_list *out, char *msg,
				     size_t msg_size)
{
	char hash[DELIVERY_SPEC_HASH_SIZE];
	assignment_spec_hash(a, hash);
	enum coffer_err rc = delivery_open(id->seal_sk, id->host_id, a->id, jti, hash, sealed, sealed_len, out);
	if (rc == COFFER_ERR_CRYPTO)
		set_msg(msg, msg_size, "%s",
			"cannot open the delivered secrets: they are not sealed for this machine's config "
			"(the config was changed after it was signed), host or boot token");
	else if (rc)
		set_msg(msg, msg_size, "cannot open the delivered secrets: %s", coffer_strerror(rc));
	return rc;
}

/*
 * STATE/machines, made 0711; when the agent is root its machines run as
 * another user, who must be able to pass through STATE to reach its work
 * dir: STATE (ours) gets o+x too (its key files stay 0600). A parent we do
 * not own is left alone; machine_start then says which folder it cannot
 * enter.
 */
static enum coffer_err prepare_machines_dir(const char *state_dir)
{
	char path[AGENT_PATH_MAX];
	struct stat st;
	enum coffer_err rc = fmt_into(path, sizeof(path), "%s/%s", state_dir, AGENT_MACHINES_DIR);
	if (!rc)
		rc = fs_mkdir_p(path, MACHINES_DIR_MODE);
	if (rc || geteuid() != 0)
		return rc;
	if (stat(path, &st) == 0 && (st.st_mode & S_IXOTH) == 0 && chmod(path, MACHINES_DIR_MODE) != 0)
		return COFFER_ERR_IO;
	if (stat(state_dir, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & S_IXOTH) == 0) {
		if (chmod(state_dir, (st.st_mode & 07777) | S_IXGRP | S_IXOTH) != 0)
			return COFFER_ERR_IO;
		log_info("agent_state_dir_searchable", LF_S("state_dir", state_dir),
			 LF_S("reason", "machines run as another user"));
	}
	return COFFER_OK;
}

/*
 * Called by boot_sealed once the delivery has opened for the assignment's
 * config, right before the machine starts: the swap stops the old process
 * there, so a delivery that does not open leaves it running.
 */
typedef void (*before_start_fn)(void *ctx);

/* The files of config a, as deliveries of the "file" mode; *out is calloc'd (NULL when none). */
static enum coffer_err file_deliveries(const struct assignment *a, struct machine_delivery **out, size_t *n)
{
	size_t k = json_array_size(a->files);
	struct machine_delivery *d = NULL;
	*out = NULL;
	*n = 0;
	if (!k)
		return COFFER_OK;
	if (!(d = calloc(k, sizeof(*d))))
		return COFFER_ERR_NOMEM;
	for (size_t i = 0; i < k; i++) {
		const json_t *f = json_array_get(a->files, i);
		const char *mode = json_string_value(json_object_get(f, "mode"));
		unsigned perm = 0;
		for (size_t j = 0; mode[j]; j++) {
			if (mode[j] < '0' || mode[j] > '7' || j >= 4) {
				free(d);
				return COFFER_ERR_INVALID;
			}
			perm = perm * 8 + (unsigned)(mode[j] - '0');
		}
		d[i] = (struct machine_delivery){ .secret = json_string_value(json_object_get(f, "secret")),
						  .mode = "file",
						  .target = json_string_value(json_object_get(f, "path")),
						  .perm = perm };
	}
	*out = d;
	*n = k;
	return COFFER_OK;
}

static enum coffer_err boot_sealed(const struct agent_identity *id, const char *state_dir, const char *mask_exe,
				   const json_t *m, const char *jti, const void *sealed, size_t sealed_len, before_start_fn before_start,
				   void *ctx, struct agent_kms *kms, struct machine **out, size_t *n_secrets,
				   struct machine_error *err)
{
	char work[AGENT_PATH_MAX], logs[AGENT_PATH_MAX], secrets_dir[AGENT_PATH_MAX];
	struct delivery_list list;
	struct assignment a;
	struct machine_delivery *deliveries = NULL;
	size_t n_deliveries = 0;
	const char **argv = NULL;
	struct machine_env *env = NULL;
	struct machine_secret *secrets = NULL;
	struct machine *mach = NULL;
	size_t n_env = 0, n_argv;
	enum coffer_err rc;

	delivery_list_init(&list);
	if (err)
		err->message[0] = '\0';
	rc = assignment_parse(m, &a);
	if (!rc && (state_dir[0] != '/' || !id->enrolled))
		rc = COFFER_ERR_INVALID;
	if (!rc && prepare_machines_dir(state_dir)) {
		rc = COFFER_ERR_IO;
		set_msg(err ? err->message : NULL, err ? sizeof(err->message) : 0, "cannot make the machines folder");
		goto out;
	}
	if (!rc)
		rc = machine_dir(work, state_dir, a.id, WORK_DIR_NAME);
	if (!rc)
		rc = machine_dir(logs, state_dir, a.id, LOG_DIR_NAME);
	if (!rc)
		rc = machine_dir(secrets_dir, state_dir, a.id, SECRETS_DIR_NAME);
	if (!rc)
		rc = file_deliveries(&a, &deliveries, &n_deliveries);
	if (rc) {
		if (err)
			set_msg(err->message, sizeof(err->message), "%s", "malformed assignment");
		goto out;
	}
	rc = open_delivery(id, &a, jti, sealed, sealed_len, &list, err ? err->message : NULL,
			   err ? sizeof(err->message) : 0);
	if (rc) {
		log_warn("machine.delivery_refused", LF_S("machine", a.id), LF_I("release", a.release),
			 LF_S("error", coffer_err_name(rc)));
		goto out;
	}
	n_argv = json_array_size(a.cmd);
	argv = calloc(n_argv + 1, sizeof(*argv));
	env = calloc(a.env ? json_object_size(a.env) + 1 : 1, sizeof(*env));
	secrets = calloc(list.n + 1, sizeof(*secrets));
	if (!argv || !env || !secrets) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_argv; i++)
		argv[i] = json_string_value(json_array_get(a.cmd, i));
	if (a.env) {
		const char *k;
		json_t *v;
		json_object_foreach(a.env, k, v) {
			if (!json_is_string(v)) {
				rc = COFFER_ERR_INVALID;
				if (err)
					set_msg(err->message, sizeof(err->message), "%s", "malformed assignment");
				goto out;
			}
			env[n_env].name = k;
			env[n_env].value = json_string_value(v);
			n_env++;
		}
	}
	for (size_t i = 0; i < list.n; i++) {
		secrets[i].name = list.items[i].name;
		secrets[i].value = list.items[i].value;
	}
	struct machine_spec spec = {
		.app = a.app,
		.machine_id = a.id,
		.release_version = a.release,
		.argv = argv,
		.env = env,
		.n_env = n_env,
		.secrets = secrets,
		.n_secrets = list.n,
		.deliveries = deliveries,
		.n_deliveries = n_deliveries,
		.work_dir = work,
		.log_dir = logs,
		.secrets_dir = secrets_dir,
		.user = NULL,
		.kms_socket = kms ? agent_kms_path(kms) : NULL,
		.mask_exe = mask_exe,
	};
	if (before_start)
		before_start(ctx);
	rc = machine_start(&spec, &mach, err);
	/* its socket admits it from now: a program may call `coffer kms` as it starts */
	if (!rc && kms)
		agent_kms_set_pid(kms, machine_pid(mach));
out:
	/* the values are wiped right after machine_start returns, whatever it did */
	if (secrets)
		sodium_memzero(secrets, (list.n + 1) * sizeof(*secrets));
	size_t n = list.n;
	delivery_list_release(&list);
	free(secrets);
	free(deliveries);
	free(env);
	free(argv);
	assignment_release(&a);
	if (rc)
		return rc;
	*out = mach;
	if (n_secrets)
		*n_secrets = n;
	return COFFER_OK;
}

enum coffer_err agent_boot_sealed(const struct agent_identity *id, const char *state_dir, const json_t *m,
				  const char *jti, const void *sealed, size_t sealed_len, struct machine **out,
				  size_t *n_secrets, struct machine_error *err)
{
	return boot_sealed(id, state_dir, NULL, m, jti, sealed, sealed_len, NULL, NULL, NULL, out, n_secrets, err);
}

/* ---- shared between the runner and the poll thread ---- */

struct shared {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	int refs;
	int stop;
	json_t *doc;  /* the newest assignments document */
	uint64_t seq; /* bumped with every new document */
};

static void shared_put(struct shared *sh)
{
	pthread_mutex_lock(&sh->mu);
	int last = --sh->refs == 0;
	pthread_mutex_unlock(&sh->mu);
	if (!last)
		return;
	json_decref(sh->doc);
	pthread_cond_destroy(&sh->cond);
	pthread_mutex_destroy(&sh->mu);
	free(sh);
}

static enum coffer_err shared_new(struct shared **out)
{
	pthread_condattr_t ca;
	struct shared *sh = calloc(1, sizeof(*sh));
	if (!sh)
		return COFFER_ERR_NOMEM;
	if (pthread_mutex_init(&sh->mu, NULL)) {
		free(sh);
		return COFFER_ERR_INTERNAL;
	}
	if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
	    pthread_cond_init(&sh->cond, &ca)) {
		pthread_mutex_destroy(&sh->mu);
		free(sh);
		return COFFER_ERR_INTERNAL;
	}
	pthread_condattr_destroy(&ca);
	sh->refs = 1;
	*out = sh;
	return COFFER_OK;
}

/* Waits up to ms unless stopped (mu held); returns stop. */
static int shared_sleep(struct shared *sh, int64_t ms)
{
	struct timespec ts;
	monotime_deadline_in(&ts, ms);
	while (!sh->stop) {
		if (pthread_cond_timedwait(&sh->cond, &sh->mu, &ts) == ETIMEDOUT)
			break;
	}
	return sh->stop;
}

/* Waits up to AGENT_TICK_MS for a document newer than seq, or stop (mu held). */
static void shared_wait_news(struct shared *sh, uint64_t seq)
{
	struct timespec ts;
	monotime_deadline_in(&ts, (int64_t)timescale_ms(AGENT_TICK_MS));
	while (!sh->stop && sh->seq == seq) {
		if (pthread_cond_timedwait(&sh->cond, &sh->mu, &ts) == ETIMEDOUT)
			break;
	}
}

/* ---- the poll thread ---- */

/* AGENT_POLL_WAIT_S scaled (timescale.h), in whole seconds, at least 1: the api's wait is in seconds. */
static int poll_wait_s(void)
{
	return (int)((timescale_ms((uint64_t)AGENT_POLL_WAIT_S * MS_PER_S) + MS_PER_S - 1) / MS_PER_S);
}

struct poller {
	struct shared *sh;
	struct agent_identity id; /* its own copy: sign_sk duplicated, seal_sk NULL */
	char api_url[AGENT_URL_MAX];
};

static int generation_ok(const char *g, size_t n)
{
	if (n == 0 || n > GENERATION_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((g[i] >= '0' && g[i] <= '9') || (g[i] >= 'a' && g[i] <= 'f') || (g[i] >= 'A' && g[i] <= 'F')))
			return 0;
	return 1;
}

static void *poll_main(void *arg)
{
	struct poller *p = arg;
	struct shared *sh = p->sh;
	char gen[GENERATION_MAX + 1] = "", path[REQUEST_PATH_MAX], msg[AGENT_MESSAGE_MAX];
	int failing = 0;

	for (;;) {
		json_t *doc = NULL, *machines = NULL;
		const char *g = NULL;
		size_t gn = 0;
		enum coffer_err rc;

		pthread_mutex_lock(&sh->mu);
		int stop = sh->stop;
		pthread_mutex_unlock(&sh->mu);
		if (stop)
			break;
		rc = fmt_into(path, sizeof(path), "%s?after=%s&wait=%d", ASSIGNMENTS_PATH, gen, poll_wait_s());
		if (!rc)
			rc = agent_signed_call_verified(&p->id, p->api_url, "GET", path, NULL, AGENT_POLL_TIMEOUT_MS,
							AGENT_ASSIGNMENTS_MAX, &doc, msg, sizeof(msg));
		if (!rc && (!doc || json_get_string(doc, "generation", 1, &g, &gn, NULL) || !generation_ok(g, gn) ||
			    json_get_array(doc, "machines", 1, &machines, NULL))) {
			rc = COFFER_ERR_PROTOCOL;
			set_msg(msg, sizeof(msg), "%s", "malformed assignments document");
		}
		if (rc == COFFER_ERR_UNAUTH && strstr(msg, HOST_REVOKED_MESSAGE) && strcmp(gen, REVOKED_GENERATION) != 0) {
			/*
			 * Revoked (`coffer hosts revoke`): the keeper opens nothing for
			 * this host any more and the api moved its machines, so it
			 * stops them all, as assignments without a machine would.
			 */
			json_t *none = json_pack("{s:s,s:[]}", "generation", REVOKED_GENERATION, "machines");
			if (none) {
				log_error("agent_host_revoked", LF_S("host_id", p->id.host_id),
					  LF_S("message", "this host is revoked: its machines are stopped"));
				memcpy(gen, REVOKED_GENERATION, sizeof(REVOKED_GENERATION));
				pthread_mutex_lock(&sh->mu);
				json_decref(sh->doc);
				sh->doc = none;
				sh->seq++;
				pthread_cond_broadcast(&sh->cond);
				pthread_mutex_unlock(&sh->mu);
			}
		}
		if (rc) {
			json_decref(doc);
			if (!failing)
				log_warn("agent_poll_failed", LF_S("error", coffer_err_name(rc)), LF_S("message", msg));
			failing = 1;
			pthread_mutex_lock(&sh->mu);
			stop = shared_sleep(sh, AGENT_RETRY_MS);
			pthread_mutex_unlock(&sh->mu);
			if (stop)
				break;
			continue;
		}
		if (failing)
			log_info("agent_poll_ok");
		failing = 0;
		if (strcmp(g, gen) == 0) {
			/* the same machines with fresh boot tokens: kept, nothing to wake the reconcile loop for */
			pthread_mutex_lock(&sh->mu);
			json_decref(sh->doc);
			sh->doc = doc;
			pthread_mutex_unlock(&sh->mu);
			continue;
		}
		memcpy(gen, g, gn + 1);
		log_debug("agent_assignments", LF_S("generation", gen), LF_I("machines", json_array_size(machines)));
		pthread_mutex_lock(&sh->mu);
		json_decref(sh->doc);
		sh->doc = doc;
		sh->seq++;
		pthread_cond_broadcast(&sh->cond);
		pthread_mutex_unlock(&sh->mu);
	}
	agent_identity_release(&p->id);
	shared_put(sh);
	free(p);
	return NULL;
}

/* ---- the reconcile loop ---- */

/* One machine this host knows: what runs (or last tried to), and its restart state. */
struct local {
	char id[BOOTTOKEN_ID_SIZE];
	char app[AGENT_NAME_SIZE];
	char spec[SPEC_MAX + 1];
	int64_t release;    /* the release it runs, or last tried to start */
	int64_t grace_ms;
	struct machine *m;  /* NULL when not running */
	struct agent_kms *kms; /* its KMS socket while it runs (agent_kms.h), or NULL */
	int swapping;       /* boot is replacing its process: the socket stays for the new one */
	int masked;         /* its running process's output goes through a masker (its record says so when adopted) */
	int64_t started_at; /* unix ms */
	int64_t up_since;   /* monotonic ms */
	unsigned restarts;
	int64_t next_try;   /* monotonic ms; no start before */
	int deferred;       /* its boot or swap waits for the keeper or the api: logged once */
	char used_jti[AGENT_JTI_SIZE]; /* the last assignment token its open took: spent at the keeper */
	int seen;
};

/* One event to post: the machine it is about and its body (owned). */
struct outgoing {
	struct outgoing *next;
	char machine[BOOTTOKEN_ID_SIZE];
	json_t *body;
};

/*
 * The events on their way to the api, oldest first. The reconcile thread
 * appends; the sender thread posts the head and takes it off once the api
 * took it (or refused it for good); a head the api cannot take now is
 * posted again after AGENT_RETRY_MS and everything behind it waits, so each
 * machine's events arrive in the order they happened. `hold` is set while
 * a boot is in flight (keeper open to exec): no post starts then, so the
 * api's store commit competes neither with the keeper's audited open (with
 * one SQLite file for both, one would wait on the other's write lock) nor
 * for the CPU with the fork and exec; `starting` goes right after.
 */
struct outbox {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	struct outgoing *head, *tail;
	size_t n;
	int hold;
	int closing; /* post what is queued once each, then end */
};

struct agent_runner {
	struct shared *sh;
	struct outbox out;
	int out_ready;
	pthread_t poll_thread, reconcile_thread, sender_thread;
	int poll_started, reconcile_started, sender_started;
	const struct agent_identity *id;
	char api_url[AGENT_URL_MAX];
	char keeper_url[AGENT_URL_MAX];
	char state_dir[AGENT_PATH_MAX];
	int keep_machines; /* at stop, leave the machines running for the next agent to adopt */
	char mask_exe[AGENT_PATH_MAX]; /* empty: no masker (no tail is reported then) */
	struct http_client *keeper_conn; /* the reconcile thread's kept connection to the keeper (its opens) */
	struct local **locals;
	size_t n_locals, cap_locals;
};

/* Posts one event; 1 when it is done with (taken, or refused for good). */
static int post_event(struct agent_runner *r, const char *machine_id, const json_t *body)
{
	char path[REQUEST_PATH_MAX], msg[AGENT_MESSAGE_MAX];
	const char *state = json_string_value(json_object_get(body, "state"));
	enum coffer_err rc = fmt_into(path, sizeof(path), MACHINES_PATH "%s/events", machine_id);
	if (!rc)
		rc = agent_signed_call(r->id, r->api_url, "POST", path, body, NULL, msg, sizeof(msg));
	if (rc == COFFER_OK)
		return 1;
	if (rc == COFFER_ERR_NOT_FOUND || rc == COFFER_ERR_CONFLICT) {
		log_debug("machine.event_refused", LF_S("machine", machine_id), LF_S("state", state),
			  LF_S("error", coffer_err_name(rc)));
		return 1;
	}
	log_warn("machine.event_failed", LF_S("machine", machine_id), LF_S("state", state),
		 LF_S("error", coffer_err_name(rc)), LF_S("message", msg));
	return rc == COFFER_ERR_UNAVAILABLE || rc == COFFER_ERR_INTERNAL || rc == COFFER_ERR_STORE ? 0 : 1;
}

static void outgoing_free(struct outgoing *e)
{
	json_decref(e->body);
	free(e);
}

/* Unlinks e (not the head) from o, whose entry before it is prev (mu held). */
static void outbox_unlink(struct outbox *o, struct outgoing *prev, struct outgoing *e)
{
	prev->next = e->next;
	if (o->tail == e)
		o->tail = prev;
	o->n--;
}

/* An event only to inform (starting, stopping): what goes first when the queue is full. */
static int informational(const json_t *body)
{
	const char *state = json_string_value(json_object_get(body, "state"));
	return state && (strcmp(state, "starting") == 0 || strcmp(state, "stopping") == 0);
}

/*
 * Makes room for one more event in a full queue (mu held): the oldest
 * starting/stopping behind the head goes; only a queue full of started,
 * stopped and failed events loses its oldest behind the head. 0 when the
 * new event itself is the one to drop (the head alone is queued).
 */
static int outbox_make_room(struct outbox *o)
{
	struct outgoing *prev = o->head, *e;
	for (e = prev ? prev->next : NULL; e; prev = e, e = e->next) {
		if (informational(e->body)) {
			outbox_unlink(o, prev, e);
			log_warn("machine.event_dropped", LF_S("machine", e->machine), LF_S("reason", "queue full"));
			outgoing_free(e);
			return 1;
		}
	}
	e = o->head ? o->head->next : NULL;
	if (!e)
		return 0;
	outbox_unlink(o, o->head, e);
	log_error("machine.event_dropped", LF_S("machine", e->machine), LF_S("reason", "queue full"));
	outgoing_free(e);
	return 1;
}

/* Queues an event for the sender thread (takes body); never waits for the api. */
static void report(struct agent_runner *r, struct local *l, json_t *body)
{
	struct outbox *o = &r->out;
	struct outgoing *e = body ? calloc(1, sizeof(*e)) : NULL;
	if (!e || str_copy(e->machine, sizeof(e->machine), l->id)) {
		log_error("machine.event_failed", LF_S("machine", l->id), LF_S("error", "out of memory"));
		free(e);
		json_decref(body);
		return;
	}
	e->body = body;
	pthread_mutex_lock(&o->mu);
	if (o->n >= AGENT_EVENTS_MAX && !outbox_make_room(o)) {
		pthread_mutex_unlock(&o->mu);
		log_error("machine.event_dropped", LF_S("machine", l->id), LF_S("reason", "queue full"));
		outgoing_free(e);
		return;
	}
	if (o->tail)
		o->tail->next = e;
	else
		o->head = e;
	o->tail = e;
	o->n++;
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->mu);
}

/* Holds (1) or lets go (0) the sender's next post: see struct outbox. */
static void outbox_hold(struct agent_runner *r, int on)
{
	pthread_mutex_lock(&r->out.mu);
	r->out.hold = on;
	if (!on)
		pthread_cond_broadcast(&r->out.cond);
	pthread_mutex_unlock(&r->out.mu);
}

static void *sender_main(void *arg)
{
	struct agent_runner *r = arg;
	struct outbox *o = &r->out;
	struct timespec ts;

	pthread_mutex_lock(&o->mu);
	for (;;) {
		while (!o->closing && (!o->head || o->hold))
			pthread_cond_wait(&o->cond, &o->mu);
		struct outgoing *e = o->head;
		if (!e)
			break; /* closing, and nothing left */
		int closing = o->closing;
		pthread_mutex_unlock(&o->mu);
		/* only this thread takes the head off, so e stays the head while it is posted */
		int done = post_event(r, e->machine, e->body) || closing;
		pthread_mutex_lock(&o->mu);
		if (done) {
			o->head = e->next;
			if (!o->head)
				o->tail = NULL;
			o->n--;
			outgoing_free(e);
			continue;
		}
		/* the api cannot take it now: again later, and the events behind it wait */
		monotime_deadline_in(&ts, AGENT_RETRY_MS);
		while (!o->closing) {
			if (pthread_cond_timedwait(&o->cond, &o->mu, &ts) == ETIMEDOUT)
				break;
		}
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

static enum coffer_err outbox_init(struct outbox *o)
{
	pthread_condattr_t ca;
	memset(o, 0, sizeof(*o));
	if (pthread_mutex_init(&o->mu, NULL))
		return COFFER_ERR_INTERNAL;
	if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
	    pthread_cond_init(&o->cond, &ca)) {
		pthread_mutex_destroy(&o->mu);
		return COFFER_ERR_INTERNAL;
	}
	pthread_condattr_destroy(&ca);
	return COFFER_OK;
}

/* Frees what the sender did not post (it has ended or never started). */
static void outbox_release(struct outbox *o)
{
	while (o->head) {
		struct outgoing *e = o->head;
		o->head = e->next;
		log_warn("machine.event_unsent", LF_S("machine", e->machine),
			 LF_S("state", json_string_value(json_object_get(e->body, "state"))));
		outgoing_free(e);
	}
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->mu);
}

static json_t *event(const char *state, int64_t release)
{
	return json_pack("{s:s,s:I}", "state", state, "release", (json_int_t)release);
}

static json_t *started_event(const struct local *l)
{
	json_t *e = event("started", l->release);
	if (e && json_object_set_new(e, "pid", json_integer(machine_pid(l->m))) == 0 &&
	    json_object_set_new(e, "started_at", json_integer(l->started_at)) == 0)
		return e;
	json_decref(e);
	return NULL;
}

/* Replaces what JSON cannot carry (invalid UTF-8) with '?'; appends to out. */
static enum coffer_err utf8_clean(const unsigned char *s, size_t n, struct buf *out)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		int ok = len != 0 && i + len <= n;
		uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
		for (size_t k = 1; ok && k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				ok = 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
			   cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)))
			ok = 0;
		enum coffer_err rc = ok ? buf_add(out, s + i, len) : buf_addch(out, '?');
		if (rc)
			return rc;
		i += ok ? len : 1;
	}
	return COFFER_OK;
}

/* The last AGENT_TAIL_MAX bytes of a masked tail, as a JSON string. */
static json_t *tail_json(const struct buf *masked)
{
	struct buf clean;
	json_t *j = NULL;
	size_t from = masked->len > AGENT_TAIL_MAX ? masked->len - AGENT_TAIL_MAX : 0;
	buf_init(&clean, AGENT_TAIL_MAX);
	if (utf8_clean((const unsigned char *)masked->ptr + from, masked->len - from, &clean) == COFFER_OK)
		j = json_stringn(clean.ptr, clean.len);
	buf_release(&clean);
	return j;
}

/* The document's boot token of m when it stays good for AGENT_TOKEN_MIN_LEFT_S more; NULL otherwise. */
static const char *doc_token(const json_t *m, size_t *len)
{
	const char *token = NULL;
	int64_t exp = 0;
	if (!m || json_get_string(m, "boot_token", 0, &token, len, NULL) || !token ||
	    json_get_int(m, "boot_token_exp", 1, 0, INT64_MAX, &exp, NULL) ||
	    exp - (int64_t)time(NULL) < AGENT_TOKEN_MIN_LEFT_S)
		return NULL;
	return token;
}

/* A boot token from the api's route (the fallback): borrowed from *answer, the caller's to json_decref. */
static enum coffer_err route_token(struct agent_runner *r, const char *machine_id, json_t **answer,
				   const char **token, size_t *token_len, char *msg, size_t msg_size, int *gone)
{
	char path[REQUEST_PATH_MAX], peer[AGENT_MESSAGE_MAX];
	json_t *body = json_object();
	enum coffer_err rc = body ? fmt_into(path, sizeof(path), MACHINES_PATH "%s/boot-token", machine_id)
				  : COFFER_ERR_NOMEM;
	peer[0] = '\0';
	if (!rc)
		rc = agent_signed_call_verified(r->id, r->api_url, "POST", path, body, AGENT_HTTP_TIMEOUT_MS,
						AGENT_RESPONSE_MAX, answer, peer, sizeof(peer));
	json_decref(body);
	if (rc) {
		*gone = rc == COFFER_ERR_NOT_FOUND || rc == COFFER_ERR_CONFLICT;
		set_msg(msg, msg_size, "cannot get a boot token: %s", peer[0] ? peer : coffer_strerror(rc));
		return rc;
	}
	if (!*answer || json_get_string(*answer, "token", 1, token, token_len, NULL)) {
		set_msg(msg, msg_size, "%s", "cannot get a boot token: malformed answer");
		return COFFER_ERR_PROTOCOL;
	}
	return COFFER_OK;
}

/* The keeper's open with token: the sealed delivery in *sealed, the token's jti in jti. */
static enum coffer_err keeper_open(struct agent_runner *r, const char *token, size_t token_len,
				   char jti[AGENT_JTI_SIZE], struct buf *sealed, char *msg, size_t msg_size, int *gone)
{
	char peer[AGENT_MESSAGE_MAX];
	json_t *body = NULL, *opened = NULL;
	const char *s = NULL;
	size_t n = 0;
	enum coffer_err rc;

	peer[0] = '\0';
	if (agent_token_jti(token, token_len, jti)) {
		set_msg(msg, msg_size, "%s", "cannot get a boot token: malformed token");
		return COFFER_ERR_PROTOCOL;
	}
	body = json_object();
	if (!body || json_object_set_new(body, "token", json_stringn(token, token_len))) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	/* over the kept connection: a boot pays no TCP and TLS handshake with the keeper */
	rc = agent_signed_call_kept(r->id, r->keeper_url, "POST", KEEPER_OPEN_PATH, body, AGENT_HTTP_TIMEOUT_MS,
				    AGENT_OPEN_ANSWER_MAX, &r->keeper_conn, &opened, peer, sizeof(peer));
	if (rc) {
		*gone = rc == COFFER_ERR_NOT_FOUND || rc == COFFER_ERR_CONFLICT;
		set_msg(msg, msg_size, "the keeper refused to open the secrets: %s",
			peer[0] ? peer : coffer_strerror(rc));
		goto out;
	}
	buf_reset(sealed);
	if (!opened || json_get_string(opened, "sealed", 1, &s, &n, NULL) || b64url_decode(s, n, sealed)) {
		rc = COFFER_ERR_PROTOCOL;
		set_msg(msg, msg_size, "%s", "the keeper sent a malformed delivery");
		goto out;
	}
out:
	json_decref(opened);
	json_decref(body);
	return rc;
}

/*
 * The keeper's open for machine_id: with the boot token of its assignment
 * m (may be NULL) while it stays good for AGENT_TOKEN_MIN_LEFT_S and was
 * not tried already (`used`: the jti of the last token this machine's open
 * took; the keeper spends a token at its first open), else (or when the
 * keeper refuses it with 401) with one from the api's route. The sealed
 * delivery in *sealed, the token's jti in jti and in used. On failure msg
 * gets the reason and *gone says the api or keeper says the machine is not
 * (or no longer) this host's: not a failure of the machine.
 */
static enum coffer_err open_secrets(struct agent_runner *r, const char *machine_id, const json_t *m,
				    char used[AGENT_JTI_SIZE], char jti[AGENT_JTI_SIZE], struct buf *sealed, char *msg,
				    size_t msg_size, int *gone)
{
	json_t *answer = NULL;
	const char *token;
	size_t token_len = 0;
	enum coffer_err rc;

	*gone = 0;
	msg[0] = '\0';
	token = doc_token(m, &token_len);
	if (token && (agent_token_jti(token, token_len, jti) || strcmp(jti, used) == 0))
		token = NULL; /* spent (or malformed): the route's */
	if (token) {
		memcpy(used, jti, AGENT_JTI_SIZE);
		rc = keeper_open(r, token, token_len, jti, sealed, msg, msg_size, gone);
		if (rc != COFFER_ERR_UNAUTH && rc != COFFER_ERR_PROTOCOL)
			return rc;
		log_info("machine.boot_token_refused", LF_S("machine", machine_id), LF_S("error", coffer_err_name(rc)),
			 LF_S("effect", "asking the api for another"));
		*gone = 0;
		msg[0] = '\0';
	}
	rc = route_token(r, machine_id, &answer, &token, &token_len, msg, msg_size, gone);
	if (!rc)
		rc = keeper_open(r, token, token_len, jti, sealed, msg, msg_size, gone);
	if (!rc)
		memcpy(used, jti, AGENT_JTI_SIZE);
	json_decref(answer);
	return rc;
}

static void schedule_retry(struct local *l, int64_t now)
{
	l->next_try = now + machine_backoff_ms(l->restarts);
	if (l->restarts < UINT_MAX)
		l->restarts++;
}

static void report_failed(struct agent_runner *r, struct local *l, int64_t release, const char *reason)
{
	json_t *e = event("failed", release);
	if (e && json_object_set_new(e, "tail", json_string(reason[0] ? reason : "failed to start")))
		e = (json_decref(e), NULL);
	report(r, l, e);
}

/* l's record (agent_record.h): what a later agent adopts the running machine by. */
static enum coffer_err record_write(struct agent_runner *r, const struct local *l)
{
	struct agent_record rec;
	memset(&rec, 0, sizeof(rec));
	if (str_copy(rec.id, sizeof(rec.id), l->id) || str_copy(rec.app, sizeof(rec.app), l->app) ||
	    str_copy(rec.spec, sizeof(rec.spec), l->spec))
		return COFFER_ERR_INVALID;
	rec.release = l->release;
	rec.grace_ms = l->grace_ms;
	rec.started_at = l->started_at;
	rec.ident = *machine_identity(l->m);
	rec.masked = l->masked;
	return agent_record_write(r->state_dir, &rec);
}

/*
 * Machine id's secret files, when a machine ends that this agent did not
 * start (adopted, or gone while no agent ran): the start that mounted them
 * cleans up its own (deliver.h), an earlier agent's is swept here.
 */
static void secrets_sweep(const char *state_dir, const char *id)
{
	char dir[AGENT_PATH_MAX];
	if (machine_dir(dir, state_dir, id, SECRETS_DIR_NAME) == COFFER_OK)
		deliver_files_sweep(dir);
}

/* l's machine is done with (ended, stopped or lost): freed, and its record goes. */
static void machine_gone(struct agent_runner *r, struct local *l)
{
	machine_free(l->m);
	l->m = NULL;
	l->masked = 0;
	if (l->swapping && l->kms) {
		agent_kms_set_pid(l->kms, 0); /* nobody until the new process runs */
	} else {
		agent_kms_close(l->kms); /* the socket goes with the machine */
		l->kms = NULL;
	}
	secrets_sweep(r->state_dir, l->id);
	agent_record_remove(r->state_dir, l->id);
}

static json_t *stop_machine(struct agent_runner *r, struct local *l, const char *why);

struct swap_ctx {
	struct agent_runner *r;
	struct local *l;
	const struct assignment *a;
	int64_t open_us;
};

/* The swap of boot: the old process goes once the new delivery has opened for the new config. */
static void swap_out(void *ctx)
{
	struct swap_ctx *sw = ctx;
	struct agent_runner *r = sw->r;
	struct local *l = sw->l;
	log_info("machine.replacing", LF_S("machine", l->id), LF_I("release", l->release),
		 LF_I("new_release", sw->a->release), LF_I("open_us", sw->open_us));
	report(r, l, event("stopping", l->release));
	json_decref(stop_machine(r, l, "replaced"));
	l->restarts = 0;
	l->release = sw->a->release;
	set_msg(l->app, sizeof(l->app), "%s", sw->a->app);
	set_msg(l->spec, sizeof(l->spec), "%s", sw->a->spec);
	report(r, l, event("starting", l->release));
}

/*
 * Boots l as assignment M says. When l still runs an earlier spec (open
 * first, then swap): the new secrets are fetched and opened first, and
 * only once they are (for this config) is the old process stopped and the
 * new one started; while they cannot be (keeper down, no token, a delivery
 * for another config), the old process keeps running.
 */
static void boot(struct agent_runner *r, struct local *l, const json_t *m, const struct assignment *a)
{
	char jti[AGENT_JTI_SIZE], msg[MACHINE_ERROR_MAX];
	struct machine_error err;
	struct buf sealed;
	size_t n_secrets = 0;
	int gone = 0, swap = l->m != NULL;
	int64_t t0 = mono_us();
	enum coffer_err rc;

	buf_init(&sealed, DELIVERY_SEALED_MAX);
	l->grace_ms = a->grace_ms;
	if (!swap) {
		l->release = a->release;
		set_msg(l->app, sizeof(l->app), "%s", a->app);
		set_msg(l->spec, sizeof(l->spec), "%s", a->spec);
		report(r, l, event("starting", l->release)); /* queued: the boot does not wait for it */
	}
	outbox_hold(r, 1);
	rc = open_secrets(r, l->id, m, l->used_jti, jti, &sealed, msg, sizeof(msg), &gone);
	int64_t open_us = mono_us() - t0;
	if (rc == COFFER_ERR_UNAVAILABLE || gone) {
		if (!l->deferred)
			log_warn(swap ? "machine.swap_deferred" : "machine.boot_deferred", LF_S("machine", l->id),
				 LF_I("release", a->release), LF_I("running_release", swap ? l->release : 0),
				 LF_S("error", coffer_err_name(rc)), LF_S("message", msg));
		l->deferred = 1;
		l->next_try = monotime_ms() +
			      (gone ? machine_backoff_ms(l->restarts) : AGENT_RETRY_MS);
		goto out;
	}
	l->deferred = 0;
	if (rc) {
		log_warn("machine.failed", LF_S("machine", l->id), LF_I("release", a->release),
			 LF_S("error", coffer_err_name(rc)), LF_S("reason", msg));
		report_failed(r, l, a->release, msg);
		schedule_retry(l, monotime_ms());
		goto out;
	}
	struct swap_ctx sw = { r, l, a, open_us };
	if (!l->kms && agent_kms_open(r->id, r->keeper_url, r->state_dir, l->id, &l->kms))
		l->kms = NULL; /* logged: the machine runs without a KMS socket */
	l->swapping = swap;
	rc = boot_sealed(r->id, r->state_dir, r->mask_exe[0] ? r->mask_exe : NULL, m, jti, sealed.ptr, sealed.len,
			 swap ? swap_out : NULL, &sw, l->kms, &l->m, &n_secrets, &err);
	l->swapping = 0;
	if (rc && !l->m) {
		agent_kms_close(l->kms);
		l->kms = NULL;
	}
	int64_t boot_us = mono_us() - t0;
	if (rc) {
		/* a delivery that did not open (another config) left the old process running, if any */
		log_warn("machine.failed", LF_S("machine", l->id), LF_I("release", a->release),
			 LF_S("error", coffer_err_name(rc)), LF_S("reason", err.message));
		report_failed(r, l, a->release, err.message);
		schedule_retry(l, monotime_ms());
		goto out;
	}
	l->started_at = unix_ms();
	l->up_since = monotime_ms();
	l->masked = machine_masked(l->m);
	/* on disk before it is reported: a machine no later agent could find would be a second one then */
	rc = record_write(r, l);
	if (rc) {
		log_error("machine.failed", LF_S("machine", l->id), LF_I("release", l->release),
			  LF_S("error", coffer_err_name(rc)), LF_S("reason", "cannot write its record"));
		machine_gone(r, l);
		report_failed(r, l, l->release, "the agent cannot write the machine's record");
		schedule_retry(l, monotime_ms());
		goto out;
	}
	log_info("machine.started", LF_S("machine", l->id), LF_I("release", l->release), LF_I("secrets", n_secrets),
		 LF_I("boot_us", boot_us), LF_I("open_us", open_us), LF_I("pid", machine_pid(l->m)),
		 LF_I("restarts", l->restarts));
	report(r, l, started_event(l));
out:
	outbox_hold(r, 0);
	buf_release(&sealed);
}

/*
 * The tail of l's run, read back from its log, which its masker wrote
 * masked (mask_output.h): no secret is needed, so none is opened again.
 * NULL unless this run's process was started with a masker (l->masked,
 * from its record when adopted): a run started without one, by this agent
 * or an older one, has raw values in its log, and nothing of it is sent.
 */
static json_t *masked_tail(struct local *l)
{
	struct buf out;
	json_t *tail = NULL;
	enum coffer_err rc;

	if (!l->masked) {
		log_info("machine.tail_withheld", LF_S("machine", l->id), LF_S("reason", "output not masked"));
		return NULL;
	}
	buf_init(&out, TAIL_RAW_MAX);
	rc = machine_tail(l->m, MACHINE_TAIL_LINES, NULL, 0, &out);
	if (rc == COFFER_ERR_TOO_LARGE) {
		buf_reset(&out);
		rc = buf_adds(&out, "(the last lines are too long to show)");
	}
	if (!rc)
		tail = tail_json(&out);
	else
		log_info("machine.tail_withheld", LF_S("machine", l->id), LF_S("error", coffer_err_name(rc)));
	buf_release(&out);
	return tail;
}

/* An adopted machine's exit status is unknown: its event carries none (the api records "stopped"). */
static json_t *exit_event(const char *state, int64_t release, const struct machine_exit *ex)
{
	json_t *e = event(state, release);
	if (e && !ex->unknown && json_object_set_new(e, ex->signal ? "exit_signal" : "exit_status",
				     json_integer(ex->signal ? ex->signal : ex->code)))
		e = (json_decref(e), NULL);
	return e;
}

/* l's machine ended on its own: report it with its masked tail, restart later. */
static void machine_ended(struct agent_runner *r, struct local *l, const struct machine_exit *ex)
{
	int64_t now = monotime_ms();
	log_info("machine.exited", LF_S("machine", l->id), LF_I("release", l->release), LF_I("exit_status", ex->code),
		 LF_I("exit_signal", ex->signal), LF_I("exit_unknown", ex->unknown), LF_I("runtime_ms", ex->runtime_ms));
	json_t *e = exit_event("stopped", l->release, ex);
	json_t *tail = masked_tail(l);
	if (e && tail && json_object_set_new(e, "tail", tail))
		e = (json_decref(e), NULL);
	else if (!e)
		json_decref(tail);
	machine_gone(r, l);
	report(r, l, e);
	if (now - l->up_since >= l->grace_ms)
		l->restarts = 0;
	schedule_retry(l, now);
}

/* Stops l's machine (SIGTERM, SIGKILL after the timeout); the `stopped` event to report. */
static json_t *stop_machine(struct agent_runner *r, struct local *l, const char *why)
{
	struct machine_exit ex;
	memset(&ex, 0, sizeof(ex));
	enum coffer_err rc = machine_stop(l->m, 0, &ex);
	if (rc)
		log_warn("machine.stopped", LF_S("machine", l->id), LF_I("release", l->release), LF_S("reason", why),
			 LF_S("error", coffer_err_name(rc)));
	else
		log_info("machine.stopped", LF_S("machine", l->id), LF_I("release", l->release), LF_S("reason", why),
			 LF_I("exit_status", ex.code), LF_I("exit_signal", ex.signal), LF_I("exit_unknown", ex.unknown));
	machine_gone(r, l);
	return rc ? event("stopped", l->release) : exit_event("stopped", l->release, &ex);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		log_warn("machine.cleanup_failed", LF_S("path", path), LF_S("error", strerror(errno)));
	return 0;
}

static void local_free(struct local *l)
{
	if (!l)
		return;
	agent_kms_close(l->kms);
	machine_free(l->m);
	free(l);
}

/* l is no longer this host's: stop it, report, forget it and remove its work dir (the logs stay). */
static void retire(struct agent_runner *r, struct local *l)
{
	char work[AGENT_PATH_MAX];
	json_t *stopped = NULL;
	if (l->m) {
		report(r, l, event("stopping", l->release));
		stopped = stop_machine(r, l, "unassigned");
	}
	if (machine_dir(work, r->state_dir, l->id, WORK_DIR_NAME) == COFFER_OK &&
	    nftw(work, rm_entry, NFTW_FDS, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 && errno != ENOENT)
		log_warn("machine.cleanup_failed", LF_S("machine", l->id), LF_S("error", strerror(errno)));
	/* reported once it is all gone; a 409 (destroyed) or 404 is fine */
	if (stopped)
		report(r, l, stopped);
	log_info("machine.forgotten", LF_S("machine", l->id));
	local_free(l);
}

static struct local *local_find(struct agent_runner *r, const char *id)
{
	for (size_t i = 0; i < r->n_locals; i++)
		if (strcmp(r->locals[i]->id, id) == 0)
			return r->locals[i];
	return NULL;
}

static struct local *local_add(struct agent_runner *r, const char *id)
{
	if (r->n_locals == r->cap_locals) {
		size_t cap = r->cap_locals ? r->cap_locals * 2 : 8;
		struct local **p = realloc(r->locals, cap * sizeof(*p));
		if (!p)
			return NULL;
		r->locals = p;
		r->cap_locals = cap;
	}
	struct local *l = calloc(1, sizeof(*l));
	if (!l || str_copy(l->id, sizeof(l->id), id)) {
		free(l);
		return NULL;
	}
	r->locals[r->n_locals++] = l;
	return l;
}

/* One assigned machine. */
static void reconcile_one(struct agent_runner *r, const json_t *m, const struct assignment *a)
{
	struct local *l = local_find(r, a->id);
	struct machine_exit ex;
	int64_t now = monotime_ms();

	if (!l) {
		l = local_add(r, a->id);
		if (!l) {
			log_error("machine.untracked", LF_S("machine", a->id), LF_S("error", "out of memory"));
			return;
		}
	}
	l->seen = 1;
	l->grace_ms = a->grace_ms;
	if (l->m) {
		enum coffer_err rc = machine_wait(l->m, 0, &ex);
		if (rc) {
			log_error("machine.lost", LF_S("machine", l->id), LF_S("error", coffer_err_name(rc)));
			machine_gone(r, l);
			schedule_retry(l, now);
		} else if (!ex.running) {
			machine_ended(r, l, &ex);
		} else if (strcmp(l->spec, a->spec) != 0) {
			/* another spec: open first, then swap (boot); the old one runs until then */
			if (now >= l->next_try)
				boot(r, l, m, a);
			return;
		} else {
			if (l->restarts && now - l->up_since >= l->grace_ms)
				l->restarts = 0;
			if (l->release != a->release) {
				log_info("machine.adopted", LF_S("machine", l->id), LF_I("release", a->release),
					 LF_I("previous_release", l->release));
				l->release = a->release;
				report(r, l, started_event(l));
			}
			return;
		}
	} else if (l->spec[0] && strcmp(l->spec, a->spec) != 0) {
		/* waiting to restart, and the spec changed: the new one starts now */
		l->restarts = 0;
		l->next_try = 0;
	}
	if (!l->m && monotime_ms() >= l->next_try)
		boot(r, l, m, a);
}

static void tick(struct agent_runner *r, const json_t *doc)
{
	json_t *machines = json_object_get(doc, "machines");
	size_t i;
	for (i = 0; i < r->n_locals; i++)
		r->locals[i]->seen = 0;
	for (i = 0; i < json_array_size(machines); i++) {
		const json_t *m = json_array_get(machines, i);
		struct assignment a;
		if (assignment_parse(m, &a)) {
			log_debug("agent_assignment_ignored", LF_S("reason", "malformed"));
			assignment_release(&a);
			continue;
		}
		reconcile_one(r, m, &a);
		assignment_release(&a);
	}
	for (i = 0; i < r->n_locals;) {
		struct local *l = r->locals[i];
		if (l->seen) {
			i++;
			continue;
		}
		r->locals[i] = r->locals[--r->n_locals];
		retire(r, l);
	}
	size_t up = 0;
	for (i = 0; i < r->n_locals; i++)
		up += r->locals[i]->m != NULL;
	agent_machines_seen(up, r->n_locals - up);
}

/*
 * At the agent's stop: SIGTERM to every machine at once, then each stopped
 * and reported; with keep_machines, each is left running (its record kept)
 * for the next agent to adopt, and nothing is reported.
 */
static void stop_all(struct agent_runner *r)
{
	size_t i;
	for (i = 0; i < r->n_locals && !r->keep_machines; i++)
		if (r->locals[i]->m)
			machine_signal(r->locals[i]->m, SIGTERM);
	for (i = 0; i < r->n_locals; i++) {
		struct local *l = r->locals[i];
		if (l->m && r->keep_machines) {
			log_info("machine.left_running", LF_S("machine", l->id), LF_I("release", l->release),
				 LF_I("pid", machine_pid(l->m)));
			machine_release(l->m);
			l->m = NULL;
		} else if (l->m) {
			report(r, l, stop_machine(r, l, "agent stopping"));
		}
		local_free(l);
	}
	free(r->locals);
	r->locals = NULL;
	r->n_locals = r->cap_locals = 0;
}

/*
 * Machine `id` of an earlier agent, from its record: adopted when its
 * process is still the one the record names (machine_adopt), and then
 * reported started again (the next tick keeps it, swaps it or reaps it as
 * the assignments say). A record whose process is gone or is another one
 * now (a recycled pid) is removed, and that process is never signalled.
 */
static void adopt_one(struct agent_runner *r, const char *id)
{
	char logs[AGENT_PATH_MAX];
	struct agent_record rec;
	struct machine_error err;
	struct machine *m = NULL;
	enum coffer_err rc = agent_record_read(r->state_dir, id, &rec);
	if (rc == COFFER_ERR_NOT_FOUND)
		return;
	if (!rc)
		rc = machine_dir(logs, r->state_dir, id, LOG_DIR_NAME);
	if (rc) {
		log_warn("machine.not_adopted", LF_S("machine", id), LF_S("error", coffer_err_name(rc)),
			 LF_S("reason", "unreadable record"));
		agent_record_remove(r->state_dir, id);
		return;
	}
	rc = machine_adopt(&rec.ident, logs, 0, 0, &m, &err);
	if (rc) {
		log_info("machine.not_adopted", LF_S("machine", id), LF_I("pid", rec.ident.pid),
			 LF_S("error", coffer_err_name(rc)), LF_S("reason", err.message));
		secrets_sweep(r->state_dir, id);
		agent_record_remove(r->state_dir, id);
		return;
	}
	struct local *l = local_find(r, id) ? NULL : local_add(r, id);
	if (!l) {
		/* cannot keep track of it: it must not run on unsupervised */
		log_error("machine.not_adopted", LF_S("machine", id), LF_S("error", "out of memory"));
		machine_free(m);
		secrets_sweep(r->state_dir, id);
		agent_record_remove(r->state_dir, id);
		return;
	}
	l->m = m;
	l->masked = rec.masked; /* an older agent's start, or one without the masker: its log is raw */
	/* its environment names the socket's path: the same path, served again */
	if (agent_kms_open(r->id, r->keeper_url, r->state_dir, id, &l->kms) == COFFER_OK)
		agent_kms_set_pid(l->kms, machine_pid(m));
	l->release = rec.release;
	l->grace_ms = rec.grace_ms;
	l->started_at = rec.started_at;
	int64_t up = unix_ms() - rec.started_at;
	l->up_since = monotime_ms() - (up > 0 ? up : 0);
	set_msg(l->app, sizeof(l->app), "%s", rec.app);
	set_msg(l->spec, sizeof(l->spec), "%s", rec.spec);
	log_info("machine.adopted", LF_S("machine", id), LF_I("release", l->release), LF_I("pid", machine_pid(m)),
		 LF_S("from", "an earlier agent"));
	report(r, l, started_event(l));
}

/* Every machine an earlier agent left running on this host (STATE/machines/<id>/run.json). */
static void adopt_all(struct agent_runner *r)
{
	char dir[AGENT_PATH_MAX];
	if (fmt_into(dir, sizeof(dir), "%s/%s", r->state_dir, AGENT_MACHINES_DIR))
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (boottoken_id_ok(e->d_name))
			adopt_one(r, e->d_name);
	closedir(d);
}

static void *reconcile_main(void *arg)
{
	struct agent_runner *r = arg;
	struct shared *sh = r->sh;
	uint64_t seen = 0;

	adopt_all(r);
	pthread_mutex_lock(&sh->mu);
	while (!sh->stop) {
		json_t *doc = json_incref(sh->doc);
		seen = sh->seq;
		pthread_mutex_unlock(&sh->mu);
		if (doc)
			tick(r, doc);
		json_decref(doc);
		pthread_mutex_lock(&sh->mu);
		shared_wait_news(sh, seen);
	}
	pthread_mutex_unlock(&sh->mu);
	stop_all(r);
	return NULL;
}

enum coffer_err agent_runner_start(const struct agent_run_config *cfg, struct agent_runner **out)
{
	struct agent_runner *r = NULL;
	struct poller *p = NULL;
	enum coffer_err rc = COFFER_OK;

	if (!cfg || !cfg->id || !cfg->id->enrolled || !cfg->api_url || !cfg->keeper_url || !cfg->state_dir)
		return COFFER_ERR_INVALID;
	r = calloc(1, sizeof(*r));
	p = calloc(1, sizeof(*p));
	if (!r || !p) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	r->id = cfg->id;
	r->keep_machines = cfg->keep_machines;
	if ((cfg->mask_exe && str_copy(r->mask_exe, sizeof(r->mask_exe), cfg->mask_exe)) ||
	    str_copy(r->api_url, sizeof(r->api_url), cfg->api_url) ||
	    str_copy(r->keeper_url, sizeof(r->keeper_url), cfg->keeper_url) ||
	    str_copy(p->api_url, sizeof(p->api_url), cfg->api_url)) {
		rc = COFFER_ERR_INVALID;
		goto out;
	}
	/* machine_start wants absolute folders */
	if (!realpath(cfg->state_dir, r->state_dir)) {
		rc = COFFER_ERR_IO;
		goto out;
	}
	p->id = *cfg->id;
	p->id.sign_sk = NULL;
	p->id.seal_sk = NULL;
	rc = secret_dup(cfg->id->sign_sk, &p->id.sign_sk);
	if (!rc)
		rc = shared_new(&r->sh);
	if (!rc)
		rc = outbox_init(&r->out);
	if (rc)
		goto out;
	r->out_ready = 1;
	if (pthread_create(&r->sender_thread, NULL, sender_main, r)) {
		rc = COFFER_ERR_INTERNAL;
		goto out;
	}
	r->sender_started = 1;
	p->sh = r->sh;
	r->sh->refs = 2;
	if (pthread_create(&r->poll_thread, NULL, poll_main, p)) {
		r->sh->refs = 1;
		rc = COFFER_ERR_INTERNAL;
		goto out;
	}
	p = NULL; /* the poll thread's now */
	r->poll_started = 1;
	if (pthread_create(&r->reconcile_thread, NULL, reconcile_main, r)) {
		rc = COFFER_ERR_INTERNAL;
		goto out;
	}
	r->reconcile_started = 1;
	log_info("agent_runner_started", LF_S("machines_dir", r->state_dir));
out:
	if (p) {
		agent_identity_release(&p->id);
		free(p);
	}
	if (rc) {
		agent_runner_stop(r);
		return rc;
	}
	*out = r;
	return COFFER_OK;
}

void agent_runner_stop(struct agent_runner *r)
{
	struct timespec ts;
	if (!r)
		return;
	if (r->sh) {
		pthread_mutex_lock(&r->sh->mu);
		r->sh->stop = 1;
		pthread_cond_broadcast(&r->sh->cond);
		pthread_mutex_unlock(&r->sh->mu);
	}
	if (r->reconcile_started)
		pthread_join(r->reconcile_thread, NULL);
	else
		stop_all(r);
	http_client_free(r->keeper_conn);
	r->keeper_conn = NULL;
	/* the stopped events stop_all queued: each posted once, then the sender ends */
	if (r->sender_started) {
		pthread_mutex_lock(&r->out.mu);
		r->out.closing = 1;
		pthread_cond_broadcast(&r->out.cond);
		pthread_mutex_unlock(&r->out.mu);
		pthread_join(r->sender_thread, NULL);
	}
	if (r->out_ready)
		outbox_release(&r->out);
	if (r->poll_started) {
		/* a long poll may be waiting on the api: give it a moment, then let it end alone */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)AGENT_POLL_JOIN_MS * NS_PER_MS;
		ts.tv_sec += ts.tv_nsec / (MS_PER_S * NS_PER_MS);
		ts.tv_nsec %= MS_PER_S * NS_PER_MS;
		if (pthread_timedjoin_np(r->poll_thread, NULL, &ts) != 0)
			pthread_detach(r->poll_thread);
	}
	if (r->sh)
		shared_put(r->sh);
	log_info("agent_runner_stopped");
	sodium_memzero(r, sizeof(*r));
	free(r);
}
