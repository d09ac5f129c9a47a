/*
 * parse.h - strict HTTP/1.1 message head parser and chunked body decoder (RFC 9110, RFC 9112).
 *
 * Who calls it: the HTTP server (src/http/server.c), the egress gateway (client requests and upstream
 * responses). This is a security boundary: when a message could be read two ways, it is refused, never
 * guessed. Refused (each with a test in tests/unit/test_http_parse.c):
 *   - duplicate Content-Length (even with equal values), a comma list in Content-Length, a non-digit or
 *     overflowing length; Transfer-Encoding together with Content-Length; a request Transfer-Encoding other
 *     than exactly "chunked" (501), or any Transfer-Encoding on an HTTP/1.0 request;
 *   - obs-fold (a header line starting with SP/HTAB), whitespace between field name and colon, an empty or
 *     non-token field name, CTL bytes other than HTAB in field values, NUL anywhere;
 *   - bare CR or bare LF where CRLF is required (request line, header lines, the empty line, chunk lines);
 *   - a head larger than limits->max_head (431), more than limits->max_headers fields (431), a target
 *     longer than limits->max_target (414); a version other than HTTP/1.0 or HTTP/1.1 (505);
 *   - a method that is not a token; a target that is not a valid origin-, absolute-, authority- or
 *     asterisk-form for its method (authority-form only with CONNECT, CONNECT only with authority-form
 *     and an explicit port, asterisk only with OPTIONS); userinfo ("user@") in an authority; a fragment;
 *     characters outside RFC 3986 in the target; a malformed percent-escape;
 *   - a missing Host on HTTP/1.1, more than one Host, or a Host value that is not host[:port];
 *   - Content-Length or Transfer-Encoding on a CONNECT request.
 * Leading empty lines (CRLF) before a request line are skipped (RFC 9112 section 2.2), at most 8 of them.
 *
 * Output slices point into the caller's buffer; the buffer must outlive the parsed struct.
 * The parser never allocates and never writes outside the output struct. Canonical host form (case,
 * trailing dot, IP literal spellings) is NOT decided here: that is src/net/host.h.
 */
#ifndef PD_HTTP_PARSE_H
#define PD_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

enum pd_http_method {
    PD_HTTP_M_UNKNOWN = 0, /* a valid token that is not one of these; callers decide (405/501) */
    PD_HTTP_M_GET,
    PD_HTTP_M_HEAD,
    PD_HTTP_M_POST,
    PD_HTTP_M_PUT,
    PD_HTTP_M_DELETE,
    PD_HTTP_M_CONNECT,
    PD_HTTP_M_OPTIONS,
    PD_HTTP_M_TRACE,
    PD_HTTP_M_PATCH,
};

enum pd_http_target_form {
    PD_HTTP_FORM_ORIGIN,    /* /path?query */
    PD_HTTP_FORM_ABSOLUTE,  /* http://host[:port]/path?query */
    PD_HTTP_FORM_AUTHORITY, /* host:port (CONNECT) */
    PD_HTTP_FORM_ASTERISK,  /* * (OPTIONS) */
};

enum pd_http_framing {
    PD_HTTP_BODY_NONE,    /* no message body */
    PD_HTTP_BODY_LENGTH,  /* exactly content_length bytes */
    PD_HTTP_BODY_CHUNKED, /* chunked transfer coding; use pd_http_chunked */
    PD_HTTP_BODY_CLOSE,   /* responses only: body ends when the connection closes */
    PD_HTTP_BODY_TUNNEL,  /* responses only: 2xx to CONNECT or 101: bytes after the head are a tunnel */
};

/* Connection header tokens that matter to framing/keep-alive. */
#define PD_HTTP_CONN_CLOSE 0x1u
#define PD_HTTP_CONN_KEEPALIVE 0x2u
#define PD_HTTP_CONN_UPGRADE 0x4u

#define PD_HTTP_MAX_HEADERS 128   /* hard cap of the header array; limits->max_headers may be lower */
#define PD_HTTP_MAX_CONN_TOKENS 16 /* more Connection tokens than this is refused (400) */

struct pd_http_limits {
    size_t max_head;    /* bytes of the whole head including the final CRLF CRLF; default 16384 */
    size_t max_target;  /* bytes of the request target; default 8192 */
    size_t max_headers; /* number of header fields, <= PD_HTTP_MAX_HEADERS; default 100 */
};

#define PD_HTTP_LIMITS_DEFAULT {.max_head = 16384, .max_target = 8192, .max_headers = 100}

struct pd_http_header {
    struct pd_slice name;  /* as received (case preserved); compare case-insensitively */
    struct pd_slice value; /* leading and trailing SP/HTAB removed */
};

struct pd_http_error {
    int status;         /* HTTP status to answer with: 400, 414, 417, 431, 501, 505 (502 for bad responses) */
    const char *reason; /* static English text naming what was wrong and what is expected */
    size_t offset;      /* byte offset in the buffer where the problem was found */
};

struct pd_http_request {
    enum pd_http_method method;
    struct pd_slice method_str;
    struct pd_slice target; /* the request-target exactly as received */
    enum pd_http_target_form form;
    int version_minor; /* 0 or 1 */

    /* From the target (absolute and authority forms; empty for origin/asterisk). */
    struct pd_slice scheme;  /* absolute form only, e.g. "http" (case as received) */
    struct pd_slice host;    /* reg-name or IP literal; IPv6 literal WITHOUT the brackets */
    bool host_is_ipv6;       /* host was a bracketed IP-literal */
    uint16_t port;           /* explicit port, or 0 when none was given */
    struct pd_slice path;    /* path and query: origin form = target; absolute form = after authority,
                                "" when the target had none (callers send "/"); empty otherwise */

