/* test_dns_filter.c - unit tests for gateway/dns_filter.{h,c}: the decision for one query against a
 * compiled policy (checks in the documented order, rcodes, refusal codes, local answers) and the
 * dns section of the policy (schema errors, defaults, --check description). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/dns_filter.h"
#include "gateway/policy.h"

static struct pd_gw_policy *compile_text(const char *text, struct pd_err *err)
{
    pd_err_clear(err);
    struct pd_config_doc *doc =
        pd_config_load_buffer("p.yaml", text, strlen(text), PD_CONFIG_AUTO, err);
    if (!doc)
        return NULL;
    struct pd_gw_policy *p = pd_gw_policy_compile(doc, NULL, err);
    pd_config_doc_free(doc);
    return p;
}

static struct pd_gw_policy *policy(const char *text)
{
    struct pd_err err;
    struct pd_gw_policy *p = compile_text(text, &err);
    if (!p)
        fail_msg("unexpected config error: %s", err.msg);
    return p;
}

static const char *BASE = "allow:\n"
                          "  - host: api.example.com\n"
                          "  - host: \"*.bench.test\"\n"
                          "upstream:\n"
                          "  hosts:\n"
                          "    api.example.com: [\"192.0.2.7\", \"2001:db8::7\"]\n";

/* A query built by hand: id 0x1234, RD, one question. */
static size_t query(uint8_t *q, const char *name, uint16_t type, uint16_t qclass)
{
    static const uint8_t hdr[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(q, hdr, sizeof hdr);
    size_t at = sizeof hdr;
    const char *s = name;
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        q[at++] = (uint8_t)n;
        memcpy(q + at, s, n);
        at += n;
        s += n + (dot ? 1 : 0);
    }
    q[at++] = 0;
    q[at++] = (uint8_t)(type >> 8);
    q[at++] = (uint8_t)type;
    q[at++] = (uint8_t)(qclass >> 8);
    q[at++] = (uint8_t)qclass;
    return at;
}

struct run {
    size_t n;
    uint8_t out[65535];
    struct pd_dnsf_result r;
    struct pd_dns_msg m;
};

static void run(const struct pd_gw_policy *p, struct pd_dns_guard *g, const char *name,
                uint16_t type, struct run *o)
{
    uint8_t q[512];
    size_t ql = query(q, name, type, PD_DNS_CLASS_IN);
    o->n = pd_dnsf_answer(p, g, q, ql, false, 1000, o->out, sizeof o->out, &o->r);
    if (o->n) {
        struct pd_err err;
        assert_int_equal(pd_dns_parse_response(o->out, o->n, &o->m, &err), PD_DNS_OK);
        assert_int_equal(o->m.hdr.id, 0x1234);
        assert_int_equal(o->m.hdr.rcode, o->r.rcode & 0xf);
    }
}

static void test_allowed_answers(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy(BASE);
    static struct run o;
    run(p, NULL, "api.example.com", PD_DNS_TYPE_A, &o);
    assert_int_equal(o.r.decision, PD_DNSF_ALLOW);
    assert_null(o.r.error);
    assert_string_equal(o.r.rule, "api.example.com");
    assert_int_equal(o.r.rcode, PD_DNS_RCODE_NOERROR);
    assert_int_equal(o.r.answers, 1);
    uint8_t a[4];
    assert_true(pd_dns_rr_a(&o.m, &o.m.rr[0], a));
    assert_memory_equal(a, "\xc0\x00\x02\x07", 4); /* upstream.hosts, not the proxy answer */
    assert_int_equal(o.m.rr[0].ttl, PD_GW_DNS_DEFAULT_TTL);
    run(p, NULL, "api.example.com", PD_DNS_TYPE_AAAA, &o);
    assert_int_equal(o.r.answers, 1);
    /* Allowed by the wildcard, listed nowhere: the proxy answer 127.0.0.1; no AAAA by default. */
    run(p, NULL, "x.bench.test", PD_DNS_TYPE_A, &o);
    assert_true(pd_dns_rr_a(&o.m, &o.m.rr[0], a));
    assert_memory_equal(a, "\x7f\x00\x00\x01", 4);
    assert_string_equal(o.r.rule, "*.bench.test");
    run(p, NULL, "x.bench.test", PD_DNS_TYPE_AAAA, &o);
    assert_int_equal(o.r.decision, PD_DNSF_ALLOW);
    assert_int_equal(o.r.answers, 0);
    run(p, NULL, "x.bench.test", PD_DNS_TYPE_HTTPS, &o);
    assert_int_equal(o.r.rcode, PD_DNS_RCODE_NOERROR);
    assert_int_equal(o.r.answers, 0);
    pd_gw_policy_unref(p);
}

