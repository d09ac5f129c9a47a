/* schema.c - see schema.h. */
#include "core/schema.h"

#include <stdio.h>
#include <string.h>

#define PATH_MAX_LEN 256
#define QUOTE_CHARS 40 /* how much of a found value a message shows */

struct vctx {
    const struct pd_config_doc *doc;
    bool fill;
    struct pd_err *err; /* never NULL */
    char path[PATH_MAX_LEN];
    size_t plen;
    unsigned depth; /* documents are at most PD_CONFIG_MAX_DEPTH deep; defaults could recurse */
};

/* ---- messages ---- */

static void add_location(struct vctx *c, struct pd_config_loc loc)
{
    if (loc.line)
        pd_err_prefix(c->err, "%s:%u:%u", pd_config_name(c->doc), loc.line, loc.col);
    else
        pd_err_prefix(c->err, "%s", pd_config_name(c->doc));
}

__attribute__((format(printf, 3, 4))) static int fail(struct vctx *c, struct pd_config_loc loc,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pd_err_vset(c->err, fmt, ap);
    va_end(ap);
    if (c->plen)
        pd_err_prefix(c->err, "%s", c->path);
    add_location(c, loc);
    return -1;
}

static int run_check(struct vctx *c, pd_schema_check_fn fn, const json_t *v,
                     struct pd_config_loc loc)
{
    struct pd_err e;
    pd_err_clear(&e);
    if (fn(v, &e) == 0)
        return 0;
    return fail(c, loc, "%s", e.msg[0] ? e.msg : "invalid value");
}

