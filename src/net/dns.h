/*
 * dns.h - strict, bounded DNS message parser and builder (RFC 1035, RFC 6891 EDNS0).
 *
 * Who calls it: the gateway's DNS filter (issue 4): it parses every query an agent sends to
 * 127.0.0.1:53 with pd_dns_parse_query, answers locally (REFUSED / NXDOMAIN / FORMERR / NOTIMP /
 * synthesised A and AAAA) with pd_dns_build_response, forwards allowed names upstream with
 * pd_dns_build_query and checks what comes back with pd_dns_parse_response. Also the unit tests
 * (tests/unit/test_dns.c) and the fuzz target (tests/fuzz/fuzz_dns.c).
 *
 * Owns: nothing. No allocation, no global or static mutable state, thread-safe. Input is
 * (pointer, length) and is never read past `len`. A parsed struct pd_dns_msg borrows the message
 * buffer (m->buf): it must stay alive and unchanged while the record accessors are used (the
 * header, question and EDNS fields are copies and stay valid without it). Record data are
 * (offset, length) pairs into the message, never copies. Builders write into a caller buffer and
 * never write a byte at or past `cap`. TCP length framing is the caller's job.
 * Must never: follow a compression pointer that does not point strictly backwards (so no loop is
 * possible), read a length that overruns its enclosing structure (message -> record -> rdata ->
 * name / option), report a name that is not in the canonical text form below, or put raw message
 * bytes in an error text (errors carry a static reason and byte offsets only).
 *
 * Decisions:
 * - Sizes: a message is 12..65535 bytes. Each call parses the whole message; the message must end
 *   exactly after its last record (trailing bytes are refused).
 * - Exactly one question (qdcount == 1) in queries and in responses (a forwarded response answers
 *   one of our own single-question queries). A query (opcode QUERY) carries no answer or authority
 *   records; its additional section may hold the OPT record and other records (kept, not used).
 * - Names: labels 1..63 bytes; label type bits 01 (extended, RFC 6891) and 10 (reserved) are
 *   refused; the decoded wire form (length bytes + labels + root byte) is at most 255 bytes.
 *   Compression pointers are accepted anywhere (RFC 1035 4.1.4) but must point into the message
 *   after the 12-byte header and strictly before the start of the label sequence that contains
 *   the pointer, and the labels reached must also end before that start; so each jump goes
 *   further back, a loop cannot exist, and a name never depends on bytes after its own start
 *   (every compressor writes names this way: it points at names already written); at most
 *   PD_DNS_MAX_POINTERS jumps per name as a second guard. The question of a query therefore can
 *   never be compressed (nothing precedes it but the header).
 * - Canonical text: ASCII letters lower-cased, labels joined by '.', no trailing dot, the root is
 *   "". Bytes outside [A-Za-z0-9-_] (including '.', '\\', '*', spaces, controls, >= 0x80) set
 *   name.odd and are written as \DDD (decimal, RFC 1035 master-file style), so the text is always
 *   printable ASCII and safe to log. A name with odd set can never match an allowlist: the caller
 *   refuses it. Worst case 1003 characters (four labels of 62-63 odd bytes), hence
 *   PD_DNS_NAME_TEXT_MAX. The original-case wire form is kept too (name.wire), and the response
 *   builder echoes the question from it, byte for byte (clients that randomise case, "DNS 0x20",
 *   get their own spelling back).
 * - Records: owner name, type, class, ttl, rdlength, rdata (offset, length). At most
 *   PD_DNS_MAX_RRS records in a message (ancount + nscount + arcount); more is refused before any
 *   record is read. In class IN, A must have rdlength 4 and AAAA 16; CNAME (any class) must hold
 *   exactly one name filling the rdata, decoded with the same rules (its pointers may point
 *   anywhere earlier in the message). Other types are not looked into.
 * - EDNS0: at most one OPT record, only in the additional section, owner must be the root; its
 *   options must exactly fill the rdata (each code, length, data). udp_size below 512 is treated
 *   as 512. The version is reported, not checked: the server answers BADVERS (rcode 16) for a
 *   version other than 0.
 * - Status of a failed query (what the server does): PD_DNS_DROP when the header is unusable (len
 *   < 12, len > 65535, QR = 1: never answer a response, which would let two resolvers loop);
 *   PD_DNS_NOTIMP when the opcode is not QUERY (the question is parsed if possible, for the echo);
 *   PD_DNS_FORMERR for everything else (has_question says whether the question can be echoed;
 *   the EDNS fields are cleared, so the FORMERR carries no OPT, RFC 6891 7).
 * - Responses: anything but PD_DNS_OK means "do not use it" (the server answers its client
 *   SERVFAIL); QR = 0 is DROP, opcode other than QUERY is FORMERR.
 * - Building a response: same id, QR = 1, opcode, RD and CD copied, RA as asked, AA = 0,
 *   AD = 0; the question echoed; answers (A, AAAA, CNAME, class IN) whose owner is the question
 *   name as the pointer 0xC00C, or an earlier CNAME target (also compressed), or written out; an
 *   OPT record when the query had one (our payload size, the DO bit copied, extended rcode bits).
 *   Size limit over UDP: 512 bytes without EDNS, else the smaller of the client's udp_size and
 *   our own advertised size (we never send more than we say we accept); over TCP 65535; never
 *   more than `cap`. When the answers do not fit, the response carries no answers and TC = 1 (RFC
 * 2181 9: whole RRsets or nothing; the client retries over TCP).
 */
