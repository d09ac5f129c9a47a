/* host.c - canonical host names and punycode validation; see host.h for the contract. */
#include "net/host.h"

#include <stdio.h>
#include <string.h>

#define ESC(s, n, buf) pd_net_escape((s), (n), PD_NET_ESC_IN, (buf), sizeof(buf))

/* ------------------------------------------------------------------------------------------ */
/* Punycode (RFC 3492 section 6)                                                                 */

enum { PC_BASE = 36, PC_TMIN = 1, PC_TMAX = 26, PC_SKEW = 38, PC_DAMP = 700, PC_BIAS = 72, PC_N = 128 };
#define PC_MAXINT 0xffffffffu

static uint32_t pc_adapt(uint32_t delta, uint32_t numpoints, bool first)
{
    delta = first ? delta / PC_DAMP : delta / 2;
    delta += delta / numpoints;
    uint32_t k = 0;
    while (delta > ((PC_BASE - PC_TMIN) * PC_TMAX) / 2) {
        delta /= PC_BASE - PC_TMIN;
        k += PC_BASE;
    }
    return k + (PC_BASE - PC_TMIN + 1) * delta / (delta + PC_SKEW);
}

static uint32_t pc_digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return (uint32_t)(c - '0' + 26);
    if (c >= 'a' && c <= 'z')
        return (uint32_t)(c - 'a');
    if (c >= 'A' && c <= 'Z')
        return (uint32_t)(c - 'A');
    return PC_BASE;
}

