/*
 * http_client.h — a small HTTP client over libcurl for the CLI, the agent
 * and API-to-keeper calls.
 *
 * A struct http_client owns one CURL handle, so consecutive requests reuse
 * the connection (keep-alive). A client is NOT thread-safe: use one per
 * thread. The bearer token, if any, is held in a struct secret; the
 * Authorization header is built at request time in secure memory, and
 * curl's copy in the header list is wiped before it is freed (curl's own
 * internal copies are outside our reach). Bodies and header values are
 * never logged. curl_global_init runs once per process on first use.
 *
 * TLS: an https:// server is always verified (its chain against the CA
 * set with http_client_set_ca_file, else the system's trust store; its
 * name against the URL's host); there is no way to turn that off. A plain
 * http:// URL is only used for a loopback host (tls_host_is_loopback):
 * any other is refused before connecting. When a request gets no HTTP
 * answer, http_client_last_error says why in words (an expired
 * certificate, one for another name, one not signed by the CA, ...).
 */
#ifndef COFFER_HTTP_CLIENT_H
#define COFFER_HTTP_CLIENT_H

#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "secret.h"

#define HTTP_CLIENT_TIMEOUT_MS_DEFAULT 30000
#define HTTP_CLIENT_CONNECT_TIMEOUT_MS 10000 /* at most; never more than the request timeout */
#define HTTP_CLIENT_URL_MAX 2048
#define HTTP_CLIENT_HEADERS_MAX 16           /* default headers per client */
#define HTTP_CLIENT_TOKEN_MAX 4096
#define HTTP_CLIENT_RESPONSE_MAX_DEFAULT ((size_t)4 << 20)
#define HTTP_CLIENT_MESSAGE_MAX 256          /* an error message taken from a peer */
#define HTTP_CLIENT_ERROR_MAX 512            /* http_client_last_error, NUL included */
#define HTTP_CLIENT_CA_PATH_MAX 4096

struct http_client;

/*
 * The CA file (PEM) every client of this process verifies servers
 * against; NULL: the system's trust store. A process has one: call it once
 * at startup, before any thread makes a client. COFFER_ERR_NOT_FOUND (or
 * another read error) when the file cannot be read, COFFER_ERR_TOO_LARGE
 * for a path over HTTP_CLIENT_CA_PATH_MAX.
 */
COFFER_MUST_CHECK enum coffer_err http_client_set_ca_file(const char *path);

/*
 * base_url: "http://host:port" (https too), no trailing path is needed;
 * request paths are appended to it. It may be a comma-separated list of
 * such URLs (replicas of one service): a request fails over between them
 * as endpoints.h says. timeout_ms 0 uses the default.
 */
COFFER_MUST_CHECK enum coffer_err http_client_new(const char *base_url, unsigned timeout_ms,
						  struct http_client **out);
void http_client_free(struct http_client *c);

/* Sends "Authorization: Bearer <token>" with every request; token is copied. NULL removes it. */
COFFER_MUST_CHECK enum coffer_err http_client_set_token(struct http_client *c, const struct secret *token);
/*
 * The client's requests carry a one-time nonce (signed host requests): one
 * that was sent is never sent again to another URL, whatever its method.
 */
void http_client_no_resend(struct http_client *c);
/* Drops every header http_client_add_header added (the connection stays): for a client kept between requests. */
void http_client_clear_headers(struct http_client *c);
/* Adds a header sent with every request; not for credentials (see set_token). */
COFFER_MUST_CHECK enum coffer_err http_client_add_header(struct http_client *c, const char *name,
							 const char *value);

/*
 * Why the last request got no HTTP answer, in words fit for a user ("" when
 * it got one); valid until the next request.
 */
const char *http_client_last_error(const struct http_client *c);

/*
 * One request. path starts with '/'. body may be NULL (no body); when
 * given it is sent as application/json. The response body goes to
 * `response` (reset first), limited to max_response bytes (0: the
 * default) and to response->max. Returns COFFER_OK whenever an HTTP answer
 * arrived, whatever its status (in *status); COFFER_ERR_TOO_LARGE for a
 * response over the limit; COFFER_ERR_UNAVAILABLE when the peer cannot be
 * reached or does not answer in time (with several URLs: none could, and
 * http_client_last_error names each URL tried with why); COFFER_ERR_CRYPTO when the server's
 * certificate does not verify; COFFER_ERR_FORBIDDEN for plain http:// to a
 * host that is not loopback (nothing is sent).
 */
COFFER_MUST_CHECK enum coffer_err http_client_request(struct http_client *c, const char *method, const char *path,
						      const void *body, size_t body_len, size_t max_response,
						      int *status, struct buf *response);

/*
 * JSON round trip: body (may be NULL) is serialised, the answer parsed
 * with json_parse_limited. A 2xx answer gives COFFER_OK and *out (the
 * caller json_decref-s it; NULL for an empty body). Any other status gives
 * the code named in the peer's {"error":{"code","message"}} (or one derived
 * from the status) and, if msg is not NULL, the peer's message in msg
 * (or, with no answer, http_client_last_error).
 */
COFFER_MUST_CHECK enum coffer_err http_client_call_json(struct http_client *c, const char *method,
							const char *path, const json_t *body, size_t max_response,
							json_t **out, char *msg, size_t msg_size);

/* The X-Request-Id of the last answer ("" if none); valid until the next request. */
const char *http_client_last_request_id(const struct http_client *c);
/* The last answer's Coffer-Answer-Signature (answersig.h), or NULL; valid until the next request. */
const char *http_client_last_answer_signature(const struct http_client *c);

#endif