#ifndef PD_NET_DNS_H
#define PD_NET_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define PD_DNS_HEADER_LEN 12u
#define PD_DNS_MSG_MAX 65535u
/* Plain DNS over UDP without EDNS (RFC 1035 4.2.1); also the floor for an EDNS udp_size. */
#define PD_DNS_UDP_MIN 512u
#define PD_DNS_LABEL_MAX 63u
/* Longest name in wire form, length bytes and root byte included. */
#define PD_DNS_NAME_WIRE_MAX 255u
/* Longest canonical text (without the NUL): 4 labels of 250 odd bytes as \DDD plus 3 dots. */
#define PD_DNS_NAME_TEXT_MAX 1003u
#define PD_DNS_MAX_POINTERS 64u
/* Most resource records held (ancount + nscount + arcount). */
#define PD_DNS_MAX_RRS 64u
/* Buffer for pd_dns_type_name / pd_dns_rcode_name: "TYPE65535" or "RCODE4095" and the NUL. */
#define PD_DNS_TYPE_NAME_MAX 10u

/* Record types (RFC 1035, 3596, 2782, 6891, 8659, 9460). */
#define PD_DNS_TYPE_A 1u
#define PD_DNS_TYPE_NS 2u
#define PD_DNS_TYPE_CNAME 5u
#define PD_DNS_TYPE_SOA 6u
#define PD_DNS_TYPE_NULL 10u
#define PD_DNS_TYPE_PTR 12u
#define PD_DNS_TYPE_MX 15u
#define PD_DNS_TYPE_TXT 16u
#define PD_DNS_TYPE_AAAA 28u
#define PD_DNS_TYPE_SRV 33u
#define PD_DNS_TYPE_OPT 41u
#define PD_DNS_TYPE_SVCB 64u
#define PD_DNS_TYPE_HTTPS 65u
#define PD_DNS_TYPE_ANY 255u
#define PD_DNS_TYPE_CAA 257u

#define PD_DNS_CLASS_IN 1u

#define PD_DNS_OPCODE_QUERY 0u

/* Response codes (RFC 1035, 6891). Values above 15 need EDNS (upper 8 bits go in the OPT). */
#define PD_DNS_RCODE_NOERROR 0u
#define PD_DNS_RCODE_FORMERR 1u
#define PD_DNS_RCODE_SERVFAIL 2u
#define PD_DNS_RCODE_NXDOMAIN 3u
#define PD_DNS_RCODE_NOTIMP 4u
#define PD_DNS_RCODE_REFUSED 5u
#define PD_DNS_RCODE_BADVERS 16u

