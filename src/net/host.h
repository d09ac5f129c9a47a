/*
 * host.h - the canonical form of a destination host (what an agent asked to connect to).
 *
 * Who calls it: the egress gateway (CONNECT / Host / URL authority -> one canonical host before any
 * allowlist decision), the DNS filter (query names), the config loader (through domain.h: every
 * domain pattern is canonicalised with these rules), `paddock inspect-host`.
 *
 * Owns: nothing. Output goes into a caller buffer of PD_HOST_MAX + 1 bytes; no allocation, no
 * state, thread-safe. Inputs are (pointer, length), never NUL-terminated by contract, never read
 * past `len`.
 * Must never: return a name that some resolver or URL parser would read as an IP address (every
 * IPv4/IPv6 spelling is reported as PD_HOST_ADDR with the parsed address instead), accept a byte
 * outside [A-Za-z0-9-_.], decode percent-encoding, map Unicode, or print input bytes raw in errors.
 *
 * Canonical name rules (decisions):
 * - ASCII letters folded to lower case. ONE trailing dot is removed ("example.com." ->
 *   "example.com"); "example.com..", "." and "" are invalid.
 * - At most 253 characters after removing the dot; labels 1..63 characters of [a-z0-9-_]
 *   ('_' is allowed: real names such as _dmarc.example.com use it); a label must not start or end
 *   with '-'. Labels with "--" in positions 3-4 are reserved by IDNA2008 and refused unless they
 *   are "xn--" A-labels.
 * - IDNA: no Unicode mapping (no libidn2). Any byte >= 0x80 is refused with an error asking for the
 *   ASCII (punycode, "xn--") form. An A-label is accepted as written (lower-cased) when it is valid
 *   punycode: after "xn--" only [a-z0-9-], not ending in '-', decodable by RFC 3492 without
 *   overflow, decoding to at least one non-ASCII code point, none of them a surrogate, beyond
 *   U+10FFFF, a C1 control or a Unicode full stop look-alike (U+3002, U+FF0E, U+FF61), and the
 *   label must be exactly the RFC 3492 encoding of what it decodes to (no alternative spellings).
 *   Full IDNA2008 validity of the Unicode text (PVALID tables, bidi, contextual rules) is not
 *   checked.
 * - IP literals (WHATWG URL rule): if the last label (after removing one trailing dot) is all
 *   digits, or "0x"/"0X" followed by zero or more hex digits, the whole input must be an IPv4
 *   address in one of the lenient spellings (ip.h), and is returned as PD_HOST_ADDR; otherwise it
 *   is invalid ("1.2.3.256", "foo.1" and "foo.0x" are invalid). "0x" alone counts because glibc's
 *   inet_aton reads it as 0.0.0.0. Input starting with '[' or containing ':' must be an IPv6
 *   address (brackets optional, zone ids refused) and is returned as PD_HOST_ADDR.
 * - For PD_HOST_ADDR the output buffer holds the canonical address text (ip.h formatting, no
 *   brackets), so canonicalising the output again gives the same result.
 */
#ifndef PD_NET_HOST_H
#define PD_NET_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "net/ip.h"

#define PD_HOST_MAX 253
#define PD_LABEL_MAX 63

enum pd_host_kind {
    PD_HOST_INVALID = 0, /* *err says why */
    PD_HOST_NAME = 1,    /* out holds the canonical name */
    PD_HOST_ADDR = 2,    /* *addr holds the address; out holds its canonical text */
};

/* Canonicalise `in`. `out` must have room for PD_HOST_MAX + 1 bytes and is NUL-terminated on
 * success ("" on failure); *out_len (may be NULL) receives its length; *addr (may be NULL) receives
 * the address for PD_HOST_ADDR and is zeroed otherwise. */
enum pd_host_kind pd_host_canon(const char *in, size_t len, char *out, size_t *out_len,
                                struct pd_addr *addr, struct pd_err *err);

/* Same, but an IP literal is an error (for places that need a name: DNS query names, domain
 * patterns). Returns true for a name. */
bool pd_host_canon_name(const char *in, size_t len, char *out, size_t *out_len, struct pd_err *err);

/* Validate one "xn--" A-label (any case, no dot) as described above; exposed for tests and for
 * `paddock inspect-host`. */
bool pd_host_alabel_check(const char *label, size_t len, struct pd_err *err);

/* RFC 3492 decode of the part after "xn--": up to `cap` code points into out; returns the count,
 * or -1 on invalid input or overflow. */
long pd_punycode_decode(const char *in, size_t len, uint32_t *out, size_t cap);
/* RFC 3492 encode (lower-case digits); returns the length written (no NUL), or -1 if it does not
 * fit in `cap` or overflows. */
long pd_punycode_encode(const uint32_t *in, size_t n, char *out, size_t cap);

#endif
