/*
 * h_hosts.c — GET /v1/hosts and POST /v1/hosts/:host/revoke (admin), and
 * the host-signed POST /v1/hosts/register and POST /v1/hosts/heartbeat.
 * The keeper creates (and revokes) host rows; the api trusts a row only
 * when the keeper's certificate in it verifies (api_host_check), and
 * writes nothing but last_heartbeat. The gate has checked the host's
 * signature before any of this runs.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "encode.h"
#include "log.h"
#include "release.h"
#include "banned.h"

#define B64_SLACK 8

static const char *const register_fields[] = { "host_id", "name", "sign_pk", "seal_pk", "cert", NULL };
static const char *const heartbeat_fields[] = { NULL };

static json_t *host_json(const struct store_host *h, int64_t issued_at)
{
	return json_pack("{s:s,s:s,s:s,s:o,s:o}", "id", h->id, "name", h->name, "state", h->state, "enrolled_at",
			 api_json_time(issued_at * 1000), "last_heartbeat", api_json_time(h->last_heartbeat));
}

enum coffer_err h_hosts_list(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_host_list hosts = { 0 };
	json_t *list = NULL;
	int64_t issued_at;
	enum coffer_err rc;
	(void)ctx;

	rc = api_note(a, store_host_list(a->store, &hosts));
	if (rc)
		goto out;
	list = json_array();
	if (!list) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < hosts.n; i++) {
		/* a row whose certificate does not verify is not a host (api_host_check logs it) */
		if (api_host_check(a->api, &hosts.items[i], &issued_at))
			continue;
		json_t *item = host_json(&hosts.items[i], issued_at);
		if (!item || json_array_append_new(list, item)) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	rc = api_reply(req, 200, json_pack("{s:O}", "hosts", list));
out:
	json_decref(list);
	store_host_list_release(&hosts);
	return rc;
}

/* A base64url field of exactly len bytes; 0 or -1. */
static int get_b64(const json_t *doc, const char *key, unsigned char *out, size_t len)
{
	const char *text;
	size_t n;
	struct buf b;
	int ok;
	if (json_get_string(doc, key, 1, &text, &n, NULL))
		return -1;
	buf_init(&b, len + B64_SLACK);
	ok = b64url_decode(text, n, &b) == COFFER_OK && b.len == len;
	if (ok)
		memcpy(out, b.ptr, len);
	buf_release(&b);
	return ok ? 0 : -1;
}

/*
 * The host presents its certificate and keys. The certificate must verify
 * with the keeper's key over what the body says, and the body must be the
 * signing host's own row: its request signature was checked (by the gate)
 * with that row's sign_pk, so it matches the certificate's.
 */
