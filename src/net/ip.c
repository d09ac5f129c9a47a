/* ip.c - IP literal parsing, formatting and classification; see ip.h for the contract. */
#include "net/ip.h"

#include <stdio.h>
#include <string.h>

#define ESC(s, n, buf) pd_net_escape((s), (n), PD_NET_ESC_IN, (buf), sizeof(buf))

const char *pd_net_escape(const char *s, size_t len, size_t max_in, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    if (!buf || cap == 0)
        return buf;
    if (!s)
        len = 0;
    size_t n = len < max_in ? len : max_in;
    size_t o = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[4];
        size_t k;
        if (c == '\'' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            k = 2;
        } else if (c >= 0x20 && c < 0x7f) {
            tmp[0] = (char)c;
            k = 1;
        } else {
            tmp[0] = '\\';
            tmp[1] = 'x';
            tmp[2] = hex[c >> 4];
            tmp[3] = hex[c & 15];
            k = 4;
        }
        if (o + k + 4 > cap) /* keep room for "..." and the NUL */
            break;
        memcpy(buf + o, tmp, k);
        o += k;
    }
    if (i < len && o + 4 <= cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* One input byte for an error message ("'g'", "'\x00'"). */
static const char *esc_char(char c, char buf[8])
{
    char tmp[6];
    pd_net_escape(&c, 1, 1, tmp, sizeof tmp);
    snprintf(buf, 8, "'%s'", tmp);
    return buf;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void pd_addr_from_v4(struct pd_addr *out, uint32_t v)
{
    memset(out, 0, sizeof *out);
    out->family = AF_INET;
    out->bytes[0] = (uint8_t)(v >> 24);
    out->bytes[1] = (uint8_t)(v >> 16);
    out->bytes[2] = (uint8_t)(v >> 8);
    out->bytes[3] = (uint8_t)v;
}

/* ------------------------------------------------------------------------------------------ */
/* IPv4, lenient (inet_aton / WHATWG)                                                           */

bool pd_ipv4_parse(const char *s, size_t len, struct pd_addr *out, bool *canonical, struct pd_err *err)
{
    char esc[PD_NET_ESC_MAX];
    char cb[8];
    if (!s)
        len = 0;
    if (len == 0) {
        pd_err_set(err, "empty IPv4 address (expected e.g. 192.0.2.1)");
        return false;
    }
    size_t n = len;
    bool canon = true;
    if (s[n - 1] == '.') { /* one trailing dot is allowed, as in a fully-qualified name */
        n--;
        canon = false;
        if (n == 0) {
            pd_err_set(err, "IPv4 address '.': no parts (expected e.g. 192.0.2.1)");
            return false;
        }
    }
    uint32_t parts[4];
    size_t np = 0;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < n && s[i] != '.')
            i++;
        if (np == 4) {
            pd_err_set(err, "IPv4 address '%s': more than 4 parts (expected at most a.b.c.d)",
                       ESC(s, len, esc));
            return false;
        }
        if (i == start) {
            pd_err_set(err, "IPv4 address '%s': empty part at offset %zu (expected a number between dots)",
                       ESC(s, len, esc), start);
            return false;
        }
        const char *p = s + start;
        size_t pn = i - start;
        unsigned base = 10;
        size_t k = 0;
        const char *what = "a decimal digit (0-9)";
        if (pn >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
            base = 16;
            k = 2;
            what = "a hex digit (0-9, a-f) after '0x'";
            if (pn == 2) {
                pd_err_set(err, "IPv4 address '%s': part at offset %zu is '0x' without hex digits",
                           ESC(s, len, esc), start);
                return false;
            }
        } else if (pn >= 2 && p[0] == '0') {
            base = 8;
            k = 1;
            what = "an octal digit (0-7) after a leading '0'";
        }
        if (base != 10)
            canon = false;
        uint64_t v = 0;
        for (; k < pn; k++) {
            int d = hexval(p[k]);
            if (d < 0 || (unsigned)d >= base) {
                pd_err_set(err, "IPv4 address '%s': character %s at offset %zu is not %s",
                           ESC(s, len, esc), esc_char(p[k], cb), start + k, what);
                return false;
            }
            v = v * base + (unsigned)d;
            if (v > 0xffffffffu) {
                pd_err_set(err, "IPv4 address '%s': part at offset %zu does not fit in 32 bits",
                           ESC(s, len, esc), start);
                return false;
            }
        }
        parts[np++] = (uint32_t)v;
        if (i == n)
            break;
        i++; /* the '.'; a following empty part is reported on the next round */
    }
    if (np != 4)
        canon = false;
    for (size_t j = 0; j + 1 < np; j++) {
        if (parts[j] > 255) {
            pd_err_set(err, "IPv4 address '%s': part %zu is %u, out of range (expected 0..255)",
                       ESC(s, len, esc), j + 1, parts[j]);
            return false;
        }
    }
    static const uint32_t last_max[5] = {0, 0xffffffffu, 0xffffffu, 0xffffu, 0xffu};
    if (parts[np - 1] > last_max[np]) {
        pd_err_set(err, "IPv4 address '%s': last part %u is out of range (expected 0..%u with %zu part%s)",
                   ESC(s, len, esc), parts[np - 1], last_max[np], np, np == 1 ? "" : "s");
        return false;
    }
    uint32_t v = parts[np - 1];
    for (size_t j = 0; j + 1 < np; j++)
        v |= parts[j] << (8 * (3 - j));
    if (out)
        pd_addr_from_v4(out, v);
    if (canonical)
        *canonical = canon;
    return true;
}

