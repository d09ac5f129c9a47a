/*
 * metrics.c - Prometheus registry and text exposition (see metrics.h).
 *
 * Layout: a registry is a linked list of families in registration order, guarded by a mutex for
 * appends and rendering. A family keeps its children in an array in creation order (for rendering)
 * plus an open-addressing hash index over the children's keys (for lookup), both under a rwlock. A
 * child's key is its normalised label values joined by 0xFF (a byte that never occurs in valid
 * UTF-8), stored in the same allocation as the child; histogram bucket counters live there too.
 * Children are never moved or freed before the registry, so their pointers can be cached.
 *
 * Values are C11 atomics updated with relaxed ordering: a counter is an atomic uint64, a gauge and
 * a histogram sum are atomic uint64 holding the bits of a double and updated with a CAS loop, a
 * histogram bucket is an atomic uint64 holding the non-cumulative count of that bucket (cumulated
 * at render time).
 */
#include "core/metrics.h"
#include "core/utf8.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_SEP 0xFF /* never occurs in valid UTF-8 */
#define KEY_MAX (PD_METRICS_MAX_LABELS * (PD_METRICS_LABEL_VALUE_MAX + 1))
#define BUF_MIN_CAP 4096

struct pd_metric {
    struct pd_metric_family *fam;
    enum pd_metric_type type;
    _Atomic uint64_t value; /* counter: count; gauge: double bits; histogram: sum as double bits */
    double (*fn)(void *arg); /* gauge callback, guarded by the family lock */
    void *fn_arg;
    uint64_t hash;
    size_t key_len;
    const char *key; /* points into this allocation, after the buckets */
    _Atomic uint64_t buckets[]; /* histogram: nbounds + 1 per-bucket counts (last is +Inf) */
};

struct pd_metric_family {
    struct pd_metrics *reg;
    struct pd_metric_family *next;
    enum pd_metric_type type;
    char *name;
    char *help;
    size_t nlabels;
    char *labels[PD_METRICS_MAX_LABELS];
    size_t nbounds;
    double *bounds;
    size_t max_children;

    pthread_rwlock_t lock;
    struct pd_metric **children; /* creation order */
    size_t nchildren;
    size_t children_cap;
    struct pd_metric **index; /* open addressing, power-of-two size, NULL = empty */
    size_t index_cap;
    struct pd_metric *overflow; /* labelled families only */
    _Atomic bool overflow_used;
};

struct pd_metrics {
    pthread_mutex_t lock;
    struct pd_metric_family *head;
    struct pd_metric_family *tail;
};

static const char *const type_names[] = {"counter", "gauge", "histogram"};

/* ---- small helpers
 * ------------------------------------------------------------------------------- */

