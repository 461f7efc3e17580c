#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "encode.h"
#include "log.h"
#include "metrics.h"
#include "monotime.h"
#include "parse.h"
#include "fs.h"
#include "secret.h"
#include "tls.h"
#include "banned.h"

#define METHOD_MAX 16             /* bytes of a method, NUL included */
#define CONTENT_TYPE_MAX 128      /* bytes of a reply content type, NUL included */
#define READY_HOST_SIZE 256
#define REPLY_MAX ((size_t)16 << 20) /* bytes of one reply body */
#define ALLOW_MAX 256             /* bytes of the Allow header of a 405 */
#define HOST_MAX 256              /* bytes of the listen host, NUL included */
#define PORT_TEXT_MAX 8           /* "65535" and a NUL */
#define STATUS_TEXT_MAX 8         /* an HTTP status (three digits) and a NUL, with room */
#define REQUEST_ID_BYTES (HTTP_REQUEST_ID_LEN / 2)
#define JSON_TYPE "application/json"

#define MS_PER_S 1000
#define NS_PER_MS 1000000L
#define NO_DEADLINE INT64_MAX
/*
 * The timer resumes parked requests in batches at least this far apart: it
 * walks every parked request under park_mu, and with 2,000 long polls each
 * due every RELEASE_POLL_RECHECK_MS a wake per deadline kept the lock (and
 * every park and wake waiting on it) busy. A deadline is met this much late
 * at most.
 */
#define PARK_TIMER_SLACK_MS 10

/* The reply used when even an error reply cannot be built. */
static const char fallback_body[] = "{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}";

struct http_server {
	struct MHD_Daemon *daemon;
	const struct http_route *routes;
	size_t n_routes;
	http_gate_fn gate;
	http_done_fn done;
	void *ctx;      /* the handlers' */
	void *hook_ctx; /* the gate's and done's */
	const char *metrics_role; /* NULL: requests not counted */
	const struct http_prefix_headers *prefix_headers; /* NULL: none */
	uint16_t port;
	int tls; /* serves HTTPS */
	unsigned drain_ms;
	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t idle;
	unsigned in_flight;
	uint64_t requests;
	uint64_t body_bytes_peak;
	unsigned threads;         /* the pool's size */
	unsigned max_connections; /* the limit in force */
	/* parking, under park_mu */
	struct http_request *parked; /* every request parked on this server */
	unsigned n_parked;
	int stopping;                /* http_server_stop began: no more parks */
	int timer_stop;
	int64_t timer_next_ms;       /* the deadline the timer sleeps until */
	pthread_cond_t timer_cv;
	pthread_t timer;
};

/* A wait queue (http_server.h); under park_mu. */
struct http_waitq {
	uint64_t gen;               /* bumped by every wake */
	struct http_request *head;  /* the requests parked on it */
};

/*
 * One lock for all parking. A parked request is on two lists, its server's
 * (deadlines, stop) and its queue's (wakes), and a queue is not tied to a
 * server: one lock keeps the order trivial, and parks and wakes are short.
 */
static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;

struct route_param {
	const char *name; /* in the route's pattern, not NUL-terminated */
	size_t name_len;
	char *value;
};

struct http_request {
	char *target; /* the request target as sent, query included; see on_uri */
	struct http_server *server;
	struct MHD_Connection *conn;
	struct timespec start;
	char id[HTTP_REQUEST_ID_LEN + 1];
	char remote[INET6_ADDRSTRLEN];
	char method[METHOD_MAX];
	char *path;
	int started;  /* the first call of the access handler happened */
	int gated;    /* the gate admitted the request already (HTTP_ROUTE_GATE_EARLY) */
	int admitted; /* the gate let it through: a resumed request goes straight to its handler */
	int park;     /* the handler asked to park (http_request_park) */
	struct http_waitq *park_q;
	uint64_t park_ticket;
	uint64_t park_key;     /* what http_waitq_wake_key wakes it for; 0: every wake */
	int64_t park_deadline; /* monotime_ms */
	int parked;            /* on the parking lists (under park_mu) */
	struct http_request *s_prev, *s_next, *q_prev, *q_next;
	int sent;     /* a response was queued (or the connection refused) */
	int status;   /* the status sent, for the access log */
	const struct http_route *route;
	struct route_param params[HTTP_ROUTE_MAX_PARAMS];
	size_t n_params;
	struct buf body;
	enum coffer_err body_rc; /* the body could not be kept: TOO_LARGE or NOMEM */
	size_t received;         /* body bytes read, kept or not */
	size_t discarded;
	int reply_status; /* 0: no reply yet */
	enum coffer_err reply_code; /* the code of an error reply; COFFER_OK otherwise */
	int done;                   /* the owner's done callback ran */
	struct buf reply;
	char content_type[CONTENT_TYPE_MAX];
	char *hdr_name[HTTP_REPLY_HEADERS_MAX];
	char *hdr_value[HTTP_REPLY_HEADERS_MAX];
	size_t n_hdrs;
	void *auth;
	void (*auth_release)(void *auth);
	char actor[HTTP_ACTOR_MAX];
};

/* ---- foreign codes ---- */

/* The one place an MHD result becomes a coffer code. */
static enum coffer_err from_mhd(enum MHD_Result r)
{
	return r == MHD_YES ? COFFER_OK : COFFER_ERR_IO;
}

/* ---- routes ---- */

/* The segment starting at s (after a '/') ends at the next '/' or NUL. */
static size_t segment_len(const char *s)
{
	const char *e = strchr(s, '/');
	return e ? (size_t)(e - s) : strlen(s);
}

/*
 * Matches path against pattern segment by segment; a :name segment takes
 * any non-empty segment. Records param positions in path on a match.
 */