bool pd_ipv4_parse_strict(const char *s, size_t len, struct pd_addr *out, struct pd_err *err)
{
    char esc[PD_NET_ESC_MAX];
    char cb[8];
    if (!s)
        len = 0;
    if (len == 0) {
        pd_err_set(err, "empty IPv4 address (expected dotted decimal, e.g. 192.0.2.1)");
        return false;
    }
    uint32_t v = 0;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= len || s[i] != '.') {
                pd_err_set(err, "IPv4 address '%s': expected 4 decimal parts a.b.c.d, found %d",
                           ESC(s, len, esc), part);
                return false;
            }
            i++;
        }
        size_t start = i;
        unsigned val = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 4) {
            val = val * 10 + (unsigned)(s[i] - '0');
            i++;
        }
        size_t nd = i - start;
        if (nd == 0) {
            if (i < len && s[i] != '.')
                pd_err_set(err, "IPv4 address '%s': character %s at offset %zu is not allowed "
                                "(expected dotted decimal a.b.c.d)",
                           ESC(s, len, esc), esc_char(s[i], cb), i);
            else
                pd_err_set(err, "IPv4 address '%s': empty part at offset %zu (expected a number 0..255)",
                           ESC(s, len, esc), start);
            return false;
        }
        if (nd > 3 || val > 255) {
            pd_err_set(err, "IPv4 address '%s': part %d is out of range (expected 0..255)",
                       ESC(s, len, esc), part + 1);
            return false;
        }
        if (nd > 1 && s[start] == '0') {
            pd_err_set(err, "IPv4 address '%s': part %d has a leading zero (ambiguous: octal in some "
                            "parsers; write it without leading zeros)",
                       ESC(s, len, esc), part + 1);
            return false;
        }
        v = (v << 8) | val;
    }
    if (i != len) {
        pd_err_set(err, "IPv4 address '%s': unexpected %s at offset %zu (expected exactly a.b.c.d)",
                   ESC(s, len, esc), esc_char(s[i], cb), i);
        return false;
    }
    if (out)
        pd_addr_from_v4(out, v);
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* IPv6 (RFC 4291 section 2.2)                                                                   */

