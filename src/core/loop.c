/*
 * loop.c - worker-per-core libuv loops, listeners, signals and graceful shutdown (see loop.h).
 *
 * Listening sockets are shared, not SO_REUSEPORT: each listener is opened once and every worker gets a dup()
 * of it, i.e. one kernel accept queue polled by N epoll instances. Reasons:
 *   - inherited fds (--listen-fd, systemd) can only be shared this way, so one code path serves both kinds;
 *   - SO_REUSEPORT lets any other process of the same uid bind the same port and receive a share of our
 *     connections (agents may run as that uid), and closing one socket of a reuseport group resets the
 *     connections queued on it, whereas with one shared queue a worker that stops early loses nothing;
 *   - a busy worker does not strand connections the kernel hashed to it: whichever worker is free accepts.
 * The cost is a thundering herd (every idle worker wakes per connection, the losers get EAGAIN, which libuv
 * handles); with one worker per core that is a handful of wakeups, acceptable for a control plane.
 *
 * Threads: the main thread owns `struct pd_loop` and the main uv loop (signals, the main async). Each worker
 * thread owns its `struct pd_worker` except the fields under w->mu (post queue, commands, closed), which
 * other threads use through pd_worker_post() and the main thread's commands. l->mu guards the requests and
 * completion counters that workers and foreign threads report to the main loop.
 */
#include "core/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* After force_close, how long services get to release their work before the worker gives up on them. */
#define STUCK_MS 2000

struct post_item {
    struct post_item *next;
    void (*fn)(struct pd_worker *w, void *arg);
    void *arg;
};

/*
 * Worker states. Each says what it waits for and which timeout applies:
 *   INIT      handles initialised, loop not yet running (startup on the main thread).
 *   RUNNING   accepting; waits for connections and posts; no timeout.
 *   DRAINING  listeners closed, services finishing in-flight work; waits for active == 0;
 *             timer: shutdown_grace_ms, then FORCED.
 *   FORCED    services told to close everything; waits for active == 0; timer: STUCK_MS, then the worker
 *             closes the remaining handles itself (logged as an error: a service leaked work).
 *   FINISHING own handles (listeners, timer, async) closing; uv_run returns once no handle is left.
 */
enum worker_state { WS_INIT, WS_RUNNING, WS_DRAINING, WS_FORCED, WS_FINISHING };

struct wlistener {
    uv_tcp_t tcp;
    uv_tcp_t spare; /* accepts-and-drops one connection when malloc fails, so the listener keeps polling */
    struct pd_worker *w;
    size_t index;
    bool open;
    bool spare_busy;
    bool pending; /* a connection waits in libuv's accepted slot until the spare is free */
};

struct pd_worker {
    struct pd_loop *parent;
    unsigned index;
    uv_loop_t uv;
    uv_async_t async;
    uv_timer_t timer;
    uv_thread_t thread;
    bool uv_ok, async_ok, timer_ok, thread_started;
    struct wlistener listeners[PD_LOOP_MAX_LISTENERS];
    size_t nlisteners;
    void *svc_state[PD_LOOP_MAX_SERVICES];
    bool svc_ok[PD_LOOP_MAX_SERVICES];
    enum worker_state state;
    size_t active;
    bool in_hooks; /* calling service hooks: a release to 0 must not finish the worker underneath them */

    /* Shared with other threads, under mu. */
    uv_mutex_t mu;
    struct post_item *head, *tail;
    bool closed; /* the async is closing or closed: posts are refused */
    bool cmd_shutdown, cmd_force;
};

struct listener {
    int fd; /* the loop's own copy; closed once every worker has its dup */
    int service;
    bool inherited;
    int inherited_fd;
    char addr[PD_LISTEN_ADDR_MAX];
    uint16_t port;
};

struct service {
    const struct pd_loop_service *ops;
    void *svc;
};

