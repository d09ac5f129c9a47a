/* tls_hello.c - see tls_hello.h.
 *
 * Two passes over the caller's buffer, both bounded by `len`:
 *  1. walk_records() checks every record header that has arrived and counts how many handshake
 *     bytes are present (hs_have) against the handshake header's length (hs_total). It decides
 *     NOT_TLS, record-level INVALID, and whether the message is complete.
 *  2. parse_body() reads the ClientHello body in place through a cursor that steps over record
 *     headers (struct rd). Every structure is a nested reader whose `left` is its declared length:
 *     a read beyond `left` is INVALID (it overruns its parent), a read beyond `avail` (the bytes
 *     that have arrived) is NEED_MORE. A prefix therefore gives INVALID only when every longer
 *     input would too.
 */
#include "gateway/tls_hello.h"

#include <string.h>

#define HS_CLIENT_HELLO 1u
#define CT_HANDSHAKE 22u
/* version(2) random(32) session_id len(1) cipher_suites len(2) + one suite(2) compression len(1)
 * + null(1) */
#define HELLO_MIN_BODY 41u

/* ---- pass 1: records ---- */

struct walk {
    size_t records; /* records seen (headers complete) */
    size_t hs_have; /* handshake bytes present, header included */
    size_t hs_total; /* 4 + body length once the header is complete, else 0 */
    size_t end; /* offset just after the last ClientHello record, when complete */
    bool complete;
    uint16_t record_version;
    uint8_t hdr[4];
};

static enum pd_tls_hello_status check_record_version(const uint8_t *h, size_t hn, size_t idx,
                                                     struct pd_err *err)
{
    if (hn >= 2 && h[1] != 3) {
        pd_err_set(
            err, "record %zu: legacy record version major byte %u; expected 3 (TLS 0x0301..0x0303)",
            idx, (unsigned)h[1]);
        return PD_TLS_HELLO_INVALID;
    }
    if (hn >= 3 && (h[2] < 1 || h[2] > 3)) {
        if (h[2] == 0)
            pd_err_set(
                err,
                "record %zu: SSL 3.0 record version 0x0300 is refused; expected 0x0301..0x0303",
                idx);
        else
            pd_err_set(err, "record %zu: record version 0x03%02x; expected 0x0301..0x0303", idx,
                       (unsigned)h[2]);
        return PD_TLS_HELLO_INVALID;
    }
    return PD_TLS_HELLO_OK;
}

