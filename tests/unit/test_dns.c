/* test_dns.c - DNS messages: header, question, names and compression, records, EDNS0, the
 * builders (round trips, truncation, never writing past the capacity), type names. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/dns.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- a small message assembler for the tests ---- */

struct mb {
    uint8_t b[PD_DNS_MSG_MAX + 16];
    size_t n;
};

static void b8(struct mb *m, unsigned v)
{
    assert_true(m->n < sizeof m->b);
    m->b[m->n++] = (uint8_t)v;
}

static void b16(struct mb *m, unsigned v)
{
    b8(m, v >> 8 & 0xff);
    b8(m, v & 0xff);
}

static void b32(struct mb *m, uint32_t v)
{
    b16(m, v >> 16);
    b16(m, v & 0xffff);
}

static void bytes(struct mb *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

/* "www.example.com" -> labels + root byte (no compression); "" -> root. */
static void bname(struct mb *m, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        b8(m, (unsigned)n);
        bytes(m, p, n);
        p += n;
        if (*p == '.')
            p++;
    }
    b8(m, 0);
}

static void bhdr(struct mb *m, unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns,
                 unsigned ar)
{
    m->n = 0;
    b16(m, id);
    b16(m, flags);
    b16(m, qd);
    b16(m, an);
    b16(m, ns);
    b16(m, ar);
}

static void bopt(struct mb *m, unsigned udp, uint32_t ttl, const void *opts, size_t optlen)
{
    b8(m, 0);
    b16(m, PD_DNS_TYPE_OPT);
    b16(m, udp);
    b32(m, ttl);
    b16(m, (unsigned)optlen);
    if (optlen)
        bytes(m, opts, optlen);
}

/* The record header after an owner name. */
static void brr(struct mb *m, unsigned type, unsigned cls, uint32_t ttl, unsigned rdlen)
{
    b16(m, type);
    b16(m, cls);
    b32(m, ttl);
    b16(m, rdlen);
}

/* A standard query: id 0x1234, RD, one question. */
static void bquery(struct mb *m, const char *name, unsigned qtype, bool edns)
{
    bhdr(m, 0x1234, 0x0100, 1, 0, 0, edns ? 1 : 0);
    bname(m, name);
    b16(m, qtype);
    b16(m, PD_DNS_CLASS_IN);
    if (edns)
        bopt(m, 4096, 0x8000, NULL, 0);
}

/* Parse with an exact-size heap copy so that ASan catches any read past len. */
static enum pd_dns_status parse_q(const uint8_t *p, size_t n, struct pd_dns_msg *m,
                                  struct pd_err *err)
{
    static struct pd_dns_msg scratch;
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    memcpy(c, p, n);
    enum pd_dns_status st = pd_dns_parse_query(c, n, &scratch, err);
    free(c);
    *m = scratch;
    m->buf = p; /* the copy is gone: point the accessors at the caller's bytes */
    return st;
}

static enum pd_dns_status parse_r(const uint8_t *p, size_t n, struct pd_dns_msg *m,
                                  struct pd_err *err)
{
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    memcpy(c, p, n);
    enum pd_dns_status st = pd_dns_parse_response(c, n, m, err);
    free(c);
    m->buf = p;
    return st;
}

static struct pd_dns_msg g_msg; /* large: keep it off the cmocka stack */

static void expect_query_fails(const struct mb *m, enum pd_dns_status want, const char *reason_part)
{
    struct pd_err err = {{0}};
    enum pd_dns_status st = parse_q(m->b, m->n, &g_msg, &err);
    if (st != want)
        fail_msg("status %s, expected %s: %s", pd_dns_status_name(st), pd_dns_status_name(want),
                 err.msg);
    assert_non_null(g_msg.reason);
    assert_int_equal(g_msg.status, want);
    assert_int_equal(g_msg.rr_count, 0);
    assert_false(g_msg.edns.present);
    if (reason_part && !strstr(err.msg, reason_part))
        fail_msg("error '%s' does not mention '%s'", err.msg, reason_part);
    if (reason_part && !strstr(g_msg.reason, reason_part) && !strstr(reason_part, "qdcount"))
        fail_msg("reason '%s' does not mention '%s'", g_msg.reason, reason_part);
}

static void expect_response_fails(const struct mb *m, const char *reason_part)
{
    struct pd_err err = {{0}};
    enum pd_dns_status st = parse_r(m->b, m->n, &g_msg, &err);
    if (st == PD_DNS_OK)
        fail_msg("response should be refused (%s)", reason_part);
    if (reason_part && !strstr(err.msg, reason_part))
        fail_msg("error '%s' does not mention '%s'", err.msg, reason_part);
}

/* ---- header ---- */

static void test_header(void **state)
{
    (void)state;
    struct mb m;
    struct pd_err err = {{0}};
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    for (size_t n = 0; n < PD_DNS_HEADER_LEN; n++) {
        assert_int_equal(parse_q(m.b, n, &g_msg, &err), PD_DNS_DROP);
        assert_non_null(strstr(err.msg, "shorter than the 12-byte header"));
        assert_int_equal(parse_r(m.b, n, &g_msg, &err), PD_DNS_DROP);
    }
    assert_int_equal(pd_dns_parse_query(NULL, 40, &g_msg, &err), PD_DNS_DROP);

    uint8_t *big = calloc(1, PD_DNS_MSG_MAX + 1);
    assert_non_null(big);
    memcpy(big, m.b, m.n);
    assert_int_equal(pd_dns_parse_query(big, PD_DNS_MSG_MAX + 1, &g_msg, &err), PD_DNS_DROP);
    assert_non_null(strstr(err.msg, "longer than 65535"));
    free(big);

    /* every header bit */
    bhdr(&m, 0xbeef, 0x0130, 1, 0, 0, 0); /* RD, AD, CD */
    bname(&m, "a");
    b16(&m, 1);
    b16(&m, 1);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, &err), PD_DNS_OK);
    assert_int_equal(g_msg.hdr.id, 0xbeef);
    assert_true(g_msg.hdr.rd && g_msg.hdr.ad && g_msg.hdr.cd);
    assert_false(g_msg.hdr.qr || g_msg.hdr.aa || g_msg.hdr.tc || g_msg.hdr.ra);
    assert_int_equal(g_msg.hdr.qdcount, 1);
    assert_null(g_msg.reason);
    assert_int_equal(g_msg.status, PD_DNS_OK);

    bhdr(&m, 0xbeef, 0x8787, 1, 0, 0, 0); /* QR, AA, TC, RD, RA, rcode 7 */
    bname(&m, "a");
    b16(&m, 1);
    b16(&m, 1);
    assert_int_equal(parse_r(m.b, m.n, &g_msg, &err), PD_DNS_OK);
    assert_true(g_msg.hdr.qr && g_msg.hdr.aa && g_msg.hdr.tc && g_msg.hdr.rd && g_msg.hdr.ra);
    assert_int_equal(g_msg.hdr.rcode, 7);
    assert_int_equal(g_msg.rcode, 7);
}

static void test_qr_opcode(void **state)
{
    (void)state;
    struct mb m;
    /* a response sent as a query is dropped (no reflection loop) */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    m.b[2] |= 0x80;
    expect_query_fails(&m, PD_DNS_DROP, "QR is 1");
    /* a query sent where a response is expected */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    expect_response_fails(&m, "QR is 0");

    /* opcode STATUS (2): NOTIMP, the question kept for the echo */
    bquery(&m, "Example.com", PD_DNS_TYPE_A, true);
    m.b[2] = (uint8_t)(2 << 3 | 1);
    expect_query_fails(&m, PD_DNS_NOTIMP, "opcode");
    assert_true(g_msg.has_question);
    assert_string_equal(g_msg.q.name.text, "example.com");
    assert_int_equal(g_msg.hdr.id, 0x1234);
    assert_int_equal(g_msg.hdr.opcode, 2);
    /* opcode NOTIFY (4) without a usable question */
    bhdr(&m, 7, 4 << 11, 0, 0, 0, 0);
    expect_query_fails(&m, PD_DNS_NOTIMP, NULL);
    assert_false(g_msg.has_question);
    bhdr(&m, 7, 4 << 11, 1, 0, 0, 0);
    b8(&m, 5);
    expect_query_fails(&m, PD_DNS_NOTIMP, NULL);
    assert_false(g_msg.has_question);
    assert_string_equal(g_msg.q.name.text, "");
    /* a response with another opcode is unusable */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    m.b[2] = 0x80 | 5 << 3;
    expect_response_fails(&m, "opcode");
}

