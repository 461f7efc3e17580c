/*
 * agent_kms.c — a machine's KMS socket (agent_kms.h): admits the
 * machine's own processes only, and forwards their requests to the keeper.
 */
#include "agent_kms.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "encode.h"
#include "fs.h"
#include "json.h"
#include "kms.h"
#include "log.h"
#include "machine.h"
#include "monotime.h"
#include "banned.h"

#define KMS_ROOT_MODE 0711
#define KMS_DIR_MODE 0711 /* the agent's; passable by the machine's user, not listable nor writable */
#define KMS_BACKLOG 16
#define KMS_PATH_OP_MAX 32
#define KMS_ACCEPT_BACKOFF_MS 100

struct agent_kms {
	const struct agent_identity *id;
	const char *keeper_url;
	char machine[HOSTAUTH_HOST_ID_MAX + 1];
	char dir[AGENT_PATH_MAX];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uid_t uid;           /* the machine's user */
	int fd;              /* listening */
	int stop_pipe[2];    /* a byte on [1] ends the thread */
	pthread_mutex_t mu;
	pthread_cond_t cond; /* CLOCK_MONOTONIC; signalled when pid or closing change */
	int cond_ok;
	int closing;
	pid_t pid;           /* the machine's session; 0: nobody */
	pthread_t thread;
	int started;
	struct http_client *conn; /* the thread's kept connection to the keeper */
};

/* The machine's user: the agent's own, or MACHINE_USER_DEFAULT's when the agent is root (machine.h). */
static enum coffer_err machine_uid(uid_t *out)
{
	struct passwd pw, *res = NULL;
	char scratch[1024];
	if (geteuid() != 0) {
		*out = geteuid();
		return COFFER_OK;
	}
	if (getpwnam_r(MACHINE_USER_DEFAULT, &pw, scratch, sizeof(scratch), &res) != 0 || !res || res->pw_uid == 0)
		return COFFER_ERR_NOT_FOUND;
	*out = res->pw_uid;
	return COFFER_OK;
}

static void reply_line(int fd, const json_t *doc)
{
	struct buf b;
	buf_init_wiping(&b, KMS_LINE_MAX);
	if (json_dump_buf(doc, &b) == COFFER_OK && buf_add(&b, "\n", 1) == COFFER_OK) {
		for (size_t off = 0; off < b.len;) {
			ssize_t w = send(fd, b.ptr + off, b.len - off, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;
			off += (size_t)w;
		}
	}
	buf_release(&b);
}

static void reply_error(int fd, enum coffer_err code, const char *message)
{
	json_t *doc = json_pack("{s:{s:s,s:s}}", "error", "code", coffer_err_name(code), "message", message);
	if (doc)
		reply_line(fd, doc);
	json_decref(doc);
}

/* One request line (up to a newline or the end), at most KMS_LINE_MAX bytes. */
static enum coffer_err read_line(int fd, struct buf *line)
{
	char chunk[4096];
	enum coffer_err rc = COFFER_OK;
	for (;;) {
		ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = errno == EAGAIN || errno == EWOULDBLOCK ? COFFER_ERR_UNAVAILABLE : COFFER_ERR_IO;
			break;
		}
		if (r == 0)
			break;
		char *nl = memchr(chunk, '\n', (size_t)r);
		rc = buf_add(line, chunk, nl ? (size_t)(nl - chunk) : (size_t)r);
		if (rc || nl)
			break;
	}
	sodium_memzero(chunk, sizeof(chunk));
	return rc;
}

/* The peer is a process of the machine, as its user: 1, else 0 (logged). */
static int peer_admitted(struct agent_kms *k, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	const char *why = NULL;
	struct timespec until;
	/*
	 * The machine runs from its exec, a little before the agent knows its
	 * pid; one that calls at once waits for it, a bounded time (and a
	 * swap's new process the same).
	 */
	monotime_deadline_in(&until, AGENT_KMS_START_WAIT_MS);
	pthread_mutex_lock(&k->mu);
	while (k->pid <= 0 && !k->closing && pthread_cond_timedwait(&k->cond, &k->mu, &until) == 0)
		;
	pid_t session = k->pid;
	pthread_mutex_unlock(&k->mu);
	memset(&cred, 0, sizeof(cred));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
		why = "no peer credentials";
	else if (session <= 0)
		why = "the machine is not running";
	else if (cred.uid != k->uid)
		why = "peer is not the machine's user";
	else if (getsid(cred.pid) != session)
		why = "peer is not a process of the machine";
	if (!why)
		return 1;
	log_warn("kms.peer_refused", LF_S("machine", k->machine), LF_S("reason", why),
		 LF_I("peer_pid", cred.pid), LF_I("peer_uid", cred.uid));
	return 0;
}

