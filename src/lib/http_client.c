#include "answersig.h"
#include "endpoints.h"
#include "http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fs.h"
#include "tls.h"
#include "banned.h"

#define REQUEST_ID_MAX 64                     /* bytes kept of a peer's X-Request-Id, NUL included */
#define REQUEST_BODY_MAX ((size_t)16 << 20)   /* a serialised JSON request body */
#define HEADER_LINE_MAX 8192                  /* "Name: value" of a default header */
#define AUTH_PREFIX "Authorization: Bearer "
#define REQUEST_ID_HEADER "X-Request-Id:"
#define ANSWER_SIG_HEADER ANSWERSIG_HEADER ":"
#define ANSWER_SIG_MAX 128

struct http_client {
	CURL *curl;
	char list[HTTP_CLIENT_URL_MAX]; /* the base URL(s) as given: the key of the current one (endpoints.h) */
	struct endpoints eps;
	int no_resend;      /* requests carry a one-time nonce: never resent once sent */
	char base[HTTP_CLIENT_URL_MAX]; /* the one the request goes to now */
	unsigned timeout_ms;
	char *headers[HTTP_CLIENT_HEADERS_MAX]; /* "Name: value" */
	size_t n_headers;
	struct secret *token;
	char request_id[REQUEST_ID_MAX];
	char answer_sig[ANSWER_SIG_MAX];
	const char *peer;   /* host:port within base, for messages */
	int plain_refused;  /* http:// to a host that is not loopback */
	char error[HTTP_CLIENT_ERROR_MAX];
};

struct sink {
	struct buf *b;
	size_t limit;
	int over;
	enum coffer_err rc;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;
static char ca_file[HTTP_CLIENT_CA_PATH_MAX]; /* "": the system's trust store */

/* OpenSSL's X509 verify codes (CURLINFO_SSL_VERIFYRESULT) that a message names. */
#define X509_UNSPECIFIED 1
#define X509_UNABLE_TO_GET_ISSUER_CERT 2
#define X509_CERT_NOT_YET_VALID 9
#define X509_CERT_HAS_EXPIRED 10
#define X509_DEPTH_ZERO_SELF_SIGNED_CERT 18
#define X509_SELF_SIGNED_CERT_IN_CHAIN 19
#define X509_UNABLE_TO_GET_ISSUER_CERT_LOCALLY 20
#define X509_UNABLE_TO_VERIFY_LEAF_SIGNATURE 21
#define X509_HOSTNAME_MISMATCH 62
#define X509_IP_ADDRESS_MISMATCH 64

/* The one place a CURLcode becomes a coffer code; over_limit: our write callback refused. */
static enum coffer_err from_curl(CURLcode cc, int over_limit)
{
	switch (cc) {
	case CURLE_OK:
		return COFFER_OK;
	case CURLE_WRITE_ERROR:
		return over_limit ? COFFER_ERR_TOO_LARGE : COFFER_ERR_IO;
	case CURLE_FILESIZE_EXCEEDED:
		return COFFER_ERR_TOO_LARGE;
	case CURLE_OUT_OF_MEMORY:
		return COFFER_ERR_NOMEM;
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
		return COFFER_ERR_UNAVAILABLE;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		return COFFER_ERR_CRYPTO;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
		return COFFER_ERR_INVALID;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_TOO_MANY_REDIRECTS:
		return COFFER_ERR_PROTOCOL;
	default:
		return COFFER_ERR_IO;
	}
}

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

enum coffer_err http_client_set_ca_file(const char *path)
{
	struct buf probe;
	enum coffer_err rc;

	if (!path) {
		ca_file[0] = '\0';
		return COFFER_OK;
	}
	if (strlen(path) >= sizeof(ca_file))
		return COFFER_ERR_TOO_LARGE;
	buf_init(&probe, (size_t)1 << 20);
	rc = fs_read_file(path, &probe); /* readable now: a typo is reported at startup, not at the first call */
	buf_release(&probe);
	if (!rc)
		rc = str_copy(ca_file, sizeof(ca_file), path);
	return rc;
}

/* Whether base is plain http:// to a host that is not loopback. */
static enum coffer_err plain_refused(const char *base, int *out)
{
	CURLU *u = NULL;
	char *host = NULL;
	enum coffer_err rc = COFFER_OK;