static void test_qdcount(void **state)
{
    (void)state;
    struct mb m;
    struct pd_err err = {{0}};
    bhdr(&m, 1, 0x0100, 0, 0, 0, 0);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, &err), PD_DNS_FORMERR);
    assert_string_equal(err.msg, "qdcount is 0: exactly one question is expected (at byte 4)");
    assert_false(g_msg.has_question);

    bhdr(&m, 1, 0x0100, 2, 0, 0, 0);
    bname(&m, "a.com");
    b16(&m, 1);
    b16(&m, 1);
    bname(&m, "b.com");
    b16(&m, 1);
    b16(&m, 1);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, &err), PD_DNS_FORMERR);
    assert_string_equal(err.msg, "qdcount is 2: exactly one question is expected (at byte 4)");
    assert_string_equal(g_msg.reason, "qdcount is not 1: exactly one question is expected");
    m.b[2] = 0x81;
    assert_int_equal(parse_r(m.b, m.n, &g_msg, &err), PD_DNS_FORMERR);
    assert_non_null(strstr(err.msg, "qdcount is 2"));
}

/* ---- truncation ---- */

static void test_truncated(void **state)
{
    (void)state;
    struct mb m;
    struct pd_err err = {{0}};
    /* response: question, CNAME (compressed), A; every prefix fails, none reads past its end */
    bhdr(&m, 9, 0x8180, 1, 2, 0, 1);
    bname(&m, "www.example.com"); /* offset 12 */
    b16(&m, PD_DNS_TYPE_A);
    b16(&m, 1);
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_CNAME, 1, 60, 6);
    b8(&m, 3);
    bytes(&m, "cdn", 3);
    b16(&m, 0xc010); /* "example.com" */
    size_t cname_target = m.n - 6;
    b16(&m, 0xc000 | (unsigned)cname_target);
    brr(&m, PD_DNS_TYPE_A, 1, 60, 4);
    b32(&m, 0x01020304);
    bopt(&m, 1232, 0, NULL, 0);
    assert_int_equal(parse_r(m.b, m.n, &g_msg, &err), PD_DNS_OK);
    for (size_t n = 0; n < m.n; n++) {
        enum pd_dns_status st = parse_r(m.b, n, &g_msg, &err);
        assert_int_not_equal(st, PD_DNS_OK);
        assert_int_equal(st, n < 12 ? PD_DNS_DROP : PD_DNS_FORMERR);
    }
    /* named places */
    assert_int_equal(parse_r(m.b, 12 + 5, &g_msg, &err), PD_DNS_FORMERR);
    assert_non_null(strstr(err.msg, "truncated inside a label"));
    assert_int_equal(parse_r(m.b, 12 + 4, &g_msg, &err), PD_DNS_FORMERR);
    assert_non_null(strstr(err.msg, "truncated inside a name"));
    assert_int_equal(parse_r(m.b, 12 + 17 + 2, &g_msg, &err), PD_DNS_FORMERR);
    assert_non_null(strstr(err.msg, "message truncated inside the question"));
    assert_int_equal(parse_r(m.b, 12 + 21 + 1, &g_msg, &err), PD_DNS_FORMERR);
    assert_non_null(strstr(err.msg, "truncated inside a compression pointer"));
    assert_int_equal(parse_r(m.b, 12 + 21 + 2 + 5, &g_msg, &err), PD_DNS_FORMERR);
    assert_non_null(strstr(err.msg, "truncated inside a record header"));
    assert_int_equal(parse_r(m.b, 12 + 21 + 12 + 3, &g_msg, &err), PD_DNS_FORMERR);
    assert_non_null(strstr(err.msg, "record data runs past the end"));
    assert_int_equal(parse_r(m.b, m.n - 1, &g_msg, &err), PD_DNS_FORMERR);

    /* rdlength larger than what is left */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    m.b[7] = 1; /* ancount 1 */
    m.b[2] |= 0x80;
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_TXT, 1, 0, 200);
    bytes(&m, "\x05hello", 6);
    expect_response_fails(&m, "record data runs past the end of the message");

    /* trailing bytes */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    b8(&m, 0);
    expect_query_fails(&m, PD_DNS_FORMERR, "bytes after the last record");
}

/* ---- names ---- */

static void test_compression_errors(void **state)
{
    (void)state;
    struct mb m;
    /* pointer to itself (in the answer's owner) */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xc000 | (unsigned)m.n);
    brr(&m, 1, 1, 0, 4);
    b32(&m, 0);
    expect_response_fails(&m, "compression pointer does not point backwards");

    /* two pointers pointing at each other: A at 29 -> 31, B at 31 -> 29 */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, "example.com"); /* 12..24 */
    b16(&m, 1);
    b16(&m, 1); /* 25..28 */
    size_t a = m.n;
    b16(&m, 0xc000 | (unsigned)(a + 2));
    b16(&m, 0xc000 | (unsigned)a);
    brr(&m, 1, 1, 0, 4);
    b32(&m, 0);
    expect_response_fails(&m, "does not point backwards");
    /* a real loop: A -> B and B -> A inside a NULL record's rdata, entered through a CNAME
     * pointing at B (backwards); B -> A is backwards too, A -> B is not */
    bhdr(&m, 1, 0x8180, 1, 2, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_NULL, 1, 0, 4);
    a = m.n;
    b16(&m, 0xc000 | (unsigned)(a + 2));
    b16(&m, 0xc000 | (unsigned)a);
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_CNAME, 1, 0, 2);
    b16(&m, 0xc000 | (unsigned)(a + 2));
    expect_response_fails(&m, "compression pointer does not point backwards");
    /* a pointer to the start of its own label sequence, after a label */
    bhdr(&m, 1, 0x8180, 1, 2, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    a = m.n; /* 29: owner of the first answer = "x" + pointer to itself's label */
    b8(&m, 1);
    b8(&m, 'x');
    b16(&m, 0xc000 | (unsigned)a); /* points at the start of its own label sequence */
    brr(&m, 1, 1, 0, 4);
    b32(&m, 0);
    expect_response_fails(&m, "does not point backwards");

    /* forward pointer (to a name further on) */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xc000 | (unsigned)(m.n + 12)); /* points into the rdata */
    brr(&m, PD_DNS_TYPE_CNAME, 1, 0, 5);
    bname(&m, "abc");
    expect_response_fails(&m, "does not point backwards");

    /* a pointer backwards to a label that runs on into the pointing name itself */
    bhdr(&m, 1, 0x8180, 1, 2, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_NULL, 1, 0, 3);
    a = m.n;
    bytes(&m,
          "\x05"
          "ab",
          3);
    b16(&m, 0xc000 | (unsigned)a); /* the label reads 'ab', this pointer and a type byte */
    brr(&m, PD_DNS_TYPE_A, 1, 0, 4);
    b32(&m, 0);
    expect_response_fails(&m, "runs into the name that points to it");
    /* the same with a label ending exactly at the pointer, then a root byte beyond it */
    bhdr(&m, 1, 0x8180, 1, 2, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_NULL, 1, 0, 3);
    a = m.n;
    bytes(&m,
          "\x02"
          "ab",
          3); /* no root byte before the next name */
    b16(&m, 0xc000 | (unsigned)a);
    brr(&m, PD_DNS_TYPE_A, 1, 0, 4);
    b32(&m, 0);
    expect_response_fails(&m, "runs into the name that points to it");

    /* pointer beyond the message (and forward, so refused before any read) */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xffff);
    brr(&m, 1, 1, 0, 4);
    b32(&m, 0);
    expect_response_fails(&m, "does not point backwards");

    /* pointer into the header */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xc002);
    brr(&m, 1, 1, 0, 4);
    b32(&m, 0);
    expect_response_fails(&m, "compression pointer points into the header");
    /* the question of a query can therefore never be compressed */
    bhdr(&m, 1, 0x0100, 1, 0, 0, 0);
    b16(&m, 0xc00c);
    b16(&m, 1);
    b16(&m, 1);
    expect_query_fails(&m, PD_DNS_FORMERR, "does not point backwards");
    bhdr(&m, 1, 0x0100, 1, 0, 0, 0);
    b16(&m, 0xc004);
    b16(&m, 1);
    b16(&m, 1);
    expect_query_fails(&m, PD_DNS_FORMERR, "points into the header");

    /* a pointer in CNAME rdata must point before the rdata, and the name must fill the rdata */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_CNAME, 1, 0, 4);
    b16(&m, 0xc000 | (unsigned)m.n);
    b16(&m, 0);
    expect_response_fails(&m, "does not point backwards");
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_CNAME, 1, 0, 4);
    b16(&m, 0xc00c);
    b16(&m, 0);
    expect_response_fails(&m, "CNAME record data is not exactly one name");
    /* a CNAME name that would continue past its rdata into the next bytes */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_CNAME, 1, 0, 2);
    bytes(&m,
          "\x01"
          "a"
          "\x00",
          3);
    expect_response_fails(&m, "truncated inside a name");
}