bool pd_ipv6_parse(const char *s, size_t len, struct pd_addr *out, struct pd_err *err)
{
    char esc[PD_NET_ESC_MAX];
    char cb[8];
    if (!s)
        len = 0;
    const char *orig = s;
    size_t olen = len;
    if (len > 0 && s[0] == '[') {
        if (len < 2 || s[len - 1] != ']') {
            pd_err_set(err, "IPv6 address '%s': '[' without a closing ']' at the end", ESC(orig, olen, esc));
            return false;
        }
        s++;
        len -= 2;
    }
    if (len == 0) {
        pd_err_set(err, "empty IPv6 address (expected e.g. 2001:db8::1)");
        return false;
    }
    for (size_t j = 0; j < len; j++) {
        if (s[j] == '%') {
            pd_err_set(err, "IPv6 address '%s': zone ids ('%%' and an interface) are not allowed "
                            "(they name a local interface, not a destination)",
                       ESC(orig, olen, esc));
            return false;
        }
    }
    uint16_t g[8];
    size_t ng = 0;
    long cpos = -1; /* index in g[] where "::" stands */
    size_t i = 0;
    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        cpos = 0;
        i = 2;
    } else if (s[0] == ':') {
        pd_err_set(err, "IPv6 address '%s': starts with a single ':' (expected a group or '::')",
                   ESC(orig, olen, esc));
        return false;
    }
    while (i < len) {
        size_t start = i;
        unsigned v = 0;
        while (i < len && hexval(s[i]) >= 0) {
            if (i - start < 4)
                v = (v << 4) | (unsigned)hexval(s[i]);
            i++;
        }
        if (i < len && s[i] == '.') { /* dotted IPv4 in the last 32 bits */
            struct pd_addr v4;
            struct pd_err e4;
            if (!pd_ipv4_parse_strict(s + start, len - start, &v4, &e4)) {
                pd_err_set(err, "IPv6 address '%s': embedded IPv4 at offset %zu is invalid (expected "
                                "dotted decimal a.b.c.d ending the address)",
                           ESC(orig, olen, esc), start);
                return false;
            }
            if (ng > 6) {
                pd_err_set(err, "IPv6 address '%s': too many groups before the embedded IPv4 "
                                "(expected at most 6)",
                           ESC(orig, olen, esc));
                return false;
            }
            g[ng++] = (uint16_t)((v4.bytes[0] << 8) | v4.bytes[1]);
            g[ng++] = (uint16_t)((v4.bytes[2] << 8) | v4.bytes[3]);
            i = len;
            break;
        }
        if (i == start) {
            if (i < len && s[i] == ':')
                pd_err_set(err, "IPv6 address '%s': empty group at offset %zu (':::' or a second '::'?)",
                           ESC(orig, olen, esc), i);
            else
                pd_err_set(err, "IPv6 address '%s': character %s at offset %zu is not allowed "
                                "(expected hex digits, ':' or a dotted IPv4 tail)",
                           ESC(orig, olen, esc), esc_char(s[i], cb), i);
            return false;
        }
        if (i - start > 4) {
            pd_err_set(err, "IPv6 address '%s': group at offset %zu has more than 4 hex digits",
                       ESC(orig, olen, esc), start);
            return false;
        }
        if (ng == 8) {
            pd_err_set(err, "IPv6 address '%s': more than 8 groups", ESC(orig, olen, esc));
            return false;
        }
        g[ng++] = (uint16_t)v;
        if (i == len)
            break;
        if (s[i] != ':') {
            pd_err_set(err, "IPv6 address '%s': character %s at offset %zu is not allowed "
                            "(expected hex digits, ':' or a dotted IPv4 tail)",
                       ESC(orig, olen, esc), esc_char(s[i], cb), i);
            return false;
        }
        i++;
        if (i < len && s[i] == ':') {
            if (cpos >= 0) {
                pd_err_set(err, "IPv6 address '%s': more than one '::' (at most one is allowed)",
                           ESC(orig, olen, esc));
                return false;
            }
            cpos = (long)ng;
            i++;
        } else if (i == len) {
            pd_err_set(err, "IPv6 address '%s': ends with a single ':' (expected a group or '::')",
                       ESC(orig, olen, esc));
            return false;
        }
    }
    if (cpos < 0 && ng != 8) {
        pd_err_set(err, "IPv6 address '%s': %zu groups without '::' (expected 8)", ESC(orig, olen, esc), ng);
        return false;
    }
    if (cpos >= 0 && ng > 7) {
        pd_err_set(err, "IPv6 address '%s': '::' must stand for at least one zero group, but 8 are "
                        "already written",
                   ESC(orig, olen, esc));
        return false;
    }
    uint16_t full[8] = {0};
    if (cpos < 0) {
        memcpy(full, g, sizeof full);
    } else {
        size_t c = (size_t)cpos;
        size_t tail = ng - c;
        for (size_t j = 0; j < c; j++)
            full[j] = g[j];
        for (size_t j = 0; j < tail; j++)
            full[8 - tail + j] = g[c + j];
    }
    if (out) {
        memset(out, 0, sizeof *out);
        out->family = AF_INET6;
        for (size_t j = 0; j < 8; j++) {
            out->bytes[2 * j] = (uint8_t)(full[j] >> 8);
            out->bytes[2 * j + 1] = (uint8_t)full[j];
        }
    }
    return true;
}

