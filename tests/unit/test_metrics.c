/* Unit tests of src/lib/metrics.c (the text format) and src/lib/metrics_server.c (the listener). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "http_client.h"
#include "http_server.h"
#include "metrics.h"
#include "metrics_server.h"

static const double two_buckets[] = { 0.1, 1 };

static struct metric t_counter = { .name = "t_requests_total", .help = "Requests", .type = METRIC_COUNTER,
				   .labels = { "route", "status" } };
static struct metric t_gauge = { .name = "t_lease_held", .help = "Held", .type = METRIC_GAUGE, .labels = { NULL } };
static struct metric t_hist = { .name = "t_seconds", .help = "Time", .type = METRIC_HISTOGRAM,
				.labels = { "op" }, .buckets = two_buckets, .n_buckets = 2 };
static struct metric t_escape = { .name = "t_escape", .help = "Back\\slash and\nnewline \"kept\"",
				  .type = METRIC_GAUGE, .labels = { "v" } };

static int reset(void **state)
{
	(void)state;
	metrics_reset();
	return 0;
}

/* The rendering, NUL-terminated; the caller frees it. */
static char *render(void)
{
	struct buf b;
	size_t len;
	buf_init(&b, BUF_MAX_DEFAULT);
	assert_int_equal(metrics_render(&b), COFFER_OK);
	assert_int_equal(buf_addch(&b, '\0'), COFFER_OK);
	char *s = buf_detach(&b, &len);
	assert_non_null(s);
	return s;
}

static void expect_text(const char *want)
{
	char *got = render();
	assert_string_equal(got, want);
	free(got);
}

static void test_counter(void **state)
{
	(void)state;
	metrics_register(&t_counter);
	expect_text("# HELP t_requests_total Requests\n# TYPE t_requests_total counter\n");
	metrics_counter_add(&t_counter, 1, "/v1/apps", "200");
	metrics_counter_add(&t_counter, 2, "/v1/apps", "200");
	metrics_counter_add(&t_counter, 1, "/v1/apps/:app", "404");
	expect_text("# HELP t_requests_total Requests\n"
		    "# TYPE t_requests_total counter\n"
		    "t_requests_total{route=\"/v1/apps\",status=\"200\"} 3\n"
		    "t_requests_total{route=\"/v1/apps/:app\",status=\"404\"} 1\n");
	int found = 0;
	assert_true(metrics_value(&t_counter, &found, "/v1/apps", "200") == 3);
	assert_int_equal(found, 1);
	assert_true(metrics_value(&t_counter, &found, "/v1/apps", "500") == 0);
	assert_int_equal(found, 0);
}

static void test_gauge(void **state)
{
	(void)state;
	metrics_register(&t_gauge);
	expect_text("# HELP t_lease_held Held\n# TYPE t_lease_held gauge\nt_lease_held 0\n");
	metrics_gauge_set(&t_gauge, 1);
	metrics_gauge_set(&t_gauge, 0.25);
	expect_text("# HELP t_lease_held Held\n# TYPE t_lease_held gauge\nt_lease_held 0.25\n");
	metrics_gauge_set(&t_gauge, 10);
	expect_text("# HELP t_lease_held Held\n# TYPE t_lease_held gauge\nt_lease_held 10\n");
	metrics_gauge_set(&t_gauge, 0.25);
	expect_text("# HELP t_lease_held Held\n# TYPE t_lease_held gauge\nt_lease_held 0.25\n");
}

static void test_histogram(void **state)
{
	(void)state;
	metrics_observe(&t_hist, 0.05, "query");
	metrics_observe(&t_hist, 0.1, "query"); /* a bound is "less than or equal" */
	metrics_observe(&t_hist, 0.5, "query");
	metrics_observe(&t_hist, 4, "query");
	expect_text("# HELP t_seconds Time\n"
		    "# TYPE t_seconds histogram\n"
		    "t_seconds_bucket{op=\"query\",le=\"0.1\"} 2\n"
		    "t_seconds_bucket{op=\"query\",le=\"1\"} 3\n"
		    "t_seconds_bucket{op=\"query\",le=\"+Inf\"} 4\n"
		    "t_seconds_sum{op=\"query\"} 4.65\n"
		    "t_seconds_count{op=\"query\"} 4\n");
}

