/* test_dns_answers.c - unit tests for gateway/dns_answers.{h,c}: round trips for A, AAAA and CNAME
 * chains (strings copied, not borrowed, and shared within an entry), the TTL countdown and the
 * exact expiry boundary, what is refused (ttl 0, rcodes, > 16 records, long names, bad records, a
 * full arena) and that a refusal removes the old entry, replacement, keys (qtype, bytes not case),
 * LRU order, expired-first eviction, clear, partial reads, re-putting the cache's own output,
 * memory, and a randomised stress run against a model. Time is always passed in: no sleeping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gateway/dns_answers.h"

static struct pd_dnsa *mk(size_t max)
{
    struct pd_err err = {{0}};
    struct pd_dnsa *c = pd_dnsa_new(max, &err);
    if (!c)
        fail_msg("pd_dnsa_new: %s", err.msg);
    return c;
}

static struct pd_dns_answer rec_a(uint8_t a, uint8_t b, uint8_t x, uint8_t y)
{
    struct pd_dns_answer r = {.type = PD_DNS_TYPE_A, .ttl = 999};
    r.addr[0] = a;
    r.addr[1] = b;
    r.addr[2] = x;
    r.addr[3] = y;
    return r;
}

static struct pd_dns_answer rec_aaaa(uint8_t last)
{
    struct pd_dns_answer r = {.type = PD_DNS_TYPE_AAAA, .ttl = 999};
    r.addr[0] = 0x20;
    r.addr[1] = 0x01;
    r.addr[2] = 0x0d;
    r.addr[3] = 0xb8;
    r.addr[15] = last;
    return r;
}

static struct pd_dns_answer rec_cname(const char *owner, const char *target)
{
    struct pd_dns_answer r = {.type = PD_DNS_TYPE_CNAME, .ttl = 999};
    r.target = target;
    r.target_len = strlen(target);
    if (owner) {
        r.owner = owner;
        r.owner_len = strlen(owner);
    }
    return r;
}

static bool put(struct pd_dnsa *c, const char *name, uint16_t qtype, uint16_t rcode,
                const struct pd_dns_answer *ans, size_t n, uint32_t ttl, uint64_t now)
{
    return pd_dnsa_put(c, name, strlen(name), qtype, rcode, ans, n, ttl, now);
}

static bool get(struct pd_dnsa *c, const char *name, uint16_t qtype, uint64_t now, uint16_t *rcode,
                struct pd_dns_answer *out, size_t max, size_t *n)
{
    return pd_dnsa_get(c, name, strlen(name), qtype, now, rcode, out, max, n);
}

/* A miss, checked with *n = 0. */
static bool hit(struct pd_dnsa *c, const char *name, uint16_t qtype, uint64_t now)
{
    struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS];
    size_t n = 99;
    uint16_t rcode = 0;
    bool h = get(c, name, qtype, now, &rcode, out, PD_DNSA_MAX_ANSWERS, &n);
    if (!h)
        assert_int_equal(n, 0);
    return h;
}

/* TTL of the first record of a hit (which must exist). */
static uint32_t ttl_at(struct pd_dnsa *c, const char *name, uint16_t qtype, uint64_t now)
{
    struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS];
    size_t n = 0;
    uint16_t rcode = 0;
    if (!get(c, name, qtype, now, &rcode, out, PD_DNSA_MAX_ANSWERS, &n) || n == 0)
        fail_msg("expected a hit with records for %s at %llu", name, (unsigned long long)now);
    return out[0].ttl;
}

static void assert_text(const char *got, size_t got_len, const char *want)
{
    assert_non_null(got);
    assert_int_equal(got_len, strlen(want));
    assert_memory_equal(got, want, got_len);
    assert_int_equal(got[got_len], '\0'); /* stored NUL-terminated too */
}

/* ---- new / free ---- */

static void test_new_invalid(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    assert_null(pd_dnsa_new(0, &err));
    assert_string_equal(err.msg,
                        "dns answer cache: max_entries must be between 1 and 1000000, got 0");
    assert_null(pd_dnsa_new(PD_DNSA_MAX_ENTRIES_LIMIT + 1, &err));
    assert_string_equal(err.msg,
                        "dns answer cache: max_entries must be between 1 and 1000000, got 1000001");
    assert_null(pd_dnsa_new(0, NULL));
    struct pd_dnsa *c = mk(1);
    assert_int_equal(pd_dnsa_count(c), 0);
    assert_true(pd_dnsa_check(c));
    pd_dnsa_free(c);
    pd_dnsa_free(NULL);
    assert_int_equal(pd_dnsa_count(NULL), 0);
    assert_int_equal(pd_dnsa_bytes(NULL), 0);
    pd_dnsa_clear(NULL);
    assert_false(pd_dnsa_check(NULL));
}

