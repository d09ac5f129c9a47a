/*
 * loop.h - the process's event loops: one libuv loop per worker thread (default: one per online CPU), every
 * worker accepting on every listener, plus a main-thread loop that owns the signals and graceful shutdown.
 *
 * Who uses it: the HTTP server (src/http/server.h) and, through it, the control plane and metrics endpoints.
 *
 * Model:
 *   - A *service* (e.g. one HTTP server) registers hooks with pd_loop_add_service(); a *listener* is bound to
 *     one service. Each worker gets its own per-service state (worker_init) and is handed every connection it
 *     accepts on its own loop (accept: the uv_tcp_t is malloc'd, initialised on the worker's loop and
 *     accepted; the service owns it from then on and must uv_close() it and free() it in the close callback).
 *   - Listening sockets: a bound spec is opened once, at pd_loop_add_listener() (so errors and the real port of
 *     ":0" are known before any thread starts); inherited fds likewise. Each worker gets a dup() of every
 *     listening socket (one shared accept queue), see loop.c for why not SO_REUSEPORT.
 *   - Work accounting: services call pd_worker_hold()/pd_worker_release() around each unit of in-flight work
 *     (a connection). A draining worker ends when its count reaches 0.
 *   - Shutdown (SIGTERM/SIGINT, or pd_loop_shutdown() from any thread): every worker closes its listeners at
 *     once and calls each service's `shutdown` hook (finish in-flight work, close idle connections). When the
 *     work count reaches 0, or after shutdown_grace_ms, `force_close` is called (close everything now). A
 *     second SIGTERM/SIGINT (or pd_loop_force()) forces at once. Every thread is joined before pd_loop_run()
 *     returns. SIGHUP calls the reload callback on the main thread. SIGPIPE is ignored for the process.
 *   - Readiness: when every worker listens on every listener, one "listening" log line per listener is
 *     written (fields addr, port, workers, listener, listeners, and fd for inherited sockets).
 *
 * Threads: hooks run on their worker's thread. pd_worker_post(), pd_loop_shutdown() and pd_loop_force() may
 * be called from any thread; every other function belongs to the thread that owns the object.
 * No global mutable state: signals go through uv_signal_t handles on the main loop.
 */
#ifndef PD_CORE_LOOP_H
#define PD_CORE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/err.h"
#include "core/listen.h"

#define PD_LOOP_MAX_WORKERS 256
#define PD_LOOP_MAX_LISTENERS 16
#define PD_LOOP_MAX_SERVICES 8

struct pd_loop;
struct pd_worker;

struct pd_loop_config {
    unsigned workers;           /* 0 = number of online CPUs (at least 1) */
    unsigned shutdown_grace_ms; /* bound on draining in-flight work; default 10000 */
    int backlog;                /* listen() backlog; default 511 */
    bool handle_signals;        /* SIGTERM/SIGINT/SIGHUP on the main loop; default true (tests: false) */
    const char *component;      /* log component; default "loop" */
};

void pd_loop_config_init(struct pd_loop_config *c);

/* A service's hooks. Every hook is optional (NULL) except accept. `svc` is the pointer given at registration,
 * `state` what worker_init stored for this worker (NULL if no worker_init). */
struct pd_loop_service {
    const char *name;
    /* Before the worker's loop runs (called on the main thread; the loop is not running yet). */
    int (*worker_init)(struct pd_worker *w, void *svc, void **state, struct pd_err *err);
    /* A new connection on this worker. */
    void (*accept)(struct pd_worker *w, void *svc, void *state, uv_tcp_t *client, size_t listener);
    /* Graceful shutdown began: listeners are closed; finish in-flight work, close idle connections. */
    void (*shutdown)(struct pd_worker *w, void *svc, void *state);
    /* Grace period over (or forced): close everything now; release the held work as handles close. */
    void (*force_close)(struct pd_worker *w, void *svc, void *state);
    /* Work count reached 0 while stopping: close any persistent handle of the service (on the loop). */
    void (*worker_stop)(struct pd_worker *w, void *svc, void *state);
    /* After the worker's loop has ended (no handle left): free the state. Also called when startup fails. */
    void (*worker_fini)(struct pd_worker *w, void *svc, void *state);
};

struct pd_loop *pd_loop_new(const struct pd_loop_config *cfg, struct pd_err *err);
/* Frees everything; the loop must not be running (pd_loop_run returned, or never called). */
void pd_loop_free(struct pd_loop *l);

/* Register a service; returns its id (>= 0) or -1. ops and svc must outlive the loop. */
int pd_loop_add_service(struct pd_loop *l, const struct pd_loop_service *ops, void *svc, struct pd_err *err);

/*
 * Open a listener for service `service_id` now (see listen.h; an inherited fd's ownership passes to the loop
 * even on failure). Returns the listener index (>= 0) or -1.
 */
int pd_loop_add_listener(struct pd_loop *l, const struct pd_listen_spec *spec, int service_id,
                         struct pd_err *err);
uint16_t pd_loop_listener_port(const struct pd_loop *l, size_t index);
const char *pd_loop_listener_addr(const struct pd_loop *l, size_t index);

/* SIGHUP callback, run on the main thread. */
void pd_loop_set_reload(struct pd_loop *l, void (*fn)(struct pd_loop *l, void *user), void *user);
/* Called on the main thread once every worker listens (right after the "listening" lines). */
void pd_loop_set_ready(struct pd_loop *l, void (*fn)(struct pd_loop *l, void *user), void *user);

/*
 * Start the workers and run the main loop in the calling thread until shutdown completes and every worker
 * thread is joined. Returns 0 after a shutdown (graceful or forced), -1 if startup failed (err filled).
 * Call at most once per loop.
 */
int pd_loop_run(struct pd_loop *l, struct pd_err *err);

/* Ask for a graceful shutdown / a forced one; any thread, any time (also before pd_loop_run). */
void pd_loop_shutdown(struct pd_loop *l);
void pd_loop_force(struct pd_loop *l);
/* True once the grace period expired or a force was requested during the run. */
bool pd_loop_was_forced(struct pd_loop *l);

unsigned pd_loop_worker_count(const struct pd_loop *l);
struct pd_worker *pd_loop_worker(struct pd_loop *l, unsigned index);

/* Worker accessors (worker thread). */
uv_loop_t *pd_worker_uv(struct pd_worker *w);
unsigned pd_worker_index(const struct pd_worker *w);
struct pd_loop *pd_worker_parent(struct pd_worker *w);
bool pd_worker_stopping(const struct pd_worker *w);
void pd_worker_hold(struct pd_worker *w);
void pd_worker_release(struct pd_worker *w);
size_t pd_worker_active(const struct pd_worker *w);

/*
 * Run fn(w, arg) on w's loop thread (any thread may call). Returns 0 when queued: fn is then called exactly
 * once, possibly while the worker is stopping (check pd_worker_stopping()). Returns -1 when the worker has
 * already finished or on allocation failure: fn is not called and arg stays the caller's.
 */
int pd_worker_post(struct pd_worker *w, void (*fn)(struct pd_worker *w, void *arg), void *arg);

#endif