static enum pd_tls_hello_status walk_records(const uint8_t *buf, size_t len, struct walk *w,
                                             struct pd_err *err)
{
    size_t pos = 0;
    memset(w, 0, sizeof *w);
    for (;;) {
        if (w->hs_total != 0 && w->hs_have == w->hs_total) {
            w->complete = true;
            w->end = pos;
            return PD_TLS_HELLO_OK;
        }
        if (pos == len)
            return PD_TLS_HELLO_NEED_MORE;
        const uint8_t *h = buf + pos;
        size_t hn = len - pos < 5 ? len - pos : 5;
        size_t idx = w->records + 1;
        if (h[0] != CT_HANDSHAKE) {
            if (w->records == 0)
                return PD_TLS_HELLO_NOT_TLS;
            pd_err_set(err,
                       "record %zu: content type %u before the ClientHello is complete; expected "
                       "handshake (22)",
                       idx, (unsigned)h[0]);
            return PD_TLS_HELLO_INVALID;
        }
        if (check_record_version(h, hn, idx, err) != PD_TLS_HELLO_OK)
            return PD_TLS_HELLO_INVALID;
        if (hn < 5)
            return PD_TLS_HELLO_NEED_MORE;
        size_t rec_len = (size_t)h[3] << 8 | h[4];
        if (rec_len == 0) {
            pd_err_set(err, "record %zu: empty handshake record; expected 1..%u bytes", idx,
                       PD_TLS_RECORD_MAX);
            return PD_TLS_HELLO_INVALID;
        }
        if (rec_len > PD_TLS_RECORD_MAX) {
            pd_err_set(err, "record %zu: length %zu; expected at most %u", idx, rec_len,
                       PD_TLS_RECORD_MAX);
            return PD_TLS_HELLO_INVALID;
        }
        if (idx > PD_TLS_HELLO_MAX_RECORDS) {
            pd_err_set(err, "spread over more than %u records; expected at most %u",
                       PD_TLS_HELLO_MAX_RECORDS, PD_TLS_HELLO_MAX_RECORDS);
            return PD_TLS_HELLO_INVALID;
        }
        if (w->records == 0)
            w->record_version = (uint16_t)(h[1] << 8 | h[2]);
        w->records = idx;
        if (w->hs_total != 0 && rec_len > w->hs_total - w->hs_have) {
            pd_err_set(
                err,
                "record %zu: carries %zu bytes past the end of the ClientHello; expected the "
                "ClientHello to end at a record boundary",
                idx, rec_len - (w->hs_total - w->hs_have));
            return PD_TLS_HELLO_INVALID;
        }
        const uint8_t *data = h + 5;
        size_t avail = len - pos - 5;
        if (avail > rec_len)
            avail = rec_len;
        size_t i = 0;
        while (w->hs_have < 4 && i < avail) {
            w->hdr[w->hs_have++] = data[i++];
            if (w->hs_have == 1 && w->hdr[0] != HS_CLIENT_HELLO) {
                pd_err_set(err, "handshake message type %u; expected client_hello (1)",
                           (unsigned)w->hdr[0]);
                return PD_TLS_HELLO_INVALID;
            }
            if (w->hs_have == 4) {
                size_t body = (size_t)w->hdr[1] << 16 | (size_t)w->hdr[2] << 8 | w->hdr[3];
                if (body > PD_TLS_HELLO_MAX) {
                    pd_err_set(err, "body length %zu; expected at most %u", body, PD_TLS_HELLO_MAX);
                    return PD_TLS_HELLO_INVALID;
                }
                if (body < HELLO_MIN_BODY) {
                    pd_err_set(err, "body length %zu; expected at least %u", body, HELLO_MIN_BODY);
                    return PD_TLS_HELLO_INVALID;
                }
                w->hs_total = 4 + body;
                if (rec_len - i > body) {
                    pd_err_set(
                        err,
                        "record %zu: carries %zu bytes past the end of the ClientHello; expected "
                        "the ClientHello to end at a record boundary",
                        idx, rec_len - i - body);
                    return PD_TLS_HELLO_INVALID;
                }
            }
        }
        w->hs_have += avail - i;
        if (avail < rec_len)
            return PD_TLS_HELLO_NEED_MORE;
        pos += 5 + rec_len;
    }
}

/* ---- pass 2: the body, read in place across records ---- */

struct rd {
    const uint8_t *buf;
    size_t pos; /* offset in buf of the next byte (may sit on a record header when rec_left is 0) */
    size_t rec_left; /* bytes left in the current record */
    size_t avail; /* handshake bytes present from pos on */
    size_t left; /* declared bytes left in this structure */
    const char *name; /* this structure, for errors */
};

/* Callers guarantee n <= avail, so every record header stepped over was checked by pass 1. */
static void rd_take(struct rd *r, uint8_t *dst, size_t n)
{
    while (n > 0) {
        if (r->rec_left == 0) {
            r->rec_left = (size_t)r->buf[r->pos + 3] << 8 | r->buf[r->pos + 4];
            r->pos += 5;
        }
        size_t k = n < r->rec_left ? n : r->rec_left;
        if (dst) {
            memcpy(dst, r->buf + r->pos, k);
            dst += k;
        }
        r->pos += k;
        r->rec_left -= k;
        r->avail -= k;
        r->left -= k;
        n -= k;
    }
}

