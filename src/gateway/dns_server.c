/* dns_server.c - the DNS filter on UDP and TCP (see dns_server.h): transports, the per-query path,
 * the service hooks and setup. Upstream lookups of mode forward are in dns_forward.c. */
#include "gateway/dns_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/random.h>
#include <sys/socket.h>

#include "core/log.h"
#include "gateway/dns_server_int.h"
#include "gateway/proxy.h"

#define COMPONENT "dns"
#define TCP_WATERMARK (256u * 1024u) /* queued reply bytes that stop reading a TCP client */

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

void dnss_log_query(struct dns_worker *dw, const struct pd_gw_policy *p,
                    const struct pd_dnsf_result *r, bool tcp, const char *peer, size_t n,
                    const char *source, const char *upstream, uint64_t t0)
{
    struct pd_dns_server *s = dw->s;
    uint64_t us = (uv_hrtime() - t0) / 1000;
    char tn[PD_DNS_TYPE_NAME_MAX], rn[PD_DNS_TYPE_NAME_MAX];
    const char *dn = decision_name(r->decision);
    pd_log(PD_LOG_INFO, COMPONENT, "dns", PD_LSTR("sandbox_id", pd_gw_policy_sandbox_id(p)),
           PD_LSTR("transport", tcp ? "tcp" : "udp"), PD_LSTR("peer", peer),
           PD_LSTR("name", r->qtype || r->name[0] ? r->name : NULL),
           PD_LSTR("type", r->qtype ? pd_dns_type_name(r->qtype, tn, sizeof tn) : NULL),
           PD_LSTR("decision", dn), PD_LSTR("error", r->error),
           PD_LSTR("reason", r->reason[0] ? r->reason : NULL), PD_LSTR("rule", r->rule),
           PD_LSTR("rcode", n ? pd_dns_rcode_name(r->rcode, rn, sizeof rn) : NULL),
           PD_LUINT("answers", r->answers), PD_LSTR("source", source),
           PD_LSTR("upstream", upstream), PD_LUINT("duration_us", us));
    pd_metric_inc(pd_metric_with(s->m_queries, dn, r->error ? r->error : "none"));
    pd_metric_observe(s->m_duration, (double)us / 1e6);
}

/* The worker's answer cache, emptied when the policy changed (what may be answered, and how,
 * may have changed with it). */
struct pd_dnsa *dnss_worker_cache(struct dns_worker *dw, const struct pd_gw_policy *p)
{
    const struct pd_gw_dns *d = pd_gw_policy_dns(p);
    if (d->cache_size == 0)
        return NULL;
    if (dw->cache && dw->cache_cap != d->cache_size) { /* resized by a reload */
        pd_dnsa_free(dw->cache);
        dw->cache = NULL;
    }
    if (!dw->cache) {
        struct pd_err err;
        if (!(dw->cache = pd_dnsa_new(d->cache_size, &err)))
            return NULL;
        dw->cache_cap = d->cache_size;
    } else if (dw->cache_serial != pd_gw_policy_serial(p)) {
        pd_dnsa_clear(dw->cache);
    }
    dw->cache_serial = pd_gw_policy_serial(p);
    return dw->cache;
}

/* Decide q. Returns the length of the response left in dw->out + 2 (0: nothing to send now: a
 * dropped message, or an upstream lookup that answers later). */
