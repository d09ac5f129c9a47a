/*
 * slice.h - a borrowed byte range (pointer + length) into a buffer someone else owns.
 * Slices are never NUL-terminated by contract; compare with the helpers below.
 */
#ifndef PD_CORE_SLICE_H
#define PD_CORE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

struct pd_slice {
    const char *p;
    size_t n;
};

#define PD_SLICE_LIT(s) ((struct pd_slice){.p = (s), .n = sizeof(s) - 1})

static inline struct pd_slice pd_slice_of(const char *s)
{
    return (struct pd_slice){.p = s, .n = s ? strlen(s) : 0};
}

static inline bool pd_slice_eq(struct pd_slice a, const char *lit)
{
    size_t n = strlen(lit);
    return a.n == n && (n == 0 || memcmp(a.p, lit, n) == 0);
}

/* ASCII case-insensitive comparison with a NUL-terminated literal. */
static inline bool pd_slice_eq_nocase(struct pd_slice a, const char *lit)
{
    size_t n = strlen(lit);
    return a.n == n && (n == 0 || strncasecmp(a.p, lit, n) == 0);
}

#endif
