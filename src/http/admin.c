/* admin.c - /healthz and /metrics for admin listeners (see admin.h). */
#include "http/admin.h"

#include <jansson.h>

#include "http/server.h"

static void h_healthz(struct pd_http_ctx *ctx, const struct pd_http_req *req, void *user)
{
    (void)req;
    (void)user;
    pd_http_reply_json(ctx, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_metrics(struct pd_http_ctx *ctx, const struct pd_http_req *req, void *user)
{
    (void)req;
    struct pd_metrics_buf b;
    struct pd_err err = {{0}};
    pd_metrics_buf_init(&b, 0);
    if (pd_metrics_render(user, &b, &err) != 0) {
        pd_metrics_buf_free(&b);
        pd_http_reply_error(ctx, 500, "rendering metrics failed: %s", err.msg);
        return;
    }
    pd_http_reply(ctx, 200, PD_METRICS_CONTENT_TYPE, b.data, b.len);
    pd_metrics_buf_free(&b);
}

int pd_http_admin_routes(struct pd_router *r, struct pd_metrics *reg, struct pd_err *err)
{
    if (pd_router_add(r, "GET", "/healthz", h_healthz, NULL, err) != 0)
        return -1;
    return pd_router_add(r, "GET", "/metrics", h_metrics, reg, err) != 0 ? -1 : 0;
}
