/*
 * router.c - route table and percent-decoding (see router.h).
 *
 * Routes are few (tens) and patterns short, so a linear scan over pre-split patterns is simpler and as fast
 * as a trie at this size. The request path is split and decoded once per lookup, then compared per route.
 */
#include "http/router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct route_seg {
    char *text; /* exact text, or the parameter name */
    size_t len;
    bool param;
};

struct route {
    char method[PD_ROUTER_METHOD_MAX];
    char *pattern;
    struct route_seg segs[PD_ROUTER_MAX_SEGMENTS];
    size_t nsegs;
    size_t nparams;
    pd_http_handler_fn handler;
    void *user;
};

struct pd_router {
    struct route *routes;
    size_t n, cap;
};

struct pd_router *pd_router_new(void)
{
    return calloc(1, sizeof(struct pd_router));
}

static void route_free(struct route *rt)
{
    for (size_t i = 0; i < rt->nsegs; i++)
        free(rt->segs[i].text);
    free(rt->pattern);
}

void pd_router_free(struct pd_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        route_free(&r->routes[i]);
    free(r->routes);
    free(r);
}

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ident(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Characters allowed literally in an exact pattern segment: RFC 3986 pchar minus '%' (patterns are given
 * decoded) and minus '{' '}' (reserved for parameters). */
static bool is_pattern_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

static bool same_pattern(const struct route *a, const struct route *b)
{
    if (a->nsegs != b->nsegs)
        return false;
    for (size_t i = 0; i < a->nsegs; i++) {
        if (a->segs[i].param != b->segs[i].param)
            return false;
        if (!a->segs[i].param &&
            (a->segs[i].len != b->segs[i].len || memcmp(a->segs[i].text, b->segs[i].text, a->segs[i].len)))
            return false;
    }
    return true;
}

int pd_router_add(struct pd_router *r, const char *method, const char *pattern, pd_http_handler_fn handler,
                  void *user, struct pd_err *err)
{
    if (!method || !pattern || !handler) {
        pd_err_set(err, "route needs a method, a pattern and a handler");
        return -1;
    }
    size_t ml = strlen(method);
    if (ml == 0 || ml >= PD_ROUTER_METHOD_MAX) {
        pd_err_set(err, "route method '%.40s': expected an uppercase token of 1..%d characters", method,
                   PD_ROUTER_METHOD_MAX - 1);
        return -1;
    }
    for (size_t i = 0; i < ml; i++) {
        unsigned char c = (unsigned char)method[i];
        if (!is_tchar(c) || (c >= 'a' && c <= 'z')) {
            pd_err_set(err, "route method '%.40s': expected an uppercase token", method);
            return -1;
        }
    }
    if (pattern[0] != '/') {
        pd_err_set(err, "route pattern '%.200s' must start with '/'", pattern);
        return -1;
    }
    struct route rt;
    memset(&rt, 0, sizeof rt);
    memcpy(rt.method, method, ml + 1);
    rt.handler = handler;
    rt.user = user;
    const char *p = pattern + 1;
    /* "/" alone is the root: zero segments. */
    while (*p || (p > pattern + 1 && p[-1] == '/')) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        const char *why = NULL;
        bool param = len >= 2 && p[0] == '{' && p[len - 1] == '}';
        if (len == 0)
            why = "empty segment (no '//' and no trailing '/')";
        else if (rt.nsegs >= PD_ROUTER_MAX_SEGMENTS)
            why = "too many segments";
        else if (param && !is_ident(p + 1, len - 2))
            why = "parameter names must match [A-Za-z_][A-Za-z0-9_]*";
        else if (param && rt.nparams >= PD_ROUTER_MAX_PARAMS)
            why = "too many parameters";
        else if (!param) {
            for (size_t i = 0; i < len && !why; i++)
                if (!is_pattern_char((unsigned char)p[i]))
                    why = "invalid character in a segment ('{name}' must be a whole segment)";
            if (!why && ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')))
                why = "'.' and '..' segments are not allowed";
        }
        if (!why && param) {
            for (size_t i = 0; i < rt.nsegs && !why; i++)
                if (rt.segs[i].param && rt.segs[i].len == len - 2 && !memcmp(rt.segs[i].text, p + 1, len - 2))
                    why = "duplicate parameter name";
        }
        if (why) {
            pd_err_set(err, "route pattern '%.200s': %s", pattern, why);
            route_free(&rt);
            return -1;
        }
        const char *src = param ? p + 1 : p;
        size_t sl = param ? len - 2 : len;
        char *t = malloc(sl + 1);
        if (!t) {
            pd_err_set(err, "out of memory");
            route_free(&rt);
            return -1;
        }
        memcpy(t, src, sl);
        t[sl] = '\0';
        rt.segs[rt.nsegs].text = t;
        rt.segs[rt.nsegs].len = sl;
        rt.segs[rt.nsegs].param = param;
        rt.nsegs++;
        if (param)
            rt.nparams++;
        if (!slash)
            break;
        p = slash + 1;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->routes[i].method, rt.method) == 0 && same_pattern(&r->routes[i], &rt)) {
            pd_err_set(err, "route %s %.200s is already registered (as %.200s)", method, pattern,
                       r->routes[i].pattern);
            route_free(&rt);
            return -1;
        }
    }
    rt.pattern = strdup(pattern);
    if (!rt.pattern) {
        pd_err_set(err, "out of memory");
        route_free(&rt);
        return -1;
    }
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 16;
        struct route *nr = realloc(r->routes, nc * sizeof *nr);
        if (!nr) {
            pd_err_set(err, "out of memory");
            route_free(&rt);
            return -1;
        }
        r->routes = nr;
        r->cap = nc;
    }
    r->routes[r->n++] = rt;
    return 0;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t pd_http_pct_decode(const char *in, size_t n, bool plus_space, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            if (n - i < 3)
                return -1; /* fewer than two hex digits follow */
            int hi = hexval((unsigned char)in[i + 1]), lo = hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    if (cap == 0)
        return -1;
    out[o] = '\0';
    return (ssize_t)o;
}

