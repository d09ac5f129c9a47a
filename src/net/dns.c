/* dns.c - DNS message parser and builder; see dns.h for the contract and the decisions. */
#include "net/dns.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Reading                                                                                        */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The bytes a canonical name may hold as they are: [A-Za-z0-9-_]. */
static bool plain_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c - 'A' + 'a') : c;
}

/* Append one label's canonical text at out->text[*t]. The caller has checked the wire length
 * (<= 255), which bounds the text by PD_DNS_NAME_TEXT_MAX; the check here is a second guard. */
static bool label_text(struct pd_dns_name *out, size_t *t, const uint8_t *lab, size_t n)
{
    if (out->wire_len > 0) {
        if (*t + 1 > PD_DNS_NAME_TEXT_MAX)
            return false;
        out->text[(*t)++] = '.';
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = lab[i];
        if (plain_byte(c)) {
            if (*t + 1 > PD_DNS_NAME_TEXT_MAX)
                return false;
            out->text[(*t)++] = (char)lower(c);
        } else {
            if (*t + 4 > PD_DNS_NAME_TEXT_MAX)
                return false;
            out->text[(*t)++] = '\\';
            out->text[(*t)++] = (char)('0' + c / 100);
            out->text[(*t)++] = (char)('0' + c / 10 % 10);
            out->text[(*t)++] = (char)('0' + c % 10);
            out->odd = true;
        }
    }
    return true;
}

/*
 * Decode the name at buf[off], reading only buf[0 .. len). On success returns NULL, *end is the
 * offset just past the name's bytes at `off` (its root byte or its first pointer), *wire_len the
 * decoded wire length, and *out (may be NULL) the name. On failure returns the static reason and
 * *where the offset of the offending byte.
 *
 * The name is a chain of segments (labels ending in the root byte or a pointer). Each pointer
 * must point below the start of the segment that holds it, and the segment it reaches must end
 * below that start too ("lim"): segments are disjoint and each lies wholly before the previous
 * one, so a loop is impossible and the result does not depend on what follows the name.
 */
static const char *name_decode(const uint8_t *buf, size_t len, size_t off, size_t *end,
                               size_t *wire_len, struct pd_dns_name *out, size_t *where)
{
    size_t pos = off; /* next byte to read */
    size_t seg_start = off; /* start of the label sequence being read: pointers must go below */
    size_t lim = len; /* the segment being read must end before this */
    size_t wire = 0; /* decoded length so far, without the root byte */
    size_t t = 0; /* text length */
    unsigned jumps = 0;
    bool jumped = false;
    static const char overlap[] = "name reached by a compression pointer runs into the name that "
                                  "points to it";
    if (out) {
        out->text[0] = '\0';
        out->text_len = 0;
        out->wire_len = 0;
        out->odd = false;
    }
    for (;;) {
        *where = pos;
        if (pos >= lim)
            return jumped ? overlap : "message truncated inside a name";
        uint8_t c = buf[pos];
        if (c == 0) {
            if (!jumped)
                *end = pos + 1;
            break;
        }
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= lim)
                return jumped ? overlap : "message truncated inside a compression pointer";
            size_t target = (size_t)(c & 0x3f) << 8 | buf[pos + 1];
            if (target >= seg_start)
                return "compression pointer does not point backwards";
            if (target < PD_DNS_HEADER_LEN)
                return "compression pointer points into the header";
            if (++jumps > PD_DNS_MAX_POINTERS)
                return "more than 64 compression pointers in one name";
            if (!jumped)
                *end = pos + 2;
            jumped = true;
            lim = seg_start;
            pos = seg_start = target;
            continue;
        }
        if ((c & 0xc0) == 0x40)
            return "label type 0x40 (extended label, RFC 6891) is not supported: labels are "
                   "at most 63 bytes";
        if ((c & 0xc0) == 0x80)
            return "label type 0x80 is reserved";
        size_t n = c; /* 1..63 */
        if (wire + 1 + n + 1 > PD_DNS_NAME_WIRE_MAX)
            return "name longer than 255 bytes";
        if (n > lim - pos - 1)
            return jumped ? overlap : "message truncated inside a label";
        if (out) {
            if (!label_text(out, &t, buf + pos + 1, n))
                return "name text too long"; /* unreachable: the wire length bounds it */
            memcpy(out->wire + wire, buf + pos, 1 + n);
            out->wire_len = wire + 1 + n;
        }
        wire += 1 + n;
        pos += 1 + n;
    }
    *wire_len = wire + 1;
    if (out) {
        out->wire[wire] = 0;
        out->wire_len = wire + 1;
        out->text[t] = '\0';
        out->text_len = t;
    }
    return NULL;
}

