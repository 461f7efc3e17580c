/*
 * test_http.c — http_server and http_client together over loopback: the
 * gate (routes, 404/405, body limits, the owner's gate), request ids, the
 * access log, the client's limits and errors, and the server model:
 * parked requests, the per-address cap, the idle timeout, the pool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "endpoints.h"
#include "http_client.h"
#include "http_server.h"
#include "json.h"
#include "log.h"
#include "secret.h"

#define ECHO_MAX 1000
#define EARLY_MAX JSON_ROUTE_MAX
#define JSON_ROUTE_MAX 4096
#define BIG_REPLY_LEN 100000
#define TEN_MB ((size_t)10 << 20)
#define ONE_MB ((size_t)1 << 20)
#define RAW_REPLY_MAX 65536
#define THREADS 16
#define PER_THREAD 50

#define TOKEN "tok-AUTHCANARY-7f3a9e"
#define BODY_CANARY "BODYCANARY-91c2d4"
#define QUERY_CANARY "QUERYCANARY-55ab"
#define HEADER_CANARY "HEADERCANARY-0e1f"

static atomic_int calls_params, calls_echo, calls_json, calls_ping, calls_gate;
static atomic_size_t gate_saw_body; /* body bytes in when the gate last ran */
static struct http_server *server;
static char base_url[64];
static char log_path[] = "/tmp/coffer-test-http-log-XXXXXX";
static int log_fd = -1;

/* ---- the owner's side: gate and handlers ---- */

static void release_auth(void *auth)
{
	free(auth);
}

static enum coffer_err gate(struct http_request *req, const struct http_route *route, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&calls_gate, 1);
	size_t seen = 0;
	(void)http_request_body(req, &seen);
	atomic_store(&gate_saw_body, seen);
	if (!(route->flags & HTTP_ROUTE_AUTH))
		return COFFER_OK;
	const char *h = http_request_header(req, "Authorization");
	const char *want = "Bearer " TOKEN;
	if (!h || strlen(h) != strlen(want) || !ct_equal(h, want, strlen(want)))
		return http_reply_error(req, COFFER_ERR_UNAUTH, "missing or invalid token");
	char *principal = strdup("tester");
	if (!principal)
		return COFFER_ERR_NOMEM;
	http_request_set_auth(req, principal, release_auth);
	return http_request_set_actor(req, "tester");
}

static enum coffer_err h_params(struct http_request *req, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&calls_params, 1);
	const char *x = http_request_query(req, "x");
	json_t *doc = json_pack("{s:s,s:s,s:s,s:s}", "app", http_request_param(req, "app"), "name",
				http_request_param(req, "name"), "x", x ? x : "", "method", http_request_method(req));
	if (!doc)
		return COFFER_ERR_NOMEM;
	enum coffer_err rc = http_reply_json(req, 200, doc);
	json_decref(doc);
	return rc;
}

static enum coffer_err h_echo(struct http_request *req, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&calls_echo, 1);
	size_t len;
	(void)http_request_body(req, &len);
	const char *actor = http_request_auth(req);
	json_t *doc = json_pack("{s:I,s:s}", "len", (json_int_t)len, "actor", actor ? actor : "");
	if (!doc)
		return COFFER_ERR_NOMEM;
	enum coffer_err rc = http_reply_json(req, 200, doc);
	json_decref(doc);
	return rc;
}

static enum coffer_err h_json(struct http_request *req, void *ctx)
{
	(void)ctx;
	static const char *const allowed[] = { "name", NULL };
	json_t *body = NULL, *doc = NULL;
	struct json_error jerr;
	const char *name = NULL;
	char msg[128];
	enum coffer_err rc;

	atomic_fetch_add(&calls_json, 1);
	rc = http_request_json(req, &body);
	if (rc)
		return rc;
	rc = json_check_fields(body, allowed, &jerr);
	if (!rc)
		rc = json_get_string(body, "name", 1, &name, NULL, &jerr);
	if (rc) {
		snprintf(msg, sizeof(msg), "%s", jerr.message);
		rc = http_reply_error(req, rc, msg);
		goto out;
	}
	doc = json_pack("{s:s}", "name", name);
	rc = doc ? http_reply_json(req, 201, doc) : COFFER_ERR_NOMEM;
out:
	json_decref(doc);
	json_decref(body);
	return rc;
}

static enum coffer_err h_big(struct http_request *req, void *ctx)
{
	(void)ctx;
	char *s = malloc(BIG_REPLY_LEN + 1);
	if (!s)
		return COFFER_ERR_NOMEM;
	memset(s, 'b', BIG_REPLY_LEN);
	s[BIG_REPLY_LEN] = '\0';
	json_t *doc = json_pack("{s:s}", "big", s);
	free(s);
	if (!doc)
		return COFFER_ERR_NOMEM;
	enum coffer_err rc = http_reply_json(req, 200, doc);
	json_decref(doc);
	return rc;
}

static enum coffer_err h_ping(struct http_request *req, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&calls_ping, 1);
	json_t *doc = json_pack("{s:b}", "ok", 1);
	if (!doc)
		return COFFER_ERR_NOMEM;
	enum coffer_err rc = http_reply_json(req, 200, doc);
	json_decref(doc);
	return rc;
}

static enum coffer_err h_noreply(struct http_request *req, void *ctx)
{
	(void)req;
	(void)ctx;
	return COFFER_OK;
}

static enum coffer_err h_conflict(struct http_request *req, void *ctx)
{
	(void)req;
	(void)ctx;
	return COFFER_ERR_CONFLICT;
}

static const struct http_route routes[] = {
	{ "GET", "/v1/apps/:app/secrets/:name", 0, 0, h_params, "secret.get" },
	{ "DELETE", "/v1/apps/:app/secrets/:name", HTTP_ROUTE_AUTH, 0, h_params, "secret.delete" },
	{ "POST", "/v1/echo", HTTP_ROUTE_AUTH | HTTP_ROUTE_AUDIT, ECHO_MAX, h_echo, "echo" },
	{ "POST", "/v1/early", HTTP_ROUTE_AUTH | HTTP_ROUTE_GATE_EARLY, EARLY_MAX, h_echo, "early" },
	{ "POST", "/v1/json", 0, JSON_ROUTE_MAX, h_json, "json" },
	{ "GET", "/v1/big", 0, 0, h_big, "big" },
	{ "GET", "/v1/ping", 0, 0, h_ping, "ping" },
	{ "GET", "/v1/noreply", 0, 0, h_noreply, NULL },
	{ "PUT", "/v1/conflict", 0, 0, h_conflict, NULL },
};

/* ---- helpers ---- */

static struct http_client *client(int with_token)
{
	struct http_client *c = NULL;
	assert_int_equal(http_client_new(base_url, 10000, &c), COFFER_OK);
	if (with_token) {
		struct secret *t = NULL;
		assert_int_equal(secret_from(TOKEN, strlen(TOKEN), &t), COFFER_OK);
		assert_int_equal(http_client_set_token(c, t), COFFER_OK);
		secret_free(t);
	}
	return c;
}

/* One request; returns the status and leaves the body in resp (caller releases). */
static int request(struct http_client *c, const char *method, const char *path, const void *body, size_t len,
		   struct buf *resp)
{
	int status = 0;
	buf_init(resp, ONE_MB);
	assert_int_equal(http_client_request(c, method, path, body, len, ONE_MB, &status, resp), COFFER_OK);
	return status;
}

