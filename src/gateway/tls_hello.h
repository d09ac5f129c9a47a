/*
 * tls_hello.h - strict, bounded parser for the TLS ClientHello an agent sends into a CONNECT
 * tunnel.
 *
 * What: after the gateway answers `200 Connection established`, the first bytes the agent sends
 * should be a TLS ClientHello. This module reads them (as many as have arrived) and reports the
 * server_name (canonicalised with net/host.h, so it compares byte for byte with the canonical
 * CONNECT host), whether Encrypted Client Hello hides the real name, the ALPN list and whether
 * TLS 1.3 is offered. The gateway refuses the tunnel when the SNI is missing (if its config
 * requires one), names another host than the CONNECT target (domain fronting), or when ECH is
 * present.
 *
 * Who calls it: the egress gateway's CONNECT path, once per read until the status is not
 * PD_TLS_HELLO_NEED_MORE (each call re-parses the buffer from its start: the parser keeps no state
 * between calls); the fuzz target and unit tests.
 *
 * Owns: nothing. No allocation, no global or static mutable state, thread-safe. Input is
 * (pointer, length) and is never read past `len`; the handshake message is read in place across
 * records (no reassembly buffer; only the server name, at most 254 bytes, is copied to a stack
 * buffer so net/host.h can see it in one piece).
 * Must never: accept a length that overruns its enclosing structure (record -> handshake ->
 * extensions block -> extension -> list -> item), guess when a structure could be read two ways,
 * report an SNI that is not in canonical host form or that is an IP literal, return OK for a
 * prefix of the ClientHello, or put raw input bytes in an error text (names that net/host.h
 * refuses appear only in its escaped form; everything else is reported as numbers).
 *
 * Decisions (each has a unit test in tests/unit/test_tls_hello.c):
 * - NOT_TLS exactly when the first byte is not 22 (handshake record): plain HTTP, SSLv2-style
 *   hellos, anything else. The gateway decides what to do with it. Every other defect is INVALID.
 * - Records: content type 22 for every record that carries the ClientHello; legacy record version
 *   0x0301..0x0303 (0x0300 SSLv3 and anything else refused); length 1..16384 (zero-length
 *   handshake fragments are forbidden by RFC 8446 5.1). The message may span records, at most
 *   PD_TLS_HELLO_MAX_RECORDS of them (more is an evasion technique, not a client); it must end
 *   exactly at a record boundary (RFC 8446 5.1: a ClientHello can precede a key change), so a
 *   record that carries bytes past the ClientHello is INVALID. Bytes after that record (a
 *   ChangeCipherSpec, early data) are not looked at; out->consumed says where they start.
 * - Handshake: type 1 (client_hello), 24-bit length 41..PD_TLS_HELLO_MAX (41 is the smallest
 *   well-formed body).
 * - Body: legacy_version 0x0301..0x0303; random 32 bytes; session_id 0..32; cipher_suites even
 *   and >= 2 bytes; compression_methods 1..255 bytes and containing null (0), as RFC 5246 and
 *   RFC 8446 require. Extensions: absent entirely (nothing after compression_methods), or a
 *   2-byte length that exactly fills the rest of the body; each extension fits in the block; each
 *   type at most once (RFC 8446 4.2); pre_shared_key (41), if present, is the last one
 *   (RFC 8446 4.2.11).
 * - server_name (0): the list length exactly fills the extension; exactly one entry, of type
 *   host_name (0), whose length exactly fills the rest of the list. Another entry after it, an
 * entry of any other type, an empty name, or a name net/host.h refuses (IP literal in any spelling,
 *   bytes outside [A-Za-z0-9-_.], bad label, too long) is INVALID. One trailing dot and upper
 *   case are accepted and canonicalised as host.h does (RFC 6066 asks clients not to send the dot,
 *   but the canonical form is the same host either way).
 * - ALPN (16): list length exactly fills the extension, the list is non-empty, each protocol name
 *   is 1..255 bytes and fits in the list.
 * - supported_versions (43): 1-byte length, even, 2..254, exactly filling the extension.
 * - Encrypted Client Hello: has_ech is set for encrypted_client_hello (0xfe0d), for the earlier
 *   ECH draft code points 0xfe08..0xfe0c and for the legacy ESNI extension 0xffce: all of them
 *   mean "the real name is somewhere else". ech_type records which. Its content is not parsed.
 * - Other extensions are skipped (only their outer length is checked): GREASE values included.
 */
