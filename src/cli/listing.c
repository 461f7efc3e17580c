/*
 * listing.c — the listing template (client.h): GET a list, print it as
 * JSON or as a table whose rows a row function fills.
 */
#include "client.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "banned.h"

#define ALL_QUERY "?all=1"

enum coffer_err client_table(const json_t *items, const char *const *headers, size_t ncols, client_row_fn row,
			     struct buf *out)
{
	struct format_table t = { 0 };
	enum coffer_err rc = COFFER_OK;
	int64_t now = (int64_t)time(NULL);
	size_t i;
	json_t *item;

	if (ncols > CLIENT_LIST_COLS_MAX)
		return client_error(COFFER_ERR_INTERNAL, "BUG: a table of %zu columns", ncols);
	if (format_table_init(&t, ncols, headers))
		rc = COFFER_ERR_NOMEM;
	json_array_foreach(rc ? NULL : items, i, item) {
		const char *cells[CLIENT_LIST_COLS_MAX];
		char scratch[CLIENT_LIST_COLS_MAX][CLIENT_CELL_SIZE] = { { 0 } };
		for (size_t k = 0; k < ncols; k++)
			cells[k] = "";
		row(item, now, cells, scratch);
		rc = format_table_add(&t, cells);
		if (rc)
			break;
	}
	if (!rc)
		rc = format_table_render(&t, out);
	format_table_release(&t);
	return rc ? client_error(COFFER_ERR_NOMEM, "out of memory") : COFFER_OK;
}

enum coffer_err client_list_run(struct client *c, int argc, char **argv)
{
	const struct client_listing *l = c->cmd->data;
	struct buf out;
	char path[CLIENT_PATH_MAX];
	json_t *ans = NULL, *list = NULL;
	enum coffer_err rc;

	(void)argc, (void)argv;
	buf_init(&out, BUF_MAX_DEFAULT * 16);
	if (l->app_suffix)
		rc = client_path(path, sizeof(path), "/v1/apps/", c->app, l->app_suffix);
	else
		rc = str_copy(path, sizeof(path), l->path) ? client_error(COFFER_ERR_INTERNAL, "path too long") : COFFER_OK;
	if (!rc && l->all && client_flag(c, "all")) {
		if (strlen(path) + sizeof(ALL_QUERY) > sizeof(path))
			rc = client_error(COFFER_ERR_INVALID, "name too long");
		else
			memcpy(path + strlen(path), ALL_QUERY, sizeof(ALL_QUERY));
	}
	if (!rc)
		rc = client_call(c, "GET", path, NULL, &ans);
	if (!rc && json_get_array(ans, l->key, 1, &list, NULL))
		rc = client_bad_answer("no list in the answer");
	if (!rc && c->json)
		rc = client_print_json(list);
	else if (!rc)
		rc = client_table(list, l->headers, l->ncols, l->row, &out);
	if (!rc && !c->json)
		fwrite(out.ptr, 1, out.len, stdout);
	buf_release(&out);
	json_decref(ans);
	return rc;
}