static int route_match(const char *pattern, const char *path, size_t off[], size_t len[], size_t *n)
{
	const char *p = pattern, *u = path;
	size_t k = 0;
	if (*p != '/' || *u != '/')
		return 0;
	while (*p == '/' && *u == '/') {
		p++;
		u++;
		size_t pl = segment_len(p), ul = segment_len(u);
		if (*p == ':') {
			if (ul == 0 || k >= HTTP_ROUTE_MAX_PARAMS)
				return 0;
			off[k] = (size_t)(u - path);
			len[k] = ul;
			k++;
		} else if (pl != ul || memcmp(p, u, pl) != 0) {
			return 0;
		}
		p += pl;
		u += ul;
	}
	if (*p || *u)
		return 0;
	*n = k;
	return 1;
}

static enum coffer_err check_routes(const struct http_route *routes, size_t n, http_gate_fn gate)
{
	for (size_t i = 0; i < n; i++) {
		const struct http_route *r = &routes[i];
		size_t params = 0;
		if (!r->method || !*r->method || strlen(r->method) >= METHOD_MAX || !r->pattern ||
		    r->pattern[0] != '/' || !r->handler)
			return COFFER_ERR_INVALID;
		if ((r->flags & HTTP_ROUTE_AUTH) && !gate)
			return COFFER_ERR_INVALID;
		/* a host signs the body, so its gate waits for it; the handler's audit is an audit */
		if ((r->flags & HTTP_ROUTE_HOST) &&
		    (!(r->flags & HTTP_ROUTE_AUTH) || (r->flags & HTTP_ROUTE_GATE_EARLY)))
			return COFFER_ERR_INVALID;
		if ((r->flags & HTTP_ROUTE_AUDIT_HANDLER) && !(r->flags & HTTP_ROUTE_AUDIT))
			return COFFER_ERR_INVALID;
		for (const char *p = r->pattern; *p; p++) {
			if (p[0] == '/' && p[1] == ':') {
				if (p[2] == '/' || p[2] == '\0' || ++params > HTTP_ROUTE_MAX_PARAMS)
					return COFFER_ERR_INVALID;
			}
		}
	}
	return COFFER_OK;
}

/* ---- replies ---- */

static int has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

enum coffer_err http_reply(struct http_request *req, int status, const char *content_type, const void *data,
			   size_t len)
{
	enum coffer_err rc;
	if (status < 100 || status > 599 || (len && !data) || (len && !content_type) ||
	    (content_type && has_crlf(content_type)))
		return COFFER_ERR_INVALID;
	buf_reset(&req->reply);
	req->reply_status = 0;
	req->reply_code = COFFER_OK;
	rc = str_copy(req->content_type, sizeof(req->content_type), content_type ? content_type : "");
	if (rc)
		return rc;
	rc = buf_add(&req->reply, data, len);
	if (rc)
		return rc;
	req->reply_status = status;
	return COFFER_OK;
}

enum coffer_err http_reply_json(struct http_request *req, int status, const json_t *doc)
{
	enum coffer_err rc;
	if (status < 100 || status > 599 || !doc)
		return COFFER_ERR_INVALID;
	buf_reset(&req->reply);
	req->reply_status = 0;
	req->reply_code = COFFER_OK;
	rc = json_dump_buf(doc, &req->reply);
	if (rc)
		return rc;
	rc = str_copy(req->content_type, sizeof(req->content_type), JSON_TYPE);
	if (rc)
		return rc;
	req->reply_status = status;
	return COFFER_OK;
}

/* http_reply_error without the must-check, for the server's own replies. */
static enum coffer_err error_reply(struct http_request *req, enum coffer_err code, const char *message)
{
	enum coffer_err rc;
	json_t *doc;

	if (code == COFFER_OK || (unsigned)code >= COFFER_ERR__COUNT)
		code = COFFER_ERR_INTERNAL;
	if (!message || strlen(message) >= HTTP_ERROR_MESSAGE_MAX)
		message = coffer_strerror(code);
	doc = json_pack("{s:{s:s,s:s}}", "error", "code", coffer_err_name(code), "message", message);
	if (!doc) /* not UTF-8, or out of memory */
		doc = json_pack("{s:{s:s,s:s}}", "error", "code", coffer_err_name(code), "message",
				coffer_strerror(code));
	if (!doc)
		return COFFER_ERR_NOMEM;
	rc = http_reply_json(req, coffer_err_http_status(code), doc);
	json_decref(doc);
	if (!rc)
		req->reply_code = code;
	return rc ? rc : code;
}

enum coffer_err http_reply_error(struct http_request *req, enum coffer_err code, const char *message)
{
	return error_reply(req, code, message);
}

enum coffer_err http_reply_header(struct http_request *req, const char *name, const char *value)
{
	if (!name || !*name || !value || has_crlf(name) || has_crlf(value) || strchr(name, ':'))
		return COFFER_ERR_INVALID;
	if (req->n_hdrs >= HTTP_REPLY_HEADERS_MAX)
		return COFFER_ERR_TOO_LARGE;
	char *n = strdup(name), *v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return COFFER_ERR_NOMEM;
	}
	req->hdr_name[req->n_hdrs] = n;
	req->hdr_value[req->n_hdrs] = v;
	req->n_hdrs++;
	return COFFER_OK;
}

/* The owner's done callback, once per request that matched a route. */
static void notify_done(struct http_request *req, int status, enum coffer_err code)
{
	struct http_server *s = req->server;
	if (req->done || !req->route || !s->done)
		return;
	req->done = 1;
	s->done(req, req->route, status, code, s->hook_ctx);
}

/*
 * A reply body handed to libmicrohttpd without a copy, wiped when it is
 * done with it: a reply may carry a newly minted token.
 */
struct reply_block {
	char *ptr;
	size_t len;
};

static void reply_block_free(void *cls)
{
	struct reply_block *b = cls;
	sodium_memzero(b->ptr, b->len);
	free(b->ptr);
	free(b);
}

