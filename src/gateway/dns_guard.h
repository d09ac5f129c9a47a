/*
 * dns_guard.h - the DNS filter's tunnelling guard: refuse allowed names that look like data.
 *
 * Who calls it: the gateway's DNS filter, for a query whose name the policy has allowed, once it
 * knows which pattern matched. The *apex* is that pattern without its "*.": for the rule
 * `*.example.com` the apex of `a1b2.x.example.com` is `example.com` and the *subdomain part* is
 * `a1b2.x`; for an exact rule `api.example.com` the apex is the whole name and the subdomain part
 * is empty (exact names never trip the label checks and are never counted: they cannot carry data).
 * The words: refuse "names longer than a configurable length, labels with high entropy or
 * over a length under an allowed apex, and a burst of unique subdomains per apex per minute"; each
 * refusal is logged by the caller with the reason this module writes.
 *
 * Names: canonical (net/host.h): lower-case labels of [a-z0-9-_] joined by '.', 1..253 bytes, no
 * trailing dot. Input that is not in that form (a caller bug) is refused with a fixed reason, so a
 * reason never contains bytes outside that set: reasons are short human texts, safe to log as they
 * are. A label quoted in a reason is cut to PD_DNS_GUARD_QUOTE_MAX characters + "...".
 *
 * Two parts:
 *   - pd_dns_guard_check_name(): pure, no state. Name length; then, for each label of the
 *     subdomain part, its length and its Shannon entropy.
 *   - struct pd_dns_guard: the burst tracker. Counts the distinct subdomain parts seen per apex in
 *     the current minute and refuses a new one once the apex has reached the limit.
 *
 * Entropy: Shannon entropy of the label's characters, in bits per character:
 * H = -sum(p_c log2 p_c) over the distinct characters c, p_c = count_c / length. A label of n
 * characters has H <= log2(n) (all characters distinct), so short labels cannot score high whatever
 * they contain, and no threshold at or above 4.0 can refuse a label of 16 characters or fewer.
 * Computed without libm (a table of log2(1..63)); labels are at most 63 characters.
 *
 * Defaults (measured with tests/unit/test_dns_guard.c, table in test_entropy_table; random data
 * figures are the share of 2000 random labels above the threshold):
 *   - PD_DNS_GUARD_DEFAULT_MAX_NAME_LENGTH 253: no limit beyond DNS's own; the configuration
 *     typically lowers it (100 is plenty for real host names and cuts the bytes per query).
 *   - PD_DNS_GUARD_DEFAULT_MAX_LABEL_LENGTH 40: real host names under a wildcard rarely have labels
 *     longer than 40 (a UUID is 36, a hex SHA-1/MD5 id 32-40); tunnelling tools (iodine, dnscat2)
 *     fill labels to 63 because every byte counts. Known legitimate exceptions: Vercel/Netlify
 *     preview hosts and S3 bucket names can reach 63; raise it for those rules.
 *   - PD_DNS_GUARD_DEFAULT_ENTROPY_MIN_LENGTH 12: below 12 characters H <= log2(11) = 3.46 and the
 *     figure says little (it mostly counts distinct letters).
 *   - PD_DNS_GUARD_DEFAULT_MAX_LABEL_ENTROPY 4.0 bits/char: every real-world label measured stays
 *     at or below 3.9 (us-east-1 2.72, prod-eu-west-1-cache-07 3.73, raw-githubusercontent-com
 *     3.89; random UUIDs at most 3.996 over 5000; "a1b2c3d4e5f6g7h8" exactly 4.00 passes) except a
 *     label like "my-service-1234567890" (4.20, ten distinct digits), which this default refuses.
 *     Base32/base64 of random bytes is refused at >= 32 characters (89-94%) and >= 40 (99-100%),
 *     about half at 24, never at 16 (impossible, see above). Hex of random bytes is NOT caught by
 *     entropy at any length (its alphabet has 16 symbols: H <= 4.0 always; typical 3.2-3.8,
 *     the same range as real names), and no threshold can separate it from names like the ones
 *     above. Hex and short labels are left to the label length and, above all, the burst limit,
 *     which bounds the bandwidth of any encoding.
 *   - PD_DNS_GUARD_DEFAULT_UNIQUE_PER_MINUTE 100 distinct subdomains per apex per minute (0 =
 *     unlimited): a build that resolves a few dozen CDN hosts stays far below; a tunnel carrying
 *     ~30 bytes per query is held to ~3 KB a minute per apex.
 *
 * Burst window: fixed, aligned to the minute of the caller's clock: the window of now_s is
 * floor(now_s / 60). Simpler and smaller than a sliding window (one 64-bit hash per subdomain, no
 * timestamps); the price is that up to 2 x limit distinct subdomains can pass within 60 seconds
 * that straddle a minute boundary. A time in an earlier minute than the apex's window (another
 * worker's clock read raced) counts in the current window; the window never moves back. Use a
 * monotonic clock in seconds (uv_now() / 1000) or wall time: only its minute boundaries matter.
 *
 * Keyed hashes: the set of subdomains of a window keeps SipHash-2-4 values (64 bits) under a
 * per-tracker random 128-bit key from getrandom(), not the names: an attacker who cannot see the
 * key cannot craft colliding subdomains (so cannot make a new subdomain pass as a seen one, or
 * flood one hash chain). Two distinct subdomains with the same 64-bit value count as one
 * (probability ~ n^2 / 2^65: nil).
 *
 * Bounded memory, whatever the queries: at most max_apexes (1..PD_DNS_GUARD_MAX_APEXES_LIMIT)
 * apexes; per apex its name (<= 253 bytes) and a set holding at most
 * `limit` hashes (the subdomain that would exceed the limit is refused, not stored), in an
 * open-addressing table of at most 2 x next_power_of_two(limit) slots of 8 bytes; limit <=
 * PD_DNS_GUARD_UNIQUE_MAX. A set is freed when its window ends. When a new apex arrives and
 * max_apexes are tracked, the apex used least recently (whose window is the oldest) is evicted,
 * which forgets its count: size max_apexes above the number of wildcard rules of the policy (apexes
 * come from the policy, not from queries, so an attacker cannot create new ones) and eviction never
 * happens. Finding the victim scans the table, which only happens when it is full.
 *
 * Reload: the tracker does not depend on the policy; the limit comes with every call. The gateway
 * keeps the tracker across a reload (counts of the current minute survive) or recreates it.
 *
 * Threads: every function may be called from any thread except pd_dns_guard_free(). One mutex per
 * tracker, held for a hash lookup and an insert (a new window or apex allocates once).
 *
 * Never: reads a clock, logs, keeps global state, or writes a reason longer than reason_cap - 1
 * bytes (reasons are always NUL-terminated when reason_cap > 0).
 */
