/*
 * test_http_server.c - the HTTP server on an ephemeral loopback port, run on a thread inside the test, spoken
 * to with plain sockets: keep-alive, pipelining, 413, 431, 400 for CL+TE, 404/405, deferred replies, reply API
 * refusals; plus the response formatting helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "http/server.h"

#define BOUND_S 10 /* generous receive timeout: only to avoid hanging */

/* Results that handlers report back to the test thread. */
struct probe {
    _Atomic int double_reply_rc;
    _Atomic int bad_header_rc;
    _Atomic int crlf_header_rc;
    _Atomic int aborted;
    _Atomic int deferred_started;
};

struct fixture {
    struct pd_router *router;
    struct pd_http_server *srv;
    struct pd_loop *loop;
    pthread_t thread;
    uint16_t port;
    struct probe probe;
};

static void h_hello(struct pd_http_ctx *ctx, const struct pd_http_req *req, void *user)
{
    (void)req;
    struct probe *p = user;
    assert_int_equal(pd_http_add_header(ctx, "X-Extra", "yes"), 0);
    atomic_store(&p->bad_header_rc, pd_http_add_header(ctx, "Content-Length", "5"));
    atomic_store(&p->crlf_header_rc, pd_http_add_header(ctx, "X-Inject", "a\r\nSet-Cookie: x"));
    pd_http_reply(ctx, 200, "text/plain", "hello", 5);
    atomic_store(&p->double_reply_rc, pd_http_reply(ctx, 200, "text/plain", "again", 5));
}

static void h_len(struct pd_http_ctx *ctx, const struct pd_http_req *req, void *user)
{
    (void)user;
    char q[16] = "";
    ssize_t n = pd_http_query_get(req, "tag", q, sizeof q);
    pd_http_reply_json(ctx, 200,
                       json_pack("{s:I,s:s,s:s}", "len", (json_int_t)req->body_len, "tag", n >= 0 ? q : "",
                                 "id", pd_http_param(req, "id") ? pd_http_param(req, "id") : ""));
}

struct deferred {
    uv_timer_t timer;
    struct pd_http_ctx *ctx;
    struct probe *probe;
};

static void deferred_closed(uv_handle_t *h)
{
    free(h->data);
}

static void deferred_fire(uv_timer_t *t)
{
    struct deferred *d = t->data;
    pd_http_reply_error(d->ctx, 418, "late %s", "reply");
    uv_close((uv_handle_t *)&d->timer, deferred_closed);
}

static void deferred_abort(struct pd_http_ctx *ctx, void *arg)
{
    (void)ctx;
    struct deferred *d = arg;
    atomic_fetch_add(&d->probe->aborted, 1);
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, deferred_closed);
}

static void h_deferred(struct pd_http_ctx *ctx, const struct pd_http_req *req, void *user)
{
    char ms[16];
    ssize_t n = pd_http_query_get(req, "ms", ms, sizeof ms);
    struct deferred *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->ctx = ctx;
    d->probe = user;
    d->timer.data = d;
    uv_timer_init(pd_http_ctx_uv(ctx), &d->timer);
    uv_timer_start(&d->timer, deferred_fire, n > 0 ? strtoull(ms, NULL, 10) : 10, 0);
    pd_http_on_abort(ctx, deferred_abort, d);
    atomic_fetch_add(&d->probe->deferred_started, 1);
}

static void *run_loop(void *arg)
{
    struct fixture *f = arg;
    struct pd_err err;
    if (pd_loop_run(f->loop, &err) != 0)
        fprintf(stderr, "pd_loop_run: %s\n", err.msg);
    return NULL;
}

static struct fixture *start(const struct pd_http_server_config *hc)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct pd_err err;
    assert_non_null(f);
    f->router = pd_router_new();
    assert_int_equal(pd_router_add(f->router, "GET", "/hello", h_hello, &f->probe, &err), 0);
    assert_int_equal(pd_router_add(f->router, "POST", "/len", h_len, NULL, &err), 0);
    assert_int_equal(pd_router_add(f->router, "GET", "/things/{id}", h_len, NULL, &err), 0);
    assert_int_equal(pd_router_add(f->router, "GET", "/deferred", h_deferred, &f->probe, &err), 0);
    f->srv = pd_http_server_new(hc, f->router, &err);
    assert_non_null(f->srv);
    struct pd_loop_config lc;
    pd_loop_config_init(&lc);
    lc.workers = 2;
    lc.handle_signals = false;
    lc.shutdown_grace_ms = 500;
    f->loop = pd_loop_new(&lc, &err);
    assert_non_null(f->loop);
    int sid = pd_http_server_attach(f->srv, f->loop, &err);
    assert_true(sid >= 0);
    struct pd_listen_spec spec;
    assert_int_equal(pd_listen_spec_parse("127.0.0.1:0", &spec, &err), 0);
    assert_int_equal(pd_loop_add_listener(f->loop, &spec, sid, &err), 0);
    f->port = pd_loop_listener_port(f->loop, 0);
    /* The socket listens already: clients may connect before the workers run (the kernel queues them). */
    assert_int_equal(pthread_create(&f->thread, NULL, run_loop, f), 0);
    return f;
}