/* Memory is fixed at new() and about 1.2 KB per entry (the header's figure). */
static void test_memory(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(1000);
    size_t bytes = pd_dnsa_bytes(c);
    double per = (double)bytes / 1000.0;
    print_message("memory: %zu bytes for 1000 entries (%.0f per entry)\n", bytes, per);
    assert_true(per >= 1200.0 && per <= 1240.0);
    struct pd_dns_answer a = rec_a(1, 2, 3, 4);
    char name[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "h%d.example.com", i);
        assert_true(put(c, name, PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    }
    assert_int_equal(pd_dnsa_count(c), 1000);
    assert_int_equal(pd_dnsa_bytes(c), bytes);
    pd_dnsa_free(c);
}

/* ---- round trips ---- */

static void test_round_trip_a(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(8);
    struct pd_dns_answer in[2] = {rec_a(93, 184, 216, 34), rec_a(10, 0, 0, 1)};
    /* Bytes 4..15 of an A record are not part of it: garbage there is not kept. */
    memset(in[0].addr + 4, 0xAA, 12);
    assert_true(put(c, "example.com", PD_DNS_TYPE_A, PD_DNS_RCODE_NOERROR, in, 2, 300, 1000));
    assert_int_equal(pd_dnsa_count(c), 1);

    struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS];
    memset(out, 0x55, sizeof out);
    size_t n = 0;
    uint16_t rcode = 77;
    assert_true(get(c, "example.com", PD_DNS_TYPE_A, 1000, &rcode, out, PD_DNSA_MAX_ANSWERS, &n));
    assert_int_equal(rcode, PD_DNS_RCODE_NOERROR);
    assert_int_equal(n, 2);
    const uint8_t want0[16] = {93, 184, 216, 34};
    assert_int_equal(out[0].type, PD_DNS_TYPE_A);
    assert_int_equal(out[0].ttl, 300); /* the caller's TTL, not the record's 999 */
    assert_memory_equal(out[0].addr, want0, 16);
    assert_null(out[0].target);
    assert_int_equal(out[0].target_len, 0);
    assert_null(out[0].owner);
    assert_int_equal(out[0].owner_len, 0);
    assert_int_equal(out[1].addr[0], 10);
    assert_int_equal(out[1].addr[3], 1);
    assert_int_equal(out[1].ttl, 300);
    /* rcode and n may be NULL. */
    assert_true(get(c, "example.com", PD_DNS_TYPE_A, 1000, NULL, out, PD_DNSA_MAX_ANSWERS, NULL));
    assert_true(pd_dnsa_check(c));
    pd_dnsa_free(c);
}

static void test_round_trip_aaaa(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(8);
    struct pd_dns_answer in[3] = {rec_aaaa(1), rec_aaaa(2), rec_aaaa(3)};
    assert_true(put(c, "v6.example.com", PD_DNS_TYPE_AAAA, 0, in, 3, 60, 0));
    struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS];
    size_t n = 0;
    uint16_t rcode = 9;
    assert_true(
        get(c, "v6.example.com", PD_DNS_TYPE_AAAA, 0, &rcode, out, PD_DNSA_MAX_ANSWERS, &n));
    assert_int_equal(rcode, 0);
    assert_int_equal(n, 3);
    for (size_t k = 0; k < 3; k++) {
        assert_int_equal(out[k].type, PD_DNS_TYPE_AAAA);
        assert_memory_equal(out[k].addr, in[k].addr, 16);
        assert_int_equal(out[k].ttl, 60);
    }
    pd_dnsa_free(c);
}

/* www.example.com CNAME a.cdn.net, a.cdn.net CNAME b.edge.net, b.edge.net A x2: the strings are
 * the cache's own copies (the caller's buffers are overwritten after the put). */
static void test_cname_chain(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(8);
    char t1[64], t2[64], o1[64], o2[64], o3[64];
    strcpy(t1, "a.cdn.net");
    strcpy(t2, "b.edge.net");
    strcpy(o1, "a.cdn.net");
    strcpy(o2, "b.edge.net");
    strcpy(o3, "b.edge.net");
    struct pd_dns_answer in[4] = {rec_cname(NULL, t1), rec_cname(o1, t2), rec_a(1, 1, 1, 1),
                                  rec_a(2, 2, 2, 2)};
    in[2].owner = o2;
    in[2].owner_len = strlen(o2);
    in[3].owner = o3;
    in[3].owner_len = strlen(o3);
    char name[64];
    strcpy(name, "www.example.com");
    assert_true(pd_dnsa_put(c, name, strlen(name), PD_DNS_TYPE_A, 0, in, 4, 120, 0));
    memset(t1, 'X', sizeof t1);
    memset(t2, 'X', sizeof t2);
    memset(o1, 'X', sizeof o1);
    memset(o2, 'X', sizeof o2);
    memset(o3, 'X', sizeof o3);
    memset(name, 'X', sizeof name);
    memset(in, 0, sizeof in);

    struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS];
    size_t n = 0;
    uint16_t rcode = 9;
    assert_true(
        get(c, "www.example.com", PD_DNS_TYPE_A, 500, &rcode, out, PD_DNSA_MAX_ANSWERS, &n));
    assert_int_equal(n, 4);
    assert_int_equal(out[0].type, PD_DNS_TYPE_CNAME);
    assert_null(out[0].owner);
    assert_int_equal(out[0].owner_len, 0);
    assert_text(out[0].target, out[0].target_len, "a.cdn.net");
    assert_int_equal(out[1].type, PD_DNS_TYPE_CNAME);
    assert_text(out[1].owner, out[1].owner_len, "a.cdn.net");
    assert_text(out[1].target, out[1].target_len, "b.edge.net");
    assert_int_equal(out[2].type, PD_DNS_TYPE_A);
    assert_text(out[2].owner, out[2].owner_len, "b.edge.net");
    assert_null(out[2].target);
    assert_int_equal(out[2].addr[0], 1);
    assert_text(out[3].owner, out[3].owner_len, "b.edge.net");
    assert_int_equal(out[3].addr[0], 2);
    for (size_t k = 0; k < 4; k++)
        assert_int_equal(out[k].ttl, 120);
    /* Equal strings are stored once. */
    assert_ptr_equal(out[0].target, out[1].owner);
    assert_ptr_equal(out[1].target, out[2].owner);
    assert_ptr_equal(out[2].owner, out[3].owner);
    /* The strings stay valid across later gets, even one that removes an expired entry. */
    struct pd_dns_answer e1 = rec_cname(NULL, "gone.example.net");
    assert_true(put(c, "old.example.com", PD_DNS_TYPE_A, 0, &e1, 1, 1, 0));
    assert_true(get(c, "www.example.com", PD_DNS_TYPE_A, 500, NULL, out, PD_DNSA_MAX_ANSWERS, &n));
    assert_false(hit(c, "old.example.com", PD_DNS_TYPE_A, 1000));
    assert_false(hit(c, "nothere.example.com", PD_DNS_TYPE_A, 1000));
    assert_text(out[1].owner, out[1].owner_len, "a.cdn.net");
    assert_text(out[1].target, out[1].target_len, "b.edge.net");
    /* An owner given with length 0 is the question name (returned as NULL). */
    struct pd_dns_answer q = rec_a(5, 5, 5, 5);
    q.owner = "ignored";
    q.owner_len = 0;
    assert_true(put(c, "z.example.com", PD_DNS_TYPE_A, 0, &q, 1, 10, 0));
    assert_true(get(c, "z.example.com", PD_DNS_TYPE_A, 0, NULL, out, 1, &n));
    assert_null(out[0].owner);
    pd_dnsa_free(c);
}

