/* test_metrics.c - unit tests for core/metrics.{h,c}: exact exposition text, validation,
 * cardinality, concurrency of updates. Every test frees what it creates (the ASan build checks for
 * leaks). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/metrics.h"

/* Render reg into a fresh buffer and compare with want. */
static void assert_render(struct pd_metrics *reg, const char *want)
{
    struct pd_metrics_buf b;
    struct pd_err err = {{0}};
    pd_metrics_buf_init(&b, 0);
    assert_int_equal(pd_metrics_render(reg, &b, &err), 0);
    assert_string_equal(b.data ? b.data : "", want);
    assert_int_equal(b.len, strlen(want));
    pd_metrics_buf_free(&b);
}

static double callback_value(void *arg)
{
    return (double)*(const int *)arg;
}

static void test_render_all_types(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    assert_non_null(reg);

    const char *req_labels[] = {"action", "host"};
    struct pd_metric_family *req =
        pd_metrics_counter(reg, "pd_requests_total", "Requests by decision.", req_labels, 2, &err);
    assert_non_null(req);
    struct pd_metric_family *temp =
        pd_metrics_gauge(reg, "pd_temperature", "Current temperature.", NULL, 0, &err);
    assert_non_null(temp);
    const char *hl[] = {"method"};
    const double bounds[] = {0.005, 0.1, 1};
    struct pd_metric_family *lat =
        pd_metrics_histogram(reg, "pd_latency_seconds", "Request latency.", hl, 1, bounds, 3, &err);
    assert_non_null(lat);
    int open_conns = 7;
    struct pd_metric_family *conns = pd_metrics_gauge_fn(
        reg, "pd_open_connections", "Open connections.", callback_value, &open_conns, &err);
    assert_non_null(conns);

    struct pd_metric *allowed = pd_metric_with(req, "allowed", "example.com");
    struct pd_metric *denied = pd_metric_with(req, "denied", "evil.test");
    pd_metric_inc(allowed);
    pd_metric_add(allowed, 2);
    pd_metric_inc(denied);
    assert_ptr_equal(pd_metric_with(req, "allowed", "example.com"), allowed);
    const char *vals[] = {"allowed", "example.com"};
    assert_ptr_equal(pd_metric_with_values(req, vals, 2), allowed);
    assert_int_equal(pd_metric_counter_get(allowed), 3);

    struct pd_metric *t = pd_metric_with(temp);
    pd_metric_gauge_set(t, 20);
    pd_metric_gauge_add(t, 2.5);
    pd_metric_gauge_inc(t);
    pd_metric_gauge_dec(t);
    pd_metric_gauge_dec(t);
    assert_true(pd_metric_gauge_get(t) == 21.5);

    struct pd_metric *get = pd_metric_with(lat, "GET");
    pd_metric_observe(get, 0.00390625); /* below the first bound */
    pd_metric_observe(get, 0.0625);
    pd_metric_observe(get, 1); /* on a bound: counted in le="1" */
    pd_metric_observe(get, 2.5); /* +Inf */
    assert_int_equal(pd_metric_histogram_count(get), 4);

    assert_render(reg, "# HELP pd_requests_total Requests by decision.\n"
                       "# TYPE pd_requests_total counter\n"
                       "pd_requests_total{action=\"allowed\",host=\"example.com\"} 3\n"
                       "pd_requests_total{action=\"denied\",host=\"evil.test\"} 1\n"
                       "# HELP pd_temperature Current temperature.\n"
                       "# TYPE pd_temperature gauge\n"
                       "pd_temperature 21.5\n"
                       "# HELP pd_latency_seconds Request latency.\n"
                       "# TYPE pd_latency_seconds histogram\n"
                       "pd_latency_seconds_bucket{method=\"GET\",le=\"0.005\"} 1\n"
                       "pd_latency_seconds_bucket{method=\"GET\",le=\"0.1\"} 2\n"
                       "pd_latency_seconds_bucket{method=\"GET\",le=\"1\"} 3\n"
                       "pd_latency_seconds_bucket{method=\"GET\",le=\"+Inf\"} 4\n"
                       "pd_latency_seconds_sum{method=\"GET\"} 3.56640625\n"
                       "pd_latency_seconds_count{method=\"GET\"} 4\n"
                       "# HELP pd_open_connections Open connections.\n"
                       "# TYPE pd_open_connections gauge\n"
                       "pd_open_connections 7\n");

    /* The callback runs at render time. */
    open_conns = 9;
    struct pd_metrics_buf b;
    pd_metrics_buf_init(&b, 0);
    assert_int_equal(pd_metrics_render(reg, &b, &err), 0);
    assert_non_null(strstr(b.data, "\npd_open_connections 9\n"));
    pd_metrics_buf_free(&b);
    pd_metrics_free(reg);
}

