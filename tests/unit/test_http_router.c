/* test_http_router.c - route matching, parameters, 404/405 + Allow, decoding and refusal cases. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/router.h"

static void h1(struct pd_http_ctx *ctx, const struct pd_http_req *req, void *user)
{
    (void)ctx;
    (void)req;
    (void)user;
}

static void h2(struct pd_http_ctx *ctx, const struct pd_http_req *req, void *user)
{
    (void)ctx;
    (void)req;
    (void)user;
}

static int tag_a, tag_b, tag_c, tag_d, tag_e, tag_f;

static struct pd_router *make_router(void)
{
    struct pd_router *r = pd_router_new();
    struct pd_err err;
    assert_non_null(r);
    assert_int_equal(pd_router_add(r, "GET", "/healthz", h1, &tag_a, &err), 0);
    assert_int_equal(pd_router_add(r, "GET", "/api/v1/agents/{agent_id}/heartbeat", h1, &tag_b, &err), 0);
    assert_int_equal(pd_router_add(r, "POST", "/api/v1/agents/{agent_id}/heartbeat", h2, &tag_c, &err), 0);
    assert_int_equal(pd_router_add(r, "GET", "/items/self", h1, &tag_d, &err), 0);
    assert_int_equal(pd_router_add(r, "GET", "/items/{id}", h2, &tag_e, &err), 0);
    assert_int_equal(pd_router_add(r, "DELETE", "/items/{id}", h2, &tag_e, &err), 0);
    assert_int_equal(pd_router_add(r, "GET", "/", h1, &tag_f, &err), 0);
    assert_int_equal(pd_router_add(r, "GET", "/a/{x}/b/{y}", h1, NULL, &err), 0);
    return r;
}

static enum pd_route_result match(const struct pd_router *r, const char *method, const char *path,
                                  struct pd_route_match *m, char *buf, size_t cap)
{
    return pd_router_match(r, pd_slice_of(method), pd_slice_of(path), m, buf, cap);
}

static void test_exact_match(void **state)
{
    (void)state;
    struct pd_router *r = make_router();
    struct pd_route_match m;
    char buf[256];
    assert_int_equal(match(r, "GET", "/healthz", &m, buf, sizeof buf), PD_ROUTE_FOUND);
    assert_ptr_equal(m.handler, h1);
    assert_ptr_equal(m.user, &tag_a);
    assert_int_equal(m.nparams, 0);
    assert_string_equal(m.pattern, "/healthz");
    assert_int_equal(match(r, "GET", "/", &m, buf, sizeof buf), PD_ROUTE_FOUND);
    assert_ptr_equal(m.user, &tag_f);
    pd_router_free(r);
}

static void test_params(void **state)
{
    (void)state;
    struct pd_router *r = make_router();
    struct pd_route_match m;
    char buf[256];
    assert_int_equal(match(r, "POST", "/api/v1/agents/ag-1/heartbeat", &m, buf, sizeof buf), PD_ROUTE_FOUND);
    assert_ptr_equal(m.handler, h2);
    assert_ptr_equal(m.user, &tag_c);
    assert_int_equal(m.nparams, 1);
    assert_string_equal(m.params[0].name, "agent_id");
    assert_string_equal(m.params[0].value, "ag-1");
    assert_int_equal(m.params[0].len, 4);
    assert_string_equal(pd_route_param_get(m.params, m.nparams, "agent_id"), "ag-1");
    assert_null(pd_route_param_get(m.params, m.nparams, "other"));

    assert_int_equal(match(r, "GET", "/a/1/b/2", &m, buf, sizeof buf), PD_ROUTE_FOUND);
    assert_int_equal(m.nparams, 2);
    assert_string_equal(pd_route_param_get(m.params, m.nparams, "x"), "1");
    assert_string_equal(pd_route_param_get(m.params, m.nparams, "y"), "2");
    pd_router_free(r);
}

static void test_first_registered_wins(void **state)
{
    (void)state;
    struct pd_router *r = make_router();
    struct pd_route_match m;
    char buf[256];
    assert_int_equal(match(r, "GET", "/items/self", &m, buf, sizeof buf), PD_ROUTE_FOUND);
    assert_ptr_equal(m.user, &tag_d);
    assert_int_equal(match(r, "GET", "/items/other", &m, buf, sizeof buf), PD_ROUTE_FOUND);
    assert_ptr_equal(m.user, &tag_e);
    pd_router_free(r);
}

static void test_not_found(void **state)
{
    (void)state;
    struct pd_router *r = make_router();
    struct pd_route_match m;
    char buf[256];
    const char *paths[] = {"/nope", "/healthz/", "/healthz/x", "/items", "/items/", "/items/1/", "//healthz",
                           "/api/v1/agents//heartbeat", "", "healthz", "/HEALTHZ"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        assert_int_equal(match(r, "GET", paths[i], &m, buf, sizeof buf), PD_ROUTE_NOT_FOUND);
    pd_router_free(r);
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    struct pd_router *r = make_router();
    struct pd_route_match m;
    char buf[256];
    assert_int_equal(match(r, "POST", "/healthz", &m, buf, sizeof buf), PD_ROUTE_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "GET, HEAD");
    assert_int_equal(match(r, "PUT", "/api/v1/agents/x/heartbeat", &m, buf, sizeof buf),
                     PD_ROUTE_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "GET, HEAD, POST");
    /* Allow is the union over every route matching the path. */
    assert_int_equal(match(r, "PATCH", "/items/self", &m, buf, sizeof buf), PD_ROUTE_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "GET, HEAD, DELETE");
    assert_int_equal(match(r, "FOO", "/items/7", &m, buf, sizeof buf), PD_ROUTE_METHOD_NOT_ALLOWED);
    pd_router_free(r);
}

