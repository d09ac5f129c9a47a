/*
 * response.c - response head formatting, Date, header validation, {"detail": ...} bodies (see server.h),
 * plus the request-view helpers that need nothing but the public structs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/server.h"
#include "core/utf8.h"

size_t pd_http_format_date(time_t t, char *out, size_t cap)
{
    /* Fixed English names: strftime's %a/%b would follow the process locale. */
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (cap < 30)
        return 0;
    if (!gmtime_r(&t, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11 ||
        tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
        memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", 30);
        return 29;
    }
    int n = snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
                     months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool pd_http_header_valid(const char *name, const char *value)
{
    if (!name || !value || !*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!is_tchar((unsigned char)*p))
            return false;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

static bool status_has_no_length(int status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

size_t pd_http_head_size(const struct pd_http_head *h)
{
    /* status line 64, Date 40, Content-Length 40, Connection 30, blank line 2, Content-Type 16 + value. */
    return 256 + (h->content_type ? strlen(h->content_type) : 0) + (h->extra ? h->extra_len : 0);
}

size_t pd_http_format_head(const struct pd_http_head *h, char *out, size_t cap)
{
    char date[32];
    if (pd_http_format_date(h->now, date, sizeof date) == 0)
        return 0;
    int status = h->status >= 100 && h->status <= 999 ? h->status : 500;
    size_t pos = 0;
    int n = snprintf(out, cap, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, pd_http_status_reason(status), date);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    pos = (size_t)n;
    if (h->content_type) {
        n = snprintf(out + pos, cap - pos, "Content-Type: %s\r\n", h->content_type);
        if (n < 0 || (size_t)n >= cap - pos)
            return 0;
        pos += (size_t)n;
    }
    if (!status_has_no_length(status)) {
        n = snprintf(out + pos, cap - pos, "Content-Length: %zu\r\n", h->content_length);
        if (n < 0 || (size_t)n >= cap - pos)
            return 0;
        pos += (size_t)n;
    }
    if (h->close || h->keep_alive_10) {
        n = snprintf(out + pos, cap - pos, "Connection: %s\r\n", h->close ? "close" : "keep-alive");
        if (n < 0 || (size_t)n >= cap - pos)
            return 0;
        pos += (size_t)n;
    }
    if (h->extra && h->extra_len) {
        if (h->extra_len >= cap - pos)
            return 0;
        memcpy(out + pos, h->extra, h->extra_len);
        pos += h->extra_len;
    }
    if (cap - pos < 3)
        return 0;
    memcpy(out + pos, "\r\n", 3);
    return pos + 2;
}

char *pd_http_detail_json(const char *msg, size_t *len)
{
    if (!msg)
        msg = "";
    size_t n = strlen(msg);
    /* Worst case every byte becomes "\u00XX" (6 bytes). */
    size_t cap = 16 + 6 * n;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    memcpy(out, "{\"detail\":\"", 11);
    o = 11;
    const unsigned char *s = (const unsigned char *)msg;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            /* json.dumps escapes \n \r \t by name and other controls as \u00XX; DEL passes as is. */
            if (c == 0x7f) {
                out[o++] = (char)c;
            } else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
                out[o++] = '\\';
                out[o++] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : c == '\b' ? 'b' : 'f';
            } else {
                static const char hex[] = "0123456789abcdef";
                memcpy(out + o, "\\u00", 4);
                o += 4;
                out[o++] = hex[c >> 4];
                out[o++] = hex[c & 15];
            }
            i++;
        } else {
            size_t l = pd_utf8_seq_len(s + i, n - i);
            if (l == 0) {
                out[o++] = '?';
                i++;
            } else {
                memcpy(out + o, s + i, l);
                o += l;
                i += l;
            }
        }
    }
    memcpy(out + o, "\"}", 3);
    o += 2;
    if (len)
        *len = o;
    return out;
}

const char *pd_http_param(const struct pd_http_req *req, const char *name)
{
    return pd_route_param_get(req->params, req->nparams, name);
}

ssize_t pd_http_query_get(const struct pd_http_req *req, const char *name, char *buf, size_t cap)
{
    return pd_http_query_find(req->query, name, buf, cap);
}

const struct pd_http_header *pd_http_req_header(const struct pd_http_req *req, const char *name)
{
    return pd_http_header_find(req->headers, req->nheaders, name);
}

/* ---- convenience replies on top of pd_http_reply_take() (server.c) ---- */

int pd_http_reply(struct pd_http_ctx *ctx, int status, const char *content_type, const void *body, size_t len)
{
    char *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy) {
            char *b = pd_http_detail_json("out of memory", &len);
            pd_http_reply_take(ctx, 503, "application/json", b, b ? len : 0);
            return -1;
        }
        memcpy(copy, body, len);
    }
    return pd_http_reply_take(ctx, status, content_type, copy, len);
}

int pd_http_reply_json(struct pd_http_ctx *ctx, int status, json_t *body)
{
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    /* json_dumpb into our own malloc: the buffer is freed with free() whatever jansson's allocator is. */
    size_t n = body ? json_dumpb(body, NULL, 0, flags) : 0;
    char *buf = n ? malloc(n) : NULL;
    if (buf && json_dumpb(body, buf, n, flags) != n) {
        free(buf);
        buf = NULL;
    }
    json_decref(body);
    if (!buf) {
        char *b = pd_http_detail_json("cannot encode the response", &n);
        pd_http_reply_take(ctx, 500, "application/json", b, b ? n : 0);
        return -1;
    }
    return pd_http_reply_take(ctx, status, "application/json", buf, n);
}

int pd_http_reply_error(struct pd_http_ctx *ctx, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(msg, sizeof msg, "error");
    size_t len = 0;
    char *b = pd_http_detail_json(msg, &len);
    return pd_http_reply_take(ctx, status, "application/json", b, b ? len : 0);
}
