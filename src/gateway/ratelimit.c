/* ratelimit.c - token buckets per rule key; see ratelimit.h for the contract. */
#include "gateway/ratelimit.h"
#include "gateway/rule_key.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One token in bucket units. A token is 60000 units so that a refill of rpm/60 tokens per second is
 * rpm units per millisecond: rpm/60 tokens/s = rpm/60 * 60000 units / 1000 ms = rpm units/ms. */
#define UNITS_PER_TOKEN INT64_C(60000)
#define INITIAL_SLOTS 16

struct bucket {
    struct bucket *next; /* hash chain */
    uint64_t hash;
    int64_t level; /* units, 0..burst * UNITS_PER_TOKEN */
    int64_t last_ms; /* time of the last refill */
    uint32_t rpm; /* numbers the bucket was last used with */
    uint32_t burst;
    bool live; /* scratch mark for prune */
    size_t keylen;
    char key[]; /* keylen bytes + NUL */
};

struct pd_ratelimit {
    pthread_mutex_t mu;
    struct bucket **slots; /* chained hash table, nslots a power of two */
    size_t nslots;
    size_t count;
    size_t max_keys;
};

/* FNV-1a. Keys are rule keys from the operator's configuration, not attacker-chosen strings, so a
 * keyed hash buys nothing here; chains stay short because the table grows with the key count. */
static int64_t capacity(uint32_t burst)
{
    return (int64_t)burst * UNITS_PER_TOKEN;
}

/* Bring the bucket to now_ms under its stored numbers. Exact: refilling a then b milliseconds
 * equals refilling a + b, because min(cap, min(cap, L + a*r) + b*r) == min(cap, L + (a+b)*r) for r
 * >= 0. */
static void refill(struct bucket *b, int64_t now_ms)
{
    if (now_ms <= b->last_ms)
        return; /* no time elapsed (or another worker's clock read was later) */
    int64_t elapsed = now_ms - b->last_ms;
    b->last_ms = now_ms;
    int64_t cap = capacity(b->burst);
    if (b->level >= cap)
        return;
    int64_t missing = cap - b->level;
    /* elapsed * rpm could overflow for a bucket idle for ages: compare before multiplying. */
    if (elapsed >= missing / (int64_t)b->rpm + 1)
        b->level = cap;
    else
        b->level += elapsed * (int64_t)b->rpm; /* < missing, so no overflow and <= cap */
}

/* Whole seconds, rounded up and at least 1, until `units` more units have been refilled at rpm. */
static uint32_t seconds_until(int64_t units, uint32_t rpm)
{
    if (units <= 0)
        return 1;
    int64_t per_second = (int64_t)rpm * 1000; /* units refilled per second */
    int64_t s = (units + per_second - 1) / per_second;
    if (s < 1)
        s = 1;
    if (s > UINT32_MAX)
        s = UINT32_MAX;
    return (uint32_t)s;
}