static const char *describe(const json_t *v, char *buf, size_t cap)
{
    char q[QUOTE_CHARS * 4 + 8];
    switch (json_typeof(v)) {
    case JSON_STRING:
        snprintf(
            buf, cap, "string \"%s\"",
            pd_cfg_quote(json_string_value(v), json_string_length(v), QUOTE_CHARS, q, sizeof q));
        break;
    case JSON_INTEGER:
        snprintf(buf, cap, "integer %" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: {
        int n = snprintf(buf, cap, "number %.15g", json_real_value(v));
        if (n > 0 && (size_t)n + 2 < cap && !strpbrk(buf + 7, ".eEni"))
            memcpy(buf + n, ".0", 3);
        break;
    }
    case JSON_TRUE:
        snprintf(buf, cap, "boolean true");
        break;
    case JSON_FALSE:
        snprintf(buf, cap, "boolean false");
        break;
    case JSON_NULL:
        snprintf(buf, cap, "null");
        break;
    case JSON_OBJECT:
        snprintf(buf, cap, "an object");
        break;
    case JSON_ARRAY:
        snprintf(buf, cap, "an array");
        break;
    }
    return buf;
}

static bool bounded(const struct pd_schema_field *f)
{
    return f->min != 0 || f->max != 0;
}

/* " between 1 and 5" / " of at least 1" / " of at most 5" */
static void range_text(const struct pd_schema_field *f, char *buf, size_t cap)
{
    if (!bounded(f))
        buf[0] = '\0';
    else if (f->max == INT64_MAX)
        snprintf(buf, cap, " of at least %lld", (long long)f->min);
    else if (f->min == INT64_MIN)
        snprintf(buf, cap, " of at most %lld", (long long)f->max);
    else
        snprintf(buf, cap, " between %lld and %lld", (long long)f->min, (long long)f->max);
}

/* " with 1 to 5 items" / " with at least 1 item" / " with at most 5 items" / " with exactly 2
 * items" */
static void count_text(const struct pd_schema_field *f, const char *one, const char *many,
                       char *buf, size_t cap)
{
    if (!bounded(f))
        buf[0] = '\0';
    else if (f->max == INT64_MAX)
        snprintf(buf, cap, " with at least %lld %s", (long long)f->min, f->min == 1 ? one : many);
    else if (f->min <= 0)
        snprintf(buf, cap, " with at most %lld %s", (long long)f->max, f->max == 1 ? one : many);
    else if (f->min == f->max)
        snprintf(buf, cap, " with exactly %lld %s", (long long)f->min, f->min == 1 ? one : many);
    else
        snprintf(buf, cap, " with %lld to %lld %s", (long long)f->min, (long long)f->max, many);
}

static void list_add(char *buf, size_t cap, size_t *len, const char *item, bool quoted, bool *full)
{
    char q[QUOTE_CHARS * 4 + 8];
    if (*full || *len >= cap || cap - *len <= 6) {
        *full = true;
        return;
    }
    const char *sep = *len ? ", " : "";
    const char *qt = quoted ? "\"" : "";
    if (quoted)
        item = pd_cfg_quote(item, strlen(item), QUOTE_CHARS, q, sizeof q);
    int n = snprintf(buf + *len, cap - *len, "%s%s%s%s", sep, qt, item, qt);
    if (n < 0 || (size_t)n >= cap - *len - 5) { /* keep room for ", ..." */
        buf[*len] = '\0';
        if (cap - *len > 5)
            memcpy(buf + *len, *len ? ", ..." : "...", *len ? 6 : 4);
        *full = true;
        return;
    }
    *len += (size_t)n;
}

static void expected_text(const struct pd_schema_field *f, char *buf, size_t cap)
{
    char r[96];
    switch (f->type) {
    case PD_SCHEMA_STRING:
        if (f->enum_values) {
            static const char lead[] = "one of ";
            size_t len = 0;
            bool full = false;
            if (cap <= sizeof lead)
                return;
            memcpy(buf, lead, sizeof lead);
            for (const char *const *e = f->enum_values; *e; e++)
                list_add(buf + sizeof lead - 1, cap - sizeof lead + 1, &len, *e, true, &full);
            return;
        }
        count_text(f, "character", "characters", r, sizeof r);
        if (f->min == 1 && f->max == INT64_MAX)
            snprintf(buf, cap, "a non-empty string");
        else
            snprintf(buf, cap, "a string%s", r);
        return;
    case PD_SCHEMA_INTEGER:
        range_text(f, r, sizeof r);
        snprintf(buf, cap, "an integer%s", r);
        return;
    case PD_SCHEMA_NUMBER:
        range_text(f, r, sizeof r);
        snprintf(buf, cap, "a number%s", r);
        return;
    case PD_SCHEMA_BOOLEAN:
        snprintf(buf, cap, "a boolean (true or false)");
        return;
    case PD_SCHEMA_OBJECT:
        snprintf(buf, cap, "an object");
        return;
    case PD_SCHEMA_MAP:
        count_text(f, "entry", "entries", r, sizeof r);
        snprintf(buf, cap, "an object%s", r);
        return;
    case PD_SCHEMA_ARRAY:
        count_text(f, "item", "items", r, sizeof r);
        snprintf(buf, cap, "an array%s", r);
        return;
    case PD_SCHEMA_ANY:
    case PD_SCHEMA_UNSET:
        break;
    }
    snprintf(buf, cap, "any value");
}

/* ---- suggestions: optimal string alignment distance, ASCII case-insensitive ---- */

#define EDIT_MAX_LEN 64

static unsigned char lower(char ch)
{
    return (unsigned char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a);
    size_t m = strlen(b);
    if (n > EDIT_MAX_LEN || m > EDIT_MAX_LEN)
        return SIZE_MAX;
    size_t rows[3][EDIT_MAX_LEN + 1];
    size_t *prev2 = rows[0];
    size_t *prev = rows[1];
    size_t *cur = rows[2];
    for (size_t j = 0; j <= m; j++)
        prev[j] = j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            size_t best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (prev[j - 1] + cost < best)
                best = prev[j - 1] + cost;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1]) && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[m];
}

static const char *nearest(const char *word, const char *const *cands, size_t n, size_t stride)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (size_t i = 0; i < n; i++) {
        const char *cand = *(const char *const *)(const void *)((const char *)cands + i * stride);
        size_t d = edit_distance(word, cand);
        if (d < bestd && d < strlen(cand)) {
            best = cand;
            bestd = d;
        }
    }
    return best;
}

/* ---- path ---- */

static bool is_ident(const char *k)
{
    if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_'))
        return false;
    for (k++; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') ||
              *k == '_' || *k == '-'))
            return false;
    return true;
}

static size_t path_append(struct vctx *c, const char *s)
{
    size_t saved = c->plen;
    size_t n = strlen(s);
    if (c->plen + n + 4 >= sizeof c->path) { /* does not fit: end with "..." once */
        if (c->plen < 3 || strcmp(c->path + c->plen - 3, "...") != 0) {
            size_t at = c->plen + 4 <= sizeof c->path ? c->plen : sizeof c->path - 4;
            memcpy(c->path + at, "...", 4);
            c->plen = at + 3;
        }
        return saved;
    }
    memcpy(c->path + c->plen, s, n + 1);
    c->plen += n;
    return saved;
}

