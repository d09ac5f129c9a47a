/*
 * dns_policy.c - the `dns` section of the gateway policy (policy.h: struct pd_gw_dns): its schema,
 * compiling it (the hosts file is read here, so a reload with a bad one is refused like any other
 * bad config), describing it for --check, and pd_gw_dns_decide(), which answers "may this name be
 * resolved?" from the same allow rules as the proxy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/listen.h"
#include "gateway/policy.h"
#include "net/dns.h"
#include "net/domain.h"
#include "net/hosts_file.h"

#define XSTR_(x) #x
#define XSTR(x) XSTR_(x)

/* ---- schema ---- */

static const struct {
    const char *name;
    uint16_t type;
} type_names[] = {
    {"A", PD_DNS_TYPE_A},         {"AAAA", PD_DNS_TYPE_AAAA}, {"CNAME", PD_DNS_TYPE_CNAME},
    {"HTTPS", PD_DNS_TYPE_HTTPS}, {"SVCB", PD_DNS_TYPE_SVCB}, {"TXT", PD_DNS_TYPE_TXT},
    {"MX", PD_DNS_TYPE_MX},       {"NS", PD_DNS_TYPE_NS},     {"SOA", PD_DNS_TYPE_SOA},
    {"PTR", PD_DNS_TYPE_PTR},     {"SRV", PD_DNS_TYPE_SRV},   {"CAA", PD_DNS_TYPE_CAA},
    {"NULL", PD_DNS_TYPE_NULL},   {"ANY", PD_DNS_TYPE_ANY},
};

static const char *const type_enum[] = {"A",   "AAAA", "CNAME", "HTTPS", "SVCB", "TXT", "MX", "NS",
                                        "SOA", "PTR",  "SRV",   "CAA",   "NULL", "ANY", NULL};

static uint16_t type_of(const char *name)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strcmp(type_names[i].name, name) == 0)
            return type_names[i].type;
    return 0; /* unreachable: the schema's enum */
}

static int check_ipv4(const json_t *v, struct pd_err *err)
{
    struct pd_addr a;
    struct pd_err e;
    if (pd_ip_parse_strict(json_string_value(v), json_string_length(v), &a, &e) &&
        a.family == AF_INET)
        return 0;
    pd_err_set(err, "expected an IPv4 address a.b.c.d");
    return -1;
}

static int check_ipv6(const json_t *v, struct pd_err *err)
{
    struct pd_addr a;
    struct pd_err e;
    if (pd_ip_parse_strict(json_string_value(v), json_string_length(v), &a, &e) &&
        a.family == AF_INET6)
        return 0;
    pd_err_set(err, "expected an IPv6 address such as ::1");
    return -1;
}

static const struct pd_schema_field listen_item = {
    .type = PD_SCHEMA_STRING, .min = 1, .max = 64, .check = pd_gw_check_listen};
static const struct pd_schema_field type_item = {.type = PD_SCHEMA_STRING,
                                                 .enum_values = type_enum};
static const char *const deny_enum[] = {"nxdomain", "refused", NULL};

static int check_upstream(const json_t *v, struct pd_err *err)
{
    struct pd_gw_dns_upstream u;
    return pd_gw_dns_parse_upstream(json_string_value(v), &u, err) ? 0 : -1;
}

static const struct pd_schema_field upstream_item = {
    .type = PD_SCHEMA_STRING, .min = 1, .max = 64, .check = check_upstream};
static const char *const mode_enum[] = {"proxy", "forward", NULL};