static uint64_t dbl_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bits_dbl(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void atomic_add_dbl(_Atomic uint64_t *p, double d)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, dbl_bits(bits_dbl(old) + d),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/*
 * Append the normalised form of v to key[*len..]: valid UTF-8 is copied, each invalid byte becomes
 * U+FFFD, and the value stops at the last whole character that fits in PD_METRICS_LABEL_VALUE_MAX
 * bytes.
 */
static void normalise_value(const char *v, char *key, size_t *len)
{
    static const char repl[] = "\xEF\xBF\xBD";
    size_t start = *len;
    size_t n = strlen(v);
    for (size_t i = 0; i < n;) {
        size_t l = pd_utf8_seq_len((const unsigned char *)v + i, n - i);
        const char *src = l ? v + i : repl;
        size_t out = l ? l : 3;
        if (*len - start + out > PD_METRICS_LABEL_VALUE_MAX)
            break;
        memcpy(key + *len, src, out);
        *len += out;
        i += l ? l : 1;
    }
}

/* ---- validation
 * ---------------------------------------------------------------------------------- */

static bool valid_name(const char *s, bool colon_ok)
{
    size_t n = strlen(s);
    if (n == 0 || n > PD_METRICS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon_ok && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static int validate_opts(enum pd_metric_type type, const struct pd_metric_opts *o,
                         struct pd_err *err)
{
    if (!o->name || !valid_name(o->name, true)) {
        pd_err_set(
            err,
            "metric name '%.*s' is invalid: expected [a-zA-Z_:][a-zA-Z0-9_:]* of at most %d bytes",
            64, o->name ? o->name : "(null)", PD_METRICS_NAME_MAX);
        return -1;
    }
    if (type == PD_METRIC_COUNTER && !ends_with(o->name, "_total")) {
        pd_err_set(err, "counter name '%s' must end in _total", o->name);
        return -1;
    }
    if (!o->help || o->help[0] == '\0') {
        pd_err_set(err, "metric '%s' needs a HELP text", o->name);
        return -1;
    }
    size_t hl = strlen(o->help);
    if (hl > PD_METRICS_HELP_MAX || !pd_utf8_valid(o->help, hl)) {
        pd_err_set(err, "HELP text of metric '%s' must be valid UTF-8 of at most %d bytes", o->name,
                   PD_METRICS_HELP_MAX);
        return -1;
    }
    if (o->nlabels > 0 && !o->labels) {
        pd_err_set(err, "metric '%s': %zu label names announced but none given", o->name,
                   o->nlabels);
        return -1;
    }
    if (o->nlabels > PD_METRICS_MAX_LABELS) {
        pd_err_set(err, "metric '%s' has %zu label names: expected at most %d", o->name, o->nlabels,
                   PD_METRICS_MAX_LABELS);
        return -1;
    }
    for (size_t i = 0; i < o->nlabels; i++) {
        const char *l = o->labels[i];
        if (!l || !valid_name(l, false)) {
            pd_err_set(
                err, "label name '%.*s' of metric '%s' is invalid: expected [a-zA-Z_][a-zA-Z0-9_]*",
                64, l ? l : "(null)", o->name);
            return -1;
        }
        if (l[0] == '_' && l[1] == '_') {
            pd_err_set(err, "label name '%s' of metric '%s' is invalid: the __ prefix is reserved",
                       l, o->name);
            return -1;
        }
        if (type == PD_METRIC_HISTOGRAM && strcmp(l, "le") == 0) {
            pd_err_set(err, "label name 'le' of histogram '%s' is reserved for bucket bounds",
                       o->name);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(l, o->labels[j]) == 0) {
                pd_err_set(err, "label name '%s' appears twice in metric '%s'", l, o->name);
                return -1;
            }
        }
    }
    if (o->max_children > PD_METRICS_MAX_CHILDREN_LIMIT) {
        pd_err_set(err, "metric '%s': max_children %zu exceeds %d", o->name, o->max_children,
                   PD_METRICS_MAX_CHILDREN_LIMIT);
        return -1;
    }
    if (type == PD_METRIC_HISTOGRAM) {
        if (!o->buckets || o->nbuckets == 0 || o->nbuckets > PD_METRICS_MAX_BUCKETS) {
            pd_err_set(err, "histogram '%s' needs 1 to %d bucket bounds", o->name,
                       PD_METRICS_MAX_BUCKETS);
            return -1;
        }
        for (size_t i = 0; i < o->nbuckets; i++) {
            if (!isfinite(o->buckets[i]) || (i > 0 && !(o->buckets[i] > o->buckets[i - 1]))) {
                pd_err_set(err,
                           "histogram '%s': bucket bound %zu is invalid: bounds must be finite and "
                           "strictly "
                           "increasing (+Inf is implicit)",
                           o->name, i);
                return -1;
            }
        }
    } else if (o->nbuckets || o->buckets) {
        pd_err_set(err, "metric '%s': bucket bounds are only for histograms", o->name);
        return -1;
    }
    return 0;
}

/* Would a family named `name` of `type` collide with `f`? Compares every series name each one
 * emits. */
static bool collides(const struct pd_metric_family *f, enum pd_metric_type type, const char *name)
{
    static const char *const hist_suffixes[] = {"_bucket", "_sum", "_count"};
    if (strcmp(f->name, name) == 0)
        return true;
    /* new histogram series vs existing family name, and existing histogram series vs new name */
    for (int side = 0; side < 2; side++) {
        const char *base = side ? f->name : name;
        const char *other = side ? name : f->name;
        bool hist = side ? f->type == PD_METRIC_HISTOGRAM : type == PD_METRIC_HISTOGRAM;
        if (!hist)
            continue;
        size_t bl = strlen(base);
        for (size_t i = 0; i < 3; i++) {
            size_t sl = strlen(hist_suffixes[i]);
            if (strlen(other) == bl + sl && memcmp(other, base, bl) == 0 &&
                strcmp(other + bl, hist_suffixes[i]) == 0)
                return true;
        }
    }
    return false;
}

/* ---- registry and families
 * ----------------------------------------------------------------------- */

struct pd_metrics *pd_metrics_new(struct pd_err *err)
{
    struct pd_metrics *reg = calloc(1, sizeof *reg);
    if (!reg) {
        pd_err_set(err, "out of memory creating a metrics registry");
        return NULL;
    }
    int rc = pthread_mutex_init(&reg->lock, NULL);
    if (rc != 0) {
        free(reg);
        pd_err_set(err, "cannot create the metrics registry lock: %s", strerror(rc));
        return NULL;
    }
    return reg;
}

static void family_free(struct pd_metric_family *f)
{
    for (size_t i = 0; i < f->nchildren; i++)
        free(f->children[i]);
    free(f->overflow);
    free(f->children);
    free(f->index);
    free(f->bounds);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f);
}

void pd_metrics_free(struct pd_metrics *reg)
{
    if (!reg)
        return;
    struct pd_metric_family *f = reg->head;
    while (f) {
        struct pd_metric_family *next = f->next;
        pthread_rwlock_destroy(&f->lock);
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

/* A child with the given key; not yet linked into the family. */
static struct pd_metric *child_new(struct pd_metric_family *f, const char *key, size_t key_len,
                                   uint64_t hash)
{
    size_t nb = f->type == PD_METRIC_HISTOGRAM ? f->nbounds + 1 : 0;
    size_t size = sizeof(struct pd_metric) + nb * sizeof(_Atomic uint64_t) + key_len + 1;
    struct pd_metric *m = malloc(size);
    if (!m)
        return NULL;
    memset(m, 0, size);
    m->fam = f;
    m->type = f->type;
    atomic_init(&m->value, f->type == PD_METRIC_COUNTER ? 0 : dbl_bits(0.0));
    for (size_t i = 0; i < nb; i++)
        atomic_init(&m->buckets[i], 0);
    char *k = (char *)(m->buckets + nb);
    memcpy(k, key, key_len);
    k[key_len] = '\0';
    m->key = k;
    m->key_len = key_len;
    m->hash = hash;
    return m;
}

static int index_insert(struct pd_metric **index, size_t cap, struct pd_metric *m)
{
    size_t mask = cap - 1;
    for (size_t i = (size_t)m->hash & mask, probes = 0; probes < cap;
         i = (i + 1) & mask, probes++) {
        if (!index[i]) {
            index[i] = m;
            return 0;
        }
    }
    return -1;
}

/* Make room for one more child (array and index at most half full). Caller holds the write lock. */
static int family_reserve(struct pd_metric_family *f)
{
    if (f->nchildren == f->children_cap) {
        size_t cap = f->children_cap ? f->children_cap * 2 : 8;
        if (cap > f->max_children)
            cap = f->max_children;
        struct pd_metric **c = realloc(f->children, cap * sizeof *c);
        if (!c)
            return -1;
        f->children = c;
        f->children_cap = cap;
    }
    if ((f->nchildren + 1) * 2 > f->index_cap) {
        size_t cap = f->index_cap ? f->index_cap * 2 : 16;
        struct pd_metric **idx = calloc(cap, sizeof *idx);
        if (!idx)
            return -1;
        for (size_t i = 0; i < f->nchildren; i++)
            (void)index_insert(idx, cap, f->children[i]); /* cannot fail: cap > 2 * nchildren */
        free(f->index);
        f->index = idx;
        f->index_cap = cap;
    }
    return 0;
}

static struct pd_metric *family_find(const struct pd_metric_family *f, const char *key,
                                     size_t key_len, uint64_t hash)
{
    if (!f->index_cap)
        return NULL;
    size_t mask = f->index_cap - 1;
    for (size_t i = (size_t)hash & mask, probes = 0; probes < f->index_cap;
         i = (i + 1) & mask, probes++) {
        struct pd_metric *m = f->index[i];
        if (!m)
            return NULL;
        if (m->hash == hash && m->key_len == key_len && memcmp(m->key, key, key_len) == 0)
            return m;
    }
    return NULL;
}

/* The key of the overflow child: "__overflow__" for every label. */
static size_t overflow_key(size_t nlabels, char *key)
{
    size_t len = 0;
    for (size_t i = 0; i < nlabels; i++) {
        if (i)
            key[len++] = (char)KEY_SEP;
        memcpy(key + len, PD_METRICS_OVERFLOW, sizeof PD_METRICS_OVERFLOW - 1);
        len += sizeof PD_METRICS_OVERFLOW - 1;
    }
    return len;
}

struct pd_metric_family *pd_metrics_add(struct pd_metrics *reg, enum pd_metric_type type,
                                        const struct pd_metric_opts *opts, struct pd_err *err)
{
    if (!reg || !opts || (unsigned)type > PD_METRIC_HISTOGRAM) {
        pd_err_set(err, "pd_metrics_add: registry, options and a known metric type are required");
        return NULL;
    }
    if (validate_opts(type, opts, err) < 0)
        return NULL;
    struct pd_metric_family *f = calloc(1, sizeof *f);
    if (!f)
        goto oom;
    f->reg = reg;
    f->type = type;
    f->max_children = opts->max_children ? opts->max_children : PD_METRICS_DEFAULT_MAX_CHILDREN;
    atomic_init(&f->overflow_used, false);
    f->name = dup_str(opts->name);
    f->help = dup_str(opts->help);
    if (!f->name || !f->help)
        goto oom_free;
    for (size_t i = 0; i < opts->nlabels; i++) {
        f->labels[i] = dup_str(opts->labels[i]);
        if (!f->labels[i])
            goto oom_free;
        f->nlabels = i + 1;
    }
    if (type == PD_METRIC_HISTOGRAM) {
        f->bounds = malloc(opts->nbuckets * sizeof *f->bounds);
        if (!f->bounds)
            goto oom_free;
        memcpy(f->bounds, opts->buckets, opts->nbuckets * sizeof *f->bounds);
        f->nbounds = opts->nbuckets;
    }
    if (f->nlabels == 0) {
        /* The single child exists from the start. */
        f->max_children = 1;
        if (family_reserve(f) < 0)
            goto oom_free;
        struct pd_metric *m = child_new(f, "", 0, hash_bytes("", 0));
        if (!m)
            goto oom_free;
        f->children[f->nchildren++] = m;
        (void)index_insert(f->index, f->index_cap, m);
    } else {
        char key[KEY_MAX];
        size_t kl = overflow_key(f->nlabels, key);
        f->overflow = child_new(f, key, kl, hash_bytes(key, kl));
        if (!f->overflow)
            goto oom_free;
    }
    int rc = pthread_rwlock_init(&f->lock, NULL);
    if (rc != 0) {
        pd_err_set(err, "metric '%s': cannot create its lock: %s", opts->name, strerror(rc));
        family_free(f);
        return NULL;
    }

    pthread_mutex_lock(&reg->lock);
    for (struct pd_metric_family *o = reg->head; o; o = o->next) {
        if (collides(o, type, f->name)) {
            pthread_mutex_unlock(&reg->lock);
            pd_err_set(err, "metric '%s' collides with the already registered %s '%s'", f->name,
                       type_names[o->type], o->name);
            pthread_rwlock_destroy(&f->lock);
            family_free(f);
            return NULL;
        }
    }
    if (reg->tail)
        reg->tail->next = f;
    else
        reg->head = f;
    reg->tail = f;
    pthread_mutex_unlock(&reg->lock);
    return f;

oom_free:
    family_free(f);
oom:
    pd_err_set(err, "out of memory registering metric '%s'", opts->name);
    return NULL;
}

struct pd_metric_family *pd_metrics_counter(struct pd_metrics *reg, const char *name,
                                            const char *help, const char *const *labels,
                                            size_t nlabels, struct pd_err *err)
{
    struct pd_metric_opts o = {.name = name, .help = help, .labels = labels, .nlabels = nlabels};
    return pd_metrics_add(reg, PD_METRIC_COUNTER, &o, err);
}

struct pd_metric_family *pd_metrics_gauge(struct pd_metrics *reg, const char *name,
                                          const char *help, const char *const *labels,
                                          size_t nlabels, struct pd_err *err)
{
    struct pd_metric_opts o = {.name = name, .help = help, .labels = labels, .nlabels = nlabels};
    return pd_metrics_add(reg, PD_METRIC_GAUGE, &o, err);
}

struct pd_metric_family *pd_metrics_histogram(struct pd_metrics *reg, const char *name,
                                              const char *help, const char *const *labels,
                                              size_t nlabels, const double *buckets,
                                              size_t nbuckets, struct pd_err *err)
{
    struct pd_metric_opts o = {.name = name,
                               .help = help,
                               .labels = labels,
                               .nlabels = nlabels,
                               .buckets = buckets,
                               .nbuckets = nbuckets};
    return pd_metrics_add(reg, PD_METRIC_HISTOGRAM, &o, err);
}

struct pd_metric_family *pd_metrics_gauge_fn(struct pd_metrics *reg, const char *name,
                                             const char *help, double (*fn)(void *arg), void *arg,
                                             struct pd_err *err)
{
    if (!fn) {
        pd_err_set(err, "callback gauge '%s' needs a callback", name ? name : "(null)");
        return NULL;
    }
    struct pd_metric_family *f = pd_metrics_gauge(reg, name, help, NULL, 0, err);
    if (f)
        pd_metric_gauge_set_fn(f->children[0], fn, arg);
    return f;
}

int pd_metrics_buckets_linear(double start, double width, size_t count, double *out,
                              struct pd_err *err)
{
    if (!out || count == 0 || count > PD_METRICS_MAX_BUCKETS || !isfinite(start) ||
        !isfinite(width) || !(width > 0)) {
        pd_err_set(err, "linear buckets need 1 to %d bounds, a finite start and a finite width > 0",
                   PD_METRICS_MAX_BUCKETS);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        out[i] = start + (double)i * width;
        if (!isfinite(out[i]) || (i > 0 && !(out[i] > out[i - 1]))) {
            pd_err_set(err, "linear buckets: bound %zu is not finite and increasing", i);
            return -1;
        }
    }
    return 0;
}

int pd_metrics_buckets_exponential(double start, double factor, size_t count, double *out,
                                   struct pd_err *err)
{
    if (!out || count == 0 || count > PD_METRICS_MAX_BUCKETS || !isfinite(start) || !(start > 0) ||
        !isfinite(factor) || !(factor > 1)) {
        pd_err_set(
            err,
            "exponential buckets need 1 to %d bounds, a finite start > 0 and a finite factor > 1",
            PD_METRICS_MAX_BUCKETS);
        return -1;
    }
    double v = start;
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(v) || (i > 0 && !(v > out[i - 1]))) {
            pd_err_set(err, "exponential buckets: bound %zu is not finite and increasing", i);
            return -1;
        }
        out[i] = v;
        v *= factor;
    }
    return 0;
}

/* ---- children
 * ------------------------------------------------------------------------------------ */

struct pd_metric *pd_metric_with_values(struct pd_metric_family *fam, const char *const *values,
                                        size_t nvalues)
{
    if (!fam || nvalues != fam->nlabels || (nvalues > 0 && !values))
        return NULL;
    if (fam->nlabels == 0)
        return fam->children[0]; /* created with the family, never changes */
    char key[KEY_MAX];
    size_t kl = 0;
    for (size_t i = 0; i < nvalues; i++) {
        if (!values[i])
            return NULL;
        if (i)
            key[kl++] = (char)KEY_SEP;
        normalise_value(values[i], key, &kl);
    }
    uint64_t h = hash_bytes(key, kl);
    if (h == fam->overflow->hash && kl == fam->overflow->key_len &&
        memcmp(key, fam->overflow->key, kl) == 0)
        goto overflow;

    pthread_rwlock_rdlock(&fam->lock);
    struct pd_metric *m = family_find(fam, key, kl, h);
    pthread_rwlock_unlock(&fam->lock);
    if (m)
        return m;

    pthread_rwlock_wrlock(&fam->lock);
    m = family_find(fam, key, kl, h); /* another thread may have created it meanwhile */
    if (!m && fam->nchildren < fam->max_children && family_reserve(fam) == 0) {
        m = child_new(fam, key, kl, h);
        if (m) {
            fam->children[fam->nchildren++] = m;
            (void)index_insert(fam->index, fam->index_cap, m); /* reserve left room */
        }
    }
    pthread_rwlock_unlock(&fam->lock);
    if (m)
        return m;
overflow:
    atomic_store_explicit(&fam->overflow_used, true, memory_order_relaxed);
    return fam->overflow;
}

void pd_metric_gauge_set_fn(struct pd_metric *m, double (*fn)(void *arg), void *arg)
{
    if (!m || m->type != PD_METRIC_GAUGE)
        return;
    pthread_rwlock_wrlock(&m->fam->lock);
    m->fn = fn;
    m->fn_arg = arg;
    pthread_rwlock_unlock(&m->fam->lock);
}

/* ---- updates
 * ------------------------------------------------------------------------------------- */

void pd_metric_inc(struct pd_metric *counter)
{
    pd_metric_add(counter, 1);
}

void pd_metric_add(struct pd_metric *counter, uint64_t n)
{
    if (counter && counter->type == PD_METRIC_COUNTER)
        atomic_fetch_add_explicit(&counter->value, n, memory_order_relaxed);
}

void pd_metric_gauge_set(struct pd_metric *gauge, double v)
{
    if (gauge && gauge->type == PD_METRIC_GAUGE)
        atomic_store_explicit(&gauge->value, dbl_bits(v), memory_order_relaxed);
}

void pd_metric_gauge_add(struct pd_metric *gauge, double d)
{
    if (gauge && gauge->type == PD_METRIC_GAUGE)
        atomic_add_dbl(&gauge->value, d);
}

void pd_metric_gauge_inc(struct pd_metric *gauge)
{
    pd_metric_gauge_add(gauge, 1.0);
}

void pd_metric_gauge_dec(struct pd_metric *gauge)
{
    pd_metric_gauge_add(gauge, -1.0);
}

void pd_metric_observe(struct pd_metric *histogram, double v)
{
    if (!histogram || histogram->type != PD_METRIC_HISTOGRAM || isnan(v))
        return;
    const double *b = histogram->fam->bounds;
    size_t lo = 0, hi = histogram->fam->nbounds; /* first bound >= v, or nbounds for +Inf */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&histogram->buckets[lo], 1, memory_order_relaxed);
    atomic_add_dbl(&histogram->value, v);
}