static size_t path_push_key(struct vctx *c, const char *key)
{
    char seg[QUOTE_CHARS * 4 + 16];
    char q[QUOTE_CHARS * 4 + 8];
    if (is_ident(key))
        snprintf(seg, sizeof seg, "%s%s", c->plen ? "." : "", key);
    else
        snprintf(seg, sizeof seg, "[\"%s\"]",
                 pd_cfg_quote(key, strlen(key), QUOTE_CHARS, q, sizeof q));
    return path_append(c, seg);
}

static size_t path_push_index(struct vctx *c, size_t i)
{
    char seg[32];
    snprintf(seg, sizeof seg, "[%zu]", i);
    return path_append(c, seg);
}

static void path_pop(struct vctx *c, size_t saved)
{
    c->plen = saved;
    c->path[saved] = '\0';
}

/* ---- validation ---- */

static int validate_value(struct vctx *c, const struct pd_schema_field *f, json_t *v,
                          struct pd_config_loc loc, struct pd_config_loc intro);

static bool type_ok(enum pd_schema_type t, const json_t *v)
{
    switch (t) {
    case PD_SCHEMA_STRING:
        return json_is_string(v);
    case PD_SCHEMA_INTEGER:
        return json_is_integer(v);
    case PD_SCHEMA_NUMBER:
        return json_is_number(v);
    case PD_SCHEMA_BOOLEAN:
        return json_is_boolean(v);
    case PD_SCHEMA_OBJECT:
    case PD_SCHEMA_MAP:
        return json_is_object(v);
    case PD_SCHEMA_ARRAY:
        return json_is_array(v);
    case PD_SCHEMA_ANY:
        return true;
    case PD_SCHEMA_UNSET:
        break;
    }
    return false;
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static bool out_of_bounds(const struct pd_schema_field *f, int64_t v)
{
    return bounded(f) && (v < f->min || v > f->max);
}

static int validate_string(struct vctx *c, const struct pd_schema_field *f, const json_t *v,
                           struct pd_config_loc loc)
{
    char ex[PD_ERR_MAX];
    char got[QUOTE_CHARS * 4 + 32];
    const char *s = json_string_value(v);
    if (f->enum_values) {
        size_t n = 0;
        for (const char *const *e = f->enum_values; *e; e++, n++)
            if (strcmp(*e, s) == 0)
                return 0;
        const char *near = nearest(s, f->enum_values, n, sizeof *f->enum_values);
        char q[QUOTE_CHARS * 4 + 8];
        expected_text(f, ex, sizeof ex);
        if (near)
            return fail(c, loc, "expected %s, got %s (did you mean \"%s\"?)", ex,
                        describe(v, got, sizeof got),
                        pd_cfg_quote(near, strlen(near), QUOTE_CHARS, q, sizeof q));
        return fail(c, loc, "expected %s, got %s", ex, describe(v, got, sizeof got));
    }
    size_t chars = utf8_chars(s, json_string_length(v));
    if (chars > (uint64_t)INT64_MAX || out_of_bounds(f, (int64_t)chars)) {
        expected_text(f, ex, sizeof ex);
        return fail(c, loc, "expected %s, got a string of %zu character%s", ex, chars,
                    chars == 1 ? "" : "s");
    }
    return 0;
}

static int validate_array(struct vctx *c, const struct pd_schema_field *f, json_t *arr,
                          struct pd_config_loc loc)
{
    char ex[PD_ERR_MAX];
    size_t n = json_array_size(arr);
    if (out_of_bounds(f, (int64_t)n)) {
        expected_text(f, ex, sizeof ex);
        return fail(c, loc, "expected %s, got %zu item%s", ex, n, n == 1 ? "" : "s");
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        struct pd_config_loc eloc = loc;
        pd_config_locate_index(c->doc, arr, i, &eloc);
        size_t saved = path_push_index(c, i);
        int rc = validate_value(c, f->items, e, eloc, eloc);
        if (rc != 0)
            return rc;
        path_pop(c, saved);
    }
    return 0;
}

static int validate_map(struct vctx *c, const struct pd_schema_field *f, json_t *obj,
                        struct pd_config_loc loc)
{
    char ex[PD_ERR_MAX];
    size_t n = json_object_size(obj);
    if (out_of_bounds(f, (int64_t)n)) {
        expected_text(f, ex, sizeof ex);
        return fail(c, loc, "expected %s, got %zu entr%s", ex, n, n == 1 ? "y" : "ies");
    }
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        struct pd_config_loc vloc = loc;
        struct pd_config_loc kloc = loc;
        pd_config_locate_member(c->doc, obj, key, &vloc, &kloc);
        if (f->key_check) {
            struct pd_err e;
            pd_err_clear(&e);
            if (f->key_check(key, &e) != 0) {
                char q[QUOTE_CHARS * 4 + 8];
                return fail(c, kloc, "key '%s': %s",
                            pd_cfg_quote(key, strlen(key), QUOTE_CHARS, q, sizeof q),
                            e.msg[0] ? e.msg : "invalid key");
            }
        }
        size_t saved = path_push_key(c, key);
        int rc = validate_value(c, f->items, val, vloc, kloc);
        if (rc != 0)
            return rc;
        path_pop(c, saved);
    }
    return 0;
}