static struct MHD_Response *reply_response(struct http_request *req)
{
	struct reply_block *b = malloc(sizeof(*b));
	if (!b)
		return NULL;
	b->ptr = buf_detach(&req->reply, &b->len);
	if (!b->ptr) {
		free(b);
		return NULL;
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(b->len, b->ptr,
											   reply_block_free, b);
	if (!resp)
		reply_block_free(b);
	return resp;
}

/* The server's prefix headers onto resp when req's path is under the prefix. */
static enum coffer_err add_prefix_headers(const struct http_request *req, struct MHD_Response *resp)
{
	const struct http_prefix_headers *ph = req->server->prefix_headers;
	size_t n = ph ? strlen(ph->prefix) : 0;
	enum coffer_err rc = COFFER_OK;

	if (!ph || !req->path || strncmp(req->path, ph->prefix, n) != 0 || (req->path[n] && req->path[n] != '/'))
		return COFFER_OK;
	for (size_t i = 0; i < ph->n && !rc; i++)
		rc = from_mhd(MHD_add_response_header(resp, ph->headers[i][0], ph->headers[i][1]));
	return rc;
}

/* Queues the reply set on req (or an internal error if there is none). */
static enum MHD_Result send_reply(struct http_request *req)
{
	struct MHD_Response *resp = NULL;
	enum coffer_err rc;

