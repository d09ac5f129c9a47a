/* str.c - see str.h. */
#include "core/str.h"

#include <stdio.h>
#include <string.h>

void pd_vappendf(char *buf, size_t cap, const char *fmt, va_list ap)
{
    if (!buf || cap == 0)
        return;
    size_t len = strnlen(buf, cap);
    if (len + 1 >= cap)
        return;
    int n = vsnprintf(buf + len, cap - len, fmt, ap);
    (void)n; /* cut text is acceptable here (see str.h) */
}

void pd_appendf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pd_vappendf(buf, cap, fmt, ap);
    va_end(ap);
}