static void test_label_errors(void **state)
{
    (void)state;
    struct mb m;
    char lab[70];
    /* a 64-byte label: its length byte 0x40 is the extended label type */
    bhdr(&m, 1, 0x0100, 1, 0, 0, 0);
    memset(lab, 'a', 64);
    b8(&m, 64);
    bytes(&m, lab, 64);
    b8(&m, 0);
    b16(&m, 1);
    b16(&m, 1);
    expect_query_fails(&m, PD_DNS_FORMERR, "label type 0x40");
    assert_non_null(strstr(g_msg.reason, "at most 63 bytes"));
    /* 63 is fine */
    bhdr(&m, 1, 0x0100, 1, 0, 0, 0);
    b8(&m, 63);
    bytes(&m, lab, 63);
    b8(&m, 0);
    b16(&m, 1);
    b16(&m, 1);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, NULL), PD_DNS_OK);
    assert_int_equal(g_msg.q.name.text_len, 63);
    /* 0x80 */
    bhdr(&m, 1, 0x0100, 1, 0, 0, 0);
    b8(&m, 0x81);
    b8(&m, 'a');
    b8(&m, 0);
    b16(&m, 1);
    b16(&m, 1);
    expect_query_fails(&m, PD_DNS_FORMERR, "label type 0x80 is reserved");
    /* 0x40 with a short length */
    bhdr(&m, 1, 0x0100, 1, 0, 0, 0);
    b8(&m, 0x41);
    b8(&m, 0);
    b16(&m, 1);
    b16(&m, 1);
    expect_query_fails(&m, PD_DNS_FORMERR, "label type 0x40");

    /* 253 text characters = 255 wire bytes: fine; one more: refused */
    char name[300];
    size_t o = 0;
    for (int i = 0; i < 3; i++) {
        memset(name + o, 'b', 63);
        o += 63;
        name[o++] = '.';
    }
    memset(name + o, 'c', 61);
    o += 61;
    name[o] = '\0';
    assert_int_equal(o, 253);
    bquery(&m, name, PD_DNS_TYPE_A, false);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, NULL), PD_DNS_OK);
    assert_int_equal(g_msg.q.name.wire_len, 255);
    assert_string_equal(g_msg.q.name.text, name);
    name[o] = 'c';
    name[o + 1] = '\0';
    bquery(&m, name, PD_DNS_TYPE_A, false);
    expect_query_fails(&m, PD_DNS_FORMERR, "name longer than 255 bytes");

    /* 256 wire bytes assembled through pointers: the question has 3 x 63-byte labels + a 61-byte
     * one (255); an answer owner adds "x" (2 bytes) before a pointer to it -> 257 */
    name[o] = '\0';
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, name);
    b16(&m, 1);
    b16(&m, 1);
    b8(&m, 1);
    b8(&m, 'x');
    b16(&m, 0xc00c);
    brr(&m, 1, 1, 0, 4);
    b32(&m, 0);
    expect_response_fails(&m, "name longer than 255 bytes");
    /* exactly 256: question of 254 wire bytes (labels 63,63,63,60), "x" + pointer adds 2 */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    name[o - 1] = '\0';
    bname(&m, name);
    b16(&m, 1);
    b16(&m, 1);
    b8(&m, 1);
    b8(&m, 'x');
    b16(&m, 0xc00c);
    brr(&m, 1, 1, 0, 4);
    b32(&m, 0);
    expect_response_fails(&m, "name longer than 255 bytes");
    /* and 255 through a pointer is fine */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    name[o - 2] = '\0';
    bname(&m, name);
    b16(&m, 1);
    b16(&m, 1);
    b8(&m, 1);
    b8(&m, 'X');
    b16(&m, 0xc00c);
    brr(&m, 1, 1, 0, 4);
    b32(&m, 0x7f000001);
    assert_int_equal(parse_r(m.b, m.n, &g_msg, NULL), PD_DNS_OK);
    struct pd_dns_name *nm = malloc(sizeof *nm);
    assert_non_null(nm);
    assert_true(pd_dns_rr_name(&g_msg, &g_msg.rr[0], nm));
    assert_int_equal(nm->wire_len, 255);
    assert_int_equal(nm->text_len, 2 + 251);
    assert_memory_equal(nm->text, "x.", 2);
    assert_int_equal(nm->wire[1], 'X'); /* wire keeps the case */
    free(nm);

    /* a long chain of backward pointers: each name is a one-byte label + pointer to the
     * previous; more than 64 jumps is refused even though every jump goes backwards */
    bhdr(&m, 1, 0x8180, 1, 70, 0, 0);
    bname(&m, "a");
    b16(&m, 1);
    b16(&m, 1);
    size_t prev = 12;
    for (int i = 0; i < 70; i++) {
        size_t here = m.n;
        b16(&m, 0xc000 | (unsigned)prev); /* pure pointer: wire stays 3 bytes */
        brr(&m, PD_DNS_TYPE_NULL, 1, 0, 0);
        prev = here;
    }
    expect_response_fails(&m, "more than 64 records");
    /* the same chain inside one CNAME-free message within 64 records: 63 pointers fine */
    bhdr(&m, 1, 0x8180, 1, 63, 0, 0);
    bname(&m, "a");
    b16(&m, 1);
    b16(&m, 1);
    prev = 12;
    for (int i = 0; i < 63; i++) {
        size_t here = m.n;
        b16(&m, 0xc000 | (unsigned)prev);
        brr(&m, PD_DNS_TYPE_NULL, 1, 0, 0);
        prev = here;
    }
    assert_int_equal(parse_r(m.b, m.n, &g_msg, NULL), PD_DNS_OK);
    assert_int_equal(g_msg.rr_count, 63);
}

static void test_pointer_cap(void **state)
{
    (void)state;
    /* A chain of pointers, each strictly backwards, laid out in the rdata of a NULL record (not
     * interpreted); a CNAME points at its end: more than 64 jumps in one name is refused. */
    struct mb m;
    bhdr(&m, 1, 0x8180, 1, 2, 0, 0);
    bname(&m, "a");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_NULL, 1, 0, 2 + 2 * 65);
    size_t base = m.n;
    b16(&m, 0xc00c); /* base -> question */
    for (int i = 0; i < 65; i++)
        b16(&m, 0xc000 | (unsigned)(base + 2 * (size_t)i));
    size_t last = m.n - 2;
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_CNAME, 1, 0, 2);
    b16(&m, 0xc000 | (unsigned)last);
    /* last -> ... -> base -> 12: 67 jumps */
    expect_response_fails(&m, "more than 64 compression pointers in one name");
    /* 64 jumps are fine: point the CNAME lower in the chain */
    m.n -= 2;
    b16(&m, 0xc000 | (unsigned)(base + 2 * 62));
    struct pd_err err = {{0}};
    if (parse_r(m.b, m.n, &g_msg, &err) != PD_DNS_OK)
        fail_msg("%s", err.msg);
    struct pd_dns_name *nm = malloc(sizeof *nm);
    assert_non_null(nm);
    assert_true(pd_dns_rr_cname(&g_msg, &g_msg.rr[1], nm));
    assert_string_equal(nm->text, "a");
    free(nm);
}

