/*
 * test_http_chunked.c - unit tests for the chunked decoder in http/chunked.c (parse.h):
 * single and multiple chunks, identical output whatever the input split (whole, byte at a time,
 * every split point), extensions, trailers, the exact DONE position, every malformed form,
 * chunk-size limits. Input is copied into heap buffers of exactly the fed length so that ASan
 * catches any over-read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/parse.h"

#define OUT_MAX 65536

struct result {
    int status; /* final status: DONE, NEED_MORE (input ran out) or ERROR */
    size_t consumed; /* total bytes consumed over all calls */
    size_t nout;
    char out[OUT_MAX];
    struct pd_http_error err;
    uint64_t total;
};

/*
 * Feeds in[0..len) in pieces of at most `step` bytes (0 = all at once), each piece in its own
 * exact-size heap buffer, following the contract: call again with the unconsumed rest until
 * NEED_MORE or DONE.
 */
static void decode(const char *in, size_t len, size_t step, bool response, struct result *r)
{
    struct pd_http_chunked c;
    pd_http_chunked_init(&c, response);
    memset(r, 0, sizeof *r);
    r->status = PD_HTTP_CHUNK_NEED_MORE;
    size_t pos = 0;
    while (pos < len) {
        size_t n = step && len - pos > step ? step : len - pos;
        char *piece = malloc(n);
        assert_non_null(piece);
        memcpy(piece, in + pos, n);
        size_t off = 0;
        for (;;) {
            size_t used = 99999;
            const char *data = NULL;
            size_t dlen = 0;
            int st = pd_http_chunked_feed(&c, piece + off, n - off, &used, &data, &dlen, &r->err);
            assert_true(used <= n - off);
            if (st == PD_HTTP_CHUNK_DATA) {
                assert_true(dlen > 0);
                assert_true(data >= piece + off && data + dlen <= piece + off + used);
                assert_true(r->nout + dlen <= OUT_MAX);
                memcpy(r->out + r->nout, data, dlen);
                r->nout += dlen;
                off += used;
                continue;
            }
            off += used;
            r->status = st;
            if (st != PD_HTTP_CHUNK_NEED_MORE) {
                free(piece);
                r->consumed = pos + off;
                r->total = c.total;
                return;
            }
            assert_int_equal(off, n); /* NEED_MORE consumes everything */
            break;
        }
        free(piece);
        pos += n;
    }
    r->consumed = pos;
    r->total = c.total;
}

static struct result *res_new(void)
{
    struct result *r = malloc(sizeof *r);
    assert_non_null(r);
    return r;
}

/* The body must decode to `body`, DONE at exactly `msg_len`, whatever the split. */
static void expect_body_n(const char *in, size_t len, size_t msg_len, const char *body)
{
    struct result *r = res_new();
    static const size_t steps[] = {0, 1, 2, 3, 7};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        decode(in, len, steps[i], false, r);
        assert_int_equal(r->status, PD_HTTP_CHUNK_DONE);
        assert_int_equal(r->consumed, msg_len);
        assert_int_equal(r->nout, strlen(body));
        assert_memory_equal(r->out, body, r->nout);
        assert_int_equal(r->total, strlen(body));
    }
    free(r);
}

static void expect_body(const char *in, const char *body)
{
    expect_body_n(in, strlen(in), strlen(in), body);
}

/* Refused (400 for a request body, 502 for a response body) whatever the split. */
static void expect_error_n(const char *in, size_t len)
{
    struct result *r = res_new();
    static const size_t steps[] = {0, 1, 5};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        decode(in, len, steps[i], false, r);
        assert_int_equal(r->status, PD_HTTP_CHUNK_ERROR);
        assert_int_equal(r->err.status, 400);
        assert_non_null(r->err.reason);
        decode(in, len, steps[i], true, r);
        assert_int_equal(r->status, PD_HTTP_CHUNK_ERROR);
        assert_int_equal(r->err.status, 502);
        assert_true(strncmp(r->err.reason, "upstream", 8) == 0);
    }
    free(r);
}

static void expect_error(const char *in)
{
    expect_error_n(in, strlen(in));
}

/* ---- valid bodies ---- */

