/* test_host.c - canonical host names: case, dots, lengths, characters, IDNA, IP literal detection. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "net/host.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void expect_name(const char *in, size_t len, const char *want)
{
    char out[PD_HOST_MAX + 1];
    size_t n = 999;
    struct pd_addr a;
    struct pd_err err = {{0}};
    memset(&a, 0x55, sizeof a);
    enum pd_host_kind k = pd_host_canon(in, len, out, &n, &a, &err);
    if (k != PD_HOST_NAME)
        fail_msg("'%.*s' should be a host name (kind %d): %s", (int)len, in, (int)k, err.msg);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    assert_int_equal(a.family, 0);
    /* idempotent */
    char again[PD_HOST_MAX + 1];
    assert_int_equal(pd_host_canon(out, n, again, NULL, NULL, NULL), PD_HOST_NAME);
    assert_string_equal(again, out);
    /* no canonical name is an address to the C library */
    struct in_addr ia;
    unsigned char i6[16];
    assert_int_equal(inet_aton(out, &ia), 0);
    assert_int_equal(inet_pton(AF_INET6, out, i6), 0);
    /* the name-only variant agrees */
    assert_true(pd_host_canon_name(in, len, again, NULL, NULL));
    assert_string_equal(again, want);
}

static void expect_addr(const char *in, size_t len, const char *want)
{
    char out[PD_HOST_MAX + 1];
    size_t n = 999;
    struct pd_addr a;
    struct pd_err err = {{0}};
    enum pd_host_kind k = pd_host_canon(in, len, out, &n, &a, &err);
    if (k != PD_HOST_ADDR)
        fail_msg("'%.*s' should be an IP address (kind %d): %s", (int)len, in, (int)k, err.msg);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    char txt[PD_ADDR_STRLEN];
    pd_addr_format(&a, txt, sizeof txt);
    assert_string_equal(txt, want);
    /* the output text is itself an address with the same value */
    struct pd_addr b;
    char again[PD_HOST_MAX + 1];
    assert_int_equal(pd_host_canon(out, n, again, NULL, &b, NULL), PD_HOST_ADDR);
    assert_true(pd_addr_equal(&a, &b));
    /* and a name-only caller is refused with a clear reason */
    assert_false(pd_host_canon_name(in, len, again, NULL, &err));
    assert_non_null(strstr(err.msg, "IP address"));
}

