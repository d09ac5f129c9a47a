/* dns_guard.c - the DNS tunnelling guard; see dns_guard.h for the contract. */
#include "gateway/dns_guard.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define INITIAL_SET_SLOTS 16u
#define SECONDS_PER_WINDOW 60

/* log2(k) for k = 0..63 (0 for k = 0, never used): Shannon entropy without libm. */
/* clang-format off */
static const double log2_table[PD_DNS_GUARD_LABEL_MAX + 1] = {
    0.0, 0.0, 1.0, 1.584962500721156,
    2.0, 2.321928094887362, 2.584962500721156, 2.807354922057604,
    3.0, 3.169925001442312, 3.321928094887362, 3.4594316186372973,
    3.584962500721156, 3.700439718141092, 3.807354922057604, 3.9068905956085187,
    4.0, 4.087462841250339, 4.169925001442312, 4.247927513443585,
    4.321928094887363, 4.392317422778761, 4.459431618637297, 4.523561956057013,
    4.584962500721156, 4.643856189774724, 4.700439718141092, 4.754887502163468,
    4.807354922057604, 4.857980995127572, 4.906890595608519, 4.954196310386875,
    5.0, 5.044394119358453, 5.087462841250339, 5.129283016944966,
    5.169925001442312, 5.20945336562895, 5.247927513443585, 5.285402218862249,
    5.321928094887363, 5.357552004618084, 5.392317422778761, 5.426264754702098,
    5.459431618637297, 5.491853096329675, 5.523561956057013, 5.554588851677638,
    5.584962500721156, 5.614709844115208, 5.643856189774724, 5.672425341971495,
    5.700439718141092, 5.727920454563199, 5.754887502163468, 5.78135971352466,
    5.807354922057604, 5.832890014164741, 5.857980995127572, 5.882643049361842,
    5.906890595608519, 5.930737337562887, 5.954196310386875, 5.977279923499917,
};
/* clang-format on */

/* ---- reasons ---- */

