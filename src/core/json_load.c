/*
 * json_load.c - a strict RFC 8259 recursive-descent JSON parser that builds jansson values and
 * records the position of every node and key (jansson's own parser gives none). See config.h for
 * the decisions. Recursion is bounded by PD_CONFIG_MAX_DEPTH.
 */
#include "core/config.h"

#include <stdio.h>
#include <string.h>

struct jctx {
    struct pd_config_doc *doc;
    const char *name;
    const unsigned char *p;
    const unsigned char *end;
    uint32_t line;
    uint32_t col;
    struct pd_err *err;
    char *sbuf; /* scratch for the string being decoded */
    size_t scap;
};

static struct pd_config_loc here(const struct jctx *c)
{
    return (struct pd_config_loc){c->line, c->col};
}

/* Consume one byte; columns count characters (UTF-8 lead bytes). Lines end at \n, \r\n or a lone
 * \r, as libyaml counts them, so that the same text gets the same positions in both formats. */
static void adv(struct jctx *c)
{
    unsigned char b = *c->p++;
    if (b == '\n' || (b == '\r' && (c->p >= c->end || *c->p != '\n'))) {
        c->line++;
        c->col = 1;
    } else if ((b & 0xC0) != 0x80) {
        c->col++;
    }
}

static bool at_end(const struct jctx *c)
{
    return c->p >= c->end;
}

