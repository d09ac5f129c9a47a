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

#include <sys/random.h>
#include <sys/socket.h>

#include "core/log.h"
#include "gateway/dns_answers.h"
#include "gateway/dns_filter.h"
#include "gateway/proxy.h"

#define COMPONENT "dns"
#define TCP_WATERMARK (256u * 1024u) /* queued reply bytes that stop reading a TCP client */
#define UDP_BATCH 16 /* datagrams per recvmmsg / replies per sendmmsg */
#define UDP_SLOT (64u * 1024u) /* libuv's recvmmsg chunk size (UV__UDP_DGRAM_MAXSIZE) */

struct pd_dns_server {
    struct pd_gateway *gw;
    struct pd_dns_guard *guard;
    struct pd_loop_service ops;
    /* Per listener, one UDP socket per worker (SO_REUSEPORT: the kernel spreads clients over them
     * and wakes one worker per datagram; a socket shared by every worker woke them all). Index
     * listener * nworkers + worker; a worker takes its own at init (-1 then). */
    int *udp_fds;
    size_t nudp; /* listeners with UDP sockets */
    unsigned nworkers;
    struct pd_metric_family *m_queries; /* {decision, error} */
    struct pd_metric *m_duration;
    struct pd_metric *m_reply_dropped;
    struct pd_metric_family *m_upstream; /* {result} */
};

struct dns_conn;
struct dns_lookup;

struct dns_worker {
    struct pd_dns_server *s;
    struct pd_worker *w;
    uv_udp_t udp[PD_DNS_MAX_LISTENERS];
    size_t nudp; /* initialised handles (closed at shutdown) */
    bool udp_closed;
    struct dns_conn *conns;
    size_t nconns;
    struct dns_lookup *lookups; /* queries waiting for an upstream */
    size_t nlookups;
    struct pd_dnsa *cache; /* mode forward: answers by (name, type), this worker only */
    uint64_t cache_serial; /* the policy the cache's answers were given under */
    uint32_t cache_cap;
    uint8_t rbuf[65536]; /* TCP reads and upstream answers land here */
    uint8_t out[2 + 65535]; /* a response, after the TCP length prefix */
    /* UDP: recvmmsg lands up to UDP_BATCH datagrams in mbuf (64 KiB slots, libuv's layout; pages
     * are touched only where a datagram lands); their replies collect in the send batch and leave
     * with one sendmmsg when libuv reports the end of the batch. */
    uint8_t *mbuf;
    struct udp_batch {
        size_t n;
        size_t sock; /* the batch belongs to one socket (one recvmmsg) */
        struct mmsghdr msgs[UDP_BATCH];
        struct iovec iov[UDP_BATCH];
        struct sockaddr_storage to[UDP_BATCH];
        uint8_t data[UDP_BATCH][PD_DNSF_EDNS_SIZE];
    } batch;
};

