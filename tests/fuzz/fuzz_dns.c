/*
 * fuzz_dns.c - libFuzzer target for the DNS message parser and builders (src/net/dns.h).
 * Every parse sees an exact-size heap copy, so reading past `len` is an ASan report.
 * Invariants:
 * - the input parsed as a query and as a response: the status is one of the four; OK exactly
 *   when m->reason is NULL; an error text is non-empty printable ASCII; a decoded name is
 *   printable, lower-case, its length right, `odd` exactly when it holds an escape, wire 1..255;
 *   every record of an OK message decodes through the accessors (owner; CNAME target; A/AAAA);
 * - a query that is not DROP gets a response (NXDOMAIN, and for an OK query NOERROR with one A
 *   answer): it is built within 512 bytes (so never truncated), parses back as a response with
 *   the same id, opcode, question (byte for byte), rcode and EDNS presence, and the answer reads
 * back with the question name as owner; without a question the response is header-only; a DROP
 *   query gets no response at all;
 * - an OK query whose name is not odd re-encodes from its text into a forwarding query that
 *   parses back with the same question; an odd name is refused by the query builder.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(const struct pd_err *err)
{
    if (err->msg[0] == '\0')
        abort();
    for (const char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            abort();
}

static void check_name(const struct pd_dns_name *n)
{
    if (n->wire_len < 1 || n->wire_len > PD_DNS_NAME_WIRE_MAX || n->text_len > PD_DNS_NAME_TEXT_MAX)
        abort();
    if (strlen(n->text) != n->text_len || n->wire[n->wire_len - 1] != 0)
        abort();
    if ((memchr(n->text, '\\', n->text_len) != NULL) != n->odd)
        abort();
    for (size_t i = 0; i < n->text_len; i++) {
        unsigned char c = (unsigned char)n->text[i];
        if (c <= 0x20 || c >= 0x7f || (c >= 'A' && c <= 'Z'))
            abort();
    }
    if ((n->wire_len == 1) != (n->text_len == 0))
        abort();
}

static struct pd_dns_name g_name; /* large: keep it off the fuzzer's stack */

static void check_msg(const struct pd_dns_msg *m, enum pd_dns_status st, const struct pd_err *err)
{
    if (st != PD_DNS_OK && st != PD_DNS_DROP && st != PD_DNS_FORMERR && st != PD_DNS_NOTIMP)
        abort();
    if (m->status != st || (st == PD_DNS_OK) != (m->reason == NULL))
        abort();
    if (st != PD_DNS_OK) {
        check_err(err);
        if (m->rr_count != 0 || m->edns.present)
            abort();
    }
    if (m->has_question)
        check_name(&m->q.name);
    if (m->rr_count > PD_DNS_MAX_RRS)
        abort();
    if (m->edns.present && m->edns.udp_size < PD_DNS_UDP_MIN)
        abort();
    for (size_t i = 0; i < m->rr_count; i++) {
        const struct pd_dns_rr *rr = &m->rr[i];
        if ((size_t)rr->rdata_off + rr->rdlength > m->len)
            abort();
        if (!pd_dns_rr_name(m, rr, &g_name))
            abort();
        check_name(&g_name);
        if (rr->type == PD_DNS_TYPE_OPT && g_name.wire_len != 1)
            abort();
        uint8_t a[16];
        if (rr->type == PD_DNS_TYPE_CNAME) {
            if (!pd_dns_rr_cname(m, rr, &g_name))
                abort();
            check_name(&g_name);
        }
        bool is_in = rr->rclass == PD_DNS_CLASS_IN;
        if (pd_dns_rr_a(m, rr, a) != (is_in && rr->type == PD_DNS_TYPE_A))
            abort();
        if (pd_dns_rr_aaaa(m, rr, a) != (is_in && rr->type == PD_DNS_TYPE_AAAA))
            abort();
    }
}

static enum pd_dns_status parse_copy(const uint8_t *data, size_t size, bool query,
                                     struct pd_dns_msg *m, struct pd_err *err)
{
    uint8_t *p = malloc(size ? size : 1);
    if (!p)
        abort();
    if (size)
        memcpy(p, data, size);
    enum pd_dns_status st =
        query ? pd_dns_parse_query(p, size, m, err) : pd_dns_parse_response(p, size, m, err);
    check_msg(m, st, err);
    free(p);
    m->buf = NULL; /* the copy is gone */
    return st;
}

static struct pd_dns_msg g_q, g_r;
static uint8_t g_out[PD_DNS_MSG_MAX];