static void test_odd_bytes_and_case(void **state)
{
    (void)state;
    struct mb m;
    bhdr(&m, 1, 0x0100, 1, 0, 0, 0);
    b8(&m, 5);
    bytes(&m, "A.b\\c", 5);
    b8(&m, 4);
    bytes(&m, "x y\xff", 4);
    b8(&m, 3);
    bytes(&m, "COM", 3);
    b8(&m, 0);
    b16(&m, 1);
    b16(&m, 1);
    struct pd_err err = {{0}};
    assert_int_equal(parse_q(m.b, m.n, &g_msg, &err), PD_DNS_OK);
    assert_true(g_msg.q.name.odd);
    assert_string_equal(g_msg.q.name.text, "a\\046b\\092c.x\\032y\\255.com");
    assert_int_equal(g_msg.q.name.text_len, strlen(g_msg.q.name.text));
    for (const char *p = g_msg.q.name.text; *p; p++)
        assert_true(*p > 0x20 && *p < 0x7f);

    /* NUL byte, '*' */
    bhdr(&m, 1, 0x0100, 1, 0, 0, 0);
    b8(&m, 1);
    b8(&m, '*');
    b8(&m, 2);
    bytes(&m, "a\0", 2);
    b8(&m, 0);
    b16(&m, 1);
    b16(&m, 1);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, &err), PD_DNS_OK);
    assert_true(g_msg.q.name.odd);
    assert_string_equal(g_msg.q.name.text, "\\042.a\\000");

    /* upper case folded, '_' and '-' are plain */
    bquery(&m, "_Dmarc.WWW-1.Example.COM", PD_DNS_TYPE_TXT, false);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, &err), PD_DNS_OK);
    assert_false(g_msg.q.name.odd);
    assert_string_equal(g_msg.q.name.text, "_dmarc.www-1.example.com");
    assert_memory_equal(g_msg.q.name.wire,
                        "\x06_Dmarc\x05WWW-1\x07"
                        "Example\x03"
                        "COM\x00",
                        26);
    assert_int_equal(g_msg.q.name.wire_len, 26);
    assert_int_equal(g_msg.q.qtype, PD_DNS_TYPE_TXT);

    /* the root */
    bquery(&m, "", PD_DNS_TYPE_NS, false);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, &err), PD_DNS_OK);
    assert_string_equal(g_msg.q.name.text, "");
    assert_int_equal(g_msg.q.name.text_len, 0);
    assert_int_equal(g_msg.q.name.wire_len, 1);
    assert_false(g_msg.q.name.odd);
}

static void test_worst_case_text(void **state)
{
    (void)state;
    /* four labels of odd bytes filling 255 wire bytes: the longest text there is */
    struct mb m;
    uint8_t lab[63];
    memset(lab, 0xff, sizeof lab);
    bhdr(&m, 1, 0x0100, 1, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
        b8(&m, 63);
        bytes(&m, lab, 63);
    }
    b8(&m, 61);
    bytes(&m, lab, 61);
    b8(&m, 0);
    b16(&m, 1);
    b16(&m, 1);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, NULL), PD_DNS_OK);
    assert_int_equal(g_msg.q.name.wire_len, 255);
    assert_int_equal(g_msg.q.name.text_len, PD_DNS_NAME_TEXT_MAX);
    assert_int_equal(strlen(g_msg.q.name.text), PD_DNS_NAME_TEXT_MAX);
    /* many short odd labels give less text */
    bhdr(&m, 1, 0x0100, 1, 0, 0, 0);
    for (int i = 0; i < 127; i++) {
        b8(&m, 1);
        b8(&m, 0);
    }
    b8(&m, 0);
    b16(&m, 1);
    b16(&m, 1);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, NULL), PD_DNS_OK);
    assert_int_equal(g_msg.q.name.text_len, 127 * 4 + 126);
    assert_true(g_msg.q.name.text_len < PD_DNS_NAME_TEXT_MAX);
}

/* ---- records ---- */

static void test_record_errors(void **state)
{
    (void)state;
    struct mb m;
    /* A with rdlength 3 */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_A, 1, 0, 3);
    bytes(&m, "\1\2\3", 3);
    expect_response_fails(&m, "A record data is not 4 bytes");
    /* AAAA with 4 */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, "example.com");
    b16(&m, 28);
    b16(&m, 1);
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_AAAA, 1, 0, 4);
    b32(&m, 1);
    expect_response_fails(&m, "AAAA record data is not 16 bytes");
    /* A in class CH is not an IPv4 address: not checked, and the accessor refuses it */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 3);
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_A, 3, 0, 3);
    bytes(&m, "\1\2\3", 3);
    assert_int_equal(parse_r(m.b, m.n, &g_msg, NULL), PD_DNS_OK);
    uint8_t a4[4];
    assert_false(pd_dns_rr_a(&g_msg, &g_msg.rr[0], a4));

    /* two OPT records */
    bquery(&m, "example.com", PD_DNS_TYPE_A, true);
    m.b[11] = 2;
    bopt(&m, 1232, 0, NULL, 0);
    expect_query_fails(&m, PD_DNS_FORMERR, "more than one OPT record");
    assert_true(g_msg.has_question); /* the FORMERR can echo the question, without OPT */
    /* OPT with a non-root owner */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    m.b[11] = 1;
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_OPT, 1232, 0, 0);
    expect_query_fails(&m, PD_DNS_FORMERR, "OPT record owner is not the root");
    /* OPT in the answer section of a response */
    bhdr(&m, 1, 0x8180, 1, 1, 0, 0);
    bname(&m, "example.com");
    b16(&m, 1);
    b16(&m, 1);
    bopt(&m, 1232, 0, NULL, 0);
    expect_response_fails(&m, "OPT record outside the additional section");
    /* OPT options overrunning the rdata */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    m.b[11] = 1;
    bopt(&m, 1232, 0,
         "\x00\x0a\x00\x09"
         "12345678",
         12);
    expect_query_fails(&m, PD_DNS_FORMERR, "OPT option runs past the record data");
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    m.b[11] = 1;
    bopt(&m, 1232, 0, "\x00\x0a\x00", 3);
    expect_query_fails(&m, PD_DNS_FORMERR, "OPT option runs past the record data");

    /* a query carrying answers */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    m.b[7] = 1;
    b16(&m, 0xc00c);
    brr(&m, PD_DNS_TYPE_A, 1, 0, 4);
    b32(&m, 0);
    expect_query_fails(&m, PD_DNS_FORMERR, "a query must not carry answer or authority records");
    assert_true(g_msg.has_question);

    /* more than 64 records in total (counts alone decide, before any record is read) */
    bhdr(&m, 1, 0x8180, 1, 30, 30, 5);
    bname(&m, "a");
    b16(&m, 1);
    b16(&m, 1);
    expect_response_fails(&m, "message has more than 64 records");
    bhdr(&m, 1, 0x0100, 1, 0, 0, 65);
    bname(&m, "a");
    b16(&m, 1);
    b16(&m, 1);
    for (int i = 0; i < 65; i++) {
        b8(&m, 0);
        brr(&m, PD_DNS_TYPE_NULL, 1, 0, 0);
    }
    expect_query_fails(&m, PD_DNS_FORMERR, "more than 64 records");
    /* 64 is fine */
    m.b[11] = 64;
    m.n -= 11;
    struct pd_err err = {{0}};
    if (parse_q(m.b, m.n, &g_msg, &err) != PD_DNS_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(g_msg.rr_count, 64);
    assert_int_equal(g_msg.rr[63].section, PD_DNS_SEC_ADDITIONAL);
}

static void test_edns(void **state)
{
    (void)state;
    struct mb m;
    struct pd_err err = {{0}};
    bquery(&m, "example.com", PD_DNS_TYPE_AAAA, false);
    m.b[11] = 1;
    /* cookie option + padding */
    bopt(&m, 4096, 0x01008000,
         "\x00\x0a\x00\x08"
         "abcdefgh"
         "\x00\x0c\x00\x00",
         16);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, &err), PD_DNS_OK);
    assert_true(g_msg.edns.present);
    assert_int_equal(g_msg.edns.udp_size, 4096);
    assert_int_equal(g_msg.edns.udp_size_raw, 4096);
    assert_int_equal(g_msg.edns.ext_rcode, 1);
    assert_int_equal(g_msg.edns.version, 0);
    assert_true(g_msg.edns.do_bit);
    assert_int_equal(g_msg.edns.opt_len, 16);
    assert_memory_equal(m.b + g_msg.edns.opt_off, "\x00\x0a", 2);
    assert_int_equal(g_msg.rcode, 16); /* ext 1 << 4 | 0 */
    assert_int_equal(g_msg.rr_count, 1);
    /* small payload sizes count as 512; version reported as sent */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    m.b[11] = 1;
    bopt(&m, 100, 0x00010000, NULL, 0);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, &err), PD_DNS_OK);
    assert_int_equal(g_msg.edns.udp_size, 512);
    assert_int_equal(g_msg.edns.udp_size_raw, 100);
    assert_int_equal(g_msg.edns.version, 1);
    assert_false(g_msg.edns.do_bit);
    /* no OPT */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    assert_int_equal(parse_q(m.b, m.n, &g_msg, &err), PD_DNS_OK);
    assert_false(g_msg.edns.present);
}

