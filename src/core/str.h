/*
 * str.h - bounded text helpers for human-readable messages.
 *
 * pd_appendf() appends formatted text to a NUL-terminated buffer of `cap` bytes, cutting what does
 * not fit (the result stays terminated). For messages, details and notes: never for data that must
 * be whole (build those with an explicit length check instead). A NULL buffer or cap 0 does
 * nothing; a buffer already full stays as it is.
 */
#ifndef PD_CORE_STR_H
#define PD_CORE_STR_H

#include <stdarg.h>
#include <stddef.h>

void pd_appendf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void pd_vappendf(char *buf, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
