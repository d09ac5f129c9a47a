/*
 * upstream.c - resolve (upstream.hosts, else uv_getaddrinfo) only after the policy allowed the
 * name, check every address (pd_gw_decide_address), dial exactly a checked address, and the
 * ClientHello (SNI) check that comes before any dial for CONNECT to port 443 (proxy.h).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "gateway/proxy.h"

#define COMPONENT "gateway"
#include "gateway/tls_hello.h"

static void start_dial(struct proxy_conn *c);
static void on_connected(struct proxy_conn *c);

static void format_up_text(struct proxy_conn *c, const struct pd_addr *a, uint16_t port)
{
    char text[PD_ADDR_STRLEN];
    pd_addr_format(a, text, sizeof text);
    snprintf(c->up_text, sizeof c->up_text, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", text,
             (unsigned)port);
}

/* A pooled connection to (host, port) at one of the addresses this request's decision checked.
 * Only for plain upstreams and idempotent requests without a body (GET, HEAD, OPTIONS): a failure
 * before any response byte is then retried once on a fresh connection (RFC 9110 9.2.2). */
static bool from_pool(struct proxy_conn *c)
{
    bool idempotent = c->method_id == PD_HTTP_M_GET || c->method_id == PD_HTTP_M_HEAD ||
                      c->method_id == PD_HTTP_M_OPTIONS;
    if (c->is_connect || c->d.upstream_tls || c->ws || !c->req_body.done || !idempotent)
        return false;
    const char *host = c->d.upstream_host ? c->d.upstream_host : c->host;
    uint16_t port = c->d.upstream_port ? c->d.upstream_port : c->port;
    struct px_upstream *up = px_pool_take(c, host, port);
    if (!up)
        return false;
    c->up = up;
    c->pending++;
    c->reused = true;
    c->dialed = c->addrs[c->next_addr];
    format_up_text(c, &c->dialed, port);
    pd_metric_inc(GW(c)->m_pool_hits);
    c->state = PX_CONNECT;
    on_connected(c);
    px_update(c);
    return true;
}

void px_retry_fresh(struct proxy_conn *c)
{
    px_close_up(c);
    c->reused = false;
    c->up_eof = false;
    start_dial(c);
}

/* ---------------------------------------------------------------- resolve + dial */

static void addr_to_sockaddr(const struct pd_addr *a, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (a->family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        memcpy(&s4->sin_addr, a->bytes, 4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, a->bytes, 16);
    }
}

/* Keep the addresses the decision allows (each checked; duplicates dropped), then dial. */
static void use_addresses(struct proxy_conn *c, const struct pd_addr *list, size_t n)
{
    struct pd_gw_decision first_denial;
    bool denied = false;
    c->naddrs = 0;
    for (size_t i = 0; i < n && c->naddrs < PX_MAX_ADDRS; i++) {
        struct pd_gw_decision tmp = c->d;
        if (!pd_gw_decide_address(&tmp, &list[i])) {
            if (!denied)
                first_denial = tmp;
            denied = true;
            continue;
        }
        bool dup = false;
        for (size_t k = 0; k < c->naddrs; k++)
            dup = dup || pd_addr_equal(&c->addrs[k], &list[i]);
        if (!dup)
            c->addrs[c->naddrs++] = list[i];
    }
    if (c->naddrs == 0) {
        if (!denied) {
            px_deny(c, 502, "upstream_unreachable", "the name resolved to no usable address", NULL,
                    0, false);
            return;
        }
        c->d = first_denial;
        px_deny(c, first_denial.status ? first_denial.status : 403, first_denial.error,
                first_denial.reason, first_denial.rule, 0, false);
        return;
    }
    c->next_addr = 0;
    if (!from_pool(c))
        start_dial(c);
}