static enum pd_tls_hello_status rd_need(const struct rd *r, size_t n, const char *what,
                                        struct pd_err *err)
{
    if (n > r->left) {
        pd_err_set(err, "%s (%zu byte%s) overruns the %s (%zu byte%s left)", what, n,
                   n == 1 ? "" : "s", r->name, r->left, r->left == 1 ? "" : "s");
        return PD_TLS_HELLO_INVALID;
    }
    return n > r->avail ? PD_TLS_HELLO_NEED_MORE : PD_TLS_HELLO_OK;
}

static enum pd_tls_hello_status rd_uint(struct rd *r, size_t n, size_t *v, const char *what,
                                        struct pd_err *err)
{
    enum pd_tls_hello_status st = rd_need(r, n, what, err);
    if (st != PD_TLS_HELLO_OK)
        return st;
    uint8_t b[3];
    rd_take(r, b, n);
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = *v << 8 | b[i];
    return PD_TLS_HELLO_OK;
}

static enum pd_tls_hello_status rd_copy(struct rd *r, uint8_t *dst, size_t n, const char *what,
                                        struct pd_err *err)
{
    enum pd_tls_hello_status st = rd_need(r, n, what, err);
    if (st == PD_TLS_HELLO_OK)
        rd_take(r, dst, n);
    return st;
}

/* Open a child structure of n declared bytes; the parent's `left` shrinks by n now, and its cursor
 * catches up in sub_end(). */
static enum pd_tls_hello_status sub_begin(struct rd *parent, size_t n, struct rd *child,
                                          const char *name, struct pd_err *err)
{
    if (n > parent->left) {
        pd_err_set(err, "%s length %zu overruns the %s (%zu byte%s left)", name, n, parent->name,
                   parent->left, parent->left == 1 ? "" : "s");
        return PD_TLS_HELLO_INVALID;
    }
    *child = *parent;
    child->left = n;
    child->name = name;
    parent->left -= n;
    return PD_TLS_HELLO_OK;
}

/* The child must be fully read; the parent continues after it. */
static void sub_end(struct rd *parent, const struct rd *child)
{
    parent->pos = child->pos;
    parent->rec_left = child->rec_left;
    parent->avail = child->avail;
}

/* Skip the rest of a structure. */
static enum pd_tls_hello_status rd_skip_rest(struct rd *r)
{
    if (r->left > r->avail)
        return PD_TLS_HELLO_NEED_MORE;
    rd_take(r, NULL, r->left);
    return PD_TLS_HELLO_OK;
}

#define TRY(expr)                                  \
    do {                                           \
        enum pd_tls_hello_status try_st_ = (expr); \
        if (try_st_ != PD_TLS_HELLO_OK)            \
            return try_st_;                        \
    } while (0)

static enum pd_tls_hello_status fills(const struct rd *parent, const char *what, struct pd_err *err)
{
    if (parent->left != 0) {
        pd_err_set(err, "%s leaves %zu byte%s unused in the %s; expected it to fill the %s exactly",
                   what, parent->left, parent->left == 1 ? "" : "s", parent->name, parent->name);
        return PD_TLS_HELLO_INVALID;
    }
    return PD_TLS_HELLO_OK;
}