static void test_unlabelled_families_start_at_zero(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    assert_non_null(pd_metrics_counter(reg, "pd_a_total", "A.", NULL, 0, &err));
    const double bounds[] = {1};
    assert_non_null(pd_metrics_histogram(reg, "pd_h", "H.", NULL, 0, bounds, 1, &err));
    const char *l[] = {"x"};
    assert_non_null(pd_metrics_gauge(reg, "pd_labelled", "No children yet.", l, 1, &err));
    assert_render(reg, "# HELP pd_a_total A.\n"
                       "# TYPE pd_a_total counter\n"
                       "pd_a_total 0\n"
                       "# HELP pd_h H.\n"
                       "# TYPE pd_h histogram\n"
                       "pd_h_bucket{le=\"1\"} 0\n"
                       "pd_h_bucket{le=\"+Inf\"} 0\n"
                       "pd_h_sum 0\n"
                       "pd_h_count 0\n"
                       "# HELP pd_labelled No children yet.\n"
                       "# TYPE pd_labelled gauge\n");
    pd_metrics_free(reg);
}

static void test_number_formatting(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    const char *l[] = {"case"};
    struct pd_metric_family *g = pd_metrics_gauge(reg, "pd_g", "Numbers.", l, 1, &err);
    struct pd_metric_family *c = pd_metrics_counter(reg, "pd_c_total", "Big.", NULL, 0, &err);
    /* Bounds are spelled like the Go client spells them (strconv 'g', -1). */
    const double bounds[] = {-1, 1e-05, 0.0001, 0.25, 123456, 1e6, 2.5e6, 1.5e300};
    struct pd_metric_family *h =
        pd_metrics_histogram(reg, "pd_b", "Bounds.", NULL, 0, bounds, 8, &err);
    assert_non_null(g);
    assert_non_null(c);
    assert_non_null(h);
    pd_metric_gauge_set(pd_metric_with(g, "tenth"), 0.1);
    pd_metric_gauge_set(pd_metric_with(g, "third"), 1.0 / 3.0);
    pd_metric_gauge_set(pd_metric_with(g, "int"), 123456789);
    pd_metric_gauge_set(pd_metric_with(g, "neg"), -0.5);
    pd_metric_gauge_set(pd_metric_with(g, "big"), 1e21);
    pd_metric_gauge_set(pd_metric_with(g, "tiny"), 1e-7);
    pd_metric_gauge_set(pd_metric_with(g, "nan"), NAN);
    pd_metric_gauge_set(pd_metric_with(g, "inf"), INFINITY);
    pd_metric_gauge_set(pd_metric_with(g, "minf"), -INFINITY);
    pd_metric_gauge_set(pd_metric_with(g, "max"), 1.7976931348623157e308);
    pd_metric_add(pd_metric_with(c), UINT64_MAX);
    pd_metric_observe(pd_metric_with(h), -2);
    assert_render(reg, "# HELP pd_g Numbers.\n"
                       "# TYPE pd_g gauge\n"
                       "pd_g{case=\"tenth\"} 0.1\n"
                       "pd_g{case=\"third\"} 0.3333333333333333\n"
                       "pd_g{case=\"int\"} 123456789\n"
                       "pd_g{case=\"neg\"} -0.5\n"
                       "pd_g{case=\"big\"} 1e+21\n"
                       "pd_g{case=\"tiny\"} 1e-07\n"
                       "pd_g{case=\"nan\"} NaN\n"
                       "pd_g{case=\"inf\"} +Inf\n"
                       "pd_g{case=\"minf\"} -Inf\n"
                       "pd_g{case=\"max\"} 1.7976931348623157e+308\n"
                       "# HELP pd_c_total Big.\n"
                       "# TYPE pd_c_total counter\n"
                       "pd_c_total 18446744073709551615\n"
                       "# HELP pd_b Bounds.\n"
                       "# TYPE pd_b histogram\n"
                       "pd_b_bucket{le=\"-1\"} 1\n"
                       "pd_b_bucket{le=\"1e-05\"} 1\n"
                       "pd_b_bucket{le=\"0.0001\"} 1\n"
                       "pd_b_bucket{le=\"0.25\"} 1\n"
                       "pd_b_bucket{le=\"123456\"} 1\n"
                       "pd_b_bucket{le=\"1e+06\"} 1\n"
                       "pd_b_bucket{le=\"2.5e+06\"} 1\n"
                       "pd_b_bucket{le=\"1.5e+300\"} 1\n"
                       "pd_b_bucket{le=\"+Inf\"} 1\n"
                       "pd_b_sum -2\n"
                       "pd_b_count 1\n");
    pd_metrics_free(reg);
}

static void test_escaping(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    const char *l[] = {"path", "ua"};
    struct pd_metric_family *f = pd_metrics_counter(
        reg, "pd_esc_total", "Line one\nback\\slash \"quoted\" tab\tend", l, 2, &err);
    assert_non_null(f);
    pd_metric_inc(pd_metric_with(f, "a\"b\\c\nd", "plain ünïcode"));
    assert_render(reg, "# HELP pd_esc_total Line one\\nback\\\\slash \"quoted\" tab\tend\n"
                       "# TYPE pd_esc_total counter\n"
                       "pd_esc_total{path=\"a\\\"b\\\\c\\nd\",ua=\"plain ünïcode\"} 1\n");
    pd_metrics_free(reg);
}