	*out = 0;
	if (strncmp(base, "http://", 7) != 0)
		return COFFER_OK;
	u = curl_url();
	if (!u)
		return COFFER_ERR_NOMEM;
	if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		rc = COFFER_ERR_INVALID;
	else
		*out = !tls_host_is_loopback(host);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

enum coffer_err http_client_new(const char *base_url, unsigned timeout_ms, struct http_client **out)
{
	enum coffer_err rc;
	struct http_client *c = NULL;

	if (!base_url || has_ctl(base_url) ||
	    (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0))
		return COFFER_ERR_INVALID;
	pthread_once(&global_once, global_init);
	rc = from_curl(global_rc, 0);
	if (rc)
		goto out;
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	rc = str_copy(c->list, sizeof(c->list), base_url);
	if (!rc)
		rc = endpoints_parse(base_url, &c->eps);
	for (size_t i = 0; !rc && i < c->eps.n; i++) {
		int refused;
		rc = plain_refused(c->eps.url[i], &refused); /* a malformed URL is refused here */
	}
	if (rc)
		goto out;
	c->timeout_ms = timeout_ms ? timeout_ms : HTTP_CLIENT_TIMEOUT_MS_DEFAULT;
	c->curl = curl_easy_init();
	if (!c->curl) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	*out = c;
	c = NULL;
out:
	http_client_free(c);
	return rc;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	http_client_clear_headers(c);
	secret_free(c->token);
	free(c);
}

enum coffer_err http_client_set_token(struct http_client *c, const struct secret *token)
{
	struct secret *copy = NULL;
	enum coffer_err rc;

	if (token) {
		const unsigned char *p = secret_cbytes(token);
		size_t n = secret_len(token);
		if (n == 0 || n > HTTP_CLIENT_TOKEN_MAX)
			return COFFER_ERR_INVALID;
		/* A token is header-safe text: no controls (CR, LF, NUL) or spaces. */
		for (size_t i = 0; i < n; i++)
			if (p[i] <= 0x20 || p[i] >= 0x7f)
				return COFFER_ERR_INVALID;
		rc = secret_dup(token, &copy);
		if (rc)
			return rc;
	}
	secret_free(c->token);
	c->token = copy;
	return COFFER_OK;
}

enum coffer_err http_client_add_header(struct http_client *c, const char *name, const char *value)
{
	char line[HEADER_LINE_MAX];
	enum coffer_err rc;

	if (!name || !*name || !value || has_ctl(name) || has_ctl(value) || strchr(name, ':') ||
	    strcasecmp(name, "Authorization") == 0)
		return COFFER_ERR_INVALID;
	if (c->n_headers >= HTTP_CLIENT_HEADERS_MAX)
		return COFFER_ERR_TOO_LARGE;
	rc = fmt_into(line, sizeof(line), "%s: %s", name, value);
	if (rc)
		return rc;
	char *copy = strdup(line);
	if (!copy)
		return COFFER_ERR_NOMEM;
	c->headers[c->n_headers++] = copy;
	return COFFER_OK;
}

void http_client_clear_headers(struct http_client *c)
{
	for (size_t i = 0; i < c->n_headers; i++)
		free(c->headers[i]);
	c->n_headers = 0;
}

void http_client_no_resend(struct http_client *c)
{
	c->no_resend = 1;
}

const char *http_client_last_request_id(const struct http_client *c)
{
	return c->request_id;
}

const char *http_client_last_answer_signature(const struct http_client *c)
{
	return c->answer_sig[0] ? c->answer_sig : NULL;
}

const char *http_client_last_error(const struct http_client *c)
{
	return c->error;
}

#define NOT_AFTER_PROBE_MS 2000
#define DATE_MAX 64

/*
 * "has expired (not after DATE)". libcurl fails the handshake before it
 * hands over the certificate, so its date comes from a second handshake
 * that reads the certificate and sends nothing (tls_peer_not_after); if
 * that fails, the message has no date.
 */
static enum coffer_err expired_message(struct http_client *c)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, date[DATE_MAX] = "";
	time_t t;
	struct tm tm;

