#include "metrics_server.h"

#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "log.h"
#include "banned.h"

#define TEXT_TYPE "text/plain; charset=utf-8"
#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define RENDER_MAX ((size_t)8 << 20)
/* a scraper or a probe, not a crowd */
#define METRICS_THREADS 2
#define METRICS_CONNECTIONS 64
#define METRICS_PER_IP 16

struct metrics_server {
	struct http_server *http;
	metrics_ready_fn ready;
	void *ctx;
};

static enum coffer_err h_metrics(struct http_request *req, void *ctx)
{
	struct buf out;
	(void)ctx;
	buf_init(&out, RENDER_MAX);
	enum coffer_err rc = metrics_render(&out);
	if (!rc)
		rc = http_reply(req, 200, PROM_TYPE, out.ptr ? out.ptr : "", out.len);
	buf_release(&out);
	return rc;
}

static enum coffer_err h_healthz(struct http_request *req, void *ctx)
{
	(void)ctx;
	return http_reply(req, 200, TEXT_TYPE, "ok\n", 3);
}

static enum coffer_err h_readyz(struct http_request *req, void *ctx)
{
	struct metrics_server *s = ctx;
	struct buf report;
	int ready = 1;
	enum coffer_err rc = COFFER_OK;

	buf_init(&report, METRICS_REPORT_MAX);
	if (s->ready)
		ready = s->ready(s->ctx, &report);
	if (!report.len)
		rc = buf_adds(&report, ready ? "ready\n" : "not ready\n");
	if (!rc)
		rc = http_reply(req, ready ? 200 : 503, TEXT_TYPE, report.ptr, report.len);
	buf_release(&report);
	return rc;
}

static const struct http_route routes[] = {
	{ "GET", "/metrics", 0, 0, h_metrics, "metrics" },
	{ "GET", "/healthz", 0, 0, h_healthz, "healthz" },
	{ "GET", "/readyz", 0, 0, h_readyz, "readyz" },
};

enum coffer_err metrics_server_start(const char *listen, struct metric *const metrics[], size_t n,
				     metrics_ready_fn ready, void *ctx, struct metrics_server **out)
{
	struct metrics_server *s;
	enum coffer_err rc;

	if (!listen || (n && !metrics))
		return COFFER_ERR_INVALID;
	for (size_t i = 0; i < n; i++)
		metrics_register(metrics[i]);
	metrics_register(&metric_series_dropped);
	s = calloc(1, sizeof(*s));
	if (!s)
		return COFFER_ERR_NOMEM;
	s->ready = ready;
	s->ctx = ctx;
	struct http_server_config cfg = {
		.listen = listen,
		.threads = METRICS_THREADS,
		.max_connections = METRICS_CONNECTIONS,
		.max_per_ip = METRICS_PER_IP,
		.plain_any_host = 1,
	};
	rc = http_server_start(&cfg, routes, sizeof(routes) / sizeof(routes[0]), s, &s->http);
	if (rc) {
		free(s);
		return rc;
	}
	log_info("metrics_listening", LF_S("listen", listen), LF_I("port", http_server_port(s->http)));
	*out = s;
	return COFFER_OK;
}

unsigned metrics_server_port(const struct metrics_server *s)
{
	return http_server_port(s->http);
}

void metrics_server_stop(struct metrics_server *s)
{
	if (!s)
		return;
	http_server_stop(s->http);
	free(s);
}
