/*
 * h_ui.c — the web dashboard's static files under /ui (docs/DASHBOARD.md).
 *
 * The files are built into the binary (src/api/ui, embedded by embed.py);
 * the page talks only to the JSON API with the user's bearer token, so
 * these routes need no auth and serve nothing but those bytes. Every
 * answer under /ui, the server's own 404 (/ui/a/b) and 405 (POST /ui)
 * too, carries the dashboard's headers (api_ui_headers, which api.c gives
 * the server): a strict Content-Security-Policy (no inline script or
 * style, nothing from another origin, no framing) and no referrer; the
 * server adds nosniff and no-store to every answer of its own.
 */
#include <string.h>

#include "api.h"
#include "banned.h"

#define UI_CSP                                                                                                  \
	"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "         \
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

static const char *const ui_header_rows[][2] = {
	{ "Content-Security-Policy", UI_CSP },
	{ "Referrer-Policy", "no-referrer" },
	{ "X-Frame-Options", "DENY" },
};

/* The server adds them to every answer under /ui, its own 404, 405 and 413 too (api.c). */
const struct http_prefix_headers api_ui_headers = { "/ui", ui_header_rows,
						    sizeof(ui_header_rows) / sizeof(ui_header_rows[0]) };

static enum coffer_err ui_serve(struct http_request *req, const char *name)
{
	for (size_t i = 0; i < api_ui_files_count; i++) {
		const struct api_ui_file *f = &api_ui_files[i];
		if (strcmp(f->name, name) == 0)
			return http_reply(req, 200, f->type, f->data, f->len);
	}
	return http_reply_error(req, COFFER_ERR_NOT_FOUND, "no such file in the dashboard");
}

/* GET /ui, /ui/: the page; GET /ui/:file: one of its files. */
enum coffer_err h_ui(struct http_request *req, void *ctx)
{
	(void)ctx;
	const char *file = http_request_param(req, "file");
	return ui_serve(req, file ? file : "index.html");
}
