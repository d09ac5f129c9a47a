/*
 * policy.c - compile a gateway config into an immutable policy, and decide requests; see policy.h
 * for the contract and docs/policy.md for the rules.
 *
 * Layout: every string and array of a policy lives in one arena (freed at once, so no error path
 * can leak a field); the domain sets (src/net/domain_set.c) own their own memory; secrets are
 * separate reference-counted objects because a reloaded policy shares them with the one it
 * replaces (see policy.h, pd_gw_policy_load). The decision path only reads: hash lookups in the
 * domain sets, a linear scan of the rule's ports/methods/paths, snprintf for denials.
 */
#include "gateway/policy.h"
#include "net/hosts_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/utf8.h"
#include "net/cidr.h"
#include "net/domain.h"
#include "net/host.h"

#define WHERE_MAX 4200 /* "file:line:col" with a long path */
#define STR_(x) #x
#define XSTR(x) STR_(x)

_Static_assert(PD_GW_SECRET_MIN >= PD_LOG_SECRET_MIN, "secrets must be long enough to scrub");

/* ---- arena ---- */

struct pd_gw_chunk {
    struct pd_gw_chunk *next;
    size_t cap, used;
    alignas(max_align_t) unsigned char data[];
};

#define CHUNK_SIZE 4096

static void *arena_alloc(struct pd_gw_chunk **head, size_t n)
{
    const size_t al = alignof(max_align_t);
    if (n > SIZE_MAX / 2)
        return NULL;
    n = n ? (n + al - 1) & ~(al - 1) : al;
    struct pd_gw_chunk *c = *head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_SIZE / 4 ? n : CHUNK_SIZE;
        struct pd_gw_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->cap = cap;
        nc->used = 0;
        if (c && cap == n) { /* a big block: keep the current chunk's free space in front */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            *head = nc;
        }
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

static char *arena_strndup(struct pd_gw_chunk **head, const char *s, size_t n)
{
    char *d = arena_alloc(head, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *arena_strdup(struct pd_gw_chunk **head, const char *s)
{
    return s ? arena_strndup(head, s, strlen(s)) : NULL;
}

/* ---- shared with policy_schema.c (policy.h, internal section) ---- */

void *pd_gw_alloc(struct pd_gw_policy *p, size_t n)
{
    return arena_alloc(&p->arena, n);
}

char *pd_gw_strdup(struct pd_gw_policy *p, const char *s)
{
    return arena_strdup(&p->arena, s);
}

const char *pd_gw_resolve_path(struct pd_gw_policy *p, const char *s)
{
    if (!s || s[0] == '/' || !p->dir)
        return arena_strdup(&p->arena, s);
    size_t d = strlen(p->dir), n = strlen(s);
    char *out = arena_alloc(&p->arena, d + n + 1);
    if (out) {
        memcpy(out, p->dir, d);
        memcpy(out + d, s, n + 1);
    }
    return out;
}

/* ---- the policy ---- */

static void secret_unref(struct pd_gw_secret *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    pd_log_secret_remove(s->value, s->len);
    explicit_bzero(s->value, s->len);
    free(s->value);
    free(s);
}

static void policy_free(struct pd_gw_policy *p)
{
    for (size_t i = 0; i < p->nsecrets; i++)
        secret_unref(p->secrets[i]);
    pd_domain_set_free(p->allow_set);
    pd_domain_set_free(p->cred_set);
    pd_domain_set_free(p->alias_set);
    pd_domain_set_free(p->rate_set);
    pd_domain_set_free(p->budget_set);
    pd_domain_set_free(p->host_set);
    pd_hosts_free(p->dns.hosts);
    for (struct pd_gw_chunk *c = p->arena, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(p);
}

/* The module's only mutable state: serial numbers handed to compiled policies. */
static _Atomic uint64_t next_serial;

uint64_t pd_gw_policy_serial(const struct pd_gw_policy *p)
{
    return p->serial;
}

struct pd_gw_policy *pd_gw_policy_ref(struct pd_gw_policy *p)
{
    if (p)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void pd_gw_policy_unref(struct pd_gw_policy *p)
{
    if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        policy_free(p);
}

/* ---- compile context and errors ---- */

struct cctx {
    const struct pd_config_doc *doc;
    struct pd_gw_policy *p;
    const struct pd_gw_policy *prev;
    struct pd_err *err;
};

/* "where: path: message" where `where` is the position of obj[key] (key NULL: of obj itself). */
__attribute__((format(printf, 5, 6))) static int
cfail(struct cctx *c, const json_t *obj, const char *key, const char *path, const char *fmt, ...)
{
    char where[WHERE_MAX];
    va_list ap;
    if (key)
        pd_config_where_member(c->doc, obj, key, where, sizeof where);
    else
        pd_config_where(c->doc, obj, where, sizeof where);
    va_start(ap, fmt);
    pd_err_vset(c->err, fmt, ap);
    va_end(ap);
    pd_err_prefix(c->err, "%s: %s", where, path);
    return -1;
}

static int oom(struct cctx *c)
{
    pd_err_set(c->err, "%s: out of memory compiling the gateway policy", pd_config_name(c->doc));
    return -1;
}

static const char *where_index(struct cctx *c, const json_t *arr, size_t i)
{
    char where[WHERE_MAX];
    pd_config_where_index(c->doc, arr, i, where, sizeof where);
    return arena_strdup(&c->p->arena, where);
}

static uint32_t get_u32(const json_t *obj, const char *key, uint32_t def)
{
    return (uint32_t)pd_config_get_int(obj, key, def);
}

/* ---- allow rules ---- */

static int compile_rule(struct cctx *c, const json_t *allow, size_t i)
{
    struct pd_gw_policy *p = c->p;
    struct pd_gw_chunk **a = &p->arena;
    struct pd_gw_allow_rule *r = &p->rules[i];
    const json_t *e = json_array_get(allow, i);
    const json_t *host = json_object_get(e, "host");
    char path[64];
    char text[PD_HOST_MAX + PD_CIDR_STRLEN + 1];
    struct pd_err er;
    if (!(r->where = where_index(c, allow, i)))
        return oom(c);
    if (host) {
        struct pd_domain d;
        snprintf(path, sizeof path, "allow[%zu].host", i);
        if (!pd_domain_compile(json_string_value(host), json_string_length(host), &d, &er))
            return cfail(c, e, "host", path, "%s", er.msg);
        pd_domain_format(&d, text, sizeof text);
    } else {
        const json_t *cidr = json_object_get(e, "cidr");
        snprintf(path, sizeof path, "allow[%zu].cidr", i);
        if (!pd_cidr_parse(json_string_value(cidr), json_string_length(cidr), &r->cidr, &er))
            return cfail(c, e, "cidr", path, "%s", er.msg);
        pd_cidr_format(&r->cidr, text, sizeof text);
        r->is_cidr = true;
    }
    for (size_t j = 0; j < i; j++)
        if (p->rules[j].is_cidr == r->is_cidr && strcmp(p->rules[j].text, text) == 0)
            return cfail(c, e, host ? "host" : "cidr", path,
                         "'%s' duplicates allow[%zu] at %s; only the most specific rule is "
                         "consulted, so merge the two entries into one",
                         text, j, p->rules[j].where);
    if (!(r->text = arena_strdup(a, text)))
        return oom(c);
    if (host && !pd_domain_set_add(p->allow_set, text, strlen(text), r, &er))
        return oom(c);
    if (!host)
        p->cidrs[p->ncidrs++] = r;

    const json_t *ports = json_object_get(e, "ports");
    r->nports = ports ? json_array_size(ports) : 2;
    if (!(r->ports = arena_alloc(a, r->nports * sizeof *r->ports)))
        return oom(c);
    if (!ports) {
        r->ports[0] = 80;
        r->ports[1] = 443;
    }
    for (size_t j = 0; ports && j < r->nports; j++)
        r->ports[j] = (uint16_t)json_integer_value(json_array_get(ports, j));
    const json_t *methods = json_object_get(e, "methods");
    r->nmethods = json_array_size(methods);
    const json_t *paths = json_object_get(e, "paths");
    r->npaths = json_array_size(paths);
    r->methods = arena_alloc(a, (r->nmethods + 1) * sizeof *r->methods);
    r->paths = arena_alloc(a, (r->npaths + 1) * sizeof *r->paths);
    r->pathlens = arena_alloc(a, (r->npaths + 1) * sizeof *r->pathlens);
    if (!r->methods || !r->paths || !r->pathlens)
        return oom(c);
    for (size_t j = 0; j < r->nmethods; j++)
        if (!(r->methods[j] = arena_strdup(a, json_string_value(json_array_get(methods, j)))))
            return oom(c);
    for (size_t j = 0; j < r->npaths; j++) {
        const json_t *pj = json_array_get(paths, j);
        r->pathlens[j] = json_string_length(pj);
        if (!(r->paths[j] = arena_strndup(a, json_string_value(pj), r->pathlens[j])))
            return oom(c);
    }
    r->allow_private = pd_config_get_bool(e, "allow_private", false);
    return 0;
}

static int compile_allow(struct cctx *c, const json_t *root)
{
    struct pd_gw_policy *p = c->p;
    const json_t *allow = json_object_get(root, "allow");
    size_t n = json_array_size(allow);
    struct pd_err e;
    p->rules = arena_alloc(&p->arena, (n + 1) * sizeof *p->rules);
    p->cidrs = arena_alloc(&p->arena, (n + 1) * sizeof *p->cidrs);
    if (!p->rules || !p->cidrs || !(p->allow_set = pd_domain_set_new(&e)))
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        if (compile_rule(c, allow, i) != 0)
            return -1;
        p->nrules++;
    }
    return 0;
}

/* ---- credentials and their secrets ---- */

static const char *source_text(const struct pd_gw_credential *cr, char *buf, size_t cap)
{
    if (cr->kind == PD_GW_SRC_ENV)
        snprintf(buf, cap, "environment variable %s", cr->source);
    else if (cr->kind == PD_GW_SRC_FILE)
        snprintf(buf, cap, "file %s", cr->source);
    else
        snprintf(buf, cap, "inline value");
    return buf;
}

/* Read the value file: at most PD_GW_SECRET_MAX + 3 bytes (value, "\r\n", one byte more to tell
 * "too big"); returns 0 with *out (heap, capacity *cap) and *len. */
static int read_secret_file(struct cctx *c, const json_t *e, const char *path,
                            const struct pd_gw_credential *cr, char **out, size_t *len)
{
    int fd = open(cr->source, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return cfail(c, e, "value_file", path, "cannot open %s for credential '%s': %s", cr->source,
                     cr->name, strerror(errno));
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        cfail(c, e, "value_file", path, "cannot stat %s for credential '%s': %s", cr->source,
              cr->name, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        cfail(c, e, "value_file", path, "%s (credential '%s') is not a regular file", cr->source,
              cr->name);
    } else if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
        cfail(c, e, "value_file", path,
              "%s (credential '%s') is readable or writable by group or others (mode %04o); "
              "run: chmod 600 %s",
              cr->source, cr->name, (unsigned)(st.st_mode & 07777), cr->source);
    } else {
        const size_t cap = PD_GW_SECRET_MAX + 3;
        char *buf = malloc(cap);
        size_t n = 0;
        int rerr = 0;
        while (buf && n < cap) {
            ssize_t k = read(fd, buf + n, cap - n);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                rerr = errno;
            if (k <= 0)
                break;
            n += (size_t)k;
        }
        if (!buf) {
            oom(c);
        } else if (rerr) {
            cfail(c, e, "value_file", path, "cannot read %s for credential '%s': %s", cr->source,
                  cr->name, strerror(rerr));
            explicit_bzero(buf, cap);
            free(buf);
        } else {
            *out = buf;
            *len = n;
            rc = 0;
        }
    }
    close(fd);
    return rc;
}

/* Obtain the value into a fresh heap buffer of exactly *len bytes (*out), validated. */
static int read_secret(struct cctx *c, const json_t *e, const char *base,
                       const struct pd_gw_credential *cr, char **out, size_t *len)
{
    char path[96], src[WHERE_MAX];
    const char *key = cr->kind == PD_GW_SRC_ENV    ? "value_env"
                      : cr->kind == PD_GW_SRC_FILE ? "value_file"
                                                   : "value";
    const char *v;
    char *fbuf = NULL;
    snprintf(path, sizeof path, "%s.%s", base, key);
    *out = NULL;
    if (cr->kind == PD_GW_SRC_FILE) {
        if (read_secret_file(c, e, path, cr, &fbuf, len) != 0)
            return -1;
        if (*len > 0 && fbuf[*len - 1] == '\n') /* one trailing newline: "\n" or "\r\n" */
            *len -= (*len > 1 && fbuf[*len - 2] == '\r') ? 2 : 1;
        v = fbuf;
    } else {
        v = cr->kind == PD_GW_SRC_ENV ? getenv(cr->source)
                                      : json_string_value(json_object_get(e, "value"));
        if (!v || !*v)
            return cfail(c, e, key, path, "environment variable %s is %s (credential '%s')",
                         cr->source, v ? "empty" : "not set", cr->name);
        *len = strlen(v);
    }
    source_text(cr, src, sizeof src);
    const char *bad = NULL;
    bool show_offset = false;
    size_t at = 0;
    if (*len > PD_GW_SECRET_MAX)
        bad = "is longer than " XSTR(PD_GW_SECRET_MAX) " bytes";
    else if (*len == 0)
        bad = "is empty";
    else if (*len < PD_GW_SECRET_MIN)
        bad = "is shorter than " XSTR(PD_GW_SECRET_MIN) " bytes (too short to be a secret or to "
                                                        "be scrubbed from logs)";
    for (; !bad && at < *len; at++) {
        unsigned char ch = (unsigned char)v[at];
        bool edge = at == 0 || at + 1 == *len;
        if (ch < 0x20 || ch >= 0x7f || (edge && ch == ' ')) {
            bad = "contains a control character, a non-ASCII byte or a leading/trailing space "
                  "(values must be printable ASCII)";
            show_offset = true;
            break;
        }
    }
    if (!bad && !(*out = malloc(*len)))
        oom(c);
    else if (!bad)
        memcpy(*out, v, *len);
    if (fbuf) {
        explicit_bzero(fbuf, PD_GW_SECRET_MAX + 3);
        free(fbuf);
    }
    if (*out)
        return 0;
    if (!bad)
        return -1;
    if (show_offset)
        return cfail(c, e, key, path,
                     "the value of credential '%s' from %s %s; first bad byte at offset %zu",
                     cr->name, src, bad, at);
    return cfail(c, e, key, path, "the value of credential '%s' from %s %s", cr->name, src, bad);
}

/* Attach the value to cr: share an equal secret of this policy or of prev, else register it. */
static int attach_secret(struct cctx *c, struct pd_gw_credential *cr, const char *path, char *v,
                         size_t len)
{
    struct pd_gw_policy *p = c->p;
    const struct pd_gw_policy *lists[2] = {p, c->prev};
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; lists[l] && i < lists[l]->nsecrets; i++) {
            struct pd_gw_secret *s = lists[l]->secrets[i];
            if (s->len != len || memcmp(s->value, v, len) != 0)
                continue;
            explicit_bzero(v, len);
            free(v);
            cr->secret = s;
            if (l == 1) {
                atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
                p->secrets[p->nsecrets++] = s;
            }
            return 0;
        }
    }
    struct pd_gw_secret *s = malloc(sizeof *s);
    struct pd_err e;
    if (!s || pd_log_secret_add(v, len, &e) != 0) {
        explicit_bzero(v, len);
        free(v);
        if (!s)
            return oom(c);
        free(s);
        pd_err_set(c->err,
                   "%s: %s: credential '%s': cannot register its value for log redaction: %s",
                   cr->where, path, cr->name, e.msg);
        return -1;
    }
    atomic_init(&s->refs, 1);
    s->len = len;
    s->value = v;
    cr->secret = s;
    p->secrets[p->nsecrets++] = s;
    return 0;
}

static int compile_credential(struct cctx *c, const json_t *arr, size_t i)
{
    struct pd_gw_policy *p = c->p;
    struct pd_gw_chunk **a = &p->arena;
    struct pd_gw_credential *cr = &p->creds[i];
    const json_t *e = json_array_get(arr, i);
    char base[48], path[64];
    struct pd_err er;
    snprintf(base, sizeof base, "credentials[%zu]", i);
    cr->name = arena_strdup(a, pd_config_get_string(e, "name", ""));
    cr->where = where_index(c, arr, i);
    if (!cr->name || !cr->where)
        return oom(c);
    snprintf(path, sizeof path, "%s.name", base);
    for (size_t j = 0; j < i; j++)
        if (strcmp(p->creds[j].name, cr->name) == 0)
            return cfail(c, e, "name", path,
                         "credential name '%s' is already used by "
                         "credentials[%zu] at %s",
                         cr->name, j, p->creds[j].where);

    const json_t *dom = json_object_get(e, "domain");
    struct pd_domain d;
    char text[PD_HOST_MAX + 1];
    snprintf(path, sizeof path, "%s.domain", base);
    if (!pd_domain_compile(json_string_value(dom), json_string_length(dom), &d, &er))
        return cfail(c, e, "domain", path, "%s", er.msg);
    pd_domain_format(&d, text, sizeof text);
    for (size_t j = 0; j < i; j++)
        if (strcmp(p->creds[j].domain, text) == 0)
            return cfail(c, e, "domain", path,
                         "credential '%s' applies to '%s' like credential '%s' (%s); at most "
                         "one credential per domain pattern",
                         cr->name, text, p->creds[j].name, p->creds[j].where);
    if (!(cr->domain = arena_strdup(a, text)) ||
        !pd_domain_set_add(p->cred_set, text, strlen(text), cr, &er))
        return oom(c);

    cr->header = arena_strdup(a, pd_config_get_string(e, "header", ""));
    cr->format = arena_strdup(a, pd_config_get_string(e, "format", "{value}"));
    if (!cr->header || !cr->format)
        return oom(c);
    const char *at = strstr(cr->format, "{value}");
    cr->pre_len = (size_t)(at - cr->format);
    cr->post = at + 7;
    cr->post_len = strlen(cr->post);
    cr->upgrade_http = pd_config_get_bool(e, "upgrade_http", false);

    const char *alias = pd_config_get_string(e, "alias", NULL);
    if (alias) {
        snprintf(path, sizeof path, "%s.alias", base);
        if (d.kind != PD_DOMAIN_EXACT)
            return cfail(c, e, "alias", path,
                         "an alias needs an exact domain (it names one host), but domain is the "
                         "wildcard '%s'",
                         text);
        for (size_t j = 0; j < i; j++)
            if (p->creds[j].alias && strcmp(p->creds[j].alias, alias) == 0)
                return cfail(c, e, "alias", path,
                             "alias '%s' is already used by credential '%s' (%s)", alias,
                             p->creds[j].name, p->creds[j].where);
        size_t an = strlen(alias) + sizeof PD_GW_ALIAS_SUFFIX + 1;
        char *ah = arena_alloc(a, an);
        if (ah)
            snprintf(ah, an, "%s.%s", alias, PD_GW_ALIAS_SUFFIX);
        if (!ah || !(cr->alias = arena_strdup(a, alias)) ||
            !pd_domain_set_add(p->alias_set, ah, strlen(ah), cr, &er))
            return oom(c);
    }

    const char *src = pd_config_get_string(e, "value_env", NULL);
    cr->kind = PD_GW_SRC_ENV;
    if (!src && (src = pd_config_get_string(e, "value_file", NULL)) != NULL)
        cr->kind = PD_GW_SRC_FILE;
    else if (!src)
        cr->kind = PD_GW_SRC_INLINE;
    if (src && !(cr->source = cr->kind == PD_GW_SRC_FILE ? pd_gw_resolve_path(p, src)
                                                         : arena_strdup(a, src)))
        return oom(c);
    char *v = NULL;
    size_t len = 0;
    if (read_secret(c, e, base, cr, &v, &len) != 0)
        return -1;
    return attach_secret(c, cr, base, v, len);
}

static int compile_credentials(struct cctx *c, const json_t *root)
{
    struct pd_gw_policy *p = c->p;
    const json_t *arr = json_object_get(root, "credentials");
    size_t n = json_array_size(arr);
    struct pd_err e;
    p->creds = arena_alloc(&p->arena, (n + 1) * sizeof *p->creds);
    p->secrets = arena_alloc(&p->arena, (n + 1) * sizeof *p->secrets);
    if (!p->creds || !p->secrets || !(p->cred_set = pd_domain_set_new(&e)) ||
        !(p->alias_set = pd_domain_set_new(&e)))
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        if (compile_credential(c, arr, i) != 0)
            return -1;
        p->ncreds++;
    }
    return 0;
}

/* ---- rate limits and budgets: "default" or a pattern, unique ---- */

/* Canonical key of entry i of arr (section "rate_limits"/"budgets"); checks duplicates against
 * keys[0..i). */
static const char *rule_key(struct cctx *c, const char *section, const json_t *arr, size_t i,
                            const char *const *keys, const char *const *wheres,
                            struct pd_domain_set *set, void *data)
{
    const json_t *e = json_array_get(arr, i);
    const char *dom = pd_config_get_string(e, "domain", "");
    char text[PD_HOST_MAX + 1], path[64];
    struct pd_err er;
    struct pd_domain d;
    snprintf(path, sizeof path, "%s[%zu].domain", section, i);
    bool is_default = strcmp(dom, "default") == 0;
    if (is_default)
        snprintf(text, sizeof text, "default");
    else if (pd_domain_compile(dom, strlen(dom), &d, &er))
        pd_domain_format(&d, text, sizeof text);
    else {
        cfail(c, e, "domain", path, "%s", er.msg);
        return NULL;
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(keys[j], text) == 0) {
            cfail(c, e, "domain", path, "'%s' duplicates %s[%zu] at %s", text, section, j,
                  wheres[j]);
            return NULL;
        }
    }
    const char *key = arena_strdup(&c->p->arena, text);
    if (!key || (!is_default && !pd_domain_set_add(set, text, strlen(text), data, &er))) {
        oom(c);
        return NULL;
    }
    return key;
}