/* A response: www.example.com CNAME cdn.example.net; cdn.example.net A 192.0.2.1, AAAA 2001:db8::1;
 * everything compressed. */
static void build_cname_response(struct mb *m)
{
    bhdr(m, 0x1234, 0x8180, 1, 3, 0, 1);
    bname(m, "www.Example.com"); /* 12 */
    b16(m, PD_DNS_TYPE_A);
    b16(m, 1);
    b16(m, 0xc00c);
    brr(m, PD_DNS_TYPE_CNAME, 1, 300, 13);
    size_t cdn = m->n;
    b8(m, 3);
    bytes(m, "cdn", 3);
    bname(m, "example.net");
    /* rdlength: 4 ("\3cdn") + 13 ("\7example\3net\0") = 17 */
    m->b[cdn - 2] = 0;
    m->b[cdn - 1] = 17;
    b16(m, 0xc000 | (unsigned)cdn);
    brr(m, PD_DNS_TYPE_A, 1, 60, 4);
    bytes(m, "\xc0\x00\x02\x01", 4);
    b16(m, 0xc000 | (unsigned)cdn);
    brr(m, PD_DNS_TYPE_AAAA, 1, 61, 16);
    bytes(m, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    bopt(m, 1232, 0, NULL, 0);
}

static void test_response_accessors(void **state)
{
    (void)state;
    struct mb m;
    struct pd_err err = {{0}};
    build_cname_response(&m);
    if (parse_r(m.b, m.n, &g_msg, &err) != PD_DNS_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(g_msg.rr_count, 4);
    assert_string_equal(g_msg.q.name.text, "www.example.com");
    struct pd_dns_name *nm = malloc(sizeof *nm);
    assert_non_null(nm);
    const struct pd_dns_rr *rr = g_msg.rr;
    assert_int_equal(rr[0].type, PD_DNS_TYPE_CNAME);
    assert_int_equal(rr[0].ttl, 300);
    assert_int_equal(rr[0].section, PD_DNS_SEC_ANSWER);
    assert_true(pd_dns_rr_name(&g_msg, &rr[0], nm));
    assert_string_equal(nm->text, "www.example.com");
    assert_true(pd_dns_rr_cname(&g_msg, &rr[0], nm));
    assert_string_equal(nm->text, "cdn.example.net");
    assert_int_equal(nm->wire_len, 17);
    uint8_t a4[4], a16[16];
    assert_false(pd_dns_rr_a(&g_msg, &rr[0], a4));
    assert_true(pd_dns_rr_name(&g_msg, &rr[1], nm));
    assert_string_equal(nm->text, "cdn.example.net");
    assert_true(pd_dns_rr_a(&g_msg, &rr[1], a4));
    assert_memory_equal(a4, "\xc0\x00\x02\x01", 4);
    assert_false(pd_dns_rr_aaaa(&g_msg, &rr[1], a16));
    assert_false(pd_dns_rr_cname(&g_msg, &rr[1], nm));
    assert_string_equal(nm->text, "");
    assert_true(pd_dns_rr_aaaa(&g_msg, &rr[2], a16));
    assert_int_equal(a16[0], 0x20);
    assert_int_equal(a16[15], 1);
    assert_int_equal(rr[2].ttl, 61);
    assert_int_equal(rr[3].type, PD_DNS_TYPE_OPT);
    assert_int_equal(rr[3].section, PD_DNS_SEC_ADDITIONAL);
    assert_true(pd_dns_rr_name(&g_msg, &rr[3], nm));
    assert_string_equal(nm->text, "");
    assert_true(g_msg.edns.present);
    assert_int_equal(g_msg.edns.udp_size, 1232);
    /* a record that does not belong to the message */
    struct pd_dns_rr bogus = rr[1];
    bogus.rdata_off = 60000;
    assert_false(pd_dns_rr_a(&g_msg, &bogus, a4));
    assert_false(pd_dns_rr_name(&g_msg, &bogus, nm));
    assert_false(pd_dns_rr_name(&g_msg, NULL, nm));

    /* the query it answers */
    struct mb q;
    bquery(&q, "WWW.example.COM", PD_DNS_TYPE_A, true);
    static struct pd_dns_msg qm;
    assert_int_equal(parse_q(q.b, q.n, &qm, &err), PD_DNS_OK);
    assert_true(pd_dns_same_question(&qm, &g_msg));
    bquery(&q, "www.example.com", PD_DNS_TYPE_AAAA, true);
    assert_int_equal(parse_q(q.b, q.n, &qm, &err), PD_DNS_OK);
    assert_false(pd_dns_same_question(&qm, &g_msg));
    bquery(&q, "www.example.co", PD_DNS_TYPE_A, true);
    assert_int_equal(parse_q(q.b, q.n, &qm, &err), PD_DNS_OK);
    assert_false(pd_dns_same_question(&qm, &g_msg));
    assert_false(pd_dns_same_question(NULL, &g_msg));
    free(nm);
}

static void test_nxdomain_response(void **state)
{
    (void)state;
    struct mb m;
    struct pd_err err = {{0}};
    bhdr(&m, 0x4242, 0x8183, 1, 0, 1, 0);
    bname(&m, "nope.example.com");
    b16(&m, 1);
    b16(&m, 1);
    b16(&m, 0xc000 | 17); /* example.com */
    brr(&m, PD_DNS_TYPE_SOA, 1, 900, 0);
    size_t rdl = m.n - 2;
    size_t start = m.n;
    bname(&m, "ns1.example.com");
    b16(&m, 0xc000 | 17);
    for (int i = 0; i < 5; i++)
        b32(&m, 100);
    m.b[rdl + 1] = (uint8_t)(m.n - start);
    if (parse_r(m.b, m.n, &g_msg, &err) != PD_DNS_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(g_msg.rcode, PD_DNS_RCODE_NXDOMAIN);
    assert_int_equal(g_msg.rr_count, 1);
    assert_int_equal(g_msg.rr[0].section, PD_DNS_SEC_AUTHORITY);
    static struct pd_dns_name nm;
    assert_true(pd_dns_rr_name(&g_msg, &g_msg.rr[0], &nm));
    assert_string_equal(nm.text, "example.com");
}

/* ---- building ---- */

static void test_build_roundtrip(void **state)
{
    (void)state;
    struct mb m;
    struct pd_err err = {{0}};
    static struct pd_dns_msg q, r;
    bquery(&m, "Api.Example.com", PD_DNS_TYPE_A, true);
    m.b[3] |= 0x10; /* CD */
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_OK);

    struct pd_dns_answer ans[2] = {
        {.type = PD_DNS_TYPE_A, .ttl = 30, .addr = {203, 0, 113, 7}},
        {.type = PD_DNS_TYPE_A, .ttl = 30, .addr = {203, 0, 113, 8}},
    };
    struct pd_dns_reply rep = {.rcode = PD_DNS_RCODE_NOERROR,
                               .ra = true,
                               .edns_udp_size = 1232,
                               .answers = ans,
                               .answer_count = 2};
    uint8_t out[600];
    size_t n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_not_equal(n, 0);
    /* 12 + question 21 + 2 x (2 + 10 + 4) + OPT 11 */
    assert_int_equal(n, 12 + 21 + 32 + 11);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    assert_int_equal(r.hdr.id, 0x1234);
    assert_true(r.hdr.qr && r.hdr.rd && r.hdr.ra && r.hdr.cd);
    assert_false(r.hdr.tc || r.hdr.aa || r.hdr.ad);
    assert_int_equal(r.hdr.opcode, 0);
    assert_int_equal(r.rcode, 0);
    assert_true(pd_dns_same_question(&q, &r));
    /* the question is echoed byte for byte, case included */
    assert_memory_equal(out + 12, m.b + 12, 21);
    assert_int_equal(r.hdr.ancount, 2);
    assert_memory_equal(out + 33, "\xc0\x0c", 2);
    uint8_t a4[4];
    assert_true(pd_dns_rr_a(&r, &r.rr[1], a4));
    assert_memory_equal(a4, "\xcb\x00\x71\x08", 4);
    assert_int_equal(r.rr[0].ttl, 30);
    assert_true(r.edns.present);
    assert_int_equal(r.edns.udp_size, 1232);
    assert_true(r.edns.do_bit);
    assert_int_equal(r.edns.version, 0);

    /* NXDOMAIN, no EDNS in the query: no OPT, RA off */
    bquery(&m, "blocked.example", PD_DNS_TYPE_AAAA, false);
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_OK);
    rep = (struct pd_dns_reply){.rcode = PD_DNS_RCODE_NXDOMAIN};
    n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_equal(n, m.n);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    assert_int_equal(r.rcode, PD_DNS_RCODE_NXDOMAIN);
    assert_false(r.hdr.ra || r.edns.present);
    assert_true(pd_dns_same_question(&q, &r));

    /* AAAA answer; every rcode the server uses */
    uint16_t rcodes[] = {PD_DNS_RCODE_NOERROR,  PD_DNS_RCODE_FORMERR, PD_DNS_RCODE_SERVFAIL,
                         PD_DNS_RCODE_NXDOMAIN, PD_DNS_RCODE_NOTIMP,  PD_DNS_RCODE_REFUSED};
    for (size_t i = 0; i < sizeof rcodes / sizeof rcodes[0]; i++) {
        rep = (struct pd_dns_reply){.rcode = rcodes[i]};
        n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
        assert_int_not_equal(n, 0);
        assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
        assert_int_equal(r.rcode, rcodes[i]);
    }
    struct pd_dns_answer six = {
        .type = PD_DNS_TYPE_AAAA, .ttl = 5, .addr = {0x20, 0x01, 0x0d, 0xb8, [15] = 9}};
    rep = (struct pd_dns_reply){.answers = &six, .answer_count = 1};
    n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    uint8_t a16[16];
    assert_true(pd_dns_rr_aaaa(&r, &r.rr[0], a16));
    assert_memory_equal(a16, six.addr, 16);

    /* root question */
    bquery(&m, "", PD_DNS_TYPE_A, false);
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_OK);
    struct pd_dns_answer root_a = {.type = PD_DNS_TYPE_A, .addr = {1, 2, 3, 4}};
    rep = (struct pd_dns_reply){.answers = &root_a, .answer_count = 1};
    n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    static struct pd_dns_name nm;
    assert_true(pd_dns_rr_name(&r, &r.rr[0], &nm));
    assert_string_equal(nm.text, "");
}

