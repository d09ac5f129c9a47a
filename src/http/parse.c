/*
 * parse.c - strict HTTP/1.1 request and response head parser (RFC 9110, RFC 9112).
 *
 * Called by the HTTP server (src/http/server.c) for client requests and by the egress gateway for
 * requests and upstream responses; parse.h is the contract and lists every refused form.
 *
 * How it works: the head is read line by line. Each line is located with memchr('\n') and its bytes
 * are checked against 256-entry character-class tables, so a malformed byte is refused as soon as
 * it is in the buffer, and 0 ("incomplete") is returned only when everything seen so far is a valid
 * prefix of some acceptable head. Field semantics (Content-Length, Transfer-Encoding, Host, ...)
 * are applied as each complete line arrives. Nothing is allocated and nothing global is written;
 * output slices point into the caller's buffer.
 */
#include "http/parse.h"

#include <string.h>

/* R_CR is internal to line handling: the line's content is complete and its CR has arrived, the LF
 * not yet. The content is then validated as a whole line, and R_MORE is returned if it is fine. */
enum { R_ERR = -1, R_MORE = 0, R_OK = 1, R_CR = 2 };

#define MAX_METHOD 32
#define MAX_LEADING_CRLF 8

/*
 * Character classes: bits of cls[], generated from the RFC 9110 / RFC 3986 ABNF, one bit per rule.
 * C_TARGET is a request-target byte (unreserved, sub-delims, ":" "@" "/" "?" "[" "]"); '%' is not
 * in it because a percent-escape is checked apart. C_FVAL is a field-value or reason-phrase byte.
 */
#define C_TCHAR 0x01u /* tchar: ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~ */
#define C_FVAL 0x02u /* HTAB SP 0x21-0x7E obs-text (0x80-0xFF) */
#define C_TARGET 0x04u /* see above */
#define C_HOST 0x08u /* accepted reg-name byte: ALPHA DIGIT - . _ ~ */
#define C_HEX 0x10u /* HEXDIG */
#define C_DIGIT 0x20u /* DIGIT */
#define C_SCHEME 0x40u /* scheme byte after the first: ALPHA DIGIT + - . */
#define C_V6 0x80u /* inside [ ]: HEXDIG : . */

/* clang-format off */
static const unsigned char cls[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x00 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x10 */
    0x02, 0x07, 0x02, 0x03, 0x07, 0x03, 0x07, 0x07, 0x06, 0x06, 0x07, 0x47, 0x06, 0x4f, 0xcf, 0x06, /* 0x20 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x86, 0x06, 0x02, 0x06, 0x02, 0x06, /* 0x30 */
    0x06, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, /* 0x40 */
    0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x06, 0x02, 0x06, 0x03, 0x0f, /* 0x50 */
    0x03, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0xdf, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, /* 0x60 */
    0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x4f, 0x02, 0x03, 0x02, 0x0f, 0x00, /* 0x70 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0x80 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0x90 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xa0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xb0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xc0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xd0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xe0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 0xf0 */
};
/* clang-format on */

/* Length of the longest prefix of p[0..n) whose bytes all have class bit. Four bytes per step
 * first: header values and targets are long runs of valid bytes. */
static inline size_t span(const char *s, size_t n, unsigned bit)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i + 4 <= n && (cls[p[i]] & cls[p[i + 1]] & cls[p[i + 2]] & cls[p[i + 3]] & bit))
        i += 4;
    while (i < n && (cls[p[i]] & bit))
        i++;
    return i;
}

