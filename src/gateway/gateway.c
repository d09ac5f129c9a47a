/*
 * gateway.c - the `paddock gateway` process (see gateway.h): policy, listeners, admin server,
 * reload, budgets, metrics. The proxy engine itself is proxy.c.
 */
#include "gateway/gateway.h"
#include "gateway/ossl.h"

#include <errno.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <jansson.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fdpass.h"
#include "core/log.h"
#include "core/metrics.h"
#include "gateway/confine.h"
#include "gateway/dns_server.h"
#include "gateway/proxy.h"
#include "http/admin.h"
#include "http/server.h"
#include "http/server_metrics.h"

#define COMPONENT "gateway"
#define RATE_MAX_KEYS 4096
#define BUDGET_MAX_KEYS 1024

/* Per-worker proxy states, so a reload can post a recheck to each (set by px_worker_init's
 * wrapper). */
struct gw_state {
    struct pd_gateway gw;
    struct px_worker *workers[PD_LOOP_MAX_WORKERS];
};

struct pd_gw_policy *pd_gateway_policy(struct pd_gateway *gw)
{
    pthread_mutex_lock(&gw->mu);
    struct pd_gw_policy *p = pd_gw_policy_ref(gw->policy);
    pthread_mutex_unlock(&gw->mu);
    return p;
}

struct ssl_ctx_st *pd_gateway_tls_ctx(struct pd_gateway *gw)
{
    pthread_mutex_lock(&gw->mu);
    SSL_CTX *ctx = gw->tls_ctx;
    if (ctx)
        pd_ossl()->SSL_CTX_up_ref(ctx); /* a context exists: OpenSSL is loaded */
    pthread_mutex_unlock(&gw->mu);
    return ctx;
}

static void ctx_free(SSL_CTX *ctx)
{
    if (ctx)
        pd_ossl()->SSL_CTX_free(ctx);
}

/* The gateway makes TLS connections itself only for credentials (aliases, upgrade_http): without
 * any, no TLS context is built and OpenSSL is not even loaded (ossl.h: that saves ~1.7 MiB RSS, and
 * building a context with the system trust store a few MiB more). */
static bool needs_tls(const struct pd_gw_policy *p)
{
    return pd_gw_policy_credential_count(p) > 0;
}

static const char *ca_of(const struct pd_gw_policy *p)
{
    const char *ca = pd_gw_policy_upstream(p)->ca_file;
    return ca ? ca : "";
}

