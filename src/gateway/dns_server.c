/* dns_server.c - the DNS filter on UDP and TCP (see dns_server.h). */
#include "gateway/dns_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "gateway/dns_filter.h"
#include "gateway/proxy.h"

#define COMPONENT "dns"
#define TCP_WATERMARK (256u * 1024u) /* queued reply bytes that stop reading a TCP client */

struct pd_dns_server {
    struct pd_gateway *gw;
    struct pd_dns_guard *guard;
    struct pd_loop_service ops;
    int udp_fds[PD_DNS_MAX_LISTENERS];
    size_t nudp;
    struct pd_metric_family *m_queries; /* {decision, error} */
    struct pd_metric *m_duration;
    struct pd_metric *m_reply_dropped;
};

struct dns_conn;

struct dns_worker {
    struct pd_dns_server *s;
    struct pd_worker *w;
    uv_udp_t udp[PD_DNS_MAX_LISTENERS];
    size_t nudp; /* initialised handles (closed at shutdown) */
    bool udp_closed;
    struct dns_conn *conns;
    size_t nconns;
    uint8_t rbuf[65536]; /* UDP datagrams and TCP reads land here */
    uint8_t out[2 + 65535]; /* a response, after the TCP length prefix */
};

struct dns_conn {
    struct dns_conn *prev, *next;
    struct dns_worker *dw;
    uv_tcp_t *tcp;
    uv_timer_t timer;
    int pending; /* handles whose close callback is due */
    bool closing, reading;
    uint8_t *in;
    size_t in_len, in_cap;
    char peer[64];
};

struct tcp_wreq {
    uv_write_t req;
    struct dns_conn *c;
    uint8_t data[];
};

/* ---------------------------------------------------------------- one query */

static void format_peer(const struct sockaddr *sa, char *out, size_t cap)
{
    char a[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
        port = ntohs(s4->sin_port);
        snprintf(out, cap, "%s:%u", a, port);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
        port = ntohs(s6->sin6_port);
        snprintf(out, cap, "[%s]:%u", a, port);
    } else {
        snprintf(out, cap, "?");
    }
}

static const char *decision_name(enum pd_dnsf_decision d)
{
    switch (d) {
    case PD_DNSF_ALLOW:
        return "allow";
    case PD_DNSF_DENY:
        return "deny";
    case PD_DNSF_INVALID:
        return "invalid";
    default:
        return "drop";
    }
}

/* Decide q and leave the response in dw->out + 2; returns its length (0: send nothing). */
static size_t handle_query(struct dns_worker *dw, const uint8_t *q, size_t len, bool tcp,
                           const char *peer)
{
    struct pd_dns_server *s = dw->s;
    uint64_t t0 = uv_hrtime();
    struct pd_gw_policy *p = pd_gateway_policy(s->gw);
    struct pd_dnsf_result r;
    size_t n = pd_dnsf_answer(p, s->guard, q, len, tcp, (int64_t)time(NULL), dw->out + 2,
                              sizeof dw->out - 2, &r);
    uint64_t us = (uv_hrtime() - t0) / 1000;
    char tn[PD_DNS_TYPE_NAME_MAX], rn[PD_DNS_TYPE_NAME_MAX];
    const char *dn = decision_name(r.decision);
    pd_log(PD_LOG_INFO, COMPONENT, "dns", PD_LSTR("sandbox_id", pd_gw_policy_sandbox_id(p)),
           PD_LSTR("transport", tcp ? "tcp" : "udp"), PD_LSTR("peer", peer),
           PD_LSTR("name", r.qtype || r.name[0] ? r.name : NULL),
           PD_LSTR("type", r.qtype ? pd_dns_type_name(r.qtype, tn, sizeof tn) : NULL),
           PD_LSTR("decision", dn), PD_LSTR("error", r.error),
           PD_LSTR("reason", r.reason[0] ? r.reason : NULL), PD_LSTR("rule", r.rule),
           PD_LSTR("rcode", n ? pd_dns_rcode_name(r.rcode, rn, sizeof rn) : NULL),
           PD_LUINT("answers", r.answers), PD_LUINT("duration_us", us));
    pd_metric_inc(pd_metric_with(s->m_queries, dn, r.error ? r.error : "none"));
    pd_metric_observe(s->m_duration, (double)us / 1e6);
    pd_gw_policy_unref(p);
    return n;
}

