/*
 * fuzz_config.c - libFuzzer target for the config loader (YAML and JSON) and the schema validator.
 * The input is loaded from an exact-size heap copy (over-reads trip ASan) as YAML and as JSON.
 * Invariants:
 *  - an error message is non-empty, names the input and holds no control characters;
 *  - a loaded tree has a position for every node and key, inside the input's line range;
 *  - when both formats load the same bytes (and no YAML-only line breaks NEL/LS/PS are involved),
 *    the trees are equal and every node has the same position in both;
 *  - validation against a small built-in schema either fails with a well-formed message or passes,
 * and after filling defaults a second fill changes nothing and plain validation passes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(const struct pd_err *err, const char *name)
{
    if (err->msg[0] == '\0' || strncmp(err->msg, name, strlen(name)) != 0)
        abort();
    for (const char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            abort();
}

static uint32_t count_lines(const uint8_t *d, size_t n)
{
    uint32_t lines = 1;
    for (size_t i = 0; i < n; i++) {
        if (d[i] == '\n' || (d[i] == '\r' && (i + 1 == n || d[i + 1] != '\n')))
            lines++;
        /* NEL, LS, PS end lines for libyaml */
        else if (d[i] == 0xC2 && i + 1 < n && d[i + 1] == 0x85)
            lines++;
        else if (d[i] == 0xE2 && i + 2 < n && d[i + 1] == 0x80 &&
                 (d[i + 2] == 0xA8 || d[i + 2] == 0xA9))
            lines++;
    }
    return lines;
}

/* libyaml ends an input that lacks a final newline with one, so its end-of-input marks (e.g. of an
 * implicit null) can be one line past the last. */
static void check_loc(struct pd_config_loc l, uint32_t max_line)
{
    if (l.line == 0 || l.col == 0 || l.line > max_line + 1)
        abort();
}

/* Every node is located; `other` (may be NULL) must agree. */
static void walk(const struct pd_config_doc *doc, const json_t *node,
                 const struct pd_config_doc *other, const json_t *onode, uint32_t max_line)
{
    if (json_is_object(node)) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)node, key, v)
        {
            struct pd_config_loc vl, kl, ovl, okl;
            if (!pd_config_locate_member(doc, node, key, &vl, &kl))
                abort();
            check_loc(vl, max_line);
            check_loc(kl, max_line);
            if (other) {
                if (!pd_config_locate_member(other, onode, key, &ovl, &okl))
                    abort();
                if (vl.line != ovl.line || vl.col != ovl.col || kl.line != okl.line ||
                    kl.col != okl.col)
                    abort();
            }
            walk(doc, v, other, other ? json_object_get(onode, key) : NULL, max_line);
        }
    } else if (json_is_array(node)) {
        for (size_t i = 0; i < json_array_size(node); i++) {
            struct pd_config_loc l, ol;
            if (!pd_config_locate_index(doc, node, i, &l))
                abort();
            check_loc(l, max_line);
            if (other) {
                if (!pd_config_locate_index(other, onode, i, &ol) || l.line != ol.line ||
                    l.col != ol.col)
                    abort();
            }
            walk(doc, json_array_get(node, i), other, other ? json_array_get(onode, i) : NULL,
                 max_line);
        }
    }
}

static int check_host(const json_t *v, struct pd_err *err)
{
    if (strchr(json_string_value(v), ' ')) {
        pd_err_set(err, "host patterns may not contain spaces");
        return -1;
    }
    return 0;
}

static int check_key(const char *key, struct pd_err *err)
{
    if (key[0] == '\0' || strchr(key, '=')) {
        pd_err_set(err, "not a variable name");
        return -1;
    }
    return 0;
}

static const char *const modes[] = {"enforce", "audit", "off", NULL};
static const struct pd_schema_field port = {.type = PD_SCHEMA_INTEGER, .min = 1, .max = 65535};
static const struct pd_schema_field str_item = {.type = PD_SCHEMA_STRING, .min = 1, .max = 253};
static const struct pd_schema_field allow_fields[] = {
    {.key = "host", .type = PD_SCHEMA_STRING, .required = true, .check = check_host},
    {.key = "ports",
     .type = PD_SCHEMA_ARRAY,
     .items = &port,
     .min = 1,
     .max = 8,
     .default_json = "[443]"},
    {0}};
