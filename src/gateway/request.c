/*
 * request.c - the request side (proxy.h): parse a client head, canonicalise the destination, check
 * the Host header agrees, decide (policy, rate limit, budget), rewrite the head for upstream.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "gateway/proxy.h"
#include "gateway/tls_hello.h"

#define COMPONENT "gateway"

/* ---------------------------------------------------------------- requests */

static bool is_hop_or_host(const struct pd_http_request *rq, struct pd_slice name)
{
    return pd_slice_eq_nocase(name, "host") ||
           pd_http_is_hop_by_hop(name, rq->conn_tokens, rq->nconn_tokens);
}

/* The request head sent upstream: origin-form, HTTP/1.1, canonical Host, hop-by-hop removed. */
static char *rewrite_request(struct proxy_conn *c, const struct pd_http_request *rq, size_t *len)
{
    /* Where the request goes: the decision's upstream (an alias names the credential's domain, an
     * upgraded request port 443 over TLS), else the canonical target. */
    const struct pd_gw_credential *cr = c->d.upstream_tls ? c->d.credential : NULL;
    const char *host = c->d.upstream_tls && c->d.upstream_host ? c->d.upstream_host : c->host;
    uint16_t port = c->d.upstream_tls ? c->d.upstream_port : c->port;
    uint16_t dflt = c->d.upstream_tls ? 443 : 80;
    const char *cname = cr ? pd_gw_credential_header(cr) : NULL;
    size_t cap = rq->head_len + PD_HOST_MAX + 160;
    if (cr)
        cap += strlen(cname) + pd_gw_credential_render_len(cr) + 8;
    char *o = malloc(cap);
    if (!o)
        return NULL;
    size_t at = px_append(o, 0, rq->method_str.p, rq->method_str.n);
    at = px_append(o, at, " ", 1);
    if (rq->path.n == 0 || rq->path.p[0] != '/')
        at = px_append(o, at, "/", 1);
    at = px_append(o, at, rq->path.p ? rq->path.p : "", rq->path.n);
    at = px_append(o, at, " HTTP/1.1\r\nHost: ", 17);
    bool v6 = !c->d.upstream_tls && c->is_addr && c->addr.family == AF_INET6;
    if (v6)
        at = px_append(o, at, "[", 1);
    at = px_append(o, at, host, strlen(host));
    if (v6)
        at = px_append(o, at, "]", 1);
    if (port != dflt)
        at += (size_t)snprintf(o + at, cap - at, ":%u", (unsigned)port);
    at = px_append(o, at, "\r\n", 2);
    for (size_t i = 0; i < rq->nheaders; i++) {
        const struct pd_http_header *h = &rq->headers[i];
        if (is_hop_or_host(rq, h->name) || (cname && pd_slice_eq_nocase(h->name, cname)))
            continue; /* a value the agent sent in the credential's header is replaced */
        at = px_append(o, at, h->name.p, h->name.n);
        at = px_append(o, at, ": ", 2);
        at = px_append(o, at, h->value.p ? h->value.p : "", h->value.n);
        at = px_append(o, at, "\r\n", 2);
    }
    if (cr) {
        at = px_append(o, at, cname, strlen(cname));
        at = px_append(o, at, ": ", 2);
        /* The one copy of the secret: rendered in place, wiped with the head (px_tls_write and
         * px_end_request). */
        long n = pd_gw_credential_render(cr, o + at, cap - at);
        if (n < 0) {
            explicit_bzero(o, cap);
            free(o);
            return NULL;
        }
        at += (size_t)n;
        at = px_append(o, at, "\r\n", 2);
    }
    if (rq->framing == PD_HTTP_BODY_CHUNKED)
        at = px_append(o, at, "Transfer-Encoding: chunked\r\n", 28);
    if (c->ws) {
        at = px_append(o, at, "Upgrade: ", 9);
        at = px_append(o, at, rq->upgrade.p, rq->upgrade.n);
        at = px_append(o, at, "\r\nConnection: upgrade\r\n\r\n", 25);
    } else {
        at = px_append(o, at, "\r\n", 2); /* persistent: the connection may go to the pool */
    }
    *len = at;
    return o;
}

/* Canonicalise host[0..n) into c->host / c->addr. */
static bool canon_target(struct proxy_conn *c, struct pd_slice host, struct pd_err *err)
{
    size_t olen = 0;
    enum pd_host_kind k = pd_host_canon(host.p, host.n, c->host, &olen, &c->addr, err);
    if (k == PD_HOST_INVALID)
        return false;
    c->is_addr = k == PD_HOST_ADDR;
    return true;
}

