/* test_dns_guard.c - unit tests for gateway/dns_guard.{h,c}: limits, name and label lengths at
 * their boundaries, the exact-rule exemption, entropy values and the measured table behind the
 * default threshold, reasons (content, truncation, NUL), SipHash-2-4 reference vectors, the burst
 * tracker (limit, repeats, minute reset, independent apexes, eviction and bounded memory) and
 * concurrent notes. Time is always passed in: no sleeping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gateway/dns_guard.h"

static struct pd_dns_guard_limits defaults(void)
{
    struct pd_dns_guard_limits lim;
    pd_dns_guard_limits_default(&lim);
    return lim;
}

/* Check name against lim with the apex being the last apex_len bytes; compare the reason when
 * want_reason is not NULL. */
static bool check(const struct pd_dns_guard_limits *lim, const char *name, size_t apex_len,
                  char *reason, size_t cap)
{
    return pd_dns_guard_check_name(lim, name, strlen(name), apex_len, reason, cap);
}

/* name = label + "." + apex; returns the apex length. */
static size_t under(char *buf, size_t cap, const char *sub, const char *apex)
{
    snprintf(buf, cap, "%s.%s", sub, apex);
    return strlen(apex);
}

static void fill(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
}

static struct pd_dns_guard *mk(size_t max_apexes)
{
    struct pd_err err = {{0}};
    struct pd_dns_guard *g = pd_dns_guard_new(max_apexes, &err);
    if (!g)
        fail_msg("pd_dns_guard_new: %s", err.msg);
    return g;
}

static void near(double got, double want, double eps)
{
    if (!(got - want <= eps && want - got <= eps))
        fail_msg("got %.17g, want %.17g", got, want);
}

/* ---- limits ---- */

static void test_limits(void **state)
{
    (void)state;
    struct pd_dns_guard_limits lim = defaults();
    assert_int_equal(lim.max_name_length, 253);
    assert_int_equal(lim.max_label_length, 40);
    assert_int_equal(lim.entropy_min_length, 12);
    assert_true(lim.max_label_entropy == 4.0);
    assert_int_equal(lim.unique_subdomains_per_minute, 100);
    struct pd_err err = {{0}};
    assert_int_equal(pd_dns_guard_limits_validate(&lim, &err), 0);

    struct pd_dns_guard_limits bad = lim;
    bad.max_name_length = 0;
    assert_int_equal(pd_dns_guard_limits_validate(&bad, &err), -1);
    assert_string_equal(err.msg, "dns.max_name_length must be between 1 and 253, got 0");
    bad = lim;
    bad.max_name_length = 254;
    assert_int_equal(pd_dns_guard_limits_validate(&bad, &err), -1);
    bad = lim;
    bad.max_label_length = 64;
    assert_int_equal(pd_dns_guard_limits_validate(&bad, &err), -1);
    assert_string_equal(err.msg, "dns.max_label_length must be between 1 and 63, got 64");
    bad = lim;
    bad.entropy_min_length = 0;
    assert_int_equal(pd_dns_guard_limits_validate(&bad, &err), -1);
    assert_string_equal(err.msg, "dns.entropy_min_length must be between 1 and 63, got 0");
    bad = lim;
    bad.max_label_entropy = NAN;
    assert_int_equal(pd_dns_guard_limits_validate(&bad, &err), -1);
    bad.max_label_entropy = -0.5;
    assert_int_equal(pd_dns_guard_limits_validate(&bad, &err), -1);
    assert_string_equal(err.msg, "dns.max_label_entropy must be between 0 and 6, got -0.5");
    bad.max_label_entropy = 6.0;
    assert_int_equal(pd_dns_guard_limits_validate(&bad, &err), 0);
    bad.unique_subdomains_per_minute = 100001;
    assert_int_equal(pd_dns_guard_limits_validate(&bad, &err), -1);
    assert_string_equal(
        err.msg, "dns.unique_subdomains_per_minute must be between 0 and 100000, got 100001");
    bad.unique_subdomains_per_minute = 0;
    assert_int_equal(pd_dns_guard_limits_validate(&bad, NULL), 0);
    assert_int_equal(pd_dns_guard_limits_validate(NULL, NULL), -1);

    /* Invalid limits: every name is refused (fail closed). */
    char reason[PD_DNS_GUARD_REASON_MAX];
    bad.max_label_length = 0;
    assert_false(check(&bad, "www.example.com", 11, reason, sizeof reason));
    assert_string_equal(reason, "invalid limits");
    assert_false(check(NULL, "www.example.com", 11, reason, sizeof reason));
}

/* ---- name length ---- */