static size_t handle_query(struct dns_worker *dw, const uint8_t *q, size_t len,
                           const struct dns_client *cl)
{
    struct pd_dns_server *s = dw->s;
    uint64_t t0 = uv_hrtime();
    struct pd_gw_policy *p = pd_gateway_policy(s->gw);
    struct pd_dnsf_result r;
    size_t n = pd_dnsf_answer(p, s->guard, q, len, cl->tcp, (int64_t)time(NULL), dw->out + 2,
                              sizeof dw->out - 2, &r);
    const char *source = r.decision == PD_DNSF_ALLOW ? "local" : NULL;
    if (r.forward) {
        struct pd_dnsa *cache = dnss_worker_cache(dw, p);
        struct pd_dns_answer ans[PD_DNSF_MAX_ANSWERS];
        size_t na = 0;
        uint16_t rcode = 0;
        if (cache &&
            pd_dnsa_get(cache, r.name, strlen(r.name), r.qtype, uv_now(pd_worker_uv(dw->w)), &rcode,
                        ans, PD_DNSF_MAX_ANSWERS, &na)) {
            n = pd_dnsf_reply(q, len, cl->tcp, rcode, ans, na, dw->out + 2, sizeof dw->out - 2, &r);
            source = "cache";
        } else {
            if (!dnss_start_lookup(dw, p, &r, q, len, cl, t0)) {
                r.decision = PD_DNSF_INVALID;
                r.error = "upstream_failed";
                snprintf(r.reason, sizeof r.reason, "cannot query an upstream resolver");
                n = pd_dnsf_reply(q, len, cl->tcp, PD_DNS_RCODE_SERVFAIL, NULL, 0, dw->out + 2,
                                  sizeof dw->out - 2, &r);
                source = NULL;
            } else {
                pd_gw_policy_unref(p);
                return 0; /* logged when the answer comes */
            }
        }
    }
    dnss_log_query(dw, p, &r, cl->tcp, cl->peer, n, source, NULL, t0);
    pd_gw_policy_unref(p);
    return n;
}

/* ---------------------------------------------------------------- UDP */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dns_worker *dw = h->data;
    (void)suggested;
    if (dw->mbuf) {
        buf->base = (char *)dw->mbuf;
        buf->len = UDP_BATCH * UDP_SLOT;
    } else {
        buf->base = (char *)dw->rbuf;
        buf->len = sizeof dw->rbuf;
    }
}

/* Send the collected replies with one sendmmsg (what the socket does not take is dropped: UDP). */
static void udp_flush(struct dns_worker *dw)
{
    struct udp_batch *b = &dw->batch;
    if (b->n == 0)
        return;
    uv_os_fd_t fd;
    size_t sent = 0;
    if (!dw->udp_closed && uv_fileno((uv_handle_t *)&dw->udp[b->sock], &fd) == 0) {
        while (sent < b->n) {
            int r = sendmmsg(fd, b->msgs + sent, (unsigned)(b->n - sent), MSG_DONTWAIT);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            sent += (size_t)r;
        }
    }
    if (sent < b->n)
        pd_metric_add(dw->s->m_reply_dropped, b->n - sent);
    b->n = 0;
}