/* Decide a parsed request (DECIDE). Returns true when it proceeds to RESOLVE/TLS_HELLO. The head
 * bytes are consumed by the caller afterwards. */
static bool decide_request(struct proxy_conn *c, const struct pd_http_request *rq)
{
    struct pd_gateway *gw = GW(c);
    bool has_body = rq->framing != PD_HTTP_BODY_NONE &&
                    !(rq->framing == PD_HTTP_BODY_LENGTH && rq->content_length == 0);
    bool keep = !has_body; /* a denial keeps the connection only with nothing left unread */
    c->keep_alive = rq->keep_alive;
    c->version_minor = rq->version_minor;
    /* A protocol upgrade (WebSocket): GET, "Connection: upgrade", an Upgrade value, no body. The
     * Upgrade field is then forwarded, and a 101 turns the connection into a tunnel. */
    c->ws = rq->method == PD_HTTP_M_GET && (rq->conn_flags & PD_HTTP_CONN_UPGRADE) &&
            rq->upgrade.n > 0 && rq->framing == PD_HTTP_BODY_NONE && rq->version_minor == 1;
    c->method_id = rq->method;
    if (rq->method_str.n >= sizeof c->method) {
        px_deny(c, 501, "method_not_supported", "request method too long", NULL, 0, false);
        return false;
    }
    memcpy(c->method, rq->method_str.p, rq->method_str.n);
    c->method[rq->method_str.n] = '\0';
    struct pd_err err = {{0}};
    char r[PD_GW_REASON_MAX];

    if (rq->method == PD_HTTP_M_CONNECT) {
        c->is_connect = true;
        keep = false;
        if (!canon_target(c, rq->host, &err)) {
            px_reason(r, "invalid CONNECT host: %s", err.msg);
            px_deny(c, 400, "invalid_target", r, NULL, 0, false);
            return false;
        }
        c->port = rq->port;
    } else {
        if (rq->form != PD_HTTP_FORM_ABSOLUTE) {
            px_deny(c, 400, "not_a_proxy_request",
                    "this is an HTTP proxy: send absolute-form requests, e.g. GET http://host/path "
                    "(and CONNECT host:port for https)",
                    NULL, 0, keep);
            return false;
        }
        if (!pd_slice_eq_nocase(rq->scheme, "http")) {
            if (pd_slice_eq_nocase(rq->scheme, "https"))
                px_deny(
                    c, 400, "https_requires_connect",
                    "https:// URLs are not proxied in absolute form: open a tunnel with CONNECT "
                    "host:443 (set the proxy for https as well)",
                    NULL, 0, keep);
            else
                px_deny(c, 400, "unsupported_scheme", "only http:// URLs are proxied", NULL, 0,
                        keep);
            return false;
        }
        if (!canon_target(c, rq->host, &err)) {
            px_reason(r, "invalid host in the request target: %s", err.msg);
            px_deny(c, 400, "invalid_target", r, NULL, 0, keep);
            return false;
        }
        c->port = rq->port ? rq->port : 80;
        if (rq->host_header.n > 0) {
            char hh[PD_HOST_MAX + 1];
            struct pd_addr ha;
            size_t hl = 0;
            uint16_t hport = rq->host_header_port ? rq->host_header_port : 80;
            enum pd_host_kind k =
                pd_host_canon(rq->host_header_host.p, rq->host_header_host.n, hh, &hl, &ha, &err);
            if (k == PD_HOST_INVALID || strcmp(hh, c->host) != 0 || hport != c->port) {
                px_reason(r, "the Host header (%s:%u) does not name the request target (%s:%u)",
                          k == PD_HOST_INVALID ? "invalid" : hh, (unsigned)hport, c->host,
                          (unsigned)c->port);
                px_deny(c, 400, "host_mismatch", r, NULL, 0, false);
                return false;
            }
        }
        /* The log path: without the query string. */
        size_t pl = 0;
        while (pl < rq->path.n && rq->path.p[pl] != '?' && pl < sizeof c->path - 1)
            pl++;
        if (pl == 0) {
            c->path[0] = '/';
            c->path[1] = '\0';
        } else {
            memcpy(c->path, rq->path.p, pl);
            c->path[pl] = '\0';
        }
    }

    /* Policy. */
    char *pathz = NULL;
    struct pd_gw_request q = {.host = c->is_addr ? NULL : c->host,
                              .addr = c->is_addr ? &c->addr : NULL,
                              .port = c->port,
                              .is_connect = c->is_connect,
                              .method = c->method};
    char path_small[1024]; /* the common case: no allocation on the per-request path */
    if (!c->is_connect) {
        pathz = rq->path.n + 2 <= sizeof path_small ? path_small : malloc(rq->path.n + 2);
        if (!pathz) {
            px_close(c);
            return false;
        }
        size_t at = 0;
        if (rq->path.n == 0 || rq->path.p[0] != '/')
            pathz[at++] = '/';
        memcpy(pathz + at, rq->path.p ? rq->path.p : "", rq->path.n);
        pathz[at + rq->path.n] = '\0';
        q.path = pathz;
    }
    pd_gw_decide(c->policy, &q, &c->d);
    if (pathz != path_small)
        free(pathz);
    if (!c->d.allowed) {
        px_deny(c, c->d.status ? c->d.status : 403, c->d.error, c->d.reason, c->d.rule, 0, keep);
        return false;
    }
    if (c->d.rate) {
        uint32_t ra = 0;
        enum pd_rl_verdict v =
            pd_ratelimit_take(gw->rl, c->d.rate->key, c->d.rate->requests_per_minute,
                              c->d.rate->burst_size, (int64_t)uv_now(pd_worker_uv(c->pw->w)), &ra);
        if (v != PD_RL_ALLOW) {
            px_reason(r, "rate limit '%s' (%u requests per minute, burst %u) reached (%s)",
                      c->d.rate->key, (unsigned)c->d.rate->requests_per_minute,
                      (unsigned)c->d.rate->burst_size, pd_rl_verdict_name(v));
            px_deny(c, v == PD_RL_NOMEM ? 503 : 429, "rate_limited", r, c->d.rule, ra ? ra : 1,
                    keep);
            return false;
        }
    }
    if (c->d.budget) {
        struct pd_budget_limits bl = {c->d.budget->bytes_sent_per_hour,
                                      c->d.budget->bytes_received_per_hour};
        struct pd_err why = {{0}};
        enum pd_budget_verdict v =
            pd_budget_check(gw->budget, c->d.budget->key, &bl, (int64_t)time(NULL), &why);
        if (v != PD_BUDGET_OK) {
            px_deny(c, 429, "budget_exhausted", why.msg[0] ? why.msg : "byte budget spent",
                    c->d.rule, 60, keep);
            return false;
        }
    }
    if (!c->is_connect) {
        c->up_head = rewrite_request(c, rq, &c->up_head_len);
        if (!c->up_head) {
            px_close(c);
            return false;
        }
        px_body_init(&c->req_body, rq->framing, rq->content_length, false);
    }
    return true;
}