static void test_name_length(void **state)
{
    (void)state;
    struct pd_dns_guard_limits lim = defaults();
    lim.max_name_length = 100;
    char name[300], reason[PD_DNS_GUARD_REASON_MAX];
    /* 30 'a' . 30 'b' . 25 'c' . example.com = 99 characters, labels within the defaults. */
    char sub[200];
    fill(sub, 'a', 30);
    sub[30] = '.';
    fill(sub + 31, 'b', 30);
    sub[61] = '.';
    fill(sub + 62, 'c', 25);
    size_t apex = under(name, sizeof name, sub, "example.com");
    assert_int_equal(strlen(name), 99);
    assert_true(check(&lim, name, apex, reason, sizeof reason));
    assert_string_equal(reason, "");
    strcat(sub, "c");
    apex = under(name, sizeof name, sub, "example.com");
    assert_int_equal(strlen(name), 100); /* exactly at the limit */
    assert_true(check(&lim, name, apex, reason, sizeof reason));
    strcat(sub, "c");
    apex = under(name, sizeof name, sub, "example.com");
    assert_int_equal(strlen(name), 101); /* one over */
    assert_false(check(&lim, name, apex, reason, sizeof reason));
    assert_string_equal(reason, "name is 101 characters, more than dns.max_name_length (100)");
    /* The name length applies to exact rules too. */
    assert_false(check(&lim, name, strlen(name), reason, sizeof reason));
    assert_string_equal(reason, "name is 101 characters, more than dns.max_name_length (100)");

    /* 253 (the DNS maximum) passes the default; the longest canonical name. */
    lim = defaults();
    char big[260];
    size_t n = 0;
    while (n + 10 <= 253) {
        memcpy(big + n, "abcdefghi.", 10);
        n += 10;
    }
    fill(big + n, 'z', 253 - n);
    assert_int_equal(strlen(big), 253);
    assert_true(check(&lim, big, 3, reason, sizeof reason)); /* apex "zzz" */
    assert_true(check(&lim, big, 253, reason, sizeof reason));
    lim.max_name_length = 252;
    assert_false(check(&lim, big, 253, reason, sizeof reason));
    assert_string_equal(reason, "name is 253 characters, more than dns.max_name_length (252)");
}

/* ---- label length ---- */

static void test_label_length(void **state)
{
    (void)state;
    struct pd_dns_guard_limits lim = defaults();
    char name[300], sub[100], reason[PD_DNS_GUARD_REASON_MAX];
    fill(sub, 'a', 40); /* exactly the default maximum; entropy 0 */
    size_t apex = under(name, sizeof name, sub, "example.com");
    assert_true(check(&lim, name, apex, reason, sizeof reason));
    fill(sub, 'a', 41);
    apex = under(name, sizeof name, sub, "example.com");
    assert_false(check(&lim, name, apex, reason, sizeof reason));
    assert_string_equal(reason, "label 'aaaaaaaaaaaaaaaa...' (41 characters) is longer than "
                                "dns.max_label_length (40)");
    /* A deeper label is checked too; a short one is quoted whole. */
    lim.max_label_length = 3;
    assert_true(check(&lim, "abc.def.example.com", 11, reason, sizeof reason));
    assert_false(check(&lim, "abc.defg.example.com", 11, reason, sizeof reason));
    assert_string_equal(reason,
                        "label 'defg' (4 characters) is longer than dns.max_label_length (3)");
    /* Exactly 16 characters are quoted without "...". */
    lim.max_label_length = 15;
    assert_false(check(&lim, "bbbbbbbbbbbbbbbb.example.com", 11, reason, sizeof reason));
    assert_string_equal(reason, "label 'bbbbbbbbbbbbbbbb' (16 characters) is longer than "
                                "dns.max_label_length (15)");
    /* The apex's own labels are not checked: they are the operator's. */
    const char *long_apex = "a.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.com";
    assert_true(check(&lim, long_apex, strlen(long_apex) - 2, reason, sizeof reason));
}

