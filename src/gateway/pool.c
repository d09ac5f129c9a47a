/*
 * pool.c - idle keep-alive upstream connections, per worker (no lock: each worker has its own),
 * keyed by (host, port, address). A connection is pooled only after a complete response that the
 * upstream declared persistent, with nothing unread and no write in flight; it is reused only for a
 * request whose own decision checked that exact address. While idle it is read (px_up_read passes
 * its bytes to px_pool_idle_read): any byte or EOF closes it. At most PX_POOL_MAX per worker (the oldest goes), each at most PX_POOL_IDLE_MS. TLS
 * upstreams (the gateway's own TLS) are not pooled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/proxy.h"

static void unlink_up(struct px_upstream *up)
{
    struct px_worker *pw = up->pw;
    if (up->pprev)
        up->pprev->pnext = up->pnext;
    else
        pw->pool = up->pnext;
    if (up->pnext)
        up->pnext->pprev = up->pprev;
    up->pprev = up->pnext = NULL;
    pw->npool--;
}

static void discard(struct px_upstream *up)
{
    unlink_up(up);
    uv_close((uv_handle_t *)&up->tcp, px_upstream_closed);
}

void px_pool_idle_read(struct px_upstream *up, ssize_t nread, const uv_buf_t *buf)
{
    free(buf->base);
    if (nread == 0)
        return;
    discard(up); /* EOF, an error, or bytes nobody asked for */
}

bool px_pool_put(struct proxy_conn *c)
{
    struct px_upstream *up = c->up;
    struct px_worker *pw = c->pw;
    if (!up || !up->connected || up->nwrites > 0 || pw->stopping)
        return false;
    /* A pooled connection is read by px_up_read like an attached one (it sees up->c == NULL), so
     * handing it over costs no read stop/start pair (two epoll_ctl calls each way). */
    if (!c->up_reading &&
        uv_read_start((uv_stream_t *)&up->tcp, px_alloc_cb, px_up_read) != 0)
        return false;
    const char *host = c->d.upstream_host ? c->d.upstream_host : c->host;
    snprintf(up->host, sizeof up->host, "%s", host);
    up->port = c->d.upstream_port ? c->d.upstream_port : c->port;
    up->addr = c->dialed;
    up->pw = pw;
    up->idle_since_ms = uv_now(pd_worker_uv(pw->w));
    c->up = NULL;
    c->up_reading = false;
    up->c = NULL;
    c->pending--; /* the handle is the pool's now (c still holds its client and timer) */
    while (pw->npool >= PX_POOL_MAX) {
        struct px_upstream *last = pw->pool;
        while (last->pnext)
            last = last->pnext;
        discard(last);
    }
    up->pnext = pw->pool;
    if (pw->pool)
        pw->pool->pprev = up;
    pw->pool = up;
    pw->npool++;
    return true;
}

struct px_upstream *px_pool_take(struct proxy_conn *c, const char *host, uint16_t port)
{
    struct px_worker *pw = c->pw;
    uint64_t now = uv_now(pd_worker_uv(pw->w));
    for (struct px_upstream *up = pw->pool, *next; up; up = next) {
        next = up->pnext;
        if (now - up->idle_since_ms >= PX_POOL_IDLE_MS) {
            discard(up);
            continue;
        }
        if (up->port != port || strcmp(up->host, host) != 0)
            continue;
        for (size_t i = 0; i < c->naddrs; i++) {
            if (!pd_addr_equal(&c->addrs[i], &up->addr))
                continue;
            unlink_up(up);
            up->c = c;
            c->up_reading = true; /* it kept reading while idle */
            c->next_addr = i;
            return up;
        }
    }
    return NULL;
}

static void pool_sweep(uv_timer_t *t)
{
    struct px_worker *pw = t->data;
    uint64_t now = uv_now(pd_worker_uv(pw->w));
    for (struct px_upstream *up = pw->pool, *next; up; up = next) {
        next = up->pnext;
        if (now - up->idle_since_ms >= PX_POOL_IDLE_MS)
            discard(up);
    }
}

void px_pool_init(struct px_worker *pw)
{
    uv_timer_init(pd_worker_uv(pw->w), &pw->pool_timer);
    pw->pool_timer.data = pw;
    uv_timer_start(&pw->pool_timer, pool_sweep, PX_POOL_IDLE_MS / 4, PX_POOL_IDLE_MS / 4);
    pw->has_pool_timer = true;
}

void px_pool_close_all(struct px_worker *pw)
{
    while (pw->pool)
        discard(pw->pool);
    if (pw->has_pool_timer) {
        uv_timer_stop(&pw->pool_timer);
        uv_close((uv_handle_t *)&pw->pool_timer, NULL);
        pw->has_pool_timer = false;
    }
}
