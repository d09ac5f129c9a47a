/*
 * ip.h - IP address literals: parsing (every spelling a resolver or URL parser accepts), canonical
 * formatting, and classification (loopback, private, metadata, ...), including the IPv4 address
 * hidden inside IPv6 transition forms.
 *
 * Who calls it: the egress gateway (is the destination address allowed? is it public?), the DNS
 * filter (classify every answer before handing it to an agent), the host canonicaliser (host.h:
 * "0x7f.1" is an address, not a name), the CIDR and config code (strict parsing of rule values),
 * `paddock inspect-host` (class names).
 *
 * Owns: nothing. Every function works on caller memory, never allocates, keeps no state and is
 * thread-safe. Inputs are (pointer, length), never assumed NUL-terminated, never read past `len`.
 * Must never: accept a string it cannot map to exactly one address, accept a zone id, print input
 * bytes raw in an error (see pd_net_escape), or report an address as PUBLIC when any class applies.
 *
 * Decisions:
 * - Lenient IPv4 (pd_ipv4_parse) is the inet_aton / WHATWG URL grammar: 1 to 4 parts separated by
 *   '.', each decimal, octal (leading '0') or hex ("0x"/"0X"); the last part fills the remaining
 *   bytes; one trailing '.' is allowed. Stricter than both where they are ambiguous: "0x" with no
 *   digit (glibc reads it as 0) is refused, as is any empty part, any part out of range, and any
 *   whitespace or trailing byte (glibc's inet_aton stops at whitespace and ignores the rest).
 * - Strict IPv4 (pd_ipv4_parse_strict) is for config values: exactly a.b.c.d, decimal 0..255, no
 *   leading zeros, no trailing dot.
 * - IPv6 is RFC 4291 text: 8 groups of 1..4 hex digits, at most one "::" (standing for one or more
 *   zero groups), an optional dotted-quad IPv4 tail (strict: decimal, no leading zeros) in the last
 *   32 bits, optionally inside "[...]". Zone ids ("%eth0", "%25eth0") are refused: a zone names a
 *   local interface and has no meaning for an egress destination.
 * - Formatting: IPv4 dotted quad; IPv6 per RFC 5952 (lowercase, no leading zeros, the longest run
 *   of two or more zero groups compressed, the leftmost on a tie). IPv4-mapped addresses
 *   (::ffff:0:0/96) are written in the mixed form RFC 5952 section 5 recommends: "::ffff:127.0.0.1".
 * - family is AF_INET or AF_INET6 (from <sys/socket.h>); IPv4 bytes are in bytes[0..3] and the
 *   rest of bytes[] is zero.
 *
 * Classification: see PD_ADDR_* below and the tables in ip.c (each range names its RFC or cloud).
 * IPv6 addresses that embed an IPv4 address (mapped, compatible, translated, NAT64, 6to4, Teredo,
 * ISATAP) get the classes of every embedded IPv4 address OR-ed in, plus PD_ADDR_EMBEDS_IPV4, so
 * ::ffff:127.0.0.1, 64:ff9b::7f00:1, 2002:7f00:1:: and friends are all LOOPBACK. IPv6 space
 * outside 2000::/3 that is not one of the listed special ranges is not allocated by IANA
 * ("reserved by IETF") and is classified RESERVED rather than PUBLIC.
 */
#ifndef PD_NET_IP_H
#define PD_NET_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/err.h"

struct pd_addr {
    int family;        /* AF_INET or AF_INET6 (0 when unset) */
    uint8_t bytes[16]; /* network order; IPv4 in bytes[0..3], rest zero */
};

/* Longest canonical text, including the NUL ("ffff:ffff:...:255.255.255.255" is 45 chars). */
#define PD_ADDR_STRLEN 46

/* ---- Parsing. All return true on success and fill *out; on failure fill *err (may be NULL). ---- */

/* IPv4 in any inet_aton/WHATWG spelling (127.1, 0x7f.1, 2130706433, 0177.0.0.1, "127.0.0.1.").
 * *canonical (may be NULL) is set to true when the spelling was exactly the canonical dotted quad. */
bool pd_ipv4_parse(const char *s, size_t len, struct pd_addr *out, bool *canonical, struct pd_err *err);
/* Only a.b.c.d, decimal 0..255, no leading zeros, nothing else (config values). */
bool pd_ipv4_parse_strict(const char *s, size_t len, struct pd_addr *out, struct pd_err *err);
/* IPv6 text, with or without surrounding brackets. */
bool pd_ipv6_parse(const char *s, size_t len, struct pd_addr *out, struct pd_err *err);
/* Either family: bracketed or containing ':' is IPv6, anything else lenient IPv4. */
bool pd_ip_parse(const char *s, size_t len, struct pd_addr *out, struct pd_err *err);
/* Either family, IPv4 strict (config values). */
bool pd_ip_parse_strict(const char *s, size_t len, struct pd_addr *out, struct pd_err *err);

/* ---- Formatting and helpers. ---- */

/* Canonical text into buf (NUL-terminated). Returns the length, or 0 when cap is too small
 * (PD_ADDR_STRLEN always suffices) or the family is unknown (buf then holds "" if cap > 0). */
size_t pd_addr_format(const struct pd_addr *a, char *buf, size_t cap);
bool pd_addr_equal(const struct pd_addr *a, const struct pd_addr *b);
void pd_addr_from_v4(struct pd_addr *out, uint32_t host_order);
/* For ::ffff:a.b.c.d returns true and sets *out to a.b.c.d (AF_INET); otherwise copies *a to *out
 * and returns false. The gateway applies this before policy so the two spellings are one address. */