static void fill(char *buf, char ch, size_t n, const char *suffix)
{
    memset(buf, ch, n);
    strcpy(buf + n, suffix);
}

/* The arena holds two distinct names of 253 bytes (sharing makes the chain fit) but not three. */
static void test_arena_limit(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(8);
    char n1[300], n2[300], n3[300];
    /* 61 + '.' + 61 + '.' + 61 + '.' + 63 + ".x" ... build 253-byte names of legal labels. */
    for (int i = 0; i < 3; i++) {
        char *b = i == 0 ? n1 : i == 1 ? n2 : n3;
        char ch = (char)('a' + i);
        fill(b, ch, 63, ".");
        fill(b + 64, ch, 63, ".");
        fill(b + 128, ch, 63, ".");
        fill(b + 192, ch, 61, "");
        assert_int_equal(strlen(b), 253);
    }
    struct pd_dns_answer in[PD_DNSA_MAX_ANSWERS];
    in[0] = rec_cname(NULL, n1);
    in[1] = rec_cname(n1, n2);
    for (int k = 2; k < PD_DNSA_MAX_ANSWERS; k++) {
        in[k] = rec_a(10, 0, 0, (uint8_t)k);
        in[k].owner = n2;
        in[k].owner_len = 253;
    }
    assert_true(put(c, "big.example.com", PD_DNS_TYPE_A, 0, in, PD_DNSA_MAX_ANSWERS, 60, 0));
    struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS];
    size_t n = 0;
    assert_true(get(c, "big.example.com", PD_DNS_TYPE_A, 0, NULL, out, PD_DNSA_MAX_ANSWERS, &n));
    assert_int_equal(n, PD_DNSA_MAX_ANSWERS);
    assert_text(out[1].target, out[1].target_len, n2);
    assert_text(out[15].owner, out[15].owner_len, n2);
    /* A third distinct long name does not fit: refused, and the old entry for the key removed. */
    in[1] = rec_cname(n1, n3);
    in[2] = rec_cname(n3, n2);
    assert_false(put(c, "big.example.com", PD_DNS_TYPE_A, 0, in, PD_DNSA_MAX_ANSWERS, 60, 0));
    assert_false(hit(c, "big.example.com", PD_DNS_TYPE_A, 0));
    assert_int_equal(pd_dnsa_count(c), 0);
    pd_dnsa_free(c);
}

/* ---- time ---- */

static void test_ttl_countdown(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(8);
    struct pd_dns_answer a = rec_a(1, 2, 3, 4);
    assert_true(put(c, "t.example.com", PD_DNS_TYPE_A, 0, &a, 1, 10, 1000));
    assert_int_equal(ttl_at(c, "t.example.com", PD_DNS_TYPE_A, 1000), 10);
    assert_int_equal(ttl_at(c, "t.example.com", PD_DNS_TYPE_A, 1999), 10);
    assert_int_equal(ttl_at(c, "t.example.com", PD_DNS_TYPE_A, 2000), 9);
    assert_int_equal(ttl_at(c, "t.example.com", PD_DNS_TYPE_A, 2500), 9); /* +1500 ms: ttl - 1 */
    assert_int_equal(ttl_at(c, "t.example.com", PD_DNS_TYPE_A, 3000), 8);
    assert_int_equal(ttl_at(c, "t.example.com", PD_DNS_TYPE_A, 10000), 1);
    assert_int_equal(ttl_at(c, "t.example.com", PD_DNS_TYPE_A, 10999), 1); /* 1 ms left: still 1 */
    assert_int_equal(pd_dnsa_count(c), 1);
    assert_false(hit(c, "t.example.com", PD_DNS_TYPE_A, 11000)); /* expired: removed */
    assert_int_equal(pd_dnsa_count(c), 0);
    assert_true(pd_dnsa_check(c));
    /* A clock that moved back never gives out more than the TTL put. */
    assert_true(put(c, "t.example.com", PD_DNS_TYPE_A, 0, &a, 1, 10, 50000));
    assert_int_equal(ttl_at(c, "t.example.com", PD_DNS_TYPE_A, 20000), 10);
    /* A huge TTL near the end of the clock saturates instead of wrapping. */
    assert_true(put(c, "u.example.com", PD_DNS_TYPE_A, 0, &a, 1, UINT32_MAX, UINT64_MAX - 5));
    assert_true(hit(c, "u.example.com", PD_DNS_TYPE_A, UINT64_MAX - 1));
    assert_false(hit(c, "u.example.com", PD_DNS_TYPE_A, UINT64_MAX));
    pd_dnsa_free(c);
}

