/* test_loop.c - listener specs, inherited-fd validation, worker posts, shutdown (graceful and bounded). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/listen.h"
#include "core/log.h"
#include "core/loop.h"

#define BOUND_MS 10000 /* generous upper bound for any wait: only to avoid hanging */

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Poll until *flag reaches at least want, at most BOUND_MS. */
static bool wait_for(_Atomic int *flag, int want)
{
    for (int i = 0; i < BOUND_MS / 5; i++) {
        if (atomic_load(flag) >= want)
            return true;
        sleep_ms(5);
    }
    return atomic_load(flag) >= want;
}

/* ---------------------------------------------------------------- spec parsing */

static void test_spec_parse_ok(void **state)
{
    (void)state;
    struct pd_listen_spec s;
    struct pd_err err;
    assert_int_equal(pd_listen_spec_parse("127.0.0.1:8080", &s, &err), 0);
    assert_int_equal(s.kind, PD_LISTEN_BIND);
    const struct sockaddr_in *a4 = (const struct sockaddr_in *)&s.addr;
    assert_int_equal(a4->sin_family, AF_INET);
    assert_int_equal(ntohs(a4->sin_port), 8080);
    assert_int_equal(a4->sin_addr.s_addr, htonl(INADDR_LOOPBACK));

    assert_int_equal(pd_listen_spec_parse("[::1]:0", &s, &err), 0);
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&s.addr;
    assert_int_equal(a6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(a6->sin6_port), 0);
    assert_int_equal(s.addrlen, sizeof(struct sockaddr_in6));

    assert_int_equal(pd_listen_spec_parse("0.0.0.0:65535", &s, &err), 0);
    assert_int_equal(pd_listen_spec_parse("[::]:1", &s, &err), 0);
}