static enum pd_dns_status fail(struct pd_dns_msg *m, struct pd_err *err, enum pd_dns_status st,
                               const char *reason, size_t at)
{
    m->status = st;
    m->reason = reason;
    m->rr_count = 0;
    memset(&m->edns, 0, sizeof m->edns);
    m->rcode = m->hdr.rcode;
    pd_err_set(err, "%s (at byte %zu)", reason, at);
    return st;
}

/* The question at offset 12; on success *pos is just past it and m->q is filled. */
static const char *parse_question(struct pd_dns_msg *m, size_t *pos, size_t *where)
{
    size_t end = 0, wl = 0;
    const char *why = name_decode(m->buf, m->len, PD_DNS_HEADER_LEN, &end, &wl, &m->q.name, where);
    if (why)
        return why;
    if (m->len - end < 4) {
        *where = end;
        return "message truncated inside the question";
    }
    m->q.qtype = rd16(m->buf + end);
    m->q.qclass = rd16(m->buf + end + 2);
    *pos = end + 4;
    return NULL;
}

/* Check the OPT record's options: each (code, length, data) inside the rdata, exactly filling it.
 */
static bool opt_options_ok(const uint8_t *p, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        if (n - i < 4) {
            *bad = i;
            return false;
        }
        size_t ol = rd16(p + i + 2);
        if (ol > n - i - 4) {
            *bad = i;
            return false;
        }
        i += 4 + ol;
    }
    return true;
}

static const char *parse_rr(struct pd_dns_msg *m, enum pd_dns_section sec, size_t *pos,
                            size_t *where)
{
    const uint8_t *buf = m->buf;
    size_t len = m->len, name_off = *pos, end = 0, wl = 0;
    const char *why = name_decode(buf, len, name_off, &end, &wl, NULL, where);
    if (why)
        return why;
    *where = end;
    if (len - end < 10)
        return "message truncated inside a record header";
    struct pd_dns_rr rr = {
        .section = sec,
        .type = rd16(buf + end),
        .rclass = rd16(buf + end + 2),
        .ttl = rd32(buf + end + 4),
        .rdlength = rd16(buf + end + 8),
        .name_off = (uint16_t)name_off,
        .rdata_off = (uint16_t)(end + 10),
    };
    size_t rd_off = end + 10, rd_end = rd_off + rr.rdlength;
    *where = end + 8;
    if (rr.rdlength > len - rd_off)
        return "record data runs past the end of the message";
    if (rr.type == PD_DNS_TYPE_OPT) {
        *where = name_off;
        if (sec != PD_DNS_SEC_ADDITIONAL)
            return "OPT record outside the additional section";
        if (m->edns.present)
            return "more than one OPT record";
        if (wl != 1)
            return "OPT record owner is not the root";
        size_t bad = 0;
        if (!opt_options_ok(buf + rd_off, rr.rdlength, &bad)) {
            *where = rd_off + bad;
            return "OPT option runs past the record data";
        }
        m->edns.present = true;
        m->edns.udp_size_raw = rr.rclass;
        m->edns.udp_size = rr.rclass < PD_DNS_UDP_MIN ? (uint16_t)PD_DNS_UDP_MIN : rr.rclass;
        m->edns.ext_rcode = (uint8_t)(rr.ttl >> 24);
        m->edns.version = (uint8_t)(rr.ttl >> 16);
        m->edns.do_bit = (rr.ttl & 0x8000u) != 0;
        m->edns.opt_off = rr.rdata_off;
        m->edns.opt_len = rr.rdlength;
    } else if (rr.type == PD_DNS_TYPE_A && rr.rclass == PD_DNS_CLASS_IN) {
        if (rr.rdlength != 4)
            return "A record data is not 4 bytes";
    } else if (rr.type == PD_DNS_TYPE_AAAA && rr.rclass == PD_DNS_CLASS_IN) {
        if (rr.rdlength != 16)
            return "AAAA record data is not 16 bytes";
    } else if (rr.type == PD_DNS_TYPE_CNAME) {
        /* Reading stops at the end of the rdata; pointers go back into the message. */
        size_t cend = 0;
        why = name_decode(buf, rd_end, rd_off, &cend, &wl, NULL, where);
        if (why)
            return why;
        if (cend != rd_end) {
            *where = cend;
            return "CNAME record data is not exactly one name";
        }
    }
    m->rr[m->rr_count++] = rr;
    *pos = rd_end;
    return NULL;
}