static void test_build_cname_chain(void **state)
{
    (void)state;
    struct mb m;
    struct pd_err err = {{0}};
    static struct pd_dns_msg q, r;
    static struct pd_dns_name nm;
    bquery(&m, "www.example.com", PD_DNS_TYPE_A, false);
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_OK);
    struct pd_dns_answer ans[4] = {
        {.type = PD_DNS_TYPE_CNAME, .ttl = 10, .target = S("edge.cdn.net")},
        {.type = PD_DNS_TYPE_CNAME,
         .ttl = 10,
         .owner = S("edge.cdn.net"),
         .target = S("www.example.com")},
        {.type = PD_DNS_TYPE_A, .ttl = 20, .addr = {10, 0, 0, 1}, .owner = S("EDGE.cdn.net.")},
        {.type = PD_DNS_TYPE_A, .ttl = 20, .addr = {10, 0, 0, 2}, .owner = S("other.net")},
    };
    struct pd_dns_reply rep = {.answers = ans, .answer_count = 4};
    uint8_t out[512];
    size_t n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_not_equal(n, 0);
    /* 12 + 21 question; CNAME 12 + 14 target; CNAME ptr owner 12 + ptr 2; A ptr 16; A 11 + 14 */
    assert_int_equal(n, 33 + 26 + 14 + 16 + 25);
    if (parse_r(out, n, &r, &err) != PD_DNS_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(r.rr_count, 4);
    assert_true(pd_dns_rr_cname(&r, &r.rr[0], &nm));
    assert_string_equal(nm.text, "edge.cdn.net");
    assert_true(pd_dns_rr_name(&r, &r.rr[1], &nm));
    assert_string_equal(nm.text, "edge.cdn.net");
    assert_true(pd_dns_rr_cname(&r, &r.rr[1], &nm));
    assert_string_equal(nm.text, "www.example.com");
    assert_int_equal(r.rr[1].rdlength, 2); /* compressed to the question */
    assert_true(pd_dns_rr_name(&r, &r.rr[2], &nm));
    assert_string_equal(nm.text, "edge.cdn.net");
    assert_true(pd_dns_rr_name(&r, &r.rr[3], &nm));
    assert_string_equal(nm.text, "other.net");
}

static void test_build_errors(void **state)
{
    (void)state;
    struct mb m;
    struct pd_err err = {{0}};
    static struct pd_dns_msg q, r;
    uint8_t out[512];
    struct pd_dns_reply rep = {.rcode = PD_DNS_RCODE_FORMERR};

    /* FORMERR to a query without a usable question: header only */
    bhdr(&m, 0x5555, 0x0100, 0, 0, 0, 0);
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_FORMERR);
    size_t n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_equal(n, 12);
    assert_memory_equal(out, "\x55\x55\x81\x01\0\0\0\0\0\0\0\0", 12);
    /* ... and that is not a response we accept from upstream (no question) */
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_FORMERR);

    /* FORMERR echoing the question, without OPT, after two OPTs */
    bquery(&m, "example.com", PD_DNS_TYPE_A, true);
    m.b[11] = 2;
    bopt(&m, 1232, 0, NULL, 0);
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_FORMERR);
    n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_equal(n, 12 + 17);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    assert_int_equal(r.rcode, PD_DNS_RCODE_FORMERR);
    assert_false(r.edns.present);

    /* NOTIMP with the question */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    m.b[2] = 5 << 3;
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_NOTIMP);
    rep.rcode = PD_DNS_RCODE_NOTIMP;
    n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_equal(n, m.n);
    assert_int_equal(out[2], 0x80 | 5 << 3); /* QR, opcode copied, RD was 0 */
    assert_int_equal(out[3], PD_DNS_RCODE_NOTIMP);
    assert_memory_equal(out + 4, m.b + 4, m.n - 4); /* counts and question echoed */
    /* (a response with opcode 5 is not one our parser accepts from upstream) */
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_FORMERR);

    /* DROP: nothing to answer */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    m.b[2] |= 0x80;
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_DROP);
    assert_int_equal(pd_dns_build_response(&q, &rep, out, sizeof out, &err), 0);
    assert_int_equal(parse_q(m.b, 5, &q, &err), PD_DNS_DROP);
    assert_int_equal(pd_dns_build_response(&q, &rep, out, sizeof out, &err), 0);
    assert_non_null(strstr(err.msg, "DROP"));

    /* BADVERS needs EDNS; with it the upper bits go to the OPT */
    bquery(&m, "example.com", PD_DNS_TYPE_A, false);
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_OK);
    rep = (struct pd_dns_reply){.rcode = PD_DNS_RCODE_BADVERS};
    assert_int_equal(pd_dns_build_response(&q, &rep, out, sizeof out, &err), 0);
    assert_non_null(strstr(err.msg, "needs EDNS"));
    rep.rcode = 0x1000;
    assert_int_equal(pd_dns_build_response(&q, &rep, out, sizeof out, &err), 0);
    bquery(&m, "example.com", PD_DNS_TYPE_A, true);
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_OK);
    rep.rcode = PD_DNS_RCODE_BADVERS;
    n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    assert_int_equal(r.rcode, PD_DNS_RCODE_BADVERS);
    assert_int_equal(r.hdr.rcode, 0);
    assert_int_equal(r.edns.ext_rcode, 1);
    assert_int_equal(r.edns.udp_size, 512); /* edns_udp_size 0 -> 512 */

    /* bad answers */
    struct pd_dns_answer bad[1] = {{.type = PD_DNS_TYPE_TXT}};
    rep = (struct pd_dns_reply){.answers = bad, .answer_count = 1};
    assert_int_equal(pd_dns_build_response(&q, &rep, out, sizeof out, &err), 0);
    assert_non_null(strstr(err.msg, "type 16"));
    bad[0] = (struct pd_dns_answer){.type = PD_DNS_TYPE_CNAME, .target = S("a..b")};
    assert_int_equal(pd_dns_build_response(&q, &rep, out, sizeof out, &err), 0);
    assert_non_null(strstr(err.msg, "CNAME target"));
    bad[0] = (struct pd_dns_answer){.type = PD_DNS_TYPE_A, .owner = S("a b")};
    assert_int_equal(pd_dns_build_response(&q, &rep, out, sizeof out, &err), 0);
    assert_non_null(strstr(err.msg, "owner"));
    rep = (struct pd_dns_reply){.answers = NULL, .answer_count = 1};
    assert_int_equal(pd_dns_build_response(&q, &rep, out, sizeof out, &err), 0);
    rep = (struct pd_dns_reply){.answers = bad, .answer_count = PD_DNS_MAX_RRS + 1};
    assert_int_equal(pd_dns_build_response(&q, &rep, out, sizeof out, &err), 0);
    assert_int_equal(pd_dns_build_response(NULL, &rep, out, sizeof out, &err), 0);
    assert_int_equal(pd_dns_build_response(&q, NULL, out, sizeof out, &err), 0);
    assert_int_equal(pd_dns_build_response(&q, &rep, NULL, 0, &err), 0);
    /* answers to a query without a question */
    bhdr(&m, 1, 0x0100, 0, 0, 0, 0);
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_FORMERR);
    bad[0] = (struct pd_dns_answer){.type = PD_DNS_TYPE_A};
    rep = (struct pd_dns_reply){.answers = bad, .answer_count = 1};
    assert_int_equal(pd_dns_build_response(&q, &rep, out, sizeof out, &err), 0);
    assert_non_null(strstr(err.msg, "need a question"));
}