static int compile_limits(struct cctx *c, const json_t *root)
{
    struct pd_gw_policy *p = c->p;
    struct pd_err e;
    const json_t *rl = json_object_get(root, "rate_limits");
    const json_t *bu = json_object_get(root, "budgets");
    size_t nr = json_array_size(rl), nb = json_array_size(bu);
    p->rates = arena_alloc(&p->arena, (nr + 1) * sizeof *p->rates);
    p->budgets = arena_alloc(&p->arena, (nb + 1) * sizeof *p->budgets);
    const char **keys = arena_alloc(&p->arena, (nr + nb + 1) * sizeof *keys);
    const char **wheres = arena_alloc(&p->arena, (nr + nb + 1) * sizeof *wheres);
    if (!p->rates || !p->budgets || !keys || !wheres || !(p->rate_set = pd_domain_set_new(&e)) ||
        !(p->budget_set = pd_domain_set_new(&e)))
        return oom(c);
    for (size_t i = 0; i < nr; i++) {
        struct pd_gw_rate_rule *r = &p->rates[i];
        const json_t *o = json_array_get(rl, i);
        if (!(r->where = wheres[i] = where_index(c, rl, i)))
            return oom(c);
        if (!(r->key = keys[i] = rule_key(c, "rate_limits", rl, i, keys, wheres, p->rate_set, r)))
            return -1;
        r->requests_per_minute = get_u32(o, "requests_per_minute", 1);
        r->burst_size = get_u32(o, "burst_size", PD_GW_DEFAULT_BURST);
        if (strcmp(r->key, "default") == 0)
            p->rate_default = r;
        p->nrates++;
    }
    for (size_t i = 0; i < nb; i++) {
        struct pd_gw_budget_rule *b = &p->budgets[i];
        const json_t *o = json_array_get(bu, i);
        if (!(b->where = wheres[nr + i] = where_index(c, bu, i)))
            return oom(c);
        if (!(b->key = keys[nr + i] =
                  rule_key(c, "budgets", bu, i, keys + nr, wheres + nr, p->budget_set, b)))
            return -1;
        b->bytes_sent_per_hour = (uint64_t)pd_config_get_int(o, "bytes_sent_per_hour", 1);
        b->bytes_received_per_hour = (uint64_t)pd_config_get_int(o, "bytes_received_per_hour", 0);
        if (strcmp(b->key, "default") == 0)
            p->budget_default = b;
        p->nbudgets++;
    }
    return 0;
}

