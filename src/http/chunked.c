/*
 * chunked.c - incremental, zero-copy decoder of the chunked transfer coding (RFC 9112 section 7.1).
 *
 * Called by the HTTP server and the egress gateway for request and response bodies whose head
 * parsed with framing PD_HTTP_BODY_CHUNKED (see parse.h for the contract). The decoder is a
 * byte-level state machine for the framing (chunk-size lines, extensions, CRLFs, trailer section)
 * and hands out the chunk data as spans of the caller's input, so data bytes are never looked at
 * one by one. It accepts input split at any byte boundary and gives identical results whatever the
 * split. No allocation.
 */
#include "http/parse.h"

#include <string.h>

/* Character classes: bits of cls[], generated from the RFC 9110 ABNF. */
#define C_TCHAR 0x01u /* tchar */
#define C_FVAL 0x02u /* field-value byte, also the byte after '\\': HTAB SP VCHAR obs-text */
#define C_QDTEXT 0x04u /* qdtext: HTAB SP 0x21 0x23-0x5B 0x5D-0x7E obs-text */
#define C_HEX 0x08u /* HEXDIG */

/* clang-format off */
static const unsigned char cls[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x00 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x10 */
    0x06, 0x07, 0x02, 0x07, 0x07, 0x07, 0x07, 0x07, 0x06, 0x06, 0x07, 0x07, 0x06, 0x07, 0x07, 0x06, /* 0x20 */
    0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 0x30 */
    0x06, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, /* 0x40 */
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x06, 0x02, 0x06, 0x07, 0x07, /* 0x50 */
    0x07, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, /* 0x60 */
    0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x06, 0x07, 0x06, 0x07, 0x00, /* 0x70 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 0x80 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 0x90 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 0xa0 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 0xb0 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 0xc0 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 0xd0 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 0xe0 */
    0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, 0x06, /* 0xf0 */
};
/* clang-format on */

#define MAX_SIZE_DIGITS 16
#define MAX_CHUNK_LINE 1024
#define MAX_TRAILER_FIELDS 64
#define MAX_TRAILER_BYTES 8192

/*
 * States. A chunk line is: chunk-size *( ";" OWS token [ "=" ( token / quoted-string ) ] ) CRLF.
 * The trailer section is *( field-line CRLF ) CRLF.
 */
enum {
    ST_SIZE0, /* first hex digit of a chunk-size */
    ST_SIZE, /* further hex digits, ';' or CR */
    ST_EXT_OWS, /* after ';': OWS, then the extension name */
    ST_EXT_NAME, /* in the extension name */
    ST_EXT_VAL0, /* after '=' */
    ST_EXT_TOKEN, /* in a token value */
    ST_EXT_QS, /* in a quoted-string value */
    ST_EXT_QP, /* after '\' in a quoted-string */
    ST_EXT_END, /* after the closing quote */
    ST_SIZE_LF, /* CR of the chunk line seen */
    ST_DATA, /* chunk data: c->remaining bytes */
    ST_DATA_CR, /* CR after the data */
    ST_DATA_LF, /* LF after the data */
    ST_TRL0, /* start of a trailer line or of the final empty line */
    ST_TRL_NAME, /* in a trailer field name */
    ST_TRL_VAL, /* in a trailer field value */
    ST_TRL_LF, /* CR of a trailer line seen */
    ST_END_LF, /* CR of the final empty line seen */
    ST_DONE,
    ST_ERROR,
};

/* Error reasons; each has a request and an upstream-response wording. */
#define CHUNK_ERRORS(X)                                                           \
    X(E_NONE, "")                                                                 \
    X(E_SIZE, "chunk line must start with a hex chunk-size")                      \
    X(E_SIZE_LONG, "chunk-size longer than 16 hex digits")                        \
    X(E_SIZE_BIG, "chunk-size overflows a signed 64-bit length")                  \
    X(E_AFTER_SIZE, "chunk-size must be followed by ';' or CRLF (no whitespace)") \
    X(E_EXT, "malformed chunk extension (expected ;name[=token|\"quoted\"])")     \
    X(E_LINE_LONG, "chunk line longer than 1024 bytes")                           \
    X(E_BARE_CR, "bare CR where CRLF is required")                                \
    X(E_BARE_LF, "bare LF where CRLF is required")                                \
    X(E_DATA_END, "chunk data not followed by CRLF")                              \
    X(E_OBS_FOLD, "obs-fold in trailer section")                                  \
    X(E_TRL_NAME, "trailer field name is not a token")                            \
    X(E_TRL_WS, "whitespace between trailer field name and colon")                \
    X(E_TRL_VALUE, "control character in trailer field value")                    \
    X(E_TRL_COUNT, "more than 64 trailer fields")                                 \
    X(E_TRL_SIZE, "trailer section larger than 8192 bytes")                       \
    X(E_FAILED, "decoder already failed")

