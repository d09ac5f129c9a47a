/* learn.c - see learn.h. */
#include "cli/learn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/config.h"
#include "net/domain.h"
#include "net/ip.h"

#define MAX_CANDS 256
#define MAX_NOTES 256
#define MAX_PORTS 16
#define MAX_METHODS 8
#define MAX_PATHS 8
#define MAX_TYPES 8
#define MAX_POLICY_BYTES (4u << 20)
#define ALIAS_SUFFIX ".devbox.local"

struct cand {
    char host[256]; /* a canonical name, or an address for a cidr rule */
    bool is_addr, is_public;
    uint16_t ports[MAX_PORTS];
    size_t nports;
    bool ports_overflow;
    char methods[MAX_METHODS][16];
    size_t nmethods;
    bool methods_any; /* more methods than kept, or one that cannot be written */
    char paths[MAX_PATHS][128];
    size_t npaths;
    bool paths_any; /* "/" itself, too many, or one a path rule could not hold */
    unsigned http, connect, dns;
    char dns_types[MAX_TYPES][12];
    size_t ntypes;
};

struct note {
    char error[40];
    char what[200];
    char reason[240];
    unsigned count;
};

struct learn {
    struct cand *cands;
    size_t ncands, cands_dropped;
    struct note *notes;
    size_t nnotes, notes_dropped;
    size_t denials;
};

