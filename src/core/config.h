/*
 * config.h - load a YAML or JSON configuration file into one jansson tree that remembers where
 * every node came from.
 *
 * What: pd_config_load_file()/pd_config_load_buffer() parse YAML (libyaml event parser, YAML 1.2
 * core schema) or strict RFC 8259 JSON (own recursive-descent parser) into a `struct
 * pd_config_doc`: a jansson root plus a location table with the 1-based line and column of every
 * node (objects, arrays, scalars) and of every object key. Columns count characters, not bytes (a
 * tab counts as one); lines end at \n, \r\n or \r in both formats. Validation against a declarative
 * schema lives in schema.h; this header also has small typed accessors and pd_config_where() so
 * that later semantic checks can say "file:line:col".
 *
 * Who calls it: components that read configuration (the egress gateway config, the `paddock run`
 * policy file) and their tests. Errors are written for the end user:
 * "FILE:LINE:COL: what was wrong (expected ...)".
 *
 * Format (PD_CONFIG_AUTO): by the name's extension (.yaml/.yml -> YAML, .json -> JSON, any case);
 * otherwise by sniffing: if the first byte that is not a UTF-8 BOM or whitespace is '{' or '[' it
 * is JSON, else YAML (so a YAML file written in flow style needs a .yaml/.yml name).
 *
 * YAML: one document per file (a second one is an error); anchors and aliases are refused; tags
 * other than !!str, !!int, !!float, !!bool, !!null (and !!map/!!seq on collections) are refused;
 * duplicate keys are an error naming both lines; keys must be scalars and are taken as their text
 * ("80: x" has the key "80"); plain scalars follow the YAML 1.2 core schema: null/Null/NULL/~/empty
 * -> null; true/True/TRUE/false/False/FALSE -> boolean (yes/no/on/off stay strings); [-+]?[0-9]+,
 * 0x.., 0o.. -> integer (int64 overflow is an error); decimal floats -> real; .inf/.nan are errors
 * because JSON (and jansson) cannot hold them. Quoted and block scalars are strings. A stream with
 * no document (empty, or only comments) loads as a null root. UTF-16 input is refused. An empty
 * value is placed right after its ':'; at the very end of an input without a final newline libyaml
 * places it on the line after the last.
 * JSON: RFC 8259 strictly (no comments, trailing commas, leading zeros, NaN, single quotes);
 * escapes and UTF-8 validated, "\u0000" refused, duplicate keys refused, int64 overflow refused; a
 * leading UTF-8 BOM is skipped.
 * Both: strings may not contain NUL; nesting deeper than PD_CONFIG_MAX_DEPTH and inputs larger than
 * PD_CONFIG_MAX_BYTES are refused; files must be regular files.
 *
 * Owns: the doc owns its root and location table; pd_config_root() lends the root. Every byte the
 * module allocates goes through jansson's allocator (json_set_alloc_funcs covers it; the tests
 * inject failures that way; libyaml's own buffers use malloc). Locations describe the tree as
 * loaded: nodes added later (e.g. schema defaults) have none, and a node deleted and replaced by
 * the caller may be confused with the old one at the same address.
 *
 * Never: keeps global mutable state, follows includes or environment variables, reads anything but
 * the named file, or leaves a file descriptor open.
 */
#ifndef PD_CORE_CONFIG_H
#define PD_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"

#define PD_CONFIG_MAX_BYTES (4u * 1024u * 1024u) /* file or buffer size limit */
#define PD_CONFIG_MAX_DEPTH 64 /* nested objects/arrays; the root container is level 1 */

enum pd_config_format {
    PD_CONFIG_AUTO = 0, /* extension, else sniff (see above) */
    PD_CONFIG_YAML,
    PD_CONFIG_JSON,
};

/* A 1-based position; line == 0 means "unknown". */
struct pd_config_loc {
    uint32_t line;
    uint32_t col;
};

struct pd_config_doc;

/* Load a file (regular files only, at most PD_CONFIG_MAX_BYTES). Returns NULL and fills err on
 * failure. */
struct pd_config_doc *pd_config_load_file(const char *path, enum pd_config_format format,
                                          struct pd_err *err);
/* Load from memory; `name` (NULL -> "<input>") is used in messages and, with PD_CONFIG_AUTO, for
 * the extension. `buf` need not be NUL-terminated. */