	if (!req->reply_status)
		error_reply(req, COFFER_ERR_INTERNAL, NULL);
	notify_done(req, req->reply_status ? req->reply_status : 500,
		    req->reply_status ? req->reply_code : COFFER_ERR_INTERNAL);
	if (req->reply_status)
		resp = reply_response(req);
	if (!resp) {
		req->reply_status = 500;
		if (str_copy(req->content_type, sizeof(req->content_type), JSON_TYPE))
			req->content_type[0] = '\0';
		resp = MHD_create_response_from_buffer(sizeof(fallback_body) - 1, (void *)fallback_body,
						       MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
	}
	rc = from_mhd(MHD_add_response_header(resp, "X-Request-Id", req->id));
	if (!rc && req->content_type[0])
		rc = from_mhd(MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->content_type));
	if (!rc)
		rc = from_mhd(MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store"));
	if (!rc)
		rc = from_mhd(MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff"));
	for (size_t i = 0; i < req->n_hdrs && !rc; i++)
		rc = from_mhd(MHD_add_response_header(resp, req->hdr_name[i], req->hdr_value[i]));
	if (!rc)
		rc = add_prefix_headers(req, resp);
	if (!rc)
		rc = from_mhd(MHD_queue_response(req->conn, (unsigned)req->reply_status, resp));
	MHD_destroy_response(resp);
	req->sent = 1;
	req->status = req->reply_status;
	return rc ? MHD_NO : MHD_YES;
}

/* An error reply queued at once (before or instead of the handler). */
static enum MHD_Result refuse(struct http_request *req, enum coffer_err code, const char *message)
{
	error_reply(req, code, message);
	return send_reply(req);
}

/* ---- requests ---- */

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static struct http_request *request_new(struct http_server *s)
{
	unsigned char raw[REQUEST_ID_BYTES];
	struct http_request *req = calloc(1, sizeof(*req));
	if (!req)
		return NULL;
	req->server = s;
	clock_gettime(CLOCK_MONOTONIC, &req->start);
	randombytes_buf(raw, sizeof(raw));
	if (hex_encode(raw, sizeof(raw), req->id, sizeof(req->id))) {
		free(req);
		return NULL;
	}
	buf_init_wiping(&req->body, 0);
	buf_init_wiping(&req->reply, REPLY_MAX); /* a minted token passes through it */
	pthread_mutex_lock(&s->lock);
	s->in_flight++;
	pthread_mutex_unlock(&s->lock);
	return req;
}

/*
 * Never parked here: a suspended connection does not time out or see its
 * client go, and the server resumes every one before it stops. (No park_mu
 * here either: libmicrohttpd may call this with its own locks held, and
 * unpark takes them under park_mu.)
 */
static void request_free(struct http_request *req)
{
	struct http_server *s = req->server;
	if (req->auth_release)
		req->auth_release(req->auth);
	for (size_t i = 0; i < req->n_params; i++)
		free(req->params[i].value);
	for (size_t i = 0; i < req->n_hdrs; i++) {
		free(req->hdr_name[i]);
		free(req->hdr_value[i]);
	}
	buf_release(&req->body);
	buf_release(&req->reply);
	free(req->path);
	free(req->target);
	free(req);
	pthread_mutex_lock(&s->lock);
	s->in_flight--;
	s->requests++;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

static const char *end_name(enum MHD_RequestTerminationCode toe)
{
	switch (toe) {
	case MHD_REQUEST_TERMINATED_COMPLETED_OK: return "ok";
	case MHD_REQUEST_TERMINATED_WITH_ERROR: return "error";
	case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED: return "timeout";
	case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN: return "shutdown";
	case MHD_REQUEST_TERMINATED_READ_ERROR: return "read_error";
	case MHD_REQUEST_TERMINATED_CLIENT_ABORT: return "client_abort";
	default: return "unknown";
	}
}

/* The one access-log line of a request: no query, no header value, no body. */
static void log_request(const struct http_request *req, enum MHD_RequestTerminationCode toe)
{
	char path[HTTP_LOG_PATH_MAX + 1];
	size_t n = req->path ? strlen(req->path) : 0;
	if (n > HTTP_LOG_PATH_MAX)
		n = HTTP_LOG_PATH_MAX;
	if (n)
		memcpy(path, req->path, n);
	path[n] = '\0';
	const char *route = "-";
	if (req->route)
		route = req->route->name ? req->route->name : req->route->pattern;
	log_info("http_request", LF_S("method", req->method[0] ? req->method : "-"), LF_S("route", route),
		 LF_S("path", n ? path : "-"), LF_I("status", req->status), LF_I("ms", (int64_t)ms_since(&req->start)),
		 LF_S("request_id", req->id), LF_S("actor", req->actor[0] ? req->actor : "-"),
		 LF_S("remote", req->remote[0] ? req->remote : "-"), LF_I("bytes_in", req->received),
		 LF_S("end", end_name(toe)));
}

static void set_remote(struct http_request *req)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	const void *addr = NULL;
	if (!sa)
		return;
	if (sa->sa_family == AF_INET)
		addr = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		addr = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (!addr || !inet_ntop(sa->sa_family, addr, req->remote, sizeof(req->remote)))
		req->remote[0] = '\0';
}

/*
 * First call, once the headers are in: copy what the log needs, match the
 * route, and refuse a declared body over the limit before it is read.
 */
static enum MHD_Result request_begin(struct http_request *req, const char *url, const char *method)
{
	struct http_server *s = req->server;
	size_t off[HTTP_ROUTE_MAX_PARAMS], len[HTTP_ROUTE_MAX_PARAMS], n = 0;
	int path_known = 0;
	enum coffer_err rc = COFFER_OK;
	struct buf allow; /* the methods of the path, for a 405 */

	set_remote(req);
	if (str_copy(req->method, sizeof(req->method), method))
		return refuse(req, COFFER_ERR_INVALID, "method too long");
	req->path = strdup(url);
	if (!req->path)
		return refuse(req, COFFER_ERR_NOMEM, NULL);

	buf_init(&allow, ALLOW_MAX);
	for (size_t i = 0; i < s->n_routes; i++) {
		const struct http_route *r = &s->routes[i];
		size_t o[HTTP_ROUTE_MAX_PARAMS], l[HTTP_ROUTE_MAX_PARAMS], k;
		if (!route_match(r->pattern, req->path, o, l, &k))
			continue;
		path_known = 1;
		if (strcmp(r->method, req->method) == 0 && !req->route) {
			req->route = r;
			n = k;
			memcpy(off, o, k * sizeof(o[0]));
			memcpy(len, l, k * sizeof(l[0]));
		}
		if (!rc && !strstr(allow.ptr, r->method)) {
			rc = buf_adds(&allow, allow.len ? ", " : "");
			if (!rc)
				rc = buf_adds(&allow, r->method);
		}
	}
	if (!req->route && path_known) {
		if (!rc && allow.len)
			rc = http_reply_header(req, "Allow", allow.ptr);
		buf_release(&allow);
		if (rc == COFFER_ERR_NOMEM)
			return refuse(req, rc, NULL);
		error_reply(req, COFFER_ERR_INVALID, "method not allowed");
		req->reply_status = 405;
		return send_reply(req);
	}
	buf_release(&allow);
	if (!req->route)
		return refuse(req, COFFER_ERR_NOT_FOUND, "no such route");

	/* Param names point into the pattern, values are copied out of the path. */
	for (size_t i = 0; i < n; i++) {
		const char *p = req->route->pattern;
		size_t seen = 0;
		for (; *p; p++)
			if (p[0] == '/' && p[1] == ':' && seen++ == i)
				break;
		req->params[i].name = p + 2;
		req->params[i].name_len = segment_len(p + 1) - 1;
		req->params[i].value = strndup(req->path + off[i], len[i]);
		req->n_params = i + 1;
		if (!req->params[i].value)
			return refuse(req, COFFER_ERR_NOMEM, NULL);
	}

	buf_init_wiping(&req->body, req->route->max_body);
	const char *cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t declared;
	if (cl) {
		if (parse_uint64(cl, UINT64_MAX, &declared))
			return refuse(req, COFFER_ERR_INVALID, "invalid content-length");
		if (declared > req->route->max_body)
			return refuse(req, COFFER_ERR_TOO_LARGE, "request body too large");
	}
	if ((req->route->flags & HTTP_ROUTE_GATE_EARLY) && req->server->gate) {
		enum coffer_err rc = req->server->gate(req, req->route, req->server->hook_ctx);
		if (rc || req->reply_status) { /* refused before any body byte is read */
			if (rc && req->reply_status < 400)
				error_reply(req, rc, NULL);
			return send_reply(req);
		}
		req->gated = 1;
	}
	return MHD_YES;
}

/* A piece of the body: kept up to the route's limit, then counted and dropped. */
static enum MHD_Result request_body(struct http_request *req, const char *data, size_t size)
{
	req->received += size;
	if (!req->body_rc) {
		enum coffer_err rc = buf_add(&req->body, data, size);
		if (!rc)
			return MHD_YES;
		req->body_rc = rc;
		buf_release(&req->body);
	}
	if (size > HTTP_BODY_DISCARD_MAX - req->discarded) {
		/* Too much to drain: close without an answer (the log says 413). */
		req->sent = 1;
		req->status = coffer_err_http_status(req->body_rc);
		notify_done(req, req->status, req->body_rc);
		return MHD_NO;
	}
	req->discarded += size;
	return MHD_YES;
}

/* ---- parking ---- */

/* Takes req off both lists; park_mu held. */
static void park_unlink(struct http_request *req)
{
	struct http_server *s = req->server;
	if (req->s_prev)
		req->s_prev->s_next = req->s_next;
	else
		s->parked = req->s_next;
	if (req->s_next)
		req->s_next->s_prev = req->s_prev;
	if (req->park_q) {
		if (req->q_prev)
			req->q_prev->q_next = req->q_next;
		else
			req->park_q->head = req->q_next;
		if (req->q_next)
			req->q_next->q_prev = req->q_prev;
	}
	req->s_prev = req->s_next = req->q_prev = req->q_next = NULL;
	req->park_q = NULL;
	req->parked = 0;
	s->n_parked--;
}

/* Runs a parked request's handler again; park_mu held. req may be gone once this returns. */
static void unpark(struct http_request *req)
{
	struct MHD_Connection *conn = req->conn;
	park_unlink(req);
	MHD_resume_connection(conn);
}

/* After the handler asked to park: suspend, then list it, unless it must run again at once. */
static void park_now(struct http_request *req)
{
	struct http_server *s = req->server;
	struct http_waitq *q = req->park_q;

	MHD_suspend_connection(req->conn);
	pthread_mutex_lock(&park_mu);
	if (s->stopping || (q && q->gen != req->park_ticket)) {
		/* stopping, or woken since the ticket: the handler runs again now */
		req->park_q = NULL;
		pthread_mutex_unlock(&park_mu);
		MHD_resume_connection(req->conn);
		return;
	}
	req->s_next = s->parked;
	if (s->parked)
		s->parked->s_prev = req;
	s->parked = req;
	if (q) {
		req->q_next = q->head;
		if (q->head)
			q->head->q_prev = req;
		q->head = req;
	}
	req->parked = 1;
	s->n_parked++;
	if (req->park_deadline < s->timer_next_ms)
		pthread_cond_signal(&s->timer_cv);
	pthread_mutex_unlock(&park_mu);
}

/* Resumes the requests whose deadline passed, then sleeps until the next one (or a new park). */
static void *timer_main(void *arg)
{
	struct http_server *s = arg;
	pthread_mutex_lock(&park_mu);
	while (!s->timer_stop) {
		int64_t now = monotime_ms(), next = NO_DEADLINE;
		struct http_request *r = s->parked, *n;
		for (; r; r = n) {
			n = r->s_next;
			if (r->park_deadline < now) /* strictly: ms are truncated, the handler must see its time up */
				unpark(r);
			else if (r->park_deadline < next)
				next = r->park_deadline;
		}
		if (next != NO_DEADLINE && next < now + PARK_TIMER_SLACK_MS)
			next = now + PARK_TIMER_SLACK_MS;
		s->timer_next_ms = next;
		if (next == NO_DEADLINE) {
			pthread_cond_wait(&s->timer_cv, &park_mu);
		} else {
			next++;
			struct timespec until = { (time_t)(next / MS_PER_S), (long)(next % MS_PER_S) * NS_PER_MS };
			pthread_cond_timedwait(&s->timer_cv, &park_mu, &until);
		}
	}
	pthread_mutex_unlock(&park_mu);
	return NULL;
}

enum coffer_err http_waitq_new(struct http_waitq **out)
{
	struct http_waitq *q = calloc(1, sizeof(*q));
	if (!q)
		return COFFER_ERR_NOMEM;
	*out = q;
	return COFFER_OK;
}

/* park_mu held. key 0 wakes every request parked on q, else those parked for key (or for any). */
static void wake_locked(struct http_waitq *q, uint64_t key)
{
	struct http_request *r, *n;
	q->gen++;
	for (r = q->head; r; r = n) {
		n = r->q_next;
		if (key == 0 || r->park_key == 0 || r->park_key == key)
			unpark(r);
	}
}

void http_waitq_free(struct http_waitq *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&park_mu);
	wake_locked(q, 0);
	pthread_mutex_unlock(&park_mu);
	free(q);
}

uint64_t http_waitq_ticket(struct http_waitq *q)
{
	uint64_t gen;
	if (!q)
		return 0;
	pthread_mutex_lock(&park_mu);
	gen = q->gen;
	pthread_mutex_unlock(&park_mu);
	return gen;
}

void http_waitq_wake_key(struct http_waitq *q, uint64_t key)
{
	if (!q)
		return;
	pthread_mutex_lock(&park_mu);
	wake_locked(q, key);
	pthread_mutex_unlock(&park_mu);
}

void http_waitq_wake(struct http_waitq *q)
{
	http_waitq_wake_key(q, 0);
}

enum coffer_err http_request_park(struct http_request *req, struct http_waitq *q, uint64_t ticket,
				  int64_t timeout_ms)
{
	return http_request_park_key(req, q, ticket, timeout_ms, 0);
}

enum coffer_err http_request_park_key(struct http_request *req, struct http_waitq *q, uint64_t ticket,
				      int64_t timeout_ms, uint64_t key)
{
	int stopping;
	if (!req || timeout_ms < 0 || timeout_ms > NO_DEADLINE / 2)
		return COFFER_ERR_INVALID;
	pthread_mutex_lock(&park_mu);
	stopping = req->server->stopping;
	pthread_mutex_unlock(&park_mu);
	if (stopping)
		return COFFER_ERR_UNAVAILABLE;
	req->park = 1;
	req->park_q = q;
	req->park_ticket = ticket;
	req->park_key = key;
	req->park_deadline = monotime_ms() + timeout_ms;
	return COFFER_OK;
}

int64_t http_request_age_ms(const struct http_request *req)
{
	return (int64_t)ms_since(&req->start);
}

/* The body is in: the gate, then the handler. */
static enum MHD_Result request_run(struct http_request *req)
{
	struct http_server *s = req->server;
	const struct http_route *route = req->route;
	enum coffer_err rc;

