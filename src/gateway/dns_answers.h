/*
 * dns_answers.h - the DNS filter's per-worker answer cache: (canonical name, qtype) -> the answer
 * the filter gives (rcode and answer records), until an absolute expiry.
 *
 * Who calls it: the gateway's DNS filter, on its worker's loop thread: pd_dnsa_get() before
 * forwarding an allowed name upstream, pd_dnsa_put() with what a checked upstream response said,
 * pd_dnsa_clear() on every policy reload (a new policy may change what may be answered). Also the
 * unit tests (tests/unit/test_dns_answers.c).
 *
 * Owns: one fixed array of max_entries entries, its hash buckets and its expiry heap, all allocated
 * by pd_dnsa_new() and never resized: memory is bounded and known up front. Every string an entry
 * needs (the name, CNAME targets, owners) is COPIED into the entry: the upstream message they came
 * from is gone by the time the cache is read.
 *
 * Threads: NOT thread-safe, no locks: one cache per DNS worker, used only on that worker's thread.
 *
 * Never: reads a clock (time comes in as now_ms, a monotonic millisecond clock such as uv_now()),
 * logs, allocates after pd_dnsa_new(), keeps global state, grows past max_entries, stores a
 * truncated answer, or reads past a (pointer, length) it is given.
 *
 * Decisions:
 * - Keys: the name's bytes (1..PD_DNSA_NAME_MAX) and the qtype, compared byte for byte. Names must
 *   already be canonical (lower case, no trailing dot: net/host.h); "Example.com" and "example.com"
 *   are different keys. The cache does not check the form: it never interprets the bytes.
 * - What is cached: rcode NOERROR or NXDOMAIN (anything else, SERVFAIL above all, is refused) and
 *   0..PD_DNSA_MAX_ANSWERS records of type A, AAAA or CNAME. A put is REFUSED (nothing stored,
 *   pd_dnsa_put returns false) when: ttl_s is 0; the name is empty or longer than
 *   PD_DNSA_NAME_MAX; there are more than PD_DNSA_MAX_ANSWERS records (never stored truncated: a
 *   partial RRset would be a wrong answer); a record has another type, or a CNAME without a target,
 *   or a target / owner longer than PD_DNSA_NAME_MAX; the distinct target and owner strings do not
 *   fit the entry's string arena (PD_DNSA_ARENA_BYTES, see below); the rcode is not cacheable. A
 *   refused put also REMOVES an entry already cached for the same key: the newest upstream answer
 *   wins, and an older one must not keep being served in its place.
 * - String arena: each entry holds PD_DNSA_ARENA_BYTES (512) for its CNAME targets and owners,
 *   each stored once with a NUL (a CNAME chain's owners are the previous targets, so equal strings
 *   are shared: a -> b -> c with addresses for c stores "b" and "c" once each). Sizing for the
 *   worst case (16 records x 2 strings x 254 bytes = 8 KB per entry) would make every entry 7x
 *   larger for answers that do not exist; 512 bytes holds any two distinct names of the maximum
 *   length, and every real chain measured (Akamai, CloudFront, Azure: 2-4 names of 20-60 bytes)
 *   with room to spare. An answer that does not fit is simply not cached (a correct miss).
 * - TTL: the caller computes ttl_s (clamped to the configured min / max, the negative TTL for
 *   NXDOMAIN and empty answers); the entry expires at now_ms + ttl_s * 1000 (saturating). An entry
 *   is live while now_ms < expiry (now_ms == expiry is a miss: the boundary is exact). A hit gives
 *   every record the TTL ttl_s minus the WHOLE seconds elapsed, i.e. the remaining time rounded UP
 *   to a second: 10 s put at t, read at t + 1500 ms, answers 9. So a live entry never answers TTL 0
 *   (a 0 would tell the client not to cache at all), and no "< 1 s left" special case exists; the
 *   price is that a client's cache may keep the answer up to 999 ms past our expiry, the same as
 *   any resolver with a one-second clock. The TTL given out never exceeds ttl_s, even if now_ms
 *   moved back. Records keep one TTL per entry (the caller's), not their upstream TTLs.
 * - Reads: a hit copies min(stored, max) records into out[] in the order they were put and sets
 *   *n to the number copied (so pass max >= PD_DNSA_MAX_ANSWERS, or the stored count is unknown
 *   and the answer may be partial). Their target / owner point into the cache's own storage and
 *   stay valid until the next pd_dnsa_put(), pd_dnsa_clear() or pd_dnsa_free() on this cache
 *   (pd_dnsa_get() never rewrites storage, it only unlinks expired entries). owner is NULL when
 *   the record's owner is the question name (as put). A hit makes the entry the most recently
 *   used. An expired entry is a miss and is removed.
 * - Replacing: a put for a key already cached replaces its entry (and its expiry). put() may be
 *   given records that point into this cache's own storage (a previous get's output): the new
 *   entry is built on the stack first, then copied in.
 * - Eviction, when a new key arrives and max_entries are stored: the entry that expires first if
 *   it has expired, else the least recently used (put or hit). Expired entries are otherwise left
 *   in place until read or evicted, so pd_dnsa_count() includes them. Both choices are O(log n):
 *   a binary min-heap on expiry and a doubly-linked LRU list, over entry indices.
 * - Hash: chaining, buckets = the power of two >= max_entries (load <= 1). The bucket comes from
 *   SipHash-2-4 of the name under a random 128-bit key per cache (getrandom), mixed with the
 *   qtype. A keyed hash although names are allowed by policy: a wildcard rule lets the agent pick
 *   any name under its apex, and with an unkeyed hash (FNV-1a) it could pick names that all land in
 *   one bucket and make each lookup walk max_entries entries. Measured (gcc -O2, x86-64): SipHash
 *   of a 21-byte name ~20 ns; a whole hit, 10,000 entries, < 100 ns.
 * - Memory: pd_dnsa_bytes() reports it; 1,208 to 1,212 bytes per entry on x86-64 (entry 1,200:
 *   name 254, 16 records of 24 bytes, arena 512, key, links and expiry 50; a heap slot of 4; a
 *   bucket of 4 to 8, as buckets are a power of two). 1,000 entries = 1.2 MB, 100,000 = 121 MB.
 */
