/* test_ip.c - IP literal parsing (every spelling), formatting, classification, CIDR. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "net/cidr.h"
#include "net/ip.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- helpers ------------------------------------------------------------------------------ */

static void expect_v4(const char *s, size_t len, uint8_t a, uint8_t b, uint8_t c, uint8_t d, bool canon)
{
    struct pd_addr out;
    struct pd_err err = {{0}};
    bool canonical = !canon;
    if (!pd_ipv4_parse(s, len, &out, &canonical, &err))
        fail_msg("'%s' should parse as IPv4: %s", s, err.msg);
    if (out.family != AF_INET || out.bytes[0] != a || out.bytes[1] != b || out.bytes[2] != c ||
        out.bytes[3] != d)
        fail_msg("'%s' parsed to %u.%u.%u.%u, expected %u.%u.%u.%u", s, out.bytes[0], out.bytes[1],
                 out.bytes[2], out.bytes[3], a, b, c, d);
    for (int i = 4; i < 16; i++)
        assert_int_equal(out.bytes[i], 0);
    if (canonical != canon)
        fail_msg("'%s': canonical flag %d, expected %d", s, canonical, canon);
}

static void expect_v4_bad(const char *s, size_t len)
{
    struct pd_addr out;
    struct pd_err err = {{0}};
    if (pd_ipv4_parse(s, len, &out, NULL, &err))
        fail_msg("'%s' (len %zu) should NOT parse as IPv4 but gave %u.%u.%u.%u", s, len, out.bytes[0],
                 out.bytes[1], out.bytes[2], out.bytes[3]);
    assert_true(strlen(err.msg) > 0);
}

static struct pd_addr v6(const char *s)
{
    struct pd_addr a;
    struct pd_err err = {{0}};
    if (!pd_ip_parse(s, strlen(s), &a, &err))
        fail_msg("'%s' should parse: %s", s, err.msg);
    return a;
}

static void expect_v6_bytes(const char *s, const uint8_t want[16])
{
    struct pd_addr a;
    struct pd_err err = {{0}};
    if (!pd_ipv6_parse(s, strlen(s), &a, &err))
        fail_msg("'%s' should parse as IPv6: %s", s, err.msg);
    assert_int_equal(a.family, AF_INET6);
    if (memcmp(a.bytes, want, 16) != 0)
        fail_msg("'%s' parsed to the wrong bytes", s);
}

static void expect_v6_bad(const char *s)
{
    struct pd_addr a;
    struct pd_err err = {{0}};
    if (pd_ipv6_parse(s, strlen(s), &a, &err))
        fail_msg("'%s' should NOT parse as IPv6", s);
    assert_true(strlen(err.msg) > 0);
}

static void expect_format(const char *in, const char *want)
{
    struct pd_addr a = v6(in);
    char buf[PD_ADDR_STRLEN];
    size_t n = pd_addr_format(&a, buf, sizeof buf);
    if (n != strlen(want) || strcmp(buf, want) != 0)
        fail_msg("format('%s') = '%s', expected '%s'", in, buf, want);
    /* and the canonical text parses back to the same address */
    struct pd_addr b = v6(buf);
    assert_true(pd_addr_equal(&a, &b));
}

static void expect_class(const char *s, uint32_t want)
{
    struct pd_addr a = v6(s);
    uint32_t got = pd_addr_classify(&a);
    if (got != want) {
        char g[128], w[128];
        pd_addr_classes_format(got, g, sizeof g);
        pd_addr_classes_format(want, w, sizeof w);
        fail_msg("classify('%s') = {%s}, expected {%s}", s, g, w);
    }
    assert_int_equal(pd_addr_is_public(&a), (want & ~PD_ADDR_EMBEDS_IPV4) == PD_ADDR_PUBLIC);
}

/* ---- IPv4 lenient -------------------------------------------------------------------------- */