static void say(char *reason, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *reason, size_t cap, const char *fmt, ...)
{
    if (!reason || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(reason, cap, fmt, ap);
    va_end(ap);
    if (n < 0)
        reason[0] = '\0';
}

/* Label quoted in a reason: at most PD_DNS_GUARD_QUOTE_MAX characters, "..." when cut. The label
 * has been checked to be canonical, so it holds only [a-z0-9-_]. */
struct quote {
    char s[PD_DNS_GUARD_QUOTE_MAX + 4];
};

static struct quote quote_label(const char *label, size_t len)
{
    struct quote q;
    size_t n = len > PD_DNS_GUARD_QUOTE_MAX ? PD_DNS_GUARD_QUOTE_MAX : len;
    memcpy(q.s, label, n);
    if (len > PD_DNS_GUARD_QUOTE_MAX) {
        memcpy(q.s + n, "...", 3);
        n += 3;
    }
    q.s[n] = '\0';
    return q;
}

/* ---- canonical names ---- */

static bool label_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* s[0..len) is 1..253 bytes of labels of 1..63 [a-z0-9-_] joined by single dots. */
static bool canonical(const char *s, size_t len)
{
    if (!s || len == 0 || len > PD_DNS_GUARD_NAME_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (label_char(c)) {
            if (++label > PD_DNS_GUARD_LABEL_MAX)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

/* ---- limits ---- */

void pd_dns_guard_limits_default(struct pd_dns_guard_limits *lim)
{
    if (!lim)
        return;
    *lim = (struct pd_dns_guard_limits){
        .max_name_length = PD_DNS_GUARD_DEFAULT_MAX_NAME_LENGTH,
        .max_label_length = PD_DNS_GUARD_DEFAULT_MAX_LABEL_LENGTH,
        .entropy_min_length = PD_DNS_GUARD_DEFAULT_ENTROPY_MIN_LENGTH,
        .max_label_entropy = PD_DNS_GUARD_DEFAULT_MAX_LABEL_ENTROPY,
        .unique_subdomains_per_minute = PD_DNS_GUARD_DEFAULT_UNIQUE_PER_MINUTE,
    };
}

int pd_dns_guard_limits_validate(const struct pd_dns_guard_limits *lim, struct pd_err *err)
{
    if (!lim) {
        pd_err_set(err, "dns limits missing");
        return -1;
    }
    if (lim->max_name_length < 1 || lim->max_name_length > PD_DNS_GUARD_NAME_MAX) {
        pd_err_set(err, "dns.max_name_length must be between 1 and %d, got %u",
                   PD_DNS_GUARD_NAME_MAX, lim->max_name_length);
        return -1;
    }
    if (lim->max_label_length < 1 || lim->max_label_length > PD_DNS_GUARD_LABEL_MAX) {
        pd_err_set(err, "dns.max_label_length must be between 1 and %d, got %u",
                   PD_DNS_GUARD_LABEL_MAX, lim->max_label_length);
        return -1;
    }
    if (lim->entropy_min_length < 1 || lim->entropy_min_length > PD_DNS_GUARD_LABEL_MAX) {
        pd_err_set(err, "dns.entropy_min_length must be between 1 and %d, got %u",
                   PD_DNS_GUARD_LABEL_MAX, lim->entropy_min_length);
        return -1;
    }
    /* Written so that NaN fails too. */
    if (!(lim->max_label_entropy >= 0.0 && lim->max_label_entropy <= PD_DNS_GUARD_ENTROPY_MAX)) {
        pd_err_set(err, "dns.max_label_entropy must be between 0 and %.0f, got %g",
                   PD_DNS_GUARD_ENTROPY_MAX, lim->max_label_entropy);
        return -1;
    }
    if (lim->unique_subdomains_per_minute > PD_DNS_GUARD_UNIQUE_MAX) {
        pd_err_set(err, "dns.unique_subdomains_per_minute must be between 0 and %d, got %u",
                   PD_DNS_GUARD_UNIQUE_MAX, lim->unique_subdomains_per_minute);
        return -1;
    }
    return 0;
}

/* ---- entropy ---- */

double pd_dns_guard_label_entropy(const char *label, size_t len)
{
    if (!label || len == 0 || len > PD_DNS_GUARD_LABEL_MAX)
        return -1.0;
    unsigned counts[256] = {0};
    for (size_t i = 0; i < len; i++)
        counts[(unsigned char)label[i]]++;
    /* H = -sum (c/n) log2(c/n) = log2(n) - (1/n) sum c log2(c); every c <= n <= 63. */
    double sum = 0.0;
    for (size_t c = 0; c < 256; c++)
        if (counts[c] > 1)
            sum += (double)counts[c] * log2_table[counts[c]];
    double h = log2_table[len] - sum / (double)len;
    return h < 0.0 ? 0.0 : h; /* -0.0 or rounding below zero for a single repeated character */
}

/* ---- the pure check ---- */

bool pd_dns_guard_check_name(const struct pd_dns_guard_limits *lim, const char *name,
                             size_t name_len, size_t apex_len, char *reason, size_t reason_cap)
{
    if (reason && reason_cap > 0)
        reason[0] = '\0';
    if (pd_dns_guard_limits_validate(lim, NULL) != 0) {
        say(reason, reason_cap, "invalid limits");
        return false;
    }
    if (!canonical(name, name_len)) {
        say(reason, reason_cap, "name is not a canonical host name");
        return false;
    }
    if (apex_len > name_len ||
        (apex_len > 0 && apex_len < name_len && name[name_len - apex_len - 1] != '.')) {
        say(reason, reason_cap, "apex is not a suffix of the name");
        return false;
    }
    if (name_len > lim->max_name_length) {
        say(reason, reason_cap, "name is %zu characters, more than dns.max_name_length (%u)",
            name_len, lim->max_name_length);
        return false;
    }
    if (apex_len == name_len)
        return true; /* exact rule: no subdomain part */
    /* The subdomain part: name[0..sub_len), without the dot before the apex. */
    size_t sub_len = apex_len == 0 ? name_len : name_len - apex_len - 1;
    size_t start = 0;
    while (start < sub_len) {
        const char *dot = memchr(name + start, '.', sub_len - start);
        size_t end = dot ? (size_t)(dot - name) : sub_len;
        const char *label = name + start;
        size_t len = end - start; /* 1..63: the name is canonical */
        if (len > lim->max_label_length) {
            say(reason, reason_cap,
                "label '%s' (%zu characters) is longer than dns.max_label_length (%u)",
                quote_label(label, len).s, len, lim->max_label_length);
            return false;
        }
        if (len >= lim->entropy_min_length) {
            double h = pd_dns_guard_label_entropy(label, len);
            if (h > lim->max_label_entropy) {
                say(reason, reason_cap,
                    "label '%s' (%zu characters) has entropy %.2f bits/char, above "
                    "dns.max_label_entropy (%.2f): looks like data, not a host name",
                    quote_label(label, len).s, len, h, lim->max_label_entropy);
                return false;
            }
        }
        start = end + 1;
    }
    return true;
}

/* ---- SipHash-2-4 (Aumasson and Bernstein, reference test vectors in the unit test) ---- */

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#define SIPROUND           \
    do {                   \
        v0 += v1;          \
        v1 = rotl(v1, 13); \
        v1 ^= v0;          \
        v0 = rotl(v0, 32); \
        v2 += v3;          \
        v3 = rotl(v3, 16); \
        v3 ^= v2;          \
        v0 += v3;          \
        v3 = rotl(v3, 21); \
        v3 ^= v0;          \
        v2 += v1;          \
        v1 = rotl(v1, 17); \
        v1 ^= v2;          \
        v2 = rotl(v2, 32); \
    } while (0)

uint64_t pd_dns_guard_siphash24(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *in = data;
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k0;
    uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ k1;
    uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k0;
    uint64_t v3 = UINT64_C(0x7465646279746573) ^ k1;
    size_t whole = len - len % 8;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < len % 8; i++)
        b |= (uint64_t)in[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the burst tracker ---- */

struct apex {
    struct apex *next; /* hash chain */
    uint64_t hash;
    int64_t window; /* floor(now_s / 60) of the current window */
    int64_t last_s; /* last note, for eviction */
    uint64_t *set; /* open addressing, linear probing, 0 = empty; NULL until the first insert */
    uint32_t nslots; /* 0 or a power of two */
    uint32_t count; /* distinct subdomains this window */
    size_t len;
    char name[]; /* len bytes + NUL */
};

struct pd_dns_guard {
    pthread_mutex_t mu;
    uint8_t key[16];
    struct apex **slots; /* chained hash table, nslots a power of two >= max_apexes */
    size_t nslots;
    size_t count;
    size_t max_apexes;
    size_t bytes; /* heap bytes held, for pd_dns_guard_bytes */
};

static int64_t window_of(int64_t now_s)
{
    int64_t w = now_s / SECONDS_PER_WINDOW;
    return (now_s % SECONDS_PER_WINDOW < 0) ? w - 1 : w; /* floor for negative times */
}

static void set_clear(struct pd_dns_guard *g, struct apex *a)
{
    if (a->set) {
        g->bytes -= (size_t)a->nslots * sizeof *a->set;
        free(a->set);
    }
    a->set = NULL;
    a->nslots = 0;
    a->count = 0;
}

static void apex_free(struct pd_dns_guard *g, struct apex *a)
{
    set_clear(g, a);
    g->bytes -= sizeof *a + a->len + 1;
    free(a);
}

/* Slot of h in the set, or of the empty slot where it would go. The set is never full. */
static uint32_t set_find(const struct apex *a, uint64_t h)
{
    uint32_t mask = a->nslots - 1;
    uint32_t i = (uint32_t)h & mask;
    while (a->set[i] != 0 && a->set[i] != h)
        i = (i + 1) & mask;
    return i;
}

/* Room for one more hash at load <= 1/2: allocate or double. False on out of memory. */
static bool set_reserve(struct pd_dns_guard *g, struct apex *a)
{
    if (a->set && ((size_t)a->count + 1) * 2 <= a->nslots)
        return true;
    uint32_t n = a->set ? a->nslots * 2 : INITIAL_SET_SLOTS; /* count <= UNIQUE_MAX: no overflow */
    uint64_t *s = calloc(n, sizeof *s);
    if (!s)
        return false;
    uint64_t *old = a->set;
    uint32_t old_n = a->nslots;
    a->set = s;
    a->nslots = n;
    for (uint32_t i = 0; i < old_n; i++)
        if (old[i] != 0)
            a->set[set_find(a, old[i])] = old[i];
    if (old) {
        free(old);
        g->bytes -= (size_t)old_n * sizeof *old;
    }
    g->bytes += (size_t)n * sizeof *s;
    return true;
}

static struct apex *apex_lookup(struct pd_dns_guard *g, const char *name, size_t len, uint64_t h)
{
    for (struct apex *a = g->slots[h & (g->nslots - 1)]; a; a = a->next)
        if (a->hash == h && a->len == len && memcmp(a->name, name, len) == 0)
            return a;
    return NULL;
}

/* Table full: drop the apex noted least recently (its window is the oldest). */
static void evict_oldest(struct pd_dns_guard *g)
{
    struct apex **victim = NULL;
    for (size_t i = 0; i < g->nslots; i++)
        for (struct apex **pp = &g->slots[i]; *pp; pp = &(*pp)->next)
            if (!victim || (*pp)->last_s < (*victim)->last_s)
                victim = pp;
    if (!victim)
        return;
    struct apex *a = *victim;
    *victim = a->next;
    apex_free(g, a);
    g->count--;
}

struct pd_dns_guard *pd_dns_guard_new(size_t max_apexes, struct pd_err *err)
{
    if (max_apexes < 1 || max_apexes > PD_DNS_GUARD_MAX_APEXES_LIMIT) {
        pd_err_set(err, "dns guard: max_apexes must be between 1 and %d, got %zu",
                   PD_DNS_GUARD_MAX_APEXES_LIMIT, max_apexes);
        return NULL;
    }
    struct pd_dns_guard *g = calloc(1, sizeof *g);
    if (!g) {
        pd_err_set(err, "dns guard: out of memory");
        return NULL;
    }
    size_t got = 0;
    while (got < sizeof g->key) {
        ssize_t r = getrandom(g->key + got, sizeof g->key - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            pd_err_set(err, "dns guard: getrandom failed: %s",
                       r < 0 ? strerror(errno) : "no bytes");
            free(g);
            return NULL;
        }
        got += (size_t)r;
    }
    g->nslots = 1;
    while (g->nslots < max_apexes) /* load <= 1: chains stay short */
        g->nslots *= 2;
    g->slots = calloc(g->nslots, sizeof *g->slots);
    if (!g->slots) {
        free(g);
        pd_err_set(err, "dns guard: out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&g->mu, NULL) != 0) {
        free(g->slots);
        free(g);
        pd_err_set(err, "dns guard: cannot create a mutex");
        return NULL;
    }
    g->max_apexes = max_apexes;
    g->bytes = sizeof *g + g->nslots * sizeof *g->slots;
    return g;
}

void pd_dns_guard_free(struct pd_dns_guard *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nslots; i++) {
        struct apex *a = g->slots[i];
        while (a) {
            struct apex *next = a->next;
            apex_free(g, a);
            a = next;
        }
    }
    free(g->slots);
    pthread_mutex_destroy(&g->mu);
    explicit_bzero(g->key, sizeof g->key);
    free(g);
}

enum note_result { NOTE_ALLOW, NOTE_LIMITED, NOTE_NOMEM };

static enum note_result note_locked(struct pd_dns_guard *g, const char *apex, size_t apex_len,
                                    uint64_t ah, uint64_t sh, uint32_t limit, int64_t now_s)
{
    int64_t window = window_of(now_s);
    struct apex *a = apex_lookup(g, apex, apex_len, ah);
    if (!a) {
        if (g->count >= g->max_apexes)
            evict_oldest(g);
        a = calloc(1, sizeof *a + apex_len + 1);
        if (!a)
            return NOTE_NOMEM;
        a->hash = ah;
        a->window = window;
        a->last_s = now_s;
        a->len = apex_len;
        memcpy(a->name, apex, apex_len);
        a->name[apex_len] = '\0';
        struct apex **head = &g->slots[ah & (g->nslots - 1)];
        a->next = *head;
        *head = a;
        g->count++;
        g->bytes += sizeof *a + apex_len + 1;
    } else if (window > a->window) {
        set_clear(g, a); /* a new minute: forget the previous one */
        a->window = window;
    }
    if (now_s > a->last_s)
        a->last_s = now_s;
    if (a->set && a->set[set_find(a, sh)] == sh)
        return NOTE_ALLOW; /* seen this minute: retries and resolvers' repeats pass */
    if (a->count >= limit)
        return NOTE_LIMITED;
    if (!set_reserve(g, a))
        return NOTE_NOMEM;
    a->set[set_find(a, sh)] = sh;
    a->count++;
    return NOTE_ALLOW;
}

bool pd_dns_guard_note(struct pd_dns_guard *g, const char *apex, size_t apex_len, const char *sub,
                       size_t sub_len, uint32_t limit, int64_t now_s, char *reason, size_t cap)
{
    if (reason && cap > 0)
        reason[0] = '\0';
    if (!g || !canonical(apex, apex_len) || limit > PD_DNS_GUARD_UNIQUE_MAX ||
        (sub_len > 0 && !canonical(sub, sub_len))) {
        say(reason, cap, "invalid arguments");
        return false;
    }
    if (limit == 0 || sub_len == 0)
        return true; /* unlimited, or an exact name: nothing to count */
    uint64_t ah = pd_dns_guard_siphash24(g->key, apex, apex_len);
    uint64_t sh = pd_dns_guard_siphash24(g->key, sub, sub_len);
    if (sh == 0)
        sh = 1; /* 0 marks an empty slot */
    pthread_mutex_lock(&g->mu);
    enum note_result r = note_locked(g, apex, apex_len, ah, sh, limit, now_s);
    pthread_mutex_unlock(&g->mu);
    switch (r) {
    case NOTE_ALLOW:
        return true;
    case NOTE_LIMITED:
        say(reason, cap, "more than %u distinct subdomains of %.*s in one minute", limit,
            (int)apex_len, apex);
        return false;
    case NOTE_NOMEM:
    default:
        say(reason, cap, "dns guard: out of memory");
        return false;
    }
}

size_t pd_dns_guard_count(struct pd_dns_guard *g)
{
    if (!g)
        return 0;
    pthread_mutex_lock(&g->mu);
    size_t n = g->count;
    pthread_mutex_unlock(&g->mu);
    return n;
}

size_t pd_dns_guard_bytes(struct pd_dns_guard *g)
{
    if (!g)
        return 0;
    pthread_mutex_lock(&g->mu);
    size_t n = g->bytes;
    pthread_mutex_unlock(&g->mu);
    return n;
}
