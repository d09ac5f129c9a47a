/* dns_cache.c - per-worker resolution cache (see dns_cache.h). */
#include "gateway/dns_cache.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/rule_key.h"

static size_t home(const char *host)
{
    return (size_t)(pd_gw_rule_key_hash(host, strlen(host)) % PX_DNS_SLOTS);
}

const struct pd_addr *px_dns_lookup(const struct px_dns_cache *dc, const char *host, uint64_t now_ms,
                                    size_t *n)
{
    if (!dc->slots)
        return NULL;
    size_t h = home(host);
    for (size_t i = 0; i < PX_DNS_PROBE; i++) {
        const struct px_dns_entry *e = &dc->slots[(h + i) % PX_DNS_SLOTS];
        if (e->host[0] && strcmp(e->host, host) == 0) {
            if (e->expires_ms <= now_ms || e->n == 0)
                return NULL;
            *n = e->n;
            return e->addrs;
        }
    }
    return NULL;
}

void px_dns_store(struct px_dns_cache *dc, const char *host, const struct pd_addr *addrs, size_t n,
                  uint64_t now_ms)
{
    size_t len = strlen(host);
    if (n == 0 || len == 0 || len > PD_HOST_MAX)
        return;
    if (!dc->slots) {
        dc->slots = calloc(PX_DNS_SLOTS, sizeof *dc->slots);
        if (!dc->slots)
            return;
    }
    size_t h = home(host);
    struct px_dns_entry *victim = NULL;
    for (size_t i = 0; i < PX_DNS_PROBE; i++) {
        struct px_dns_entry *e = &dc->slots[(h + i) % PX_DNS_SLOTS];
        if (e->host[0] && strcmp(e->host, host) == 0) {
            victim = e; /* refresh in place */
            break;
        }
        if (!victim || e->expires_ms < victim->expires_ms)
            victim = e; /* free slots have expires_ms 0 and win */
    }
    memcpy(victim->host, host, len + 1);
    victim->n = n < PX_DNS_ADDRS ? n : PX_DNS_ADDRS;
    memcpy(victim->addrs, addrs, victim->n * sizeof addrs[0]);
    victim->expires_ms = now_ms + PX_DNS_TTL_MS;
}

void px_dns_free(struct px_dns_cache *dc)
{
    free(dc->slots);
    dc->slots = NULL;
}
