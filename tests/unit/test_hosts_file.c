/* test_hosts_file.c - /etc/hosts-format parsing: format rules, exact errors with line numbers,
 * merging, per-family lookup, canonical names, size limits, a 100,000-line load. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net/host.h"
#include "net/hosts_file.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static struct pd_hosts *ok(const char *text, size_t len)
{
    struct pd_err err = {{0}};
    struct pd_hosts *h = pd_hosts_parse(text, len, "t.hosts", &err);
    if (!h)
        fail_msg("'%.*s' should parse: %s", (int)len, text, err.msg);
    return h;
}

static void check_printable(const char *msg)
{
    for (const char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            fail_msg("error has a raw byte 0x%02x: %s", (unsigned char)*p, msg);
}

/* The text must be refused with exactly `want`. */
static void bad(const char *text, size_t len, const char *want)
{
    struct pd_err err = {{0}};
    struct pd_hosts *h = pd_hosts_parse(text, len, "t.hosts", &err);
    if (h)
        fail_msg("'%.*s' should be refused (expected: %s)", (int)len, text, want);
    check_printable(err.msg);
    if (strcmp(err.msg, want) != 0)
        fail_msg("wrong error\n  got:  %s\n  want: %s", err.msg, want);
}

/* Addresses of `name` of `family` as text, joined by ' '. */
static const char *addrs(const struct pd_hosts *h, const char *name, int family, char *buf,
                         size_t cap)
{
    const struct pd_addr *a = (const struct pd_addr *)1;
    size_t n = pd_hosts_lookup(h, name, strlen(name), family, &a);
    buf[0] = '\0';
    if (n == 0) {
        assert_null(a);
        return buf;
    }
    assert_non_null(a);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char t[PD_ADDR_STRLEN];
        pd_addr_format(&a[i], t, sizeof t);
        int w = snprintf(buf + o, cap - o, "%s%s", i ? " " : "", t);
        assert_true(w > 0 && (size_t)w < cap - o);
        o += (size_t)w;
    }
    return buf;
}

#define ADDRS(h, name, fam) addrs((h), (name), (fam), abuf, sizeof abuf)

/* ---- Valid files ---- */

static void test_empty(void **state)
{
    (void)state;
    struct pd_hosts *h = ok("", 0);
    assert_int_equal(pd_hosts_count(h), 0);
    assert_int_equal(pd_hosts_address_count(h), 0);
    assert_int_equal(pd_hosts_lookup(h, S("localhost"), 0, NULL), 0);
    assert_null(pd_hosts_name(h, 0, NULL));
    pd_hosts_free(h);
    h = ok(NULL, 0);
    assert_int_equal(pd_hosts_count(h), 0);
    pd_hosts_free(h);
    h = ok(S("# only a comment\n\n   \t \r\n\t# another\n#"));
    assert_int_equal(pd_hosts_count(h), 0);
    pd_hosts_free(h);
    h = ok(S("\n\n\n"));
    assert_int_equal(pd_hosts_count(h), 0);
    pd_hosts_free(h);
}

