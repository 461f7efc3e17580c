/*
 * http_server.h — the HTTP front of coffer's daemons, over libmicrohttpd.
 *
 * The owner describes its API as a table of routes (method, pattern, flags,
 * body limit, handler). ONE gate runs for every request before any handler:
 *
 *   1. match the route: unknown path -> 404, known path with another method
 *      -> 405 (with an Allow header);
 *   2. body limit: a Content-Length above the route's max_body is refused
 *      with 413 before the body is read; a body without one (chunked) is
 *      counted as it streams in and never buffered past max_body: a small
 *      overshoot is read and dropped and answered 413, a large one
 *      (over max_body + HTTP_BODY_DISCARD_MAX) closes the connection;
 *   3. the owner's gate callback (authentication, roles), which sees the
 *      whole body so it can check signatures over it (coffer's servers use
 *      the shared phases of http_phase.h as their gate and done callbacks);
 *   4. the handler.
 * A failure at any step answers {"error":{"code":"<name>","message":"..."}}
 * with the status of coffer_err_http_status. Every response carries an
 * X-Request-Id header (16 random hex characters), and every request gives
 * exactly one access-log line: method, route, path, status, latency,
 * request id, actor — never a query value, a header value or a body.
 *
 * Threading: a small pool of threads (HTTP_SERVER_THREADS_*), each
 * polling its share of the connections, serves every connection
 * (MHD_USE_POLL_INTERNAL_THREAD with MHD_OPTION_THREAD_POOL_SIZE; not
 * epoll, whose edge-triggered mode in libmicrohttpd 0.9.75 misses a
 * client's half-close: docs/HTTP.md): an idle or slow connection costs a
 * socket and some memory, never a thread. A handler runs on the thread of
 * its connection and stalls that thread's other connections while it
 * runs, so a handler may block briefly (the store, the keeper) but must
 * never wait for an event: it parks the request instead
 * (http_request_park), which gives the thread back until a wait queue is
 * woken or a deadline passes, then runs the handler again. Handlers and
 * the gate run concurrently on several threads and must be thread-safe;
 * ctx is shared. Limits: max_connections in all (kept under RLIMIT_NOFILE),
 * max_per_ip from one address, and an idle timeout that closes a
 * connection which sends or reads nothing for timeout_s (a parked request
 * is not idle). See docs/HTTP.md.
 *
 * Ownership: the route table, the strings in it and ctx must outlive the
 * server (a static const table is the usual case). A struct http_request
 * belongs to the server and lives for one request; the strings its
 * accessors return are valid until the handler returns.
 */
#ifndef COFFER_HTTP_SERVER_H
#define COFFER_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "json.h"

/* Generic route flags; bits from HTTP_ROUTE_OWNER_SHIFT up are the owner's (roles). */
#define HTTP_ROUTE_AUTH ((uint32_t)1 << 0)  /* the gate must authenticate the caller */
#define HTTP_ROUTE_AUDIT ((uint32_t)1 << 1) /* the owner audits this route */
/*
 * The gate needs no body (a bearer token, not a signature over the body):
 * it runs as soon as the headers are in, so a caller it refuses never gets
 * to send a body, and a body is only ever held for an admitted caller.
 */
#define HTTP_ROUTE_GATE_EARLY ((uint32_t)1 << 2)
/* With HTTP_ROUTE_AUTH: a host's signed request, not a bearer (http_phase.h); never with GATE_EARLY. */
#define HTTP_ROUTE_HOST ((uint32_t)1 << 3)
/* With HTTP_ROUTE_AUDIT: the handler audits what it decides, the owner what is refused before it. */
#define HTTP_ROUTE_AUDIT_HANDLER ((uint32_t)1 << 4)
#define HTTP_ROUTE_OWNER_SHIFT 8

#define HTTP_ROUTE_MAX_PARAMS 8              /* :name segments in one pattern */
#define HTTP_BODY_DISCARD_MAX ((size_t)64 << 10) /* overshoot read and dropped before a clean 413 */
#define HTTP_REQUEST_ID_LEN 16               /* hex characters */
#define HTTP_ACTOR_MAX 128                   /* bytes of the actor name, NUL included */
#define HTTP_REPLY_HEADERS_MAX 8             /* extra response headers per request */
#define HTTP_TARGET_MAX 8192 /* longest request target kept for http_request_target */
#define HTTP_LOG_PATH_MAX 256                /* path bytes kept in the access log */
#define HTTP_ERROR_MESSAGE_MAX 512           /* bytes of an error message in a reply */