/* ---------------------------------------------------------------- output buffer */

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void bput(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void bprintf(struct buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    bput(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* What the agent chose (names, paths, reasons quoting them) goes into comments: one line, printable
 * ASCII only, cut to cap - 1. */
static void clean(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    dst[i] = '\0';
}

/* ---------------------------------------------------------------- collecting */

static struct cand *cand_get(struct learn *l, const char *host, bool is_addr)
{
    for (size_t i = 0; i < l->ncands; i++)
        if (!strcmp(l->cands[i].host, host))
            return &l->cands[i];
    if (l->ncands == MAX_CANDS || strlen(host) >= sizeof l->cands[0].host) {
        l->cands_dropped++;
        return NULL;
    }
    struct cand *c = &l->cands[l->ncands++];
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "%s", host);
    c->is_addr = is_addr;
    c->is_public = true;
    if (is_addr) {
        struct pd_addr a;
        struct pd_err e = {{0}};
        if (pd_ip_parse_strict(host, strlen(host), &a, &e))
            c->is_public = pd_addr_is_public(&a);
    }
    return c;
}

static void add_port(struct cand *c, long port)
{
    if (port < 1 || port > 65535)
        return;
    for (size_t i = 0; i < c->nports; i++)
        if (c->ports[i] == port)
            return;
    if (c->nports == MAX_PORTS) {
        c->ports_overflow = true;
        return;
    }
    size_t i = c->nports++;
    while (i > 0 && c->ports[i - 1] > port) { /* kept sorted */
        c->ports[i] = c->ports[i - 1];
        i--;
    }
    c->ports[i] = (uint16_t)port;
}

static void add_method(struct cand *c, const char *m)
{
    size_t n = strlen(m);
    bool ok = n > 0 && n < sizeof c->methods[0];
    for (size_t i = 0; ok && i < n; i++)
        ok = m[i] >= 'A' && m[i] <= 'Z';
    if (!ok) {
        c->methods_any = true;
        return;
    }
    for (size_t i = 0; i < c->nmethods; i++)
        if (!strcmp(c->methods[i], m))
            return;
    if (c->nmethods == MAX_METHODS) {
        c->methods_any = true;
        return;
    }
    snprintf(c->methods[c->nmethods++], sizeof c->methods[0], "%s", m);
}

/* A path rule is a byte-wise prefix; propose the first segment ("/v1/models" -> "/v1/"). Paths a
 * rule could not hold safely (docs/policy.md: dot segments, encodings, backslashes) or would need
 * quoting make the candidate allow any path. */
static void add_path(struct cand *c, const char *path)
{
    if (!path || path[0] != '/') {
        c->paths_any = true;
        return;
    }
    const char *second = strchr(path + 1, '/');
    size_t n = second ? (size_t)(second - path) + 1 : strlen(path);
    if (n <= 1 || n >= sizeof c->paths[0]) {
        c->paths_any = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = path[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || strchr("/-_~+,;=:@!$&'()*", ch) ||
                  (ch == '.' && path[i + 1] != '.');
        if (!ok || (ch == '.' && (path[i - 1] == '/'))) {
            c->paths_any = true;
            return;
        }
    }
    for (size_t i = 0; i < c->npaths; i++)
        if (strlen(c->paths[i]) == n && !memcmp(c->paths[i], path, n))
            return;
    if (c->npaths == MAX_PATHS) {
        c->paths_any = true;
        return;
    }
    memcpy(c->paths[c->npaths], path, n);
    c->paths[c->npaths++][n] = '\0';
}

static void add_dns_type(struct cand *c, const char *t)
{
    if (!t || !*t || strlen(t) >= sizeof c->dns_types[0])
        return;
    for (size_t i = 0; i < c->ntypes; i++)
        if (!strcmp(c->dns_types[i], t))
            return;
    if (c->ntypes < MAX_TYPES)
        snprintf(c->dns_types[c->ntypes++], sizeof c->dns_types[0], "%s", t);
}

static void add_note(struct learn *l, const char *error, const char *what, const char *reason)
{
    char w[sizeof l->notes[0].what];
    clean(w, sizeof w, what);
    for (size_t i = 0; i < l->nnotes; i++)
        if (!strcmp(l->notes[i].error, error) && !strcmp(l->notes[i].what, w)) {
            l->notes[i].count++;
            return;
        }
    if (l->nnotes == MAX_NOTES) {
        l->notes_dropped++;
        return;
    }
    struct note *n = &l->notes[l->nnotes++];
    clean(n->error, sizeof n->error, error);
    snprintf(n->what, sizeof n->what, "%s", w);
    clean(n->reason, sizeof n->reason, reason);
    n->count = 1;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* May `host` be an allow rule's name? (What pd_domain_compile accepts, outside the alias zone.) */
static bool name_ok(const char *host)
{
    size_t n = strlen(host), s = strlen(ALIAS_SUFFIX);
    if (!strcmp(host, &ALIAS_SUFFIX[1]) || (n > s && !strcmp(host + n - s, ALIAS_SUFFIX)))
        return false;
    struct pd_domain d;
    struct pd_err e = {{0}};
    return pd_domain_compile(host, n, &d, &e);
}

static void take_access(struct learn *l, const json_t *o)
{
    const char *error = jstr(o, "error"), *host = jstr(o, "host"), *method = jstr(o, "method");
    const char *path = jstr(o, "path"), *reason = jstr(o, "reason");
    long port = (long)json_integer_value(json_object_get(o, "port"));
    if (!error || !host)
        return;
    l->denials++;
    bool connect = method && !strcmp(method, "CONNECT");
    bool name_rule = !strcmp(error, "destination_not_allowed") && name_ok(host);
    struct pd_addr ad;
    struct pd_err e = {{0}};
    bool addr_rule =
        !strcmp(error, "ip_literal_not_allowed") && pd_ip_parse_strict(host, strlen(host), &ad, &e);
    struct cand *c = name_rule || addr_rule ? cand_get(l, host, addr_rule) : NULL;
    if (!c) {
        char what[300];
        snprintf(what, sizeof what, "%s %s:%ld%s%s", method ? method : "?", host, port,
                 path && !connect ? " " : "", path && !connect ? path : "");
        add_note(l, error, what, reason ? reason : "");
        return;
    }
    add_port(c, port);
    if (connect) {
        c->connect++;
    } else {
        c->http++;
        add_method(c, method ? method : "");
        add_path(c, path);
    }
}

static void take_dns(struct learn *l, const json_t *o)
{
    const char *error = jstr(o, "error"), *name = jstr(o, "name"), *type = jstr(o, "type");
    if (!error || !name)
        return;
    l->denials++;
    struct cand *c =
        !strcmp(error, "name_not_allowed") && name_ok(name) ? cand_get(l, name, false) : NULL;
    if (!c) {
        char what[300];
        snprintf(what, sizeof what, "DNS %s %s", type ? type : "?", name);
        add_note(l, error, what, jstr(o, "reason") ? jstr(o, "reason") : "");
        return;
    }
    c->dns++;
    add_dns_type(c, type);
}

static int read_log(struct learn *l, FILE *f, const char *sandbox_id, struct pd_err *err)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (!strstr(line, "\"decision\":\"deny\""))
            continue; /* most lines: cheap to skip */
        json_t *j = json_loadb(line, (size_t)n, 0, NULL);
        const char *ev = jstr(j, "event"), *sid = jstr(j, "sandbox_id");
        if (ev && sid && !strcmp(sid, sandbox_id) && jstr(j, "decision") &&
            !strcmp(jstr(j, "decision"), "deny")) {
            if (!strcmp(ev, "access"))
                take_access(l, j);
            else if (!strcmp(ev, "dns"))
                take_dns(l, j);
        }
        json_decref(j);
    }
    bool bad = ferror(f);
    free(line);
    if (bad) {
        pd_err_set(err, "--learn: reading the access log failed");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- writing */

/* A name the policy's upstream.hosts maps to a non-public address needs allow_private (the gateway
 * checks the addresses it dials). The first such address, or NULL. */
static const char *static_private(const json_t *root, const char *host)
{
    const json_t *addrs =
        json_object_get(json_object_get(json_object_get(root, "upstream"), "hosts"), host);
    for (size_t i = 0; i < json_array_size(addrs); i++) {
        const char *a = json_string_value(json_array_get(addrs, i));
        struct pd_addr ad;
        struct pd_err e = {{0}};
        if (a && pd_ip_parse_strict(a, strlen(a), &ad, &e) && !pd_addr_is_public(&ad))
            return a;
    }
    return NULL;
}

/* One candidate as commented YAML lines, its "- " at column `ind`. */
static void put_cand(struct buf *b, const struct cand *c, int ind, const json_t *root)
{
    char what[400] = "";
    size_t w = 0;
    if (c->http)
        w += (size_t)snprintf(what + w, sizeof what - w, "%u HTTP request%s", c->http,
                              c->http == 1 ? "" : "s");
    if (c->connect && w < sizeof what)
        w += (size_t)snprintf(what + w, sizeof what - w, "%s%u CONNECT tunnel%s", w ? ", " : "",
                              c->connect, c->connect == 1 ? "" : "s");
    if (c->dns && w < sizeof what) {
        w += (size_t)snprintf(what + w, sizeof what - w, "%s%u DNS quer%s (", w ? ", " : "", c->dns,
                              c->dns == 1 ? "y" : "ies");
        for (size_t i = 0; i < c->ntypes && w < sizeof what; i++)
            w +=
                (size_t)snprintf(what + w, sizeof what - w, "%s%s", i ? ", " : "", c->dns_types[i]);
        if (w < sizeof what)
            snprintf(what + w, sizeof what - w, ")");
    }
    if (c->is_addr)
        bprintf(b, "%*s# - cidr: \"%s/%d\"    # denied: %s\n", ind, "", c->host,
                strchr(c->host, ':') ? 128 : 32, what);
    else
        bprintf(b, "%*s# - host: %s    # denied: %s%s\n", ind, "", c->host, what,
                c->http || c->connect ? "" : "; ports 80 and 443 unless you list others");
    if (c->nports && !c->ports_overflow) {
        bprintf(b, "%*s#   ports: [", ind, "");
        for (size_t i = 0; i < c->nports; i++)
            bprintf(b, "%s%u", i ? ", " : "", (unsigned)c->ports[i]);
        bprintf(b, "]\n");
    } else if (c->ports_overflow) {
        bprintf(b, "%*s#   # more than %d ports were asked for: list the ones it needs in ports\n",
                ind, "", MAX_PORTS);
    }
    /* Methods and paths restrict plain HTTP only (a tunnel is opaque); propose them only when every
     * request was plain HTTP, so the rule is no wider than what was seen. */
    if (c->http && !c->connect) {
        if (c->nmethods && !c->methods_any) {
            bprintf(b, "%*s#   methods: [", ind, "");
            for (size_t i = 0; i < c->nmethods; i++)
                bprintf(b, "%s%s", i ? ", " : "", c->methods[i]);
            bprintf(b, "]\n");
        }
        if (c->npaths && !c->paths_any) {
            bprintf(b, "%*s#   paths: [", ind, "");
            for (size_t i = 0; i < c->npaths; i++)
                bprintf(b, "%s\"%s\"", i ? ", " : "", c->paths[i]);
            bprintf(b, "]\n");
        }
    }
    const char *priv = c->is_addr ? NULL : static_private(root, c->host);
    if (c->is_addr && !c->is_public)
        bprintf(b, "%*s#   allow_private: true    # %s is not a public address\n", ind, "",
                c->host);
    else if (priv)
        bprintf(b,
                "%*s#   allow_private: true    # upstream.hosts gives %s, not a public address\n",
                ind, "", priv);
}

/* Three or more denied names under one parent (a.cdn.example.com, b.cdn.example.com, ...): say
 * that one wildcard rule would cover them (a comment only; the parent needs two labels, as a
 * wildcard's suffix must have). */
static void put_wildcard_hints(struct buf *b, const struct learn *l, int ind)
{
    for (size_t i = 0; i < l->ncands; i++) {
        const struct cand *c = &l->cands[i];
        const char *parent = strchr(c->host, '.');
        if (c->is_addr || !parent || !strchr(parent + 1, '.'))
            continue;
        parent++;
        size_t n = 0;
        bool first = true;
        for (size_t j = 0; j < l->ncands; j++) {
            const char *pj = strchr(l->cands[j].host, '.');
            if (l->cands[j].is_addr || !pj || strcmp(pj + 1, parent) != 0)
                continue;
            if (j < i)
                first = false; /* reported with an earlier name */
            n++;
        }
        if (n >= 3 && first)
            bprintf(b,
                    "%*s# (the %zu names under %s could be one rule instead: - host: \"*.%s\")\n",
                    ind, "", n, parent, parent);
    }
}

static void put_cands(struct buf *b, const struct learn *l, int ind, const json_t *root)
{
    for (size_t i = 0; i < l->ncands; i++)
        put_cand(b, &l->cands[i], ind, root);
    put_wildcard_hints(b, l, ind);
    if (l->cands_dropped)
        bprintf(b, "%*s# (%zu more denied destinations are not listed: see the access log)\n", ind,
                "", l->cands_dropped);
}

static void put_notes(struct buf *b, const struct learn *l)
{
    if (!l->nnotes)
        return;
    bprintf(b, "\n# paddock learn: denials and failures a new allow rule would not fix (see the "
               "rule, limit or setting named):\n");
    for (size_t i = 0; i < l->nnotes; i++) {
        const struct note *n = &l->notes[i];
        bprintf(b, "#  * %s (%u time%s): %s%s%s\n", n->what, n->count, n->count == 1 ? "" : "s",
                n->error, n->reason[0] ? ": " : "", n->reason);
    }
    if (l->notes_dropped)
        bprintf(b, "#  * (%zu more kinds of denial: see the access log)\n", l->notes_dropped);
}

/* Where the candidates go in the policy's text: after the last line of a block-style top-level
 * `allow:` list. Returns the byte offset to insert at and the column of its items' "-", or -1
 * when there is no such list (flow style, JSON, or no allow key). */
static long find_allow_end(const char *text, size_t len, struct pd_config_doc *doc, int *ind)
{
    struct pd_config_loc vloc, kloc;
    json_t *root = pd_config_root(doc);
    if (pd_config_format_of(doc) != PD_CONFIG_YAML || !json_is_object(root) ||
        !json_is_array(json_object_get(root, "allow")) ||
        !pd_config_locate_member(doc, root, "allow", &vloc, &kloc) || kloc.line == 0 ||
        kloc.col == 0)
        return -1;
    /* Start of the key's line. */
    size_t pos = 0;
    for (uint32_t ln = 1; ln < kloc.line && pos < len; pos++)
        if (text[pos] == '\n')
            ln++;
    size_t key_col = kloc.col - 1;
    const char *line_end = memchr(text + pos, '\n', len - pos);
    size_t line_len = line_end ? (size_t)(line_end - (text + pos)) : len - pos;
    if (key_col >= line_len)
        return -1;
    /* The colon after the key, on the key's own line (else: a form this does not edit). */
    const char *colon = memchr(text + pos + key_col, ':', line_len - key_col);
    if (!colon)
        return -1;
    const char *after = colon + 1;
    while (after < text + len && (*after == ' ' || *after == '\t'))
        after++;
    if (after < text + len && *after != '\n' && *after != '#' && *after != '\r')
        return -1; /* flow style: allow: [...] */
    const char *eol = memchr(after, '\n', (size_t)(text + len - after));
    size_t insert = eol ? (size_t)(eol - text) + 1 : len;
    int item = -1;
    for (size_t p = insert; p < len;) {
        const char *nl = memchr(text + p, '\n', len - p);
        size_t end = nl ? (size_t)(nl - text) + 1 : len;
        size_t i = p;
        while (i < end && text[i] == ' ')
            i++;
        size_t indent = i - p;
        char c0 = i < end ? text[i] : '\n';
        if (c0 == '\n' || c0 == '\r' || c0 == '#') {
            p = end;
            continue; /* blank or comment: belongs to whatever follows */
        }
        bool dash = c0 == '-' && (i + 1 >= end || text[i + 1] == ' ' || text[i + 1] == '\n');
        if (indent > key_col || (indent == key_col && dash)) {
            if (dash && item < 0)
                item = (int)indent;
            insert = end;
            p = end;
            continue;
        }
        break;
    }
    *ind = item >= 0 ? item : (int)key_col + 2;
    return (long)insert;
}

/* The first relative path the policy names (resolved against the policy's directory), or NULL. */
static const char *relative_path(const json_t *root)
{
    const char *cands[] = {
        json_string_value(json_object_get(json_object_get(root, "upstream"), "ca_file")),
        json_string_value(json_object_get(root, "state_file")),
        json_string_value(json_object_get(json_object_get(root, "dns"), "hosts_file")),
        json_string_value(json_object_get(json_object_get(root, "sandbox"), "workspace")),
    };
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
        if (cands[i] && cands[i][0] != '/')
            return cands[i];
    const json_t *creds = json_object_get(root, "credentials");
    for (size_t i = 0; i < json_array_size(creds); i++) {
        const char *f = json_string_value(json_object_get(json_array_get(creds, i), "value_file"));
        if (f && f[0] != '/')
            return f;
    }
    return NULL;
}

/* Do two files live in the same directory? (false when either cannot be resolved) */
static bool same_dir(const char *a, const char *b)
{
    char da[4096], db[4096];
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    snprintf(da, sizeof da, "%.*s", sa ? (int)(sa - a) + 1 : 1, sa ? a : ".");
    snprintf(db, sizeof db, "%.*s", sb ? (int)(sb - b) + 1 : 1, sb ? b : ".");
    char *ra = realpath(da, NULL), *rb = realpath(db, NULL);
    bool same = ra && rb && !strcmp(ra, rb);
    free(ra);
    free(rb);
    return same;
}

/* Remove the "# " that comments out a candidate's line ("# - ...", "#   ..."). */
static void uncomment_into(struct buf *o, const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && s[j] == ' ')
            j++;
        bool cand = j + 3 < len && s[j] == '#' && s[j + 1] == ' ' &&
                    ((s[j + 2] == '-' && s[j + 3] == ' ') || (s[j + 2] == ' ' && s[j + 3] == ' '));
        const char *nl = memchr(s + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - s) + 1 : len;
        if (cand) {
            bput(o, s + i, j - i);
            bput(o, s + j + 2, end - j - 2);
        } else {
            bput(o, s + i, end - i);
        }
        i = end;
    }
}

/* The policy text with the candidate block inserted at `at`: does it, as written, mean exactly
 * what the policy means, and with the candidates uncommented hold exactly n more allow rules?
 * (YAML has forms the line-based insertion point could misjudge; they fail here.) */
static bool insertion_ok(const char *name, const char *text, size_t tlen, size_t at,
                         const struct buf *blk, const json_t *orig, size_t n)
{
    struct buf w = {0}, u = {0};
    bput(&w, text, at);
    bput(&w, blk->p ? blk->p : "", blk->len);
    bput(&w, text + at, tlen - at);
    bput(&u, text, at);
    uncomment_into(&u, blk->p ? blk->p : "", blk->len);
    bput(&u, text + at, tlen - at);
    bool ok = !w.oom && !u.oom;
    struct pd_err e = {{0}};
    struct pd_config_doc *dw =
        ok ? pd_config_load_buffer(name, w.p, w.len, PD_CONFIG_YAML, &e) : NULL;
    struct pd_config_doc *du =
        ok ? pd_config_load_buffer(name, u.p, u.len, PD_CONFIG_YAML, &e) : NULL;
    ok = dw && du && json_equal(pd_config_root(dw), (json_t *)orig) &&
         json_array_size(json_object_get(pd_config_root(du), "allow")) ==
             json_array_size(json_object_get(orig, "allow")) + n;
    pd_config_doc_free(dw);
    pd_config_doc_free(du);
    free(w.p);
    free(u.p);
    return ok;
}

static char *read_text(const char *path, size_t *len, struct pd_err *err)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        pd_err_set(err, "--learn: cannot read the policy %s: %s", path, strerror(errno));
        return NULL;
    }
    char *p = malloc(MAX_POLICY_BYTES + 1);
    size_t n = p ? fread(p, 1, MAX_POLICY_BYTES + 1, f) : 0;
    bool bad = ferror(f) || n > MAX_POLICY_BYTES;
    fclose(f);
    if (!p || bad) {
        pd_err_set(err, "--learn: cannot read the policy %s (%s)", path,
                   p ? "larger than 4 MiB or unreadable" : "out of memory");
        free(p);
        return NULL;
    }
    p[n] = '\0';
    *len = n;
    return p;
}