static void process_head(struct proxy_conn *c)
{
    while (c->state == PX_HEAD && c->in_len > 0) {
        struct pd_http_limits lim = {.max_head = c->lim.max_head,
                                     .max_target = c->lim.max_head < 8192 ? c->lim.max_head : 8192,
                                     .max_headers = 100};
        struct pd_http_request rq;
        struct pd_http_error perr;
        long r = pd_http_parse_request(c->in, c->in_len, &lim, &rq, &perr);
        if (r == 0)
            return;
        px_begin_request(c);
        if (r < 0) {
            c->keep_alive = false;
            px_deny(c, perr.status, perr.status == 431 ? "head_too_large" : "bad_request",
                    perr.reason, NULL, 0, false);
            return;
        }
        c->state = PX_DECIDE;
        bool go = decide_request(c, &rq);
        if (c->state == PX_CLOSED)
            return;
        px_in_consume(c, (size_t)r);
        if (!go) {
            /* Denied: HEAD again (kept alive; the next pipelined head is parsed now) or CLOSING. */
            if (c->state == PX_HEAD) {
                c->idle = c->in_len == 0;
                px_arm(c, c->idle ? c->lim.idle_timeout_ms : c->lim.header_timeout_ms);
            }
            continue;
        }
        if (c->is_connect) {
            if (c->port == 443) {
                c->hello = malloc(PD_TLS_HELLO_WIRE_MAX);
                if (!c->hello) {
                    px_close(c);
                    return;
                }
                c->committed = true;
                c->status = 200;
                if (!px_write_copy(c, (uv_stream_t *)c->tcp, PX_ESTABLISHED,
                                   sizeof PX_ESTABLISHED - 1))
                    return;
                size_t k = c->in_len < PD_TLS_HELLO_WIRE_MAX ? c->in_len : PD_TLS_HELLO_WIRE_MAX;
                memcpy(c->hello, c->in, k);
                c->hello_len = k;
                px_in_consume(c, k);
                c->state = PX_TLS_HELLO;
                px_arm(c, c->lim.header_timeout_ms);
                if (c->hello_len > 0)
                    px_check_hello(c);
                return;
            }
        }
        px_start_resolve(c);
        return;
    }
}

void px_process_head(struct proxy_conn *c)
{
    process_head(c);
    if (c->state != PX_CLOSED)
        px_in_release(c);
}