struct req_seg {
    const char *raw;
    size_t rawlen;
    const char *dec; /* decoded, in the caller's buffer */
    size_t len;
};

static void add_allow(char *allow, const char *method)
{
    size_t al = strlen(allow), ml = strlen(method);
    /* Already listed? */
    const char *p = allow;
    while (*p) {
        const char *e = strstr(p, ", ");
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == ml && memcmp(p, method, ml) == 0)
            return;
        if (!e)
            break;
        p = e + 2;
    }
    size_t need = (al ? 2 : 0) + ml;
    if (al + need + 1 > PD_ROUTER_ALLOW_MAX)
        return; /* cannot happen with sane tables; a shorter Allow is still correct HTTP */
    if (al) {
        memcpy(allow + al, ", ", 2);
        al += 2;
    }
    memcpy(allow + al, method, ml + 1);
}

static bool path_matches(const struct route *rt, const struct req_seg *segs, size_t nsegs)
{
    if (rt->nsegs != nsegs)
        return false;
    for (size_t i = 0; i < nsegs; i++) {
        if (rt->segs[i].param)
            continue; /* non-empty is guaranteed by the split */
        if (rt->segs[i].len != segs[i].len || memcmp(rt->segs[i].text, segs[i].dec, segs[i].len) != 0)
            return false;
    }
    return true;
}