/* One connection: one request forwarded to the keeper, one answer. */
static void serve(struct agent_kms *k, int fd)
{
	static const char *const allowed[] = { "op", "key", "data", "signature", NULL };
	struct timeval tv = { AGENT_KMS_READ_TIMEOUT_MS / 1000, (AGENT_KMS_READ_TIMEOUT_MS % 1000) * 1000 };
	char path[KMS_PATH_OP_MAX + 16], msg[AGENT_MESSAGE_MAX] = "";
	const char *op = NULL, *name = NULL;
	struct json_error jerr;
	json_t *req = NULL, *body = NULL, *ans = NULL;
	struct buf line;
	enum coffer_err rc;

	memset(&jerr, 0, sizeof(jerr));
	buf_init_wiping(&line, KMS_LINE_MAX);
	if (!peer_admitted(k, fd))
		goto out;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
		goto out;
	rc = read_line(fd, &line);
	if (rc) {
		reply_error(fd, rc == COFFER_ERR_TOO_LARGE ? rc : COFFER_ERR_INVALID,
			    rc == COFFER_ERR_TOO_LARGE ? "request over the limit" : "no complete request line");
		goto out;
	}
	req = json_loadb(line.ptr, line.len, 0, NULL);
	if (!req || !json_is_object(req)) {
		reply_error(fd, COFFER_ERR_INVALID, "the request is not a JSON object");
		goto out;
	}
	if (json_check_fields(req, allowed, &jerr) || json_get_string(req, "op", 1, &op, NULL, &jerr) ||
	    json_get_string(req, "key", 1, &name, NULL, &jerr) || !json_is_string(json_object_get(req, "data"))) {
		reply_error(fd, COFFER_ERR_INVALID, jerr.message[0] ? jerr.message : "'data' is missing");
		goto out;
	}
	if (!kms_op_known(op)) {
		reply_error(fd, COFFER_ERR_INVALID, "'op' must be sign, verify, encrypt or decrypt");
		goto out;
	}
	if (!kms_name_ok(name)) {
		reply_error(fd, COFFER_ERR_INVALID, "'key' must be 1 to 64 of A-Z a-z 0-9 _ . -");
		goto out;
	}
	/* the request as it came, naming this machine: only the agent says which machine asks */
	body = json_deep_copy(req);
	if (!body || json_object_del(body, "op") || json_object_set_new(body, "machine", json_string(k->machine)) ||
	    fmt_into(path, sizeof(path), "/v1/kms/%s", op)) {
		reply_error(fd, COFFER_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* kept: a machine that signs often pays for one TLS handshake, not one a request */
	rc = agent_signed_call_kept(k->id, k->keeper_url, "POST", path, body, AGENT_HTTP_TIMEOUT_MS, KMS_LINE_MAX,
				    &k->conn, &ans, msg, sizeof(msg));
	if (rc) {
		log_info("kms.refused", LF_S("machine", k->machine), LF_S("op", op), LF_S("key", name),
			 LF_S("error", coffer_err_name(rc)), LF_S("message", msg));
		reply_error(fd, rc, msg[0] ? msg : coffer_strerror(rc));
		goto out;
	}
	if (ans)
		reply_line(fd, ans);
out:
	/* the data, in the request and the copies jansson made of it */
	if (req && json_is_string(json_object_get(req, "data")))
		sodium_memzero((char *)json_string_value(json_object_get(req, "data")),
			       json_string_length(json_object_get(req, "data")));
	if (body && json_is_string(json_object_get(body, "data")))
		sodium_memzero((char *)json_string_value(json_object_get(body, "data")),
			       json_string_length(json_object_get(body, "data")));
	if (ans && json_is_string(json_object_get(ans, "data")))
		sodium_memzero((char *)json_string_value(json_object_get(ans, "data")),
			       json_string_length(json_object_get(ans, "data")));
	json_decref(ans);
	json_decref(body);
	json_decref(req);
	buf_release(&line);
}

static void *kms_main(void *arg)
{
	struct agent_kms *k = arg;
	struct pollfd p[2] = { { .fd = k->fd, .events = POLLIN }, { .fd = k->stop_pipe[0], .events = POLLIN } };
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int c = accept4(k->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			/* out of descriptors or memory: the connection stays queued and poll says so again at once */
			if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
				poll(&p[1], 1, KMS_ACCEPT_BACKOFF_MS);
			continue;
		}
		serve(k, c);
		close(c);
	}
	return NULL;
}

enum coffer_err agent_kms_open(const struct agent_identity *id, const char *keeper_url, const char *state_dir,
			       const char *machine_id, struct agent_kms **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char root[AGENT_PATH_MAX];
	struct agent_kms *k = calloc(1, sizeof(*k));
	enum coffer_err rc = k ? COFFER_OK : COFFER_ERR_NOMEM;
	int dfd = -1;

	if (rc)
		return rc;
	k->fd = k->stop_pipe[0] = k->stop_pipe[1] = -1;
	k->id = id;
	k->keeper_url = keeper_url;
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) == 0) {
		k->cond_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&k->cond, &ca) == 0;
		pthread_condattr_destroy(&ca);
	}
	if (!k->cond_ok) {
		pthread_mutex_destroy(&k->mu);
		free(k);
		return COFFER_ERR_NOMEM;
	}
	rc = str_copy(k->machine, sizeof(k->machine), machine_id);
	if (!rc)
		rc = machine_uid(&k->uid);
	if (!rc)
		rc = fmt_into(root, sizeof(root), "%s/%s", state_dir, AGENT_KMS_DIR);
	if (!rc)
		rc = fmt_into(k->dir, sizeof(k->dir), "%s/%s", root, machine_id);
	if (!rc)
		rc = fmt_into(k->path, sizeof(k->path), "%s/%s", k->dir, AGENT_KMS_SOCKET_NAME);
	if (rc)
		goto out;
	rc = fs_mkdir_p(root, KMS_ROOT_MODE);
	if (!rc && mkdir(k->dir, KMS_DIR_MODE) != 0 && errno != EEXIST)
		rc = COFFER_ERR_IO;
	if (rc)
		goto out;
	/*
	 * The folder stays the agent's: a folder the machine's user could write
	 * would let any process of that user (all apps' machines share it) swap
	 * the socket for a link between bind and chown. One left by an earlier
	 * agent is made ours again (through its descriptor, never by path) before
	 * its old socket goes.
	 */
	dfd = open(k->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || fchown(dfd, geteuid(), getegid()) != 0 || fchmod(dfd, KMS_DIR_MODE) != 0 ||
	    (unlinkat(dfd, AGENT_KMS_SOCKET_NAME, 0) != 0 && errno != ENOENT)) {
		rc = COFFER_ERR_IO;
		goto out;
	}
	memcpy(sa.sun_path, k->path, strlen(k->path) + 1);
	k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* the socket alone is the machine's user's (connect needs write on it); the name is not followed */
	if (k->fd < 0 || bind(k->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(k->fd, KMS_BACKLOG) != 0 ||
	    (geteuid() == 0 && fchownat(dfd, AGENT_KMS_SOCKET_NAME, k->uid, (gid_t)-1, AT_SYMLINK_NOFOLLOW) != 0) ||
	    pipe2(k->stop_pipe, O_CLOEXEC) != 0) {
		rc = COFFER_ERR_IO;
		goto out;
	}
	if (pthread_create(&k->thread, NULL, kms_main, k) != 0) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	k->started = 1;
	*out = k;
	k = NULL;
out:
	if (rc)
		log_warn("kms.socket_failed", LF_S("machine", machine_id), LF_S("path", k ? k->path : ""),
			 LF_S("error", coffer_err_name(rc)), LF_S("errno", strerror(errno)));
	if (dfd >= 0)
		close(dfd);
	agent_kms_close(k);
	return rc;
}