static enum pd_dns_status parse(const uint8_t *buf, size_t len, struct pd_dns_msg *m,
                                struct pd_err *err, bool query)
{
    memset(m, 0, sizeof *m);
    if (!buf)
        len = 0;
    m->buf = buf;
    m->len = len;
    if (len < PD_DNS_HEADER_LEN)
        return fail(m, err, PD_DNS_DROP, "message shorter than the 12-byte header", len);
    if (len > PD_DNS_MSG_MAX)
        return fail(m, err, PD_DNS_DROP, "message longer than 65535 bytes", PD_DNS_MSG_MAX);
    struct pd_dns_header *h = &m->hdr;
    h->id = rd16(buf);
    h->qr = (buf[2] & 0x80) != 0;
    h->opcode = (uint8_t)((buf[2] >> 3) & 0x0f);
    h->aa = (buf[2] & 0x04) != 0;
    h->tc = (buf[2] & 0x02) != 0;
    h->rd = (buf[2] & 0x01) != 0;
    h->ra = (buf[3] & 0x80) != 0;
    h->ad = (buf[3] & 0x20) != 0;
    h->cd = (buf[3] & 0x10) != 0;
    h->rcode = (uint8_t)(buf[3] & 0x0f);
    h->qdcount = rd16(buf + 4);
    h->ancount = rd16(buf + 6);
    h->nscount = rd16(buf + 8);
    h->arcount = rd16(buf + 10);
    m->rcode = h->rcode;