/* Main states: NEW (before run), RUNNING, STOPPING (graceful), FORCING, DONE (main handles closing). */
enum main_state { MS_NEW, MS_RUNNING, MS_STOPPING, MS_FORCING, MS_DONE };

struct pd_loop {
    struct pd_loop_config cfg;
    struct service services[PD_LOOP_MAX_SERVICES];
    size_t nservices;
    struct listener listeners[PD_LOOP_MAX_LISTENERS];
    size_t nlisteners;
    struct pd_worker *workers;
    unsigned nworkers;
    unsigned nstarted; /* worker threads started */

    uv_loop_t main;
    uv_async_t main_async;
    uv_signal_t sig_term, sig_int, sig_hup;
    bool signals_on;
    enum main_state state;
    bool ran;
    void (*reload_fn)(struct pd_loop *l, void *user);
    void *reload_user;
    void (*ready_fn)(struct pd_loop *l, void *user);
    void *ready_user;

    /* Under mu. */
    uv_mutex_t mu;
    bool req_shutdown, req_force, forced;
    unsigned workers_done;
};

void pd_loop_config_init(struct pd_loop_config *c)
{
    memset(c, 0, sizeof *c);
    c->workers = 0;
    c->shutdown_grace_ms = 10000;
    c->backlog = 511;
    c->handle_signals = true;
    c->component = "loop";
}

/* ---------------------------------------------------------------- worker side */

static void worker_finish(struct pd_worker *w);
static void worker_force(struct pd_worker *w);

static const struct pd_loop_config *wcfg(const struct pd_worker *w)
{
    return &w->parent->cfg;
}

static void close_listeners(struct pd_worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        struct wlistener *wl = &w->listeners[i];
        if (wl->open) {
            wl->open = false;
            uv_close((uv_handle_t *)&wl->tcp, NULL);
        }
    }
}

