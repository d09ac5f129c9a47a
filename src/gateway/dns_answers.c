/* dns_answers.c - the DNS filter's per-worker answer cache; see dns_answers.h for the contract. */
#include "gateway/dns_answers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "gateway/dns_guard.h" /* pd_dns_guard_siphash24 */

#define NIL UINT32_MAX /* no entry (max_entries <= 1,000,000, so never an index) */
#define QTYPE_MIX 0x9E3779B97F4A7C15ull /* odd 64-bit constant (2^64 / golden ratio) */

_Static_assert(PD_DNSA_NAME_MAX <= UINT8_MAX, "name lengths are stored in a byte");
_Static_assert(PD_DNSA_ARENA_BYTES <= UINT16_MAX, "arena offsets are stored in 16 bits");
_Static_assert(PD_DNSA_MAX_ANSWERS <= UINT8_MAX, "record counts are stored in a byte");
_Static_assert(PD_DNSA_MAX_ENTRIES_LIMIT < NIL, "entry indices must not reach NIL");

/* One answer record, strings as (offset, length) in the entry's arena. */
struct rec {
    uint8_t addr[16]; /* A: first 4 bytes, rest zero; CNAME: zero */
    uint16_t type;
    uint16_t target_off, owner_off;
    uint8_t target_len; /* 0 unless CNAME */
    uint8_t owner_len; /* 0: the question name (owner NULL on output) */
};

struct entry {
    uint64_t expires_ms;
    uint64_t hash; /* of (name, qtype) */
    uint32_t ttl_s; /* as put: the most a hit gives out */
    uint32_t hnext; /* next in the bucket chain, or in the free list */
    uint32_t prev, next; /* LRU list: prev towards the most recently used */
    uint32_t heap_pos; /* index in c->heap */
    uint16_t qtype, rcode;
    uint16_t arena_used;
    uint8_t name_len, nrec;
    bool used;
    char name[PD_DNSA_NAME_MAX + 1];
    struct rec rec[PD_DNSA_MAX_ANSWERS];
    char arena[PD_DNSA_ARENA_BYTES];
};

struct pd_dnsa {
    struct entry *e; /* max entries */
    uint32_t max, count;
    uint32_t *buckets; /* mask + 1 chain heads */
    uint32_t mask;
    uint32_t *heap; /* heap[0..count): min-heap of entry indices by expires_ms */
    uint32_t mru, lru; /* ends of the LRU list */
    uint32_t free_head;
    uint8_t key[16];
};

/* ---- hashing ---- */

static uint64_t key_hash(const struct pd_dnsa *c, const char *name, size_t len, uint16_t qtype)
{
    return pd_dns_guard_siphash24(c->key, name, len) ^ ((uint64_t)qtype * QTYPE_MIX);
}

static uint32_t bucket_of(const struct pd_dnsa *c, uint64_t h)
{
    return (uint32_t)(h ^ (h >> 32)) & c->mask;
}

static uint32_t find(const struct pd_dnsa *c, const char *name, size_t len, uint16_t qtype,
                     uint64_t h)
{
    for (uint32_t i = c->buckets[bucket_of(c, h)]; i != NIL; i = c->e[i].hnext) {
        const struct entry *e = &c->e[i];
        if (e->hash == h && e->qtype == qtype && e->name_len == len &&
            memcmp(e->name, name, len) == 0)
            return i;
    }
    return NIL;
}

/* ---- expiry heap ---- */

static void heap_set(struct pd_dnsa *c, uint32_t pos, uint32_t i)
{
    c->heap[pos] = i;
    c->e[i].heap_pos = pos;
}

static bool heap_less(const struct pd_dnsa *c, uint32_t pa, uint32_t pb)
{
    return c->e[c->heap[pa]].expires_ms < c->e[c->heap[pb]].expires_ms;
}

static void heap_swap(struct pd_dnsa *c, uint32_t pa, uint32_t pb)
{
    uint32_t a = c->heap[pa];
    heap_set(c, pa, c->heap[pb]);
    heap_set(c, pb, a);
}

static void sift_up(struct pd_dnsa *c, uint32_t pos)
{
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!heap_less(c, pos, parent))
            return;
        heap_swap(c, pos, parent);
        pos = parent;
    }
}

/* n: the heap's size. */
static void sift_down(struct pd_dnsa *c, uint32_t pos, uint32_t n)
{
    for (;;) {
        uint32_t l = 2 * pos + 1, r = l + 1, m = pos; /* n <= 1e6: no overflow */
        if (l < n && heap_less(c, l, m))
            m = l;
        if (r < n && heap_less(c, r, m))
            m = r;
        if (m == pos)
            return;
        heap_swap(c, pos, m);
        pos = m;
    }
}

