/*
 * log.c - structured JSON-lines logging (see log.h).
 *
 * A record is formatted into a stack buffer and written with one write(2), so concurrent writers on
 * an O_APPEND file never interleave inside a line. On a pipe the kernel keeps a write whole only up
 * to PIPE_BUF (4096) bytes: longer records (up to LINE_MAX_BYTES) can interleave with other writers
 * when the pipe is full. Serialising all writers would take a lock across I/O, which this module
 * refuses to do.
 *
 * Secret scrubbing happens while a string value is escaped:
 * at each position we check whether a registered secret starts there, and if so emit "[redacted]"
 * instead. Registered secrets are few (credentials of one policy), so a linear check per byte is
 * cheap compared with the write; a reader-writer lock protects the table.
 */
#include "core/log.h"
#include "core/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 16384
#define REDACTED "[redacted]"

struct secret {
    char *value;
    size_t len;
    unsigned refs; /* registrations of this value; removed when the last one is */
};

/* Module state. */
static _Atomic int g_level = PD_LOG_INFO;
/* g_fd and g_owned_fd are guarded by g_fd_lock: writers of records hold it for reading across
 * write(2), so a replaced descriptor is closed only once no record is being written to it
 * (otherwise a record could go to whatever file or socket reused the number). Readers never wait
 * for each other; reconfiguration waits for in-flight writes. */
static int g_fd = 2;
static int g_owned_fd = -1;
static bool g_fd_regular; /* g_fd is a regular file: a batch goes out in one write */
static pthread_rwlock_t g_fd_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t g_secrets_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct secret g_secrets[PD_LOG_SECRETS_MAX];
static size_t g_nsecrets;
static unsigned char g_secret_first[256]; /* first bytes of registered secrets: fast reject */

/* Per-thread batch (pd_log_batch_begin); owned by its thread only. */
struct batch {
    char *buf;
    size_t len;
};
static _Thread_local struct batch t_batch;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

bool pd_log_enabled(enum pd_log_level level)
{
    return level != PD_LOG_OFF && (int)level >= atomic_load_explicit(&g_level, memory_order_relaxed);
}

void pd_log_set_level(enum pd_log_level level)
{
    atomic_store(&g_level, (int)level);
}

enum pd_log_level pd_log_get_level(void)
{
    return (enum pd_log_level)atomic_load(&g_level);
}

const char *pd_log_level_name(enum pd_log_level level)
{
    if ((unsigned)level > PD_LOG_OFF)
        return "unknown";
    return level_names[level];
}

bool pd_log_level_parse(const char *s, enum pd_log_level *out)
{
    if (!s || !out)
        return false;
    for (int i = 0; i <= PD_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum pd_log_level)i;
            return true;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = PD_LOG_WARN;
        return true;
    }
    return false;
}

void pd_log_set_fd(int fd)
{
    int old = -1;
    struct stat st;
    bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    pthread_rwlock_wrlock(&g_fd_lock);
    g_fd = fd;
    g_fd_regular = regular;
    if (g_owned_fd >= 0 && g_owned_fd != fd) {
        old = g_owned_fd;
        g_owned_fd = -1;
    }
    pthread_rwlock_unlock(&g_fd_lock);
    if (old >= 0)
        close(old);
}

