/*
 * client.c — one command's calls to the API (client.h): the URL and the
 * token (flag, environment, config file), JSON requests and the reporting
 * of their failures, paths, and printing what came back.
 */
#include "client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "format.h"
#include "banned.h"

enum coffer_err client_error(enum coffer_err rc, const char *fmt, ...)
{
	va_list ap;
	client_live_clear(); /* an error during a wait starts on a line of its own */
	fputs("coffer: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return rc;
}

void client_blank_arg(char *s)
{
	if (s)
		sodium_memzero(s, strlen(s));
}

enum coffer_err client_connect(struct client *c)
{
	char path[CLI_CONFIG_PATH_MAX] = "";
	char url[HTTP_CLIENT_URL_MAX] = "";
	char ca[HTTP_CLIENT_CA_PATH_MAX] = "";
	struct secret *config_token = NULL;
	const char *env_url = getenv("COFFER_API_URL");
	const char *env_token = getenv("COFFER_TOKEN");
	const char *env_ca = getenv("COFFER_CA");
	const char *ca_from = c->ca_flag ? "--ca" : env_ca && *env_ca ? "COFFER_CA" : "\"ca\" in the config file";
	enum coffer_err rc = COFFER_OK;

	if (!c->token && env_token && *env_token) {
		rc = secret_from(env_token, strlen(env_token), &c->token);
		if (rc)
			return client_error(rc, "%s", coffer_strerror(rc));
	}
	if (env_url && *env_url) {
		rc = str_copy(url, sizeof(url), env_url);
		if (rc)
			return client_error(COFFER_ERR_USAGE, "COFFER_API_URL is too long");
	}
	if (c->ca_flag || (env_ca && *env_ca)) {
		rc = str_copy(ca, sizeof(ca), c->ca_flag ? c->ca_flag : env_ca);
		if (rc)
			return client_error(COFFER_ERR_USAGE, "the CA file's path (%s) is too long", ca_from);
	}
	if (!url[0] || !c->token || !ca[0]) {
		if (cli_config_path(path, sizeof(path)))
			path[0] = '\0';
		rc = cli_config_read(url[0] ? NULL : url, url[0] ? 0 : sizeof(url), ca[0] ? NULL : ca,
				     ca[0] ? 0 : sizeof(ca), &config_token);
		if (rc == COFFER_ERR_FORBIDDEN)
			return client_error(rc, "config file '%s' may be read or written by group or others: "
						"make it private (chmod 600)", path);
		if (rc == COFFER_ERR_INVALID || rc == COFFER_ERR_TOO_LARGE)
			return client_error(rc, "config file '%s' is not a JSON object with only the string fields "
						"\"api_url\", \"ca\", \"token\", \"keeper_url\", \"keeper_public_key\", "
						"\"deployer_id\", \"deployer_org_id\" and \"deployer_app_id\"", path);
		if (rc)
			return client_error(rc, "cannot read config file '%s': %s", path, coffer_strerror(rc));
		if (!c->token) {
			c->token = config_token;
			config_token = NULL;
		}
		secret_free(config_token);
	}
	if (!url[0])
		return client_error(COFFER_ERR_USAGE, "no API URL: set COFFER_API_URL, or run 'coffer dev', which "
						      "writes it to the config file (%s)", path[0] ? path : "none");
	if (!c->token)
		return client_error(COFFER_ERR_UNAUTH, "no access token: use -t TOKEN, set COFFER_TOKEN, or put "
						       "\"token\" in the config file");
	rc = http_client_set_ca_file(ca[0] ? ca : NULL);
	if (rc)
		return client_error(rc, "cannot read the CA file '%s' (%s): %s", ca, ca_from, coffer_strerror(rc));
	rc = str_copy(c->api_url, sizeof(c->api_url), url);
	if (!rc)
		rc = env_url && *env_url ? str_copy(c->api_url_from, sizeof(c->api_url_from), "COFFER_API_URL")
					 : fmt_into(c->api_url_from, sizeof(c->api_url_from), "the config file %s", path);
	if (!rc)
		rc = http_client_new(url, CLIENT_TIMEOUT_MS, &c->http);
	if (rc == COFFER_ERR_INVALID)
		return client_error(COFFER_ERR_USAGE,
				    "invalid API URL '%s': it must start with http:// or https:// "
				    "(a list: each of its comma-separated URLs)",
				    url);
	if (rc)
		return client_error(rc, "%s", coffer_strerror(rc));
	rc = http_client_set_token(c->http, c->token);
	if (rc == COFFER_ERR_INVALID)
		return client_error(COFFER_ERR_UNAUTH, "the access token is malformed");
	if (rc)
		return client_error(rc, "%s", coffer_strerror(rc));
	return COFFER_OK;
}

/* A message from the API, fit for a terminal: control characters become '?'. */
static void print_peer_message(const char *msg)
{
	char safe[HTTP_CLIENT_MESSAGE_MAX];
	size_t i = 0;
	for (; msg[i] && i + 1 < sizeof(safe); i++) {
		unsigned char ch = (unsigned char)msg[i];
		safe[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	safe[i] = '\0';
	client_error(COFFER_OK, "%s", safe);
}

/*
 * The code and message of a non-2xx answer; the message is printed, but
 * for a 409 "... changed meanwhile" while c->retry_changed (sign.h: the
 * command reads again and signs again), which sets c->changed instead.
 */
static enum coffer_err api_error(struct client *c, int status, const struct buf *resp)
{
	enum coffer_err rc = coffer_err_from_http_status(status);
	json_t *doc = NULL, *err = NULL;
	const char *name = NULL, *text = NULL;

	if (rc == COFFER_OK)
		rc = COFFER_ERR_PROTOCOL;
	if (resp->len &&
	    !json_parse_limited(resp->ptr, resp->len, resp->max, JSON_MAX_DEPTH_DEFAULT, &doc, NULL) &&
	    !json_get_object(doc, "error", 1, &err, NULL) && !json_get_string(err, "code", 1, &name, NULL, NULL)) {
		enum coffer_err named = coffer_err_from_name(name);
		if (named != COFFER_OK && (named != COFFER_ERR_PROTOCOL || strcmp(name, "protocol_error") == 0))
			rc = named;
		if (json_get_string(err, "message", 0, &text, NULL, NULL))
			text = NULL;
	}
	if (status == 409 && text && strstr(text, "changed meanwhile") && c->retry_changed)
		c->changed = 1;
	else if (text && *text)
		print_peer_message(text);
	else
		client_error(rc, "the API answered HTTP %d (%s)", status, coffer_strerror(rc));
	json_decref(doc);
	return rc;
}

static enum coffer_err call(struct client *c, const char *method, const char *path, const void *body, size_t len,
			    json_t **out)
{
	struct buf resp;
	json_t *doc = NULL;
	int status = 0;
	enum coffer_err rc;

	buf_init_wiping(&resp, HTTP_CLIENT_RESPONSE_MAX_DEFAULT);
	rc = http_client_request(c->http, method, path, body, len, 0, &status, &resp);
	c->unreachable = rc == COFFER_ERR_UNAVAILABLE;
	if (rc == COFFER_ERR_UNAVAILABLE) {
		if (!c->quiet_unreachable && strchr(c->api_url, ',')) /* the error names each URL tried, with why */
			client_error(rc, "cannot reach the API at any of its URLs (from %s): %s", c->api_url_from,
				     http_client_last_error(c->http));
		else if (!c->quiet_unreachable)
			client_error(rc, "cannot reach the API at %s (from %s)%s%s", c->api_url, c->api_url_from,
				     http_client_last_error(c->http)[0] ? ": " : "", http_client_last_error(c->http));
		if (!c->quiet_unreachable)
			fputs("coffer: is the api running? 'coffer dev' (what 'make run' starts) serves one on this "
			      "machine; to use another, set COFFER_API_URL\n",
			      stderr);
		goto out;
	}
	if (rc && http_client_last_error(c->http)[0]) {
		client_error(rc, "the API at %s: %s", c->api_url, http_client_last_error(c->http));
		goto out;
	}
	if (rc) {
		client_error(rc, "request to the API at %s failed: %s", c->api_url, coffer_strerror(rc));
		goto out;
	}
	if (status < 200 || status > 299) {
		rc = api_error(c, status, &resp);
		goto out;
	}
	if (resp.len && json_parse_limited(resp.ptr, resp.len, resp.max, JSON_MAX_DEPTH_DEFAULT, &doc, NULL)) {
		rc = client_bad_answer("a document that is not valid JSON");
		goto out;
	}
	if (out && !doc) {
		rc = client_bad_answer("an empty body");
		goto out;
	}
	if (out) {
		*out = doc;
		doc = NULL;
	}
out:
	json_decref(doc);
	buf_release(&resp);
	return rc;
}

enum coffer_err client_call(struct client *c, const char *method, const char *path, const json_t *body,
			    json_t **out)
{
	struct buf req;
	enum coffer_err rc = COFFER_OK;

	buf_init_wiping(&req, CLIENT_REQUEST_MAX);
	if (body)
		rc = json_dump_buf(body, &req);
	if (rc)
		client_error(rc, "cannot encode the request: %s", coffer_strerror(rc));
	else
		rc = call(c, method, path, body ? req.ptr : NULL, req.len, out);
	buf_release(&req);
	return rc;
}

enum coffer_err client_call_secret(struct client *c, const char *method, const char *path, const struct secret *body,
				   json_t **out)
{
	return call(c, method, path, secret_cbytes(body), secret_len(body), out);
}

enum coffer_err client_path(char *out, size_t size, const char *prefix, const char *segment, const char *suffix)
{
	char seg[CLIENT_SEGMENT_MAX];
	if (!*segment)
		return client_error(COFFER_ERR_USAGE, "an empty name is not allowed");
	if (format_url_segment(segment, seg, sizeof(seg)) || fmt_into(out, size, "%s%s%s", prefix, seg, suffix))
		return client_error(COFFER_ERR_INVALID, "name too long: '%.64s...'", segment);
	return COFFER_OK;
}

enum coffer_err client_print_json(const json_t *doc)
{
	if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) || fputc('\n', stdout) == EOF ||
	    fflush(stdout))
		return client_error(COFFER_ERR_IO, "cannot write to standard output");
	return COFFER_OK;
}

enum coffer_err client_bad_answer(const char *what)
{
	return client_error(COFFER_ERR_PROTOCOL, "unexpected answer from the API: %s", what);
}

const char *client_str(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}
