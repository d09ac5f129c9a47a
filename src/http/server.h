/*
 * server.h - a small, strict HTTP/1.1 server on the worker loops of core/loop.h: routing (router.h),
 * keep-alive, pipelining, bounded bodies, timeouts, JSON replies with FastAPI-compatible error bodies, and
 * deferred replies for long-polls.
 *
 * Who uses it: the control plane REST API and the metrics endpoints; tests/integration/testd.c.
 *
 * Contract:
 *   - Requests are parsed by http/parse.h (anything ambiguous is refused with the parser's status and
 *     {"detail": "<reason>"}, then the connection is closed). Bodies: Content-Length or chunked, at most
 *     max_body bytes (413; a too-large Content-Length is refused before reading the body, and the connection
 *     is closed). "Expect: 100-continue" gets "100 Continue" unless the request is refused first.
 *   - One request at a time per connection: pipelined bytes are kept and parsed after the response is sent.
 *   - Every response carries Date and Content-Length (never chunked) and "Connection: close" when the server
 *     closes afterwards; HEAD is answered by GET handlers with the body suppressed. 404/405 bodies are
 *     FastAPI's: {"detail":"Not Found"}, {"detail":"Method Not Allowed"} (+ Allow).
 *   - Timeouts (each a deadline for one phase): header_timeout_ms from the first byte of a head (from accept
 *     for a new connection) -> 408 + close (silent close if nothing was received); body_timeout_ms for the
 *     whole body -> 408 + close; idle_timeout_ms between keep-alive requests -> silent close;
 *     write_timeout_ms for one response -> close. After a final response that closes, the server half-closes
 *     and discards input for at most linger_ms, so the client reads the response instead of a reset.
 *   - max_connections is a per-process bound (one atomic counter shared by the workers, so it is exact
 *     whichever worker accepts); excess connections get 503 {"detail":"too many connections"} and are closed.
 *   - Graceful shutdown (core/loop.h): idle connections close at once, in-flight requests complete with
 *     "Connection: close"; when the grace period ends, deferred handlers get their abort callback and every
 *     connection is closed.
 *   - Logging: one debug line per request (method, path without query, status, duration_us); warn lines for
 *     refused connections (at most one per second per worker, with a count of those suppressed). Bodies,
 *     header values and query strings are never logged.
 *
 * Handlers run on a worker thread. A handler replies with one of the pd_http_reply* functions, either before
 * returning or later (deferred) from the same worker's loop. A deferred handler should register an abort
 * callback: it is called when the client goes away (EOF or error) or at the end of the shutdown grace; after
 * it, the ctx and req are gone and must not be used. After a reply, likewise.
 */
#ifndef PD_HTTP_SERVER_H
#define PD_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include "core/err.h"
#include "core/loop.h"
#include "core/slice.h"
#include "http/parse.h"
#include "http/router.h"
#include "http/server_metrics.h"

/* Timeouts of 0 disable that phase's timer (not recommended for header_timeout_ms: it is the slowloris
 * defence). The shutdown grace period is the loop's: pd_loop_config.shutdown_grace_ms (core/loop.h). */
struct pd_http_server_config {
    struct pd_http_limits limits; /* head/target/header-count limits of the parser */
    size_t max_body;              /* default 1 MiB */
    unsigned header_timeout_ms;   /* default 10000 */
    unsigned body_timeout_ms;     /* default 60000 */
    unsigned idle_timeout_ms;     /* default 60000 */
    unsigned write_timeout_ms;    /* default 30000 */
    unsigned linger_ms;           /* default 2000 */
    unsigned max_connections;     /* per process; default 1024 */
    const char *component;        /* log component and metrics `server` label; default "http" */
    struct pd_http_metrics *metrics; /* optional (borrowed, outlives the server): http/server_metrics.h */
};

void pd_http_server_config_init(struct pd_http_server_config *c);

struct pd_http_server;
struct pd_http_ctx;

/* The router is borrowed and must outlive the server; it is read-only while the server runs. */
struct pd_http_server *pd_http_server_new(const struct pd_http_server_config *cfg, const struct pd_router *router,
                                          struct pd_err *err);
void pd_http_server_free(struct pd_http_server *s);

/* Register the server as a service of the loop; returns the service id for pd_loop_add_listener(), or -1. */
int pd_http_server_attach(struct pd_http_server *s, struct pd_loop *loop, struct pd_err *err);

/* Open connections counted against max_connections (any thread). */
size_t pd_http_server_connections(const struct pd_http_server *s);

