/*
 * server.c - the HTTP server object and its loop service: accepting (with the connection cap), worker
 * setup and teardown, graceful shutdown. The connection state machine itself is conn.c.
 */
#include "http/server.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "core/log.h"
#include "http/conn.h"

void pd_http_server_config_init(struct pd_http_server_config *c)
{
    memset(c, 0, sizeof *c);
    c->limits = (struct pd_http_limits)PD_HTTP_LIMITS_DEFAULT;
    c->max_body = 1024 * 1024;
    c->header_timeout_ms = 10000;
    c->body_timeout_ms = 60000;
    c->idle_timeout_ms = 60000;
    c->write_timeout_ms = 30000;
    c->linger_ms = 2000;
    c->max_connections = 1024;
    c->component = "http";
}

/* ---------------------------------------------------------------- service hooks */

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static int svc_worker_init(struct pd_worker *w, void *svc, void **state, struct pd_err *err)
{
    struct http_worker *hw = calloc(1, sizeof *hw);
    if (!hw) {
        pd_err_set(err, "out of memory");
        return -1;
    }
    hw->srv = svc;
    hw->w = w;
    *state = hw;
    return 0;
}

static void svc_worker_fini(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    struct http_worker *hw = state;
    /* Normally empty: connections unlink themselves when closed. Only a loop that gave up on stuck work
     * (loop.c) leaves some behind, with their handles already closed. */
    while (hw->conns) {
        struct conn *c = hw->conns;
        hw->conns = c->next;
        if (c->counted)
            atomic_fetch_sub(&hw->srv->nconns, 1);
        free(c->tcp);
        free(c->in);
        free(c->scratch);
        free(c->body);
        free(c->whead);
        free(c->wbody);
        free(c);
    }
    free(hw);
}

static void refuse(struct conn *c)
{
    struct http_worker *hw = c->hw;
    uint64_t now = uv_now(pd_worker_uv(hw->w));
    if (hw->refuse_log_ms == 0 || now - hw->refuse_log_ms >= REFUSE_LOG_INTERVAL_MS) {
        pd_log(PD_LOG_WARN, ccfg(c)->component, "connection_refused", PD_LSTR("reason", "too many connections"),
               PD_LSTR("peer", c->peer), PD_LUINT("max_connections", ccfg(c)->max_connections),
               PD_LUINT("suppressed", hw->refuse_suppressed));
        hw->refuse_log_ms = now ? now : 1;
        hw->refuse_suppressed = 0;
    } else {
        hw->refuse_suppressed++;
    }
    /* Refused connections do not count against the limit: admitted ones stay exactly bounded. */
    atomic_fetch_sub(&hw->srv->nconns, 1);
    c->counted = false;
    c->state = CS_HANDLER;
    pd_http_conn_error_reply(c, 503, "too many connections");
}

static void svc_accept(struct pd_worker *w, void *svc, void *state, uv_tcp_t *tcp, size_t listener)
{
    (void)listener;
    struct pd_http_server *srv = svc;
    struct http_worker *hw = state;
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        pd_log(PD_LOG_WARN, srv->cfg.component, "connection_refused", PD_LSTR("reason", "out of memory"));
        uv_close((uv_handle_t *)tcp, free_handle);
        return;
    }
    pd_worker_hold(w);
    c->hw = hw;
    c->tcp = tcp;
    tcp->data = c;
    uv_timer_init(pd_worker_uv(w), &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    c->ctx.c = c;
    c->next = hw->conns;
    if (hw->conns)
        hw->conns->prev = c;
    hw->conns = c;

    struct sockaddr_storage ss;
    int sl = (int)sizeof ss;
    snprintf(c->peer, sizeof c->peer, "?");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            uv_ip4_name(a, c->peer, sizeof c->peer);
            c->peer_port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, c->peer, sizeof c->peer);
            c->peer_port = ntohs(a->sin6_port);
        }
    }
    uv_tcp_nodelay(tcp, 1);

    size_t n = atomic_fetch_add(&srv->nconns, 1) + 1;
    c->counted = true;
    if (n > srv->cfg.max_connections) {
        refuse(c);
        return;
    }
    c->in_cap = srv->cfg.limits.max_head + IN_SLACK;
    c->in = malloc(c->in_cap);
    c->scratch_cap = srv->cfg.limits.max_target + PD_ROUTER_MAX_PARAMS + 1;
    c->scratch = malloc(c->scratch_cap);
    if (!c->in || !c->scratch) {
        pd_log(PD_LOG_WARN, srv->cfg.component, "connection_refused", PD_LSTR("reason", "out of memory"),
               PD_LSTR("peer", c->peer));
        pd_http_conn_close(c);
        return;
    }
    c->state = CS_HEAD;
    pd_http_conn_timer_arm(c, srv->cfg.header_timeout_ms);
    pd_http_conn_read_on(c);
    if (!c->reading)
        pd_http_conn_close(c);
}

