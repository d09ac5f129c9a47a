/* test_domain.c - domain patterns: compile, match table, refusals, specificity, pattern sets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/domain.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static struct pd_domain pat(const char *text)
{
    struct pd_domain p;
    struct pd_err err = {{0}};
    if (!pd_domain_compile(text, strlen(text), &p, &err))
        fail_msg("pattern '%s' should compile: %s", text, err.msg);
    return p;
}

static void expect_refused(const char *text, size_t len, const char *needle)
{
    struct pd_domain p;
    struct pd_err err = {{0}};
    if (pd_domain_compile(text, len, &p, &err))
        fail_msg("pattern '%.*s' should be refused", (int)len, text);
    assert_true(strlen(err.msg) > 0);
    if (needle && !strstr(err.msg, needle))
        fail_msg("error for '%.*s' should mention \"%s\": %s", (int)len, text, needle, err.msg);
    for (const char *q = err.msg; *q; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f)
            fail_msg("error for '%.*s' has a raw byte", (int)len, text);
}

static void test_compile_canonical(void **state)
{
    (void)state;
    struct pd_domain p = pat("EXAMPLE.COM.");
    assert_int_equal(p.kind, PD_DOMAIN_EXACT);
    assert_string_equal(p.name, "example.com");
    assert_int_equal(p.len, 11);
    p = pat("*.Example.COM.");
    assert_int_equal(p.kind, PD_DOMAIN_WILDCARD);
    assert_string_equal(p.name, "example.com");
    p = pat("*.co.uk");
    assert_int_equal(p.kind, PD_DOMAIN_WILDCARD);
    p = pat("localhost");
    assert_int_equal(p.kind, PD_DOMAIN_EXACT);
    p = pat("*.xn--bcher-kva.example");
    assert_string_equal(p.name, "xn--bcher-kva.example");
    p = pat("_acme-challenge.example.com");
    assert_string_equal(p.name, "_acme-challenge.example.com");

    char buf[PD_HOST_MAX + 1];
    const char *texts[] = {"example.com", "*.example.com", "*.a.b.example.com", "a-b.c_d.org"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        p = pat(texts[i]);
        assert_int_equal(pd_domain_format(&p, buf, sizeof buf), strlen(texts[i]));
        assert_string_equal(buf, texts[i]);
        struct pd_domain q = pat(buf);
        assert_true(pd_domain_equal(&p, &q));
    }
    p = pat("*.example.com");
    char small[5];
    assert_int_equal(pd_domain_format(&p, small, sizeof small), 0);
    assert_string_equal(small, "");
}

static void test_refused(void **state)
{
    (void)state;
    expect_refused(S(""), "empty");
    expect_refused(NULL, 0, "empty");
    expect_refused(S("*"), "every host");
    expect_refused(S("*."), "every host");
    expect_refused(S("*.com"), "top-level");
    expect_refused(S("*.COM."), "top-level");
    expect_refused(S("*.localhost"), "top-level");
    expect_refused(S("exa*mple.com"), "leftmost label");
    expect_refused(S("*example.com"), "leftmost label");
    expect_refused(S("example.com*"), "leftmost label");
    expect_refused(S("a.*.com"), "leftmost label");
    expect_refused(S("**.x.com"), "leftmost label");
    expect_refused(S("*.*.x.com"), "only once");
    expect_refused(S("*.x.*"), "only once");
    expect_refused(S("*.."), NULL);
    expect_refused(S("*..com"), "empty");
    expect_refused(S("*.example.com.."), "empty");
    expect_refused(S("."), NULL);
    expect_refused(S("example..com"), "empty");
    expect_refused(S("exa mple.com"), "' '");
    expect_refused(S("b\xc3\xbc"
                     "cher.com"),
                   "xn--");
    expect_refused(S("*.b\xc3\xbc"
                     "cher.com"),
                   "xn--");
    expect_refused(S("-a.com"), "'-'");
    expect_refused(S("*.-a.com"), "'-'");
    expect_refused(S("xn--abc-.com"), NULL);
    expect_refused(S("example.com/"), "'/'");
    expect_refused(S("example.com:443"), NULL);
    expect_refused(S("example.com\n"), "\\x0a");
    /* IP literals in any spelling */
    expect_refused(S("127.0.0.1"), "IP/CIDR rule");
    expect_refused(S("0x7f.1"), "IP/CIDR rule");
    expect_refused(S("2130706433"), "IP/CIDR rule");
    expect_refused(S("0177.0.0.1"), "IP/CIDR rule");
    expect_refused(S("169.254.169.254."), "IP/CIDR rule");
    expect_refused(S("[::1]"), "IP/CIDR rule");
    expect_refused(S("::1"), "IP/CIDR rule");
    expect_refused(S("*.1.2.3.4"), "IP/CIDR rule");
    expect_refused(S("*.0x7f.1"), "IP/CIDR rule");
    expect_refused(S("example.123"), "ends in a number");
    expect_refused(S("*.example.1"), "ends in a number");
    /* a wildcard suffix so long that no host can match */
    char buf[300];
    size_t o = 0;
    buf[o++] = '*';
    buf[o++] = '.';
    for (int i = 0; i < 4; i++) {
        if (i > 0)
            buf[o++] = '.';
        memset(buf + o, 'b', 62);
        o += 62;
    }
    /* suffix = 4*62 + 3 = 251 characters: the limit */
    assert_int_equal(o - 2, 251);
    struct pd_domain p;
    assert_true(pd_domain_compile(buf, o, &p, NULL));
    buf[o++] = 'y'; /* 252 */
    expect_refused(buf, o, "could match");
}