static const struct pd_schema allow_schema = {.fields = allow_fields};
static const struct pd_schema_field allow_item = {.type = PD_SCHEMA_OBJECT, .child = &allow_schema};
static const struct pd_schema_field net_fields[] = {
    {.key = "allow", .type = PD_SCHEMA_ARRAY, .required = true, .items = &allow_item},
    {.key = "deny", .type = PD_SCHEMA_ARRAY, .items = &str_item},
    {.key = "dns", .type = PD_SCHEMA_BOOLEAN, .default_json = "true"},
    {0}};
static const struct pd_schema net_schema = {.fields = net_fields};
static const struct pd_schema_field env_value = {
    .type = PD_SCHEMA_STRING, .min = INT64_MIN, .max = 64};
static const struct pd_schema_field limits_fields[] = {
    {.key = "cpu", .type = PD_SCHEMA_NUMBER, .min = 0, .max = 64, .default_json = "1"},
    {.key = "memory_mb",
     .type = PD_SCHEMA_INTEGER,
     .min = 16,
     .max = INT64_MAX,
     .default_json = "512"},
    {0}};
static const struct pd_schema limits_schema = {.fields = limits_fields};
static const struct pd_schema_field root_fields[] = {
    {.key = "version", .type = PD_SCHEMA_INTEGER, .required = true, .min = 1, .max = 3},
    {.key = "name", .type = PD_SCHEMA_STRING, .min = 1, .max = 32},
    {.key = "mode", .type = PD_SCHEMA_STRING, .enum_values = modes, .default_json = "\"enforce\""},
    {.key = "network", .type = PD_SCHEMA_OBJECT, .child = &net_schema},
    {.key = "env", .type = PD_SCHEMA_MAP, .items = &env_value, .key_check = check_key},
    {.key = "limits", .type = PD_SCHEMA_OBJECT, .child = &limits_schema, .default_json = "{}"},
    {.key = "extra", .type = PD_SCHEMA_ANY},
    {0}};
static const struct pd_schema schema = {.fields = root_fields};

static void exercise(struct pd_config_doc *doc, const char *name)
{
    struct pd_err err;
    char where[128];
    json_t *root = pd_config_root(doc);
    pd_config_where(doc, root, where, sizeof where);
    (void)pd_config_get_string(root, "name", NULL);
    (void)pd_config_get_int(root, "version", 0);
    (void)pd_config_get_bool(root, "debug", false);
    (void)pd_config_get_number(root, "ratio", 0);
    int rc = pd_schema_validate(doc, &schema, &err);
    if (rc != 0) {
        check_err(&err, name);
        return;
    }
    if (pd_schema_validate_fill(doc, &schema, &err) != 0)
        abort(); /* the document was valid: only defaults (which are valid) are added */
    json_t *copy = json_deep_copy(root);
    if (!copy)
        return;
    if (pd_schema_validate_fill(doc, &schema, &err) != 0 || !json_equal(copy, root) ||
        pd_schema_validate(doc, &schema, &err) != 0)
        abort();
    json_decref(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    uint32_t lines = count_lines(data, size);
    struct pd_err yerr, jerr;
    struct pd_config_doc *y = pd_config_load_buffer("fuzz.yaml", in, size, PD_CONFIG_YAML, &yerr);
    struct pd_config_doc *j = pd_config_load_buffer("fuzz.json", in, size, PD_CONFIG_JSON, &jerr);
    if (!y)
        check_err(&yerr, "fuzz.yaml");
    if (!j)
        check_err(&jerr, "fuzz.json");
    if (y)
        walk(y, pd_config_root(y), NULL, NULL, lines);
    if (j)
        walk(j, pd_config_root(j), NULL, NULL, lines);
    bool yaml_breaks = memmem(data, size, "\xC2\x85", 2) || memmem(data, size, "\xE2\x80\xA8", 3) ||
                       memmem(data, size, "\xE2\x80\xA9", 3);
    if (y && j && !yaml_breaks) {
        if (!json_equal(pd_config_root(y), pd_config_root(j)))
            abort();
        walk(j, pd_config_root(j), y, pd_config_root(y), lines);
    }
    if (y)
        exercise(y, "fuzz.yaml");
    if (j)
        exercise(j, "fuzz.json");
    pd_config_doc_free(y);
    pd_config_doc_free(j);
    free(in);
    return 0;
}