static void test_denials_in_order(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy(BASE);
    static struct run o;
    const char *names[] = {"evil.example", "bench.test", "evilbench.test", "example.com"};
    for (size_t i = 0; i < 4; i++) {
        run(p, NULL, names[i], PD_DNS_TYPE_A, &o);
        assert_int_equal(o.r.decision, PD_DNSF_DENY);
        assert_string_equal(o.r.error, "name_not_allowed");
        assert_int_equal(o.r.rcode, PD_DNS_RCODE_NXDOMAIN);
        assert_int_equal(o.m.hdr.ancount, 0);
    }
    /* A name check comes before the type check: a denied name with a refused type is NXDOMAIN. */
    run(p, NULL, "evil.example", PD_DNS_TYPE_TXT, &o);
    assert_string_equal(o.r.error, "name_not_allowed");
    run(p, NULL, "api.example.com", PD_DNS_TYPE_TXT, &o);
    assert_string_equal(o.r.error, "type_not_allowed");
    assert_int_equal(o.r.rcode, PD_DNS_RCODE_REFUSED);
    assert_non_null(strstr(o.r.reason, "TXT"));
    /* Names no allowlist can name. */
    run(p, NULL, "127.0.0.1", PD_DNS_TYPE_A, &o);
    assert_string_equal(o.r.error, "name_invalid");
    run(p, NULL, "", PD_DNS_TYPE_NS, &o);
    assert_string_equal(o.r.error, "name_invalid");
    run(p, NULL, "a*b.bench.test", PD_DNS_TYPE_A, &o);
    assert_string_equal(o.r.error, "name_invalid");
    assert_non_null(strstr(o.r.reason, "a\\042b.bench.test"));
    pd_gw_policy_unref(p);
}

static void test_guard_codes(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof text,
             "%sdns:\n  max_name_length: 40\n  unique_subdomains_per_minute: 2\n", BASE);
    struct pd_gw_policy *p = policy(text);
    struct pd_err err;
    struct pd_dns_guard *g = pd_dns_guard_new(16, &err);
    assert_non_null(g);
    static struct run o;
    run(p, g, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bench.test", PD_DNS_TYPE_A, &o);
    assert_string_equal(o.r.error, "name_too_long");
    assert_int_equal(o.r.rcode, PD_DNS_RCODE_REFUSED);
    run(p, g, "q8zx3kf9wm2p7vj4rt.bench.test", PD_DNS_TYPE_A, &o);
    assert_string_equal(o.r.error, "label_entropy");
    run(p, g, "one.bench.test", PD_DNS_TYPE_A, &o);
    assert_int_equal(o.r.decision, PD_DNSF_ALLOW);
    run(p, g, "two.bench.test", PD_DNS_TYPE_A, &o);
    assert_int_equal(o.r.decision, PD_DNSF_ALLOW);
    run(p, g, "three.bench.test", PD_DNS_TYPE_A, &o);
    assert_string_equal(o.r.error, "subdomain_burst");
    run(p, g, "one.bench.test", PD_DNS_TYPE_A, &o);
    assert_int_equal(o.r.decision, PD_DNSF_ALLOW);
    pd_dns_guard_free(g);
    pd_gw_policy_unref(p);

    snprintf(text, sizeof text, "%sdns:\n  max_label_length: 10\n", BASE);
    p = policy(text);
    run(p, NULL, "abcdefghijk.bench.test", PD_DNS_TYPE_A, &o);
    assert_string_equal(o.r.error, "label_too_long");
    run(p, NULL, "api.example.com", PD_DNS_TYPE_A, &o); /* exact rule: never label-checked */
    assert_int_equal(o.r.decision, PD_DNSF_ALLOW);
    pd_gw_policy_unref(p);
}

static void test_invalid_messages(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy(BASE);
    static uint8_t out[65535];
    struct pd_dnsf_result r;
    uint8_t q[512];
    assert_int_equal(pd_dnsf_answer(p, NULL, q, 5, false, 0, out, sizeof out, &r), 0);
    assert_int_equal(r.decision, PD_DNSF_DROP);
    size_t ql = query(q, "api.example.com", PD_DNS_TYPE_A, 3 /* CH */);
    assert_true(pd_dnsf_answer(p, NULL, q, ql, false, 0, out, sizeof out, &r) > 0);
    assert_string_equal(r.error, "class_not_in");
    assert_int_equal(r.rcode, PD_DNS_RCODE_REFUSED);
    ql = query(q, "api.example.com", PD_DNS_TYPE_A, PD_DNS_CLASS_IN);
    q[5] = 2; /* qdcount 2 */
    assert_true(pd_dnsf_answer(p, NULL, q, ql, false, 0, out, sizeof out, &r) > 0);
    assert_string_equal(r.error, "formerr");
    assert_int_equal(r.rcode, PD_DNS_RCODE_FORMERR);
    q[5] = 1;
    q[2] |= 0x80; /* a response */
    assert_int_equal(pd_dnsf_answer(p, NULL, q, ql, false, 0, out, sizeof out, &r), 0);
    pd_gw_policy_unref(p);
}