static const struct pd_schema_field dns_fields[] = {
    {.key = "mode",
     .type = PD_SCHEMA_STRING,
     .enum_values = mode_enum,
     .default_json = "\"proxy\"",
     .doc = "proxy: answer allowed names locally; forward: resolve them upstream"},
    {.key = "upstreams",
     .type = PD_SCHEMA_ARRAY,
     .items = &upstream_item,
     .min = 1,
     .max = PD_GW_DNS_MAX_UPSTREAMS,
     .check = pd_gw_check_unique,
     .doc = "resolvers for mode forward (default: /etc/resolv.conf's nameservers)"},
    {.key = "cache_size",
     .type = PD_SCHEMA_INTEGER,
     .min = 0,
     .max = 1000000,
     .default_json = XSTR(PD_GW_DNS_DEFAULT_CACHE),
     .doc = "cached answers per worker (0: no cache)"},
    {.key = "min_ttl",
     .type = PD_SCHEMA_INTEGER,
     .min = 0,
     .max = 86400,
     .default_json = "0",
     .doc = "shortest TTL kept and given out"},
    {.key = "max_ttl",
     .type = PD_SCHEMA_INTEGER,
     .min = 0,
     .max = 604800,
     .default_json = XSTR(PD_GW_DNS_DEFAULT_MAX_TTL),
     .doc = "longest TTL kept and given out"},
    {.key = "negative_ttl",
     .type = PD_SCHEMA_INTEGER,
     .min = 0,
     .max = 86400,
     .default_json = XSTR(PD_GW_DNS_DEFAULT_NEGATIVE_TTL),
     .doc = "how long NXDOMAIN / empty answers from upstream are cached"},
    {.key = "timeout_ms",
     .type = PD_SCHEMA_INTEGER,
     .min = 100,
     .max = 30000,
     .default_json = XSTR(PD_GW_DNS_DEFAULT_TIMEOUT_MS),
     .doc = "wait for one upstream before trying the next"},
    {.key = "listen",
     .type = PD_SCHEMA_ARRAY,
     .items = &listen_item,
     .max = PD_GW_DNS_MAX_LISTEN,
     .check = pd_gw_check_unique,
     .doc = "DNS listeners ADDR:PORT (UDP and TCP on each)"},
    {.key = "deny_rcode",
     .type = PD_SCHEMA_STRING,
     .enum_values = deny_enum,
     .default_json = "\"nxdomain\"",
     .doc = "answer to names no rule allows"},
    {.key = "types",
     .type = PD_SCHEMA_ARRAY,
     .items = &type_item,
     .min = 1,
     .max = 16,
     .check = pd_gw_check_unique,
     .default_json = "[\"A\", \"AAAA\", \"CNAME\", \"HTTPS\", \"SVCB\"]",
     .doc = "query types answered; others get REFUSED"},
    {.key = "answer_a",
     .type = PD_SCHEMA_STRING,
     .min = 1,
     .max = 64,
     .check = check_ipv4,
     .default_json = "\"127.0.0.1\"",
     .doc = "A answer for allowed names not in a hosts list"},
    {.key = "answer_aaaa",
     .type = PD_SCHEMA_STRING,
     .min = 1,
     .max = 64,
     .check = check_ipv6,
     .doc = "AAAA answer for allowed names not in a hosts list (default: none)"},
    {.key = "ttl",
     .type = PD_SCHEMA_INTEGER,
     .min = 0,
     .max = 86400,
     .default_json = XSTR(PD_GW_DNS_DEFAULT_TTL),
     .doc = "TTL of local answers (seconds)"},
    {.key = "hosts_file",
     .type = PD_SCHEMA_STRING,
     .min = 1,
     .max = 4096,
     .doc = "/etc/hosts-format answers for allowed names"},
    {.key = "max_name_length",
     .type = PD_SCHEMA_INTEGER,
     .min = 16,
     .max = 253,
     .default_json = XSTR(PD_GW_DNS_DEFAULT_MAX_NAME),
     .doc = "longest name answered"},
    {.key = "max_label_length",
     .type = PD_SCHEMA_INTEGER,
     .min = 8,
     .max = 63,
     .default_json = XSTR(PD_GW_DNS_DEFAULT_MAX_LABEL),
     .doc = "longest label under a wildcard apex"},
    {.key = "max_label_entropy",
     .type = PD_SCHEMA_NUMBER,
     .min = 1,
     .max = 6,
     .default_json = XSTR(PD_GW_DNS_DEFAULT_ENTROPY),
     .doc = "bits per character above which a label under a wildcard apex is refused"},
    {.key = "entropy_min_length",
     .type = PD_SCHEMA_INTEGER,
     .min = 4,
     .max = 63,
     .default_json = XSTR(PD_GW_DNS_DEFAULT_ENTROPY_MIN_LEN),
     .doc = "labels shorter than this are not entropy-checked"},
    {.key = "unique_subdomains_per_minute",
     .type = PD_SCHEMA_INTEGER,
     .min = 0,
     .max = 1000000,
     .default_json = XSTR(PD_GW_DNS_DEFAULT_UNIQUE_PER_MINUTE),
     .doc = "distinct names per wildcard apex per minute (0: unlimited)"},
    {0}};

