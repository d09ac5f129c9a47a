/*
 * conn.c - the HTTP/1.1 connection state machine and the reply API (see server.h for the contract and
 * conn.h for the structures). server.c creates connections (svc_accept) and drives shutdown.
 *
 * One `struct conn` per TCP connection, owned by the worker that accepted it. Its `state` says what it waits
 * for; the single per-connection timer always carries the timeout of the current state (table at enum
 * conn_state in conn.h). All transitions go through the functions named enter_*() or pd_http_conn_close().
 */
#include "http/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

static void process_head(struct conn *c);
static int respond(struct conn *c, int status, const char *ctype, char *body, size_t len, bool must_close);


/* ---------------------------------------------------------------- timers and reading */

static void on_timer(uv_timer_t *t);

void pd_http_conn_timer_arm(struct conn *c, unsigned ms)
{
    uv_timer_stop(&c->timer);
    if (ms)
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = h->data;
    if (c->state == CS_LINGER || c->state == CS_CLOSED || !c->in) {
        buf->base = c->hw->discard;
        buf->len = sizeof c->hw->discard;
    } else if (c->state == CS_BODY && c->preq.framing == PD_HTTP_BODY_LENGTH) {
        /* Exactly the rest of the body: pipelined bytes stay in the kernel until we want them. */
        buf->base = c->body + c->body_len;
        buf->len = (size_t)c->preq.content_length - c->body_len;
    } else {
        buf->base = c->in + c->in_len;
        buf->len = c->in_cap - c->in_len;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void pd_http_conn_read_on(struct conn *c)
{
    if (!c->reading && c->state != CS_CLOSED && !c->peer_eof) {
        if (uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    }
}

static void read_off(struct conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)c->tcp);
        c->reading = false;
    }
}

/* ---------------------------------------------------------------- closing */

static void conn_free(struct conn *c)
{
    struct http_worker *hw = c->hw;
    if (c->prev)
        c->prev->next = c->next;
    else
        hw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->counted)
        atomic_fetch_sub(&hw->srv->nconns, 1);
    free(c->in);
    free(c->scratch);
    free(c->body);
    free(c->whead);
    free(c->wbody);
    struct pd_worker *w = hw->w;
    free(c);
    pd_worker_release(w);
}

static void on_tcp_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    free(h);
    c->tcp = NULL;
    if (--c->open_handles == 0)
        conn_free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->open_handles == 0)
        conn_free(c);
}

static void abort_handler(struct conn *c)
{
    struct pd_http_ctx *ctx = &c->ctx;
    if (c->state == CS_HANDLER && c->have_req && !ctx->replied && !ctx->aborted) {
        ctx->aborted = true;
        if (ctx->abort_fn)
            ctx->abort_fn(ctx, ctx->abort_arg);
    }
}

void pd_http_conn_close(struct conn *c)
{
    if (c->state == CS_CLOSED)
        return;
    abort_handler(c);
    c->state = CS_CLOSED;
    read_off(c);
    uv_timer_stop(&c->timer);
    /* Pending writes/shutdown get UV_ECANCELED callbacks before the close callback; `c` is still valid then. */
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    uv_close((uv_handle_t *)c->tcp, on_tcp_closed);
}

static void on_shutdown_done(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0 && c->state != CS_CLOSED)
        pd_http_conn_close(c);
}

/* Final response sent: half-close and discard input until EOF, so the peer reads our response rather than a
 * reset caused by its unread request bytes. */
static void enter_linger(struct conn *c)
{
    c->state = CS_LINGER;
    c->linger_bytes = 0;
    pd_http_conn_timer_arm(c, ccfg(c)->linger_ms);
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)c->tcp, on_shutdown_done) != 0 || c->peer_eof) {
        pd_http_conn_close(c);
        return;
    }
    pd_http_conn_read_on(c);
}

/* ---------------------------------------------------------------- request lifecycle */

static void reset_request(struct conn *c)
{
    c->have_req = false;
    free(c->body);
    c->body = NULL;
    c->body_len = c->body_cap = 0;
    memset(&c->ctx, 0, offsetof(struct pd_http_ctx, extra));
    c->ctx.c = c;
    c->ctx.extra_len = 0;
}