    if (query && h->qr)
        return fail(m, err, PD_DNS_DROP, "QR is 1: a response where a query is expected", 2);
    if (!query && !h->qr)
        return fail(m, err, PD_DNS_DROP, "QR is 0: a query where a response is expected", 2);
    size_t pos = PD_DNS_HEADER_LEN, where = 0;
    const char *why;
    if (h->opcode != PD_DNS_OPCODE_QUERY) {
        if (!query)
            return fail(m, err, PD_DNS_FORMERR, "response opcode is not QUERY", 2);
        /* Best effort, only so that the NOTIMP can echo the question. */
        if (h->qdcount == 1 && parse_question(m, &pos, &where) == NULL)
            m->has_question = true;
        else
            memset(&m->q, 0, sizeof m->q);
        return fail(m, err, PD_DNS_NOTIMP, "opcode is not QUERY (0)", 2);
    }
    if (h->qdcount != 1) {
        fail(m, err, PD_DNS_FORMERR, "qdcount is not 1: exactly one question is expected", 4);
        pd_err_set(err, "qdcount is %u: exactly one question is expected (at byte 4)",
                   (unsigned)h->qdcount);
        return PD_DNS_FORMERR;
    }
    why = parse_question(m, &pos, &where);
    if (why) {
        memset(&m->q, 0, sizeof m->q);
        return fail(m, err, PD_DNS_FORMERR, why, where);
    }
    m->has_question = true;
    if (query && (h->ancount != 0 || h->nscount != 0))
        return fail(m, err, PD_DNS_FORMERR, "a query must not carry answer or authority records",
                    6);
    if ((size_t)h->ancount + h->nscount + h->arcount > PD_DNS_MAX_RRS)
        return fail(m, err, PD_DNS_FORMERR, "message has more than 64 records", 6);
    const struct {
        uint16_t count;
        enum pd_dns_section sec;
    } secs[] = {
        {h->ancount, PD_DNS_SEC_ANSWER},
        {h->nscount, PD_DNS_SEC_AUTHORITY},
        {h->arcount, PD_DNS_SEC_ADDITIONAL},
    };
    for (size_t s = 0; s < sizeof secs / sizeof secs[0]; s++) {
        for (unsigned i = 0; i < secs[s].count; i++) {
            why = parse_rr(m, secs[s].sec, &pos, &where);
            if (why)
                return fail(m, err, PD_DNS_FORMERR, why, where);
        }
    }
    if (pos != len)
        return fail(m, err, PD_DNS_FORMERR, "bytes after the last record", pos);
    if (m->edns.present)
        m->rcode = (uint16_t)(m->edns.ext_rcode << 4 | h->rcode);
    return PD_DNS_OK;
}

enum pd_dns_status pd_dns_parse_query(const uint8_t *buf, size_t len, struct pd_dns_msg *m,
                                      struct pd_err *err)
{
    return parse(buf, len, m, err, true);
}

enum pd_dns_status pd_dns_parse_response(const uint8_t *buf, size_t len, struct pd_dns_msg *m,
                                         struct pd_err *err)
{
    return parse(buf, len, m, err, false);
}

/* ------------------------------------------------------------------------------------------ */
/* Accessors                                                                                      */

static bool rdata_ok(const struct pd_dns_msg *m, const struct pd_dns_rr *rr)
{
    return m && rr && m->buf && m->len <= PD_DNS_MSG_MAX && (size_t)rr->rdata_off <= m->len &&
           rr->rdlength <= m->len - rr->rdata_off;
}

bool pd_dns_rr_name(const struct pd_dns_msg *m, const struct pd_dns_rr *rr, struct pd_dns_name *out)
{
    size_t end = 0, wl = 0, where = 0;
    if (!out)
        return false;
    if (!rdata_ok(m, rr) || rr->name_off >= rr->rdata_off ||
        name_decode(m->buf, rr->rdata_off, rr->name_off, &end, &wl, out, &where) != NULL) {
        memset(out, 0, sizeof *out);
        return false;
    }
    return true;
}

bool pd_dns_rr_a(const struct pd_dns_msg *m, const struct pd_dns_rr *rr, uint8_t out[4])
{
    if (!rdata_ok(m, rr) || rr->type != PD_DNS_TYPE_A || rr->rclass != PD_DNS_CLASS_IN ||
        rr->rdlength != 4)
        return false;
    memcpy(out, m->buf + rr->rdata_off, 4);
    return true;
}

bool pd_dns_rr_aaaa(const struct pd_dns_msg *m, const struct pd_dns_rr *rr, uint8_t out[16])
{
    if (!rdata_ok(m, rr) || rr->type != PD_DNS_TYPE_AAAA || rr->rclass != PD_DNS_CLASS_IN ||
        rr->rdlength != 16)
        return false;
    memcpy(out, m->buf + rr->rdata_off, 16);
    return true;
}