static int write_whole(const char *path, const struct buf *b, struct pd_err *err)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        pd_err_set(err, "--learn %s: path too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        pd_err_set(err, "--learn: cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(fd, b->p + off, b->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    int e = off == b->len ? 0 : errno ? errno : EIO;
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e) {
        unlink(tmp);
        pd_err_set(err, "--learn: cannot write %s: %s", path, strerror(e));
        return -1;
    }
    return 0;
}

int pd_learn_build(const struct pd_learn_input *in, char **out, size_t *out_len,
                   struct pd_learn_summary *sum, struct pd_err *err)
{
    memset(sum, 0, sizeof *sum);
    *out = NULL;
    *out_len = 0;
    struct learn l = {0};
    l.cands = calloc(MAX_CANDS, sizeof *l.cands);
    l.notes = calloc(MAX_NOTES, sizeof *l.notes);
    const char *text = in->policy_text;
    size_t tlen = in->policy_len;
    struct pd_config_doc *doc = NULL;
    struct buf b = {0};
    int rc = -1;
    if (!l.cands || !l.notes) {
        pd_err_set(err, "--learn: out of memory");
        goto out;
    }
    if (read_log(&l, in->log, in->sandbox_id, err) != 0)
        goto out;
    if (text && tlen >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) {
        text += 3; /* a UTF-8 byte order mark: it may only start the file, and the header does */
        tlen -= 3;
    }
    /* The policy was valid when the run started; if it changed since, propose against what the
     * file holds now (and say so if it no longer loads). */
    if (text && !(doc = pd_config_load_buffer(in->policy_name, text, tlen, PD_CONFIG_AUTO, err)))
        goto out;