#ifndef PD_GATEWAY_DNS_GUARD_H
#define PD_GATEWAY_DNS_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define PD_DNS_GUARD_NAME_MAX 253 /* bytes in a canonical name without the trailing dot */
#define PD_DNS_GUARD_LABEL_MAX 63 /* bytes in a DNS label */
#define PD_DNS_GUARD_QUOTE_MAX 16 /* label characters quoted in a reason before "..." */
#define PD_DNS_GUARD_ENTROPY_MAX 6.0 /* largest accepted max_label_entropy (> log2(63) = 5.98) */
#define PD_DNS_GUARD_UNIQUE_MAX 100000 /* largest unique_subdomains_per_minute */
#define PD_DNS_GUARD_MAX_APEXES_LIMIT 100000 /* largest max_apexes of pd_dns_guard_new */
#define PD_DNS_GUARD_REASON_MAX 320 /* a buffer this size holds every reason whole (<= 307) */

#define PD_DNS_GUARD_DEFAULT_MAX_NAME_LENGTH 253
#define PD_DNS_GUARD_DEFAULT_MAX_LABEL_LENGTH 40
#define PD_DNS_GUARD_DEFAULT_ENTROPY_MIN_LENGTH 12
#define PD_DNS_GUARD_DEFAULT_MAX_LABEL_ENTROPY 4.0
#define PD_DNS_GUARD_DEFAULT_UNIQUE_PER_MINUTE 100

