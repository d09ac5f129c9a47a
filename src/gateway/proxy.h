// clang-format off
/*
 * proxy.h - private to src/gateway: the forward-proxy engine's connection struct and state machine,
 * in one place. The machine is split by step: proxy.c (accepting, lifetime, writes, accounting,
 * denials, timers, client reading, closing, service hooks), request.c (parse the head, canonical
 * destination, Host agreement, decision, rewrite), upstream.c (resolve, address checks, dial, the
 * ClientHello check), upstream_tls.c (the gateway's own TLS for credential injection), relay.c
 * (response heads and bodies, upgrades), pool.c (idle upstream connections). gateway.c is the
 * process around it (policy, listeners, admin server, reload, budgets).
 *
 * One `struct proxy_conn` per client connection, one explicit state at a time (HAProxy style).
 * What each state waits for, and its timer:
 *
 *   HEAD          a complete request head             header_timeout_ms (from accept or the first
 *                                                      byte) -> 408 + close (silent close if nothing
 *                                                      came); between keep-alive requests
 *                                                      idle_timeout_ms -> silent close
 *   DECIDE        nothing: synchronous (canonical host, Host agreement, pd_gw_decide, rate limit,
 *                 byte budget)
 *   TLS_HELLO     CONNECT to 443, after "200 Connection established": the ClientHello (at most
 *                 PD_TLS_HELLO_WIRE_MAX bytes)        header_timeout_ms -> close, nothing dialed
 *   RESOLVE       uv_getaddrinfo (upstream.hosts is synchronous)
 *                                                     connect_timeout_ms -> 504
 *   CONNECT       uv_tcp_connect to one checked address
 *                                                     connect_timeout_ms -> 504; a failure tries
 *                                                      the next checked address, then 502
 *   UPSTREAM_TLS  the gateway's own TLS handshake (alias / upgrade_http: certificate and host name
 *                 verified)                           connect_timeout_ms -> 504; failure -> 502
 *   FORWARD       request head + body going upstream (the response head may already arrive)
 *                                                     tunnel_idle_timeout_ms without traffic
 *   RESPONSE      the response head (request sent)    tunnel_idle_timeout_ms without traffic
 *   RELAY         the response body to the client     tunnel_idle_timeout_ms without traffic
 *                 -> HEAD on keep-alive, else CLOSING; the upstream connection goes to the
 *                 worker's pool when reusable, else it is closed
 *   TUNNEL        bytes both ways (CONNECT, or a 101 to a requested WebSocket upgrade)
 *                                                     tunnel_idle_timeout_ms without traffic
 *   CLOSING       our last bytes to flush, FIN, then EOF from the client (input discarded)
 *                                                     12 s to flush, then 2 s linger -> close
 *   CLOSED        the close callbacks of every handle; then the struct is freed
 *
 * A denial is not a state of its own: DECIDE, RESOLVE, CONNECT (and a failed upstream before any
 * response byte) write the denial and enter CLOSING, or HEAD when the connection can stay open
 * (a policy denial of a request without a body, client keep-alive). After the client got a status
 * (200 for CONNECT 443, or a response head) nothing more can be said: the connection is closed and
 * the reason logged.
 *
 * Backpressure: a side is read only while the state wants its bytes AND the other side's pending
 * writes are below PX_WATERMARK; a write completion that brings the queue below it resumes reading.
 * Nothing is buffered whole: bodies and tunnel bytes move read-buffer by read-buffer.
 */
// clang-format on
#ifndef PD_GATEWAY_PROXY_H
#define PD_GATEWAY_PROXY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <uv.h>

#include "core/loop.h"
#include "core/metrics.h"
#include "gateway/budget.h"
#include "gateway/dns_cache.h"
#include "gateway/policy.h"
#include "gateway/ratelimit.h"
#include "http/parse.h"
#include "net/host.h"
#include "net/ip.h"

#define PX_WATERMARK (256u * 1024u) /* pending write bytes that stop reading the other side */
#define PX_READ_SIZE (64u * 1024u)
#define PX_RESP_HEAD_MAX (64u * 1024u) /* largest upstream response head */
#define PX_LINGER_MS 2000u
#define PX_MAX_ADDRS 16
#define PX_LOG_PATH_MAX 1024

