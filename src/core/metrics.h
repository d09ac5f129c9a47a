/*
 * metrics.h - Prometheus metrics: a registry of counters, gauges and histograms rendered in the
 * text exposition format 0.0.4.
 *
 * Who calls it: the egress proxy, the DNS filter and the control plane each create a registry at
 * startup (pd_metrics_new), register their families, cache the child pointers they update on hot
 * paths, and render the registry from their `/metrics` handler (pd_metrics_render, served as
 * PD_METRICS_CONTENT_TYPE).
 *
 * What it owns: the registry owns its families, a family owns its children (one per label-value
 * combination). All are freed by pd_metrics_free; pointers returned by this module stay valid and
 * never move until then. The caller owns the registry (there is no process-wide default registry)
 * and the output buffer of pd_metrics_render.
 *
 * Names and labels:
 *   - Metric names match [a-zA-Z_:][a-zA-Z0-9_:]* (at most PD_METRICS_NAME_MAX bytes).
 *   - Counter names must end in "_total"; a counter name without it is refused, never rewritten, so
 * the name in the code is the name in the exposition.
 *   - Label names match [a-zA-Z_][a-zA-Z0-9_]*, must not start with "__" (reserved by Prometheus),
 * must be distinct, and histograms must not use "le". At most PD_METRICS_MAX_LABELS per family.
 *   - A family's name (and for a histogram its _bucket/_sum/_count series) must not collide with
 * another family of the same registry.
 *   - HELP text is required (non-empty, valid UTF-8, at most PD_METRICS_HELP_MAX bytes).
 *   - Label values are arbitrary C strings (they often come from untrusted input such as domain
 * names). They are normalised before lookup: invalid UTF-8 bytes become U+FFFD and values are cut
 * at a character boundary to at most PD_METRICS_LABEL_VALUE_MAX bytes. Values that normalise to the
 * same text share one child, so the exposition never holds duplicate series.
 *
 * Cardinality: a labelled family holds at most `max_children` children (default
 * PD_METRICS_DEFAULT_MAX_CHILDREN). Past that, a new label combination is given the family's single
 * overflow child, whose label values are all PD_METRICS_OVERFLOW ("__overflow__"); the overflow
 * child is rendered (after the ordinary children) once it has been handed out. A label combination
 * that is itself all "__overflow__" maps to the overflow child too. Memory per family is therefore
 * bounded. A family without labels has exactly one child, created with the family (so it renders 0
 * from the start).
 *
 * Threads: every function may be called from any thread, except pd_metrics_free (no other call may
 * run concurrently with or after it). Updates (inc/add/set/observe) are lock-free C11 atomics with
 * relaxed ordering. Child lookup (pd_metric_with) takes the family's read lock, and its write lock
 * to create a child: cache the returned pointer on hot paths. Rendering takes the registry mutex
 * and each family's read lock in turn; it never blocks updates.
 *
 * Values: counters are unsigned 64-bit integers (counts of events and of bytes) and can only go up.
 * Gauges are doubles (stored as atomic 64-bit patterns, updated with compare-and-swap). Histograms
 * keep an integer count per bucket and a double sum.
 *
 * Never: keeps global mutable state, allocates on the update path, grows a family past its
 * cardinality bound, or emits text a Prometheus parser would reject (numbers are printed in the C
 * locale; the process must not switch LC_NUMERIC).
 */
#ifndef PD_CORE_METRICS_H
#define PD_CORE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define PD_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#define PD_METRICS_NAME_MAX 200 /* bytes in a metric or label name */
#define PD_METRICS_HELP_MAX 1024 /* bytes of HELP text */
#define PD_METRICS_MAX_LABELS 8 /* label names per family */
#define PD_METRICS_LABEL_VALUE_MAX 256 /* bytes per label value after normalisation */
#define PD_METRICS_MAX_BUCKETS 128 /* explicit upper bounds per histogram (+Inf is added) */
#define PD_METRICS_DEFAULT_MAX_CHILDREN 1000
#define PD_METRICS_MAX_CHILDREN_LIMIT 1000000
#define PD_METRICS_OVERFLOW "__overflow__"

enum pd_metric_type { PD_METRIC_COUNTER, PD_METRIC_GAUGE, PD_METRIC_HISTOGRAM };

struct pd_metrics; /* a registry */
struct pd_metric_family; /* one metric name with its HELP, TYPE and label names */
struct pd_metric; /* one child: a label-value combination of a family; holds the values */

/* Description of a family. Strings and arrays are copied; the caller keeps ownership. */
struct pd_metric_opts {
    const char *name;
    const char *help;
    const char *const *labels; /* label names (may be NULL when nlabels == 0) */
    size_t nlabels;
    size_t max_children; /* 0: PD_METRICS_DEFAULT_MAX_CHILDREN; at most
                            PD_METRICS_MAX_CHILDREN_LIMIT */
    const double *buckets; /* histograms only: finite, strictly increasing upper bounds, no +Inf */
    size_t nbuckets; /* histograms only: 1..PD_METRICS_MAX_BUCKETS */
};

/* Registry lifetime. pd_metrics_new returns NULL (err set) on allocation failure.
 * pd_metrics_free(NULL) is a no-op; freeing invalidates every family and child pointer of the
 * registry. */