/* The configuration's dns.* numbers (names in reasons are the configuration's). */
struct pd_dns_guard_limits {
    uint32_t max_name_length; /* dns.max_name_length, 1..253: whole name, apex included */
    uint32_t max_label_length; /* dns.max_label_length, 1..63: each label of the subdomain part */
    uint32_t entropy_min_length; /* dns.entropy_min_length, 1..63: shorter labels not measured */
    double max_label_entropy; /* dns.max_label_entropy, 0..6 bits/char; refused when above */
    uint32_t unique_subdomains_per_minute; /* dns.unique_subdomains_per_minute, 0..100000; 0 off */
};

/* Fill *lim with the PD_DNS_GUARD_DEFAULT_* values. */
void pd_dns_guard_limits_default(struct pd_dns_guard_limits *lim);

/* 0, or -1 with err "dns.max_label_length must be between 1 and 63, got 0" (NaN is refused). */
int pd_dns_guard_limits_validate(const struct pd_dns_guard_limits *lim, struct pd_err *err);

/*
 * Check one allowed name. name[0..name_len) is canonical; the apex is its last apex_len bytes
 * (apex_len == name_len: exact rule, only the name length is checked; apex_len == 0: the whole name
 * is the subdomain part, for a filter that checks names without a rule). Otherwise the apex must
 * start right after a '.'. True when the name passes; false with a reason such as
 *   "name is 120 characters, more than dns.max_name_length (100)"
 *   "label 'aaaaaaaaaaaaaaaa...' (45 characters) is longer than dns.max_label_length (40)"
 *   "label 'k7xq2m9vbn4l8p3z...' (32 characters) has entropy 4.38 bits/char, above
 *    dns.max_label_entropy (4.00): looks like data, not a host name"
 *   "invalid limits", "name is not a canonical host name", "apex is not a suffix of the name"
 * Pure: no state, no allocation. reason may be NULL (reason_cap is then ignored).
 */
bool pd_dns_guard_check_name(const struct pd_dns_guard_limits *lim, const char *name,
                             size_t name_len, size_t apex_len, char *reason, size_t reason_cap);

/* Shannon entropy of label[0..len) in bits per character; -1.0 when len is 0 or above 63. */
double pd_dns_guard_label_entropy(const char *label, size_t len);

/* The burst tracker. */
struct pd_dns_guard;

/* A tracker for at most max_apexes (1..PD_DNS_GUARD_MAX_APEXES_LIMIT) apexes, with a fresh random
 * key. NULL and err filled on a bad max_apexes, out of memory or no randomness. */
struct pd_dns_guard *pd_dns_guard_new(size_t max_apexes, struct pd_err *err);
/* Free everything. No other call may run concurrently with or after it. NULL is accepted. */
void pd_dns_guard_free(struct pd_dns_guard *g);

/*
 * Note a query for subdomain part sub[0..sub_len) of apex[0..apex_len) at now_s (seconds). True
 * when allowed: the subdomain was already seen in this minute (retries and caching resolvers always
 * pass), or is new and the apex has seen fewer than `limit` distinct ones (it is then counted).
 * False with a reason "more than 100 distinct subdomains of example.com in one minute" when it is
 * new and the apex is at the limit (it is not counted). limit 0 = unlimited and sub_len 0 (an exact
 * name) always pass without being counted. Also false, failing closed, on a caller bug ("invalid
 * arguments": non-canonical apex or sub, limit above PD_DNS_GUARD_UNIQUE_MAX) or out of memory.
 */
bool pd_dns_guard_note(struct pd_dns_guard *g, const char *apex, size_t apex_len, const char *sub,
                       size_t sub_len, uint32_t limit, int64_t now_s, char *reason, size_t cap);

/* Number of apexes tracked (metrics, tests). */
size_t pd_dns_guard_count(struct pd_dns_guard *g);
/* Bytes the tracker holds on the heap (its own accounting of what it allocated; tests). */
size_t pd_dns_guard_bytes(struct pd_dns_guard *g);

/* SipHash-2-4 of data[0..len) under key[16] (exposed for its reference test vector). */
uint64_t pd_dns_guard_siphash24(const uint8_t key[16], const void *data, size_t len);

#endif