static void test_basic_and_family(void **state)
{
    (void)state;
    char abuf[512];
    struct pd_hosts *h = ok(S("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
                              "192.0.2.10\tapi.example.com api # the API\n"));
    assert_int_equal(pd_hosts_count(h), 5);
    assert_int_equal(pd_hosts_address_count(h), 6);
    assert_string_equal(ADDRS(h, "localhost", AF_INET), "127.0.0.1");
    assert_string_equal(ADDRS(h, "localhost", AF_INET6), "::1");
    assert_string_equal(ADDRS(h, "localhost", 0), "127.0.0.1 ::1");
    assert_string_equal(ADDRS(h, "ip6-localhost", AF_INET), "");
    assert_string_equal(ADDRS(h, "ip6-localhost", AF_INET6), "::1");
    assert_string_equal(ADDRS(h, "ip6-loopback", 0), "::1");
    assert_string_equal(ADDRS(h, "api.example.com", AF_INET), "192.0.2.10");
    assert_string_equal(ADDRS(h, "api", AF_INET6), "");
    assert_string_equal(ADDRS(h, "api", 0), "192.0.2.10");
    assert_string_equal(ADDRS(h, "nope", 0), "");
    assert_string_equal(ADDRS(h, "example.com", 0), "");
    /* names in order of first appearance */
    const char *want[] = {"localhost", "ip6-localhost", "ip6-loopback", "api.example.com", "api"};
    for (size_t i = 0; i < 5; i++) {
        size_t n = 0;
        const char *s = pd_hosts_name(h, i, &n);
        assert_non_null(s);
        assert_string_equal(s, want[i]);
        assert_int_equal(n, strlen(want[i]));
    }
    assert_null(pd_hosts_name(h, 5, NULL));
    /* a family other than 0, AF_INET, AF_INET6 finds nothing; bad arguments are harmless */
    const struct pd_addr *a = (const struct pd_addr *)1;
    assert_int_equal(pd_hosts_lookup(h, S("localhost"), AF_UNIX, &a), 0);
    assert_null(a);
    assert_int_equal(pd_hosts_lookup(h, S("localhost"), 0, NULL), 2);
    assert_int_equal(pd_hosts_lookup(h, "localhost", 0, 0, &a), 0);
    assert_int_equal(pd_hosts_lookup(h, NULL, 5, 0, &a), 0);
    assert_int_equal(pd_hosts_lookup(NULL, S("localhost"), 0, &a), 0);
    assert_int_equal(pd_hosts_count(NULL), 0);
    /* (pointer, length): the name need not be NUL-terminated */
    assert_int_equal(pd_hosts_lookup(h, "localhostXYZ", 9, AF_INET, &a), 1);
    assert_int_equal(pd_hosts_lookup(h, "localhos", 8, AF_INET, &a), 0);
    pd_hosts_free(h);
    pd_hosts_free(NULL);
}

static void test_merge_and_order(void **state)
{
    (void)state;
    char abuf[512];
    struct pd_hosts *h = ok(S("10.0.0.2 a\n"
                              "2001:db8::1 a\n"
                              "10.0.0.1 a b\n"
                              "2001:DB8:0:0:0:0:0:2 a\n"
                              "10.0.0.2 a b a\n" /* duplicates, also on one line */
                              "2001:db8::0:1 A.\n" /* same address, another spelling */
                              "::ffff:10.0.0.1 a\n")); /* mapped stays IPv6 */
    assert_int_equal(pd_hosts_count(h), 2);
    assert_string_equal(ADDRS(h, "a", AF_INET), "10.0.0.2 10.0.0.1");
    assert_string_equal(ADDRS(h, "a", AF_INET6), "2001:db8::1 2001:db8::2 ::ffff:10.0.0.1");
    assert_string_equal(ADDRS(h, "a", 0),
                        "10.0.0.2 10.0.0.1 2001:db8::1 2001:db8::2 ::ffff:10.0.0.1");
    assert_string_equal(ADDRS(h, "b", 0), "10.0.0.1 10.0.0.2");
    assert_int_equal(pd_hosts_address_count(h), 7);
    pd_hosts_free(h);
}

static void test_case_and_trailing_dot(void **state)
{
    (void)state;
    char abuf[512];
    struct pd_hosts *h = ok(S("1.2.3.4 Example.COM. WWW.example.com\n5.6.7.8 example.com\n"
                              "5.6.7.9 xn--bcher-kva.example _dmarc.Example.com\n"));
    assert_int_equal(pd_hosts_count(h), 4);
    assert_string_equal(pd_hosts_name(h, 0, NULL), "example.com");
    assert_string_equal(pd_hosts_name(h, 1, NULL), "www.example.com");
    assert_string_equal(pd_hosts_name(h, 2, NULL), "xn--bcher-kva.example");
    assert_string_equal(pd_hosts_name(h, 3, NULL), "_dmarc.example.com");
    assert_string_equal(ADDRS(h, "example.com", AF_INET), "1.2.3.4 5.6.7.8");
    assert_string_equal(ADDRS(h, "www.example.com", AF_INET), "1.2.3.4");
    /* lookup takes the canonical form only */
    assert_string_equal(ADDRS(h, "Example.COM", 0), "");
    assert_string_equal(ADDRS(h, "example.com.", 0), "");
    pd_hosts_free(h);
}

