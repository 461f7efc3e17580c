#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "banned.h"

#define NUM_MAX 40 /* a formatted double */
#define INTEGER_EXACT 9007199254740992.0 /* 2^53: every integer below is a double */

/* Latency buckets in seconds: 1 ms to a long poll's 60 s. */
static const double latency_buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
					  0.25,  0.5,    1,     2.5,  5,     10,   30, 60 };

#define COUNTER(var, nm, hlp, ...) \
	struct metric var = { .name = nm, .help = hlp, .type = METRIC_COUNTER, .labels = { __VA_ARGS__ } }
#define GAUGE(var, nm, hlp, ...) \
	struct metric var = { .name = nm, .help = hlp, .type = METRIC_GAUGE, .labels = { __VA_ARGS__ } }
#define HISTOGRAM(var, nm, hlp, ...)                                                             \
	struct metric var = { .name = nm, .help = hlp, .type = METRIC_HISTOGRAM, .labels = { __VA_ARGS__ }, \
			      .buckets = latency_buckets,                                             \
			      .n_buckets = sizeof(latency_buckets) / sizeof(latency_buckets[0]) }

COUNTER(metric_http_requests, "coffer_http_requests_total",
	"HTTP requests answered, by role, route template, method and status", "role", "route", "method", "status");
HISTOGRAM(metric_http_duration, "coffer_http_request_duration_seconds",
	  "Time from the request line to the answer, by role and route template", "role", "route");
HISTOGRAM(metric_store_duration, "coffer_store_duration_seconds",
	  "Time of store statements (op=query) and transaction commits (op=commit)", "op");
COUNTER(metric_releases, "coffer_releases_total", "Releases ended by this api's controller, by outcome", "outcome");
GAUGE(metric_release_lease_held, "coffer_release_lease_held",
      "1 while this api holds the release controller lease, else 0", NULL);
COUNTER(metric_keeper_opens, "coffer_keeper_opens_total",
	"Secret opens decided by the keeper, by outcome and reason (an error name)", "outcome", "reason");
COUNTER(metric_keeper_kms_ops, "coffer_keeper_kms_ops_total",
	"Machines' uses of app KMS keys decided by the keeper, by op and outcome (ok, refused, error)", "op", "outcome");
GAUGE(metric_machines, "coffer_agent_machines", "Machines this agent knows, by state", "state");
GAUGE(metric_peer_up, "coffer_agent_peer_up",
      "1 if the agent's last call to the peer got an answer, 0 if it could not reach it", "peer");
COUNTER(metric_series_dropped, "coffer_metrics_series_dropped_total",
	"Updates dropped because a metric had METRIC_SERIES_MAX series already", "metric");