	if (!req->admitted) {
		if (req->body_rc)
			return refuse(req, req->body_rc,
				      req->body_rc == COFFER_ERR_TOO_LARGE ? "request body too large" : NULL);
		pthread_mutex_lock(&s->lock);
		if (req->body.len > s->body_bytes_peak)
			s->body_bytes_peak = req->body.len;
		pthread_mutex_unlock(&s->lock);

		if (s->gate && !req->gated) {
			rc = s->gate(req, route, s->hook_ctx);
			if (rc || req->reply_status) { /* a reply from the gate ends the request */
				if (rc && req->reply_status < 400)
					error_reply(req, rc, NULL);
				return send_reply(req);
			}
		}
		if (route->flags & HTTP_ROUTE_AUTH && !s->gate)
			return refuse(req, COFFER_ERR_INTERNAL, NULL); /* check_routes makes this unreachable */
		req->admitted = 1;
	}

	req->park = 0;
	rc = route->handler(req, s->ctx);
	if (!rc && req->park && !req->reply_status) {
		park_now(req);
		return MHD_YES;
	}
	if (rc && req->reply_status < 400)
		error_reply(req, rc, NULL);
	if (!rc && !req->reply_status) {
		log_error("http_handler_no_reply", LF_S("route", route->name ? route->name : route->pattern));
		error_reply(req, COFFER_ERR_INTERNAL, NULL);
	}
	return send_reply(req);
}

/* ---- libmicrohttpd callbacks ---- */

/* Called when the request line is in: the request starts here, for timing and the log. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)conn;
	struct http_request *req = request_new(cls);
	/* the request target as sent, query included, for signatures that cover
	 * it (http_request_target); never logged. A longer one stays NULL. */
	if (req && uri && strlen(uri) <= HTTP_TARGET_MAX)
		req->target = strdup(uri);
	return req;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				 const char *version, const char *upload_data, size_t *upload_data_size,
				 void **con_cls)
{
	struct http_request *req = *con_cls;
	(void)version;

	if (!req) {
		req = request_new(cls);
		if (!req)
			return MHD_NO;
		*con_cls = req;
	}
	if (req->sent)
		return MHD_YES;
	if (!req->started) {
		req->started = 1;
		req->conn = conn;
		return request_begin(req, url, method);
	}
	req->conn = conn;
	if (*upload_data_size) {
		size_t size = *upload_data_size;
		*upload_data_size = 0;
		return request_body(req, upload_data, size);
	}
	return request_run(req);
}

/* A method as a label: one of a fixed set, so a client cannot make new series. */
static const char *method_label(const char *method)
{
	static const char *const known[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS" };
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(method, known[i]) == 0)
			return known[i];
	return "other";
}

/* The request in the role's metrics: its route template (never the path), method and status. */
static void count_request(const struct http_request *req)
{
	const char *role = req->server->metrics_role;
	char status[STATUS_TEXT_MAX];
	if (!role)
		return;
	const char *route = req->route ? req->route->pattern : "unmatched";
	if (fmt_into(status, sizeof(status), "%d", req->status))
		return;
	metrics_counter_add(&metric_http_requests, 1, role, route, method_label(req->method), status);
	metrics_observe(&metric_http_duration, ms_since(&req->start) / 1e3, role, route);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_request *req = *con_cls;
	(void)cls;
	(void)conn;
	if (!req)
		return;
	*con_cls = NULL;
	log_request(req, toe);
	count_request(req);
	request_free(req);
}

/* MHD's messages are formatted with request data: only the format is logged. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	(void)ap;
	log_warn("http_internal", LF_S("format", fmt));
}

/* ---- server ---- */

static enum coffer_err resolve(const char *listen, struct addrinfo **out)
{
	char host[HOST_MAX], port_text[PORT_TEXT_MAX];
	uint16_t port;
	struct addrinfo hints, *res = NULL;