enum px_state {
    PX_HEAD,
    PX_DECIDE,
    PX_TLS_HELLO,
    PX_RESOLVE,
    PX_CONNECT,
    PX_UPSTREAM_TLS,
    PX_FORWARD,
    PX_RESPONSE,
    PX_RELAY,
    PX_TUNNEL,
    PX_CLOSING,
    PX_CLOSED,
};

const char *px_state_name(enum px_state s);

/* Process-wide state shared by every worker (gateway.c owns it). */
struct pd_gateway {
    pthread_mutex_t mu; /* guards `policy` (the pointer, not the immutable policy) */
    struct pd_gw_policy *policy;
    const char *config_path;
    const char *sandbox_id; /* --sandbox-id: overrides the policy's sandbox_id, or NULL */
    struct pd_ratelimit *rl;
    struct pd_budget *budget;
    _Atomic size_t nconns;
    struct pd_loop *loop;
    struct pd_loop_service ops;
    /* metrics */
    struct pd_metrics *reg;
    struct pd_metric_family *m_requests; /* {decision, error} */
    struct pd_metric *m_tunnels;
    struct pd_metric *m_bytes_sent, *m_bytes_received;
    struct pd_metric *m_connect_failures;
    struct pd_metric *m_pool_hits;
    struct pd_metric *m_duration;
    /* TLS client context of the upstream connections the gateway makes itself (guarded by mu). */
    struct ssl_ctx_st *tls_ctx;
    char *tls_ca; /* the ca_file it was built for ("" = system store) */
};

/* A new reference to the TLS client context (any thread); release it with SSL_CTX_free. */
struct ssl_ctx_st *pd_gateway_tls_ctx(struct pd_gateway *gw);

/* A new reference to the running policy (any thread). */
struct pd_gw_policy *pd_gateway_policy(struct pd_gateway *gw);

/* Per-worker state of the proxy service. */
struct px_worker {
    struct pd_gateway *gw;
    struct pd_worker *w;
    struct proxy_conn *conns; /* every open connection of this worker */
    bool stopping;
    uv_timer_t budget_timer; /* worker 0 only: flush + expire budgets every second */
    bool has_timer;
    struct px_upstream *pool; /* idle upstream connections, most recent first */
    size_t npool;
    uv_timer_t pool_timer;
    bool has_pool_timer;
    uv_work_t flush_req;
    bool flushing;
    struct px_dns_cache dns; /* name -> addresses, this worker only (dns_cache.h) */
};

/* The upstream side of one request or tunnel (malloc'd; freed in its close callback). */
struct px_upstream {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct proxy_conn *c; /* NULL while idle in the pool */
    bool connected;
    unsigned nwrites; /* writes whose callback has not run (never pooled with any) */
    /* Pool (pool.c): idle keep-alive connections per worker, keyed by (host, port, address). */
    struct px_upstream *pprev, *pnext;
    struct px_worker *pw;
    char host[PD_HOST_MAX + 1];
    uint16_t port;
    struct pd_addr addr;
    uint64_t idle_since_ms;
};

#define PX_POOL_MAX 32 /* idle upstream connections per worker */
#define PX_POOL_IDLE_MS 30000 /* an idle pooled connection is closed after this */

/* Tracks where a message body ends in a byte stream (original framing is forwarded). */
struct px_body {
    enum pd_http_framing framing;
    uint64_t remaining; /* LENGTH */
    struct pd_http_chunked ch; /* CHUNKED */
    bool done;
};

struct proxy_conn {
    struct proxy_conn *prev, *next;
    struct px_worker *pw;
    uv_tcp_t *tcp; /* client; malloc'd by the loop, freed in its close callback */
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    int pending; /* handles and requests whose callbacks are still due */
    enum px_state state;
    bool counted, client_reading, up_reading, client_eof, up_eof, close_after, idle;
    bool
        committed; /* the client got a status for this request (200 for CONNECT, a response head) */
    char peer[64];
    struct pd_gw_limits lim; /* of the current request's policy (max_head: fixed at accept) */
    uint32_t connect_timeout_ms;
    int version_minor;

    /* Client input: the current head, then body or pipelined bytes not consumed yet. Allocated at
     * the first byte of a head, freed when empty between requests and in tunnels. */
    char *in;
    size_t in_len, in_cap;