static bool looks_v6(const char *s, size_t len)
{
    if (len > 0 && s[0] == '[')
        return true;
    return memchr(s, ':', len) != NULL;
}

bool pd_ip_parse(const char *s, size_t len, struct pd_addr *out, struct pd_err *err)
{
    if (s && looks_v6(s, len))
        return pd_ipv6_parse(s, len, out, err);
    return pd_ipv4_parse(s, len, out, NULL, err);
}

bool pd_ip_parse_strict(const char *s, size_t len, struct pd_addr *out, struct pd_err *err)
{
    if (s && looks_v6(s, len))
        return pd_ipv6_parse(s, len, out, err);
    return pd_ipv4_parse_strict(s, len, out, err);
}

/* ------------------------------------------------------------------------------------------ */
/* Formatting                                                                                     */

static size_t put_v4(char *p, const uint8_t *b)
{
    int n = snprintf(p, 16, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    return n > 0 ? (size_t)n : 0;
}

size_t pd_addr_format(const struct pd_addr *a, char *buf, size_t cap)
{
    char tmp[PD_ADDR_STRLEN + 8];
    size_t n = 0;
    if (cap > 0)
        buf[0] = '\0';
    if (!a)
        return 0;
    if (a->family == AF_INET) {
        n = put_v4(tmp, a->bytes);
    } else if (a->family == AF_INET6) {
        const uint8_t *b = a->bytes;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, 12) == 0) {
            memcpy(tmp, "::ffff:", 7);
            n = 7 + put_v4(tmp + 7, b + 12);
        } else {
            unsigned g[8];
            for (int j = 0; j < 8; j++)
                g[j] = (unsigned)((b[2 * j] << 8) | b[2 * j + 1]);
            int best = -1, bestlen = 0;
            for (int j = 0; j < 8;) {
                if (g[j] != 0) {
                    j++;
                    continue;
                }
                int k = j;
                while (k < 8 && g[k] == 0)
                    k++;
                if (k - j > bestlen) {
                    best = j;
                    bestlen = k - j;
                }
                j = k;
            }
            if (bestlen < 2)
                best = -1;
            for (int j = 0; j < 8;) {
                if (j == best) {
                    tmp[n++] = ':';
                    if (j == 0)
                        tmp[n++] = ':';
                    j += bestlen;
                    continue;
                }
                int w = snprintf(tmp + n, sizeof tmp - n, "%x", g[j]);
                n += w > 0 ? (size_t)w : 0;
                if (j < 7)
                    tmp[n++] = ':';
                j++;
            }
            /* A run ending at group 7 leaves "x::"; a run in the middle leaves "x::y" because the
             * group before it already wrote its ':' and the run writes one more. */
        }
    } else {
        return 0;
    }
    tmp[n] = '\0';
    if (n + 1 > cap)
        return 0;
    memcpy(buf, tmp, n + 1);
    return n;
}

bool pd_addr_equal(const struct pd_addr *a, const struct pd_addr *b)
{
    if (a->family != b->family)
        return false;
    size_t n = a->family == AF_INET ? 4 : 16;
    return memcmp(a->bytes, b->bytes, n) == 0;
}

bool pd_addr_unmap(const struct pd_addr *a, struct pd_addr *out)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (a->family == AF_INET6 && memcmp(a->bytes, mapped, 12) == 0) {
        struct pd_addr v4;
        memset(&v4, 0, sizeof v4);
        v4.family = AF_INET;
        memcpy(v4.bytes, a->bytes + 12, 4);
        *out = v4;
        return true;
    }
    if (out != a)
        *out = *a;
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Classification                                                                                */

struct range {
    uint8_t prefix;
    uint32_t flags;
    uint8_t b[16];
};