int pd_log_open_file(const char *path, struct pd_err *err)
{
    if (!path) {
        pd_err_set(err, "cannot open log file: no path given");
        return -1;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd < 0) {
        pd_err_set(err, "cannot open log file '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    pthread_rwlock_wrlock(&g_fd_lock);
    int old = g_owned_fd;
    g_fd = fd;
    g_fd_regular = regular;
    g_owned_fd = fd;
    pthread_rwlock_unlock(&g_fd_lock);
    if (old >= 0)
        close(old);
    return 0;
}

static void rebuild_first_bytes(void)
{
    memset(g_secret_first, 0, sizeof g_secret_first);
    for (size_t i = 0; i < g_nsecrets; i++)
        g_secret_first[(unsigned char)g_secrets[i].value[0]] = 1;
}

int pd_log_secret_add(const char *value, size_t len, struct pd_err *err)
{
    if (!value || len < PD_LOG_SECRET_MIN) {
        pd_err_set(err, "a secret to redact must be at least %d bytes long", PD_LOG_SECRET_MIN);
        return -1;
    }
    pthread_rwlock_wrlock(&g_secrets_lock);
    for (size_t i = 0; i < g_nsecrets; i++) {
        if (g_secrets[i].len == len && memcmp(g_secrets[i].value, value, len) == 0) {
            g_secrets[i].refs++; /* same value registered again: removed after as many removals */
            pthread_rwlock_unlock(&g_secrets_lock);
            return 0;
        }
    }
    if (g_nsecrets >= PD_LOG_SECRETS_MAX) {
        pthread_rwlock_unlock(&g_secrets_lock);
        pd_err_set(err, "too many secrets registered for redaction (at most %d)", PD_LOG_SECRETS_MAX);
        return -1;
    }
    char *copy = malloc(len);
    if (!copy) {
        pthread_rwlock_unlock(&g_secrets_lock);
        pd_err_set(err, "out of memory registering a secret for redaction");
        return -1;
    }
    memcpy(copy, value, len);
    g_secrets[g_nsecrets++] = (struct secret){.value = copy, .len = len, .refs = 1};
    rebuild_first_bytes();
    pthread_rwlock_unlock(&g_secrets_lock);
    return 0;
}

void pd_log_secret_remove(const char *value, size_t len)
{
    if (!value)
        return;
    pthread_rwlock_wrlock(&g_secrets_lock);
    for (size_t i = 0; i < g_nsecrets; i++) {
        if (g_secrets[i].len == len && memcmp(g_secrets[i].value, value, len) == 0) {
            if (--g_secrets[i].refs > 0)
                break;
            explicit_bzero(g_secrets[i].value, g_secrets[i].len);
            free(g_secrets[i].value);
            g_secrets[i] = g_secrets[--g_nsecrets];
            break;
        }
    }
    rebuild_first_bytes();
    pthread_rwlock_unlock(&g_secrets_lock);
}

void pd_log_secret_clear(void)
{
    pthread_rwlock_wrlock(&g_secrets_lock);
    for (size_t i = 0; i < g_nsecrets; i++) {
        explicit_bzero(g_secrets[i].value, g_secrets[i].len);
        free(g_secrets[i].value);
    }
    g_nsecrets = 0;
    rebuild_first_bytes();
    pthread_rwlock_unlock(&g_secrets_lock);
}

void pd_log_shutdown(void)
{
    pd_log_batch_end();
    pd_log_secret_clear();
    pd_log_set_fd(2);
}

/* ---- formatting ---------------------------------------------------------------------------------- */

struct out {
    char *buf;
    size_t cap; /* usable bytes, one reserved for NUL and one for the newline */
    size_t len;
    bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->full)
        return;
    if (o->len + n > o->cap) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/*
 * Length of the longest registered secret that starts at s, or 0. The longest, so that a secret
 * which is a prefix of another cannot let the rest of the longer one through. Caller holds the read
 * lock.
 */
static size_t secret_at(const char *s, size_t n)
{
    if (!g_secret_first[(unsigned char)s[0]])
        return 0;
    size_t best = 0;
    for (size_t i = 0; i < g_nsecrets; i++) {
        if (g_secrets[i].len > best && g_secrets[i].len <= n &&
            memcmp(s, g_secrets[i].value, g_secrets[i].len) == 0)
            best = g_secrets[i].len;
    }
    return best;
}

/* Does a secret start strictly inside the multi-byte character s[0..len)? */
static bool secret_inside(const char *s, size_t len, size_t n)
{
    for (size_t j = 1; j < len; j++) {
        if (secret_at(s + j, n - j))
            return true;
    }
    return false;
}

/*
 * Write s as a JSON string. Each escape, character and "[redacted]" is written whole or not at all,
 * and one byte stays reserved for the closing quote, so the string is always closed: when the value
 * does not fit, it is cut at a character boundary and o->full is set (callers decide whether to
 * keep the cut value). Scrubbing: every byte covered by an occurrence of a registered secret is
 * hidden, including overlapping occurrences (of one secret or of several); each maximal run of
 * overlapping occurrences prints one
 * "[redacted]".
 */
static void put_json_string(struct out *o, const char *s, size_t n, bool scrub)
{
    static const char hex[] = "0123456789abcdef";
    if (o->full || o->len + 2 > o->cap) {
        o->full = true;
        return;
    }
    o->buf[o->len++] = '"';
    o->cap--; /* the closing quote */
    size_t red_end = 0; /* bytes before red_end belong to the current redacted run */
    size_t i = 0;
    while (i < n && !o->full) {
        /* Fast path: a run of printable ASCII that needs no escape and where no registered secret
         * can start goes out in one copy. */
        if (i >= red_end) {
            size_t j = i;
            while (j < n) {
                unsigned char d = (unsigned char)s[j];
                if (d < 0x20 || d >= 0x7f || d == '"' || d == '\\' || (scrub && g_secret_first[d]))
                    break;
                j++;
            }
            if (j > i) {
                size_t k = j - i, room = o->cap - o->len;
                if (k > room) { /* what fits, as the byte-by-byte path would have written */
                    k = room;
                    o->full = true;
                }
                memcpy(o->buf + o->len, s + i, k);
                o->len += k;
                i += k;
                continue;
            }
        }
        if (scrub) {
            size_t sl = secret_at(s + i, n - i);
            if (sl || i < red_end) {
                if (sl && i >= red_end)
                    puts_(o, REDACTED);
                if (i + sl > red_end)
                    red_end = i + sl;
                i++; /* keep looking for occurrences that extend the run */
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(o, e, 2);
            i++;
        } else if (c == '\n') {
            put(o, "\\n", 2);
            i++;
        } else if (c == '\r') {
            put(o, "\\r", 2);
            i++;
        } else if (c == '\t') {
            put(o, "\\t", 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(o, e, 6);
            i++;
        } else if (c < 0x80) {
            put(o, (const char *)&s[i], 1);
            i++;
        } else {
            size_t ul = pd_utf8_seq_len((const unsigned char *)s + i, n - i);
            if (ul == 0 || (scrub && secret_inside(s + i, ul, n - i))) {
                put(o, "\\ufffd", 6);
                i++;
            } else {
                put(o, s + i, ul);
                i += ul;
            }
        }
    }
    o->cap++;
    o->buf[o->len++] = '"';
}

static void put_key(struct out *o, const char *key)
{
    put(o, ",", 1);
    put_json_string(o, key ? key : "", key ? strlen(key) : 0, false);
    put(o, ":", 1);
}

#define TRUNC_MARK ",\"truncated\":true"
#define TRUNC_RESERVE (sizeof TRUNC_MARK - 1)
#define TAIL_RESERVE 3 /* "}\n" and the NUL */
/* Smallest buffer that holds the fixed part of a record with empty component and event, plus
 * reserves. */
#define FORMAT_MIN_CAP 128

/* Append the truncation marker into the space reserved for it and leave the record closed to
 * fields. */
static void put_truncated(struct out *o)
{
    o->full = false;
    o->cap += TRUNC_RESERVE;
    put(o, TRUNC_MARK, TRUNC_RESERVE);
    o->cap -= TRUNC_RESERVE;
    o->full = true;
}

/* Decimal digits of v, without printf (integers are in every record). */
static void put_u64(struct out *o, unsigned long long v, bool neg)
{
    char d[24];
    size_t k = sizeof d;
    do {
        d[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg)
        d[--k] = '-';
    put(o, d + k, sizeof d - k);
}

static void put_field(struct out *o, const struct pd_log_field *f, bool scrub)
{
    char num[64];
    int n;
    size_t before = o->len;
    put_key(o, f->key);
    switch (f->type) {
    case PD_LF_STR:
        if (f->v.s)
            put_json_string(o, f->v.s, strlen(f->v.s), scrub);
        else
            puts_(o, "null");
        break;
    case PD_LF_STRN:
        if (f->v.sn.p)
            put_json_string(o, f->v.sn.p, f->v.sn.n, scrub);
        else
            puts_(o, "null");
        break;
    case PD_LF_INT:
        put_u64(o, f->v.i < 0 ? 0ULL - (unsigned long long)f->v.i : (unsigned long long)f->v.i,
                f->v.i < 0);
        break;
    case PD_LF_UINT:
        put_u64(o, f->v.u, false);
        break;
    case PD_LF_DOUBLE:
        if (!isfinite(f->v.d)) {
            puts_(o, "null"); /* JSON has no NaN/Infinity */
        } else {
            n = snprintf(num, sizeof num, "%.17g", f->v.d);
            put(o, num, (size_t)n);
        }
        break;
    case PD_LF_BOOL:
        puts_(o, f->v.b ? "true" : "false");
        break;
    case PD_LF_SECRET:
    default:
        put_json_string(o, REDACTED, sizeof REDACTED - 1, false);
        break;
    }
    if (o->full) {
        /* Drop the field that did not fit and say so; the line stays valid JSON. */
        o->len = before;
        put_truncated(o);
    }
}

size_t pd_log_format(char *buf, size_t cap, int64_t ts_usec, enum pd_log_level level,
                     const char *component, const char *event, const struct pd_log_field *fields,
                     size_t nfields)
{
    if (cap < FORMAT_MIN_CAP) {
        if (cap)
            buf[0] = '\0';
        return 0;
    }
    /* Reserve room for "}\n", the NUL and the truncation marker: the record can always be closed.
     */
    struct out o = {.buf = buf, .cap = cap - TAIL_RESERVE - TRUNC_RESERVE, .len = 0, .full = false};
    time_t secs = (time_t)(ts_usec / 1000000);
    long usec = (long)(ts_usec % 1000000);
    if (usec < 0) {
        usec += 1000000;
        secs -= 1;
    }
    /* "YYYY-MM-DDTHH:MM:SS" is formatted once per second per thread (gmtime_r and snprintf were
     * the costliest part of a record); the microseconds and 'Z' are appended by hand. */
    static _Thread_local time_t ts_secs = -1;
    static _Thread_local char ts_prefix[20];
    if (secs != ts_secs) {
        struct tm tm;
        char t[96];
        if (!gmtime_r(&secs, &tm))
            memset(&tm, 0, sizeof tm);
        int tl = snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                          tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (tl != 19) /* years beyond 9999: keep the fixed width the minimum cap relies on */
            snprintf(t, sizeof t, "0000-00-00T00:00:00");
        memcpy(ts_prefix, t, 19);
        ts_prefix[19] = '\0';
        ts_secs = secs;
    }
    char ts[28];
    memcpy(ts, ts_prefix, 19);
    ts[19] = '.';
    for (int k = 25; k >= 20; k--) {
        ts[k] = (char)('0' + usec % 10);
        usec /= 10;
    }
    ts[26] = 'Z';
    ts[27] = '\0';
    puts_(&o, "{\"ts\":\"");
    puts_(&o, ts);
    puts_(&o, "\",\"level\":\"");
    puts_(&o, pd_log_level_name(level));
    puts_(&o, "\",\"component\":");
    /* Long component or event names are cut (not dropped) so the mandatory keys always exist. */
    static const char event_key[] = ",\"event\":";
    size_t full_cap = o.cap;
    o.cap = o.len +
            (full_cap - o.len - (sizeof event_key - 1)) / 2; /* at most half is the component's */
    put_json_string(&o, component ? component : "", component ? strlen(component) : 0, false);
    bool truncated = o.full;
    o.cap = full_cap;
    o.full = false;
    puts_(&o, event_key);
    put_json_string(&o, event ? event : "", event ? strlen(event) : 0, false);
    truncated = truncated || o.full;
    if (truncated)
        put_truncated(&o);

    pthread_rwlock_rdlock(&g_secrets_lock);
    bool scrub = g_nsecrets > 0;
    for (size_t i = 0; i < nfields && !o.full; i++)
        put_field(&o, &fields[i], scrub);
    pthread_rwlock_unlock(&g_secrets_lock);

    /* The reserves guarantee room for the closing brace and newline even after truncation. */
    o.cap = cap - 1;
    o.full = false;
    put(&o, "}\n", 2);
    buf[o.len] = '\0';
    return o.len;
}

static void write_lines(const char *p, size_t n);

void pd_log_emit(enum pd_log_level level, const char *component, const char *event,
                 const struct pd_log_field *fields, size_t nfields)
{
    if (!pd_log_enabled(level))
        return;
    char line[LINE_MAX_BYTES];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t usec = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    size_t n = pd_log_format(line, sizeof line, usec, level, component, event, fields, nfields);
    if (t_batch.buf) {
        if (t_batch.len + n > PD_LOG_BATCH_BYTES)
            pd_log_batch_flush();
        memcpy(t_batch.buf + t_batch.len, line, n);
        t_batch.len += n;
        return;
    }
    write_lines(line, n);
}

/* Write whole lines: one write(2) to a regular file, else chunks of whole lines of at most
 * PIPE_BUF bytes (a pipe keeps such writes whole against concurrent writers). */
static void write_lines(const char *p, size_t n)
{
    int saved_errno = errno; /* logging must not disturb the caller's errno */
    pthread_rwlock_rdlock(&g_fd_lock);
    int fd = g_fd;
    bool whole = g_fd_regular;
    size_t off = 0;
    while (off < n) {
        size_t chunk = n - off;
        if (!whole && chunk > PIPE_BUF) {
            const char *nl = memrchr(p + off, '\n', PIPE_BUF);
            chunk = nl ? (size_t)(nl - (p + off)) + 1 : n - off;
            if (!nl) { /* a single record longer than PIPE_BUF: up to its end */
                const char *end = memchr(p + off, '\n', n - off);
                chunk = end ? (size_t)(end - (p + off)) + 1 : n - off;
            }
        }
        size_t end = off + chunk;
        while (off < end) {
            ssize_t w = write(fd, p + off, end - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                goto out; /* nowhere to report a logging failure */
            }
            off += (size_t)w;
        }
    }
out:
    pthread_rwlock_unlock(&g_fd_lock);
    errno = saved_errno;
}

bool pd_log_batch_begin(void)
{
    if (t_batch.buf)
        return true;
    t_batch.buf = malloc(PD_LOG_BATCH_BYTES);
    t_batch.len = 0;
    return t_batch.buf != NULL;
}

void pd_log_batch_flush(void)
{
    if (!t_batch.buf || t_batch.len == 0)
        return;
    size_t n = t_batch.len;
    t_batch.len = 0;
    write_lines(t_batch.buf, n);
}

void pd_log_batch_end(void)
{
    pd_log_batch_flush();
    free(t_batch.buf);
    t_batch.buf = NULL;
}