/* ---------------------------------------------------------------- UDP */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dns_worker *dw = h->data;
    (void)suggested;
    buf->base = (char *)dw->rbuf;
    buf->len = sizeof dw->rbuf;
}

static void udp_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                     unsigned flags)
{
    struct dns_worker *dw = u->data;
    if (nread <= 0 || !addr || (flags & UV_UDP_PARTIAL))
        return; /* nothing, a read error (logged by nobody: UDP), or a truncated datagram */
    char peer[64];
    format_peer(addr, peer, sizeof peer);
    size_t n = handle_query(dw, (const uint8_t *)buf->base, (size_t)nread, false, peer);
    if (n == 0)
        return;
    uv_buf_t b = uv_buf_init((char *)dw->out + 2, (unsigned)n);
    if (uv_udp_try_send(u, &b, 1, addr) < 0)
        pd_metric_inc(dw->s->m_reply_dropped); /* the socket buffer is full: the client retries */
}

static void close_udp(struct dns_worker *dw)
{
    if (dw->udp_closed)
        return;
    dw->udp_closed = true;
    for (size_t i = 0; i < dw->nudp; i++)
        uv_close((uv_handle_t *)&dw->udp[i], NULL);
}

/* ---------------------------------------------------------------- TCP */

static void conn_unlink_free(struct dns_conn *c)
{
    struct dns_worker *dw = c->dw;
    if (c->prev)
        c->prev->next = c->next;
    else
        dw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    dw->nconns--;
    free(c->in);
    free(c);
    pd_worker_release(dw->w);
}

static void conn_handle_closed(uv_handle_t *h)
{
    struct dns_conn *c = h->data;
    if ((uv_handle_t *)c->tcp == h)
        free(h);
    if (--c->pending == 0)
        conn_unlink_free(c);
}

static void conn_close(struct dns_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
    uv_close((uv_handle_t *)c->tcp, conn_handle_closed);
}

static void conn_idle(uv_timer_t *t)
{
    conn_close(t->data);
}

static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

static void conn_resume(struct dns_conn *c)
{
    if (!c->closing && !c->reading &&
        uv_stream_get_write_queue_size((uv_stream_t *)c->tcp) < TCP_WATERMARK) {
        if (uv_read_start((uv_stream_t *)c->tcp, tcp_alloc, conn_read) == 0)
            c->reading = true;
    }
}

static void write_done(uv_write_t *req, int status)
{
    struct tcp_wreq *w = (struct tcp_wreq *)req;
    struct dns_conn *c = w->c;
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_resume(c);
}

/* Send the response in dw->out (n bytes after the prefix) with its length prefix. */
static bool conn_send(struct dns_conn *c, size_t n)
{
    uint8_t *o = c->dw->out;
    o[0] = (uint8_t)(n >> 8);
    o[1] = (uint8_t)n;
    size_t len = n + 2, off = 0;
    uv_buf_t b = uv_buf_init((char *)o, (unsigned)len);
    int r = uv_try_write((uv_stream_t *)c->tcp, &b, 1);
    if (r > 0)
        off = (size_t)r;
    if (off == len)
        return true;
    struct tcp_wreq *w = malloc(sizeof *w + (len - off));
    if (!w) {
        conn_close(c);
        return false;
    }
    w->c = c;
    memcpy(w->data, o + off, len - off);
    b = uv_buf_init((char *)w->data, (unsigned)(len - off));
    if (uv_write(&w->req, (uv_stream_t *)c->tcp, &b, 1, write_done) != 0) {
        free(w);
        conn_close(c);
        return false;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)c->tcp) >= TCP_WATERMARK && c->reading) {
        uv_read_stop((uv_stream_t *)c->tcp);
        c->reading = false;
    }
    return true;
}