static void test_single_chunk(void **state)
{
    (void)state;
    expect_body("5\r\nhello\r\n0\r\n\r\n", "hello");
}

static void test_multiple_chunks(void **state)
{
    (void)state;
    expect_body("5\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
                "hello 0123456789abcdefghij");
}

static void test_empty_body(void **state)
{
    (void)state;
    expect_body("0\r\n\r\n", "");
    expect_body("000\r\n\r\n", "");
}

static void test_hex_digits(void **state)
{
    (void)state;
    char body[300], msg[400];
    memset(body, 'x', 255);
    body[255] = '\0';
    memcpy(msg, "fF\r\n", 4);
    memcpy(msg + 4, body, 255);
    memcpy(msg + 259, "\r\n0\r\n\r\n", 8);
    expect_body(msg, body);
    expect_body("0000000000000003\r\nabc\r\n0\r\n\r\n", "abc"); /* 16 digits */
}

static void test_data_bytes_are_opaque(void **state)
{
    (void)state;
    static const char m[] = "6\r\n\r\n\0\xff\n\r\r\n0\r\n\r\n";
    struct result *r = res_new();
    decode(m, sizeof m - 1, 1, false, r);
    assert_int_equal(r->status, PD_HTTP_CHUNK_DONE);
    assert_int_equal(r->nout, 6);
    assert_memory_equal(r->out, "\r\n\0\xff\n\r", 6);
    free(r);
}

static void test_every_split_point(void **state)
{
    (void)state;
    const char *m = "4;a=b\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: v\r\n\r\n";
    size_t n = strlen(m);
    struct result *whole = res_new(), *r = res_new();
    decode(m, n, 0, false, whole);
    assert_int_equal(whole->status, PD_HTTP_CHUNK_DONE);
    assert_int_equal(whole->nout, 23);
    assert_memory_equal(whole->out, "Wikipedia in\r\n\r\nchunks.", 23);
    for (size_t split = 0; split <= n; split++) {
        struct pd_http_chunked c;
        pd_http_chunked_init(&c, false);
        size_t nout = 0, total = 0;
        int st = PD_HTTP_CHUNK_NEED_MORE;
        const size_t parts[2][2] = {{0, split}, {split, n}};
        for (int k = 0; k < 2 && st != PD_HTTP_CHUNK_DONE; k++) {
            size_t off = parts[k][0];
            while (off < parts[k][1]) {
                size_t used;
                const char *d;
                size_t dl;
                st = pd_http_chunked_feed(&c, m + off, parts[k][1] - off, &used, &d, &dl, NULL);
                assert_true(st != PD_HTTP_CHUNK_ERROR);
                if (st == PD_HTTP_CHUNK_DATA) {
                    memcpy(r->out + nout, d, dl);
                    nout += dl;
                }
                off += used;
                total += used;
                if (st == PD_HTTP_CHUNK_DONE || st == PD_HTTP_CHUNK_NEED_MORE)
                    break;
            }
        }
        assert_int_equal(st, PD_HTTP_CHUNK_DONE);
        assert_int_equal(total, n);
        assert_int_equal(nout, whole->nout);
        assert_memory_equal(r->out, whole->out, nout);
    }
    free(whole);
    free(r);
}

static void test_extensions(void **state)
{
    (void)state;
    expect_body("3;name\r\nabc\r\n0\r\n\r\n", "abc");
    expect_body("3;name=value\r\nabc\r\n0\r\n\r\n", "abc");
    expect_body("3; \tname=v;n2;n3=\"q s\\\"\\\\x\"\r\nabc\r\n0;last=\"\"\r\n\r\n", "abc");
    expect_body("3;!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~\r\nabc\r\n0\r\n\r\n", "abc");
    expect_body("3;a=\"\t\xff\x80\\\xff\"\r\nabc\r\n0\r\n\r\n", "abc");
}

static void test_trailers(void **state)
{
    (void)state;
    expect_body("3\r\nabc\r\n0\r\nX-Checksum: 1234\r\nX-Other:\r\nX-Obs:  caf\xc3\xa9 \t\r\n\r\n",
                "abc");
    /* 64 trailer fields are allowed. */
    char m[2048];
    size_t n = 0;
    memcpy(m, "0\r\n", 3);
    n = 3;
    for (int i = 0; i < 64; i++) {
        memcpy(m + n, "T: v\r\n", 6);
        n += 6;
    }
    memcpy(m + n, "\r\n", 3);
    expect_body(m, "");
}

