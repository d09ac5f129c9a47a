/* test_config.c - config loader (YAML, JSON), locations and schema validation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/schema.h"

#ifndef PD_TEST_SRCDIR
#define PD_TEST_SRCDIR "."
#endif
#define DATA_DIR PD_TEST_SRCDIR "/tests/unit/data/config"

/* ---- helpers ---- */

static struct pd_config_doc *load(const char *name, const char *text, struct pd_err *err)
{
    pd_err_clear(err);
    return pd_config_load_buffer(name, text, strlen(text), PD_CONFIG_AUTO, err);
}

static struct pd_config_doc *load_ok(const char *name, const char *text)
{
    struct pd_err err;
    struct pd_config_doc *doc = load(name, text, &err);
    if (!doc)
        fail_msg("unexpected load error: %s", err.msg);
    return doc;
}

static void expect_load_error(const char *name, const char *text, size_t len, const char *msg)
{
    struct pd_err err;
    pd_err_clear(&err);
    struct pd_config_doc *doc = pd_config_load_buffer(name, text, len, PD_CONFIG_AUTO, &err);
    if (doc) {
        pd_config_doc_free(doc);
        fail_msg("expected an error for %s: %s", name, text);
    }
    assert_string_equal(err.msg, msg);
}

#define LOAD_ERR(name, text, msg) expect_load_error((name), (text), sizeof(text) - 1, (msg))

/* The value of "v" in a one-key YAML document, compared with a JSON text. */
static void expect_yaml_value(const char *yaml_value, const char *json)
{
    char buf[256];
    snprintf(buf, sizeof buf, "v: %s\n", yaml_value);
    struct pd_config_doc *doc = load_ok("t.yaml", buf);
    json_error_t je;
    json_t *want = json_loads(json, JSON_DECODE_ANY, &je);
    assert_non_null(want);
    json_t *got = json_object_get(pd_config_root(doc), "v");
    assert_non_null(got);
    if (!json_equal(got, want) || json_typeof(got) != json_typeof(want)) {
        char *s = json_dumps(got, JSON_ENCODE_ANY);
        fail_msg("'%s' resolved to %s (%d), want %s", yaml_value, s, (int)json_typeof(got), json);
    }
    json_decref(want);
    pd_config_doc_free(doc);
}

static void expect_loc(const struct pd_config_doc *doc, const json_t *obj, const char *key,
                       uint32_t line, uint32_t col, uint32_t kline, uint32_t kcol)
{
    struct pd_config_loc v = {0, 0}, k = {0, 0};
    assert_true(pd_config_locate_member(doc, obj, key, &v, &k));
    if (v.line != line || v.col != col || k.line != kline || k.col != kcol)
        fail_msg("%s: value at %u:%u key at %u:%u, want %u:%u and %u:%u", key, v.line, v.col,
                 k.line, k.col, line, col, kline, kcol);
}

/* ---- same tree and same positions from YAML and JSON ---- */

static const char *flow_doc =
    "{\n"
    "  \"name\": \"demo\",\n"
    "  \"count\": 3, \"ratio\": 0.5, \"on\": true, \"off\": false, \"none\": null,\n"
    "  \"list\": [1, \"two\", [3, {\"four\": 4}], {}],\n"
    "  \"nested\": {\"a\": {\"b\": [\"é\", -7]}}\n"
    "}\n";

static void compare_locs(const struct pd_config_doc *a, const json_t *na,
                         const struct pd_config_doc *b, const json_t *nb)
{
    if (json_is_object(na)) {
        const char *key;
        json_t *va;
        json_object_foreach((json_t *)na, key, va)
        {
            struct pd_config_loc av, ak, bv, bk;
            assert_true(pd_config_locate_member(a, na, key, &av, &ak));
            assert_true(pd_config_locate_member(b, nb, key, &bv, &bk));
            if (av.line != bv.line || av.col != bv.col || ak.line != bk.line || ak.col != bk.col)
                fail_msg("key %s: %u:%u/%u:%u vs %u:%u/%u:%u", key, av.line, av.col, ak.line,
                         ak.col, bv.line, bv.col, bk.line, bk.col);
            compare_locs(a, va, b, json_object_get(nb, key));
        }
    } else if (json_is_array(na)) {
        for (size_t i = 0; i < json_array_size(na); i++) {
            struct pd_config_loc av, bv;
            assert_true(pd_config_locate_index(a, na, i, &av));
            assert_true(pd_config_locate_index(b, nb, i, &bv));
            assert_int_equal(av.line, bv.line);
            assert_int_equal(av.col, bv.col);
            compare_locs(a, json_array_get(na, i), b, json_array_get(nb, i));
        }
    }
}

static void test_same_text_yaml_and_json(void **state)
{
    (void)state;
    struct pd_config_doc *y = load_ok("doc.yaml", flow_doc);
    struct pd_config_doc *j = load_ok("doc.json", flow_doc);
    assert_int_equal(pd_config_format_of(y), PD_CONFIG_YAML);
    assert_int_equal(pd_config_format_of(j), PD_CONFIG_JSON);
    assert_true(json_equal(pd_config_root(y), pd_config_root(j)));
    compare_locs(y, pd_config_root(y), j, pd_config_root(j));
    /* spot checks: columns count characters, not bytes */
    json_t *b =
        json_object_get(json_object_get(json_object_get(pd_config_root(j), "nested"), "a"), "b");
    struct pd_config_loc l;
    assert_true(pd_config_locate_index(j, b, 1, &l));
    assert_int_equal(l.line, 5);
    assert_int_equal(l.col, 31);
    assert_true(pd_config_locate(j, pd_config_root(j), &l));
    assert_int_equal(l.line, 1);
    assert_int_equal(l.col, 1);
    pd_config_doc_free(y);
    pd_config_doc_free(j);
}

static const char *block_yaml = "# a comment\n"
                                "name: demo\n"
                                "network:\n"
                                "  allow:\n"
                                "    - host: api.example.com\n"
                                "      ports: [443, 8443]\n"
                                "    - host: \"*.pypi.org\"\n"
                                "  dns: true\n"
                                "ratio: 0.25\n";
static const char *block_json = "{\n"
                                "  \"name\": \"demo\",\n"
                                "  \"network\": {\n"
                                "    \"allow\": [\n"
                                "      {\"host\": \"api.example.com\", \"ports\": [443, 8443]},\n"
                                "      {\"host\": \"*.pypi.org\"}\n"
                                "    ],\n"
                                "    \"dns\": true\n"
                                "  },\n"
                                "  \"ratio\": 0.25\n"
                                "}";

static void test_block_yaml_equals_json(void **state)
{
    (void)state;
    struct pd_config_doc *y = load_ok("p.yaml", block_yaml);
    struct pd_config_doc *j = load_ok("p.json", block_json);
    assert_true(json_equal(pd_config_root(y), pd_config_root(j)));

    json_t *net = json_object_get(pd_config_root(y), "network");
    json_t *allow = json_object_get(net, "allow");
    json_t *ports = json_object_get(json_array_get(allow, 0), "ports");
    expect_loc(y, pd_config_root(y), "name", 2, 7, 2, 1);
    expect_loc(y, pd_config_root(y), "network", 4, 3, 3, 1);
    expect_loc(y, net, "allow", 5, 5, 4, 3);
    expect_loc(y, net, "dns", 8, 8, 8, 3);
    expect_loc(y, json_array_get(allow, 1), "host", 7, 13, 7, 7);
    char where[64];
    assert_string_equal(pd_config_where_index(y, ports, 1, where, sizeof where), "p.yaml:6:20");
    assert_string_equal(pd_config_where(y, json_array_get(ports, 0), where, sizeof where),
                        "p.yaml:6:15");
    assert_string_equal(pd_config_where(y, allow, where, sizeof where), "p.yaml:5:5");
    assert_string_equal(pd_config_where(y, pd_config_root(y), where, sizeof where), "p.yaml:2:1");
    /* true/false/null are shared by jansson: found through their parent only */
    assert_false(pd_config_locate(y, json_object_get(net, "dns"), NULL));
    assert_string_equal(pd_config_where(y, json_object_get(net, "dns"), where, sizeof where),
                        "p.yaml");
    assert_string_equal(pd_config_where_member(y, net, "dns", where, sizeof where), "p.yaml:8:8");
    assert_string_equal(pd_config_where_member(y, net, "nope", where, sizeof where), "p.yaml");

    json_t *jnet = json_object_get(pd_config_root(j), "network");
    expect_loc(j, pd_config_root(j), "network", 3, 14, 3, 3);
    expect_loc(j, jnet, "dns", 8, 12, 8, 5);
    json_t *jports = json_object_get(json_array_get(json_object_get(jnet, "allow"), 0), "ports");
    assert_string_equal(pd_config_where_index(j, jports, 1, where, sizeof where), "p.json:5:50");
    pd_config_doc_free(y);
    pd_config_doc_free(j);
}