static const struct pd_schema_field *find_field(const struct pd_schema *s, const char *key)
{
    for (const struct pd_schema_field *f = s->fields; f->key; f++)
        if (strcmp(f->key, key) == 0)
            return f;
    return NULL;
}

static int unknown_key(struct vctx *c, const struct pd_schema *s, const char *key,
                       struct pd_config_loc kloc)
{
    char list[PD_ERR_MAX / 2];
    char q[QUOTE_CHARS * 4 + 8];
    char hint[128] = "";
    size_t len = 0;
    size_t n = 0;
    bool full = false;
    list[0] = '\0';
    for (const struct pd_schema_field *f = s->fields; f->key; f++, n++)
        list_add(list, sizeof list, &len, f->key, false, &full);
    const char *near = nearest(key, &s->fields[0].key, n, sizeof s->fields[0]);
    if (near)
        snprintf(hint, sizeof hint, "did you mean '%s'? ", near);
    const char *where = c->plen ? "key" : "top-level key";
    pd_cfg_quote(key, strlen(key), QUOTE_CHARS, q, sizeof q);
    if (n == 0)
        return fail(c, kloc, "unknown %s '%s' (this object takes no keys)", where, q);
    return fail(c, kloc, "unknown %s '%s' (%sexpected one of: %s)", where, q, hint, list);
}

static int insert_default(struct vctx *c, const struct pd_schema_field *f, json_t *obj,
                          struct pd_config_loc intro)
{
    /* The strict JSON loader parses it: its out-of-memory errors are told from syntax errors. */
    struct pd_err perr;
    struct pd_config_doc *ddoc = pd_config_load_buffer(
        "default", f->default_json, strlen(f->default_json), PD_CONFIG_JSON, &perr);
    if (!ddoc && strstr(perr.msg, "out of memory"))
        return fail(c, intro, "out of memory while filling defaults");
    if (!ddoc)
        return fail(c, intro, "schema error: the default of '%s' is not valid JSON (%s)", f->key,
                    perr.msg);
    json_t *d = json_incref(pd_config_root(ddoc));
    pd_config_doc_free(ddoc);
    size_t saved = path_push_key(c, f->key);
    int rc = validate_value(c, f, d, intro, intro);
    if (rc != 0) {
        json_decref(d);
        if (strncmp(c->err->msg, "schema error", 12) != 0)
            pd_err_prefix(c->err, "schema error: invalid default");
        return rc;
    }
    path_pop(c, saved);
    if (json_object_set_new(obj, f->key, d) != 0)
        return fail(c, intro, "out of memory while filling defaults");
    return 0;
}

static int validate_object(struct vctx *c, const struct pd_schema *s, json_t *obj,
                           struct pd_config_loc loc, struct pd_config_loc intro)
{
    if (!s->fields)
        return fail(c, loc, "schema error: object schema without fields");
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        struct pd_config_loc vloc = loc;
        struct pd_config_loc kloc = loc;
        pd_config_locate_member(c->doc, obj, key, &vloc, &kloc);
        const struct pd_schema_field *f = find_field(s, key);
        if (!f)
            return unknown_key(c, s, key, kloc);
        size_t saved = path_push_key(c, key);
        int rc = validate_value(c, f, val, vloc, kloc);
        if (rc != 0)
            return rc;
        path_pop(c, saved);
    }
    for (const struct pd_schema_field *f = s->fields; f->key; f++) {
        if (json_object_get(obj, f->key))
            continue;
        if (f->required)
            return fail(c, intro, "missing required %skey '%s'", c->plen ? "" : "top-level ",
                        f->key);
        if (c->fill && f->default_json && insert_default(c, f, obj, intro) != 0)
            return -1;
    }
    return s->check ? run_check(c, s->check, obj, loc) : 0;
}