const struct pd_schema pd_gw_dns_schema = {.fields = dns_fields};

/* ---- upstream resolvers ---- */

bool pd_gw_dns_parse_upstream(const char *s, struct pd_gw_dns_upstream *u, struct pd_err *err)
{
    /* "ADDR", "ADDR:PORT" (IPv4), "[ADDR]:PORT" or a bare IPv6 address. */
    size_t n = strlen(s);
    const char *host = s, *port = NULL;
    size_t hlen = n;
    if (n > 0 && s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || (close[1] != '\0' && close[1] != ':')) {
            pd_err_set(err, "expected ADDR, ADDR:PORT or [IPv6]:PORT");
            return false;
        }
        host = s + 1;
        hlen = (size_t)(close - s - 1);
        port = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && !strchr(colon + 1, ':')) { /* exactly one ':': IPv4:PORT */
            hlen = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    struct pd_err e;
    if (!pd_ip_parse_strict(host, hlen, &u->addr, &e)) {
        pd_err_set(
            err,
            "expected a resolver address (\"10.0.0.2\", \"10.0.0.2:53\", \"[fd00::53]:53\"): %s",
            e.msg);
        return false;
    }
    u->port = 53;
    if (port) {
        char *end = NULL;
        unsigned long v = strtoul(port, &end, 10);
        if (!*port || *end || v < 1 || v > 65535 || port[0] == '+' || port[0] == '-') {
            pd_err_set(err, "port must be a number from 1 to 65535");
            return false;
        }
        u->port = (uint16_t)v;
    }
    return true;
}

/* The nameservers of resolv.conf (strict addresses; zone ids and garbage lines are skipped). */
static size_t resolv_conf(const char *path, struct pd_gw_dns_upstream *out, size_t max)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char line[512];
    size_t n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "nameserver", 10) != 0 || (p[10] != ' ' && p[10] != '\t'))
            continue;
        p += 10;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, " \t\r\n#;");
        struct pd_err e;
        if (pd_ip_parse_strict(p, len, &out[n].addr, &e)) {
            out[n].port = 53;
            n++;
        }
    }
    fclose(f);
    return n;
}

/* ---- compiling ---- */

static int oom(const struct pd_config_doc *doc, struct pd_err *err)
{
    pd_err_set(err, "%s: out of memory compiling the dns section", pd_config_name(doc));
    return -1;
}