static void test_files_from_disk(void **state)
{
    (void)state;
    struct pd_err err;
    struct pd_config_doc *y = pd_config_load_file(DATA_DIR "/policy.yaml", PD_CONFIG_AUTO, &err);
    if (!y)
        fail_msg("%s", err.msg);
    struct pd_config_doc *j = pd_config_load_file(DATA_DIR "/policy.json", PD_CONFIG_AUTO, &err);
    if (!j)
        fail_msg("%s", err.msg);
    /* no extension: sniffed */
    struct pd_config_doc *s =
        pd_config_load_file(DATA_DIR "/policy-json.conf", PD_CONFIG_AUTO, &err);
    if (!s)
        fail_msg("%s", err.msg);
    assert_int_equal(pd_config_format_of(y), PD_CONFIG_YAML);
    assert_int_equal(pd_config_format_of(j), PD_CONFIG_JSON);
    assert_int_equal(pd_config_format_of(s), PD_CONFIG_JSON);
    assert_true(json_equal(pd_config_root(y), pd_config_root(j)));
    assert_true(json_equal(pd_config_root(y), pd_config_root(s)));
    assert_string_equal(pd_config_name(y), DATA_DIR "/policy.yaml");
    pd_config_doc_free(y);
    pd_config_doc_free(j);
    pd_config_doc_free(s);
}

/* ---- YAML scalars (1.2 core schema) ---- */