/* ---- entry points ---- */

struct pd_gw_policy *pd_gw_policy_compile(const struct pd_config_doc *doc,
                                          const struct pd_gw_policy *prev, struct pd_err *err)
{
    struct pd_err local;
    if (!err)
        err = &local;
    if (!doc) {
        pd_err_set(err, "gateway policy: no config document");
        return NULL;
    }
    if (pd_schema_validate(doc, &pd_gw_policy_schema, err) != 0)
        return NULL;
    struct pd_gw_policy *p = calloc(1, sizeof *p);
    struct cctx c = {.doc = doc, .p = p, .prev = prev, .err = err};
    if (!p) {
        oom(&c);
        return NULL;
    }
    atomic_init(&p->refs, 1);
    p->serial = atomic_fetch_add_explicit(&next_serial, 1, memory_order_relaxed) + 1;
    const char *name = pd_config_name(doc);
    const char *slash = strrchr(name, '/');
    const json_t *root = pd_config_root(doc);
    if (!(p->source = arena_strdup(&p->arena, name)) ||
        (slash && !(p->dir = arena_strndup(&p->arena, name, (size_t)(slash - name) + 1)))) {
        oom(&c);
    } else if (pd_gw_compile_settings(p, doc, err) == 0 && compile_allow(&c, root) == 0 &&
               compile_credentials(&c, root) == 0 && compile_limits(&c, root) == 0 &&
               pd_gw_compile_dns(p, doc, err) == 0) {
        return p;
    }
    policy_free(p);
    return NULL;
}