static int validate_value_at(struct vctx *c, const struct pd_schema_field *f, json_t *v,
                             struct pd_config_loc loc, struct pd_config_loc intro)
{
    char ex[PD_ERR_MAX];
    char got[QUOTE_CHARS * 4 + 32];
    int rc = 0;
    if (!f || f->type == PD_SCHEMA_UNSET || f->type > PD_SCHEMA_ANY)
        return fail(c, loc, "schema error: no valid type declared for this field");
    if (c->depth >= 2 * PD_CONFIG_MAX_DEPTH)
        return fail(c, loc,
                    "schema error: defaults nest too deep (a schema that contains itself?)");
    if (!type_ok(f->type, v)) {
        expected_text(f, ex, sizeof ex);
        return fail(c, loc, "expected %s, got %s", ex, describe(v, got, sizeof got));
    }
    switch (f->type) {
    case PD_SCHEMA_STRING:
        rc = validate_string(c, f, v, loc);
        break;
    case PD_SCHEMA_INTEGER:
        if (out_of_bounds(f, (int64_t)json_integer_value(v))) {
            expected_text(f, ex, sizeof ex);
            return fail(c, loc, "expected %s, got %" JSON_INTEGER_FORMAT, ex,
                        json_integer_value(v));
        }
        break;
    case PD_SCHEMA_NUMBER:
        if (bounded(f) &&
            (json_number_value(v) < (double)f->min || json_number_value(v) > (double)f->max)) {
            expected_text(f, ex, sizeof ex);
            return fail(c, loc, "expected %s, got %s", ex, describe(v, got, sizeof got));
        }
        break;
    case PD_SCHEMA_OBJECT:
        if (!f->child)
            return fail(c, loc, "schema error: object field without a child schema");
        rc = validate_object(c, f->child, v, loc, intro);
        break;
    case PD_SCHEMA_ARRAY:
    case PD_SCHEMA_MAP:
        if (!f->items)
            return fail(c, loc, "schema error: %s field without an items spec",
                        f->type == PD_SCHEMA_ARRAY ? "array" : "map");
        rc = f->type == PD_SCHEMA_ARRAY ? validate_array(c, f, v, loc) : validate_map(c, f, v, loc);
        break;
    case PD_SCHEMA_BOOLEAN:
    case PD_SCHEMA_ANY:
    case PD_SCHEMA_UNSET:
        break;
    }
    if (rc != 0)
        return rc;
    return f->check ? run_check(c, f->check, v, loc) : 0;
}

static int validate_value(struct vctx *c, const struct pd_schema_field *f, json_t *v,
                          struct pd_config_loc loc, struct pd_config_loc intro)
{
    c->depth++;
    int rc = validate_value_at(c, f, v, loc, intro);
    c->depth--;
    return rc;
}

static int validate_root(const struct pd_config_doc *doc, const struct pd_schema *schema, bool fill,
                         struct pd_err *err)
{
    struct pd_err local = {{0}};
    struct vctx c = {.doc = doc, .fill = fill, .err = err ? err : &local};
    char got[QUOTE_CHARS * 4 + 32];
    c.path[0] = '\0';
    json_t *root = pd_config_root(doc);
    if (!doc || !root || !schema) {
        pd_err_set(c.err, "config: nothing to validate");
        return -1;
    }
    struct pd_config_loc loc = {0, 0};
    pd_config_locate(doc, root, &loc);
    if (!json_is_object(root))
        return fail(&c, loc, "expected an object at the top level, got %s%s",
                    describe(root, got, sizeof got),
                    json_is_null(root) ? " (is the file empty?)" : "");
    return validate_object(&c, schema, root, loc, loc);
}

int pd_schema_validate(const struct pd_config_doc *doc, const struct pd_schema *schema,
                       struct pd_err *err)
{
    return validate_root(doc, schema, false, err);
}

int pd_schema_validate_fill(struct pd_config_doc *doc, const struct pd_schema *schema,
                            struct pd_err *err)
{
    return validate_root(doc, schema, true, err);
}