static void test_yaml_scalars(void **state)
{
    (void)state;
    /* clang-format off */
    static const char *const cases[][2] = {
        {"", "null"}, {"~", "null"}, {"null", "null"}, {"Null", "null"}, {"NULL", "null"},
        {"true", "true"}, {"True", "true"}, {"TRUE", "true"}, {"false", "false"}, {"False", "false"},
        {"FALSE", "false"},
        /* YAML 1.1 booleans stay strings (the Norway problem) */
        {"yes", "\"yes\""}, {"no", "\"no\""}, {"on", "\"on\""}, {"off", "\"off\""}, {"y", "\"y\""},
        {"NO", "\"NO\""}, {"tRue", "\"tRue\""}, {"nul", "\"nul\""}, {"0", "0"}, {"42", "42"},
        {"-12", "-12"}, {"+7", "7"}, {"007", "7"}, {"9223372036854775807", "9223372036854775807"},
        {"-9223372036854775808", "-9223372036854775808"}, {"0x1F", "31"}, {"0xff", "255"},
        {"0o17", "15"}, {"0x7FFFFFFFFFFFFFFF", "9223372036854775807"},
        /* not core-schema integers */
        {"0X1F", "\"0X1F\""}, {"-0x1", "\"-0x1\""}, {"0x", "\"0x\""}, {"0o8", "\"0o8\""},
        {"1_000", "\"1_000\""}, {"0b101", "\"0b101\""}, {"1.5", "1.5"}, {"-.5", "-0.5"},
        {".5", "0.5"}, {"1.", "1.0"}, {"1e3", "1000.0"}, {"2.5E-1", "0.25"}, {"+1.0e+2", "100.0"},
        {"1.2.3", "\"1.2.3\""}, {".", "\".\""}, {"1e", "\"1e\""}, {"e3", "\"e3\""},
        /* quoted and block scalars are strings */
        {"'true'", "\"true\""}, {"\"123\"", "\"123\""}, {"\"\"", "\"\""}, {"''", "\"\""},
        {"'~'", "\"~\""}, {"\"a\\tb\\u00e9\"", "\"a\\tb\\u00e9\""}, {"|\n  line\n", "\"line\\n\""},
        {">-\n  a\n  b\n", "\"a b\""},
        /* standard tags */
        {"!!str 123", "\"123\""}, {"!!str true", "\"true\""}, {"!!int 42", "42"}, {"!!int \"0x10\"", "16"},
        {"!!float 1", "1.0"}, {"!!bool false", "false"}, {"!!null ~", "null"}, {"!!null", "null"},
        {"hello world", "\"hello world\""}, {"http://x:80/", "\"http://x:80/\""}, {"é", "\"\\u00e9\""},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_yaml_value(cases[i][0], cases[i][1]);
}

static void test_yaml_scalar_errors(void **state)
{
    (void)state;
    LOAD_ERR("t.yaml", "v: 9223372036854775808",
             "t.yaml:1:4: integer 9223372036854775808 is out of range (it must fit in a signed "
             "64-bit integer); "
             "quote it to make it a string");
    LOAD_ERR("t.yaml", "v: -9223372036854775809",
             "t.yaml:1:4: integer -9223372036854775809 is out of range (it must fit in a signed "
             "64-bit integer); "
             "quote it to make it a string");
    LOAD_ERR("t.yaml", "v: 0x8000000000000000",
             "t.yaml:1:4: integer 0x8000000000000000 is out of range (it must fit in a signed "
             "64-bit integer); "
             "quote it to make it a string");
    LOAD_ERR("t.yaml", "a: 1\nv: .inf",
             "t.yaml:2:4: .inf cannot be used: JSON has no infinity or NaN (quote it to make it a "
             "string)");
    LOAD_ERR("t.yaml", "v: -.Inf",
             "t.yaml:1:4: -.Inf cannot be used: JSON has no infinity or NaN (quote it to make it a "
             "string)");
    LOAD_ERR("t.yaml", "v: .NaN",
             "t.yaml:1:4: .NaN cannot be used: JSON has no infinity or NaN (quote it to make it a "
             "string)");
    LOAD_ERR("t.yaml", "v: 1e999", "t.yaml:1:4: number 1e999 is out of range");
    LOAD_ERR("t.yaml", "v: !!int 1.5", "t.yaml:1:4: !!int value \"1.5\" is not an integer");
    LOAD_ERR("t.yaml", "v: !!bool yes",
             "t.yaml:1:4: !!bool value \"yes\" is not a boolean (expected true or false)");
    LOAD_ERR("t.yaml", "v: !!null 0",
             "t.yaml:1:4: !!null value \"0\" is not null (expected null, ~ or nothing)");
    LOAD_ERR("t.yaml", "v: !!float x", "t.yaml:1:4: !!float value \"x\" is not a number");
    LOAD_ERR("t.yaml", "v: !!binary aGk=",
             "t.yaml:1:4: unsupported tag '!!binary' (only !!str, !!int, !!float, !!bool and "
             "!!null are allowed)");
    LOAD_ERR("t.yaml", "v: !secret x",
             "t.yaml:1:4: unsupported tag '!secret' (only !!str, !!int, !!float, !!bool and !!null "
             "are allowed)");
    LOAD_ERR("t.yaml", "v: !!set {a}",
             "t.yaml:1:4: unsupported tag '!!set' (only !!str, !!int, !!float, !!bool and !!null "
             "are allowed)");
    LOAD_ERR("t.yaml", "v: \"a\\0b\"", "t.yaml:1:4: strings may not contain a NUL character (\\0)");
    LOAD_ERR("t.yaml", "\"a\\0\": 1", "t.yaml:1:1: keys may not contain a NUL character (\\0)");
    /* collections tagged as what they are are fine */
    struct pd_config_doc *doc = load_ok("t.yaml", "!!map {a: !!seq [1]}");
    pd_config_doc_free(doc);
}

static void test_yaml_structure_errors(void **state)
{
    (void)state;
    LOAD_ERR("t.yaml", "a: 1\nb: 2\na: 3\n",
             "t.yaml:3:1: duplicate key 'a' (first defined at line 1, column 1)");
    LOAD_ERR("t.yaml", "net:\n  x: 1\n  \"x\": 2\n",
             "t.yaml:3:3: duplicate key 'x' (first defined at line 2, column 3)");
    LOAD_ERR("t.yaml", "base: 1\ncopy: *base\n",
             "t.yaml:2:7: aliases (*base) are not supported in Paddock config files; write the "
             "value out");
    LOAD_ERR(
        "t.yaml", "base: &b {x: 1}\n",
        "t.yaml:1:7: anchors (&b) are not supported in Paddock config files; write the value out");
    LOAD_ERR("t.yaml", "a: 1\n---\nb: 2\n",
             "t.yaml:2:1: a second YAML document starts here; a Paddock config file holds exactly "
             "one document "
             "(remove the '---' separator)");
    LOAD_ERR("t.yaml", "? [a, b]\n: 1\n",
             "t.yaml:1:3: mapping keys must be strings, found a sequence");
    LOAD_ERR("t.yaml", "{? {a: 1} : 1}",
             "t.yaml:1:4: mapping keys must be strings, found a mapping");
    LOAD_ERR("t.yaml", "!!int 1: x",
             "t.yaml:1:1: mapping keys must be strings; the tag '!!int' is not allowed on a key");
    LOAD_ERR("t.yaml", "? \n: x", "t.yaml:1:2: empty mapping key (write the key before the ':')");
    LOAD_ERR("t.yaml", "a:\n\tb: 1\n",
             "t.yaml:2:1: found character that cannot start any token (while scanning for the next "
             "token); YAML "
             "does not allow tabs for indentation, use spaces");
    LOAD_ERR("t.yaml", "a: b: c\n", "t.yaml:1:5: mapping values are not allowed in this context");
    LOAD_ERR("t.yaml", "list: [a, b\nnext: 1\n",
             "t.yaml:2:5: did not find expected ',' or ']' (while parsing a flow sequence at line "
             "1, column 7)");
    LOAD_ERR("t.yaml", "a: \x01\n",
             "t.yaml:1:4: control characters are not allowed (U+0001); a config file must be UTF-8 "
             "text without "
             "control characters");
    LOAD_ERR(
        "t.yaml", "a: x\nb: \"\xff\"\n",
        "t.yaml:2:5: invalid leading UTF-8 octet (byte 0xFF); a config file must be UTF-8 text");
    LOAD_ERR("t.yaml", "a: \"x\0y\"",
             "t.yaml:1:6: control characters are not allowed (U+0000); a config file must "
             "be UTF-8 text without control characters");
    LOAD_ERR("t.yaml",
             "\xff\xfe"
             "a\0:\0 \0"
             "1\0",
             "t.yaml:1:1: UTF-16 text is not supported; save the file as UTF-8");
    /* keys are text: "80" and "true" are string keys */
    struct pd_config_doc *doc = load_ok("t.yaml", "80: http\ntrue: 1\n'x': 2\n");
    assert_int_equal(json_integer_value(json_object_get(pd_config_root(doc), "true")), 1);
    assert_string_equal(json_string_value(json_object_get(pd_config_root(doc), "80")), "http");
    pd_config_doc_free(doc);
}

static void test_yaml_empty_and_explicit_document(void **state)
{
    (void)state;
    static const char *const empties[] = {"", "# nothing\n", "\n\n", "---\n", "---\n...\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        struct pd_config_doc *doc = load_ok("e.yaml", empties[i]);
        assert_true(json_is_null(pd_config_root(doc)));
        pd_config_doc_free(doc);
    }
    struct pd_config_doc *doc = load_ok("e.yaml", "%YAML 1.2\n---\na: 1\n...\n");
    assert_int_equal(pd_config_get_int(pd_config_root(doc), "a", 0), 1);
    pd_config_doc_free(doc);
    doc = load_ok("s.yaml", "just a string");
    assert_string_equal(json_string_value(pd_config_root(doc)), "just a string");
    pd_config_doc_free(doc);
}

/* Found by fuzzing: libyaml ends an input without a final newline with one, so the implicit null of
 * a
 * "? key" at the very end sits one line past the last line. Every node still has a position. */
static void test_yaml_implicit_null_at_end(void **state)
{
    (void)state;
    struct pd_config_doc *doc = load_ok("e.yaml", "env:\n  k:\n    ? x");
    json_t *k = json_object_get(json_object_get(pd_config_root(doc), "env"), "k");
    struct pd_config_loc v, key;
    assert_true(json_is_null(json_object_get(k, "x")));
    assert_true(pd_config_locate_member(doc, k, "x", &v, &key));
    assert_int_equal(key.line, 3);
    assert_int_equal(key.col, 7);
    assert_int_equal(v.line, 4);
    assert_int_equal(v.col, 1);
    pd_config_doc_free(doc);
}

static void make_nested(char *buf, size_t cap, unsigned depth, bool yaml_block)
{
    size_t o = 0;
    if (yaml_block) {
        for (unsigned i = 0; i < depth; i++)
            o += (size_t)snprintf(buf + o, cap - o, "%*sk:\n", (int)(2 * i), "");
        snprintf(buf + o, cap - o, "%*sk: 1\n", (int)(2 * depth), "");
        return;
    }
    for (unsigned i = 0; i < depth; i++)
        buf[o++] = '[';
    for (unsigned i = 0; i < depth; i++)
        buf[o++] = ']';
    buf[o] = '\0';
}

static void test_depth_limit(void **state)
{
    (void)state;
    char buf[8192];
    struct pd_err err;
    make_nested(buf, sizeof buf, PD_CONFIG_MAX_DEPTH, false);
    struct pd_config_doc *doc = load_ok("d.json", buf);
    pd_config_doc_free(doc);
    doc = load_ok("d.yaml", buf);
    pd_config_doc_free(doc);
    make_nested(buf, sizeof buf, PD_CONFIG_MAX_DEPTH + 1, false);
    assert_null(load("d.json", buf, &err));
    assert_string_equal(
        err.msg, "d.json:1:65: nesting is too deep (more than 64 levels of objects and arrays)");
    assert_null(load("d.yaml", buf, &err));
    assert_string_equal(
        err.msg,
        "d.yaml:1:65: nesting is too deep (more than 64 levels of mappings and sequences)");
    /* block mappings: 63 "k:" levels + the innermost mapping = 64 mappings */
    make_nested(buf, sizeof buf, PD_CONFIG_MAX_DEPTH - 1, true);
    doc = load_ok("b.yaml", buf);
    pd_config_doc_free(doc);
    make_nested(buf, sizeof buf, PD_CONFIG_MAX_DEPTH, true);
    assert_null(load("b.yaml", buf, &err));
    assert_string_equal(
        err.msg,
        "b.yaml:65:129: nesting is too deep (more than 64 levels of mappings and sequences)");
}

/* ---- JSON strictness ---- */

static void test_json_strict(void **state)
{
    (void)state;
    LOAD_ERR("t.json", "{\"a\": [1, 2,], \"b\": 1}",
             "t.json:1:12: trailing comma: JSON does not allow ',' before ']'");
    LOAD_ERR("t.json", "{\"a\": 1,\n}",
             "t.json:1:8: trailing comma: JSON does not allow ',' before '}'");
    LOAD_ERR("t.json", "{\"a\": 1 // note\n}",
             "t.json:1:9: unexpected '/': comments are not allowed in JSON (expected ',' or '}' "
             "after an object "
             "member; the object starts at line 1, column 1)");
    LOAD_ERR("t.json", "/* c */ {}", "t.json:1:1: comments are not allowed in JSON");
    LOAD_ERR("t.json", "[01]", "t.json:1:2: leading zeros are not allowed in JSON numbers");
    LOAD_ERR("t.json", "[-01]", "t.json:1:2: leading zeros are not allowed in JSON numbers");
    LOAD_ERR(
        "t.json", "[\"\\ud800\"]",
        "t.json:1:3: lone high surrogate \\uD800 (expected a \\uDC00-\\uDFFF escape to follow)");
    LOAD_ERR(
        "t.json", "[\"x\\ud800\\u0041\"]",
        "t.json:1:4: lone high surrogate \\uD800 (expected a \\uDC00-\\uDFFF escape to follow)");
    LOAD_ERR(
        "t.json", "[\"\\udc00\"]",
        "t.json:1:3: unpaired low surrogate \\uDC00 (it must follow a \\uD800-\\uDBFF escape)");
    LOAD_ERR("t.json", "{\"k\": \"a\\u0000b\"}",
             "t.json:1:9: \\u0000 is not allowed: strings may not contain a NUL character");
    LOAD_ERR("t.json", "[\"\xff\"]",
             "t.json:1:3: invalid UTF-8 (byte 0xFF) in a string; the file must be UTF-8 text");
    LOAD_ERR("t.json", "[\"\xc0\xaf\"]", /* overlong '/' */
             "t.json:1:3: invalid UTF-8 (byte 0xC0) in a string; the file must be UTF-8 text");
    LOAD_ERR("t.json", "[\"\xed\xa0\x80\"]", /* a surrogate encoded in UTF-8 */
             "t.json:1:3: invalid UTF-8 (byte 0xED) in a string; the file must be UTF-8 text");
    LOAD_ERR("t.json", "[\"\xe2\x82\"]",
             "t.json:1:3: invalid UTF-8 (byte 0xE2) in a string; the file must be UTF-8 text");
    LOAD_ERR("t.json", "{\"a\": 1,\n \"b\": 2,\n \"a\": 3}",
             "t.json:3:2: duplicate key \"a\" (first defined at line 1, column 2)");
    /* found by fuzzing: an empty key, before any string had characters, escaped the dup check */
    LOAD_ERR("t.json", "{\"\":[1,2],\"\":1}",
             "t.json:1:11: duplicate key \"\" (first defined at line 1, column 2)");
    LOAD_ERR("t.yaml", "{\"\": 1, '': 2}",
             "t.yaml:1:9: duplicate key '' (first defined at line 1, column 2)");
    LOAD_ERR("t.json", "{\"a\": 1} {\"b\": 2}",
             "t.json:1:10: unexpected '{' after the JSON value (a file holds exactly one value)");
    LOAD_ERR("t.json", "[1] x",
             "t.json:1:5: unexpected 'x' after the JSON value (a file holds exactly one value)");
    LOAD_ERR("t.json", "", "t.json:1:1: unexpected end of input (expected a value)");
    LOAD_ERR("t.json", " \n ", "t.json:2:2: unexpected end of input (expected a value)");
    LOAD_ERR("t.json", "[NaN]",
             "t.json:1:2: unexpected 'N' (NaN and Infinity are not valid JSON numbers)");
    LOAD_ERR("t.json", "[-Infinity]", "t.json:1:3: unexpected 'I' (expected a digit after '-')");
    LOAD_ERR("t.json", "['a']", "t.json:1:2: strings must be in double quotes in JSON");
    LOAD_ERR("t.json", "{a: 1}",
             "t.json:1:2: unexpected 'a' (expected a key in double quotes; the object starts at "
             "line 1, column 1)");
    LOAD_ERR("t.json", "{\"a\" 1}",
             "t.json:1:6: unexpected '1' (expected ':' after the key \"a\")");
    LOAD_ERR("t.json", "[1 2]",
             "t.json:1:4: unexpected '2' (expected ',' or ']' after an array element; the array "
             "starts at line 1, "
             "column 1)");
    LOAD_ERR("t.json", "[+1]", "t.json:1:2: a JSON number may not start with '+'");
    LOAD_ERR("t.json", "[.5]", "t.json:1:2: a JSON number must start with a digit");
    LOAD_ERR("t.json", "[1.]",
             "t.json:1:4: unexpected ']' (expected a digit after the decimal point)");
    LOAD_ERR("t.json", "[1e+]", "t.json:1:5: unexpected ']' (expected a digit in the exponent)");
    LOAD_ERR("t.json", "[tru]", "t.json:1:2: invalid literal (expected true)");
    LOAD_ERR("t.json", "[True]",
             "t.json:1:2: unexpected 'T' (expected a value: object, array, string, number, true, "
             "false or null)");
    LOAD_ERR("t.json", "[\"a\tb\"]",
             "t.json:1:4: control character 0x09 in a string (write it as \\u0009)");
    LOAD_ERR(
        "t.json", "[\"ab\ncd\"]",
        "t.json:1:2: unterminated string (a line break inside a string must be written as \\n)");
    LOAD_ERR("t.json", "{\"a\": \"abc",
             "t.json:1:7: unterminated string (no closing '\"' before the end of input)");
    LOAD_ERR("t.json", "[\"\\x41\"]",
             "t.json:1:3: invalid escape: backslash followed by 'x' (expected one of \\\" \\\\ \\/ "
             "\\b \\f \\n \\r \\t "
             "\\uXXXX)");
    LOAD_ERR("t.json", "[\"\\u12G4\"]",
             "t.json:1:3: invalid \\u escape (expected 4 hexadecimal digits)");
    LOAD_ERR("t.json", "[9223372036854775808]",
             "t.json:1:2: integer 9223372036854775808 is out of range (it must fit in a signed "
             "64-bit integer)");
    LOAD_ERR("t.json", "[-9223372036854775809]",
             "t.json:1:2: integer -9223372036854775809 is out of range (it must fit in a signed "
             "64-bit integer)");
    LOAD_ERR("t.json", "[1e400]", "t.json:1:2: number 1e400 is out of range");
    LOAD_ERR("t.json",
             "{\"a\": [1, {\"b\": ", "t.json:1:17: unexpected end of input (expected a value)");
    LOAD_ERR("t.json", "[1, \x01]",
             "t.json:1:5: unexpected control character 0x01 (expected a value: object, array, "
             "string, number, "
             "true, false or null)");
    LOAD_ERR("t.json", "[\xfe]",
             "t.json:1:2: unexpected byte 0xFE (not valid UTF-8) (expected a value: object, array, "
             "string, number, "
             "true, false or null)");
    LOAD_ERR("t.json", "{\"\xc3\xa9\": \xc3\xa9}",
             "t.json:1:7: unexpected '\xc3\xa9' (expected a value: object, array, string, number, "
             "true, false or "
             "null)");
    LOAD_ERR("t.json", "[1]\0",
             "t.json:1:4: unexpected control character 0x00 after the JSON value (a file holds "
             "exactly one value)");
}

static void test_json_values(void **state)
{
    (void)state;
    struct pd_config_doc *doc = load_ok(
        "v.json", "\xef\xbb\xbf{\"s\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\", \"i\": "
                  "-9223372036854775808,"
                  " \"max\": 9223372036854775807, \"z\": -0, \"r\": -1.5e-3, \"e\": 1E2, \"t\": "
                  "true, \"f\": false,"
                  " \"n\": null, \"a\": [], \"o\": {}, \"\": \"empty key\", \"tiny\": 1e-400}");
    json_t *r = pd_config_root(doc);
    assert_string_equal(pd_config_get_string(r, "s", NULL),
                        "\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
    assert_true(pd_config_get_int(r, "i", 0) == INT64_MIN);
    assert_true(pd_config_get_int(r, "max", 0) == INT64_MAX);
    assert_true(json_is_integer(json_object_get(r, "z")));
    assert_true(json_is_real(json_object_get(r, "e")));
    assert_true(pd_config_get_number(r, "r", 0) == -1.5e-3);
    assert_true(pd_config_get_number(r, "e", 0) == 100.0);
    assert_true(pd_config_get_bool(r, "t", false));
    assert_false(pd_config_get_bool(r, "f", true));
    assert_true(json_is_null(json_object_get(r, "n")));
    assert_string_equal(pd_config_get_string(r, "", NULL), "empty key");
    assert_true(pd_config_get_number(r, "tiny", 1) == 0.0);
    /* the BOM does not count as a column */
    expect_loc(doc, r, "s", 1, 7, 1, 2);
    pd_config_doc_free(doc);
}

static void test_format_choice(void **state)
{
    (void)state;
    struct pd_err err;
    /* extension wins over content; case-insensitive */
    struct pd_config_doc *doc = load_ok("x.YML", "{a: 1}");
    assert_int_equal(pd_config_format_of(doc), PD_CONFIG_YAML);
    pd_config_doc_free(doc);
    doc = load_ok("dir.json/x.yaml", "[1]");
    assert_int_equal(pd_config_format_of(doc), PD_CONFIG_YAML);
    pd_config_doc_free(doc);
    doc = load_ok("x.Json", "{\"a\": 1}");
    assert_int_equal(pd_config_format_of(doc), PD_CONFIG_JSON);
    pd_config_doc_free(doc);
    /* sniffing: '{' or '[' first -> JSON, else YAML */
    doc = load_ok("config", "  \n\t[1, 2]");
    assert_int_equal(pd_config_format_of(doc), PD_CONFIG_JSON);
    pd_config_doc_free(doc);
    doc = load_ok("config.conf", "# yaml\na: [1]");
    assert_int_equal(pd_config_format_of(doc), PD_CONFIG_YAML);
    pd_config_doc_free(doc);
    doc = load_ok(NULL, "a: 1");
    assert_string_equal(pd_config_name(doc), "<input>");
    pd_config_doc_free(doc);
    LOAD_ERR("config", "{a: 1}",
             "config:1:2: unexpected 'a' (expected a key in double quotes; the object starts at "
             "line 1, column 1)");
    /* an explicit format overrides both */
    doc = pd_config_load_buffer("x.json", "a: 1", 4, PD_CONFIG_YAML, &err);
    assert_non_null(doc);
    pd_config_doc_free(doc);
    assert_null(pd_config_load_buffer("x.yaml", "a: 1", 4, PD_CONFIG_JSON, &err));
    assert_string_equal(
        err.msg,
        "x.yaml:1:1: unexpected 'a' (expected a value: object, array, string, number, true, "
        "false or null)");
    /* NULL err is allowed */
    assert_null(pd_config_load_buffer("x.json", "[", 1, PD_CONFIG_AUTO, NULL));
}

/* ---- files ---- */

static void test_file_errors(void **state)
{
    (void)state;
    struct pd_err err;
    assert_null(pd_config_load_file(DATA_DIR "/does-not-exist.yaml", PD_CONFIG_AUTO, &err));
    assert_string_equal(err.msg,
                        DATA_DIR "/does-not-exist.yaml: cannot open: No such file or directory");
    assert_null(pd_config_load_file(DATA_DIR, PD_CONFIG_AUTO, &err));
    assert_string_equal(err.msg, DATA_DIR ": not a regular file (it is a directory)");
    assert_null(pd_config_load_file("", PD_CONFIG_AUTO, &err));
    assert_string_equal(err.msg, "config: no file name given");

    char dir[] = "/tmp/pd-test-config-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];

    /* too large: one byte over the limit */
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)PD_CONFIG_MAX_BYTES + 1), 0);
    close(fd);
    assert_null(pd_config_load_file(path, PD_CONFIG_AUTO, &err));
    char want[512];
    snprintf(want, sizeof want, "%s: file is too large (4194305 bytes; the limit is 4194304 bytes)",
             path);
    assert_string_equal(err.msg, want);
    /* exactly at the limit is read (and then fails on its content: NUL bytes) */
    fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)PD_CONFIG_MAX_BYTES), 0);
    close(fd);
    assert_null(pd_config_load_file(path, PD_CONFIG_AUTO, &err));
    snprintf(want, sizeof want,
             "%s:1:1: control characters are not allowed (U+0000); a config file must be UTF-8 "
             "text without control characters",
             path);
    assert_string_equal(err.msg, want);
    unlink(path);

    /* a FIFO is refused without blocking */
    snprintf(path, sizeof path, "%s/fifo.yaml", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_null(pd_config_load_file(path, PD_CONFIG_AUTO, &err));
    snprintf(want, sizeof want, "%s: not a regular file (it is a FIFO)", path);
    assert_string_equal(err.msg, want);
    unlink(path);

    /* unreadable (skipped as root, who can read anything) */
    snprintf(path, sizeof path, "%s/secret.yaml", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0000);
    assert_true(fd >= 0);
    close(fd);
    if (geteuid() != 0) {
        assert_null(pd_config_load_file(path, PD_CONFIG_AUTO, &err));
        snprintf(want, sizeof want, "%s: cannot open: Permission denied", path);
        assert_string_equal(err.msg, want);
    }
    unlink(path);

    /* a syntax error in a file names the path */
    snprintf(path, sizeof path, "%s/bad.json", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\n  \"a\": tru\n}\n", 15), 15);
    close(fd);
    assert_null(pd_config_load_file(path, PD_CONFIG_AUTO, &err));
    snprintf(want, sizeof want, "%s:2:8: invalid literal (expected true)", path);
    assert_string_equal(err.msg, want);
    unlink(path);
    rmdir(dir);

    /* buffers have the same limit */
    char *big = calloc(1, (size_t)PD_CONFIG_MAX_BYTES + 1);
    assert_non_null(big);
    assert_null(pd_config_load_buffer("b.yaml", big, (size_t)PD_CONFIG_MAX_BYTES + 1,
                                      PD_CONFIG_AUTO, &err));
    assert_string_equal(err.msg,
                        "b.yaml: input is too large (4194305 bytes; the limit is 4194304 bytes)");
    free(big);
}

