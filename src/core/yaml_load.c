/*
 * yaml_load.c - YAML -> jansson with positions, over libyaml's event parser (see config.h for the
 * decisions: one document, no anchors/aliases, standard tags only, YAML 1.2 core schema for plain
 * scalars, duplicate keys refused).
 */
#include "core/config.h"

#include <stdio.h>
#include <string.h>

#include <yaml.h>

#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

struct yctx {
    struct pd_config_doc *doc;
    yaml_parser_t parser;
    const char *buf;
    size_t len;
    const char *name;
    struct pd_err *err;
};

enum skind { K_AUTO, K_STR, K_INT, K_FLOAT, K_BOOL, K_NULL };

static uint32_t clamp32(size_t v)
{
    return v >= UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static struct pd_config_loc mark_loc(yaml_mark_t m)
{
    return (struct pd_config_loc){clamp32(m.line + 1), clamp32(m.column + 1)};
}

__attribute__((format(printf, 3, 4))) static int fail_at(struct yctx *c, struct pd_config_loc loc,
                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pd_err_vset(c->err, fmt, ap);
    va_end(ap);
    pd_err_prefix(c->err, "%s:%u:%u", c->name, loc.line, loc.col);
    return -1;
}

static int fail_oom(struct yctx *c)
{
    pd_err_set(c->err, "%s: out of memory while loading YAML", c->name);
    return -1;
}

static size_t skip_bom(const char *b, size_t len)
{
    return len >= 3 && memcmp(b, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

/* Width of a line break at b[i] as libyaml counts them (\r\n, \r, \n, NEL, LS, PS), 0 if none. */
static size_t break_width(const char *b, size_t len, size_t i)
{
    if (b[i] == '\r')
        return i + 1 < len && b[i + 1] == '\n' ? 2 : 1;
    if (b[i] == '\n')
        return 1;
    if (i + 1 < len && (unsigned char)b[i] == 0xC2 && (unsigned char)b[i + 1] == 0x85)
        return 2;
    if (i + 2 < len && (unsigned char)b[i] == 0xE2 && (unsigned char)b[i + 1] == 0x80 &&
        ((unsigned char)b[i + 2] == 0xA8 || (unsigned char)b[i + 2] == 0xA9))
        return 3;
    return 0;
}

/* Position of a byte offset (reader errors report bytes). */
static struct pd_config_loc loc_of_offset(const struct yctx *c, size_t off)
{
    struct pd_config_loc l = {1, 1};
    size_t i = skip_bom(c->buf, c->len);
    if (off > c->len)
        off = c->len;
    while (i < off) {
        size_t bw = break_width(c->buf, c->len, i);
        if (bw) {
            l.line++;
            l.col = 1;
            i += bw;
            continue;
        }
        if (((unsigned char)c->buf[i] & 0xC0) != 0x80)
            l.col++;
        i++;
    }
    return l;
}

/* The byte at a libyaml mark (line/column in characters) or -1 when it cannot be found. */
static int byte_at_mark(const struct yctx *c, yaml_mark_t m)
{
    size_t i = skip_bom(c->buf, c->len);
    size_t line = 0;
    size_t col = 0;
    while (i < c->len) {
        if (line == m.line && col == m.column)
            return (unsigned char)c->buf[i];
        size_t bw = break_width(c->buf, c->len, i);
        if (bw) {
            if (line == m.line)
                return -1;
            line++;
            col = 0;
            i += bw;
            continue;
        }
        i++;
        while (i < c->len && ((unsigned char)c->buf[i] & 0xC0) == 0x80)
            i++;
        col++;
    }
    return -1;
}

static int parser_error(struct yctx *c)
{
    yaml_parser_t *p = &c->parser;
    const char *problem = p->problem ? p->problem : "syntax error";
    if (p->error == YAML_MEMORY_ERROR)
        return fail_oom(c);
    if (p->error == YAML_READER_ERROR) {
        struct pd_config_loc l = loc_of_offset(c, p->problem_offset);
        if (p->problem_value >= 0 && strstr(problem, "octet"))
            return fail_at(c, l, "%s (byte 0x%02X); a config file must be UTF-8 text", problem,
                           (unsigned)p->problem_value);
        if (p->problem_value >= 0)
            return fail_at(
                c, l, "%s (U+%04X); a config file must be UTF-8 text without control characters",
                problem, (unsigned)p->problem_value);
        return fail_at(c, l, "%s; a config file must be UTF-8 text without control characters",
                       problem);
    }
    struct pd_config_loc l = mark_loc(p->problem_mark);
    const char *hint = "";
    if (byte_at_mark(c, p->problem_mark) == '\t')
        hint = "; YAML does not allow tabs for indentation, use spaces";
    if (p->context) {
        struct pd_config_loc cl = mark_loc(p->context_mark);
        if (cl.line == l.line && cl.col == l.col)
            return fail_at(c, l, "%s (%s)%s", problem, p->context, hint);
        return fail_at(c, l, "%s (%s at line %u, column %u)%s", problem, p->context, cl.line,
                       cl.col, hint);
    }
    return fail_at(c, l, "%s%s", problem, hint);
}

static int next_event(struct yctx *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&c->parser, ev)) {
        memset(ev, 0, sizeof *ev); /* nothing to delete */
        return parser_error(c);
    }
    return 0;
}

/* "!!str" for the standard tags, the tag itself otherwise. */
static const char *short_tag(const char *tag, char *buf, size_t cap)
{
    size_t pl = sizeof YAML_TAG_PREFIX - 1;
    char q[80];
    if (strncmp(tag, YAML_TAG_PREFIX, pl) == 0)
        snprintf(buf, cap, "!!%s", pd_cfg_quote(tag + pl, strlen(tag + pl), 40, q, sizeof q));
    else
        snprintf(buf, cap, "%s", pd_cfg_quote(tag, strlen(tag), 40, q, sizeof q));
    return buf;
}

static int bad_tag(struct yctx *c, struct pd_config_loc loc, const char *tag)
{
    char t[100];
    return fail_at(
        c, loc, "unsupported tag '%s' (only !!str, !!int, !!float, !!bool and !!null are allowed)",
        short_tag(tag, t, sizeof t));
}

static int no_anchor(struct yctx *c, struct pd_config_loc loc, const yaml_char_t *anchor)
{
    char q[64];
    if (!anchor)
        return 0;
    return fail_at(
        c, loc, "anchors (&%s) are not supported in Paddock config files; write the value out",
        pd_cfg_quote((const char *)anchor, strlen((const char *)anchor), 40, q, sizeof q));
}

/* ---- YAML 1.2 core schema ---- */

static bool word_is(const char *v, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(v, w, n) == 0;
}

static bool is_null_word(const char *v, size_t n)
{
    return n == 0 || word_is(v, n, "~") || word_is(v, n, "null") || word_is(v, n, "Null") ||
           word_is(v, n, "NULL");
}

static int bool_word(const char *v, size_t n)
{
    if (word_is(v, n, "true") || word_is(v, n, "True") || word_is(v, n, "TRUE"))
        return 1;
    if (word_is(v, n, "false") || word_is(v, n, "False") || word_is(v, n, "FALSE"))
        return 0;
    return -1;
}

static int digit_value(char ch, unsigned base)
{
    int d;
    if (ch >= '0' && ch <= '9')
        d = ch - '0';
    else if (ch >= 'a' && ch <= 'f')
        d = ch - 'a' + 10;
    else if (ch >= 'A' && ch <= 'F')
        d = ch - 'A' + 10;
    else
        return -1;
    return d < (int)base ? d : -1;
}

/* 1: an integer (*out set), 0: not integer syntax, -1: integer syntax but out of int64 range. */
static int core_int(const char *v, size_t n, int64_t *out)
{
    unsigned base = 10;
    size_t i = 0;
    bool neg = false;
    if (n > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'o')) {
        base = v[1] == 'x' ? 16 : 8;
        i = 2;
    } else if (n > 0 && (v[0] == '-' || v[0] == '+')) {
        neg = v[0] == '-';
        i = 1;
    }
    if (i == n)
        return 0;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t acc = 0;
    bool over = false;
    for (; i < n; i++) {
        int d = digit_value(v[i], base);
        if (d < 0)
            return 0;
        if (acc > (limit - (uint64_t)d) / base)
            over = true;
        else
            acc = acc * base + (uint64_t)d;
    }
    if (over)
        return -1;
    if (neg)
        *out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    else
        *out = (int64_t)acc;
    return 1;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool core_float_syntax(const char *v, size_t n)
{
    size_t i = 0;
    if (i < n && (v[i] == '-' || v[i] == '+'))
        i++;
    size_t int_digits = 0;
    while (i < n && v[i] >= '0' && v[i] <= '9')
        i++, int_digits++;
    if (i < n && v[i] == '.') {
        i++;
        size_t frac = 0;
        while (i < n && v[i] >= '0' && v[i] <= '9')
            i++, frac++;
        if (int_digits == 0 && frac == 0)
            return false;
    } else if (int_digits == 0) {
        return false;
    }
    if (i < n && (v[i] == 'e' || v[i] == 'E')) {
        i++;
        if (i < n && (v[i] == '-' || v[i] == '+'))
            i++;
        size_t exp = 0;
        while (i < n && v[i] >= '0' && v[i] <= '9')
            i++, exp++;
        if (exp == 0)
            return false;
    }
    return i == n;
}

static bool is_inf_nan(const char *v, size_t n)
{
    if (n > 0 && (v[0] == '-' || v[0] == '+')) {
        v++, n--;
        return word_is(v, n, ".inf") || word_is(v, n, ".Inf") || word_is(v, n, ".INF");
    }
    return word_is(v, n, ".inf") || word_is(v, n, ".Inf") || word_is(v, n, ".INF") ||
           word_is(v, n, ".nan") || word_is(v, n, ".NaN") || word_is(v, n, ".NAN");
}

static json_t *make_real(struct yctx *c, struct pd_config_loc loc, const char *v, size_t n)
{
    char q[64];
    double d = 0;
    bool oom = false;
    if (pd_cfg_strtod(v, n, &d, &oom) != 0) {
        if (oom)
            fail_oom(c);
        else
            fail_at(c, loc, "number %s is out of range", pd_cfg_quote(v, n, 40, q, sizeof q));
        return NULL;
    }
    json_t *j = json_real(d);
    if (!j)
        fail_oom(c);
    return j;
}

static json_t *scalar_value(struct yctx *c, const yaml_event_t *ev, struct pd_config_loc loc)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    char q[96];
    if (no_anchor(c, loc, ev->data.scalar.anchor) != 0)
        return NULL;
    if (memchr(v, '\0', n)) {
        fail_at(c, loc, "strings may not contain a NUL character (\\0)");
        return NULL;
    }
    if (!pd_cfg_utf8_valid(v, n)) {
        fail_at(c, loc, "invalid UTF-8 in a scalar");
        return NULL;
    }
    enum skind kind = K_AUTO;
    if (tag) {
        static const struct {
            const char *name;
            enum skind kind;
        } tags[] = {{YAML_TAG_PREFIX "str", K_STR},
                    {YAML_TAG_PREFIX "int", K_INT},
                    {YAML_TAG_PREFIX "float", K_FLOAT},
                    {YAML_TAG_PREFIX "bool", K_BOOL},
                    {YAML_TAG_PREFIX "null", K_NULL}};
        size_t i = 0;
        while (i < sizeof tags / sizeof tags[0] && strcmp(tag, tags[i].name) != 0)
            i++;
        if (i == sizeof tags / sizeof tags[0]) {
            bad_tag(c, loc, tag);
            return NULL;
        }
        kind = tags[i].kind;
    } else if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        kind = K_STR;
    }
    json_t *j = NULL;
    int64_t iv = 0;
    int ir;
    switch (kind) {
    case K_STR:
        j = json_stringn_nocheck(v, n);
        break;
    case K_NULL:
        if (!is_null_word(v, n)) {
            fail_at(c, loc, "!!null value \"%s\" is not null (expected null, ~ or nothing)",
                    pd_cfg_quote(v, n, 40, q, sizeof q));
            return NULL;
        }
        return json_null();
    case K_BOOL:
        if (bool_word(v, n) < 0) {
            fail_at(c, loc, "!!bool value \"%s\" is not a boolean (expected true or false)",
                    pd_cfg_quote(v, n, 40, q, sizeof q));
            return NULL;
        }
        return json_boolean(bool_word(v, n) == 1);
    case K_INT:
    case K_FLOAT:
    case K_AUTO:
        if (kind == K_AUTO) {
            if (is_null_word(v, n))
                return json_null();
            if (bool_word(v, n) >= 0)
                return json_boolean(bool_word(v, n) == 1);
        }
        ir = core_int(v, n, &iv);
        if (ir < 0 && kind != K_FLOAT) {
            fail_at(c, loc,
                    "integer %s is out of range (it must fit in a signed 64-bit integer); "
                    "quote it to make it a string",
                    pd_cfg_quote(v, n, 40, q, sizeof q));
            return NULL;
        }
        if (ir > 0 && kind != K_FLOAT) {
            j = json_integer((json_int_t)iv);
            break;
        }
        if (kind == K_INT) {
            fail_at(c, loc, "!!int value \"%s\" is not an integer",
                    pd_cfg_quote(v, n, 40, q, sizeof q));
            return NULL;
        }
        if (is_inf_nan(v, n)) {
            fail_at(c, loc,
                    "%s cannot be used: JSON has no infinity or NaN (quote it to make it a string)",
                    pd_cfg_quote(v, n, 40, q, sizeof q));
            return NULL;
        }
        if (core_float_syntax(v, n))
            return make_real(c, loc, v, n);
        if (kind == K_FLOAT) {
            fail_at(c, loc, "!!float value \"%s\" is not a number",
                    pd_cfg_quote(v, n, 40, q, sizeof q));
            return NULL;
        }
        j = json_stringn_nocheck(v, n);
        break;
    }
    if (!j)
        fail_oom(c);
    return j;
}