/* Defaults used when a config field is 0. */
#define HTTP_SERVER_MAX_CONNECTIONS_DEFAULT 4096 /* all clients; capped by RLIMIT_NOFILE */
#define HTTP_SERVER_PER_IP_DEFAULT 32            /* connections from one address */
#define HTTP_SERVER_FD_RESERVE 128               /* descriptors kept out of the connection limit */
#define HTTP_SERVER_THREADS_PER_CPU 4            /* default pool: online CPUs times this, */
#define HTTP_SERVER_THREADS_MIN 4                /* ... at least this */
#define HTTP_SERVER_THREADS_MAX 64               /* ... and at most this (also the config's cap) */
#define HTTP_SERVER_MEMORY_LIMIT_DEFAULT ((size_t)64 << 10) /* per connection; bounds the headers */
#define HTTP_SERVER_TIMEOUT_S_DEFAULT 10                     /* idle connection timeout */
#define HTTP_SERVER_DRAIN_MS_DEFAULT 10000                   /* graceful stop wait */

struct http_request;
struct http_server;

/*
 * A handler answers with http_reply_json/http_reply_error/http_reply and
 * returns what they return. If it returns an error without having set an
 * error reply, the server answers http_reply_error(req, rc, NULL). If it
 * returns COFFER_OK without a reply, the server answers 500.
 */
typedef enum coffer_err (*http_handler_fn)(struct http_request *req, void *ctx);

struct http_route {
	const char *method;     /* "GET", "POST", ... (exact, upper case) */
	const char *pattern;    /* "/v1/apps/:app/secrets": literal segments and :params */
	uint32_t flags;         /* HTTP_ROUTE_* and the owner's bits */
	size_t max_body;        /* bytes; 0 accepts no body at all */
	http_handler_fn handler;
	const char *name;       /* for the access log; NULL logs the pattern */
};

/*
 * Runs after the body is in, before the handler, for every matched route.
 * Returns COFFER_OK to let the request through; any error answers with that
 * error (a reply the gate set with http_reply_error is kept). A gate that
 * sets any reply ends the request there, even if it returns COFFER_OK.
 */
typedef enum coffer_err (*http_gate_fn)(struct http_request *req, const struct http_route *route, void *ctx);

/*
 * Runs once for every request that matched a route, when its answer is
 * decided and just before it is sent (also when a body too large to drain
 * closes the connection unanswered): status is the answer's, code the
 * error of an error reply (COFFER_OK for any other). For the owner's audit
 * trail: the request's accessors and its auth are still valid.
 */
typedef void (*http_done_fn)(struct http_request *req, const struct http_route *route, int status,
			     enum coffer_err code, void *ctx);

/*
 * Headers the owner adds to every answer whose path is `prefix` or under
 * it ("/ui": /ui, /ui/x, /ui/a/b), the server's own 404, 405 and 413
 * included (the dashboard's Content-Security-Policy, docs/DASHBOARD.md).
 */
struct http_prefix_headers {
	const char *prefix;
	const char *const (*headers)[2]; /* name, value */
	size_t n;
};

struct http_server_config {
	const char *listen;       /* "host:port" or "[v6]:port"; port 0 picks a free port */
	http_gate_fn gate;        /* NULL only if no route has HTTP_ROUTE_AUTH */
	http_done_fn done;        /* NULL: none */
	void *hook_ctx;           /* the ctx gate and done get; NULL: the handlers' ctx */
	unsigned max_connections; /* in all; 0: default; lowered to RLIMIT_NOFILE - HTTP_SERVER_FD_RESERVE */
	unsigned max_per_ip;      /* connections from one client address; 0: default */
	unsigned threads;         /* the pool (1..HTTP_SERVER_THREADS_MAX); 0: default from the CPU count */
	size_t memory_limit;      /* per-connection memory, bounds request headers (431); 0: default */
	unsigned timeout_s;       /* 0: default */
	unsigned drain_ms;        /* how long http_server_stop waits for requests in flight; 0: default */
	/* PEM files (chain, key) to serve HTTPS; both NULL: plain HTTP, on a loopback address only. */
	const char *tls_cert_file, *tls_key_file;
	/* Plain HTTP on any address the operator gave (the metrics listener: no secret, no auth). */
	int plain_any_host;
	/* Counts every request in metric_http_requests/_duration (metrics.h) under this role; NULL: not counted. */
	const char *metrics_role;
	/* Headers for the answers under one path prefix; NULL: none. */
	const struct http_prefix_headers *prefix_headers;
};

