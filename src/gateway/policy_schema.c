/*
 * policy_schema.c - the declarative schema of the gateway config file (see policy.h and
 * docs/policy.md) and the checks of single values.
 *
 * Everything that can be decided by looking at one value (or one object) is checked here, so the
 * schema validator attaches "file:line:col: field.path:" to the message. Rules that relate values
 * across the document (duplicate patterns, duplicate names and aliases, alias on a wildcard domain,
 * reading secrets) live in policy.c, which reports them with the same prefix.
 *
 * The file also holds the plain settings: compiling the sections that are neither rules nor
 * credentials (sandbox_id, listen, admin_listen, state_file, limits, tls, upstream, with
 * upstream.hosts), their accessors, and pd_gw_policy_describe() (policy -> JSON). None of it reads
 * a secret value; policy.c is the only file that does.
 *
 * Never: echoes a credential value in a message (the `value` field is typed ANY and checked here
 * so that the validator's generic "got integer 1234" text cannot print it).
 */
#include "gateway/policy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/listen.h"
#include "core/utf8.h"
#include "net/cidr.h"
#include "net/domain.h"
#include "net/host.h"

#define XSTR(x) STR(x)
#define STR(x) #x

/* ---- character classes ---- */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 9110 tchar */
static bool is_tchar(char c)
{
    return is_alnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool all_chars(const char *s, bool (*ok)(char))
{
    for (; *s; s++)
        if (!ok(*s))
            return false;
    return true;
}

static bool is_id_char(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

static bool is_env_char(char c)
{
    return is_alnum(c) || c == '_';
}

static bool is_alias_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Printable ASCII or HTAB: what a header value may contain (obs-text is refused). */
static bool is_field_char(char c)
{
    return c == '\t' || (c >= 0x20 && c < 0x7f);
}

/* ---- value checks (messages get "file:line:col: path: " prepended) ---- */

bool pd_gw_sandbox_id_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 && all_chars(s, is_id_char);
}

static int check_id(const json_t *v, struct pd_err *err)
{
    if (all_chars(json_string_value(v), is_id_char))
        return 0;
    pd_err_set(err, "expected letters, digits, '.', '_' or '-' only");
    return -1;
}

static bool is_graph(char c)
{
    return c > 0x20 && c < 0x7f;
}

int pd_gw_check_listen(const json_t *v, struct pd_err *err)
{
    struct pd_listen_spec spec;
    struct pd_err e;
    const char *s = json_string_value(v);
    /* Odd bytes are refused here: the listen parser's message quotes its input as it is. */
    if (!all_chars(s, is_graph))
        snprintf(e.msg, sizeof e.msg, "printable ASCII without spaces only");
    else if (pd_listen_spec_parse(s, &spec, &e) == 0)
        return 0;
    pd_err_set(err,
               "expected ADDR:PORT with a numeric address (\"127.0.0.1:3128\", \"[::1]:3128\"): %s",
               e.msg);
    return -1;
}

static bool in_alias_space(const char *canon)
{
    size_t n = strlen(canon);
    size_t s = sizeof PD_GW_ALIAS_SUFFIX - 1;
    return strcmp(canon, PD_GW_ALIAS_SUFFIX) == 0 ||
           (n > s + 1 && canon[n - s - 1] == '.' && strcmp(canon + n - s, PD_GW_ALIAS_SUFFIX) == 0);
}

static int check_pattern(const json_t *v, struct pd_err *err)
{
    struct pd_domain d;
    if (!pd_domain_compile(json_string_value(v), json_string_length(v), &d, err))
        return -1;
    if (in_alias_space(d.name)) {
        pd_err_set(err,
                   "names under %s are reserved for credential aliases (set 'alias' on a "
                   "credential instead)",
                   PD_GW_ALIAS_SUFFIX);
        return -1;
    }
    return 0;
}

static int check_rule_domain(const json_t *v, struct pd_err *err)
{
    if (strcmp(json_string_value(v), "default") == 0)
        return 0;
    return check_pattern(v, err);
}

static int check_cidr(const json_t *v, struct pd_err *err)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct pd_cidr c;
    if (!pd_cidr_parse(json_string_value(v), json_string_length(v), &c, err))
        return -1;
    if (c.net.family == AF_INET6 && c.prefix >= 96 && memcmp(c.net.bytes, mapped, 12) == 0) {
        pd_err_set(err, "IPv4-mapped IPv6 blocks never match: the gateway unmaps ::ffff:a.b.c.d "
                        "to a.b.c.d first; write the IPv4 block instead");
        return -1;
    }
    return 0;
}