static void gai_done(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct proxy_conn *c = req->data;
    if (c->state != PX_RESOLVE) {
        uv_freeaddrinfo(res);
        px_drop_pending(c);
        return;
    }
    c->pending--;
    if (status < 0) {
        uv_freeaddrinfo(res);
        char r[PD_GW_REASON_MAX];
        px_reason(r, "cannot resolve %s: %s", c->d.upstream_host, uv_strerror(status));
        px_deny(c, 502, "upstream_unreachable", r, NULL, 0, false);
        return;
    }
    struct pd_addr list[PX_MAX_ADDRS];
    size_t n = 0;
    for (struct addrinfo *ai = res; ai && n < PX_MAX_ADDRS; ai = ai->ai_next) {
        memset(&list[n], 0, sizeof list[n]);
        if (ai->ai_family == AF_INET) {
            list[n].family = AF_INET;
            memcpy(list[n].bytes, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
            n++;
        } else if (ai->ai_family == AF_INET6) {
            list[n].family = AF_INET6;
            memcpy(list[n].bytes, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
            n++;
        }
    }
    uv_freeaddrinfo(res);
    px_dns_store(&c->pw->dns, c->d.upstream_host, list, n, uv_now(pd_worker_uv(c->pw->w)));
    use_addresses(c, list, n);
    px_update(c);
}

void px_start_resolve(struct proxy_conn *c)
{
    c->state = PX_RESOLVE;
    px_arm(c, c->connect_timeout_ms);
    if (c->is_addr) {
        struct pd_addr a;
        pd_addr_unmap(&c->addr, &a); /* dial the address the policy checked */
        c->addrs[0] = a;
        c->naddrs = 1;
        c->next_addr = 0;
        if (!from_pool(c))
            start_dial(c);
        return;
    }
    const struct pd_addr *static_addrs = NULL;
    size_t n = pd_gw_policy_upstream_hosts(c->policy, c->d.upstream_host, &static_addrs);
    if (n > 0) {
        use_addresses(c, static_addrs, n);
        return;
    }
    /* A recent answer for this name: its addresses are checked against this request's decision in
     * use_addresses() exactly like a fresh one (dns_cache.h). */
    const struct pd_addr *cached = px_dns_lookup(&c->pw->dns, c->d.upstream_host,
                                                 uv_now(pd_worker_uv(c->pw->w)), &n);
    if (cached) {
        use_addresses(c, cached, n);
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    int rc =
        uv_getaddrinfo(pd_worker_uv(c->pw->w), &c->gai, gai_done, c->d.upstream_host, NULL, &hints);
    if (rc < 0) {
        char r[PD_GW_REASON_MAX];
        px_reason(r, "cannot resolve %s: %s", c->d.upstream_host, uv_strerror(rc));
        px_deny(c, 502, "upstream_unreachable", r, NULL, 0, false);
        return;
    }
    c->pending++;
}

static void on_connected(struct proxy_conn *c)
{
    if (!c->reused) /* a pooled connection has had TCP_NODELAY since it was dialed: no syscall */
        uv_tcp_nodelay(&c->up->tcp, 1);
    if (c->is_connect) {
        if (!c->committed) {
            c->committed = true;
            c->status = 200;
            if (!px_write_copy(c, (uv_stream_t *)c->tcp, PX_ESTABLISHED, sizeof PX_ESTABLISHED - 1))
                return;
        }
        c->state = PX_TUNNEL;
        c->tunnel_counted = true;
        pd_metric_gauge_inc(GW(c)->m_tunnels);
        px_arm(c, c->lim.tunnel_idle_timeout_ms);
        if (c->hello_len > 0) {
            char *h = (char *)c->hello;
            size_t hl = c->hello_len;
            c->hello = NULL;
            c->hello_len = 0;
            if (!px_to_up(c, h, hl))
                return;
        }
        if (c->in_len > 0) {
            if (!px_write_copy(c, (uv_stream_t *)&c->up->tcp, c->in, c->in_len))
                return;
            c->bytes_sent += c->in_len;
            c->in_len = 0;
            px_charge(c);
        }
        px_in_release(c);
        return;
    }
    if (c->d.upstream_tls) {
        px_tls_start(c); /* px_send_request once the handshake is done */
        return;
    }
    px_send_request(c);
}

void px_send_request(struct proxy_conn *c)
{
    char *h = c->up_head;
    if (c->reused) { /* keep the head: a stale pooled connection means sending it again */
        h = malloc(c->up_head_len);
        if (!h) {
            px_close(c);
            return;
        }
        memcpy(h, c->up_head, c->up_head_len);
    } else {
        c->up_head = NULL;
    }
    c->state = PX_FORWARD;
    c->injected = c->d.credential != NULL && c->ssl != NULL;
    px_arm(c, c->lim.tunnel_idle_timeout_ms);
    if (!px_to_up(c, h, c->up_head_len))
        return;
    if (!px_forward_in_body(c))
        return;
    if (c->req_body.done)
        c->state = PX_RESPONSE;
    px_update(c);
}

static void connect_done(uv_connect_t *req, int status)
{
    struct px_upstream *up = req->data;
    struct proxy_conn *c = up->c;
    if (status == UV_ECANCELED || c->up != up || c->state != PX_CONNECT)
        return;
    if (status < 0) {
        pd_metric_inc(GW(c)->m_connect_failures);
        pd_log(PD_LOG_DEBUG, COMPONENT, "connect_failed", PD_LSTR("upstream", c->up_text),
               PD_LSTR("error", uv_strerror(status)));
        px_close_up(c);
        c->next_addr++;
        if (c->next_addr >= c->naddrs) {
            char r[PD_GW_REASON_MAX];
            px_reason(r, "cannot connect to %s (%s)", c->up_text, uv_strerror(status));
            px_deny(c, 502, "upstream_unreachable", r, NULL, 0, false);
            return;
        }
        start_dial(c);
        return;
    }
    up->connected = true;
    c->dialed = c->addrs[c->next_addr];
    on_connected(c);
    px_update(c);
}

static void start_dial(struct proxy_conn *c)
{
    c->state = PX_CONNECT;
    const struct pd_addr *a = &c->addrs[c->next_addr];
    uint16_t port = c->d.upstream_port ? c->d.upstream_port : c->port;
    format_up_text(c, a, port);
    struct px_upstream *up = calloc(1, sizeof *up);
    if (!up) {
        px_close(c);
        return;
    }
    up->c = c;
    if (uv_tcp_init(pd_worker_uv(c->pw->w), &up->tcp) != 0) {
        free(up);
        px_close(c);
        return;
    }
    up->tcp.data = up;
    up->creq.data = up;
    c->up = up;
    c->pending++;
    px_arm(c, c->connect_timeout_ms);
    struct sockaddr_storage ss;
    addr_to_sockaddr(a, port, &ss);
    int rc = uv_tcp_connect(&up->creq, &up->tcp, (const struct sockaddr *)&ss, connect_done);
    if (rc < 0) {
        pd_metric_inc(GW(c)->m_connect_failures);
        px_close_up(c);
        c->next_addr++;
        if (c->next_addr >= c->naddrs) {
            char r[PD_GW_REASON_MAX];
            px_reason(r, "cannot connect to %s (%s)", c->up_text, uv_strerror(rc));
            px_deny(c, 502, "upstream_unreachable", r, NULL, 0, false);
            return;
        }
        start_dial(c);
    }
}

/* ---------------------------------------------------------------- CONNECT 443: ClientHello */

void px_check_hello(struct proxy_conn *c)
{
    struct pd_tls_hello h;
    struct pd_err err = {{0}};
    enum pd_tls_hello_status st = pd_tls_hello_parse(c->hello, c->hello_len, &h, &err);
    const struct pd_gw_tls_settings *tls = pd_gw_policy_tls(c->policy);
    char r[PD_GW_REASON_MAX];
    switch (st) {
    case PD_TLS_HELLO_NEED_MORE:
        if (c->hello_len >= PD_TLS_HELLO_WIRE_MAX)
            px_deny(c, 400, "tls_hello_invalid", "ClientHello too large", NULL, 0, false);
        return;
    case PD_TLS_HELLO_NOT_TLS:
        px_deny(c, 400, "tls_hello_not_tls",
                "the first bytes in a tunnel to port 443 are not a TLS ClientHello", NULL, 0,
                false);
        return;
    case PD_TLS_HELLO_INVALID:
        px_reason(r, "invalid TLS ClientHello: %s", err.msg);
        px_deny(c, 400, "tls_hello_invalid", r, NULL, 0, false);
        return;
    case PD_TLS_HELLO_OK:
    default:
        break;
    }
    if (h.has_ech && !tls->allow_ech) {
        px_deny(c, 403, "tls_ech_not_allowed",
                "the ClientHello uses Encrypted Client Hello, which hides the real server name",
                NULL, 0, false);
        return;
    }
    if (!h.has_sni) {
        if (tls->require_sni) {
            px_deny(c, 403, "tls_sni_required", "the ClientHello carries no server name (SNI)",
                    NULL, 0, false);
            return;
        }
    } else if (c->is_addr || strcmp(h.sni, c->host) != 0) {
        px_reason(r, "the ClientHello names %s but the tunnel was opened to %s", h.sni, c->host);
        px_deny(c, 403, "tls_sni_mismatch", r, NULL, 0, false);
        return;
    }
    px_start_resolve(c);
}