static void test_truncation(void **state)
{
    (void)state;
    struct mb m;
    struct pd_err err = {{0}};
    static struct pd_dns_msg q, r;
    static uint8_t out[PD_DNS_MSG_MAX];
    struct pd_dns_answer ans[40];
    for (int i = 0; i < 40; i++)
        ans[i] = (struct pd_dns_answer){
            .type = PD_DNS_TYPE_AAAA, .ttl = 1, .addr = {0xfd, [15] = (uint8_t)i}};
    struct pd_dns_reply rep = {.edns_udp_size = 1232, .answers = ans, .answer_count = 40};
    /* 40 x 28 = 1120 bytes of answers */

    /* no EDNS: 512 -> TC, no answers */
    bquery(&m, "many.example.com", PD_DNS_TYPE_AAAA, false);
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_OK);
    size_t n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_not_equal(n, 0);
    assert_true(n <= 512);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    assert_true(r.hdr.tc);
    assert_int_equal(r.hdr.ancount, 0);
    assert_true(pd_dns_same_question(&q, &r));
    /* over TCP everything fits */
    rep.tcp = true;
    n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_equal(n, m.n + 40 * 28);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    assert_false(r.hdr.tc);
    assert_int_equal(r.rr_count, 40);
    /* ... unless the caller's buffer is smaller */
    n = pd_dns_build_response(&q, &rep, out, 600, &err);
    assert_true(n > 0 && n <= 600);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    assert_true(r.hdr.tc);
    rep.tcp = false;

    /* EDNS 4096 from the client, ours 1232: the smaller wins -> still TC */
    bquery(&m, "many.example.com", PD_DNS_TYPE_AAAA, true);
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_OK);
    n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    assert_false(r.hdr.tc); /* 12 + 22 + 1120 + 11 = 1165 <= 1232 */
    assert_int_equal(n, 1165);
    rep.edns_udp_size = 1100;
    n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    assert_true(r.hdr.tc);
    assert_true(r.edns.present); /* the OPT survives truncation */
    assert_int_equal(r.edns.udp_size, 1100);
    /* client says 512 (or less) */
    m.b[m.n - 8] = 0; /* OPT class = udp size */
    m.b[m.n - 7] = 200;
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_OK);
    rep.edns_udp_size = 4096;
    n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_true(n <= 512);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    assert_true(r.hdr.tc);
    /* exactly fitting 512 is not truncated: 12 + 22 + 17 x 28 = 510 */
    bquery(&m, "many.example.com", PD_DNS_TYPE_AAAA, false);
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_OK);
    rep.answer_count = 17;
    n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_equal(n, 510);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    assert_false(r.hdr.tc);
    rep.answer_count = 18;
    n = pd_dns_build_response(&q, &rep, out, sizeof out, &err);
    assert_int_equal(n, m.n);
    assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
    assert_true(r.hdr.tc);
}

/* Every capacity from 0 to beyond the full size: never a byte written at or past cap. */
static void test_caps_canary(void **state)
{
    (void)state;
    struct mb m;
    struct pd_err err = {{0}};
    static struct pd_dns_msg q, r;
    uint8_t full[1024], out[1024 + 64];
    bquery(&m, "cap.example.com", PD_DNS_TYPE_A, true);
    assert_int_equal(parse_q(m.b, m.n, &q, &err), PD_DNS_OK);
    struct pd_dns_answer ans[3] = {
        {.type = PD_DNS_TYPE_CNAME, .ttl = 1, .target = S("x.example.net")},
        {.type = PD_DNS_TYPE_A, .ttl = 1, .addr = {1, 1, 1, 1}, .owner = S("x.example.net")},
        {.type = PD_DNS_TYPE_AAAA, .ttl = 1, .addr = {0x20, [15] = 1}, .owner = S("x.example.net")},
    };
    struct pd_dns_reply rep = {
        .ra = true, .edns_udp_size = 1232, .answers = ans, .answer_count = 3, .tcp = true};
    size_t nfull = pd_dns_build_response(&q, &rep, full, sizeof full, &err);
    assert_int_not_equal(nfull, 0);
    struct pd_dns_reply none = rep;
    none.answer_count = 0;
    size_t nmin = pd_dns_build_response(&q, &none, full + 512, 512, &err);
    assert_int_not_equal(nmin, 0);
    assert_true(nmin < nfull);
    for (size_t cap = 0; cap <= nfull + 16; cap++) {
        memset(out, 0xa5, sizeof out);
        size_t n = pd_dns_build_response(&q, &rep, out, cap, &err);
        for (size_t i = cap; i < sizeof out; i++)
            if (out[i] != 0xa5)
                fail_msg("cap %zu: byte %zu written", cap, i);
        if (cap < nmin) {
            assert_int_equal(n, 0);
        } else if (cap < nfull) {
            assert_int_equal(n, nmin); /* TC, no answers */
            assert_int_equal(parse_r(out, n, &r, &err), PD_DNS_OK);
            assert_true(r.hdr.tc);
        } else {
            assert_int_equal(n, nfull);
            assert_memory_equal(out, full, nfull);
        }
    }
    /* the forwarding query builder */
    size_t qfull =
        pd_dns_build_query(7, S("cap.example.com"), PD_DNS_TYPE_A, 1232, full, sizeof full, &err);
    assert_int_equal(qfull, 12 + 21 + 11);
    for (size_t cap = 0; cap <= qfull + 16; cap++) {
        memset(out, 0xa5, sizeof out);
        size_t n = pd_dns_build_query(7, S("cap.example.com"), PD_DNS_TYPE_A, 1232, out, cap, &err);
        for (size_t i = cap; i < sizeof out; i++)
            if (out[i] != 0xa5)
                fail_msg("query cap %zu: byte %zu written", cap, i);
        assert_int_equal(n, cap < qfull ? 0 : qfull);
    }
    /* the name encoder */
    uint8_t wire[300];
    for (size_t cap = 0; cap <= 20; cap++) {
        memset(wire, 0xa5, sizeof wire);
        size_t n = pd_dns_name_encode(S("cap.example.com"), wire, cap, NULL);
        for (size_t i = cap; i < sizeof wire; i++)
            assert_int_equal(wire[i], 0xa5);
        assert_int_equal(n, cap < 17 ? 0 : 17);
    }
}