/* IANA IPv4 Special-Purpose Address Registry (RFC 6890 and successors) plus cloud endpoints. */
static const struct range v4_ranges[] = {
    {8, PD_ADDR_UNSPECIFIED, {0}},                   /* 0.0.0.0/8 "this network" (RFC 791/1122) */
    {8, PD_ADDR_PRIVATE, {10}},                      /* 10/8 (RFC 1918) */
    {10, PD_ADDR_SHARED, {100, 64}},                 /* 100.64/10 carrier-grade NAT (RFC 6598) */
    {8, PD_ADDR_LOOPBACK, {127}},                    /* 127/8 (RFC 1122) */
    {16, PD_ADDR_LINK_LOCAL, {169, 254}},            /* 169.254/16 (RFC 3927) */
    {12, PD_ADDR_PRIVATE, {172, 16}},                /* 172.16/12 (RFC 1918) */
    {24, PD_ADDR_RESERVED, {192, 0, 0}},             /* IETF protocol assignments (RFC 6890) */
    {24, PD_ADDR_RESERVED, {192, 0, 2}},             /* TEST-NET-1 documentation (RFC 5737) */
    {24, PD_ADDR_RESERVED, {192, 88, 99}},           /* 6to4 relay anycast, deprecated (RFC 7526) */
    {16, PD_ADDR_PRIVATE, {192, 168}},               /* 192.168/16 (RFC 1918) */
    {15, PD_ADDR_RESERVED, {198, 18}},               /* benchmarking (RFC 2544) */
    {24, PD_ADDR_RESERVED, {198, 51, 100}},          /* TEST-NET-2 documentation (RFC 5737) */
    {24, PD_ADDR_RESERVED, {203, 0, 113}},           /* TEST-NET-3 documentation (RFC 5737) */
    {4, PD_ADDR_MULTICAST, {224}},                   /* 224/4 (RFC 5771) */
    {4, PD_ADDR_RESERVED, {240}},                    /* 240/4 future use (RFC 1112) */
    {32, PD_ADDR_BROADCAST, {255, 255, 255, 255}},   /* limited broadcast (RFC 919) */
    /* Cloud metadata / credential endpoints: */
    {32, PD_ADDR_METADATA, {169, 254, 169, 254}},    /* IMDS: AWS, GCP, Azure, OCI, DigitalOcean, OpenStack */
    {32, PD_ADDR_METADATA, {169, 254, 169, 123}},    /* AWS Time Sync Service (NTP) */
    {32, PD_ADDR_METADATA, {169, 254, 170, 2}},      /* AWS ECS task metadata + task role credentials */
    {32, PD_ADDR_METADATA, {169, 254, 170, 23}},     /* AWS EKS Pod Identity Agent (credentials) */
    {32, PD_ADDR_METADATA, {100, 100, 100, 200}},    /* Alibaba Cloud ECS metadata */
    {32, PD_ADDR_METADATA, {168, 63, 129, 16}},      /* Azure WireServer (host agent, DNS, health) */
    {32, PD_ADDR_METADATA, {192, 0, 0, 192}},        /* Oracle Cloud (OCI classic) metadata */
};

/* IANA IPv6 Special-Purpose Address Registry plus cloud endpoints. */
static const struct range v6_ranges[] = {
    {128, PD_ADDR_UNSPECIFIED, {0}},                                     /* :: (RFC 4291) */
    {128, PD_ADDR_LOOPBACK, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}, /* ::1 */
    {64, PD_ADDR_RESERVED, {0x01, 0x00}},                                /* 100::/64 discard-only (RFC 6666) */
    {48, PD_ADDR_RESERVED, {0x20, 0x01, 0x00, 0x02}},                    /* 2001:2::/48 benchmarking (RFC 5180) */
    {28, PD_ADDR_RESERVED, {0x20, 0x01, 0x00, 0x10}},                    /* 2001:10::/28 ORCHID, deprecated (RFC 4843) */
    {32, PD_ADDR_RESERVED, {0x20, 0x01, 0x0d, 0xb8}},                    /* 2001:db8::/32 documentation (RFC 3849) */
    {20, PD_ADDR_RESERVED, {0x3f, 0xff}},                                /* 3fff::/20 documentation (RFC 9637) */
    {7, PD_ADDR_PRIVATE, {0xfc}},                                        /* fc00::/7 unique local (RFC 4193) */
    {10, PD_ADDR_LINK_LOCAL, {0xfe, 0x80}},                              /* fe80::/10 (RFC 4291) */
    {10, PD_ADDR_RESERVED, {0xfe, 0xc0}},                                /* fec0::/10 site-local, deprecated (RFC 3879) */
    {8, PD_ADDR_MULTICAST, {0xff}},                                      /* ff00::/8 (RFC 4291) */
    /* Cloud metadata / credential endpoints: */
    {128, PD_ADDR_METADATA, {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}}, /* fd00:ec2::254 AWS IMDS (IPv6, Nitro) */
    {128, PD_ADDR_METADATA, {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x23}}, /* fd00:ec2::23 AWS EKS Pod Identity Agent (IPv6) */
    {128, PD_ADDR_METADATA, {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x23}}, /* fd00:ec2::123 AWS Time Sync (IPv6) */
    {128, PD_ADDR_METADATA, {0xfd, 0x20, 0x00, 0xce, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}}, /* fd20:ce::254 GCP metadata server (IPv6) */
};

