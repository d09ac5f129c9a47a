/*
 * dns_server_int.h - private to dns_server.c (transports, the per-query path, service hooks) and
 * dns_forward.c (upstream lookups of mode forward): the per-worker state they share. Nothing else
 * includes it; dns_server.h is the module's contract.
 */
#ifndef PD_GATEWAY_DNS_SERVER_INT_H
#define PD_GATEWAY_DNS_SERVER_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/metrics.h"
#include "gateway/dns_answers.h"
#include "gateway/dns_filter.h"
#include "gateway/dns_guard.h"
#include "gateway/dns_server.h"

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

/* Who asked: where a later (forwarded) answer goes. */
struct dns_client {
    bool tcp;
    struct dns_conn *conn; /* TCP */
    size_t udp; /* UDP: index of the worker's socket */
    const struct sockaddr *addr; /* UDP */
    const char *peer;
};

/* dns_server.c */
/* The query log line and the metrics of one query. */
void dnss_log_query(struct dns_worker *dw, const struct pd_gw_policy *p,
                    const struct pd_dnsf_result *r, bool tcp, const char *peer, size_t n,
                    const char *source, const char *upstream, uint64_t t0);
/* The worker's answer cache for policy p (emptied or resized when the policy changed); NULL when
 * dns.cache_size is 0 or memory ran out. */
struct pd_dnsa *dnss_worker_cache(struct dns_worker *dw, const struct pd_gw_policy *p);
/* Send the response in dw->out + 2 (n bytes) on a TCP connection; false when it was closed. */
bool dnss_conn_send(struct dns_conn *c, size_t n);

/* dns_forward.c */
/* Resolve an allowed query upstream; the client (a copy of q) gets its answer later. false: no
 * upstream could be asked (the caller answers SERVFAIL). */
bool dnss_start_lookup(struct dns_worker *dw, struct pd_gw_policy *p,
                       const struct pd_dnsf_result *r, const uint8_t *q, size_t len,
                       const struct dns_client *cl, uint64_t t0);
void dnss_close_lookups(struct dns_worker *dw); /* shutdown: drop every lookup, answer none */
void dnss_forget_conn(
    struct dns_conn *c); /* a TCP client went away: its lookups finish without it */

#endif