uint64_t pd_metric_counter_get(const struct pd_metric *counter)
{
    if (!counter || counter->type != PD_METRIC_COUNTER)
        return 0;
    return atomic_load_explicit(&counter->value, memory_order_relaxed);
}

double pd_metric_gauge_get(const struct pd_metric *gauge)
{
    if (!gauge || gauge->type != PD_METRIC_GAUGE)
        return NAN;
    return bits_dbl(atomic_load_explicit(&gauge->value, memory_order_relaxed));
}

uint64_t pd_metric_histogram_count(const struct pd_metric *histogram)
{
    if (!histogram || histogram->type != PD_METRIC_HISTOGRAM)
        return 0;
    uint64_t n = 0;
    for (size_t i = 0; i <= histogram->fam->nbounds; i++)
        n += atomic_load_explicit(&histogram->buckets[i], memory_order_relaxed);
    return n;
}

/* ---- output buffer
 * ------------------------------------------------------------------------------- */

void pd_metrics_buf_init(struct pd_metrics_buf *b, size_t limit)
{
    if (b)
        *b = (struct pd_metrics_buf){.limit = limit};
}

void pd_metrics_buf_free(struct pd_metrics_buf *b)
{
    if (!b)
        return;
    free(b->data);
    *b = (struct pd_metrics_buf){.limit = b->limit};
}