static void check_done(struct pd_worker *w)
{
    if (w->active == 0 && !w->in_hooks && (w->state == WS_DRAINING || w->state == WS_FORCED))
        worker_finish(w);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_timer(uv_timer_t *t)
{
    struct pd_worker *w = t->data;
    if (w->state == WS_DRAINING) {
        pd_log(PD_LOG_WARN, wcfg(w)->component, "shutdown_grace_expired", PD_LUINT("worker", w->index),
               PD_LUINT("active", w->active), PD_LUINT("grace_ms", wcfg(w)->shutdown_grace_ms));
        worker_force(w);
    } else if (w->state == WS_FORCED) {
        pd_log(PD_LOG_ERROR, wcfg(w)->component, "shutdown_stuck", PD_LUINT("worker", w->index),
               PD_LUINT("active", w->active));
        w->active = 0;
        worker_finish(w);
        /* The service will never close what it still holds: close it here so that uv_run can return (its
         * close callbacks are skipped, so that memory is leaked; this path is a bug report, not a feature). */
        uv_walk(&w->uv, close_any, NULL);
    }
}

static void call_hooks(struct pd_worker *w, size_t which)
{
    struct pd_loop *l = w->parent;
    w->in_hooks = true;
    for (size_t i = 0; i < l->nservices; i++) {
        if (!w->svc_ok[i])
            continue;
        const struct pd_loop_service *ops = l->services[i].ops;
        void (*fn)(struct pd_worker *, void *, void *) = which == 0   ? ops->shutdown
                                                         : which == 1 ? ops->force_close
                                                                      : ops->worker_stop;
        if (fn)
            fn(w, l->services[i].svc, w->svc_state[i]);
    }
    w->in_hooks = false;
}

static void worker_drain(struct pd_worker *w)
{
    if (w->state != WS_RUNNING && w->state != WS_INIT)
        return;
    w->state = WS_DRAINING;
    close_listeners(w);
    uv_timer_start(&w->timer, on_timer, wcfg(w)->shutdown_grace_ms, 0);
    call_hooks(w, 0);
    check_done(w);
}

static void worker_force(struct pd_worker *w)
{
    if (w->state == WS_FORCED || w->state == WS_FINISHING)
        return;
    close_listeners(w);
    w->state = WS_FORCED;
    uv_mutex_lock(&w->parent->mu);
    w->parent->forced = true;
    uv_mutex_unlock(&w->parent->mu);
    uv_timer_stop(&w->timer);
    uv_timer_start(&w->timer, on_timer, STUCK_MS, 0);
    call_hooks(w, 1);
    check_done(w);
}

static void run_items(struct pd_worker *w, struct post_item *it)
{
    while (it) {
        struct post_item *next = it->next;
        it->fn(w, it->arg);
        free(it);
        it = next;
    }
}

static void on_async_closed(uv_handle_t *h)
{
    struct pd_worker *w = h->data;
    /* Posts queued before `closed` was set were promised a call: run them now. */
    uv_mutex_lock(&w->mu);
    struct post_item *it = w->head;
    w->head = w->tail = NULL;
    uv_mutex_unlock(&w->mu);
    run_items(w, it);
}

static void worker_finish(struct pd_worker *w)
{
    if (w->state == WS_FINISHING)
        return;
    w->state = WS_FINISHING;
    close_listeners(w);
    call_hooks(w, 2);
    if (w->timer_ok) {
        uv_timer_stop(&w->timer);
        uv_close((uv_handle_t *)&w->timer, NULL);
    }
    uv_mutex_lock(&w->mu);
    w->closed = true;
    uv_mutex_unlock(&w->mu);
    if (w->async_ok)
        uv_close((uv_handle_t *)&w->async, on_async_closed);
}

static void on_async(uv_async_t *a)
{
    struct pd_worker *w = a->data;
    uv_mutex_lock(&w->mu);
    bool sd = w->cmd_shutdown, force = w->cmd_force;
    w->cmd_shutdown = w->cmd_force = false;
    struct post_item *it = w->head;
    w->head = w->tail = NULL;
    uv_mutex_unlock(&w->mu);
    if (force)
        worker_force(w);
    else if (sd)
        worker_drain(w);
    run_items(w, it);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *server, int status);

static void on_spare_closed(uv_handle_t *h)
{
    struct wlistener *wl = h->data;
    wl->spare_busy = false;
    if (wl->pending && wl->open) {
        wl->pending = false;
        on_connection((uv_stream_t *)&wl->tcp, 0);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct wlistener *wl = server->data;
    struct pd_worker *w = wl->w;
    struct pd_loop *l = w->parent;
    if (status < 0) {
        pd_log(PD_LOG_WARN, l->cfg.component, "accept_failed", PD_LUINT("worker", w->index),
               PD_LSTR("error", uv_strerror(status)));
        return;
    }
    uv_tcp_t *c = malloc(sizeof *c);
    if (!c) {
        /* Accept and drop, so that this worker's listener keeps polling (libuv stops polling a listener whose
         * accepted connection is not taken). If the spare is still closing, take it when it is free. */
        if (wl->spare_busy) {
            wl->pending = true;
            return;
        }
        pd_log(PD_LOG_WARN, l->cfg.component, "connection_dropped", PD_LSTR("reason", "out of memory"));
        uv_tcp_init(&w->uv, &wl->spare);
        wl->spare.data = wl;
        wl->spare_busy = true;
        uv_accept(server, (uv_stream_t *)&wl->spare);
        uv_close((uv_handle_t *)&wl->spare, on_spare_closed);
        return;
    }
    uv_tcp_init(&w->uv, c);
    c->data = NULL;
    int rc = uv_accept(server, (uv_stream_t *)c);
    if (rc != 0) {
        pd_log(PD_LOG_WARN, l->cfg.component, "accept_failed", PD_LUINT("worker", w->index),
               PD_LSTR("error", uv_strerror(rc)));
        uv_close((uv_handle_t *)c, free_handle);
        return;
    }
    int sid = l->listeners[wl->index].service;
    l->services[sid].ops->accept(w, l->services[sid].svc, w->svc_state[sid], c, wl->index);
}

/* After the worker's uv_run returned (or during a startup teardown): close the loop and free service state. */
static void worker_after_run(struct pd_worker *w)
{
    struct pd_loop *l = w->parent;
    if (w->uv_ok) {
        if (uv_loop_close(&w->uv) == UV_EBUSY) {
            /* Only reachable if a service left handles open after its work count reached 0. */
            pd_log(PD_LOG_ERROR, l->cfg.component, "worker_handles_leaked", PD_LUINT("worker", w->index));
            uv_walk(&w->uv, close_any, NULL);
            uv_run(&w->uv, UV_RUN_DEFAULT);
            uv_loop_close(&w->uv);
        }
        w->uv_ok = false;
    }
    for (size_t i = 0; i < l->nservices; i++) {
        if (w->svc_ok[i] && l->services[i].ops->worker_fini)
            l->services[i].ops->worker_fini(w, l->services[i].svc, w->svc_state[i]);
        w->svc_ok[i] = false;
    }
}

static void worker_thread(void *arg)
{
    struct pd_worker *w = arg;
    struct pd_loop *l = w->parent;
    /* Signals belong to the main thread's loop; keep them away from workers' system calls. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    w->state = WS_RUNNING;
    /* One loop iteration at a time, so the records it produced (access logs) go out in one write
     * before the loop can block again (log.h, batching). Same as UV_RUN_DEFAULT otherwise. */
    pd_log_batch_begin();
    while (uv_run(&w->uv, UV_RUN_ONCE) != 0)
        pd_log_batch_flush();
    worker_after_run(w);
    pd_log_batch_end();

    uv_mutex_lock(&l->mu);
    l->workers_done++;
    uv_mutex_unlock(&l->mu);
    uv_async_send(&l->main_async);
}

/* Tear down a worker whose thread never ran: close its handles and run its loop here until they are gone. */
static void worker_teardown_here(struct pd_worker *w)
{
    if (!w->uv_ok)
        return;
    worker_finish(w);
    uv_run(&w->uv, UV_RUN_DEFAULT);
    worker_after_run(w);
}

static void worker_command(struct pd_worker *w, bool force)
{
    uv_mutex_lock(&w->mu);
    if (!w->closed) {
        if (force)
            w->cmd_force = true;
        else
            w->cmd_shutdown = true;
        uv_async_send(&w->async);
    }
    uv_mutex_unlock(&w->mu);
}

/* ---------------------------------------------------------------- public worker API */

uv_loop_t *pd_worker_uv(struct pd_worker *w)
{
    return &w->uv;
}

unsigned pd_worker_index(const struct pd_worker *w)
{
    return w->index;
}

struct pd_loop *pd_worker_parent(struct pd_worker *w)
{
    return w->parent;
}

bool pd_worker_stopping(const struct pd_worker *w)
{
    return w->state != WS_RUNNING && w->state != WS_INIT;
}

void pd_worker_hold(struct pd_worker *w)
{
    w->active++;
}

void pd_worker_release(struct pd_worker *w)
{
    if (w->active == 0) {
        pd_log(PD_LOG_ERROR, wcfg(w)->component, "release_underflow", PD_LUINT("worker", w->index));
        return;
    }
    w->active--;
    check_done(w);
}

size_t pd_worker_active(const struct pd_worker *w)
{
    return w->active;
}

int pd_worker_post(struct pd_worker *w, void (*fn)(struct pd_worker *w, void *arg), void *arg)
{
    struct post_item *it = malloc(sizeof *it);
    if (!it)
        return -1;
    it->next = NULL;
    it->fn = fn;
    it->arg = arg;
    uv_mutex_lock(&w->mu);
    if (w->closed) {
        uv_mutex_unlock(&w->mu);
        free(it);
        return -1;
    }
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    /* Sent under the lock: the worker sets `closed` under it before closing the async, so the handle is
     * still open here. */
    uv_async_send(&w->async);
    uv_mutex_unlock(&w->mu);
    return 0;
}

/* ---------------------------------------------------------------- main side */

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    if (n > PD_LOOP_MAX_WORKERS)
        return PD_LOOP_MAX_WORKERS;
    return (unsigned)n;
}

static void main_close_handles(struct pd_loop *l)
{
    if (l->state == MS_DONE)
        return;
    l->state = MS_DONE;
    if (l->signals_on) {
        uv_close((uv_handle_t *)&l->sig_term, NULL);
        uv_close((uv_handle_t *)&l->sig_int, NULL);
        uv_close((uv_handle_t *)&l->sig_hup, NULL);
        l->signals_on = false;
    }
    uv_close((uv_handle_t *)&l->main_async, NULL);
}

/* Act on requests and completions reported by any thread. Main thread only. */
static void main_apply(struct pd_loop *l)
{
    if (l->state == MS_NEW || l->state == MS_DONE)
        return;
    uv_mutex_lock(&l->mu);
    bool sd = l->req_shutdown, force = l->req_force;
    unsigned done = l->workers_done;
    uv_mutex_unlock(&l->mu);
    if (force && l->state != MS_FORCING) {
        l->state = MS_FORCING;
        for (unsigned i = 0; i < l->nstarted; i++)
            worker_command(&l->workers[i], true);
    } else if (sd && l->state == MS_RUNNING) {
        l->state = MS_STOPPING;
        for (unsigned i = 0; i < l->nstarted; i++)
            worker_command(&l->workers[i], false);
    }
    if (done >= l->nstarted)
        main_close_handles(l);
}

static void on_main_async(uv_async_t *a)
{
    main_apply(a->data);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct pd_loop *l = s->data;
    if (signum == SIGHUP) {
        pd_log(PD_LOG_INFO, l->cfg.component, "reload_requested", PD_LSTR("signal", "SIGHUP"),
               PD_LBOOL("handled", l->reload_fn != NULL));
        if (l->reload_fn)
            l->reload_fn(l, l->reload_user);
        return;
    }
    const char *name = signum == SIGTERM ? "SIGTERM" : "SIGINT";
    uv_mutex_lock(&l->mu);
    bool again = l->req_shutdown;
    l->req_shutdown = true;
    if (again) {
        l->req_force = true;
        l->forced = true;
    }
    uv_mutex_unlock(&l->mu);
    if (again)
        pd_log(PD_LOG_WARN, l->cfg.component, "shutdown_forced", PD_LSTR("signal", name));
    else
        pd_log(PD_LOG_INFO, l->cfg.component, "shutdown_requested", PD_LSTR("signal", name),
               PD_LUINT("grace_ms", l->cfg.shutdown_grace_ms));
    main_apply(l);
}

void pd_loop_shutdown(struct pd_loop *l)
{
    uv_mutex_lock(&l->mu);
    l->req_shutdown = true;
    uv_mutex_unlock(&l->mu);
    uv_async_send(&l->main_async);
}

void pd_loop_force(struct pd_loop *l)
{
    uv_mutex_lock(&l->mu);
    l->req_shutdown = true;
    l->req_force = true;
    l->forced = true;
    uv_mutex_unlock(&l->mu);
    uv_async_send(&l->main_async);
}

bool pd_loop_was_forced(struct pd_loop *l)
{
    uv_mutex_lock(&l->mu);
    bool f = l->forced;
    uv_mutex_unlock(&l->mu);
    return f;
}

struct pd_loop *pd_loop_new(const struct pd_loop_config *cfg, struct pd_err *err)
{
    struct pd_loop *l = calloc(1, sizeof *l);
    if (!l) {
        pd_err_set(err, "out of memory");
        return NULL;
    }
    if (cfg)
        l->cfg = *cfg;
    else
        pd_loop_config_init(&l->cfg);
    if (!l->cfg.component)
        l->cfg.component = "loop";
    if (l->cfg.backlog <= 0)
        l->cfg.backlog = 511;
    l->nworkers = l->cfg.workers ? l->cfg.workers : online_cpus();
    if (l->nworkers > PD_LOOP_MAX_WORKERS) {
        pd_err_set(err, "%u workers requested; at most %d are supported", l->nworkers, PD_LOOP_MAX_WORKERS);
        free(l);
        return NULL;
    }
    l->workers = calloc(l->nworkers, sizeof *l->workers);
    if (!l->workers || uv_mutex_init(&l->mu) != 0) {
        pd_err_set(err, "out of memory");
        free(l->workers);
        free(l);
        return NULL;
    }
    int rc = uv_loop_init(&l->main);
    if (rc == 0) {
        rc = uv_async_init(&l->main, &l->main_async, on_main_async);
        if (rc != 0)
            uv_loop_close(&l->main);
    }
    if (rc != 0) {
        pd_err_set(err, "cannot create the main event loop: %s", uv_strerror(rc));
        uv_mutex_destroy(&l->mu);
        free(l->workers);
        free(l);
        return NULL;
    }
    l->main_async.data = l;
    for (unsigned i = 0; i < l->nworkers; i++) {
        struct pd_worker *w = &l->workers[i];
        w->parent = l;
        w->index = i;
        w->closed = true; /* until its async exists */
        if (uv_mutex_init(&w->mu) != 0) {
            pd_err_set(err, "cannot create a mutex");
            l->nworkers = i; /* only these have a mutex */
            pd_loop_free(l);
            return NULL;
        }
        rc = uv_loop_init(&w->uv);
        if (rc == 0) {
            w->uv_ok = true;
            rc = uv_async_init(&w->uv, &w->async, on_async);
        }
        if (rc == 0) {
            w->async_ok = true;
            w->async.data = w;
            rc = uv_timer_init(&w->uv, &w->timer);
        }
        if (rc != 0) {
            pd_err_set(err, "cannot create worker %u's event loop: %s", i, uv_strerror(rc));
            l->nworkers = i + 1;
            pd_loop_free(l);
            return NULL;
        }
        w->timer_ok = true;
        w->timer.data = w;
        w->closed = false;
    }
    return l;
}

void pd_loop_free(struct pd_loop *l)
{
    if (!l)
        return;
    for (unsigned i = 0; i < l->nworkers; i++)
        worker_teardown_here(&l->workers[i]);
    for (size_t i = 0; i < l->nlisteners; i++) {
        if (l->listeners[i].fd >= 0)
            close(l->listeners[i].fd);
        l->listeners[i].fd = -1;
    }
    main_close_handles(l);
    uv_run(&l->main, UV_RUN_DEFAULT);
    uv_loop_close(&l->main);
    for (unsigned i = 0; i < l->nworkers; i++) {
        struct pd_worker *w = &l->workers[i];
        run_items(w, w->head); /* never reached a loop: still owed their call */
        w->head = w->tail = NULL;
        uv_mutex_destroy(&w->mu);
    }
    uv_mutex_destroy(&l->mu);
    free(l->workers);
    free(l);
}

int pd_loop_add_service(struct pd_loop *l, const struct pd_loop_service *ops, void *svc, struct pd_err *err)
{
    if (!ops || !ops->accept) {
        pd_err_set(err, "a service needs an accept hook");
        return -1;
    }
    if (l->ran || l->nservices >= PD_LOOP_MAX_SERVICES) {
        pd_err_set(err, l->ran ? "services must be added before pd_loop_run" : "too many services (max %d)",
                   PD_LOOP_MAX_SERVICES);
        return -1;
    }
    l->services[l->nservices].ops = ops;
    l->services[l->nservices].svc = svc;
    return (int)l->nservices++;
}

int pd_loop_add_listener(struct pd_loop *l, const struct pd_listen_spec *spec, int service_id,
                         struct pd_err *err)
{
    bool owns_fd = spec->kind == PD_LISTEN_FD;
    if (l->ran || service_id < 0 || (size_t)service_id >= l->nservices ||
        l->nlisteners >= PD_LOOP_MAX_LISTENERS) {
        pd_err_set(err, l->ran ? "listeners must be added before pd_loop_run"
                        : (service_id < 0 || (size_t)service_id >= l->nservices)
                            ? "unknown service id"
                            : "too many listeners (max %d)",
                   PD_LOOP_MAX_LISTENERS);
        if (owns_fd && spec->fd >= 0)
            close(spec->fd);
        return -1;
    }
    struct listener *li = &l->listeners[l->nlisteners];
    memset(li, 0, sizeof *li);
    li->inherited = owns_fd;
    li->inherited_fd = owns_fd ? spec->fd : -1;
    li->service = service_id;
    if (pd_listen_open(spec, l->cfg.backlog, &li->fd, li->addr, &li->port, err) != 0)
        return -1;
    return (int)l->nlisteners++;
}

uint16_t pd_loop_listener_port(const struct pd_loop *l, size_t index)
{
    return index < l->nlisteners ? l->listeners[index].port : 0;
}

const char *pd_loop_listener_addr(const struct pd_loop *l, size_t index)
{
    return index < l->nlisteners ? l->listeners[index].addr : NULL;
}

void pd_loop_set_reload(struct pd_loop *l, void (*fn)(struct pd_loop *l, void *user), void *user)
{
    l->reload_fn = fn;
    l->reload_user = user;
}

void pd_loop_set_ready(struct pd_loop *l, void (*fn)(struct pd_loop *l, void *user), void *user)
{
    l->ready_fn = fn;
    l->ready_user = user;
}

unsigned pd_loop_worker_count(const struct pd_loop *l)
{
    return l->nworkers;
}

struct pd_worker *pd_loop_worker(struct pd_loop *l, unsigned index)
{
    return index < l->nworkers ? &l->workers[index] : NULL;
}

/* Main thread, loop not running: give the worker its services' state and its dup of every listener. */
static int worker_setup(struct pd_loop *l, struct pd_worker *w, struct pd_err *err)
{
    for (size_t i = 0; i < l->nservices; i++) {
        const struct pd_loop_service *ops = l->services[i].ops;
        w->svc_state[i] = NULL;
        if (ops->worker_init && ops->worker_init(w, l->services[i].svc, &w->svc_state[i], err) != 0) {
            pd_err_prefix(err, "worker %u: service %s", w->index, ops->name ? ops->name : "?");
            return -1;
        }
        w->svc_ok[i] = true;
    }
    for (size_t i = 0; i < l->nlisteners; i++) {
        struct wlistener *wl = &w->listeners[i];
        wl->w = w;
        wl->index = i;
        int fd = fcntl(l->listeners[i].fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            pd_err_set(err, "worker %u: cannot dup listening socket: %s", w->index, strerror(errno));
            return -1;
        }
        uv_tcp_init(&w->uv, &wl->tcp);
        wl->tcp.data = wl;
        wl->open = true;
        w->nlisteners = i + 1;
        int rc = uv_tcp_open(&wl->tcp, fd);
        if (rc != 0) {
            close(fd);
            pd_err_set(err, "worker %u: cannot use listening socket: %s", w->index, uv_strerror(rc));
            return -1;
        }
        rc = uv_listen((uv_stream_t *)&wl->tcp, l->cfg.backlog, on_connection);
        if (rc != 0) {
            pd_err_set(err, "worker %u: listen on %s:%u: %s", w->index, l->listeners[i].addr,
                       l->listeners[i].port, uv_strerror(rc));
            return -1;
        }
    }
    return 0;
}

static void log_listening(struct pd_loop *l)
{
    for (size_t i = 0; i < l->nlisteners; i++) {
        const struct listener *li = &l->listeners[i];
        if (li->inherited)
            pd_log(PD_LOG_INFO, l->cfg.component, "listening", PD_LSTR("addr", li->addr),
                   PD_LINT("port", li->port), PD_LINT("fd", li->inherited_fd), PD_LUINT("listener", i),
                   PD_LUINT("listeners", l->nlisteners), PD_LUINT("workers", l->nworkers));
        else
            pd_log(PD_LOG_INFO, l->cfg.component, "listening", PD_LSTR("addr", li->addr),
                   PD_LINT("port", li->port), PD_LUINT("listener", i), PD_LUINT("listeners", l->nlisteners),
                   PD_LUINT("workers", l->nworkers));
    }
}

int pd_loop_run(struct pd_loop *l, struct pd_err *err)
{
    if (l->ran) {
        pd_err_set(err, "pd_loop_run called twice");
        return -1;
    }
    l->ran = true;
    int result = 0;

    /* A peer closing mid-write must be an EPIPE, not a process kill. Process-wide disposition, no state. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    if (l->cfg.handle_signals) {
        uv_signal_init(&l->main, &l->sig_term);
        uv_signal_init(&l->main, &l->sig_int);
        uv_signal_init(&l->main, &l->sig_hup);
        l->sig_term.data = l->sig_int.data = l->sig_hup.data = l;
        l->signals_on = true;
        int rc = uv_signal_start(&l->sig_term, on_signal, SIGTERM);
        if (rc == 0)
            rc = uv_signal_start(&l->sig_int, on_signal, SIGINT);
        if (rc == 0)
            rc = uv_signal_start(&l->sig_hup, on_signal, SIGHUP);
        if (rc != 0) {
            pd_err_set(err, "cannot install signal handlers: %s", uv_strerror(rc));
            result = -1;
        }
    }

    for (unsigned i = 0; result == 0 && i < l->nworkers; i++)
        if (worker_setup(l, &l->workers[i], err) != 0)
            result = -1;
    /* Every worker holds its own dup now (or we are failing): the loop's copies must go, so that the sockets
     * close as soon as the workers close theirs at shutdown. */
    for (size_t i = 0; i < l->nlisteners; i++) {
        if (l->listeners[i].fd >= 0)
            close(l->listeners[i].fd);
        l->listeners[i].fd = -1;
    }

    for (unsigned i = 0; result == 0 && i < l->nworkers; i++) {
        struct pd_worker *w = &l->workers[i];
        int rc = uv_thread_create(&w->thread, worker_thread, w);
        if (rc != 0) {
            pd_err_set(err, "cannot start worker thread %u: %s", i, uv_strerror(rc));
            result = -1;
            break;
        }
        w->thread_started = true;
        l->nstarted++;
    }
    /* Workers that never got a thread are torn down here; started ones are stopped through main_apply. */
    for (unsigned i = l->nstarted; i < l->nworkers; i++)
        worker_teardown_here(&l->workers[i]);

    l->state = MS_RUNNING;
    if (result != 0) {
        uv_mutex_lock(&l->mu);
        l->req_shutdown = true;
        uv_mutex_unlock(&l->mu);
    } else {
        log_listening(l);
        if (l->ready_fn)
            l->ready_fn(l, l->ready_user);
    }
    main_apply(l); /* requests made before run, or the failure above */
    uv_run(&l->main, UV_RUN_DEFAULT);

    for (unsigned i = 0; i < l->nstarted; i++) {
        uv_thread_join(&l->workers[i].thread);
        l->workers[i].thread_started = false;
    }
    if (result == 0)
        pd_log(PD_LOG_INFO, l->cfg.component, "stopped", PD_LBOOL("forced", pd_loop_was_forced(l)));
    return result;
}