static void test_spec_parse_errors(void **state)
{
    (void)state;
    const char *bad[] = {"",           "127.0.0.1",       "127.0.0.1:",     "127.0.0.1:65536", "127.0.0.1:-1",
                         "127.0.0.1:8a", "localhost:80",   ":80",            "::1:80",          "[::1]",
                         "[::1]80",    "[::1:80",         "[fe80::1%lo]:80", "[127.0.0.1]:80", "1.2.3:80",
                         "1.2.3.4.5:80", "127.0.0.1:+80", "127.0.0.1: 80",   "[]:80",           "127.0.0.1:99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pd_listen_spec s;
        struct pd_err err = {{0}};
        if (pd_listen_spec_parse(bad[i], &s, &err) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(strlen(err.msg) > 0);
    }
    struct pd_err err;
    struct pd_listen_spec s;
    assert_int_equal(pd_listen_spec_parse("localhost:80", &s, &err), -1);
    assert_non_null(strstr(err.msg, "not a numeric IPv4 address"));
    assert_int_equal(pd_listen_spec_parse("::1:80", &s, &err), -1);
    assert_non_null(strstr(err.msg, "bracketed"));
    /* Control bytes are never echoed into the message (it may reach a terminal or a log). */
    assert_int_equal(pd_listen_spec_parse("127.0.0.1\t:80\x1b[2J", &s, &err), -1);
    assert_non_null(strstr(err.msg, "offset 9"));
    assert_null(strchr(err.msg, '\t'));
    assert_null(strchr(err.msg, '\x1b'));
    assert_int_equal(pd_listen_spec_fd("3\x1b", &s, &err), -1);
    assert_null(strchr(err.msg, '\x1b'));
}

/* ---------------------------------------------------------------- inherited fds */

static int listening_socket(int family, uint16_t *port)
{
    int fd = socket(family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        sl = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        close(fd);
        return -1;
    }
    assert_int_equal(listen(fd, 16), 0);
    if (port) {
        sl = sizeof ss;
        getsockname(fd, (struct sockaddr *)&ss, &sl);
        *port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                        : ((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

static void test_fd_not_a_socket(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct pd_err err;
    assert_int_equal(pd_listen_check_fd(p[0], &err), -1);
    char want[64];
    snprintf(want, sizeof want, "listen fd %d is not a socket", p[0]);
    assert_non_null(strstr(err.msg, want));
    close(p[0]);
    close(p[1]);
    /* Closed fd. */
    assert_int_equal(pd_listen_check_fd(p[0], &err), -1);
    assert_non_null(strstr(err.msg, "not an open file descriptor"));
    assert_int_equal(pd_listen_check_fd(-1, &err), -1);
}

static void test_fd_not_listening(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct pd_err err;
    assert_int_equal(pd_listen_check_fd(fd, &err), -1);
    assert_non_null(strstr(err.msg, "not listening"));
    close(fd);
}

static void test_fd_wrong_kind(void **state)
{
    (void)state;
    struct pd_err err;
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(pd_listen_check_fd(udp, &err), -1);
    assert_non_null(strstr(err.msg, "not a stream socket"));
    close(udp);

    int ux = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    /* Abstract address: nothing on the file system to clean up. */
    snprintf(sa.sun_path + 1, sizeof sa.sun_path - 1, "pd-test-%d", (int)getpid());
    assert_int_equal(bind(ux, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(ux, 1), 0);
    assert_int_equal(pd_listen_check_fd(ux, &err), -1);
    assert_non_null(strstr(err.msg, "IPv4/IPv6"));
    close(ux);
}

static void test_fd_ok_sets_flags(void **state)
{
    (void)state;
    int fd = listening_socket(AF_INET, NULL);
    struct pd_err err;
    assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
    assert_int_equal(pd_listen_check_fd(fd, &err), 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);

    struct pd_listen_spec s;
    char num[16];
    snprintf(num, sizeof num, "%d", fd);
    assert_int_equal(pd_listen_spec_fd(num, &s, &err), 0);
    assert_int_equal(s.kind, PD_LISTEN_FD);
    assert_int_equal(s.fd, fd);
    assert_int_equal(pd_listen_spec_fd("x", &s, &err), -1);
    assert_int_equal(pd_listen_spec_fd("-3", &s, &err), -1);
    assert_int_equal(pd_listen_spec_fd("", &s, &err), -1);
    close(fd);
}

static void test_systemd_env(void **state)
{
    (void)state;
    struct pd_listen_spec specs[4];
    size_t n = 0;
    struct pd_err err;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    assert_int_equal(pd_listen_systemd(specs, 4, &n, true, &err), 0);
    assert_int_equal(n, 0);

    /* Meant for another process: ignored, and unset. */
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid() + 1);
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "2", 1);
    assert_int_equal(pd_listen_systemd(specs, 4, &n, true, &err), 0);
    assert_int_equal(n, 0);
    assert_null(getenv("LISTEN_PID"));
    assert_null(getenv("LISTEN_FDS"));

    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "zero", 1);
    assert_int_equal(pd_listen_systemd(specs, 4, &n, true, &err), -1);
    assert_non_null(strstr(err.msg, "LISTEN_FDS"));

    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "0", 1);
    assert_int_equal(pd_listen_systemd(specs, 4, &n, false, &err), 0);
    assert_int_equal(n, 0);
    assert_non_null(getenv("LISTEN_FDS")); /* kept when asked */
    /* fd 3 in this test process is not a listening socket (or not open). */
    setenv("LISTEN_FDS", "1", 1);
    assert_int_equal(pd_listen_systemd(specs, 4, &n, true, &err), -1);
    assert_non_null(strstr(err.msg, "LISTEN_FDS"));
    assert_int_equal(n, 0);
}

static void test_open_bind(void **state)
{
    (void)state;
    struct pd_listen_spec s;
    struct pd_err err;
    int fd;
    char addr[PD_LISTEN_ADDR_MAX];
    uint16_t port = 0;
    assert_int_equal(pd_listen_spec_parse("127.0.0.1:0", &s, &err), 0);
    assert_int_equal(pd_listen_open(&s, 16, &fd, addr, &port, &err), 0);
    assert_string_equal(addr, "127.0.0.1");
    assert_true(port != 0);
    assert_int_equal(pd_listen_check_fd(fd, &err), 0);

    /* The same port again: a clear bind error. */
    char text[64];
    snprintf(text, sizeof text, "127.0.0.1:%u", port);
    struct pd_listen_spec s2;
    int fd2 = -1;
    assert_int_equal(pd_listen_spec_parse(text, &s2, &err), 0);
    assert_int_equal(pd_listen_open(&s2, 16, &fd2, addr, &port, &err), -1);
    assert_non_null(strstr(err.msg, "cannot bind 127.0.0.1:"));
    close(fd);

    /* Inherited-fd spec naming a pipe: refused, and the fd is closed (ownership passed). */
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct pd_listen_spec s3 = {.kind = PD_LISTEN_FD, .fd = p[0]};
    assert_int_equal(pd_listen_open(&s3, 16, &fd2, addr, &port, &err), -1);
    assert_int_equal(fcntl(p[0], F_GETFD), -1);
    close(p[1]);
}

/* ---------------------------------------------------------------- loop fixtures */

struct svc_state {
    _Atomic int accepted;
    _Atomic int shutdown_calls;
    _Atomic int force_calls;
    _Atomic int init_calls;
    _Atomic int fini_calls;
    _Atomic int posts;
    _Atomic int post_on_right_worker;
    _Atomic int ready;
    bool stuck; /* accept holds work that only force_close releases */
};

/* Per-worker state: a connection belongs to the loop of the worker that accepted it. */
struct wstate {
    struct svc_state *s;
    uv_tcp_t *conns[8];
    int nconns;
};

static void on_conn_closed(uv_handle_t *h)
{
    struct pd_worker *w = h->data;
    free(h);
    pd_worker_release(w);
}

static int svc_init(struct pd_worker *w, void *svc, void **state, struct pd_err *err)
{
    (void)w;
    struct svc_state *s = svc;
    struct wstate *ws = calloc(1, sizeof *ws);
    if (!ws) {
        pd_err_set(err, "out of memory");
        return -1;
    }
    ws->s = s;
    atomic_fetch_add(&s->init_calls, 1);
    *state = ws;
    return 0;
}

static void svc_accept(struct pd_worker *w, void *svc, void *state, uv_tcp_t *client, size_t listener)
{
    (void)listener;
    struct svc_state *s = svc;
    struct wstate *ws = state;
    pd_worker_hold(w);
    client->data = w;
    if (ws->nconns < 8)
        ws->conns[ws->nconns++] = client;
    else
        uv_close((uv_handle_t *)client, on_conn_closed);
    atomic_fetch_add(&s->accepted, 1);
}

static void close_all(struct wstate *ws)
{
    for (int i = 0; i < ws->nconns; i++)
        uv_close((uv_handle_t *)ws->conns[i], on_conn_closed);
    ws->nconns = 0;
}

static void svc_shutdown(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    struct svc_state *s = svc;
    atomic_fetch_add(&s->shutdown_calls, 1);
    if (!s->stuck)
        close_all(state);
}

static void svc_force(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    struct svc_state *s = svc;
    atomic_fetch_add(&s->force_calls, 1);
    close_all(state);
}

static void svc_fini(struct pd_worker *w, void *svc, void *state)
{
    (void)w;
    struct svc_state *s = svc;
    atomic_fetch_add(&s->fini_calls, 1);
    free(state);
}

static const struct pd_loop_service test_ops = {
    .name = "test",
    .worker_init = svc_init,
    .accept = svc_accept,
    .shutdown = svc_shutdown,
    .force_close = svc_force,
    .worker_fini = svc_fini,
};

struct runner {
    struct pd_loop *loop;
    pthread_t thread;
    int rc;
    _Atomic int done;
};

static void *run_thread(void *arg)
{
    struct runner *r = arg;
    struct pd_err err;
    r->rc = pd_loop_run(r->loop, &err);
    atomic_store(&r->done, 1);
    return NULL;
}

static struct pd_loop *new_loop(unsigned workers, unsigned grace_ms)
{
    struct pd_loop_config c;
    pd_loop_config_init(&c);
    c.workers = workers;
    c.shutdown_grace_ms = grace_ms;
    c.handle_signals = false;
    c.component = "test";
    struct pd_err err;
    struct pd_loop *l = pd_loop_new(&c, &err);
    assert_non_null(l);
    return l;
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = BOUND_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void ready_cb(struct pd_loop *l, void *user)
{
    (void)l;
    atomic_store(&((struct svc_state *)user)->ready, 1);
}

/* ---------------------------------------------------------------- loop tests */

static void record_post(struct pd_worker *w, void *arg)
{
    struct svc_state *s = arg;
    atomic_fetch_add(&s->posts, 1);
    (void)w;
}

struct post_check {
    struct svc_state *s;
    unsigned want;
};

static void check_worker(struct pd_worker *w, void *arg)
{
    struct post_check *pc = arg;
    if (pd_worker_index(w) == pc->want && pd_worker_uv(w) != NULL)
        atomic_fetch_add(&pc->s->post_on_right_worker, 1);
    atomic_fetch_add(&pc->s->posts, 1);
}

static void test_worker_post(void **state)
{
    (void)state;
    struct svc_state s;
    memset(&s, 0, sizeof s);
    struct pd_loop *l = new_loop(3, 1000);
    struct pd_err err;
    assert_int_equal(pd_loop_add_service(l, &test_ops, &s, &err), 0);
    assert_int_equal(pd_loop_worker_count(l), 3);
    pd_loop_set_ready(l, ready_cb, &s);
    /* Posted before the run: delivered once the worker's loop runs. */
    assert_int_equal(pd_worker_post(pd_loop_worker(l, 0), record_post, &s), 0);

    struct runner r = {.loop = l};
    assert_int_equal(pthread_create(&r.thread, NULL, run_thread, &r), 0);
    assert_true(wait_for(&s.ready, 1));
    assert_true(wait_for(&s.posts, 1));

    struct post_check pcs[3];
    for (unsigned i = 0; i < 3; i++) {
        pcs[i] = (struct post_check){.s = &s, .want = i};
        assert_int_equal(pd_worker_post(pd_loop_worker(l, i), check_worker, &pcs[i]), 0);
    }
    assert_true(wait_for(&s.posts, 4));
    assert_int_equal(atomic_load(&s.post_on_right_worker), 3);
    assert_int_equal(atomic_load(&s.init_calls), 3);

    pd_loop_shutdown(l);
    pthread_join(r.thread, NULL);
    assert_int_equal(r.rc, 0);
    assert_false(pd_loop_was_forced(l));
    assert_int_equal(atomic_load(&s.shutdown_calls), 3);
    assert_int_equal(atomic_load(&s.fini_calls), 3);
    /* Finished workers refuse posts: the caller keeps its argument. */
    assert_int_equal(pd_worker_post(pd_loop_worker(l, 1), record_post, &s), -1);
    pd_loop_free(l);
}

static void test_accept_and_graceful_shutdown(void **state)
{
    (void)state;
    struct svc_state s;
    memset(&s, 0, sizeof s);
    struct pd_loop *l = new_loop(1, 10000);
    struct pd_err err;
    struct pd_listen_spec spec;
    assert_int_equal(pd_loop_add_service(l, &test_ops, &s, &err), 0);
    assert_int_equal(pd_listen_spec_parse("127.0.0.1:0", &spec, &err), 0);
    assert_int_equal(pd_loop_add_listener(l, &spec, 0, &err), 0);
    uint16_t port = pd_loop_listener_port(l, 0);
    assert_true(port != 0);
    assert_string_equal(pd_loop_listener_addr(l, 0), "127.0.0.1");

    struct runner r = {.loop = l};
    assert_int_equal(pthread_create(&r.thread, NULL, run_thread, &r), 0);
    int fd = connect_to(port);
    assert_true(wait_for(&s.accepted, 1));
    pd_loop_shutdown(l);
    pthread_join(r.thread, NULL);
    assert_int_equal(r.rc, 0);
    assert_false(pd_loop_was_forced(l));
    assert_int_equal(atomic_load(&s.force_calls), 0);
    char b;
    assert_int_equal(recv(fd, &b, 1, 0), 0); /* the service closed it */
    close(fd);
    pd_loop_free(l);
    /* Listener closed: connecting now is refused. */
    int fd2 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd2, (struct sockaddr *)&a, sizeof a), -1);
    close(fd2);
}

static void test_shutdown_bound_with_stuck_work(void **state)
{
    (void)state;
    struct svc_state s;
    memset(&s, 0, sizeof s);
    s.stuck = true;
    struct pd_loop *l = new_loop(1, 200);
    struct pd_err err;
    struct pd_listen_spec spec;
    assert_int_equal(pd_loop_add_service(l, &test_ops, &s, &err), 0);
    assert_int_equal(pd_listen_spec_parse("127.0.0.1:0", &spec, &err), 0);
    assert_int_equal(pd_loop_add_listener(l, &spec, 0, &err), 0);
    uint16_t port = pd_loop_listener_port(l, 0);

    struct runner r = {.loop = l};
    assert_int_equal(pthread_create(&r.thread, NULL, run_thread, &r), 0);
    int fd = connect_to(port);
    assert_true(wait_for(&s.accepted, 1));
    pd_loop_shutdown(l);
    /* The grace period (200 ms) bounds the wait: the run ends although the work never finished. */
    assert_true(wait_for(&r.done, 1));
    pthread_join(r.thread, NULL);
    assert_int_equal(r.rc, 0);
    assert_true(pd_loop_was_forced(l));
    assert_int_equal(atomic_load(&s.shutdown_calls), 1);
    assert_int_equal(atomic_load(&s.force_calls), 1);
    char b;
    assert_int_equal(recv(fd, &b, 1, 0), 0);
    close(fd);
    pd_loop_free(l);
}

static void test_force_during_grace(void **state)
{
    (void)state;
    struct svc_state s;
    memset(&s, 0, sizeof s);
    s.stuck = true;
    struct pd_loop *l = new_loop(2, 600000);
    struct pd_err err;
    struct pd_listen_spec spec;
    assert_int_equal(pd_loop_add_service(l, &test_ops, &s, &err), 0);
    assert_int_equal(pd_listen_spec_parse("127.0.0.1:0", &spec, &err), 0);
    assert_int_equal(pd_loop_add_listener(l, &spec, 0, &err), 0);
    struct runner r = {.loop = l};
    assert_int_equal(pthread_create(&r.thread, NULL, run_thread, &r), 0);
    int fd = connect_to(pd_loop_listener_port(l, 0));
    assert_true(wait_for(&s.accepted, 1));
    pd_loop_shutdown(l);
    assert_true(wait_for(&s.shutdown_calls, 2));
    assert_int_equal(atomic_load(&r.done), 0); /* a 10-minute grace: still draining */
    pd_loop_force(l);
    assert_true(wait_for(&r.done, 1));
    pthread_join(r.thread, NULL);
    assert_true(pd_loop_was_forced(l));
    close(fd);
    pd_loop_free(l);
}

static void test_shutdown_before_run(void **state)
{
    (void)state;
    struct svc_state s;
    memset(&s, 0, sizeof s);
    struct pd_loop *l = new_loop(2, 1000);
    struct pd_err err;
    assert_int_equal(pd_loop_add_service(l, &test_ops, &s, &err), 0);
    pd_loop_shutdown(l);
    assert_int_equal(pd_loop_run(l, &err), 0);
    assert_int_equal(pd_loop_run(l, &err), -1); /* once only */
    assert_int_equal(atomic_load(&s.fini_calls), 2);
    pd_loop_free(l);
}

static void test_free_without_run(void **state)
{
    (void)state;
    struct svc_state s;
    memset(&s, 0, sizeof s);
    struct pd_loop *l = new_loop(2, 1000);
    struct pd_err err;
    struct pd_listen_spec spec;
    assert_int_equal(pd_loop_add_service(l, &test_ops, &s, &err), 0);
    assert_int_equal(pd_listen_spec_parse("127.0.0.1:0", &spec, &err), 0);
    assert_int_equal(pd_loop_add_listener(l, &spec, 0, &err), 0);
    assert_int_equal(pd_worker_post(pd_loop_worker(l, 1), record_post, &s), 0);
    pd_loop_free(l); /* closes the listener; the queued post still gets its call */
    assert_int_equal(atomic_load(&s.posts), 1);
}

static int failing_init(struct pd_worker *w, void *svc, void **state, struct pd_err *err)
{
    (void)svc;
    (void)state;
    if (pd_worker_index(w) == 1) {
        pd_err_set(err, "refused on purpose");
        return -1;
    }
    return 0;
}

static void test_startup_failure(void **state)
{
    (void)state;
    struct svc_state s;
    memset(&s, 0, sizeof s);
    static const struct pd_loop_service failing = {.name = "failing", .worker_init = failing_init,
                                                   .accept = svc_accept};
    struct pd_loop *l = new_loop(3, 1000);
    struct pd_err err;
    assert_int_equal(pd_loop_add_service(l, &test_ops, &s, &err), 0);
    assert_int_equal(pd_loop_add_service(l, &failing, &s, &err), 1);
    err.msg[0] = '\0';
    assert_int_equal(pd_loop_run(l, &err), -1);
    assert_non_null(strstr(err.msg, "refused on purpose"));
    assert_non_null(strstr(err.msg, "worker 1"));
    pd_loop_free(l);
    /* Every worker that initialised the first service also finalised it. */
    assert_int_equal(atomic_load(&s.fini_calls), atomic_load(&s.init_calls));
}

static void test_add_listener_errors(void **state)
{
    (void)state;
    struct pd_loop *l = new_loop(1, 1000);
    struct pd_err err;
    struct pd_listen_spec spec;
    struct svc_state s;
    memset(&s, 0, sizeof s);
    assert_int_equal(pd_listen_spec_parse("127.0.0.1:0", &spec, &err), 0);
    assert_int_equal(pd_loop_add_listener(l, &spec, 0, &err), -1); /* no such service */
    assert_int_equal(pd_loop_add_service(l, &test_ops, &s, &err), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct pd_listen_spec bad = {.kind = PD_LISTEN_FD, .fd = p[0]};
    assert_int_equal(pd_loop_add_listener(l, &bad, 0, &err), -1);
    assert_non_null(strstr(err.msg, "not a socket"));
    close(p[1]);
    /* Inherited listening socket: accepted; the loop reports its real port. */
    uint16_t port = 0;
    int fd = listening_socket(AF_INET, &port);
    struct pd_listen_spec inh = {.kind = PD_LISTEN_FD, .fd = fd};
    assert_int_equal(pd_loop_add_listener(l, &inh, 0, &err), 0);
    assert_int_equal(pd_loop_listener_port(l, 0), port);
    static const struct pd_loop_service no_accept = {.name = "x"};
    assert_int_equal(pd_loop_add_service(l, &no_accept, NULL, &err), -1);
    pd_loop_free(l);
}

int main(void)
{
    pd_log_set_level(PD_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_parse_ok),
        cmocka_unit_test(test_spec_parse_errors),
        cmocka_unit_test(test_fd_not_a_socket),
        cmocka_unit_test(test_fd_not_listening),
        cmocka_unit_test(test_fd_wrong_kind),
        cmocka_unit_test(test_fd_ok_sets_flags),
        cmocka_unit_test(test_systemd_env),
        cmocka_unit_test(test_open_bind),
        cmocka_unit_test(test_worker_post),
        cmocka_unit_test(test_accept_and_graceful_shutdown),
        cmocka_unit_test(test_shutdown_bound_with_stuck_work),
        cmocka_unit_test(test_force_during_grace),
        cmocka_unit_test(test_shutdown_before_run),
        cmocka_unit_test(test_free_without_run),
        cmocka_unit_test(test_startup_failure),
        cmocka_unit_test(test_add_listener_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
