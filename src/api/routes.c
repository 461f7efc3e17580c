/*
 * routes.c — the api's route table (docs/API.md) and the helpers its
 * handlers share. Each row says what the gate must check: the role, the
 * app, the audit; nothing else in the api decides who may call what.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "banned.h"

#ifndef COFFER_VERSION
#define COFFER_VERSION "0.1.0"
#endif

/* bearer routes: the gate needs no body, so it runs before the body is read */
#define AUTH (HTTP_ROUTE_AUTH | HTTP_ROUTE_GATE_EARLY)
#define AUDIT HTTP_ROUTE_AUDIT
#define APP API_ROUTE_APP
/* host-signed routes: the signature covers the body, so the gate runs after it */
#define HOST (HTTP_ROUTE_AUTH | HTTP_ROUTE_HOST)
#define READ API_ROUTE_ROLE(API_ROLE_READ)
#define DEPLOY API_ROUTE_ROLE(API_ROLE_DEPLOY)
#define ADMIN API_ROUTE_ROLE(API_ROLE_ADMIN)

/* The route names are the audit actions. */
static const struct http_route routes[] = {
	{ "GET", "/v1/health", 0, 0, h_health, "health" },
	{ "POST", "/v1/tokens", AUTH | AUDIT | ADMIN, API_BODY_SMALL, h_tokens_create, "tokens.create" },
	{ "GET", "/v1/tokens", AUTH | ADMIN, 0, h_tokens_list, "tokens.list" },
	{ "DELETE", "/v1/tokens/:id", AUTH | AUDIT | ADMIN, 0, h_tokens_revoke, "tokens.revoke" },
	/* any token may rotate itself; another token's rotation is an admin's */
	{ "POST", "/v1/tokens/self/rotate", AUTH | AUDIT | READ, API_BODY_SMALL, h_tokens_rotate, "tokens.rotate" },
	{ "POST", "/v1/tokens/:id/rotate", AUTH | AUDIT | ADMIN, API_BODY_SMALL, h_tokens_rotate, "tokens.rotate" },
	{ "POST", "/v1/apps", AUTH | AUDIT | ADMIN, API_BODY_SMALL, h_apps_create, "apps.create" },
	{ "GET", "/v1/apps", AUTH | READ, 0, h_apps_list, "apps.list" },
	{ "GET", "/v1/apps/:app", AUTH | READ | APP, 0, h_apps_get, "apps.get" },
	{ "DELETE", "/v1/apps/:app", AUTH | AUDIT | ADMIN | APP, 0, h_apps_destroy, "apps.destroy" },
	{ "GET", "/v1/apps/:app/secrets", AUTH | READ | APP, 0, h_secrets_list, "secrets.list" },
	{ "POST", "/v1/apps/:app/secrets", AUTH | AUDIT | DEPLOY | APP, API_BODY_SECRETS, h_secrets_set,
	  "secrets.set" },
	{ "GET", "/v1/apps/:app/secrets/:name/history", AUTH | READ | APP, 0, h_secrets_history, "secrets.history" },
	{ "GET", "/v1/apps/:app/secrets/sealing", AUTH | AUDIT | DEPLOY | APP, 0, h_secrets_sealing, "secrets.sealing" },
	{ "POST", "/v1/apps/:app/secrets/deploy", AUTH | AUDIT | DEPLOY | APP, API_BODY_SMALL, h_secrets_deploy,
	  "secrets.deploy" },
	{ "POST", "/v1/apps/:app/secrets/:name/verify", AUTH | AUDIT | DEPLOY | APP, API_BODY_SMALL * 8,
	  h_secrets_verify, "secrets.verify" },
	{ "POST", "/v1/apps/:app/releases", AUTH | AUDIT | DEPLOY | APP, API_BODY_SMALL, h_releases_create,
	  "releases.create" },
	{ "GET", "/v1/apps/:app/releases", AUTH | READ | APP, 0, h_releases_list, "releases.list" },
	{ "GET", "/v1/apps/:app/releases/:version", AUTH | READ | APP, 0, h_releases_get, "releases.get" },
	{ "GET", "/v1/apps/:app/releases/:version/changes", AUTH | READ | APP, 0, h_releases_changes,
	  "releases.changes" },
	{ "POST", "/v1/apps/:app/releases/:version/rollback", AUTH | AUDIT | DEPLOY | APP, API_BODY_SMALL,
	  h_releases_rollback, "releases.rollback" },
	{ "POST", "/v1/apps/:app/scale", AUTH | AUDIT | DEPLOY | APP, API_BODY_SMALL, h_apps_scale, "apps.scale" },
	{ "GET", "/v1/apps/:app/status", AUTH | READ | APP, 0, h_apps_status, "apps.status" },
	{ "GET", "/v1/apps/:app/machines", AUTH | READ | APP, 0, h_machines_list, "machines.list" },
	{ "DELETE", "/v1/apps/:app/machines/:id", AUTH | AUDIT | DEPLOY | APP, 0, h_machines_destroy,
	  "machines.destroy" },
	{ "POST", "/v1/apps/:app/keys", AUTH | AUDIT | DEPLOY | APP, API_BODY_SMALL, h_kms_gen, "kms.gen" },
	{ "GET", "/v1/apps/:app/keys", AUTH | READ | APP, 0, h_kms_list, "kms.list" },
	{ "POST", "/v1/apps/:app/keys/:name/rotate", AUTH | AUDIT | DEPLOY | APP, 0, h_kms_rotate, "kms.rotate" },
	{ "DELETE", "/v1/apps/:app/keys/:name", AUTH | AUDIT | DEPLOY | APP, 0, h_kms_rm, "kms.rm" },
	{ "GET", "/v1/audit", AUTH | ADMIN, 0, h_audit_list, "audit.list" },
	{ "GET", "/v1/audit/verify", AUTH | ADMIN, 0, h_audit_verify, "audit.verify" },
	{ "POST", "/v1/audit/verify", AUTH | ADMIN, API_BODY_SMALL, h_audit_verify, "audit.verify" },
	{ "GET", "/v1/audit/head", AUTH | ADMIN, 0, h_audit_head, "audit.head" },
	{ "GET", "/v1/hosts", AUTH | ADMIN, 0, h_hosts_list, "hosts.list" },
	{ "POST", "/v1/hosts/:host/revoke", AUTH | AUDIT | ADMIN, 0, h_hosts_revoke, "hosts.revoke" },
	/* signed by a host (hostauth.h), not by a token */
	{ "POST", "/v1/hosts/register", AUDIT | HOST, API_BODY_SMALL, h_hosts_register, "hosts.register" },
	{ "POST", "/v1/hosts/heartbeat", HOST, API_BODY_SMALL, h_hosts_heartbeat, "hosts.heartbeat" },
	{ "GET", "/v1/agent/assignments", HOST, 0, h_agent_assignments, "agent.assignments" },
	{ "POST", "/v1/agent/machines/:id/boot-token", AUDIT | HOST, API_BODY_SMALL, h_agent_boot_token,
	  "agent.boot_token" },
	{ "POST", "/v1/agent/machines/:id/events", HOST, API_BODY_SMALL, h_agent_events, "agent.events" },
	/* the web dashboard: static files, no auth (its calls to /v1 carry the user's token) */
	{ "GET", "/ui", 0, 0, h_ui, "ui" },
	{ "GET", "/ui/", 0, 0, h_ui, "ui" },
	{ "GET", "/ui/:file", 0, 0, h_ui, "ui" },
};