/* Append n bytes; keeps data NUL-terminated. Returns false (nothing appended) if it cannot grow. */
static bool buf_put(struct pd_metrics_buf *b, const char *s, size_t n)
{
    if (n > SIZE_MAX / 2 - b->len || (b->limit && b->len + n > b->limit)) {
        errno = EMSGSIZE;
        return false;
    }
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
        while (cap < need)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            errno = ENOMEM;
            return false;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

static bool buf_str(struct pd_metrics_buf *b, const char *s)
{
    return buf_put(b, s, strlen(s));
}

/* Escape \ and newline (HELP), and " too (label values). */
static bool buf_escaped(struct pd_metrics_buf *b, const char *s, size_t n, bool quote)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = NULL;
        if (s[i] == '\\')
            esc = "\\\\";
        else if (s[i] == '\n')
            esc = "\\n";
        else if (quote && s[i] == '"')
            esc = "\\\"";
        if (!esc)
            continue;
        if (!buf_put(b, s + run, i - run) || !buf_put(b, esc, 2))
            return false;
        run = i + 1;
    }
    return buf_put(b, s + run, n - run);
}

/* Shortest of %.15g/%.16g/%.17g that reads back as v; NaN and infinities as Prometheus spells them.
 */
static void fmt_double(char *out, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/*
 * A bucket bound as the Go and Python clients spell it (Go's strconv.FormatFloat(v, 'g', -1, 64)):
 * shortest round-trip digits, exponent form when the exponent is < -4 or >= 6 ("0.005", "1",
 * "1e+06"). `le` is a label, so matching the other clients keeps series identical across exporters.
 */
static void fmt_le(char *out, size_t cap, double v)
{
    if (!isfinite(v)) {
        fmt_double(out, cap, v);
        return;
    }
    int digits = 1;
    for (; digits < 17; digits++) {
        snprintf(out, cap, "%.*e", digits - 1, v);
        if (strtod(out, NULL) == v)
            break;
    }
    snprintf(out, cap, "%.*e", digits - 1, v);
    const char *e = strchr(out, 'e');
    long exp = e ? strtol(e + 1, NULL, 10) : 0;
    if (exp < -4 || exp >= 6)
        return;
    long decimals = digits - 1 - exp;
    snprintf(out, cap, "%.*f", (int)(decimals > 0 ? decimals : 0), v);
}

static bool buf_double(struct pd_metrics_buf *b, double v)
{
    char num[40];
    fmt_double(num, sizeof num, v);
    return buf_str(b, num);
}

static bool buf_u64(struct pd_metrics_buf *b, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, v);
    return buf_str(b, num);
}