static void test_exact_and_apex_forms(void **state)
{
    (void)state;
    struct pd_dns_guard_limits lim = defaults();
    lim.max_label_length = 10;
    lim.max_label_entropy = 1.0;
    lim.entropy_min_length = 1;
    char reason[PD_DNS_GUARD_REASON_MAX];
    /* An exact rule: long and high-entropy labels pass (the operator wrote that name). */
    const char *exact = "k7xq2m9vbn4l8p3zw6yt5rj0hc1gfd.example.com";
    assert_true(check(&lim, exact, strlen(exact), reason, sizeof reason));
    assert_string_equal(reason, "");
    /* The same name under *.example.com is refused. */
    assert_false(check(&lim, exact, 11, reason, sizeof reason));
    assert_string_equal(reason, "label 'k7xq2m9vbn4l8p3z...' (30 characters) is longer than "
                                "dns.max_label_length (10)");
    /* apex_len 0: the whole name is the subdomain part (its last label is checked too). */
    lim = defaults();
    lim.max_label_length = 5;
    assert_true(check(&lim, "abc.de", 0, reason, sizeof reason));
    assert_false(check(&lim, "abc.abcdef", 0, reason, sizeof reason));
    assert_string_equal(reason,
                        "label 'abcdef' (6 characters) is longer than dns.max_label_length (5)");
    /* The apex must start at a label boundary and fit in the name. */
    assert_false(check(&lim, "abc.example.com", 10, reason, sizeof reason)); /* "xample.com" */
    assert_string_equal(reason, "apex is not a suffix of the name");
    assert_false(check(&lim, "abc.example.com", 16, reason, sizeof reason));
    assert_string_equal(reason, "apex is not a suffix of the name");
    assert_true(check(&lim, "abc.example.com", 11, reason, sizeof reason));
}

static void test_non_canonical(void **state)
{
    (void)state;
    struct pd_dns_guard_limits lim = defaults();
    char reason[PD_DNS_GUARD_REASON_MAX];
    const char *bad[] = {"",         ".",
                         "a..b",     ".a",
                         "a.",       "WWW.example.com",
                         "a b.com",  "caf\xc3\xa9.com",
                         "x\ny.com", "a'b.com",
                         "a%s.com"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(check(&lim, bad[i], 0, reason, sizeof reason));
        assert_string_equal(reason, "name is not a canonical host name");
    }
    /* A 64-character label, or 254 bytes. */
    char name[300];
    fill(name, 'a', 64);
    assert_false(check(&lim, name, 0, reason, sizeof reason));
    fill(name, 'a', 63);
    assert_true(pd_dns_guard_check_name(&lim, name, 63, 63, reason, sizeof reason));
    assert_false(pd_dns_guard_check_name(&lim, NULL, 0, 0, reason, sizeof reason));
    /* Bytes after name_len are not read: a NUL inside is refused, a prefix is fine. */
    assert_false(pd_dns_guard_check_name(&lim, "ab\0c", 4, 0, reason, sizeof reason));
    assert_true(pd_dns_guard_check_name(&lim, "ab.example.com!!!", 14, 11, reason, sizeof reason));
}

/* ---- entropy ---- */

static void test_entropy_values(void **state)
{
    (void)state;
    assert_true(pd_dns_guard_label_entropy("", 0) == -1.0);
    assert_true(pd_dns_guard_label_entropy(NULL, 3) == -1.0);
    char l[80];
    fill(l, 'a', 64);
    assert_true(pd_dns_guard_label_entropy(l, 64) == -1.0);
    assert_true(pd_dns_guard_label_entropy(l, 63) == 0.0);
    assert_true(pd_dns_guard_label_entropy("a", 1) == 0.0);
    assert_true(pd_dns_guard_label_entropy("ab", 2) == 1.0);
    assert_true(pd_dns_guard_label_entropy("abab", 4) == 1.0);
    assert_true(pd_dns_guard_label_entropy("abcd", 4) == 2.0);
    assert_true(pd_dns_guard_label_entropy("abcdefghijklmnop", 16) == 4.0);
    near(pd_dns_guard_label_entropy("abcdefghijklmnopq", 17), 4.087462841250339, 1e-12);
    /* "aab": -(2/3 log2 2/3 + 1/3 log2 1/3) = 0.918295834054489... */
    near(pd_dns_guard_label_entropy("aab", 3), 0.9182958340544896, 1e-12);
    /* The whole alphabet: 38 characters, all distinct: log2(38). */
    const char *all = "abcdefghijklmnopqrstuvwxyz0123456789-_";
    near(pd_dns_guard_label_entropy(all, strlen(all)), 5.247927513443585, 1e-12);
}