#ifndef PD_GATEWAY_DNS_ANSWERS_H
#define PD_GATEWAY_DNS_ANSWERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "net/dns.h"

#define PD_DNSA_MAX_ANSWERS 16 /* records per entry; more is not cached */
#define PD_DNSA_NAME_MAX 253 /* bytes of a name, a CNAME target or an owner (no NUL) */
#define PD_DNSA_ARENA_BYTES 512 /* per entry, for the distinct targets and owners with NULs */
#define PD_DNSA_MAX_ENTRIES_LIMIT 1000000 /* largest max_entries of pd_dnsa_new */

struct pd_dnsa;

/* A cache of at most max_entries (1..PD_DNSA_MAX_ENTRIES_LIMIT) answers, all memory allocated now.
 * NULL and err filled on a bad max_entries, out of memory or no randomness for the hash key. */
struct pd_dnsa *pd_dnsa_new(size_t max_entries, struct pd_err *err);
/* Free everything. NULL is accepted. */
void pd_dnsa_free(struct pd_dnsa *c);

/* Cache the answer for (name[0..len), qtype): rcode and ans[0..n), for ttl_s seconds from now_ms.
 * Replaces an entry for the same key; evicts one entry when full (see Eviction). True when
 * stored; false when refused (see What is cached), which also removes the key's old entry. ans
 * may be NULL when n is 0. Returns bool, not void, so the caller can count what is not cached. */
bool pd_dnsa_put(struct pd_dnsa *c, const char *name, size_t len, uint16_t qtype, uint16_t rcode,
                 const struct pd_dns_answer *ans, size_t n, uint32_t ttl_s, uint64_t now_ms);

/* Look (name[0..len), qtype) up at now_ms. On a hit: true, *rcode set, the first min(stored, max)
 * records copied into out[] with their remaining TTL, *n = the number copied (rcode and n may be
 * NULL; out may be NULL when max is 0); the entry becomes the most recently used. On a miss
 * (absent or expired; an expired entry is removed): false, *n = 0, *rcode untouched. See Reads for
 * how long the records' strings stay valid. */
bool pd_dnsa_get(struct pd_dnsa *c, const char *name, size_t len, uint16_t qtype, uint64_t now_ms,
                 uint16_t *rcode, struct pd_dns_answer *out, size_t max, size_t *n);

/* Entries stored, expired ones not yet removed included (metrics, tests). */
size_t pd_dnsa_count(const struct pd_dnsa *c);
/* Remove every entry (on a policy reload). O(max_entries). */
void pd_dnsa_clear(struct pd_dnsa *c);
/* Bytes the cache holds on the heap (fixed at pd_dnsa_new). */
size_t pd_dnsa_bytes(const struct pd_dnsa *c);
/* Tests: true when the hash chains, the LRU list, the free list and the expiry heap agree with
 * each other and with the count. O(max_entries). */
bool pd_dnsa_check(const struct pd_dnsa *c);

#endif
