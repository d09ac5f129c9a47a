/*
 * admin.h - the two endpoints every Paddock daemon's admin listener serves:
 *   GET /healthz  -> 200 {"status":"ok"}
 *   GET /metrics  -> 200 Prometheus text exposition of a registry (core/metrics.h), 500 {"detail"} if
 *                    rendering fails (out of memory)
 * Who calls it: the gateway (and later the DNS filter, agentd) and tests/integration/testd.c, when they
 * build the router of their admin server. The registry is borrowed and must outlive the router.
 */
#ifndef PD_HTTP_ADMIN_H
#define PD_HTTP_ADMIN_H

#include "core/err.h"
#include "core/metrics.h"
#include "http/router.h"

/* Add both routes to r. Returns 0, or -1 with err set (e.g. a route already exists). */
int pd_http_admin_routes(struct pd_router *r, struct pd_metrics *reg, struct pd_err *err);

#endif
