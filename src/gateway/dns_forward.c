/* dns_forward.c - the DNS filter's upstream lookups in mode forward (see dns_server.h and
 * docs/policy.md, section dns). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "gateway/dns_server_int.h"
#include "gateway/proxy.h"

/*
 * One allowed query in mode forward that the cache could not answer. Each try is a fresh UDP socket
 * (an ephemeral port the kernel picks at random) connected to one upstream, a random query id and
 * our own question (the name as the policy saw it, canonical), EDNS 1232. An answer counts only if
 * it comes from that upstream (connected socket), carries the id and the same question; anything
 * else is ignored. A truncated answer (TC) is asked again of the same upstream over TCP (RFC 7766),
 * with a fresh timeout_ms; over TCP a mismatched or truncated answer counts as unusable. An
 * unusable answer or no answer within timeout_ms moves on to the next upstream; after the last one
 * the client gets SERVFAIL. The client's own query is kept to build its answer.
 */
struct dns_lookup {
    struct dns_lookup *prev, *next;
    struct dns_worker *dw;
    struct pd_gw_policy *p; /* reference: the decision and the dns settings of this query */
    uv_udp_t *sock; /* the current try's socket (each try has its own; freed when closed) */
    uv_tcp_t *tsock; /* the same upstream over TCP after a truncated UDP answer, or NULL */
    uv_connect_t creq;
    uv_write_t wreq;
    uint8_t tpfx[2]; /* the TCP query's length prefix */
    uint8_t *tbuf; /* the TCP answer: 2-byte length + message (allocated at the first retry) */
    size_t tlen;
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
    char up_text[PD_ADDR_STRLEN + 12]; /* "[addr]:port", then "/tcp" after a truncated answer */
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
    free(l->tbuf);
    free(l);
}

static void lookup_close_sock(struct dns_lookup *l)
{
    if (l->sock) {
        uv_close((uv_handle_t *)l->sock, lookup_handle_closed);
        l->sock = NULL;
    }
    if (l->tsock) {
        uv_close((uv_handle_t *)l->tsock, lookup_handle_closed);
        l->tsock = NULL;
    }
}

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
    dnss_log_query(dw, l->p, &l->r, l->tcp, l->peer, len, source, l->up_text, l->t0);
    if (len == 0)
        return;
    if (l->tcp) {
        if (l->conn) {
            l->conn->lookups--;
            if (!l->conn->closing)
                dnss_conn_send(l->conn, len);
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

static bool lookup_try_tcp(struct dns_lookup *l);

/* An answer from the upstream being tried (over UDP, or over TCP after a truncated one). */
static void lookup_answer(struct dns_lookup *l, const uint8_t *msg, size_t len, bool via_tcp)
{
    struct pd_dns_msg resp, mine;
    struct pd_err err;
    if (pd_dns_parse_response(msg, len, &resp, &err) != PD_DNS_OK || resp.hdr.id != l->id ||
        pd_dns_parse_query(l->fwd, l->flen, &mine, &err) != PD_DNS_OK ||
        !pd_dns_same_question(&resp, &mine)) {
        if (via_tcp) /* the stream carried something else: this upstream is unusable */
            lookup_next(l, "error");
        return; /* UDP: not the answer to this query (or garbage): keep waiting */
    }
    if (resp.hdr.tc && !via_tcp) {
        pd_metric_inc(pd_metric_with(l->dw->s->m_upstream, "truncated"));
        if (!lookup_try_tcp(l))
            lookup_next(l, "error");
        return;
    }
    struct pd_dnsf_upstream_answer a;
    const char *why = NULL;
    if (!pd_dnsf_upstream(&resp, l->r.name, l->r.qtype, l->r.allow_private, pd_gw_policy_dns(l->p),
                          &a, &why)) {
        lookup_next(l, resp.hdr.tc ? "truncated" : "rcode");
        return;
    }
    pd_metric_inc(pd_metric_with(l->dw->s->m_upstream, "answer"));
    if (a.dropped > 0)
        snprintf(l->r.reason, sizeof l->r.reason,
                 "dropped %zu non-public address%s of a public name (rebinding protection; "
                 "allow_private on the rule permits them)",
                 a.dropped, a.dropped == 1 ? "" : "es");
    struct pd_dnsa *cache = dnss_worker_cache(l->dw, l->p);
    if (cache && a.ttl > 0)
        pd_dnsa_put(cache, l->r.name, strlen(l->r.name), l->r.qtype, a.rcode, a.ans, a.n, a.ttl,
                    uv_now(pd_worker_uv(l->dw->w)));
    lookup_finish(l, a.rcode, a.ans, a.n, "upstream");
}

static void lookup_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    struct dns_lookup *l = u->data;
    if (l->finished || nread == 0 || u != l->sock)
        return;
    if (nread < 0) { /* e.g. ICMP port unreachable on the connected socket */
        lookup_next(l, "error");
        return;
    }
    (void)addr; /* connected: the kernel delivers only the upstream's datagrams */
    if (flags & UV_UDP_PARTIAL)
        return;
    lookup_answer(l, (const uint8_t *)buf->base, (size_t)nread, false);
}

#define TBUF_SIZE (2 + 65535)

static void lookup_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dns_lookup *l = h->data;
    (void)suggested;
    buf->base = (char *)l->tbuf + l->tlen;
    buf->len = TBUF_SIZE - l->tlen;
}