static void expect_bad(const char *in, size_t len, const char *needle)
{
    char out[PD_HOST_MAX + 1];
    size_t n = 999;
    struct pd_err err = {{0}};
    enum pd_host_kind k = pd_host_canon(in, len, out, &n, NULL, &err);
    if (k != PD_HOST_INVALID)
        fail_msg("'%.*s' (len %zu) should be invalid, got kind %d '%s'", (int)len, in, len, (int)k, out);
    assert_string_equal(out, "");
    assert_int_equal(n, 0);
    assert_true(strlen(err.msg) > 0);
    if (needle && !strstr(err.msg, needle))
        fail_msg("error for '%.*s' should mention \"%s\": %s", (int)len, in, needle, err.msg);
    /* errors never carry raw control or non-ASCII bytes */
    for (const char *p = err.msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            fail_msg("error for '%.*s' has a raw byte 0x%02x", (int)len, in, (unsigned char)*p);
}

static void test_case_and_dots(void **state)
{
    (void)state;
    expect_name(S("example.com"), "example.com");
    expect_name(S("EXAMPLE.COM"), "example.com");
    expect_name(S("ExAmPlE.cOm."), "example.com");
    expect_name(S("example.com."), "example.com");
    expect_name(S("localhost"), "localhost");
    expect_name(S("a"), "a");
    expect_name(S("A."), "a");
    expect_bad(S("example.com.."), "empty");
    expect_bad(S("."), "empty");
    expect_bad(S(".."), NULL);
    expect_bad(S(""), "empty");
    expect_bad(NULL, 0, "empty");
    expect_bad(S(".example.com"), "empty");
    expect_bad(S("a..b"), "empty");
}

static void test_lengths(void **state)
{
    (void)state;
    char buf[400];
    /* 63-character label ok, 64 refused */
    memset(buf, 'a', 63);
    memcpy(buf + 63, ".com", 4);
    buf[67] = '\0';
    expect_name(buf, 67, buf);
    memset(buf, 'a', 64);
    memcpy(buf + 64, ".com", 4);
    expect_bad(buf, 68, "63");
    /* 253 total ok (with or without the trailing dot), 254 refused */
    size_t o = 0;
    for (int i = 0; i < 4; i++) { /* 4 x (62 + '.') = 252, then "a" = 253 */
        memset(buf + o, 'b', 62);
        o += 62;
        buf[o++] = '.';
    }
    buf[o++] = 'a';
    assert_int_equal(o, 253);
    buf[o] = '\0';
    expect_name(buf, 253, buf);
    char want[254];
    memcpy(want, buf, 254);
    buf[253] = '.';
    expect_name(buf, 254, want);
    buf[253] = 'a';
    expect_bad(buf, 254, "253");
    buf[254] = '.';
    expect_bad(buf, 255, "253");
    /* a very long input is refused without trouble */
    memset(buf, 'c', sizeof buf);
    expect_bad(buf, sizeof buf, "253");
}

static void test_characters(void **state)
{
    (void)state;
    expect_name(S("a_b.example.com"), "a_b.example.com");
    expect_name(S("_dmarc.example.com"), "_dmarc.example.com");
    expect_name(S("_.example.com"), "_.example.com");
    expect_name(S("a-b.example.com"), "a-b.example.com");
    expect_name(S("a--b.example.com"), "a--b.example.com");
    expect_name(S("123.example"), "123.example");
    expect_name(S("08.com"), "08.com");
    expect_name(S("0x1g.com"), "0x1g.com");
    expect_name(S("foo.0x1g"), "foo.0x1g");
    expect_name(S("1e5"), "1e5");
    expect_name(S("127.0.0.1.nip.io"), "127.0.0.1.nip.io");

    char out[PD_HOST_MAX + 1];
    struct pd_err err = {{0}};
    assert_int_equal(pd_host_canon(S("exa mple.com"), out, NULL, NULL, &err), PD_HOST_INVALID);
    assert_string_equal(err.msg, "host 'exa mple.com': character ' ' at offset 3 is not allowed in a host "
                                 "name (expected letters, digits, '-', '_', '.')");

    expect_bad(S("-a.com"), "starts with '-'");
    expect_bad(S("a-.com"), "ends with '-'");
    expect_bad(S("a.-.com"), NULL);
    expect_bad(S("example.com-"), "ends with '-'");
    expect_bad(S("a%2e.com"), "percent");
    expect_bad(S("example%2ecom"), "percent");
    expect_bad(S("user@example.com"), "'@'");
    expect_bad(S("example.com/path"), "'/'");
    expect_bad(S("example.com\\evil"), "'\\\\'");
    expect_bad("exa\0mple.com", 12, "\\x00");
    expect_bad(S("example.com\r\n"), "\\x0d");
    expect_bad(S("a\tb.com"), "\\x09");
    expect_bad(S("example.com:443"), "':'");
    expect_bad(S("*.example.com"), "'*'");
    expect_bad(S("exa'mple.com"), "\\'");
    expect_bad(S(" example.com"), "' '");
    expect_bad(S("example.com "), "' '");
    expect_bad(S("ex+ample.com"), "'+'");
    expect_bad(S("[example.com]"), "IPv6");
    expect_bad(S("ab--cd.com"), "reserves");
    expect_bad(S("AB--cd.com"), "reserves");
}

static void test_idn(void **state)
{
    (void)state;
    expect_bad(S("b\xc3\xbc"
                 "cher.example"),
               "xn--");
    expect_bad(S("example.\xe4\xb8\xad\xe5\x9b\xbd"), "punycode");
    expect_bad(S("\xff"), "0xff");
    expect_name(S("xn--bcher-kva.example"), "xn--bcher-kva.example");
    expect_name(S("XN--BCHER-KVA.Example"), "xn--bcher-kva.example");
    expect_name(S("xn--mnchen-3ya.de"), "xn--mnchen-3ya.de");
    expect_name(S("xn--ls8h.la"), "xn--ls8h.la");
    expect_name(S("www.xn--fiqs8s"), "www.xn--fiqs8s");
    expect_name(S("xn--egbpdaj6bu4bxfgehfvwxn.example"), "xn--egbpdaj6bu4bxfgehfvwxn.example");
    expect_bad(S("xn--.example"), "ends with '-'");
    expect_bad(S("xn--abc-.example"), NULL);
    expect_bad(S("xn--bcher-.example"), NULL);
    expect_bad(S("xn--a.example"), "U+0080");       /* decodes to a C1 control */
    expect_bad(S("xn--99999999999.example"), "punycode"); /* overflow */
    expect_bad(S("xn--zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz.example"), "punycode");
    expect_bad(S("xn--ab_c.example"), "only letters");
    expect_bad(S("xn---abc.example"), NULL);
    expect_bad(S("xn--bcher-kva-.example"), NULL);

    struct pd_err err = {{0}};
    /* RFC 3492 delimiter with nothing encoded after it: pure ASCII in disguise */
    assert_false(pd_host_alabel_check(S("xn--abc-"), &err));
    assert_true(pd_host_alabel_check(S("xn--bcher-kva"), &err));
    assert_true(pd_host_alabel_check(S("XN--BCHER-KVA"), &err));
    assert_false(pd_host_alabel_check(S("bcher-kva"), &err));
    assert_false(pd_host_alabel_check(S("xn-"), &err));
    assert_false(pd_host_alabel_check(S("xn--"), &err));
    assert_non_null(strstr(err.msg, "nothing after"));
    assert_false(pd_host_alabel_check(NULL, 0, &err));
}

static void test_punycode_vectors(void **state)
{
    (void)state;
    /* RFC 3492 section 7.1 (L) and (A), plus the classic German examples */
    static const uint32_t l_cp[] = {0x33, 0x5e74, 0x42, 0x7d44, 0x91d1, 0x516b, 0x5148, 0x751f};
    static const uint32_t a_cp[] = {0x644, 0x64a, 0x647, 0x645, 0x627, 0x628, 0x62a, 0x643, 0x644,
                                    0x645, 0x648, 0x634, 0x639, 0x631, 0x628, 0x64a, 0x61f};
    static const uint32_t b_cp[] = {'b', 0xfc, 'c', 'h', 'e', 'r'};
    struct {
        const uint32_t *cp;
        size_t n;
        const char *enc;
    } v[] = {
        {l_cp, sizeof l_cp / sizeof l_cp[0], "3B-ww4c5e180e575a65lsy2b"},
        {a_cp, sizeof a_cp / sizeof a_cp[0], "egbpdaj6bu4bxfgehfvwxn"},
        {b_cp, sizeof b_cp / sizeof b_cp[0], "bcher-kva"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint32_t out[64];
        long n = pd_punycode_decode(v[i].enc, strlen(v[i].enc), out, 64);
        assert_int_equal(n, (long)v[i].n);
        assert_memory_equal(out, v[i].cp, v[i].n * sizeof(uint32_t));
        char enc[64];
        long e = pd_punycode_encode(v[i].cp, v[i].n, enc, sizeof enc);
        assert_int_equal(e, (long)strlen(v[i].enc));
        /* the encoder writes digits in lower case; the basic code points are copied as given */
        assert_memory_equal(enc, v[i].enc, (size_t)e);
    }
    uint32_t out[4];
    assert_int_equal(pd_punycode_decode(S("egbpdaj6bu4bxfgehfvwxn"), out, 4), -1); /* does not fit */
    char small[4];
    assert_int_equal(pd_punycode_encode(a_cp, sizeof a_cp / sizeof a_cp[0], small, sizeof small), -1);
    assert_int_equal(pd_punycode_decode(S("a\x80-b"), out, 4), -1);
    assert_int_equal(pd_punycode_decode(NULL, 0, out, 4), -1);
}

static void test_numeric_last_label(void **state)
{
    (void)state;
    expect_addr(S("1.2.3.4"), "1.2.3.4");
    expect_addr(S("1.2.3.4."), "1.2.3.4");
    expect_bad(S("1.2.3.4.."), NULL);
    expect_bad(S("1.2.3.256"), "IPv4");
    expect_bad(S("foo.1"), "ends in a number");
    expect_bad(S("foo.0x"), "ends in a number");
    expect_bad(S("foo.0x1f"), "ends in a number");
    expect_bad(S("foo.0X1F."), "ends in a number");
    expect_bad(S("example.123"), "ends in a number");
    expect_bad(S("1.2.3.4.5"), "more than 4");
    expect_bad(S("08"), "octal");
    expect_bad(S("0x"), NULL);
    expect_bad(S("4294967296"), NULL);
    expect_bad(S("1..2"), NULL);
    expect_bad(S("a..1"), NULL);
}

static void test_every_ip_spelling_is_an_address(void **state)
{
    (void)state;
    const char *loop[] = {"127.0.0.1",  "127.1",       "127.0.1",      "2130706433", "0x7f000001",
                          "0X7F000001", "0177.0.0.1",  "0x7f.0.0.1",   "0x7f.1",     "017700000001",
                          "127.0x0.0.1", "127.0.0.1.", "0x7F.0X0.0.1", "127.00.0.01", "0000177.1"};
    for (size_t i = 0; i < sizeof loop / sizeof loop[0]; i++)
        expect_addr(loop[i], strlen(loop[i]), "127.0.0.1");
    expect_addr(S("169.254.43518"), "169.254.169.254");
    expect_addr(S("0xa9fea9fe"), "169.254.169.254");
    expect_addr(S("0"), "0.0.0.0");
    expect_addr(S("0x0"), "0.0.0.0");
    expect_addr(S("[::1]"), "::1");
    expect_addr(S("::1"), "::1");
    expect_addr(S("[0:0:0:0:0:0:0:1]"), "::1");
    expect_addr(S("[::FFFF:127.0.0.1]"), "::ffff:127.0.0.1");
    expect_addr(S("[::ffff:7f00:1]"), "::ffff:127.0.0.1");
    expect_addr(S("[2001:DB8::1]"), "2001:db8::1");
    expect_bad(S("[fe80::1%25eth0]"), "zone");
    expect_bad(S("[::1]:443"), NULL);
    expect_bad(S("[::1"), NULL);
    expect_bad(S("::1]"), NULL);
    expect_bad(S("[]"), NULL);
    expect_bad(S("[127.0.0.1]"), NULL);
}

static void test_null_buffers(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    assert_int_equal(pd_host_canon(S("example.com"), NULL, NULL, NULL, &err), PD_HOST_INVALID);
    char out[PD_HOST_MAX + 1];
    /* only `len` bytes are read */
    size_t n = 0;
    assert_int_equal(pd_host_canon("example.com.evil", 11, out, &n, NULL, NULL), PD_HOST_NAME);
    assert_string_equal(out, "example.com");
    assert_int_equal(pd_host_canon("1.2.3.4.evil", 7, out, &n, NULL, NULL), PD_HOST_ADDR);
    assert_string_equal(out, "1.2.3.4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_case_and_dots),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_characters),
        cmocka_unit_test(test_idn),
        cmocka_unit_test(test_punycode_vectors),
        cmocka_unit_test(test_numeric_last_label),
        cmocka_unit_test(test_every_ip_spelling_is_an_address),
        cmocka_unit_test(test_null_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