/* An array of integers or strings without repeated items. */
int pd_gw_check_unique(const json_t *v, struct pd_err *err)
{
    for (size_t i = 0; i < json_array_size(v); i++)
        for (size_t j = 0; j < i; j++)
            if (json_equal(json_array_get(v, i), json_array_get(v, j))) {
                pd_err_set(err, "items %zu and %zu are the same; list each value once", j, i);
                return -1;
            }
    return 0;
}

static bool is_upper_tchar(char c)
{
    return is_tchar(c) && !(c >= 'a' && c <= 'z');
}

static int check_method(const json_t *v, struct pd_err *err)
{
    if (all_chars(json_string_value(v), is_upper_tchar))
        return 0;
    pd_err_set(err, "expected an upper-case method token such as GET or POST (methods are "
                    "case-sensitive)");
    return -1;
}

static bool is_path_char(char c)
{
    return c > 0x20 && c < 0x7f && c != '?' && c != '#' && c != '\\';
}

static int check_path(const json_t *v, struct pd_err *err)
{
    const char *s = json_string_value(v);
    if (s[0] != '/' || !all_chars(s, is_path_char)) {
        pd_err_set(err, "expected a path prefix starting with '/' (printable ASCII without spaces, "
                        "'?', '#' or '\\')");
        return -1;
    }
    if (pd_gw_path_ambiguous(s, strlen(s))) {
        pd_err_set(err, "a path prefix may not contain '.' or '..' segments or encoded '.', '/' "
                        "or '\\' (requests with them never match a path rule)");
        return -1;
    }
    return 0;
}

static int check_allow_entry(const json_t *v, struct pd_err *err)
{
    bool host = json_object_get(v, "host") != NULL;
    bool cidr = json_object_get(v, "cidr") != NULL;
    if (host != cidr)
        return 0;
    pd_err_set(err,
               "expected exactly one of 'host' (a domain pattern) or 'cidr' (an IP block), "
               "got %s",
               host ? "both" : "neither");
    return -1;
}

static int check_header(const json_t *v, struct pd_err *err)
{
    static const char *const refused[] = {"host",
                                          "content-length",
                                          "transfer-encoding",
                                          "connection",
                                          "keep-alive",
                                          "te",
                                          "trailer",
                                          "upgrade",
                                          "expect",
                                          "proxy-connection",
                                          "proxy-authorization",
                                          "proxy-authenticate",
                                          NULL};
    const char *s = json_string_value(v);
    if (!all_chars(s, is_tchar)) {
        pd_err_set(err, "expected a header field name (letters, digits and !#$%%&'*+-.^_`|~)");
        return -1;
    }
    for (const char *const *r = refused; *r; r++)
        if (strcasecmp(s, *r) == 0) {
            pd_err_set(err,
                       "header '%s' controls routing or message framing and cannot carry a "
                       "credential",
                       s);
            return -1;
        }
    return 0;
}

static int check_format(const json_t *v, struct pd_err *err)
{
    const char *s = json_string_value(v);
    const char *at = strstr(s, "{value}");
    if (!at || strstr(at + 1, "{value}")) {
        pd_err_set(err, "expected a header value format containing \"{value}\" exactly once, "
                        "such as \"Bearer {value}\"");
        return -1;
    }
    if (!all_chars(s, is_field_char)) {
        pd_err_set(err, "a header value format may contain printable ASCII and tabs only (no CR, "
                        "LF or other control characters)");
        return -1;
    }
    return 0;
}

static int check_alias(const json_t *v, struct pd_err *err)
{
    const char *s = json_string_value(v);
    if (all_chars(s, is_alias_char) && s[0] != '-' && s[strlen(s) - 1] != '-')
        return 0;
    pd_err_set(err,
               "expected one lower-case DNS label ([a-z0-9-], not starting or ending with "
               "'-'), such as \"openai\"; it is used as <alias>.%s",
               PD_GW_ALIAS_SUFFIX);
    return -1;
}

