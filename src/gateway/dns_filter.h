/*
 * dns_filter.h - the DNS filter's decision for one query: one message in, the bytes to send back
 * out, and what happened (for the log line and the metrics). Transport-free, so the UDP and TCP
 * servers (dns_server.c), the unit tests and a fuzz target share it.
 *
 * Order of checks (the first that fails decides; docs/gateway-config.md "DNS filter"):
 *   1. the message (net/dns.h): unusable header -> nothing is sent; other malformed queries ->
 *      FORMERR; an opcode other than QUERY -> NOTIMP; a class other than IN -> REFUSED;
 *   2. the name: odd bytes (outside [a-z0-9-_]), the root or an IP-literal-looking name ->
 *      deny_rcode; no allow rule for it (pd_gw_dns_decide) -> deny_rcode (NXDOMAIN by default);
 *   3. tunnelling defences (dns_guard.h) against the rule's apex: whole-name length, label length
 *      and entropy under a wildcard apex, distinct subdomains per apex per minute -> REFUSED;
 *   4. the query type must be in dns.types -> REFUSED (not NXDOMAIN: a negative answer would be
 *      cached for the name and every other type);
 *   5. the answer, all local (nothing is sent upstream): the name's addresses from upstream.hosts,
 *      else from dns.hosts_file (a listed name without an address of the asked family gets an
 *      empty NOERROR), else dns.answer_a / dns.answer_aaaa (the proxy-only default: the agent only
 *      needs the name to reach the proxy); other allowed types get an empty NOERROR.
 * A denied name is never forwarded anywhere: there is no forwarding in this path at all.
 *
 * Threads: any; the policy is immutable and the guard locks itself. No allocation.
 */
#ifndef PD_GATEWAY_DNS_FILTER_H
#define PD_GATEWAY_DNS_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/dns_guard.h"
#include "gateway/policy.h"
#include "net/dns.h"

/* Our advertised EDNS payload size (the DNS flag day 2020 value). */
#define PD_DNSF_EDNS_SIZE 1232u

enum pd_dnsf_decision {
    PD_DNSF_ALLOW, /* answered (possibly with no records) */
    PD_DNSF_DENY, /* refused by policy (name, tunnelling defence or type) */
    PD_DNSF_INVALID, /* malformed or unsupported message: FORMERR / NOTIMP / REFUSED (class) */
    PD_DNSF_DROP, /* nothing sent back */
};

struct pd_dnsf_result {
    enum pd_dnsf_decision decision;
    const char *error; /* NULL when allowed; a stable code: name_not_allowed, name_invalid,
                        * type_not_allowed, name_too_long, label_too_long, label_entropy,
                        * subdomain_burst, class_not_in, formerr, notimp, dropped */
    char reason[PD_DNS_GUARD_REASON_MAX + 64]; /* human text when not allowed ("" otherwise) */
    const char *rule; /* the allow rule that matched (policy lifetime), NULL when none */
    char name[PD_DNS_NAME_TEXT_MAX + 1]; /* canonical (escaped) question name, "" when none */
    uint16_t qtype; /* 0 when there was no question */
    uint16_t rcode;
    size_t answers;
};

/* Decide the query q[0..qlen) (received over TCP when tcp) and build the response into out[0..cap)
 * (cap: at least PD_DNS_MSG_MAX for TCP; the UDP limits are applied inside). Returns its length,
 * 0 when nothing is to be sent. r is always filled. now_s: wall-clock seconds (the burst window). */
size_t pd_dnsf_answer(const struct pd_gw_policy *p, struct pd_dns_guard *guard, const uint8_t *q,
                      size_t qlen, bool tcp, int64_t now_s, uint8_t *out, size_t cap,
                      struct pd_dnsf_result *r);

/* The guard limits a policy asks for. */
void pd_dnsf_limits(const struct pd_gw_policy *p, struct pd_dns_guard_limits *lim);

#endif
