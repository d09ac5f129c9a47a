/*
 * relay.c - the response side of a plain-HTTP request (proxy.h): parse the upstream response head
 * (pd_http_parse_response), relay it minus hop-by-hop fields, then the body in its framing (the
 * original chunked bytes to HTTP/1.1 clients; the data only, then close, to HTTP/1.0 clients). A
 * 101 answering a requested upgrade (WebSocket) turns the connection into a tunnel; any other 101
 * is refused. A malformed response is a 502 when nothing was sent yet, else the connection closes.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "gateway/proxy.h"

#define COMPONENT "gateway"

/* ---------------------------------------------------------------- responses */

/* The response head for the client: HTTP/1.1, hop-by-hop fields removed, our framing fields. */
static char *rewrite_response(struct proxy_conn *c, const struct pd_http_response *r, bool interim,
                              bool close, size_t extra, size_t *len)
{
    size_t cap = r->head_len + 128 + extra; /* extra: room the caller fills after the head */
    char *o = malloc(cap);
    if (!o)
        return NULL;
    size_t at = (size_t)snprintf(o, cap, "HTTP/1.1 %d ", r->status);
    at = px_append(o, at, r->reason.p ? r->reason.p : "", r->reason.n);
    at = px_append(o, at, "\r\n", 2);
    for (size_t i = 0; i < r->nheaders; i++) {
        const struct pd_http_header *h = &r->headers[i];
        if (pd_http_is_hop_by_hop(h->name, r->conn_tokens, r->nconn_tokens))
            continue;
        at = px_append(o, at, h->name.p, h->name.n);
        at = px_append(o, at, ": ", 2);
        at = px_append(o, at, h->value.p ? h->value.p : "", h->value.n);
        at = px_append(o, at, "\r\n", 2);
    }
    if (!interim) {
        if (r->framing == PD_HTTP_BODY_CHUNKED && !c->dechunk)
            at = px_append(o, at, "Transfer-Encoding: chunked\r\n", 28);
        if (close)
            at = px_append(o, at, "Connection: close\r\n", 19);
        else if (c->version_minor == 0)
            at = px_append(o, at, "Connection: keep-alive\r\n", 24);
    }
    at = px_append(o, at, "\r\n", 2);
    *len = at;
    return o;
}

static void bad_upstream(struct proxy_conn *c, const char *why)
{
    if (c->committed) {
        pd_log(PD_LOG_INFO, COMPONENT, "bad_upstream_response", PD_LSTR("host", c->host),
               PD_LSTR("reason", why));
        c->error = "bad_upstream_response";
        px_close(c);
        return;
    }
    char r[PD_GW_REASON_MAX];
    px_reason(r, "the upstream %s sent a response the gateway refuses to relay: %s", c->up_text,
              why);
    px_deny(c, 502, "bad_upstream_response", r, NULL, 0, false);
}

/* Relay body bytes p[0..n) (owned buffer `own` or NULL to copy) to the client. */
/* An HTTP/1.0 client cannot read chunked coding: relay only the data, the end is our close. */
static void relay_dechunked(struct proxy_conn *c, char *own, const char *p, size_t n)
{
    struct pd_http_error perr;
    size_t off = 0;
    while (off < n && !c->resp_body.done) {
        size_t used = 0, dlen = 0;
        const char *data = NULL;
        enum pd_http_chunk_status st =
            pd_http_chunked_feed(&c->resp_body.ch, p + off, n - off, &used, &data, &dlen, &perr);
        if (st == PD_HTTP_CHUNK_ERROR) {
            free(own);
            bad_upstream(c, perr.reason);
            return;
        }
        off += used;
        if (st == PD_HTTP_CHUNK_DATA) {
            c->bytes_received += dlen;
            px_charge(c);
        }
        if (st == PD_HTTP_CHUNK_DATA && dlen > 0 &&
            !px_write_copy(c, (uv_stream_t *)c->tcp, data, dlen)) {
            free(own);
            return;
        }
        if (st == PD_HTTP_CHUNK_DONE)
            c->resp_body.done = true;
        if (st == PD_HTTP_CHUNK_NEED_MORE)
            break;
    }
    free(own);
    if (off < n)
        c->up_dirty = true;
    if (c->resp_body.done)
        px_finish_response(c);
}