static void enter_idle_or_head(struct conn *c)
{
    /* Drop the finished request's bytes; keep what the client already sent of the next one. */
    if (c->req_end > 0) {
        memmove(c->in, c->in + c->req_end, c->in_len - c->req_end);
        c->in_len -= c->req_end;
        c->req_end = 0;
    }
    c->scan_from = 0;
    reset_request(c);
    if (c->in_len == 0) {
        if (c->peer_eof) {
            pd_http_conn_close(c);
            return;
        }
        c->state = CS_IDLE;
        pd_http_conn_timer_arm(c, ccfg(c)->idle_timeout_ms);
        pd_http_conn_read_on(c);
        return;
    }
    c->state = CS_HEAD;
    pd_http_conn_timer_arm(c, ccfg(c)->header_timeout_ms);
    pd_http_conn_read_on(c);
    process_head(c);
}

static void log_request(struct conn *c, int status)
{
    if (!pd_log_enabled(PD_LOG_DEBUG))
        return;
    uint64_t us = (uv_hrtime() - c->t_start) / 1000;
    pd_log(PD_LOG_DEBUG, ccfg(c)->component, "request", PD_LSTRN("method", c->req.method.p, c->req.method.n),
           PD_LSTRN("path", c->req.path.p, c->req.path.n), PD_LINT("status", status),
           PD_LUINT("duration_us", us), PD_LUINT("worker", pd_worker_index(c->hw->w)));
}


static void count_response(struct conn *c, int status)
{
    const struct pd_http_server_series *series = &c->hw->srv->series;
    if (!series->m)
        return;
    if (!c->have_req) {
        pd_http_metrics_response(series, "NONE", status, -1);
        return;
    }
    enum pd_http_method m = c->preq.method;
    double seconds = (double)(uv_hrtime() - c->t_start) / 1e9;
    pd_http_metrics_response(series, m == PD_HTTP_M_UNKNOWN ? "OTHER" : pd_http_method_name(m), status, seconds);
}

void pd_http_conn_error_reply(struct conn *c, int status, const char *detail)
{
    size_t len = 0;
    char *b = pd_http_detail_json(detail, &len);
    respond(c, status, "application/json", b, b ? len : 0, true);
}

static void dispatch(struct conn *c)
{
    struct pd_http_server *srv = c->hw->srv;
    struct pd_http_ctx *ctx = &c->ctx;
    c->state = CS_HANDLER;
    uv_timer_stop(&c->timer);
    if (c->in_len == c->in_cap)
        read_off(c);
    if (c->body)
        c->body[c->body_len] = '\0';
    c->req.body = c->body ? c->body : "";
    c->req.body_len = c->body_len;
    ctx->head_only = c->req.method_id == PD_HTTP_M_HEAD;

    struct pd_route_match m;
    switch (pd_router_match(srv->router, c->req.method, c->req.path, &m, c->scratch, c->scratch_cap)) {
    case PD_ROUTE_FOUND:
        break;
    case PD_ROUTE_NOT_FOUND:
        pd_http_reply_error(ctx, 404, "Not Found");
        return;
    case PD_ROUTE_METHOD_NOT_ALLOWED:
        pd_http_add_header(ctx, "Allow", m.allow);
        pd_http_reply_error(ctx, 405, "Method Not Allowed");
        return;
    case PD_ROUTE_BAD_PATH:
        pd_http_reply_error(ctx, 400, "%s", m.error);
        return;
    }
    memcpy(c->params, m.params, m.nparams * sizeof m.params[0]);
    c->req.params = c->params;
    c->req.nparams = m.nparams;
    c->req.route = m.pattern;
    m.handler(ctx, &c->req, m.user);
    /* A handler that neither replied nor was aborted (client gone) replies later, on this loop. */
    if (c->state == CS_HANDLER && !ctx->replied && !ctx->aborted)
        ctx->deferred = true;
}

static void on_continue_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0 && c->state != CS_CLOSED)
        pd_http_conn_close(c);
}

static bool body_append(struct conn *c, const char *data, size_t n)
{
    size_t need = c->body_len + n + 1;
    if (need > c->body_cap) {
        size_t nc = c->body_cap ? c->body_cap * 2 : 4096;
        if (nc < need)
            nc = need;
        if (nc > ccfg(c)->max_body + 1)
            nc = ccfg(c)->max_body + 1;
        char *nb = realloc(c->body, nc);
        if (!nb)
            return false;
        c->body = nb;
        c->body_cap = nc;
    }
    memcpy(c->body + c->body_len, data, n);
    c->body_len += n;
    return true;
}

static void too_large(struct conn *c)
{
    char msg[160];
    snprintf(msg, sizeof msg, "request body too large (at most %zu bytes)", ccfg(c)->max_body);
    pd_http_conn_error_reply(c, 413, msg);
}

