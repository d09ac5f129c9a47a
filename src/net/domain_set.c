/*
 * domain_set.c - a set of domain patterns with most-specific-match lookup; see domain.h.
 *
 * One open-addressing hash table (linear probing, power-of-two capacity, load <= 3/4) keyed by
 * (kind, canonical name). The hash is FNV-1a run from the LAST byte to the first, so one pass over
 * a host yields the hash of the whole name and of every suffix that starts after a '.': lookup
 * costs one probe per label, and strings are compared only when the 64-bit hashes agree.
 */
#include "net/domain.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ESC(s, n, buf) pd_net_escape((s), (n), PD_NET_ESC_IN, (buf), sizeof(buf))

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define MIN_CAP 16u

struct entry {
    struct pd_domain pat;
    void *data;
    uint64_t hash; /* key hash: kind folded in */
    char *src;     /* source text as the user wrote it */
    size_t srclen;
};

struct pd_domain_set {
    struct entry **slots;
    size_t cap; /* power of two */
    size_t count;
};

static char ds_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static uint64_t fnv_step(uint64_t h, char c)
{
    return (h ^ (unsigned char)ds_lower(c)) * FNV_PRIME;
}

static uint64_t key_hash(uint64_t name_hash, enum pd_domain_kind kind)
{
    uint64_t h = name_hash ^ ((uint64_t)kind * 0x9e3779b97f4a7c15ull);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = n; i > 0; i--)
        h = fnv_step(h, s[i - 1]);
    return h;
}

static bool ds_eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ds_lower(a[i]) != ds_lower(b[i]))
            return false;
    return true;
}

static const struct entry *find(const struct pd_domain_set *s, uint64_t h, enum pd_domain_kind kind,
                                const char *name, size_t n)
{
    size_t mask = s->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const struct entry *e = s->slots[i];
        if (!e)
            return NULL;
        if (e->hash == h && e->pat.kind == kind && e->pat.len == n && ds_eq_nocase(e->pat.name, name, n))
            return e;
    }
}

struct pd_domain_set *pd_domain_set_new(struct pd_err *err)
{
    struct pd_domain_set *s = calloc(1, sizeof *s);
    if (!s) {
        pd_err_set(err, "out of memory creating a domain set");
        return NULL;
    }
    s->slots = calloc(MIN_CAP, sizeof *s->slots);
    if (!s->slots) {
        free(s);
        pd_err_set(err, "out of memory creating a domain set");
        return NULL;
    }
    s->cap = MIN_CAP;
    return s;
}

void pd_domain_set_free(struct pd_domain_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i]) {
            free(s->slots[i]->src);
            free(s->slots[i]);
        }
    }
    free(s->slots);
    free(s);
}

size_t pd_domain_set_count(const struct pd_domain_set *s)
{
    return s ? s->count : 0;
}

static bool grow(struct pd_domain_set *s)
{
    if (s->cap > SIZE_MAX / 2 / sizeof *s->slots)
        return false;
    size_t ncap = s->cap * 2;
    struct entry **ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return false;
    for (size_t i = 0; i < s->cap; i++) {
        struct entry *e = s->slots[i];
        if (!e)
            continue;
        size_t j = (size_t)e->hash & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = e;
    }
    free(s->slots);
    s->slots = ns;
    s->cap = ncap;
    return true;
}

bool pd_domain_set_add(struct pd_domain_set *s, const char *text, size_t len, void *data, struct pd_err *err)
{
    char esc1[PD_NET_ESC_MAX], esc2[PD_NET_ESC_MAX];
    char canon[PD_HOST_MAX + 1];
    struct pd_domain p;
    if (!s) {
        pd_err_set(err, "internal error: no domain set");
        return false;
    }
    if (!pd_domain_compile(text, len, &p, err))
        return false;
    uint64_t h = key_hash(name_hash(p.name, p.len), p.kind);
    const struct entry *dup = find(s, h, p.kind, p.name, p.len);
    if (dup) {
        char esc3[PD_NET_ESC_MAX];
        pd_domain_format(&p, canon, sizeof canon);
        pd_err_set(err, "domain pattern '%s' duplicates '%s' added earlier (both mean '%s')",
                   ESC(text, len, esc1), ESC(dup->src, dup->srclen, esc2), ESC(canon, strlen(canon), esc3));
        return false;
    }
    if ((s->count + 1) * 4 > s->cap * 3 && !grow(s)) {
        pd_err_set(err, "out of memory growing the domain set (%zu patterns)", s->count);
        return false;
    }
    struct entry *e = calloc(1, sizeof *e);
    char *src = malloc(len + 1);
    if (!e || !src) {
        free(e);
        free(src);
        pd_err_set(err, "out of memory adding domain pattern '%s'", ESC(text, len, esc1));
        return false;
    }
    memcpy(src, text, len);
    src[len] = '\0';
    e->pat = p;
    e->data = data;
    e->hash = h;
    e->src = src;
    e->srclen = len;
    size_t mask = s->cap - 1;
    size_t i = (size_t)h & mask;
    while (s->slots[i])
        i = (i + 1) & mask;
    s->slots[i] = e;
    s->count++;
    return true;
}

const struct pd_domain *pd_domain_set_lookup(const struct pd_domain_set *s, const char *host, size_t len,
                                             void **data)
{
    if (data)
        *data = NULL;
    if (!s || !host || s->count == 0)
        return NULL;
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0 || len > PD_HOST_MAX)
        return NULL;
    const struct entry *best = NULL;
    uint64_t h = FNV_OFFSET;
    for (size_t i = len; i > 0; i--) {
        size_t j = i - 1;
        if (host[j] == '.' && j + 1 < len && j > 0 && host[j - 1] != '.') {
            /* host[j+1..len) is a suffix with at least one label in front of it. Scanning leftwards,
             * later hits are longer suffixes, hence more specific. */
            const struct entry *e = find(s, key_hash(h, PD_DOMAIN_WILDCARD), PD_DOMAIN_WILDCARD,
                                         host + j + 1, len - j - 1);
            if (e)
                best = e;
        }
        h = fnv_step(h, host[j]);
    }
    const struct entry *ex = find(s, key_hash(h, PD_DOMAIN_EXACT), PD_DOMAIN_EXACT, host, len);
    if (ex)
        best = ex;
    if (best && data)
        *data = best->data;
    return best ? &best->pat : NULL;
}
