/*
 * testd.c - paddock-testd: a test-only daemon that mounts the HTTP server on a few routes, so the black-box
 * tests (tests/integration/test_http_server.py) can exercise framing, limits, keep-alive and shutdown over
 * real sockets. Never installed.
 *
 *   GET  /healthz       {"status":"ok"}
 *   POST /echo          {"method","path","query","body_len","body","headers":{lowercased name: value}}
 *   GET  /slow?ms=N     {"slept_ms":N} after N ms (deferred reply on a uv timer; abort stops the timer)
 *   GET  /items/{id}    {"id": id}
 *   GET  /error         500 {"detail": ...}
 *   GET  /metrics       Prometheus text: the server's own paddock_http_* metrics
 *
 * Exit status: 0 after a shutdown, 1 when startup fails, 2 on a usage error.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/listen.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "http/admin.h"
#include "http/server.h"

#define MAX_SPECS PD_LOOP_MAX_LISTENERS
#define SLOW_MAX_MS 600000

static json_t *str_or_null(struct pd_slice s)
{
    json_t *j = json_stringn(s.p ? s.p : "", s.n);
    return j ? j : json_null();
}

static void h_echo(struct pd_http_ctx *ctx, const struct pd_http_req *req, void *user)
{
    (void)user;
    json_t *hdrs = json_object();
    for (size_t i = 0; hdrs && i < req->nheaders; i++) {
        char name[256];
        size_t n = req->headers[i].name.n < sizeof name - 1 ? req->headers[i].name.n : sizeof name - 1;
        for (size_t k = 0; k < n; k++)
            name[k] = (char)tolower((unsigned char)req->headers[i].name.p[k]);
        name[n] = '\0';
        json_object_set_new(hdrs, name, str_or_null(req->headers[i].value));
    }
    json_t *o = json_object();
    if (o && hdrs) {
        json_object_set_new(o, "method", str_or_null(req->method));
        json_object_set_new(o, "path", str_or_null(req->path));
        json_object_set_new(o, "query", str_or_null(req->query));
        json_object_set_new(o, "body_len", json_integer((json_int_t)req->body_len));
        json_object_set_new(o, "body", str_or_null((struct pd_slice){req->body, req->body_len}));
        json_object_set_new(o, "headers", hdrs);
        hdrs = NULL;
    }
    json_decref(hdrs);
    pd_http_reply_json(ctx, 200, o);
}

struct slow {
    uv_timer_t timer;
    struct pd_http_ctx *ctx;
    unsigned long ms;
};

static void slow_closed(uv_handle_t *h)
{
    free(h->data);
}

static void slow_fire(uv_timer_t *t)
{
    struct slow *s = t->data;
    pd_http_reply_json(s->ctx, 200, json_pack("{s:I}", "slept_ms", (json_int_t)s->ms));
    uv_close((uv_handle_t *)&s->timer, slow_closed);
}

static void slow_abort(struct pd_http_ctx *ctx, void *arg)
{
    (void)ctx;
    struct slow *s = arg;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, slow_closed);
}

static void h_slow(struct pd_http_ctx *ctx, const struct pd_http_req *req, void *user)
{
    (void)user;
    char buf[32];
    ssize_t n = pd_http_query_get(req, "ms", buf, sizeof buf);
    char *end = NULL;
    errno = 0;
    unsigned long ms = n > 0 ? strtoul(buf, &end, 10) : 0;
    if (n <= 0 || errno || !end || *end || buf[0] == '-' || ms > SLOW_MAX_MS) {
        pd_http_reply_error(ctx, 422, "query parameter ms must be an integer 0..%d", SLOW_MAX_MS);
        return;
    }
    struct slow *s = calloc(1, sizeof *s);
    if (!s) {
        pd_http_reply_error(ctx, 503, "out of memory");
        return;
    }
    s->ctx = ctx;
    s->ms = ms;
    s->timer.data = s;
    uv_timer_init(pd_http_ctx_uv(ctx), &s->timer);
    uv_timer_start(&s->timer, slow_fire, ms, 0);
    pd_http_on_abort(ctx, slow_abort, s);
    /* Lets the tests know the request is in flight before they signal the daemon. */
    pd_log(PD_LOG_INFO, "testd", "slow_started", PD_LUINT("ms", ms));
}

static void h_item(struct pd_http_ctx *ctx, const struct pd_http_req *req, void *user)
{
    (void)user;
    const char *id = pd_http_param(req, "id");
    json_t *j = json_string(id ? id : "");
    pd_http_reply_json(ctx, 200, json_pack("{s:o}", "id", j ? j : json_null()));
}

static void h_error(struct pd_http_ctx *ctx, const struct pd_http_req *req, void *user)
{
    (void)req;
    (void)user;
    pd_http_reply_error(ctx, 500, "deliberate error from %s", "/error");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: paddock-testd [--listen ADDR:PORT]... [--listen-fd N]... [--workers N] [--max-body N]\n"
               "                     [--max-head N] [--header-timeout-ms N] [--body-timeout-ms N]\n"
               "                     [--idle-timeout-ms N] [--write-timeout-ms N] [--max-connections N]\n"
               "                     [--shutdown-grace-ms N] [--log-level LEVEL]\n"
               "Without --listen/--listen-fd (and no LISTEN_FDS), listens on 127.0.0.1:0.\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "paddock-testd: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return 2;
}