static enum pd_tls_hello_status parse_sni(struct rd *ext, struct pd_tls_hello *out,
                                          struct pd_err *err)
{
    if (ext->left == 0) {
        pd_err_set(
            err, "server_name extension is empty; expected a server_name_list with one host_name");
        return PD_TLS_HELLO_INVALID;
    }
    size_t list_len, type, name_len;
    struct rd list, name;
    TRY(rd_uint(ext, 2, &list_len, "server_name_list length", err));
    TRY(sub_begin(ext, list_len, &list, "server_name_list", err));
    TRY(fills(ext, "server_name_list", err));
    if (list_len == 0) {
        pd_err_set(err, "server_name_list is empty; expected one host_name");
        return PD_TLS_HELLO_INVALID;
    }
    TRY(rd_uint(&list, 1, &type, "server_name type", err));
    if (type != 0) {
        pd_err_set(err, "server_name entry of type %zu; expected host_name (0)", type);
        return PD_TLS_HELLO_INVALID;
    }
    TRY(rd_uint(&list, 2, &name_len, "host_name length", err));
    TRY(sub_begin(&list, name_len, &name, "host_name", err));
    if (list.left != 0) {
        pd_err_set(err,
                   "server_name_list has %zu more byte%s after the host_name; expected exactly one "
                   "host_name entry",
                   list.left, list.left == 1 ? "" : "s");
        return PD_TLS_HELLO_INVALID;
    }
    if (name_len == 0) {
        pd_err_set(err, "host_name is empty; expected a host name");
        return PD_TLS_HELLO_INVALID;
    }
    if (name_len > PD_HOST_MAX + 1) {
        pd_err_set(err, "host_name is %zu bytes; expected at most %u (%u with one trailing dot)",
                   name_len, PD_HOST_MAX, PD_HOST_MAX + 1);
        return PD_TLS_HELLO_INVALID;
    }
    uint8_t raw[PD_HOST_MAX + 1];
    TRY(rd_copy(&name, raw, name_len, "host_name", err));
    sub_end(&list, &name);
    sub_end(ext, &list);
    if (!pd_host_canon_name((const char *)raw, name_len, out->sni, &out->sni_len, err)) {
        pd_err_prefix(err, "server_name");
        out->sni[0] = '\0';
        out->sni_len = 0;
        return PD_TLS_HELLO_INVALID;
    }
    out->has_sni = true;
    return PD_TLS_HELLO_OK;
}

static enum pd_tls_hello_status parse_alpn(struct rd *ext, struct pd_tls_hello *out,
                                           struct pd_err *err)
{
    size_t list_len;
    struct rd list;
    TRY(rd_uint(ext, 2, &list_len, "protocol_name_list length", err));
    TRY(sub_begin(ext, list_len, &list, "protocol_name_list", err));
    TRY(fills(ext, "protocol_name_list", err));
    if (list_len == 0) {
        pd_err_set(err, "ALPN protocol_name_list is empty; expected at least one protocol name");
        return PD_TLS_HELLO_INVALID;
    }
    while (list.left > 0) {
        size_t plen;
        struct rd proto;
        TRY(rd_uint(&list, 1, &plen, "protocol name length", err));
        if (plen == 0) {
            pd_err_set(err, "ALPN protocol name %zu is empty; expected 1..255 bytes",
                       out->alpn_count + 1);
            return PD_TLS_HELLO_INVALID;
        }
        TRY(sub_begin(&list, plen, &proto, "protocol name", err));
        if (out->alpn_count == 0) {
            TRY(rd_copy(&proto, out->alpn_first, plen, "protocol name", err));
            out->alpn_first_len = plen;
        } else {
            TRY(rd_skip_rest(&proto));
        }
        sub_end(&list, &proto);
        out->alpn_count++;
    }
    sub_end(ext, &list);
    out->has_alpn = true;
    return PD_TLS_HELLO_OK;
}

static enum pd_tls_hello_status parse_versions(struct rd *ext, struct pd_tls_hello *out,
                                               struct pd_err *err)
{
    size_t list_len;
    struct rd list;
    TRY(rd_uint(ext, 1, &list_len, "supported_versions length", err));
    TRY(sub_begin(ext, list_len, &list, "supported_versions list", err));
    TRY(fills(ext, "supported_versions list", err));
    if (list_len < 2 || list_len % 2 != 0) {
        pd_err_set(err,
                   "supported_versions list is %zu bytes; expected an even number from 2 to 254",
                   list_len);
        return PD_TLS_HELLO_INVALID;
    }
    while (list.left > 0) {
        size_t v;
        TRY(rd_uint(&list, 2, &v, "version", err));
        if (v == 0x0304)
            out->offers_tls13 = true;
    }
    sub_end(ext, &list);
    out->has_supported_versions = true;
    return PD_TLS_HELLO_OK;
}