#define X_ENUM(id, text) id,
#define X_REQ(id, text) "chunked request body: " text,
#define X_RESP(id, text) "upstream chunked response body: " text,
enum chunk_error { CHUNK_ERRORS(X_ENUM) };
static const char *const req_reasons[] = {CHUNK_ERRORS(X_REQ)};
static const char *const resp_reasons[] = {CHUNK_ERRORS(X_RESP)};

void pd_http_chunked_init(struct pd_http_chunked *c, bool is_response)
{
    memset(c, 0, sizeof *c);
    c->state = ST_SIZE0;
    c->error_status = is_response ? 502 : 400;
}

static unsigned hexval(unsigned char ch)
{
    return ch <= '9' ? (unsigned)(ch - '0') : (unsigned)((ch | 0x20) - 'a' + 10);
}

static bool is_ows(unsigned char ch)
{
    return ch == ' ' || ch == '\t';
}

/* The error for a byte no rule of the current state accepts: CR and LF get their own reason. */
static int unexpected(unsigned char ch, int otherwise)
{
    return ch == '\r' ? E_BARE_CR : ch == '\n' ? E_BARE_LF : otherwise;
}

/* One byte of the chunk-size and its CR (ST_SIZE0, ST_SIZE). */
static int size_byte(struct pd_http_chunked *c, unsigned char ch)
{
    if (cls[ch] & C_HEX) {
        if (c->digits == MAX_SIZE_DIGITS)
            return E_SIZE_LONG;
        /* At most 15 digits are already in remaining (< 2^60), so this cannot wrap. */
        c->remaining = c->remaining * 16 + hexval(ch);
        c->digits++;
        c->state = ST_SIZE;
        return c->remaining > (uint64_t)INT64_MAX ? E_SIZE_BIG : E_NONE;
    }
    if (c->state == ST_SIZE0)
        return unexpected(ch, E_SIZE);
    if (ch == ';')
        c->state = ST_EXT_OWS;
    else if (ch == '\r')
        c->state = ST_SIZE_LF;
    else
        return ch == '\n' ? E_BARE_LF : E_AFTER_SIZE;
    return E_NONE;
}

/* One byte of the chunk extensions: ";" OWS token [ "=" ( token / quoted-string ) ], repeated. */
static int ext_byte(struct pd_http_chunked *c, unsigned char ch)
{
    bool end_ok = false; /* may the extension end (';' or CR) here? */
    switch (c->state) {
    case ST_EXT_OWS:
        if (is_ows(ch))
            return E_NONE;
        if (!(cls[ch] & C_TCHAR))
            return unexpected(ch, E_EXT);
        c->state = ST_EXT_NAME;
        return E_NONE;
    case ST_EXT_NAME:
        if (cls[ch] & C_TCHAR)
            return E_NONE;
        if (ch == '=') {
            c->state = ST_EXT_VAL0;
            return E_NONE;
        }
        end_ok = true;
        break;
    case ST_EXT_VAL0:
        if (ch == '"')
            c->state = ST_EXT_QS;
        else if (cls[ch] & C_TCHAR)
            c->state = ST_EXT_TOKEN;
        else
            return unexpected(ch, E_EXT);
        return E_NONE;
    case ST_EXT_TOKEN:
        if (cls[ch] & C_TCHAR)
            return E_NONE;
        end_ok = true;
        break;
    case ST_EXT_QS:
        if (ch == '"')
            c->state = ST_EXT_END;
        else if (ch == '\\')
            c->state = ST_EXT_QP;
        else if (!(cls[ch] & C_QDTEXT))
            return unexpected(ch, E_EXT);
        return E_NONE;
    case ST_EXT_QP:
        if (!(cls[ch] & C_FVAL))
            return unexpected(ch, E_EXT);
        c->state = ST_EXT_QS;
        return E_NONE;
    default: /* ST_EXT_END */
        end_ok = true;
        break;
    }
    if (end_ok && ch == ';')
        c->state = ST_EXT_OWS;
    else if (end_ok && ch == '\r')
        c->state = ST_SIZE_LF;
    else
        return unexpected(ch, E_EXT);
    return E_NONE;
}