	if (parse_host_port(listen, host, sizeof(host), &port))
		return COFFER_ERR_INVALID;
	if (fmt_into(port_text, sizeof(port_text), "%u", (unsigned)port))
		return COFFER_ERR_INTERNAL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int g = getaddrinfo(host, port_text, &hints, &res);
	if (g == EAI_MEMORY)
		return COFFER_ERR_NOMEM;
	if (g != 0 || !res)
		return COFFER_ERR_INVALID;
	*out = res;
	return COFFER_OK;
}

/* The pool's size: the config's, or from the CPU count. */
static unsigned pool_size(unsigned want)
{
	long cpus;
	if (want)
		return want;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus < 1)
		cpus = 1;
	if (cpus > HTTP_SERVER_THREADS_MAX / HTTP_SERVER_THREADS_PER_CPU)
		return HTTP_SERVER_THREADS_MAX;
	want = (unsigned)cpus * HTTP_SERVER_THREADS_PER_CPU;
	return want < HTTP_SERVER_THREADS_MIN ? HTTP_SERVER_THREADS_MIN : want;
}

/*
 * The connection limit: each connection is a descriptor, so it stays
 * HTTP_SERVER_FD_RESERVE under the soft RLIMIT_NOFILE (the store, logs and
 * outbound HTTP need theirs): past it accept() would fail for every client
 * alike instead of MHD refusing the excess cleanly.
 */
static unsigned connection_limit(unsigned want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return want;
	rlim_t room = rl.rlim_cur > HTTP_SERVER_FD_RESERVE ? rl.rlim_cur - HTTP_SERVER_FD_RESERVE : 0;
	if (want > room) {
		log_warn("http_connection_limit_lowered", LF_I("wanted", want), LF_I("nofile", (int64_t)rl.rlim_cur),
			 LF_I("limit", (int64_t)room));
		want = (unsigned)room;
	}
	return want;
}

/* ---- TLS ---- */

/* TLS 1.3 first, 1.2 for older clients; nothing older. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define TLS_OPTIONS_MAX 4

struct tls_files {
	struct buf cert;
	struct secret *key; /* NUL-terminated by secret_new */
	struct MHD_OptionItem opts[TLS_OPTIONS_MAX];
};

static void tls_files_release(struct tls_files *t)
{
	buf_release(&t->cert);
	secret_free(t->key);
	t->key = NULL;
}

/* why (may be NULL) gets the message; one too long for it leaves it empty. */
#define SET_WHY(why, size, ...)                                                                   \
	do {                                                                                      \
		if ((why) && (size) && fmt_into((why), (size), __VA_ARGS__) != COFFER_OK) \
			(why)[0] = '\0';                                                          \
	} while (0)

/*
 * Checks the config's TLS part (http_server_check_tls) and, with TLS,
 * loads the files into t and the MHD options that serve them into t->opts
 * (just MHD_OPTION_END without). t is released by the caller.
 */
static enum coffer_err tls_load(const struct http_server_config *cfg, struct tls_files *t, char *why, size_t size)
{
	char host[HOST_MAX];
	uint16_t port;
	enum coffer_err rc;