    char stamp[32] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char cmd[160], policy[300], sid[80];
    clean(cmd, sizeof cmd, in->command ? in->command : "");
    clean(policy, sizeof policy, in->policy_name ? in->policy_name : "");
    clean(sid, sizeof sid, in->sandbox_id);
    bprintf(&b, "# Proposed by `paddock run --learn` on %s from %s\n", stamp,
            text ? policy : "the built-in policy (nothing allowed)");
    bprintf(&b,
            "# and what sandbox %s was denied running `%s`: %zu candidate rule%s, %zu note%s.\n",
            sid, cmd, l.ncands, l.ncands == 1 ? "" : "s", l.nnotes, l.nnotes == 1 ? "" : "s");
    bprintf(&b, "# Nothing is allowed until you uncomment it: review each candidate (its comment "
                "says what was\n# denied and how often), remove the leading \"# \" of its lines, "
                "and check the result with\n# `paddock policy check FILE`.\n");
    const char *rel = doc ? relative_path(pd_config_root(doc)) : NULL;
    if (rel && in->out_path && !same_dir(in->policy_name, in->out_path)) {
        char r[200];
        clean(r, sizeof r, rel);
        bprintf(&b,
                "# Note: the policy names files relative to its own directory (%s); this file "
                "lives in\n# another directory, so move it next to the policy or make those "
                "paths absolute.\n",
                r);
        sum->relative_path_moved = true;
    }
    long at = -1;
    int ind = 2;
    const json_t *root = doc ? pd_config_root(doc) : NULL;
    if (doc)
        at = find_allow_end(text, tlen, doc, &ind);
    struct buf blk = {0};
    if (at >= 0) {
        if (at > 0 && text[at - 1] != '\n')
            bput(&blk, "\n", 1);
        if (l.ncands)
            bprintf(&blk, "%*s# paddock learn: candidate rules (uncomment to allow)\n", ind, "");
        put_cands(&blk, &l, ind, root);
        if (!insertion_ok(in->policy_name, text, tlen, (size_t)at, &blk, root, l.ncands))
            at = -1; /* a form the insertion point misjudged: the candidates go at the end */
    }
    if (at >= 0) {
        sum->in_place = true;
        bput(&b, text, (size_t)at);
        bput(&b, blk.p ? blk.p : "", blk.len);
        bput(&b, text + at, tlen - (size_t)at);
        if (tlen > (size_t)at && text[tlen - 1] != '\n')
            bput(&b, "\n", 1);
    } else {
        if (text) {
            bput(&b, text, tlen);
            if (tlen && text[tlen - 1] != '\n')
                bput(&b, "\n", 1);
        }
        if (l.ncands) {
            if (root && json_object_get(root, "allow"))
                bprintf(&b, "\n# paddock learn: candidate rules: this policy's allow list is not "
                            "a block list,\n# so merge the ones you want into it by hand\n");
            else
                bprintf(&b, "\n# paddock learn: candidate rules (uncomment `allow:` and the rules "
                            "you want)\n# allow:\n");
            put_cands(&b, &l, 0, root);
        }
    }
    if (!l.ncands)
        bprintf(&b, "\n# paddock learn: no destination was denied that an allow rule would fix.\n");
    put_notes(&b, &l);
    free(blk.p);
    if (b.oom || blk.oom) {
        pd_err_set(err, "--learn: out of memory");
        goto out;
    }
    sum->candidates = l.ncands + l.cands_dropped;
    sum->notes = l.nnotes + l.notes_dropped;
    sum->denials = l.denials;
    *out = b.p;
    *out_len = b.len;
    b.p = NULL;
    rc = 0;
out:
    free(b.p);
    pd_config_doc_free(doc);
    free(l.cands);
    free(l.notes);
    return rc;
}