static void test_label_value_normalisation(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    const char *l[] = {"host"};
    struct pd_metric_family *f = pd_metrics_counter(reg, "pd_n_total", "N.", l, 1, &err);
    /* Invalid UTF-8 bytes become U+FFFD; values that normalise alike share a child. */
    struct pd_metric *a = pd_metric_with(f, "a\xff"
                                            "b");
    assert_ptr_equal(pd_metric_with(f, "a\xfe"
                                       "b"),
                     a);
    assert_ptr_equal(pd_metric_with(f, "a\xef\xbf\xbd"
                                       "b"),
                     a);
    pd_metric_inc(a);
    /* Long values are cut at PD_METRICS_LABEL_VALUE_MAX bytes, on a character boundary. */
    char longv[PD_METRICS_LABEL_VALUE_MAX + 50];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    struct pd_metric *lv = pd_metric_with(f, longv);
    longv[PD_METRICS_LABEL_VALUE_MAX + 10] = 'y';
    assert_ptr_equal(pd_metric_with(f, longv), lv);
    pd_metric_inc(lv);
    char cut[PD_METRICS_LABEL_VALUE_MAX + 2];
    memset(cut, 'x', PD_METRICS_LABEL_VALUE_MAX - 1);
    memcpy(cut + PD_METRICS_LABEL_VALUE_MAX - 1, "é",
           3); /* 2-byte char straddling the limit: dropped */
    struct pd_metric *cv = pd_metric_with(f, cut);
    assert_ptr_not_equal(cv, lv);
    pd_metric_inc(cv);
    char want[4096];
    char xs[PD_METRICS_LABEL_VALUE_MAX + 1];
    memset(xs, 'x', PD_METRICS_LABEL_VALUE_MAX);
    xs[PD_METRICS_LABEL_VALUE_MAX] = '\0';
    snprintf(want, sizeof want,
             "# HELP pd_n_total N.\n# TYPE pd_n_total counter\n"
             "pd_n_total{host=\"a\xef\xbf\xbd"
             "b\"} 1\n"
             "pd_n_total{host=\"%s\"} 1\n"
             "pd_n_total{host=\"%.*s\"} 1\n",
             xs, PD_METRICS_LABEL_VALUE_MAX - 1, xs);
    assert_render(reg, want);
    pd_metrics_free(reg);
}

struct bad_case {
    enum pd_metric_type type;
    const char *name;
    const char *help;
    const char *labels[PD_METRICS_MAX_LABELS + 1];
    size_t nlabels;
    const double *buckets;
    size_t nbuckets;
    size_t max_children;
    const char *want;
};