static char pc_digit_char(uint32_t d)
{
    return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

static uint32_t pc_threshold(uint32_t k, uint32_t bias)
{
    if (k <= bias)
        return PC_TMIN;
    if (k >= bias + PC_TMAX)
        return PC_TMAX;
    return k - bias;
}

long pd_punycode_decode(const char *in, size_t len, uint32_t *out, size_t cap)
{
    uint32_t n = PC_N, i = 0, bias = PC_BIAS;
    size_t b = 0, outn = 0;
    if (!in)
        return -1;
    for (size_t j = 0; j < len; j++)
        if (in[j] == '-')
            b = j;
    for (size_t j = 0; j < b; j++) {
        if ((unsigned char)in[j] >= 0x80 || outn >= cap)
            return -1;
        out[outn++] = (unsigned char)in[j];
    }
    for (size_t pos = b > 0 ? b + 1 : 0; pos < len;) {
        uint32_t oldi = i, w = 1;
        for (uint32_t k = PC_BASE;; k += PC_BASE) {
            if (pos >= len)
                return -1;
            uint32_t digit = pc_digit_value(in[pos++]);
            if (digit >= PC_BASE)
                return -1;
            if (digit > (PC_MAXINT - i) / w)
                return -1;
            i += digit * w;
            uint32_t t = pc_threshold(k, bias);
            if (digit < t)
                break;
            if (w > PC_MAXINT / (PC_BASE - t))
                return -1;
            w *= PC_BASE - t;
            if (k > PC_MAXINT - PC_BASE)
                return -1;
        }
        uint32_t np = (uint32_t)outn + 1;
        bias = pc_adapt(i - oldi, np, oldi == 0);
        if (i / np > PC_MAXINT - n)
            return -1;
        n += i / np;
        i %= np;
        if (outn >= cap)
            return -1;
        memmove(out + i + 1, out + i, (outn - i) * sizeof *out);
        out[i++] = n;
        outn++;
    }
    return (long)outn;
}

long pd_punycode_encode(const uint32_t *in, size_t n, char *out, size_t cap)
{
    uint32_t cur = PC_N, delta = 0, bias = PC_BIAS;
    size_t o = 0, h, b = 0;
    for (size_t j = 0; j < n; j++) {
        if (in[j] < 0x80) {
            if (o >= cap)
                return -1;
            out[o++] = (char)in[j];
            b++;
        }
    }
    h = b;
    if (b > 0) {
        if (o >= cap)
            return -1;
        out[o++] = '-';
    }
    while (h < n) {
        uint32_t m = PC_MAXINT;
        for (size_t j = 0; j < n; j++)
            if (in[j] >= cur && in[j] < m)
                m = in[j];
        if ((m - cur) > (PC_MAXINT - delta) / (uint32_t)(h + 1))
            return -1;
        delta += (m - cur) * (uint32_t)(h + 1);
        cur = m;
        for (size_t j = 0; j < n; j++) {
            if (in[j] < cur && ++delta == 0)
                return -1;
            if (in[j] != cur)
                continue;
            uint32_t q = delta;
            for (uint32_t k = PC_BASE;; k += PC_BASE) {
                uint32_t t = pc_threshold(k, bias);
                if (q < t)
                    break;
                if (o >= cap)
                    return -1;
                out[o++] = pc_digit_char(t + (q - t) % (PC_BASE - t));
                q = (q - t) / (PC_BASE - t);
            }
            if (o >= cap)
                return -1;
            out[o++] = pc_digit_char(q);
            bias = pc_adapt(delta, (uint32_t)(h + 1), h == b);
            delta = 0;
            h++;
        }
        delta++;
        cur++;
    }
    return (long)o;
}

bool pd_host_alabel_check(const char *label, size_t len, struct pd_err *err)
{
    char esc[PD_NET_ESC_MAX];
    char low[PD_LABEL_MAX + 1];
    uint32_t cps[PD_LABEL_MAX + 1];
    char enc[PD_LABEL_MAX + 1];
    if (!label || len < 4 || len > PD_LABEL_MAX) {
        pd_err_set(err, "label '%s' is not an 'xn--' label of at most %d characters",
                   ESC(label, label ? len : 0, esc), PD_LABEL_MAX);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = label[i];
        low[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    if (memcmp(low, "xn--", 4) != 0) {
        pd_err_set(err, "label '%s' does not start with 'xn--'", ESC(label, len, esc));
        return false;
    }
    const char *p = low + 4;
    size_t pn = len - 4;
    if (pn == 0) {
        pd_err_set(err, "label '%s' has nothing after 'xn--' (expected the punycode of a Unicode label)",
                   ESC(label, len, esc));
        return false;
    }
    for (size_t i = 0; i < pn; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            pd_err_set(err, "label '%s': punycode allows only letters, digits and '-' after 'xn--' "
                            "(offset %zu)",
                       ESC(label, len, esc), i + 4);
            return false;
        }
    }
    if (p[pn - 1] == '-') {
        pd_err_set(err, "label '%s': punycode must not end with '-' (it would encode only ASCII)",
                   ESC(label, len, esc));
        return false;
    }
    long nc = pd_punycode_decode(p, pn, cps, sizeof cps / sizeof cps[0]);
    if (nc <= 0) {
        pd_err_set(err, "label '%s' is not valid punycode (RFC 3492 decoding fails or overflows)",
                   ESC(label, len, esc));
        return false;
    }
    bool non_ascii = false;
    for (long i = 0; i < nc; i++) {
        uint32_t c = cps[i];
        if (c >= 0x80)
            non_ascii = true;
        if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) || (c >= 0x80 && c <= 0x9f) || c == 0x3002 ||
            c == 0xff0e || c == 0xff61) {
            pd_err_set(err, "label '%s' decodes to code point U+%04X, which is not allowed in a host name",
                       ESC(label, len, esc), (unsigned)c);
            return false;
        }
    }
    if (!non_ascii) {
        pd_err_set(err, "label '%s' decodes to plain ASCII; write the ASCII name without 'xn--'",
                   ESC(label, len, esc));
        return false;
    }
    long el = pd_punycode_encode(cps, (size_t)nc, enc, sizeof enc);
    if (el < 0 || (size_t)el != pn || memcmp(enc, p, pn) != 0) {
        pd_err_set(err, "label '%s' is not the canonical punycode encoding of its Unicode text",
                   ESC(label, len, esc));
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Canonical host                                                                                 */

static bool host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

static const char *char_hint(char c)
{
    switch (c) {
    case '%': return "; percent-encoding is not decoded";
    case '@': return "; user info ('user@') is not part of a host";
    case '/': return "; a path is not part of a host";
    case '\\': return "; a path is not part of a host";
    case '*': return "; wildcards are only allowed in domain patterns";
    default: return "";
    }
}

/* Last label all digits, or "0x"/"0X" followed by hex digits (possibly none). */
static bool ends_in_number(const char *lab, size_t n)
{
    if (n == 0)
        return false;
    size_t i = 0;
    bool hex = n >= 2 && lab[0] == '0' && (lab[1] == 'x' || lab[1] == 'X');
    if (hex) {
        for (i = 2; i < n; i++) {
            char c = lab[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                return false;
        }
        return true;
    }
    for (i = 0; i < n; i++)
        if (lab[i] < '0' || lab[i] > '9')
            return false;
    return true;
}

static enum pd_host_kind addr_result(const struct pd_addr *a, char *out, size_t *out_len,
                                     struct pd_addr *addr)
{
    size_t n = pd_addr_format(a, out, PD_HOST_MAX + 1);
    if (out_len)
        *out_len = n;
    if (addr)
        *addr = *a;
    return PD_HOST_ADDR;
}

enum pd_host_kind pd_host_canon(const char *in, size_t len, char *out, size_t *out_len,
                                struct pd_addr *addr, struct pd_err *err)
{
    char esc[PD_NET_ESC_MAX];
    char cb[PD_NET_ESC_MAX];
    struct pd_err sub;
    if (out)
        out[0] = '\0';
    if (out_len)
        *out_len = 0;
    if (addr)
        memset(addr, 0, sizeof *addr);
    if (!out) {
        pd_err_set(err, "internal error: no output buffer for the canonical host");
        return PD_HOST_INVALID;
    }
    if (!in)
        len = 0;
    if (len == 0) {
        pd_err_set(err, "empty host name (expected e.g. example.com)");
        return PD_HOST_INVALID;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80) {
            pd_err_set(err, "host '%s': byte 0x%02x at offset %zu is not ASCII; Paddock does not "
                            "convert Unicode names: write the name in its ASCII (punycode) form, "
                            "e.g. 'xn--bcher-kva.example' for 'b\\u00fccher.example'",
                       ESC(in, len, esc), c, i);
            return PD_HOST_INVALID;
        }
    }

    /* IPv6 literal, bracketed or not. */
    const char *colon = memchr(in, ':', len);
    if (in[0] == '[' || colon) {
        struct pd_addr a;
        if (pd_ipv6_parse(in, len, &a, &sub))
            return addr_result(&a, out, out_len, addr);
        if (in[0] == '[')
            pd_err_set(err, "host '%s': bracketed host is not a valid IPv6 address: %s", ESC(in, len, esc),
                       sub.msg);
        else
            pd_err_set(err, "host '%s': character ':' at offset %zu is not allowed in a host name "
                            "(expected letters, digits, '-', '_', '.'; a port is not part of the "
                            "host), and it is not a valid IPv6 address either",
                       ESC(in, len, esc), (size_t)(colon - in));
        return PD_HOST_INVALID;
    }

    size_t n = len;
    if (in[n - 1] == '.')
        n--;
    if (n == 0) {
        pd_err_set(err, "host '.': empty name (expected e.g. example.com)");
        return PD_HOST_INVALID;
    }
    if (n > PD_HOST_MAX) {
        pd_err_set(err, "host '%s': %zu characters long, more than the %d allowed", ESC(in, len, esc), n,
                   PD_HOST_MAX);
        return PD_HOST_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        if (!host_char_ok(in[i])) {
            char one[8];
            snprintf(cb, sizeof cb, "%s", pd_net_escape(in + i, 1, 1, one, sizeof one));
            pd_err_set(err, "host '%s': character '%s' at offset %zu is not allowed in a host name "
                            "(expected letters, digits, '-', '_', '.'%s)",
                       ESC(in, len, esc), cb, i, char_hint(in[i]));
            out[0] = '\0';
            return PD_HOST_INVALID;
        }
        char c = in[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[n] = '\0';

    /* WHATWG "ends in a number": then the whole thing is an IPv4 address or nothing. */
    size_t last = n;
    while (last > 0 && out[last - 1] != '.')
        last--;
    if (ends_in_number(out + last, n - last)) {
        struct pd_addr a;
        if (pd_ipv4_parse(in, len, &a, NULL, &sub))
            return addr_result(&a, out, out_len, addr);
        out[0] = '\0';
        pd_err_set(err, "host '%s' ends in a number, so it must be an IPv4 address, but it is not: %s",
                   ESC(in, len, esc), sub.msg);
        return PD_HOST_INVALID;
    }

    for (size_t start = 0; start <= n;) {
        size_t end = start;
        while (end < n && out[end] != '.')
            end++;
        const char *lab = out + start;
        size_t ln = end - start;
        const char *why = NULL;
        if (ln == 0)
            why = "is empty (two dots in a row, or a leading dot)";
        else if (ln > PD_LABEL_MAX)
            why = "is longer than 63 characters";
        else if (lab[0] == '-')
            why = "starts with '-'";
        else if (lab[ln - 1] == '-')
            why = "ends with '-'";
        if (why) {
            pd_err_set(err, "host '%s': label at offset %zu %s (labels are 1..63 characters of letters, "
                            "digits, '-', '_', not starting or ending with '-')",
                       ESC(in, len, esc), start, why);
            out[0] = '\0';
            return PD_HOST_INVALID;
        }
        if (ln >= 4 && lab[2] == '-' && lab[3] == '-') {
            if (lab[0] != 'x' || lab[1] != 'n') {
                pd_err_set(err, "host '%s': label '%s' has '--' in positions 3-4, which IDNA reserves "
                                "for 'xn--' labels",
                           ESC(in, len, esc), ESC(lab, ln, cb));
                out[0] = '\0';
                return PD_HOST_INVALID;
            }
            if (!pd_host_alabel_check(lab, ln, &sub)) {
                pd_err_set(err, "host '%s': %s", ESC(in, len, esc), sub.msg);
                out[0] = '\0';
                return PD_HOST_INVALID;
            }
        }
        start = end + 1;
    }
    if (out_len)
        *out_len = n;
    return PD_HOST_NAME;
}

bool pd_host_canon_name(const char *in, size_t len, char *out, size_t *out_len, struct pd_err *err)
{
    char esc[PD_NET_ESC_MAX];
    enum pd_host_kind k = pd_host_canon(in, len, out, out_len, NULL, err);
    if (k == PD_HOST_NAME)
        return true;
    if (k == PD_HOST_ADDR) {
        pd_err_set(err, "host '%s' is an IP address literal (%s), not a name", ESC(in, len, esc), out);
        out[0] = '\0';
        if (out_len)
            *out_len = 0;
    }
    return false;
}