int pd_learn_propose(const struct pd_learn_opts *o, struct pd_learn_summary *sum,
                     struct pd_err *err)
{
    memset(sum, 0, sizeof *sum);
    FILE *f = fopen(o->log_path, "re");
    if (!f) {
        pd_err_set(err, "--learn: cannot read the access log %s: %s", o->log_path, strerror(errno));
        return -1;
    }
    if (o->log_from > 0 && fseeko(f, o->log_from, SEEK_SET) != 0) {
        pd_err_set(err, "--learn: %s: %s", o->log_path, strerror(errno));
        fclose(f);
        return -1;
    }
    char *text = NULL;
    size_t tlen = 0;
    if (o->policy_path && !(text = read_text(o->policy_path, &tlen, err))) {
        fclose(f);
        return -1;
    }
    struct pd_learn_input in = {.policy_name = o->policy_path,
                                .policy_text = text,
                                .policy_len = tlen,
                                .log = f,
                                .sandbox_id = o->sandbox_id,
                                .command = o->command,
                                .out_path = o->out_path};
    char *out = NULL;
    size_t len = 0;
    int rc = pd_learn_build(&in, &out, &len, sum, err);
    fclose(f);
    free(text);
    if (rc == 0) {
        struct buf b = {.p = out, .len = len, .cap = len + 1};
        rc = write_whole(o->out_path, &b, err);
    }
    free(out);
    return rc;
}

