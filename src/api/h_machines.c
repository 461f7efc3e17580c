/*
 * h_machines.c — an app's machines (list, destroy one), scale (a release
 * of the current config with another count) and status
 * (docs/RUNPATH.md). The api never runs anything itself: destroying a
 * machine marks its row, wakes the agents' long polls and the controller;
 * the agent stops the process and the keeper refuses its opens at once.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "release.h"
#include "banned.h"

static const char *const scale_fields[] = { "count", "signer", "release", NULL };

static int machine_id_ok(const char *id)
{
	size_t n = strlen(id);
	if (n != STORE_ID_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return 1;
}

static json_t *machine_json(const struct store_machine *m, const struct store_host_list *hl)
{
	const char *host = m->host_id;
	for (size_t i = 0; i < hl->n; i++)
		if (strcmp(hl->items[i].id, m->host_id) == 0)
			host = hl->items[i].name;
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:I,s:o,s:i,s:i}", "id", m->id, "host", host, "host_id",
			 m->host_id, "release", (json_int_t)m->running_release, "desired_release",
			 (json_int_t)m->desired_release, "state", m->state, "pid", (json_int_t)m->pid, "started_at",
			 api_json_time(m->started_at), "exit_status", m->exit_status, "exit_signal", m->exit_signal);
}

/* The app's machines as JSON, destroyed ones only when all. */
static enum coffer_err machines_of(struct api_auth *a, int all, json_t **out)
{
	struct store_machine_list ml = { 0 };
	struct store_host_list hl = { 0 };
	json_t *list = NULL;
	enum coffer_err rc = api_note(a, store_machine_list_by_app(a->store, a->app.id, &ml));
	if (!rc)
		rc = api_note(a, store_host_list(a->store, &hl));
	if (rc)
		goto out;
	list = json_array();
	if (!list) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < ml.n; i++) {
		if (!all && strcmp(ml.items[i].state, "destroyed") == 0)
			continue;
		json_t *item = machine_json(&ml.items[i], &hl);
		if (!item || json_array_append_new(list, item)) {
			rc = COFFER_ERR_NOMEM;
			goto out;
		}
	}
	*out = list;
	list = NULL;
out:
	json_decref(list);
	store_host_list_release(&hl);
	store_machine_list_release(&ml);
	return rc;
}

enum coffer_err h_machines_list(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	const char *all = http_request_query(req, "all");
	json_t *list = NULL;
	enum coffer_err rc;
	(void)ctx;

	if (all && strcmp(all, "0") != 0 && strcmp(all, "1") != 0)
		return api_fail(req, COFFER_ERR_INVALID, "all must be 0 or 1");
	rc = machines_of(a, all && strcmp(all, "1") == 0, &list);
	if (rc)
		return rc;
	return api_reply(req, 200, json_pack("{s:o}", "machines", list));
}

enum coffer_err h_machines_destroy(struct http_request *req, void *ctx)
{
	struct api *api = ctx;
	struct api_auth *a = api_auth_of(req);
	const char *id = http_request_param(req, "id");
	struct store_machine m;
	enum coffer_err rc;

	if (!id || !machine_id_ok(id))
		return api_fail(req, COFFER_ERR_NOT_FOUND, "app '%s' has no such machine", a->app.name);
	api_audit_note(req, a->app.name, json_pack("{s:s}", "machine", id));
	rc = api_note(a, store_machine_get(a->store, id, &m));
	if (rc == COFFER_OK && strcmp(m.app_id, a->app.id) != 0)
		rc = COFFER_ERR_NOT_FOUND; /* another app's machine is not named */
	if (rc == COFFER_ERR_NOT_FOUND)
		return api_fail(req, rc, "app '%s' has no machine '%s'", a->app.name, id);
	if (rc)
		return rc;
	rc = api_note(a, store_machine_destroy(a->store, id));
	if (rc == COFFER_ERR_NOT_FOUND)
		return api_fail(req, rc, "app '%s' has no machine '%s'", a->app.name, id);
	if (rc)
		return rc;
	log_info("machine_destroyed", LF_S("app", a->app.name), LF_S("machine", id), LF_S("host_id", m.host_id));
	release_assignments_changed(api->ctl);
	release_ctl_wake(api->ctl);
	return api_reply(req, 200, json_pack("{s:s,s:s}", "id", id, "state", "destroyed"));
}