static void test_entropy_boundaries(void **state)
{
    (void)state;
    struct pd_dns_guard_limits lim = defaults();
    char reason[PD_DNS_GUARD_REASON_MAX];
    /* 16 distinct characters: exactly 4.0, the default maximum: passes. 17: 4.09, refused. */
    assert_true(check(&lim, "abcdefghijklmnop.example.com", 11, reason, sizeof reason));
    assert_false(check(&lim, "abcdefghijklmnopq.example.com", 11, reason, sizeof reason));
    assert_string_equal(reason, "label 'abcdefghijklmnop...' (17 characters) has entropy 4.09 "
                                "bits/char, above dns.max_label_entropy (4.00): looks like data, "
                                "not a host name");
    /* entropy_min_length: a label one shorter is not measured. */
    lim.max_label_entropy = 3.0;
    lim.entropy_min_length = 12;
    assert_true(check(&lim, "abcdefghijk.example.com", 11, reason, sizeof reason)); /* 11: 3.46 */
    assert_false(check(&lim, "abcdefghijkl.example.com", 11, reason, sizeof reason)); /* 12: 3.58 */
    assert_string_equal(reason, "label 'abcdefghijkl' (12 characters) has entropy 3.58 bits/char, "
                                "above dns.max_label_entropy (3.00): looks like data, not a host "
                                "name");
    /* Label length is reported before entropy; the first offending label is the one reported. */
    lim = defaults();
    lim.max_label_length = 16;
    assert_false(check(&lim, "abcdefghijklmnopq.x.example.com", 11, reason, sizeof reason));
    assert_string_equal(reason, "label 'abcdefghijklmnop...' (17 characters) is longer than "
                                "dns.max_label_length (16)");
    /* max_label_entropy 6 disables the check: log2(63) = 5.98. */
    lim = defaults();
    lim.max_label_length = 63;
    lim.max_label_entropy = 6.0;
    const char *all = "abcdefghijklmnopqrstuvwxyz0123456789-_";
    char name[120];
    size_t apex = under(name, sizeof name, all, "example.com");
    assert_true(check(&lim, name, apex, reason, sizeof reason));
}

/* Deterministic random bytes (xorshift64*): the table below is reproducible. */
static uint8_t rnd8(uint64_t *st)
{
    *st ^= *st >> 12;
    *st ^= *st << 25;
    *st ^= *st >> 27;
    return (uint8_t)((*st * UINT64_C(0x2545f4914f6cdd1d)) >> 56);
}

/* n characters of the encoding of random bytes: "b32" (RFC 4648 lower-case), "b64" (base64url
 * lower-cased, as a DNS name would carry it; '-' and '_' kept), "hex". */
static void random_label(uint64_t *st, char *out, size_t n, const char *enc)
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    static const char b64[] = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789-_";
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        if (strcmp(enc, "b32") == 0)
            out[i] = b32[rnd8(st) & 31];
        else if (strcmp(enc, "b64") == 0)
            out[i] = b64[rnd8(st) & 63];
        else
            out[i] = hex[rnd8(st) & 15];
    }
    out[n] = '\0';
}

/* The measurement behind PD_DNS_GUARD_DEFAULT_MAX_LABEL_ENTROPY (see dns_guard.h). Printed so the
 * numbers in the header can be checked; the assertions pin the conclusions. */
static void test_entropy_table(void **state)
{
    (void)state;
    static const struct {
        const char *label;
        bool pass; /* under the defaults, as a subdomain of a wildcard apex */
    } real[] = {
        {"www", true},
        {"api", true},
        {"us-east-1", true},
        {"storage", true},
        {"d1a2b3c4d5e6f7", true}, /* CloudFront-style */
        {"prod-eu-west-1-cache-07", true},
        {"objects-githubusercontent", true},
        {"raw-githubusercontent-com", true},
        {"registry-npmjs-org", true},
        {"pypi-files-python-hosted", true},
        {"api-staging-eu-central-1", true},
        {"k8s-ingress-nginx-controller", true},
        {"ec2-54-123-45-67", true},
        {"dualstack-us-west-2", true},
        {"production-api-gateway", true},
        {"xn--bcher-kva", true},
        {"e2a4f6c81b3d4f5a9c7e0d2b4f6a8c1e", true}, /* 32 hex: a hash id (R2 account, ...) */
        {"0f8fad5b-d9cb-469f-a165-70867728950e", true}, /* a random UUID */
        {"a1b2c3d4e5f6g7h8", true}, /* exactly 4.00 */
        {"my-service-1234567890", false}, /* 4.20: the one false positive found */
    };
    struct pd_dns_guard_limits lim = defaults();
    char name[120], reason[PD_DNS_GUARD_REASON_MAX];
    print_message("%-40s %4s %8s  %s\n", "label", "len", "bits/ch", "verdict (defaults)");
    for (size_t i = 0; i < sizeof real / sizeof real[0]; i++) {
        size_t len = strlen(real[i].label);
        double h = pd_dns_guard_label_entropy(real[i].label, len);
        size_t apex = under(name, sizeof name, real[i].label, "example.com");
        bool ok = check(&lim, name, apex, reason, sizeof reason);
        print_message("%-40s %4zu %8.3f  %s\n", real[i].label, len, h, ok ? "pass" : "refused");
        if (ok != real[i].pass)
            fail_msg("%s: %s", real[i].label, ok ? "passed" : reason);
    }

    /* Random data: share refused by the entropy check alone (max_label_length 63), 2000 labels of
     * each encoding and length. */
    static const char *encs[] = {"b32", "b64", "hex"};
    static const size_t lens[] = {12, 16, 20, 24, 32, 40, 63};
    lim.max_label_length = 63;
    int refused_pct[3][7];
    uint64_t rng = UINT64_C(0x9e3779b97f4a7c15);
    print_message("%-5s", "enc");
    for (size_t j = 0; j < 7; j++)
        print_message("  n=%-2zu  mean/refused", lens[j]);
    print_message("\n");
    for (size_t e = 0; e < 3; e++) {
        print_message("%-5s", encs[e]);
        for (size_t j = 0; j < 7; j++) {
            int refused = 0;
            double sum = 0;
            char label[64];
            for (int k = 0; k < 2000; k++) {
                random_label(&rng, label, lens[j], encs[e]);
                sum += pd_dns_guard_label_entropy(label, lens[j]);
                size_t apex = under(name, sizeof name, label, "example.com");
                if (!check(&lim, name, apex, reason, sizeof reason))
                    refused++;
            }
            refused_pct[e][j] = refused / 20;
            print_message("  %5.2f   %3d%%    ", sum / 2000, refused_pct[e][j]);
        }
        print_message("\n");
    }
    /* Conclusions pinned (see the header): 16 characters can never exceed 4.0; base32/base64 of
     * 40 characters (the default label maximum) are refused almost always, of 32 mostly; hex
     * never. */
    for (size_t e = 0; e < 3; e++) {
        assert_int_equal(refused_pct[e][0], 0);
        assert_int_equal(refused_pct[e][1], 0);
        assert_int_equal(refused_pct[2][4 + e], 0); /* hex at 32, 40, 63 */
    }
    for (size_t e = 0; e < 2; e++) {
        assert_true(refused_pct[e][4] >= 80); /* 32 */
        assert_true(refused_pct[e][5] >= 97); /* 40 */
        assert_true(refused_pct[e][6] == 100); /* 63 */
    }
}