/* name{l1="v1",...[,le="x"]} followed by a space. `le` may be NULL. */
static bool render_series(struct pd_metrics_buf *b, const struct pd_metric_family *f,
                          const char *suffix, const struct pd_metric *m, const char *le)
{
    if (!buf_str(b, f->name) || !buf_str(b, suffix))
        return false;
    if (f->nlabels || le) {
        if (!buf_put(b, "{", 1))
            return false;
        const char *k = m->key, *end = m->key + m->key_len;
        for (size_t i = 0; i < f->nlabels; i++) {
            const char *sep = memchr(k, KEY_SEP, (size_t)(end - k));
            const char *vend = sep ? sep : end;
            if ((i && !buf_put(b, ",", 1)) || !buf_str(b, f->labels[i]) || !buf_put(b, "=\"", 2) ||
                !buf_escaped(b, k, (size_t)(vend - k), true) || !buf_put(b, "\"", 1))
                return false;
            k = sep ? sep + 1 : end;
        }
        if (le && ((f->nlabels && !buf_put(b, ",", 1)) || !buf_str(b, "le=\"") || !buf_str(b, le) ||
                   !buf_put(b, "\"", 1)))
            return false;
        if (!buf_put(b, "}", 1))
            return false;
    }
    return buf_put(b, " ", 1);
}

