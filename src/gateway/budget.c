/* budget.c - hourly byte budgets with one-minute slots and an atomically written state file; see
 * budget.h for the contract. */
#include "gateway/budget.h"
#include "gateway/rule_key.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOTS PD_BUDGET_SLOTS
#define SLOT_S PD_BUDGET_SLOT_SECONDS
#define COUNT_MAX ((uint64_t)INT64_MAX) /* counters saturate here, so they fit a JSON integer */
#define INITIAL_NSLOTS 16
#define STATE_VERSION 1

/* One key's counters: two rings of one-minute slots. rings[head] is minute `minute`, rings[head -
 * i] (mod SLOTS) is minute `minute - i`. The sums are the rings' totals (saturating). */
struct entry {
    struct entry *next; /* hash chain */
    uint64_t hash;
    int64_t minute;
    unsigned head;
    uint64_t sent[SLOTS];
    uint64_t recv[SLOTS];
    uint64_t sum_sent;
    uint64_t sum_recv;
    size_t keylen;
    char key[]; /* keylen bytes + NUL */
};

struct pd_budget {
    pthread_mutex_t mu; /* guards everything below but path */
    pthread_mutex_t flush_mu; /* serialises flushes; never taken on the hot path */
    struct entry **tab; /* chained hash table, ntab a power of two */
    size_t ntab;
    size_t count;
    size_t max_keys;
    uint64_t gen; /* bumped by every charge that counted bytes */
    uint64_t flushed_gen; /* gen of the last snapshot written successfully */
    char *path; /* NULL: in memory only */
};

/* What a flush copies under the lock. */
struct snap {
    char key[PD_BUDGET_KEY_MAX + 1];
    int64_t minute;
    uint64_t sent[SLOTS]; /* oldest first: index i is minute `minute - (SLOTS - 1) + i` */
    uint64_t recv[SLOTS];
};

/* ---- small helpers ---- */

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return (b > COUNT_MAX - a) ? COUNT_MAX : a + b;
}

static int64_t minute_of(int64_t now_s)
{
    return now_s < 0 ? 0 : now_s / SLOT_S;
}

static const char *errstr(int e, char *buf, size_t cap)
{
    return strerror_r(e, buf, cap); /* GNU variant: returns the message */
}

static void recount(struct entry *e)
{
    uint64_t s = 0, r = 0;
    for (unsigned i = 0; i < SLOTS; i++) {
        s = sat_add(s, e->sent[i]);
        r = sat_add(r, e->recv[i]);
    }
    e->sum_sent = s;
    e->sum_recv = r;
}

/* Move the entry's window to minute m: slots that fall out are cleared. See budget.h for a clock
 * that moves back. */
static void advance(struct entry *e, int64_t m)
{
    if (m > e->minute) {
        int64_t d = m - e->minute;
        if (d >= SLOTS) {
            memset(e->sent, 0, sizeof e->sent);
            memset(e->recv, 0, sizeof e->recv);
        } else {
            for (int64_t i = 0; i < d; i++) {
                e->head = (e->head + 1) % SLOTS;
                e->sent[e->head] = 0;
                e->recv[e->head] = 0;
            }
        }
        e->minute = m;
        recount(e);
    } else if (e->minute - m >= SLOTS) {
        /* The clock jumped back by more than the window: keep the counts, restart time from here
         * (otherwise nothing would expire until the clock caught up again). */
        e->minute = m;
    }
}

static bool entry_empty(const struct entry *e)
{
    return e->sum_sent == 0 && e->sum_recv == 0;
}

static struct entry **chain_of(struct pd_budget *b, uint64_t h)
{
    return &b->tab[h & (b->ntab - 1)];
}

