/*
 * rlimits.c - the limits that need no cgroup (see cgroup.h): parsing the policy's texts and the
 * rlimit fallback. Nothing here allocates; pd_limits_apply_rlimits runs in a forked child.
 */
#include "core/config.h"
#include "sandbox/cgroup.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Parse a decimal "I" or "I.F" prefix: whole part (overflow-checked), fraction digits as an
 * integer and their count (at most maxfrac). Returns the number of characters used, 0 when the
 * text does not start with a digit, -1 on overflow, -2 when the fraction is too long or empty. */
static int parse_decimal(const char *s, uint64_t *whole, uint64_t *frac, unsigned *nfrac,
                         unsigned maxfrac)
{
    const char *p = s;
    uint64_t w = 0;
    if (*p < '0' || *p > '9')
        return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (w > (UINT64_MAX - d) / 10)
            return -1;
        w = w * 10 + d;
    }
    uint64_t f = 0;
    unsigned nf = 0;
    if (*p == '.') {
        p++;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (nf == maxfrac)
                return -2;
            f = f * 10 + (unsigned)(*p - '0');
            nf++;
        }
        if (nf == 0)
            return -2;
    }
    *whole = w;
    *frac = f;
    *nfrac = nf;
    return (int)(p - s);
}

static uint64_t pow10u(unsigned n)
{
    uint64_t v = 1;
    while (n--)
        v *= 10;
    return v;
}

int pd_limits_parse_bytes(const char *text, uint64_t *out, struct pd_err *err)
{
    char q[256]; /* the value as messages show it: escaped, cut */
    pd_cfg_quote(text ? text : "", text ? strlen(text) : 0, 40, q, sizeof q);
    static const char expect[] = "expected a size in bytes: a number with an optional unit K, M, G "
                                 "or T (binary: 1K = 1024), e.g. 512M, 1.5G or 1048576; 0 = no "
                                 "limit";
    if (!text || !*text) {
        pd_err_set(err, "empty memory size: %s", expect);
        return -1;
    }
    uint64_t whole, frac;
    unsigned nfrac;
    int n = parse_decimal(text, &whole, &frac, &nfrac, 9);
    if (n == -1) {
        pd_err_set(err, "memory size \"%s\" is too large: at most %" PRIu64 " bytes", q,
                   UINT64_MAX);
        return -1;
    }
    if (n <= 0) {
        pd_err_set(err, "memory size \"%s\": %s%s", q, expect,
                   text[0] == '-' ? " (no negative sizes)" : "");
        return -1;
    }
    const char *u = text + n;
    unsigned shift = 0;
    switch (*u) {
    case 'K':
    case 'k':
        shift = 10;
        u++;
        break;
    case 'M':
        shift = 20;
        u++;
        break;
    case 'G':
        shift = 30;
        u++;
        break;
    case 'T':
        shift = 40;
        u++;
        break;
    default:
        break;
    }
    if (shift && *u == 'i')
        u++;
    if (*u == 'B')
        u++;
    if (*u) {
        char uq[64];
        pd_cfg_quote(u, strnlen(u, 10), 10, uq, sizeof uq);
        pd_err_set(err, "memory size \"%s\": unexpected \"%s\": %s", q, uq, expect);
        return -1;
    }
    if (nfrac && !shift) {
        pd_err_set(err, "memory size \"%s\": a fraction needs a unit (K, M, G or T): %s", q,
                   expect);
        return -1;
    }
    if (shift && whole > (UINT64_MAX >> shift)) {
        pd_err_set(err, "memory size \"%s\" is too large: at most %" PRIu64 " bytes", q,
                   UINT64_MAX);
        return -1;
    }
    uint64_t v = whole << shift;
    if (nfrac) {
        /* frac < 10^9 < 2^30 and shift <= 40: the product needs 70 bits. */
        unsigned __int128 prod = (unsigned __int128)frac << shift;
        uint64_t add = (uint64_t)(prod / pow10u(nfrac));
        if (v > UINT64_MAX - add) {
            pd_err_set(err, "memory size \"%s\" is too large: at most %" PRIu64 " bytes", q,
                       UINT64_MAX);
            return -1;
        }
        v += add;
    }
    *out = v;
    return 0;
}