static bool is_ech_type(size_t type)
{
    return (type >= 0xfe08 && type <= PD_TLS_EXT_ECH) || type == PD_TLS_EXT_ESNI;
}

static enum pd_tls_hello_status parse_extensions(struct rd *body, struct pd_tls_hello *out,
                                                 struct pd_err *err)
{
    size_t total;
    struct rd exts;
    TRY(rd_uint(body, 2, &total, "extensions length", err));
    TRY(sub_begin(body, total, &exts, "extensions block", err));
    TRY(fills(body, "extensions block", err));
    /* One bit per extension type: duplicates are refused (RFC 8446 4.2). */
    uint64_t seen[65536 / 64];
    memset(seen, 0, sizeof seen);
    bool psk_seen = false;
    while (exts.left > 0) {
        size_t type, elen;
        struct rd ext;
        TRY(rd_uint(&exts, 2, &type, "extension type", err));
        TRY(rd_uint(&exts, 2, &elen, "extension length", err));
        if (psk_seen) {
            pd_err_set(
                err,
                "extension %zu (0x%04zx) follows pre_shared_key; expected pre_shared_key to be the "
                "last extension",
                out->ext_count + 1, type);
            return PD_TLS_HELLO_INVALID;
        }
        if (seen[type / 64] & (UINT64_C(1) << (type % 64))) {
            pd_err_set(err,
                       "extension type 0x%04zx appears twice; expected each extension at most once",
                       type);
            return PD_TLS_HELLO_INVALID;
        }
        seen[type / 64] |= UINT64_C(1) << (type % 64);
        TRY(sub_begin(&exts, elen, &ext, "extension", err));
        switch (type) {
        case PD_TLS_EXT_SERVER_NAME:
            ext.name = "server_name extension";
            TRY(parse_sni(&ext, out, err));
            break;
        case PD_TLS_EXT_ALPN:
            ext.name = "ALPN extension";
            TRY(parse_alpn(&ext, out, err));
            break;
        case PD_TLS_EXT_SUPPORTED_VERSIONS:
            ext.name = "supported_versions extension";
            TRY(parse_versions(&ext, out, err));
            break;
        default:
            if (is_ech_type(type)) {
                out->has_ech = true;
                out->ech_type = (uint16_t)type;
            }
            if (type == PD_TLS_EXT_PRE_SHARED_KEY)
                psk_seen = true;
            TRY(rd_skip_rest(&ext));
            break;
        }
        sub_end(&exts, &ext);
        out->ext_count++;
    }
    sub_end(body, &exts);
    return PD_TLS_HELLO_OK;
}

static enum pd_tls_hello_status parse_body(struct rd *body, struct pd_tls_hello *out,
                                           struct pd_err *err)
{
    size_t v, n;
    struct rd sub;
    TRY(rd_uint(body, 2, &v, "legacy_version", err));
    if (v < 0x0301 || v > 0x0303) {
        pd_err_set(err, "legacy_version 0x%04zx; expected 0x0301..0x0303%s", v,
                   v == 0x0300 ? " (SSL 3.0 is refused)" : "");
        return PD_TLS_HELLO_INVALID;
    }
    out->legacy_version = (uint16_t)v;

    TRY(sub_begin(body, 32, &sub, "random", err));
    TRY(rd_skip_rest(&sub));
    sub_end(body, &sub);

    TRY(rd_uint(body, 1, &n, "session_id length", err));
    if (n > 32) {
        pd_err_set(err, "session_id length %zu; expected 0..32", n);
        return PD_TLS_HELLO_INVALID;
    }
    TRY(sub_begin(body, n, &sub, "session_id", err));
    TRY(rd_skip_rest(&sub));
    sub_end(body, &sub);