static void test_comments_and_whitespace(void **state)
{
    (void)state;
    char abuf[512];
    struct pd_hosts *h = ok(S("# header\n"
                              "1.2.3.4 a # comment 1.2.3.4 x\n"
                              "1.2.3.5 b#c\n"
                              "   # indented comment\n"
                              "\t\n"
                              "  1.2.3.6\tc\t d  \n"
                              "1.2.3.7 e # caf\xc3\xa9, UTF-8 in a comment is fine\n"
                              "1.2.3.8 f")); /* no final newline */
    assert_int_equal(pd_hosts_count(h), 6);
    assert_string_equal(ADDRS(h, "a", 0), "1.2.3.4");
    assert_string_equal(ADDRS(h, "b", 0), "1.2.3.5");
    assert_string_equal(ADDRS(h, "c", 0), "1.2.3.6");
    assert_string_equal(ADDRS(h, "d", 0), "1.2.3.6");
    assert_string_equal(ADDRS(h, "e", 0), "1.2.3.7");
    assert_string_equal(ADDRS(h, "f", 0), "1.2.3.8");
    assert_string_equal(ADDRS(h, "x", 0), "");
    pd_hosts_free(h);
    /* CRLF everywhere */
    h = ok(S("# dos file\r\n\r\n1.2.3.4 a b\r\n::1 a\r\n"));
    assert_int_equal(pd_hosts_count(h), 2);
    assert_string_equal(ADDRS(h, "a", 0), "1.2.3.4 ::1");
    assert_string_equal(ADDRS(h, "b", 0), "1.2.3.4");
    pd_hosts_free(h);
}

/* ---- Errors ---- */

static void test_address_errors(void **state)
{
    (void)state;
    const char *legacy = "(a hosts file is configuration: ambiguous spellings are refused)";
    char want[600];
#define LEGACY(line, in, addr)                                                      \
    snprintf(want, sizeof want,                                                     \
             "t.hosts:%d: field 1 '%s' is a legacy IPv4 spelling of %s; write the " \
             "dotted quad %s %s",                                                   \
             line, in, addr, addr, legacy)
    LEGACY(1, "127.1", "127.0.0.1");
    bad(S("127.1 a\n"), want);
    LEGACY(1, "0x7f.0.0.1", "127.0.0.1");
    bad(S("0x7f.0.0.1 a\n"), want);
    LEGACY(1, "0177.0.0.1", "127.0.0.1");
    bad(S("0177.0.0.1 a\n"), want);
    LEGACY(1, "010.0.0.1", "8.0.0.1");
    bad(S("010.0.0.1 a\n"), want);
    LEGACY(1, "2130706433", "127.0.0.1");
    bad(S("2130706433 a\n"), want);
    LEGACY(1, "1.2.3", "1.2.0.3");
    bad(S("1.2.3 a\n"), want);
    LEGACY(1, "1.2.3.4.", "1.2.3.4");
    bad(S("1.2.3.4. a\n"), want);
    /* line numbers after comments, blank lines and CRLF */
    LEGACY(5, "0x7f.1", "127.0.0.1");
    bad(S("# c\r\n\r\n1.2.3.4 a\r\n   # x\n0x7f.1 b\r\n1.2.3.4 c\n"), want);

    bad(S("fe80::1%eth0 a\n"),
        "t.hosts:1: field 1 'fe80::1%eth0': IPv6 zone ids ('%' and an interface) are not allowed "
        "(expected an address without a zone, e.g. fe80::1)");
    bad(S("1.2.3.4\n[::1] a\n"),
        "t.hosts:1: address 1.2.3.4 has no name (expected at least one host "
        "name after the address)");
    bad(S("1.2.3.4 a\n[::1] a\n"),
        "t.hosts:2: field 1 '[::1]': brackets are not allowed around an address in a hosts file "
        "(expected the bare address, e.g. ::1)");

    /* Field 1 that is not an address: the ip.h reason, wrapped. */
    const char *cases[] = {"1.2.3.256", "example.com", "1:2:3:4:5:6:7:8:9",
                           "::g",       "1.2.3.4.5",   "-"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct pd_err sub = {{0}};
        struct pd_addr a;
        assert_false(pd_ip_parse_strict(cases[i], strlen(cases[i]), &a, &sub));
        snprintf(want, sizeof want, "t.hosts:2: field 1 must be an IPv4 or IPv6 address: %s",
                 sub.msg);
        char text[128];
        int n = snprintf(text, sizeof text, "1.2.3.4 ok\n%s a\n", cases[i]);
        bad(text, (size_t)n, want);
    }
    bad(S("1.2.3.256 a"), "t.hosts:1: field 1 must be an IPv4 or IPv6 address: IPv4 address "
                          "'1.2.3.256': part 4 is out of range (expected 0..255)");
    bad(S("example.com 1.2.3.4"),
        "t.hosts:1: field 1 must be an IPv4 or IPv6 address: IPv4 address "
        "'example.com': character 'e' at offset 0 is not allowed (expected "
        "dotted decimal a.b.c.d)");
#undef LEGACY
}