/* Decode chunked bytes staged in `in` after the head. */
static void feed_chunked(struct conn *c)
{
    size_t head_len = c->preq.head_len;
    while (c->req_end < c->in_len) {
        size_t consumed = 0, dlen = 0;
        const char *data = NULL;
        struct pd_http_error err = {0};
        enum pd_http_chunk_status st = pd_http_chunked_feed(&c->chunked, c->in + c->req_end,
                                                            c->in_len - c->req_end, &consumed, &data, &dlen, &err);
        if (consumed > c->in_len - c->req_end)
            consumed = c->in_len - c->req_end; /* never trust a count past the input */
        c->req_end += consumed;
        if (st == PD_HTTP_CHUNK_ERROR) {
            pd_http_conn_error_reply(c, err.status >= 400 ? err.status : 400, err.reason ? err.reason : "bad chunked body");
            return;
        }
        if (st == PD_HTTP_CHUNK_DONE) {
            dispatch(c);
            return;
        }
        if (st == PD_HTTP_CHUNK_DATA && data && dlen) {
            if (dlen > ccfg(c)->max_body - c->body_len) {
                too_large(c);
                return;
            }
            if (!body_append(c, data, dlen)) {
                pd_http_conn_error_reply(c, 503, "out of memory");
                return;
            }
        }
        if (st == PD_HTTP_CHUNK_NEED_MORE || consumed == 0)
            break;
    }
    /* Decoded bytes now live in `body`: give their room in `in` back to the next reads. */
    size_t rest = c->in_len - c->req_end;
    memmove(c->in + head_len, c->in + c->req_end, rest);
    c->in_len = head_len + rest;
    c->req_end = head_len;
    if (c->in_len == c->in_cap)
        pd_http_conn_error_reply(c, 400, "chunk line too long");
}

static void begin_request(struct conn *c, size_t head_len)
{
    const struct pd_http_server_config *cfg = ccfg(c);
    struct pd_http_request *pr = &c->preq;
    struct pd_http_req *rq = &c->req;
    c->have_req = true;
    c->t_start = uv_hrtime();
    memset(rq, 0, sizeof *rq);
    rq->method_id = pr->method;
    rq->method = pr->method_str;
    rq->target = pr->target;
    struct pd_slice path = pr->path;
    if (pr->form == PD_HTTP_FORM_ABSOLUTE && path.n == 0)
        path = PD_SLICE_LIT("/");
    const char *q = path.n ? memchr(path.p, '?', path.n) : NULL;
    if (q) {
        rq->query.p = q + 1;
        rq->query.n = (size_t)(path.p + path.n - q - 1);
        path.n = (size_t)(q - path.p);
    }
    rq->path = path;
    rq->version_minor = pr->version_minor;
    rq->headers = pr->headers;
    rq->nheaders = pr->nheaders;
    rq->peer_addr = c->peer;
    rq->peer_port = c->peer_port;
    rq->worker = pd_worker_index(c->hw->w);
    c->req_end = head_len;
    bool body_started = c->in_len > head_len;

    switch (pr->framing) {
    case PD_HTTP_BODY_NONE:
        dispatch(c);
        return;
    case PD_HTTP_BODY_LENGTH: {
        if (pr->content_length > cfg->max_body) {
            /* Refused before reading: no 100 Continue, and the unread body forces a close. */
            too_large(c);
            return;
        }
        size_t cl = (size_t)pr->content_length;
        c->body = malloc(cl + 1);
        if (!c->body) {
            pd_http_conn_error_reply(c, 503, "out of memory");
            return;
        }
        c->body_cap = cl + 1;
        size_t avail = c->in_len - head_len;
        size_t take = avail < cl ? avail : cl;
        memcpy(c->body, c->in + head_len, take);
        c->body_len = take;
        c->req_end += take;
        if (take == cl) {
            dispatch(c);
            return;
        }
        break;
    }
    case PD_HTTP_BODY_CHUNKED:
        pd_http_chunked_init(&c->chunked, false);
        break;
    default:
        pd_http_conn_error_reply(c, 400, "unsupported request body framing");
        return;
    }
    c->state = CS_BODY;
    pd_http_conn_timer_arm(c, cfg->body_timeout_ms);
    if (pr->expect_continue && pr->version_minor >= 1 && !body_started) {
        uv_buf_t b = uv_buf_init((char *)CONTINUE_100, (unsigned)(sizeof CONTINUE_100 - 1));
        c->creq.data = c;
        if (uv_write(&c->creq, (uv_stream_t *)c->tcp, &b, 1, on_continue_written) != 0) {
            pd_http_conn_close(c);
            return;
        }
    }
    pd_http_conn_read_on(c);
    if (pr->framing == PD_HTTP_BODY_CHUNKED)
        feed_chunked(c);
}