#define CLASS_MASK                                                                                   \
    (PD_ADDR_LOOPBACK | PD_ADDR_PRIVATE | PD_ADDR_SHARED | PD_ADDR_LINK_LOCAL | PD_ADDR_METADATA |  \
     PD_ADDR_MULTICAST | PD_ADDR_BROADCAST | PD_ADDR_UNSPECIFIED | PD_ADDR_RESERVED)

static bool in_prefix(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
    unsigned full = prefix / 8, rem = prefix % 8;
    if (full && memcmp(a, net, full) != 0)
        return false;
    if (rem) {
        uint8_t mask = (uint8_t)(0xffu << (8 - rem));
        if ((a[full] & mask) != (net[full] & mask))
            return false;
    }
    return true;
}

static uint32_t match_ranges(const uint8_t *b, const struct range *r, size_t n)
{
    uint32_t f = 0;
    for (size_t i = 0; i < n; i++)
        if (in_prefix(b, r[i].b, r[i].prefix))
            f |= r[i].flags;
    return f;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static void emb_put(struct pd_embedded *out, size_t *n, enum pd_embed_kind k, const uint8_t v[4], uint8_t x)
{
    if (*n >= PD_EMBED_MAX)
        return;
    struct pd_embedded *e = &out[(*n)++];
    memset(e, 0, sizeof *e);
    e->kind = k;
    e->v4.family = AF_INET;
    for (int i = 0; i < 4; i++)
        e->v4.bytes[i] = (uint8_t)(v[i] ^ x);
}

size_t pd_addr_embedded(const struct pd_addr *a, struct pd_embedded out[PD_EMBED_MAX])
{
    size_t n = 0;
    if (!a || a->family != AF_INET6)
        return 0;
    const uint8_t *b = a->bytes;
    if (all_zero(b, 10) && b[10] == 0xff && b[11] == 0xff)
        emb_put(out, &n, PD_EMBED_MAPPED, b + 12, 0);
    else if (all_zero(b, 12) && !(all_zero(b + 12, 3) && b[15] <= 1))
        emb_put(out, &n, PD_EMBED_COMPAT, b + 12, 0);
    if (all_zero(b, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0)
        emb_put(out, &n, PD_EMBED_TRANSLATED, b + 12, 0);
    static const uint8_t nat64[4] = {0x00, 0x64, 0xff, 0x9b};
    if (memcmp(b, nat64, 4) == 0 && all_zero(b + 4, 8))
        emb_put(out, &n, PD_EMBED_NAT64, b + 12, 0);
    if (memcmp(b, nat64, 4) == 0 && b[4] == 0x00 && b[5] == 0x01) {
        emb_put(out, &n, PD_EMBED_NAT64_LOCAL, b + 12, 0);
    }
    if (b[0] == 0x20 && b[1] == 0x02)
        emb_put(out, &n, PD_EMBED_6TO4, b + 2, 0);
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) {
        emb_put(out, &n, PD_EMBED_TEREDO_SERVER, b + 4, 0);
        emb_put(out, &n, PD_EMBED_TEREDO_CLIENT, b + 12, 0xff);
    }
    if ((b[8] & 0xfc) == 0 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe)
        emb_put(out, &n, PD_EMBED_ISATAP, b + 12, 0);
    return n;
}

bool pd_addr_embedded_ipv4(const struct pd_addr *a, struct pd_addr *v4, enum pd_embed_kind *kind)
{
    struct pd_embedded e[PD_EMBED_MAX];
    if (pd_addr_embedded(a, e) == 0)
        return false;
    if (v4)
        *v4 = e[0].v4;
    if (kind)
        *kind = e[0].kind;
    return true;
}

const char *pd_embed_kind_name(enum pd_embed_kind kind)
{
    switch (kind) {
    case PD_EMBED_NONE: return "none";
    case PD_EMBED_MAPPED: return "ipv4-mapped";
    case PD_EMBED_COMPAT: return "ipv4-compatible";
    case PD_EMBED_TRANSLATED: return "ipv4-translated";
    case PD_EMBED_NAT64: return "nat64";
    case PD_EMBED_NAT64_LOCAL: return "nat64-local";
    case PD_EMBED_6TO4: return "6to4";
    case PD_EMBED_TEREDO_SERVER: return "teredo-server";
    case PD_EMBED_TEREDO_CLIENT: return "teredo-client";
    case PD_EMBED_ISATAP: return "isatap";
    }
    return "unknown";
}

uint32_t pd_addr_classify(const struct pd_addr *a)
{
    uint32_t f;
    if (!a)
        return 0;
    if (a->family == AF_INET) {
        f = match_ranges(a->bytes, v4_ranges, sizeof v4_ranges / sizeof v4_ranges[0]);
    } else if (a->family == AF_INET6) {
        f = match_ranges(a->bytes, v6_ranges, sizeof v6_ranges / sizeof v6_ranges[0]);
        struct pd_embedded e[PD_EMBED_MAX];
        size_t n = pd_addr_embedded(a, e);
        for (size_t i = 0; i < n; i++)
            f |= match_ranges(e[i].v4.bytes, v4_ranges, sizeof v4_ranges / sizeof v4_ranges[0]);
        if (n)
            f |= PD_ADDR_EMBEDS_IPV4;
        /* 64:ff9b:1::/48 outside its /96 layout: the IPv4 position is unknowable (see ip.h). */
        static const uint8_t nat64l[6] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};
        if (memcmp(a->bytes, nat64l, 6) == 0 && !all_zero(a->bytes + 6, 6))
            f |= PD_ADDR_RESERVED;
        /* Outside 2000::/3 (global unicast) everything not listed above is unallocated. */
        if ((a->bytes[0] & 0xe0) != 0x20 && !(f & CLASS_MASK) && n == 0)
            f |= PD_ADDR_RESERVED;
    } else {
        return 0;
    }
    if (!(f & CLASS_MASK))
        f |= PD_ADDR_PUBLIC;
    return f;
}

