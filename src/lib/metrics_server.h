/*
 * metrics_server.h — a role's metrics and health listener (--metrics-listen
 * HOST:PORT): a second http_server (so the same limits and hardening) with
 * three routes, no gate and no auth:
 *
 *   GET /metrics  every registered metric, Prometheus text format 0.0.4
 *   GET /healthz  200 "ok" while the process serves
 *   GET /readyz   200 with the role's report, or 503 with it when the role
 *                 is not ready (the report's lines name what is missing);
 *                 the check runs at most once a second, one at a time
 *
 * It serves plain HTTP on whatever address it is given, loopback or not:
 * nothing it answers is a secret (no value, token, app name or raw path),
 * and the operator decides who may reach it. Its own requests are not
 * counted in the http metrics.
 *
 * Ownership: the listen string, the metrics array and ctx must outlive the
 * server; the ready callback runs on the server's threads, concurrently.
 */
#ifndef COFFER_METRICS_SERVER_H
#define COFFER_METRICS_SERVER_H

#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "metrics.h"

#define METRICS_REPORT_MAX ((size_t)4 << 10) /* bytes of a readiness report */

/*
 * Writes one line per check into report ("store: ok\n", "keeper: unreachable
 * (unavailable)\n") and returns 1 when the role is ready, 0 when not.
 */
typedef int (*metrics_ready_fn)(void *ctx, struct buf *report);

struct metrics_server;

/*
 * Registers the role's metrics (n of them, so they show before their first
 * use) and starts serving on listen. ready NULL: always ready.
 * COFFER_ERR_INVALID for a bad address, COFFER_ERR_IO when it cannot bind.
 */
COFFER_MUST_CHECK enum coffer_err metrics_server_start(const char *listen, struct metric *const metrics[], size_t n,
						       metrics_ready_fn ready, void *ctx, struct metrics_server **out);
/* The port bound (listen may ask for port 0). */
unsigned metrics_server_port(const struct metrics_server *s);
/* NULL is allowed. */
void metrics_server_stop(struct metrics_server *s);

#endif