    TRY(rd_uint(body, 2, &n, "cipher_suites length", err));
    if (n < 2 || n % 2 != 0) {
        pd_err_set(err, "cipher_suites length %zu; expected an even number, at least 2", n);
        return PD_TLS_HELLO_INVALID;
    }
    TRY(sub_begin(body, n, &sub, "cipher_suites", err));
    TRY(rd_skip_rest(&sub));
    sub_end(body, &sub);

    TRY(rd_uint(body, 1, &n, "compression_methods length", err));
    if (n < 1) {
        pd_err_set(err, "compression_methods is empty; expected 1..255 methods including null (0)");
        return PD_TLS_HELLO_INVALID;
    }
    TRY(sub_begin(body, n, &sub, "compression_methods", err));
    bool has_null = false;
    while (sub.left > 0) {
        size_t m;
        TRY(rd_uint(&sub, 1, &m, "compression method", err));
        if (m == 0)
            has_null = true;
    }
    sub_end(body, &sub);
    if (!has_null) {
        pd_err_set(
            err, "compression_methods does not offer null (0); expected it among the %zu method%s",
            n, n == 1 ? "" : "s");
        return PD_TLS_HELLO_INVALID;
    }

    if (body->left == 0) /* no extensions at all (TLS 1.2 and older clients) */
        return PD_TLS_HELLO_OK;
    return parse_extensions(body, out, err);
}

enum pd_tls_hello_status pd_tls_hello_parse(const uint8_t *buf, size_t len,
                                            struct pd_tls_hello *out, struct pd_err *err)
{
    memset(out, 0, sizeof *out);
    if (len == 0 || !buf)
        return PD_TLS_HELLO_NEED_MORE;
    struct walk w;
    enum pd_tls_hello_status st = walk_records(buf, len, &w, err);
    if (st == PD_TLS_HELLO_NOT_TLS)
        return st;
    if (st == PD_TLS_HELLO_INVALID)
        goto invalid;
    if (w.hs_have < 4)
        return PD_TLS_HELLO_NEED_MORE;

    /* The handshake header may itself be split over records: start at the first record's data and
     * step over the 4 header bytes with the same cursor. */
    struct rd body = {
        .buf = buf,
        .pos = 5,
        .rec_left = (size_t)buf[3] << 8 | buf[4],
        .avail = w.hs_have,
        .left = w.hs_total,
        .name = "handshake message",
    };
    rd_take(&body, NULL, 4);
    body.name = "ClientHello body";
    st = parse_body(&body, out, err);
    if (st == PD_TLS_HELLO_INVALID)
        goto invalid;
    if (st != PD_TLS_HELLO_OK || !w.complete) {
        memset(out, 0, sizeof *out);
        return PD_TLS_HELLO_NEED_MORE;
    }
    out->consumed = w.end;
    out->records = w.records;
    out->record_version = w.record_version;
    out->hello_len = w.hs_total - 4;
    return PD_TLS_HELLO_OK;

invalid:
    memset(out, 0, sizeof *out);
    pd_err_prefix(err, "TLS ClientHello");
    return PD_TLS_HELLO_INVALID;
}

enum pd_tls_hello_status pd_tls_hello_sniff(const uint8_t *buf, size_t len)
{
    if (len == 0 || !buf)
        return PD_TLS_HELLO_NEED_MORE;
    return buf[0] == CT_HANDSHAKE ? PD_TLS_HELLO_OK : PD_TLS_HELLO_NOT_TLS;
}

const char *pd_tls_hello_status_name(enum pd_tls_hello_status st)
{
    switch (st) {
    case PD_TLS_HELLO_OK:
        return "ok";
    case PD_TLS_HELLO_INVALID:
        return "invalid";
    case PD_TLS_HELLO_NEED_MORE:
        return "need_more";
    case PD_TLS_HELLO_NOT_TLS:
        return "not_tls";
    }
    return "unknown";
}