bool pd_dns_rr_cname(const struct pd_dns_msg *m, const struct pd_dns_rr *rr,
                     struct pd_dns_name *out)
{
    size_t end = 0, wl = 0, where = 0;
    size_t rd_end;
    if (!out)
        return false;
    if (!rdata_ok(m, rr) || rr->type != PD_DNS_TYPE_CNAME)
        goto bad;
    rd_end = (size_t)rr->rdata_off + rr->rdlength;
    if (name_decode(m->buf, rd_end, rr->rdata_off, &end, &wl, out, &where) != NULL || end != rd_end)
        goto bad;
    return true;
bad:
    memset(out, 0, sizeof *out);
    return false;
}

bool pd_dns_same_question(const struct pd_dns_msg *a, const struct pd_dns_msg *b)
{
    if (!a || !b || !a->has_question || !b->has_question)
        return false;
    /* The canonical text is an injective function of the wire form up to ASCII case ('.' and
     * '\\' inside labels are escaped), so equal texts mean the same name. */
    return a->q.qtype == b->q.qtype && a->q.qclass == b->q.qclass &&
           a->q.name.text_len == b->q.name.text_len &&
           memcmp(a->q.name.text, b->q.name.text, a->q.name.text_len) == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Building                                                                                       */

/* A bounded writer: once something does not fit, nothing more is written and `full` is set. */
struct wr {
    uint8_t *p;
    size_t cap;
    size_t n;
    bool full;
};

static void put(struct wr *w, const void *src, size_t n)
{
    if (w->full || n > w->cap - w->n) {
        w->full = true;
        return;
    }
    if (n)
        memcpy(w->p + w->n, src, n);
    w->n += n;
}

static void put16(struct wr *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 2);
}

static void put32(struct wr *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
}

size_t pd_dns_name_encode(const char *text, size_t len, uint8_t *out, size_t cap,
                          struct pd_err *err)
{
    if (!text)
        len = 0;
    if (len > 0 && text[len - 1] == '.')
        len--; /* one trailing dot; "." becomes the root */
    if (len > 0 && text[len - 1] == '.') {
        pd_err_set(err, "empty label at the end of the name (more than one trailing dot)");
        return 0;
    }
    size_t o = 0, start = 0;
    uint8_t tmp[PD_DNS_NAME_WIRE_MAX];
    for (size_t i = 0; len > 0 && i <= len; i++) {
        if (i < len && text[i] != '.') {
            if (!plain_byte((uint8_t)text[i])) {
                pd_err_set(err,
                           "byte 0x%02x at offset %zu is not allowed in a name (expected letters, "
                           "digits, '-', '_')",
                           (unsigned)(unsigned char)text[i], i);
                return 0;
            }
            continue;
        }
        size_t n = i - start;
        if (n == 0) {
            pd_err_set(err, "empty label at offset %zu", i);
            return 0;
        }
        if (n > PD_DNS_LABEL_MAX) {
            pd_err_set(err, "label longer than 63 bytes at offset %zu", start);
            return 0;
        }
        if (o + 1 + n + 1 > PD_DNS_NAME_WIRE_MAX) {
            pd_err_set(err, "name longer than 255 bytes in wire form");
            return 0;
        }
        tmp[o] = (uint8_t)n;
        memcpy(tmp + o + 1, text + start, n);
        o += 1 + n;
        start = i + 1;
    }
    tmp[o++] = 0;
    if (!out || cap < o) {
        pd_err_set(err, "name needs %zu bytes, the buffer has %zu", o, out ? cap : 0);
        return 0;
    }
    memcpy(out, tmp, o);
    return o;
}

