/*
 * fuzz_http_request.c - libFuzzer target for pd_http_parse_request (src/http/parse.c).
 *
 * Parses the input with the default limits and with tiny ones, and abort()s when an invariant
 * breaks: returns are -1/0/head_len with a sane error, every output slice lies inside the head,
 * counts stay within their limits, framing is one a request may have, and the result is stable:
 * every strict prefix of an accepted head is "incomplete" (never a success with another head_len,
 * never a refusal), the head alone parses to the same length, and max_head = head_len - 1 gives
 * 431. Prefixes are parsed from exact-size heap copies so that ASan sees any read past len.
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

static void check_error(long rc, const struct pd_http_error *e, size_t len)
{
    check(rc == -1);
    check(e->reason != NULL && e->reason[0] != '\0');
    check(e->status == 400 || e->status == 414 || e->status == 417 || e->status == 431 ||
          e->status == 501 || e->status == 505);
    check(e->offset <= len);
}

static void check_head(const char *buf, long rc, const struct pd_http_request *r,
                       const struct pd_http_limits *l)
{
    size_t n = (size_t)rc;
    check(r->head_len == n && n <= l->max_head && n >= 4);
    check(memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    check(r->nheaders <= l->max_headers && r->nheaders <= PD_HTTP_MAX_HEADERS);
    check(r->nconn_tokens <= PD_HTTP_MAX_CONN_TOKENS);
    check(r->version_minor == 0 || r->version_minor == 1);
    check(r->framing == PD_HTTP_BODY_NONE || r->framing == PD_HTTP_BODY_LENGTH ||
          r->framing == PD_HTTP_BODY_CHUNKED);
    check(r->framing != PD_HTTP_BODY_LENGTH || r->content_length <= (uint64_t)INT64_MAX);
    check(r->target.n > 0 && r->target.n <= l->max_target && r->method_str.n > 0 &&
          r->method_str.n <= 32);
    check((r->method == PD_HTTP_M_CONNECT) == (r->form == PD_HTTP_FORM_AUTHORITY));
    check(r->form != PD_HTTP_FORM_ASTERISK || r->method == PD_HTTP_M_OPTIONS);
    check(r->form != PD_HTTP_FORM_AUTHORITY || (r->port != 0 && r->framing == PD_HTTP_BODY_NONE));
    check(r->version_minor == 0 || r->host_header.n > 0);
    check(r->version_minor == 1 || (r->framing != PD_HTTP_BODY_CHUNKED && !r->expect_continue));
    const struct pd_slice s[] = {r->method_str, r->target,      r->scheme,           r->host,
                                 r->path,       r->host_header, r->host_header_host, r->upgrade};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        check(inside(buf, n, s[i]));
    for (size_t i = 0; i < r->nheaders; i++)
        check(inside(buf, n, r->headers[i].name) && inside(buf, n, r->headers[i].value) &&
              r->headers[i].name.n > 0);
    for (size_t i = 0; i < r->nconn_tokens; i++)
        check(inside(buf, n, r->conn_tokens[i]) && r->conn_tokens[i].n > 0);
}

/* Parses buf[0..len) from an exact-size copy; returns the parser's result. */
static long parse_copy(const char *buf, size_t len, const struct pd_http_limits *l,
                       struct pd_http_request *r, struct pd_http_error *e)
{
    char *copy = malloc(len ? len : 1);
    check(copy != NULL);
    memcpy(copy, buf, len);
    long rc = pd_http_parse_request(copy, len, l, r, e);
    if (rc > 0)
        check_head(copy, rc, r, l);
    free(copy);
    return rc;
}

/* Every strict prefix of an accepted head must be incomplete. Long heads are sampled. */
static void check_prefixes(const char *buf, long rc, const struct pd_http_limits *l,
                           struct pd_http_request *r)
{
    struct pd_http_error e;
    size_t n = (size_t)rc, step = n <= 512 ? 1 : n / 256;
    for (size_t k = 0; k < n; k += (k + 16 >= n ? 1 : step))
        check(parse_copy(buf, k, l, r, &e) == 0);
    check(parse_copy(buf, n, l, r, &e) == rc);
    if (n > 0) {
        struct pd_http_limits tight = *l;
        tight.max_head = n - 1;
        check(parse_copy(buf, n, &tight, r, &e) == -1 && e.status == 431);
    }
}

static void run(const char *buf, size_t len, const struct pd_http_limits *l,
                struct pd_http_request *r)
{
    struct pd_http_error e;
    long rc = pd_http_parse_request(buf, len, l, r, &e);
    if (rc < 0) {
        check_error(rc, &e, len);
        return;
    }
    if (rc == 0) {
        check(len < l->max_head);
        return;
    }
    check((size_t)rc <= len);
    check_head(buf, rc, r, l);
    check_prefixes(buf, rc, l, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct pd_http_limits def = PD_HTTP_LIMITS_DEFAULT;
    static const struct pd_http_limits tiny = {.max_head = 64, .max_target = 16, .max_headers = 2};
    struct pd_http_request *r = malloc(sizeof *r);
    check(r != NULL);
    run((const char *)data, size, &def, r);
    run((const char *)data, size, &tiny, r);
    free(r);
    return 0;
}
