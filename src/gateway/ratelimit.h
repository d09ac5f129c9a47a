/*
 * ratelimit.h - request rate limits of the egress gateway: one token bucket per rate-limit rule.
 *
 * Who calls it: the egress proxy, once per request (and once per CONNECT tunnel), after the policy
 * has said which rule applies to the destination host. The gateway creates one `struct
 * pd_ratelimit` at startup and shares it between every worker thread; a reload keeps the object
 * (buckets survive) and calls pd_ratelimit_prune() with the keys of the new rule set.
 *
 * Keys: the *rule key* (pd_gw_rate_rule.key in policy.h: the canonical domain pattern such as
 * "*.github.com" or "api.openai.com", or "default"), not the host. Every host a rule matches shares
 * the rule's one bucket: a user who writes "*.github.com: 60/min" means 60 requests a minute to
 * GitHub, not 60 to each of api.github.com, codeload.github.com, ... (this is also what the seed
 * system did). Keys
 * are 1..PD_RATELIMIT_KEY_MAX bytes of printable ASCII without spaces (0x21..0x7e): every rule key
 * is a host pattern or a word.
 *
 * Bucket: a new bucket starts full, at `burst` tokens. It refills continuously at rpm/60 tokens per
 * second, up to `burst`; a request takes one token. The level is kept in integer units of 1/60000
 * of a token, so the refill is exactly `rpm` units per millisecond: no floating point, no rounding,
 * no drift however the calls are spaced (refilling in two steps gives exactly what one step gives).
 * Refused requests take nothing. `retry_after_s` is the number of whole seconds, rounded up and at
 * least 1, until one token is available (what the gateway sends as `Retry-After`).
 *
 * Time: the caller passes a monotonic clock in milliseconds (uv_now(), or
 * clock_gettime(CLOCK_MONOTONIC)). A time earlier than the bucket's last one (another worker read
 * the clock a moment later and got here first) counts as no time elapsed; the bucket never moves
 * backwards.
 *
 * Reload: the numbers come with every call. When a rule's numbers change, the bucket is first
 * refilled under the numbers it last saw, then keeps that level capped at the new burst. A larger
 * burst is not granted at once: the bucket fills toward it at the new rate. Buckets of rules that
 * no longer exist are dropped by pd_ratelimit_prune().
 *
 * Bounded memory: at most `max_keys` buckets. When a new key arrives and the table is full, a
 * bucket that has refilled to its burst is dropped to make room: a full bucket holds no information
 * (a new one would start full too), so this changes nothing a client can observe. If no bucket is
 * full, the new key is refused with PD_RL_TOO_MANY_KEYS (deny the request; retry_after_s says when
 * the first bucket will be full) and nothing grows. Finding a reclaimable bucket scans the table,
 * which only happens at the limit: size max_keys well above the number of rules (the gateway's
 * policy bounds that number).
 *
 * Threads: every function may be called from any thread except pd_ratelimit_free(). One mutex per
 * object guards the table; it is held for a hash lookup and a few integer operations, never across
 * I/O or allocation-heavy work (a new key allocates one small bucket; growing the hash table is
 * amortised).
 *
 * Never: sleeps, reads a clock, allocates on a take for an existing key, or keeps global state.
 */
#ifndef PD_GATEWAY_RATELIMIT_H
#define PD_GATEWAY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "gateway/rule_key.h"

#define PD_RATELIMIT_RPM_MIN 1
#define PD_RATELIMIT_RPM_MAX 1000000
#define PD_RATELIMIT_BURST_MIN 1
#define PD_RATELIMIT_BURST_MAX 1000000
#define PD_RATELIMIT_KEY_MAX PD_GW_RULE_KEY_MAX /* bytes in a key (rule_key.h) */
#define PD_RATELIMIT_MAX_KEYS_LIMIT 1000000 /* largest max_keys accepted by pd_ratelimit_new */

struct pd_ratelimit;

enum pd_rl_verdict {
    PD_RL_ALLOW = 0, /* a token was taken: forward the request */
    PD_RL_LIMITED, /* bucket empty: answer 429 with Retry-After: retry_after_s */
    PD_RL_TOO_MANY_KEYS, /* new key and the table is full of non-full buckets: deny (429 too) */
    PD_RL_NOMEM, /* a new bucket could not be allocated: deny (503) */
    PD_RL_INVALID, /* bad key or numbers outside the ranges below (a caller bug): deny */
};

/* Create an empty limiter holding at most max_keys (1..PD_RATELIMIT_MAX_KEYS_LIMIT) buckets. NULL
 * and err filled on a bad max_keys or out of memory. */
struct pd_ratelimit *pd_ratelimit_new(size_t max_keys, struct pd_err *err);
/* Free everything. No other call may run concurrently with or after it. NULL is accepted. */
void pd_ratelimit_free(struct pd_ratelimit *rl);

/* Check a rule's numbers: requests_per_minute in PD_RATELIMIT_RPM_MIN..MAX, burst_size in
 * PD_RATELIMIT_BURST_MIN..MAX. 0, or -1 with err "requests_per_minute must be between 1 and
 * 1000000, got 0" (the field names are the configuration's). Takes int64_t so configuration
 * integers pass as they are. */
int pd_ratelimit_validate(int64_t requests_per_minute, int64_t burst_size, struct pd_err *err);

/*
 * Take one token from key's bucket at now_ms (monotonic milliseconds), creating the bucket (full)
 * when the key is new. retry_after_s (may be NULL) is set to 0 on PD_RL_ALLOW and to at least 1
 * otherwise (PD_RL_LIMITED: seconds until one token; PD_RL_TOO_MANY_KEYS: seconds until a bucket
 * can be reclaimed; PD_RL_NOMEM and PD_RL_INVALID: 1).
 */
enum pd_rl_verdict pd_ratelimit_take(struct pd_ratelimit *rl, const char *key,
                                     uint32_t requests_per_minute, uint32_t burst_size,
                                     int64_t now_ms, uint32_t *retry_after_s);

/* Drop every bucket whose key is not among live_keys[0..nlive) (after a reload). Returns how many
 * were dropped. Keys in live_keys that have no bucket are ignored; NULL entries are skipped. */
size_t pd_ratelimit_prune(struct pd_ratelimit *rl, const char *const *live_keys, size_t nlive);

/* Number of buckets held (for metrics and tests). */
size_t pd_ratelimit_count(struct pd_ratelimit *rl);

/* "allow", "limited", "too_many_keys", "nomem", "invalid" (stable: used in logs and metrics). */
const char *pd_rl_verdict_name(enum pd_rl_verdict v);

#endif
