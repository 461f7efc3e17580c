/*
 * release_make.c — making a release: the config check, release_create,
 * and a release's JSON for the CLI (docs/RUNPATH.md is the contract).
 *
 * A config is stored as canonical text (compact, keys sorted) so that two
 * equal configs are equal strings. release_create takes the previous
 * release and secrets version from the app row as it is now, and leaves
 * the one-release-per-app rule to the store (store_release_create refuses
 * a second pending or running release under the app's lock).
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fs.h"
#include "log.h"
#include "release.h"
#include "banned.h"

#define ENV_NAME_QUOTE_MAX 64   /* longest env name quoted in a message */
#define CREATE_TRIES 3          /* a conflict whose release finished meanwhile is retried */

static const char *const config_fields[] = { "cmd", "env", "count", "files", "grace_ms", NULL };
static const char *const file_fields[] = { "path", "secret", "mode", NULL };

static int env_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > API_SECRET_NAME_MAX)
		return 0;
	if (!((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return 0;
	for (size_t i = 1; i < len; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

/* Writes the message and returns COFFER_ERR_INVALID (or code). */
static enum coffer_err bad(char *msg, size_t msg_size, enum coffer_err code, const char *text)
{
	if (msg && msg_size && str_copy(msg, msg_size, text))
		msg[0] = '\0';
	return code;
}

static enum coffer_err check_cmd(const json_t *cmd, char *msg, size_t msg_size)
{
	char text[API_MESSAGE_MAX];
	size_t n;
	if (!json_is_array(cmd) || (n = json_array_size(cmd)) == 0 || n > RELEASE_CMD_ARGS_MAX) {
		if (fmt_into(text, sizeof(text), "cmd must be an array of 1..%d strings", RELEASE_CMD_ARGS_MAX))
			text[0] = '\0';
		return bad(msg, msg_size, COFFER_ERR_INVALID, text);
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *arg = json_array_get(cmd, i);
		const char *why = NULL;
		if (!json_is_string(arg) || json_string_length(arg) == 0)
			why = "must be a non-empty string";
		else if (memchr(json_string_value(arg), '\0', json_string_length(arg)))
			why = "contains a NUL byte";
		if (why) {
			if (fmt_into(text, sizeof(text), "cmd[%zu] %s", i, why))
				text[0] = '\0';
			return bad(msg, msg_size, COFFER_ERR_INVALID, text);
		}
	}
	return COFFER_OK;
}

static enum coffer_err check_env(const json_t *env, char *msg, size_t msg_size)
{
	char text[API_MESSAGE_MAX];
	const char *name;
	json_t *v;
	size_t pos = 0;

	if (!json_is_object(env) || json_object_size(env) > RELEASE_ENV_MAX) {
		if (fmt_into(text, sizeof(text), "env must be an object of at most %d names", RELEASE_ENV_MAX))
			text[0] = '\0';
		return bad(msg, msg_size, COFFER_ERR_INVALID, text);
	}
	json_object_foreach((json_t *)env, name, v) {
		char label[ENV_NAME_QUOTE_MAX + 32];
		size_t len = strlen(name);
		enum coffer_err code = COFFER_ERR_INVALID;
		const char *why = NULL;
		pos++;
		if (api_quotable(name, len, ENV_NAME_QUOTE_MAX) ? fmt_into(label, sizeof(label), "'%s'", name)
								 : fmt_into(label, sizeof(label), "at position %zu", pos))
			label[0] = '\0';
		if (!env_name_ok(name, len)) {
			if (fmt_into(text, sizeof(text), "env name %s must match %s (at most %d bytes)", label,
				     API_SECRET_NAME_RULE, API_SECRET_NAME_MAX))
				text[0] = '\0';
			return bad(msg, msg_size, code, text);
		}
		if (strncmp(name, API_SECRET_RESERVED_PREFIX, strlen(API_SECRET_RESERVED_PREFIX)) == 0) {
			if (fmt_into(text, sizeof(text), "env name %s is reserved: the prefix %s belongs to coffer", label,
				     API_SECRET_RESERVED_PREFIX))
				text[0] = '\0';
			return bad(msg, msg_size, code, text);
		}
		if (!json_is_string(v)) {
			why = "must be a string";
		} else if (json_string_length(v) > API_SECRET_VALUE_MAX) {
			why = "is larger than 65536 bytes";
			code = COFFER_ERR_TOO_LARGE;
		} else if (memchr(json_string_value(v), '\0', json_string_length(v))) {
			why = "contains a NUL byte";
		}
		if (why) {
			if (fmt_into(text, sizeof(text), "env value of %s %s", label, why))
				text[0] = '\0';
			return bad(msg, msg_size, code, text);
		}
	}
	return COFFER_OK;
}

/* "0400": 3 or 4 octal digits into *mode. */
static int mode_parse(const json_t *v, unsigned *mode)
{
	const char *s = json_string_value(v);
	size_t n = s ? strlen(s) : 0;
	unsigned m = 0;
	if (n < 3 || n > 4)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '7')
			return -1;
		m = m * 8 + (unsigned)(s[i] - '0');
	}
	*mode = m;
	return 0;
}

/* The length of path's folder ("/run/secrets" of "/run/secrets/tls.pem"). */
static size_t folder_len(const char *path)
{
	return (size_t)(strrchr(path, '/') - path);
}

/*
 * One file of "files" (docs/RUNPATH.md "Secrets as files"): checked, and
 * its canonical object {"mode": "0400", "path", "secret"} appended to out.
 */
static enum coffer_err check_file(const json_t *f, size_t pos, json_t *out, char *msg, size_t msg_size)
{
	char text[API_MESSAGE_MAX];
	struct json_error jerr;
	const char *path, *secret, *why;
	size_t plen, slen;
	unsigned mode = FS_TARGET_MODE_DEFAULT;
	char mode_text[8];

	if (!json_is_object(f) || json_check_fields(f, file_fields, &jerr) ||
	    json_get_string(f, "path", 1, &path, &plen, NULL) || json_get_string(f, "secret", 1, &secret, &slen, NULL)) {
		if (fmt_into(text, sizeof(text), "files[%zu] must be an object {\"path\", \"secret\", \"mode\"?} of strings",
			     pos))
			text[0] = '\0';
		return bad(msg, msg_size, COFFER_ERR_INVALID, text);
	}
	if ((why = fs_target_why(path, plen)) != NULL) {
		if ((api_quotable(path, plen, ENV_NAME_QUOTE_MAX) ? fmt_into(text, sizeof(text), "file '%s' %s", path, why)
								  : fmt_into(text, sizeof(text), "files[%zu] %s", pos, why)))
			text[0] = '\0';
		return bad(msg, msg_size, COFFER_ERR_INVALID, text);
	}
	if (!env_name_ok(secret, slen) ||
	    strncmp(secret, API_SECRET_RESERVED_PREFIX, strlen(API_SECRET_RESERVED_PREFIX)) == 0) {
		if (fmt_into(text, sizeof(text), "file '%s': the secret name must match %s, not starting with %s", path,
			     API_SECRET_NAME_RULE, API_SECRET_RESERVED_PREFIX))
			text[0] = '\0';
		return bad(msg, msg_size, COFFER_ERR_INVALID, text);
	}
	if (json_object_get(f, "mode") && (mode_parse(json_object_get(f, "mode"), &mode) || !fs_target_mode_ok(mode))) {
		if (fmt_into(text, sizeof(text),
			     "file '%s': mode must be octal, readable by its owner, with no bits but 0640 (0400, 0440, "
			     "0600 or 0640)",
			     path))
			text[0] = '\0';
		return bad(msg, msg_size, COFFER_ERR_INVALID, text);
	}
	for (size_t i = 0; i < json_array_size(out); i++) {
		const char *other = json_string_value(json_object_get(json_array_get(out, i), "path"));
		size_t a = folder_len(path), b = folder_len(other);
		const char *inner = a > b ? path : other, *outer = a > b ? other : path;
		size_t n = a > b ? b : a;
		if (strcmp(other, path) == 0) {
			if (fmt_into(text, sizeof(text), "file '%s' is given twice", path))
				text[0] = '\0';
			return bad(msg, msg_size, COFFER_ERR_INVALID, text);
		}
		if (a != b && strncmp(inner, outer, n) == 0 && inner[n] == '/') {
			if (fmt_into(text, sizeof(text),
				     "file '%s' is in a folder inside the folder of file '%s': files go in folders that do "
				     "not nest",
				     inner, outer))
				text[0] = '\0';
			return bad(msg, msg_size, COFFER_ERR_INVALID, text);
		}
	}
	if (fmt_into(mode_text, sizeof(mode_text), "%04o", mode) ||
	    json_array_append_new(out, json_pack("{s:s,s:s,s:s}", "mode", mode_text, "path", path, "secret", secret)))
		return COFFER_ERR_NOMEM;
	return COFFER_OK;
}

/* "files": an array of at most RELEASE_FILES_MAX files, into *out (canonical; NULL when there are none). */
static enum coffer_err check_files(const json_t *files, json_t **out, char *msg, size_t msg_size)
{
	char text[API_MESSAGE_MAX];
	json_t *canon;
	*out = NULL;
	if (!files)
		return COFFER_OK;
	if (!json_is_array(files) || json_array_size(files) > RELEASE_FILES_MAX) {
		if (fmt_into(text, sizeof(text), "files must be an array of at most %d files", RELEASE_FILES_MAX))
			text[0] = '\0';
		return bad(msg, msg_size, COFFER_ERR_INVALID, text);
	}
	if (json_array_size(files) == 0)
		return COFFER_OK;
	if (!(canon = json_array()))
		return COFFER_ERR_NOMEM;
	for (size_t i = 0; i < json_array_size(files); i++) {
		enum coffer_err rc = check_file(json_array_get(files, i), i, canon, msg, msg_size);
		if (rc) {
			json_decref(canon);
			return rc;
		}
	}
	*out = canon;
	return COFFER_OK;
}

enum coffer_err release_config_check(const json_t *config, char **out, char *msg, size_t msg_size)
{
	char text[API_MESSAGE_MAX];
	struct json_error jerr;
	json_t *cmd, *env, *empty = NULL, *canon = NULL, *files = NULL;
	int64_t count = 1, grace = RELEASE_GRACE_DEFAULT_MS;
	char *dump = NULL;
	enum coffer_err rc;

	if (json_check_fields(config, config_fields, &jerr)) {
		if (fmt_into(text, sizeof(text), "invalid config: %s", jerr.message))
			text[0] = '\0';
		return bad(msg, msg_size, COFFER_ERR_INVALID, text);
	}
	cmd = json_object_get(config, "cmd");
	if (!cmd) {
		if (fmt_into(text, sizeof(text), "cmd is required: an array of 1..%d strings", RELEASE_CMD_ARGS_MAX))
			text[0] = '\0';
		return bad(msg, msg_size, COFFER_ERR_INVALID, text);
	}
	rc = check_cmd(cmd, msg, msg_size);
	if (rc)
		return rc;
	env = json_object_get(config, "env");
	if (!env)
		env = empty = json_object();
	if (!env)
		return COFFER_ERR_NOMEM;
	rc = check_env(env, msg, msg_size);
	if (rc)
		goto out;
	if (json_get_int(config, "count", 0, 0, RELEASE_COUNT_MAX, &count, NULL)) {
		if (fmt_into(text, sizeof(text), "count must be an integer 0..%d", RELEASE_COUNT_MAX))
			text[0] = '\0';
		rc = bad(msg, msg_size, COFFER_ERR_INVALID, text);
		goto out;
	}
	if (json_get_int(config, "grace_ms", 0, 0, RELEASE_GRACE_MAX_MS, &grace, NULL)) {
		if (fmt_into(text, sizeof(text), "grace_ms must be an integer 0..%lld", (long long)RELEASE_GRACE_MAX_MS))
			text[0] = '\0';
		rc = bad(msg, msg_size, COFFER_ERR_INVALID, text);
		goto out;
	}
	rc = check_files(json_object_get(config, "files"), &files, msg, msg_size);
	if (rc)
		goto out;
	/* "files" only when there are some: a config without stays the text it always was */
	canon = json_pack("{s:O,s:I,s:O,s:I,s:O*}", "cmd", cmd, "count", (json_int_t)count, "env", env, "grace_ms",
			  (json_int_t)grace, "files", files);
	if (!canon) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	dump = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
	if (!dump) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	if (strlen(dump) > STORE_RELEASE_TEXT_MAX) {
		if (fmt_into(text, sizeof(text), "config is larger than %zu bytes", STORE_RELEASE_TEXT_MAX))
			text[0] = '\0';
		rc = bad(msg, msg_size, COFFER_ERR_TOO_LARGE, text);
		goto out;
	}
	*out = dump;
	dump = NULL;
	rc = COFFER_OK;
out:
	free(dump);
	json_decref(canon);
	json_decref(files);
	json_decref(empty);
	return rc;
}

enum coffer_err release_running_of(struct store *s, const char *app_id, uint64_t *version)
{
	struct store_release_list l = { 0 };
	uint64_t v = 0;
	enum coffer_err rc = store_release_running(s, &l);
	if (rc)
		return rc;
	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.items[i].app_id, app_id) == 0 && l.items[i].version > v)
			v = l.items[i].version;
	store_release_list_release(&l);
	*version = v;
	return COFFER_OK;
}