enum coffer_err h_hosts_register(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	const struct store_host *row = &a->host;
	json_t *doc = NULL;
	const char *id = NULL, *name = NULL;
	unsigned char sign_pk[HOSTAUTH_PK_LEN], seal_pk[HOSTAUTH_PK_LEN], cert[HOSTAUTH_CERT_LEN];
	struct json_error jerr;
	int64_t now = api_now_ms();
	enum coffer_err rc;
	(void)ctx;

	rc = api_body(req, register_fields, &doc);
	if (rc)
		return rc;
	api_audit_note(req, NULL, json_pack("{s:s,s:s}", "host_id", row->id, "name", row->name));
	if ((rc = json_get_string(doc, "host_id", 1, &id, NULL, &jerr)) ||
	    (rc = json_get_string(doc, "name", 1, &name, NULL, &jerr))) {
		rc = api_fail(req, rc, "invalid request body: %s", jerr.message);
		goto out;
	}
	if (get_b64(doc, "sign_pk", sign_pk, sizeof(sign_pk)) || get_b64(doc, "seal_pk", seal_pk, sizeof(seal_pk)) ||
	    get_b64(doc, "cert", cert, sizeof(cert))) {
		rc = http_reply_error(req, COFFER_ERR_INVALID,
				      "sign_pk and seal_pk must be 32 bytes and cert 72 bytes, in base64url");
		goto out;
	}
	struct hostauth_identity presented = { id, name, sign_pk, seal_pk };
	if (hostauth_cert_verify(a->api->keeper_pk, &presented, cert, sizeof(cert), NULL) != COFFER_OK) {
		log_warn("host_register_refused", LF_S("host_id", row->id), LF_S("reason", "certificate"));
		rc = http_reply_error(req, COFFER_ERR_UNAUTH, "host certificate does not verify");
		goto out;
	}
	if (strcmp(id, row->id) != 0 || strcmp(name, row->name) != 0 ||
	    !ct_equal(sign_pk, row->sign_pk, sizeof(sign_pk)) || !ct_equal(seal_pk, row->seal_pk, sizeof(seal_pk))) {
		log_warn("host_register_refused", LF_S("host_id", row->id), LF_S("reason", "another host's certificate"));
		rc = http_reply_error(req, COFFER_ERR_UNAUTH, "the certificate is not the signing host's");
		goto out;
	}
	rc = api_note(a, store_host_heartbeat(a->store, row->id, now));
	if (rc)
		goto out;
	log_info("host_registered", LF_S("host_id", row->id), LF_S("name", row->name));
	rc = api_reply(req, 200, json_pack("{s:s,s:s,s:s,s:o}", "host_id", row->id, "name", row->name, "state",
					   row->state, "last_heartbeat", api_json_time(now)));
out:
	json_decref(doc);
	return rc;
}

enum coffer_err h_hosts_heartbeat(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	json_t *doc = NULL;
	int64_t now = api_now_ms();
	enum coffer_err rc;
	(void)ctx;

	rc = api_body(req, heartbeat_fields, &doc);
	if (rc)
		return rc;
	json_decref(doc);
	rc = api_note(a, store_host_heartbeat(a->store, a->host.id, now));
	if (rc)
		return rc;
	return api_reply(req, 200, json_pack("{s:s,s:o}", "host_id", a->host.id, "last_heartbeat", api_json_time(now)));
}

/*
 * The host's machines go elsewhere (api.h, api_hosts_move): each live one
 * is destroyed, and each app that had one gets a release of what it runs
 * now (its current config and deployed secrets: the same spec, so its
 * machines on other hosts are relabelled, not restarted), which creates the
 * missing machines on other ready hosts. An app with a release already
 * running is left to it: that release fills the count too. Each step is
 * idempotent: `hosts revoke` again, or the api's next start
 * (api_hosts_sweep), finishes what an api killed half-way left. moved and
 * releases name only the machines and apps of org_id (NULL: every org), so
 * an answer or an audit event shows no other org's.
 */