#ifndef PD_GATEWAY_TLS_HELLO_H
#define PD_GATEWAY_TLS_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "net/host.h"

/* Largest ClientHello body (the handshake header's 24-bit length) accepted. */
#define PD_TLS_HELLO_MAX 16384u
/* Most TLS records the ClientHello may be spread over. */
#define PD_TLS_HELLO_MAX_RECORDS 64u
/* Largest TLS record payload (RFC 8446 5.1: 2^14). */
#define PD_TLS_RECORD_MAX 16384u
/* Upper bound of out->consumed: a caller buffer this large always suffices to reach a verdict. */
#define PD_TLS_HELLO_WIRE_MAX (4u + PD_TLS_HELLO_MAX + 5u * PD_TLS_HELLO_MAX_RECORDS)
/* Longest ALPN protocol name (RFC 7301: opaque ProtocolName<1..2^8-1>). */
#define PD_TLS_ALPN_MAX 255u

enum pd_tls_hello_status {
    PD_TLS_HELLO_INVALID = 0, /* *err says what was wrong and what was expected */
    PD_TLS_HELLO_OK = 1, /* *out is filled; the ClientHello is the first out->consumed bytes */
    PD_TLS_HELLO_NEED_MORE = 2, /* a valid prefix so far: call again with more bytes */
    PD_TLS_HELLO_NOT_TLS = 3, /* the first byte is not a TLS handshake record (22) */
};

/* TLS extension types the parser knows. */
#define PD_TLS_EXT_SERVER_NAME 0x0000u
#define PD_TLS_EXT_ALPN 0x0010u
#define PD_TLS_EXT_PRE_SHARED_KEY 0x0029u
#define PD_TLS_EXT_SUPPORTED_VERSIONS 0x002bu
#define PD_TLS_EXT_ECH 0xfe0du
#define PD_TLS_EXT_ESNI 0xffceu

struct pd_tls_hello {
    size_t consumed; /* bytes of input holding the ClientHello records (<= WIRE_MAX) */
    size_t records; /* how many records it was spread over (1..MAX_RECORDS) */
    uint16_t record_version; /* legacy record version of the first record */
    uint16_t legacy_version; /* ClientHello.legacy_version */
    size_t hello_len; /* handshake body length (41..PD_TLS_HELLO_MAX) */
    size_t ext_count; /* number of extensions */

    bool has_sni; /* server_name present (then sni is a canonical host name) */
    char sni[PD_HOST_MAX + 1]; /* canonical (net/host.h) name, "" when !has_sni */
    size_t sni_len;

    bool has_ech; /* encrypted_client_hello (or a draft / ESNI code point) present */
    uint16_t ech_type; /* which code point, 0 when !has_ech */

    bool has_alpn; /* application_layer_protocol_negotiation present */
    size_t alpn_count; /* protocol names in the list */
    /* First protocol name as the client sent it: raw bytes, not NUL-terminated, possibly not
     * printable (GREASE). For logs only: pass it as PD_LSTRN (the logger escapes), never in an
     * error text or a policy decision without validation. */
    uint8_t alpn_first[PD_TLS_ALPN_MAX];
    size_t alpn_first_len;

    bool has_supported_versions; /* supported_versions present */
    bool offers_tls13; /* ... and it lists TLS 1.3 (0x0304) */
};

/* Parse the bytes an agent sent into a CONNECT tunnel (from the start: the same buffer, grown,
 * on each call). *out is zeroed first and is meaningful only for PD_TLS_HELLO_OK; *err (may be
 * NULL) is set only for PD_TLS_HELLO_INVALID. `buf` may be NULL when `len` is 0. */
enum pd_tls_hello_status pd_tls_hello_parse(const uint8_t *buf, size_t len,
                                            struct pd_tls_hello *out, struct pd_err *err);

/* Cheap first look at a tunnel's first bytes, for the NOT_TLS decision before waiting for a whole
 * ClientHello: NEED_MORE when len is 0, NOT_TLS when the first byte is not 22 (handshake record),
 * otherwise OK ("looks like TLS"; pd_tls_hello_parse still decides whether it is valid). */
enum pd_tls_hello_status pd_tls_hello_sniff(const uint8_t *buf, size_t len);

/* "ok", "invalid", "need_more", "not_tls" (for logs). */
const char *pd_tls_hello_status_name(enum pd_tls_hello_status st);

#endif