static int check_env_name(const json_t *v, struct pd_err *err)
{
    const char *s = json_string_value(v);
    if (all_chars(s, is_env_char) && !(s[0] >= '0' && s[0] <= '9'))
        return 0;
    pd_err_set(err, "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
    return -1;
}

/* Typed ANY so that no generic message prints the value; say only what is wrong. */
static int check_inline_value(const json_t *v, struct pd_err *err)
{
    if (!json_is_string(v)) {
        pd_err_set(err, "expected a string (quote the value); the value is not shown");
        return -1;
    }
    if (json_string_length(v) == 0) {
        pd_err_set(err, "expected a non-empty string");
        return -1;
    }
    return 0;
}

static int check_credential(const json_t *v, struct pd_err *err)
{
    int n = (json_object_get(v, "value_env") != NULL) + (json_object_get(v, "value_file") != NULL) +
            (json_object_get(v, "value") != NULL);
    if (n == 1)
        return 0;
    pd_err_set(err, "expected exactly one of 'value_env', 'value_file' or 'value', got %s",
               n ? "several" : "none");
    return -1;
}

static int check_host_key(const char *key, struct pd_err *err)
{
    char canon[PD_HOST_MAX + 1];
    return pd_host_canon_name(key, strlen(key), canon, NULL, err) ? 0 : -1;
}

static int check_strict_ip(const json_t *v, struct pd_err *err)
{
    struct pd_addr a;
    struct pd_err e;
    if (pd_ip_parse_strict(json_string_value(v), json_string_length(v), &a, &e))
        return 0;
    pd_err_set(err, "expected an IP address (a.b.c.d or IPv6): %s", e.msg);
    return -1;
}

/* ---- tables ---- */

static const struct pd_schema_field listen_item = {
    .type = PD_SCHEMA_STRING, .min = 1, .max = 64, .check = pd_gw_check_listen};
static const struct pd_schema_field port_item = {.type = PD_SCHEMA_INTEGER, .min = 1, .max = 65535};
static const struct pd_schema_field method_item = {
    .type = PD_SCHEMA_STRING, .min = 1, .max = 32, .check = check_method};
static const struct pd_schema_field path_item = {
    .type = PD_SCHEMA_STRING, .min = 1, .max = 1024, .check = check_path};

static const struct pd_schema_field allow_fields[] = {
    {.key = "host",
     .type = PD_SCHEMA_STRING,
     .check = check_pattern,
     .doc = "domain pattern: exact name or *.suffix"},
    {.key = "cidr",
     .type = PD_SCHEMA_STRING,
     .check = check_cidr,
     .doc = "IP block for IP literals"},
    {.key = "ports",
     .type = PD_SCHEMA_ARRAY,
     .items = &port_item,
     .min = 1,
     .max = 64,
     .check = pd_gw_check_unique,
     .default_json = "[80, 443]",
     .doc = "allowed destination ports"},
    {.key = "methods",
     .type = PD_SCHEMA_ARRAY,
     .items = &method_item,
     .min = 1,
     .max = 32,
     .check = pd_gw_check_unique,
     .doc = "allowed methods (plain HTTP and injected requests)"},
    {.key = "paths",
     .type = PD_SCHEMA_ARRAY,
     .items = &path_item,
     .min = 1,
     .max = 64,
     .check = pd_gw_check_unique,
     .doc = "allowed path prefixes (plain HTTP and injected requests)"},
    {.key = "allow_private",
     .type = PD_SCHEMA_BOOLEAN,
     .default_json = "false",
     .doc = "may reach loopback/private/link-local/metadata addresses"},
    {0}};
static const struct pd_schema allow_schema = {.fields = allow_fields, .check = check_allow_entry};
static const struct pd_schema_field allow_item = {.type = PD_SCHEMA_OBJECT, .child = &allow_schema};

static const struct pd_schema_field cred_fields[] = {
    {.key = "name",
     .type = PD_SCHEMA_STRING,
     .required = true,
     .min = 1,
     .max = 64,
     .check = check_id,
     .doc = "unique name (logged; never the value)"},
    {.key = "domain",
     .type = PD_SCHEMA_STRING,
     .required = true,
     .check = check_pattern,
     .doc = "domain pattern the credential applies to"},
    {.key = "header",
     .type = PD_SCHEMA_STRING,
     .required = true,
     .min = 1,
     .max = 64,
     .check = check_header,
     .doc = "header field that carries it"},
    {.key = "format",
     .type = PD_SCHEMA_STRING,
     .required = true,
     .min = 7,
     .max = 256,
     .check = check_format,
     .doc = "header value with {value} once"},
    {.key = "alias",
     .type = PD_SCHEMA_STRING,
     .min = 1,
     .max = 63,
     .check = check_alias,
     .doc = "<alias>.devbox.local shortcut"},
    {.key = "value_env",
     .type = PD_SCHEMA_STRING,
     .min = 1,
     .max = 255,
     .check = check_env_name,
     .doc = "environment variable holding the value"},
    {.key = "value_file",
     .type = PD_SCHEMA_STRING,
     .min = 1,
     .max = 4096,
     .doc = "file holding the value (mode 0600)"},
    {.key = "value",
     .type = PD_SCHEMA_ANY,
     .check = check_inline_value,
     .doc = "inline value (discouraged)"},
    {.key = "upgrade_http",
     .type = PD_SCHEMA_BOOLEAN,
     .default_json = "false",
     .doc = "send plain http:// requests over TLS with the credential"},
    {0}};
static const struct pd_schema cred_schema = {.fields = cred_fields, .check = check_credential};
static const struct pd_schema_field cred_item = {.type = PD_SCHEMA_OBJECT, .child = &cred_schema};

static const struct pd_schema_field rate_fields[] = {{.key = "domain",
                                                      .type = PD_SCHEMA_STRING,
                                                      .required = true,
                                                      .check = check_rule_domain,
                                                      .doc = "\"default\" or a domain pattern"},
                                                     {.key = "requests_per_minute",
                                                      .type = PD_SCHEMA_INTEGER,
                                                      .required = true,
                                                      .min = 1,
                                                      .max = 1000000,
                                                      .doc = "token refill rate"},
                                                     {.key = "burst_size",
                                                      .type = PD_SCHEMA_INTEGER,
                                                      .min = 1,
                                                      .max = 1000000,
                                                      .default_json = XSTR(PD_GW_DEFAULT_BURST),
                                                      .doc = "bucket size"},
                                                     {0}};
static const struct pd_schema rate_schema = {.fields = rate_fields};
static const struct pd_schema_field rate_item = {.type = PD_SCHEMA_OBJECT, .child = &rate_schema};

static const struct pd_schema_field budget_fields[] = {
    {.key = "domain",
     .type = PD_SCHEMA_STRING,
     .required = true,
     .check = check_rule_domain,
     .doc = "\"default\" or a domain pattern"},
    {.key = "bytes_sent_per_hour",
     .type = PD_SCHEMA_INTEGER,
     .required = true,
     .min = 1,
     .max = INT64_MAX,
     .doc = "bytes the agent may send per hour"},
    {.key = "bytes_received_per_hour",
     .type = PD_SCHEMA_INTEGER,
     .min = 1,
     .max = INT64_MAX,
     .doc = "bytes the agent may receive per hour"},
    {0}};
static const struct pd_schema budget_schema = {.fields = budget_fields};
static const struct pd_schema_field budget_item = {.type = PD_SCHEMA_OBJECT,
                                                   .child = &budget_schema};

static const struct pd_schema_field ip_item = {
    .type = PD_SCHEMA_STRING, .min = 1, .max = 64, .check = check_strict_ip};
static const struct pd_schema_field host_addrs = {
    .type = PD_SCHEMA_ARRAY, .items = &ip_item, .min = 1, .max = 16, .check = pd_gw_check_unique};
static const struct pd_schema_field upstream_fields[] = {
    {.key = "ca_file",
     .type = PD_SCHEMA_STRING,
     .min = 1,
     .max = 4096,
     .doc = "CA bundle for upstream TLS (default: system store)"},
    {.key = "connect_timeout_ms",
     .type = PD_SCHEMA_INTEGER,
     .min = 100,
     .max = 300000,
     .default_json = XSTR(PD_GW_DEFAULT_CONNECT_TIMEOUT_MS),
     .doc = "upstream connect timeout"},
    {.key = "hosts",
     .type = PD_SCHEMA_MAP,
     .items = &host_addrs,
     .key_check = check_host_key,
     .doc = "static name -> addresses instead of DNS"},
    {0}};
static const struct pd_schema upstream_schema = {.fields = upstream_fields};

static const struct pd_schema_field tls_fields[] = {{.key = "require_sni",
                                                     .type = PD_SCHEMA_BOOLEAN,
                                                     .default_json = "true",
                                                     .doc = "CONNECT to 443 must carry SNI"},
                                                    {.key = "allow_ech",
                                                     .type = PD_SCHEMA_BOOLEAN,
                                                     .default_json = "false",
                                                     .doc = "accept encrypted_client_hello"},
                                                    {0}};
static const struct pd_schema tls_schema = {.fields = tls_fields};

static const struct pd_schema_field limits_fields[] = {
    {.key = "max_connections",
     .type = PD_SCHEMA_INTEGER,
     .min = 1,
     .max = 1048576,
     .default_json = XSTR(PD_GW_DEFAULT_MAX_CONNECTIONS)},
    {.key = "max_head",
     .type = PD_SCHEMA_INTEGER,
     .min = 1024,
     .max = 1048576,
     .default_json = XSTR(PD_GW_DEFAULT_MAX_HEAD)},
    {.key = "header_timeout_ms",
     .type = PD_SCHEMA_INTEGER,
     .min = 100,
     .max = 3600000,
     .default_json = XSTR(PD_GW_DEFAULT_HEADER_TIMEOUT_MS)},
    {.key = "idle_timeout_ms",
     .type = PD_SCHEMA_INTEGER,
     .min = 100,
     .max = 86400000,
     .default_json = XSTR(PD_GW_DEFAULT_IDLE_TIMEOUT_MS)},
    {.key = "tunnel_idle_timeout_ms",
     .type = PD_SCHEMA_INTEGER,
     .min = 1000,
     .max = 86400000,
     .default_json = XSTR(PD_GW_DEFAULT_TUNNEL_IDLE_TIMEOUT_MS)},
    {0}};
static const struct pd_schema limits_schema = {.fields = limits_fields};

static const struct pd_schema_field root_fields[] = {
    {.key = "sandbox_id",
     .type = PD_SCHEMA_STRING,
     .min = 1,
     .max = 64,
     .check = check_id,
     .default_json = "\"" PD_GW_DEFAULT_SANDBOX_ID "\"",
     .doc = "sandbox id in every access-log line"},
    {.key = "listen",
     .type = PD_SCHEMA_ARRAY,
     .items = &listen_item,
     .max = 64,
     .check = pd_gw_check_unique,
     .doc = "proxy listeners ADDR:PORT"},
    {.key = "admin_listen",
     .type = PD_SCHEMA_STRING,
     .min = 1,
     .max = 64,
     .check = pd_gw_check_listen,
     .doc = "/metrics and /healthz listener"},
    {.key = "allow",
     .type = PD_SCHEMA_ARRAY,
     .items = &allow_item,
     .max = 65536,
     .doc = "allow rules (deny by default)"},
    {.key = "credentials",
     .type = PD_SCHEMA_ARRAY,
     .items = &cred_item,
     .max = PD_GW_MAX_CREDENTIALS,
     .doc = "credentials to inject"},
    {.key = "rate_limits",
     .type = PD_SCHEMA_ARRAY,
     .items = &rate_item,
     .max = 65536,
     .doc = "request rate limits"},
    {.key = "budgets",
     .type = PD_SCHEMA_ARRAY,
     .items = &budget_item,
     .max = 65536,
     .doc = "byte budgets"},
    {.key = "state_file", .type = PD_SCHEMA_STRING, .min = 1, .max = 4096, .doc = "budget state"},
    {.key = "upstream", .type = PD_SCHEMA_OBJECT, .child = &upstream_schema},
    {.key = "tls", .type = PD_SCHEMA_OBJECT, .child = &tls_schema},
    {.key = "limits", .type = PD_SCHEMA_OBJECT, .child = &limits_schema},
    {.key = "dns", .type = PD_SCHEMA_OBJECT, .child = &pd_gw_dns_schema, .doc = "the DNS filter"},
    /* `paddock run` validates this section itself (sandbox/run_policy.h); the gateway ignores it.
     */
    {.key = "sandbox", .type = PD_SCHEMA_ANY, .doc = "the sandbox of paddock run"},
    {0}};

const struct pd_schema pd_gw_policy_schema = {.fields = root_fields};

/* ---- compiling the settings sections (everything but rules and credentials) ---- */

static int settings_oom(const struct pd_config_doc *doc, struct pd_err *err)
{
    pd_err_set(err, "%s: out of memory compiling the gateway policy", pd_config_name(doc));
    return -1;
}

static uint32_t u32(const json_t *obj, const char *key, uint32_t def)
{
    return (uint32_t)pd_config_get_int(obj, key, def); /* the schema bounded it */
}

/* upstream.hosts: canonical name -> strict addresses, looked up through an exact-name set. */
static int compile_hosts(struct pd_gw_policy *p, const struct pd_config_doc *doc,
                         const json_t *hosts, struct pd_err *err)
{
    struct pd_err e;
    const char *key;
    json_t *val;
    if (!(p->host_set = pd_domain_set_new(&e)) ||
        !(p->hosts = pd_gw_alloc(p, (json_object_size(hosts) + 1) * sizeof *p->hosts)))
        return settings_oom(doc, err);
    json_object_foreach((json_t *)hosts, key, val)
    {
        struct pd_gw_hosts_entry *h = &p->hosts[p->nhosts];
        struct pd_config_loc kl = {0, 0};
        char canon[PD_HOST_MAX + 1];
        pd_config_locate_member(doc, hosts, key, NULL, &kl);
        if (!pd_host_canon_name(key, strlen(key), canon, NULL, &e)) /* the key check passed */
            return settings_oom(doc, err);
        for (size_t j = 0; j < p->nhosts; j++) {
            if (strcmp(p->hosts[j].name, canon) == 0) {
                pd_err_set(err,
                           "%s:%u:%u: upstream.hosts[\"%s\"]: '%s' is listed twice (both "
                           "spellings mean '%s'); keep one entry",
                           pd_config_name(doc), kl.line, kl.col, key, key, canon);
                return -1;
            }
        }
        h->name = pd_gw_strdup(p, canon);
        h->n = json_array_size(val);
        h->addrs = pd_gw_alloc(p, h->n * sizeof *h->addrs);
        if (!h->name || !h->addrs || !pd_domain_set_add(p->host_set, canon, strlen(canon), h, &e))
            return settings_oom(doc, err);
        for (size_t j = 0; j < h->n; j++) {
            const json_t *ip = json_array_get(val, j);
            pd_ip_parse_strict(json_string_value(ip), json_string_length(ip), &h->addrs[j], NULL);
        }
        p->nhosts++;
    }
    return 0;
}

int pd_gw_compile_settings(struct pd_gw_policy *p, const struct pd_config_doc *doc,
                           struct pd_err *err)
{
    const json_t *root = pd_config_root(doc);
    const json_t *listen = json_object_get(root, "listen");
    const char *s;
    p->sandbox_id =
        pd_gw_strdup(p, pd_config_get_string(root, "sandbox_id", PD_GW_DEFAULT_SANDBOX_ID));
    p->nlisten = json_array_size(listen);
    p->listen = pd_gw_alloc(p, (p->nlisten + 1) * sizeof *p->listen);
    if (!p->sandbox_id || !p->listen)
        return settings_oom(doc, err);
    for (size_t i = 0; i < p->nlisten; i++)
        if (!(p->listen[i] = pd_gw_strdup(p, json_string_value(json_array_get(listen, i)))))
            return settings_oom(doc, err);
    if ((s = pd_config_get_string(root, "admin_listen", NULL)) &&
        !(p->admin_listen = pd_gw_strdup(p, s)))
        return settings_oom(doc, err);
    if ((s = pd_config_get_string(root, "state_file", NULL)) &&
        !(p->state_file = pd_gw_resolve_path(p, s)))
        return settings_oom(doc, err);

    const json_t *lim = json_object_get(root, "limits");
    p->limits = (struct pd_gw_limits){
        .max_connections = u32(lim, "max_connections", PD_GW_DEFAULT_MAX_CONNECTIONS),
        .max_head = u32(lim, "max_head", PD_GW_DEFAULT_MAX_HEAD),
        .header_timeout_ms = u32(lim, "header_timeout_ms", PD_GW_DEFAULT_HEADER_TIMEOUT_MS),
        .idle_timeout_ms = u32(lim, "idle_timeout_ms", PD_GW_DEFAULT_IDLE_TIMEOUT_MS),
        .tunnel_idle_timeout_ms =
            u32(lim, "tunnel_idle_timeout_ms", PD_GW_DEFAULT_TUNNEL_IDLE_TIMEOUT_MS),
    };
    const json_t *tls = json_object_get(root, "tls");
    p->tls.require_sni = pd_config_get_bool(tls, "require_sni", true);
    p->tls.allow_ech = pd_config_get_bool(tls, "allow_ech", false);
    const json_t *up = json_object_get(root, "upstream");
    p->upstream.connect_timeout_ms =
        u32(up, "connect_timeout_ms", PD_GW_DEFAULT_CONNECT_TIMEOUT_MS);
    if ((s = pd_config_get_string(up, "ca_file", NULL)) &&
        !(p->upstream.ca_file = pd_gw_resolve_path(p, s)))
        return settings_oom(doc, err);
    return compile_hosts(p, doc, json_object_get(up, "hosts"), err);
}

/* ---- paths ---- */

bool pd_gw_path_ambiguous(const char *path, size_t len)
{
    size_t end = 0;
    while (end < len && path[end] != '?' && path[end] != '#')
        end++;
    for (size_t i = 0; i < end; i++) {
        char ch = path[i];
        if (ch == '\\')
            return true;
        if (ch == '%' && i + 2 < end) {
            char h = path[i + 1], l = (char)(path[i + 2] | 0x20);
            if ((h == '2' && (l == 'e' || l == 'f')) || (h == '5' && l == 'c'))
                return true;
        }
        if (ch == '/' || i == 0) {
            /* the segment after this '/' (or at the start), up to '/' or ';' */
            size_t s = ch == '/' ? i + 1 : i, e = s;
            while (e < end && path[e] != '/' && path[e] != ';')
                e++;
            if ((e - s == 1 && path[s] == '.') ||
                (e - s == 2 && path[s] == '.' && path[s + 1] == '.'))
                return true;
        }
    }
    return false;
}

/* ---- accessors (policy.h) ---- */

const char *pd_gw_policy_source(const struct pd_gw_policy *p)
{
    return p->source;
}

static void add_file(struct pd_gw_file *out, size_t cap, size_t *n, const char *path,
                     enum pd_gw_file_kind kind)
{
    if (!path)
        return;
    if (*n < cap)
        out[*n] = (struct pd_gw_file){path, kind};
    (*n)++;
}

size_t pd_gw_policy_files(const struct pd_gw_policy *p, struct pd_gw_file *out, size_t cap)
{
    size_t n = 0;
    add_file(out, cap, &n, p->source, PD_GW_FILE_POLICY);
    for (size_t i = 0; i < p->ncreds; i++)
        if (p->creds[i].kind == PD_GW_SRC_FILE)
            add_file(out, cap, &n, p->creds[i].source, PD_GW_FILE_SECRET);
    add_file(out, cap, &n, p->upstream.ca_file, PD_GW_FILE_READ);
    add_file(out, cap, &n, p->dns.hosts_file, PD_GW_FILE_READ);
    add_file(out, cap, &n, p->state_file, PD_GW_FILE_STATE);
    return n;
}

int pd_gw_policy_set_sandbox_id(struct pd_gw_policy *p, const char *id)
{
    char *d = pd_gw_strdup(p, id);
    if (!d)
        return -1;
    p->sandbox_id = d;
    return 0;
}

const char *pd_gw_policy_sandbox_id(const struct pd_gw_policy *p)
{
    return p->sandbox_id;
}

size_t pd_gw_policy_listen_count(const struct pd_gw_policy *p)
{
    return p->nlisten;
}

const char *pd_gw_policy_listen(const struct pd_gw_policy *p, size_t i)
{
    return i < p->nlisten ? p->listen[i] : NULL;
}

const char *pd_gw_policy_admin_listen(const struct pd_gw_policy *p)
{
    return p->admin_listen;
}

const char *pd_gw_policy_state_file(const struct pd_gw_policy *p)
{
    return p->state_file;
}

const struct pd_gw_limits *pd_gw_policy_limits(const struct pd_gw_policy *p)
{
    return &p->limits;
}

const struct pd_gw_tls_settings *pd_gw_policy_tls(const struct pd_gw_policy *p)
{
    return &p->tls;
}

const struct pd_gw_upstream *pd_gw_policy_upstream(const struct pd_gw_policy *p)
{
    return &p->upstream;
}

size_t pd_gw_policy_upstream_hosts(const struct pd_gw_policy *p, const char *host,
                                   const struct pd_addr **addrs)
{
    void *data = NULL;
    *addrs = NULL;
    if (!host || !pd_domain_set_lookup(p->host_set, host, strlen(host), &data))
        return 0;
    const struct pd_gw_hosts_entry *h = data;
    *addrs = h->addrs;
    return h->n;
}

size_t pd_gw_policy_rate_count(const struct pd_gw_policy *p)
{
    return p->nrates;
}

const struct pd_gw_rate_rule *pd_gw_policy_rate_rule(const struct pd_gw_policy *p, size_t i)
{
    return i < p->nrates ? &p->rates[i] : NULL;
}

size_t pd_gw_policy_budget_count(const struct pd_gw_policy *p)
{
    return p->nbudgets;
}

const struct pd_gw_budget_rule *pd_gw_policy_budget_rule(const struct pd_gw_policy *p, size_t i)
{
    return i < p->nbudgets ? &p->budgets[i] : NULL;
}

size_t pd_gw_policy_credential_count(const struct pd_gw_policy *p)
{
    return p->ncreds;
}

const char *pd_gw_credential_name(const struct pd_gw_credential *c)
{
    return c->name;
}

const char *pd_gw_credential_header(const struct pd_gw_credential *c)
{
    return c->header;
}

const char *pd_gw_credential_domain(const struct pd_gw_credential *c)
{
    return c->domain;
}

const char *pd_gw_credential_alias(const struct pd_gw_credential *c)
{
    return c->alias;
}

bool pd_gw_credential_upgrade_http(const struct pd_gw_credential *c)
{
    return c->upgrade_http;
}

/* ---- describe: the effective policy as JSON, without secret values ---- */

/* A string, null for NULL; text that is not UTF-8 (a file name) is escaped. */
static json_t *jstr(const char *s)
{
    char esc[PD_NET_ESC_MAX];
    if (!s)
        return json_null();
    if (pd_utf8_valid(s, strlen(s)))
        return json_string(s);
    return json_string(pd_net_escape(s, strlen(s), PD_NET_ESC_IN, esc, sizeof esc));
}

/* jansson's *_new functions release the value on failure (also for a NULL container), so a failed
 * step only needs to be remembered. */
static void put(json_t *o, const char *k, json_t *v, bool *ok)
{
    if (json_object_set_new(o, k, v) != 0)
        *ok = false;
}

static void push(json_t *a, json_t *v, bool *ok)
{
    if (json_array_append_new(a, v) != 0)
        *ok = false;
}

static json_t *str_array(const char *const *v, size_t n, bool *ok)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        push(a, jstr(v[i]), ok);
    return a;
}

