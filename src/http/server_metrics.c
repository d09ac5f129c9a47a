/* server_metrics.c - Prometheus families of the HTTP servers (see server_metrics.h). */
#include "http/server_metrics.h"

#include <stdio.h>
#include <stdlib.h>

struct pd_http_metrics {
    struct pd_metric_family *requests;
    struct pd_metric_family *duration;
    struct pd_metric_family *connections;
};

struct pd_http_metrics *pd_http_metrics_new(struct pd_metrics *reg, struct pd_err *err)
{
    static const char *const req_labels[] = {"server", "method", "code"};
    static const char *const srv_label[] = {"server"};
    /* From 100 µs (a cached answer on loopback) to 10 s (a long-poll's ceiling is the caller's business). */
    static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                     5,      10};
    struct pd_http_metrics *m = calloc(1, sizeof *m);
    if (!m) {
        pd_err_set(err, "out of memory creating HTTP metrics");
        return NULL;
    }
    m->requests = pd_metrics_counter(reg, "paddock_http_requests_total",
                                     "HTTP responses sent, by server, request method and status code.",
                                     req_labels, 3, err);
    if (m->requests)
        m->duration = pd_metrics_histogram(reg, "paddock_http_request_duration_seconds",
                                           "Time from a request head to its response.", srv_label, 1,
                                           buckets, sizeof buckets / sizeof buckets[0], err);
    if (m->duration)
        m->connections = pd_metrics_gauge(reg, "paddock_http_connections", "Open HTTP connections.",
                                          srv_label, 1, err);
    if (!m->connections) {
        free(m); /* families already registered stay in (and are freed with) the registry */
        return NULL;
    }
    return m;
}

void pd_http_metrics_free(struct pd_http_metrics *m)
{
    free(m);
}

void pd_http_metrics_bind(const struct pd_http_metrics *m, const char *server, double (*connections_fn)(void *),
                          void *arg, struct pd_http_server_series *out)
{
    out->m = m;
    out->server = server;
    out->duration = m ? pd_metric_with(m->duration, server) : NULL;
    out->connections = m ? pd_metric_with(m->connections, server) : NULL;
    if (out->connections && connections_fn)
        pd_metric_gauge_set_fn(out->connections, connections_fn, arg);
}

void pd_http_metrics_response(const struct pd_http_server_series *s, const char *method, int status,
                              double seconds)
{
    if (!s->m)
        return;
    char code[16];
    snprintf(code, sizeof code, "%d", status);
    pd_metric_inc(pd_metric_with(s->m->requests, s->server, method, code));
    if (seconds >= 0)
        pd_metric_observe(s->duration, seconds);
}