/* ---- accessors ---- */

static void test_accessors(void **state)
{
    (void)state;
    struct pd_config_doc *doc = load_ok("a.yaml", "s: x\ni: 5\nb: true\nr: 2.5\nn: ~\n");
    json_t *r = pd_config_root(doc);
    assert_string_equal(pd_config_get_string(r, "s", "d"), "x");
    assert_string_equal(pd_config_get_string(r, "i", "d"), "d");
    assert_string_equal(pd_config_get_string(r, "missing", "d"), "d");
    assert_null(pd_config_get_string(NULL, "s", NULL));
    assert_int_equal(pd_config_get_int(r, "i", 0), 5);
    assert_int_equal(pd_config_get_int(r, "r", 7), 7);
    assert_int_equal(pd_config_get_int(json_object_get(r, "s"), "i", 9), 9);
    assert_true(pd_config_get_bool(r, "b", false));
    assert_true(pd_config_get_bool(r, "n", true));
    assert_true(pd_config_get_number(r, "r", 0) == 2.5);
    assert_true(pd_config_get_number(r, "i", 0) == 5.0);
    assert_true(pd_config_get_number(r, "s", -1) == -1.0);
    char w[8];
    assert_string_equal(pd_config_where(doc, json_object_get(r, "s"), w, sizeof w),
                        "a.yaml:"); /* truncated */
    assert_null(pd_config_root(NULL));
    pd_config_doc_free(NULL);
    pd_config_doc_free(doc);
}