	buf_init(&t->cert, TLS_PEM_MAX);
	t->key = NULL;
	t->opts[0] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	if (!cfg->tls_cert_file != !cfg->tls_key_file) {
		SET_WHY(why, size, "give both --tls-cert and --tls-key, or neither");
		return COFFER_ERR_USAGE;
	}
	if (!cfg->tls_cert_file) {
		if (parse_host_port(cfg->listen, host, sizeof(host), &port)) {
			SET_WHY(why, size, "invalid listen address '%s'", cfg->listen);
			return COFFER_ERR_INVALID;
		}
		if (tls_host_is_loopback(host) || cfg->plain_any_host)
			return COFFER_OK;
		SET_WHY(why, size, "refusing to serve plain HTTP on '%s', which is not a loopback address: "
				   "give --tls-cert FILE and --tls-key FILE", cfg->listen);
		return COFFER_ERR_FORBIDDEN;
	}
	rc = fs_read_file(cfg->tls_cert_file, &t->cert);
	if (rc) {
		SET_WHY(why, size, "cannot read the TLS certificate '%s': %s", cfg->tls_cert_file, coffer_strerror(rc));
		return rc;
	}
	rc = fs_read_private(cfg->tls_key_file, TLS_PEM_MAX, &t->key);
	if (rc == COFFER_ERR_FORBIDDEN) {
		SET_WHY(why, size, "the TLS key '%s' may be read or written by group or others: make it private "
				   "(chmod 600)", cfg->tls_key_file);
		return rc;
	}
	if (rc) {
		SET_WHY(why, size, "cannot read the TLS key '%s': %s", cfg->tls_key_file, coffer_strerror(rc));
		return rc;
	}
	rc = tls_check_pair(t->cert.ptr, t->cert.len, (const char *)secret_cbytes(t->key), secret_len(t->key));
	if (rc) {
		SET_WHY(why, size, "the TLS certificate '%s' and key '%s' do not load as a PEM certificate and its key",
			cfg->tls_cert_file, cfg->tls_key_file);
		return rc;
	}
	t->opts[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, t->cert.ptr };
	t->opts[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, secret_bytes(t->key) };
	t->opts[2] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES };
	t->opts[3] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	return COFFER_OK;
}

enum coffer_err http_server_check_tls(const struct http_server_config *cfg, char *why, size_t why_size)
{
	struct tls_files t;
	enum coffer_err rc;

	if (!cfg || !cfg->listen)
		return COFFER_ERR_INVALID;
	rc = tls_load(cfg, &t, why, why_size);
	tls_files_release(&t);
	return rc;
}

enum coffer_err http_server_start(const struct http_server_config *cfg, const struct http_route *routes,
				  size_t n_routes, void *ctx, struct http_server **out)
{
	enum coffer_err rc;
	struct http_server *s = NULL;
	struct addrinfo *ai = NULL;
	struct tls_files tls;
	int locks = 0;

	if (!cfg || !cfg->listen || (!routes && n_routes) || cfg->threads > HTTP_SERVER_THREADS_MAX)
		return COFFER_ERR_INVALID;
	rc = tls_load(cfg, &tls, NULL, 0);
	if (rc) {
		log_error("http_tls_refused", LF_S("listen", cfg->listen), LF_S("error", coffer_err_name(rc)));
		goto out;
	}
	rc = check_routes(routes, n_routes, cfg->gate);
	if (rc)
		goto out;
	if (sodium_init() < 0) {
		rc = COFFER_ERR_INTERNAL;
		goto out;
	}
	rc = resolve(cfg->listen, &ai);
	if (rc)
		goto out;
	s = calloc(1, sizeof(*s));
	if (!s) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	s->routes = routes;
	s->n_routes = n_routes;
	s->gate = cfg->gate;
	s->prefix_headers = cfg->prefix_headers;
	s->done = cfg->done;
	s->ctx = ctx;
	s->hook_ctx = cfg->hook_ctx ? cfg->hook_ctx : ctx;
	s->metrics_role = cfg->metrics_role;
	s->drain_ms = cfg->drain_ms ? cfg->drain_ms : HTTP_SERVER_DRAIN_MS_DEFAULT;

	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca)) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&s->lock, NULL) || pthread_cond_init(&s->idle, &ca) ||
	    pthread_cond_init(&s->timer_cv, &ca)) {
		pthread_condattr_destroy(&ca);
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	pthread_condattr_destroy(&ca);
	locks = 1;
	s->timer_next_ms = NO_DEADLINE;
	s->threads = pool_size(cfg->threads);
	s->max_connections =
		connection_limit(cfg->max_connections ? cfg->max_connections : HTTP_SERVER_MAX_CONNECTIONS_DEFAULT);
	unsigned per_ip = cfg->max_per_ip ? cfg->max_per_ip : HTTP_SERVER_PER_IP_DEFAULT;
	unsigned timeout_s = cfg->timeout_s ? cfg->timeout_s : HTTP_SERVER_TIMEOUT_S_DEFAULT;
	if (s->max_connections < s->threads) { /* MHD splits the limit between the threads */
		log_error("http_connection_limit_too_low", LF_I("limit", s->max_connections), LF_I("threads", s->threads));
		rc = COFFER_ERR_INVALID;
		goto out;
	}

	/*
	 * A pool of poll threads, not a thread per connection: see
	 * http_server.h. Not epoll: libmicrohttpd 0.9.75 watches its epoll set
	 * edge-triggered and takes a short recv() as "drained", so a client's
	 * FIN that arrived with the last bytes of its request (send, then
	 * shutdown(SHUT_WR)) gives no further event and is never read: the
	 * connection stayed open, answered or half-sent, until the idle
	 * timeout. poll() is level-triggered and sees the end at once.
	 */
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->tls = cfg->tls_cert_file != NULL;
	if (s->tls)
		flags |= MHD_USE_TLS;
	s->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_access, s,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (void *)NULL,
		MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_THREAD_POOL_SIZE, s->threads,
		MHD_OPTION_CONNECTION_LIMIT, s->max_connections,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)(cfg->memory_limit ? cfg->memory_limit : HTTP_SERVER_MEMORY_LIMIT_DEFAULT),
		MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
		MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)s,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)s,
		MHD_OPTION_ARRAY, tls.opts,
		MHD_OPTION_END);
	if (!s->daemon) {
		log_error("http_listen_failed", LF_S("listen", cfg->listen));
		rc = COFFER_ERR_IO;
		goto out;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : 0;
	if (!s->port) {
		MHD_stop_daemon(s->daemon);
		rc = COFFER_ERR_IO;
		goto out;
	}
	if (pthread_create(&s->timer, NULL, timer_main, s)) {
		MHD_stop_daemon(s->daemon);
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	log_info("http_listening", LF_S("listen", cfg->listen), LF_I("port", s->port), LF_I("threads", s->threads),
		 LF_I("max_connections", s->max_connections), LF_I("max_per_ip", per_ip), LF_I("timeout_s", timeout_s));
	*out = s;
	s = NULL;
out:
	if (s) {
		if (locks) {
			pthread_cond_destroy(&s->timer_cv);
			pthread_cond_destroy(&s->idle);
			pthread_mutex_destroy(&s->lock);
		}
		free(s);
	}
	if (ai)
		freeaddrinfo(ai);
	tls_files_release(&tls); /* MHD loaded them into GnuTLS at start */
	return rc;
}

uint16_t http_server_port(const struct http_server *s)
{
	return s->port;
}

void http_server_stop(struct http_server *s)
{
	struct timespec deadline;
	MHD_socket lfd;

	if (!s)
		return;
	lfd = MHD_quiesce_daemon(s->daemon);
	/* parked requests answer now (parking refuses from here on); MHD must not stop with one suspended */
	pthread_mutex_lock(&park_mu);
	s->stopping = 1;
	while (s->parked)
		unpark(s->parked);
	s->timer_stop = 1;
	pthread_cond_signal(&s->timer_cv);
	pthread_mutex_unlock(&park_mu);
	pthread_join(s->timer, NULL);
	monotime_deadline_in(&deadline, s->drain_ms);
	pthread_mutex_lock(&s->lock);
	while (s->in_flight > 0)
		if (pthread_cond_timedwait(&s->idle, &s->lock, &deadline) == ETIMEDOUT)
			break;
	unsigned left = s->in_flight;
	pthread_mutex_unlock(&s->lock);
	if (left)
		log_warn("http_stop_unfinished", LF_I("requests", left));
	MHD_stop_daemon(s->daemon);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	pthread_cond_destroy(&s->timer_cv);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	log_info("http_stopped", LF_I("port", s->port));
	free(s);
}

void http_server_get_stats(struct http_server *s, struct http_server_stats *out)
{
	pthread_mutex_lock(&s->lock);
	out->requests = s->requests;
	out->body_bytes_peak = s->body_bytes_peak;
	out->threads = s->threads;
	out->max_connections = s->max_connections;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&park_mu);
	out->parked = s->n_parked;
	pthread_mutex_unlock(&park_mu);
}

