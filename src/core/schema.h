/*
 * schema.h - declarative validation of a loaded config document (config.h).
 *
 * What: a schema is a static const table of struct pd_schema_field. pd_schema_validate() walks
 * the tree in document order and reports the FIRST problem (deterministic), naming the file, line
 * and column of the offending node, the field path, and what was expected and found:
 *
 *   policy.yaml:12:7: network.allow[2].ports[0]: expected an integer between 1 and 65535, got
 *     string "http"
 *   policy.yaml:7:3: network: unknown key 'alow' (did you mean 'allow'? expected one of: allow,
 *     deny, dns)
 *   policy.yaml:3:1: network: missing required key 'allow'
 *
 * Positions: a wrong value points at the value; an unknown key at the key; a missing key at the
 * key that introduces the object ("network:") or, for the root and array elements, at the object
 * itself. Unknown keys are always errors. Member errors come in document order, then missing
 * required keys in schema order, then the object's check functions. Paths read a.b[3].c; keys that
 * are not identifiers are written a["x.y"]. A suggestion ("did you mean") is the known key or enum
 * value nearest by edit distance (at most 2, ASCII case-insensitive, transpositions count 1).
 * Found values are shown cut to 40 characters and escaped.
 *
 * Who calls it: components that define a config file format (gateway config, `paddock run` policy),
 * right after pd_config_load_*(), before reading values with the config.h accessors.
 *
 * Owns nothing: schemas are the caller's static tables. pd_schema_validate() never changes the
 * tree; pd_schema_validate_fill() also inserts the declared defaults of absent optional members
 * (see default_json), so callers read one complete tree; on failure the tree may be partly filled.
 * Never: allocates except for defaults, keeps state between calls, or prints anything.
 *
 * Defining a schema:
 *   static const struct pd_schema_field port = {.type = PD_SCHEMA_INTEGER, .min = 1, .max = 65535};
 *   static const struct pd_schema_field allow_fields[] = {
 *       {.key = "host", .type = PD_SCHEMA_STRING, .required = true, .check = check_host},
 *       {.key = "ports", .type = PD_SCHEMA_ARRAY, .items = &port, .default_json = "[443]"},
 *       {0}};
 *   static const struct pd_schema allow = {.fields = allow_fields};
 */
#ifndef PD_CORE_SCHEMA_H
#define PD_CORE_SCHEMA_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/config.h"
#include "core/err.h"

enum pd_schema_type {
    PD_SCHEMA_UNSET = 0, /* a field left without a type is reported as a schema bug */
    PD_SCHEMA_STRING,
    PD_SCHEMA_INTEGER,
    PD_SCHEMA_NUMBER, /* integer or real */
    PD_SCHEMA_BOOLEAN,
    PD_SCHEMA_OBJECT, /* fixed keys: `child` */
    PD_SCHEMA_ARRAY, /* elements follow `items` */
    PD_SCHEMA_MAP, /* object, free-form keys (key_check); values follow `items` */
    PD_SCHEMA_ANY, /* anything, including null */
};

struct pd_schema;

/* A check returns 0 when the value is fine, or fills err (without position or path: the validator
 * prefixes "file:line:col: path: ") and returns -1. */
typedef int (*pd_schema_check_fn)(const json_t *value, struct pd_err *err);
typedef int (*pd_schema_key_check_fn)(const char *key, struct pd_err *err);

struct pd_schema_field {
    const char *key; /* member name; NULL ends a field list (unused in items specs) */
    enum pd_schema_type type;
    bool required;
    const struct pd_schema *child; /* OBJECT */
    const struct pd_schema_field *items; /* ARRAY element spec, MAP value spec */
    /* Bounds, active when min != 0 || max != 0 (INT64_MIN/INT64_MAX for one-sided ones): INTEGER
     * and NUMBER values, STRING length in characters, ARRAY item count, MAP entry count. */
    int64_t min, max;
    const char *const *enum_values; /* STRING: allowed values, NULL-terminated */
    pd_schema_check_fn check; /* extra validation, after the built-in checks (and children) */
    pd_schema_key_check_fn key_check; /* MAP: keys */
    const char *default_json; /* JSON text inserted by pd_schema_validate_fill when absent */
    const char *doc; /* one-line description (for generated docs) */
};

struct pd_schema {
    const struct pd_schema_field *fields; /* terminated by {0} */
    pd_schema_check_fn check; /* whole-object check (cross-field rules), after the members */
};

/* The root must be an object following `schema`. 0, or -1 with err filled (err may be NULL). */
int pd_schema_validate(const struct pd_config_doc *doc, const struct pd_schema *schema,
                       struct pd_err *err);
/* Same, and insert the defaults of absent optional members (each validated like a value). */
int pd_schema_validate_fill(struct pd_config_doc *doc, const struct pd_schema *schema,
                            struct pd_err *err);

/* Validate (and with fill, complete) one member obj[key] of a document with field spec f, reporting
 * like the whole-document functions (path starts at key). For a section that another component
 * owns: the outer schema declares it PD_SCHEMA_ANY and that component validates it with its own
 * table. An absent member is fine unless f->required (with fill, its default_json is inserted). */
int pd_schema_validate_member(struct pd_config_doc *doc, json_t *obj, const char *key,
                              const struct pd_schema_field *f, bool fill, struct pd_err *err);

/* Every key a schema declares, depth first in declaration order (for `paddock policy keys` and the
 * test that the policy page documents exactly these). cb gets the key's path: members joined by
 * '.', "[]" for the elements of a list of objects, ".*" for the values of a map of objects
 * (allow[].host, sandbox.limits.memory); prefix (may be NULL) starts every path. A non-zero
 * return of cb stops the walk and is returned as -1; a path longer than PD_SCHEMA_PATH_MAX is -1.
 */
#define PD_SCHEMA_PATH_MAX 256
typedef int (*pd_schema_walk_fn)(const char *path, const struct pd_schema_field *f, void *ctx);
int pd_schema_walk(const struct pd_schema *schema, const char *prefix, pd_schema_walk_fn cb,
                   void *ctx);
/* The same from one field named by path (a section another component owns: `sandbox`). */
int pd_schema_walk_field(const struct pd_schema_field *f, const char *path, pd_schema_walk_fn cb,
                         void *ctx);
/* "string", "integer", "number", "boolean", "object", "list", "map" or "any". */
const char *pd_schema_type_name(enum pd_schema_type t);

#endif
