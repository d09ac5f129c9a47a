/*
 * proxy.c - the forward-proxy engine: one state machine per client connection (states, what each
 * waits for and its timer are tabled in proxy.h). Plain HTTP in absolute form is decided, resolved,
 * dialed to exactly a checked address, rewritten and forwarded; CONNECT opens a tunnel (port 443
 * only after the ClientHello's SNI names the CONNECT host). Every request on a kept-alive
 * connection is decided on its own, with the policy that is current when its head arrives.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "gateway/proxy.h"
#include "gateway/tls_hello.h"

#define COMPONENT "gateway"

struct px_wreq {
    uv_write_t req;
    struct proxy_conn *c;
    struct px_upstream *up; /* NULL for writes to the client */
    char *data;
};

/* A reason text (r holds PD_GW_REASON_MAX bytes; longer texts are cut). */
void px_reason(char *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r, PD_GW_REASON_MAX, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- handles */

static void conn_free(struct proxy_conn *c)
{
    struct px_worker *pw = c->pw;
    if (c->prev)
        c->prev->next = c->next;
    else
        pw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->counted)
        atomic_fetch_sub(&pw->gw->nconns, 1);
    pd_gw_policy_unref(c->policy);
    free(c->in);
    free(c->up_head);
    free(c->rbuf);
    free(c->hello);
    free(c->sp_dead);
    free(c);
    pd_worker_release(pw->w);
}

void px_drop_pending(struct proxy_conn *c)
{
    if (--c->pending == 0)
        conn_free(c);
}

static void client_closed(uv_handle_t *h)
{
    struct proxy_conn *c = h->data;
    free(h);
    px_drop_pending(c);
}

static void timer_closed(uv_handle_t *h)
{
    px_drop_pending(h->data);
}

void px_upstream_closed(uv_handle_t *h)
{
    struct px_upstream *up = h->data;
    struct proxy_conn *c = up->c; /* NULL for a pooled connection */
    free(up);
    if (c)
        px_drop_pending(c);
}

void px_close_up(struct proxy_conn *c)
{
    if (!c->up)
        return;
    struct px_upstream *up = c->up;
    px_splice_stop(c);
    px_tls_free(c);
    c->up = NULL;
    c->up_reading = false;
    uv_close((uv_handle_t *)&up->tcp, px_upstream_closed);
}

void px_close(struct proxy_conn *c)
{
    if (c->state == PX_CLOSED)
        return;
    if (c->active)
        px_end_request(c);
    c->state = PX_CLOSED;
    if (c->tunnel_counted) {
        pd_metric_gauge_dec(GW(c)->m_tunnels);
        c->tunnel_counted = false;
    }
    px_close_up(c);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, timer_closed);
    uv_close((uv_handle_t *)c->tcp, client_closed);
}

/* ---------------------------------------------------------------- writes */

static void write_done(uv_write_t *req, int status)
{
    struct px_wreq *w = (struct px_wreq *)req;
    struct proxy_conn *c = w->c;
    struct px_upstream *up = w->up;
    free(w->data);
    free(w);
    if (up)
        up->nwrites--; /* the handle is freed only after its write callbacks ran */
    if (c->state == PX_CLOSED || status == UV_ECANCELED)
        return;
    if (status < 0 && up) {
        /* Like an upstream EOF (a pooled connection that went stale is retried fresh). */
        if (up == c->up) {
            c->up_reading = false;
            px_up_eof(c, status);
        }
        return;
    }
    if (status < 0) {
        pd_log(PD_LOG_DEBUG, COMPONENT, "write_failed", PD_LSTR("peer", c->peer),
               PD_LSTR("error", uv_strerror(status)));
        px_close(c);
        return;
    }
    px_update(c);
}