bool pd_addr_unmap(const struct pd_addr *a, struct pd_addr *out);

/* ---- Classification (bit flags; an address can have several). ---- */
#define PD_ADDR_LOOPBACK (1u << 0)    /* 127/8, ::1 */
#define PD_ADDR_PRIVATE (1u << 1)     /* 10/8, 172.16/12, 192.168/16, fc00::/7 */
#define PD_ADDR_SHARED (1u << 2)      /* 100.64/10 carrier-grade NAT (RFC 6598) */
#define PD_ADDR_LINK_LOCAL (1u << 3)  /* 169.254/16, fe80::/10 */
#define PD_ADDR_METADATA (1u << 4)    /* cloud instance metadata / credential endpoints */
#define PD_ADDR_MULTICAST (1u << 5)   /* 224/4, ff00::/8 */
#define PD_ADDR_BROADCAST (1u << 6)   /* 255.255.255.255 */
#define PD_ADDR_UNSPECIFIED (1u << 7) /* 0/8 "this network", :: */
#define PD_ADDR_RESERVED (1u << 8)    /* documentation, benchmarking, future use, deprecated, ... */
#define PD_ADDR_PUBLIC (1u << 9)      /* none of the classes above */
#define PD_ADDR_EMBEDS_IPV4 (1u << 10) /* IPv6 carrying an IPv4 address (not a class: combines) */
#define PD_ADDR_CLASS_COUNT 11

/* Class flags of an address (always non-zero for AF_INET/AF_INET6: at least PUBLIC); 0 for an
 * unknown family. */
uint32_t pd_addr_classify(const struct pd_addr *a);
/* True only for a valid address with no class but PUBLIC (EMBEDS_IPV4 alone does not disqualify:
 * ::ffff:8.8.8.8 is public). */
bool pd_addr_is_public(const struct pd_addr *a);
/* Name of one flag ("loopback", "private", "shared", "link-local", "metadata", "multicast",
 * "broadcast", "unspecified", "reserved", "public", "embeds-ipv4"); "unknown" otherwise. */
const char *pd_addr_class_name(uint32_t flag);
/* All names of `flags`, comma-separated ("loopback,embeds-ipv4"); returns the length, truncating
 * at cap-1 (buf always NUL-terminated when cap > 0). */
size_t pd_addr_classes_format(uint32_t flags, char *buf, size_t cap);

/* ---- Embedded IPv4 (IPv6 transition forms). ---- */
enum pd_embed_kind {
    PD_EMBED_NONE = 0,
    PD_EMBED_MAPPED,        /* ::ffff:0:0/96, last 32 bits (RFC 4291) */
    PD_EMBED_COMPAT,        /* ::/96 except :: and ::1, last 32 bits (RFC 4291, deprecated) */
    PD_EMBED_TRANSLATED,    /* ::ffff:0:0:0/96, last 32 bits (RFC 2765 SIIT) */
    PD_EMBED_NAT64,         /* 64:ff9b::/96, last 32 bits (RFC 6052) */
    PD_EMBED_NAT64_LOCAL,   /* 64:ff9b:1::/48, last 32 bits (RFC 8215; see the note below) */
    PD_EMBED_6TO4,          /* 2002::/16, bits 16..47 (RFC 3056) */
    PD_EMBED_TEREDO_SERVER, /* 2001::/32, bits 32..63 (RFC 4380) */
    PD_EMBED_TEREDO_CLIENT, /* 2001::/32, last 32 bits XOR 0xffffffff (RFC 4380) */
    PD_EMBED_ISATAP,        /* interface id [0-3]00:5efe:a.b.c.d, any prefix (RFC 5214) */
};
#define PD_EMBED_MAX 4
/* Note on 64:ff9b:1::/48: RFC 8215 lets an operator use any RFC 6052 prefix length inside it, and
 * the IPv4 position depends on that length. Paddock reads the last 32 bits (the /96 layout) and
 * classifies every address of the /48 whose bits 48..95 are not zero as RESERVED as well, so no
 * other layout can smuggle a loopback/metadata address past the check. */

struct pd_embedded {
    enum pd_embed_kind kind;
    struct pd_addr v4;
};

/* Every IPv4 address embedded in `a` (at most PD_EMBED_MAX, in the enum's order); returns the
 * count, 0 for IPv4 or plain IPv6. */
size_t pd_addr_embedded(const struct pd_addr *a, struct pd_embedded out[PD_EMBED_MAX]);
/* The first embedded IPv4 address (the Teredo server comes before the client); false if none. */
bool pd_addr_embedded_ipv4(const struct pd_addr *a, struct pd_addr *v4, enum pd_embed_kind *kind);
const char *pd_embed_kind_name(enum pd_embed_kind kind);

/* ---- Shared by the net module's error messages. ---- */

/* Copy `len` bytes of untrusted input into buf for an error message: printable ASCII as is
 * (except '\'' and '\\', escaped), everything else as \xNN; cut with "..." beyond `max_in` input
 * bytes or when buf is full. Always NUL-terminates (cap > 0). Returns buf. */
const char *pd_net_escape(const char *s, size_t len, size_t max_in, char *buf, size_t cap);
/* Buffer size for pd_net_escape with max_in = PD_NET_ESC_IN. */
#define PD_NET_ESC_IN 64
#define PD_NET_ESC_MAX (PD_NET_ESC_IN * 4 + 4)

#endif