static void test_head_falls_back_to_get(void **state)
{
    (void)state;
    struct pd_router *r = make_router();
    struct pd_err err;
    struct pd_route_match m;
    char buf[256];
    assert_int_equal(match(r, "HEAD", "/healthz", &m, buf, sizeof buf), PD_ROUTE_FOUND);
    assert_ptr_equal(m.user, &tag_a);
    /* An explicit HEAD route wins over the GET fallback. */
    assert_int_equal(pd_router_add(r, "HEAD", "/healthz", h2, &tag_b, &err), 0);
    assert_int_equal(match(r, "HEAD", "/healthz", &m, buf, sizeof buf), PD_ROUTE_FOUND);
    assert_ptr_equal(m.user, &tag_b);
    /* No GET route: HEAD is not allowed either. */
    assert_int_equal(pd_router_add(r, "POST", "/submit", h2, NULL, &err), 0);
    assert_int_equal(match(r, "HEAD", "/submit", &m, buf, sizeof buf), PD_ROUTE_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "POST");
    pd_router_free(r);
}

static void test_percent_decoding(void **state)
{
    (void)state;
    struct pd_router *r = make_router();
    struct pd_route_match m;
    char buf[256];
    assert_int_equal(match(r, "GET", "/items/a%20b%C3%A9", &m, buf, sizeof buf), PD_ROUTE_FOUND);
    assert_string_equal(m.params[0].value, "a b\xc3\xa9");
    /* '+' is not a space in a path. */
    assert_int_equal(match(r, "GET", "/items/a+b", &m, buf, sizeof buf), PD_ROUTE_FOUND);
    assert_string_equal(m.params[0].value, "a+b");
    /* Exact segments are compared decoded, as Starlette does. */
    assert_int_equal(match(r, "GET", "/it%65ms/self", &m, buf, sizeof buf), PD_ROUTE_FOUND);
    assert_ptr_equal(m.user, &tag_d);
    assert_int_equal(match(r, "GET", "/health%7A", &m, buf, sizeof buf), PD_ROUTE_FOUND);
    pd_router_free(r);
}

static void test_refused_paths(void **state)
{
    (void)state;
    struct pd_router *r = make_router();
    struct pd_route_match m;
    char buf[256];
    const char *bad[] = {"/items/a%2Fb", "/items/a%2fb", "/items/a%00b", "/items/%zz", "/items/%2", "/items/%",
                         "/items/..", "/items/.", "/items/%2e%2E", "/x/../healthz", "/healthz/%2F"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(match(r, "GET", bad[i], &m, buf, sizeof buf), PD_ROUTE_BAD_PATH);
        assert_non_null(m.error);
    }
    pd_router_free(r);
}

static void test_small_buffer_is_not_found(void **state)
{
    (void)state;
    struct pd_router *r = make_router();
    struct pd_route_match m;
    char buf[4];
    assert_int_equal(match(r, "GET", "/items/abcdefgh", &m, buf, sizeof buf), PD_ROUTE_NOT_FOUND);
    /* Deeper than any pattern. */
    char deep[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "/a");
    char big[256];
    assert_int_equal(match(r, "GET", deep, &m, big, sizeof big), PD_ROUTE_NOT_FOUND);
    pd_router_free(r);
}