/* Push entry i; the heap has n elements before the call. */
static void heap_push(struct pd_dnsa *c, uint32_t i, uint32_t n)
{
    heap_set(c, n, i);
    sift_up(c, n);
}

/* Remove entry i; the heap has n >= 1 elements before the call. */
static void heap_remove(struct pd_dnsa *c, uint32_t i, uint32_t n)
{
    uint32_t pos = c->e[i].heap_pos, last = n - 1;
    if (pos != last) {
        heap_set(c, pos, c->heap[last]);
        sift_down(c, pos, last);
        sift_up(c, pos);
    }
    c->e[i].heap_pos = NIL;
}

/* ---- LRU list ---- */

static void lru_unlink(struct pd_dnsa *c, uint32_t i)
{
    struct entry *e = &c->e[i];
    if (e->prev != NIL)
        c->e[e->prev].next = e->next;
    else
        c->mru = e->next;
    if (e->next != NIL)
        c->e[e->next].prev = e->prev;
    else
        c->lru = e->prev;
    e->prev = e->next = NIL;
}

static void lru_push_front(struct pd_dnsa *c, uint32_t i)
{
    struct entry *e = &c->e[i];
    e->prev = NIL;
    e->next = c->mru;
    if (c->mru != NIL)
        c->e[c->mru].prev = i;
    else
        c->lru = i;
    c->mru = i;
}

/* ---- entries ---- */

static void remove_entry(struct pd_dnsa *c, uint32_t i)
{
    struct entry *e = &c->e[i];
    for (uint32_t *pp = &c->buckets[bucket_of(c, e->hash)]; *pp != NIL; pp = &c->e[*pp].hnext) {
        if (*pp == i) {
            *pp = e->hnext;
            break;
        }
    }
    lru_unlink(c, i);
    heap_remove(c, i, c->count);
    c->count--;
    e->used = false; /* the contents stay until a put reuses the slot (see Reads) */
    e->hnext = c->free_head;
    c->free_head = i;
}

/* A free slot, evicting one entry when none is free. */
static uint32_t take_slot(struct pd_dnsa *c, uint64_t now_ms)
{
    if (c->free_head == NIL) {
        uint32_t first = c->heap[0]; /* full, so count == max >= 1 */
        remove_entry(c, c->e[first].expires_ms <= now_ms ? first : c->lru);
    }
    uint32_t i = c->free_head;
    c->free_head = c->e[i].hnext;
    return i;
}

/* Store s[0..len) in e's arena (once: an equal string already there is shared). False when it does
 * not fit. */
static bool add_string(struct entry *e, const char *s, size_t len, uint16_t *off)
{
    for (uint8_t k = 0; k < e->nrec; k++) {
        const struct rec *r = &e->rec[k];
        if (r->target_len == len && memcmp(e->arena + r->target_off, s, len) == 0) {
            *off = r->target_off;
            return true;
        }
        if (r->owner_len == len && memcmp(e->arena + r->owner_off, s, len) == 0) {
            *off = r->owner_off;
            return true;
        }
    }
    if (len + 1 > (size_t)PD_DNSA_ARENA_BYTES - e->arena_used)
        return false;
    memcpy(e->arena + e->arena_used, s, len);
    e->arena[e->arena_used + len] = '\0';
    *off = e->arena_used;
    e->arena_used = (uint16_t)(e->arena_used + len + 1);
    return true;
}

/* Fill the payload of *e (records and strings) from ans[0..n). False when it cannot be cached. */
static bool build_records(struct entry *e, const struct pd_dns_answer *ans, size_t n)
{
    if (n > PD_DNSA_MAX_ANSWERS || (n > 0 && !ans))
        return false;
    for (size_t k = 0; k < n; k++) {
        const struct pd_dns_answer *a = &ans[k];
        struct rec *r = &e->rec[e->nrec];
        memset(r, 0, sizeof *r);
        r->type = a->type;
        switch (a->type) {
        case PD_DNS_TYPE_A:
            memcpy(r->addr, a->addr, 4);
            break;
        case PD_DNS_TYPE_AAAA:
            memcpy(r->addr, a->addr, 16);
            break;
        case PD_DNS_TYPE_CNAME:
            if (!a->target || a->target_len == 0 || a->target_len > PD_DNSA_NAME_MAX ||
                !add_string(e, a->target, a->target_len, &r->target_off))
                return false;
            r->target_len = (uint8_t)a->target_len;
            break;
        default:
            return false;
        }
        if (a->owner_len > 0) {
            if (!a->owner || a->owner_len > PD_DNSA_NAME_MAX ||
                !add_string(e, a->owner, a->owner_len, &r->owner_off))
                return false;
            r->owner_len = (uint8_t)a->owner_len;
        }
        e->nrec++;
    }
    return true;
}