static void test_deny_refused_and_answers_config(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof text,
             "%sdns:\n  deny_rcode: refused\n  answer_a: 10.0.0.53\n  answer_aaaa: \"fd00::53\"\n"
             "  ttl: 5\n  types: [A, AAAA, TXT]\n",
             BASE);
    struct pd_gw_policy *p = policy(text);
    static struct run o;
    run(p, NULL, "evil.example", PD_DNS_TYPE_A, &o);
    assert_int_equal(o.r.rcode, PD_DNS_RCODE_REFUSED);
    run(p, NULL, "x.bench.test", PD_DNS_TYPE_AAAA, &o);
    assert_int_equal(o.r.answers, 1);
    assert_int_equal(o.m.rr[0].ttl, 5);
    run(p, NULL, "x.bench.test", PD_DNS_TYPE_TXT, &o);
    assert_int_equal(o.r.decision, PD_DNSF_ALLOW);
    run(p, NULL, "x.bench.test", PD_DNS_TYPE_HTTPS, &o);
    assert_string_equal(o.r.error, "type_not_allowed");
    pd_gw_policy_unref(p);
}

static void test_dns_section_errors(void **state)
{
    (void)state;
    const struct {
        const char *dns, *want;
    } cases[] = {
        {"  types: [A, BOGUS]\n", "dns.types[1]"},
        {"  deny_rcode: servfail\n", "dns.deny_rcode"},
        {"  answer_a: \"::1\"\n", "expected an IPv4 address"},
        {"  listen: [\"localhost:53\"]\n", "dns.listen[0]"},
        {"  max_label_length: 64\n", "dns.max_label_length"},
        {"  hosts_file: /nonexistent/paddock-hosts\n", "dns.hosts_file"},
        {"  tipes: [A]\n", "did you mean 'types'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "%sdns:\n%s", BASE, cases[i].dns);
        struct pd_err err;
        struct pd_gw_policy *p = compile_text(text, &err);
        if (p) {
            pd_gw_policy_unref(p);
            fail_msg("case %zu compiled", i);
        }
        if (!strstr(err.msg, cases[i].want))
            fail_msg("case %zu: '%s' does not mention '%s'", i, err.msg, cases[i].want);
    }
}

static void test_describe(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy(BASE);
    json_t *j = pd_gw_policy_describe(p);
    assert_non_null(j);
    json_t *d = json_object_get(j, "dns");
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "deny_rcode")), "nxdomain");
    assert_int_equal(json_array_size(json_object_get(d, "types")), 5);
    assert_string_equal(json_string_value(json_object_get(d, "answer_a")), "127.0.0.1");
    assert_true(json_is_null(json_object_get(d, "answer_aaaa")));
    json_decref(j);
    pd_gw_policy_unref(p);
}

static void test_forward_mode_decision(void **state)
{
    (void)state;
    char text[1024];
    snprintf(
        text, sizeof text,
        "allow:\n  - host: api.example.com\n  - host: \"*.corp.test\"\n    allow_private: true\n"
        "upstream:\n  hosts:\n    api.example.com: [\"192.0.2.7\"]\n"
        "dns:\n  mode: forward\n  upstreams: [\"127.0.0.1:5300\", \"[::1]\"]\n");
    struct pd_gw_policy *p = policy(text);
    const struct pd_gw_dns *d = pd_gw_policy_dns(p);
    assert_true(d->forward);
    assert_int_equal(d->nupstreams, 2);
    assert_int_equal(d->upstreams[0].port, 5300);
    assert_int_equal(d->upstreams[1].port, 53);
    assert_int_equal(d->upstreams[1].addr.family, AF_INET6);
    static struct run o;
    /* Listed in upstream.hosts: answered locally even in mode forward. */
    run(p, NULL, "api.example.com", PD_DNS_TYPE_A, &o);
    assert_false(o.r.forward);
    assert_int_equal(o.r.answers, 1);
    /* Allowed, listed nowhere: to be resolved upstream; nothing built yet. */
    run(p, NULL, "db.corp.test", PD_DNS_TYPE_A, &o);
    assert_true(o.r.forward);
    assert_true(o.r.allow_private);
    assert_int_equal(o.n, 0);
    assert_int_equal(o.r.decision, PD_DNSF_ALLOW);
    /* Denied names are never handed to the forwarder. */
    run(p, NULL, "evil.example", PD_DNS_TYPE_A, &o);
    assert_false(o.r.forward);
    assert_int_equal(o.r.rcode, PD_DNS_RCODE_NXDOMAIN);
    pd_gw_policy_unref(p);
    struct pd_err err;
    struct pd_gw_policy *bad =
        compile_text("allow: []\ndns:\n  upstreams: [\"10.0.0.1:0\"]\n", &err);
    assert_null(bad);
    assert_non_null(strstr(err.msg, "dns.upstreams[0]"));
    bad = compile_text("allow: []\ndns:\n  min_ttl: 100\n  max_ttl: 10\n", &err);
    assert_null(bad);
    assert_non_null(strstr(err.msg, "dns.min_ttl (100) is above dns.max_ttl (10)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_answers),
        cmocka_unit_test(test_denials_in_order),
        cmocka_unit_test(test_guard_codes),
        cmocka_unit_test(test_invalid_messages),
        cmocka_unit_test(test_deny_refused_and_answers_config),
        cmocka_unit_test(test_dns_section_errors),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_forward_mode_decision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