/* ---- schema ---- */

static int check_host(const json_t *v, struct pd_err *err)
{
    const char *s = json_string_value(v);
    if (strchr(s, ' ')) {
        pd_err_set(err, "host pattern \"%s\" contains a space", s);
        return -1;
    }
    return 0;
}

static int check_env_key(const char *key, struct pd_err *err)
{
    for (const char *p = key; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.')) {
            pd_err_set(err, "environment variable names use A-Z, 0-9 and _");
            return -1;
        }
    return 0;
}

static int check_limits(const json_t *obj, struct pd_err *err)
{
    if (pd_config_get_number(obj, "cpu", 1) > 4 &&
        pd_config_get_int(obj, "memory_mb", 512) < 1024) {
        pd_err_set(err, "more than 4 CPUs need at least 1024 MB of memory");
        return -1;
    }
    return 0;
}

static int check_silent(const json_t *v, struct pd_err *err)
{
    (void)err;
    return json_integer_value(v) == 13 ? -1 : 0;
}

static const char *const modes[] = {"enforce", "audit", "off", NULL};
static const struct pd_schema_field port_spec = {.type = PD_SCHEMA_INTEGER, .min = 1, .max = 65535};
static const struct pd_schema_field string_item = {
    .type = PD_SCHEMA_STRING, .min = 1, .max = INT64_MAX};
static const struct pd_schema_field allow_fields[] = {
    {.key = "host", .type = PD_SCHEMA_STRING, .required = true, .check = check_host},
    {.key = "ports",
     .type = PD_SCHEMA_ARRAY,
     .items = &port_spec,
     .min = 1,
     .max = 4,
     .default_json = "[443]"},
    {0}};
static const struct pd_schema allow_schema = {.fields = allow_fields};
static const struct pd_schema_field allow_item = {.type = PD_SCHEMA_OBJECT, .child = &allow_schema};
static const struct pd_schema_field network_fields[] = {
    {.key = "allow", .type = PD_SCHEMA_ARRAY, .required = true, .items = &allow_item},
    {.key = "deny", .type = PD_SCHEMA_ARRAY, .items = &string_item},
    {.key = "dns", .type = PD_SCHEMA_BOOLEAN, .default_json = "true"},
    {0}};
static const struct pd_schema network_schema = {.fields = network_fields};
static const struct pd_schema_field env_value = {
    .type = PD_SCHEMA_STRING, .max = 16, .min = INT64_MIN};
static const struct pd_schema_field limits_fields[] = {
    {.key = "cpu", .type = PD_SCHEMA_NUMBER, .min = 0, .max = 64, .default_json = "1"},
    {.key = "memory_mb",
     .type = PD_SCHEMA_INTEGER,
     .min = 16,
     .max = INT64_MAX,
     .default_json = "512"},
    {.key = "retries", .type = PD_SCHEMA_INTEGER, .check = check_silent},
    {0}};