static struct entry *lookup(struct pd_budget *b, const char *key, size_t len, uint64_t h)
{
    for (struct entry *e = *chain_of(b, h); e; e = e->next)
        if (e->hash == h && e->keylen == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static void maybe_grow(struct pd_budget *b)
{
    if (b->count < b->ntab || b->ntab >= SIZE_MAX / 2 / sizeof(struct entry *))
        return;
    size_t n = b->ntab * 2;
    struct entry **t = calloc(n, sizeof *t);
    if (!t)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < b->ntab; i++) {
        struct entry *e = b->tab[i];
        while (e) {
            struct entry *next = e->next;
            struct entry **head = &t[e->hash & (n - 1)];
            e->next = *head;
            *head = e;
            e = next;
        }
    }
    free(b->tab);
    b->tab = t;
    b->ntab = n;
}

/* Drop keys whose window is empty at minute m: all of them (max == SIZE_MAX) or at most `max`. */
static size_t drop_empty(struct pd_budget *b, int64_t m, size_t max)
{
    size_t dropped = 0;
    for (size_t i = 0; i < b->ntab && dropped < max; i++) {
        struct entry **pp = &b->tab[i];
        while (*pp && dropped < max) {
            struct entry *e = *pp;
            advance(e, m);
            if (entry_empty(e)) {
                *pp = e->next;
                free(e);
                b->count--;
                dropped++;
            } else {
                pp = &e->next;
            }
        }
    }
    return dropped;
}

static bool have_room(struct pd_budget *b, int64_t m)
{
    return b->count < b->max_keys || drop_empty(b, m, 1) == 1;
}

static struct entry *new_entry(const char *key, size_t len, uint64_t h, int64_t m)
{
    struct entry *e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return NULL;
    e->hash = h;
    e->minute = m;
    e->head = 0;
    e->keylen = len;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    return e;
}

static void insert(struct pd_budget *b, struct entry *e)
{
    maybe_grow(b);
    struct entry **head = chain_of(b, e->hash);
    e->next = *head;
    *head = e;
    b->count++;
}

static bool limits_ok(const struct pd_budget_limits *l)
{
    return l && l->sent_per_hour <= PD_BUDGET_LIMIT_MAX &&
           l->received_per_hour <= PD_BUDGET_LIMIT_MAX;
}

/* The verdict for counts (sent, recv) under limits; fills why when exhausted. */
static enum pd_budget_verdict judge(const char *key, uint64_t sent, uint64_t recv,
                                    const struct pd_budget_limits *l, struct pd_err *why)
{
    const char *dir = NULL;
    uint64_t used = 0, limit = 0;
    if (l->sent_per_hour && sent >= l->sent_per_hour) {
        dir = "sent";
        used = sent;
        limit = l->sent_per_hour;
    } else if (l->received_per_hour && recv >= l->received_per_hour) {
        dir = "received";
        used = recv;
        limit = l->received_per_hour;
    }
    if (!dir)
        return PD_BUDGET_OK;
    pd_err_set(why,
               "byte budget for %s spent: %llu of %llu bytes %s in the last hour; resets gradually "
               "over the next hour",
               key, (unsigned long long)used, (unsigned long long)limit, dir);
    return PD_BUDGET_EXHAUSTED;
}

static void no_room(struct pd_err *why, const char *key, size_t max_keys, bool nomem)
{
    if (nomem)
        pd_err_set(why, "byte budget for %s cannot be counted: out of memory", key);
    else
        pd_err_set(why,
                   "byte budget for %s cannot be counted: all %zu budget keys (max_keys) have "
                   "bytes in the last hour",
                   key, max_keys);
}

/* Validate the common arguments; fills why. */
static bool args_ok(struct pd_budget *b, const char *key, const struct pd_budget_limits *limits,
                    size_t *len, struct pd_err *why)
{
    if (!b) {
        pd_err_set(why, "byte budget: no budget table");
        return false;
    }
    if (!pd_gw_rule_key_valid(key, len)) {
        pd_err_set(why, "byte budget: invalid key (expected 1..%d bytes of printable ASCII)",
                   PD_BUDGET_KEY_MAX);
        return false;
    }
    if (limits && !limits_ok(limits)) {
        pd_budget_validate(limits, why);
        return false;
    }
    return true;
}

/* ---- API ---- */

int pd_budget_validate(const struct pd_budget_limits *limits, struct pd_err *err)
{
    if (!limits) {
        pd_err_set(err, "byte budget: no limits");
        return -1;
    }
    if (limits->sent_per_hour > PD_BUDGET_LIMIT_MAX) {
        pd_err_set(err, "bytes_sent_per_hour must be 0 (no limit) or between 1 and %llu, got %llu",
                   (unsigned long long)PD_BUDGET_LIMIT_MAX,
                   (unsigned long long)limits->sent_per_hour);
        return -1;
    }
    if (limits->received_per_hour > PD_BUDGET_LIMIT_MAX) {
        pd_err_set(
            err, "bytes_received_per_hour must be 0 (no limit) or between 1 and %llu, got %llu",
            (unsigned long long)PD_BUDGET_LIMIT_MAX, (unsigned long long)limits->received_per_hour);
        return -1;
    }
    return 0;
}

enum pd_budget_verdict pd_budget_check(struct pd_budget *b, const char *key,
                                       const struct pd_budget_limits *limits, int64_t now_s,
                                       struct pd_err *why)
{
    size_t len = 0;
    if (!limits) {
        pd_err_set(why, "byte budget: no limits");
        return PD_BUDGET_INVALID;
    }
    if (!args_ok(b, key, limits, &len, why))
        return PD_BUDGET_INVALID;
    uint64_t h = pd_gw_rule_key_hash(key, len);
    int64_t m = minute_of(now_s);
    uint64_t sent = 0, recv = 0;
    bool room = true;
    pthread_mutex_lock(&b->mu);
    struct entry *e = lookup(b, key, len, h);
    if (e) {
        advance(e, m);
        sent = e->sum_sent;
        recv = e->sum_recv;
    } else {
        room = have_room(b, m);
    }
    size_t max_keys = b->max_keys;
    pthread_mutex_unlock(&b->mu);
    if (!room) {
        no_room(why, key, max_keys, false);
        return PD_BUDGET_NO_ROOM;
    }
    return judge(key, sent, recv, limits, why);
}

enum pd_budget_verdict pd_budget_charge(struct pd_budget *b, const char *key, uint64_t sent,
                                        uint64_t received, const struct pd_budget_limits *limits,
                                        int64_t now_s, struct pd_err *why)
{
    size_t len = 0;
    if (!limits) {
        pd_err_set(why, "byte budget: no limits");
        return PD_BUDGET_INVALID;
    }
    if (!args_ok(b, key, limits, &len, why))
        return PD_BUDGET_INVALID;
    uint64_t h = pd_gw_rule_key_hash(key, len);
    int64_t m = minute_of(now_s);
    uint64_t tot_sent = 0, tot_recv = 0;
    bool nomem = false;
    pthread_mutex_lock(&b->mu);
    struct entry *e = lookup(b, key, len, h);
    if (!e && have_room(b, m)) {
        e = new_entry(key, len, h, m);
        if (e)
            insert(b, e);
        else
            nomem = true;
    }
    if (e) {
        advance(e, m);
        e->sent[e->head] = sat_add(e->sent[e->head], sent);
        e->recv[e->head] = sat_add(e->recv[e->head], received);
        e->sum_sent = sat_add(e->sum_sent, sent);
        e->sum_recv = sat_add(e->sum_recv, received);
        if (sent || received)
            b->gen++;
        tot_sent = e->sum_sent;
        tot_recv = e->sum_recv;
    }
    size_t max_keys = b->max_keys;
    pthread_mutex_unlock(&b->mu);
    if (!e) {
        no_room(why, key, max_keys, nomem);
        return PD_BUDGET_NO_ROOM;
    }
    return judge(key, tot_sent, tot_recv, limits, why);
}

bool pd_budget_usage(struct pd_budget *b, const char *key, int64_t now_s, uint64_t *sent,
                     uint64_t *received)
{
    size_t len = 0;
    uint64_t s = 0, r = 0;
    if (!b || !pd_gw_rule_key_valid(key, &len)) {
        if (sent)
            *sent = 0;
        if (received)
            *received = 0;
        return false;
    }
    uint64_t h = pd_gw_rule_key_hash(key, len);
    pthread_mutex_lock(&b->mu);
    struct entry *e = lookup(b, key, len, h);
    if (e) {
        advance(e, minute_of(now_s));
        s = e->sum_sent;
        r = e->sum_recv;
    }
    pthread_mutex_unlock(&b->mu);
    if (sent)
        *sent = s;
    if (received)
        *received = r;
    return true;
}

size_t pd_budget_expire(struct pd_budget *b, int64_t now_s)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->mu);
    size_t n = drop_empty(b, minute_of(now_s), SIZE_MAX);
    pthread_mutex_unlock(&b->mu);
    return n;
}