static void test_done_position_with_trailing_bytes(void **state)
{
    (void)state;
    const char *m = "2\r\nhi\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    size_t msg = strlen("2\r\nhi\r\n0\r\nT: v\r\n\r\n");
    expect_body_n(m, strlen(m), msg, "hi");
    /* Garbage after the message is not looked at. */
    static const char g[] = "0\r\n\r\n\0\n\r garbage";
    expect_body_n(g, sizeof g - 1, 5, "");
}

static void test_done_is_sticky(void **state)
{
    (void)state;
    struct pd_http_chunked c;
    pd_http_chunked_init(&c, false);
    size_t used;
    const char *d = "x";
    size_t dl = 9;
    assert_int_equal(pd_http_chunked_feed(&c, "0\r\n\r\n", 5, &used, &d, &dl, NULL),
                     PD_HTTP_CHUNK_DONE);
    assert_int_equal(used, 5);
    assert_int_equal(pd_http_chunked_feed(&c, "1\r\n", 3, &used, &d, &dl, NULL),
                     PD_HTTP_CHUNK_DONE);
    assert_int_equal(used, 0);
    assert_null(d);
    assert_int_equal(dl, 0);
}

static void test_need_more(void **state)
{
    (void)state;
    static const char *const partial[] = {
        "",
        "5",
        "5;",
        "5; a",
        "5;a=",
        "5;a=\"x",
        "5;a=\"\\",
        "5\r",
        "5\r\n",
        "5\r\nhel",
        "5\r\nhello",
        "5\r\nhello\r",
        "5\r\nhello\r\n",
        "0\r\n",
        "0\r\nX",
        "0\r\nX:",
        "0\r\nX: y\r",
        "0\r\nX: y\r\n",
        "0\r\n\r",
    };
    struct result *r = res_new();
    for (size_t i = 0; i < sizeof partial / sizeof partial[0]; i++) {
        decode(partial[i], strlen(partial[i]), 0, false, r);
        assert_int_equal(r->status, PD_HTTP_CHUNK_NEED_MORE);
        assert_int_equal(r->consumed, strlen(partial[i]));
        decode(partial[i], strlen(partial[i]), 1, false, r);
        assert_int_equal(r->status, PD_HTTP_CHUNK_NEED_MORE);
    }
    free(r);
}

static void test_large_chunk_size(void **state)
{
    (void)state;
    struct pd_http_chunked c;
    pd_http_chunked_init(&c, false);
    size_t used, dl;
    const char *d;
    const char *m = "7fffffffffffffff\r\nabc";
    assert_int_equal(pd_http_chunked_feed(&c, m, 18, &used, &d, &dl, NULL),
                     PD_HTTP_CHUNK_NEED_MORE);
    assert_int_equal(c.remaining, INT64_MAX);
    assert_int_equal(pd_http_chunked_feed(&c, m + 18, 3, &used, &d, &dl, NULL), PD_HTTP_CHUNK_DATA);
    assert_int_equal(dl, 3);
    assert_int_equal(used, 3);
    assert_int_equal(c.remaining, (uint64_t)INT64_MAX - 3);
}

/* ---- malformed bodies ---- */

static void test_error_size_line(void **state)
{
    (void)state;
    expect_error("\r\n"); /* empty size line */
    expect_error("g\r\nabc\r\n"); /* not hex */
    expect_error("-1\r\n"); /* sign */
    expect_error("+1\r\n"); /* sign */
    expect_error("0x5\r\nabcde\r\n"); /* 0x prefix */
    expect_error(" 5\r\nhello\r\n"); /* leading whitespace */
    expect_error("5 \r\nhello\r\n"); /* whitespace after the size */
    expect_error("5\t;a\r\nhello\r\n"); /* whitespace before ';' */
    expect_error(";a\r\n"); /* extension without a size */
}