static json_t *describe_rule(const struct pd_gw_allow_rule *r, bool *ok)
{
    json_t *o = json_object();
    json_t *ports = json_array();
    for (size_t i = 0; i < r->nports; i++)
        push(ports, json_integer(r->ports[i]), ok);
    put(o, r->is_cidr ? "cidr" : "host", jstr(r->text), ok);
    put(o, "ports", ports, ok);
    if (r->nmethods)
        put(o, "methods", str_array(r->methods, r->nmethods, ok), ok);
    if (r->npaths)
        put(o, "paths", str_array(r->paths, r->npaths, ok), ok);
    put(o, "allow_private", json_boolean(r->allow_private), ok);
    put(o, "where", jstr(r->where), ok);
    return o;
}

static json_t *describe_credential(const struct pd_gw_credential *c, bool *ok)
{
    json_t *o = json_object();
    json_t *src = c->kind == PD_GW_SRC_INLINE ? json_string("inline") : json_object();
    if (c->kind != PD_GW_SRC_INLINE)
        put(src, c->kind == PD_GW_SRC_ENV ? "env" : "file", jstr(c->source), ok);
    put(o, "name", jstr(c->name), ok);
    put(o, "domain", jstr(c->domain), ok);
    put(o, "header", jstr(c->header), ok);
    put(o, "format", jstr(c->format), ok);
    put(o, "alias", jstr(c->alias), ok);
    put(o, "upgrade_http", json_boolean(c->upgrade_http), ok);
    put(o, "source", src, ok);
    put(o, "value", json_string("[redacted]"), ok);
    put(o, "where", jstr(c->where), ok);
    return o;
}