enum coffer_err api_hosts_move(struct api *api, struct store *s, const char *host_id, const char *org_id,
			       const char *actor, json_t *moved, json_t *releases)
{
	struct store_machine_list ml = { 0 };
	json_t *apps = json_object(), *ids; /* app id -> the ids of its machines destroyed here */
	const char *app_id;
	char msg[API_MESSAGE_MAX];
	size_t i;
	enum coffer_err rc = apps ? store_machine_list_by_host(s, host_id, &ml) : COFFER_ERR_NOMEM;

	for (i = 0; !rc && i < ml.n; i++) {
		const struct store_machine *m = &ml.items[i];
		if (strcmp(m->state, "destroyed") == 0)
			continue;
		rc = store_machine_destroy(s, m->id);
		if (rc == COFFER_ERR_NOT_FOUND) /* destroyed meanwhile */
			rc = COFFER_OK;
		if (rc)
			break;
		ids = json_object_get(apps, m->app_id);
		if (!ids && json_object_set_new(apps, m->app_id, ids = json_array()))
			rc = COFFER_ERR_NOMEM;
		if (!rc && (!ids || json_array_append_new(ids, json_string(m->id))))
			rc = COFFER_ERR_NOMEM;
	}
	if (!rc && json_object_size(apps))
		release_assignments_changed(api->ctl);
	json_object_foreach(apps, app_id, ids) {
		struct store_app app = { 0 };
		struct store_release cur = { 0 };
		uint64_t version = 0, running = 0;
		int shown;
		if (rc)
			break;
		rc = store_app_get(s, app_id, &app);
		if (rc == COFFER_ERR_NOT_FOUND) { /* destroyed meanwhile */
			rc = COFFER_OK;
			continue;
		}
		if (rc)
			break;
		shown = !org_id || strcmp(app.org_id, org_id) == 0;
		if (shown && moved && json_array_extend(moved, ids))
			rc = COFFER_ERR_NOMEM;
		/* the current release's own config and secrets: never the staged head (no release: nothing to redo) */
		if (!rc && app.current_release)
			rc = store_release_get(s, app.id, app.current_release, &cur);
		if (rc == COFFER_ERR_NOT_FOUND || (!rc && !app.current_release)) {
			log_info("host_revoked_release_skipped", LF_S("app", app.name), LF_S("reason", "no current release"));
			store_release_clear(&cur);
			rc = COFFER_OK;
			continue;
		}
		if (!rc) {
			struct release_request rq = { &app, actor, cur.config, cur.secrets_version, 0 };
			rc = release_create(api, s, &rq, &version, &running, msg, sizeof(msg));
		}
		store_release_clear(&cur);
		if (rc == COFFER_ERR_CONFLICT || rc == COFFER_ERR_NOT_FOUND) {
			log_info("host_revoked_release_skipped", LF_S("app", app.name), LF_I("running", running));
			rc = COFFER_OK;
			continue;
		}
		if (!rc && shown && releases &&
		    json_array_append_new(releases, json_pack("{s:s,s:I}", "app", app.name, "version", (json_int_t)version)))
			rc = COFFER_ERR_NOMEM;
	}
	json_decref(apps);
	store_machine_list_release(&ml);
	return rc;
}

/*
 * Whether every live machine on the host is an app of org_id (*all: 1), or
 * not (0). An org admin may revoke only such a host: hosts belong to no
 * org, and a revocation destroys every machine on it.
 */
static enum coffer_err host_is_org_only(struct store *s, const char *host_id, const char *org_id, int *all)
{
	struct store_machine_list ml = { 0 };
	enum coffer_err rc = store_machine_list_by_host(s, host_id, &ml);
	int ok = 1;
	for (size_t i = 0; !rc && ok && i < ml.n; i++) {
		struct store_app app;
		if (strcmp(ml.items[i].state, "destroyed") == 0)
			continue;
		rc = store_app_get(s, ml.items[i].app_id, &app);
		if (rc == COFFER_ERR_NOT_FOUND) /* an app destroyed meanwhile is no one's */
			rc = COFFER_OK;
		else if (!rc && strcmp(app.org_id, org_id) != 0)
			ok = 0;
	}
	store_machine_list_release(&ml);
	if (!rc)
		*all = ok;
	return rc;
}

void api_hosts_sweep(struct api *api)
{
	struct store *s = NULL;
	struct store_host_list hosts = { 0 };
	int64_t issued_at;
	enum coffer_err rc = store_pool_acquire(api->pool, &s);
	if (!rc)
		rc = store_host_list(s, &hosts);
	for (size_t i = 0; !rc && i < hosts.n; i++) {
		const struct store_host *h = &hosts.items[i];
		char state[STORE_HOST_STATE_SIZE] = "";
		if (strcmp(h->state, API_HOST_STATE_REVOKED) != 0 || api_host_check(api, h, &issued_at))
			continue;
		/*
		 * hosts.state is not authenticated: a store writer can set it. The
		 * keeper's row is (its registry MAC), so only its word moves machines.
		 */
		if (keeper_client_host_state(api, h->id, state, sizeof(state)) ||
		    strcmp(state, API_HOST_STATE_REVOKED) != 0) {
			log_warn("revoked_host_not_confirmed", LF_S("host_id", h->id), LF_S("keeper_state", state));
			continue;
		}
		rc = api_hosts_move(api, s, h->id, NULL, API_HOSTS_SWEEP_ACTOR, NULL, NULL);
	}
	if (rc)
		log_warn("revoked_hosts_sweep_failed", LF_S("error", coffer_err_name(rc)));
	store_host_list_release(&hosts);
	if (s)
		store_pool_release(api->pool, s, rc);
}