static void process_head(struct conn *c)
{
    const struct pd_http_server_config *cfg = ccfg(c);
    /* Re-parse only when a line may have ended (or the limit is reached): a head completes only at a '\n'
     * and the parser's refusals are visible there too, so a byte-at-a-time client costs one parse per line,
     * not one per byte. */
    bool trigger = c->in_len >= cfg->limits.max_head ||
                   (c->in_len > c->scan_from && memchr(c->in + c->scan_from, '\n', c->in_len - c->scan_from));
    c->scan_from = c->in_len;
    if (!trigger)
        return;
    struct pd_http_error err = {0};
    long r = pd_http_parse_request(c->in, c->in_len, &cfg->limits, &c->preq, &err);
    if (r == 0) {
        if (c->in_len >= cfg->limits.max_head || c->in_len == c->in_cap)
            pd_http_conn_error_reply(c, 431, "request head too large");
        else if (c->peer_eof)
            pd_http_conn_close(c);
        return;
    }
    if (r < 0) {
        int status = err.status >= 400 && err.status <= 599 ? err.status : 400;
        pd_log(PD_LOG_DEBUG, cfg->component, "bad_request", PD_LINT("status", status),
               PD_LSTR("reason", err.reason), PD_LUINT("offset", err.offset), PD_LSTR("peer", c->peer));
        pd_http_conn_error_reply(c, status, err.reason ? err.reason : "bad request");
        return;
    }
    begin_request(c, (size_t)r);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct conn *c = s->data;
    if (nread == 0 || c->state == CS_CLOSED)
        return;
    if (nread < 0) {
        read_off(c);
        c->peer_eof = true;
        /* EOF while writing: finish the response (buffered complete requests are still answered after it).
         * Anything else: the client is gone; a deferred handler is aborted by conn_close. */
        if (c->state == CS_WRITE && nread == UV_EOF)
            return;
        pd_http_conn_close(c);
        return;
    }
    size_t n = (size_t)nread;
    switch (c->state) {
    case CS_LINGER:
        c->linger_bytes += n;
        if (c->linger_bytes > LINGER_MAX_BYTES)
            pd_http_conn_close(c);
        return;
    case CS_BODY:
        if (c->preq.framing == PD_HTTP_BODY_LENGTH) {
            c->body_len += n;
            if (c->body_len == (size_t)c->preq.content_length)
                dispatch(c);
            return;
        }
        c->in_len += n;
        feed_chunked(c);
        return;
    case CS_IDLE:
        c->in_len += n;
        c->state = CS_HEAD;
        pd_http_conn_timer_arm(c, ccfg(c)->header_timeout_ms);
        process_head(c);
        return;
    case CS_HEAD:
        c->in_len += n;
        process_head(c);
        return;
    case CS_HANDLER:
    case CS_WRITE:
        c->in_len += n;
        if (c->in_len == c->in_cap)
            read_off(c);
        return;
    case CS_CLOSED:
        return;
    }
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    switch (c->state) {
    case CS_HEAD:
        if (c->in_len == 0) {
            pd_http_conn_close(c); /* nothing was sent: no response owed */
            return;
        }
        pd_log(PD_LOG_DEBUG, ccfg(c)->component, "header_timeout", PD_LSTR("peer", c->peer));
        pd_http_conn_error_reply(c, 408, "timed out waiting for the request head");
        return;
    case CS_BODY:
        pd_log(PD_LOG_DEBUG, ccfg(c)->component, "body_timeout", PD_LSTR("peer", c->peer));
        pd_http_conn_error_reply(c, 408, "timed out waiting for the request body");
        return;
    case CS_WRITE:
        pd_log(PD_LOG_DEBUG, ccfg(c)->component, "write_timeout", PD_LSTR("peer", c->peer));
        pd_http_conn_close(c);
        return;
    case CS_IDLE:
    case CS_LINGER:
        pd_http_conn_close(c);
        return;
    case CS_HANDLER:
    case CS_CLOSED:
        return;
    }
}

/* ---------------------------------------------------------------- writing */

static void on_written(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    free(c->whead);
    free(c->wbody);
    c->whead = c->wbody = NULL;
    if (c->state == CS_CLOSED)
        return;
    if (status < 0) {
        pd_http_conn_close(c);
        return;
    }
    uv_timer_stop(&c->timer);
    if (c->close_after || c->hw->stopping)
        enter_linger(c);
    else
        enter_idle_or_head(c);
}