static void test_expiry_boundary(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(8);
    struct pd_dns_answer a = rec_a(1, 2, 3, 4);
    assert_true(put(c, "b.example.com", PD_DNS_TYPE_A, 0, &a, 1, 1, 5000));
    assert_int_equal(ttl_at(c, "b.example.com", PD_DNS_TYPE_A, 5999), 1); /* last live ms */
    assert_false(hit(c, "b.example.com", PD_DNS_TYPE_A, 6000)); /* now == expiry: expired */
    assert_false(hit(c, "b.example.com", PD_DNS_TYPE_A, 5999)); /* and gone */
    /* A negative answer (NXDOMAIN, no records, ans NULL) expires the same way. */
    assert_true(put(c, "nx.example.com", PD_DNS_TYPE_A, PD_DNS_RCODE_NXDOMAIN, NULL, 0, 30, 0));
    uint16_t rcode = 0;
    size_t n = 9;
    struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS];
    assert_true(
        get(c, "nx.example.com", PD_DNS_TYPE_A, 29999, &rcode, out, PD_DNSA_MAX_ANSWERS, &n));
    assert_int_equal(rcode, PD_DNS_RCODE_NXDOMAIN);
    assert_int_equal(n, 0);
    assert_false(
        get(c, "nx.example.com", PD_DNS_TYPE_A, 30000, &rcode, out, PD_DNSA_MAX_ANSWERS, &n));
    pd_dnsa_free(c);
}

/* ---- refusals ---- */