static void test_invalid_definitions_refused(void **state)
{
    (void)state;
    static const double ok_b[] = {1, 2};
    static const double dec_b[] = {1, 1};
    static const double nan_b[] = {1, NAN};
    static const double inf_b[] = {1, INFINITY};
    static const struct bad_case cases[] = {
        {PD_METRIC_COUNTER,
         "1abc_total",
         "h",
         {0},
         0,
         NULL,
         0,
         0,
         "metric name '1abc_total' is invalid: expected [a-zA-Z_:][a-zA-Z0-9_:]* of at most 200 "
         "bytes"},
        {PD_METRIC_GAUGE,
         "bad-name",
         "h",
         {0},
         0,
         NULL,
         0,
         0,
         "metric name 'bad-name' is invalid: expected [a-zA-Z_:][a-zA-Z0-9_:]* of at most 200 "
         "bytes"},
        {PD_METRIC_GAUGE,
         "",
         "h",
         {0},
         0,
         NULL,
         0,
         0,
         "metric name '' is invalid: expected [a-zA-Z_:][a-zA-Z0-9_:]* of at most 200 bytes"},
        {PD_METRIC_GAUGE,
         NULL,
         "h",
         {0},
         0,
         NULL,
         0,
         0,
         "metric name '(null)' is invalid: expected [a-zA-Z_:][a-zA-Z0-9_:]* of at most 200 bytes"},
        {PD_METRIC_COUNTER,
         "pd_requests",
         "h",
         {0},
         0,
         NULL,
         0,
         0,
         "counter name 'pd_requests' must end in _total"},
        {PD_METRIC_GAUGE, "pd_g", NULL, {0}, 0, NULL, 0, 0, "metric 'pd_g' needs a HELP text"},
        {PD_METRIC_GAUGE, "pd_g", "", {0}, 0, NULL, 0, 0, "metric 'pd_g' needs a HELP text"},
        {PD_METRIC_GAUGE,
         "pd_g",
         "bad \xff",
         {0},
         0,
         NULL,
         0,
         0,
         "HELP text of metric 'pd_g' must be valid UTF-8 of at most 1024 bytes"},
        {PD_METRIC_GAUGE,
         "pd_g",
         "h",
         {"__reserved"},
         1,
         NULL,
         0,
         0,
         "label name '__reserved' of metric 'pd_g' is invalid: the __ prefix is reserved"},
        {PD_METRIC_GAUGE,
         "pd_g",
         "h",
         {"1x"},
         1,
         NULL,
         0,
         0,
         "label name '1x' of metric 'pd_g' is invalid: expected [a-zA-Z_][a-zA-Z0-9_]*"},
        {PD_METRIC_GAUGE,
         "pd_g",
         "h",
         {"a:b"},
         1,
         NULL,
         0,
         0,
         "label name 'a:b' of metric 'pd_g' is invalid: expected [a-zA-Z_][a-zA-Z0-9_]*"},
        {PD_METRIC_GAUGE,
         "pd_g",
         "h",
         {"ok", NULL},
         2,
         NULL,
         0,
         0,
         "label name '(null)' of metric 'pd_g' is invalid: expected [a-zA-Z_][a-zA-Z0-9_]*"},
        {PD_METRIC_GAUGE,
         "pd_g",
         "h",
         {"host", "host"},
         2,
         NULL,
         0,
         0,
         "label name 'host' appears twice in metric 'pd_g'"},
        {PD_METRIC_GAUGE,
         "pd_g",
         "h",
         {"a", "b", "c", "d", "e", "f", "g", "h", "i"},
         9,
         NULL,
         0,
         0,
         "metric 'pd_g' has 9 label names: expected at most 8"},
        {PD_METRIC_HISTOGRAM,
         "pd_h",
         "h",
         {"le"},
         1,
         ok_b,
         2,
         0,
         "label name 'le' of histogram 'pd_h' is reserved for bucket bounds"},
        {PD_METRIC_HISTOGRAM,
         "pd_h",
         "h",
         {0},
         0,
         NULL,
         0,
         0,
         "histogram 'pd_h' needs 1 to 128 bucket bounds"},
        {PD_METRIC_HISTOGRAM,
         "pd_h",
         "h",
         {0},
         0,
         dec_b,
         2,
         0,
         "histogram 'pd_h': bucket bound 1 is invalid: bounds must be finite and strictly "
         "increasing (+Inf is "
         "implicit)"},
        {PD_METRIC_HISTOGRAM,
         "pd_h",
         "h",
         {0},
         0,
         nan_b,
         2,
         0,
         "histogram 'pd_h': bucket bound 1 is invalid: bounds must be finite and strictly "
         "increasing (+Inf is "
         "implicit)"},
        {PD_METRIC_HISTOGRAM,
         "pd_h",
         "h",
         {0},
         0,
         inf_b,
         2,
         0,
         "histogram 'pd_h': bucket bound 1 is invalid: bounds must be finite and strictly "
         "increasing (+Inf is "
         "implicit)"},
        {PD_METRIC_GAUGE,
         "pd_g",
         "h",
         {0},
         0,
         ok_b,
         2,
         0,
         "metric 'pd_g': bucket bounds are only for histograms"},
        {PD_METRIC_GAUGE,
         "pd_g",
         "h",
         {"x"},
         1,
         NULL,
         0,
         PD_METRICS_MAX_CHILDREN_LIMIT + 1,
         "metric 'pd_g': max_children 1000001 exceeds 1000000"},
    };
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bad_case *c = &cases[i];
        struct pd_metric_opts o = {.name = c->name,
                                   .help = c->help,
                                   .labels = c->labels,
                                   .nlabels = c->nlabels,
                                   .buckets = c->buckets,
                                   .nbuckets = c->nbuckets,
                                   .max_children = c->max_children};
        pd_err_clear(&err);
        assert_null(pd_metrics_add(reg, c->type, &o, &err));
        assert_string_equal(err.msg, c->want);
    }
    assert_null(pd_metrics_add(
        reg, PD_METRIC_GAUGE,
        &(struct pd_metric_opts){.name = "pd_g", .help = "h", .labels = NULL, .nlabels = 2}, &err));
    assert_string_equal(err.msg, "metric 'pd_g': 2 label names announced but none given");
    /* A name at the length limit is fine; one byte more is not. */
    char name[PD_METRICS_NAME_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_null(pd_metrics_gauge(reg, name, "h", NULL, 0, &err));
    name[PD_METRICS_NAME_MAX] = '\0';
    assert_non_null(pd_metrics_gauge(reg, name, "h", NULL, 0, &err));
    /* Names with colons are valid metric names. */
    assert_non_null(pd_metrics_gauge(reg, "pd:ratio", "h", NULL, 0, &err));
    /* NULL arguments. */
    assert_null(pd_metrics_add(NULL, PD_METRIC_GAUGE,
                               &(struct pd_metric_opts){.name = "x", .help = "h"}, &err));
    assert_string_equal(err.msg,
                        "pd_metrics_add: registry, options and a known metric type are required");
    assert_null(pd_metrics_gauge_fn(reg, "pd_cb", "h", NULL, NULL, &err));
    assert_string_equal(err.msg, "callback gauge 'pd_cb' needs a callback");
    /* Failed registrations left nothing behind. */
    struct pd_metrics_buf b;
    pd_metrics_buf_init(&b, 0);
    assert_int_equal(pd_metrics_render(reg, &b, &err), 0);
    assert_null(strstr(b.data, "pd_g"));
    assert_null(strstr(b.data, "pd_h"));
    assert_non_null(strstr(b.data, "# TYPE pd:ratio gauge\npd:ratio 0\n"));
    pd_metrics_buf_free(&b);
    pd_metrics_free(reg);
}