struct mrow {
    const char *pattern;
    const char *host;
    bool match;
};

static void test_match_table(void **state)
{
    (void)state;
    static const struct mrow rows[] = {
        {"example.com", "example.com", true},
        {"example.com", "EXAMPLE.COM.", true},
        {"example.com", "example.com.", true},
        {"example.com", "a.example.com", false},
        {"example.com", "evilexample.com", false},
        {"example.com", "example.com.evil.com", false},
        {"example.com", "xample.com", false},
        {"example.com", "com", false},
        {"example.com", "example.co", false},
        {"example.com", "example.com..", false},
        {"example.com", "", false},
        {"*.example.com", "a.example.com", true},
        {"*.example.com", "a.b.example.com", true},
        {"*.example.com", "A.EXAMPLE.COM.", true},
        {"*.example.com", "x-y.example.com", true},
        {"*.example.com", "example.com", false},
        {"*.example.com", "EXAMPLE.COM.", false},
        {"*.example.com", "evilexample.com", false},
        {"*.example.com", "a.evilexample.com", false},
        {"*.example.com", "example.com.evil.com", false},
        {"*.example.com", "a.example.com.evil.com", false},
        {"*.example.com", "aexample.com", false},
        {"*.example.com", ".example.com", false},
        {"*.example.com", "a..example.com", false},
        {"*.example.com", "com", false},
        {"*.example.com", "", false},
        {"*.a.example.com", "b.a.example.com", true},
        {"*.a.example.com", "a.example.com", false},
        {"*.a.example.com", "b.example.com", false},
        {"api.example.com", "x.api.example.com", false},
        {"api.example.com", "api.example.com", true},
        {"EXAMPLE.COM.", "example.com", true},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct pd_domain p = pat(rows[i].pattern);
        bool got = pd_domain_match(&p, rows[i].host, strlen(rows[i].host));
        if (got != rows[i].match)
            fail_msg("match('%s', '%s') = %d, expected %d", rows[i].pattern, rows[i].host, got, rows[i].match);
    }
    struct pd_domain p = pat("*.example.com");
    /* only `len` bytes of the host are looked at */
    assert_false(pd_domain_match(&p, "a.example.com", 12));
    assert_true(pd_domain_match(&p, "a.example.comX", 13));
    assert_false(pd_domain_match(NULL, "a.example.com", 13));
    assert_false(pd_domain_match(&p, NULL, 0));
}