/*
 * The TLS part of a config, as http_server_start will apply it: both files
 * or neither; with neither, the listen host must be loopback (tls.h); with
 * both, the certificate must load, the key file must be private (fs.h) and
 * be the certificate's key. COFFER_OK, or an error with why (may be NULL)
 * saying what to fix, for the roles to check their options before anything
 * else starts. http_server_start refuses the same configs.
 */
#define HTTP_TLS_WHY_MAX 1024 /* a why of http_server_check_tls: paths included */
COFFER_MUST_CHECK enum coffer_err http_server_check_tls(const struct http_server_config *cfg, char *why,
							size_t why_size);

/*
 * Validates the route table (patterns start with '/', at most
 * HTTP_ROUTE_MAX_PARAMS params, a handler each; an HTTP_ROUTE_AUTH route
 * needs a gate; HTTP_ROUTE_HOST needs HTTP_ROUTE_AUTH and not
 * HTTP_ROUTE_GATE_EARLY; HTTP_ROUTE_AUDIT_HANDLER needs HTTP_ROUTE_AUDIT:
 * COFFER_ERR_INVALID otherwise), binds and starts serving.
 * COFFER_ERR_IO if the address cannot be bound. threads over
 * HTTP_SERVER_THREADS_MAX, or fewer connections than threads (after the
 * RLIMIT_NOFILE cap), is COFFER_ERR_INVALID.
 */
COFFER_MUST_CHECK enum coffer_err http_server_start(const struct http_server_config *cfg,
						    const struct http_route *routes, size_t n_routes, void *ctx,
						    struct http_server **out);
/* The port actually bound (the one chosen when the config asked for 0). */
uint16_t http_server_port(const struct http_server *s);
/*
 * Writes "http://HOST:PORT\n" ("https://" when serving TLS; the host of `listen`, the port the server got,
 * so port 0 works) to path atomically, mode 0644: how a role tells whoever
 * started it that it is listening (coffer dev, the tests).
 */
COFFER_MUST_CHECK enum coffer_err http_server_write_ready_file(const struct http_server *s, const char *listen,
							       const char *path);
/*
 * Graceful stop: stops accepting, runs every parked request's handler
 * again at once (http_request_park now refuses, so it answers), waits up
 * to drain_ms for requests in flight, then closes every connection and
 * frees s. NULL is allowed.
 */
void http_server_stop(struct http_server *s);

struct http_server_stats {
	uint64_t requests;        /* requests completed (one access-log line each) */
	uint64_t body_bytes_peak; /* the largest body ever held in memory */
	unsigned parked;          /* requests parked now */
	unsigned threads;         /* the pool's size */
	unsigned max_connections; /* the limit in force */
};
void http_server_get_stats(struct http_server *s, struct http_server_stats *out);

/* Request accessors. NULL when absent. Header names are case-insensitive. */
const char *http_request_method(const struct http_request *req);
const char *http_request_path(const struct http_request *req);
/*
 * The request target exactly as the client sent it, query string included
 * ("/v1/x?a=1"), for checks whose signature covers it; NULL when it was
 * longer than HTTP_TARGET_MAX (refuse such a request: do not fall back to the
 * path, which would leave the query unsigned). Never for logs: the query may
 * carry anything.
 */
const char *http_request_target(const struct http_request *req);
const struct http_route *http_request_route(const struct http_request *req);
const char *http_request_param(const struct http_request *req, const char *name);
const char *http_request_query(const struct http_request *req, const char *name);
const char *http_request_header(const struct http_request *req, const char *name);
/* The body, NUL-terminated for convenience (it may hold NULs of its own); never NULL. */
const char *http_request_body(const struct http_request *req, size_t *len);
/* 16 lower-case hex characters, also sent as X-Request-Id. */
const char *http_request_id(const struct http_request *req);
/* The peer's address as text ("127.0.0.1", "::1"); "" if unknown. */
const char *http_request_remote(const struct http_request *req);

/*
 * The gate's slot for the authenticated principal: `auth` is the owner's,
 * released with `release` (may be NULL) when the request ends. The actor is
 * copied and appears in the access log: a name or id, never a credential.
 */
void http_request_set_auth(struct http_request *req, void *auth, void (*release)(void *auth));
void *http_request_auth(const struct http_request *req);
COFFER_MUST_CHECK enum coffer_err http_request_set_actor(struct http_request *req, const char *actor);

/* Milliseconds since the request line came in (a long poll's deadline counts from it). */
int64_t http_request_age_ms(const struct http_request *req);