struct pd_metrics *pd_metrics_new(struct pd_err *err);
void pd_metrics_free(struct pd_metrics *reg);

/*
 * Register a family. Returns NULL with a message naming the offending name or label on invalid
 * input, on a name collision, or on allocation failure. Families are rendered in registration
 * order.
 */
struct pd_metric_family *pd_metrics_add(struct pd_metrics *reg, enum pd_metric_type type,
                                        const struct pd_metric_opts *opts, struct pd_err *err);
/* Shorthands for pd_metrics_add with the default cardinality bound. */
struct pd_metric_family *pd_metrics_counter(struct pd_metrics *reg, const char *name,
                                            const char *help, const char *const *labels,
                                            size_t nlabels, struct pd_err *err);
struct pd_metric_family *pd_metrics_gauge(struct pd_metrics *reg, const char *name,
                                          const char *help, const char *const *labels,
                                          size_t nlabels, struct pd_err *err);
struct pd_metric_family *pd_metrics_histogram(struct pd_metrics *reg, const char *name,
                                              const char *help, const char *const *labels,
                                              size_t nlabels, const double *buckets,
                                              size_t nbuckets, struct pd_err *err);
/*
 * An unlabelled gauge whose value is fn(arg), computed at render time (e.g. open connections). fn
 * runs on the rendering thread with the registry mutex and the family read lock held: it must be
 * thread-safe with respect to what it reads and must not call into this registry.
 */
struct pd_metric_family *pd_metrics_gauge_fn(struct pd_metrics *reg, const char *name,
                                             const char *help, double (*fn)(void *arg), void *arg,
                                             struct pd_err *err);

/* Bucket layouts, written into out[0..count-1]: start, start+width, ... / start, start*factor, ...
 * Refused (-1, err set) unless count is 1..PD_METRICS_MAX_BUCKETS, start is finite, width > 0
 * (linear), start > 0 and factor > 1 (exponential), and every bound is finite. */
int pd_metrics_buckets_linear(double start, double width, size_t count, double *out,
                              struct pd_err *err);
int pd_metrics_buckets_exponential(double start, double factor, size_t count, double *out,
                                   struct pd_err *err);

/*
 * The child for these label values, created on first use. Returns the overflow child when the
 * family is at its bound (or when creating the child fails for lack of memory). Returns NULL only
 * on misuse: NULL family, a NULL value, or nvalues different from the family's label count. All
 * update functions accept NULL and do nothing, so misuse cannot crash a hot path.
 */
struct pd_metric *pd_metric_with_values(struct pd_metric_family *fam, const char *const *values,
                                        size_t nvalues);
/* pd_metric_with(fam, "allowed", "example.com"); pd_metric_with(fam) for a family without labels.
 */
#define pd_metric_with(fam, ...)                               \
    pd_metric_with_values(                                     \
        (fam), (const char *const[]){NULL, ##__VA_ARGS__} + 1, \
        sizeof((const char *const[]){NULL, ##__VA_ARGS__}) / sizeof(const char *) - 1)

/* Attach a render-time callback to a gauge child (fn NULL detaches it; the stored value is used
 * again). Same rules for fn as pd_metrics_gauge_fn. No effect on other types. */
void pd_metric_gauge_set_fn(struct pd_metric *m, double (*fn)(void *arg), void *arg);

/* Updates: lock-free, no allocation. A call on a child of another type, or on NULL, does nothing.
 */
void pd_metric_inc(struct pd_metric *counter); /* counter += 1 */
void pd_metric_add(struct pd_metric *counter, uint64_t n); /* counter += n (events, bytes) */
void pd_metric_gauge_set(struct pd_metric *gauge, double v);
void pd_metric_gauge_add(struct pd_metric *gauge, double d); /* negative d decreases */
void pd_metric_gauge_inc(struct pd_metric *gauge);
void pd_metric_gauge_dec(struct pd_metric *gauge);
/*
 * Count v in the first bucket whose upper bound is >= v (+Inf if none) and add it to _sum. NaN is
 * ignored. Concurrent readers: rendering reads each bucket once and derives the cumulative counts,
 * le="+Inf" and _count from those reads, so buckets are always cumulative and _count always equals
 * le="+Inf"; _sum is read separately and may include or miss observations that are in flight while
 * rendering.
 */
void pd_metric_observe(struct pd_metric *histogram, double v);

/* Reads (mostly for tests and status pages). 0 / NaN for NULL or a child of another type. A
 * callback gauge reports its stored value, not the callback's. */
uint64_t pd_metric_counter_get(const struct pd_metric *counter);
double pd_metric_gauge_get(const struct pd_metric *gauge);
uint64_t pd_metric_histogram_count(const struct pd_metric *histogram);

/* Growable output buffer. `limit` (0 = none) caps len; exceeding it fails like an allocation
 * failure. */
struct pd_metrics_buf {
    char *data; /* NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t limit;
};
void pd_metrics_buf_init(struct pd_metrics_buf *b, size_t limit);
void pd_metrics_buf_free(struct pd_metrics_buf *b);

/*
 * Append the exposition of every family to out. Returns 0, or -1 with err set on allocation failure
 * or when the limit is reached; on failure out->len is restored to its value on entry (out->data
 * stays usable).
 */
int pd_metrics_render(struct pd_metrics *reg, struct pd_metrics_buf *out, struct pd_err *err);

#endif