/* ---- tree ---- */

static json_t *parse_node(struct yctx *c, const yaml_event_t *ev, unsigned depth,
                          struct pd_config_loc *loc);

static json_t *parse_sequence(struct yctx *c, unsigned depth)
{
    json_t *arr = json_array();
    if (!arr) {
        fail_oom(c);
        return NULL;
    }
    for (size_t i = 0;; i++) {
        yaml_event_t ev;
        if (next_event(c, &ev) != 0)
            goto fail;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return arr;
        }
        struct pd_config_loc l;
        json_t *v = parse_node(c, &ev, depth, &l);
        yaml_event_delete(&ev);
        if (!v)
            goto fail;
        if (json_array_append_new(arr, v) != 0 ||
            pd_cfg_record(c->doc, arr, NULL, 0, i, v, l, (struct pd_config_loc){0, 0}) != 0) {
            fail_oom(c);
            goto fail;
        }
    }
fail:
    json_decref(arr);
    return NULL;
}

/* 0 when the key event can be a key of obj; -1 with the error set otherwise. */
static int check_key(struct yctx *c, json_t *obj, const yaml_event_t *kev,
                     struct pd_config_loc kloc)
{
    char q[96];
    switch (kev->type) {
    case YAML_SCALAR_EVENT:
        break;
    case YAML_ALIAS_EVENT:
        return fail_at(c, kloc, "aliases (*%s) are not supported in Paddock config files",
                       pd_cfg_quote((const char *)kev->data.alias.anchor,
                                    strlen((const char *)kev->data.alias.anchor), 40, q, sizeof q));
    case YAML_MAPPING_START_EVENT:
        return fail_at(c, kloc, "mapping keys must be strings, found a mapping");
    case YAML_SEQUENCE_START_EVENT:
        return fail_at(c, kloc, "mapping keys must be strings, found a sequence");
    default:
        return fail_at(c, kloc, "expected a mapping key");
    }
    const char *k = (const char *)kev->data.scalar.value;
    size_t kn = kev->data.scalar.length;
    const char *tag = (const char *)kev->data.scalar.tag;
    if (no_anchor(c, kloc, kev->data.scalar.anchor) != 0)
        return -1;
    if (tag && strcmp(tag, YAML_TAG_PREFIX "str") != 0) {
        char t[100];
        return fail_at(c, kloc,
                       "mapping keys must be strings; the tag '%s' is not allowed on a key",
                       short_tag(tag, t, sizeof t));
    }
    if (kn == 0 && kev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        return fail_at(c, kloc, "empty mapping key (write the key before the ':')");
    if (memchr(k, '\0', kn))
        return fail_at(c, kloc, "keys may not contain a NUL character (\\0)");
    if (!pd_cfg_utf8_valid(k, kn))
        return fail_at(c, kloc, "invalid UTF-8 in a key");
    struct pd_config_loc first;
    if (pd_cfg_find_key(c->doc, obj, k, kn, &first))
        return fail_at(c, kloc, "duplicate key '%s' (first defined at line %u, column %u)",
                       pd_cfg_quote(k, kn, 60, q, sizeof q), first.line, first.col);
    return 0;
}

static json_t *parse_mapping(struct yctx *c, unsigned depth)
{
    json_t *obj = json_object();
    if (!obj) {
        fail_oom(c);
        return NULL;
    }
    for (;;) {
        yaml_event_t kev;
        yaml_event_t vev;
        if (next_event(c, &kev) != 0)
            goto fail;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return obj;
        }
        struct pd_config_loc kloc = mark_loc(kev.start_mark);
        if (check_key(c, obj, &kev, kloc) != 0 || next_event(c, &vev) != 0) {
            yaml_event_delete(&kev);
            goto fail;
        }
        struct pd_config_loc vloc;
        json_t *v = parse_node(c, &vev, depth, &vloc);
        yaml_event_delete(&vev);
        if (!v) {
            yaml_event_delete(&kev);
            goto fail;
        }
        const char *k = (const char *)kev.data.scalar.value;
        size_t kn = kev.data.scalar.length;
        int rc = json_object_setn_new_nocheck(obj, k, kn, v);
        if (rc == 0)
            rc = pd_cfg_record(c->doc, obj, k, kn, 0, v, vloc, kloc);
        yaml_event_delete(&kev);
        if (rc != 0) {
            fail_oom(c);
            goto fail;
        }
    }
fail:
    json_decref(obj);
    return NULL;
}