static void test_build_query(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    static struct pd_dns_msg q;
    uint8_t out[600];
    size_t n = pd_dns_build_query(0xabcd, S("api.example.com."), PD_DNS_TYPE_HTTPS, 1232, out,
                                  sizeof out, &err);
    assert_int_equal(n, 12 + 21 + 11);
    assert_int_equal(parse_q(out, n, &q, &err), PD_DNS_OK);
    assert_int_equal(q.hdr.id, 0xabcd);
    assert_true(q.hdr.rd);
    assert_false(q.hdr.qr || q.hdr.cd || q.hdr.ad);
    assert_string_equal(q.q.name.text, "api.example.com");
    assert_int_equal(q.q.qtype, PD_DNS_TYPE_HTTPS);
    assert_int_equal(q.q.qclass, PD_DNS_CLASS_IN);
    assert_true(q.edns.present);
    assert_int_equal(q.edns.udp_size_raw, 1232);
    assert_false(q.edns.do_bit);
    /* no OPT */
    n = pd_dns_build_query(1, S("a"), PD_DNS_TYPE_A, 0, out, sizeof out, &err);
    assert_int_equal(n, 12 + 3 + 4);
    assert_int_equal(parse_q(out, n, &q, &err), PD_DNS_OK);
    assert_false(q.edns.present);
    /* small sizes sent as 512 */
    n = pd_dns_build_query(1, S("a"), PD_DNS_TYPE_A, 1, out, sizeof out, &err);
    assert_int_equal(parse_q(out, n, &q, &err), PD_DNS_OK);
    assert_int_equal(q.edns.udp_size_raw, 512);
    /* invalid names */
    assert_int_equal(pd_dns_build_query(1, S("a..b"), 1, 0, out, sizeof out, &err), 0);
    assert_non_null(strstr(err.msg, "empty label"));
    assert_int_equal(pd_dns_build_query(1, S("a\\046b"), 1, 0, out, sizeof out, &err), 0);
    assert_int_equal(pd_dns_build_query(1, S("a"), 1, 0, NULL, 0, &err), 0);
}

static void test_name_encode(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    uint8_t w[300];
    assert_int_equal(pd_dns_name_encode(S(""), w, sizeof w, &err), 1);
    assert_int_equal(w[0], 0);
    assert_int_equal(pd_dns_name_encode(S("."), w, sizeof w, &err), 1);
    assert_int_equal(pd_dns_name_encode(NULL, 0, w, sizeof w, &err), 1);
    assert_int_equal(pd_dns_name_encode(S("Ab.c"), w, sizeof w, &err), 6);
    assert_memory_equal(w,
                        "\x02"
                        "Ab\x01"
                        "c\x00",
                        6);
    assert_int_equal(pd_dns_name_encode(S("ab.c."), w, sizeof w, &err), 6);
    assert_int_equal(pd_dns_name_encode(S("ab.c.."), w, sizeof w, &err), 0);
    assert_non_null(strstr(err.msg, "empty label"));
    assert_int_equal(pd_dns_name_encode(S(".ab"), w, sizeof w, &err), 0);
    assert_int_equal(pd_dns_name_encode(S(".."), w, sizeof w, &err), 0);
    assert_int_equal(pd_dns_name_encode(S("a..b"), w, sizeof w, &err), 0);
    assert_int_equal(pd_dns_name_encode(S("_x-1.y"), w, sizeof w, &err), 8);
    assert_int_equal(pd_dns_name_encode(S("a b"), w, sizeof w, &err), 0);
    assert_non_null(strstr(err.msg, "0x20 at offset 1"));
    assert_int_equal(pd_dns_name_encode(S("a*"), w, sizeof w, &err), 0);
    assert_int_equal(pd_dns_name_encode("a\0b", 3, w, sizeof w, &err), 0);
    assert_int_equal(pd_dns_name_encode(S("\xc3\xa9"), w, sizeof w, &err), 0);
    char name[400];
    memset(name, 'a', 63);
    assert_int_equal(pd_dns_name_encode(name, 63, w, sizeof w, &err), 65);
    memset(name, 'a', 64);
    assert_int_equal(pd_dns_name_encode(name, 64, w, sizeof w, &err), 0);
    assert_non_null(strstr(err.msg, "label longer than 63 bytes"));
    /* 253 characters: 255 wire bytes; 254: too long */
    size_t o = 0;
    for (int i = 0; i < 3; i++) {
        memset(name + o, 'b', 63);
        o += 63;
        name[o++] = '.';
    }
    memset(name + o, 'c', 61);
    o += 61;
    assert_int_equal(pd_dns_name_encode(name, o, w, sizeof w, &err), 255);
    name[o] = '.';
    assert_int_equal(pd_dns_name_encode(name, o + 1, w, sizeof w, &err), 255);
    name[o] = 'c';
    assert_int_equal(pd_dns_name_encode(name, o + 1, w, sizeof w, &err), 0);
    assert_non_null(strstr(err.msg, "255"));
    memset(name, 'a', sizeof name);
    assert_int_equal(pd_dns_name_encode(name, sizeof name, w, sizeof w, &err), 0);
    /* does not fit */
    assert_int_equal(pd_dns_name_encode(S("abc"), w, 4, &err), 0);
    assert_int_equal(pd_dns_name_encode(S("abc"), w, 5, &err), 5);
    assert_int_equal(pd_dns_name_encode(S("abc"), NULL, 5, &err), 0);
}

static void test_names_for_logs(void **state)
{
    (void)state;
    char buf[PD_DNS_TYPE_NAME_MAX];
    struct {
        uint16_t t;
        const char *name;
    } v[] = {{1, "A"},         {28, "AAAA"},  {5, "CNAME"},        {16, "TXT"}, {10, "NULL"},
             {255, "ANY"},     {65, "HTTPS"}, {64, "SVCB"},        {15, "MX"},  {2, "NS"},
             {6, "SOA"},       {12, "PTR"},   {33, "SRV"},         {41, "OPT"}, {257, "CAA"},
             {123, "TYPE123"}, {0, "TYPE0"},  {65535, "TYPE65535"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_string_equal(pd_dns_type_name(v[i].t, buf, sizeof buf), v[i].name);
    assert_string_equal(pd_dns_type_name(99, NULL, 0), "TYPE?");
    assert_string_equal(pd_dns_rcode_name(3, buf, sizeof buf), "NXDOMAIN");
    assert_string_equal(pd_dns_rcode_name(16, buf, sizeof buf), "BADVERS");
    assert_string_equal(pd_dns_rcode_name(4095, buf, sizeof buf), "RCODE4095");
    assert_string_equal(pd_dns_status_name(PD_DNS_NOTIMP), "notimp");
    assert_string_equal(pd_dns_status_name(PD_DNS_OK), "ok");
}

/* Every prefix and every single-byte change of valid messages: no crash, no over-read, errors
 * are printable. */
static void test_mutations(void **state)
{
    (void)state;
    struct mb m;
    struct pd_err err = {{0}};
    build_cname_response(&m);
    for (size_t i = 0; i < m.n; i++) {
        uint8_t save = m.b[i];
        for (unsigned v = 0; v < 256; v += 17) {
            m.b[i] = (uint8_t)v;
            err.msg[0] = '\0';
            enum pd_dns_status st = parse_r(m.b, m.n, &g_msg, &err);
            if (st != PD_DNS_OK) {
                assert_true(err.msg[0] != '\0');
                for (const char *p = err.msg; *p; p++)
                    assert_true(*p >= 0x20 && *p < 0x7f);
            }
            (void)parse_q(m.b, m.n, &g_msg, &err);
        }
        m.b[i] = save;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_qr_opcode),
        cmocka_unit_test(test_qdcount),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_compression_errors),
        cmocka_unit_test(test_label_errors),
        cmocka_unit_test(test_pointer_cap),
        cmocka_unit_test(test_odd_bytes_and_case),
        cmocka_unit_test(test_worst_case_text),
        cmocka_unit_test(test_record_errors),
        cmocka_unit_test(test_edns),
        cmocka_unit_test(test_response_accessors),
        cmocka_unit_test(test_nxdomain_response),
        cmocka_unit_test(test_build_roundtrip),
        cmocka_unit_test(test_build_cname_chain),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_caps_canary),
        cmocka_unit_test(test_build_query),
        cmocka_unit_test(test_name_encode),
        cmocka_unit_test(test_names_for_logs),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
