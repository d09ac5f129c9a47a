/* cidr.c - CIDR parse / contains / format; see cidr.h for the contract. */
#include "net/cidr.h"

#include <stdio.h>
#include <string.h>

static void mask_bits(uint8_t *b, size_t nbytes, unsigned prefix)
{
    for (size_t i = 0; i < nbytes; i++) {
        unsigned lo = (unsigned)i * 8;
        if (prefix >= lo + 8)
            continue;
        if (prefix <= lo)
            b[i] = 0;
        else
            b[i] = (uint8_t)(b[i] & (uint8_t)(0xffu << (8 - (prefix - lo))));
    }
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
    unsigned full = prefix / 8, rem = prefix % 8;
    if (full && memcmp(a, net, full) != 0)
        return false;
    if (rem) {
        uint8_t m = (uint8_t)(0xffu << (8 - rem));
        if ((a[full] & m) != (net[full] & m))
            return false;
    }
    return true;
}

bool pd_cidr_parse(const char *s, size_t len, struct pd_cidr *out, struct pd_err *err)
{
    char esc[PD_NET_ESC_MAX];
    if (!s)
        len = 0;
    if (len == 0) {
        pd_err_set(err, "empty CIDR (expected e.g. 10.0.0.0/8 or 2001:db8::/32)");
        return false;
    }
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    struct pd_addr a;
    struct pd_err e;
    if (!pd_ip_parse_strict(s, alen, &a, &e)) {
        pd_err_set(err, "CIDR '%s': %s", pd_net_escape(s, len, PD_NET_ESC_IN, esc, sizeof esc), e.msg);
        return false;
    }
    unsigned maxp = a.family == AF_INET ? 32 : 128;
    unsigned prefix = maxp;
    if (slash) {
        const char *p = slash + 1;
        size_t pn = len - alen - 1;
        bool ok = pn >= 1 && pn <= 3 && !(pn > 1 && p[0] == '0');
        unsigned v = 0;
        for (size_t i = 0; ok && i < pn; i++) {
            if (p[i] < '0' || p[i] > '9')
                ok = false;
            else
                v = v * 10 + (unsigned)(p[i] - '0');
        }
        if (!ok || v > maxp) {
            pd_err_set(err, "CIDR '%s': prefix length must be a number 0..%u without leading zeros",
                       pd_net_escape(s, len, PD_NET_ESC_IN, esc, sizeof esc), maxp);
            return false;
        }
        prefix = v;
    }
    struct pd_addr net = a;
    mask_bits(net.bytes, maxp / 8, prefix);
    if (memcmp(net.bytes, a.bytes, sizeof a.bytes) != 0) {
        char nb[PD_ADDR_STRLEN];
        pd_addr_format(&net, nb, sizeof nb);
        pd_err_set(err, "CIDR '%s': host bits are set after the /%u prefix (did you mean %s/%u?)",
                   pd_net_escape(s, len, PD_NET_ESC_IN, esc, sizeof esc), prefix, nb, prefix);
        return false;
    }
    if (out) {
        out->net = net;
        out->prefix = prefix;
    }
    return true;
}

bool pd_cidr_contains(const struct pd_cidr *c, const struct pd_addr *a)
{
    if (!c || !a)
        return false;
    struct pd_addr v = *a;
    if (c->net.family == AF_INET && a->family == AF_INET6)
        pd_addr_unmap(a, &v);
    if (v.family != c->net.family)
        return false;
    if (v.family != AF_INET && v.family != AF_INET6)
        return false;
    unsigned maxp = v.family == AF_INET ? 32 : 128;
    if (c->prefix > maxp)
        return false;
    return prefix_match(v.bytes, c->net.bytes, c->prefix);
}

size_t pd_cidr_format(const struct pd_cidr *c, char *buf, size_t cap)
{
    char tmp[PD_CIDR_STRLEN];
    if (cap > 0)
        buf[0] = '\0';
    size_t n = pd_addr_format(&c->net, tmp, sizeof tmp);
    if (n == 0)
        return 0;
    int w = snprintf(tmp + n, sizeof tmp - n, "/%u", c->prefix);
    if (w < 0 || (size_t)w >= sizeof tmp - n)
        return 0;
    n += (size_t)w;
    if (n + 1 > cap)
        return 0;
    memcpy(buf, tmp, n + 1);
    return n;
}