struct metric_series {
	struct metric_series *next;
	char *values[METRIC_LABELS_MAX];
	double value;     /* counter, gauge */
	uint64_t *counts; /* histogram: per bucket (not cumulative), n_buckets + 1 (+Inf) */
	double sum;
	uint64_t count;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct metric *head, *tail; /* registered, in order */

static size_t n_labels(const struct metric *m)
{
	size_t n = 0;
	while (n < METRIC_LABELS_MAX && m->labels[n])
		n++;
	return n;
}

static void register_locked(struct metric *m)
{
	if (m->registered)
		return;
	m->registered = 1;
	m->next = NULL;
	if (tail)
		tail->next = m;
	else
		head = m;
	tail = m;
}

void metrics_register(struct metric *m)
{
	pthread_mutex_lock(&mu);
	register_locked(m);
	pthread_mutex_unlock(&mu);
}

static void series_free(struct metric_series *s)
{
	for (size_t i = 0; i < METRIC_LABELS_MAX; i++)
		free(s->values[i]);
	free(s->counts);
	free(s);
}

static void bump_dropped(const char *name);

/*
 * The series of these label values, made if new; NULL when out of memory
 * or full (create 0: when absent). Under mu.
 */
static struct metric_series *series_locked(struct metric *m, const char *const values[], int create)
{
	size_t n = n_labels(m);
	struct metric_series *s;
	register_locked(m);
	for (s = m->series; s; s = s->next) {
		size_t i = 0;
		while (i < n && strncmp(s->values[i], values[i], METRIC_LABEL_VALUE_MAX) == 0)
			i++;
		if (i == n)
			return s;
	}
	if (!create)
		return NULL;
	if (m->n_series >= METRIC_SERIES_MAX) {
		if (m != &metric_series_dropped)
			bump_dropped(m->name);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		s->values[i] = strndup(values[i], METRIC_LABEL_VALUE_MAX);
		if (!s->values[i]) {
			series_free(s);
			return NULL;
		}
	}
	if (m->type == METRIC_HISTOGRAM) {
		s->counts = calloc(m->n_buckets + 1, sizeof(s->counts[0]));
		if (!s->counts) {
			series_free(s);
			return NULL;
		}
	}
	if (m->last)
		m->last->next = s;
	else
		m->series = s;
	m->last = s;
	m->n_series++;
	return s;
}

static void bump_dropped(const char *name)
{
	const char *values[METRIC_LABELS_MAX] = { name };
	struct metric_series *s = series_locked(&metric_series_dropped, values, 1);
	if (s)
		s->value += 1;
}

/* The label values from the variadic arguments: one per label name; NULL reads as "". */
static void take_values(const struct metric *m, va_list ap, const char *values[METRIC_LABELS_MAX])
{
	size_t n = n_labels(m);
	for (size_t i = 0; i < METRIC_LABELS_MAX; i++) {
		const char *v = i < n ? va_arg(ap, const char *) : NULL;
		values[i] = v ? v : "";
	}
}

enum update { ADD, SET, OBSERVE };

static void update(struct metric *m, enum update how, double v, va_list ap)
{
	const char *values[METRIC_LABELS_MAX];
	take_values(m, ap, values);
	pthread_mutex_lock(&mu);
	struct metric_series *s = series_locked(m, values, 1);
	if (s && how == ADD)
		s->value += v;
	else if (s && how == SET)
		s->value = v;
	else if (s && how == OBSERVE && s->counts) {
		size_t b = 0;
		while (b < m->n_buckets && v > m->buckets[b])
			b++;
		s->counts[b]++;
		s->sum += v;
		s->count++;
	}
	pthread_mutex_unlock(&mu);
}

void metrics_counter_add(struct metric *m, double v, ...)
{
	va_list ap;
	va_start(ap, v);
	update(m, ADD, v, ap);
	va_end(ap);
}

void metrics_gauge_set(struct metric *m, double v, ...)
{
	va_list ap;
	va_start(ap, v);
	update(m, SET, v, ap);
	va_end(ap);
}

void metrics_observe(struct metric *m, double v, ...)
{
	va_list ap;
	va_start(ap, v);
	update(m, OBSERVE, v, ap);
	va_end(ap);
}

double metrics_value(struct metric *m, int *found, ...)
{
	const char *values[METRIC_LABELS_MAX];
	double v = 0;
	va_list ap;
	va_start(ap, found);
	take_values(m, ap, values);
	va_end(ap);
	pthread_mutex_lock(&mu);
	struct metric_series *s = series_locked(m, values, 0);
	if (s)
		v = s->value;
	pthread_mutex_unlock(&mu);
	if (found)
		*found = s != NULL;
	return v;
}

/* ---- rendering ---- */

/* The shortest text that reads back as v; +Inf, -Inf and NaN as Prometheus spells them. */
static void format_number(double v, char out[NUM_MAX])
{
	if (isnan(v)) {
		memcpy(out, "NaN", 4);
		return;
	}
	if (isinf(v)) {
		memcpy(out, v > 0 ? "+Inf" : "-Inf", 5);
		return;
	}
	if (v > -INTEGER_EXACT && v < INTEGER_EXACT && (double)(int64_t)v == v) {
		snprintf(out, NUM_MAX, "%" PRId64, (int64_t)v); /* a count: all its digits, no exponent */
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		if (snprintf(out, NUM_MAX, "%.*g", prec, v) < NUM_MAX && strtod(out, NULL) == v)
			return;
	}
}

/* A label value: backslash, double quote and line feed escaped (the format's rule). */
static enum coffer_err add_escaped(struct buf *out, const char *s, int quote)
{
	enum coffer_err rc = COFFER_OK;
	for (; *s && !rc; s++) {
		if (*s == '\\')
			rc = buf_adds(out, "\\\\");
		else if (*s == '\n')
			rc = buf_adds(out, "\\n");
		else if (*s == '"' && quote)
			rc = buf_adds(out, "\\\"");
		else
			rc = buf_addch(out, *s);
	}
	return rc;
}

/* {a="x",b="y"} with an extra le="..." for a bucket; nothing at all without labels. */
static enum coffer_err add_labels(struct buf *out, const struct metric *m, const struct metric_series *s,
				  const char *le)
{
	size_t n = n_labels(m);
	enum coffer_err rc = COFFER_OK;
	if (!n && !le)
		return COFFER_OK;
	rc = buf_addch(out, '{');
	for (size_t i = 0; i < n && !rc; i++) {
		rc = buf_addf(out, "%s%s=\"", i ? "," : "", m->labels[i]);
		if (!rc)
			rc = add_escaped(out, s->values[i], 1);
		if (!rc)
			rc = buf_addch(out, '"');
	}
	if (!rc && le)
		rc = buf_addf(out, "%sle=\"%s\"", n ? "," : "", le);
	if (!rc)
		rc = buf_addch(out, '}');
	return rc;
}

static enum coffer_err add_sample(struct buf *out, const struct metric *m, const char *suffix,
				  const struct metric_series *s, const char *le, double v)
{
	char num[NUM_MAX];
	format_number(v, num);
	enum coffer_err rc = buf_addf(out, "%s%s", m->name, suffix);
	if (!rc)
		rc = add_labels(out, m, s, le);
	if (!rc)
		rc = buf_addf(out, " %s\n", num);
	return rc;
}

static const char *type_name(enum metric_type t)
{
	switch (t) {
	case METRIC_COUNTER: return "counter";
	case METRIC_GAUGE: return "gauge";
	default: return "histogram";
	}
}

static enum coffer_err render_metric(struct buf *out, const struct metric *m)
{
	enum coffer_err rc = buf_addf(out, "# HELP %s ", m->name);
	if (!rc)
		rc = add_escaped(out, m->help, 0);
	if (!rc)
		rc = buf_addf(out, "\n# TYPE %s %s\n", m->name, type_name(m->type));
	/* a counter or gauge without labels has its one series from the start */
	if (!rc && !m->series && m->type != METRIC_HISTOGRAM && n_labels(m) == 0)
		rc = add_sample(out, m, "", NULL, NULL, 0);
	for (const struct metric_series *s = m->series; s && !rc; s = s->next) {
		if (m->type != METRIC_HISTOGRAM) {
			rc = add_sample(out, m, "", s, NULL, s->value);
			continue;
		}
		uint64_t cum = 0;
		char le[NUM_MAX];
		for (size_t b = 0; b <= m->n_buckets && !rc; b++) {
			cum += s->counts[b];
			format_number(b < m->n_buckets ? m->buckets[b] : INFINITY, le);
			rc = add_sample(out, m, "_bucket", s, le, (double)cum);
		}
		if (!rc)
			rc = add_sample(out, m, "_sum", s, NULL, s->sum);
		if (!rc)
			rc = add_sample(out, m, "_count", s, NULL, (double)s->count);
	}
	return rc;
}

enum coffer_err metrics_render(struct buf *out)
{
	enum coffer_err rc = COFFER_OK;
	pthread_mutex_lock(&mu);
	for (const struct metric *m = head; m && !rc; m = m->next)
		rc = render_metric(out, m);
	pthread_mutex_unlock(&mu);
	return rc;
}

void metrics_reset(void)
{
	pthread_mutex_lock(&mu);
	while (head) {
		struct metric *m = head;
		head = m->next;
		while (m->series) {
			struct metric_series *s = m->series;
			m->series = s->next;
			series_free(s);
		}
		m->last = NULL;
		m->n_series = 0;
		m->registered = 0;
		m->next = NULL;
	}
	tail = NULL;
	pthread_mutex_unlock(&mu);
}