static inline unsigned char lc(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* ASCII case-insensitive equality of p[0..n) with a lowercase literal; the caller checked that the
 * literal has n bytes. */
static bool eq_lower(const char *p, size_t n, const char *lit)
{
    for (size_t i = 0; i < n; i++)
        if (lc((unsigned char)p[i]) != (unsigned char)lit[i])
            return false;
    return true;
}

static bool slice_is(struct pd_slice s, const char *lit)
{
    return strlen(lit) == s.n && eq_lower(s.p, s.n, lit);
}

static inline bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* ---- parser state shared by requests and responses ---- */

struct hp {
    const char *buf;
    size_t len; /* bytes available */
    size_t limit; /* min(len, max_head): nothing at or past it is looked at */
    size_t max_head, max_target, max_headers;
    bool resp; /* parsing a response: every error is 502 with the "upstream" reason */
    int minor; /* HTTP minor version of the start line */
    struct pd_http_error *err;

    struct pd_http_header *hdrs; /* the output struct's array */
    size_t nhdrs;
    struct pd_slice *toks; /* the output struct's Connection token array */
    size_t ntoks;
    unsigned conn;
    bool cl_seen, te_seen, te_last_chunked, te_chunked_seen, host_seen, upgrade_seen;
    uint64_t cl;
};

static int fail(struct hp *h, int status, const char *req_reason, const char *resp_reason,
                size_t off)
{
    h->err->status = h->resp ? 502 : status;
    h->err->reason = h->resp ? resp_reason : req_reason;
    h->err->offset = off;
    return R_ERR;
}

/* msg must be a string literal: for responses it gets a prefix naming the upstream as the fault. */
#define FAIL(h, status, msg, off) fail((h), (status), msg, "upstream response: " msg, (off))

/* Refuses the byte at off. CR, LF, NUL and other CTLs get their own reason, other bytes msg. */
#define BAD(h, off, msg) bad_byte((h), (off), msg, "upstream response: " msg)

static int bad_byte(struct hp *h, size_t off, const char *req_reason, const char *resp_reason)
{
    unsigned char c = (unsigned char)h->buf[off];
    if (c == '\r')
        return FAIL(h, 400, "bare CR where CRLF is required", off);
    if (c == '\n')
        return FAIL(h, 400, "bare LF where CRLF is required", off);
    if (c == 0)
        return FAIL(h, 400, "NUL byte in message head", off);
    if (c < 0x20 || c == 0x7f)
        return FAIL(h, 400, "control character in message head", off);
    return fail(h, 400, req_reason, resp_reason, off);
}

/*
 * Locates the line that starts at pos (pos < limit).
 * R_OK: the line is complete; [pos, *end) is its content without CRLF, *next is the index after LF.
 * R_CR: the line's last byte so far is CR: [pos, *end) is its whole content, waiting for the LF.
 * R_MORE: no LF and no final CR yet; [pos, *end) is what arrived.
 * A LF not preceded by CR is refused here. A CR inside the content is left for the line's
 * validator, which refuses it as a bare CR (CR belongs to no character class).
 */
static int find_line(struct hp *h, size_t pos, size_t *end, size_t *next)
{
    const char *lf = memchr(h->buf + pos, '\n', h->limit - pos);
    if (lf) {
        size_t e = (size_t)(lf - h->buf);
        if (e == pos || h->buf[e - 1] != '\r')
            return FAIL(h, 400, "bare LF where CRLF is required", e);
        *end = e - 1;
        *next = e + 1;
        return R_OK;
    }
    size_t e = h->limit;
    if (e > pos && h->buf[e - 1] == '\r') {
        *end = e - 1;
        return R_CR;
    }
    *end = e;
    return R_MORE;
}

/* "HTTP/" DIGIT "." DIGIT at p[0..n): R_OK (8 bytes), R_MORE (a prefix) or R_ERR (*bad = index). */
static int match_version(const char *p, size_t n, int *major, int *minor, size_t *bad)
{
    static const char pat[] = "HTTP/0.0";
    for (size_t k = 0; k < 8; k++) {
        if (k == n)
            return R_MORE;
        bool ok = (k == 5 || k == 7) ? (cls[(unsigned char)p[k]] & C_DIGIT) != 0 : p[k] == pat[k];
        if (!ok) {
            *bad = k;
            return R_ERR;
        }
    }
    *major = p[5] - '0';
    *minor = p[7] - '0';
    return R_OK;
}

/* ---- host[:port] (absolute/authority-form targets and the Host field) ---- */

/*
 * host [":" port]. host is a reg-name limited to ALPHA DIGIT - . _ ~ (no percent-escapes, no
 * sub-delims) or "[" HEXDIG/":"/"." "]" containing a ':'; port is 1..65535 written in 1..5 digits.
 * Any '@' is refused first so that "user@host" gets the userinfo reason.
 */
static int authority(struct hp *h, const char *p, size_t n, bool need_port, struct pd_slice *host,
                     bool *v6, uint16_t *port)
{
    size_t off = (size_t)(p - h->buf), i;
    const char *at = memchr(p, '@', n);
    if (at)
        return FAIL(h, 400, "userinfo (user@) is not allowed in an authority",
                    (size_t)(at - h->buf));
    if (n == 0)
        return FAIL(h, 400, "empty host", off);
    if (p[0] == '[') {
        i = 1 + span(p + 1, n - 1, C_V6);
        if (i == n || p[i] != ']' || i == 1 || !memchr(p + 1, ':', i - 1))
            return FAIL(h, 400, "malformed IPv6 literal: expected [hex:hex...] without zone",
                        off + i);
        *host = (struct pd_slice){p + 1, i - 1};
        *v6 = true;
        i++;
    } else {
        i = span(p, n, C_HOST);
        if (i == 0)
            return FAIL(h, 400, "empty or malformed host", off);
        *host = (struct pd_slice){p, i};
        *v6 = false;
    }
    *port = 0;
    if (i == n)
        return need_port
                   ? FAIL(h, 400, "CONNECT target needs an explicit port (host:port)", off + i)
                   : R_OK;
    if (p[i] != ':')
        return FAIL(h, 400, "host may contain only letters, digits, '-', '.', '_', '~'", off + i);
    i++;
    size_t d = span(p + i, n - i, C_DIGIT);
    if (d == 0 || d > 5 || i + d != n)
        return FAIL(h, 400, "port must be 1 to 5 decimal digits", off + i);
    unsigned v = 0;
    for (size_t k = 0; k < d; k++)
        v = v * 10 + (unsigned)(p[i + k] - '0');
    if (v == 0 || v > 65535)
        return FAIL(h, 400, "port out of range 1..65535", off + i);
    *port = (uint16_t)v;
    return R_OK;
}

/* ---- request line ---- */

/* Indexed by enum pd_http_method. */
static const struct {
    const char *name;
    size_t len;
} methods[] = {
    [PD_HTTP_M_UNKNOWN] = {"UNKNOWN", 7}, [PD_HTTP_M_GET] = {"GET", 3},
    [PD_HTTP_M_HEAD] = {"HEAD", 4},       [PD_HTTP_M_POST] = {"POST", 4},
    [PD_HTTP_M_PUT] = {"PUT", 3},         [PD_HTTP_M_DELETE] = {"DELETE", 6},
    [PD_HTTP_M_CONNECT] = {"CONNECT", 7}, [PD_HTTP_M_OPTIONS] = {"OPTIONS", 7},
    [PD_HTTP_M_TRACE] = {"TRACE", 5},     [PD_HTTP_M_PATCH] = {"PATCH", 5},
};

/* Method names are case-sensitive (RFC 9110 section 9.1): "get" is a valid but unknown token. */
static enum pd_http_method method_of(const char *p, size_t n)
{
    for (unsigned m = PD_HTTP_M_GET; m <= PD_HTTP_M_PATCH; m++)
        if (methods[m].len == n && memcmp(methods[m].name, p, n) == 0)
            return (enum pd_http_method)m;
    return PD_HTTP_M_UNKNOWN;
}

/*
 * Scans the request-target starting at t up to the SP that ends it (R_OK, *sp = its index).
 * R_MORE: the available part of the line ended first and what was seen is valid so far.
 * Only the byte repertoire, percent-escapes and max_target are checked here; the form is checked by
 * target_form() once the whole target is known.
 */
/*
 * Bytes RFC 3986 excludes but WHATWG URL serialisers (browsers, Node's fetch, Python's requests) leave
 * raw in a query: refusing them would break real clients, and none of them affects framing or where
 * the path ends, so they are accepted after the first '?' only. '"', '<' and '>' stay refused (WHATWG
 * percent-encodes them), as does every one of these in the path ('\\' is a path separator to WHATWG).
 */
static bool query_extra(unsigned char c)
{
    return c == '{' || c == '}' || c == '|' || c == '^' || c == '\\' || c == '`';
}

static int scan_target(struct hp *h, size_t t, size_t end, size_t *sp)
{
    const char *b = h->buf;
    size_t i = t;
    for (;;) {
        i += span(b + i, end - i, C_TARGET);
        if (i - t > h->max_target)
            return FAIL(h, 414, "request target longer than max_target", t + h->max_target);
        if (i == end)
            return R_MORE;
        if (b[i] == ' ') {
            if (i == t)
                return FAIL(h, 400, "empty request target (exactly one SP must separate parts)", i);
            *sp = i;
            return R_OK;
        }
        if (query_extra((unsigned char)b[i]) && memchr(b + t, '?', i - t)) {
            i++;
            continue;
        }
        if (b[i] != '%')
            return b[i] == '#' ? FAIL(h, 400, "fragment (#) in request target", i)
                               : BAD(h, i, "character not allowed in request target (RFC 3986)");
        for (size_t k = 1; k <= 2; k++) {
            if (i + k == end)
                return end - t > h->max_target
                           ? FAIL(h, 414, "request target longer than max_target",
                                  t + h->max_target)
                           : R_MORE;
            if (!(cls[(unsigned char)b[i + k]] & C_HEX))
                return FAIL(h, 400, "malformed percent-escape in request target", i);
        }
        i += 3;
    }
}

/* '[' or ']' in the path part (before any '?'): they belong only around an IPv6 host. In the query
 * they are accepted, as WHATWG serialisers send them raw (?a[]=1). */
static bool has_bracket(const char *p, size_t n)
{
    const char *q = memchr(p, '?', n);
    size_t path_len = q ? (size_t)(q - p) : n;
    return memchr(p, '[', path_len) || memchr(p, ']', path_len);
}

/* Origin, absolute, authority or asterisk form as allowed for the method (RFC 9112 3.2). */
static int target_form(struct hp *h, struct pd_http_request *req, size_t t, size_t n)
{
    const char *p = h->buf + t;
    bool connect = req->method == PD_HTTP_M_CONNECT;
    req->target = (struct pd_slice){p, n};
    if (connect) {
        req->form = PD_HTTP_FORM_AUTHORITY;
        return authority(h, p, n, true, &req->host, &req->host_is_ipv6, &req->port);
    }
    if (p[0] == '/') {
        if (has_bracket(p, n))
            return FAIL(h, 400, "'[' or ']' outside an IPv6 host in request target", t);
        req->form = PD_HTTP_FORM_ORIGIN;
        req->path = req->target;
        return R_OK;
    }
    if (p[0] == '*') {
        if (n != 1 || req->method != PD_HTTP_M_OPTIONS)
            return FAIL(h, 400, "asterisk-form target is only \"*\" and only with OPTIONS", t);
        req->form = PD_HTTP_FORM_ASTERISK;
        return R_OK;
    }
    size_t s =
        ((unsigned)(lc((unsigned char)p[0]) - 'a') < 26u) ? 1 + span(p + 1, n - 1, C_SCHEME) : 0;
    if (s == 0 || n - s < 3 || memcmp(p + s, "://", 3) != 0)
        return FAIL(h, 400, "request target is neither origin-form (/path) nor absolute-form", t);
    size_t a = s + 3, e = a;
    while (e < n && p[e] != '/' && p[e] != '?')
        e++;
    if (authority(h, p + a, e - a, false, &req->host, &req->host_is_ipv6, &req->port) != R_OK)
        return R_ERR;
    if (has_bracket(p + e, n - e))
        return FAIL(h, 400, "'[' or ']' outside an IPv6 host in request target", t + e);
    req->form = PD_HTTP_FORM_ABSOLUTE;
    req->scheme = (struct pd_slice){p, s};
    req->path = (struct pd_slice){p + e, n - e};
    return R_OK;
}

/* The part after the target's SP: HTTP-version, then the end of the line. */
static int request_version(struct hp *h, size_t v, size_t end, bool complete)
{
    int major = 0, minor = 0;
    size_t bad = 0;
    int r = match_version(h->buf + v, end - v, &major, &minor, &bad);
    if (r == R_ERR)
        return BAD(h, v + bad, "malformed HTTP version (expected HTTP/1.1 or HTTP/1.0)");
    if (r == R_MORE)
        return complete ? FAIL(h, 400, "truncated HTTP version", end) : R_MORE;
    if (major != 1 || minor > 1)
        return FAIL(h, 505, "only HTTP/1.1 and HTTP/1.0 are supported", v);
    if (v + 8 != end)
        return BAD(h, v + 8, "unexpected bytes after the HTTP version");
    h->minor = minor;
    return complete ? R_OK : R_MORE;
}

/* method SP request-target SP HTTP-version CRLF, starting at pos. *next is set on R_OK. */
static int request_line(struct hp *h, size_t pos, struct pd_http_request *req, size_t *next)
{
    size_t end, sp = 0;
    int line = find_line(h, pos, &end, next);
    if (line == R_ERR)
        return R_ERR;
    bool complete = line != R_MORE;
    const char *b = h->buf;
    size_t i = pos + span(b + pos, end - pos, C_TCHAR);
    if (i - pos > MAX_METHOD)
        return FAIL(h, 501, "method longer than 32 bytes", pos + MAX_METHOD);
    if (i == end)
        return complete ? FAIL(h, 400, "request line has no target", i) : R_MORE;
    if (b[i] != ' ')
        return BAD(h, i, "method is not a token followed by one SP");
    if (i == pos)
        return FAIL(h, 400, "empty method", i);
    req->method_str = (struct pd_slice){b + pos, i - pos};
    req->method = method_of(b + pos, i - pos);
    int r = scan_target(h, i + 1, end, &sp);
    if (r == R_MORE)
        return complete ? FAIL(h, 400, "request line has no HTTP version", end) : R_MORE;
    if (r == R_ERR || target_form(h, req, i + 1, sp - (i + 1)) != R_OK)
        return R_ERR;
    r = request_version(h, sp + 1, end, complete);
    return r == R_OK && line == R_CR ? R_MORE : r;
}

/* ---- header fields ---- */

/*
 * field-name ":" OWS field-value OWS, on [s, e). R_MORE when the line is incomplete but valid so
 * far. On R_OK, *f holds the name and the value with its surrounding OWS removed.
 */
static int field_line(struct hp *h, size_t s, size_t e, bool complete, struct pd_http_header *f)
{
    const char *b = h->buf;
    size_t i = s + span(b + s, e - s, C_TCHAR);
    if (i == e)
        return complete ? FAIL(h, 400, "header line without ':'", i) : R_MORE;
    if (b[i] != ':') {
        if (is_ows(b[i]))
            return FAIL(h, 400, "whitespace between field name and colon", i);
        return BAD(h, i, "field name is not a token");
    }
    if (i == s)
        return FAIL(h, 400, "empty field name", i);
    size_t v = i + 1;
    while (v < e && is_ows(b[v]))
        v++;
    size_t ve = v + span(b + v, e - v, C_FVAL);
    if (ve != e)
        return BAD(h, ve, "invalid byte in field value");
    if (!complete)
        return R_MORE;
    while (ve > v && is_ows(b[ve - 1]))
        ve--;
    f->name = (struct pd_slice){b + s, i - s};
    f->value = (struct pd_slice){b + v, ve - v};
    return R_OK;
}

enum hdr_id { H_OTHER, H_HOST, H_CL, H_TE, H_CONN, H_EXPECT, H_UPGRADE };

/* Dispatch on length first: one case-insensitive compare at most per field. */
static enum hdr_id classify(struct pd_slice n)
{
    switch (n.n) {
    case 4:
        return eq_lower(n.p, 4, "host") ? H_HOST : H_OTHER;
    case 6:
        return eq_lower(n.p, 6, "expect") ? H_EXPECT : H_OTHER;
    case 7:
        return eq_lower(n.p, 7, "upgrade") ? H_UPGRADE : H_OTHER;
    case 10:
        return eq_lower(n.p, 10, "connection") ? H_CONN : H_OTHER;
    case 14:
        return eq_lower(n.p, 14, "content-length") ? H_CL : H_OTHER;
    case 17:
        return eq_lower(n.p, 17, "transfer-encoding") ? H_TE : H_OTHER;
    default:
        return H_OTHER;
    }
}

static size_t off_of(const struct hp *h, struct pd_slice s)
{
    return (size_t)(s.p - h->buf);
}

/* Next element of a #list (RFC 9110 section 5.6.1): OWS trimmed, empty elements skipped. */
static bool list_next(struct pd_slice v, size_t *i, struct pd_slice *out)
{
    while (*i < v.n) {
        size_t s = *i;
        const char *comma = memchr(v.p + s, ',', v.n - s);
        size_t e = comma ? (size_t)(comma - v.p) : v.n;
        *i = comma ? e + 1 : v.n;
        while (s < e && is_ows(v.p[s]))
            s++;
        while (e > s && is_ows(v.p[e - 1]))
            e--;
        if (s < e) {
            *out = (struct pd_slice){v.p + s, e - s};
            return true;
        }
    }
    return false;
}

/* 1*DIGIT, at most 19 digits, at most INT64_MAX; one Content-Length field only, never with TE. */
static int content_length(struct hp *h, struct pd_slice v)
{
    if (h->cl_seen)
        return FAIL(h, 400, "more than one Content-Length field", off_of(h, v));
    if (h->te_seen)
        return FAIL(h, 400, "both Transfer-Encoding and Content-Length", off_of(h, v));
    h->cl_seen = true;
    if (v.n == 0 || v.n > 19 || span(v.p, v.n, C_DIGIT) != v.n)
        return FAIL(h, 400, "Content-Length must be one number of 1 to 19 digits", off_of(h, v));
    uint64_t x = 0;
    for (size_t i = 0; i < v.n; i++)
        x = x * 10 + (uint64_t)(v.p[i] - '0');
    if (x > (uint64_t)INT64_MAX)
        return FAIL(h, 400, "Content-Length too large", off_of(h, v));
    h->cl = x;
    return R_OK;
}

/* Connection: #token. Every option is kept (they name hop-by-hop fields); close/keep-alive/upgrade
 * set flags. */
static int connection(struct hp *h, struct pd_slice v)
{
    size_t i = 0;
    struct pd_slice t;
    while (list_next(v, &i, &t)) {
        if (span(t.p, t.n, C_TCHAR) != t.n)
            return FAIL(h, 400, "Connection option is not a token", off_of(h, t));
        if (h->ntoks == PD_HTTP_MAX_CONN_TOKENS)
            return FAIL(h, 400, "more than 16 Connection options", off_of(h, t));
        h->toks[h->ntoks++] = t;
        if (slice_is(t, "close"))
            h->conn |= PD_HTTP_CONN_CLOSE;
        else if (slice_is(t, "keep-alive"))
            h->conn |= PD_HTTP_CONN_KEEPALIVE;
        else if (slice_is(t, "upgrade"))
            h->conn |= PD_HTTP_CONN_UPGRADE;
    }
    return R_OK;
}

/* Request Transfer-Encoding: exactly "chunked", once, on HTTP/1.1, never with Content-Length. */
static int request_te(struct hp *h, const struct pd_http_request *req, struct pd_slice v)
{
    size_t off = off_of(h, v);
    if (req->method == PD_HTTP_M_CONNECT)
        return FAIL(h, 400, "CONNECT request with Transfer-Encoding", off);
    if (h->minor == 0)
        return FAIL(h, 400, "Transfer-Encoding in an HTTP/1.0 request", off);
    if (h->te_seen)
        return FAIL(h, 400, "more than one Transfer-Encoding field", off);
    if (h->cl_seen)
        return FAIL(h, 400, "both Transfer-Encoding and Content-Length", off);
    h->te_seen = true;
    if (!slice_is(v, "chunked"))
        return FAIL(h, 501, "only chunked transfer coding is supported", off);
    return R_OK;
}

static int request_field(struct hp *h, struct pd_http_request *req, const struct pd_http_header *f)
{
    struct pd_slice v = f->value;
    switch (classify(f->name)) {
    case H_CL:
        if (req->method == PD_HTTP_M_CONNECT)
            return FAIL(h, 400, "CONNECT request with Content-Length", off_of(h, v));
        return content_length(h, v);
    case H_TE:
        return request_te(h, req, v);
    case H_CONN:
        return connection(h, v);
    case H_HOST:
        if (h->host_seen)
            return FAIL(h, 400, "more than one Host field", off_of(h, f->name));
        h->host_seen = true;
        req->host_header = v;
        if (v.n == 0)
            return FAIL(h, 400, "empty Host field", off_of(h, v));
        return authority(h, v.p, v.n, false, &req->host_header_host, &req->host_header_is_ipv6,
                         &req->host_header_port);
    case H_EXPECT:
        if (!slice_is(v, "100-continue"))
            return FAIL(h, 417, "only Expect: 100-continue is supported", off_of(h, v));
        /* RFC 9110 section 10.1.1: ignore 100-continue from an HTTP/1.0 client. */
        req->expect_continue = h->minor == 1;
        return R_OK;
    case H_UPGRADE:
        if (h->upgrade_seen)
            return FAIL(h, 400, "more than one Upgrade field", off_of(h, f->name));
        h->upgrade_seen = true;
        req->upgrade = v;
        return R_OK;
    default:
        return R_OK;
    }
}

/*
 * Response Transfer-Encoding: a list of codings, chunked at most once. RFC 9112 section 6.1: TE in
 * an HTTP/1.0 message means faulty framing, so it is refused.
 */
static int response_te(struct hp *h, struct pd_slice v)
{
    size_t i = 0, n = 0;
    struct pd_slice c;
    if (h->minor == 0)
        return FAIL(h, 502, "Transfer-Encoding in an HTTP/1.0 response", off_of(h, v));
    if (h->cl_seen)
        return FAIL(h, 502, "both Transfer-Encoding and Content-Length", off_of(h, v));
    h->te_seen = true;
    while (list_next(v, &i, &c)) {
        if (span(c.p, c.n, C_TCHAR) != c.n)
            return FAIL(h, 502, "transfer coding is not a token", off_of(h, c));
        h->te_last_chunked = slice_is(c, "chunked");
        if (h->te_last_chunked && h->te_chunked_seen)
            return FAIL(h, 502, "chunked transfer coding applied twice", off_of(h, c));
        h->te_chunked_seen |= h->te_last_chunked;
        n++;
    }
    return n ? R_OK : FAIL(h, 502, "empty Transfer-Encoding", off_of(h, v));
}

static int response_field(struct hp *h, const struct pd_http_header *f)
{
    switch (classify(f->name)) {
    case H_CL:
        return content_length(h, f->value);
    case H_TE:
        return response_te(h, f->value);
    case H_CONN:
        return connection(h, f->value);
    default:
        return R_OK;
    }
}

/*
 * Header lines from pos up to and including the empty line. R_OK: *end_out is the head length.
 * req is NULL when parsing a response.
 */
static int fields(struct hp *h, size_t pos, struct pd_http_request *req, size_t *end_out)
{
    const char *b = h->buf;
    for (;;) {
        if (pos >= h->limit)
            return R_MORE;
        if (b[pos] == '\r') {
            if (pos + 1 >= h->limit)
                return R_MORE;
            if (b[pos + 1] != '\n')
                return FAIL(h, 400, "bare CR where CRLF is required", pos);
            *end_out = pos + 2;
            return R_OK;
        }
        if (is_ows(b[pos]))
            return FAIL(h, 400, "obs-fold (line starting with whitespace) is not allowed", pos);
        if (h->nhdrs >= h->max_headers)
            return FAIL(h, 431, "more header fields than max_headers", pos);
        size_t end, next;
        int line = find_line(h, pos, &end, &next);
        if (line == R_ERR)
            return R_ERR;
        struct pd_http_header *f = &h->hdrs[h->nhdrs];
        int r = field_line(h, pos, end, line != R_MORE, f);
        if (r != R_OK)
            return r;
        h->nhdrs++;
        r = req ? request_field(h, req, f) : response_field(h, f);
        if (r != R_OK || line == R_CR)
            return r == R_OK ? R_MORE : r;
        pos = next;
    }
}

/* ---- entry points ---- */

static void hp_init(struct hp *h, const char *buf, size_t len, const struct pd_http_limits *limits,
                    bool resp, struct pd_http_error *err)
{
    static const struct pd_http_limits defaults = PD_HTTP_LIMITS_DEFAULT;
    const struct pd_http_limits *l = limits ? limits : &defaults;
    memset(h, 0, sizeof *h);
    h->buf = buf;
    h->len = len;
    h->max_head = l->max_head;
    h->max_target = l->max_target;
    h->max_headers = l->max_headers < PD_HTTP_MAX_HEADERS ? l->max_headers : PD_HTTP_MAX_HEADERS;
    h->limit = len < h->max_head ? len : h->max_head;
    h->resp = resp;
    h->err = err;
}

/* What R_MORE means to the caller: wait for more bytes, unless max_head bytes are already here. */
static long incomplete(struct hp *h)
{
    if (h->len >= h->max_head) {
        FAIL(h, 431, "message head larger than max_head", h->max_head);
        return -1;
    }
    return 0;
}

/* Leading CRLFs before a request line (RFC 9112 section 2.2), at most MAX_LEADING_CRLF. */
static int skip_empty_lines(struct hp *h, size_t *pos)
{
    const char *b = h->buf;
    size_t p = 0;
    for (unsigned n = 0; p < h->limit && (b[p] == '\r' || b[p] == '\n'); p += 2) {
        if (b[p] == '\n')
            return FAIL(h, 400, "bare LF where CRLF is required", p);
        if (p + 1 == h->limit)
            return R_MORE;
        if (b[p + 1] != '\n')
            return FAIL(h, 400, "bare CR where CRLF is required", p);
        if (++n > MAX_LEADING_CRLF)
            return FAIL(h, 400, "more than 8 empty lines before the request line", p);
    }
    *pos = p;
    return R_OK;
}

static void request_reset(struct pd_http_request *req)
{
    static const struct pd_slice empty = {NULL, 0};
    req->method = PD_HTTP_M_UNKNOWN;
    req->method_str = req->target = req->scheme = req->host = req->path = empty;
    req->form = PD_HTTP_FORM_ORIGIN;
    req->version_minor = 1;
    req->host_is_ipv6 = req->host_header_is_ipv6 = false;
    req->port = req->host_header_port = 0;
    req->host_header = req->host_header_host = req->upgrade = empty;
    req->nheaders = req->nconn_tokens = 0;
    req->framing = PD_HTTP_BODY_NONE;
    req->content_length = 0;
    req->conn_flags = 0;
    req->keep_alive = req->expect_continue = false;
    req->head_len = 0;
}

static bool persistent(int minor, unsigned conn)
{
    if (conn & PD_HTTP_CONN_CLOSE)
        return false;
    return minor == 1 || (conn & PD_HTTP_CONN_KEEPALIVE);
}

long pd_http_parse_request(const char *buf, size_t len, const struct pd_http_limits *limits,
                           struct pd_http_request *req, struct pd_http_error *err)
{
    struct pd_http_error scratch;
    struct hp h;
    size_t pos = 0, end = 0;
    hp_init(&h, buf, len, limits, false, err ? err : &scratch);
    request_reset(req);
    h.hdrs = req->headers;
    h.toks = req->conn_tokens;
    int r = skip_empty_lines(&h, &pos);
    if (r == R_OK)
        r = pos < h.limit ? request_line(&h, pos, req, &pos) : R_MORE;
    if (r == R_OK)
        r = fields(&h, pos, req, &end);
    if (r == R_MORE)
        return incomplete(&h);
    if (r == R_ERR)
        return -1;
    if (h.minor == 1 && !h.host_seen) {
        FAIL(&h, 400, "HTTP/1.1 request without Host", end - 2);
        return -1;
    }
    req->version_minor = h.minor;
    req->nheaders = h.nhdrs;
    req->nconn_tokens = h.ntoks;
    req->conn_flags = h.conn;
    req->framing = h.te_seen   ? PD_HTTP_BODY_CHUNKED
                   : h.cl_seen ? PD_HTTP_BODY_LENGTH
                               : PD_HTTP_BODY_NONE;
    req->content_length = h.cl_seen ? h.cl : 0;
    req->keep_alive = persistent(h.minor, h.conn);
    req->head_len = end;
    return (long)end;
}

/* HTTP-version SP 3DIGIT [SP reason-phrase], starting at pos. */
static int status_line(struct hp *h, size_t pos, struct pd_http_response *resp, size_t *next)
{
    size_t end, bad = 0;
    int major = 0, minor = 0;
    int line = find_line(h, pos, &end, next);
    if (line == R_ERR)
        return R_ERR;
    bool complete = line != R_MORE;
    const char *b = h->buf;
    int r = match_version(b + pos, end - pos, &major, &minor, &bad);
    if (r == R_ERR)
        return BAD(h, pos + bad, "status line does not start with HTTP/1.x");
    if (r == R_MORE)
        return complete ? FAIL(h, 502, "truncated HTTP version in status line", end) : R_MORE;
    if (major != 1 || minor > 1)
        return FAIL(h, 505, "HTTP version other than 1.0 or 1.1", pos);
    size_t i = pos + 8;
    if (i == end)
        return complete ? FAIL(h, 502, "status line without status code", end) : R_MORE;
    if (b[i] != ' ')
        return BAD(h, i, "expected one SP before the status code");
    int status = 0;
    for (i++; i < pos + 12; i++) {
        if (i == end)
            return complete ? FAIL(h, 502, "status code must be 3 digits", end) : R_MORE;
        if (!(cls[(unsigned char)b[i]] & C_DIGIT))
            return BAD(h, i, "status code must be 3 digits");
        status = status * 10 + (b[i] - '0');
    }
    if (status < 100)
        return FAIL(h, 502, "status code below 100", i - 3);
    if (i < end) {
        if (b[i] != ' ')
            return BAD(h, i, "expected SP or CRLF after the status code");
        size_t e = i + 1 + span(b + i + 1, end - i - 1, C_FVAL);
        if (e != end)
            return BAD(h, e, "invalid byte in reason phrase");
        resp->reason = (struct pd_slice){b + i + 1, end - i - 1};
    }
    resp->status = status;
    h->minor = minor;
    return line == R_OK ? R_OK : R_MORE;
}

/* RFC 9112 section 6.3, in order, for the request method this response answers. */
static enum pd_http_framing response_framing(const struct hp *h, int status, enum pd_http_method m)
{
    if (status == 101)
        return PD_HTTP_BODY_TUNNEL;
    if (m == PD_HTTP_M_HEAD || status < 200 || status == 204 || status == 304)
        return PD_HTTP_BODY_NONE;
    if (m == PD_HTTP_M_CONNECT && status < 300)
        return PD_HTTP_BODY_TUNNEL;
    if (h->te_seen)
        return h->te_last_chunked ? PD_HTTP_BODY_CHUNKED : PD_HTTP_BODY_CLOSE;
    if (h->cl_seen)
        return PD_HTTP_BODY_LENGTH;
    return PD_HTTP_BODY_CLOSE;
}

long pd_http_parse_response(const char *buf, size_t len, const struct pd_http_limits *limits,
                            enum pd_http_method request_method, struct pd_http_response *resp,
                            struct pd_http_error *err)
{
    struct pd_http_error scratch;
    struct hp h;
    size_t pos = 0, end = 0;
    hp_init(&h, buf, len, limits, true, err ? err : &scratch);
    resp->version_minor = 1;
    resp->status = 0;
    resp->reason = (struct pd_slice){NULL, 0};
    h.hdrs = resp->headers;
    h.toks = resp->conn_tokens;
    int r = len > 0 && h.limit > 0 ? status_line(&h, 0, resp, &pos) : R_MORE;
    if (r == R_OK)
        r = fields(&h, pos, NULL, &end);
    if (r == R_MORE)
        return incomplete(&h);
    if (r == R_ERR)
        return -1;
    resp->version_minor = h.minor;
    resp->nheaders = h.nhdrs;
    resp->nconn_tokens = h.ntoks;
    resp->conn_flags = h.conn;
    resp->framing = response_framing(&h, resp->status, request_method);
    resp->content_length = resp->framing == PD_HTTP_BODY_LENGTH ? h.cl : 0;
    resp->keep_alive = resp->framing != PD_HTTP_BODY_CLOSE &&
                       resp->framing != PD_HTTP_BODY_TUNNEL && persistent(h.minor, h.conn);
    resp->head_len = end;
    return (long)end;
}

/* ---- lookups ---- */

static bool eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lc((unsigned char)a[i]) != lc((unsigned char)b[i]))
            return false;
    return true;
}

const struct pd_http_header *pd_http_header_find(const struct pd_http_header *headers, size_t n,
                                                 const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (headers[i].name.n == nl && eq_nocase(headers[i].name.p, name, nl))
            return &headers[i];
    return NULL;
}

bool pd_http_is_hop_by_hop(struct pd_slice name, const struct pd_slice *conn_tokens, size_t ntokens)
{
    static const char *const fixed[] = {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (slice_is(name, fixed[i]))
            return true;
    for (size_t i = 0; i < ntokens; i++)
        if (conn_tokens[i].n == name.n && eq_nocase(conn_tokens[i].p, name.p, name.n))
            return true;
    return false;
}

const char *pd_http_method_name(enum pd_http_method m)
{
    return (unsigned)m <= PD_HTTP_M_PATCH ? methods[m].name : "UNKNOWN";
}

/* The RFC 9110 status codes, plus 429 (RFC 6585), 431 (RFC 6585) and 451 (RFC 7725). */
static const struct {
    int code;
    const char *text;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *pd_http_status_reason(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].code == status)
            return reasons[i].text;
    return "Unknown";
}