static const struct pd_schema limits_schema = {.fields = limits_fields, .check = check_limits};
static const struct pd_schema_field root_fields[] = {
    {.key = "version", .type = PD_SCHEMA_INTEGER, .required = true, .min = 1, .max = 1},
    {.key = "name", .type = PD_SCHEMA_STRING, .min = 1, .max = 8},
    {.key = "mode", .type = PD_SCHEMA_STRING, .enum_values = modes, .default_json = "\"enforce\""},
    {.key = "network", .type = PD_SCHEMA_OBJECT, .child = &network_schema},
    {.key = "env",
     .type = PD_SCHEMA_MAP,
     .items = &env_value,
     .key_check = check_env_key,
     .max = 3,
     .min = INT64_MIN},
    {.key = "limits", .type = PD_SCHEMA_OBJECT, .child = &limits_schema, .default_json = "{}"},
    {.key = "extra", .type = PD_SCHEMA_ANY},
    {.key = "debug", .type = PD_SCHEMA_BOOLEAN},
    {0}};
static const struct pd_schema policy_schema = {.fields = root_fields};

static const char *good_policy = "# Paddock policy\n" /* 1 */
                                 "version: 1\n" /* 2 */
                                 "name: demo\n" /* 3 */
                                 "network:\n" /* 4 */
                                 "  dns: false\n" /* 5 */
                                 "  allow:\n" /* 6 */
                                 "    - host: api.example.com\n" /* 7 */
                                 "      ports: [443, 8443]\n" /* 8 */
                                 "    - host: \"*.pypi.org\"\n" /* 9 */
                                 "  deny: [evil.example.com]\n" /* 10 */
                                 "env:\n" /* 11 */
                                 "  LANG: C.UTF-8\n" /* 12 */
                                 "extra: {anything: [1, null]}\n";

static void expect_schema_error(const char *name, const char *text, const char *msg)
{
    struct pd_config_doc *doc = load_ok(name, text);
    struct pd_err err;
    pd_err_clear(&err);
    if (pd_schema_validate(doc, &policy_schema, &err) == 0)
        fail_msg("expected a schema error for:\n%s", text);
    assert_string_equal(err.msg, msg);
    pd_config_doc_free(doc);
}

static void test_schema_valid(void **state)
{
    (void)state;
    struct pd_config_doc *doc = load_ok("policy.yaml", good_policy);
    struct pd_err err;
    pd_err_clear(&err);
    assert_int_equal(pd_schema_validate(doc, &policy_schema, &err), 0);
    assert_string_equal(err.msg, "");
    /* validation alone changes nothing */
    assert_null(json_object_get(pd_config_root(doc), "mode"));
    assert_int_equal(pd_schema_validate(doc, &policy_schema, NULL), 0);
    pd_config_doc_free(doc);
}

static void test_schema_unknown_key(void **state)
{
    (void)state;
    expect_schema_error(
        "policy.yaml",
        "version: 1\n"
        "network:\n"
        "  alow:\n"
        "    - host: x\n",
        "policy.yaml:3:3: network: unknown key 'alow' (did you mean 'allow'? expected one of: "
        "allow, deny, dns)");
    expect_schema_error(
        "policy.yaml", "version: 1\nnetwork: {allow: [], DNS: true}\n",
        "policy.yaml:2:22: network: unknown key 'DNS' (did you mean 'dns'? expected one of: "
        "allow, deny, dns)");
    expect_schema_error(
        "policy.yaml", "version: 1\nnetwork: {allow: [], proxy: x}\n",
        "policy.yaml:2:22: network: unknown key 'proxy' (expected one of: allow, deny, dns)");
    expect_schema_error("policy.yaml", "verison: 1\n",
                        "policy.yaml:1:1: unknown top-level key 'verison' (did you mean 'version'? "
                        "expected one of: "
                        "version, name, mode, network, env, limits, extra, debug)");
    expect_schema_error(
        "policy.yaml", "version: 1\nnetwork: {allow: [{host: h, prots: [1]}]}\n",
        "policy.yaml:2:29: network.allow[0]: unknown key 'prots' (did you mean 'ports'? expected "
        "one of: host, ports)");
    /* a weird key is escaped in the message */
    expect_schema_error(
        "policy.yaml", "version: 1\n\"a\\tb\\\"\": 1\n",
        "policy.yaml:2:1: unknown top-level key 'a\\tb\\\"' (expected one of: version, name, mode, "
        "network, env, limits, extra, debug)");
}

static void test_schema_missing_required(void **state)
{
    (void)state;
    expect_schema_error("policy.yaml",
                        "version: 1\n"
                        "name: x\n"
                        "network:\n"
                        "  deny: []\n",
                        "policy.yaml:3:1: network: missing required key 'allow'");
    expect_schema_error("policy.yaml", "# top\nname: x\n",
                        "policy.yaml:2:1: missing required top-level key 'version'");
    expect_schema_error("policy.yaml", "version: 1\nnetwork:\n  allow:\n    - ports: [1]\n",
                        "policy.yaml:4:7: network.allow[0]: missing required key 'host'");
    expect_schema_error("policy.json", "{\"version\": 1,\n \"network\": {}}",
                        "policy.json:2:2: network: missing required key 'allow'");
}

static void test_schema_types_and_ranges(void **state)
{
    (void)state;
    expect_schema_error(
        "policy.yaml",
        "version: 1\n" /* 1 */
        "network:\n" /* 2 */
        "  allow:\n" /* 3 */
        "    - host: a.example.com\n" /* 4 */
        "    - host: b.example.com\n" /* 5 */
        "    - host: c.example.com\n" /* 6 */
        "      ports:\n" /* 7 */
        "        - http\n", /* 8 */
        "policy.yaml:8:11: network.allow[2].ports[0]: expected an integer between 1 and 65535, got "
        "string \"http\"");
    expect_schema_error(
        "policy.yaml", "version: 1\nnetwork:\n  allow: [{host: a, ports: [80, 70000]}]\n",
        "policy.yaml:3:33: network.allow[0].ports[1]: expected an integer between 1 and 65535, got "
        "70000");
    expect_schema_error("policy.yaml", "version: 1\nnetwork:\n  allow: [{host: a, ports: []}]\n",
                        "policy.yaml:3:28: network.allow[0].ports: expected an array with 1 to 4 "
                        "items, got 0 items");
    expect_schema_error("policy.yaml", "version: 2\n",
                        "policy.yaml:1:10: version: expected an integer between 1 and "
                        "1, got 2");
    expect_schema_error(
        "policy.yaml", "version: \"1\"\n",
        "policy.yaml:1:10: version: expected an integer between 1 and 1, got string \"1\"");
    expect_schema_error(
        "policy.yaml", "version: 1.0\n",
        "policy.yaml:1:10: version: expected an integer between 1 and 1, got number 1.0");
    expect_schema_error(
        "policy.yaml", "version: 1\ndebug: yes\n",
        "policy.yaml:2:8: debug: expected a boolean (true or false), got string \"yes\"");
    expect_schema_error("policy.yaml", "version: 1\nnetwork:\n  allow:\n",
                        "policy.yaml:3:9: network.allow: expected an array, got null");
    expect_schema_error("policy.yaml", "version: 1\nnetwork: [allow]\n",
                        "policy.yaml:2:10: network: expected an object, got an array");
    expect_schema_error(
        "policy.yaml", "version: 1\nname: \"\"\n",
        "policy.yaml:2:7: name: expected a string with 1 to 8 characters, got a string of 0 "
        "characters");
    expect_schema_error(
        "policy.yaml", "version: 1\nname: ééééééééé\n",
        "policy.yaml:2:7: name: expected a string with 1 to 8 characters, got a string of 9 "
        "characters");
    expect_schema_error(
        "policy.yaml", "version: 1\nnetwork: {allow: [], deny: [a, '']}\n",
        "policy.yaml:2:32: network.deny[1]: expected a non-empty string, got a string of 0 "
        "characters");
    expect_schema_error(
        "policy.yaml", "version: 1\nlimits: {cpu: 64.5}\n",
        "policy.yaml:2:15: limits.cpu: expected a number between 0 and 64, got number 64.5");
    expect_schema_error(
        "policy.yaml", "version: 1\nlimits: {cpu: fast}\n",
        "policy.yaml:2:15: limits.cpu: expected a number between 0 and 64, got string \"fast\"");
    expect_schema_error(
        "policy.yaml", "version: 1\nlimits: {memory_mb: 8}\n",
        "policy.yaml:2:21: limits.memory_mb: expected an integer of at least 16, got 8");
    expect_schema_error(
        "policy.yaml", "version: 1\nextra: x\nname: [1, {a: 2}]\n",
        "policy.yaml:3:7: name: expected a string with 1 to 8 characters, got an array");
    expect_schema_error(
        "policy.yaml", "version: 1\nname: {a: 1}\n",
        "policy.yaml:2:7: name: expected a string with 1 to 8 characters, got an object");
    expect_schema_error(
        "policy.yaml", "version: 1\nname: false\n",
        "policy.yaml:2:7: name: expected a string with 1 to 8 characters, got boolean false");
    /* long values are cut and escaped */
    expect_schema_error(
        "policy.yaml", "version: \"0123456789012345678901234567890123456789-and-more\\n\"\n",
        "policy.yaml:1:10: version: expected an integer between 1 and 1, got string "
        "\"0123456789012345678901234567890123456789...\"");
    expect_schema_error(
        "policy.yaml", "version: \"a\\\"b\\\\c\\u0001\"\n",
        "policy.yaml:1:10: version: expected an integer between 1 and 1, got string "
        "\"a\\\"b\\\\c\\x01\"");
}

