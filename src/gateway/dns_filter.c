/* dns_filter.c - one DNS query in, one answer out (see dns_filter.h for the order of checks). */
#include "gateway/dns_filter.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "net/host.h"
#include "net/hosts_file.h"

/* The reason text (cut to its buffer: a name can be ~1000 escaped characters). */
__attribute__((format(printf, 2, 3))) static void why(struct pd_dnsf_result *r, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof r->reason, fmt, ap);
    va_end(ap);
}

void pd_dnsf_limits(const struct pd_gw_policy *p, struct pd_dns_guard_limits *lim)
{
    const struct pd_gw_dns *d = pd_gw_policy_dns(p);
    *lim = (struct pd_dns_guard_limits){
        .max_name_length = d->max_name_length,
        .max_label_length = d->max_label_length,
        .entropy_min_length = d->entropy_min_length,
        .max_label_entropy = d->max_label_entropy,
        .unique_subdomains_per_minute = d->unique_subdomains_per_minute,
    };
}

static size_t respond(const struct pd_dns_msg *m, uint16_t rcode, const struct pd_dns_answer *ans,
                      size_t nans, bool tcp, uint8_t *out, size_t cap, struct pd_dnsf_result *r)
{
    struct pd_dns_reply rep = {.rcode = rcode,
                               .ra = true,
                               .tcp = tcp,
                               .edns_udp_size = PD_DNSF_EDNS_SIZE,
                               .answers = nans ? ans : NULL,
                               .answer_count = nans};
    struct pd_err err;
    size_t n = pd_dns_build_response(m, &rep, out, cap, &err);
    r->rcode = rcode;
    r->answers = n && !(out[2] & 0x02) ? nans : 0; /* TC: the answers were left out */
    return n;
}

static size_t deny(const struct pd_dns_msg *m, const struct pd_gw_policy *p, uint16_t rcode,
                   bool tcp, uint8_t *out, size_t cap, struct pd_dnsf_result *r, const char *error)
{
    (void)p;
    r->decision = PD_DNSF_DENY;
    r->error = error;
    return respond(m, rcode, NULL, 0, tcp, out, cap, r);
}

/* Addresses into answers (A or AAAA per family), at most max. */
static size_t add_addrs(const struct pd_addr *a, size_t n, uint16_t qtype, uint32_t ttl,
                        struct pd_dns_answer *ans, size_t max)
{
    size_t k = 0;
    int fam = qtype == PD_DNS_TYPE_A ? AF_INET : AF_INET6;
    for (size_t i = 0; i < n && k < max; i++) {
        if (a[i].family != fam)
            continue;
        ans[k] = (struct pd_dns_answer){.type = qtype, .ttl = ttl};
        memcpy(ans[k].addr, a[i].bytes, fam == AF_INET ? 4 : 16);
        k++;
    }
    return k;
}