static void test_ipv4_spellings(void **state)
{
    (void)state;
    expect_v4(S("127.0.0.1"), 127, 0, 0, 1, true);
    expect_v4(S("127.1"), 127, 0, 0, 1, false);
    expect_v4(S("127.0.1"), 127, 0, 0, 1, false);
    expect_v4(S("2130706433"), 127, 0, 0, 1, false);
    expect_v4(S("0x7f000001"), 127, 0, 0, 1, false);
    expect_v4(S("0X7F000001"), 127, 0, 0, 1, false);
    expect_v4(S("0177.0.0.1"), 127, 0, 0, 1, false);
    expect_v4(S("0x7f.0.0.1"), 127, 0, 0, 1, false);
    expect_v4(S("0x7f.1"), 127, 0, 0, 1, false);
    expect_v4(S("017700000001"), 127, 0, 0, 1, false);
    expect_v4(S("127.0x0.0.1"), 127, 0, 0, 1, false);
    expect_v4(S("127.0.0.01"), 127, 0, 0, 1, false);
    expect_v4(S("127.0.0.1."), 127, 0, 0, 1, false);
    expect_v4(S("0x000000000000000000007f.1"), 127, 0, 0, 1, false);
    expect_v4(S("00000000000000000000177.1"), 127, 0, 0, 1, false);
    expect_v4(S("169.254.43518"), 169, 254, 169, 254, false);
    expect_v4(S("0xa9.0xfe.0xa9.0xfe"), 169, 254, 169, 254, false);
    expect_v4(S("0251.0376.0251.0376"), 169, 254, 169, 254, false);
    expect_v4(S("2852039166"), 169, 254, 169, 254, false);
    expect_v4(S("1.2.3"), 1, 2, 0, 3, false);
    expect_v4(S("1.0x10000"), 1, 1, 0, 0, false);
    expect_v4(S("1.2.0xffff"), 1, 2, 255, 255, false);
    expect_v4(S("1.0xffffff"), 1, 255, 255, 255, false);
    expect_v4(S("0"), 0, 0, 0, 0, false);
    expect_v4(S("00"), 0, 0, 0, 0, false);
    expect_v4(S("0x0"), 0, 0, 0, 0, false);
    expect_v4(S("0.0.0.0"), 0, 0, 0, 0, true);
    expect_v4(S("4294967295"), 255, 255, 255, 255, false);
    expect_v4(S("0xffffffff"), 255, 255, 255, 255, false);
    expect_v4(S("037777777777"), 255, 255, 255, 255, false);
    expect_v4(S("255.255.255.255"), 255, 255, 255, 255, true);
    expect_v4(S("8.8.8.8"), 8, 8, 8, 8, true);
}

static void test_ipv4_invalid(void **state)
{
    (void)state;
    expect_v4_bad(S(""));
    expect_v4_bad(S("."));
    expect_v4_bad(S(".."));
    expect_v4_bad(S("256.0.0.1"));
    expect_v4_bad(S("1.2.3.256"));
    expect_v4_bad(S("1.256.3"));
    expect_v4_bad(S("1.2.65536"));
    expect_v4_bad(S("1.16777216"));
    expect_v4_bad(S("1.2.3.4.5"));
    expect_v4_bad(S("1..2"));
    expect_v4_bad(S(".1.2.3"));
    expect_v4_bad(S("1.2.3.4.."));
    expect_v4_bad(S("0x"));
    expect_v4_bad(S("0X"));
    expect_v4_bad(S("0x.1.2.3"));
    expect_v4_bad(S("1.0x"));
    expect_v4_bad(S("08"));
    expect_v4_bad(S("09"));
    expect_v4_bad(S("0.0.0.08"));
    expect_v4_bad(S("4294967296"));
    expect_v4_bad(S("0x100000000"));
    expect_v4_bad(S("040000000000"));
    expect_v4_bad(S("99999999999999999999999999"));
    expect_v4_bad(S("0x7fffffffffffffffffffffff"));
    expect_v4_bad(S(" 1.2.3.4"));
    expect_v4_bad(S("1.2.3.4 "));
    expect_v4_bad(S("1.2.3.4\n"));
    expect_v4_bad("1.2.3.4\0", 8);
    expect_v4_bad(S("1.2.3.-1"));
    expect_v4_bad(S("+1.2.3.4"));
    expect_v4_bad(S("1.2.3.4x"));
    expect_v4_bad(S("0xg"));
    expect_v4_bad(S("1e3"));
    expect_v4_bad(S("1.2.3.0x"));
    expect_v4_bad(S("0x0x1"));
}

static void test_ipv4_no_overread(void **state)
{
    (void)state;
    /* Only the first len bytes count: "1.2.3.4" followed by "5" outside the range. */
    expect_v4("1.2.3.45", 7, 1, 2, 3, 4, true);
    struct pd_addr a;
    assert_false(pd_ipv4_parse(NULL, 0, &a, NULL, NULL));
    assert_false(pd_ipv4_parse_strict(NULL, 0, &a, NULL));
    assert_false(pd_ipv6_parse(NULL, 0, &a, NULL));
}

static void test_ipv4_strict(void **state)
{
    (void)state;
    const char *good[] = {"0.0.0.0", "255.255.255.255", "192.0.2.1", "10.0.0.0", "100.64.0.1"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct pd_addr a, b;
        assert_true(pd_ipv4_parse_strict(good[i], strlen(good[i]), &a, NULL));
        bool canon = false;
        assert_true(pd_ipv4_parse(good[i], strlen(good[i]), &b, &canon, NULL));
        assert_true(canon);
        assert_true(pd_addr_equal(&a, &b));
    }
    const char *bad[] = {"127.1", "0177.0.0.1", "01.2.3.4", "1.2.3.4.", "256.1.1.1", "1.2.3", "1.2.3.4.5",
                         "", "1.2.3.0x4", "1.2.3.4 ", " 1.2.3.4", "1..3.4", "1000.1.1.1", "2130706433",
                         "1.2.3.00", "1.2.3.4/8", "a.b.c.d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pd_addr a;
        struct pd_err err = {{0}};
        if (pd_ipv4_parse_strict(bad[i], strlen(bad[i]), &a, &err))
            fail_msg("strict parse accepted '%s'", bad[i]);
        assert_true(strlen(err.msg) > 0);
    }
}