size_t pd_budget_count(struct pd_budget *b)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->mu);
    size_t n = b->count;
    pthread_mutex_unlock(&b->mu);
    return n;
}

bool pd_budget_dirty(struct pd_budget *b)
{
    if (!b)
        return false;
    pthread_mutex_lock(&b->mu);
    bool d = b->gen != b->flushed_gen;
    pthread_mutex_unlock(&b->mu);
    return d;
}

const char *pd_budget_verdict_name(enum pd_budget_verdict v)
{
    switch (v) {
    case PD_BUDGET_OK:
        return "ok";
    case PD_BUDGET_EXHAUSTED:
        return "exhausted";
    case PD_BUDGET_NO_ROOM:
        return "no_room";
    case PD_BUDGET_INVALID:
        return "invalid";
    }
    return "unknown";
}

/* ---- loading ---- */

/* Read the whole file. 1 = read, 0 = missing, -1 = error (err filled). */
static int read_state(const char *path, char **out, size_t *outlen, struct pd_err *err)
{
    char eb[128];
    /* O_NONBLOCK: a FIFO at the path must not block the open; it is refused below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        pd_err_set(err, "%s: cannot open the budget state file: %s", path,
                   errstr(errno, eb, sizeof eb));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        pd_err_set(err, "%s: cannot stat the budget state file: %s", path,
                   errstr(errno, eb, sizeof eb));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        pd_err_set(err, "%s: the budget state file is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > PD_BUDGET_STATE_MAX_BYTES) {
        pd_err_set(err, "%s: the budget state file is larger than %u bytes", path,
                   PD_BUDGET_STATE_MAX_BYTES);
        close(fd);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1; /* +1 to notice a file that grew meanwhile */
    char *buf = malloc(cap);
    if (!buf) {
        pd_err_set(err, "%s: out of memory reading the budget state file", path);
        close(fd);
        return -1;
    }
    size_t len = 0;
    for (;;) {
        if (len == cap) {
            pd_err_set(err, "%s: the budget state file changed while being read", path);
            free(buf);
            close(fd);
            return -1;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            pd_err_set(err, "%s: cannot read the budget state file: %s", path,
                       errstr(errno, eb, sizeof eb));
            free(buf);
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    *out = buf;
    *outlen = len;
    return 1;
}

/* Fill one ring from a [[slot_start, bytes], ...] array. Returns 0 or -1 with err. */
static int load_ring(const char *path, const char *key, const char *field, const json_t *arr,
                     struct entry *e, uint64_t *ring, struct pd_err *err)
{
    if (!json_is_array(arr)) {
        pd_err_set(err, "%s: invalid budget state: budgets.\"%s\".%s: expected an array", path, key,
                   field);
        return -1;
    }
    size_t i;
    const json_t *pair;
    json_array_foreach(arr, i, pair)
    {
        const json_t *js = json_array_get(pair, 0);
        const json_t *jb = json_array_get(pair, 1);
        if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_integer(js) ||
            !json_is_integer(jb)) {
            pd_err_set(err,
                       "%s: invalid budget state: budgets.\"%s\".%s[%zu]: expected [slot_start, "
                       "bytes] (two integers)",
                       path, key, field, i);
            return -1;
        }
        json_int_t start = json_integer_value(js);
        json_int_t bytes = json_integer_value(jb);
        int64_t newest = e->minute * SLOT_S;
        if (start % SLOT_S != 0 || start > newest || start < newest - (SLOTS - 1) * SLOT_S) {
            pd_err_set(err,
                       "%s: invalid budget state: budgets.\"%s\".%s[%zu]: slot %lld is not a "
                       "multiple of %d within [slot - %d, slot] (slot is %lld)",
                       path, key, field, i, (long long)start, SLOT_S, (SLOTS - 1) * SLOT_S,
                       (long long)newest);
            return -1;
        }
        if (bytes < 1) {
            pd_err_set(err,
                       "%s: invalid budget state: budgets.\"%s\".%s[%zu]: the byte count must be "
                       "positive",
                       path, key, field, i);
            return -1;
        }
        unsigned back = (unsigned)(e->minute - start / SLOT_S); /* 0..SLOTS-1 */
        unsigned pos = (e->head + SLOTS - back) % SLOTS;
        if (ring[pos] != 0) { /* counts are positive, so 0 means "not seen yet" */
            pd_err_set(err,
                       "%s: invalid budget state: budgets.\"%s\".%s[%zu]: slot %lld listed twice",
                       path, key, field, i, (long long)start);
            return -1;
        }
        ring[pos] = (uint64_t)bytes; /* the saturation bound is INT64_MAX: always fits */
    }
    return 0;
}

/* Build one entry from budgets[key]. Returns the entry, or NULL with err. */
static struct entry *load_entry(const char *path, const char *key, const json_t *obj,
                                struct pd_err *err)
{
    size_t len = 0;
    if (!pd_gw_rule_key_valid(key, &len)) {
        pd_err_set(err,
                   "%s: invalid budget state: budgets: a key is not 1..%d bytes of printable ASCII",
                   path, PD_BUDGET_KEY_MAX);
        return NULL;
    }
    if (!json_is_object(obj)) {
        pd_err_set(err, "%s: invalid budget state: budgets.\"%s\": expected an object", path, key);
        return NULL;
    }
    const char *f;
    const json_t *v;
    json_object_foreach((json_t *)obj, f, v)
    {
        if (strcmp(f, "slot") != 0 && strcmp(f, "sent") != 0 && strcmp(f, "received") != 0) {
            pd_err_set(err,
                       "%s: invalid budget state: budgets.\"%s\": unknown field \"%s\" (expected "
                       "slot, sent, received)",
                       path, key, f);
            return NULL;
        }
    }
    const json_t *slot = json_object_get(obj, "slot");
    if (!json_is_integer(slot) || json_integer_value(slot) < 0 ||
        json_integer_value(slot) % SLOT_S != 0) {
        pd_err_set(err,
                   "%s: invalid budget state: budgets.\"%s\".slot: expected a non-negative "
                   "multiple of %d",
                   path, key, SLOT_S);
        return NULL;
    }
    struct entry *e = new_entry(key, len, pd_gw_rule_key_hash(key, len), json_integer_value(slot) / SLOT_S);
    if (!e) {
        pd_err_set(err, "%s: out of memory loading the budget state", path);
        return NULL;
    }
    const json_t *sent = json_object_get(obj, "sent");
    const json_t *recv = json_object_get(obj, "received");
    if (!sent || !recv) {
        pd_err_set(err, "%s: invalid budget state: budgets.\"%s\": missing \"%s\"", path, key,
                   !sent ? "sent" : "received");
        free(e);
        return NULL;
    }
    if (load_ring(path, key, "sent", sent, e, e->sent, err) != 0 ||
        load_ring(path, key, "received", recv, e, e->recv, err) != 0) {
        free(e);
        return NULL;
    }
    recount(e);
    return e;
}

static int load_tree(struct pd_budget *b, const json_t *root, struct pd_err *err)
{
    const char *path = b->path;
    if (!json_is_object(root)) {
        pd_err_set(err, "%s: invalid budget state: expected a JSON object", path);
        return -1;
    }
    const char *f;
    const json_t *v;
    json_object_foreach((json_t *)root, f, v)
    {
        if (strcmp(f, "version") != 0 && strcmp(f, "slot_seconds") != 0 &&
            strcmp(f, "budgets") != 0) {
            pd_err_set(err,
                       "%s: invalid budget state: unknown field \"%s\" (expected version, "
                       "slot_seconds, budgets)",
                       path, f);
            return -1;
        }
    }
    const json_t *ver = json_object_get(root, "version");
    if (!json_is_integer(ver)) {
        pd_err_set(err, "%s: invalid budget state: \"version\" is missing or not an integer", path);
        return -1;
    }
    if (json_integer_value(ver) != STATE_VERSION) {
        pd_err_set(err, "%s: unsupported budget state version %lld (this gateway reads version %d)",
                   path, (long long)json_integer_value(ver), STATE_VERSION);
        return -1;
    }
    const json_t *ss = json_object_get(root, "slot_seconds");
    if (!json_is_integer(ss) || json_integer_value(ss) != SLOT_S) {
        pd_err_set(err, "%s: invalid budget state: \"slot_seconds\" must be %d", path, SLOT_S);
        return -1;
    }
    const json_t *budgets = json_object_get(root, "budgets");
    if (!json_is_object(budgets)) {
        pd_err_set(err, "%s: invalid budget state: \"budgets\" is missing or not an object", path);
        return -1;
    }
    const char *key;
    const json_t *obj;
    json_object_foreach((json_t *)budgets, key, obj)
    {
        struct entry *e = load_entry(path, key, obj, err);
        if (!e)
            return -1;
        if (entry_empty(e)) {
            free(e); /* nothing to remember */
            continue;
        }
        if (b->count >= b->max_keys) {
            free(e);
            pd_err_set(err,
                       "%s: the budget state holds more than max_keys (%zu) keys with bytes in "
                       "their window; raise max_keys",
                       path, b->max_keys);
            return -1;
        }
        insert(b, e);
    }
    return 0;
}

static int load(struct pd_budget *b, struct pd_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    int r = read_state(b->path, &buf, &len, err);
    if (r <= 0)
        return r;
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!root) {
        pd_err_set(err, "%s:%d:%d: the budget state file is not valid JSON: %s", b->path, jerr.line,
                   jerr.column, jerr.text);
        return -1;
    }
    r = load_tree(b, root, err);
    json_decref(root);
    return r;
}