size_t pd_dnsf_answer(const struct pd_gw_policy *p, struct pd_dns_guard *guard, const uint8_t *q,
                      size_t qlen, bool tcp, int64_t now_s, uint8_t *out, size_t cap,
                      struct pd_dnsf_result *r)
{
    memset(r, 0, sizeof *r);
    struct pd_dns_msg m;
    struct pd_err err;
    enum pd_dns_status st = pd_dns_parse_query(q, qlen, &m, &err);
    if (m.has_question) {
        snprintf(r->name, sizeof r->name, "%s", m.q.name.text);
        r->qtype = m.q.qtype;
    }
    if (st == PD_DNS_DROP) {
        r->decision = PD_DNSF_DROP;
        r->error = "dropped";
        why(r, "%s", err.msg);
        return 0;
    }
    if (st != PD_DNS_OK) {
        r->decision = PD_DNSF_INVALID;
        r->error = st == PD_DNS_NOTIMP ? "notimp" : "formerr";
        why(r, "%s", err.msg);
        return respond(&m, st == PD_DNS_NOTIMP ? PD_DNS_RCODE_NOTIMP : PD_DNS_RCODE_FORMERR, NULL,
                       0, tcp, out, cap, r);
    }
    if (m.q.qclass != PD_DNS_CLASS_IN) {
        r->decision = PD_DNSF_INVALID;
        r->error = "class_not_in";
        why(r, "query class %u: only IN (1) is answered", (unsigned)m.q.qclass);
        return respond(&m, PD_DNS_RCODE_REFUSED, NULL, 0, tcp, out, cap, r);
    }
    const struct pd_gw_dns *d = pd_gw_policy_dns(p);
    uint16_t deny_rcode = d->deny_refused ? PD_DNS_RCODE_REFUSED : PD_DNS_RCODE_NXDOMAIN;
    const char *name = m.q.name.text;
    size_t len = m.q.name.text_len;
    char canon[PD_HOST_MAX + 1];
    if (m.q.name.odd || len == 0 || !pd_host_canon_name(name, len, canon, NULL, &err) ||
        strcmp(canon, name) != 0) {
        why(r, "'%s' is not a host name the allowlist can name%s", len ? r->name : ".",
            m.q.name.odd ? " (bytes outside a-z, 0-9, '-' and '_')" : "");
        return deny(&m, p, deny_rcode, tcp, out, cap, r, "name_invalid");
    }
    const char *rule = NULL;
    size_t apex_len = 0;
    bool allow_private = false;
    if (!pd_gw_dns_decide(p, name, len, &rule, &apex_len, &allow_private)) {
        why(r, "%s is not allowed: no allow rule matches the name", name);
        return deny(&m, p, deny_rcode, tcp, out, cap, r, "name_not_allowed");
    }
    r->rule = rule;
    struct pd_dns_guard_limits lim;
    pd_dnsf_limits(p, &lim);
    char gr[PD_DNS_GUARD_REASON_MAX];
    if (!pd_dns_guard_check_name(&lim, name, len, apex_len, gr, sizeof gr)) {
        why(r, "%s", gr);
        const char *code = strstr(gr, "entropy")    ? "label_entropy"
                           : strstr(gr, "max_name") ? "name_too_long"
                                                    : "label_too_long";
        return deny(&m, p, PD_DNS_RCODE_REFUSED, tcp, out, cap, r, code);
    }
    if (apex_len < len && guard &&
        !pd_dns_guard_note(guard, name + (len - apex_len), apex_len, name,
                           len - apex_len - 1 /* the dot before the apex */,
                           lim.unique_subdomains_per_minute, now_s, gr, sizeof gr)) {
        why(r, "%s", gr);
        return deny(&m, p, PD_DNS_RCODE_REFUSED, tcp, out, cap, r, "subdomain_burst");
    }
    bool type_ok = false;
    for (size_t i = 0; i < d->ntypes && !type_ok; i++)
        type_ok = d->types[i] == m.q.qtype;
    if (!type_ok) {
        char tn[PD_DNS_TYPE_NAME_MAX];
        why(r, "query type %s is not in dns.types", pd_dns_type_name(m.q.qtype, tn, sizeof tn));
        return deny(&m, p, PD_DNS_RCODE_REFUSED, tcp, out, cap, r, "type_not_allowed");
    }
    r->decision = PD_DNSF_ALLOW;
    r->allow_private = allow_private;
    struct pd_dns_answer ans[16];
    size_t nans = 0;
    const struct pd_addr *addrs = NULL;
    size_t nh = pd_gw_policy_upstream_hosts(p, name, &addrs);
    bool listed = nh > 0 || (d->hosts && pd_hosts_lookup(d->hosts, name, len, 0, NULL) > 0);
    if (!listed && d->forward) {
        r->forward = true;
        return 0;
    }
    if (m.q.qtype == PD_DNS_TYPE_A || m.q.qtype == PD_DNS_TYPE_AAAA) {
        size_t n = nh;
        if (n > 0) {
            nans = add_addrs(addrs, n, m.q.qtype, d->ttl, ans, 16);
        } else if (listed) {
            int fam = m.q.qtype == PD_DNS_TYPE_A ? AF_INET : AF_INET6;
            n = pd_hosts_lookup(d->hosts, name, len, fam, &addrs);
            nans = add_addrs(addrs, n, m.q.qtype, d->ttl, ans, 16);
        } else if (m.q.qtype == PD_DNS_TYPE_A && d->has_answer_a) {
            nans = add_addrs(&d->answer_a, 1, m.q.qtype, d->ttl, ans, 16);
        } else if (m.q.qtype == PD_DNS_TYPE_AAAA && d->has_answer_aaaa) {
            nans = add_addrs(&d->answer_aaaa, 1, m.q.qtype, d->ttl, ans, 16);
        }
    }
    return respond(&m, PD_DNS_RCODE_NOERROR, ans, nans, tcp, out, cap, r);
}

size_t pd_dnsf_reply(const uint8_t *q, size_t qlen, bool tcp, uint16_t rcode,
                     const struct pd_dns_answer *ans, size_t n, uint8_t *out, size_t cap,
                     struct pd_dnsf_result *r)
{
    struct pd_dns_msg m;
    struct pd_err err;
    if (pd_dns_parse_query(q, qlen, &m, &err) != PD_DNS_OK)
        return 0;
    return respond(&m, rcode, ans, n, tcp, out, cap, r);
}