static void test_ipv4_error_messages(void **state)
{
    (void)state;
    struct pd_addr a;
    struct pd_err err = {{0}};
    assert_false(pd_ipv4_parse(S("1.2.3.\x01"), &a, NULL, &err));
    assert_non_null(strstr(err.msg, "\\x01"));
    assert_null(strchr(err.msg, '\x01'));
    assert_false(pd_ipv4_parse(S("08"), &a, NULL, &err));
    assert_non_null(strstr(err.msg, "octal"));
    assert_false(pd_ipv4_parse(S("1.2.3.256"), &a, NULL, &err));
    assert_non_null(strstr(err.msg, "out of range"));
    assert_false(pd_ipv4_parse_strict(S("01.2.3.4"), &a, &err));
    assert_non_null(strstr(err.msg, "leading zero"));
}

/* ---- IPv6 -------------------------------------------------------------------------------- */

static void test_ipv6_forms(void **state)
{
    (void)state;
    static const uint8_t zero[16] = {0};
    static const uint8_t one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t doc1[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
    static const uint8_t seq[16] = {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8};
    static const uint8_t seq7[16] = {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0};
    static const uint8_t seq_2[16] = {0, 0, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8};
    static const uint8_t v4tail[16] = {0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 1, 2, 3, 4};
    static const uint8_t compat[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    static const uint8_t onecolon[16] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t ll[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    expect_v6_bytes("::", zero);
    expect_v6_bytes("[::]", zero);
    expect_v6_bytes("0:0:0:0:0:0:0:0", zero);
    expect_v6_bytes("::1", one);
    expect_v6_bytes("[::1]", one);
    expect_v6_bytes("0000:0000:0000:0000:0000:0000:0000:0001", one);
    expect_v6_bytes("::0.0.0.1", one);
    expect_v6_bytes("2001:db8::1", doc1);
    expect_v6_bytes("2001:DB8:0:0:0:0:0:1", doc1);
    expect_v6_bytes("2001:0db8::0:1", doc1);
    expect_v6_bytes("[2001:db8::1]", doc1);
    expect_v6_bytes("::ffff:127.0.0.1", mapped);
    expect_v6_bytes("::FFFF:7F00:1", mapped);
    expect_v6_bytes("0:0:0:0:0:ffff:127.0.0.1", mapped);
    expect_v6_bytes("1:2:3:4:5:6:7:8", seq);
    expect_v6_bytes("1:2:3:4:5:6:7::", seq7);
    expect_v6_bytes("::2:3:4:5:6:7:8", seq_2);
    expect_v6_bytes("1:2:3:4:5:6:1.2.3.4", v4tail);
    expect_v6_bytes("1:2:3:4:5::1.2.3.4", (const uint8_t[16]){0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 0, 1, 2, 3, 4});
    expect_v6_bytes("::1.2.3.4", compat);
    expect_v6_bytes("1::", onecolon);
    expect_v6_bytes("fe80::1", ll);
}

static void test_ipv6_invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "[]", "[::1", "::1]", "[[::1]]", ":::", "1:::2", "1::2::3", "::1::", ":1::2", ":1:2:3:4:5:6:7:8",
        "1::2:", "1:2:3:4:5:6:7:8:", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::1", "::ffff:1.2.3",
        "::ffff:1.2.3.4.5", "::ffff:01.2.3.4", "::ffff:256.1.1.1", "::ffff:1.2.3.4.", "1:2:3:4:5:6:7:1.2.3.4",
        "1:2:3:4:5:6::1.2.3.4", "fe80::1%eth0", "fe80::1%25eth0", "[fe80::1%25eth0]", "::g", " ::1", "::1 ",
        "1:2:3:4:5:6:7:8::", "::1.2.3.4:5", "::ffff:0x7f.0.0.1", "::ffff:127.1", "1.2.3.4::", "::.1",
        "[::1]:443", "::1/128", "0:0:0:0:0:0:0:0:0", "::-1", "::+1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_v6_bad(bad[i]);

    struct pd_addr a;
    struct pd_err err = {{0}};
    assert_false(pd_ipv6_parse(S("fe80::1%25eth0"), &a, &err));
    assert_non_null(strstr(err.msg, "zone"));
    assert_false(pd_ipv6_parse(S("1::2::3"), &a, &err));
    assert_non_null(strstr(err.msg, "'::'"));
}

static void test_ip_parse_dispatch(void **state)
{
    (void)state;
    struct pd_addr a;
    assert_true(pd_ip_parse(S("0x7f.1"), &a, NULL));
    assert_int_equal(a.family, AF_INET);
    assert_true(pd_ip_parse(S("[::1]"), &a, NULL));
    assert_int_equal(a.family, AF_INET6);
    assert_false(pd_ip_parse_strict(S("0x7f.1"), &a, NULL));
    assert_true(pd_ip_parse_strict(S("127.0.0.1"), &a, NULL));
    assert_int_equal(a.family, AF_INET);
    assert_true(pd_ip_parse_strict(S("::1"), &a, NULL));
    assert_int_equal(a.family, AF_INET6);
    assert_false(pd_ip_parse(S("example.com"), &a, NULL));
}

/* ---- Formatting ---------------------------------------------------------------------------- */

static void test_format(void **state)
{
    (void)state;
    expect_format("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1");
    expect_format("2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1");
    expect_format("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1");
    expect_format("0:0:0:0:0:0:0:0", "::");
    expect_format("0:0:0:0:0:0:0:1", "::1");
    expect_format("1:0:0:0:0:0:0:0", "1::");
    expect_format("1:0:0:2:0:0:0:3", "1:0:0:2::3");
    expect_format("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0");
    expect_format("0:1:0:0:0:0:0:0", "0:1::");
    expect_format("::ffff:127.0.0.1", "::ffff:127.0.0.1");
    expect_format("::FFFF:7F00:1", "::ffff:127.0.0.1");
    expect_format("::1.2.3.4", "::102:304");
    expect_format("::ffff:0:1.2.3.4", "::ffff:0:102:304");
    expect_format("ABCD:EF01:2345:6789:ABCD:EF01:2345:6789", "abcd:ef01:2345:6789:abcd:ef01:2345:6789");
    expect_format("fe80::0001", "fe80::1");
    expect_format("0x7f.1", "127.0.0.1");
    expect_format("017700000001", "127.0.0.1");
    expect_format("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");

    /* the longest text fits PD_ADDR_STRLEN; a short buffer gives 0 and "" */
    struct pd_addr a = v6("::ffff:255.255.255.255");
    char buf[PD_ADDR_STRLEN];
    assert_int_equal(pd_addr_format(&a, buf, sizeof buf), strlen("::ffff:255.255.255.255"));
    char small[8];
    assert_int_equal(pd_addr_format(&a, small, sizeof small), 0);
    assert_string_equal(small, "");
    struct pd_addr bad = {.family = 99};
    assert_int_equal(pd_addr_format(&bad, buf, sizeof buf), 0);
}

/* Random addresses with zero runs: our text parses back, and agrees with inet_pton/inet_ntop. */
static void test_format_roundtrip_random(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int iter = 0; iter < 20000; iter++) {
        struct pd_addr a = {.family = AF_INET6};
        for (int g = 0; g < 8; g++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            unsigned v = (x & 3) ? 0 : (unsigned)(x >> 16) & 0xffff; /* mostly zero groups */
            if ((x >> 40) % 5 == 0)
                v = (unsigned)(x >> 20) & 0xf;
            a.bytes[2 * g] = (uint8_t)(v >> 8);
            a.bytes[2 * g + 1] = (uint8_t)v;
        }
        char buf[PD_ADDR_STRLEN];
        size_t n = pd_addr_format(&a, buf, sizeof buf);
        assert_true(n > 0);
        struct pd_addr b;
        struct pd_err err = {{0}};
        if (!pd_ipv6_parse(buf, n, &b, &err))
            fail_msg("'%s' does not parse back: %s", buf, err.msg);
        assert_true(pd_addr_equal(&a, &b));
        uint8_t sys[16];
        assert_int_equal(inet_pton(AF_INET6, buf, sys), 1);
        assert_memory_equal(sys, a.bytes, 16);
    }
    for (int iter = 0; iter < 2000; iter++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        struct pd_addr a;
        pd_addr_from_v4(&a, (uint32_t)x);
        char buf[PD_ADDR_STRLEN], sys[INET_ADDRSTRLEN];
        size_t n = pd_addr_format(&a, buf, sizeof buf);
        assert_non_null(inet_ntop(AF_INET, a.bytes, sys, sizeof sys));
        assert_string_equal(buf, sys);
        struct pd_addr b;
        assert_true(pd_ipv4_parse_strict(buf, n, &b, NULL));
        assert_true(pd_addr_equal(&a, &b));
    }
}

static void test_unmap_equal(void **state)
{
    (void)state;
    struct pd_addr m = v6("::ffff:10.1.2.3"), out;
    assert_true(pd_addr_unmap(&m, &out));
    assert_int_equal(out.family, AF_INET);
    struct pd_addr want = v6("10.1.2.3");
    assert_true(pd_addr_equal(&out, &want));
    struct pd_addr p = v6("2001:db8::1");
    assert_false(pd_addr_unmap(&p, &out));
    assert_true(pd_addr_equal(&out, &p));
    assert_false(pd_addr_unmap(&want, &out));
    assert_true(pd_addr_equal(&out, &want));
    assert_false(pd_addr_equal(&m, &want));
}

/* ---- Classification ------------------------------------------------------------------------ */

#define LO PD_ADDR_LOOPBACK
#define PRIV PD_ADDR_PRIVATE
#define SH PD_ADDR_SHARED
#define LL PD_ADDR_LINK_LOCAL
#define MD PD_ADDR_METADATA
#define MC PD_ADDR_MULTICAST
#define BC PD_ADDR_BROADCAST
#define UN PD_ADDR_UNSPECIFIED
#define RES PD_ADDR_RESERVED
#define PUB PD_ADDR_PUBLIC
#define EMB PD_ADDR_EMBEDS_IPV4

static void test_classify_v4_boundaries(void **state)
{
    (void)state;
    expect_class("0.0.0.0", UN);
    expect_class("0.255.255.255", UN);
    expect_class("1.0.0.0", PUB);
    expect_class("9.255.255.255", PUB);
    expect_class("10.0.0.0", PRIV);
    expect_class("10.255.255.255", PRIV);
    expect_class("11.0.0.0", PUB);
    expect_class("100.63.255.255", PUB);
    expect_class("100.64.0.0", SH);
    expect_class("100.127.255.255", SH);
    expect_class("100.128.0.0", PUB);
    expect_class("126.255.255.255", PUB);
    expect_class("127.0.0.0", LO);
    expect_class("127.0.0.1", LO);
    expect_class("127.255.255.255", LO);
    expect_class("128.0.0.0", PUB);
    expect_class("169.253.255.255", PUB);
    expect_class("169.254.0.0", LL);
    expect_class("169.254.255.255", LL);
    expect_class("169.255.0.0", PUB);
    expect_class("172.15.255.255", PUB);
    expect_class("172.16.0.0", PRIV);
    expect_class("172.31.255.255", PRIV);
    expect_class("172.32.0.0", PUB);
    expect_class("191.255.255.255", PUB);
    expect_class("192.0.0.0", RES);
    expect_class("192.0.0.255", RES);
    expect_class("192.0.1.0", PUB);
    expect_class("192.0.2.0", RES);
    expect_class("192.0.2.255", RES);
    expect_class("192.0.3.0", PUB);
    expect_class("192.88.99.1", RES);
    expect_class("192.167.255.255", PUB);
    expect_class("192.168.0.0", PRIV);
    expect_class("192.168.255.255", PRIV);
    expect_class("192.169.0.0", PUB);
    expect_class("198.17.255.255", PUB);
    expect_class("198.18.0.0", RES);
    expect_class("198.19.255.255", RES);
    expect_class("198.20.0.0", PUB);
    expect_class("198.51.99.255", PUB);
    expect_class("198.51.100.0", RES);
    expect_class("198.51.100.255", RES);
    expect_class("198.51.101.0", PUB);
    expect_class("203.0.112.255", PUB);
    expect_class("203.0.113.0", RES);
    expect_class("203.0.113.255", RES);
    expect_class("203.0.114.0", PUB);
    expect_class("223.255.255.255", PUB);
    expect_class("224.0.0.0", MC);
    expect_class("239.255.255.255", MC);
    expect_class("240.0.0.0", RES);
    expect_class("255.255.255.254", RES);
    expect_class("255.255.255.255", BC | RES);
    expect_class("8.8.8.8", PUB);
    expect_class("1.1.1.1", PUB);
}

static void test_classify_metadata(void **state)
{
    (void)state;
    expect_class("169.254.169.254", LL | MD);
    expect_class("169.254.170.2", LL | MD);
    expect_class("169.254.169.123", LL | MD);
    expect_class("169.254.170.23", LL | MD);
    expect_class("100.100.100.200", SH | MD);
    expect_class("168.63.129.16", MD);
    expect_class("168.63.129.15", PUB);
    expect_class("168.63.129.17", PUB);
    expect_class("192.0.0.192", RES | MD);
    expect_class("fd00:ec2::254", PRIV | MD);
    expect_class("fd00:ec2::23", PRIV | MD);
    expect_class("fd00:ec2::123", PRIV | MD);
    expect_class("fd20:ce::254", PRIV | MD);
    expect_class("fd00:ec2::255", PRIV);
    /* every spelling of the AWS endpoint is the same address */
    expect_class("0xa9fea9fe", LL | MD);
    expect_class("169.254.43518", LL | MD);
    expect_class("0251.0376.0251.0376", LL | MD);
}

static void test_classify_v6(void **state)
{
    (void)state;
    expect_class("::", UN);
    expect_class("::1", LO);
    expect_class("::2", UN | EMB); /* IPv4-compatible 0.0.0.2 */
    expect_class("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RES);
    expect_class("fc00::", PRIV);
    expect_class("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PRIV);
    expect_class("fe00::", RES);
    expect_class("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RES);
    expect_class("fe80::", LL);
    expect_class("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", LL);
    expect_class("fec0::", RES);
    expect_class("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RES);
    expect_class("ff00::", MC);
    expect_class("ff02::1", MC);
    expect_class("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", PUB);
    expect_class("2001:db8::", RES);
    expect_class("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", RES);
    expect_class("2001:db9::", PUB);
    expect_class("100::", RES);
    expect_class("100::ffff:ffff:ffff:ffff", RES);
    expect_class("100:0:0:1::", RES);
    expect_class("2001:2::", RES);
    expect_class("2001:2:0:ffff:ffff:ffff:ffff:ffff", RES);
    expect_class("2001:2:1::", PUB);
    expect_class("2001:10::1", RES);
    expect_class("3ffe:ffff::1", PUB);
    expect_class("3fff::", RES);
    expect_class("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", RES);
    expect_class("3fff:1000::", PUB);
    expect_class("2606:4700::1111", PUB);
    expect_class("2a00:1450:4001::1", PUB);
    expect_class("4000::1", RES);
    expect_class("1::", RES);
    expect_class("::1:0:0:0", RES);
    expect_class("64:ff9b:0:0:1::", RES);
}

static void test_classify_embedded(void **state)
{
    (void)state;
    /* 127.0.0.1 through every embedding form is loopback */
    expect_class("::ffff:127.0.0.1", LO | EMB);
    expect_class("::ffff:7f00:1", LO | EMB);
    expect_class("::127.0.0.1", LO | EMB);
    expect_class("::ffff:0:127.0.0.1", LO | EMB);
    expect_class("64:ff9b::127.0.0.1", LO | EMB);
    expect_class("64:ff9b:1::7f00:1", LO | EMB);
    expect_class("64:ff9b:1:7f00:0:100::", UN | RES | EMB);        /* RFC 6052 /48 layout: not /96 */
    expect_class("64:ff9b:1:7f00:0:100:808:808", RES | EMB);      /* ... even with a public tail */
    expect_class("64:ff9b:1::8.8.8.8", PUB | EMB);
    expect_class("2002:7f00:1::", LO | EMB);
    expect_class("2001:0:4136:e378:8000:63bf:80ff:fffe", LO | EMB); /* Teredo client */
    expect_class("2001:0:7f00:1::", LO | BC | RES | EMB);          /* Teredo server; client ~0 */
    expect_class("2600::5efe:127.0.0.1", LO | EMB);                 /* ISATAP */
    expect_class("fe80::200:5efe:127.0.0.1", LL | LO | EMB);
    /* 169.254.169.254 through every form is metadata */
    expect_class("::ffff:169.254.169.254", LL | MD | EMB);
    expect_class("::169.254.169.254", LL | MD | EMB);
    expect_class("::ffff:0:a9fe:a9fe", LL | MD | EMB);
    expect_class("64:ff9b::169.254.169.254", LL | MD | EMB);
    expect_class("64:ff9b:1::a9fe:a9fe", LL | MD | EMB);
    expect_class("2002:a9fe:a9fe::1", LL | MD | EMB);
    expect_class("2001:0:4136:e378:8000:63bf:5601:5601", LL | MD | EMB);
    expect_class("2001:0:a9fe:a9fe::ffff:ffff", LL | MD | UN | EMB);
    expect_class("2600::200:5efe:a9fe:a9fe", LL | MD | EMB);
    /* other classes travel too */
    expect_class("::ffff:10.0.0.1", PRIV | EMB);
    expect_class("64:ff9b::192.168.0.1", PRIV | EMB);
    expect_class("2002:6464:64c8::", SH | MD | EMB);
    /* public IPv4 inside public forms stays public */
    expect_class("::ffff:8.8.8.8", PUB | EMB);
    expect_class("64:ff9b::8.8.8.8", PUB | EMB);
    expect_class("2002:808:808::1", PUB | EMB);

    struct pd_addr a = v6("::ffff:8.8.8.8");
    assert_true(pd_addr_is_public(&a));
}

static void test_embedded_accessor(void **state)
{
    (void)state;
    struct pd_embedded e[PD_EMBED_MAX];
    /* RFC 4380 section 4 example: server 65.54.227.120, client 192.0.2.45 */
    struct pd_addr t = v6("2001:0000:4136:e378:8000:63bf:3fff:fdd2");
    assert_int_equal(pd_addr_embedded(&t, e), 2);
    assert_int_equal(e[0].kind, PD_EMBED_TEREDO_SERVER);
    assert_int_equal(e[1].kind, PD_EMBED_TEREDO_CLIENT);
    struct pd_addr s = v6("65.54.227.120"), c = v6("192.0.2.45");
    assert_true(pd_addr_equal(&e[0].v4, &s));
    assert_true(pd_addr_equal(&e[1].v4, &c));
    assert_string_equal(pd_embed_kind_name(e[1].kind), "teredo-client");

    struct {
        const char *in;
        enum pd_embed_kind kind;
        const char *v4;
    } cases[] = {
        {"::ffff:1.2.3.4", PD_EMBED_MAPPED, "1.2.3.4"},
        {"::1.2.3.4", PD_EMBED_COMPAT, "1.2.3.4"},
        {"::ffff:0:1.2.3.4", PD_EMBED_TRANSLATED, "1.2.3.4"},
        {"64:ff9b::1.2.3.4", PD_EMBED_NAT64, "1.2.3.4"},
        {"64:ff9b:1::1.2.3.4", PD_EMBED_NAT64_LOCAL, "1.2.3.4"},
        {"2002:102:304::", PD_EMBED_6TO4, "1.2.3.4"},
        {"2001:db8::5efe:1.2.3.4", PD_EMBED_ISATAP, "1.2.3.4"},
        {"2001:db8::200:5efe:1.2.3.4", PD_EMBED_ISATAP, "1.2.3.4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pd_addr a = v6(cases[i].in), v4, want = v6(cases[i].v4);
        enum pd_embed_kind k = PD_EMBED_NONE;
        if (!pd_addr_embedded_ipv4(&a, &v4, &k))
            fail_msg("'%s' should embed %s", cases[i].in, cases[i].v4);
        assert_int_equal(k, cases[i].kind);
        assert_true(pd_addr_equal(&v4, &want));
    }
    const char *none[] = {"::", "::1", "2001:db8::1", "8.8.8.8", "fe80::1", "2001:db8::400:5efe:1.2.3.4"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        struct pd_addr a = v6(none[i]), v4;
        if (pd_addr_embedded_ipv4(&a, &v4, NULL))
            fail_msg("'%s' should embed nothing", none[i]);
        assert_int_equal(pd_addr_embedded(&a, e), 0);
    }
    /* RFC 6052 /48 layout inside 64:ff9b:1::/48 (169.254.169.254 in bits 48..87) is not public */
    struct pd_addr l = v6("64:ff9b:1:a9fe:a9:fe00:808:808");
    assert_int_equal(pd_addr_embedded(&l, e), 1);
    assert_true(pd_addr_classify(&l) & RES);
    assert_false(pd_addr_is_public(&l));
}

static void test_class_names(void **state)
{
    (void)state;
    assert_string_equal(pd_addr_class_name(LO), "loopback");
    assert_string_equal(pd_addr_class_name(PRIV), "private");
    assert_string_equal(pd_addr_class_name(SH), "shared");
    assert_string_equal(pd_addr_class_name(LL), "link-local");
    assert_string_equal(pd_addr_class_name(MD), "metadata");
    assert_string_equal(pd_addr_class_name(MC), "multicast");
    assert_string_equal(pd_addr_class_name(BC), "broadcast");
    assert_string_equal(pd_addr_class_name(UN), "unspecified");
    assert_string_equal(pd_addr_class_name(RES), "reserved");
    assert_string_equal(pd_addr_class_name(PUB), "public");
    assert_string_equal(pd_addr_class_name(EMB), "embeds-ipv4");
    assert_string_equal(pd_addr_class_name(LO | PRIV), "unknown");
    assert_string_equal(pd_addr_class_name(0), "unknown");
    char buf[128];
    assert_int_equal(pd_addr_classes_format(LL | MD | EMB, buf, sizeof buf), strlen("link-local,metadata,embeds-ipv4"));
    assert_string_equal(buf, "link-local,metadata,embeds-ipv4");
    assert_int_equal(pd_addr_classes_format(0, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    char small[6];
    pd_addr_classes_format(LO | PRIV, small, sizeof small);
    assert_string_equal(small, "loopb");
    struct pd_addr bad = {.family = 0};
    assert_int_equal(pd_addr_classify(&bad), 0);
    assert_false(pd_addr_is_public(&bad));
}

/* ---- CIDR -------------------------------------------------------------------------------- */

static struct pd_cidr cidr(const char *s)
{
    struct pd_cidr c;
    struct pd_err err = {{0}};
    if (!pd_cidr_parse(s, strlen(s), &c, &err))
        fail_msg("CIDR '%s' should parse: %s", s, err.msg);
    return c;
}

static void expect_in(const char *c, const char *a, bool want)
{
    struct pd_cidr cc = cidr(c);
    struct pd_addr aa = v6(a);
    if (pd_cidr_contains(&cc, &aa) != want)
        fail_msg("contains(%s, %s) should be %s", c, a, want ? "true" : "false");
}

static void test_cidr_contains(void **state)
{
    (void)state;
    expect_in("10.0.0.0/8", "10.0.0.0", true);
    expect_in("10.0.0.0/8", "10.255.255.255", true);
    expect_in("10.0.0.0/8", "11.0.0.0", false);
    expect_in("10.0.0.0/8", "9.255.255.255", false);
    expect_in("172.16.0.0/12", "172.31.255.255", true);
    expect_in("172.16.0.0/12", "172.32.0.0", false);
    expect_in("172.16.0.0/12", "172.15.255.255", false);
    expect_in("192.168.1.0/24", "192.168.1.77", true);
    expect_in("192.168.1.0/24", "192.168.2.1", false);
    expect_in("0.0.0.0/0", "255.255.255.255", true);
    expect_in("0.0.0.0/0", "::ffff:1.2.3.4", true);
    expect_in("0.0.0.0/0", "2001:db8::1", false);
    expect_in("::/0", "2001:db8::1", true);
    expect_in("::/0", "1.2.3.4", false); /* no IPv4 through an IPv6 block */
    expect_in("2001:db8::/32", "2001:db8:ffff::1", true);
    expect_in("2001:db8::/32", "2001:db9::", false);
    expect_in("2001:db8::/33", "2001:db8:7fff::", true);
    expect_in("2001:db8::/33", "2001:db8:8000::", false);
    expect_in("10.0.0.1", "10.0.0.1", true);
    expect_in("10.0.0.1", "10.0.0.2", false);
    expect_in("::1", "::1", true);
    expect_in("::1", "::2", false);
    expect_in("169.254.0.0/16", "::ffff:169.254.169.254", true);
    expect_in("169.254.169.254/32", "::ffff:a9fe:a9fe", true);
    expect_in("127.0.0.0/8", "0x7f.1", true);
    expect_in("::ffff:0:0/96", "::ffff:1.2.3.4", true);
    expect_in("::ffff:0:0/96", "1.2.3.4", false);
    expect_in("[2001:db8::]/32", "2001:db8::1", true);

    struct pd_cidr c = cidr("10.0.0.1");
    assert_int_equal(c.prefix, 32);
    c = cidr("::1");
    assert_int_equal(c.prefix, 128);
    c = cidr("0.0.0.0/0");
    assert_int_equal(c.prefix, 0);
    assert_false(pd_cidr_contains(&c, NULL));
    struct pd_addr bad = {.family = 0};
    assert_false(pd_cidr_contains(&c, &bad));
}

static void test_cidr_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/08",
                         "10.0.0.0/8/8", "10/8", "010.0.0.0/8", "10.0.0.0/ 8", "10.0.0.0/1a", "10.0.0.0 /8",
                         "10.0.0.0/1000", "0x0a.0.0.0/8", "example.com/8", "::/", "fe80::%eth0/64"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pd_cidr c;
        struct pd_err err = {{0}};
        if (pd_cidr_parse(bad[i], strlen(bad[i]), &c, &err))
            fail_msg("CIDR '%s' should be refused", bad[i]);
        assert_true(strlen(err.msg) > 0);
    }
    struct pd_cidr c;
    struct pd_err err = {{0}};
    assert_false(pd_cidr_parse(S("10.0.0.1/8"), &c, &err));
    assert_non_null(strstr(err.msg, "10.0.0.0/8"));
    assert_false(pd_cidr_parse(S("172.17.0.0/12"), &c, &err));
    assert_non_null(strstr(err.msg, "172.16.0.0/12"));
    assert_false(pd_cidr_parse(S("2001:db8::1/32"), &c, &err));
    assert_non_null(strstr(err.msg, "2001:db8::/32"));
    assert_false(pd_cidr_parse(S("10.0.0.0/33"), &c, &err));
    assert_non_null(strstr(err.msg, "0..32"));
    assert_false(pd_cidr_parse(S("::/129"), &c, &err));
    assert_non_null(strstr(err.msg, "0..128"));
}

static void test_cidr_format(void **state)
{
    (void)state;
    const char *cases[][2] = {{"10.0.0.0/8", "10.0.0.0/8"},
                              {"2001:DB8:0::/32", "2001:db8::/32"},
                              {"10.0.0.1", "10.0.0.1/32"},
                              {"::ffff:0:0/96", "::ffff:0.0.0.0/96"},
                              {"::/0", "::/0"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pd_cidr c = cidr(cases[i][0]);
        char buf[PD_CIDR_STRLEN];
        size_t n = pd_cidr_format(&c, buf, sizeof buf);
        assert_int_equal(n, strlen(cases[i][1]));
        assert_string_equal(buf, cases[i][1]);
        struct pd_cidr d = cidr(buf);
        assert_true(pd_addr_equal(&c.net, &d.net));
        assert_int_equal(c.prefix, d.prefix);
    }
    struct pd_cidr c = cidr("10.0.0.0/8");
    char small[4];
    assert_int_equal(pd_cidr_format(&c, small, sizeof small), 0);
}

static void test_escape(void **state)
{
    (void)state;
    char buf[PD_NET_ESC_MAX];
    assert_string_equal(pd_net_escape(S("a'b\\c\x01\xff"), PD_NET_ESC_IN, buf, sizeof buf), "a\\'b\\\\c\\x01\\xff");
    char big[200];
    memset(big, 'x', sizeof big);
    pd_net_escape(big, sizeof big, PD_NET_ESC_IN, buf, sizeof buf);
    assert_int_equal(strlen(buf), PD_NET_ESC_IN + 3);
    assert_non_null(strstr(buf, "..."));
    char tiny[6];
    pd_net_escape(S("\x01\x02\x03"), 10, tiny, sizeof tiny);
    assert_true(strlen(tiny) < sizeof tiny);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_spellings),
        cmocka_unit_test(test_ipv4_invalid),
        cmocka_unit_test(test_ipv4_no_overread),
        cmocka_unit_test(test_ipv4_strict),
        cmocka_unit_test(test_ipv4_error_messages),
        cmocka_unit_test(test_ipv6_forms),
        cmocka_unit_test(test_ipv6_invalid),
        cmocka_unit_test(test_ip_parse_dispatch),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_roundtrip_random),
        cmocka_unit_test(test_unmap_equal),
        cmocka_unit_test(test_classify_v4_boundaries),
        cmocka_unit_test(test_classify_metadata),
        cmocka_unit_test(test_classify_v6),
        cmocka_unit_test(test_classify_embedded),
        cmocka_unit_test(test_embedded_accessor),
        cmocka_unit_test(test_class_names),
        cmocka_unit_test(test_cidr_contains),
        cmocka_unit_test(test_cidr_invalid),
        cmocka_unit_test(test_cidr_format),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