json_t *pd_gw_policy_describe(const struct pd_gw_policy *p)
{
    bool ok = true;
    char text[PD_ADDR_STRLEN];
    json_t *root = json_object();
    json_t *allow = json_array(), *creds = json_array(), *rates = json_array();
    json_t *budgets = json_array(), *hosts = json_object();
    json_t *up = json_object(), *tls = json_object(), *lim = json_object();
    for (size_t i = 0; i < p->nrules; i++)
        push(allow, describe_rule(&p->rules[i], &ok), &ok);
    for (size_t i = 0; i < p->ncreds; i++)
        push(creds, describe_credential(&p->creds[i], &ok), &ok);
    for (size_t i = 0; i < p->nrates; i++) {
        json_t *o = json_object();
        put(o, "domain", jstr(p->rates[i].key), &ok);
        put(o, "requests_per_minute", json_integer(p->rates[i].requests_per_minute), &ok);
        put(o, "burst_size", json_integer(p->rates[i].burst_size), &ok);
        put(o, "where", jstr(p->rates[i].where), &ok);
        push(rates, o, &ok);
    }
    for (size_t i = 0; i < p->nbudgets; i++) {
        const struct pd_gw_budget_rule *b = &p->budgets[i];
        json_t *o = json_object();
        put(o, "domain", jstr(b->key), &ok);
        put(o, "bytes_sent_per_hour", json_integer((json_int_t)b->bytes_sent_per_hour), &ok);
        put(o, "bytes_received_per_hour",
            b->bytes_received_per_hour ? json_integer((json_int_t)b->bytes_received_per_hour)
                                       : json_null(),
            &ok);
        put(o, "where", jstr(b->where), &ok);
        push(budgets, o, &ok);
    }
    for (size_t i = 0; i < p->nhosts; i++) {
        json_t *a = json_array();
        for (size_t j = 0; j < p->hosts[i].n; j++) {
            pd_addr_format(&p->hosts[i].addrs[j], text, sizeof text);
            push(a, json_string(text), &ok);
        }
        put(hosts, p->hosts[i].name, a, &ok);
    }
    put(up, "ca_file", jstr(p->upstream.ca_file), &ok);
    put(up, "connect_timeout_ms", json_integer(p->upstream.connect_timeout_ms), &ok);
    put(up, "hosts", hosts, &ok);
    put(tls, "require_sni", json_boolean(p->tls.require_sni), &ok);
    put(tls, "allow_ech", json_boolean(p->tls.allow_ech), &ok);
    put(lim, "max_connections", json_integer(p->limits.max_connections), &ok);
    put(lim, "max_head", json_integer(p->limits.max_head), &ok);
    put(lim, "header_timeout_ms", json_integer(p->limits.header_timeout_ms), &ok);
    put(lim, "idle_timeout_ms", json_integer(p->limits.idle_timeout_ms), &ok);
    put(lim, "tunnel_idle_timeout_ms", json_integer(p->limits.tunnel_idle_timeout_ms), &ok);
    put(root, "source", jstr(p->source), &ok);
    put(root, "sandbox_id", jstr(p->sandbox_id), &ok);
    put(root, "listen", str_array(p->listen, p->nlisten, &ok), &ok);
    put(root, "admin_listen", jstr(p->admin_listen), &ok);
    put(root, "allow", allow, &ok);
    put(root, "credentials", creds, &ok);
    put(root, "rate_limits", rates, &ok);
    put(root, "budgets", budgets, &ok);
    put(root, "state_file", jstr(p->state_file), &ok);
    put(root, "upstream", up, &ok);
    put(root, "tls", tls, &ok);
    put(root, "limits", lim, &ok);
    put(root, "dns", pd_gw_describe_dns(p), &ok);
    if (ok)
        return root;
    json_decref(root);
    return NULL;
}
