/*
 * hosts_file.h - an /etc/hosts-format file parsed into an immutable name -> addresses table.
 *
 * Who calls it: the gateway's DNS filter, which answers allowed names locally from the file given
 * in config (`dns.hosts_file`), as CoreDNS's hosts plugin did in the project this grew from; the
 * shared benchmark writes such a file (`127.0.X.Y hNNNNN.bench.test`, 1000 names). Also the unit
 * tests (tests/unit/test_hosts_file.c) and the fuzz target (tests/fuzz/fuzz_hosts_file.c).
 *
 * Owns: the struct pd_hosts returned by pd_hosts_parse / pd_hosts_load (free it with
 * pd_hosts_free) and everything in it. It never points into the caller's text. Once built it is
 * never modified, so any number of threads may look up concurrently without a lock (a reload
 * builds a new table and swaps it). No global or static mutable state.
 * Must never: accept a line it cannot read in exactly one way, read the input past `len`, accept a
 * file larger than PD_HOSTS_MAX_BYTES, report a name that is not in pd_host_canon's canonical
 * form, or print raw input bytes in an error (field text goes through pd_net_escape).
 *
 * Format and decisions:
 * - Lines end with LF or CRLF; a CR anywhere else (also inside a comment, also a lone CR at the end
 *   of the file) is an error, as is a NUL byte anywhere. A line holds at most PD_HOSTS_LINE_MAX
 *   bytes, not counting its LF / CRLF, comment included. Line numbers count LFs, so they match
 *   what an editor shows for LF and CRLF files alike.
 * - '#' starts a comment anywhere on a line (also right after a field: "1.2.3.4 a#b" is the name
 *   "a"). Comments may hold any other byte (UTF-8 prose is fine). Blank and comment-only lines are
 *   ignored. Fields are separated by runs of spaces and tabs; any other byte belongs to a field
 *   and is judged by the field's parser (so a UTF-8 byte-order mark before the first address, a
 *   vertical tab or a non-breaking space make that field invalid, with the bytes escaped).
 * - Field 1 is an address in the strict standard form only: IPv4 as a dotted quad of decimal
 *   0..255 without leading zeros (pd_ipv4_parse_strict), IPv6 as RFC 4291 text (pd_ipv6_parse) with
 *   no brackets and no zone id. The legacy inet_aton spellings glibc also accepts here ("127.1",
 *   "0x7f.0.0.1", "0177.0.0.1", "2130706433") are refused with the dotted quad they would mean in
 *   the error: a hosts file is configuration, and a spelling that one reader takes as octal and
 *   another as decimal ("010.0.0.1") must be an error, never a guess. A zone ("fe80::1%eth0") names
 *   a local interface, which means nothing in a DNS answer. IPv4-mapped IPv6 ("::ffff:1.2.3.4")
 *   stays IPv6 as written (answered to AAAA queries), as in CoreDNS.
 * - Fields 2..n are names, at least one per address line, each canonicalised with pd_host_canon
 *   (lower case, one trailing dot removed, LDH + '_', lengths, "xn--" A-labels checked, no
 *   bytes >= 0x80). A name that is an IP literal in any spelling ("1.2.3.4", "0x7f.1") or is
 *   invalid is an error naming the line and the field.
 * - Errors: NULL is returned for the whole file at the first bad line, with
 *   "FILE:LINE: what was wrong (expected ...)" in *err (FILE is `filename` as given, "hosts" when
 *   NULL). There is no partial table: a broken hosts file is a config error, like any other.
 * - Merging: a name may appear on several lines and several times on a line; it gets every
 *   address once (duplicates dropped, first occurrence kept). Names are numbered in order of
 *   first appearance (pd_hosts_name).
 * - Lookup is per family, like CoreDNS (separate v4 and v6 maps) and like a DNS question (A or
 *   AAAA): a name's addresses are stored as its IPv4 addresses in file order followed by its IPv6
 *   addresses in file order, so each family is one contiguous array returned without copying;
 *   family 0 returns both (IPv4 first). The name passed to lookup must already be canonical (the
 *   DNS parser's text form is): lookup compares bytes and does not fold case or strip a dot.
 * - Speed: an open-addressing hash table (FNV-1a, power-of-two size, load <= 1/2) from name to
 *   entry: O(1) lookups, no allocation, no locking. Loading is linear in the input except one
 *   O(n log n) sort of the (name, address) pairs that merges duplicates, so a name listed with
 *   many addresses costs no quadratic de-duplication.
 * - Memory: the canonical names are copied into one buffer of len + 1 bytes allocated up front (a
 *   canonical name is never longer than its field, and each field is followed by at least one
 *   byte, so len + 1 always suffices; it is shrunk to fit at the end), and the per-name and
 *   per-address arrays grow by doubling with overflow checks. Each array's size is bounded by the
 *   input: at most len / 2 names and addresses. Indexes are uint32_t, safe because the input is
 *   at most PD_HOSTS_MAX_BYTES.
 */
#ifndef PD_NET_HOSTS_FILE_H
#define PD_NET_HOSTS_FILE_H

#include <stddef.h>

#include "core/err.h"
#include "net/ip.h"

/* Largest file pd_hosts_load reads and largest text pd_hosts_parse accepts (16 MiB). */
#define PD_HOSTS_MAX_BYTES (16u * 1024u * 1024u)
/* Longest line in bytes, without its LF or CRLF. */
#define PD_HOSTS_LINE_MAX 4096u

struct pd_hosts;

/* Parse a whole file's contents (`text` need not be NUL-terminated; NULL is allowed with len 0).
 * `filename` (may be NULL) prefixes error messages. Returns NULL with *err filled (err may be NULL)
 * on the first bad line, on out-of-memory, or when len > PD_HOSTS_MAX_BYTES. An empty file, or
 * one with only comments and blank lines, is valid and has 0 names. */
struct pd_hosts *pd_hosts_parse(const char *text, size_t len, const char *filename,
                                struct pd_err *err);

/* Read `path` (a regular file of at most PD_HOSTS_MAX_BYTES; FIFOs, directories and devices are
 * refused without blocking) and parse it with `path` as the file name in errors. */
struct pd_hosts *pd_hosts_load(const char *path, struct pd_err *err);

/* NULL is allowed. */
void pd_hosts_free(struct pd_hosts *h);

/* Number of distinct names (0 for NULL). */
size_t pd_hosts_count(const struct pd_hosts *h);

/* Number of distinct (name, address) pairs, for logs and metrics (0 for NULL). */
size_t pd_hosts_address_count(const struct pd_hosts *h);

/* The i-th distinct name (0 <= i < count) in order of first appearance, NUL-terminated and
 * canonical; *len (may be NULL) receives its length. NULL when i is out of range. The string lives
 * as long as h. */
const char *pd_hosts_name(const struct pd_hosts *h, size_t i, size_t *len);

/* Addresses of the canonical `name` (len bytes, need not be NUL-terminated) of `family` (AF_INET,
 * AF_INET6, or 0 for both, IPv4 first), each family in file order, without duplicates. Returns
 * their number and sets *out (may be NULL) to the first, or returns 0 and sets *out to NULL when
 * the name is absent, has no address of that family, or family is anything else. The array lives
 * as long as h. */
size_t pd_hosts_lookup(const struct pd_hosts *h, const char *name, size_t len, int family,
                       const struct pd_addr **out);

#endif