static void relay_body(struct proxy_conn *c, char *own, const char *p, size_t n)
{
    if (c->dechunk) {
        relay_dechunked(c, own, p, n);
        return;
    }
    struct pd_http_error perr;
    long b = px_body_feed(&c->resp_body, p, n, &perr);
    if (b < 0) {
        free(own);
        bad_upstream(c, perr.reason);
        return;
    }
    if ((size_t)b < n)
        c->up_dirty = true; /* bytes after the response: the connection is not reusable */
    if (b > 0) {
        char *d = own;
        if (!d || p != own) {
            d = malloc((size_t)b);
            if (!d) {
                free(own);
                px_close(c);
                return;
            }
            memcpy(d, p, (size_t)b);
            free(own);
        }
        if (!px_to_client(c, d, (size_t)b))
            return;
    } else {
        free(own);
    }
    if (c->resp_body.done)
        px_finish_response(c);
}

/* 101 Switching Protocols to a requested upgrade: relay the head (with the Upgrade and Connection
 * fields that hop-by-hop removal took out), then bytes both ways like a CONNECT tunnel. */
static void upgrade_to_tunnel(struct proxy_conn *c, const struct pd_http_response *rs, size_t hlen)
{
    const struct pd_http_header *up = pd_http_header_find(rs->headers, rs->nheaders, "Upgrade");
    if (!up || up->value.n == 0) {
        bad_upstream(c, "101 without an Upgrade field");
        return;
    }
    size_t len;
    char *h = rewrite_response(c, rs, true, false, 0, &len);
    char *full = h ? malloc(len + up->value.n + 64) : NULL;
    if (!full) {
        free(h);
        px_close(c);
        return;
    }
    size_t at = px_append(full, 0, h, len - 2); /* without the final CRLF */
    free(h);
    at = px_append(full, at, "Upgrade: ", 9);
    at = px_append(full, at, up->value.p, up->value.n);
    at = px_append(full, at, "\r\nConnection: upgrade\r\n\r\n", 25);
    c->status = 101;
    c->committed = c->resp_started = true;
    if (!px_to_client(c, full, at))
        return;
    size_t rest = c->rbuf_len - hlen;
    if (rest > 0 && !px_write_copy(c, (uv_stream_t *)c->tcp, c->rbuf + hlen, rest))
        return;
    c->bytes_received += rest;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rbuf_len = c->rbuf_cap = 0;
    c->state = PX_TUNNEL;
    c->tunnel_counted = true;
    pd_metric_gauge_inc(GW(c)->m_tunnels);
    px_arm(c, c->lim.tunnel_idle_timeout_ms);
    if (c->in_len > 0) { /* frames the client sent before the 101 */
        char *d = malloc(c->in_len);
        if (!d) {
            px_close(c);
            return;
        }
        memcpy(d, c->in, c->in_len);
        size_t n = c->in_len;
        c->in_len = 0;
        if (!px_to_up(c, d, n))
            return;
    }
    px_in_release(c);
    px_charge(c);
}

/* Parse the response head(s) in c->rbuf. */
static void parse_response(struct proxy_conn *c)
{
    while (c->rbuf_len > 0) {
        struct pd_http_limits lim = {
            .max_head = PX_RESP_HEAD_MAX, .max_target = 8192, .max_headers = PD_HTTP_MAX_HEADERS};
        struct pd_http_error perr;
        long r = pd_http_parse_response(c->rbuf, c->rbuf_len, &lim, c->method_id, &c->resp, &perr);
        if (r == 0)
            return;
        if (r < 0) {
            bad_upstream(c, perr.reason);
            return;
        }
        const struct pd_http_response *rs = &c->resp;
        if (rs->status == 101 && c->ws) {
            upgrade_to_tunnel(c, rs, (size_t)r);
            return;
        }
        if (rs->status == 101 || rs->framing == PD_HTTP_BODY_TUNNEL) {
            bad_upstream(c, "a protocol upgrade (101) the client did not ask for");
            return;
        }
        if (rs->status < 200) {
            size_t len;
            char *h = rewrite_response(c, rs, true, false, 0, &len);
            if (!h || !px_to_client(c, h, len))
                return;
            memmove(c->rbuf, c->rbuf + r, c->rbuf_len - (size_t)r);
            c->rbuf_len -= (size_t)r;
            continue;
        }
        if (!c->req_body.done)
            c->close_after = true; /* answered before the whole body: the rest is not read */
        c->dechunk = rs->framing == PD_HTTP_BODY_CHUNKED && c->version_minor == 0;
        bool close = c->close_after || !c->keep_alive || rs->framing == PD_HTTP_BODY_CLOSE ||
                     c->dechunk || c->pw->stopping;
        px_body_init(&c->resp_body, rs->framing, rs->content_length, true);
        /* The body bytes that came with the head go out in the same write as the head. */
        size_t rest = c->rbuf_len - (size_t)r, with = 0;
        if (rest > 0 && !c->resp_body.done && !c->dechunk) {
            long b = px_body_feed(&c->resp_body, c->rbuf + r, rest, &perr);
            if (b < 0) {
                bad_upstream(c, perr.reason);
                return;
            }
            with = (size_t)b;
        }
        size_t len;
        char *h = rewrite_response(c, rs, false, close, with, &len);
        if (!h) {
            px_close(c);
            return;
        }
        memcpy(h + len, c->rbuf + r, with);
        c->status = rs->status;
        c->committed = c->resp_started = true;
        c->state = PX_RELAY;
        char *rb = c->rbuf;
        c->rbuf = NULL;
        c->rbuf_len = c->rbuf_cap = 0;
        if (!px_to_client(c, h, len + with)) {
            free(rb);
            return;
        }
        if (c->dechunk && rest > 0) {
            relay_body(c, NULL, rb + r, rest);
            free(rb);
            return;
        }
        free(rb);
        if (c->resp_body.done) {
            if (rest > with)
                c->up_dirty = true; /* bytes after the response: the connection is not reusable */
            px_finish_response(c);
        }
        return;
    }
}

