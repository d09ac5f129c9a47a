/* domain.c - domain pattern compile / match / format; see domain.h for the contract. */
#include "net/domain.h"

#include <string.h>

#define ESC(s, n, buf) pd_net_escape((s), (n), PD_NET_ESC_IN, (buf), sizeof(buf))

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* ASCII case-insensitive equality of two length-n ranges (no NUL handling: bytes are bytes). */
static bool eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

static unsigned count_labels(const char *s, size_t n)
{
    unsigned c = n ? 1 : 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.')
            c++;
    return c;
}

bool pd_domain_compile(const char *text, size_t len, struct pd_domain *out, struct pd_err *err)
{
    char esc[PD_NET_ESC_MAX];
    char canon[PD_HOST_MAX + 1];
    size_t cl = 0;
    struct pd_addr a;
    struct pd_err sub;
    if (!text)
        len = 0;
    if (len == 0) {
        pd_err_set(err, "empty domain pattern (expected 'example.com' or '*.example.com')");
        return false;
    }
    const char *body = text;
    size_t blen = len;
    bool wild = false;
    const char *star = memchr(text, '*', len);
    if (star) {
        if (len == 1 || (len == 2 && text[1] == '.')) {
            pd_err_set(err, "domain pattern '%s' would match every host; list the domains instead "
                            "(e.g. '*.example.com')",
                       ESC(text, len, esc));
            return false;
        }
        if (text[0] != '*' || text[1] != '.') {
            pd_err_set(err, "domain pattern '%s': '*' at offset %zu is only allowed as the whole "
                            "leftmost label, as in '*.example.com'",
                       ESC(text, len, esc), (size_t)(star - text));
            return false;
        }
        body = text + 2;
        blen = len - 2;
        const char *star2 = memchr(body, '*', blen);
        if (star2) {
            pd_err_set(err, "domain pattern '%s': '*' at offset %zu is not allowed; '*' may appear "
                            "only once, as the whole leftmost label ('*.example.com')",
                       ESC(text, len, esc), (size_t)(star2 - text));
            return false;
        }
        wild = true;
    }
    enum pd_host_kind k = pd_host_canon(body, blen, canon, &cl, &a, &sub);
    if (k == PD_HOST_INVALID) {
        pd_err_set(err, "domain pattern '%s': %s", ESC(text, len, esc), sub.msg);
        return false;
    }
    if (k == PD_HOST_ADDR) {
        pd_err_set(err, "domain pattern '%s' %s an IP address (%s); use an IP/CIDR rule for addresses",
                   ESC(text, len, esc), wild ? "has a suffix that is" : "is", canon);
        return false;
    }
    if (wild) {
        if (count_labels(canon, cl) < 2) {
            pd_err_set(err, "domain pattern '%s' would match a whole top-level domain; a wildcard "
                            "needs a suffix of at least two labels (e.g. '*.example.com')",
                       ESC(text, len, esc));
            return false;
        }
        if (cl > PD_DOMAIN_SUFFIX_MAX) {
            pd_err_set(err, "domain pattern '%s': suffix is %zu characters, so no host of at most %d "
                            "characters could match (suffix at most %d)",
                       ESC(text, len, esc), cl, PD_HOST_MAX, PD_DOMAIN_SUFFIX_MAX);
            return false;
        }
    }
    if (out) {
        memset(out, 0, sizeof *out);
        out->kind = wild ? PD_DOMAIN_WILDCARD : PD_DOMAIN_EXACT;
        out->len = cl;
        memcpy(out->name, canon, cl + 1);
    }
    return true;
}

bool pd_domain_match(const struct pd_domain *p, const char *host, size_t len)
{
    if (!p || !host || p->len == 0 || p->len > PD_HOST_MAX)
        return false;
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0)
        return false;
    if (p->kind == PD_DOMAIN_EXACT)
        return len == p->len && eq_nocase(host, p->name, len);
    if (p->kind != PD_DOMAIN_WILDCARD)
        return false;
    /* At least one label, then '.', then exactly the suffix. */
    if (len < p->len + 2)
        return false;
    size_t dot = len - p->len - 1;
    if (host[dot] != '.' || host[dot - 1] == '.')
        return false;
    return eq_nocase(host + dot + 1, p->name, p->len);
}

unsigned pd_domain_specificity(const struct pd_domain *p)
{
    if (!p)
        return 0;
    if (p->kind == PD_DOMAIN_EXACT)
        return PD_DOMAIN_SPEC_EXACT;
    if (p->kind == PD_DOMAIN_WILDCARD)
        return count_labels(p->name, p->len);
    return 0;
}

size_t pd_domain_format(const struct pd_domain *p, char *buf, size_t cap)
{
    if (cap > 0)
        buf[0] = '\0';
    if (!p || p->len > PD_HOST_MAX)
        return 0;
    size_t pre = p->kind == PD_DOMAIN_WILDCARD ? 2 : 0;
    size_t n = pre + p->len;
    if (n + 1 > cap)
        return 0;
    if (pre)
        memcpy(buf, "*.", 2);
    memcpy(buf + pre, p->name, p->len);
    buf[n] = '\0';
    return n;
}

bool pd_domain_equal(const struct pd_domain *a, const struct pd_domain *b)
{
    return a->kind == b->kind && a->len == b->len && memcmp(a->name, b->name, a->len) == 0;
}