static bool render_child(struct pd_metrics_buf *b, const struct pd_metric_family *f,
                         const struct pd_metric *m)
{
    switch (f->type) {
    case PD_METRIC_COUNTER:
        return render_series(b, f, "", m, NULL) &&
               buf_u64(b, atomic_load_explicit(&m->value, memory_order_relaxed)) &&
               buf_put(b, "\n", 1);
    case PD_METRIC_GAUGE: {
        double v = m->fn ? m->fn(m->fn_arg)
                         : bits_dbl(atomic_load_explicit(&m->value, memory_order_relaxed));
        return render_series(b, f, "", m, NULL) && buf_double(b, v) && buf_put(b, "\n", 1);
    }
    case PD_METRIC_HISTOGRAM:
    default: {
        uint64_t cum = 0;
        char le[40];
        for (size_t i = 0; i <= f->nbounds; i++) {
            cum += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
            if (i < f->nbounds)
                fmt_le(le, sizeof le, f->bounds[i]);
            else
                snprintf(le, sizeof le, "+Inf");
            if (!render_series(b, f, "_bucket", m, le) || !buf_u64(b, cum) || !buf_put(b, "\n", 1))
                return false;
        }
        double sum = bits_dbl(atomic_load_explicit(&m->value, memory_order_relaxed));
        return render_series(b, f, "_sum", m, NULL) && buf_double(b, sum) && buf_put(b, "\n", 1) &&
               render_series(b, f, "_count", m, NULL) && buf_u64(b, cum) && buf_put(b, "\n", 1);
    }
    }
}