static bool wire_eq_nocase(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

/* Names written in full so far (offset into the message, length), for compressing later ones. */
struct known {
    size_t off[PD_DNS_MAX_RRS + 1];
    size_t len[PD_DNS_MAX_RRS + 1];
    size_t n;
};

/* Write a name, as a pointer when an earlier written copy exists (the question at 12 included). */
static void put_name(struct wr *w, struct known *k, const uint8_t *wire, size_t wl)
{
    for (size_t i = 0; i < k->n; i++) {
        if (k->len[i] == wl && k->off[i] <= 0x3fff && !w->full && k->off[i] + wl <= w->n &&
            wire_eq_nocase(w->p + k->off[i], wire, wl)) {
            put16(w, (uint16_t)(0xc000u | k->off[i]));
            return;
        }
    }
    size_t at = w->n;
    put(w, wire, wl);
    if (!w->full && wl > 1 && k->n < sizeof k->off / sizeof k->off[0]) {
        k->off[k->n] = at;
        k->len[k->n] = wl;
        k->n++;
    }
}

/* Check the answers before writing anything, so that a TC response is never a way around it. */
static bool answers_valid(const struct pd_dns_reply *r, struct pd_err *err)
{
    uint8_t tmp[PD_DNS_NAME_WIRE_MAX];
    if (r->answer_count > PD_DNS_MAX_RRS) {
        pd_err_set(err, "%zu answers: at most %u are supported", r->answer_count, PD_DNS_MAX_RRS);
        return false;
    }
    if (r->answer_count > 0 && !r->answers) {
        pd_err_set(err, "answer_count is %zu but answers is NULL", r->answer_count);
        return false;
    }
    for (size_t i = 0; i < r->answer_count; i++) {
        const struct pd_dns_answer *a = &r->answers[i];
        if (a->type != PD_DNS_TYPE_A && a->type != PD_DNS_TYPE_AAAA &&
            a->type != PD_DNS_TYPE_CNAME) {
            pd_err_set(err, "answer %zu: type %u cannot be built (only A, AAAA, CNAME)", i,
                       (unsigned)a->type);
            return false;
        }
        if (a->owner_len > 0 &&
            pd_dns_name_encode(a->owner, a->owner_len, tmp, sizeof tmp, err) == 0) {
            pd_err_prefix(err, "answer %zu owner", i);
            return false;
        }
        if (a->type == PD_DNS_TYPE_CNAME &&
            pd_dns_name_encode(a->target, a->target_len, tmp, sizeof tmp, err) == 0) {
            pd_err_prefix(err, "answer %zu CNAME target", i);
            return false;
        }
    }
    return true;
}

/* One attempt at the whole response into w; returns false if it did not fit. */
static bool write_response(struct wr *w, const struct pd_dns_msg *q, const struct pd_dns_reply *r,
                           bool with_answers)
{
    const struct pd_dns_name *qn = &q->q.name;
    size_t an = with_answers ? r->answer_count : 0;
    struct known k = {.n = 0};
    uint8_t tmp[PD_DNS_NAME_WIRE_MAX];

    put16(w, q->hdr.id);
    /* QR, the opcode copied (RFC 1035 4.1.1; only a NOTIMP has one other than QUERY), TC, RD */
    uint8_t f1 =
        (uint8_t)(0x80u | (unsigned)(q->hdr.opcode & 0x0f) << 3 |
                  (with_answers || !r->answer_count ? 0u : 0x02u) | (q->hdr.rd ? 0x01u : 0u));
    uint8_t f2 = (uint8_t)((r->ra ? 0x80u : 0u) | (q->hdr.cd ? 0x10u : 0u) | (r->rcode & 0x0fu));
    put(w, &f1, 1);
    put(w, &f2, 1);
    put16(w, q->has_question ? 1 : 0);
    put16(w, (uint16_t)an);
    put16(w, 0);
    put16(w, q->edns.present ? 1 : 0);
    if (q->has_question) {
        if (qn->wire_len < 1 || qn->wire_len > PD_DNS_NAME_WIRE_MAX)
            return false;
        if (!w->full && qn->wire_len > 1) {
            k.off[0] = w->n;
            k.len[0] = qn->wire_len;
            k.n = 1;
        }
        put(w, qn->wire, qn->wire_len);
        put16(w, q->q.qtype);
        put16(w, q->q.qclass);
    }
    for (size_t i = 0; i < an; i++) {
        const struct pd_dns_answer *a = &r->answers[i];
        if (a->owner_len == 0) {
            /* The question name: one pointer (0xC00C), or the root written out. */
            if (qn->wire_len > 1)
                put16(w, (uint16_t)(0xc000u | PD_DNS_HEADER_LEN));
            else
                put(w, "", 1);
        } else {
            size_t wl = pd_dns_name_encode(a->owner, a->owner_len, tmp, sizeof tmp, NULL);
            if (wl == 0)
                return false;
            put_name(w, &k, tmp, wl);
        }
        put16(w, a->type);
        put16(w, PD_DNS_CLASS_IN);
        put32(w, a->ttl);
        if (a->type == PD_DNS_TYPE_A) {
            put16(w, 4);
            put(w, a->addr, 4);
        } else if (a->type == PD_DNS_TYPE_AAAA) {
            put16(w, 16);
            put(w, a->addr, 16);
        } else {
            size_t wl = pd_dns_name_encode(a->target, a->target_len, tmp, sizeof tmp, NULL);
            if (wl == 0)
                return false;
            size_t len_at = w->n;
            put16(w, 0);
            put_name(w, &k, tmp, wl);
            if (w->full)
                return false;
            size_t rdlen = w->n - len_at - 2;
            w->p[len_at] = (uint8_t)(rdlen >> 8);
            w->p[len_at + 1] = (uint8_t)rdlen;
        }
    }
    if (q->edns.present) {
        uint16_t size =
            r->edns_udp_size < PD_DNS_UDP_MIN ? (uint16_t)PD_DNS_UDP_MIN : r->edns_udp_size;
        put(w, "", 1);
        put16(w, PD_DNS_TYPE_OPT);
        put16(w, size);
        put32(w, (uint32_t)(r->rcode >> 4) << 24 | (q->edns.do_bit ? 0x8000u : 0u));
        put16(w, 0);
    }
    return !w->full;
}

size_t pd_dns_build_response(const struct pd_dns_msg *query, const struct pd_dns_reply *reply,
                             uint8_t *out, size_t cap, struct pd_err *err)
{
    if (!query || !reply || !out) {
        pd_err_set(err, "internal error: missing query, reply or output buffer");
        return 0;
    }
    if (query->status == PD_DNS_DROP || query->len < PD_DNS_HEADER_LEN || query->hdr.qr) {
        pd_err_set(err, "the query's header is unusable (DROP): there is nothing to answer");
        return 0;
    }
    if (query->has_question &&
        (query->q.name.wire_len < 1 || query->q.name.wire_len > PD_DNS_NAME_WIRE_MAX)) {
        pd_err_set(err, "internal error: the query's question name has no wire form");
        return 0;
    }
    if (reply->rcode > 0x0fff) {
        pd_err_set(err, "rcode %u does not fit in 12 bits", (unsigned)reply->rcode);
        return 0;
    }
    if (reply->rcode > 0x0f && !query->edns.present) {
        pd_err_set(err, "rcode %u needs EDNS, and the query had no OPT record",
                   (unsigned)reply->rcode);
        return 0;
    }
    if (reply->answer_count > 0 && !query->has_question) {
        pd_err_set(err, "answers need a question, and the query has none");
        return 0;
    }
    if (!answers_valid(reply, err))
        return 0;
    size_t limit = PD_DNS_MSG_MAX;
    if (!reply->tcp && !query->edns.present)
        limit = PD_DNS_UDP_MIN;
    if (!reply->tcp && query->edns.present) {
        /* The client's size, and never more than the size we advertise ourselves. */
        limit = query->edns.udp_size;
        if (reply->edns_udp_size < limit)
            limit = reply->edns_udp_size < PD_DNS_UDP_MIN ? PD_DNS_UDP_MIN : reply->edns_udp_size;
    }
    if (limit > cap)
        limit = cap;
    struct wr w = {.p = out, .cap = limit};
    if (write_response(&w, query, reply, true))
        return w.n;
    if (reply->answer_count > 0) {
        w = (struct wr){.p = out, .cap = limit};
        if (write_response(&w, query, reply, false))
            return w.n;
    }
    pd_err_set(err, "the response does not fit in %zu bytes", limit);
    return 0;
}

size_t pd_dns_build_query(uint16_t id, const char *name, size_t name_len, uint16_t qtype,
                          uint16_t udp_size, uint8_t *out, size_t cap, struct pd_err *err)
{
    uint8_t wire[PD_DNS_NAME_WIRE_MAX];
    size_t wl = pd_dns_name_encode(name, name_len, wire, sizeof wire, err);
    if (wl == 0)
        return 0;
    if (!out) {
        pd_err_set(err, "internal error: no output buffer");
        return 0;
    }
    struct wr w = {.p = out, .cap = cap};
    put16(&w, id);
    put16(&w, 0x0100); /* RD */
    put16(&w, 1);
    put16(&w, 0);
    put16(&w, 0);
    put16(&w, udp_size ? 1 : 0);
    put(&w, wire, wl);
    put16(&w, qtype);
    put16(&w, PD_DNS_CLASS_IN);
    if (udp_size) {
        put(&w, "", 1);
        put16(&w, PD_DNS_TYPE_OPT);
        put16(&w, udp_size < PD_DNS_UDP_MIN ? (uint16_t)PD_DNS_UDP_MIN : udp_size);
        put32(&w, 0);
        put16(&w, 0);
    }
    if (w.full) {
        pd_err_set(err, "the query does not fit in %zu bytes", cap);
        return 0;
    }
    return w.n;
}

/* ------------------------------------------------------------------------------------------ */
/* Names for logs                                                                                 */

const char *pd_dns_type_name(uint16_t type, char *buf, size_t cap)
{
    static const struct {
        uint16_t type;
        const char *name;
    } types[] = {
        {PD_DNS_TYPE_A, "A"},         {PD_DNS_TYPE_NS, "NS"},     {PD_DNS_TYPE_CNAME, "CNAME"},
        {PD_DNS_TYPE_SOA, "SOA"},     {PD_DNS_TYPE_NULL, "NULL"}, {PD_DNS_TYPE_PTR, "PTR"},
        {PD_DNS_TYPE_MX, "MX"},       {PD_DNS_TYPE_TXT, "TXT"},   {PD_DNS_TYPE_AAAA, "AAAA"},
        {PD_DNS_TYPE_SRV, "SRV"},     {PD_DNS_TYPE_OPT, "OPT"},   {PD_DNS_TYPE_SVCB, "SVCB"},
        {PD_DNS_TYPE_HTTPS, "HTTPS"}, {PD_DNS_TYPE_ANY, "ANY"},   {PD_DNS_TYPE_CAA, "CAA"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].type == type)
            return types[i].name;
    if (!buf || cap == 0)
        return "TYPE?";
    snprintf(buf, cap, "TYPE%u", (unsigned)type);
    return buf;
}

const char *pd_dns_rcode_name(uint16_t rcode, char *buf, size_t cap)
{
    static const char *const names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                        "NXDOMAIN", "NOTIMP",  "REFUSED"};
    if (rcode < sizeof names / sizeof names[0])
        return names[rcode];
    if (rcode == PD_DNS_RCODE_BADVERS)
        return "BADVERS";
    if (!buf || cap == 0)
        return "RCODE?";
    snprintf(buf, cap, "RCODE%u", (unsigned)rcode);
    return buf;
}

const char *pd_dns_status_name(enum pd_dns_status st)
{
    switch (st) {
    case PD_DNS_OK:
        return "ok";
    case PD_DNS_DROP:
        return "drop";
    case PD_DNS_FORMERR:
        return "formerr";
    case PD_DNS_NOTIMP:
        return "notimp";
    }
    return "unknown";
}