static void test_specificity(void **state)
{
    (void)state;
    struct pd_domain exact = pat("api.example.com");
    struct pd_domain w3 = pat("*.api.example.com");
    struct pd_domain w2 = pat("*.example.com");
    struct pd_domain w2b = pat("*.co.uk");
    assert_int_equal(pd_domain_specificity(&exact), PD_DOMAIN_SPEC_EXACT);
    assert_int_equal(pd_domain_specificity(&w3), 3);
    assert_int_equal(pd_domain_specificity(&w2), 2);
    assert_int_equal(pd_domain_specificity(&w2b), 2);
    assert_true(pd_domain_specificity(&exact) > pd_domain_specificity(&w3));
    assert_true(pd_domain_specificity(&w3) > pd_domain_specificity(&w2));
    /* the deepest possible wildcard is still below any exact pattern */
    char buf[260];
    size_t o = 0;
    buf[o++] = '*';
    buf[o++] = '.';
    while (o + 2 <= 2 + PD_DOMAIN_SUFFIX_MAX) {
        buf[o++] = 'a';
        buf[o++] = '.';
    }
    buf[o - 1] = 'b';
    struct pd_domain deep;
    assert_true(pd_domain_compile(buf, o, &deep, NULL));
    assert_true(pd_domain_specificity(&deep) < PD_DOMAIN_SPEC_EXACT);
    assert_int_equal(pd_domain_specificity(NULL), 0);
}

/* ---- sets ---------------------------------------------------------------------------------- */

static int d1, d2, d3, d4, d5;

static void expect_lookup(const struct pd_domain_set *s, const char *host, void *want)
{
    void *data = (void *)&data;
    const struct pd_domain *p = pd_domain_set_lookup(s, host, strlen(host), &data);
    if (want == NULL) {
        if (p)
            fail_msg("lookup('%s') should find nothing, found '%s'", host, p->name);
        assert_null(data);
        return;
    }
    if (!p)
        fail_msg("lookup('%s') found nothing", host);
    if (data != want)
        fail_msg("lookup('%s') found the wrong pattern ('%s', kind %d)", host, p->name, p->kind);
    assert_true(pd_domain_match(p, host, strlen(host)));
}

static void test_set_basic(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_domain_set *s = pd_domain_set_new(&err);
    assert_non_null(s);
    expect_lookup(s, "example.com", NULL);
    assert_true(pd_domain_set_add(s, S("example.com"), &d1, &err));
    assert_true(pd_domain_set_add(s, S("*.example.com"), &d2, &err));
    assert_true(pd_domain_set_add(s, S("*.api.example.com"), &d3, &err));
    assert_true(pd_domain_set_add(s, S("API.example.com."), &d4, &err));
    assert_true(pd_domain_set_add(s, S("*.co.uk"), &d5, &err));
    assert_int_equal(pd_domain_set_count(s), 5);

    expect_lookup(s, "example.com", &d1);
    expect_lookup(s, "EXAMPLE.COM.", &d1);
    expect_lookup(s, "www.example.com", &d2);
    expect_lookup(s, "a.b.example.com", &d2);
    expect_lookup(s, "api.example.com", &d4);
    expect_lookup(s, "v1.api.example.com", &d3);
    expect_lookup(s, "a.b.api.example.com", &d3);
    expect_lookup(s, "V1.API.EXAMPLE.COM.", &d3);
    expect_lookup(s, "evilexample.com", NULL);
    expect_lookup(s, "example.com.evil.com", NULL);
    expect_lookup(s, "foo.co.uk", &d5);
    expect_lookup(s, "co.uk", NULL);
    expect_lookup(s, "uk", NULL);
    expect_lookup(s, "", NULL);
    expect_lookup(s, ".", NULL);
    expect_lookup(s, ".example.com", NULL);
    expect_lookup(s, "a..example.com", NULL);

    /* duplicates are refused, naming both spellings; the set is unchanged */
    assert_false(pd_domain_set_add(s, S("*.EXAMPLE.com."), &d5, &err));
    assert_non_null(strstr(err.msg, "'*.EXAMPLE.com.'"));
    assert_non_null(strstr(err.msg, "'*.example.com'"));
    assert_false(pd_domain_set_add(s, S("Example.Com"), &d5, &err));
    assert_non_null(strstr(err.msg, "'Example.Com'"));
    assert_non_null(strstr(err.msg, "'example.com'"));
    assert_false(pd_domain_set_add(s, S("api.example.com"), &d5, &err));
    assert_non_null(strstr(err.msg, "'API.example.com.'"));
    /* invalid patterns are refused with the compile reason */
    assert_false(pd_domain_set_add(s, S("*.com"), &d5, &err));
    assert_non_null(strstr(err.msg, "top-level"));
    assert_false(pd_domain_set_add(s, S("10.0.0.1"), &d5, &err));
    assert_non_null(strstr(err.msg, "IP/CIDR"));
    assert_int_equal(pd_domain_set_count(s), 5);
    expect_lookup(s, "www.example.com", &d2);

    /* a NULL data pointer is a valid payload */
    assert_true(pd_domain_set_add(s, S("nodata.org"), NULL, &err));
    void *data = &data;
    assert_non_null(pd_domain_set_lookup(s, S("nodata.org"), &data));
    assert_null(data);
    assert_null(pd_domain_set_lookup(NULL, S("nodata.org"), &data));
    assert_false(pd_domain_set_add(NULL, S("x.org"), NULL, &err));
    pd_domain_set_free(s);
    pd_domain_set_free(NULL);
}

