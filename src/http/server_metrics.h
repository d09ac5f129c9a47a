/*
 * server_metrics.h - Prometheus metrics of the HTTP servers of one process.
 *
 * The families are created once per registry and shared by every server of the process (the control-plane
 * API, a /metrics endpoint, ...); each server's series carry its log component in the `server` label:
 *   paddock_http_requests_total{server,method,code}        responses sent, by request method and status
 *   paddock_http_request_duration_seconds{server}           time from the request head to the response
 *   paddock_http_connections{server}                        open connections (computed at render time)
 * `method` is the request's method if it is a known one, "OTHER" for other tokens, and "NONE" when the
 * response answers no parsed request (malformed head, timeout, connection cap). Label values are bounded
 * (methods x status codes), so the families never grow with traffic.
 *
 * Who calls it: whoever builds a server (pd_http_server_config.metrics); server.c records responses.
 * Owns the family pointers only; the registry (core/metrics.h) owns the families.
 */
#ifndef PD_HTTP_SERVER_METRICS_H
#define PD_HTTP_SERVER_METRICS_H

#include "core/err.h"
#include "core/metrics.h"

struct pd_http_metrics;

/* Register the families in reg; NULL (err set) on a name collision or allocation failure. */
struct pd_http_metrics *pd_http_metrics_new(struct pd_metrics *reg, struct pd_err *err);
void pd_http_metrics_free(struct pd_http_metrics *m);

/* Per-server children, resolved once when the server is created (server.c). */
struct pd_http_server_series {
    const struct pd_http_metrics *m;
    const char *server;
    struct pd_metric *duration;
    struct pd_metric *connections;
};

/* Resolve the children for one server; `connections_fn(arg)` is read at render time. */
void pd_http_metrics_bind(const struct pd_http_metrics *m, const char *server, double (*connections_fn)(void *),
                          void *arg, struct pd_http_server_series *out);
/* Count one response; seconds < 0 when it answers no parsed request (no duration observed). */
void pd_http_metrics_response(const struct pd_http_server_series *s, const char *method, int status,
                              double seconds);

#endif