static void check_answer(const struct pd_dns_msg *q, const struct pd_dns_reply *rep)
{
    struct pd_err err = {{0}};
    size_t n = pd_dns_build_response(q, rep, g_out, sizeof g_out, &err);
    if (n < PD_DNS_HEADER_LEN || n > PD_DNS_UDP_MIN)
        abort(); /* our answers are small: they always fit 512 */
    /* the opcode is copied (NOTIMP to another opcode); our response parser wants QUERY */
    if (((g_out[2] >> 3) & 0x0f) != q->hdr.opcode)
        abort();
    g_out[2] &= (uint8_t)~0x78u;
    enum pd_dns_status st = parse_copy(g_out, n, false, &g_r, &err);
    if (g_out[0] != (uint8_t)(q->hdr.id >> 8) || g_out[1] != (uint8_t)q->hdr.id ||
        !(g_out[2] & 0x80))
        abort();
    if ((g_out[3] & 0x0f) != (rep->rcode & 0x0f))
        abort();
    if (!q->has_question) {
        if (n != PD_DNS_HEADER_LEN || st != PD_DNS_FORMERR) /* header only */
            abort();
        return;
    }
    if (st != PD_DNS_OK || !pd_dns_same_question(q, &g_r) || g_r.hdr.tc)
        abort();
    if (g_r.q.name.wire_len != q->q.name.wire_len ||
        memcmp(g_r.q.name.wire, q->q.name.wire, q->q.name.wire_len) != 0)
        abort();
    if (g_r.edns.present != q->edns.present || g_r.rcode != rep->rcode)
        abort();
    if (g_r.hdr.ancount != rep->answer_count)
        abort();
    if (rep->answer_count == 1) {
        /* the parsed copy is gone: parse again in place to read the answer */
        if (pd_dns_parse_response(g_out, n, &g_r, &err) != PD_DNS_OK)
            abort();
        uint8_t a[4];
        if (!pd_dns_rr_a(&g_r, &g_r.rr[0], a) || memcmp(a, rep->answers[0].addr, 4) != 0)
            abort();
        if (!pd_dns_rr_name(&g_r, &g_r.rr[0], &g_name) || g_name.text_len != q->q.name.text_len ||
            memcmp(g_name.text, q->q.name.text, g_name.text_len) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pd_err err = {{0}};
    (void)parse_copy(data, size, false, &g_r, &err);
    enum pd_dns_status st = parse_copy(data, size, true, &g_q, &err);
    if (st == PD_DNS_DROP) {
        struct pd_dns_reply rep = {.rcode = PD_DNS_RCODE_REFUSED};
        if (pd_dns_build_response(&g_q, &rep, g_out, sizeof g_out, NULL) != 0)
            abort();
        return 0;
    }
    struct pd_dns_reply rep = {.rcode = st == PD_DNS_OK       ? PD_DNS_RCODE_NXDOMAIN
                                        : st == PD_DNS_NOTIMP ? PD_DNS_RCODE_NOTIMP
                                                              : PD_DNS_RCODE_FORMERR,
                               .ra = true,
                               .edns_udp_size = 1232};
    check_answer(&g_q, &rep);
    if (st != PD_DNS_OK)
        return 0;
    struct pd_dns_answer a = {.type = PD_DNS_TYPE_A, .ttl = 60, .addr = {192, 0, 2, 1}};
    rep = (struct pd_dns_reply){
        .rcode = PD_DNS_RCODE_NOERROR, .edns_udp_size = 1232, .answers = &a, .answer_count = 1};
    check_answer(&g_q, &rep);

    /* the forwarding query from the canonical text */
    size_t n = pd_dns_build_query(0x4321, g_q.q.name.text, g_q.q.name.text_len, g_q.q.qtype, 1232,
                                  g_out, sizeof g_out, &err);
    if (g_q.q.name.odd) {
        if (n != 0)
            abort();
        return 0;
    }
    if (n == 0)
        abort();
    if (parse_copy(g_out, n, true, &g_r, &err) != PD_DNS_OK || g_r.hdr.id != 0x4321 ||
        g_r.q.qtype != g_q.q.qtype || g_r.q.qclass != PD_DNS_CLASS_IN ||
        g_r.q.name.text_len != g_q.q.name.text_len ||
        memcmp(g_r.q.name.text, g_q.q.name.text, g_q.q.name.text_len) != 0)
        abort();
    return 0;
}