	if (u && curl_url_set(u, CURLUPART_URL, c->base, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    tls_peer_not_after(host, port, NOT_AFTER_PROBE_MS, &t) == COFFER_OK && gmtime_r(&t, &tm) &&
	    strftime(date, sizeof(date), " (not after %Y-%m-%d %H:%M:%S UTC)", &tm) == 0)
		date[0] = '\0';
	curl_free(port);
	curl_free(host);
	curl_url_cleanup(u);
	return fmt_into(c->error, sizeof(c->error), "the certificate of %s has expired%s", c->peer, date);
}

/* The words for a request that got no answer (c->error); curl's own text (errbuf) when nothing better. */
static void describe_failure(struct http_client *c, CURLcode cc, const char *errbuf)
{
	const char *ca = ca_file[0] ? ca_file : NULL;
	long vr = 0;
	enum coffer_err rc;

	if (cc == CURLE_PEER_FAILED_VERIFICATION &&
	    curl_easy_getinfo(c->curl, CURLINFO_SSL_VERIFYRESULT, &vr) != CURLE_OK)
		vr = -1;
	if (cc != CURLE_PEER_FAILED_VERIFICATION)
		rc = str_copy(c->error, sizeof(c->error), errbuf[0] ? errbuf : curl_easy_strerror(cc));
	else if (vr == X509_CERT_HAS_EXPIRED)
		rc = expired_message(c);
	else if (vr == X509_CERT_NOT_YET_VALID)
		rc = fmt_into(c->error, sizeof(c->error), "the certificate of %s is not valid yet", c->peer);
	else if (vr == 0 || vr == X509_UNSPECIFIED || vr == X509_HOSTNAME_MISMATCH || vr == X509_IP_ADDRESS_MISMATCH)
		/* curl checks the name itself once the chain verified, and marks a failure 1 (libcurl 7.88) */
		rc = fmt_into(c->error, sizeof(c->error), "the certificate of %s is for another name", c->peer);
	else if (vr == X509_UNABLE_TO_GET_ISSUER_CERT || vr == X509_DEPTH_ZERO_SELF_SIGNED_CERT ||
		 vr == X509_SELF_SIGNED_CERT_IN_CHAIN || vr == X509_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		 vr == X509_UNABLE_TO_VERIFY_LEAF_SIGNATURE)
		rc = fmt_into(c->error, sizeof(c->error), "the certificate of %s is not signed by %s%s%s", c->peer,
			      ca ? "the CA in '" : "a CA this system trusts", ca ? ca : "", ca ? "'" : "");
	else
		rc = fmt_into(c->error, sizeof(c->error), "the certificate of %s does not verify (X509 error %ld)",
			      c->peer, vr);
	if (rc)
		if (str_copy(c->error, sizeof(c->error), curl_easy_strerror(cc)))
			c->error[0] = '\0';
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb;
	if (n > s->limit - s->b->len) {
		s->over = 1;
		return 0;
	}
	s->rc = buf_add(s->b, data, n);
	if (s->rc == COFFER_ERR_TOO_LARGE)
		s->over = 1;
	return s->rc ? 0 : n;
}

/* The value of header line data if it is name's: its leading plain characters (set) in out; else out is kept. */
static void keep_header(const char *data, size_t n, const char *name, int b64, char *out, size_t size)
{
	size_t i = strlen(name), j = 0;
	if (n <= i || strncasecmp(data, name, i) != 0)
		return;
	while (i < n && data[i] == ' ')
		i++;
	for (; i < n && j + 1 < size; i++) {
		char ch = data[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-' ||
		      (b64 && ch == '_')))
			break;
		out[j++] = ch;
	}
	out[j] = '\0';
}

/* Keeps the peer's X-Request-Id and answer signature (only their plain characters); every other header is ignored. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct http_client *c = userdata;
	size_t n = size * nmemb;
	keep_header(data, n, ANSWER_SIG_HEADER, 1, c->answer_sig, sizeof(c->answer_sig));
	keep_header(data, n, REQUEST_ID_HEADER, 0, c->request_id, sizeof(c->request_id));
	return n;
}

static enum coffer_err add_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *l = curl_slist_append(*list, line);
	if (!l)
		return COFFER_ERR_NOMEM;
	*list = l;
	return COFFER_OK;
}

/* Wipes every header line (curl's copies, the bearer among them) and frees the list. */
static void free_headers(struct curl_slist *list)
{
	for (struct curl_slist *l = list; l; l = l->next)
		if (l->data)
			sodium_memzero(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

static int method_sends_body(const char *method)
{
	return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0;
}

/* One try of a request at c->base; *sent: some of it may have reached the server. */
static enum coffer_err attempt(struct http_client *c, const char *method, const char *path, const void *body,
			       size_t body_len, size_t max_response, int *status, struct buf *response, int *sent)
{
	enum coffer_err rc;
	CURLcode cc = CURLE_OK;
	struct curl_slist *headers = NULL;
	struct secret *auth = NULL;
	char url[HTTP_CLIENT_URL_MAX];
	char errbuf[CURL_ERROR_SIZE];
	struct sink sink = { .b = response, .limit = max_response ? max_response : HTTP_CLIENT_RESPONSE_MAX_DEFAULT };
	long code = 0, request_size = 0;

	*sent = 0;
	rc = fmt_into(url, sizeof(url), "%s%s", c->base, path);
	if (rc)
		goto out;
	buf_reset(response);
	c->request_id[0] = '\0';
	c->answer_sig[0] = '\0';
	c->error[0] = '\0';
	errbuf[0] = '\0';
	if (c->plain_refused) {
		rc = COFFER_ERR_FORBIDDEN;
		if (fmt_into(c->error, sizeof(c->error), "refusing plain http:// to %s, which is not a loopback "
							"address: use https://", c->peer))
			c->error[0] = '\0';
		goto out;
	}

	rc = add_header(&headers, "Accept: application/json");
	for (size_t i = 0; i < c->n_headers && !rc; i++)
		rc = add_header(&headers, c->headers[i]);
	if (!rc && (body || method_sends_body(method)))
		rc = add_header(&headers, "Content-Type: application/json");
	if (!rc && c->token) {
		size_t pl = sizeof(AUTH_PREFIX) - 1, tl = secret_len(c->token);
		rc = secret_new(pl + tl, &auth); /* secret_new keeps a NUL after the bytes */
		if (!rc) {
			memcpy(secret_bytes(auth), AUTH_PREFIX, pl);
			memcpy(secret_bytes(auth) + pl, secret_cbytes(c->token), tl);
			rc = add_header(&headers, (const char *)secret_cbytes(auth));
		}
	}
	if (rc)
		goto out;

	curl_easy_reset(c->curl); /* keeps the live connection */
	long connect_ms = c->timeout_ms < HTTP_CLIENT_CONNECT_TIMEOUT_MS ? c->timeout_ms : HTTP_CLIENT_CONNECT_TIMEOUT_MS;
	cc = curl_easy_setopt(c->curl, CURLOPT_URL, url);
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	/* the CA given is the only one trusted: not also the system's folder of CAs */
	if (!cc && ca_file[0])
		cc = curl_easy_setopt(c->curl, CURLOPT_CAINFO, ca_file);
	if (!cc && ca_file[0])
		cc = curl_easy_setopt(c->curl, CURLOPT_CAPATH, NULL);
	/* never through a proxy from the environment (http_proxy, ALL_PROXY): tokens go to the server only */
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_PROXY, "");
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_write);
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &sink);
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);
	if (!cc)
		cc = curl_easy_setopt(c->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)sink.limit);
	if (!cc && (body || method_sends_body(method))) {
		cc = curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		if (!cc)
			cc = curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body_len ? body : "");
		if (!cc)
			cc = curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	} else if (!cc && strcmp(method, "HEAD") == 0) {
		cc = curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
	} else if (!cc && strcmp(method, "GET") != 0) {
		cc = curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	}
	if (!cc) {
		cc = curl_easy_perform(c->curl);
		/* bytes of the request written to a connection: 0 when it never got one (refused, TLS) */
		if (cc && curl_easy_getinfo(c->curl, CURLINFO_REQUEST_SIZE, &request_size) != CURLE_OK)
			request_size = 1;
		*sent = !cc || request_size > 0;
	}
	if (!cc)
		cc = curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
	/* The list is freed below, errbuf goes out of scope: do not leave curl pointing at them. */
	(void)curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	(void)curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, (char *)NULL);
	rc = from_curl(cc, sink.over);
	if (rc && !sink.over)
		describe_failure(c, cc, errbuf);
	if (!rc && sink.rc)
		rc = sink.rc;
	if (rc)
		goto out;
	if (code < 100 || code > 599) {
		rc = COFFER_ERR_PROTOCOL;
		goto out;
	}
	*status = (int)code;
