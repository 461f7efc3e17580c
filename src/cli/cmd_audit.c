/*
 * cmd_audit.c — `coffer audit` (list the events), `coffer audit verify
 * [--head FILE]` (check the hash chain against the keeper's signed head and
 * a saved one) and `coffer audit head` (print the signed head, to keep).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anchor.h"
#include "cli.h"
#include "client.h"
#include "format.h"
#include "fs.h"
#include "parse.h"
#include "banned.h"

#define SEQ_TEXT 24
#define QUERY_MAX 256

/* The DETAIL cell: a string as it is, anything else as compact JSON (the caller frees *owned). */
static const char *detail_text(const json_t *ev, char **owned)
{
	json_t *d = json_object_get(ev, "detail");
	*owned = NULL;
	if (!d || json_is_null(d))
		return NULL;
	if (json_is_string(d))
		return json_string_value(d);
	*owned = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
	return *owned;
}

static enum coffer_err list_events(struct client *c, const char *app, const char *after, const char *limit, int json)
{
	static const char *const headers[] = { "SEQ", "TIME", "ACTOR", "ACTION", "APP", "OUTCOME", "DETAIL" };
	struct format_table t = { 0 };
	struct buf out, path;
	char seg[CLIENT_SEGMENT_MAX];
	json_t *ans = NULL, *events = NULL, *ev;
	size_t i;
	enum coffer_err rc = COFFER_OK;

	buf_init(&out, BUF_MAX_DEFAULT * 16);
	buf_init(&path, CLIENT_PATH_MAX);
	events = json_array();
	if (!events) {
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
		goto out;
	}
	/*
	 * The API answers a page at a time (bounded in count and bytes) and
	 * says where the next one starts; without --limit, read them all.
	 */
	char cursor[SEQ_TEXT];
	for (;;) {
		json_t *page = NULL, *next;
		const char *keys[] = { "app", "after", "limit" }, *vals[] = { app, after, limit };
		char sep = '?';
		buf_reset(&path);
		rc = buf_adds(&path, "/v1/audit");
		for (size_t k = 0; k < 3 && !rc; k++) {
			if (!vals[k])
				continue;
			rc = format_url_segment(vals[k], seg, sizeof(seg));
			if (!rc)
				rc = buf_addf(&path, "%c%s=%s", sep, keys[k], seg);
			sep = '&';
		}
		if (rc) {
			rc = client_error(COFFER_ERR_USAGE, "the app name is too long");
			goto out;
		}
		rc = client_call(c, "GET", path.ptr, NULL, &ans);
		if (!rc && json_get_array(ans, "events", 1, &page, NULL))
			rc = client_bad_answer("no \"events\" list");
		if (!rc && json_array_extend(events, page))
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
		next = rc ? NULL : json_object_get(ans, "next_after");
		if (rc || limit || !json_is_integer(next) ||
		    fmt_into(cursor, sizeof(cursor), "%" JSON_INTEGER_FORMAT, json_integer_value(next))) {
			break;
		}
		after = cursor;
		json_decref(ans);
		ans = NULL;
	}
	if (!rc && json) {
		rc = client_print_json(events);
		goto out;
	}
	if (!rc && format_table_init(&t, 7, headers))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	json_array_foreach(rc ? NULL : events, i, ev) {
		char seq[SEQ_TEXT] = "-", *owned;
		json_t *s = json_object_get(ev, "seq");
		if (json_is_integer(s) && fmt_into(seq, sizeof(seq), "%" JSON_INTEGER_FORMAT, json_integer_value(s)))
			seq[0] = '\0';
		const char *row[] = { seq,
				      client_str(ev, "ts"),
				      client_str(ev, "actor"),
				      client_str(ev, "action"),
				      client_str(ev, "app"),
				      client_str(ev, "outcome"),
				      detail_text(ev, &owned) };
		enum coffer_err added = format_table_add(&t, row);
		free(owned);
		if (added) {
			rc = client_error(COFFER_ERR_NOMEM, "out of memory");
			break;
		}
	}
	if (!rc && format_table_render(&t, &out))
		rc = client_error(COFFER_ERR_NOMEM, "out of memory");
	if (!rc)
		fwrite(out.ptr, 1, out.len, stdout);
out:
	format_table_release(&t);
	buf_release(&path);
	buf_release(&out);
	json_decref(ans);
	json_decref(events);
	return rc;
}

/* {"head": <the document in path>}, or a usage error naming the file. */
static enum coffer_err saved_head(const char *path, json_t **body)
{
	struct buf text;
	json_t *doc = NULL;
	enum coffer_err rc;