int pd_gw_compile_dns(struct pd_gw_policy *p, const struct pd_config_doc *doc, struct pd_err *err)
{
    const json_t *dns = json_object_get(pd_config_root(doc), "dns");
    struct pd_gw_dns *d = &p->dns;
    const json_t *listen = json_object_get(dns, "listen");
    d->nlisten = json_array_size(listen);
    d->listen = pd_gw_alloc(p, (d->nlisten + 1) * sizeof *d->listen);
    if (!d->listen)
        return oom(doc, err);
    for (size_t i = 0; i < d->nlisten; i++)
        if (!(d->listen[i] = pd_gw_strdup(p, json_string_value(json_array_get(listen, i)))))
            return oom(doc, err);
    d->forward = strcmp(pd_config_get_string(dns, "mode", "proxy"), "forward") == 0;
    const json_t *ups = json_object_get(dns, "upstreams");
    for (size_t i = 0; i < json_array_size(ups); i++) {
        struct pd_err ue;
        if (pd_gw_dns_parse_upstream(json_string_value(json_array_get(ups, i)),
                                     &d->upstreams[d->nupstreams], &ue))
            d->nupstreams++;
    }
    if (d->forward && d->nupstreams == 0) {
        d->nupstreams = resolv_conf("/etc/resolv.conf", d->upstreams, PD_GW_DNS_MAX_UPSTREAMS);
        d->upstreams_from_resolv_conf = true;
        if (d->nupstreams == 0) {
            char where[256];
            pd_config_where_member(doc, dns, "mode", where, sizeof where);
            pd_err_set(err,
                       "%s: dns.mode: \"forward\" needs resolvers: set dns.upstreams, or list a "
                       "nameserver in /etc/resolv.conf",
                       where);
            return -1;
        }
    }
    d->cache_size = (uint32_t)pd_config_get_int(dns, "cache_size", PD_GW_DNS_DEFAULT_CACHE);
    d->min_ttl = (uint32_t)pd_config_get_int(dns, "min_ttl", 0);
    d->max_ttl = (uint32_t)pd_config_get_int(dns, "max_ttl", PD_GW_DNS_DEFAULT_MAX_TTL);
    d->negative_ttl =
        (uint32_t)pd_config_get_int(dns, "negative_ttl", PD_GW_DNS_DEFAULT_NEGATIVE_TTL);
    d->timeout_ms = (uint32_t)pd_config_get_int(dns, "timeout_ms", PD_GW_DNS_DEFAULT_TIMEOUT_MS);
    if (d->min_ttl > d->max_ttl) {
        char where[256];
        pd_config_where_member(doc, dns, "min_ttl", where, sizeof where);
        pd_err_set(err, "%s: dns.min_ttl (%u) is above dns.max_ttl (%u)", where,
                   (unsigned)d->min_ttl, (unsigned)d->max_ttl);
        return -1;
    }
    const char *s = pd_config_get_string(dns, "deny_rcode", "nxdomain");
    d->deny_refused = strcmp(s, "refused") == 0;
    const json_t *types = json_object_get(dns, "types");
    static const uint16_t default_types[] = {PD_DNS_TYPE_A, PD_DNS_TYPE_AAAA, PD_DNS_TYPE_CNAME,
                                             PD_DNS_TYPE_HTTPS, PD_DNS_TYPE_SVCB};
    d->ntypes = types ? json_array_size(types) : sizeof default_types / sizeof default_types[0];
    d->types = pd_gw_alloc(p, d->ntypes * sizeof *d->types);
    if (!d->types)
        return oom(doc, err);
    for (size_t i = 0; i < d->ntypes; i++)
        d->types[i] =
            types ? type_of(json_string_value(json_array_get(types, i))) : default_types[i];
    struct pd_err e;
    s = pd_config_get_string(dns, "answer_a", "127.0.0.1");
    d->has_answer_a = pd_ip_parse_strict(s, strlen(s), &d->answer_a, &e);
    if ((s = pd_config_get_string(dns, "answer_aaaa", NULL)))
        d->has_answer_aaaa = pd_ip_parse_strict(s, strlen(s), &d->answer_aaaa, &e);
    d->ttl = (uint32_t)pd_config_get_int(dns, "ttl", PD_GW_DNS_DEFAULT_TTL);
    d->max_name_length =
        (uint32_t)pd_config_get_int(dns, "max_name_length", PD_GW_DNS_DEFAULT_MAX_NAME);
    d->max_label_length =
        (uint32_t)pd_config_get_int(dns, "max_label_length", PD_GW_DNS_DEFAULT_MAX_LABEL);
    d->entropy_min_length =
        (uint32_t)pd_config_get_int(dns, "entropy_min_length", PD_GW_DNS_DEFAULT_ENTROPY_MIN_LEN);
    d->unique_subdomains_per_minute = (uint32_t)pd_config_get_int(
        dns, "unique_subdomains_per_minute", PD_GW_DNS_DEFAULT_UNIQUE_PER_MINUTE);
    const json_t *ent = json_object_get(dns, "max_label_entropy");
    d->max_label_entropy = ent ? json_number_value(ent) : PD_GW_DNS_DEFAULT_ENTROPY;
    if ((s = pd_config_get_string(dns, "hosts_file", NULL))) {
        if (!(d->hosts_file = pd_gw_resolve_path(p, s)))
            return oom(doc, err);
        struct pd_err he;
        if (!(d->hosts = pd_hosts_load(d->hosts_file, &he))) {
            char where[256];
            pd_config_where_member(doc, dns, "hosts_file", where, sizeof where);
            pd_err_set(err, "%s: dns.hosts_file: %s", where, he.msg);
            return -1;
        }
    }
    return 0;
}