static void svc_shutdown(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    struct http_worker *hw = state;
    hw->stopping = true;
    /* conn_close unlinks nothing synchronously (that happens in the close callbacks): iterating is safe. */
    for (struct conn *c = hw->conns; c; c = c->next)
        if (c->state == CS_IDLE || (c->state == CS_HEAD && c->in_len == 0))
            pd_http_conn_close(c);
}

static void svc_force_close(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    struct http_worker *hw = state;
    hw->stopping = true;
    for (struct conn *c = hw->conns; c; c = c->next)
        pd_http_conn_close(c);
}

/* ---------------------------------------------------------------- server object */

static double connections_gauge(void *arg)
{
    return (double)atomic_load(&((struct pd_http_server *)arg)->nconns);
}

struct pd_http_server *pd_http_server_new(const struct pd_http_server_config *cfg, const struct pd_router *router,
                                          struct pd_err *err)
{
    struct pd_http_server_config c;
    if (cfg)
        c = *cfg;
    else
        pd_http_server_config_init(&c);
    if (!router) {
        pd_err_set(err, "an HTTP server needs a router");
        return NULL;
    }
    if (c.limits.max_head < 64 || c.limits.max_head > 1024 * 1024 || c.limits.max_target < 1 ||
        c.limits.max_target > c.limits.max_head || c.limits.max_headers < 1 ||
        c.limits.max_headers > PD_HTTP_MAX_HEADERS) {
        pd_err_set(err, "HTTP limits out of range (max_head 64..1048576, max_target 1..max_head, max_headers "
                   "1..%d)", PD_HTTP_MAX_HEADERS);
        return NULL;
    }
    if (c.max_connections < 1 || c.max_body > ((size_t)1 << 40)) {
        pd_err_set(err, "max_connections must be at least 1 and max_body at most 1 TiB");
        return NULL;
    }
    if (!c.component)
        c.component = "http";
    struct pd_http_server *s = calloc(1, sizeof *s);
    if (!s) {
        pd_err_set(err, "out of memory");
        return NULL;
    }
    s->cfg = c;
    s->router = router;
    atomic_init(&s->nconns, 0);
    pd_http_metrics_bind(c.metrics, c.component, connections_gauge, s, &s->series);
    s->ops = (struct pd_loop_service){
        .name = "http",
        .worker_init = svc_worker_init,
        .accept = svc_accept,
        .shutdown = svc_shutdown,
        .force_close = svc_force_close,
        .worker_fini = svc_worker_fini,
    };
    return s;
}

void pd_http_server_free(struct pd_http_server *s)
{
    if (s && s->series.connections)
        pd_metric_gauge_set_fn(s->series.connections, NULL, NULL); /* the registry may outlive us */
    free(s);
}

int pd_http_server_attach(struct pd_http_server *s, struct pd_loop *loop, struct pd_err *err)
{
    return pd_loop_add_service(loop, &s->ops, s, err);
}

size_t pd_http_server_connections(const struct pd_http_server *s)
{
    return atomic_load(&((struct pd_http_server *)s)->nconns);
}