static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dns_conn *c = h->data;
    (void)suggested;
    buf->base = (char *)c->dw->rbuf;
    buf->len = sizeof c->dw->rbuf;
}

static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct dns_conn *c = st->data;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        conn_close(c); /* EOF or an error: pipelined answers already went out */
        return;
    }
    size_t n = (size_t)nread;
    if (c->in_len + n > c->in_cap) {
        size_t cap = c->in_len + n;
        if (cap < 2 + 512)
            cap = 2 + 512;
        uint8_t *ni = realloc(c->in, cap);
        if (!ni) {
            conn_close(c);
            return;
        }
        c->in = ni;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, buf->base, n);
    c->in_len += n;
    size_t at = 0;
    while (c->in_len - at >= 2) {
        size_t mlen = (size_t)c->in[at] << 8 | c->in[at + 1];
        if (mlen < PD_DNS_HEADER_LEN) {
            pd_log(PD_LOG_INFO, COMPONENT, "dns_tcp_closed", PD_LSTR("peer", c->peer),
                   PD_LSTR("reason", "a length prefix below 12 bytes (the DNS header)"));
            conn_close(c);
            return;
        }
        if (c->in_len - at - 2 < mlen)
            break;
        size_t r = handle_query(c->dw, c->in + at + 2, mlen, true, c->peer);
        at += 2 + mlen;
        if (r > 0 && !conn_send(c, r))
            return;
        uv_timer_start(&c->timer, conn_idle, PD_DNS_TCP_IDLE_MS, 0);
    }
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
}

/* ---------------------------------------------------------------- service hooks */