static void test_name_collisions_refused(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    const double b[] = {1};
    assert_non_null(pd_metrics_histogram(reg, "pd_h", "h", NULL, 0, b, 1, &err));
    assert_non_null(pd_metrics_gauge(reg, "pd_x_count", "h", NULL, 0, &err));
    assert_non_null(pd_metrics_counter(reg, "pd_c_total", "h", NULL, 0, &err));

    assert_null(pd_metrics_gauge(reg, "pd_h_sum", "h", NULL, 0, &err));
    assert_string_equal(err.msg,
                        "metric 'pd_h_sum' collides with the already registered histogram 'pd_h'");
    assert_null(pd_metrics_gauge(reg, "pd_h_bucket", "h", NULL, 0, &err));
    assert_string_equal(
        err.msg, "metric 'pd_h_bucket' collides with the already registered histogram 'pd_h'");
    assert_null(pd_metrics_histogram(reg, "pd_x", "h", NULL, 0, b, 1, &err));
    assert_string_equal(err.msg,
                        "metric 'pd_x' collides with the already registered gauge 'pd_x_count'");
    assert_null(pd_metrics_counter(reg, "pd_c_total", "h", NULL, 0, &err));
    assert_string_equal(
        err.msg, "metric 'pd_c_total' collides with the already registered counter 'pd_c_total'");
    assert_null(pd_metrics_gauge(reg, "pd_h", "h", NULL, 0, &err));
    assert_string_equal(err.msg,
                        "metric 'pd_h' collides with the already registered histogram 'pd_h'");
    /* Similar but distinct names are fine. */
    assert_non_null(pd_metrics_gauge(reg, "pd_h_summary", "h", NULL, 0, &err));
    assert_non_null(pd_metrics_gauge(reg, "pd_hsum", "h", NULL, 0, &err));
    pd_metrics_free(reg);
}

static void test_bucket_helpers(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    double out[PD_METRICS_MAX_BUCKETS + 1];
    assert_int_equal(pd_metrics_buckets_linear(1, 2, 3, out, &err), 0);
    assert_true(out[0] == 1 && out[1] == 3 && out[2] == 5);
    assert_int_equal(pd_metrics_buckets_exponential(0.25, 2, 4, out, &err), 0);
    assert_true(out[0] == 0.25 && out[1] == 0.5 && out[2] == 1 && out[3] == 2);

    const char *lin_msg =
        "linear buckets need 1 to 128 bounds, a finite start and a finite width > 0";
    const char *exp_msg =
        "exponential buckets need 1 to 128 bounds, a finite start > 0 and a finite factor > 1";
    assert_int_equal(pd_metrics_buckets_linear(0, 0, 3, out, &err), -1);
    assert_string_equal(err.msg, lin_msg);
    assert_int_equal(pd_metrics_buckets_linear(0, 1, 0, out, &err), -1);
    assert_string_equal(err.msg, lin_msg);
    assert_int_equal(pd_metrics_buckets_linear(0, 1, PD_METRICS_MAX_BUCKETS + 1, out, &err), -1);
    assert_string_equal(err.msg, lin_msg);
    assert_int_equal(pd_metrics_buckets_linear(NAN, 1, 2, out, &err), -1);
    assert_string_equal(err.msg, lin_msg);
    assert_int_equal(pd_metrics_buckets_linear(1e308, 1e308, 3, out, &err), -1);
    assert_string_equal(err.msg, "linear buckets: bound 1 is not finite and increasing");
    assert_int_equal(pd_metrics_buckets_linear(1e17, 1, 3, out, &err), -1); /* 1e17 + 1 == 1e17 */
    assert_string_equal(err.msg, "linear buckets: bound 1 is not finite and increasing");
    assert_int_equal(pd_metrics_buckets_exponential(0, 2, 3, out, &err), -1);
    assert_string_equal(err.msg, exp_msg);
    assert_int_equal(pd_metrics_buckets_exponential(1, 1, 3, out, &err), -1);
    assert_string_equal(err.msg, exp_msg);
    assert_int_equal(pd_metrics_buckets_exponential(1e300, 1e10, 3, out, &err), -1);
    assert_string_equal(err.msg, "exponential buckets: bound 1 is not finite and increasing");
    assert_int_equal(pd_metrics_buckets_exponential(1, 2, 2, NULL, &err), -1);

    /* A histogram built from a helper layout. */
    struct pd_metrics *reg = pd_metrics_new(&err);
    assert_int_equal(pd_metrics_buckets_exponential(1, 10, 3, out, &err), 0);
    struct pd_metric_family *h =
        pd_metrics_histogram(reg, "pd_size_bytes", "Sizes.", NULL, 0, out, 3, &err);
    assert_non_null(h);
    struct pd_metric *m = pd_metric_with(h);
    const double obs[] = {0.5, 1, 5, 10, 50, 100, 1000, NAN, -3};
    for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
        pd_metric_observe(m, obs[i]);
    assert_int_equal(pd_metric_histogram_count(m), 8); /* NaN ignored */
    assert_render(reg, "# HELP pd_size_bytes Sizes.\n"
                       "# TYPE pd_size_bytes histogram\n"
                       "pd_size_bytes_bucket{le=\"1\"} 3\n"
                       "pd_size_bytes_bucket{le=\"10\"} 5\n"
                       "pd_size_bytes_bucket{le=\"100\"} 7\n"
                       "pd_size_bytes_bucket{le=\"+Inf\"} 8\n"
                       "pd_size_bytes_sum 1163.5\n"
                       "pd_size_bytes_count 8\n");
    pd_metrics_free(reg);
}

