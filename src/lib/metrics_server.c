#include "metrics_server.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "log.h"
#include "monotime.h"
#include "banned.h"

#define TEXT_TYPE "text/plain; charset=utf-8"
#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define RENDER_MAX ((size_t)8 << 20)
/* a scraper or a probe, not a crowd */
#define METRICS_THREADS 2
#define METRICS_CONNECTIONS 64
#define METRICS_PER_IP 16
/* a readiness check runs at most once a second, one at a time: probes cannot tie up the store pool */
#define READY_CACHE_MS 1000

struct metrics_server {
	struct http_server *http;
	metrics_ready_fn ready;
	void *ctx;

	pthread_mutex_t check_mu;   /* one check at a time; guards the last result */
	int64_t checked_ms;         /* monotime of the last check, 0 = none yet */
	int last_ready;
	size_t last_len;
	char last[METRICS_REPORT_MAX];
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

	pthread_mutex_lock(&s->check_mu);
	int64_t now = monotime_ms();
	if (!s->checked_ms || now - s->checked_ms >= READY_CACHE_MS) {
		buf_init(&report, METRICS_REPORT_MAX);
		if (s->ready)
			ready = s->ready(s->ctx, &report);
		if (!report.len)
			rc = buf_adds(&report, ready ? "ready\n" : "not ready\n");
		if (!rc && report.len <= sizeof(s->last)) {
			memcpy(s->last, report.ptr, report.len);
			s->last_len = report.len;
			s->last_ready = ready;
			s->checked_ms = monotime_ms();
		} else if (!rc) {
			rc = COFFER_ERR_TOO_LARGE;
		}
		buf_release(&report);
	}
	ready = s->last_ready;
	size_t len = s->last_len;
	char text[METRICS_REPORT_MAX];
	memcpy(text, s->last, len);
	pthread_mutex_unlock(&s->check_mu);
	if (!rc)
		rc = http_reply(req, ready ? 200 : 503, TEXT_TYPE, text, len);
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
	pthread_mutex_init(&s->check_mu, NULL);
	struct http_server_config cfg = {
		.listen = listen,
		.threads = METRICS_THREADS,
		.max_connections = METRICS_CONNECTIONS,
		.max_per_ip = METRICS_PER_IP,
		.plain_any_host = 1,
	};
	rc = http_server_start(&cfg, routes, sizeof(routes) / sizeof(routes[0]), s, &s->http);
	if (rc) {
		pthread_mutex_destroy(&s->check_mu);
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
	pthread_mutex_destroy(&s->check_mu);
	free(s);
}