    /* Current request / tunnel. */
    struct pd_gw_policy *policy; /* reference held for the request or tunnel */
    bool active; /* a request or tunnel is being handled (access log pending) */
    bool is_connect;
    bool keep_alive; /* client asked for persistence */
    enum pd_http_method method_id;
    char method[32];
    char host[PD_HOST_MAX + 1]; /* canonical name or address text */
    struct pd_addr addr; /* IP-literal destination */
    bool is_addr;
    uint16_t port;
    char path[PX_LOG_PATH_MAX]; /* without query, for the log */
    struct pd_gw_decision d;
    uint64_t t_start; /* uv_hrtime at the end of the head */
    int status; /* sent to the client (0: none yet) */
    const char *error; /* denial / failure code (static or policy lifetime), NULL when none */
    char up_text[PD_ADDR_STRLEN + 8];
    uint64_t bytes_sent, bytes_received; /* agent -> upstream, upstream -> agent (body+heads) */
    uint64_t charged_sent, charged_received;
    bool budget_spent; /* a tunnel's budget ran out: it is closed */
    bool budget_over; /* the last charge found the budget spent */

    /* Plain HTTP. */
    char *up_head; /* rewritten request head, written at connect */
    size_t up_head_len;
    struct px_body req_body;
    bool resp_started; /* bytes of the response went to the client */
    struct pd_http_response resp;
    struct px_body resp_body;
    bool ws; /* the request asks for a protocol upgrade (WebSocket) */
    bool dechunk; /* HTTP/1.0 client, chunked response: relay the data only, then close */
    char *rbuf; /* upstream response head: the first read buffer itself, grown when the head is
                 * longer than one read */
    size_t rbuf_len, rbuf_cap;

    /* Resolve + dial. */
    struct pd_addr addrs[PX_MAX_ADDRS];
    size_t naddrs, next_addr;
    struct pd_addr dialed;
    struct px_upstream *up;

    /* CONNECT 443: the ClientHello (sent upstream once the tunnel is dialed). */
    uint8_t *hello;
    size_t hello_len;
    bool tunnel_counted;

    /* The gateway's own TLS to the upstream (memory BIOs; NULL when the upstream is plain). */
    struct ssl_st *ssl;
    struct bio_st *rbio, *wbio; /* owned by ssl */
    bool tls_done; /* handshake complete */
    bool injected; /* the credential header went upstream */
    bool reused; /* the upstream came from the pool (a failure before any response retries fresh) */
    bool up_dirty; /* the upstream sent bytes past the response: never pooled */

    /* Zero-copy tunnel (splice.c): non-NULL while the tunnel's bytes move by splice(2). */
    struct px_splice *sp;
    struct px_splice *sp_dead; /* a stopped one, freed with c (its polls close asynchronously) */
    bool no_splice; /* setting it up failed once: keep the copying relay */
};

/* proxy.c: the loop service hooks. */
int px_worker_init(struct pd_worker *w, void *svc, void **state, struct pd_err *err);
void px_accept(struct pd_worker *w, void *svc, void *state, uv_tcp_t *client, size_t listener);
void px_shutdown(struct pd_worker *w, void *svc, void *state);
void px_force_close(struct pd_worker *w, void *svc, void *state);
void px_worker_stop(struct pd_worker *w, void *svc, void *state);
void px_worker_fini(struct pd_worker *w, void *svc, void *state);
/* Reload: on the worker's thread, close tunnels that `p` denies (consumes the reference to p). */
void px_recheck(struct px_worker *pw, struct pd_gw_policy *p);

/* ---- Internal to the engine (proxy.c, request.c, upstream.c, relay.c) ---- */
#define PX_ESTABLISHED "HTTP/1.1 200 Connection established\r\n\r\n"

static inline struct pd_gateway *GW(struct proxy_conn *c)
{
    return c->pw->gw;
}

static inline size_t px_append(char *o, size_t at, const char *s, size_t n)
{
    if (n)
        memcpy(o + at, s, n);
    return at + n;
}