static void test_cardinality_overflow(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    const char *l[] = {"action", "host"};
    struct pd_metric_opts o = {
        .name = "pd_dns_total", .help = "Queries.", .labels = l, .nlabels = 2, .max_children = 2};
    struct pd_metric_family *f = pd_metrics_add(reg, PD_METRIC_COUNTER, &o, &err);
    assert_non_null(f);
    struct pd_metric *a = pd_metric_with(f, "allow", "a.test");
    struct pd_metric *b = pd_metric_with(f, "allow", "b.test");
    struct pd_metric *c = pd_metric_with(f, "deny", "c.test");
    struct pd_metric *d = pd_metric_with(f, "deny", "d.test");
    assert_non_null(a);
    assert_non_null(c);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(c, d); /* both the overflow child */
    assert_ptr_equal(pd_metric_with(f, "allow", "a.test"), a);
    assert_ptr_equal(pd_metric_with(f, "__overflow__", "__overflow__"), c);
    pd_metric_inc(a);
    pd_metric_add(b, 2);
    pd_metric_inc(c);
    pd_metric_add(d, 10);
    assert_render(reg, "# HELP pd_dns_total Queries.\n"
                       "# TYPE pd_dns_total counter\n"
                       "pd_dns_total{action=\"allow\",host=\"a.test\"} 1\n"
                       "pd_dns_total{action=\"allow\",host=\"b.test\"} 2\n"
                       "pd_dns_total{action=\"__overflow__\",host=\"__overflow__\"} 11\n");
    pd_metrics_free(reg);
}

static void test_overflow_value_maps_to_overflow_child(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    const char *l[] = {"host"};
    struct pd_metric_family *f = pd_metrics_gauge(reg, "pd_g", "G.", l, 1, &err);
    /* Not at the bound yet, but an all-"__overflow__" combination must not become a duplicate
     * series. */
    pd_metric_gauge_set(pd_metric_with(f, "__overflow__"), 4);
    assert_render(reg, "# HELP pd_g G.\n# TYPE pd_g gauge\npd_g{host=\"__overflow__\"} 4\n");
    pd_metrics_free(reg);
}

static void test_children_stable_and_in_creation_order(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    const char *l[] = {"i"};
    struct pd_metric_family *f = pd_metrics_counter(reg, "pd_i_total", "I.", l, 1, &err);
    enum { N = 300 };
    struct pd_metric *kids[N];
    char v[16];
    for (int i = 0; i < N; i++) {
        snprintf(v, sizeof v, "%d", N - i); /* creation order differs from lexical order */
        kids[i] = pd_metric_with(f, v);
        pd_metric_add(kids[i], (uint64_t)i);
    }
    for (int i = 0; i < N; i++) {
        snprintf(v, sizeof v, "%d", N - i);
        assert_ptr_equal(pd_metric_with(f, v), kids[i]);
        assert_int_equal(pd_metric_counter_get(kids[i]), i);
    }
    struct pd_metrics_buf b;
    pd_metrics_buf_init(&b, 0);
    assert_int_equal(pd_metrics_render(reg, &b, &err), 0);
    char want[64];
    const char *p = b.data;
    p = strstr(p, "counter\n");
    assert_non_null(p);
    p += strlen("counter\n");
    for (int i = 0; i < N; i++) {
        int n = snprintf(want, sizeof want, "pd_i_total{i=\"%d\"} %d\n", N - i, i);
        assert_memory_equal(p, want, (size_t)n);
        p += n;
    }
    assert_string_equal(p, "");
    pd_metrics_buf_free(&b);
    pd_metrics_free(reg);
}