/* ---- reasons ---- */

static void test_reason_truncation(void **state)
{
    (void)state;
    struct pd_dns_guard_limits lim = defaults();
    lim.max_name_length = 10;
    const char *name = "abcdef.example.com";
    const char *full = "name is 18 characters, more than dns.max_name_length (10)";
    char reason[PD_DNS_GUARD_REASON_MAX];
    assert_false(check(&lim, name, 11, reason, sizeof reason));
    assert_string_equal(reason, full);
    assert_true(strlen(full) < PD_DNS_GUARD_REASON_MAX);
    char small[12];
    memset(small, 'X', sizeof small);
    assert_false(check(&lim, name, 11, small, 10));
    assert_string_equal(small, "name is 1"); /* 9 characters + NUL */
    assert_int_equal(small[10], 'X'); /* nothing written past the cap */
    memset(small, 'X', sizeof small);
    assert_false(check(&lim, name, 11, small, 1));
    assert_int_equal(small[0], '\0');
    assert_int_equal(small[1], 'X');
    memset(small, 'X', sizeof small);
    assert_false(check(&lim, name, 11, small, 0)); /* cap 0: untouched */
    assert_int_equal(small[0], 'X');
    assert_false(check(&lim, name, 11, NULL, 100)); /* NULL reason */
    /* A passing name clears the reason. */
    memset(reason, 'X', sizeof reason);
    assert_true(check(&lim, "a.com", 3, reason, sizeof reason));
    assert_string_equal(reason, "");

    /* The longest reason fits PD_DNS_GUARD_REASON_MAX: entropy, 63-character label. */
    lim = defaults();
    lim.max_label_length = 63;
    lim.max_label_entropy = 0.0;
    lim.entropy_min_length = 1;
    char n2[120];
    char label[64];
    fill(label, 'a', 62);
    label[62] = 'b';
    label[63] = '\0';
    size_t apex = under(n2, sizeof n2, label, "example.com");
    assert_false(check(&lim, n2, apex, reason, sizeof reason));
    assert_string_equal(reason, "label 'aaaaaaaaaaaaaaaa...' (63 characters) has entropy 0.12 "
                                "bits/char, above dns.max_label_entropy (0.00): looks like data, "
                                "not a host name");

    /* Burst reason, cut. */
    struct pd_dns_guard *g = mk(4);
    assert_true(pd_dns_guard_note(g, "example.com", 11, "a", 1, 1, 0, reason, sizeof reason));
    assert_false(pd_dns_guard_note(g, "example.com", 11, "b", 1, 1, 0, reason, sizeof reason));
    assert_string_equal(reason, "more than 1 distinct subdomains of example.com in one minute");
    memset(small, 'X', sizeof small);
    assert_false(pd_dns_guard_note(g, "example.com", 11, "b", 1, 1, 0, small, 5));
    assert_string_equal(small, "more");
    assert_int_equal(small[5], 'X');
    assert_false(pd_dns_guard_note(g, "example.com", 11, "b", 1, 1, 0, NULL, 5));
    pd_dns_guard_free(g);
}