enum coffer_err h_apps_scale(struct http_request *req, void *ctx)
{
	struct api *api = ctx;
	struct api_auth *a = api_auth_of(req);
	struct store_release cur = { 0 };
	json_t *doc = NULL, *config = NULL;
	char *canon = NULL;
	char msg[API_MESSAGE_MAX];
	struct release_request rq;
	struct api_signer signer;
	struct json_error jerr;
	int64_t count = 0;
	uint64_t version = 0, running = 0;
	enum coffer_err rc;

	rc = api_body(req, scale_fields, &doc);
	if (rc)
		return rc;
	if (json_get_int(doc, "count", 1, 0, RELEASE_COUNT_MAX, &count, &jerr)) {
		rc = api_fail(req, COFFER_ERR_INVALID, "count must be an integer 0..%d", RELEASE_COUNT_MAX);
		goto out;
	}
	if (!a->app.current_release) {
		rc = api_fail(req, COFFER_ERR_NOT_FOUND, "app '%s' has no release to scale: deploy first", a->app.name);
		goto out;
	}
	rc = api_note(a, store_release_get(a->store, a->app.id, a->app.current_release, &cur));
	if (rc)
		goto out;
	config = cur.config ? json_loads(cur.config, 0, NULL) : NULL;
	if (!config || json_object_set_new(config, "count", json_integer(count))) {
		log_error("release_config_unreadable", LF_S("app", a->app.name), LF_I("release", cur.version));
		rc = COFFER_ERR_INTERNAL;
		goto out;
	}
	msg[0] = '\0';
	rc = release_config_check(config, &canon, msg, sizeof(msg));
	if (rc == COFFER_ERR_INVALID || rc == COFFER_ERR_TOO_LARGE) {
		rc = api_fail(req, rc, "%s", msg[0] ? msg : "invalid config");
		goto out;
	}
	if (rc)
		goto out;
	/* the current config and the secrets it runs, with another count */
	rc = api_signer(req, a, doc, &signer);
	if (!rc)
		rc = api_release_signed(req, a, &signer, doc, canon, cur.secrets_version, NULL);
	if (rc)
		goto out;
	rq = (struct release_request){ &a->app, a->token_id, canon, cur.secrets_version, 0 };
	rc = api_note(a, release_create(api, a->store, &rq, &version, &running, msg, sizeof(msg)));
	if (rc == COFFER_ERR_CONFLICT) {
		rc = api_fail(req, rc, "%s", msg);
		goto out;
	}
	if (rc)
		goto out;
	api_audit_note(req, a->app.name,
		       json_pack("{s:I,s:I,s:I,s:s}", "release", (json_int_t)version, "secrets_version",
				 (json_int_t)cur.secrets_version, "count", (json_int_t)count, "deployer", signer.id));
	rc = api_reply(req, 201, json_pack("{s:I,s:s,s:I}", "release", (json_int_t)version, "status", "pending",
					   "version", (json_int_t)cur.secrets_version));
out:
	free(canon);
	json_decref(config);
	json_decref(doc);
	store_release_clear(&cur);
	return rc;
}

enum coffer_err h_apps_status(struct http_request *req, void *ctx)
{
	struct api_auth *a = api_auth_of(req);
	struct store_release cur = { 0 };
	json_t *machines = NULL, *config = NULL;
	uint64_t running = 0;
	enum coffer_err rc;
	(void)ctx;

	rc = api_note(a, release_running_of(a->store, a->app.id, &running));
	if (!rc && a->app.current_release)
		rc = api_note(a, store_release_get(a->store, a->app.id, a->app.current_release, &cur));
	if (!rc)
		rc = machines_of(a, 0, &machines);
	if (rc)
		goto out;
	config = cur.config ? json_loads(cur.config, 0, NULL) : NULL;
	if (!config)
		config = json_null();
	rc = api_reply(req, 200,
		       json_pack("{s:s,s:I,s:I,s:I,s:o,s:O,s:O}", "app", a->app.name, "current_release",
				 (json_int_t)a->app.current_release, "deployed_version",
				 (json_int_t)a->app.deployed_version, "secrets_head", (json_int_t)a->app.secrets_head,
				 "release_in_progress", running ? json_integer((json_int_t)running) : json_null(),
				 "config", config, "machines", machines));
out:
	json_decref(config);
	json_decref(machines);
	store_release_clear(&cur);
	return rc;
}