/* Asserts resp is exactly {"error":{"code":code,"message":<string>}}. */
static void assert_error_shape(const struct buf *resp, const char *code)
{
	json_t *doc = NULL, *err = NULL;
	const char *got = NULL, *msg = NULL;
	static const char *const top[] = { "error", NULL };
	static const char *const inner[] = { "code", "message", NULL };
	assert_int_equal(json_parse_limited(resp->ptr, resp->len, ONE_MB, 4, &doc, NULL), COFFER_OK);
	assert_int_equal(json_check_fields(doc, top, NULL), COFFER_OK);
	assert_int_equal(json_get_object(doc, "error", 1, &err, NULL), COFFER_OK);
	assert_int_equal(json_check_fields(err, inner, NULL), COFFER_OK);
	assert_int_equal(json_get_string(err, "code", 1, &got, NULL, NULL), COFFER_OK);
	assert_int_equal(json_get_string(err, "message", 1, &msg, NULL, NULL), COFFER_OK);
	assert_string_equal(got, code);
	assert_true(strlen(msg) > 0);
	json_decref(doc);
}

static json_t *parse_ok(const struct buf *resp)
{
	json_t *doc = NULL;
	assert_int_equal(json_parse_limited(resp->ptr, resp->len, ONE_MB, 8, &doc, NULL), COFFER_OK);
	return doc;
}

