/*
 * conn.h - private to src/http: the per-connection state machine's structures, shared by conn.c (the
 * state machine and the reply API) and server.c (the server object, accepting, shutdown).
 * Not for other components: they use server.h.
 *
 * Buffers (all bounded):
 *   in      max_head + IN_SLACK bytes: the current head (the parsed request's slices point into it), then
 *           staging for chunked body bytes and pipelined bytes of the next request.
 *   body    exactly Content-Length (+1 for a NUL), or grown up to max_body for chunked bodies.
 *   scratch decoded path parameters: max_target + PD_ROUTER_MAX_PARAMS + 1.
 * Memory per connection is therefore bounded by max_head + max_target + max_body + ~24 KiB.
 */
#ifndef PD_HTTP_CONN_H
#define PD_HTTP_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/server.h"

#define IN_SLACK 16384
#define DISCARD_SIZE 65536
#define LINGER_MAX_BYTES (1024 * 1024)
#define EXTRA_HEADERS_MAX 2048
#define REFUSE_LOG_INTERVAL_MS 1000

static const char CONTINUE_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

struct pd_http_server {
    struct pd_http_server_config cfg;
    const struct pd_router *router;
    struct pd_loop_service ops;
    _Atomic size_t nconns;
    struct pd_http_server_series series; /* metrics children of this server (no-ops without metrics) */
};

/* Per-worker state of one server. */
struct http_worker {
    struct pd_http_server *srv;
    struct pd_worker *w;
    struct conn *conns; /* every open connection of this worker, for shutdown */
    bool stopping;
    uint64_t refuse_log_ms;
    unsigned refuse_suppressed;
    char discard[DISCARD_SIZE]; /* sink for lingering reads; used only between alloc_cb and read_cb */
};

/*
 * Connection states, what each waits for, and its timer:
 *   HEAD     the rest of a request head                 header_timeout_ms (from first byte / accept) -> 408
 *   IDLE     the first byte of the next request         idle_timeout_ms -> silent close
 *   BODY     the rest of the request body               body_timeout_ms (whole body) -> 408
 *   HANDLER  the handler's reply (sync or deferred)     none (handlers bound themselves; shutdown grace)
 *   WRITE    the response write to complete             write_timeout_ms -> close
 *   LINGER   EOF after our FIN (input discarded)        linger_ms -> close
 *   CLOSED   the close callbacks of both handles        none; then the struct is freed
 * Reading: on in HEAD, IDLE, BODY, LINGER; in HANDLER and WRITE only while `in` has room (pipelined bytes
 * and EOF detection for deferred handlers).
 */
enum conn_state { CS_HEAD, CS_IDLE, CS_BODY, CS_HANDLER, CS_WRITE, CS_LINGER, CS_CLOSED };

struct pd_http_ctx {
    struct conn *c;
    bool replied, aborted, deferred;
    bool close;
    bool head_only;
    void (*abort_fn)(struct pd_http_ctx *ctx, void *arg);
    void *abort_arg;
    char extra[EXTRA_HEADERS_MAX];
    size_t extra_len;
};

struct conn {
    struct conn *prev, *next;
    struct http_worker *hw;
    uv_tcp_t *tcp; /* malloc'd by the loop; freed in its close callback */
    uv_timer_t timer;
    int open_handles;
    enum conn_state state;
    bool reading;
    bool peer_eof;
    bool counted; /* holds one unit of srv->nconns */
    bool close_after;
    char peer[PD_LISTEN_ADDR_MAX];
    uint16_t peer_port;

    char *in; /* input buffer, see top */
    size_t in_len, in_cap;
    size_t scan_from; /* bytes of `in` already searched for '\n' by the head parser trigger */
    size_t req_end;   /* bytes of `in` that belong to the current request */
    char *scratch;
    size_t scratch_cap;

    /* Current request. */
    bool have_req;
    struct pd_http_request preq;
    struct pd_http_req req;
    struct pd_http_ctx ctx;
    char *body;
    size_t body_len, body_cap;
    struct pd_http_chunked chunked;
    struct pd_route_param params[PD_ROUTER_MAX_PARAMS];
    uint64_t t_start;
    size_t linger_bytes;

    /* Writes. */
    uv_write_t wreq;
    uv_write_t creq;
    uv_shutdown_t sreq;
    char *whead, *wbody;
};

static inline const struct pd_http_server_config *ccfg(const struct conn *c)
{
    return &c->hw->srv->cfg;
}

/* Entry points of conn.c used by server.c. */
void pd_http_conn_close(struct conn *c);
void pd_http_conn_timer_arm(struct conn *c, unsigned ms);
void pd_http_conn_read_on(struct conn *c);
void pd_http_conn_error_reply(struct conn *c, int status, const char *detail);

#endif
