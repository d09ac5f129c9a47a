/*
 * dns_cache.h - private to src/gateway: a small per-worker cache of name resolutions, so a request to
 * an allowed name does not cost a getaddrinfo() round trip through libuv's thread pool every time.
 *
 * What is cached: the addresses getaddrinfo() returned for a canonical name (upstream.c), for
 * PX_DNS_TTL_MS (getaddrinfo reports no TTL, so a short fixed lifetime bounds staleness). Failures are
 * not cached. The cache stores what was resolved, not what was allowed: upstream.c checks every cached
 * address against the current request's decision (pd_gw_decide_address) exactly as for a fresh answer,
 * so a reload or a rule without allow_private can never be bypassed through the cache.
 *
 * One cache per worker (no locks): owned by struct px_worker, used only on that worker's loop thread.
 * Bounded: PX_DNS_SLOTS entries of at most PX_DNS_ADDRS addresses, allocated on first use; a full probe
 * window evicts the entry that expires first.
 */
#ifndef PD_GATEWAY_DNS_CACHE_H
#define PD_GATEWAY_DNS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "net/host.h"
#include "net/ip.h"

#define PX_DNS_SLOTS 64
#define PX_DNS_PROBE 4
#define PX_DNS_ADDRS 8
#define PX_DNS_TTL_MS 10000u

struct px_dns_entry {
    char host[PD_HOST_MAX + 1]; /* "" when free */
    uint64_t expires_ms;
    size_t n;
    struct pd_addr addrs[PX_DNS_ADDRS];
};

struct px_dns_cache {
    struct px_dns_entry *slots; /* PX_DNS_SLOTS, NULL until the first insert */
};

/* The cached addresses of host (valid until now_ms), or NULL; *n receives the count. */
const struct pd_addr *px_dns_lookup(const struct px_dns_cache *dc, const char *host, uint64_t now_ms,
                                    size_t *n);
/* Remember host -> addrs[0..n) until now_ms + PX_DNS_TTL_MS (at most PX_DNS_ADDRS kept). An allocation
 * failure just leaves the cache empty. */
void px_dns_store(struct px_dns_cache *dc, const char *host, const struct pd_addr *addrs, size_t n,
                  uint64_t now_ms);
void px_dns_free(struct px_dns_cache *dc);

#endif