enum pd_dns_status {
    PD_DNS_OK = 0, /* the whole message is valid */
    PD_DNS_DROP = 1, /* header unusable: send nothing back */
    PD_DNS_FORMERR = 2, /* malformed: answer FORMERR (query) / do not use (response) */
    PD_DNS_NOTIMP = 3, /* query with an opcode other than QUERY: answer NOTIMP */
};

enum pd_dns_section {
    PD_DNS_SEC_ANSWER = 1,
    PD_DNS_SEC_AUTHORITY = 2,
    PD_DNS_SEC_ADDITIONAL = 3,
};

struct pd_dns_header {
    uint16_t id;
    bool qr;
    uint8_t opcode; /* 0..15 */
    bool aa, tc, rd, ra, ad, cd;
    uint8_t rcode; /* header bits only, 0..15; see pd_dns_msg.rcode for the extended value */
    uint16_t qdcount, ancount, nscount, arcount;
};

/* A decoded domain name. */
struct pd_dns_name {
    char text[PD_DNS_NAME_TEXT_MAX + 1]; /* canonical text, NUL-terminated ("" = root) */
    size_t text_len;
    uint8_t wire[PD_DNS_NAME_WIRE_MAX]; /* uncompressed wire form, original case */
    size_t wire_len; /* 1..255 (1 = root) */
    bool odd; /* a label holds a byte outside [A-Za-z0-9-_]: never allowlisted */
};

struct pd_dns_question {
    struct pd_dns_name name;
    uint16_t qtype, qclass;
};

struct pd_dns_rr {
    enum pd_dns_section section;
    uint16_t type, rclass;
    uint32_t ttl;
    uint16_t name_off; /* offset of the owner name in the message (decode: pd_dns_rr_name) */
    uint16_t rdata_off; /* rdata is buf[rdata_off .. rdata_off + rdlength) */
    uint16_t rdlength;
};

struct pd_dns_edns {
    bool present;
    uint16_t udp_size; /* the sender's payload size, at least 512 */
    uint16_t udp_size_raw; /* as sent */
    uint8_t ext_rcode; /* upper 8 bits of the 12-bit rcode */
    uint8_t version;
    bool do_bit;
    uint16_t opt_off, opt_len; /* the options (rdata), not interpreted */
};

struct pd_dns_msg {
    enum pd_dns_status status; /* what the parse function returned */
    const uint8_t *buf; /* borrowed: the parsed message */
    size_t len;
    struct pd_dns_header hdr;
    bool has_question; /* q is valid (also after FORMERR / NOTIMP when the question parsed) */
    struct pd_dns_question q;
    uint16_t rcode; /* 12-bit: header rcode | ext_rcode << 4 (header only without EDNS) */
    struct pd_dns_edns edns;
    size_t rr_count; /* records in rr[], message order; 0 unless the status is OK */
    struct pd_dns_rr rr[PD_DNS_MAX_RRS];
    const char *reason; /* static text for the failure (NULL when OK), e.g. for a metric label */
};

/* Parse a query from a client. *m is zeroed first. On failure *err (may be NULL) gets the reason
 * with the byte offset, m->reason the static reason, and the fields described under "Status of a
 * failed query" stay usable for the error response. */
enum pd_dns_status pd_dns_parse_query(const uint8_t *buf, size_t len, struct pd_dns_msg *m,
                                      struct pd_err *err);

/* Parse a response from an upstream resolver (same rules; QR must be 1, opcode QUERY). */
enum pd_dns_status pd_dns_parse_response(const uint8_t *buf, size_t len, struct pd_dns_msg *m,
                                         struct pd_err *err);

/* Decode the owner name of a record of m (rr from m->rr). False if it does not decode in m (a
 * record from another message). */
