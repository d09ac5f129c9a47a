/*
 * rule_key.h - the key that names a rate-limit or budget rule (policy.h: pd_gw_rate_rule.key,
 * pd_gw_budget_rule.key) in the accounting tables of ratelimit.c and budget.c.
 *
 * A key is 1..PD_GW_RULE_KEY_MAX bytes of printable ASCII without spaces (0x21..0x7e): every rule key
 * is a canonical host pattern or the word "default". Pure functions, no state.
 */
#ifndef PD_GATEWAY_RULE_KEY_H
#define PD_GATEWAY_RULE_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PD_GW_RULE_KEY_MAX 256

/* True when key is a valid rule key; sets *len to its length. */
bool pd_gw_rule_key_valid(const char *key, size_t *len);
/* FNV-1a: keys come from the operator's own rules, so no flooding defence is needed. */
uint64_t pd_gw_rule_key_hash(const char *s, size_t n);

#endif