/* A reason text into r (PD_GW_REASON_MAX bytes; longer texts are cut). */
void px_reason(char *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* proxy.c: lifetime, writes, accounting, denials, timers, reading. */
void px_close(struct proxy_conn *c); /* close every handle now (logs a pending request) */
void px_close_up(struct proxy_conn *c); /* close the upstream side only */
void px_drop_pending(struct proxy_conn *c); /* a callback c waited for ran; frees c at 0 */
void px_update(struct proxy_conn *c); /* (re)start or stop reading either side */
void px_arm(struct proxy_conn *c, uint64_t ms); /* the state's timer */
void px_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
/* Writes take ownership of data; false when the connection was closed (do not touch it then
 * except through c, which stays allocated until its close callbacks ran). */
bool px_write(struct proxy_conn *c, uv_stream_t *s, char *data, size_t len);
bool px_write_copy(struct proxy_conn *c, uv_stream_t *s, const void *p, size_t len);
bool px_to_client(struct proxy_conn *c, char *data, size_t len); /* counts bytes_received */
bool px_to_up(struct proxy_conn *c, char *data, size_t len); /* counts bytes_sent */
void px_shutdown_stream(struct proxy_conn *c, uv_stream_t *s);
void px_begin_request(struct proxy_conn *c);
void px_end_request(struct proxy_conn *c); /* access log, metrics, budget, policy unref */
void px_deny(struct proxy_conn *c, int status, const char *error, const char *reason,
             const char *rule, unsigned retry_after, bool keep);
void px_enter_closing(struct proxy_conn *c);
void px_finish_response(struct proxy_conn *c);
void px_in_consume(struct proxy_conn *c, size_t n);
/* Free the input buffer when it is empty (idle keep-alive connections and tunnels hold none). */
void px_in_release(struct proxy_conn *c);
bool px_forward_in_body(struct proxy_conn *c);
void px_tunnel_bytes(struct proxy_conn *c);
void px_charge(struct proxy_conn *c);
/* request.c */
void px_process_head(struct proxy_conn *c);
/* upstream.c */
void px_start_resolve(struct proxy_conn *c);
void px_check_hello(struct proxy_conn *c);
void px_send_request(struct proxy_conn *c); /* the upstream is ready: head, then body */
/* relay.c */
void px_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
void px_up_data(struct proxy_conn *c, char *buf, size_t n); /* plaintext from upstream (owned) */
void px_up_eof(struct proxy_conn *c, int code); /* UV_EOF or an error */
void px_retry_fresh(struct proxy_conn *c); /* a pooled upstream failed early: dial anew */
/* splice.c */
#define PX_SPLICE_PIPE (256u * 1024u) /* pipe size asked for per direction (bound on bytes in flight) */
/* Switch a TUNNEL with nothing queued on either side to splice(2). false: not possible (c keeps
 * the copying relay; reading may have been stopped, px_update restarts it). */
bool px_splice_start(struct proxy_conn *c);
void px_splice_update(struct proxy_conn *c); /* the poll events the two directions need now */
void px_splice_stop(struct proxy_conn *c); /* close the polls and pipes (before the sockets) */
/* pool.c */
bool px_pool_put(struct proxy_conn *c); /* after a complete response: keep c->up idle */
struct px_upstream *px_pool_take(struct proxy_conn *c, const char *host, uint16_t port);
/* px_up_read's path for a pooled (idle) connection: any byte or EOF closes it. */
void px_pool_idle_read(struct px_upstream *up, ssize_t nread, const uv_buf_t *buf);
void px_pool_init(struct px_worker *pw);
void px_pool_close_all(struct px_worker *pw); /* shutdown: close idle ones and the timer */
void px_upstream_closed(uv_handle_t *h); /* close callback of every px_upstream */
/* upstream_tls.c */
struct ssl_ctx_st *px_tls_ctx_new(const char *ca_file, struct pd_err *err);
void px_tls_start(struct proxy_conn *c); /* connected: begin the handshake (UPSTREAM_TLS) */
bool px_tls_write(struct proxy_conn *c, char *data, size_t len); /* owned; wiped and freed */
void px_tls_read(struct proxy_conn *c, char *buf,
                 size_t n); /* ciphertext from the socket (owned) */
void px_tls_free(struct proxy_conn *c);

/* Small pure helpers (proxy_util.c). */
/* The denial body {"error","host","reason","rule"}; malloc'd, *len set. NULL on OOM. */
char *px_denial_body(const char *error, const char *host, const char *reason, const char *rule,
                     size_t *len);
/* A whole denial response (head + body); malloc'd. retry_after 0: no Retry-After. */
char *px_denial_response(int status, const char *error, const char *host, const char *reason,
                         const char *rule, unsigned retry_after, bool close, size_t *len);
void px_body_init(struct px_body *b, enum pd_http_framing f, uint64_t content_length,
                  bool response);
/* How many of buf[0..len) belong to the body (the body ends inside when b->done). -1: framing
 * error (err filled). */
long px_body_feed(struct px_body *b, const char *buf, size_t len, struct pd_http_error *err);

#endif