static struct fixture *start_default(void)
{
    struct pd_http_server_config hc;
    pd_http_server_config_init(&hc);
    return start(&hc);
}

static void shutdown_join(struct fixture *f)
{
    pd_loop_shutdown(f->loop);
    pthread_join(f->thread, NULL);
    assert_int_equal(pd_http_server_connections(f->srv), 0);
}

static void destroy(struct fixture *f)
{
    pd_loop_free(f->loop);
    pd_http_server_free(f->srv);
    pd_router_free(f->router);
    free(f);
}

static void stop(struct fixture *f)
{
    shutdown_join(f);
    destroy(f);
}

static bool wait_atomic(_Atomic int *v, int want)
{
    for (int i = 0; i < BOUND_S * 200; i++) {
        if (atomic_load(v) >= want)
            return true;
        usleep(5000);
    }
    return false;
}

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = BOUND_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

struct resp {
    int status;
    char head[2048];
    char body[4096];
    size_t body_len;
};

/* A client-side reader with a buffer, so pipelined responses can be read one at a time. */
struct reader {
    int fd;
    char buf[65536];
    size_t len;
    bool eof;
};

static bool fill(struct reader *r)
{
    if (r->eof || r->len == sizeof r->buf)
        return false;
    ssize_t n = recv(r->fd, r->buf + r->len, sizeof r->buf - r->len, 0);
    if (n <= 0) {
        r->eof = true;
        return false;
    }
    r->len += (size_t)n;
    return true;
}

static void consume(struct reader *r, size_t n)
{
    memmove(r->buf, r->buf + n, r->len - n);
    r->len -= n;
}

/* Read one final response (skipping 1xx); returns false on EOF before a complete one. */
static bool read_resp(struct reader *r, struct resp *out, bool head_request)
{
    for (;;) {
        char *end = r->len ? memmem(r->buf, r->len, "\r\n\r\n", 4) : NULL;
        if (!end) {
            if (!fill(r))
                return false;
            continue;
        }
        size_t hl = (size_t)(end - r->buf) + 4;
        assert_true(hl < sizeof out->head);
        memcpy(out->head, r->buf, hl);
        out->head[hl] = '\0';
        assert_int_equal(sscanf(out->head, "HTTP/1.1 %d", &out->status), 1);
        if (out->status < 200) {
            consume(r, hl);
            continue;
        }
        const char *cl = strcasestr(out->head, "\r\nContent-Length: ");
        size_t blen = cl ? strtoul(cl + 18, NULL, 10) : 0;
        if (head_request)
            blen = 0;
        assert_true(blen < sizeof out->body);
        while (r->len < hl + blen)
            if (!fill(r))
                return false;
        memcpy(out->body, r->buf + hl, blen);
        out->body[blen] = '\0';
        out->body_len = blen;
        consume(r, hl + blen);
        return true;
    }
}

static bool closed_after(struct reader *r)
{
    while (fill(r))
        ;
    return r->eof && r->len == 0;
}