bool pd_dns_rr_name(const struct pd_dns_msg *m, const struct pd_dns_rr *rr,
                    struct pd_dns_name *out);
/* The address of an A / AAAA record of class IN; false for any other record. */
bool pd_dns_rr_a(const struct pd_dns_msg *m, const struct pd_dns_rr *rr, uint8_t out[4]);
bool pd_dns_rr_aaaa(const struct pd_dns_msg *m, const struct pd_dns_rr *rr, uint8_t out[16]);
/* The target of a CNAME record; false for any other record. */
bool pd_dns_rr_cname(const struct pd_dns_msg *m, const struct pd_dns_rr *rr,
                     struct pd_dns_name *out);

/* Same question (name compared case-insensitively, qtype, qclass); false if either has none.
 * For matching an upstream response to the query that was sent. */
bool pd_dns_same_question(const struct pd_dns_msg *a, const struct pd_dns_msg *b);

/* One answer for pd_dns_build_response. Names are (pointer, length) texts in canonical form
 * (see pd_dns_name_encode); owner_len 0 means the question name. */
struct pd_dns_answer {
    uint16_t type; /* PD_DNS_TYPE_A, _AAAA or _CNAME */
    uint32_t ttl;
    uint8_t addr[16]; /* A: the first 4 bytes */
    const char *target; /* CNAME target */
    size_t target_len;
    const char *owner; /* owner other than the question name (after a CNAME), else NULL */
    size_t owner_len;
};

struct pd_dns_reply {
    uint16_t rcode; /* 0..4095; above 15 only when the query had EDNS */
    bool ra; /* recursion available */
    bool tcp; /* size limit 65535 instead of the UDP rules (framing is the caller's) */
    uint16_t edns_udp_size; /* our payload size in the echoed OPT (e.g. 1232); < 512 means 512 */
    const struct pd_dns_answer *answers; /* answer section, in order; NULL when count is 0 */
    size_t answer_count; /* at most PD_DNS_MAX_RRS */
};

/* Build the response to a query parsed by pd_dns_parse_query (never a hand-made struct; any
 * status but DROP: without a question the response has none, and answers are refused). Returns
 * the length written into out[0..cap), or 0 when it does not fit even without answers or the
 * arguments are invalid (*err says which). The response has TC = 1 and no answers when the
 * answers did not fit (see the decisions). */
size_t pd_dns_build_response(const struct pd_dns_msg *query, const struct pd_dns_reply *reply,
                             uint8_t *out, size_t cap, struct pd_err *err);

/* Build a query to forward upstream: the given id, RD = 1, one question (name, qtype, class IN),
 * and an OPT record with udp_size (0: no OPT; 1..511 are sent as 512). Returns the length, or 0
 * (name invalid or cap too small; nothing is written at or past cap). */
size_t pd_dns_build_query(uint16_t id, const char *name, size_t name_len, uint16_t qtype,
                          uint16_t udp_size, uint8_t *out, size_t cap, struct pd_err *err);

/* Encode a canonical text name into wire form: labels of 1..63 bytes of [A-Za-z0-9-_] (written as
 * given, no case change), separated by single dots, one trailing dot allowed; "" and "." are the
 * root. No escapes: a name with odd bytes cannot be encoded (such names are never forwarded).
 * Returns the wire length (1..255) or 0 when invalid or it does not fit in cap. */
size_t pd_dns_name_encode(const char *text, size_t len, uint8_t *out, size_t cap,
                          struct pd_err *err);

/* "A", "AAAA", "CNAME", ... for the known types (static strings); "TYPE123" written into buf
 * (PD_DNS_TYPE_NAME_MAX bytes) otherwise. Returns the text. */
const char *pd_dns_type_name(uint16_t type, char *buf, size_t cap);
/* "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", else "RCODE17". */
const char *pd_dns_rcode_name(uint16_t rcode, char *buf, size_t cap);
/* "ok", "drop", "formerr", "notimp" (for logs). */
const char *pd_dns_status_name(enum pd_dns_status st);

#endif
