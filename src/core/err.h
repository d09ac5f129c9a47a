/*
 * err.h - a small error value that carries a human-readable reason.
 *
 * Contract: functions that can fail take a `struct pd_err *` (which may be NULL when the
 * caller does not want the text) and fill it on failure only. Messages say what was wrong
 * and what was expected, never contain secret values, and are truncated (not overflowed)
 * at PD_ERR_MAX bytes. No allocation, so it is usable on out-of-memory paths.
 */
#ifndef PD_CORE_ERR_H
#define PD_CORE_ERR_H

#include <stdarg.h>

#define PD_ERR_MAX 512

struct pd_err {
    char msg[PD_ERR_MAX];
};

/* Set the message (printf format). Safe with e == NULL. */
void pd_err_set(struct pd_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pd_err_vset(struct pd_err *e, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Prepend context: "ctx: old message". Safe with e == NULL. */
void pd_err_prefix(struct pd_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pd_err_clear(struct pd_err *e);

#endif