static bool render_family(struct pd_metrics_buf *b, struct pd_metric_family *f)
{
    if (!buf_str(b, "# HELP ") || !buf_str(b, f->name) || !buf_put(b, " ", 1) ||
        !buf_escaped(b, f->help, strlen(f->help), false) || !buf_str(b, "\n# TYPE ") ||
        !buf_str(b, f->name) || !buf_put(b, " ", 1) || !buf_str(b, type_names[f->type]) ||
        !buf_put(b, "\n", 1))
        return false;
    bool ok = true;
    pthread_rwlock_rdlock(&f->lock);
    for (size_t i = 0; ok && i < f->nchildren; i++)
        ok = render_child(b, f, f->children[i]);
    if (ok && f->overflow && atomic_load_explicit(&f->overflow_used, memory_order_relaxed))
        ok = render_child(b, f, f->overflow);
    int saved = errno; /* why buf_put failed; unlocking must not lose it */
    pthread_rwlock_unlock(&f->lock);
    errno = saved;
    return ok;
}

int pd_metrics_render(struct pd_metrics *reg, struct pd_metrics_buf *out, struct pd_err *err)
{
    if (!reg || !out) {
        pd_err_set(err, "pd_metrics_render: registry and output buffer are required");
        return -1;
    }
    size_t start = out->len;
    bool ok = true;
    pthread_mutex_lock(&reg->lock);
    for (struct pd_metric_family *f = reg->head; ok && f; f = f->next)
        ok = render_family(out, f);
    int saved = errno;
    pthread_mutex_unlock(&reg->lock);
    if (ok)
        return 0;
    out->len = start;
    if (out->data)
        out->data[start] = '\0';
    if (saved == EMSGSIZE)
        pd_err_set(err, "metrics output exceeds the buffer limit of %zu bytes", out->limit);
    else
        pd_err_set(err, "out of memory rendering metrics");
    return -1;
}