/*
 * Parking: how a handler waits for an event without holding a thread.
 *
 * A wait queue is what the owner wakes when something a parked request
 * waits for may have changed. It is not tied to a server and is
 * thread-safe. A ticket names the queue's state: take one BEFORE reading
 * what the request waits on, and park with it; a wake after the ticket
 * (even before the park) makes the park end at once, so no wake is lost.
 *
 * http_request_park(req, q, ticket, timeout_ms), called by a handler that
 * has not set a reply, which then returns COFFER_OK: the server suspends
 * the connection (its thread serves others) until q is woken after ticket,
 * timeout_ms passed, or the server stops; then the handler runs again with
 * the same request (the gate does not run again; reply headers added
 * before the park are kept) and answers or parks again. The
 * handler must hold nothing while parked (give the store connection back).
 * q may be NULL (only the deadline). A handler that parks and also sets a
 * reply answers. Returns COFFER_OK (parked), COFFER_ERR_UNAVAILABLE when
 * the server is stopping (answer now), COFFER_ERR_INVALID for a bad
 * argument.
 *
 * The client's disconnect is not seen while parked: keep timeout_ms short
 * enough (a long poll re-checks every few hundred ms anyway).
 */
struct http_waitq;
COFFER_MUST_CHECK enum coffer_err http_waitq_new(struct http_waitq **out);
/*
 * Runs any request still parked on q (as a wake would), then frees q. Only
 * once no handler can park on q any more (the api frees its queue after
 * its server stopped). NULL is allowed.
 */
void http_waitq_free(struct http_waitq *q);
/* The queue's current state, for http_request_park; NULL gives 0. */
uint64_t http_waitq_ticket(struct http_waitq *q);
/* Runs again every request parked on q; parks with an older ticket end at once. NULL is allowed. */
void http_waitq_wake(struct http_waitq *q);
COFFER_MUST_CHECK enum coffer_err http_request_park(struct http_request *req, struct http_waitq *q,
						    uint64_t ticket, int64_t timeout_ms);
/*
 * Keyed wakes, so that one change does not run every parked handler again
 * (2,000 agents' long polls on one queue, one machine changed): a request
 * parked with a key other than 0 is run again only by http_waitq_wake_key
 * with that key, or by a wake for all (http_waitq_wake, key 0). Any wake
 * still moves the ticket, so a park with an older ticket ends at once
 * whatever its key (a spurious run, never a lost wake). Keys may collide
 * (a hash): a collision only runs a handler that finds nothing new.
 */
COFFER_MUST_CHECK enum coffer_err http_request_park_key(struct http_request *req, struct http_waitq *q,
							uint64_t ticket, int64_t timeout_ms, uint64_t key);
void http_waitq_wake_key(struct http_waitq *q, uint64_t key);

/*
 * Parses the body as JSON with json_parse_limited (max_bytes = the route's
 * max_body, depth JSON_MAX_DEPTH_DEFAULT). On failure it also sets an error
 * reply naming the fault, so a handler may simply return the code.
 */
COFFER_MUST_CHECK enum coffer_err http_request_json(struct http_request *req, json_t **out);

/*
 * Replies. A later reply replaces an earlier one. Each returns COFFER_OK or
 * COFFER_ERR_NOMEM / COFFER_ERR_TOO_LARGE / COFFER_ERR_INVALID; a handler
 * usually returns what they return.
 */
/* Serialises doc compactly (doc is not consumed) as application/json. */
COFFER_MUST_CHECK enum coffer_err http_reply_json(struct http_request *req, int status, const json_t *doc);
/*
 * {"error":{"code":"<coffer_err_name>","message":"..."}} with the status of
 * coffer_err_http_status(code); message NULL uses coffer_strerror. Returns
 * `code` (or a worse error if the reply could not be built), so a handler
 * can write `return http_reply_error(req, COFFER_ERR_NOT_FOUND, "no such app");`.
 */
COFFER_MUST_CHECK enum coffer_err http_reply_error(struct http_request *req, enum coffer_err code,
						   const char *message);
/* Raw bytes (content_type may be NULL when len is 0, e.g. for 204). */
COFFER_MUST_CHECK enum coffer_err http_reply(struct http_request *req, int status, const char *content_type,
					     const void *data, size_t len);
/* An extra response header (copied); name and value without CR or LF. */
COFFER_MUST_CHECK enum coffer_err http_reply_header(struct http_request *req, const char *name, const char *value);

#endif