static int raw_connect(void)
{
	struct sockaddr_in sa;
	struct timeval tv = { .tv_sec = 10, .tv_usec = 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(http_server_port(server));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Sends what it can; returns 0 once the peer stops taking data. */
static int raw_send(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

/* Reads the answer until the peer closes; returns its status, 0 if there was none. */
static int raw_read_status(int fd, char *out, size_t out_size)
{
	size_t got = 0;
	int status = 0;
	while (got + 1 < out_size) {
		ssize_t n = recv(fd, out + got, out_size - 1 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	if (got >= 12 && strncmp(out, "HTTP/1.1 ", 9) == 0)
		status = (out[9] - '0') * 100 + (out[10] - '0') * 10 + (out[11] - '0');
	return status;
}

static void wait_for_log(const char *needle, struct buf *log)
{
	for (int i = 0; i < 200; i++) {
		buf_reset(log);
		FILE *f = fopen(log_path, "r");
		assert_non_null(f);
		char chunk[4096];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			assert_int_equal(buf_add(log, chunk, n), COFFER_OK);
		fclose(f);
		if (strstr(log->ptr, needle))
			return;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fail_msg("log line with %s never appeared", needle);
}

/* A copy of the log line that holds needle. */
static char *line_with(const struct buf *log, const char *needle)
{
	const char *hit = strstr(log->ptr, needle);
	assert_non_null(hit);
	const char *start = hit, *end = strchr(hit, '\n');
	while (start > log->ptr && start[-1] != '\n')
		start--;
	assert_non_null(end);
	char *line = strndup(start, (size_t)(end - start));
	assert_non_null(line);
	return line;
}

static void assert_request_id(const char *id)
{
	assert_int_equal(strlen(id), HTTP_REQUEST_ID_LEN);
	for (const char *p = id; *p; p++)
		assert_true((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
}

/* ---- tests ---- */

static void test_route_params(void **state)
{
	(void)state;
	struct http_client *c = client(0);
	struct buf resp;
	int before = atomic_load(&calls_params);
	assert_int_equal(request(c, "GET", "/v1/apps/my-app/secrets/DB_URL?x=1", NULL, 0, &resp), 200);
	json_t *doc = parse_ok(&resp);
	assert_string_equal(json_string_value(json_object_get(doc, "app")), "my-app");
	assert_string_equal(json_string_value(json_object_get(doc, "name")), "DB_URL");
	assert_string_equal(json_string_value(json_object_get(doc, "x")), "1");
	assert_string_equal(json_string_value(json_object_get(doc, "method")), "GET");
	assert_int_equal(atomic_load(&calls_params), before + 1);
	assert_request_id(http_client_last_request_id(c));
	json_decref(doc);
	buf_release(&resp);
	http_client_free(c);
}

static void test_unknown_path_404(void **state)
{
	(void)state;
	struct http_client *c = client(1);
	struct buf resp;
	static const char *const paths[] = { "/v1/nope", "/v1/ping/", "/v1/apps//secrets/x", "/v1/apps/a/secrets",
					     "/", "/v1/apps/a/secrets/b/c" };
	int before = atomic_load(&calls_params) + atomic_load(&calls_gate);
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		assert_int_equal(request(c, "GET", paths[i], NULL, 0, &resp), 404);
		assert_error_shape(&resp, "not_found");
		buf_release(&resp);
	}
	assert_int_equal(atomic_load(&calls_params) + atomic_load(&calls_gate), before);

	json_t *out = NULL;
	char msg[HTTP_CLIENT_MESSAGE_MAX];
	assert_int_equal(http_client_call_json(c, "GET", "/v1/nope", NULL, 0, &out, msg, sizeof(msg)),
			 COFFER_ERR_NOT_FOUND);
	assert_null(out);
	assert_string_equal(msg, "no such route");
	http_client_free(c);
}

static void test_wrong_method_405(void **state)
{
	(void)state;
	struct http_client *c = client(1);
	struct buf resp;
	int before = atomic_load(&calls_ping) + atomic_load(&calls_gate);
	assert_int_equal(request(c, "POST", "/v1/ping", "{}", 2, &resp), 405);
	assert_error_shape(&resp, "invalid_argument");
	buf_release(&resp);
	assert_int_equal(atomic_load(&calls_ping) + atomic_load(&calls_gate), before);

	/* the Allow header lists the methods of that path */
	char raw[RAW_REPLY_MAX];
	int fd = raw_connect();
	const char *rq = "PATCH /v1/apps/a/secrets/b HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	assert_true(raw_send(fd, rq, strlen(rq)));
	assert_int_equal(raw_read_status(fd, raw, sizeof(raw)), 405);
	assert_non_null(strstr(raw, "Allow: GET, DELETE\r\n"));
	assert_non_null(strstr(raw, "X-Request-Id: "));
	close(fd);
	http_client_free(c);
}

static void test_gate_refusal_stops_handler(void **state)
{
	(void)state;
	struct http_client *anon = client(0), *bad = client(0), *good = client(1);
	struct secret *t = NULL;
	struct buf resp;
	atomic_store(&calls_echo, 0);
	int params_before = atomic_load(&calls_params);

	assert_int_equal(request(anon, "POST", "/v1/echo", "{}", 2, &resp), 401);
	assert_error_shape(&resp, "unauthenticated");
	assert_non_null(strstr(resp.ptr, "missing or invalid token"));
	buf_release(&resp);

	assert_int_equal(secret_from("tok-wrong", 9, &t), COFFER_OK);
	assert_int_equal(http_client_set_token(bad, t), COFFER_OK);
	secret_free(t);
	assert_int_equal(request(bad, "POST", "/v1/echo", "{}", 2, &resp), 401);
	buf_release(&resp);
	assert_int_equal(request(anon, "DELETE", "/v1/apps/a/secrets/b", NULL, 0, &resp), 401);
	buf_release(&resp);
	assert_int_equal(atomic_load(&calls_echo), 0);
	assert_int_equal(atomic_load(&calls_params), params_before);

	/* the same requests with the token go through, and the gate's slot reaches the handler */
	assert_int_equal(request(good, "POST", "/v1/echo", "{}", 2, &resp), 200);
	json_t *doc = parse_ok(&resp);
	assert_string_equal(json_string_value(json_object_get(doc, "actor")), "tester");
	json_decref(doc);
	buf_release(&resp);
	assert_int_equal(request(good, "DELETE", "/v1/apps/a/secrets/b", NULL, 0, &resp), 200);
	buf_release(&resp);
	assert_int_equal(atomic_load(&calls_echo), 1);
	assert_int_equal(atomic_load(&calls_params), params_before + 1);
	http_client_free(anon);
	http_client_free(bad);
	http_client_free(good);
}

/* An early gate runs before any body byte is read: a refused caller never
 * gets to send a body, an admitted one's body still reaches the handler. */
static void test_early_gate(void **state)
{
	(void)state;
	struct http_client *anon = client(0), *good = client(1);
	struct buf resp;
	size_t len = EARLY_MAX - 1;
	char *body = malloc(len);
	assert_non_null(body);
	memset(body, 'e', len);
	atomic_store(&calls_echo, 0);

	atomic_store(&gate_saw_body, 1);
	assert_int_equal(request(anon, "POST", "/v1/early", body, len, &resp), 401);
	buf_release(&resp);
	assert_int_equal(atomic_load(&gate_saw_body), 0);
	assert_int_equal(atomic_load(&calls_echo), 0);

	atomic_store(&gate_saw_body, 1);
	assert_int_equal(request(good, "POST", "/v1/early", body, len, &resp), 200);
	json_t *doc = parse_ok(&resp);
	assert_int_equal(json_integer_value(json_object_get(doc, "len")), (json_int_t)len);
	json_decref(doc);
	buf_release(&resp);
	assert_int_equal(atomic_load(&gate_saw_body), 0);
	assert_int_equal(atomic_load(&calls_echo), 1);

	/* a route without the flag: the gate sees the whole body */
	assert_int_equal(request(good, "POST", "/v1/echo", "{}", 2, &resp), 200);
	buf_release(&resp);
	assert_int_equal(atomic_load(&gate_saw_body), 2);
	free(body);
	http_client_free(anon);
	http_client_free(good);
}

static void test_body_limit_edge(void **state)
{
	(void)state;
	struct http_client *c = client(1);
	struct buf resp;
	char body[ECHO_MAX + 1];
	memset(body, 'a', sizeof(body));
	atomic_store(&calls_echo, 0);

	assert_int_equal(request(c, "POST", "/v1/echo", body, ECHO_MAX, &resp), 200);
	json_t *doc = parse_ok(&resp);
	assert_int_equal(json_integer_value(json_object_get(doc, "len")), ECHO_MAX);
	json_decref(doc);
	buf_release(&resp);
	assert_int_equal(atomic_load(&calls_echo), 1);

	assert_int_equal(request(c, "POST", "/v1/echo", body, ECHO_MAX + 1, &resp), 413);
	assert_error_shape(&resp, "too_large");
	buf_release(&resp);
	assert_int_equal(atomic_load(&calls_echo), 1);

	/* a route that takes no body refuses one byte */
	assert_int_equal(request(c, "DELETE", "/v1/apps/a/secrets/b", "x", 1, &resp), 413);
	buf_release(&resp);
	http_client_free(c);
}

/* A chunked POST /v1/echo of n bytes sent in chunks of `chunk`; returns the status (0: closed). */
static int chunked_echo(size_t n, size_t chunk, char *raw, size_t raw_size)
{
	int fd = raw_connect();
	const char *head = "POST /v1/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " TOKEN
			   "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
			   "Connection: close\r\n\r\n";
	char *data = malloc(chunk);
	char size_line[32];
	assert_non_null(data);
	memset(data, 'c', chunk);
	int ok = raw_send(fd, head, strlen(head));
	for (size_t sent = 0; ok && sent < n; sent += chunk) {
		size_t k = n - sent < chunk ? n - sent : chunk;
		snprintf(size_line, sizeof(size_line), "%zx\r\n", k);
		ok = raw_send(fd, size_line, strlen(size_line)) && raw_send(fd, data, k) && raw_send(fd, "\r\n", 2);
	}
	if (ok)
		(void)raw_send(fd, "0\r\n\r\n", 5);
	int status = raw_read_status(fd, raw, raw_size);
	close(fd);
	free(data);
	return status;
}

static void test_chunked_body_limit(void **state)
{
	(void)state;
	char raw[RAW_REPLY_MAX];
	atomic_store(&calls_echo, 0);

	assert_int_equal(chunked_echo(ECHO_MAX, 300, raw, sizeof(raw)), 200);
	assert_non_null(strstr(raw, "\"len\":1000"));
	assert_int_equal(atomic_load(&calls_echo), 1);

	assert_int_equal(chunked_echo(ECHO_MAX + 1, 300, raw, sizeof(raw)), 413);
	assert_non_null(strstr(raw, "\"code\":\"too_large\""));
	assert_int_equal(atomic_load(&calls_echo), 1);
}

static void test_ten_mb_body_not_buffered(void **state)
{
	(void)state;
	struct http_client *c = client(1);
	struct buf resp;
	struct http_server_stats st;
	char raw[RAW_REPLY_MAX];
	char *big = malloc(TEN_MB);
	assert_non_null(big);
	memset(big, 'z', TEN_MB);
	atomic_store(&calls_echo, 0);

	/* declared length: refused before the body is read */
	assert_int_equal(request(c, "POST", "/v1/echo", big, TEN_MB, &resp), 413);
	assert_error_shape(&resp, "too_large");
	buf_release(&resp);

	/* chunked: refused while it streams (413 or the connection closed), never held */
	int status = chunked_echo(TEN_MB, 65536, raw, sizeof(raw));
	assert_true(status == 413 || status == 0);
	assert_int_equal(atomic_load(&calls_echo), 0);
	http_server_get_stats(server, &st);
	assert_true(st.body_bytes_peak <= JSON_ROUTE_MAX);

	/* and the server still answers */
	assert_int_equal(request(c, "GET", "/v1/ping", NULL, 0, &resp), 200);
	buf_release(&resp);
	free(big);
	http_client_free(c);
}

static void test_one_mb_header_refused(void **state)
{
	(void)state;
	struct http_client *c = client(0);
	struct buf resp;
	char raw[RAW_REPLY_MAX];
	int before = atomic_load(&calls_ping);
	const char *head = "GET /v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ";
	char *filler = malloc(ONE_MB);
	assert_non_null(filler);
	memset(filler, 'h', ONE_MB);

	int fd = raw_connect();
	int ok = raw_send(fd, head, strlen(head)) && raw_send(fd, filler, ONE_MB) && raw_send(fd, "\r\n\r\n", 4);
	(void)ok; /* the server may stop reading part-way */
	int status = raw_read_status(fd, raw, sizeof(raw));
	assert_true(status == 431 || status == 0);
	close(fd);
	free(filler);
	assert_int_equal(atomic_load(&calls_ping), before);

	assert_int_equal(request(c, "GET", "/v1/ping", NULL, 0, &resp), 200);
	buf_release(&resp);
	assert_int_equal(atomic_load(&calls_ping), before + 1);
	http_client_free(c);
}

static void test_request_ids_distinct(void **state)
{
	(void)state;
	struct http_client *c = client(0);
	struct buf resp;
	char first[HTTP_REQUEST_ID_LEN + 1];
	assert_int_equal(request(c, "GET", "/v1/ping", NULL, 0, &resp), 200);
	buf_release(&resp);
	assert_request_id(http_client_last_request_id(c));
	memcpy(first, http_client_last_request_id(c), sizeof(first));
	assert_int_equal(request(c, "GET", "/v1/nope", NULL, 0, &resp), 404);
	buf_release(&resp);
	assert_request_id(http_client_last_request_id(c));
	assert_string_not_equal(first, http_client_last_request_id(c));
	http_client_free(c);
}

static void test_access_log(void **state)
{
	(void)state;
	struct http_client *c = client(1);
	struct buf resp, log;
	char needle[64];
	const char *body = "{\"value\":\"" BODY_CANARY "\"}";
	assert_int_equal(http_client_add_header(c, "X-Custom", HEADER_CANARY), COFFER_OK);
	buf_init(&log, 16 * ONE_MB);

	assert_int_equal(request(c, "POST", "/v1/echo?q=" QUERY_CANARY, body, strlen(body), &resp), 200);
	buf_release(&resp);
	snprintf(needle, sizeof(needle), "request_id=%s", http_client_last_request_id(c));
	wait_for_log(needle, &log);

	/* exactly one line for that request, with what an operator needs */
	char *line = line_with(&log, needle);
	assert_null(strstr(strstr(log.ptr, needle) + 1, needle));
	assert_non_null(strstr(line, "event=http_request"));
	assert_non_null(strstr(line, "method=POST"));
	assert_non_null(strstr(line, "route=echo"));
	assert_non_null(strstr(line, "path=/v1/echo "));
	assert_non_null(strstr(line, "status=200"));
	assert_non_null(strstr(line, "actor=tester"));
	assert_non_null(strstr(line, " ms="));
	free(line);

	/* a refused request is logged too */
	assert_int_equal(request(c, "GET", "/v1/nope?q=" QUERY_CANARY, NULL, 0, &resp), 404);
	buf_release(&resp);
	snprintf(needle, sizeof(needle), "request_id=%s", http_client_last_request_id(c));
	wait_for_log(needle, &log);
	line = line_with(&log, needle);
	assert_non_null(strstr(line, "status=404"));
	assert_non_null(strstr(line, "route=- "));
	free(line);

	/* no body, no header value, no query value, no token anywhere in the log */
	assert_null(strstr(log.ptr, BODY_CANARY));
	assert_null(strstr(log.ptr, HEADER_CANARY));
	assert_null(strstr(log.ptr, QUERY_CANARY));
	assert_null(strstr(log.ptr, "AUTHCANARY"));
	buf_release(&log);
	http_client_free(c);
}

static void test_json_body_and_errors(void **state)
{
	(void)state;
	struct http_client *c = client(0);
	struct buf resp;
	json_t *out = NULL, *in;
	char msg[HTTP_CLIENT_MESSAGE_MAX];

	const char *dup = "{\"name\":\"a\",\"name\":\"b\"}";
	assert_int_equal(request(c, "POST", "/v1/json", dup, strlen(dup), &resp), 400);
	assert_error_shape(&resp, "invalid_argument");
	assert_non_null(strstr(resp.ptr, "duplicate key"));
	buf_release(&resp);

	in = json_pack("{s:s,s:s}", "name", "a", "nmae", "VALUECANARY");
	assert_int_equal(http_client_call_json(c, "POST", "/v1/json", in, 0, &out, msg, sizeof(msg)),
			 COFFER_ERR_INVALID);
	assert_string_equal(msg, "unknown field \"nmae\"");
	json_decref(in);

	in = json_pack("{s:s}", "name", "app-1");
	assert_int_equal(http_client_call_json(c, "POST", "/v1/json", in, 0, &out, msg, sizeof(msg)), COFFER_OK);
	assert_string_equal(json_string_value(json_object_get(out, "name")), "app-1");
	json_decref(out);
	json_decref(in);

	/* a handler that returns an error without a reply, and one that forgets to reply */
	out = NULL;
	assert_int_equal(http_client_call_json(c, "PUT", "/v1/conflict", NULL, 0, &out, msg, sizeof(msg)),
			 COFFER_ERR_CONFLICT);
	assert_null(out);
	assert_int_equal(request(c, "GET", "/v1/noreply", NULL, 0, &resp), 500);
	assert_error_shape(&resp, "internal");
	buf_release(&resp);
	http_client_free(c);
}

static void test_client_response_limit(void **state)
{
	(void)state;
	struct http_client *c = client(0);
	struct buf resp;
	int status = -1;

	/* refused on the declared length */
	buf_init(&resp, ONE_MB);
	assert_int_equal(http_client_request(c, "GET", "/v1/big", NULL, 0, 1000, &status, &resp),
			 COFFER_ERR_TOO_LARGE);
	assert_int_equal(status, -1);
	assert_int_equal(resp.len, 0);
	buf_release(&resp);

	/* refused by the write callback when the buffer is the tighter limit */
	buf_init(&resp, 1000);
	assert_int_equal(http_client_request(c, "GET", "/v1/big", NULL, 0, ONE_MB, &status, &resp),
			 COFFER_ERR_TOO_LARGE);
	assert_int_equal(status, -1);
	buf_release(&resp);

	/* and the same handle still works with room for the answer */
	assert_int_equal(request(c, "GET", "/v1/big", NULL, 0, &resp), 200);
	assert_true(resp.len > BIG_REPLY_LEN);
	buf_release(&resp);
	http_client_free(c);
}

static void test_client_closed_port(void **state)
{
	(void)state;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char url[64];
	struct http_client *c = NULL;
	struct buf resp;
	int status = -1;

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd); /* bound, never listening, now closed: nobody is there */
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));

	assert_int_equal(http_client_new(url, 5000, &c), COFFER_OK);
	buf_init(&resp, ONE_MB);
	assert_int_equal(http_client_request(c, "GET", "/v1/ping", NULL, 0, 0, &status, &resp),
			 COFFER_ERR_UNAVAILABLE);
	assert_int_equal(status, -1);
	buf_release(&resp);
	http_client_free(c);

	assert_int_equal(http_client_new("ftp://127.0.0.1", 0, &c), COFFER_ERR_INVALID);
}

/* A loopback port with a socket in state st: closed (nobody there) or listening and never accepting. */
static int loopback_port(int listening, int *fd_out)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	if (listening)
		assert_int_equal(listen(fd, 8), 0);
	else
		close(fd);
	*fd_out = listening ? fd : -1;
	return ntohs(sa.sin_port);
}

/*
 * Several base URLs (endpoints.h): a refused connection moves any request
 * to the next URL; one sent and not answered moves a GET only; the URL that
 * answered stays the current one; with none answering the error names each.
 */
static void test_client_failover(void **state)
{
	(void)state;
	int silent_fd, none;
	int dead = loopback_port(0, &none), dead2 = loopback_port(0, &none), silent = loopback_port(1, &silent_fd);
	char list[256];
	struct http_client *c = NULL;
	struct buf resp;
	int status = -1;
	buf_init(&resp, ONE_MB);

	/* refused, then the live server: a PUT goes to the live one (nothing was sent to the dead one) */
	snprintf(list, sizeof(list), "http://127.0.0.1:%d, %s/", dead, base_url);
	assert_int_equal(http_client_new(list, 5000, &c), COFFER_OK);
	assert_int_equal(http_client_request(c, "PUT", "/v1/conflict", NULL, 0, 0, &status, &resp), COFFER_OK);
	assert_int_equal(status, 409);
	assert_string_equal(http_client_last_error(c), "");
	/* sticky: the live one is current now, for this client and a new one with the same list */
	assert_int_equal(endpoints_current(list, 2), 1);
	http_client_free(c);
	assert_int_equal(http_client_new(list, 5000, &c), COFFER_OK);
	int before = atomic_load(&calls_ping);
	assert_int_equal(http_client_request(c, "GET", "/v1/ping", NULL, 0, 0, &status, &resp), COFFER_OK);
	assert_int_equal(status, 200);
	assert_int_equal(atomic_load(&calls_ping), before + 1);
	http_client_free(c);

	/* sent to a server that never answers: a PUT is not resent (its outcome is unknown), a GET is */
	snprintf(list, sizeof(list), "http://127.0.0.1:%d,%s", silent, base_url);
	assert_int_equal(http_client_new(list, 1000, &c), COFFER_OK);
	status = -1;
	assert_int_equal(http_client_request(c, "PUT", "/v1/conflict", NULL, 0, 0, &status, &resp),
			 COFFER_ERR_UNAVAILABLE);
	assert_int_equal(status, -1);
	assert_non_null(strstr(http_client_last_error(c), "outcome is unknown"));
	endpoints_set_current(list, 0);
	http_client_no_resend(c); /* a one-time nonce: not even a GET is resent */
	assert_int_equal(http_client_request(c, "GET", "/v1/ping", NULL, 0, 0, &status, &resp), COFFER_ERR_UNAVAILABLE);
	assert_int_equal(endpoints_current(list, 2), 1); /* but the next request starts at the next URL */
	http_client_free(c);
	endpoints_set_current(list, 0);
	assert_int_equal(http_client_new(list, 1000, &c), COFFER_OK);
	before = atomic_load(&calls_ping);
	assert_int_equal(http_client_request(c, "GET", "/v1/ping", NULL, 0, 0, &status, &resp), COFFER_OK);
	assert_int_equal(status, 200);
	assert_int_equal(atomic_load(&calls_ping), before + 1);
	http_client_free(c);
	close(silent_fd);

	/* nobody answers: the error names every URL tried */
	snprintf(list, sizeof(list), "http://127.0.0.1:%d,http://127.0.0.1:%d", dead, dead2);
	assert_int_equal(http_client_new(list, 5000, &c), COFFER_OK);
	assert_int_equal(http_client_request(c, "GET", "/v1/ping", NULL, 0, 0, &status, &resp), COFFER_ERR_UNAVAILABLE);
	char want[64];
	snprintf(want, sizeof(want), "http://127.0.0.1:%d: ", dead);
	assert_non_null(strstr(http_client_last_error(c), want));
	snprintf(want, sizeof(want), "http://127.0.0.1:%d: ", dead2);
	assert_non_null(strstr(http_client_last_error(c), want));
	http_client_free(c);
	buf_release(&resp);

	/* a list is checked whole */
	assert_int_equal(http_client_new("http://127.0.0.1:1,ftp://127.0.0.1", 0, &c), COFFER_ERR_INVALID);
	assert_int_equal(http_client_new("http://127.0.0.1:1,,http://127.0.0.1:2", 0, &c), COFFER_ERR_INVALID);
	assert_int_equal(http_client_new("http://127.0.0.1:1,", 0, &c), COFFER_ERR_INVALID);
}

/* The list's parsing and the rule of what may go to the next URL. */
static void test_endpoints(void **state)
{
	struct endpoints e;
	char nine[9 * 24] = "";
	(void)state;
	assert_int_equal(endpoints_parse(" http://a:1/ ,https://b:2//,http://c", &e), COFFER_OK);
	assert_int_equal(e.n, 3);
	assert_string_equal(e.url[0], "http://a:1");
	assert_string_equal(e.url[1], "https://b:2");
	assert_string_equal(e.url[2], "http://c");
	assert_int_equal(endpoints_parse("http://a", &e), COFFER_OK);
	assert_int_equal(e.n, 1);
	assert_int_equal(endpoints_parse("", &e), COFFER_ERR_INVALID);
	assert_int_equal(endpoints_parse("http://", &e), COFFER_ERR_INVALID);
	assert_int_equal(endpoints_parse("http://a b", &e), COFFER_ERR_INVALID);
	assert_int_equal(endpoints_parse("http://a,", &e), COFFER_ERR_INVALID);
	assert_int_equal(e.n, 0);
	for (int i = 0; i < 9; i++)
		snprintf(nine + strlen(nine), sizeof(nine) - strlen(nine), "%shttp://h%d", i ? "," : "", i);
	assert_int_equal(endpoints_parse(nine, &e), COFFER_ERR_TOO_LARGE);

	assert_int_equal(endpoints_current("http://x,http://y", 2), 0);
	endpoints_set_current("http://x,http://y", 1);
	assert_int_equal(endpoints_current("http://x,http://y", 2), 1);
	assert_int_equal(endpoints_current("http://x,http://y", 1), 0); /* never past n */
	assert_int_equal(endpoints_current("http://y,http://x", 2), 0);

	assert_true(endpoints_try_next(ENDPOINTS_NOT_SENT, 0));
	assert_true(endpoints_try_next(ENDPOINTS_NOT_SENT, 1));
	assert_false(endpoints_try_next(ENDPOINTS_NO_ANSWER, 0));
	assert_true(endpoints_try_next(ENDPOINTS_NO_ANSWER, 1));
	assert_false(endpoints_try_next(ENDPOINTS_ANSWERED_UNAVAILABLE, 0));
	assert_true(endpoints_try_next(ENDPOINTS_ANSWERED_UNAVAILABLE, 1));
	assert_false(endpoints_try_next(ENDPOINTS_ANSWERED, 1));
}

struct worker {
	int ok;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct http_client *c = NULL;
	struct buf resp;
	char path[64];
	if (http_client_new(base_url, 10000, &c))
		return NULL;
	buf_init(&resp, ONE_MB);
	for (int i = 0; i < PER_THREAD; i++) {
		int status = 0;
		snprintf(path, sizeof(path), "/v1/apps/a/secrets/S%d", i);
		if (http_client_request(c, "GET", path, NULL, 0, 0, &status, &resp) == COFFER_OK && status == 200 &&
		    strstr(resp.ptr, "\"app\":\"a\""))
			w->ok++;
	}
	buf_release(&resp);
	http_client_free(c);
	return NULL;
}

static void test_concurrency(void **state)
{
	(void)state;
	pthread_t th[THREADS];
	struct worker w[THREADS];
	int before = atomic_load(&calls_params), total = 0;
	memset(w, 0, sizeof(w));
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		total += w[i].ok;
	}
	assert_int_equal(total, THREADS * PER_THREAD);
	assert_int_equal(atomic_load(&calls_params), before + THREADS * PER_THREAD);
}

static atomic_int slow_entered, slow_done;

static enum coffer_err h_slow(struct http_request *req, void *ctx)
{
	(void)ctx;
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	atomic_store(&slow_entered, 1);
	nanosleep(&ts, NULL);
	atomic_store(&slow_done, 1);
	return h_ping(req, NULL);
}

struct slow_call {
	char url[64];
	enum coffer_err rc;
	int status;
};

static void *slow_main(void *arg)
{
	struct slow_call *sc = arg;
	struct http_client *c = NULL;
	struct buf resp;
	sc->rc = http_client_new(sc->url, 10000, &c);
	if (sc->rc)
		return NULL;
	buf_init(&resp, ONE_MB);
	sc->rc = http_client_request(c, "GET", "/slow", NULL, 0, 0, &sc->status, &resp);
	buf_release(&resp);
	http_client_free(c);
	return NULL;
}

static void test_graceful_stop(void **state)
{
	(void)state;
	static const struct http_route slow_routes[] = { { "GET", "/slow", 0, 0, h_slow, NULL } };
	struct http_server_config cfg = { .listen = "127.0.0.1:0", .drain_ms = 5000 };
	struct http_server *s = NULL;
	struct slow_call sc = { .rc = COFFER_ERR_INTERNAL, .status = 0 };
	struct http_client *c = NULL;
	struct buf resp;
	pthread_t th;
	int status = -1;

	assert_int_equal(http_server_start(&cfg, slow_routes, 1, NULL, &s), COFFER_OK);
	snprintf(sc.url, sizeof(sc.url), "http://127.0.0.1:%u", (unsigned)http_server_port(s));
	assert_int_equal(pthread_create(&th, NULL, slow_main, &sc), 0);
	for (int i = 0; i < 500 && !atomic_load(&slow_entered); i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	assert_true(atomic_load(&slow_entered));
	http_server_stop(s); /* waits for the request in flight */
	assert_true(atomic_load(&slow_done));
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(sc.rc, COFFER_OK);
	assert_int_equal(sc.status, 200);

	/* and nothing listens any more */
	assert_int_equal(http_client_new(sc.url, 5000, &c), COFFER_OK);
	buf_init(&resp, ONE_MB);
	assert_int_equal(http_client_request(c, "GET", "/slow", NULL, 0, 0, &status, &resp), COFFER_ERR_UNAVAILABLE);
	buf_release(&resp);
	http_client_free(c);
}

static void test_start_refusals(void **state)
{
	(void)state;
	struct http_server *s = NULL;
	struct http_server_config cfg = { .listen = "127.0.0.1:0" };
	/* an authenticated route without a gate fails closed */
	assert_int_equal(http_server_start(&cfg, routes, sizeof(routes) / sizeof(routes[0]), NULL, &s),
			 COFFER_ERR_INVALID);
	static const struct http_route bad[] = { { "GET", "no-slash", 0, 0, h_ping, NULL } };
	cfg.gate = gate;
	assert_int_equal(http_server_start(&cfg, bad, 1, NULL, &s), COFFER_ERR_INVALID);
	cfg.listen = "127.0.0.1";
	assert_int_equal(http_server_start(&cfg, routes, 1, NULL, &s), COFFER_ERR_INVALID);
	/* the port in use */
	char busy[32];
	snprintf(busy, sizeof(busy), "127.0.0.1:%u", (unsigned)http_server_port(server));
	cfg.listen = busy;
	assert_int_equal(http_server_start(&cfg, routes, 1, NULL, &s), COFFER_ERR_IO);
	assert_null(s);
}

/* ---- the server model: parking, limits ---- */

static struct http_waitq *park_q;
static atomic_int park_runs, park_released;

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/*
 * GET /wait?ms=N[&race=1][&key=K]: answers once released (park_released) or
 * N ms after the request came in, and parks on park_q in between (for key K
 * when given: http_request_park_key). race=1 wakes the queue between the
 * ticket and the park, as a change landing between a long poll's read and
 * its park would.
 */
static enum coffer_err h_wait(struct http_request *req, void *ctx)
{
	(void)ctx;
	int runs = atomic_fetch_add(&park_runs, 1) + 1;
	const char *ms_text = http_request_query(req, "ms"), *race = http_request_query(req, "race");
	const char *key = http_request_query(req, "key");
	int64_t limit = ms_text ? atoll(ms_text) : 5000;
	uint64_t ticket = http_waitq_ticket(park_q);
	int64_t left = limit - http_request_age_ms(req);
	if (!atomic_load(&park_released) && left > 0) {
		if (race && runs == 1)
			http_waitq_wake(park_q);
		enum coffer_err rc = key ? http_request_park_key(req, park_q, ticket, left, (uint64_t)atoll(key))
				     : http_request_park(req, park_q, ticket, left);
		if (rc == COFFER_OK)
			return COFFER_OK;
		assert_int_equal(rc, COFFER_ERR_UNAVAILABLE); /* only when the server stops */
	}
	json_t *doc = json_pack("{s:i,s:b}", "runs", runs, "released", atomic_load(&park_released));
	enum coffer_err rc = doc ? http_reply_json(req, 200, doc) : COFFER_ERR_NOMEM;
	json_decref(doc);
	return rc;
}

static const struct http_route park_routes[] = {
	{ "GET", "/wait", 0, 0, h_wait, NULL },
	{ "GET", "/v1/ping", 0, 0, h_ping, NULL },
};

struct wait_call {
	char url[96];
	int status;
	int64_t took;
	json_t *doc;
};

static void *wait_main(void *arg)
{
	struct wait_call *wc = arg;
	struct http_client *c = NULL;
	struct buf resp;
	int64_t t0 = now_ms();
	char base[64];
	const char *path = strstr(wc->url + strlen("http://"), "/");
	snprintf(base, sizeof(base), "%.*s", (int)(path - wc->url), wc->url);
	if (http_client_new(base, 20000, &c))
		return NULL;
	buf_init(&resp, ONE_MB);
	if (http_client_request(c, "GET", path, NULL, 0, 0, &wc->status, &resp) == COFFER_OK)
		if (json_parse_limited(resp.ptr, resp.len, ONE_MB, 4, &wc->doc, NULL))
			wc->doc = NULL;
	wc->took = now_ms() - t0;
	buf_release(&resp);
	http_client_free(c);
	return NULL;
}

static unsigned parked_now(struct http_server *s)
{
	struct http_server_stats st;
	http_server_get_stats(s, &st);
	return st.parked;
}

static void wait_parked(struct http_server *s, unsigned n)
{
	for (int i = 0; i < 500 && parked_now(s) != n; i++)
		sleep_ms(10);
	assert_int_equal(parked_now(s), n);
}

/* A one-thread server, so that a parked request holding its thread would stall everything. */
static struct http_server *park_server(char *base, size_t size)
{
	struct http_server_config cfg = { .listen = "127.0.0.1:0", .threads = 1, .drain_ms = 5000 };
	struct http_server *s = NULL;
	assert_int_equal(http_waitq_new(&park_q), COFFER_OK);
	atomic_store(&park_runs, 0);
	atomic_store(&park_released, 0);
	assert_int_equal(http_server_start(&cfg, park_routes, 2, NULL, &s), COFFER_OK);
	snprintf(base, size, "http://127.0.0.1:%u", (unsigned)http_server_port(s));
	return s;
}

static int json_int(const json_t *doc, const char *key)
{
	return (int)json_integer_value(json_object_get(doc, key));
}

/* Parked requests hold no thread; a wake runs the handler again at once. */
static void test_park_wake(void **state)
{
	(void)state;
	char base[64];
	struct http_server *s = park_server(base, sizeof(base));
	struct wait_call wc[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		memset(&wc[i], 0, sizeof(wc[i]));
		snprintf(wc[i].url, sizeof(wc[i].url), "%s/wait?ms=10000", base);
		assert_int_equal(pthread_create(&th[i], NULL, wait_main, &wc[i]), 0);
	}
	wait_parked(s, 3);
	/* the only thread is free: another request is answered while three wait */
	struct http_client *c = NULL;
	struct buf resp;
	int64_t t0 = now_ms();
	assert_int_equal(http_client_new(base, 5000, &c), COFFER_OK);
	assert_int_equal(request(c, "GET", "/v1/ping", NULL, 0, &resp), 200);
	assert_true(now_ms() - t0 < 1000);
	buf_release(&resp);
	http_client_free(c);
	assert_int_equal(atomic_load(&park_runs), 3);

	atomic_store(&park_released, 1);
	http_waitq_wake(park_q);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(wc[i].status, 200);
		assert_true(wc[i].took < 3000); /* woken, not its deadline */
		assert_true(json_is_true(json_object_get(wc[i].doc, "released")));
		json_decref(wc[i].doc);
	}
	assert_int_equal(atomic_load(&park_runs), 6); /* each ran twice: parked, then answered */
	assert_int_equal(parked_now(s), 0);
	http_server_stop(s);
	http_waitq_free(park_q);
}

/* A keyed wake runs only the requests parked for its key; a wake for all runs every one. */
static void test_park_wake_key(void **state)
{
	(void)state;
	char base[64];
	struct http_server *s = park_server(base, sizeof(base));
	struct wait_call wc[2];
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		memset(&wc[i], 0, sizeof(wc[i]));
		snprintf(wc[i].url, sizeof(wc[i].url), "%s/wait?ms=15000&key=%d", base, i + 1);
		assert_int_equal(pthread_create(&th[i], NULL, wait_main, &wc[i]), 0);
	}
	wait_parked(s, 2);
	assert_int_equal(atomic_load(&park_runs), 2);

	/* key 1: its request runs again (and parks again, not released); key 2's stays parked */
	http_waitq_wake_key(park_q, 1);
	for (int i = 0; i < 500 && atomic_load(&park_runs) < 3; i++)
		sleep_ms(10);
	wait_parked(s, 2);
	sleep_ms(200);
	assert_int_equal(atomic_load(&park_runs), 3);

	/* released, key 2: only the second answers */
	atomic_store(&park_released, 1);
	http_waitq_wake_key(park_q, 2);
	assert_int_equal(pthread_join(th[1], NULL), 0);
	assert_int_equal(wc[1].status, 200);
	assert_true(wc[1].took < 10000); /* woken, not its deadline */
	wait_parked(s, 1);
	assert_int_equal(atomic_load(&park_runs), 4);

	/* a wake for all (key 0) runs the rest */
	http_waitq_wake(park_q);
	assert_int_equal(pthread_join(th[0], NULL), 0);
	assert_int_equal(wc[0].status, 200);
	assert_true(wc[0].took < 10000);
	for (int i = 0; i < 2; i++) {
		assert_true(json_is_true(json_object_get(wc[i].doc, "released")));
		json_decref(wc[i].doc);
	}
	assert_int_equal(atomic_load(&park_runs), 5);
	assert_int_equal(parked_now(s), 0);
	http_server_stop(s);
	http_waitq_free(park_q);
}

/* Without a wake the handler runs again at its deadline; a wake before the park is not lost. */
static void test_park_deadline_and_ticket(void **state)
{
	(void)state;
	char base[64];
	struct http_server *s = park_server(base, sizeof(base));
	struct wait_call wc = { 0 };
	pthread_t th;

	snprintf(wc.url, sizeof(wc.url), "%s/wait?ms=400", base);
	assert_int_equal(pthread_create(&th, NULL, wait_main, &wc), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(wc.status, 200);
	assert_true(wc.took >= 390 && wc.took < 3000);
	assert_int_equal(json_int(wc.doc, "runs"), 2);
	assert_false(json_is_true(json_object_get(wc.doc, "released")));
	json_decref(wc.doc);

	/* woken between its ticket and its park: runs again at once, then parks until its deadline */
	atomic_store(&park_runs, 0);
	memset(&wc, 0, sizeof(wc));
	snprintf(wc.url, sizeof(wc.url), "%s/wait?ms=3000&race=1", base);
	assert_int_equal(pthread_create(&th, NULL, wait_main, &wc), 0);
	wait_parked(s, 1);
	assert_int_equal(atomic_load(&park_runs), 2);
	atomic_store(&park_released, 1);
	http_waitq_wake(park_q);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(wc.status, 200);
	assert_true(wc.took < 2500);
	assert_int_equal(json_int(wc.doc, "runs"), 3);
	json_decref(wc.doc);
	http_server_stop(s);
	http_waitq_free(park_q);
}

/* Stopping runs parked requests again at once: they answer, and the stop does not wait for their deadline. */
static void test_park_stop(void **state)
{
	(void)state;
	char base[64];
	struct http_server *s = park_server(base, sizeof(base));
	struct wait_call wc = { 0 };
	pthread_t th;
	snprintf(wc.url, sizeof(wc.url), "%s/wait?ms=15000", base);
	assert_int_equal(pthread_create(&th, NULL, wait_main, &wc), 0);
	wait_parked(s, 1);
	int64_t t0 = now_ms();
	http_server_stop(s);
	assert_true(now_ms() - t0 < 3000);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(wc.status, 200);
	assert_int_equal(json_int(wc.doc, "runs"), 2);
	json_decref(wc.doc);
	http_waitq_free(park_q);
	assert_int_equal(http_request_park(NULL, NULL, 0, 1), COFFER_ERR_INVALID);
}

/* Connections past the per-address cap are closed at once; an idle or half-sent one after the timeout. */
static void test_limits(void **state)
{
	(void)state;
	struct http_server_config cfg = { .listen = "127.0.0.1:0", .max_per_ip = 2, .timeout_s = 1, .threads = 2 };
	struct http_server *s = NULL, *keep = server;
	char buf[64];
	int fd[3];
	assert_int_equal(http_server_start(&cfg, park_routes, 2, NULL, &s), COFFER_OK);
	server = s; /* raw_connect's target */
	for (int i = 0; i < 3; i++)
		fd[i] = raw_connect();
	server = keep;
	/* the third is over the cap: closed at once without a byte */
	int64_t t0 = now_ms();
	assert_int_equal(recv(fd[2], buf, sizeof(buf), 0), 0);
	assert_true(now_ms() - t0 < 500);
	/* the others are held, then closed after the 1 s timeout: an idle one and a half-sent header */
	assert_true(raw_send(fd[1], "GET /v1/ping HTTP/1.1\r\nHost: x\r\n", 33));
	t0 = now_ms();
	assert_int_equal(recv(fd[0], buf, sizeof(buf), 0), 0);
	assert_int_equal(recv(fd[1], buf, sizeof(buf), 0), 0);
	int64_t took = now_ms() - t0;
	assert_true(took >= 500 && took < 4000);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	http_server_stop(s);
}

static enum coffer_err h_sleepy(struct http_request *req, void *ctx)
{
	sleep_ms(2500);
	return h_ping(req, ctx);
}

/* The idle timeout is about the socket: a handler that runs longer still gets its answer out. */
static void test_slow_handler_outlives_timeout(void **state)
{
	(void)state;
	static const struct http_route sleepy[] = { { "GET", "/slow", 0, 0, h_sleepy, NULL } };
	struct http_server_config cfg = { .listen = "127.0.0.1:0", .timeout_s = 1, .threads = 1 };
	struct http_server *s = NULL;
	struct wait_call wc = { 0 };
	pthread_t th;
	assert_int_equal(http_server_start(&cfg, sleepy, 1, NULL, &s), COFFER_OK);
	snprintf(wc.url, sizeof(wc.url), "http://127.0.0.1:%u/slow", (unsigned)http_server_port(s));
	assert_int_equal(pthread_create(&th, NULL, wait_main, &wc), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(wc.status, 200);
	json_decref(wc.doc);
	http_server_stop(s);
}

static atomic_int nap_entered;

static enum coffer_err h_nap(struct http_request *req, void *ctx)
{
	atomic_store(&nap_entered, 1);
	sleep_ms(300);
	return h_ping(req, ctx);
}

/*
 * A client that sends its request and half-closes is answered and closed at
 * once, even when its FIN is in before the server's first read (the one
 * thread is busy in /nap meanwhile), and a half-sent request with a FIN
 * behind it is closed at once too. libmicrohttpd's edge-triggered epoll
 * mode never read that FIN: both waited for the idle timeout.
 */
static void test_half_close_closed_at_once(void **state)
{
	(void)state;
	static const struct http_route nap[] = { { "GET", "/nap", 0, 0, h_nap, NULL },
						 { "GET", "/v1/ping", 0, 0, h_ping, NULL } };
	static const char req_nap[] = "GET /nap HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char req_ping[] = "GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n";
	struct http_server_config cfg = { .listen = "127.0.0.1:0", .timeout_s = 5, .threads = 1 };
	struct http_server *s = NULL, *keep = server;
	char buf[1024];
	assert_int_equal(http_server_start(&cfg, nap, 2, NULL, &s), COFFER_OK);
	server = s; /* raw_connect's target */
	atomic_store(&nap_entered, 0);
	int busy = raw_connect();
	assert_true(raw_send(busy, req_nap, sizeof(req_nap) - 1));
	for (int i = 0; i < 1000 && !atomic_load(&nap_entered); i++)
		sleep_ms(2);
	assert_true(atomic_load(&nap_entered));
	int whole = raw_connect(), half = raw_connect();
	server = keep;
	assert_true(raw_send(whole, req_ping, sizeof(req_ping) - 1));
	assert_int_equal(shutdown(whole, SHUT_WR), 0);
	assert_true(raw_send(half, req_ping, 20));
	assert_int_equal(shutdown(half, SHUT_WR), 0);
	int64_t t0 = now_ms();
	assert_int_equal(raw_read_status(whole, buf, sizeof(buf)), 200);
	raw_read_status(half, buf, sizeof(buf)); /* until the server closes it */
	assert_true(now_ms() - t0 < 2500);    /* not the 5 s timeout */
	close(whole);
	close(half);
	close(busy);
	http_server_stop(s);
}

/* A keep-alive client whose connection the server closed as idle reconnects by itself, GET and POST. */
static void test_keepalive_after_timeout(void **state)
{
	(void)state;
	struct http_server_config cfg = { .listen = "127.0.0.1:0", .timeout_s = 1, .gate = gate };
	struct http_server *s = NULL;
	struct http_client *c = NULL;
	struct buf resp;
	char url[64];
	assert_int_equal(http_server_start(&cfg, routes, sizeof(routes) / sizeof(routes[0]), NULL, &s), COFFER_OK);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)http_server_port(s));
	assert_int_equal(http_client_new(url, 5000, &c), COFFER_OK);
	struct secret *t = NULL;
	assert_int_equal(secret_from(TOKEN, strlen(TOKEN), &t), COFFER_OK);
	assert_int_equal(http_client_set_token(c, t), COFFER_OK);
	secret_free(t);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(request(c, "GET", "/v1/ping", NULL, 0, &resp), 200);
		buf_release(&resp);
		assert_int_equal(request(c, "POST", "/v1/echo", "{\"a\":1}", 7, &resp), 200);
		buf_release(&resp);
		sleep_ms(1600); /* past the timeout: the server closes the idle connection */
	}
	http_client_free(c);
	http_server_stop(s);
}