struct pd_gw_policy *pd_gw_policy_load(const char *path, const struct pd_gw_policy *prev,
                                       struct pd_err *err)
{
    struct pd_config_doc *doc = pd_config_load_file(path, PD_CONFIG_AUTO, err);
    if (!doc)
        return NULL;
    struct pd_gw_policy *p = pd_gw_policy_compile(doc, prev, err);
    pd_config_doc_free(doc);
    return p;
}

size_t pd_gw_credential_render_len(const struct pd_gw_credential *c)
{
    return c->pre_len + c->secret->len + c->post_len;
}

long pd_gw_credential_render(const struct pd_gw_credential *c, char *buf, size_t cap)
{
    if (!c || !buf)
        return -1;
    size_t n = pd_gw_credential_render_len(c);
    if (cap < n + 1)
        return -1;
    memcpy(buf, c->format, c->pre_len);
    memcpy(buf + c->pre_len, c->secret->value, c->secret->len);
    memcpy(buf + c->pre_len + c->secret->len, c->post, c->post_len);
    buf[n] = '\0';
    return (long)n;
}

const char *pd_gw_policy_secret_owner(const struct pd_gw_policy *p, const char *s, size_t len)
{
    for (size_t i = 0; p && s && i < p->ncreds; i++) {
        const struct pd_gw_secret *sec = p->creds[i].secret;
        if (sec && sec->len > 0 && memmem(s, len, sec->value, sec->len))
            return p->creds[i].name;
    }
    return NULL;
}