static void test_add_refusals(void **state)
{
    (void)state;
    struct pd_router *r = make_router();
    struct pd_err err;
    const char *bad_patterns[] = {"healthz", "", "//x", "/x/", "/x//y", "/{}", "/{1a}", "/{a-b}", "/x{a}",
                                  "/{a}x", "/{a}/{a}", "/a b", "/a%20b", "/..", "/."};
    for (size_t i = 0; i < sizeof bad_patterns / sizeof bad_patterns[0]; i++) {
        err.msg[0] = '\0';
        assert_int_equal(pd_router_add(r, "GET", bad_patterns[i], h1, NULL, &err), -1);
        assert_true(strlen(err.msg) > 0);
    }
    assert_int_equal(pd_router_add(r, "get", "/lower", h1, NULL, &err), -1);
    assert_int_equal(pd_router_add(r, "", "/empty", h1, NULL, &err), -1);
    assert_int_equal(pd_router_add(r, "G T", "/space", h1, NULL, &err), -1);
    assert_int_equal(pd_router_add(r, "GET", "/x", NULL, NULL, &err), -1);
    /* Duplicate (method, pattern), also with a different parameter name. */
    assert_int_equal(pd_router_add(r, "GET", "/healthz", h2, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "already registered"));
    assert_int_equal(pd_router_add(r, "GET", "/items/{other}", h2, NULL, &err), -1);
    /* Same pattern, other method: fine. */
    assert_int_equal(pd_router_add(r, "PUT", "/items/{id}", h2, NULL, &err), 0);
    pd_router_free(r);
}

static void test_pct_decode(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(pd_http_pct_decode("a%41+b", 6, false, out, sizeof out), 4);
    assert_string_equal(out, "aA+b");
    assert_int_equal(pd_http_pct_decode("a%41+b", 6, true, out, sizeof out), 4);
    assert_string_equal(out, "aA b");
    assert_int_equal(pd_http_pct_decode("%4", 2, false, out, sizeof out), -1);
    assert_int_equal(pd_http_pct_decode("%g0", 3, false, out, sizeof out), -1);
    assert_int_equal(pd_http_pct_decode("%00", 3, false, out, sizeof out), -1);
    assert_int_equal(pd_http_pct_decode("abcd", 4, false, out, 4), -1); /* no room for the NUL */
    assert_int_equal(pd_http_pct_decode("abc", 3, false, out, 4), 3);
    assert_int_equal(pd_http_pct_decode("", 0, false, out, 1), 0);
    assert_string_equal(out, "");
}

static ssize_t q(const char *query, const char *name, char *buf, size_t cap)
{
    return pd_http_query_find(pd_slice_of(query), name, buf, cap);
}

static void test_query(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(q("ms=150", "ms", buf, sizeof buf), 3);
    assert_string_equal(buf, "150");
    assert_int_equal(q("a=1&ms=2&ms=3", "ms", buf, sizeof buf), 1);
    assert_string_equal(buf, "2"); /* first wins */
    assert_int_equal(q("x=a+b%20c", "x", buf, sizeof buf), 5);
    assert_string_equal(buf, "a b c");
    assert_int_equal(q("my%20key=v", "my key", buf, sizeof buf), 1);
    assert_int_equal(q("my+key=v", "my key", buf, sizeof buf), 1);
    assert_int_equal(q("flag&x=1", "flag", buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    assert_int_equal(q("x=", "x", buf, sizeof buf), 0);
    assert_int_equal(q("&&x=1&", "x", buf, sizeof buf), 1);
    assert_int_equal(q("x=1", "y", buf, sizeof buf), PD_HTTP_QUERY_ABSENT);
    assert_int_equal(q("", "x", buf, sizeof buf), PD_HTTP_QUERY_ABSENT);
    assert_int_equal(q("xx=1", "x", buf, sizeof buf), PD_HTTP_QUERY_ABSENT);
    assert_int_equal(q("x=%zz", "x", buf, sizeof buf), PD_HTTP_QUERY_INVALID);
    assert_int_equal(q("x=a%00b", "x", buf, sizeof buf), PD_HTTP_QUERY_INVALID);
    assert_int_equal(q("x=0123456789", "x", buf, 8), PD_HTTP_QUERY_INVALID);
    /* A malformed key that is not the one asked for does not spoil the lookup. */
    assert_int_equal(q("%zz=1&x=2", "x", buf, sizeof buf), 1);
    assert_string_equal(buf, "2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_match),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_first_registered_wins),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_head_falls_back_to_get),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_refused_paths),
        cmocka_unit_test(test_small_buffer_is_not_found),
        cmocka_unit_test(test_add_refusals),
        cmocka_unit_test(test_pct_decode),
        cmocka_unit_test(test_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