enum pd_route_result pd_router_match(const struct pd_router *r, struct pd_slice method, struct pd_slice path,
                                     struct pd_route_match *m, char *buf, size_t cap)
{
    memset(m, 0, sizeof *m);
    struct req_seg segs[PD_ROUTER_MAX_SEGMENTS];
    size_t nsegs = 0;
    bool has_empty = false;
    if (path.n == 0 || path.p[0] != '/')
        return PD_ROUTE_NOT_FOUND;
    size_t used = 0;
    size_t i = 1;
    if (path.n > 1) {
        for (;;) {
            size_t start = i;
            while (i < path.n && path.p[i] != '/')
                i++;
            if (nsegs == PD_ROUTER_MAX_SEGMENTS)
                return PD_ROUTE_NOT_FOUND; /* deeper than any pattern can be */
            struct req_seg *s = &segs[nsegs++];
            s->raw = path.p + start;
            s->rawlen = i - start;
            if (s->rawlen == 0)
                has_empty = true;
            if (used >= cap)
                return PD_ROUTE_NOT_FOUND;
            char *d = buf + used;
            s->dec = d;
            ssize_t dl = pd_http_pct_decode(s->raw, s->rawlen, false, d, cap - used);
            if (dl < 0) {
                /* Tell apart "does not fit" (never with an adequate cap) from a refused decoding. */
                if (s->rawlen + 1 > cap - used)
                    return PD_ROUTE_NOT_FOUND;
                m->error = "invalid percent-encoding in the path (or an encoded NUL)";
                return PD_ROUTE_BAD_PATH;
            }
            s->len = (size_t)dl;
            if (memchr(s->dec, '/', s->len)) {
                m->error = "an encoded '/' (%2F) is not allowed in a path segment";
                return PD_ROUTE_BAD_PATH;
            }
            if ((s->len == 1 && s->dec[0] == '.') || (s->len == 2 && s->dec[0] == '.' && s->dec[1] == '.')) {
                m->error = "'.' and '..' path segments are not allowed";
                return PD_ROUTE_BAD_PATH;
            }
            used += s->len + 1;
            if (i >= path.n)
                break;
            i++; /* skip '/' */
            if (i == path.n) {
                /* trailing slash: an empty last segment, which no pattern has */
                if (nsegs == PD_ROUTER_MAX_SEGMENTS)
                    return PD_ROUTE_NOT_FOUND;
                segs[nsegs].raw = path.p + i;
                segs[nsegs].rawlen = 0;
                segs[nsegs].dec = "";
                segs[nsegs].len = 0;
                nsegs++;
                has_empty = true;
                break;
            }
        }
    }
    if (has_empty)
        return PD_ROUTE_NOT_FOUND; /* patterns never have empty segments */

    bool is_head = method.n == 4 && memcmp(method.p, "HEAD", 4) == 0;
    const struct route *found = NULL;
    const struct route *get_fallback = NULL;
    bool path_seen = false;
    for (size_t k = 0; k < r->n; k++) {
        const struct route *rt = &r->routes[k];
        if (!path_matches(rt, segs, nsegs))
            continue;
        path_seen = true;
        add_allow(m->allow, rt->method);
        if (strcmp(rt->method, "GET") == 0)
            add_allow(m->allow, "HEAD");
        size_t ml = strlen(rt->method);
        if (!found && ml == method.n && memcmp(rt->method, method.p, ml) == 0)
            found = rt;
        if (!get_fallback && is_head && strcmp(rt->method, "GET") == 0)
            get_fallback = rt;
    }
    if (!found)
        found = get_fallback;
    if (!found)
        return path_seen ? PD_ROUTE_METHOD_NOT_ALLOWED : PD_ROUTE_NOT_FOUND;
    m->handler = found->handler;
    m->user = found->user;
    m->pattern = found->pattern;
    for (size_t k = 0; k < nsegs; k++) {
        if (!found->segs[k].param)
            continue;
        m->params[m->nparams].name = found->segs[k].text;
        m->params[m->nparams].value = segs[k].dec;
        m->params[m->nparams].len = segs[k].len;
        m->nparams++;
    }
    return PD_ROUTE_FOUND;
}

const char *pd_route_param_get(const struct pd_route_param *params, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(params[i].name, name) == 0)
            return params[i].value;
    return NULL;
}

ssize_t pd_http_query_find(struct pd_slice query, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    size_t i = 0;
    while (i <= query.n && query.n > 0) {
        size_t start = i;
        while (i < query.n && query.p[i] != '&')
            i++;
        const char *pair = query.p + start;
        size_t pl = i - start;
        i++; /* past '&' (or past the end) */
        if (pl == 0)
            continue;
        const char *eq = memchr(pair, '=', pl);
        size_t kl = eq ? (size_t)(eq - pair) : pl;
        /* Decode the key into a small buffer: keys longer than the wanted name cannot match after decoding
         * unless they hold escapes, which at most triple the length. */
        char key[256];
        if (kl > 3 * nl + 3 || kl >= sizeof key)
            continue;
        ssize_t dk = pd_http_pct_decode(pair, kl, true, key, sizeof key);
        if (dk < 0 || (size_t)dk != nl || memcmp(key, name, nl) != 0)
            continue;
        const char *v = eq ? eq + 1 : pair + pl;
        size_t vl = eq ? pl - kl - 1 : 0;
        ssize_t dv = pd_http_pct_decode(v, vl, true, buf, cap);
        return dv < 0 ? PD_HTTP_QUERY_INVALID : dv;
    }
    return PD_HTTP_QUERY_ABSENT;
}