static void test_escaping(void **state)
{
	(void)state;
	metrics_gauge_set(&t_escape, 7, "a\"b\\c\nd");
	expect_text("# HELP t_escape Back\\\\slash and\\nnewline \"kept\"\n"
		    "# TYPE t_escape gauge\n"
		    "t_escape{v=\"a\\\"b\\\\c\\nd\"} 7\n");
}

static void test_order_and_reset(void **state)
{
	(void)state;
	metrics_gauge_set(&t_gauge, 2);
	metrics_counter_add(&t_counter, 1, "/x", "200");
	expect_text("# HELP t_lease_held Held\n# TYPE t_lease_held gauge\nt_lease_held 2\n"
		    "# HELP t_requests_total Requests\n# TYPE t_requests_total counter\n"
		    "t_requests_total{route=\"/x\",status=\"200\"} 1\n");
	metrics_reset();
	expect_text("");
}

/* Past METRIC_SERIES_MAX a new series is dropped and counted, the old ones keep counting. */
static void test_series_cap(void **state)
{
	char v[16];
	(void)state;
	for (int i = 0; i < METRIC_SERIES_MAX + 3; i++) {
		assert_int_equal(fmt_into(v, sizeof(v), "%d", i), COFFER_OK);
		metrics_counter_add(&t_counter, 1, v, "200");
	}
	metrics_counter_add(&t_counter, 1, "0", "200");
	int found = 0;
	assert_true(metrics_value(&t_counter, &found, "0", "200") == 2);
	assert_true(metrics_value(&t_counter, &found, "600", "200") == 0);
	assert_int_equal(found, 0);
	assert_true(metrics_value(&metric_series_dropped, &found, "t_requests_total") == 3);
}

/* ---- the listener ---- */

static int ready_answer;

static int test_ready(void *ctx, struct buf *report)
{
	(void)ctx;
	assert_int_equal(buf_adds(report, ready_answer ? "store: ok\n" : "store: unreachable (unavailable)\n"),
			 COFFER_OK);
	return ready_answer;
}

static void get(unsigned port, const char *path, int *status, struct buf *body)
{
	char url[64];
	struct http_client *c = NULL;
	assert_int_equal(fmt_into(url, sizeof(url), "http://127.0.0.1:%u", port), COFFER_OK);
	assert_int_equal(http_client_new(url, 5000, &c), COFFER_OK);
	assert_int_equal(http_client_request(c, "GET", path, NULL, 0, 0, status, body), COFFER_OK);
	assert_int_equal(buf_addch(body, '\0'), COFFER_OK);
	http_client_free(c);
}

static void test_server(void **state)
{
	struct metric *const mine[] = { &t_gauge };
	struct metrics_server *s = NULL;
	struct buf body;
	int status = 0;
	(void)state;

	buf_init(&body, BUF_MAX_DEFAULT);
	assert_int_equal(metrics_server_start("127.0.0.1:0", mine, 1, test_ready, NULL, &s), COFFER_OK);
	unsigned port = metrics_server_port(s);

	get(port, "/metrics", &status, &body);
	assert_int_equal(status, 200);
	assert_non_null(strstr(body.ptr, "# TYPE t_lease_held gauge\nt_lease_held 0\n"));
	assert_non_null(strstr(body.ptr, "# TYPE coffer_metrics_series_dropped_total counter\n"));
	get(port, "/healthz", &status, &body);
	assert_int_equal(status, 200);
	assert_string_equal(body.ptr, "ok\n");
	ready_answer = 0;
	get(port, "/readyz", &status, &body);
	assert_int_equal(status, 503);
	assert_string_equal(body.ptr, "store: unreachable (unavailable)\n");
	ready_answer = 1;
	/* within a second of a check, its result is the answer: probes cannot load the role */
	get(port, "/readyz", &status, &body);
	assert_int_equal(status, 503);
	usleep(1100 * 1000);
	get(port, "/readyz", &status, &body);
	assert_int_equal(status, 200);
	assert_string_equal(body.ptr, "store: ok\n");
	get(port, "/metrics/x", &status, &body);
	assert_int_equal(status, 404);
	/* the listener's own requests are not counted */
	get(port, "/metrics", &status, &body);
	assert_null(strstr(body.ptr, "coffer_http_requests_total"));
	metrics_server_stop(s);
	buf_release(&body);
}