/* One byte of the trailer section: field lines checked like header fields, then the empty line. */
static int trailer_byte(struct pd_http_chunked *c, unsigned char ch)
{
    if (++c->trailer_bytes > MAX_TRAILER_BYTES)
        return E_TRL_SIZE;
    switch (c->state) {
    case ST_TRL0:
        if (ch == '\r') {
            c->state = ST_END_LF;
        } else if (cls[ch] & C_TCHAR) {
            if (++c->trailer_fields > MAX_TRAILER_FIELDS)
                return E_TRL_COUNT;
            c->state = ST_TRL_NAME;
        } else {
            return is_ows(ch) ? E_OBS_FOLD : unexpected(ch, E_TRL_NAME);
        }
        return E_NONE;
    case ST_TRL_NAME:
        if (ch == ':')
            c->state = ST_TRL_VAL;
        else if (!(cls[ch] & C_TCHAR))
            return is_ows(ch) ? E_TRL_WS : unexpected(ch, E_TRL_NAME);
        return E_NONE;
    case ST_TRL_VAL:
        if (ch == '\r')
            c->state = ST_TRL_LF;
        else if (!(cls[ch] & C_FVAL))
            return unexpected(ch, E_TRL_VALUE);
        return E_NONE;
    default: /* ST_TRL_LF, ST_END_LF */
        if (ch != '\n')
            return E_BARE_CR;
        c->state = c->state == ST_TRL_LF ? ST_TRL0 : ST_DONE;
        return E_NONE;
    }
}

/* One framing byte (any state but DATA, DONE and ERROR). */
static int framing_byte(struct pd_http_chunked *c, unsigned char ch)
{
    switch (c->state) {
    case ST_SIZE0:
    case ST_SIZE:
    case ST_EXT_OWS:
    case ST_EXT_NAME:
    case ST_EXT_VAL0:
    case ST_EXT_TOKEN:
    case ST_EXT_QS:
    case ST_EXT_QP:
    case ST_EXT_END:
        /* The CR ending the line is not counted: MAX_CHUNK_LINE bytes of size and extensions. */
        if (ch != '\r' && ++c->line_len > MAX_CHUNK_LINE)
            return E_LINE_LONG;
        /* ST_SIZE0 and ST_SIZE are the first two states; the others here are extension states. */
        return c->state <= ST_SIZE ? size_byte(c, ch) : ext_byte(c, ch);
    case ST_SIZE_LF:
        if (ch != '\n')
            return E_BARE_CR;
        c->state = c->remaining ? ST_DATA : ST_TRL0;
        return E_NONE;
    case ST_DATA_CR:
        if (ch != '\r')
            return ch == '\n' ? E_BARE_LF : E_DATA_END;
        c->state = ST_DATA_LF;
        return E_NONE;
    case ST_DATA_LF:
        if (ch != '\n')
            return E_BARE_CR;
        c->state = ST_SIZE0;
        c->line_len = 0;
        c->digits = 0;
        return E_NONE;
    default:
        return trailer_byte(c, ch);
    }
}

static enum pd_http_chunk_status fail(struct pd_http_chunked *c, int e, size_t off,
                                      struct pd_http_error *err)
{
    c->state = ST_ERROR;
    if (err) {
        err->status = c->error_status;
        err->reason = c->error_status == 502 ? resp_reasons[e] : req_reasons[e];
        err->offset = off;
    }
    return PD_HTTP_CHUNK_ERROR;
}

enum pd_http_chunk_status pd_http_chunked_feed(struct pd_http_chunked *c, const char *in,
                                               size_t len, size_t *consumed, const char **data,
                                               size_t *data_len, struct pd_http_error *err)
{
    const unsigned char *p = (const unsigned char *)in;
    *consumed = 0;
    if (data)
        *data = NULL;
    if (data_len)
        *data_len = 0;
    if (c->state == ST_DONE)
        return PD_HTTP_CHUNK_DONE;
    if (c->state == ST_ERROR)
        return fail(c, E_FAILED, 0, err);
    for (size_t i = 0; i < len; i++) {
        if (c->state == ST_DATA) {
            /* Hand out as much of the chunk as is here, as a span of the input. */
            size_t n = len - i;
            if ((uint64_t)n > c->remaining)
                n = (size_t)c->remaining;
            c->remaining -= n;
            c->total += n;
            if (c->remaining == 0)
                c->state = ST_DATA_CR;
            *consumed = i + n;
            if (data)
                *data = in + i;
            if (data_len)
                *data_len = n;
            return PD_HTTP_CHUNK_DATA;
        }
        int e = framing_byte(c, p[i]);
        if (e != E_NONE)
            return fail(c, e, i, err);
        if (c->state == ST_DONE) {
            *consumed = i + 1;
            return PD_HTTP_CHUNK_DONE;
        }
    }
    *consumed = len;
    return PD_HTTP_CHUNK_NEED_MORE;
}