static uint32_t clamp_ttl(uint32_t t, const struct pd_gw_dns *d)
{
    return t < d->min_ttl ? d->min_ttl : t > d->max_ttl ? d->max_ttl : t;
}

bool pd_dnsf_upstream(const struct pd_dns_msg *resp, const char *name, uint16_t qtype,
                      bool allow_private, const struct pd_gw_dns *d,
                      struct pd_dnsf_upstream_answer *out, const char **why)
{
    out->n = out->dropped = 0;
    out->rcode = (uint16_t)resp->rcode;
    if (resp->hdr.tc) {
        *why = "the upstream answer was truncated";
        return false;
    }
    if (out->rcode != PD_DNS_RCODE_NOERROR && out->rcode != PD_DNS_RCODE_NXDOMAIN) {
        *why = "the upstream answered with an error";
        return false;
    }
    uint32_t ttl = UINT32_MAX;
    size_t cur = 0; /* index in names of the chain's current name */
    snprintf(out->names[0], sizeof out->names[0], "%s", name);
    /* Follow the chain: each round looks for a CNAME owned by the current name. */
    for (size_t hop = 0; hop < PD_DNSF_MAX_CHAIN; hop++) {
        bool moved = false;
        for (size_t i = 0; i < resp->rr_count && !moved; i++) {
            const struct pd_dns_rr *rr = &resp->rr[i];
            struct pd_dns_name owner, target;
            if (rr->section != PD_DNS_SEC_ANSWER || rr->type != PD_DNS_TYPE_CNAME ||
                !pd_dns_rr_name(resp, rr, &owner) || strcmp(owner.text, out->names[cur]) != 0 ||
                !pd_dns_rr_cname(resp, rr, &target) || target.odd || out->n >= PD_DNSF_MAX_ANSWERS)
                continue;
            snprintf(out->names[cur + 1], sizeof out->names[cur + 1], "%s", target.text);
            uint32_t t = clamp_ttl(rr->ttl, d);
            out->ans[out->n++] = (struct pd_dns_answer){
                .type = PD_DNS_TYPE_CNAME,
                .ttl = t,
                .target = out->names[cur + 1],
                .target_len = strlen(out->names[cur + 1]),
                .owner = cur ? out->names[cur] : NULL,
                .owner_len = cur ? strlen(out->names[cur]) : 0,
            };
            ttl = t < ttl ? t : ttl;
            cur++;
            moved = true;
        }
        if (!moved)
            break;
    }
    if (qtype == PD_DNS_TYPE_A || qtype == PD_DNS_TYPE_AAAA) {
        for (size_t i = 0; i < resp->rr_count && out->n < PD_DNSF_MAX_ANSWERS; i++) {
            const struct pd_dns_rr *rr = &resp->rr[i];
            struct pd_dns_name owner;
            if (rr->section != PD_DNS_SEC_ANSWER || rr->type != qtype ||
                rr->rclass != PD_DNS_CLASS_IN || !pd_dns_rr_name(resp, rr, &owner) ||
                strcmp(owner.text, out->names[cur]) != 0)
                continue;
            struct pd_addr a = {.family = qtype == PD_DNS_TYPE_A ? AF_INET : AF_INET6};
            if (qtype == PD_DNS_TYPE_A ? !pd_dns_rr_a(resp, rr, a.bytes)
                                       : !pd_dns_rr_aaaa(resp, rr, a.bytes))
                continue;
            if (!allow_private && !pd_addr_is_public(&a)) {
                out->dropped++; /* rebinding protection: a public name must not lead inside */
                continue;
            }
            uint32_t t = clamp_ttl(rr->ttl, d);
            struct pd_dns_answer *x = &out->ans[out->n++];
            *x = (struct pd_dns_answer){.type = qtype,
                                        .ttl = t,
                                        .owner = cur ? out->names[cur] : NULL,
                                        .owner_len = cur ? strlen(out->names[cur]) : 0};
            memcpy(x->addr, a.bytes, qtype == PD_DNS_TYPE_A ? 4 : 16);
            ttl = t < ttl ? t : ttl;
        }
    }
    bool has_addr = false;
    for (size_t i = 0; i < out->n; i++)
        has_addr = has_addr || out->ans[i].type != PD_DNS_TYPE_CNAME;
    /* No address (NXDOMAIN, no data, or every address dropped): a negative answer. */
    out->ttl = has_addr ? ttl : d->negative_ttl;
    return true;
}