/* ---- API ---- */

struct pd_dnsa *pd_dnsa_new(size_t max_entries, struct pd_err *err)
{
    if (max_entries < 1 || max_entries > PD_DNSA_MAX_ENTRIES_LIMIT) {
        pd_err_set(err, "dns answer cache: max_entries must be between 1 and %d, got %zu",
                   PD_DNSA_MAX_ENTRIES_LIMIT, max_entries);
        return NULL;
    }
    struct pd_dnsa *c = calloc(1, sizeof *c);
    if (!c) {
        pd_err_set(err, "dns answer cache: out of memory");
        return NULL;
    }
    size_t got = 0;
    while (got < sizeof c->key) {
        ssize_t r = getrandom(c->key + got, sizeof c->key - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            pd_err_set(err, "dns answer cache: getrandom failed: %s",
                       r < 0 ? strerror(errno) : "no bytes");
            free(c);
            return NULL;
        }
        got += (size_t)r;
    }
    uint32_t nbuckets = 1;
    while (nbuckets < max_entries) /* max_entries <= 1e6: at most 2^20 */
        nbuckets *= 2;
    c->max = (uint32_t)max_entries;
    c->mask = nbuckets - 1;
    c->e = calloc(max_entries, sizeof *c->e);
    c->buckets = malloc((size_t)nbuckets * sizeof *c->buckets);
    c->heap = malloc(max_entries * sizeof *c->heap);
    if (!c->e || !c->buckets || !c->heap) {
        pd_dnsa_free(c);
        pd_err_set(err, "dns answer cache: out of memory for %zu entries", max_entries);
        return NULL;
    }
    pd_dnsa_clear(c);
    return c;
}

void pd_dnsa_free(struct pd_dnsa *c)
{
    if (!c)
        return;
    free(c->e);
    free(c->buckets);
    free(c->heap);
    explicit_bzero(c->key, sizeof c->key);
    free(c);
}

void pd_dnsa_clear(struct pd_dnsa *c)
{
    if (!c)
        return;
    for (uint32_t b = 0; b <= c->mask; b++)
        c->buckets[b] = NIL;
    for (uint32_t i = 0; i < c->max; i++) {
        struct entry *e = &c->e[i];
        e->used = false;
        e->prev = e->next = e->heap_pos = NIL;
        e->hnext = i + 1 < c->max ? i + 1 : NIL;
    }
    c->free_head = 0;
    c->count = 0;
    c->mru = c->lru = NIL;
}

bool pd_dnsa_put(struct pd_dnsa *c, const char *name, size_t len, uint16_t qtype, uint16_t rcode,
                 const struct pd_dns_answer *ans, size_t n, uint32_t ttl_s, uint64_t now_ms)
{
    if (!c || !name || len == 0 || len > PD_DNSA_NAME_MAX)
        return false; /* no key: nothing to store or remove */
    uint64_t h = key_hash(c, name, len, qtype);

    /* Build the whole entry on the stack first: name and ans may point into this cache. */
    struct entry tmp;
    memset(&tmp, 0, offsetof(struct entry, rec)); /* the header and name; records as built */
    tmp.hash = h;
    tmp.qtype = qtype;
    tmp.rcode = rcode;
    tmp.ttl_s = ttl_s;
    uint64_t ttl_ms = (uint64_t)ttl_s * 1000u;
    tmp.expires_ms = now_ms > UINT64_MAX - ttl_ms ? UINT64_MAX : now_ms + ttl_ms;
    tmp.name_len = (uint8_t)len;
    memcpy(tmp.name, name, len);
    tmp.name[len] = '\0';
    bool ok = ttl_s > 0 && (rcode == PD_DNS_RCODE_NOERROR || rcode == PD_DNS_RCODE_NXDOMAIN) &&
              build_records(&tmp, ans, n);

    uint32_t old = find(c, name, len, qtype, h);
    if (old != NIL)
        remove_entry(c, old); /* replaced, or refused: the old answer is superseded either way */
    if (!ok)
        return false;

    uint32_t i = take_slot(c, now_ms);
    struct entry *e = &c->e[i];
    /* Copy only what was built: the unused part of the records and arena stays as it was. */
    memcpy(e, &tmp, offsetof(struct entry, rec));
    memcpy(e->rec, tmp.rec, tmp.nrec * sizeof tmp.rec[0]);
    memcpy(e->arena, tmp.arena, tmp.arena_used);
    e->used = true;
    uint32_t b = bucket_of(c, h);
    e->hnext = c->buckets[b];
    c->buckets[b] = i;
    lru_push_front(c, i);
    heap_push(c, i, c->count);
    c->count++;
    return true;
}

