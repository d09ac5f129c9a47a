/*
 * fuzz_ip.c - libFuzzer target for IP literal parsing, formatting, classification and CIDR.
 * Invariants: parse -> format -> parse gives the same address; the canonical text also passes the
 * strict parser; IPv6 and strict IPv4 agree with glibc's inet_pton; a lenient IPv4 accepted by us
 * (without a trailing dot) is accepted by inet_aton with the same value; classification always
 * yields PUBLIC or some class; CIDR text round-trips.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/cidr.h"
#include "net/ip.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CLASSES                                                                                       \
    (PD_ADDR_LOOPBACK | PD_ADDR_PRIVATE | PD_ADDR_SHARED | PD_ADDR_LINK_LOCAL | PD_ADDR_METADATA |   \
     PD_ADDR_MULTICAST | PD_ADDR_BROADCAST | PD_ADDR_UNSPECIFIED | PD_ADDR_RESERVED)

static void roundtrip(const struct pd_addr *a)
{
    char txt[PD_ADDR_STRLEN];
    size_t n = pd_addr_format(a, txt, sizeof txt);
    if (n == 0 || strlen(txt) != n)
        abort();
    struct pd_addr b;
    if (!pd_ip_parse(txt, n, &b, NULL) || !pd_addr_equal(a, &b))
        abort();
    if (!pd_ip_parse_strict(txt, n, &b, NULL) || !pd_addr_equal(a, &b))
        abort();
    uint32_t f = pd_addr_classify(a);
    bool pub = (f & PD_ADDR_PUBLIC) != 0;
    if (pub == ((f & CLASSES) != 0))
        abort();
    if (pd_addr_is_public(a) != pub)
        abort();
    struct pd_embedded e[PD_EMBED_MAX];
    size_t ne = pd_addr_embedded(a, e);
    if ((ne > 0) != ((f & PD_ADDR_EMBEDS_IPV4) != 0))
        abort();
    for (size_t i = 0; i < ne; i++) {
        uint32_t g = pd_addr_classify(&e[i].v4) & CLASSES;
        if ((f & g) != g) /* embedded classes are always inherited */
            abort();
    }
    char names[256];
    pd_addr_classes_format(f, names, sizeof names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    char z[512];
    bool zok = size < sizeof z && !memchr(in, '\0', size);
    if (zok) {
        memcpy(z, in, size);
        z[size] = '\0';
    }
    struct pd_addr a;
    struct pd_err err = {{0}};
    bool bracketed = size > 0 && in[0] == '[';

    bool v6 = pd_ipv6_parse(in, size, &a, &err);
    if (v6)
        roundtrip(&a);
    if (zok && !bracketed) {
        unsigned char sys[16];
        int r = inet_pton(AF_INET6, z, sys);
        if ((r == 1) != v6 || (v6 && memcmp(sys, a.bytes, 16) != 0))
            abort();
    }

    bool canon = false;
    bool v4 = pd_ipv4_parse(in, size, &a, &canon, &err);
    if (v4) {
        roundtrip(&a);
        if (zok && size > 0 && in[size - 1] != '.') {
            struct in_addr ia;
            if (inet_aton(z, &ia) == 0 || memcmp(&ia.s_addr, a.bytes, 4) != 0)
                abort();
        }
    }
    struct pd_addr s4;
    bool strict = pd_ipv4_parse_strict(in, size, &s4, &err);
    if (strict && (!v4 || !canon || !pd_addr_equal(&a, &s4)))
        abort();
    if (v4 && canon && !strict)
        abort();
    if (zok) {
        unsigned char sys[4];
        int r = inet_pton(AF_INET, z, sys);
        if ((r == 1) != strict || (strict && memcmp(sys, s4.bytes, 4) != 0))
            abort();
    }

    struct pd_cidr c;
    if (pd_cidr_parse(in, size, &c, &err)) {
        char txt[PD_CIDR_STRLEN];
        size_t n = pd_cidr_format(&c, txt, sizeof txt);
        struct pd_cidr d;
        if (n == 0 || !pd_cidr_parse(txt, n, &d, NULL) || !pd_addr_equal(&c.net, &d.net) || c.prefix != d.prefix)
            abort();
        if (!pd_cidr_contains(&c, &c.net))
            abort();
    } else {
        if (err.msg[0] == '\0')
            abort();
    }
    for (const char *p = err.msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            abort();
    free(in);
    return 0;
}