static void test_keepalive_and_extras(void **state)
{
    (void)state;
    struct fixture *f = start_default();
    struct reader r = {.fd = dial(f->port)};
    struct resp resp;
    for (int i = 0; i < 5; i++) {
        send_str(r.fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_true(read_resp(&r, &resp, false));
        assert_int_equal(resp.status, 200);
        assert_string_equal(resp.body, "hello");
        assert_non_null(strstr(resp.head, "\r\nX-Extra: yes\r\n"));
        assert_non_null(strstr(resp.head, "\r\nContent-Type: text/plain\r\n"));
        assert_non_null(strstr(resp.head, "\r\nDate: "));
        assert_null(strstr(resp.head, "Connection:"));
        assert_null(strstr(resp.head, "Set-Cookie"));
    }
    assert_int_equal(atomic_load(&f->probe.double_reply_rc), -1);
    assert_int_equal(atomic_load(&f->probe.bad_header_rc), -1);
    assert_int_equal(atomic_load(&f->probe.crlf_header_rc), -1);
    close(r.fd);
    stop(f);
}

static void test_pipelining(void **state)
{
    (void)state;
    struct fixture *f = start_default();
    struct reader r = {.fd = dial(f->port)};
    send_str(r.fd, "GET /deferred?ms=100 HTTP/1.1\r\nHost: t\r\n\r\n"
                   "POST /len?tag=two HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
                   "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"
                   "GET /things/x%2By HTTP/1.1\r\nHost: t\r\n\r\n");
    struct resp resp;
    assert_true(read_resp(&r, &resp, false));
    assert_int_equal(resp.status, 418);
    assert_string_equal(resp.body, "{\"detail\":\"late reply\"}");
    assert_true(read_resp(&r, &resp, false));
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "{\"len\":3,\"tag\":\"two\",\"id\":\"\"}");
    assert_true(read_resp(&r, &resp, true));
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(resp.head, "Content-Length: 5\r\n"));
    assert_true(read_resp(&r, &resp, false));
    assert_string_equal(resp.body, "{\"len\":0,\"tag\":\"\",\"id\":\"x+y\"}");
    close(r.fd);
    stop(f);
}