/* ---- SipHash ---- */

static void test_siphash_vectors(void **state)
{
    (void)state;
    /* Reference vectors (Aumasson and Bernstein): key 00..0f, message 00 01 02 ... of len bytes. */
    uint8_t key[16], msg[64];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    assert_true(pd_dns_guard_siphash24(key, msg, 0) == UINT64_C(0x726fdb47dd0e0e31));
    assert_true(pd_dns_guard_siphash24(key, msg, 1) == UINT64_C(0x74f839c593dc67fd));
    assert_true(pd_dns_guard_siphash24(key, msg, 8) == UINT64_C(0x93f5f5799a932462));
    assert_true(pd_dns_guard_siphash24(key, msg, 15) == UINT64_C(0xa129ca6149be45e5));
    assert_true(pd_dns_guard_siphash24(key, msg, 63) == UINT64_C(0x958a324ceb064572));
}

/* ---- the burst tracker ---- */

static bool note(struct pd_dns_guard *g, const char *apex, const char *sub, uint32_t limit,
                 int64_t now)
{
    char reason[PD_DNS_GUARD_REASON_MAX];
    bool ok = pd_dns_guard_note(g, apex, strlen(apex), sub, strlen(sub), limit, now, reason,
                                sizeof reason);
    assert_true(ok == (reason[0] == '\0'));
    return ok;
}

static void test_burst(void **state)
{
    (void)state;
    struct pd_dns_guard *g = mk(16);
    char sub[32];
    /* limit 5: five distinct pass (some repeated), the sixth distinct fails. */
    for (int i = 0; i < 5; i++) {
        snprintf(sub, sizeof sub, "h%d", i);
        assert_true(note(g, "example.com", sub, 5, 120));
        assert_true(note(g, "example.com", sub, 5, 121)); /* a retry */
    }
    assert_false(note(g, "example.com", "h5", 5, 130));
    assert_false(note(g, "example.com", "h5", 5, 130)); /* refused ones are not counted */
    assert_false(note(g, "example.com", "h6.deeper", 5, 150));
    /* Seen ones still pass. */
    assert_true(note(g, "example.com", "h0", 5, 179));
    assert_true(note(g, "example.com", "h4", 5, 179));
    /* Another apex is independent; an exact name (empty sub) and limit 0 always pass. */
    assert_true(note(g, "example.org", "h5", 5, 179));
    assert_true(pd_dns_guard_note(g, "example.com", 11, NULL, 0, 5, 179, NULL, 0));
    assert_true(note(g, "example.com", "h7", 0, 179));
    /* A larger limit (reload) admits more in the same minute; a smaller one refuses new ones. */
    assert_true(note(g, "example.com", "h5", 6, 179));
    assert_false(note(g, "example.com", "h6", 6, 179));
    assert_false(note(g, "example.com", "h6", 2, 179));
    assert_true(note(g, "example.com", "h1", 2, 179));
    /* The next minute (180 = 3 * 60) starts from zero. */
    for (int i = 10; i < 15; i++) {
        snprintf(sub, sizeof sub, "h%d", i);
        assert_true(note(g, "example.com", sub, 5, 180));
    }
    assert_false(note(g, "example.com", "h0", 5, 239)); /* h0 is new in this minute */
    assert_true(note(g, "example.com", "h10", 5, 239));
    /* A clock read from the previous minute counts in the current window. */
    assert_false(note(g, "example.com", "h1", 5, 170));
    assert_true(note(g, "example.com", "h11", 5, 170));
    /* Negative times: floor division, -1 is in the minute before 0. */
    assert_true(note(g, "neg.example", "a", 1, -60));
    assert_true(note(g, "neg.example", "a", 1, -1));
    assert_false(note(g, "neg.example", "b", 1, -1));
    assert_true(note(g, "neg.example", "b", 1, 0));
    assert_int_equal(pd_dns_guard_count(g), 3);
    pd_dns_guard_free(g);
}