static void test_name_errors(void **state)
{
    (void)state;
    char want[600];
    struct {
        const char *line;
        unsigned field;
        const char *name;
    } cases[] = {
        {"1.2.3.4 1.2.3.5", 2, "1.2.3.5"}, /* an IP literal is not a name */
        {"1.2.3.4 a 0x7f.1", 3, "0x7f.1"}, /* nor in a legacy spelling */
        {"1.2.3.4 a b ::1", 4, "::1"},
        {"1.2.3.4 ok bad!name", 3, "bad!name"},
        {"1.2.3.4 a..b", 2, "a..b"},
        {"1.2.3.4 caf\xc3\xa9.example", 2, "caf\xc3\xa9.example"},
        {"1.2.3.4 xn--abc-.example", 2, "xn--abc-.example"},
        {"1.2.3.4 -lead.example", 2, "-lead.example"},
        {"1.2.3.4 foo.1", 2, "foo.1"},
        {"1.2.3.4 a\vb", 2, "a\vb"},
        {"1.2.3.4 .", 2, "."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char out[PD_HOST_MAX + 1];
        struct pd_err sub = {{0}};
        assert_false(pd_host_canon_name(cases[i].name, strlen(cases[i].name), out, NULL, &sub));
        snprintf(want, sizeof want, "t.hosts:3: field %u must be a host name: %s", cases[i].field,
                 sub.msg);
        char text[256];
        int n = snprintf(text, sizeof text, "# first\r\n1.2.3.4 fine\r\n%s\r\n5.6.7.8 later\n",
                         cases[i].line);
        bad(text, (size_t)n, want);
    }
    bad(S("1.2.3.4 1.2.3.5"), "t.hosts:1: field 2 must be a host name: host '1.2.3.5' is an IP "
                              "address literal (1.2.3.5), not a name");
    /* 253 characters is the longest name */
    char text[400];
    memcpy(text, "1.2.3.4 ", 8);
    size_t o = 8;
    for (int i = 0; i < 4; i++) {
        memset(text + o, 'b', 62);
        o += 62;
        text[o++] = '.';
    }
    text[o++] = 'a';
    struct pd_hosts *h = ok(text, o);
    assert_int_equal(pd_hosts_count(h), 1);
    size_t nl = 0;
    pd_hosts_name(h, 0, &nl);
    assert_int_equal(nl, 253);
    assert_int_equal(pd_hosts_lookup(h, text + 8, 253, AF_INET, NULL), 1);
    pd_hosts_free(h);
    text[o++] = 'a';
    struct pd_err sub = {{0}};
    assert_false(pd_host_canon_name(text + 8, o - 8, text + 300, NULL, &sub));
    snprintf(want, sizeof want, "t.hosts:1: field 2 must be a host name: %s", sub.msg);
    bad(text, o, want);
}

static void test_line_errors(void **state)
{
    (void)state;
    const char *noname = "has no name (expected at least one host name after the address)";
    char want[600];
    snprintf(want, sizeof want, "t.hosts:1: address 1.2.3.4 %s", noname);
    bad(S("1.2.3.4\n"), want);
    bad(S("1.2.3.4"), want);
    bad(S("  1.2.3.4 \t # a comment, not a name\n"), want);
    bad(S("1.2.3.4#a\n"), want);
    snprintf(want, sizeof want, "t.hosts:3: address 2001:db8::1 %s", noname);
    bad(S("1.2.3.4 a\r\n# c\r\n2001:DB8::1\r\n"), want);

    /* NUL bytes, anywhere (also in a comment), with the line and column */
    bad(S("1.2.3.4 a\n1.2.3.4 b\0c\n"), "t.hosts:2: NUL byte at column 10 (expected a text file)");
    bad(S("# x\0\n"), "t.hosts:1: NUL byte at column 4 (expected a text file)");
    bad(S("1.2.3.4 a\n\0"), "t.hosts:2: NUL byte at column 1 (expected a text file)");

    /* CR only as part of CRLF */
    const char *cr = "is not followed by a line feed (expected LF or CRLF line endings)";
    snprintf(want, sizeof want, "t.hosts:1: carriage return at column 10 %s", cr);
    bad(S("1.2.3.4 a\rb\n"), want);
    bad(S("1.2.3.4 a\r"), want);
    bad(S("1.2.3.4 a\r\r\n"), want);
    snprintf(want, sizeof want, "t.hosts:2: carriage return at column 4 %s", cr);
    bad(S("1.2.3.4 a\r\n# x\ry\r\n"), want);

    /* NULL file name */
    struct pd_err err = {{0}};
    assert_null(pd_hosts_parse(S("1.2.3.4\n"), NULL, &err));
    snprintf(want, sizeof want, "hosts:1: address 1.2.3.4 %s", noname);
    assert_string_equal(err.msg, want);
    assert_null(pd_hosts_parse(S("1.2.3.4\n"), "x", NULL)); /* err may be NULL */
}

static void test_line_length(void **state)
{
    (void)state;
    size_t cap = PD_HOSTS_LINE_MAX + 64;
    char *buf = malloc(cap);
    assert_non_null(buf);
    /* exactly 4096 bytes (comment included), LF, CRLF and at the end of the file */
    const char *ends[] = {"\n", "\r\n", ""};
    for (size_t e = 0; e < 3; e++) {
        memcpy(buf, "1.2.3.4 a #", 11);
        memset(buf + 11, 'x', PD_HOSTS_LINE_MAX - 11);
        size_t n = PD_HOSTS_LINE_MAX;
        memcpy(buf + n, ends[e], strlen(ends[e]));
        n += strlen(ends[e]);
        if (e != 2) {
            memcpy(buf + n, "5.6.7.8 b\n", 10);
            n += 10;
        }
        struct pd_hosts *h = ok(buf, n);
        assert_int_equal(pd_hosts_count(h), e == 2 ? 1 : 2);
        pd_hosts_free(h);
    }
    /* 4097 bytes: refused, on the right line */
    memcpy(buf, "# one\n", 6);
    memcpy(buf + 6, "1.2.3.4 a #", 11);
    memset(buf + 17, 'x', PD_HOSTS_LINE_MAX + 1 - 11);
    size_t n = 6 + PD_HOSTS_LINE_MAX + 1;
    memcpy(buf + n, "\r\n", 2);
    bad(buf, n + 2, "t.hosts:2: line is 4097 bytes long, more than the 4096 allowed");
    bad(buf, n, "t.hosts:2: line is 4097 bytes long, more than the 4096 allowed");
    free(buf);
}

static void test_size_limit_and_load(void **state)
{
    (void)state;
    /* parse refuses more than 16 MiB */
    size_t big = (size_t)PD_HOSTS_MAX_BYTES + 1;
    char *buf = calloc(big, 1);
    assert_non_null(buf);
    memset(buf, '\n', big);
    struct pd_err err = {{0}};
    assert_null(pd_hosts_parse(buf, big, "big", &err));
    assert_string_equal(err.msg,
                        "big: file is too large (16777217 bytes; the limit is 16777216 bytes)");
    /* exactly 16 MiB of blank lines is fine */
    struct pd_hosts *h = pd_hosts_parse(buf, big - 1, "big", &err);
    assert_non_null(h);
    assert_int_equal(pd_hosts_count(h), 0);
    pd_hosts_free(h);
    free(buf);

    char dir[] = "/tmp/pd_hosts_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/hosts", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("# test\n127.0.0.1 localhost\n::1 localhost\n", f);
    fclose(f);
    h = pd_hosts_load(path, &err);
    if (!h)
        fail_msg("%s", err.msg);
    assert_int_equal(pd_hosts_lookup(h, S("localhost"), 0, NULL), 2);
    pd_hosts_free(h);
    /* errors carry the path */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("127.0.0.1 localhost\n127.1 x\n", f);
    fclose(f);
    assert_null(pd_hosts_load(path, &err));
    char want[400];
    snprintf(want, sizeof want, "%s:2: field 1 '127.1' is a legacy IPv4 spelling of 127.0.0.1;",
             path);
    assert_memory_equal(err.msg, want, strlen(want));
    /* too large (sparse file) */
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)PD_HOSTS_MAX_BYTES + 1), 0);
    close(fd);
    assert_null(pd_hosts_load(path, &err));
    snprintf(want, sizeof want,
             "%s: file is too large (16777217 bytes; the limit is 16777216 bytes)", path);
    assert_string_equal(err.msg, want);
    unlink(path);
    /* missing file, directory, FIFO (not opened for reading: no hang), no name */
    assert_null(pd_hosts_load(path, &err));
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    assert_string_equal(err.msg, want);
    assert_null(pd_hosts_load(dir, &err));
    snprintf(want, sizeof want, "%s: not a regular file (a directory)", dir);
    assert_string_equal(err.msg, want);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_null(pd_hosts_load(path, &err));
    snprintf(want, sizeof want, "%s: not a regular file (a FIFO)", path);
    assert_string_equal(err.msg, want);
    unlink(path);
    assert_null(pd_hosts_load("", &err));
    assert_string_equal(err.msg, "hosts file: no file name given");
    assert_null(pd_hosts_load(NULL, &err));
    rmdir(dir);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_100k_lines(void **state)
{
    (void)state;
    enum { N = 100000 };
    size_t cap = (size_t)N * 64;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t o = 0;
    for (unsigned i = 0; i < N; i++) {
        int w;
        if (i % 10 == 9) /* every tenth line IPv6, with two names */
            w = snprintf(text + o, cap - o,
                         "2001:db8::%x:%x h%06u.bench.test H%06u-ALIAS.bench.test.\n", i >> 16,
                         i & 0xffff, i, i);
        else
            w = snprintf(text + o, cap - o, "127.%u.%u.%u h%06u.bench.test\n", (i >> 16) & 255,
                         (i >> 8) & 255, i & 255, i);
        assert_true(w > 0 && (size_t)w < cap - o);
        o += (size_t)w;
    }
    double t0 = now_s();
    struct pd_err err = {{0}};
    struct pd_hosts *h = pd_hosts_parse(text, o, "bench.hosts", &err);
    double t1 = now_s();
    if (!h)
        fail_msg("%s", err.msg);
    assert_int_equal(pd_hosts_count(h), N + N / 10);
    assert_int_equal(pd_hosts_address_count(h), N + N / 10);

    /* every name is found, with the right address */
    char name[64];
    enum { NL = 18 }; /* strlen("h000000.bench.test"); stored without NULs, lookup takes a length */
    char *names = malloc((size_t)N * NL);
    assert_non_null(names);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(snprintf(name, sizeof name, "h%06u.bench.test", i), NL);
        memcpy(names + (size_t)i * NL, name, NL);
    }
    size_t found = 0;
    double t2 = now_s();
    for (int round = 0; round < 10; round++) {
        for (unsigned i = 0; i < N; i++) {
            const struct pd_addr *a = NULL;
            size_t n = pd_hosts_lookup(h, names + (size_t)i * NL, NL,
                                       i % 10 == 9 ? AF_INET6 : AF_INET, &a);
            if (n != 1)
                fail_msg("%.*s: %zu addresses", (int)NL, names + (size_t)i * NL, n);
            found++;
            if (i % 10 != 9 && (a->bytes[1] != ((i >> 16) & 255) ||
                                a->bytes[2] != ((i >> 8) & 255) || a->bytes[3] != (i & 255)))
                fail_msg("%.*s: wrong address", (int)NL, names + (size_t)i * NL);
        }
    }
    double t3 = now_s();
    for (unsigned i = 9; i < N; i += 10) {
        int nl = snprintf(name, sizeof name, "h%06u-alias.bench.test", i);
        assert_int_equal(pd_hosts_lookup(h, name, (size_t)nl, AF_INET6, NULL), 1);
        assert_int_equal(pd_hosts_lookup(h, name, (size_t)nl, AF_INET, NULL), 0);
    }
    assert_int_equal(pd_hosts_lookup(h, S("h100000.bench.test"), 0, NULL), 0);
    /* the same file through pd_hosts_load */
    char path[] = "/tmp/pd_hosts_big_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, o), (ssize_t)o);
    close(fd);
    double t4 = now_s();
    struct pd_hosts *h2 = pd_hosts_load(path, &err);
    double t5 = now_s();
    unlink(path);
    if (!h2)
        fail_msg("%s", err.msg);
    assert_int_equal(pd_hosts_count(h2), N + N / 10);
    pd_hosts_free(h2);
    print_message("100,000 lines (%zu bytes, %zu names): parse %.1f ms, load from file %.1f ms, "
                  "lookup %.0f ns each (%zu lookups)\n",
                  o, pd_hosts_count(h), (t1 - t0) * 1e3, (t5 - t4) * 1e3,
                  (t3 - t2) * 1e9 / (double)found, found);
    pd_hosts_free(h);
    free(names);
    free(text);
}