static void lookup_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct dns_lookup *l = s->data;
    (void)buf;
    if (l->finished || s != (uv_stream_t *)l->tsock || nread == 0)
        return;
    if (nread < 0) { /* closed before a whole answer, or an error */
        lookup_next(l, "error");
        return;
    }
    l->tlen += (size_t)nread;
    if (l->tlen < 2)
        return;
    size_t need = 2 + ((size_t)l->tbuf[0] << 8 | l->tbuf[1]);
    if (l->tlen >= need)
        lookup_answer(l, l->tbuf + 2, need - 2, true);
    else if (l->tlen == TBUF_SIZE)
        lookup_next(l, "error"); /* unreachable: a length prefix cannot exceed the buffer */
}

static void lookup_tcp_written(uv_write_t *w, int status)
{
    struct dns_lookup *l = w->data;
    if (status < 0 && !l->finished && w->handle == (uv_stream_t *)l->tsock)
        lookup_next(l, "error");
}

static void lookup_tcp_connected(uv_connect_t *c, int status)
{
    struct dns_lookup *l = c->data;
    if (l->finished || c->handle != (uv_stream_t *)l->tsock)
        return; /* cancelled: the lookup moved on or ended */
    if (status < 0) {
        lookup_next(l, "error");
        return;
    }
    l->tpfx[0] = (uint8_t)(l->flen >> 8);
    l->tpfx[1] = (uint8_t)l->flen;
    uv_buf_t b[2] = {uv_buf_init((char *)l->tpfx, 2),
                     uv_buf_init((char *)l->fwd, (unsigned)l->flen)};
    l->wreq.data = l;
    if (uv_write(&l->wreq, (uv_stream_t *)l->tsock, b, 2, lookup_tcp_written) != 0 ||
        uv_read_start((uv_stream_t *)l->tsock, lookup_tcp_alloc, lookup_tcp_read) != 0)
        lookup_next(l, "error");
}

static void upstream_sockaddr(const struct pd_gw_dns_upstream *up, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (up->addr.family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(up->port);
        memcpy(&s4->sin_addr, up->addr.bytes, 4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(up->port);
        memcpy(&s6->sin6_addr, up->addr.bytes, 16);
    }
}

/* Ask the same upstream the same query over TCP (its UDP answer was truncated). false: cannot. */
static bool lookup_try_tcp(struct dns_lookup *l)
{
    const struct pd_gw_dns *d = pd_gw_policy_dns(l->p);
    const struct pd_gw_dns_upstream *up = &d->upstreams[l->upstream];
    lookup_close_sock(l);
    if (!l->tbuf && !(l->tbuf = malloc(TBUF_SIZE)))
        return false;
    l->tlen = 0;
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t)
        return false;
    if (uv_tcp_init(pd_worker_uv(l->dw->w), t) != 0) {
        free(t);
        return false;
    }
    t->data = l;
    l->tsock = t;
    l->handles++;
    struct sockaddr_storage ss;
    upstream_sockaddr(up, &ss);
    l->creq.data = l;
    if (uv_tcp_connect(&l->creq, t, (const struct sockaddr *)&ss, lookup_tcp_connected) != 0) {
        lookup_close_sock(l);
        return false;
    }
    size_t n = strlen(l->up_text);
    if (n + 5 < sizeof l->up_text)
        memcpy(l->up_text + n, "/tcp", 5);
    uv_timer_start(&l->timer, lookup_timeout, d->timeout_ms, 0);
    return true;
}

/* Send the query to upstream l->upstream on a fresh socket. false: this upstream cannot be tried.
 */
static bool lookup_try(struct dns_lookup *l)
{
    const struct pd_gw_dns *d = pd_gw_policy_dns(l->p);
    const struct pd_gw_dns_upstream *up = &d->upstreams[l->upstream];
    struct sockaddr_storage ss;
    upstream_sockaddr(up, &ss);
    char t[PD_ADDR_STRLEN];
    pd_addr_format(&up->addr, t, sizeof t);
    snprintf(l->up_text, sizeof l->up_text, up->addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u", t,
             (unsigned)up->port);
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

bool dnss_start_lookup(struct dns_worker *dw, struct pd_gw_policy *p,
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
void dnss_close_lookups(struct dns_worker *dw)
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
void dnss_forget_conn(struct dns_conn *c)
{
    for (struct dns_lookup *l = c->dw->lookups; l && c->lookups > 0; l = l->next)
        if (l->conn == c) {
            l->conn = NULL;
            c->lookups--;
        }
}