const struct http_route *api_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

enum coffer_err h_health(struct http_request *req, void *ctx)
{
	(void)ctx;
	return api_reply(req, 200, json_pack("{s:s,s:s,s:s}", "status", "ok", "role", "api", "version", COFFER_VERSION));
}

/* ---- helpers ---- */

int64_t api_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

enum coffer_err api_time_text(int64_t ms, char out[API_TIME_SIZE])
{
	struct tm tm;
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	if (!gmtime_r(&t, &tm) || strftime(out, API_TIME_SIZE, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return COFFER_ERR_INVALID;
	return COFFER_OK;
}

json_t *api_json_time(int64_t ms)
{
	char text[API_TIME_SIZE];
	if (ms == 0)
		return json_null();
	if (api_time_text(ms, text))
		return json_null();
	return json_string(text);
}

int api_app_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > API_APP_NAME_MAX || !(name[0] >= 'a' && name[0] <= 'z'))
		return 0;
	for (size_t i = 1; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

int api_quotable(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e || c == '\'' || c == '"' || c == '\\')
			return 0;
	}
	return 1;
}

enum coffer_err api_reply(struct http_request *req, int status, json_t *doc)
{
	if (!doc)
		return http_reply_error(req, COFFER_ERR_NOMEM, NULL);
	enum coffer_err rc = http_reply_json(req, status, doc);
	json_decref(doc);
	return rc;
}

enum coffer_err api_fail(struct http_request *req, enum coffer_err code, const char *fmt, ...)
{
	char msg[API_MESSAGE_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return http_reply_error(req, code, NULL);
	return http_reply_error(req, code, msg);
}

enum coffer_err api_body(struct http_request *req, const char *const fields[], json_t **out)
{
	struct json_error jerr;
	json_t *doc = NULL;
	enum coffer_err rc = http_request_json(req, &doc);
	if (rc)
		return rc;
	rc = json_check_fields(doc, fields, &jerr);
	if (rc) {
		json_decref(doc);
		return api_fail(req, rc, "invalid request body: %s", jerr.message);
	}
	*out = doc;
	return COFFER_OK;
}

void api_audit_note(struct http_request *req, const char *app, json_t *detail)
{
	http_phase_audit_note(req, NULL, app && api_app_name_ok(app) ? app : NULL, detail);
}