int pd_learn_summarize(FILE *log, const char *sandbox_id, char *buf, size_t cap, size_t *denials)
{
    *denials = 0;
    if (cap)
        buf[0] = '\0';
    struct learn l = {0};
    l.cands = calloc(MAX_CANDS, sizeof *l.cands);
    l.notes = calloc(MAX_NOTES, sizeof *l.notes);
    struct pd_err err = {{0}};
    int rc = -1;
    if (l.cands && l.notes && read_log(&l, log, sandbox_id, &err) == 0) {
        struct buf b = {0};
        size_t shown = 0;
        for (size_t i = 0; i < l.ncands && shown < 6; i++, shown++) {
            const struct cand *c = &l.cands[i];
            bprintf(&b, "%s%s", shown ? ", " : "", c->host);
            if (c->nports == 1)
                bprintf(&b, ":%u", (unsigned)c->ports[0]);
            else if (!c->nports)
                bprintf(&b, " (DNS)");
        }
        for (size_t i = 0; i < l.nnotes && shown < 6; i++, shown++)
            bprintf(&b, "%s%s (%s)", shown ? ", " : "", l.notes[i].what, l.notes[i].error);
        size_t total = l.ncands + l.cands_dropped + l.nnotes + l.notes_dropped;
        if (total > shown)
            bprintf(&b, " and %zu more", total - shown);
        if (!b.oom && cap) {
            clean(buf, cap, b.p ? b.p : "");
            rc = 0;
        }
        free(b.p);
        *denials = l.denials;
    }
    free(l.cands);
    free(l.notes);
    return rc;
}