static void test_burst_limit_one_and_max(void **state)
{
    (void)state;
    struct pd_dns_guard *g = mk(2);
    assert_true(note(g, "a.com", "x", 1, 0));
    assert_false(note(g, "a.com", "y", 1, 59));
    assert_true(note(g, "a.com", "y", 1, 60));
    /* The largest limit: 100000 distinct pass, the next is refused; memory stays within the set's
     * bound of 2 x next_power_of_two(limit) slots of 8 bytes (plus the apex). */
    uint32_t lim = PD_DNS_GUARD_UNIQUE_MAX;
    /* The longest apex (253 characters), so the reason is the longest one possible. */
    char apex[260];
    size_t n = 0;
    while (n + 10 <= 253) {
        memcpy(apex + n, "abcdefghi.", 10);
        n += 10;
    }
    fill(apex + n, 'z', 253 - n);
    char sub[32];
    for (uint32_t i = 0; i < lim; i++) {
        snprintf(sub, sizeof sub, "s%u", i);
        if (!note(g, apex, sub, lim, 0))
            fail_msg("%s refused", sub);
    }
    char reason[PD_DNS_GUARD_REASON_MAX];
    assert_false(pd_dns_guard_note(g, apex, 253, "one-more", 8, lim, 0, reason, sizeof reason));
    assert_int_equal(strlen(reason), strlen("more than 100000 distinct subdomains of ") + 253 +
                                         strlen(" in one minute"));
    assert_true(strlen(reason) < PD_DNS_GUARD_REASON_MAX); /* the longest reason fits */
    assert_true(pd_dns_guard_bytes(g) <= 2 * 131072 * 8 + 4096);
    assert_false(note(g, apex, "x", lim + 1, 0)); /* limit above the maximum: a caller bug */
    pd_dns_guard_free(g);
}

static void test_set_memory_bounded(void **state)
{
    (void)state;
    struct pd_dns_guard *g = mk(4);
    size_t empty = pd_dns_guard_bytes(g);
    char sub[32];
    int passed = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(sub, sizeof sub, "x%d", i);
        passed += note(g, "example.com", sub, 100, 0);
    }
    assert_int_equal(passed, 100);
    size_t held = pd_dns_guard_bytes(g);
    /* 100 hashes: at most 256 slots of 8 bytes, plus the apex. */
    assert_true(held - empty <= 256 * 8 + 512);
    print_message("10000 distinct subdomains at limit 100: %zu bytes held\n", held);
    /* A new minute frees the set: only the apex and the first hash remain. */
    assert_true(note(g, "example.com", "x0", 100, 60));
    assert_true(pd_dns_guard_bytes(g) - empty <= 16 * 8 + 512);
    pd_dns_guard_free(g);
}

static void test_eviction(void **state)
{
    (void)state;
    struct pd_dns_guard *g = mk(64);
    char apex[64], sub[32];
    size_t peak = 0;
    /* 10,000 distinct apexes, 3 subdomains each, one second apart. */
    for (int i = 0; i < 10000; i++) {
        snprintf(apex, sizeof apex, "a%d.example.com", i);
        for (int j = 0; j < 3; j++) {
            snprintf(sub, sizeof sub, "s%d", j);
            assert_true(note(g, apex, sub, 3, i));
        }
        assert_false(note(g, apex, "s3", 3, i));
        size_t b = pd_dns_guard_bytes(g);
        if (b > peak)
            peak = b;
        assert_true(pd_dns_guard_count(g) <= 64);
    }
    assert_int_equal(pd_dns_guard_count(g), 64);
    print_message("10000 apexes, max_apexes 64: %zu apexes, peak %zu bytes\n",
                  pd_dns_guard_count(g), peak);
    assert_true(peak <= 64 * (16 * 8 + 512) + 4096);
    /* The most recent apexes are still tracked: those of the last minute (9960..9999) keep their
     * counts... */
    for (int i = 9960; i < 10000; i++) {
        snprintf(apex, sizeof apex, "a%d.example.com", i);
        assert_false(note(g, apex, "s9", 3, 9999));
    }
    /* ...an evicted one starts afresh. */
    assert_true(note(g, "a0.example.com", "s9", 3, 9999));
    assert_int_equal(pd_dns_guard_count(g), 64);
    pd_dns_guard_free(g);

    /* The victim is the apex noted least recently: p, q, r at 1, 2, 3, p again at 4, then s. */
    g = mk(3);
    assert_true(note(g, "p.com", "x", 1, 1));
    assert_true(note(g, "q.com", "x", 1, 2));
    assert_true(note(g, "r.com", "x", 1, 3));
    assert_true(note(g, "p.com", "x", 1, 4));
    assert_true(note(g, "s.com", "x", 1, 5)); /* evicts q */
    assert_false(note(g, "p.com", "y", 1, 5)); /* p kept its count */
    assert_false(note(g, "r.com", "y", 1, 5)); /* r too */
    assert_true(note(g, "q.com", "y", 1, 5)); /* q forgot it (and evicted another) */
    assert_int_equal(pd_dns_guard_count(g), 3);
    pd_dns_guard_free(g);
}