/* Write data (malloc'd, ownership taken) to a stream of c. Returns false when c was closed. */
bool px_write(struct proxy_conn *c, uv_stream_t *s, char *data, size_t len)
{
    if (len == 0) {
        free(data);
        return true;
    }
    /* Most writes complete at once: no request, no copy, and no epoll_ctl from libuv's drain. */
    size_t off = 0;
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    int n = uv_try_write(s, &b, 1);
    if (n > 0) {
        off = (size_t)n;
        if (off == len) {
            free(data);
            return true;
        }
    }
    /* The rest (or everything, after EAGAIN or an error, which the callback then reports) is
     * queued; off is at most len, so the buffer keeps its start for free(). */
    struct px_wreq *w = malloc(sizeof *w);
    if (!w) {
        free(data);
        px_close(c);
        return false;
    }
    w->c = c;
    w->up = s == (uv_stream_t *)c->tcp ? NULL : s->data;
    w->data = data;
    b = uv_buf_init(data + off, (unsigned)(len - off));
    int rc = uv_write(&w->req, s, &b, 1, write_done);
    if (rc < 0) {
        free(data);
        free(w);
        px_close(c);
        return false;
    }
    if (w->up)
        w->up->nwrites++;
    return true;
}

bool px_write_copy(struct proxy_conn *c, uv_stream_t *s, const void *p, size_t len)
{
    if (len == 0)
        return true;
    char *d = malloc(len);
    if (!d) {
        px_close(c);
        return false;
    }
    memcpy(d, p, len);
    return px_write(c, s, d, len);
}

static size_t queue_size(uv_tcp_t *t)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)t);
}

/* Charge the request's byte budget with what flowed since the last charge. Called as bytes are
 * handed to either socket, so a charge always precedes the bytes that caused it reaching the client
 * (a next request, on any worker, sees it). Sets budget_over when the budget is now spent. */
void px_charge(struct proxy_conn *c)
{
    if (!c->d.allowed || !c->d.budget)
        return;
    uint64_t s = c->bytes_sent - c->charged_sent, r = c->bytes_received - c->charged_received;
    if (s == 0 && r == 0)
        return;
    c->charged_sent = c->bytes_sent;
    c->charged_received = c->bytes_received;
    struct pd_budget_limits lim = {c->d.budget->bytes_sent_per_hour,
                                   c->d.budget->bytes_received_per_hour};
    if (pd_budget_charge(GW(c)->budget, c->d.budget->key, s, r, &lim, (int64_t)time(NULL), NULL) ==
        PD_BUDGET_EXHAUSTED)
        c->budget_over = true;
}

bool px_to_client(struct proxy_conn *c, char *data, size_t len)
{
    c->bytes_received += len;
    px_charge(c);
    return px_write(c, (uv_stream_t *)c->tcp, data, len);
}

bool px_to_up(struct proxy_conn *c, char *data, size_t len)
{
    c->bytes_sent += len;
    px_charge(c);
    if (c->ssl)
        return px_tls_write(c, data, len);
    return px_write(c, (uv_stream_t *)&c->up->tcp, data, len);
}

/* ---------------------------------------------------------------- accounting and logs */