static void test_ttl_zero_not_cached(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(8);
    struct pd_dns_answer a = rec_a(1, 2, 3, 4);
    assert_false(put(c, "z.example.com", PD_DNS_TYPE_A, 0, &a, 1, 0, 0));
    assert_int_equal(pd_dnsa_count(c), 0);
    assert_false(hit(c, "z.example.com", PD_DNS_TYPE_A, 0));
    /* ttl 0 for a key already cached removes it: the newest answer wins. */
    assert_true(put(c, "z.example.com", PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    assert_false(put(c, "z.example.com", PD_DNS_TYPE_A, 0, &a, 1, 0, 10));
    assert_false(hit(c, "z.example.com", PD_DNS_TYPE_A, 20));
    assert_int_equal(pd_dnsa_count(c), 0);
    pd_dnsa_free(c);
}

static void test_refused(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(8);
    struct pd_dns_answer a = rec_a(1, 2, 3, 4);
    /* rcodes other than NOERROR and NXDOMAIN. */
    assert_false(put(c, "r.example.com", PD_DNS_TYPE_A, PD_DNS_RCODE_SERVFAIL, &a, 1, 60, 0));
    assert_false(put(c, "r.example.com", PD_DNS_TYPE_A, PD_DNS_RCODE_REFUSED, NULL, 0, 60, 0));
    assert_false(put(c, "r.example.com", PD_DNS_TYPE_A, PD_DNS_RCODE_BADVERS, NULL, 0, 60, 0));
    /* Name lengths: 253 is cached, 254 and 0 are not. */
    char name[300];
    fill(name, 'a', 63, ".");
    fill(name + 64, 'b', 63, ".");
    fill(name + 128, 'c', 63, ".");
    fill(name + 192, 'd', 61, "");
    assert_int_equal(strlen(name), 253);
    assert_true(put(c, name, PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    assert_true(hit(c, name, PD_DNS_TYPE_A, 0));
    strcat(name, "e");
    assert_false(put(c, name, PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    assert_false(hit(c, name, PD_DNS_TYPE_A, 0));
    assert_false(pd_dnsa_put(c, "x", 0, PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    assert_false(pd_dnsa_get(c, "x", 0, PD_DNS_TYPE_A, 0, NULL, NULL, 0, NULL));
    /* Records the cache cannot hold. */
    struct pd_dns_answer mx = {.type = PD_DNS_TYPE_MX};
    assert_false(put(c, "r.example.com", PD_DNS_TYPE_MX, 0, &mx, 1, 60, 0));
    struct pd_dns_answer bad = rec_cname(NULL, "t.example.net");
    bad.target = NULL;
    assert_false(put(c, "r.example.com", PD_DNS_TYPE_A, 0, &bad, 1, 60, 0));
    bad = rec_cname(NULL, "t.example.net");
    bad.target_len = 0;
    assert_false(put(c, "r.example.com", PD_DNS_TYPE_A, 0, &bad, 1, 60, 0));
    char longname[300];
    memset(longname, 'a', 254);
    longname[254] = '\0';
    bad = rec_cname(NULL, longname);
    assert_false(put(c, "r.example.com", PD_DNS_TYPE_A, 0, &bad, 1, 60, 0));
    bad = rec_a(1, 1, 1, 1);
    bad.owner = longname;
    bad.owner_len = 254;
    assert_false(put(c, "r.example.com", PD_DNS_TYPE_A, 0, &bad, 1, 60, 0));
    bad.owner = NULL;
    bad.owner_len = 5;
    assert_false(put(c, "r.example.com", PD_DNS_TYPE_A, 0, &bad, 1, 60, 0));
    assert_false(put(c, "r.example.com", PD_DNS_TYPE_A, 0, NULL, 1, 60, 0));
    /* NULL arguments. */
    assert_false(pd_dnsa_put(NULL, "r", 1, PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    assert_false(pd_dnsa_put(c, NULL, 1, PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    size_t n = 7;
    assert_false(pd_dnsa_get(NULL, "r", 1, PD_DNS_TYPE_A, 0, NULL, NULL, 0, &n));
    assert_int_equal(n, 0);
    assert_false(pd_dnsa_get(c, NULL, 1, PD_DNS_TYPE_A, 0, NULL, NULL, 0, NULL));
    assert_false(hit(c, "r.example.com", PD_DNS_TYPE_A, 0));
    assert_false(hit(c, "r.example.com", PD_DNS_TYPE_MX, 0));
    assert_int_equal(pd_dnsa_count(c), 1); /* only the 253-byte name */
    assert_true(pd_dnsa_check(c));
    pd_dnsa_free(c);
}

static void test_too_many_answers(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(8);
    struct pd_dns_answer in[PD_DNSA_MAX_ANSWERS + 1];
    for (int k = 0; k <= PD_DNSA_MAX_ANSWERS; k++)
        in[k] = rec_a(10, 0, 0, (uint8_t)k);
    assert_true(put(c, "m.example.com", PD_DNS_TYPE_A, 0, in, PD_DNSA_MAX_ANSWERS, 60, 0));
    struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS + 1];
    size_t n = 0;
    assert_true(get(c, "m.example.com", PD_DNS_TYPE_A, 0, NULL, out, PD_DNSA_MAX_ANSWERS + 1, &n));
    assert_int_equal(n, PD_DNSA_MAX_ANSWERS);
    /* 17: not cached (never stored truncated), and the old 16-record entry is gone. */
    assert_false(put(c, "m.example.com", PD_DNS_TYPE_A, 0, in, PD_DNSA_MAX_ANSWERS + 1, 60, 0));
    assert_false(hit(c, "m.example.com", PD_DNS_TYPE_A, 0));
    assert_int_equal(pd_dnsa_count(c), 0);
    pd_dnsa_free(c);
}

/* ---- keys ---- */

static void test_replace(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(8);
    struct pd_dns_answer a1 = rec_a(1, 1, 1, 1), a2[2] = {rec_a(2, 2, 2, 2), rec_a(3, 3, 3, 3)};
    assert_true(put(c, "r.example.com", PD_DNS_TYPE_A, 0, &a1, 1, 10, 0));
    assert_true(put(c, "r.example.com", PD_DNS_TYPE_A, 0, a2, 2, 20, 5000));
    assert_int_equal(pd_dnsa_count(c), 1);
    struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS];
    size_t n = 0;
    uint16_t rcode = 9;
    assert_true(get(c, "r.example.com", PD_DNS_TYPE_A, 5000, &rcode, out, PD_DNSA_MAX_ANSWERS, &n));
    assert_int_equal(n, 2);
    assert_int_equal(out[0].addr[0], 2);
    assert_int_equal(out[1].addr[0], 3);
    assert_int_equal(out[0].ttl, 20);
    /* The new expiry applies (the old one, at 10000, does not). */
    assert_true(hit(c, "r.example.com", PD_DNS_TYPE_A, 24999));
    /* NOERROR replaced by NXDOMAIN. */
    assert_true(put(c, "r.example.com", PD_DNS_TYPE_A, PD_DNS_RCODE_NXDOMAIN, NULL, 0, 5, 6000));
    assert_true(get(c, "r.example.com", PD_DNS_TYPE_A, 6000, &rcode, out, PD_DNSA_MAX_ANSWERS, &n));
    assert_int_equal(rcode, PD_DNS_RCODE_NXDOMAIN);
    assert_int_equal(n, 0);
    assert_int_equal(pd_dnsa_count(c), 1);
    assert_true(pd_dnsa_check(c));
    pd_dnsa_free(c);
}

/* put() given the cache's own output (strings pointing into the entry it replaces). */
static void test_reput_own_output(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(1); /* one slot: the replacement reuses the same storage */
    struct pd_dns_answer in[3] = {rec_cname(NULL, "a.cdn.net"),
                                  rec_cname("a.cdn.net", "b.edge.net"), rec_a(7, 7, 7, 7)};
    in[2].owner = "b.edge.net";
    in[2].owner_len = 10;
    assert_true(put(c, "w.example.com", PD_DNS_TYPE_A, 0, in, 3, 60, 0));
    struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS];
    size_t n = 0;
    assert_true(get(c, "w.example.com", PD_DNS_TYPE_A, 0, NULL, out, PD_DNSA_MAX_ANSWERS, &n));
    /* Drop the first record: strings shift within the arena. */
    assert_true(put(c, "w.example.com", PD_DNS_TYPE_A, 0, out + 1, 2, 30, 0));
    struct pd_dns_answer again[PD_DNSA_MAX_ANSWERS];
    assert_true(get(c, "w.example.com", PD_DNS_TYPE_A, 0, NULL, again, PD_DNSA_MAX_ANSWERS, &n));
    assert_int_equal(n, 2);
    assert_text(again[0].owner, again[0].owner_len, "a.cdn.net");
    assert_text(again[0].target, again[0].target_len, "b.edge.net");
    assert_text(again[1].owner, again[1].owner_len, "b.edge.net");
    assert_int_equal(again[1].addr[0], 7);
    assert_int_equal(again[1].ttl, 30);
    /* The name itself may come from the cache too: a CNAME target used as the next key. */
    assert_true(pd_dnsa_put(c, again[0].target, again[0].target_len, PD_DNS_TYPE_A, 0, again + 1, 1,
                            30, 0));
    assert_true(hit(c, "b.edge.net", PD_DNS_TYPE_A, 0));
    assert_int_equal(pd_dnsa_count(c), 1);
    pd_dnsa_free(c);
}

static void test_qtype_keys(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(8);
    struct pd_dns_answer a = rec_a(1, 2, 3, 4), aaaa = rec_aaaa(9);
    assert_true(put(c, "q.example.com", PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    assert_false(hit(c, "q.example.com", PD_DNS_TYPE_AAAA, 0));
    assert_true(put(c, "q.example.com", PD_DNS_TYPE_AAAA, 0, &aaaa, 1, 30, 0));
    assert_int_equal(pd_dnsa_count(c), 2);
    struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS];
    size_t n = 0;
    assert_true(get(c, "q.example.com", PD_DNS_TYPE_A, 0, NULL, out, PD_DNSA_MAX_ANSWERS, &n));
    assert_int_equal(out[0].type, PD_DNS_TYPE_A);
    assert_int_equal(out[0].ttl, 60);
    assert_true(get(c, "q.example.com", PD_DNS_TYPE_AAAA, 0, NULL, out, PD_DNSA_MAX_ANSWERS, &n));
    assert_int_equal(out[0].type, PD_DNS_TYPE_AAAA);
    assert_int_equal(out[0].ttl, 30);
    /* Removing one (refused put) leaves the other. */
    assert_false(put(c, "q.example.com", PD_DNS_TYPE_AAAA, 0, &aaaa, 1, 0, 0));
    assert_true(hit(c, "q.example.com", PD_DNS_TYPE_A, 0));
    assert_false(hit(c, "q.example.com", PD_DNS_TYPE_AAAA, 0));
    /* A name that is a prefix of another is a different key. */
    assert_false(hit(c, "q.example.co", PD_DNS_TYPE_A, 0));
    pd_dnsa_free(c);
}

/* Names are canonical before they reach the cache: it compares bytes, so case matters here. */
static void test_bytes_not_case(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(8);
    struct pd_dns_answer a = rec_a(1, 2, 3, 4), b = rec_a(5, 6, 7, 8);
    assert_true(put(c, "example.com", PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    assert_false(hit(c, "Example.com", PD_DNS_TYPE_A, 0));
    assert_false(hit(c, "EXAMPLE.COM", PD_DNS_TYPE_A, 0));
    assert_true(put(c, "Example.com", PD_DNS_TYPE_A, 0, &b, 1, 60, 0));
    assert_int_equal(pd_dnsa_count(c), 2);
    struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS];
    size_t n = 0;
    assert_true(get(c, "example.com", PD_DNS_TYPE_A, 0, NULL, out, PD_DNSA_MAX_ANSWERS, &n));
    assert_int_equal(out[0].addr[0], 1);
    assert_true(get(c, "Example.com", PD_DNS_TYPE_A, 0, NULL, out, PD_DNSA_MAX_ANSWERS, &n));
    assert_int_equal(out[0].addr[0], 5);
    pd_dnsa_free(c);
}

/* ---- eviction ---- */

static void test_lru_order(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(3);
    struct pd_dns_answer a = rec_a(1, 2, 3, 4);
    uint64_t t = 0;
    assert_true(put(c, "a", PD_DNS_TYPE_A, 0, &a, 1, 600, t++));
    assert_true(put(c, "b", PD_DNS_TYPE_A, 0, &a, 1, 600, t++));
    assert_true(put(c, "c", PD_DNS_TYPE_A, 0, &a, 1, 600, t++));
    assert_int_equal(pd_dnsa_count(c), 3);
    /* Order (most recent first): c b a. A hit on a: a c b. */
    assert_true(hit(c, "a", PD_DNS_TYPE_A, t++));
    assert_true(put(c, "d", PD_DNS_TYPE_A, 0, &a, 1, 600, t++)); /* evicts b: d a c */
    assert_int_equal(pd_dnsa_count(c), 3);
    assert_false(hit(c, "b", PD_DNS_TYPE_A, t));
    assert_true(put(c, "e", PD_DNS_TYPE_A, 0, &a, 1, 600, t++)); /* evicts c: e d a */
    assert_false(hit(c, "c", PD_DNS_TYPE_A, t));
    /* A replacement counts as a use: a put for a makes it most recent: a e d. */
    assert_true(put(c, "a", PD_DNS_TYPE_A, 0, &a, 1, 600, t++));
    assert_true(put(c, "f", PD_DNS_TYPE_A, 0, &a, 1, 600, t++)); /* evicts d: f a e */
    assert_false(hit(c, "d", PD_DNS_TYPE_A, t));
    assert_true(hit(c, "e", PD_DNS_TYPE_A, t)); /* e f a */
    assert_true(put(c, "g", PD_DNS_TYPE_A, 0, &a, 1, 600, t++)); /* evicts a: g e f */
    assert_false(hit(c, "a", PD_DNS_TYPE_A, t));
    assert_true(hit(c, "e", PD_DNS_TYPE_A, t));
    assert_true(hit(c, "f", PD_DNS_TYPE_A, t));
    assert_true(hit(c, "g", PD_DNS_TYPE_A, t));
    assert_int_equal(pd_dnsa_count(c), 3);
    assert_true(pd_dnsa_check(c));
    /* max_entries 1: each new key replaces the only entry. */
    struct pd_dnsa *one = mk(1);
    assert_true(put(one, "x", PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    assert_true(put(one, "y", PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    assert_false(hit(one, "x", PD_DNS_TYPE_A, 0));
    assert_true(hit(one, "y", PD_DNS_TYPE_A, 0));
    assert_int_equal(pd_dnsa_count(one), 1);
    pd_dnsa_free(one);
    pd_dnsa_free(c);
}

static void test_expired_evicted_first(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(3);
    struct pd_dns_answer a = rec_a(1, 2, 3, 4);
    assert_true(put(c, "a", PD_DNS_TYPE_A, 0, &a, 1, 100, 0));
    assert_true(put(c, "c", PD_DNS_TYPE_A, 0, &a, 1, 100, 0));
    assert_true(put(c, "b", PD_DNS_TYPE_A, 0, &a, 1, 5, 0));
    /* b is the most recently used (a the least), but b has expired by 6000: b goes. */
    assert_true(hit(c, "b", PD_DNS_TYPE_A, 1000));
    assert_true(put(c, "d", PD_DNS_TYPE_A, 0, &a, 1, 100, 6000));
    assert_int_equal(pd_dnsa_count(c), 3);
    assert_true(hit(c, "a", PD_DNS_TYPE_A, 6000));
    assert_true(hit(c, "c", PD_DNS_TYPE_A, 6000));
    assert_true(hit(c, "d", PD_DNS_TYPE_A, 6000));
    /* Of two expired entries, the one that expired first goes. Order now: d c a. */
    assert_true(put(c, "e", PD_DNS_TYPE_A, 0, &a, 1, 2, 7000)); /* evicts a (LRU, none expired) */
    assert_false(hit(c, "a", PD_DNS_TYPE_A, 7000));
    assert_true(put(c, "f", PD_DNS_TYPE_A, 0, &a, 1, 3, 7000)); /* evicts c: f e d */
    /* At 20000 e (expiry 9000) and f (10000) have expired: e, the first, goes. */
    assert_true(put(c, "g", PD_DNS_TYPE_A, 0, &a, 1, 100, 20000));
    assert_true(pd_dnsa_check(c));
    assert_true(hit(c, "d", PD_DNS_TYPE_A, 20000)); /* d (106000) is live and was LRU, kept */
    assert_true(hit(c, "g", PD_DNS_TYPE_A, 20000));
    assert_false(hit(c, "e", PD_DNS_TYPE_A, 20000)); /* evicted */
    assert_int_equal(pd_dnsa_count(c), 3); /* d, f (expired, still stored), g */
    assert_false(hit(c, "f", PD_DNS_TYPE_A, 20000)); /* expired: removed on read */
    assert_int_equal(pd_dnsa_count(c), 2);
    assert_true(pd_dnsa_check(c));
    pd_dnsa_free(c);
}

static void test_clear(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(4);
    struct pd_dns_answer a = rec_a(1, 2, 3, 4);
    char name[32];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "c%d.example.com", i);
        assert_true(put(c, name, PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    }
    assert_int_equal(pd_dnsa_count(c), 4);
    pd_dnsa_clear(c);
    assert_int_equal(pd_dnsa_count(c), 0);
    assert_true(pd_dnsa_check(c));
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "c%d.example.com", i);
        assert_false(hit(c, name, PD_DNS_TYPE_A, 0));
    }
    /* Usable again, up to the same bound. */
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "d%d.example.com", i);
        assert_true(put(c, name, PD_DNS_TYPE_A, 0, &a, 1, 60, 0));
    }
    assert_int_equal(pd_dnsa_count(c), 4);
    assert_true(hit(c, "d5.example.com", PD_DNS_TYPE_A, 0));
    assert_false(hit(c, "d0.example.com", PD_DNS_TYPE_A, 0));
    assert_true(pd_dnsa_check(c));
    pd_dnsa_free(c);
}

/* out[] smaller than the stored answer: the first max records, *n = how many copied. */
static void test_partial_read(void **state)
{
    (void)state;
    struct pd_dnsa *c = mk(4);
    struct pd_dns_answer in[5];
    for (int k = 0; k < 5; k++)
        in[k] = rec_a(10, 0, 0, (uint8_t)k);
    assert_true(put(c, "p.example.com", PD_DNS_TYPE_A, 0, in, 5, 60, 0));
    struct pd_dns_answer out[3];
    memset(out, 0x55, sizeof out);
    size_t n = 0;
    uint16_t rcode = 9;
    assert_true(get(c, "p.example.com", PD_DNS_TYPE_A, 0, &rcode, out, 2, &n));
    assert_int_equal(n, 2);
    assert_int_equal(rcode, 0);
    assert_int_equal(out[0].addr[3], 0);
    assert_int_equal(out[1].addr[3], 1);
    assert_int_equal(out[2].type, 0x5555); /* not written past max */
    /* max 0 (out may then be NULL): a hit that copies nothing but the rcode. */
    rcode = 9;
    assert_true(get(c, "p.example.com", PD_DNS_TYPE_A, 0, &rcode, NULL, 0, &n));
    assert_int_equal(n, 0);
    assert_int_equal(rcode, 0);
    assert_true(get(c, "p.example.com", PD_DNS_TYPE_A, 0, &rcode, NULL, 5, &n)); /* NULL out */
    assert_int_equal(n, 0);
    pd_dnsa_free(c);
}

/* ---- stress ---- */

#define ST_NAMES 1500
#define ST_MAX 1000
#define ST_OPS 100000
#define ST_STR 16
#define ST_HOT 1200 /* keys */

struct st_rec {
    uint16_t type;
    uint8_t addr[16];
    char target[ST_STR], owner[ST_STR]; /* "" when none */
};

struct st_model {
    bool valid; /* the last put for this key was stored */
    uint16_t rcode;
    uint32_t ttl;
    uint64_t expires;
    size_t n;
    struct st_rec rec[PD_DNSA_MAX_ANSWERS + 1];
};

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint32_t below(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

static void random_string(char *buf)
{
    /* Few distinct strings, so entries share them; at most 12 bytes: 32 x 13 < the arena. */
    snprintf(buf, ST_STR, "t%u.c%u.net", below(10), below(10));
}

static void test_stress(void **state)
{
    (void)state;
    static struct st_model model[ST_NAMES * 2];
    memset(model, 0, sizeof model);
    struct pd_dnsa *c = mk(ST_MAX);
    uint64_t now = 1000;
    size_t hits = 0, live_misses = 0, puts_ok = 0;
    for (int op = 0; op < ST_OPS; op++) {
        /* Mostly a hot set larger than the cache (so live entries get evicted), some cold keys;
         * ~2.5 ms a step: a hot key comes back every few seconds, within TTLs of 1..30 s. */
        now += below(6);
        uint32_t k = below(10) < 7 ? below(ST_HOT) : below(ST_NAMES * 2);
        uint16_t qtype = k % 2 ? PD_DNS_TYPE_AAAA : PD_DNS_TYPE_A;
        char name[32];
        snprintf(name, sizeof name, "h%u.example.com", k / 2);
        struct st_model *m = &model[k];
        if (below(2) == 0) {
            struct st_model w = {0};
            uint32_t r = below(20);
            w.rcode = r == 0 ? PD_DNS_RCODE_SERVFAIL : r < 4 ? PD_DNS_RCODE_NXDOMAIN : 0;
            w.ttl = below(10) == 0 ? 0 : below(30) + 1;
            w.n = below(40) == 0 ? PD_DNSA_MAX_ANSWERS + 1 : below(PD_DNSA_MAX_ANSWERS + 1);
            struct pd_dns_answer in[PD_DNSA_MAX_ANSWERS + 1];
            /* Records built in scratch buffers that are scribbled over after the put. */
            static struct st_rec scratch[PD_DNSA_MAX_ANSWERS + 1];
            for (size_t j = 0; j < w.n; j++) {
                struct st_rec *s = &w.rec[j];
                uint32_t t = below(3);
                s->type = t == 0 ? PD_DNS_TYPE_CNAME : t == 1 ? PD_DNS_TYPE_A : PD_DNS_TYPE_AAAA;
                if (s->type != PD_DNS_TYPE_CNAME) {
                    for (int b = 0; b < (s->type == PD_DNS_TYPE_A ? 4 : 16); b++)
                        s->addr[b] = (uint8_t)rnd();
                } else {
                    random_string(s->target);
                }
                if (below(2))
                    random_string(s->owner);
                scratch[j] = *s;
                in[j] = (struct pd_dns_answer){.type = s->type, .ttl = 1};
                memcpy(in[j].addr, s->addr, 16);
                if (s->target[0]) {
                    in[j].target = scratch[j].target;
                    in[j].target_len = strlen(s->target);
                }
                if (s->owner[0]) {
                    in[j].owner = scratch[j].owner;
                    in[j].owner_len = strlen(s->owner);
                }
            }
            bool want = w.ttl > 0 && w.rcode != PD_DNS_RCODE_SERVFAIL && w.n <= PD_DNSA_MAX_ANSWERS;
            bool ok = put(c, name, qtype, w.rcode, w.n ? in : NULL, w.n, w.ttl, now);
            memset(scratch, 'X', sizeof scratch);
            assert_int_equal(ok, want);
            w.valid = ok;
            w.expires = now + (uint64_t)w.ttl * 1000;
            *m = w;
            puts_ok += ok;
        } else {
            struct pd_dns_answer out[PD_DNSA_MAX_ANSWERS];
            size_t n = 99;
            uint16_t rcode = 999;
            bool h = get(c, name, qtype, now, &rcode, out, PD_DNSA_MAX_ANSWERS, &n);
            if (h) {
                hits++;
                /* Every hit is exactly the last put for the key, live. */
                assert_true(m->valid);
                assert_true(now < m->expires);
                assert_int_equal(rcode, m->rcode);
                assert_int_equal(n, m->n);
                uint64_t left = m->expires - now;
                uint32_t want_ttl = (uint32_t)((left + 999) / 1000);
                for (size_t j = 0; j < n; j++) {
                    const struct st_rec *s = &m->rec[j];
                    assert_int_equal(out[j].type, s->type);
                    assert_int_equal(out[j].ttl, want_ttl);
                    assert_memory_equal(out[j].addr, s->addr, 16);
                    if (s->target[0])
                        assert_text(out[j].target, out[j].target_len, s->target);
                    else
                        assert_null(out[j].target);
                    if (s->owner[0])
                        assert_text(out[j].owner, out[j].owner_len, s->owner);
                    else
                        assert_null(out[j].owner);
                }
            } else {
                assert_int_equal(n, 0);
                if (m->valid && now < m->expires)
                    live_misses++; /* evicted: allowed */
                m->valid = false; /* a miss is final until the next put */
            }
        }
        assert_true(pd_dnsa_count(c) <= ST_MAX);
        if (op % 1000 == 0)
            assert_true(pd_dnsa_check(c));
    }
    assert_true(pd_dnsa_check(c));
    print_message("stress: %d ops, %zu stored puts, %zu hits, %zu live keys evicted, %zu entries\n",
                  ST_OPS, puts_ok, hits, live_misses, pd_dnsa_count(c));
    assert_true(hits > 5000); /* the run exercised hits, not only misses */
    assert_true(live_misses > 0); /* and eviction of live entries */
    pd_dnsa_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_invalid),           cmocka_unit_test(test_memory),
        cmocka_unit_test(test_round_trip_a),          cmocka_unit_test(test_round_trip_aaaa),
        cmocka_unit_test(test_cname_chain),           cmocka_unit_test(test_arena_limit),
        cmocka_unit_test(test_ttl_countdown),         cmocka_unit_test(test_expiry_boundary),
        cmocka_unit_test(test_ttl_zero_not_cached),   cmocka_unit_test(test_refused),
        cmocka_unit_test(test_too_many_answers),      cmocka_unit_test(test_replace),
        cmocka_unit_test(test_reput_own_output),      cmocka_unit_test(test_qtype_keys),
        cmocka_unit_test(test_bytes_not_case),        cmocka_unit_test(test_lru_order),
        cmocka_unit_test(test_expired_evicted_first), cmocka_unit_test(test_clear),
        cmocka_unit_test(test_partial_read),          cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