static bool status_has_no_body(int status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/* Queue the response; `body` (malloc'd or NULL) is owned from here on. */
static int respond(struct conn *c, int status, const char *ctype, char *body, size_t len, bool must_close)
{
    if (c->state == CS_CLOSED || c->state == CS_WRITE || c->state == CS_LINGER) {
        free(body);
        return -1;
    }
    struct pd_http_ctx *ctx = &c->ctx;
    if (!body)
        len = 0;
    bool close = must_close || c->hw->stopping || !c->have_req || !c->preq.keep_alive || ctx->close;
    struct pd_http_head h = {
        .status = status,
        .content_type = status_has_no_body(status) ? NULL : ctype,
        .content_length = len,
        .close = close,
        .keep_alive_10 = !close && c->preq.version_minor == 0,
        .extra = c->have_req ? ctx->extra : NULL,
        .extra_len = c->have_req ? ctx->extra_len : 0,
        .now = time(NULL),
    };
    size_t cap = pd_http_head_size(&h);
    char *head = malloc(cap);
    size_t hl = head ? pd_http_format_head(&h, head, cap) : 0;
    if (hl == 0) {
        free(head);
        free(body);
        pd_http_conn_close(c);
        return -1;
    }
    if (ctx->head_only || status_has_no_body(status)) {
        free(body);
        body = NULL;
    }
    c->whead = head;
    c->wbody = body;
    c->close_after = close;
    if (c->have_req)
        log_request(c, status);
    count_response(c, status);
    uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)hl), uv_buf_init(body, (unsigned)len)};
    c->state = CS_WRITE;
    pd_http_conn_timer_arm(c, ccfg(c)->write_timeout_ms);
    if (c->in && c->in_len < c->in_cap)
        pd_http_conn_read_on(c); /* notice EOF/pipelined bytes meanwhile; bounded by `in` */
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)c->tcp, bufs, body && len ? 2 : 1, on_written) != 0) {
        pd_http_conn_close(c);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- reply API */

static bool ctx_usable(const struct pd_http_ctx *ctx)
{
    return ctx && !ctx->replied && !ctx->aborted && ctx->c->state == CS_HANDLER;
}

int pd_http_reply_take(struct pd_http_ctx *ctx, int status, const char *content_type, char *body, size_t len)
{
    if (!ctx_usable(ctx)) {
        free(body);
        return -1;
    }
    ctx->replied = true;
    if (status < 200 || status > 599 || (content_type && !pd_http_header_valid("Content-Type", content_type))) {
        pd_log(PD_LOG_ERROR, ccfg(ctx->c)->component, "invalid_reply", PD_LINT("status", status),
               PD_LSTRN("path", ctx->c->req.path.p, ctx->c->req.path.n));
        free(body);
        ctx->extra_len = 0;
        body = pd_http_detail_json("Internal Server Error", &len);
        respond(ctx->c, 500, "application/json", body, len, false);
        return -1;
    }
    return respond(ctx->c, status, content_type, body, len, false);
}

int pd_http_add_header(struct pd_http_ctx *ctx, const char *name, const char *value)
{
    static const char *const reserved[] = {"Content-Length", "Transfer-Encoding", "Connection", "Date",
                                           "Keep-Alive", "Upgrade", "Trailer"};
    if (!ctx_usable(ctx) || !pd_http_header_valid(name, value))
        return -1;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return -1;
    size_t nl = strlen(name), vl = strlen(value);
    if (nl + vl + 4 > sizeof ctx->extra - ctx->extra_len)
        return -1;
    char *p = ctx->extra + ctx->extra_len;
    memcpy(p, name, nl);
    memcpy(p + nl, ": ", 2);
    memcpy(p + nl + 2, value, vl);
    memcpy(p + nl + 2 + vl, "\r\n", 2);
    ctx->extra_len += nl + vl + 4;
    return 0;
}

void pd_http_set_close(struct pd_http_ctx *ctx)
{
    if (ctx)
        ctx->close = true;
}

void pd_http_on_abort(struct pd_http_ctx *ctx, void (*fn)(struct pd_http_ctx *ctx, void *arg), void *arg)
{
    if (!ctx)
        return;
    ctx->abort_fn = fn;
    ctx->abort_arg = arg;
}

const struct pd_http_req *pd_http_ctx_req(const struct pd_http_ctx *ctx)
{
    return &ctx->c->req;
}

uv_loop_t *pd_http_ctx_uv(struct pd_http_ctx *ctx)
{
    return pd_worker_uv(ctx->c->hw->w);
}

struct pd_worker *pd_http_ctx_worker(struct pd_http_ctx *ctx)
{
    return ctx->c->hw->w;
}

bool pd_http_ctx_stopping(const struct pd_http_ctx *ctx)
{
    return ctx->c->hw->stopping;
}