static void test_misuse_is_harmless(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    const char *l[] = {"a", "b"};
    struct pd_metric_family *f = pd_metrics_counter(reg, "pd_m_total", "M.", l, 2, &err);
    struct pd_metric_family *g = pd_metrics_gauge(reg, "pd_m_gauge", "G.", NULL, 0, &err);
    const char *one[] = {"x"};
    const char *with_null[] = {"x", NULL};
    assert_null(pd_metric_with_values(f, one, 1));
    assert_null(pd_metric_with_values(f, with_null, 2));
    assert_null(pd_metric_with_values(f, NULL, 2));
    assert_null(pd_metric_with(f, "only one"));
    assert_null(pd_metric_with(NULL));
    assert_null(pd_metric_with(g, "unexpected"));
    /* Updates on NULL or on a child of another type do nothing. */
    pd_metric_inc(NULL);
    pd_metric_add(NULL, 5);
    pd_metric_gauge_set(NULL, 1);
    pd_metric_gauge_add(NULL, 1);
    pd_metric_gauge_inc(NULL);
    pd_metric_gauge_dec(NULL);
    pd_metric_observe(NULL, 1);
    pd_metric_gauge_set_fn(NULL, callback_value, NULL);
    struct pd_metric *gm = pd_metric_with(g);
    struct pd_metric *cm = pd_metric_with(f, "x", "y");
    pd_metric_inc(gm);
    pd_metric_observe(gm, 3);
    pd_metric_gauge_set(cm, 3);
    pd_metric_observe(cm, 3);
    pd_metric_gauge_set_fn(cm, callback_value, NULL);
    assert_true(pd_metric_gauge_get(gm) == 0);
    assert_int_equal(pd_metric_counter_get(cm), 0);
    assert_true(isnan(pd_metric_gauge_get(cm)));
    assert_int_equal(pd_metric_counter_get(gm), 0);
    assert_int_equal(pd_metric_histogram_count(gm), 0);
    assert_int_equal(pd_metric_counter_get(NULL), 0);
    assert_int_equal(pd_metrics_render(NULL, NULL, &err), -1);
    assert_string_equal(err.msg, "pd_metrics_render: registry and output buffer are required");
    assert_render(reg,
                  "# HELP pd_m_total M.\n# TYPE pd_m_total counter\npd_m_total{a=\"x\",b=\"y\"} 0\n"
                  "# HELP pd_m_gauge G.\n# TYPE pd_m_gauge gauge\npd_m_gauge 0\n");
    pd_metrics_free(reg);
}

static void test_labelled_callback_gauge(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    const char *l[] = {"listener"};
    struct pd_metric_family *f = pd_metrics_gauge(reg, "pd_conns", "Connections.", l, 1, &err);
    int n = 12;
    struct pd_metric *proxy = pd_metric_with(f, "proxy");
    pd_metric_gauge_set(proxy, 1);
    pd_metric_gauge_set_fn(proxy, callback_value, &n);
    pd_metric_gauge_set(pd_metric_with(f, "dns"), 2);
    assert_render(reg, "# HELP pd_conns Connections.\n# TYPE pd_conns gauge\n"
                       "pd_conns{listener=\"proxy\"} 12\npd_conns{listener=\"dns\"} 2\n");
    pd_metric_gauge_set_fn(proxy, NULL, NULL);
    assert_render(reg, "# HELP pd_conns Connections.\n# TYPE pd_conns gauge\n"
                       "pd_conns{listener=\"proxy\"} 1\npd_conns{listener=\"dns\"} 2\n");
    pd_metrics_free(reg);
}

static void test_render_limit_and_append(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    pd_metric_inc(pd_metric_with(pd_metrics_counter(reg, "pd_r_total", "R.", NULL, 0, &err)));
    const char *want = "# HELP pd_r_total R.\n# TYPE pd_r_total counter\npd_r_total 1\n";

    size_t wl = strlen(want);
    char twice[256];
    snprintf(twice, sizeof twice, "%s%s", want, want);

    struct pd_metrics_buf b;
    pd_metrics_buf_init(&b, 2 * wl - 1);
    assert_int_equal(pd_metrics_render(reg, &b, &err), 0);
    assert_string_equal(b.data, want);
    /* Appending a second copy would pass the limit: refused, and the buffer is as it was. */
    assert_int_equal(pd_metrics_render(reg, &b, &err), -1);
    char msg[128];
    snprintf(msg, sizeof msg, "metrics output exceeds the buffer limit of %zu bytes", 2 * wl - 1);
    assert_string_equal(err.msg, msg);
    assert_int_equal(b.len, wl);
    assert_string_equal(b.data, want);
    b.limit = 2 * wl;
    assert_int_equal(pd_metrics_render(reg, &b, &err), 0);
    assert_string_equal(b.data, twice);
    pd_metrics_buf_free(&b);

    /* Failing on a fresh buffer leaves it empty. */
    pd_metrics_buf_init(&b, 10);
    assert_int_equal(pd_metrics_render(reg, &b, &err), -1);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data ? b.data : "", "");
    pd_metrics_buf_free(&b);
    pd_metrics_free(reg);
}

/* ---- concurrency
 * --------------------------------------------------------------------------------- */

enum { THREADS = 4, ITERS = 100000 };

struct worker {
    struct pd_metric_family *counter, *gauge, *hist;
    int id;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct pd_metric *c = pd_metric_with(w->counter, "shared");
    struct pd_metric *g = pd_metric_with(w->gauge);
    struct pd_metric *h = pd_metric_with(w->hist);
    char own[16];
    snprintf(own, sizeof own, "t%d", w->id);
    for (int i = 0; i < ITERS; i++) {
        pd_metric_inc(c);
        pd_metric_gauge_add(g, 1.0);
        pd_metric_observe(h, (double)(i % 4));
        if (i % 1000 == 0) {
            /* Lookups and child creation racing with updates and with the other threads. */
            pd_metric_inc(pd_metric_with(w->counter, own));
            char fresh[32];
            snprintf(fresh, sizeof fresh, "t%d-%d", w->id, i);
            pd_metric_inc(pd_metric_with(w->counter, fresh));
        }
    }
    return NULL;
}