/* Plain HTTP beyond loopback only when the operator gave the address: the listener may bind 0.0.0.0. */
static void test_server_any_host(void **state)
{
	struct metrics_server *s = NULL;
	(void)state;
	assert_int_equal(metrics_server_start("0.0.0.0:0", NULL, 0, NULL, NULL, &s), COFFER_OK);
	metrics_server_stop(s);
	assert_int_equal(metrics_server_start("nonsense", NULL, 0, NULL, NULL, &s), COFFER_ERR_INVALID);
}

/* ---- the count in http_server.c ---- */

static enum coffer_err h_app(struct http_request *req, void *ctx)
{
	(void)ctx;
	return http_reply(req, 200, "text/plain", "x", 1);
}

/* A role's listener counts by route template; a raw path or an odd method never becomes a label. */
static void test_http_counted(void **state)
{
	static const struct http_route app_routes[] = { { "GET", "/v1/apps/:app", 0, 0, h_app, "apps.get" } };
	struct http_server_config cfg = { .listen = "127.0.0.1:0", .threads = 1, .metrics_role = "api" };
	struct http_server *hs = NULL;
	struct http_client *c = NULL;
	struct buf body;
	char url[64];
	int status = 0, found = 0;
	(void)state;

	buf_init(&body, BUF_MAX_DEFAULT);
	assert_int_equal(http_server_start(&cfg, app_routes, 1, NULL, &hs), COFFER_OK);
	assert_int_equal(fmt_into(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)http_server_port(hs)), COFFER_OK);
	assert_int_equal(http_client_new(url, 5000, &c), COFFER_OK);
	assert_int_equal(http_client_request(c, "GET", "/v1/apps/secretname1", NULL, 0, 0, &status, &body), COFFER_OK);
	assert_int_equal(status, 200);
	assert_int_equal(http_client_request(c, "GET", "/v1/apps/secretname2", NULL, 0, 0, &status, &body), COFFER_OK);
	assert_int_equal(http_client_request(c, "GET", "/nowhere/secretname3", NULL, 0, 0, &status, &body), COFFER_OK);
	assert_int_equal(status, 404);
	assert_int_equal(http_client_request(c, "BREW", "/nowhere", NULL, 0, 0, &status, &body), COFFER_OK);
	http_client_free(c);
	http_server_stop(hs); /* every request completed and counted */

	assert_true(metrics_value(&metric_http_requests, &found, "api", "/v1/apps/:app", "GET", "200") == 2);
	assert_true(metrics_value(&metric_http_requests, &found, "api", "unmatched", "GET", "404") == 1);
	assert_true(metrics_value(&metric_http_requests, &found, "api", "unmatched", "other", "404") == 1);
	char *text = render();
	assert_null(strstr(text, "secretname"));
	assert_null(strstr(text, "BREW"));
	assert_non_null(strstr(text, "coffer_http_request_duration_seconds_count{role=\"api\",route=\"/v1/apps/:app\"} 2\n"));
	free(text);
	buf_release(&body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counter, reset, reset),
		cmocka_unit_test_setup_teardown(test_gauge, reset, reset),
		cmocka_unit_test_setup_teardown(test_histogram, reset, reset),
		cmocka_unit_test_setup_teardown(test_escaping, reset, reset),
		cmocka_unit_test_setup_teardown(test_order_and_reset, reset, reset),
		cmocka_unit_test_setup_teardown(test_series_cap, reset, reset),
		cmocka_unit_test_setup_teardown(test_server, reset, reset),
		cmocka_unit_test_setup_teardown(test_server_any_host, reset, reset),
		cmocka_unit_test_setup_teardown(test_http_counted, reset, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