void px_end_request(struct proxy_conn *c)
{
    if (!c->active)
        return;
    c->active = false;
    struct pd_gateway *gw = GW(c);
    px_charge(c);
    bool allowed = c->d.allowed && !c->error;
    uint64_t dur_us = (uv_hrtime() - c->t_start) / 1000;
    /* Metrics first: a test (or a scraper) that saw the access line sees the counters too. */
    pd_metric_inc(
        pd_metric_with(gw->m_requests, allowed ? "allow" : "deny", c->error ? c->error : "none"));
    pd_metric_observe(gw->m_duration, (double)dur_us / 1e6);
    pd_metric_add(gw->m_bytes_sent, c->bytes_sent);
    pd_metric_add(gw->m_bytes_received, c->bytes_received);
    pd_log(PD_LOG_INFO, COMPONENT, "access",
           PD_LSTR("sandbox_id", c->policy ? pd_gw_policy_sandbox_id(c->policy) : NULL),
           PD_LSTR("peer", c->peer), PD_LSTR("method", c->method[0] ? c->method : NULL),
           PD_LSTR("host", c->host[0] ? c->host : NULL), PD_LUINT("port", c->port),
           PD_LSTR("path", c->is_connect || !c->path[0] ? NULL : c->path),
           PD_LSTR("decision", allowed ? "allow" : "deny"), PD_LSTR("error", c->error),
           PD_LSTR("reason", c->d.reason[0] ? c->d.reason : NULL), PD_LSTR("rule", c->d.rule),
           PD_LINT("status", c->status), PD_LUINT("bytes_sent", c->bytes_sent),
           PD_LUINT("bytes_received", c->bytes_received), PD_LUINT("duration_us", dur_us),
           PD_LSTR("upstream", c->up_text[0] ? c->up_text : NULL),
           PD_LSTR("credential",
                   c->injected && c->d.credential ? pd_gw_credential_name(c->d.credential) : NULL));
    pd_gw_policy_unref(c->policy);
    c->policy = NULL;
    if (c->up_head) /* may hold an injected credential */
        explicit_bzero(c->up_head, c->up_head_len);
    free(c->up_head);
    c->up_head = NULL;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rbuf_len = c->rbuf_cap = 0;
    free(c->hello);
    c->hello = NULL;
    c->hello_len = 0;
}

/* Start a request's bookkeeping (the head has been parsed). */
void px_begin_request(struct proxy_conn *c)
{
    c->active = true;
    c->t_start = uv_hrtime();
    c->policy = pd_gateway_policy(GW(c));
    const struct pd_gw_limits *l = pd_gw_policy_limits(c->policy);
    uint32_t mh = c->lim.max_head;
    c->lim = *l;
    c->lim.max_head = mh;
    c->connect_timeout_ms = pd_gw_policy_upstream(c->policy)->connect_timeout_ms;
    memset(&c->d, 0, sizeof c->d);
    c->status = 0;
    c->error = NULL;
    c->method[0] = c->host[0] = c->path[0] = c->up_text[0] = '\0';
    c->is_connect = c->is_addr = false;
    c->port = 0;
    c->bytes_sent = c->bytes_received = c->charged_sent = c->charged_received = 0;
    c->resp_started = c->committed = c->close_after = false;
    c->naddrs = c->next_addr = 0;
    c->up_eof = false;
    c->budget_spent = c->budget_over = false;
    c->injected = false;
    c->dechunk = false;
    c->ws = false;
    c->reused = c->up_dirty = false;
}

/*
 * Answer the current request with a denial. keep: the connection may stay open for the next request
 * (only when nothing of this request is left unread). When the client already got a status (a 200
 * for CONNECT, or a response head) nothing can be sent: the connection is closed.
 */
void px_deny(struct proxy_conn *c, int status, const char *error, const char *reason,
             const char *rule, unsigned retry_after, bool keep)
{
    c->error = error;
    if (reason && reason != c->d.reason)
        snprintf(c->d.reason, sizeof c->d.reason, "%s", reason);
    if (rule)
        c->d.rule = rule;
    c->d.budget = NULL; /* a denial is not upstream traffic */
    px_close_up(c);
    if (c->committed) {
        pd_log(PD_LOG_INFO, COMPONENT, "tunnel_refused", PD_LSTR("peer", c->peer),
               PD_LSTR("host", c->host), PD_LUINT("port", c->port), PD_LSTR("error", error),
               PD_LSTR("reason", c->d.reason));
        px_close(c);
        return;
    }
    c->status = status;
    keep = keep && c->keep_alive && !c->pw->stopping;
    size_t len = 0;
    char *resp = px_denial_response(status, error, c->host[0] ? c->host : NULL, c->d.reason,
                                    c->d.rule, retry_after, !keep, &len);
    if (!resp) {
        px_close(c);
        return;
    }
    c->committed = true;
    if (!px_to_client(c, resp, len))
        return;
    c->bytes_received = 0; /* a denial is not upstream traffic */
    px_end_request(c);
    if (keep) {
        c->state = PX_HEAD; /* px_process_head consumes the head and re-arms the timer */
        return;
    }
    px_enter_closing(c);
}

