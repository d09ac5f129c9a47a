/*
 * cidr.h - CIDR blocks ("10.0.0.0/8", "2001:db8::/32") for IP rules.
 *
 * Who calls it: the config loader (parse allow/deny IP rules, refusing ambiguous ones), the egress
 * gateway and DNS filter (does this destination address fall inside a rule?).
 *
 * Owns: nothing; no allocation, no state, thread-safe. Inputs are (pointer, length) and never
 * read past the length.
 * Must never: accept a block with host bits set (the user meant something else: the error names
 * the network they probably meant), accept an IPv4 spelling other than strict dotted decimal
 * (config values are unambiguous), or let an IPv4-mapped IPv6 address dodge an IPv4 rule.
 *
 * Decisions:
 * - Syntax: ADDRESS or ADDRESS/PREFIX. ADDRESS is strict IPv4 (a.b.c.d) or IPv6 (brackets
 *   allowed: "[2001:db8::]/32"). A bare address is /32 or /128. PREFIX is decimal without leading
 *   zeros, 0..32 for IPv4 and 0..128 for IPv6.
 * - pd_cidr_contains: an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is matched against an IPv4
 *   block as a.b.c.d, so a deny rule for 169.254.0.0/16 also catches ::ffff:169.254.169.254. The
 *   reverse is NOT done: a plain IPv4 address never matches an IPv6 block (otherwise "::/0" would
 *   quietly allow all of IPv4). Other families never match.
 */
#ifndef PD_NET_CIDR_H
#define PD_NET_CIDR_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "net/ip.h"

struct pd_cidr {
    struct pd_addr net; /* network address, host bits zero */
    unsigned prefix;    /* 0..32 (AF_INET) or 0..128 (AF_INET6) */
};

/* "a.b.c.d/8" + NUL, or the longest IPv6 text + "/128". */
#define PD_CIDR_STRLEN (PD_ADDR_STRLEN + 4)

bool pd_cidr_parse(const char *s, size_t len, struct pd_cidr *out, struct pd_err *err);
bool pd_cidr_contains(const struct pd_cidr *c, const struct pd_addr *a);
/* Canonical text "net/prefix" (always with the prefix); 0 when cap is too small. */
size_t pd_cidr_format(const struct pd_cidr *c, char *buf, size_t cap);

#endif