json_t *pd_gw_describe_dns(const struct pd_gw_policy *p)
{
    const struct pd_gw_dns *d = &p->dns;
    json_t *o = json_object(), *listen = json_array(), *types = json_array();
    if (!o || !listen || !types) {
        json_decref(o);
        json_decref(listen);
        json_decref(types);
        return NULL;
    }
    for (size_t i = 0; i < d->nlisten; i++)
        json_array_append_new(listen, json_string(d->listen[i]));
    for (size_t i = 0; i < d->ntypes; i++) {
        char tn[PD_DNS_TYPE_NAME_MAX];
        json_array_append_new(types, json_string(pd_dns_type_name(d->types[i], tn, sizeof tn)));
    }
    char a[PD_ADDR_STRLEN] = "", aaaa[PD_ADDR_STRLEN] = "";
    if (d->has_answer_a)
        pd_addr_format(&d->answer_a, a, sizeof a);
    if (d->has_answer_aaaa)
        pd_addr_format(&d->answer_aaaa, aaaa, sizeof aaaa);
    json_t *ups = json_array();
    for (size_t i = 0; ups && i < d->nupstreams; i++) {
        char t[PD_ADDR_STRLEN], u[PD_ADDR_STRLEN + 10];
        pd_addr_format(&d->upstreams[i].addr, t, sizeof t);
        snprintf(u, sizeof u, d->upstreams[i].addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u", t,
                 (unsigned)d->upstreams[i].port);
        json_array_append_new(ups, json_string(u));
    }
    json_object_set_new(o, "listen", listen);
    json_object_set_new(o, "mode", json_string(d->forward ? "forward" : "proxy"));
    json_object_set_new(o, "upstreams", ups ? ups : json_null());
    json_object_set_new(o, "cache_size", json_integer(d->cache_size));
    json_object_set_new(o, "min_ttl", json_integer(d->min_ttl));
    json_object_set_new(o, "max_ttl", json_integer(d->max_ttl));
    json_object_set_new(o, "negative_ttl", json_integer(d->negative_ttl));
    json_object_set_new(o, "timeout_ms", json_integer(d->timeout_ms));
    json_object_set_new(o, "deny_rcode", json_string(d->deny_refused ? "refused" : "nxdomain"));
    json_object_set_new(o, "types", types);
    json_object_set_new(o, "answer_a", d->has_answer_a ? json_string(a) : json_null());
    json_object_set_new(o, "answer_aaaa", d->has_answer_aaaa ? json_string(aaaa) : json_null());
    json_object_set_new(o, "ttl", json_integer(d->ttl));
    json_object_set_new(o, "hosts_file", d->hosts_file ? json_string(d->hosts_file) : json_null());
    json_object_set_new(o, "hosts_file_names",
                        json_integer((json_int_t)(d->hosts ? pd_hosts_count(d->hosts) : 0)));
    json_object_set_new(o, "max_name_length", json_integer(d->max_name_length));
    json_object_set_new(o, "max_label_length", json_integer(d->max_label_length));
    json_object_set_new(o, "max_label_entropy", json_real(d->max_label_entropy));
    json_object_set_new(o, "entropy_min_length", json_integer(d->entropy_min_length));
    json_object_set_new(o, "unique_subdomains_per_minute",
                        json_integer(d->unique_subdomains_per_minute));
    return o;
}

/* ---- decisions ---- */

const struct pd_gw_dns *pd_gw_policy_dns(const struct pd_gw_policy *p)
{
    return &p->dns;
}

bool pd_gw_dns_decide(const struct pd_gw_policy *p, const char *name, size_t len, const char **rule,
                      size_t *apex_len, bool *allow_private)
{
    void *data = NULL;
    const struct pd_domain *dom = pd_domain_set_lookup(p->allow_set, name, len, &data);
    if (dom) {
        const struct pd_gw_allow_rule *r = data;
        *rule = r->text;
        *apex_len = dom->kind == PD_DOMAIN_EXACT ? len : dom->len;
        *allow_private = r->allow_private;
        return true;
    }
    if (pd_domain_set_lookup(p->alias_set, name, len, &data)) {
        const struct pd_gw_credential *c = data;
        *rule = c->domain;
        *apex_len = len;
        *allow_private = false;
        return true;
    }
    return false;
}