static void free_entries(struct pd_budget *b)
{
    for (size_t i = 0; i < b->ntab; i++) {
        struct entry *e = b->tab[i];
        while (e) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
        b->tab[i] = NULL;
    }
    b->count = 0;
}

struct pd_budget *pd_budget_open(const char *state_path, size_t max_keys, struct pd_err *err)
{
    if (max_keys < 1 || max_keys > PD_BUDGET_MAX_KEYS_LIMIT) {
        pd_err_set(err, "byte budgets: max_keys must be between 1 and %d, got %zu",
                   PD_BUDGET_MAX_KEYS_LIMIT, max_keys);
        return NULL;
    }
    if (state_path && state_path[0] == '\0') {
        pd_err_set(err, "byte budgets: the state file path is empty");
        return NULL;
    }
    struct pd_budget *b = calloc(1, sizeof *b);
    if (!b) {
        pd_err_set(err, "byte budgets: out of memory");
        return NULL;
    }
    b->max_keys = max_keys;
    b->ntab = INITIAL_NSLOTS;
    b->tab = calloc(b->ntab, sizeof *b->tab);
    if (state_path)
        b->path = strdup(state_path);
    if (!b->tab || (state_path && !b->path)) {
        free(b->tab);
        free(b->path);
        free(b);
        pd_err_set(err, "byte budgets: out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b->tab);
        free(b->path);
        free(b);
        pd_err_set(err, "byte budgets: cannot create a mutex");
        return NULL;
    }
    if (pthread_mutex_init(&b->flush_mu, NULL) != 0) {
        pthread_mutex_destroy(&b->mu);
        free(b->tab);
        free(b->path);
        free(b);
        pd_err_set(err, "byte budgets: cannot create a mutex");
        return NULL;
    }
    if (b->path && load(b, err) != 0) {
        pd_budget_free(b);
        return NULL;
    }
    return b;
}

void pd_budget_free(struct pd_budget *b)
{
    if (!b)
        return;
    free_entries(b);
    free(b->tab);
    free(b->path);
    pthread_mutex_destroy(&b->flush_mu);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* ---- flushing ---- */

/* Copy every key with bytes in its window, under the lock. NULL with *n == SIZE_MAX on OOM. */
static struct snap *snapshot(struct pd_budget *b, size_t *n, uint64_t *gen)
{
    pthread_mutex_lock(&b->mu);
    size_t cnt = 0;
    for (size_t i = 0; i < b->ntab; i++)
        for (struct entry *e = b->tab[i]; e; e = e->next)
            cnt += !entry_empty(e);
    struct snap *s = cnt ? calloc(cnt, sizeof *s) : NULL;
    if (cnt && !s) {
        pthread_mutex_unlock(&b->mu);
        *n = SIZE_MAX;
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < b->ntab; i++) {
        for (struct entry *e = b->tab[i]; e; e = e->next) {
            if (entry_empty(e))
                continue;
            memcpy(s[k].key, e->key, e->keylen + 1);
            s[k].minute = e->minute;
            for (unsigned j = 0; j < SLOTS; j++) {
                unsigned pos = (e->head + 1 + j) % SLOTS; /* oldest first */
                s[k].sent[j] = e->sent[pos];
                s[k].recv[j] = e->recv[pos];
            }
            k++;
        }
    }
    *gen = b->gen;
    pthread_mutex_unlock(&b->mu);
    *n = cnt;
    return s;
}

static json_t *ring_json(const struct snap *s, const uint64_t *ring)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (unsigned j = 0; j < SLOTS; j++) {
        if (!ring[j])
            continue;
        int64_t start = (s->minute - (SLOTS - 1) + (int64_t)j) * SLOT_S;
        json_t *pair = json_pack("[II]", (json_int_t)start, (json_int_t)ring[j]);
        if (!pair || json_array_append_new(arr, pair) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* The state file text (NUL-terminated, caller frees), or NULL on OOM. */
static char *render(const struct snap *s, size_t n)
{
    json_t *budgets = json_object();
    json_t *root =
        json_pack("{sisiso}", "version", STATE_VERSION, "slot_seconds", SLOT_S, "budgets", budgets);
    if (!root)
        return NULL; /* json_pack "o" steals budgets even on failure */
    for (size_t i = 0; i < n; i++) {
        json_t *sent = ring_json(&s[i], s[i].sent);
        json_t *recv = ring_json(&s[i], s[i].recv);
        json_t *obj = (sent && recv)
                          ? json_pack("{sIsOsO}", "slot", (json_int_t)(s[i].minute * SLOT_S),
                                      "sent", sent, "received", recv)
                          : NULL;
        json_decref(sent);
        json_decref(recv);
        if (!obj || json_object_set_new(budgets, s[i].key, obj) != 0) {
            json_decref(root);
            return NULL;
        }
    }
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    return text;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The directory part of path ("." when there is none). Caller frees; NULL on OOM. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* temp file in the same directory -> fsync -> rename over path -> fsync the directory. */
static int write_atomic(const char *path, const char *data, size_t len, struct pd_err *err)
{
    char eb[128];
    size_t pl = strlen(path);
    char *tmp = malloc(pl + sizeof ".tmp-XXXXXX");
    char *dir = dir_of(path);
    int fd = -1, dfd = -1, rc = -1;
    bool created = false;
    if (!tmp || !dir) {
        pd_err_set(err, "%s: out of memory writing the budget state", path);
        goto out;
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp-XXXXXX", sizeof ".tmp-XXXXXX");
    fd = mkostemp(tmp, O_CLOEXEC); /* created 0600 */
    if (fd < 0) {
        pd_err_set(err, "%s: cannot create a temporary file next to it: %s", path,
                   errstr(errno, eb, sizeof eb));
        goto out;
    }
    created = true;
    if (fchmod(fd, 0600) != 0) {
        pd_err_set(err, "%s: cannot set mode 0600 on %s: %s", path, tmp,
                   errstr(errno, eb, sizeof eb));
        goto out;
    }
    if (write_all(fd, data, len) != 0) {
        pd_err_set(err, "%s: cannot write %s: %s", path, tmp, errstr(errno, eb, sizeof eb));
        goto out;
    }
    if (fsync(fd) != 0) {
        pd_err_set(err, "%s: cannot fsync %s: %s", path, tmp, errstr(errno, eb, sizeof eb));
        goto out;
    }
    int c = close(fd);
    fd = -1;
    if (c != 0) {
        pd_err_set(err, "%s: cannot close %s: %s", path, tmp, errstr(errno, eb, sizeof eb));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        pd_err_set(err, "%s: cannot rename %s over it: %s", path, tmp,
                   errstr(errno, eb, sizeof eb));
        goto out;
    }
    created = false; /* the temp name is gone */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        pd_err_set(err, "%s: written, but cannot fsync its directory %s: %s", path, dir,
                   errstr(errno, eb, sizeof eb));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (created)
        unlink(tmp);
    free(tmp);
    free(dir);
    return rc;
}

int pd_budget_flush(struct pd_budget *b, struct pd_err *err)
{
    if (!b) {
        pd_err_set(err, "byte budgets: no budget table");
        return -1;
    }
    if (!b->path)
        return 0;
    pthread_mutex_lock(&b->flush_mu);
    int rc = -1;
    size_t n = 0;
    uint64_t gen = 0;
    struct snap *s = snapshot(b, &n, &gen);
    char *text = NULL;
    if (n == SIZE_MAX) {
        pd_err_set(err, "%s: out of memory writing the budget state", b->path);
        goto out;
    }
    text = render(s, n);
    if (!text) {
        pd_err_set(err, "%s: out of memory writing the budget state", b->path);
        goto out;
    }
    if (write_atomic(b->path, text, strlen(text), err) != 0)
        goto out;
    pthread_mutex_lock(&b->mu);
    b->flushed_gen = gen;
    pthread_mutex_unlock(&b->mu);
    rc = 0;
out:
    free(text);
    free(s);
    pthread_mutex_unlock(&b->flush_mu);
    return rc;
}