/* The request as a handler sees it. Slices point into connection buffers valid until reply or abort. */
struct pd_http_req {
    enum pd_http_method method_id;
    struct pd_slice method;
    struct pd_slice target; /* as received */
    struct pd_slice path;   /* percent-encoded, without the query */
    struct pd_slice query;  /* percent-encoded, without '?' (empty when none) */
    int version_minor;
    const struct pd_http_header *headers;
    size_t nheaders;
    const char *body; /* body_len bytes, followed by a NUL that is not part of the body */
    size_t body_len;
    const struct pd_route_param *params; /* decoded {name} values */
    size_t nparams;
    const char *route; /* the matched pattern, e.g. "/items/{id}" */
    const char *peer_addr;
    uint16_t peer_port;
    unsigned worker;
};

/* Decoded path parameter, or NULL. */
const char *pd_http_param(const struct pd_http_req *req, const char *name);
/* Decoded query parameter (see pd_http_query_find in router.h for the returns). */
ssize_t pd_http_query_get(const struct pd_http_req *req, const char *name, char *buf, size_t cap);
/* First header with this name (case-insensitive), or NULL. */
const struct pd_http_header *pd_http_req_header(const struct pd_http_req *req, const char *name);

/*
 * Replies. Each returns 0, or -1 if this ctx already replied or was aborted (nothing is sent) or on a
 * refused argument (then a 500 is sent instead). status must be 200..599 (else 500 is sent).
 */
int pd_http_reply(struct pd_http_ctx *ctx, int status, const char *content_type, const void *body, size_t len);
/* Like pd_http_reply, taking ownership of a malloc'd body (freed with free(), also on failure). */
int pd_http_reply_take(struct pd_http_ctx *ctx, int status, const char *content_type, char *body, size_t len);
/* JSON body, compact; the reference to body is stolen (also on failure). */
int pd_http_reply_json(struct pd_http_ctx *ctx, int status, json_t *body);
/* {"detail": "<formatted message>"} */
int pd_http_reply_error(struct pd_http_ctx *ctx, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An extra response header for the coming reply. Refuses (-1) invalid names/values, server-managed names
 * (Content-Length, Transfer-Encoding, Connection, Date) and more than the ctx can hold (2 KiB). */
int pd_http_add_header(struct pd_http_ctx *ctx, const char *name, const char *value);
/* Close the connection after this reply (Connection: close). */
void pd_http_set_close(struct pd_http_ctx *ctx);
/* Deferred replies: fn(ctx, arg) when the client went away or the grace period ended (then: no reply). */
void pd_http_on_abort(struct pd_http_ctx *ctx, void (*fn)(struct pd_http_ctx *ctx, void *arg), void *arg);

const struct pd_http_req *pd_http_ctx_req(const struct pd_http_ctx *ctx);
uv_loop_t *pd_http_ctx_uv(struct pd_http_ctx *ctx);
struct pd_worker *pd_http_ctx_worker(struct pd_http_ctx *ctx);
/* True when the server is draining (a long-poll may want to answer early). */
bool pd_http_ctx_stopping(const struct pd_http_ctx *ctx);

/* ---- response formatting (response.c), exposed for tests and other components ---- */

/* IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), NUL-terminated; cap >= 30. Returns the length (29). */
size_t pd_http_format_date(time_t t, char *out, size_t cap);

/* True if name is a token and value holds no CR, LF, NUL or other CTL except HTAB. */
bool pd_http_header_valid(const char *name, const char *value);

struct pd_http_head {
    int status;
    const char *content_type; /* NULL: no Content-Type */
    size_t content_length;
    bool close;         /* Connection: close */
    bool keep_alive_10; /* Connection: keep-alive (answering an HTTP/1.0 keep-alive request) */
    const char *extra;  /* pre-validated "Name: value\r\n" lines, may be NULL */
    size_t extra_len;
    time_t now;
};

/* Upper bound of the head length pd_http_format_head() needs for h. */
size_t pd_http_head_size(const struct pd_http_head *h);
/* Format a response head (status line .. blank line) into out; returns its length, or 0 if cap is short.
 * 1xx, 204 and 304 get no Content-Length. */
size_t pd_http_format_head(const struct pd_http_head *h, char *out, size_t cap);

/* malloc'd {"detail":"msg"} (compact, as FastAPI writes it); bytes that are not UTF-8 become '?'. */
char *pd_http_detail_json(const char *msg, size_t *len);

#endif