	buf_init(&text, ANCHOR_DOC_MAX * 4);
	rc = fs_read_file(path, &text);
	if (rc) {
		buf_release(&text);
		return client_error(rc == COFFER_ERR_TOO_LARGE ? COFFER_ERR_USAGE : rc, "cannot read '%s': %s", path,
				    coffer_strerror(rc));
	}
	rc = json_parse_limited(text.ptr, text.len, ANCHOR_DOC_MAX * 4, JSON_MAX_DEPTH_DEFAULT, &doc, NULL);
	buf_release(&text);
	if (rc || !json_is_object(doc)) {
		json_decref(doc);
		return client_error(COFFER_ERR_USAGE, "'%s' is not a head document (the output of 'coffer audit head')",
				    path);
	}
	*body = json_pack("{s:o}", "head", doc);
	return *body ? COFFER_OK : client_error(COFFER_ERR_NOMEM, "out of memory");
}

static enum coffer_err verify(struct client *c, const char *head_file, int json)
{
	json_t *ans = NULL, *body = NULL, *n, *ok, *head, *seq;
	enum coffer_err rc = head_file ? saved_head(head_file, &body) : COFFER_OK;

	if (!rc)
		rc = client_call(c, head_file ? "POST" : "GET", "/v1/audit/verify", body, &ans);
	if (rc)
		goto out;
	if (json) {
		rc = client_print_json(ans);
		goto out;
	}
	ok = json_object_get(ans, "ok");
	n = json_object_get(ans, "events");
	head = json_object_get(ans, "head");
	seq = json_object_get(head, "seq");
	if (json_is_true(ok) && json_is_integer(n) && json_is_integer(seq)) {
		printf("audit chain intact: %" JSON_INTEGER_FORMAT " event%s\n", json_integer_value(n),
		       json_integer_value(n) == 1 ? "" : "s");
		printf("it holds the keeper's signed head (event %" JSON_INTEGER_FORMAT ")%s\n",
		       json_integer_value(seq), head_file ? " and the saved head" : "");
	} else {
		/* the API answers 409 for a broken chain: this is a second line of defence */
		rc = client_bad_answer("no \"ok\", \"events\" and \"head\"");
	}
out:
	json_decref(ans);
	json_decref(body);
	return rc;
}

static enum coffer_err print_head(struct client *c)
{
	json_t *ans = NULL;
	enum coffer_err rc = client_call(c, "GET", "/v1/audit/head", NULL, &ans);
	if (!rc)
		rc = client_print_json(ans);
	json_decref(ans);
	return rc;
}

static enum coffer_err audit_check(struct client *c, int argc, char **argv)
{
	const char *app = client_value(c, "app"), *after = client_value(c, "after"), *limit = client_value(c, "limit");
	const char *head = client_value(c, "head");
	uint64_t n;

	if (argc == 2 && strcmp(argv[1], "verify") != 0 && strcmp(argv[1], "head") != 0)
		return client_usage_error(c, "unexpected argument");
	if (argc == 2 && (app || after || limit))
		return client_usage_error(c, "'audit %s' takes no -a, --after or --limit", argv[1]);
	if (head && !(argc == 2 && strcmp(argv[1], "verify") == 0))
		return client_usage_error(c, "only 'audit verify' takes --head");
	if ((after && parse_uint64(after, INT64_MAX, &n)) || (limit && parse_uint64(limit, INT64_MAX, &n)))
		return client_usage_error(c, "--after and --limit take a whole number");
	return COFFER_OK;
}

static enum coffer_err audit_run(struct client *c, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "head") == 0)
		return print_head(c);
	if (argc == 2)
		return verify(c, client_value(c, "head"), c->json);
	return list_events(c, client_value(c, "app"), client_value(c, "after"), client_value(c, "limit"), c->json);
}

static const struct cli_opt audit_opts[] = {
	{ "app", 'a', OPTS_VALUE, "APP", "only this app's events" },
	{ "after", 0, OPTS_VALUE, "SEQ", "only events after this sequence number" },
	{ "limit", 0, OPTS_VALUE, "N", "at most N events" },
	{ "head", 0, OPTS_VALUE, "FILE", "verify: also against this saved head ('audit head' output)" },
	{ NULL, 0, OPTS_FLAG, NULL, NULL },
};

const struct cli_cmd cli_audit = {
	.name = "audit", .check = audit_check, .run = audit_run, .flags = CLI_NEED_API | CLI_JSON, .opts = audit_opts,
	.max_args = 1,
	.usage = "audit [-a APP] [--after SEQ] [--limit N] [--json] | audit verify [--head FILE] [--json] | audit head",
	.summary = "list the audit log, verify its hash chain, or print its signed head",
	.help = "Lists the audit log, oldest first: who did what, to which app, with which\n"
		"outcome (names and digests, never values). -a shows one app's events only\n"
		"(COFFER_APP is not used here). 'audit verify' checks the log's hash chain\n"
		"and that it holds the head the keeper signed (kept outside the store): it\n"
		"exits non-zero, naming the problem, when the log was altered, cut at its\n"
		"end or replaced. 'audit head' prints that signed head as JSON: keep it\n"
		"elsewhere, and later 'audit verify --head FILE' checks the log against it\n"
		"too (a forged or edited head file is refused).\n",
};