void px_up_eof(struct proxy_conn *c, int code)
{
    c->up_eof = true;
    switch (c->state) {
    case PX_TUNNEL:
        if (c->client_eof || code != UV_EOF) {
            px_close(c);
            return;
        }
        px_shutdown_stream(c, (uv_stream_t *)c->tcp);
        return;
    case PX_RELAY:
        if (c->resp_body.framing == PD_HTTP_BODY_CLOSE && code == UV_EOF) {
            c->resp_body.done = true;
            px_finish_response(c);
        } else {
            c->error = "upstream_closed";
            px_close(c);
        }
        return;
    case PX_UPSTREAM_TLS:
    case PX_FORWARD:
    case PX_RESPONSE:
        if (c->reused && !c->committed && c->rbuf_len == 0) {
            px_retry_fresh(c); /* a pooled connection the upstream had closed meanwhile */
            return;
        }
        bad_upstream(c, "the connection closed before a complete response head");
        return;
    default:
        return;
    }
}

void px_up_data(struct proxy_conn *c, char *buf, size_t n)
{
    switch (c->state) {
    case PX_FORWARD:
    case PX_RESPONSE: {
        px_arm(c, c->lim.tunnel_idle_timeout_ms);
        if (!c->rbuf) { /* usually the whole head is in the first read: parse it in place */
            c->rbuf = buf;
            c->rbuf_len = c->rbuf_cap = n;
        } else {
            if (n > PX_RESP_HEAD_MAX + PX_READ_SIZE - c->rbuf_len) {
                free(buf);
                bad_upstream(c, "response head too large");
                return;
            }
            if (c->rbuf_len + n > c->rbuf_cap) {
                char *nb = realloc(c->rbuf, PX_RESP_HEAD_MAX + PX_READ_SIZE);
                if (!nb) {
                    free(buf);
                    px_close(c);
                    return;
                }
                c->rbuf = nb;
                c->rbuf_cap = PX_RESP_HEAD_MAX + PX_READ_SIZE;
            }
            memcpy(c->rbuf + c->rbuf_len, buf, n);
            c->rbuf_len += n;
            free(buf);
        }
        parse_response(c);
        break;
    }
    case PX_RELAY:
        px_arm(c, c->lim.tunnel_idle_timeout_ms);
        relay_body(c, buf, buf, n);
        break;
    case PX_TUNNEL:
        if (!px_to_client(c, buf, n))
            return;
        px_tunnel_bytes(c);
        if (c->budget_spent) {
            px_close(c);
            return;
        }
        break;
    default:
        free(buf);
        break;
    }
    px_update(c);
}

void px_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct px_upstream *up = s->data;
    struct proxy_conn *c = up->c;
    if (!c) { /* idle in the pool */
        px_pool_idle_read(up, nread, buf);
        return;
    }
    if (nread <= 0) {
        free(buf->base);
        if (nread == 0 || c->up != up)
            return;
        c->up_reading = false;
        px_up_eof(c, (int)nread);
        return;
    }
    if (c->ssl)
        px_tls_read(c, buf->base, (size_t)nread);
    else
        px_up_data(c, buf->base, (size_t)nread);
}