static void in_progress_msg(char *msg, size_t msg_size, const char *app, uint64_t running)
{
	if (msg && msg_size &&
	    fmt_into(msg, msg_size, "app '%s' has release v%llu in progress; wait for it or check 'coffer releases -a %s'",
		     app, (unsigned long long)running, app))
		msg[0] = '\0';
}

enum coffer_err release_create(struct api *api, struct store *s, const struct release_request *rq,
			       uint64_t *version, uint64_t *running, char *msg, size_t msg_size)
{
	struct store_app app = { 0 };
	struct store_release cur = { 0 };
	uint64_t v = 0, r = 0, secrets;
	const char *config;
	enum coffer_err rc = COFFER_ERR_CONFLICT;

	for (int attempt = 0; attempt < CREATE_TRIES && rc == COFFER_ERR_CONFLICT; attempt++) {
		int no_config = 0;
		store_release_clear(&cur);
		/*
		 * One transaction holding the app's lock: the app as read here (its
		 * current release is what a failure goes back to) is still the app
		 * when the release is stored, even if a release finishes meanwhile.
		 */
		rc = store_tx_begin(s);
		if (rc)
			goto out;
		rc = store_app_lock(s, rq->app->id);
		if (!rc)
			rc = store_app_get(s, rq->app->id, &app);
		config = rq->config;
		if (!rc && !config) {
			if (!app.current_release)
				no_config = 1;
			else if (!(rc = store_release_get(s, app.id, app.current_release, &cur)))
				config = cur.config;
		}
		/* with a config, the secrets version it was signed with, 0 included */
		secrets = rq->config || rq->secrets_version ? rq->secrets_version : (rc ? 0 : app.secrets_head);
		if (!rc && !no_config)
			rc = store_release_create(s, app.id, config, secrets, app.current_release, app.deployed_version,
						  rq->actor, &v);
		if (!rc && !no_config && rq->set_head && app.secrets_head != secrets)
			rc = store_secrets_set_head(s, app.id, secrets);
		rc = store_tx_end(s, rc);
		if (!rc && no_config) {
			if (msg && msg_size &&
			    fmt_into(msg, msg_size, "app '%s' has no release to take its config from", app.name))
				msg[0] = '\0';
			rc = COFFER_ERR_NOT_FOUND;
			goto out;
		}
		if (rc != COFFER_ERR_CONFLICT)
			break;
		rc = release_running_of(s, rq->app->id, &r);
		if (rc)
			goto out;
		rc = COFFER_ERR_CONFLICT;
		if (r) {
			in_progress_msg(msg, msg_size, rq->app->name, r);
			*running = r;
			goto out;
		}
		/* the release in the way finished meanwhile: try again with the app as it is now */
	}
	if (rc == COFFER_ERR_CONFLICT) {
		/* still in the way after the tries: name the newest release we know */
		in_progress_msg(msg, msg_size, rq->app->name, r);
		*running = r;
		goto out;
	}
	if (rc)
		goto out;
	log_info("release_created", LF_S("app", app.name), LF_I("release", v), LF_I("secrets_version", secrets),
		 LF_I("previous_release", app.current_release));
	if (api && api->ctl)
		release_ctl_wake(api->ctl);
	*version = v;
out:
	store_release_clear(&cur);
	return rc;
}

