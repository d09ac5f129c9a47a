/*
 * dns_filter.h - the DNS filter's decision for one query: one message in, the bytes to send back
 * out, and what happened (for the log line and the metrics). Transport-free, so the UDP and TCP
 * servers (dns_server.c), the unit tests and a fuzz target share it.
 *
 * Order of checks (the first that fails decides; docs/policy.md "DNS filter"):
 *   1. the message (net/dns.h): unusable header -> nothing is sent; other malformed queries ->
 *      FORMERR; an opcode other than QUERY -> NOTIMP; a class other than IN -> REFUSED;
 *   2. the name: odd bytes (outside [a-z0-9-_]), the root or an IP-literal-looking name ->
 *      deny_rcode; no allow rule for it (pd_gw_dns_decide) -> deny_rcode (NXDOMAIN by default);
 *   3. tunnelling defences (dns_guard.h) against the rule's apex: whole-name length, label length
 *      and entropy under a wildcard apex, distinct subdomains per apex per minute -> REFUSED;
 *   4. the query type must be in dns.types -> REFUSED (not NXDOMAIN: a negative answer would be
 *      cached for the name and every other type);
 *   5. the answer: the name's addresses from upstream.hosts, else from dns.hosts_file (a listed
 *      name without an address of the asked family gets an empty NOERROR); else, in mode proxy
 *      (the default), dns.answer_a / dns.answer_aaaa (the agent only needs the name to reach the
 *      proxy) and an empty NOERROR for other allowed types; in mode forward, r->forward: the
 *      caller resolves the name upstream (A, AAAA and CNAME chains are relayed; other allowed
 *      types get the chain only, see pd_dnsf_upstream).
 * Only step 5 of an allowed name ever leads to an upstream query: a denied name never does.
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
    /* Mode forward: the name is allowed and must be resolved upstream (nothing was built; the
     * caller answers with pd_dnsf_reply once it has the answer). */
    bool forward;
    bool allow_private; /* the rule lets the name have non-public addresses */
};

/* What an upstream said, reduced to what the filter relays: the CNAME chain from the question name
 * and the A/AAAA records at its end (other records and sections are dropped). Owner and target
 * texts live in `names`. */
#define PD_DNSF_MAX_ANSWERS 16
#define PD_DNSF_MAX_CHAIN 8
struct pd_dnsf_upstream_answer {
    uint16_t rcode; /* NOERROR or NXDOMAIN (anything else: unusable, try another upstream) */
    struct pd_dns_answer ans[PD_DNSF_MAX_ANSWERS];
    size_t n;
    uint32_t ttl; /* the smallest TTL used (clamped), for the cache; negative_ttl when empty */
    size_t dropped; /* non-public addresses removed (rebinding protection) */
    char names[PD_DNSF_MAX_CHAIN + 1][PD_DNS_NAME_TEXT_MAX + 1];
};

/* Decide the query q[0..qlen) (received over TCP when tcp) and build the response into out[0..cap)
 * (cap: at least PD_DNS_MSG_MAX for TCP; the UDP limits are applied inside). Returns its length,
 * 0 when nothing is to be sent. r is always filled. now_s: wall-clock seconds (the burst window).
 */
size_t pd_dnsf_answer(const struct pd_gw_policy *p, struct pd_dns_guard *guard, const uint8_t *q,
                      size_t qlen, bool tcp, int64_t now_s, uint8_t *out, size_t cap,
                      struct pd_dnsf_result *r);

/* Build the response to query q (as given to pd_dnsf_answer) with these answers and rcode; fills
 * r->rcode and r->answers. Returns the length (0 if q does not parse: cannot happen for a query
 * pd_dnsf_answer accepted). */
size_t pd_dnsf_reply(const uint8_t *q, size_t qlen, bool tcp, uint16_t rcode,
                     const struct pd_dns_answer *ans, size_t n, uint8_t *out, size_t cap,
                     struct pd_dnsf_result *r);

/* Reduce a parsed upstream response to the question (canonical name, qtype): follow CNAMEs from the
 * name (at most PD_DNSF_MAX_CHAIN), keep the A/AAAA records of the chain's last name, drop
 * non-public addresses unless allow_private, clamp TTLs to [min_ttl, max_ttl]. False when the
 * response is unusable (rcode other than NOERROR/NXDOMAIN, or TC set): *why says so. */
bool pd_dnsf_upstream(const struct pd_dns_msg *resp, const char *name, uint16_t qtype,
                      bool allow_private, const struct pd_gw_dns *d,
                      struct pd_dnsf_upstream_answer *out, const char **why);

/* The guard limits a policy asks for. */
void pd_dnsf_limits(const struct pd_gw_policy *p, struct pd_dns_guard_limits *lim);

#endif