struct pd_config_doc *pd_config_load_buffer(const char *name, const char *buf, size_t len,
                                            enum pd_config_format format, struct pd_err *err);
void pd_config_doc_free(struct pd_config_doc *doc);

json_t *pd_config_root(const struct pd_config_doc *doc); /* borrowed; never NULL for a loaded doc */
const char *pd_config_name(const struct pd_config_doc *doc); /* the path or buffer name */
enum pd_config_format
pd_config_format_of(const struct pd_config_doc *doc); /* YAML or JSON as parsed */

/*
 * Locations. jansson shares one value for every true, false and null, so those cannot be found by
 * pointer: pd_config_locate() answers false for them (except when one is the root). Find them
 * through their parent with pd_config_locate_member()/pd_config_locate_index(), which work for
 * every node.
 */
bool pd_config_locate(const struct pd_config_doc *doc, const json_t *node,
                      struct pd_config_loc *out);
/* Value and key position of obj[key]; either out pointer may be NULL. */
bool pd_config_locate_member(const struct pd_config_doc *doc, const json_t *obj, const char *key,
                             struct pd_config_loc *value_loc, struct pd_config_loc *key_loc);
bool pd_config_locate_index(const struct pd_config_doc *doc, const json_t *arr, size_t index,
                            struct pd_config_loc *out);

/* "file:line:col" of a node ("file" when its position is unknown); returns buf, terminated. */
const char *pd_config_where(const struct pd_config_doc *doc, const json_t *node, char *buf,
                            size_t cap);
const char *pd_config_where_member(const struct pd_config_doc *doc, const json_t *obj,
                                   const char *key, char *buf, size_t cap);
const char *pd_config_where_index(const struct pd_config_doc *doc, const json_t *arr, size_t index,
                                  char *buf, size_t cap);

/* Typed reads of obj[key]; `def` when obj is not an object, or the key is absent or mistyped. */
const char *pd_config_get_string(const json_t *obj, const char *key, const char *def);
int64_t pd_config_get_int(const json_t *obj, const char *key, int64_t def);
bool pd_config_get_bool(const json_t *obj, const char *key, bool def);
double pd_config_get_number(const json_t *obj, const char *key, double def); /* integer or real */

/* ---- Internal to src/core/config.c, yaml_load.c, json_load.c, schema.c; not for others ---- */

void *pd_cfg_alloc(size_t n); /* jansson's allocator; NULL on failure or n == 0 */
void pd_cfg_free(void *p);
/* Record where `node` (child of parent at key/keylen, or at index when key is NULL) appeared. */
int pd_cfg_record(struct pd_config_doc *doc, const json_t *parent, const char *key, size_t keylen,
                  size_t index, const json_t *node, struct pd_config_loc loc,
                  struct pd_config_loc key_loc);
/* While parsing: does parent already hold key? If so, where was that key (duplicate detection). */
bool pd_cfg_find_key(const struct pd_config_doc *doc, const json_t *parent, const char *key,
                     size_t keylen, struct pd_config_loc *key_loc);
/* Parsers: set the root (pd_cfg_set_root), or fill err ("name:line:col: ...") and return -1. */
int pd_cfg_parse_yaml(struct pd_config_doc *doc, const char *buf, size_t len, struct pd_err *err);
int pd_cfg_parse_json(struct pd_config_doc *doc, const char *buf, size_t len, struct pd_err *err);
void pd_cfg_set_root(struct pd_config_doc *doc, json_t *root, struct pd_config_loc loc);
/* Strict UTF-8 (no overlongs, surrogates or values above U+10FFFF). */
bool pd_cfg_utf8_valid(const char *s, size_t n);
/* strtod in the C locale over exactly n bytes already checked to be a decimal number. 0, or -1 when
 * the value is not finite (overflow) or memory ran out (*oom set). */
int pd_cfg_strtod(const char *s, size_t n, double *out, bool *oom);
/* Escape s[0..n) for a message (\\, \", control bytes as \n, \t, \xNN; other UTF-8 kept), cut after
 * max_chars characters with "..." appended. Returns buf (always terminated). */
const char *pd_cfg_quote(const char *s, size_t n, size_t max_chars, char *buf, size_t cap);

#endif