static void test_new_invalid(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    assert_null(pd_dns_guard_new(0, &err));
    assert_string_equal(err.msg, "dns guard: max_apexes must be between 1 and 100000, got 0");
    assert_null(pd_dns_guard_new(100001, &err));
    pd_dns_guard_free(NULL);
    assert_int_equal(pd_dns_guard_count(NULL), 0);
    assert_int_equal(pd_dns_guard_bytes(NULL), 0);
    char reason[PD_DNS_GUARD_REASON_MAX];
    assert_false(pd_dns_guard_note(NULL, "a.com", 5, "x", 1, 1, 0, reason, sizeof reason));
    assert_string_equal(reason, "invalid arguments");
    struct pd_dns_guard *g = mk(1);
    assert_false(pd_dns_guard_note(g, "A.com", 5, "x", 1, 1, 0, reason, sizeof reason));
    assert_string_equal(reason, "invalid arguments");
    assert_false(pd_dns_guard_note(g, "a.com", 5, "x\xff", 2, 1, 0, reason, sizeof reason));
    assert_string_equal(reason, "invalid arguments");
    assert_false(pd_dns_guard_note(g, "a.com", 0, "x", 1, 1, 0, reason, sizeof reason));
    assert_false(pd_dns_guard_note(g, NULL, 5, "x", 1, 1, 0, reason, sizeof reason));
    assert_false(pd_dns_guard_note(g, "a.com", 5, NULL, 1, 1, 0, reason, sizeof reason));
    assert_int_equal(pd_dns_guard_count(g), 0);
    /* Two trackers have different keys; both behave the same. */
    struct pd_dns_guard *g2 = mk(1);
    assert_true(note(g, "a.com", "x", 1, 0));
    assert_true(note(g2, "a.com", "x", 1, 0));
    assert_false(note(g2, "a.com", "y", 1, 0));
    pd_dns_guard_free(g2);
    pd_dns_guard_free(g);
}

/* ---- concurrency ---- */

#define THREADS 4
#define NOTES_PER_THREAD 10000
#define SHARED_LIMIT 1000

struct conc_arg {
    struct pd_dns_guard *g;
    int id;
    int own_allowed;
    int errors;
};

static void *conc_worker(void *p)
{
    struct conc_arg *a = p;
    char own[32], sub[32];
    snprintf(own, sizeof own, "t%d.example", a->id);
    for (int i = 0; i < NOTES_PER_THREAD; i++) {
        snprintf(sub, sizeof sub, "s%d", i / 2);
        if (i % 2) {
            /* Own apex, 5000 distinct, limit 5000: all pass. */
            a->own_allowed +=
                pd_dns_guard_note(a->g, own, strlen(own), sub, strlen(sub), 5000, 30, NULL, 0);
        } else {
            /* Shared apex: every thread notes the same 5000 names, limit 1000. */
            char reason[PD_DNS_GUARD_REASON_MAX];
            bool ok = pd_dns_guard_note(a->g, "shared.example", 14, sub, strlen(sub), SHARED_LIMIT,
                                        30, reason, sizeof reason);
            if (!ok && strcmp(reason, "more than 1000 distinct subdomains of shared.example in "
                                      "one minute") != 0)
                a->errors++;
        }
    }
    return NULL;
}

static void test_concurrent_notes(void **state)
{
    (void)state;
    struct pd_dns_guard *g = mk(16);
    pthread_t th[THREADS];
    struct conc_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct conc_arg){.g = g, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, conc_worker, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].own_allowed, NOTES_PER_THREAD / 2);
        assert_int_equal(args[i].errors, 0);
    }
    assert_int_equal(pd_dns_guard_count(g), THREADS + 1);
    /* Exactly SHARED_LIMIT of the 5000 shared names were admitted. */
    int admitted = 0;
    char sub[32];
    for (int i = 0; i < NOTES_PER_THREAD / 2; i++) {
        snprintf(sub, sizeof sub, "s%d", i);
        admitted += note(g, "shared.example", sub, SHARED_LIMIT, 59);
    }
    assert_int_equal(admitted, SHARED_LIMIT);
    pd_dns_guard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_name_length),
        cmocka_unit_test(test_label_length),
        cmocka_unit_test(test_exact_and_apex_forms),
        cmocka_unit_test(test_non_canonical),
        cmocka_unit_test(test_entropy_values),
        cmocka_unit_test(test_entropy_boundaries),
        cmocka_unit_test(test_entropy_table),
        cmocka_unit_test(test_reason_truncation),
        cmocka_unit_test(test_siphash_vectors),
        cmocka_unit_test(test_burst),
        cmocka_unit_test(test_burst_limit_one_and_max),
        cmocka_unit_test(test_set_memory_bounded),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_new_invalid),
        cmocka_unit_test(test_concurrent_notes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