int pd_limits_parse_cpu(const char *text, uint32_t *out_millis, struct pd_err *err)
{
    char q[256]; /* the value as messages show it: escaped, cut */
    pd_cfg_quote(text ? text : "", text ? strlen(text) : 0, 40, q, sizeof q);
    static const char expect[] =
        "expected CPUs as a number (\"1.5\", at most 3 decimals) or millicpus (\"1500m\"); 0 = no "
        "limit";
    if (!text || !*text) {
        pd_err_set(err, "empty cpu limit: %s", expect);
        return -1;
    }
    uint64_t whole, frac;
    unsigned nfrac;
    int n = parse_decimal(text, &whole, &frac, &nfrac, 3);
    if (n == -1 || n == -2 || n == 0) {
        pd_err_set(err, "cpu limit \"%s\": %s%s", q, expect,
                   n == -2          ? " (finer than 1m)"
                   : text[0] == '-' ? " (no negative values)"
                                    : "");
        return -1;
    }
    const char *u = text + n;
    uint64_t millis;
    if (*u == 'm' && u[1] == '\0') {
        if (nfrac) {
            pd_err_set(err, "cpu limit \"%s\": millicpus are whole numbers: %s", q, expect);
            return -1;
        }
        millis = whole;
    } else if (*u == '\0') {
        if (whole > PD_LIMITS_CPU_MAX / 1000) {
            pd_err_set(err, "cpu limit \"%s\" is too large: at most %u CPUs", q,
                       PD_LIMITS_CPU_MAX / 1000);
            return -1;
        }
        millis = whole * 1000 + frac * pow10u(3 - nfrac);
    } else {
        char uq[64];
        pd_cfg_quote(u, strnlen(u, 10), 10, uq, sizeof uq);
        pd_err_set(err, "cpu limit \"%s\": unexpected \"%s\": %s", q, uq, expect);
        return -1;
    }
    if (millis != 0 && (millis < PD_LIMITS_CPU_MIN || millis > PD_LIMITS_CPU_MAX)) {
        pd_err_set(err, "cpu limit \"%s\": expected 0 (no limit) or %um to %um (%u CPUs)", q,
                   PD_LIMITS_CPU_MIN, PD_LIMITS_CPU_MAX, PD_LIMITS_CPU_MAX / 1000);
        return -1;
    }
    *out_millis = (uint32_t)millis;
    return 0;
}

/* Set soft = hard = min(want, current hard). */
static int cap_limit(int resource, const char *rname, uint64_t want, struct pd_err *err)
{
    struct rlimit rl;
    if (getrlimit(resource, &rl) != 0) {
        pd_err_set(err, "getrlimit(%s): %s", rname, strerror(errno));
        return -1;
    }
    rlim_t v = want >= (uint64_t)RLIM_INFINITY ? RLIM_INFINITY : (rlim_t)want;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < v)
        v = rl.rlim_max;
    rl.rlim_cur = v;
    rl.rlim_max = v;
    if (setrlimit(resource, &rl) != 0) {
        pd_err_set(err, "setrlimit(%s, %" PRIu64 "): %s", rname, (uint64_t)v, strerror(errno));
        return -1;
    }
    return 0;
}

int pd_limits_apply_rlimits(const struct pd_limits *lim, struct pd_err *err)
{
    if (cap_limit(RLIMIT_CORE, "RLIMIT_CORE", 0, err) != 0)
        return -1;
    if (!lim)
        return 0;
    if (lim->memory_bytes && cap_limit(RLIMIT_AS, "RLIMIT_AS", lim->memory_bytes, err) != 0)
        return -1;
    if (lim->pids && cap_limit(RLIMIT_NPROC, "RLIMIT_NPROC", lim->pids, err) != 0)
        return -1;
    /* cpu_millis: no rlimit is a rate (RLIMIT_CPU kills after N CPU-seconds): not applied. */
    return 0;
}

void pd_limits_describe_rlimits(const struct pd_limits *lim, char *buf, size_t size)
{
    if (!buf || size == 0)
        return;
    static const struct pd_limits none = {0, 0, 0};
    if (!lim)
        lim = &none;
    char mem[160], pids[200];
    if (lim->memory_bytes)
        snprintf(mem, sizeof mem,
                 "RLIMIT_AS %" PRIu64 " MiB per process (address space, not memory in use: "
                 "runtimes that reserve large ranges may fail)",
                 lim->memory_bytes >> 20);
    else
        snprintf(mem, sizeof mem, "unlimited");
    if (lim->pids)
        snprintf(pids, sizeof pids,
                 "RLIMIT_NPROC %" PRIu64 " counts all processes of uid %u on this host, not only "
                 "the sandbox's",
                 lim->pids, (unsigned)getuid());
    else
        snprintf(pids, sizeof pids, "unlimited");
    snprintf(buf, size,
             "rlimits only (no usable cgroup): memory: %s; processes: %s; cpu: %s; core "
             "dumps: off",
             mem, pids,
             lim->cpu_millis ? "UNLIMITED (rlimits cannot limit a CPU rate)" : "unlimited");
}