/* One name with many distinct addresses, each listed twice: merging must not be quadratic. */
static void test_many_addresses_one_name(void **state)
{
    (void)state;
    enum { N = 60000 };
    size_t cap = (size_t)N * 2 * 32;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t o = 0;
    for (int rep = 0; rep < 2; rep++)
        for (unsigned i = 0; i < N; i++) {
            int w = snprintf(text + o, cap - o, "10.%u.%u.%u same\n", (i >> 16) & 255,
                             (i >> 8) & 255, i & 255);
            o += (size_t)w;
        }
    double t0 = now_s();
    struct pd_hosts *h = ok(text, o);
    double t1 = now_s();
    const struct pd_addr *a = NULL;
    assert_int_equal(pd_hosts_lookup(h, S("same"), AF_INET, &a), N);
    for (unsigned i = 0; i < N; i++) /* file order kept */
        assert_true(a[i].bytes[1] == ((i >> 16) & 255) && a[i].bytes[2] == ((i >> 8) & 255) &&
                    a[i].bytes[3] == (i & 255));
    print_message("one name, %d addresses each listed twice: parse %.1f ms\n", N, (t1 - t0) * 1e3);
    pd_hosts_free(h);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_basic_and_family),
        cmocka_unit_test(test_merge_and_order),
        cmocka_unit_test(test_case_and_trailing_dot),
        cmocka_unit_test(test_comments_and_whitespace),
        cmocka_unit_test(test_address_errors),
        cmocka_unit_test(test_name_errors),
        cmocka_unit_test(test_line_errors),
        cmocka_unit_test(test_line_length),
        cmocka_unit_test(test_size_limit_and_load),
        cmocka_unit_test(test_100k_lines),
        cmocka_unit_test(test_many_addresses_one_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
