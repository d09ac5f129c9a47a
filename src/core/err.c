/* err.c - see err.h. */
#include "core/err.h"

#include <stdio.h>
#include <string.h>

void pd_err_vset(struct pd_err *e, const char *fmt, va_list ap)
{
    if (!e)
        return;
    /* Format into a scratch buffer first: the arguments may point into e->msg itself (for example
     * pd_err_set(e, "reading config: %s", e->msg)), and vsnprintf with overlapping buffers is
     * undefined. */
    char tmp[PD_ERR_MAX];
    int n = fmt ? vsnprintf(tmp, sizeof tmp, fmt, ap) : -1;
    if (n < 0)
        snprintf(tmp, sizeof tmp, "unknown error (message formatting failed)");
    size_t len = strnlen(tmp, sizeof tmp - 1);
    memcpy(e->msg, tmp, len);
    e->msg[len] = '\0';
}

void pd_err_set(struct pd_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pd_err_vset(e, fmt, ap);
    va_end(ap);
}

void pd_err_prefix(struct pd_err *e, const char *fmt, ...)
{
    if (!e || !fmt)
        return;
    char prefix[PD_ERR_MAX];
    char old[PD_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    memcpy(old, e->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* Assemble by hand: snprintf("%s: %s") trips -Wformat-truncation, and truncation is intended. */
    size_t pl = strnlen(prefix, sizeof prefix);
    size_t ol = strnlen(old, sizeof old);
    size_t pos = 0;
    size_t cap = sizeof e->msg - 1;
    size_t take = pl < cap ? pl : cap;
    memcpy(e->msg, prefix, take);
    pos = take;
    /* Without room for the separator, the old text is left out rather than glued onto the prefix.
     */
    if (pos + 2 <= cap) {
        memcpy(e->msg + pos, ": ", 2);
        pos += 2;
        take = ol < cap - pos ? ol : cap - pos;
        memcpy(e->msg + pos, old, take);
        pos += take;
    }
    e->msg[pos] = '\0';
}

void pd_err_clear(struct pd_err *e)
{
    if (e)
        e->msg[0] = '\0';
}