int pd_schema_validate_member(struct pd_config_doc *doc, json_t *obj, const char *key,
                              const struct pd_schema_field *f, bool fill, struct pd_err *err)
{
    struct pd_err local = {{0}};
    struct vctx c = {.doc = doc, .fill = fill, .err = err ? err : &local};
    c.path[0] = '\0';
    if (!doc || !obj || !key || !f) {
        pd_err_set(c.err, "config: nothing to validate");
        return -1;
    }
    struct pd_config_loc loc = {0, 0}, kloc = {0, 0};
    pd_config_locate(doc, obj, &loc);
    if (!json_is_object(obj)) {
        char got[QUOTE_CHARS * 4 + 32];
        return fail(&c, loc, "expected an object at the top level, got %s%s",
                    describe(obj, got, sizeof got),
                    json_is_null(obj) ? " (is the file empty?)" : "");
    }
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (f->required)
            return fail(&c, loc, "missing required top-level key '%s'", key);
        if (fill && f->default_json) {
            struct pd_schema_field named = *f;
            named.key = key;
            return insert_default(&c, &named, obj, loc);
        }
        return 0;
    }
    pd_config_locate_member(doc, obj, key, &loc, &kloc);
    path_push_key(&c, key);
    return validate_value(&c, f, v, loc, kloc);
}

const char *pd_schema_type_name(enum pd_schema_type t)
{
    switch (t) {
    case PD_SCHEMA_STRING:
        return "string";
    case PD_SCHEMA_INTEGER:
        return "integer";
    case PD_SCHEMA_NUMBER:
        return "number";
    case PD_SCHEMA_BOOLEAN:
        return "boolean";
    case PD_SCHEMA_OBJECT:
        return "object";
    case PD_SCHEMA_ARRAY:
        return "list";
    case PD_SCHEMA_MAP:
        return "map";
    case PD_SCHEMA_ANY:
        return "any";
    case PD_SCHEMA_UNSET:
        break;
    }
    return "unset";
}

static int walk_field(const struct pd_schema_field *f, char *path, size_t len, size_t cap,
                      pd_schema_walk_fn cb, void *ctx);

static int walk_fields(const struct pd_schema *s, char *path, size_t len, size_t cap,
                       pd_schema_walk_fn cb, void *ctx)
{
    for (const struct pd_schema_field *f = s ? s->fields : NULL; f && f->key; f++) {
        int n = snprintf(path + len, cap - len, "%s%s", len ? "." : "", f->key);
        if (n < 0 || (size_t)n >= cap - len)
            return -1;
        if (walk_field(f, path, len + (size_t)n, cap, cb, ctx) != 0)
            return -1;
        path[len] = '\0';
    }
    return 0;
}

/* path[0..len) names f; report it, then what is inside it. */
static int walk_field(const struct pd_schema_field *f, char *path, size_t len, size_t cap,
                      pd_schema_walk_fn cb, void *ctx)
{
    if (cb(path, f, ctx) != 0)
        return -1;
    if (f->type == PD_SCHEMA_OBJECT)
        return walk_fields(f->child, path, len, cap, cb, ctx);
    if ((f->type == PD_SCHEMA_ARRAY || f->type == PD_SCHEMA_MAP) && f->items &&
        f->items->type == PD_SCHEMA_OBJECT) {
        const char *mark = f->type == PD_SCHEMA_ARRAY ? "[]" : ".*";
        if (cap - len <= strlen(mark))
            return -1;
        memcpy(path + len, mark, strlen(mark) + 1);
        int rc = walk_fields(f->items->child, path, len + strlen(mark), cap, cb, ctx);
        path[len] = '\0';
        return rc;
    }
    return 0;
}

int pd_schema_walk(const struct pd_schema *schema, const char *prefix, pd_schema_walk_fn cb,
                   void *ctx)
{
    char path[PD_SCHEMA_PATH_MAX];
    size_t len = prefix ? strlen(prefix) : 0;
    if (len >= sizeof path)
        return -1;
    memcpy(path, prefix ? prefix : "", len + 1);
    return walk_fields(schema, path, len, sizeof path, cb, ctx);
}

int pd_schema_walk_field(const struct pd_schema_field *f, const char *path, pd_schema_walk_fn cb,
                         void *ctx)
{
    char buf[PD_SCHEMA_PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, path, len + 1);
    return walk_field(f, buf, len, sizeof buf, cb, ctx);
}
