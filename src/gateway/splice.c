/*
 * splice.c - zero-copy tunnels (proxy.h). A tunnel (CONNECT, or a WebSocket after its 101) whose
 * bytes the gateway does not transform (no gateway TLS) moves them socket -> pipe -> socket with
 * splice(2) once nothing is queued in user space on either side: the payload never enters the
 * process, which is what makes bulk tunnels cost little more than the kernel's own TCP work.
 *
 * While splicing, libuv no longer reads or writes the two TCP handles; one uv_poll_t per socket
 * watches readability (for the direction it feeds) and writability (when the pipe toward it holds
 * bytes that did not fit). Each direction is { source fd -> pipe -> destination fd }:
 *   - readable source and room in the pipe: splice in (0 = the source's EOF);
 *   - bytes in the pipe: splice out; what the destination did not take waits for POLLOUT, and the
 *     source is not read meanwhile (the pipe is the backpressure bound, PX_SPLICE_PIPE bytes);
 *   - EOF read and the pipe empty: shutdown(SHUT_WR) of the destination (half-close passes on);
 *     both directions shut: the tunnel is over.
 * Bytes are counted when they reach the destination, charged to the byte budget and re-arm the
 * idle timer like relayed ones (px_tunnel_bytes); a spent budget closes the tunnel. Any error
 * closes it. px_splice_stop (from px_close / px_close_up) closes the polls before the sockets.
 * When the pipes or polls cannot be set up, the tunnel keeps the copying relay.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "gateway/proxy.h"

#define COMPONENT "gateway"

struct px_dir {
    int pr, pw; /* the pipe */
    size_t len; /* bytes in the pipe */
    bool eof; /* the source said EOF */
    bool shut; /* the destination got our FIN */
};

struct px_splice {
    uv_poll_t cpoll, upoll;
    int cfd, ufd;
    int cev, uev; /* events each poll watches now */
    struct px_dir c2u, u2c;
};

static bool pipe_open(struct px_dir *d)
{
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return false;
    d->pr = p[0];
    d->pw = p[1];
    /* A larger pipe moves more per call; the default (64 KiB) stays if the kernel refuses. */
    (void)fcntl(d->pw, F_SETPIPE_SZ, (int)PX_SPLICE_PIPE);
    return true;
}

static void pipe_close(struct px_dir *d)
{
    if (d->pr >= 0)
        close(d->pr);
    if (d->pw >= 0)
        close(d->pw);
    d->pr = d->pw = -1;
}

static void poll_closed(uv_handle_t *h)
{
    px_drop_pending(h->data);
}

static void on_poll(uv_poll_t *p, int status, int events);

bool px_splice_start(struct proxy_conn *c)
{
    uv_os_fd_t cfd, ufd;
    if (uv_fileno((uv_handle_t *)c->tcp, &cfd) != 0 ||
        uv_fileno((uv_handle_t *)&c->up->tcp, &ufd) != 0)
        return false;
    struct px_splice *sp = calloc(1, sizeof *sp);
    if (!sp)
        return false;
    sp->c2u.pr = sp->c2u.pw = sp->u2c.pr = sp->u2c.pw = -1;
    sp->cfd = cfd;
    sp->ufd = ufd;
    if (!pipe_open(&sp->c2u) || !pipe_open(&sp->u2c))
        goto fail;
    /* libuv lets a poll handle take a socket only while the socket's own handle watches nothing. */
    if (c->client_reading) {
        uv_read_stop((uv_stream_t *)c->tcp);
        c->client_reading = false;
    }
    if (c->up_reading) {
        uv_read_stop((uv_stream_t *)&c->up->tcp);
        c->up_reading = false;
    }
    uv_loop_t *loop = pd_worker_uv(c->pw->w);
    if (uv_poll_init_socket(loop, &sp->cpoll, cfd) != 0)
        goto fail;
    if (uv_poll_init_socket(loop, &sp->upoll, ufd) != 0) {
        sp->cpoll.data = c;
        c->pending++;
        uv_close((uv_handle_t *)&sp->cpoll, poll_closed);
        pipe_close(&sp->c2u);
        pipe_close(&sp->u2c);
        c->sp_dead = sp; /* freed with c, after the close callback */
        return false;
    }
    sp->cpoll.data = sp->upoll.data = c;
    c->pending += 2;
    c->sp = sp;
    px_splice_update(c);
    return true;
fail:
    pipe_close(&sp->c2u);
    pipe_close(&sp->u2c);
    free(sp);
    return false;
}