out:
	free_headers(headers);
	secret_free(auth);
	if (rc)
		buf_reset(response);
	return rc;
}

/* Points the client at URL i of its list. */
static enum coffer_err use_url(struct http_client *c, size_t i)
{
	enum coffer_err rc = str_copy(c->base, sizeof(c->base), c->eps.url[i]);
	if (rc)
		return rc;
	c->peer = c->base + (c->base[4] == 's' ? 8 : 7);
	return plain_refused(c->base, &c->plain_refused);
}

/* Adds "URL: why" of a failed try to the list of them (errors), "; " between. */
static void note_failure(const struct http_client *c, char *errors, size_t size, const char *extra)
{
	size_t len = strlen(errors);
	if (fmt_into(errors + len, size - len, "%s%s: %s%s", len ? "; " : "", c->base,
		     c->error[0] ? c->error : "no answer", extra))
		errors[len] = '\0';
}

/*
 * The request on the list's current URL, then on the next ones as
 * endpoints_try_next allows (endpoints.h). The one that answers becomes
 * current; after a failure the next request starts at the following one.
 */
enum coffer_err http_client_request(struct http_client *c, const char *method, const char *path, const void *body,
				    size_t body_len, size_t max_response, int *status, struct buf *response)
{
	enum coffer_err rc = COFFER_ERR_INVALID;
	char errors[HTTP_CLIENT_ERROR_MAX] = "";
	size_t n = c->eps.n, first;
	int resendable;

	if (!method || !*method || has_ctl(method) || strchr(method, ' ') || !path || path[0] != '/' ||
	    has_ctl(path) || strchr(path, ' ') || (body_len && !body))
		return COFFER_ERR_INVALID;
	resendable = !c->no_resend && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
	first = endpoints_current(c->list, n);
	for (size_t k = 0; k < n; k++) {
		size_t i = (first + k) % n;
		int sent = 0;
		enum endpoints_outcome o;
		rc = use_url(c, i);
		if (rc)
			break;
		rc = attempt(c, method, path, body, body_len, max_response, status, response, &sent);
		if (rc == COFFER_OK)
			o = *status == 502 || *status == 503 ? ENDPOINTS_ANSWERED_UNAVAILABLE : ENDPOINTS_ANSWERED;
		else if (rc == COFFER_ERR_UNAVAILABLE || rc == COFFER_ERR_CRYPTO || rc == COFFER_ERR_FORBIDDEN)
			o = sent ? ENDPOINTS_NO_ANSWER : ENDPOINTS_NOT_SENT;
		else
			break; /* not the server's fault (too large, out of memory, ...): the same anywhere */
		if (o == ENDPOINTS_ANSWERED) {
			if (n > 1 && i != first)
				endpoints_set_current(c->list, i);
			break;
		}
		int next = k + 1 < n && endpoints_try_next(o, resendable);
		int unknown = n > 1 && !endpoints_try_next(o, resendable); /* on the last URL too */
		if (o == ENDPOINTS_ANSWERED_UNAVAILABLE &&
		    fmt_into(c->error, sizeof(c->error), "answered HTTP %d", *status))
			c->error[0] = '\0';
		note_failure(c, errors, sizeof(errors),
			     unknown ? " (the request was sent: its outcome is unknown, so it is not sent to "
				       "another URL)"
				     : "");
		if (n > 1)
			endpoints_set_current(c->list, (i + 1) % n); /* the next request starts elsewhere */
		if (!next)
			break;
	}
	if (rc == COFFER_OK)
		c->error[0] = '\0'; /* an answer came */
	else if (n > 1 && errors[0] && str_copy(c->error, sizeof(c->error), errors))
		c->error[0] = '\0';
	return rc;
}