static void test_schema_enum(void **state)
{
    (void)state;
    expect_schema_error(
        "policy.yaml", "version: 1\nmode: enforced\n",
        "policy.yaml:2:7: mode: expected one of \"enforce\", \"audit\", \"off\", got string "
        "\"enforced\" (did you mean \"enforce\"?)");
    expect_schema_error(
        "policy.yaml", "version: 1\nmode: strict\n",
        "policy.yaml:2:7: mode: expected one of \"enforce\", \"audit\", \"off\", got string "
        "\"strict\"");
    /* YAML 1.1 would have made this a boolean; here it is the string "off" and valid */
    struct pd_config_doc *doc = load_ok("policy.yaml", "version: 1\nmode: off\n");
    assert_int_equal(pd_schema_validate(doc, &policy_schema, NULL), 0);
    pd_config_doc_free(doc);
    expect_schema_error(
        "policy.yaml", "version: 1\nmode: 3\n",
        "policy.yaml:2:7: mode: expected one of \"enforce\", \"audit\", \"off\", got integer 3");
}

static void test_schema_map(void **state)
{
    (void)state;
    expect_schema_error(
        "policy.yaml", "version: 1\nenv:\n  HOME: /root\n  PROXY.URL: 5\n",
        "policy.yaml:4:14: env[\"PROXY.URL\"]: expected a string with at most 16 characters, got "
        "integer 5");
    expect_schema_error(
        "policy.yaml", "version: 1\nenv:\n  HOME: /root\n  bad-key: x\n",
        "policy.yaml:4:3: env: key 'bad-key': environment variable names use A-Z, 0-9 and _");
    expect_schema_error(
        "policy.yaml", "version: 1\nenv: {A: a, B: b, C: c, D: d}\n",
        "policy.yaml:2:6: env: expected an object with at most 3 entries, got 4 entries");
    expect_schema_error(
        "policy.yaml", "version: 1\nenv: [A]\n",
        "policy.yaml:2:6: env: expected an object with at most 3 entries, got an array");
    expect_schema_error(
        "policy.yaml", "version: 1\nenv: {A: 01234567890123456}\n",
        "policy.yaml:2:10: env.A: expected a string with at most 16 characters, got integer "
        "1234567890123456");
}

static void test_schema_checks(void **state)
{
    (void)state;
    expect_schema_error(
        "policy.yaml",
        "version: 1\n"
        "network:\n"
        "  allow:\n"
        "    - host: ok.example.com\n"
        "    - host: \"bad host\"\n",
        "policy.yaml:5:13: network.allow[1].host: host pattern \"bad host\" contains a space");
    expect_schema_error(
        "policy.yaml", "version: 1\nlimits:\n  cpu: 8\n  memory_mb: 512\n",
        "policy.yaml:3:3: limits: more than 4 CPUs need at least 1024 MB of memory");
    expect_schema_error("policy.yaml", "version: 1\nlimits: {retries: 13}\n",
                        "policy.yaml:2:19: limits.retries: invalid value");
    /* JSON documents point at JSON positions */
    struct pd_config_doc *doc =
        load_ok("policy.json", "{\"version\": 1,\n \"network\": {\"allow\": [{\"host\": "
                               "\"a b\"}]}}");
    struct pd_err err;
    assert_int_equal(pd_schema_validate(doc, &policy_schema, &err), -1);
    assert_string_equal(
        err.msg, "policy.json:2:33: network.allow[0].host: host pattern \"a b\" contains a space");
    pd_config_doc_free(doc);
}

static void test_schema_root_and_order(void **state)
{
    (void)state;
    expect_schema_error(
        "empty.yaml", "# nothing yet\n",
        "empty.yaml:1:1: expected an object at the top level, got null (is the file empty?)");
    expect_schema_error("list.yaml", "- a\n",
                        "list.yaml:1:1: expected an object at the top level, got an array");
    /* first error in document order wins, before missing keys */
    expect_schema_error(
        "policy.yaml", "name: toolongname\nbogus: 1\n",
        "policy.yaml:1:7: name: expected a string with 1 to 8 characters, got a string of 11 "
        "characters");
    /* deep paths and quoted path segments */
    struct pd_config_doc *doc = load_ok(
        "p.yaml", "version: 1\nnetwork:\n  allow:\n    - host: a\n      ports: [1, 2, 3, 4, 5]\n");
    struct pd_err err;
    assert_int_equal(pd_schema_validate(doc, &policy_schema, &err), -1);
    assert_string_equal(
        err.msg,
        "p.yaml:5:14: network.allow[0].ports: expected an array with 1 to 4 items, got 5 items");
    pd_config_doc_free(doc);
}

/* a.b[3].c, with an items spec that is an object */
static const struct pd_schema_field c_fields[] = {{.key = "c", .type = PD_SCHEMA_BOOLEAN}, {0}};
static const struct pd_schema c_schema = {.fields = c_fields};
static const struct pd_schema_field c_item = {.type = PD_SCHEMA_OBJECT, .child = &c_schema};
static const struct pd_schema_field b_fields[] = {
    {.key = "b", .type = PD_SCHEMA_ARRAY, .items = &c_item}, {0}};
static const struct pd_schema b_schema = {.fields = b_fields};
static const struct pd_schema_field a_fields[] = {
    {.key = "a", .type = PD_SCHEMA_OBJECT, .child = &b_schema}, {0}};
static const struct pd_schema a_schema = {.fields = a_fields};

static void test_schema_array_path(void **state)
{
    (void)state;
    struct pd_config_doc *doc =
        load_ok("abc.json", "{\"a\": {\"b\": [{}, {\"c\": true}, {}, {\"c\": \"no\"}]}}");
    struct pd_err err;
    assert_int_equal(pd_schema_validate(doc, &a_schema, &err), -1);
    assert_string_equal(
        err.msg, "abc.json:1:41: a.b[3].c: expected a boolean (true or false), got string \"no\"");
    pd_config_doc_free(doc);
}

static const struct pd_schema_field bad_fields[] = {
    {.key = "x"},
    {.key = "o", .type = PD_SCHEMA_OBJECT},
    {.key = "d", .type = PD_SCHEMA_INTEGER, .default_json = "\"s\""},
    {.key = "j", .type = PD_SCHEMA_INTEGER, .default_json = "{"},
    {0}};
static const struct pd_schema bad_schema = {.fields = bad_fields};
static const struct pd_schema_field none_fields[] = {{0}};
static const struct pd_schema none_schema = {.fields = none_fields};

#define LONG_FIELD(n)                                                \
    {                                                                \
        .key = "a_rather_long_field_name_" #n, .type = PD_SCHEMA_ANY \
    }
static const struct pd_schema_field long_fields[] = {
    LONG_FIELD(01), LONG_FIELD(02), LONG_FIELD(03), LONG_FIELD(04), LONG_FIELD(05), LONG_FIELD(06),
    LONG_FIELD(07), LONG_FIELD(08), LONG_FIELD(09), LONG_FIELD(10), LONG_FIELD(11), {0}};
static const struct pd_schema long_schema = {.fields = long_fields};

/* a schema that contains itself, with a default that makes it go on forever */
static const struct pd_schema loop_schema;
static const struct pd_schema_field loop_fields[] = {
    {.key = "next", .type = PD_SCHEMA_OBJECT, .child = &loop_schema, .default_json = "{}"}, {0}};