struct renderer {
    struct pd_metrics *reg;
    int failures;
};

static void *render_main(void *arg)
{
    struct renderer *r = arg;
    struct pd_err err;
    for (int i = 0; i < 20; i++) {
        struct pd_metrics_buf b;
        pd_metrics_buf_init(&b, 0);
        if (pd_metrics_render(r->reg, &b, &err) != 0)
            r->failures++;
        pd_metrics_buf_free(&b);
    }
    return NULL;
}

static void test_concurrent_updates_sum_exactly(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    const char *l[] = {"who"};
    struct pd_metric_family *c = pd_metrics_counter(reg, "pd_ops_total", "Ops.", l, 1, &err);
    struct pd_metric_family *g = pd_metrics_gauge(reg, "pd_level", "Level.", NULL, 0, &err);
    const double bounds[] = {0.5, 1.5, 2.5};
    struct pd_metric_family *h =
        pd_metrics_histogram(reg, "pd_obs", "Obs.", NULL, 0, bounds, 3, &err);
    assert_non_null(c);
    assert_non_null(g);
    assert_non_null(h);

    pthread_t tids[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.counter = c, .gauge = g, .hist = h, .id = i};
        assert_int_equal(pthread_create(&tids[i], NULL, worker_main, &w[i]), 0);
    }
    pthread_t rt;
    struct renderer r = {.reg = reg};
    assert_int_equal(pthread_create(&rt, NULL, render_main, &r), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(tids[i], NULL), 0);
    assert_int_equal(pthread_join(rt, NULL), 0);
    assert_int_equal(r.failures, 0);

    assert_int_equal(pd_metric_counter_get(pd_metric_with(c, "shared")), (uint64_t)THREADS * ITERS);
    for (int i = 0; i < THREADS; i++) {
        char own[16];
        snprintf(own, sizeof own, "t%d", i);
        assert_int_equal(pd_metric_counter_get(pd_metric_with(c, own)), ITERS / 1000);
    }
    assert_true(pd_metric_gauge_get(pd_metric_with(g)) == (double)THREADS * ITERS);
    assert_int_equal(pd_metric_histogram_count(pd_metric_with(h)), (uint64_t)THREADS * ITERS);

    /* Each value 0..3 was observed THREADS * ITERS / 4 times; the sum is exact in binary. */
    char want[1024];
    snprintf(
        want, sizeof want,
        "# HELP pd_obs Obs.\n# TYPE pd_obs histogram\n"
        "pd_obs_bucket{le=\"0.5\"} %d\npd_obs_bucket{le=\"1.5\"} %d\npd_obs_bucket{le=\"2.5\"} %d\n"
        "pd_obs_bucket{le=\"+Inf\"} %d\npd_obs_sum %d\npd_obs_count %d\n",
        THREADS * ITERS / 4, THREADS * ITERS / 2, THREADS * ITERS * 3 / 4, THREADS * ITERS,
        THREADS * ITERS / 4 * 6, THREADS * ITERS);
    struct pd_metrics_buf b;
    pd_metrics_buf_init(&b, 0);
    assert_int_equal(pd_metrics_render(reg, &b, &err), 0);
    const char *hist = strstr(b.data, "# HELP pd_obs");
    assert_non_null(hist);
    assert_string_equal(hist, want);
    /* 1 shared + THREADS own + THREADS * ITERS / 1000 fresh children, all below the default bound.
     */
    size_t series = 0;
    for (const char *p = b.data; (p = strstr(p, "\npd_ops_total{")) != NULL; p++)
        series++;
    assert_int_equal(series, 1 + THREADS + THREADS * ITERS / 1000);
    pd_metrics_buf_free(&b);
    pd_metrics_free(reg);
}

static void test_free_null_and_empty(void **state)
{
    (void)state;
    pd_metrics_free(NULL);
    pd_metrics_buf_free(NULL);
    pd_metrics_buf_init(NULL, 0);
    struct pd_err err = {{0}};
    struct pd_metrics *reg = pd_metrics_new(&err);
    assert_non_null(reg);
    struct pd_metrics_buf b;
    pd_metrics_buf_init(&b, 0);
    assert_int_equal(pd_metrics_render(reg, &b, &err), 0);
    assert_int_equal(b.len, 0);
    pd_metrics_buf_free(&b);
    pd_metrics_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_all_types),
        cmocka_unit_test(test_unlabelled_families_start_at_zero),
        cmocka_unit_test(test_number_formatting),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_label_value_normalisation),
        cmocka_unit_test(test_invalid_definitions_refused),
        cmocka_unit_test(test_name_collisions_refused),
        cmocka_unit_test(test_bucket_helpers),
        cmocka_unit_test(test_cardinality_overflow),
        cmocka_unit_test(test_overflow_value_maps_to_overflow_child),
        cmocka_unit_test(test_children_stable_and_in_creation_order),
        cmocka_unit_test(test_misuse_is_harmless),
        cmocka_unit_test(test_labelled_callback_gauge),
        cmocka_unit_test(test_render_limit_and_append),
        cmocka_unit_test(test_concurrent_updates_sum_exactly),
        cmocka_unit_test(test_free_null_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