struct dns_conn {
    struct dns_conn *prev, *next;
    struct dns_worker *dw;
    uv_tcp_t *tcp;
    uv_timer_t timer;
    int pending; /* handles whose close callback is due */
    bool closing, reading;
    size_t lookups; /* of this connection, in flight */
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

/* Who asked: where a later (forwarded) answer goes. */
struct dns_client {
    bool tcp;
    struct dns_conn *conn; /* TCP */
    size_t udp; /* UDP: index of the worker's socket */
    const struct sockaddr *addr; /* UDP */
    const char *peer;
};

static void log_query(struct dns_worker *dw, const struct pd_gw_policy *p,
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

static bool start_lookup(struct dns_worker *dw, struct pd_gw_policy *p,
                         const struct pd_dnsf_result *r, const uint8_t *q, size_t len,
                         const struct dns_client *cl, uint64_t t0);

/* The worker's answer cache, emptied when the policy changed (what may be answered, and how,
 * may have changed with it). */
static struct pd_dnsa *worker_cache(struct dns_worker *dw, const struct pd_gw_policy *p)
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
        struct pd_dnsa *cache = worker_cache(dw, p);
        struct pd_dns_answer ans[PD_DNSF_MAX_ANSWERS];
        size_t na = 0;
        uint16_t rcode = 0;
        if (cache && pd_dnsa_get(cache, r.name, strlen(r.name), r.qtype, uv_now(pd_worker_uv(dw->w)),
                                 &rcode, ans, PD_DNSF_MAX_ANSWERS, &na)) {
            n = pd_dnsf_reply(q, len, cl->tcp, rcode, ans, na, dw->out + 2, sizeof dw->out - 2,
                              &r);
            source = "cache";
        } else {
            if (!start_lookup(dw, p, &r, q, len, cl, t0)) {
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
    log_query(dw, p, &r, cl->tcp, cl->peer, n, source, NULL, t0);
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
        size_t alen = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                   : sizeof(struct sockaddr_in);
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

static void forget_conn(struct dns_conn *c);

static void conn_close(struct dns_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    forget_conn(c);
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
        struct dns_client cl = {.tcp = true, .conn = c, .peer = c->peer};
        size_t r = handle_query(c->dw, c->in + at + 2, mlen, &cl);
        at += 2 + mlen;
        if (r > 0 && !conn_send(c, r))
            return;
        uv_timer_start(&c->timer, conn_idle, PD_DNS_TCP_IDLE_MS, 0);
    }
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
}

/* ---------------------------------------------------------------- upstream lookups */

/*
 * One allowed query in mode forward that the cache could not answer. Each try is a fresh UDP socket
 * (an ephemeral port the kernel picks at random) connected to one upstream, a random query id and
 * our own question (the name as the policy saw it, canonical), EDNS 1232. An answer counts only if
 * it comes from that upstream (connected socket), carries the id and the same question; anything
 * else is ignored. An unusable answer or no answer within timeout_ms moves on to the next upstream;
 * after the last one the client gets SERVFAIL. The client's own query is kept to build its answer.
 */
struct dns_lookup {
    struct dns_lookup *prev, *next;
    struct dns_worker *dw;
    struct pd_gw_policy *p; /* reference: the decision and the dns settings of this query */
    uv_udp_t *sock; /* the current try's socket (each try has its own; freed when closed) */
    uv_timer_t timer;
    int handles; /* open handles; freed at 0 */
    bool finished;
    size_t upstream; /* index being tried */
    uint16_t id;
    uint8_t fwd[PD_DNS_NAME_WIRE_MAX + 64];
    size_t flen;
    struct pd_dnsf_result r; /* the decision (name, type, rule) */
    bool tcp;
    struct dns_conn *conn; /* TCP client; NULL once it closed */
    size_t udp;
    struct sockaddr_storage client;
    char peer[64];
    char up_text[PD_ADDR_STRLEN + 8];
    uint8_t *query;
    size_t qlen;
    uint64_t t0;
};

static void lookup_handle_closed(uv_handle_t *h)
{
    struct dns_lookup *l = h->data;
    if (h != (uv_handle_t *)&l->timer)
        free(h); /* a try's socket */
    if (--l->handles > 0)
        return;
    struct dns_worker *dw = l->dw;
    if (l->prev)
        l->prev->next = l->next;
    else
        dw->lookups = l->next;
    if (l->next)
        l->next->prev = l->prev;
    dw->nlookups--;
    pd_gw_policy_unref(l->p);
    free(l->query);
    free(l);
}

static void lookup_close_sock(struct dns_lookup *l)
{
    if (l->sock) {
        uv_close((uv_handle_t *)l->sock, lookup_handle_closed);
        l->sock = NULL;
    }
}

static bool conn_send(struct dns_conn *c, size_t n);

/* Answer the client (if it is still there), log, and close the lookup. */
static void lookup_finish(struct dns_lookup *l, uint16_t rcode, const struct pd_dns_answer *ans,
                          size_t n, const char *source)
{
    struct dns_worker *dw = l->dw;
    l->finished = true;
    uv_timer_stop(&l->timer);
    lookup_close_sock(l);
    uv_close((uv_handle_t *)&l->timer, lookup_handle_closed);
    size_t len = pd_dnsf_reply(l->query, l->qlen, l->tcp, rcode, ans, n, dw->out + 2,
                               sizeof dw->out - 2, &l->r);
    log_query(dw, l->p, &l->r, l->tcp, l->peer, len, source, l->up_text, l->t0);
    if (len == 0)
        return;
    if (l->tcp) {
        if (l->conn) {
            l->conn->lookups--;
            if (!l->conn->closing)
                conn_send(l->conn, len);
        }
        return;
    }
    if (dw->udp_closed)
        return;
    uv_buf_t b = uv_buf_init((char *)dw->out + 2, (unsigned)len);
    if (uv_udp_try_send(&dw->udp[l->udp], &b, 1, (const struct sockaddr *)&l->client) < 0)
        pd_metric_inc(dw->s->m_reply_dropped);
}

static void lookup_fail(struct dns_lookup *l, const char *why)
{
    l->r.decision = PD_DNSF_INVALID;
    l->r.error = "upstream_failed";
    snprintf(l->r.reason, sizeof l->r.reason, "no usable answer from the upstream resolvers: %s",
             why);
    lookup_finish(l, PD_DNS_RCODE_SERVFAIL, NULL, 0, NULL);
}

static bool lookup_try(struct dns_lookup *l);

static void lookup_next(struct dns_lookup *l, const char *why)
{
    pd_metric_inc(pd_metric_with(l->dw->s->m_upstream, why));
    lookup_close_sock(l);
    l->upstream++;
    const struct pd_gw_dns *d = pd_gw_policy_dns(l->p);
    while (l->upstream < d->nupstreams) {
        if (lookup_try(l))
            return;
        l->upstream++;
    }
    lookup_fail(l, why);
}

static void lookup_timeout(uv_timer_t *t)
{
    lookup_next(t->data, "timeout");
}

static void lookup_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dns_lookup *l = h->data;
    (void)suggested;
    buf->base = (char *)l->dw->rbuf;
    buf->len = sizeof l->dw->rbuf;
}

static void lookup_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    struct dns_lookup *l = u->data;
    if (l->finished || nread == 0)
        return;
    if (nread < 0) { /* e.g. ICMP port unreachable on the connected socket */
        lookup_next(l, "error");
        return;
    }
    (void)addr; /* connected: the kernel delivers only the upstream's datagrams */
    if (flags & UV_UDP_PARTIAL)
        return;
    struct pd_dns_msg resp, mine;
    struct pd_err err;
    if (pd_dns_parse_response((const uint8_t *)buf->base, (size_t)nread, &resp, &err) != PD_DNS_OK ||
        resp.hdr.id != l->id || pd_dns_parse_query(l->fwd, l->flen, &mine, &err) != PD_DNS_OK ||
        !pd_dns_same_question(&resp, &mine))
        return; /* not the answer to this query (or garbage): keep waiting */
    struct pd_dnsf_upstream_answer a;
    const char *why = NULL;
    if (!pd_dnsf_upstream(&resp, l->r.name, l->r.qtype, l->r.allow_private,
                          pd_gw_policy_dns(l->p), &a, &why)) {
        lookup_next(l, resp.hdr.tc ? "truncated" : "rcode");
        return;
    }
    pd_metric_inc(pd_metric_with(l->dw->s->m_upstream, "answer"));
    if (a.dropped > 0)
        snprintf(l->r.reason, sizeof l->r.reason,
                 "dropped %zu non-public address%s of a public name (rebinding protection; "
                 "allow_private on the rule permits them)",
                 a.dropped, a.dropped == 1 ? "" : "es");
    struct pd_dnsa *cache = worker_cache(l->dw, l->p);
    if (cache && a.ttl > 0)
        pd_dnsa_put(cache, l->r.name, strlen(l->r.name), l->r.qtype, a.rcode, a.ans, a.n, a.ttl,
                    uv_now(pd_worker_uv(l->dw->w)));
    lookup_finish(l, a.rcode, a.ans, a.n, "upstream");
}

/* Send the query to upstream l->upstream on a fresh socket. false: this upstream cannot be tried. */
static bool lookup_try(struct dns_lookup *l)
{
    const struct pd_gw_dns *d = pd_gw_policy_dns(l->p);
    const struct pd_gw_dns_upstream *up = &d->upstreams[l->upstream];
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    char t[PD_ADDR_STRLEN];
    pd_addr_format(&up->addr, t, sizeof t);
    snprintf(l->up_text, sizeof l->up_text, up->addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u", t,
             (unsigned)up->port);
    if (up->addr.family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(up->port);
        memcpy(&s4->sin_addr, up->addr.bytes, 4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(up->port);
        memcpy(&s6->sin6_addr, up->addr.bytes, 16);
    }
    uint8_t rnd[2] = {0, 0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return false;
    l->id = (uint16_t)(rnd[0] << 8 | rnd[1]);
    struct pd_err err;
    l->flen = pd_dns_build_query(l->id, l->r.name, strlen(l->r.name), l->r.qtype, PD_DNSF_EDNS_SIZE,
                                 l->fwd, sizeof l->fwd, &err);
    if (l->flen == 0)
        return false;
    uv_udp_t *sock = malloc(sizeof *sock);
    if (!sock)
        return false;
    if (uv_udp_init(pd_worker_uv(l->dw->w), sock) != 0) {
        free(sock);
        return false;
    }
    sock->data = l;
    l->sock = sock;
    l->handles++;
    uv_buf_t b = uv_buf_init((char *)l->fwd, (unsigned)l->flen);
    if (uv_udp_connect(sock, (const struct sockaddr *)&ss) != 0 ||
        uv_udp_recv_start(sock, lookup_alloc, lookup_recv) != 0 ||
        uv_udp_try_send(sock, &b, 1, NULL) < 0) {
        lookup_close_sock(l);
        return false;
    }
    uv_timer_start(&l->timer, lookup_timeout, d->timeout_ms, 0);
    return true;
}

#define MAX_LOOKUPS 1024 /* per worker; beyond it new misses get SERVFAIL at once */

static bool start_lookup(struct dns_worker *dw, struct pd_gw_policy *p,
                         const struct pd_dnsf_result *r, const uint8_t *q, size_t len,
                         const struct dns_client *cl, uint64_t t0)
{
    if (dw->nlookups >= MAX_LOOKUPS || dw->udp_closed)
        return false;
    struct dns_lookup *l = calloc(1, sizeof *l);
    uint8_t *copy = l ? malloc(len) : NULL;
    if (!copy) {
        free(l);
        return false;
    }
    memcpy(copy, q, len);
    l->dw = dw;
    l->p = pd_gw_policy_ref(p);
    l->r = *r;
    l->query = copy;
    l->qlen = len;
    l->tcp = cl->tcp;
    l->conn = cl->conn;
    l->udp = cl->udp;
    l->t0 = t0;
    snprintf(l->peer, sizeof l->peer, "%s", cl->peer);
    if (!cl->tcp)
        memcpy(&l->client, cl->addr,
               cl->addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                               : sizeof(struct sockaddr_in));
    uv_timer_init(pd_worker_uv(dw->w), &l->timer);
    l->timer.data = l;
    l->handles = 1;
    l->next = dw->lookups;
    if (dw->lookups)
        dw->lookups->prev = l;
    dw->lookups = l;
    dw->nlookups++;
    if (l->conn)
        l->conn->lookups++;
    const struct pd_gw_dns *d = pd_gw_policy_dns(p);
    for (l->upstream = 0; l->upstream < d->nupstreams; l->upstream++)
        if (lookup_try(l))
            return true;
    /* No upstream could even be tried: the caller answers SERVFAIL; drop the lookup quietly. */
    if (l->conn)
        l->conn->lookups--;
    l->finished = true;
    uv_close((uv_handle_t *)&l->timer, lookup_handle_closed);
    return false;
}

/* Shutdown: drop every pending lookup without answering. */
static void close_lookups(struct dns_worker *dw)
{
    for (struct dns_lookup *l = dw->lookups; l; l = l->next) {
        if (l->finished)
            continue;
        l->finished = true;
        uv_timer_stop(&l->timer);
        lookup_close_sock(l);
        uv_close((uv_handle_t *)&l->timer, lookup_handle_closed);
    }
}

/* A TCP client went away: its pending lookups finish without it. */
static void forget_conn(struct dns_conn *c)
{
    for (struct dns_lookup *l = c->dw->lookups; l && c->lookups > 0; l = l->next)
        if (l->conn == c) {
            l->conn = NULL;
            c->lookups--;
        }
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
    close_lookups(dw);
    for (struct dns_conn *c = dw->conns; c; c = c->next)
        conn_close(c); /* answers are synchronous: nothing is in flight but queued bytes */
}

static void svc_worker_stop(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    (void)svc;
    close_udp(state);
    close_lookups(state);
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
    static const char *const ulabels[] = {"result"};
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
        int li = pd_loop_add_listener(loop, &specs[i], sid, err);
        if (li < 0)
            goto fail;
        uint16_t port = pd_loop_listener_port(loop, (size_t)li);
        s->nudp++;
        for (unsigned w = 0; w < s->nworkers; w++) {
            int fd = open_udp(&specs[i], port, err);
            if (fd < 0)
                goto fail;
            s->udp_fds[i * s->nworkers + w] = fd;
        }
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
    for (size_t i = 0; s->udp_fds && i < s->nudp * s->nworkers; i++)
        if (s->udp_fds[i] >= 0)
            close(s->udp_fds[i]);
    free(s->udp_fds);
    pd_dns_guard_free(s->guard);
    free(s);
}