/* ---- decisions ---- */

__attribute__((format(printf, 4, 5))) static void deny(struct pd_gw_decision *d, int status,
                                                       const char *code, const char *fmt, ...)
{
    va_list ap;
    d->allowed = false;
    d->status = status;
    d->error = code;
    d->credential = NULL;
    d->rate = NULL;
    d->budget = NULL;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof d->reason, fmt, ap);
    va_end(ap);
}

static const char *list_ports(const struct pd_gw_allow_rule *r, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < r->nports && n < cap; i++) {
        int k = snprintf(buf + n, cap - n, "%s%u", i ? ", " : "", (unsigned)r->ports[i]);
        if (k < 0)
            break;
        n += (size_t)k;
    }
    return buf;
}

static const char *list_strs(const char *const *v, size_t nv, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < nv && n < cap; i++) {
        int k = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", v[i]);
        if (k < 0)
            break;
        n += (size_t)k;
    }
    return buf;
}

/* The rule r matched `dest` ("host:port" text); check port, and for plain HTTP method and path. */
static bool check_rule(const struct pd_gw_allow_rule *r, const char *dest, const char *host,
                       uint16_t port, const struct pd_gw_request *rq, const char *pre,
                       struct pd_gw_decision *d)
{
    char list[256], esc[PD_NET_ESC_MAX];
    bool ok = false;
    d->rule = r->text;
    d->rule_where = r->where;
    d->allow_private = r->allow_private;
    for (size_t i = 0; i < r->nports && !ok; i++)
        ok = r->ports[i] == port;
    if (!ok) {
        deny(d, 403, "port_not_allowed", "%s%s is not allowed: rule '%s' (%s) allows ports %s", pre,
             dest, r->text, r->where, list_ports(r, list, sizeof list));
        return false;
    }
    if (rq->is_connect)
        return true;
    ok = r->nmethods == 0;
    for (size_t i = 0; i < r->nmethods && !ok; i++)
        ok = strcmp(r->methods[i], rq->method) == 0;
    if (!ok) {
        deny(d, 403, "method_not_allowed",
             "%smethod %s to %s is not allowed: rule '%s' (%s) allows methods %s", pre,
             pd_net_escape(rq->method, strlen(rq->method), 32, esc, sizeof esc), host, r->text,
             r->where, list_strs(r->methods, r->nmethods, list, sizeof list));
        return false;
    }
    if (r->npaths == 0)
        return true;
    size_t plen = strlen(rq->path);
    pd_net_escape(rq->path, plen, PD_NET_ESC_IN, esc, sizeof esc);
    if (pd_gw_path_ambiguous(rq->path, plen)) {
        deny(d, 403, "path_not_allowed",
             "%spath %s on %s is not allowed: it has '.' or '..' segments or encoded separators, "
             "so rule '%s' (%s) cannot match it",
             pre, esc, host, r->text, r->where);
        return false;
    }
    for (size_t i = 0; i < r->npaths; i++)
        if (plen >= r->pathlens[i] && memcmp(rq->path, r->paths[i], r->pathlens[i]) == 0)
            return true;
    deny(d, 403, "path_not_allowed",
         "%spath %s on %s is not allowed: rule '%s' (%s) allows paths %s", pre, esc, host, r->text,
         r->where, list_strs(r->paths, r->npaths, list, sizeof list));
    return false;
}