static void test_413(void **state)
{
    (void)state;
    struct pd_http_server_config hc;
    pd_http_server_config_init(&hc);
    hc.max_body = 16;
    struct fixture *f = start(&hc);
    struct reader r = {.fd = dial(f->port)};
    struct resp resp;
    send_str(r.fd, "POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 16\r\n\r\n0123456789abcdef");
    assert_true(read_resp(&r, &resp, false));
    assert_int_equal(resp.status, 200);
    send_str(r.fd, "POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n");
    assert_true(read_resp(&r, &resp, false));
    assert_int_equal(resp.status, 413);
    assert_non_null(strstr(resp.head, "Connection: close\r\n"));
    assert_non_null(strstr(resp.body, "\"detail\":"));
    assert_true(closed_after(&r));
    close(r.fd);

    /* Chunked: the limit applies to the decoded size. */
    struct reader r2 = {.fd = dial(f->port)};
    send_str(r2.fd, "POST /len HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "10\r\n0123456789abcdef\r\n1\r\nx\r\n0\r\n\r\n");
    assert_true(read_resp(&r2, &resp, false));
    assert_int_equal(resp.status, 413);
    close(r2.fd);
    stop(f);
}

static void test_431(void **state)
{
    (void)state;
    struct pd_http_server_config hc;
    pd_http_server_config_init(&hc);
    hc.limits.max_head = 256;
    hc.limits.max_target = 128;
    struct fixture *f = start(&hc);
    struct reader r = {.fd = dial(f->port)};
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    send_str(r.fd, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ");
    send_str(r.fd, big);
    send_str(r.fd, "\r\n\r\n");
    struct resp resp;
    assert_true(read_resp(&r, &resp, false));
    assert_int_equal(resp.status, 431);
    assert_non_null(strstr(resp.head, "Connection: close\r\n"));
    assert_true(closed_after(&r));
    close(r.fd);
    stop(f);
}

static void test_cl_te_400_no_smuggling(void **state)
{
    (void)state;
    struct fixture *f = start_default();
    struct reader r = {.fd = dial(f->port)};
    send_str(r.fd, "POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "0\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    struct resp resp;
    assert_true(read_resp(&r, &resp, false));
    assert_int_equal(resp.status, 400);
    assert_non_null(strstr(resp.head, "Connection: close\r\n"));
    assert_non_null(strstr(resp.body, "{\"detail\":\""));
    assert_true(closed_after(&r)); /* and no second response */
    close(r.fd);
    stop(f);
}

static void test_404_405(void **state)
{
    (void)state;
    struct fixture *f = start_default();
    struct reader r = {.fd = dial(f->port)};
    struct resp resp;
    send_str(r.fd, "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(read_resp(&r, &resp, false));
    assert_int_equal(resp.status, 404);
    assert_string_equal(resp.body, "{\"detail\":\"Not Found\"}");
    send_str(r.fd, "DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(read_resp(&r, &resp, false));
    assert_int_equal(resp.status, 405);
    assert_string_equal(resp.body, "{\"detail\":\"Method Not Allowed\"}");
    assert_non_null(strstr(resp.head, "\r\nAllow: GET, HEAD\r\n"));
    send_str(r.fd, "GET /things/a%2Fb HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(read_resp(&r, &resp, false));
    assert_int_equal(resp.status, 400);
    /* Errors from routing keep the connection alive. */
    send_str(r.fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(read_resp(&r, &resp, false));
    assert_int_equal(resp.status, 200);
    close(r.fd);
    stop(f);
}

static void test_deferred_aborted_by_shutdown(void **state)
{
    (void)state;
    struct fixture *f = start_default(); /* grace 500 ms */
    struct reader r = {.fd = dial(f->port)};
    send_str(r.fd, "GET /deferred?ms=600000 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(wait_atomic(&f->probe.deferred_started, 1));
    shutdown_join(f); /* the grace period ends, the handler is aborted, the connection closed */
    assert_int_equal(atomic_load(&f->probe.aborted), 1);
    struct resp resp;
    assert_false(read_resp(&r, &resp, false)); /* no reply after an abort */
    close(r.fd);
    destroy(f);
}

static void test_deferred_aborted_by_client(void **state)
{
    (void)state;
    struct fixture *f = start_default();
    int fd = dial(f->port);
    send_str(fd, "GET /deferred?ms=600000 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(wait_atomic(&f->probe.deferred_started, 1));
    close(fd);
    assert_true(wait_atomic(&f->probe.aborted, 1));
    stop(f);
}

static void test_deferred_completes_during_grace(void **state)
{
    (void)state;
    struct fixture *f = start_default(); /* grace 500 ms; the reply comes after 100 ms */
    struct reader r = {.fd = dial(f->port)};
    send_str(r.fd, "GET /deferred?ms=100 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_true(wait_atomic(&f->probe.deferred_started, 1));
    pd_loop_shutdown(f->loop);
    struct resp resp;
    assert_true(read_resp(&r, &resp, false));
    assert_int_equal(resp.status, 418);
    assert_non_null(strstr(resp.head, "Connection: close\r\n"));
    assert_true(closed_after(&r));
    close(r.fd);
    shutdown_join(f);
    assert_int_equal(atomic_load(&f->probe.aborted), 0);
    destroy(f);
}

static void test_format_helpers(void **state)
{
    (void)state;
    char d[32];
    assert_int_equal(pd_http_format_date(784111777, d, sizeof d), 29);
    assert_string_equal(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(pd_http_format_date(0, d, 10), 0);

    assert_true(pd_http_header_valid("X-A", "b c\td"));
    assert_false(pd_http_header_valid("X A", "b"));
    assert_false(pd_http_header_valid("X-A", "b\r\nc"));
    assert_false(pd_http_header_valid("", "b"));

    struct pd_http_head h = {.status = 404, .content_type = "application/json", .content_length = 22,
                             .close = true, .extra = "Allow: GET\r\n", .extra_len = 12, .now = 784111777};
    char out[512];
    size_t n = pd_http_format_head(&h, out, sizeof out);
    assert_true(n > 0 && n <= pd_http_head_size(&h));
    assert_string_equal(out, "HTTP/1.1 404 Not Found\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                             "Content-Type: application/json\r\nContent-Length: 22\r\nConnection: close\r\n"
                             "Allow: GET\r\n\r\n");
    assert_int_equal(pd_http_format_head(&h, out, 40), 0);
    h = (struct pd_http_head){.status = 204, .content_length = 3, .now = 0};
    n = pd_http_format_head(&h, out, sizeof out);
    assert_null(strstr(out, "Content-Length"));

    size_t len;
    char *j = pd_http_detail_json("a\"b\\c\n\x01\xff\xc3\xa9", &len);
    assert_string_equal(j, "{\"detail\":\"a\\\"b\\\\c\\n\\u0001?\xc3\xa9\"}");
    assert_int_equal(len, strlen(j));
    free(j);
}

static void test_config_validation(void **state)
{
    (void)state;
    struct pd_http_server_config hc;
    struct pd_err err;
    struct pd_router *r = pd_router_new();
    pd_http_server_config_init(&hc);
    assert_null(pd_http_server_new(&hc, NULL, &err));
    hc.limits.max_headers = PD_HTTP_MAX_HEADERS + 1;
    assert_null(pd_http_server_new(&hc, r, &err));
    pd_http_server_config_init(&hc);
    hc.max_connections = 0;
    assert_null(pd_http_server_new(&hc, r, &err));
    pd_router_free(r);
}

int main(void)
{
    pd_log_set_level(PD_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keepalive_and_extras),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_413),
        cmocka_unit_test(test_431),
        cmocka_unit_test(test_cl_te_400_no_smuggling),
        cmocka_unit_test(test_404_405),
        cmocka_unit_test(test_deferred_aborted_by_shutdown),
        cmocka_unit_test(test_deferred_aborted_by_client),
        cmocka_unit_test(test_deferred_completes_during_grace),
        cmocka_unit_test(test_format_helpers),
        cmocka_unit_test(test_config_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