/* Many patterns (growth) and random hosts: the set agrees with a linear scan over the patterns. */
static void test_set_matches_linear_scan(void **state)
{
    (void)state;
    enum { NPAT = 3000 };
    struct pd_domain *pats = calloc(NPAT, sizeof *pats);
    int *tags = calloc(NPAT, sizeof *tags);
    assert_non_null(pats);
    assert_non_null(tags);
    struct pd_domain_set *s = pd_domain_set_new(NULL);
    assert_non_null(s);
    static const char *labels[] = {"a", "b", "c", "api", "www", "x-y", "_t"};
    uint64_t x = 12345;
    size_t np = 0;
    for (int i = 0; np < NPAT && i < NPAT * 4; i++) {
        char text[128];
        size_t o = 0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bool wild = x & 1;
        int depth = 1 + (int)((x >> 3) % 4);
        if (wild)
            o += (size_t)snprintf(text + o, sizeof text - o, "*.");
        for (int d = 0; d < depth; d++)
            o += (size_t)snprintf(text + o, sizeof text - o, "%s%u.", labels[(x >> (8 + 3 * d)) % 7],
                                  (unsigned)((x >> 40) % 3));
        o += (size_t)snprintf(text + o, sizeof text - o, "example.org");
        tags[np] = (int)np;
        struct pd_err err = {{0}};
        if (!pd_domain_set_add(s, text, o, &tags[np], &err)) {
            assert_non_null(strstr(err.msg, "duplicates"));
            continue;
        }
        pats[np] = pat(text);
        np++;
    }
    assert_int_equal(pd_domain_set_count(s), np);
    assert_true(np > 500);
    for (int iter = 0; iter < 20000; iter++) {
        char host[128];
        size_t o = 0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int depth = (int)(x % 6);
        for (int d = 0; d < depth; d++)
            o += (size_t)snprintf(host + o, sizeof host - o, "%s%u.", labels[(x >> (8 + 3 * d)) % 7],
                                  (unsigned)((x >> 40) % 3));
        o += (size_t)snprintf(host + o, sizeof host - o, "example.org");
        const struct pd_domain *best = NULL;
        unsigned best_spec = 0;
        for (size_t i = 0; i < np; i++) {
            if (pd_domain_match(&pats[i], host, o) && pd_domain_specificity(&pats[i]) > best_spec) {
                best = &pats[i];
                best_spec = pd_domain_specificity(&pats[i]);
            }
        }
        void *data = NULL;
        const struct pd_domain *got = pd_domain_set_lookup(s, host, o, &data);
        if ((best == NULL) != (got == NULL))
            fail_msg("host '%s': set says %s, scan says %s", host, got ? got->name : "none",
                     best ? best->name : "none");
        if (best) {
            assert_true(pd_domain_equal(best, got));
            assert_int_equal(*(int *)data, (int)(best - pats));
        }
    }
    pd_domain_set_free(s);
    free(pats);
    free(tags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile_canonical),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_specificity),
        cmocka_unit_test(test_set_basic),
        cmocka_unit_test(test_set_matches_linear_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