/* The pool's size and the connection limit in force (under RLIMIT_NOFILE). */
static void test_pool_and_connection_limit(void **state)
{
	(void)state;
	struct http_server_config cfg = { .listen = "127.0.0.1:0", .threads = 3 };
	struct http_server *s = NULL;
	struct http_server_stats st;
	struct rlimit rl;
	assert_int_equal(http_server_start(&cfg, park_routes, 2, NULL, &s), COFFER_OK);
	http_server_get_stats(s, &st);
	assert_int_equal(st.threads, 3);
	assert_int_equal(st.max_connections, HTTP_SERVER_MAX_CONNECTIONS_DEFAULT);
	http_server_stop(s);

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	cfg.threads = 0;
	cfg.max_connections = (unsigned)rl.rlim_cur + 1000;
	assert_int_equal(http_server_start(&cfg, park_routes, 2, NULL, &s), COFFER_OK);
	http_server_get_stats(s, &st);
	assert_int_equal(st.max_connections, (unsigned)rl.rlim_cur - HTTP_SERVER_FD_RESERVE);
	assert_true(st.threads >= HTTP_SERVER_THREADS_MIN && st.threads <= HTTP_SERVER_THREADS_MAX);
	http_server_stop(s);

	cfg.threads = HTTP_SERVER_THREADS_MAX + 1;
	assert_int_equal(http_server_start(&cfg, park_routes, 2, NULL, &s), COFFER_ERR_INVALID);
	cfg.threads = 4;
	cfg.max_connections = 3; /* fewer than threads */
	assert_int_equal(http_server_start(&cfg, park_routes, 2, NULL, &s), COFFER_ERR_INVALID);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	(void)state;
	struct http_server_config cfg = { .listen = "127.0.0.1:0", .gate = gate, .drain_ms = 2000 };
	log_fd = mkstemp(log_path);
	if (log_fd < 0)
		return -1;
	log_set_fd(log_fd);
	if (http_server_start(&cfg, routes, sizeof(routes) / sizeof(routes[0]), NULL, &server))
		return -1;
	if (http_server_port(server) == 0)
		return -1;
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%u", (unsigned)http_server_port(server));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	http_server_stop(server);
	server = NULL;
	curl_global_cleanup();
	log_set_fd(2);
	close(log_fd);
	unlink(log_path);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_params),
		cmocka_unit_test(test_unknown_path_404),
		cmocka_unit_test(test_wrong_method_405),
		cmocka_unit_test(test_gate_refusal_stops_handler), cmocka_unit_test(test_early_gate),
		cmocka_unit_test(test_body_limit_edge),
		cmocka_unit_test(test_chunked_body_limit),
		cmocka_unit_test(test_ten_mb_body_not_buffered),
		cmocka_unit_test(test_one_mb_header_refused),
		cmocka_unit_test(test_request_ids_distinct),
		cmocka_unit_test(test_access_log),
		cmocka_unit_test(test_json_body_and_errors),
		cmocka_unit_test(test_client_response_limit),
		cmocka_unit_test(test_client_closed_port),
		cmocka_unit_test(test_client_failover),
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_concurrency),
		cmocka_unit_test(test_graceful_stop),
		cmocka_unit_test(test_start_refusals),
		cmocka_unit_test(test_park_wake_key),
		cmocka_unit_test(test_park_wake),
		cmocka_unit_test(test_park_deadline_and_ticket),
		cmocka_unit_test(test_park_stop),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_slow_handler_outlives_timeout),
		cmocka_unit_test(test_half_close_closed_at_once),
		cmocka_unit_test(test_keepalive_after_timeout),
		cmocka_unit_test(test_pool_and_connection_limit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