/* Whole seconds, rounded up and at least 1, in ms milliseconds. */
static uint32_t ms_to_seconds(int64_t ms)
{
    int64_t s = ms <= 0 ? 1 : ms / 1000 + (ms % 1000 != 0);
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* Milliseconds until the bucket is full again (0 if it is full). */
static int64_t ms_until_full(const struct bucket *b)
{
    int64_t missing = capacity(b->burst) - b->level;
    if (missing <= 0)
        return 0;
    return (missing + (int64_t)b->rpm - 1) / (int64_t)b->rpm;
}

static struct bucket **chain_of(struct pd_ratelimit *rl, uint64_t h)
{
    return &rl->slots[h & (rl->nslots - 1)];
}

static struct bucket *lookup(struct pd_ratelimit *rl, const char *key, size_t len, uint64_t h)
{
    for (struct bucket *b = *chain_of(rl, h); b; b = b->next)
        if (b->hash == h && b->keylen == len && memcmp(b->key, key, len) == 0)
            return b;
    return NULL;
}

/* Double the table when the load reaches 1. On allocation failure the table stays as it is (longer
 * chains, still correct). */
static void maybe_grow(struct pd_ratelimit *rl)
{
    if (rl->count < rl->nslots || rl->nslots >= SIZE_MAX / 2 / sizeof(struct bucket *))
        return;
    size_t n = rl->nslots * 2;
    struct bucket **s = calloc(n, sizeof *s);
    if (!s)
        return;
    for (size_t i = 0; i < rl->nslots; i++) {
        struct bucket *b = rl->slots[i];
        while (b) {
            struct bucket *next = b->next;
            struct bucket **head = &s[b->hash & (n - 1)];
            b->next = *head;
            *head = b;
            b = next;
        }
    }
    free(rl->slots);
    rl->slots = s;
    rl->nslots = n;
}

/* At the key limit: drop one bucket that has refilled to its burst (see the header). Returns true
 * if one was dropped; otherwise *wait_ms is the time until the first bucket will be full. */
static bool reclaim_full(struct pd_ratelimit *rl, int64_t now_ms, int64_t *wait_ms)
{
    int64_t best = INT64_MAX;
    for (size_t i = 0; i < rl->nslots; i++) {
        for (struct bucket **pp = &rl->slots[i]; *pp; pp = &(*pp)->next) {
            struct bucket *b = *pp;
            refill(b, now_ms);
            int64_t w = ms_until_full(b);
            if (w == 0) {
                *pp = b->next;
                free(b);
                rl->count--;
                return true;
            }
            if (w < best)
                best = w;
        }
    }
    *wait_ms = best;
    return false;
}

struct pd_ratelimit *pd_ratelimit_new(size_t max_keys, struct pd_err *err)
{
    if (max_keys < 1 || max_keys > PD_RATELIMIT_MAX_KEYS_LIMIT) {
        pd_err_set(err, "rate limiter: max_keys must be between 1 and %d, got %zu",
                   PD_RATELIMIT_MAX_KEYS_LIMIT, max_keys);
        return NULL;
    }
    struct pd_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl) {
        pd_err_set(err, "rate limiter: out of memory");
        return NULL;
    }
    rl->nslots = INITIAL_SLOTS;
    rl->slots = calloc(rl->nslots, sizeof *rl->slots);
    if (!rl->slots) {
        free(rl);
        pd_err_set(err, "rate limiter: out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&rl->mu, NULL) != 0) {
        free(rl->slots);
        free(rl);
        pd_err_set(err, "rate limiter: cannot create a mutex");
        return NULL;
    }
    rl->max_keys = max_keys;
    return rl;
}

void pd_ratelimit_free(struct pd_ratelimit *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < rl->nslots; i++) {
        struct bucket *b = rl->slots[i];
        while (b) {
            struct bucket *next = b->next;
            free(b);
            b = next;
        }
    }
    free(rl->slots);
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

int pd_ratelimit_validate(int64_t requests_per_minute, int64_t burst_size, struct pd_err *err)
{
    if (requests_per_minute < PD_RATELIMIT_RPM_MIN || requests_per_minute > PD_RATELIMIT_RPM_MAX) {
        pd_err_set(err, "requests_per_minute must be between %d and %d, got %lld",
                   PD_RATELIMIT_RPM_MIN, PD_RATELIMIT_RPM_MAX, (long long)requests_per_minute);
        return -1;
    }
    if (burst_size < PD_RATELIMIT_BURST_MIN || burst_size > PD_RATELIMIT_BURST_MAX) {
        pd_err_set(err, "burst_size must be between %d and %d, got %lld", PD_RATELIMIT_BURST_MIN,
                   PD_RATELIMIT_BURST_MAX, (long long)burst_size);
        return -1;
    }
    return 0;
}

/* Returns the verdict with the lock held by the caller. */
static enum pd_rl_verdict take_locked(struct pd_ratelimit *rl, const char *key, size_t len,
                                      uint64_t h, uint32_t rpm, uint32_t burst, int64_t now_ms,
                                      uint32_t *retry)
{
    struct bucket *b = lookup(rl, key, len, h);
    if (!b) {
        if (rl->count >= rl->max_keys) {
            int64_t wait_ms = 0;
            if (!reclaim_full(rl, now_ms, &wait_ms)) {
                *retry = ms_to_seconds(wait_ms);
                return PD_RL_TOO_MANY_KEYS;
            }
        }
        b = malloc(sizeof *b + len + 1);
        if (!b) {
            *retry = 1;
            return PD_RL_NOMEM;
        }
        b->hash = h;
        b->rpm = rpm;
        b->burst = burst;
        b->level = capacity(burst);
        b->last_ms = now_ms;
        b->live = false;
        b->keylen = len;
        memcpy(b->key, key, len);
        b->key[len] = '\0';
        maybe_grow(rl);
        struct bucket **head = chain_of(rl, h);
        b->next = *head;
        *head = b;
        rl->count++;
    } else {
        refill(b, now_ms);
        if (b->rpm != rpm || b->burst != burst) {
            b->rpm = rpm;
            b->burst = burst;
            if (b->level > capacity(burst))
                b->level = capacity(burst);
        }
    }
    if (b->level >= UNITS_PER_TOKEN) {
        b->level -= UNITS_PER_TOKEN;
        *retry = 0;
        return PD_RL_ALLOW;
    }
    *retry = seconds_until(UNITS_PER_TOKEN - b->level, b->rpm);
    return PD_RL_LIMITED;
}

enum pd_rl_verdict pd_ratelimit_take(struct pd_ratelimit *rl, const char *key,
                                     uint32_t requests_per_minute, uint32_t burst_size,
                                     int64_t now_ms, uint32_t *retry_after_s)
{
    uint32_t retry = 1;
    enum pd_rl_verdict v = PD_RL_INVALID;
    size_t len = 0;
    if (rl && pd_gw_rule_key_valid(key, &len) &&
        pd_ratelimit_validate(requests_per_minute, burst_size, NULL) == 0) {
        uint64_t h = pd_gw_rule_key_hash(key, len);
        pthread_mutex_lock(&rl->mu);
        v = take_locked(rl, key, len, h, requests_per_minute, burst_size, now_ms, &retry);
        pthread_mutex_unlock(&rl->mu);
    }
    if (retry_after_s)
        *retry_after_s = retry;
    return v;
}

size_t pd_ratelimit_prune(struct pd_ratelimit *rl, const char *const *live_keys, size_t nlive)
{
    if (!rl)
        return 0;
    size_t dropped = 0;
    pthread_mutex_lock(&rl->mu);
    /* Mark, then sweep: O(buckets + live keys) instead of comparing every pair. */
    for (size_t i = 0; i < nlive; i++) {
        size_t len = 0;
        if (!live_keys || !pd_gw_rule_key_valid(live_keys[i], &len))
            continue;
        struct bucket *b = lookup(rl, live_keys[i], len, pd_gw_rule_key_hash(live_keys[i], len));
        if (b)
            b->live = true;
    }
    for (size_t i = 0; i < rl->nslots; i++) {
        struct bucket **pp = &rl->slots[i];
        while (*pp) {
            struct bucket *b = *pp;
            if (b->live) {
                b->live = false;
                pp = &b->next;
            } else {
                *pp = b->next;
                free(b);
                rl->count--;
                dropped++;
            }
        }
    }
    pthread_mutex_unlock(&rl->mu);
    return dropped;
}

size_t pd_ratelimit_count(struct pd_ratelimit *rl)
{
    if (!rl)
        return 0;
    pthread_mutex_lock(&rl->mu);
    size_t n = rl->count;
    pthread_mutex_unlock(&rl->mu);
    return n;
}

const char *pd_rl_verdict_name(enum pd_rl_verdict v)
{
    switch (v) {
    case PD_RL_ALLOW:
        return "allow";
    case PD_RL_LIMITED:
        return "limited";
    case PD_RL_TOO_MANY_KEYS:
        return "too_many_keys";
    case PD_RL_NOMEM:
        return "nomem";
    case PD_RL_INVALID:
        return "invalid";
    }
    return "unknown";
}