void px_splice_stop(struct proxy_conn *c)
{
    struct px_splice *sp = c->sp;
    if (!sp)
        return;
    c->sp = NULL;
    c->sp_dead = sp; /* the poll handles live in it until their close callbacks ran */
    uv_close((uv_handle_t *)&sp->cpoll, poll_closed);
    uv_close((uv_handle_t *)&sp->upoll, poll_closed);
    pipe_close(&sp->c2u);
    pipe_close(&sp->u2c);
}

static int dir_events_src(const struct px_dir *d)
{
    return !d->eof && d->len < PX_SPLICE_PIPE ? UV_READABLE : 0;
}

static int dir_events_dst(const struct px_dir *d)
{
    return d->len > 0 ? UV_WRITABLE : 0;
}

static void set_events(uv_poll_t *p, int *cur, int want)
{
    if (want == *cur)
        return;
    *cur = want;
    if (want == 0)
        uv_poll_stop(p);
    else
        uv_poll_start(p, want, on_poll);
}

void px_splice_update(struct proxy_conn *c)
{
    struct px_splice *sp = c->sp;
    set_events(&sp->cpoll, &sp->cev, dir_events_src(&sp->c2u) | dir_events_dst(&sp->u2c));
    set_events(&sp->upoll, &sp->uev, dir_events_src(&sp->u2c) | dir_events_dst(&sp->c2u));
}

/* Move what the pipe holds to dst. Returns bytes moved, or -1 on an error of dst (errno set). */
static ssize_t drain(struct px_dir *d, int dst)
{
    size_t moved = 0;
    while (d->len > 0) {
        ssize_t n = splice(d->pr, NULL, dst, NULL, d->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            return -1;
        }
        if (n == 0)
            break;
        d->len -= (size_t)n;
        moved += (size_t)n;
    }
    return (ssize_t)moved;
}

/* Fill the pipe from src. false on an error of src (errno set); sets d->eof on EOF. */
static bool fill(struct px_dir *d, int src)
{
    while (!d->eof && d->len < PX_SPLICE_PIPE) {
        ssize_t n = splice(src, NULL, d->pw, NULL, PX_SPLICE_PIPE - d->len,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return true; /* the socket is empty, or the pipe is full */
            return false;
        }
        if (n == 0) {
            d->eof = true;
            return true;
        }
        d->len += (size_t)n;
    }
    return true;
}

/* Pass what the pipe holds on to dst, and an EOF once it is empty. false: the tunnel failed. */
static bool pass(struct proxy_conn *c, struct px_dir *d, int dst, bool to_up)
{
    ssize_t n = drain(d, dst);
    if (n < 0) {
        pd_log(PD_LOG_DEBUG, COMPONENT, "tunnel_write_failed", PD_LSTR("host", c->host),
               PD_LSTR("to", to_up ? "upstream" : "client"), PD_LSTR("error", strerror(errno)));
        return false;
    }
    if (n > 0) {
        if (to_up)
            c->bytes_sent += (uint64_t)n;
        else
            c->bytes_received += (uint64_t)n;
        px_charge(c);
        px_tunnel_bytes(c);
    }
    if (d->eof && d->len == 0 && !d->shut) {
        d->shut = true;
        if (to_up)
            c->client_eof = true;
        else
            c->up_eof = true;
        if (shutdown(dst, SHUT_WR) != 0 && errno != ENOTCONN)
            return false;
    }
    return true;
}

/* The source of d is readable: fill the pipe, then pass it on. */
static bool pull(struct proxy_conn *c, struct px_dir *d, int src, int dst, bool to_up)
{
    if (!fill(d, src)) {
        pd_log(PD_LOG_DEBUG, COMPONENT, "tunnel_read_failed", PD_LSTR("host", c->host),
               PD_LSTR("from", to_up ? "client" : "upstream"), PD_LSTR("error", strerror(errno)));
        return false;
    }
    return pass(c, d, dst, to_up);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct proxy_conn *c = p->data;
    struct px_splice *sp = c->sp;
    if (!sp || c->state == PX_CLOSED)
        return;
    if (status < 0) { /* a socket error */
        px_close(c);
        return;
    }
    bool ok = true;
    if (p == &sp->cpoll) { /* the client: it sends c2u, it receives u2c */
        if (events & UV_READABLE)
            ok = pull(c, &sp->c2u, sp->cfd, sp->ufd, true);
        if (ok && (events & UV_WRITABLE))
            ok = pass(c, &sp->u2c, sp->cfd, false);
    } else {
        if (events & UV_READABLE)
            ok = pull(c, &sp->u2c, sp->ufd, sp->cfd, false);
        if (ok && (events & UV_WRITABLE))
            ok = pass(c, &sp->c2u, sp->ufd, true);
    }
    if (!ok || c->budget_spent || (sp->c2u.shut && sp->u2c.shut)) {
        px_close(c);
        return;
    }
    px_splice_update(c);
}