static void udp_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                     unsigned flags)
{
    struct dns_worker *dw = u->data;
    if (flags & UV_UDP_MMSG_FREE) { /* the end of a recvmmsg batch */
        udp_flush(dw);
        return;
    }
    if (nread <= 0 || !addr || (flags & UV_UDP_PARTIAL))
        return; /* nothing, a read error (logged by nobody: UDP), or a truncated datagram */
    char peer[64];
    format_peer(addr, peer, sizeof peer);
    size_t sock = (size_t)(u - dw->udp);
    struct dns_client cl = {.udp = sock, .addr = addr, .peer = peer};
    size_t n = handle_query(dw, (const uint8_t *)buf->base, (size_t)nread, &cl);
    if (n == 0)
        return;
    struct udp_batch *b = &dw->batch;
    if ((flags & UV_UDP_MMSG_CHUNK) && n <= sizeof b->data[0]) {
        if (b->n > 0 && (b->sock != sock || b->n == UDP_BATCH))
            udp_flush(dw);
        size_t i = b->n++;
        b->sock = sock;
        memcpy(b->data[i], dw->out + 2, n);
        size_t alen =
            addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        memcpy(&b->to[i], addr, alen);
        b->iov[i] = (struct iovec){.iov_base = b->data[i], .iov_len = n};
        b->msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &b->to[i],
                                                  .msg_namelen = (socklen_t)alen,
                                                  .msg_iov = &b->iov[i],
                                                  .msg_iovlen = 1}};
        return;
    }
    uv_buf_t ob = uv_buf_init((char *)dw->out + 2, (unsigned)n);
    if (uv_udp_try_send(u, &ob, 1, addr) < 0)
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
    dnss_forget_conn(c);
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
bool dnss_conn_send(struct dns_conn *c, size_t n)
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
        struct dns_client cl = {.tcp = true, .conn = c, .peer = c->peer};
        size_t r = handle_query(c->dw, c->in + at + 2, mlen, &cl);
        at += 2 + mlen;
        if (r > 0 && !dnss_conn_send(c, r))
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
    if (s->nudp > 0)
        dw->mbuf = malloc(UDP_BATCH * UDP_SLOT); /* NULL: one datagram per read */
    for (size_t i = 0; i < s->nudp; i++) {
        size_t k = i * s->nworkers + pd_worker_index(w);
        int fd = s->udp_fds[k];
        s->udp_fds[k] = -1; /* the handle owns it now (closed with it) */
        uv_udp_t *u = &dw->udp[i];
        int rc = uv_udp_init_ex(pd_worker_uv(w), u, AF_UNSPEC | UV_UDP_RECVMMSG);
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
    struct dns_conn *c =
        dw->nconns < PD_DNS_TCP_MAX_CONNS && !dw->udp_closed ? calloc(1, sizeof *c) : NULL;
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
    dnss_close_lookups(dw);
    for (struct dns_conn *c = dw->conns; c; c = c->next)
        conn_close(c); /* answers are synchronous: nothing is in flight but queued bytes */
}

static void svc_worker_stop(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    close_udp(state);
    dnss_close_lookups(state);
}