/* ---------------------------------------------------------------- timers */

static void on_timer(uv_timer_t *t)
{
    struct proxy_conn *c = t->data;
    switch (c->state) {
    case PX_HEAD:
        if (c->in_len == 0) {
            px_close(c);
        } else {
            px_begin_request(c);
            char r[PD_GW_REASON_MAX];
            px_reason(r, "the request head did not arrive within %u ms",
                      (unsigned)c->lim.header_timeout_ms);
            px_deny(c, 408, "request_timeout", r, NULL, 0, false);
        }
        break;
    case PX_TLS_HELLO:
        px_deny(c, 408, "tls_hello_timeout", "no complete TLS ClientHello arrived in time", NULL, 0,
                false);
        break;
    case PX_RESOLVE:
    case PX_CONNECT:
    case PX_UPSTREAM_TLS:
        px_deny(c, 504, "upstream_timeout", "connecting to the upstream timed out", NULL, 0, false);
        break;
    case PX_FORWARD:
    case PX_RESPONSE:
    case PX_RELAY:
        if (!c->committed)
            px_deny(c, 504, "upstream_timeout", "the upstream did not answer in time", NULL, 0,
                    false);
        else
            px_close(c);
        break;
    case PX_TUNNEL:
        pd_log(PD_LOG_DEBUG, COMPONENT, "tunnel_idle", PD_LSTR("host", c->host),
               PD_LUINT("port", c->port));
        px_close(c);
        break;
    default:
        px_close(c);
        break;
    }
}

void px_arm(struct proxy_conn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---------------------------------------------------------------- reading */

void px_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(PX_READ_SIZE);
    buf->len = buf->base ? PX_READ_SIZE : 0;
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* While a response is pending (RESPONSE, RELAY) the client connection stays readable, so a keep-alive
 * request costs no read stop/start (epoll_ctl) pair; what arrives meanwhile is the next pipelined request,
 * kept in c->in and parsed once the response is done. The read buffer is then sized to the room left in
 * c->in, so everything read fits. */
static bool waiting_for_response(const struct proxy_conn *c)
{
    return c->state == PX_RESPONSE || c->state == PX_RELAY;
}

static void client_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct proxy_conn *c = h->data;
    size_t size = PX_READ_SIZE;
    if (waiting_for_response(c) && c->in_cap - c->in_len < size)
        size = c->in_cap - c->in_len;
    (void)suggested;
    buf->base = size ? malloc(size) : NULL;
    buf->len = buf->base ? size : 0;
}

static bool client_wants(struct proxy_conn *c)
{
    switch (c->state) {
    case PX_HEAD:
        return c->in_len < c->in_cap;
    case PX_TLS_HELLO:
    case PX_CLOSING:
        return true;
    case PX_FORWARD:
        return c->up && c->up->connected && !c->req_body.done && !c->close_after &&
               queue_size(&c->up->tcp) < PX_WATERMARK;
    case PX_TUNNEL:
        return !c->client_eof && c->up && queue_size(&c->up->tcp) < PX_WATERMARK;
    case PX_RESPONSE:
    case PX_RELAY:
        return c->keep_alive && !c->close_after && c->in_len < c->in_cap;
    default:
        return false;
    }
}

static bool up_wants(struct proxy_conn *c)
{
    if (!c->up || !c->up->connected || c->up_eof)
        return false;
    switch (c->state) {
    case PX_UPSTREAM_TLS:
    case PX_FORWARD:
    case PX_RESPONSE:
    case PX_RELAY:
    case PX_TUNNEL:
        return queue_size(c->tcp) < PX_WATERMARK;
    default:
        return false;
    }
}

/* A tunnel that relays bytes unchanged and has nothing queued in user space moves them by
 * splice(2) from now on (splice.c). */