static void test_error_size_overflow(void **state)
{
    (void)state;
    expect_error("00000000000000001\r\na\r\n0\r\n\r\n"); /* 17 digits */
    expect_error("10000000000000000\r\n"); /* 17 digits, would overflow uint64 */
    expect_error("ffffffffffffffff\r\n"); /* > INT64_MAX */
    expect_error("8000000000000000\r\n"); /* INT64_MAX + 1 */
}

static void test_error_bare_cr_lf_in_size_line(void **state)
{
    (void)state;
    expect_error("5\nhello\r\n0\r\n\r\n");
    expect_error("5\rhello\r\n0\r\n\r\n");
    expect_error("5;a\nhello\r\n0\r\n\r\n");
    expect_error("5;a=b\rx\r\n");
    expect_error("\n");
}

static void test_error_data_not_followed_by_crlf(void **state)
{
    (void)state;
    expect_error("5\r\nhello!\r\n0\r\n\r\n"); /* more data than announced */
    expect_error("5\r\nhellox");
    expect_error("5\r\nhello\n0\r\n\r\n"); /* bare LF */
    expect_error("5\r\nhello\r0\r\n\r\n"); /* bare CR */
    expect_error("5\r\nhello\r\r\n0\r\n\r\n");
    expect_error("5\r\nhel\r\n0\r\n\r\n\r\n"); /* fewer: the CRLF is data, then "\r\n0" follows */
}

static void test_error_extensions(void **state)
{
    (void)state;
    expect_error("3;\r\nabc\r\n0\r\n\r\n"); /* empty name */
    expect_error("3;;a\r\nabc\r\n0\r\n\r\n");
    expect_error("3;=v\r\nabc\r\n0\r\n\r\n");
    expect_error("3;a=\r\nabc\r\n0\r\n\r\n"); /* empty value */
    expect_error("3;a =v\r\nabc\r\n0\r\n\r\n"); /* whitespace before '=' */
    expect_error("3;a= v\r\nabc\r\n0\r\n\r\n"); /* whitespace after '=' */
    expect_error("3;a b\r\nabc\r\n0\r\n\r\n");
    expect_error("3;a ;b\r\nabc\r\n0\r\n\r\n");
    expect_error("3;a=\"x\"y\r\nabc\r\n0\r\n\r\n"); /* bytes after the quoted-string */
    expect_error("3;a=\"x\r\nabc\r\n0\r\n\r\n"); /* unterminated quoted-string */
    expect_error("3;a=\"\x01\"\r\nabc\r\n0\r\n\r\n");
    expect_error("3;a=\"\\\x01\"\r\nabc\r\n0\r\n\r\n");
    expect_error("3;a=b,c\r\nabc\r\n0\r\n\r\n");
    expect_error("3;a(=b\r\nabc\r\n0\r\n\r\n");
    static const char nul[] = "3;a\0\r\nabc\r\n0\r\n\r\n";
    expect_error_n(nul, sizeof nul - 1);
}

static void test_error_line_too_long(void **state)
{
    (void)state;
    char m[1100];
    /* Exactly 1024 bytes of size + extensions is fine. */
    memcpy(m, "1;", 2);
    memset(m + 2, 'a', 1022);
    memcpy(m + 1024, "\r\nx\r\n0\r\n\r\n", 11);
    expect_body(m, "x");
    memcpy(m, "1;", 2);
    memset(m + 2, 'a', 1023);
    memcpy(m + 1025, "\r\nx\r\n0\r\n\r\n", 11);
    expect_error(m);
    /* The limit applies per line: the second line starts from zero again. */
    char two[2200];
    memcpy(two, "1;", 2);
    memset(two + 2, 'a', 1022);
    memcpy(two + 1024, "\r\nx\r\n0;", 7);
    memset(two + 1031, 'b', 1022);
    memcpy(two + 2053, "\r\n\r\n", 5);
    expect_body(two, "x");
}

