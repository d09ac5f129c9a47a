/*
 * fuzz_dns_filter.c - libFuzzer target for the DNS filter's decision path (gateway/dns_filter.h):
 * arbitrary bytes as a query, over UDP and over TCP, against a fixed policy with exact and wildcard
 * rules, upstream.hosts, tight tunnelling limits and a burst tracker. Invariants:
 *  - nothing is sent back exactly when the decision is DROP;
 *  - every response to a valid query (FORMERR and NOTIMP: the header) parses as a response with the
 * query's id, the rcode the result reports and at most the answers the result reports; over UDP it
 * is at most 512 bytes unless the query had EDNS;
 *  - an allowed query names a rule and has no error; any other has an error code and a reason with
 * no control characters; a name the policy does not allow is never answered with records.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "gateway/dns_filter.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pd_gw_policy *policy;
static struct pd_dns_guard *guard;

static const char CONFIG[] = "allow:\n"
                             "  - host: api.example.com\n"
                             "  - host: \"*.bench.test\"\n"
                             "upstream:\n"
                             "  hosts:\n"
                             "    api.example.com: [\"192.0.2.7\", \"2001:db8::7\"]\n"
                             "dns:\n"
                             "  max_name_length: 60\n"
                             "  unique_subdomains_per_minute: 20\n"
                             "  answer_aaaa: \"::1\"\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pd_log_set_level(PD_LOG_OFF);
    struct pd_err err;
    struct pd_config_doc *doc =
        pd_config_load_buffer("fuzz.yaml", CONFIG, sizeof CONFIG - 1, PD_CONFIG_AUTO, &err);
    policy = doc ? pd_gw_policy_compile(doc, NULL, &err) : NULL;
    pd_config_doc_free(doc);
    guard = pd_dns_guard_new(64, &err);
    if (!policy || !guard) {
        fprintf(stderr, "fuzz_dns_filter setup: %s\n", err.msg);
        abort();
    }
    return 0;
}

static void check(const uint8_t *data, size_t size, bool tcp)
{
    static uint8_t out[65535];
    struct pd_dnsf_result r;
    size_t n = pd_dnsf_answer(policy, guard, data, size, tcp, 1000, out, sizeof out, &r);
    if ((n == 0) != (r.decision == PD_DNSF_DROP))
        abort();
    for (const char *c = r.reason; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            abort();
    if (r.decision == PD_DNSF_ALLOW ? (r.error || !r.rule) : !r.error)
        abort();
    if (n == 0)
        return;
    struct pd_dns_msg q, m;
    struct pd_err err;
    pd_dns_parse_query(data, size, &q, &err);
    if (r.decision == PD_DNSF_INVALID) {
        /* FORMERR may carry no question and NOTIMP echoes the query's opcode, both of which a
         * response parser rightly refuses: check the header by hand. */
        if (n < PD_DNS_HEADER_LEN || out[0] != data[0] || out[1] != data[1] || !(out[2] & 0x80) ||
            (out[3] & 0xf) != (r.rcode & 0xf) || out[6] || out[7])
            abort();
        return;
    }
    if (pd_dns_parse_response(out, n, &m, &err) != PD_DNS_OK)
        abort();
    if (m.hdr.id != q.hdr.id || m.hdr.rcode != (r.rcode & 0xf) || m.hdr.ancount != r.answers)
        abort();
    if (r.decision != PD_DNSF_ALLOW && r.answers != 0)
        abort();
    if (!tcp && !q.edns.present && n > PD_DNS_UDP_MIN)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size, false);
    check(data, size, true);
    return 0;
}
