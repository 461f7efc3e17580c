/*
 * metrics.h — the process's counters, gauges and histograms, rendered in
 * the Prometheus text exposition format 0.0.4 (metrics_server.h serves
 * them on --metrics-listen; docs/OPERATIONS.md lists every one).
 *
 * A metric is a static `struct metric` (the catalogue below, defined in
 * metrics.c): its name, help, type, label names and, for a histogram, its
 * fixed bucket bounds. A series is one combination of label values, made
 * on first use; a metric holds at most METRIC_SERIES_MAX of them (later
 * ones are dropped, counted in coffer_metrics_series_dropped_total), so a
 * caller must only pass label values from a small fixed set: a route
 * template, a state, an error name — never a raw path, an id, an app name,
 * a token or a value. Label values are passed as the variadic arguments,
 * exactly one `const char *` per label name, in order.
 *
 * A metric appears in the rendering once it is used or metrics_register-ed
 * (each role registers the ones it serves at start, so an untouched
 * counter shows as declared). Everything is thread-safe (one mutex); the
 * library owns every series and frees them in metrics_reset.
 */
#ifndef COFFER_METRICS_H
#define COFFER_METRICS_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

#define METRIC_LABELS_MAX 4
#define METRIC_SERIES_MAX 512      /* series per metric */
#define METRIC_LABEL_VALUE_MAX 128 /* bytes of one label value; a longer one is cut */
#define METRIC_BUCKETS_MAX 16

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric_series;

struct metric {
	const char *name; /* ^[a-zA-Z_:][a-zA-Z0-9_:]*$; a counter's ends in _total */
	const char *help;
	enum metric_type type;
	const char *labels[METRIC_LABELS_MAX]; /* names, NULL after the last */
	const double *buckets;                 /* histogram: upper bounds, ascending; +Inf is implied */
	size_t n_buckets;
	/* the library's, under its mutex */
	int registered;
	struct metric *next;
	struct metric_series *series, *last;
	size_t n_series;
};

/* The catalogue (docs/OPERATIONS.md "Metrics and health"). */
extern struct metric metric_http_requests;        /* counter {role,route,method,status} */
extern struct metric metric_http_duration;        /* histogram {role,route} */
extern struct metric metric_store_duration;       /* histogram {op}: query, commit */
extern struct metric metric_releases;             /* counter {outcome}: succeeded, failed */
extern struct metric metric_release_lease_held;   /* gauge: 1 while this api holds the controller lease */
extern struct metric metric_keeper_opens;         /* counter {outcome,reason} */
extern struct metric metric_keeper_kms_ops;       /* counter {op,outcome}: every use, where the audit has one a minute */
extern struct metric metric_machines;             /* gauge {state}: running, down */
extern struct metric metric_peer_up;              /* gauge {peer}: api, keeper; the last call's outcome */
extern struct metric metric_series_dropped;       /* counter {metric} */

/* Makes the metric appear in the rendering even before it is used. */
void metrics_register(struct metric *m);

void metrics_counter_add(struct metric *m, double v, ...);
void metrics_gauge_set(struct metric *m, double v, ...);
void metrics_observe(struct metric *m, double v, ...);
/* The gauge's (or counter's) value; *found 0 (and 0 returned) when the series does not exist. */
double metrics_value(struct metric *m, int *found, ...);

/* Appends every registered metric to out, in the order they were registered. */
COFFER_MUST_CHECK enum coffer_err metrics_render(struct buf *out);

/* Forgets every series and registration (tests). */
void metrics_reset(void);

#endif
