/* agent_record.c — the per-machine run.json (agent_record.h). */
#include "agent_record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "encode.h"
#include "fs.h"
#include "json.h"
#include "log.h"
#include "banned.h"

#define RECORD_MODE 0600

static enum coffer_err record_path(char out[AGENT_PATH_MAX], const char *state_dir, const char *id)
{
	if (!boottoken_id_ok(id))
		return COFFER_ERR_INVALID;
	return fmt_into(out, AGENT_PATH_MAX, "%s/%s/%s/%s", state_dir, AGENT_MACHINES_DIR, id, AGENT_RECORD_FILE);
}

enum coffer_err agent_record_write(const char *state_dir, const struct agent_record *rec)
{
	char path[AGENT_PATH_MAX];
	enum coffer_err rc = record_path(path, state_dir, rec->id);
	if (rc)
		return rc;
	json_t *doc = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:s,s:b}", "machine", rec->id, "app", rec->app,
				"spec", rec->spec, "release", (json_int_t)rec->release, "grace_ms",
				(json_int_t)rec->grace_ms, "started_at", (json_int_t)rec->started_at, "pid",
				(json_int_t)rec->ident.pid, "start_time", (json_int_t)rec->ident.start_time, "boot_id",
				rec->ident.boot_id, "masked", rec->masked ? 1 : 0);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text)
		return COFFER_ERR_NOMEM;
	rc = fs_write_atomic(path, text, strlen(text), RECORD_MODE, 0);
	free(text);
	return rc;
}

enum coffer_err agent_record_read(const char *state_dir, const char *id, struct agent_record *out)
{
	char path[AGENT_PATH_MAX];
	struct buf b;
	json_t *doc = NULL;
	const char *s;
	size_t n;
	int64_t pid = 0, start = 0;
	enum coffer_err rc = record_path(path, state_dir, id);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	buf_init(&b, AGENT_RECORD_MAX);
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		rc = COFFER_ERR_NOT_FOUND;
		goto out;
	}
	rc = fs_read_file(path, &b);
	if (rc)
		goto out;
	rc = COFFER_ERR_INVALID;
	if (json_parse_limited(b.ptr, b.len, AGENT_RECORD_MAX, JSON_MAX_DEPTH_DEFAULT, &doc, NULL) ||
	    json_get_string(doc, "machine", 1, &s, &n, NULL) || strcmp(s, id) != 0 ||
	    str_copy(out->id, sizeof(out->id), s) || json_get_string(doc, "app", 1, &s, &n, NULL) || n == 0 ||
	    str_copy(out->app, sizeof(out->app), s) || json_get_string(doc, "spec", 1, &s, &n, NULL) || n == 0 ||
	    str_copy(out->spec, sizeof(out->spec), s) ||
	    json_get_int(doc, "release", 1, 1, INT64_MAX, &out->release, NULL) ||
	    json_get_int(doc, "grace_ms", 1, 0, INT64_MAX / 2, &out->grace_ms, NULL) ||
	    json_get_int(doc, "started_at", 1, 0, INT64_MAX, &out->started_at, NULL) ||
	    json_get_int(doc, "pid", 1, 2, INT32_MAX, &pid, NULL) ||
	    json_get_int(doc, "start_time", 1, 0, INT64_MAX, &start, NULL) ||
	    json_get_string(doc, "boot_id", 1, &s, &n, NULL) || n != MACHINE_BOOT_ID_SIZE - 1 ||
	    str_copy(out->ident.boot_id, sizeof(out->ident.boot_id), s))
		goto out;
	out->ident.pid = (pid_t)pid;
	out->ident.start_time = (uint64_t)start;
	/* an earlier agent's record has none: its log may hold raw output */
	out->masked = json_is_true(json_object_get(doc, "masked"));
	rc = COFFER_OK;
out:
	json_decref(doc);
	buf_release(&b);
	return rc;
}

void agent_record_remove(const char *state_dir, const char *id)
{
	char path[AGENT_PATH_MAX];
	if (record_path(path, state_dir, id) == COFFER_OK && unlink(path) != 0 && errno != ENOENT)
		log_warn("machine.record_remove_failed", LF_S("machine", id), LF_S("error", strerror(errno)));
}