static void skip_ws(struct jctx *c)
{
    while (!at_end(c) && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        adv(c);
}

__attribute__((format(printf, 3, 4))) static void fail_at(struct jctx *c, struct pd_config_loc loc,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pd_err_vset(c->err, fmt, ap);
    va_end(ap);
    pd_err_prefix(c->err, "%s:%u:%u", c->name, loc.line, loc.col);
}

static void fail_oom(struct jctx *c)
{
    pd_err_set(c->err, "%s: out of memory while loading JSON", c->name);
}

static size_t utf8_width(const unsigned char *p, const unsigned char *end)
{
    unsigned b = *p;
    size_t w = b >= 0xC2 && b <= 0xDF   ? 2
               : b >= 0xE0 && b <= 0xEF ? 3
               : b >= 0xF0 && b <= 0xF4 ? 4
                                        : 0;
    if (w == 0 || (size_t)(end - p) < w || !pd_cfg_utf8_valid((const char *)p, w))
        return 0;
    return w;
}

/* What is at the cursor, for messages. */
static const char *found(const struct jctx *c, char *buf, size_t cap)
{
    if (at_end(c)) {
        snprintf(buf, cap, "end of input");
        return buf;
    }
    unsigned b = *c->p;
    if (b == '/') {
        snprintf(buf, cap, "'/': comments are not allowed in JSON");
    } else if (b > 0x20 && b < 0x7f) {
        snprintf(buf, cap, "'%c'", (char)b);
    } else if (b < 0x80) {
        snprintf(buf, cap, "control character 0x%02X", b);
    } else {
        size_t w = utf8_width(c->p, c->end);
        char q[16];
        if (w)
            snprintf(buf, cap, "'%s'", pd_cfg_quote((const char *)c->p, w, 1, q, sizeof q));
        else
            snprintf(buf, cap, "byte 0x%02X (not valid UTF-8)", b);
    }
    return buf;
}

static int sb_put(struct jctx *c, size_t *len, const char *bytes, size_t n)
{
    if (c->scap - *len < n) {
        size_t ncap = c->scap ? c->scap : 64;
        while (ncap - *len < n)
            ncap *= 2;
        char *nb = pd_cfg_alloc(ncap);
        if (!nb) {
            fail_oom(c);
            return -1;
        }
        if (*len)
            memcpy(nb, c->sbuf, *len);
        pd_cfg_free(c->sbuf);
        c->sbuf = nb;
        c->scap = ncap;
    }
    memcpy(c->sbuf + *len, bytes, n);
    *len += n;
    return 0;
}

static int hex4(struct jctx *c, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        if (at_end(c))
            return -1;
        unsigned char h = *c->p;
        uint32_t d;
        if (h >= '0' && h <= '9')
            d = (uint32_t)(h - '0');
        else if (h >= 'a' && h <= 'f')
            d = (uint32_t)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            d = (uint32_t)(h - 'A' + 10);
        else
            return -1;
        v = v * 16 + d;
        adv(c);
    }
    *out = v;
    return 0;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int parse_escape(struct jctx *c, size_t *len)
{
    struct pd_config_loc eloc = here(c);
    adv(c); /* backslash */
    if (at_end(c)) {
        fail_at(c, eloc, "unterminated string (the input ends inside an escape)");
        return -1;
    }
    static const char from[] = "\"\\/bfnrt";
    static const char to[] = "\"\\/\b\f\n\r\t";
    const char *m = strchr(from, (char)*c->p);
    if (*c->p != 0 && m) {
        adv(c);
        return sb_put(c, len, &to[m - from], 1);
    }
    if (*c->p != 'u') {
        char f[64];
        fail_at(c, eloc,
                "invalid escape: backslash followed by %s (expected one of \\\" \\\\ \\/ \\b \\f "
                "\\n \\r "
                "\\t \\uXXXX)",
                found(c, f, sizeof f));
        return -1;
    }
    adv(c);
    uint32_t cp;
    if (hex4(c, &cp) != 0) {
        fail_at(c, eloc, "invalid \\u escape (expected 4 hexadecimal digits)");
        return -1;
    }
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        fail_at(c, eloc, "unpaired low surrogate \\u%04X (it must follow a \\uD800-\\uDBFF escape)",
                cp);
        return -1;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo = 0;
        if ((size_t)(c->end - c->p) < 2 || c->p[0] != '\\' || c->p[1] != 'u') {
            fail_at(c, eloc,
                    "lone high surrogate \\u%04X (expected a \\uDC00-\\uDFFF escape to follow)",
                    cp);
            return -1;
        }
        adv(c);
        adv(c);
        if (hex4(c, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
            fail_at(c, eloc,
                    "lone high surrogate \\u%04X (expected a \\uDC00-\\uDFFF escape to follow)",
                    cp);
            return -1;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp == 0) {
        fail_at(c, eloc, "\\u0000 is not allowed: strings may not contain a NUL character");
        return -1;
    }
    char u[4];
    size_t un = utf8_encode(cp, u);
    return sb_put(c, len, u, un);
}

/* Decode a string at the cursor into c->sbuf[0..*len). */
static int parse_string(struct jctx *c, size_t *len)
{
    struct pd_config_loc start = here(c);
    adv(c); /* opening quote */
    *len = 0;
    for (;;) {
        if (at_end(c)) {
            fail_at(c, start, "unterminated string (no closing '\"' before the end of input)");
            return -1;
        }
        unsigned char b = *c->p;
        if (b == '"') {
            adv(c);
            return 0;
        }
        if (b == '\\') {
            if (parse_escape(c, len) != 0)
                return -1;
            continue;
        }
        if (b < 0x20) {
            if (b == '\n')
                fail_at(
                    c, start,
                    "unterminated string (a line break inside a string must be written as \\n)");
            else
                fail_at(c, here(c), "control character 0x%02X in a string (write it as \\u%04X)", b,
                        b);
            return -1;
        }
        size_t w = b < 0x80 ? 1 : utf8_width(c->p, c->end);
        if (w == 0) {
            fail_at(c, here(c),
                    "invalid UTF-8 (byte 0x%02X) in a string; the file must be UTF-8 text", b);
            return -1;
        }
        if (sb_put(c, len, (const char *)c->p, w) != 0)
            return -1;
        for (size_t i = 0; i < w; i++)
            adv(c);
    }
}

static bool is_digit(const struct jctx *c)
{
    return !at_end(c) && *c->p >= '0' && *c->p <= '9';
}

static json_t *parse_number(struct jctx *c, struct pd_config_loc loc)
{
    const unsigned char *start = c->p;
    char f[64];
    char q[64];
    bool is_int = true;
    if (*c->p == '-')
        adv(c);
    if (!is_digit(c)) {
        fail_at(c, here(c), "unexpected %s (expected a digit after '-')", found(c, f, sizeof f));
        return NULL;
    }
    if (*c->p == '0') {
        adv(c);
        if (is_digit(c)) {
            fail_at(c, loc, "leading zeros are not allowed in JSON numbers");
            return NULL;
        }
    } else {
        while (is_digit(c))
            adv(c);
    }
    if (!at_end(c) && *c->p == '.') {
        is_int = false;
        adv(c);
        if (!is_digit(c)) {
            fail_at(c, here(c), "unexpected %s (expected a digit after the decimal point)",
                    found(c, f, sizeof f));
            return NULL;
        }
        while (is_digit(c))
            adv(c);
    }
    if (!at_end(c) && (*c->p == 'e' || *c->p == 'E')) {
        is_int = false;
        adv(c);
        if (!at_end(c) && (*c->p == '+' || *c->p == '-'))
            adv(c);
        if (!is_digit(c)) {
            fail_at(c, here(c), "unexpected %s (expected a digit in the exponent)",
                    found(c, f, sizeof f));
            return NULL;
        }
        while (is_digit(c))
            adv(c);
    }
    const char *s = (const char *)start;
    size_t n = (size_t)(c->p - start);
    json_t *j;
    if (is_int) {
        bool neg = s[0] == '-';
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        uint64_t acc = 0;
        for (size_t i = neg ? 1 : 0; i < n; i++) {
            uint64_t d = (uint64_t)(s[i] - '0');
            if (acc > (limit - d) / 10) {
                fail_at(c, loc,
                        "integer %s is out of range (it must fit in a signed 64-bit integer)",
                        pd_cfg_quote(s, n, 40, q, sizeof q));
                return NULL;
            }
            acc = acc * 10 + d;
        }
        int64_t v = !neg                             ? (int64_t)acc
                    : acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN
                                                     : -(int64_t)acc;
        j = json_integer((json_int_t)v);
    } else {
        double d = 0;
        bool oom = false;
        if (pd_cfg_strtod(s, n, &d, &oom) != 0) {
            if (oom)
                fail_oom(c);
            else
                fail_at(c, loc, "number %s is out of range", pd_cfg_quote(s, n, 40, q, sizeof q));
            return NULL;
        }
        j = json_real(d);
    }
    if (!j)
        fail_oom(c);
    return j;
}

static json_t *parse_value(struct jctx *c, unsigned depth, struct pd_config_loc *loc);

static json_t *parse_literal(struct jctx *c, const char *word, json_t *value,
                             struct pd_config_loc loc)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) {
        fail_at(c, loc, "invalid literal (expected %s)", word);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        adv(c);
    return value;
}

/*
 * After an array element or object member: the closing bracket (consumed; returns 1), or a comma followed
 * by something other than the closing bracket (consumed; returns 0: parse the next one), or an error
 * (returns -1): anything else, or a trailing comma.
 */
static int after_element(struct jctx *c, char close, const char *element, const char *container,
                         struct pd_config_loc open)
{
    char f[64];
    skip_ws(c);
    if (!at_end(c) && *c->p == close) {
        adv(c);
        return 1;
    }
    if (at_end(c) || *c->p != ',') {
        fail_at(c, here(c), "unexpected %s (expected ',' or '%c' after %s; the %s starts at line %u, column %u)",
                found(c, f, sizeof f), close, element, container, open.line, open.col);
        return -1;
    }
    struct pd_config_loc comma = here(c);
    adv(c);
    skip_ws(c);
    if (!at_end(c) && *c->p == close) {
        fail_at(c, comma, "trailing comma: JSON does not allow ',' before '%c'", close);
        return -1;
    }
    return 0;
}

static json_t *parse_array(struct jctx *c, unsigned depth, struct pd_config_loc open)
{
    adv(c); /* '[' */
    json_t *arr = json_array();
    if (!arr) {
        fail_oom(c);
        return NULL;
    }
    skip_ws(c);
    if (!at_end(c) && *c->p == ']') {
        adv(c);
        return arr;
    }
    for (size_t i = 0;; i++) {
        struct pd_config_loc vloc;
        json_t *v = parse_value(c, depth, &vloc);
        if (!v)
            goto fail;
        if (json_array_append_new(arr, v) != 0 ||
            pd_cfg_record(c->doc, arr, NULL, 0, i, v, vloc, (struct pd_config_loc){0, 0}) != 0) {
            fail_oom(c);
            goto fail;
        }
        int next = after_element(c, ']', "an array element", "array", open);
        if (next > 0)
            return arr;
        if (next < 0)
            goto fail;
    }
fail:
    json_decref(arr);
    return NULL;
}

static json_t *parse_object(struct jctx *c, unsigned depth, struct pd_config_loc open)
{
    char f[64];
    char q[96];
    char small[128];
    adv(c); /* '{' */
    json_t *obj = json_object();
    if (!obj) {
        fail_oom(c);
        return NULL;
    }
    skip_ws(c);
    if (!at_end(c) && *c->p == '}') {
        adv(c);
        return obj;
    }
    for (;;) {
        skip_ws(c);
        if (at_end(c) || *c->p != '"') {
            fail_at(c, here(c),
                    "unexpected %s (expected a key in double quotes; the object starts at line %u, "
                    "column %u)",
                    found(c, f, sizeof f), open.line, open.col);
            goto fail;
        }
        struct pd_config_loc kloc = here(c);
        size_t kn;
        if (parse_string(c, &kn) != 0)
            goto fail;
        /* sbuf is still NULL when every string so far was empty */
        const char *kbuf = c->sbuf ? c->sbuf : "";
        struct pd_config_loc first;
        if (pd_cfg_find_key(c->doc, obj, kbuf, kn, &first)) {
            fail_at(c, kloc, "duplicate key \"%s\" (first defined at line %u, column %u)",
                    pd_cfg_quote(kbuf, kn, 60, q, sizeof q), first.line, first.col);
            goto fail;
        }
        if (memchr(kbuf, '\0', kn)) { /* cannot happen: \u0000 is refused; kept as a guard */
            fail_at(c, kloc, "keys may not contain a NUL character");
            goto fail;
        }
        /* The scratch buffer is reused for the value: keep the key. */
        char *key = kn < sizeof small ? small : pd_cfg_alloc(kn + 1);
        if (!key) {
            fail_oom(c);
            goto fail;
        }
        if (kn)
            memcpy(key, c->sbuf, kn);
        key[kn] = '\0';
        skip_ws(c);
        json_t *v = NULL;
        struct pd_config_loc vloc;
        if (at_end(c) || *c->p != ':')
            fail_at(c, here(c), "unexpected %s (expected ':' after the key \"%s\")",
                    found(c, f, sizeof f), pd_cfg_quote(key, kn, 60, q, sizeof q));
        else {
            adv(c);
            v = parse_value(c, depth, &vloc);
        }
        int rc = -1;
        if (v) {
            rc = json_object_setn_new_nocheck(obj, key, kn, v);
            if (rc == 0)
                rc = pd_cfg_record(c->doc, obj, key, kn, 0, v, vloc, kloc);
            if (rc != 0)
                fail_oom(c);
        }
        if (key != small)
            pd_cfg_free(key);
        if (rc != 0)
            goto fail;
        int next = after_element(c, '}', "an object member", "object", open);
        if (next > 0)
            return obj;
        if (next < 0)
            goto fail;
    }
fail:
    json_decref(obj);
    return NULL;
}

static json_t *parse_value(struct jctx *c, unsigned depth, struct pd_config_loc *loc)
{
    char f[64];
    skip_ws(c);
    *loc = here(c);
    if (at_end(c)) {
        fail_at(c, *loc, "unexpected end of input (expected a value)");
        return NULL;
    }
    switch (*c->p) {
    case '{':
    case '[':
        if (depth + 1 > PD_CONFIG_MAX_DEPTH) {
            fail_at(c, *loc, "nesting is too deep (more than %d levels of objects and arrays)",
                    PD_CONFIG_MAX_DEPTH);
            return NULL;
        }
        return *c->p == '{' ? parse_object(c, depth + 1, *loc) : parse_array(c, depth + 1, *loc);
    case '"': {
        size_t n;
        if (parse_string(c, &n) != 0)
            return NULL;
        json_t *s = json_stringn_nocheck(c->sbuf ? c->sbuf : "", n);
        if (!s)
            fail_oom(c);
        return s;
    }
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return parse_number(c, *loc);
    case 't':
        return parse_literal(c, "true", json_true(), *loc);
    case 'f':
        return parse_literal(c, "false", json_false(), *loc);
    case 'n':
        return parse_literal(c, "null", json_null(), *loc);
    case '/':
        fail_at(c, *loc, "comments are not allowed in JSON");
        return NULL;
    case '\'':
        fail_at(c, *loc, "strings must be in double quotes in JSON");
        return NULL;
    case 'N':
    case 'I':
        fail_at(c, *loc, "unexpected %s (NaN and Infinity are not valid JSON numbers)",
                found(c, f, sizeof f));
        return NULL;
    case '+':
        fail_at(c, *loc, "a JSON number may not start with '+'");
        return NULL;
    case '.':
        fail_at(c, *loc, "a JSON number must start with a digit");
        return NULL;
    default:
        fail_at(
            c, *loc,
            "unexpected %s (expected a value: object, array, string, number, true, false or null)",
            found(c, f, sizeof f));
        return NULL;
    }
}

int pd_cfg_parse_json(struct pd_config_doc *doc, const char *buf, size_t len, struct pd_err *err)
{
    struct jctx c = {.doc = doc,
                     .name = pd_config_name(doc),
                     .p = (const unsigned char *)buf,
                     .end = (const unsigned char *)buf + len,
                     .line = 1,
                     .col = 1,
                     .err = err};
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        c.p += 3; /* a UTF-8 byte order mark; the position stays 1:1 */
    struct pd_config_loc loc;
    json_t *root = parse_value(&c, 0, &loc);
    int rc = -1;
    if (root) {
        pd_cfg_set_root(doc, root, loc); /* owned by the doc from here on */
        skip_ws(&c);
        if (!at_end(&c)) {
            char f[64];
            fail_at(&c, here(&c),
                    "unexpected %s after the JSON value (a file holds exactly one value)",
                    found(&c, f, sizeof f));
        } else {
            rc = 0;
        }
    }
    pd_cfg_free(c.sbuf);
    return rc;
}