/*
 * POST /v1/hosts/:host/revoke (admin; :host a name or an id): hosts belong
 * to no org, so an org's admin may revoke only a host whose live machines
 * are all its org's (403 otherwise, nothing done). The keeper revokes the
 * host first (it is where opens are refused), then its machines move
 * (api_hosts_move). 200 with the machines moved and the releases made, of
 * the caller's org only; revoking a revoked host is 200 again.
 */
enum coffer_err h_hosts_revoke(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	const char *which = http_request_param(req, "host");
	struct store_host h;
	json_t *moved = json_array(), *releases = json_array();
	char msg[API_MESSAGE_MAX];
	int64_t issued_at;
	int org_only = 0;
	enum coffer_err rc;
	(void)ctx;

	if (!moved || !releases) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	rc = api_note(a, store_host_get_by_name(a->store, which, &h));
	if (rc == COFFER_ERR_NOT_FOUND && hostauth_host_id_ok(which))
		rc = api_note(a, store_host_get(a->store, which, &h));
	if (rc == COFFER_OK && api_host_check(a->api, &h, &issued_at))
		rc = COFFER_ERR_NOT_FOUND; /* a row without the keeper's certificate is not a host */
	if (rc == COFFER_ERR_NOT_FOUND) {
		rc = hostauth_host_id_ok(which) ? api_fail(req, rc, "host '%s' not found", which)
						: http_reply_error(req, rc, "host not found");
		goto out;
	}
	if (rc)
		goto out;
	api_audit_note(req, NULL, json_pack("{s:s,s:s}", "host_id", h.id, "name", h.name));
	rc = api_note(a, host_is_org_only(a->store, h.id, a->token.org_id, &org_only));
	if (rc)
		goto out;
	if (!org_only) {
		rc = api_fail(req, COFFER_ERR_FORBIDDEN,
			      "host '%s' runs machines of another org: only the operator may revoke it", h.name);
		goto out;
	}
	rc = keeper_client_revoke_host(a->api, h.id, msg, sizeof(msg));
	if (rc) {
		rc = api_fail(req, rc == COFFER_ERR_PROTOCOL ? rc : COFFER_ERR_UNAVAILABLE,
			      "the keeper did not revoke host '%s'%s%s", h.name, msg[0] ? ": " : "", msg);
		goto out;
	}
	if (getenv(API_TEST_CRASH_ENV) && strcmp(getenv(API_TEST_CRASH_ENV), "revoke-keeper-answered") == 0)
		raise(SIGKILL); /* a test knob (t0780): the api killed between the keeper's answer and the move */
	rc = api_note(a, api_hosts_move(a->api, a->store, h.id, a->token.org_id, a->token_id, moved, releases));
	if (rc)
		goto out;
	log_info("host_revoked", LF_S("host_id", h.id), LF_S("name", h.name), LF_I("machines", json_array_size(moved)));
	api_audit_note(req, NULL, json_pack("{s:s,s:s,s:O,s:O}", "host_id", h.id, "name", h.name, "machines", moved,
					    "releases", releases));
	rc = api_reply(req, 200, json_pack("{s:s,s:s,s:s,s:O,s:O}", "host_id", h.id, "name", h.name, "state",
					   API_HOST_STATE_REVOKED, "machines", moved, "releases", releases));
out:
	json_decref(moved);
	json_decref(releases);
	return rc;
}