static bool check_name(const struct pd_gw_policy *p, const char *host, uint16_t port,
                       const struct pd_gw_request *rq, const char *pre, struct pd_gw_decision *d)
{
    char dest[PD_HOST_MAX + 8];
    void *data = NULL;
    snprintf(dest, sizeof dest, "%s:%u", host, (unsigned)port);
    if (!pd_domain_set_lookup(p->allow_set, host, strlen(host), &data)) {
        deny(d, 403, "destination_not_allowed", "%s%s is not allowed: %s", pre, dest,
             p->nrules ? "no allow rule matches the name"
                       : "the allowlist is empty (everything is denied)");
        return false;
    }
    return check_rule(data, dest, host, port, rq, pre, d);
}

static void allow_name(const struct pd_gw_policy *p, const char *host, struct pd_gw_decision *d)
{
    void *data = NULL;
    size_t n = strlen(host);
    d->allowed = true;
    d->rate = pd_domain_set_lookup(p->rate_set, host, n, &data) ? data : p->rate_default;
    d->budget = pd_domain_set_lookup(p->budget_set, host, n, &data) ? data : p->budget_default;
}

static void decide_addr(const struct pd_gw_policy *p, const struct pd_gw_request *rq,
                        struct pd_gw_decision *d)
{
    struct pd_addr a;
    char text[PD_ADDR_STRLEN], dest[PD_ADDR_STRLEN + 8], classes[128];
    const struct pd_gw_allow_rule *best = NULL;
    pd_addr_unmap(rq->addr, &a);
    pd_addr_format(&a, text, sizeof text);
    snprintf(dest, sizeof dest, a.family == AF_INET6 ? "[%s]:%u" : "%s:%u", text,
             (unsigned)rq->port);
    d->upstream_port = rq->port;
    for (size_t i = 0; i < p->ncidrs; i++)
        if (pd_cidr_contains(&p->cidrs[i]->cidr, &a) &&
            (!best || p->cidrs[i]->cidr.prefix > best->cidr.prefix))
            best = p->cidrs[i];
    if (!best) {
        deny(d, 403, "ip_literal_not_allowed",
             "%s is an IP address and no cidr rule allows it (name rules never match addresses)",
             text);
        return;
    }
    if (!check_rule(best, dest, text, rq->port, rq, "", d))
        return;
    if (!best->allow_private && !pd_addr_is_public(&a)) {
        pd_addr_classes_format(pd_addr_classify(&a), classes, sizeof classes);
        deny(d, 403, "private_address_not_allowed",
             "%s is not a public address (%s): rule '%s' (%s) does not set allow_private", text,
             classes, best->text, best->where);
        return;
    }
    d->allowed = true;
    d->rate = p->rate_default;
    d->budget = p->budget_default;
}

