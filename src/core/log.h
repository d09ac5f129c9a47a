/*
 * log.h - structured JSON-lines logging.
 *
 * Every record is one line of JSON written with a single write(2):
 *   {"ts":"2026-11-22T22:52:02.123456Z","level":"info","component":"http","event":"listening","port":8080}
 * Keys "ts", "level", "component" and "event" come first and always exist; fields follow in call order.
 *
 * Secrets: a field made with PD_LSECRET() prints "[redacted]" whatever its value. Independently, any value
 * registered with pd_log_secret_add() is replaced by "[redacted]" wherever it appears inside any string field
 * (defence in depth: an upstream error message that echoes a credential is scrubbed too). Registrations are
 * counted per value: a value added twice (two policies holding the same credential across a reload) stays
 * scrubbed until it has been removed twice. Registered copies are wiped on final removal and at
 * pd_log_shutdown().
 *
 * Threads: pd_log() may be called from any thread. Configuration calls (pd_log_set_*) are meant for startup
 * but are safe at any time. The module owns the output fd it opened with pd_log_open_file().
 * Never: allocates per record, blocks on a lock held across I/O, or prints a registered secret.
 * Records of a batching thread (below) reach the fd at its next flush.
 */
#ifndef PD_CORE_LOG_H
#define PD_CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

enum pd_log_level { PD_LOG_DEBUG = 0, PD_LOG_INFO, PD_LOG_WARN, PD_LOG_ERROR, PD_LOG_OFF };

enum pd_log_ftype {
    PD_LF_STR,    /* NUL-terminated string (NULL prints null) */
    PD_LF_STRN,   /* pointer + length, need not be terminated */
    PD_LF_INT,
    PD_LF_UINT,
    PD_LF_DOUBLE,
    PD_LF_BOOL,
    PD_LF_SECRET, /* value never printed */
};

struct pd_log_field {
    const char *key;
    enum pd_log_ftype type;
    union {
        const char *s;
        struct {
            const char *p;
            size_t n;
        } sn;
        long long i;
        unsigned long long u;
        double d;
        bool b;
    } v;
};

#define PD_LSTR(k, val) ((struct pd_log_field){.key = (k), .type = PD_LF_STR, .v.s = (val)})
#define PD_LSTRN(k, ptr, len) \
    ((struct pd_log_field){.key = (k), .type = PD_LF_STRN, .v.sn = {.p = (ptr), .n = (len)}})
#define PD_LINT(k, val) ((struct pd_log_field){.key = (k), .type = PD_LF_INT, .v.i = (long long)(val)})
#define PD_LUINT(k, val) \
    ((struct pd_log_field){.key = (k), .type = PD_LF_UINT, .v.u = (unsigned long long)(val)})
#define PD_LDBL(k, val) ((struct pd_log_field){.key = (k), .type = PD_LF_DOUBLE, .v.d = (double)(val)})
#define PD_LBOOL(k, val) ((struct pd_log_field){.key = (k), .type = PD_LF_BOOL, .v.b = (val)})
#define PD_LSECRET(k) ((struct pd_log_field){.key = (k), .type = PD_LF_SECRET})

/* pd_log(PD_LOG_INFO, "http", "listening", PD_LSTR("addr", a), PD_LINT("port", p)); */
#define pd_log(level, component, event, ...)                                                         \
    do {                                                                                             \
        if (pd_log_enabled(level)) {                                                                 \
            const struct pd_log_field pd_log_fields_[] = {PD_LSTR(NULL, NULL), ##__VA_ARGS__};       \
            pd_log_emit((level), (component), (event), pd_log_fields_ + 1,                           \
                        sizeof pd_log_fields_ / sizeof pd_log_fields_[0] - 1);                       \
        }                                                                                            \
    } while (0)

bool pd_log_enabled(enum pd_log_level level);
void pd_log_emit(enum pd_log_level level, const char *component, const char *event,
                 const struct pd_log_field *fields, size_t nfields);

void pd_log_set_level(enum pd_log_level level);
enum pd_log_level pd_log_get_level(void);
/* "debug", "info", "warn"/"warning", "error", "off" (case-insensitive). Returns false if unknown. */
bool pd_log_level_parse(const char *s, enum pd_log_level *out);
const char *pd_log_level_name(enum pd_log_level level);

/* Write to this fd (not owned, default 2). */
void pd_log_set_fd(int fd);
/* Open (append, create 0640) and write to a file; replaces a file opened earlier. */
int pd_log_open_file(const char *path, struct pd_err *err);

/*
 * Batching (event-loop threads): between pd_log_batch_begin() and pd_log_batch_end() a thread's
 * records collect in a thread-local buffer (PD_LOG_BATCH_BYTES) and go out at pd_log_batch_flush(),
 * which the worker loop calls once per loop iteration before it can block again, so a busy worker
 * writes its access log with one write(2) per iteration instead of one per request. A record that
 * would not fit flushes first. Lines stay whole: to a regular (O_APPEND) file the batch is one
 * write; to a pipe, socket or terminal it is cut at line boundaries into writes of at most PIPE_BUF
 * bytes (longer single records as before). Begin returns false (records are then written at once)
 * when the buffer cannot be allocated. Flush and end are no-ops on a thread that did not begin.
 */
#define PD_LOG_BATCH_BYTES (64u * 1024u)
bool pd_log_batch_begin(void);
void pd_log_batch_flush(void);
void pd_log_batch_end(void);

/* Secrets shorter than PD_LOG_SECRET_MIN bytes are refused (they would scrub ordinary text). */
#define PD_LOG_SECRET_MIN 4
#define PD_LOG_SECRETS_MAX 256
int pd_log_secret_add(const char *value, size_t len, struct pd_err *err);
void pd_log_secret_remove(const char *value, size_t len);
void pd_log_secret_clear(void);

/* Wipe registered secrets and close an owned file. */
void pd_log_shutdown(void);

/*
 * Format a record into buf (no trailing newline guarantee beyond what fits). Exposed for tests and for
 * components that ship records elsewhere; returns the length written (always < cap, buf NUL-terminated).
 * `ts_usec` is microseconds since the epoch.
 */
size_t pd_log_format(char *buf, size_t cap, int64_t ts_usec, enum pd_log_level level,
                     const char *component, const char *event, const struct pd_log_field *fields,
                     size_t nfields);

#endif