    /* From the Host header (empty slices when absent, which only HTTP/1.0 allows). */
    struct pd_slice host_header;      /* raw field value */
    struct pd_slice host_header_host; /* host part, IPv6 without brackets */
    bool host_header_is_ipv6;
    uint16_t host_header_port; /* 0 when none given */

    struct pd_http_header headers[PD_HTTP_MAX_HEADERS];
    size_t nheaders;

    enum pd_http_framing framing; /* NONE, LENGTH or CHUNKED for requests */
    uint64_t content_length;      /* valid when framing == LENGTH */

    unsigned conn_flags; /* PD_HTTP_CONN_* seen in Connection */
    struct pd_slice conn_tokens[PD_HTTP_MAX_CONN_TOKENS]; /* every Connection token (hop-by-hop names) */
    size_t nconn_tokens;
    bool keep_alive;      /* persistence per RFC 9112 section 9.3 (version + Connection) */
    bool expect_continue; /* Expect: 100-continue */
    struct pd_slice upgrade; /* Upgrade field value, empty if absent */

    size_t head_len; /* bytes of the head, including the final CRLF CRLF and skipped leading CRLFs */
};

struct pd_http_response {
    int version_minor;
    int status; /* 100..999 */
    struct pd_slice reason;
    struct pd_http_header headers[PD_HTTP_MAX_HEADERS];
    size_t nheaders;
    enum pd_http_framing framing;
    uint64_t content_length;
    unsigned conn_flags;
    struct pd_slice conn_tokens[PD_HTTP_MAX_CONN_TOKENS];
    size_t nconn_tokens;
    bool keep_alive; /* false when framing == CLOSE or TUNNEL */
    size_t head_len;
};

/*
 * Parse a request head from buf[0..len).
 * Returns > 0: the head length (req filled, req->head_len == return value);
 *           0: incomplete, call again with more bytes (never returned once len >= limits->max_head:
 *              that is a 431 error);
 *          -1: refused, err filled (req contents unspecified).
 * limits may be NULL for the defaults. Restartable: calling again on a longer buffer re-parses from 0.
 */
long pd_http_parse_request(const char *buf, size_t len, const struct pd_http_limits *limits,
                           struct pd_http_request *req, struct pd_http_error *err);

/*
 * Parse a response head. request_method is the method of the request it answers (framing depends on it:
 * HEAD responses and 1xx/204/304 have no body, a 2xx to CONNECT is a tunnel). Same returns as above;
 * errors carry status 502. A 1xx other than 101 is returned as a complete head with framing NONE:
 * the caller forwards it and parses the next head.
 */
long pd_http_parse_response(const char *buf, size_t len, const struct pd_http_limits *limits,
                            enum pd_http_method request_method, struct pd_http_response *resp,
                            struct pd_http_error *err);

/* Case-insensitive lookup of the first field with this name; NULL if absent. */
const struct pd_http_header *pd_http_header_find(const struct pd_http_header *headers, size_t n,
                                                 const char *name);

/*
 * True if a field must not be forwarded by a proxy: the fixed hop-by-hop set (Connection, Keep-Alive,
 * Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade)
 * or any name listed in the message's Connection field (tokens).
 */
bool pd_http_is_hop_by_hop(struct pd_slice name, const struct pd_slice *conn_tokens, size_t ntokens);

const char *pd_http_method_name(enum pd_http_method m); /* "GET"...; "UNKNOWN" for unknown */
const char *pd_http_status_reason(int status);          /* "Not Found"...; "Unknown" */

/*
 * Chunked transfer-coding decoder (RFC 9112 section 7.1), incremental, zero-copy.
 * Strict: chunk-size is 1..16 hex digits with a value of at most INT64_MAX; chunk extensions must be
 * ";" OWS token ["=" (token / quoted-string)], no other whitespace, and are skipped (at most 1024 bytes
 * per chunk line); CRLF exactly; trailer fields are validated like header fields (at most 64 fields,
 * 8192 bytes) and then discarded.
 */
enum pd_http_chunk_status {
    PD_HTTP_CHUNK_NEED_MORE = 0, /* all input consumed, body not finished */
    PD_HTTP_CHUNK_DATA = 1,      /* *data, *data_len: a span of body bytes inside the input */
    PD_HTTP_CHUNK_DONE = 2,      /* last chunk and trailers complete; *consumed ends the message */
    PD_HTTP_CHUNK_ERROR = -1,    /* err filled (status 400, or 502 when decoding a response) */
};

struct pd_http_chunked {
    int state;
    uint64_t remaining; /* bytes left in the current chunk's data */
    size_t line_len;    /* bytes seen in the current size/extension/trailer line */
    size_t trailer_bytes;
    size_t trailer_fields;
    unsigned digits;
    int error_status;   /* 400 for requests, 502 for responses */
    uint64_t total;     /* body bytes decoded so far */
};

void pd_http_chunked_init(struct pd_http_chunked *c, bool is_response);

/*
 * Consume bytes from in[0..len). *consumed is how many bytes were used (always set). On DATA, the span
 * lies inside in[0..*consumed). Call repeatedly with the unconsumed rest until NEED_MORE or DONE.
 */
enum pd_http_chunk_status pd_http_chunked_feed(struct pd_http_chunked *c, const char *in, size_t len,
                                               size_t *consumed, const char **data, size_t *data_len,
                                               struct pd_http_error *err);

#endif