/* A peer's message, made safe to print: control characters become '?'. */
static void copy_message(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	if (!dst || !size)
		return;
	for (; src && src[i] && i + 1 < size; i++) {
		unsigned char ch = (unsigned char)src[i];
		dst[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	dst[i] = '\0';
}

/* The code and message of a non-2xx answer. */
static enum coffer_err peer_error(int status, const struct buf *resp, size_t limit, char *msg, size_t msg_size)
{
	enum coffer_err rc = coffer_err_from_http_status(status);
	json_t *doc = NULL, *err = NULL;
	const char *name = NULL, *text = NULL;

	if (rc == COFFER_OK)
		rc = COFFER_ERR_PROTOCOL;
	if (resp->len && !json_parse_limited(resp->ptr, resp->len, limit, JSON_MAX_DEPTH_DEFAULT, &doc, NULL) &&
	    !json_get_object(doc, "error", 1, &err, NULL) && !json_get_string(err, "code", 1, &name, NULL, NULL)) {
		enum coffer_err named = coffer_err_from_name(name);
		rc = named == COFFER_OK ? COFFER_ERR_PROTOCOL : named;
		if (json_get_string(err, "message", 0, &text, NULL, NULL))
			text = NULL;
	}
	copy_message(msg, msg_size, text ? text : coffer_strerror(rc));
	json_decref(doc);
	return rc;
}

enum coffer_err http_client_call_json(struct http_client *c, const char *method, const char *path,
				      const json_t *body, size_t max_response, json_t **out, char *msg,
				      size_t msg_size)
{
	enum coffer_err rc;
	struct buf req, resp;
	int status = 0;
	json_t *doc = NULL;
	size_t limit = max_response ? max_response : HTTP_CLIENT_RESPONSE_MAX_DEFAULT;

	buf_init(&req, REQUEST_BODY_MAX);
	buf_init(&resp, limit);
	if (body) {
		rc = json_dump_buf(body, &req);
		if (rc)
			goto out;
	}
	rc = http_client_request(c, method, path, body ? req.ptr : NULL, req.len, limit, &status, &resp);
	if (rc) {
		copy_message(msg, msg_size, c->error[0] ? c->error : coffer_strerror(rc));
		goto out;
	}
	if (status < 200 || status > 299) {
		rc = peer_error(status, &resp, limit, msg, msg_size);
		goto out;
	}
	if (resp.len && json_parse_limited(resp.ptr, resp.len, limit, JSON_MAX_DEPTH_DEFAULT, &doc, NULL)) {
		rc = COFFER_ERR_PROTOCOL;
		copy_message(msg, msg_size, "invalid json in answer");
		goto out;
	}
	*out = doc;
	doc = NULL;
out:
	json_decref(doc);
	buf_release(&resp);
	buf_release(&req);
	return rc;
}