static void test_error_trailers(void **state)
{
    (void)state;
    expect_error("0\r\nX: a\r\n folded\r\n\r\n"); /* obs-fold */
    expect_error("0\r\n X: a\r\n\r\n");
    expect_error("0\r\nX : a\r\n\r\n"); /* whitespace before colon */
    expect_error("0\r\n: a\r\n\r\n"); /* empty name */
    expect_error("0\r\nX(: a\r\n\r\n"); /* non-token name */
    expect_error("0\r\nX\r\n\r\n"); /* no colon */
    expect_error("0\r\nX: a\x01\r\n\r\n"); /* CTL in value */
    expect_error("0\r\nX: a\x7f\r\n\r\n");
    expect_error("0\r\nX: a\n\r\n"); /* bare LF */
    expect_error("0\r\nX: a\rb\r\n\r\n"); /* bare CR */
    expect_error("0\r\n\n"); /* bare LF at the end */
    expect_error("0\r\n\rx"); /* bare CR at the end */
    static const char nul[] = "0\r\nX: \0\r\n\r\n";
    expect_error_n(nul, sizeof nul - 1);
}

static void test_error_trailer_limits(void **state)
{
    (void)state;
    char m[10000];
    size_t n = 3;
    memcpy(m, "0\r\n", 3);
    for (int i = 0; i < 65; i++) {
        memcpy(m + n, "T: v\r\n", 6);
        n += 6;
    }
    memcpy(m + n, "\r\n", 3);
    expect_error(m); /* 65 fields */
    /* 8192 bytes of trailer section (fields and final CRLF) are fine, 8193 are not. */
    memcpy(m, "0\r\nX: ", 6);
    memset(m + 6, 'v', 8192 - 3 - 4);
    memcpy(m + 6 + 8185, "\r\n\r\n", 5);
    expect_body(m, "");
    memcpy(m, "0\r\nX: ", 6);
    memset(m + 6, 'v', 8192 - 3 - 4 + 1);
    memcpy(m + 6 + 8186, "\r\n\r\n", 5);
    expect_error(m);
}

static void test_error_is_sticky(void **state)
{
    (void)state;
    struct pd_http_chunked c;
    struct pd_http_error err;
    pd_http_chunked_init(&c, true);
    size_t used, dl;
    const char *d;
    assert_int_equal(pd_http_chunked_feed(&c, "z", 1, &used, &d, &dl, &err), PD_HTTP_CHUNK_ERROR);
    assert_int_equal(err.status, 502);
    assert_int_equal(err.offset, 0);
    assert_int_equal(pd_http_chunked_feed(&c, "0\r\n\r\n", 5, &used, &d, &dl, &err),
                     PD_HTTP_CHUNK_ERROR);
    assert_int_equal(used, 0);
    assert_int_equal(err.status, 502);
}

static void test_error_offset(void **state)
{
    (void)state;
    struct pd_http_chunked c;
    struct pd_http_error err;
    pd_http_chunked_init(&c, false);
    size_t used, dl;
    const char *d;
    const char *m = "3\r\nabc\r\n4x\r\n";
    assert_int_equal(pd_http_chunked_feed(&c, m, strlen(m), &used, &d, &dl, &err),
                     PD_HTTP_CHUNK_DATA);
    assert_int_equal(used, 6);
    assert_int_equal(pd_http_chunked_feed(&c, m + 6, strlen(m) - 6, &used, &d, &dl, &err),
                     PD_HTTP_CHUNK_ERROR);
    assert_int_equal(err.status, 400);
    assert_int_equal(err.offset, 3); /* the 'x', relative to the input of that call */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_chunk),
        cmocka_unit_test(test_multiple_chunks),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_hex_digits),
        cmocka_unit_test(test_data_bytes_are_opaque),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_trailers),
        cmocka_unit_test(test_done_position_with_trailing_bytes),
        cmocka_unit_test(test_done_is_sticky),
        cmocka_unit_test(test_need_more),
        cmocka_unit_test(test_large_chunk_size),
        cmocka_unit_test(test_error_size_line),
        cmocka_unit_test(test_error_size_overflow),
        cmocka_unit_test(test_error_bare_cr_lf_in_size_line),
        cmocka_unit_test(test_error_data_not_followed_by_crlf),
        cmocka_unit_test(test_error_extensions),
        cmocka_unit_test(test_error_line_too_long),
        cmocka_unit_test(test_error_trailers),
        cmocka_unit_test(test_error_trailer_limits),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_error_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