int pd_gateway_check(const char *config_path)
{
    struct pd_err err = {{0}};
    struct pd_gw_policy *p = pd_gw_policy_load(config_path, NULL, &err);
    if (!p) {
        fprintf(stderr, "paddock gateway: %s\n", err.msg);
        return 1;
    }
    json_t *j = pd_gw_policy_describe(p);
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    pd_gw_policy_unref(p);
    if (!s) {
        fprintf(stderr, "paddock gateway: out of memory\n");
        return 1;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

/* ---------------------------------------------------------------- admin routes */

static double conns_gauge(void *arg)
{
    return (double)atomic_load(&((struct pd_gateway *)arg)->nconns);
}

static int add_metrics(struct pd_gateway *gw, struct pd_err *err)
{
    static const char *const req_labels[] = {"decision", "error"};
    double buckets[16];
    if (pd_metrics_buckets_exponential(0.0005, 2.0, 16, buckets, err) != 0)
        return -1;
    struct pd_metric_family *f;
    gw->m_requests =
        pd_metrics_counter(gw->reg, "paddock_gateway_requests_total",
                           "Requests and tunnels by decision and error code.", req_labels, 2, err);
    if (!gw->m_requests)
        return -1;
    if (!(f = pd_metrics_gauge(gw->reg, "paddock_gateway_tunnels_active", "Open CONNECT tunnels.",
                               NULL, 0, err)))
        return -1;
    gw->m_tunnels = pd_metric_with(f);
    if (!(f = pd_metrics_counter(gw->reg, "paddock_gateway_bytes_sent_total",
                                 "Bytes sent upstream on behalf of agents.", NULL, 0, err)))
        return -1;
    gw->m_bytes_sent = pd_metric_with(f);
    if (!(f = pd_metrics_counter(gw->reg, "paddock_gateway_bytes_received_total",
                                 "Bytes relayed from upstreams to agents.", NULL, 0, err)))
        return -1;
    gw->m_bytes_received = pd_metric_with(f);
    if (!(f = pd_metrics_counter(gw->reg, "paddock_gateway_upstream_connect_failures_total",
                                 "Failed connection attempts to upstream addresses.", NULL, 0,
                                 err)))
        return -1;
    gw->m_connect_failures = pd_metric_with(f);
    if (!(f = pd_metrics_counter(gw->reg, "paddock_gateway_upstream_pool_hits_total",
                                 "Requests sent on a pooled (kept-alive) upstream connection.",
                                 NULL, 0, err)))
        return -1;
    gw->m_pool_hits = pd_metric_with(f);
    if (!(f = pd_metrics_histogram(gw->reg, "paddock_gateway_request_duration_seconds",
                                   "Time from a request head to the end of its response or tunnel.",
                                   NULL, 0, buckets, 16, err)))
        return -1;
    gw->m_duration = pd_metric_with(f);
    if (!pd_metrics_gauge_fn(gw->reg, "paddock_gateway_connections", "Open client connections.",
                             conns_gauge, gw, err))
        return -1;
    return 0;
}

/* ---------------------------------------------------------------- service + reload */

static int svc_worker_init(struct pd_worker *w, void *svc, void **state, struct pd_err *err)
{
    struct gw_state *st = svc;
    if (px_worker_init(w, &st->gw, state, err) != 0)
        return -1;
    st->workers[pd_worker_index(w)] = *state;
    return 0;
}

static void svc_accept(struct pd_worker *w, void *svc, void *state, uv_tcp_t *client, size_t l)
{
    px_accept(w, &((struct gw_state *)svc)->gw, state, client, l);
}

static void svc_shutdown(struct pd_worker *w, void *svc, void *state)
{
    px_shutdown(w, &((struct gw_state *)svc)->gw, state);
}

static void svc_force_close(struct pd_worker *w, void *svc, void *state)
{
    px_force_close(w, &((struct gw_state *)svc)->gw, state);
}

static void svc_worker_stop(struct pd_worker *w, void *svc, void *state)
{
    px_worker_stop(w, &((struct gw_state *)svc)->gw, state);
}

static void svc_worker_fini(struct pd_worker *w, void *svc, void *state)
{
    struct gw_state *st = svc;
    if (state && st->workers[pd_worker_index(w)] == state)
        st->workers[pd_worker_index(w)] = NULL;
    px_worker_fini(w, &st->gw, state);
}

struct recheck_msg {
    struct gw_state *st;
    struct pd_gw_policy *p;
};

static void recheck_on_worker(struct pd_worker *w, void *arg)
{
    struct recheck_msg *m = arg;
    struct px_worker *pw = m->st->workers[pd_worker_index(w)];
    if (pw)
        px_recheck(pw, m->p); /* consumes the reference */
    else
        pd_gw_policy_unref(m->p);
    free(m);
}

static void on_reload(struct pd_loop *l, void *user)
{
    struct gw_state *st = user;
    struct pd_gateway *gw = &st->gw;
    struct pd_err err = {{0}};
    struct pd_gw_policy *cur = pd_gateway_policy(gw);
    struct pd_gw_policy *np = pd_gw_policy_load(gw->config_path, cur, &err);
    if (np && gw->sandbox_id && pd_gw_policy_set_sandbox_id(np, gw->sandbox_id) != 0) {
        pd_gw_policy_unref(np);
        np = NULL;
        pd_err_set(&err, "out of memory");
    }
    if (!np) {
        pd_log(PD_LOG_ERROR, COMPONENT, "reload_failed", PD_LSTR("config", gw->config_path),
               PD_LSTR("error", err.msg), PD_LSTR("action", "kept the running policy"));
        pd_gw_policy_unref(cur);
        return;
    }
    /* The TLS context is rebuilt on every reload that needs one, so a CA file replaced in place (or
     * an updated system trust store) takes effect like any other change; a CA that no longer loads
     * refuses the reload. Connections hold their own reference to the context they started with. */
    SSL_CTX *nctx = NULL;
    char *nca = NULL;
    if (needs_tls(np)) {
        nctx = px_tls_ctx_new(ca_of(np), &err);
        nca = nctx ? strdup(ca_of(np)) : NULL;
        if (!nctx || !nca) {
            pd_log(PD_LOG_ERROR, COMPONENT, "reload_failed", PD_LSTR("config", gw->config_path),
                   PD_LSTR("error", nctx ? "out of memory" : err.msg),
                   PD_LSTR("action", "kept the running policy"));
            ctx_free(nctx);
            pd_gw_policy_unref(np);
            pd_gw_policy_unref(cur);
            return;
        }
    }
    pthread_mutex_lock(&gw->mu);
    struct pd_gw_policy *old = gw->policy;
    gw->policy = np;
    SSL_CTX *octx = NULL;
    char *oca = NULL;
    if (nctx) {
        octx = gw->tls_ctx;
        oca = gw->tls_ca;
        gw->tls_ctx = nctx;
        gw->tls_ca = nca;
    }
    pthread_mutex_unlock(&gw->mu);
    ctx_free(octx);
    free(oca);
    pd_gw_policy_unref(old);
    pd_gw_policy_unref(cur);

    size_t nr = pd_gw_policy_rate_count(np);
    const char **keys = calloc(nr ? nr : 1, sizeof *keys);
    if (keys) {
        for (size_t i = 0; i < nr; i++)
            keys[i] = pd_gw_policy_rate_rule(np, i)->key;
        pd_ratelimit_prune(gw->rl, keys, nr);
        free(keys);
    }
    pd_log(PD_LOG_INFO, COMPONENT, "reloaded", PD_LSTR("config", gw->config_path),
           PD_LSTR("sandbox_id", pd_gw_policy_sandbox_id(np)));
    for (unsigned i = 0; i < pd_loop_worker_count(l); i++) {
        struct recheck_msg *m = malloc(sizeof *m);
        if (!m)
            continue;
        m->st = st;
        m->p = pd_gateway_policy(gw);
        if (pd_worker_post(pd_loop_worker(l, i), recheck_on_worker, m) != 0) {
            pd_gw_policy_unref(m->p);
            free(m);
        }
    }
}

/* ---------------------------------------------------------------- run */

/* The config path made absolute (not resolved: a symlink swapped by a deployment is followed anew
 * at each reload). Confinement chdir()s to "/", and the policy resolves value_file, ca_file and
 * state_file against the config's directory, so every later reload needs it absolute. Caller
 * frees; NULL with err set on failure. */
static char *absolute_path(const char *path, struct pd_err *err)
{
    if (path[0] == '/') {
        char *s = strdup(path);
        if (!s)
            pd_err_set(err, "out of memory");
        return s;
    }
    char *cwd = getcwd(NULL, 0);
    if (!cwd) {
        pd_err_set(err, "cannot get the working directory to make %s absolute: %s", path,
                   strerror(errno));
        return NULL;
    }
    size_t n = strlen(cwd) + 1 + strlen(path) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", cwd, path);
    else
        pd_err_set(err, "out of memory");
    free(cwd);
    return s;
}

/* --listeners-from: the launcher's socket is also its lifeline. The launcher keeps its end open
 * while the sandbox runs; when it ends, however it ends (kill -9 included: a parent-death signal
 * does not survive the switch to --user), the gateway reads EOF and shuts down, so no gateway
 * outlives its sandbox holding the sandbox's sockets. */
struct lifeline {
    int fd;
    struct pd_loop *loop;
    atomic_bool stopping;
    pthread_t thread;
    bool running;
};

static void *lifeline_watch(void *arg)
{
    struct lifeline *ll = arg;
    for (;;) {
        char b[16];
        ssize_t n = read(ll->fd, b, sizeof b);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        if (!atomic_load(&ll->stopping)) {
            pd_log(PD_LOG_WARN, COMPONENT, "launcher_gone",
                   PD_LSTR("action", "shutting down: the sandbox this gateway serves has ended"));
            pd_loop_shutdown(ll->loop);
        }
        return NULL;
    }
}

static void lifeline_stop(struct lifeline *ll)
{
    if (ll->fd < 0)
        return;
    if (ll->running) {
        atomic_store(&ll->stopping, true);
        shutdown(ll->fd, SHUT_RDWR); /* wakes the blocked read */
        pthread_join(ll->thread, NULL);
        ll->running = false;
    }
    close(ll->fd);
    ll->fd = -1;
}

/* --listeners-from: wait for the launcher's message (it comes once the sandbox exists). */
static int receive_listeners(struct pd_gateway_opts *o, struct pd_err *err)
{
    char msg[16];
    int fds[3];
    ssize_t n = pd_fdpass_recv(o->listeners_from, msg, sizeof msg, fds, 3);
    int e = errno;
    /* The socket stays open (pd_gateway_run watches it: the launcher's end closes when it dies). */
    if (n <= 0 || n != 9 || memcmp(msg, "listeners", 9) != 0 || fds[0] < 0 || fds[1] < 0 ||
        fds[2] < 0) {
        for (int i = 0; i < 3; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        pd_err_set(err, "%s",
                   n < 0    ? strerror(e)
                   : n == 0 ? "the launcher closed the socket before sending the "
                              "listeners"
                            : "expected one 'listeners' message with three fds");
        return -1;
    }
    if (o->nspecs >= PD_LOOP_MAX_LISTENERS - 1 || o->ndns >= sizeof o->dns / sizeof o->dns[0] ||
        pd_listen_check_fd(fds[0], err) != 0 || pd_listen_check_fd(fds[2], err) != 0) {
        if (!err->msg[0])
            pd_err_set(err, "too many listeners");
        for (int i = 0; i < 3; i++)
            close(fds[i]);
        return -1;
    }
    o->specs[o->nspecs++] = (struct pd_listen_spec){.kind = PD_LISTEN_FD, .fd = fds[0]};
    o->dns[o->ndns] = (struct pd_listen_spec){.kind = PD_LISTEN_FD, .fd = fds[2]};
    o->dns_udp_fds[o->ndns++] = fds[1];
    return 0;
}

int pd_gateway_run(struct pd_gateway_opts *o)
{
    struct pd_err err = {{0}};
    int status = 1;
    size_t used = 0;
    struct gw_state *st = calloc(1, sizeof *st);
    struct pd_http_metrics *hm = NULL;
    struct pd_router *router = NULL;
    struct pd_http_server *admin = NULL;
    struct pd_dns_server *dns = NULL;
    bool dns_taken = false;
    struct lifeline ll = {.fd = -1, .loop = NULL, .running = false};
    char *config_abs = NULL;
    /* Relay read buffers (PX_READ_SIZE) come and go per read: without this, freeing one at the top
     * of a worker's arena trims the arena (madvise) and the next read faults the pages back in. */
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
    if (!st) {
        fprintf(stderr, "paddock gateway: out of memory\n");
        goto out_specs;
    }
    struct pd_gateway *gw = &st->gw;
    pthread_mutex_init(&gw->mu, NULL);
    if (!(config_abs = absolute_path(o->config_path, &err))) {
        fprintf(stderr, "paddock gateway: %s\n", err.msg);
        goto out;
    }
    gw->config_path = config_abs;
    gw->sandbox_id = o->sandbox_id;
    gw->policy = pd_gw_policy_load(gw->config_path, NULL, &err);
    if (gw->policy && o->sandbox_id &&
        pd_gw_policy_set_sandbox_id(gw->policy, o->sandbox_id) != 0) {
        pd_gw_policy_unref(gw->policy);
        gw->policy = NULL;
        pd_err_set(&err, "out of memory");
    }
    if (!gw->policy) {
        fprintf(stderr, "paddock gateway: %s\n", err.msg);
        goto out;
    }
    if (o->has_listeners_from) {
        if (receive_listeners(o, &err) != 0) {
            fprintf(stderr, "paddock gateway: --listeners-from %d: %s\n", o->listeners_from,
                    err.msg);
            goto out;
        }
        ll.fd = o->listeners_from; /* owned by ll from here */
        o->has_listeners_from = false;
    }
    if (o->nspecs == 0) {
        size_t n = pd_gw_policy_listen_count(gw->policy);
        if (n > PD_LOOP_MAX_LISTENERS - 1) {
            fprintf(stderr, "paddock gateway: too many listeners in %s (at most %d)\n",
                    o->config_path, PD_LOOP_MAX_LISTENERS - 1);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            if (pd_listen_spec_parse(pd_gw_policy_listen(gw->policy, i), &o->specs[i], &err) != 0) {
                fprintf(stderr, "paddock gateway: listen: %s\n", err.msg);
                goto out;
            }
            o->nspecs++;
        }
    }
    if (o->ndns == 0) {
        const struct pd_gw_dns *dc = pd_gw_policy_dns(gw->policy);
        if (dc->nlisten > sizeof o->dns / sizeof o->dns[0]) {
            fprintf(stderr, "paddock gateway: too many dns.listen entries in %s (at most %zu)\n",
                    o->config_path, sizeof o->dns / sizeof o->dns[0]);
            goto out;
        }
        for (size_t i = 0; i < dc->nlisten; i++) {
            if (pd_listen_spec_parse(dc->listen[i], &o->dns[i], &err) != 0) {
                fprintf(stderr, "paddock gateway: dns.listen: %s\n", err.msg);
                goto out;
            }
            o->ndns++;
        }
    }
    if (o->nspecs == 0 && o->ndns == 0) {
        fprintf(stderr,
                "paddock gateway: no listener: give --listen ADDR:PORT, --listen-fd N or "
                "--dns-listen ADDR:PORT, or set `listen` or `dns.listen` in %s\n",
                o->config_path);
        status = 2;
        goto out;
    }
    const char *admin_text = o->admin ? o->admin : pd_gw_policy_admin_listen(gw->policy);
    struct pd_listen_spec admin_spec;
    if (admin_text && pd_listen_spec_parse(admin_text, &admin_spec, &err) != 0) {
        fprintf(stderr, "paddock gateway: admin listener: %s\n", err.msg);
        goto out;
    }
    if (needs_tls(gw->policy) && !(gw->tls_ctx = px_tls_ctx_new(ca_of(gw->policy), &err))) {
        fprintf(stderr, "paddock gateway: %s\n", err.msg);
        goto out;
    }
    if (!(gw->tls_ca = strdup(gw->tls_ctx ? ca_of(gw->policy) : ""))) {
        fprintf(stderr, "paddock gateway: out of memory\n");
        goto out;
    }
    if (!(gw->rl = pd_ratelimit_new(RATE_MAX_KEYS, &err)) ||
        !(gw->budget =
              pd_budget_open(pd_gw_policy_state_file(gw->policy), BUDGET_MAX_KEYS, &err))) {
        fprintf(stderr, "paddock gateway: %s\n", err.msg);
        goto out;
    }
    if (pd_gw_policy_budget_count(gw->policy) > 0 && !pd_gw_policy_state_file(gw->policy))
        pd_log(PD_LOG_WARN, COMPONENT, "budgets_not_persisted",
               PD_LSTR("reason", "no state_file: byte budgets start from zero at every start"));
    if (!(gw->reg = pd_metrics_new(&err)) || add_metrics(gw, &err) != 0 ||
        !(hm = pd_http_metrics_new(gw->reg, &err))) {
        fprintf(stderr, "paddock gateway: metrics: %s\n", err.msg);
        goto out;
    }
    router = pd_router_new();
    if (!router || pd_http_admin_routes(router, gw->reg, &err) != 0) {
        fprintf(stderr, "paddock gateway: admin routes: %s\n", router ? err.msg : "out of memory");
        goto out;
    }
    struct pd_http_server_config hc;
    pd_http_server_config_init(&hc);
    hc.component = "gateway-admin";
    hc.metrics = hm;
    hc.max_connections = 64;
    hc.max_body = 0;
    if (!(admin = pd_http_server_new(&hc, router, &err))) {
        fprintf(stderr, "paddock gateway: admin server: %s\n", err.msg);
        goto out;
    }
    struct pd_loop_config lc;
    pd_loop_config_init(&lc);
    lc.workers = o->workers;
    lc.component = COMPONENT;
    if (!(gw->loop = pd_loop_new(&lc, &err))) {
        fprintf(stderr, "paddock gateway: %s\n", err.msg);
        goto out;
    }
    gw->ops = (struct pd_loop_service){
        .name = "gateway",
        .worker_init = svc_worker_init,
        .accept = svc_accept,
        .shutdown = svc_shutdown,
        .force_close = svc_force_close,
        .worker_stop = svc_worker_stop,
        .worker_fini = svc_worker_fini,
    };
    int sid = pd_loop_add_service(gw->loop, &gw->ops, st, &err);
    int asid = sid >= 0 && admin_text ? pd_http_server_attach(admin, gw->loop, &err) : 0;
    if (sid < 0 || asid < 0) {
        fprintf(stderr, "paddock gateway: %s\n", err.msg);
        goto out;
    }
    for (; used < o->nspecs; used++) {
        if (pd_loop_add_listener(gw->loop, &o->specs[used], sid, &err) < 0) {
            used++;
            fprintf(stderr, "paddock gateway: listener: %s\n", err.msg);
            goto out;
        }
    }
    if (admin_text && pd_loop_add_listener(gw->loop, &admin_spec, asid, &err) < 0) {
        fprintf(stderr, "paddock gateway: admin listener: %s\n", err.msg);
        goto out;
    }
    dns_taken = true; /* pd_dns_server_new owns the inherited DNS fds from here, on every path */
    if (o->ndns > 0 &&
        !(dns = pd_dns_server_new(gw, gw->loop, o->dns, o->dns_udp_fds, o->ndns, gw->reg, &err))) {
        fprintf(stderr, "paddock gateway: %s\n", err.msg);
        goto out;
    }
    /* Every listener, the policy (credential files), the TLS context and the budget state file
     * are open, and no worker thread exists yet: give up root, capabilities and syscalls now. */
    if (ll.fd >= 0) {
        ll.loop = gw->loop;
        if (pthread_create(&ll.thread, NULL, lifeline_watch, &ll) != 0) {
            fprintf(stderr, "paddock gateway: cannot start the launcher watch thread\n");
            goto out;
        }
        ll.running = true;
    }
    struct pd_confine_opts co = {.user = o->user, .no_seccomp = o->no_seccomp};
    if (pd_confine(&co, &err) != 0) {
        fprintf(stderr, "paddock gateway: %s\n", err.msg);
        goto out;
    }
    pd_loop_set_reload(gw->loop, on_reload, st);
    pd_log(PD_LOG_INFO, COMPONENT, "starting", PD_LSTR("config", o->config_path),
           PD_LSTR("sandbox_id", pd_gw_policy_sandbox_id(gw->policy)),
           PD_LUINT("credentials", pd_gw_policy_credential_count(gw->policy)));
    if (pd_loop_run(gw->loop, &err) != 0) {
        fprintf(stderr, "paddock gateway: %s\n", err.msg);
        goto out;
    }
    status = 0;
out:
    if (gw->budget) {
        struct pd_err ferr = {{0}};
        if (pd_budget_flush(gw->budget, &ferr) != 0)
            pd_log(PD_LOG_ERROR, COMPONENT, "budget_flush_failed", PD_LSTR("error", ferr.msg));
    }
    lifeline_stop(&ll);
    pd_loop_free(gw->loop);
    pd_dns_server_free(dns);
    pd_http_server_free(admin);
    pd_router_free(router);
    pd_http_metrics_free(hm);
    pd_metrics_free(gw->reg);
    pd_budget_free(gw->budget);
    pd_ratelimit_free(gw->rl);
    pd_gw_policy_unref(gw->policy);
    ctx_free(gw->tls_ctx);
    free(gw->tls_ca);
    pthread_mutex_destroy(&gw->mu);
    free(st);
    free(config_abs);
out_specs:
    if (o->has_listeners_from)
        close(o->listeners_from);
    for (size_t k = used; k < o->nspecs; k++)
        if (o->specs[k].kind == PD_LISTEN_FD)
            close(o->specs[k].fd);
    for (size_t k = 0; !dns_taken && k < o->ndns; k++)
        if (o->dns[k].kind == PD_LISTEN_FD) {
            close(o->dns[k].fd);
            close(o->dns_udp_fds[k]);
        }
    return status;
}