static json_t *parse_node(struct yctx *c, const yaml_event_t *ev, unsigned depth,
                          struct pd_config_loc *loc)
{
    char q[64];
    const char *tag = NULL;
    *loc = mark_loc(ev->start_mark);
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return scalar_value(c, ev, *loc);
    case YAML_ALIAS_EVENT:
        fail_at(c, *loc,
                "aliases (*%s) are not supported in Paddock config files; write the value out",
                pd_cfg_quote((const char *)ev->data.alias.anchor,
                             strlen((const char *)ev->data.alias.anchor), 40, q, sizeof q));
        return NULL;
    case YAML_SEQUENCE_START_EVENT:
        tag = (const char *)ev->data.sequence_start.tag;
        if (no_anchor(c, *loc, ev->data.sequence_start.anchor) != 0)
            return NULL;
        if (tag && strcmp(tag, YAML_TAG_PREFIX "seq") != 0) {
            bad_tag(c, *loc, tag);
            return NULL;
        }
        break;
    case YAML_MAPPING_START_EVENT:
        tag = (const char *)ev->data.mapping_start.tag;
        if (no_anchor(c, *loc, ev->data.mapping_start.anchor) != 0)
            return NULL;
        if (tag && strcmp(tag, YAML_TAG_PREFIX "map") != 0) {
            bad_tag(c, *loc, tag);
            return NULL;
        }
        break;
    default:
        fail_at(c, *loc, "expected a value");
        return NULL;
    }
    if (depth + 1 > PD_CONFIG_MAX_DEPTH) {
        fail_at(c, *loc, "nesting is too deep (more than %d levels of mappings and sequences)",
                PD_CONFIG_MAX_DEPTH);
        return NULL;
    }
    return ev->type == YAML_SEQUENCE_START_EVENT ? parse_sequence(c, depth + 1)
                                                 : parse_mapping(c, depth + 1);
}