/* ---- the JSON of a release ---- */

static int in_ids(const json_t *ids, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
			return 1;
	return 0;
}

static const struct store_machine *machine_in(const struct store_machine_list *ml, const char *id)
{
	for (size_t i = 0; i < ml->n; i++)
		if (strcmp(ml->items[i].id, id) == 0)
			return &ml->items[i];
	return NULL;
}

static json_t *host_of(const struct store_machine *m, const struct store_host_list *hl)
{
	if (!m)
		return json_null();
	for (size_t i = 0; i < hl->n; i++)
		if (strcmp(hl->items[i].id, m->host_id) == 0)
			return json_string(hl->items[i].name);
	return json_string(m->host_id);
}

/* Appends id unless there already; 0 or -1 (out of memory). */
static int add_id(json_t *ids, const char *id)
{
	if (in_ids(ids, id))
		return 0;
	return json_array_append_new(ids, json_string(id));
}

static int64_t int_of(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* 1 and the id when reason starts with "machine <id> " (release.c's reasons). */
static int reason_machine(const char *reason, char id[STORE_ID_SIZE])
{
	static const char prefix[] = "machine ";
	size_t n = sizeof(prefix) - 1;
	if (strncmp(reason, prefix, n) != 0)
		return 0;
	for (size_t i = 0; i < STORE_ID_LEN; i++) {
		char c = reason[n + i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	if (reason[n + STORE_ID_LEN] != ' ')
		return 0;
	memcpy(id, reason + n, STORE_ID_LEN);
	id[STORE_ID_LEN] = '\0';
	return 1;
}

/*
 * One entry per machine the release touched (progress moved, created,
 * current), and while it rolls, the app's other live machines it is still
 * to replace ("waiting"), up to its count.
 */
static json_t *machines_json(const struct store_release *r, const json_t *config, const json_t *progress,
			     const struct store_machine_list *ml, const struct store_host_list *hl)
{
	const json_t *moved = json_object_get(progress, "moved");
	const json_t *created = json_object_get(progress, "created");
	const json_t *current = json_object_get(progress, "current");
	const char *phase = json_string_value(json_object_get(progress, "phase"));
	const char *cur_id = json_is_object(current) ? json_string_value(json_object_get(current, "id")) : NULL;
	int64_t grace = int_of(config, "grace_ms"), count = int_of(config, "count"), now = api_now_ms();
	int active = strcmp(r->status, "pending") == 0 || strcmp(r->status, "running") == 0;
	int back = strcmp(r->status, "failed") == 0 || (phase && strcmp(phase, "rollback") == 0);
	json_t *ids = json_array(), *list = json_array(), *v;
	char failed_id[STORE_ID_SIZE];
	size_t i;

	if (!ids || !list)
		goto nomem;
	json_array_foreach(moved, i, v)
		if (json_is_string(v) && add_id(ids, json_string_value(v)))
			goto nomem;
	json_array_foreach(created, i, v)
		if (json_is_string(v) && add_id(ids, json_string_value(v)))
			goto nomem;
	if (cur_id && add_id(ids, cur_id))
		goto nomem;
	/*
	 * A finished rollback clears progress.current; the machine that failed
	 * is the one its reason names ("machine <id> exited ...").
	 */
	if (back && r->reason && reason_machine(r->reason, failed_id) && add_id(ids, failed_id))
		goto nomem;
	if (active && !back) {
		int64_t live_touched = 0;
		for (i = 0; i < json_array_size(ids); i++) {
			const struct store_machine *m = machine_in(ml, json_string_value(json_array_get(ids, i)));
			if (m && strcmp(m->state, "destroyed") != 0)
				live_touched++;
		}
		for (i = 0; i < ml->n && live_touched < count; i++) {
			const struct store_machine *m = &ml->items[i];
			if (strcmp(m->state, "destroyed") == 0 || in_ids(ids, m->id))
				continue;
			if (add_id(ids, m->id))
				goto nomem;
			live_touched++;
		}
	}
	json_array_foreach(ids, i, v) {
		const char *id = json_string_value(v);
		const struct store_machine *m = machine_in(ml, id);
		const char *step;
		int64_t left = 0;
		if (back) {
			step = "rolled_back";
		} else if (in_ids(moved, id)) {
			step = "passed";
		} else if (cur_id && strcmp(cur_id, id) == 0) {
			int64_t started = int_of(current, "started_at");
			if (started <= 0 && m && m->running_release == r->version && strcmp(m->state, "started") == 0)
				started = m->started_at;
			if (started > 0) {
				step = "watching";
				left = grace - (now - started);
				if (left < 0)
					left = 0;
			} else {
				step = "replacing";
				left = grace;
			}
		} else if (in_ids(created, id)) {
			step = "replacing";
			left = grace;
		} else {
			step = "waiting";
			left = grace;
		}
		json_t *item = json_pack("{s:s,s:o,s:s,s:I}", "id", id, "host", host_of(m, hl), "step", step,
					 "grace_left_ms", (json_int_t)left);
		if (!item || json_array_append_new(list, item))
			goto nomem;
	}
	json_decref(ids);
	return list;
nomem:
	json_decref(ids);
	json_decref(list);
	return NULL;
}

/* A JSON string of text whose bytes may not be UTF-8 (a machine's output): other bytes become '?'. */
static json_t *text_json(const char *text)
{
	json_t *v = json_string(text);
	char *copy;
	if (v)
		return v;
	copy = strdup(text);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

json_t *release_json(struct store *s, const struct store_release *r)
{
	struct store_machine_list ml = { 0 };
	struct store_host_list hl = { 0 };
	json_t *config = NULL, *progress = NULL, *machines = NULL, *doc = NULL;

	/* Our own texts from the store; a broken one shows as null, not as an error. */
	config = r->config ? json_loads(r->config, 0, NULL) : NULL;
	progress = r->progress ? json_loads(r->progress, 0, NULL) : NULL;
	if (!config)
		config = json_null();
	if (!progress)
		progress = json_object();
	if (!config || !progress)
		goto out;
	if (store_machine_list_by_app(s, r->app_id, &ml) || store_host_list(s, &hl)) {
		log_warn("release_json_machines", LF_S("app_id", r->app_id), LF_I("release", r->version));
		store_machine_list_release(&ml);
		store_host_list_release(&hl);
	}
	machines = machines_json(r, config, progress, &ml, &hl);
	if (!machines)
		goto out;
	doc = json_pack("{s:I,s:s,s:o,s:s,s:I,s:O,s:o,s:o,s:O}", "version", (json_int_t)r->version, "status", r->status,
			"reason",
			strcmp(r->status, "failed") == 0 && r->reason ? text_json(r->reason) : json_null(),
			"actor", r->actor, "secrets_version", (json_int_t)r->secrets_version, "config", config,
			"created_at", api_json_time(r->created_at), "updated_at", api_json_time(r->updated_at),
			"machines", machines);
out:
	json_decref(machines);
	json_decref(progress);
	json_decref(config);
	store_host_list_release(&hl);
	store_machine_list_release(&ml);
	return doc;
}
