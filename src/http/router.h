/*
 * router.h - HTTP route table: method + path pattern -> handler, FastAPI-compatible outcomes.
 *
 * Patterns are "/seg/seg/{param}/seg": exact segments and whole-segment {name} parameters (name matches
 * [A-Za-z_][A-Za-z0-9_]*, unique within the pattern). "/" is the root. Empty segments ("//", trailing "/")
 * are not allowed in patterns, so "/x/" never matches "/x" (404, as in FastAPI without redirects).
 *
 * Matching a request path (the raw path without the query):
 *   - the path is split on '/', each segment percent-decoded; a segment whose decoding contains '/' or NUL
 *     (%2F, %00), a malformed escape, or a "." / ".." segment is refused: PD_ROUTE_BAD_PATH (answer 400);
 *   - the first route in registration order whose pattern and method match wins (a {param} matches any
 *     non-empty segment); HEAD falls back to GET routes (the server then suppresses the body);
 *   - a path matched by some route but not with this method: PD_ROUTE_METHOD_NOT_ALLOWED, with `allow`
 *     listing every method of the matching routes ("GET, HEAD, POST"); no route: PD_ROUTE_NOT_FOUND.
 * Decoded parameter values are written NUL-terminated into a caller buffer; they stay valid as long as it.
 *
 * Query strings (application/x-www-form-urlencoded as Starlette reads them: '&' separated, '+' is a space):
 * pd_http_query_get() finds the first parameter with a given (decoded) name and decodes its value.
 *
 * The router is built at startup and read-only afterwards: lookups from many worker threads are safe.
 */
#ifndef PD_HTTP_ROUTER_H
#define PD_HTTP_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/slice.h"

#define PD_ROUTER_MAX_PARAMS 16
#define PD_ROUTER_MAX_SEGMENTS 32
#define PD_ROUTER_METHOD_MAX 24
#define PD_ROUTER_ALLOW_MAX 256

struct pd_http_ctx; /* server.h */
struct pd_http_req; /* server.h */

typedef void (*pd_http_handler_fn)(struct pd_http_ctx *ctx, const struct pd_http_req *req, void *user);

struct pd_router;

struct pd_route_param {
    const char *name;  /* from the pattern (owned by the router) */
    const char *value; /* decoded, NUL-terminated (in the caller's buffer) */
    size_t len;
};

enum pd_route_result {
    PD_ROUTE_FOUND,
    PD_ROUTE_NOT_FOUND,          /* 404 {"detail": "Not Found"} */
    PD_ROUTE_METHOD_NOT_ALLOWED, /* 405 {"detail": "Method Not Allowed"}, Allow: m.allow */
    PD_ROUTE_BAD_PATH,           /* 400 {"detail": m.error} */
};

struct pd_route_match {
    pd_http_handler_fn handler;
    void *user;
    const char *pattern; /* the matched route's pattern */
    struct pd_route_param params[PD_ROUTER_MAX_PARAMS];
    size_t nparams;
    char allow[PD_ROUTER_ALLOW_MAX];
    const char *error; /* static text for BAD_PATH */
};

struct pd_router *pd_router_new(void);
void pd_router_free(struct pd_router *r);

/* method: an uppercase token ("GET"); pattern as above. Refuses a duplicate (method, pattern). */
int pd_router_add(struct pd_router *r, const char *method, const char *pattern, pd_http_handler_fn handler,
                  void *user, struct pd_err *err);

/*
 * Look up method + raw path (no query). buf/cap receive the decoded parameter values; a cap of
 * path.n + PD_ROUTER_MAX_PARAMS is always enough. A path longer than cap allows is NOT_FOUND.
 */
enum pd_route_result pd_router_match(const struct pd_router *r, struct pd_slice method, struct pd_slice path,
                                     struct pd_route_match *m, char *buf, size_t cap);

/* Value of a matched parameter, or NULL. */
const char *pd_route_param_get(const struct pd_route_param *params, size_t n, const char *name);

/*
 * Percent-decode in[0..n) into out (cap bytes, NUL-terminated). plus_space turns '+' into ' '.
 * Returns the decoded length, or -1 on a malformed escape, a decoded NUL or when it does not fit.
 */
ssize_t pd_http_pct_decode(const char *in, size_t n, bool plus_space, char *out, size_t cap);

/*
 * Query parameter lookup on a raw query string (without '?'). Returns the decoded value length (value in
 * buf, NUL-terminated), PD_HTTP_QUERY_ABSENT when no parameter has that name, PD_HTTP_QUERY_INVALID when
 * the value is malformed, holds a NUL or does not fit in cap.
 */
#define PD_HTTP_QUERY_ABSENT (-1)
#define PD_HTTP_QUERY_INVALID (-2)
ssize_t pd_http_query_find(struct pd_slice query, const char *name, char *buf, size_t cap);

#endif