static int parse_stream(struct yctx *c)
{
    yaml_event_t ev;
    if (next_event(c, &ev) != 0) /* STREAM-START */
        return -1;
    yaml_event_delete(&ev);
    if (next_event(c, &ev) != 0)
        return -1;
    if (ev.type == YAML_STREAM_END_EVENT) { /* empty or comments only */
        yaml_event_delete(&ev);
        pd_cfg_set_root(c->doc, json_null(), (struct pd_config_loc){1, 1});
        return 0;
    }
    yaml_event_delete(&ev); /* DOCUMENT-START */
    if (next_event(c, &ev) != 0)
        return -1;
    struct pd_config_loc loc;
    json_t *root = parse_node(c, &ev, 0, &loc);
    yaml_event_delete(&ev);
    if (!root)
        return -1;
    pd_cfg_set_root(c->doc, root, loc); /* owned by the doc from here on */
    if (next_event(c, &ev) != 0) /* DOCUMENT-END */
        return -1;
    yaml_event_delete(&ev);
    if (next_event(c, &ev) != 0)
        return -1;
    if (ev.type == YAML_DOCUMENT_START_EVENT) {
        struct pd_config_loc l = mark_loc(ev.start_mark);
        yaml_event_delete(&ev);
        return fail_at(
            c, l,
            "a second YAML document starts here; a Paddock config file holds exactly one "
            "document (remove the '---' separator)");
    }
    yaml_event_delete(&ev); /* STREAM-END */
    return 0;
}

int pd_cfg_parse_yaml(struct pd_config_doc *doc, const char *buf, size_t len, struct pd_err *err)
{
    struct yctx c = {.doc = doc, .buf = buf, .len = len, .name = pd_config_name(doc), .err = err};
    /* libyaml would decode UTF-16 (it goes by the byte order mark); positions here count UTF-8. */
    if (len >= 2 && (((unsigned char)buf[0] == 0xFE && (unsigned char)buf[1] == 0xFF) ||
                     ((unsigned char)buf[0] == 0xFF && (unsigned char)buf[1] == 0xFE)))
        return fail_at(&c, (struct pd_config_loc){1, 1},
                       "UTF-16 text is not supported; save the file as UTF-8");
    if (!yaml_parser_initialize(&c.parser))
        return fail_oom(&c);
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)buf, len);
    int rc = parse_stream(&c);
    yaml_parser_delete(&c.parser);
    return rc;
}