/* ---- request accessors ---- */

const char *http_request_method(const struct http_request *req)
{
	return req->method;
}

const char *http_request_path(const struct http_request *req)
{
	return req->path;
}

const char *http_request_target(const struct http_request *req)
{
	return req->target;
}

const struct http_route *http_request_route(const struct http_request *req)
{
	return req->route;
}

const char *http_request_param(const struct http_request *req, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < req->n_params; i++)
		if (req->params[i].name_len == n && memcmp(req->params[i].name, name, n) == 0)
			return req->params[i].value;
	return NULL;
}

const char *http_request_query(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_request_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_request_body(const struct http_request *req, size_t *len)
{
	if (len)
		*len = req->body.len;
	return req->body.ptr;
}

const char *http_request_id(const struct http_request *req)
{
	return req->id;
}

const char *http_request_remote(const struct http_request *req)
{
	return req->remote;
}

void http_request_set_auth(struct http_request *req, void *auth, void (*release)(void *auth))
{
	if (req->auth_release && req->auth != auth)
		req->auth_release(req->auth);
	req->auth = auth;
	req->auth_release = release;
}

void *http_request_auth(const struct http_request *req)
{
	return req->auth;
}

enum coffer_err http_request_set_actor(struct http_request *req, const char *actor)
{
	return str_copy(req->actor, sizeof(req->actor), actor ? actor : "");
}

enum coffer_err http_request_json(struct http_request *req, json_t **out)
{
	struct json_error jerr;
	char msg[HTTP_ERROR_MESSAGE_MAX];
	enum coffer_err rc = json_parse_limited(req->body.ptr, req->body.len, req->route ? req->route->max_body : 0,
						JSON_MAX_DEPTH_DEFAULT, out, &jerr);
	if (!rc)
		return COFFER_OK;
	if (fmt_into(msg, sizeof(msg), "invalid request body: %s at byte %zu", jerr.message, jerr.position))
		return http_reply_error(req, rc, NULL);
	return http_reply_error(req, rc, msg);
}

enum coffer_err http_server_write_ready_file(const struct http_server *s, const char *listen, const char *path)
{
	char host[READY_HOST_SIZE], line[READY_HOST_SIZE + 32];
	uint16_t ignored;
	enum coffer_err rc = parse_host_port(listen, host, sizeof(host), &ignored);
	if (!rc)
		rc = strchr(host, ':') ? fmt_into(line, sizeof(line), "%s://[%s]:%u\n", s->tls ? "https" : "http", host,
						  (unsigned)http_server_port(s))
				       : fmt_into(line, sizeof(line), "%s://%s:%u\n", s->tls ? "https" : "http", host,
						  (unsigned)http_server_port(s));
	if (!rc)
		rc = fs_write_atomic(path, line, strlen(line), 0644, 0);
	return rc;
}