bool pd_addr_is_public(const struct pd_addr *a)
{
    uint32_t f = pd_addr_classify(a);
    return (f & PD_ADDR_PUBLIC) && !(f & CLASS_MASK);
}

static const char *const class_names[PD_ADDR_CLASS_COUNT] = {
    "loopback", "private", "shared", "link-local", "metadata", "multicast",
    "broadcast", "unspecified", "reserved", "public", "embeds-ipv4",
};

const char *pd_addr_class_name(uint32_t flag)
{
    for (unsigned i = 0; i < PD_ADDR_CLASS_COUNT; i++)
        if (flag == (1u << i))
            return class_names[i];
    return "unknown";
}

size_t pd_addr_classes_format(uint32_t flags, char *buf, size_t cap)
{
    size_t o = 0;
    if (!buf || cap == 0)
        return 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < PD_ADDR_CLASS_COUNT; i++) {
        if (!(flags & (1u << i)))
            continue;
        const char *nm = class_names[i];
        size_t l = strlen(nm);
        if (o > 0) {
            if (o + 1 >= cap)
                break;
            buf[o++] = ',';
        }
        size_t take = l < cap - 1 - o ? l : cap - 1 - o;
        memcpy(buf + o, nm, take);
        o += take;
        buf[o] = '\0';
        if (take < l)
            break;
    }
    buf[o] = '\0';
    return o;
}