static bool in_alias_space(const char *host, size_t n)
{
    const size_t s = sizeof PD_GW_ALIAS_SUFFIX - 1;
    return (n == s || (n > s + 1 && host[n - s - 1] == '.')) &&
           strncasecmp(host + n - s, PD_GW_ALIAS_SUFFIX, s) == 0;
}

static void decide_alias(const struct pd_gw_policy *p, const struct pd_gw_request *rq, size_t n,
                         struct pd_gw_decision *d)
{
    void *data = NULL;
    char pre[PD_HOST_MAX + 64];
    d->via_alias = true;
    if (!pd_domain_set_lookup(p->alias_set, rq->host, n, &data)) {
        size_t label = n - (sizeof PD_GW_ALIAS_SUFFIX - 1);
        if (label == 0)
            deny(d, 403, "unknown_alias", "%s is reserved for credential aliases (<alias>.%s)",
                 rq->host, PD_GW_ALIAS_SUFFIX);
        else
            deny(d, 403, "unknown_alias", "%s: unknown alias '%.*s' (no credential has it)",
                 rq->host, (int)(label - 1), rq->host);
        return;
    }
    const struct pd_gw_credential *cr = data;
    d->upstream_host = cr->domain;
    d->upstream_port = 443;
    d->upstream_tls = true;
    if (rq->is_connect) {
        deny(d, 403, "alias_requires_http",
             "%s is a credential alias: send plain http://%s/ requests (the gateway itself "
             "connects to %s over TLS); CONNECT is not supported",
             rq->host, rq->host, cr->domain);
        return;
    }
    if (rq->port != 80) {
        deny(d, 403, "port_not_allowed",
             "%s:%u: alias requests use port 80 (http://%s/); the gateway connects to %s:443",
             rq->host, (unsigned)rq->port, rq->host, cr->domain);
        return;
    }
    snprintf(pre, sizeof pre, "alias %s -> ", rq->host);
    if (!check_name(p, cr->domain, 443, rq, pre, d))
        return;
    allow_name(p, cr->domain, d);
    d->credential = cr;
}

