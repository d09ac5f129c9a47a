/*
 * proxy_util.c - pure helpers of the proxy engine (see proxy.h): denial bodies and responses, and
 * the body-end tracker that lets the proxy forward a message body in its original framing.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/proxy.h"
#include "http/parse.h"

const char *px_state_name(enum px_state s)
{
    static const char *const names[] = {"head",    "decide",       "tls_hello", "resolve",
                                        "connect", "upstream_tls", "forward",   "response",
                                        "relay",   "tunnel",       "closing",   "closed"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

char *px_denial_body(const char *error, const char *host, const char *reason, const char *rule,
                     size_t *len)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "error", json_string(error ? error : "denied"));
    json_t *h = host && *host ? json_string(host) : NULL;
    json_object_set_new(o, "host", h ? h : json_null());
    json_t *r = json_string(reason ? reason : "");
    json_object_set_new(o, "reason", r ? r : json_string("(reason not printable)"));
    json_t *ru = rule ? json_string(rule) : NULL;
    json_object_set_new(o, "rule", ru ? ru : json_null());
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s && len)
        *len = strlen(s);
    return s;
}

char *px_denial_response(int status, const char *error, const char *host, const char *reason,
                         const char *rule, unsigned retry_after, bool close, size_t *len)
{
    size_t blen = 0;
    char *body = px_denial_body(error, host, reason, rule, &blen);
    if (!body)
        return NULL;
    char extra[64] = "";
    if (retry_after)
        snprintf(extra, sizeof extra, "Retry-After: %u\r\n", retry_after);
    size_t cap = blen + 512;
    char *out = malloc(cap);
    if (!out) {
        free(body);
        return NULL;
    }
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "X-Paddock-Error: %s\r\n%s%s\r\n",
                     status, pd_http_status_reason(status), blen, error ? error : "denied", extra,
                     close ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n + blen >= cap) {
        free(body);
        free(out);
        return NULL;
    }
    memcpy(out + n, body, blen);
    free(body);
    *len = (size_t)n + blen;
    return out;
}

void px_body_init(struct px_body *b, enum pd_http_framing f, uint64_t content_length, bool response)
{
    memset(b, 0, sizeof *b);
    b->framing = f;
    switch (f) {
    case PD_HTTP_BODY_LENGTH:
        b->remaining = content_length;
        b->done = content_length == 0;
        break;
    case PD_HTTP_BODY_CHUNKED:
        pd_http_chunked_init(&b->ch, response);
        break;
    case PD_HTTP_BODY_CLOSE:
    case PD_HTTP_BODY_TUNNEL:
        break;
    case PD_HTTP_BODY_NONE:
    default:
        b->done = true;
        break;
    }
}

long px_body_feed(struct px_body *b, const char *buf, size_t len, struct pd_http_error *err)
{
    if (b->done)
        return 0;
    switch (b->framing) {
    case PD_HTTP_BODY_LENGTH: {
        size_t n = b->remaining < len ? (size_t)b->remaining : len;
        b->remaining -= n;
        b->done = b->remaining == 0;
        return (long)n;
    }
    case PD_HTTP_BODY_CHUNKED: {
        size_t off = 0;
        while (off < len) {
            size_t used = 0;
            const char *data;
            size_t dlen;
            enum pd_http_chunk_status st =
                pd_http_chunked_feed(&b->ch, buf + off, len - off, &used, &data, &dlen, err);
            if (st == PD_HTTP_CHUNK_ERROR)
                return -1;
            off += used;
            if (st == PD_HTTP_CHUNK_DONE) {
                b->done = true;
                break;
            }
            if (st == PD_HTTP_CHUNK_NEED_MORE)
                break;
        }
        return (long)off;
    }
    case PD_HTTP_BODY_CLOSE:
    case PD_HTTP_BODY_TUNNEL:
        return (long)len;
    case PD_HTTP_BODY_NONE:
    default:
        b->done = true;
        return 0;
    }
}