static void svc_worker_fini(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    struct dns_worker *dw = state;
    if (dw) {
        pd_dnsa_free(dw->cache);
        free(dw->mbuf);
    }
    free(dw);
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
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        pd_err_set(err, "dns: SO_REUSEPORT on a UDP socket: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&ss, spec->addrlen) != 0) {
        pd_err_set(err, "dns: cannot bind UDP port %u: %s", (unsigned)port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* An inherited UDP socket: a bound AF_INET/AF_INET6 datagram socket; made NONBLOCK + CLOEXEC. */
static int check_udp_fd(int fd, struct pd_err *err)
{
    int type = 0, domain = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_DGRAM ||
        (len = sizeof domain, getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) ||
        (domain != AF_INET && domain != AF_INET6)) {
        pd_err_set(err, "dns: fd %d is not an inherited UDP socket (AF_INET/AF_INET6, SOCK_DGRAM)",
                   fd);
        return -1;
    }
    struct sockaddr_storage ss;
    len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
        (ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                 : ((struct sockaddr_in6 *)&ss)->sin6_port) == 0) {
        pd_err_set(err, "dns: inherited UDP socket %d is not bound to a port", fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        pd_err_set(err, "dns: fcntl on inherited fd %d: %s", fd, strerror(errno));
        return -1;
    }
    return 0;
}

static void close_inherited(const struct pd_listen_spec *specs, const int *udp_fds, size_t from,
                            size_t n)
{
    for (size_t i = from; i < n; i++)
        if (specs[i].kind == PD_LISTEN_FD) {
            close(specs[i].fd);
            if (udp_fds && udp_fds[i] >= 0)
                close(udp_fds[i]);
        }
}

struct pd_dns_server *pd_dns_server_new(struct pd_gateway *gw, struct pd_loop *loop,
                                        const struct pd_listen_spec *specs, const int *udp_fds,
                                        size_t n, struct pd_metrics *reg, struct pd_err *err)
{
    size_t used = 0; /* specs[0..used) have been handed to the loop */
    if (n > PD_DNS_MAX_LISTENERS) {
        pd_err_set(err, "dns: at most %d listeners", PD_DNS_MAX_LISTENERS);
        close_inherited(specs, udp_fds, 0, n);
        return NULL;
    }
    struct pd_dns_server *s = calloc(1, sizeof *s);
    if (!s) {
        pd_err_set(err, "out of memory");
        close_inherited(specs, udp_fds, 0, n);
        return NULL;
    }
    s->gw = gw;
    static const char *const qlabels[] = {"decision", "error"};
    static const char *const ulabels[] = {"result"};
    static const double buckets[] = {1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2};
    struct pd_metric_family *f;
    if (!(s->guard = pd_dns_guard_new(4096, err)) ||
        !(s->m_queries =
              pd_metrics_counter(reg, "paddock_dns_queries_total",
                                 "DNS queries by decision and refusal code", qlabels, 2, err)) ||
        !(f = pd_metrics_histogram(reg, "paddock_dns_duration_seconds",
                                   "time to decide and build a DNS answer", NULL, 0, buckets,
                                   sizeof buckets / sizeof buckets[0], err)) ||
        !(s->m_duration = pd_metric_with(f)) ||
        !(f = pd_metrics_counter(reg, "paddock_dns_replies_dropped_total",
                                 "UDP replies the socket could not take", NULL, 0, err)) ||
        !(s->m_reply_dropped = pd_metric_with(f)) ||
        !(s->m_upstream = pd_metrics_counter(reg, "paddock_dns_upstream_responses_total",
                                             "upstream tries by result (answer, timeout, "
                                             "rcode, truncated, error)",
                                             ulabels, 1, err)))
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
    s->nworkers = pd_loop_worker_count(loop);
    if (!(s->udp_fds = malloc(n * s->nworkers * sizeof *s->udp_fds))) {
        pd_err_set(err, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n * s->nworkers; i++)
        s->udp_fds[i] = -1;
    for (size_t i = 0; i < n; i++) {
        bool inherited = specs[i].kind == PD_LISTEN_FD;
        int ufd = inherited && udp_fds ? udp_fds[i] : -1;
        used = i + 1;
        s->nudp++;
        if (inherited && ufd < 0) {
            pd_err_set(err, "dns: inherited TCP listener %d comes without its UDP socket",
                       specs[i].fd);
            close(specs[i].fd);
            goto fail;
        }
        if (inherited)
            s->udp_fds[i * s->nworkers] = ufd; /* owned by s from here */
        if (inherited && check_udp_fd(ufd, err) != 0) {
            close(specs[i].fd);
            goto fail;
        }
        int li = pd_loop_add_listener(loop, &specs[i], sid, err);
        if (li < 0)
            goto fail;
        uint16_t port = pd_loop_listener_port(loop, (size_t)li);
        for (unsigned w = inherited ? 1 : 0; w < s->nworkers; w++) {
            int fd = inherited ? fcntl(ufd, F_DUPFD_CLOEXEC, 3) : open_udp(&specs[i], port, err);
            if (fd < 0) {
                if (inherited)
                    pd_err_set(err, "dns: dup of the inherited UDP socket: %s", strerror(errno));
                goto fail;
            }
            s->udp_fds[i * s->nworkers + w] = fd;
        }
        pd_log(PD_LOG_INFO, COMPONENT, "dns_listening",
               PD_LSTR("addr", pd_loop_listener_addr(loop, (size_t)li)), PD_LUINT("port", port),
               PD_LSTR("transports", "udp+tcp"), PD_LUINT("listener", (unsigned)li));
    }
    return s;
fail:
    close_inherited(specs, udp_fds, used, n);
    pd_dns_server_free(s);
    return NULL;
}

void pd_dns_server_free(struct pd_dns_server *s)
{
    if (!s)
        return;
    for (size_t i = 0; s->udp_fds && i < s->nudp * s->nworkers; i++)
        if (s->udp_fds[i] >= 0)
            close(s->udp_fds[i]);
    free(s->udp_fds);
    pd_dns_guard_free(s->guard);
    free(s);
}