void pd_gw_decide(const struct pd_gw_policy *p, const struct pd_gw_request *rq,
                  struct pd_gw_decision *d)
{
    memset(d, 0, sizeof *d);
    size_t n = rq && rq->host ? strnlen(rq->host, PD_HOST_MAX + 1) : 0;
    if (!p || !rq || !rq->host == !rq->addr || rq->port == 0 ||
        (rq->host && (n == 0 || n > PD_HOST_MAX)) ||
        (rq->addr && rq->addr->family != AF_INET && rq->addr->family != AF_INET6) ||
        (!rq->is_connect && (!rq->method || !rq->path))) {
        deny(d, 400, "invalid_target", "the request has no valid destination");
        return;
    }
    if (rq->addr) {
        decide_addr(p, rq, d);
        return;
    }
    if (in_alias_space(rq->host, n)) {
        decide_alias(p, rq, n, d);
        return;
    }
    /* Plain http:// to port 80 of a domain whose credential says upgrade_http: TLS on 443 with the
     * credential. Nothing else carries a credential (plain HTTP would put it on the wire). */
    const struct pd_gw_credential *cr = NULL;
    void *data = NULL;
    d->upstream_host = rq->host;
    d->upstream_port = rq->port;
    if (!rq->is_connect && rq->port == 80 &&
        pd_domain_set_lookup(p->cred_set, rq->host, n, &data) &&
        ((const struct pd_gw_credential *)data)->upgrade_http) {
        cr = data;
        d->upstream_port = 443;
        d->upstream_tls = true;
    }
    if (!check_name(p, rq->host, d->upstream_port, rq,
                    cr ? "plain http is upgraded to TLS on port 443: " : "", d))
        return;
    allow_name(p, rq->host, d);
    d->credential = cr;
}

bool pd_gw_decide_address(struct pd_gw_decision *d, const struct pd_addr *resolved)
{
    char text[PD_ADDR_STRLEN], classes[128];
    if (!d->allowed)
        return false;
    if (d->allow_private || pd_addr_is_public(resolved))
        return true;
    pd_addr_format(resolved, text, sizeof text);
    pd_addr_classes_format(pd_addr_classify(resolved), classes, sizeof classes);
    deny(d, 403, "private_address_not_allowed",
         "%s resolved to %s, which is not a public address (%s): rule '%s' (%s) does not set "
         "allow_private",
         d->upstream_host ? d->upstream_host : "the destination", text, classes,
         d->rule ? d->rule : "-", d->rule_where ? d->rule_where : "-");
    return false;
}

bool pd_gw_policy_recheck(const struct pd_gw_policy *p, const struct pd_gw_request *rq,
                          const struct pd_addr *peer, struct pd_gw_decision *out)
{
    struct pd_gw_decision local = {.allowed = false};
    struct pd_gw_decision *d = out ? out : &local;
    pd_gw_decide(p, rq, d);
    if (d->allowed && peer && rq->host)
        pd_gw_decide_address(d, peer);
    return d->allowed;
}