static bool splice_ready(const struct proxy_conn *c)
{
    return c->state == PX_TUNNEL && !c->no_splice && !c->ssl && c->up && c->up->connected &&
           !c->client_eof && !c->up_eof && c->in_len == 0 && c->up->nwrites == 0 &&
           queue_size(c->tcp) == 0 && queue_size(&c->up->tcp) == 0;
}

void px_update(struct proxy_conn *c)
{
    if (c->state == PX_CLOSED || c->sp)
        return;
    if (splice_ready(c)) {
        if (px_splice_start(c))
            return;
        c->no_splice = true;
    }
    bool want = client_wants(c) && !c->client_eof;
    if (want && !c->client_reading) {
        if (uv_read_start((uv_stream_t *)c->tcp, client_alloc_cb, client_read) == 0)
            c->client_reading = true;
    } else if (!want && c->client_reading) {
        uv_read_stop((uv_stream_t *)c->tcp);
        c->client_reading = false;
    }
    if (!c->up)
        return;
    want = up_wants(c);
    if (want && !c->up_reading) {
        if (uv_read_start((uv_stream_t *)&c->up->tcp, px_alloc_cb, px_up_read) == 0)
            c->up_reading = true;
    } else if (!want && c->up_reading) {
        uv_read_stop((uv_stream_t *)&c->up->tcp);
        c->up_reading = false;
    }
}

static void shutdown_done(uv_shutdown_t *req, int status)
{
    struct proxy_conn *c = req->data;
    free(req);
    if (status == UV_ECANCELED || c->state == PX_CLOSED)
        return;
    if (status < 0 || c->state != PX_CLOSING) {
        if (status < 0)
            px_close(c);
        return;
    }
    px_arm(c, PX_LINGER_MS);
    px_update(c);
}

void px_shutdown_stream(struct proxy_conn *c, uv_stream_t *s)
{
    uv_shutdown_t *r = malloc(sizeof *r);
    if (!r) {
        px_close(c);
        return;
    }
    r->data = c;
    if (uv_shutdown(r, s, shutdown_done) != 0) {
        free(r);
        px_close(c);
    }
}

/* Flush what was written, FIN, then discard input until EOF or the linger bound. */
void px_enter_closing(struct proxy_conn *c)
{
    if (c->state == PX_CLOSED)
        return;
    if (c->active)
        px_end_request(c);
    px_close_up(c);
    c->state = PX_CLOSING;
    if (c->client_eof) {
        px_close(c);
        return;
    }
    px_arm(c, 10000 + PX_LINGER_MS); /* bound on flushing to a slow client */
    px_shutdown_stream(c, (uv_stream_t *)c->tcp);
    px_update(c);
}

/* After a complete response: next request, or close. */
void px_finish_response(struct proxy_conn *c)
{
    bool keep = c->keep_alive && !c->close_after && c->req_body.done &&
                c->resp_body.framing != PD_HTTP_BODY_CLOSE && !c->dechunk && !c->pw->stopping;
    bool pool = c->up && !c->ssl && !c->up_eof && !c->up_dirty && c->resp.keep_alive &&
                c->req_body.done && !c->close_after && !c->ws &&
                c->resp_body.framing != PD_HTTP_BODY_CLOSE;
    px_end_request(c);
    if (!(pool && px_pool_put(c)))
        px_close_up(c);
    if (!keep) {
        px_enter_closing(c);
        return;
    }
    c->state = PX_HEAD;
    c->idle = c->in_len == 0;
    px_arm(c, c->idle ? c->lim.idle_timeout_ms : c->lim.header_timeout_ms);
    if (c->in_len > 0)
        px_process_head(c);
    else
        px_in_release(c);
    px_update(c);
}

/* Append to c->in; false when it does not fit. */
static bool in_append(struct proxy_conn *c, const char *p, size_t n)
{
    if (n > c->in_cap - c->in_len)
        return false;
    if (!c->in && !(c->in = malloc(c->in_cap)))
        return false;
    memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
    return true;
}