static const struct pd_schema loop_schema = {.fields = loop_fields};

static void test_schema_bugs_reported(void **state)
{
    (void)state;
    struct pd_err err;
    struct pd_config_doc *doc = load_ok("s.yaml", "x: 1\n");
    assert_int_equal(pd_schema_validate(doc, &bad_schema, &err), -1);
    assert_string_equal(err.msg,
                        "s.yaml:1:4: x: schema error: no valid type declared for this field");
    pd_config_doc_free(doc);
    doc = load_ok("s.yaml", "o: {}\n");
    assert_int_equal(pd_schema_validate(doc, &bad_schema, &err), -1);
    assert_string_equal(err.msg,
                        "s.yaml:1:4: o: schema error: object field without a child schema");
    pd_config_doc_free(doc);
    doc = load_ok("s.yaml", "{}\n");
    assert_int_equal(pd_schema_validate_fill(doc, &bad_schema, &err), -1);
    assert_string_equal(
        err.msg,
        "schema error: invalid default: s.yaml:1:1: d: expected an integer, got string \"s\"");
    pd_config_doc_free(doc);
    doc = load_ok("s.yaml", "a: 1\n");
    assert_int_equal(pd_schema_validate(doc, &none_schema, &err), -1);
    assert_string_equal(err.msg,
                        "s.yaml:1:1: unknown top-level key 'a' (this object takes no keys)");
    pd_config_doc_free(doc);
    doc = load_ok("s.yaml", "a_rather_long_field_name_1: x\n");
    assert_int_equal(pd_schema_validate(doc, &long_schema, &err), -1);
    assert_string_equal(err.msg,
                        "s.yaml:1:1: unknown top-level key 'a_rather_long_field_name_1' (did "
                        "you mean 'a_rather_long_field_name_01'? expected one of: "
                        "a_rather_long_field_name_01, a_rather_long_field_name_02, "
                        "a_rather_long_field_name_03, a_rather_long_field_name_04, "
                        "a_rather_long_field_name_05, a_rather_long_field_name_06, "
                        "a_rather_long_field_name_07, a_rather_long_field_name_08, ...)");
    pd_config_doc_free(doc);
    doc = load_ok("s.yaml", "next: {next: {}}\n");
    assert_int_equal(pd_schema_validate(doc, &loop_schema, &err), 0);
    assert_int_equal(pd_schema_validate_fill(doc, &loop_schema, &err), -1);
    assert_non_null(
        strstr(err.msg, "schema error: defaults nest too deep (a schema that contains itself?)"));
    assert_int_equal(pd_schema_validate(NULL, &none_schema, &err), -1);
    assert_string_equal(err.msg, "config: nothing to validate");
    pd_config_doc_free(doc);
}

static void test_schema_fill_defaults(void **state)
{
    (void)state;
    struct pd_config_doc *doc = load_ok("policy.yaml", good_policy);
    struct pd_err err;
    if (pd_schema_validate_fill(doc, &policy_schema, &err) != 0)
        fail_msg("%s", err.msg);
    json_t *r = pd_config_root(doc);
    assert_string_equal(pd_config_get_string(r, "mode", NULL), "enforce");
    json_t *limits = json_object_get(r, "limits");
    assert_true(json_is_object(limits)); /* "{}" default, then filled itself */
    assert_true(pd_config_get_number(limits, "cpu", 0) == 1.0);
    assert_int_equal(pd_config_get_int(limits, "memory_mb", 0), 512);
    assert_null(json_object_get(limits, "retries")); /* no default */
    json_t *net = json_object_get(r, "network");
    assert_false(pd_config_get_bool(net, "dns", true)); /* present: kept */
    json_t *allow = json_object_get(net, "allow");
    json_t *ports1 = json_object_get(json_array_get(allow, 1), "ports");
    assert_int_equal(json_integer_value(json_array_get(ports1, 0)), 443);
    /* filled nodes have no position of their own */
    char w[64];
    assert_string_equal(pd_config_where(doc, ports1, w, sizeof w), "policy.yaml");
    assert_string_equal(pd_config_where_member(doc, json_array_get(allow, 1), "host", w, sizeof w),
                        "policy.yaml:9:13");
    /* idempotent */
    json_t *copy = json_deep_copy(r);
    assert_int_equal(pd_schema_validate_fill(doc, &policy_schema, &err), 0);
    assert_true(json_equal(copy, r));
    json_decref(copy);
    pd_config_doc_free(doc);
}

/* ---- allocation failures ---- */

static long alloc_budget =
    -1; /* test-only state: allocations left before failing, -1 = unlimited */
static long alloc_count;

static void *failing_malloc(size_t n)
{
    alloc_count++;
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

static void failing_free(void *p)
{
    free(p);
}

static void run_until_success(const char *name, const char *text, bool validate)
{
    for (long n = 0;; n++) {
        struct pd_err err;
        pd_err_clear(&err);
        alloc_budget = n;
        alloc_count = 0;
        json_set_alloc_funcs(failing_malloc, failing_free);
        struct pd_config_doc *doc =
            pd_config_load_buffer(name, text, strlen(text), PD_CONFIG_AUTO, &err);
        int rc = doc ? 0 : -1;
        if (doc && validate)
            rc = pd_schema_validate_fill(doc, &policy_schema, &err);
        pd_config_doc_free(doc);
        json_set_alloc_funcs(malloc, free);
        if (rc == 0)
            break;
        if (!strstr(err.msg, "out of memory"))
            fail_msg("budget %ld: %s", n, err.msg);
        assert_true(n < 100000);
    }
}

static void test_allocation_failures(void **state)
{
    (void)state;
    run_until_success("policy.yaml", good_policy, true);
    run_until_success("doc.json", flow_doc, false);
    run_until_success("doc.yaml", flow_doc, false);
    run_until_success("p.json", block_json, false);
    /* the key arena and the tables grow past their first sizes */
    char big[8192];
    size_t o = 0;
    o += (size_t)snprintf(big + o, sizeof big - o, "{");
    for (int i = 0; i < 150; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "%s\"key_number_%03d_long_enough\": [%d]",
                              i ? "," : "", i, i);
    snprintf(big + o, sizeof big - o, "}");
    run_until_success("big.json", big, false);
    run_until_success("big.yaml", big, false);
    alloc_budget = -1;
}

/* Regression (fuzz_config): a document whose only keys are empty stores no key bytes at all, and the
 * position index must not do pointer arithmetic on that missing buffer (UBSan: NULL + 0). */
static void test_only_empty_keys(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        enum pd_config_format fmt;
    } docs[] = {{"{\"\": 1}", PD_CONFIG_JSON}, {"\"\": 1\n", PD_CONFIG_YAML}};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        struct pd_err err = {{0}};
        struct pd_config_doc *doc =
            pd_config_load_buffer("t", docs[i].text, strlen(docs[i].text), docs[i].fmt, &err);
        assert_non_null(doc);
        struct pd_config_loc vloc, kloc;
        assert_true(pd_config_locate_member(doc, pd_config_root(doc), "", &vloc, &kloc));
        assert_int_equal(kloc.line, 1);
        assert_int_equal(json_integer_value(json_object_get(pd_config_root(doc), "")), 1);
        pd_config_doc_free(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_text_yaml_and_json),
        cmocka_unit_test(test_block_yaml_equals_json),
        cmocka_unit_test(test_files_from_disk),
        cmocka_unit_test(test_yaml_scalars),
        cmocka_unit_test(test_yaml_scalar_errors),
        cmocka_unit_test(test_yaml_structure_errors),
        cmocka_unit_test(test_yaml_empty_and_explicit_document),
        cmocka_unit_test(test_yaml_implicit_null_at_end),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_json_strict),
        cmocka_unit_test(test_json_values),
        cmocka_unit_test(test_format_choice),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_schema_valid),
        cmocka_unit_test(test_schema_unknown_key),
        cmocka_unit_test(test_schema_missing_required),
        cmocka_unit_test(test_schema_types_and_ranges),
        cmocka_unit_test(test_schema_enum),
        cmocka_unit_test(test_schema_map),
        cmocka_unit_test(test_schema_checks),
        cmocka_unit_test(test_schema_root_and_order),
        cmocka_unit_test(test_schema_array_path),
        cmocka_unit_test(test_schema_bugs_reported),
        cmocka_unit_test(test_schema_fill_defaults),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_only_empty_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