static bool parse_num(const char *s, unsigned long max, unsigned long *out)
{
    if (!s || !*s || !isdigit((unsigned char)s[0]))
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    struct pd_listen_spec specs[MAX_SPECS];
    size_t nspecs = 0;
    struct pd_loop_config lc;
    struct pd_http_server_config hc;
    struct pd_err err = {{0}};
    pd_loop_config_init(&lc);
    pd_http_server_config_init(&hc);
    lc.component = "http";

    for (int i = 1; i < argc; i += 2) {
        /* Every option takes one value: i steps over the pair. */
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0)
            return usage_error("unexpected argument '%s' (see --help)", a);
        if (i + 1 >= argc) {
            const char *known[] = {"--listen", "--listen-fd", "--workers", "--max-body", "--max-head",
                                   "--header-timeout-ms", "--body-timeout-ms", "--idle-timeout-ms",
                                   "--write-timeout-ms", "--max-connections", "--shutdown-grace-ms",
                                   "--log-level"};
            for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
                if (strcmp(a, known[k]) == 0)
                    return usage_error("option '%s' needs a value", a);
            return usage_error("unknown option '%s' (see --help)", a);
        }
        const char *v = argv[i + 1];
        unsigned long n = 0;
        if (strcmp(a, "--listen") == 0 || strcmp(a, "--listen-fd") == 0) {
            if (nspecs >= MAX_SPECS)
                return usage_error("too many listeners (at most %d)", MAX_SPECS);
            int rc = strcmp(a, "--listen") == 0 ? pd_listen_spec_parse(v, &specs[nspecs], &err)
                                                : pd_listen_spec_fd(v, &specs[nspecs], &err);
            if (rc != 0)
                return usage_error("%s: %s", a, err.msg);
            nspecs++;
        } else if (strcmp(a, "--log-level") == 0) {
            enum pd_log_level lv;
            if (!pd_log_level_parse(v, &lv))
                return usage_error("--log-level '%s' is not a log level (debug, info, warn, error, off)", v);
            pd_log_set_level(lv);
        } else {
            struct {
                const char *name;
                unsigned long max;
            } const nums[] = {
                {"--workers", PD_LOOP_MAX_WORKERS}, {"--max-body", 1UL << 30},
                {"--max-head", 1024 * 1024},        {"--header-timeout-ms", 3600000},
                {"--body-timeout-ms", 3600000},     {"--idle-timeout-ms", 3600000},
                {"--write-timeout-ms", 3600000},    {"--max-connections", 1000000},
                {"--shutdown-grace-ms", 3600000},
            };
            size_t k = 0;
            for (; k < sizeof nums / sizeof nums[0]; k++)
                if (strcmp(a, nums[k].name) == 0)
                    break;
            if (k == sizeof nums / sizeof nums[0])
                return usage_error("unknown option '%s' (see --help)", a);
            if (!parse_num(v, nums[k].max, &n))
                return usage_error("%s: '%s' is not a number in range", a, v);
            switch (k) {
            case 0: lc.workers = (unsigned)n; break;
            case 1: hc.max_body = n; break;
            case 2: hc.limits.max_head = n; if (hc.limits.max_target > n) hc.limits.max_target = n; break;
            case 3: hc.header_timeout_ms = (unsigned)n; break;
            case 4: hc.body_timeout_ms = (unsigned)n; break;
            case 5: hc.idle_timeout_ms = (unsigned)n; break;
            case 6: hc.write_timeout_ms = (unsigned)n; break;
            case 7: hc.max_connections = (unsigned)n; break;
            case 8: lc.shutdown_grace_ms = (unsigned)n; break;
            default: break;
            }
        }
    }
    if (pd_listen_systemd(specs, MAX_SPECS, &nspecs, true, &err) != 0) {
        fprintf(stderr, "paddock-testd: %s\n", err.msg);
        return 1;
    }
    if (nspecs == 0 && pd_listen_spec_parse("127.0.0.1:0", &specs[nspecs++], &err) != 0)
        return 1;

    int status = 1;
    struct pd_metrics *reg = pd_metrics_new(&err);
    struct pd_http_metrics *hm = reg ? pd_http_metrics_new(reg, &err) : NULL;
    struct pd_router *router = pd_router_new();
    struct pd_http_server *srv = NULL;
    struct pd_loop *loop = NULL;
    size_t used = 0;
    if (!router || !hm || pd_http_admin_routes(router, reg, &err) ||
        pd_router_add(router, "POST", "/echo", h_echo, NULL, &err) ||
        pd_router_add(router, "GET", "/slow", h_slow, NULL, &err) ||
        pd_router_add(router, "GET", "/items/{id}", h_item, NULL, &err) ||
        pd_router_add(router, "GET", "/error", h_error, NULL, &err)) {
        if (!router)
            pd_err_set(&err, "out of memory");
        goto out;
    }
    hc.metrics = hm;
    srv = pd_http_server_new(&hc, router, &err);
    if (!srv)
        goto out;
    loop = pd_loop_new(&lc, &err);
    if (!loop)
        goto out;
    int sid = pd_http_server_attach(srv, loop, &err);
    if (sid < 0)
        goto out;
    for (; used < nspecs; used++)
        if (pd_loop_add_listener(loop, &specs[used], sid, &err) < 0) {
            used++;
            goto out;
        }
    if (pd_loop_run(loop, &err) != 0)
        goto out;
    status = 0;
out:
    if (status != 0)
        fprintf(stderr, "paddock-testd: %s\n", err.msg);
    /* Inherited fds not handed to the loop are still ours. */
    for (size_t k = used; k < nspecs; k++)
        if (specs[k].kind == PD_LISTEN_FD)
            close(specs[k].fd);
    pd_loop_free(loop);
    pd_http_server_free(srv);
    pd_router_free(router);
    pd_http_metrics_free(hm);
    pd_metrics_free(reg);
    pd_log_shutdown();
    return status;
}