void px_in_release(struct proxy_conn *c)
{
    if (c->in && c->in_len == 0) {
        free(c->in);
        c->in = NULL;
    }
}

void px_in_consume(struct proxy_conn *c, size_t n)
{
    if (n >= c->in_len) {
        c->in_len = 0;
        return;
    }
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* Forward request body bytes from c->in (after the head) upstream; leftovers stay (pipelined). */
bool px_forward_in_body(struct proxy_conn *c)
{
    if (c->in_len == 0 || c->req_body.done)
        return true;
    struct pd_http_error perr;
    long n = px_body_feed(&c->req_body, c->in, c->in_len, &perr);
    if (n < 0) {
        /* The head is gone upstream: nothing sensible to send either side. */
        pd_log(PD_LOG_INFO, COMPONENT, "bad_request_body", PD_LSTR("peer", c->peer),
               PD_LSTR("reason", perr.reason));
        c->error = "bad_request_body";
        px_close(c);
        return false;
    }
    if (n > 0) {
        char *d = malloc((size_t)n);
        if (!d) {
            px_close(c);
            return false;
        }
        memcpy(d, c->in, (size_t)n);
        if (!px_to_up(c, d, (size_t)n))
            return false;
        px_in_consume(c, (size_t)n);
    }
    return true;
}

void px_tunnel_bytes(struct proxy_conn *c)
{
    px_arm(c, c->lim.tunnel_idle_timeout_ms);
    if (c->budget_over && !c->budget_spent) {
        c->budget_spent = true;
        c->error = "budget_exhausted";
        pd_log(PD_LOG_INFO, COMPONENT, "tunnel_closed", PD_LSTR("host", c->host),
               PD_LUINT("port", c->port), PD_LSTR("reason", "byte budget spent"));
    }
}

static void client_eof_tunnel(struct proxy_conn *c)
{
    c->client_eof = true;
    if (c->up_eof || !c->up) {
        px_close(c);
        return;
    }
    px_shutdown_stream(c, (uv_stream_t *)&c->up->tcp);
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct proxy_conn *c = s->data;
    if (nread <= 0) {
        free(buf->base);
        if (nread == 0)
            return;
        c->client_reading = false;
        if (c->state == PX_TUNNEL && nread == UV_EOF) {
            client_eof_tunnel(c);
            return;
        }
        if (waiting_for_response(c) && nread == UV_EOF) {
            /* A half-close after the request: the response still goes out, then the connection closes. */
            c->client_eof = true;
            c->keep_alive = false;
            px_update(c);
            return;
        }
        c->client_eof = true;
        px_close(c);
        return;
    }
    size_t n = (size_t)nread;
    switch (c->state) {
    case PX_HEAD:
        if (c->idle) {
            c->idle = false;
            px_arm(c, c->lim.header_timeout_ms);
        }
        if (!in_append(c, buf->base, n)) {
            free(buf->base);
            px_close(c);
            return;
        }
        free(buf->base);
        px_process_head(c);
        break;
    case PX_TLS_HELLO: {
        size_t room = PD_TLS_HELLO_WIRE_MAX - c->hello_len;
        size_t k = n < room ? n : room;
        memcpy(c->hello + c->hello_len, buf->base, k);
        c->hello_len += k;
        free(buf->base);
        px_check_hello(c);
        break;
    }
    case PX_FORWARD: {
        struct pd_http_error perr;
        long b = px_body_feed(&c->req_body, buf->base, n, &perr);
        if (b < 0) {
            free(buf->base);
            c->error = "bad_request_body";
            pd_log(PD_LOG_INFO, COMPONENT, "bad_request_body", PD_LSTR("peer", c->peer),
                   PD_LSTR("reason", perr.reason));
            px_close(c);
            return;
        }
        if ((size_t)b < n && !in_append(c, buf->base + b, n - (size_t)b)) {
            free(buf->base);
            px_close(c);
            return;
        }
        px_arm(c, c->lim.tunnel_idle_timeout_ms);
        if (!px_to_up(c, buf->base, (size_t)b))
            return;
        if (c->req_body.done && c->state == PX_FORWARD)
            c->state = PX_RESPONSE;
        break;
    }
    case PX_RESPONSE:
    case PX_RELAY: /* the next pipelined request: parsed when this response is done */
        if (!in_append(c, buf->base, n)) {
            free(buf->base);
            px_close(c);
            return;
        }
        free(buf->base);
        break;
    case PX_TUNNEL:
        if (!c->up) {
            free(buf->base);
            return;
        }
        if (!px_to_up(c, buf->base, n))
            return;
        px_tunnel_bytes(c);
        if (c->budget_spent) {
            px_close(c);
            return;
        }
        break;
    default:
        free(buf->base); /* CLOSING: discarded */
        break;
    }
    px_update(c);
}

/* ---------------------------------------------------------------- service hooks */

/* Budgets: flush (on the thread pool: it writes and fsyncs a file) and expire, every second. */
static void flush_work(uv_work_t *req)
{
    struct px_worker *pw = req->data;
    struct pd_err err = {{0}};
    if (pd_budget_flush(pw->gw->budget, &err) != 0)
        pd_log(PD_LOG_WARN, COMPONENT, "budget_flush_failed", PD_LSTR("error", err.msg));
    pd_budget_expire(pw->gw->budget, (int64_t)time(NULL));
}

static void flush_after(uv_work_t *req, int status)
{
    (void)status;
    struct px_worker *pw = req->data;
    pw->flushing = false;
}

static void budget_tick(uv_timer_t *t)
{
    struct px_worker *pw = t->data;
    if (pw->flushing || !pd_budget_dirty(pw->gw->budget))
        return;
    pw->flushing = true;
    pw->flush_req.data = pw;
    if (uv_queue_work(pd_worker_uv(pw->w), &pw->flush_req, flush_work, flush_after) != 0)
        pw->flushing = false;
}

int px_worker_init(struct pd_worker *w, void *svc, void **state, struct pd_err *err)
{
    struct px_worker *pw = calloc(1, sizeof *pw);
    if (!pw) {
        pd_err_set(err, "out of memory");
        return -1;
    }
    pw->gw = svc;
    pw->w = w;
    *state = pw;
    px_pool_init(pw);
    if (pd_worker_index(w) == 0) {
        uv_timer_init(pd_worker_uv(w), &pw->budget_timer);
        pw->budget_timer.data = pw;
        uv_timer_start(&pw->budget_timer, budget_tick, 1000, 1000);
        pw->has_timer = true;
    }
    return 0;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void send_and_close(struct proxy_conn *c, int status, const char *error, const char *reason)
{
    px_begin_request(c);
    c->keep_alive = false;
    px_deny(c, status, error, reason, NULL, 0, false);
}

void px_accept(struct pd_worker *w, void *svc, void *state, uv_tcp_t *client, size_t listener)
{
    (void)listener;
    struct pd_gateway *gw = svc;
    struct px_worker *pw = state;
    struct proxy_conn *c = calloc(1, sizeof *c);
    if (!c) {
        uv_close((uv_handle_t *)client, free_handle);
        return;
    }
    pd_worker_hold(w);
    c->pw = pw;
    c->tcp = client;
    client->data = c;
    uv_timer_init(pd_worker_uv(w), &c->timer);
    c->timer.data = c;
    c->pending = 2;
    c->next = pw->conns;
    if (pw->conns)
        pw->conns->prev = c;
    pw->conns = c;
    c->state = PX_HEAD;

    struct sockaddr_storage ss;
    int sl = (int)sizeof ss;
    snprintf(c->peer, sizeof c->peer, "?");
    if (uv_tcp_getpeername(client, (struct sockaddr *)&ss, &sl) == 0) {
        char a[INET6_ADDRSTRLEN] = "";
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, a, sizeof a);
            snprintf(c->peer, sizeof c->peer, "%s:%u", a,
                     (unsigned)ntohs(((struct sockaddr_in *)&ss)->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, a, sizeof a);
            snprintf(c->peer, sizeof c->peer, "[%s]:%u", a,
                     (unsigned)ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
        }
    }
    uv_tcp_nodelay(client, 1);
    struct pd_gw_policy *p = pd_gateway_policy(gw);
    c->lim = *pd_gw_policy_limits(p);
    pd_gw_policy_unref(p);
    c->in_cap = (size_t)c->lim.max_head + PX_READ_SIZE; /* allocated at the first byte */
    size_t n = atomic_fetch_add(&gw->nconns, 1) + 1;
    c->counted = true;
    if (n > c->lim.max_connections) {
        atomic_fetch_sub(&gw->nconns, 1);
        c->counted = false;
        pd_log(PD_LOG_WARN, COMPONENT, "connection_refused", PD_LSTR("peer", c->peer),
               PD_LSTR("reason", "too many connections"),
               PD_LUINT("max_connections", c->lim.max_connections));
        send_and_close(c, 503, "too_many_connections",
                       "the gateway is at its connection limit (limits.max_connections)");
        return;
    }
    c->idle = true;
    px_arm(c, c->lim.header_timeout_ms);
    px_update(c);
}

void px_shutdown(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    struct px_worker *pw = state;
    pw->stopping = true;
    px_pool_close_all(pw);
    /* px_close unlinks nothing synchronously (that happens in the close callbacks). */
    for (struct proxy_conn *c = pw->conns; c; c = c->next)
        if ((c->state == PX_HEAD && c->in_len == 0) || c->state == PX_TUNNEL ||
            c->state == PX_TLS_HELLO)
            px_close(c);
}

void px_force_close(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    struct px_worker *pw = state;
    pw->stopping = true;
    px_pool_close_all(pw);
    for (struct proxy_conn *c = pw->conns; c; c = c->next)
        px_close(c);
}

void px_recheck(struct px_worker *pw, struct pd_gw_policy *p)
{
    for (struct proxy_conn *c = pw->conns; c; c = c->next) {
        bool ws = c->ws && c->state == PX_TUNNEL;
        if (!c->active || (!c->is_connect && !ws) ||
            (c->state != PX_TUNNEL && c->state != PX_CONNECT && c->state != PX_RESOLVE &&
             c->state != PX_TLS_HELLO))
            continue;
        /* An upgraded (WebSocket) connection is rechecked as its GET request, with the path
         * without its query string (what the connection kept). */
        struct pd_gw_request rq = {.host = c->is_addr ? NULL : c->host,
                                   .addr = c->is_addr ? &c->addr : NULL,
                                   .port = c->port,
                                   .is_connect = c->is_connect,
                                   .method = ws ? c->method : NULL,
                                   .path = ws ? c->path : NULL};
        struct pd_gw_decision d;
        bool peer = c->state == PX_TUNNEL;
        if (pd_gw_policy_recheck(p, &rq, peer ? &c->dialed : NULL, &d))
            continue;
        pd_log(PD_LOG_INFO, COMPONENT, "tunnel_closed", PD_LSTR("peer", c->peer),
               PD_LSTR("host", c->host), PD_LUINT("port", c->port), PD_LSTR("error", d.error),
               PD_LSTR("reason", d.reason), PD_LSTR("cause", "reload"));
        c->error = d.error;
        px_close(c);
    }
    pd_gw_policy_unref(p);
}

void px_worker_stop(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    struct px_worker *pw = state;
    px_pool_close_all(pw);
    if (pw->has_timer) {
        uv_timer_stop(&pw->budget_timer);
        uv_close((uv_handle_t *)&pw->budget_timer, NULL);
        pw->has_timer = false;
    }
}

void px_worker_fini(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    struct px_worker *pw = state;
    if (pw)
        px_dns_free(&pw->dns);
    free(pw);
}