static int svc_worker_init(struct pd_worker *w, void *svc, void **state, struct pd_err *err)
{
    struct pd_dns_server *s = svc;
    struct dns_worker *dw = calloc(1, sizeof *dw);
    if (!dw) {
        pd_err_set(err, "out of memory");
        return -1;
    }
    dw->s = s;
    dw->w = w;
    *state = dw;
    for (size_t i = 0; i < s->nudp; i++) {
        int fd = dup(s->udp_fds[i]);
        if (fd < 0) {
            pd_err_set(err, "dns: dup of a UDP socket: %s", strerror(errno));
            return -1;
        }
        uv_udp_t *u = &dw->udp[i];
        int rc = uv_udp_init(pd_worker_uv(w), u);
        if (rc == 0) {
            dw->nudp++;
            u->data = dw;
            rc = uv_udp_open(u, fd);
            if (rc != 0)
                close(fd);
            else
                rc = uv_udp_recv_start(u, udp_alloc, udp_recv);
        } else {
            close(fd);
        }
        if (rc != 0) {
            pd_err_set(err, "dns: UDP socket: %s", uv_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static void svc_accept(struct pd_worker *w, void *svc, void *state, uv_tcp_t *client,
                       size_t listener)
{
    (void)svc;
    (void)listener;
    struct dns_worker *dw = state;
    struct dns_conn *c = dw->nconns < PD_DNS_TCP_MAX_CONNS && !dw->udp_closed
                             ? calloc(1, sizeof *c)
                             : NULL;
    if (!c) {
        uv_close((uv_handle_t *)client, (uv_close_cb)free);
        return;
    }
    pd_worker_hold(w);
    c->dw = dw;
    c->tcp = client;
    client->data = c;
    c->timer.data = c;
    uv_timer_init(pd_worker_uv(w), &c->timer);
    c->pending = 2;
    c->next = dw->conns;
    if (dw->conns)
        dw->conns->prev = c;
    dw->conns = c;
    dw->nconns++;
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (uv_tcp_getpeername(client, (struct sockaddr *)&ss, &sl) == 0)
        format_peer((struct sockaddr *)&ss, c->peer, sizeof c->peer);
    uv_timer_start(&c->timer, conn_idle, PD_DNS_TCP_IDLE_MS, 0);
    conn_resume(c);
    if (!c->reading)
        conn_close(c);
}

static void svc_shutdown(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    struct dns_worker *dw = state;
    close_udp(dw);
    for (struct dns_conn *c = dw->conns; c; c = c->next)
        conn_close(c); /* answers are synchronous: nothing is in flight but queued bytes */
}

static void svc_worker_stop(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    close_udp(state);
}

static void svc_worker_fini(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    free(state);
}

/* ---------------------------------------------------------------- setup */

static int open_udp(const struct pd_listen_spec *spec, uint16_t port, struct pd_err *err)
{
    struct sockaddr_storage ss = spec->addr;
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        pd_err_set(err, "dns: UDP socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, spec->addrlen) != 0) {
        pd_err_set(err, "dns: cannot bind UDP port %u: %s", (unsigned)port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

struct pd_dns_server *pd_dns_server_new(struct pd_gateway *gw, struct pd_loop *loop,
                                        const struct pd_listen_spec *specs, size_t n,
                                        struct pd_metrics *reg, struct pd_err *err)
{
    if (n > PD_DNS_MAX_LISTENERS) {
        pd_err_set(err, "dns: at most %d listeners", PD_DNS_MAX_LISTENERS);
        return NULL;
    }
    struct pd_dns_server *s = calloc(1, sizeof *s);
    if (!s) {
        pd_err_set(err, "out of memory");
        return NULL;
    }
    s->gw = gw;
    static const char *const qlabels[] = {"decision", "error"};
    static const double buckets[] = {1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2};
    struct pd_metric_family *f;
    if (!(s->guard = pd_dns_guard_new(4096, err)) ||
        !(s->m_queries = pd_metrics_counter(reg, "paddock_dns_queries_total",
                                            "DNS queries by decision and refusal code", qlabels,
                                            2, err)) ||
        !(f = pd_metrics_histogram(reg, "paddock_dns_duration_seconds",
                                   "time to decide and build a DNS answer", NULL, 0, buckets,
                                   sizeof buckets / sizeof buckets[0], err)) ||
        !(s->m_duration = pd_metric_with(f)) ||
        !(f = pd_metrics_counter(reg, "paddock_dns_replies_dropped_total",
                                 "UDP replies the socket could not take", NULL, 0, err)) ||
        !(s->m_reply_dropped = pd_metric_with(f)))
        goto fail;
    s->ops = (struct pd_loop_service){
        .name = "dns",
        .worker_init = svc_worker_init,
        .accept = svc_accept,
        .shutdown = svc_shutdown,
        .force_close = svc_shutdown,
        .worker_stop = svc_worker_stop,
        .worker_fini = svc_worker_fini,
    };
    int sid = pd_loop_add_service(loop, &s->ops, s, err);
    if (sid < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        int li = pd_loop_add_listener(loop, &specs[i], sid, err);
        if (li < 0)
            goto fail;
        uint16_t port = pd_loop_listener_port(loop, (size_t)li);
        int fd = open_udp(&specs[i], port, err);
        if (fd < 0)
            goto fail;
        s->udp_fds[s->nudp++] = fd;
        pd_log(PD_LOG_INFO, COMPONENT, "dns_listening",
               PD_LSTR("addr", pd_loop_listener_addr(loop, (size_t)li)), PD_LUINT("port", port),
               PD_LSTR("transports", "udp+tcp"), PD_LUINT("listener", (unsigned)li));
    }
    return s;
fail:
    pd_dns_server_free(s);
    return NULL;
}

void pd_dns_server_free(struct pd_dns_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nudp; i++)
        close(s->udp_fds[i]);
    pd_dns_guard_free(s->guard);
    free(s);
}