const char *agent_kms_path(const struct agent_kms *k)
{
	return k->path;
}

void agent_kms_set_pid(struct agent_kms *k, pid_t pid)
{
	pthread_mutex_lock(&k->mu);
	k->pid = pid;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->mu);
}

void agent_kms_close(struct agent_kms *k)
{
	if (!k)
		return;
	if (k->started) {
		ssize_t w;
		pthread_mutex_lock(&k->mu);
		k->closing = 1; /* a connection waiting for the pid stops waiting */
		pthread_cond_broadcast(&k->cond);
		pthread_mutex_unlock(&k->mu);
		do
			w = write(k->stop_pipe[1], "x", 1);
		while (w < 0 && errno == EINTR);
		pthread_join(k->thread, NULL);
	}
	if (k->fd >= 0) {
		close(k->fd);
		if (unlink(k->path) != 0 && errno != ENOENT)
			log_warn("kms.cleanup_failed", LF_S("path", k->path), LF_S("error", strerror(errno)));
		if (rmdir(k->dir) != 0 && errno != ENOENT)
			log_warn("kms.cleanup_failed", LF_S("path", k->dir), LF_S("error", strerror(errno)));
	}
	http_client_free(k->conn);
	if (k->stop_pipe[0] >= 0)
		close(k->stop_pipe[0]);
	if (k->stop_pipe[1] >= 0)
		close(k->stop_pipe[1]);
	if (k->cond_ok)
		pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->mu);
	free(k);
}
