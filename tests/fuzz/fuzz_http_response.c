/*
 * fuzz_http_response.c - libFuzzer target for pd_http_parse_response (src/http/parse.c).
 *
 * Parses the input as the answer to a GET, a HEAD and a CONNECT, with the default limits and with
 * tiny ones, and abort()s when an invariant breaks: errors are 502 with an "upstream" reason,
 * slices lie inside the head, framing follows RFC 9112 section 6.3 for the request method,
 * keep_alive is false for CLOSE and TUNNEL, and every strict prefix of an accepted head is
 * incomplete.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool inside(const char *buf, size_t len, struct pd_slice s)
{
    if (s.n == 0)
        return true;
    return s.p >= buf && s.n <= len && (size_t)(s.p - buf) <= len - s.n;
}

static void check_framing(const struct pd_http_response *r, enum pd_http_method m)
{
    enum pd_http_framing f = r->framing;
    check(f == PD_HTTP_BODY_NONE || f == PD_HTTP_BODY_LENGTH || f == PD_HTTP_BODY_CHUNKED ||
          f == PD_HTTP_BODY_CLOSE || f == PD_HTTP_BODY_TUNNEL);
    if (r->status == 101)
        check(f == PD_HTTP_BODY_TUNNEL);
    else if (m == PD_HTTP_M_HEAD || r->status < 200 || r->status == 204 || r->status == 304)
        check(f == PD_HTTP_BODY_NONE);
    else if (m == PD_HTTP_M_CONNECT && r->status < 300)
        check(f == PD_HTTP_BODY_TUNNEL);
    else
        check(f != PD_HTTP_BODY_NONE && f != PD_HTTP_BODY_TUNNEL);
    check(f == PD_HTTP_BODY_LENGTH || r->content_length == 0);
    check(r->content_length <= (uint64_t)INT64_MAX);
    if (f == PD_HTTP_BODY_CLOSE || f == PD_HTTP_BODY_TUNNEL)
        check(!r->keep_alive);
}

static void check_head(const char *buf, long rc, const struct pd_http_response *r,
                       const struct pd_http_limits *l, enum pd_http_method m)
{
    size_t n = (size_t)rc;
    check(r->head_len == n && n <= l->max_head && n >= 16);
    check(memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    check(r->status >= 100 && r->status <= 999);
    check(r->version_minor == 0 || r->version_minor == 1);
    check(r->nheaders <= l->max_headers && r->nheaders <= PD_HTTP_MAX_HEADERS);
    check(r->nconn_tokens <= PD_HTTP_MAX_CONN_TOKENS);
    check(inside(buf, n, r->reason));
    for (size_t i = 0; i < r->nheaders; i++)
        check(inside(buf, n, r->headers[i].name) && inside(buf, n, r->headers[i].value) &&
              r->headers[i].name.n > 0);
    for (size_t i = 0; i < r->nconn_tokens; i++)
        check(inside(buf, n, r->conn_tokens[i]));
    check_framing(r, m);
}

static long parse_copy(const char *buf, size_t len, const struct pd_http_limits *l,
                       enum pd_http_method m, struct pd_http_response *r)
{
    struct pd_http_error e;
    char *copy = malloc(len ? len : 1);
    check(copy != NULL);
    memcpy(copy, buf, len);
    long rc = pd_http_parse_response(copy, len, l, m, r, &e);
    if (rc > 0)
        check_head(copy, rc, r, l, m);
    free(copy);
    return rc;
}

static void run(const char *buf, size_t len, const struct pd_http_limits *l, enum pd_http_method m,
                struct pd_http_response *r)
{
    struct pd_http_error e;
    long rc = pd_http_parse_response(buf, len, l, m, r, &e);
    if (rc < 0) {
        check(rc == -1 && e.status == 502 && e.reason != NULL && e.offset <= len);
        check(strncmp(e.reason, "upstream", 8) == 0);
        return;
    }
    if (rc == 0) {
        check(len < l->max_head);
        return;
    }
    check((size_t)rc <= len);
    check_head(buf, rc, r, l, m);
    size_t n = (size_t)rc, step = n <= 512 ? 1 : n / 256;
    for (size_t k = 0; k < n; k += (k + 16 >= n ? 1 : step))
        check(parse_copy(buf, k, l, m, r) == 0);
    check(parse_copy(buf, n, l, m, r) == rc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct pd_http_limits def = PD_HTTP_LIMITS_DEFAULT;
    static const struct pd_http_limits tiny = {.max_head = 64, .max_target = 16, .max_headers = 2};
    static const enum pd_http_method methods[] = {PD_HTTP_M_GET, PD_HTTP_M_HEAD, PD_HTTP_M_CONNECT};
    struct pd_http_response *r = malloc(sizeof *r);
    check(r != NULL);
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        run((const char *)data, size, &def, methods[i], r);
        run((const char *)data, size, &tiny, methods[i], r);
    }
    free(r);
    return 0;
}