bool pd_dnsa_get(struct pd_dnsa *c, const char *name, size_t len, uint16_t qtype, uint64_t now_ms,
                 uint16_t *rcode, struct pd_dns_answer *out, size_t max, size_t *n)
{
    if (n)
        *n = 0;
    if (!c || !name || len == 0 || len > PD_DNSA_NAME_MAX)
        return false;
    uint32_t i = find(c, name, len, qtype, key_hash(c, name, len, qtype));
    if (i == NIL)
        return false;
    struct entry *e = &c->e[i];
    if (now_ms >= e->expires_ms) {
        remove_entry(c, i);
        return false;
    }
    /* ttl_s minus the whole seconds elapsed = the remaining time rounded up (>= 1 while live). */
    uint64_t left_s = (e->expires_ms - now_ms) / 1000u + ((e->expires_ms - now_ms) % 1000u != 0);
    uint32_t ttl = left_s > e->ttl_s ? e->ttl_s : (uint32_t)left_s;
    if (!out)
        max = 0;
    size_t copy = e->nrec < max ? e->nrec : max;
    for (size_t k = 0; k < copy; k++) {
        const struct rec *r = &e->rec[k];
        struct pd_dns_answer *a = &out[k];
        memset(a, 0, sizeof *a);
        a->type = r->type;
        a->ttl = ttl;
        memcpy(a->addr, r->addr, sizeof a->addr);
        if (r->target_len > 0) {
            a->target = e->arena + r->target_off;
            a->target_len = r->target_len;
        }
        if (r->owner_len > 0) {
            a->owner = e->arena + r->owner_off;
            a->owner_len = r->owner_len;
        }
    }
    if (rcode)
        *rcode = e->rcode;
    if (n)
        *n = copy;
    if (c->mru != i) {
        lru_unlink(c, i);
        lru_push_front(c, i);
    }
    return true;
}

size_t pd_dnsa_count(const struct pd_dnsa *c)
{
    return c ? c->count : 0;
}

size_t pd_dnsa_bytes(const struct pd_dnsa *c)
{
    if (!c)
        return 0;
    return sizeof *c + (size_t)c->max * (sizeof *c->e + sizeof *c->heap) +
           ((size_t)c->mask + 1) * sizeof *c->buckets;
}

bool pd_dnsa_check(const struct pd_dnsa *c)
{
    if (!c || c->count > c->max)
        return false;
    /* Hash chains: every entry reached is used, in its own bucket, found at most once. */
    size_t seen = 0;
    for (uint32_t b = 0; b <= c->mask; b++) {
        for (uint32_t i = c->buckets[b]; i != NIL; i = c->e[i].hnext) {
            if (i >= c->max || !c->e[i].used || bucket_of(c, c->e[i].hash) != b ||
                ++seen > c->count)
                return false;
        }
    }
    if (seen != c->count)
        return false;
    /* LRU list: count used entries, prev links mirror next links. */
    seen = 0;
    uint32_t prev = NIL;
    for (uint32_t i = c->mru; i != NIL; prev = i, i = c->e[i].next) {
        if (i >= c->max || !c->e[i].used || c->e[i].prev != prev || ++seen > c->count)
            return false;
    }
    if (seen != c->count || c->lru != prev)
        return false;
    /* Free list: the other entries, all unused. */
    seen = 0;
    for (uint32_t i = c->free_head; i != NIL; i = c->e[i].hnext) {
        if (i >= c->max || c->e[i].used || ++seen > (size_t)c->max - c->count)
            return false;
    }
    if (seen != (size_t)c->max - c->count)
        return false;
    /* Heap: positions agree, every parent expires no later than its children. */
    for (uint32_t p = 0; p < c->count; p++) {
        uint32_t i = c->heap[p];
        if (i >= c->max || !c->e[i].used || c->e[i].heap_pos != p)
            return false;
        if (p > 0 && heap_less(c, p, (p - 1) / 2))
            return false;
    }
    return true;
}
